/* Unit tests for src/config: paths, option table, validation messages,
 * precedence, $include, ${VAR}, SecretRef, issues format, snapshots. */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/common.h"
#include "core/util.h"
#include "secrets/secrets.h"

static char tmpdir[64];

static const char *const env_vars[] = {
	"OPENCLAW_HOME", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH",
	"OPENCLAW_PROFILE", "OPENCLAW_GATEWAY_PORT", "OPENCLAW_GATEWAY_TOKEN",
	"OPENCLAW_GATEWAY_PASSWORD", "OPENCLAW_INCLUDE_ROOTS", "TEST_CFG_VAR",
	"TEST_CFG_SECRET", "TEST_CFG_EMPTY",
};

static int rm_cb(const char *p, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	return remove(p);
}

static void setup(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(env_vars); i++)
		unsetenv(env_vars[i]);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	secrets_install(SECRETS_SCOPE_FULL, tmpdir);
}

static void teardown(void)
{
	size_t i;

	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	for (i = 0; i < ARRAY_SIZE(env_vars); i++)
		unsetenv(env_vars[i]);
}

/* Write text to <tmpdir>/<name> (creating subdirectories); returns the
 * path (static buffer). */
static const char *put(const char *name, const char *text)
{
	static char path[PATH_MAX];
	char *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	for (slash = strchr(path + strlen(tmpdir) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = 0;
		mkdir(path, 0700);
		*slash = '/';
	}
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const char *fixture(const char *name)
{
	static char path[PATH_MAX];
	const char *src = getenv("CLAWGATE_SRCDIR");

	if (src)
		snprintf(path, sizeof(path), "%s/tests/unit/data/config/%s",
			 src, name);
	else
		snprintf(path, sizeof(path), "%.*s/data/config/%s",
			 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__,
			 name);
	return path;
}

/* Load text as <tmpdir>/openclaw.json; returns the config_load result. */
static int load_text(const char *text, const struct config_overrides *ov,
		     struct gw_config **c, struct config_issues *is)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", put("openclaw.json", text));
	return config_load(path, ov, c, is);
}

/* Assert that text fails with exactly one issue "- path: message". */
static void expect_issue(const char *text, const struct config_overrides *ov,
			 const char *want)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	char got[1024];
	int r = load_text(text, ov, &c, &is);

	ck_assert_int_eq(r, GW_ECONFIG);
	ck_assert_ptr_null(c);
	ck_assert_int_ge(is.n, 1);
	snprintf(got, sizeof(got), "- %s: %s", is.v[0].path,
		 is.v[0].message);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(is.n, 1);
	config_issues_free(&is);
}

/* Load text that must be valid. */
static struct gw_config *expect_ok(const char *text,
				   const struct config_overrides *ov)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	int r = load_text(text, ov, &c, &is);

	if (r != GW_OK)
		config_issues_print(stderr, "(test)", &is);
	ck_assert_int_eq(r, GW_OK);
	ck_assert_ptr_nonnull(c);
	config_issues_free(&is);
	return c;
}

/* ---- paths --------------------------------------------------------------- */

START_TEST(test_paths_default)
{
	struct config_paths p;

	setenv("HOME", "/home/u", 1);
	ck_assert_int_eq(config_paths_resolve(&p, NULL, 0), GW_OK);
	ck_assert_str_eq(p.home, "/home/u");
	ck_assert_str_eq(p.state_dir, "/home/u/.openclaw");
	ck_assert_str_eq(p.config_path, "/home/u/.openclaw/openclaw.json");
	ck_assert_ptr_null(p.profile);
	config_paths_free(&p);

	setenv("OPENCLAW_HOME", "/srv/oc", 1);
	ck_assert_int_eq(config_paths_resolve(&p, NULL, 0), GW_OK);
	ck_assert_str_eq(p.home, "/srv/oc");
	ck_assert_str_eq(p.state_dir, "/srv/oc/.openclaw");
	config_paths_free(&p);

	unsetenv("OPENCLAW_HOME");
	unsetenv("HOME");
	ck_assert_int_eq(config_paths_resolve(&p, NULL, 0), GW_OK);
	ck_assert_ptr_nonnull(p.home);
	ck_assert(p.home[0] == '/');
	config_paths_free(&p);
}
END_TEST

START_TEST(test_paths_profiles)
{
	struct config_paths p;

	setenv("HOME", "/home/u", 1);
	ck_assert_int_eq(config_paths_resolve(&p, "work", 0), GW_OK);
	ck_assert_str_eq(p.state_dir, "/home/u/.openclaw-work");
	ck_assert_str_eq(p.config_path,
			 "/home/u/.openclaw-work/openclaw.json");
	ck_assert_str_eq(p.profile, "work");
	config_paths_free(&p);

	ck_assert_int_eq(config_paths_resolve(&p, NULL, 1), GW_OK);
	ck_assert_str_eq(p.state_dir, "/home/u/.openclaw-dev");
	ck_assert_str_eq(p.profile, "dev");
	config_paths_free(&p);

	setenv("OPENCLAW_PROFILE", "env_prof-1", 1);
	ck_assert_int_eq(config_paths_resolve(&p, NULL, 0), GW_OK);
	ck_assert_str_eq(p.state_dir, "/home/u/.openclaw-env_prof-1");
	config_paths_free(&p);
	/* the flag beats the env */
	ck_assert_int_eq(config_paths_resolve(&p, "cli", 0), GW_OK);
	ck_assert_str_eq(p.state_dir, "/home/u/.openclaw-cli");
	config_paths_free(&p);
	unsetenv("OPENCLAW_PROFILE");

	ck_assert_int_eq(config_paths_resolve(&p, "../evil", 0), GW_EINVAL);
	config_paths_free(&p);
	ck_assert_int_eq(config_paths_resolve(&p, "", 0), GW_EINVAL);
	ck_assert_int_eq(config_paths_resolve(&p, "work", 1), GW_EINVAL);
	ck_assert(config_paths_profile_valid("a-B_9"));
	ck_assert(!config_paths_profile_valid("a b"));
	ck_assert(!config_paths_profile_valid(
		"x234567890123456789012345678901234567890123456789012345678901"
		"2345"));
	setenv("OPENCLAW_PROFILE", "bad/name", 1);
	ck_assert_int_eq(config_paths_resolve(&p, NULL, 0), GW_EINVAL);
}
END_TEST

START_TEST(test_paths_env_overrides)
{
	struct config_paths p;

	setenv("HOME", "/home/u", 1);
	setenv("OPENCLAW_STATE_DIR", "/var/lib/oc", 1);
	ck_assert_int_eq(config_paths_resolve(&p, "work", 0), GW_OK);
	ck_assert_str_eq(p.state_dir, "/var/lib/oc");
	ck_assert_str_eq(p.config_path, "/var/lib/oc/openclaw.json");
	config_paths_free(&p);

	setenv("OPENCLAW_CONFIG_PATH", "~/cfg/oc.json5", 1);
	ck_assert_int_eq(config_paths_resolve(&p, NULL, 0), GW_OK);
	ck_assert_str_eq(p.config_path, "/home/u/cfg/oc.json5");
	ck_assert_str_eq(p.state_dir, "/var/lib/oc");
	config_paths_free(&p);
}
END_TEST

/* ---- the table ----------------------------------------------------------- */

START_TEST(test_table_entries)
{
	size_t n, i, j;
	const struct config_option *t = config_options_table(&n);

	ck_assert_int_gt(n, 100);
	for (i = 0; i < n; i++) {
		struct config_issues is = { 0 };
		json_t *d;

		ck_assert_msg(t[i].help && *t[i].help, "%s: no help",
			      t[i].key);
		ck_assert_msg(t[i].reload == CONFIG_RELOAD_HOT ||
			      t[i].reload == CONFIG_RELOAD_RESTART ||
			      t[i].reload == CONFIG_RELOAD_NONE,
			      "%s: reload class", t[i].key);
		ck_assert(*config_options_reload_name(t[i].reload));
		ck_assert_msg((t[i].type == CFG_ENUM) == (t[i].values != NULL),
			      "%s: enum values", t[i].key);
		for (j = 0; j < i; j++)
			ck_assert_msg(strcmp(t[i].key, t[j].key) != 0,
				      "duplicate %s", t[i].key);
		/* every parent of a dotted key is an object entry */
		if (strrchr(t[i].key, '.')) {
			char *parent = xstrndup(t[i].key,
				(size_t)(strrchr(t[i].key, '.') - t[i].key));
			const char *segs[16];
			char *save = NULL, *tok, *copy = xstrdup(parent);
			size_t k = 0;
			const struct config_option *po;

			for (tok = strtok_r(copy, ".", &save); tok;
			     tok = strtok_r(NULL, ".", &save))
				segs[k++] = tok;
			po = config_options_match(segs, k);
			ck_assert_msg(po && po->type == CFG_OBJECT &&
				      strcmp(po->key, parent) == 0,
				      "%s: parent %s", t[i].key, parent);
			free(copy);
			free(parent);
		}
		if (t[i].flags & CFG_F_SECRET)
			ck_assert(t[i].type == CFG_SECRET);
		if (!t[i].def)
			continue;
		d = config_options_default(&t[i]);
		ck_assert_msg(d != NULL, "%s: default does not parse",
			      t[i].key);
		ck_assert_msg(config_options_check(&t[i], d, t[i].key, &is) ==
			      0, "%s: default fails its check", t[i].key);
		json_decref(d);
		config_issues_free(&is);
	}
}
END_TEST

START_TEST(test_table_lookup)
{
	const struct config_option *o;
	const char *segs[] = { "models", "providers", "my.dotted", "apiKey" };

	o = config_options_lookup("gateway.port");
	ck_assert_str_eq(o->key, "gateway.port");
	ck_assert_int_eq(o->type, CFG_INT);
	o = config_options_lookup("gateway.auth.rateLimit.maxAttempts");
	ck_assert_int_eq(o->reload, CONFIG_RELOAD_HOT);
	o = config_options_lookup("models.providers.local.baseUrl");
	ck_assert_str_eq(o->key, "models.providers.*.baseUrl");
	o = config_options_lookup("agents.entries.main.model");
	ck_assert_str_eq(o->key, "agents.entries.*.model");
	/* longest prefix for unknown leaves */
	o = config_options_lookup("gateway.http.endpoints.chatCompletions."
				  "images.maxBytes");
	ck_assert_str_eq(o->key, "gateway.http.endpoints.chatCompletions");
	o = config_options_lookup("channels.telegram.botToken");
	ck_assert_str_eq(o->key, "channels");
	o = config_options_lookup("gateway.somethingNew");
	ck_assert_str_eq(o->key, "gateway");
	ck_assert_int_eq(o->reload, CONFIG_RELOAD_RESTART);
	ck_assert_ptr_null(config_options_lookup("nosuchroot.x"));
	o = config_options_match(segs, 4);
	ck_assert_str_eq(o->key, "models.providers.*.apiKey");
	ck_assert(o->flags & CFG_F_SECRET);
	ck_assert(config_options_lookup("gateway.auth.password")->flags &
		  CFG_F_SECRET);
}
END_TEST

/* ---- valid files --------------------------------------------------------- */

START_TEST(test_valid_full)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;

	ck_assert_int_eq(config_load(fixture("full.json"), NULL, &c, &is),
			 GW_OK);
	ck_assert_int_eq(is.n, 0);
	ck_assert_int_eq(c->file_exists, 1);
	ck_assert_str_eq(c->mode, "local");
	ck_assert_int_eq(c->port, 18789);
	ck_assert_int_eq(c->bind, BIND_LOOPBACK);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_TOKEN);
	ck_assert_int_eq(c->auth_token_generated, 1);
	ck_assert_int_eq(strlen(c->auth_token), 43);
	ck_assert_str_eq(c->log_file,
			 "/tmp/openclaw-peer-18789/logs/openclaw.log");
	ck_assert_ptr_null(c->log_level);
	ck_assert_str_eq(c->reload_mode, "hybrid");
	ck_assert_int_eq(c->reload_debounce_ms, 300);
	ck_assert_int_eq(c->rate_max_attempts, 10);
	ck_assert_int_eq(c->rate_window_ms, 60000);
	ck_assert_int_eq(c->rate_lockout_ms, 300000);
	ck_assert_int_eq(c->rate_exempt_loopback, 1);
	ck_assert_ptr_null(c->allowed_origins[0]);
	ck_assert_int_eq(strlen(c->hash), 64);
	ck_assert(json_is_false(config_get(c->root, "update.checkOnStart")));
	config_unref(c);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_valid_json5)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;

	ck_assert_int_eq(config_load(fixture("json5.json5"), NULL, &c, &is),
			 GW_OK);
	ck_assert_int_eq(c->port, 18790);
	ck_assert_int_eq(c->bind, BIND_LAN);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_PASSWORD);
	ck_assert_str_eq(c->auth_password, "hunter2");
	ck_assert_ptr_null(c->auth_token);
	ck_assert_int_eq(c->auth_token_generated, 0);
	ck_assert_int_eq(c->rate_max_attempts, 5);
	ck_assert_int_eq(c->rate_window_ms, 30000);
	ck_assert_int_eq(c->rate_lockout_ms, 600000);
	ck_assert_int_eq(c->rate_exempt_loopback, 0);
	ck_assert_str_eq(c->allowed_origins[0], "https://gw.example.com");
	ck_assert_str_eq(c->allowed_origins[1], "http://localhost:18790");
	ck_assert_ptr_null(c->allowed_origins[2]);
	ck_assert_str_eq(c->reload_mode, "hot");
	ck_assert_int_eq(c->reload_debounce_ms, 500);
	ck_assert_str_eq(c->log_level, "debug");
	config_unref(c);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_missing_file)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/nope.json", tmpdir);
	ck_assert_int_eq(config_load(path, NULL, &c, &is), GW_OK);
	ck_assert_int_eq(c->file_exists, 0);
	ck_assert_str_eq(c->hash, "");
	ck_assert_int_eq(c->port, 18789);
	ck_assert_ptr_null(c->mode);
	ck_assert(json_is_object(c->root));
	config_unref(c);
}
END_TEST

START_TEST(test_hash)
{
	const char *text = "{ gateway: { mode: 'local' } }\n";
	char want[65];
	struct gw_config *c = expect_ok(text, NULL);

	util_sha256_hex(text, strlen(text), want);
	ck_assert_str_eq(c->hash, want);
	config_unref(c);
}
END_TEST

/* ---- error kinds --------------------------------------------------------- */

START_TEST(test_err_unknown_keys)
{
	expect_issue("{ gateway: { bogus: 1 } }", NULL,
		     "- gateway.bogus: Unrecognized key: \"bogus\"");
	expect_issue("{ cacheRetention: 1 }", NULL,
		     "- cacheRetention: Unrecognized key: \"cacheRetention\"");
	expect_issue("{ gateway: { auth: { rateLimit: { max: 1 } } } }", NULL,
		     "- gateway.auth.rateLimit.max: Unrecognized key: \"max\"");
	expect_issue("{ gateway: { http: { endpoints: { models: { enabled: "
		     "'yes' } } } } }", NULL,
		     "- gateway.http.endpoints.models.enabled: expected "
		     "boolean, received string");
	expect_issue("[1]", NULL, "- <root>: expected object, received array");
}
END_TEST

START_TEST(test_err_types)
{
	expect_issue("{ gateway: { port: '18789' } }", NULL,
		     "- gateway.port: expected integer, received string");
	expect_issue("{ gateway: { port: 1.5 } }", NULL,
		     "- gateway.port: expected integer, received number");
	expect_issue("{ gateway: { port: 70000 } }", NULL,
		     "- gateway.port: invalid value 70000 (expected an "
		     "integer between 1 and 65535)");
	expect_issue("{ gateway: 'x' }", NULL,
		     "- gateway: expected object, received string");
	expect_issue("{ gateway: { trustedProxies: '127.0.0.1' } }", NULL,
		     "- gateway.trustedProxies: expected array, received "
		     "string");
	expect_issue("{ gateway: { trustedProxies: ['127.0.0.1', 5] } }",
		     NULL, "- gateway.trustedProxies.1: expected string, "
		     "received number");
	expect_issue("{ gateway: { auth: { allowTailscale: null } } }", NULL,
		     "- gateway.auth.allowTailscale: expected boolean, "
		     "received null");
	expect_issue("{ gateway: { auth: { token: 5 } } }", NULL,
		     "- gateway.auth.token: expected string or SecretRef "
		     "object, received number");
	expect_issue("{ agents: { defaults: { model: 5 } } }", NULL,
		     "- agents.defaults.model: expected string or object, "
		     "received number");
}
END_TEST

START_TEST(test_err_enums)
{
	expect_issue("{ gateway: { bind: 'x' } }", NULL,
		     "- gateway.bind: invalid value \"x\" (expected one of: "
		     "auto, loopback, lan, tailnet, custom)");
	expect_issue("{ gateway: { bind: '0.0.0.0' } }", NULL,
		     "- gateway.bind: invalid value \"0.0.0.0\" (expected one "
		     "of: auto, loopback, lan, tailnet, custom); use \"lan\" "
		     "to listen on all interfaces");
	expect_issue("{ gateway: { bind: 'localhost' } }", NULL,
		     "- gateway.bind: invalid value \"localhost\" (expected "
		     "one of: auto, loopback, lan, tailnet, custom); use "
		     "\"loopback\" (127.0.0.1 and ::1)");
	expect_issue("{ gateway: { mode: 'cloud' } }", NULL,
		     "- gateway.mode: invalid value \"cloud\" (expected one "
		     "of: local, remote)");
	expect_issue("{ gateway: { auth: { mode: 'magic' } } }", NULL,
		     "- gateway.auth.mode: invalid value \"magic\" (expected "
		     "one of: none, token, password, trusted-proxy)");
	expect_issue("{ gateway: { reload: { mode: 'sometimes' } } }", NULL,
		     "- gateway.reload.mode: invalid value \"sometimes\" "
		     "(expected one of: off, hot, restart, hybrid)");
	expect_issue("{ gateway: { bind: 'custom', customBindHost: "
		     "'10.0.0.300' } }", NULL,
		     "- gateway.customBindHost: invalid IPv4 address "
		     "\"10.0.0.300\"");
	expect_issue("{ gateway: { bind: 'custom' } }", NULL,
		     "- gateway.customBindHost: gateway.bind=custom requires "
		     "a valid IPv4 customBindHost, got \"\"");
	expect_issue("{ gateway: { tls: { enabled: true } } }", NULL,
		     "- gateway.tls.enabled: TLS is not supported on the "
		     "gateway port; terminate TLS in front (reverse proxy, "
		     "tailscale serve, SSH tunnel)");
	expect_issue("{ gateway: { controlUi: { basePath: 'ui' } } }", NULL,
		     "- gateway.controlUi.basePath: invalid path \"ui\" "
		     "(expected a URL path starting with /)");
}
END_TEST

START_TEST(test_err_parse)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;

	ck_assert_int_eq(load_text("{\n  gateway: {\n    port: ,\n  }\n}\n",
				   NULL, &c, &is), GW_ECONFIG);
	ck_assert_int_eq(is.n, 1);
	ck_assert_str_eq(is.v[0].path, "<root>");
	ck_assert_msg(strncmp(is.v[0].message, "JSON5 parse error at line 3 "
			      "column ", 33) == 0, "%s", is.v[0].message);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_err_secret_ref_shape)
{
	expect_issue("{ gateway: { auth: { password: { source: 'vault', id: "
		     "'x' } } } }", NULL,
		     "- gateway.auth.password.source: invalid value \"vault\" "
		     "(expected one of: env, file, exec, store)");
	expect_issue("{ gateway: { auth: { password: { source: 'env', id: "
		     "'X', extra: 1 } } } }", NULL,
		     "- gateway.auth.password.extra: Unrecognized key: "
		     "\"extra\"");
	expect_issue("{ gateway: { auth: { password: { source: 'env' } } } }",
		     NULL, "- gateway.auth.password: SecretRef requires a "
		     "non-empty \"id\"");
}
END_TEST

START_TEST(test_err_multiple)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;

	ck_assert_int_eq(load_text("{ gateway: { port: 'x', bind: 'y', zz: 1 "
				   "}, yy: 2 }", NULL, &c, &is), GW_ECONFIG);
	ck_assert_int_eq(is.n, 4);
	ck_assert_str_eq(is.v[0].path, "gateway.port");
	ck_assert_str_eq(is.v[1].path, "gateway.bind");
	ck_assert_str_eq(is.v[2].path, "gateway.zz");
	ck_assert_str_eq(is.v[3].path, "yy");
	config_issues_free(&is);
}
END_TEST

START_TEST(test_issues_print)
{
	struct config_issues is = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	config_issues_add(&is, "gateway.bogus", "Unrecognized key: \"%s\"",
			  "bogus");
	config_issues_add(&is, "gateway.port",
			  "expected integer, received string");
	config_issues_print(f, "/home/u/.openclaw/openclaw.json", &is);
	fclose(f);
	ck_assert_str_eq(buf, "Invalid config at "
			 "/home/u/.openclaw/openclaw.json:\n"
			 "- gateway.bogus: Unrecognized key: \"bogus\"\n"
			 "- gateway.port: expected integer, received string\n"
			 "Config invalid\n");
	free(buf);
	config_issues_free(&is);
}
END_TEST

/* ---- precedence ---------------------------------------------------------- */

START_TEST(test_prec_port)
{
	struct config_overrides ov = { 0 };
	struct gw_config *c;
	const char *file = "{ gateway: { port: 20000 } }";

	c = expect_ok("{}", NULL);
	ck_assert_int_eq(c->port, 18789);
	config_unref(c);
	ov.dev = 1;
	c = expect_ok("{}", &ov);
	ck_assert_int_eq(c->port, 19001);
	config_unref(c);
	c = expect_ok(file, &ov);
	ck_assert_int_eq(c->port, 20000);
	config_unref(c);
	ov.dev = 0;
	setenv("OPENCLAW_GATEWAY_PORT", "20100", 1);
	c = expect_ok(file, &ov);
	ck_assert_int_eq(c->port, 20100);
	config_unref(c);
	ov.port = 20200;
	c = expect_ok(file, &ov);
	ck_assert_int_eq(c->port, 20200);
	config_unref(c);
	ov.port = 70000;
	expect_issue(file, &ov, "- --port: invalid value 70000 (expected an "
		     "integer between 1 and 65535)");
}
END_TEST

START_TEST(test_prec_port_bad_env)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;

	setenv("OPENCLAW_GATEWAY_PORT", "abc", 1);
	ck_assert_int_eq(load_text("{ gateway: { port: 20000 } }", NULL, &c,
				   &is), GW_OK);
	ck_assert_int_eq(c->port, 20000);
	ck_assert_int_eq(is.nw, 1);
	ck_assert_str_eq(is.w[0].path, "OPENCLAW_GATEWAY_PORT");
	config_unref(c);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_prec_bind)
{
	struct config_overrides ov = { 0 };
	struct gw_config *c;

	c = expect_ok("{}", NULL);
	ck_assert_int_eq(c->bind, BIND_LOOPBACK);
	config_unref(c);
	c = expect_ok("{ gateway: { bind: 'lan' } }", NULL);
	ck_assert_int_eq(c->bind, BIND_LAN);
	config_unref(c);
	ov.bind = "auto";
	c = expect_ok("{ gateway: { bind: 'lan' } }", &ov);
	ck_assert_int_eq(c->bind, BIND_AUTO);
	config_unref(c);
	ov.bind = "tailnet";
	c = expect_ok("{}", &ov);
	ck_assert_int_eq(c->bind, BIND_TAILNET);
	config_unref(c);
	ov.bind = "custom";
	c = expect_ok("{ gateway: { customBindHost: '127.0.0.2' } }", &ov);
	ck_assert_int_eq(c->bind, BIND_CUSTOM);
	ck_assert_str_eq(c->custom_bind_host, "127.0.0.2");
	config_unref(c);
	ov.bind = "0.0.0.0";
	expect_issue("{}", &ov, "- --bind: invalid value \"0.0.0.0\" "
		     "(expected one of: auto, loopback, lan, tailnet, custom); "
		     "use \"lan\" to listen on all interfaces");
	ov.bind = "everywhere";
	expect_issue("{}", &ov, "- --bind: invalid value \"everywhere\" "
		     "(expected one of: auto, loopback, lan, tailnet, "
		     "custom)");
}
END_TEST

START_TEST(test_prec_auth_mode)
{
	struct config_overrides ov = { 0 };
	struct gw_config *c;

	/* default: token (generated) */
	c = expect_ok("{}", NULL);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_TOKEN);
	ck_assert_int_eq(c->auth_token_generated, 1);
	config_unref(c);
	/* default: password when a password is set */
	c = expect_ok("{ gateway: { auth: { password: 'pw' } } }", NULL);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_PASSWORD);
	ck_assert_str_eq(c->auth_password, "pw");
	ck_assert_ptr_null(c->auth_token);
	config_unref(c);
	setenv("OPENCLAW_GATEWAY_PASSWORD", "envpw", 1);
	c = expect_ok("{}", NULL);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_PASSWORD);
	ck_assert_str_eq(c->auth_password, "envpw");
	config_unref(c);
	unsetenv("OPENCLAW_GATEWAY_PASSWORD");
	/* file mode */
	c = expect_ok("{ gateway: { auth: { mode: 'none' } } }", NULL);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_NONE);
	ck_assert_ptr_null(c->auth_token);
	config_unref(c);
	/* --auth beats the file */
	ov.auth_mode = "token";
	c = expect_ok("{ gateway: { auth: { mode: 'none' } } }", &ov);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_TOKEN);
	config_unref(c);
	ov.auth_mode = "bearer";
	expect_issue("{}", &ov, "- --auth: invalid value \"bearer\" (expected "
		     "one of: none, token, password, trusted-proxy)");
	ov.auth_mode = "password";
	expect_issue("{}", &ov, "- gateway.auth.password: gateway auth "
		     "mode=password requires a password (set "
		     "gateway.auth.password or OPENCLAW_GATEWAY_PASSWORD)");
	expect_issue("{ gateway: { auth: { mode: 'trusted-proxy', "
		     "trustedProxy: { userHeader: 'x-user' } } } }", NULL,
		     "- gateway.trustedProxies: gateway auth "
		     "mode=trusted-proxy requires gateway.trustedProxies to "
		     "be configured");
	c = expect_ok("{ gateway: { trustedProxies: ['127.0.0.1'], auth: { "
		      "mode: 'trusted-proxy', trustedProxy: { userHeader: "
		      "'x-user' } } } }", NULL);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_TRUSTED_PROXY);
	config_unref(c);
}
END_TEST

START_TEST(test_prec_token)
{
	struct config_overrides ov = { 0 };
	struct gw_config *c;
	const char *file = "{ gateway: { auth: { token: 'filetok' } } }";

	setenv("OPENCLAW_GATEWAY_TOKEN", "envtok", 1);
	c = expect_ok("{}", NULL);
	ck_assert_str_eq(c->auth_token, "envtok");
	ck_assert_int_eq(c->auth_token_generated, 0);
	config_unref(c);
	/* config first, then env (as upstream) */
	c = expect_ok(file, NULL);
	ck_assert_str_eq(c->auth_token, "filetok");
	config_unref(c);
	ov.token = "clitok";
	c = expect_ok(file, &ov);
	ck_assert_str_eq(c->auth_token, "clitok");
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_TOKEN);
	config_unref(c);
}
END_TEST

START_TEST(test_prec_password)
{
	struct config_overrides ov = { 0 };
	struct gw_config *c;
	const char *file = "{ gateway: { auth: { password: 'filepw' } } }";

	setenv("OPENCLAW_GATEWAY_PASSWORD", "envpw", 1);
	c = expect_ok(file, NULL);
	ck_assert_str_eq(c->auth_password, "filepw");
	config_unref(c);
	ov.password = "clipw";
	c = expect_ok(file, &ov);
	ck_assert_str_eq(c->auth_password, "clipw");
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_PASSWORD);
	config_unref(c);
}
END_TEST

START_TEST(test_both_credentials)
{
	struct config_overrides ov = { 0 };
	struct gw_config *c;
	const char *both = "{ gateway: { auth: { token: 't', password: 'p' } "
			   "} }";

	expect_issue(both, NULL, "- gateway.auth.mode: both token and "
		     "password are set; set gateway.auth.mode explicitly");
	setenv("OPENCLAW_GATEWAY_TOKEN", "envtok", 1);
	expect_issue("{ gateway: { auth: { password: 'p' } } }", NULL,
		     "- gateway.auth.mode: both token and password are set; "
		     "set gateway.auth.mode explicitly");
	unsetenv("OPENCLAW_GATEWAY_TOKEN");
	c = expect_ok("{ gateway: { auth: { mode: 'token', token: 't', "
		      "password: 'p' } } }", NULL);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_TOKEN);
	config_unref(c);
	ov.auth_mode = "password";
	c = expect_ok(both, &ov);
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_PASSWORD);
	config_unref(c);
}
END_TEST

START_TEST(test_generated_token)
{
	struct gw_config *a = expect_ok("{ gateway: { auth: { mode: 'token' } "
					"} }", NULL);
	struct gw_config *b = expect_ok("{}", NULL), *c;
	struct config_overrides ov = { 0 };
	size_t i;

	ck_assert_int_eq(a->auth_token_generated, 1);
	ck_assert_int_eq(strlen(a->auth_token), 43);
	for (i = 0; a->auth_token[i]; i++)
		ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				 "qrstuvwxyz0123456789-_", a->auth_token[i]));
	ck_assert_str_ne(a->auth_token, b->auth_token);
	/* a reload keeps the token generated at start */
	ov.generated_token = a->auth_token;
	c = expect_ok("{}", &ov);
	ck_assert_str_eq(c->auth_token, a->auth_token);
	ck_assert_int_eq(c->auth_token_generated, 1);
	config_unref(c);
	/* a configured token wins over the carried one */
	c = expect_ok("{ gateway: { auth: { token: 'real' } } }", &ov);
	ck_assert_str_eq(c->auth_token, "real");
	ck_assert_int_eq(c->auth_token_generated, 0);
	config_unref(c);
	config_unref(a);
	config_unref(b);
}
END_TEST

/* ---- ${VAR} -------------------------------------------------------------- */

START_TEST(test_env_subst)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	const json_t *r;

	setenv("TEST_CFG_VAR", "http://127.0.0.1:9", 1);
	setenv("TEST_CFG_EMPTY", "", 1);
	ck_assert_int_eq(load_text(
		"{ models: { providers: { a: { baseUrl: '${TEST_CFG_VAR}/v1', "
		"models: [{ id: '$${TEST_CFG_VAR}' }, { id: '${lower}' }, "
		"{ id: '${TEST_CFG_MISSING}-x' }, { id: 'a$b${TEST_CFG_EMPTY}'"
		" }, { id: '${TEST_CFG_VAR' }] } } } }", NULL, &c, &is),
		GW_OK);
	r = config_get(c->root, "models.providers.a");
	ck_assert_str_eq(json_string_value(json_object_get(r, "baseUrl")),
			 "http://127.0.0.1:9/v1");
	r = json_object_get(r, "models");
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(r, 0), "id")), "${TEST_CFG_VAR}");
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(r, 1), "id")), "${lower}");
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(r, 2), "id")), "${TEST_CFG_MISSING}-x");
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(r, 3), "id")), "a$b${TEST_CFG_EMPTY}");
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(r, 4), "id")), "${TEST_CFG_VAR");
	ck_assert_int_eq(is.n, 0);
	ck_assert_int_eq(is.nw, 2);
	ck_assert_str_eq(is.w[0].path, "models.providers.a.models.2.id");
	ck_assert_str_eq(is.w[0].message, "environment variable "
			 "\"TEST_CFG_MISSING\" is missing or empty; left "
			 "unresolved");
	ck_assert_str_eq(is.w[1].path, "models.providers.a.models.3.id");
	config_unref(c);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_env_subst_secret)
{
	struct gw_config *c;

	setenv("TEST_CFG_SECRET", "s3cret", 1);
	c = expect_ok("{ gateway: { auth: { token: '${TEST_CFG_SECRET}' } } }",
		      NULL);
	ck_assert_str_eq(c->auth_token, "s3cret");
	ck_assert_int_eq(c->auth_token_generated, 0);
	config_unref(c);
	unsetenv("TEST_CFG_SECRET");
	expect_issue("{ gateway: { auth: { token: '${TEST_CFG_SECRET}' } } }",
		     NULL, "- gateway.auth.token: required secret is "
		     "unavailable: provider \"default\" (source env): "
		     "environment variable is missing or empty");
}
END_TEST

/* ---- SecretRef ----------------------------------------------------------- */

START_TEST(test_secret_env)
{
	struct gw_config *c;

	setenv("TEST_CFG_SECRET", "envsecret", 1);
	c = expect_ok("{ gateway: { auth: { password: { source: 'env', "
		      "provider: 'default', id: 'TEST_CFG_SECRET' } } } }",
		      NULL);
	ck_assert_str_eq(c->auth_password, "envsecret");
	ck_assert_int_eq(c->auth_mode, AUTH_MODE_PASSWORD);
	config_unref(c);
	/* $NAME shorthand on a secret field */
	c = expect_ok("{ gateway: { auth: { mode: 'password', "
		      "password: '$TEST_CFG_SECRET' } } }", NULL);
	ck_assert_str_eq(c->auth_password, "envsecret");
	config_unref(c);
	unsetenv("TEST_CFG_SECRET");
	expect_issue("{ gateway: { auth: { password: { source: 'env', "
		     "provider: 'default', id: 'TEST_CFG_SECRET' } } } }", NULL,
		     "- gateway.auth.password: required secret is unavailable: "
		     "provider \"default\" (source env): environment variable "
		     "is missing or empty");
}
END_TEST

START_TEST(test_secret_file)
{
	struct gw_config *c;
	char text[PATH_MAX + 200];
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", put("secret.txt", "filesecret\n"));
	chmod(path, 0600);
	snprintf(text, sizeof(text), "{ gateway: { auth: { token: { source: "
		 "'file', provider: 'f', id: 'value' } } }, secrets: { "
		 "providers: { f: { source: 'file', path: '%s', mode: "
		 "'singleValue' } } } }", path);
	c = expect_ok(text, NULL);
	ck_assert_str_eq(c->auth_token, "filesecret");
	ck_assert_int_eq(c->auth_token_generated, 0);
	config_unref(c);
	snprintf(text, sizeof(text), "{ gateway: { auth: { token: { source: "
		 "'file', provider: 'f', id: 'value' } } }, secrets: { "
		 "providers: { f: { source: 'file', path: '%s/none', mode: "
		 "'singleValue' } } } }", tmpdir);
	expect_issue(text, NULL, "- gateway.auth.token: required secret is "
		     "unavailable: provider \"f\" (source file): No such file "
		     "or directory");
	/* file refs need a registered provider */
	expect_issue("{ gateway: { auth: { token: { source: 'file', id: "
		     "'/a' } } } }", NULL, "- gateway.auth.token: provider "
		     "\"default\" is not configured (secrets.providers."
		     "default)");
}
END_TEST

START_TEST(test_secret_exec)
{
	struct gw_config *c;
	char text[PATH_MAX + 300], sh[PATH_MAX];

	snprintf(sh, sizeof(sh), "%s", put("res.sh", "#!/bin/sh\ncat >/dev/null\necho '{\"protocolVersion\""
		 ":1,\"values\":{\"gw/token\":\"execsecret\"}}'\n"));
	chmod(sh, 0700);
	snprintf(text, sizeof(text), "{ gateway: { auth: { token: { source: "
		 "'exec', provider: 'x', id: 'gw/token' } } }, secrets: { "
		 "providers: { x: { source: 'exec', command: '%s' } } } }", sh);
	c = expect_ok(text, NULL);
	ck_assert_str_eq(c->auth_token, "execsecret");
	config_unref(c);
	snprintf(text, sizeof(text), "{ gateway: { auth: { token: { source: "
		 "'exec', provider: 'x', id: 'gw/other' } } }, secrets: { "
		 "providers: { x: { source: 'exec', command: '%s' } } } }", sh);
	expect_issue(text, NULL, "- gateway.auth.token: required secret is "
		     "unavailable: provider \"x\" (source exec): resolver "
		     "returned no value");
	expect_issue("{ gateway: { auth: { token: { source: 'exec', provider: "
		     "'x', id: 'a' } } }, secrets: { providers: { x: { source: "
		     "'exec', command: '/bin/false' } } } }", NULL,
		     "- gateway.auth.token: required secret is unavailable: "
		     "provider \"x\" (source exec): command failed (exit "
		     "status 1)");
	expect_issue("{ gateway: { auth: { token: { source: 'exec', provider: "
		     "'x', id: 'a' } } }, secrets: { providers: { x: { source: "
		     "'exec', command: 'bin/false' } } } }", NULL,
		     "- secrets.providers.x: command: expected an absolute "
		     "path");
}
END_TEST

START_TEST(test_secret_exec_timeout)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	int64_t t0 = util_mono_ms();

	ck_assert_int_eq(load_text("{ gateway: { auth: { token: { source: "
				   "'exec', provider: 'x', id: 'a' } } }, "
				   "secrets: { providers: { x: { source: "
				   "'exec', command: '/bin/sleep', args: "
				   "['30'], timeoutMs: 200 } } } }",
				   NULL, &c, &is), GW_ECONFIG);
	ck_assert_int_lt(util_mono_ms() - t0, 10000);
	ck_assert_str_eq(is.v[0].message, "required secret is unavailable: "
			 "provider \"x\" (source exec): timed out after 200 "
			 "ms");
	config_issues_free(&is);
}
END_TEST

/* ---- $include ------------------------------------------------------------ */

START_TEST(test_include_fixture)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	const json_t *a;
	int i;

	ck_assert_int_eq(config_load(fixture("inc/main.json5"), NULL, &c, &is),
			 GW_OK);
	ck_assert_str_eq(c->mode, "local");
	ck_assert_int_eq(c->port, 20001); /* sibling beats included */
	ck_assert_str_eq(c->auth_token, "from-include"); /* nested */
	ck_assert_str_eq(c->log_level, "info");
	ck_assert_str_eq(json_string_value(config_get(c->root, "models.mode")),
			 "merge");
	a = config_get(c->root, "models.providers.a.models");
	ck_assert_int_eq(json_array_size(a), 2); /* arrays concatenate */
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(a, 1), "id")), "m2");
	ck_assert_ptr_nonnull(config_get(c->root, "models.providers.b"));
	ck_assert_ptr_null(config_get(c->root, "$include"));
	for (i = 0; c->included_files[i]; i++)
		ck_assert(c->included_files[i][0] == '/');
	ck_assert_int_eq(i, 4);
	/* siblings resolve before the $include itself */
	ck_assert_ptr_nonnull(strstr(c->included_files[0], "models-a.json5"));
	ck_assert_ptr_nonnull(strstr(c->included_files[1], "models-b.json5"));
	ck_assert_ptr_nonnull(strstr(c->included_files[2], "base.json5"));
	ck_assert_ptr_nonnull(strstr(c->included_files[3], "sub/auth.json5"));
	config_unref(c);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_include_whole_value)
{
	struct gw_config *c;

	put("gw.json5", "{ mode: 'local', port: 20002 }");
	put("origins.json5", "['https://a.example']");
	c = expect_ok("{ gateway: { $include: 'gw.json5' }, $schema: 'x' }",
		      NULL);
	ck_assert_int_eq(c->port, 20002);
	config_unref(c);
	c = expect_ok("{ gateway: { controlUi: { allowedOrigins: { $include: "
		      "'origins.json5' } } } }", NULL);
	ck_assert_str_eq(c->allowed_origins[0], "https://a.example");
	config_unref(c);
	expect_issue("{ gateway: { controlUi: { allowedOrigins: { $include: "
		     "'origins.json5', x: 1 } } } }", NULL,
		     "- gateway.controlUi.allowedOrigins.$include: included "
		     "content must be an object when sibling keys are present");
	expect_issue("{ gateway: { $include: 5 } }", NULL,
		     "- gateway.$include: $include must be a string or an "
		     "array of strings");
}
END_TEST

START_TEST(test_include_cycle)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;

	put("a.json5", "{ $include: 'b.json5' }");
	put("b.json5", "{ $include: './a.json5' }");
	ck_assert_int_eq(load_text("{ gateway: { $include: 'a.json5' } }",
				   NULL, &c, &is), GW_ECONFIG);
	ck_assert_int_eq(is.n, 1);
	ck_assert_str_eq(is.v[0].path, "gateway.$include");
	ck_assert_msg(strncmp(is.v[0].message, "circular $include: ", 19) ==
		      0, "%s", is.v[0].message);
	ck_assert_msg(strstr(is.v[0].message, "/a.json5 -> ") &&
		      strstr(is.v[0].message, "/b.json5 -> "), "%s",
		      is.v[0].message);
	config_issues_free(&is);

	/* self include of the main file */
	ck_assert_int_eq(load_text("{ $include: 'openclaw.json' }", NULL, &c,
				   &is), GW_ECONFIG);
	ck_assert_msg(strstr(is.v[0].message, "circular"), "%s",
		      is.v[0].message);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_include_escape)
{
	char dir[PATH_MAX], outside[PATH_MAX], want[3 * PATH_MAX];
	char cfg[PATH_MAX], real[PATH_MAX];
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	FILE *f;

	snprintf(outside, sizeof(outside), "%s", put("outside.json5",
						     "{ port: 20003 }"));
	snprintf(cfg, sizeof(cfg), "%s", put("cfg/openclaw.json",
		 "{ gateway: { $include: '../outside.json5' } }"));
	snprintf(dir, sizeof(dir), "%s/cfg", tmpdir);
	ck_assert_ptr_nonnull(realpath(outside, real));
	ck_assert_int_eq(config_load(cfg, NULL, &c, &is), GW_ECONFIG);
	ck_assert_int_eq(is.n, 1);
	snprintf(want, sizeof(want), "include \"../outside.json5\" resolves "
		 "to %s, outside the config directory ", real);
	ck_assert_msg(strncmp(is.v[0].message, want, strlen(want)) == 0,
		      "%s", is.v[0].message);
	config_issues_free(&is);

	/* a symlink inside the dir pointing out is re-checked */
	snprintf(want, sizeof(want), "%s/link.json5", dir);
	ck_assert_int_eq(symlink(outside, want), 0);
	f = fopen(cfg, "w");
	fputs("{ gateway: { $include: 'link.json5' } }", f);
	fclose(f);
	ck_assert_int_eq(config_load(cfg, NULL, &c, &is), GW_ECONFIG);
	ck_assert_msg(strstr(is.v[0].message, "outside the config"), "%s",
		      is.v[0].message);
	config_issues_free(&is);

	/* OPENCLAW_INCLUDE_ROOTS allows it */
	setenv("OPENCLAW_INCLUDE_ROOTS", "/nonexistent:", 1);
	ck_assert_int_eq(config_load(cfg, NULL, &c, &is), GW_ECONFIG);
	config_issues_free(&is);
	snprintf(want, sizeof(want), "/nonexistent:%s", tmpdir);
	setenv("OPENCLAW_INCLUDE_ROOTS", want, 1);
	ck_assert_int_eq(config_load(cfg, NULL, &c, &is), GW_OK);
	ck_assert_int_eq(c->port, 20003);
	config_unref(c);
	config_issues_free(&is);
}
END_TEST

START_TEST(test_include_depth)
{
	char name[32], text[64];
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	int i;

	/* main -> d1 -> ... -> d10 is fine (10 levels) */
	for (i = 1; i <= 11; i++) {
		snprintf(name, sizeof(name), "d%d.json5", i);
		snprintf(text, sizeof(text), "{ $include: 'd%d.json5' }",
			 i + 1);
		put(name, i == 10 ? "{ port: 20004 }" : text);
	}
	put("d11.json5", "{ $include: 'd12.json5' }");
	put("d12.json5", "{ port: 20005 }");
	ck_assert_int_eq(load_text("{ gateway: { $include: 'd1.json5' } }",
				   NULL, &c, &is), GW_OK);
	ck_assert_int_eq(c->port, 20004);
	config_unref(c);
	config_issues_free(&is);
	/* main -> d2 .. d12: 11 levels */
	put("d10.json5", "{ $include: 'd11.json5' }");
	ck_assert_int_eq(load_text("{ gateway: { $include: 'd2.json5' } }",
				   NULL, &c, &is), GW_ECONFIG);
	ck_assert_str_eq(is.v[0].message,
			 "$include nesting exceeds 10 levels at \"d12.json5\"");
	config_issues_free(&is);
}
END_TEST

START_TEST(test_include_errors)
{
	struct config_issues is = { 0 };
	struct gw_config *c = NULL;
	char *longp = xmalloc(5000);

	ck_assert_int_eq(load_text("{ gateway: { $include: 'missing.json5' } "
				   "}", NULL, &c, &is), GW_ECONFIG);
	ck_assert_str_eq(is.v[0].path, "gateway.$include");
	ck_assert_msg(strstr(is.v[0].message, "cannot resolve include "
			     "\"missing.json5\"") &&
		      strstr(is.v[0].message, "No such file or directory"),
		      "%s", is.v[0].message);
	config_issues_free(&is);

	put("broken.json5", "{ port: }");
	ck_assert_int_eq(load_text("{ gateway: { $include: ['broken.json5'] "
				   "} }", NULL, &c, &is), GW_ECONFIG);
	ck_assert_msg(strstr(is.v[0].message, "JSON5 parse error in ") &&
		      strstr(is.v[0].message, "broken.json5 at line 1 "),
		      "%s", is.v[0].message);
	config_issues_free(&is);

	memset(longp, 'a', 4999);
	longp[0] = '{';
	memcpy(longp + 1, " $include: '", 12);
	strcpy(longp + 4990, "' }");
	ck_assert_int_eq(load_text(longp, NULL, &c, &is), GW_ECONFIG);
	ck_assert_msg(strstr(is.v[0].message, "include path is too long"),
		      "%s", is.v[0].message);
	config_issues_free(&is);
	free(longp);

	/* included content is validated too */
	put("bad.json5", "{ bogus: true }");
	expect_issue("{ gateway: { $include: 'bad.json5' } }", NULL,
		     "- gateway.bogus: Unrecognized key: \"bogus\"");
	/* ${VAR} works inside included files */
	setenv("TEST_CFG_VAR", "20006", 1);
	put("port.json5", "{ mode: '${TEST_CFG_VAR}' }");
	expect_issue("{ gateway: { $include: 'port.json5' } }", NULL,
		     "- gateway.mode: invalid value \"20006\" (expected one "
		     "of: local, remote)");
}
END_TEST

/* ---- snapshots ----------------------------------------------------------- */

START_TEST(test_refcount)
{
	struct gw_config *c = expect_ok("{}", NULL), *r;

	ck_assert_int_eq(atomic_load(&c->refs), 1);
	ck_assert_ptr_eq(config_ref(c), c);
	ck_assert_int_eq(atomic_load(&c->refs), 2);
	config_unref(c);
	ck_assert_ptr_null(config_current());
	config_set_current(c);
	ck_assert_int_eq(atomic_load(&c->refs), 2);
	config_unref(c); /* the current pointer keeps it alive */
	r = config_current();
	ck_assert_ptr_eq(r, c);
	ck_assert_int_eq(atomic_load(&c->refs), 2);
	config_unref(r);
	config_set_current(NULL);
	ck_assert_ptr_null(config_current());
	config_unref(NULL);
	ck_assert_ptr_null(config_ref(NULL));
}
END_TEST

static atomic_int stop_readers;

static void *reader(void *arg)
{
	long n = 0;

	while (!atomic_load(&stop_readers)) {
		struct gw_config *c = config_current();

		if (c) {
			ck_assert_int_gt(c->port, 0);
			n += c->port;
			config_unref(c);
		}
	}
	return (void *)n;
}

START_TEST(test_swap_concurrent)
{
	pthread_t th[3];
	int i;

	for (i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, reader, NULL);
	for (i = 0; i < 3000; i++) {
		struct config_overrides ov = { .port = 1000 + i % 50 };
		struct config_issues is = { 0 };
		struct gw_config *c = NULL;
		char path[PATH_MAX + 32];

		snprintf(path, sizeof(path), "%s/none.json", tmpdir);
		ov.auth_mode = "none";
		ck_assert_int_eq(config_load(path, &ov, &c, &is), GW_OK);
		config_set_current(c);
		config_unref(c);
	}
	atomic_store(&stop_readers, 1);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	config_set_current(NULL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_paths_default);
	tcase_add_test(tc, test_paths_profiles);
	tcase_add_test(tc, test_paths_env_overrides);
	tcase_add_test(tc, test_table_entries);
	tcase_add_test(tc, test_table_lookup);
	tcase_add_test(tc, test_valid_full);
	tcase_add_test(tc, test_valid_json5);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_hash);
	tcase_add_test(tc, test_err_unknown_keys);
	tcase_add_test(tc, test_err_types);
	tcase_add_test(tc, test_err_enums);
	tcase_add_test(tc, test_err_parse);
	tcase_add_test(tc, test_err_secret_ref_shape);
	tcase_add_test(tc, test_err_multiple);
	tcase_add_test(tc, test_issues_print);
	tcase_add_test(tc, test_prec_port);
	tcase_add_test(tc, test_prec_port_bad_env);
	tcase_add_test(tc, test_prec_bind);
	tcase_add_test(tc, test_prec_auth_mode);
	tcase_add_test(tc, test_prec_token);
	tcase_add_test(tc, test_prec_password);
	tcase_add_test(tc, test_both_credentials);
	tcase_add_test(tc, test_generated_token);
	tcase_add_test(tc, test_env_subst);
	tcase_add_test(tc, test_env_subst_secret);
	tcase_add_test(tc, test_secret_env);
	tcase_add_test(tc, test_secret_file);
	tcase_add_test(tc, test_secret_exec);
	tcase_add_test(tc, test_secret_exec_timeout);
	tcase_add_test(tc, test_include_fixture);
	tcase_add_test(tc, test_include_whole_value);
	tcase_add_test(tc, test_include_cycle);
	tcase_add_test(tc, test_include_escape);
	tcase_add_test(tc, test_include_depth);
	tcase_add_test(tc, test_include_errors);
	tcase_add_test(tc, test_refcount);
	tcase_add_test(tc, test_swap_concurrent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
