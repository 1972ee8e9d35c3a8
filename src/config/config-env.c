/* ${VAR} substitution and $include resolution (both run on the parsed tree
 * before validation, includes first). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/common.h"
#include "core/util.h"
#include "core/json5.h"

#define CONFIG_ENV_MAX_INCLUDE_DEPTH 10
#define CONFIG_ENV_MAX_PATH 4096
#define CONFIG_ENV_MAX_FILE (4u * 1024 * 1024)
#define CONFIG_ENV_MAX_ROOTS 32

void config_env_strv_free(char **v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

/* ---- ${VAR} -------------------------------------------------------------- */

/* Length of a valid variable name at s (up to the closing brace), or 0. */
static size_t config_env_name(const char *s, const char *end)
{
	const char *p = s;

	if (p >= end || !(*p == '_' || (*p >= 'A' && *p <= 'Z')))
		return 0;
	for (p++; p < end && *p != '}'; p++)
		if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return 0;
	if (p >= end)
		return 0;
	return (size_t)(p - s);
}

/* Substitute one string; NULL when nothing changed. */
static char *config_env_expand(const char *s, size_t len, const char *path,
			       struct config_issues *is, size_t *outlen)
{
	struct util_buf b = { 0 };
	const char *p = s, *end = s + len;
	int changed = 0;

	if (!memchr(s, '$', len))
		return NULL;
	while (p < end) {
		size_t n;

		if (*p != '$') {
			const char *q = memchr(p, '$', (size_t)(end - p));

			n = q ? (size_t)(q - p) : (size_t)(end - p);
			util_buf_put(&b, p, n);
			p += n;
			continue;
		}
		if (p + 2 < end && p[1] == '$' && p[2] == '{' &&
		    (n = config_env_name(p + 3, end)) > 0) {
			/* $${VAR} -> literal ${VAR} */
			util_buf_put(&b, p + 1, n + 3);
			p += n + 4;
			changed = 1;
			continue;
		}
		if (p + 1 < end && p[1] == '{' &&
		    (n = config_env_name(p + 2, end)) > 0) {
			char *name = xstrndup(p + 2, n);
			const char *val = getenv(name);

			if (val && *val) {
				util_buf_put(&b, val, strlen(val));
				changed = 1;
			} else {
				config_issues_warn(is, path, "environment "
						   "variable \"%s\" is missing "
						   "or empty; left unresolved",
						   name);
				util_buf_put(&b, p, n + 3);
			}
			free(name);
			p += n + 3;
			continue;
		}
		util_buf_put(&b, p, 1);
		p++;
	}
	if (!changed) {
		free(b.p);
		return NULL;
	}
	*outlen = b.len;
	return b.p;
}

static void config_env_walk(json_t *v, const char *path,
			    struct config_issues *is, int depth)
{
	const char *k;
	json_t *e;
	size_t i;

	if (depth > JSON5_MAX_DEPTH + 8)
		return;
	if (json_is_string(v)) {
		size_t n = 0;
		char *s = config_env_expand(json_string_value(v),
					    json_string_length(v), path, is,
					    &n);

		if (s) {
			json_string_setn(v, s, n);
			free(s);
		}
		return;
	}
	json_object_foreach(v, k, e) {
		char *p = *path ? xasprintf("%s.%s", path, k) : xstrdup(k);

		config_env_walk(e, p, is, depth + 1);
		free(p);
	}
	json_array_foreach(v, i, e) {
		char *p = *path ? xasprintf("%s.%zu", path, i)
				: xasprintf("%zu", i);

		config_env_walk(e, p, is, depth + 1);
		free(p);
	}
}

void config_env_substitute(json_t *root, struct config_issues *is)
{
	config_env_walk(root, "", is, 0);
}

/* ---- $include ------------------------------------------------------------ */

struct config_env_inc {
	char *roots[CONFIG_ENV_MAX_ROOTS];
	int nroots;
	const char *stack[CONFIG_ENV_MAX_INCLUDE_DEPTH + 2];
	int depth;		/* stack[0] is the main file */
	char **files;
	size_t nfiles;
	struct config_issues *is;
};

static void config_env_add_root(struct config_env_inc *c, const char *dir)
{
	char *r;

	if (c->nroots >= CONFIG_ENV_MAX_ROOTS || !*dir)
		return;
	r = realpath(dir, NULL);
	if (r)
		c->roots[c->nroots++] = r;
}

/* The directory part of a path (owned); "." when it has none. */
static char *config_env_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

static int config_env_under_roots(const struct config_env_inc *c,
				  const char *real)
{
	int i;

	for (i = 0; i < c->nroots; i++) {
		size_t n = strlen(c->roots[i]);

		if (strcmp(c->roots[i], "/") == 0)
			return 1;
		if (strncmp(real, c->roots[i], n) == 0 &&
		    (real[n] == '/' || real[n] == 0))
			return 1;
	}
	return 0;
}

/* Read a whole file, at most CONFIG_ENV_MAX_FILE bytes. */
static int config_env_read(const char *path, char **out, size_t *len,
			   char *why, size_t whylen)
{
	int r = util_read_file(path, CONFIG_ENV_MAX_FILE, out, len);

	if (r == 1)
		return 0;
	if (r == -EINVAL)
		snprintf(why, whylen, "not a regular file");
	else if (r == -EFBIG)
		snprintf(why, whylen, "file too large (limit %u bytes)",
			 CONFIG_ENV_MAX_FILE);
	else
		snprintf(why, whylen, "%s", strerror(r == 0 ? ENOENT : -r));
	return -1;
}

/* Merge src into dst (both owned by the caller; returns a new reference):
 * objects recursively, arrays concatenated, anything else src wins. */
static json_t *config_env_merge(json_t *dst, json_t *src)
{
	if (json_is_object(dst) && json_is_object(src)) {
		json_t *r = json_copy(dst), *e;
		const char *k;

		json_object_foreach(src, k, e) {
			json_t *old = json_object_get(r, k);

			if (old)
				json_object_set_new(r, k,
						    config_env_merge(old, e));
			else
				json_object_set(r, k, e);
		}
		return r;
	}
	if (json_is_array(dst) && json_is_array(src)) {
		json_t *r = json_copy(dst);

		json_array_extend(r, src);
		return r;
	}
	return json_incref(src);
}

static json_t *config_env_resolve(struct config_env_inc *c, json_t *v,
				  const char *dir, const char *path);

/* Load, parse and resolve one included file whose content goes at objpath;
 * errors are reported under path (objpath.$include). NULL on error. */
static json_t *config_env_load(struct config_env_inc *c, const json_t *spec,
			       const char *dir, const char *objpath,
			       const char *path)
{
	const char *raw = json_string_value(spec);
	char why[200];
	char *full = NULL, *real = NULL, *buf = NULL, *subdir = NULL;
	json_t *parsed = NULL, *res = NULL;
	struct json5_error perr;
	size_t len = 0, i;
	int k;

	if (json_string_length(spec) >= CONFIG_ENV_MAX_PATH) {
		config_issues_add(c->is, path, "include path is too long (%zu "
				  "characters, limit %d)",
				  json_string_length(spec),
				  CONFIG_ENV_MAX_PATH - 1);
		goto out;
	}
	if (strlen(raw) != json_string_length(spec) || !*raw) {
		config_issues_add(c->is, path, "invalid include path (empty "
				  "or contains a NUL byte)");
		goto out;
	}
	full = raw[0] == '/' ? xstrdup(raw) : xasprintf("%s/%s", dir, raw);
	real = realpath(full, NULL);
	if (!real) {
		config_issues_add(c->is, path, "cannot resolve include \"%s\" "
				  "(%s): %s", raw, full, strerror(errno));
		goto out;
	}
	if (!config_env_under_roots(c, real)) {
		config_issues_add(c->is, path, "include \"%s\" resolves to %s, "
				  "outside the config directory %s (allowed "
				  "roots can be added with "
				  "OPENCLAW_INCLUDE_ROOTS)", raw, real,
				  c->nroots ? c->roots[0] : "?");
		goto out;
	}
	for (k = 0; k <= c->depth; k++) {
		struct util_buf chain = { 0 };
		int j;

		if (strcmp(c->stack[k], real) != 0)
			continue;
		for (j = 0; j <= c->depth; j++) {
			util_buf_put(&chain, c->stack[j],
				       strlen(c->stack[j]));
			util_buf_put(&chain, " -> ", 4);
		}
		util_buf_put(&chain, real, strlen(real));
		config_issues_add(c->is, path, "circular $include: %s",
				  chain.p);
		free(chain.p);
		goto out;
	}
	if (c->depth >= CONFIG_ENV_MAX_INCLUDE_DEPTH) {
		config_issues_add(c->is, path, "$include nesting exceeds %d "
				  "levels at \"%s\"",
				  CONFIG_ENV_MAX_INCLUDE_DEPTH, raw);
		goto out;
	}
	if (config_env_read(real, &buf, &len, why, sizeof(why)) < 0) {
		config_issues_add(c->is, path, "cannot read include %s: %s",
				  real, why);
		goto out;
	}
	if (json5_parse(buf, len, &parsed, &perr) < 0) {
		config_issues_add(c->is, path, "JSON5 parse error in %s at "
				  "line %d column %d: %s", real, perr.line,
				  perr.column, perr.message);
		goto out;
	}
	for (i = 0; i < c->nfiles && strcmp(c->files[i], real); i++)
		;
	if (i == c->nfiles) {
		c->files = xrealloc(c->files,
				    (c->nfiles + 2) * sizeof(*c->files));
		c->files[c->nfiles++] = xstrdup(real);
		c->files[c->nfiles] = NULL;
	}
	subdir = config_env_dirname(real);
	c->stack[++c->depth] = real;
	res = config_env_resolve(c, parsed, subdir, objpath);
	c->depth--;
out:
	json_decref(parsed);
	free(subdir);
	free(buf);
	free(real);
	free(full);
	return res;
}

/* Resolve the $include of one object; NULL on error. */
static json_t *config_env_resolve_object(struct config_env_inc *c, json_t *v,
					 const char *dir, const char *path)
{
	json_t *spec = json_object_get(v, "$include");
	json_t *rest = json_object(), *inc = NULL, *res = NULL, *e;
	char *ipath = *path ? xasprintf("%s.$include", path)
			    : xstrdup("$include");
	const char *k;
	size_t i;

	json_object_foreach(v, k, e) {
		char *p;
		json_t *r;

		if (spec && strcmp(k, "$include") == 0)
			continue;
		p = *path ? xasprintf("%s.%s", path, k) : xstrdup(k);
		r = config_env_resolve(c, e, dir, p);
		free(p);
		if (!r)
			goto out;
		json_object_set_new(rest, k, r);
	}
	if (!spec) {
		res = json_incref(rest);
		goto out;
	}
	if (json_is_string(spec)) {
		inc = config_env_load(c, spec, dir, path, ipath);
	} else if (json_is_array(spec)) {
		inc = json_object();
		json_array_foreach(spec, i, e) {
			json_t *one, *m;

			if (!json_is_string(e)) {
				config_issues_add(c->is, ipath, "$include[%zu]"
						  " must be a string", i);
				goto out;
			}
			one = config_env_load(c, e, dir, path, ipath);
			if (!one)
				goto out;
			m = config_env_merge(inc, one);
			json_decref(one);
			json_decref(inc);
			inc = m;
		}
	} else {
		config_issues_add(c->is, ipath, "$include must be a string or "
				  "an array of strings");
		goto out;
	}
	if (!inc)
		goto out;
	if (json_object_size(rest) == 0) {
		res = json_incref(inc);
		goto out;
	}
	if (!json_is_object(inc)) {
		config_issues_add(c->is, ipath, "included content must be an "
				  "object when sibling keys are present");
		goto out;
	}
	res = config_env_merge(inc, rest);
out:
	json_decref(inc);
	json_decref(rest);
	free(ipath);
	return res;
}

static json_t *config_env_resolve(struct config_env_inc *c, json_t *v,
				  const char *dir, const char *path)
{
	json_t *res, *e;
	size_t i;

	if (json_is_object(v))
		return config_env_resolve_object(c, v, dir, path);
	if (!json_is_array(v))
		return json_incref(v);
	res = json_array();
	json_array_foreach(v, i, e) {
		char *p = *path ? xasprintf("%s.%zu", path, i)
				: xasprintf("%zu", i);
		json_t *r = config_env_resolve(c, e, dir, p);

		free(p);
		if (!r) {
			json_decref(res);
			return NULL;
		}
		json_array_append_new(res, r);
	}
	return res;
}

json_t *config_env_includes(json_t *root, const char *config_path,
			    char ***files, struct config_issues *is)
{
	struct config_env_inc c = { .is = is };
	const char *env = getenv("OPENCLAW_INCLUDE_ROOTS");
	char *main_real = realpath(config_path, NULL);
	char *dir = config_env_dirname(main_real ? main_real : config_path);
	json_t *res;
	int i;

	config_env_add_root(&c, dir);
	if (env && *env) {
		char *copy = xstrdup(env), *save = NULL, *tok;

		for (tok = strtok_r(copy, ":;", &save); tok;
		     tok = strtok_r(NULL, ":;", &save))
			config_env_add_root(&c, tok);
		free(copy);
	}
	c.stack[0] = main_real ? main_real : config_path;
	res = config_env_resolve(&c, root, dir, "");
	for (i = 0; i < c.nroots; i++)
		free(c.roots[i]);
	free(main_real);
	free(dir);
	if (!res) {
		config_env_strv_free(c.files);
		c.files = NULL;
	}
	*files = c.files;
	return res;
}
