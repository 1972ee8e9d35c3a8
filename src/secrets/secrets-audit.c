/* `secrets audit` and `secrets apply` plans. The audit reads the config
 * (with its $include files), .env in the state and config directories and
 * every stored config version; findings name files and paths, never
 * values. A plan is validated completely before anything is written;
 * applying it yields a new config root, and the plaintext it migrated is
 * scrubbed from .env and from the stored config versions (each target is
 * replaced there by its ref, so a rollback still yields a working config). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config-reload.h"
#include "config/config.h"
#include "core/common.h"
#include "core/json5.h"
#include "core/util.h"
#include "secrets/secrets-int.h"
#include "secrets/secrets.h"
#include "store/store.h"

#define SECRETS_PLAN_TARGETS_MAX 10000

/* ---- secret fields ---------------------------------------------------- */

typedef void (*secrets_field_fn)(const char *path, const json_t *v,
				 void *arg);

static void secrets_audit_walk(const json_t *node, char **key, size_t k,
			       size_t nk, char *path, secrets_field_fn fn,
			       void *arg)
{
	const char *name;
	const json_t *v;
	size_t plen = strlen(path);

	if (k == nk) {
		fn(path, node, arg);
		return;
	}
	if (!json_is_object(node))
		return;
	json_object_foreach((json_t *)node, name, v) {
		if (strcmp(key[k], "*") != 0 && strcmp(key[k], name) != 0)
			continue;
		if (plen + strlen(name) + 2 > 1024)
			continue;
		snprintf(path + plen, 1024 - plen, "%s%s", plen ? "." : "",
			 name);
		secrets_audit_walk(v, key, k + 1, nk, path, fn, arg);
		path[plen] = 0;
	}
}

/* fn for every value at a secret path of the option table. */
static void secrets_audit_fields(const json_t *root, secrets_field_fn fn,
				 void *arg)
{
	const struct config_option *t;
	size_t n, i;

	t = config_options_table(&n);
	for (i = 0; i < n; i++) {
		char *copy, *save = NULL, *tok, *key[16], path[1024] = "";
		size_t nk = 0;

		if (t[i].type != CFG_SECRET)
			continue;
		copy = xstrdup(t[i].key);
		for (tok = strtok_r(copy, ".", &save); tok && nk < 16;
		     tok = strtok_r(NULL, ".", &save))
			key[nk++] = tok;
		secrets_audit_walk(root, key, 0, nk, path, fn, arg);
		free(copy);
	}
}

/* 1 if v is plaintext (a non-empty string that is not a ref). */
static int secrets_audit_plain(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n;

	if (!s || !*s)
		return 0;
	if (s[0] == '$') {
		n = strlen(s);
		if (s[1] == '{' && s[n - 1] == '}')
			return 0;
		if (secrets_env_name_valid(s + 1))
			return 0;
	}
	return 1;
}

/* The canonical target type of a secret path ("models.providers.apiKey"
 * for models.providers.x.apiKey), written into out. */
static void secrets_audit_type(const char *path, char *out, size_t len)
{
	const struct config_option *o = config_options_lookup(path);
	const char *k = o ? o->key : path;
	size_t w = 0;

	while (*k && w + 1 < len) {
		if (k[0] == '*' && (k[1] == '.' || !k[1])) {
			k += k[1] ? 2 : 1;
			if (w && !*k)
				w--;
			continue;
		}
		out[w++] = *k++;
	}
	out[w] = 0;
}

static void secrets_plain_collect(const char *path, const json_t *v,
				  void *arg)
{
	char type[256];

	if (!secrets_audit_plain(v) ||
	    strcmp(json_string_value(v), CONFIG_REDACTED) == 0)
		return;
	secrets_audit_type(path, type, sizeof(type));
	json_array_append_new(arg, json_pack("{s:s,s:s,s:O}", "path", path,
					     "type", type, "value", v));
}

json_t *secrets_plaintext_fields(const json_t *root)
{
	json_t *a = json_array();

	secrets_audit_fields(root, secrets_plain_collect, a);
	return a;
}

/* ---- dotenv ------------------------------------------------------------ */

int secrets_dotenv_parse(char *p, secrets_dotenv_fn fn, void *arg, int *bad)
{
	int line = 1;

	while (*p) {
		char *name, *v, *w;
		int at = line;

		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p == '\n') {
			p++;
			line++;
			continue;
		}
		if (*p == '#') {
			p += strcspn(p, "\n");
			continue;
		}
		if (strncmp(p, "export ", 7) == 0)
			p += 7;
		name = p;
		while ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		       (*p >= 'a' && *p <= 'z') || *p == '_')
			p++;
		if (*p != '=' || p == name) {
			*bad = line;
			return -1;
		}
		*p++ = 0;
		if (*p == '"' || *p == '\'') {
			char q = *p++;

			v = w = p;
			while (*p && *p != q) {
				if (*p == '\n')
					line++;
				if (q == '"' && *p == '\\' && p[1]) {
					p++;
					*w++ = *p == 'n' ? '\n' : *p;
					p++;
					continue;
				}
				*w++ = *p++;
			}
			if (*p != q) {
				*bad = line;
				return -1;
			}
			p++;
			*w = 0;
			p += strcspn(p, "\n");
		} else {
			char *h;

			v = p;
			p += strcspn(p, "\n");
			w = p;
			if (*p) {
				*p++ = 0;
				line++;
			}
			h = strstr(v, " #");
			if (h) {
				*h = 0;
				w = h;
			}
			while (w > v && (w[-1] == ' ' || w[-1] == '\t' ||
					 w[-1] == '\r'))
				*--w = 0;
		}
		if (fn(name, v, at, arg) != 0) {
			*bad = at;
			return -1;
		}
	}
	return 0;
}

int secrets_name_is_secret(const char *name)
{
	static const char *const sfx[] = { "_API_KEY", "_TOKEN", "_PASSWORD",
					   "_PRIVATE_KEY", "_SECRET" };
	size_t i, n = strlen(name);

	for (i = 0; i < ARRAY_SIZE(sfx); i++)
		if (n >= strlen(sfx[i]) &&
		    strcmp(name + n - strlen(sfx[i]), sfx[i]) == 0)
			return 1;
	return 0;
}

/* ---- audit ------------------------------------------------------------- */

struct secrets_audit {
	json_t *findings;
	json_t *plains;			/* [[path, file, value]] of the config */
	int plain, unresolved, checked, skipped, residue, legacy;
	const char *file;		/* the file being scanned */
	char *const *includes;		/* with their raw texts */
	char **include_texts;
	const char *prefix;		/* jsonPath prefix (stored versions) */
};

static void secrets_audit_add(struct secrets_audit *a, const char *code,
			      const char *severity, const char *file,
			      const char *path, const char *msg)
{
	json_array_append_new(a->findings, json_pack(
		"{s:s,s:s,s:s,s:s,s:s}", "code", code, "severity", severity,
		"file", file, "jsonPath", path, "message", msg));
}

/* Which file holds the value: an $include whose text has it, else the
 * main file. */
static const char *secrets_audit_file_of(struct secrets_audit *a,
					 const json_t *v)
{
	char *dump = json_dumps(v, JSON_ENCODE_ANY);
	size_t i;
	const char *f = a->file;

	for (i = 0; dump && a->includes && a->includes[i]; i++)
		if (a->include_texts[i] && strstr(a->include_texts[i], dump)) {
			f = a->includes[i];
			break;
		}
	xfree_secret(dump);
	return f;
}

static void secrets_audit_field(const char *path, const json_t *v,
				void *arg)
{
	struct secrets_audit *a = arg;
	char jp[1100];

	snprintf(jp, sizeof(jp), "%s%s", a->prefix ? a->prefix : "", path);
	if (json_is_string(v) &&
	    strcmp(json_string_value(v), CONFIG_REDACTED) == 0) {
		if (a->prefix)
			return;	/* stored versions are redacted */
		a->unresolved++;
		secrets_audit_add(a, "PLACEHOLDER_VALUE", "error",
				  secrets_audit_file_of(a, v), jp,
				  "the value is the redaction placeholder");
		return;
	}
	if (!secrets_audit_plain(v))
		return;
	a->plain++;
	secrets_audit_add(a, "PLAINTEXT_FOUND", "warn",
			  a->prefix ? a->file : secrets_audit_file_of(a, v),
			  jp, "plaintext secret; move it behind a SecretRef");
	if (!a->prefix)
		json_array_append_new(a->plains, json_pack(
			"[s,s,O]", jp, secrets_audit_file_of(a, v), v));
}

static void secrets_audit_ref(void *arg, const char *path,
			      const char *source, const char *provider,
			      int outcome, const char *reason)
{
	struct secrets_audit *a = arg;
	char msg[400];

	a->checked++;
	if (outcome == SECRETS_CHECK_SKIPPED) {
		a->skipped++;
		return;
	}
	if (outcome != SECRETS_CHECK_UNRESOLVED)
		return;
	a->unresolved++;
	snprintf(msg, sizeof(msg), "SecretRef does not resolve: provider "
		 "\"%s\" (source %s): %s", provider, source,
		 reason ? reason : "?");
	secrets_audit_add(a, "REF_UNRESOLVED", "error", a->file, path, msg);
}

struct secrets_audit_env {
	struct secrets_audit *a;
	const char *file;
};

static int secrets_audit_env_pair(const char *name, const char *value,
				  int line, void *arg)
{
	struct secrets_audit_env *e = arg;

	(void)line;
	if (*value && secrets_name_is_secret(name)) {
		e->a->plain++;
		secrets_audit_add(e->a, "PLAINTEXT_FOUND", "warn", e->file,
				  name, "plaintext secret in a .env file");
	}
	return 0;
}

static void secrets_audit_env_file(struct secrets_audit *a, const char *path)
{
	struct secrets_audit_env e = { a, path };
	char *text = NULL;
	size_t n = 0;
	int bad = 0;

	if (util_read_file(path, 4u * 1024 * 1024, &text, &n) <= 0)
		return;
	secrets_dotenv_parse(text, secrets_audit_env_pair, &e, &bad);
	explicit_bzero(text, n);
	free(text);
}

static void secrets_audit_version(int64_t id, const char *text, void *arg)
{
	struct secrets_audit *a = arg;
	json_t *root = json_loads(text, 0, NULL);
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "config_snapshots[%lld].",
		 (long long)id);
	a->prefix = prefix;
	if (root)
		secrets_audit_fields(root, secrets_audit_field, a);
	a->prefix = NULL;
	json_decref(root);
}

/* Parse the config file with its $includes (no ${VAR} substitution). */
static json_t *secrets_audit_load(const char *path, char ***files,
				  struct config_issues *is)
{
	struct json5_error perr;
	json_t *parsed = NULL, *root = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rd = config_read_file(path, &buf, &len);

	*files = NULL;
	if (rd == 0)
		return json_object();
	if (rd < 0) {
		config_issues_add(is, "<root>", "cannot read %s: %s", path,
				  strerror(-rd));
		return NULL;
	}
	if (json5_parse(buf, len, &parsed, &perr) < 0) {
		config_issues_add(is, "<root>", "JSON5 parse error at line %d "
				  "column %d: %s", perr.line, perr.column,
				  perr.message);
	} else {
		root = config_env_includes(parsed, path, files, is);
	}
	json_decref(parsed);
	explicit_bzero(buf, len);
	free(buf);
	return root;
}

/* Plaintext in the config that duplicates a store entry's value. */
static void secrets_audit_residue(struct secrets_audit *a, sqlite3 *db,
				  const char *state_dir)
{
	struct store_secret *v = NULL;
	uint8_t key[SECRETS_KEY_LEN];
	char why[300];
	size_t n = 0, i, j;

	if (!json_array_size(a->plains) ||
	    store_secrets_list_db(db, &v, &n) != GW_OK)
		return;
	if (n && secrets_key_load(state_dir, 0, key, why, sizeof(why)) ==
	    GW_OK) {
		for (i = 0; i < n; i++) {
			char *val = NULL, msg[200];
			const json_t *p;

			if (secrets_unseal(key, v[i].name, v[i].value,
					   v[i].value_len, &val, NULL) != GW_OK)
				continue;
			json_array_foreach(a->plains, j, p) {
				if (strcmp(json_string_value(json_array_get(
					p, 2)), val) != 0)
					continue;
				a->residue++;
				snprintf(msg, sizeof(msg), "plaintext duplicates "
					 "the store entry %s; use a store ref",
					 v[i].name);
				secrets_audit_add(a, "STORE_PLAINTEXT_RESIDUE",
						  "warn", json_string_value(
							  json_array_get(p, 1)),
						  json_string_value(
							  json_array_get(p, 0)),
						  msg);
			}
			xfree_secret(val);
		}
		explicit_bzero(key, sizeof(key));
	}
	for (i = 0; i < n; i++)
		store_secret_clear(&v[i]);
	free(v);
}

/* ---- legacy auth sources (OpenClaw's LEGACY_RESIDUE) --------------------
 *
 * OpenClaw retired the per-agent auth files for its SQLite auth store; the
 * audit reports, by name only (never read), each retired source still on
 * disk and each archive its migration left: auth-profiles.json and
 * auth.json (warn), auth-state.json (info) in every agent directory, the
 * shared main one adding <oauth dir>/oauth.json; archives
 * "<name>.migrated-*" and "<name>.sqlite-import.*.bak" next to them. */

struct secrets_legacy {
	struct secrets_audit *a;
	json_t *seen;			/* path -> true */
};

static const struct {
	const char *name, *kind, *severity;
} secrets_legacy_files[] = {
	{"auth-profiles.json", "auth-profiles", "warn"},
	{"auth-state.json", "auth-state", "info"},
	{"auth.json", "legacy-auth", "warn"},
};

static void secrets_legacy_add(struct secrets_legacy *l, const char *path,
			       const char *severity, const char *msg)
{
	if (json_object_get(l->seen, path))
		return;
	json_object_set_new(l->seen, path, json_true());
	l->a->legacy++;
	secrets_audit_add(l->a, "LEGACY_RESIDUE", severity, path, "<root>",
			  msg);
}

static void secrets_legacy_source(struct secrets_legacy *l,
				  const char *path, const char *kind,
				  const char *severity)
{
	struct stat sb;
	char *msg;

	if (lstat(path, &sb) != 0)
		return;
	msg = xasprintf("Retired auth source %s is present; run openclaw "
			"doctor --fix to migrate and archive it.", kind);
	secrets_legacy_add(l, path, severity, msg);
	free(msg);
}

static void secrets_legacy_archives(struct secrets_legacy *l,
				    const char *dir, const char *base,
				    const char *kind)
{
	char *migrated = xasprintf("%s.migrated-", base);
	char *imported = xasprintf("%s.sqlite-import.", base);
	struct dirent *de;
	char *path, *msg;
	size_t n;
	DIR *d;

	d = opendir(dir);
	while (d && (de = readdir(d))) {
		n = strlen(de->d_name);
		if (strncmp(de->d_name, migrated, strlen(migrated)) != 0 &&
		    !(strncmp(de->d_name, imported, strlen(imported)) == 0 &&
		      n >= 4 && strcmp(de->d_name + n - 4, ".bak") == 0))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		msg = xasprintf("Archived auth source %s may contain plaintext "
				"credentials; retain it only as long as "
				"recovery requires.", kind);
		secrets_legacy_add(l, path, "warn", msg);
		free(msg);
		free(path);
	}
	if (d)
		closedir(d);
	free(migrated);
	free(imported);
}

static void secrets_legacy_agent_dir(struct secrets_legacy *l,
				     const char *dir, const char *oauth)
{
	char *p;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(secrets_legacy_files); i++) {
		p = xasprintf("%s/%s", dir, secrets_legacy_files[i].name);
		secrets_legacy_source(l, p, secrets_legacy_files[i].kind,
				      secrets_legacy_files[i].severity);
		free(p);
	}
	if (oauth)
		secrets_legacy_source(l, oauth, "legacy-oauth", "warn");
}

static void secrets_legacy_agent_archives(struct secrets_legacy *l,
					  const char *dir)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(secrets_legacy_files); i++)
		secrets_legacy_archives(l, dir, secrets_legacy_files[i].name,
					secrets_legacy_files[i].kind);
}

static void secrets_audit_legacy(struct secrets_audit *a, const json_t *root,
				 const char *state_dir)
{
	struct secrets_legacy l = { .a = a, .seen = json_object() };
	const char *env_dir = getenv("OPENCLAW_AGENT_DIR");
	const char *env_oauth = getenv("OPENCLAW_OAUTH_DIR");
	char *main_dir, *oauth, *oauth_dir, *agents, *p;
	json_t *dirs = json_array(), *v, *list;
	struct dirent *de;
	size_t i;
	DIR *d;

	main_dir = env_dir && *env_dir ? xstrdup(env_dir) :
		xasprintf("%s/agents/main/agent", state_dir);
	oauth_dir = env_oauth && *env_oauth ? xstrdup(env_oauth) :
		xasprintf("%s/credentials", state_dir);
	oauth = xasprintf("%s/oauth.json", oauth_dir);
	/* the shared main directory, every <state>/agents/X/agent, and the
	 * configured agents' directories */
	secrets_legacy_agent_dir(&l, main_dir, oauth);
	json_array_append_new(dirs, json_string(main_dir));
	agents = xasprintf("%s/agents", state_dir);
	d = opendir(agents);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s/agent", agents, de->d_name);
		json_array_append_new(dirs, json_string(p));
		free(p);
	}
	if (d)
		closedir(d);
	list = root ? (json_t *)config_get(root, "agents.list") : NULL;
	json_array_foreach(list, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		const char *ad = json_string_value(json_object_get(v,
								   "agentDir"));

		if (ad && *ad)
			json_array_append_new(dirs, json_string(ad));
		else if (id && *id && !strchr(id, '/'))
			json_array_append_new(dirs, json_sprintf(
				"%s/agents/%s/agent", state_dir, id));
	}
	json_array_foreach(dirs, i, v)
		secrets_legacy_agent_dir(&l, json_string_value(v), NULL);
	/* then the archives, in the same directories and next to oauth.json */
	json_array_foreach(dirs, i, v)
		secrets_legacy_agent_archives(&l, json_string_value(v));
	secrets_legacy_archives(&l, oauth_dir, "oauth.json", "legacy-oauth");
	json_decref(dirs);
	json_decref(l.seen);
	free(agents);
	free(main_dir);
	free(oauth);
	free(oauth_dir);
}

json_t *secrets_audit(const struct secrets_audit_opts *o, int *status)
{
	struct secrets_audit a = { .findings = json_array(),
				   .plains = json_array() };
	struct config_issues is = { 0 };
	char **files = NULL, *dir, *p1, *p2, *dbpath;
	json_t *root, *rep;
	sqlite3 *db = NULL;
	size_t i, nf = 0;
	int k;

	a.file = o->config_path;
	root = secrets_audit_load(o->config_path, &files, &is);
	for (nf = 0; files && files[nf]; nf++)
		;
	a.includes = files;
	a.include_texts = xcalloc(nf + 1, sizeof(char *));
	for (i = 0; i < nf; i++) {
		size_t n;

		if (util_read_file(files[i], 4u * 1024 * 1024,
				   &a.include_texts[i], &n) <= 0)
			a.include_texts[i] = NULL;
	}
	if (root) {
		secrets_audit_fields(root, secrets_audit_field, &a);
		if (secrets_check_refs(root, o->allow_exec, secrets_audit_ref,
				       &a, &is) != GW_OK && !is.n)
			config_issues_add(&is, "<root>", "invalid SecretRefs");
	}
	for (k = 0; k < is.n; k++) {
		a.unresolved++;
		secrets_audit_add(&a, "REF_UNRESOLVED", "error", o->config_path,
				  is.v[k].path, is.v[k].message);
	}
	/* .env in the state directory and in the config's directory */
	p1 = xasprintf("%s/.env", o->state_dir);
	dir = xstrdup(o->config_path);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = 0;
	p2 = xasprintf("%s/.env", dir);
	secrets_audit_env_file(&a, p1);
	if (strcmp(p1, p2) != 0)
		secrets_audit_env_file(&a, p2);
	secrets_audit_legacy(&a, root, o->state_dir);
	/* every stored config version */
	dbpath = xasprintf("%s/state/clawgate.sqlite", o->state_dir);
	if (store_secrets_open_ro(dbpath, &db) == GW_OK) {
		secrets_audit_residue(&a, db, o->state_dir);
		a.file = dbpath;
		store_secrets_config_texts(db, secrets_audit_version, &a);
		store_secrets_close_ro(db);
	}
	*status = a.unresolved ? 2 : json_array_size(a.findings) ? 1 : 0;
	rep = json_pack("{s:i,s:s,s:{s:i,s:i,s:b},s:{s:i,s:i,s:i,s:i,s:i},"
			"s:o}", "version", 1, "status",
			*status == 2 ? "unresolved" : *status ? "findings" :
			"clean", "resolution", "refsChecked", a.checked,
			"skippedExecRefs", a.skipped, "resolvabilityComplete",
			a.skipped == 0, "summary", "plaintextCount", a.plain,
			"unresolvedRefCount", a.unresolved, "shadowedRefCount",
			0, "storeResidueCount", a.residue, "legacyResidueCount",
			a.legacy,
			"findings", a.findings);
	json_decref(a.plains);
	for (i = 0; i < nf; i++)
		xfree_secret(a.include_texts[i]);
	free(a.include_texts);
	config_env_strv_free(files);
	config_issues_free(&is);
	json_decref(root);
	free(p1);
	free(p2);
	free(dir);
	free(dbpath);
	return rep;
}

/* ---- plans --------------------------------------------------------------- */

/* The option-table key a target type names: the canonical type (the key
 * without its "*" segments) or the key itself. NULL when unknown. */
static const char *secrets_plan_type_key(const char *type)
{
	const struct config_option *t;
	size_t n, i;

	t = config_options_table(&n);
	for (i = 0; i < n; i++) {
		char canon[256], *w = canon;
		const char *k = t[i].key;

		if (t[i].type != CFG_SECRET)
			continue;
		if (strcmp(k, type) == 0)
			return k;
		while (*k && (size_t)(w - canon) < sizeof(canon) - 1) {
			if (k[0] == '*' && (k[1] == '.' || !k[1])) {
				k += k[1] ? 2 : 1;
				if (w > canon && !*k)
					w--;	/* trailing ".": drop it */
				continue;
			}
			*w++ = *k++;
		}
		*w = 0;
		if (strcmp(canon, type) == 0)
			return t[i].key;
	}
	return NULL;
}

/* Split a dotted path; forbidden or empty segments fail. */
static json_t *secrets_plan_segments(const char *path, char *why, size_t len)
{
	json_t *a = json_array();
	const char *p = path;

	while (1) {
		size_t n = strcspn(p, ".");
		char seg[256];

		if (n == 0 || n >= sizeof(seg)) {
			snprintf(why, len, "empty or oversize path segment");
			json_decref(a);
			return NULL;
		}
		memcpy(seg, p, n);
		seg[n] = 0;
		if (strcmp(seg, "__proto__") == 0 ||
		    strcmp(seg, "prototype") == 0 ||
		    strcmp(seg, "constructor") == 0) {
			snprintf(why, len, "forbidden path segment \"%.20s\"",
				 seg);
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_string(seg));
		p += n;
		if (!*p)
			break;
		p++;
	}
	return a;
}

/* 1 if segs match the key pattern; *star gets the first "*" segment. */
static int secrets_plan_match(const char *key, const json_t *segs,
			      const char **star)
{
	char *copy = xstrdup(key), *save = NULL, *tok;
	size_t i = 0;
	int ok = 1;

	*star = NULL;
	for (tok = strtok_r(copy, ".", &save); tok;
	     tok = strtok_r(NULL, ".", &save), i++) {
		const char *s = json_string_value(json_array_get(segs, i));

		if (!s || (strcmp(tok, "*") != 0 && strcmp(tok, s) != 0)) {
			ok = 0;
			break;
		}
		if (strcmp(tok, "*") == 0 && !*star)
			*star = s;
	}
	free(copy);
	return ok && i == json_array_size(segs);
}

static int secrets_plan_ref_ok(const json_t *ref, char *why, size_t len)
{
	const char *src, *prov, *id;
	const char *k;
	const json_t *v;

	if (!secrets_ref_parse(ref, &src, &prov, &id) || !src || !id) {
		snprintf(why, len, "ref must be {source, provider, id}");
		return 0;
	}
	json_object_foreach((json_t *)ref, k, v)
		if (strcmp(k, "source") && strcmp(k, "provider") &&
		    strcmp(k, "id")) {
			snprintf(why, len, "ref has an unknown key \"%s\"", k);
			return 0;
		}
	if (prov && !secrets_alias_valid(prov)) {
		snprintf(why, len, "invalid ref provider alias");
		return 0;
	}
	if (((strcmp(src, "env") == 0 || strcmp(src, "store") == 0) &&
	     !secrets_env_name_valid(id)) ||
	    (strcmp(src, "file") == 0 && !secrets_file_id_valid(id)) ||
	    (strcmp(src, "exec") == 0 && !secrets_exec_id_valid(id)) ||
	    (strcmp(src, "env") && strcmp(src, "store") && strcmp(src, "file") &&
	     strcmp(src, "exec"))) {
		snprintf(why, len, "invalid %s ref id", src);
		return 0;
	}
	return 1;
}

int secrets_plan_parse(const char *text, size_t len, json_t **out,
		       char *why, size_t wlen)
{
	const json_t *targets, *t, *ups, *dels, *v;
	const char *k;
	json_error_t jerr;
	json_t *plan;
	size_t i;

	*out = NULL;
	plan = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(plan)) {
		snprintf(why, wlen, "plan is not a JSON object");
		goto bad;
	}
	if (json_integer_value(json_object_get(plan, "version")) != 1 ||
	    json_integer_value(json_object_get(plan, "protocolVersion")) != 1) {
		snprintf(why, wlen, "plan needs version 1 and protocolVersion "
			 "1");
		goto bad;
	}
	targets = json_object_get(plan, "targets");
	if (!json_is_array(targets) ||
	    json_array_size(targets) > SECRETS_PLAN_TARGETS_MAX) {
		snprintf(why, wlen, "plan needs a targets array");
		goto bad;
	}
	ups = json_object_get(plan, "providerUpserts");
	if (ups && !json_is_object(ups)) {
		snprintf(why, wlen, "providerUpserts must be an object");
		goto bad;
	}
	json_object_foreach((json_t *)ups, k, v) {
		json_t *probe = json_pack("{s:{s:{s:O}}}", "secrets",
					  "providers", k, v);
		struct config_issues is = { 0 };
		int bad_ = 0;

		if (!secrets_alias_valid(k)) {
			snprintf(why, wlen, "providerUpserts: invalid alias "
				 "\"%s\"", k);
			bad_ = 1;
		} else if (secrets_check_refs(probe, 0, NULL, NULL, &is) !=
			   GW_OK) {
			snprintf(why, wlen, "providerUpserts.%s: %s", k,
				 is.n ? is.v[0].message : "invalid");
			bad_ = 1;
		}
		config_issues_free(&is);
		json_decref(probe);
		if (bad_)
			goto bad;
	}
	dels = json_object_get(plan, "providerDeletes");
	if (dels && !json_is_array(dels)) {
		snprintf(why, wlen, "providerDeletes must be an array");
		goto bad;
	}
	json_array_foreach(dels, i, v)
		if (!secrets_alias_valid(json_string_value(v))) {
			snprintf(why, wlen, "providerDeletes.%zu: invalid "
				 "alias", i);
			goto bad;
		}
	json_array_foreach(targets, i, t) {
		const char *type = json_string_value(json_object_get(t, "type"));
		const char *path = json_string_value(json_object_get(t, "path"));
		const json_t *ps = json_object_get(t, "pathSegments");
		const char *key, *star, *pid;
		char sub[200];
		json_t *segs;

		if (!json_is_object(t) || !type || !path || !*path) {
			snprintf(why, wlen, "targets.%zu: type and path are "
				 "required", i);
			goto bad;
		}
		key = secrets_plan_type_key(type);
		if (!key) {
			snprintf(why, wlen, "targets.%zu: unknown target type "
				 "%s", i, type);
			goto bad;
		}
		segs = secrets_plan_segments(path, sub, sizeof(sub));
		if (!segs) {
			snprintf(why, wlen, "targets.%zu: %s", i, sub);
			goto bad;
		}
		if ((ps && !json_equal((json_t *)ps, segs)) ||
		    !secrets_plan_match(key, segs, &star)) {
			snprintf(why, wlen, "Invalid plan target path for %s: "
				 "%s", type, path);
			json_decref(segs);
			goto bad;
		}
		pid = json_string_value(json_object_get(t, "providerId"));
		if (json_object_get(t, "providerId") &&
		    (!pid || !star || strcmp(pid, star) != 0 ||
		     strncmp(key, "models.providers.", 17) != 0)) {
			snprintf(why, wlen, "targets.%zu: providerId does not "
				 "match the path", i);
			json_decref(segs);
			goto bad;
		}
		if (json_object_get(t, "accountId")) {
			snprintf(why, wlen, "targets.%zu: accountId does not "
				 "match the path", i);
			json_decref(segs);
			goto bad;
		}
		json_decref(segs);
		if (!secrets_plan_ref_ok(json_object_get(t, "ref"), sub,
					 sizeof(sub))) {
			snprintf(why, wlen, "targets.%zu: %s", i, sub);
			goto bad;
		}
	}
	*out = plan;
	return GW_OK;
bad:
	json_decref(plan);
	return GW_EINVAL;
}

int secrets_plan_has_exec(const json_t *plan)
{
	const json_t *t, *v;
	const char *k;
	size_t i;

	json_array_foreach(json_object_get(plan, "targets"), i, t) {
		const char *s = json_string_value(json_object_get(
			json_object_get(t, "ref"), "source"));

		if (s && strcmp(s, "exec") == 0)
			return 1;
	}
	json_object_foreach(json_object_get(plan, "providerUpserts"), k, v) {
		const char *s = json_string_value(json_object_get(v, "source"));

		if (s && strcmp(s, "exec") == 0)
			return 1;
	}
	return 0;
}

/* Set root.segs = v (objects created on the way). */
static void secrets_plan_set(json_t *root, const json_t *segs, json_t *v)
{
	size_t i, n = json_array_size(segs);
	json_t *node = root;

	for (i = 0; i + 1 < n; i++) {
		const char *s = json_string_value(json_array_get(segs, i));
		json_t *next = json_object_get(node, s);

		if (!json_is_object(next)) {
			next = json_object();
			json_object_set_new(node, s, next);
		}
		node = next;
	}
	json_object_set_new(node, json_string_value(json_array_get(segs,
								    n - 1)),
			    v);
}

static const json_t *secrets_plan_get(const json_t *root, const json_t *segs)
{
	const json_t *s;
	size_t i;

	json_array_foreach(segs, i, s)
		root = json_object_get(root, json_string_value(s));
	return root;
}

json_t *secrets_plan_apply_root(const json_t *plan, const json_t *root,
				json_t *migrated)
{
	json_t *neu = json_deep_copy(root ? root : json_object()), *provs;
	const json_t *t, *v;
	const char *k;
	size_t i;

	if (!json_is_object(neu)) {
		json_decref(neu);
		neu = json_object();
	}
	provs = json_object_get(json_object_get(neu, "secrets"), "providers");
	json_object_foreach(json_object_get(plan, "providerUpserts"), k, v) {
		if (!json_is_object(provs)) {
			json_t *sec = json_object_get(neu, "secrets");

			if (!json_is_object(sec)) {
				sec = json_object();
				json_object_set_new(neu, "secrets", sec);
			}
			provs = json_object();
			json_object_set_new(sec, "providers", provs);
		}
		json_object_set(provs, k, (json_t *)v);
	}
	json_array_foreach(json_object_get(plan, "providerDeletes"), i, v)
		if (json_is_object(provs))
			json_object_del(provs, json_string_value(v));
	json_array_foreach(json_object_get(plan, "targets"), i, t) {
		char why[100];
		json_t *segs = secrets_plan_segments(json_string_value(
			json_object_get(t, "path")), why, sizeof(why));
		const json_t *old = secrets_plan_get(neu, segs);

		if (migrated && secrets_audit_plain(old))
			json_array_append(migrated, (json_t *)old);
		secrets_plan_set(neu, segs, json_deep_copy(json_object_get(
			t, "ref")));
		json_decref(segs);
	}
	return neu;
}

struct secrets_scrub {
	const json_t *plan;
	const json_t *migrated;
};

/* Replace any string equal to a migrated value by the sentinel. */
static int secrets_scrub_values(json_t *v, const json_t *migrated)
{
	const char *k;
	json_t *e, *m;
	size_t i, j;
	int n = 0;

	if (json_is_object(v)) {
		json_object_foreach(v, k, e) {
			json_array_foreach(migrated, j, m)
				if (json_is_string(e) && json_equal(e, m)) {
					json_object_set_new(v, k, json_string(
						CONFIG_REDACTED));
					n++;
					break;
				}
			n += secrets_scrub_values(e, migrated);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			json_array_foreach(migrated, j, m)
				if (json_is_string(e) && json_equal(e, m)) {
					json_array_set_new(v, i, json_string(
						CONFIG_REDACTED));
					n++;
					break;
				}
			n += secrets_scrub_values(e, migrated);
		}
	}
	return n;
}

static char *secrets_scrub_text(const char *text, void *arg)
{
	struct secrets_scrub *sc = arg;
	json_t *root = json_loads(text, 0, NULL), *neu;
	const json_t *t;
	char *out = NULL, why[100];
	size_t i;
	int n = 0;

	if (!json_is_object(root)) {
		json_decref(root);
		return NULL;
	}
	neu = json_deep_copy(root);
	json_array_foreach(json_object_get(sc->plan, "targets"), i, t) {
		json_t *segs = secrets_plan_segments(json_string_value(
			json_object_get(t, "path")), why, sizeof(why));
		const json_t *old = secrets_plan_get(neu, segs);

		if (json_is_string(old)) {
			secrets_plan_set(neu, segs, json_deep_copy(
				json_object_get(t, "ref")));
			n++;
		}
		json_decref(segs);
	}
	n += secrets_scrub_values(neu, sc->migrated);
	if (n && !json_equal(root, neu))
		out = json_dumps(neu, JSON_COMPACT);
	json_decref(root);
	json_decref(neu);
	return out;
}

int secrets_plan_scrub_versions(struct store *st, const json_t *plan,
				const json_t *migrated, int *changed)
{
	struct secrets_scrub sc = { plan, migrated };

	return store_secrets_config_rewrite(st, secrets_scrub_text, &sc,
					    changed);
}

struct secrets_env_scrub {
	const json_t *migrated, *plan;
	char *out;
	size_t len;
	int removed;
	const char *text;
};

/* 1 if the plan keeps name as an env ref id (its value lives there). */
static int secrets_plan_env_id(const json_t *plan, const char *name)
{
	const json_t *t;
	size_t i;

	json_array_foreach(json_object_get(plan, "targets"), i, t) {
		const json_t *r = json_object_get(t, "ref");
		const char *s = json_string_value(json_object_get(r, "source"));
		const char *id = json_string_value(json_object_get(r, "id"));

		if (s && id && strcmp(s, "env") == 0 && strcmp(id, name) == 0)
			return 1;
	}
	return 0;
}

static int secrets_env_scrub_pair(const char *name, const char *value,
				  int line, void *arg)
{
	struct secrets_env_scrub *e = arg;
	const json_t *m;
	size_t i;

	json_array_foreach(e->migrated, i, m)
		if (strcmp(json_string_value(m), value) == 0 &&
		    !secrets_plan_env_id(e->plan, name)) {
			/* remember the line number to drop */
			e->out = xrealloc(e->out, e->len + sizeof(int));
			memcpy(e->out + e->len, &line, sizeof(int));
			e->len += sizeof(int);
			e->removed++;
			break;
		}
	return 0;
}

int secrets_plan_scrub_env(const char *path, const json_t *plan,
			   const json_t *migrated)
{
	struct secrets_env_scrub e = { .migrated = migrated, .plan = plan };
	char *text = NULL, *copy = NULL, *p, *out = NULL;
	size_t n = 0, o = 0;
	int bad = 0, line = 1, r, skip_until = 0;

	r = util_read_file(path, 4u * 1024 * 1024, &text, &n);
	if (r <= 0)
		return r == 0 ? 0 : -1;
	copy = xstrdup(text);
	if (secrets_dotenv_parse(copy, secrets_env_scrub_pair, &e, &bad) < 0 ||
	    !e.removed) {
		r = e.removed ? -1 : 0;
		goto out;
	}
	/* drop every line of a removed assignment (quoted values span
	 * lines: up to the closing quote) */
	out = xmalloc(n + 1);
	for (p = text; *p; line++) {
		size_t ln = strcspn(p, "\n") + (p[strcspn(p, "\n")] ? 1 : 0);
		size_t k;
		int drop = line <= skip_until;

		for (k = 0; !drop && k < e.len / sizeof(int); k++) {
			int l;

			memcpy(&l, e.out + k * sizeof(int), sizeof(int));
			if (l == line) {
				const char *q = memchr(p, '=', ln), *c, *x;

				drop = 1;
				if (q && (q[1] == '"' || q[1] == '\'') &&
				    (c = strchr(q + 2, q[1]))) {
					skip_until = line;
					for (x = q; x < c; x++)
						if (*x == '\n')
							skip_until++;
				}
			}
		}
		if (!drop) {
			memcpy(out + o, p, ln);
			o += ln;
		}
		p += ln;
	}
	r = config_write_atomic(path, out, o) == 0 ? e.removed : -1;
out:
	if (text)
		explicit_bzero(text, n);
	free(text);
	if (copy)
		explicit_bzero(copy, n);
	free(copy);
	if (out)
		explicit_bzero(out, n + 1);
	free(out);
	free(e.out);
	return r;
}
