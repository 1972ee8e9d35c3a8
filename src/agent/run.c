/* Runs: one conversation turn answered by the first usable model of the
 * agent's chain. Validation and the transcript start happen on the
 * caller's thread (the agent thread for a start that reads no store row,
 * run_start_light); the upstream request, the streamed chunks, the sinks
 * and the end happen on the agent thread. The end is written to SQLite
 * (assistant message, usage, idempotency result) before the sinks get
 * on_end, so a client that reacts to "final" reads what it saw; sinks that
 * may run anywhere get it on the store writer right after the commit. A
 * run nobody can see (run_defer_begin) writes its start with its end.
 *
 * Runs of one session are serialised: a run started while another of the
 * same session is live waits in FIFO order (queued) and starts when the
 * previous one left the live list, so the transcript records turns in the
 * order they were sent and each turn sees the answer before it. A queued
 * run reads its history and writes its start in one store job.
 *
 * Nothing acknowledged is lost: a run that waits (queued, or for a lane
 * slot below) is stored by the write that acknowledges it, before its
 * caller answers. A queued run's message goes to run_pending (its start
 * would put it before the answer it waits for; its start deletes the row,
 * and a crash leaves it for the next boot to record); a lane-waiting run
 * writes its start then, only its upstream request waits (run_ack_tx).
 *
 * Across sessions, at most agents.defaults.maxConcurrent runs are in
 * flight (the global lane, as upstream's "main" lane): a run free in its
 * session takes a slot, or waits in one FIFO (rt->lane_head, order of
 * arrival) without any upstream request and starts when a run holding a
 * slot ended. A waiting run is live like a queued one: found by id and
 * session, joined, waited for, aborted. The cap is the first run's
 * config's, then each applied config's (run_lane_apply, hot reload).
 *
 * Lifetime: the live list holds one reference until on_end was delivered;
 * run_start's caller holds one; every job posted to the agent thread or
 * the store holds one. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/agent-int.h"
#include "agent/run-lane.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

#define RUN_CONNECT_TIMEOUT_MS 10000
/* A run still going this long after its first attempt has its deferred
 * start's messages made short (run_begin_shrink): one that waits on a
 * real model (for seconds or minutes, a held stream), not one of the
 * quick runs of a local mock (~9k instructions: +3 % on the chat
 * bench's path when every run paid it). Sooner leaves fewer freed trees
 * as holes in the heap after a burst of new streams (1,000 streams:
 * 16.0 KB each at 0 ms, 16.3-16.6 at 100, 17.2 at 1,000).
 * CLAWGATE_RUN_SHRINK_MS overrides it (tests). */
#define RUN_SHRINK_MS 100
#define RUN_ERR_PREVIEW 300

struct run {
	atomic_int refs;
	struct agent_rt *rt;
	struct run *next, *prev;	/* rt->runs, under rt->mu */
	struct runidx_node idx;		/* rt->runidx, under rt->mu */
	int live;
	int queued;			/* waits for the session (rt->mu) */
	int never_started;		/* ended while queued */
	int lane_wait;			/* in rt's lane FIFO (rt->mu) */
	int lane_slot;			/* holds a lane slot (rt->mu) */
	struct run *lane_next, *lane_prev; /* the FIFO (rt->mu); next is
					 * also the chain of runs to start */
	/* A run acknowledged while it waits is stored first (issue 11):
	 * its start (lane-waiting, begun) or its run_pending row (queued
	 * for its session, pending), in the job that acknowledges it. */
	int begun, pending;		/* set by run_go_live */
	int acking;			/* that write is not committed yet: a
					 * slot (ack_go) or an abort (ack_abort)
					 * that comes meanwhile waits for it
					 * (rt->mu) */
	int ack_go, ack_abort;
	uint64_t seq;			/* start order (rt->mu) */
	char *id, *session_key, *agent_id, *channel;
	int is_replay;			/* a replay of a stored run */

	pthread_mutex_t mu;		/* recursive: sinks */
	struct run_sink *sinks;
	size_t nsinks;
	int delivered;			/* on_end went out */
	atomic_int stored;		/* the end is committed: a retry with
					 * the same key replays, never joins */
	atomic_int begin_failed;	/* its start was not stored: its end
					 * is not either, and is an error */

	/* Agent thread only: */
	struct agent_target **chain;
	size_t nchain, cur;
	json_t *req;			/* request body without "model" (until
					 * the first attempt, run_attempt_body) */
	char *body;			/* its text, while a fallback may
					 * still send it (run_attempt_body) */
	int body_opts;			/* it has "stream_options" */
	struct run *shr_next, *shr_prev; /* run_shr's FIFO */
	int64_t shr_due;		/* mono ms; 0: not in it */
	int64_t timeout_ms;
	struct provider_http *http;
	char *text;
	size_t tlen, tcap;
	json_t *tool_calls;		/* array by index, or NULL */
	char *finish_reason;
	int64_t in_tok, out_tok;
	int first;			/* a token reached the sinks */
	int done_marker, nevents;
	char *stream_error;
	int abort_req, ended;
	enum run_status status;
	char *error;
	int http_status;
	char *model_used;
	int64_t started_at, ended_at;
	json_t *replay;			/* stored result of a replay */

	/* What the request is built from when the run starts (its
	 * history is read then): */
	char *sys;			/* system prompt or NULL */
	json_t *in_msgs;		/* the request's messages */
	json_t *tr_in;			/* transcript messages at the start */
	int use_history;
	/* The start's store job, kept to commit with the end when nobody
	 * can see the run in between (run_defer_begin). */
	struct run_beginjob *begin;
	/* Store writer only: what its stored start left (the session id
	 * and message count, its idempotency row's id), for the end's
	 * writes (store_session_end's sid...; issue 11). */
	char st_sid[37];
	int64_t st_count, st_idem;
};

/* The run of a node of rt->runidx. */
#define RUN_OF(n) ((struct run *)(void *)((char *)(n) - offsetof(struct run, idx)))

static void run_beginjob_free(struct run_beginjob *j);

static void run_ref(struct run *r)
{
	atomic_fetch_add(&r->refs, 1);
}

void run_unref(struct run *r)
{
	size_t i;

	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	for (i = 0; i < r->nchain; i++)
		agent_target_free(r->chain[i]);
	free(r->chain);
	json_decref(r->req);
	free(r->body);
	free(r->text);
	json_decref(r->tool_calls);
	free(r->finish_reason);
	free(r->stream_error);
	free(r->error);
	free(r->model_used);
	json_decref(r->replay);
	free(r->sys);
	json_decref(r->in_msgs);
	json_decref(r->tr_in);
	free(r->sinks);
	if (r->begin)
		run_beginjob_free(r->begin);
	pthread_mutex_destroy(&r->mu);
	free(r->id);
	free(r->session_key);
	free(r->agent_id);
	free(r->channel);
	free(r);
}

const char *run_id(const struct run *r)
{
	return r->id;
}

const char *run_session_key(const struct run *r)
{
	return r->session_key;
}

const char *run_agent_id(const struct run *r)
{
	return r->agent_id;
}

int64_t run_started_at(const struct run *r)
{
	return r->started_at;
}

static struct run *run_alloc(struct agent_rt *rt, const char *id,
			     const char *key, const char *agent)
{
	struct run *r = xcalloc(1, sizeof(*r));
	pthread_mutexattr_t a;

	atomic_init(&r->refs, 1);
	r->rt = rt;
	r->id = xstrdup(id);
	r->session_key = xstrdup(key);
	r->agent_id = xstrdup(agent);
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&r->mu, &a);
	pthread_mutexattr_destroy(&a);
	r->started_at = util_now_ms();
	return r;
}

/* ---- sinks ------------------------------------------------------------------ */

int run_attach(struct run *r, const struct run_sink *sink)
{
	int rc = GW_OK;

	pthread_mutex_lock(&r->mu);
	if (r->delivered) {
		rc = GW_ENOTFOUND;
	} else {
		r->sinks = xrealloc(r->sinks,
				    (r->nsinks + 1) * sizeof(*r->sinks));
		r->sinks[r->nsinks++] = *sink;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void run_detach(struct run *r, const struct run_sink *sink)
{
	size_t i;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->nsinks; i++) {
		if (r->sinks[i].arg != sink->arg ||
		    r->sinks[i].on_end != sink->on_end)
			continue;
		memmove(&r->sinks[i], &r->sinks[i + 1],
			(r->nsinks - i - 1) * sizeof(*r->sinks));
		r->nsinks--;
		break;
	}
	pthread_mutex_unlock(&r->mu);
}

static void run_emit_delta(struct run *r, const char *t, size_t n)
{
	size_t i;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->nsinks; i++)
		if (r->sinks[i].on_delta)
			r->sinks[i].on_delta(r->sinks[i].arg, t, n);
	pthread_mutex_unlock(&r->mu);
}

static void run_emit_tool(struct run *r, const json_t *d)
{
	size_t i;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->nsinks; i++)
		if (r->sinks[i].on_tool_call)
			r->sinks[i].on_tool_call(r->sinks[i].arg, d);
	pthread_mutex_unlock(&r->mu);
}

/* on_end to every sink, exactly once; sinks attached later are refused. */
static void run_emit_end(struct run *r, const struct run_result *res)
{
	struct run_sink *s;
	size_t i, n;

	pthread_mutex_lock(&r->mu);
	r->delivered = 1;
	s = r->sinks;
	n = r->nsinks;
	r->sinks = NULL;
	r->nsinks = 0;
	for (i = 0; i < n; i++)
		if (s[i].on_end)
			s[i].on_end(s[i].arg, res);
	pthread_mutex_unlock(&r->mu);
	free(s);
}

/* ---- live list ------------------------------------------------------------- */

static void run_activate_queued(struct run *r);
static void run_lane_go_all(struct run *chain);
static void run_lane_release(struct run *r);

/* rt->mu held: the next queued run of key when no run of key is active
 * (marked active; the live list's reference), else NULL. */
static struct run *run_next_of_session(struct agent_rt *rt, const char *key)
{
	struct runidx_node *n;
	struct run *r, *best = NULL;

	if (rt->stopping)
		return NULL;
	/* The session's runs in start order: the first queued one. */
	for (n = runidx_first(&rt->runidx, key); n; n = n->s_next) {
		r = RUN_OF(n);
		if (!r->queued)
			return NULL;
		if (!best || r->seq < best->seq)
			best = r;
	}
	if (best)
		best->queued = 0;
	return best;
}

/* ---- the global lane -------------------------------------------------------- */

/* max(8, 4 x the CPUs this process may run on), as upstream's
 * max(8, availableParallelism() * 4). Read once. */
static int run_lane_default(void)
{
	static atomic_int def;
	cpu_set_t set;
	long n;
	int v = atomic_load(&def);

	if (v)
		return v;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	v = n > 1000000 ? 4000000 : (int)n * 4;
	if (v < 8)
		v = 8;
	atomic_store(&def, v);
	return v;
}

int run_wait_max(int cap)
{
	static atomic_int env = -1;
	int v = atomic_load(&env);
	const char *e;

	if (v < 0) {
		e = getenv("CLAWGATE_RUN_WAIT_MAX");
		v = e && atoi(e) > 0 ? atoi(e) : 0;
		atomic_store(&env, v);
	}
	if (v)
		return v;
	if (cap > (INT32_MAX - RUN_WAIT_MIN) / RUN_WAIT_PER_SLOT)
		return INT32_MAX;
	return cap * RUN_WAIT_PER_SLOT > RUN_WAIT_MIN
	       ? cap * RUN_WAIT_PER_SLOT : RUN_WAIT_MIN;
}

int run_lane_cap(const struct gw_config *cfg)
{
	const json_t *v = cfg ? config_get(cfg->root,
					   "agents.defaults.maxConcurrent")
			      : NULL;
	json_int_t n;

	if (!json_is_integer(v))
		return run_lane_default();
	n = json_integer_value(v);	/* validated: >= 1 */
	return n < 1 ? 1 : n > INT32_MAX ? INT32_MAX : (int)n;
}

/* rt->mu held: r waits for a slot, last in arrival order. */
static void run_lane_push(struct agent_rt *rt, struct run *r)
{
	r->lane_wait = 1;
	r->lane_next = NULL;
	r->lane_prev = rt->lane_tail;
	if (rt->lane_tail)
		rt->lane_tail->lane_next = r;
	else
		rt->lane_head = r;
	rt->lane_tail = r;
	rt->lane_waiting++;
}

/* rt->mu held: r (waiting) leaves the FIFO. */
static void run_lane_remove(struct agent_rt *rt, struct run *r)
{
	if (r->lane_prev)
		r->lane_prev->lane_next = r->lane_next;
	else
		rt->lane_head = r->lane_next;
	if (r->lane_next)
		r->lane_next->lane_prev = r->lane_prev;
	else
		rt->lane_tail = r->lane_prev;
	r->lane_next = r->lane_prev = NULL;
	r->lane_wait = 0;
	rt->lane_waiting--;
}

/* rt->mu held: r gives its slot back; whether it held one. */
static int run_lane_free_slot(struct agent_rt *rt, struct run *r)
{
	if (!r->lane_slot)
		return 0;
	r->lane_slot = 0;
	rt->lane_active--;
	return 1;
}

/* rt->mu held: the waiting runs that get the free slots, oldest first,
 * chained by lane_next, each with a new reference; NULL when none (or
 * stopping: nothing starts any more). */
static struct run *run_lane_take(struct agent_rt *rt)
{
	struct run *chain = NULL, **tail = &chain, *r;

	while (!rt->stopping && rt->lane_head &&
	       rt->lane_active < rt->lane_cap) {
		r = rt->lane_head;
		run_lane_remove(rt, r);
		r->lane_slot = 1;
		rt->lane_active++;
		run_ref(r);
		*tail = r;
		tail = &r->lane_next;
	}
	return chain;
}

void run_lane_apply(struct agent_rt *rt, const struct gw_config *cfg)
{
	struct run *go;
	int cap = run_lane_cap(cfg);

	if (!rt)
		return;
	pthread_mutex_lock(&rt->mu);
	if (rt->lane_cap != cap)
		log_info("agent", "agents.defaults.maxConcurrent: %d run(s) "
			 "in flight at most", cap);
	rt->lane_cap = cap;
	go = run_lane_take(rt);
	pthread_mutex_unlock(&rt->mu);
	run_lane_go_all(go);
}

void run_lane_counts(struct agent_rt *rt, int *active, int *waiting,
		     int *cap)
{
	struct gw_config *cfg = NULL;

	pthread_mutex_lock(&rt->mu);
	*active = rt->lane_active;
	*waiting = rt->lane_waiting;
	*cap = rt->lane_cap;
	pthread_mutex_unlock(&rt->mu);
	if (!*cap) {		/* no run yet: the current config's */
		cfg = config_current();
		*cap = run_lane_cap(cfg);
		config_unref(cfg);
	}
}

static void run_unlink(struct run *r)
{
	struct agent_rt *rt = r->rt;
	struct run *next = NULL;
	int was = 0;

	pthread_mutex_lock(&rt->mu);
	if (r->live) {
		if (r->prev)
			r->prev->next = r->next;
		else
			rt->runs = r->next;
		if (r->next)
			r->next->prev = r->prev;
		r->next = r->prev = NULL;
		runidx_del(&rt->runidx, &r->idx);
		r->live = 0;
		rt->nruns--;
		was = 1;
		if (!rt->nruns)
			pthread_cond_broadcast(&rt->idle);
		run_lane_free_slot(rt, r);
		if (r->lane_wait)
			run_lane_remove(rt, r);
		/* Its session's next run now waits for a slot, behind the
		 * runs already waiting; the free slots go in that order. */
		next = run_next_of_session(rt, r->session_key);
		if (next)
			run_lane_push(rt, next);
		next = run_lane_take(rt);
	}
	pthread_mutex_unlock(&rt->mu);
	run_lane_go_all(next);
	if (was)
		run_unref(r);
}

struct run *run_find(struct agent_rt *rt, const char *id)
{
	struct runidx_node *n;
	struct run *r = NULL;

	pthread_mutex_lock(&rt->mu);
	n = runidx_find(&rt->runidx, id);
	if (n) {
		r = RUN_OF(n);
		run_ref(r);
	}
	pthread_mutex_unlock(&rt->mu);
	return r;
}

/* ---- the end ---------------------------------------------------------------- */

static const char *run_status_name(enum run_status s)
{
	switch (s) {
	case RUN_OK: return "ok";
	case RUN_ABORTED: return "aborted";
	case RUN_TIMEOUT: return "timeout";
	default: return "error";
	}
}

static enum run_status run_status_parse(const char *s)
{
	if (!s || strcmp(s, "ok") == 0)
		return RUN_OK;
	if (strcmp(s, "aborted") == 0)
		return RUN_ABORTED;
	if (strcmp(s, "timeout") == 0)
		return RUN_TIMEOUT;
	return RUN_ERROR;
}

/* The stored result object (idempotency row, replays, agent.wait). */
static json_t *run_result_json(struct run *r)
{
	/* What json_pack("{s:s,s:s,s:s,s:s%,s:I,s:I,s:{s:I,s:I}}") gave,
	 * in the same member order, without parsing a format per run. */
	json_t *o = json_object(), *u = json_object();

	json_object_set_new_nocheck(o, "runId", json_string(r->id));
	json_object_set_new_nocheck(o, "sessionKey",
				    json_string(r->session_key));
	json_object_set_new_nocheck(o, "status", json_string_nocheck(
		run_status_name(r->status)));
	json_object_set_new_nocheck(o, "text", r->text
		? json_stringn(r->text, r->tlen) : json_string_nocheck(""));
	json_object_set_new_nocheck(o, "startedAt",
				    json_integer(r->started_at));
	json_object_set_new_nocheck(o, "endedAt", json_integer(r->ended_at));
	json_object_set_new_nocheck(u, "input", json_integer(r->in_tok));
	json_object_set_new_nocheck(u, "output", json_integer(r->out_tok));
	json_object_set_new_nocheck(o, "usage", u);
	json_object_set_new_nocheck(o, "agentId", json_string(r->agent_id));
	if (r->finish_reason)
		json_object_set_new(o, "finishReason",
				    json_string(r->finish_reason));
	if (r->model_used)
		json_object_set_new(o, "model", json_string(r->model_used));
	if (r->error)
		json_object_set_new(o, "error", json_string(r->error));
	if (r->http_status)
		json_object_set_new(o, "httpStatus",
				    json_integer(r->http_status));
	if (r->tool_calls && json_array_size(r->tool_calls))
		json_object_set(o, "toolCalls", r->tool_calls);
	return o;
}

#define RUN_LIT(b, lit) store_json_raw((b), (lit), sizeof(lit) - 1)

/* ,"name":"v" when v is set (head: the text up to the value). */
static void run_text_opt(struct store_json_buf *b, const char *head,
			 const char *v)
{
	if (!v)
		return;
	store_json_raw(b, head, strlen(head));
	store_json_str(b, v, strlen(v));
}

/* store_json_dump(run_result_json(r)) written straight, the same bytes
 * (members, order, escaping), without the tree (~12k instructions a run
 * with its dump and free, issue 11); NULL when a string of it is not one
 * jansson takes (the tree then leaves that member out). */
static char *run_result_text(struct run *r)
{
	const char *s[] = {r->id, r->session_key, r->agent_id,
			   r->finish_reason, r->model_used, r->error};
	struct store_json_buf b = {0};
	size_t i;

	if (!r->id || !r->session_key || !r->agent_id ||
	    (r->text && !store_json_utf8(r->text, r->tlen)))
		return NULL;
	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (s[i] && !store_json_utf8(s[i], strlen(s[i])))
			return NULL;
	RUN_LIT(&b, "{\"runId\":");
	store_json_str(&b, r->id, strlen(r->id));
	RUN_LIT(&b, ",\"sessionKey\":");
	store_json_str(&b, r->session_key, strlen(r->session_key));
	RUN_LIT(&b, ",\"status\":\"");
	store_json_raw(&b, run_status_name(r->status),
		       strlen(run_status_name(r->status)));
	RUN_LIT(&b, "\",\"text\":");
	store_json_str(&b, r->text ? r->text : "", r->text ? r->tlen : 0);
	RUN_LIT(&b, ",\"startedAt\":");
	store_json_int(&b, r->started_at);
	RUN_LIT(&b, ",\"endedAt\":");
	store_json_int(&b, r->ended_at);
	RUN_LIT(&b, ",\"usage\":{\"input\":");
	store_json_int(&b, r->in_tok);
	RUN_LIT(&b, ",\"output\":");
	store_json_int(&b, r->out_tok);
	RUN_LIT(&b, "},\"agentId\":");
	store_json_str(&b, r->agent_id, strlen(r->agent_id));
	run_text_opt(&b, ",\"finishReason\":", r->finish_reason);
	run_text_opt(&b, ",\"model\":", r->model_used);
	run_text_opt(&b, ",\"error\":", r->error);
	if (r->http_status) {
		RUN_LIT(&b, ",\"httpStatus\":");
		store_json_int(&b, r->http_status);
	}
	if (r->tool_calls && json_array_size(r->tool_calls)) {
		RUN_LIT(&b, ",\"toolCalls\":");
		if (store_json_val(&b, r->tool_calls) < 0) {
			free(store_json_done(&b, NULL));
			return NULL;
		}
	}
	RUN_LIT(&b, "}");
	return store_json_done(&b, NULL);
}

/* A failed run always has an error text and an HTTP status. */
static void run_result_defaults(struct run_result *res)
{
	if (res->status != RUN_OK && !res->error)
		res->error = res->status == RUN_ABORTED ? "run aborted"
							: "run failed";
	if (res->status != RUN_OK && !res->http_status)
		res->http_status = res->status == RUN_TIMEOUT ? 504 : 502;
}

static void run_result_fill(struct run_result *res, const json_t *o)
{
	const json_t *u = json_object_get(o, "usage");

	memset(res, 0, sizeof(*res));
	res->status = run_status_parse(json_string_value(
		json_object_get(o, "status")));
	res->run_id = json_string_value(json_object_get(o, "runId"));
	res->session_key = json_string_value(json_object_get(o,
							     "sessionKey"));
	res->text = json_string_value(json_object_get(o, "text"));
	if (!res->text)
		res->text = "";
	res->tool_calls = json_object_get(o, "toolCalls");
	res->finish_reason = json_string_value(json_object_get(o,
							       "finishReason"));
	res->input_tokens = json_integer_value(json_object_get(u, "input"));
	res->output_tokens = json_integer_value(json_object_get(u, "output"));
	res->model = json_string_value(json_object_get(o, "model"));
	res->error = json_string_value(json_object_get(o, "error"));
	res->http_status = (int)json_integer_value(json_object_get(o,
							"httpStatus"));
	res->started_at = json_integer_value(json_object_get(o, "startedAt"));
	res->ended_at = json_integer_value(json_object_get(o, "endedAt"));
	run_result_defaults(res);
}

/* What run_result_fill gives for run_result_json(r), read from the run
 * itself (its fields are no longer written once it ended; r->mu held). */
static void run_result_of(struct run *r, struct run_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = r->status;
	res->run_id = r->id;
	res->session_key = r->session_key;
	res->text = r->text ? r->text : "";
	if (r->tool_calls && json_array_size(r->tool_calls))
		res->tool_calls = r->tool_calls;
	res->finish_reason = r->finish_reason;
	res->input_tokens = r->in_tok;
	res->output_tokens = r->out_tok;
	res->model = r->model_used;
	res->error = r->error;
	res->http_status = r->http_status;
	res->started_at = r->started_at;
	res->ended_at = r->ended_at;
	run_result_defaults(res);
}

/* Agent thread: the end was stored; tell the sinks, leave the list.
 * The result is read from the run itself (run_result_of), not built as
 * JSON and read back (~11k instructions a chat.send run, issue 11); a
 * replay's from its stored row. */
static void run_deliver(void *arg)
{
	struct run *r = arg;
	struct run_result res;

	pthread_mutex_lock(&r->mu);	/* recursive: run_emit_end */
	if (r->replay)
		run_result_fill(&res, r->replay);
	else
		run_result_of(r, &res);
	run_emit_end(r, &res);
	pthread_mutex_unlock(&r->mu);
	run_unlink(r);
	run_unref(r);
}

/* Store writer, after the end's commit: deliver right here when every
 * sink may run on any thread (result: the stored result was made); 0 when
 * the agent thread must do it. The run's fields are no longer written
 * once it ended. */
static int run_deliver_here(struct run *r, int result)
{
	struct run_result res;
	size_t i;

	pthread_mutex_lock(&r->mu);	/* recursive: run_emit_end */
	for (i = 0; i < r->nsinks; i++)
		if (!r->sinks[i].any_thread)
			break;
	if (i < r->nsinks || !result) {
		pthread_mutex_unlock(&r->mu);
		return 0;
	}
	run_result_of(r, &res);
	run_emit_end(r, &res);
	pthread_mutex_unlock(&r->mu);
	run_unlink(r);
	run_unref(r);
	return 1;
}

struct run_endjob {
	struct run *r;
	struct store_session_end e;
	json_t *events;
	struct run_beginjob *begin;	/* deferred start, or NULL */
};

struct run_beginjob {
	struct agent_rt *rt;
	struct run *r;			/* a queued run's activation */
	struct run *owner;		/* a started run's own start (ref) */
	struct store_session_begin b;
	json_t *events;
	char *lite;			/* b.messages in short while a run
					 * holds its deferred start
					 * (run_begin_shrink) */
	size_t nlite;
	int ids_of_run;			/* b's key and ids freed: the run's */
};

/* A deferred start waits for its run's end, which may be a stream held
 * for minutes: its transcript messages (store_session_message's, ~1 KB
 * each as a tree) wait in short, one block of [timestamp, role, text]
 * (~0.1 KB for a prompt), made trees again for the store job
 * (run_begin_grow; a message of another shape keeps them all as they
 * are), and its key and ids are the run's meanwhile. Not dumped and
 * parsed: jansson's parser took ~20k instructions a prompt, the chat
 * path's +7 %. */
static const char *run_lite_text(const json_t *m, const char **role,
				 json_int_t *ts)
{
	const json_t *c = json_object_get(m, "content"), *p, *t;
	const char *type;

	p = json_array_get(c, 0);
	t = json_object_get(p, "text");
	type = json_string_value(json_object_get(p, "type"));
	*role = json_string_value(json_object_get(m, "role"));
	*ts = json_integer_value(json_object_get(m, "timestamp"));
	if (json_object_size(m) != 3 || !*role ||
	    !json_is_integer(json_object_get(m, "timestamp")) ||
	    json_array_size(c) != 1 || json_object_size(p) != 2 ||
	    !json_is_string(t) ||
	    strlen(json_string_value(t)) != json_string_length(t) ||
	    !type || strcmp(type, "text") != 0)
		return NULL;
	return json_string_value(t);
}

static void run_begin_shrink(struct run *r, struct run_beginjob *j)
{
	const char *role, *text;
	json_int_t ts;
	json_t *m;
	size_t i, n = 0, k;
	char *p;

	if (!j || !j->b.messages || j->lite)
		return;
	/* Its session key and ids are the run's (run_beginjob_new): taken
	 * from it again at the end. */
	if (!j->ids_of_run && !strcmp(j->b.key, r->session_key) &&
	    !strcmp(j->b.agent_id, r->agent_id) &&
	    !strcmp(j->b.run_id, r->id) && (!j->b.channel) == (!r->channel) &&
	    (!r->channel || !strcmp(j->b.channel, r->channel))) {
		free(j->b.key);
		free(j->b.agent_id);
		free(j->b.run_id);
		free(j->b.channel);
		j->b.key = j->b.agent_id = j->b.run_id = j->b.channel = NULL;
		j->ids_of_run = 1;
	}
	json_array_foreach(j->b.messages, i, m) {
		if (!(text = run_lite_text(m, &role, &ts)))
			return;
		n += sizeof(ts) + strlen(role) + strlen(text) + 2;
	}
	if (!n)
		return;
	p = j->lite = xmalloc(n);
	json_array_foreach(j->b.messages, i, m) {
		text = run_lite_text(m, &role, &ts);
		memcpy(p, &ts, sizeof(ts));
		p += sizeof(ts);
		k = strlen(role) + 1;
		memcpy(p, role, k);
		p += k;
		k = strlen(text) + 1;
		memcpy(p, text, k);
		p += k;
	}
	j->nlite = json_array_size(j->b.messages);
	json_decref(j->b.messages);
	j->b.messages = NULL;
}

static void run_begin_grow(struct run *r, struct run_beginjob *j)
{
	const char *p, *role;
	json_int_t ts;
	json_t *m;
	size_t i;

	if (j && j->ids_of_run) {
		j->b.key = xstrdup(r->session_key);
		j->b.agent_id = xstrdup(r->agent_id);
		j->b.run_id = xstrdup(r->id);
		j->b.channel = r->channel ? xstrdup(r->channel) : NULL;
		j->ids_of_run = 0;
	}
	if (!j || !j->lite)
		return;
	j->b.messages = json_array();
	for (p = j->lite, i = 0; i < j->nlite; i++) {
		memcpy(&ts, p, sizeof(ts));
		role = p + sizeof(ts);
		p = role + strlen(role) + 1;
		m = store_session_message(role, p);
		json_object_set_new(m, "timestamp", json_integer(ts));
		json_array_append_new(j->b.messages, m);
		p += strlen(p) + 1;
	}
	free(j->lite);
	j->lite = NULL;
	j->nlite = 0;
}

/* Agent thread: the runs whose deferred start waits to be made short,
 * oldest first, and the timer that does it (one per agent thread). */
static __thread struct {
	struct run *head, *tail;
	struct provider_timer *timer;
} run_shr;

static void run_shr_unlink(struct run *r)
{
	if (!r->shr_due)
		return;
	if (r->shr_prev)
		r->shr_prev->shr_next = r->shr_next;
	else
		run_shr.head = r->shr_next;
	if (r->shr_next)
		r->shr_next->shr_prev = r->shr_prev;
	else
		run_shr.tail = r->shr_prev;
	r->shr_next = r->shr_prev = NULL;
	r->shr_due = 0;
}

static void run_shr_due(void *arg)
{
	struct provider *prov = arg;
	struct run *r;
	int64_t now = util_mono_ms();

	run_shr.timer = NULL;
	while ((r = run_shr.head) && r->shr_due <= now) {
		run_shr_unlink(r);
		run_begin_shrink(r, r->begin);
	}
	if (r)
		run_shr.timer = provider_timer_add(prov, r->shr_due - now,
						   run_shr_due, prov);
}

/* A run with a deferred start went upstream: its start is made short
 * if it is still going RUN_SHRINK_MS from now (run_finish takes it out
 * of the queue first). */
static int64_t run_shr_ms(void)
{
	static atomic_int ms = -1;
	const char *e;

	if (atomic_load(&ms) < 0) {
		e = getenv("CLAWGATE_RUN_SHRINK_MS");
		atomic_store(&ms, e && *e && atoi(e) >= 0 ? atoi(e)
							 : RUN_SHRINK_MS);
	}
	return atomic_load(&ms);
}

static void run_shr_add(struct run *r)
{
	if (!r->begin || !r->begin->b.messages || r->shr_due)
		return;
	r->shr_due = util_mono_ms() + run_shr_ms();
	r->shr_prev = run_shr.tail;
	if (run_shr.tail)
		run_shr.tail->shr_next = r;
	else
		run_shr.head = r;
	run_shr.tail = r;
	if (!run_shr.timer)
		run_shr.timer = provider_timer_add(r->rt->prov, run_shr_ms(),
						   run_shr_due, r->rt->prov);
}

/* Store writer, in the transaction that wrote r's start (b): what the
 * end's writes start from (run->st_sid...). */
static void run_begin_kept(struct run *r, const struct store_session_begin *b)
{
	if (!r)
		return;
	memcpy(r->st_sid, b->sid, sizeof(r->st_sid));
	r->st_count = b->count;
	r->st_idem = b->idem_id;
}

static int run_end_tx(sqlite3 *db, void *arg)
{
	struct run_endjob *j = arg;
	int rc;

	/* Its start was not stored: neither is its end (writer order:
	 * the start's job ran before this one). */
	if (atomic_load(&j->r->begin_failed))
		return GW_EIO;
	/* A deferred start commits with its end, in this job's savepoint:
	 * both or neither. */
	if (j->begin && !j->e.skip_row)
		return store_session_run_tx(db, &j->begin->b, &j->e,
					    j->events);
	if (j->begin &&
	    (rc = store_session_begin_tx(db, &j->begin->b, NULL)) != GW_OK)
		return rc;
	if (j->begin)
		run_begin_kept(j->r, &j->begin->b);
	memcpy(j->e.sid, j->r->st_sid, sizeof(j->e.sid));
	j->e.count = j->r->st_count;
	j->e.idem_id = j->r->st_idem;
	return store_session_end_tx(db, &j->e, j->events);
}

static int run_rt_stopping(struct agent_rt *rt)
{
	int v;

	pthread_mutex_lock(&rt->mu);
	v = rt->stopping;
	pthread_mutex_unlock(&rt->mu);
	return v;
}

static void run_end_done(int rc, void *arg)
{
	struct run_endjob *j = arg;
	struct run *r = j->r;

	if (rc != GW_OK) {
		log_warn("agent", "run %s: transcript write failed: %s",
			 r->id, gw_err_str(rc));
		/* Not committed, so not acknowledged: every caller hears
		 * an error, never the reply that was not stored. */
		pthread_mutex_lock(&r->mu);
		r->status = RUN_ERROR;
		free(r->error);
		r->error = xasprintf("transcript write failed: %s",
				     gw_err_str(rc));
		r->http_status = 500;
		pthread_mutex_unlock(&r->mu);
		json_decref(j->e.result);
		j->e.result = run_result_json(r);
		free(j->e.result_text);
		j->e.result_text = NULL;
	} else {
		/* Before anyone can see "final": from now on a retry finds
		 * the stored result. */
		atomic_store(&r->stored, 1);
		agent_emit(r->rt, j->events);
	}
	if (rc != GW_OK)
		json_decref(j->events);
	if (j->begin)
		run_beginjob_free(j->begin);
	free(j->e.key);
	free(j->e.run_id);
	free(j->e.model);
	json_decref(j->e.message);
	if (r->replay ||
	    !run_deliver_here(r, j->e.result || j->e.result_text)) {
		if (provider_post(r->rt->prov, run_deliver, r) != 0)
			run_deliver(r);
	}
	json_decref(j->e.result);
	free(j->e.result_text);
	free(j);
}

/* Agent thread: record the end (status set by the caller). */
static void run_finish(struct run *r, enum run_status st, const char *err,
		       int http_status)
{
	struct run_endjob *j;
	json_t *msg = NULL;

	if (r->ended)
		return;
	r->ended = 1;
	run_shr_unlink(r);
	atomic_fetch_add(&r->rt->nended, 1);
	r->status = st;
	r->ended_at = util_now_ms();
	if (err && !r->error)
		r->error = xstrdup(err);
	if (st != RUN_OK && !r->http_status)
		r->http_status = http_status ? http_status
				 : st == RUN_TIMEOUT ? 504 : 502;
	if (r->http) {
		provider_http_cancel(r->http);
		r->http = NULL;
	}
	run_lane_release(r);
	/* Runs cut by the shutdown: one line for all (run_abort_all). */
	if (st != RUN_OK)
		log_msg(st == RUN_ABORTED && run_rt_stopping(r->rt) ? LOG_DEBUG
			: LOG_INFO, "agent", "run %s (%s) %s%s%s", r->id,
			r->session_key, run_status_name(st),
			r->error ? ": " : "", r->error ? r->error : "");
	if (r->tlen || (r->tool_calls && json_array_size(r->tool_calls))) {
		msg = store_session_message("assistant", r->text ? r->text : "");
		json_object_set_new(msg, "stopReason", json_string(
			st == RUN_OK ? (r->finish_reason ? r->finish_reason
							 : "stop")
				     : run_status_name(st)));
		if (r->model_used)
			json_object_set_new(msg, "model",
					    json_string(r->model_used));
		if (r->in_tok || r->out_tok) {
			json_t *u = json_object();

			json_object_set_new_nocheck(u, "input",
						    json_integer(r->in_tok));
			json_object_set_new_nocheck(u, "output",
						    json_integer(r->out_tok));
			json_object_set_new_nocheck(u, "totalTokens",
				json_integer(r->in_tok + r->out_tok));
			json_object_set_new(msg, "usage", u);
		}
		if (r->tool_calls && json_array_size(r->tool_calls))
			json_object_set(msg, "toolCalls", r->tool_calls);
	}
	j = xcalloc(1, sizeof(*j));
	j->r = r;
	j->events = agent_events_new(r->rt);
	j->e.key = xstrdup(r->session_key);
	j->e.run_id = xstrdup(r->id);
	j->e.message = msg;
	j->e.status = run_status_name(st);
	j->e.result_text = run_result_text(r);
	if (j->e.result_text)
		j->e.error = r->error;	/* not written again until the
					 * end's job is done (run_end_done) */
	else
		j->e.result = run_result_json(r);
	j->e.in_tok = r->in_tok;
	j->e.out_tok = r->out_tok;
	j->e.model = r->model_used ? xstrdup(r->model_used) : NULL;
	j->e.skip_row = r->never_started;
	j->e.pending = r->pending && r->never_started;
	run_begin_grow(r, r->begin);
	j->begin = r->begin;
	r->begin = NULL;
	run_ref(r);
	if (!r->rt->store ||
	    store_write(r->rt->store, run_end_tx, j, run_end_done) != GW_OK)
		run_end_done(GW_EUNAVAIL, j);
}

/* ---- streaming ------------------------------------------------------------ */

static void run_text_append(struct run *r, const char *t, size_t n)
{
	if (r->tlen + n + 1 > r->tcap) {
		r->tcap = (r->tlen + n + 1) * 2;
		r->text = xrealloc(r->text, r->tcap);
	}
	memcpy(r->text + r->tlen, t, n);
	r->tlen += n;
	r->text[r->tlen] = 0;
}

/* Merge one streamed tool-call delta into the complete calls. */
static void run_tool_merge(struct run *r, const json_t *d)
{
	json_int_t idx = json_integer_value(json_object_get(d, "index"));
	json_t *call, *fn, *dfn = json_object_get(d, "function"), *v;
	const char *s;
	char *cat;

	if (!r->tool_calls)
		r->tool_calls = json_array();
	if (idx < 0 || idx > 128)
		return;
	while ((json_int_t)json_array_size(r->tool_calls) <= idx)
		json_array_append_new(r->tool_calls, json_pack(
			"{s:s,s:s,s:{s:s,s:s}}", "id", "", "type", "function",
			"function", "name", "", "arguments", ""));
	call = json_array_get(r->tool_calls, (size_t)idx);
	fn = json_object_get(call, "function");
	if ((s = json_string_value(json_object_get(d, "id"))) && *s)
		json_object_set_new(call, "id", json_string(s));
	if ((v = json_object_get(dfn, "name")) && json_is_string(v) &&
	    json_string_length(v)) {
		cat = xasprintf("%s%s", json_string_value(
			json_object_get(fn, "name")), json_string_value(v));
		json_object_set_new(fn, "name", json_string(cat));
		free(cat);
	}
	if ((v = json_object_get(dfn, "arguments")) && json_is_string(v)) {
		cat = xasprintf("%s%s", json_string_value(
			json_object_get(fn, "arguments")),
			json_string_value(v));
		json_object_set_new(fn, "arguments", json_string(cat));
		free(cat);
	}
}

static void run_usage(struct run *r, const json_t *u)
{
	const json_t *v;

	if (!json_is_object(u))
		return;
	if ((v = json_object_get(u, "prompt_tokens")) && json_is_integer(v))
		r->in_tok = json_integer_value(v);
	if ((v = json_object_get(u, "completion_tokens")) &&
	    json_is_integer(v))
		r->out_tok = json_integer_value(v);
}

/* One chat.completion.chunk (or a whole chat.completion when full). */
static void run_chunk(struct run *r, const json_t *o, int full)
{
	const json_t *ch, *d, *v, *tc;
	const char *s;
	size_t i;

	v = json_object_get(o, "error");
	if (v) {
		s = json_string_value(json_object_get(v, "message"));
		if (!s)
			s = json_string_value(v);
		free(r->stream_error);
		r->stream_error = xstrndup(s ? s : "upstream error",
					   RUN_ERR_PREVIEW);
		return;
	}
	run_usage(r, json_object_get(o, "usage"));
	ch = json_array_get(json_object_get(o, "choices"), 0);
	if (!ch)
		return;
	d = json_object_get(ch, full ? "message" : "delta");
	s = json_string_value(json_object_get(d, "content"));
	if (s && *s) {
		run_text_append(r, s, strlen(s));
		r->first = 1;
		run_emit_delta(r, s, strlen(s));
	}
	tc = json_object_get(d, "tool_calls");
	json_array_foreach(tc, i, v) {
		json_t *dd = json_deep_copy(v);

		if (!json_object_get(dd, "index"))
			json_object_set_new(dd, "index", json_integer(
				(json_int_t)i));
		run_tool_merge(r, dd);
		r->first = 1;
		run_emit_tool(r, dd);
		json_decref(dd);
	}
	s = json_string_value(json_object_get(ch, "finish_reason"));
	if (s && *s) {
		free(r->finish_reason);
		r->finish_reason = xstrdup(s);
	}
}

/* run_chunk(o, 0) for the common chunk, without a JSON tree (most of a
 * run's parsing: one chunk per token). 0: parse it with jansson. */
static int run_chunk_fast(struct run *r, const char *data, size_t len)
{
	struct provider_chunk c;
	char stack[512], *t;
	size_t n;

	if (!provider_chunk_scan(data, len, &c))
		return 0;
	if (c.in_set)
		r->in_tok = c.in_tok;
	if (c.out_set)
		r->out_tok = c.out_tok;
	if (!c.has_choice)
		return 1;
	if (c.content.is_str && c.content.len) {
		t = c.content.len < sizeof(stack) ? stack
						  : xmalloc(c.content.len + 1);
		n = provider_chunk_text(&c.content, t);
		run_text_append(r, t, n);
		r->first = 1;
		run_emit_delta(r, t, n);
		if (t != stack)
			free(t);
	}
	if (c.finish.is_str && c.finish.len) {
		free(r->finish_reason);
		r->finish_reason = xmalloc(c.finish.len + 1);
		provider_chunk_text(&c.finish, r->finish_reason);
	}
	return 1;
}

static void run_on_event(void *arg, const char *data, size_t len)
{
	struct run *r = arg;
	json_t *o;

	if (r->ended)
		return;
	if (r->first && r->body) {	/* no fallback now */
		free(r->body);
		r->body = NULL;
	}
	r->nevents++;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		r->done_marker = 1;
		return;
	}
	if (run_chunk_fast(r, data, len))
		return;
	o = json_loadb(data, len, 0, NULL);
	if (!o)
		return;
	run_chunk(r, o, 0);
	json_decref(o);
}

static void run_attempt(struct run *r);

/* An attempt failed: next model if nothing was streamed yet, else end. */
static void run_fail(struct run *r, enum run_status st, char *msg,
		     int http_status)
{
	struct agent_target *t = r->chain[r->cur];

	if (!r->first && !r->abort_req && r->cur + 1 < r->nchain) {
		log_warn("agent", "run %s: %s; trying fallback %s", r->id, msg,
			 r->chain[r->cur + 1]->ref);
		(void)t;
		free(r->error);
		r->error = msg;
		r->cur++;
		free(r->stream_error);
		r->stream_error = NULL;
		r->nevents = 0;
		r->done_marker = 0;
		free(r->finish_reason);
		r->finish_reason = NULL;
		run_attempt(r);
		return;
	}
	free(r->error);
	r->error = msg;
	run_finish(r, st, NULL, http_status);
}

static int run_map_status(int upstream)
{
	if (upstream == 429)
		return 429;
	if (upstream == 400 || upstream == 413 || upstream == 422)
		return 400;
	if (upstream == 408 || upstream == 504)
		return 504;
	return 502;
}

static void run_on_done(void *arg, int status, int curl_err,
			const char *curl_msg, const char *body, size_t blen,
			int overflow)
{
	struct run *r = arg;
	struct agent_target *t = r->chain[r->cur];
	json_t *o, *e;
	const char *m;
	char *msg;

	r->http = NULL;
	if (r->ended)
		return;
	if (curl_err) {
		if (curl_err == CURLE_OPERATION_TIMEDOUT)
			run_fail(r, RUN_TIMEOUT, xasprintf(
				"provider '%s' (model %s): timed out (%s)",
				t->provider, t->model,
				curl_msg ? curl_msg : "timeout"), 504);
		else
			run_fail(r, RUN_ERROR, xasprintf(
				"provider '%s' (model %s): upstream request "
				"failed: %s", t->provider, t->model,
				curl_msg ? curl_msg : "transport error"), 502);
		return;
	}
	if (status < 200 || status >= 300) {
		o = json_loadb(body, blen, 0, NULL);
		e = json_object_get(o, "error");
		m = json_string_value(json_object_get(e, "message"));
		if (!m)
			m = json_string_value(e);
		if (!m)
			m = json_string_value(json_object_get(o, "message"));
		msg = xasprintf("provider '%s' (model %s) returned HTTP %d%s%.*s",
				t->provider, t->model, status, m ? ": " : "",
				RUN_ERR_PREVIEW, m ? m : "");
		json_decref(o);
		run_fail(r, RUN_ERROR, msg, run_map_status(status));
		return;
	}
	if (overflow) {
		run_fail(r, RUN_ERROR, xasprintf("provider '%s' (model %s): "
			 "upstream response too large", t->provider, t->model),
			 502);
		return;
	}
	if (!r->nevents && blen) {
		/* A plain JSON completion (the server ignored stream). */
		o = json_loadb(body, blen, 0, NULL);
		if (!o) {
			run_fail(r, RUN_ERROR, xasprintf(
				"provider '%s' (model %s): unreadable "
				"response", t->provider, t->model), 502);
			return;
		}
		run_chunk(r, o, 1);
		json_decref(o);
		if (!r->stream_error && !r->finish_reason)
			r->finish_reason = xstrdup("stop");
	}
	if (r->stream_error) {
		msg = xasprintf("provider '%s' (model %s): %s", t->provider,
				t->model, r->stream_error);
		run_fail(r, RUN_ERROR, msg, 502);
		return;
	}
	if (!r->done_marker && !r->finish_reason) {
		run_fail(r, RUN_ERROR, xasprintf(
			"provider '%s' (model %s): the stream ended before "
			"the answer was complete", t->provider, t->model),
			502);
		return;
	}
	free(r->model_used);
	r->model_used = xstrdup(t->ref);
	free(r->error);
	r->error = NULL;
	if (!r->finish_reason)
		r->finish_reason = xstrdup(r->tool_calls ? "tool_calls"
							 : "stop");
	run_finish(r, RUN_OK, NULL, 0);
}

/* The request body of chain[cur]: the run's body with this target's
 * "model" (and "stream_options" when it wants usage and the request set
 * none) appended, as setting them into the tree would. The tree is made
 * text at the first attempt and dropped with what it was built from (a
 * held stream keeps ~1.5 KB less); the text is kept only while a
 * fallback may still send it (run_on_event drops it at the first token). */
static char *run_attempt_body(struct run *r, const struct agent_target *t)
{
	json_t *tail;
	char *ts = NULL, *out = NULL;
	const char *m;
	size_t blen, tlen, n;
	int opts;

	if (r->req) {
		r->body = store_json_dump(r->req, NULL);
		r->body_opts = json_object_get(r->req, "stream_options") != NULL;
		json_decref(r->req);
		r->req = NULL;
		json_decref(r->in_msgs);
		r->in_msgs = NULL;
		free(r->sys);
		r->sys = NULL;
		run_shr_add(r);
	}
	if (!r->body)
		return NULL;
	opts = t->usage_in_stream && !r->body_opts;
	for (m = t->model; *m && (unsigned char)*m >= 0x20 &&
	     (unsigned char)*m < 0x7f && *m != '"' && *m != '\\'; m++)
		;
	if (!*m) {	/* nothing to escape: as store_json_dump writes it */
		ts = xasprintf("{\"model\":\"%s\"%s}", t->model, opts ?
			       ",\"stream_options\":{\"include_usage\":true}"
			       : "");
		tlen = strlen(ts);
	} else {
		tail = json_pack("{s:s}", "model", t->model);
		if (opts)
			json_object_set_new(tail, "stream_options", json_pack(
				"{s:b}", "include_usage", 1));
		ts = store_json_dump(tail, &tlen);
		json_decref(tail);
		if (!ts)
			goto out;
	}
	/* "{...}" and "{tail}" -> "{...,tail}" */
	blen = strlen(r->body);
	out = xmalloc(blen + tlen);
	n = blen - 1;
	memcpy(out, r->body, n);
	if (n > 1)
		out[n++] = ',';
	memcpy(out + n, ts + 1, tlen);	/* with its '}' and NUL */
out:
	free(ts);
	if (r->cur + 1 >= r->nchain) {	/* no fallback after this one */
		free(r->body);
		r->body = NULL;
	}
	return out;
}

/* Agent thread: start the request for chain[cur]. */
static void run_attempt(struct run *r)
{
	struct agent_target *t;
	struct provider_http_req hr = {0};
	struct provider_http_cbs cbs = {0};
	char *text, *err = NULL;

	if (r->ended)
		return;
	/* After stop, attempts still queued for the agent thread end at
	 * once, before the abort jobs behind them: a backlog of thousands
	 * opens no upstream connection. */
	if (r->abort_req || run_rt_stopping(r->rt)) {
		run_finish(r, RUN_ABORTED, "run aborted", 499);
		return;
	}
	t = r->chain[r->cur];
	if (t->error) {
		run_fail(r, RUN_ERROR, xstrdup(t->error), 502);
		return;
	}
	text = run_attempt_body(r, t);
	hr.url = t->url;
	hr.body_take = text;
	hr.headers = t->headers;
	hr.api_key = t->api_key;
	/* The provider's timeoutSeconds bounds silence (connect, first
	 * byte, gaps in the stream); the request's timeout, when given,
	 * bounds the whole answer. */
	hr.timeout_ms = r->timeout_ms;
	hr.idle_timeout_ms = t->timeout_ms;
	hr.connect_timeout_ms = RUN_CONNECT_TIMEOUT_MS < t->timeout_ms
				? RUN_CONNECT_TIMEOUT_MS : t->timeout_ms;
	hr.pool_max_idle = t->pool_max_idle;
	hr.pool_max_host = t->pool_max_host;
	hr.pool_idle_s = t->pool_idle_s;
	cbs.on_event = run_on_event;
	cbs.on_done = run_on_done;
	cbs.arg = r;
	log_debug("agent", "run %s: %s via %s", r->id, t->ref, t->url);
	r->http = provider_http_start(r->rt->prov, &hr, &cbs, &err);
	if (!r->http)
		run_fail(r, RUN_ERROR, xasprintf("provider '%s': %s",
						 t->provider, err), 502);
	free(err);
}

static void run_attempt_job(void *arg)
{
	struct run *r = arg;

	run_attempt(r);
	run_unref(r);
}

/* ---- start ------------------------------------------------------------------ */

static int run_begin_tx(sqlite3 *db, void *arg)
{
	struct run_beginjob *j = arg;
	int rc = store_session_begin_tx(db, &j->b, j->events);

	/* Before the end's job runs (it is queued after this one). */
	if (rc != GW_OK && j->owner)
		atomic_store(&j->owner->begin_failed, 1);
	if (rc == GW_OK)
		run_begin_kept(j->owner, &j->b);
	return rc;
}

static void run_beginjob_free(struct run_beginjob *j)
{
	free(j->lite);
	json_decref(j->events);
	free(j->b.key);
	free(j->b.agent_id);
	free(j->b.run_id);
	free(j->b.channel);
	json_decref(j->b.messages);
	free(j);
}

static void run_begin_done(int rc, void *arg)
{
	struct run_beginjob *j = arg;

	if (rc == GW_OK) {
		agent_emit(j->rt, j->events);
		j->events = NULL;
	} else {
		log_warn("agent", "run %s: transcript start failed: %s",
			 j->b.run_id, gw_err_str(rc));
	}
	if (j->owner) {
		if (rc != GW_OK)	/* its commit failed */
			atomic_store(&j->owner->begin_failed, 1);
		run_unref(j->owner);
		j->owner = NULL;
	}
	run_beginjob_free(j);
}

/* The system prompt of a run: workspace files, then request text. */
static char *run_system_text(struct agent_rt *rt, const struct gw_config *cfg,
			     const char *agent, const struct run_request *rq)
{
	char *ws = agent_workspace_prompt(rt, cfg, agent), *sys = NULL;

	if (ws && rq->extra_system && *rq->extra_system)
		sys = xasprintf("%s\n\n%s", ws, rq->extra_system);
	else if (ws)
		sys = xstrdup(ws);
	else if (rq->extra_system && *rq->extra_system)
		sys = xstrdup(rq->extra_system);
	free(ws);
	return sys;
}

/* The request's messages as the upstream gets them (developer → system). */
static json_t *run_input_messages(const json_t *msgs)
{
	json_t *out = json_array(), *m, *c;
	const char *role;
	size_t i;

	json_array_foreach(msgs, i, m) {
		if (!json_is_object(m))
			continue;
		role = json_string_value(json_object_get(m, "role"));
		if (role && strcmp(role, "developer") == 0) {
			c = json_deep_copy(m);
			json_object_set_new(c, "role", json_string("system"));
			json_array_append_new(out, c);
		} else {
			json_array_append(out, m);
		}
	}
	return out;
}

/* rt->mu held: take the queued system events of key ("System: ..."
 * lines) or NULL. */
static char *run_take_events(struct agent_rt *rt, const char *key)
{
	json_t *a = json_object_get(rt->sysevents, key), *v;
	char *out = NULL, *tmp;
	size_t i;

	json_array_foreach(a, i, v) {
		tmp = out ? xasprintf("%s\nSystem: %s", out,
				      json_string_value(v))
			  : xasprintf("System: %s", json_string_value(v));
		free(out);
		out = tmp;
	}
	json_object_del(rt->sysevents, key);
	return out;
}

/* The upstream messages of a starting run: the system prompt (with the
 * session's queued system events) first, then the stored history (read
 * through db, or this thread's reader when db is NULL; not when the
 * caller read in the same transaction that the session has no row,
 * no_row), then the request's messages. Sets them into r->req. */
static void run_build_messages_of(struct run *r, sqlite3 *db, int no_row)
{
	struct agent_rt *rt = r->rt;
	json_t *out = json_array(), *m;
	char *ev, *sys;
	size_t i;

	pthread_mutex_lock(&rt->mu);
	ev = run_take_events(rt, r->session_key);
	pthread_mutex_unlock(&rt->mu);
	if (ev && r->sys)
		sys = xasprintf("%s\n\n%s", r->sys, ev);
	else
		sys = ev ? xstrdup(ev) : r->sys ? xstrdup(r->sys) : NULL;
	if (sys)
		json_array_append_new(out, json_pack("{s:s,s:s}", "role",
						     "system", "content",
						     sys));
	if (r->use_history && !no_row) {
		if (db)
			store_session_history_db(db, r->session_key,
						  STORE_SESSION_HISTORY_MAX, out);
		else
			store_session_history(rt->store, r->session_key,
					       STORE_SESSION_HISTORY_MAX, out);
	}
	json_array_foreach(r->in_msgs, i, m)
		json_array_append(out, m);
	json_object_set_new(r->req, "messages", out);
	free(ev);
	free(sys);
}

static void run_build_messages(struct run *r, sqlite3 *db)
{
	run_build_messages_of(r, db, 0);
}

/* What the transcript records of the request: the user messages of a
 * WS turn, or the last user message of an HTTP request. */
static json_t *run_transcript_in(struct run_request *rq)
{
	json_t *out = json_array(), *m, *last = NULL;
	const char *role;
	char *text;
	size_t i;

	json_array_foreach(rq->messages, i, m) {
		role = json_string_value(json_object_get(m, "role"));
		if (!role || strcmp(role, "user") != 0)
			continue;
		if (!rq->use_history) {
			last = m;
			continue;
		}
		text = store_session_text(json_object_get(m, "content"));
		json_array_append_new(out, store_session_message("user", text));
		free(text);
	}
	if (last) {
		text = store_session_text(json_object_get(last, "content"));
		json_array_append_new(out, store_session_message("user", text));
		free(text);
	}
	return out;
}

static struct run_beginjob *run_beginjob_new(struct run *r)
{
	struct run_beginjob *bj = xcalloc(1, sizeof(*bj));

	bj->rt = r->rt;
	bj->events = agent_events_new(r->rt);
	bj->b.key = xstrdup(r->session_key);
	bj->b.agent_id = xstrdup(r->agent_id);
	bj->b.run_id = xstrdup(r->id);
	bj->b.channel = r->channel ? xstrdup(r->channel) : NULL;
	bj->b.messages = r->tr_in;
	bj->b.started_at = r->started_at;
	r->tr_in = NULL;
	return bj;
}

/* A queued run's turn came: read its history and write its start in one
 * store job, then start the upstream request on the agent thread. */
/* A start built before the run turned out queued: its transcript
 * messages back to the run, its request without messages (both are
 * made again at its turn). */
static void run_begin_undo(struct run *r, struct run_beginjob *bj)
{
	if (!bj)
		return;
	run_begin_grow(r, bj);
	r->tr_in = bj->b.messages;
	bj->b.messages = NULL;
	run_beginjob_free(bj);
	json_object_del(r->req, "messages");
}

static int run_activate_tx(sqlite3 *db, void *arg)
{
	struct run_beginjob *j = arg;
	int rc;

	run_build_messages(j->r, db);
	rc = store_session_begin_tx(db, &j->b, j->events);
	if (rc == GW_OK)
		run_begin_kept(j->r, &j->b);
	return rc;
}

static void run_activate_done(int rc, void *arg)
{
	struct run_beginjob *j = arg;
	struct run *r = j->r;

	if (rc != GW_OK)
		atomic_store(&r->begin_failed, 1);
	if (!json_object_get(r->req, "messages"))
		run_build_messages(r, NULL);
	j->r = NULL;
	run_begin_done(rc, j);
	/* The store job's reference goes to the attempt. */
	if (provider_post(r->rt->prov, run_attempt_job, r) != 0) {
		/* Stopping: the agent thread is gone; end it here. */
		run_finish(r, RUN_ABORTED, "gateway is stopping", 503);
		run_unref(r);
	}
}

static void run_activate_queued(struct run *r)
{
	struct run_beginjob *bj = run_beginjob_new(r);

	log_info("agent", "run %s: its turn in session %s", r->id,
		 r->session_key);
	bj->r = r;
	bj->b.pending = r->pending;
	if (!r->rt->store ||
	    store_write(r->rt->store, run_activate_tx, bj,
			run_activate_done) != GW_OK)
		run_activate_done(GW_EUNAVAIL, bj);
}

/* A run got a lane slot (its reference is the caller's, consumed). A
 * run whose start was written when it was acknowledged (begun), or
 * whose start waits for its end (r->begin, a start nobody can see), goes
 * on as run_start would have; a run without one (a queued run whose
 * session's turn came) reads its history and writes its start in one
 * store job (run_activate_queued). */
static void run_lane_start(struct run *r)
{
	if (!r->begin && !r->begun) {
		run_activate_queued(r);
		return;
	}
	log_debug("agent", "run %s: a lane slot", r->id);
	/* Posted also on the agent thread: r may be taken inside another
	 * run's end (run_lane_release), never a place to start a request. */
	if (provider_post(r->rt->prov, run_attempt_job, r) != 0) {
		/* Stopping: the agent thread is gone; end it here. */
		run_finish(r, RUN_ABORTED, "gateway is stopping", 503);
		run_unref(r);
	}
}

/* A run got a lane slot: it starts (run_lane_start), or, while its
 * acknowledging write is not committed, when it is (run_ack_settled). */
static void run_lane_go(struct run *r)
{
	struct agent_rt *rt = r->rt;
	int held;

	pthread_mutex_lock(&rt->mu);
	held = r->acking;
	if (held)
		r->ack_go = 1;
	pthread_mutex_unlock(&rt->mu);
	if (!held)
		run_lane_start(r);
}

/* ---- a waiting run's acknowledgement ---------------------------------------- */

/* The write that acknowledges a waiting run: its start (begun) or its
 * run_pending row (pending), on the writer. The job holds a reference. */
struct run_ackjob {
	struct run *r;
	struct run_beginjob *bj;	/* its start (begun) */
};

/* Store writer (tx): write the acknowledgement of a->r. A lane-waiting
 * run's start is built here when the caller had none (its history read
 * through db). */
static int run_ack_tx(sqlite3 *db, void *arg)
{
	struct run_ackjob *a = arg;
	struct run *r = a->r;
	struct store_session_pending p = {
		.key = r->session_key, .agent_id = r->agent_id,
		.run_id = r->id, .channel = r->channel,
		.messages = r->tr_in, .seq = (int64_t)r->seq,
	};

	int rc;

	if (!r->begun)
		return store_session_pending_tx(db, &p);
	if (!a->bj) {
		if (!json_object_get(r->req, "messages"))
			run_build_messages(r, db);
		a->bj = run_beginjob_new(r);
	}
	rc = store_session_begin_tx(db, &a->bj->b, a->bj->events);
	if (rc == GW_OK)
		run_begin_kept(r, &a->bj->b);
	return rc;
}

/* The acknowledgement committed (rc GW_OK) or not: a slot or an abort
 * that came meanwhile goes on now. */
static void run_ack_settled(struct run *r, int rc)
{
	struct agent_rt *rt = r->rt;
	int go, ab;

	if (rc != GW_OK) {
		/* As a start that failed: its end is an error (a start's
		 * failure is logged by run_begin_done). */
		if (!r->begun)
			log_warn("agent", "run %s: queued run not stored: %s",
				 r->id, gw_err_str(rc));
		atomic_store(&r->begin_failed, 1);
	}
	pthread_mutex_lock(&rt->mu);
	r->acking = 0;
	go = r->ack_go;
	ab = r->ack_abort;
	r->ack_go = r->ack_abort = 0;
	pthread_mutex_unlock(&rt->mu);
	if (go)
		run_lane_start(r);	/* the slot's reference */
	if (ab)
		run_abort(r);
}

static void run_ack_done(int rc, void *arg)
{
	struct run_ackjob *a = arg;

	if (a->bj)
		run_begin_done(rc, a->bj);
	run_ack_settled(a->r, rc);
	run_unref(a->r);
	free(a);
}

static struct run_ackjob *run_ackjob_new(struct run *r,
					 struct run_beginjob *bj)
{
	struct run_ackjob *a = xcalloc(1, sizeof(*a));

	run_ref(r);
	a->r = r;
	a->bj = bj;
	return a;
}

/* run_start's acknowledgement of a waiting run (bj: its prepared start
 * or NULL, taken): committed before it returns, except on the agent
 * thread (a start that reads no store row), which never waits for the
 * writer: there it is queued before the caller answers, as the start of
 * a run that starts at once. */
static void run_ack_write(struct run *r, struct run_beginjob *bj)
{
	struct agent_rt *rt = r->rt;
	struct run_ackjob *a;

	if (r->begun && !bj) {
		run_build_messages(r, NULL);
		bj = run_beginjob_new(r);
	}
	a = run_ackjob_new(r, bj);
	if (!rt->store)
		run_ack_done(GW_EUNAVAIL, a);
	else if (!provider_on_thread(rt->prov))
		run_ack_done(store_write_sync(rt->store, run_ack_tx, a, 0), a);
	else if (store_write(rt->store, run_ack_tx, a, run_ack_done) != GW_OK)
		run_ack_done(GW_EUNAVAIL, a);
}

/* A run ended: its upstream request is over, so its slot goes to the
 * oldest waiting run now, while its end is being stored (its session's
 * next run still waits until it left the live list). */
static void run_lane_release(struct run *r)
{
	struct agent_rt *rt = r->rt;
	struct run *go = NULL;

	pthread_mutex_lock(&rt->mu);
	if (run_lane_free_slot(rt, r))
		go = run_lane_take(rt);
	pthread_mutex_unlock(&rt->mu);
	run_lane_go_all(go);
}

static void run_lane_go_all(struct run *chain)
{
	struct run *r;

	while (chain) {
		r = chain;
		chain = r->lane_next;
		r->lane_next = NULL;
		run_lane_go(r);
	}
}

static void run_replay_job(void *arg)
{
	run_deliver(arg);
}

/* A finished run with this id within the TTL: a replay run. */
static struct run *run_replay_new(struct agent_rt *rt, const char *id,
				  const char *key, const char *agent,
				  const char *status, json_t *result)
{
	struct run *r = run_alloc(rt, id, key, agent);

	r->is_replay = 1;
	if (!result || !json_is_object(result)) {
		json_decref(result);
		result = json_pack("{s:s,s:s,s:s,s:s}", "runId", id,
				   "sessionKey", key, "status",
				   strcmp(status, "running") == 0 ? "error"
								  : status,
				   "error", "run interrupted by a gateway "
				   "restart");
	}
	r->replay = result;
	r->delivered = 0;
	return r;
}

/* Drop what a start steals from rq (its JSON). */
static void run_request_release(struct run_request *rq)
{
	json_decref(rq->messages);
	rq->messages = NULL;
	json_decref(rq->tools);
	rq->tools = NULL;
	json_decref(rq->tool_choice);
	rq->tool_choice = NULL;
	json_decref(rq->params);
	rq->params = NULL;
}

int run_start_light(const struct run_request *rq)
{
	return rq->new_session && !(rq->run_id && *rq->run_id) &&
	       !rq->use_history;
}

/* Whether a new run's start can wait for its end and commit with it
 * (one store job instead of two): nobody can see the run in between. Its
 * session key was generated for it (no one else knows it, no stored
 * history), no caller idempotency key (a retry cannot look for it), no
 * client is connected that would get its run events and none subscribed
 * to its session events (the job built none). The client of the run is answered after the commit, as always;
 * what it gives up is a trace of a run in flight when the gateway dies. */
static int run_defer_begin(const struct run_request *rq,
			   const struct run_beginjob *bj)
{
	/* CLAWGATE_NO_DEFER_BEGIN=1: always commit the start first (for
	 * before/after measurements, tests/bench/README.md). */
	static atomic_int off = -1;

	if (atomic_load(&off) < 0)
		atomic_store(&off, getenv("CLAWGATE_NO_DEFER_BEGIN") != NULL);
	return run_start_light(rq) && !bj->events && !atomic_load(&off) &&
	       !agent_listening(bj->rt);
}

/* A live run that a start with its id joins, or NULL: none, or its end
 * is stored (a retry then replays it). New reference. */
static struct run *run_joinable(struct agent_rt *rt, const char *id)
{
	struct run *r = run_find(rt, id);

	if (r && atomic_load(&r->stored)) {
		run_unref(r);
		r = NULL;
	}
	return r;
}

/* What a run sends upstream and records, from rq alone (CPU work, any
 * thread): its input and transcript messages and its request body. */
static void run_prep(struct run *r, struct run_request *rq)
{
	const char *k;
	json_t *v;

	r->in_msgs = run_input_messages(rq->messages);
	r->tr_in = run_transcript_in(rq);
	r->use_history = rq->use_history;
	r->req = json_object();		/* json_pack("{s:b}"), unparsed */
	json_object_set_new_nocheck(r->req, "stream", json_true());
	if (json_is_object(rq->params)) {
		json_object_foreach(rq->params, k, v)
			if (strcmp(k, "messages") && strcmp(k, "model") &&
			    strcmp(k, "stream"))
				json_object_set(r->req, k, v);
	}
	if (rq->tools && json_array_size(rq->tools))
		json_object_set(r->req, "tools", rq->tools);
	if (rq->tool_choice)
		json_object_set(r->req, "tool_choice", rq->tool_choice);
	r->timeout_ms = rq->timeout_ms;
}

/* Its model chain (the override, else the agent's) and system prompt
 * (the workspace files: stat()s). */
static int run_targets(struct agent_rt *rt, const struct gw_config *cfg,
		       struct run *r, const struct run_request *rq,
		       const char *override, char **err)
{
	int rc = agent_resolve_chain(rt, cfg, r->agent_id, override,
				     &r->chain, &r->nchain, err);

	if (rc == GW_OK)
		r->sys = run_system_text(rt, cfg, r->agent_id, rq);
	return rc;
}

/* A new run of rq (not live yet), set up; *out is set even on failure
 * (the caller's reference). */
static int run_setup(struct agent_rt *rt, const struct gw_config *cfg,
		     struct run_request *rq, const char *agent,
		     const char *id, const char *override, struct run **out,
		     char **err)
{
	struct run *r = run_alloc(rt, id, rq->session_key, agent);
	int rc;

	*out = r;
	r->channel = rq->channel ? xstrdup(rq->channel) : NULL;
	rc = run_targets(rt, cfg, r, rq, override, err);
	if (rc == GW_OK)
		run_prep(r, rq);
	return rc;
}

/* Make r live (the list holds one reference): free in its session it
 * takes a lane slot or waits in the lane's FIFO; a run of a session that
 * has a live run waits for its turn (queued). The observer and sink are
 * attached. *now: 1 when it starts now (the caller writes its start, *bj
 * or a new one, and posts its attempt), 0 when it waits. A waiting run
 * is acknowledged only once stored: with r->begun (lane-waiting: its
 * start, *bj or a new one) or r->pending (queued: its run_pending row)
 * set, the caller writes that (run_ack_tx) and calls run_ack_settled
 * (a lane-waiting run whose start waits for its end, r->begin, writes
 * nothing). A queued run's prepared start (*bj or r->begin) is undone:
 * it is made again at its turn. */
static int run_go_live(struct agent_rt *rt, const struct gw_config *cfg,
		       struct run *r, struct run_beginjob **bj,
		       const struct run_sink *sink, int *now,
		       struct run **dup, char **err)
{
	struct agent_observer obs;
	struct runidx_node *n;
	struct run *go = NULL;
	int queued, waiting = 0, cap, wait_max;

	*now = 0;
	*dup = NULL;
	pthread_mutex_lock(&rt->mu);
	if (rt->stopping) {
		pthread_mutex_unlock(&rt->mu);
		*err = xstrdup("gateway is stopping");
		return GW_EUNAVAIL;
	}
	if ((n = runidx_find(&rt->runidx, r->id)) &&
	    !atomic_load(&RUN_OF(n)->stored)) {
		/* The same key went live on another thread since the caller
		 * looked (a chat.send's start job and an `agent` or HTTP
		 * request with that key): join it rather than start a second
		 * run with the same id. */
		*dup = RUN_OF(n);
		run_ref(*dup);
		pthread_mutex_unlock(&rt->mu);
		return GW_OK;
	}
	if (!rt->lane_cap)	/* later: each applied config's */
		rt->lane_cap = run_lane_cap(cfg);
	queued = runidx_first(&rt->runidx, r->session_key) != NULL;
	cap = rt->lane_cap;
	wait_max = run_wait_max(cap);
	if ((queued || rt->lane_active >= cap) &&
	    rt->nruns - rt->lane_active >= wait_max) {
		/* It would wait, and enough do: refused, not held. */
		pthread_mutex_unlock(&rt->mu);
		*err = xasprintf("too many runs waiting (%d; "
				 "agents.defaults.maxConcurrent %d in "
				 "flight); retry later", wait_max, cap);
		return GW_EUNAVAIL;
	}
	r->queued = queued;
	r->seq = ++rt->run_seq;
	run_ref(r);
	r->live = 1;
	r->next = rt->runs;
	if (rt->runs)
		rt->runs->prev = r;
	rt->runs = r;
	r->idx.id = r->id;
	r->idx.key = r->session_key;
	runidx_add(&rt->runidx, &r->idx);
	rt->nruns++;
	obs = rt->obs;
	/* Free in its session: a lane slot, or last in the lane's FIFO. */
	if (!queued) {
		run_lane_push(rt, r);
		go = run_lane_take(rt);
		waiting = r->lane_wait;
		if (waiting && !r->begin) {
			/* Its start is written now (the caller, with *bj);
			 * only the upstream request waits. */
			r->begun = 1;
			r->acking = 1;
		}
	} else {
		/* Its run_pending row is written now (the caller). */
		r->pending = 1;
		r->acking = 1;
	}
	pthread_mutex_unlock(&rt->mu);
	/* Runs that waited (a raised cap) start first; r is the last
	 * taken, started by the caller. */
	if (!waiting) {
		struct run **p = &go;

		while (*p && *p != r)
			p = &(*p)->lane_next;
		if (*p) {
			*p = NULL;
			r->lane_next = NULL;
			run_unref(r);	/* the live list holds one */
		}
	}
	run_lane_go_all(go);
	/* Observers first: their events go out before the caller's end.
	 * Nobody listening: no fan-out sink to feed for this run. */
	if (obs.on_run && (!obs.listening || obs.listening(obs.arg)))
		obs.on_run(obs.arg, r);
	if (sink)
		run_attach(r, sink);
	if (queued) {
		/* (Not for a just generated key.) Its start is written
		 * when its turn comes, with its history read then. */
		run_begin_undo(r, *bj ? *bj : r->begin);
		*bj = NULL;
		r->begin = NULL;
		log_info("agent", "run %s queued behind the live run of "
			 "session %s", r->id, r->session_key);
		return GW_OK;
	}
	if (waiting) {
		log_debug("agent", "run %s waits for a lane slot", r->id);
		return GW_OK;
	}
	*now = 1;
	return GW_OK;
}

int run_start(struct agent_rt *rt, struct run_request *rq,
	      const struct run_sink *sink, struct run **out, char **err)
{
	struct gw_config *cfg = config_current();
	struct run *r = NULL, *dup = NULL;
	struct run_beginjob *bj = NULL;
	char *agent = NULL, *override = NULL, *st = NULL, *key = NULL;
	char idbuf[37];
	json_t *res = NULL;
	int rc = GW_EINVAL, now;

	*out = NULL;
	*err = NULL;
	rq->origin = RUN_NEW;
	if (!rq->session_key || !*rq->session_key) {
		*err = xstrdup("session key required");
		goto out;
	}
	agent = agent_canon_id(rt, cfg, rq->agent_id);
	if (!agent) {
		*err = xasprintf("Unknown agent '%s'.", rq->agent_id);
		goto out;
	}
	if (rq->run_id && *rq->run_id) {
		/* Idempotency: the same key joins or replays its run. */
		r = run_joinable(rt, rq->run_id);
		if (r && (!sink || run_attach(r, sink) == GW_OK)) {
			rq->origin = RUN_JOINED;
			*out = r;
			r = NULL;
			rc = GW_OK;
			goto out;
		}
		run_unref(r);
		r = NULL;
		if (store_session_idem_get(rt->store, rq->run_id, &st, &key, &res) ==
		    GW_OK) {
			/* Still "running": its run may have gone live on
			 * another thread since the look above (its start
			 * committed in between), not been cut by a restart. */
			if (strcmp(st, "running") == 0 &&
			    (r = run_joinable(rt, rq->run_id)) &&
			    (!sink || run_attach(r, sink) == GW_OK)) {
				rq->origin = RUN_JOINED;
				*out = r;
				r = NULL;
				rc = GW_OK;
				goto out;
			}
			run_unref(r);
			r = run_replay_new(rt, rq->run_id, key, agent, st, res);
			rq->origin = RUN_REPLAY;
			res = NULL;
			if (sink)
				run_attach(r, sink);
			run_ref(r);
			if (provider_post(rt->prov, run_replay_job, r) != 0) {
				run_unref(r);
				run_unref(r);
				r = NULL;
				*err = xstrdup("gateway is stopping");
				rc = GW_EUNAVAIL;
				goto out;
			}
			*out = r;
			r = NULL;
			rc = GW_OK;
			goto out;
		}
	} else {
		store_uuid7(idbuf);
	}
	override = rq->model_override && *rq->model_override
		   ? xstrdup(rq->model_override)
		   : rq->new_session ? NULL
		   : store_session_model_override(rt->store, rq->session_key);
	rc = run_setup(rt, cfg, rq, agent, rq->run_id && *rq->run_id
		       ? rq->run_id : idbuf, override, &r, err);
	if (rc != GW_OK)
		goto out;
	/* Whether its start waits for its end is settled before the run is
	 * in the live list, where an abort could end it at once. */
	if (run_start_light(rq)) {
		run_build_messages(r, NULL);
		bj = run_beginjob_new(r);
		if (run_defer_begin(rq, bj)) {
			bj->b.fresh = 1;	/* a new key (new_session) */
			r->begin = bj;	/* run_finish takes it */
			bj = NULL;
		}
	}
	rc = run_go_live(rt, cfg, r, &bj, sink, &now, &dup, err);
	if (rc == GW_OK && dup) {
		if (sink && run_attach(dup, sink) != GW_OK) {
			run_unref(dup);
			*err = xstrdup("the run of this idempotency key just "
				       "ended; retry");
			rc = GW_EUNAVAIL;
			goto out;
		}
		rq->origin = RUN_JOINED;
		*out = dup;
		goto out;
	}
	if (rc != GW_OK || !now) {
		if (rc == GW_OK) {
			if (r->begun || r->pending) {
				run_ack_write(r, bj);
				bj = NULL;
			}
			*out = r;
			r = NULL;
		}
		goto out;
	}

	if (!bj && !r->begin) {
		run_build_messages(r, NULL);
		bj = run_beginjob_new(r);
	}
	if (bj) {
		bj->owner = r;
		run_ref(r);
	}
	if (bj && (!rt->store || store_write(rt->store, run_begin_tx, bj,
					     run_begin_done) != GW_OK))
		run_begin_done(GW_EUNAVAIL, bj);
	bj = NULL;

	run_ref(r);
	if (provider_on_thread(rt->prov)) {
		/* Started on the agent thread (agent_post): the attempt
		 * now, no hand-off. Its callbacks come from a later
		 * curl_multi_perform, never from here. */
		run_attempt_job(r);
	} else if (provider_post(rt->prov, run_attempt_job, r) != 0) {
		/* Stopping: nothing will drive it; end it here. */
		run_unref(r);
		run_unlink(r);
		*err = xstrdup("gateway is stopping");
		rc = GW_EUNAVAIL;
		goto out;
	}
	log_debug("agent", "run %s started (agent %s, session %s, model %s)",
		 r->id, agent, r->session_key, r->chain[0]->ref);
	*out = r;
	r = NULL;
	rc = GW_OK;
out:
	run_request_release(rq);
	json_decref(res);
	if (bj)
		run_beginjob_free(bj);
	run_unref(r);
	free(agent);
	free(override);
	free(st);
	free(key);
	config_unref(cfg);
	return rc;
}

/* ---- start without store reads on the caller's thread ------------------------ */

struct run_startjob {
	struct agent_rt *rt;
	struct gw_config *cfg;
	struct run_request rq;		/* its strings are the copies below */
	char *agent, *key, *id, *channel, *override, *extra;
	struct run *fresh;		/* the run if it is new, prepared by
					 * the caller (run_prep) */
	run_started_fn done;
	void *arg;
	int ran;			/* the job ran (else the store dropped
					 * it: closing) */
	struct run_started res;
	char *status, *err;
	struct run *r;			/* started now: the attempt's ref */
	struct run_beginjob *bj;	/* its start, written in the job */
	struct run_ackjob *ack;		/* a waiting run's, written in the job */
};

/* b's start reads nothing back: the row as pk read it (peek) earlier in
 * the same transaction. */
static void run_known(struct store_session_begin *b,
		      const struct store_session_begin *pk)
{
	b->known = pk->known;
	b->has_row = pk->has_row;
	memcpy(b->prev_sid, pk->prev_sid, sizeof(b->prev_sid));
	b->prev_count = pk->prev_count;
}

/* Store writer: the start of run_start_async, in one job (one
 * transaction): a run with this id that went live since the caller
 * looked (an earlier job of this writer) is joined; a stored one
 * replays; else the run is set up (the session's model override read
 * here), goes live, and its start (history read in the same
 * transaction) is written here unless it waits. */
static int run_start_tx(sqlite3 *db, void *arg)
{
	struct run_startjob *j = arg;
	struct agent_rt *rt = j->rt;
	struct run_beginjob *none = NULL;
	struct store_session_begin pk = {0};
	struct run *r, *dup = NULL;
	char *st = NULL, *key = NULL, *override;
	json_t *res = NULL;
	int now, rc;

	j->ran = 1;
	j->res.origin = RUN_NEW;
	if ((r = run_joinable(rt, j->id)) != NULL) {
		j->res.origin = RUN_JOINED;
		run_unref(r);
		return GW_OK;
	}
	if (store_session_idem_get_db(db, j->id, &st, &key, &res) == GW_OK) {
		j->res.origin = RUN_REPLAY;
		j->status = xstrdup(session_status_name(st));
		free(st);
		free(key);
		json_decref(res);
		return GW_OK;
	}
	/* The row's override, and what the start then need not read back
	 * (nothing writes the row until the start's upsert below). */
	override = j->rq.new_session ? NULL
		   : store_session_peek_db(db, j->key, &pk);
	if (j->override) {
		free(override);
		override = xstrdup(j->override);
	}
	r = j->fresh;
	j->fresh = NULL;
	j->res.rc = run_targets(rt, j->cfg, r, &j->rq, override, &j->err);
	free(override);
	if (j->res.rc == GW_OK)
		j->res.rc = run_go_live(rt, j->cfg, r, &none, NULL, &now,
					&dup, &j->err);
	if (j->res.rc == GW_OK && dup) {
		j->res.origin = RUN_JOINED;
		run_unref(dup);
		run_unref(r);
		return GW_OK;
	}
	if (j->res.rc == GW_OK && !now && (r->begun || r->pending)) {
		/* Acknowledged once stored: in this transaction. */
		j->ack = run_ackjob_new(r, NULL);
		if (r->begun) {
			if (!json_object_get(r->req, "messages"))
				run_build_messages_of(r, db, pk.known &&
						      !pk.has_row);
			j->ack->bj = run_beginjob_new(r);
			run_known(&j->ack->bj->b, &pk);
		}
		run_unref(r);
		return run_ack_tx(db, j->ack);
	}
	if (j->res.rc != GW_OK || !now) {
		run_unref(r);
		return GW_OK;
	}
	/* A session without a row has no history to read. */
	run_build_messages_of(r, db, pk.known && !pk.has_row);
	j->bj = run_beginjob_new(r);
	run_known(&j->bj->b, &pk);
	j->bj->owner = r;
	run_ref(r);
	j->r = r;
	rc = store_session_begin_tx(db, &j->bj->b, j->bj->events);
	/* Before the end's job runs (queued after this one). */
	if (rc != GW_OK)
		atomic_store(&r->begin_failed, 1);
	else
		run_begin_kept(r, &j->bj->b);
	return rc;
}

static void run_startjob_free(struct run_startjob *j)
{
	run_unref(j->fresh);
	run_request_release(&j->rq);
	config_unref(j->cfg);
	free(j->agent);
	free(j->key);
	free(j->id);
	free(j->channel);
	free(j->override);
	free(j->extra);
	free(j->status);
	free(j->err);
	free(j);
}

/* After the commit (store writer): the start's events, the attempt,
 * then the caller's answer. */
static void run_start_done(int rc, void *arg)
{
	struct run_startjob *j = arg;
	struct agent_rt *rt;
	struct run *r = j->r;

	if (!j->ran) {
		j->res.rc = GW_EUNAVAIL;
		j->err = xstrdup("gateway is stopping");
	}
	if (j->bj)
		run_begin_done(rc, j->bj);
	if (j->ack)
		run_ack_done(rc, j->ack);
	if (r) {
		log_debug("agent", "run %s started (agent %s, session %s, "
			  "model %s)", r->id, j->agent, r->session_key,
			  r->chain[0]->ref);
		/* The job's reference goes to the attempt. */
		if (provider_post(r->rt->prov, run_attempt_job, r) != 0) {
			run_finish(r, RUN_ABORTED, "gateway is stopping", 503);
			run_unref(r);
			j->res.rc = GW_EUNAVAIL;
			free(j->err);
			j->err = xstrdup("gateway is stopping");
		}
	}
	j->res.run_id = j->id;
	j->res.status = j->status;
	j->res.err = j->err;
	j->done(j->arg, &j->res);
	rt = j->rt;
	run_startjob_free(j);
	/* The last touch of the runtime (agent_rt_free waits for it). */
	atomic_fetch_sub(&rt->starting, 1);
}

static char *run_dup(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

void run_start_async(struct agent_rt *rt, struct run_request *rq,
		     run_started_fn done, void *arg)
{
	struct run_startjob *j = xcalloc(1, sizeof(*j));
	char idbuf[37];
	struct run *r;

	j->rt = rt;
	j->cfg = config_current();
	j->done = done;
	j->arg = arg;
	j->rq = *rq;
	memset(rq, 0, sizeof(*rq));	/* its JSON is the job's now */
	j->rq.origin = RUN_NEW;
	j->res.rc = GW_EINVAL;
	if (!j->rq.session_key || !*j->rq.session_key) {
		j->err = xstrdup("session key required");
		goto now;
	}
	j->agent = agent_canon_id(rt, j->cfg, j->rq.agent_id);
	if (!j->agent) {
		j->err = xasprintf("Unknown agent '%s'.", j->rq.agent_id);
		goto now;
	}
	if (!j->rq.run_id || !*j->rq.run_id) {
		store_uuid7(idbuf);
		j->rq.run_id = idbuf;
	}
	j->key = xstrdup(j->rq.session_key);
	j->id = xstrdup(j->rq.run_id);
	j->channel = run_dup(j->rq.channel);
	j->override = run_dup(j->rq.model_override);
	j->extra = run_dup(j->rq.extra_system);
	j->rq.agent_id = j->agent;
	j->rq.session_key = j->key;
	j->rq.run_id = j->id;
	j->rq.channel = j->channel;
	j->rq.model_override = j->override;
	j->rq.extra_system = j->extra;
	/* The same key joins its live run right here (no store needed). */
	if ((r = run_joinable(rt, j->id)) != NULL) {
		run_unref(r);
		j->res.rc = GW_OK;
		j->res.origin = RUN_JOINED;
		goto now;
	}
	/* What does not need the store is built here. */
	j->fresh = run_alloc(rt, j->id, j->key, j->agent);
	j->fresh->channel = run_dup(j->channel);
	run_prep(j->fresh, &j->rq);
	j->res.rc = GW_OK;
	atomic_fetch_add(&rt->starting, 1);
	if (rt->store &&
	    store_write(rt->store, run_start_tx, j, run_start_done) == GW_OK)
		return;
	atomic_fetch_sub(&rt->starting, 1);
	j->res.rc = GW_EUNAVAIL;
	j->err = xstrdup("gateway is stopping");
now:
	j->res.run_id = j->id;
	j->res.err = j->err;
	done(arg, &j->res);
	run_startjob_free(j);
}

/* ---- abort ------------------------------------------------------------------ */

static void run_abort_job(void *arg)
{
	struct run *r = arg;
	int queued, waiting;

	pthread_mutex_lock(&r->rt->mu);
	if (r->acking) {
		/* Its acknowledgement is being written: aborted once it is
		 * (run_ack_settled), so that its end follows it. */
		r->ack_abort = 1;
		pthread_mutex_unlock(&r->rt->mu);
		run_unref(r);
		return;
	}
	queued = r->queued;
	r->queued = 0;
	waiting = r->lane_wait;
	if (waiting)
		run_lane_remove(r->rt, r);
	pthread_mutex_unlock(&r->rt->mu);
	if ((queued || waiting) && !r->ended) {
		/* Still waiting for its turn or a lane slot: it never
		 * reaches upstream. A run whose start was written with its
		 * acknowledgement ends as an aborted started run; else its
		 * start is not written (its run_pending row goes). */
		r->never_started = !r->begun;
		if (r->begin)
			run_beginjob_free(r->begin);
		r->begin = NULL;
		run_finish(r, RUN_ABORTED, "run aborted", 499);
	} else if (!r->ended) {
		r->abort_req = 1;
		if (r->http) {
			provider_http_cancel(r->http);
			r->http = NULL;
			run_finish(r, RUN_ABORTED, "run aborted", 499);
		}
		/* Otherwise run_attempt sees abort_req and ends it. */
	}
	run_unref(r);
}

void run_abort(struct run *r)
{
	if (!r || r->is_replay)
		return;
	run_ref(r);
	if (provider_post(r->rt->prov, run_abort_job, r) != 0)
		run_unref(r);
}

json_t *run_ids_of_session(struct agent_rt *rt, const char *session_key)
{
	json_t *a = json_array();
	struct runidx_node *n;

	/* Newest first. */
	pthread_mutex_lock(&rt->mu);
	for (n = runidx_last(&rt->runidx, session_key); n; n = n->s_prev)
		json_array_append_new(a, json_string(n->id));
	pthread_mutex_unlock(&rt->mu);
	return a;
}

int run_abort_session(struct agent_rt *rt, const char *session_key)
{
	struct runidx_node *x;
	struct run *r, **v = NULL;
	size_t n = 0, i;

	/* Newest first. */
	pthread_mutex_lock(&rt->mu);
	for (x = runidx_last(&rt->runidx, session_key); x; x = x->s_prev) {
		r = RUN_OF(x);
		run_ref(r);
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = r;
	}
	pthread_mutex_unlock(&rt->mu);
	for (i = 0; i < n; i++) {
		run_abort(v[i]);
		run_unref(v[i]);
	}
	free(v);
	return (int)n;
}

/* How often run_abort_all looks whether runs are still ending. */
#define RUN_ABORT_POLL_MS 100

void run_abort_all(struct agent_rt *rt, int wait_ms)
{
	struct run *r, **v = NULL;
	struct timespec ts;
	int64_t until, now;
	long long ended;
	size_t n = 0, i;
	int last;

	pthread_mutex_lock(&rt->mu);
	rt->stopping = 1;
	for (r = rt->runs; r; r = r->next) {
		run_ref(r);
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = r;
	}
	pthread_mutex_unlock(&rt->mu);
	if (n)
		log_info("agent", "stopping: %zu run(s) in flight aborted", n);
	for (i = 0; i < n; i++) {
		run_abort(v[i]);
		run_unref(v[i]);
	}
	free(v);
	/* Aborted runs end on the agent thread, then commit and leave the
	 * list through the store writer; a backlog of thousands takes a
	 * while. The bound is on progress: wait_ms in which no run reached
	 * either step. */
	pthread_mutex_lock(&rt->mu);
	last = rt->nruns;
	ended = atomic_load(&rt->nended);
	until = util_mono_ms() + wait_ms;
	while (rt->nruns > 0) {
		now = util_mono_ms();
		if (rt->nruns < last || atomic_load(&rt->nended) != ended) {
			last = rt->nruns;
			ended = atomic_load(&rt->nended);
			until = now + wait_ms;
		}
		if (now >= until)
			break;
		util_deadline(&ts, (int)(until - now < RUN_ABORT_POLL_MS
						 ? until - now
						 : RUN_ABORT_POLL_MS));
		pthread_cond_timedwait(&rt->idle, &rt->mu, &ts);
	}
	if (rt->nruns)
		log_warn("agent", "%d run(s) still ending at shutdown",
			 rt->nruns);
	pthread_mutex_unlock(&rt->mu);
}

int run_live_count(struct agent_rt *rt)
{
	int n;

	pthread_mutex_lock(&rt->mu);
	n = rt->nruns;
	pthread_mutex_unlock(&rt->mu);
	return n;
}

/* ---- agent.wait ------------------------------------------------------------ */

struct run_waiter {
	struct agent_rt *rt;
	char *id;
	struct run *r;			/* attached run, or NULL */
	struct run_sink sink;
	struct provider_timer *timer;
	run_wait_fn fn;
	void *arg;
	json_t *ready;			/* answer known before setup */
	int answered, setup;
	int64_t timeout_ms;
};

static void run_waiter_free(struct run_waiter *w)
{
	run_unref(w->r);
	json_decref(w->ready);
	free(w->id);
	free(w);
}

static json_t *run_wait_payload(const struct run_result *res)
{
	json_t *o = json_pack("{s:s,s:s,s:I,s:I}", "runId", res->run_id,
			      "status", res->status == RUN_OK ? "ok" :
			      res->status == RUN_TIMEOUT ? "timeout" : "error",
			      "startedAt", (json_int_t)res->started_at,
			      "endedAt", (json_int_t)res->ended_at);

	if (res->status != RUN_OK && res->error)
		json_object_set_new(o, "error", json_string(res->error));
	return o;
}

/* Agent thread: the run ended. */
static void run_wait_end(void *arg, const struct run_result *res)
{
	struct run_waiter *w = arg;

	if (w->answered)
		return;
	w->answered = 1;
	w->fn(w->arg, run_wait_payload(res));
	if (w->setup) {
		if (w->timer)
			provider_timer_cancel(w->rt->prov, w->timer);
		run_waiter_free(w);
	}
}

static void run_wait_timeout(void *arg)
{
	struct run_waiter *w = arg;

	w->timer = NULL;
	if (w->r)
		run_detach(w->r, &w->sink);
	if (!w->answered) {
		w->answered = 1;
		w->fn(w->arg, json_pack("{s:s,s:s}", "runId", w->id, "status",
					"timeout"));
	}
	run_waiter_free(w);
}

static void run_wait_setup(void *arg)
{
	struct run_waiter *w = arg;

	w->setup = 1;
	if (w->ready && !w->answered) {
		w->answered = 1;
		w->fn(w->arg, w->ready);
		w->ready = NULL;
	}
	if (w->answered) {
		run_waiter_free(w);
		return;
	}
	w->timer = provider_timer_add(w->rt->prov, w->timeout_ms,
				      run_wait_timeout, w);
}

int run_wait(struct agent_rt *rt, const char *id, int64_t timeout_ms,
	     run_wait_fn fn, void *arg)
{
	struct run_waiter *w = xcalloc(1, sizeof(*w));
	json_t *st = NULL;

	w->rt = rt;
	w->id = xstrdup(id);
	w->fn = fn;
	w->arg = arg;
	w->timeout_ms = timeout_ms;
	w->sink.on_end = run_wait_end;
	w->sink.arg = w;
	w->r = run_find(rt, id);
	if (w->r && run_attach(w->r, &w->sink) != GW_OK) {
		run_unref(w->r);
		w->r = NULL;
	}
	if (!w->r && session_run_status(rt, id, &st) == GW_OK) {
		if (strcmp(json_string_value(json_object_get(st, "status")),
			   "running") != 0)
			w->ready = st;
		else
			json_decref(st);
	}
	if (provider_post(rt->prov, run_wait_setup, w) != 0) {
		if (w->r)
			run_detach(w->r, &w->sink);
		run_waiter_free(w);
		return GW_EUNAVAIL;
	}
	return GW_OK;
}

/* ---- wake --------------------------------------------------------------- */

#define RUN_EVENTS_PER_SESSION 20
#define RUN_EVENTS_SESSIONS 1024
#define RUN_EVENT_TEXT_MAX (64 * 1024)

int agent_wake(struct agent_rt *rt, const char *agent_id,
	       const char *session_key, const char *text, const char *mode,
	       char **run_id_out, char **err)
{
	struct run_request rq = {0};
	struct run *r = NULL;
	char *key = NULL, *agent = NULL, *line = NULL;
	json_t *a;
	int rc = GW_EINVAL;

	*err = NULL;
	if (run_id_out)
		*run_id_out = NULL;
	if (!mode || (strcmp(mode, "now") && strcmp(mode, "next-heartbeat"))) {
		*err = xstrdup("mode must be \"now\" or \"next-heartbeat\"");
		return GW_EINVAL;
	}
	if (!text || !*text) {
		*err = xstrdup("text required");
		return GW_EINVAL;
	}
	if (strlen(text) > RUN_EVENT_TEXT_MAX) {
		*err = xstrdup("text too long");
		return GW_EINVAL;
	}
	if (agent_id && *agent_id && !agent_exists(rt, agent_id)) {
		*err = xasprintf("Unknown agent '%s'.", agent_id);
		return GW_EINVAL;
	}
	if (session_key && *session_key) {
		rc = agent_session_key_canon(rt, session_key, &key, err);
		if (rc != GW_OK)
			return rc;
	} else {
		key = agent_session_key_main(agent_id && *agent_id
					     ? agent_id : agent_default_id(rt));
	}
	if (strcmp(mode, "now") != 0) {
		/* No heartbeat runner: the event joins the next turn. */
		pthread_mutex_lock(&rt->mu);
		if (!rt->sysevents)
			rt->sysevents = json_object();
		a = json_object_get(rt->sysevents, key);
		if (!a && json_object_size(rt->sysevents) >=
			  RUN_EVENTS_SESSIONS) {
			pthread_mutex_unlock(&rt->mu);
			*err = xstrdup("too many sessions with pending system "
				       "events");
			rc = GW_EINVAL;
			goto out;
		}
		if (!a) {
			a = json_array();
			json_object_set_new(rt->sysevents, key, a);
		}
		if (json_array_size(a) >= RUN_EVENTS_PER_SESSION)
			json_array_remove(a, 0);
		json_array_append_new(a, json_string(text));
		pthread_mutex_unlock(&rt->mu);
		log_info("agent", "wake (next-heartbeat) queued for %s", key);
		rc = GW_OK;
		goto out;
	}
	agent = agent_session_key_agent(key);
	line = xasprintf("System event: %s", text);
	rq.agent_id = agent;
	rq.session_key = key;
	rq.messages = json_pack("[{s:s,s:s}]", "role", "user", "content",
				line);
	rq.use_history = 1;
	rq.channel = "wake";
	rc = run_start(rt, &rq, NULL, &r, err);
	if (rc == GW_OK && run_id_out)
		*run_id_out = xstrdup(run_id(r));
	run_unref(r);
out:
	free(line);
	free(agent);
	free(key);
	return rc;
}

void run_counts(struct agent_rt *rt, int *live, int *queued)
{
	struct run *r;

	*live = *queued = 0;
	pthread_mutex_lock(&rt->mu);
	for (r = rt->runs; r; r = r->next) {
		if (r->queued || r->lane_wait)
			(*queued)++;
		else
			(*live)++;
	}
	pthread_mutex_unlock(&rt->mu);
}
