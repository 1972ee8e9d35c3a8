/* POST /v1/responses (OpenResponses, reference/http-config-cli.md §1.7):
 * input items → chat messages, instructions → system text, function tools,
 * previous_response_id (the session of an earlier response, kept in a
 * bounded map), the typed SSE event sequence and response.failed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/agent.h"
#include "api/api-int.h"
#include "config/config.h"
#include "core/common.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/http.h"
#include "store/store-sessions.h"

#define RS_MAX_TOOLS 64

/* ---- previous_response_id map ---------------------------------------------- */

void api_resp_map_init(struct api_resp_map *m)
{
	pthread_mutex_init(&m->mu, NULL);
	m->ents = xcalloc(API_RESP_MAP_MAX, sizeof(*m->ents));
	m->n = m->next = 0;
}

void api_resp_map_free(struct api_resp_map *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->ents[i].session_key);
		free(m->ents[i].agent_id);
		free(m->ents[i].user);
	}
	free(m->ents);
	pthread_mutex_destroy(&m->mu);
}

static void rs_map_put(struct api_resp_map *m, const char *id,
		       const char *key, const char *agent, const char *user)
{
	struct api_resp_ent *e;

	pthread_mutex_lock(&m->mu);
	e = &m->ents[m->next];
	free(e->session_key);
	free(e->agent_id);
	free(e->user);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->session_key = xstrdup(key);
	e->agent_id = xstrdup(agent);
	e->user = user ? xstrdup(user) : NULL;
	m->next = (m->next + 1) % API_RESP_MAP_MAX;
	if (m->n < API_RESP_MAP_MAX)
		m->n++;
	pthread_mutex_unlock(&m->mu);
}

/* The session of an earlier response when agent and user match (owned). */
static char *rs_map_get(struct api_resp_map *m, const char *id,
			const char *agent, const char *user)
{
	char *key = NULL;
	size_t i;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++) {
		struct api_resp_ent *e = &m->ents[i];

		if (strcmp(e->id, id) != 0)
			continue;
		if (strcmp(e->agent_id, agent) == 0 &&
		    ((!e->user && !user) ||
		     (e->user && user && strcmp(e->user, user) == 0)))
			key = xstrdup(e->session_key);
		break;
	}
	pthread_mutex_unlock(&m->mu);
	return key;
}

/* ---- input → chat messages ---------------------------------------------------- */

static void rs_sys_append(char **sys, const char *t)
{
	char *n;

	if (!t || !*t)
		return;
	n = *sys ? xasprintf("%s\n\n%s", *sys, t) : xstrdup(t);
	free(*sys);
	*sys = n;
}

#define RS_FILE_ONLY_TEXT "User sent file(s) with no text."

static int rs_has_text(const json_t *c);

/* Content parts of a message item → chat content (new reference). The
 * input_file parts of the active (last) user message become <file>
 * blocks appended to *files (the system prompt); earlier ones are
 * ignored, as upstream. */
static json_t *rs_content(const json_t *c, const struct gw_config *cfg,
			  int active, char **files, char **err)
{
	json_t *out;
	const json_t *p;
	size_t i, nfiles = 0;

	if (json_is_string(c))
		return json_incref((json_t *)c);
	if (!json_is_array(c)) {
		*err = xstrdup("input: message content must be a string or "
			       "an array of parts");
		return NULL;
	}
	out = json_array();
	json_array_foreach(c, i, p) {
		const char *ty = json_string_value(json_object_get(p, "type"));

		if (!ty) {
			*err = xasprintf("input: content[%zu].type is required",
					 i);
			json_decref(out);
			return NULL;
		}
		if (strcmp(ty, "input_text") == 0 ||
		    strcmp(ty, "output_text") == 0 ||
		    strcmp(ty, "text") == 0) {
			const char *t = json_string_value(json_object_get(p,
								  "text"));

			json_array_append_new(out, json_pack("{s:s,s:s}",
				"type", "text", "text", t ? t : ""));
		} else if (strcmp(ty, "input_image") == 0) {
			const json_t *src = json_object_get(p, "source");
			const char *url = json_string_value(
				json_object_get(p, "image_url"));
			char *u = NULL;

			if (!url && json_is_object(src)) {
				const char *st = json_string_value(
					json_object_get(src, "type"));

				if (st && strcmp(st, "url") == 0)
					url = json_string_value(
						json_object_get(src, "url"));
				else if (st && strcmp(st, "base64") == 0)
					u = xasprintf("data:%s;base64,%s",
						json_string_value(json_object_get(
						src, "media_type")) ?:
						"image/png",
						json_string_value(json_object_get(
						src, "data")) ?: "");
			}
			if (!url && !u) {
				*err = xasprintf("input: content[%zu]: "
						 "input_image needs a source",
						 i);
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, json_pack("{s:s,s:{s:s}}",
				"type", "image_url", "image_url", "url",
				u ? u : url));
			free(u);
		}
		else if (strcmp(ty, "input_file") == 0 && active) {
			char *blk = NULL, *e = NULL;

			if (api_input_file(cfg, p, &blk, &e) != 0) {
				*err = xasprintf("input: content[%zu]: %s", i,
						 e);
				free(e);
				json_decref(out);
				return NULL;
			}
			rs_sys_append(files, blk);
			free(blk);
			nfiles++;
		}
		/* Unknown parts: ignored. */
	}
	if (nfiles && !rs_has_text(out))
		json_array_append_new(out, json_pack("{s:s,s:s}", "type",
			"text", "text", RS_FILE_ONLY_TEXT));
	return out;
}

static int rs_has_text(const json_t *c)
{
	const json_t *p;
	size_t i;

	if (json_is_string(c))
		return json_string_length(c) > 0;
	json_array_foreach(c, i, p) {
		const char *t = json_string_value(json_object_get(p, "text"));

		if ((t && *t) || json_object_get(p, "image_url"))
			return 1;
	}
	return 0;
}

/* input → messages (new reference), system text and the <file> blocks
 * of input_file parts; NULL with *err. */
static json_t *rs_input(const json_t *input, const struct gw_config *cfg,
			char **sys, char **files, char **err)
{
	json_t *msgs = json_array(), *calls = NULL;
	const json_t *it;
	size_t i, active = (size_t)-1;
	int user_ok = 0;
	const char *r;

	/* The active turn: the last user message item. */
	json_array_foreach(input, i, it) {
		r = json_string_value(json_object_get(it, "role"));
		if (r && strcmp(r, "user") == 0 &&
		    (!json_object_get(it, "type") ||
		     !strcmp(json_string_value(json_object_get(it, "type")) ?:
			     "", "message")))
			active = i;
	}

	if (json_is_string(input)) {
		json_array_append_new(msgs, json_pack("{s:s,s:O}", "role",
			"user", "content", input));
		if (json_string_length(input) > 0)
			return msgs;
		goto missing;
	}
	if (!json_is_array(input)) {
		*err = xstrdup("input: must be a string or an array of items");
		goto fail;
	}
	json_array_foreach(input, i, it) {
		const char *ty = json_string_value(json_object_get(it, "type"));
		const char *role = json_string_value(json_object_get(it,
								  "role"));

		if (!json_is_object(it)) {
			*err = xasprintf("input.%zu: must be an object", i);
			goto fail;
		}
		if (!ty)
			ty = role ? "message" : "";
		if (strcmp(ty, "function_call") == 0) {
			const char *cid = json_string_value(
				json_object_get(it, "call_id"));
			const char *name = json_string_value(
				json_object_get(it, "name"));
			const char *args = json_string_value(
				json_object_get(it, "arguments"));

			if (!cid || !name) {
				*err = xasprintf("input.%zu: function_call "
						 "needs call_id and name", i);
				goto fail;
			}
			if (!calls) {
				calls = json_array();
				json_array_append_new(msgs, json_pack(
					"{s:s,s:n,s:O}", "role", "assistant",
					"content", "tool_calls", calls));
				json_decref(calls);
			}
			json_array_append_new(calls, json_pack(
				"{s:s,s:s,s:{s:s,s:s}}", "id", cid, "type",
				"function", "function", "name", name,
				"arguments", args ? args : "{}"));
			continue;
		}
		calls = NULL;
		if (strcmp(ty, "function_call_output") == 0) {
			const json_t *out = json_object_get(it, "output");
			const char *cid = json_string_value(
				json_object_get(it, "call_id"));
			char *o = NULL;

			if (!cid) {
				*err = xasprintf("input.%zu.call_id: required",
						 i);
				goto fail;
			}
			if (!json_is_string(out))
				o = json_dumps(out ? out : json_null(),
					       JSON_COMPACT |
					       JSON_ENCODE_ANY);
			json_array_append_new(msgs, json_pack("{s:s,s:s,s:s}",
				"role", "tool", "tool_call_id", cid, "content",
				o ? o : json_string_value(out)));
			free(o);
			user_ok = 1;
			continue;
		}
		if (strcmp(ty, "reasoning") == 0 ||
		    strcmp(ty, "item_reference") == 0)
			continue;
		if (strcmp(ty, "message") != 0 || !role) {
			*err = xasprintf("input.%zu.type: unsupported item "
					 "type '%s'", i, ty);
			goto fail;
		}
		{
			const json_t *c = json_object_get(it, "content");
			json_t *cc;

			if (strcmp(role, "system") == 0 ||
			    strcmp(role, "developer") == 0) {
				const json_t *p;
				size_t k;

				if (json_is_string(c))
					rs_sys_append(sys,
						      json_string_value(c));
				json_array_foreach(c, k, p)
					rs_sys_append(sys, json_string_value(
						json_object_get(p, "text")));
				continue;
			}
			if (strcmp(role, "user") != 0 &&
			    strcmp(role, "assistant") != 0) {
				*err = xasprintf("input.%zu.role: invalid role "
						 "'%s'", i, role);
				goto fail;
			}
			if (!(cc = rs_content(c, cfg, i == active, files,
					       err)))
				goto fail;
			if (strcmp(role, "user") == 0)
				user_ok = rs_has_text(cc);
			json_array_append_new(msgs, json_pack("{s:s,s:o}",
				"role", role, "content", cc));
		}
	}
	if (user_ok)
		return msgs;
missing:
	*err = xstrdup("Missing user message in `input`.");
fail:
	json_decref(msgs);
	return NULL;
}

/* tools [{type:"function",name,description?,parameters?}] → chat tools. */
static json_t *rs_tools(const json_t *tools, char **err)
{
	json_t *out;
	const json_t *t;
	size_t i;

	if (!tools || json_is_null(tools))
		return NULL;
	if (!json_is_array(tools) || json_array_size(tools) > RS_MAX_TOOLS) {
		*err = xstrdup("tools: must be an array of function tools");
		return NULL;
	}
	out = json_array();
	json_array_foreach(tools, i, t) {
		const char *ty = json_string_value(json_object_get(t, "type"));
		const char *name = json_string_value(json_object_get(t,
								  "name"));
		json_t *fn;

		if (!ty || strcmp(ty, "function") != 0 || !name) {
			*err = xasprintf("tools.%zu: must be {type:\"function\""
					 ", name}", i);
			json_decref(out);
			return NULL;
		}
		fn = json_pack("{s:s}", "name", name);
		if (json_object_get(t, "description"))
			json_object_set(fn, "description",
					json_object_get(t, "description"));
		if (json_object_get(t, "parameters"))
			json_object_set(fn, "parameters",
					json_object_get(t, "parameters"));
		json_array_append_new(out, json_pack("{s:s,s:o}", "type",
						     "function", "function",
						     fn));
	}
	return out;
}

static json_t *rs_tool_choice(const json_t *tc, int *bad)
{
	const char *s = json_string_value(tc);
	const char *name;

	*bad = 0;
	if (!tc || json_is_null(tc))
		return NULL;
	if (s && (!strcmp(s, "auto") || !strcmp(s, "none") ||
		  !strcmp(s, "required")))
		return json_string(s);
	name = json_string_value(json_object_get(tc, "name"));
	if (json_is_object(tc) && name)
		return json_pack("{s:s,s:{s:s}}", "type", "function",
				 "function", "name", name);
	*bad = 1;
	return NULL;
}

/* ---- the run ------------------------------------------------------------------- */

struct rs_tool {
	char item_id[48];
	char *call_id, *name;
	char *args;
	size_t args_len;
};

struct rs_run {
	struct api_run h;	/* first */
	int stream, began;
	int64_t seq;
	char id[48], msg_id[48];
	char *model;
	int64_t created;
	char *text;		/* streamed text so far */
	size_t text_len;
	struct rs_tool *tools;	/* ntools used, at most RS_MAX_TOOLS */
	int ntools;
};

/* A new tool call entry with its item id (at most RS_MAX_TOOLS; grown
 * as calls come, none for a plain answer). */
static struct rs_tool *rs_tool_add(struct rs_run *c)
{
	struct rs_tool *t;
	char uuid[37];

	c->tools = xrealloc(c->tools, (size_t)(c->ntools + 1) *
			    sizeof(*c->tools));
	t = &c->tools[c->ntools++];
	memset(t, 0, sizeof(*t));
	store_uuid7(uuid);
	snprintf(t->item_id, sizeof(t->item_id), "fc_%s", uuid);
	return t;
}

static void rs_release(struct api_run *h)
{
	struct rs_run *c = (struct rs_run *)h;
	int i;

	for (i = 0; i < c->ntools; i++) {
		free(c->tools[i].call_id);
		free(c->tools[i].name);
		free(c->tools[i].args);
	}
	free(c->tools);
	free(c->text);
	free(c->model);
	free(c);
}

/* ---- the response resource, its items and the typed events, as text ----
 * Each writer gives the bytes store_json_dump gives for the json_pack'd
 * tree it stands for (members in insertion order; an event's "type" and
 * "sequence_number" last), without building the tree: a streamed
 * response sends ten events or more, three of them with the whole
 * resource. */

/* What the resource writes besides its strings (literals, numbers,
 * quotes), with room to spare, and what each tool call adds. */
#define RS_RESOURCE_FIXED 512
#define RS_TOOL_FIXED 96
/* An event's own text besides its strings and items. */
#define RS_EVENT_FIXED 192

/* A string member ,"key":"value" (value NULL: ""). */
static void rs_put_str(struct store_json_buf *b, const char *key,
		       const char *v)
{
	store_json_raw(b, ",\"", 2);
	store_json_raw(b, key, strlen(key));
	store_json_raw(b, "\":", 2);
	v = v ? v : "";
	store_json_str(b, v, strlen(v));
}

static size_t rs_len(const char *s)
{
	return s ? strlen(s) : 0;
}

/* A buffer of about the final size: grown by doubling from 256 bytes,
 * a ~600-byte text took three allocations, the last past 1 KiB, where
 * glibc's malloc consolidates its fast bins (~10k instructions; a chat
 * completion's ~300-byte answer never gets there). Escapes grow it as
 * before. */
static void rs_buf(struct store_json_buf *b, size_t est)
{
	b->p = xmalloc(est);
	b->cap = est;
	b->len = 0;
}

/* Room for a function_call item. */
static size_t rs_call_est(const struct rs_tool *t)
{
	return RS_TOOL_FIXED + strlen(t->item_id) + rs_len(t->call_id) +
		rs_len(t->name) + t->args_len;
}

/* Room for the resource of rs_resource_put(c, res). */
static size_t rs_resource_est(const struct rs_run *c,
			      const struct run_result *res)
{
	size_t est = RS_RESOURCE_FIXED + strlen(c->id) + strlen(c->msg_id) +
		strlen(c->model);
	int i;

	if (res)
		est += rs_len(c->text ? c->text : res->text) +
			rs_len(res->error);
	for (i = 0; res && i < c->ntools; i++)
		est += rs_call_est(&c->tools[i]);
	return est;
}

/* The message item; text NULL: no content part. */
static void rs_msg_item_put(struct store_json_buf *b, const struct rs_run *c,
			    const char *text, const char *status)
{
	API_JSON_LIT(b, "{\"type\":\"message\"");
	rs_put_str(b, "id", c->msg_id);
	API_JSON_LIT(b, ",\"role\":\"assistant\"");
	rs_put_str(b, "status", status);
	API_JSON_LIT(b, ",\"content\":[");
	if (text) {
		API_JSON_LIT(b, "{\"type\":\"output_text\"");
		rs_put_str(b, "text", text);
		API_JSON_LIT(b, ",\"annotations\":[]}");
	}
	API_JSON_LIT(b, "]}");
}

static void rs_call_item_put(struct store_json_buf *b,
			     const struct rs_tool *t, const char *status)
{
	API_JSON_LIT(b, "{\"type\":\"function_call\"");
	rs_put_str(b, "id", t->item_id);
	rs_put_str(b, "call_id", t->call_id);
	rs_put_str(b, "name", t->name);
	rs_put_str(b, "arguments", t->args);
	rs_put_str(b, "status", status);
	API_JSON_LIT(b, "}");
}

/* The response resource. res NULL: in progress. */
static void rs_resource_put(struct store_json_buf *b, const struct rs_run *c,
			    const struct run_result *res)
{
	const char *status = !res ? "in_progress" :
		res->status != RUN_OK ? "failed" :
		c->ntools > 0 ? "incomplete" : "completed";
	int64_t in = res ? res->input_tokens : 0;
	int64_t out = res ? res->output_tokens : 0;
	int i, n = 0;

	API_JSON_LIT(b, "{\"id\":");
	store_json_str(b, c->id, strlen(c->id));
	API_JSON_LIT(b, ",\"object\":\"response\",\"created_at\":");
	api_json_int(b, c->created);
	rs_put_str(b, "status", status);
	rs_put_str(b, "model", c->model);
	API_JSON_LIT(b, ",\"output\":[");
	if (res && res->status == RUN_OK) {
		const char *t = c->text ? c->text : res->text ? res->text
							      : "";

		if (*t || c->ntools == 0) {
			rs_msg_item_put(b, c, t, "completed");
			n++;
		}
		for (i = 0; i < c->ntools; i++) {
			if (n++)
				API_JSON_LIT(b, ",");
			rs_call_item_put(b, &c->tools[i], "completed");
		}
	}
	API_JSON_LIT(b, "],\"usage\":{\"input_tokens\":");
	api_json_int(b, in);
	API_JSON_LIT(b, ",\"input_tokens_details\":{\"cached_tokens\":0,"
		     "\"cache_write_tokens\":0},\"output_tokens\":");
	api_json_int(b, out);
	API_JSON_LIT(b, ",\"output_tokens_details\":{\"reasoning_tokens\":"
		     "0},\"total_tokens\":");
	api_json_int(b, in + out);
	API_JSON_LIT(b, "},\"error\":");
	if (res && res->status != RUN_OK) {
		API_JSON_LIT(b, "{\"code\":");
		store_json_str(b, res->status == RUN_TIMEOUT ? "timeout"
			       : "api_error", res->status == RUN_TIMEOUT ? 7
			       : 9);
		rs_put_str(b, "message", res->error ? res->error
						    : "internal error");
		API_JSON_LIT(b, "}");
	} else {
		API_JSON_LIT(b, "null");
	}
	if (res && c->ntools > 0)
		API_JSON_LIT(b, ",\"incomplete_details\":{\"reason\":"
			     "\"tool_calls\"}");
	API_JSON_LIT(b, "}");
}

/* The non-streamed answer: the resource (res set). */
static char *rs_resource_text(struct rs_run *c, const struct run_result *res)
{
	struct store_json_buf b;

	rs_buf(&b, rs_resource_est(c, res));
	rs_resource_put(&b, c, res);
	return store_json_done(&b, NULL);
}

/* An event's start, "event: TYPE\ndata: {", in a buffer of est bytes
 * more than its fixed text; the caller writes its members. */
static void rs_ev_open(struct store_json_buf *b, const char *type,
		       size_t est)
{
	rs_buf(b, RS_EVENT_FIXED + est);
	API_JSON_LIT(b, "event: ");
	store_json_raw(b, type, strlen(type));
	API_JSON_LIT(b, "\ndata: {");
}

/* Its end (type and sequence number) and the write. */
static void rs_ev_send(struct rs_run *c, struct store_json_buf *b,
		       const char *type)
{
	char *line;
	size_t n;

	API_JSON_LIT(b, ",\"type\":");
	store_json_str(b, type, strlen(type));
	API_JSON_LIT(b, ",\"sequence_number\":");
	api_json_int(b, c->seq++);
	API_JSON_LIT(b, "}\n\n");
	line = store_json_done(b, &n);
	http_async_write_take(c->h.as, line, n);
}

/* {"response": the resource} (res NULL: in progress). */
static void rs_ev_resource(struct rs_run *c, const char *type,
			   const struct run_result *res)
{
	struct store_json_buf b;

	rs_ev_open(&b, type, rs_resource_est(c, res));
	API_JSON_LIT(&b, "\"response\":");
	rs_resource_put(&b, c, res);
	rs_ev_send(c, &b, type);
}

/* {"output_index": i, "item": the message item or tool call i - 1}. */
static void rs_ev_item(struct rs_run *c, const char *type, int64_t idx,
		       const struct rs_tool *t, const char *text,
		       const char *status)
{
	struct store_json_buf b;

	rs_ev_open(&b, type, t ? rs_call_est(t) : RS_TOOL_FIXED +
		   strlen(c->msg_id) + rs_len(text));
	API_JSON_LIT(&b, "\"output_index\":");
	api_json_int(&b, idx);
	API_JSON_LIT(&b, ",\"item\":");
	if (t)
		rs_call_item_put(&b, t, status);
	else
		rs_msg_item_put(&b, c, text, status);
	rs_ev_send(c, &b, type);
}

/* {"item_id":..,"output_index":..[,"content_index":0]} and one string
 * member key: text (n bytes), or with key "part" the output_text part
 * of text. */
static void rs_ev_text(struct rs_run *c, const char *type,
		       const char *item_id, int64_t idx, int content,
		       const char *key, const char *text, size_t n)
{
	struct store_json_buf b;

	rs_ev_open(&b, type, strlen(item_id) + n);
	API_JSON_LIT(&b, "\"item_id\":");
	store_json_str(&b, item_id, strlen(item_id));
	API_JSON_LIT(&b, ",\"output_index\":");
	api_json_int(&b, idx);
	if (content)
		API_JSON_LIT(&b, ",\"content_index\":0");
	if (strcmp(key, "part") == 0) {
		API_JSON_LIT(&b, ",\"part\":{\"type\":\"output_text\",\"text\":");
		store_json_str(&b, text, n);
		API_JSON_LIT(&b, ",\"annotations\":[]}");
	} else {
		API_JSON_LIT(&b, ",\"");
		store_json_raw(&b, key, strlen(key));
		API_JSON_LIT(&b, "\":");
		store_json_str(&b, text, n);
	}
	rs_ev_send(c, &b, type);
}

/* created, in_progress, the message item and its part (c->h.mu held). */
static void rs_begin(struct rs_run *c)
{
	if (c->began || !c->stream)
		return;
	c->began = 1;
	http_async_header(c->h.as, "Cache-Control", "no-cache");
	http_async_stream_begin(c->h.as, 200,
				"text/event-stream; charset=utf-8");
	rs_ev_resource(c, "response.created", NULL);
	rs_ev_resource(c, "response.in_progress", NULL);
	rs_ev_item(c, "response.output_item.added", 0, NULL, NULL,
		   "in_progress");
	rs_ev_text(c, "response.content_part.added", c->msg_id, 0, 1,
		   "part", "", 0);
}

/* Worker: the run started; a stream gets its opening events. */
static void rs_begun(struct api_run *h)
{
	struct rs_run *c = (struct rs_run *)h;

	pthread_mutex_lock(&c->h.mu);
	if (!c->h.ended)
		rs_begin(c);
	pthread_mutex_unlock(&c->h.mu);
}

static void rs_delta(void *arg, const char *text, size_t len)
{
	struct rs_run *c = arg;

	pthread_mutex_lock(&c->h.mu);
	if (!c->h.ended && len > 0) {
		c->text = xrealloc(c->text, c->text_len + len + 1);
		memcpy(c->text + c->text_len, text, len);
		c->text_len += len;
		c->text[c->text_len] = '\0';
		if (c->stream) {
			rs_begin(c);
			rs_ev_text(c, "response.output_text.delta",
				   c->msg_id, 0, 1, "delta", text, len);
		}
	}
	pthread_mutex_unlock(&c->h.mu);
}

static void rs_tool_delta(void *arg, const json_t *d)
{
	struct rs_run *c = arg;
	const json_t *fn = json_object_get(d, "function");
	const char *id = json_string_value(json_object_get(d, "id"));
	const char *name = json_string_value(json_object_get(fn, "name"));
	const char *args = json_string_value(json_object_get(fn, "arguments"));
	json_int_t idx = json_integer_value(json_object_get(d, "index"));
	struct rs_tool *t;

	pthread_mutex_lock(&c->h.mu);
	if (c->h.ended || idx < 0 || idx >= RS_MAX_TOOLS)
		goto out;
	while (c->ntools <= idx)
		rs_tool_add(c);
	t = &c->tools[idx];
	if (id && !t->call_id)
		t->call_id = xstrdup(id);
	if (name && !t->name) {
		t->name = xstrdup(name);
		if (c->stream) {
			rs_begin(c);
			rs_ev_item(c, "response.output_item.added", idx + 1,
				   t, NULL, "in_progress");
		}
	}
	if (args && *args) {
		size_t n = strlen(args);

		t->args = xrealloc(t->args, t->args_len + n + 1);
		memcpy(t->args + t->args_len, args, n + 1);
		t->args_len += n;
		if (c->stream && t->name)
			rs_ev_text(c, "response.function_call_arguments."
				   "delta", t->item_id, idx + 1, 0, "delta",
				   args, n);
	}
out:
	pthread_mutex_unlock(&c->h.mu);
}

/* Adopt the final tool calls when no deltas came (c->h.mu held). */
static void rs_tools_from_result(struct rs_run *c, const json_t *calls)
{
	const json_t *tc;
	size_t i;

	if (c->ntools > 0 || !calls)
		return;
	json_array_foreach(calls, i, tc) {
		const json_t *fn = json_object_get(tc, "function");
		struct rs_tool *t;

		if (c->ntools >= RS_MAX_TOOLS)
			break;
		t = rs_tool_add(c);
		t->call_id = xstrdup(json_string_value(json_object_get(tc,
						"id")) ?: "");
		t->name = xstrdup(json_string_value(json_object_get(fn,
						"name")) ?: "");
		t->args = xstrdup(json_string_value(json_object_get(fn,
						"arguments")) ?: "");
		t->args_len = strlen(t->args);
		if (c->stream)
			rs_ev_item(c, "response.output_item.added",
				   c->ntools, t, NULL, "in_progress");
	}
}

static void rs_end(void *arg, const struct run_result *res)
{
	struct rs_run *c = arg;
	const char *text;
	int i;

	pthread_mutex_lock(&c->h.mu);
	if (c->h.ended) {
		pthread_mutex_unlock(&c->h.mu);
		return;
	}
	c->h.ended = 1;
	if (c->stream)
		rs_begin(c);
	if (res->status == RUN_OK)
		rs_tools_from_result(c, res->tool_calls);
	if (!c->text && res->text && *res->text) {
		c->text = xstrdup(res->text);
		c->text_len = strlen(c->text);
		if (c->stream && res->status == RUN_OK)
			rs_ev_text(c, "response.output_text.delta",
				   c->msg_id, 0, 1, "delta", c->text,
				   c->text_len);
	}
	text = c->text ? c->text : "";
	if (!c->stream) {
		char *s = rs_resource_text(c, res);
		int st = 200;

		if (res->status != RUN_OK)
			st = res->status == RUN_TIMEOUT ? 504 :
				res->http_status >= 400 ? res->http_status : 500;
		http_async_reply_json(c->h.as, st, s);
		free(s);
		goto out;
	}
	if (res->status == RUN_OK) {
		rs_ev_text(c, "response.output_text.done", c->msg_id, 0, 1,
			   "text", text, strlen(text));
		rs_ev_text(c, "response.content_part.done", c->msg_id, 0, 1,
			   "part", text, strlen(text));
		rs_ev_item(c, "response.output_item.done", 0, NULL, text,
			   "completed");
		for (i = 0; i < c->ntools; i++) {
			struct rs_tool *t = &c->tools[i];
			const char *args = t->args ? t->args : "";

			rs_ev_text(c, "response.function_call_arguments.done",
				   t->item_id, i + 1, 0, "arguments", args,
				   strlen(args));
			rs_ev_item(c, "response.output_item.done", i + 1, t,
				   NULL, "completed");
		}
		rs_ev_resource(c, "response.completed", res);
	} else {
		rs_ev_resource(c, "response.failed", res);
	}
	http_async_write(c->h.as, "data: [DONE]\n\n", 14);
	http_async_end(c->h.as);
out:
	c->h.as = NULL;
	pthread_mutex_unlock(&c->h.mu);
	api_run_unref(&c->h);
}

/* Upstream params from the request (new reference); -1 on a bad value. */
static json_t *rs_params(const json_t *body, char **err)
{
	json_t *p = json_object();
	const json_t *v;

	v = json_object_get(body, "temperature");
	if (v && !json_is_null(v)) {
		if (!json_is_number(v) || json_number_value(v) < 0 ||
		    json_number_value(v) > 2)
			goto bad_t;
		json_object_set(p, "temperature", (json_t *)v);
	}
	v = json_object_get(body, "top_p");
	if (v && !json_is_null(v)) {
		if (!json_is_number(v) || json_number_value(v) < 0 ||
		    json_number_value(v) > 1) {
			*err = xstrdup("top_p: must be between 0 and 1");
			goto fail;
		}
		json_object_set(p, "top_p", (json_t *)v);
	}
	v = json_object_get(body, "max_output_tokens");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			*err = xstrdup("max_output_tokens: must be a positive "
				       "integer");
			goto fail;
		}
		json_object_set(p, "max_tokens", (json_t *)v);
	}
	return p;
bad_t:
	*err = xstrdup("temperature: must be between 0 and 2");
fail:
	json_decref(p);
	return NULL;
}

void api_responses(struct api *a, struct http_req *r, struct gw_config *cfg)
{
	json_t *body = NULL, *msgs = NULL, *tools = NULL, *tc = NULL;
	json_t *params = NULL;
	struct run_request rq = {0};
	struct rs_run *c = NULL;
	const char *model, *user, *prev, *instr;
	char *err = NULL, *agent = NULL, *override = NULL, *key = NULL;
	char *sys = NULL, *files = NULL, uuid[37];
	int bad, use_history = 0;

	if (!a->d.agents) {
		api_error(r, 503, "api_error", "Agent runtime unavailable.");
		return;
	}
	if (!(body = api_body_object(r)))
		return;
	model = json_string_value(json_object_get(body, "model"));
	user = json_string_value(json_object_get(body, "user"));
	prev = json_string_value(json_object_get(body,
						 "previous_response_id"));
	instr = json_string_value(json_object_get(body, "instructions"));
	if (json_object_get(body, "model") && !model &&
	    !json_is_null(json_object_get(body, "model"))) {
		err = xstrdup("model: must be a string");
		goto bad;
	}
	if (!json_object_get(body, "input")) {
		err = xstrdup("input: Required");
		goto bad;
	}
	if (json_object_get(body, "stream") &&
	    !json_is_boolean(json_object_get(body, "stream")) &&
	    !json_is_null(json_object_get(body, "stream"))) {
		err = xstrdup("stream: must be a boolean");
		goto bad;
	}
	if (!(params = rs_params(body, &err)))
		goto bad;
	if (api_openai_agent(a, r, cfg, model, &agent, &override, &err) != 0)
		goto bad;
	rs_sys_append(&sys, instr);
	if (!(msgs = rs_input(json_object_get(body, "input"), cfg, &sys,
			      &files, &err)))
		goto bad;
	/* Files last (upstream: instructions, system items, tool choice,
	 * files). */
	rs_sys_append(&sys, files);
	tools = rs_tools(json_object_get(body, "tools"), &err);
	if (err)
		goto bad;
	tc = rs_tool_choice(json_object_get(body, "tool_choice"), &bad);
	if (bad) {
		err = xstrdup("tool_choice: must be auto, none, required or "
			      "{type:\"function\",name}");
		goto bad;
	}
	if (prev && !api_header(r, "x-openclaw-session-key") &&
	    (key = rs_map_get(&a->resp_map, prev, agent, user)))
		use_history = 1;
	if (!key && api_openai_session(r, agent, "openresponses", user, &key,
				       &err) != 0)
		goto bad;

	c = xcalloc(1, sizeof(*c));
	store_uuid7(uuid);
	snprintf(c->id, sizeof(c->id), "resp_%s", uuid);
	store_uuid7(uuid);
	snprintf(c->msg_id, sizeof(c->msg_id), "msg_%s", uuid);
	c->model = xstrdup(model && *model ? model : "openclaw");
	c->created = util_now_ms() / 1000;
	c->stream = json_is_true(json_object_get(body, "stream"));
	c->h.abort_on_gone = !api_header(r, "x-openclaw-session-key") &&
		!(user && *user) && !use_history;
	c->h.sink.on_delta = rs_delta;
	c->h.sink.on_tool_call = rs_tool_delta;
	c->h.sink.on_end = rs_end;
	c->h.sink.arg = c;
	c->h.sink.any_thread = 1;	/* on_end copies under h.mu */
	api_run_init(&c->h, a, r, rs_release);
	rs_map_put(&a->resp_map, c->id, key, agent, user);

	rq.agent_id = agent;
	rq.session_key = key;
	rq.messages = msgs;
	msgs = NULL;
	rq.use_history = use_history;
	rq.extra_system = sys;
	rq.model_override = override;
	rq.tools = tools;
	tools = NULL;
	rq.tool_choice = tc;
	tc = NULL;
	rq.params = params;
	params = NULL;
	rq.channel = api_openai_channel(r);
	rq.new_session = c->h.abort_on_gone;	/* a generated key */
	api_run_start(&c->h, &rq, rs_begun);
	goto out;
bad:
	api_error(r, 400, "invalid_request_error", err);
out:
	if (c)
		api_run_unref(&c->h);
	json_decref(body);
	json_decref(msgs);
	json_decref(tools);
	json_decref(tc);
	json_decref(params);
	free(err);
	free(agent);
	free(override);
	free(key);
	free(sys);
	free(files);
}
