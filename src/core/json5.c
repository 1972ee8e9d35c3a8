/* JSON5 reader (https://spec.json5.org/). One pass over the input with a
 * recursive descent parser whose recursion is bounded by JSON5_MAX_DEPTH.
 * The line and column are updated as code points are consumed, so every
 * error carries the position where it was found. The input is validated as
 * UTF-8 everywhere, comments included. Strings and keys are built in one
 * scratch buffer owned by the parser. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/json5.h"

struct json5_pos {
	int line;
	int col;
};

struct json5_parser {
	const unsigned char *p;
	const unsigned char *end;
	int line;
	int col;
	bool after_cr;		/* last code point was CR: LF adds no line */
	int depth;
	char *buf;		/* scratch for strings, keys and numbers */
	size_t buf_len;
	size_t buf_cap;
	struct json5_error *err;
};

static struct json5_pos json5_here(const struct json5_parser *ps)
{
	struct json5_pos pos = { ps->line, ps->col };

	return pos;
}

/* Record an error (the first one wins) and return -1. */
static int json5_fail(struct json5_parser *ps, struct json5_pos pos,
		      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int json5_fail(struct json5_parser *ps, struct json5_pos pos,
		      const char *fmt, ...)
{
	va_list ap;

	if (!ps->err || ps->err->line)
		return -1;
	ps->err->line = pos.line;
	ps->err->column = pos.col;
	va_start(ap, fmt);
	vsnprintf(ps->err->message, sizeof(ps->err->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* Decode one UTF-8 sequence: its length, or 0 if it is invalid (truncated,
 * overlong, a surrogate or above U+10FFFF). */
static int json5_decode(const unsigned char *p, const unsigned char *end,
			uint32_t *cp)
{
	size_t avail = (size_t)(end - p);
	uint32_t c = p[0];
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xc2)
		return 0;
	if (c < 0xe0) {
		if (avail < 2 || (p[1] & 0xc0) != 0x80)
			return 0;
		*cp = ((c & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if (c < 0xf0) {
		if (avail < 3 || (p[1] & 0xc0) != 0x80 ||
		    (p[2] & 0xc0) != 0x80)
			return 0;
		v = ((c & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) |
		    (p[2] & 0x3f);
		if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		*cp = v;
		return 3;
	}
	if (c < 0xf5) {
		if (avail < 4 || (p[1] & 0xc0) != 0x80 ||
		    (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		v = ((c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
		    ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
		if (v < 0x10000 || v > 0x10ffff)
			return 0;
		*cp = v;
		return 4;
	}
	return 0;
}

/* Look at the next code point without consuming it: its length in bytes,
 * 0 at the end of input, -1 (error recorded) on invalid UTF-8. */
static int json5_peek(struct json5_parser *ps, uint32_t *cp)
{
	int n;

	*cp = 0;
	if (ps->p >= ps->end)
		return 0;
	if (*ps->p < 0x80) {
		*cp = *ps->p;
		return 1;
	}
	n = json5_decode(ps->p, ps->end, cp);
	if (n == 0)
		return json5_fail(ps, json5_here(ps),
				  "invalid UTF-8 (byte 0x%02x)", *ps->p);
	return n;
}

static void json5_advance(struct json5_parser *ps, uint32_t cp, int n)
{
	ps->p += n;
	if (cp == '\n') {
		if (!ps->after_cr)
			ps->line++;
		ps->col = 1;
	} else if (cp == '\r' || cp == 0x2028 || cp == 0x2029) {
		ps->line++;
		ps->col = 1;
	} else {
		ps->col++;
	}
	ps->after_cr = cp == '\r';
}

/* Error for an unexpected code point as returned by json5_peek. */
static int json5_fail_char(struct json5_parser *ps, int n, uint32_t cp)
{
	if (n < 0)
		return -1;
	if (n == 0)
		return json5_fail(ps, json5_here(ps),
				  "unexpected end of input");
	if (cp >= 0x20 && cp < 0x7f)
		return json5_fail(ps, json5_here(ps),
				  "invalid character '%c'", (int)cp);
	return json5_fail(ps, json5_here(ps), "invalid character U+%04X",
			  (unsigned)cp);
}

/* JSON5 WhiteSpace and LineTerminator (Zs included). */
static bool json5_is_ws(uint32_t cp)
{
	switch (cp) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f:
	case 0x205f: case 0x3000: case 0xfeff:
		return true;
	default:
		return cp >= 0x2000 && cp <= 0x200a;
	}
}

static bool json5_is_digit(uint32_t cp)
{
	return cp >= '0' && cp <= '9';
}

static int json5_hex_value(uint32_t cp)
{
	if (cp >= '0' && cp <= '9')
		return (int)(cp - '0');
	if (cp >= 'a' && cp <= 'f')
		return (int)(cp - 'a' + 10);
	if (cp >= 'A' && cp <= 'F')
		return (int)(cp - 'A' + 10);
	return -1;
}

/* IdentifierStart / IdentifierPart, loosely for non-ASCII: any code point
 * that is not whitespace or a surrogate is taken as a letter. */
static bool json5_is_id_char(uint32_t cp, bool start)
{
	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
		       cp == '$' || cp == '_' || (!start && json5_is_digit(cp));
	if (cp >= 0xd800 && cp <= 0xdfff)
		return false;
	return !json5_is_ws(cp);
}

static void json5_buf_add(struct json5_parser *ps, const void *data,
			  size_t n)
{
	size_t cap = ps->buf_cap;

	if (cap - ps->buf_len < n + 1) {
		while (cap - ps->buf_len < n + 1)
			cap *= 2;
		ps->buf = xrealloc(ps->buf, cap);
		ps->buf_cap = cap;
	}
	memcpy(ps->buf + ps->buf_len, data, n);
	ps->buf_len += n;
	ps->buf[ps->buf_len] = '\0';
}

static void json5_buf_add_cp(struct json5_parser *ps, uint32_t cp)
{
	unsigned char s[4];
	size_t n;

	if (cp < 0x80) {
		s[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (unsigned char)(0xc0 | (cp >> 6));
		s[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (unsigned char)(0xe0 | (cp >> 12));
		s[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (unsigned char)(0xf0 | (cp >> 18));
		s[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		s[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		s[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	json5_buf_add(ps, s, n);
}

static void json5_buf_reset(struct json5_parser *ps)
{
	ps->buf_len = 0;
	ps->buf[0] = '\0';
}

/* Skip whitespace and comments. 0 (also at the end of input) or -1. */
static int json5_skip_ws(struct json5_parser *ps)
{
	struct json5_pos start;
	uint32_t cp;
	int n;

	for (;;) {
		n = json5_peek(ps, &cp);
		if (n <= 0)
			return n;
		if (json5_is_ws(cp)) {
			json5_advance(ps, cp, n);
			continue;
		}
		if (cp != '/')
			return 0;
		start = json5_here(ps);
		json5_advance(ps, cp, n);
		n = json5_peek(ps, &cp);
		if (n > 0 && cp == '/') {
			json5_advance(ps, cp, n);
			for (;;) {
				n = json5_peek(ps, &cp);
				if (n < 0)
					return -1;
				if (n == 0 || cp == '\n' || cp == '\r' ||
				    cp == 0x2028 || cp == 0x2029)
					break;
				json5_advance(ps, cp, n);
			}
		} else if (n > 0 && cp == '*') {
			json5_advance(ps, cp, n);
			for (;;) {
				n = json5_peek(ps, &cp);
				if (n < 0)
					return -1;
				if (n == 0)
					return json5_fail(ps, start,
						"unterminated comment");
				json5_advance(ps, cp, n);
				if (cp == '*' && ps->p < ps->end &&
				    *ps->p == '/') {
					json5_advance(ps, '/', 1);
					break;
				}
			}
		} else {
			return json5_fail_char(ps, n, cp);
		}
	}
}

/* Consume exactly the ASCII word (a literal such as "true"). */
static int json5_match_word(struct json5_parser *ps, const char *word)
{
	uint32_t cp;
	int n;

	for (; *word; word++) {
		n = json5_peek(ps, &cp);
		if (n <= 0 || cp != (unsigned char)*word)
			return json5_fail_char(ps, n, cp);
		json5_advance(ps, cp, n);
	}
	return 0;
}

/* Read count hex digits at the cursor into *v; -1 (nothing recorded and
 * nothing consumed) if they are not all there. */
static int json5_read_hex(struct json5_parser *ps, int count, uint32_t *v)
{
	int i, d;

	if (ps->end - ps->p < count)
		return -1;
	*v = 0;
	for (i = 0; i < count; i++) {
		d = json5_hex_value(ps->p[i]);
		if (d < 0)
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	ps->p += count;
	ps->col += count;
	ps->after_cr = false;
	return 0;
}

/* The \uXXXX escape (the "\u" already consumed), joining a surrogate pair
 * written as two escapes. pos is the backslash, for errors. */
static int json5_read_u_escape(struct json5_parser *ps, struct json5_pos pos,
			       uint32_t *cp)
{
	uint32_t lo;

	if (json5_read_hex(ps, 4, cp) < 0)
		return json5_fail(ps, pos, "invalid \\u escape");
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return json5_fail(ps, pos,
				  "invalid \\u escape (lone surrogate)");
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 0;
	if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
		return json5_fail(ps, pos,
				  "invalid \\u escape (lone surrogate)");
	ps->p += 2;
	ps->col += 2;
	if (json5_read_hex(ps, 4, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
		return json5_fail(ps, pos,
				  "invalid \\u escape (lone surrogate)");
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

/* One escape sequence inside a string, the cursor on the backslash. */
static int json5_parse_escape(struct json5_parser *ps, struct json5_pos start)
{
	struct json5_pos pos = json5_here(ps);
	uint32_t cp, v = 0;
	int n;

	json5_advance(ps, '\\', 1);
	n = json5_peek(ps, &cp);
	if (n < 0)
		return -1;
	if (n == 0)
		return json5_fail(ps, start, "unterminated string");
	json5_advance(ps, cp, n);
	switch (cp) {
	case 'b': v = '\b'; break;
	case 'f': v = '\f'; break;
	case 'n': v = '\n'; break;
	case 'r': v = '\r'; break;
	case 't': v = '\t'; break;
	case 'v': v = '\v'; break;
	case '0':
		if (ps->p < ps->end && json5_is_digit(*ps->p))
			return json5_fail(ps, pos, "invalid escape '\\0%c'",
					  *ps->p);
		v = 0;
		break;
	case '1': case '2': case '3': case '4': case '5':
	case '6': case '7': case '8': case '9':
		return json5_fail(ps, pos, "invalid escape '\\%c'", (int)cp);
	case 'x':
		if (json5_read_hex(ps, 2, &v) < 0)
			return json5_fail(ps, pos, "invalid \\x escape");
		break;
	case 'u':
		if (json5_read_u_escape(ps, pos, &v) < 0)
			return -1;
		break;
	case '\r':
		if (ps->p < ps->end && *ps->p == '\n')
			json5_advance(ps, '\n', 1);
		return 0;
	case '\n': case 0x2028: case 0x2029:
		return 0;	/* line continuation */
	default:
		v = cp;		/* any other character is itself */
		break;
	}
	json5_buf_add_cp(ps, v);
	return 0;
}

/* A quoted string, the cursor on the quote, into ps->buf. */
static int json5_parse_string(struct json5_parser *ps)
{
	struct json5_pos start = json5_here(ps);
	const unsigned char *run;
	unsigned char q = *ps->p;
	uint32_t cp;
	int n;

	json5_buf_reset(ps);
	json5_advance(ps, q, 1);
	for (;;) {
		run = ps->p;
		while (ps->p < ps->end && *ps->p >= 0x20 && *ps->p < 0x80 &&
		       *ps->p != q && *ps->p != '\\')
			ps->p++;
		if (ps->p != run) {
			json5_buf_add(ps, run, (size_t)(ps->p - run));
			ps->col += (int)(ps->p - run);
			ps->after_cr = false;
		}
		n = json5_peek(ps, &cp);
		if (n < 0)
			return -1;
		if (n == 0 || cp == '\n' || cp == '\r')
			return json5_fail(ps, start, "unterminated string");
		if (cp == q) {
			json5_advance(ps, cp, n);
			return 0;
		}
		if (cp == '\\') {
			if (json5_parse_escape(ps, start) < 0)
				return -1;
			continue;
		}
		json5_buf_add(ps, ps->p, (size_t)n);
		json5_advance(ps, cp, n);
	}
}

/* An unquoted key (ECMAScript IdentifierName) into ps->buf. */
static int json5_parse_ident(struct json5_parser *ps)
{
	struct json5_pos pos;
	bool start = true;
	uint32_t cp;
	int n;

	json5_buf_reset(ps);
	for (;; start = false) {
		n = json5_peek(ps, &cp);
		if (n < 0)
			return -1;
		if (n > 0 && cp == '\\') {
			pos = json5_here(ps);
			json5_advance(ps, cp, n);
			n = json5_peek(ps, &cp);
			if (n <= 0 || cp != 'u')
				return json5_fail_char(ps, n, cp);
			json5_advance(ps, cp, n);
			if (json5_read_hex(ps, 4, &cp) < 0)
				return json5_fail(ps, pos,
						  "invalid \\u escape");
			if (!json5_is_id_char(cp, start))
				return json5_fail(ps, pos,
					"invalid identifier escape");
			json5_buf_add_cp(ps, cp);
		} else if (n > 0 && json5_is_id_char(cp, start)) {
			json5_buf_add(ps, ps->p, (size_t)n);
			json5_advance(ps, cp, n);
		} else {
			return 0;
		}
	}
}

/* Copy a key for an error message: printable, whole code points, short. */
static void json5_key_excerpt(const char *key, size_t len, char *out,
			      size_t size)
{
	const unsigned char *p = (const unsigned char *)key;
	const unsigned char *end = p + len;
	size_t o = 0;
	uint32_t cp;
	int n;

	while (p < end) {
		n = json5_decode(p, end, &cp);
		if (n == 0)
			n = 1;
		if (o + (size_t)n + 4 > size) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (cp < 0x20 || cp == 0x7f || cp == 0x2028 ||
		    cp == 0x2029) {
			out[o++] = '?';
		} else {
			memcpy(out + o, p, (size_t)n);
			o += (size_t)n;
		}
		p += n;
	}
	out[o] = '\0';
}

static int json5_parse_key(struct json5_parser *ps)
{
	struct json5_pos pos = json5_here(ps);
	uint32_t cp;
	int n;

	n = json5_peek(ps, &cp);
	if (n > 0 && (cp == '"' || cp == '\'')) {
		if (json5_parse_string(ps) < 0)
			return -1;
	} else if (n > 0 && (cp == '\\' || json5_is_id_char(cp, true))) {
		if (json5_parse_ident(ps) < 0)
			return -1;
	} else {
		return json5_fail_char(ps, n, cp);
	}
	if (memchr(ps->buf, '\0', ps->buf_len))
		return json5_fail(ps, pos,
				  "NUL character in a key is not supported");
	return 0;
}

/* Append decimal or hex digits to ps->buf; the number of digits. */
static size_t json5_read_digits(struct json5_parser *ps, bool hex)
{
	const unsigned char *run = ps->p;
	size_t n;

	while (ps->p < ps->end &&
	       (hex ? json5_hex_value(*ps->p) >= 0 : json5_is_digit(*ps->p)))
		ps->p++;
	n = (size_t)(ps->p - run);
	if (n) {
		json5_buf_add(ps, run, n);
		ps->col += (int)n;
		ps->after_cr = false;
	}
	return n;
}

/* Turn the number text in ps->buf ("-0x1f", "12", "1.5e3") into a value:
 * an integer when it has no fraction or exponent and fits int64. */
static int json5_number_value(struct json5_parser *ps, struct json5_pos start,
			      bool neg, bool hex, bool real, json_t **out)
{
	const char *s = ps->buf + (neg ? 1 : 0) + (hex ? 2 : 0);
	unsigned base = hex ? 16 : 10;
	uint64_t u = 0;
	bool big = false;
	double d;
	int digit;

	if (!real) {
		for (; *s; s++) {
			digit = json5_hex_value((unsigned char)*s);
			if (u > (UINT64_MAX - (uint64_t)digit) / base)
				big = true;
			u = u * base + (uint64_t)digit;
		}
		if (!big && u <= (uint64_t)INT64_MAX) {
			*out = json_integer(neg ? -(json_int_t)u :
					    (json_int_t)u);
			goto made;
		}
		if (!big && neg && u == (uint64_t)INT64_MAX + 1) {
			*out = json_integer(INT64_MIN);
			goto made;
		}
	}
	/* strtod rounds correctly, hex included (C99) */
	d = strtod(ps->buf, NULL);
	if (!isfinite(d))
		return json5_fail(ps, start, "number out of range");
	*out = json_real(d);
made:
	if (!*out)
		return json5_fail(ps, start, "out of memory");
	return 0;
}

static int json5_parse_number(struct json5_parser *ps, json_t **out)
{
	struct json5_pos start = json5_here(ps);
	bool neg = false, hex = false, real = false;
	size_t digits = 0;
	uint32_t cp;
	int n;

	json5_buf_reset(ps);
	n = json5_peek(ps, &cp);
	if (n > 0 && (cp == '+' || cp == '-')) {
		neg = cp == '-';
		if (neg)
			json5_buf_add(ps, "-", 1);
		json5_advance(ps, cp, n);
		n = json5_peek(ps, &cp);
	}
	if (n > 0 && (cp == 'I' || cp == 'N')) {
		if (json5_match_word(ps, cp == 'I' ? "Infinity" : "NaN") < 0)
			return -1;
		return json5_fail(ps, start, "Infinity/NaN is not supported");
	}
	if (n > 0 && cp == '0') {
		json5_buf_add(ps, "0", 1);
		json5_advance(ps, cp, n);
		digits = 1;
		n = json5_peek(ps, &cp);
		if (n > 0 && (cp == 'x' || cp == 'X')) {
			json5_advance(ps, cp, n);
			hex = true;
			json5_buf_add(ps, "x", 1);
			if (json5_read_digits(ps, true) == 0) {
				n = json5_peek(ps, &cp);
				return json5_fail_char(ps, n, cp);
			}
		} else if (n > 0 && json5_is_digit(cp)) {
			return json5_fail_char(ps, n, cp);
		}
	} else if (n > 0 && json5_is_digit(cp)) {
		digits = json5_read_digits(ps, false);
	} else if (n <= 0 || cp != '.') {
		return json5_fail_char(ps, n, cp);
	}
	if (!hex) {
		n = json5_peek(ps, &cp);
		if (n > 0 && cp == '.') {
			real = true;
			json5_buf_add(ps, ".", 1);
			json5_advance(ps, cp, n);
			digits += json5_read_digits(ps, false);
			if (digits == 0) {
				n = json5_peek(ps, &cp);
				return json5_fail_char(ps, n, cp);
			}
			n = json5_peek(ps, &cp);
		}
		if (n > 0 && (cp == 'e' || cp == 'E')) {
			real = true;
			json5_buf_add(ps, "e", 1);
			json5_advance(ps, cp, n);
			n = json5_peek(ps, &cp);
			if (n > 0 && (cp == '+' || cp == '-')) {
				json5_buf_add(ps, cp == '-' ? "-" : "+", 1);
				json5_advance(ps, cp, n);
			}
			if (json5_read_digits(ps, false) == 0) {
				n = json5_peek(ps, &cp);
				return json5_fail_char(ps, n, cp);
			}
		}
	}
	return json5_number_value(ps, start, neg, hex, real, out);
}

static int json5_parse_value(struct json5_parser *ps, json_t **out);

static int json5_parse_object(struct json5_parser *ps, json_t **out)
{
	struct json5_pos pos = json5_here(ps);
	char excerpt[64];
	json_t *obj = NULL;
	json_t *val = NULL;
	char *key = NULL;
	uint32_t cp;
	int n, r = -1;

	if (++ps->depth > JSON5_MAX_DEPTH) {
		json5_fail(ps, pos, "nesting too deep (limit %d)",
			   JSON5_MAX_DEPTH);
		goto out;
	}
	json5_advance(ps, '{', 1);
	obj = json_object();
	if (!obj) {
		json5_fail(ps, pos, "out of memory");
		goto out;
	}
	for (;;) {
		if (json5_skip_ws(ps) < 0 || (n = json5_peek(ps, &cp)) < 0)
			goto out;
		if (n > 0 && cp == '}') {
			json5_advance(ps, cp, n);
			break;
		}
		pos = json5_here(ps);
		if (json5_parse_key(ps) < 0)
			goto out;
		if (json_object_get(obj, ps->buf)) {
			json5_key_excerpt(ps->buf, ps->buf_len, excerpt,
					  sizeof(excerpt));
			json5_fail(ps, pos, "duplicate key \"%s\"", excerpt);
			goto out;
		}
		key = xstrndup(ps->buf, ps->buf_len);
		if (json5_skip_ws(ps) < 0 || (n = json5_peek(ps, &cp)) < 0)
			goto out;
		if (n == 0 || cp != ':') {
			if (n == 0)
				json5_fail_char(ps, n, cp);
			else
				json5_fail(ps, json5_here(ps),
					   "expected ':'");
			goto out;
		}
		json5_advance(ps, cp, n);
		if (json5_skip_ws(ps) < 0 || json5_parse_value(ps, &val) < 0)
			goto out;
		if (json_object_set_new(obj, key, val) < 0) {
			val = NULL;
			json5_fail(ps, pos, "out of memory");
			goto out;
		}
		val = NULL;
		free(key);
		key = NULL;
		if (json5_skip_ws(ps) < 0 || (n = json5_peek(ps, &cp)) < 0)
			goto out;
		if (n > 0 && cp == '}') {
			json5_advance(ps, cp, n);
			break;
		}
		if (n == 0 || cp != ',') {
			if (n == 0)
				json5_fail_char(ps, n, cp);
			else
				json5_fail(ps, json5_here(ps),
					   "expected ',' or '}'");
			goto out;
		}
		json5_advance(ps, cp, n);
	}
	*out = obj;
	obj = NULL;
	r = 0;
out:
	ps->depth--;
	free(key);
	json_decref(val);
	json_decref(obj);
	return r;
}

static int json5_parse_array(struct json5_parser *ps, json_t **out)
{
	struct json5_pos pos = json5_here(ps);
	json_t *arr = NULL;
	json_t *val = NULL;
	uint32_t cp;
	int n, r = -1;

	if (++ps->depth > JSON5_MAX_DEPTH) {
		json5_fail(ps, pos, "nesting too deep (limit %d)",
			   JSON5_MAX_DEPTH);
		goto out;
	}
	json5_advance(ps, '[', 1);
	arr = json_array();
	if (!arr) {
		json5_fail(ps, pos, "out of memory");
		goto out;
	}
	for (;;) {
		if (json5_skip_ws(ps) < 0 || (n = json5_peek(ps, &cp)) < 0)
			goto out;
		if (n > 0 && cp == ']') {
			json5_advance(ps, cp, n);
			break;
		}
		pos = json5_here(ps);
		if (json5_parse_value(ps, &val) < 0)
			goto out;
		if (json_array_append_new(arr, val) < 0) {
			val = NULL;
			json5_fail(ps, pos, "out of memory");
			goto out;
		}
		val = NULL;
		if (json5_skip_ws(ps) < 0 || (n = json5_peek(ps, &cp)) < 0)
			goto out;
		if (n > 0 && cp == ']') {
			json5_advance(ps, cp, n);
			break;
		}
		if (n == 0 || cp != ',') {
			if (n == 0)
				json5_fail_char(ps, n, cp);
			else
				json5_fail(ps, json5_here(ps),
					   "expected ',' or ']'");
			goto out;
		}
		json5_advance(ps, cp, n);
	}
	*out = arr;
	arr = NULL;
	r = 0;
out:
	ps->depth--;
	json_decref(val);
	json_decref(arr);
	return r;
}

/* A value, whitespace already skipped. */
static int json5_parse_value(struct json5_parser *ps, json_t **out)
{
	struct json5_pos pos = json5_here(ps);
	uint32_t cp;
	int n;

	*out = NULL;
	n = json5_peek(ps, &cp);
	if (n <= 0)
		return json5_fail_char(ps, n, cp);
	switch (cp) {
	case '{':
		return json5_parse_object(ps, out);
	case '[':
		return json5_parse_array(ps, out);
	case '"': case '\'':
		if (json5_parse_string(ps) < 0)
			return -1;
		*out = json_stringn(ps->buf, ps->buf_len);
		if (!*out)
			return json5_fail(ps, pos, "out of memory");
		return 0;
	case 't':
		if (json5_match_word(ps, "true") < 0)
			return -1;
		*out = json_true();
		return 0;
	case 'f':
		if (json5_match_word(ps, "false") < 0)
			return -1;
		*out = json_false();
		return 0;
	case 'n':
		if (json5_match_word(ps, "null") < 0)
			return -1;
		*out = json_null();
		return 0;
	case '+': case '-': case '.': case 'I': case 'N':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return json5_parse_number(ps, out);
	default:
		return json5_fail_char(ps, n, cp);
	}
}

int json5_parse(const char *buf, size_t len, json_t **out,
		struct json5_error *err)
{
	struct json5_parser ps = { 0 };
	struct json5_pos origin = { 1, 1 };
	json_t *v = NULL;
	uint32_t cp;
	int n, r = -1;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	ps.err = err;
	ps.line = 1;
	ps.col = 1;
	ps.buf_cap = 64;
	ps.buf = xmalloc(ps.buf_cap);
	ps.buf[0] = '\0';
	if (!buf)
		len = 0;
	ps.p = (const unsigned char *)(buf ? buf : "");
	ps.end = ps.p + len;
	if (len > JSON5_MAX_INPUT) {
		json5_fail(&ps, origin, "input too large (limit %u bytes)",
			   JSON5_MAX_INPUT);
		goto out;
	}
	/* A leading byte order mark takes no column. */
	if (len >= 3 && !memcmp(ps.p, "\xef\xbb\xbf", 3))
		ps.p += 3;
	if (json5_skip_ws(&ps) < 0 || json5_parse_value(&ps, &v) < 0 ||
	    json5_skip_ws(&ps) < 0)
		goto out;
	n = json5_peek(&ps, &cp);
	if (n != 0) {
		json5_fail_char(&ps, n, cp);
		goto out;
	}
	*out = v;
	v = NULL;
	r = 0;
out:
	free(ps.buf);
	json_decref(v);
	return r;
}
