/* Sessions in SQLite: the session rows, transcripts (an append and the row
 * bump commit together), the idempotency record of runs, and the queries
 * behind sessions.*, chat.history and agent.wait. Writes run as store jobs
 * on the writer thread; reads use this thread's reader connection. */
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

#define SESSION_PREVIEW_LEN 200
#define SESSION_LIST_DEFAULT 100
#define SESSION_LIST_MAX 1000
#define SESSION_RUNNING_TTL_MS (24LL * 3600 * 1000)
#define SESSION_MSG_MAX_CHARS (128 * 1024)
#define SESSION_HISTORY_BYTES (6 * 1024 * 1024)

#define SESSION_ROW_COLS \
	"key, session_id, agent_id, channel, label, settings, status, " \
	"last_run_id, last_error, model, input_tokens, output_tokens, " \
	"message_count, last_preview, created_at, updated_at"

static int session_fail(sqlite3 *db, const char *what)
{
	log_warn("store", "%s: %s", what, sqlite3_errmsg(db));
	return GW_ESTORE;
}

static int session_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s)
{
	if (sqlite3_prepare_v2(db, sql, -1, s, NULL) != SQLITE_OK)
		return session_fail(db, "prepare");
	return GW_OK;
}

static void session_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static const char *session_col(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

/* Plain text of a message content (string or [{type:text,text}]). */
char *session_content_text(const json_t *content)
{
	const json_t *p;
	char *out = NULL, *tmp;
	const char *t;
	size_t i;

	if (json_is_string(content))
		return xstrdup(json_string_value(content));
	json_array_foreach(content, i, p) {
		t = json_string_value(json_object_get(p, "text"));
		if (!t)
			continue;
		tmp = out ? xasprintf("%s\n%s", out, t) : xstrdup(t);
		free(out);
		out = tmp;
	}
	return out ? out : xstrdup("");
}

json_t *session_message_new(const char *role, const char *text)
{
	return json_pack("{s:s,s:[{s:s,s:s}],s:I}", "role", role, "content",
			 "type", "text", "text", text ? text : "",
			 "timestamp", (json_int_t)util_now_ms());
}

static const char *session_kind(const char *key)
{
	if (strstr(key, ":group:") || strstr(key, ":channel:"))
		return "group";
	if (strcmp(key, "global") == 0)
		return "global";
	return "direct";
}

/* A GatewaySessionRow from a statement over SESSION_ROW_COLS. */
static json_t *session_row_json(sqlite3_stmt *s)
{
	const char *key = session_col(s, 0), *v, *slash;
	json_t *row, *settings, *sv;
	const char *k;
	int64_t in, out;

	row = json_pack("{s:s,s:s,s:s,s:s}", "key", key, "kind",
			session_kind(key), "sessionId", session_col(s, 1),
			"agentId", session_col(s, 2));
	if ((v = session_col(s, 3)))
		json_object_set_new(row, "channel", json_string(v));
	if ((v = session_col(s, 4))) {
		json_object_set_new(row, "label", json_string(v));
		json_object_set_new(row, "displayName", json_string(v));
	}
	settings = json_loads(session_col(s, 5) ? session_col(s, 5) : "{}", 0,
			      NULL);
	json_object_foreach(settings, k, sv) {
		if (strcmp(k, "model") == 0 || json_object_get(row, k))
			continue;
		json_object_set(row, k, sv);
	}
	if ((v = session_col(s, 6)))
		json_object_set_new(row, "status", json_string(v));
	if ((v = session_col(s, 7)) && *v)
		json_object_set_new(row, "lastRunId", json_string(v));
	if ((v = session_col(s, 8)))
		json_object_set_new(row, "lastRunError", json_string(v));
	v = json_string_value(json_object_get(settings, "model"));
	if (v)
		json_object_set_new(row, "modelOverrideSource",
				    json_string("user"));
	else
		v = session_col(s, 9);
	if (v && (slash = strchr(v, '/'))) {
		json_object_set_new(row, "modelProvider",
			json_stringn(v, (size_t)(slash - v)));
		json_object_set_new(row, "model", json_string(slash + 1));
	} else if (v) {
		json_object_set_new(row, "model", json_string(v));
	}
	json_decref(settings);
	in = sqlite3_column_int64(s, 10);
	out = sqlite3_column_int64(s, 11);
	json_object_set_new(row, "inputTokens", json_integer(in));
	json_object_set_new(row, "outputTokens", json_integer(out));
	json_object_set_new(row, "totalTokens", json_integer(in + out));
	if ((v = session_col(s, 13)))
		json_object_set_new(row, "lastMessagePreview", json_string(v));
	json_object_set_new(row, "createdAt",
			    json_integer(sqlite3_column_int64(s, 14)));
	json_object_set_new(row, "updatedAt",
			    json_integer(sqlite3_column_int64(s, 15)));
	json_object_set_new(row, "isMain",
		json_boolean(strlen(key) > 5 &&
			     strcmp(key + strlen(key) - 5, ":main") == 0));
	return row;
}

static json_t *session_row_load(sqlite3 *db, const char *key)
{
	sqlite3_stmt *s = NULL;
	json_t *row = NULL;

	if (session_prep(db, "SELECT " SESSION_ROW_COLS " FROM sessions "
			 "WHERE key = ?", &s) != GW_OK)
		return NULL;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		row = session_row_json(s);
	sqlite3_finalize(s);
	return row;
}

static void session_event(json_t *events, const char *event, const char *key,
			  json_t *payload)
{
	json_array_append_new(events, json_pack("{s:s,s:s,s:o}", "event",
						event, "key", key, "payload",
						payload));
}

/* Queue a sessions.changed event carrying the current row. */
static void session_changed(sqlite3 *db, json_t *events, const char *key,
			    const char *reason, const char *run_id)
{
	json_t *p = session_row_load(db, key);

	if (!p)
		p = json_object();
	json_object_del(p, "key");
	json_object_set_new(p, "sessionKey", json_string(key));
	json_object_set_new(p, "reason", json_string(reason));
	json_object_set_new(p, "ts", json_integer(util_now_ms()));
	if (run_id)
		json_object_set_new(p, "runId", json_string(run_id));
	session_event(events, "sessions.changed", key, p);
}

/* Create the row when absent (tx). */
static int session_ensure_tx(sqlite3 *db, const char *key,
			     const char *agent_id, const char *channel)
{
	sqlite3_stmt *s = NULL;
	char sid[37];
	int64_t now = util_now_ms();
	int r;

	util_uuid(sid);
	r = session_prep(db, "INSERT INTO sessions(key, session_id, "
			 "agent_id, channel, created_at, updated_at) "
			 "VALUES(?,?,?,?,?,?) ON CONFLICT(key) DO NOTHING",
			 &s);
	if (r != GW_OK)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, sid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, agent_id, -1, SQLITE_TRANSIENT);
	session_bind_text(s, 4, channel);
	sqlite3_bind_int64(s, 5, now);
	sqlite3_bind_int64(s, 6, now);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : session_fail(db, "session insert");
	sqlite3_finalize(s);
	return r;
}

struct session_msg_meta {
	const char *run_id;
	const char *status;
	int64_t in_tok, out_tok;
	const char *model;
};

/* Append one message to the current session of key and bump the row
 * (tx). Queues a session.message event. *id_out (may be NULL) gets the
 * message id. */
static int session_append_tx(sqlite3 *db, const char *key, json_t *msg,
			     const struct session_msg_meta *m, json_t *events,
			     char **id_out)
{
	sqlite3_stmt *s = NULL;
	char mid[37], *text = NULL, *mjson = NULL, *preview = NULL;
	const char *role = json_string_value(json_object_get(msg, "role"));
	char *sid = NULL;
	int64_t seq, now = util_now_ms();
	int r;

	r = session_prep(db, "SELECT session_id, message_count FROM sessions "
			 "WHERE key = ?", &s);
	if (r != GW_OK)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return GW_ENOTFOUND;
	}
	sid = xstrdup(session_col(s, 0));
	seq = sqlite3_column_int64(s, 1) + 1;
	sqlite3_finalize(s);
	s = NULL;
	util_uuid(mid);
	text = session_content_text(json_object_get(msg, "content"));
	mjson = json_dumps(msg, JSON_COMPACT);
	r = session_prep(db, "INSERT INTO transcript(session_key, session_id, "
			 "seq, message_id, role, text, message, run_id, "
			 "status, input_tokens, output_tokens, model, "
			 "created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, sid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, seq);
	sqlite3_bind_text(s, 4, mid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, role ? role : "other", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 6, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 7, mjson, -1, SQLITE_TRANSIENT);
	session_bind_text(s, 8, m ? m->run_id : NULL);
	session_bind_text(s, 9, m ? m->status : NULL);
	if (m && (m->in_tok || m->out_tok)) {
		sqlite3_bind_int64(s, 10, m->in_tok);
		sqlite3_bind_int64(s, 11, m->out_tok);
	}
	session_bind_text(s, 12, m ? m->model : NULL);
	sqlite3_bind_int64(s, 13, now);
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = session_fail(db, "transcript append");
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	preview = xstrndup(text, SESSION_PREVIEW_LEN);
	r = session_prep(db, "UPDATE sessions SET message_count = ?, "
			 "last_preview = ?, updated_at = ? WHERE key = ?", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_int64(s, 1, seq);
	sqlite3_bind_text(s, 2, preview, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_text(s, 4, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = session_fail(db, "session bump");
		goto out;
	}
	session_event(events, "session.message", key,
		      json_pack("{s:s,s:O,s:s,s:I,s:s}", "sessionKey", key,
				"message", msg, "messageId", mid,
				"messageSeq", (json_int_t)seq, "sessionId",
				sid));
	if (id_out)
		*id_out = xstrdup(mid);
	r = GW_OK;
out:
	sqlite3_finalize(s);
	free(sid);
	free(text);
	free(mjson);
	free(preview);
	return r;
}

int session_begin_tx(sqlite3 *db, struct session_begin *b, json_t *events)
{
	sqlite3_stmt *s = NULL;
	struct session_msg_meta m = {.run_id = b->run_id};
	int64_t now = util_now_ms();
	json_t *msg;
	size_t i;
	int r;

	if (sqlite3_exec(db, "DELETE FROM idempotency WHERE expires_at < "
			 "CAST((julianday('now') - 2440587.5) * 86400000 AS "
			 "INTEGER)", NULL, NULL, NULL) != SQLITE_OK)
		return session_fail(db, "idempotency sweep");
	r = session_ensure_tx(db, b->key, b->agent_id, b->channel);
	if (r != GW_OK)
		return r;
	r = session_prep(db, "UPDATE sessions SET status = 'running', "
			 "last_run_id = ?, last_error = NULL, "
			 "channel = coalesce(?, channel), updated_at = ? "
			 "WHERE key = ?", &s);
	if (r != GW_OK)
		return r;
	sqlite3_bind_text(s, 1, b->run_id, -1, SQLITE_TRANSIENT);
	session_bind_text(s, 2, b->channel);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_text(s, 4, b->key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : session_fail(db, "session run");
	sqlite3_finalize(s);
	if (r != GW_OK)
		return r;
	json_array_foreach(b->messages, i, msg) {
		r = session_append_tx(db, b->key, msg, &m, events, NULL);
		if (r != GW_OK)
			return r;
	}
	r = session_prep(db, "INSERT OR REPLACE INTO idempotency(run_id, "
			 "session_key, status, created_at, expires_at) "
			 "VALUES(?,?,'running',?,?)", &s);
	if (r != GW_OK)
		return r;
	sqlite3_bind_text(s, 1, b->run_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, b->key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, now + SESSION_RUNNING_TTL_MS);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : session_fail(db, "idempotency");
	sqlite3_finalize(s);
	if (r != GW_OK)
		return r;
	session_changed(db, events, b->key, "run.start", b->run_id);
	return GW_OK;
}

static const char *session_row_status(const char *run_status)
{
	if (strcmp(run_status, "ok") == 0)
		return "done";
	if (strcmp(run_status, "aborted") == 0)
		return "killed";
	if (strcmp(run_status, "timeout") == 0)
		return "timeout";
	return "failed";
}

int session_end_tx(sqlite3 *db, struct session_end *e, json_t *events)
{
	struct session_msg_meta m = {
		.run_id = e->run_id, .status = e->status,
		.in_tok = e->in_tok, .out_tok = e->out_tok, .model = e->model,
	};
	sqlite3_stmt *s = NULL;
	int64_t now = util_now_ms();
	char *rjson = NULL;
	int r;

	if (e->message && !e->skip_row) {
		r = session_append_tx(db, e->key, e->message, &m, events,
				      NULL);
		if (r != GW_OK && r != GW_ENOTFOUND)
			return r;
	}
	if (e->skip_row)
		goto idem;
	r = session_prep(db, "UPDATE sessions SET status = ?, "
			 "input_tokens = input_tokens + ?, "
			 "output_tokens = output_tokens + ?, "
			 "model = coalesce(?, model), last_error = ?, "
			 "updated_at = ? WHERE key = ?", &s);
	if (r != GW_OK)
		return r;
	sqlite3_bind_text(s, 1, session_row_status(e->status), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, e->in_tok);
	sqlite3_bind_int64(s, 3, e->out_tok);
	session_bind_text(s, 4, e->model);
	session_bind_text(s, 5, json_string_value(json_object_get(e->result,
								  "error")));
	sqlite3_bind_int64(s, 6, now);
	sqlite3_bind_text(s, 7, e->key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : session_fail(db, "session end");
	sqlite3_finalize(s);
	s = NULL;
	if (r != GW_OK)
		return r;
idem:
	rjson = json_dumps(e->result, JSON_COMPACT);
	r = session_prep(db, "INSERT OR REPLACE INTO idempotency(run_id, "
			 "session_key, status, result, created_at, ended_at, "
			 "expires_at) VALUES(?,?,?,?,coalesce((SELECT "
			 "created_at FROM idempotency WHERE run_id = ?1), ?5),"
			 "?5,?6)", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_text(s, 1, e->run_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, e->key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, e->status, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, rjson, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 5, now);
	sqlite3_bind_int64(s, 6, now + SESSION_IDEM_TTL_MS);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : session_fail(db, "idempotency end");
	if (r == GW_OK && !e->skip_row)
		session_changed(db, events, e->key, "run.end", e->run_id);
out:
	sqlite3_finalize(s);
	free(rjson);
	return r;
}

/* ---- reads ------------------------------------------------------------------ */

static sqlite3 *session_reader(struct store *st)
{
	return st ? store_reader(st) : NULL;
}

int session_history_openai(struct store *st, const char *key, int max,
			   json_t *out)
{
	return session_history_openai_db(session_reader(st), key, max, out);
}

int session_history_openai_db(sqlite3 *db, const char *key, int max,
			      json_t *out)
{
	sqlite3_stmt *s = NULL;
	json_t *tmp = json_array(), *m;
	const char *role;
	size_t i;

	if (!db) {
		json_decref(tmp);
		return GW_ESTORE;
	}
	if (session_prep(db, "SELECT role, text FROM transcript t JOIN "
			 "sessions s ON s.key = t.session_key AND "
			 "s.session_id = t.session_id WHERE t.session_key = ? "
			 "ORDER BY t.seq DESC LIMIT ?", &s) != GW_OK) {
		json_decref(tmp);
		return GW_ESTORE;
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, max);
	while (sqlite3_step(s) == SQLITE_ROW) {
		role = session_col(s, 0);
		if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
			continue;
		json_array_append_new(tmp, json_pack("{s:s,s:s}", "role", role,
						     "content",
						     session_col(s, 1)));
	}
	sqlite3_finalize(s);
	for (i = json_array_size(tmp); i > 0; i--) {
		m = json_array_get(tmp, i - 1);
		json_array_append(out, m);
	}
	json_decref(tmp);
	return GW_OK;
}

int session_idem_get(struct store *st, const char *run_id, char **status,
		     char **session_key, json_t **result)
{
	sqlite3 *db = session_reader(st);
	sqlite3_stmt *s = NULL;
	int r = GW_ENOTFOUND;

	*status = NULL;
	*session_key = NULL;
	*result = NULL;
	if (!db)
		return GW_ESTORE;
	if (session_prep(db, "SELECT status, session_key, result FROM "
			 "idempotency WHERE run_id = ? AND expires_at >= ?",
			 &s) != GW_OK)
		return GW_ESTORE;
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, util_now_ms());
	if (sqlite3_step(s) == SQLITE_ROW) {
		*status = xstrdup(session_col(s, 0));
		*session_key = xstrdup(session_col(s, 1));
		if (session_col(s, 2))
			*result = json_loads(session_col(s, 2), 0, NULL);
		r = GW_OK;
	}
	sqlite3_finalize(s);
	return r;
}

int session_run_status(struct agent_rt *rt, const char *run_id,
		       json_t **result)
{
	char *status = NULL, *key = NULL;
	json_t *res = NULL, *o;
	const char *v;
	int r;

	*result = NULL;
	r = session_idem_get(rt->store, run_id, &status, &key, &res);
	if (r != GW_OK)
		return r;
	o = json_pack("{s:s,s:s}", "runId", run_id, "status",
		      strcmp(status, "ok") == 0 ? "ok" :
		      strcmp(status, "timeout") == 0 ? "timeout" :
		      strcmp(status, "running") == 0 ? "running" : "error");
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
	sqlite3 *db = session_reader(rt->store);

	return db ? session_row_load(db, key) : NULL;
}

/* The first user message of the current session, shortened (a title). */
static char *session_derived_title(sqlite3 *db, const char *key)
{
	sqlite3_stmt *s = NULL;
	char *t = NULL;

	if (session_prep(db, "SELECT t.text FROM transcript t JOIN sessions s "
			 "ON s.key = t.session_key AND s.session_id = "
			 "t.session_id WHERE t.session_key = ? AND t.role = "
			 "'user' ORDER BY t.seq LIMIT 1", &s) != GW_OK)
		return NULL;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW && session_col(s, 0))
		t = xstrndup(session_col(s, 0), 60);
	sqlite3_finalize(s);
	return t;
}

json_t *session_list(struct agent_rt *rt, const json_t *params)
{
	sqlite3 *db = session_reader(rt->store);
	sqlite3_stmt *s = NULL;
	json_t *rows = json_array(), *row, *defaults, *out;
	const json_t *v;
	const char *agent = NULL, *search = NULL, *label = NULL, *key;
	int64_t limit = SESSION_LIST_DEFAULT, offset = 0, active = 0, total = 0;
	int last_msg, titles;
	struct gw_config *cfg;
	struct agent_target **chain = NULL;
	size_t n = 0, i;
	char *err = NULL, *def, *t;

	v = json_object_get(params, "limit");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		limit = json_integer_value(v) > SESSION_LIST_MAX
			? SESSION_LIST_MAX : json_integer_value(v);
	v = json_object_get(params, "offset");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		offset = json_integer_value(v);
	v = json_object_get(params, "activeMinutes");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		active = json_integer_value(v);
	agent = json_string_value(json_object_get(params, "agentId"));
	search = json_string_value(json_object_get(params, "search"));
	label = json_string_value(json_object_get(params, "label"));
	last_msg = json_is_true(json_object_get(params, "includeLastMessage"));
	titles = json_is_true(json_object_get(params,
					      "includeDerivedTitles"));
	if (db && session_prep(db, "SELECT " SESSION_ROW_COLS " FROM sessions "
			       "WHERE (?1 IS NULL OR agent_id = lower(?1)) "
			       "AND (?2 IS NULL OR instr(lower(key), "
			       "lower(?2)) OR instr(lower(coalesce(label, "
			       "'')), lower(?2))) AND (?3 IS NULL OR label = "
			       "?3) AND (?4 = 0 OR updated_at >= ?4) ORDER BY "
			       "updated_at DESC, key", &s) == GW_OK) {
		session_bind_text(s, 1, agent);
		session_bind_text(s, 2, search && *search ? search : NULL);
		session_bind_text(s, 3, label);
		sqlite3_bind_int64(s, 4, active ? util_now_ms() -
				   active * 60000 : 0);
		while (sqlite3_step(s) == SQLITE_ROW) {
			total++;
			if (total <= offset ||
			    (int64_t)json_array_size(rows) >= limit)
				continue;
			row = session_row_json(s);
			if (!last_msg)
				json_object_del(row, "lastMessagePreview");
			key = session_col(s, 0);
			if (titles && (t = session_derived_title(db, key))) {
				json_object_set_new(row, "derivedTitle",
						    json_string(t));
				free(t);
			}
			json_array_append_new(rows, row);
		}
		sqlite3_finalize(s);
	}
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

static const char *session_preview_role(const char *r)
{
	if (!strcmp(r, "user") || !strcmp(r, "assistant") ||
	    !strcmp(r, "tool") || !strcmp(r, "system"))
		return r;
	return "other";
}

json_t *session_preview(struct agent_rt *rt, const json_t *keys, int limit,
			int max_chars)
{
	sqlite3 *db = session_reader(rt->store);
	sqlite3_stmt *s = NULL;
	json_t *previews = json_array(), *items, *tmp, *p;
	const json_t *k;
	const char *key, *status;
	size_t i, j;
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
		items = json_array();
		tmp = json_array();
		exists = 0;
		status = "error";
		if (db && session_prep(db, "SELECT 1 FROM sessions WHERE key "
				       "= ?", &s) == GW_OK) {
			sqlite3_bind_text(s, 1, canon, -1, SQLITE_TRANSIENT);
			exists = sqlite3_step(s) == SQLITE_ROW;
			sqlite3_finalize(s);
		}
		if (db && exists &&
		    session_prep(db, "SELECT t.role, t.text FROM transcript t "
				 "JOIN sessions s ON s.key = t.session_key "
				 "AND s.session_id = t.session_id WHERE "
				 "t.session_key = ? ORDER BY t.seq DESC "
				 "LIMIT ?", &s) == GW_OK) {
			sqlite3_bind_text(s, 1, canon, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int(s, 2, limit);
			while (sqlite3_step(s) == SQLITE_ROW) {
				char *t = xstrndup(session_col(s, 1),
						   (size_t)max_chars);

				json_array_append_new(tmp, json_pack(
					"{s:s,s:s}", "role",
					session_preview_role(
						session_col(s, 0)),
					"text", t));
				free(t);
			}
			sqlite3_finalize(s);
		}
		for (j = json_array_size(tmp); j > 0; j--)
			json_array_append(items, json_array_get(tmp, j - 1));
		json_decref(tmp);
		if (db)
			status = !exists ? "missing" :
				 json_array_size(items) ? "ok" : "empty";
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
	sqlite3 *db = session_reader(rt->store);
	sqlite3_stmt *s = NULL;
	json_t *msgs = json_array(), *tmp = json_array(), *m, *out, *row;
	const char *sid = NULL;
	size_t i, total = 0, len;

	row = db ? session_row_load(db, key) : NULL;
	if (row)
		sid = json_string_value(json_object_get(row, "sessionId"));
	if (db && row &&
	    session_prep(db, "SELECT message, length(message), message_id, "
			 "seq, text FROM transcript WHERE session_key = ? AND "
			 "session_id = ? ORDER BY seq DESC LIMIT ?", &s) ==
	    GW_OK) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 2, sid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 3, limit);
		while (sqlite3_step(s) == SQLITE_ROW) {
			len = (size_t)sqlite3_column_int64(s, 1);
			if (len > SESSION_MSG_MAX_CHARS ||
			    (max_chars > 0 &&
			     strlen(session_col(s, 4)) > (size_t)max_chars)) {
				m = session_message_new("assistant",
					"[chat.history omitted: message too "
					"large]");
			} else {
				m = json_loads(session_col(s, 0), 0, NULL);
			}
			if (!m)
				continue;
			total += len;
			if (total > SESSION_HISTORY_BYTES) {
				json_decref(m);
				break;
			}
			json_object_set_new(m, "messageId",
					    json_string(session_col(s, 2)));
			json_object_set_new(m, "messageSeq", json_integer(
				sqlite3_column_int64(s, 3)));
			json_array_append_new(tmp, m);
		}
		sqlite3_finalize(s);
	}
	for (i = json_array_size(tmp); i > 0; i--)
		json_array_append(msgs, json_array_get(tmp, i - 1));
	json_decref(tmp);
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

struct session_job {
	const char *key;
	const char *agent_id;
	const json_t *patch;
	const char *reason;
	const char *text;
	const char *label;
	int delete_transcript;
	int deleted;
	char *message_id;
	char *err;
	json_t *entry;
	json_t *events;
};

static const char *const session_patch_denied[] = {
	"key", "agentId", "expectedSessionId", "expectedLifecycleRevision",
	"expectedPermissionMode", "expectedToolOverrides",
	"expectedMarkedUnreadAt",
};

static int session_patch_run(sqlite3 *db, void *arg)
{
	struct session_job *j = arg;
	sqlite3_stmt *s = NULL;
	json_t *settings = NULL, *v;
	const char *k;
	char *sj = NULL;
	size_t i;
	int r;

	r = session_ensure_tx(db, j->key, j->agent_id, NULL);
	if (r != GW_OK)
		return r;
	if (session_prep(db, "SELECT settings FROM sessions WHERE key = ?",
			 &s) != GW_OK)
		return GW_ESTORE;
	sqlite3_bind_text(s, 1, j->key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		settings = json_loads(session_col(s, 0), 0, NULL);
	sqlite3_finalize(s);
	s = NULL;
	if (!json_is_object(settings)) {
		json_decref(settings);
		settings = json_object();
	}
	json_object_foreach((json_t *)j->patch, k, v) {
		for (i = 0; i < ARRAY_SIZE(session_patch_denied); i++)
			if (strcmp(k, session_patch_denied[i]) == 0)
				break;
		if (i < ARRAY_SIZE(session_patch_denied) ||
		    strcmp(k, "label") == 0)
			continue;
		if (json_is_null(v))
			json_object_del(settings, k);
		else
			json_object_set(settings, k, v);
	}
	sj = json_dumps(settings, JSON_COMPACT);
	v = json_object_get(j->patch, "label");
	r = session_prep(db, v ? "UPDATE sessions SET settings = ?, "
			 "updated_at = ?, label = ?3 WHERE key = ?4"
			 : "UPDATE sessions SET settings = ?, updated_at = ? "
			 "WHERE key = ?4", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_text(s, 1, sj, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, util_now_ms());
	if (v)
		session_bind_text(s, 3, json_string_value(v));
	sqlite3_bind_text(s, 4, j->key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : session_fail(db, "session patch");
	if (r == GW_OK) {
		j->entry = session_row_load(db, j->key);
		session_changed(db, j->events, j->key, "patch", NULL);
	}
out:
	sqlite3_finalize(s);
	json_decref(settings);
	free(sj);
	return r;
}

static int session_job_sync(struct agent_rt *rt, store_fn fn,
			    struct session_job *j)
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
				struct session_job *j)
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
	struct session_job j = {.key = key, .patch = patch};
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
	r = session_job_sync_key(rt, session_patch_run, &j);
	if (r == GW_OK)
		*entry = j.entry;
	else
		json_decref(j.entry);
	return r;
}

static int session_reset_run(sqlite3 *db, void *arg)
{
	struct session_job *j = arg;
	sqlite3_stmt *s = NULL;
	char sid[37];
	int r;

	r = session_ensure_tx(db, j->key, j->agent_id, NULL);
	if (r != GW_OK)
		return r;
	util_uuid(sid);
	if (session_prep(db, "UPDATE sessions SET session_id = ?, "
			 "message_count = 0, last_preview = NULL, status = "
			 "NULL, last_error = NULL, input_tokens = 0, "
			 "output_tokens = 0, updated_at = ? WHERE key = ?",
			 &s) != GW_OK)
		return GW_ESTORE;
	sqlite3_bind_text(s, 1, sid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, util_now_ms());
	sqlite3_bind_text(s, 3, j->key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : session_fail(db, "session reset");
	sqlite3_finalize(s);
	if (r == GW_OK) {
		j->entry = session_row_load(db, j->key);
		session_changed(db, j->events, j->key, j->reason, NULL);
	}
	return r;
}

int session_reset(struct agent_rt *rt, const char *key, const char *reason,
		  json_t **entry)
{
	struct session_job j = {.key = key, .reason = reason ? reason
							      : "reset"};
	int r = session_job_sync_key(rt, session_reset_run, &j);

	*entry = r == GW_OK ? j.entry : NULL;
	if (r != GW_OK)
		json_decref(j.entry);
	return r;
}

static int session_delete_run(sqlite3 *db, void *arg)
{
	struct session_job *j = arg;
	sqlite3_stmt *s = NULL;
	int r;

	if (session_prep(db, "DELETE FROM sessions WHERE key = ?", &s) !=
	    GW_OK)
		return GW_ESTORE;
	sqlite3_bind_text(s, 1, j->key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : session_fail(db, "session delete");
	sqlite3_finalize(s);
	if (r != GW_OK)
		return r;
	j->deleted = sqlite3_changes(db) > 0;
	if (j->delete_transcript) {
		if (session_prep(db, "DELETE FROM transcript WHERE "
				 "session_key = ?", &s) != GW_OK)
			return GW_ESTORE;
		sqlite3_bind_text(s, 1, j->key, -1, SQLITE_TRANSIENT);
		r = sqlite3_step(s) == SQLITE_DONE
			? GW_OK : session_fail(db, "transcript delete");
		sqlite3_finalize(s);
	}
	if (r == GW_OK && j->deleted)
		session_event(j->events, "sessions.changed", j->key,
			      json_pack("{s:s,s:s,s:I}", "sessionKey", j->key,
					"reason", "delete", "ts",
					(json_int_t)util_now_ms()));
	return r;
}

int session_delete(struct agent_rt *rt, const char *key,
		   int delete_transcript, int *deleted)
{
	struct session_job j = {.key = key,
				.delete_transcript = delete_transcript};
	int r = session_job_sync(rt, session_delete_run, &j);

	*deleted = j.deleted;
	return r;
}

static int session_inject_run(sqlite3 *db, void *arg)
{
	struct session_job *j = arg;
	struct session_msg_meta m = {.status = "injected"};
	json_t *msg;
	int r;

	r = session_ensure_tx(db, j->key, j->agent_id, NULL);
	if (r != GW_OK)
		return r;
	msg = session_message_new("assistant", j->text);
	if (j->label)
		json_object_set_new(msg, "label", json_string(j->label));
	json_object_set_new(msg, "injected", json_true());
	r = session_append_tx(db, j->key, msg, &m, j->events,
			      &j->message_id);
	json_decref(msg);
	if (r == GW_OK)
		session_changed(db, j->events, j->key, "inject", NULL);
	return r;
}

int session_inject(struct agent_rt *rt, const char *key, const char *text,
		   const char *label, char **message_id)
{
	struct session_job j = {.key = key, .text = text, .label = label};
	int r = session_job_sync_key(rt, session_inject_run, &j);

	*message_id = r == GW_OK ? j.message_id : NULL;
	if (r != GW_OK)
		free(j.message_id);
	return r;
}

char *session_model_override(struct store *st, const char *key)
{
	sqlite3 *db = session_reader(st);
	sqlite3_stmt *s = NULL;
	char *r = NULL;

	if (!db || session_prep(db, "SELECT json_extract(settings, "
				"'$.model') FROM sessions WHERE key = ?",
				&s) != GW_OK)
		return NULL;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW && session_col(s, 0) &&
	    *session_col(s, 0))
		r = xstrdup(session_col(s, 0));
	sqlite3_finalize(s);
	return r;
}

static int session_recover_run(sqlite3 *db, void *arg)
{
	int *n = arg;

	if (sqlite3_exec(db, "UPDATE idempotency SET status = 'error', "
			 "result = json_object('runId', run_id, 'status', "
			 "'error', 'error', 'run interrupted by a gateway "
			 "restart', 'sessionKey', session_key, 'text', ''), "
			 "ended_at = created_at, expires_at = "
			 "CAST((julianday('now') - 2440587.5) * 86400000 AS "
			 "INTEGER) + 300000 WHERE status = 'running'",
			 NULL, NULL, NULL) != SQLITE_OK)
		return session_fail(db, "recover runs");
	*n = sqlite3_changes(db);
	if (sqlite3_exec(db, "UPDATE sessions SET status = 'failed', "
			 "last_error = 'run interrupted by a gateway restart' "
			 "WHERE status = 'running'", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return session_fail(db, "recover sessions");
	return GW_OK;
}

int session_recover(struct store *st)
{
	int n = 0, r;

	if (!st)
		return GW_OK;
	r = store_write_sync(st, session_recover_run, &n, 0);
	if (r == GW_OK && n)
		log_warn("agent", "%d run(s) were interrupted by the last "
			 "shutdown; recorded as errors", n);
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
		limit = limit <= 0 ? SESSION_HISTORY_MAX
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
	over = session_model_override(rt->store, session_key);
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
