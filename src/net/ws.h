/* WebSocket transport on top of libwebsockets: bytes and frames only, no
 * protocol knowledge. Exactly one lws service thread. Every ws_conn_*
 * function is lws-thread-only: other threads use ws_post() to run code there. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ws_conn;
struct ws_server;

struct ws_server_cbs {
	/* Upgrade done; the connection is open. */
	void (*on_open)(struct ws_conn *c, void *arg);
	/* One complete message (reassembled). */
	void (*on_message)(struct ws_conn *c, const char *data, size_t len,
			   int binary, void *arg);
	/* A message over the current max payload arrived (before closing). */
	void (*on_too_big)(struct ws_conn *c, size_t len, void *arg);
	/* Closed (by either side). c is freed after this returns. */
	void (*on_close)(struct ws_conn *c, void *arg);
	void *arg;
};

struct ws_server_opts {
	size_t max_payload;	/* initial per-connection limit (bytes) */
	size_t max_buffered;	/* output queue limit; over it -> 1008 */
};

/* Global budget for queued outbound bytes across connections (default
 * 128 MB; 0 keeps it). When a send would pass it, the connections whose
 * backlog is the oldest are closed 1008 "slow consumer" (their queues
 * dropped) until it fits. Call before ws_server_start. */
void ws_server_set_total_budget(struct ws_server *s, size_t bytes);
/* Connections closed by the global budget so far (lws thread). */
unsigned long ws_server_budget_closed(const struct ws_server *s);
struct ws_server *ws_server_new(const struct ws_server_opts *o,
				const struct ws_server_cbs *cbs);
int ws_server_start(struct ws_server *s);
/* Any thread: hand an accepted fd to lws (adopted on the lws thread). */
void ws_server_adopt(struct ws_server *s, int fd);
/* Any thread: run fn(arg) on the lws thread, soon. Returns 0, or -1 when
 * the server is stopping or stopped: fn will never run and the caller
 * still owns arg. */
int ws_post(struct ws_server *s, void (*fn)(void *arg), void *arg);
/* This thread holds events of its own that it posts later, together
 * (the agent thread's run events, posted once per iteration of its
 * loop): fn(arg) posts them. The next ws_post on this thread calls it
 * first (once), so what one thread posts keeps its order. fn NULL:
 * nothing held. */
void ws_post_defer(void (*fn)(void *arg), void *arg);
/* Any thread but the lws thread: stop the service thread after closing
 * every connection with code/reason (the pending output is flushed first,
 * bounded by wait_ms). Connections still open after wait_ms are dropped
 * when the lws context is destroyed (on_close still runs for each). */
void ws_server_stop(struct ws_server *s, int code, const char *reason,
		    int wait_ms);
void ws_server_free(struct ws_server *s);
size_t ws_server_count(struct ws_server *s);
/* The service loop's backend ("epoll"; "poll" without the lws libev
 * plugin) and its work so far: wake-ups, and the fds or timers examined
 * over them (ready events on epoll; every fd per wake-up on poll). Any
 * thread; approximate while it runs. */
const char *ws_server_loop_backend(const struct ws_server *s);
void ws_server_loop_work(const struct ws_server *s, unsigned long long *iters,
			 unsigned long long *scanned);
/* ws_timer handles alive (an idle ready connection holds none). Any
 * thread. */
size_t ws_server_timers(const struct ws_server *s);

/* lws thread only: timers. Returns a handle for cancel. The handle is
 * freed when fn starts: never cancel it from fn or after it ran. */
struct ws_timer;
struct ws_timer *ws_timer_add(struct ws_server *s, int64_t delay_ms,
			      void (*fn)(void *arg), void *arg);
void ws_timer_cancel(struct ws_timer *t);

/* lws thread only: per-connection operations. */
/* Queue a text frame. Returns 0, or -1 if the connection is closing or the
 * output queue would pass max_buffered (then it is closed 1008
 * "slow consumer"). */
int ws_conn_send(struct ws_conn *c, const char *text, size_t len);

/* Output batching. A connection's queued frames go out in as few writes
 * as possible: every frame queued when the socket becomes writable is
 * framed here and written at once (up to 64 KiB, or one bigger frame).
 * That is only valid while no extension (permessage-deflate) rewrites
 * frames: the vhost offers none. CLAWGATE_WS_BATCH=0 writes frame by
 * frame (A/B). */

/* A frame's text shared by the queues of several connections (a
 * broadcast serialized once): text[0, split), then each connection's own
 * number in decimal (e.g. its seq), then text[split, len). Owns text
 * (malloc'd); refcounted. Made on any thread, then used and released on
 * the lws thread only. */
struct ws_shared;
struct ws_shared *ws_shared_new(char *text, size_t len, size_t split);
void ws_shared_unref(struct ws_shared *sh);
/* Its text (len bytes, the number goes at split). */
const char *ws_shared_text(const struct ws_shared *sh, size_t *len,
			   size_t *split);

#define WS_SEND_DROP_IF_SLOW 1u	/* skip, do not close, when over limits */
/* Queue a text frame: head's text with num spliced in (nothing copied
 * until it is written; no allocation per frame in the steady state).
 * Returns 0 when queued, 1 when skipped (WS_SEND_DROP_IF_SLOW and the
 * frame would pass the connection's max_buffered or the global budget),
 * -1 as ws_conn_send. */
int ws_conn_send_shared(struct ws_conn *c, struct ws_shared *head,
			uint64_t num, unsigned flags);

/* The RFC 6455 header of an unmasked, final server text frame of len
 * payload bytes: 2, 4 or 10 bytes written to out. */
#define WS_FRAME_HDR_MAX 10
size_t ws_frame_header(unsigned char out[WS_FRAME_HDR_MAX], size_t len);

/* Output figures so far (any thread, approximate while it runs): data
 * frames written, write calls (lws_write) that carried them, frames that
 * shared a write with others, frames skipped by WS_SEND_DROP_IF_SLOW. */
struct ws_out_stats {
	unsigned long long frames, writes, batched, dropped;
};
void ws_server_out_stats(const struct ws_server *s, struct ws_out_stats *st);
/* Flush what is queued, then close with code and reason (reason truncated
 * to 120 bytes). code 0 = drop without a close frame. */
void ws_conn_close(struct ws_conn *c, int code, const char *reason);
void ws_conn_set_max_payload(struct ws_conn *c, size_t n);
size_t ws_conn_buffered(const struct ws_conn *c);
int ws_conn_is_closing(const struct ws_conn *c);
void ws_conn_set_user(struct ws_conn *c, void *user);
void *ws_conn_user(const struct ws_conn *c);
uint64_t ws_conn_id(const struct ws_conn *c);
/* Peer address as text ("127.0.0.1", "::1") and whether it is loopback. */
const char *ws_conn_peer_ip(const struct ws_conn *c);
int ws_conn_peer_is_loopback(const struct ws_conn *c);
/* Request headers captured at upgrade (NULL when absent). Names lowercase:
 * "origin", "x-forwarded-for", "x-real-ip", "forwarded", "host",
 * "user-agent", "x-forwarded-proto", "x-forwarded-host". */
const char *ws_conn_header(const struct ws_conn *c, const char *name);
/* Call fn for each live connection (lws thread only). */
void ws_server_foreach(struct ws_server *s,
		       void (*fn)(struct ws_conn *c, void *arg), void *arg);
