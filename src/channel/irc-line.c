/* IRC wire text: parser, sanitiser, Markdown rendering, splitter. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "channel/irc-line.h"
#include "core/common.h"
#include "core/util.h"

static int irc_line_cmd_ok(const char *c)
{
	size_t i, n = strlen(c);

	if (n == 3 && isdigit((unsigned char)c[0]) &&
	    isdigit((unsigned char)c[1]) && isdigit((unsigned char)c[2]))
		return 1;
	if (n == 0 || n > 32)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalpha((unsigned char)c[i]))
			return 0;
	return 1;
}

int irc_line_parse(char *line, struct irc_msg *m)
{
	char *p = line, *sp, *cmd;

	memset(m, 0, sizeof(*m));
	if (strpbrk(line, "\r\n"))
		return -1;
	if (*p == '@') {
		sp = strchr(p, ' ');
		if (!sp)
			return -1;
		*sp = 0;
		m->tags = p + 1;
		p = sp + 1;
		while (*p == ' ')
			p++;
	}
	if (*p == ':') {
		sp = strchr(p, ' ');
		if (!sp || sp == p + 1)
			return -1;
		*sp = 0;
		m->prefix = p + 1;
		p = sp + 1;
		while (*p == ' ')
			p++;
	}
	if (!*p)
		return -1;
	cmd = p;
	m->command = p;
	sp = strchr(p, ' ');
	if (sp) {
		*sp = 0;
		p = sp + 1;
	} else {
		p += strlen(p);
	}
	if (!irc_line_cmd_ok(cmd))
		return -1;
	for (; *cmd; cmd++)
		*cmd = (char)toupper((unsigned char)*cmd);
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (*p == ':' || m->nparams == IRC_PARAMS_MAX - 1) {
			if (*p == ':')
				p++;
			m->params[m->nparams++] = p;
			break;
		}
		m->params[m->nparams++] = p;
		sp = strchr(p, ' ');
		if (!sp)
			break;
		*sp = 0;
		p = sp + 1;
	}
	return 0;
}

size_t irc_line_nick(const char *prefix, char *out, size_t cap)
{
	size_t n = 0;

	if (cap)
		out[0] = 0;
	if (!prefix || !cap)
		return 0;
	while (prefix[n] && prefix[n] != '!' && prefix[n] != '@' &&
	       n + 1 < cap) {
		out[n] = prefix[n];
		n++;
	}
	out[n] = 0;
	return n;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t irc_line_utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

int irc_line_utf8_valid(const char *s, size_t n)
{
	size_t i = 0, l;

	while (i < n) {
		l = irc_line_utf8_seq((const unsigned char *)s + i, n - i);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

size_t irc_line_sanitize(char *s)
{
	unsigned char *r = (unsigned char *)s, *w = (unsigned char *)s;
	size_t n = strlen(s), l, k;
	unsigned char *end = r + n;

	while (r < end) {
		if (*r == 0x03) {	/* colour: \x03[N[N][,N[N]]] */
			r++;
			for (k = 0; k < 2 && r < end && isdigit(*r); k++)
				r++;
			if (k && r + 1 < end && *r == ',' && isdigit(r[1])) {
				r++;
				for (k = 0; k < 2 && r < end && isdigit(*r);
				     k++)
					r++;
			}
			continue;
		}
		if (*r == 0x04) {	/* hex colour: \x04RRGGBB[,RRGGBB] */
			r++;
			for (k = 0; k < 6 && r < end && isxdigit(*r); k++)
				r++;
			if (k == 6 && r + 1 < end && *r == ',' &&
			    isxdigit(r[1])) {
				r++;
				for (k = 0; k < 6 && r < end && isxdigit(*r);
				     k++)
					r++;
			}
			continue;
		}
		if (*r == '\t') {
			*w++ = ' ';
			r++;
			continue;
		}
		if (*r < 0x20 || *r == 0x7f) {
			r++;
			continue;
		}
		l = irc_line_utf8_seq(r, (size_t)(end - r));
		if (!l) {
			*w++ = '?';
			r++;
			continue;
		}
		memmove(w, r, l);
		w += l;
		r += l;
	}
	*w = 0;
	return (size_t)(w - (unsigned char *)s);
}

static int irc_line_lc(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c == '[')
		return '{';
	if (c == ']')
		return '}';
	if (c == '\\')
		return '|';
	if (c == '~')
		return '^';
	return c;
}

int irc_line_casecmp(const char *a, const char *b)
{
	int x, y;

	for (;; a++, b++) {
		x = irc_line_lc((unsigned char)*a);
		y = irc_line_lc((unsigned char)*b);
		if (x != y || !x)
			return x - y;
	}
}

char *irc_line_lower(const char *s)
{
	char *o = xstrdup(s);

	for (char *p = o; *p; p++)
		*p = (char)irc_line_lc((unsigned char)*p);
	return o;
}

int irc_line_is_channel(const char *t)
{
	return t && (*t == '#' || *t == '&' || *t == '+' || *t == '!');
}

/* ---- Markdown to plain text ---------------------------------------------- */

/* One line outside a code fence. */
static void irc_line_md_inline(struct util_buf *b, const char *s,
			       size_t n)
{
	size_t i = 0, j;

	/* heading marks and quote markers */
	while (i < n && s[i] == '#')
		i++;
	if (i > 0 && i < n && s[i] == ' ')
		i++;
	else
		i = 0;
	if (i == 0 && n > 1 && s[0] == '>' && s[1] == ' ')
		i = 2;
	for (; i < n; i++) {
		char c = s[i];

		if (c == '`') {	/* inline code: keep contents verbatim */
			for (j = i + 1; j < n && s[j] != '`'; j++)
				;
			if (j < n) {
				util_buf_put(b, s + i + 1, j - i - 1);
				i = j;
				continue;
			}
			util_buf_put(b, s + i, 1);
			continue;
		}
		if ((c == '*' || c == '_' || c == '~') && i + 1 < n &&
		    s[i + 1] == c) {
			i++;	/* ** __ ~~ */
			continue;
		}
		if (c == '*' && !((i == 0 || s[i - 1] == ' ') &&
				  (i + 1 >= n || s[i + 1] == ' ')))
			continue;	/* emphasis, not a bullet or a lone star */
		if (c == '[') {	/* [text](url) */
			const char *cb = memchr(s + i, ']', n - i);

			if (cb && (size_t)(cb - s) + 1 < n && cb[1] == '(') {
				const char *cp = memchr(cb, ')',
							n - (size_t)(cb - s));

				if (cp) {
					size_t tl = (size_t)(cb - s) - i - 1;
					size_t ul = (size_t)(cp - cb) - 2;

					util_buf_put(b, s + i + 1, tl);
					if (ul && (tl != ul ||
						   memcmp(s + i + 1, cb + 2,
							  ul))) {
						util_buf_put(b, " (", 2);
						util_buf_put(b, cb + 2, ul);
						util_buf_put(b, ")", 1);
					}
					i = (size_t)(cp - s);
					continue;
				}
			}
		}
		util_buf_put(b, &c, 1);
	}
}

char *irc_line_markdown(const char *md)
{
	struct util_buf b = { 0 };
	const char *p = md, *nl;
	int fence = 0;

	util_buf_put(&b, "", 0);
	while (*p) {
		size_t n;
		const char *q;

		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		if (n && p[n - 1] == '\r')
			n--;
		q = p;
		while (q < p + n && *q == ' ')
			q++;
		if (p + n - q >= 3 && strncmp(q, "```", 3) == 0) {
			fence = !fence;	/* drop the fence line itself */
		} else {
			if (fence)
				util_buf_put(&b, p, n);
			else
				irc_line_md_inline(&b, p, n);
			util_buf_put(&b, "\n", 1);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	while (b.len && b.p[b.len - 1] == '\n')
		b.p[--b.len] = 0;
	return b.p;
}

/* ---- splitting -------------------------------------------------------------- */

static void irc_line_push(char ***v, size_t *n, const char *s, size_t len)
{
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (!len)
		return;
	*v = xrealloc(*v, (*n + 2) * sizeof(**v));
	(*v)[(*n)++] = xstrndup(s, len);
	(*v)[*n] = NULL;
}

size_t irc_line_split(const char *text, size_t max, char ***out)
{
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	const char *p = text;

	if (max < 8)
		max = 8;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		while (len > 0) {
			size_t cut, k;

			while (len && *p == ' ') {
				p++;
				len--;
			}
			if (!len)
				break;
			if (len <= max) {
				irc_line_push(&v, &n, p, len);
				p += len;
				len = 0;
				break;
			}
			/* last space within the limit */
			cut = 0;
			for (k = max; k > 0; k--) {
				if (p[k] == ' ') {
					cut = k;
					break;
				}
			}
			if (cut == 0) {
				/* no space: cut on a UTF-8 boundary */
				cut = max;
				while (cut > 0 &&
				       ((unsigned char)p[cut] & 0xc0) == 0x80)
					cut--;
				if (cut == 0)
					cut = max;
			}
			irc_line_push(&v, &n, p, cut);
			p += cut;
			len -= cut;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	*out = v;
	return n;
}

void irc_line_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t irc_line_budget(const char *nick, size_t userhost_len,
		       const char *command, const char *target)
{
	/* ":" nick "!" userhost " " command " " target " :" text "\r\n" */
	size_t used = 1 + strlen(nick) + 1 + userhost_len + 1 +
		      strlen(command) + 1 + strlen(target) + 2 + 2;

	return used + 16 >= IRC_LINE_MAX ? 16 : IRC_LINE_MAX - used;
}
