/* Automations (cron jobs) and their run history: the SQL behind
 * src/cron/cron.c. Tables cron_jobs_t and cron_runs_t (migration 0005),
 * operator views cron_jobs and cron_runs (sql/views.sql). Writes wait for
 * their commit (an acknowledged change survives kill -9); reads use the
 * calling thread's reader connection. */
#pragma once

#include <stdint.h>

#include <jansson.h>

struct store;

/* Insert or replace a job from its public JSON (cron.get shape: id, name,
 * agentId?, enabled, schedule.kind, state{nextRunAtMs, runningAtMs,
 * lastRunAtMs, lastRunStatus}, createdAtMs, updatedAtMs). */
int store_cron_job_put(struct store *st, const json_t *job);
/* GW_ENOTFOUND when there was no such job. */
int store_cron_job_delete(struct store *st, const char *id);
/* Every job's JSON (new array), oldest first. */
int store_cron_jobs_load(struct store *st, json_t **out);

/* One run row. Times are epoch ms, 0 = NULL; tokens < 0 = NULL. */
struct store_cron_run {
	const char *run_id, *job_id, *job_name, *agent_id;
	const char *trigger;	/* schedule | manual | startup */
	const char *status;	/* queued | running | ok | error | skipped |
				 * interrupted */
	int64_t run_at, queued_at, started_at, ended_at, duration_ms;
	const char *error, *summary, *session_key, *model;
	int64_t input_tokens, output_tokens;
	const char *delivery_status, *delivery_error;
	const char *completion_status;	/* succeeded | failed | unknown */
	int64_t next_run_at;
};
/* Insert or replace. */
int store_cron_run_put(struct store *st, const struct store_cron_run *r);
/* In one transaction: the run row, then the job (put when job is not
 * NULL, deleted when del_id is not NULL). */
int store_cron_run_job_put(struct store *st, const struct store_cron_run *r,
			   const json_t *job, const char *del_id);
/* Mark every queued or running row interrupted (ended now, error set);
 * *job_ids (may be NULL): new array of the jobs concerned. */
int store_cron_runs_interrupt(struct store *st, int64_t now,
			      const char *error, json_t **job_ids);

/* Up to limit session keys of ended runs whose session is an isolated run
 * session (agent:<id>:cron:<job>:run:<run>), ended before `before`, not
 * pruned yet, other than except_run (new array). */
int store_cron_stale_sessions(struct store *st, int64_t before,
			      const char *except_run, int limit,
			      json_t **keys);
/* Mark the run rows of session key pruned. */
int store_cron_session_pruned(struct store *st, const char *key);

/* Run history kept: ended rows for 7 days, and the newest 2000 per job. */
#define STORE_CRON_KEEP_MS (7LL * 86400 * 1000)
#define STORE_CRON_KEEP_ROWS 2000

/* Scratch (cron.scratch.*): at most STORE_CRON_SCRATCH_MAX bytes. get:
 * *content new string or NULL (none or cleared), *rev 0 when never set. */
#define STORE_CRON_SCRATCH_MAX 262144
int store_cron_scratch_get(struct store *st, const char *job_id,
			   char **content, int64_t *rev, int64_t *updated);
/* Write (content NULL clears) when expected < 0 or equals the current
 * revision and the job exists; else *ok = 0. *rev: the revision after. */
int store_cron_scratch_set(struct store *st, const char *job_id,
			   const char *content, int64_t expected, int64_t now,
			   int *ok, int64_t *rev);

struct store_cron_runs_query {
	const char *job_id;	/* NULL: every job */
	const char *run_id;	/* NULL: any */
	const char *query;	/* substring of summary/error/job name */
	const char *agent_id;
	unsigned statuses;	/* bits: 1 ok, 2 error, 4 skipped; 0 any */
	const char *delivery_status;
	int asc;		/* oldest first */
	int limit, offset;
};
/* A page of CronRunLogEntry objects (new array) and the total count. A
 * queued or running row has no status yet; interrupted reads as error. */
int store_cron_runs_list(struct store *st,
			 const struct store_cron_runs_query *q,
			 json_t **entries, int *total);
