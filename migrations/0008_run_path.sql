-- 0008_run_path: fewer b-trees written per chat completion (issue 11).
--
-- A run writes its session row, its transcript messages and its
-- idempotency row; every b-tree it touches costs at least one 4 KiB page
-- in the WAL per commit (and again when the checkpoint copies it), which
-- was most of the store writer's work (doc/sqlite.md, "What a completion
-- writes"). Two of the eight b-trees held nothing a query used:
--
-- * sessions was a rowid table with its TEXT primary key in a separate
--   index (sqlite_autoindex_sessions_1); as WITHOUT ROWID the row lives in
--   the key's b-tree (rows are a few hundred bytes).
-- * transcript.message_id had a UNIQUE index that no statement reads (ids
--   are time-ordered UUIDs the store generates); the column stays.
--
-- Both tables are rebuilt with their rows; columns, CHECKs and the other
-- indexes are unchanged.

CREATE TABLE sessions_0008 (
	key TEXT PRIMARY KEY,
	session_id TEXT NOT NULL,
	agent_id TEXT NOT NULL,
	channel TEXT,
	label TEXT,
	settings TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
	status TEXT,
	last_run_id TEXT,
	last_error TEXT,
	model TEXT,
	input_tokens INTEGER NOT NULL DEFAULT 0,
	output_tokens INTEGER NOT NULL DEFAULT 0,
	message_count INTEGER NOT NULL DEFAULT 0,
	last_preview TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO sessions_0008(key, session_id, agent_id, channel, label,
	settings, status, last_run_id, last_error, model, input_tokens,
	output_tokens, message_count, last_preview, created_at, updated_at)
SELECT key, session_id, agent_id, channel, label, settings, status,
	last_run_id, last_error, model, input_tokens, output_tokens,
	message_count, last_preview, created_at, updated_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_0008 RENAME TO sessions;
CREATE INDEX sessions_by_updated ON sessions(updated_at);

CREATE TABLE transcript_0008 (
	id INTEGER PRIMARY KEY,
	session_key TEXT NOT NULL,
	session_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	message_id TEXT NOT NULL,
	role TEXT NOT NULL,
	text TEXT NOT NULL,
	message TEXT NOT NULL CHECK (json_valid(message)),
	run_id TEXT,
	status TEXT,
	input_tokens INTEGER,
	output_tokens INTEGER,
	model TEXT,
	created_at INTEGER NOT NULL
) STRICT;
INSERT INTO transcript_0008(id, session_key, session_id, seq, message_id,
	role, text, message, run_id, status, input_tokens, output_tokens,
	model, created_at)
SELECT id, session_key, session_id, seq, message_id, role, text, message,
	run_id, status, input_tokens, output_tokens, model, created_at
FROM transcript;
DROP TABLE transcript;
ALTER TABLE transcript_0008 RENAME TO transcript;
CREATE INDEX transcript_by_session ON transcript(session_key, session_id, seq);
