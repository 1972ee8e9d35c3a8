/* Unit tests for src/store: migrations, refusal of newer databases,
 * pragmas, the writer queue, durability, state versions, presence, audit,
 * concurrent readers and the operator views. */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

static char tmpdir[256];
static char dbpath[512];

static int rm_cb(const char *p, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-store-XXXXXX",
		 t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/a/state/clawgate.sqlite",
		 tmpdir);
}

static void teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_ok(void)
{
	struct store *st = NULL;
	char *msg = NULL;
	int r = store_open(dbpath, &st, &msg);

	ck_assert_msg(r == GW_OK, "store_open: %s", msg ? msg : "?");
	ck_assert_ptr_null(msg);
	ck_assert_ptr_nonnull(st);
	return st;
}

/* A raw read-write connection, as an operator or another tool would. */
static sqlite3 *raw_open(void)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static int64_t q_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	ck_assert_msg(sqlite3_step(s) == SQLITE_ROW, "%s: %s", sql,
		      sqlite3_errmsg(db));
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static char *q_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	char *v;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	ck_assert_msg(sqlite3_step(s) == SQLITE_ROW, "%s: %s", sql,
		      sqlite3_errmsg(db));
	v = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return v;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
}

START_TEST(test_migrate_empty)
{
	struct store *st = open_ok();
	sqlite3 *rd = store_reader(st);
	struct stat sb;
	char dir[600];
	int v = -1;

	ck_assert_int_ge(store_migrations_count, 1);
	ck_assert_int_eq(store_schema_version(st, &v), GW_OK);
	ck_assert_int_eq(v, store_migrations_count);
	ck_assert_int_eq(q_int(rd, "SELECT count(*) FROM schema_migrations"),
			 store_migrations_count);
	ck_assert_int_eq(q_int(rd, "SELECT max(version) FROM "
			       "schema_migrations"), store_migrations_count);
	ck_assert_int_eq(q_int(rd, "SELECT count(*) FROM sqlite_schema WHERE "
			       "type = 'table' AND name IN ('meta', "
			       "'state_versions', 'presence', 'audit_log')"),
			 4);
	ck_assert_int_eq(q_int(rd, "SELECT strict FROM pragma_table_list "
			       "WHERE name = 'presence'"), 1);
	ck_assert_str_eq(store_path(st), dbpath);
	/* file 0600, new parent directories 0700, -wal follows the file */
	ck_assert_int_eq(stat(dbpath, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	snprintf(dir, sizeof(dir), "%s/a/state", tmpdir);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	ck_assert_int_eq(store_meta_set(st, "k", "v"), GW_OK);
	snprintf(dir, sizeof(dir), "%s-wal", dbpath);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	store_close(st);
}
END_TEST

START_TEST(test_migrate_idempotent)
{
	struct store *st = open_ok();
	sqlite3 *db;
	int64_t cookie, applied;

	store_close(st);
	db = raw_open();
	cookie = q_int(db, "PRAGMA schema_version");
	applied = q_int(db, "SELECT applied_at FROM schema_migrations "
			"WHERE version = 1");
	sqlite3_close(db);

	st = open_ok();
	store_close(st);
	st = open_ok();
	store_close(st);

	db = raw_open();
	/* no DDL ran on the reopens: the schema cookie did not move */
	ck_assert_int_eq(q_int(db, "PRAGMA schema_version"), cookie);
	ck_assert_int_eq(q_int(db, "SELECT count(*) FROM schema_migrations"),
			 store_migrations_count);
	ck_assert_int_eq(q_int(db, "SELECT applied_at FROM schema_migrations "
			       "WHERE version = 1"), applied);
	ck_assert_int_eq(q_int(db, "PRAGMA user_version"),
			 store_migrations_count);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_views_recreated)
{
	struct store *st = open_ok();
	sqlite3 *db;

	store_close(st);
	/* an operator dropped a view; a new binary ships new views */
	db = raw_open();
	raw_exec(db, "DROP VIEW presence_now;"
		 "UPDATE meta SET value = 'old' "
		 "WHERE key = 'store.views_sha256'");
	sqlite3_close(db);
	st = open_ok();
	ck_assert_int_eq(q_int(store_reader(st), "SELECT count(*) FROM "
			       "sqlite_schema WHERE type = 'view' AND "
			       "name = 'presence_now'"), 1);
	store_close(st);
}
END_TEST

static void check_refused(int64_t have)
{
	struct store *st = NULL;
	char *msg = NULL, *want;
	int r = store_open(dbpath, &st, &msg);

	ck_assert_int_ne(r, GW_OK);
	ck_assert_ptr_null(st);
	ck_assert_ptr_nonnull(msg);
	want = xasprintf("state database %s has schema version %lld, newer "
			 "than this clawgate supports (%d); upgrade clawgate "
			 "or restore a backup", dbpath, (long long)have,
			 store_migrations_count);
	ck_assert_str_eq(msg, want);
	free(want);
	free(msg);
	/* without errmsg too */
	ck_assert_int_ne(store_open(dbpath, &st, NULL), GW_OK);
}

START_TEST(test_refuse_newer)
{
	struct store *st = open_ok();
	int64_t newer = store_migrations_count + 5, cookie;
	sqlite3 *db;

	store_close(st);
	db = raw_open();
	raw_exec(db, "INSERT INTO schema_migrations VALUES (99, 'future', 0)");
	{
		char sql[64];

		snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld",
			 (long long)newer);
		raw_exec(db, sql);
	}
	cookie = q_int(db, "PRAGMA schema_version");
	sqlite3_close(db);

	check_refused(newer);

	/* nothing was changed by the refused opens */
	db = raw_open();
	ck_assert_int_eq(q_int(db, "PRAGMA user_version"), newer);
	ck_assert_int_eq(q_int(db, "PRAGMA schema_version"), cookie);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_refuse_newer_fresh_file)
{
	sqlite3 *db;
	char dir[600];

	snprintf(dir, sizeof(dir), "%s/a", tmpdir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/a/state", tmpdir);
	mkdir(dir, 0700);
	db = raw_open();
	raw_exec(db, "PRAGMA user_version = 4000");
	sqlite3_close(db);
	check_refused(4000);
}
END_TEST

struct pragmas {
	char *journal_mode;
	int64_t synchronous, size_limit, foreign_keys, busy_timeout;
};

static void get_pragmas(sqlite3 *db, struct pragmas *p)
{
	p->journal_mode = q_text(db, "PRAGMA journal_mode");
	p->synchronous = q_int(db, "PRAGMA synchronous");
	p->size_limit = q_int(db, "PRAGMA journal_size_limit");
	p->foreign_keys = q_int(db, "PRAGMA foreign_keys");
	p->busy_timeout = q_int(db, "PRAGMA busy_timeout");
}

static void check_pragmas(struct pragmas *p)
{
	ck_assert_str_eq(p->journal_mode, "wal");
	ck_assert_int_eq(p->synchronous, 1);	/* NORMAL */
	ck_assert_int_eq(p->size_limit, STORE_JOURNAL_SIZE_LIMIT);
	ck_assert_int_eq(p->foreign_keys, 1);
	ck_assert_int_eq(p->busy_timeout, STORE_BUSY_TIMEOUT_MS);
	free(p->journal_mode);
}

/* PRAGMA journal_mode inside a transaction is fine for a query. */
static int pragmas_fn(sqlite3 *db, void *arg)
{
	get_pragmas(db, arg);
	return GW_OK;
}

START_TEST(test_pragmas)
{
	struct store *st = open_ok();
	struct pragmas w, r;
	sqlite3 *rd;

	ck_assert_int_eq(store_write_sync(st, pragmas_fn, &w, 0), GW_OK);
	check_pragmas(&w);
	rd = store_reader(st);
	ck_assert_ptr_nonnull(rd);
	ck_assert_ptr_eq(store_reader(st), rd);	/* one per thread */
	get_pragmas(rd, &r);
	check_pragmas(&r);
	ck_assert_int_eq(sqlite3_db_readonly(rd, "main"), 1);
	ck_assert_int_eq(sqlite3_exec(rd, "INSERT INTO meta VALUES ('x', 'y')",
				      NULL, NULL, NULL), SQLITE_READONLY);
	store_close(st);
}
END_TEST

static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;
static int order[200];
static int order_rc[200];
static int norder;

struct seq_arg {
	int i;
	int fail;
};

static int seq_fn(sqlite3 *db, void *arg)
{
	struct seq_arg *a = arg;
	char key[32], val[32];
	int r;

	snprintf(key, sizeof(key), "seq.%d", a->i);
	snprintf(val, sizeof(val), "%d", a->i);
	r = store_meta_set_tx(db, key, val);
	if (r)
		return r;
	if (a->fail == 1)
		return GW_EINVAL;	/* roll back the insert above */
	if (a->fail == 2)
		return sqlite3_exec(db, "INSERT INTO nosuch VALUES (1)", NULL,
				    NULL, NULL) == SQLITE_OK ? GW_OK
							     : GW_ESTORE;
	return GW_OK;
}

static void seq_done(int rc, void *arg)
{
	struct seq_arg *a = arg;

	pthread_mutex_lock(&order_mu);
	order_rc[norder] = rc;
	order[norder++] = a->i;
	pthread_mutex_unlock(&order_mu);
	free(a);
}

START_TEST(test_write_order_rollback)
{
	struct store *st = open_ok();
	char *v = NULL;

	norder = 0;
	for (int i = 0; i < 120; i++) {
		struct seq_arg *a = xcalloc(1, sizeof(*a));

		a->i = i;
		a->fail = i == 7 ? 1 : i == 9 ? 2 : 0;
		ck_assert_int_eq(store_write(st, seq_fn, a, seq_done), GW_OK);
	}
	ck_assert_int_eq(store_flush(st), GW_OK);
	pthread_mutex_lock(&order_mu);
	ck_assert_int_eq(norder, 120);
	for (int i = 0; i < 120; i++) {
		ck_assert_int_eq(order[i], i);
		ck_assert_int_eq(order_rc[i], i == 7 ? GW_EINVAL :
				 i == 9 ? GW_ESTORE : GW_OK);
	}
	pthread_mutex_unlock(&order_mu);
	ck_assert_int_eq(store_meta_get(st, "seq.6", &v), GW_OK);
	ck_assert_str_eq(v, "6");
	free(v);
	ck_assert_int_eq(store_meta_get(st, "seq.7", &v), GW_ENOTFOUND);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(store_meta_get(st, "seq.9", &v), GW_ENOTFOUND);
	ck_assert_int_eq(store_meta_get(st, "seq.119", &v), GW_OK);
	free(v);
	/* the writer connection is usable after the failures */
	ck_assert_int_eq(store_meta_set(st, "after", "ok"), GW_OK);
	store_close(st);
}
END_TEST

START_TEST(test_close_drains)
{
	struct store *st = open_ok();

	norder = 0;
	for (int i = 0; i < 150; i++) {
		struct seq_arg *a = xcalloc(1, sizeof(*a));

		a->i = i;
		ck_assert_int_eq(store_write(st, seq_fn, a, seq_done), GW_OK);
	}
	store_close(st);
	ck_assert_int_eq(norder, 150);
	for (int i = 0; i < 150; i++)
		ck_assert_int_eq(order_rc[i], GW_OK);
	st = open_ok();
	ck_assert_int_eq(q_int(store_reader(st), "SELECT count(*) FROM meta "
			       "WHERE key LIKE 'seq.%'"), 150);
	store_close(st);
}
END_TEST

static int sync_fn(sqlite3 *db, void *arg)
{
	int64_t *out = arg;

	*out = q_int(db, "PRAGMA synchronous");
	return store_meta_set_tx(db, "durable", "yes");
}

static int fail_fn(sqlite3 *db, void *arg)
{
	(void)arg;
	store_meta_set_tx(db, "never", "x");
	return GW_ECONFIG;
}

START_TEST(test_write_sync_durable)
{
	struct store *st = open_ok();
	int64_t sync = -1;
	char *v = NULL;

	ck_assert_int_eq(store_write_sync(st, sync_fn, &sync, STORE_DURABLE),
			 GW_OK);
	ck_assert_int_eq(sync, 2);	/* FULL for this commit */
	ck_assert_int_eq(store_write_sync(st, sync_fn, &sync, 0), GW_OK);
	ck_assert_int_eq(sync, 1);	/* back to NORMAL */
	ck_assert_int_eq(store_write_sync(st, fail_fn, NULL, STORE_DURABLE),
			 GW_ECONFIG);
	ck_assert_int_eq(store_write_sync(st, sync_fn, &sync, 0), GW_OK);
	ck_assert_int_eq(sync, 1);
	ck_assert_int_eq(store_meta_get(st, "never", &v), GW_ENOTFOUND);
	/* committed data is visible to a new connection at once */
	{
		sqlite3 *db = raw_open();
		char *d = q_text(db, "SELECT value FROM meta "
				 "WHERE key = 'durable'");

		ck_assert_str_eq(d, "yes");
		free(d);
		sqlite3_close(db);
	}
	store_close(st);
}
END_TEST

struct nest {
	struct store *st;
	int inner_rc;
	atomic_int done_rc;
};

static int nest_inner_fn(sqlite3 *db, void *arg)
{
	(void)arg;
	return store_meta_set_tx(db, "nested", "1");
}

static int nest_fn(sqlite3 *db, void *arg)
{
	struct nest *n = arg;

	(void)db;
	n->inner_rc = store_write_sync(n->st, nest_inner_fn, NULL, 0);
	return GW_OK;
}

static void nest_done(int rc, void *arg)
{
	struct nest *n = arg;

	(void)rc;
	/* from a done callback a sync write runs inline */
	atomic_store(&n->done_rc,
		     store_write_sync(n->st, nest_inner_fn, NULL, 0) + 100);
}

START_TEST(test_write_sync_on_writer)
{
	struct store *st = open_ok();
	struct nest n = { .st = st, .inner_rc = -1 };
	char *v = NULL;

	ck_assert_int_eq(store_write_sync(st, nest_fn, &n, 0), GW_OK);
	ck_assert_int_eq(n.inner_rc, GW_EINVAL);
	ck_assert_int_eq(store_write(st, nest_fn, &n, nest_done), GW_OK);
	ck_assert_int_eq(store_flush(st), GW_OK);
	ck_assert_int_eq(atomic_load(&n.done_rc), 100 + GW_OK);
	ck_assert_int_eq(store_meta_get(st, "nested", &v), GW_OK);
	free(v);
	store_close(st);
}
END_TEST

/* A job that holds the writer (inside its transaction) until released:
 * everything queued meanwhile is drained as one group. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running, open;
};

static int gate_fn(sqlite3 *db, void *arg)
{
	struct gate *g = arg;

	(void)db;
	pthread_mutex_lock(&g->mu);
	g->running = 1;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	return GW_OK;
}

struct durable_call {
	struct store *st;
	int64_t sync;
	int rc;
};

static void *durable_thread(void *arg)
{
	struct durable_call *d = arg;

	d->rc = store_write_sync(d->st, sync_fn, &d->sync, STORE_DURABLE);
	return NULL;
}

START_TEST(test_group_commit)
{
	struct store *st = open_ok();
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			  0, 0 };
	struct durable_call d = { .st = st, .sync = -1, .rc = -1 };
	uint64_t w0, c0, w1, c1;
	pthread_t th;
	char *v = NULL;

	ck_assert_int_eq(store_flush(st), GW_OK);
	store_stats(st, &w0, &c0);
	norder = 0;
	ck_assert_int_eq(store_write(st, gate_fn, &g, NULL), GW_OK);
	pthread_mutex_lock(&g.mu);
	while (!g.running)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	/* Queued while the writer is busy: 40 jobs (one rolls back its own
	 * insert, one fails in SQLite) and a durable synchronous write. */
	for (int i = 0; i < 40; i++) {
		struct seq_arg *a = xcalloc(1, sizeof(*a));

		a->i = i;
		a->fail = i == 11 ? 1 : i == 23 ? 2 : 0;
		ck_assert_int_eq(store_write(st, seq_fn, a, seq_done), GW_OK);
	}
	/* It joins their group or commits on its own: FULL either way. */
	ck_assert_int_eq(pthread_create(&th, NULL, durable_thread, &d), 0);
	pthread_mutex_lock(&g.mu);
	g.open = 1;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(store_flush(st), GW_OK);
	ck_assert_int_eq(d.rc, GW_OK);
	ck_assert_int_eq(d.sync, 2);	/* its commit was FULL */
	store_stats(st, &w1, &c1);
	/* gate + 40 + durable + flush: every write ran... */
	ck_assert_uint_eq(w1 - w0, 43);
	/* ...in far fewer commits: the 40 queued behind the gate shared
	 * one (one by one would be 43) */
	ck_assert_uint_le(c1 - c0, 4);
	pthread_mutex_lock(&order_mu);
	ck_assert_int_eq(norder, 40);
	for (int i = 0; i < 40; i++) {
		ck_assert_int_eq(order[i], i);
		ck_assert_int_eq(order_rc[i], i == 11 ? GW_EINVAL :
				 i == 23 ? GW_ESTORE : GW_OK);
	}
	pthread_mutex_unlock(&order_mu);
	/* only the failed jobs' own changes were rolled back */
	ck_assert_int_eq(store_meta_get(st, "seq.11", &v), GW_ENOTFOUND);
	ck_assert_int_eq(store_meta_get(st, "seq.23", &v), GW_ENOTFOUND);
	ck_assert_int_eq(store_meta_get(st, "seq.10", &v), GW_OK);
	free(v);
	ck_assert_int_eq(store_meta_get(st, "seq.39", &v), GW_OK);
	free(v);
	ck_assert_int_eq(store_meta_get(st, "durable", &v), GW_OK);
	free(v);
	/* the next lone write is back to NORMAL */
	ck_assert_int_eq(store_write_sync(st, sync_fn, &d.sync, 0), GW_OK);
	ck_assert_int_eq(d.sync, 1);
	store_close(st);
}
END_TEST

START_TEST(test_stmt_cache)
{
	struct store *st = open_ok();
	sqlite3 *rd = store_reader(st), *raw = raw_open();
	static const char sql[] = "SELECT count(*) FROM meta WHERE key = ?";
	sqlite3_stmt *a, *b, *c;

	a = store_stmt(rd, sql);
	ck_assert_ptr_nonnull(a);
	sqlite3_bind_text(a, 1, "x", -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(a), SQLITE_ROW);
	store_stmt_done(a);
	/* the same statement again, reset and unbound */
	b = store_stmt(rd, sql);
	ck_assert_ptr_eq(a, b);
	ck_assert_int_eq(sqlite3_bind_parameter_count(b), 1);
	ck_assert_int_eq(sqlite3_stmt_busy(b), 0);
	/* nested use of the same text: a second, uncached statement */
	c = store_stmt(rd, sql);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(b, c);
	store_stmt_done(c);
	store_stmt_done(b);
	ck_assert_ptr_eq(store_stmt(rd, sql), a);
	store_stmt_done(a);
	/* a connection that is not the store's: prepared and finalized */
	c = store_stmt(raw, sql);
	ck_assert_ptr_nonnull(c);
	store_stmt_done(c);
	ck_assert_ptr_null(sqlite3_next_stmt(raw, NULL));
	ck_assert_ptr_null(store_stmt(rd, "SELECT nosuch FROM nowhere"));
	sqlite3_close(raw);
	store_close(st);
}
END_TEST

START_TEST(test_meta)
{
	struct store *st = open_ok();
	char *v = NULL;

	ck_assert_int_eq(store_meta_get(st, "nope", &v), GW_ENOTFOUND);
	ck_assert_int_eq(store_meta_set(st, "a", "1"), GW_OK);
	ck_assert_int_eq(store_meta_set(st, "a", "2"), GW_OK);
	ck_assert_int_eq(store_meta_get(st, "a", &v), GW_OK);
	ck_assert_str_eq(v, "2");
	free(v);
	ck_assert_int_eq(store_meta_set(st, "", "x"), GW_EINVAL);
	ck_assert_int_eq(store_meta_set(st, "b", NULL), GW_EINVAL);
	store_close(st);
}
END_TEST

START_TEST(test_state_version_monotonic)
{
	struct store *st = open_ok();
	int64_t v = -1;

	ck_assert_int_eq(store_state_version_get(st, "presence", &v), GW_OK);
	ck_assert_int_eq(v, 0);
	for (int i = 1; i <= 3; i++) {
		ck_assert_int_eq(store_state_version_bump(st, "presence", &v),
				 GW_OK);
		ck_assert_int_eq(v, i);
	}
	ck_assert_int_eq(store_state_version_bump(st, "health", &v), GW_OK);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(store_state_version_bump(st, "", &v), GW_EINVAL);
	store_close(st);

	st = open_ok();
	ck_assert_int_eq(store_state_version_get(st, "presence", &v), GW_OK);
	ck_assert_int_eq(v, 3);
	ck_assert_int_eq(store_state_version_bump(st, "presence", &v), GW_OK);
	ck_assert_int_eq(v, 4);
	ck_assert_int_eq(store_state_version_get(st, "health", &v), GW_OK);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(store_state_version_bump(st, "health", NULL), GW_OK);
	ck_assert_int_eq(store_state_version_get(st, "health", &v), GW_OK);
	ck_assert_int_eq(v, 2);
	store_close(st);
}
END_TEST

static json_t *entry(const char *host, int64_t ts)
{
	return json_pack("{s:s, s:s, s:s, s:I}", "host", host, "mode",
			 "ui", "reason", "connect", "ts", (json_int_t)ts);
}

static const char *host_at(json_t *arr, size_t i)
{
	return json_string_value(json_object_get(json_array_get(arr, i),
						 "host"));
}

START_TEST(test_presence)
{
	struct store *st = open_ok();
	int64_t now = util_now_ms();
	json_t *arr = NULL, *e;
	int removed = -1;

	for (int i = 0; i < 5; i++) {
		char key[16], host[16];

		snprintf(key, sizeof(key), "dev%d", i);
		snprintf(host, sizeof(host), "h%d", i);
		e = entry(host, now - (int64_t)i * 60000);
		ck_assert_int_eq(store_presence_upsert(st, key, e), GW_OK);
		json_decref(e);
	}
	/* update one: newer ts moves it first */
	e = entry("h3-new", now + 1000);
	ck_assert_int_eq(store_presence_upsert(st, "dev3", e), GW_OK);
	json_decref(e);
	ck_assert_int_eq(store_presence_load(st, &arr), GW_OK);
	ck_assert_int_eq(json_array_size(arr), 5);
	ck_assert_str_eq(host_at(arr, 0), "h3-new");
	ck_assert_str_eq(host_at(arr, 1), "h0");
	ck_assert_str_eq(host_at(arr, 4), "h4");
	json_decref(arr);

	/* entry without ts: stored with now */
	e = json_pack("{s:s}", "host", "nots");
	ck_assert_int_eq(store_presence_upsert(st, "nots", e), GW_OK);
	json_decref(e);
	ck_assert_int_ge(q_int(store_reader(st), "SELECT ts FROM presence "
			       "WHERE key = 'nots'"), now);
	e = json_array();
	ck_assert_int_eq(store_presence_upsert(st, "bad", e), GW_EINVAL);
	json_decref(e);

	ck_assert_int_eq(store_presence_delete(st, "nots"), GW_OK);
	ck_assert_int_eq(store_presence_delete(st, "nots"), GW_ENOTFOUND);

	/* older than 2.5 minutes: h3 was moved, so h4 (4 min), h3 stays */
	ck_assert_int_eq(store_presence_prune(st, now - 150000, -1, &removed),
			 GW_OK);
	ck_assert_int_eq(removed, 1);
	/* cap at 2 rows: the newest two stay */
	ck_assert_int_eq(store_presence_prune(st, 0, 2, &removed), GW_OK);
	ck_assert_int_eq(removed, 2);
	ck_assert_int_eq(store_presence_load(st, &arr), GW_OK);
	ck_assert_int_eq(json_array_size(arr), 2);
	ck_assert_str_eq(host_at(arr, 0), "h3-new");
	ck_assert_str_eq(host_at(arr, 1), "h0");
	json_decref(arr);
	ck_assert_int_eq(store_presence_prune(st, 0, 2, NULL), GW_OK);
	store_close(st);
}
END_TEST

START_TEST(test_audit)
{
	struct store *st = open_ok();
	json_t *d = json_pack("{s:s, s:i}", "scope", "operator.admin", "n", 3);
	sqlite3 *rd;
	char *s;

	ck_assert_int_eq(store_audit(st, "device:abc", "device.pair.approve",
				     "dev1", d, "127.0.0.1"), GW_OK);
	json_decref(d);
	ck_assert_int_eq(store_audit(st, NULL, "config.set", NULL, NULL,
				     NULL), GW_OK);
	ck_assert_int_eq(store_audit(st, "x", NULL, NULL, NULL, NULL),
			 GW_EINVAL);
	ck_assert_int_eq(store_audit(st, "x", "", NULL, NULL, NULL),
			 GW_EINVAL);
	ck_assert_int_eq(store_flush(st), GW_OK);
	rd = store_reader(st);
	ck_assert_int_eq(q_int(rd, "SELECT count(*) FROM audit_log"), 2);
	s = q_text(rd, "SELECT json_extract(detail, '$.scope') FROM audit_log "
		   "WHERE action = 'device.pair.approve' AND actor = "
		   "'device:abc' AND target = 'dev1' AND remote_ip = "
		   "'127.0.0.1'");
	ck_assert_str_eq(s, "operator.admin");
	free(s);
	ck_assert_int_eq(q_int(rd, "SELECT detail IS NULL AND actor IS NULL "
			       "FROM audit_log WHERE action = 'config.set'"),
			 1);
	/* newest first in the view */
	s = q_text(rd, "SELECT action FROM audit_recent");
	ck_assert_str_eq(s, "config.set");
	free(s);
	store_close(st);
}
END_TEST

struct rdr {
	struct store *st;
	atomic_int *stop;
	int errors;
	int backwards;
	long reads;
};

static void *reader_main(void *arg)
{
	struct rdr *r = arg;
	int64_t last = 0;

	while (!atomic_load(r->stop) || r->reads < 10) {
		int64_t v = 0;
		json_t *arr = NULL;

		if (store_state_version_get(r->st, "presence", &v) != GW_OK)
			r->errors++;
		if (v < last)
			r->backwards++;
		last = v;
		if (store_presence_load(r->st, &arr) != GW_OK)
			r->errors++;
		json_decref(arr);
		r->reads++;
	}
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	struct store *st = open_ok();
	atomic_int stop = 0;
	struct rdr r[2] = {
		{ .st = st, .stop = &stop },
		{ .st = st, .stop = &stop },
	};
	pthread_t t[2];
	int64_t v = 0;

	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main,
						&r[i]), 0);
	for (int i = 0; i < 400; i++) {
		json_t *e = entry("h", util_now_ms());
		char key[16];

		snprintf(key, sizeof(key), "k%d", i % 20);
		ck_assert_int_eq(store_presence_upsert(st, key, e), GW_OK);
		json_decref(e);
		ck_assert_int_eq(store_state_version_bump(st, "presence", &v),
				 GW_OK);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(r[i].errors, 0);
		ck_assert_int_eq(r[i].backwards, 0);
		ck_assert_int_ge(r[i].reads, 10);
	}
	ck_assert_int_eq(v, 400);
	store_close(st);
}
END_TEST

START_TEST(test_views)
{
	static const char *const views[] = {
		"presence_now", "audit_recent", "state_versions_now",
		"schema_info",
	};
	struct store *st = open_ok();
	json_t *e = entry("viewhost", util_now_ms());
	json_t *old = entry("oldhost", util_now_ms() - 600000);
	sqlite3 *rd;
	char *s;

	ck_assert_int_eq(store_presence_upsert(st, "v1", e), GW_OK);
	ck_assert_int_eq(store_presence_upsert(st, "v0", old), GW_OK);
	json_decref(e);
	json_decref(old);
	ck_assert_int_eq(store_state_version_bump(st, "presence", NULL), GW_OK);
	ck_assert_int_eq(store_audit(st, "a", "test.view", "t", NULL, NULL),
			 GW_OK);
	ck_assert_int_eq(store_flush(st), GW_OK);
	rd = store_reader(st);
	for (size_t i = 0; i < ARRAY_SIZE(views); i++) {
		char *sql = xasprintf("SELECT count(*) FROM %s", views[i]);

		ck_assert_int_ge(q_int(rd, sql), 1);
		free(sql);
	}
	/* presence_now hides entries older than the 5 minute TTL */
	ck_assert_int_eq(q_int(rd, "SELECT count(*) FROM presence_now"), 1);
	s = q_text(rd, "SELECT host || ',' || mode || ',' || age_s "
		   "FROM presence_now");
	ck_assert_str_eq(s, "viewhost,ui,0");
	free(s);
	ck_assert_int_eq(q_int(rd, "SELECT version FROM state_versions_now "
			       "WHERE kind = 'presence'"), 1);
	ck_assert_int_eq(q_int(rd, "SELECT user_version FROM schema_info "
			       "WHERE version = 1"), store_migrations_count);
	s = q_text(rd, "SELECT name FROM schema_info WHERE version = 1");
	ck_assert_str_eq(s, "init");
	free(s);
	store_close(st);
}
END_TEST

/* The operator recipe from doc/sqlite.md, with the real sqlite3 CLI
 * while the store is open (skipped when the CLI is not installed). */
START_TEST(test_views_cli)
{
	struct store *st = open_ok();
	json_t *e = entry("clihost", util_now_ms());
	char *cmd, buf[256] = "";
	FILE *p;

	if (system("command -v sqlite3 >/dev/null 2>&1") != 0) {
		store_close(st);
		return;
	}
	ck_assert_int_eq(store_presence_upsert(st, "c1", e), GW_OK);
	json_decref(e);
	cmd = xasprintf("sqlite3 -readonly '%s' 'select host from "
			"presence_now' 2>&1", dbpath);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), p));
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_str_eq(buf, "clihost\n");
	free(cmd);
	store_close(st);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_migrate_empty);
	tcase_add_test(tc, test_migrate_idempotent);
	tcase_add_test(tc, test_views_recreated);
	tcase_add_test(tc, test_refuse_newer);
	tcase_add_test(tc, test_refuse_newer_fresh_file);
	tcase_add_test(tc, test_pragmas);
	tcase_add_test(tc, test_write_order_rollback);
	tcase_add_test(tc, test_close_drains);
	tcase_add_test(tc, test_write_sync_durable);
	tcase_add_test(tc, test_write_sync_on_writer);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_stmt_cache);
	tcase_add_test(tc, test_meta);
	tcase_add_test(tc, test_state_version_monotonic);
	tcase_add_test(tc, test_presence);
	tcase_add_test(tc, test_audit);
	tcase_add_test(tc, test_concurrent_readers);
	tcase_add_test(tc, test_views);
	tcase_add_test(tc, test_views_cli);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	log_set_console(0);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
