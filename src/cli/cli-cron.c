/* `clawgate cron status|list|add|edit|rm|run|runs|enable|disable|get`:
 * the cron.* methods, with the flags and outputs of `openclaw cron` (JSON
 * results printed as JSON.stringify(v, null, 2); `list` as a table unless
 * --json). doc/cron.md. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"
#include "cron/cron-expr.h"

#define A(f) offsetof(struct cli_args, f)
#define C(f) offsetof(struct cli_args, cron.f)
#define CLI_CRON_TIMEOUT_MS 30000

const struct cli_opt cli_cron_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 30000)"),
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_cron_list_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 30000)"),
	{"all", CLI_OPT_FLAG, C(all), NULL, "include disabled jobs"},
	{"agent", CLI_OPT_STR, C(agent), "ID", "only this agent's jobs"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_cron_job_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 30000)"),
	{"name", CLI_OPT_STR, C(name), "NAME", "job name"},
	{"description", CLI_OPT_STR, C(description), "TEXT", "description"},
	{"at", CLI_OPT_STR, C(at), "WHEN",
	 "one run: ISO time (UTC unless --tz) or a duration (20m)"},
	{"every", CLI_OPT_STR, C(every), "DURATION", "interval (10m, 1h)"},
	{"cron", CLI_OPT_STR, C(cron), "EXPR", "5- or 6-field expression"},
	{"tz", CLI_OPT_STR, C(tz), "IANA", "time zone of --cron / --at"},
	{"stagger", CLI_OPT_STR, C(stagger), "DURATION", "stagger window"},
	{"exact", CLI_OPT_FLAG, C(exact), NULL, "no stagger"},
	{"message", CLI_OPT_STR, C(message), "TEXT", "agent message"},
	{"system-event", CLI_OPT_STR, C(system_event), "TEXT",
	 "system event text (main session)"},
	{"command", CLI_OPT_STR, C(command), "SHELL",
	 "command payload (refused unless cron.allowCommandPayload)"},
	{"agent", CLI_OPT_STR, C(agent), "ID", "agent id"},
	{"clear-agent", CLI_OPT_FLAG, C(clear_agent), NULL,
	 "edit: use the default agent"},
	{"session", CLI_OPT_STR, C(session), "TARGET",
	 "main | isolated | current | session:<key>"},
	{"session-key", CLI_OPT_STR, C(session_key), "KEY", "session key"},
	{"model", CLI_OPT_STR, C(model), "REF", "model override"},
	{"clear-model", CLI_OPT_FLAG, C(clear_model), NULL,
	 "edit: remove the model override"},
	{"thinking", CLI_OPT_STR, C(thinking), "LEVEL", "thinking level"},
	{"timeout-seconds", CLI_OPT_STR, C(timeout_seconds), "N",
	 "bound of one run (0 = none)"},
	{"wake", CLI_OPT_STR, C(wake), "MODE", "now | next-heartbeat"},
	{"disabled", CLI_OPT_FLAG, C(disabled), NULL, "create disabled"},
	{"enable", CLI_OPT_FLAG, C(enable), NULL, "edit: enable"},
	{"disable", CLI_OPT_FLAG, C(disable), NULL, "edit: disable"},
	{"delete-after-run", CLI_OPT_FLAG, C(delete_after_run), NULL,
	 "delete a one-shot job after it succeeds"},
	{"keep-after-run", CLI_OPT_FLAG, C(keep_after_run), NULL,
	 "keep a one-shot job"},
	{"announce", CLI_OPT_FLAG, C(announce), NULL,
	 "deliver the reply to --channel/--to (doc/cron.md)"},
	{"no-deliver", CLI_OPT_FLAG, C(no_deliver), NULL, "no delivery"},
	{"channel", CLI_OPT_STR, C(channel), "NAME", "delivery channel"},
	{"to", CLI_OPT_STR, C(to), "TARGET", "delivery target"},
	{"best-effort-deliver", CLI_OPT_FLAG, C(best_effort), NULL,
	 "a failed delivery does not fail the run"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_cron_run_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 30000)"),
	{"due", CLI_OPT_FLAG, C(due), NULL, "run only when due"},
	{"wait", CLI_OPT_FLAG, C(wait), NULL, "wait for the run to end"},
	{"wait-timeout", CLI_OPT_STR, C(wait_timeout), "DURATION",
	 "bound of --wait (default 10m)"},
	{"poll-interval", CLI_OPT_STR, C(poll_interval), "DURATION",
	 "poll interval of --wait (default 2s)"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_cron_runs_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 30000)"),
	{"id", CLI_OPT_STR, C(id), "ID", "job id"},
	{"run-id", CLI_OPT_STR, C(run_id), "ID", "one run"},
	{"status", CLI_OPT_STR, C(status), "STATUS", "all | ok | error | "
	 "skipped"},
	{"query", CLI_OPT_STR, C(query), "TEXT", "search summaries, errors"},
	{"offset", CLI_OPT_STR, C(offset), "N", "entries to skip"},
	{"sort", CLI_OPT_STR, C(sort), "DIR", "asc | desc"},
	{"limit", CLI_OPT_STR, C(limit), "N", "max entries (default 50)"},
	{NULL, 0, 0, NULL, NULL},
};

static const char *const cli_cron_scopes[] = {
	"operator.admin", NULL,
};

/* As openclaw: JSON {ok:false, error:{type, message}} or a line on
 * stderr. */
static void cli_cron_error(const struct cli_args *a, const char *msg)
{
	json_t *o;

	if (a->json) {
		o = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "type",
			      "cli_error", "message", msg);
		cli_json_print(stdout, o);
		json_decref(o);
	}
	fprintf(stderr, "%s\n", msg);
}

static int cli_cron_open(struct cli_args *a, struct cli_session *d)
{
	struct gwclient_err e = {0};
	int r = cli_session_open(a, cli_cron_scopes, CLI_CRON_TIMEOUT_MS,
				 3600000, d, &e);

	if (r == 1 && e.message)
		cli_cron_error(a, e.message);
	else if (r == 1 && d->ci.id)
		cli_cron_error(a, "connect failed");
	gwclient_err_free(&e);
	return r;
}

/* One request on an open connection; 0 or 1 (printed). */
static int cli_cron_req(struct cli_args *a, struct cli_session *d,
			const char *method, const json_t *params,
			json_t **payload)
{
	struct gwclient_err e = {0};
	int r = 0;

	if (gwclient_request(d->c, method, params, d->timeout, 0, payload,
			     &e) != 0) {
		cli_cron_error(a, e.message ? e.message : "request failed");
		r = 1;
	}
	gwclient_err_free(&e);
	return r;
}

/* Connect, call, print the JSON payload, close. */
static int cli_cron_simple(struct cli_args *a, const char *method,
			   json_t *params)
{
	struct cli_session d;
	json_t *p = NULL;
	int r = cli_cron_open(a, &d);

	if (r == 0)
		r = cli_cron_req(a, &d, method, params, &p);
	if (r == 0)
		cli_json_print(stdout, p);
	json_decref(p);
	json_decref(params);
	cli_session_close(&d);
	return r;
}

static int cli_cron_need_id(struct cli_args *a, const char **id)
{
	if (a->npos < 1 || !*a->pos[0]) {
		fprintf(stderr, "missing job id\n");
		return 2;
	}
	*id = a->pos[0];
	return 0;
}

int cli_cron_status(struct cli_args *a)
{
	return cli_cron_simple(a, "cron.status", json_object());
}

int cli_cron_get(struct cli_args *a)
{
	const char *id;

	if (cli_cron_need_id(a, &id))
		return 2;
	return cli_cron_simple(a, "cron.get", json_pack("{s:s}", "id", id));
}

int cli_cron_rm(struct cli_args *a)
{
	const char *id;

	if (cli_cron_need_id(a, &id))
		return 2;
	return cli_cron_simple(a, "cron.remove", json_pack("{s:s}", "id",
							   id));
}

static int cli_cron_toggle(struct cli_args *a, int on)
{
	const char *id;

	if (cli_cron_need_id(a, &id))
		return 2;
	return cli_cron_simple(a, "cron.update", json_pack("{s:s,s:{s:b}}",
		"id", id, "patch", "enabled", on));
}

int cli_cron_enable(struct cli_args *a)
{
	return cli_cron_toggle(a, 1);
}

int cli_cron_disable(struct cli_args *a)
{
	return cli_cron_toggle(a, 0);
}

/* ---- list ------------------------------------------------------------------ */

static void cli_cron_when(int64_t ms, char *buf, size_t n)
{
	int64_t d;

	if (!ms) {
		snprintf(buf, n, "-");
		return;
	}
	d = (ms - util_now_ms()) / 1000;
	if (d > 0 && d < 60)
		snprintf(buf, n, "in %llds", (long long)d);
	else if (d > 0 && d < 3600)
		snprintf(buf, n, "in %lldm", (long long)(d / 60));
	else if (d > 0 && d < 172800)
		snprintf(buf, n, "in %lldh", (long long)(d / 3600));
	else if (d > 0)
		snprintf(buf, n, "in %lldd", (long long)(d / 86400));
	else if (d > -60)
		snprintf(buf, n, "%llds ago", (long long)-d);
	else if (d > -3600)
		snprintf(buf, n, "%lldm ago", (long long)(-d / 60));
	else if (d > -172800)
		snprintf(buf, n, "%lldh ago", (long long)(-d / 3600));
	else
		snprintf(buf, n, "%lldd ago", (long long)(-d / 86400));
}

static void cli_cron_sched(const json_t *s, char *buf, size_t n)
{
	const char *k = json_string_value(json_object_get(s, "kind"));
	const char *tz = json_string_value(json_object_get(s, "tz"));

	if (k && !strcmp(k, "cron"))
		snprintf(buf, n, "cron %s%s%s", json_string_value(
			json_object_get(s, "expr")), tz ? " @ " : "",
			 tz ? tz : "");
	else if (k && !strcmp(k, "every"))
		snprintf(buf, n, "every %llds", (long long)(json_integer_value(
			json_object_get(s, "everyMs")) / 1000));
	else if (k && !strcmp(k, "at"))
		snprintf(buf, n, "at %s", json_string_value(
			json_object_get(s, "at")));
	else
		snprintf(buf, n, "%s", k ? k : "-");
}

int cli_cron_list(struct cli_args *a)
{
	struct cli_session d;
	json_t *params, *p = NULL, *v;
	int r;
	size_t i;

	params = json_pack("{s:b,s:i}", "includeDisabled", a->cron.all,
			   "limit", 200);
	if (a->cron.agent)
		json_object_set_new(params, "agentId",
				    json_string(a->cron.agent));
	r = cli_cron_open(a, &d);
	if (r == 0)
		r = cli_cron_req(a, &d, "cron.list", params, &p);
	if (r == 0 && a->json) {
		cli_json_print(stdout, p);
	} else if (r == 0) {
		if (!json_array_size(json_object_get(p, "jobs")))
			printf("No automations.\n");
		else
			printf("%-36s  %-20s  %-30s  %-9s  %-9s  %-8s  %-8s  "
			       "%s\n", "ID", "Name", "Schedule", "Next",
			       "Last", "Status", "Target", "Agent ID");
		json_array_foreach(json_object_get(p, "jobs"), i, v) {
			const json_t *st = json_object_get(v, "state");
			const char *ls = json_string_value(json_object_get(st,
							"lastRunStatus"));
			char sched[128], nx[24], la[24];

			cli_cron_sched(json_object_get(v, "schedule"), sched,
				       sizeof(sched));
			cli_cron_when(json_integer_value(json_object_get(st,
				"nextRunAtMs")), nx, sizeof(nx));
			cli_cron_when(json_integer_value(json_object_get(st,
				"lastRunAtMs")), la, sizeof(la));
			printf("%-36s  %-20.20s  %-30.30s  %-9s  %-9s  %-8s  "
			       "%-8s  %s\n",
			       json_string_value(json_object_get(v, "id")),
			       json_string_value(json_object_get(v, "name")),
			       sched, nx, la,
			       !json_is_true(json_object_get(v, "enabled")) ?
			       "disabled" : json_object_get(st, "runningAtMs") ?
			       "running" : ls ? ls : "idle",
			       json_string_value(json_object_get(v,
							"sessionTarget")),
			       json_string_value(json_object_get(v,
						"effectiveAgentId")));
		}
	}
	json_decref(p);
	json_decref(params);
	cli_session_close(&d);
	return r;
}

/* ---- add / edit ------------------------------------------------------------- */

/* A 5/6-field expression (starts like one) rather than a time. */
static int cli_cron_looks_cron(const char *s)
{
	int fields = 0, in = 0;

	if (*s == '@')
		return 1;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t')
			in = 0;
		else if (!in) {
			in = 1;
			fields++;
		}
	}
	return fields == 5 || fields == 6;
}

/* The schedule from the flags (or a positional one); NULL when none;
 * *bad set with the message printed on an invalid value. */
static json_t *cli_cron_schedule(struct cli_args *a, const char *pos,
				 int *bad)
{
	const struct cli_cron_args *o = &a->cron;
	const char *at = o->at, *every = o->every, *expr = o->cron;
	int64_t ms;
	json_t *s = NULL;

	if (pos) {
		if (cli_cron_looks_cron(pos))
			expr = pos;
		else if (cron_parse_duration(pos, 60000, &ms) == 0)
			every = pos;
		else
			at = pos;
	}
	if (!!at + !!every + !!expr > 1) {
		fprintf(stderr, "Choose at most one of --at, --every, "
			"--cron\n");
		*bad = 1;
		return NULL;
	}
	if (every) {
		if (cron_parse_duration(every, 60000, &ms) != 0 || ms <= 0) {
			fprintf(stderr, "invalid --every: %s\n", every);
			*bad = 1;
			return NULL;
		}
		s = json_pack("{s:s,s:I}", "kind", "every", "everyMs",
			      (json_int_t)ms);
	} else if (at) {
		struct cron_tz *tz = NULL;
		char err[128];

		if (o->tz && cron_tz_load(o->tz, NULL, &tz, err,
					  sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			*bad = 1;
			return NULL;
		}
		if (cron_parse_at(at, tz, &ms) == 0) {
			time_t t = (time_t)(ms / 1000);
			struct tm tm;
			char buf[48];

			gmtime_r(&t, &tm);
			strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
				 ".%03lldZ", (long long)(ms % 1000));
			s = json_pack("{s:s,s:s}", "kind", "at", "at", buf);
		} else if (cron_parse_duration(at, 60000, &ms) == 0) {
			s = json_pack("{s:s,s:s}", "kind", "at", "at", at);
		} else {
			fprintf(stderr, "invalid --at: %s\n", at);
			*bad = 1;
		}
		cron_tz_free(tz);
	} else if (expr) {
		s = json_pack("{s:s,s:s}", "kind", "cron", "expr", expr);
		if (o->tz)
			json_object_set_new(s, "tz", json_string(o->tz));
		if (o->exact)
			json_object_set_new(s, "staggerMs", json_integer(0));
		else if (o->stagger) {
			if (cron_parse_duration(o->stagger, 1000, &ms) != 0) {
				fprintf(stderr, "invalid --stagger: %s\n",
					o->stagger);
				*bad = 1;
				json_decref(s);
				return NULL;
			}
			json_object_set_new(s, "staggerMs", json_integer(ms));
		}
	}
	return s;
}

static int cli_cron_timeout_s(const char *v, double *out)
{
	char *end;

	*out = strtod(v, &end);
	return *end || *out < 0 ? -1 : 0;
}

/* Payload and delivery fields common to add and edit. */
static json_t *cli_cron_payload(struct cli_args *a, const char *pos_msg,
				int *bad)
{
	const struct cli_cron_args *o = &a->cron;
	const char *msg = o->message ? o->message : pos_msg;
	json_t *p = NULL;
	double ts;

	if (!!msg + !!o->system_event + !!o->command > 1) {
		fprintf(stderr, "Choose exactly one payload: --system-event, "
			"--message, or --command\n");
		*bad = 1;
		return NULL;
	}
	if (msg) {
		p = json_pack("{s:s,s:s}", "kind", "agentTurn", "message", msg);
		if (o->model)
			json_object_set_new(p, "model", json_string(o->model));
		if (o->thinking)
			json_object_set_new(p, "thinking",
					    json_string(o->thinking));
	} else if (o->system_event) {
		p = json_pack("{s:s,s:s}", "kind", "systemEvent", "text",
			      o->system_event);
	} else if (o->command) {
		/* as openclaw stores it; clawgate refuses shells */
		p = json_pack("{s:s,s:[s,s,s]}", "kind", "command", "argv",
			      "sh", "-lc", o->command);
	}
	if (p && o->timeout_seconds) {
		if (cli_cron_timeout_s(o->timeout_seconds, &ts) != 0) {
			fprintf(stderr, "invalid --timeout-seconds: %s\n",
				o->timeout_seconds);
			*bad = 1;
			json_decref(p);
			return NULL;
		}
		json_object_set_new(p, "timeoutSeconds", json_real(ts));
		if (ts == (double)(int64_t)ts)
			json_object_set_new(p, "timeoutSeconds",
					    json_integer((int64_t)ts));
	}
	return p;
}

/* delivery from the flags; dflt: announce when no flag says otherwise
 * (openclaw's default for isolated agent turns). */
static json_t *cli_cron_delivery(struct cli_args *a, int dflt)
{
	const struct cli_cron_args *o = &a->cron;
	json_t *d;

	if (!o->announce && !o->no_deliver && !o->channel && !o->to &&
	    !o->best_effort && !dflt)
		return NULL;
	d = json_pack("{s:s}", "mode", o->no_deliver ? "none" : "announce");
	if (o->channel)
		json_object_set_new(d, "channel", json_string(o->channel));
	if (o->to)
		json_object_set_new(d, "to", json_string(o->to));
	if (o->best_effort)
		json_object_set_new(d, "bestEffort", json_true());
	return d;
}

int cli_cron_add(struct cli_args *a)
{
	const struct cli_cron_args *o = &a->cron;
	const char *name = o->name, *pos_sched = NULL, *pos_msg = NULL;
	json_t *params = NULL, *sched, *pl, *dl;
	const char *target;
	int bad = 0, flag = o->at || o->every || o->cron, isolated;

	if (flag) {
		if (a->npos >= 1) {
			if (name && strcmp(name, a->pos[0])) {
				fprintf(stderr, "Pass the automation name "
					"either positionally or with --name, "
					"not both.\n");
				return 2;
			}
			name = a->pos[0];
		}
		if (a->npos >= 2)
			pos_msg = a->pos[1];
	} else {
		if (a->npos >= 1)
			pos_sched = a->pos[0];
		if (a->npos >= 2)
			pos_msg = a->pos[1];
	}
	sched = cli_cron_schedule(a, pos_sched, &bad);
	if (bad)
		return 2;
	if (!sched) {
		fprintf(stderr, "A schedule is required: --at, --every, --cron "
			"or a positional schedule\n");
		return 2;
	}
	pl = cli_cron_payload(a, pos_msg, &bad);
	if (bad || !pl) {
		if (!bad)
			fprintf(stderr, "Choose exactly one payload: "
				"--system-event, --message, or --command\n");
		json_decref(sched);
		return 2;
	}
	if (!name || !*name) {
		fprintf(stderr, "Cron job name is required. Pass a name or "
			"--name <name>.\n");
		json_decref(sched);
		json_decref(pl);
		return 2;
	}
	target = o->session ? o->session :
		 strcmp(json_string_value(json_object_get(pl, "kind")),
			"systemEvent") ? "isolated" : "main";
	isolated = strcmp(target, "main") != 0 &&
		   strcmp(json_string_value(json_object_get(pl, "kind")),
			  "systemEvent") != 0;
	params = json_pack("{s:s,s:b,s:o,s:s,s:s,s:o}", "name", name,
			   "enabled", !o->disabled, "schedule", sched,
			   "sessionTarget", target, "wakeMode",
			   o->wake ? o->wake : "now", "payload", pl);
	if (o->description)
		json_object_set_new(params, "description",
				    json_string(o->description));
	if (o->agent)
		json_object_set_new(params, "agentId", json_string(o->agent));
	if (o->session_key)
		json_object_set_new(params, "sessionKey",
				    json_string(o->session_key));
	if (o->delete_after_run || o->keep_after_run)
		json_object_set_new(params, "deleteAfterRun",
				    json_boolean(o->delete_after_run));
	dl = isolated ? cli_cron_delivery(a, 1) : NULL;
	if (dl)
		json_object_set_new(params, "delivery", dl);
	return cli_cron_simple(a, "cron.add", params);
}

int cli_cron_edit(struct cli_args *a)
{
	const struct cli_cron_args *o = &a->cron;
	json_t *patch, *sched, *pl, *dl;
	const char *id;
	int bad = 0;

	if (cli_cron_need_id(a, &id))
		return 2;
	if (o->enable && o->disable) {
		fprintf(stderr, "Choose --enable or --disable, not both\n");
		return 2;
	}
	patch = json_object();
	sched = cli_cron_schedule(a, NULL, &bad);
	pl = bad ? NULL : cli_cron_payload(a, NULL, &bad);
	if (bad) {
		json_decref(sched);
		json_decref(patch);
		return 2;
	}
	if (sched)
		json_object_set_new(patch, "schedule", sched);
	if (!pl && (o->model || o->thinking || o->timeout_seconds ||
		    o->clear_model)) {
		double ts;

		pl = json_pack("{s:s}", "kind", "agentTurn");
		if (o->model)
			json_object_set_new(pl, "model", json_string(o->model));
		if (o->clear_model)
			json_object_set_new(pl, "model", json_null());
		if (o->thinking)
			json_object_set_new(pl, "thinking",
					    json_string(o->thinking));
		if (o->timeout_seconds &&
		    cli_cron_timeout_s(o->timeout_seconds, &ts) == 0)
			json_object_set_new(pl, "timeoutSeconds",
					    json_real(ts));
	}
	if (pl)
		json_object_set_new(patch, "payload", pl);
	if (o->name)
		json_object_set_new(patch, "name", json_string(o->name));
	if (o->description)
		json_object_set_new(patch, "description",
				    json_string(o->description));
	if (o->agent)
		json_object_set_new(patch, "agentId", json_string(o->agent));
	if (o->clear_agent)
		json_object_set_new(patch, "agentId", json_null());
	if (o->session)
		json_object_set_new(patch, "sessionTarget",
				    json_string(o->session));
	if (o->wake)
		json_object_set_new(patch, "wakeMode", json_string(o->wake));
	if (o->enable || o->disable)
		json_object_set_new(patch, "enabled", json_boolean(o->enable));
	if (o->delete_after_run || o->keep_after_run)
		json_object_set_new(patch, "deleteAfterRun",
				    json_boolean(o->delete_after_run));
	dl = cli_cron_delivery(a, 0);
	if (dl)
		json_object_set_new(patch, "delivery", dl);
	return cli_cron_simple(a, "cron.update", json_pack("{s:s,s:o}", "id",
							   id, "patch",
							   patch));
}

/* ---- run / runs --------------------------------------------------------------- */

static int cli_cron_dur(const char *v, int64_t def, int64_t *out)
{
	if (!v) {
		*out = def;
		return 0;
	}
	return cron_parse_duration(v, 1, out);
}

int cli_cron_run(struct cli_args *a)
{
	const struct cli_cron_args *o = &a->cron;
	struct cli_session d;
	json_t *params, *res = NULL, *page = NULL, *q = NULL, *e = NULL;
	int64_t wait_ms, poll_ms, t0;
	const char *id, *st;
	int r;

	if (cli_cron_need_id(a, &id))
		return 2;
	if (cli_cron_dur(o->wait_timeout, 600000, &wait_ms) != 0) {
		fprintf(stderr, "invalid --wait-timeout\n");
		return 2;
	}
	if (cli_cron_dur(o->poll_interval, 2000, &poll_ms) != 0 ||
	    poll_ms <= 0) {
		fprintf(stderr, "invalid --poll-interval\n");
		return 2;
	}
	params = json_pack("{s:s,s:s}", "id", id, "mode", o->due ? "due" :
			   "force");
	r = cli_cron_open(a, &d);
	if (r == 0)
		r = cli_cron_req(a, &d, "cron.run", params, &res);
	if (r != 0)
		goto out;
	if (!o->wait || !json_is_true(json_object_get(res, "enqueued"))) {
		cli_json_print(stdout, res);
		r = json_is_true(json_object_get(res, "ok")) &&
		    (json_is_true(json_object_get(res, "enqueued")) ||
		     json_is_true(json_object_get(res, "ran"))) ? 0 : 1;
		goto out;
	}
	q = json_pack("{s:s,s:O,s:i}", "id", id, "runId",
		      json_object_get(res, "runId"), "limit", 1);
	t0 = util_mono_ms();
	for (;;) {
		json_decref(page);
		page = NULL;
		r = cli_cron_req(a, &d, "cron.runs", q, &page);
		if (r != 0)
			goto out;
		e = json_array_get(json_object_get(page, "entries"), 0);
		st = json_string_value(json_object_get(e, "status"));
		if (st)
			break;
		if (util_mono_ms() - t0 >= wait_ms) {
			char msg[128];

			snprintf(msg, sizeof(msg), "timed out waiting for cron "
				 "run %s", json_string_value(json_object_get(
					 res, "runId")));
			cli_cron_error(a, msg);
			r = 1;
			goto out;
		}
		usleep((useconds_t)(poll_ms * 1000));
	}
	json_object_set_new(res, "completed", json_true());
	json_object_set(res, "status", json_object_get(e, "status"));
	json_object_set(res, "completionStatus",
			json_object_get(e, "completionStatus"));
	json_object_set(res, "run", e);
	cli_json_print(stdout, res);
	st = json_string_value(json_object_get(e, "completionStatus"));
	r = st && !strcmp(st, "succeeded") ? 0 : 1;
out:
	json_decref(q);
	json_decref(page);
	json_decref(res);
	json_decref(params);
	cli_session_close(&d);
	return r;
}

int cli_cron_runs(struct cli_args *a)
{
	const struct cli_cron_args *o = &a->cron;
	const char *id = a->npos >= 1 ? a->pos[0] : o->id;
	json_t *params;
	char *end;
	long n;

	if (a->npos >= 1 && o->id && strcmp(a->pos[0], o->id)) {
		fprintf(stderr, "Conflicting job ids: positional \"%s\" and "
			"--id \"%s\".\n", a->pos[0], o->id);
		return 2;
	}
	if (!id || !*id) {
		fprintf(stderr, "missing job id. Pass it positionally or with "
			"--id.\n");
		return 2;
	}
	params = json_pack("{s:s}", "id", id);
	n = strtol(o->limit ? o->limit : "50", &end, 10);
	if (*end || n < 1 || n > 200) {
		fprintf(stderr, "invalid --limit\n");
		json_decref(params);
		return 2;
	}
	json_object_set_new(params, "limit", json_integer(n));
	if (o->offset) {
		n = strtol(o->offset, &end, 10);
		if (*end || n < 0) {
			fprintf(stderr, "invalid --offset\n");
			json_decref(params);
			return 2;
		}
		json_object_set_new(params, "offset", json_integer(n));
	}
	if (o->run_id)
		json_object_set_new(params, "runId", json_string(o->run_id));
	if (o->status)
		json_object_set_new(params, "status", json_string(o->status));
	if (o->query)
		json_object_set_new(params, "query", json_string(o->query));
	if (o->sort)
		json_object_set_new(params, "sortDir", json_string(o->sort));
	return cli_cron_simple(a, "cron.runs", params);
}
