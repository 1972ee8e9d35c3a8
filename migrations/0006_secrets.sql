-- The shared secret store (issue 15): OpenClaw's secret_store_entries with
-- the value sealed (AES-256-GCM, nonce || ciphertext || tag, the name as
-- associated data) under a key kept outside the database
-- (state/secrets.key). Soft-deleted rows are purged after 30 days.
CREATE TABLE secret_store_entries (
	scope_kind TEXT NOT NULL DEFAULT 'team',
	scope_id TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL,
	value BLOB NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('secret', 'env')),
	created_at_ms INTEGER NOT NULL,
	updated_at_ms INTEGER NOT NULL,
	updated_by TEXT,
	deleted_at_ms INTEGER,
	allowed_hosts TEXT,
	PRIMARY KEY (scope_kind, scope_id, name)
) WITHOUT ROWID;
