/* rpc-json.c: the request frame's parse without jansson's lexer.
 *
 * jansson's json_loadb reads its input a byte at a time through a stream
 * that checks UTF-8 per character and copies every token into a string
 * buffer (~28k instructions for a chat.send frame, most of the ws thread's
 * parse). This is a strict scanner of the same grammar that builds the
 * same jansson tree straight from the input. It only takes what it is
 * sure jansson takes the same way; for anything else (a real number, an
 * integer past 18 digits, a \u0000, an escaped object key, a duplicate
 * key, deep nesting, any syntax error) it gives up and the caller parses
 * with jansson, so accepted frames, rejected frames and their errors stay
 * jansson's. tests/fuzz/fuzz-wsjson.c checks that every tree it gives is
 * the one jansson gives. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc-json.h"

/* Nesting taken here; deeper frames go to jansson (its limit is 2048). */
#define RPC_JSON_DEPTH 32

struct rpc_json {
	const unsigned char *p, *end;
	unsigned depth;
	char *buf;		/* decoded strings with escapes */
	size_t cap;
};

static json_t *rpc_json_value(struct rpc_json *r);

static void rpc_json_ws(struct rpc_json *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' ||
				 *r->p == '\r' || *r->p == '\t'))
		r->p++;
}

/* Length of the well-formed UTF-8 sequence (2-4 bytes) at p, else 0
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t rpc_json_utf8(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static int rpc_json_hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0, i, d;

	for (i = 0; i < 4; i++) {
		d = p[i];
		if (d >= '0' && d <= '9')
			d -= '0';
		else if (d >= 'a' && d <= 'f')
			d = d - 'a' + 10;
		else if (d >= 'A' && d <= 'F')
			d = d - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

/* The string whose opening quote r->p is past: *s and *len point into the
 * input (no escapes) or into r->buf (decoded). *esc says which. */
static int rpc_json_str(struct rpc_json *r, const char **s, size_t *len,
			int *esc)
{
	const unsigned char *start = r->p, *p = r->p, *end = r->end;
	unsigned char *o;
	unsigned cp, lo;
	size_t n;

	for (;;) {
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' &&
		       *p != '\\')
			p++;
		if (p >= end || *p < 0x20)
			return -1;
		if (*p == '"') {
			*s = (const char *)start;
			*len = (size_t)(p - start);
			*esc = 0;
			r->p = p + 1;
			return 0;
		}
		if (*p == '\\')
			break;
		n = rpc_json_utf8(p, end);
		if (!n)
			return -1;
		p += n;
	}
	/* Escapes: decode from the start into r->buf; the decoded text is
	 * never longer than its source, which is within the input. */
	if (r->cap < (size_t)(end - start)) {
		free(r->buf);
		r->cap = (size_t)(end - start);
		r->buf = malloc(r->cap);
		if (!r->buf) {
			r->cap = 0;
			return -1;
		}
	}
	memcpy(r->buf, start, (size_t)(p - start));
	o = (unsigned char *)r->buf + (p - start);
	for (;;) {
		if (p >= end || *p < 0x20)
			return -1;
		if (*p == '"')
			break;
		if (*p >= 0x80) {
			n = rpc_json_utf8(p, end);
			if (!n)
				return -1;
			memcpy(o, p, n);
			o += n;
			p += n;
			continue;
		}
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		if (end - p < 2)
			return -1;
		switch (p[1]) {
		case '"': case '\\': case '/':
			*o++ = p[1];
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			if (end - p < 6 || rpc_json_hex4(p + 2, &cp) != 0 ||
			    cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
				return -1;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 12 || p[6] != '\\' ||
				    p[7] != 'u' ||
				    rpc_json_hex4(p + 8, &lo) != 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
				p += 6;
			}
			if (cp < 0x80) {
				*o++ = (unsigned char)cp;
			} else if (cp < 0x800) {
				*o++ = (unsigned char)(0xc0 | cp >> 6);
				*o++ = (unsigned char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				*o++ = (unsigned char)(0xe0 | cp >> 12);
				*o++ = (unsigned char)(0x80 |
						       ((cp >> 6) & 0x3f));
				*o++ = (unsigned char)(0x80 | (cp & 0x3f));
			} else {
				*o++ = (unsigned char)(0xf0 | cp >> 18);
				*o++ = (unsigned char)(0x80 |
						       ((cp >> 12) & 0x3f));
				*o++ = (unsigned char)(0x80 |
						       ((cp >> 6) & 0x3f));
				*o++ = (unsigned char)(0x80 | (cp & 0x3f));
			}
			p += 4;
			break;
		default:
			return -1;
		}
		p += 2;
	}
	*s = r->buf;
	*len = (size_t)(o - (unsigned char *)r->buf);
	*esc = 1;
	r->p = p + 1;
	return 0;
}

/* An integer of at most 18 digits (no overflow); reals are jansson's. */
static json_t *rpc_json_int(struct rpc_json *r)
{
	const unsigned char *p = r->p, *end = r->end, *d;
	int neg = 0;
	long long v = 0;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	d = p;
	if (p < end && *p == '0') {
		p++;
	} else {
		while (p < end && *p >= '0' && *p <= '9' && p - d <= 18)
			p++;
	}
	if (p == d || p - d > 18)
		return NULL;
	for (; d < p; d++)
		v = v * 10 + (*d - '0');
	if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' ||
			*p == 'E'))
		return NULL;
	r->p = p;
	return json_integer(neg ? -v : v);
}

static json_t *rpc_json_word(struct rpc_json *r, const char *w, size_t n,
			     json_t *v)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
		return NULL;
	r->p += n;
	return v;
}

/* Past the closing byte of an empty object or array: 1, else 0. */
static int rpc_json_empty(struct rpc_json *r, unsigned char close)
{
	rpc_json_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return 1;
	}
	return 0;
}

/* After a member or an element: 1 past the closing byte, 0 past a comma,
 * -1 on anything else. */
static int rpc_json_sep(struct rpc_json *r, unsigned char close)
{
	rpc_json_ws(r);
	if (r->p >= r->end || (*r->p != close && *r->p != ','))
		return -1;
	return *r->p++ == close;
}

static json_t *rpc_json_object(struct rpc_json *r)
{
	json_t *o = json_object(), *v;
	const char *k;
	size_t klen;
	int esc, sep;

	if (!o || rpc_json_empty(r, '}'))
		return o;
	for (;;) {
		if (r->p >= r->end || *r->p != '"')
			goto fail;
		r->p++;
		if (rpc_json_str(r, &k, &klen, &esc) != 0 || esc ||
		    json_object_getn(o, k, klen))
			goto fail;
		rpc_json_ws(r);
		if (r->p >= r->end || *r->p != ':')
			goto fail;
		r->p++;
		v = rpc_json_value(r);
		if (!v || json_object_setn_new_nocheck(o, k, klen, v) != 0)
			goto fail;
		sep = rpc_json_sep(r, '}');
		if (sep < 0)
			goto fail;
		if (sep > 0)
			return o;
		rpc_json_ws(r);
	}
fail:
	json_decref(o);
	return NULL;
}

static json_t *rpc_json_array(struct rpc_json *r)
{
	json_t *a = json_array(), *v;
	int sep;

	if (!a || rpc_json_empty(r, ']'))
		return a;
	for (;;) {
		v = rpc_json_value(r);
		if (!v || json_array_append_new(a, v) != 0)
			goto fail;
		sep = rpc_json_sep(r, ']');
		if (sep < 0)
			goto fail;
		if (sep > 0)
			return a;
	}
fail:
	json_decref(a);
	return NULL;
}

static json_t *rpc_json_value(struct rpc_json *r)
{
	json_t *v = NULL;
	const char *s;
	size_t len;
	int esc;

	rpc_json_ws(r);
	if (r->p >= r->end)
		return NULL;
	switch (*r->p) {
	case '{':
	case '[':
		if (r->depth >= RPC_JSON_DEPTH)
			return NULL;
		r->depth++;
		r->p++;
		v = r->p[-1] == '{' ? rpc_json_object(r) : rpc_json_array(r);
		r->depth--;
		return v;
	case '"':
		r->p++;
		if (rpc_json_str(r, &s, &len, &esc) != 0)
			return NULL;
		return json_stringn_nocheck(s, len);
	case 't':
		return rpc_json_word(r, "true", 4, json_true());
	case 'f':
		return rpc_json_word(r, "false", 5, json_false());
	case 'n':
		return rpc_json_word(r, "null", 4, json_null());
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			return rpc_json_int(r);
		return NULL;
	}
}

json_t *rpc_json_load(const char *data, size_t len)
{
	struct rpc_json r = {(const unsigned char *)data,
			     (const unsigned char *)data + len, 0, NULL, 0};
	json_t *v = NULL;

	rpc_json_ws(&r);
	if (r.p >= r.end || (*r.p != '{' && *r.p != '['))
		goto out;
	v = rpc_json_value(&r);
	rpc_json_ws(&r);
	if (v && r.p != r.end) {
		json_decref(v);
		v = NULL;
	}
out:
	free(r.buf);
	return v;
}

json_t *rpc_json_frame(const char *data, size_t len, json_error_t *jerr)
{
	json_t *v = rpc_json_load(data, len);

	return v ? v : json_loadb(data, len, JSON_REJECT_DUPLICATES, jerr);
}
