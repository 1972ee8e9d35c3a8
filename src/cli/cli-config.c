/* `clawgate config get|set|unset|validate|diff|history|rollback|plan` and
 * `clawgate gateway restart`. get/set/unset/history/rollback talk to the
 * running gateway (config.* RPCs, so every change goes through its one
 * reload path and is recorded); validate and plan also work offline. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "config/config-reload.h"
#include "config/config.h"
#include "core/common.h"
#include "core/json5.h"
#include "core/util.h"

#define CLI_CONFIG_TIMEOUT_MS 10000
#define CLI_CONFIG_MAX_FILE (4u * 1024 * 1024)

const struct cli_opt cli_config_opts[] = {
	CLI_CLIENT_OPTS("request timeout in ms (default 10000)"),
	{NULL, 0, 0, NULL, NULL},
};

/* ---- talking to the gateway --------------------------------------------- */

struct cli_config_conn {
	struct cli_local l;
	struct cli_target t;
	struct gwclient *c;
	int timeout;
};

static int cli_config_open(struct cli_args *a, struct cli_config_conn *cc,
			   int quiet)
{
	const char *scopes[] = {"operator.admin", NULL};
	struct gwclient_opts o;
	struct gwclient_err e = {0};
	json_t *hello = NULL;
	int r;

	memset(cc, 0, sizeof(*cc));
	cli_target_local_load(a->profile, a->dev, &cc->l);
	cli_target_resolve(a, &cc->l, &cc->t);
	cc->timeout = a->timeout ? atoi(a->timeout) : CLI_CONFIG_TIMEOUT_MS;
	if (cc->timeout <= 0)
		cc->timeout = CLI_CONFIG_TIMEOUT_MS;
	cli_target_opts(&cc->t, scopes, cc->timeout, &o);
	r = gwclient_connect(&o, &cc->c, &hello, &e);
	if (r != 0 && !quiet)
		fprintf(stderr, "Gateway not reachable at %s: %s\n",
			cc->t.url, e.message ? e.message : "connect failed");
	json_decref(hello);
	gwclient_err_free(&e);
	return r ? -1 : 0;
}

static void cli_config_close(struct cli_config_conn *cc)
{
	gwclient_close(cc->c);
	cli_target_free(&cc->t);
	cli_target_local_free(&cc->l);
}

/* "- path: message" for each of a list of issues. */
static void cli_config_print_issues(FILE *f, const json_t *issues)
{
	const json_t *v;
	size_t i;

	json_array_foreach(issues, i, v)
		fprintf(f, "- %s: %s\n",
			json_string_value(json_object_get(v, "path")),
			json_string_value(json_object_get(v, "message")));
}

/* One request; prints the error. */
static int cli_config_call(struct cli_config_conn *cc, const char *method,
			   const json_t *params, json_t **payload)
{
	struct gwclient_err e = {0};
	int r;

	r = gwclient_request(cc->c, method, params, cc->timeout, 0, payload,
			     &e);
	if (r != 0) {
		fprintf(stderr, "%s failed: %s\n", method,
			e.message ? e.message : "request failed");
		cli_config_print_issues(stderr, json_object_get(
			json_object_get(e.error, "details"), "issues"));
	}
	gwclient_err_free(&e);
	return r ? -1 : 0;
}

/* ---- small helpers ------------------------------------------------------ */

/* A value given on the command line: JSON5 when it parses, else a
 * string. */
static json_t *cli_config_value(const char *s)
{
	struct json5_error err;
	json_t *v = NULL;

	if (json5_parse(s, strlen(s), &v, &err) == 0 && v)
		return v;
	return json_string(s);
}

/* {a:{b:{c:v}}} for "a.b.c" (v stolen). */
static json_t *cli_config_nest(const char *path, json_t *v)
{
	char *copy = xstrdup(path), *dot;
	json_t *o;

	while ((dot = strrchr(copy, '.'))) {
		o = json_object();
		json_object_set_new(o, dot + 1, v);
		v = o;
		*dot = 0;
	}
	o = json_object();
	json_object_set_new(o, copy, v);
	free(copy);
	return o;
}

static void cli_config_print_value(const json_t *v)
{
	if (json_is_string(v))
		printf("%s\n", json_string_value(v));
	else
		cli_json_print(stdout, v);
}

/* What res.outcome ("applied" when absent) means, in words. */
static const char *cli_config_action_word(const json_t *res)
{
	const char *outcome = json_string_value(json_object_get(res,
								"outcome"));

	if (!outcome)
		outcome = "applied";
	if (strcmp(outcome, "restart") == 0)
		return "applied; the gateway restarts";
	if (strcmp(outcome, "pending") == 0)
		return "applied hot; restart-class changes wait for a restart "
		       "(gateway.reload.mode=hot)";
	if (strcmp(outcome, "unchanged") == 0)
		return "no change";
	return "applied hot";
}

static void cli_config_print_changes(const json_t *changes)
{
	const json_t *c;
	size_t i;

	json_array_foreach(changes, i, c)
		printf("  %-7s %s\n",
		       json_string_value(json_object_get(c, "action")),
		       json_string_value(json_object_get(c, "path")));
}

/* ---- commands ----------------------------------------------------------- */

int cli_config_get(struct cli_args *a)
{
	struct cli_config_conn cc;
	json_t *p = NULL;
	const json_t *v;
	int r = 1;

	if (cli_config_open(a, &cc, 0) < 0)
		goto out;
	if (cli_config_call(&cc, "config.get", NULL, &p) < 0)
		goto out;
	v = json_object_get(p, "config");
	if (a->npos > 0)
		v = config_get(v, a->pos[0]);
	if (!v) {
		fprintf(stderr, "Config path not found: %s\n", a->pos[0]);
		goto out;
	}
	if (a->json || a->npos == 0)
		cli_json_print(stdout, v);
	else
		cli_config_print_value(v);
	r = 0;
out:
	json_decref(p);
	cli_config_close(&cc);
	return r;
}

/* set / unset: config.get for the hash, then config.patch. */
static int cli_config_patch(struct cli_args *a, const char *path,
			    json_t *value)
{
	struct cli_config_conn cc;
	json_t *p = NULL, *res = NULL, *params = NULL, *nest;
	char *raw = NULL;
	int r = 1;

	if (cli_config_open(a, &cc, 0) < 0)
		goto out;
	if (cli_config_call(&cc, "config.get", NULL, &p) < 0)
		goto out;
	nest = cli_config_nest(path, value);
	value = NULL;
	raw = json_dumps(nest, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(nest);
	params = json_pack("{s:s}", "raw", raw);
	if (json_is_true(json_object_get(p, "exists")))
		json_object_set(params, "baseHash", json_object_get(p, "hash"));
	if (cli_config_call(&cc, "config.patch", params, &res) < 0)
		goto out;
	if (a->json) {
		cli_json_print(stdout, res);
	} else {
		printf("Updated %s (%s; snapshot %lld).\n", path,
		       cli_config_action_word(res),
		       (long long)json_integer_value(json_object_get(res,
							"snapshotId")));
		cli_config_print_changes(json_object_get(res, "changes"));
	}
	r = 0;
out:
	json_decref(value);
	json_decref(p);
	json_decref(res);
	json_decref(params);
	free(raw);
	cli_config_close(&cc);
	return r;
}

int cli_config_set(struct cli_args *a)
{
	if (a->npos < 2) {
		fprintf(stderr, "Usage: clawgate config set <path> <value>\n");
		return 2;
	}
	return cli_config_patch(a, a->pos[0], cli_config_value(a->pos[1]));
}

int cli_config_unset(struct cli_args *a)
{
	if (a->npos < 1) {
		fprintf(stderr, "Usage: clawgate config unset <path>\n");
		return 2;
	}
	return cli_config_patch(a, a->pos[0], json_null());
}

/* Offline: load and validate a file (default: the active config). */
int cli_config_validate(struct cli_args *a)
{
	struct cli_local l;
	struct config_issues is = {0};
	struct gw_config *c = NULL;
	const char *path;
	int r, i;

	cli_target_local_load(a->profile, a->dev, &l);
	path = a->npos > 0 ? a->pos[0] : l.config_path;
	r = config_load(path, NULL, &c, &is);
	if (r == GW_OK && !c->file_exists && a->npos > 0) {
		fprintf(stderr, "No such file: %s\n", path);
		r = 1;
	} else if (r == GW_OK) {
		if (a->json)
			printf("{\"valid\":true,\"path\":\"%s\",\"hash\":\"%s\"}"
			       "\n", path, c->hash);
		else
			printf("Config valid: %s\n", path);
		for (i = 0; i < is.nw; i++)
			fprintf(stderr, "warning: %s: %s\n", is.w[i].path,
				is.w[i].message);
	} else {
		config_issues_print(a->json ? stderr : stdout, path, &is);
		r = 78;
	}
	config_unref(c);
	config_issues_free(&is);
	cli_target_local_free(&l);
	return r;
}

/* plan [file]: against the running gateway, else offline against the
 * active config file. */
int cli_config_plan(struct cli_args *a)
{
	struct cli_config_conn cc;
	struct config_issues is = {0};
	struct config_plan plan = {0};
	struct gw_config *cur = NULL, *neu = NULL;
	json_t *p = NULL, *params = NULL, *changes = NULL;
	const char *path;
	char *text = NULL;
	size_t len = 0;
	int r = 1, online, restart;

	online = cli_config_open(a, &cc, 1) == 0;
	path = a->npos > 0 ? a->pos[0] : cc.l.config_path;
	text = cli_read_prefix(path, CLI_CONFIG_MAX_FILE, &len);
	if (!text) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (online) {
		params = json_pack("{s:s%}", "raw", text, len);
		if (cli_config_call(&cc, "config.plan", params, &p) < 0)
			goto out;
		if (!json_is_true(json_object_get(p, "valid"))) {
			printf("Invalid config at %s:\n", path);
			cli_config_print_issues(stdout,
						json_object_get(p, "issues"));
			r = 78;
			goto out;
		}
		changes = json_incref(json_object_get(p, "changes"));
		restart = json_is_true(json_object_get(p, "restart"));
	} else {
		if (config_load(cc.l.config_path, NULL, &cur, &is) != GW_OK ||
		    config_load(path, NULL, &neu, &is) != GW_OK) {
			config_issues_print(stdout, path, &is);
			r = 78;
			goto out;
		}
		config_plan_build(cur, neu, &plan);
		changes = config_plan_json(&plan);
		restart = plan.restart;
	}
	if (a->json) {
		json_t *o = json_pack("{s:O,s:b,s:b}", "changes", changes,
				      "restart", restart, "online", online);

		cli_json_print(stdout, o);
		json_decref(o);
	} else if (json_array_size(changes) == 0) {
		printf("No changes.\n");
	} else {
		printf("Plan for %s (%s):\n", path, online ?
		       "against the running gateway" :
		       "offline, against the config file");
		cli_config_print_changes(changes);
		printf("=> %s\n", restart ? "needs a gateway restart (hybrid "
		       "mode restarts once)" : "applied hot, no restart");
	}
	r = 0;
out:
	json_decref(p);
	json_decref(params);
	json_decref(changes);
	free(text);
	config_unref(cur);
	config_unref(neu);
	config_plan_free(&plan);
	config_issues_free(&is);
	cli_config_close(&cc);
	return r;
}

int cli_config_history(struct cli_args *a)
{
	struct cli_config_conn cc;
	json_t *p = NULL, *params = json_pack("{s:i}", "limit", 50);
	const json_t *s;
	size_t i;
	int r = 1;

	if (cli_config_open(a, &cc, 0) < 0)
		goto out;
	if (cli_config_call(&cc, "config.history", params, &p) < 0)
		goto out;
	if (a->json) {
		cli_json_print(stdout, json_object_get(p, "snapshots"));
		r = 0;
		goto out;
	}
	printf("%-5s %-20s %-9s %-10s %-9s %s\n", "ID", "TIME", "SOURCE",
	       "ACTOR", "OUTCOME", "CHANGES / REASON");
	json_array_foreach(json_object_get(p, "snapshots"), i, s) {
		time_t t = (time_t)(json_integer_value(json_object_get(s,
							"ts")) / 1000);
		struct tm tm;
		char ts[32], ch[400] = "";
		const json_t *c;
		size_t j, off = 0;
		const char *reason = json_string_value(json_object_get(s,
								   "reason"));

		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		json_array_foreach(json_object_get(s, "changes"), j, c)
			if (off < sizeof(ch))
				off += (size_t)snprintf(ch + off,
					sizeof(ch) - off, "%s%s (%s)",
					j ? ", " : "", json_string_value(
						json_object_get(c, "path")),
					json_string_value(json_object_get(c,
						"action")));
		printf("%-5lld %-20s %-9s %-10s %-9s %s%s%s\n",
		       (long long)json_integer_value(json_object_get(s, "id")),
		       ts, json_string_value(json_object_get(s, "source")),
		       json_string_value(json_object_get(s, "actor")) ?
		       json_string_value(json_object_get(s, "actor")) : "-",
		       json_string_value(json_object_get(s, "outcome")), ch,
		       reason && *ch ? "; " : "", reason ? reason : "");
	}
	r = 0;
out:
	json_decref(p);
	json_decref(params);
	cli_config_close(&cc);
	return r;
}

int cli_config_rollback(struct cli_args *a)
{
	struct cli_config_conn cc;
	json_t *p = NULL, *params = json_object();
	int r = 1;

	if (a->npos > 0)
		json_object_set_new(params, "id",
				    json_integer(strtoll(a->pos[0], NULL, 10)));
	if (cli_config_open(a, &cc, 0) < 0)
		goto out;
	if (cli_config_call(&cc, "config.rollback", params, &p) < 0)
		goto out;
	if (a->json) {
		cli_json_print(stdout, p);
	} else {
		printf("Rolled back to snapshot %lld (%s; new snapshot %lld).\n",
		       (long long)json_integer_value(json_object_get(p,
							"restoredFrom")),
		       cli_config_action_word(p),
		       (long long)json_integer_value(json_object_get(p,
							"snapshotId")));
		cli_config_print_changes(json_object_get(p, "changes"));
	}
	r = 0;
out:
	json_decref(p);
	json_decref(params);
	cli_config_close(&cc);
	return r;
}

/* A diff operand: a snapshot id (over RPC) or a file (redacted). */
static json_t *cli_config_operand(struct cli_config_conn *cc, int online,
				  const char *what)
{
	char *end, *text;
	long long id = strtoll(what, &end, 10);
	json_t *p = NULL, *v = NULL, *params;
	struct json5_error err;
	size_t len = 0;

	if (*what && !*end) {
		if (!online) {
			fprintf(stderr, "snapshot %s: the gateway is not "
				"reachable\n", what);
			return NULL;
		}
		params = json_pack("{s:I}", "id", (json_int_t)id);
		if (cli_config_call(cc, "config.snapshot", params, &p) == 0)
			v = json_incref(json_object_get(p, "config"));
		json_decref(params);
		json_decref(p);
		return v;
	}
	text = cli_read_prefix(what, CLI_CONFIG_MAX_FILE, &len);
	if (!text) {
		fprintf(stderr, "cannot read %s: %s\n", what, strerror(errno));
		return NULL;
	}
	if (json5_parse(text, len, &p, &err) < 0) {
		fprintf(stderr, "%s: JSON5 parse error at line %d column %d: "
			"%s\n", what, err.line, err.column, err.message);
	} else {
		v = config_redact(p);
	}
	json_decref(p);
	free(text);
	return v;
}

/* diff [A] [B]: A defaults to the previous snapshot, B to the file. */
int cli_config_diff(struct cli_args *a)
{
	struct cli_config_conn cc;
	json_t *va = NULL, *vb = NULL, *jd = NULL;
	char **paths = NULL, sa[32] = "";
	size_t n, i;
	int online, r = 1;

	online = cli_config_open(a, &cc, 1) == 0;
	if (a->npos > 0) {
		va = cli_config_operand(&cc, online, a->pos[0]);
	} else if (online) {
		json_t *p = NULL, *params = json_pack("{s:i}", "id", 0);

		if (cli_config_call(&cc, "config.snapshot", params, &p) == 0) {
			va = json_incref(json_object_get(p, "config"));
			snprintf(sa, sizeof(sa), "%lld", (long long)
				 json_integer_value(json_object_get(p, "id")));
		}
		json_decref(p);
		json_decref(params);
	} else {
		fprintf(stderr, "config diff: the gateway is not reachable; "
			"give two files\n");
	}
	vb = cli_config_operand(&cc, online, a->npos > 1 ? a->pos[1] :
				cc.l.config_path);
	if (!va || !vb)
		goto out;
	n = config_plan_diff(va, vb, &paths);
	if (a->json)
		jd = json_array();
	for (i = 0; i < n; i++) {
		const json_t *x = config_get(va, paths[i]);
		const json_t *y = config_get(vb, paths[i]);
		char *xs = x ? json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY)
			     : NULL;
		char *ys = y ? json_dumps(y, JSON_COMPACT | JSON_ENCODE_ANY)
			     : NULL;
		const char *cls = config_options_reload_name(
			config_plan_classify(paths[i], NULL));

		if (jd)
			json_array_append_new(jd, json_pack(
				"{s:s,s:s,s:O?,s:O?,s:s}", "path", paths[i],
				"op", !x ? "add" : !y ? "remove" : "change",
				"from", x, "to", y, "reload", cls));
		else if (!x)
			printf("+ %s: %s  [%s]\n", paths[i], ys, cls);
		else if (!y)
			printf("- %s: %s  [%s]\n", paths[i], xs, cls);
		else
			printf("~ %s: %s -> %s  [%s]\n", paths[i], xs, ys,
			       cls);
		free(xs);
		free(ys);
	}
	if (jd) {
		json_t *o = json_pack("{s:s,s:s,s:O}", "a",
				      a->npos > 0 ? a->pos[0] : sa, "b",
				      a->npos > 1 ? a->pos[1]
						  : cc.l.config_path,
				      "changes", jd);

		cli_json_print(stdout, o);
		json_decref(o);
		json_decref(jd);
		r = 0;
		goto out;
	}
	if (n == 0)
		printf("No differences.\n");
	r = 0;
out:
	config_env_strv_free(paths);
	json_decref(va);
	json_decref(vb);
	cli_config_close(&cc);
	return r;
}

/* config file: the active config path (no gateway needed). */
int cli_config_file(struct cli_args *a)
{
	struct cli_local l;
	json_t *j;

	cli_target_local_load(a->profile, a->dev, &l);
	if (a->json) {
		j = json_pack("{s:s,s:b}", "path", l.config_path, "exists",
			      access(l.config_path, F_OK) == 0);
		cli_json_print(stdout, j);
		json_decref(j);
	} else {
		printf("%s\n", l.config_path);
	}
	cli_target_local_free(&l);
	return 0;
}

/* config schema: the JSON schema of openclaw.json (offline). */
int cli_config_schema(struct cli_args *a)
{
	json_t *s = config_schema_json(PACKAGE_VERSION);

	(void)a;
	cli_json_print(stdout, s);
	json_decref(s);
	return 0;
}

#define CLI_CONFIG_PATCH_FILE_MAX (8 * 1024 * 1024)
#define CLI_CONFIG_PATCH_STDIN_MAX (1024 * 1024)

const struct cli_opt cli_config_patch_opts[] = {
	{"file", CLI_OPT_STR, offsetof(struct cli_args, file), "PATH",
	 "the JSON5 merge patch (objects merge, null deletes)"},
	{"stdin", CLI_OPT_FLAG, offsetof(struct cli_args, from_stdin), NULL,
	 "read the patch from stdin"},
	{"dry-run", CLI_OPT_FLAG, offsetof(struct cli_args, dry_run), NULL,
	 "show the plan, write nothing"},
	CLI_CLIENT_OPTS("timeout in ms (default 10000)"),
	{NULL, 0, 0, NULL, NULL},
};

/* The patch text from --file or --stdin (bounded). New string or NULL. */
static char *cli_config_patch_text(const struct cli_args *a, size_t *len)
{
	char *buf;
	size_t n = 0, k;

	if (a->file && !a->from_stdin) {
		buf = cli_read_prefix(a->file, CLI_CONFIG_PATCH_FILE_MAX + 1,
				      len);
		if (!buf)
			fprintf(stderr, "cannot read %s: %s\n", a->file,
				strerror(errno));
		else if (*len > CLI_CONFIG_PATCH_FILE_MAX) {
			fprintf(stderr, "%s: patch files are limited to 8 "
				"MiB\n", a->file);
			free(buf);
			buf = NULL;
		}
		return buf;
	}
	buf = xmalloc(CLI_CONFIG_PATCH_STDIN_MAX + 2);
	while (n <= CLI_CONFIG_PATCH_STDIN_MAX &&
	       (k = fread(buf + n, 1, CLI_CONFIG_PATCH_STDIN_MAX + 1 - n,
			  stdin)) > 0)
		n += k;
	if (n > CLI_CONFIG_PATCH_STDIN_MAX) {
		fprintf(stderr, "piped patches are limited to 1 MiB\n");
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* config patch --file F | --stdin [--dry-run]: a JSON5 merge patch
 * through the gateway (one snapshot), or its plan with --dry-run. */
int cli_config_patch_cmd(struct cli_args *a)
{
	struct cli_config_conn cc;
	struct cli_args b;
	struct json5_error jerr;
	json_t *patch = NULL, *cur = NULL, *p = NULL, *res = NULL;
	json_t *params = NULL;
	char *text = NULL, *ftext = NULL, *merged = NULL, *tmp = NULL;
	char *pos[1];
	size_t len = 0, flen = 0;
	int r = 1, fd;

	memset(&cc, 0, sizeof(cc));
	if (!a->file && !a->from_stdin) {
		fprintf(stderr, "Usage: clawgate config patch --file PATCH."
			"json5 | --stdin [--dry-run]\n");
		return 2;
	}
	text = cli_config_patch_text(a, &len);
	if (!text)
		return 1;
	if (json5_parse(text, len, &patch, &jerr) < 0 ||
	    !json_is_object(patch)) {
		fprintf(stderr, "invalid patch: %s\n", json_is_object(patch)
			? "" : "must be a JSON5 object");
		goto out;
	}
	if (a->dry_run) {
		/* Merge into the file as it is and ask for the plan. */
		cli_target_local_load(a->profile, a->dev, &cc.l);
		ftext = cli_read_prefix(cc.l.config_path, CLI_CONFIG_MAX_FILE,
					&flen);
		if (ftext && json5_parse(ftext, flen, &cur, &jerr) < 0) {
			fprintf(stderr, "%s does not parse\n",
				cc.l.config_path);
			goto out;
		}
		if (!cur)
			cur = json_object();
		config_merge_patch(&cur, patch);
		merged = json_dumps(cur, JSON_INDENT(2));
		tmp = xasprintf("/tmp/clawgate-patch-XXXXXX");
		fd = mkstemp(tmp);
		if (fd < 0 || write(fd, merged, strlen(merged)) !=
				      (ssize_t)strlen(merged)) {
			fprintf(stderr, "cannot write a temporary file\n");
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
		b = *a;
		pos[0] = tmp;
		b.pos = pos;
		b.npos = 1;
		if (!a->json)
			printf("Dry run (nothing written).\n");
		r = cli_config_plan(&b);
		b.pos = NULL;
		goto out;
	}
	if (cli_config_open(a, &cc, 0) < 0 ||
	    cli_config_call(&cc, "config.get", NULL, &p) < 0)
		goto out;
	params = json_pack("{s:s%}", "raw", text, len);
	if (json_is_true(json_object_get(p, "exists")))
		json_object_set(params, "baseHash", json_object_get(p, "hash"));
	if (cli_config_call(&cc, "config.patch", params, &res) < 0)
		goto out;
	if (a->json) {
		cli_json_print(stdout, res);
	} else {
		printf("Patched the config (%s; snapshot %lld).\n",
		       cli_config_action_word(res),
		       (long long)json_integer_value(json_object_get(
			       res, "snapshotId")));
		cli_config_print_changes(json_object_get(res, "changes"));
	}
	r = 0;
out:
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	json_decref(patch);
	json_decref(cur);
	json_decref(p);
	json_decref(res);
	json_decref(params);
	xfree_secret(text);
	xfree_secret(ftext);
	xfree_secret(merged);
	cli_config_close(&cc);
	return r;
}
