-- 0009_idempotency_rowid: the idempotency rows in insertion order, no
-- expiry index (issue 11).
--
-- idempotency was a WITHOUT ROWID table keyed by run_id, with an index on
-- expires_at for the sweep. Rows of a few hundred bytes (the result JSON)
-- in a key-ordered b-tree: inserts at the right edge (time-ordered run
-- ids) or anywhere (a caller's idempotency keys) split and rebalance leaf
-- pages of full rows, and the end of a watched run moved its expiry entry
-- too: 2.3 WAL pages per run for the two b-trees (doc/sqlite.md, "What a
-- chat completion writes"). Now the rows are a rowid table in insertion
-- order (appends fill a new page, the end rewrites a recent row) and
-- run_id is UNIQUE (a small index, written once per run); the sweep walks
-- the oldest rows by rowid instead of an expiry index
-- (store_session_sweep). Every column, the CHECK and run_id's uniqueness
-- stay; the rows are copied in their creation order.

CREATE TABLE idempotency_0009 (
	id INTEGER PRIMARY KEY,
	run_id TEXT NOT NULL UNIQUE,
	session_key TEXT NOT NULL,
	status TEXT NOT NULL,
	result TEXT CHECK (result IS NULL OR json_valid(result)),
	created_at INTEGER NOT NULL,
	ended_at INTEGER,
	expires_at INTEGER NOT NULL
) STRICT;
INSERT INTO idempotency_0009(run_id, session_key, status, result,
	created_at, ended_at, expires_at)
SELECT run_id, session_key, status, result, created_at, ended_at,
	expires_at FROM idempotency ORDER BY created_at, run_id;
DROP TABLE idempotency;
ALTER TABLE idempotency_0009 RENAME TO idempotency;
