/* The reload plan: the diff of two configs as dotted leaf paths and the
 * rule table that classifies each one. The rules are the option table's
 * reload classes (longest prefix wins) plus a few overrides for changes
 * clawgate applies hot where upstream restarts; an unmatched path needs a
 * restart, as upstream. */
#include <stdlib.h>
#include <string.h>

#include "config/config-reload.h"
#include "core/common.h"
#include "core/util.h"

#define CONFIG_PLAN_MAX_DEPTH 64

/* Overrides of the option table's class (checked first). */
static const struct {
	const char *prefix;
	enum config_reload cls;
} config_plan_overrides[] = {
	/* Shared-secret rotation is hot: new connections need the new
	 * secret, connections that used the old one are closed 4001. */
	{"gateway.auth.token", CONFIG_RELOAD_HOT},
	{"gateway.auth.password", CONFIG_RELOAD_HOT},
	/* The log level is set on the running logger. */
	{"logging.level", CONFIG_RELOAD_HOT},
};

struct config_plan_acc {
	char **v;
	size_t n, cap;
};

static void config_plan_acc_add(struct config_plan_acc *a, const char *path)
{
	if (a->n + 1 >= a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = xstrdup(path && *path ? path : "<root>");
	a->v[a->n] = NULL;
}

static int config_plan_is_obj_or_null(const json_t *v)
{
	return !v || json_is_object(v);
}

static void config_plan_walk(struct config_plan_acc *acc, const char *prefix,
			     const json_t *a, const json_t *b, int depth)
{
	const char *k;
	const json_t *v;
	size_t before = acc->n;

	if (a && b && json_equal((json_t *)a, (json_t *)b))
		return;
	if (!a && !b)
		return;
	if (depth >= CONFIG_PLAN_MAX_DEPTH ||
	    !config_plan_is_obj_or_null(a) || !config_plan_is_obj_or_null(b)) {
		config_plan_acc_add(acc, prefix);
		return;
	}
	/* Both objects (or one missing): descend into the union of keys. */
	json_object_foreach((json_t *)(a ? a : b), k, v) {
		const json_t *other = json_object_get(a ? b : a, k);
		char *p = *prefix ? xasprintf("%s.%s", prefix, k) : xstrdup(k);

		if (a)
			config_plan_walk(acc, p, v, other, depth + 1);
		else
			config_plan_walk(acc, p, other, v, depth + 1);
		free(p);
	}
	if (a && b) {
		json_object_foreach((json_t *)b, k, v) {
			char *p;

			if (json_object_get(a, k))
				continue;
			p = *prefix ? xasprintf("%s.%s", prefix, k)
				    : xstrdup(k);
			config_plan_walk(acc, p, NULL, v, depth + 1);
			free(p);
		}
	}
	/* An empty object appeared or vanished: the path itself. */
	if (acc->n == before)
		config_plan_acc_add(acc, prefix);
}

static int config_plan_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

size_t config_plan_diff(const json_t *a, const json_t *b, char ***paths)
{
	struct config_plan_acc acc = {0};
	json_t *empty = json_object();

	config_plan_walk(&acc, "", a ? a : empty, b ? b : empty, 0);
	json_decref(empty);
	if (acc.n > 1)
		qsort(acc.v, acc.n, sizeof(*acc.v), config_plan_cmp);
	if (!acc.v)
		acc.v = xcalloc(1, sizeof(*acc.v));
	*paths = acc.v;
	return acc.n;
}

/* 1 if prefix equals path or is a dotted prefix of it. */
static int config_plan_prefix(const char *prefix, const char *path)
{
	size_t n = strlen(prefix);

	return strncmp(prefix, path, n) == 0 &&
	       (path[n] == 0 || path[n] == '.');
}

enum config_reload config_plan_classify(const char *path, const char **rule)
{
	const struct config_option *o;
	const char *best = NULL;
	enum config_reload cls = CONFIG_RELOAD_RESTART;
	size_t i, best_len = 0;

	for (i = 0; i < ARRAY_SIZE(config_plan_overrides); i++) {
		const char *p = config_plan_overrides[i].prefix;

		if (config_plan_prefix(p, path) && strlen(p) > best_len) {
			best = p;
			best_len = strlen(p);
			cls = config_plan_overrides[i].cls;
		}
	}
	if (!best) {
		o = config_options_lookup(path);
		if (o) {
			best = o->key;
			cls = o->reload;
		}
	}
	if (rule)
		*rule = best ? best : "";
	return best ? cls : CONFIG_RELOAD_RESTART;
}

size_t config_plan_rules_count(void)
{
	size_t n;

	config_options_table(&n);
	return n + ARRAY_SIZE(config_plan_overrides);
}

const char *config_plan_rule(size_t i, enum config_reload *cls)
{
	size_t n;
	const struct config_option *t = config_options_table(&n);

	if (i < ARRAY_SIZE(config_plan_overrides)) {
		*cls = config_plan_overrides[i].cls;
		return config_plan_overrides[i].prefix;
	}
	i -= ARRAY_SIZE(config_plan_overrides);
	if (i >= n)
		return NULL;
	*cls = t[i].reload;
	return t[i].key;
}

static void config_plan_add(struct config_plan *p, const char *path)
{
	struct config_change *c;
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].path, path) == 0)
			return;
	p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
	c = &p->v[p->n++];
	c->path = xstrdup(path);
	c->cls = config_plan_classify(path, &c->rule);
	if (c->cls == CONFIG_RELOAD_RESTART)
		p->restart = 1;
	else if (c->cls == CONFIG_RELOAD_HOT)
		p->hot = 1;
}

void config_plan_build_json(const json_t *a, const json_t *b,
			    struct config_plan *p)
{
	char **paths = NULL;
	size_t i, n;

	memset(p, 0, sizeof(*p));
	n = config_plan_diff(a, b, &paths);
	for (i = 0; i < n; i++)
		config_plan_add(p, paths[i]);
	config_env_strv_free(paths);
}

/* 1 if two optional secrets differ. */
static int config_plan_secret_differs(const char *a, const char *b)
{
	if (!a || !b)
		return a != b;
	return !util_secret_equal(a, b);
}

void config_plan_build(const struct gw_config *old,
		       const struct gw_config *neu, struct config_plan *p)
{
	config_plan_build_json(old ? old->root : NULL, neu->root, p);
	if (!old)
		return;
	/* A SecretRef (file/exec/env) whose value changed is a change even
	 * when the file's text is the same. */
	if (config_plan_secret_differs(old->auth_token, neu->auth_token)) {
		config_plan_add(p, "gateway.auth.token");
		p->rotate = 1;
	}
	if (config_plan_secret_differs(old->auth_password,
				       neu->auth_password)) {
		config_plan_add(p, "gateway.auth.password");
		p->rotate = 1;
	}
}

void config_plan_free(struct config_plan *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		free(p->v[i].path);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

json_t *config_plan_json(const struct config_plan *p)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < p->n; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "path",
			p->v[i].path, "action",
			config_options_reload_name(p->v[i].cls), "rule",
			p->v[i].rule));
	return a;
}

char *config_plan_paths(const struct config_plan *p, int cls)
{
	size_t i, len = 1;
	char *s, *o;

	for (i = 0; i < p->n; i++)
		len += strlen(p->v[i].path) + 2;
	s = o = xmalloc(len);
	*s = 0;
	for (i = 0; i < p->n; i++) {
		if (cls >= 0 && (int)p->v[i].cls != cls)
			continue;
		o += sprintf(o, "%s%s", o == s ? "" : ", ", p->v[i].path);
	}
	return s;
}
