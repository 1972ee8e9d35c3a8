/* HTTP route table and the health probes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"
#include "auth/auth.h"
#include "config/config.h"
#include "core/common.h"
#include "core/util.h"
#include "net/http.h"

struct api {
	struct api_deps d;
};

typedef void (*api_route_fn)(struct api *a, struct http_req *r);

#define API_GET 1u
#define API_HEAD 2u
#define API_POST 4u

struct api_route {
	const char *path;
	unsigned methods;
	const char *allow;	/* Allow header for 405 */
	size_t body_limit;
	api_route_fn fn;
};

static void api_live(struct api *a, struct http_req *r);
static void api_ready(struct api *a, struct http_req *r);

/* The route table. Paths match exactly. */
static const struct api_route api_routes[] = {
	{"/health", API_GET | API_HEAD, "GET, HEAD", 0, api_live},
	{"/healthz", API_GET | API_HEAD, "GET, HEAD", 0, api_live},
	{"/ready", API_GET | API_HEAD, "GET, HEAD", 0, api_ready},
	{"/readyz", API_GET | API_HEAD, "GET, HEAD", 0, api_ready},
};

struct api *api_new(const struct api_deps *d)
{
	struct api *a = xcalloc(1, sizeof(*a));

	a->d = *d;
	return a;
}

void api_free(struct api *a)
{
	free(a);
}

static const struct api_route *api_route_find(const char *path)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(api_routes); i++)
		if (strcmp(api_routes[i].path, path) == 0)
			return &api_routes[i];
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
	return 0;
}

/* Requests that will be answered 404 or 405 may carry a small body that
 * is read and dropped, so that the answer is the 404/405, not a 413. */
#define API_REJECT_BODY_LIMIT (64u * 1024)

size_t api_body_limit(struct http_req *r, void *arg)
{
	const struct api_route *rt = api_route_find(http_req_path(r));

	(void)arg;
	if (!rt || !(rt->methods & api_method_bit(http_req_method(r))))
		return API_REJECT_BODY_LIMIT;
	return rt->body_limit;
}

static void api_live(struct api *a, struct http_req *r)
{
	(void)a;
	http_reply_header(r, "Cache-Control", "no-store");
	http_reply_json(r, 200, "{\"ok\":true,\"status\":\"live\"}");
}

/* Local callers, or callers with the gateway's bearer credential, see the
 * details; others only {ready}. */
static int api_caller_trusted(struct http_req *r)
{
	static const char *const proxy[] = {"forwarded", "x-forwarded-for",
					    "x-real-ip"};
	const char *h = http_req_header(r, "authorization");
	struct gw_config *cfg;
	size_t i;
	int ok = 0;

	if (http_req_peer_is_loopback(r)) {
		for (i = 0; i < ARRAY_SIZE(proxy); i++)
			if (http_req_header(r, proxy[i]))
				break;
		if (i == ARRAY_SIZE(proxy))
			return 1;
	}
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	cfg = config_current();
	if (cfg && cfg->auth_mode == AUTH_MODE_TOKEN)
		ok = util_secret_equal(h + 7, cfg->auth_token);
	else if (cfg && cfg->auth_mode == AUTH_MODE_PASSWORD)
		ok = util_secret_equal(h + 7, cfg->auth_password);
	config_unref(cfg);
	return ok;
}

static void api_ready(struct api *a, struct http_req *r)
{
	char failing[256] = "", *body, *p, *tok, *save = NULL;
	int ready = a->d.ready ? a->d.ready(failing, sizeof(failing),
					    a->d.arg) : 1;
	json_t *o, *arr;

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

void api_handle(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const struct api_route *rt = api_route_find(http_req_path(r));
	unsigned m = api_method_bit(http_req_method(r));

	if (!rt) {
		http_reply_json(r, 404, "{\"error\":{\"message\":\"Not Found\","
				"\"type\":\"not_found\"}}");
		return;
	}
	if (!(rt->methods & m)) {
		http_reply_header(r, "Allow", rt->allow);
		http_reply(r, 405, "text/plain; charset=utf-8",
			   "Method Not Allowed", 18);
		return;
	}
	rt->fn(a, r);
}
