-- 0007_channels: channel connections (doc/channels.md).
--
-- Every inbound message a channel account accepts from its network is
-- written to channel_ingress BEFORE the access policy runs or an agent is
-- asked, so an accepted message survives kill -9; the row then records
-- what became of it. DM pairing requests and the senders an operator
-- approved live in channel_pairing and channel_allow (approvals are
-- committed with synchronous=FULL).

CREATE TABLE channel_ingress (
	id INTEGER PRIMARY KEY,
	channel TEXT NOT NULL,			-- 'irc'
	account TEXT NOT NULL,			-- account id ('default')
	conversation TEXT NOT NULL,		-- '#room', or the sender nick for DMs
	sender TEXT NOT NULL,			-- stable sender id (nick!user@host)
	is_dm INTEGER NOT NULL,
	text TEXT NOT NULL,
	received_at INTEGER NOT NULL,		-- epoch ms
	-- pending -> dispatched -> answered | failed; or dropped | pairing
	status TEXT NOT NULL DEFAULT 'pending',
	reason TEXT,				-- drop reason (OpenClaw's words)
	session_key TEXT,
	run_id TEXT,
	updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX channel_ingress_status ON channel_ingress (status, id);
CREATE INDEX channel_ingress_received ON channel_ingress (received_at);

-- Pending DM pairing requests: one per (channel, account, sender), at most
-- 3 live per account, expiring 1 h after created_at.
CREATE TABLE channel_pairing (
	channel TEXT NOT NULL,
	account TEXT NOT NULL,
	sender_id TEXT NOT NULL,
	code TEXT NOT NULL,			-- 8 chars, A-Z 2-9 without O I
	request_id TEXT NOT NULL,		-- opaque id for channels.pairing.*
	meta TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(meta)),
	created_at INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	PRIMARY KEY (channel, account, sender_id)
) STRICT;
CREATE UNIQUE INDEX channel_pairing_code ON channel_pairing (code);

-- Senders approved for DMs (the pairing store's allowFrom).
CREATE TABLE channel_allow (
	channel TEXT NOT NULL,
	account TEXT NOT NULL,
	sender_id TEXT NOT NULL,
	approved_at INTEGER NOT NULL,
	approved_via TEXT NOT NULL DEFAULT 'pairing',
	PRIMARY KEY (channel, account, sender_id)
) STRICT;
