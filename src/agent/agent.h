/* Agents: the runtime that answers through upstream model providers.
 * CONTRACT between the agent core (src/agent/) and its faces (rpc-*.c over
 * WebSocket, src/api/ over HTTP). The agent core implements it; the faces
 * only use it. Extend it; do not change existing signatures without telling
 * the other side.
 *
 * Threads: run_start/run_abort/run_detach and the query functions may be
 * called from any thread. Sink callbacks run on the agent's own thread (the
 * libcurl multi thread; on_end of a run whose sinks are all any_thread on
 * the store writer) and must not block: copy, post, return. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;
struct workq;
struct agent_rt;
struct run;

/* ---- the runtime ------------------------------------------------------- */

struct agent_rt_opts {
	struct store *store;	/* sessions, transcripts, idempotency */
	const char *state_dir;
};

int agent_rt_new(const struct agent_rt_opts *o, struct agent_rt **out);

/* Who hears about runs and session changes (the WS face registers one;
 * the composition root wires it). Both callbacks must not block. */
struct agent_observer {
	/* A run started (any face), before it can emit: attach sinks here.
	 * Runs on the thread that called run_start (the store writer for
	 * run_start_async). Not called for a run
	 * that joined an existing one or replays a finished one, nor when
	 * listening says nobody listens (a client that connects later does
	 * not get that run's events). */
	void (*on_run)(void *arg, struct run *r);
	/* A session changed: event "session.message" (payload {sessionKey,
	 * message, messageId, messageSeq}) or "sessions.changed" (payload
	 * {sessionKey, reason, ts, ...row}). payload is stolen. Any thread. */
	void (*on_session)(void *arg, const char *event,
			   const char *session_key, json_t *payload);
	/* Optional, any thread, cheap: 0 when nobody would get run events
	 * now (no client connected); on_run is then not called, and a run
	 * nobody can see may commit its start with its end. */
	int (*listening)(void *arg);
	/* Optional, any thread, cheap: 0 when no client subscribed to
	 * session events (sessions.subscribe, sessions.messages.subscribe);
	 * the core then skips building them (no row reads or JSON in the
	 * store writer). Without it, listening decides. */
	int (*subscribed)(void *arg);
	/* Optional: called on the agent thread once per iteration of its
	 * loop, after the iteration's jobs, transfers and timers and before
	 * it waits for the next ones. Callbacks that run on the agent thread
	 * (agent_on_thread) may collect what they would hand to another
	 * thread and hand it over here, once per iteration: nothing waits
	 * past the iteration that produced it. Must not block. */
	void (*flush)(void *arg);
	void *arg;
};
void agent_rt_set_observer(struct agent_rt *rt, const struct agent_observer *o);
/* How many store jobs of runs and session writes were given an array for
 * session events (built) and how many were not because nobody subscribed
 * (skipped), since start. Any thread. */
void agent_session_event_counts(struct agent_rt *rt, int64_t *built,
				int64_t *skipped);
/* Stop: abort every run (status RUN_ABORTED, sinks get on_end) with a
 * bounded wait; from then on run_start and agent_embed fail with
 * "gateway is stopping". The runtime stays valid for late callers until
 * agent_rt_free, which stops it first if needed. */
void agent_rt_stop(struct agent_rt *rt, int wait_ms);
/* Stop (see agent_rt_stop) and free. GW_EBUSY, and nothing freed, when
 * runs are still ending (their store jobs would reach the runtime after
 * it was freed); the caller may call it again later. */
int agent_rt_free(struct agent_rt *rt, int wait_ms);

/* Agents from the current config snapshot: agents.entries.<id> (and the
 * legacy agents.list), default "main". New references. */
json_t *agent_list(struct agent_rt *rt);		/* agents.list payload */
const char *agent_default_id(struct agent_rt *rt);	/* borrowed, stable */
/* 1 if id names a configured agent (case-insensitive; "main" always). */
int agent_exists(struct agent_rt *rt, const char *id);
/* models.list payload: {models:[{id, name, provider, contextWindow?, ...}]} */
json_t *agent_models(struct agent_rt *rt);

/* ---- runs ---------------------------------------------------------------- */

enum run_status { RUN_OK = 0, RUN_ERROR, RUN_ABORTED, RUN_TIMEOUT };

struct run_result {
	enum run_status status;
	const char *run_id;
	const char *session_key;
	const char *text;		/* the full assistant text ("" if none) */
	const json_t *tool_calls;	/* complete calls, OpenAI shape
					 * [{id,type:"function",function:{name,
					 * arguments}}], or NULL */
	const char *finish_reason;	/* "stop", "length", "tool_calls" */
	int64_t input_tokens;
	int64_t output_tokens;
	const char *model;		/* "provider/model" that answered */
	const char *error;		/* when status != RUN_OK: a clear
					 * message naming provider and status */
	int http_status;		/* suggested HTTP status for errors */
	int64_t started_at, ended_at;	/* epoch ms */
};

/* A consumer of one run. Several may be attached (HTTP SSE response, WS
 * event fan-out, ...). The transcript is written by the core itself. */
struct run_sink {
	void (*on_delta)(void *arg, const char *text, size_t len);
	/* One streamed tool-call delta, OpenAI chunk shape (borrowed):
	 * {index, id?, type?, function:{name?, arguments?}}. May be NULL. */
	void (*on_tool_call)(void *arg, const json_t *delta);
	/* Exactly once, last. res and its strings are valid during the call. */
	void (*on_end)(void *arg, const struct run_result *res);
	void *arg;
	/* 1: on_end only copies and hands off under its own lock, so it
	 * may run on any thread. When every sink of a run says so, on_end
	 * runs on the store writer right after the end's commit (one
	 * thread hand-off less per run); else on the agent thread. */
	int any_thread;
};

struct run_request {
	const char *agent_id;		/* NULL = default agent */
	const char *session_key;	/* required (the face derives it) */
	const char *run_id;		/* idempotency key; NULL → new uuid */
	/* OpenAI chat messages (system/developer/user/assistant/tool, content
	 * string or parts). Stolen. */
	json_t *messages;
	/* 1: prepend the stored transcript of the session (chat.send,
	 * agent); 0: messages already carry the history (HTTP clients). */
	int use_history;
	const char *extra_system;	/* request-supplied system text */
	const char *model_override;	/* "provider/model" or bare id */
	json_t *tools;			/* stolen, may be NULL */
	json_t *tool_choice;		/* stolen, may be NULL */
	/* Upstream sampling params passed through (temperature, top_p,
	 * max_tokens, stop, seed, presence_penalty, ...). Stolen, may be
	 * NULL. */
	json_t *params;
	const char *channel;		/* "webchat", "openai", ... */
	/* Bound on the whole answer (0 = none). The provider's
	 * timeoutSeconds bounds silence: connect, first byte, stream gaps. */
	int64_t timeout_ms;
	int origin;			/* out: enum run_origin */
	/* 1 when the face has just generated session_key (a new uuid key):
	 * no stored session can exist, so its settings are not read. */
	int new_session;
};

/* Start a run; sink (copied; may be NULL) is a consumer, attached after
 * the observer's (so WS events go out before the caller's on_end). On
 * success *out is a reference the caller releases with run_unref, and
 * rq->origin says whether the run is new, joined or a replay (see
 * enum run_origin). Validation errors (unknown agent, bad model override,
 * no model configured) return GW_EINVAL with a message in *err. The
 * model is rq->model_override, else the session's sessions.patch model,
 * else the agent's chain (primary, then fallbacks when the primary fails
 * before its first token). Runs of one session never overlap: a run
 * started while the session has a live run waits for its turn (FIFO; its
 * history, and its user message in the transcript, come after the answer
 * before it); aborting a waiting run ends it without an upstream call. */
int run_start(struct agent_rt *rt, struct run_request *rq,
	      const struct run_sink *sink, struct run **out, char **err);
/* What run_start_async tells its caller, once: rc GW_OK with the run's
 * id and origin (RUN_NEW: started, or queued behind its session's live
 * run or waiting for a lane slot; RUN_JOINED: a live run with that id;
 * RUN_REPLAY: a stored one, status its stored status "ok", "error",
 * "timeout" or "running"), or an error (GW_EINVAL: validation, as
 * run_start's; GW_EUNAVAIL: stopping) with err. Valid during the call. */
struct run_started {
	int rc;
	int origin;
	const char *run_id;
	const char *status;
	const char *err;
};
typedef void (*run_started_fn)(void *arg, const struct run_started *st);
/* run_start for a thread that may not read the store (chat.send on the
 * lws thread), without a sink (the caller sees the run through the
 * observer, whose on_run runs on the store writer). Here: validation
 * (the agent) and the join of a live run with rq->run_id; then one store
 * job (one transaction) joins a run with that id started since, or
 * replays a stored one (its idempotency row), or reads the session's
 * model override and starts the run, writing its start (history read in
 * the same transaction) unless it is queued or waits for a lane slot.
 * done runs exactly once: right here (join, validation error) or on the
 * store writer after the start's commit. rq is taken as run_start takes
 * it (its strings are copied). */
void run_start_async(struct agent_rt *rt, struct run_request *rq,
		     run_started_fn done, void *arg);
/* 1 when run_start reads nothing from the store for rq: its session key
 * was just generated (new_session) and it has no idempotency key. Such a
 * start may run on the agent thread (agent_post): the set-up is CPU work
 * (config snapshot, JSON) and the cached workspace prompt's stat()s, and
 * the upstream request starts without another thread hand-off. */
int run_start_light(const struct run_request *rq);
/* 1 when the caller runs on rt's agent thread (its loop calls the
 * observer's flush before it waits). */
int agent_on_thread(struct agent_rt *rt);
/* Run fn(arg) on the agent thread. -1 when stopping (fn not called). */
int agent_post(struct agent_rt *rt, void (*fn)(void *arg), void *arg);
/* Add / remove a consumer. A detached sink gets no more callbacks once
 * run_detach returns (on_end is not called for it). A consumer that goes
 * away never stops the run for the others. */
int run_attach(struct run *r, const struct run_sink *sink);
void run_detach(struct run *r, const struct run_sink *sink);
/* Abort: the upstream request is cancelled; status RUN_ABORTED; the
 * transcript records the partial text as aborted. */
void run_abort(struct run *r);
const char *run_id(const struct run *r);
void run_unref(struct run *r);
/* How run_start got its run (run_request.origin): a new one, an
 * in-flight run with the same idempotency key (the sink was attached to
 * it), or a replay of a finished one (kept 5 min, across restarts): its
 * sink gets on_end at once with the stored result and no upstream call is
 * made. */
enum run_origin { RUN_NEW = 0, RUN_JOINED, RUN_REPLAY };
const char *run_session_key(const struct run *r);
const char *run_agent_id(const struct run *r);
int64_t run_started_at(const struct run *r);
/* Find a live run by id (new reference) or NULL. */
struct run *run_find(struct agent_rt *rt, const char *run_id);
/* Runs in flight: *live running now, *queued waiting behind another run
 * of their session (diagnostics.lanes). Any thread. */
void run_counts(struct agent_rt *rt, int *live, int *queued);
/* agent.wait: fn gets exactly once, on the agent thread, a new object
 * {runId, status:"ok"|"error"|"timeout", startedAt?, endedAt?, error?}
 * (status "timeout" when the run did not end within timeout_ms; an unknown
 * id also waits for the deadline). payload is stolen by fn. */
typedef void (*run_wait_fn)(void *arg, json_t *payload);
int run_wait(struct agent_rt *rt, const char *run_id, int64_t timeout_ms,
	     run_wait_fn fn, void *arg);
/* Ids of the live runs of a session (new array of strings). */
json_t *run_ids_of_session(struct agent_rt *rt, const char *session_key);
/* Abort every live run of a session; returns the count. */
int run_abort_session(struct agent_rt *rt, const char *session_key);

/* ---- embeddings ------------------------------------------------------------ */

/* Completion of agent_embed, on the agent thread. vectors: array of arrays
 * of reals (borrowed), or NULL with err set. */
typedef void (*agent_embed_fn)(void *arg, const json_t *vectors,
			       int64_t prompt_tokens, const char *err,
			       int http_status);
/* Embed inputs (array of strings, stolen) with the agent's embedding
 * provider (agents.*.memorySearch / models.providers; override allowed). */
int agent_embed(struct agent_rt *rt, const char *agent_id,
		const char *model_override, json_t *inputs, agent_embed_fn fn,
		void *arg, char **err);

/* ---- session keys (SPEC §3) ------------------------------------------------ */

#define AGENT_SESSION_KEY_MAX 512
#define AGENT_HTTP_USER_MAX 256	/* the OpenAI `user` field */

/* 1 when key uses a reserved internal namespace (subagent:, cron:, acp:,
 * also after an "agent:<id>:" prefix). */
int agent_session_key_reserved(const char *key);
/* "agent:<id>:main" (id lowercased). New string. */
char *agent_session_key_main(const char *agent_id);
/* The agent id of an "agent:<id>:..." key (new string) or NULL. */
char *agent_session_key_agent(const char *key);
/* THE rule for a session key a client names, used by every face (WS
 * methods, OpenAI and Responses x-openclaw-session-key, hooks sessionKey,
 * /tools/invoke sessionKey): AGENT_KEY_INVALID when empty, longer than
 * AGENT_SESSION_KEY_MAX, with control characters, or an "agent:" key
 * without a non-empty "<id>:<rest>"; AGENT_KEY_RESERVED when it uses a
 * reserved internal namespace (subagent:, cron:, acp:), also after an
 * "agent:<id>:" prefix (agent:main:cron:x). Each face words the error in
 * its own protocol's shape. */
enum agent_key_verdict { AGENT_KEY_OK = 0, AGENT_KEY_INVALID,
			 AGENT_KEY_RESERVED };
enum agent_key_verdict agent_session_key_check(const char *key);
/* Canonical key for a WS-supplied key: "agent:<id>:rest" is kept (id
 * lowercased); a bare key becomes "agent:<default>:<key>". GW_EINVAL with
 * *err when agent_session_key_check refuses it. */
int agent_session_key_canon(struct agent_rt *rt, const char *key, char **out,
			    char **err);
/* Session key of an HTTP request: explicit key (agent_session_key_check;
 * reserved ones refused with the upstream message) >
 * "agent:<id>:<prefix>-user:<user>" > "agent:<id>:<prefix>:<uuid>".
 * prefix: "openai" or "openresponses". */
int agent_session_key_for_http(const char *agent_id, const char *prefix,
			       const char *user, const char *explicit_key,
			       char **out, char **err);

/* ---- sessions (rows and transcripts in SQLite) ------------------------------ */

/* sessions.list payload for params (SessionsListParams). */
json_t *session_list(struct agent_rt *rt, const json_t *params);
/* One row (GatewaySessionRow shape) or NULL when unknown. */
json_t *session_get(struct agent_rt *rt, const char *key);
/* sessions.preview payload. */
json_t *session_preview(struct agent_rt *rt, const json_t *keys, int limit,
			int max_chars);
/* chat.history payload: {sessionKey, sessionId, messages[], ...}. */
json_t *session_history(struct agent_rt *rt, const char *key, int limit,
			int max_chars);
/* Patch organisation fields (label, thinkingLevel, fastMode, verboseLevel,
 * sendPolicy, model, ...; null clears). Creates the row when absent.
 * *entry: the new row. GW_EINVAL with *err on a bad field. */
int session_patch(struct agent_rt *rt, const char *key, const json_t *patch,
		  json_t **entry, char **err);
/* New session id, empty history (the old transcript stays in the
 * database under its old session id). *entry: the new row. */
int session_reset(struct agent_rt *rt, const char *key, const char *reason,
		  json_t **entry);
/* Delete the row (and its transcript when delete_transcript). *deleted:
 * 1 when a row existed. */
int session_delete(struct agent_rt *rt, const char *key,
		   int delete_transcript, int *deleted);
/* Append an assistant note to the transcript (chat.inject). *message_id:
 * new string. */
int session_inject(struct agent_rt *rt, const char *key, const char *text,
		   const char *label, char **message_id);
/* A finished or live run's status for agent.wait: GW_ENOTFOUND when the
 * id is unknown (or expired). *result: {runId, status, startedAt?,
 * endedAt?, error?} (new ref). */
int session_run_status(struct agent_rt *rt, const char *run_id,
		       json_t **result);

/* ---- needed by the HTTP face (/tools/invoke, hooks) ------------------------
 * Added by the HTTP face (issue 4 part B); implemented by the agent core.
 * Query functions run on a worker thread (they read SQLite) and return new
 * references. */

/* The sessions_list tool (the upstream tool shape): {count, sessions:[{key,
 * sessionId, agentId, kind, channel, archived, pinned, label?,
 * displayName?, derivedTitle?, lastMessagePreview?, updatedAt, model?,
 * totalTokens?, status?, messages?}], hasMore, nextOffset?, limitApplied},
 * newest first. args: the tool arguments (limit (default 100, max 200),
 * offset, agentId, search, label, activeMinutes, kinds[], messageLimit,
 * includeLastMessage, includeDerivedTitles). */
json_t *agent_sessions_list(struct agent_rt *rt, const json_t *args);
/* The sessions_history tool: {sessionKey, messages:[...] (the chat.history
 * messages without usage/cost/details, long texts cut, tool messages
 * dropped unless include_tools, oldest dropped past 80 KB), truncated,
 * droppedMessages, contentTruncated, contentRedacted, bytes}; the last
 * limit messages (<= 0: 200). NULL when the session does not exist. */
json_t *agent_session_history(struct agent_rt *rt, const char *session_key,
			      int limit, int include_tools);
/* {key, sessionId, agentId, kind, model?, modelProvider?, modelOverride
 * (string|null), channel?, label?, status?, inputTokens, outputTokens,
 * totalTokens, createdAt, updatedAt, running:bool, runs:[ids],
 * lastRunId?, lastRunError?}; NULL when the session does not exist. */
json_t *agent_session_status(struct agent_rt *rt, const char *session_key);
/* The `wake` method and the /wake hook: queue text as a system event for
 * the session (NULL: the agent's main session). It goes into the next
 * turn of that session; mode "now" also starts that turn at once (queued
 * behind a running one), "next-heartbeat" waits for the next turn.
 * GW_EINVAL with *err on a bad argument; *run_id (may be NULL) gets the
 * id of the started run (mode "now") or NULL. */
int agent_wake(struct agent_rt *rt, const char *agent_id,
	       const char *session_key, const char *text, const char *mode,
	       char **run_id, char **err);
