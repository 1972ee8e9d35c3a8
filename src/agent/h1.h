/* h1: a small HTTP/1.1 client for plain-http upstreams on IP literals
 * (issue 11). The agent thread sends most upstream requests to a model
 * server on loopback or the local network over http://; libcurl spends
 * ~95k instructions and ~14 KB per such request on generality these
 * requests do not need. Everything else (https, host names, proxies from
 * the environment, provider headers that replace a standard one, a
 * per-host connection limit) stays on libcurl: h1_url_parse and
 * h1_headers_ok decide, provider.c drives both from one poll loop.
 *
 * The response parser (h1_resp_*) is pure and bounded: it is unit tested
 * and fuzzed (tests/fuzz/fuzz-h1.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

/* ---- the response parser ------------------------------------------------ */

#define H1_HEAD_MAX (64u * 1024)	/* status line + headers */
#define H1_CTYPE_MAX 128

/* Body bytes as they arrive (chunked framing removed); 0 to stop. */
typedef int (*h1_body_fn)(void *arg, const char *p, size_t n);

struct h1_resp {
	int state;		/* enum in h1.c */
	int status;		/* the final (non-1xx) status, once parsed */
	int keepalive;		/* the connection may carry another request */
	int chunked;
	int64_t left;		/* Content-Length or chunk bytes left; -1 */
	uint64_t body_bytes;	/* body bytes delivered */
	char ctype[H1_CTYPE_MAX];	/* Content-Type ("" when none) */
	char *head;		/* the head (or a chunk-size line) so far */
	size_t hlen, hcap;
	const char *err;	/* why it failed (static text) */
};

void h1_resp_init(struct h1_resp *r);
void h1_resp_free(struct h1_resp *r);
/* Feed n received bytes. Returns 1 when the response is complete (*used:
 * the bytes it took; more than that on a keep-alive connection is a
 * protocol error for us), 0 when more is needed, -1 on a protocol error
 * (r->err), -2 when fn asked to stop. */
int h1_resp_feed(struct h1_resp *r, const char *p, size_t n, size_t *used,
		 h1_body_fn fn, void *arg);
/* The peer closed: 1 when that ends the response (a body delimited by
 * the close), else -1 (r->err). */
int h1_resp_eof(struct h1_resp *r);
/* Any byte of a response seen (a reused connection that fails before
 * one may be retried). */
int h1_resp_started(const struct h1_resp *r);

/* ---- targets ----------------------------------------------------------------- */

struct h1_target {
	struct sockaddr_storage sa;
	socklen_t salen;
	char hostport[64];	/* the Host header */
	const char *path;	/* into the URL: path and query ("/" when
				 * empty is written as "/") */
	size_t path_len;
};

/* 1 when url is "http://IP[:port][/path]" with an IPv4 literal or a
 * bracketed IPv6 literal, no user info and a path of printable ASCII;
 * t->path points into url. 0: use libcurl. */
int h1_url_parse(const char *url, struct h1_target *t);
/* 1 when no provider header (name -> string) replaces or removes one h1
 * writes itself (Host, Content-Type, Content-Length, Accept, User-Agent,
 * Authorization, Connection, Transfer-Encoding, Expect). */
int h1_headers_ok(const json_t *headers);
/* The header lines every upstream request carries ("Name: value\r\n":
 * Content-Type, Accept, Authorization, then the provider's, filtered as
 * for libcurl), appended to b (also h2's and libcurl's, provider.c). */
struct util_buf;
void h1_header_lines(struct util_buf *b, const char *api_key,
		     const json_t *headers);
/* The request head (without the body) into a new string; *len its
 * length. Header lines are filtered as provider.c does for libcurl. */
char *h1_request_head(const struct h1_target *t, const char *api_key,
		      const json_t *headers, size_t body_len, size_t *len);
