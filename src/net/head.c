/* Strict HTTP/1.x request head check (RFC 9112 sections 2-6). The listener
 * runs it on the peeked bytes of every new connection: a head that a proxy
 * in front of us and libmicrohttpd could frame differently (bare LF,
 * obs-fold, two lengths, length plus chunked, no Host) never reaches
 * either library. */
#include "net/head.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar. */
static int
head_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Does the comma-separated value v[0..len) hold tok (case-insensitive;
 * "tok/version" counts)? */
static int
head_has_token(const char *v, size_t len, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	while (i < len) {
		size_t start, end;

		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start >= tl &&
		    strncasecmp(v + start, tok, tl) == 0 &&
		    (end - start == tl || v[start + tl] == '/'))
			return 1;
	}
	return 0;
}

static int
head_name_is(const char *n, size_t nl, const char *want)
{
	return nl == strlen(want) && strncasecmp(n, want, nl) == 0;
}

static enum head_result
head_bad(struct head_info *hi, enum head_result r, const char *why)
{
	hi->why = why;
	return r;
}

/* method SP request-target SP HTTP-version */
static enum head_result
head_request_line(const char *l, size_t ll, struct head_info *hi)
{
	size_t i = 0, m, t0;
	const char *v;

	while (i < ll && head_tchar((unsigned char)l[i]))
		i++;
	m = i;
	if (m == 0 || i >= ll || l[i] != ' ')
		return head_bad(hi, HEAD_BAD, "bad request line");
	hi->get = m == 3 && memcmp(l, "GET", 3) == 0;
	t0 = ++i;
	while (i < ll && (unsigned char)l[i] > 0x20 &&
	       (unsigned char)l[i] != 0x7f)
		i++;
	if (i == t0 || i >= ll || l[i] != ' ')
		return head_bad(hi, HEAD_BAD, "bad request target");
	i++;
	v = l + i;
	if (ll - i != 8 || memcmp(v, "HTTP/", 5) != 0 ||
	    v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
	    v[7] > '9')
		return head_bad(hi, HEAD_BAD, "bad HTTP version");
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return head_bad(hi, HEAD_BAD_VERSION,
				"HTTP version not supported");
	hi->http11 = v[7] == '1';
	return HEAD_OK;
}

struct head_state {
	int hosts, lengths, encodings, upgrade, connection, chunked;
	int nonzero_length;
};

/* field-name ":" OWS field-value OWS */
static enum head_result
head_field(const char *l, size_t ll, struct head_info *hi,
	   struct head_state *st)
{
	size_t i = 0, n, vs, ve;

	if (l[0] == ' ' || l[0] == '\t')
		return head_bad(hi, HEAD_BAD, "obsolete line folding");
	while (i < ll && head_tchar((unsigned char)l[i]))
		i++;
	n = i;
	if (n == 0 || i >= ll || l[i] != ':')
		return head_bad(hi, HEAD_BAD, "bad header field name");
	i++;
	while (i < ll && (l[i] == ' ' || l[i] == '\t'))
		i++;
	vs = i;
	for (; i < ll; i++) {
		unsigned char c = (unsigned char)l[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return head_bad(hi, HEAD_BAD,
					"control byte in header value");
	}
	ve = ll;
	while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
		ve--;
	if (head_name_is(l, n, "host")) {
		st->hosts++;
	} else if (head_name_is(l, n, "content-length")) {
		size_t k;

		st->lengths++;
		if (ve == vs || ve - vs > 19)
			return head_bad(hi, HEAD_BAD, "bad Content-Length");
		for (k = vs; k < ve; k++) {
			if (l[k] < '0' || l[k] > '9')
				return head_bad(hi, HEAD_BAD,
						"bad Content-Length");
			if (l[k] != '0')
				st->nonzero_length = 1;
		}
	} else if (head_name_is(l, n, "transfer-encoding")) {
		st->encodings++;
		if (ve - vs != 7 || strncasecmp(l + vs, "chunked", 7) != 0)
			return head_bad(hi, HEAD_BAD,
					"unsupported Transfer-Encoding");
		st->chunked = 1;
	} else if (head_name_is(l, n, "upgrade")) {
		if (head_has_token(l + vs, ve - vs, "websocket"))
			st->upgrade = 1;
	} else if (head_name_is(l, n, "connection")) {
		if (head_has_token(l + vs, ve - vs, "upgrade"))
			st->connection = 1;
	}
	return HEAD_OK;
}

enum head_result
head_check(const char *buf, size_t len, size_t max, struct head_info *hi)
{
	struct head_state st;
	enum head_result r;
	size_t p = 0;
	int line = 0;

	memset(hi, 0, sizeof(*hi));
	memset(&st, 0, sizeof(st));
	if (len > max)
		len = max;
	for (;;) {
		const char *nl = memchr(buf + p, '\n', len - p);
		size_t e, ll;

		if (nl == NULL) {
			/* A partial line: a NUL or a CR that is not the
			 * last byte can already be refused. */
			const char *cr = memchr(buf + p, '\r', len - p);

			if (memchr(buf + p, '\0', len - p) != NULL)
				return head_bad(hi, HEAD_BAD, "NUL in head");
			if (cr != NULL && cr + 1 < buf + len)
				return head_bad(hi, HEAD_BAD, "bare CR");
			if (len >= max)
				return head_bad(hi, HEAD_TOO_BIG,
						"request head too large");
			return HEAD_INCOMPLETE;
		}
		e = (size_t)(nl - buf);
		if (e == p || buf[e - 1] != '\r')
			return head_bad(hi, HEAD_BAD, "bare LF");
		ll = e - 1 - p;
		if (memchr(buf + p, '\r', ll) != NULL)
			return head_bad(hi, HEAD_BAD, "bare CR");
		if (line == 0) {
			r = head_request_line(buf + p, ll, hi);
			if (r != HEAD_OK)
				return r;
		} else if (ll == 0) {
			hi->head_len = e + 1;
			break;
		} else {
			if (++hi->fields > HEAD_MAX_FIELDS)
				return head_bad(hi, HEAD_TOO_BIG,
						"too many header fields");
			r = head_field(buf + p, ll, hi, &st);
			if (r != HEAD_OK)
				return r;
		}
		p = e + 1;
		line++;
	}
	if (hi->http11 ? st.hosts != 1 : st.hosts > 1)
		return head_bad(hi, HEAD_BAD, st.hosts ? "more than one Host" :
				"missing Host");
	if (st.lengths > 1)
		return head_bad(hi, HEAD_BAD, "more than one Content-Length");
	if (st.encodings > 1)
		return head_bad(hi, HEAD_BAD,
				"more than one Transfer-Encoding");
	if (st.lengths && st.encodings)
		return head_bad(hi, HEAD_BAD,
				"Content-Length with Transfer-Encoding");
	if (st.encodings && !hi->http11)
		return head_bad(hi, HEAD_BAD, "Transfer-Encoding on HTTP/1.0");
	hi->websocket = hi->get && st.upgrade && st.connection;
	hi->has_body = st.chunked || st.nonzero_length;
	return HEAD_OK;
}

const char *
head_status_line(enum head_result r)
{
	switch (r) {
	case HEAD_TOO_BIG:
		return "431 Request Header Fields Too Large";
	case HEAD_BAD_VERSION:
		return "505 HTTP Version Not Supported";
	default:
		return "400 Bad Request";
	}
}
