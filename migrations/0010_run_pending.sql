-- 0010_run_pending: runs acknowledged while they wait for their session's
-- turn (issue 11: nothing acknowledged is lost).
--
-- A run sent while its session has a live run is answered at once
-- ("started", "accepted") but writes its transcript start only at its
-- turn, so that its user message follows the answer of the turn before.
-- Until then its message lives here, written in the transaction that
-- acknowledges it (with its idempotency row, status 'running'); its turn
-- deletes the row in the transaction that writes its start, an abort
-- deletes it with its 'aborted' result. At boot, before runs left
-- 'running' are recorded as interrupted, every row left by a crash becomes
-- its session's transcript user message(s), in seq order.

CREATE TABLE run_pending (
	run_id TEXT PRIMARY KEY,
	session_key TEXT NOT NULL,
	seq INTEGER NOT NULL,		-- start order within the process
	agent_id TEXT NOT NULL,
	channel TEXT,
	messages TEXT NOT NULL CHECK (json_valid(messages)),
	created_at INTEGER NOT NULL
);
