/* Chat methods (chat.send, chat.history, chat.abort, chat.inject) and the
 * fan-out of every run to WebSocket clients: `chat` and `agent` events
 * (each with its own per-run seq), and the session events to their
 * subscribers. `agent` assistant events go out per upstream chunk; `chat`
 * deltas are throttled as upstream does: at most one per
 * RPC_CHAT_DELTA_MS per run, the text in between coalesced into the next
 * one (deltaText = everything since the previous delta, so their
 * concatenation is the whole text), and what is pending flushed before a
 * tool event and before the terminal final/aborted/error event. No timer:
 * a pending tail waits for the next chunk or the run's end. `chat` deltas
 * carry deltaText only, the terminal event carries the whole message.
 * The events of one callback (an assistant event and its chat delta; the
 * flushed delta, the terminal chat event and the lifecycle end) are
 * posted to the lws thread together: every client gets them in one
 * write. On the agent thread, all that one iteration of its loop
 * produced (every run's callbacks) is posted once, by the observer's
 * flush before the loop waits: one lws wake-up per iteration. Their payloads have a fixed shape: they are written as text
 * straight into the shared frame (the store's JSON writer escapes the
 * strings), byte for byte what the json_t objects they were built as
 * before serialized to (tests/unit/test-rpc.c compares them with those
 * json_t shapes); no json_t per event. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "net/ws.h"
#include "rpc/rpc-int.h"
#include "store/store-sessions.h"

#define CHAT_MESSAGE_MAX (1024 * 1024)
#define CHAT_HISTORY_DEFAULT 200
#define CHAT_HISTORY_MAX 1000
/* Minimum spacing of two `chat` deltas of one run (upstream: 150 ms). */
#define RPC_CHAT_DELTA_MS 150

/* ---- run fan-out (agent thread) -------------------------------------------- */

struct rpc_chat_fan {
	struct rpc_server *srv;
	/* The run id, session key and agent id as JSON strings (quoted,
	 * escaped once for every event), and their lengths. */
	char *run_id, *key, *agent_id;
	size_t run_id_len, key_len, agent_id_len;
	int64_t chat_seq, agent_seq;
	/* Text not yet sent in a `chat` delta, and when the last one went
	 * (monotonic ms; 0: none yet). Agent thread only. */
	struct util_buf pending;
	int64_t delta_sent_at;
	struct run_sink sink;
	/* Whether anyone listens (read once per callback). */
	int live;
	/* Tests (rpc_chat_fan_script): both clocks stand at this time, and
	 * the events are recorded here instead of posted. 0 / NULL: off. */
	int64_t fixed_ms;
	json_t *rec;
};

#define CHAT_LIT(b, s) store_json_raw(b, s, sizeof(s) - 1)

static void rpc_chat_fan_free(struct rpc_chat_fan *f)
{
	free(f->run_id);
	free(f->key);
	free(f->agent_id);
	free(f->pending.p);
	free(f);
}

static int64_t rpc_chat_now(const struct rpc_chat_fan *f)
{
	return f->fixed_ms ? f->fixed_ms : util_now_ms();
}

static int64_t rpc_chat_mono(const struct rpc_chat_fan *f)
{
	return f->fixed_ms ? f->fixed_ms : util_mono_ms();
}

/* The events the agent thread produced during one iteration of its
 * loop, all runs together, posted to the lws thread once by the
 * observer's flush (rpc_chat_flush_iter) before the loop waits: one
 * wake-up and one write per connection for the whole iteration, none
 * delayed past it. Agent thread only; what is left when the thread
 * exits (its last iteration stops before the flush) is posted then. */
static __thread struct rpc_events *chat_iter;
static pthread_key_t chat_iter_key;
static pthread_once_t chat_iter_once = PTHREAD_ONCE_INIT;

static void rpc_chat_iter_exit(void *arg)
{
	struct rpc_events *q = arg;

	rpc_events_post(q);
	free(q);
}

static void rpc_chat_iter_post(void *arg);

static void rpc_chat_iter_key(void)
{
	if (pthread_key_create(&chat_iter_key, rpc_chat_iter_exit) != 0)
		abort();
}

/* Where a callback queues its events: the iteration's queue on the
 * agent thread, else local (posted by rpc_chat_post). */
static struct rpc_events *rpc_chat_queue(struct rpc_chat_fan *f,
					 struct rpc_events *local)
{
	struct rpc_events *q = chat_iter;

	local->srv = f->srv;
	if (f->rec || !agent_on_thread(f->srv->d.agents))
		return local;
	if (!q) {
		pthread_once(&chat_iter_once, rpc_chat_iter_key);
		q = xcalloc(1, sizeof(*q));
		pthread_setspecific(chat_iter_key, q);
		chat_iter = q;
	}
	if (q->srv != f->srv) {
		rpc_events_post(q);	/* another server's (tests) */
		q->srv = f->srv;
	}
	/* Whatever else this thread posts goes out after these. */
	ws_post_defer(rpc_chat_iter_post, q);
	return q;
}

static void rpc_chat_iter_post(void *arg)
{
	rpc_events_post(arg);
}

static void rpc_chat_flush_iter(void *arg)
{
	(void)arg;
	ws_post_defer(NULL, NULL);
	if (chat_iter)
		rpc_events_post(chat_iter);
}

/* Hand q's events over: local ones now, the iteration's at its end. */
static void rpc_chat_post(struct rpc_chat_fan *f, struct rpc_events *q)
{
	json_t *ev;

	if (q == chat_iter)
		return;
	if (!f->rec) {
		rpc_events_post(q);
		return;
	}
	ev = rpc_events_take(q);
	json_array_extend(f->rec, ev);
	json_decref(ev);
}

/* A string value. jansson refuses a string that is not UTF-8 (the whole
 * payload then went out as null, or without that member): here each of
 * its non-ASCII bytes becomes U+FFFD, so the frame stays valid UTF-8. */
static void rpc_chat_str_val(struct store_json_buf *b, const char *s,
			     size_t n)
{
	struct util_buf u = {0};
	json_t *t;
	size_t i;

	for (i = 0; i < n && !(s[i] & 0x80); i++)
		;
	if (i == n || (t = json_stringn(s + i, n - i)) != NULL) {
		if (i < n)
			json_decref(t);
		store_json_str(b, s, n);
		return;
	}
	for (i = 0; i < n; i++) {
		if (s[i] & 0x80)
			util_buf_put(&u, "\xef\xbf\xbd", 3);
		else
			util_buf_put(&u, s + i, 1);
	}
	store_json_str(b, u.p, u.len);
	free(u.p);
}

static void rpc_chat_str0(struct store_json_buf *b, const char *s)
{
	rpc_chat_str_val(b, s, strlen(s));
}

/* `{"runId":R,"seq":N,"stream":S,"ts":T,"data":{` of an `agent` event
 * (frame head opened in b); the caller writes data's members, then
 * rpc_chat_agent_add. Returns where the payload starts in b. */
static size_t rpc_chat_agent_open(struct rpc_chat_fan *f,
				  struct store_json_buf *b, const char *stream)
{
	size_t mark;

	rpc_event_open(b, "agent");
	mark = b->len;
	CHAT_LIT(b, "{\"runId\":");
	store_json_raw(b, f->run_id, f->run_id_len);
	CHAT_LIT(b, ",\"seq\":");
	store_json_int(b, ++f->agent_seq);
	CHAT_LIT(b, ",\"stream\":");
	rpc_chat_str0(b, stream);
	CHAT_LIT(b, ",\"ts\":");
	store_json_int(b, rpc_chat_now(f));
	CHAT_LIT(b, ",\"data\":{");
	return mark;
}

static void rpc_chat_agent_add(struct rpc_chat_fan *f, struct rpc_events *q,
			       struct store_json_buf *b)
{
	CHAT_LIT(b, ",\"sessionKey\":");
	store_json_raw(b, f->key, f->key_len);
	CHAT_LIT(b, "}}");
	rpc_events_add_text(q, b, 0, SCOPE_READ);
}

/* `{"runId":R,"sessionKey":K,"agentId":A,"seq":N,"state":S` of a `chat`
 * event (frame head opened in b). */
static void rpc_chat_base(struct rpc_chat_fan *f, struct store_json_buf *b,
			  const char *state)
{
	rpc_event_open(b, "chat");
	CHAT_LIT(b, "{\"runId\":");
	store_json_raw(b, f->run_id, f->run_id_len);
	CHAT_LIT(b, ",\"sessionKey\":");
	store_json_raw(b, f->key, f->key_len);
	CHAT_LIT(b, ",\"agentId\":");
	store_json_raw(b, f->agent_id, f->agent_id_len);
	CHAT_LIT(b, ",\"seq\":");
	store_json_int(b, f->chat_seq);
	CHAT_LIT(b, ",\"state\":");
	rpc_chat_str0(b, state);
}

/* Send the pending text as one `chat` delta (nothing when none). */
static void rpc_chat_flush(struct rpc_chat_fan *f, struct rpc_events *q,
			   int64_t now)
{
	struct store_json_buf b = {0};

	if (!f->pending.len)
		return;
	f->chat_seq++;
	if (f->live) {
		rpc_chat_base(f, &b, "delta");
		CHAT_LIT(&b, ",\"deltaText\":");
		rpc_chat_str_val(&b, f->pending.p, f->pending.len);
		CHAT_LIT(&b, "}");
		rpc_events_add_text(q, &b, WS_SEND_DROP_IF_SLOW, SCOPE_READ);
	}
	f->pending.len = 0;
	f->delta_sent_at = now;
}

static void rpc_chat_on_delta(void *arg, const char *text, size_t len)
{
	struct rpc_chat_fan *f = arg;
	struct rpc_events lq = {0}, *q = rpc_chat_queue(f, &lq);
	struct store_json_buf b = {0};
	int64_t now;

	if (!(f->live = f->rec || rpc_has_listeners(f->srv))) {
		/* Nobody connected: only the numbering moves on. */
		f->agent_seq++;
		f->pending.len = 0;
		return;
	}
	rpc_chat_agent_open(f, &b, "assistant");
	CHAT_LIT(&b, "\"delta\":");
	rpc_chat_str_val(&b, text, len);
	rpc_chat_agent_add(f, q, &b);
	util_buf_put(&f->pending, text, len);
	now = rpc_chat_mono(f);
	if (!f->delta_sent_at || now - f->delta_sent_at >= RPC_CHAT_DELTA_MS)
		rpc_chat_flush(f, q, now);
	rpc_chat_post(f, q);
}

static void rpc_chat_on_tool(void *arg, const json_t *delta)
{
	struct rpc_chat_fan *f = arg;
	struct rpc_events lq = {0}, *q = rpc_chat_queue(f, &lq);
	struct store_json_buf b = {0};
	size_t mark;

	f->live = f->rec || rpc_has_listeners(f->srv);
	/* The text before a tool call is shown whole above it. */
	rpc_chat_flush(f, q, rpc_chat_mono(f));
	if (!f->live) {
		f->agent_seq++;
		return;
	}
	mark = rpc_chat_agent_open(f, &b, "tool");
	CHAT_LIT(&b, "\"phase\":\"update\",\"call\":");
	if (!delta || store_json_val(&b, delta) < 0) {
		/* what jansson could not write either: a null payload */
		b.len = mark;
		CHAT_LIT(&b, "null");
		rpc_events_add_text(q, &b, 0, SCOPE_READ);
	} else {
		rpc_chat_agent_add(f, q, &b);
	}
	rpc_chat_post(f, q);
}

static const char *rpc_chat_error_kind(const struct run_result *res)
{
	if (res->status == RUN_TIMEOUT || res->http_status == 504)
		return "timeout";
	if (res->http_status == 429)
		return "rate_limit";
	return "unknown";
}

/* `,"message":{"role":"assistant","content":[...],"timestamp":N}`, the
 * content empty when the run has no text. */
static void rpc_chat_message(struct store_json_buf *b,
			     const struct run_result *res)
{
	CHAT_LIT(b, ",\"message\":{\"role\":\"assistant\",\"content\":[");
	if (res->text && *res->text) {
		CHAT_LIT(b, "{\"type\":\"text\",\"text\":");
		rpc_chat_str0(b, res->text);
		CHAT_LIT(b, "}");
	}
	CHAT_LIT(b, "],\"timestamp\":");
	store_json_int(b, res->ended_at);
	CHAT_LIT(b, "}");
}

/* The terminal `chat` event: final, aborted or error. */
static void rpc_chat_end_event(struct rpc_chat_fan *f, struct rpc_events *q,
			       const struct run_result *res)
{
	struct store_json_buf b = {0};
	const char *slash, *sep = "";
	int has_text = res->text && *res->text;

	f->chat_seq++;
	switch (res->status) {
	case RUN_OK:
		rpc_chat_base(f, &b, "final");
		rpc_chat_message(&b, res);
		CHAT_LIT(&b, ",\"usage\":{\"input\":");
		store_json_int(&b, res->input_tokens);
		CHAT_LIT(&b, ",\"output\":");
		store_json_int(&b, res->output_tokens);
		CHAT_LIT(&b, ",\"totalTokens\":");
		store_json_int(&b, res->input_tokens + res->output_tokens);
		CHAT_LIT(&b, "},\"stopReason\":");
		rpc_chat_str0(&b, res->finish_reason ? res->finish_reason
						     : "stop");
		break;
	case RUN_ABORTED:
		rpc_chat_base(f, &b, "aborted");
		if (has_text)
			rpc_chat_message(&b, res);
		CHAT_LIT(&b, ",\"stopReason\":\"aborted\"");
		break;
	default:
		rpc_chat_base(f, &b, "error");
		CHAT_LIT(&b, ",\"errorMessage\":");
		rpc_chat_str0(&b, res->error ? res->error : "run failed");
		CHAT_LIT(&b, ",\"errorKind\":");
		rpc_chat_str0(&b, rpc_chat_error_kind(res));
		CHAT_LIT(&b, ",\"errorDetail\":{");
		if (res->model && (slash = strchr(res->model, '/'))) {
			CHAT_LIT(&b, "\"provider\":");
			rpc_chat_str_val(&b, res->model,
					 (size_t)(slash - res->model));
			CHAT_LIT(&b, ",\"model\":");
			rpc_chat_str0(&b, slash + 1);
			sep = ",";
		}
		if (res->http_status >= 100 && res->http_status <= 599) {
			store_json_raw(&b, sep, strlen(sep));
			CHAT_LIT(&b, "\"httpStatus\":");
			store_json_int(&b, res->http_status);
		}
		CHAT_LIT(&b, "}");
		if (has_text)
			rpc_chat_message(&b, res);
		break;
	}
	CHAT_LIT(&b, "}");
	rpc_events_add_text(q, &b, 0, SCOPE_READ);
}

static void rpc_chat_on_end(void *arg, const struct run_result *res)
{
	struct rpc_chat_fan *f = arg;
	struct rpc_events lq = {0}, *q = rpc_chat_queue(f, &lq);
	struct store_json_buf b = {0};

	if (!(f->live = f->rec || rpc_has_listeners(f->srv)))
		goto out;
	/* Clients see the whole text in deltas before the terminal event. */
	rpc_chat_flush(f, q, rpc_chat_mono(f));
	rpc_chat_end_event(f, q, res);
	rpc_chat_agent_open(f, &b, "lifecycle");
	CHAT_LIT(&b, "\"phase\":");
	rpc_chat_str0(&b, res->status == RUN_OK ? "end" : "error");
	CHAT_LIT(&b, ",\"startedAt\":");
	store_json_int(&b, res->started_at);
	CHAT_LIT(&b, ",\"endedAt\":");
	store_json_int(&b, res->ended_at);
	if (res->status != RUN_OK) {
		CHAT_LIT(&b, ",\"error\":");
		rpc_chat_str0(&b, res->error ? res->error : "run failed");
		if (res->status == RUN_ABORTED)
			CHAT_LIT(&b, ",\"aborted\":true");
	}
	rpc_chat_agent_add(f, q, &b);
	rpc_chat_post(f, q);
out:
	rpc_chat_fan_free(f);
}

/* s as a JSON string (quoted, escaped), *len its length. */
static char *rpc_chat_js(const char *s, size_t *len)
{
	struct store_json_buf b = {0};

	rpc_chat_str0(&b, s);
	return store_json_done(&b, len);
}

static struct rpc_chat_fan *rpc_chat_fan_new(struct rpc_server *s,
					     const char *run_id,
					     const char *key,
					     const char *agent_id)
{
	struct rpc_chat_fan *f = xcalloc(1, sizeof(*f));

	f->srv = s;
	f->run_id = rpc_chat_js(run_id, &f->run_id_len);
	f->key = rpc_chat_js(key, &f->key_len);
	f->agent_id = rpc_chat_js(agent_id, &f->agent_id_len);
	f->sink.on_delta = rpc_chat_on_delta;
	f->sink.on_tool_call = rpc_chat_on_tool;
	f->sink.on_end = rpc_chat_on_end;
	f->sink.arg = f;
	return f;
}

/* The lifecycle start event. */
static void rpc_chat_start(struct rpc_chat_fan *f, int64_t started_at)
{
	struct rpc_events lq = {0}, *q = rpc_chat_queue(f, &lq);
	struct store_json_buf b = {0};

	if (!f->rec && !rpc_has_listeners(f->srv)) {
		f->agent_seq++;
		return;
	}
	rpc_chat_agent_open(f, &b, "lifecycle");
	CHAT_LIT(&b, "\"phase\":\"start\",\"startedAt\":");
	store_json_int(&b, started_at);
	rpc_chat_agent_add(f, q, &b);
	rpc_chat_post(f, q);
}

/* A run started (any face): fan its stream out as chat/agent events. */
static void rpc_chat_on_run(void *arg, struct run *r)
{
	struct rpc_chat_fan *f = rpc_chat_fan_new(arg, run_id(r),
						  run_session_key(r),
						  run_agent_id(r));

	rpc_chat_start(f, run_started_at(r));
	if (run_attach(r, &f->sink) != GW_OK)
		rpc_chat_fan_free(f);
}

json_t *rpc_chat_fan_script(struct rpc_server *s, const char *run_id,
			    const char *key, const char *agent_id,
			    const char *const *deltas, size_t n,
			    const json_t *tool, const struct run_result *res,
			    int64_t now_ms)
{
	struct rpc_chat_fan *f = rpc_chat_fan_new(s, run_id, key, agent_id);
	json_t *rec = json_array();
	size_t i;

	f->fixed_ms = now_ms;
	f->rec = rec;
	rpc_chat_start(f, res->started_at);
	for (i = 0; i < n; i++)
		rpc_chat_on_delta(f, deltas[i], strlen(deltas[i]));
	if (tool)
		rpc_chat_on_tool(f, tool);
	rpc_chat_on_end(f, res);
	return rec;
}

/* ---- session events --------------------------------------------------------- */

static int rpc_chat_pred_changed(const struct rpc_conn *c, void *arg)
{
	(void)arg;
	return c->sessions_sub;
}

static int rpc_chat_pred_message(const struct rpc_conn *c, void *arg)
{
	return c->session_keys && json_object_get(c->session_keys, arg);
}

static void rpc_chat_on_session(void *arg, const char *event,
				const char *key, json_t *payload)
{
	struct rpc_server *s = arg;

	if (strcmp(event, "session.message") == 0)
		rpc_send_where(s, event, payload, 0, SCOPE_READ,
			       rpc_chat_pred_message, xstrdup(key), free);
	else
		rpc_send_where(s, event, payload, 0, SCOPE_READ,
			       rpc_chat_pred_changed, NULL, NULL);
}

static int rpc_chat_listening(void *arg)
{
	return rpc_has_listeners(arg);
}

static int rpc_chat_subscribed(void *arg)
{
	struct rpc_server *s = arg;

	return atomic_load(&s->session_subs) > 0;
}

void rpc_chat_observe(struct rpc_server *s)
{
	struct agent_observer o = {
		.on_run = rpc_chat_on_run,
		.on_session = rpc_chat_on_session,
		.listening = rpc_chat_listening,
		.subscribed = rpc_chat_subscribed,
		.flush = rpc_chat_flush_iter,
		.arg = s,
	};

	agent_rt_set_observer(s->d.agents, &o);
}

/* ---- methods ------------------------------------------------------------------ */

/* A required non-empty string param, or NULL with an error set. */
static const char *rpc_chat_str(struct rpc_call *call, const char *name,
				size_t max)
{
	const json_t *v = json_object_get(call->params, name);

	if (!v) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: must have required property "
			       "'%s'", name);
		return NULL;
	}
	if (!json_is_string(v) || !json_string_length(v) ||
	    json_string_length(v) > max) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /%s: must be a string of "
			       "1..%zu characters", name, max);
		return NULL;
	}
	return json_string_value(v);
}

static char *rpc_chat_key(struct rpc_call *call)
{
	const char *k = rpc_chat_str(call, "sessionKey", 512);

	return k ? rpc_sessions_canon(call, k) : NULL;
}

static int rpc_chat_abort_key(struct rpc_call *call, const char *key,
			      const char *only)
{
	struct agent_rt *rt = call->srv->d.agents;
	json_t *ids = run_ids_of_session(rt, key), *out = json_array(), *v;
	struct run *r;
	size_t i;

	json_array_foreach(ids, i, v) {
		if (only && strcmp(only, json_string_value(v)) != 0)
			continue;
		r = run_find(rt, json_string_value(v));
		if (!r)
			continue;
		run_abort(r);
		run_unref(r);
		json_array_append(out, v);
	}
	json_decref(ids);
	if (json_array_size(out))
		log_info("rpc", "chat.abort %s: %zu run(s)", key,
			 json_array_size(out));
	call->payload = json_pack("{s:b,s:b,s:o}", "ok", 1, "aborted",
				  json_array_size(out) > 0, "runIds", out);
	return GW_OK;
}

/* The start's answer (lws thread for a join or an error found at once,
 * else the store writer after the start's commit). */
/* What json_pack("{s:s,s:s}", "runId", ..., "status", ...) gave (NULL
 * when a string is not UTF-8), without parsing a format per chat.send;
 * and the request's one user message likewise ("[{s:s,s:s}]"). */
static json_t *rpc_chat_ack(const char *run_id, const char *status)
{
	json_t *o, *id = json_string(run_id), *stv = json_string(status);

	if (!id || !stv) {
		json_decref(id);
		json_decref(stv);
		return NULL;
	}
	o = json_object();
	json_object_set_new_nocheck(o, "runId", id);
	json_object_set_new_nocheck(o, "status", stv);
	return o;
}

static json_t *rpc_chat_user_msgs(const char *msg)
{
	json_t *a, *m, *c = json_string(msg);

	if (!c)
		return NULL;
	m = json_object();
	json_object_set_new_nocheck(m, "role", json_string_nocheck("user"));
	json_object_set_new_nocheck(m, "content", c);
	a = json_array();
	json_array_append_new(a, m);
	return a;
}

static void rpc_chat_started(void *arg, const struct run_started *st)
{
	struct rpc_call *call = arg;

	if (st->rc != GW_OK)
		rpc_call_error(call, st->rc == GW_EUNAVAIL ? "UNAVAILABLE"
							   : "INVALID_REQUEST",
			       NULL, "%s", st->err ? st->err
						  : gw_err_str(st->rc));
	else
		call->payload = rpc_chat_ack(st->run_id,
			st->origin == RUN_NEW ? "started"
				: st->origin == RUN_JOINED ? "in_flight"
				: st->status ? st->status : "ok");
	rpc_call_complete(call);
}

/* On the lws thread: validation, /stop and the join of a live run here;
 * the idempotency row, the session's model override, the history and
 * the start's write in one store job, answered after its commit
 * (run_start_async). */
static int rpc_chat_send(struct rpc_call *call)
{
	struct agent_rt *rt = call->srv->d.agents;
	struct run_request rq = {0};
	const char *msg, *idem, *ch;
	const json_t *v;
	char *key = NULL, *agent = NULL;
	int rc = GW_EINVAL;

	if (rpc_call_need_agents(call) != 0 || !(key = rpc_chat_key(call)))
		goto out;
	if (!(idem = rpc_chat_str(call, "idempotencyKey", 256)))
		goto out;
	v = json_object_get(call->params, "message");
	if (!json_is_string(v)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: must have required property "
			       "'message'");
		goto out;
	}
	msg = json_string_value(v);
	if (json_string_length(v) > CHAT_MESSAGE_MAX) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "message too large");
		goto out;
	}
	if (strcmp(msg, "/stop") == 0) {
		rc = rpc_chat_abort_key(call, key, NULL);
		goto out;
	}
	if (!*msg) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "message must not be empty");
		goto out;
	}
	v = json_object_get(call->params, "timeoutMs");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /timeoutMs: must be "
			       "integer >= 0");
		goto out;
	}
	agent = agent_session_key_agent(key);
	ch = json_string_value(json_object_get(call->params,
					       "originatingChannel"));
	rq.agent_id = agent;
	rq.session_key = key;
	rq.run_id = idem;
	rq.messages = rpc_chat_user_msgs(msg);
	rq.use_history = 1;
	rq.channel = ch && *ch ? ch : "webchat";
	rq.timeout_ms = v ? json_integer_value(v) : 0;
	rc = rpc_call_defer(call);
	run_start_async(rt, &rq, rpc_chat_started, call);
out:
	free(key);
	free(agent);
	return rc;
}

static int rpc_chat_history(struct rpc_call *call)
{
	const json_t *v;
	int64_t limit = CHAT_HISTORY_DEFAULT, max_chars = 0;
	char *key;

	if (rpc_call_need_agents(call) != 0 || !(key = rpc_chat_key(call)))
		return GW_EINVAL;
	v = json_object_get(call->params, "limit");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > CHAT_HISTORY_MAX)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /limit: must be integer in "
			       "1..%d", CHAT_HISTORY_MAX);
		free(key);
		return GW_EINVAL;
	}
	if (v)
		limit = json_integer_value(v);
	v = json_object_get(call->params, "maxChars");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		max_chars = json_integer_value(v);
	call->payload = session_history(call->srv->d.agents, key, (int)limit,
					(int)max_chars);
	free(key);
	return GW_OK;
}

static int rpc_chat_abort(struct rpc_call *call)
{
	const json_t *v;
	char *key;
	int r;

	if (rpc_call_need_agents(call) != 0 || !(key = rpc_chat_key(call)))
		return GW_EINVAL;
	v = json_object_get(call->params, "runId");
	if (v && (!json_is_string(v) || !json_string_length(v))) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /runId: must be a "
			       "non-empty string");
		free(key);
		return GW_EINVAL;
	}
	r = rpc_chat_abort_key(call, key, json_string_value(v));
	free(key);
	return r;
}

static int rpc_chat_inject(struct rpc_call *call)
{
	const char *msg, *label;
	const json_t *v;
	char *key, *mid = NULL;
	int r;

	if (rpc_call_need_agents(call) != 0 || !(key = rpc_chat_key(call)))
		return GW_EINVAL;
	if (!(msg = rpc_chat_str(call, "message", CHAT_MESSAGE_MAX))) {
		free(key);
		return GW_EINVAL;
	}
	v = json_object_get(call->params, "label");
	if (v && (!json_is_string(v) || json_string_length(v) > 100)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /label: must NOT have more "
			       "than 100 characters");
		free(key);
		return GW_EINVAL;
	}
	label = json_string_value(v);
	r = session_inject(call->srv->d.agents, key, msg, label, &mid);
	if (r == GW_OK) {
		log_info("rpc", "chat.inject into %s", key);
		call->payload = json_pack("{s:b,s:s}", "ok", 1, "messageId",
					  mid);
	}
	free(mid);
	free(key);
	return r;
}

const struct rpc_method rpc_chat_methods[] = {
	{"chat.send", rpc_chat_send, "operator.write", 0,
	 "send a message to a session; output arrives as chat events"},
	{"chat.history", rpc_chat_history, "operator.read", RPC_F_WORKER,
	 "the transcript of a session"},
	{"chat.abort", rpc_chat_abort, "operator.write", RPC_F_WORKER,
	 "abort the running turn(s) of a session"},
	{"chat.inject", rpc_chat_inject, "operator.admin", RPC_F_WORKER,
	 "append an assistant note to a session transcript"},
};
const size_t rpc_chat_methods_count = ARRAY_SIZE(rpc_chat_methods);
