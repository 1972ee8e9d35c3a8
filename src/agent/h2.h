/* h2: a small HTTP/2 client for https upstreams (issue 11), on nghttp2
 * over OpenSSL. libcurl keeps ~10 KB per held HTTP/2 stream (its easy
 * handle, stream state, the response headers it keeps); a held stream
 * here costs nghttp2's stream and a ~100-byte h2_stream.
 *
 * One h2 per agent thread (provider.c), used from it alone: origins
 * (host:port) with their connections (ALPN "h2", else the origin is
 * remembered as HTTP/1.1-only and its requests are handed back to be sent
 * through libcurl), streams multiplexed up to max_streams or the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS per connection, then a new connection
 * up to the request's pool_max_host, then a FIFO. A burst waits for the
 * first connection's SETTINGS instead of opening one each. Host names are
 * resolved on a short-lived thread that posts the answer back (cbs.post).
 * Trust: the system roots (OpenSSL's hashed directory, else its bundle
 * file) plus NODE_EXTRA_CA_CERTS's PEM file, one SSL_CTX for the process
 * (rebuilt when that file changes); chain and host name (or IP) checked.
 */
#pragma once

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

struct h2;
struct h2_stream;

/* What h2 hands back with a request it will not send (cbs.fallback), or
 * takes at h2_start. The strings are owned by whoever holds the struct. */
struct h2_req {
	char *url;		/* https://host[:port]/path */
	char *hlines;		/* "Name: value\r\n"... (secrets inside) */
	char *body;
	size_t body_len;
	int64_t timeout_ms;	/* whole request (0: none) */
	int64_t connect_timeout_ms;
	long pool_max_idle, pool_max_host, pool_idle_s;	/* 0: defaults */
};

struct h2_cbs {
	/* Response body bytes; sse: the Content-Type is text/event-stream.
	 * 0 stops the stream (RST_STREAM CANCEL; done with
	 * CURLE_WRITE_ERROR). */
	int (*body)(void *arg, int status, int sse, const char *p, size_t n);
	/* The stream is over: status (0: none), cerr a CURLE_* code (0: a
	 * complete response) with msg. The caller then h2_stream_free()s
	 * it (now or later; no callback comes for it any more). */
	void (*done)(void *arg, int status, int cerr, const char *msg);
	/* The origin does not speak HTTP/2: rq's strings are the caller's
	 * now (send them another way); then h2_stream_free as for done. */
	void (*fallback)(void *arg, struct h2_req *rq);
	/* Any thread: run fn(arg) on the h2's thread; -1 when it stops. */
	int (*post)(void *ctx, void (*fn)(void *arg), void *arg);
	void *post_ctx;
};

/* 1 when url is "https://host[:port][/path]" that h2 can send (no user
 * info, a path of printable ASCII, a host name or IP literal). */
int h2_url_ok(const char *url);

struct h2 *h2_new(const struct h2_cbs *cbs, uint32_t max_streams);
/* Every stream must have been freed. */
void h2_free(struct h2 *c);
/* 1 when url's origin answered ALPN without h2 (send it another way). */
int h2_origin_no_h2(struct h2 *c, const char *url);
/* Queue a request (rq's strings taken, also on failure); arg is given to
 * the callbacks. It goes out from h2_run. */
struct h2_stream *h2_start(struct h2 *c, struct h2_req *rq, void *arg);
/* Cancel (RST_STREAM CANCEL when it is open; other streams go on) or
 * release after done/fallback. NULL is fine. */
void h2_stream_free(struct h2_stream *s);

/* The loop: h2_pollset adds the connections' sockets through add (which
 * returns the slot) and caps *wait_ms; h2_polled gets their revents back
 * by slot; h2_run steps what is ready, checks deadlines and idle
 * connections, and calls the callbacks. */
void h2_pollset(struct h2 *c, int (*add)(void *arg, int fd, short events),
		void *arg, int *wait_ms);
void h2_polled(struct h2 *c, short (*get)(void *arg, int slot), void *arg);
void h2_run(struct h2 *c);
