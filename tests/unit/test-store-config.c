/* Unit tests for src/store/store-config.c (config versions: insert with
 * retention, history, restorable texts) and for store-secrets.c's walk of
 * an OpenClaw secret store. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-config.h"
#include "store/store.h"
#include "store-fixture.h"

static int64_t add(struct store *st, const char *hash, const char *outcome,
		   const char *text, int64_t keep)
{
	struct store_config_row row = {
		.hash = hash, .source = "rpc", .actor = "tester",
		.method = "config.set", .outcome = outcome, .text = text,
	};
	int64_t id = -1;

	ck_assert_int_eq(store_config_add(st, &row, keep, &id), GW_OK);
	ck_assert_int_gt(id, 0);
	return id;
}

static json_int_t int_of(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

START_TEST(test_add_history)
{
	struct store *st = open_ok();
	struct store_config_row row = {
		.hash = "h1", .parent = 0, .source = "startup",
		.actor = "gateway", .outcome = "started", .text = "{\"a\":1}",
	};
	json_t *rows = NULL, *o;
	int64_t id1 = 0, id2 = 0;

	ck_assert_int_eq(store_config_add(st, &row, 0, &id1), GW_OK);
	row = (struct store_config_row){
		.hash = "h2", .parent = id1, .source = "rollback",
		.actor = "op", .method = "config.rollback",
		.outcome = "applied", .reason = "why", .text = "{\"a\":2}",
		.paths = "[{\"path\":\"a\",\"action\":\"hot\"}]",
		.restored_from = id1,
	};
	ck_assert_int_eq(store_config_add(st, &row, 0, &id2), GW_OK);
	ck_assert_int_gt(id2, id1);
	ck_assert_int_eq(store_config_history(st, 10, &rows), GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 2);
	/* newest first, with every field */
	o = json_array_get(rows, 0);
	ck_assert_int_eq(int_of(o, "id"), id2);
	ck_assert_int_gt(int_of(o, "ts"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(o, "hash")), "h2");
	ck_assert_int_eq(int_of(o, "parent"), id1);
	ck_assert_str_eq(json_string_value(json_object_get(o, "source")),
			 "rollback");
	ck_assert_str_eq(json_string_value(json_object_get(o, "actor")), "op");
	ck_assert_str_eq(json_string_value(json_object_get(o, "method")),
			 "config.rollback");
	ck_assert_str_eq(json_string_value(json_object_get(o, "outcome")),
			 "applied");
	ck_assert_str_eq(json_string_value(json_object_get(o, "reason")),
			 "why");
	ck_assert_int_eq(int_of(o, "restoredFrom"), id1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
		json_object_get(o, "changes"), 0), "path")), "a");
	/* absent parts are absent, paths default to [] */
	o = json_array_get(rows, 1);
	ck_assert_ptr_null(json_object_get(o, "parent"));
	ck_assert_ptr_null(json_object_get(o, "method"));
	ck_assert_ptr_null(json_object_get(o, "reason"));
	ck_assert_ptr_null(json_object_get(o, "restoredFrom"));
	ck_assert_uint_eq(json_array_size(json_object_get(o, "changes")), 0);
	ck_assert(json_is_array(json_object_get(o, "changes")));
	json_decref(rows);
	/* limit */
	ck_assert_int_eq(store_config_history(st, 1, &rows), GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 1);
	json_decref(rows);
	store_close(st);
}
END_TEST

START_TEST(test_retention)
{
	struct store *st = open_ok();
	json_t *rows = NULL;
	int64_t last = 0;
	int i;

	for (i = 0; i < 5; i++)
		last = add(st, "h", "applied", "{}", 0);
	ck_assert_int_eq(store_config_history(st, 100, &rows), GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 5);
	json_decref(rows);
	/* keep 2: the new row and the one before it */
	last = add(st, "h", "applied", "{}", 2);
	ck_assert_int_eq(store_config_history(st, 100, &rows), GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 2);
	ck_assert_int_eq(int_of(json_array_get(rows, 0), "id"), last);
	ck_assert_int_eq(int_of(json_array_get(rows, 1), "id"), last - 1);
	json_decref(rows);
	store_close(st);
}
END_TEST

START_TEST(test_text)
{
	struct store *st = open_ok();
	int64_t a, b, rej, none, c, out = 0;
	char *text = NULL;

	a = add(st, "ha", "started", "{\"v\":\"a\"}", 0);
	b = add(st, "hb", "applied", "{\"v\":\"b\"}", 0);
	rej = add(st, "hx", "rejected", "{\"v\":\"x\"}", 0);
	none = add(st, "hn", "applied", NULL, 0);
	c = add(st, "hb", "applied", "{\"v\":\"c\"}", 0);
	/* by id */
	ck_assert_int_eq(store_config_text(st, a, 0, NULL, &text, &out),
			 GW_OK);
	ck_assert_str_eq(text, "{\"v\":\"a\"}");
	ck_assert_int_eq(out, a);
	free(text);
	/* rejected rows and rows without text cannot be restored */
	ck_assert_int_eq(store_config_text(st, rej, 0, NULL, &text, &out),
			 GW_ENOTFOUND);
	ck_assert_ptr_null(text);
	ck_assert_int_eq(store_config_text(st, none, 0, NULL, &text, &out),
			 GW_ENOTFOUND);
	ck_assert_int_eq(store_config_text(st, c + 100, 0, NULL, &text, &out),
			 GW_ENOTFOUND);
	/* the previous version: below c, skipping rows of c's hash (b),
	 * rejected (rej) and text-less (none) ones */
	ck_assert_int_eq(store_config_text(st, 0, c, "hb", &text, &out),
			 GW_OK);
	ck_assert_int_eq(out, a);
	free(text);
	ck_assert_int_eq(store_config_text(st, 0, INT64_MAX, "hz", &text,
					   &out), GW_OK);
	ck_assert_int_eq(out, c);
	free(text);
	ck_assert_int_eq(store_config_text(st, 0, a, "hz", &text, &out),
			 GW_ENOTFOUND);
	(void)b;
	store_close(st);
}
END_TEST

/* A row the schema refuses: GW_ESTORE, nothing written. */
START_TEST(test_add_refused)
{
	struct store *st = open_ok();
	struct store_config_row row = {
		.hash = "h", .source = "nosuch", .outcome = "applied",
	};
	json_t *rows = NULL;
	int64_t id = -1;

	ck_assert_int_eq(store_config_add(st, &row, 0, &id), GW_ESTORE);
	ck_assert_int_eq(id, 0);
	ck_assert_int_eq(store_config_history(st, 10, &rows), GW_OK);
	ck_assert_uint_eq(json_array_size(rows), 0);
	json_decref(rows);
	store_close(st);
}
END_TEST

/* The reader keeps one prepared history statement across calls. */
START_TEST(test_history_cached)
{
	struct store *st = open_ok();
	json_t *rows;
	int i;

	add(st, "h", "applied", "{}", 0);
	for (i = 0; i < 4; i++) {
		rows = NULL;
		ck_assert_int_eq(store_config_history(st, 10, &rows), GW_OK);
		json_decref(rows);
	}
	ck_assert_int_eq(stmts_of(store_reader(st), "restored_from FROM"), 1);
	store_close(st);
}
END_TEST

/* ---- store-secrets.c: an OpenClaw secret store, read once -------------- */

struct imp {
	json_t *names;
	int stop_after;
};

static int imp_row(const char *name, const char *value, size_t len,
		   const char *kind, void *arg)
{
	struct imp *im = arg;

	ck_assert_uint_eq(strlen(value), len);
	json_array_append_new(im->names, json_pack("[s,s,s]", name, value,
						   kind));
	return im->stop_after &&
	       json_array_size(im->names) >= (size_t)im->stop_after;
}

START_TEST(test_openclaw_each)
{
	char path[600], why[300] = "";
	struct imp im = { json_array(), 0 };
	sqlite3 *raw = NULL, *db = NULL;

	snprintf(path, sizeof(path), "%s/openclaw.sqlite", tmpdir);
	ck_assert_int_eq(sqlite3_open(path, &raw), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(raw,
		"CREATE TABLE secret_store_entries(scope_kind TEXT, "
		"scope_id TEXT, name TEXT, value TEXT, kind TEXT, "
		"deleted_at_ms INTEGER);"
		"INSERT INTO secret_store_entries VALUES"
		" ('team', 't1', 'B_KEY', 'vb', 'env', NULL),"
		" ('team', '', 'A_KEY', 'va', 'secret', NULL),"
		" ('team', '', 'GONE', 'vg', 'secret', 5),"
		" ('user', 'u', 'USER_KEY', 'vu', 'secret', NULL);",
		NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
	ck_assert_int_eq(store_secrets_open_ro(path, &db), GW_OK);
	ck_assert_int_eq(store_secrets_openclaw_each(db, imp_row, &im, why,
						     sizeof(why)), GW_OK);
	/* team rows of any scope id, live, by name */
	ck_assert_uint_eq(json_array_size(im.names), 2);
	ck_assert_str_eq(json_string_value(json_array_get(json_array_get(
		im.names, 0), 0)), "A_KEY");
	ck_assert_str_eq(json_string_value(json_array_get(json_array_get(
		im.names, 1), 2)), "env");
	json_array_clear(im.names);
	im.stop_after = 1;
	ck_assert_int_eq(store_secrets_openclaw_each(db, imp_row, &im, why,
						     sizeof(why)), GW_OK);
	ck_assert_uint_eq(json_array_size(im.names), 1);
	store_secrets_close_ro(db);
	/* a database without the table */
	snprintf(path, sizeof(path), "%s/empty.sqlite", tmpdir);
	ck_assert_int_eq(sqlite3_open(path, &raw), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(raw, "CREATE TABLE t(x)", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(raw);
	ck_assert_int_eq(store_secrets_open_ro(path, &db), GW_OK);
	ck_assert_int_eq(store_secrets_openclaw_each(db, imp_row, &im, why,
						     sizeof(why)),
			 GW_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(why, "secret_store_entries"));
	store_secrets_close_ro(db);
	json_decref(im.names);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, test_add_history);
	tcase_add_test(tc, test_retention);
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_add_refused);
	tcase_add_test(tc, test_history_cached);
	tcase_add_test(tc, test_openclaw_each);
}

int main(void)
{
	return fixture_main("store-config", add_tests);
}
