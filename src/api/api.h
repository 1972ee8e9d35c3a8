/* The HTTP face: a route table over net/http, answering with the domain
 * modules. This issue: health probes; later: OpenAI API, tools, hooks, UI. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct http_req;
struct limiter;

struct api_deps {
	int64_t start_mono_ms;
	struct limiter *limiter;
	/* Readiness: fills failing (comma list) and returns 1 when ready. */
	int (*ready)(char *failing, size_t n, void *arg);
	void *arg;
};

struct api;

struct api *api_new(const struct api_deps *d);
void api_free(struct api *a);
/* http_server_cbs entries (arg = the api). */
size_t api_body_limit(struct http_req *r, void *arg);
void api_handle(struct http_req *r, void *arg);

/* Route introspection for tests: the allowed methods of path ("GET, HEAD"),
 * or NULL when no route matches. */
const char *api_route_allow(const char *path);
