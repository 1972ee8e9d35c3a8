/* Channel state: ingress, DM pairing requests, approved senders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-channels.h"
#include "store/store.h"

#define STORE_CHANNELS_CODE_TRIES 500

static int store_channels_fail(sqlite3 *db, const char *what)
{
	log_error("store", "%s: %s", what, db ? sqlite3_errmsg(db) : "?");
	return GW_ESTORE;
}

static int store_channels_prep(sqlite3 *db, const char *sql,
			       sqlite3_stmt **s)
{
	if (!db)
		return GW_ESTORE;
	*s = store_stmt(db, sql);
	return *s ? GW_OK : store_channels_fail(db, sql);
}

void store_channels_code(char out[STORE_CHANNELS_CODE_LEN + 1])
{
	uint8_t b[STORE_CHANNELS_CODE_LEN];

	util_random(b, sizeof(b));
	for (size_t i = 0; i < sizeof(b); i++)
		out[i] = STORE_CHANNELS_ALPHABET[b[i] & 31];
	out[STORE_CHANNELS_CODE_LEN] = 0;
}

int store_channels_ingress_add_tx(sqlite3 *db,
				  const struct store_channel_msg *m,
				  int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int r;

	r = store_channels_prep(db, "INSERT INTO channel_ingress (channel, "
		"account, conversation, sender, is_dm, text, received_at, "
		"updated_at) VALUES (?,?,?,?,?,?,?,?)", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, m->channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, m->account, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, m->conversation, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, m->sender, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 5, m->is_dm);
	sqlite3_bind_text(s, 6, m->text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, m->received_at);
	sqlite3_bind_int64(s, 8, m->received_at);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_channels_fail(db, "channel ingress add");
	else
		*id = sqlite3_last_insert_rowid(db);
	store_stmt_done(s);
	return r;
}

int store_channels_ingress_mark_tx(sqlite3 *db, int64_t id,
				   const char *status, const char *reason,
				   const char *session_key, const char *run_id)
{
	sqlite3_stmt *s = NULL;
	int r;

	r = store_channels_prep(db, "UPDATE channel_ingress SET "
		"status = coalesce(?, status), reason = coalesce(?, reason), "
		"session_key = coalesce(?, session_key), "
		"run_id = coalesce(?, run_id), updated_at = ? WHERE id = ?",
		&s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, session_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, util_now_ms());
	sqlite3_bind_int64(s, 6, id);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_channels_fail(db, "channel ingress mark");
	store_stmt_done(s);
	return r;
}

struct store_channels_mark {
	int64_t id;
	char *status, *reason, *session_key, *run_id;
};

static int store_channels_mark_fn(sqlite3 *db, void *arg)
{
	struct store_channels_mark *m = arg;

	return store_channels_ingress_mark_tx(db, m->id, m->status,
					      m->reason, m->session_key,
					      m->run_id);
}

static void store_channels_mark_free(struct store_channels_mark *m)
{
	free(m->status);
	free(m->reason);
	free(m->session_key);
	free(m->run_id);
	free(m);
}

static void store_channels_mark_done(int rc, void *arg)
{
	(void)rc;
	store_channels_mark_free(arg);
}

static char *store_channels_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int store_channels_ingress_mark(struct store *st, int64_t id,
				const char *status, const char *reason,
				const char *session_key, const char *run_id)
{
	struct store_channels_mark *m = xcalloc(1, sizeof(*m));
	int r;

	m->id = id;
	m->status = store_channels_dup(status);
	m->reason = store_channels_dup(reason);
	m->session_key = store_channels_dup(session_key);
	m->run_id = store_channels_dup(run_id);
	r = store_write(st, store_channels_mark_fn, m,
			store_channels_mark_done);
	if (r != GW_OK)
		store_channels_mark_free(m);
	return r;
}

int store_channels_allowed_tx(sqlite3 *db, const char *channel,
			      const char *account, const char *sender,
			      int *yes)
{
	sqlite3_stmt *s = NULL;
	int r, rc;

	*yes = 0;
	r = store_channels_prep(db, "SELECT 1 FROM channel_allow WHERE "
		"channel = ? AND account = ? AND sender_id = ? "
		"COLLATE NOCASE", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, account, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, sender, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*yes = 1;
	else if (rc != SQLITE_DONE)
		r = store_channels_fail(db, "channel allowed");
	store_stmt_done(s);
	return r;
}

/* OpenClaw's opaque request id: base64url(SHA-256(channel \0 account \0
 * sender \0 createdAt ISO))[0..32). */
static char *store_channels_request_id(const char *channel,
				       const char *account,
				       const char *sender, int64_t created)
{
	char iso[32];
	char *msg, *b64;
	uint8_t h[32];
	time_t t = (time_t)(created / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(iso + n, sizeof(iso) - n, ".%03dZ", (int)(created % 1000));
	msg = xasprintf("%s%c%s%c%s%c%s", channel, 0, account, 0, sender, 0,
			iso);
	n = strlen(channel) + strlen(account) + strlen(sender) +
	    strlen(iso) + 3;
	util_sha256(msg, n, h);
	free(msg);
	b64 = util_b64url_encode(h, sizeof(h));
	b64[32] = 0;
	return b64;
}

int store_channels_pair_request_tx(sqlite3 *db, const char *channel,
				   const char *account, const char *sender,
				   const char *meta, int64_t now_ms,
				   int64_t ttl_ms, int cap, char **code,
				   int *created)
{
	sqlite3_stmt *s = NULL;
	char c[STORE_CHANNELS_CODE_LEN + 1];
	char *rid = NULL;
	int r, rc, tries;
	int64_t pending = 0;

	*code = NULL;
	*created = 0;
	r = store_channels_prep(db, "DELETE FROM channel_pairing WHERE "
				"created_at <= ?", &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, now_ms - ttl_ms);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_channels_fail(db, "channel pairing prune");
	store_stmt_done(s);
	if (r)
		return r;
	r = store_channels_prep(db, "UPDATE channel_pairing SET "
		"last_seen_at = ? WHERE channel = ? AND account = ? AND "
		"sender_id = ? RETURNING code", &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, now_ms);
	sqlite3_bind_text(s, 2, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, account, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, sender, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*code = xstrdup((const char *)sqlite3_column_text(s, 0));
	else if (rc != SQLITE_DONE)
		r = store_channels_fail(db, "channel pairing refresh");
	store_stmt_done(s);
	if (r || *code)
		return r;
	r = store_channels_prep(db, "SELECT count(*) FROM channel_pairing "
				"WHERE channel = ? AND account = ?", &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, account, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		pending = sqlite3_column_int64(s, 0);
	else
		r = store_channels_fail(db, "channel pairing count");
	store_stmt_done(s);
	if (r || pending >= cap)
		return r;
	rid = store_channels_request_id(channel, account, sender, now_ms);
	r = store_channels_prep(db, "INSERT OR IGNORE INTO channel_pairing "
		"(channel, account, sender_id, code, request_id, meta, "
		"created_at, last_seen_at) VALUES (?,?,?,?,?,json(?),?,?)", &s);
	if (r)
		goto out;
	for (tries = 0; tries < STORE_CHANNELS_CODE_TRIES; tries++) {
		store_channels_code(c);
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, account, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, sender, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, c, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, rid, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 6, meta ? meta : "{}", -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 7, now_ms);
		sqlite3_bind_int64(s, 8, now_ms);
		if (sqlite3_step(s) != SQLITE_DONE) {
			r = store_channels_fail(db, "channel pairing add");
			goto out;
		}
		if (sqlite3_changes(db) == 1) {
			*code = xstrdup(c);
			*created = 1;
			break;
		}
	}
	if (!*code)
		r = GW_EINTERNAL;
out:
	store_stmt_done(s);
	free(rid);
	return r;
}

static json_t *store_channels_pair_row(sqlite3_stmt *s)
{
	json_t *meta = json_loads((const char *)sqlite3_column_text(s, 5),
				  0, NULL);

	if (!json_is_object(meta)) {
		json_decref(meta);
		meta = json_object();
	}
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:I}",
		"channel", (const char *)sqlite3_column_text(s, 0),
		"account", (const char *)sqlite3_column_text(s, 1),
		"senderId", (const char *)sqlite3_column_text(s, 2),
		"code", (const char *)sqlite3_column_text(s, 3),
		"requestId", (const char *)sqlite3_column_text(s, 4),
		"meta", meta,
		"createdAt", (json_int_t)sqlite3_column_int64(s, 6),
		"lastSeenAt", (json_int_t)sqlite3_column_int64(s, 7));
}

#define STORE_CHANNELS_PAIR_COLS "channel, account, sender_id, code, " \
	"request_id, meta, created_at, last_seen_at"

int store_channels_pair_list(struct store *st, const char *channel,
			     const char *account, int64_t now_ms,
			     int64_t ttl_ms, json_t **out)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	json_t *a = json_array();
	int r, rc;

	*out = NULL;
	r = store_channels_prep(db, "SELECT " STORE_CHANNELS_PAIR_COLS
		" FROM channel_pairing WHERE created_at > ? AND "
		"(?2 IS NULL OR channel = ?2) AND (?3 IS NULL OR account = ?3) "
		"ORDER BY created_at, sender_id LIMIT 1000", &s);
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, now_ms - ttl_ms);
	if (channel)
		sqlite3_bind_text(s, 2, channel, -1, SQLITE_STATIC);
	if (account)
		sqlite3_bind_text(s, 3, account, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, store_channels_pair_row(s));
	if (rc != SQLITE_DONE)
		r = store_channels_fail(db, "channel pairing list");
out:
	store_stmt_done(s);
	if (r == GW_OK)
		*out = a;
	else
		json_decref(a);
	return r;
}

struct store_channels_resolve {
	const char *channel, *account, *id;
	int approve;
	int64_t now, ttl;
	json_t *req;
};

static int store_channels_resolve_fn(sqlite3 *db, void *arg)
{
	struct store_channels_resolve *x = arg;
	sqlite3_stmt *s = NULL;
	int r, rc;

	r = store_channels_prep(db, "DELETE FROM channel_pairing WHERE "
		"channel = ?1 AND (?2 IS NULL OR account = ?2) AND "
		"(request_id = ?3 OR code = upper(?3)) AND created_at > ?4 "
		"RETURNING " STORE_CHANNELS_PAIR_COLS, &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, x->channel, -1, SQLITE_STATIC);
	if (x->account)
		sqlite3_bind_text(s, 2, x->account, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, x->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, x->now - x->ttl);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		x->req = store_channels_pair_row(s);
	else if (rc == SQLITE_DONE)
		r = GW_ENOTFOUND;
	else
		r = store_channels_fail(db, "channel pairing resolve");
	store_stmt_done(s);
	if (r || !x->approve)
		return r;
	r = store_channels_prep(db, "INSERT OR REPLACE INTO channel_allow "
		"(channel, account, sender_id, approved_at) VALUES (?,?,?,?)",
		&s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, json_string_value(json_object_get(x->req,
				"channel")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, json_string_value(json_object_get(x->req,
				"account")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, json_string_value(json_object_get(x->req,
				"senderId")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, x->now);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_channels_fail(db, "channel allow add");
	store_stmt_done(s);
	if (r == GW_OK)
		r = store_audit_tx(db, NULL, "channel.pairing.approve",
				   json_string_value(json_object_get(x->req,
						     "senderId")), x->req,
				   NULL);
	return r;
}

int store_channels_pair_resolve(struct store *st, const char *channel,
				const char *account, const char *id,
				int approve, int64_t now_ms, int64_t ttl_ms,
				json_t **req)
{
	struct store_channels_resolve x = { channel, account, id, approve,
					    now_ms, ttl_ms, NULL };
	int r;

	*req = NULL;
	r = store_write_sync(st, store_channels_resolve_fn, &x,
			     approve ? STORE_DURABLE : 0);
	if (r == GW_OK)
		*req = x.req;
	else
		json_decref(x.req);
	return r;
}

int store_channels_ingress_unfinished(struct store *st, const char *channel,
				      const char *account, int limit,
				      json_t **out)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = NULL;
	json_t *a = json_array();
	int r, rc;

	*out = NULL;
	r = store_channels_prep(db, "SELECT id, conversation, sender, is_dm, "
		"text FROM channel_ingress WHERE channel = ? AND account = ? "
		"AND status IN ('pending', 'dispatched') ORDER BY id LIMIT ?",
		&s);
	if (r)
		goto out;
	sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, account, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:I,s:s,s:s,s:b,s:s}",
			"id", (json_int_t)sqlite3_column_int64(s, 0),
			"conversation", (const char *)sqlite3_column_text(s, 1),
			"sender", (const char *)sqlite3_column_text(s, 2),
			"isDm", sqlite3_column_int(s, 3),
			"text", (const char *)sqlite3_column_text(s, 4)));
	if (rc != SQLITE_DONE)
		r = store_channels_fail(db, "channel ingress unfinished");
out:
	store_stmt_done(s);
	if (r == GW_OK)
		*out = a;
	else
		json_decref(a);
	return r;
}

struct store_channels_prune {
	int64_t before;
	int removed;
};

static int store_channels_prune_fn(sqlite3 *db, void *arg)
{
	struct store_channels_prune *p = arg;
	sqlite3_stmt *s = NULL;
	int r;

	r = store_channels_prep(db, "DELETE FROM channel_ingress WHERE "
				"received_at < ?", &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, p->before);
	if (sqlite3_step(s) != SQLITE_DONE)
		r = store_channels_fail(db, "channel ingress prune");
	else
		p->removed = sqlite3_changes(db);
	store_stmt_done(s);
	return r;
}

int store_channels_ingress_prune(struct store *st, int64_t before_ms,
				 int *removed)
{
	struct store_channels_prune p = { before_ms, 0 };
	int r = store_write_sync(st, store_channels_prune_fn, &p, 0);

	if (removed)
		*removed = r == GW_OK ? p.removed : 0;
	return r;
}
