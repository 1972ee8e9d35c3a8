-- 0004_sessions: agent sessions, their transcripts, and the idempotency
-- record of runs (chat.send, agent, HTTP runs).
--
-- A session row is keyed by its session key (agent:<id>:main, ...); a
-- reset gives it a new session_id, and the transcript keeps the messages
-- of every session_id (history reads only the current one). A transcript
-- append and the session row bump commit in the same transaction.

CREATE TABLE sessions (
	key TEXT PRIMARY KEY,
	session_id TEXT NOT NULL,
	agent_id TEXT NOT NULL,
	channel TEXT,
	label TEXT,
	-- sessions.patch fields (thinkingLevel, fastMode, model, ...)
	settings TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
	-- running | done | failed | killed | timeout (GatewaySessionRow)
	status TEXT,
	last_run_id TEXT,
	last_error TEXT,
	model TEXT,		-- "provider/model" that answered last
	input_tokens INTEGER NOT NULL DEFAULT 0,
	output_tokens INTEGER NOT NULL DEFAULT 0,
	message_count INTEGER NOT NULL DEFAULT 0, -- in the current session_id
	last_preview TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_updated ON sessions(updated_at);

-- One row per message. seq counts from 1 within (session_key,
-- session_id). message is the display JSON {role, content[], timestamp,
-- ...}; text is its plain text (for previews and sqlite3 users).
CREATE TABLE transcript (
	id INTEGER PRIMARY KEY,
	session_key TEXT NOT NULL,
	session_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	message_id TEXT NOT NULL UNIQUE,
	role TEXT NOT NULL,
	text TEXT NOT NULL,
	message TEXT NOT NULL CHECK (json_valid(message)),
	run_id TEXT,
	-- assistant messages: ok | error | aborted | timeout | injected
	status TEXT,
	input_tokens INTEGER,
	output_tokens INTEGER,
	model TEXT,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX transcript_by_session ON transcript(session_key, session_id, seq);

-- Runs by id (= the idempotency key of chat.send / agent): a retry with
-- the same key within 5 minutes of the end gets this run, not a new one.
-- status running | ok | error | aborted | timeout; result is the final
-- result JSON {runId, status, text, ...}.
CREATE TABLE idempotency (
	run_id TEXT PRIMARY KEY,
	session_key TEXT NOT NULL,
	status TEXT NOT NULL,
	result TEXT CHECK (result IS NULL OR json_valid(result)),
	created_at INTEGER NOT NULL,
	ended_at INTEGER,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_by_expiry ON idempotency(expires_at);
