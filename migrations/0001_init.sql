-- 0001_init: the first tables of the clawgate state database.
--
-- Rules for every migration file (see doc/sqlite.md):
--   * name it NNNN_name.sql with the next number, add it to MIGRATIONS in
--     Makefile.am; it is embedded into the binary at build time;
--   * never edit a file that has shipped: add a new one;
--   * no BEGIN/COMMIT here: the store runs all pending migrations in one
--     transaction and records each in schema_migrations;
--   * STRICT tables; times are epoch milliseconds (INTEGER); JSON is TEXT
--     checked with json_valid().
--   * views live in sql/views.sql, not here: the store drops and recreates
--     them around migrations, so a migration may change any table freely.

-- History of applied migrations (written by the store, one row per file).
-- PRAGMA user_version holds the same number as max(version) and is the one
-- the store checks at open.
CREATE TABLE schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT;

-- Small key/value settings owned by the daemon.
CREATE TABLE meta (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Monotonic state versions ("presence", "health"), persisted so that they
-- keep increasing across restarts.
CREATE TABLE state_versions (
	kind TEXT PRIMARY KEY,
	version INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0)
) STRICT, WITHOUT ROWID;

-- Presence entries (ws-protocol.md section 8), keyed like upstream:
-- lowercase(deviceId || instanceId || connId). entry is the whole JSON
-- object; ts is its "ts" field (last update).
CREATE TABLE presence (
	key TEXT PRIMARY KEY,
	entry TEXT NOT NULL CHECK (json_valid(entry)),
	ts INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX presence_ts ON presence(ts);

-- Who did what: mutating RPCs, pairing decisions, config writes.
CREATE TABLE audit_log (
	id INTEGER PRIMARY KEY,
	ts INTEGER NOT NULL,
	actor TEXT,
	action TEXT NOT NULL,
	target TEXT,
	detail TEXT CHECK (detail IS NULL OR json_valid(detail)),
	remote_ip TEXT
) STRICT;
CREATE INDEX audit_log_ts ON audit_log(ts);
