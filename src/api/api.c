/* HTTP route table, dispatch policy (endpoint switches, CORS, auth) and the
 * health probes. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api/api-int.h"
#include "api/api.h"
#include "api/api-ui.h"
#include "auth/auth.h"
#include "auth/limiter.h"
#include "auth/proxy.h"
#include "config/config.h"
#include "core/common.h"
#include "core/util.h"
#include "net/http.h"

typedef void (*api_route_fn)(struct api *a, struct http_req *r,
			     struct gw_config *cfg);

#define API_GET 1u
#define API_HEAD 2u
#define API_POST 4u
#define API_OPTIONS 8u

#define API_F_AUTH 1u		/* gateway auth (Bearer) required */
#define API_F_PREFIX 2u		/* path is a prefix ("/v1/models/") */

#define API_MB (1024u * 1024)

struct api_route {
	const char *path;
	unsigned methods;
	const char *allow;	/* Allow header for 405 */
	size_t body_limit;
	unsigned flags;
	const char *enabled;	/* config switch (default on), or NULL */
	api_route_fn fn;
};

static void api_live(struct api *a, struct http_req *r,
		     struct gw_config *cfg);
static void api_ready(struct api *a, struct http_req *r,
		      struct gw_config *cfg);

#define API_EP "gateway.http.endpoints."

/* The route table. Paths match exactly unless API_F_PREFIX. */
static const struct api_route api_routes[] = {
	{"/health", API_GET | API_HEAD, "GET, HEAD", 0, 0, NULL, api_live},
	{"/healthz", API_GET | API_HEAD, "GET, HEAD", 0, 0, NULL, api_live},
	{"/ready", API_GET | API_HEAD, "GET, HEAD", 0, 0, NULL, api_ready},
	{"/readyz", API_GET | API_HEAD, "GET, HEAD", 0, 0, NULL, api_ready},
	{"/v1/models", API_GET, "GET", 0, API_F_AUTH,
	 API_EP "models.enabled", api_openai_models},
	{"/v1/models/", API_GET, "GET", 0, API_F_AUTH | API_F_PREFIX,
	 API_EP "models.enabled", api_openai_model},
	{"/v1/chat/completions", API_POST, "POST", 20 * API_MB, API_F_AUTH,
	 API_EP "chatCompletions.enabled", api_openai_chat},
	{"/v1/responses", API_POST, "POST", 20 * API_MB, API_F_AUTH,
	 API_EP "responses.enabled", api_responses},
	{"/v1/embeddings", API_POST, "POST", 5 * API_MB, API_F_AUTH,
	 API_EP "embeddings.enabled", api_embeddings},
	{"/tools/invoke", API_POST, "POST", 2 * API_MB, API_F_AUTH, NULL,
	 api_tools_invoke},
};

struct api *api_new(const struct api_deps *d)
{
	struct api *a = xcalloc(1, sizeof(*a));

	a->d = *d;
	a->hook_limiter = limiter_new(4096);
	api_resp_map_init(&a->resp_map);
	api_ui_probe();
	return a;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	limiter_free(a->hook_limiter);
	api_resp_map_free(&a->resp_map);
	config_unref(a->hook_tok_cfg);
	xfree_secret(a->hook_tok);
	free(a);
}

static const struct api_route *api_route_find(const char *path)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(api_routes); i++) {
		const struct api_route *rt = &api_routes[i];

		if (rt->flags & API_F_PREFIX) {
			if (strncmp(rt->path, path, strlen(rt->path)) == 0)
				return rt;
		} else if (strcmp(rt->path, path) == 0) {
			return rt;
		}
	}
	return NULL;
}

const char *api_route_allow(const char *path)
{
	const struct api_route *rt = api_route_find(path);

	return rt ? rt->allow : NULL;
}

static unsigned api_method_bit(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return API_GET;
	if (strcmp(m, "HEAD") == 0)
		return API_HEAD;
	if (strcmp(m, "POST") == 0)
		return API_POST;
	if (strcmp(m, "OPTIONS") == 0)
		return API_OPTIONS;
	return 0;
}

/* Requests that will be answered 404 or 405 may carry a small body that
 * is read and dropped, so that the answer is the 404/405, not a 413. */
#define API_REJECT_BODY_LIMIT (64u * 1024)

size_t api_body_limit(struct http_req *r, void *arg)
{
	const struct api_route *rt = api_route_find(http_req_path(r));
	struct gw_config *cfg = config_current();
	size_t n;

	(void)arg;
	if (cfg && api_hooks_match(cfg, http_req_path(r))) {
		n = api_hooks_body_limit(cfg);
		http_req_set_too_big_body(r, "{\"ok\":false,"
					  "\"error\":\"payload too large\"}");
	} else if (!rt ||
		   !(rt->methods & api_method_bit(http_req_method(r)))) {
		n = API_REJECT_BODY_LIMIT;
	} else {
		/* routes without a body still read and drop a small one */
		n = rt->body_limit ? rt->body_limit : API_REJECT_BODY_LIMIT;
	}
	config_unref(cfg);
	return n;
}

/* ---- helpers (api-int.h) ------------------------------------------------- */

char *api_error_json(const char *type, const char *msg)
{
	json_t *o = json_pack("{s:{s:s,s:s}}", "error", "message",
			      msg ? msg : "", "type", type);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return s;
}

void api_error(struct http_req *r, int status, const char *type,
	       const char *msg)
{
	char *s = api_error_json(type, msg);

	http_reply_json(r, status, s);
	free(s);
}

void api_reply_json(struct http_req *r, int status, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);

	http_reply_json(r, status, s ? s : "null");
	free(s);
	json_decref(v);
}

int api_cfg_bool(const struct gw_config *c, const char *path, int def)
{
	const json_t *v = c && c->root ? config_get(c->root, path) : NULL;

	return json_is_boolean(v) ? json_is_true(v) : def;
}

json_t *api_body_object(struct http_req *r)
{
	json_error_t e;
	size_t len;
	const char *body = http_req_body(r, &len);
	json_t *v;
	char msg[200];

	v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!v) {
		snprintf(msg, sizeof(msg), "Invalid JSON body: %s", e.text);
		api_error(r, 400, "invalid_request_error", msg);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		api_error(r, 400, "invalid_request_error",
			  "Request body must be a JSON object.");
		return NULL;
	}
	return v;
}

const char *api_header(struct http_req *r, const char *name)
{
	const char *v = http_req_header(r, name);

	while (v && isspace((unsigned char)*v))
		v++;
	return v && *v ? v : NULL;
}

static const char *api_req_header_cb(void *arg, const char *name)
{
	return http_req_header(arg, name);
}

/* The request as the trusted-proxy logic sees it. */
static struct proxy_req api_proxy_req(struct http_req *r)
{
	struct proxy_req pr = {
		.peer_ip = http_req_peer_ip(r),
		.peer_loopback = http_req_peer_is_loopback(r),
		.header = api_req_header_cb,
		.arg = r,
	};

	return pr;
}

/* Gateway auth for an API route; 1 when allowed, else answered 401/429. */
int api_authorize(struct api *a, struct http_req *r,
		  const struct gw_config *cfg)
{
	struct proxy_req pr = api_proxy_req(r);
	struct auth_request rq = {0};
	struct auth_result res;
	char ip[64], ra[32];

	proxy_client_ip(cfg, &pr, ip, sizeof(ip));
	rq.client_ip = ip;
	rq.is_loopback = proxy_is_local(&pr);
	rq.origin = http_req_header(r, "origin");
	rq.browser = rq.origin != NULL;
	rq.proxy = &pr;
	auth_check_bearer(cfg, a->d.limiter, http_req_header(r,
			  "authorization"), &rq, &res);
	if (res.ok)
		return 1;
	if (res.rate_limited) {
		snprintf(ra, sizeof(ra), "%lld",
			 (long long)((res.retry_after_ms + 999) / 1000));
		http_reply_header(r, "Retry-After", ra);
		api_error(r, 429, "rate_limited", "Too many failed "
			  "authentication attempts. Please try again later.");
		return 0;
	}
	api_error(r, 401, "unauthorized", "Unauthorized");
	return 0;
}

static void api_live(struct api *a, struct http_req *r,
		     struct gw_config *cfg)
{
	(void)a;
	(void)cfg;
	http_reply_header(r, "Cache-Control", "no-store");
	http_reply_json(r, 200, "{\"ok\":true,\"status\":\"live\"}");
}

/* Local callers, or callers the gateway auth accepts (the same decision
 * as WS and the API routes: auth_check_bearer), see the details; others
 * only {ready}. A failed probe does not count toward the limiter. */
static int api_caller_trusted(struct http_req *r)
{
	struct proxy_req pr = api_proxy_req(r);
	struct auth_request rq = {0};
	struct auth_result res = {0};
	struct gw_config *cfg;
	char ip[64];

	if (proxy_is_local(&pr))
		return 1;
	cfg = config_current();
	if (!cfg)
		return 0;
	proxy_client_ip(cfg, &pr, ip, sizeof(ip));
	rq.client_ip = ip;
	rq.proxy = &pr;
	/* mode none: no credential proves anything here */
	if (cfg->auth_mode != AUTH_MODE_NONE)
		auth_check_bearer(cfg, NULL, http_req_header(r,
				  "authorization"), &rq, &res);
	config_unref(cfg);
	return res.ok;
}

static void api_ready(struct api *a, struct http_req *r,
		      struct gw_config *cfg)
{
	char failing[256] = "", *body, *p, *tok, *save = NULL;
	int ready = a->d.ready ? a->d.ready(failing, sizeof(failing),
					    a->d.arg) : 1;
	json_t *o, *arr;

	(void)cfg;
	http_reply_header(r, "Cache-Control", "no-store");
	if (!api_caller_trusted(r)) {
		http_reply_json(r, ready ? 200 : 503,
				ready ? "{\"ready\":true}" : "{\"ready\":false}");
		return;
	}
	arr = json_array();
	p = failing;
	while ((tok = strtok_r(p, ",", &save))) {
		json_array_append_new(arr, json_string(tok));
		p = NULL;
	}
	o = json_pack("{s:b,s:o,s:I}", "ready", ready, "failing", arr,
		      "uptimeMs",
		      (json_int_t)(util_mono_ms() - a->d.start_mono_ms));
	body = json_dumps(o, JSON_COMPACT);
	http_reply_json(r, ready ? 200 : 503, body);
	free(body);
	json_decref(o);
}

#define API_NOT_FOUND_JSON                                                 \
	"{\"error\":{\"message\":\"Not Found\",\"type\":\"not_found\"}}"

void api_handle(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const char *path = http_req_path(r);
	const struct api_route *rt = api_route_find(path);
	unsigned m = api_method_bit(http_req_method(r));
	struct gw_config *cfg = config_current();
	size_t base;

	/* Hooks first (their own token, limiter and error shapes). */
	if (cfg && (base = api_hooks_match(cfg, path)) > 0) {
		api_hooks(a, r, cfg, path + base);
		goto out;
	}
	/* A switched-off endpoint is not there: JSON 404, never a page. */
	if (rt && rt->enabled && !api_cfg_bool(cfg, rt->enabled, 1))
		rt = NULL;
	/* After the API routes and hooks: the Control UI (api-ui.c). */
	if (!rt && api_ui_handle(a, r, cfg))
		goto out;
	if ((rt == NULL || (rt->flags & API_F_AUTH)) &&
	    !http_req_authorized(r) &&
	    api_cors(r, cfg, rt ? rt->allow : NULL))
		goto out;
	if (!rt) {
		http_reply_json(r, 404, API_NOT_FOUND_JSON);
		goto out;
	}
	if (!(rt->methods & m)) {
		http_reply_header(r, "Allow", rt->allow);
		http_reply(r, 405, "text/plain; charset=utf-8",
			   "Method Not Allowed", 18);
		goto out;
	}
	if ((rt->flags & API_F_AUTH) && !cfg) {
		api_error(r, 503, "api_error", "No configuration");
		goto out;
	}
	if ((rt->flags & API_F_AUTH) && !http_req_authorized(r) &&
	    !api_authorize(a, r, cfg))
		goto out;
	rt->fn(a, r, cfg);
out:
	config_unref(cfg);
}

/* The same decisions as api_handle up to the auth check, taken before
 * the body is read (reliability finding D3): an unauthenticated caller
 * never makes us buffer its body. Requests that api_handle answers 404
 * or 405 go on (their body limit is small). */
int api_preauth(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const char *path = http_req_path(r);
	const struct api_route *rt = api_route_find(path);
	unsigned m = api_method_bit(http_req_method(r));
	struct gw_config *cfg = config_current();
	int answered = 0;
	size_t base;

	if (cfg && (base = api_hooks_match(cfg, path)) > 0) {
		answered = api_hooks_preauth(a, r, cfg);
		goto out;
	}
	if (rt && rt->enabled && !api_cfg_bool(cfg, rt->enabled, 1))
		rt = NULL;
	if (!rt || !(rt->flags & API_F_AUTH) || !(rt->methods & m) || !cfg)
		goto out;
	if (api_cors(r, cfg, rt->allow) || !api_authorize(a, r, cfg)) {
		answered = 1;
		goto out;
	}
	http_req_set_authorized(r);
out:
	config_unref(cfg);
	return answered;
}
