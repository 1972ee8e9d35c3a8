/* Unit tests for the store's run path (issue 11): migration 0008 (sessions
 * WITHOUT ROWID, no unique index on transcript.message_id) keeps every row
 * of a version 7 database, migration 0009 (idempotency as a rowid table,
 * no expiry index) every row of a version 8 one, the idempotency sweep
 * without that index, and the JSON writer's integers are jansson's. */
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

/* A database at schema version v (open; the caller adds rows). */
static sqlite3 *make_at(int v)
{
	char dir[600], uv[64];
	sqlite3 *db = NULL;

	snprintf(dir, sizeof(dir), "%s/state", tmpdir);
	mkdir(dir, 0700);
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	exec_ok(db, "PRAGMA journal_mode=WAL");
	for (int i = 0; i < store_migrations_count; i++) {
		if (store_migrations[i].version > v)
			break;
		exec_ok(db, store_migrations[i].sql);
	}
	snprintf(uv, sizeof(uv), "PRAGMA user_version=%d", v);
	exec_ok(db, uv);
	return db;
}

/* A database at schema version 7 with a few sessions and messages. */
static void make_v7(void)
{
	sqlite3 *db = make_at(7);

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

/* A database at schema version 8 with idempotency rows (a finished run, a
 * running one, an expired one), inserted out of creation order. */
static void make_v8(void)
{
	sqlite3 *db = make_at(8);

	exec_ok(db,
		"INSERT INTO idempotency(run_id, session_key, status, result, "
		"created_at, ended_at, expires_at) VALUES "
		"('r-b', 'agent:main:b', 'ok', '{\"runId\":\"r-b\"}', 20, 25, "
		" 9000000000000),"
		"('r-a', 'agent:main:a', 'running', NULL, 10, NULL, "
		" 8000000000000),"
		"('r-c', 'agent:main:c', 'error', '{\"runId\":\"r-c\"}', 30, "
		" 31, 5);");
	sqlite3_close(db);
}

static int bad_idem_fn(sqlite3 *db, void *arg)
{
	return sqlite3_exec(db, (const char *)arg, NULL, NULL, NULL) ==
			       SQLITE_OK ? GW_OK : GW_ESTORE;
}

/* 0009 rebuilds idempotency as a rowid table in creation order, run_id
 * UNIQUE, no expiry index: every row and column stays, and so do the
 * uniqueness of run_id and the result CHECK. */
START_TEST(test_migration_0009_keeps_rows)
{
	struct store *st;
	sqlite3 *db;
	char *t;
	int v = 0;

	make_v8();
	st = open_ok();
	ck_assert_int_eq(store_schema_version(st, &v), GW_OK);
	ck_assert_int_ge(v, 9);
	db = store_reader(st);
	ck_assert_ptr_nonnull(db);
	t = query_text(db, "SELECT group_concat(id || '|' || run_id || '|' || "
		       "session_key || '|' || status || '|' || coalesce(result, "
		       "'-') || '|' || created_at || '|' || coalesce(ended_at, "
		       "'-') || '|' || expires_at, ';') FROM (SELECT * FROM "
		       "idempotency ORDER BY id)");
	ck_assert_str_eq(t, "1|r-a|agent:main:a|running|-|10|-|8000000000000;"
			 "2|r-b|agent:main:b|ok|{\"runId\":\"r-b\"}|20|25|"
			 "9000000000000;"
			 "3|r-c|agent:main:c|error|{\"runId\":\"r-c\"}|30|31|5");
	free(t);
	/* a run id's row is found through its index, not a scan */
	{
		sqlite3_stmt *q = NULL;

		ck_assert_int_eq(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN "
			"SELECT status FROM idempotency WHERE run_id = 'r-b'",
			-1, &q, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		ck_assert_ptr_nonnull(strstr((const char *)
			sqlite3_column_text(q, 3), "USING INDEX"));
		sqlite3_finalize(q);
	}
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_schema "
				   "WHERE type = 'index' AND tbl_name = "
				   "'idempotency' AND sql LIKE '%expires_at%'"),
			 0);
	ck_assert_int_eq(store_write_sync(st, bad_idem_fn, (void *)
		"INSERT INTO idempotency(run_id, session_key, status, "
		"created_at, expires_at) VALUES('r-a', 'k', 'ok', 1, 2)", 0),
			 GW_ESTORE);
	ck_assert_int_eq(store_write_sync(st, bad_idem_fn, (void *)
		"UPDATE idempotency SET result = '{' WHERE run_id = 'r-b'", 0),
			 GW_ESTORE);
	ck_assert_int_eq(store_write_sync(st, bad_idem_fn, (void *)
		"INSERT INTO idempotency(run_id, session_key, status, "
		"created_at, expires_at) VALUES(NULL, 'k', 'ok', 1, 2)", 0),
			 GW_ESTORE);
	/* the run path's statements work on it: a retry's row replaces */
	ck_assert_int_eq(store_write_sync(st, bad_idem_fn, (void *)
		"INSERT OR REPLACE INTO idempotency(run_id, session_key, "
		"status, created_at, expires_at) VALUES('r-a', 'k', 'ok', 1, "
		"2)", 0), GW_OK);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM idempotency"), 3);
	store_close(st);
}
END_TEST

/* The sweep without an expiry index: only rows inserted before the newest
 * id seen a TTL ago are candidates, and of those only expired ones go. */
struct sweep_step {
	const char *sql;	/* rows to add first (or NULL) */
	int64_t now;
};

static int sweep_fn(sqlite3 *db, void *arg)
{
	struct sweep_step *st = arg;

	if (st->sql && sqlite3_exec(db, st->sql, NULL, NULL, NULL) !=
	    SQLITE_OK)
		return GW_ESTORE;
	return store_session_sweep_tx(db, st->now);
}

#define IDEM_ROW(id, exp) \
	"INSERT INTO idempotency(id, run_id, session_key, status, " \
	"created_at, expires_at) VALUES(" #id ", 'r" #id "', 'k', 'ok', 1, " \
	#exp ");"

START_TEST(test_idempotency_sweep)
{
	const int64_t t0 = 4000000000000LL, ttl = STORE_SESSION_IDEM_TTL_MS;
	struct sweep_step steps[] = {
		/* 3 expired rows and a live one; no sweep is a TTL old */
		{IDEM_ROW(1, 1) IDEM_ROW(2, 1) IDEM_ROW(3, 1)
		 IDEM_ROW(4, 9000000000000), t0},
		/* an expired row inserted after that sweep */
		{IDEM_ROW(5, 1), t0 + STORE_SESSION_SWEEP_MS},
		/* too soon after the last sweep: nothing */
		{NULL, t0 + STORE_SESSION_SWEEP_MS + 1},
		/* the first sweep is a TTL old: rows 1-3 go, 4 is live, 5
		 * was inserted after it */
		{NULL, t0 + ttl},
		/* the second is: 5 goes */
		{NULL, t0 + ttl + STORE_SESSION_SWEEP_MS},
	};
	static const int left[] = {4, 5, 5, 2, 1};
	struct store *st = open_ok();
	sqlite3 *db = store_reader(st);

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		ck_assert_int_eq(store_write_sync(st, sweep_fn, &steps[i], 0),
				 GW_OK);
		ck_assert_int_eq(query_int(db, "SELECT count(*) FROM "
					   "idempotency"), left[i]);
	}
	ck_assert_int_eq(query_int(db, "SELECT min(id) FROM idempotency"), 4);
	store_close(st);
}
END_TEST


/* ---- a run's start and end carried from one to the other (issue 11) --- */

/* One writer job: what a test does with the writer's connection. */
struct carry_job {
	int step;
	struct store_session_begin b;
	struct store_session_end e;
	char *override;
};

static void carry_begin(struct carry_job *j, const char *key, int peek,
			sqlite3 *db)
{
	memset(&j->b, 0, sizeof(j->b));
	j->b.key = (char *)key;
	j->b.agent_id = (char *)"main";
	j->b.run_id = (char *)"run-1";
	j->b.messages = json_array();
	json_array_append_new(j->b.messages,
			      store_session_message("user", "hello"));
	if (peek)
		j->override = store_session_peek_db(db, key, &j->b);
}

static void carry_end(struct carry_job *j, const char *key)
{
	memset(&j->e, 0, sizeof(j->e));
	j->e.key = (char *)key;
	j->e.run_id = (char *)"run-1";
	j->e.status = "ok";
	j->e.message = store_session_message("assistant", "hi there");
	j->e.result = json_pack("{s:s,s:s}", "runId", "run-1", "text",
				"hi there");
	j->e.in_tok = 3;
	j->e.out_tok = 4;
	/* What the run keeps of its start (run_begin_kept). */
	memcpy(j->e.sid, j->b.sid, sizeof(j->e.sid));
	j->e.count = j->b.count;
	j->e.idem_id = j->b.idem_id;
}

static int carry_fn(sqlite3 *db, void *arg)
{
	struct carry_job *j = arg;
	int r;

	switch (j->step) {
	case 0:		/* the start, the row read before (chat.send) */
		carry_begin(j, "agent:main:c", 1, db);
		r = store_session_begin_tx(db, &j->b, NULL);
		json_decref(j->b.messages);
		return r;
	case 1:		/* the start, not read before (known 0) */
		carry_begin(j, "agent:main:c", 0, db);
		r = store_session_begin_tx(db, &j->b, NULL);
		json_decref(j->b.messages);
		return r;
	case 2:		/* the end */
		carry_end(j, "agent:main:c");
		r = store_session_end_tx(db, &j->e, NULL);
		json_decref(j->e.message);
		json_decref(j->e.result);
		return r;
	case 3:		/* a message injected during the run */
		j->e.message = store_session_message("assistant", "note");
		r = store_session_append_tx(db, "agent:main:c", j->e.message,
					    NULL, NULL, NULL);
		json_decref(j->e.message);
		return r;
	default:	/* its idempotency row written again meanwhile */
		return sqlite3_exec(db, "DELETE FROM idempotency; INSERT INTO "
				    "idempotency(id, run_id, session_key, status, "
				    "created_at, expires_at) VALUES(1000, 'run-1', "
				    "'agent:main:c', 'running', 1, "
				    "9000000000000)", NULL, NULL, NULL)
			== SQLITE_OK ? GW_OK : GW_ESTORE;
	}
}

/* sql through another connection, as another writer of the file would. */
static void carry_other(const char *sql)
{
	sqlite3 *w = NULL;

	ck_assert_int_eq(sqlite3_open(dbpath, &w), SQLITE_OK);
	exec_ok(w, sql);
	sqlite3_close(w);
}

static int carry_run(struct store *st, struct carry_job *j, int step)
{
	j->step = step;
	return store_write_sync(st, carry_fn, j, 0);
}

/* The rows of agent:main:c after a start and an end: n transcript rows
 * with seqs 1..n in the row's session, the reply last, and one
 * idempotency row, ended, with the result. */
static void carry_check(sqlite3 *db, int n, int runs)
{
	char *v;

	ck_assert_int_eq(query_int(db, "SELECT message_count FROM sessions"),
			 n);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM transcript t "
				   "JOIN sessions s ON s.key = t.session_key "
				   "AND s.session_id = t.session_id"), n);
	ck_assert_int_eq(query_int(db, "SELECT count(DISTINCT seq) FROM "
				   "transcript WHERE seq BETWEEN 1 AND 99"),
			 n);
	v = query_text(db, "SELECT role || ':' || seq || ':' || status FROM "
		       "transcript ORDER BY seq DESC LIMIT 1");
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(strncmp(v, "assistant:", 10), 0);
	ck_assert_int_eq(atoi(v + 10), n);
	free(v);
	v = query_text(db, "SELECT status || ' ' || json_extract(result, "
		       "'$.text') FROM idempotency");
	ck_assert_str_eq(v, "ok hi there");
	free(v);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM idempotency"), 1);
	ck_assert_int_eq(query_int(db, "SELECT input_tokens + output_tokens "
				   "FROM sessions"), 7 * runs);
	v = query_text(db, "SELECT status FROM sessions");
	ck_assert_str_eq(v, "done");
	free(v);
}

/* A new row: the start reads nothing back, the end writes the rows the
 * start left by their ids; the ids it was given are the rows'. */
START_TEST(test_carry_new_row)
{
	struct store *st = open_ok();
	sqlite3 *db = store_reader(st);
	struct carry_job j = {0};
	char *sid;

	ck_assert_int_eq(carry_run(st, &j, 0), GW_OK);
	ck_assert_int_eq(j.b.known, 1);
	ck_assert_int_eq(j.b.has_row, 0);
	ck_assert_ptr_null(j.override);
	ck_assert_int_eq(j.b.count, 1);
	sid = query_text(db, "SELECT session_id FROM sessions");
	ck_assert_str_eq(j.b.sid, sid);
	free(sid);
	ck_assert_int_eq(j.b.idem_id, query_int(db, "SELECT id FROM "
						"idempotency"));
	ck_assert_int_eq(carry_run(st, &j, 2), GW_OK);
	carry_check(db, 2, 1);
	/* the start's row, its created_at kept */
	ck_assert_int_eq(j.b.idem_id, query_int(db, "SELECT id FROM "
						"idempotency"));
	ck_assert_int_eq(query_int(db, "SELECT created_at <= ended_at FROM "
				   "idempotency"), 1);
	store_close(st);
}
END_TEST

/* An existing row with a model override, read before the start: the
 * start continues its count, the override comes with the peek. */
START_TEST(test_carry_existing_row)
{
	struct store *st = open_ok();
	sqlite3 *db = store_reader(st);
	struct carry_job j = {0};

	ck_assert_int_eq(carry_run(st, &j, 1), GW_OK);	/* seq 1, unread */
	ck_assert_int_eq(j.b.known, 0);
	ck_assert_int_eq(j.b.count, 1);
	ck_assert_int_eq(carry_run(st, &j, 2), GW_OK);	/* seq 2 */
	/* an override, as sessions.patch leaves it */
	carry_other("UPDATE sessions SET settings = '{\"model\":\"x/y\"}'");
	ck_assert_int_eq(carry_run(st, &j, 0), GW_OK);	/* seq 3 */
	ck_assert_int_eq(j.b.known, 1);
	ck_assert_int_eq(j.b.has_row, 1);
	ck_assert_int_eq(j.b.prev_count, 2);
	ck_assert_str_eq(j.override, "x/y");
	free(j.override);
	ck_assert_int_eq(j.b.count, 3);
	ck_assert_int_eq(carry_run(st, &j, 2), GW_OK);	/* seq 4 */
	carry_check(db, 4, 2);
	store_close(st);
}
END_TEST

/* The rows changed between the start and the end (a message injected,
 * the idempotency row written again): the end finds them as they are. */
START_TEST(test_carry_changed_meanwhile)
{
	struct store *st = open_ok();
	sqlite3 *db = store_reader(st);
	struct carry_job j = {0};
	int64_t id;

	ck_assert_int_eq(carry_run(st, &j, 0), GW_OK);	/* seq 1 */
	ck_assert_int_eq(carry_run(st, &j, 3), GW_OK);	/* seq 2 */
	ck_assert_int_eq(carry_run(st, &j, 4), GW_OK);	/* a new id */
	id = query_int(db, "SELECT id FROM idempotency");
	ck_assert_int_ne(id, j.b.idem_id);
	ck_assert_int_eq(carry_run(st, &j, 2), GW_OK);	/* seq 3 */
	carry_check(db, 3, 1);
	ck_assert_int_eq(query_int(db, "SELECT id FROM idempotency"), id);
	/* a session reset during the run: the reply goes to the new one */
	ck_assert_int_eq(carry_run(st, &j, 0), GW_OK);
	carry_other("UPDATE sessions SET session_id = 'reset-1', "
		    "message_count = 0");
	ck_assert_int_eq(carry_run(st, &j, 2), GW_OK);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM transcript "
				   "WHERE session_id = 'reset-1' AND seq = 1 "
				   "AND role = 'assistant'"), 1);
	ck_assert_int_eq(query_int(db, "SELECT message_count FROM sessions"),
			 1);
	store_close(st);
}
END_TEST

/* store_session_message builds what json_pack built (member order,
 * types) and, as json_pack, nothing for a text that is not UTF-8. */
START_TEST(test_session_message_as_pack)
{
	static const char *const texts[] = {
		"", "hello", "quote \" backslash \\ nl \n", "\xc3\xa9\xe2\x82\xac",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_t *m = store_session_message("user", texts[i]);
		json_t *p = json_pack("{s:s,s:[{s:s,s:s}],s:I}", "role",
				      "user", "content", "type", "text",
				      "text", texts[i], "timestamp",
				      json_integer_value(json_object_get(
					      m, "timestamp")));
		char *a = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
		char *b = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);

		ck_assert_str_eq(a, b);
		ck_assert_int_gt(json_integer_value(json_object_get(
			m, "timestamp")), 0);
		free(a);
		free(b);
		json_decref(m);
		json_decref(p);
	}
	ck_assert_ptr_null(store_session_message("user", "bad \xff"));
	ck_assert_ptr_null(store_session_message(NULL, "x"));
	{
		json_t *m = store_session_message("user", NULL);

		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
			json_object_get(m, "content"), 0), "text")), "");
		json_decref(m);
	}
}
END_TEST


/* store_json_utf8 takes what jansson's json_stringn takes: every 1- and
 * 2-byte string, every 3-byte one, 4-byte ones over the lead bytes with
 * the continuation bytes' edges, truncated sequences, embedded NULs. */
static int jansson_takes(const unsigned char *b, size_t n)
{
	json_t *v = json_stringn((const char *)b, n);

	json_decref(v);
	return v != NULL;
}

START_TEST(test_json_utf8_as_jansson)
{
	static const unsigned char edge[] = {
		0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
		0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
	};
	unsigned char b[6];
	size_t ne = sizeof(edge);

	for (unsigned i = 0; i < 256; i++) {
		b[0] = (unsigned char)i;
		ck_assert_int_eq(store_json_utf8((char *)b, 1),
				 jansson_takes(b, 1));
		for (unsigned j = 0; j < 256; j++) {
			b[1] = (unsigned char)j;
			ck_assert_int_eq(store_json_utf8((char *)b, 2),
					 jansson_takes(b, 2));
		}
	}
	for (unsigned i = 0xc0; i < 256; i++)
		for (unsigned j = 0x80; j < 0xc0; j++)
			for (unsigned k = 0; k < 256; k++) {
				b[0] = (unsigned char)i;
				b[1] = (unsigned char)j;
				b[2] = (unsigned char)k;
				ck_assert_msg(store_json_utf8((char *)b, 3) ==
					      jansson_takes(b, 3),
					      "%02x %02x %02x", i, j, k);
			}
	for (unsigned i = 0xe0; i < 256; i++)
		for (size_t j = 0; j < ne; j++)
			for (size_t k = 0; k < ne; k++)
				for (size_t l = 0; l < ne; l++) {
					b[0] = (unsigned char)i;
					b[1] = edge[j];
					b[2] = edge[k];
					b[3] = edge[l];
					ck_assert_msg(store_json_utf8((char *)b,
								      4) ==
						      jansson_takes(b, 4),
						      "%02x %02x %02x %02x", i,
						      edge[j], edge[k], edge[l]);
				}
	ck_assert_int_eq(store_json_utf8("a\0b\xc3\xa9", 5), 1);
	ck_assert_int_eq(store_json_utf8("ok \xe2\x82", 5), 0);
	ck_assert_int_eq(store_json_utf8("", 0), 1);
}
END_TEST

static void add(TCase *tc)
{
	tcase_add_test(tc, test_json_utf8_as_jansson);
	tcase_add_test(tc, test_carry_new_row);
	tcase_add_test(tc, test_carry_existing_row);
	tcase_add_test(tc, test_carry_changed_meanwhile);
	tcase_add_test(tc, test_session_message_as_pack);
	tcase_add_test(tc, test_migration_0009_keeps_rows);
	tcase_add_test(tc, test_idempotency_sweep);
	tcase_add_test(tc, test_migration_0008_keeps_rows);
	tcase_add_test(tc, test_migration_0008_checks_stay);
	tcase_add_test(tc, test_json_integers_as_jansson);
}

int main(void)
{
	return fixture_main("store-runpath", add);
}
