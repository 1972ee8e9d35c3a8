/* h1: response parser, URL check and request head of the plain-http
 * upstream client (see h1.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/h1.h"
#include "core/common.h"
#include "core/util.h"

enum {
	H1_S_HEAD = 0,		/* status line and headers */
	H1_S_LEN,		/* Content-Length body */
	H1_S_CLOSE,		/* body until the peer closes */
	H1_S_CSIZE,		/* chunk-size line */
	H1_S_CDATA,		/* chunk data */
	H1_S_CCRLF,		/* the CRLF after chunk data */
	H1_S_TRAILER,		/* trailer lines after the last chunk */
	H1_S_DONE,
	H1_S_ERROR,
};

#define H1_LINE_MAX 1024	/* a chunk-size or trailer line */

void h1_resp_init(struct h1_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->left = -1;
}

void h1_resp_free(struct h1_resp *r)
{
	free(r->head);
	r->head = NULL;
	r->hlen = r->hcap = 0;
}

int h1_resp_started(const struct h1_resp *r)
{
	return r->hlen > 0 || r->state != H1_S_HEAD || r->status != 0;
}

static int h1_fail(struct h1_resp *r, const char *why)
{
	r->state = H1_S_ERROR;
	r->err = why;
	return -1;
}

static void h1_keep(struct h1_resp *r, const char *p, size_t n, size_t max)
{
	if (r->hlen + n + 1 > r->hcap) {
		size_t cap = r->hcap ? r->hcap : 256;

		while (cap < r->hlen + n + 1)
			cap *= 2;
		if (cap > max + 1)
			cap = max + 1;
		r->head = xrealloc(r->head, cap);
		r->hcap = cap;
	}
	memcpy(r->head + r->hlen, p, n);
	r->hlen += n;
	r->head[r->hlen] = 0;
}

/* Case-insensitive: does the comma list v (length n) hold token tok? */
static int h1_has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok), i = 0, s, e;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return 1;
	}
	return 0;
}

/* The last coding of a Transfer-Encoding list is chunked. */
static int h1_last_chunked(const char *v, size_t n)
{
	size_t e = n, s;

	while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
		e--;
	s = e;
	while (s > 0 && v[s - 1] != ',' && v[s - 1] != ' ' && v[s - 1] != '\t')
		s--;
	return e - s == 7 && strncasecmp(v + s, "chunked", 7) == 0;
}

/* Parse the complete head in r->head (hlen bytes, ending with the empty
 * line). Returns 0, or -1 on a protocol error; 1 for an interim (1xx)
 * response that is dropped. */
static int h1_parse_head(struct h1_resp *r)
{
	const char *p = r->head, *end = r->head + r->hlen, *nl, *c;
	size_t ll, nlen, vlen;
	int minor, status, have_len = 0, te = 0, te_chunked = 0;
	int conn_close = 0, conn_keep = 0;
	int64_t len = -1;

	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		return h1_fail(r, "no status line");
	ll = (size_t)(nl - p);
	if (ll && p[ll - 1] == '\r')
		ll--;
	if (ll < 12 || memcmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
	    !isdigit((unsigned char)p[11]) || (ll > 12 && p[12] != ' '))
		return h1_fail(r, "bad status line");
	minor = p[7] - '0';
	status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (status < 100)
		return h1_fail(r, "bad status code");
	p = nl + 1;
	r->ctype[0] = 0;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		ll = (size_t)(nl - p);
		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break;
		if (*p == ' ' || *p == '\t')	/* obsolete line folding */
			return h1_fail(r, "folded header line");
		c = memchr(p, ':', ll);
		if (!c || c == p)
			return h1_fail(r, "bad header line");
		nlen = (size_t)(c - p);
		c++;
		while (c < p + ll && (*c == ' ' || *c == '\t'))
			c++;
		vlen = (size_t)(p + ll - c);
		while (vlen && (c[vlen - 1] == ' ' || c[vlen - 1] == '\t'))
			vlen--;
		if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
			int64_t v = 0;
			size_t i;

			if (!vlen || vlen > 18)
				return h1_fail(r, "bad Content-Length");
			for (i = 0; i < vlen; i++) {
				if (!isdigit((unsigned char)c[i]))
					return h1_fail(r, "bad Content-Length");
				v = v * 10 + (c[i] - '0');
			}
			if (have_len && v != len)
				return h1_fail(r, "conflicting Content-Length");
			have_len = 1;
			len = v;
		} else if (nlen == 17 &&
			   strncasecmp(p, "transfer-encoding", 17) == 0) {
			te = 1;
			te_chunked = h1_last_chunked(c, vlen);
		} else if (nlen == 10 &&
			   strncasecmp(p, "connection", 10) == 0) {
			conn_close |= h1_has_token(c, vlen, "close");
			conn_keep |= h1_has_token(c, vlen, "keep-alive");
		} else if (nlen == 12 &&
			   strncasecmp(p, "content-type", 12) == 0) {
			size_t k = vlen < H1_CTYPE_MAX - 1 ? vlen
							   : H1_CTYPE_MAX - 1;

			memcpy(r->ctype, c, k);
			r->ctype[k] = 0;
		}
		p = nl + 1;
	}
	if (status < 200) {
		if (status == 101)
			return h1_fail(r, "unexpected protocol switch");
		return 1;	/* 100 Continue, 102, 103: the next head */
	}
	r->status = status;
	r->keepalive = minor == 1 ? !conn_close : conn_keep && !conn_close;
	if (status == 204 || status == 304) {
		r->state = H1_S_DONE;
		return 0;
	}
	if (te) {
		if (!te_chunked)
			return h1_fail(r, "unsupported transfer coding");
		r->chunked = 1;
		r->keepalive = r->keepalive && !have_len;
		r->state = H1_S_CSIZE;
	} else if (have_len) {
		r->left = len;
		r->state = len ? H1_S_LEN : H1_S_DONE;
	} else {
		r->keepalive = 0;
		r->state = H1_S_CLOSE;
	}
	return 0;
}

/* The head so far ends with its empty line: the offset just past it in
 * buf[0..n), or 0. from: where to start looking. */
static size_t h1_head_end(const char *b, size_t n, size_t from)
{
	size_t i;

	for (i = from; i < n; i++) {
		if (b[i] != '\n')
			continue;
		if (i >= 1 && b[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && b[i - 1] == '\r' && b[i - 2] == '\n')
			return i + 1;
	}
	return 0;
}

static int h1_body(struct h1_resp *r, const char *p, size_t n,
		   h1_body_fn fn, void *arg)
{
	if (!n)
		return 0;
	r->body_bytes += n;
	return fn(arg, p, n) ? 0 : -2;
}

/* A chunk-size line (without its line end): the size, or -1. */
static int64_t h1_chunk_size(const char *l, size_t n)
{
	int64_t v = 0;
	size_t i = 0;
	int d, any = 0;

	while (i < n && isxdigit((unsigned char)l[i])) {
		if (v > ((int64_t)1 << 50))
			return -1;
		d = isdigit((unsigned char)l[i]) ? l[i] - '0'
			: (tolower((unsigned char)l[i]) - 'a' + 10);
		v = v * 16 + d;
		i++;
		any = 1;
	}
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (!any || (i < n && l[i] != ';'))
		return -1;
	return v;
}

int h1_resp_feed(struct h1_resp *r, const char *p, size_t n, size_t *used,
		 h1_body_fn fn, void *arg)
{
	size_t i = 0, k, e, from;
	const char *nl;
	int rc;

	*used = 0;
	while (i < n || r->state == H1_S_DONE) {
		switch (r->state) {
		case H1_S_HEAD:
			from = r->hlen > 3 ? r->hlen - 3 : 0;
			k = n - i;
			if (r->hlen + k > H1_HEAD_MAX)
				k = H1_HEAD_MAX - r->hlen;
			h1_keep(r, p + i, k, H1_HEAD_MAX);
			e = h1_head_end(r->head, r->hlen, from);
			if (!e) {
				if (r->hlen >= H1_HEAD_MAX)
					return h1_fail(r, "response head too "
						       "large");
				i += k;
				break;
			}
			/* Bytes past the head's end go back to the input. */
			i += k - (r->hlen - e);
			r->hlen = e;
			rc = h1_parse_head(r);
			h1_resp_free(r);	/* a held stream keeps none */
			if (rc < 0)
				return -1;
			break;	/* 1 (interim): parse the next head */
		case H1_S_LEN:
		case H1_S_CDATA:	/* counted bytes: a body, a chunk */
			k = n - i;
			if ((int64_t)k > r->left)
				k = (size_t)r->left;
			r->left -= (int64_t)k;
			if (h1_body(r, p + i, k, fn, arg) < 0)
				return -2;
			i += k;
			if (!r->left)
				r->state = r->state == H1_S_LEN ? H1_S_DONE
								: H1_S_CCRLF;
			break;
		case H1_S_CLOSE:
			if (h1_body(r, p + i, n - i, fn, arg) < 0)
				return -2;
			i = n;
			break;
		case H1_S_CSIZE:
		case H1_S_CCRLF:
		case H1_S_TRAILER:
			nl = memchr(p + i, '\n', n - i);
			k = nl ? (size_t)(nl - (p + i)) + 1 : n - i;
			if (r->hlen + k > H1_LINE_MAX)
				return h1_fail(r, "chunk line too long");
			h1_keep(r, p + i, k, H1_LINE_MAX);
			i += k;
			if (!nl)
				break;
			e = r->hlen - 1;		/* without \n */
			if (e && r->head[e - 1] == '\r')
				e--;
			r->hlen = 0;
			r->head[e] = 0;
			if (r->state == H1_S_CCRLF) {
				if (e)
					return h1_fail(r, "bad chunk end");
				r->state = H1_S_CSIZE;
			} else if (r->state == H1_S_TRAILER) {
				if (!e)
					r->state = H1_S_DONE;
			} else {
				r->left = h1_chunk_size(r->head, e);
				if (r->left < 0)
					return h1_fail(r, "bad chunk size");
				r->state = r->left ? H1_S_CDATA
						   : H1_S_TRAILER;
			}
			h1_resp_free(r);
			break;
		case H1_S_DONE:
			*used = i;
			return 1;
		default:
			return -1;
		}
	}
	*used = i;
	return 0;
}

int h1_resp_eof(struct h1_resp *r)
{
	if (r->state == H1_S_CLOSE || r->state == H1_S_DONE) {
		r->state = H1_S_DONE;
		return 1;
	}
	if (r->state == H1_S_ERROR)
		return -1;
	r->state = H1_S_ERROR;
	r->err = r->status ? "transfer closed with outstanding read data "
			     "remaining" : "empty or incomplete reply from "
			     "server";
	return -1;
}

/* ---- targets and the request head ------------------------------------------ */

int h1_url_parse(const char *url, struct h1_target *t)
{
	const char *a, *e, *pe, *q;
	char host[64];
	size_t hl;
	long port = 80;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&t->sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->sa;

	memset(t, 0, sizeof(*t));
	if (!url || strncmp(url, "http://", 7) != 0)
		return 0;
	a = url + 7;
	e = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(e - a)))
		return 0;
	if (*a == '[') {
		q = memchr(a, ']', (size_t)(e - a));
		if (!q)
			return 0;
		hl = (size_t)(q - a - 1);
		if (hl == 0 || hl >= sizeof(host))
			return 0;
		memcpy(host, a + 1, hl);
		host[hl] = 0;
		pe = q + 1;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return 0;
		s6->sin6_family = AF_INET6;
		t->salen = sizeof(*s6);
	} else {
		q = memchr(a, ':', (size_t)(e - a));
		pe = q ? q : e;
		hl = (size_t)(pe - a);
		if (hl == 0 || hl >= sizeof(host))
			return 0;
		memcpy(host, a, hl);
		host[hl] = 0;
		/* Only dotted-quad literals (inet_pton takes no short
		 * forms), never a name. */
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return 0;
		s4->sin_family = AF_INET;
		t->salen = sizeof(*s4);
	}
	if (pe < e) {
		char *x;

		if (*pe != ':' || pe + 1 == e)
			return 0;
		port = strtol(pe + 1, &x, 10);
		if (x != e || port < 1 || port > 65535 || pe[1] == '+' ||
		    pe[1] == '-')
			return 0;
	}
	if (t->sa.ss_family == AF_INET)
		s4->sin_port = htons((uint16_t)port);
	else
		s6->sin6_port = htons((uint16_t)port);
	if ((size_t)(e - a) >= sizeof(t->hostport))
		return 0;
	memcpy(t->hostport, a, (size_t)(e - a));
	t->hostport[e - a] = 0;
	t->path = e;
	t->path_len = strcspn(e, "#");
	for (q = e; q < e + t->path_len; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return 0;
	return 1;
}

static const char *const h1_own_headers[] = {
	"host", "content-type", "content-length", "accept", "user-agent",
	"authorization", "connection", "transfer-encoding", "expect",
	"accept-encoding", "te", "upgrade",
};

int h1_headers_ok(const json_t *headers)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)headers, k, v) {
		for (i = 0; i < sizeof(h1_own_headers) /
			    sizeof(h1_own_headers[0]); i++)
			if (strcasecmp(k, h1_own_headers[i]) == 0)
				return 0;
	}
	return 1;
}

void h1_header_lines(struct util_buf *b, const char *api_key,
		     const json_t *headers)
{
	const char *k;
	json_t *v;

	util_buf_puts(b, "Content-Type: application/json\r\n"
		      "Accept: text/event-stream, application/json\r\n");
	if (api_key && *api_key) {
		util_buf_puts(b, "Authorization: Bearer ");
		util_buf_puts(b, api_key);
		util_buf_puts(b, "\r\n");
	}
	/* As for libcurl (provider.c): names or values that would split
	 * the head are left out. */
	json_object_foreach((json_t *)headers, k, v) {
		if (!json_is_string(v) || !*k || strpbrk(k, "\r\n:") ||
		    strpbrk(json_string_value(v), "\r\n"))
			continue;
		util_buf_puts(b, k);
		util_buf_puts(b, ": ");
		util_buf_puts(b, json_string_value(v));
		util_buf_puts(b, "\r\n");
	}
}

char *h1_request_head(const struct h1_target *t, const char *api_key,
		      const json_t *headers, size_t body_len, size_t *len)
{
	struct util_buf b = {0};
	char n[32];

	util_buf_puts(&b, "POST ");
	if (*t->path != '/')
		util_buf_put(&b, "/", 1);
	util_buf_put(&b, t->path, t->path_len);
	util_buf_puts(&b, " HTTP/1.1\r\nHost: ");
	util_buf_puts(&b, t->hostport);
	util_buf_puts(&b, "\r\nUser-Agent: clawgate\r\n");
	h1_header_lines(&b, api_key, headers);
	snprintf(n, sizeof(n), "%zu", body_len);
	util_buf_puts(&b, "Content-Length: ");
	util_buf_puts(&b, n);
	util_buf_puts(&b, "\r\n\r\n");
	*len = b.len;
	return b.p;
}
