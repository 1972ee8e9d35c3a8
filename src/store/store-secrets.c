/* The secret store's SQL: secret_store_entries (migration 0006), team
 * scope. Values arrive sealed (src/secrets/secrets-store.c); this file
 * never handles plaintext. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

static int store_secrets_fail(sqlite3 *db, const char *what)
{
	log_error("store", "secrets %s: %s", what,
		  db ? sqlite3_errmsg(db) : "?");
	return GW_ESTORE;
}

static char *store_secrets_col(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? xstrdup((const char *)t) : NULL;
}

void store_secret_clear(struct store_secret *e)
{
	if (!e)
		return;
	free(e->name);
	free(e->kind);
	free(e->value);
	free(e->updated_by);
	free(e->allowed_hosts);
	memset(e, 0, sizeof(*e));
}

#define STORE_SECRETS_COLS "name, kind, value, created_at_ms, " \
	"updated_at_ms, updated_by, allowed_hosts"

static void store_secrets_row(sqlite3_stmt *s, struct store_secret *e)
{
	int n = sqlite3_column_bytes(s, 2);

	e->name = store_secrets_col(s, 0);
	e->kind = store_secrets_col(s, 1);
	e->value = xmalloc(n ? (size_t)n : 1);
	if (n)
		memcpy(e->value, sqlite3_column_blob(s, 2), (size_t)n);
	e->value_len = (size_t)n;
	e->created_at_ms = sqlite3_column_int64(s, 3);
	e->updated_at_ms = sqlite3_column_int64(s, 4);
	e->updated_by = store_secrets_col(s, 5);
	e->allowed_hosts = store_secrets_col(s, 6);
}

int store_secrets_get_db(sqlite3 *db, const char *name,
			 struct store_secret *out)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	memset(out, 0, sizeof(*out));
	if (!db)
		return GW_ESTORE;
	if (!(s = store_stmt(db, "SELECT " STORE_SECRETS_COLS " FROM "
			       "secret_store_entries WHERE scope_kind = 'team' "
			       "AND scope_id = '' AND name = ? AND "
			       "deleted_at_ms IS NULL")))
		return store_secrets_fail(db, "get");
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		store_secrets_row(s, out);
		r = GW_OK;
	} else {
		r = rc == SQLITE_DONE ? GW_ENOTFOUND
				      : store_secrets_fail(db, "get");
	}
	store_stmt_done(s);
	return r;
}

int store_secrets_get(struct store *st, const char *name,
		      struct store_secret *out)
{
	return store_secrets_get_db(store_reader(st), name, out);
}

int store_secrets_list_db(sqlite3 *db, struct store_secret **v, size_t *n)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*v = NULL;
	*n = 0;
	if (!db)
		return GW_ESTORE;
	if (!(s = store_stmt(db, "SELECT " STORE_SECRETS_COLS " FROM "
			       "secret_store_entries WHERE scope_kind = 'team' "
			       "AND scope_id = '' AND deleted_at_ms IS NULL "
			       "ORDER BY name")))
		return store_secrets_fail(db, "list");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*v = xrealloc(*v, (*n + 1) * sizeof(**v));
		memset(&(*v)[*n], 0, sizeof(**v));
		store_secrets_row(s, &(*v)[(*n)++]);
	}
	store_stmt_done(s);
	return rc == SQLITE_DONE ? GW_OK : store_secrets_fail(db, "list");
}

int store_secrets_list(struct store *st, struct store_secret **v,
		       size_t *n)
{
	return store_secrets_list_db(store_reader(st), v, n);
}

static int store_secrets_purge_tx(sqlite3 *db)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (!(s = store_stmt(db, "DELETE FROM secret_store_entries WHERE "
			       "deleted_at_ms IS NOT NULL AND deleted_at_ms "
			       "< ?")))
		return store_secrets_fail(db, "purge");
	sqlite3_bind_int64(s, 1, util_now_ms() - STORE_SECRETS_PURGE_MS);
	rc = sqlite3_step(s);
	store_stmt_done(s);
	return rc == SQLITE_DONE ? GW_OK : store_secrets_fail(db, "purge");
}

static int store_secrets_put_fn(sqlite3 *db, void *arg)
{
	const struct store_secret *e = arg;
	sqlite3_stmt *s = NULL;
	int64_t now = e->updated_at_ms ? e->updated_at_ms : util_now_ms();
	int rc;

	if (store_secrets_purge_tx(db) != GW_OK)
		return GW_ESTORE;
	if (!(s = store_stmt(db, "INSERT INTO secret_store_entries("
			       "scope_kind, scope_id, name, value, kind, "
			       "created_at_ms, updated_at_ms, updated_by, "
			       "deleted_at_ms, allowed_hosts) VALUES ('team', "
			       "'', ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT "
			       "DO UPDATE SET value = excluded.value, kind = "
			       "excluded.kind, created_at_ms = CASE WHEN "
			       "deleted_at_ms IS NULL THEN created_at_ms ELSE "
			       "excluded.created_at_ms END, updated_at_ms = "
			       "excluded.updated_at_ms, updated_by = "
			       "excluded.updated_by, deleted_at_ms = NULL, "
			       "allowed_hosts = excluded.allowed_hosts")))
		return store_secrets_fail(db, "put");
	sqlite3_bind_text(s, 1, e->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 2, e->value, (int)e->value_len,
			  SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, e->kind, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, e->created_at_ms ? e->created_at_ms : now);
	sqlite3_bind_int64(s, 5, now);
	if (e->updated_by)
		sqlite3_bind_text(s, 6, e->updated_by, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 6);
	if (e->allowed_hosts)
		sqlite3_bind_text(s, 7, e->allowed_hosts, -1,
				  SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 7);
	rc = sqlite3_step(s);
	store_stmt_done(s);
	return rc == SQLITE_DONE ? GW_OK : store_secrets_fail(db, "put");
}

int store_secrets_put(struct store *st, const struct store_secret *e)
{
	return store_write_sync(st, store_secrets_put_fn, (void *)e,
				STORE_DURABLE);
}

struct store_secrets_del {
	const char *name, *actor;
};

static int store_secrets_delete_fn(sqlite3 *db, void *arg)
{
	struct store_secrets_del *d = arg;
	sqlite3_stmt *s = NULL;
	int rc;

	if (store_secrets_purge_tx(db) != GW_OK)
		return GW_ESTORE;
	if (!(s = store_stmt(db, "UPDATE secret_store_entries SET "
			       "deleted_at_ms = ?, updated_at_ms = ?, "
			       "updated_by = ? WHERE scope_kind = 'team' AND "
			       "scope_id = '' AND name = ? AND deleted_at_ms "
			       "IS NULL")))
		return store_secrets_fail(db, "delete");
	sqlite3_bind_int64(s, 1, util_now_ms());
	sqlite3_bind_int64(s, 2, util_now_ms());
	if (d->actor)
		sqlite3_bind_text(s, 3, d->actor, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 3);
	sqlite3_bind_text(s, 4, d->name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	store_stmt_done(s);
	if (rc != SQLITE_DONE)
		return store_secrets_fail(db, "delete");
	return sqlite3_changes(db) ? GW_OK : GW_ENOTFOUND;
}

int store_secrets_delete(struct store *st, const char *name,
			 const char *actor)
{
	struct store_secrets_del d = { name, actor };

	return store_write_sync(st, store_secrets_delete_fn, &d,
				STORE_DURABLE);
}

int store_secrets_open_ro(const char *path, sqlite3 **db)
{
	struct stat st;

	*db = NULL;
	if (stat(path, &st) < 0)
		return errno == ENOENT ? GW_ENOTFOUND : GW_EIO;
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		log_warn("store", "open %s read-only: %s", path,
			 *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return GW_ESTORE;
	}
	sqlite3_busy_timeout(*db, STORE_BUSY_TIMEOUT_MS);
	return GW_OK;
}

void store_secrets_close_ro(sqlite3 *db)
{
	sqlite3_close(db);
}

int store_secrets_openclaw_each(sqlite3 *db,
				int (*fn)(const char *name,
					  const char *value, size_t len,
					  const char *kind, void *arg),
				void *arg, char *why, size_t len)
{
	sqlite3_stmt *s = NULL;
	int rc, stop = 0;

	/* a foreign file read once: not worth a cached statement */
	if (sqlite3_prepare_v2(db, "SELECT name, value, kind FROM "
			       "secret_store_entries WHERE scope_kind = 'team' "
			       "AND deleted_at_ms IS NULL ORDER BY name", -1,
			       &s, NULL) != SQLITE_OK) {
		snprintf(why, len, "%s", sqlite3_errmsg(db));
		return GW_ENOTFOUND;
	}
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		/* text before bytes (the order SQLite documents) */
		const char *name = (const char *)sqlite3_column_text(s, 0);
		const char *val = (const char *)sqlite3_column_text(s, 1);
		size_t n = (size_t)sqlite3_column_bytes(s, 1);

		stop = fn(name, val, n,
			  (const char *)sqlite3_column_text(s, 2), arg);
	}
	if (!stop && rc != SQLITE_DONE)
		snprintf(why, len, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(s);
	return stop || rc == SQLITE_DONE ? GW_OK : GW_ESTORE;
}

int store_secrets_config_texts(sqlite3 *db,
			       void (*fn)(int64_t id, const char *text,
					  void *arg), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (!db)
		return GW_ESTORE;
	if (!(s = store_stmt(db, "SELECT id, text FROM config_snapshots "
			       "WHERE text IS NOT NULL ORDER BY id")))
		return store_secrets_fail(db, "config versions");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(sqlite3_column_int64(s, 0),
		   (const char *)sqlite3_column_text(s, 1), arg);
	store_stmt_done(s);
	return rc == SQLITE_DONE ? GW_OK
				 : store_secrets_fail(db, "config versions");
}

struct store_secrets_rw {
	char *(*fn)(const char *text, void *arg);
	void *arg;
	int changed;
};

static int store_secrets_rewrite_fn(sqlite3 *db, void *arg)
{
	struct store_secrets_rw *rw = arg;
	sqlite3_stmt *s = NULL, *u = NULL;
	int64_t *ids = NULL;
	char **texts = NULL;
	size_t n = 0, i;
	int rc, r = GW_ESTORE;

	rw->changed = 0;
	sqlite3_exec(db, "PRAGMA secure_delete=ON", NULL, NULL, NULL);
	if (!(s = store_stmt(db, "SELECT id, text FROM config_snapshots "
			       "WHERE text IS NOT NULL")) ||
	    !(u = store_stmt(db, "UPDATE config_snapshots SET text = ? "
			       "WHERE id = ?"))) {
		store_secrets_fail(db, "config rewrite");
		goto out;
	}
	/* all new texts first, then the updates */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char *t = rw->fn((const char *)sqlite3_column_text(s, 1),
				 rw->arg);

		if (!t)
			continue;
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		texts = xrealloc(texts, (n + 1) * sizeof(*texts));
		ids[n] = sqlite3_column_int64(s, 0);
		texts[n++] = t;
	}
	if (rc != SQLITE_DONE) {
		store_secrets_fail(db, "config rewrite");
		goto out;
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(u, 1, texts[i], -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(u, 2, ids[i]);
		rc = sqlite3_step(u);
		sqlite3_reset(u);
		sqlite3_clear_bindings(u);
		if (rc != SQLITE_DONE) {
			store_secrets_fail(db, "config rewrite");
			goto out;
		}
		rw->changed++;
	}
	r = GW_OK;
out:
	for (i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	free(ids);
	store_stmt_done(s);
	store_stmt_done(u);
	return r;
}

int store_secrets_config_rewrite(struct store *st,
				 char *(*fn)(const char *text, void *arg),
				 void *arg, int *changed)
{
	struct store_secrets_rw rw = { fn, arg, 0 };
	int r;

	r = store_write_sync(st, store_secrets_rewrite_fn, &rw,
			     STORE_DURABLE);
	if (changed)
		*changed = rw.changed;
	return r;
}
