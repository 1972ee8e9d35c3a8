-- 0003_config_snapshots: every config the gateway evaluated, numbered.
--
-- One row per accepted config (start-up, file edit, SIGHUP, config.set /
-- patch / apply, rollback) and per rejected one (invalid edit), written
-- with synchronous=FULL before the running snapshot swaps. text is the
-- REDACTED file content as JSON: secrets (gateway.auth.token, apiKey, any
-- *token/*password/*secret key) are "__OPENCLAW_REDACTED__"; whole-string
-- ${VAR} references and SecretRef objects are kept (they name a secret,
-- they do not hold one). Resolved secrets never reach this table.
--
-- outcome: started (the config a process started with), applied (hot /
-- no-op swap), restart (swapped and a restart followed), pending (mode hot:
-- swapped, restart-class paths wait for the next restart), skipped
-- (gateway.reload.mode=off), rejected (invalid: reason names the paths).
-- paths: the plan, [{path, action: hot|restart|none, rule}].
-- Retention: meta 'config_snapshots_keep' (0 = keep all, the default).
CREATE TABLE config_snapshots (
	id INTEGER PRIMARY KEY,
	ts INTEGER NOT NULL,
	hash TEXT NOT NULL,
	parent INTEGER,
	source TEXT NOT NULL CHECK (source IN ('startup', 'restart', 'file',
		'signal', 'rpc', 'rollback')),
	actor TEXT,
	method TEXT,
	text TEXT CHECK (text IS NULL OR json_valid(text)),
	paths TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(paths)),
	outcome TEXT NOT NULL CHECK (outcome IN ('started', 'applied',
		'restart', 'pending', 'skipped', 'rejected')),
	reason TEXT,
	restored_from INTEGER
) STRICT;
CREATE INDEX config_snapshots_hash ON config_snapshots(hash);

INSERT INTO meta(key, value) VALUES ('config_snapshots_keep', '0');
