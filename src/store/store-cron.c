/* Automations: the SQL of cron jobs and runs (store-cron.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "store/store-cron.h"
#include "store/store.h"

#define STORE_CRON_SUMMARY_MAX 2000

static int store_cron_fail(sqlite3 *db, const char *what)
{
	log_error("store", "cron %s: %s", what,
		  db ? sqlite3_errmsg(db) : "?");
	return GW_ESTORE;
}

/* The cached statement for sql (a constant): hand it back with
 * store_stmt_done. */
static int store_cron_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s)
{
	if (!db)
		return GW_ESTORE;
	*s = store_stmt(db, sql);
	return *s ? GW_OK : store_cron_fail(db, sql);
}

/* A statement for sql built at run time (not cached): finalize it. */
static int store_cron_prep_built(sqlite3 *db, const char *sql,
				 sqlite3_stmt **s)
{
	if (!db)
		return GW_ESTORE;
	if (sqlite3_prepare_v2(db, sql, -1, s, NULL) != SQLITE_OK)
		return store_cron_fail(db, sql);
	return GW_OK;
}

static int64_t store_cron_int(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* ---- jobs ------------------------------------------------------------------ */

struct store_cron_put {
	const json_t *job;
	char *text;
};

static int store_cron_job_put_tx(sqlite3 *db, void *arg)
{
	struct store_cron_put *p = arg;
	const json_t *j = p->job, *st = json_object_get(j, "state");
	sqlite3_stmt *s = NULL;
	int r;

	r = store_cron_prep(db, "INSERT OR REPLACE INTO cron_jobs_t(id, name, "
			    "agent_id, enabled, schedule_kind, next_run_at, "
			    "running_at, last_run_at, last_status, job, "
			    "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,"
			    "?,?,?,?)", &s);
	if (r)
		return r;
	store_bind_text(s, 1, json_string_value(json_object_get(j,
								    "id")));
	store_bind_text(s, 2, json_string_value(json_object_get(j,
								    "name")));
	store_bind_text(s, 3, json_string_value(json_object_get(j,
							"agentId")));
	sqlite3_bind_int(s, 4, json_is_true(json_object_get(j, "enabled")));
	store_bind_text(s, 5, json_string_value(json_object_get(
		json_object_get(j, "schedule"), "kind")));
	store_bind_pos(s, 6, store_cron_int(st, "nextRunAtMs"));
	store_bind_pos(s, 7, store_cron_int(st, "runningAtMs"));
	store_bind_pos(s, 8, store_cron_int(st, "lastRunAtMs"));
	store_bind_text(s, 9, json_string_value(json_object_get(st,
							"lastRunStatus")));
	sqlite3_bind_text(s, 10, p->text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 11, store_cron_int(j, "createdAtMs"));
	sqlite3_bind_int64(s, 12, store_cron_int(j, "updatedAtMs"));
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_cron_fail(db, "job put");
	store_stmt_done(s);
	return r;
}

int store_cron_job_put(struct store *st, const json_t *job)
{
	struct store_cron_put p = { job, NULL };
	int r;

	if (!json_is_string(json_object_get(job, "id")) ||
	    !json_is_string(json_object_get(job, "name")))
		return GW_EINVAL;
	p.text = json_dumps(job, JSON_COMPACT);
	if (!p.text)
		return GW_EINVAL;
	r = store_write_sync(st, store_cron_job_put_tx, &p, 0);
	free(p.text);
	return r;
}

static int store_cron_job_delete_tx(sqlite3 *db, void *arg)
{
	sqlite3_stmt *s = NULL;
	int r;

	r = store_cron_prep(db, "DELETE FROM cron_scratch_t WHERE job_id = ?",
			    &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_cron_fail(db, "scratch delete");
	store_stmt_done(s);
	s = NULL;
	if (r)
		return r;
	r = store_cron_prep(db, "DELETE FROM cron_jobs_t WHERE id = ?", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_cron_fail(db, "job delete");
	else if (sqlite3_changes(db) == 0)
		r = GW_ENOTFOUND;
	store_stmt_done(s);
	return r;
}

int store_cron_job_delete(struct store *st, const char *id)
{
	return store_write_sync(st, store_cron_job_delete_tx, (void *)id, 0);
}

int store_cron_jobs_load(struct store *st, json_t **out)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	json_t *a = NULL;
	int r, rc;

	*out = NULL;
	r = store_cron_prep(db, "SELECT job FROM cron_jobs_t ORDER BY "
			    "created_at, id", &s);
	if (r)
		return r;
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *j = json_loads((const char *)sqlite3_column_text(s, 0),
				       0, NULL);

		if (json_is_object(j))
			json_array_append_new(a, j);
		else
			json_decref(j);
	}
	if (rc != SQLITE_DONE) {
		r = store_cron_fail(db, "jobs load");
		json_decref(a);
		a = NULL;
	}
	store_stmt_done(s);
	*out = a;
	return r;
}

/* ---- runs ------------------------------------------------------------------ */

static int store_cron_run_put_tx(sqlite3 *db, void *arg)
{
	const struct store_cron_run *x = arg;
	sqlite3_stmt *s = NULL;
	char *summary = NULL;
	int r;

	r = store_cron_prep(db, "INSERT OR REPLACE INTO cron_runs_t(run_id, "
			    "job_id, job_name, agent_id, trigger, status, "
			    "run_at, queued_at, started_at, ended_at, "
			    "duration_ms, error, summary, session_key, model, "
			    "input_tokens, output_tokens, delivery_status, "
			    "delivery_error, next_run_at, completion_status) "
			    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
			    &s);
	if (r)
		return r;
	if (x->summary && strlen(x->summary) > STORE_CRON_SUMMARY_MAX) {
		size_t n = STORE_CRON_SUMMARY_MAX;

		/* cut on a UTF-8 boundary */
		while (n > 0 && ((unsigned char)x->summary[n] & 0xc0) == 0x80)
			n--;
		summary = xmalloc(n + 1);
		memcpy(summary, x->summary, n);
		summary[n] = '\0';
	}
	store_bind_text(s, 1, x->run_id);
	store_bind_text(s, 2, x->job_id);
	store_bind_text(s, 3, x->job_name);
	store_bind_text(s, 4, x->agent_id);
	store_bind_text(s, 5, x->trigger ? x->trigger : "schedule");
	store_bind_text(s, 6, x->status);
	sqlite3_bind_int64(s, 7, x->run_at);
	sqlite3_bind_int64(s, 8, x->queued_at);
	store_bind_pos(s, 9, x->started_at);
	store_bind_pos(s, 10, x->ended_at);
	if (x->ended_at > 0)
		sqlite3_bind_int64(s, 11, x->duration_ms);
	else
		sqlite3_bind_null(s, 11);
	store_bind_text(s, 12, x->error);
	store_bind_text(s, 13, summary ? summary : x->summary);
	store_bind_text(s, 14, x->session_key);
	store_bind_text(s, 15, x->model);
	if (x->input_tokens >= 0)
		sqlite3_bind_int64(s, 16, x->input_tokens);
	else
		sqlite3_bind_null(s, 16);
	if (x->output_tokens >= 0)
		sqlite3_bind_int64(s, 17, x->output_tokens);
	else
		sqlite3_bind_null(s, 17);
	store_bind_text(s, 18, x->delivery_status);
	store_bind_text(s, 19, x->delivery_error);
	store_bind_pos(s, 20, x->next_run_at);
	store_bind_text(s, 21, x->completion_status);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_cron_fail(db, "run put");
	store_stmt_done(s);
	free(summary);
	return r;
}

int store_cron_run_put(struct store *st, const struct store_cron_run *r)
{
	if (!r->run_id || !r->job_id || !r->status)
		return GW_EINVAL;
	return store_write_sync(st, store_cron_run_put_tx, (void *)r, 0);
}

struct store_cron_rj {
	const struct store_cron_run *run;
	struct store_cron_put job;
	const char *del_id;
};

/* Retention of the ended runs of one job. */
static int store_cron_prune_tx(sqlite3 *db, const char *job_id, int64_t now)
{
	sqlite3_stmt *s = NULL;
	int r;

	r = store_cron_prep(db, "DELETE FROM cron_runs_t WHERE job_id = ?1 "
			    "AND status NOT IN ('queued', 'running') AND "
			    "(ended_at < ?2 OR run_id IN (SELECT run_id FROM "
			    "cron_runs_t WHERE job_id = ?1 AND status NOT IN "
			    "('queued', 'running') ORDER BY queued_at DESC, "
			    "rowid DESC LIMIT -1 OFFSET ?3))", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, job_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now - STORE_CRON_KEEP_MS);
	sqlite3_bind_int(s, 3, STORE_CRON_KEEP_ROWS);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_cron_fail(db, "runs prune");
	store_stmt_done(s);
	return r;
}

static int store_cron_run_job_tx(sqlite3 *db, void *arg)
{
	struct store_cron_rj *x = arg;
	int r;

	r = store_cron_run_put_tx(db, (void *)x->run);
	if (r == GW_OK && x->run->ended_at > 0)
		r = store_cron_prune_tx(db, x->run->job_id, x->run->ended_at);
	if (r == GW_OK && x->job.job)
		r = store_cron_job_put_tx(db, &x->job);
	if (r == GW_OK && x->del_id) {
		r = store_cron_job_delete_tx(db, (void *)x->del_id);
		if (r == GW_ENOTFOUND)
			r = GW_OK;
	}
	return r;
}

int store_cron_run_job_put(struct store *st, const struct store_cron_run *r,
			   const json_t *job, const char *del_id)
{
	struct store_cron_rj x = { r, { job, NULL }, del_id };
	int rc;

	if (!r->run_id || !r->job_id || !r->status)
		return GW_EINVAL;
	if (job && !(x.job.text = json_dumps(job, JSON_COMPACT)))
		return GW_EINVAL;
	rc = store_write_sync(st, store_cron_run_job_tx, &x, 0);
	free(x.job.text);
	return rc;
}

struct store_cron_intr {
	int64_t now;
	const char *error;
	json_t *ids;
};

static int store_cron_runs_interrupt_tx(sqlite3 *db, void *arg)
{
	struct store_cron_intr *x = arg;
	sqlite3_stmt *s = NULL;
	int r, rc;

	r = store_cron_prep(db, "SELECT DISTINCT job_id FROM cron_runs_t "
			    "WHERE status IN ('queued', 'running')", &s);
	if (r)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(x->ids, json_string((const char *)
			sqlite3_column_text(s, 0)));
	store_stmt_done(s);
	s = NULL;
	if (rc != SQLITE_DONE)
		return store_cron_fail(db, "runs interrupt");
	r = store_cron_prep(db, "UPDATE cron_runs_t SET status = "
			    "'interrupted', error = ?, ended_at = ?, "
			    "duration_ms = CASE WHEN started_at IS NULL THEN 0 "
			    "ELSE max(0, ? - started_at) END WHERE status IN "
			    "('queued', 'running')", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, x->error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, x->now);
	sqlite3_bind_int64(s, 3, x->now);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_cron_fail(db, "runs interrupt");
	store_stmt_done(s);
	return r;
}

int store_cron_runs_interrupt(struct store *st, int64_t now,
			      const char *error, json_t **job_ids)
{
	struct store_cron_intr x = { now, error, json_array() };
	int r;

	r = store_write_sync(st, store_cron_runs_interrupt_tx, &x, 0);
	if (r == GW_OK && job_ids)
		*job_ids = json_incref(x.ids);
	json_decref(x.ids);
	return r;
}

/* Build the WHERE clause and bind list of a runs query. */
static void store_cron_where(const struct store_cron_runs_query *q,
			     char *w, size_t n)
{
	size_t len = 0;
	char st[128] = "";

	len += (size_t)snprintf(w + len, n - len, "WHERE 1");
	if (q->job_id)
		len += (size_t)snprintf(w + len, n - len, " AND job_id = ?1");
	if (q->run_id)
		len += (size_t)snprintf(w + len, n - len, " AND run_id = ?2");
	if (q->agent_id)
		len += (size_t)snprintf(w + len, n - len,
					" AND agent_id = ?3");
	if (q->query)
		len += (size_t)snprintf(w + len, n - len, " AND (instr(lower("
					"coalesce(summary, '') || ' ' || "
					"coalesce(error, '') || ' ' || "
					"coalesce(job_name, '')), lower(?4)) "
					"> 0)");
	if (q->delivery_status)
		len += (size_t)snprintf(w + len, n - len, " AND coalesce("
					"delivery_status, 'not-requested') = "
					"?5");
	if (q->statuses) {
		snprintf(st, sizeof(st), "%s%s%s%s",
			 q->statuses & 1 ? "'ok'," : "",
			 q->statuses & 2 ? "'error','interrupted'," : "",
			 q->statuses & 4 ? "'skipped'," : "", "''");
		snprintf(w + len, n - len, " AND status IN (%s)", st);
	}
}

static void store_cron_bind_q(sqlite3_stmt *s,
			      const struct store_cron_runs_query *q)
{
	if (q->job_id)
		sqlite3_bind_text(s, 1, q->job_id, -1, SQLITE_STATIC);
	if (q->run_id)
		sqlite3_bind_text(s, 2, q->run_id, -1, SQLITE_STATIC);
	if (q->agent_id)
		sqlite3_bind_text(s, 3, q->agent_id, -1, SQLITE_STATIC);
	if (q->query)
		sqlite3_bind_text(s, 4, q->query, -1, SQLITE_STATIC);
	if (q->delivery_status)
		sqlite3_bind_text(s, 5, q->delivery_status, -1,
				  SQLITE_STATIC);
}

static void store_cron_set_str(json_t *o, const char *k, sqlite3_stmt *s,
			       int col)
{
	const unsigned char *v = sqlite3_column_text(s, col);

	if (v && *v)
		json_object_set_new(o, k, json_string((const char *)v));
}

static void store_cron_set_int(json_t *o, const char *k, sqlite3_stmt *s,
			       int col)
{
	if (sqlite3_column_type(s, col) != SQLITE_NULL)
		json_object_set_new(o, k, json_integer(
			sqlite3_column_int64(s, col)));
}

/* One row → CronRunLogEntry. Columns as selected in store_cron_runs_list. */
static json_t *store_cron_entry(sqlite3_stmt *s)
{
	const char *status = (const char *)sqlite3_column_text(s, 5);
	const char *model = (const char *)sqlite3_column_text(s, 14);
	const char *ds = (const char *)sqlite3_column_text(s, 17);
	json_t *e = json_object();
	int64_t ts;

	ts = sqlite3_column_type(s, 9) != SQLITE_NULL ?
	     sqlite3_column_int64(s, 9) :
	     sqlite3_column_type(s, 8) != SQLITE_NULL ?
	     sqlite3_column_int64(s, 8) : sqlite3_column_int64(s, 7);
	json_object_set_new(e, "ts", json_integer(ts));
	store_cron_set_str(e, "jobId", s, 1);
	json_object_set_new(e, "action", json_string("finished"));
	if (status && (!strcmp(status, "ok") || !strcmp(status, "error") ||
		       !strcmp(status, "skipped")))
		json_object_set_new(e, "status", json_string(status));
	else if (status && !strcmp(status, "interrupted"))
		json_object_set_new(e, "status", json_string("error"));
	if (json_object_get(e, "status")) {
		const char *st = json_string_value(json_object_get(e,
								   "status"));
		const char *cs = (const char *)sqlite3_column_text(s, 20);

		if (!cs || !*cs)
			cs = strcmp(st, "ok") ? "failed" : "unknown";
		json_object_set_new(e, "completionStatus", json_string(cs));
		json_object_set_new(e, "deliveryStatus",
				    json_string(ds ? ds : "not-requested"));
		json_object_set_new(e, "delivered", json_boolean(
			ds && !strcmp(ds, "delivered")));
		store_cron_set_str(e, "deliveryError", s, 18);
	}
	store_cron_set_str(e, "error", s, 11);
	store_cron_set_str(e, "summary", s, 12);
	store_cron_set_str(e, "sessionKey", s, 13);
	store_cron_set_str(e, "runId", s, 0);
	store_cron_set_int(e, "runAtMs", s, 8);
	if (!json_object_get(e, "runAtMs"))
		store_cron_set_int(e, "runAtMs", s, 6);
	store_cron_set_int(e, "durationMs", s, 10);
	store_cron_set_int(e, "nextRunAtMs", s, 19);
	if (model && *model) {
		const char *sl = strchr(model, '/');

		json_object_set_new(e, "model", json_string(sl ? sl + 1
							     : model));
		if (sl)
			json_object_set_new(e, "provider", json_stringn(
				model, (size_t)(sl - model)));
	}
	if (sqlite3_column_type(s, 15) != SQLITE_NULL) {
		int64_t in = sqlite3_column_int64(s, 15);
		int64_t out = sqlite3_column_int64(s, 16);

		json_object_set_new(e, "usage", json_pack("{s:I,s:I,s:I}",
			"input_tokens", (json_int_t)in, "output_tokens",
			(json_int_t)out, "total_tokens",
			(json_int_t)(in + out)));
	}
	store_cron_set_str(e, "jobName", s, 2);
	return e;
}

int store_cron_runs_list(struct store *st,
			 const struct store_cron_runs_query *q,
			 json_t **entries, int *total)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	char where[768], sql[1400];
	json_t *a = NULL;
	int r, rc;

	*entries = NULL;
	*total = 0;
	store_cron_where(q, where, sizeof(where));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM cron_runs_t %s",
		 where);
	r = store_cron_prep_built(db, sql, &s);
	if (r)
		return r;
	store_cron_bind_q(s, q);
	if (sqlite3_step(s) == SQLITE_ROW)
		*total = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	snprintf(sql, sizeof(sql), "SELECT run_id, job_id, job_name, "
		 "agent_id, trigger, status, run_at, queued_at, started_at, "
		 "ended_at, duration_ms, error, summary, session_key, model, "
		 "input_tokens, output_tokens, delivery_status, "
		 "delivery_error, next_run_at, completion_status FROM "
		 "cron_runs_t %s ORDER BY "
		 "coalesce(started_at, queued_at) %s, rowid %s LIMIT ?6 "
		 "OFFSET ?7", where, q->asc ? "ASC" : "DESC",
		 q->asc ? "ASC" : "DESC");
	r = store_cron_prep_built(db, sql, &s);
	if (r)
		return r;
	store_cron_bind_q(s, q);
	sqlite3_bind_int(s, 6, q->limit);
	sqlite3_bind_int(s, 7, q->offset);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, store_cron_entry(s));
	if (rc != SQLITE_DONE) {
		r = store_cron_fail(db, "runs list");
		json_decref(a);
		a = NULL;
	}
	sqlite3_finalize(s);
	*entries = a;
	return r;
}

int store_cron_stale_sessions(struct store *st, int64_t before,
			      const char *except_run, int limit,
			      json_t **keys)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	json_t *a;
	int r, rc;

	*keys = NULL;
	r = store_cron_prep(db, "SELECT DISTINCT session_key FROM cron_runs_t "
			    "WHERE session_pruned = 0 AND ended_at < ?1 AND "
			    "session_key = 'agent:' || coalesce(agent_id, "
			    "'main') || ':cron:' || job_id || ':run:' || run_id "
			    "AND run_id != ?2 AND status NOT IN ('queued', "
			    "'running') LIMIT ?3", &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, before);
	sqlite3_bind_text(s, 2, except_run ? except_run : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int(s, 3, limit);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, json_string((const char *)
			sqlite3_column_text(s, 0)));
	if (rc != SQLITE_DONE) {
		r = store_cron_fail(db, "stale sessions");
		json_decref(a);
		a = NULL;
	}
	store_stmt_done(s);
	*keys = a;
	return r;
}

static int store_cron_session_pruned_tx(sqlite3 *db, void *arg)
{
	sqlite3_stmt *s = NULL;
	int r;

	r = store_cron_prep(db, "UPDATE cron_runs_t SET session_pruned = 1 "
			    "WHERE session_key = ?", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_cron_fail(db, "session pruned");
	store_stmt_done(s);
	return r;
}

int store_cron_session_pruned(struct store *st, const char *key)
{
	return store_write_sync(st, store_cron_session_pruned_tx, (void *)key,
				0);
}

int store_cron_scratch_get(struct store *st, const char *job_id,
			   char **content, int64_t *rev, int64_t *updated)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	int r, rc;

	*content = NULL;
	*rev = 0;
	*updated = 0;
	r = store_cron_prep(db, "SELECT content, revision, updated_at FROM "
			    "cron_scratch_t WHERE job_id = ?", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, job_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(s, 0) != SQLITE_NULL)
			*content = xstrdup((const char *)
					   sqlite3_column_text(s, 0));
		*rev = sqlite3_column_int64(s, 1);
		*updated = sqlite3_column_int64(s, 2);
	} else if (rc != SQLITE_DONE) {
		r = store_cron_fail(db, "scratch get");
	}
	store_stmt_done(s);
	return r;
}

struct store_cron_scratch {
	const char *job_id, *content;
	int64_t expected, now, rev;
	int ok;
};

static int store_cron_scratch_set_tx(sqlite3 *db, void *arg)
{
	struct store_cron_scratch *x = arg;
	sqlite3_stmt *s = NULL;
	int r, exists = 0;
	int64_t cur = 0;

	r = store_cron_prep(db, "SELECT (SELECT 1 FROM cron_jobs_t WHERE id = "
			    "?1), (SELECT revision FROM cron_scratch_t WHERE "
			    "job_id = ?1)", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, x->job_id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		exists = sqlite3_column_type(s, 0) != SQLITE_NULL;
		cur = sqlite3_column_int64(s, 1);
	}
	store_stmt_done(s);
	s = NULL;
	x->rev = cur;
	x->ok = 0;
	if (!exists || (x->expected >= 0 && x->expected != cur))
		return GW_OK;
	x->ok = 1;
	if (!x->content && cur == 0)
		return GW_OK;
	r = store_cron_prep(db, "INSERT OR REPLACE INTO cron_scratch_t(job_id, "
			    "content, revision, updated_at) VALUES (?, ?, ?, ?)",
			    &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, x->job_id, -1, SQLITE_STATIC);
	if (x->content)
		sqlite3_bind_text(s, 2, x->content, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	sqlite3_bind_int64(s, 3, cur + 1);
	sqlite3_bind_int64(s, 4, x->now);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_cron_fail(db, "scratch set");
	else
		x->rev = cur + 1;
	store_stmt_done(s);
	return r;
}

int store_cron_scratch_set(struct store *st, const char *job_id,
			   const char *content, int64_t expected, int64_t now,
			   int *ok, int64_t *rev)
{
	struct store_cron_scratch x = { job_id, content, expected, now, 0, 0 };
	int r;

	if (content && strlen(content) > STORE_CRON_SCRATCH_MAX)
		return GW_ETOOBIG;
	r = store_write_sync(st, store_cron_scratch_set_tx, &x, 0);
	*ok = x.ok;
	*rev = x.rev;
	return r;
}
