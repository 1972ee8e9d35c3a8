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
