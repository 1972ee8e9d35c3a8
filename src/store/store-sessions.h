/* Sessions, transcripts, runs and idempotency in SQLite: every statement
 * of these tables that the run path uses, prepared once per connection
 * (store_stmt). Writes are the _tx functions, run inside a store job on
 * the writer (they add observer events to an array the caller emits once
 * the job committed); reads use the calling thread's reader connection.
 * Used by the agent core (src/agent/). */
#pragma once

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

struct store;

#define STORE_SESSION_IDEM_TTL_MS (5 * 60 * 1000)
#define STORE_SESSION_RUNNING_TTL_MS (24LL * 3600 * 1000)
#define STORE_SESSION_HISTORY_MAX 200
#define STORE_SESSION_PREVIEW_LEN 200
/* Expired idempotency rows are swept at most this often (reads ignore
 * them anyway). */
#define STORE_SESSION_SWEEP_MS 1000
/* The sweep (writer, inside a transaction; the run path's writes call
 * it): at most once per STORE_SESSION_SWEEP_MS of now, deletes the
 * expired rows among those inserted before the newest row id its sweeps
 * saw STORE_SESSION_IDEM_TTL_MS or more ago. */
int store_session_sweep_tx(sqlite3 *db, int64_t now);

/* The columns store_session_row_json reads, in order. */
#define STORE_SESSION_ROW_COLS \
	"key, session_id, agent_id, channel, label, settings, status, " \
	"last_run_id, last_error, model, input_tokens, output_tokens, " \
	"message_count, last_preview, created_at, updated_at"

/* A new time-ordered id (UUID version 7: 48-bit ms timestamp, 74 random
 * bits) for rows keyed by id: inserts land at the right edge of the
 * b-trees, so the writes of one commit share pages instead of touching a
 * random leaf each (run ids, message ids, session ids, generated session
 * keys). */
void store_uuid7(char out[37]);
/* json_dumps(v, JSON_COMPACT) of an object or array, byte for byte, in
 * a fraction of its time (no loop check: the run path's own trees);
 * *len (may be NULL) gets the length. NULL when v is neither or holds a
 * real jansson refuses (nan, inf). */
char *store_json_dump(const json_t *v, size_t *len);
/* The same writer for JSON text built in place (replies of a known shape):
 * start with {0}; raw bytes, a quoted escaped string, a value (-1 as
 * store_json_dump's NULL), an integer; store_json_done returns the
 * NUL-terminated text (the caller frees it) and resets b. */
struct store_json_buf {
	char *p;
	size_t len, cap;
};
void store_json_raw(struct store_json_buf *b, const char *s, size_t n);
void store_json_str(struct store_json_buf *b, const char *s, size_t n);
int store_json_val(struct store_json_buf *b, const json_t *v);
void store_json_int(struct store_json_buf *b, int64_t v);
char *store_json_done(struct store_json_buf *b, size_t *len);
/* 1 when s[0..n) is a string jansson takes (json_stringn: UTF-8, no
 * overlong forms, surrogates or code points past U+10FFFF; NUL bytes
 * allowed), else 0: text written with store_json_str is then what a
 * tree of it would have dumped. */
int store_json_utf8(const char *s, size_t n);

/* Messages of the current session of key as OpenAI chat messages
 * (oldest first, at most max), appended to out. The _db form reads
 * through db (a store job's connection). */
int store_session_history(struct store *st, const char *key, int max,
			  json_t *out);
int store_session_history_db(sqlite3 *db, const char *key, int max,
			     json_t *out);
/* An idempotency row (live or finished) for run_id: GW_ENOTFOUND when
 * absent or expired. *result: the stored result object (new ref). The
 * _db form reads through db (a store job's connection, which sees its
 * transaction). */
int store_session_idem_get(struct store *st, const char *run_id,
			   char **status, char **session_key,
			   json_t **result);
int store_session_idem_get_db(sqlite3 *db, const char *run_id,
			      char **status, char **session_key,
			      json_t **result);

/* What one run writes at its start and at its end (writer thread). */
struct store_session_begin {
	char *key, *agent_id, *run_id, *channel;
	json_t *messages;	/* transcript messages to append (array) */
	int64_t started_at;	/* run_tx: the run's start (0 = now) */
	int fresh;		/* run_tx: the key was generated for this
				 * run (its row is inserted, not upserted,
				 * unless it exists after all) */
	int pending;		/* begin_tx: the run waited for its turn
				 * (its run_pending row is deleted) */
	/* begin_tx: the row as read earlier in the same transaction
	 * (store_session_peek_db): known, then has_row and, with a row,
	 * its session id and message count; the new ones are then not
	 * read back after the upsert (issue 11). */
	int known, has_row;
	char prev_sid[37];
	int64_t prev_count;
	/* Set by begin_tx: the row's session id and message count after
	 * it, and the id of the run's idempotency row; the end's
	 * writes start from them (store_session_end's sid...). */
	char sid[37];
	int64_t count, idem_id;
};
struct store_session_end {
	char *key, *run_id;
	json_t *message;	/* the assistant message, or NULL */
	const char *status;	/* "ok", "error", "aborted", "timeout" */
	json_t *result;		/* idempotency result object */
	char *result_text;	/* or that object as JSON text (the
				 * caller's), with its "error" member: */
	const char *error;
	int64_t in_tok, out_tok;
	char *model;
	int skip_row;		/* the run never started (ended queued):
				 * only its idempotency row is written */
	int pending;		/* with skip_row: it had a run_pending
				 * row (deleted) */
	/* What begin_tx left (its sid, count, idem_id; "" / 0: not
	 * known): the end updates those rows without looking them up
	 * when they are still as the start left them, else as before
	 * (issue 11). */
	char sid[37];
	int64_t count, idem_id;
};
int store_session_begin_tx(sqlite3 *db, struct store_session_begin *b,
			   json_t *events);
int store_session_end_tx(sqlite3 *db, struct store_session_end *e,
			 json_t *events);
/* A whole run at once (its start waited for its end): the rows the start
 * and the end would have written, in 4 statements instead of 7 (one row
 * upsert, the transcript inserts, one idempotency row). The session row's
 * and the prompt's created_at are b->started_at. */
int store_session_run_tx(sqlite3 *db, struct store_session_begin *b,
			 struct store_session_end *e, json_t *events);
/* Plain text of an OpenAI/transcript content (string or parts). */
char *store_session_text(const json_t *content);
/* The session's model override (sessions.patch model) or NULL. */
char *store_session_model_override(struct store *st, const char *key);
/* The model override of key's row (or NULL), and what begin_tx needs of the row to skip reading it
 * back (b->known, has_row, prev_sid, prev_count), in one lookup (tx). */
char *store_session_peek_db(sqlite3 *db, const char *key,
			    struct store_session_begin *b);
/* At start: runs left "running" by a crash become errors; the messages
 * of runs that waited for their turn (run_pending) first become their
 * sessions' transcript rows. */
int store_session_recover(struct store *st);

/* ---- runs acknowledged while waiting for their session (run_pending,
 * migration 0010) ---- */
struct store_session_pending {
	const char *key, *agent_id, *run_id, *channel;
	const json_t *messages;	/* the transcript messages of its start */
	int64_t seq;		/* its start order */
};
/* Its acknowledgement (tx): its run_pending row and its idempotency row
 * ('running', as a started run's). Its start (store_session_begin_tx
 * with pending) or its end unstarted (store_session_end_tx with
 * skip_row and pending) deletes the row. */
int store_session_pending_tx(sqlite3 *db,
			     const struct store_session_pending *p);

/* Row helpers shared with the sessions.* queries (src/agent/session.c). */
/* A GatewaySessionRow from a statement over STORE_SESSION_ROW_COLS. */
json_t *store_session_row_json(sqlite3_stmt *s);
/* The row of key (new reference) or NULL. */
json_t *store_session_row_load(sqlite3 *db, const char *key);
/* Queue {event, key, payload (stolen)} on events. */
void store_session_event(json_t *events, const char *event, const char *key,
			 json_t *payload);
/* Queue a sessions.changed event carrying the current row. */
void store_session_changed(sqlite3 *db, json_t *events, const char *key,
			   const char *reason, const char *run_id);
/* Create the row when absent (tx). */
int store_session_ensure_tx(sqlite3 *db, const char *key,
			    const char *agent_id, const char *channel);
/* Per-message metadata of a transcript append. */
struct store_session_meta {
	const char *run_id;
	const char *status;
	int64_t in_tok, out_tok;
	const char *model;
};
/* Append msg to the current session of key and bump the row (tx); queues
 * a session.message event; *id_out (may be NULL) gets the message id. */
int store_session_append_tx(sqlite3 *db, const char *key, json_t *msg,
			    const struct store_session_meta *m,
			    json_t *events, char **id_out);

/* A transcript message {role, content:[{type:text,text}], timestamp}. */
json_t *store_session_message(const char *role, const char *text);

/* sessions.patch, sessions.reset, sessions.delete and chat.inject as store
 * jobs (store_fn; store_write_sync with a struct store_session_job). The
 * caller sets events to an array and emits it after the commit. */
struct store_session_job {
	const char *key;
	const char *agent_id;
	const json_t *patch;	/* patch: fields (null clears) */
	const char *reason;	/* reset: sessions.changed reason */
	const char *text;	/* inject */
	const char *label;	/* inject */
	int delete_transcript;	/* delete */
	int deleted;		/* out (delete) */
	char *message_id;	/* out (inject), owned */
	char *err;
	json_t *entry;		/* out (patch, reset): the new row */
	json_t *events;
};
int store_session_patch_run(sqlite3 *db, void *arg);
int store_session_reset_run(sqlite3 *db, void *arg);
int store_session_delete_run(sqlite3 *db, void *arg);
int store_session_inject_run(sqlite3 *db, void *arg);

/* Reads behind sessions.*, chat.history and the session tools (this
 * thread's reader). */
/* One row (GatewaySessionRow shape) or NULL. */
json_t *store_session_get(struct store *st, const char *key);
/* Rows newest first, filtered (NULL / 0: no filter; since: updated_at >=,
 * epoch ms), the window [offset, offset + limit); *total counts every
 * match. last_msg keeps lastMessagePreview; titles adds derivedTitle.
 * New array (empty when the store is unavailable). */
json_t *store_session_list(struct store *st, const char *agent,
			   const char *search, const char *label,
			   int64_t since, int64_t offset, int64_t limit,
			   int last_msg, int titles, int64_t *total);
/* The last limit messages of the current session of key, oldest first,
 * as [{role, text}] (texts cut to max_chars); *exists: the row exists.
 * NULL when the store is unavailable. */
json_t *store_session_preview(struct store *st, const char *key, int limit,
			      int max_chars, int *exists);
/* chat.history: the last limit stored messages of the current session
 * (display JSON + messageId, messageSeq), oldest first; a message longer
 * than max_len bytes (or whose text exceeds max_chars > 0) is replaced by
 * a note; stops past max_bytes in total. *row: the session row (new
 * reference) or NULL when there is none (then the array is empty). */
json_t *store_session_messages(struct store *st, const char *key,
			       int limit, int max_chars, size_t max_len,
			       size_t max_bytes, json_t **row);
