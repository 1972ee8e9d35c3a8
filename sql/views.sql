-- Operator views of the clawgate state database.
--
-- These views are part of the database: clawgate embeds this file at build
-- time and (re)creates the views at open whenever the file changed or a
-- migration ran, so any read-only one-shot query works:
--
--   sqlite3 -readonly ~/.openclaw/state/clawgate.sqlite \
--       'select * from presence_now'
--   sqlite3 -readonly -json <db> 'select * from audit_recent limit 20'
--
-- Never sit inside BEGIN in an interactive sqlite3 session on a running
-- gateway: an open read transaction stops WAL checkpoints and the -wal file
-- grows until you leave it (doc/sqlite.md).
--
-- Rules for this file: only DROP VIEW IF EXISTS / CREATE VIEW statements;
-- times are shown as UTC ISO-8601 strings next to the raw epoch ms; the
-- views read only tables created by migrations/. Views of your own belong
-- in TEMP views of your session (CREATE TEMP VIEW works with -readonly).

-- Presence entries seen in the last 5 minutes (the upstream TTL), newest
-- first, with the common entry fields pulled out of the JSON.
DROP VIEW IF EXISTS presence_now;
CREATE VIEW presence_now AS
SELECT
	key,
	json_extract(entry, '$.host') AS host,
	json_extract(entry, '$.ip') AS ip,
	json_extract(entry, '$.mode') AS mode,
	json_extract(entry, '$.reason') AS reason,
	json_extract(entry, '$.version') AS version,
	json_extract(entry, '$.platform') AS platform,
	json_extract(entry, '$.deviceId') AS device_id,
	json_extract(entry, '$.roles') AS roles,
	strftime('%Y-%m-%dT%H:%M:%fZ', ts / 1000.0, 'unixepoch') AS seen,
	CAST(((julianday('now') - 2440587.5) * 86400000.0 - ts) / 1000
	     AS INTEGER) AS age_s,
	ts,
	entry
FROM presence
WHERE ts >= (julianday('now') - 2440587.5) * 86400000.0 - 300000
ORDER BY ts DESC;

-- The last 200 audit rows, newest first.
DROP VIEW IF EXISTS audit_recent;
CREATE VIEW audit_recent AS
SELECT
	id,
	strftime('%Y-%m-%dT%H:%M:%fZ', ts / 1000.0, 'unixepoch') AS time,
	actor,
	action,
	target,
	remote_ip,
	detail,
	ts
FROM audit_log
ORDER BY id DESC
LIMIT 200;

-- Current state versions (what hello-ok's snapshot.stateVersion reports).
DROP VIEW IF EXISTS state_versions_now;
CREATE VIEW state_versions_now AS
SELECT kind, version FROM state_versions ORDER BY kind;

-- Applied migrations, with the schema version stored in the file header
-- (PRAGMA user_version; equal to the highest version row).
DROP VIEW IF EXISTS schema_info;
CREATE VIEW schema_info AS
SELECT
	m.version,
	m.name,
	strftime('%Y-%m-%dT%H:%M:%fZ', m.applied_at / 1000.0, 'unixepoch')
		AS applied,
	(SELECT user_version FROM pragma_user_version) AS user_version
FROM schema_migrations AS m
ORDER BY m.version;

-- Device pairing (migrations/0002_pairing.sql, doc/pairing.md).
-- Pending pairing requests that have not expired, newest first.
DROP VIEW IF EXISTS pending_pairing;
CREATE VIEW pending_pairing AS
SELECT
	request_id,
	device_id,
	display_name,
	platform,
	device_family,
	client_id,
	client_mode,
	role,
	scopes,
	remote_ip,
	reason,
	is_repair,
	strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch')
		AS created,
	strftime('%Y-%m-%dT%H:%M:%fZ', expires_at / 1000.0, 'unixepoch')
		AS expires,
	created_at,
	updated_at,
	expires_at
FROM pairing_request
WHERE expires_at > (julianday('now') - 2440587.5) * 86400000.0
ORDER BY updated_at DESC;

-- Paired devices with their approved roles and scopes.
DROP VIEW IF EXISTS paired_devices;
CREATE VIEW paired_devices AS
SELECT
	device_id,
	display_name,
	platform,
	device_family,
	client_id,
	client_mode,
	roles,
	scopes,
	remote_ip,
	approved_via,
	strftime('%Y-%m-%dT%H:%M:%fZ', approved_at / 1000.0, 'unixepoch')
		AS approved,
	(SELECT count(*) FROM device_token AS t
	 WHERE t.device_id = d.device_id AND t.revoked_at IS NULL)
		AS active_tokens,
	public_key,
	created_at,
	approved_at
FROM paired_device AS d
ORDER BY approved_at DESC;

-- Device tokens, one per (device, role), WITHOUT the hash.
DROP VIEW IF EXISTS device_tokens;
CREATE VIEW device_tokens AS
SELECT
	device_id,
	role,
	scopes,
	CASE WHEN revoked_at IS NULL THEN 'active' ELSE 'revoked' END
		AS state,
	strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch')
		AS created,
	strftime('%Y-%m-%dT%H:%M:%fZ', rotated_at / 1000.0, 'unixepoch')
		AS rotated,
	strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at / 1000.0, 'unixepoch')
		AS revoked,
	created_at,
	rotated_at,
	revoked_at,
	last_used_at
FROM device_token
ORDER BY device_id, role;

-- Pairing decisions (approve, reject, remove, rotate, revoke, silent
-- approvals) from the audit log: who, when, from where. Newest first.
DROP VIEW IF EXISTS pairing_audit;
CREATE VIEW pairing_audit AS
SELECT
	id,
	strftime('%Y-%m-%dT%H:%M:%fZ', ts / 1000.0, 'unixepoch') AS time,
	actor,
	action,
	target AS device_id,
	remote_ip,
	detail,
	ts
FROM audit_log
WHERE action LIKE 'device.%'
ORDER BY id DESC;

-- Config snapshots (migrations/0003_config_snapshots.sql), newest first:
-- who changed what and what the gateway did with it. The stored text is
-- redacted; `clawgate config history|diff|rollback` read the same rows.
DROP VIEW IF EXISTS config_history;
CREATE VIEW config_history AS
SELECT
	id,
	strftime('%Y-%m-%dT%H:%M:%fZ', ts / 1000.0, 'unixepoch') AS time,
	source,
	actor,
	method,
	outcome,
	reason,
	substr(hash, 1, 12) AS hash,
	parent,
	restored_from,
	(SELECT group_concat(json_extract(value, '$.path') || ' (' ||
			     json_extract(value, '$.action') || ')', ', ')
	 FROM json_each(paths)) AS changes,
	ts
FROM config_snapshots
ORDER BY id DESC;

-- Sessions by last activity, newest first, with token totals.
DROP VIEW IF EXISTS sessions_recent;
CREATE VIEW sessions_recent AS
SELECT
	key,
	agent_id,
	session_id,
	status,
	model,
	message_count,
	input_tokens,
	output_tokens,
	label,
	substr(last_preview, 1, 80) AS preview,
	strftime('%Y-%m-%dT%H:%M:%fZ', updated_at / 1000.0, 'unixepoch')
		AS updated,
	last_run_id,
	last_error,
	updated_at
FROM sessions
ORDER BY updated_at DESC
LIMIT 200;

-- The 200 most recent transcript messages of the current session ids,
-- newest first (the rows of earlier, reset sessions stay in transcript).
DROP VIEW IF EXISTS transcript_tail;
CREATE VIEW transcript_tail AS
SELECT
	t.session_key,
	t.seq,
	t.role,
	t.status,
	substr(t.text, 1, 120) AS text,
	t.model,
	t.input_tokens,
	t.output_tokens,
	t.run_id,
	strftime('%Y-%m-%dT%H:%M:%fZ', t.created_at / 1000.0, 'unixepoch')
		AS time,
	t.created_at
FROM transcript t
JOIN sessions s ON s.key = t.session_key AND s.session_id = t.session_id
ORDER BY t.created_at DESC, t.id DESC
LIMIT 200;

-- Automations (cron jobs): one row per job with its schedule in one
-- column, the next and last run as ISO times, soonest due first.
DROP VIEW IF EXISTS cron_jobs;
CREATE VIEW cron_jobs AS
SELECT
	id,
	name,
	coalesce(agent_id, 'main') AS agent_id,
	enabled,
	schedule_kind,
	CASE schedule_kind
		WHEN 'cron' THEN json_extract(job, '$.schedule.expr') ||
			coalesce(' (' || json_extract(job, '$.schedule.tz') ||
				 ')', '')
		WHEN 'at' THEN json_extract(job, '$.schedule.at')
		WHEN 'every' THEN 'every ' ||
			(json_extract(job, '$.schedule.everyMs') / 1000) || 's'
	END AS schedule,
	json_extract(job, '$.sessionTarget') AS session_target,
	json_extract(job, '$.payload.kind') AS payload_kind,
	json_extract(job, '$.delivery.mode') AS delivery_mode,
	strftime('%Y-%m-%dT%H:%M:%fZ', next_run_at / 1000.0, 'unixepoch')
		AS next_run,
	running_at IS NOT NULL AS running,
	strftime('%Y-%m-%dT%H:%M:%fZ', last_run_at / 1000.0, 'unixepoch')
		AS last_run,
	last_status,
	json_extract(job, '$.state.lastError') AS last_error,
	json_extract(job, '$.state.consecutiveErrors') AS consecutive_errors,
	strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch')
		AS created,
	next_run_at,
	job
FROM cron_jobs_t
ORDER BY next_run_at IS NULL, next_run_at, created_at;

-- Automation runs, newest first: status is queued, running, ok, error,
-- skipped or interrupted (the gateway stopped during the run).
DROP VIEW IF EXISTS cron_runs;
CREATE VIEW cron_runs AS
SELECT
	run_id,
	job_id,
	job_name,
	agent_id,
	trigger,
	status,
	strftime('%Y-%m-%dT%H:%M:%fZ', run_at / 1000.0, 'unixepoch') AS due,
	strftime('%Y-%m-%dT%H:%M:%fZ', started_at / 1000.0, 'unixepoch')
		AS started,
	strftime('%Y-%m-%dT%H:%M:%fZ', ended_at / 1000.0, 'unixepoch')
		AS ended,
	duration_ms,
	started_at - run_at AS lag_ms,
	error,
	model,
	input_tokens,
	output_tokens,
	delivery_status,
	delivery_error,
	completion_status,
	session_key,
	substr(summary, 1, 200) AS summary
FROM cron_runs_t
ORDER BY coalesce(started_at, queued_at) DESC;
-- Channel ingress (doc/channels.md): the 200 newest inbound channel
-- messages and what became of each (pending, dispatched, answered, failed,
-- dropped with OpenClaw's reason words, pairing).
DROP VIEW IF EXISTS channel_ingress_recent;
CREATE VIEW channel_ingress_recent AS
SELECT
	id,
	channel,
	account,
	conversation,
	sender,
	is_dm,
	status,
	reason,
	session_key,
	substr(text, 1, 120) AS text,
	strftime('%Y-%m-%dT%H:%M:%fZ', received_at / 1000.0, 'unixepoch')
		AS received
FROM channel_ingress
ORDER BY id DESC
LIMIT 200;

-- Pending DM pairing requests (not expired: 1 hour) and approved senders.
DROP VIEW IF EXISTS channel_pairing_pending;
CREATE VIEW channel_pairing_pending AS
SELECT
	channel,
	account,
	sender_id,
	code,
	request_id,
	strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch')
		AS created,
	strftime('%Y-%m-%dT%H:%M:%fZ', (created_at + 3600000) / 1000.0,
		 'unixepoch') AS expires
FROM channel_pairing
WHERE created_at > (CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 3600000)
ORDER BY created_at;

DROP VIEW IF EXISTS channel_allowed_senders;
CREATE VIEW channel_allowed_senders AS
SELECT
	channel,
	account,
	sender_id,
	approved_via,
	strftime('%Y-%m-%dT%H:%M:%fZ', approved_at / 1000.0, 'unixepoch')
		AS approved
FROM channel_allow
ORDER BY approved_at DESC;
