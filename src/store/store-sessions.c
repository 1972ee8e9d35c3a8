/* Sessions, transcripts, runs and idempotency (store-sessions.h): the SQL
 * of the run path. Every statement is a constant prepared once per
 * connection (store_stmt) and reset after use (store_stmt_done). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-sessions.h"
#include "store/store.h"

/* Writer thread only: when the next idempotency sweep is due, and the
 * newest idempotency row id seen at each of the sweeps of the last
 * STORE_SESSION_IDEM_TTL_MS (a ring, oldest first). */
static int64_t store_session_next_sweep;
#define SESS_MARKS 512	/* > IDEM_TTL / SWEEP_MS sweeps */
static struct {
	int64_t at, id;
} sess_marks[SESS_MARKS];
static int sess_mark_first, sess_marks_n;

/* Random bytes for ids from a per-thread pool filled by one getrandom(2)
 * per 32 ids (a run used 6 getrandom calls). */
#define STORE_RAND_POOL 320
static __thread unsigned char store_rand_pool[STORE_RAND_POOL];
static __thread size_t store_rand_left;

static void store_rand(unsigned char *b, size_t n)
{
	if (store_rand_left < n) {
		util_random(store_rand_pool, sizeof(store_rand_pool));
		store_rand_left = sizeof(store_rand_pool);
	}
	store_rand_left -= n;
	memcpy(b, store_rand_pool + store_rand_left, n);
	/* Each byte is handed out once. */
	memset(store_rand_pool + store_rand_left, 0, n);
}

void store_uuid7(char out[37])
{
	unsigned char b[16];
	uint64_t ms = (uint64_t)util_now_ms();
	static const char hex[] = "0123456789abcdef";
	int i, o = 0;

	store_rand(b + 6, 10);
	for (i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = 0;
}

/* ---- compact JSON text, jansson's JSON_COMPACT byte for byte ----------- */

/* json_dumps spends most of its time outside the text: a loop check that
 * formats every container's address into a hash table, a callback per
 * piece. The run path dumps a few small objects per request (transcript
 * messages, the result, the upstream body, the reply), so it has its own
 * writer. */
static void sess_jgrow(struct store_json_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;

	while (cap < b->len + n + 1)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void store_json_raw(struct store_json_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
		sess_jgrow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void sess_jc(struct store_json_buf *b, char c)
{
	if (b->len + 2 > b->cap)
		sess_jgrow(b, 1);
	b->p[b->len++] = c;
}

static int sess_json_put(struct store_json_buf *b, const json_t *v, int depth);

/* v in decimal into out (at least 21 bytes, not terminated): its length.
 * snprintf's "%lld" costs ~750 instructions, this ~40. */
static size_t sess_itoa(char *out, int64_t v)
{
	char tmp[20];
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t n = 0, len = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		out[len++] = '-';
	while (n)
		out[len++] = tmp[--n];
	return len;
}

void store_json_str(struct store_json_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, run = 0;
	char esc[7];

	sess_jc(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *e = NULL;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		store_json_raw(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\b': e = "\\b"; break;
		case '\f': e = "\\f"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			esc[6] = 0;
			e = esc;
		}
		store_json_raw(b, e, strlen(e));
	}
	store_json_raw(b, s + run, n - run);
	sess_jc(b, '"');
}

static int sess_json_put(struct store_json_buf *b, const json_t *v, int depth)
{
	void *it;
	json_t *x;
	size_t i;
	char num[32], *t;
	int first = 1;

	if (depth > 2048)	/* jansson's default nesting bound */
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		sess_jc(b, '{');
		for (it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			if (!first)
				sess_jc(b, ',');
			first = 0;
			store_json_str(b, json_object_iter_key(it),
				      json_object_iter_key_len(it));
			sess_jc(b, ':');
			if (sess_json_put(b, json_object_iter_value(it),
					  depth + 1) < 0)
				return -1;
		}
		sess_jc(b, '}');
		return 0;
	case JSON_ARRAY:
		sess_jc(b, '[');
		json_array_foreach(v, i, x) {
			if (i)
				sess_jc(b, ',');
			if (sess_json_put(b, x, depth + 1) < 0)
				return -1;
		}
		sess_jc(b, ']');
		return 0;
	case JSON_STRING:
		store_json_str(b, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_INTEGER:
		store_json_raw(b, num, sess_itoa(num, json_integer_value(v)));
		return 0;
	case JSON_REAL:
		/* Rare here; jansson's own rules (%.17g, ".0", exponent). */
		t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!t)
			return -1;
		store_json_raw(b, t, strlen(t));
		free(t);
		return 0;
	case JSON_TRUE:
		store_json_raw(b, "true", 4);
		return 0;
	case JSON_FALSE:
		store_json_raw(b, "false", 5);
		return 0;
	case JSON_NULL:
		store_json_raw(b, "null", 4);
		return 0;
	}
	return -1;
}

int store_json_val(struct store_json_buf *b, const json_t *v)
{
	return sess_json_put(b, v, 0);
}

void store_json_int(struct store_json_buf *b, int64_t v)
{
	char num[24];

	store_json_raw(b, num, sess_itoa(num, v));
}

char *store_json_done(struct store_json_buf *b, size_t *len)
{
	char *p;

	sess_jc(b, 0);		/* NUL-terminated */
	b->len--;
	if (len)
		*len = b->len;
	p = b->p;
	memset(b, 0, sizeof(*b));
	return p;
}

int store_json_utf8(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k, len;
	uint32_t cp;

	while (i < n) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if (u[i] >= 0xC2 && u[i] <= 0xDF) {
			len = 2;
			cp = u[i] & 0x1F;
		} else if (u[i] >= 0xE0 && u[i] <= 0xEF) {
			len = 3;
			cp = u[i] & 0x0F;
		} else if (u[i] >= 0xF0 && u[i] <= 0xF4) {
			len = 4;
			cp = u[i] & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((u[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (u[i + k] & 0x3F);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return 0;
		i += len;
	}
	return 1;
}

char *store_json_dump(const json_t *v, size_t *len)
{
	struct store_json_buf b = {0};

	if ((!json_is_object(v) && !json_is_array(v)) ||
	    sess_json_put(&b, v, 0) < 0) {
		free(b.p);
		return NULL;
	}
	return store_json_done(&b, len);
}

static int sess_fail(sqlite3 *db, const char *what)
{
	log_warn("store", "%s: %s", what, sqlite3_errmsg(db));
	return GW_ESTORE;
}

/* The cached statement for sql (a constant) on db. */
static int sess_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s)
{
	*s = store_stmt(db, sql);
	return *s ? GW_OK : GW_ESTORE;
}

static const char *sess_col(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

/* Plain text of a message content (string or [{type:text,text}]). */
char *store_session_text(const json_t *content)
{
	const json_t *p;
	char *out = NULL, *tmp;
	const char *t;
	size_t i;

	if (json_is_string(content))
		return xstrdup(json_string_value(content));
	json_array_foreach(content, i, p) {
		t = json_string_value(json_object_get(p, "text"));
		if (!t)
			continue;
		tmp = out ? xasprintf("%s\n%s", out, t) : xstrdup(t);
		free(out);
		out = tmp;
	}
	return out ? out : xstrdup("");
}

static const char *store_session_kind(const char *key)
{
	if (strstr(key, ":group:") || strstr(key, ":channel:"))
		return "group";
	if (strcmp(key, "global") == 0)
		return "global";
	return "direct";
}

/* A GatewaySessionRow from a statement over STORE_SESSION_ROW_COLS. */
json_t *store_session_row_json(sqlite3_stmt *s)
{
	const char *key = sess_col(s, 0), *v, *slash;
	json_t *row, *settings, *sv;
	const char *k;
	int64_t in, out;

	row = json_pack("{s:s,s:s,s:s,s:s}", "key", key, "kind",
			store_session_kind(key), "sessionId", sess_col(s, 1),
			"agentId", sess_col(s, 2));
	if ((v = sess_col(s, 3)))
		json_object_set_new(row, "channel", json_string(v));
	if ((v = sess_col(s, 4))) {
		json_object_set_new(row, "label", json_string(v));
		json_object_set_new(row, "displayName", json_string(v));
	}
	settings = json_loads(sess_col(s, 5) ? sess_col(s, 5) : "{}", 0,
			      NULL);
	json_object_foreach(settings, k, sv) {
		if (strcmp(k, "model") == 0 || json_object_get(row, k))
			continue;
		json_object_set(row, k, sv);
	}
	if ((v = sess_col(s, 6)))
		json_object_set_new(row, "status", json_string(v));
	if ((v = sess_col(s, 7)) && *v)
		json_object_set_new(row, "lastRunId", json_string(v));
	if ((v = sess_col(s, 8)))
		json_object_set_new(row, "lastRunError", json_string(v));
	v = json_string_value(json_object_get(settings, "model"));
	if (v)
		json_object_set_new(row, "modelOverrideSource",
				    json_string("user"));
	else
		v = sess_col(s, 9);
	if (v && (slash = strchr(v, '/'))) {
		json_object_set_new(row, "modelProvider",
			json_stringn(v, (size_t)(slash - v)));
		json_object_set_new(row, "model", json_string(slash + 1));
	} else if (v) {
		json_object_set_new(row, "model", json_string(v));
	}
	json_decref(settings);
	in = sqlite3_column_int64(s, 10);
	out = sqlite3_column_int64(s, 11);
	json_object_set_new(row, "inputTokens", json_integer(in));
	json_object_set_new(row, "outputTokens", json_integer(out));
	json_object_set_new(row, "totalTokens", json_integer(in + out));
	if ((v = sess_col(s, 13)))
		json_object_set_new(row, "lastMessagePreview", json_string(v));
	json_object_set_new(row, "createdAt",
			    json_integer(sqlite3_column_int64(s, 14)));
	json_object_set_new(row, "updatedAt",
			    json_integer(sqlite3_column_int64(s, 15)));
	json_object_set_new(row, "isMain",
		json_boolean(strlen(key) > 5 &&
			     strcmp(key + strlen(key) - 5, ":main") == 0));
	return row;
}

json_t *store_session_row_load(sqlite3 *db, const char *key)
{
	sqlite3_stmt *s = NULL;
	json_t *row = NULL;

	if (sess_prep(db, "SELECT " STORE_SESSION_ROW_COLS " FROM sessions "
			 "WHERE key = ?", &s) != GW_OK)
		return NULL;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		row = store_session_row_json(s);
	store_stmt_done(s);
	return row;
}

void store_session_event(json_t *events, const char *event, const char *key,
			 json_t *payload)
{
	if (!events) {
		json_decref(payload);
		return;
	}
	json_array_append_new(events, json_pack("{s:s,s:s,s:o}", "event",
						event, "key", key, "payload",
						payload));
}

/* Queue a sessions.changed event carrying the current row. */
void store_session_changed(sqlite3 *db, json_t *events, const char *key,
			   const char *reason, const char *run_id)
{
	json_t *p;

	if (!events)
		return;		/* nobody listens: no row load */
	p = store_session_row_load(db, key);
	if (!p)
		p = json_object();
	json_object_del(p, "key");
	json_object_set_new(p, "sessionKey", json_string(key));
	json_object_set_new(p, "reason", json_string(reason));
	json_object_set_new(p, "ts", json_integer(util_now_ms()));
	if (run_id)
		json_object_set_new(p, "runId", json_string(run_id));
	store_session_event(events, "sessions.changed", key, p);
}

/* Create the row when absent (tx). */
int store_session_ensure_tx(sqlite3 *db, const char *key,
			    const char *agent_id, const char *channel)
{
	sqlite3_stmt *s = NULL;
	char sid[37];
	int64_t now = util_now_ms();
	int r;

	store_uuid7(sid);
	r = sess_prep(db, "INSERT INTO sessions(key, session_id, "
			 "agent_id, channel, created_at, updated_at) "
			 "VALUES(?,?,?,?,?,?) ON CONFLICT(key) DO NOTHING",
			 &s);
	if (r != GW_OK)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, sid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, agent_id, -1, SQLITE_TRANSIENT);
	store_bind_text(s, 4, channel);
	sqlite3_bind_int64(s, 5, now);
	sqlite3_bind_int64(s, 6, now);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "session insert");
	store_stmt_done(s);
	return r;
}

/* Insert msg as transcript row seq of session sid (the sessions row was
 * bumped by the caller) and queue its session.message event (tx). */
static int sess_transcript_insert(sqlite3 *db, const char *key,
				  const char *sid, int64_t seq, json_t *msg,
				  const char *text,
				  const struct store_session_meta *m,
				  json_t *events, int64_t now, char **id_out)
{
	sqlite3_stmt *s = NULL;
	char mid[37], *mjson = NULL;
	const char *role = json_string_value(json_object_get(msg, "role"));
	int r;

	store_uuid7(mid);
	mjson = store_json_dump(msg, NULL);
	r = sess_prep(db, "INSERT INTO transcript(session_key, session_id, "
			 "seq, message_id, role, text, message, run_id, "
			 "status, input_tokens, output_tokens, model, "
			 "created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, seq);
	sqlite3_bind_text(s, 4, mid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, role ? role : "other", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, text, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, mjson, -1, SQLITE_STATIC);
	store_bind_static(s, 8, m ? m->run_id : NULL);
	store_bind_static(s, 9, m ? m->status : NULL);
	if (m && (m->in_tok || m->out_tok)) {
		sqlite3_bind_int64(s, 10, m->in_tok);
		sqlite3_bind_int64(s, 11, m->out_tok);
	}
	store_bind_static(s, 12, m ? m->model : NULL);
	sqlite3_bind_int64(s, 13, now);
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = sess_fail(db, "transcript append");
		goto out;
	}
	if (events)
		store_session_event(events, "session.message", key,
			json_pack("{s:s,s:O,s:s,s:I,s:s}", "sessionKey", key,
				"message", msg, "messageId", mid,
				"messageSeq", (json_int_t)seq, "sessionId",
				sid));
	if (id_out)
		*id_out = xstrdup(mid);
	r = GW_OK;
out:
	store_stmt_done(s);
	free(mjson);
	return r;
}

/* Read the RETURNING session_id, message_count row of a bump: 1 with
 * *sid (new string) and *count, 0 when no row matched, -1 on error. */
static int sess_bumped(sqlite3 *db, sqlite3_stmt *s, const char *what,
		       char **sid, int64_t *count)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW) {
		sess_fail(db, what);
		return -1;
	}
	*sid = xstrdup(sess_col(s, 0));
	*count = sqlite3_column_int64(s, 1);
	if (sqlite3_step(s) != SQLITE_DONE) {
		sess_fail(db, what);
		free(*sid);
		*sid = NULL;
		return -1;
	}
	return 1;
}

/* The session id and message count of key's row, read after the
 * statement that bumped it (tx): as sess_bumped. A separate SELECT, not
 * RETURNING on the bump: SQLite runs a RETURNING statement to its end
 * into an ephemeral table first (measured: 8-9k instructions more per
 * statement than the point lookup, with the start and the end of every
 * watched run doing one). */
static int sess_row_count(sqlite3 *db, const char *key, const char *what,
			  char **sid, int64_t *count)
{
	sqlite3_stmt *s = store_stmt(db, "SELECT session_id, message_count "
				     "FROM sessions WHERE key = ?");
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sess_bumped(db, s, what, sid, count);
	store_stmt_done(s);
	return rc;
}

/* Append one message to the current session of key and bump the row
 * (tx). Queues a session.message event. *id_out (may be NULL) gets the
 * message id. */
int store_session_append_tx(sqlite3 *db, const char *key, json_t *msg,
			    const struct store_session_meta *m, json_t *events,
			    char **id_out)
{
	sqlite3_stmt *s = NULL;
	char *text = NULL, *preview = NULL, *sid = NULL;
	int64_t seq = 0, now = util_now_ms();
	int r, rc;

	text = store_session_text(json_object_get(msg, "content"));
	preview = xstrndup(text, STORE_SESSION_PREVIEW_LEN);
	/* Bump the row and learn its session id and the new seq at once. */
	r = sess_prep(db, "UPDATE sessions SET message_count = "
		      "message_count + 1, last_preview = ?, updated_at = ? "
		      "WHERE key = ? RETURNING session_id, message_count", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_text(s, 1, preview, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, key, -1, SQLITE_TRANSIENT);
	rc = sess_bumped(db, s, "session bump", &sid, &seq);
	store_stmt_done(s);
	s = NULL;
	if (rc <= 0) {
		r = rc == 0 ? GW_ENOTFOUND : GW_ESTORE;
		goto out;
	}
	r = sess_transcript_insert(db, key, sid, seq, msg, text, m, events,
				   now, id_out);
out:
	store_stmt_done(s);
	free(sid);
	free(text);
	free(preview);
	return r;
}

/* The plain texts of the messages of a run's start (n of them; at least
 * one slot) and their release. */
static char **sess_texts(const json_t *msgs, size_t *n)
{
	char **texts;
	json_t *msg;
	size_t i;

	*n = json_array_size(msgs);
	texts = xcalloc(*n ? *n : 1, sizeof(*texts));
	json_array_foreach(msgs, i, msg)
		texts[i] = store_session_text(json_object_get(msg, "content"));
	return texts;
}

static void sess_texts_free(char **texts, size_t n)
{
	size_t i;

	if (texts)
		for (i = 0; i < n; i++)
			free(texts[i]);
	free(texts);
}

/* Step a session upsert ... RETURNING session_id, message_count and
 * release it: GW_OK with *sid and *count. */
static int sess_bump_step(sqlite3 *db, sqlite3_stmt *s, char **sid,
			  int64_t *count)
{
	int rc = sess_bumped(db, s, "session run", sid, count);

	store_stmt_done(s);
	if (rc <= 0)
		return rc == 0 ? sess_fail(db, "session run (no row)")
			       : GW_ESTORE;
	return GW_OK;
}

/* The messages of a run's start as transcript rows first_seq... */
static int sess_insert_prompts(sqlite3 *db, const char *key,
			       const char *sid, int64_t first_seq,
			       const json_t *msgs, char **texts,
			       const struct store_session_meta *m,
			       json_t *events, int64_t at)
{
	json_t *msg;
	size_t i;
	int r;

	json_array_foreach(msgs, i, msg) {
		r = sess_transcript_insert(db, key, sid, first_seq + (int64_t)i,
					   msg, texts[i], m, events, at, NULL);
		if (r != GW_OK)
			return r;
	}
	return GW_OK;
}

/* Parameters 1-4 of a start's session upsert: key, session_id (for a new
 * row), agent_id, channel. Static binds: the strings outlive the step
 * (store_stmt_done clears the bindings), as in the run path's inserts. */
static void sess_bind_start(sqlite3_stmt *s,
			    const struct store_session_begin *b,
			    const char *sid)
{
	sqlite3_bind_text(s, 1, b->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, b->agent_id, -1, SQLITE_STATIC);
	store_bind_static(s, 4, b->channel);
}

/* The idempotency sweep, at most once per STORE_SESSION_SWEEP_MS.
 * Reads skip expired rows; the sweep only bounds the table. The rows are
 * in insertion order (migration 0009) and a row is inserted when its
 * expiry is set, STORE_SESSION_IDEM_TTL_MS (the shortest) or more ahead:
 * so only rows at or below the newest id seen that long ago can have
 * expired, and the sweep walks those (the few left there, e.g. runs still
 * going, and the ones added since the last sweep), not the table, without
 * an index on expires_at. After a restart nothing is swept until a sweep
 * of this process is that old. */
int store_session_sweep_tx(sqlite3 *db, int64_t now)
{
	sqlite3_stmt *s;
	int64_t bound = 0, top = 0;
	int r = GW_OK;

	if (now < store_session_next_sweep)
		return GW_OK;
	while (sess_marks_n > 0 &&
	       (sess_marks[sess_mark_first].at <=
			now - STORE_SESSION_IDEM_TTL_MS ||
		sess_marks_n == SESS_MARKS)) {
		bound = sess_marks[sess_mark_first].id;
		sess_mark_first = (sess_mark_first + 1) % SESS_MARKS;
		sess_marks_n--;
	}
	if (bound > 0) {
		s = store_stmt(db, "DELETE FROM idempotency WHERE id <= ? AND "
			       "expires_at < ?");
		if (!s)
			return GW_ESTORE;
		sqlite3_bind_int64(s, 1, bound);
		sqlite3_bind_int64(s, 2, now);
		if (sqlite3_step(s) != SQLITE_DONE)
			r = sess_fail(db, "idempotency sweep");
		store_stmt_done(s);
		if (r != GW_OK)
			return r;
	}
	s = store_stmt(db, "SELECT max(id) FROM idempotency");
	if (!s)
		return GW_ESTORE;
	if (sqlite3_step(s) == SQLITE_ROW)
		top = sqlite3_column_int64(s, 0);
	else
		r = sess_fail(db, "idempotency sweep");
	store_stmt_done(s);
	if (r != GW_OK)
		return r;
	sess_marks[(sess_mark_first + sess_marks_n) % SESS_MARKS].at = now;
	sess_marks[(sess_mark_first + sess_marks_n) % SESS_MARKS].id = top;
	sess_marks_n++;
	store_session_next_sweep = now + STORE_SESSION_SWEEP_MS;
	return GW_OK;
}

/* The idempotency row of a run that is started or acknowledged (tx);
 * *id (may be NULL) gets its rowid. */
static int sess_idem_running(sqlite3 *db, const char *run_id,
			     const char *key, int64_t now, int64_t *id)
{
	sqlite3_stmt *s = NULL;
	int r = sess_prep(db, "INSERT OR REPLACE INTO idempotency(run_id, "
			  "session_key, status, created_at, expires_at) "
			  "VALUES(?,?,'running',?,?)", &s);

	if (r != GW_OK)
		return r;
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, now + STORE_SESSION_RUNNING_TTL_MS);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "idempotency");
	if (r == GW_OK && id)
		*id = sqlite3_last_insert_rowid(db);
	store_stmt_done(s);
	return r;
}

/* A waiting run's run_pending row goes (its start or its end) (tx). */
static int sess_pending_del(sqlite3 *db, const char *run_id)
{
	sqlite3_stmt *s = NULL;
	int r = sess_prep(db, "DELETE FROM run_pending WHERE run_id = ?", &s);

	if (r != GW_OK)
		return r;
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "run_pending delete");
	store_stmt_done(s);
	return r;
}

int store_session_pending_tx(sqlite3 *db,
			     const struct store_session_pending *p)
{
	sqlite3_stmt *s = NULL;
	char *mjson = NULL;
	int64_t now = util_now_ms();
	int r;

	if ((r = store_session_sweep_tx(db, now)) != GW_OK)
		return r;
	mjson = store_json_dump(p->messages, NULL);
	r = sess_prep(db, "INSERT OR REPLACE INTO run_pending(run_id, "
		      "session_key, seq, agent_id, channel, messages, "
		      "created_at) VALUES(?,?,?,?,?,?,?)", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_text(s, 1, p->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, p->seq);
	sqlite3_bind_text(s, 4, p->agent_id, -1, SQLITE_STATIC);
	store_bind_static(s, 5, p->channel);
	sqlite3_bind_text(s, 6, mjson ? mjson : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, now);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "run_pending");
	store_stmt_done(s);
	if (r == GW_OK)
		r = sess_idem_running(db, p->run_id, p->key, now, NULL);
out:
	free(mjson);
	return r;
}

int store_session_begin_tx(sqlite3 *db, struct store_session_begin *b,
			   json_t *events)
{
	sqlite3_stmt *s = NULL;
	struct store_session_meta m = {.run_id = b->run_id};
	char sid[37], **texts = NULL, *preview = NULL, *cur = NULL;
	int64_t count = 0, now = util_now_ms();
	size_t n = 0;
	int r, rc;

	if ((r = store_session_sweep_tx(db, now)) != GW_OK)
		return r;
	/* Create the row or mark it running and count the new messages in
	 * one statement, then read their session id and last seq. */
	texts = sess_texts(b->messages, &n);
	if (n)
		preview = xstrndup(texts[n - 1], STORE_SESSION_PREVIEW_LEN);
	store_uuid7(sid);
	r = sess_prep(db, "INSERT INTO sessions(key, session_id, agent_id, "
		      "channel, status, last_run_id, created_at, updated_at, "
		      "message_count, last_preview) "
		      "VALUES(?,?,?,?,'running',?,?,?,?,?) ON CONFLICT(key) DO "
		      "UPDATE SET status = 'running', last_run_id = "
		      "excluded.last_run_id, last_error = NULL, channel = "
		      "coalesce(excluded.channel, channel), updated_at = "
		      "excluded.updated_at, message_count = message_count + "
		      "excluded.message_count, last_preview = "
		      "coalesce(excluded.last_preview, last_preview)", &s);
	if (r != GW_OK)
		goto out;
	sess_bind_start(s, b, sid);
	sqlite3_bind_text(s, 5, b->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, now);
	sqlite3_bind_int64(s, 7, now);
	sqlite3_bind_int64(s, 8, (sqlite3_int64)n);
	store_bind_static(s, 9, preview);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "session start");
	store_stmt_done(s);
	s = NULL;
	if (r != GW_OK)
		goto out;
	if (b->known) {
		/* The upsert inserted sid with n messages, or added n to
		 * the row read earlier in this transaction. */
		cur = xstrdup(b->has_row ? b->prev_sid : sid);
		count = (b->has_row ? b->prev_count : 0) + (int64_t)n;
	} else {
		rc = sess_row_count(db, b->key, "session start", &cur, &count);
		if (rc <= 0) {
			r = rc == 0 ? sess_fail(db, "session start (no row)")
				    : GW_ESTORE;
			goto out;
		}
	}
	r = sess_insert_prompts(db, b->key, cur, count - (int64_t)n + 1,
				b->messages, texts, &m, events, now);
	if (r != GW_OK)
		goto out;
	if (strlen(cur) < sizeof(b->sid))
		memcpy(b->sid, cur, strlen(cur) + 1);
	else
		b->sid[0] = '\0';	/* the end reads it back */
	b->count = count;
	r = sess_idem_running(db, b->run_id, b->key, now, &b->idem_id);
	if (r == GW_OK && b->pending)
		r = sess_pending_del(db, b->run_id);
	if (r != GW_OK)
		goto out;
	store_session_changed(db, events, b->key, "run.start", b->run_id);
out:
	store_stmt_done(s);
	sess_texts_free(texts, n);
	free(preview);
	free(cur);
	return r;
}


static const char *session_row_status(const char *run_status)
{
	if (strcmp(run_status, "ok") == 0)
		return "done";
	if (strcmp(run_status, "aborted") == 0)
		return "killed";
	if (strcmp(run_status, "timeout") == 0)
		return "timeout";
	return "failed";
}

/* The end's result as JSON text (e->result_text, or e->result dumped
 * into *own) and its error member. */
static const char *sess_end_result(const struct store_session_end *e,
				   char **own)
{
	if (e->result_text)
		return e->result_text;
	return *own = store_json_dump(e->result, NULL);
}

static const char *sess_end_error(const struct store_session_end *e)
{
	if (e->result_text)
		return e->error;
	return json_string_value(json_object_get(e->result, "error"));
}

static const char *const sess_run_sql[2] = {
	"INSERT INTO sessions(key, session_id, agent_id, channel, status, "
	"last_run_id, last_error, model, input_tokens, output_tokens, "
	"message_count, last_preview, created_at, updated_at) "
	"VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	"INSERT INTO sessions(key, session_id, agent_id, channel, status, "
	"last_run_id, last_error, model, input_tokens, output_tokens, "
	"message_count, last_preview, created_at, updated_at) "
	"VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO "
	"UPDATE SET status = excluded.status, last_run_id = "
	"excluded.last_run_id, last_error = excluded.last_error, "
	"channel = coalesce(excluded.channel, channel), model = "
	"coalesce(excluded.model, model), input_tokens = "
	"input_tokens + excluded.input_tokens, output_tokens = "
	"output_tokens + excluded.output_tokens, message_count = "
	"message_count + excluded.message_count, last_preview = "
	"coalesce(excluded.last_preview, last_preview), "
	"updated_at = excluded.updated_at "
	"RETURNING session_id, message_count",
};

int store_session_run_tx(sqlite3 *db, struct store_session_begin *b,
			 struct store_session_end *e, json_t *events)
{
	struct store_session_meta mu = {.run_id = b->run_id};
	struct store_session_meta ma = {
		.run_id = e->run_id, .status = e->status,
		.in_tok = e->in_tok, .out_tok = e->out_tok, .model = e->model,
	};
	sqlite3_stmt *s = NULL;
	char sid[37], **texts = NULL, *atext = NULL, *preview = NULL;
	char *cur = NULL, *rown = NULL;
	const char *rjson;
	int64_t count = 0, now = util_now_ms();
	int64_t at = b->started_at ? b->started_at : now;
	size_t n = 0, total;
	int r, rc, v;

	if ((r = store_session_sweep_tx(db, now)) != GW_OK)
		return r;
	texts = sess_texts(b->messages, &n);
	total = n + (e->message ? 1 : 0);
	if (e->message)
		atext = store_session_text(json_object_get(e->message,
							   "content"));
	if (atext || n)
		preview = xstrndup(atext ? atext : texts[n - 1],
				   STORE_SESSION_PREVIEW_LEN);
	store_uuid7(sid);
	/* The row as the start and the end would have left it: a plain
	 * insert for a key generated for this run (no RETURNING, the seqs
	 * are 1..total), the upsert when the key has a row. */
	for (v = b->fresh ? 0 : 1; v < 2; v++) {
		r = sess_prep(db, sess_run_sql[v], &s);
		if (r != GW_OK)
			goto out;
		sess_bind_start(s, b, sid);
		sqlite3_bind_text(s, 5, session_row_status(e->status), -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(s, 6, b->run_id, -1, SQLITE_STATIC);
		store_bind_static(s, 7, sess_end_error(e));
		store_bind_static(s, 8, e->model);
		sqlite3_bind_int64(s, 9, e->in_tok);
		sqlite3_bind_int64(s, 10, e->out_tok);
		sqlite3_bind_int64(s, 11, (sqlite3_int64)total);
		store_bind_static(s, 12, preview);
		sqlite3_bind_int64(s, 13, at);
		sqlite3_bind_int64(s, 14, now);
		if (v == 1) {
			r = sess_bump_step(db, s, &cur, &count);
			s = NULL;
			if (r != GW_OK)
				goto out;
			break;
		}
		rc = sqlite3_step(s);
		if (rc != SQLITE_DONE && (rc & 0xff) != SQLITE_CONSTRAINT) {
			r = sess_fail(db, "session run");
			goto out;
		}
		store_stmt_done(s);
		s = NULL;
		if (rc == SQLITE_DONE) {
			cur = xstrdup(sid);
			count = (int64_t)total;
			break;
		}
	}
	r = sess_insert_prompts(db, b->key, cur, count - (int64_t)total + 1,
				b->messages, texts, &mu, events, at);
	if (r != GW_OK)
		goto out;
	if (e->message) {
		r = sess_transcript_insert(db, b->key, cur, count, e->message,
					   atext, &ma, events, now, NULL);
		if (r != GW_OK)
			goto out;
	}
	rjson = sess_end_result(e, &rown);
	r = sess_prep(db, "INSERT OR REPLACE INTO idempotency(run_id, "
		      "session_key, status, result, created_at, ended_at, "
		      "expires_at) VALUES(?,?,?,?,?,?,?)", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_text(s, 1, e->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, e->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, e->status, -1, SQLITE_STATIC);
	store_bind_static(s, 4, rjson);
	sqlite3_bind_int64(s, 5, at);
	sqlite3_bind_int64(s, 6, now);
	sqlite3_bind_int64(s, 7, now + STORE_SESSION_IDEM_TTL_MS);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "idempotency run");
	if (r == GW_OK)
		store_session_changed(db, events, e->key, "run.end", e->run_id);
out:
	store_stmt_done(s);
	sess_texts_free(texts, n);
	free(atext);
	free(preview);
	free(cur);
	free(rown);
	return r;
}

/* Step s (an UPDATE) and release it: 1 when it changed a row, 0 when
 * none matched, -1 on error (logged as what). */
static int sess_step_changed(sqlite3 *db, sqlite3_stmt *s, const char *what)
{
	int rc;

	if (sqlite3_step(s) != SQLITE_DONE) {
		sess_fail(db, what);
		rc = -1;
	} else {
		rc = sqlite3_changes(db) > 0;
	}
	store_stmt_done(s);
	return rc;
}

/* Parameters ?1-?6 of the end's idempotency writes: run id, key, status,
 * result text, now (created/ended), expiry. */
static void sess_bind_idem_end(sqlite3_stmt *s,
			       const struct store_session_end *e,
			       const char *rjson, int64_t now)
{
	sqlite3_bind_text(s, 1, e->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, e->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, e->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, rjson, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, now);
	sqlite3_bind_int64(s, 6, now + STORE_SESSION_IDEM_TTL_MS);
}

/* The end's session row update: [0] by key, [1] by key when the row is
 * still the start's (session id and message count). */
#define SESS_END_SQL \
	"UPDATE sessions SET status = ?1, input_tokens = input_tokens + ?2, " \
	"output_tokens = output_tokens + ?3, model = coalesce(?4, model), " \
	"last_error = ?5, updated_at = ?6, message_count = message_count + " \
	"?7, last_preview = coalesce(?8, last_preview) WHERE key = ?9"
static const char *const sess_end_sql[2] = {
	SESS_END_SQL,
	SESS_END_SQL " AND session_id = ?10 AND message_count = ?11",
};
#undef SESS_END_SQL

/* Step the end's update sql (sess_end_sql): 1 when it changed the row,
 * 0 when none matched, -1 on error. */
static int sess_end_row(sqlite3 *db, const struct store_session_end *e,
			const char *sql, const char *preview, int64_t now)
{
	sqlite3_stmt *s = NULL;

	if (sess_prep(db, sql, &s) != GW_OK)
		return -1;
	sqlite3_bind_text(s, 1, session_row_status(e->status), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, e->in_tok);
	sqlite3_bind_int64(s, 3, e->out_tok);
	store_bind_static(s, 4, e->model);
	store_bind_static(s, 5, sess_end_error(e));
	sqlite3_bind_int64(s, 6, now);
	sqlite3_bind_int64(s, 7, e->message ? 1 : 0);
	store_bind_static(s, 8, preview);
	sqlite3_bind_text(s, 9, e->key, -1, SQLITE_STATIC);
	if (sql == sess_end_sql[1]) {
		sqlite3_bind_text(s, 10, e->sid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 11, e->count);
	}
	return sess_step_changed(db, s, "session end");
}

/* The end's idempotency row by the id the start's got (e->idem_id),
 * when it is still that run's: 1 written, 0 no such row, -1 error. */
static int sess_idem_end_row(sqlite3 *db, const struct store_session_end *e,
			     const char *rjson, int64_t now)
{
	sqlite3_stmt *s = NULL;

	if (sess_prep(db, "UPDATE idempotency SET session_key = ?2, "
		      "status = ?3, result = ?4, ended_at = ?5, expires_at = "
		      "?6 WHERE id = ?7 AND run_id = ?1", &s) != GW_OK)
		return -1;
	sess_bind_idem_end(s, e, rjson, now);
	sqlite3_bind_int64(s, 7, e->idem_id);
	return sess_step_changed(db, s, "idempotency end");
}

int store_session_end_tx(sqlite3 *db, struct store_session_end *e,
			 json_t *events)
{
	struct store_session_meta m = {
		.run_id = e->run_id, .status = e->status,
		.in_tok = e->in_tok, .out_tok = e->out_tok, .model = e->model,
	};
	sqlite3_stmt *s = NULL;
	int64_t seq = 0, now = util_now_ms();
	char *rown = NULL, *text = NULL, *preview = NULL, *sid = NULL;
	const char *rjson;
	int r, rc;

	if (e->skip_row)
		goto idem;
	/* End the row and, with the reply, count its message (no row: the
	 * session was deleted during the run). */
	if (e->message) {
		text = store_session_text(json_object_get(e->message,
							  "content"));
		preview = xstrndup(text, STORE_SESSION_PREVIEW_LEN);
	}
	/* The row as the start left it (its session id and count): ended
	 * without reading it back; else (changed since, or not known) as
	 * it is now. */
	rc = e->sid[0] ? sess_end_row(db, e, sess_end_sql[1], preview, now)
		       : 0;
	if (rc > 0) {
		sid = xstrdup(e->sid);
		seq = e->count + 1;
	} else if (rc == 0) {
		rc = sess_end_row(db, e, sess_end_sql[0], preview, now);
		if (rc > 0)
			rc = sess_row_count(db, e->key, "session end", &sid,
					    &seq);
	}
	if (rc < 0) {
		r = GW_ESTORE;
		goto out;
	}
	if (rc > 0 && e->message) {
		r = sess_transcript_insert(db, e->key, sid, seq, e->message,
					   text, &m, events, now, NULL);
		if (r != GW_OK)
			goto out;
	}
idem:
	if (e->skip_row && e->pending &&
	    (r = sess_pending_del(db, e->run_id)) != GW_OK)
		goto out;
	rjson = sess_end_result(e, &rown);
	/* The start's row, by its id (still that run's), else upserted. */
	if (e->idem_id > 0) {
		rc = sess_idem_end_row(db, e, rjson, now);
		if (rc < 0) {
			r = GW_ESTORE;
			goto out;
		}
		if (rc > 0) {
			r = GW_OK;
			goto changed;
		}
	}
	/* The row of the start keeps its created_at. */
	r = sess_prep(db, "INSERT INTO idempotency(run_id, session_key, "
		      "status, result, created_at, ended_at, expires_at) "
		      "VALUES(?1,?2,?3,?4,?5,?5,?6) ON CONFLICT(run_id) DO "
		      "UPDATE SET session_key = excluded.session_key, "
		      "status = excluded.status, result = excluded.result, "
		      "ended_at = excluded.ended_at, expires_at = "
		      "excluded.expires_at", &s);
	if (r != GW_OK)
		goto out;
	sess_bind_idem_end(s, e, rjson, now);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "idempotency end");
changed:
	if (r == GW_OK && !e->skip_row)
		store_session_changed(db, events, e->key, "run.end", e->run_id);
out:
	store_stmt_done(s);
	free(rown);
	free(text);
	free(preview);
	free(sid);
	return r;
}

static sqlite3 *sess_reader(struct store *st)
{
	return st ? store_reader(st) : NULL;
}

int store_session_history(struct store *st, const char *key, int max,
			  json_t *out)
{
	return store_session_history_db(sess_reader(st), key, max, out);
}

int store_session_history_db(sqlite3 *db, const char *key, int max,
			     json_t *out)
{
	sqlite3_stmt *s = NULL;
	json_t *tmp = json_array(), *m;
	const char *role;
	size_t i;

	if (!db) {
		json_decref(tmp);
		return GW_ESTORE;
	}
	if (sess_prep(db, "SELECT role, text FROM transcript t JOIN "
			 "sessions s ON s.key = t.session_key AND "
			 "s.session_id = t.session_id WHERE t.session_key = ? "
			 "ORDER BY t.seq DESC LIMIT ?", &s) != GW_OK) {
		json_decref(tmp);
		return GW_ESTORE;
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, max);
	while (sqlite3_step(s) == SQLITE_ROW) {
		role = sess_col(s, 0);
		if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
			continue;
		json_array_append_new(tmp, json_pack("{s:s,s:s}", "role", role,
						     "content",
						     sess_col(s, 1)));
	}
	store_stmt_done(s);
	for (i = json_array_size(tmp); i > 0; i--) {
		m = json_array_get(tmp, i - 1);
		json_array_append(out, m);
	}
	json_decref(tmp);
	return GW_OK;
}

int store_session_idem_get(struct store *st, const char *run_id, char **status,
			   char **session_key, json_t **result)
{
	return store_session_idem_get_db(sess_reader(st), run_id, status,
					 session_key, result);
}

int store_session_idem_get_db(sqlite3 *db, const char *run_id, char **status,
			      char **session_key, json_t **result)
{
	sqlite3_stmt *s = NULL;
	int r = GW_ENOTFOUND;

	*status = NULL;
	*session_key = NULL;
	*result = NULL;
	if (!db)
		return GW_ESTORE;
	if (sess_prep(db, "SELECT status, session_key, result FROM "
			 "idempotency WHERE run_id = ? AND expires_at >= ?",
			 &s) != GW_OK)
		return GW_ESTORE;
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, util_now_ms());
	if (sqlite3_step(s) == SQLITE_ROW) {
		*status = xstrdup(sess_col(s, 0));
		*session_key = xstrdup(sess_col(s, 1));
		if (sess_col(s, 2))
			*result = json_loads(sess_col(s, 2), 0, NULL);
		r = GW_OK;
	}
	store_stmt_done(s);
	return r;
}

char *store_session_model_override(struct store *st, const char *key)
{
	struct store_session_begin b;	/* only the peek's fields used */

	return store_session_peek_db(sess_reader(st), key, &b);
}

char *store_session_peek_db(sqlite3 *db, const char *key,
			    struct store_session_begin *b)
{
	sqlite3_stmt *s = NULL;
	char *r = NULL;

	b->known = b->has_row = 0;
	if (!db || sess_prep(db, "SELECT json_extract(settings, '$.model'), "
				"session_id, message_count FROM sessions "
				"WHERE key = ?", &s) != GW_OK)
		return NULL;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_ROW:
		if (sess_col(s, 0) && *sess_col(s, 0))
			r = xstrdup(sess_col(s, 0));
		if (!sess_col(s, 1) ||
		    strlen(sess_col(s, 1)) >= sizeof(b->prev_sid))
			break;	/* not ours: read back after the upsert */
		snprintf(b->prev_sid, sizeof(b->prev_sid), "%s",
			 sess_col(s, 1));
		b->prev_count = sqlite3_column_int64(s, 2);
		b->known = b->has_row = 1;
		break;
	case SQLITE_DONE:
		b->known = 1;
		break;
	default:
		break;
	}
	store_stmt_done(s);
	return r;
}

/* One run_pending row (its columns in s) as what a run started and cut
 * by a restart leaves: its messages appended to its session (created
 * when absent), the row 'running' with it as its last run, its
 * idempotency row 'running' (both then recorded as interrupted). */
static int sess_recover_pending_row(sqlite3 *db, sqlite3_stmt *s)
{
	struct store_session_meta m = {.run_id = sess_col(s, 0)};
	const char *key = sess_col(s, 1);
	sqlite3_stmt *u = NULL;
	json_t *msgs = json_loads(sess_col(s, 4), 0, NULL), *msg;
	size_t i;
	int r;

	r = store_session_ensure_tx(db, key, sess_col(s, 2), sess_col(s, 3));
	json_array_foreach(msgs, i, msg) {
		if (r == GW_OK && json_is_object(msg))
			r = store_session_append_tx(db, key, msg, &m, NULL,
						    NULL);
	}
	json_decref(msgs);
	if (r == GW_OK)
		r = sess_prep(db, "UPDATE sessions SET status = 'running', "
			      "last_run_id = ? WHERE key = ?", &u);
	if (r != GW_OK)
		return r;
	sqlite3_bind_text(u, 1, m.run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(u, 2, key, -1, SQLITE_STATIC);
	r = sqlite3_step(u) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "recover pending");
	store_stmt_done(u);
	if (r != GW_OK)
		return r;
	return sess_idem_running(db, m.run_id, key, util_now_ms(), NULL);
}

/* Runs acknowledged while waiting for their turn, left by a crash: their
 * messages in their sessions, in start order; *n of them. */
static int sess_recover_pending(sqlite3 *db, int *n)
{
	sqlite3_stmt *s = NULL;
	int r, rc;

	*n = 0;
	r = sess_prep(db, "SELECT run_id, session_key, agent_id, channel, "
		      "messages FROM run_pending ORDER BY seq, created_at",
		      &s);
	while (r == GW_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = sess_recover_pending_row(db, s);
		++*n;
	}
	if (r == GW_OK && rc != SQLITE_DONE)
		r = sess_fail(db, "recover pending");
	store_stmt_done(s);
	if (r == GW_OK && *n &&
	    sqlite3_exec(db, "DELETE FROM run_pending", NULL, NULL, NULL) !=
	    SQLITE_OK)
		r = sess_fail(db, "recover pending");
	return r;
}

static int store_session_recover_run(sqlite3 *db, void *arg)
{
	int *n = arg, pend = 0, r;

	if ((r = sess_recover_pending(db, &pend)) != GW_OK)
		return r;
	if (pend)
		log_warn("agent", "%d acknowledged run(s) were waiting for "
			 "their turn at the last shutdown; their messages are "
			 "in their sessions", pend);

	if (sqlite3_exec(db, "UPDATE idempotency SET status = 'error', "
			 "result = json_object('runId', run_id, 'status', "
			 "'error', 'error', 'run interrupted by a gateway "
			 "restart', 'sessionKey', session_key, 'text', ''), "
			 "ended_at = created_at, expires_at = "
			 "CAST((julianday('now') - 2440587.5) * 86400000 AS "
			 "INTEGER) + 300000 WHERE status = 'running'",
			 NULL, NULL, NULL) != SQLITE_OK)
		return sess_fail(db, "recover runs");
	*n = sqlite3_changes(db);
	if (sqlite3_exec(db, "UPDATE sessions SET status = 'failed', "
			 "last_error = 'run interrupted by a gateway restart' "
			 "WHERE status = 'running'", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return sess_fail(db, "recover sessions");
	return GW_OK;
}

int store_session_recover(struct store *st)
{
	int n = 0, r;

	if (!st)
		return GW_OK;
	r = store_write_sync(st, store_session_recover_run, &n, 0);
	if (r == GW_OK && n)
		log_warn("agent", "%d run(s) were interrupted by the last "
			 "shutdown; recorded as errors", n);
	return r;
}

/* ---- sessions.patch / reset / delete, chat.inject (store jobs) ---- */

/* What json_pack("{s:s,s:[{s:s,s:s}],s:I}") gave (the same members in
 * the same order; NULL when role or text is not UTF-8), without parsing
 * the format: ~7k instructions a message, two a run (issue 11). */
json_t *store_session_message(const char *role, const char *text)
{
	json_t *o, *c, *part, *r = json_string(role), *t;

	t = json_string(text ? text : "");
	if (!r || !t) {
		json_decref(r);
		json_decref(t);
		return NULL;
	}
	o = json_object();
	c = json_array();
	part = json_object();
	json_object_set_new_nocheck(part, "type", json_string_nocheck("text"));
	json_object_set_new_nocheck(part, "text", t);
	json_array_append_new(c, part);
	json_object_set_new_nocheck(o, "role", r);
	json_object_set_new_nocheck(o, "content", c);
	json_object_set_new_nocheck(o, "timestamp",
				    json_integer(util_now_ms()));
	return o;
}

static const char *const store_session_patch_denied[] = {
	"key", "agentId", "expectedSessionId", "expectedLifecycleRevision",
	"expectedPermissionMode", "expectedToolOverrides",
	"expectedMarkedUnreadAt",
};

int store_session_patch_run(sqlite3 *db, void *arg)
{
	struct store_session_job *j = arg;
	sqlite3_stmt *s = NULL;
	json_t *settings = NULL, *v;
	const char *k;
	char *sj = NULL;
	size_t i;
	int r;

	r = store_session_ensure_tx(db, j->key, j->agent_id, NULL);
	if (r != GW_OK)
		return r;
	if (sess_prep(db, "SELECT settings FROM sessions WHERE key = ?",
			 &s) != GW_OK)
		return GW_ESTORE;
	sqlite3_bind_text(s, 1, j->key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		settings = json_loads(sess_col(s, 0), 0, NULL);
	store_stmt_done(s);
	s = NULL;
	if (!json_is_object(settings)) {
		json_decref(settings);
		settings = json_object();
	}
	json_object_foreach((json_t *)j->patch, k, v) {
		for (i = 0; i < ARRAY_SIZE(store_session_patch_denied); i++)
			if (strcmp(k, store_session_patch_denied[i]) == 0)
				break;
		if (i < ARRAY_SIZE(store_session_patch_denied) ||
		    strcmp(k, "label") == 0)
			continue;
		if (json_is_null(v))
			json_object_del(settings, k);
		else
			json_object_set(settings, k, v);
	}
	sj = json_dumps(settings, JSON_COMPACT);
	v = json_object_get(j->patch, "label");
	r = sess_prep(db, v ? "UPDATE sessions SET settings = ?, "
			 "updated_at = ?, label = ?3 WHERE key = ?4"
			 : "UPDATE sessions SET settings = ?, updated_at = ? "
			 "WHERE key = ?4", &s);
	if (r != GW_OK)
		goto out;
	sqlite3_bind_text(s, 1, sj, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, util_now_ms());
	if (v)
		store_bind_text(s, 3, json_string_value(v));
	sqlite3_bind_text(s, 4, j->key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "session patch");
	if (r == GW_OK) {
		j->entry = store_session_row_load(db, j->key);
		store_session_changed(db, j->events, j->key, "patch", NULL);
	}
out:
	store_stmt_done(s);
	json_decref(settings);
	free(sj);
	return r;
}

int store_session_reset_run(sqlite3 *db, void *arg)
{
	struct store_session_job *j = arg;
	sqlite3_stmt *s = NULL;
	char sid[37];
	int r;

	r = store_session_ensure_tx(db, j->key, j->agent_id, NULL);
	if (r != GW_OK)
		return r;
	store_uuid7(sid);
	if (sess_prep(db, "UPDATE sessions SET session_id = ?, "
			 "message_count = 0, last_preview = NULL, status = "
			 "NULL, last_error = NULL, input_tokens = 0, "
			 "output_tokens = 0, updated_at = ? WHERE key = ?",
			 &s) != GW_OK)
		return GW_ESTORE;
	sqlite3_bind_text(s, 1, sid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, util_now_ms());
	sqlite3_bind_text(s, 3, j->key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "session reset");
	store_stmt_done(s);
	if (r == GW_OK) {
		j->entry = store_session_row_load(db, j->key);
		store_session_changed(db, j->events, j->key, j->reason, NULL);
	}
	return r;
}

int store_session_delete_run(sqlite3 *db, void *arg)
{
	struct store_session_job *j = arg;
	sqlite3_stmt *s = NULL;
	int r;

	if (sess_prep(db, "DELETE FROM sessions WHERE key = ?", &s) !=
	    GW_OK)
		return GW_ESTORE;
	sqlite3_bind_text(s, 1, j->key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? GW_OK
					   : sess_fail(db, "session delete");
	store_stmt_done(s);
	if (r != GW_OK)
		return r;
	j->deleted = sqlite3_changes(db) > 0;
	if (j->delete_transcript) {
		if (sess_prep(db, "DELETE FROM transcript WHERE "
				 "session_key = ?", &s) != GW_OK)
			return GW_ESTORE;
		sqlite3_bind_text(s, 1, j->key, -1, SQLITE_TRANSIENT);
		r = sqlite3_step(s) == SQLITE_DONE
			? GW_OK : sess_fail(db, "transcript delete");
		store_stmt_done(s);
	}
	if (r == GW_OK && j->deleted)
		store_session_event(j->events, "sessions.changed", j->key,
			      json_pack("{s:s,s:s,s:I}", "sessionKey", j->key,
					"reason", "delete", "ts",
					(json_int_t)util_now_ms()));
	return r;
}

int store_session_inject_run(sqlite3 *db, void *arg)
{
	struct store_session_job *j = arg;
	struct store_session_meta m = {.status = "injected"};
	json_t *msg;
	int r;

	r = store_session_ensure_tx(db, j->key, j->agent_id, NULL);
	if (r != GW_OK)
		return r;
	msg = store_session_message("assistant", j->text);
	if (j->label)
		json_object_set_new(msg, "label", json_string(j->label));
	json_object_set_new(msg, "injected", json_true());
	r = store_session_append_tx(db, j->key, msg, &m, j->events,
			      &j->message_id);
	json_decref(msg);
	if (r == GW_OK)
		store_session_changed(db, j->events, j->key, "inject", NULL);
	return r;
}

/* ---- reads behind sessions.list / preview, chat.history -------------- */

json_t *store_session_get(struct store *st, const char *key)
{
	sqlite3 *db = sess_reader(st);

	return db ? store_session_row_load(db, key) : NULL;
}

/* The first user message of the current session, shortened (a title). */
static char *store_session_title(sqlite3 *db, const char *key)
{
	sqlite3_stmt *s = NULL;
	char *t = NULL;

	if (sess_prep(db, "SELECT t.text FROM transcript t JOIN sessions s "
		      "ON s.key = t.session_key AND s.session_id = "
		      "t.session_id WHERE t.session_key = ? AND t.role = "
		      "'user' ORDER BY t.seq LIMIT 1", &s) != GW_OK)
		return NULL;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW && sess_col(s, 0))
		t = xstrndup(sess_col(s, 0), 60);
	store_stmt_done(s);
	return t;
}

json_t *store_session_list(struct store *st, const char *agent,
			   const char *search, const char *label,
			   int64_t since, int64_t offset, int64_t limit,
			   int last_msg, int titles, int64_t *total)
{
	sqlite3 *db = sess_reader(st);
	sqlite3_stmt *s = NULL;
	json_t *rows = json_array(), *row;
	const char *key;
	char *t;

	*total = 0;
	if (!db || sess_prep(db, "SELECT " STORE_SESSION_ROW_COLS " FROM "
			     "sessions WHERE (?1 IS NULL OR agent_id = "
			     "lower(?1)) AND (?2 IS NULL OR instr(lower(key), "
			     "lower(?2)) OR instr(lower(coalesce(label, "
			     "'')), lower(?2))) AND (?3 IS NULL OR label = "
			     "?3) AND (?4 = 0 OR updated_at >= ?4) ORDER BY "
			     "updated_at DESC, key", &s) != GW_OK)
		return rows;
	store_bind_text(s, 1, agent);
	store_bind_text(s, 2, search);
	store_bind_text(s, 3, label);
	sqlite3_bind_int64(s, 4, since);
	while (sqlite3_step(s) == SQLITE_ROW) {
		(*total)++;
		if (*total <= offset ||
		    (int64_t)json_array_size(rows) >= limit)
			continue;
		row = store_session_row_json(s);
		if (!last_msg)
			json_object_del(row, "lastMessagePreview");
		key = sess_col(s, 0);
		if (titles && (t = store_session_title(db, key))) {
			json_object_set_new(row, "derivedTitle",
					    json_string(t));
			free(t);
		}
		json_array_append_new(rows, row);
	}
	store_stmt_done(s);
	return rows;
}

static const char *store_session_preview_role(const char *r)
{
	if (!strcmp(r, "user") || !strcmp(r, "assistant") ||
	    !strcmp(r, "tool") || !strcmp(r, "system"))
		return r;
	return "other";
}

json_t *store_session_preview(struct store *st, const char *key, int limit,
			      int max_chars, int *exists)
{
	sqlite3 *db = sess_reader(st);
	sqlite3_stmt *s = NULL;
	json_t *items, *tmp;
	size_t j;
	char *t;

	*exists = 0;
	if (!db)
		return NULL;
	if (sess_prep(db, "SELECT 1 FROM sessions WHERE key = ?", &s) ==
	    GW_OK) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
		*exists = sqlite3_step(s) == SQLITE_ROW;
		store_stmt_done(s);
		s = NULL;
	}
	items = json_array();
	if (!*exists || sess_prep(db, "SELECT t.role, t.text FROM transcript "
				  "t JOIN sessions s ON s.key = "
				  "t.session_key AND s.session_id = "
				  "t.session_id WHERE t.session_key = ? "
				  "ORDER BY t.seq DESC LIMIT ?", &s) != GW_OK)
		return items;
	tmp = json_array();
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, limit);
	while (sqlite3_step(s) == SQLITE_ROW) {
		t = xstrndup(sess_col(s, 1), (size_t)max_chars);
		json_array_append_new(tmp, json_pack("{s:s,s:s}", "role",
			store_session_preview_role(sess_col(s, 0)), "text", t));
		free(t);
	}
	store_stmt_done(s);
	for (j = json_array_size(tmp); j > 0; j--)
		json_array_append(items, json_array_get(tmp, j - 1));
	json_decref(tmp);
	return items;
}

json_t *store_session_messages(struct store *st, const char *key,
			       int limit, int max_chars, size_t max_len,
			       size_t max_bytes, json_t **row_out)
{
	sqlite3 *db = sess_reader(st);
	sqlite3_stmt *s = NULL;
	json_t *msgs = json_array(), *tmp, *m, *row;
	const char *sid;
	size_t i, total = 0, len;

	*row_out = row = db ? store_session_row_load(db, key) : NULL;
	if (!row)
		return msgs;
	sid = json_string_value(json_object_get(row, "sessionId"));
	if (sess_prep(db, "SELECT message, length(message), message_id, "
		      "seq, text FROM transcript WHERE session_key = ? AND "
		      "session_id = ? ORDER BY seq DESC LIMIT ?", &s) != GW_OK)
		return msgs;
	tmp = json_array();
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, sid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 3, limit);
	while (sqlite3_step(s) == SQLITE_ROW) {
		len = (size_t)sqlite3_column_int64(s, 1);
		if (len > max_len || (max_chars > 0 &&
				      strlen(sess_col(s, 4)) >
				      (size_t)max_chars))
			m = store_session_message("assistant",
				"[chat.history omitted: message too large]");
		else
			m = json_loads(sess_col(s, 0), 0, NULL);
		if (!m)
			continue;
		total += len;
		if (total > max_bytes) {
			json_decref(m);
			break;
		}
		json_object_set_new(m, "messageId",
				    json_string(sess_col(s, 2)));
		json_object_set_new(m, "messageSeq",
				    json_integer(sqlite3_column_int64(s, 3)));
		json_array_append_new(tmp, m);
	}
	store_stmt_done(s);
	for (i = json_array_size(tmp); i > 0; i--)
		json_array_append(msgs, json_array_get(tmp, i - 1));
	json_decref(tmp);
	return msgs;
}
