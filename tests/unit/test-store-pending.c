/* Unit tests for the runs acknowledged while they wait for their session
 * (issue 11, migration 0010): store_session_pending_tx writes the
 * run_pending row and the idempotency row 'running'; the run's start
 * (store_session_begin_tx with pending) or its unstarted end
 * (store_session_end_tx with skip_row and pending) deletes the row; at
 * boot store_session_recover turns the rows left by a crash into their
 * sessions' transcript messages, in start order after what the session
 * has, and their runs into interrupted ones. */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store-sessions.h"
#include "store-fixture.h"

/* The texts of a query's first column, joined by '|'. */
static void texts(sqlite3 *db, const char *sql, char *out, size_t n)
{
	sqlite3_stmt *s = NULL;
	const char *t;

	*out = '\0';
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		t = (const char *)sqlite3_column_text(s, 0);
		if (*out)
			strncat(out, "|", n - strlen(out) - 1);
		strncat(out, t ? t : "(null)", n - strlen(out) - 1);
	}
	sqlite3_finalize(s);
}

/* A run's user message as the run path records it. */
static json_t *user(const char *text)
{
	return json_pack("[o]", store_session_message("user", text));
}

struct pend_job {
	const char *key, *run_id;
	const char *text;
	int64_t seq;
	int pending;		/* begin_fn: it had a run_pending row */
};

static int pend_fn(sqlite3 *db, void *arg)
{
	struct pend_job *j = arg;
	json_t *m = user(j->text);
	struct store_session_pending p = {
		.key = j->key, .agent_id = "main", .run_id = j->run_id,
		.channel = "webchat", .messages = m, .seq = j->seq,
	};
	int r = store_session_pending_tx(db, &p);

	json_decref(m);
	return r;
}

static void pend(struct store *st, const char *key, const char *run_id,
		 const char *text, int64_t seq)
{
	struct pend_job j = {key, run_id, text, seq, 1};

	ck_assert_int_eq(store_write_sync(st, pend_fn, &j, 0), GW_OK);
}

/* A run's start (pending: it waited for its turn). */
static int begin_fn(sqlite3 *db, void *arg)
{
	struct pend_job *j = arg;
	struct store_session_begin b = {
		.key = (char *)j->key, .agent_id = (char *)"main",
		.run_id = (char *)j->run_id, .messages = user(j->text),
		.pending = j->pending,
	};
	int r = store_session_begin_tx(db, &b, NULL);

	json_decref(b.messages);
	return r;
}

/* Its end without a start (aborted while it waited). */
static int unstarted_end_fn(sqlite3 *db, void *arg)
{
	struct pend_job *j = arg;
	struct store_session_end e = {
		.key = (char *)j->key, .run_id = (char *)j->run_id,
		.status = "aborted", .skip_row = 1, .pending = 1,
		.result = json_pack("{s:s,s:s}", "runId", j->run_id, "status",
				    "aborted"),
	};
	int r = store_session_end_tx(db, &e, NULL);

	json_decref(e.result);
	return r;
}

START_TEST(test_pending_row_and_its_ends)
{
	struct store *st = open_ok();
	sqlite3 *db = store_reader(st);
	struct pend_job started = {"agent:main:s", "r1", "first", 1, 1};
	struct pend_job aborted = {"agent:main:s", "r2", "second", 2, 1};
	char buf[256];

	pend(st, "agent:main:s", "r1", "first", 1);
	pend(st, "agent:main:s", "r2", "second", 2);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM run_pending"), 2);
	texts(db, "SELECT status FROM idempotency ORDER BY id", buf,
	      sizeof(buf));
	ck_assert_str_eq(buf, "running|running");
	texts(db, "SELECT json_extract(messages, '$[0].content[0].text') "
	      "FROM run_pending ORDER BY seq", buf, sizeof(buf));
	ck_assert_str_eq(buf, "first|second");
	/* Nothing in the transcript until its turn. */
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM transcript"), 0);

	/* r1's turn: its start, its row gone. */
	ck_assert_int_eq(store_write_sync(st, begin_fn, &started, 0), GW_OK);
	texts(db, "SELECT run_id FROM run_pending", buf, sizeof(buf));
	ck_assert_str_eq(buf, "r2");
	texts(db, "SELECT text FROM transcript", buf, sizeof(buf));
	ck_assert_str_eq(buf, "first");
	/* r2 aborted before its turn: its row gone, no transcript row. */
	ck_assert_int_eq(store_write_sync(st, unstarted_end_fn, &aborted, 0),
			 GW_OK);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM run_pending"), 0);
	texts(db, "SELECT status FROM idempotency WHERE run_id = 'r2'", buf,
	      sizeof(buf));
	ck_assert_str_eq(buf, "aborted");
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM transcript"), 1);
	store_close(st);
}
END_TEST

START_TEST(test_recover_pending_rows)
{
	struct store *st = open_ok();
	sqlite3 *db = store_reader(st);
	struct pend_job live = {"agent:main:s", "r1", "turn one", 1, 0};
	char buf[512];

	/* r1 started (its user row), r3 and r2 queued behind it (acked in
	 * this order, started in seq order), r4 queued in a session that
	 * has no row yet. */
	ck_assert_int_eq(store_write_sync(st, begin_fn, &live, 0), GW_OK);
	pend(st, "agent:main:s", "r3", "turn three", 3);
	pend(st, "agent:main:s", "r2", "turn two", 2);
	pend(st, "agent:main:t", "r4", "elsewhere", 4);
	store_close(st);

	st = open_ok();
	db = store_reader(st);
	ck_assert_int_eq(store_session_recover(st), GW_OK);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM run_pending"), 0);
	texts(db, "SELECT text || ':' || run_id || ':' || seq FROM transcript "
	      "WHERE session_key = 'agent:main:s' ORDER BY seq", buf,
	      sizeof(buf));
	ck_assert_str_eq(buf, "turn one:r1:1|turn two:r2:2|turn three:r3:3");
	texts(db, "SELECT status || ':' || last_run_id || ':' || "
	      "message_count || ':' || last_error FROM sessions ORDER BY key",
	      buf, sizeof(buf));
	ck_assert_str_eq(buf, "failed:r3:3:run interrupted by a gateway "
			 "restart|failed:r4:1:run interrupted by a gateway "
			 "restart");
	texts(db, "SELECT run_id || ':' || status || ':' || "
	      "json_extract(result, '$.error') FROM idempotency ORDER BY "
	      "run_id", buf, sizeof(buf));
	ck_assert_str_eq(buf, "r1:error:run interrupted by a gateway restart|"
			 "r2:error:run interrupted by a gateway restart|"
			 "r3:error:run interrupted by a gateway restart|"
			 "r4:error:run interrupted by a gateway restart");
	/* A second boot finds nothing more to do. */
	ck_assert_int_eq(store_session_recover(st), GW_OK);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM transcript"), 4);
	store_close(st);
}
END_TEST

static void add(TCase *tc)
{
	tcase_add_test(tc, test_pending_row_and_its_ends);
	tcase_add_test(tc, test_recover_pending_rows);
}

int main(void)
{
	return fixture_main("store-pending", add);
}
