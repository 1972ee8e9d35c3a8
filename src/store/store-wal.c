/* WAL checkpoints off the writer's critical path.
 *
 * SQLite's automatic checkpoint runs in the committing connection's WAL
 * hook: every ~1000 pages the writer copied the WAL into the database and
 * fsynced both files while the callers of that group waited for their
 * commit (the 1 % tail of a chat completion). Here the writer connection
 * has no automatic checkpoint. Its hook (writer thread, after each
 * commit: a few loads and stores, no syscall) records the WAL's size and
 * wakes the checkpointer, a thread with its own read-write connection that
 * runs PASSIVE checkpoints (never blocking the writer or readers), when
 * the WAL reaches the soft bound and then in batches: every quarter of the
 * room between the bounds (950 pages by default), once more a soft bound
 * short of the hard one and then every quarter of the soft bound (a forced
 * checkpoint finds little left). A checkpoint copies each page once, from
 * its last frame, so a page that consecutive commits rewrite (the right
 * edge of an index, a session's row, page 1) costs one copy per batch,
 * not one per few commits: with a wake-up every 50 pages nearly every
 * frame was copied (a pread, a pwrite and its writeback each). Frames left
 * behind by a round (the writer committed during it) are copied at the
 * next wake-up, or after STORE_WAL_IDLE_MS without one, so that when the
 * writer slows down or stops the WAL is finished and its next transaction
 * rewinds it to the start.
 *
 * Under a sustained write load a PASSIVE checkpoint from another
 * connection may never catch up with the last frame (the WAL only rewinds
 * when it has), so past the hard bound the writer checkpoints itself,
 * after it has completed the callers of the group that crossed it: no
 * commit lands meanwhile, so that checkpoint copies everything that is
 * left (only the frames the checkpointer had not reached) and the WAL
 * rewinds. That is logged (at most once a minute) and counted. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store-wal.h"

#define STORE_WAL_ROUNDS 4		/* PASSIVE runs per wake-up, at most */
#define STORE_WAL_LOG_MS 60000		/* forced checkpoint log interval */
#define STORE_WAL_WAIT_MS 2000		/* the writer waits for a run */
#define STORE_WAL_BUSY_NS 100000	/* ... then for readers, in steps */
#define STORE_WAL_BUSY_TRIES 50		/* of 0.1 ms, 5 ms at most */
#define STORE_WAL_IDLE_MS 100		/* frames left behind: copied after */

struct store_wal {
	sqlite3 *db;			/* the checkpointer's connection */
	pthread_t thread;
	int soft, hard;
	int step;			/* kick every step pages past soft */
	int last_kick;			/* ... and at hard - soft, then */
	int tail_step;			/* every tail_step pages */
	uint64_t synced_gen;		/* (checkpointer) resets + 1 of the
					 * WAL whose copies it synced */

	/* writer thread only (the hook and store_wal_writer_idle) */
	int last_n;			/* WAL pages after the last commit */
	int next_kick;			/* wake the checkpointer at this size */
	int force;			/* past the hard bound */
	int next_force;			/* force at this size */
	int held;			/* holding the checkpointer until the
					 * next commit rewound the WAL */
	int64_t next_log_ms;
	uint64_t unlogged;

	/* set by the writer, read by store_wal_stats */
	atomic_int wal_pages, wal_pages_max;
	atomic_ullong resets, writer_ckpts, writer_busy, frames, writer_us;
	atomic_ullong writer_cpu_us, presyncs;

	pthread_mutex_t mu;		/* guards the rest */
	pthread_cond_t cv;		/* kick or stopping */
	pthread_cond_t idle_cv;		/* running went to 0 */
	int kick, stopping, running;
	int hold;			/* the writer checkpoints: no new run */
	int attached;			/* the connection opened the WAL */
	int base;			/* frames copied in this WAL so far */
	uint64_t base_resets;		/* ... whose generation this is */
	uint64_t runs, pages, busy;
	int64_t last_us, max_us, total_us;
};

static int64_t store_wal_clock_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t store_wal_us(void)
{
	return store_wal_clock_us(CLOCK_MONOTONIC);
}

/* The writer's busy handler during its RESTART checkpoint: readers are
 * one-shot statements, so wait for them in short steps, a few ms at most
 * (the connection's busy_timeout sleeps 1, 2, 5, 10... ms). */
static int store_wal_busy(void *arg, int n)
{
	struct timespec ts = { 0, STORE_WAL_BUSY_NS };

	(void)arg;
	if (n >= STORE_WAL_BUSY_TRIES)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

/* Hold the checkpointer (no new run) and wait until its current run is
 * over (at most STORE_WAL_WAIT_MS). */
static void store_wal_hold(struct store_wal *w)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += STORE_WAL_WAIT_MS / 1000;
	ts.tv_nsec += (long)(STORE_WAL_WAIT_MS % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->mu);
	w->hold = 1;
	while (w->running &&
	       pthread_cond_timedwait(&w->idle_cv, &w->mu, &ts) == 0)
		;
	pthread_mutex_unlock(&w->mu);
}

static void store_wal_release(struct store_wal *w)
{
	pthread_mutex_lock(&w->mu);
	w->hold = 0;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* The writer's WAL hook: after every commit, n = pages in the WAL. */
static int store_wal_hook(void *arg, sqlite3 *db, const char *name, int n)
{
	struct store_wal *w = arg;

	(void)db;
	(void)name;
	if (w->held) {
		w->held = 0;
		store_wal_release(w);
	}
	if (n < w->last_n) {
		/* The transaction started a new WAL from its start. */
		atomic_fetch_add_explicit(&w->resets, 1, memory_order_relaxed);
		w->next_kick = w->soft;
		w->next_force = w->hard;
		w->last_n = 0;
	}
	atomic_fetch_add_explicit(&w->frames, (unsigned long long)(n - w->last_n),
				  memory_order_relaxed);
	w->last_n = n;
	atomic_store_explicit(&w->wal_pages, n, memory_order_relaxed);
	if (n > atomic_load_explicit(&w->wal_pages_max, memory_order_relaxed))
		atomic_store_explicit(&w->wal_pages_max, n,
				      memory_order_relaxed);
	if (n >= w->next_force)
		w->force = 1;
	if (n >= w->next_kick) {
		/* past hard - soft: short steps again, so that a forced
		 * checkpoint finds only the last few commits to copy */
		w->next_kick = n + (n >= w->last_kick ? w->tail_step : w->step);
		if (n < w->last_kick && w->next_kick > w->last_kick)
			w->next_kick = w->last_kick;
		pthread_mutex_lock(&w->mu);
		w->kick = 1;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	return SQLITE_OK;
}

/* SQLite syncs the database file only after a checkpoint that copied the
 * whole WAL; under a steady load that is the writer's forced one, whose
 * sync then wrote back every page the batches of that WAL had copied
 * (milliseconds of the writer's wall time, a request's). The first round
 * past hard - soft syncs them from here (through this connection's file:
 * closing another descriptor of the file would drop the process's POSIX
 * locks on it), so that the forced checkpoint writes back only the pages
 * of the last few commits. */
static void store_wal_presync(struct store_wal *w)
{
	sqlite3_file *f = NULL;

	if (sqlite3_file_control(w->db, "main", SQLITE_FCNTL_FILE_POINTER,
				 &f) == SQLITE_OK && f && f->pMethods &&
	    f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) == SQLITE_OK)
		atomic_fetch_add_explicit(&w->presyncs, 1,
					  memory_order_relaxed);
}

/* One wake-up: PASSIVE checkpoints until the WAL is all copied, no
 * progress is made (a reader's snapshot holds it) or the rounds are
 * spent. */
static void store_wal_run(struct store_wal *w)
{
	int prev = -1;

	/* A connection that has not read the file yet does not know it is
	 * in WAL mode: its checkpoint would do nothing (nlog -1). */
	if (!w->attached) {
		sqlite3_stmt *s = NULL;

		if (sqlite3_prepare_v2(w->db, "SELECT 1 FROM sqlite_schema "
				       "LIMIT 1", -1, &s, NULL) == SQLITE_OK)
			sqlite3_step(s);
		sqlite3_finalize(s);
		w->attached = 1;
	}

	for (int i = 0; i < STORE_WAL_ROUNDS; i++) {
		int nlog = -1, nckpt = -1, rc;
		int64_t t0 = store_wal_us(), dt;
		uint64_t resets;

		rc = sqlite3_wal_checkpoint_v2(w->db, NULL,
					       SQLITE_CHECKPOINT_PASSIVE,
					       &nlog, &nckpt);
		resets = atomic_load_explicit(&w->resets,
					      memory_order_relaxed);
		if (rc == SQLITE_OK && nckpt >= 0 && nlog >= w->last_kick &&
		    w->synced_gen != resets + 1) {
			store_wal_presync(w);
			w->synced_gen = resets + 1;
		}
		dt = store_wal_us() - t0;
		pthread_mutex_lock(&w->mu);
		if (rc == SQLITE_OK && nckpt < 0) {
			w->attached = 0;	/* not in WAL mode yet */
		} else if (rc == SQLITE_OK) {
			w->runs++;
			/* nckpt counts every copied frame of this WAL; the
			 * earlier runs' share is base unless it rewound. */
			if (resets != w->base_resets || nckpt < w->base)
				w->base = 0;
			w->base_resets = resets;
			w->pages += (uint64_t)(nckpt - w->base);
			w->base = nckpt;
			w->last_us = dt;
			w->total_us += dt;
			if (dt > w->max_us)
				w->max_us = dt;
		} else if (rc == SQLITE_BUSY) {
			w->busy++;
		}
		pthread_mutex_unlock(&w->mu);
		if (rc != SQLITE_OK) {
			if (rc != SQLITE_BUSY)
				log_warn("store", "checkpoint: %s",
					 sqlite3_errmsg(w->db));
			return;
		}
		if (nckpt < 0 || nckpt >= nlog || nckpt == prev)
			return;
		prev = nckpt;
		pthread_mutex_lock(&w->mu);
		rc = w->stopping || w->hold;
		pthread_mutex_unlock(&w->mu);
		if (rc)
			return;
	}
}

/* (mu held) The checkpointer copied part of the current WAL and the
 * writer appended frames since. */
static int store_wal_pending(struct store_wal *w)
{
	return w->base > 0 &&
	       atomic_load_explicit(&w->resets, memory_order_relaxed) ==
		       w->base_resets &&
	       atomic_load_explicit(&w->wal_pages, memory_order_relaxed) >
		       w->base;
}

static void *store_wal_main(void *arg)
{
	struct store_wal *w = arg;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		while ((!w->kick || w->hold) && !w->stopping) {
			struct timespec ts;

			if (w->hold || !store_wal_pending(w)) {
				pthread_cond_wait(&w->cv, &w->mu);
				continue;
			}
			/* Frames left behind by the last round: copied at
			 * the next kick or after STORE_WAL_IDLE_MS without
			 * one (the writer slowed down or went idle: the WAL
			 * is finished and rewinds). */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += STORE_WAL_IDLE_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) ==
				    ETIMEDOUT && !w->hold &&
			    store_wal_pending(w))
				w->kick = 1;
		}
		if (w->stopping) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		w->kick = 0;
		w->running = 1;
		pthread_mutex_unlock(&w->mu);
		store_wal_run(w);
		pthread_mutex_lock(&w->mu);
		w->running = 0;
		pthread_cond_broadcast(&w->idle_cv);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

/* The bounds from STORE_WAL_ENV, or the defaults. */
static void store_wal_bounds(int *soft, int *hard)
{
	const char *e = getenv(STORE_WAL_ENV);
	char *end = NULL;
	long s, h;

	*soft = STORE_WAL_SOFT_PAGES;
	*hard = STORE_WAL_HARD_PAGES;
	if (!e || !*e)
		return;
	errno = 0;
	s = strtol(e, &end, 10);
	h = s * STORE_WAL_HARD_FACTOR > STORE_WAL_HARD_PAGES
		    ? s * STORE_WAL_HARD_FACTOR : STORE_WAL_HARD_PAGES;
	if (!errno && *end == ':')
		h = strtol(end + 1, &end, 10);
	if (errno || *end || s < 0 || h < 1 || h < s || h > 1000000) {
		log_warn("store", "%s=%s ignored (SOFT or SOFT:HARD pages, "
			 "0 <= SOFT <= HARD, 1 <= HARD <= 1000000)",
			 STORE_WAL_ENV, e);
		return;
	}
	*soft = (int)s;
	*hard = (int)h;
}

struct store_wal *store_wal_start(const char *path, sqlite3 *wdb)
{
	struct store_wal *w = xcalloc(1, sizeof(*w));

	store_wal_bounds(&w->soft, &w->hard);
	/* Batches of a quarter of the room between the bounds (950 pages by
	 * default), and one more a soft bound short of the hard one (3800),
	 * so that a forced checkpoint finds little left to copy. */
	w->step = (w->hard - w->soft) / 4 > 0 ? (w->hard - w->soft) / 4 : 1;
	w->last_kick = w->hard - w->soft;
	w->tail_step = w->soft / 4 > 0 ? w->soft / 4 : 1;
	if (!w->soft)	/* no checkpointer runs: the hard bound only */
		w->soft = INT_MAX;
	w->next_kick = w->soft;
	w->next_force = w->hard;
	if (sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_warn("store", "checkpointer: open %s: %s", path,
			 w->db ? sqlite3_errmsg(w->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(w->db, STORE_BUSY_TIMEOUT_MS);
	/* As every connection of the store (Debian's build defaults WAL
	 * connections to FULL; a checkpoint syncs the same either way). */
	sqlite3_exec(w->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_cond_init(&w->idle_cv, NULL);
	if (pthread_create(&w->thread, NULL, store_wal_main, w) != 0) {
		log_warn("store", "checkpointer: cannot start a thread");
		pthread_cond_destroy(&w->idle_cv);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		goto fail;
	}
	pthread_setname_np(w->thread, "store-ckpt");
	/* Replaces SQLite's automatic checkpoint (also a WAL hook). */
	sqlite3_wal_hook(wdb, store_wal_hook, w);
	return w;
fail:
	sqlite3_close(w->db);
	free(w);
	return NULL;
}

void store_wal_writer_idle(struct store_wal *w, sqlite3 *wdb)
{
	int nlog = -1, nckpt = -1, rc;
	int64_t t0, c0, dt, now;

	if (!w || !w->force)
		return;
	w->force = 0;
	t0 = store_wal_us();
	c0 = store_wal_clock_us(CLOCK_THREAD_CPUTIME_ID);
	/* The checkpointer stops after its current round (it holds the
	 * checkpoint lock meanwhile); no commit lands while the writer is
	 * here, so this copies whatever is left. RESTART then waits (a few
	 * ms at most) until no reader uses the WAL's frames: a reader in
	 * one at the next BEGIN would keep the WAL from rewinding, and the
	 * writer would come back here at every commit. */
	store_wal_hold(w);
	sqlite3_busy_handler(wdb, store_wal_busy, NULL);
	rc = sqlite3_wal_checkpoint_v2(wdb, NULL, SQLITE_CHECKPOINT_RESTART,
				       &nlog, &nckpt);
	sqlite3_busy_timeout(wdb, STORE_BUSY_TIMEOUT_MS);
	/* The next transaction rewinds the WAL; the checkpointer stays held
	 * until that commit (the hook releases it). */
	if (rc == SQLITE_OK)
		w->held = 1;
	else
		store_wal_release(w);
	dt = store_wal_us() - t0;
	atomic_fetch_add_explicit(&w->writer_cpu_us, (unsigned long long)
		(store_wal_clock_us(CLOCK_THREAD_CPUTIME_ID) - c0),
		memory_order_relaxed);
	if (rc == SQLITE_BUSY) {
		/* a reader stayed: again once the WAL grew by a quarter
		 * of the bound, not at every commit */
		w->next_force = w->last_n + (w->hard / 4 > 0 ? w->hard / 4 : 1);
		atomic_fetch_add_explicit(&w->writer_busy, 1,
					  memory_order_relaxed);
		return;
	}
	if (rc != SQLITE_OK) {
		log_warn("store", "checkpoint: %s", sqlite3_errmsg(wdb));
		return;
	}
	atomic_fetch_add_explicit(&w->writer_ckpts, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->writer_us, (unsigned long long)dt,
				  memory_order_relaxed);
	w->unlogged++;
	now = util_mono_ms();
	if (now >= w->next_log_ms) {
		log_info("store", "WAL at %d pages (hard bound %d): checkpointed "
			 "on the writer in %lld us (%llu time(s) since the "
			 "last such line)", nlog, w->hard, (long long)dt,
			 (unsigned long long)w->unlogged);
		w->unlogged = 0;
		w->next_log_ms = now + STORE_WAL_LOG_MS;
	}
}

void store_wal_stop(struct store_wal *w, sqlite3 *wdb)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	if (wdb)
		sqlite3_wal_hook(wdb, NULL, NULL);
	sqlite3_close(w->db);
	pthread_cond_destroy(&w->idle_cv);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void store_wal_stats(struct store_wal *w, struct store_wal_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!w)
		return;
	out->wal_pages = atomic_load(&w->wal_pages);
	out->wal_pages_max = atomic_load(&w->wal_pages_max);
	out->resets = atomic_load(&w->resets);
	out->frames = atomic_load(&w->frames);
	out->writer_checkpoints = atomic_load(&w->writer_ckpts);
	out->writer_busy = atomic_load(&w->writer_busy);
	out->writer_us = (int64_t)atomic_load(&w->writer_us);
	out->writer_cpu_us = (int64_t)atomic_load(&w->writer_cpu_us);
	out->presyncs = atomic_load(&w->presyncs);
	out->soft = w->soft == INT_MAX ? 0 : w->soft;
	out->hard = w->hard;
	pthread_mutex_lock(&w->mu);
	out->checkpoints = w->runs;
	out->pages = w->pages;
	out->busy = w->busy;
	out->last_us = w->last_us;
	out->max_us = w->max_us;
	out->total_us = w->total_us;
	pthread_mutex_unlock(&w->mu);
}
