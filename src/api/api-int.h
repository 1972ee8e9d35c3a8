/* Shared by the HTTP face files only (api.c, api-openai.c, api-responses.c,
 * api-embeddings.c, api-tools.c, api-hooks.c, api-cors.c). */
#pragma once

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent/agent.h"
#include "api/api.h"

struct gw_config;
struct http_async;
struct http_req;

#define API_RESP_MAP_MAX 4096	/* previous_response_id entries kept */

/* previous_response_id → session (responses), bounded ring. */
struct api_resp_map {
	pthread_mutex_t mu;
	struct api_resp_ent {
		char id[48];
		char *session_key;
		char *agent_id;
		char *user;
	} *ents;
	size_t n, next;
};

struct api {
	struct api_deps d;
	struct limiter *hook_limiter;	/* hooks: failures per client IP */
	struct api_resp_map resp_map;
	/* hooks.token resolved once per config snapshot (a SecretRef may
	 * run a process): the snapshot it came from (referenced, so the
	 * pointer identifies it) and the secret. MHD thread only. */
	struct gw_config *hook_tok_cfg;
	char *hook_tok;
};

/* ---- api.c: helpers ------------------------------------------------------ */

/* OpenAI error JSON {"error":{"message","type"}} (owned). */
char *api_error_json(const char *type, const char *msg);
void api_error(struct http_req *r, int status, const char *type,
	       const char *msg);
/* Reply with v (stolen) as compact JSON. */
void api_reply_json(struct http_req *r, int status, json_t *v);
/* A boolean at a dotted path of the config file, else def. */
int api_cfg_bool(const struct gw_config *c, const char *path, int def);
/* The body as a JSON object; NULL after answering 400 itself. */
json_t *api_body_object(struct http_req *r);
/* Gateway HTTP auth (Bearer); 1 when allowed, else answered 401/429. */
int api_authorize(struct api *a, struct http_req *r,
		  const struct gw_config *cfg);
/* A header value, trimmed; NULL when absent or empty. */
const char *api_header(struct http_req *r, const char *name);

/* ---- api-openai.c: shared by the OpenAI-shaped endpoints ---------------- */

/* Resolve the agent: x-openclaw-agent-id (x-openclaw-agent), then model,
 * then the default agent. On success *agent_id (owned, lowercase) and,
 * when model names a provider model that the gateway lists,
 * *model_override (owned). Else -1 with the message in *err (owned). */
int api_openai_agent(struct api *a, struct http_req *r,
		     const struct gw_config *cfg, const char *model,
		     char **agent_id, char **model_override, char **err);
/* Session key: x-openclaw-session-key, else from user, else a new one;
 * prefix "openai" or "openresponses". -1 with *err on a reserved key. */
int api_openai_session(struct http_req *r, const char *agent_id,
		       const char *prefix, const char *user, char **key,
		       char **err);
/* x-openclaw-model, x-openclaw-message-channel (defaults applied). */
const char *api_openai_channel(struct http_req *r);

void api_openai_models(struct api *a, struct http_req *r,
		       struct gw_config *cfg);
void api_openai_model(struct api *a, struct http_req *r,
		      struct gw_config *cfg);
void api_openai_chat(struct api *a, struct http_req *r,
		     struct gw_config *cfg);

/* The HTTP side of an agent run, embedded first in the state of chat
 * completions and responses; mu guards that state as well. */
struct api_run {
	pthread_mutex_t mu;
	int refs;
	struct api *a;
	struct http_async *as;	/* NULL once answered */
	struct run *run;
	struct run_sink sink;	/* callbacks set by the endpoint */
	int ended, abort_on_gone;
	/* The run is started on a worker (api_run_start): started once
	 * run_start returned there; gone when the client left before. */
	int started, gone;
	/* Frees the endpoint state (h included) when the last ref goes. */
	void (*release)(struct api_run *h);
};

/* Take over r's reply (deferred) with 3 references: the sink, the
 * handler, on_done (a client gone early detaches the sink). */
void api_run_init(struct api_run *h, struct api *a, struct http_req *r,
		  void (*release)(struct api_run *h));
/* run_start with h's sink, on a worker thread (run set-up reads SQLite and
 * files: never on the libmicrohttpd thread). rq's strings are copied and
 * its JSON stolen. Once the run started, begun(h) runs there (may be
 * NULL); on failure the job answers 400 (GW_EINVAL) or 503 and drops the
 * sink's reference. Inline when there is no worker pool. */
void api_run_start(struct api_run *h, struct run_request *rq,
		   void (*begun)(struct api_run *h));
void api_run_unref(struct api_run *h);

/* ---- api-responses.c, api-embeddings.c, api-tools.c --------------------- */

void api_responses(struct api *a, struct http_req *r, struct gw_config *cfg);
/* api-files.c: an input_file part → its model-visible <file> block for
 * the system prompt (*block, new string); -1 with *err (a 400 message)
 * for url and PDF sources, bad data, a refused type or a size limit. */
int api_input_file(const struct gw_config *cfg, const json_t *part,
		   char **block, char **err);
void api_resp_map_init(struct api_resp_map *m);
void api_resp_map_free(struct api_resp_map *m);
void api_embeddings(struct api *a, struct http_req *r, struct gw_config *cfg);
void api_tools_invoke(struct api *a, struct http_req *r,
		      struct gw_config *cfg);

/* ---- api-hooks.c ------------------------------------------------------------ */

/* When hooks are enabled and path is <base> or <base>/...: the length of
 * <base> in path; else 0. */
size_t api_hooks_match(const struct gw_config *cfg, const char *path);
size_t api_hooks_body_limit(const struct gw_config *cfg);
/* sub: the path after <base> ("" or "/wake", ...). */
/* Query-token, method and token checks of a hook request, on the headers
 * alone; 1 when answered (400/405/401/429), else the request is marked
 * authorized and api_hooks does not check again. */
int api_hooks_preauth(struct api *a, struct http_req *r,
		      struct gw_config *cfg);
void api_hooks(struct api *a, struct http_req *r, struct gw_config *cfg,
	       const char *sub);

/* ---- api-cors.c ------------------------------------------------------------- */

/* Add CORS headers for an allowed Origin. Returns 1 when the request was
 * a preflight and has been answered. allow: the route's methods or NULL
 * (unknown route). */
int api_cors(struct http_req *r, const struct gw_config *cfg,
	     const char *allow);

/* Fixed-shape JSON replies written as text (the bytes store_json_dump
 * gives for the same tree): a string constant, a decimal integer. */
struct store_json_buf;
#define API_JSON_LIT(b, lit) store_json_raw((b), (lit), sizeof(lit) - 1)
void api_json_int(struct store_json_buf *b, int64_t v);
