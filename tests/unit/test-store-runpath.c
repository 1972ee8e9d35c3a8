/* Unit tests for the store's run path (issue 11): migration 0008 (sessions
 * WITHOUT ROWID, no unique index on transcript.message_id) keeps every row
 * of a version 7 database, and the JSON writer's integers are jansson's. */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store-sessions.h"
#include "store-fixture.h"

static int exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
	sqlite3_free(err);
	return rc;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static char *query_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	char *v = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		v = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return v;
}

/* A database at schema version 7 with a few sessions and messages. */
static void make_v7(void)
{
	char dir[600];
	sqlite3 *db = NULL;

	snprintf(dir, sizeof(dir), "%s/state", tmpdir);
	mkdir(dir, 0700);
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	exec_ok(db, "PRAGMA journal_mode=WAL");
	for (int i = 0; i < store_migrations_count; i++) {
		if (store_migrations[i].version > 7)
			break;
		exec_ok(db, store_migrations[i].sql);
	}
	exec_ok(db, "PRAGMA user_version=7");
	exec_ok(db,
		"INSERT INTO sessions(key, session_id, agent_id, channel, "
		"label, settings, status, last_run_id, model, input_tokens, "
		"output_tokens, message_count, last_preview, created_at, "
		"updated_at) VALUES "
		"('agent:main:b', 's-b', 'main', 'webchat', 'B', "
		" '{\"model\":\"x/y\"}', 'done', 'r1', 'x/y', 9, 5, 2, 'hi', "
		" 10, 20),"
		"('agent:main:a', 's-a', 'main', NULL, NULL, '{}', NULL, NULL,"
		" NULL, 0, 0, 0, NULL, 30, 40);"
		"INSERT INTO transcript(id, session_key, session_id, seq, "
		"message_id, role, text, message, run_id, status, "
		"input_tokens, output_tokens, model, created_at) VALUES "
		"(7, 'agent:main:b', 's-b', 1, 'm1', 'user', 'q', "
		" '{\"role\":\"user\"}', 'r1', NULL, NULL, NULL, NULL, 11),"
		"(9, 'agent:main:b', 's-b', 2, 'm2', 'assistant', 'hi', "
		" '{\"role\":\"assistant\"}', 'r1', 'ok', 9, 5, 'x/y', 12);");
	sqlite3_close(db);
}

START_TEST(test_migration_0008_keeps_rows)
{
	struct store *st;
	sqlite3 *db;
	char *t;
	int v = 0;

	make_v7();
	st = open_ok();
	ck_assert_int_eq(store_schema_version(st, &v), GW_OK);
	ck_assert_int_ge(v, 8);
	db = store_reader(st);
	ck_assert_ptr_nonnull(db);
	/* every column of every row */
	t = query_text(db, "SELECT group_concat(key || '|' || session_id || "
		       "'|' || agent_id || '|' || coalesce(channel, '-') || "
		       "'|' || coalesce(label, '-') || '|' || settings || '|' "
		       "|| coalesce(status, '-') || '|' || coalesce(model, "
		       "'-') || '|' || input_tokens || '|' || output_tokens || "
		       "'|' || message_count || '|' || coalesce(last_preview, "
		       "'-') || '|' || created_at || '|' || updated_at, ';') "
		       "FROM (SELECT * FROM sessions ORDER BY key)");
	ck_assert_str_eq(t, "agent:main:a|s-a|main|-|-|{}|-|-|0|0|0|-|30|40;"
			 "agent:main:b|s-b|main|webchat|B|{\"model\":\"x/y\"}|"
			 "done|x/y|9|5|2|hi|10|20");
	free(t);
	t = query_text(db, "SELECT group_concat(id || '|' || seq || '|' || "
		       "message_id || '|' || role || '|' || text || '|' || "
		       "message || '|' || coalesce(status, '-') || '|' || "
		       "coalesce(input_tokens, '-') || '|' || created_at, ';') "
		       "FROM (SELECT * FROM transcript ORDER BY id)");
	ck_assert_str_eq(t, "7|1|m1|user|q|{\"role\":\"user\"}|-|-|11;"
			 "9|2|m2|assistant|hi|{\"role\":\"assistant\"}|ok|9|12");
	free(t);
	/* the b-trees: sessions is its key's b-tree, transcript's
	 * message_id has no index; the others stay */
	t = query_text(db, "SELECT sql FROM sqlite_schema WHERE name = "
		       "'sessions'");
	ck_assert_ptr_nonnull(strstr(t, "WITHOUT ROWID"));
	free(t);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_schema "
				   "WHERE type = 'index' AND tbl_name IN "
				   "('sessions', 'transcript')"), 2);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_schema "
				   "WHERE name IN ('sessions_by_updated', "
				   "'transcript_by_session')"), 2);
	store_close(st);
}
END_TEST

static int bad_json_fn(sqlite3 *db, void *arg)
{
	(void)arg;
	return sqlite3_exec(db, "UPDATE sessions SET settings = '{' WHERE "
			    "key = 'agent:main:a'", NULL, NULL, NULL) ==
			       SQLITE_OK ? GW_OK : GW_ESTORE;
}

START_TEST(test_migration_0008_checks_stay)
{
	struct store *st;

	make_v7();
	st = open_ok();
	ck_assert_int_eq(store_write_sync(st, bad_json_fn, NULL, 0),
			 GW_ESTORE);
	store_close(st);
}
END_TEST

START_TEST(test_json_integers_as_jansson)
{
	static const json_int_t vals[] = {
		0, 1, -1, 9, 10, -10, 1796536106206LL, INT64_MAX, INT64_MIN,
		INT64_MIN + 1, 1000000000000000000LL,
	};
	struct store_json_buf b = {0};
	char *mine, *ref;
	json_t *arr = json_array();

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char want[32];

		json_array_append_new(arr, json_integer(vals[i]));
		store_json_int(&b, vals[i]);
		mine = store_json_done(&b, NULL);
		snprintf(want, sizeof(want), "%lld", (long long)vals[i]);
		ck_assert_str_eq(mine, want);
		free(mine);
	}
	mine = store_json_dump(arr, NULL);
	ref = json_dumps(arr, JSON_COMPACT);
	ck_assert_str_eq(mine, ref);
	free(mine);
	free(ref);
	json_decref(arr);
}
END_TEST

static void add(TCase *tc)
{
	tcase_add_test(tc, test_migration_0008_keeps_rows);
	tcase_add_test(tc, test_migration_0008_checks_stay);
	tcase_add_test(tc, test_json_integers_as_jansson);
}

int main(void)
{
	return fixture_main("store-runpath", add);
}
