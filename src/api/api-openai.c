/* The OpenAI-compatible face: GET /v1/models, /v1/models/{id} and
 * POST /v1/chat/completions (JSON and SSE), plus the model → agent and
 * session-key rules shared with /v1/responses and /v1/embeddings
 * (reference/http-config-cli.md §1.3-1.5).
 *
 * A chat request becomes one run of the agent core; its sink turns deltas
 * into SSE chunks (or collects nothing and answers once at the end). The
 * sink runs on the agent thread; the HTTP side is an http_async handle, so
 * no MHD call blocks. When the client goes away the sink is detached on a
 * worker (run_detach may wait for a callback in flight), and a stateless
 * run nobody else can see is aborted. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "agent/agent.h"
#include "api/api-int.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/http.h"
#include "store/store-sessions.h"

#define OA_MAX_IMAGES 8
#define OA_MAX_STOP 4
#define OA_EMPTY_REPLY "No response from OpenClaw."
#define OA_BAD_MODEL "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`."

/* ---- model → agent, session key ------------------------------------------- */

static int api_openai_id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-')
			return 0;
	return 1;
}

static char *api_openai_lower(const char *s)
{
	char *d = xstrdup(s), *p;

	for (p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* The agent named by a model string: 1 with *id (owned; NULL = default),
 * 0 when it is not an openclaw model id. */
static int api_openai_model_agent(const char *model, char **id)
{
	*id = NULL;
	if (!model || !*model || strcasecmp(model, "openclaw") == 0 ||
	    strcasecmp(model, "openclaw/default") == 0)
		return 1;
	if (strncasecmp(model, "openclaw", 8) == 0 &&
	    (model[8] == '/' || model[8] == ':') &&
	    api_openai_id_ok(model + 9)) {
		*id = api_openai_lower(model + 9);
		return 1;
	}
	if (strncasecmp(model, "agent:", 6) == 0 &&
	    api_openai_id_ok(model + 6)) {
		*id = api_openai_lower(model + 6);
		return 1;
	}
	return 0;
}

/* "provider/model" ids the gateway lists (new reference, maybe empty). */
static json_t *api_openai_provider_ids(struct api *a)
{
	json_t *out = json_array(), *m, *v;
	size_t i;

	if (!a->d.agents)
		return out;
	m = agent_models(a->d.agents);
	json_array_foreach(json_object_get(m, "models"), i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		const char *pv = json_string_value(json_object_get(v,
							       "provider"));
		char *full;

		if (!id)
			continue;
		if (pv && !(strncmp(id, pv, strlen(pv)) == 0 &&
			    id[strlen(pv)] == '/'))
			full = xasprintf("%s/%s", pv, id);
		else
			full = xstrdup(id);
		json_array_append_new(out, json_pack("{s:s,s:s}", "id", full,
			"owned_by", pv ? pv : "openclaw"));
		free(full);
	}
	json_decref(m);
	return out;
}

static int api_openai_provider_listed(struct api *a, const char *model)
{
	json_t *ids = api_openai_provider_ids(a), *v;
	size_t i;
	int found = 0;

	json_array_foreach(ids, i, v)
		if (strcmp(json_string_value(json_object_get(v, "id")),
			   model) == 0)
			found = 1;
	json_decref(ids);
	return found;
}

int api_openai_agent(struct api *a, struct http_req *r,
		     const struct gw_config *cfg, const char *model,
		     char **agent_id, char **model_override, char **err)
{
	const char *h = api_header(r, "x-openclaw-agent-id");
	const char *mh = api_header(r, "x-openclaw-model");
	char *id = NULL;

	*agent_id = NULL;
	*model_override = NULL;
	*err = NULL;
	if (!h)
		h = api_header(r, "x-openclaw-agent");
	if (!api_openai_model_agent(model, &id)) {
		/* A provider model the gateway lists (pain point: model
		 * pickers) runs on the default agent with that model. */
		if (api_cfg_bool(cfg, "gateway.http.models."
				 "includeProviderModels", 0) &&
		    api_openai_provider_listed(a, model)) {
			*model_override = xstrdup(model);
		} else {
			*err = xstrdup(OA_BAD_MODEL);
			return -1;
		}
	}
	if (h) {
		free(id);
		if (!api_openai_id_ok(h)) {
			*err = xasprintf("Invalid `x-openclaw-agent-id`.");
			goto fail;
		}
		id = api_openai_lower(h);
	}
	if (!id && a->d.agents)
		id = api_openai_lower(agent_default_id(a->d.agents));
	if (!id)
		id = xstrdup("main");
	if (a->d.agents && !agent_exists(a->d.agents, id)) {
		*err = xasprintf("Unknown agent '%s'.", id);
		goto fail;
	}
	if (mh) {
		if (strlen(mh) > 256 || strchr(mh, ' ')) {
			*err = xstrdup("Invalid `x-openclaw-model`.");
			goto fail;
		}
		free(*model_override);
		*model_override = xstrdup(mh);
	}
	*agent_id = id;
	return 0;
fail:
	free(id);
	free(*model_override);
	*model_override = NULL;
	return -1;
}

int api_openai_session(struct http_req *r, const char *agent_id,
		       const char *prefix, const char *user, char **key,
		       char **err)
{
	*key = NULL;
	*err = NULL;
	return agent_session_key_for_http(agent_id, prefix, user,
		api_header(r, "x-openclaw-session-key"), key, err) == GW_OK
		? 0 : -1;
}

const char *api_openai_channel(struct http_req *r)
{
	const char *c = api_header(r, "x-openclaw-message-channel");

	return c && strlen(c) <= 64 ? c : "webchat";
}

/* ---- GET /v1/models ------------------------------------------------------------ */

static json_t *api_openai_model_obj(const char *id, const char *owner)
{
	return json_pack("{s:s,s:s,s:i,s:s,s:[]}", "id", id, "object",
			 "model", "created", 0, "owned_by", owner,
			 "permission");
}

static void api_openai_add_id(json_t *data, const char *id,
			      const char *owner)
{
	json_t *v;
	size_t i;

	json_array_foreach(data, i, v)
		if (strcmp(json_string_value(json_object_get(v, "id")),
			   id) == 0)
			return;
	json_array_append_new(data, api_openai_model_obj(id, owner));
}

/* Every model object /v1/models lists (new reference). */
static json_t *api_openai_model_list(struct api *a,
				     const struct gw_config *cfg)
{
	json_t *data = json_array(), *agents = NULL, *arr, *v;
	const char *def = a->d.agents ? agent_default_id(a->d.agents) :
		"main";
	char *id;
	size_t i;

	api_openai_add_id(data, "openclaw", "openclaw");
	api_openai_add_id(data, "openclaw/default", "openclaw");
	id = xasprintf("openclaw/%s", def);
	api_openai_add_id(data, id, "openclaw");
	free(id);
	if (a->d.agents) {
		agents = agent_list(a->d.agents);
		arr = json_is_array(agents) ? agents :
			json_object_get(agents, "agents");
		json_array_foreach(arr, i, v) {
			const char *aid = json_string_value(
				json_object_get(v, "id"));

			if (!aid)
				continue;
			id = xasprintf("openclaw/%s", aid);
			api_openai_add_id(data, id, "openclaw");
			free(id);
		}
		json_decref(agents);
	}
	if (api_cfg_bool(cfg, "gateway.http.models.includeProviderModels",
			 0)) {
		json_t *pm = api_openai_provider_ids(a);

		json_array_foreach(pm, i, v)
			api_openai_add_id(data,
				json_string_value(json_object_get(v, "id")),
				json_string_value(json_object_get(v,
							"owned_by")));
		json_decref(pm);
	}
	return data;
}

void api_openai_models(struct api *a, struct http_req *r,
		       struct gw_config *cfg)
{
	api_reply_json(r, 200, json_pack("{s:s,s:o}", "object", "list",
		"data", api_openai_model_list(a, cfg)));
}

void api_openai_model(struct api *a, struct http_req *r,
		      struct gw_config *cfg)
{
	const char *id = http_req_path(r) + strlen("/v1/models/");
	json_t *data, *v;
	size_t i;
	char *msg, *agent = NULL;

	if (!*id) {
		api_error(r, 400, "invalid_request_error",
			  "Missing model id.");
		return;
	}
	if (strchr(id, '%')) {
		api_error(r, 400, "invalid_request_error",
			  "Invalid model id encoding.");
		return;
	}
	if (!api_openai_model_agent(id, &agent) &&
	    !(api_cfg_bool(cfg, "gateway.http.models.includeProviderModels",
			   0) && strchr(id, '/'))) {
		api_error(r, 400, "invalid_request_error", "Invalid model id.");
		return;
	}
	free(agent);
	data = api_openai_model_list(a, cfg);
	json_array_foreach(data, i, v) {
		if (strcasecmp(json_string_value(json_object_get(v, "id")),
			       id) == 0) {
			api_reply_json(r, 200, json_incref(v));
			json_decref(data);
			return;
		}
	}
	json_decref(data);
	msg = xasprintf("Model '%s' not found.", id);
	api_error(r, 404, "invalid_request_error", msg);
	free(msg);
}

/* ---- POST /v1/chat/completions: validation ---------------------------------- */

static int oa_num_in(const json_t *body, const char *k, double lo, double hi,
		     char **err)
{
	const json_t *v = json_object_get(body, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v) || json_number_value(v) < lo ||
	    json_number_value(v) > hi || isnan(json_number_value(v))) {
		*err = xasprintf("`%s` must be a number between %g and %g.",
				 k, lo, hi);
		return -1;
	}
	return 0;
}

static int oa_pos_int(const json_t *body, const char *k, char **err)
{
	const json_t *v = json_object_get(body, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		*err = xasprintf("`%s` must be a positive integer.", k);
		return -1;
	}
	return 0;
}

/* tools: function tools only, each with a name. */
static int oa_check_tools(const json_t *tools, char **err)
{
	const json_t *t;
	size_t i;

	if (!tools || json_is_null(tools))
		return 0;
	if (!json_is_array(tools)) {
		*err = xstrdup("`tools` must be an array.");
		return -1;
	}
	json_array_foreach(tools, i, t) {
		const char *ty = json_string_value(json_object_get(t, "type"));
		const json_t *fn = json_object_get(t, "function");

		if (!ty || strcmp(ty, "function") != 0 ||
		    !json_is_object(fn) ||
		    !json_is_string(json_object_get(fn, "name"))) {
			*err = xasprintf("`tools[%zu]` must be a function "
					 "tool with a name.", i);
			return -1;
		}
	}
	return 0;
}

static int oa_check_tool_choice(const json_t *tc, char **err)
{
	const char *s = json_string_value(tc);

	if (!tc || json_is_null(tc))
		return 0;
	if (s && (strcmp(s, "auto") == 0 || strcmp(s, "none") == 0 ||
		  strcmp(s, "required") == 0))
		return 0;
	if (json_is_object(tc)) {
		const char *ty = json_string_value(json_object_get(tc, "type"));

		if (ty && strcmp(ty, "function") == 0 &&
		    json_is_string(json_object_get(json_object_get(tc,
				"function"), "name")))
			return 0;
	}
	*err = xstrdup("`tool_choice` must be auto, none, required or "
		       "{type:\"function\",function:{name}}.");
	return -1;
}

static int oa_check_stop(const json_t *v, char **err)
{
	const json_t *e;
	size_t i;

	if (!v || json_is_null(v) || json_is_string(v))
		return 0;
	if (json_is_array(v) && json_array_size(v) <= OA_MAX_STOP) {
		json_array_foreach(v, i, e)
			if (!json_is_string(e))
				goto bad;
		return 0;
	}
bad:
	*err = xstrdup("`stop` must be a string or an array of at most 4 "
		       "strings.");
	return -1;
}

/* Content: a string, or parts of text / image_url (data: URLs only unless
 * allow_url). Counts images into *images, text into *has_text. */
static int oa_check_content(const json_t *c, int allow_url, int *images,
			    int *has_text, char **err)
{
	const json_t *p;
	size_t i;

	if (json_is_null(c) || !c)
		return 0;
	if (json_is_string(c)) {
		if (json_string_length(c) > 0)
			*has_text = 1;
		return 0;
	}
	if (!json_is_array(c)) {
		*err = xstrdup("Invalid content in `messages`.");
		return -1;
	}
	json_array_foreach(c, i, p) {
		const char *ty = json_string_value(json_object_get(p, "type"));

		if (ty && (strcmp(ty, "text") == 0 ||
			   strcmp(ty, "input_text") == 0)) {
			const char *t = json_string_value(json_object_get(p,
								  "text"));

			if (t && *t)
				*has_text = 1;
		} else if (ty && strcmp(ty, "image_url") == 0) {
			const json_t *iu = json_object_get(p, "image_url");
			const char *url = json_string_value(json_is_object(iu) ?
				json_object_get(iu, "url") : iu);

			if (!url || (strncmp(url, "data:", 5) == 0 ?
				     !strstr(url, ";base64,") :
				     !allow_url)) {
				*err = xstrdup("Invalid image_url content in "
					       "`messages`.");
				return -1;
			}
			(*images)++;
		}
	}
	return 0;
}

/* Append t to the system text (*sys, *len), "\n\n" between texts. */
static void oa_sys_append(char **sys, size_t *len, const char *t)
{
	size_t tl = strlen(t);

	*sys = xrealloc(*sys, *len + tl + 3);
	if (*len) {
		memcpy(*sys + *len, "\n\n", 2);
		*len += 2;
	}
	memcpy(*sys + *len, t, tl + 1);
	*len += tl;
}

/* Messages: system/developer joined into *system (owned); the rest copied
 * (role function → tool) into *out. */
static int oa_messages(const json_t *msgs, int allow_url, json_t **out,
		       char **system, char **err)
{
	json_t *res = json_array(), *m;
	const json_t *v;
	size_t i, sys_len = 0;
	char *sys = NULL;
	int last_user_ok = 0;

	*out = NULL;
	*system = NULL;
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		*err = xstrdup("Missing user message in `messages`.");
		goto fail;
	}
	json_array_foreach(msgs, i, v) {
		const char *role = json_string_value(json_object_get(v,
								  "role"));
		const json_t *c = json_object_get(v, "content");
		int images = 0, has_text = 0;

		if (!json_is_object(v) || !role) {
			*err = xasprintf("`messages[%zu]` must be an object "
					 "with a role.", i);
			goto fail;
		}
		if (oa_check_content(c, allow_url, &images, &has_text, err))
			goto fail;
		if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0) {
			const char *t = json_string_value(c);

			if (!t) {
				const json_t *p;
				size_t k;

				/* parts: join the texts */
				json_array_foreach(c, k, p) {
					t = json_string_value(
						json_object_get(p, "text"));
					if (!t)
						continue;
					oa_sys_append(&sys, &sys_len, t);
				}
				continue;
			}
			oa_sys_append(&sys, &sys_len, t);
			continue;
		}
		if (strcmp(role, "user") != 0 &&
		    strcmp(role, "assistant") != 0 &&
		    strcmp(role, "tool") != 0 &&
		    strcmp(role, "function") != 0) {
			*err = xasprintf("Invalid role '%s' in `messages`.",
					 role);
			goto fail;
		}
		if (images > OA_MAX_IMAGES) {
			*err = xasprintf("Too many images (max %d).",
					 OA_MAX_IMAGES);
			goto fail;
		}
		/* Shared with the request body, which is only read after
		 * this (and dropped): a copy only for a rewritten role. */
		if (strcmp(role, "function") == 0) {
			m = json_deep_copy(v);
			json_object_set_new(m, "role", json_string("tool"));
		} else {
			m = json_incref((json_t *)v);
		}
		if (strcmp(role, "user") == 0 || strcmp(role, "tool") == 0 ||
		    strcmp(role, "function") == 0)
			last_user_ok = has_text || images > 0;
		json_array_append_new(res, m);
	}
	if (!last_user_ok) {
		*err = xstrdup("Missing user message in `messages`.");
		goto fail;
	}
	*out = res;
	*system = sys;
	return 0;
fail:
	json_decref(res);
	free(sys);
	return -1;
}

/* Upstream parameters passed through (new reference). */
static json_t *oa_params(const json_t *body)
{
	static const char *const keys[] = { "temperature", "top_p", "stop",
		"seed", "presence_penalty", "frequency_penalty",
		"parallel_tool_calls", "response_format", "logit_bias" };
	json_t *p = json_object();
	const json_t *v;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		v = json_object_get(body, keys[i]);
		if (v && !json_is_null(v))
			json_object_set(p, keys[i], (json_t *)v);
	}
	v = json_object_get(body, "max_completion_tokens");
	if (!v || json_is_null(v))
		v = json_object_get(body, "max_tokens");
	if (v && !json_is_null(v))
		json_object_set(p, "max_tokens", (json_t *)v);
	return p;
}

static int oa_validate(const json_t *body, char **err)
{
	const json_t *v;

	if (oa_num_in(body, "temperature", 0, 2, err) ||
	    oa_num_in(body, "top_p", 0, 1, err) ||
	    oa_num_in(body, "frequency_penalty", -2, 2, err) ||
	    oa_num_in(body, "presence_penalty", -2, 2, err) ||
	    oa_pos_int(body, "max_tokens", err) ||
	    oa_pos_int(body, "max_completion_tokens", err) ||
	    oa_check_stop(json_object_get(body, "stop"), err) ||
	    oa_check_tools(json_object_get(body, "tools"), err) ||
	    oa_check_tool_choice(json_object_get(body, "tool_choice"), err))
		return -1;
	v = json_object_get(body, "seed");
	if (v && !json_is_null(v) && !json_is_integer(v)) {
		*err = xstrdup("`seed` must be an integer.");
		return -1;
	}
	v = json_object_get(body, "n");
	if (v && !json_is_null(v) && !(json_is_integer(v) &&
				       json_integer_value(v) == 1)) {
		*err = xstrdup("`n` must be 1.");
		return -1;
	}
	v = json_object_get(body, "stream");
	if (v && !json_is_null(v) && !json_is_boolean(v)) {
		*err = xstrdup("`stream` must be a boolean.");
		return -1;
	}
	v = json_object_get(body, "model");
	if (v && !json_is_null(v) && !json_is_string(v)) {
		*err = xstrdup(OA_BAD_MODEL);
		return -1;
	}
	v = json_object_get(body, "user");
	if (v && !json_is_null(v) && !json_is_string(v)) {
		*err = xstrdup("`user` must be a string.");
		return -1;
	}
	return 0;
}

/* ---- The HTTP side of a run (chat completions, responses) -------------- */

void api_run_unref(struct api_run *h)
{
	int left;

	pthread_mutex_lock(&h->mu);
	left = --h->refs;
	pthread_mutex_unlock(&h->mu);
	if (left > 0)
		return;
	if (h->run)
		run_unref(h->run);
	pthread_mutex_destroy(&h->mu);
	h->release(h);
}

static void api_run_ref(struct api_run *h)
{
	pthread_mutex_lock(&h->mu);
	h->refs++;
	pthread_mutex_unlock(&h->mu);
}

/* Worker: detach the sink of a client that went away. */
static void api_run_detach(void *arg)
{
	struct api_run *h = arg;
	int release = 0;

	if (h->abort_on_gone)
		run_abort(h->run);
	run_detach(h->run, &h->sink);
	pthread_mutex_lock(&h->mu);
	if (!h->ended) {
		h->ended = 1;
		release = 1;
		http_async_end(h->as);
		h->as = NULL;
	}
	pthread_mutex_unlock(&h->mu);
	if (release)
		api_run_unref(h);	/* the sink's reference */
	api_run_unref(h);		/* the job's */
}

/* MHD thread: the request is over; early when the client went away
 * before the answer was complete. Must not block: the detach (which may
 * wait for a callback in flight) runs on a worker, with this callback's
 * reference. A client gone before its run started is left to the start
 * job (it sees h->gone). */
static void api_run_done(void *arg, int early)
{
	struct api_run *h = arg;
	int pending;

	pthread_mutex_lock(&h->mu);
	pending = early && !h->started;
	if (pending)
		h->gone = 1;
	pthread_mutex_unlock(&h->mu);
	if (!pending && early && h->run && h->a->d.workers &&
	    workq_post(h->a->d.workers, api_run_detach, h) == 0)
		return;
	api_run_unref(h);
}

void api_run_init(struct api_run *h, struct api *a, struct http_req *r,
		  void (*release)(struct api_run *h))
{
	pthread_mutex_init(&h->mu, NULL);
	h->refs = 3;		/* the sink, the handler, on_done */
	h->a = a;
	h->release = release;
	h->as = http_reply_later(r);
	http_async_on_done(h->as, api_run_done, h);
}

/* A run to start on a worker: the request with owned strings. */
struct api_run_job {
	struct api_run *h;
	struct run_request rq;
	char *agent, *key, *run_id, *system, *override, *channel;
	void (*begun)(struct api_run *h);
};

static char *api_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void api_run_start_job(void *arg)
{
	struct api_run_job *j = arg;
	struct api_run *h = j->h;
	struct run *run = NULL;
	char *err = NULL, *s;
	int rc, gone;

	rc = run_start(h->a->d.agents, &j->rq, &h->sink, &run, &err);
	pthread_mutex_lock(&h->mu);
	h->run = run;
	h->started = 1;
	gone = h->gone;
	pthread_mutex_unlock(&h->mu);
	if (rc != GW_OK) {
		s = api_error_json("invalid_request_error",
				   err ? err : "cannot start the run");
		pthread_mutex_lock(&h->mu);
		if (!h->ended) {
			h->ended = 1;
			http_async_reply_json(h->as, rc == GW_EINVAL ? 400
							  : 503, s);
			h->as = NULL;
		}
		pthread_mutex_unlock(&h->mu);
		free(s);
		api_run_unref(h);	/* no sink */
	} else if (gone) {
		/* The client left while the run was starting: detach as
		 * api_run_done would have (with this job's reference). */
		api_run_ref(h);
		api_run_detach(h);
	} else if (j->begun) {
		j->begun(h);
	}
	api_run_unref(h);		/* the job's */
	free(err);
	free(j->agent);
	free(j->key);
	free(j->run_id);
	free(j->system);
	free(j->override);
	free(j->channel);
	free(j);
}

void api_run_start(struct api_run *h, struct run_request *rq,
		   void (*begun)(struct api_run *h))
{
	struct api_run_job *j = xcalloc(1, sizeof(*j));

	j->h = h;
	j->begun = begun;
	j->rq = *rq;
	j->rq.agent_id = j->agent = api_dup(rq->agent_id);
	j->rq.session_key = j->key = api_dup(rq->session_key);
	j->rq.run_id = j->run_id = api_dup(rq->run_id);
	j->rq.extra_system = j->system = api_dup(rq->extra_system);
	j->rq.model_override = j->override = api_dup(rq->model_override);
	j->rq.channel = j->channel = api_dup(rq->channel);
	/* The JSON now belongs to the job. */
	rq->messages = rq->tools = rq->tool_choice = rq->params = NULL;
	api_run_ref(h);
	/* A start that reads no store row goes straight to the agent
	 * thread (which then sends the upstream request at once), any
	 * other to a worker; never on this (libmicrohttpd) thread. */
	if (run_start_light(&j->rq) &&
	    agent_post(h->a->d.agents, api_run_start_job, j) == 0)
		return;
	if (!h->a->d.workers ||
	    workq_post(h->a->d.workers, api_run_start_job, j) != 0)
		api_run_start_job(j);
}

/* ---- POST /v1/chat/completions: the run ------------------------------------- */

struct oa_chat {
	struct api_run h;	/* first */
	int stream, include_usage;
	int began, deltas;
	char id[48];
	char *model;
	int64_t created;
	char *chunk_head;	/* a stream's "data: {"id":..."model":.." */
	size_t chunk_head_len;
};

static void oa_chat_release(struct api_run *h)
{
	struct oa_chat *c = (struct oa_chat *)h;

	free(c->model);
	free(c->chunk_head);
	free(c);
}

#define OA_LIT API_JSON_LIT

void api_json_int(struct store_json_buf *b, int64_t v)
{
	char num[24], *e = num + sizeof(num), *q = e;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--q = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--q = '-';
	store_json_raw(b, q, (size_t)(e - q));
}

/* The usage object of a reply. */
static void oa_usage_put(struct store_json_buf *b, const struct run_result *res)
{
	OA_LIT(b, "{\"prompt_tokens\":");
	api_json_int(b, res->input_tokens);
	OA_LIT(b, ",\"completion_tokens\":");
	api_json_int(b, res->output_tokens);
	OA_LIT(b, ",\"total_tokens\":");
	api_json_int(b, res->input_tokens + res->output_tokens);
	OA_LIT(b, "}");
}

/* The fields every reply object starts with: {"id":..,"object":..,
 * "created":..,"model":.. (no closing brace). */
static void oa_head_put(struct store_json_buf *b, const struct oa_chat *c,
			const char *object)
{
	OA_LIT(b, "{\"id\":");
	store_json_str(b, c->id, strlen(c->id));
	OA_LIT(b, ",\"object\":");
	store_json_str(b, object, strlen(object));
	OA_LIT(b, ",\"created\":");
	api_json_int(b, c->created);
	OA_LIT(b, ",\"model\":");
	store_json_str(b, c->model, strlen(c->model));
}

/* One SSE chunk, built as text (what json_pack + dump gave, byte for
 * byte): choices [{index 0, delta, finish_reason}] where delta is the
 * JSON text draw, or {"content": content} when content is set; neither:
 * no choices. usage: a usage member. c->h.mu held. */
static void oa_chat_emit(struct oa_chat *c, const char *draw,
			 const char *content, size_t clen, const char *finish,
			 const struct run_result *usage)
{
	struct store_json_buf b = {0};
	size_t n;
	char *line;

	/* The fields every chunk of the stream starts with, built once. */
	if (!c->chunk_head) {
		OA_LIT(&b, "data: ");
		oa_head_put(&b, c, "chat.completion.chunk");
		c->chunk_head = store_json_done(&b, &c->chunk_head_len);
		/* Kept for the stream's life: its size, not the buffer's. */
		c->chunk_head = xrealloc(c->chunk_head,
					 c->chunk_head_len + 1);
	}
	store_json_raw(&b, c->chunk_head, c->chunk_head_len);
	if (draw || content) {
		OA_LIT(&b, ",\"choices\":[{\"index\":0,\"delta\":");
		if (content) {
			OA_LIT(&b, "{\"content\":");
			store_json_str(&b, content, clen);
			OA_LIT(&b, "}");
		} else {
			store_json_raw(&b, draw, strlen(draw));
		}
		OA_LIT(&b, ",\"finish_reason\":");
		if (finish)
			store_json_str(&b, finish, strlen(finish));
		else
			OA_LIT(&b, "null");
		OA_LIT(&b, "}]");
	} else {
		OA_LIT(&b, ",\"choices\":[]");
	}
	if (usage) {
		OA_LIT(&b, ",\"usage\":");
		oa_usage_put(&b, usage);
	}
	OA_LIT(&b, "}\n\n");
	line = store_json_done(&b, &n);
	http_async_write_take(c->h.as, line, n);
}

/* A tool-call delta chunk: delta {"tool_calls": calls}. */
static void oa_chat_emit_tools(struct oa_chat *c, json_t *calls)
{
	json_t *d = json_pack("{s:o}", "tool_calls", calls);
	char *t = store_json_dump(d, NULL);

	if (t)
		oa_chat_emit(c, t, NULL, 0, NULL, NULL);
	free(t);
	json_decref(d);
}

/* Stream headers and the role chunk, once (c->h.mu held). */
static void oa_chat_begin(struct oa_chat *c)
{
	if (c->began || !c->stream)
		return;
	c->began = 1;
	http_async_header(c->h.as, "Cache-Control", "no-cache");
	http_async_stream_begin(c->h.as, 200,
				"text/event-stream; charset=utf-8");
	oa_chat_emit(c, "{\"role\":\"assistant\"}", NULL, 0, NULL, NULL);
}

static void oa_chat_delta(void *arg, const char *text, size_t len)
{
	struct oa_chat *c = arg;

	if (!c->stream || len == 0)
		return;
	pthread_mutex_lock(&c->h.mu);
	if (!c->h.ended) {
		oa_chat_begin(c);
		oa_chat_emit(c, NULL, text, len, NULL, NULL);
		c->deltas++;
	}
	pthread_mutex_unlock(&c->h.mu);
}

static void oa_chat_tool(void *arg, const json_t *delta)
{
	struct oa_chat *c = arg;

	if (!c->stream || !delta)
		return;
	pthread_mutex_lock(&c->h.mu);
	if (!c->h.ended) {
		oa_chat_begin(c);
		oa_chat_emit_tools(c, json_pack("[O]", delta));
		c->deltas++;
	}
	pthread_mutex_unlock(&c->h.mu);
}

static int oa_error_status(const struct run_result *res)
{
	if (res->status == RUN_TIMEOUT)
		return 504;
	if (res->http_status >= 400 && res->http_status <= 599)
		return res->http_status;
	return res->status == RUN_ABORTED ? 499 : 502;
}

static void oa_chat_reply(struct oa_chat *c, const struct run_result *res)
{
	const char *text = res->text ? res->text : "";
	int tools = res->tool_calls && json_array_size(res->tool_calls) > 0;
	const char *fr = tools ? "tool_calls" : res->finish_reason ?
			 res->finish_reason : "stop";
	struct store_json_buf b = {0};
	char *s;

	if (res->status != RUN_OK) {
		s = api_error_json("api_error", res->error ? res->error :
				   "internal error");
		http_async_reply_json(c->h.as, oa_error_status(res), s);
		free(s);
		c->h.as = NULL;
		return;
	}
	if (!*text && !tools)
		text = OA_EMPTY_REPLY;
	/* What json_pack + dump gave, built as text. */
	oa_head_put(&b, c, "chat.completion");
	OA_LIT(&b, ",\"choices\":[{\"index\":0,\"message\":"
		       "{\"role\":\"assistant\",\"content\":");
	if (*text)
		store_json_str(&b, text, strlen(text));
	else
		OA_LIT(&b, "null");
	if (tools) {
		OA_LIT(&b, ",\"tool_calls\":");
		store_json_val(&b, res->tool_calls);
	}
	OA_LIT(&b, "},\"finish_reason\":");
	store_json_str(&b, fr, strlen(fr));
	OA_LIT(&b, "}],\"usage\":");
	oa_usage_put(&b, res);
	OA_LIT(&b, "}");
	s = store_json_done(&b, NULL);
	http_async_reply_json(c->h.as, 200, s);
	c->h.as = NULL;
	free(s);
}

static void oa_chat_end(void *arg, const struct run_result *res)
{
	struct oa_chat *c = arg;
	int tools = res->tool_calls && json_array_size(res->tool_calls) > 0;

	pthread_mutex_lock(&c->h.mu);
	if (c->h.ended) {
		pthread_mutex_unlock(&c->h.mu);
		return;
	}
	c->h.ended = 1;
	if (!c->stream) {
		oa_chat_reply(c, res);
		goto out;
	}
	oa_chat_begin(c);
	if (res->status != RUN_OK) {
		char *t = xasprintf("Error: %s", res->error ? res->error :
				    "internal error");

		oa_chat_emit(c, NULL, t, strlen(t), "stop", NULL);
		free(t);
	} else {
		if (c->deltas == 0 && res->text && *res->text)
			oa_chat_emit(c, NULL, res->text, strlen(res->text),
				     NULL, NULL);
		if (c->deltas == 0 && tools)
			oa_chat_emit_tools(c, json_incref(
				(json_t *)res->tool_calls));
		oa_chat_emit(c, "{}", NULL, 0, tools ? "tool_calls" :
			     res->finish_reason ? res->finish_reason : "stop",
			     NULL);
	}
	if (c->include_usage)
		oa_chat_emit(c, NULL, NULL, 0, NULL, res);
	http_async_write(c->h.as, "data: [DONE]\n\n", 14);
	http_async_end(c->h.as);
	c->h.as = NULL;
out:
	pthread_mutex_unlock(&c->h.mu);
	api_run_unref(&c->h);	/* the sink's reference */
}

/* Worker: the run started; a stream gets its headers and role chunk. */
static void oa_chat_begun(struct api_run *h)
{
	struct oa_chat *c = (struct oa_chat *)h;

	pthread_mutex_lock(&c->h.mu);
	if (!c->h.ended)
		oa_chat_begin(c);
	pthread_mutex_unlock(&c->h.mu);
}

void api_openai_chat(struct api *a, struct http_req *r,
		     struct gw_config *cfg)
{
	json_t *body = NULL, *msgs = NULL;
	struct run_request rq = {0};
	struct oa_chat *c = NULL;
	const char *model, *user;
	char *err = NULL, *agent = NULL, *override = NULL, *key = NULL;
	char *system = NULL, uuid[37];
	int allow_url;

	if (!a->d.agents) {
		api_error(r, 503, "api_error", "Agent runtime unavailable.");
		return;
	}
	if (!(body = api_body_object(r)))
		return;
	if (oa_validate(body, &err) != 0)
		goto bad;
	model = json_string_value(json_object_get(body, "model"));
	user = json_string_value(json_object_get(body, "user"));
	if (api_openai_agent(a, r, cfg, model, &agent, &override, &err) != 0)
		goto bad;
	allow_url = api_cfg_bool(cfg, "gateway.http.endpoints."
				 "chatCompletions.images.allowUrl", 0);
	if (oa_messages(json_object_get(body, "messages"), allow_url, &msgs,
			&system, &err) != 0)
		goto bad;
	if (api_openai_session(r, agent, "openai", user, &key, &err) != 0)
		goto bad;

	c = xcalloc(1, sizeof(*c));
	store_uuid7(uuid);
	snprintf(c->id, sizeof(c->id), "chatcmpl_%s", uuid);
	c->model = xstrdup(model && *model ? model : "openclaw");
	c->created = util_now_ms() / 1000;
	c->stream = json_is_true(json_object_get(body, "stream"));
	c->include_usage = json_is_true(json_object_get(json_object_get(body,
		"stream_options"), "include_usage"));
	c->h.abort_on_gone = !api_header(r, "x-openclaw-session-key") &&
		!(user && *user);
	c->h.sink.on_delta = oa_chat_delta;
	c->h.sink.on_tool_call = oa_chat_tool;
	c->h.sink.on_end = oa_chat_end;
	c->h.sink.arg = c;
	c->h.sink.any_thread = 1;	/* on_end copies under h.mu */
	api_run_init(&c->h, a, r, oa_chat_release);

	rq.agent_id = agent;
	rq.session_key = key;
	rq.messages = msgs;
	msgs = NULL;
	rq.use_history = 0;
	rq.extra_system = system;
	rq.model_override = override;
	rq.tools = json_incref(json_object_get(body, "tools"));
	rq.tool_choice = json_incref(json_object_get(body, "tool_choice"));
	rq.params = oa_params(body);
	rq.channel = api_openai_channel(r);
	rq.new_session = c->h.abort_on_gone;	/* a generated key */
	api_run_start(&c->h, &rq, oa_chat_begun);
	goto out;
bad:
	api_error(r, 400, "invalid_request_error", err);
out:
	if (c)
		api_run_unref(&c->h);
	json_decref(body);
	json_decref(msgs);
	free(err);
	free(agent);
	free(override);
	free(key);
	free(system);
}
