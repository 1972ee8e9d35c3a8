/* SQLite state store: one writer thread that owns the one writer connection
 * (serialised, short BEGIN IMMEDIATE transactions), a read-only connection
 * per reader thread, migrations embedded at build time, typed helpers.
 * doc/sqlite.md describes the file, the tables and the operator views.
 *
 * Errors are GW_* codes (core/common.h); SQLite detail is logged under
 * "store" and collapses to GW_ESTORE. Mutating helpers come in two forms:
 * foo(st, ...) queues the change and waits for its commit, foo_tx(db, ...)
 * runs inside a write job (store_fn) so that several changes, a state
 * version bump and an audit row commit together. */
#pragma once

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

struct store;

/* One embedded migration, generated from migrations/NNNN_name.sql by
 * contrib/embed-sql.sh; versions are 1..count in order. */
struct store_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct store_migration store_migrations[];
extern const int store_migrations_count;
/* sql/views.sql, recreated at open when it changed or a migration ran. */
extern const char store_views_sql[];

/* A write job. Runs on the writer thread inside BEGIN IMMEDIATE; return
 * GW_OK to commit, any other code to roll back. Use only db inside (not
 * store_reader: a reader does not see the open transaction).
 * Group commit: the writer runs the jobs queued at the same time in one
 * transaction, each inside its own SAVEPOINT (an error return rolls back
 * only that job's changes), then commits once and completes each job in
 * queue order; a job is never reported committed before the COMMIT
 * returned. A STORE_DURABLE job makes its whole group commit with
 * synchronous=FULL. */
typedef int (*store_fn)(sqlite3 *db, void *arg);
/* Completion of a queued job, on the writer thread after COMMIT/ROLLBACK.
 * rc is fn's result, GW_ESTORE when BEGIN/COMMIT failed, or GW_EUNAVAIL
 * when the job was dropped at store_close. Called exactly once for every
 * job that store_write accepted. */
typedef void (*store_done_fn)(int rc, void *arg);

enum store_write_flags {
	/* Commit with synchronous=FULL (the WAL is fsynced before COMMIT
	 * returns): for writes that must survive power loss (pairing
	 * approvals, tokens, config snapshots). Default is NORMAL. */
	STORE_DURABLE = 1u << 0,
};

/* Jobs still queued this long after store_close starts are dropped. */
#define STORE_DRAIN_MS 5000
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_JOURNAL_SIZE_LIMIT 67108864

/* Open (creating) the database at path: parent directories are created
 * 0700, the file is made 0600, pragmas are set (WAL, synchronous=NORMAL,
 * journal_size_limit, busy_timeout, foreign_keys), pending migrations and
 * the views are applied in one transaction, the writer thread starts.
 * A database newer than this binary is refused. On failure returns a GW_*
 * code and, if errmsg is not NULL, a message for the operator (caller
 * frees it). */
int store_open(const char *path, struct store **out, char **errmsg);
/* Offline check of the database at path (read-only, no migration):
 * *quick_check gets PRAGMA quick_check's answer ("ok" when sound; new
 * string), *version the schema version, *latest the newest this binary
 * knows. GW_OK, or GW_ESTORE (cannot open; the reason in *quick_check
 * when known). */
int store_check_file(const char *path, char **quick_check, int *version,
		     int *latest);
/* Drain queued writes (at most STORE_DRAIN_MS), stop the writer, close
 * every reader connection, checkpoint (TRUNCATE) and close. Join threads
 * that used store_reader first. NULL is fine. */
void store_close(struct store *st);
/* Borrowed path of the database file. */
const char *store_path(const struct store *st);

/* Queue fn to run on the writer thread; jobs run in the order queued.
 * Returns GW_OK (done will be called), or GW_EUNAVAIL when the store is
 * closing (done is not called; the caller keeps arg). */
int store_write(struct store *st, store_fn fn, void *arg,
		store_done_fn done);
/* Queue fn and wait for its commit; returns fn's result, GW_ESTORE or
 * GW_EUNAVAIL. flags: enum store_write_flags. From the writer thread
 * (a done callback) it runs inline; from inside a store_fn it fails with
 * GW_EINVAL. Never call it from the lws thread. */
int store_write_sync(struct store *st, store_fn fn, void *arg,
		     unsigned flags);
/* Wait until every write queued before this call has committed. */
int store_flush(struct store *st);

/* This thread's read-only connection (SQLITE_OPEN_READONLY|NOMUTEX, opened
 * on first use, busy_timeout and pragmas set). Borrowed: valid until the
 * thread exits or store_close. NULL on failure (logged). Use one-shot
 * statements; do not hold a read transaction open (it blocks checkpoints). */
sqlite3 *store_reader(struct store *st);

/* A prepared statement for sql on db, kept by db's statement cache: the
 * first call prepares it (SQLITE_PREPARE_PERSISTENT), later calls get the
 * same statement back, so sql must be a constant (a string literal). Bind,
 * step, then hand it back with store_stmt_done (reset, bindings cleared),
 * never sqlite3_finalize. On a connection that is not the store's, or for
 * a statement already handed out (nested use), a fresh statement is
 * prepared and store_stmt_done finalizes it. NULL on error (logged). Use
 * it on the thread that owns db: the writer inside a job, or this
 * thread's reader (store_reader). */
sqlite3_stmt *store_stmt(sqlite3 *db, const char *sql);
void store_stmt_done(sqlite3_stmt *s);
/* Bind v at i, or NULL when v is NULL (text, copied) or <= 0 (an id or
 * a time that is not set). */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
void store_bind_pos(sqlite3_stmt *s, int i, int64_t v);
/* store_bind_text without the copy: v must stay valid until the statement
 * is handed back (store_stmt_done clears the bindings). The run path. */
void store_bind_static(sqlite3_stmt *s, int i, const char *v);
/* Caches of the store's connections (store.c registers them at open and
 * drops them before sqlite3_close). */
void store_stmt_register(sqlite3 *db);
void store_stmt_forget(sqlite3 *db);

/* Writer figures since open: writes committed or rolled back (jobs run)
 * and transactions committed. Several writes share one commit when
 * callers queue at once (group commit). */
void store_stats(struct store *st, uint64_t *writes, uint64_t *commits);

/* The writer's figures for the status RPC: {writes, commits, wal: {pages
 * (WAL size after the last commit), pagesMax, softPages, hardPages,
 * checkpoints (checkpointer runs), checkpointPages (frames they copied),
 * checkpointsBusy, lastCheckpointUs, maxCheckpointUs, totalCheckpointUs,
 * writerCheckpoints (forced past hardPages), resets (WAL rewound)}}. */
json_t *store_status_json(struct store *st);

/* Schema version recorded in the database (PRAGMA user_version). */
int store_schema_version(struct store *st, int *out);

/* meta: small key/value strings. get returns GW_ENOTFOUND when absent;
 * *val is a new string the caller frees. */
int store_meta_get(struct store *st, const char *key, char **val);
int store_meta_set(struct store *st, const char *key, const char *val);
int store_meta_set_tx(sqlite3 *db, const char *key, const char *val);

/* State versions per kind ("presence", "health"): persisted, strictly
 * increasing across restarts. get gives 0 for a kind never bumped; bump
 * stores and returns the new value in *out (may be NULL). */
int store_state_version_get(struct store *st, const char *kind,
			    int64_t *out);
int store_state_version_bump(struct store *st, const char *kind,
			     int64_t *out);
int store_state_version_bump_tx(sqlite3 *db, const char *kind,
				int64_t *out);

/* Presence entries (ws-protocol.md section 8). entry must be an object;
 * its integer "ts" (ms) orders and prunes entries (now when absent). The
 * entry is copied; the caller keeps its reference. */
int store_presence_upsert(struct store *st, const char *key,
			  const json_t *entry);
int store_presence_upsert_tx(sqlite3 *db, const char *key,
			     const json_t *entry);
/* GW_ENOTFOUND when there was no such key. */
int store_presence_delete(struct store *st, const char *key);
int store_presence_delete_tx(sqlite3 *db, const char *key);
/* Remove entries with ts < min_ts, then all but the newest max_rows
 * (max_rows < 0: no count limit). *removed (may be NULL) gets the count. */
int store_presence_prune(struct store *st, int64_t min_ts, int max_rows,
			 int *removed);
int store_presence_prune_tx(sqlite3 *db, int64_t min_ts, int max_rows,
			    int *removed);
/* New array of the stored entries, newest ts first. */
int store_presence_load(struct store *st, json_t **array);

/* Append an audit row (ts = now). action is required; actor, target,
 * detail and remote_ip may be NULL. store_audit does not wait: detail is
 * serialised before it returns, so the caller keeps its reference. */
int store_audit(struct store *st, const char *actor, const char *action,
		const char *target, const json_t *detail,
		const char *remote_ip);
int store_audit_tx(sqlite3 *db, const char *actor, const char *action,
		   const char *target, const json_t *detail,
		   const char *remote_ip);

/* ---- secret store (store-secrets.c, issue 15) ---------------------------
 * Rows of secret_store_entries, team scope. value is the sealed blob (the
 * store never sees plaintext); allowed_hosts is JSON array text or NULL. */
#define STORE_SECRETS_PURGE_MS (30LL * 24 * 3600 * 1000)
struct store_secret {
	char *name;
	char *kind;		/* "secret" or "env" */
	uint8_t *value;
	size_t value_len;
	int64_t created_at_ms, updated_at_ms;
	char *updated_by;
	char *allowed_hosts;
};
void store_secret_clear(struct store_secret *e);
/* The live (not deleted) entry: GW_OK or GW_ENOTFOUND. db is a reader,
 * the writer's connection inside a job, or store_secrets_open_ro's. */
int store_secrets_get_db(sqlite3 *db, const char *name,
			 struct store_secret *out);
int store_secrets_get(struct store *st, const char *name,
		      struct store_secret *out);
/* Live entries by name; *v owned (clear each, then free). */
int store_secrets_list(struct store *st, struct store_secret **v,
		       size_t *n);
int store_secrets_list_db(sqlite3 *db, struct store_secret **v, size_t *n);
/* Insert or replace (created_at_ms kept for an existing name, a
 * soft-deleted one is revived); purges rows deleted 30 days ago. */
int store_secrets_put(struct store *st, const struct store_secret *e);
/* Soft delete: GW_OK, or GW_ENOTFOUND when there is no live entry. */
int store_secrets_delete(struct store *st, const char *name,
			 const char *actor);
/* Open a database file read-only (for the secrets provider before the
 * daemon's store is open, and for import). GW_ENOTFOUND when absent. */
int store_secrets_open_ro(const char *path, sqlite3 **db);
/* Close a connection of store_secrets_open_ro (NULL is fine). */
void store_secrets_close_ro(sqlite3 *db);
/* The live team entries of an OpenClaw secret store (plaintext values) in
 * db, by name; fn's non-zero return stops the walk. GW_OK, GW_ENOTFOUND
 * when db has no such table, GW_ESTORE; the reason in why. */
int store_secrets_openclaw_each(sqlite3 *db,
				int (*fn)(const char *name,
					  const char *value, size_t len,
					  const char *kind, void *arg),
				void *arg, char *why, size_t len);
/* Stored config versions (config_snapshots.text, redacted JSON), for the
 * secrets audit and apply: fn sees each row with a text, oldest first. */
int store_secrets_config_texts(sqlite3 *db,
			       void (*fn)(int64_t id, const char *text,
					  void *arg), void *arg);
/* Rewrite them in one transaction: fn returns the new text (owned) or
 * NULL to keep a row; with secure_delete, so the old bytes are zeroed. */
int store_secrets_config_rewrite(struct store *st,
				 char *(*fn)(const char *text, void *arg),
				 void *arg, int *changed);
