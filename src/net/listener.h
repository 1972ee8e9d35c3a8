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

enum listener_class { LISTENER_PENDING = 0, LISTENER_HTTP, LISTENER_WS };

/* Classify a peeked request head (pure; unit-tested). Not "GET " → HTTP at
 * once; a complete GET head is WS when it has an Upgrade header with the
 * token "websocket" and a Connection header with the token "upgrade"
 * (case-insensitive); a head that fills the window unfinished → HTTP;
 * otherwise PENDING. */
enum listener_class listener_classify(const char *buf, size_t len,
				      size_t window);

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
