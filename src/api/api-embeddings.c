/* POST /v1/embeddings (reference/http-config-cli.md §1.6): string or array
 * input with the upstream limits, encoding_format float or base64 (little
 * endian float32), through the agent's embedding provider (agent_embed,
 * answered on the agent thread through a deferred reply). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "agent/agent.h"
#include "api/api-int.h"
#include "config/config.h"
#include "core/common.h"
#include "net/http.h"

#define EMB_MAX_INPUTS 128
#define EMB_MAX_CHARS 8192
#define EMB_MAX_TOTAL 65536

struct emb_req {
	struct http_async *as;
	char *model;
	int base64;
};

/* One vector as base64 of little-endian float32 (new reference). */
static json_t *emb_base64(const json_t *vec)
{
	size_t n = json_array_size(vec), i;
	unsigned char *raw = xmalloc(n * 4 + 1);
	char *b64 = xmalloc(((n * 4 + 2) / 3) * 4 + 1);
	json_t *out;

	for (i = 0; i < n; i++) {
		float f = (float)json_number_value(json_array_get(vec, i));
		uint32_t u;

		memcpy(&u, &f, 4);
		raw[i * 4] = (unsigned char)(u & 0xff);
		raw[i * 4 + 1] = (unsigned char)((u >> 8) & 0xff);
		raw[i * 4 + 2] = (unsigned char)((u >> 16) & 0xff);
		raw[i * 4 + 3] = (unsigned char)(u >> 24);
	}
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)(n * 4));
	out = json_string(b64);
	free(raw);
	free(b64);
	return out;
}

static void emb_done(void *arg, const json_t *vectors, int64_t tokens,
		     const char *err, int http_status)
{
	struct emb_req *e = arg;
	json_t *data, *o, *v;
	size_t i;
	char *s;

	if (!vectors) {
		s = api_error_json("api_error", err ? err : "internal error");
		http_async_reply_json(e->as, http_status >= 400 &&
				      http_status <= 599 ? http_status : 500,
				      s);
		goto out;
	}
	data = json_array();
	json_array_foreach(vectors, i, v)
		json_array_append_new(data, json_pack("{s:s,s:i,s:o}",
			"object", "embedding", "index", (int)i, "embedding",
			e->base64 ? emb_base64(v) : json_deep_copy(v)));
	o = json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data",
		      data, "model", e->model, "usage", "prompt_tokens",
		      (json_int_t)tokens, "total_tokens", (json_int_t)tokens);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	http_async_reply_json(e->as, 200, s);
out:
	free(s);
	free(e->model);
	free(e);
}

void api_embeddings(struct api *a, struct http_req *r, struct gw_config *cfg)
{
	json_t *body = NULL, *inputs = NULL, *in;
	const json_t *v;
	const char *model, *fmt;
	struct emb_req *e = NULL;
	char *err = NULL, *agent = NULL, *override = NULL;
	size_t i, total = 0;
	int rc;

	if (!(body = api_body_object(r)))
		return;
	model = json_string_value(json_object_get(body, "model"));
	if (!model || !*model) {
		err = xstrdup("Missing `model`.");
		goto bad;
	}
	if (api_openai_agent(a, r, cfg, model, &agent, &override, &err) != 0)
		goto bad;
	fmt = json_string_value(json_object_get(body, "encoding_format"));
	if (json_object_get(body, "encoding_format") &&
	    (!fmt || (strcmp(fmt, "float") != 0 &&
		      strcmp(fmt, "base64") != 0))) {
		err = xstrdup("`encoding_format` must be float or base64.");
		goto bad;
	}
	in = json_object_get(body, "input");
	if (json_is_string(in)) {
		inputs = json_pack("[O]", in);
	} else if (json_is_array(in)) {
		json_array_foreach(in, i, v)
			if (!json_is_string(v))
				break;
		if (i < json_array_size(in) || json_array_size(in) == 0)
			goto bad_input;
		inputs = json_incref(in);
	} else {
		goto bad_input;
	}
	if (json_array_size(inputs) > EMB_MAX_INPUTS) {
		err = xasprintf("Too many inputs (max %d).", EMB_MAX_INPUTS);
		goto bad;
	}
	json_array_foreach(inputs, i, v) {
		size_t n = json_string_length(v);

		if (n > EMB_MAX_CHARS) {
			err = xasprintf("Input too long (max %d chars).",
					EMB_MAX_CHARS);
			goto bad;
		}
		total += n;
	}
	if (total > EMB_MAX_TOTAL) {
		err = xasprintf("Total input too large (max %d chars).",
				EMB_MAX_TOTAL);
		goto bad;
	}
	if (!a->d.agents) {
		api_error(r, 503, "api_error", "Agent runtime unavailable.");
		goto out;
	}
	e = xcalloc(1, sizeof(*e));
	e->model = xstrdup(model);
	e->base64 = fmt && strcmp(fmt, "base64") == 0;
	e->as = http_reply_later(r);
	rc = agent_embed(a->d.agents, agent, override, inputs, emb_done, e,
			 &err);
	inputs = NULL;
	if (rc != GW_OK) {
		char *s = api_error_json(rc == GW_EINVAL ?
					 "invalid_request_error" : "api_error",
					 err ? err : "internal error");

		http_async_reply_json(e->as, rc == GW_EINVAL ? 400 : 500, s);
		free(s);
		free(e->model);
		free(e);
	}
	goto out;
bad_input:
	err = xstrdup("`input` must be a string or an array of strings.");
bad:
	api_error(r, 400, "invalid_request_error", err);
out:
	json_decref(body);
	json_decref(inputs);
	free(err);
	free(agent);
	free(override);
}
