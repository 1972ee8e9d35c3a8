/* `clawgate cron ...` (cli-cron.c): the options of the automation
 * commands, embedded in struct cli_args as its `cron` member. */
#pragma once

struct cli_cron_args {
	const char *name, *description, *at, *every, *cron, *tz, *stagger;
	const char *message, *system_event, *command, *agent, *session;
	const char *session_key, *model, *thinking, *timeout_seconds;
	const char *channel, *to, *wake;
	const char *wait_timeout, *poll_interval, *run_id, *limit, *offset;
	const char *status, *query, *sort, *id, *mode;
	int exact, disabled, enable, disable, delete_after_run;
	int keep_after_run, announce, no_deliver, best_effort, wait, due;
	int all, clear_agent, clear_model;
};
