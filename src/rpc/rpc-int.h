/* Shared between the rpc-*.c files only. */
#pragma once

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
	unsigned scopes;
	json_t *scope_list;	/* the granted scopes as sent (array) */
	char *client_id;
	char *client_mode;
	char *presence_key;	/* NULL for ephemeral clients */
	int bad_role_calls;
	struct rpc_conn *next, *prev;	/* ready list */
};

struct rpc_server {
	struct rpc_deps d;
	struct rpc_conn *ready;	/* list of READY connections */
	int nready;
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
};

typedef int (*rpc_handler_fn)(struct rpc_call *call);

#define RPC_F_WORKER 1u		/* run on the worker pool (files, store) */
#define RPC_F_NODE 2u		/* node-role method */

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
/* Any thread: close the ready connections that satisfy pred with code and
 * reason (e.g. 4001 "device removed"). */
void rpc_close_where(struct rpc_server *s, rpc_conn_pred pred, void *pred_arg,
		     void (*pred_free)(void *), int code, const char *reason);
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
json_t *rpc_features(void);
json_t *rpc_scopes_json(unsigned mask);
const char *rpc_health_json(struct rpc_server *s);
void rpc_health_refresh(struct rpc_server *s, int broadcast);

/* rpc-connect.c */
void rpc_connect_handle(struct rpc_conn *c, json_t *frame);

/* Method groups, one per rpc-<ns>.c file (listed in rpc.c). */
extern const struct rpc_method rpc_system_methods[];
extern const size_t rpc_system_methods_count;
