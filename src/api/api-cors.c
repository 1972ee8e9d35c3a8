/* CORS, opt-in (gateway.http.cors.allowedOrigins; off by default, as
 * upstream has none): allowed origins get Access-Control-* headers on the
 * API routes, and OPTIONS preflights are answered 204. Without the option,
 * or for an origin not listed, nothing changes (OPTIONS gets 405). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api/api-int.h"
#include "config/config.h"
#include "core/common.h"
#include "net/http.h"

#define API_CORS_HEADERS                                                  \
	"Authorization, Content-Type, Idempotency-Key, X-OpenClaw-Agent-Id, " \
	"X-OpenClaw-Model, X-OpenClaw-Session-Key, "                          \
	"X-OpenClaw-Message-Channel, X-OpenClaw-Token"
#define API_CORS_MAX_AGE_DEFAULT 600

/* 1 when origin is listed ("*" lists every origin). */
static int api_cors_allowed(const struct gw_config *cfg, const char *origin,
			    int *wildcard)
{
	const json_t *list = cfg && cfg->root ? config_get(cfg->root,
		"gateway.http.cors.allowedOrigins") : NULL;
	const json_t *v;
	size_t i, n = strlen(origin);

	*wildcard = 0;
	json_array_foreach(list, i, v) {
		const char *o = json_string_value(v);
		size_t k;

		if (!o)
			continue;
		if (strcmp(o, "*") == 0) {
			*wildcard = 1;
			return 1;
		}
		k = strlen(o);
		while (k > 0 && o[k - 1] == '/')
			k--;
		if (k == n && strncasecmp(o, origin, n) == 0)
			return 1;
	}
	return 0;
}

int api_cors(struct http_req *r, const struct gw_config *cfg,
	     const char *allow)
{
	const char *origin = http_req_header(r, "origin");
	const json_t *ma;
	const char *rh;
	char methods[64], age[32];
	int wildcard;

	if (!origin || !*origin || !api_cors_allowed(cfg, origin, &wildcard))
		return 0;
	http_reply_header(r, "Access-Control-Allow-Origin",
			  wildcard ? "*" : origin);
	if (!wildcard)
		http_reply_header(r, "Vary", "Origin");
	if (strcmp(http_req_method(r), "OPTIONS") != 0) {
		http_reply_header(r, "Access-Control-Expose-Headers",
				  "Retry-After, X-OpenClaw-Session-Key");
		return 0;
	}
	if (!allow) {
		/* Unknown route: let the dispatcher answer 404. */
		return 0;
	}
	snprintf(methods, sizeof(methods), "%s, OPTIONS", allow);
	ma = config_get(cfg->root, "gateway.http.cors.maxAgeSeconds");
	snprintf(age, sizeof(age), "%lld", json_is_integer(ma) ?
		 (long long)json_integer_value(ma) :
		 (long long)API_CORS_MAX_AGE_DEFAULT);
	http_reply_header(r, "Access-Control-Allow-Methods", methods);
	/* Browser SDKs send their own headers (x-stainless-*): echo the
	 * requested list, bounded. */
	rh = http_req_header(r, "access-control-request-headers");
	http_reply_header(r, "Access-Control-Allow-Headers",
			  rh && *rh && strlen(rh) < 2048 ? rh :
			  API_CORS_HEADERS);
	http_reply_header(r, "Access-Control-Max-Age", age);
	http_reply(r, 204, NULL, NULL, 0);
	return 1;
}
