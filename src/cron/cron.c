/* Automations: job validation, the scheduler thread, runs through the
 * agent API, run history (cron.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "cron/cron-expr.h"
#include "cron/cron.h"
#include "store/store-cron.h"
#include "store/store.h"

#define CRON_MAX_JOBS 1000
#define CRON_MESSAGE_MAX (256 * 1024)
#define CRON_NAME_MAX 200
#define CRON_EVERY_MIN_MS 1000
#define CRON_DEFAULT_TOP_OF_HOUR_STAGGER_MS 300000
#define CRON_DEFAULT_MAX_CONCURRENT 1
#define CRON_DEFAULT_TIMEOUT_S 600
#define CRON_INTERRUPTED "interrupted: the gateway stopped before the run " \
	"finished"
#define CRON_CMD_OUTPUT_MAX (64 * 1024)
#define CRON_ALERT_AFTER 2
#define CRON_ALERT_COOLDOWN_MS 3600000

/* A job in memory: its public JSON (cron.get shape, state included). */
struct cron_job {
	json_t *j;
	int busy;		/* a run is queued or running */
	/* the open failure-alert incident: its cause ("" unknown, after a
	 * restart), NULL when none */
	char *incident;
};

/* One run, queued → running → done. */
struct cron_run {
	struct cron *c;
	char run_id[37];
	char *job_id, *job_name, *agent_id, *trigger;
	json_t *job;		/* snapshot at enqueue */
	int64_t run_at, queued_at, started_at, ended_at;
	char *session_key;
	struct run *r;
	struct run_sink sink;
	/* result (on_end) */
	int status;		/* enum run_status */
	char *error, *text, *model;
	int64_t in_tok, out_tok;
	/* delivery (cron_deliver) */
	const char *dstatus;	/* delivered | not-delivered | not-requested */
	char *derror;		/* why not delivered */
	const char *dsuppress;	/* empty | silent: nothing to deliver */
	/* failure alert sent for this run: -1 none, 0 failed, 1 delivered */
	int alert;
	char *alert_error;
	struct cron_run *next;
};

struct cron_cmd;

struct cron {
	struct store *store;
	struct agent_rt *agents;
	void (*on_event)(void *arg, json_t *payload);
	void *arg;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int started, stopping;
	int64_t boot_ms;
	/* config */
	int enabled;
	int max_concurrent;
	int64_t timeout_ms;
	int allow_command;
	int skip_missed;
	int64_t session_retention_ms;	/* 0: keep isolated sessions */
	json_t *failure_alert;		/* cron.failureAlert (object) or NULL */
	int (*deliver)(void *arg, const char *channel, const char *account,
		       const char *to, const char *text, char **err);
	void *deliver_arg;
	/* state */
	struct cron_job **jobs;
	int njobs, cap;
	struct cron_run *pending, *pending_tail;	/* FIFO */
	struct cron_run *done;		/* ended runs to record */
	int nrunning;
	struct cron_cmd *cmds;		/* command payloads running */
	int ncmd;
};

static char *cron_errf(const char *fmt, ...) __attribute__((format(printf,
								   1, 2)));

static char *cron_errf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static const char *cron_str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int cron_strsame(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static int64_t cron_int(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* ---- schedules ------------------------------------------------------------- */

/* Upstream's default stagger: recurring jobs at the top of every hour are
 * spread over 5 minutes. */
static int cron_top_of_hour(const char *expr)
{
	char f[6][64];
	int n, hi, i;
	const char *hour, *p;

	n = sscanf(expr, "%63s %63s %63s %63s %63s %63s", f[0], f[1], f[2],
		   f[3], f[4], f[5]);
	if (n == 5) {
		if (strcmp(f[0], "0") != 0)
			return 0;
		hour = f[1];
	} else if (n == 6) {
		if (strcmp(f[0], "0") != 0 || strcmp(f[1], "0") != 0)
			return 0;
		hour = f[2];
	} else {
		return 0;
	}
	/* every part a number, range or wildcard (with optional step), at
	 * least one wildcard */
	hi = 0;
	for (p = hour; *p;) {
		size_t l = strcspn(p, ",");

		if (*p == '*' || *p == '?')
			hi = 1;
		for (i = 0; i < (int)l; i++)
			if (!strchr("0123456789-/*?", p[i]))
				return 0;
		p += l;
		if (*p == ',')
			p++;
	}
	return hi;
}

static int64_t cron_stagger_ms(const json_t *sched)
{
	const json_t *v = json_object_get(sched, "staggerMs");
	const char *expr = cron_str(sched, "expr");

	if (json_is_integer(v) && json_integer_value(v) >= 0)
		return json_integer_value(v);
	return expr && cron_top_of_hour(expr) ?
	       CRON_DEFAULT_TOP_OF_HOUR_STAGGER_MS : 0;
}

static int64_t cron_stagger_offset(const char *id, int64_t stagger)
{
	uint8_t h[32];
	uint32_t v;

	if (stagger <= 1 || !id)
		return 0;
	util_sha256(id, strlen(id), h);
	v = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) |
	    ((uint32_t)h[2] << 8) | h[3];
	return (int64_t)(v % (uint64_t)stagger);
}

static int cron_at_ms(const json_t *sched, int64_t *out)
{
	return cron_parse_at(cron_str(sched, "at"), NULL, out);
}

int64_t cron_job_next(const json_t *job, int64_t now)
{
	const json_t *sched = json_object_get(job, "schedule");
	const json_t *st = json_object_get(job, "state");
	const char *kind = cron_str(sched, "kind");
	int64_t v, off, cursor, base, every, anchor, last;
	struct cron_expr e;
	struct cron_tz *tz = NULL;
	int i;

	if (!kind)
		return 0;
	if (!strcmp(kind, "at")) {
		if (cron_at_ms(sched, &v) != 0)
			return 0;
		last = cron_int(st, "lastRunAtMs");
		return last ? 0 : v;
	}
	if (!strcmp(kind, "every")) {
		every = cron_int(sched, "everyMs");
		anchor = cron_int(sched, "anchorMs");
		last = cron_int(st, "lastRunAtMs");
		if (every <= 0)
			return 0;
		if (last && last >= anchor && last + every > now)
			return last + every;
		if (now < anchor)
			return anchor;
		return anchor + ((now - anchor) / every + 1) * every;
	}
	if (strcmp(kind, "cron") != 0)
		return 0;
	if (cron_expr_parse(cron_str(sched, "expr"), &e, NULL, 0) != 0 ||
	    cron_tz_load(cron_str(sched, "tz"), NULL, &tz, NULL, 0) != 0)
		return 0;
	off = cron_stagger_offset(cron_str(job, "id"), cron_stagger_ms(sched));
	cursor = now - off;
	v = 0;
	for (i = 0; i < 4; i++) {
		if (cron_expr_next(&e, tz, cursor, &base) != 0)
			break;
		if (base + off > now) {
			v = base + off;
			break;
		}
		cursor = base + 1000;
	}
	cron_tz_free(tz);
	return v;
}

/* ---- events ---------------------------------------------------------------- */

static void cron_emit(struct cron *c, json_t *p)
{
	if (c->on_event)
		c->on_event(c->arg, p);
	else
		json_decref(p);
}

static void cron_emit_job(struct cron *c, const char *action,
			  const json_t *job)
{
	json_t *p = json_pack("{s:s,s:s,s:O}", "jobId", cron_str(job, "id"),
			      "action", action, "job", job);
	int64_t n = cron_int(json_object_get(job, "state"), "nextRunAtMs");

	if (n)
		json_object_set_new(p, "nextRunAtMs", json_integer(n));
	cron_emit(c, p);
}

/* ---- job validation ---------------------------------------------------------- */

static const char *const cron_add_keys[] = {
	"name", "declarationKey", "displayName", "owner", "agentId",
	"sessionKey", "description", "enabled", "deleteAfterRun", "schedule",
	"pacing", "trigger", "sessionTarget", "wakeMode", "payload",
	"delivery", "failureAlert", NULL
};

static int cron_key_in(const char *k, const char *const *keys)
{
	for (; *keys; keys++)
		if (!strcmp(k, *keys))
			return 1;
	return 0;
}

static int cron_is_shell(const char *a)
{
	static const char *const shells[] = { "sh", "bash", "dash", "zsh",
		"ksh", "fish", "ash", "busybox", NULL };
	const char *b = strrchr(a, '/');

	return cron_key_in(b ? b + 1 : a, shells);
}

/* The keys each kind may carry (protocol.schema.json CronJob). */
static const char *const cron_sched_at_keys[] = { "kind", "at", NULL };
static const char *const cron_sched_every_keys[] = { "kind", "everyMs",
						     "anchorMs", NULL };
static const char *const cron_sched_cron_keys[] = { "kind", "expr", "tz",
						    "staggerMs", NULL };
static const char *const cron_pl_turn_keys[] = { "kind", "message", "model",
	"fallbacks", "thinking", "timeoutSeconds",
	"allowUnsafeExternalContent", "lightContext", "toolsAllow",
	"toolsAllowIsDefault", NULL };
static const char *const cron_pl_event_keys[] = { "kind", "text",
	"toolsAllow", "toolsAllowIsDefault", NULL };
static const char *const cron_pl_cmd_keys[] = { "kind", "argv", "cwd", "env",
	"input", "timeoutSeconds", "noOutputTimeoutSeconds", "outputMaxBytes",
	"toolsAllow", "toolsAllowIsDefault", NULL };
static const char *const cron_delivery_keys[] = { "mode", "channel",
	"threadId", "accountId", "bestEffort", "failureDestination",
	"completionDestination", "to", NULL };

static const char *const cron_alert_keys[] = { "after", "channel", "to",
	"cooldownMs", "includeSkipped", "mode", "accountId", NULL };

/* 0, or -1 with *err naming the first key of o not in keys. */
static int cron_keys_ok(const json_t *o, const char *const *keys,
			const char *where, char **err)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)o, k, v) {
		if (!cron_key_in(k, keys)) {
			*err = cron_errf("unexpected property \"%s.%s\"", where,
					 k);
			return -1;
		}
	}
	return 0;
}

/* A job's failureAlert: false, or the published object. */
static int cron_check_alert(const json_t *fa, char **err)
{
	const json_t *v;
	const char *m;

	if (!fa || json_is_false(fa))
		return GW_OK;
	if (!json_is_object(fa)) {
		*err = cron_errf("failureAlert must be false or an object");
		return GW_EINVAL;
	}
	if (cron_keys_ok(fa, cron_alert_keys, "failureAlert", err))
		return GW_EINVAL;
	v = json_object_get(fa, "after");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1)) {
		*err = cron_errf("failureAlert.after must be an integer >= 1");
		return GW_EINVAL;
	}
	v = json_object_get(fa, "cooldownMs");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		*err = cron_errf("failureAlert.cooldownMs must be an integer "
				 ">= 0");
		return GW_EINVAL;
	}
	m = cron_str(fa, "mode");
	if (json_object_get(fa, "mode") &&
	    (!m || (strcmp(m, "announce") && strcmp(m, "webhook")))) {
		*err = cron_errf("failureAlert.mode must be announce or "
				 "webhook");
		return GW_EINVAL;
	}
	if ((json_object_get(fa, "channel") && !cron_str(fa, "channel")) ||
	    (json_object_get(fa, "to") && !cron_str(fa, "to")) ||
	    (json_object_get(fa, "accountId") && !cron_str(fa, "accountId"))) {
		*err = cron_errf("failureAlert.channel, to and accountId must "
				 "be strings");
		return GW_EINVAL;
	}
	return GW_OK;
}

/* Optional string fields of the job. */
static int cron_strs_ok(const json_t *o, const char *const *keys,
			const char *where, char **err)
{
	for (; *keys; keys++) {
		const json_t *v = json_object_get(o, *keys);

		if (v && !json_is_string(v)) {
			*err = cron_errf("%s%s must be a string", where,
					 *keys);
			return -1;
		}
	}
	return 0;
}

/* Check (and normalise) a job JSON; err names the problem. */
static int cron_validate(struct cron *c, json_t *j, int64_t now, char **err)
{
	const json_t *sched = json_object_get(j, "schedule");
	const json_t *pl = json_object_get(j, "payload");
	const json_t *v, *dl;
	const char *kind, *s;
	int64_t ms;

	v = json_object_get(j, "name");
	if (!json_is_string(v) || !*json_string_value(v) ||
	    json_string_length(v) > CRON_NAME_MAX) {
		*err = cron_errf("name is required (1-%d characters)",
				 CRON_NAME_MAX);
		return GW_EINVAL;
	}
	if (!json_is_boolean(json_object_get(j, "enabled"))) {
		*err = cron_errf("enabled must be a boolean");
		return GW_EINVAL;
	}
	v = json_object_get(j, "deleteAfterRun");
	if (v && !json_is_boolean(v)) {
		*err = cron_errf("deleteAfterRun must be a boolean");
		return GW_EINVAL;
	}
	s = cron_str(j, "agentId");
	if (json_object_get(j, "agentId") && (!s || !*s)) {
		*err = cron_errf("agentId must be a non-empty string");
		return GW_EINVAL;
	}
	if (s && c->agents && !agent_exists(c->agents, s)) {
		*err = cron_errf("unknown agent id \"%s\"", s);
		return GW_EINVAL;
	}
	v = json_object_get(j, "sessionKey");
	if (v && (!json_is_string(v) || !json_string_length(v) ||
		  json_string_length(v) > AGENT_SESSION_KEY_MAX)) {
		*err = cron_errf("sessionKey must be a non-empty string");
		return GW_EINVAL;
	}
	{
		static const char *const top[] = { "description",
			"displayName", "declarationKey", NULL };
		static const char *const pls[] = { "model", "thinking", NULL };

		if (cron_strs_ok(j, top, "", err) ||
		    cron_strs_ok(pl, pls, "payload.", err))
			return GW_EINVAL;
	}
	v = json_object_get(j, "owner");
	if (v && !json_is_object(v)) {
		*err = cron_errf("owner must be an object");
		return GW_EINVAL;
	}
	/* schedule */
	kind = cron_str(sched, "kind");
	if (!json_is_object(sched) || !kind) {
		*err = cron_errf("schedule.kind is required");
		return GW_EINVAL;
	}
	if ((!strcmp(kind, "at") || !strcmp(kind, "every") ||
	     !strcmp(kind, "cron")) &&
	    cron_keys_ok(sched, !strcmp(kind, "at") ? cron_sched_at_keys :
			 !strcmp(kind, "every") ? cron_sched_every_keys :
			 cron_sched_cron_keys, "schedule", err))
		return GW_EINVAL;
	if (!strcmp(kind, "at")) {
		s = cron_str(sched, "at");
		if (!s || cron_parse_at(s, NULL, &ms) != 0) {
			*err = cron_errf("invalid schedule.at: expected an ISO "
					 "8601 time or epoch milliseconds");
			return GW_EINVAL;
		}
	} else if (!strcmp(kind, "every")) {
		v = json_object_get(sched, "everyMs");
		if (!json_is_integer(v) ||
		    json_integer_value(v) < CRON_EVERY_MIN_MS) {
			*err = cron_errf("schedule.everyMs must be an integer "
					 ">= %d", CRON_EVERY_MIN_MS);
			return GW_EINVAL;
		}
		v = json_object_get(sched, "anchorMs");
		if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
			*err = cron_errf("schedule.anchorMs must be an "
					 "integer >= 0");
			return GW_EINVAL;
		}
		if (!v)
			json_object_set_new((json_t *)sched, "anchorMs",
					    json_integer(cron_int(j,
						"createdAtMs")));
	} else if (!strcmp(kind, "cron")) {
		struct cron_expr e;
		struct cron_tz *tz = NULL;
		char msg[160];

		s = cron_str(sched, "expr");
		if (!s || cron_expr_parse(s, &e, msg, sizeof(msg)) != 0) {
			*err = cron_errf("%s", s ? msg :
					 "schedule.expr is required");
			return GW_EINVAL;
		}
		v = json_object_get(sched, "tz");
		if (v && (!json_is_string(v) ||
			  cron_tz_load(json_string_value(v), NULL, &tz, msg,
				       sizeof(msg)) != 0)) {
			*err = cron_errf("%s", json_is_string(v) ? msg :
					 "schedule.tz must be a string");
			return GW_EINVAL;
		}
		cron_tz_free(tz);
		v = json_object_get(sched, "staggerMs");
		if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
			*err = cron_errf("schedule.staggerMs must be an "
					 "integer >= 0");
			return GW_EINVAL;
		}
		if (!cron_job_next(j, now)) {
			*err = cron_errf("cron expression \"%s\" never "
					 "matches", s);
			return GW_EINVAL;
		}
	} else {
		*err = cron_errf("schedule kind \"%s\" is not supported by "
				 "clawgate (at, every and cron are)", kind);
		return GW_EINVAL;
	}
	/* session target */
	s = cron_str(j, "sessionTarget");
	if (!s || (strcmp(s, "main") && strcmp(s, "isolated") &&
		   strcmp(s, "current") &&
		   (strncmp(s, "session:", 8) || !s[8]))) {
		*err = cron_errf("sessionTarget must be main, isolated, "
				 "current or session:<key>");
		return GW_EINVAL;
	}
	s = cron_str(j, "wakeMode");
	if (!s || (strcmp(s, "now") && strcmp(s, "next-heartbeat"))) {
		*err = cron_errf("wakeMode must be now or next-heartbeat");
		return GW_EINVAL;
	}
	if (json_object_get(j, "trigger")) {
		*err = cron_errf("conditional triggers are not supported by "
				 "clawgate");
		return GW_EINVAL;
	}
	/* payload */
	kind = cron_str(pl, "kind");
	if (!json_is_object(pl) || !kind) {
		*err = cron_errf("payload.kind is required");
		return GW_EINVAL;
	}
	if ((!strcmp(kind, "agentTurn") &&
	     cron_keys_ok(pl, cron_pl_turn_keys, "payload", err)) ||
	    (!strcmp(kind, "systemEvent") &&
	     cron_keys_ok(pl, cron_pl_event_keys, "payload", err)) ||
	    (!strcmp(kind, "command") &&
	     cron_keys_ok(pl, cron_pl_cmd_keys, "payload", err)))
		return GW_EINVAL;
	if (!strcmp(kind, "agentTurn")) {
		v = json_object_get(pl, "message");
		if (!json_is_string(v) || !json_string_length(v) ||
		    json_string_length(v) > CRON_MESSAGE_MAX) {
			*err = cron_errf("payload.message is required");
			return GW_EINVAL;
		}
		v = json_object_get(pl, "model");
		if (v && !json_is_string(v) && !json_is_null(v)) {
			*err = cron_errf("payload.model must be a string");
			return GW_EINVAL;
		}
		v = json_object_get(pl, "timeoutSeconds");
		if (v && (!json_is_number(v) || json_number_value(v) < 0)) {
			*err = cron_errf("payload.timeoutSeconds must be a "
					 "number >= 0");
			return GW_EINVAL;
		}
	} else if (!strcmp(kind, "systemEvent")) {
		v = json_object_get(pl, "text");
		if (!json_is_string(v) || !json_string_length(v) ||
		    json_string_length(v) > CRON_MESSAGE_MAX) {
			*err = cron_errf("payload.text is required");
			return GW_EINVAL;
		}
	} else if (!strcmp(kind, "command")) {
		const json_t *argv = json_object_get(pl, "argv");
		size_t i;

		if (!c->allow_command) {
			*err = cron_errf("command payloads are disabled: "
					 "clawgate runs commands on the "
					 "gateway host only when "
					 "cron.allowCommandPayload is true in "
					 "the config");
			return GW_EFORBIDDEN;
		}
		if (!json_is_array(argv) || !json_array_size(argv)) {
			*err = cron_errf("payload.argv must be a non-empty "
					 "array of strings");
			return GW_EINVAL;
		}
		for (i = 0; i < json_array_size(argv); i++)
			if (!json_is_string(json_array_get(argv, i))) {
				*err = cron_errf("payload.argv must be a "
						 "non-empty array of strings");
				return GW_EINVAL;
			}
		if (cron_is_shell(json_string_value(json_array_get(argv, 0)))) {
			*err = cron_errf("shell command payloads are refused: "
					 "clawgate never runs a command "
					 "through a shell; give the program "
					 "and its arguments as argv");
			return GW_EFORBIDDEN;
		}
		v = json_object_get(pl, "cwd");
		if (v && (!json_is_string(v) || !json_string_length(v))) {
			*err = cron_errf("payload.cwd must be a non-empty "
					 "string");
			return GW_EINVAL;
		}
		v = json_object_get(pl, "env");
		if (v) {
			const char *ek;
			json_t *ev;

			if (!json_is_object(v)) {
				*err = cron_errf("payload.env must be an "
						 "object of strings");
				return GW_EINVAL;
			}
			json_object_foreach((json_t *)v, ek, ev)
				if (!json_is_string(ev) || !*ek ||
				    strchr(ek, '=')) {
					*err = cron_errf("payload.env must be "
							 "an object of "
							 "strings");
					return GW_EINVAL;
				}
		}
		v = json_object_get(pl, "input");
		if (v && !json_is_string(v)) {
			*err = cron_errf("payload.input must be a string");
			return GW_EINVAL;
		}
	} else {
		*err = cron_errf("payload kind \"%s\" is not supported by "
				 "clawgate (agentTurn and systemEvent are)",
				 kind);
		return GW_EINVAL;
	}
	/* delivery: stored, never delivered */
	dl = json_object_get(j, "delivery");
	if (dl && !json_is_object(dl)) {
		*err = cron_errf("delivery must be an object");
		return GW_EINVAL;
	}
	if (dl && cron_keys_ok(dl, cron_delivery_keys, "delivery", err))
		return GW_EINVAL;
	s = cron_str(dl, "mode");
	if (dl && (!s || (strcmp(s, "none") && strcmp(s, "announce") &&
			  strcmp(s, "webhook")))) {
		*err = cron_errf("delivery.mode must be none, announce or "
				 "webhook");
		return GW_EINVAL;
	}
	if (dl && s && strcmp(s, "none") && strcmp(s, "announce") &&
	    strcmp(s, "webhook")) {
		*err = cron_errf("delivery.mode must be none, announce or "
				 "webhook");
		return GW_EINVAL;
	}
	return cron_check_alert(json_object_get(j, "failureAlert"), err);
}

/* The delivery a job asked for: 0 none, 1 required, 2 best effort. */
static int cron_delivery_wanted(const json_t *job)
{
	const json_t *dl = json_object_get(job, "delivery");
	const char *m = cron_str(dl, "mode");

	if (!dl || !m || !strcmp(m, "none"))
		return 0;
	return json_is_true(json_object_get(dl, "bestEffort")) ? 2 : 1;
}

/* ---- jobs in memory ---------------------------------------------------------- */

static struct cron_job *cron_find(struct cron *c, const char *id, int *idx)
{
	int i;

	if (!id)
		return NULL;
	for (i = 0; i < c->njobs; i++)
		if (!strcmp(cron_str(c->jobs[i]->j, "id"), id)) {
			if (idx)
				*idx = i;
			return c->jobs[i];
		}
	return NULL;
}

static json_t *cron_state(json_t *j)
{
	json_t *st = json_object_get(j, "state");

	if (!json_is_object(st)) {
		st = json_object();
		json_object_set_new(j, "state", st);
	}
	return st;
}

/* Recompute state.nextRunAtMs (none when disabled). */
static void cron_reschedule(json_t *j, int64_t now)
{
	json_t *st = cron_state(j);
	int64_t n = json_is_true(json_object_get(j, "enabled")) ?
		    cron_job_next(j, now) : 0;

	if (n)
		json_object_set_new(st, "nextRunAtMs", json_integer(n));
	else
		json_object_del(st, "nextRunAtMs");
}

static int cron_save(struct cron *c, json_t *j)
{
	int r = store_cron_job_put(c->store, j);

	if (r != GW_OK)
		log_error("cron", "cannot save job %s: %s", cron_str(j, "id"),
			  gw_err_str(r));
	return r;
}

static void cron_wake(struct cron *c)
{
	pthread_cond_signal(&c->cv);
}

static json_t *cron_not_found(const char *id, char **err)
{
	*err = cron_errf("Automation not found: %s. List automations and "
			 "retry with a current job id.", id);
	return json_pack("{s:s,s:s}", "code", "CRON_JOB_NOT_FOUND", "jobId",
			 id);
}

static const char *cron_param_id(const json_t *p)
{
	const char *id = cron_str(p, "id");

	return id && *id ? id : cron_str(p, "jobId");
}

/* ---- runs ---------------------------------------------------------------------- */

static void cron_run_free(struct cron_run *r)
{
	if (!r)
		return;
	if (r->r)
		run_unref(r->r);
	json_decref(r->job);
	free(r->job_id);
	free(r->job_name);
	free(r->agent_id);
	free(r->trigger);
	free(r->session_key);
	free(r->error);
	free(r->text);
	free(r->model);
	free(r->derror);
	free(r->alert_error);
	free(r);
}

static void cron_run_row(const struct cron_run *r, const char *status,
			 struct store_cron_run *x)
{
	memset(x, 0, sizeof(*x));
	x->run_id = r->run_id;
	x->job_id = r->job_id;
	x->job_name = r->job_name;
	x->agent_id = r->agent_id;
	x->trigger = r->trigger;
	x->status = status;
	x->run_at = r->run_at;
	x->queued_at = r->queued_at;
	x->started_at = r->started_at;
	x->session_key = r->session_key;
	x->input_tokens = -1;
	x->output_tokens = -1;
}

/* The session a run of job uses. */
static char *cron_session_for(struct cron *c, const json_t *job,
			      const char *agent, const char *run_id)
{
	const char *t = cron_str(job, "sessionTarget");
	const char *sk = cron_str(job, "sessionKey");

	(void)c;
	if (t && !strcmp(t, "main"))
		return agent_session_key_main(agent);
	if (t && !strncmp(t, "session:", 8)) {
		if (!strncmp(t + 8, "agent:", 6))
			return xstrdup(t + 8);
		return xasprintf("agent:%s:%s", agent, t + 8);
	}
	if (t && !strcmp(t, "current") && sk && *sk) {
		if (!strncmp(sk, "agent:", 6))
			return xstrdup(sk);
		return xasprintf("agent:%s:%s", agent, sk);
	}
	return xasprintf("agent:%s:cron:%s:run:%s", agent,
			 cron_str(job, "id"), run_id);
}

static void cron_emit_started(struct cron *c, struct cron_run *r,
			      const json_t *job)
{
	json_t *p;

	p = json_pack("{s:s,s:s,s:s,s:I,s:s}", "jobId", r->job_id, "action",
		      "started", "runId", r->run_id, "runAtMs",
		      (json_int_t)r->started_at, "sessionKey",
		      r->session_key);
	if (job)
		json_object_set(p, "job", (json_t *)job);
	cron_emit(c, p);
}

/* Queue a run of cj (locked): one transaction writes the run row and the
 * job's next slot. immediate: a slot is free, the run is written as
 * running and counted; the caller launches it. Else it waits in
 * c->pending. *out (may be NULL) gets the run (borrowed). */
static int cron_enqueue(struct cron *c, struct cron_job *cj,
			const char *trigger, int64_t due, int64_t now,
			int immediate, struct cron_run **out)
{
	struct cron_run *r = xcalloc(1, sizeof(*r));
	struct store_cron_run x;
	const char *agent = cron_str(cj->j, "agentId");
	json_t *nj = json_deep_copy(cj->j), *st = cron_state(nj);
	int rc;

	r->c = c;
	r->alert = -1;
	util_uuid(r->run_id);
	r->job_id = xstrdup(cron_str(cj->j, "id"));
	r->job_name = xstrdup(cron_str(cj->j, "name"));
	if (!agent && c->agents)
		agent = agent_default_id(c->agents);
	r->agent_id = xstrdup(agent ? agent : "main");
	r->trigger = xstrdup(trigger);
	r->job = json_deep_copy(cj->j);
	r->run_at = due;
	r->queued_at = now;
	r->session_key = cron_session_for(c, cj->j, r->agent_id, r->run_id);
	/* The job's next slot is decided now: a restart after this point
	 * finds the run interrupted, not due again. A manual run leaves the
	 * schedule alone. */
	if (strcmp(trigger, "manual") != 0) {
		json_t *sched = json_object_get(nj, "schedule");

		if (!strcmp(cron_str(sched, "kind"), "at"))
			json_object_del(st, "nextRunAtMs");
		else {
			int64_t n = cron_job_next(nj, now > due ? now : due);

			if (n)
				json_object_set_new(st, "nextRunAtMs",
						    json_integer(n));
			else
				json_object_del(st, "nextRunAtMs");
		}
	}
	json_object_set_new(st, "runningAtMs", json_integer(now));
	if (immediate)
		r->started_at = now;
	cron_run_row(r, immediate ? "running" : "queued", &x);
	rc = store_cron_run_job_put(c->store, &x, nj, NULL);
	if (rc != GW_OK) {
		log_error("cron", "cannot queue a run of job %s: %s",
			  r->job_id, gw_err_str(rc));
		json_decref(nj);
		cron_run_free(r);
		return rc;
	}
	json_decref(cj->j);
	cj->j = nj;
	cj->busy = 1;
	if (immediate) {
		c->nrunning++;
		cron_emit_started(c, r, cj->j);
	} else {
		if (c->pending_tail)
			c->pending_tail->next = r;
		else
			c->pending = r;
		c->pending_tail = r;
	}
	if (out)
		*out = r;
	return GW_OK;
}

static void cron_run_on_end(void *arg, const struct run_result *res)
{
	struct cron_run *r = arg;
	struct cron *c = r->c;

	/* agent thread: copy, post, return */
	r->status = res->status;
	r->error = res->error ? xstrdup(res->error) : NULL;
	r->text = xstrdup(res->text ? res->text : "");
	r->model = res->model ? xstrdup(res->model) : NULL;
	r->in_tok = res->input_tokens;
	r->out_tok = res->output_tokens;
	r->ended_at = util_now_ms();
	pthread_mutex_lock(&c->mu);
	r->next = c->done;
	c->done = r;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* ---- command payloads: a program without a shell ------------------------- */

struct cron_cmd {
	struct cron *c;
	pid_t pid;
	struct cron_cmd *next;
	struct cron_run *r;
	char **argv, **envp;
	char *cwd, *input;
	int64_t timeout_ms;
	size_t out_max;
};

static void cron_cmd_free(struct cron_cmd *x)
{
	char **p;

	for (p = x->argv; p && *p; p++)
		free(*p);
	free(x->argv);
	for (p = x->envp; p && *p; p++)
		free(*p);
	free(x->envp);
	free(x->cwd);
	free(x->input);
	free(x);
}

extern char **environ;

static int cron_utf8_ok(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	int ok = j != NULL;

	json_decref(j);
	return ok;
}

/* Forget a finished command (its thread is about to return). */
static void cron_cmd_done(struct cron *c, struct cron_cmd *x)
{
	struct cron_cmd **pp;

	pthread_mutex_lock(&c->mu);
	for (pp = &c->cmds; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	c->ncmd--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Run argv (no shell), feed input, capture stdout+stderr (bounded), kill
 * it at the timeout; the result goes to the scheduler like a run's end. */
static void *cron_cmd_thread(void *arg)
{
	struct cron_cmd *x = arg;
	struct run_result res = {0};
	posix_spawn_file_actions_t fa;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, st = 0, rc;
	char *buf = xmalloc(x->out_max + 1), *err = NULL;
	size_t got = 0, inoff = 0, inlen = x->input ? strlen(x->input) : 0;
	int64_t t0 = util_mono_ms();
	pid_t pid = -1;
	int killed = 0;

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		err = cron_errf("cannot run the command: %s", strerror(errno));
		goto done;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, out[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (x->cwd)
		posix_spawn_file_actions_addchdir_np(&fa, x->cwd);
	rc = posix_spawnp(&pid, x->argv[0], &fa, NULL, x->argv,
			  x->envp ? x->envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc == 0) {
		pthread_mutex_lock(&x->c->mu);
		x->pid = pid;
		if (x->c->stopping)
			kill(pid, SIGKILL);
		pthread_mutex_unlock(&x->c->mu);
	}
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	if (rc != 0) {
		pid = -1;
		err = cron_errf("cannot run %s: %s", x->argv[0],
				strerror(rc));
		goto done;
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	if (!inlen) {
		close(in[1]);
		in[1] = -1;
	}
	for (;;) {
		struct pollfd pf[2];
		int n = 0, left = -1;
		int64_t el = util_mono_ms() - t0;

		if (x->timeout_ms > 0) {
			if (el >= x->timeout_ms) {
				kill(pid, SIGKILL);
				killed = 1;
				break;
			}
			left = (int)(x->timeout_ms - el);
		}
		pf[n].fd = out[0];
		pf[n++].events = POLLIN;
		if (in[1] >= 0) {
			pf[n].fd = in[1];
			pf[n++].events = POLLOUT;
		}
		if (poll(pf, (nfds_t)n, left) < 0 && errno != EINTR)
			break;
		if (n == 2 && pf[1].revents) {
			ssize_t w = write(in[1], x->input + inoff,
					  inlen - inoff);

			if (w > 0)
				inoff += (size_t)w;
			if (w < 0 || inoff >= inlen) {
				close(in[1]);
				in[1] = -1;
			}
		}
		if (pf[0].revents) {
			char tmp[4096];
			ssize_t k = read(out[0], tmp, sizeof(tmp));

			if (k <= 0)
				break;
			if (got < x->out_max) {
				size_t c = (size_t)k < x->out_max - got ?
					   (size_t)k : x->out_max - got;

				memcpy(buf + got, tmp, c);
				got += c;
			}
		}
	}
	/* the output is closed; the program may still run until the bound */
	while (!killed) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (w == 0 && x->timeout_ms > 0 &&
		    util_mono_ms() - t0 >= x->timeout_ms) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
		if (w == 0)
			poll(NULL, 0, 10);
	}
	if (killed)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	if (killed)
		err = cron_errf("command timed out after %llds",
				(long long)(x->timeout_ms / 1000));
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		err = cron_errf("command exited with code %d",
				WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		err = cron_errf("command killed by signal %d", WTERMSIG(st));
done:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	buf[got] = '\0';
	/* output is text for the run history: cut invalid UTF-8 */
	while (got > 0 && !cron_utf8_ok(buf, got)) {
		got--;
		buf[got] = '\0';
	}
	res.status = killed ? RUN_TIMEOUT : err ? RUN_ERROR : RUN_OK;
	res.error = killed ? NULL : err;
	res.text = buf;
	cron_run_on_end(x->r, &res);
	free(err);
	free(buf);
	cron_cmd_done(x->c, x);
	cron_cmd_free(x);
	return NULL;
}

static int cron_cmd_start(struct cron *c, struct cron_run *r, char **err)
{
	const json_t *pl = json_object_get(r->job, "payload");
	const json_t *argv = json_object_get(pl, "argv"), *env, *v;
	struct cron_cmd *x = xcalloc(1, sizeof(*x));
	pthread_attr_t at;
	pthread_t t;
	size_t i, n = 0;
	const char *k;

	x->c = c;
	x->r = r;
	x->argv = xcalloc(json_array_size(argv) + 1, sizeof(char *));
	for (i = 0; i < json_array_size(argv); i++)
		x->argv[i] = xstrdup(json_string_value(json_array_get(argv,
								      i)));
	env = json_object_get(pl, "env");
	if (json_object_size(env)) {
		char **e;

		for (e = environ; *e; e++)
			n++;
		x->envp = xcalloc(n + json_object_size(env) + 1,
				  sizeof(char *));
		n = 0;
		for (e = environ; *e; e++) {
			size_t l = strcspn(*e, "=");
			char *name = xasprintf("%.*s", (int)l, *e);

			if (!json_object_get(env, name))
				x->envp[n++] = xstrdup(*e);
			free(name);
		}
		json_object_foreach((json_t *)env, k, v)
			x->envp[n++] = xasprintf("%s=%s", k,
						 json_string_value(v));
	}
	if (cron_str(pl, "cwd"))
		x->cwd = xstrdup(cron_str(pl, "cwd"));
	if (cron_str(pl, "input"))
		x->input = xstrdup(cron_str(pl, "input"));
	v = json_object_get(pl, "outputMaxBytes");
	x->out_max = json_is_integer(v) && json_integer_value(v) > 0 &&
		     json_integer_value(v) < CRON_CMD_OUTPUT_MAX ?
		     (size_t)json_integer_value(v) : CRON_CMD_OUTPUT_MAX;
	pthread_mutex_lock(&c->mu);
	x->timeout_ms = c->timeout_ms;
	pthread_mutex_unlock(&c->mu);
	v = json_object_get(pl, "timeoutSeconds");
	/* range-check the double before x1000 (NaN/huge: UB) */
	if (json_is_number(v))
		x->timeout_ms = !(json_number_value(v) > 0) ? 0 :
			json_number_value(v) > 366 * 86400 ?
			(int64_t)366 * 86400 * 1000 :
			(int64_t)(json_number_value(v) * 1000);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&c->mu);
	x->next = c->cmds;
	c->cmds = x;
	c->ncmd++;
	pthread_mutex_unlock(&c->mu);
	if (pthread_create(&t, &at, cron_cmd_thread, x) != 0) {
		pthread_attr_destroy(&at);
		cron_cmd_done(c, x);
		cron_cmd_free(x);
		*err = cron_errf("cannot start the command thread");
		return GW_EINTERNAL;
	}
	pthread_attr_destroy(&at);
	return GW_OK;
}

/* Start a run (cron thread, unlocked). */
static void cron_launch(struct cron *c, struct cron_run *r)
{
	const json_t *pl = json_object_get(r->job, "payload");
	const json_t *v;
	struct run_request rq = {0};
	const char *msg, *model;
	char *err = NULL, *line = NULL;
	int rc = GW_EUNAVAIL;

	if (!strcmp(cron_str(pl, "kind"), "command")) {
		if (cron_cmd_start(c, r, &err) != GW_OK) {
			struct run_result res = {0};

			res.status = RUN_ERROR;
			res.error = err;
			cron_run_on_end(r, &res);
		}
		free(err);
		return;
	}
	msg = cron_str(pl, "message");
	if (!strcmp(cron_str(pl, "kind"), "systemEvent")) {
		/* clawgate's heartbeat model is the `wake` method's: a
		 * system event joins the next turn of the session;
		 * next-heartbeat only queues it, now runs that turn at once */
		const char *t = cron_str(pl, "text");

		if (!cron_strsame(cron_str(r->job, "wakeMode"), "now")) {
			struct run_result res = {0};

			rc = c->agents ? agent_wake(c->agents, r->agent_id,
						    r->session_key, t,
						    "next-heartbeat", NULL,
						    &err) : GW_EUNAVAIL;
			res.status = rc == GW_OK ? RUN_OK : RUN_ERROR;
			res.error = rc == GW_OK ? NULL : err ? err :
				    "the agent runtime is unavailable";
			cron_run_on_end(r, &res);
			free(err);
			return;
		}
		line = cron_errf("System event: %s", t);
		msg = line;
	}
	model = cron_str(pl, "model");
	rq.agent_id = r->agent_id;
	rq.session_key = r->session_key;
	rq.run_id = r->run_id;
	rq.messages = json_pack("[{s:s,s:s}]", "role", "user", "content",
				msg ? msg : "");
	rq.use_history = 1;
	rq.model_override = model && *model ? model : NULL;
	rq.channel = "cron";
	v = json_object_get(pl, "timeoutSeconds");
	pthread_mutex_lock(&c->mu);
	rq.timeout_ms = c->timeout_ms;
	pthread_mutex_unlock(&c->mu);
	/* range-check the double before x1000 (NaN/huge: UB) */
	if (json_is_number(v))
		rq.timeout_ms = !(json_number_value(v) > 0) ? 0 :
			json_number_value(v) > 366 * 86400 ?
			(int64_t)366 * 86400 * 1000 :
			(int64_t)(json_number_value(v) * 1000);
	r->sink.on_end = cron_run_on_end;
	r->sink.arg = r;
	if (c->agents)
		rc = run_start(c->agents, &rq, &r->sink, &r->r, &err);
	else
		json_decref(rq.messages);
	if (rc != GW_OK) {
		struct run_result res = {0};

		res.status = RUN_ERROR;
		res.error = err ? err : "the agent runtime is unavailable";
		cron_run_on_end(r, &res);
	}
	free(err);
	free(line);
}

/* Mark a queued run started (locked). */
static void cron_started(struct cron *c, struct cron_run *r, int64_t now)
{
	struct store_cron_run x;
	struct cron_job *cj = cron_find(c, r->job_id, NULL);

	r->started_at = now;
	cron_run_row(r, "running", &x);
	if (cj)
		json_object_set_new(cron_state(cj->j), "runningAtMs",
				    json_integer(now));
	if (store_cron_run_job_put(c->store, &x, cj ? cj->j : NULL, NULL) !=
	    GW_OK)
		log_error("cron", "cannot record the start of run %s",
			  r->run_id);
	cron_emit_started(c, r, cj ? cj->j : NULL);
}

/* ---- delivery and failure alerts ------------------------------------------- */

/* Where a message goes: a channel conversation. */
struct cron_route {
	char *channel, *to, *account;
};

static void cron_route_clear(struct cron_route *rt)
{
	free(rt->channel);
	free(rt->to);
	free(rt->account);
	memset(rt, 0, sizeof(*rt));
}

/* Resolve channel/to/accountId as upstream's announce does: an explicit
 * channel, else the provider prefix of `to` ("irc:#room"), else the only
 * channel clawgate has (irc); clawgate keeps no "last" route, so `to` is
 * required. 0, or -1 with *err. */
static int cron_route_resolve(const char *ch, const char *to,
			      const char *acct, struct cron_route *rt,
			      char **err)
{
	if (!to || !*to) {
		*err = cron_errf("no delivery target: set delivery.to "
				 "(clawgate keeps no last route)");
		return -1;
	}
	if (!ch || !*ch || !strcmp(ch, "last"))
		ch = "irc";
	if (!strncmp(to, "irc:", 4)) {
		if (strcmp(ch, "irc")) {
			*err = cron_errf("the target names channel irc, the "
					 "delivery channel is %s", ch);
			return -1;
		}
		to += 4;
	}
	rt->channel = xstrdup(ch);
	rt->to = xstrdup(to);
	rt->account = acct && *acct ? xstrdup(acct) : NULL;
	return 0;
}

static int cron_route_send(struct cron *c, const struct cron_route *rt,
			   const char *text, char **err)
{
	if (!c->deliver) {
		*err = cron_errf("clawgate has no channel subsystem running");
		return GW_EUNAVAIL;
	}
	return c->deliver(c->deliver_arg, rt->channel, rt->account, rt->to,
			  text, err);
}

/* Deliver the answer of an ended run as its job's delivery asks (cron
 * thread, unlocked): r->dstatus, r->derror, r->dsuppress. */
static void cron_deliver(struct cron *c, struct cron_run *r)
{
	const json_t *dl = json_object_get(r->job, "delivery");
	const char *mode = cron_str(dl, "mode"), *t = r->text;
	struct cron_route rt = { 0 };
	char *err = NULL;
	size_t n;

	r->dstatus = "not-requested";
	if (!cron_delivery_wanted(r->job))
		return;
	r->dstatus = "not-delivered";
	if (r->status != RUN_OK) {
		r->derror = cron_errf("not delivered: the run failed");
		return;
	}
	if (!strcmp(mode, "webhook")) {
		r->derror = cron_errf("not delivered: webhook delivery is not "
				      "supported by clawgate");
		return;
	}
	while (t && (*t == ' ' || *t == '\n' || *t == '\t' || *t == '\r'))
		t++;
	n = t ? strlen(t) : 0;
	while (n && (t[n - 1] == ' ' || t[n - 1] == '\n' ||
		     t[n - 1] == '\t' || t[n - 1] == '\r'))
		n--;
	if (!n) {
		r->dsuppress = "empty";
		return;
	}
	if (n == 8 && !strncmp(t, "NO_REPLY", 8)) {
		r->dsuppress = "silent";
		return;
	}
	if (cron_route_resolve(cron_str(dl, "channel"), cron_str(dl, "to"),
			       cron_str(dl, "accountId"), &rt, &err) == 0 &&
	    cron_route_send(c, &rt, r->text, &err) == GW_OK) {
		r->dstatus = "delivered";
	} else {
		r->derror = cron_errf("not delivered: %s%s%s",
				      rt.channel ? rt.channel : "",
				      rt.channel ? ": " : "",
				      err ? err : "send failed");
	}
	log_info("cron", "job %s run %s: delivery to %s %s: %s", r->job_id,
		 r->run_id, rt.channel ? rt.channel : "-", rt.to ? rt.to : "-",
		 r->derror ? r->derror : "delivered");
	free(err);
	cron_route_clear(&rt);
}

static int64_t cron_alert_int(const json_t *ja, const json_t *g,
			      const char *k, int64_t def)
{
	const json_t *v = json_object_get(ja, k);

	if (!json_is_integer(v))
		v = json_object_get(g, k);
	return json_is_integer(v) && json_integer_value(v) >= 0 ?
	       json_integer_value(v) : def;
}

/* Decide the failure alert (or recovery notice) for an ended run, as
 * upstream's policy (doc/cron.md), locked. Returns 1 with *rt and *text
 * to send (then the incident and lastFailureAlertAtMs are already
 * updated), 0 for none, -1 when an alert is due but has no usable route
 * (*text is then the reason). */
static int cron_alert_plan(struct cron *c, struct cron_run *r, int64_t now,
			   struct cron_route *rt, char **text)
{
	struct cron_job *cj = cron_find(c, r->job_id, NULL);
	const json_t *ja, *g = c->failure_alert, *dl, *fd, *src;
	const char *name, *cause, *mode = NULL;
	int explicit, exec_fail, dlv_fail, alt = 0, primary = 0;
	int64_t errs, after, cooldown, last;
	char *err = NULL;

	if (!cj)
		return 0;
	ja = json_object_get(cj->j, "failureAlert");
	dl = json_object_get(cj->j, "delivery");
	if (json_is_false(ja))
		return 0;
	explicit = json_is_object(ja);
	exec_fail = r->status != RUN_OK;
	dlv_fail = !exec_fail && cron_delivery_wanted(cj->j) == 1 &&
		   strcmp(r->dstatus, "delivered") && !r->dsuppress;
	if (!explicit &&
	    (json_is_false(json_object_get(g, "enabled")) ||
	     json_is_true(json_object_get(dl, "bestEffort"))))
		return 0;
	/* the route: the job's own, then delivery.failureDestination over
	 * the global one, then the primary announce target */
	fd = json_object_get(dl, "failureDestination");
	if (explicit && (cron_str(ja, "channel") || cron_str(ja, "to"))) {
		src = ja;
		mode = cron_str(ja, "mode");
		alt = cron_route_resolve(cron_str(ja, "channel"),
					 cron_str(ja, "to"),
					 cron_str(ja, "accountId"), rt,
					 &err) == 0;
	} else if (cron_str(fd, "to") || cron_str(g, "to")) {
		src = cron_str(fd, "to") ? fd : g;
		mode = cron_str(fd, "mode") ? cron_str(fd, "mode") :
		       cron_str(g, "mode");
		alt = cron_route_resolve(cron_str(fd, "channel") ?
					 cron_str(fd, "channel") :
					 cron_str(g, "channel"),
					 cron_str(src, "to"),
					 cron_str(fd, "accountId") ?
					 cron_str(fd, "accountId") :
					 cron_str(g, "accountId"), rt,
					 &err) == 0;
	} else if (cron_str(dl, "mode") &&
		   !strcmp(cron_str(dl, "mode"), "announce") &&
		   cron_str(dl, "to")) {
		primary = cron_route_resolve(cron_str(dl, "channel"),
					     cron_str(dl, "to"),
					     cron_str(dl, "accountId"), rt,
					     &err) == 0;
	}
	/* without a route only an alert object activates the policy */
	if (!alt && !primary && !err && !explicit && !json_is_object(g))
		return 0;
	name = cron_str(cj->j, "name");
	if (!exec_fail && !dlv_fail) {
		if (!cj->incident || (!alt && !primary))
			goto none;
		free(cj->incident);
		cj->incident = NULL;
		*text = cron_errf("Automation \"%s\" recovered: its last run "
				  "succeeded.", name);
		free(err);
		return 1;
	}
	cooldown = cron_alert_int(ja, g, "cooldownMs", CRON_ALERT_COOLDOWN_MS);
	last = cron_int(cron_state(cj->j), "lastFailureAlertAtMs");
	if (exec_fail) {
		errs = cron_int(cron_state(cj->j), "consecutiveErrors") + 1;
		after = cron_alert_int(ja, g, "after", CRON_ALERT_AFTER);
		if (after < 1)
			after = 1;
		if (errs < after)
			goto none;
		cause = r->status == RUN_TIMEOUT ? "timed out" :
			r->status == RUN_ABORTED ? "aborted" : "failed";
	} else {
		/* a delivery failure alerts only through an alternate
		 * route, never the primary one that just failed */
		if (!alt)
			goto none;
		errs = 0;
		cause = "delivery failed";
	}
	/* one incident per cause; a changed cause after the cooldown */
	if (cj->incident && (!strcmp(cj->incident, cause) ||
			     now - last < cooldown))
		goto none;
	free(cj->incident);
	cj->incident = xstrdup(cause);
	json_object_set_new(cron_state(cj->j), "lastFailureAlertAtMs",
			    json_integer(now));
	if (err || (!alt && !primary) || (mode && !strcmp(mode, "webhook"))) {
		cron_route_clear(rt);
		*text = err ? err : cron_errf("%s",
			mode && !strcmp(mode, "webhook") ?
			"webhook failure alerts are not supported by clawgate" :
			"no failure alert target: set failureAlert.to or "
			"cron.failureAlert.to");
		return -1;
	}
	if (exec_fail)
		*text = cron_errf("Automation \"%s\" %s (%lld consecutive "
				  "failure%s). Details: openclaw cron runs "
				  "--id %s", name, cause, (long long)errs,
				  errs == 1 ? "" : "s", r->job_id);
	else
		*text = cron_errf("Automation \"%s\" ran, but its result could "
				  "not be delivered. Details: openclaw cron "
				  "runs --id %s", name, r->job_id);
	return 1;
none:
	free(err);
	cron_route_clear(rt);
	return 0;
}

/* Deliver, then decide and send the failure alert of an ended run
 * (cron thread, called locked; unlocks around the sends). */
static void cron_after_run(struct cron *c, struct cron_run *r)
{
	struct cron_route rt = { 0 };
	char *text = NULL, *err = NULL;
	int k;

	pthread_mutex_unlock(&c->mu);
	cron_deliver(c, r);
	pthread_mutex_lock(&c->mu);
	k = cron_alert_plan(c, r, util_now_ms(), &rt, &text);
	if (k < 0) {
		r->alert = 0;
		r->alert_error = text;
		log_warn("cron", "job %s: failure alert not sent: %s",
			 r->job_id, text);
		return;
	}
	if (k == 0)
		return;
	pthread_mutex_unlock(&c->mu);
	if (cron_route_send(c, &rt, text, &err) == GW_OK) {
		r->alert = 1;
	} else {
		r->alert = 0;
		r->alert_error = cron_errf("%s: %s", rt.channel,
					   err ? err : "send failed");
	}
	log_info("cron", "job %s: failure notification to %s %s: %s",
		 r->job_id, rt.channel, rt.to,
		 r->alert ? "delivered" : r->alert_error);
	pthread_mutex_lock(&c->mu);
	free(err);
	free(text);
	cron_route_clear(&rt);
}

static const int64_t cron_backoff_ms[] = { 30000, 60000, 300000, 900000,
					   3600000 };

/* Record an ended run (locked). */
static void cron_finished(struct cron *c, struct cron_run *r)
{
	struct store_cron_run x;
	struct cron_job *cj;
	const char *status, *ds = "not-requested", *cs;
	char *error = NULL;
	int want, idx = -1, removed = 0;
	int64_t dur = r->ended_at - r->started_at, next = 0;
	json_t *st, *p;

	if (dur < 0)
		dur = 0;
	switch (r->status) {
	case RUN_OK:
		status = "ok";
		break;
	case RUN_TIMEOUT:
		status = "error";
		error = cron_errf("timed out%s%s", r->error ? ": " : "",
				  r->error ? r->error : "");
		break;
	case RUN_ABORTED:
		status = "error";
		error = cron_errf("aborted%s%s", r->error ? ": " : "",
				  r->error ? r->error : "");
		break;
	default:
		status = "error";
		error = xstrdup(r->error ? r->error : "run failed");
		break;
	}
	want = cron_delivery_wanted(r->job);
	if (r->dstatus)
		ds = r->dstatus;
	else if (want)
		ds = "not-delivered";
	if (strcmp(status, "ok") != 0)
		cs = "failed";
	else
		cs = want == 1 && strcmp(ds, "delivered") && !r->dsuppress ?
		     "failed" : "succeeded";
	cj = cron_find(c, r->job_id, &idx);
	if (cj) {
		const char *kind = cron_str(json_object_get(cj->j, "schedule"),
					    "kind");
		int64_t errs, atms = 0;

		st = cron_state(cj->j);
		cj->busy = 0;
		json_object_del(st, "runningAtMs");
		json_object_set_new(st, "lastRunAtMs",
				    json_integer(r->started_at));
		json_object_set_new(st, "lastRunStatus", json_string(status));
		json_object_set_new(st, "lastStatus", json_string(status));
		json_object_set_new(st, "lastDurationMs", json_integer(dur));
		json_object_set_new(st, "lastDeliveryStatus", json_string(ds));
		json_object_set_new(st, "lastDelivered",
				    json_boolean(!strcmp(ds, "delivered")));
		if (r->derror)
			json_object_set_new(st, "lastDeliveryError",
					    json_string(r->derror));
		else
			json_object_del(st, "lastDeliveryError");
		if (r->dsuppress)
			json_object_set_new(st, "deliverySuppressionReason",
					    json_string(r->dsuppress));
		else
			json_object_del(st, "deliverySuppressionReason");
		if (r->alert >= 0) {
			json_object_set_new(st,
				"lastFailureNotificationDelivered",
				json_boolean(r->alert == 1));
			json_object_set_new(st,
				"lastFailureNotificationDeliveryStatus",
				json_string(r->alert == 1 ? "delivered" :
					    "not-delivered"));
			if (r->alert_error)
				json_object_set_new(st,
				    "lastFailureNotificationDeliveryError",
				    json_string(r->alert_error));
			else
				json_object_del(st,
				    "lastFailureNotificationDeliveryError");
		}
		errs = cron_int(st, "consecutiveErrors");
		if (error) {
			json_object_set_new(st, "lastError",
					    json_string(error));
			errs++;
		} else {
			json_object_del(st, "lastError");
			errs = 0;
		}
		json_object_set_new(st, "consecutiveErrors",
				    json_integer(errs));
		if (!strcmp(kind, "at") && !strcmp(r->trigger, "manual") &&
		    cron_at_ms(json_object_get(cj->j, "schedule"), &atms) ==
		    0 && atms > r->ended_at &&
		    json_is_true(json_object_get(cj->j, "enabled"))) {
			/* a manual run before the authored time keeps it */
			json_object_set_new(st, "nextRunAtMs",
					    json_integer(atms));
		} else if (!strcmp(kind, "at")) {
			json_object_del(st, "nextRunAtMs");
			if (!strcmp(cs, "succeeded") &&
			    !json_is_false(json_object_get(cj->j,
							   "deleteAfterRun"))) {
				removed = 1;
			} else {
				json_object_set_new(cj->j, "enabled",
						    json_false());
				json_object_set_new(cj->j, "updatedAtMs",
					json_integer(r->ended_at));
			}
		} else if (error && errs > 0) {
			/* exponential retry backoff after errors */
			int64_t b = cron_backoff_ms[errs > 5 ? 4 : errs - 1];
			int64_t n = cron_int(st, "nextRunAtMs");

			if (n && n < r->ended_at + b)
				json_object_set_new(st, "nextRunAtMs",
					json_integer(r->ended_at + b));
		}
		next = cron_int(st, "nextRunAtMs");
		if (removed)
			c->jobs[idx] = c->jobs[--c->njobs];
	}
	cron_run_row(r, strcmp(status, "ok") ? "error" : "ok", &x);
	x.ended_at = r->ended_at;
	x.duration_ms = dur;
	x.error = error;
	x.summary = r->text;
	x.model = r->model;
	x.input_tokens = r->in_tok;
	x.output_tokens = r->out_tok;
	x.delivery_status = ds;
	x.delivery_error = r->derror;
	x.completion_status = cs;
	x.next_run_at = next;
	if (store_cron_run_job_put(c->store, &x, cj && !removed ? cj->j : NULL,
				   removed ? r->job_id : NULL) != GW_OK)
		log_error("cron", "cannot record the end of run %s",
			  r->run_id);
	log_info("cron", "job %s run %s: %s%s%s (%lldms)", r->job_id,
		 r->run_id, status, error ? ": " : "", error ? error : "",
		 (long long)dur);
	p = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:b}", "jobId",
		      r->job_id, "action", "finished", "runId", r->run_id,
		      "status", status, "completionStatus", cs, "runAtMs",
		      (json_int_t)r->started_at, "durationMs", (json_int_t)dur,
		      "sessionKey", r->session_key, "deliveryStatus", ds,
		      "delivered", !strcmp(ds, "delivered"));
	if (r->derror)
		json_object_set_new(p, "deliveryError",
				    json_string(r->derror));
	if (error)
		json_object_set_new(p, "error", json_string(error));
	if (r->text && *r->text)
		json_object_set_new(p, "summary", json_string(r->text));
	if (next)
		json_object_set_new(p, "nextRunAtMs", json_integer(next));
	if (r->model)
		json_object_set_new(p, "model", json_string(r->model));
	json_object_set_new(p, "usage", json_pack("{s:I,s:I,s:I}",
		"input_tokens", (json_int_t)r->in_tok, "output_tokens",
		(json_int_t)r->out_tok, "total_tokens",
		(json_int_t)(r->in_tok + r->out_tok)));
	if (cj && !removed)
		json_object_set(p, "job", cj->j);
	cron_emit(c, p);
	if (removed) {
		cron_emit_job(c, "removed", cj->j);
		json_decref(cj->j);
		free(cj->incident);
		free(cj);
	}
	c->nrunning--;
	free(error);
	cron_run_free(r);
}

/* cron.sessionRetention: delete the isolated run sessions (and their
 * transcripts) of runs that ended longer ago; a few per pass (cron
 * thread, unlocked). */
static void cron_prune_sessions(struct cron *c, int64_t retention,
				const char *except_run)
{
	json_t *keys = NULL, *k;
	size_t i;

	if (store_cron_stale_sessions(c->store, util_now_ms() - retention,
				      except_run, 20, &keys) != GW_OK)
		return;
	json_array_foreach(keys, i, k) {
		int deleted = 0;

		if (session_delete(c->agents, json_string_value(k), 1,
				   &deleted) == GW_OK)
			store_cron_session_pruned(c->store,
						  json_string_value(k));
	}
	json_decref(keys);
}

static void *cron_thread(void *arg)
{
	struct cron *c = arg;

	pthread_mutex_lock(&c->mu);
	while (!c->stopping) {
		struct cron_run *start = NULL, **tail = &start, *r;
		int64_t now = util_now_ms(), wake = 0;
		int i;

		if (c->done) {
			char last[37];
			int64_t ret = c->session_retention_ms;

			memcpy(last, c->done->run_id, sizeof(last));
			while ((r = c->done)) {
				c->done = r->next;
				r->next = NULL;
				cron_after_run(c, r);
				cron_finished(c, r);
			}
			if (ret > 0 && c->agents) {
				pthread_mutex_unlock(&c->mu);
				cron_prune_sessions(c, ret, last);
				pthread_mutex_lock(&c->mu);
				continue;
			}
		}
		if (c->enabled) {
			for (i = 0; i < c->njobs; i++) {
				struct cron_job *cj = c->jobs[i];
				int64_t n = cron_int(json_object_get(cj->j,
					"state"), "nextRunAtMs");

				if (cj->busy || !n ||
				    !json_is_true(json_object_get(cj->j,
								  "enabled")))
					continue;
				if (n <= now) {
					int imm = !c->pending &&
						  c->nrunning <
						  c->max_concurrent;

					if (cron_enqueue(c, cj, n < c->boot_ms ?
							 "startup" : "schedule",
							 n, util_now_ms(), imm,
							 &r) ==
					    GW_OK && imm) {
						*tail = r;
						tail = &r->next;
					}
				}
				else if (!wake || n < wake)
					wake = n;
			}
		}
		while (c->pending && c->nrunning < c->max_concurrent) {
			r = c->pending;
			c->pending = r->next;
			if (!c->pending)
				c->pending_tail = NULL;
			r->next = NULL;
			c->nrunning++;
			cron_started(c, r, util_now_ms());
			*tail = r;
			tail = &r->next;
		}
		if (start) {
			pthread_mutex_unlock(&c->mu);
			while ((r = start)) {
				start = r->next;
				r->next = NULL;
				cron_launch(c, r);
			}
			pthread_mutex_lock(&c->mu);
			continue;
		}
		if (c->done || c->stopping)
			continue;
		if (wake) {
			struct timespec ts;

			ts.tv_sec = wake / 1000;
			ts.tv_nsec = (long)(wake % 1000) * 1000000L;
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		} else {
			pthread_cond_wait(&c->cv, &c->mu);
		}
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static int64_t cron_cfg_int(const json_t *root, const char *k, int64_t def,
			    int64_t lo, int64_t hi)
{
	const json_t *cron = json_object_get(root, "cron");
	const json_t *v = json_object_get(cron, k);
	int64_t n;

	if (!json_is_integer(v))
		return def;
	n = json_integer_value(v);
	return n < lo ? lo : n > hi ? hi : n;
}

void cron_configure(struct cron *c, const json_t *root)
{
	const json_t *cron = json_object_get(root, "cron");
	const char *skip = getenv("OPENCLAW_SKIP_CRON");

	pthread_mutex_lock(&c->mu);
	c->enabled = !json_is_false(json_object_get(cron, "enabled")) &&
		     !(skip && !strcmp(skip, "1"));
	c->max_concurrent = (int)cron_cfg_int(root, "maxConcurrentRuns",
					      CRON_DEFAULT_MAX_CONCURRENT, 1,
					      64);
	c->timeout_ms = cron_cfg_int(root, "runTimeoutSeconds",
				     CRON_DEFAULT_TIMEOUT_S, 0,
				     7 * 86400) * 1000;
	c->allow_command = json_is_true(json_object_get(cron,
						"allowCommandPayload"));
	c->skip_missed = json_is_true(json_object_get(cron,
						      "skipMissedJobs"));
	{
		const json_t *v = json_object_get(cron, "sessionRetention");
		int64_t ms = 24LL * 3600 * 1000;

		if (json_is_false(v))
			ms = 0;
		else if (json_is_string(v) &&
			 cron_parse_duration(json_string_value(v), 3600000,
					     &ms) != 0)
			ms = 24LL * 3600 * 1000;
		c->session_retention_ms = ms;
	}
	json_decref(c->failure_alert);
	c->failure_alert = json_is_object(json_object_get(cron,
							  "failureAlert")) ?
		json_deep_copy(json_object_get(cron, "failureAlert")) : NULL;
	cron_wake(c);
	pthread_mutex_unlock(&c->mu);
}

int cron_new(const struct cron_opts *o, const json_t *root,
	     struct cron **out)
{
	struct cron *c = xcalloc(1, sizeof(*c));
	json_t *jobs = NULL, *ids = NULL, *v;
	int64_t now = util_now_ms();
	size_t i;
	int r;

	c->store = o->store;
	c->agents = o->agents;
	c->on_event = o->on_event;
	c->arg = o->arg;
	c->deliver = o->deliver;
	c->deliver_arg = o->deliver_arg;
	c->boot_ms = now;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	cron_configure(c, root);
	r = store_cron_runs_interrupt(c->store, now, CRON_INTERRUPTED, &ids);
	if (r == GW_OK)
		r = store_cron_jobs_load(c->store, &jobs);
	if (r != GW_OK) {
		json_decref(ids);
		cron_free(c);
		return r;
	}
	json_array_foreach(jobs, i, v) {
		struct cron_job *cj = xcalloc(1, sizeof(*cj));
		json_t *st = cron_state(v);
		const char *kind = cron_str(json_object_get(v, "schedule"),
					    "kind");
		size_t k;
		json_t *id;
		int changed = 0;

		cj->j = json_incref(v);
		/* an alert was sent and no run succeeded since: the incident
		 * is still open (its cause is not kept across restarts) */
		if (json_object_get(st, "lastFailureAlertAtMs") &&
		    cron_int(st, "consecutiveErrors") > 0)
			cj->incident = xstrdup("");
		json_array_foreach(ids, k, id) {
			if (strcmp(json_string_value(id), cron_str(v, "id")))
				continue;
			json_object_set_new(st, "lastRunStatus",
					    json_string("error"));
			json_object_set_new(st, "lastStatus",
					    json_string("error"));
			json_object_set_new(st, "lastError",
					    json_string(CRON_INTERRUPTED));
			json_object_set_new(st, "consecutiveErrors",
				json_integer(cron_int(st,
					"consecutiveErrors") + 1));
			changed = 1;
		}
		if (json_object_get(st, "runningAtMs")) {
			json_object_del(st, "runningAtMs");
			changed = 1;
		}
		if (json_is_true(json_object_get(v, "enabled"))) {
			int64_t n = cron_int(st, "nextRunAtMs");

			/* overdue: runs once now (not once per missed
			 * slot); skipMissedJobs moves recurring ones on */
			if (!n || (n <= now && c->skip_missed &&
				   strcmp(kind ? kind : "", "at"))) {
				cron_reschedule(v, now);
				changed = 1;
			}
		}
		if (changed)
			cron_save(c, v);
		if (c->njobs == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 16;
			c->jobs = xrealloc(c->jobs, (size_t)c->cap *
					   sizeof(*c->jobs));
		}
		c->jobs[c->njobs++] = cj;
	}
	if (json_array_size(ids))
		log_warn("cron", "%zu job(s) had a run interrupted by the last "
			 "stop", json_array_size(ids));
	json_decref(ids);
	json_decref(jobs);
	*out = c;
	return GW_OK;
}

int cron_start(struct cron *c)
{
	if (pthread_create(&c->thread, NULL, cron_thread, c) != 0)
		return GW_EINTERNAL;
	c->started = 1;
	return GW_OK;
}

void cron_stop(struct cron *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->started)
		pthread_join(c->thread, NULL);
	c->started = 0;
	/* command payloads: kill, and wait for their threads */
	pthread_mutex_lock(&c->mu);
	{
		struct cron_cmd *x;

		for (x = c->cmds; x; x = x->next)
			if (x->pid > 0)
				kill(x->pid, SIGKILL);
	}
	while (c->ncmd > 0)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

void cron_free(struct cron *c)
{
	struct cron_run *r;
	int i;

	if (!c)
		return;
	cron_stop(c);
	while ((r = c->pending)) {
		c->pending = r->next;
		cron_run_free(r);
	}
	while ((r = c->done)) {
		c->done = r->next;
		cron_run_free(r);
	}
	for (i = 0; i < c->njobs; i++) {
		json_decref(c->jobs[i]->j);
		free(c->jobs[i]->incident);
		free(c->jobs[i]);
	}
	free(c->jobs);
	json_decref(c->failure_alert);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ---- methods --------------------------------------------------------------------- */

static json_t *cron_compact(const json_t *j);

static int cron_cmp_next(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int64_t p = cron_int(json_object_get(x, "state"), "nextRunAtMs");
	int64_t q = cron_int(json_object_get(y, "state"), "nextRunAtMs");

	if (!p)
		p = INT64_MAX;
	if (!q)
		q = INT64_MAX;
	return p < q ? -1 : p > q;
}

static int cron_cmp_updated(const void *a, const void *b)
{
	int64_t p = cron_int(*(json_t *const *)a, "updatedAtMs");
	int64_t q = cron_int(*(json_t *const *)b, "updatedAtMs");

	return p < q ? -1 : p > q;
}

static int cron_cmp_name(const void *a, const void *b)
{
	return strcmp(cron_str(*(json_t *const *)a, "name"),
		      cron_str(*(json_t *const *)b, "name"));
}

static int cron_opt_int(const json_t *p, const char *k, int def, int lo,
			int hi, int *out, char **err)
{
	const json_t *v = json_object_get(p, k);

	*out = def;
	if (!v)
		return GW_OK;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi) {
		*err = cron_errf("%s must be an integer from %d to %d", k, lo,
				 hi);
		return GW_EINVAL;
	}
	*out = (int)json_integer_value(v);
	return GW_OK;
}

int cron_list(struct cron *c, const json_t *p, json_t **out, char **err)
{
	const char *en = cron_str(p, "enabled"), *sk = cron_str(p,
		"scheduleKind"), *lrs = cron_str(p, "lastRunStatus");
	const char *q = cron_str(p, "query"), *sb = cron_str(p, "sortBy");
	const char *agent = cron_str(p, "agentId");
	int incl = json_is_true(json_object_get(p, "includeDisabled"));
	int limit, offset, i, n = 0, total;
	json_t **v = NULL, *jobs, *res;
	const char *def, *mode;
	char *rev = NULL;

	if (cron_opt_int(p, "limit", 0, 1, 200, &limit, err) ||
	    cron_opt_int(p, "offset", 0, 0, 1 << 30, &offset, err))
		return GW_EINVAL;
	pthread_mutex_lock(&c->mu);
	def = c->agents ? agent_default_id(c->agents) : "main";
	mode = en && (!strcmp(en, "enabled") || !strcmp(en, "disabled") ||
		      !strcmp(en, "all")) ? en : incl ? "all" : "enabled";
	v = xcalloc((size_t)c->njobs + 1, sizeof(*v));
	for (i = 0; i < c->njobs; i++) {
		json_t *j = c->jobs[i]->j;
		int on = json_is_true(json_object_get(j, "enabled"));
		const char *a = cron_str(j, "agentId");
		const char *lr = cron_str(json_object_get(j, "state"),
					  "lastRunStatus");

		if (!strcmp(mode, "enabled") && !on)
			continue;
		if (!strcmp(mode, "disabled") && on)
			continue;
		if (sk && strcmp(sk, "all") &&
		    strcmp(sk, cron_str(json_object_get(j, "schedule"),
					"kind")))
			continue;
		if (lrs && strcmp(lrs, "all") &&
		    strcmp(lrs, lr ? lr : "unknown"))
			continue;
		if (agent && strcasecmp(agent, a ? a : def))
			continue;
		if (q && *q) {
			char *hay = xasprintf("%s %s %s", cron_str(j, "name"),
				cron_str(j, "description") ?
				cron_str(j, "description") : "",
				cron_str(j, "displayName") ?
				cron_str(j, "displayName") : "");
			int hit = strcasestr(hay, q) != NULL;

			free(hay);
			if (!hit)
				continue;
		}
		v[n] = json_deep_copy(j);
		json_object_set_new(v[n], "effectiveAgentId",
				    json_string(a ? a : def));
		n++;
	}
	pthread_mutex_unlock(&c->mu);
	qsort(v, (size_t)n, sizeof(*v), sb && !strcmp(sb, "updatedAtMs") ?
	      cron_cmp_updated : sb && !strcmp(sb, "name") ? cron_cmp_name :
	      cron_cmp_next);
	if (cron_str(p, "sortDir") && !strcmp(cron_str(p, "sortDir"),
					      "desc"))
		for (i = 0; i < n / 2; i++) {
			json_t *t = v[i];

			v[i] = v[n - 1 - i];
			v[n - 1 - i] = t;
		}
	total = n;
	/* snapshotRevision: identity of the filtered, sorted inventory (the
	 * CLI pages through one revision) */
	{
		char *buf = xstrdup(""), *t, hex[65];

		for (i = 0; i < n; i++) {
			t = xasprintf("%s%s:%lld;", buf, cron_str(v[i], "id"),
				      (long long)cron_int(v[i],
							  "updatedAtMs"));
			free(buf);
			buf = t;
		}
		util_sha256_hex(buf, strlen(buf), hex);
		hex[16] = '\0';
		free(buf);
		rev = xstrdup(hex);
	}
	if (!limit)
		limit = total ? (total > 200 ? 200 : total) : 50;
	if (offset > total)
		offset = total;
	jobs = json_array();
	for (i = 0; i < n; i++) {
		if (i >= offset && i < offset + limit) {
			if (json_is_true(json_object_get(p, "compact"))) {
				json_t *cj = cron_compact(v[i]);

				json_object_set(cj, "effectiveAgentId",
					json_object_get(v[i],
							"effectiveAgentId"));
				json_array_append_new(jobs, cj);
			} else {
				json_array_append(jobs, v[i]);
			}
		}
		json_decref(v[i]);
	}
	free(v);
	res = json_pack("{s:o,s:s,s:i,s:i,s:i,s:b}", "jobs", jobs,
			"snapshotRevision", rev, "total", total, "offset",
			offset, "limit", limit, "hasMore",
			offset + (int)json_array_size(jobs) < total);
	free(rev);
	json_object_set_new(res, "nextOffset",
			    offset + (int)json_array_size(jobs) < total ?
			    json_integer(offset + (int)json_array_size(jobs)) :
			    json_null());
	*out = res;
	return GW_OK;
}

json_t *cron_status(struct cron *c)
{
	json_t *r;
	int64_t wake = 0;
	int i, queued = 0;
	struct cron_run *x;

	pthread_mutex_lock(&c->mu);
	for (i = 0; c->enabled && i < c->njobs; i++) {
		const json_t *j = c->jobs[i]->j;
		int64_t n = cron_int(json_object_get(j, "state"),
				     "nextRunAtMs");

		if (n && json_is_true(json_object_get(j, "enabled")) &&
		    (!wake || n < wake))
			wake = n;
	}
	for (x = c->pending; x; x = x->next)
		queued++;
	r = json_pack("{s:b,s:b,s:s,s:s,s:s,s:i,s:i,s:i,s:i}", "enabled",
		      c->enabled, "triggersEnabled", 0, "storePath",
		      store_path(c->store), "storage", "sqlite", "sqlitePath",
		      store_path(c->store), "jobs", c->njobs, "running",
		      c->nrunning, "queued", queued, "maxConcurrentRuns",
		      c->max_concurrent);
	json_object_set_new(r, "nextWakeAtMs", wake ? json_integer(wake)
						    : json_null());
	pthread_mutex_unlock(&c->mu);
	return r;
}

int cron_get(struct cron *c, const json_t *p, json_t **out, char **err,
	     json_t **details)
{
	const char *id = cron_param_id(p);
	struct cron_job *cj;

	if (!id || !*id) {
		*err = cron_errf("id is required");
		return GW_EINVAL;
	}
	pthread_mutex_lock(&c->mu);
	cj = cron_find(c, id, NULL);
	*out = cj ? json_deep_copy(cj->j) : NULL;
	pthread_mutex_unlock(&c->mu);
	if (!cj) {
		*details = cron_not_found(id, err);
		return GW_ENOTFOUND;
	}
	return GW_OK;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of epoch ms t. */
static void cron_iso(int64_t t, char *buf, size_t n)
{
	int64_t days = t / 1000 / 86400, y;
	int64_t sod = t / 1000 - days * 86400;
	unsigned m, dd;

	cron_civil_from_days(days, &y, &m, &dd);
	snprintf(buf, n, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
		 (long long)y, m, dd, (long long)(sod / 3600),
		 (long long)(sod / 60 % 60), (long long)(sod % 60),
		 (long long)(t % 1000));
}

static json_t *cron_iso_json(int64_t t)
{
	char buf[40];

	if (!t)
		return json_null();
	cron_iso(t, buf, sizeof(buf));
	return json_string(buf);
}

/* The compact cron.list row (upstream compactCronListJob). */
static json_t *cron_compact(const json_t *j)
{
	const json_t *st = json_object_get(j, "state");
	const json_t *sched = json_object_get(j, "schedule");
	static const char *const keep[] = { "agentId", "declarationKey",
					    "displayName", "owner" };
	static const char *const skeep[] = { "runningAtMs", "autoDisabled",
		"lastDelivered", "lastDeliveryStatus", "lastDeliveryError" };
	json_t *o = json_pack("{s:O,s:O,s:O,s:O}", "id",
			      json_object_get(j, "id"), "name",
			      json_object_get(j, "name"), "updatedAtMs",
			      json_object_get(j, "updatedAtMs"), "enabled",
			      json_object_get(j, "enabled"));
	const json_t *v;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(keep); i++)
		if ((v = json_object_get(j, keep[i])))
			json_object_set(o, keep[i], (json_t *)v);
	json_object_set_new(o, "nextRunAt", cron_iso_json(cron_int(st,
						"nextRunAtMs")));
	v = json_object_get(st, "nextRunAtMs");
	json_object_set_new(o, "nextRunAtMs", v ? json_incref((json_t *)v)
						: json_null());
	json_object_set(o, "scheduleKind", json_object_get(sched, "kind"));
	json_object_set(o, "schedule", (json_t *)sched);
	json_object_set_new(o, "lastRunAt", cron_iso_json(cron_int(st,
						"lastRunAtMs")));
	v = json_object_get(st, "lastRunAtMs");
	json_object_set_new(o, "lastRunAtMs", v ? json_incref((json_t *)v)
						: json_null());
	v = json_object_get(st, "lastRunStatus");
	json_object_set_new(o, "lastRunStatus", v ? json_incref((json_t *)v)
						  : json_null());
	v = json_object_get(st, "lastError");
	json_object_set_new(o, "lastRunError", v ? json_incref((json_t *)v)
						 : json_null());
	for (i = 0; i < ARRAY_SIZE(skeep); i++)
		if ((v = json_object_get(st, skeep[i])))
			json_object_set(o, skeep[i], (json_t *)v);
	return o;
}

/* at given as a duration ("20m", "+1h"): an absolute UTC time now. */
static void cron_normalise_at(json_t *sched, int64_t now)
{
	const char *at = cron_str(sched, "at");
	int64_t d, t;
	char buf[40];

	if (!at || cron_parse_at(at, NULL, &t) == 0 ||
	    cron_parse_duration(at, 60000, &d) != 0)
		return;
	t = now + d;
	cron_iso(t, buf, sizeof(buf));
	json_object_set_new(sched, "at", json_string(buf));
}

/* The fields a declaration owns (compared to decide "updated"). */
static json_t *cron_declared_fields(const json_t *j, int with_enabled)
{
	json_t *o = json_deep_copy(j);

	json_object_del(o, "id");
	json_object_del(o, "createdAtMs");
	json_object_del(o, "updatedAtMs");
	json_object_del(o, "state");
	if (!with_enabled)
		json_object_del(o, "enabled");
	return o;
}

/* cron.add with a declarationKey (locked): update the job that carries
 * the key, {created:false, updated, job}; GW_ENOTFOUND when none does. */
static int cron_add_declared(struct cron *c, const json_t *p, json_t *j,
			     int64_t now, json_t **out, char **err)
{
	const char *key = cron_str(p, "declarationKey");
	const char *const *kk;
	struct cron_job *cj = NULL;
	json_t *nj, *a, *b;
	const char *k;
	json_t *v;
	int i, r, changed, en = json_object_get(p, "enabled") != NULL;

	for (i = 0; i < c->njobs && !cj; i++) {
		const char *dk = cron_str(c->jobs[i]->j, "declarationKey");

		if (dk && !strcmp(dk, key))
			cj = c->jobs[i];
	}
	if (!cj)
		return GW_ENOTFOUND;
	nj = json_deep_copy(cj->j);
	json_object_foreach(j, k, v) {
		if (!strcmp(k, "id") || !strcmp(k, "createdAtMs") ||
		    !strcmp(k, "updatedAtMs") ||
		    (!strcmp(k, "enabled") && !en))
			continue;
		json_object_set(nj, k, v);
	}
	/* a declaration states the whole job: what it leaves out goes */
	for (kk = cron_add_keys; *kk; kk++)
		if (!json_object_get(j, *kk) && strcmp(*kk, "enabled") &&
		    strcmp(*kk, "deleteAfterRun"))
			json_object_del(nj, *kk);
	r = cron_validate(c, nj, now, err);
	if (r != GW_OK) {
		json_decref(nj);
		return r;
	}
	a = cron_declared_fields(cj->j, en);
	b = cron_declared_fields(nj, en);
	changed = !json_equal(a, b);
	json_decref(a);
	json_decref(b);
	if (!changed) {
		json_decref(nj);
		*out = json_pack("{s:b,s:b,s:O}", "created", 0, "updated", 0,
				 "job", cj->j);
		return GW_OK;
	}
	json_object_set_new(nj, "updatedAtMs", json_integer(now));
	json_object_del(cron_state(nj), "lastRunAtMs");
	cron_reschedule(nj, now);
	r = cron_save(c, nj);
	if (r != GW_OK) {
		json_decref(nj);
		return r;
	}
	json_decref(cj->j);
	cj->j = nj;
	cron_emit_job(c, "updated", nj);
	cron_wake(c);
	*out = json_pack("{s:b,s:b,s:O}", "created", 0, "updated", 1, "job",
			 nj);
	return GW_OK;
}

int cron_add(struct cron *c, const json_t *p, json_t **out, char **err)
{
	struct cron_job *cj;
	json_t *j = NULL;
	const char *k;
	json_t *v;
	char id[37];
	int64_t now = util_now_ms();
	int r;

	json_object_foreach((json_t *)p, k, v) {
		if (!cron_key_in(k, cron_add_keys)) {
			*err = cron_errf("unexpected property \"%s\"", k);
			return GW_EINVAL;
		}
	}
	j = json_object();
	util_uuid(id);
	json_object_set_new(j, "id", json_string(id));
	json_object_update(j, (json_t *)p);
	j = json_deep_copy(v = j);
	json_decref(v);
	if (!json_object_get(j, "enabled"))
		json_object_set_new(j, "enabled", json_true());
	json_object_set_new(j, "createdAtMs", json_integer(now));
	json_object_set_new(j, "updatedAtMs", json_integer(now));
	if (json_is_object(json_object_get(j, "schedule")))
		cron_normalise_at(json_object_get(j, "schedule"), now);
	if (!json_object_get(j, "deleteAfterRun") &&
	    !strcmp(cron_str(json_object_get(j, "schedule"), "kind") ?
		    cron_str(json_object_get(j, "schedule"), "kind") : "",
		    "at"))
		json_object_set_new(j, "deleteAfterRun", json_true());
	pthread_mutex_lock(&c->mu);
	if (cron_str(p, "declarationKey")) {
		r = cron_add_declared(c, p, j, now, out, err);
		if (r != GW_ENOTFOUND) {
			pthread_mutex_unlock(&c->mu);
			json_decref(j);
			return r;
		}
	}
	r = cron_validate(c, j, now, err);
	if (r == GW_OK && c->njobs >= CRON_MAX_JOBS) {
		*err = cron_errf("too many automations (at most %d)",
				 CRON_MAX_JOBS);
		r = GW_EINVAL;
	}
	if (r == GW_OK) {
		json_object_set_new(j, "state", json_object());
		cron_reschedule(j, now);
		r = cron_save(c, j);
	}
	if (r == GW_OK) {
		cj = xcalloc(1, sizeof(*cj));
		cj->j = json_incref(j);
		if (c->njobs == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 16;
			c->jobs = xrealloc(c->jobs, (size_t)c->cap *
					   sizeof(*c->jobs));
		}
		c->jobs[c->njobs++] = cj;
		cron_emit_job(c, "added", j);
		cron_wake(c);
		*out = json_deep_copy(j);
		if (cron_str(p, "declarationKey"))
			*out = json_pack("{s:b,s:o}", "created", 1, "job",
					 *out);
	}
	pthread_mutex_unlock(&c->mu);
	if (r == GW_OK)
		log_info("cron", "job %s added (%s)", id, cron_str(j, "name"));
	json_decref(j);
	return r;
}

/* Merge patch into obj: null deletes a key, objects named in deep merge
 * recursively, anything else replaces. */
static void cron_merge(json_t *obj, const json_t *patch, int deep)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)patch, k, v) {
		json_t *cur = json_object_get(obj, k);

		if (json_is_null(v))
			json_object_del(obj, k);
		else if (deep && json_is_object(v) && json_is_object(cur))
			cron_merge(cur, v, 0);
		else
			json_object_set_new(obj, k, json_deep_copy(v));
	}
}

int cron_update(struct cron *c, const json_t *p, json_t **out, char **err,
		json_t **details)
{
	const char *id = cron_param_id(p);
	const json_t *patch = json_object_get(p, "patch");
	struct cron_job *cj;
	json_t *j = NULL, *pl;
	const char *k;
	json_t *v;
	int64_t now = util_now_ms();
	int r;

	if (!id || !*id || !json_is_object(patch)) {
		*err = cron_errf("id and patch are required");
		return GW_EINVAL;
	}
	json_object_foreach((json_t *)patch, k, v) {
		if (!cron_key_in(k, cron_add_keys) && strcmp(k, "state")) {
			*err = cron_errf("unexpected property \"patch/%s\"",
					 k);
			return GW_EINVAL;
		}
		if (!strcmp(k, "name") && !json_is_string(v)) {
			*err = cron_errf("name must be a string");
			return GW_EINVAL;
		}
	}
	pthread_mutex_lock(&c->mu);
	cj = cron_find(c, id, NULL);
	if (!cj) {
		pthread_mutex_unlock(&c->mu);
		*details = cron_not_found(id, err);
		return GW_ENOTFOUND;
	}
	j = json_deep_copy(cj->j);
	json_object_foreach((json_t *)patch, k, v) {
		if (!strcmp(k, "state"))
			continue;
		if (!strcmp(k, "payload") && json_is_object(v) &&
		    (pl = json_object_get(j, "payload")) &&
		    cron_str(v, "kind") && cron_str(pl, "kind") &&
		    !strcmp(cron_str(v, "kind"), cron_str(pl, "kind"))) {
			cron_merge(pl, v, 0);
		} else if (!strcmp(k, "delivery") && json_is_object(v) &&
			   json_is_object(json_object_get(j, "delivery"))) {
			cron_merge(json_object_get(j, "delivery"), v, 0);
		} else if (json_is_null(v)) {
			json_object_del(j, k);
		} else {
			json_object_set_new(j, k, json_deep_copy(v));
		}
	}
	if (json_is_object(json_object_get(j, "schedule")))
		cron_normalise_at(json_object_get(j, "schedule"), now);
	json_object_set_new(j, "updatedAtMs", json_integer(now));
	r = cron_validate(c, j, now, err);
	if (r == GW_OK) {
		if (json_object_get(patch, "schedule") ||
		    json_object_get(patch, "enabled")) {
			json_t *st = cron_state(j);

			/* an edited one-shot may run again */
			if (json_object_get(patch, "schedule"))
				json_object_del(st, "lastRunAtMs");
			cron_reschedule(j, now);
		}
		r = cron_save(c, j);
	}
	if (r == GW_OK) {
		json_decref(cj->j);
		cj->j = json_incref(j);
		cron_emit_job(c, "updated", j);
		cron_wake(c);
		*out = json_deep_copy(j);
	}
	pthread_mutex_unlock(&c->mu);
	json_decref(j);
	return r;
}

int cron_remove(struct cron *c, const json_t *p, json_t **out, char **err,
		json_t **details)
{
	const char *id = cron_param_id(p);
	struct cron_job *cj;
	int idx = -1, r;

	if (!id || !*id) {
		*err = cron_errf("id is required");
		return GW_EINVAL;
	}
	pthread_mutex_lock(&c->mu);
	cj = cron_find(c, id, &idx);
	if (!cj) {
		pthread_mutex_unlock(&c->mu);
		*details = cron_not_found(id, err);
		return GW_ENOTFOUND;
	}
	r = store_cron_job_delete(c->store, id);
	if (r == GW_OK || r == GW_ENOTFOUND) {
		c->jobs[idx] = c->jobs[--c->njobs];
		cron_emit_job(c, "removed", cj->j);
		json_decref(cj->j);
		free(cj->incident);
		free(cj);
		cron_wake(c);
		r = GW_OK;
		*out = json_pack("{s:b,s:b}", "ok", 1, "removed", 1);
	}
	pthread_mutex_unlock(&c->mu);
	if (r == GW_OK)
		log_info("cron", "job %s removed", id);
	return r;
}

int cron_run(struct cron *c, const json_t *p, json_t **out, char **err,
	     json_t **details)
{
	const char *id = cron_param_id(p);
	const char *mode = cron_str(p, "mode");
	struct cron_job *cj;
	int64_t now = util_now_ms(), n;
	const char *reason = NULL;
	int r = GW_OK;

	if (!id || !*id) {
		*err = cron_errf("id is required");
		return GW_EINVAL;
	}
	if (!mode)
		mode = "force";
	if (strcmp(mode, "force") && strcmp(mode, "due") &&
	    strcmp(mode, "if-enabled")) {
		*err = cron_errf("mode must be due, force or if-enabled");
		return GW_EINVAL;
	}
	pthread_mutex_lock(&c->mu);
	cj = cron_find(c, id, NULL);
	if (!cj) {
		pthread_mutex_unlock(&c->mu);
		*details = cron_not_found(id, err);
		return GW_ENOTFOUND;
	}
	n = cron_int(json_object_get(cj->j, "state"), "nextRunAtMs");
	if (c->stopping)
		reason = "stopped";
	else if (cj->busy)
		reason = "already-running";
	else if (!strcmp(mode, "if-enabled") &&
		 !json_is_true(json_object_get(cj->j, "enabled")))
		reason = "disabled";
	else if (!strcmp(mode, "due") &&
		 (!json_is_true(json_object_get(cj->j, "enabled")) || !n ||
		  n > now))
		reason = "not-due";
	if (reason) {
		*out = json_pack("{s:b,s:b,s:s}", "ok", 1, "ran", 0, "reason",
				 reason);
	} else {
		struct cron_run *q = NULL;

		r = cron_enqueue(c, cj, !strcmp(mode, "due") ? "schedule" :
				 "manual", now, now, 0, &q);
		if (r == GW_OK) {
			*out = json_pack("{s:b,s:b,s:s}", "ok", 1, "enqueued",
					 1, "runId", q->run_id);
			cron_wake(c);
		} else {
			*err = cron_errf("cannot queue the run: %s",
					 gw_err_str(r));
		}
	}
	pthread_mutex_unlock(&c->mu);
	return r;
}

static unsigned cron_status_bit(const char *s)
{
	if (!s)
		return 0;
	if (!strcmp(s, "ok"))
		return 1;
	if (!strcmp(s, "error"))
		return 2;
	if (!strcmp(s, "skipped"))
		return 4;
	return 0;
}

int cron_runs(struct cron *c, const json_t *p, json_t **out, char **err,
	      json_t **details)
{
	struct store_cron_runs_query q = {0};
	const char *id = cron_param_id(p), *scope = cron_str(p, "scope");
	const json_t *v;
	json_t *entries = NULL;
	int limit, offset, total = 0, r;
	size_t i;

	if (cron_opt_int(p, "limit", 50, 1, 200, &limit, err) ||
	    cron_opt_int(p, "offset", 0, 0, 1 << 30, &offset, err))
		return GW_EINVAL;
	if (scope && !strcmp(scope, "job") && !id) {
		*err = cron_errf("id is required for scope job");
		return GW_EINVAL;
	}
	if (!(scope && !strcmp(scope, "all")))
		q.job_id = id;
	q.run_id = cron_str(p, "runId");
	q.query = cron_str(p, "query");
	if (q.query && !*q.query)
		q.query = NULL;
	q.agent_id = cron_str(p, "agentId");
	q.statuses = cron_status_bit(cron_str(p, "status"));
	v = json_object_get(p, "statuses");
	for (i = 0; json_is_array(v) && i < json_array_size(v); i++)
		q.statuses |= cron_status_bit(json_string_value(
			json_array_get(v, i)));
	q.delivery_status = cron_str(p, "deliveryStatus");
	v = json_object_get(p, "deliveryStatuses");
	if (!q.delivery_status && json_is_array(v) &&
	    json_array_size(v) == 1)
		q.delivery_status = json_string_value(json_array_get(v, 0));
	q.asc = cron_str(p, "sortDir") && !strcmp(cron_str(p, "sortDir"),
						  "asc");
	q.limit = limit;
	q.offset = offset;
	r = store_cron_runs_list(c->store, &q, &entries, &total);
	if (r != GW_OK) {
		*err = cron_errf("cannot read the run history");
		return r;
	}
	if (q.job_id && total == 0) {
		int known;

		pthread_mutex_lock(&c->mu);
		known = cron_find(c, q.job_id, NULL) != NULL;
		pthread_mutex_unlock(&c->mu);
		if (!known) {
			struct store_cron_runs_query any = {0};
			json_t *e2 = NULL;
			int t2 = 0;

			any.job_id = q.job_id;
			any.limit = 1;
			if (store_cron_runs_list(c->store, &any, &e2, &t2) ==
			    GW_OK && t2 == 0) {
				json_decref(e2);
				json_decref(entries);
				*details = cron_not_found(q.job_id, err);
				return GW_ENOTFOUND;
			}
			json_decref(e2);
		}
	}
	*out = json_pack("{s:o,s:i,s:i,s:i,s:b}", "entries", entries,
			 "total", total, "offset", offset > total ? total :
			 offset, "limit", limit, "hasMore",
			 offset + (int)json_array_size(entries) < total);
	json_object_set_new(*out, "nextOffset",
			    offset + (int)json_array_size(entries) < total ?
			    json_integer(offset + (int)json_array_size(
				    entries)) : json_null());
	return GW_OK;
}

/* ---- scratch ----------------------------------------------------------------- */

static json_t *cron_scratch_json(const char *content, int64_t rev,
				 int64_t updated)
{
	if (!content)
		return json_null();
	return json_pack("{s:s,s:I,s:I}", "content", content, "revision",
			 (json_int_t)rev, "updatedAtMs", (json_int_t)updated);
}

static int cron_known(struct cron *c, const char *id)
{
	int k;

	pthread_mutex_lock(&c->mu);
	k = cron_find(c, id, NULL) != NULL;
	pthread_mutex_unlock(&c->mu);
	return k;
}

int cron_scratch_get(struct cron *c, const json_t *p, json_t **out,
		     char **err, json_t **details)
{
	const char *id = cron_param_id(p);
	char *content = NULL;
	int64_t rev, upd;
	int r;

	if (!id || !*id) {
		*err = cron_errf("id is required");
		return GW_EINVAL;
	}
	if (!cron_known(c, id)) {
		*details = cron_not_found(id, err);
		return GW_ENOTFOUND;
	}
	r = store_cron_scratch_get(c->store, id, &content, &rev, &upd);
	if (r != GW_OK)
		return r;
	*out = json_pack("{s:o,s:I,s:i}", "scratch",
			 cron_scratch_json(content, rev, upd),
			 "currentRevision", (json_int_t)rev, "maxBytes",
			 STORE_CRON_SCRATCH_MAX);
	free(content);
	return GW_OK;
}

int cron_scratch_set(struct cron *c, const json_t *p, json_t **out,
		     char **err, json_t **details)
{
	const char *id = cron_param_id(p);
	const json_t *cv = json_object_get(p, "content");
	const json_t *ev = json_object_get(p, "expectedRevision");
	const char *content = json_string_value(cv);
	int64_t now = util_now_ms(), rev = 0;
	int ok = 0, r;

	if (!id || !*id) {
		*err = cron_errf("id is required");
		return GW_EINVAL;
	}
	if (!cv || (!json_is_string(cv) && !json_is_null(cv))) {
		*err = cron_errf("content must be a string or null");
		return GW_EINVAL;
	}
	if (content && strlen(content) > STORE_CRON_SCRATCH_MAX) {
		*err = cron_errf("Cron scratch exceeds %d bytes",
				 STORE_CRON_SCRATCH_MAX);
		return GW_EINVAL;
	}
	if (ev && (!json_is_integer(ev) || json_integer_value(ev) < 0)) {
		*err = cron_errf("expectedRevision must be an integer >= 0");
		return GW_EINVAL;
	}
	if (!cron_known(c, id)) {
		*details = cron_not_found(id, err);
		return GW_ENOTFOUND;
	}
	r = store_cron_scratch_set(c->store, id, content, ev ?
				   json_integer_value(ev) : -1, now, &ok,
				   &rev);
	if (r != GW_OK)
		return r;
	if (!ok)
		*out = json_pack("{s:b,s:s,s:I}", "ok", 0, "reason",
				 "revision-conflict", "currentRevision",
				 (json_int_t)rev);
	else
		*out = json_pack("{s:b,s:o,s:I,s:i}", "ok", 1, "scratch",
				 content && rev ? cron_scratch_json(content,
				 rev, now) : json_null(), "currentRevision",
				 (json_int_t)rev, "maxBytes",
				 STORE_CRON_SCRATCH_MAX);
	return GW_OK;
}
