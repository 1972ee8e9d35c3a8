/* Unit tests for src/store/store-usage.c and store-nodes.c: usage rows per
 * day/session/model/role from the transcript, session counts and the
 * session total, and the node surface rows. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store-nodes.h"
#include "store/store-usage.h"
#include "store-fixture.h"

#define DAY 86400000LL
/* 2026-01-02T00:00:00Z */
#define T0 1767312000000LL

static int fill_fn(sqlite3 *db, void *arg)
{
	static const char sql[] =
		"INSERT INTO sessions(key, session_id, agent_id, created_at,"
		" updated_at) VALUES"
		" ('agent:main:a', 's1', 'main', 1, 3),"
		" ('agent:main:b', 's2', 'main', 1, 2),"
		" ('agent:helper:c', 's3', 'helper', 1, 1);"
		"INSERT INTO transcript(session_key, session_id, seq,"
		" message_id, role, text, message, status, input_tokens,"
		" output_tokens, model, created_at) VALUES"
		" ('agent:main:a', 's1', 1, 'm1', 'user', 'q', '{}', NULL,"
		"  NULL, NULL, NULL, %lld),"
		" ('agent:main:a', 's1', 2, 'm2', 'assistant', 'a', '{}', 'ok',"
		"  10, 5, 'fake/m', %lld),"
		" ('agent:main:a', 's1', 3, 'm3', 'assistant', 'a', '{}',"
		"  'error', NULL, NULL, 'fake/m', %lld),"
		" ('agent:main:b', 's2', 1, 'm4', 'assistant', 'a', '{}', 'ok',"
		"  7, 3, 'fake/m', %lld),"
		" ('agent:helper:c', 's3', 1, 'm5', 'assistant', 'a', '{}',"
		"  'ok', 1, 1, 'other/x', %lld);";
	char *q = sqlite3_mprintf(sql, T0 + 10, T0 + 20, T0 + 30, T0 + DAY,
				  T0 + 5);
	int rc = sqlite3_exec(db, q, NULL, NULL, NULL);

	(void)arg;
	sqlite3_free(q);
	return rc == SQLITE_OK ? GW_OK : GW_ESTORE;
}

static json_t *row_of(json_t *rows, const char *key, const char *role,
		      const char *status)
{
	json_t *r;
	size_t i;

	json_array_foreach(rows, i, r)
		if (strcmp(json_string_value(json_object_get(r, "sessionKey")),
			   key) == 0 &&
		    strcmp(json_string_value(json_object_get(r, "role")),
			   role) == 0 &&
		    strcmp(json_string_value(json_object_get(r, "status")),
			   status) == 0)
			return r;
	return NULL;
}

/* The query plan of the reader's cached statement whose text has text,
 * its rows' details joined ("" when none is cached). */
static void plan_of(sqlite3 *db, const char *text, char *out, size_t size)
{
	sqlite3_stmt *s = NULL, *e = NULL;
	char sql[512];

	out[0] = '\0';
	while ((s = sqlite3_next_stmt(db, s)))
		if (strstr(sqlite3_sql(s), text))
			break;
	if (!s)
		return;
	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", sqlite3_sql(s));
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &e, NULL), SQLITE_OK);
	while (sqlite3_step(e) == SQLITE_ROW) {
		strncat(out, (const char *)sqlite3_column_text(e, 3),
			size - strlen(out) - 2);
		strcat(out, ";");
	}
	sqlite3_finalize(e);
}

START_TEST(test_usage_rows)
{
	struct store *st = open_ok();
	json_t *rows = NULL, *r, *counts = NULL, *ss = NULL;
	int64_t total = -1;
	char plan[512];

	ck_assert_int_eq(store_write_sync(st, fill_fn, NULL, 0), GW_OK);
	/* Everything in two days. */
	ck_assert_int_eq(store_usage_rows(st, T0, T0 + 2 * DAY, NULL, NULL,
					  &rows), GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 5);
	r = row_of(rows, "agent:main:a", "assistant", "ok");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(json_string_value(json_object_get(r, "day")),
			 "2026-01-02");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "input")), 10);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "output")), 5);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "metered")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(r, "model")),
			 "fake/m");
	r = row_of(rows, "agent:main:a", "assistant", "error");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "metered")), 0);
	r = row_of(rows, "agent:main:b", "assistant", "ok");
	ck_assert_str_eq(json_string_value(json_object_get(r, "day")),
			 "2026-01-03");
	json_decref(rows);
	/* One day, one agent; then one session. */
	ck_assert_int_eq(store_usage_rows(st, T0, T0 + DAY, "main", NULL,
					  &rows), GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 3);
	json_decref(rows);
	ck_assert_int_eq(store_usage_rows(st, T0, T0 + 2 * DAY, NULL,
					  "agent:main:b", &rows), GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 1);
	json_decref(rows);
	ck_assert_int_eq(store_usage_session_counts(st, &counts), GW_OK);
	ck_assert_int_eq(json_integer_value(json_object_get(counts, "main")),
			 2);
	ck_assert_int_eq(json_integer_value(json_object_get(counts,
							    "helper")), 1);
	json_decref(counts);
	/* The total (health, the periodic refresh) counts an index's
	 * entries, never reading the rows as the counts by agent do. */
	ck_assert_int_eq(store_usage_session_total(st, &total), GW_OK);
	ck_assert_int_eq(total, 3);
	plan_of(store_reader(st), "count(*) FROM sessions", plan,
		sizeof(plan));
	ck_assert_msg(strstr(plan, "COVERING INDEX") &&
		      !strstr(plan, "TEMP B-TREE"), "plan: %s", plan);
	ck_assert_int_eq(store_usage_sessions(st, "main", NULL, 1, &ss),
			 GW_OK);
	ck_assert_uint_eq(json_array_size(ss), 1);
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(ss, 0), "key")), "agent:main:a");
	json_decref(ss);
	store_close(st);
}
END_TEST

START_TEST(test_node_rows)
{
	struct store *st = open_ok();
	json_t *s = json_pack("{s:s,s:[s]}", "nodeId", "n1", "commands", "x");
	json_t *q = json_pack("{s:s,s:s}", "nodeId", "n1", "requestId", "r1");
	json_t *rows = NULL, *got = NULL;

	ck_assert_int_eq(store_nodes_get(st, STORE_NODES_SURFACE, "n1", &got),
			 GW_ENOTFOUND);
	ck_assert_int_eq(store_nodes_write(st, "n1", NULL, 1, q, 0), GW_OK);
	ck_assert_int_eq(store_nodes_list(st, STORE_NODES_REQUEST, &rows),
			 GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 1);
	json_decref(rows);
	ck_assert_int_eq(store_nodes_list(st, STORE_NODES_SURFACE, &rows),
			 GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 0);
	json_decref(rows);
	/* Approve: the surface in, the request out, together. */
	ck_assert_int_eq(store_nodes_write(st, "n1", s, 0, NULL, 0), GW_OK);
	ck_assert_int_eq(store_nodes_get(st, STORE_NODES_SURFACE, "n1", &got),
			 GW_OK);
	ck_assert(json_equal(got, s));
	json_decref(got);
	ck_assert_int_eq(store_nodes_get(st, STORE_NODES_REQUEST, "n1", &got),
			 GW_ENOTFOUND);
	/* Other meta keys are not node rows. */
	ck_assert_int_eq(store_meta_set(st, "node.surfacez", "{}"), GW_OK);
	ck_assert_int_eq(store_nodes_list(st, STORE_NODES_SURFACE, &rows),
			 GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 1);
	json_decref(rows);
	json_decref(s);
	json_decref(q);
	store_close(st);
}
END_TEST

/* Reads reuse one prepared statement per connection (store_stmt). */
START_TEST(test_reads_cached)
{
	struct store *st = open_ok();
	json_t *rows;
	int i;

	for (i = 0; i < 3; i++) {
		rows = NULL;
		ck_assert_int_eq(store_nodes_list(st, STORE_NODES_SURFACE,
						  &rows), GW_OK);
		json_decref(rows);
		rows = NULL;
		ck_assert_int_eq(store_usage_session_counts(st, &rows), GW_OK);
		json_decref(rows);
	}
	ck_assert_int_eq(stmts_of(store_reader(st), "FROM meta WHERE key >"),
			 1);
	ck_assert_int_eq(stmts_of(store_reader(st), "FROM sessions"), 1);
	store_close(st);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, test_usage_rows);
	tcase_add_test(tc, test_node_rows);
	tcase_add_test(tc, test_reads_cached);
}

int main(void)
{
	return fixture_main("store-usage", add_tests);
}
