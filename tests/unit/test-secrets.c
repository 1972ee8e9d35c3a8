/* Unit tests for src/secrets: grammars, JSON pointer, the exec output
 * parser, the file and exec provider checks, the owner state machine
 * (warm, stale, cold), the logger mask, and sealing (round trip, a fresh
 * nonce per write, tamper and wrong-key detection). */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "secrets/secrets-int.h"
#include "secrets/secrets.h"
#include "store/store.h"

static char tmpdir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-secrets-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	secrets_install(SECRETS_SCOPE_FULL, tmpdir);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void teardown(void)
{
	config_set_current(NULL);
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write <tmpdir>/<name> with mode; the path goes to out. */
static void put(const char *name, const char *text, mode_t mode,
		char out[PATH_MAX])
{
	FILE *f;

	snprintf(out, PATH_MAX, "%s/%s", tmpdir, name);
	unlink(out);
	f = fopen(out, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(chmod(out, mode), 0);
}

static struct gw_config *load(const char *text, struct config_issues *is)
{
	char path[PATH_MAX];
	struct gw_config *c = NULL;

	put("openclaw.json", text, 0600, path);
	config_load(path, NULL, &c, is);
	return c;
}

/* ---- grammars ------------------------------------------------------------ */

START_TEST(test_grammars)
{
	char id[300];

	ck_assert(secrets_alias_valid("vault"));
	ck_assert(secrets_alias_valid("a-b_9"));
	ck_assert(!secrets_alias_valid("Vault"));
	ck_assert(!secrets_alias_valid("9a"));
	ck_assert(!secrets_alias_valid(""));
	memset(id, 'a', 64);
	id[64] = 0;
	ck_assert(secrets_alias_valid(id));
	id[64] = 'a';
	id[65] = 0;
	ck_assert(!secrets_alias_valid(id));

	ck_assert(secrets_env_name_valid("OPENAI_API_KEY"));
	ck_assert(!secrets_env_name_valid("openai"));
	ck_assert(!secrets_env_name_valid("_X"));
	ck_assert(!secrets_env_name_valid("A-B"));

	ck_assert(secrets_exec_id_valid("providers/openai/apiKey#value"));
	ck_assert(secrets_exec_id_valid("a:b.c"));
	ck_assert(!secrets_exec_id_valid("a/../b"));
	ck_assert(!secrets_exec_id_valid("a/./b"));
	ck_assert(!secrets_exec_id_valid("a/.."));
	ck_assert(!secrets_exec_id_valid("/abs"));
	ck_assert(!secrets_exec_id_valid("a b"));
	memset(id, 'a', 256);
	id[256] = 0;
	ck_assert(secrets_exec_id_valid(id));
	id[256] = 'a';
	id[257] = 0;
	ck_assert(!secrets_exec_id_valid(id));

	ck_assert(secrets_file_id_valid("/a/b~0c~1d"));
	ck_assert(secrets_file_id_valid("value"));
	ck_assert(!secrets_file_id_valid("a/b"));
	ck_assert(!secrets_file_id_valid("/a~2"));
}
END_TEST

START_TEST(test_json_pointer)
{
	json_t *doc = json_loads("{\"a\":{\"b/c\":\"x\",\"d~e\":\"y\",\"l\":"
				 "[\"p\",\"q\"]},\"\":\"empty\"}", 0, NULL);

	ck_assert_str_eq(json_string_value(secrets_json_pointer(doc,
					   "/a/b~1c")), "x");
	ck_assert_str_eq(json_string_value(secrets_json_pointer(doc,
					   "/a/d~0e")), "y");
	ck_assert_str_eq(json_string_value(secrets_json_pointer(doc,
					   "/a/l/1")), "q");
	ck_assert_str_eq(json_string_value(secrets_json_pointer(doc, "/")),
			 "empty");
	ck_assert_ptr_null(secrets_json_pointer(doc, "/a/l/01"));
	ck_assert_ptr_null(secrets_json_pointer(doc, "/a/l/2"));
	ck_assert_ptr_null(secrets_json_pointer(doc, "/a/nope"));
	ck_assert_ptr_null(secrets_json_pointer(doc, "/a/b~2"));
	ck_assert_ptr_null(secrets_json_pointer(doc, "a"));
	ck_assert_ptr_nonnull(secrets_json_pointer(doc, "/a"));
	json_decref(doc);
}
END_TEST

/* ---- the exec output parser ---------------------------------------------- */

static void batch_free(struct secrets_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		xfree_secret(b->values[i]);
		free(b->errs[i]);
	}
	free(b->values);
	free(b->errs);
}

START_TEST(test_exec_parse)
{
	const char *ids[] = { "a/b", "x" };
	struct secrets_batch b = { .alias = "v", .ids = ids, .n = 2 };
	char why[200];
	const char *ok = "{\"protocolVersion\":1,\"values\":{\"a/b\":\"s1\"},"
			 "\"errors\":{\"x\":{\"code\":\"NOT_FOUND\","
			 "\"message\":\"secret-ish\"}}}";

	b.values = xcalloc(2, sizeof(char *));
	b.errs = xcalloc(2, sizeof(char *));
	ck_assert_int_eq(secrets_exec_parse(ok, strlen(ok), 1, &b, why,
					    sizeof(why)), 0);
	ck_assert_str_eq(b.values[0], "s1");
	ck_assert_ptr_null(b.values[1]);
	ck_assert_str_eq(b.errs[1], "NOT_FOUND");
	batch_free(&b);

	b.values = xcalloc(2, sizeof(char *));
	b.errs = xcalloc(2, sizeof(char *));
	ck_assert_int_eq(secrets_exec_parse("plain\n", 6, 0, &b, why,
					    sizeof(why)), -1);
	ck_assert_str_eq(why, "output is not JSON");
	ck_assert_int_eq(secrets_exec_parse("{\"protocolVersion\":2}", 21, 1,
					    &b, why, sizeof(why)), -1);
	ck_assert_int_eq(secrets_exec_parse("{\"protocolVersion\":1,\"values"
					    "\":[]}", 33, 1, &b, why,
					    sizeof(why)), -1);
	ck_assert_int_eq(secrets_exec_parse("{\"a\":1}\0", 8, 1, &b, why,
					    sizeof(why)), -1);
	ck_assert_str_eq(why, "output contains a NUL byte");
	batch_free(&b);

	/* jsonOnly false, one id: the raw output is the value */
	b.n = 1;
	b.values = xcalloc(1, sizeof(char *));
	b.errs = xcalloc(1, sizeof(char *));
	ck_assert_int_eq(secrets_exec_parse("raw-value\r\n", 11, 0, &b, why,
					    sizeof(why)), 0);
	ck_assert_str_eq(b.values[0], "raw-value");
	batch_free(&b);
}
END_TEST

/* ---- provider checks ------------------------------------------------------ */

static void expect_token_issue(const char *provider_json, const char *id,
			       const char *want)
{
	struct config_issues is = { 0 };
	struct gw_config *c;
	char *text = xasprintf("{ gateway: { auth: { token: { source: "
			       "'file', provider: 'f', id: '%s' } } }, "
			       "secrets: { providers: { f: %s } } }", id,
			       provider_json);

	c = load(text, &is);
	ck_assert_ptr_null(c);
	ck_assert_int_ge(is.n, 1);
	ck_assert_msg(strstr(is.v[0].message, want), "got '%s', want '%s'",
		      is.v[0].message, want);
	config_issues_free(&is);
	free(text);
}

START_TEST(test_file_provider_checks)
{
	char path[PATH_MAX], lnk[PATH_MAX + 8], prov[PATH_MAX + 100];
	struct config_issues is = { 0 };
	struct gw_config *c;
	char *text;

	put("k.json", "{\"gw\":{\"token\":\"tok-1\"}}", 0600, path);
	snprintf(prov, sizeof(prov), "{ source: 'file', path: '%s' }", path);
	text = xasprintf("{ gateway: { auth: { token: { source: 'file', "
			 "provider: 'f', id: '/gw/token' } } }, secrets: { "
			 "providers: { f: %s } } }", prov);
	c = load(text, &is);
	free(text);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->auth_token, "tok-1");
	config_unref(c);
	config_issues_free(&is);

	expect_token_issue(prov, "/gw/nope", "JSON pointer does not match");
	expect_token_issue(prov, "/gw", "does not name a string");
	chmod(path, 0640);
	expect_token_issue(prov, "/gw/token", "file must be private");
	chmod(path, 0600);
	/* a hard link */
	snprintf(lnk, sizeof(lnk), "%s.ln", path);
	ck_assert_int_eq(link(path, lnk), 0);
	expect_token_issue(prov, "/gw/token", "must not be hardlinked");
	unlink(lnk);
	/* a symlink */
	ck_assert_int_eq(symlink(path, lnk), 0);
	snprintf(prov, sizeof(prov), "{ source: 'file', path: '%s' }", lnk);
	expect_token_issue(prov, "/gw/token", "must not be a symlink");
	/* size limit, NUL byte, non-JSON */
	snprintf(prov, sizeof(prov), "{ source: 'file', path: '%s', "
		 "maxBytes: 4 }", path);
	expect_token_issue(prov, "/gw/token", "file larger than 4 bytes");
	put("k.json", "not json", 0600, path);
	snprintf(prov, sizeof(prov), "{ source: 'file', path: '%s' }", path);
	expect_token_issue(prov, "/gw/token", "file is not a JSON object");
	/* unknown keys and modes are config errors */
	expect_token_issue("{ source: 'file', path: '/x', mode: 'yaml' }",
			   "/a", "mode: expected");
	expect_token_issue("{ source: 'file', path: '/x', extra: 1 }", "/a",
			   "unknown key \"extra\"");
	/* singleValue takes id "value" only */
	expect_token_issue("{ source: 'file', path: '/x', mode: "
			   "'singleValue' }", "/a", "invalid file SecretRef "
			   "id");
}
END_TEST

START_TEST(test_exec_provider_checks)
{
	char sh[PATH_MAX], lnk[PATH_MAX + 8], text[4 * PATH_MAX];
	struct config_issues is = { 0 };
	struct gw_config *c;

	put("r.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"protocolVersion\":1,"
	    "\"values\":{\"t\":\"v-123\"}}'\n", 0700, sh);
#define EXEC_CFG(prov) \
	snprintf(text, sizeof(text), "{ gateway: { auth: { token: { source: " \
		 "'exec', provider: 'x', id: 't' } } }, secrets: { " \
		 "providers: { x: %s } } }", prov)
	{
		char prov[2 * PATH_MAX];

		snprintf(prov, sizeof(prov), "{ source: 'exec', command: '%s' "
			 "}", sh);
		EXEC_CFG(prov);
		c = load(text, &is);
		ck_assert_ptr_nonnull(c);
		ck_assert_str_eq(c->auth_token, "v-123");
		config_unref(c);
		config_issues_free(&is);

		chmod(sh, 0720);
		c = load(text, &is);
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(is.v[0].message, "must not be "
					     "group- or world-writable"));
		config_issues_free(&is);
		chmod(sh, 0700);

		snprintf(lnk, sizeof(lnk), "%s.ln", sh);
		ck_assert_int_eq(symlink(sh, lnk), 0);
		snprintf(prov, sizeof(prov), "{ source: 'exec', command: '%s' "
			 "}", lnk);
		EXEC_CFG(prov);
		c = load(text, &is);
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(is.v[0].message, "must not be a "
					     "symlink"));
		config_issues_free(&is);

		snprintf(prov, sizeof(prov), "{ source: 'exec', command: '%s', "
			 "trustedDirs: ['/usr/share'] }", sh);
		EXEC_CFG(prov);
		c = load(text, &is);
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(is.v[0].message, "not inside "
					     "trustedDirs"));
		config_issues_free(&is);

		snprintf(prov, sizeof(prov), "{ source: 'exec', command: '%s', "
			 "trustedDirs: ['%s'] }", sh, tmpdir);
		EXEC_CFG(prov);
		c = load(text, &is);
		ck_assert_ptr_nonnull(c);
		config_unref(c);
		config_issues_free(&is);
	}
	/* a resolver that answers but does not exit, and a silent one */
	put("late.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"protocolVersion\""
	    ":1,\"values\":{\"t\":\"v\"}}'\nexec >&-\nexec sleep 30\n", 0700,
	    sh);
	{
		char prov[2 * PATH_MAX];
		int64_t t0 = util_mono_ms();

		snprintf(prov, sizeof(prov), "{ source: 'exec', command: '%s', "
			 "timeoutMs: 300 }", sh);
		EXEC_CFG(prov);
		c = load(text, &is);
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(is.v[0].message, "no exit after "
					     "its output"));
		config_issues_free(&is);
		snprintf(prov, sizeof(prov), "{ source: 'exec', command: "
			 "'/bin/sleep', args: ['30'], timeoutMs: 5000, "
			 "noOutputTimeoutMs: 200 }");
		EXEC_CFG(prov);
		c = load(text, &is);
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(is.v[0].message, "timed out after "
					     "200 ms"));
		config_issues_free(&is);
		ck_assert_int_lt(util_mono_ms() - t0, 20000);
	}
	/* output limit */
	EXEC_CFG("{ source: 'exec', command: '/usr/bin/yes', "
		 "maxOutputBytes: 1000 }");
	c = load(text, &is);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(is.v[0].message, "output larger than "
				     "1000 bytes"));
	config_issues_free(&is);
	/* only passEnv names reach the resolver */
	setenv("TEST_SECRETS_PASS", "passed-1", 1);
	setenv("TEST_SECRETS_HIDDEN", "hidden", 1);
	put("e.sh", "#!/bin/sh\ncat >/dev/null\nprintf '{\"protocolVersion\":1,"
	    "\"values\":{\"t\":\"%s|%s|%s\"}}' \"$TEST_SECRETS_PASS\" "
	    "\"$TEST_SECRETS_HIDDEN\" \"$LIT\"\n", 0700, sh);
	{
		char prov[2 * PATH_MAX];

		snprintf(prov, sizeof(prov), "{ source: 'exec', command: '%s', "
			 "passEnv: ['TEST_SECRETS_PASS'], env: { LIT: 'lit' } }",
			 sh);
		EXEC_CFG(prov);
	}
	c = load(text, &is);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->auth_token, "passed-1||lit");
	config_unref(c);
	config_issues_free(&is);
#undef EXEC_CFG
}
END_TEST

/* ---- owners: warm, cold, stale ------------------------------------------ */

START_TEST(test_owner_states)
{
	char keys[PATH_MAX], text[2 * PATH_MAX], why[400];
	struct config_issues is = { 0 };
	struct gw_config *c, *c2, *c3;
	const char *v;

	put("keys.json", "{\"a\":\"sk-a1\",\"b\":\"sk-b1\"}", 0600, keys);
	snprintf(text, sizeof(text), "{ models: { providers: { "
		 "pa: { baseUrl: 'http://x', apiKey: { source: 'file', "
		 "provider: 'f', id: '/a' } }, "
		 "pb: { baseUrl: 'http://x', apiKey: { source: 'file', "
		 "provider: 'f', id: '/b' } }, "
		 "pc: { baseUrl: 'http://x', apiKey: { source: 'env', "
		 "id: 'TEST_SECRETS_NOPE' } }, "
		 "pd: { baseUrl: 'http://x', apiKey: 'plain-text' } } }, "
		 "secrets: { providers: { f: { source: 'file', path: '%s' } } "
		 "} }", keys);
	unsetenv("TEST_SECRETS_NOPE");
	/* start: pc is cold, the others warm */
	c = load(text, &is);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(secrets_warning_count(c), 1);
	ck_assert_int_eq(secrets_lookup(c, "models.providers.pa.apiKey", &v,
					why, sizeof(why)), GW_OK);
	ck_assert_str_eq(v, "sk-a1");
	ck_assert_int_eq(secrets_lookup(c, "models.providers.pc.apiKey", &v,
					why, sizeof(why)), GW_EUNAVAIL);
	ck_assert_ptr_nonnull(strstr(why, "SECRET_SURFACE_UNAVAILABLE"));
	ck_assert_ptr_null(strstr(why, "TEST_SECRETS_NOPE")); /* no id */
	ck_assert_int_eq(secrets_lookup(c, "models.providers.pd.apiKey", &v,
					why, sizeof(why)), GW_ENOTFOUND);
	config_set_current(c);

	/* reload with the file unreadable: pa/pb keep their last-known-good
	 * values (stale), pc stays cold */
	chmod(keys, 0644);
	c2 = load(text, &is);
	ck_assert_ptr_nonnull(c2);
	ck_assert_int_eq(secrets_warning_count(c2), 3);
	ck_assert_int_eq(secrets_lookup(c2, "models.providers.pb.apiKey", &v,
					why, sizeof(why)), GW_OK);
	ck_assert_str_eq(v, "sk-b1");
	ck_assert(secrets_changed(c, c2));
	config_set_current(c2);

	/* a changed ref that fails is cold, not stale */
	chmod(keys, 0600);
	put("keys.json", "{\"a\":\"sk-a2\"}", 0600, keys);
	c3 = load(text, &is);
	ck_assert_ptr_nonnull(c3);
	ck_assert_int_eq(secrets_lookup(c3, "models.providers.pa.apiKey", &v,
					why, sizeof(why)), GW_OK);
	ck_assert_str_eq(v, "sk-a2");
	/* the same ref and provider, entry gone: last-known-good (stale) */
	ck_assert_int_eq(secrets_lookup(c3, "models.providers.pb.apiKey", &v,
					why, sizeof(why)), GW_OK);
	ck_assert_str_eq(v, "sk-b1");
	ck_assert(secrets_changed(c2, c3));
	config_unref(c3);
	config_unref(c2);
	config_unref(c);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_mask)
{
	char path[PATH_MAX], *buf = NULL;
	size_t n = 0;

	secrets_mask_add("abc-secret-1");
	snprintf(path, sizeof(path), "%s/mask.log", tmpdir);
	ck_assert_int_eq(log_open_file(path, "t"), 0);
	log_set_console(0);
	log_info("test", "token=abc-secret-1 and again abc-secret-1.");
	log_close_file();
	ck_assert_int_eq(util_read_file(path, 1 << 20, &buf, &n), 1);
	ck_assert_ptr_null(strstr(buf, "abc-secret-1"));
	ck_assert_ptr_nonnull(strstr(buf, "token=*** and again ***."));
	free(buf);
}
END_TEST

/* ---- sealing --------------------------------------------------------------- */

START_TEST(test_seal_round_trip)
{
	uint8_t key[SECRETS_KEY_LEN], key2[SECRETS_KEY_LEN];
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1, l2, vl;
	char why[300], *v = NULL, path[PATH_MAX];
	struct stat st;

	ck_assert_int_eq(secrets_key_load(tmpdir, 0, key, why, sizeof(why)),
			 GW_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(why, "is missing"));
	ck_assert_int_eq(secrets_key_load(tmpdir, 1, key, why, sizeof(why)),
			 GW_OK);
	snprintf(path, sizeof(path), "%s/state/secrets.key", tmpdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(secrets_key_load(tmpdir, 0, key2, why, sizeof(why)),
			 GW_OK);
	ck_assert_mem_eq(key, key2, sizeof(key));

	ck_assert_int_eq(secrets_seal(key, "NAME", "value-1", 7, &b1, &l1),
			 GW_OK);
	ck_assert_int_eq(secrets_seal(key, "NAME", "value-1", 7, &b2, &l2),
			 GW_OK);
	ck_assert_uint_eq(l1, l2);
	ck_assert(memcmp(b1, b2, l1) != 0);	/* fresh nonce */
	ck_assert_ptr_null(memmem(b1, l1, "value-1", 7));
	ck_assert_int_eq(secrets_unseal(key, "NAME", b1, l1, &v, &vl), GW_OK);
	ck_assert_str_eq(v, "value-1");
	ck_assert_uint_eq(vl, 7);
	xfree_secret(v);
	/* another name (AAD), a flipped bit, a wrong key, a short blob */
	ck_assert_int_eq(secrets_unseal(key, "OTHER", b1, l1, &v, NULL),
			 GW_ECRYPTO);
	b1[l1 / 2] ^= 1;
	ck_assert_int_eq(secrets_unseal(key, "NAME", b1, l1, &v, NULL),
			 GW_ECRYPTO);
	ck_assert_ptr_null(v);
	key2[0] ^= 1;
	ck_assert_int_eq(secrets_unseal(key2, "NAME", b2, l2, &v, NULL),
			 GW_ECRYPTO);
	ck_assert_int_eq(secrets_unseal(key, "NAME", b2, 5, &v, NULL),
			 GW_ECRYPTO);
	free(b1);
	free(b2);

	/* a key file readable by others, or malformed, is refused */
	chmod(path, 0644);
	ck_assert_int_eq(secrets_key_load(tmpdir, 0, key, why, sizeof(why)),
			 GW_ECRYPTO);
	ck_assert_ptr_nonnull(strstr(why, "must be private"));
	put("state/secrets.key", "xyz\n", 0600, path);
	ck_assert_int_eq(secrets_key_load(tmpdir, 0, key, why, sizeof(why)),
			 GW_ECRYPTO);
	ck_assert_ptr_nonnull(strstr(why, "malformed"));
	/* a systemd credential wins */
	put("cred.key", "", 0600, path);
	unlink(path);
	setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
	put("secrets.key", "00112233445566778899aabbccddeeff00112233445566778899"
	    "aabbccddeeff\n", 0400, path);
	ck_assert_int_eq(secrets_key_load("/nonexistent", 0, key, why,
					  sizeof(why)), GW_OK);
	ck_assert_uint_eq(key[1], 0x11);
	unsetenv("CREDENTIALS_DIRECTORY");
}
END_TEST

/* ---- config_secret_resolve (one ref now, for code not on the snapshot) -- */

START_TEST(test_resolve_now)
{
	char keys[PATH_MAX], text[2 * PATH_MAX], why[300], *out = NULL;
	struct config_issues is = { 0 };
	struct gw_config *c;
	json_t *v;

	setenv("TEST_SECRETS_NOW", "now-1", 1);
	v = json_loads("{\"source\":\"env\",\"id\":\"TEST_SECRETS_NOW\"}",
		       0, NULL);
	ck_assert_int_eq(config_secret_resolve(v, &out, why, sizeof(why)), 0);
	ck_assert_str_eq(out, "now-1");
	xfree_secret(out);
	json_decref(v);
	/* a file ref needs the running config's provider */
	put("k.json", "{\"a\":\"file-now\"}", 0600, keys);
	v = json_loads("{\"source\":\"file\",\"provider\":\"f\","
		       "\"id\":\"/a\"}", 0, NULL);
	ck_assert_int_eq(config_secret_resolve(v, &out, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "provider \"f\" is not configured"));
	snprintf(text, sizeof(text), "{ secrets: { providers: { f: { source: "
		 "'file', path: '%s' } } } }", keys);
	c = load(text, &is);
	ck_assert_ptr_nonnull(c);
	config_set_current(c);
	config_unref(c);
	ck_assert_int_eq(config_secret_resolve(v, &out, why, sizeof(why)), 0);
	ck_assert_str_eq(out, "file-now");
	xfree_secret(out);
	json_decref(v);
	v = json_string("plain");
	ck_assert_int_eq(config_secret_resolve(v, &out, why, sizeof(why)), 0);
	ck_assert_str_eq(out, "plain");
	xfree_secret(out);
	json_decref(v);
	config_issues_free(&is);
	unsetenv("TEST_SECRETS_NOW");
}
END_TEST

/* ---- the store: soft delete and purge ------------------------------------- */

static int age_deleted(sqlite3 *db, void *arg)
{
	(void)arg;
	return sqlite3_exec(db, "UPDATE secret_store_entries SET "
			    "deleted_at_ms = deleted_at_ms - 31 * 86400000 "
			    "WHERE deleted_at_ms IS NOT NULL", NULL, NULL,
			    NULL) == SQLITE_OK ? GW_OK : GW_ESTORE;
}

static int64_t count_rows(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(store_reader(st), "SELECT count(*) FROM "
			       "secret_store_entries", -1, &s, NULL) ==
	    SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

START_TEST(test_store_soft_delete_purge)
{
	struct store *st = NULL;
	struct store_secret *v = NULL;
	char path[PATH_MAX], why[300], *val = NULL, *kind = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/state/clawgate.sqlite", tmpdir);
	ck_assert_int_eq(store_open(path, &st, NULL), GW_OK);
	ck_assert_int_eq(secrets_store_set(st, "A_TOKEN", "secret", "va", 2,
					   NULL, "t", why, sizeof(why)), GW_OK);
	ck_assert_int_eq(secrets_store_set(st, "B", "env", "vb", 2, NULL, "t",
					   why, sizeof(why)), GW_OK);
	ck_assert_int_eq(secrets_store_value(store_reader(st), "B", &kind,
					     &val, why, sizeof(why)), GW_OK);
	ck_assert_str_eq(val, "vb");
	ck_assert_str_eq(kind, "env");
	xfree_secret(val);
	free(kind);
	ck_assert_int_eq(store_secrets_delete(st, "A_TOKEN", "t"), GW_OK);
	ck_assert_int_eq(store_secrets_delete(st, "A_TOKEN", "t"),
			 GW_ENOTFOUND);
	ck_assert_int_eq(store_secrets_list(st, &v, &n), GW_OK);
	ck_assert_uint_eq(n, 1);	/* soft-deleted: hidden, kept */
	store_secret_clear(&v[0]);
	free(v);
	ck_assert_int_eq(count_rows(st), 2);
	ck_assert_int_eq(secrets_store_value(store_reader(st), "A_TOKEN",
					     NULL, &val, why, sizeof(why)),
			 GW_ENOTFOUND);
	/* 31 days later the next write purges it */
	ck_assert_int_eq(store_write_sync(st, age_deleted, NULL, 0), GW_OK);
	ck_assert_int_eq(secrets_store_set(st, "C", "env", "vc", 2, NULL, "t",
					   why, sizeof(why)), GW_OK);
	ck_assert_int_eq(count_rows(st), 2);	/* B and C */
	store_close(st);
}
END_TEST

/* ---- plans ------------------------------------------------------------------ */

static void expect_plan_bad(const char *target, const char *want)
{
	char *text = xasprintf("{\"version\":1,\"protocolVersion\":1,"
			       "\"targets\":[%s]}", target);
	json_t *plan = NULL;
	char why[300] = "";

	ck_assert_int_eq(secrets_plan_parse(text, strlen(text), &plan, why,
					    sizeof(why)), GW_EINVAL);
	ck_assert_ptr_null(plan);
	ck_assert_msg(strstr(why, want), "got '%s', want '%s'", why, want);
	free(text);
}

#define REF_STORE "\"ref\":{\"source\":\"store\",\"id\":\"K_API_KEY\"}"

START_TEST(test_plan_validation)
{
	const char *good = "{\"version\":1,\"protocolVersion\":1,"
		"\"providerUpserts\":{\"vault\":{\"source\":\"exec\","
		"\"command\":\"/bin/true\"}},\"providerDeletes\":[\"old\"],"
		"\"targets\":[{\"type\":\"models.providers.apiKey\","
		"\"path\":\"models.providers.openai.apiKey\","
		"\"pathSegments\":[\"models\",\"providers\",\"openai\","
		"\"apiKey\"],\"providerId\":\"openai\"," REF_STORE "},"
		"{\"type\":\"models.providers.*.apiKey\",\"path\":"
		"\"models.providers.x.apiKey\",\"ref\":{\"source\":\"exec\","
		"\"provider\":\"vault\",\"id\":\"a/b#c\"}},"
		"{\"type\":\"gateway.auth.token\",\"path\":"
		"\"gateway.auth.token\",\"ref\":{\"source\":\"env\","
		"\"id\":\"GW_TOKEN\"}}]}";
	json_t *plan = NULL, *root, *neu, *mig = json_array();
	char why[300];

	ck_assert_int_eq(secrets_plan_parse(good, strlen(good), &plan, why,
					    sizeof(why)), GW_OK);
	ck_assert(secrets_plan_has_exec(plan));
	root = json_loads("{\"models\":{\"providers\":{\"openai\":{"
			  "\"apiKey\":\"sk-plain\"}}},\"secrets\":{"
			  "\"providers\":{\"old\":{\"source\":\"env\"}}}}",
			  0, NULL);
	neu = secrets_plan_apply_root(plan, root, mig);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
		json_object_get(json_object_get(json_object_get(neu,
		"models"), "providers"), "openai"), "apiKey"), "id")),
		"K_API_KEY");
	ck_assert_ptr_null(json_object_get(json_object_get(json_object_get(
		neu, "secrets"), "providers"), "old"));
	ck_assert_ptr_nonnull(json_object_get(json_object_get(json_object_get(
		neu, "secrets"), "providers"), "vault"));
	ck_assert_int_eq(json_array_size(mig), 1);
	ck_assert_str_eq(json_string_value(json_array_get(mig, 0)),
			 "sk-plain");
	/* root untouched */
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
		json_object_get(json_object_get(root, "models"), "providers"),
		"openai"), "apiKey")), "sk-plain");
	json_decref(neu);
	json_decref(root);
	json_decref(plan);
	json_decref(mig);

	expect_plan_bad("{\"type\":\"models.providers.apiKey\",\"path\":"
			"\"models.providers.openai.baseUrl\"," REF_STORE "}",
			"Invalid plan target path for models.providers.apiKey: "
			"models.providers.openai.baseUrl");
	expect_plan_bad("{\"type\":\"models.providers.apiKey\",\"path\":"
			"\"models.providers.__proto__.apiKey\"," REF_STORE "}",
			"forbidden path segment \"__proto__\"");
	expect_plan_bad("{\"type\":\"models.providers.apiKey\",\"path\":"
			"\"models.providers.constructor.apiKey\"," REF_STORE
			"}", "forbidden path segment");
	expect_plan_bad("{\"type\":\"models.providers.apiKey\",\"path\":"
			"\"models.providers.a.apiKey\",\"pathSegments\":["
			"\"models\",\"providers\",\"b\",\"apiKey\"],"
			REF_STORE "}", "Invalid plan target path");
	expect_plan_bad("{\"type\":\"models.providers.apiKey\",\"path\":"
			"\"models.providers.a.apiKey\",\"providerId\":\"b\","
			REF_STORE "}", "providerId does not match");
	expect_plan_bad("{\"type\":\"no.such\",\"path\":\"a.b\","
			REF_STORE "}", "unknown target type no.such");
	expect_plan_bad("{\"type\":\"gateway.auth.token\",\"path\":"
			"\"gateway.auth.token\",\"ref\":{\"source\":\"exec\","
			"\"provider\":\"v\",\"id\":\"a/../b\"}}",
			"invalid exec ref id");
	expect_plan_bad("{\"type\":\"gateway.auth.token\",\"path\":"
			"\"gateway..token\"," REF_STORE "}",
			"empty or oversize path segment");
	expect_plan_bad("{\"type\":\"gateway.auth.token\",\"path\":"
			"\"gateway.auth.token\",\"ref\":{\"source\":\"env\","
			"\"id\":\"X\",\"extra\":1}}", "unknown key");
	{
		const char *t = "{\"version\":2,\"protocolVersion\":1,"
				"\"targets\":[]}";

		ck_assert_int_eq(secrets_plan_parse(t, strlen(t), &plan, why,
						    sizeof(why)), GW_EINVAL);
		t = "{\"version\":1,\"protocolVersion\":1,\"targets\":[],"
		    "\"providerUpserts\":{\"v\":{\"source\":\"exec\","
		    "\"command\":\"rel\"}}}";
		ck_assert_int_eq(secrets_plan_parse(t, strlen(t), &plan, why,
						    sizeof(why)), GW_EINVAL);
		ck_assert_ptr_nonnull(strstr(why, "providerUpserts.v"));
	}
}
END_TEST

static Suite *secrets_suite(void)
{
	Suite *s = suite_create("secrets");
	TCase *tc = tcase_create("secrets");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_grammars);
	tcase_add_test(tc, test_json_pointer);
	tcase_add_test(tc, test_exec_parse);
	tcase_add_test(tc, test_file_provider_checks);
	tcase_add_test(tc, test_exec_provider_checks);
	tcase_add_test(tc, test_owner_states);
	tcase_add_test(tc, test_mask);
	tcase_add_test(tc, test_plan_validation);
	tcase_add_test(tc, test_store_soft_delete_purge);
	tcase_add_test(tc, test_resolve_now);
	tcase_add_test(tc, test_seal_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(secrets_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
