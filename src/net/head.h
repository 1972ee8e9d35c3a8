/* Strict check of an HTTP/1.x request head (RFC 9112) before the listener
 * hands a connection to lws or libmicrohttpd. Pure: unit-tested and
 * fuzzed (tests/fuzz/fuzz-head.c). */
#pragma once

#include <stddef.h>

/* More header fields than this: 431. */
#define HEAD_MAX_FIELDS 100

enum head_result {
	HEAD_INCOMPLETE = 0,	/* no blank line yet, nothing wrong so far */
	HEAD_OK,		/* complete and well formed */
	HEAD_BAD,		/* 400 */
	HEAD_TOO_BIG,		/* 431: over max bytes or HEAD_MAX_FIELDS */
	HEAD_BAD_VERSION,	/* 505: HTTP/x.y other than 1.0 and 1.1 */
};

struct head_info {
	int get;		/* method is GET */
	int http11;		/* HTTP/1.1 (else 1.0) */
	int websocket;		/* GET + Upgrade: websocket + Connection:
				 * upgrade */
	int has_body;		/* Content-Length > 0 or chunked */
	size_t head_len;	/* bytes up to and including the blank
				 * line (HEAD_OK) */
	int fields;
	const char *why;	/* static text when not OK */
};

/* Check buf[0..len), the first bytes a peer sent (at most max are
 * considered). Lines end in CRLF only; exactly one Host on 1.1 (at most
 * one on 1.0); Content-Length is one field of digits and never comes with
 * Transfer-Encoding; Transfer-Encoding is "chunked" on 1.1 only; no
 * obs-fold, no whitespace before a colon, no control bytes in values.
 * A line that is complete is judged at once, so a bad head is refused
 * before it ends. */
enum head_result head_check(const char *buf, size_t len, size_t max,
			    struct head_info *hi);

/* The status line for a refusal ("400 Bad Request", ...). */
const char *head_status_line(enum head_result r);
