/* The HTTP face: a route table over net/http, answering with the domain
 * modules: health probes, the OpenAI-compatible API (/v1/...), /tools/invoke,
 * hooks, CORS. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct agent_rt;
struct gw_config;
struct http_req;
struct limiter;
struct pairing;
struct workq;

struct api_deps {
	int64_t start_mono_ms;
	struct limiter *limiter;
	/* Readiness: fills failing (comma list) and returns 1 when ready. */
	int (*ready)(char *failing, size_t n, void *arg);
	void *arg;
	struct agent_rt *agents;	/* runs, agents, sessions (may be NULL:
					 * the agent endpoints answer 503) */
	struct workq *workers;		/* store reads off the MHD thread */
	const char *version;		/* control-ui-config.json serverVersion */
	const char *build_id;		/* and serverBuildId */
	struct pairing *pairing;	/* device tokens as UI bearer (or NULL) */
};

struct api;

struct api *api_new(const struct api_deps *d);
void api_free(struct api *a);
/* http_server_cbs entries (arg = the api). */
size_t api_body_limit(struct http_req *r, void *arg);
void api_handle(struct http_req *r, void *arg);
/* http_server_cbs.preauth: gateway (or hooks) auth decided when the
 * headers are complete, before the body is read; 1 when answered. */
int api_preauth(struct http_req *r, void *arg);

/* Start-up / reload check of the hooks block: hooks.enabled requires
 * hooks.token, which must differ from the gateway token and password;
 * hooks.path may not be '/'. 0, or -1 with a message in *err (owned). */
int api_hooks_check(const struct gw_config *cfg, char **err);

/* Route introspection for tests: the allowed methods of path ("GET, HEAD"),
 * or NULL when no route matches. */
const char *api_route_allow(const char *path);

/* The gateway's built-in tools (api-tools.c), for tools.catalog. */
size_t api_tools_count(void);
const char *api_tools_name(size_t i, const char **summary);
