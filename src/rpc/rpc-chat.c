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
 * write. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "rpc/rpc-int.h"

#define CHAT_MESSAGE_MAX (1024 * 1024)
#define CHAT_HISTORY_DEFAULT 200
#define CHAT_HISTORY_MAX 1000
/* Minimum spacing of two `chat` deltas of one run (upstream: 150 ms). */
#define RPC_CHAT_DELTA_MS 150

/* ---- run fan-out (agent thread) -------------------------------------------- */

struct rpc_chat_fan {
	struct rpc_server *srv;
	char *run_id, *key, *agent_id;
	int64_t chat_seq, agent_seq;
	/* Text not yet sent in a `chat` delta, and when the last one went
	 * (monotonic ms; 0: none yet). Agent thread only. */
	struct util_buf pending;
	int64_t delta_sent_at;
	struct run_sink sink;
};

static void rpc_chat_fan_free(struct rpc_chat_fan *f)
{
	free(f->run_id);
	free(f->key);
	free(f->agent_id);
	free(f->pending.p);
	free(f);
}

static void rpc_chat_agent_event(struct rpc_chat_fan *f,
				 struct rpc_events *q, const char *stream,
				 json_t *data)
{
	json_object_set_new(data, "sessionKey", json_string(f->key));
	rpc_events_add(q, "agent", json_pack("{s:s,s:I,s:s,s:I,s:o}",
		"runId", f->run_id, "seq", (json_int_t)++f->agent_seq,
		"stream", stream, "ts", (json_int_t)util_now_ms(), "data",
		data), 0, SCOPE_READ, NULL, NULL, NULL);
}

static json_t *rpc_chat_base(struct rpc_chat_fan *f, const char *state)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:s}", "runId", f->run_id,
			 "sessionKey", f->key, "agentId", f->agent_id, "seq",
			 (json_int_t)++f->chat_seq, "state", state);
}

/* Send the pending text as one `chat` delta (nothing when none). */
static void rpc_chat_flush(struct rpc_chat_fan *f, struct rpc_events *q,
			   int64_t now)
{
	json_t *p;

	if (!f->pending.len)
		return;
	p = rpc_chat_base(f, "delta");
	json_object_set_new(p, "deltaText",
			    json_stringn(f->pending.p, f->pending.len));
	rpc_events_add(q, "chat", p, 0, SCOPE_READ, NULL, NULL, NULL);
	f->pending.len = 0;
	f->delta_sent_at = now;
}

static void rpc_chat_on_delta(void *arg, const char *text, size_t len)
{
	struct rpc_chat_fan *f = arg;
	struct rpc_events q = {.srv = f->srv};
	int64_t now;

	if (!rpc_has_listeners(f->srv)) {
		/* Nobody connected: only the numbering moves on. */
		f->agent_seq++;
		f->pending.len = 0;
		return;
	}
	rpc_chat_agent_event(f, &q, "assistant", json_pack("{s:s%}", "delta",
							   text, len));
	util_buf_put(&f->pending, text, len);
	now = util_mono_ms();
	if (!f->delta_sent_at || now - f->delta_sent_at >= RPC_CHAT_DELTA_MS)
		rpc_chat_flush(f, &q, now);
	rpc_events_post(&q);
}

static void rpc_chat_on_tool(void *arg, const json_t *delta)
{
	struct rpc_chat_fan *f = arg;
	struct rpc_events q = {.srv = f->srv};

	/* The text before a tool call is shown whole above it. */
	rpc_chat_flush(f, &q, util_mono_ms());
	rpc_chat_agent_event(f, &q, "tool", json_pack("{s:s,s:O}", "phase",
						      "update", "call", delta));
	rpc_events_post(&q);
}

static const char *rpc_chat_error_kind(const struct run_result *res)
{
	if (res->status == RUN_TIMEOUT || res->http_status == 504)
		return "timeout";
	if (res->http_status == 429)
		return "rate_limit";
	return "unknown";
}

static void rpc_chat_on_end(void *arg, const struct run_result *res)
{
	struct rpc_chat_fan *f = arg;
	struct rpc_events q = {.srv = f->srv};
	json_t *p, *msg = NULL, *d;
	const char *slash;

	/* Clients see the whole text in deltas before the terminal event. */
	if (rpc_has_listeners(f->srv))
		rpc_chat_flush(f, &q, util_mono_ms());
	if (res->text && *res->text)
		msg = json_pack("{s:s,s:[{s:s,s:s}],s:I}", "role", "assistant",
				"content", "type", "text", "text", res->text,
				"timestamp", (json_int_t)res->ended_at);
	switch (res->status) {
	case RUN_OK:
		p = rpc_chat_base(f, "final");
		if (!msg)
			msg = json_pack("{s:s,s:[],s:I}", "role", "assistant",
					"content", "timestamp",
					(json_int_t)res->ended_at);
		json_object_set_new(p, "message", msg);
		msg = NULL;
		json_object_set_new(p, "usage", json_pack("{s:I,s:I,s:I}",
			"input", (json_int_t)res->input_tokens, "output",
			(json_int_t)res->output_tokens, "totalTokens",
			(json_int_t)(res->input_tokens +
				     res->output_tokens)));
		json_object_set_new(p, "stopReason", json_string(
			res->finish_reason ? res->finish_reason : "stop"));
		break;
	case RUN_ABORTED:
		p = rpc_chat_base(f, "aborted");
		if (msg)
			json_object_set_new(p, "message", msg);
		msg = NULL;
		json_object_set_new(p, "stopReason", json_string("aborted"));
		break;
	default:
		p = rpc_chat_base(f, "error");
		json_object_set_new(p, "errorMessage", json_string(
			res->error ? res->error : "run failed"));
		json_object_set_new(p, "errorKind",
				    json_string(rpc_chat_error_kind(res)));
		d = json_object();
		if (res->model && (slash = strchr(res->model, '/'))) {
			json_object_set_new(d, "provider", json_stringn(
				res->model, (size_t)(slash - res->model)));
			json_object_set_new(d, "model",
					    json_string(slash + 1));
		}
		if (res->http_status >= 100 && res->http_status <= 599)
			json_object_set_new(d, "httpStatus",
					    json_integer(res->http_status));
		json_object_set_new(p, "errorDetail", d);
		if (msg)
			json_object_set_new(p, "message", msg);
		msg = NULL;
		break;
	}
	rpc_events_add(&q, "chat", p, 0, SCOPE_READ, NULL, NULL, NULL);
	d = json_pack("{s:s,s:I,s:I}", "phase",
		      res->status == RUN_OK ? "end" : "error", "startedAt",
		      (json_int_t)res->started_at, "endedAt",
		      (json_int_t)res->ended_at);
	if (res->status != RUN_OK) {
		json_object_set_new(d, "error", json_string(
			res->error ? res->error : "run failed"));
		if (res->status == RUN_ABORTED)
			json_object_set_new(d, "aborted", json_true());
	}
	rpc_chat_agent_event(f, &q, "lifecycle", d);
	rpc_events_post(&q);
	rpc_chat_fan_free(f);
}

/* A run started (any face): fan its stream out as chat/agent events. */
static void rpc_chat_on_run(void *arg, struct run *r)
{
	struct rpc_chat_fan *f = xcalloc(1, sizeof(*f));
	struct rpc_events q = {.srv = arg};

	f->srv = arg;
	f->run_id = xstrdup(run_id(r));
	f->key = xstrdup(run_session_key(r));
	f->agent_id = xstrdup(run_agent_id(r));
	f->sink.on_delta = rpc_chat_on_delta;
	f->sink.on_tool_call = rpc_chat_on_tool;
	f->sink.on_end = rpc_chat_on_end;
	f->sink.arg = f;
	rpc_chat_agent_event(f, &q, "lifecycle", json_pack("{s:s,s:I}",
		"phase", "start", "startedAt", (json_int_t)run_started_at(r)));
	rpc_events_post(&q);
	if (run_attach(r, &f->sink) != GW_OK)
		rpc_chat_fan_free(f);
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

static int rpc_chat_send(struct rpc_call *call)
{
	struct agent_rt *rt = call->srv->d.agents;
	struct run_request rq = {0};
	struct run *r = NULL;
	const char *msg, *idem, *ch;
	const json_t *v;
	char *key = NULL, *agent = NULL, *err = NULL;
	json_t *st = NULL;
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
	rq.messages = json_pack("[{s:s,s:s}]", "role", "user", "content",
				msg);
	rq.use_history = 1;
	rq.channel = ch && *ch ? ch : "webchat";
	rq.timeout_ms = v ? json_integer_value(v) : 0;
	rc = run_start(rt, &rq, NULL, &r, &err);
	if (rc != GW_OK) {
		rpc_call_error(call, rc == GW_EUNAVAIL ? "UNAVAILABLE"
						       : "INVALID_REQUEST",
			       NULL, "%s", err ? err : gw_err_str(rc));
		goto out;
	}
	if (rq.origin == RUN_NEW) {
		call->payload = json_pack("{s:s,s:s}", "runId", run_id(r),
					  "status", "started");
	} else if (rq.origin == RUN_JOINED) {
		call->payload = json_pack("{s:s,s:s}", "runId", run_id(r),
					  "status", "in_flight");
	} else {
		session_run_status(rt, run_id(r), &st);
		call->payload = json_pack("{s:s,s:s}", "runId", run_id(r),
			"status", st ? json_string_value(json_object_get(st,
						"status")) : "ok");
		json_decref(st);
	}
out:
	run_unref(r);
	free(err);
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
	{"chat.send", rpc_chat_send, "operator.write", RPC_F_WORKER,
	 "send a message to a session; output arrives as chat events"},
	{"chat.history", rpc_chat_history, "operator.read", RPC_F_WORKER,
	 "the transcript of a session"},
	{"chat.abort", rpc_chat_abort, "operator.write", RPC_F_WORKER,
	 "abort the running turn(s) of a session"},
	{"chat.inject", rpc_chat_inject, "operator.admin", RPC_F_WORKER,
	 "append an assistant note to a session transcript"},
};
const size_t rpc_chat_methods_count = ARRAY_SIZE(rpc_chat_methods);
