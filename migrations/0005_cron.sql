-- 0005_cron: automations (cron jobs) and their run history.
--
-- A job row holds the public job JSON (the cron.get shape, state included)
-- and, pulled out of it for the scheduler and for sqlite3 users, the
-- fields that are queried. A run row is written when the run is queued,
-- updated when it starts and when it ends; a row still 'queued' or
-- 'running' at start-up belongs to a process that died, and is marked
-- 'interrupted'.

CREATE TABLE cron_jobs_t (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	agent_id TEXT,
	enabled INTEGER NOT NULL,
	schedule_kind TEXT NOT NULL,	-- at | every | cron
	next_run_at INTEGER,		-- epoch ms, NULL when none
	running_at INTEGER,
	last_run_at INTEGER,
	last_status TEXT,		-- ok | error | skipped
	job TEXT NOT NULL CHECK (json_valid(job)),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX cron_jobs_t_next ON cron_jobs_t(next_run_at);

CREATE TABLE cron_runs_t (
	run_id TEXT PRIMARY KEY,
	job_id TEXT NOT NULL,		-- the job may be gone (history stays)
	job_name TEXT,
	agent_id TEXT,
	trigger TEXT NOT NULL,		-- schedule | manual | startup
	-- queued | running | ok | error | skipped | interrupted
	status TEXT NOT NULL,
	run_at INTEGER NOT NULL,	-- due time (epoch ms)
	queued_at INTEGER NOT NULL,
	started_at INTEGER,
	ended_at INTEGER,
	duration_ms INTEGER,
	error TEXT,
	summary TEXT,			-- the reply text (cut)
	session_key TEXT,
	model TEXT,			-- "provider/model" that answered
	input_tokens INTEGER,
	output_tokens INTEGER,
	-- delivered | not-delivered | not-requested
	delivery_status TEXT,
	delivery_error TEXT,
	-- succeeded | failed | unknown (payload run and required delivery)
	completion_status TEXT,
	next_run_at INTEGER,		-- the job's next run after this one
	-- 1 once the isolated run session was deleted (cron.sessionRetention)
	session_pruned INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX cron_runs_t_job ON cron_runs_t(job_id, queued_at);
CREATE INDEX cron_runs_t_status ON cron_runs_t(status);
CREATE INDEX cron_runs_t_unpruned ON cron_runs_t(ended_at)
	WHERE session_pruned = 0;

-- Private per-job scratch (cron.scratch.get/set): compare-and-swap on
-- revision, which counts every write (a clear keeps the row, content NULL).
CREATE TABLE cron_scratch_t (
	job_id TEXT PRIMARY KEY,
	content TEXT,
	revision INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
