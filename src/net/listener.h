/* The one port: accept, peek the request head, hand the fd to lws (WebSocket
 * upgrade) or MHD (everything else). Never touches an fd after hand-off. */
#pragma once

#include <sys/socket.h>

struct listener;

struct listener_cbs {
	/* Called on the listener thread. Ownership of fd passes to the callee
	 * (which must close it on failure). */
	void (*to_ws)(void *arg, int fd, const struct sockaddr *sa,
		      socklen_t salen);
	void (*to_http)(void *arg, int fd, const struct sockaddr *sa,
			socklen_t salen);
	void *arg;
};

enum listener_class {
	LISTENER_PENDING = 0,
	LISTENER_HTTP,
	LISTENER_WS,
	LISTENER_REFUSE,	/* answer *status and close */
};

/* Classify a peeked request head (pure; unit-tested). Every head must be
 * complete and pass head_check (net/head.h) before anyone gets the fd;
 * a complete GET head is WS when it has an Upgrade header with the token
 * "websocket" and a Connection header with the token "upgrade"
 * (case-insensitive); anything else well formed is HTTP. A bad head, or
 * one that fills the window unfinished, is REFUSE with *status ("400 Bad
 * Request", "431 ...", "505 ..."). */
enum listener_class listener_classify(const char *buf, size_t len,
				      size_t window, const char **status);

/* Answer "HTTP/1.1 <status>" with Connection: close and close fd (best
 * effort, never blocks). Also used by http for its 503. */
void listener_refuse(int fd, const char *status);

struct listener_stats {
	unsigned long accepted, refused, evicted, timed_out, bad_heads;
	unsigned long to_http, to_ws;
	int max_pending;	/* high-water mark of unclassified sockets */
};

/* Budgets for unclassified sockets: per source address (IPv4 address,
 * IPv6 /64) and in total. Over its budget, the newest socket of an
 * address is refused (503); when the total is full, the oldest socket of
 * the address holding the most is closed to make room. Call before
 * listener_start; values <= 0 keep the defaults (32 and 4096). */
void listener_set_budgets(struct listener *l, int per_addr, int total);
void listener_get_stats(const struct listener *l, struct listener_stats *out);

/* Bind every host in hosts[0..n) on port (hosts like "127.0.0.1", "::1",
 * "0.0.0.0"). Returns 0, or -errno of the first failure with *failed_host
 * naming it. Retries EADDRINUSE up to retries times, retry_ms apart. */
int listener_bind(struct listener **out, const char *const *hosts, int n,
		  int port, int retries, int retry_ms, const char **failed_host);
/* Adopt already-bound listening fds (for in-place restart). */
struct listener *listener_adopt(const int *fds, int n);
/* The bound fds (for re-exec inheritance). */
int listener_fds(const struct listener *l, int *fds, int max);
/* "127.0.0.1:18789, [::1]:18789" (owned). */
char *listener_describe(const struct listener *l);
int listener_start(struct listener *l, const struct listener_cbs *cbs);
/* Stop the thread; keep_fds leaves the listen sockets open. */
void listener_stop(struct listener *l, int keep_fds);
void listener_free(struct listener *l);

/* Port of the first bound socket (useful after binding port 0); -1 if
 * none. */
int listener_port(const struct listener *l);
/* Close pending (unclassified) sockets after ms of silence (default
 * 10000). Call before listener_start. */
void listener_set_pending_timeout(struct listener *l, int ms);
/* Format a peer address as text ("127.0.0.1", "::1"; v4-mapped IPv6 is
 * shown as IPv4) into buf and tell whether it is loopback (127/8, ::1,
 * ::ffff:127/104). Shared by http and ws. Returns buf ("" if unknown). */
const char *listener_addr_format(const struct sockaddr *sa, socklen_t salen,
				 char *buf, size_t len, int *loopback);
