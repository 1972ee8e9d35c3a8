/* SQLite state store: open + pragmas, migrations, the writer thread and
 * its queue, per-thread readers, typed helpers for the first tables. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/wake.h"
#include "store/store.h"
#include "store/store-vfs.h"
#include "store/store-wal.h"

#define STORE_VIEWS_META_KEY "store.views_sha256"
#define STORE_KEY_MAX 512
#define STORE_GROUP_MAX 128	/* jobs sharing one commit, at most */

struct store_wait {
	int finished;
	int rc;
};

struct store_job {
	struct store_job *next;
	store_fn fn;
	void *arg;
	store_done_fn done;
	unsigned flags;
	struct store_wait *wait;	/* store_write_sync's caller, or NULL */
};

struct store_reader {
	struct store_reader *next;
	struct store *st;
	sqlite3 *db;
};

struct store {
	char *path;
	sqlite3 *wdb;			/* writer thread (after open) */
	pthread_t writer;
	int writer_started;
	int wake_reg;			/* wake_target_add took it */
	int in_tx;			/* writer thread only */
	uint64_t writes, commits;	/* writer thread; read under mu */
	int64_t opened_ms;		/* util_mono_ms() at open */
	struct store_wal *wal;		/* checkpointer (NULL: automatic) */
	struct store_wal_stats ckpt;	/* its figures when it stopped */

	pthread_mutex_t mu;		/* guards everything below */
	pthread_cond_t cv;		/* job queued or stopping */
	pthread_cond_t done_cv;		/* a sync job finished */
	struct store_job *head, *tail;
	int stopping;
	int64_t drain_deadline;		/* util_mono_ms() */

	pthread_key_t rkey;
	int rkey_ok;
	struct store_reader *readers;
};

/* Log SQLite's message for db and return GW_ESTORE. */
static int store_fail(sqlite3 *db, const char *what)
{
	log_error("store", "%s: %s", what, db ? sqlite3_errmsg(db) : "?");
	return GW_ESTORE;
}

static int store_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
		return GW_OK;
	log_error("store", "%s: %s", sql, err ? err : sqlite3_errmsg(db));
	sqlite3_free(err);
	return GW_ESTORE;
}

/* First column of the first row of sql as an integer. */
static int store_query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int r = GW_ESTORE;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_fail(db, sql);
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_fail(db, sql);
		goto out;
	}
	*out = sqlite3_column_int64(s, 0);
	r = GW_OK;
out:
	sqlite3_finalize(s);
	return r;
}

/* Per-connection settings: synchronous is not stored in the file and
 * Debian's build defaults WAL connections to FULL (c-stack.md section 3). */
static int store_pragmas(sqlite3 *db)
{
	char sql[128];

	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	snprintf(sql, sizeof(sql),
		 "PRAGMA synchronous=NORMAL;"
		 "PRAGMA journal_size_limit=%d;"
		 "PRAGMA foreign_keys=ON;", STORE_JOURNAL_SIZE_LIMIT);
	return store_exec(db, sql);
}

/* mkdir -p of path's parent; new directories are 0700. */
static int store_mkdirs(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int r = GW_OK;

	if (!slash || slash == dir)
		goto out;
	*slash = '\0';
	for (char *p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		*p = c;
		if (c == '\0')
			break;
	}
out:
	free(dir);
	return r;
}

/* Create the file 0600 before SQLite does (it would use 0644 & umask) and
 * tighten an existing one; SQLite gives -wal and -shm the file's mode. */
static int store_create_file(const char *path)
{
	struct stat sb;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) &&
	    fchmod(fd, sb.st_mode & 0700) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static int store_set_user_version(sqlite3 *db, int v)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", v);
	return store_exec(db, sql);
}

/* Views are owned by clawgate: drop every one so that migrations can
 * change tables freely; sql/views.sql recreates them afterwards. */
static int store_drop_views(sqlite3 *db)
{
	sqlite3_stmt *s = NULL;
	char **names = NULL;
	size_t n = 0;
	int r = GW_ESTORE, rc;

	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_schema "
			       "WHERE type = 'view'", -1, &s, NULL) !=
	    SQLITE_OK) {
		store_fail(db, "list views");
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup((const char *)sqlite3_column_text(s, 0));
	}
	if (rc != SQLITE_DONE) {
		store_fail(db, "list views");
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	for (size_t i = 0; i < n; i++) {
		char *sql = sqlite3_mprintf("DROP VIEW \"%w\"", names[i]);
		int e = store_exec(db, sql);

		sqlite3_free(sql);
		if (e)
			goto out;
	}
	r = GW_OK;
out:
	sqlite3_finalize(s);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

/* Inside the open transaction: apply migrations newer than from, then the
 * views, record both. */
static int store_migrate_tx(sqlite3 *db, int from, const char *views_hash)
{
	sqlite3_stmt *s = NULL;
	int64_t now = util_now_ms();
	int r = GW_ESTORE;

	if (store_drop_views(db))
		goto out;
	for (int i = 0; i < store_migrations_count; i++) {
		const struct store_migration *m = &store_migrations[i];

		if (m->version <= from)
			continue;
		if (sqlite3_exec(db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
			log_error("store", "migration %04d_%s: %s",
				  m->version, m->name, sqlite3_errmsg(db));
			goto out;
		}
		if (sqlite3_prepare_v2(db, "INSERT INTO schema_migrations"
				       "(version, name, applied_at) "
				       "VALUES (?, ?, ?)", -1, &s, NULL) !=
		    SQLITE_OK)
			goto fail;
		sqlite3_bind_int(s, 1, m->version);
		sqlite3_bind_text(s, 2, m->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, now);
		if (sqlite3_step(s) != SQLITE_DONE)
			goto fail;
		sqlite3_finalize(s);
		s = NULL;
		if (store_set_user_version(db, m->version))
			goto out;
		log_info("store", "applied migration %04d_%s", m->version,
			 m->name);
	}
	if (sqlite3_exec(db, store_views_sql, NULL, NULL, NULL) != SQLITE_OK) {
		log_error("store", "sql/views.sql: %s", sqlite3_errmsg(db));
		goto out;
	}
	r = store_meta_set_tx(db, STORE_VIEWS_META_KEY, views_hash);
	goto out;
fail:
	store_fail(db, "record migration");
out:
	sqlite3_finalize(s);
	return r;
}

/* Whether the stored views hash equals hash (meta exists from 0001). */
static int store_views_current(sqlite3 *db, const char *hash)
{
	sqlite3_stmt *s = NULL;
	int same = 0;

	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1,
			       &s, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(s, 1, STORE_VIEWS_META_KEY, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s, 0);

		same = v && strcmp(v, hash) == 0;
	}
out:
	sqlite3_finalize(s);
	return same;
}

static char *store_newer_msg(const char *path, int64_t have)
{
	return xasprintf("state database %s has schema version %lld, newer "
			 "than this clawgate supports (%d); upgrade clawgate "
			 "or restore a backup", path, (long long)have,
			 store_migrations_count);
}

/* Bring the schema to the newest embedded migration in one transaction. */
static int store_migrate(sqlite3 *db, const char *path, char **errmsg)
{
	char hash[65];
	int64_t uv = 0;
	int latest = store_migrations_count, r;

	util_sha256_hex(store_views_sql, strlen(store_views_sql), hash);
	if (store_exec(db, "BEGIN IMMEDIATE"))
		return GW_ESTORE;
	r = store_query_int(db, "PRAGMA user_version", &uv);
	if (r)
		goto out;
	if (uv > latest) {
		*errmsg = store_newer_msg(path, uv);
		r = GW_ESTORE;
		goto out;
	}
	if (uv == latest && store_views_current(db, hash))
		goto out;
	r = store_migrate_tx(db, (int)uv, hash);
	if (r)
		goto out;
	r = store_exec(db, "COMMIT");
	if (r == GW_OK && uv != latest)
		log_info("store", "%s: schema version %lld -> %d", path,
			 (long long)uv, latest);
out:
	if (r && !*errmsg)
		*errmsg = xasprintf("state database %s: migration failed: %s",
				    path, sqlite3_errmsg(db));
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* A cached statement run to completion (BEGIN, COMMIT, SAVEPOINT...). */
static int store_step1(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = store_stmt(db, sql);
	int rc;

	if (!s)
		return GW_ESTORE;
	rc = sqlite3_step(s);
	store_stmt_done(s);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return GW_OK;
	return store_fail(db, sql);
}

/* Run jobs[0..n) in one transaction (each in a savepoint when n > 1),
 * commit once, store each job's result in rc[]; writer thread. */
static void store_run_group(struct store *st, struct store_job **jobs,
			    int n, int *rc)
{
	sqlite3 *db = st->wdb;
	int durable = 0, r, i, start = 0, commit;

	for (i = 0; i < n; i++)
		durable |= jobs[i]->flags & STORE_DURABLE;
	if (durable && store_exec(db, "PRAGMA synchronous=FULL")) {
		for (i = 0; i < n; i++)
			rc[i] = GW_ESTORE;
		return;
	}
again:
	if (store_step1(db, "BEGIN IMMEDIATE")) {
		for (i = start; i < n; i++)
			rc[i] = GW_ESTORE;
		goto out;
	}
	for (i = start; i < n; i++) {
		if (n > 1 && store_step1(db, "SAVEPOINT store_job")) {
			rc[i] = GW_ESTORE;
			continue;
		}
		st->in_tx = 1;
		r = jobs[i]->fn(db, jobs[i]->arg);
		st->in_tx = 0;
		if (sqlite3_get_autocommit(db)) {
			/* SQLite rolled the whole transaction back (I/O
			 * error, full disk): the group's earlier writes are
			 * lost with it; the jobs after it start again. */
			log_warn("store", "transaction rolled back by an "
				 "error: %d write(s) lost", i - start + 1);
			for (int k = start; k < i; k++)
				rc[k] = GW_ESTORE;
			rc[i] = r ? r : GW_ESTORE;
			start = i + 1;
			if (start < n)
				goto again;
			goto out;
		}
		rc[i] = r;
		if (n == 1)
			break;
		if (r != GW_OK &&
		    store_step1(db, "ROLLBACK TO store_job") != GW_OK)
			rc[i] = GW_ESTORE;
		store_step1(db, "RELEASE store_job");
	}
	commit = 0;
	for (i = start; i < n; i++)
		commit |= rc[i] == GW_OK;
	r = commit ? store_step1(db, "COMMIT") : GW_ESTORE;
	if (r != GW_OK) {
		for (i = start; i < n; i++)
			if (rc[i] == GW_OK)
				rc[i] = GW_ESTORE;
	}
	if (!sqlite3_get_autocommit(db) &&
	    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		store_fail(db, "ROLLBACK");
	if (r == GW_OK) {
		pthread_mutex_lock(&st->mu);
		st->commits++;
		pthread_mutex_unlock(&st->mu);
	}
out:
	pthread_mutex_lock(&st->mu);
	st->writes += (uint64_t)n;
	pthread_mutex_unlock(&st->mu);
	if (durable)
		store_exec(db, "PRAGMA synchronous=NORMAL");
}

/* Run one job in its transaction; writer thread. */
static int store_run(struct store *st, struct store_job *j)
{
	int rc = GW_ESTORE;

	store_run_group(st, &j, 1, &rc);
	return rc;
}

static void store_finish(struct store *st, struct store_job *j, int rc)
{
	if (j->wait) {
		pthread_mutex_lock(&st->mu);
		j->wait->rc = rc;
		j->wait->finished = 1;
		pthread_cond_broadcast(&st->done_cv);
		pthread_mutex_unlock(&st->mu);
	} else if (j->done) {
		j->done(rc, j->arg);
	}
	free(j);
}

static void *store_writer_main(void *arg)
{
	struct store *st = arg;
	struct store_job *jobs[STORE_GROUP_MAX];
	int rc[STORE_GROUP_MAX];

	wake_hold();
	for (;;) {
		struct store_job *j;
		int drop, n = 0;

		wake_flush();
		pthread_mutex_lock(&st->mu);
		while (!st->head && !st->stopping)
			pthread_cond_wait(&st->cv, &st->mu);
		if (!st->head) {
			pthread_mutex_unlock(&st->mu);
			break;
		}
		/* Everything queued so far (bounded) shares one commit. */
		while ((j = st->head) && n < STORE_GROUP_MAX) {
			st->head = j->next;
			j->next = NULL;
			jobs[n++] = j;
		}
		if (!st->head)
			st->tail = NULL;
		drop = st->stopping && util_mono_ms() > st->drain_deadline;
		pthread_mutex_unlock(&st->mu);
		if (drop) {
			log_warn("store", "%d write(s) dropped at shutdown", n);
			for (int i = 0; i < n; i++)
				store_finish(st, jobs[i], GW_EUNAVAIL);
			continue;
		}
		store_run_group(st, jobs, n, rc);
		for (int i = 0; i < n; i++)
			store_finish(st, jobs[i], rc[i]);
		/* The group's answers are posted: their receivers are woken
		 * once each (wake.h), before a checkpoint here. */
		wake_flush();
		store_wal_writer_idle(st->wal, st->wdb);
	}
	wake_flush();
	return NULL;
}

json_t *store_status_json(struct store *st)
{
	struct store_wal_stats w;
	uint64_t writes = 0, commits = 0;
	json_t *j;

	store_stats(st, &writes, &commits);
	store_wal_stats(st->wal, &w);
	j = json_pack("{s:I,s:I,s:{s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:I,"
			 "s:I,s:I,s:I}}", "writes", (json_int_t)writes,
			 "commits", (json_int_t)commits, "wal",
			 "pages", w.wal_pages, "pagesMax", w.wal_pages_max,
			 "softPages", w.soft, "hardPages", w.hard,
			 "checkpoints", (json_int_t)w.checkpoints,
			 "checkpointPages", (json_int_t)w.pages,
			 "checkpointsBusy", (json_int_t)w.busy,
			 "lastCheckpointUs", (json_int_t)w.last_us,
			 "maxCheckpointUs", (json_int_t)w.max_us,
			 "totalCheckpointUs", (json_int_t)w.total_us,
			 "writerCheckpoints", (json_int_t)w.writer_checkpoints,
			 "resets", (json_int_t)w.resets);
	json_object_set_new(json_object_get(j, "wal"), "frames",
			    json_integer((json_int_t)w.frames));
	json_object_set_new(json_object_get(j, "wal"), "writerCheckpointsBusy",
			    json_integer((json_int_t)w.writer_busy));
	json_object_set_new(json_object_get(j, "wal"), "writerCheckpointUs",
			    json_integer((json_int_t)w.writer_us));
	json_object_set_new(json_object_get(j, "wal"), "writerCheckpointCpuUs",
			    json_integer((json_int_t)w.writer_cpu_us));
	json_object_set_new(json_object_get(j, "wal"), "checkpointSyncs",
			    json_integer((json_int_t)w.presyncs));
	return j;
}

void store_stats(struct store *st, uint64_t *writes, uint64_t *commits)
{
	pthread_mutex_lock(&st->mu);
	if (writes)
		*writes = st->writes;
	if (commits)
		*commits = st->commits;
	pthread_mutex_unlock(&st->mu);
}

static int store_on_writer(const struct store *st)
{
	return st->writer_started && pthread_equal(pthread_self(), st->writer);
}

/* A held wake-up (wake.h). */
static void store_wake(void *arg)
{
	struct store *st = arg;

	pthread_mutex_lock(&st->mu);
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

static int store_enqueue(struct store *st, struct store_job *j)
{
	pthread_mutex_lock(&st->mu);
	if (st->stopping) {
		pthread_mutex_unlock(&st->mu);
		return GW_EUNAVAIL;
	}
	if (st->tail)
		st->tail->next = j;
	else
		st->head = j;
	st->tail = j;
	if (!st->wake_reg || !wake_later(store_wake, st))
		pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	return GW_OK;
}

int store_write(struct store *st, store_fn fn, void *arg, store_done_fn done)
{
	struct store_job *j = xcalloc(1, sizeof(*j));
	int r;

	j->fn = fn;
	j->arg = arg;
	j->done = done;
	r = store_enqueue(st, j);
	if (r)
		free(j);
	return r;
}

int store_write_sync(struct store *st, store_fn fn, void *arg,
		     unsigned flags)
{
	struct store_wait w = { 0, GW_OK };
	struct store_job *j;
	int r;

	if (store_on_writer(st)) {
		struct store_job inl = { .fn = fn, .arg = arg, .flags = flags };

		if (st->in_tx) {
			log_error("store", "store_write_sync inside a write "
				  "job");
			return GW_EINVAL;
		}
		return store_run(st, &inl);
	}
	j = xcalloc(1, sizeof(*j));
	j->fn = fn;
	j->arg = arg;
	j->flags = flags;
	j->wait = &w;
	r = store_enqueue(st, j);
	if (r) {
		free(j);
		return r;
	}
	wake_flush();	/* a loop thread's held wake-up of the writer */
	pthread_mutex_lock(&st->mu);
	while (!w.finished)
		pthread_cond_wait(&st->done_cv, &st->mu);
	pthread_mutex_unlock(&st->mu);
	return w.rc;
}

static int store_noop(sqlite3 *db, void *arg)
{
	(void)db;
	(void)arg;
	return GW_OK;
}

int store_flush(struct store *st)
{
	return store_write_sync(st, store_noop, NULL, 0);
}

/* TSD destructor: a reader thread exits before store_close. */
static void store_reader_free(void *p)
{
	struct store_reader *rd = p;
	struct store *st = rd->st;

	pthread_mutex_lock(&st->mu);
	for (struct store_reader **pp = &st->readers; *pp;
	     pp = &(*pp)->next) {
		if (*pp == rd) {
			*pp = rd->next;
			break;
		}
	}
	pthread_mutex_unlock(&st->mu);
	store_stmt_forget(rd->db);
	sqlite3_close(rd->db);
	free(rd);
}

sqlite3 *store_reader(struct store *st)
{
	struct store_reader *rd = pthread_getspecific(st->rkey);
	sqlite3 *db = NULL;

	if (rd)
		return rd->db;
	if (sqlite3_open_v2(st->path, &db, SQLITE_OPEN_READONLY |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    store_pragmas(db)) {
		log_error("store", "open reader %s: %s", st->path,
			  db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	store_stmt_register(db);
	rd = xcalloc(1, sizeof(*rd));
	rd->st = st;
	rd->db = db;
	pthread_mutex_lock(&st->mu);
	rd->next = st->readers;
	st->readers = rd;
	pthread_mutex_unlock(&st->mu);
	pthread_setspecific(st->rkey, rd);
	return db;
}

/* Switch to WAL (persistent in the file); mode gets the resulting mode. */
static void store_journal_wal(sqlite3 *db, char *mode, size_t size)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &s, NULL) ==
	    SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		snprintf(mode, size, "%s",
			 (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
}

/* Process-wide SQLite settings, before its first use: no memory
 * statistics (they take a global mutex on every allocation). SQLITE_MISUSE
 * when SQLite was already initialised is harmless. */
static void store_global_config(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(const char *path, struct store **out, char **errmsg)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct store *st = NULL;
	char *msg = NULL;
	sqlite3 *db = NULL;
	char mode[16] = "";
	int64_t uv = 0;
	int r = GW_ESTORE, e;

	*out = NULL;
	pthread_once(&once, store_global_config);
	if ((e = store_mkdirs(path)) < 0 || (e = store_create_file(path)) < 0) {
		msg = xasprintf("state database %s: %s", path, strerror(-e));
		r = GW_EIO;
		goto out;
	}
	/* The writer's WAL gathered into one write per commit. */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    store_vfs_name()) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	/* Refuse a newer database before changing anything in it. */
	if (store_query_int(db, "PRAGMA user_version", &uv))
		goto fail;
	if (uv > store_migrations_count) {
		msg = store_newer_msg(path, uv);
		goto out;
	}
	store_journal_wal(db, mode, sizeof(mode));
	if (strcmp(mode, "wal") != 0) {
		msg = xasprintf("state database %s: cannot enable WAL: %s",
				path, *mode ? mode : sqlite3_errmsg(db));
		goto out;
	}
	if (store_pragmas(db))
		goto fail;
	r = store_migrate(db, path, &msg);
	if (r)
		goto out;

	st = xcalloc(1, sizeof(*st));
	st->path = xstrdup(path);
	st->wdb = db;
	st->opened_ms = util_mono_ms();
	store_stmt_register(db);
	db = NULL;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	pthread_cond_init(&st->done_cv, NULL);
	st->wal = store_wal_start(path, st->wdb);
	if (pthread_key_create(&st->rkey, store_reader_free) != 0) {
		msg = xasprintf("state database %s: no thread key", path);
		r = GW_EINTERNAL;
		goto out;
	}
	st->rkey_ok = 1;
	st->wake_reg = wake_target_add(st);
	if (pthread_create(&st->writer, NULL, store_writer_main, st) != 0) {
		msg = xasprintf("state database %s: cannot start writer",
				path);
		r = GW_EINTERNAL;
		goto out;
	}
	st->writer_started = 1;
	pthread_setname_np(st->writer, "store");
	*out = st;
	st = NULL;
	r = GW_OK;
	goto out;
fail:
	r = GW_ESTORE;
	msg = xasprintf("state database %s: %s", path,
			db ? sqlite3_errmsg(db) : "out of memory");
out:
	if (r && msg)
		log_error("store", "%s", msg);
	if (errmsg)
		*errmsg = msg;
	else
		free(msg);
	store_close(st);
	sqlite3_close(db);
	return r;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->writer_started) {
		pthread_mutex_lock(&st->mu);
		st->stopping = 1;
		st->drain_deadline = util_mono_ms() + STORE_DRAIN_MS;
		pthread_cond_signal(&st->cv);
		pthread_mutex_unlock(&st->mu);
		pthread_join(st->writer, NULL);
	}
	if (st->wake_reg)
		wake_target_del(st);
	store_wal_stats(st->wal, &st->ckpt);
	store_wal_stop(st->wal, st->wdb);
	st->wal = NULL;
	pthread_mutex_lock(&st->mu);
	while (st->readers) {
		struct store_reader *rd = st->readers;

		st->readers = rd->next;
		store_stmt_forget(rd->db);
		sqlite3_close(rd->db);
		free(rd);
	}
	pthread_mutex_unlock(&st->mu);
	if (st->rkey_ok)
		pthread_key_delete(st->rkey);
	if (st->wdb) {
		uint64_t w = 0, c = 0;
		double secs = (double)(util_mono_ms() - st->opened_ms) / 1000;

		store_stats(st, &w, &c);
		if (c)
			log_info("store", "store: %llu writes in %llu commits "
				 "(%.1f per commit; %.0f commits/s over %.0f s)",
				 (unsigned long long)w, (unsigned long long)c,
				 (double)w / (double)c,
				 secs > 0 ? (double)c / secs : 0.0, secs);
		if (st->ckpt.checkpoints || st->ckpt.writer_checkpoints)
			log_info("store", "store: %.1f WAL pages per commit; "
				 "%llu checkpoints (%llu pages, %.1f ms, %llu "
				 "syncs) off the writer, %llu on it (%.1f ms, %.1f ms CPU, "
				 "%llu found a reader); WAL at most %d pages",
				 c ? (double)st->ckpt.frames / (double)c : 0.0,
				 (unsigned long long)st->ckpt.checkpoints,
				 (unsigned long long)st->ckpt.pages,
				 (double)st->ckpt.total_us / 1000,
				 (unsigned long long)st->ckpt.presyncs,
				 (unsigned long long)
					 st->ckpt.writer_checkpoints,
				 (double)st->ckpt.writer_us / 1000,
				 (double)st->ckpt.writer_cpu_us / 1000,
				 (unsigned long long)st->ckpt.writer_busy,
				 st->ckpt.wal_pages_max);
		store_stmt_forget(st->wdb);
		sqlite3_exec(st->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL,
			     NULL, NULL);
		sqlite3_close(st->wdb);
	}
	pthread_cond_destroy(&st->done_cv);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	free(st->path);
	free(st);
}

const char *store_path(const struct store *st)
{
	return st->path;
}

int store_schema_version(struct store *st, int *out)
{
	sqlite3 *db = store_reader(st);
	int64_t v = 0;
	int r;

	if (!db)
		return GW_ESTORE;
	r = store_query_int(db, "PRAGMA user_version", &v);
	if (r == GW_OK)
		*out = (int)v;
	return r;
}

/* ---- typed helpers --------------------------------------------------- */

/* The cached statement for sql on db (store_stmt_done it), logging on
 * failure. */
static int store_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s)
{
	if (!db)
		return GW_ESTORE;
	*s = store_stmt(db, sql);
	return *s ? GW_OK : GW_ESTORE;
}

static int store_key_ok(const char *key)
{
	return key && *key && strlen(key) <= STORE_KEY_MAX;
}

int store_meta_get(struct store *st, const char *key, char **val)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	int r, rc;

	*val = NULL;
	r = store_prep(db, "SELECT value FROM meta WHERE key = ?", &s);
	if (r)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*val = xstrdup((const char *)sqlite3_column_text(s, 0));
		r = GW_OK;
	} else if (rc == SQLITE_DONE) {
		r = GW_ENOTFOUND;
	} else {
		r = store_fail(db, "meta get");
	}
out:
	store_stmt_done(s);
	return r;
}

int store_meta_set_tx(sqlite3 *db, const char *key, const char *val)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (!store_key_ok(key) || !val)
		return GW_EINVAL;
	r = store_prep(db, "INSERT INTO meta(key, value) VALUES (?, ?) "
		       "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
		       &s);
	if (r)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, val, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_fail(db, "meta set");
out:
	store_stmt_done(s);
	return r;
}

struct store_kv {
	const char *key;
	const char *val;
};

static int store_meta_set_fn(sqlite3 *db, void *arg)
{
	const struct store_kv *kv = arg;

	return store_meta_set_tx(db, kv->key, kv->val);
}

int store_meta_set(struct store *st, const char *key, const char *val)
{
	struct store_kv kv = { key, val };

	return store_write_sync(st, store_meta_set_fn, &kv, 0);
}

int store_state_version_get(struct store *st, const char *kind,
			    int64_t *out)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	int r, rc;

	*out = 0;
	r = store_prep(db, "SELECT version FROM state_versions "
		       "WHERE kind = ?", &s);
	if (r)
		goto out;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		r = store_fail(db, "state version get");
out:
	store_stmt_done(s);
	return r;
}

int store_state_version_bump_tx(sqlite3 *db, const char *kind,
				int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (!store_key_ok(kind))
		return GW_EINVAL;
	r = store_prep(db, "INSERT INTO state_versions(kind, version) "
		       "VALUES (?, 1) ON CONFLICT(kind) DO UPDATE "
		       "SET version = version + 1 RETURNING version", &s);
	if (r)
		goto out;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW) {
		r = store_fail(db, "state version bump");
		goto out;
	}
	if (out)
		*out = sqlite3_column_int64(s, 0);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_fail(db, "state version bump");
out:
	store_stmt_done(s);
	return r;
}

struct store_bump {
	const char *kind;
	int64_t v;
};

static int store_bump_fn(sqlite3 *db, void *arg)
{
	struct store_bump *b = arg;

	return store_state_version_bump_tx(db, b->kind, &b->v);
}

int store_state_version_bump(struct store *st, const char *kind,
			     int64_t *out)
{
	struct store_bump b = { kind, 0 };
	int r = store_write_sync(st, store_bump_fn, &b, 0);

	if (r == GW_OK && out)
		*out = b.v;
	return r;
}

int store_presence_upsert_tx(sqlite3 *db, const char *key,
			     const json_t *entry)
{
	sqlite3_stmt *s = NULL;
	char *text = NULL;
	json_t *jts;
	int64_t now = util_now_ms(), ts = now;
	int r;

	if (!store_key_ok(key) || !json_is_object(entry))
		return GW_EINVAL;
	jts = json_object_get(entry, "ts");
	if (json_is_integer(jts))
		ts = json_integer_value(jts);
	text = json_dumps(entry, JSON_COMPACT);
	if (!text)
		return GW_EINVAL;
	r = store_prep(db, "INSERT INTO presence(key, entry, ts, updated_at) "
		       "VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
		       "entry = excluded.entry, ts = excluded.ts, "
		       "updated_at = excluded.updated_at", &s);
	if (r)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, ts);
	sqlite3_bind_int64(s, 4, now);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_fail(db, "presence upsert");
out:
	store_stmt_done(s);
	free(text);
	return r;
}

struct store_presence_arg {
	const char *key;
	const json_t *entry;
	int64_t min_ts;
	int max_rows;
	int removed;
};

static int store_presence_upsert_fn(sqlite3 *db, void *arg)
{
	struct store_presence_arg *a = arg;

	return store_presence_upsert_tx(db, a->key, a->entry);
}

int store_presence_upsert(struct store *st, const char *key,
			  const json_t *entry)
{
	struct store_presence_arg a = { .key = key, .entry = entry };

	return store_write_sync(st, store_presence_upsert_fn, &a, 0);
}

int store_presence_delete_tx(sqlite3 *db, const char *key)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (!store_key_ok(key))
		return GW_EINVAL;
	r = store_prep(db, "DELETE FROM presence WHERE key = ?", &s);
	if (r)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_fail(db, "presence delete");
	else if (sqlite3_changes(db) == 0)
		r = GW_ENOTFOUND;
out:
	store_stmt_done(s);
	return r;
}

static int store_presence_delete_fn(sqlite3 *db, void *arg)
{
	struct store_presence_arg *a = arg;

	return store_presence_delete_tx(db, a->key);
}

int store_presence_delete(struct store *st, const char *key)
{
	struct store_presence_arg a = { .key = key };

	return store_write_sync(st, store_presence_delete_fn, &a, 0);
}

int store_presence_prune_tx(sqlite3 *db, int64_t min_ts, int max_rows,
			    int *removed)
{
	sqlite3_stmt *s = NULL;
	int r, n = 0;

	r = store_prep(db, "DELETE FROM presence WHERE ts < ?", &s);
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, min_ts);
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = store_fail(db, "presence prune");
		goto out;
	}
	n += sqlite3_changes(db);
	store_stmt_done(s);
	s = NULL;
	if (max_rows >= 0) {
		r = store_prep(db, "DELETE FROM presence WHERE key IN "
			       "(SELECT key FROM presence ORDER BY ts DESC, "
			       "key LIMIT -1 OFFSET ?)", &s);
		if (r)
			goto out;
		sqlite3_bind_int(s, 1, max_rows);
		if (sqlite3_step(s) != SQLITE_DONE) {
			r = store_fail(db, "presence prune");
			goto out;
		}
		n += sqlite3_changes(db);
	}
	if (removed)
		*removed = n;
out:
	store_stmt_done(s);
	return r;
}

static int store_presence_prune_fn(sqlite3 *db, void *arg)
{
	struct store_presence_arg *a = arg;

	return store_presence_prune_tx(db, a->min_ts, a->max_rows,
				       &a->removed);
}

int store_presence_prune(struct store *st, int64_t min_ts, int max_rows,
			 int *removed)
{
	struct store_presence_arg a = { .min_ts = min_ts,
					.max_rows = max_rows };
	int r = store_write_sync(st, store_presence_prune_fn, &a, 0);

	if (r == GW_OK && removed)
		*removed = a.removed;
	return r;
}

int store_presence_load(struct store *st, json_t **array)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	json_t *arr = NULL;
	int r, rc;

	*array = NULL;
	r = store_prep(db, "SELECT key, entry FROM presence "
		       "ORDER BY ts DESC, key", &s);
	if (r)
		goto out;
	arr = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(s, 1);
		json_t *e = text ? json_loads(text, JSON_REJECT_DUPLICATES,
					      NULL) : NULL;

		if (!json_is_object(e)) {
			log_warn("store", "presence %s: bad entry skipped",
				 (const char *)sqlite3_column_text(s, 0));
			json_decref(e);
			continue;
		}
		json_array_append_new(arr, e);
	}
	if (rc != SQLITE_DONE) {
		r = store_fail(db, "presence load");
		goto out;
	}
	*array = arr;
	arr = NULL;
out:
	json_decref(arr);
	store_stmt_done(s);
	return r;
}

/* Insert one audit row; detail is serialised JSON or NULL. */
static int store_audit_insert(sqlite3 *db, int64_t ts, const char *actor,
			      const char *action, const char *target,
			      const char *detail, const char *remote_ip)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (!action || !*action)
		return GW_EINVAL;
	r = store_prep(db, "INSERT INTO audit_log(ts, actor, action, target, "
		       "detail, remote_ip) VALUES (?, ?, ?, ?, ?, ?)", &s);
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, ts);
	sqlite3_bind_text(s, 2, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, detail, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, remote_ip, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_fail(db, "audit insert");
out:
	store_stmt_done(s);
	return r;
}

static char *store_json_text(const json_t *detail)
{
	return detail ? json_dumps(detail, JSON_COMPACT | JSON_ENCODE_ANY)
		      : NULL;
}

int store_audit_tx(sqlite3 *db, const char *actor, const char *action,
		   const char *target, const json_t *detail,
		   const char *remote_ip)
{
	char *text = store_json_text(detail);
	int r = store_audit_insert(db, util_now_ms(), actor, action, target,
				   text, remote_ip);

	free(text);
	return r;
}

struct store_audit_job {
	int64_t ts;
	char *actor, *action, *target, *detail, *remote_ip;
};

static void store_audit_job_free(struct store_audit_job *a)
{
	free(a->actor);
	free(a->action);
	free(a->target);
	free(a->detail);
	free(a->remote_ip);
	free(a);
}

static int store_audit_fn(sqlite3 *db, void *arg)
{
	struct store_audit_job *a = arg;

	return store_audit_insert(db, a->ts, a->actor, a->action, a->target,
				  a->detail, a->remote_ip);
}

static void store_audit_done(int rc, void *arg)
{
	struct store_audit_job *a = arg;

	if (rc)
		log_warn("store", "audit row %s lost: %s", a->action,
			 gw_err_str(rc));
	store_audit_job_free(a);
}

static char *store_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int store_audit(struct store *st, const char *actor, const char *action,
		const char *target, const json_t *detail,
		const char *remote_ip)
{
	struct store_audit_job *a;
	int r;

	if (!action || !*action)
		return GW_EINVAL;
	a = xcalloc(1, sizeof(*a));
	a->ts = util_now_ms();
	a->actor = store_dup(actor);
	a->action = xstrdup(action);
	a->target = store_dup(target);
	a->detail = store_json_text(detail);
	a->remote_ip = store_dup(remote_ip);
	r = store_write(st, store_audit_fn, a, store_audit_done);
	if (r)
		store_audit_job_free(a);
	return r;
}
