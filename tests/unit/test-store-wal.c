/* Unit tests for src/store/store-wal.c: the writer connection runs no
 * automatic checkpoint, the checkpointer thread copies the WAL once it
 * grew past the soft bound, the writer checkpoints itself past the hard
 * bound (the WAL stays bounded), the bounds come from
 * CLAWGATE_STORE_WAL_PAGES, and close still truncates the WAL. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "store/store.h"
#include "store-fixture.h"

#define WAL_FRAME (4096 + 24)	/* page size + frame header */
#define VALUE_LEN 8000		/* about 6 frames per write */

/* One figure of the status JSON's "wal" object. */
static json_int_t wal_fig(struct store *st, const char *name)
{
	json_t *j = store_status_json(st);
	json_t *v = json_object_get(json_object_get(j, "wal"), name);
	json_int_t n;

	ck_assert_msg(json_is_integer(v), "no wal.%s", name);
	n = json_integer_value(v);
	json_decref(j);
	return n;
}

/* n committed writes of VALUE_LEN bytes each, one commit each. */
static void write_big(struct store *st, int n, const char *tag)
{
	char *val = malloc(VALUE_LEN + 1);
	char key[64];

	memset(val, 'x', VALUE_LEN);
	val[VALUE_LEN] = '\0';
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "test.%s.%d", tag, i);
		ck_assert_int_eq(store_meta_set(st, key, val), GW_OK);
	}
	free(val);
}

static off_t wal_size(void)
{
	char p[600];
	struct stat sb;

	snprintf(p, sizeof(p), "%s-wal", dbpath);
	return stat(p, &sb) == 0 ? sb.st_size : -1;
}

static struct store *open_with(const char *bounds)
{
	struct store *st;

	if (bounds)
		setenv("CLAWGATE_STORE_WAL_PAGES", bounds, 1);
	else
		unsetenv("CLAWGATE_STORE_WAL_PAGES");
	st = open_ok();
	unsetenv("CLAWGATE_STORE_WAL_PAGES");
	return st;
}

START_TEST(test_defaults_and_bad_env)
{
	struct store *st = open_with(NULL);

	ck_assert_int_eq(wal_fig(st, "softPages"), 200);
	ck_assert_int_eq(wal_fig(st, "hardPages"), 4000);
	ck_assert_int_eq(wal_fig(st, "checkpoints"), 0);
	store_close(st);
	st = open_with("12abc");
	ck_assert_int_eq(wal_fig(st, "softPages"), 200);
	store_close(st);
	st = open_with("64:32");	/* hard below soft */
	ck_assert_int_eq(wal_fig(st, "hardPages"), 4000);
	store_close(st);
	st = open_with("50");	/* SOFT alone: the default hard bound */
	ck_assert_int_eq(wal_fig(st, "softPages"), 50);
	ck_assert_int_eq(wal_fig(st, "hardPages"), 4000);
	store_close(st);
	st = open_with("2000");	/* ... or 4 x SOFT when that is larger */
	ck_assert_int_eq(wal_fig(st, "softPages"), 2000);
	ck_assert_int_eq(wal_fig(st, "hardPages"), 8000);
	store_close(st);
}
END_TEST

/* No checkpointer (SOFT 0) and a hard bound out of reach: nothing
 * checkpoints, so the WAL grows past the 1000 pages at which SQLite's
 * automatic checkpoint would have copied and rewound it on the writer. */
START_TEST(test_no_automatic_checkpoint)
{
	struct store *st = open_with("0:1000000");

	write_big(st, 450, "auto");
	ck_assert_int_gt(wal_fig(st, "pages"), 1000);
	ck_assert_int_eq(wal_fig(st, "resets"), 0);
	/* frames the commits appended: all of the WAL, as it never rewound */
	ck_assert_int_eq(wal_fig(st, "frames"), wal_fig(st, "pages"));
	ck_assert_int_eq(wal_fig(st, "checkpoints"), 0);
	ck_assert_int_eq(wal_fig(st, "writerCheckpoints"), 0);
	ck_assert_int_eq(wal_fig(st, "softPages"), 0);
	store_close(st);
	/* the final checkpoint at close stays: the WAL is emptied */
	ck_assert_int_le(wal_size(), 0);
}
END_TEST

/* Past the soft bound the checkpointer (not the writer) copies the WAL. */
START_TEST(test_checkpointer_runs)
{
	struct store *st = open_with("32:1000000");
	int i;

	write_big(st, 200, "ckpt");
	/* it runs on its own thread: wait for it (bounded) */
	for (i = 0; i < 2000 && wal_fig(st, "checkpoints") == 0; i++)
		usleep(5000);
	ck_assert_int_ge(wal_fig(st, "checkpoints"), 1);
	ck_assert_int_gt(wal_fig(st, "checkpointPages"), 0);
	ck_assert_int_eq(wal_fig(st, "writerCheckpoints"), 0);
	/* the next kick is far off (a quarter of the room to the hard
	 * bound): what the round left behind is copied once the writer has
	 * been quiet for a while (bounded wait), and the next commit then
	 * rewinds the WAL */
	for (i = 0; i < 2000 && wal_fig(st, "checkpointPages") <
				     wal_fig(st, "frames"); i++)
		usleep(5000);
	ck_assert_int_eq(wal_fig(st, "checkpointPages"), wal_fig(st, "frames"));
	ck_assert_int_eq(wal_fig(st, "resets"), 0);
	write_big(st, 1, "more");
	ck_assert_int_ge(wal_fig(st, "resets"), 1);
	ck_assert_int_eq(wal_fig(st, "writerCheckpoints"), 0);
	store_close(st);
}
END_TEST

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Past the soft bound the checkpointer copies in batches (a quarter of the
 * room between the bounds), not every few pages: while the writer keeps
 * committing, a page rewritten by many commits is copied once per batch.
 * Between kicks it runs only when the writer left frames behind for
 * STORE_WAL_IDLE_MS (100 ms), so over a burst of ~750 frames under the
 * next kick it runs at most once per 100 ms of the burst (it used to run
 * every quarter of the soft bound: ~60 times here). */
START_TEST(test_checkpointer_batches)
{
	struct store *st = open_with("48:4000");
	json_int_t ck;
	int64_t t0, ms;
	int i;

	write_big(st, 10, "first");		/* ~60 frames: past 48 */
	for (i = 0; i < 2000 && wal_fig(st, "checkpoints") == 0; i++)
		usleep(5000);
	ck = wal_fig(st, "checkpoints");
	ck_assert_int_ge(ck, 1);
	t0 = mono_ms();
	write_big(st, 120, "burst");		/* ~720 more, under 48 + 988 */
	ms = mono_ms() - t0;
	ck_assert_int_lt(wal_fig(st, "pages"), 48 + 988);
	ck_assert_int_le(wal_fig(st, "checkpoints"), ck + 1 + ms / 100);
	/* past the next batch it runs again (bounded wait) */
	write_big(st, 60, "next");
	for (i = 0; i < 2000 && wal_fig(st, "checkpoints") <= ck; i++)
		usleep(5000);
	ck_assert_int_gt(wal_fig(st, "checkpoints"), ck);
	ck_assert_int_eq(wal_fig(st, "writerCheckpoints"), 0);
	store_close(st);
}
END_TEST

/* Past hard - soft the checkpointer syncs the pages its batches copied
 * (SQLite syncs the file only after a checkpoint that copied the whole WAL:
 * under a steady load the writer's forced one, which then wrote them all
 * back), and wakes up every quarter of the soft bound. */
START_TEST(test_checkpointer_syncs_near_hard)
{
	struct store *st = open_with("16:400");	/* batches of 96, 384 */
	int i;

	for (i = 0; i < 200 && wal_fig(st, "pages") < 386; i++) {
		char tag[32];

		snprintf(tag, sizeof(tag), "near%d", i);
		write_big(st, 1, tag);		/* ~6 frames each */
	}
	ck_assert_int_ge(wal_fig(st, "pages"), 386);
	ck_assert_int_lt(wal_fig(st, "pages"), 400);
	for (i = 0; i < 2000 && wal_fig(st, "checkpointSyncs") == 0; i++)
		usleep(5000);
	ck_assert_int_eq(wal_fig(st, "checkpointSyncs"), 1);
	ck_assert_int_eq(wal_fig(st, "writerCheckpoints"), 0);
	/* one sync per WAL: the next rounds of this one do not */
	write_big(st, 1, "near-more");
	for (i = 0; i < 2000 && wal_fig(st, "checkpointPages") <
				     wal_fig(st, "frames"); i++)
		usleep(5000);
	ck_assert_int_eq(wal_fig(st, "checkpointSyncs"), 1);
	store_close(st);
}
END_TEST

/* No checkpointer: past the hard bound the writer checkpoints itself, so
 * the WAL (and its file) stays within the bound plus a few commits (the
 * rewind after it can miss a commit when a checkpoint holds its lock). */
START_TEST(test_hard_bound)
{
	struct store *st = open_with("0:64");

	write_big(st, 300, "hard");
	ck_assert_int_ge(wal_fig(st, "writerCheckpoints"), 1);
	ck_assert_int_ge(wal_fig(st, "resets"), 1);
	ck_assert_int_eq(wal_fig(st, "checkpoints"), 0);
	ck_assert_int_le(wal_fig(st, "pagesMax"), 64 + 32);
	ck_assert_int_le(wal_size(), (64 + 32) * WAL_FRAME + 32);
	store_close(st);
}
END_TEST

/* A reader inside a read transaction pins the WAL: the writer's forced
 * checkpoint cannot copy past it and says so, is tried again only once the
 * WAL grew by a quarter of the bound (not at every commit), and rewinds the
 * WAL once the reader is gone. */
START_TEST(test_hard_bound_reader)
{
	struct store *st = open_with("0:64");
	sqlite3 *rd = NULL;
	sqlite3_stmt *s = NULL;
	json_int_t r0;

	write_big(st, 10, "pre");	/* ~30 frames */
	r0 = wal_fig(st, "resets");
	ck_assert_int_eq(sqlite3_open_v2(dbpath, &rd, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(rd, "SELECT key FROM meta", -1,
					    &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);	/* read tx open */
	write_big(st, 100, "pinned");	/* ~300 more frames */
	ck_assert_int_eq(wal_fig(st, "resets"), r0);
	ck_assert_int_gt(wal_fig(st, "pages"), 64 + 200);
	ck_assert_int_ge(wal_fig(st, "writerCheckpointsBusy"), 1);
	/* one try every 16 pages (~30), not one per commit (100) */
	ck_assert_int_le(wal_fig(st, "writerCheckpointsBusy"), 50);
	sqlite3_finalize(s);
	sqlite3_close(rd);
	write_big(st, 10, "post");
	ck_assert_int_ge(wal_fig(st, "writerCheckpoints"), 1);
	ck_assert_int_gt(wal_fig(st, "resets"), r0);
	ck_assert_int_lt(wal_fig(st, "pages"), 64);
	store_close(st);
}
END_TEST

/* Both at once, with readers: every write committed and readable. */
START_TEST(test_rows_survive_checkpoints)
{
	struct store *st = open_with("16:48");
	char *v = NULL;

	write_big(st, 200, "rows");
	ck_assert_int_eq(store_meta_get(st, "test.rows.0", &v), GW_OK);
	ck_assert_int_eq(strlen(v), VALUE_LEN);
	free(v);
	ck_assert_int_le(wal_fig(st, "pagesMax"), 48 + 32);
	store_close(st);
	st = open_with(NULL);
	ck_assert_int_eq(store_meta_get(st, "test.rows.199", &v), GW_OK);
	ck_assert_int_eq(strlen(v), VALUE_LEN);
	free(v);
	store_close(st);
}
END_TEST

static void add(TCase *tc)
{
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_defaults_and_bad_env);
	tcase_add_test(tc, test_no_automatic_checkpoint);
	tcase_add_test(tc, test_checkpointer_runs);
	tcase_add_test(tc, test_checkpointer_batches);
	tcase_add_test(tc, test_checkpointer_syncs_near_hard);
	tcase_add_test(tc, test_hard_bound);
	tcase_add_test(tc, test_hard_bound_reader);
	tcase_add_test(tc, test_rows_survive_checkpoints);
}

int main(void)
{
	return fixture_main("store-wal", add);
}
