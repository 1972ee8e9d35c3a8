-- 0002_pairing: device pairing (reference/ws-protocol.md §7.6, §10).
--
-- A device is identified by device_id = hex SHA-256 of its raw Ed25519
-- public key. A connect from an unknown device (or one asking for a new
-- role, more scopes, or with changed platform/deviceFamily) creates or
-- refreshes a pending request; an operator approves or rejects it. An
-- approved device gets one device token per role. Tokens are stored only
-- as hex SHA-256 hashes: the plain token is returned once, in hello-ok.
-- Decisions are also written to audit_log (action 'device.*').

-- Paired (approved) devices. roles and scopes are JSON arrays of strings:
-- the approved baseline that every token of the device is bounded by.
CREATE TABLE paired_device (
	device_id TEXT PRIMARY KEY,
	public_key TEXT NOT NULL,		-- base64url of the raw key
	display_name TEXT,
	platform TEXT,
	device_family TEXT,
	client_id TEXT,
	client_mode TEXT,
	roles TEXT NOT NULL CHECK (json_valid(roles)),
	scopes TEXT NOT NULL CHECK (json_valid(scopes)),
	remote_ip TEXT,
	approved_via TEXT NOT NULL DEFAULT 'operator', -- operator | silent
	created_at INTEGER NOT NULL,
	approved_at INTEGER NOT NULL
) STRICT;

-- One token per (device, role). token_hash = hex SHA-256 of the token.
CREATE TABLE device_token (
	device_id TEXT NOT NULL
		REFERENCES paired_device(device_id) ON DELETE CASCADE,
	role TEXT NOT NULL,
	token_hash TEXT NOT NULL CHECK (length(token_hash) = 64),
	scopes TEXT NOT NULL CHECK (json_valid(scopes)),
	created_at INTEGER NOT NULL,
	rotated_at INTEGER,
	revoked_at INTEGER,
	last_used_at INTEGER,
	PRIMARY KEY (device_id, role)
) STRICT;

-- Pending pairing requests (at most one per device). A request expires
-- 5 minutes after its last retry (expires_at); expired rows are pruned.
CREATE TABLE pairing_request (
	request_id TEXT PRIMARY KEY,
	device_id TEXT NOT NULL UNIQUE,
	public_key TEXT NOT NULL,
	display_name TEXT,
	platform TEXT,
	device_family TEXT,
	client_id TEXT,
	client_mode TEXT,
	role TEXT NOT NULL,
	scopes TEXT NOT NULL CHECK (json_valid(scopes)),
	remote_ip TEXT,
	reason TEXT NOT NULL,		-- not-paired | role-upgrade | ...
	is_repair INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX pairing_request_expires ON pairing_request(expires_at);
