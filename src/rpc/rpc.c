/* The WebSocket face: connections, the dispatcher (frame validation, method
 * table, role and scope policy, worker hand-off) and event fan-out. Runs on
 * the lws thread except where a function says "any thread". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/ws.h"
#include "presence/presence.h"
#include "rpc/rpc-int.h"

#define RPC_PREAUTH_MAX_PAYLOAD (64u * 1024)
#define RPC_MAX_PAYLOAD (25u * 1024 * 1024)
#define RPC_MAX_BAD_ROLE_CALLS 10

/* Scopes of methods we do not implement but whose policy is published
 * (so a non-admin gets the right "missing scope" before "unknown method"). */
static const struct {
	const char *name;
	const char *scope;
} rpc_scope_table[] = {
	{"config.get", "operator.read"},
	{"config.schema", "operator.read"},
	{"config.schema.lookup", "operator.read"},
	{"models.list", "operator.read"},
	{"agents.list", "operator.read"},
	{"sessions.list", "operator.read"},
	{"sessions.get", "operator.read"},
	{"sessions.preview", "operator.read"},
	{"chat.history", "operator.read"},
	{"node.list", "operator.read"},
	{"node.describe", "operator.read"},
	{"usage.status", "operator.read"},
	{"channels.status", "operator.read"},
	{"cron.list", "operator.read"},
	{"cron.status", "operator.read"},
	{"chat.send", "operator.write"},
	{"chat.abort", "operator.write"},
	{"agent", "operator.write"},
	{"agent.wait", "operator.write"},
	{"wake", "operator.write"},
	{"node.invoke", "operator.write"},
	{"device.pair.list", "operator.pairing"},
	{"device.pair.approve", "operator.pairing"},
	{"device.pair.reject", "operator.pairing"},
	{"device.pair.remove", "operator.pairing"},
	{"device.token.rotate", "operator.pairing"},
	{"device.token.revoke", "operator.pairing"},
	{"node.pair.list", "operator.pairing"},
	{"exec.approval.list", "operator.approvals"},
};

/* The method table, one group per namespace file (rpc-<ns>.c). The
 * scope column is the policy; handlers never check scopes themselves. To
 * add a namespace: a table + count in its file, a line here. */
static const struct {
	const struct rpc_method *v;
	const size_t *n;
} rpc_groups[] = {
	{rpc_system_methods, &rpc_system_methods_count},
};

/* Events this server emits (features.events). */
static const char *const rpc_events[] = {
	"connect.challenge", "tick", "presence", "health", "shutdown",
};

static const struct {
	const char *name;
	unsigned bit;
} rpc_scope_names[] = {
	{"operator.read", SCOPE_READ},
	{"operator.write", SCOPE_WRITE},
	{"operator.admin", SCOPE_ADMIN},
	{"operator.approvals", SCOPE_APPROVALS},
	{"operator.pairing", SCOPE_PAIRING},
	{"operator.talk.secrets", SCOPE_TALK_SECRETS},
};

/* The i-th method across the groups, or NULL. */
static const struct rpc_method *rpc_method_at(size_t i)
{
	size_t g;

	for (g = 0; g < ARRAY_SIZE(rpc_groups); g++) {
		if (i < *rpc_groups[g].n)
			return &rpc_groups[g].v[i];
		i -= *rpc_groups[g].n;
	}
	return NULL;
}

size_t rpc_method_count(void)
{
	size_t g, n = 0;

	for (g = 0; g < ARRAY_SIZE(rpc_groups); g++)
		n += *rpc_groups[g].n;
	return n;
}

const char *rpc_method_name(size_t i)
{
	const struct rpc_method *m = rpc_method_at(i);

	return m ? m->name : NULL;
}

static const struct rpc_method *rpc_method_find(const char *name)
{
	const struct rpc_method *m;
	size_t i;

	for (i = 0; (m = rpc_method_at(i)); i++)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

const char *rpc_method_scope(const char *method)
{
	const struct rpc_method *m = rpc_method_find(method);
	size_t i;

	if (m)
		return m->scope;
	for (i = 0; i < ARRAY_SIZE(rpc_scope_table); i++)
		if (strcmp(rpc_scope_table[i].name, method) == 0)
			return rpc_scope_table[i].scope;
	return "operator.admin";
}

unsigned rpc_scope_bit(const char *scope)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rpc_scope_names); i++)
		if (strcmp(rpc_scope_names[i].name, scope) == 0)
			return rpc_scope_names[i].bit;
	return 0;
}

int rpc_scope_allows(unsigned granted, unsigned need)
{
	if (granted & SCOPE_ADMIN)
		return 1;
	if (need == SCOPE_READ && (granted & SCOPE_WRITE))
		return 1;
	return (granted & need) == need;
}

json_t *rpc_scopes_json(unsigned mask)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rpc_scope_names); i++)
		if (mask & rpc_scope_names[i].bit)
			json_array_append_new(a,
				json_string(rpc_scope_names[i].name));
	return a;
}

json_t *rpc_features(void)
{
	json_t *m = json_array(), *e = json_array();
	const struct rpc_method *mt;
	size_t i;

	for (i = 0; (mt = rpc_method_at(i)); i++)
		json_array_append_new(m, json_string(mt->name));
	for (i = 0; i < ARRAY_SIZE(rpc_events); i++)
		json_array_append_new(e, json_string(rpc_events[i]));
	return json_pack("{s:o,s:o}", "methods", m, "events", e);
}

/* ---- frames ------------------------------------------------------------ */

int rpc_frame_check_req(const json_t *frame, char *msg, size_t n)
{
	static const char *const allowed[] = {"type", "id", "method", "params",
					       "traceparent"};
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(frame)) {
		snprintf(msg, n, "must be object");
		return -1;
	}
	if (!json_object_get(frame, "type")) {
		snprintf(msg, n, "must have required property 'type'");
		return -1;
	}
	if (!json_object_get(frame, "id")) {
		snprintf(msg, n, "must have required property 'id'");
		return -1;
	}
	if (!json_object_get(frame, "method")) {
		snprintf(msg, n, "must have required property 'method'");
		return -1;
	}
	json_object_foreach((json_t *)frame, k, v) {
		for (i = 0; i < ARRAY_SIZE(allowed); i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (i == ARRAY_SIZE(allowed)) {
			snprintf(msg, n, "must NOT have additional properties");
			return -1;
		}
	}
	v = json_object_get(frame, "type");
	if (!json_is_string(v) || strcmp(json_string_value(v), "req") != 0) {
		snprintf(msg, n, "at /type: must be equal to constant");
		return -1;
	}
	v = json_object_get(frame, "id");
	if (!json_is_string(v)) {
		snprintf(msg, n, "at /id: must be string");
		return -1;
	}
	if (json_string_length(v) == 0) {
		snprintf(msg, n, "at /id: must NOT have fewer than 1 characters");
		return -1;
	}
	v = json_object_get(frame, "method");
	if (!json_is_string(v)) {
		snprintf(msg, n, "at /method: must be string");
		return -1;
	}
	if (json_string_length(v) == 0) {
		snprintf(msg, n,
			 "at /method: must NOT have fewer than 1 characters");
		return -1;
	}
	v = json_object_get(frame, "traceparent");
	if (v && !json_is_string(v)) {
		snprintf(msg, n, "at /traceparent: must be string");
		return -1;
	}
	if (v && json_string_length(v) > 128) {
		snprintf(msg, n,
			 "at /traceparent: must NOT have more than 128 characters");
		return -1;
	}
	return 0;
}

/* ---- sending --------------------------------------------------------- */

static void rpc_conn_send_text(struct rpc_conn *c, char *text)
{
	if (c->ws && text)
		ws_conn_send(c->ws, text, strlen(text));
	free(text);
}

void rpc_conn_send_json(struct rpc_conn *c, json_t *frame)
{
	rpc_conn_send_text(c, json_dumps(frame, JSON_COMPACT));
	json_decref(frame);
}

static json_t *rpc_error_json(const char *code, const char *msg,
			      json_t *details)
{
	json_t *e = json_pack("{s:s,s:s}", "code", code, "message", msg);

	if (details)
		json_object_set(e, "details", details);
	return e;
}

void rpc_conn_send_res_error(struct rpc_conn *c, json_t *id, const char *code,
			     const char *msg, json_t *details)
{
	json_t *f = json_pack("{s:s,s:O,s:b,s:o}", "type", "res", "id",
			      id ? id : json_string("invalid"), "ok", 0,
			      "error", rpc_error_json(code, msg, details));

	if (!id)
		json_decref(json_object_get(f, "id"));
	rpc_conn_send_json(c, f);
}

/* Send a handshake rejection (a res error when id is given) then close. */
void rpc_conn_reject(struct rpc_conn *c, json_t *id, const char *code,
		     const char *msg, json_t *details, int close_code,
		     const char *close_reason)
{
	if (id)
		rpc_conn_send_res_error(c, id, code, msg, details);
	c->state = RPC_CLOSING;
	if (c->ws)
		ws_conn_close(c->ws, close_code, close_reason);
}

void rpc_call_error(struct rpc_call *call, const char *code, json_t *details,
		    const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	call->err_code = code;
	free(call->err_msg);
	call->err_msg = xstrdup(buf);
	json_decref(call->err_details);
	call->err_details = details;
}

/* ---- connections ------------------------------------------------------ */

static void rpc_conn_unref(struct rpc_conn *c)
{
	if (--c->refs > 0)
		return;
	free(c->role);
	free(c->client_id);
	free(c->client_mode);
	free(c->presence_key);
	json_decref(c->scope_list);
	free(c);
}

static void rpc_hs_timeout(void *arg)
{
	struct rpc_conn *c = arg;

	c->hs_timer = NULL;
	if (c->state != RPC_AWAIT_CONNECT || !c->ws)
		return;
	log_debug("ws", "handshake timeout conn=%s", c->conn_id);
	c->state = RPC_CLOSING;
	ws_conn_close(c->ws, 1000, "");
}

void rpc_ws_on_open(struct ws_conn *wc, void *arg)
{
	struct rpc_server *s = arg;
	struct rpc_conn *c = xcalloc(1, sizeof(*c));
	char buf[160];

	c->srv = s;
	c->ws = wc;
	c->refs = 1;
	util_uuid(c->conn_id);
	util_uuid(c->nonce);
	ws_conn_set_user(wc, c);
	ws_conn_set_max_payload(wc, RPC_PREAUTH_MAX_PAYLOAD);
	snprintf(buf, sizeof(buf),
		 "{\"type\":\"event\",\"event\":\"connect.challenge\","
		 "\"payload\":{\"nonce\":\"%s\",\"ts\":%lld}}",
		 c->nonce, (long long)util_now_ms());
	ws_conn_send(wc, buf, strlen(buf));
	c->hs_timer = ws_timer_add(s->d.ws, s->d.handshake_ms, rpc_hs_timeout,
				   c);
}

void rpc_ws_on_too_big(struct ws_conn *wc, size_t len, void *arg)
{
	struct rpc_conn *c = ws_conn_user(wc);

	(void)arg;
	(void)len;
	if (!c)
		return;
	if (c->state == RPC_READY) {
		ws_conn_close(wc, 1009, "Max payload size exceeded");
	} else {
		c->state = RPC_CLOSING;
		ws_conn_close(wc, 1009, "preauth payload too large");
	}
}

static void rpc_presence_disconnect(struct rpc_conn *c)
{
	json_t *f;

	if (!c->presence_key)
		return;
	f = json_pack("{s:s}", "reason", "disconnect");
	presence_upsert(c->presence_key, f);
	json_decref(f);
	rpc_broadcast(c->srv, "presence",
		      json_pack("{s:o}", "presence", presence_list()), 1, 0);
}

void rpc_ws_on_close(struct ws_conn *wc, void *arg)
{
	struct rpc_server *s = arg;
	struct rpc_conn *c = ws_conn_user(wc);

	if (!c)
		return;
	ws_conn_set_user(wc, NULL);
	c->ws = NULL;
	if (c->hs_timer) {
		ws_timer_cancel(c->hs_timer);
		c->hs_timer = NULL;
	}
	if (c->state == RPC_READY || (c->prev || c->next || s->ready == c)) {
		if (c->prev)
			c->prev->next = c->next;
		else if (s->ready == c)
			s->ready = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->next = c->prev = NULL;
		s->nready--;
		if (!s->stopping)
			rpc_presence_disconnect(c);
	}
	c->state = RPC_CLOSING;
	rpc_conn_unref(c);
}

/* The handshake succeeded: the connection joins the ready list. */
void rpc_conn_ready(struct rpc_conn *c)
{
	struct rpc_server *s = c->srv;

	if (c->hs_timer) {
		ws_timer_cancel(c->hs_timer);
		c->hs_timer = NULL;
	}
	c->state = RPC_READY;
	ws_conn_set_max_payload(c->ws, RPC_MAX_PAYLOAD);
	c->next = s->ready;
	if (s->ready)
		s->ready->prev = c;
	s->ready = c;
	s->nready++;
}

/* ---- dispatch ----------------------------------------------------------- */

static void rpc_call_free(struct rpc_call *call)
{
	json_decref(call->id);
	free(call->method);
	json_decref(call->params);
	config_unref(call->cfg);
	json_decref(call->payload);
	free(call->payload_raw);
	free(call->err_msg);
	json_decref(call->err_details);
	free(call);
}

/* Send the call's result (lws thread). */
static void rpc_call_finish(struct rpc_call *call)
{
	struct rpc_conn *c = call->conn;
	char *id = NULL, *pl = NULL, *text;
	json_t *f;

	if (!c->ws || c->state != RPC_READY)
		goto out;
	if (call->err_code) {
		f = json_pack("{s:s,s:O,s:b,s:o}", "type", "res", "id",
			      call->id, "ok", 0, "error",
			      rpc_error_json(call->err_code, call->err_msg,
					     call->err_details));
		if (call->err_retryable) {
			json_t *e = json_object_get(f, "error");

			json_object_set_new(e, "retryable", json_true());
			if (call->err_retry_after_ms > 0)
				json_object_set_new(e, "retryAfterMs",
					json_integer(call->err_retry_after_ms));
		}
		rpc_conn_send_json(c, f);
		goto out;
	}
	id = json_dumps(call->id, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!call->payload_raw)
		pl = json_dumps(call->payload ? call->payload : json_null(),
				JSON_ENCODE_ANY | JSON_COMPACT);
	text = xasprintf("{\"type\":\"res\",\"id\":%s,\"ok\":true,"
			 "\"payload\":%s}", id,
			 call->payload_raw ? call->payload_raw : pl);
	rpc_conn_send_text(c, text);
out:
	free(id);
	free(pl);
	rpc_conn_unref(c);
	rpc_call_free(call);
}

static void rpc_call_done_on_lws(void *arg)
{
	rpc_call_finish(arg);
}

static void rpc_call_run(struct rpc_call *call, const struct rpc_method *m)
{
	int r = m->fn(call);

	if (r != GW_OK && !call->err_code)
		rpc_call_error(call, gw_err_proto_code(r), NULL, "%s",
			       gw_err_str(r));
}

struct rpc_job {
	struct rpc_call *call;
	const struct rpc_method *m;
};

static void rpc_call_worker(void *arg)
{
	struct rpc_job *j = arg;
	struct rpc_call *call = j->call;

	rpc_call_run(call, j->m);
	free(j);
	/* The daemon drains workers before stopping lws, so this fails only
	 * in a shutdown race: then the connection is gone anyway. */
	if (ws_post(call->srv->d.ws, rpc_call_done_on_lws, call) != 0) {
		call->conn = NULL;
		rpc_call_free(call);
	}
}

static void rpc_dispatch(struct rpc_conn *c, json_t *frame)
{
	const char *method, *scope;
	const struct rpc_method *m;
	struct rpc_call *call;
	struct rpc_job *job;
	json_t *params;
	unsigned need;

	method = json_string_value(json_object_get(frame, "method"));
	m = rpc_method_find(method);
	/* Role policy: nodes call node methods, operators the rest. */
	if (m && (m->flags & RPC_F_NODE) != 0 &&
	    strcmp(c->role, "node") != 0) {
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
			"INVALID_REQUEST", "unauthorized role: operator", NULL);
		goto bad_role;
	}
	if (strcmp(c->role, "node") == 0 && (!m || !(m->flags & RPC_F_NODE)) &&
	    strcmp(method, "health") != 0) {
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
			"INVALID_REQUEST", "unauthorized role: node", NULL);
		goto bad_role;
	}
	if (strcmp(c->role, "operator") == 0) {
		scope = rpc_method_scope(method);
		need = rpc_scope_bit(scope);
		if (!rpc_scope_allows(c->scopes, need)) {
			char msg[128];
			json_t *details = json_pack("{s:s,s:s,s:[s]}", "code",
				"MISSING_SCOPE", "missingScope", scope,
				"requiredScopes", scope);

			snprintf(msg, sizeof(msg), "missing scope: %s", scope);
			rpc_conn_send_res_error(c, json_object_get(frame, "id"),
				"FORBIDDEN", msg, details);
			json_decref(details);
			return;
		}
	}
	if (strcmp(method, "connect") == 0) {
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
			"INVALID_REQUEST",
			"connect is only valid as the first request", NULL);
		return;
	}
	if (!m) {
		char msg[200];

		snprintf(msg, sizeof(msg), "unknown method: %.150s", method);
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
					"INVALID_REQUEST", msg, NULL);
		return;
	}
	c->bad_role_calls = 0;
	call = xcalloc(1, sizeof(*call));
	call->srv = c->srv;
	call->conn = c;
	c->refs++;
	call->id = json_incref(json_object_get(frame, "id"));
	call->method = xstrdup(method);
	params = json_object_get(frame, "params");
	call->params = params && !json_is_null(params) ? json_incref(params)
						       : json_object();
	call->cfg = config_current();
	call->scopes = c->scopes;
	if (m->flags & RPC_F_WORKER) {
		job = xmalloc(sizeof(*job));
		job->call = call;
		job->m = m;
		if (workq_post(c->srv->d.workers, rpc_call_worker, job) == 0)
			return;
		free(job);
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "gateway busy; retry shortly");
		call->err_retryable = 1;
		call->err_retry_after_ms = 500;
		rpc_call_finish(call);
		return;
	}
	rpc_call_run(call, m);
	rpc_call_finish(call);
	return;
bad_role:
	if (++c->bad_role_calls > RPC_MAX_BAD_ROLE_CALLS) {
		c->state = RPC_CLOSING;
		ws_conn_close(c->ws, 1008, "repeated unauthorized calls");
	}
}

void rpc_ws_on_message(struct ws_conn *wc, const char *data, size_t len,
		       int binary, void *arg)
{
	struct rpc_conn *c = ws_conn_user(wc);
	json_error_t jerr;
	json_t *frame, *type, *id;
	char msg[200], full[240];

	(void)binary;
	(void)arg;
	if (!c || c->state == RPC_CLOSING)
		return;
	frame = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (c->state == RPC_AWAIT_CONNECT) {
		if (!frame) {
			/* Not JSON before the handshake: close, no answer. */
			rpc_conn_reject(c, NULL, NULL, NULL, NULL, 1000, "");
			return;
		}
		rpc_connect_handle(c, frame);
		json_decref(frame);
		return;
	}
	if (!frame) {
		log_debug("ws", "unparseable frame from conn=%s: %s",
			  c->conn_id, jerr.text);
		return;
	}
	type = json_object_get(frame, "type");
	if (json_is_string(type) &&
	    strcmp(json_string_value(type), "cancel") == 0) {
		/* Nothing cancellable runs longer than one call here yet. */
		json_decref(frame);
		return;
	}
	if (rpc_frame_check_req(frame, msg, sizeof(msg)) != 0) {
		id = json_object_get(frame, "id");
		snprintf(full, sizeof(full), "invalid request frame: %s", msg);
		rpc_conn_send_res_error(c,
			json_is_string(id) && json_string_length(id) ? id : NULL,
			"INVALID_REQUEST", full, NULL);
		json_decref(frame);
		return;
	}
	rpc_dispatch(c, frame);
	json_decref(frame);
}

/* ---- events ------------------------------------------------------------- */

struct rpc_bcast {
	struct rpc_server *srv;
	char *event;
	char *payload;		/* serialized */
	int with_state;
	unsigned scope_mask;
	int64_t pv, hv;
	rpc_conn_pred pred;	/* NULL = every ready connection */
	void *pred_arg;
	void (*pred_free)(void *);
	/* For rpc_close_where: */
	int close_code;
	char *close_reason;
};

static void rpc_bcast_free(struct rpc_bcast *b)
{
	if (b->pred_free)
		b->pred_free(b->pred_arg);
	free(b->event);
	free(b->payload);
	free(b->close_reason);
	free(b);
}

static void rpc_broadcast_on_lws(void *arg)
{
	struct rpc_bcast *b = arg;
	struct rpc_conn *c, *next;
	char sv[96] = "";
	char *text;
	size_t cap, n;

	if (b->with_state)
		snprintf(sv, sizeof(sv),
			 ",\"stateVersion\":{\"presence\":%lld,\"health\":%lld}",
			 (long long)b->pv, (long long)b->hv);
	cap = strlen(b->event) + strlen(b->payload) + strlen(sv) + 96;
	text = xmalloc(cap);
	for (c = b->srv->ready; c; c = next) {
		next = c->next;
		if (!c->ws || c->state != RPC_READY)
			continue;
		if (b->scope_mask && strcmp(c->role, "operator") == 0 &&
		    !rpc_scope_allows(c->scopes, b->scope_mask))
			continue;
		if (b->scope_mask && strcmp(c->role, "operator") != 0)
			continue;
		if (b->pred && !b->pred(c, b->pred_arg))
			continue;
		n = (size_t)snprintf(text, cap,
			"{\"type\":\"event\",\"event\":\"%s\",\"payload\":%s,"
			"\"seq\":%llu%s}", b->event, b->payload,
			(unsigned long long)(c->seq + 1), sv);
		c->seq++;
		ws_conn_send(c->ws, text, n);
	}
	free(text);
	rpc_bcast_free(b);
}

void rpc_broadcast(struct rpc_server *s, const char *event, json_t *payload,
		   int with_state, unsigned scope_mask)
{
	rpc_send_where(s, event, payload, with_state, scope_mask, NULL, NULL,
		       NULL);
}

void rpc_send_where(struct rpc_server *s, const char *event, json_t *payload,
		    int with_state, unsigned scope_mask, rpc_conn_pred pred,
		    void *pred_arg, void (*pred_free)(void *))
{
	struct rpc_bcast *b = xcalloc(1, sizeof(*b));

	b->pred = pred;
	b->pred_arg = pred_arg;
	b->pred_free = pred_free;

	b->srv = s;
	b->event = xstrdup(event);
	b->payload = json_dumps(payload ? payload : json_null(),
				JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(payload);
	b->with_state = with_state;
	b->scope_mask = scope_mask;
	b->pv = presence_version();
	b->hv = presence_health_version();
	if (ws_post(s->d.ws, rpc_broadcast_on_lws, b) != 0)
		rpc_bcast_free(b);
}

static void rpc_close_on_lws(void *arg)
{
	struct rpc_bcast *b = arg;
	struct rpc_conn *c;

	for (c = b->srv->ready; c; c = c->next) {
		if (!c->ws || c->state != RPC_READY)
			continue;
		if (b->pred && !b->pred(c, b->pred_arg))
			continue;
		c->state = RPC_CLOSING;
		ws_conn_close(c->ws, b->close_code, b->close_reason);
	}
	rpc_bcast_free(b);
}

void rpc_close_where(struct rpc_server *s, rpc_conn_pred pred, void *pred_arg,
		     void (*pred_free)(void *), int code, const char *reason)
{
	struct rpc_bcast *b = xcalloc(1, sizeof(*b));

	b->srv = s;
	b->pred = pred;
	b->pred_arg = pred_arg;
	b->pred_free = pred_free;
	b->close_code = code;
	b->close_reason = xstrdup(reason);
	if (ws_post(s->d.ws, rpc_close_on_lws, b) != 0)
		rpc_bcast_free(b);
}

/* The health snapshot, cached as JSON text (lws thread). */
const char *rpc_health_json(struct rpc_server *s)
{
	if (!s->health_json)
		rpc_health_refresh(s, 0);
	return s->health_json;
}

void rpc_health_refresh(struct rpc_server *s, int broadcast)
{
	char *sp = xasprintf("%s/state/clawgate.sqlite", s->d.state_dir);
	json_t *h = presence_health(sp);

	free(sp);
	free(s->health_json);
	s->health_json = json_dumps(h, JSON_COMPACT);
	s->health_at = util_now_ms();
	presence_health_bump();
	if (broadcast)
		rpc_broadcast(s, "health", h, 1, 0);
	else
		json_decref(h);
}

static void rpc_tick(void *arg)
{
	struct rpc_server *s = arg;
	char payload[48];

	s->tick_timer = NULL;
	if (s->stopping)
		return;
	snprintf(payload, sizeof(payload), "{\"ts\":%lld}",
		 (long long)util_now_ms());
	rpc_broadcast(s, "tick", json_loads(payload, 0, NULL), 0, 0);
	s->tick_timer = ws_timer_add(s->d.ws, s->d.tick_ms, rpc_tick, s);
}

static void rpc_health_tick(void *arg)
{
	struct rpc_server *s = arg;

	s->health_timer = NULL;
	if (s->stopping)
		return;
	rpc_health_refresh(s, 1);
	s->health_timer = ws_timer_add(s->d.ws, s->d.health_ms,
				       rpc_health_tick, s);
}

static void rpc_start_on_lws(void *arg)
{
	struct rpc_server *s = arg;

	rpc_health_refresh(s, 0);
	s->tick_timer = ws_timer_add(s->d.ws, s->d.tick_ms, rpc_tick, s);
	s->health_timer = ws_timer_add(s->d.ws, s->d.health_ms,
				       rpc_health_tick, s);
}

void rpc_server_start(struct rpc_server *s)
{
	if (ws_post(s->d.ws, rpc_start_on_lws, s) != 0)
		log_warn("gateway", "cannot start rpc timers");
}

struct rpc_server *rpc_server_new(const struct rpc_deps *d)
{
	struct rpc_server *s = xcalloc(1, sizeof(*s));

	s->d = *d;
	return s;
}

void rpc_server_set_ws(struct rpc_server *s, struct ws_server *ws)
{
	s->d.ws = ws;
}

struct rpc_stop {
	struct rpc_server *srv;
	char *reason;
	int64_t restart_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void rpc_shutdown_on_lws(void *arg)
{
	struct rpc_stop *st = arg;
	struct rpc_server *s = st->srv;
	struct rpc_conn *c;
	json_t *p;

	s->stopping = 1;
	if (s->tick_timer)
		ws_timer_cancel(s->tick_timer);
	if (s->health_timer)
		ws_timer_cancel(s->health_timer);
	s->tick_timer = s->health_timer = NULL;
	p = json_pack("{s:s}", "reason", st->reason);
	if (st->restart_ms >= 0)
		json_object_set_new(p, "restartExpectedMs",
				    json_integer(st->restart_ms));
	/* Send synchronously: the fan-out below runs now, not posted. */
	{
		struct rpc_bcast *b = xcalloc(1, sizeof(*b));

		b->srv = s;
		b->event = xstrdup("shutdown");
		b->payload = json_dumps(p, JSON_COMPACT);
		rpc_broadcast_on_lws(b);
	}
	json_decref(p);
	for (c = s->ready; c; c = c->next) {
		if (!c->ws)
			continue;
		c->state = RPC_CLOSING;
		if (st->restart_ms >= 0)
			ws_conn_close(c->ws, 1012, "service restart");
		else
			ws_conn_close(c->ws, 1001, "gateway stopping");
	}
	pthread_mutex_lock(&st->mu);
	st->done = 1;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

void rpc_server_shutdown(struct rpc_server *s, const char *reason,
			 int64_t restart_expected_ms, int wait_ms)
{
	struct rpc_stop *st = xcalloc(1, sizeof(*st));
	struct timespec ts;
	int done;

	st->srv = s;
	st->reason = xstrdup(reason);
	st->restart_ms = restart_expected_ms;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	if (ws_post(s->d.ws, rpc_shutdown_on_lws, st) != 0) {
		free(st->reason);
		free(st);
		return;
	}
	util_deadline(&ts, wait_ms);
	pthread_mutex_lock(&st->mu);
	while (!st->done &&
	       pthread_cond_timedwait(&st->cv, &st->mu, &ts) == 0)
		;
	done = st->done;
	pthread_mutex_unlock(&st->mu);
	if (!done) {
		/* The closure may still run later: leak st rather than race. */
		log_warn("gateway", "shutdown broadcast timed out");
		return;
	}
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	free(st->reason);
	free(st);
}

void rpc_server_free(struct rpc_server *s)
{
	if (!s)
		return;
	free(s->health_json);
	free(s);
}
