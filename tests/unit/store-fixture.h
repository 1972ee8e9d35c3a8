/* The fixture of the store's unit tests that open a fresh database: a
 * temporary state directory per test (removed afterwards), open_ok(), the
 * count of a connection's prepared statements, and main()'s runner.
 * Include once per test program, after check.h. */
#pragma once

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/log.h"
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
	snprintf(dbpath, sizeof(dbpath), "%s/state/clawgate.sqlite", tmpdir);
}

static void teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_ok(void)
{
	struct store *st = NULL;
	char *msg = NULL;

	ck_assert_int_eq(store_open(dbpath, &st, &msg), GW_OK);
	ck_assert_ptr_null(msg);
	return st;
}

/* The integer in the first column of sql's first row (asserted). */
static inline int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Prepared statements of db whose SQL contains text. */
static inline int stmts_of(sqlite3 *db, const char *text)
{
	sqlite3_stmt *s = NULL;
	int n = 0;

	while ((s = sqlite3_next_stmt(db, s)))
		if (strstr(sqlite3_sql(s), text))
			n++;
	return n;
}

struct stmts_job {
	const char *text;
	int n;
};

static inline int stmts_job_fn(sqlite3 *db, void *arg)
{
	struct stmts_job *j = arg;

	j->n = stmts_of(db, j->text);
	return GW_OK;
}

/* The same on the writer's connection (counted inside a write job). */
static inline int writer_stmts(struct store *st, const char *text)
{
	struct stmts_job j = { text, -1 };

	ck_assert_int_eq(store_write_sync(st, stmts_job_fn, &j, 0), GW_OK);
	return j.n;
}

/* main(): the tests add() puts in one case, with this fixture. */
static inline int fixture_main(const char *name, void (*add)(TCase *tc))
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create(name);
	SRunner *sr;
	int failed;

	log_set_console(0);
	tcase_add_checked_fixture(tc, setup, teardown);
	add(tc);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
