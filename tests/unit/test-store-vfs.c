/* Unit tests for src/store/store-vfs.c: a commit's WAL frames reach the
 * file in one write; what is committed is in the file before COMMIT
 * returns (another connection reads it at once, a process that exits
 * without closing keeps it); transactions bigger than the buffer and than
 * the unix VFS's largest write, rolled back ones and spilled ones leave a
 * database that passes integrity_check. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store-vfs.h"
#include "store-fixture.h"

/* The unix VFS's pwrite, counted (its system call can be swapped). */
static sqlite3_syscall_ptr real_pwrite;
static int pwrites;
static const char *pwrite_name;

static ssize_t counting_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	pwrites++;
	return ((ssize_t(*)(int, const void *, size_t, off_t))real_pwrite)(
		fd, buf, n, off);
}

static void count_pwrites(int on)
{
	sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
	static const char *names[] = {"pwrite64", "pwrite"};

	ck_assert_ptr_nonnull(unix_vfs);
	if (!pwrite_name)
		for (size_t i = 0; i < 2 && !pwrite_name; i++)
			if (unix_vfs->xGetSystemCall(unix_vfs, names[i]))
				pwrite_name = names[i];
	ck_assert_ptr_nonnull(pwrite_name);
	if (on) {
		real_pwrite = unix_vfs->xGetSystemCall(unix_vfs, pwrite_name);
		unix_vfs->xSetSystemCall(unix_vfs, pwrite_name,
					 (sqlite3_syscall_ptr)counting_pwrite);
	} else {
		unix_vfs->xSetSystemCall(unix_vfs, pwrite_name, real_pwrite);
	}
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK,
		      "%s: %s", sql, err ? err : "?");
}

static void integrity_ok(sqlite3 *db)
{
	sqlite3_stmt *s = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
					    &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "ok");
	sqlite3_finalize(s);
}

/* A connection as the writer's: the gathering VFS, WAL, NORMAL. */
static sqlite3 *open_writer(void)
{
	sqlite3 *db = NULL;

	char dir[600];

	ck_assert_ptr_nonnull(store_vfs_name());
	snprintf(dir, sizeof(dir), "%s/state", tmpdir);
	mkdir(dir, 0700);
	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE |
					 SQLITE_OPEN_CREATE,
					 store_vfs_name()), SQLITE_OK);
	exec_ok(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		    "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, "
		    "v BLOB)");
	return db;
}

static sqlite3 *open_plain(void)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE,
					 NULL), SQLITE_OK);
	return db;
}

START_TEST(test_one_write_per_commit)
{
	sqlite3 *db = open_writer();
	int first;

	exec_ok(db, "INSERT INTO t(v) VALUES (zeroblob(100))");
	/* ~10 pages in one transaction: 20 writes without the buffer. */
	count_pwrites(1);
	pwrites = 0;
	exec_ok(db, "INSERT INTO t(v) SELECT randomblob(3000) FROM "
		    "(SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 "
		    "UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION "
		    "SELECT 8 UNION SELECT 9 UNION SELECT 10)");
	first = pwrites;
	pwrites = 0;
	exec_ok(db, "UPDATE t SET v = randomblob(3000) WHERE id > 1");
	count_pwrites(0);
	ck_assert_int_eq(first, 1);
	ck_assert_int_eq(pwrites, 1);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 11);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_reader_sees_each_commit)
{
	sqlite3 *w = open_writer(), *r = open_plain();
	char sql[128];

	/* Checkpoints (and WAL rewinds) on the way. */
	exec_ok(w, "PRAGMA wal_autocheckpoint=20");
	for (int i = 1; i <= 300; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO t(v) VALUES "
			 "(randomblob(%d))", 100 + (i * 37) % 5000);
		exec_ok(w, sql);
		ck_assert_int_eq(query_int(r, "SELECT count(*) FROM t"), i);
		ck_assert_int_eq(query_int(r, "SELECT max(id) FROM t"), i);
	}
	integrity_ok(r);
	sqlite3_close(r);
	sqlite3_close(w);
}
END_TEST

/* Bigger than the buffer (120 KiB) and than the unix VFS's largest write
 * (128 KiB - 1): 2 MB in one transaction. */
START_TEST(test_big_transaction)
{
	sqlite3 *w = open_writer(), *r;

	exec_ok(w, "BEGIN; INSERT INTO t(v) SELECT randomblob(200000) FROM "
		   "(SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 "
		   "UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION "
		   "SELECT 8 UNION SELECT 9 UNION SELECT 10); COMMIT");
	r = open_plain();
	ck_assert_int_eq(query_int(r, "SELECT sum(length(v)) FROM t"),
			 2000000);
	integrity_ok(r);
	sqlite3_close(r);
	sqlite3_close(w);
}
END_TEST

/* A transaction that spilled frames to the WAL (a tiny page cache) and
 * rolled back, then one that commits: only the second is seen. */
START_TEST(test_rollback_then_commit)
{
	sqlite3 *w = open_writer(), *r = open_plain();

	exec_ok(w, "PRAGMA cache_size=2");
	exec_ok(w, "BEGIN; INSERT INTO t(v) SELECT randomblob(5000) FROM "
		   "(WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
		   "FROM n WHERE x < 100) SELECT x FROM n); ROLLBACK");
	ck_assert_int_eq(query_int(r, "SELECT count(*) FROM t"), 0);
	exec_ok(w, "INSERT INTO t(v) VALUES (randomblob(5000))");
	exec_ok(w, "BEGIN; INSERT INTO t(v) SELECT randomblob(5000) FROM "
		   "(WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
		   "FROM n WHERE x < 100) SELECT x FROM n); COMMIT");
	ck_assert_int_eq(query_int(r, "SELECT count(*) FROM t"), 101);
	integrity_ok(r);
	sqlite3_close(r);
	sqlite3_close(w);
}
END_TEST

/* A process that commits and exits without closing (as under kill -9
 * right after an acknowledgement) leaves every committed row. */
START_TEST(test_exit_without_close)
{
	sqlite3 *r;
	pid_t pid;
	int status;

	sqlite3_close(open_writer());
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sqlite3 *w = NULL;
		char sql[96];

		if (sqlite3_open_v2(dbpath, &w, SQLITE_OPEN_READWRITE,
				    store_vfs_name()) != SQLITE_OK)
			_exit(2);
		for (int i = 0; i < 50; i++) {
			snprintf(sql, sizeof(sql), "INSERT INTO t(v) VALUES "
				 "(randomblob(%d))", 1000 + i * 100);
			if (sqlite3_exec(w, sql, NULL, NULL, NULL) !=
			    SQLITE_OK)
				_exit(3);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	r = open_plain();
	ck_assert_int_eq(query_int(r, "SELECT count(*) FROM t"), 50);
	integrity_ok(r);
	sqlite3_close(r);
}
END_TEST

static int vfs_of_writer(sqlite3 *db, void *arg)
{
	sqlite3_vfs *vfs = NULL;

	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs) !=
	    SQLITE_OK || !vfs)
		return GW_ESTORE;
	snprintf(arg, 64, "%s", vfs->zName);
	return GW_OK;
}

/* The store's writer connection is the one that uses it. */
START_TEST(test_store_writer_uses_it)
{
	struct store *st = open_ok();
	char name[64] = "";

	ck_assert_int_eq(store_write_sync(st, vfs_of_writer, name, 0), GW_OK);
	ck_assert_str_eq(name, store_vfs_name());
	ck_assert_int_eq(store_meta_set(st, "test.vfs", "1"), GW_OK);
	store_close(st);
}
END_TEST

static void add(TCase *tc)
{
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_one_write_per_commit);
	tcase_add_test(tc, test_reader_sees_each_commit);
	tcase_add_test(tc, test_big_transaction);
	tcase_add_test(tc, test_rollback_then_commit);
	tcase_add_test(tc, test_exit_without_close);
	tcase_add_test(tc, test_store_writer_uses_it);
}

int main(void)
{
	return fixture_main("store-vfs", add);
}
