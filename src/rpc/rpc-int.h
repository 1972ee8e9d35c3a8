/* Shared between the rpc-*.c files only. */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "rpc/rpc.h"

enum rpc_conn_state { RPC_AWAIT_CONNECT = 0, RPC_READY, RPC_CLOSING };

/* One WebSocket client; lives on the lws thread. Reference-counted so a
 * worker's answer can find out that its connection is gone. */
struct rpc_conn {
	struct rpc_server *srv;
	struct ws_conn *ws;	/* NULL once closed */
	int refs;
	enum rpc_conn_state state;
	char conn_id[37];
	char nonce[37];
	struct ws_timer *hs_timer;
	uint64_t seq;		/* last event seq sent */
	/* After hello: */
	char *role;
	int operator_role;	/* role is "operator" (set when ready) */
	unsigned scopes;
	json_t *scope_list;	/* the granted scopes as sent (array) */
	char *client_id;
	char *client_mode;
	char *presence_key;	/* NULL for ephemeral clients */
	/* Pairing (set at hello, immutable until freed: a worker holding a
	 * call reference may read them): */
	char *device_id;	/* verified device identity or NULL */
	const char *auth_method; /* "token", "password", "none",
				  * "trusted-proxy", "device-token" */
	char *client_ip;	/* client IP (behind trusted proxies) */
	/* Fingerprint of the shared secret this connection authenticated
	 * with ("" = not by shared secret): a rotation closes the others
	 * with 4001 (rpc-config.c). */
	char shared_auth_fp[17];
	int hs_pending;		/* connect waits on a worker (pairing) */
	/* Session subscriptions (rpc-sessions.c, lws thread): */
	int sessions_sub;	/* sessions.subscribe */
	json_t *session_keys;	/* sessions.messages.subscribe: key → true */
	int session_counted;	/* counted in srv->session_subs */
	int bad_role_calls;
	struct rpc_conn *next, *prev;	/* ready list */
};

struct rpc_server {
	struct rpc_deps d;
	struct rpc_conn *ready;	/* list of READY connections */
	int nready;
	atomic_int listeners;	/* nready, readable from any thread */
	atomic_int session_subs; /* connections with a session subscription */
	struct ws_timer *tick_timer;
	struct ws_timer *health_timer;
	/* Cached health payload (serialized), refreshed on the timer. */
	char *health_json;
	int64_t health_at;
	int stopping;
};

/* A request in flight. */
struct rpc_call {
	struct rpc_server *srv;
	struct rpc_conn *conn;	/* referenced; touch only on the lws thread */
	json_t *id;		/* the request id (string) */
	char *method;
	json_t *params;		/* never NULL (empty object when absent) */
	struct gw_config *cfg;	/* reference held for the call's lifetime */
	unsigned scopes;	/* snapshot of the caller's scopes */
	/* Result: */
	json_t *payload;	/* or */
	char *payload_raw;	/* pre-serialized JSON */
	const char *err_code;	/* protocol error code, NULL = ok */
	char *err_msg;
	json_t *err_details;
	int err_retryable;
	int64_t err_retry_after_ms;
	/* Optional, set by a handler: runs on the lws thread right after the
	 * answer is queued (even when the caller is gone); after_free(arg)
	 * when the call is freed. */
	void (*after_send)(struct rpc_call *call);
	void *after_arg;
	void (*after_free)(void *arg);
	/* rpc_call_defer: the dispatcher and the deferred owner each hold a
	 * reference (dropped on the lws thread). */
	int deferred;
	int refs;
};

typedef int (*rpc_handler_fn)(struct rpc_call *call);

#define RPC_F_WORKER 1u		/* run on the worker pool (files, store) */
#define RPC_F_NODE 2u		/* node-role method */
#define RPC_F_LOCAL 4u		/* clawgate extension: callable, but not
				 * advertised in features.methods (not an
				 * upstream method name) */

struct rpc_method {
	const char *name;
	rpc_handler_fn fn;
	const char *scope;	/* required operator scope */
	unsigned flags;
	const char *summary;
};

/* rpc.c */
/* A predicate over ready connections (runs on the lws thread). */
typedef int (*rpc_conn_pred)(const struct rpc_conn *c, void *arg);
/* Any thread: send an event to the ready connections that hold
 * scope_mask (0 = all) and satisfy pred (NULL = all), each with its own
 * seq. payload is stolen; pred_free(pred_arg) runs after the fan-out. */
void rpc_send_where(struct rpc_server *s, const char *event, json_t *payload,
		    int with_state, unsigned scope_mask, rpc_conn_pred pred,
		    void *pred_arg, void (*pred_free)(void *));
/* Events posted to the lws thread as one job: every connection gets them
 * queued together, so they leave in one write. {.srv = s} to start;
 * rpc_events_add takes what rpc_send_where takes (payload stolen);
 * rpc_events_post hands them over (nothing is sent before). */
struct rpc_bcast;
struct rpc_events {
	struct rpc_server *srv;
	struct rpc_bcast *head, *tail;
};
void rpc_events_add(struct rpc_events *q, const char *event,
		    json_t *payload, int with_state, unsigned scope_mask,
		    rpc_conn_pred pred, void *pred_arg,
		    void (*pred_free)(void *));
void rpc_events_post(struct rpc_events *q);
/* Fixed-shape events written as text straight into their frame head (no
 * json_t): rpc_event_open writes `{"type":"event","event":E,"payload":`
 * into jb (start with {0}), the caller appends the payload with
 * store_json_* (byte for byte what rpc_event_head makes of the json_t),
 * and rpc_events_add_text queues it as rpc_events_add would (jb taken
 * and reset). The caller checks rpc_has_listeners first and passes the
 * flags rpc_event_flags gives for the payload. */
struct store_json_buf;
void rpc_event_open(struct store_json_buf *jb, const char *event);
void rpc_events_add_text(struct rpc_events *q, struct store_json_buf *jb,
			 unsigned flags, unsigned scope_mask);
/* Tests: q's events as [{"head": the frame up to the seq, "tail": after
 * it, "dropIfSlow": bool}], q emptied (nothing posted). */
json_t *rpc_events_take(struct rpc_events *q);
/* An event frame is one text shared by every connection (ws_shared)
 * with each connection's own seq spliced in: the head
 * `{"type":"event","event":E,"payload":P,"seq":` (malloc'd, *len its
 * length), the seq, then the stateVersion member when any and `}`. */
char *rpc_event_head(const char *event, const json_t *payload, size_t *len);
/* WS_SEND_DROP_IF_SLOW for the events skipped for a slow consumer (chat
 * deltas, presence, heartbeat, cron, pairing and approvals, talk.mode,
 * session events), else 0: the others close it 1008. */
unsigned rpc_event_flags(const char *event, const json_t *payload);
/* status gateway.wsOut (any thread): data frames written to WS clients,
 * the writes that carried them, the frames that shared a write, and the
 * dropIfSlow events skipped for slow consumers, since the start. */
json_t *rpc_ws_out_json(struct rpc_server *s);
/* Any thread: whether any connection is ready (completed its handshake);
 * event producers skip building payloads nobody would get. */
int rpc_has_listeners(struct rpc_server *s);
/* rpc-sessions.c (lws thread): recount c in srv->session_subs after its
 * subscriptions changed, or it left (gone). */
void rpc_sessions_recount(struct rpc_conn *c, int gone);
/* Any thread: close the ready connections that satisfy pred with code and
 * reason (e.g. 4001 "device removed"). */
void rpc_close_where(struct rpc_server *s, rpc_conn_pred pred, void *pred_arg,
		     void (*pred_free)(void *), int code, const char *reason);
/* The "pending" answer (STYLE rule 4). A handler calls rpc_call_defer and
 * returns its result (GW_EPENDING): the dispatcher sends nothing. The
 * owner then answers from any thread with rpc_call_reply, once or more
 * (the `agent` method sends two res frames on one id), and ends with
 * rpc_call_release exactly once. */
int rpc_call_defer(struct rpc_call *call);
/* Any thread: a res frame for the call. ok=1: payload (stolen; NULL sends
 * null). ok=0: error {code, message, details (stolen, may be NULL)} and
 * payload too when not NULL. Dropped when the connection is gone. */
void rpc_call_reply(struct rpc_call *call, int ok, json_t *payload,
		    const char *err_code, const char *err_msg,
		    json_t *err_details);
/* Any thread: the owner is done with a deferred call. */
void rpc_call_release(struct rpc_call *call);
/* Any thread, instead of rpc_call_reply + rpc_call_release: the owner
 * of a deferred call set its result as a handler does (payload, or
 * rpc_call_error) and hands it back: one res frame, written on the lws
 * thread as a handler's return is, and the call is done. */
void rpc_call_complete(struct rpc_call *call);
/* 0 when the agent runtime is there, else -1 with UNAVAILABLE set. */
int rpc_call_need_agents(struct rpc_call *call);
/* FORBIDDEN with MISSING_SCOPE details naming scope; returns GW_EFORBIDDEN. */
int rpc_call_missing_scope(struct rpc_call *call, const char *scope);
void rpc_call_error(struct rpc_call *call, const char *code,
		    json_t *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void rpc_conn_send_json(struct rpc_conn *c, json_t *frame);
void rpc_conn_send_res_error(struct rpc_conn *c, json_t *id,
			     const char *code, const char *msg,
			     json_t *details);
void rpc_conn_reject(struct rpc_conn *c, json_t *id, const char *code,
		     const char *msg, json_t *details, int close_code,
		     const char *close_reason);
void rpc_conn_ready(struct rpc_conn *c);
/* Drop a reference (lws thread); the last one frees the connection. */
void rpc_conn_unref(struct rpc_conn *c);
json_t *rpc_features(void);
json_t *rpc_scopes_json(unsigned mask);
const char *rpc_health_json(struct rpc_server *s);
void rpc_health_refresh(struct rpc_server *s, int broadcast);

/* rpc-device.c: a ready connection of device_id (NULL: none) came (+1)
 * or went (-1); device.pair.list marks paired devices `connected`. */
void rpc_device_online(const char *device_id, int delta);

/* rpc-connect.c */
void rpc_connect_handle(struct rpc_conn *c, json_t *frame);

/* Method groups, one per rpc-<ns>.c file (listed in rpc.c). */
extern const struct rpc_method rpc_system_methods[];
extern const size_t rpc_system_methods_count;
extern const struct rpc_method rpc_device_methods[];
extern const size_t rpc_device_methods_count;
extern const struct rpc_method rpc_config_methods[];
extern const size_t rpc_config_methods_count;
extern const struct rpc_method rpc_sessions_methods[];
extern const size_t rpc_sessions_methods_count;
/* rpc-sessions.c: the canonical form of session key k (caller frees), or
 * NULL with INVALID_REQUEST set. */
char *rpc_sessions_canon(struct rpc_call *call, const char *k);
extern const struct rpc_method rpc_chat_methods[];
extern const size_t rpc_chat_methods_count;
extern const struct rpc_method rpc_agent_methods[];
extern const size_t rpc_agent_methods_count;
extern const struct rpc_method rpc_unavail_methods[];
extern const size_t rpc_unavail_methods_count;
extern const struct rpc_method rpc_diagnostics_methods[];
extern const size_t rpc_diagnostics_methods_count;
extern const struct rpc_method rpc_views_methods[];
extern const size_t rpc_views_methods_count;
extern const struct rpc_method rpc_usage_methods[];
extern const size_t rpc_usage_methods_count;
extern const struct rpc_method rpc_node_methods[];
extern const size_t rpc_node_methods_count;

/* rpc-node.c (lws thread): a node's hello (params: its connect params),
 * its close, and the server's stop (in-flight invocations fail). */
void rpc_node_connected(struct rpc_conn *c, const json_t *params);
void rpc_node_disconnected(struct rpc_conn *c);
void rpc_node_stop(struct rpc_server *s);

/* rpc-diagnostics.c: the lws timer-lag sampler (started and stopped with
 * the server's timers, lws thread) and its figures (any thread). */
void rpc_diagnostics_start(struct rpc_server *s);
void rpc_diagnostics_stop(struct rpc_server *s);
json_t *rpc_diagnostics_event_loop(void);
json_t *rpc_diagnostics_process_memory(void);
/* Worker: count the session rows (total returned, -1 when the store is
 * unavailable), publish the total to health; *by_agent (may be NULL)
 * gets {agentId: count}. */
int64_t rpc_diagnostics_count_sessions(struct rpc_server *s,
				       json_t **by_agent);
extern const struct rpc_method rpc_secrets_methods[];
extern const size_t rpc_secrets_methods_count;
extern const struct rpc_method rpc_cron_methods[];
extern const size_t rpc_cron_methods_count;
extern const struct rpc_method rpc_channels_methods[];
extern const size_t rpc_channels_methods_count;

/* rpc-chat.c: register the run fan-out (chat/agent events) and the
 * session events with the agent runtime (rpc_server_new). */
void rpc_chat_observe(struct rpc_server *s);
/* Tests: the events the fan-out of a run with these ids sends (as
 * rpc_events_take gives them, nothing posted): its start, an assistant
 * event per delta (the chat deltas throttled with both clocks standing
 * at now_ms: the first goes at once, the rest at the next flush), a tool
 * call delta when tool is not NULL, then res's end. */
struct run_result;
json_t *rpc_chat_fan_script(struct rpc_server *s, const char *run_id,
			    const char *key, const char *agent_id,
			    const char *const *deltas, size_t n,
			    const json_t *tool, const struct run_result *res,
			    int64_t now_ms);

/* rpc-config.c: fingerprint of cfg's shared secret ("" when none). */
void rpc_config_auth_fp(const struct gw_config *cfg, char out[17]);
/* At hello: remember the shared secret c authenticated with (when its
 * auth_method is token or password), for rotation. */
void rpc_config_auth_note(struct rpc_conn *c, const struct gw_config *cfg);
