/* Config versions (store-config.h). Every statement is a constant prepared
 * once per connection (store_stmt) and reset after use (store_stmt_done). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-config.h"
#include "store/store.h"

static int store_config_fail(sqlite3 *db, const char *what)
{
	log_warn("store", "config %s: %s", what,
		 db ? sqlite3_errmsg(db) : "no connection");
	return GW_ESTORE;
}

struct store_config_add_job {
	const struct store_config_row *row;
	int64_t keep, id;
};

static int store_config_add_fn(sqlite3 *db, void *arg)
{
	struct store_config_add_job *j = arg;
	const struct store_config_row *row = j->row;
	sqlite3_stmt *s;
	int rc;

	s = store_stmt(db, "INSERT INTO config_snapshots(ts, hash, parent, "
		       "source, actor, method, text, paths, outcome, reason, "
		       "restored_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
		       "?)");
	if (!s)
		return store_config_fail(db, "snapshot");
	sqlite3_bind_int64(s, 1, util_now_ms());
	store_bind_text(s, 2, row->hash);
	store_bind_pos(s, 3, row->parent);
	store_bind_text(s, 4, row->source);
	store_bind_text(s, 5, row->actor);
	store_bind_text(s, 6, row->method);
	store_bind_text(s, 7, row->text);
	store_bind_text(s, 8, row->paths ? row->paths : "[]");
	store_bind_text(s, 9, row->outcome);
	store_bind_text(s, 10, row->reason);
	store_bind_pos(s, 11, row->restored_from);
	rc = sqlite3_step(s);
	store_stmt_done(s);
	if (rc != SQLITE_DONE)
		return store_config_fail(db, "snapshot");
	j->id = sqlite3_last_insert_rowid(db);
	if (j->keep <= 0)
		return GW_OK;
	s = store_stmt(db, "DELETE FROM config_snapshots WHERE id <= ? - ?");
	if (!s)
		return store_config_fail(db, "retention");
	sqlite3_bind_int64(s, 1, j->id);
	sqlite3_bind_int64(s, 2, j->keep);
	rc = sqlite3_step(s);
	store_stmt_done(s);
	return rc == SQLITE_DONE ? GW_OK : store_config_fail(db, "retention");
}

int store_config_add(struct store *st, const struct store_config_row *row,
		     int64_t keep, int64_t *id)
{
	struct store_config_add_job j = { row, keep, 0 };
	int r;

	r = store_write_sync(st, store_config_add_fn, &j, STORE_DURABLE);
	*id = r == GW_OK ? j.id : 0;
	return r;
}

static void store_config_set_text(json_t *o, const char *k,
				  sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);

	if (t)
		json_object_set_new(o, k, json_string(t));
}

static void store_config_set_id(json_t *o, const char *k, sqlite3_stmt *s,
				int i)
{
	if (sqlite3_column_type(s, i) != SQLITE_NULL)
		json_object_set_new(o, k,
				    json_integer(sqlite3_column_int64(s, i)));
}

int store_config_history(struct store *st, int limit, json_t **rows)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s;
	json_t *a, *row, *paths;
	const char *t;
	int rc;

	*rows = NULL;
	s = store_stmt(db, "SELECT id, ts, hash, parent, source, actor, "
		       "method, paths, outcome, reason, restored_from FROM "
		       "config_snapshots ORDER BY id DESC LIMIT ?");
	if (!s)
		return store_config_fail(db, "history");
	sqlite3_bind_int(s, 1, limit);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row = json_object();
		json_object_set_new(row, "id",
				    json_integer(sqlite3_column_int64(s, 0)));
		json_object_set_new(row, "ts",
				    json_integer(sqlite3_column_int64(s, 1)));
		json_object_set_new(row, "hash", json_string(
			(const char *)sqlite3_column_text(s, 2)));
		store_config_set_id(row, "parent", s, 3);
		json_object_set_new(row, "source", json_string(
			(const char *)sqlite3_column_text(s, 4)));
		store_config_set_text(row, "actor", s, 5);
		store_config_set_text(row, "method", s, 6);
		t = (const char *)sqlite3_column_text(s, 7);
		paths = t ? json_loads(t, 0, NULL) : NULL;
		json_object_set_new(row, "changes", paths ? paths
							  : json_array());
		json_object_set_new(row, "outcome", json_string(
			(const char *)sqlite3_column_text(s, 8)));
		store_config_set_text(row, "reason", s, 9);
		store_config_set_id(row, "restoredFrom", s, 10);
		json_array_append_new(a, row);
	}
	store_stmt_done(s);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return store_config_fail(db, "history");
	}
	*rows = a;
	return GW_OK;
}

int store_config_text(struct store *st, int64_t id, int64_t before_id,
		      const char *hash, char **text, int64_t *out_id)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s;
	int rc;

	*text = NULL;
	if (id > 0) {
		s = store_stmt(db, "SELECT id, text FROM config_snapshots "
			       "WHERE id = ? AND text IS NOT NULL AND "
			       "outcome <> 'rejected'");
		if (s)
			sqlite3_bind_int64(s, 1, id);
	} else {
		s = store_stmt(db, "SELECT id, text FROM config_snapshots "
			       "WHERE id < ? AND text IS NOT NULL AND "
			       "outcome <> 'rejected' AND hash <> ? ORDER BY "
			       "id DESC LIMIT 1");
		if (s) {
			sqlite3_bind_int64(s, 1, before_id);
			store_bind_text(s, 2, hash ? hash : "");
		}
	}
	if (!s)
		return store_config_fail(db, "version");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out_id = sqlite3_column_int64(s, 0);
		*text = xstrdup((const char *)sqlite3_column_text(s, 1));
	}
	store_stmt_done(s);
	if (rc == SQLITE_ROW)
		return GW_OK;
	return rc == SQLITE_DONE ? GW_ENOTFOUND
				 : store_config_fail(db, "version");
}
