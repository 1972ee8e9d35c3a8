/* Channel state in SQLite (migrations/0007_channels.sql): the durable
 * ingress table, DM pairing requests and approved senders. _tx functions
 * run inside a write job (store_fn); the others queue or read. */
#pragma once

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

struct store;

#define STORE_CHANNELS_CODE_LEN 8
#define STORE_CHANNELS_ALPHABET "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

struct store_channel_msg {
	const char *channel, *account, *conversation, *sender;
	int is_dm;
	const char *text;
	int64_t received_at;	/* epoch ms */
};

int store_channels_ingress_add_tx(sqlite3 *db,
				  const struct store_channel_msg *m,
				  int64_t *id);
/* Record what became of a row. NULL fields are left unchanged. */
int store_channels_ingress_mark_tx(sqlite3 *db, int64_t id,
				   const char *status, const char *reason,
				   const char *session_key, const char *run_id);
/* The same, queued (does not wait). */
int store_channels_ingress_mark(struct store *st, int64_t id,
				const char *status, const char *reason,
				const char *session_key, const char *run_id);
/* *yes = 1 when sender is approved for DMs on (channel, account). */
int store_channels_allowed_tx(sqlite3 *db, const char *channel,
			      const char *account, const char *sender,
			      int *yes);
/* A DM from an unknown sender under dmPolicy=pairing: drop expired
 * requests (older than ttl_ms), then refresh the sender's pending request
 * (*created = 0, *code its code), or create one with a new unique code
 * (*created = 1) unless cap requests are already pending for the account
 * (*created = 0, *code NULL). meta: JSON object text. */
int store_channels_pair_request_tx(sqlite3 *db, const char *channel,
				   const char *account, const char *sender,
				   const char *meta, int64_t now_ms,
				   int64_t ttl_ms, int cap, char **code,
				   int *created);
/* Pending, unexpired requests (channel/account NULL = any), oldest first:
 * [{channel, account, senderId, code, requestId, meta{}, createdAt,
 * lastSeenAt}] (times in epoch ms). */
int store_channels_pair_list(struct store *st, const char *channel,
			     const char *account, int64_t now_ms,
			     int64_t ttl_ms, json_t **out);
/* Approve (sender added to channel_allow, committed durably) or dismiss
 * the pending request whose requestId or code is id (account NULL: any).
 * *req: the request as listed. GW_ENOTFOUND when there is none. */
int store_channels_pair_resolve(struct store *st, const char *channel,
				const char *account, const char *id,
				int approve, int64_t now_ms, int64_t ttl_ms,
				json_t **req);
/* Rows of (channel, account) accepted but not answered by an earlier
 * process (status pending or dispatched), oldest first, at most limit:
 * [{id, conversation, sender, isDm, text}]. Reader connection. */
int store_channels_ingress_unfinished(struct store *st, const char *channel,
				      const char *account, int limit,
				      json_t **out);
/* Delete ingress rows received before before_ms (retention); *removed
 * may be NULL. Queued, waits for the commit. */
int store_channels_ingress_prune(struct store *st, int64_t before_ms,
				 int *removed);
/* A fresh pairing code (8 characters from STORE_CHANNELS_ALPHABET). */
void store_channels_code(char out[STORE_CHANNELS_CODE_LEN + 1]);
