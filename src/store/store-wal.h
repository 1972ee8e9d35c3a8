/* WAL checkpoints off the writer's critical path (store-wal.c): the
 * writer connection runs no automatic checkpoint; its WAL hook, called
 * after every commit with the WAL's size in pages, wakes a checkpointer
 * thread (its own connection) that runs PASSIVE checkpoints once the WAL
 * has grown past the soft bound, then in batches (a quarter of the room
 * between the bounds) or after a quiet 100 ms; past the hard bound the
 * writer checkpoints
 * itself, after it has completed its callers. doc/sqlite.md, "WAL and
 * checkpoints". Internal to src/store. */
#pragma once

#include <stdint.h>

#include <sqlite3.h>

/* Soft bound 200 pages: many short checkpoints, not a few long ones. With
 * SQLite's 1000 a checkpoint's copy and fsyncs took the core from a
 * request often enough to set the 1-connection p99 (+1.22 to +1.35 ms
 * added; 200: +0.81 to +0.86 ms, for ~7 us more checkpointer CPU per
 * completion; tests/bench/openai-overhead.sh, alternated runs). */
#define STORE_WAL_SOFT_PAGES 200
#define STORE_WAL_HARD_PAGES 4000	/* the hard bound's default (16 MiB) */
#define STORE_WAL_HARD_FACTOR 4		/* SOFT alone: hard = max(default, 4 x SOFT) */
/* Test and tuning override: "SOFT" or "SOFT:HARD" (pages; SOFT 0: no
 * checkpointer runs, only the writer past HARD). */
#define STORE_WAL_ENV "CLAWGATE_STORE_WAL_PAGES"

struct store_wal;

/* The figures of store_status_json's "wal" part. */
struct store_wal_stats {
	uint64_t checkpoints;	/* checkpointer runs (PASSIVE) */
	uint64_t pages;		/* WAL frames they copied into the file */
	uint64_t busy;		/* runs that found another checkpoint */
	uint64_t writer_checkpoints; /* forced on the writer (hard bound) */
	uint64_t writer_busy;	/* ... that found a reader in the WAL */
	int64_t writer_us;	/* time the writer spent in them */
	int64_t writer_cpu_us;	/* ... its CPU time (busy ones too) */
	uint64_t presyncs;	/* database syncs by the checkpointer */
	uint64_t resets;	/* the WAL rewound to its start */
	uint64_t frames;	/* frames the writer's commits appended */
	int64_t last_us, max_us, total_us; /* checkpointer run durations */
	int wal_pages;		/* WAL size after the last commit */
	int wal_pages_max;
	int soft, hard;
};

/* Start the checkpointer on a connection of its own to path and install
 * the hook on wdb (the writer's connection). NULL when it cannot start
 * (logged): the writer keeps SQLite's automatic checkpoint then. */
struct store_wal *store_wal_start(const char *path, sqlite3 *wdb);
/* Writer thread, after it completed a group's callers: the checkpoint the
 * hard bound asked for, if any. */
void store_wal_writer_idle(struct store_wal *w, sqlite3 *wdb);
/* Stop and join the checkpointer, close its connection, uninstall the
 * hook from wdb. NULL is fine. */
void store_wal_stop(struct store_wal *w, sqlite3 *wdb);
void store_wal_stats(struct store_wal *w, struct store_wal_stats *out);
