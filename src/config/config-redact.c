/* Redaction (with the upstream sentinel, and its restore from the current
 * values), RFC 7396 merge patch with arrays of objects merged by id, and
 * the config JSON Schema generated from the option table. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config/config-reload.h"
#include "core/common.h"
#include "core/json5.h"

#define CONFIG_REDACT_MAX_DEPTH 64

/* Suffixes of key names whose string values are secrets wherever they are
 * (compared case-insensitively, after dropping '_' and '-'). */
static const char *const config_redact_suffixes[] = {
	"token", "password", "passwd", "secret", "apikey", "privatekey",
	"authorization", "cookie", "credentials",
};

/* 1 if key (one segment) looks like it holds a secret. */
static int config_redact_key_looks_secret(const char *key)
{
	char low[128];
	size_t i, n = 0, k;

	for (i = 0; key[i] && n + 1 < sizeof(low); i++)
		if (key[i] != '_' && key[i] != '-')
			low[n++] = (char)tolower((unsigned char)key[i]);
	low[n] = 0;
	for (i = 0; i < ARRAY_SIZE(config_redact_suffixes); i++) {
		k = strlen(config_redact_suffixes[i]);
		if (n >= k &&
		    strcmp(low + n - k, config_redact_suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

/* Table lookup by segments, then the key heuristic on the last one. */
static int config_redact_segs_secret(const char *const *segs, size_t n)
{
	const struct config_option *o;

	if (n == 0)
		return 0;
	o = config_options_match(segs, n);
	if (o && (o->flags & CFG_F_SECRET))
		return 1;
	return config_redact_key_looks_secret(segs[n - 1]);
}

int config_redact_is_secret(const char *dotted)
{
	const char *segs[CONFIG_REDACT_MAX_DEPTH];
	char *copy = xstrdup(dotted), *save = NULL, *tok;
	size_t n = 0;
	int r;

	for (tok = strtok_r(copy, ".", &save); tok && n < ARRAY_SIZE(segs);
	     tok = strtok_r(NULL, ".", &save))
		segs[n++] = tok;
	r = config_redact_segs_secret(segs, n);
	free(copy);
	return r;
}

/* A whole-string ${VAR} reference names a secret without holding it. */
static int config_redact_is_env_ref(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 4 || s[0] != '$' || s[1] != '{' || s[n - 1] != '}')
		return 0;
	for (i = 2; i < n - 1; i++)
		if (!(isupper((unsigned char)s[i]) ||
		      isdigit((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

struct config_redact_walk {
	const char *segs[CONFIG_REDACT_MAX_DEPTH];
	size_t n;
};

static json_t *config_redact_value(struct config_redact_walk *w,
				   const json_t *v, int secret)
{
	json_t *out;
	const char *k;
	const json_t *e;
	size_t i;

	if (json_is_string(v)) {
		if (secret && !config_redact_is_env_ref(json_string_value(v)))
			return json_string(CONFIG_REDACTED);
		return json_deep_copy(v);
	}
	if (w->n >= ARRAY_SIZE(w->segs))
		return json_is_object(v) || json_is_array(v) ?
		       json_string(CONFIG_REDACTED) : json_deep_copy(v);
	if (json_is_object(v)) {
		out = json_object();
		json_object_foreach((json_t *)v, k, e) {
			w->segs[w->n++] = k;
			json_object_set_new(out, k, config_redact_value(w, e,
				config_redact_segs_secret(w->segs, w->n)));
			w->n--;
		}
		return out;
	}
	if (json_is_array(v)) {
		out = json_array();
		/* Elements inherit the array key's secrecy (a list of
		 * tokens); objects inside are judged by their own keys. */
		json_array_foreach(v, i, e)
			json_array_append_new(out, config_redact_value(w, e,
				secret));
		return out;
	}
	return json_deep_copy(v);
}

json_t *config_redact(const json_t *v)
{
	struct config_redact_walk w = { .n = 0 };

	if (!v)
		return json_object();
	return config_redact_value(&w, v, 0);
}

char *config_redact_text(const char *raw, size_t len)
{
	struct json5_error err;
	json_t *parsed = NULL, *red;
	char *s;

	if (json5_parse(raw, len, &parsed, &err) < 0)
		return NULL;
	red = config_redact(parsed);
	s = json_dumps(red, JSON_INDENT(2));
	json_decref(red);
	json_decref(parsed);
	return s;
}

int config_redact_has_sentinel(const json_t *v)
{
	const char *k;
	const json_t *e;
	size_t i;

	if (json_is_string(v))
		return strcmp(json_string_value(v), CONFIG_REDACTED) == 0;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
			if (config_redact_has_sentinel(e))
				return 1;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (config_redact_has_sentinel(e))
				return 1;
	}
	return 0;
}

/* The element of array cur matching e: same "id", else the same index. */
static const json_t *config_redact_peer(const json_t *cur, size_t i,
					const json_t *e)
{
	const json_t *id = json_object_get(e, "id"), *c;
	size_t j;

	if (json_is_string(id)) {
		json_array_foreach(cur, j, c)
			if (json_equal(json_object_get(c, "id"), (json_t *)id))
				return c;
	}
	return json_array_get(cur, i);
}

static int config_redact_restore_at(json_t *parent, const char *key,
				    size_t idx, json_t *v, const json_t *cur,
				    char *path, size_t plen, char *bad,
				    size_t len, int depth)
{
	const char *k;
	json_t *e;
	size_t i, n = strlen(path);
	void *it;

	if (depth > CONFIG_REDACT_MAX_DEPTH)
		return 0;
	if (json_is_string(v) &&
	    strcmp(json_string_value(v), CONFIG_REDACTED) == 0) {
		if (!cur || (json_is_string(cur) &&
			     strcmp(json_string_value(cur),
				    CONFIG_REDACTED) == 0)) {
			snprintf(bad, len, "%s", *path ? path : "<root>");
			return -1;
		}
		if (key)
			json_object_set(parent, key, (json_t *)cur);
		else
			json_array_set(parent, idx, (json_t *)cur);
		return 0;
	}
	if (json_is_object(v)) {
		for (it = json_object_iter(v); it;
		     it = json_object_iter_next(v, it)) {
			k = json_object_iter_key(it);
			e = json_object_iter_value(it);
			snprintf(path + n, plen - n, "%s%s", n ? "." : "", k);
			if (config_redact_restore_at(v, k, 0, e,
					json_object_get(cur, k), path, plen,
					bad, len, depth + 1) < 0)
				return -1;
			path[n] = 0;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			snprintf(path + n, plen - n, "%s%zu", n ? "." : "", i);
			if (config_redact_restore_at(v, NULL, i, e,
					config_redact_peer(cur, i, e), path,
					plen, bad, len, depth + 1) < 0)
				return -1;
			path[n] = 0;
		}
	}
	return 0;
}

int config_redact_restore(json_t *v, const json_t *current, char *bad,
			  size_t len)
{
	char path[1024] = "";

	if (json_is_string(v)) {
		snprintf(bad, len, "<root>");
		return config_redact_has_sentinel(v) ? -1 : 0;
	}
	return config_redact_restore_at(NULL, NULL, 0, v, current, path,
					sizeof(path), bad, len, 0);
}

/* ---- merge patch ------------------------------------------------------ */

/* 1 if every element of a is an object with a string "id". */
static int config_merge_by_id(const json_t *a)
{
	const json_t *e;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return 0;
	json_array_foreach(a, i, e)
		if (!json_is_string(json_object_get(e, "id")))
			return 0;
	return 1;
}

static void config_merge_patch_at(json_t **target, const json_t *patch,
				  int depth)
{
	const char *k;
	const json_t *pv;
	json_t *t, *e = NULL;
	size_t i, j;

	if (json_is_object(patch) && depth < CONFIG_REDACT_MAX_DEPTH) {
		if (!json_is_object(*target)) {
			json_decref(*target);
			*target = json_object();
		}
		json_object_foreach((json_t *)patch, k, pv) {
			if (json_is_null(pv)) {
				json_object_del(*target, k);
				continue;
			}
			/* target is the caller's own copy: merge in place */
			t = json_incref(json_object_get(*target, k));
			config_merge_patch_at(&t, pv, depth + 1);
			json_object_set_new(*target, k, t);
		}
		return;
	}
	if (config_merge_by_id(patch) && config_merge_by_id(*target)) {
		t = json_deep_copy(*target);
		json_array_foreach(patch, i, pv) {
			const json_t *id = json_object_get(pv, "id");

			e = NULL;
			json_array_foreach(t, j, e)
				if (json_equal(json_object_get(e, "id"),
					       (json_t *)id))
					break;
			if (e && j < json_array_size(t)) {
				json_t *m = json_incref(e);

				config_merge_patch_at(&m, pv, depth + 1);
				json_array_set_new(t, j, m);
			} else {
				json_array_append_new(t, json_deep_copy(pv));
			}
		}
		json_decref(*target);
		*target = t;
		return;
	}
	json_decref(*target);
	*target = json_deep_copy(patch);
}

void config_merge_patch(json_t **target, const json_t *patch)
{
	config_merge_patch_at(target, patch, 0);
}

/* ---- schema ----------------------------------------------------------- */

static json_t *config_schema_leaf(const struct config_option *o)
{
	json_t *s = json_object(), *d;
	size_t i;

	switch (o->type) {
	case CFG_OBJECT:
		json_object_set_new(s, "type", json_string("object"));
		json_object_set_new(s, "properties", json_object());
		json_object_set_new(s, "additionalProperties",
				    json_boolean(o->flags & CFG_F_OPEN));
		break;
	case CFG_STRING:
		json_object_set_new(s, "type", json_string("string"));
		break;
	case CFG_BOOL:
		json_object_set_new(s, "type", json_string("boolean"));
		break;
	case CFG_INT:
		json_object_set_new(s, "type", json_string("integer"));
		if (o->min < o->max) {
			json_object_set_new(s, "minimum",
					    json_integer(o->min));
			json_object_set_new(s, "maximum",
					    json_integer(o->max));
		}
		break;
	case CFG_NUMBER:
		json_object_set_new(s, "type", json_string("number"));
		break;
	case CFG_STRINGS:
		json_object_set_new(s, "type", json_string("array"));
		json_object_set_new(s, "items",
				    json_pack("{s:s}", "type", "string"));
		break;
	case CFG_ENUM:
		json_object_set_new(s, "type", json_string("string"));
		d = json_array();
		for (i = 0; o->values && o->values[i]; i++)
			json_array_append_new(d, json_string(o->values[i]));
		json_object_set_new(s, "enum", d);
		break;
	case CFG_SECRET:
		json_object_set_new(s, "anyOf", json_pack(
			"[{s:s},{s:s,s:{s:{s:s,s:[s,s,s]},s:{s:s},s:{s:s,"
			"s:i}},s:[s,s],s:b}]",
			"type", "string",
			"type", "object", "properties", "source", "type",
			"string", "enum", "env", "file", "exec", "provider",
			"type", "string", "id", "type", "string", "minLength",
			1, "required", "source", "id",
			"additionalProperties", 0));
		break;
	case CFG_ANY:
		break;
	}
	if (o->help)
		json_object_set_new(s, "description", json_string(o->help));
	d = config_options_default(o);
	if (d)
		json_object_set_new(s, "default", d);
	return s;
}

/* The child node of parent for one key segment, created when missing. */
static json_t *config_schema_child(json_t *parent, const char *seg,
				   size_t len)
{
	json_t *props, *c;
	char key[128];

	if (len == 1 && seg[0] == '*') {
		c = json_object_get(parent, "additionalProperties");
		if (!json_is_object(c)) {
			c = json_pack("{s:s}", "type", "object");
			json_object_set_new(parent, "additionalProperties", c);
		}
		return c;
	}
	snprintf(key, sizeof(key), "%.*s", (int)len, seg);
	props = json_object_get(parent, "properties");
	if (!props) {
		props = json_object();
		json_object_set_new(parent, "properties", props);
	}
	c = json_object_get(props, key);
	if (!c) {
		c = json_pack("{s:s}", "type", "object");
		json_object_set_new(props, key, c);
	}
	return c;
}

static json_t *config_schema_build(json_t **hints)
{
	size_t n, i;
	const struct config_option *t = config_options_table(&n);
	json_t *root = json_pack("{s:s,s:s,s:{},s:b}", "$schema",
				 "http://json-schema.org/draft-07/schema#",
				 "type", "object", "properties",
				 "additionalProperties", 0);

	*hints = json_object();
	for (i = 0; i < n; i++) {
		const char *p = t[i].key, *dot;
		json_t *node = root, *leaf, *h;

		for (;;) {
			dot = strchr(p, '.');
			node = config_schema_child(node, p, dot ? (size_t)(dot - p)
							     : strlen(p));
			if (!dot)
				break;
			p = dot + 1;
		}
		leaf = config_schema_leaf(&t[i]);
		/* Keep children created before this row. */
		if (json_object_get(node, "properties") &&
		    json_object_get(leaf, "properties"))
			json_object_del(leaf, "properties");
		if (json_is_object(json_object_get(node,
						   "additionalProperties")))
			json_object_del(leaf, "additionalProperties");
		json_object_update(node, leaf);
		json_decref(leaf);
		h = json_pack("{s:s,s:s}", "help", t[i].help ? t[i].help : "",
			      "reload", config_options_reload_name(
				      t[i].reload));
		if (t[i].flags & CFG_F_SECRET)
			json_object_set_new(h, "sensitive", json_true());
		json_object_set_new(*hints, t[i].key, h);
	}
	return root;
}

json_t *config_schema_json(const char *version)
{
	json_t *hints, *schema = config_schema_build(&hints);
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:o,s:o,s:s,s:s}", "schema", schema, "uiHints",
			 hints, "version", version ? version : "", "generatedAt",
			 ts);
}

json_t *config_schema_lookup(const char *dotted)
{
	json_t *hints, *root = config_schema_build(&hints), *node = root;
	json_t *out = NULL, *children, *props, *shallow, *h = NULL;
	const char *p = dotted, *dot, *k, *hint_path = NULL;
	const struct config_option *o;
	json_t *v;
	char *pfx;

	while (p && *p) {
		char key[128];
		size_t len;

		dot = strchr(p, '.');
		len = dot ? (size_t)(dot - p) : strlen(p);
		snprintf(key, sizeof(key), "%.*s", (int)len, p);
		v = json_object_get(json_object_get(node, "properties"), key);
		if (!v && json_is_object(json_object_get(node,
				"additionalProperties")))
			v = json_object_get(node, "additionalProperties");
		if (!v)
			goto out;
		node = v;
		p = dot ? dot + 1 : NULL;
	}
	o = config_options_lookup(dotted);
	if (o) {
		h = json_object_get(hints, o->key);
		hint_path = o->key;
	}
	children = json_array();
	props = json_object_get(node, "properties");
	json_object_foreach(props, k, v) {
		pfx = *dotted ? xasprintf("%s.%s", dotted, k) : xstrdup(k);
		json_array_append_new(children, json_pack("{s:s,s:s,s:O*,s:b}",
			"key", k, "path", pfx, "type",
			json_object_get(v, "type"), "hasChildren",
			json_object_get(v, "properties") != NULL));
		free(pfx);
	}
	shallow = json_deep_copy(node);
	json_object_del(shallow, "properties");
	if (json_is_object(json_object_get(shallow, "additionalProperties")))
		json_object_set_new(shallow, "additionalProperties",
				    json_true());
	out = json_pack("{s:s,s:o,s:o}", "path", dotted, "schema", shallow,
			"children", children);
	if (h) {
		json_object_set(out, "hint", h);
		json_object_set_new(out, "hintPath", json_string(hint_path));
	}
out:
	json_decref(root);
	json_decref(hints);
	return out;
}
