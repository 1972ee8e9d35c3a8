/* Hooks (reference/http-config-cli.md §2.1): POST <hooks.path>/wake and
 * <hooks.path>/agent with their own token (a header only, never ?token=),
 * their own failure limiter (20 per minute per client IP, loopback not
 * exempt), a 256 KB body limit and the documented plain-text / {ok,error}
 * answers. hooks.mappings (templated routes, transforms) are not
 * supported: other sub-paths are 404. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "agent/agent.h"
#include "api/api-int.h"
#include "auth/limiter.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/http.h"
#include "secrets/secrets.h"

#define HOOKS_DEFAULT_PATH "/hooks"
#define HOOKS_BODY_DEFAULT (256u * 1024)
#define HOOKS_FAIL_MAX 20
#define HOOKS_FAIL_WINDOW_MS 60000
#define HOOKS_MSG_MAX (200 * 1024)
#define HOOKS_QUERY_TOKEN                                                   \
	"Hook token must be provided via Authorization: Bearer <token> or " \
	"X-OpenClaw-Token header (query parameters are not allowed)."

static const json_t *hooks_get(const struct gw_config *cfg, const char *k)
{
	return cfg && cfg->root ? config_get(cfg->root, k) : NULL;
}

/* The normalized base ("/hooks"): leading '/', no trailing '/'. */
static void hooks_base(const struct gw_config *cfg, char *out, size_t n)
{
	const char *p = json_string_value(hooks_get(cfg, "hooks.path"));
	size_t k;

	if (!p || !*p)
		p = HOOKS_DEFAULT_PATH;
	while (*p == '/')
		p++;
	snprintf(out, n, "/%s", p);
	k = strlen(out);
	while (k > 1 && out[k - 1] == '/')
		out[--k] = '\0';
}

size_t api_hooks_match(const struct gw_config *cfg, const char *path)
{
	char base[256];
	size_t n;

	if (!json_is_true(hooks_get(cfg, "hooks.enabled")))
		return 0;
	hooks_base(cfg, base, sizeof(base));
	n = strlen(base);
	if (n <= 1 || strncmp(path, base, n) != 0 ||
	    (path[n] != '\0' && path[n] != '/'))
		return 0;
	return n;
}

size_t api_hooks_body_limit(const struct gw_config *cfg)
{
	const json_t *v = hooks_get(cfg, "hooks.maxBodyBytes");

	return json_is_integer(v) && json_integer_value(v) > 0 ?
		(size_t)json_integer_value(v) : HOOKS_BODY_DEFAULT;
}

/* hooks.token resolved (owned secret) or NULL. */
static char *hooks_token(const struct gw_config *cfg)
{
	const json_t *v = hooks_get(cfg, "hooks.token");
	char *out = NULL, why[128];

	if (!v)
		return NULL;
	if (json_is_string(v))
		return json_string_length(v) ? xstrdup(json_string_value(v)) :
			NULL;
	if (secrets_field(cfg, "hooks.token", v, &out, why,
			  sizeof(why)) != GW_OK)
		return NULL;
	return out;
}

int api_hooks_check(const struct gw_config *cfg, char **err)
{
	const json_t *p = hooks_get(cfg, "hooks.path");
	char *tok;
	int r = 0;

	*err = NULL;
	if (!json_is_true(hooks_get(cfg, "hooks.enabled")))
		return 0;
	if (json_is_string(p)) {
		const char *s = json_string_value(p);

		while (*s == '/')
			s++;
		if (!*s) {
			*err = xstrdup("hooks.path may not be '/'");
			return -1;
		}
	}
	tok = hooks_token(cfg);
	if (!tok) {
		*err = xstrdup("hooks.enabled requires hooks.token");
		return -1;
	}
	if ((cfg->auth_token && strcmp(tok, cfg->auth_token) == 0) ||
	    (cfg->auth_password && strcmp(tok, cfg->auth_password) == 0)) {
		*err = xstrdup("Invalid config: hooks.token must not match "
			       "gateway auth token. Set a distinct hooks.token "
			       "for hook ingress.");
		r = -1;
	}
	xfree_secret(tok);
	return r;
}

static void hooks_text(struct http_req *r, int status, const char *text)
{
	http_reply(r, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void hooks_fail(struct http_req *r, int status, const char *msg)
{
	api_reply_json(r, status, json_pack("{s:b,s:s}", "ok", 0, "error",
					    msg));
}

/* The token from Authorization: Bearer or x-openclaw-token. */
static const char *hooks_offered(struct http_req *r)
{
	const char *h = http_req_header(r, "authorization");

	if (h && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		return h;
	}
	return http_req_header(r, "x-openclaw-token");
}

/* 1 when the caller may go on; else answered 401/429. */
static int hooks_authorize(struct api *a, struct http_req *r,
			   const struct gw_config *cfg)
{
	static const struct limiter_policy pol = {
		HOOKS_FAIL_MAX, HOOKS_FAIL_WINDOW_MS, HOOKS_FAIL_WINDOW_MS
	};
	const char *got = hooks_offered(r);
	char key[96], ra[32];
	const char *want;
	int64_t now = util_now_ms(), retry = 0;
	int ok;

	snprintf(key, sizeof(key), "hook:%s", http_req_peer_ip(r));
	if (limiter_locked(a->hook_limiter, key, now, &retry)) {
		snprintf(ra, sizeof(ra), "%lld",
			 (long long)((retry + 999) / 1000));
		log_warn("hooks", "hook auth throttled for %s; "
			 "retry-after=%ss", http_req_peer_ip(r), ra);
		http_reply_header(r, "Retry-After", ra);
		hooks_text(r, 429, "Too Many Requests");
		return 0;
	}
	/* Nothing offered: refused without resolving the token (a
	 * SecretRef may run a process); else resolved once per snapshot. */
	if (got && *got && a->hook_tok_cfg != cfg) {
		config_unref(a->hook_tok_cfg);
		xfree_secret(a->hook_tok);
		a->hook_tok = hooks_token(cfg);
		a->hook_tok_cfg = config_ref((struct gw_config *)cfg);
	}
	want = got && *got ? a->hook_tok : NULL;
	ok = want && util_secret_equal(got, want);
	if (!ok) {
		limiter_fail(a->hook_limiter, key, now, &pol);
		hooks_text(r, 401, "Unauthorized");
		return 0;
	}
	limiter_reset(a->hook_limiter, key);
	return 1;
}

static int hooks_agent_allowed(const struct gw_config *cfg, const char *id)
{
	const json_t *list = hooks_get(cfg, "hooks.allowedAgentIds"), *v;
	size_t i;

	if (!json_is_array(list))
		return 1;
	json_array_foreach(list, i, v)
		if (json_is_string(v) &&
		    (strcmp(json_string_value(v), "*") == 0 ||
		     strcasecmp(json_string_value(v), id) == 0))
			return 1;
	return 0;
}

/* The agent of the payload: 0 with *id (owned), or -1 answered. */
static int hooks_agent(struct api *a, struct http_req *r,
		       const struct gw_config *cfg, const json_t *body,
		       char **id)
{
	const json_t *v = json_object_get(body, "agentId");
	const char *s = json_string_value(v);

	*id = NULL;
	if (v && !json_is_null(v) && !s) {
		hooks_fail(r, 400, "agentId must be a string");
		return -1;
	}
	if (!s || !*s)
		s = agent_default_id(a->d.agents);
	if (!agent_exists(a->d.agents, s)) {
		hooks_fail(r, 400, "unknown agentId");
		return -1;
	}
	if (!hooks_agent_allowed(cfg, s)) {
		hooks_fail(r, 400, "agentId not allowed");
		return -1;
	}
	*id = xstrdup(s);
	return 0;
}

/* A caller-supplied session key, when the config allows it. */
static int hooks_session(struct http_req *r, const struct gw_config *cfg,
			 const json_t *body, const char *agent, char **key)
{
	const char *s = json_string_value(json_object_get(body,
							  "sessionKey"));
	const json_t *pre, *v;
	char uuid[37];
	size_t i;

	*key = NULL;
	if (s && *s) {
		if (!json_is_true(hooks_get(cfg,
					    "hooks.allowRequestSessionKey"))) {
			hooks_fail(r, 400, "sessionKey is not allowed "
				   "(set hooks.allowRequestSessionKey)");
			return -1;
		}
		pre = hooks_get(cfg, "hooks.allowedSessionKeyPrefixes");
		if (json_is_array(pre)) {
			json_array_foreach(pre, i, v)
				if (json_is_string(v) &&
				    strncmp(s, json_string_value(v),
					    json_string_length(v)) == 0)
					break;
			if (i == json_array_size(pre)) {
				hooks_fail(r, 400, "sessionKey prefix is not "
					   "allowed");
				return -1;
			}
		}
		switch (agent_session_key_check(s)) {
		case AGENT_KEY_OK:
			break;
		case AGENT_KEY_RESERVED:
			hooks_fail(r, 400, "sessionKey cannot use reserved "
				   "internal session namespaces");
			return -1;
		default:
			hooks_fail(r, 400, strlen(s) > AGENT_SESSION_KEY_MAX
				   ? "sessionKey too long"
				   : "invalid sessionKey");
			return -1;
		}
		*key = xstrdup(s);
		return 0;
	}
	s = json_string_value(hooks_get(cfg, "hooks.defaultSessionKey"));
	if (s && *s) {
		*key = xstrdup(s);
		return 0;
	}
	util_uuid(uuid);
	*key = xasprintf("agent:%s:hook:%s", agent, uuid);
	return 0;
}

/* A wake or agent run started on a worker (run set-up reads SQLite and
 * files: never on the libmicrohttpd thread), answered from there. The
 * strings are owned by the job. */
struct hooks_job {
	struct api *a;
	struct http_async *as;
	int wake;
	struct run_request rq;
	char *agent, *key, *run_id, *text, *model, *channel, *mode;
};

static void hooks_job_free(struct hooks_job *j)
{
	json_decref(j->rq.messages);
	free(j->agent);
	free(j->key);
	free(j->run_id);
	free(j->text);
	free(j->model);
	free(j->channel);
	free(j->mode);
	free(j);
}

static void hooks_async_json(struct http_async *as, int status, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);

	http_async_reply_json(as, status, s ? s : "null");
	free(s);
	json_decref(v);
}

static void hooks_run_end(void *arg, const struct run_result *res);

static void hooks_job_run(void *arg)
{
	struct hooks_job *j = arg;
	struct run_sink sink = { NULL, NULL, hooks_run_end, NULL, 0 };
	struct run *run = NULL;
	char *err = NULL;
	int rc;

	if (j->wake) {
		rc = agent_wake(j->a->d.agents, j->agent, j->key, j->text,
				j->mode, NULL, &err);
		if (rc != GW_OK)
			hooks_async_json(j->as, 400, json_pack("{s:b,s:s}",
				"ok", 0, "error", err ? err : "wake failed"));
		else
			hooks_async_json(j->as, 200, json_pack("{s:b,s:s}",
				"ok", 1, "mode", j->mode));
		goto out;
	}
	rc = run_start(j->a->d.agents, &j->rq, &sink, &run, &err);
	if (rc != GW_OK)
		hooks_async_json(j->as, rc == GW_EINVAL ? 400 : 503,
				 json_pack("{s:b,s:s}", "ok", 0, "error",
					   err ? err : "cannot start the run"));
	else
		hooks_async_json(j->as, 200, json_pack("{s:b,s:s}", "ok", 1,
						       "runId", run_id(run)));
	run_unref(run);
out:
	free(err);
	hooks_job_free(j);
}

/* Takes the reply of r over and runs j on a worker (inline without a
 * pool). */
static void hooks_job_post(struct api *a, struct http_req *r,
			   struct hooks_job *j)
{
	j->a = a;
	j->as = http_reply_later(r);
	if (!a->d.workers || workq_post(a->d.workers, hooks_job_run, j) != 0)
		hooks_job_run(j);
}

static void hooks_wake(struct api *a, struct http_req *r,
		       const struct gw_config *cfg, const json_t *body)
{
	const char *text = json_string_value(json_object_get(body, "text"));
	const char *mode = json_string_value(json_object_get(body, "mode"));
	const char *sk = json_string_value(json_object_get(body,
							   "sessionKey"));
	struct hooks_job *j;
	char *agent = NULL;

	if (!text || !*text) {
		hooks_fail(r, 400, "text required");
		return;
	}
	if (json_object_get(body, "mode") && (!mode ||
	    (strcmp(mode, "now") != 0 &&
	     strcmp(mode, "next-heartbeat") != 0))) {
		hooks_fail(r, 400, "mode must be now or next-heartbeat");
		return;
	}
	if (!mode)
		mode = "now";
	if (hooks_agent(a, r, cfg, body, &agent) != 0)
		return;
	if (sk && *sk && !json_is_true(hooks_get(cfg,
				       "hooks.allowRequestSessionKey"))) {
		hooks_fail(r, 400, "sessionKey is not allowed (set "
			   "hooks.allowRequestSessionKey)");
		goto out;
	}
	j = xcalloc(1, sizeof(*j));
	j->wake = 1;
	j->agent = agent;
	agent = NULL;
	j->key = sk ? xstrdup(sk) : NULL;
	j->text = xstrdup(text);
	j->mode = xstrdup(mode);
	hooks_job_post(a, r, j);
out:
	free(agent);
}

static void hooks_run_end(void *arg, const struct run_result *res)
{
	(void)arg;
	if (res->status != RUN_OK)
		log_warn("hooks", "hook run %s ended: %s", res->run_id,
			 res->error ? res->error : "aborted");
}

static void hooks_agent_run(struct api *a, struct http_req *r,
			    const struct gw_config *cfg, const json_t *body)
{
	const char *msg = json_string_value(json_object_get(body, "message"));
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *model = json_string_value(json_object_get(body, "model"));
	const char *idem = json_string_value(json_object_get(body,
							     "idempotencyKey"));
	const json_t *to = json_object_get(body, "timeoutSeconds");
	struct hooks_job *j;
	char *agent = NULL, *key = NULL;

	if (!msg || !*msg) {
		hooks_fail(r, 400, "message required");
		return;
	}
	if (strlen(msg) > HOOKS_MSG_MAX) {
		hooks_fail(r, 400, "message too long");
		return;
	}
	if (to && !json_is_null(to) && (!json_is_integer(to) ||
					json_integer_value(to) < 1 ||
					json_integer_value(to) > 3600)) {
		hooks_fail(r, 400, "timeoutSeconds must be an integer "
			   "between 1 and 3600");
		return;
	}
	if (!idem)
		idem = api_header(r, "idempotency-key");
	if (!idem)
		idem = api_header(r, "x-openclaw-idempotency-key");
	if (idem && strlen(idem) > 200) {
		hooks_fail(r, 400, "idempotencyKey too long");
		return;
	}
	if (hooks_agent(a, r, cfg, body, &agent) != 0)
		return;
	if (hooks_session(r, cfg, body, agent, &key) != 0)
		goto out;
	j = xcalloc(1, sizeof(*j));
	j->text = name && *name ? xasprintf("[%s] %s", name, msg) :
		xstrdup(msg);
	j->rq.agent_id = j->agent = agent;
	j->rq.session_key = j->key = key;
	j->rq.run_id = j->run_id = idem ? xstrdup(idem) : NULL;
	j->rq.messages = json_pack("[{s:s,s:s}]", "role", "user", "content",
				   j->text);
	j->rq.use_history = 1;
	j->rq.model_override = j->model = model ? xstrdup(model) : NULL;
	j->rq.channel = j->channel = xstrdup(json_string_value(
		json_object_get(body, "channel")) ?: "hook");
	/* range-check before x1000: capped at a year, no int64 overflow */
	j->rq.timeout_ms = !json_is_integer(to) ||
		json_integer_value(to) <= 0 ? 0 :
		json_integer_value(to) > 366 * 86400 ?
		(int64_t)366 * 86400 * 1000 :
		(int64_t)json_integer_value(to) * 1000;
	hooks_job_post(a, r, j);
	return;
out:
	free(agent);
	free(key);
}

int api_hooks_preauth(struct api *a, struct http_req *r,
		      struct gw_config *cfg)
{
	if (http_req_query(r, "token")) {
		hooks_text(r, 400, HOOKS_QUERY_TOKEN);
		return 1;
	}
	if (strcmp(http_req_method(r), "POST") != 0) {
		http_reply_header(r, "Allow", "POST");
		hooks_text(r, 405, "Method Not Allowed");
		return 1;
	}
	if (!hooks_authorize(a, r, cfg))
		return 1;
	http_req_set_authorized(r);
	return 0;
}

void api_hooks(struct api *a, struct http_req *r, struct gw_config *cfg,
	       const char *sub)
{
	json_t *body = NULL;
	json_error_t e;
	const char *raw;
	size_t len;

	if (!http_req_authorized(r) && api_hooks_preauth(a, r, cfg))
		return;
	if (!*sub || strcmp(sub, "/") == 0) {
		hooks_text(r, 404, "Not Found");
		return;
	}
	if (strcmp(sub, "/wake") != 0 && strcmp(sub, "/agent") != 0) {
		hooks_text(r, 404, "Not Found");
		return;
	}
	raw = http_req_body(r, &len);
	body = len ? json_loadb(raw, len, JSON_REJECT_DUPLICATES, &e) :
		json_object();
	if (!json_is_object(body)) {
		hooks_fail(r, 400, body ? "body must be a JSON object" :
			   e.text);
		goto out;
	}
	if (!a->d.agents) {
		hooks_fail(r, 503, "agent runtime unavailable");
		goto out;
	}
	if (strcmp(sub, "/wake") == 0)
		hooks_wake(a, r, cfg, body);
	else
		hooks_agent_run(a, r, cfg, body);
out:
	json_decref(body);
}
