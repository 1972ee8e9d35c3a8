/* The WebSocket face: connection state, the connect handshake, the method
 * table with its scope policy, and event fan-out with per-connection seq.
 * It sits on net/ws through callbacks and on the domain modules below. */
#pragma once

#include <stdint.h>

#include <jansson.h>

struct rpc_server;
struct ws_server;
struct ws_conn;
struct limiter;
struct identity_lazy;
struct workq;
struct pairing;
struct agent_rt;
struct store;
struct cron;

struct rpc_deps {
	struct ws_server *ws;
	struct workq *workers;
	struct limiter *limiter;
	struct identity_lazy *identity;	/* loaded on first use */
	struct pairing *pairing;	/* device pairing state */
	struct agent_rt *agents;	/* agents, sessions, runs */
	struct store *store;		/* usage, node pairing (NULL: none) */
	struct cron *cron;		/* automations (NULL: unavailable) */
	const char *version;		/* server.version ("2026.9.6") */
	const char *build_id;		/* "clawgate-0.1.0" */
	const char *boot_id;		/* uuid per process start */
	const char *state_dir;
	const char *config_path;
	const char *listening;		/* "127.0.0.1:18789, [::1]:18789" */
	int port;
	int64_t start_mono_ms;
	int64_t tick_ms;		/* policy.tickIntervalMs */
	int64_t handshake_ms;		/* pre-auth timeout */
	int64_t health_ms;		/* health refresh interval */
};

/* Scope bits. */
enum {
	SCOPE_READ = 1 << 0,
	SCOPE_WRITE = 1 << 1,
	SCOPE_ADMIN = 1 << 2,
	SCOPE_APPROVALS = 1 << 3,
	SCOPE_PAIRING = 1 << 4,
	SCOPE_TALK_SECRETS = 1 << 5,
	SCOPE_TALK = 1 << 6,
	SCOPE_QUESTIONS = 1 << 7,
};

struct rpc_server *rpc_server_new(const struct rpc_deps *d);
/* The ws server is created with the rpc server as its callbacks' arg, so
 * it is attached after both exist. */
void rpc_server_set_ws(struct rpc_server *s, struct ws_server *ws);
/* The callbacks to give ws_server_new (arg = the rpc_server). */
void rpc_ws_on_open(struct ws_conn *c, void *arg);
void rpc_ws_on_message(struct ws_conn *c, const char *data, size_t len,
		       int binary, void *arg);
void rpc_ws_on_too_big(struct ws_conn *c, size_t len, void *arg);
void rpc_ws_on_close(struct ws_conn *c, void *arg);
/* Start timers (tick, health refresh); call after the ws server runs. */
void rpc_server_start(struct rpc_server *s);
/* Any thread: fan an event out to ready connections holding `scope_mask`
 * (0 = everyone). payload is stolen. with_state adds stateVersion. */
void rpc_broadcast(struct rpc_server *s, const char *event, json_t *payload,
		   int with_state, unsigned scope_mask);
/* Any thread: send `shutdown` to every client and close them (1012 when a
 * restart follows, else 1001); returns when done or after wait_ms. */
void rpc_server_shutdown(struct rpc_server *s, const char *reason,
			 int64_t restart_expected_ms, int wait_ms);
/* Any thread: the shared secret changed (cfg is the new snapshot): close
 * the connections that authenticated with another one (4001 "gateway auth
 * changed"). rpc-config.c. */
struct gw_config;
void rpc_config_auth_rotated(struct rpc_server *s,
			     const struct gw_config *cfg);
void rpc_server_free(struct rpc_server *s);

/* Method table introspection (tests, features.methods, docs). */
size_t rpc_method_count(void);
const char *rpc_method_name(size_t i);
/* Scope a method needs ("operator.read", ...; "node" for node-role
 * methods; unlisted → operator.admin). */
const char *rpc_method_scope(const char *method);
/* The published scope of a method (protocol.schema.json `methods`:
 * "operator.*", "dynamic" or "node"), NULL when unpublished. */
const char *rpc_method_published_scope(const char *method);
/* The scope column of the method's group table (NULL when not
 * implemented or none); tests check it agrees with the scope table. */
const char *rpc_method_group_scope(const char *method);
/* The scope table rows (tests). */
size_t rpc_scope_table_size(void);
const char *rpc_scope_table_name(size_t i);
/* Parse "operator.read" etc. into a bit (0 when unknown). */
unsigned rpc_scope_bit(const char *scope);
/* Does the granted mask satisfy `need` (admin ⊇ all, write ⊇ read)? */
int rpc_scope_allows(unsigned granted, unsigned need);

/* Frame validation (pure; unit-tested and fuzzed). Returns 0 when frame is
 * a valid request; else -1 with an ajv-style message in msg. */
int rpc_frame_check_req(const json_t *frame, char *msg, size_t n);
/* Validate connect params; -1 with "at /client/id: must be ..." in msg. */
int rpc_connect_check_params(const json_t *params, char *msg, size_t n);
