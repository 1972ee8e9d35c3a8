/* HTTP transport on top of libmicrohttpd: a daemon with no listen socket that
 * is handed connections by the listener. No domain knowledge: a handler gets
 * a request and answers through http_reply_* . */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct http_server;
struct http_req;

/* Runs on the MHD thread; must call one http_reply_* function exactly once
 * (if it does not, the transport answers 500). The body is complete
 * (bounded by the limit that http_server_cbs.body_limit returned). */
typedef void (*http_handler_fn)(struct http_req *r, void *arg);

struct http_server_cbs {
	/* Called once the headers are known: return the maximum body size to
	 * accept for this request (0 = no body). Over it, the transport
	 * answers 413 {"error":{"message":"Payload too large",
	 * "type":"invalid_request_error"}} and closes the connection. */
	size_t (*body_limit)(struct http_req *r, void *arg);
	http_handler_fn handler;
	void *arg;
	/* Optional, called right after body_limit, before any byte of the
	 * body is read: return 0 to go on, or 1 after answering with one
	 * http_reply_* (a 401/429); that answer is sent with Connection:
	 * close and the body is never read. */
	int (*preauth)(struct http_req *r, void *arg);
};

struct http_server *http_server_new(const struct http_server_cbs *cbs);
int http_server_start(struct http_server *s);
/* Any thread: hand an accepted fd to MHD (MHD closes it on failure). */
int http_server_adopt(struct http_server *s, int fd, const struct sockaddr *sa,
		      socklen_t salen);
void http_server_stop(struct http_server *s);
void http_server_free(struct http_server *s);
/* From now on every new request is answered 503 with Connection: close
 * (the first step of the shutdown order; NULL is a no-op). */
void http_server_refuse_new(struct http_server *s);
/* Connections handed to libmicrohttpd at once, all shards together
 * (gateway.http.maxConnections; <= 0: the default, 16,384); over it the
 * next is answered 503 and closed by us. Each shard is one MHD daemon
 * with its own thread that takes at most the shard size (default 1,024,
 * clamped to half of MHD's own limit, so that MHD's limit is never
 * reached: doc/hardening.md, the 0.9.75 deadlock); shards start on demand
 * and a new connection goes to the one with the most room. Call before
 * http_server_start. */
void http_server_set_max_conns(struct http_server *s, int n);
void http_server_set_shard_conns(struct http_server *s, int n);
/* Raise the soft RLIMIT_NOFILE toward what the cap needs (per_stream
 * sockets per stream plus a reserve; at most the hard limit) and log it;
 * when the limit stays too low, lower the cap (logged). Returns the cap.
 * Call before any transport sizes its tables from the limit (lws). */
int http_server_fit_nofile(struct http_server *s, int per_stream);
/* Connections currently with MHD; shards started; refusals at the cap so
 * far. */
int http_server_conns(const struct http_server *s);
int http_server_shards(const struct http_server *s);
unsigned long http_server_refused(const struct http_server *s);
/* Mark the request as authenticated by preauth (the handler need not
 * check again). */
void http_req_set_authorized(struct http_req *r);
int http_req_authorized(const struct http_req *r);

const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r);
/* Case-insensitive header lookup; NULL when absent. */
const char *http_req_header(const struct http_req *r, const char *name);
const char *http_req_query(const struct http_req *r, const char *name);
const char *http_req_body(const struct http_req *r, size_t *len);
const char *http_req_peer_ip(const struct http_req *r);
int http_req_peer_is_loopback(const struct http_req *r);

/* Add a response header for the reply to come. */
void http_reply_header(struct http_req *r, const char *name,
		       const char *value);
/* Reply with a body (copied). Security headers (nosniff, no-referrer) are
 * added to every response by the transport. */
void http_reply(struct http_req *r, int status, const char *content_type,
		const char *body, size_t len);
void http_reply_json(struct http_req *r, int status, const char *json);
/* From body_limit: the JSON body of this request's 413 (static string). */
void http_req_set_too_big_body(struct http_req *r, const char *json);

/* ---- replies from any thread ---------------------------------------------
 * A handler that cannot answer at once takes an async handle: either a
 * deferred reply (http_reply_later, answered later with http_async_reply)
 * or a streamed body (http_reply_stream, or http_async_stream_begin on a
 * deferred handle; chunked transfer encoding, written with
 * http_async_write, closed with http_async_end). The MHD connection is
 * suspended while there is nothing to send, so a waiting request costs no
 * CPU. The handle belongs to the caller until http_async_reply or
 * http_async_end, which release it; both are safe after the client went
 * away (they do nothing then). */
struct http_async;

/* Called exactly once, on the MHD thread, when the request is over (or at
 * once if it is over already). early = 1 when the client went away (or the
 * server stopped) before the producer released the handle: the producer
 * may then stop working for it. Must not block. Lets the owner of arg
 * hold a reference for the callback and drop it there. */
typedef void (*http_done_fn)(void *arg, int early);

/* Handler thread, instead of http_reply*: the reply comes later. */
struct http_async *http_reply_later(struct http_req *r);
/* Handler thread: start a streamed reply now (headers added with
 * http_reply_header go with it); the body follows from any thread. */
struct http_async *http_reply_stream(struct http_req *r, int status,
				     const char *content_type);
void http_async_on_done(struct http_async *a, http_done_fn fn, void *arg);
/* Any thread. Before the reply or stream begins. */
void http_async_header(struct http_async *a, const char *name,
		       const char *value);
/* Any thread: the complete reply (copied); releases a. */
void http_async_reply(struct http_async *a, int status,
		      const char *content_type, const char *body,
		      size_t len);
void http_async_reply_json(struct http_async *a, int status,
			   const char *json);
/* Any thread, on a deferred handle: begin a streamed reply. */
void http_async_stream_begin(struct http_async *a, int status,
			     const char *content_type);
/* Any thread: append to the stream (copied). 0, or -1 when the client went
 * away or the per-stream buffer limit was hit (the stream is then cut). */
int http_async_write(struct http_async *a, const void *data, size_t len);
/* The same with a malloc'd buffer the reply takes (freed by it, also on
 * failure): nothing pending, it becomes the pending data without a copy
 * (a streamed chunk: one allocation, no copy). */
int http_async_write_take(struct http_async *a, char *data, size_t len);
/* 1 once the client went away. */
int http_async_gone(struct http_async *a);
/* Any thread: end the stream (or, on a deferred handle never answered, a
 * 500); releases a. */
void http_async_end(struct http_async *a);
