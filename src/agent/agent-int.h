/* Shared between the agent core files only (agent.c, provider.c,
 * session.c, run.c). The faces use agent.h. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "agent/agent.h"
#include "agent/runidx.h"
#include "store/store-sessions.h"

struct gw_config;

/* ---- provider.c: the agent thread (h1 and libcurl) and SSE ------------ */

/* Incremental SSE parser: bytes in, one callback per complete event with
 * the concatenated "data:" lines (without the trailing newline). */
struct provider_sse {
	char *buf;
	size_t len, cap;
	size_t max;		/* max bytes of one event (bounded input) */
	int overflow;
};
typedef void (*provider_sse_fn)(void *arg, const char *data, size_t len);
void provider_sse_init(struct provider_sse *s, size_t max_event);
void provider_sse_free(struct provider_sse *s);
/* Feed a chunk; returns -1 once an event exceeded max (then stays -1). */
int provider_sse_feed(struct provider_sse *s, const char *p, size_t n, provider_sse_fn fn,
	     void *arg);

/* The fields of a chat.completion.chunk the run reads, scanned without
 * building a JSON tree: provider_chunk_scan returns 1 when data is valid
 * JSON that the scanner fully modelled (the values below are then what
 * jansson would give), 0 when the caller must parse it with jansson
 * (an "error" member, tool calls, \u escapes, reals or long numbers in
 * it, a repeated key the run reads, nesting deeper than 16, invalid
 * JSON). Strings point into data (raw, JSON-escaped). */
struct provider_chunk_str {
	const char *raw;
	size_t len;
	int seen, is_str, esc;
};
struct provider_chunk {
	int choices_seen, has_choice, choice_obj, delta_seen, usage_seen;
	struct provider_chunk_str content, finish;	/* choices[0] */
	int in_seen, in_set, out_seen, out_set;		/* usage */
	long long in_tok, out_tok;
};
int provider_chunk_scan(const char *data, size_t len,
			struct provider_chunk *c);
/* The unescaped text of v into out (v->len + 1 bytes); its length. */
size_t provider_chunk_text(const struct provider_chunk_str *v, char *out);

struct provider;		/* the engine: one thread, one curl multi */
struct provider_http;	/* one upstream request */

struct provider_http_req {
	const char *url;
	const char *body;	/* JSON text, copied */
	char *body_take;	/* or JSON text the provider takes (freed by
				 * it, also when the start fails) */
	json_t *headers;	/* object name → string value (borrowed) */
	const char *api_key;	/* Bearer token or NULL (never logged) */
	int64_t timeout_ms;	/* whole request (0 = none) */
	int64_t idle_timeout_ms; /* no byte for this long (read timeout) */
	int64_t connect_timeout_ms;
	/* Upstream connection pool (models.connectionPool; 0 = default):
	 * idle connections kept, connections per host, idle seconds. */
	long pool_max_idle, pool_max_host, pool_idle_s;
};

struct provider_http_cbs {
	/* One SSE event (2xx event-stream responses). */
	void (*on_event)(void *arg, const char *data, size_t len);
	/* Done: status is the HTTP status (0 when none); curl_err != 0 on a
	 * transport error (curl_msg set); body is the buffered body of a
	 * non-SSE response (error JSON or a non-stream completion). The
	 * handle is freed after this returns. */
	void (*on_done)(void *arg, int status, int curl_err,
			const char *curl_msg, const char *body, size_t blen,
			int sse_overflow);
	void *arg;
};

int provider_new(struct provider **out);
/* Stop the thread (running requests are cancelled without callbacks). */
void provider_free(struct provider *p);
/* Any thread: run fn(arg) on the agent thread. -1 when stopping. */
int provider_post(struct provider *p, void (*fn)(void *arg), void *arg);
/* Agent thread: 1 when the caller is the agent thread. */
int provider_on_thread(struct provider *p);
/* Any thread (tests): non-zero while the agent thread is (about to be)
 * blocked with an empty queue, where a post must wake it; *wakeups: the
 * wake-ups posts have sent it so far. */
int provider_asleep(struct provider *p, unsigned int *wakeups);
/* agent-loop.c. agent_loop_flush: called by the agent thread's loop
 * (provider_main) once per iteration before it waits, and before the
 * agent thread hands the store a job whose session events the writer
 * posts: the observer's flush (nothing on another thread).
 * agent_loop_init(rt): the first job of rt's agent thread. */
void agent_loop_flush(void);
void agent_loop_init(void *rt);
/* Agent thread: run fn(arg) after delay_ms (on the agent thread). Timers
 * pending at provider_free are dropped without running. */
struct provider_timer;
struct provider_timer *provider_timer_add(struct provider *p,
					  int64_t delay_ms,
					  void (*fn)(void *arg), void *arg);
void provider_timer_cancel(struct provider *p, struct provider_timer *t);
/* Agent thread: start a request; NULL with *err on a setup failure. */
struct provider_http *provider_http_start(struct provider *p,
				  const struct provider_http_req *rq,
				  const struct provider_http_cbs *cbs, char **err);
/* Agent thread: cancel (no more callbacks) and free. */
void provider_http_cancel(struct provider_http *h);

/* ---- agent.c: agents and models from a config snapshot ------------------ */

/* One resolved upstream target. */
struct agent_target {
	char *ref;		/* "provider/model" */
	char *provider;
	char *model;		/* bare upstream id */
	char *base;		/* baseUrl without trailing slash (+/v1) */
	char *url;		/* .../chat/completions */
	char *api_key;		/* secret, may be NULL */
	json_t *headers;	/* object or NULL */
	int64_t timeout_ms;
	int usage_in_stream;	/* send stream_options.include_usage */
	long pool_max_idle, pool_max_host, pool_idle_s;	/* see
							 * provider_http_req */
	char *error;		/* non-NULL: unusable (reason) */
	atomic_int refs;	/* shared by runs and the chain cache; never
				 * written after it was resolved */
};
/* Drop a reference (the last frees it). */
void agent_target_free(struct agent_target *t);

/* The model chain of an agent (primary then fallbacks), or the override
 * alone. Returns GW_EINVAL with *err when nothing usable is configured. */
int agent_resolve_chain(struct agent_rt *rt, const struct gw_config *cfg,
			const char *agent_id, const char *override,
			struct agent_target ***out, size_t *n, char **err);
/* System prompt text from the agent workspace (AGENTS.md, SOUL.md), or
 * NULL. */
char *agent_workspace_prompt(struct agent_rt *rt,
			     const struct gw_config *cfg,
			     const char *agent_id);
/* Canonical (lowercase, configured) agent id for id; NULL if unknown. */
char *agent_canon_id(struct agent_rt *rt, const struct gw_config *cfg,
		     const char *id);

/* ---- session.c: sessions.*, chat.history and the session tools; the
 * SQL is in src/store/store-sessions.c (store/store-sessions.h) -------- */

/* What a client is told of a run by its stored idempotency status: "ok",
 * "timeout", "running", else "error" (agent.wait, chat.send replays). */
const char *session_status_name(const char *stored);

/* ---- the runtime ---------------------------------------------------------- */

struct agent_rt {
	struct store *store;
	char *state_dir;
	struct provider *prov;
	pthread_mutex_t mu;		/* runs, observer */
	struct run *runs;		/* live runs */
	struct runidx runidx;		/* the live runs by id and session */
	atomic_llong sess_ev_built;	/* agent_events_new: arrays given */
	atomic_llong sess_ev_skipped;	/* ... and NULLs (no subscriber) */
	int nruns;
	atomic_llong nended;		/* runs that reached run_finish */
	atomic_int starting;		/* run_start_async jobs not done */
	pthread_cond_t idle;		/* nruns reached 0 */
	struct agent_observer obs;
	int stopping;
	uint64_t run_seq;		/* start order of runs */
	/* The global lane (agents.defaults.maxConcurrent, run.c): runs
	 * holding a slot (lane_active), runs free in their session waiting
	 * for one in arrival order (lane_head..lane_tail, lane_waiting) and
	 * the cap last read from the config (0: not yet). Under mu. */
	struct run *lane_head, *lane_tail;
	int lane_active, lane_waiting, lane_cap;
	json_t *sysevents;		/* session key -> [text] (wake) */
	/* Workspace system prompts by directory, valid while the files'
	 * (inode, size, mtime) are unchanged. Provider secrets live in the
	 * config snapshot (src/secrets/), resolved at activation. */
	pthread_mutex_t cache_mu;
	struct agent_prompt_ent *prompts;
	size_t nprompts;
	/* What a run's set-up resolves from a config snapshot, by (snapshot,
	 * agent id): the model chain without an override (shared targets)
	 * and the workspace directory. Entries of an older snapshot are
	 * dropped when the next one misses. Under cache_mu. */
	struct agent_setup_ent *setups;
	size_t nsetups;
};

/* run.c: abort every live run and wait until they ended, giving up
 * after wait_ms in which none ended. */
void run_abort_all(struct agent_rt *rt, int wait_ms);
/* run.c: runs started and not yet ended (delivered). */
int run_live_count(struct agent_rt *rt);

/* A new array for the observer events of a store job, or NULL when the
 * observer says nobody listens (the store then builds none). */
json_t *agent_events_new(struct agent_rt *rt);
/* Whether the observer would get a run's events now (its listening hook;
 * 1 without one). */
int agent_listening(struct agent_rt *rt);
/* Emit queued observer events ([{event, key, payload}]); steals events
 * (NULL is fine). */
void agent_emit(struct agent_rt *rt, json_t *events);
