/* sessions.*, chat.history, agent.wait and the session tools: parameters,
 * payload shapes and the agent-level rules. Every SQL statement (rows,
 * transcripts, idempotency; reads and the write jobs) is in
 * src/store/store-sessions.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent-int.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

#define SESSION_LIST_DEFAULT 100
#define SESSION_LIST_MAX 1000
#define SESSION_MSG_MAX_CHARS (128 * 1024)
#define SESSION_HISTORY_BYTES (6 * 1024 * 1024)

#define SESSION_ROW_COLS STORE_SESSION_ROW_COLS

const char *session_status_name(const char *stored)
{
	return strcmp(stored, "ok") == 0 ? "ok" :
	       strcmp(stored, "timeout") == 0 ? "timeout" :
	       strcmp(stored, "running") == 0 ? "running" : "error";
}

int session_run_status(struct agent_rt *rt, const char *run_id,
		       json_t **result)
{
	char *status = NULL, *key = NULL;
	json_t *res = NULL, *o;
	const char *v;
	int r;

	*result = NULL;
	r = store_session_idem_get(rt->store, run_id, &status, &key, &res);
	if (r != GW_OK)
		return r;
	o = json_pack("{s:s,s:s}", "runId", run_id, "status",
		      session_status_name(status));
	if (res) {
		if ((v = json_string_value(json_object_get(res, "error"))))
			json_object_set_new(o, "error", json_string(v));
		if (json_object_get(res, "startedAt"))
			json_object_set(o, "startedAt",
					json_object_get(res, "startedAt"));
		if (json_object_get(res, "endedAt"))
			json_object_set(o, "endedAt",
					json_object_get(res, "endedAt"));
	}
	*result = o;
	free(status);
	free(key);
	json_decref(res);
	return GW_OK;
}

json_t *session_get(struct agent_rt *rt, const char *key)
{
	return store_session_get(rt->store, key);
}

json_t *session_list(struct agent_rt *rt, const json_t *params)
{
	json_t *rows, *defaults, *out;
	const json_t *v;
	const char *agent = NULL, *search = NULL, *label = NULL;
	int64_t limit = SESSION_LIST_DEFAULT, offset = 0, active = 0, total = 0;
	int last_msg, titles;
	struct gw_config *cfg;
	struct agent_target **chain = NULL;
	size_t n = 0, i;
	char *err = NULL, *def;

	v = json_object_get(params, "limit");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		limit = json_integer_value(v) > SESSION_LIST_MAX
			? SESSION_LIST_MAX : json_integer_value(v);
	v = json_object_get(params, "offset");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		offset = json_integer_value(v);
	v = json_object_get(params, "activeMinutes");
	/* Range-check before active * 60000: a window reaching back past
	 * the epoch is no filter at all, and must not overflow. */
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    json_integer_value(v) <= util_now_ms() / 60000)
		active = json_integer_value(v);
	agent = json_string_value(json_object_get(params, "agentId"));
	search = json_string_value(json_object_get(params, "search"));
	label = json_string_value(json_object_get(params, "label"));
	last_msg = json_is_true(json_object_get(params, "includeLastMessage"));
	titles = json_is_true(json_object_get(params,
					      "includeDerivedTitles"));
	rows = store_session_list(rt->store, agent, search && *search ? search
				  : NULL, label, active ? util_now_ms() -
				  active * 60000 : 0, offset, limit, last_msg,
				  titles, &total);
	defaults = json_object();
	cfg = config_current();
	def = agent_canon_id(rt, cfg, NULL);
	if (agent_resolve_chain(rt, cfg, def, NULL, &chain, &n, &err) ==
	    GW_OK && n) {
		json_object_set_new(defaults, "modelProvider",
				    json_string(chain[0]->provider));
		json_object_set_new(defaults, "model",
				    json_string(chain[0]->model));
	} else {
		json_object_set_new(defaults, "modelProvider", json_null());
		json_object_set_new(defaults, "model", json_null());
	}
	json_object_set_new(defaults, "contextTokens", json_null());
	for (i = 0; i < n; i++)
		agent_target_free(chain[i]);
	free(chain);
	free(err);
	free(def);
	config_unref(cfg);
	out = json_pack("{s:I,s:s,s:I,s:I,s:I,s:b,s:o,s:o}", "ts",
			(json_int_t)util_now_ms(), "path",
			rt->store ? store_path(rt->store) : "",
			"count", (json_int_t)json_array_size(rows),
			"totalCount", (json_int_t)total, "limitApplied",
			(json_int_t)limit, "hasMore",
			offset + (int64_t)json_array_size(rows) < total,
			"defaults", defaults, "sessions", rows);
	json_object_set_new(out, "nextOffset",
			    offset + (int64_t)json_array_size(rows) < total
			    ? json_integer(offset +
					   (int64_t)json_array_size(rows))
			    : json_null());
	return out;
}

json_t *session_preview(struct agent_rt *rt, const json_t *keys, int limit,
			int max_chars)
{
	json_t *previews = json_array(), *items, *p;
	const json_t *k;
	const char *key, *status;
	size_t i;
	int exists;
	char *canon, *err;

	json_array_foreach(keys, i, k) {
		key = json_string_value(k);
		if (!key)
			continue;
		canon = NULL;
		err = NULL;
		if (agent_session_key_canon(rt, key, &canon, &err) != GW_OK) {
			free(err);
			json_array_append_new(previews, json_pack(
				"{s:s,s:s,s:[]}", "key", key, "status",
				"missing", "items"));
			continue;
		}
		items = store_session_preview(rt->store, canon, limit,
					      max_chars, &exists);
		status = !items ? "error" : !exists ? "missing" :
			 json_array_size(items) ? "ok" : "empty";
		if (!items)
			items = json_array();
		p = json_pack("{s:s,s:s,s:o}", "key", key, "status", status,
			      "items", items);
		json_array_append_new(previews, p);
		free(canon);
	}
	return json_pack("{s:I,s:o}", "ts", (json_int_t)util_now_ms(),
			 "previews", previews);
}

json_t *session_history(struct agent_rt *rt, const char *key, int limit,
			int max_chars)
{
	json_t *msgs, *out, *row = NULL;
	const char *sid;

	msgs = store_session_messages(rt->store, key, limit, max_chars,
				      SESSION_MSG_MAX_CHARS,
				      SESSION_HISTORY_BYTES, &row);
	sid = json_string_value(json_object_get(row, "sessionId"));
	out = json_pack("{s:s,s:o}", "sessionKey", key, "messages", msgs);
	if (sid)
		json_object_set_new(out, "sessionId", json_string(sid));
	if (row && json_object_get(row, "thinkingLevel"))
		json_object_set(out, "thinkingLevel",
				json_object_get(row, "thinkingLevel"));
	if (row && json_object_get(row, "verboseLevel"))
		json_object_set(out, "verboseLevel",
				json_object_get(row, "verboseLevel"));
	json_decref(row);
	return out;
}

/* ---- operator writes (sync; worker threads) ------------------------------- */

static int session_job_sync(struct agent_rt *rt, store_fn fn,
			    struct store_session_job *j)
{
	int r;

	if (!rt->store)
		return GW_EUNAVAIL;
	j->events = json_array();
	r = store_write_sync(rt->store, fn, j, 0);
	if (r == GW_OK)
		agent_emit(rt, j->events);
	else
		json_decref(j->events);
	j->events = NULL;
	return r;
}

/* session_job_sync with j->agent_id taken from j->key ("main" when the key
 * names no agent). */
static int session_job_sync_key(struct agent_rt *rt, store_fn fn,
				struct store_session_job *j)
{
	char *aid = agent_session_key_agent(j->key);
	int r;

	j->agent_id = aid ? aid : "main";
	r = session_job_sync(rt, fn, j);
	j->agent_id = NULL;
	free(aid);
	return r;
}

int session_patch(struct agent_rt *rt, const char *key, const json_t *patch,
		  json_t **entry, char **err)
{
	struct store_session_job j = {.key = key, .patch = patch};
	const json_t *v = json_object_get(patch, "label");
	int r;

	*entry = NULL;
	if (v && !json_is_null(v) &&
	    (!json_is_string(v) || json_string_length(v) < 1 ||
	     json_string_length(v) > 512)) {
		*err = xstrdup("invalid params: label must be a string of "
			       "1..512 characters or null");
		return GW_EINVAL;
	}
	v = json_object_get(patch, "model");
	if (v && !json_is_null(v) && !json_is_string(v)) {
		*err = xstrdup("invalid params: model must be a string or "
			       "null");
		return GW_EINVAL;
	}
	r = session_job_sync_key(rt, store_session_patch_run, &j);
	if (r == GW_OK)
		*entry = j.entry;
	else
		json_decref(j.entry);
	return r;
}

int session_reset(struct agent_rt *rt, const char *key, const char *reason,
		  json_t **entry)
{
	struct store_session_job j = {.key = key, .reason = reason ? reason
							      : "reset"};
	int r = session_job_sync_key(rt, store_session_reset_run, &j);

	*entry = r == GW_OK ? j.entry : NULL;
	if (r != GW_OK)
		json_decref(j.entry);
	return r;
}

int session_delete(struct agent_rt *rt, const char *key,
		   int delete_transcript, int *deleted)
{
	struct store_session_job j = {.key = key,
				.delete_transcript = delete_transcript};
	int r = session_job_sync(rt, store_session_delete_run, &j);

	*deleted = j.deleted;
	return r;
}

int session_inject(struct agent_rt *rt, const char *key, const char *text,
		   const char *label, char **message_id)
{
	struct store_session_job j = {.key = key, .text = text, .label = label};
	int r = session_job_sync_key(rt, store_session_inject_run, &j);

	*message_id = r == GW_OK ? j.message_id : NULL;
	if (r != GW_OK)
		free(j.message_id);
	return r;
}

/* ---- built-in session tools (/tools/invoke) --------------------------- */

#define SESSION_TOOL_LIST_DEFAULT 100
#define SESSION_TOOL_LIST_MAX 200
#define SESSION_TOOL_MSG_MAX 20
#define SESSION_TOOL_TEXT_MAX 4000
#define SESSION_TOOL_HISTORY_BYTES 81920
#define SESSION_TOOL_HISTORY_MAX 1000

/* The coarse kind of the tools (main, group, cron, hook, node, other). */
static const char *session_tool_kind(const char *key)
{
	size_t n = strlen(key);

	if (strcmp(key, "global") == 0 ||
	    (n > 5 && strcmp(key + n - 5, ":main") == 0))
		return "main";
	if (strstr(key, ":group:") || strstr(key, ":channel:"))
		return "group";
	if (strstr(key, ":cron:"))
		return "cron";
	if (strstr(key, ":hook:"))
		return "hook";
	if (strstr(key, ":node:"))
		return "node";
	return "other";
}

static int session_tool_status_ok(const char *s)
{
	static const char *const ok[] = {
		"queued", "running", "done", "failed", "killed", "timeout",
	};
	size_t i;

	for (i = 0; s && i < ARRAY_SIZE(ok); i++)
		if (strcmp(s, ok[i]) == 0)
			return 1;
	return 0;
}

static void session_tool_copy(json_t *dst, const json_t *src, const char *k)
{
	const json_t *v = json_object_get(src, k);

	if (v && !json_is_null(v) &&
	    (!json_is_string(v) || json_string_length(v)))
		json_object_set(dst, k, (json_t *)v);
}

/* A sessions.list row projected to the sessions_list tool row. */
static json_t *session_tool_row(const json_t *e)
{
	const char *key = json_string_value(json_object_get(e, "key"));
	const char *kind = session_tool_kind(key), *ch, *st;
	json_t *row;

	ch = json_string_value(json_object_get(e, "channel"));
	if (!strcmp(kind, "cron") || !strcmp(kind, "hook") ||
	    !strcmp(kind, "node"))
		ch = "internal";
	else if (!ch || !*ch)
		ch = "unknown";
	row = json_pack("{s:s,s:O,s:O,s:s,s:s,s:b,s:b}", "key", key,
			"sessionId", json_object_get(e, "sessionId"),
			"agentId", json_object_get(e, "agentId"), "kind", kind,
			"channel", ch, "archived",
			json_is_true(json_object_get(e, "archived")),
			"pinned", json_is_true(json_object_get(e, "pinned")));
	session_tool_copy(row, e, "label");
	session_tool_copy(row, e, "displayName");
	session_tool_copy(row, e, "derivedTitle");
	session_tool_copy(row, e, "lastMessagePreview");
	session_tool_copy(row, e, "updatedAt");
	session_tool_copy(row, e, "model");
	session_tool_copy(row, e, "totalTokens");
	st = json_string_value(json_object_get(e, "status"));
	if (session_tool_status_ok(st))
		json_object_set_new(row, "status", json_string(st));
	return row;
}

static int session_tool_kind_wanted(const json_t *kinds, const char *kind)
{
	const json_t *v;
	size_t i;

	if (!json_is_array(kinds) || !json_array_size(kinds))
		return 1;
	json_array_foreach(kinds, i, v)
		if (json_is_string(v) &&
		    strcasecmp(json_string_value(v), kind) == 0)
			return 1;
	return 0;
}

/* Transcript messages without tool traffic (the tools' default). */
static int session_tool_is_tool_msg(const json_t *m)
{
	const char *r = json_string_value(json_object_get(m, "role"));

	return r && (!strcmp(r, "tool") || !strcmp(r, "toolResult"));
}

json_t *agent_sessions_list(struct agent_rt *rt, const json_t *args)
{
	json_t *q = json_object(), *page, *rows = json_array(), *row, *hist;
	const json_t *kinds = json_object_get(args, "kinds"), *e, *v;
	static const char *const pass[] = {
		"agentId", "search", "label", "activeMinutes",
		"includeLastMessage", "includeDerivedTitles",
	};
	int64_t limit = SESSION_TOOL_LIST_DEFAULT, offset = 0, msgs = 0;
	int64_t next = -1;
	size_t i, j;
	int more = 0;

	v = json_object_get(args, "limit");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		limit = json_integer_value(v);
	if (limit > SESSION_TOOL_LIST_MAX)
		limit = SESSION_TOOL_LIST_MAX;
	v = json_object_get(args, "offset");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		offset = json_integer_value(v);
	v = json_object_get(args, "messageLimit");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		msgs = json_integer_value(v) > SESSION_TOOL_MSG_MAX
		       ? SESSION_TOOL_MSG_MAX : json_integer_value(v);
	for (i = 0; i < ARRAY_SIZE(pass); i++)
		if ((v = json_object_get(args, pass[i])))
			json_object_set(q, pass[i], (json_t *)v);
	/* A kinds filter applies after the page is read: read a wider one. */
	json_object_set_new(q, "limit", json_integer(
		json_array_size(kinds) ? SESSION_LIST_MAX : limit));
	json_object_set_new(q, "offset", json_integer(offset));
	page = session_list(rt, q);
	json_array_foreach(json_object_get(page, "sessions"), i, e) {
		row = session_tool_row(e);
		if (!session_tool_kind_wanted(kinds, json_string_value(
				json_object_get(row, "kind")))) {
			json_decref(row);
			continue;
		}
		if ((int64_t)json_array_size(rows) >= limit) {
			json_decref(row);
			more = 1;
			next = offset + (int64_t)i;
			break;
		}
		if (msgs) {
			hist = session_history(rt, json_string_value(
				json_object_get(row, "key")), (int)msgs * 2, 0);
			v = json_object_get(hist, "messages");
			json_object_set_new(row, "messages", json_array());
			json_array_foreach(v, j, e)
				if (!session_tool_is_tool_msg(e))
					json_array_append(json_object_get(row,
						"messages"), (json_t *)e);
			while ((int64_t)json_array_size(json_object_get(row,
					"messages")) > msgs)
				json_array_remove(json_object_get(row,
						  "messages"), 0);
			json_decref(hist);
		}
		json_array_append_new(rows, row);
	}
	if (!more && json_is_true(json_object_get(page, "hasMore"))) {
		more = 1;
		next = offset + (int64_t)json_array_size(json_object_get(page,
								   "sessions"));
	}
	row = json_pack("{s:I,s:o,s:b,s:I}", "count",
			(json_int_t)json_array_size(rows), "sessions", rows,
			"hasMore", more, "limitApplied", (json_int_t)limit);
	if (more)
		json_object_set_new(row, "nextOffset", json_integer(next));
	json_decref(page);
	json_decref(q);
	return row;
}

/* Truncate a long text field the way the history tool does; 1 if cut. */
static int session_tool_cut(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	size_t n = 0, i = 0;
	char *t;

	if (!s)
		return 0;
	/* Count code points; cut at SESSION_TOOL_TEXT_MAX of them. */
	while (s[i] && n < SESSION_TOOL_TEXT_MAX) {
		i++;
		while ((s[i] & 0xc0) == 0x80)
			i++;
		n++;
	}
	if (!s[i])
		return 0;
	t = xasprintf("%.*s\n…(truncated)…", (int)i, s);
	json_object_set_new(o, k, json_string(t));
	free(t);
	return 1;
}

/* Strip usage/cost/details and cut long texts: 1 when anything changed. */
static int session_tool_sanitize(json_t *m)
{
	static const char *const drop[] = { "details", "usage", "cost" };
	json_t *c = json_object_get(m, "content"), *b;
	size_t i;
	int cut = 0;

	for (i = 0; i < ARRAY_SIZE(drop); i++)
		if (json_object_get(m, drop[i])) {
			json_object_del(m, drop[i]);
			cut = 1;
		}
	cut |= session_tool_cut(m, "content");
	cut |= session_tool_cut(m, "text");
	json_array_foreach(c, i, b) {
		if (!json_is_object(b))
			continue;
		cut |= session_tool_cut(b, "text");
		cut |= session_tool_cut(b, "thinking");
	}
	return cut;
}

static size_t session_tool_bytes(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = s ? strlen(s) : 0;

	free(s);
	return n;
}

json_t *agent_session_history(struct agent_rt *rt, const char *session_key,
			      int limit, int include_tools)
{
	json_t *row, *h, *msgs, *m, *out;
	const json_t *src;
	size_t i, bytes;
	int cut = 0, dropped = 0, hard = 0;

	if (!session_key || !(row = session_get(rt, session_key)))
		return NULL;
	json_decref(row);
	msgs = json_array();
	if (limit <= 0 || limit > SESSION_TOOL_HISTORY_MAX)
		limit = limit <= 0 ? STORE_SESSION_HISTORY_MAX
				   : SESSION_TOOL_HISTORY_MAX;
	h = session_history(rt, session_key, limit, 0);
	json_array_foreach(json_object_get(h, "messages"), i, src) {
		if (!include_tools && session_tool_is_tool_msg(src))
			continue;
		m = json_deep_copy(src);
		cut |= session_tool_sanitize(m);
		json_array_append_new(msgs, m);
	}
	json_decref(h);
	/* Oldest first out until the page fits the byte budget; a single
	 * message that does not fit becomes a placeholder. */
	bytes = session_tool_bytes(msgs);
	while (bytes > SESSION_TOOL_HISTORY_BYTES &&
	       json_array_size(msgs) > 1) {
		json_array_remove(msgs, 0);
		dropped = 1;
		bytes = session_tool_bytes(msgs);
	}
	if (bytes > SESSION_TOOL_HISTORY_BYTES) {
		json_array_clear(msgs);
		json_array_append_new(msgs, json_pack("{s:s,s:s}", "role",
			"assistant", "content",
			"[sessions_history omitted: message too large]"));
		hard = 1;
		bytes = session_tool_bytes(msgs);
	}
	out = json_pack("{s:s,s:o,s:b,s:b,s:b,s:b,s:I}", "sessionKey",
			session_key, "messages", msgs, "truncated",
			dropped || cut || hard, "droppedMessages",
			dropped || hard, "contentTruncated", cut,
			"contentRedacted", 0, "bytes", (json_int_t)bytes);
	return out;
}

json_t *agent_session_status(struct agent_rt *rt, const char *session_key)
{
	struct agent_target **chain = NULL;
	struct gw_config *cfg;
	json_t *row, *runs, *out;
	const char *v;
	char *over, *err = NULL;
	size_t n = 0, i;

	if (!session_key || !(row = session_get(rt, session_key)))
		return NULL;
	runs = run_ids_of_session(rt, session_key);
	out = json_pack("{s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:b,s:O}", "key",
			session_key, "sessionId",
			json_object_get(row, "sessionId"), "agentId",
			json_object_get(row, "agentId"), "inputTokens",
			json_object_get(row, "inputTokens"), "outputTokens",
			json_object_get(row, "outputTokens"), "totalTokens",
			json_object_get(row, "totalTokens"), "updatedAt",
			json_object_get(row, "updatedAt"), "running",
			json_array_size(runs) > 0, "runs", runs);
	json_decref(runs);
	session_tool_copy(out, row, "model");
	session_tool_copy(out, row, "modelProvider");
	session_tool_copy(out, row, "channel");
	session_tool_copy(out, row, "label");
	session_tool_copy(out, row, "status");
	session_tool_copy(out, row, "lastRunId");
	session_tool_copy(out, row, "lastRunError");
	session_tool_copy(out, row, "createdAt");
	session_tool_copy(out, row, "thinkingLevel");
	session_tool_copy(out, row, "verboseLevel");
	over = store_session_model_override(rt->store, session_key);
	json_object_set_new(out, "modelOverride",
			    over ? json_string(over) : json_null());
	free(over);
	v = json_string_value(json_object_get(row, "kind"));
	json_object_set_new(out, "kind", json_string(v ? v : "direct"));
	cfg = config_current();
	v = json_string_value(json_object_get(row, "agentId"));
	if (agent_resolve_chain(rt, cfg, v ? v : "main", NULL, &chain, &n,
				&err) == GW_OK && n)
		json_object_set_new(out, "defaultModel",
				    json_string(chain[0]->ref));
	for (i = 0; i < n; i++)
		agent_target_free(chain[i]);
	free(chain);
	free(err);
	config_unref(cfg);
	json_decref(row);
	return out;
}
