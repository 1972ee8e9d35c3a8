/* Usage figures from the transcripts (the token counts recorded with each
 * assistant message) and session counts: the SQL behind usage.cost,
 * sessions.usage, health and status (src/rpc/rpc-usage.c). Read-only, on
 * the calling thread's reader connection. */
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store-usage.h"

static const char *store_usage_col(sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);

	return v ? v : "";
}

int store_usage_rows(struct store *st, int64_t start_ms, int64_t end_ms,
		     const char *agent_id, const char *session_key,
		     json_t **rows)
{
	/* One row per (UTC day, session, model, role, outcome). */
	static const char sql[] =
		"SELECT date(t.created_at / 1000, 'unixepoch'), "
		"t.session_key, s.agent_id, coalesce(t.model, s.model, ''), "
		"t.role, coalesce(t.status, ''), count(*), "
		"coalesce(sum(t.input_tokens), 0), "
		"coalesce(sum(t.output_tokens), 0), min(t.created_at), "
		"max(t.created_at), "
		"sum(t.input_tokens IS NOT NULL OR "
		"t.output_tokens IS NOT NULL) "
		"FROM transcript t JOIN sessions s ON s.key = t.session_key "
		"WHERE t.created_at >= ?1 AND t.created_at < ?2 "
		"AND (?3 IS NULL OR s.agent_id = ?3) "
		"AND (?4 IS NULL OR t.session_key = ?4) "
		"GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2";
	sqlite3 *db = st ? store_reader(st) : NULL;
	sqlite3_stmt *s = NULL;
	json_t *a = NULL;
	int r = GW_ESTORE, rc;

	if (!db)
		return GW_EUNAVAIL;
	if (!(s = store_stmt(db, sql))) {
		log_warn("store", "usage rows: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(s, 1, start_ms);
	sqlite3_bind_int64(s, 2, end_ms);
	if (agent_id)
		sqlite3_bind_text(s, 3, agent_id, -1, SQLITE_STATIC);
	if (session_key)
		sqlite3_bind_text(s, 4, session_key, -1, SQLITE_STATIC);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_array_append_new(a, json_pack(
			"{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}",
			"day", store_usage_col(s, 0), "sessionKey",
			store_usage_col(s, 1), "agentId", store_usage_col(s, 2),
			"model", store_usage_col(s, 3), "role",
			store_usage_col(s, 4), "status", store_usage_col(s, 5),
			"count", (json_int_t)sqlite3_column_int64(s, 6),
			"input", (json_int_t)sqlite3_column_int64(s, 7),
			"output", (json_int_t)sqlite3_column_int64(s, 8),
			"first", (json_int_t)sqlite3_column_int64(s, 9),
			"last", (json_int_t)sqlite3_column_int64(s, 10),
			"metered", (json_int_t)sqlite3_column_int64(s, 11)));
	}
	if (rc != SQLITE_DONE) {
		log_warn("store", "usage rows: %s", sqlite3_errmsg(db));
		goto out;
	}
	*rows = a;
	a = NULL;
	r = GW_OK;
out:
	json_decref(a);
	store_stmt_done(s);
	return r;
}

int store_usage_session_counts(struct store *st, json_t **by_agent)
{
	static const char sql[] =
		"SELECT agent_id, count(*) FROM sessions GROUP BY agent_id "
		"ORDER BY agent_id";
	sqlite3 *db = st ? store_reader(st) : NULL;
	sqlite3_stmt *s = NULL;
	json_t *o = NULL;
	int r = GW_ESTORE, rc;

	if (!db)
		return GW_EUNAVAIL;
	if (!(s = store_stmt(db, sql))) {
		log_warn("store", "session counts: %s", sqlite3_errmsg(db));
		goto out;
	}
	o = json_object();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_object_set_new(o, store_usage_col(s, 0), json_integer(
			sqlite3_column_int64(s, 1)));
	if (rc != SQLITE_DONE)
		goto out;
	*by_agent = o;
	o = NULL;
	r = GW_OK;
out:
	json_decref(o);
	store_stmt_done(s);
	return r;
}

int store_usage_session_total(struct store *st, int64_t *n)
{
	/* No GROUP BY and no WHERE: SQLite's count of a b-tree's entries,
	 * on the smallest one (the updated_at index, a covering scan). */
	static const char sql[] = "SELECT count(*) FROM sessions";
	sqlite3 *db = st ? store_reader(st) : NULL;
	sqlite3_stmt *s = NULL;
	int r = GW_ESTORE;

	if (!db)
		return GW_EUNAVAIL;
	if (!(s = store_stmt(db, sql))) {
		log_warn("store", "session total: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_ROW)
		goto out;
	*n = sqlite3_column_int64(s, 0);
	r = GW_OK;
out:
	store_stmt_done(s);
	return r;
}

int store_usage_sessions(struct store *st, const char *agent_id,
			 const char *session_key, int limit, json_t **rows)
{
	static const char sql[] =
		"SELECT key, session_id, agent_id, label, model, updated_at, "
		"created_at FROM sessions "
		"WHERE (?1 IS NULL OR agent_id = ?1) "
		"AND (?2 IS NULL OR key = ?2) "
		"ORDER BY updated_at DESC LIMIT ?3";
	sqlite3 *db = st ? store_reader(st) : NULL;
	sqlite3_stmt *s = NULL;
	json_t *a = NULL, *row;
	int r = GW_ESTORE, rc;

	if (!db)
		return GW_EUNAVAIL;
	if (!(s = store_stmt(db, sql))) {
		log_warn("store", "usage sessions: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (agent_id)
		sqlite3_bind_text(s, 1, agent_id, -1, SQLITE_STATIC);
	if (session_key)
		sqlite3_bind_text(s, 2, session_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, limit);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row = json_pack("{s:s,s:s,s:s,s:I,s:I}", "key",
				store_usage_col(s, 0), "sessionId",
				store_usage_col(s, 1), "agentId",
				store_usage_col(s, 2), "updatedAt",
				(json_int_t)sqlite3_column_int64(s, 5),
				"createdAt",
				(json_int_t)sqlite3_column_int64(s, 6));
		if (sqlite3_column_type(s, 3) != SQLITE_NULL)
			json_object_set_new(row, "label",
					    json_string(store_usage_col(s, 3)));
		if (sqlite3_column_type(s, 4) != SQLITE_NULL)
			json_object_set_new(row, "model",
					    json_string(store_usage_col(s, 4)));
		json_array_append_new(a, row);
	}
	if (rc != SQLITE_DONE)
		goto out;
	*rows = a;
	a = NULL;
	r = GW_OK;
out:
	json_decref(a);
	store_stmt_done(s);
	return r;
}
