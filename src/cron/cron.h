/* Automations: cron jobs that run agent turns (doc/cron.md).
 *
 * One scheduler thread of its own sleeps on a condition variable until the
 * earliest due job (or a change: add, update, remove, run, config reload,
 * a run's end); there is no polling. Due jobs become queued runs, at most
 * cron.maxConcurrentRuns run at once, each through the public agent API
 * (run_start, as chat.send does) with a timeout. Jobs, next-run times and
 * every run are in SQLite (store-cron.h): a change is acknowledged after
 * its commit; at start-up a run that was queued or running is marked
 * interrupted and an overdue job runs once (not once per missed slot).
 *
 * The methods below are the domain behind the cron.* RPC methods; they
 * take the caller's params and return the payload (new reference) or a
 * GW_* code with a message (*err, new string; *details for
 * CRON_JOB_NOT_FOUND). They may be called from any thread except the lws
 * thread (they touch SQLite). */
#pragma once

#include <stdint.h>

#include <jansson.h>

struct store;
struct agent_rt;
struct cron;

struct cron_opts {
	struct store *store;
	struct agent_rt *agents;	/* may be NULL: runs then fail */
	/* A `cron` event (payload stolen), any thread, must not block. */
	void (*on_event)(void *arg, json_t *payload);
	void *arg;
	/* Send text to a channel conversation (delivery.mode announce and
	 * failure alerts), called from the scheduler thread; may block until
	 * the message is queued. 0, or an error code with *err (new string).
	 * May be NULL: nothing is delivered. */
	int (*deliver)(void *arg, const char *channel, const char *account,
		       const char *to, const char *text, char **err);
	void *deliver_arg;
};

/* Load the jobs, recover interrupted runs, apply config (the cron.* keys
 * of root). The thread starts with cron_start. */
int cron_new(const struct cron_opts *o, const json_t *root,
	     struct cron **out);
int cron_start(struct cron *c);
/* Config reload: cron.enabled, cron.maxConcurrentRuns,
 * cron.runTimeoutSeconds, cron.allowCommandPayload, cron.skipMissedJobs. */
void cron_configure(struct cron *c, const json_t *root);
/* Stop the thread (join); no run starts afterwards. Runs in flight end
 * with the agent runtime (agent_rt_stop); free after agent_rt_free. */
void cron_stop(struct cron *c);
void cron_free(struct cron *c);

int cron_list(struct cron *c, const json_t *params, json_t **out,
	      char **err);
json_t *cron_status(struct cron *c);
int cron_get(struct cron *c, const json_t *params, json_t **out, char **err,
	     json_t **details);
int cron_add(struct cron *c, const json_t *params, json_t **out,
	     char **err);
int cron_update(struct cron *c, const json_t *params, json_t **out,
		char **err, json_t **details);
int cron_remove(struct cron *c, const json_t *params, json_t **out,
		char **err, json_t **details);
int cron_run(struct cron *c, const json_t *params, json_t **out, char **err,
	     json_t **details);
int cron_runs(struct cron *c, const json_t *params, json_t **out, char **err,
	      json_t **details);
/* Private per-job scratch: {scratch|null, currentRevision, maxBytes};
 * set compare-and-swaps on expectedRevision ({ok:false, reason:
 * "revision-conflict", currentRevision} when it differs). */
int cron_scratch_get(struct cron *c, const json_t *params, json_t **out,
		     char **err, json_t **details);
int cron_scratch_set(struct cron *c, const json_t *params, json_t **out,
		     char **err, json_t **details);

/* Next run time (epoch ms) of a job JSON after now_ms, honouring stagger
 * and anchors; 0 when none. Exposed for tests. */
int64_t cron_job_next(const json_t *job, int64_t now_ms);
