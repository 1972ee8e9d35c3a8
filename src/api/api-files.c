/* input_file parts of /v1/responses (reference/http-config-cli.md §1.7):
 * a base64 source with a text-like media type is decoded, bounded
 * (gateway.http.endpoints.responses.files.maxBytes, default 5 MB;
 * maxChars, default 60000), sanitised and rendered as the upstream
 * model-visible block that goes into the system prompt:
 *
 *   <file name="notes.txt">
 *
 *   <<<EXTERNAL_UNTRUSTED_CONTENT id="<16 hex>">>>
 *   Source: External
 *   ---
 *   <text>
 *   <<<END_EXTERNAL_UNTRUSTED_CONTENT id="<16 hex>">>>
 *   </file>
 *
 * URL sources (no outbound fetches from here) and PDFs (no extractor)
 * are refused with a clear message. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api/api-int.h"
#include "config/config.h"
#include "core/common.h"
#include "core/util.h"

#define FILES_MAX_BYTES (5 * 1024 * 1024)
#define FILES_MAX_CHARS 60000
#define FILES_NAME_MAX 255
#define FILES_CFG "gateway.http.endpoints.responses.files."

static const char *const files_default_mimes[] = {
	"text/plain", "text/markdown", "text/html", "text/csv",
	"application/json", "application/pdf",
};

/* Tokens that chat templates treat as structure: never passed through. */
static const char *const files_special[] = {
	"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>",
	"<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
	"<|eot_id|>", "<|python_tag|>", "<|eom_id|>", "[INST]", "[/INST]",
	"<<SYS>>", "<</SYS>>", "<s>", "</s>", "<|channel|>", "<|message|>",
	"<|return|>", "<|call|>", "<start_of_turn>", "<end_of_turn>",
};

static int64_t files_limit(const struct gw_config *cfg, const char *k,
			   int64_t def)
{
	char path[128];
	const json_t *v;

	snprintf(path, sizeof(path), FILES_CFG "%s", k);
	v = cfg && cfg->root ? config_get(cfg->root, path) : NULL;
	return json_is_integer(v) && json_integer_value(v) > 0 ?
		(int64_t)json_integer_value(v) : def;
}

static int files_mime_allowed(const struct gw_config *cfg, const char *mime)
{
	const json_t *l = cfg && cfg->root ?
		config_get(cfg->root, FILES_CFG "allowedMimes") : NULL, *v;
	size_t i;

	if (json_is_array(l)) {
		json_array_foreach(l, i, v)
			if (json_is_string(v) &&
			    strcasecmp(json_string_value(v), mime) == 0)
				return 1;
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(files_default_mimes); i++)
		if (strcmp(files_default_mimes[i], mime) == 0)
			return 1;
	return 0;
}

/* "text/plain; charset=utf-8" → mime (lowercase) and charset (or ""). */
static void files_content_type(const char *ct, char *mime, size_t mn,
			       char *cs, size_t cn)
{
	const char *p = ct ? ct : "", *c;
	size_t i = 0;

	while (*p == ' ')
		p++;
	while (*p && *p != ';' && *p != ' ' && i + 1 < mn)
		mime[i++] = (char)tolower((unsigned char)*p++);
	mime[i] = 0;
	cs[0] = 0;
	c = strcasestr(p, "charset=");
	if (c) {
		c += 8;
		if (*c == '"')
			c++;
		for (i = 0; c[i] && c[i] != ';' && c[i] != '"' &&
		     c[i] != ' ' && i + 1 < cn; i++)
			cs[i] = (char)tolower((unsigned char)c[i]);
		cs[i] = 0;
	}
}

/* Length of one valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t files_utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
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
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Bytes → UTF-8 text of at most max_chars characters: UTF-8 (invalid
 * bytes become U+FFFD, a BOM is dropped), or Latin-1 for the usual
 * single-byte charsets. NUL bytes are dropped. */
static char *files_decode(const unsigned char *in, size_t n, const char *cs,
			  size_t max_chars)
{
	struct util_buf b = {0};
	size_t i = 0, chars = 0, l;
	int latin1 = !strcmp(cs, "iso-8859-1") || !strcmp(cs, "latin1") ||
		     !strcmp(cs, "windows-1252") || !strcmp(cs, "us-ascii");
	char u[2];

	util_buf_put(&b, "", 0);
	if (!latin1 && n >= 3 && in[0] == 0xef && in[1] == 0xbb &&
	    in[2] == 0xbf)
		i = 3;
	while (i < n && chars < max_chars) {
		if (!in[i]) {
			i++;
			continue;
		}
		if (latin1) {
			if (in[i] < 0x80) {
				util_buf_put(&b, (const char *)in + i, 1);
			} else {
				u[0] = (char)(0xc0 | (in[i] >> 6));
				u[1] = (char)(0x80 | (in[i] & 0x3f));
				util_buf_put(&b, u, 2);
			}
			i++;
		} else if ((l = files_utf8_len(in + i, n - i))) {
			util_buf_put(&b, (const char *)in + i, l);
			i += l;
		} else {
			util_buf_puts(&b, "\xef\xbf\xbd");
			i++;
		}
		chars++;
	}
	return b.p;
}

/* Case-insensitive match of word at s; returns the length or 0. */
static size_t files_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	return strncasecmp(s, word, n) == 0 ? n : 0;
}

/* [\s_]+ at s: its length (0 when absent). */
static size_t files_sep(const char *s)
{
	size_t i = 0;

	while (s[i] == '_' || isspace((unsigned char)s[i]))
		i++;
	return i;
}

/* A spoofed boundary marker at s ("<<< [END_]EXTERNAL_UNTRUSTED_CONTENT
 * [id="..."] >>>", case and separator insensitive): its length, *end
 * set for the END form; 0 when none. */
static size_t files_marker(const char *s, int *end)
{
	size_t i, k;

	if (strncmp(s, "<<<", 3) != 0)
		return 0;
	i = 3;
	while (isspace((unsigned char)s[i]))
		i++;
	*end = 0;
	if ((k = files_word(s + i, "END")) && files_sep(s + i + k)) {
		*end = 1;
		i += k + files_sep(s + i + k);
	}
	if (!(k = files_word(s + i, "EXTERNAL")))
		return 0;
	i += k;
	if (!(k = files_sep(s + i)))
		return 0;
	i += k;
	if (!(k = files_word(s + i, "UNTRUSTED")))
		return 0;
	i += k;
	if (!(k = files_sep(s + i)))
		return 0;
	i += k;
	if (!(k = files_word(s + i, "CONTENT")))
		return 0;
	i += k;
	k = i;
	while (isspace((unsigned char)s[k]))
		k++;
	if (k > i && strncmp(s + k, "id=", 3) == 0) {
		k += 3;
		while (s[k] == '\\')
			k++;
		if (s[k] == '"') {
			k++;
			while (s[k] && s[k] != '"')
				k++;
			if (s[k] == '"')
				i = k + 1;
		}
	}
	while (isspace((unsigned char)s[i]))
		i++;
	return strncmp(s + i, ">>>", 3) == 0 ? i + 3 : 0;
}

/* "<|reserved_special_token_N|>" at s: its length or 0. */
static size_t files_reserved(const char *s)
{
	static const char pre[] = "<|reserved_special_token_";
	size_t i = sizeof(pre) - 1;

	if (strncmp(s, pre, i) != 0 || !isdigit((unsigned char)s[i]))
		return 0;
	while (isdigit((unsigned char)s[i]))
		i++;
	return strncmp(s + i, "|>", 2) == 0 ? i + 2 : 0;
}

/* A closing file tag ("<", "/", "file", ">" with any blanks between) or
 * an opening one ("<", blanks, "file" not followed by a word character)
 * at s, case-insensitive: the length and *close; 0 when none. */
static size_t files_tag(const char *s, int *close)
{
	size_t i = 1;

	if (s[0] != '<')
		return 0;
	while (isspace((unsigned char)s[i]))
		i++;
	*close = s[i] == '/';
	if (*close) {
		i++;
		while (isspace((unsigned char)s[i]))
			i++;
	}
	if (strncasecmp(s + i, "file", 4) != 0)
		return 0;
	i += 4;
	if (!*close)
		return isalnum((unsigned char)s[i]) || s[i] == '_' ? 0 : i;
	while (isspace((unsigned char)s[i]))
		i++;
	return s[i] == '>' ? i + 1 : 0;
}

/* Spoofed markers and chat-template tokens replaced (upstream's
 * sanitizeExternalContentText). */
static char *files_sanitize(const char *t)
{
	struct util_buf b = {0};
	size_t i = 0, k, n;
	int end;

	util_buf_put(&b, "", 0);
	while (t[i]) {
		if (t[i] == '<' && (n = files_marker(t + i, &end))) {
			util_buf_puts(&b, end ? "[[END_MARKER_SANITIZED]]"
					   : "[[MARKER_SANITIZED]]");
			i += n;
			continue;
		}
		if (t[i] == '<' && (n = files_reserved(t + i))) {
			util_buf_puts(&b, "[REMOVED_SPECIAL_TOKEN]");
			i += n;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(files_special); k++) {
			n = strlen(files_special[k]);
			if (strncmp(t + i, files_special[k], n) == 0)
				break;
		}
		if (k < ARRAY_SIZE(files_special)) {
			util_buf_puts(&b, "[REMOVED_SPECIAL_TOKEN]");
			i += n;
			continue;
		}
		util_buf_put(&b, t + i, 1);
		i++;
	}
	return b.p;
}

/* No <file> / </file> inside a file block. */
static void files_put_escaped(struct util_buf *b, const char *t)
{
	size_t i = 0, n;
	int close;

	while (t[i]) {
		if (t[i] == '<' && (n = files_tag(t + i, &close))) {
			util_buf_puts(b, close ? "&lt;/file&gt;" : "&lt;file");
			i += n;
			continue;
		}
		util_buf_put(b, t + i, 1);
		i++;
	}
}

/* The name attribute: one line, no directories or controls, escaped. */
static void files_put_name(struct util_buf *b, const char *name)
{
	const char *base = name ? name : "", *p;
	char c[2] = {0, 0};
	size_t n = 0;

	for (p = base; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	while (*base == ' ' || *base == '.')
		base++;
	if (!*base)
		base = "file";
	for (p = base; *p && n < FILES_NAME_MAX; p++, n++) {
		switch (*p) {
		case '<': util_buf_puts(b, "&lt;"); break;
		case '>': util_buf_puts(b, "&gt;"); break;
		case '&': util_buf_puts(b, "&amp;"); break;
		case '"': util_buf_puts(b, "&quot;"); break;
		case '\'': util_buf_puts(b, "&apos;"); break;
		default:
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				util_buf_puts(b, " ");
			} else {
				c[0] = *p;
				util_buf_puts(b, c);
			}
		}
	}
}

static int files_blank(const char *t)
{
	while (*t && isspace((unsigned char)*t))
		t++;
	return !*t;
}

int api_input_file(const struct gw_config *cfg, const json_t *part,
		   char **block, char **err)
{
	const json_t *src = json_object_get(part, "source");
	const char *ty = json_string_value(json_object_get(src, "type"));
	const char *data, *fname;
	int64_t max_bytes = files_limit(cfg, "maxBytes", FILES_MAX_BYTES);
	int64_t max_chars = files_limit(cfg, "maxChars", FILES_MAX_CHARS);
	struct util_buf b = {0};
	char mime[128], cs[64], *clean = NULL, *text = NULL, *safe = NULL;
	uint8_t *bytes = NULL, rnd[8];
	char id[17];
	size_t i, j, dlen;
	long n;

	*block = NULL;
	*err = NULL;
	if (!json_is_object(src) || !ty) {
		*err = xstrdup("input_file needs a source {type:\"base64\", "
			       "media_type, data, filename?}");
		return -1;
	}
	if (strcmp(ty, "url") == 0) {
		*err = xstrdup("input_file url sources are not supported: "
			       "send the file inline as a base64 source");
		return -1;
	}
	if (strcmp(ty, "base64") != 0) {
		*err = xasprintf("input_file source type '%s' is not "
				 "supported (use base64)", ty);
		return -1;
	}
	data = json_string_value(json_object_get(src, "data"));
	if (!data) {
		*err = xstrdup("input_file base64 source has invalid 'data' "
			       "field");
		return -1;
	}
	dlen = strlen(data);
	if ((int64_t)(dlen / 4) * 3 > max_bytes + 3) {
		*err = xasprintf("File too large: about %zu bytes (limit: "
				 "%lld bytes)", dlen / 4 * 3,
				 (long long)max_bytes);
		return -1;
	}
	files_content_type(json_string_value(json_object_get(src,
			   "media_type")), mime, sizeof(mime), cs, sizeof(cs));
	if (!*mime) {
		*err = xstrdup("input_file missing media type");
		return -1;
	}
	if (strcmp(mime, "application/pdf") == 0) {
		*err = xstrdup("PDF input files are not supported by this "
			       "gateway: send the text (text/plain or "
			       "text/markdown) instead");
		return -1;
	}
	if (!files_mime_allowed(cfg, mime)) {
		*err = xasprintf("Unsupported file MIME type: %s", mime);
		return -1;
	}
	/* Canonical base64: whitespace out. */
	clean = xmalloc(dlen + 1);
	for (i = j = 0; i < dlen; i++)
		if (!isspace((unsigned char)data[i]))
			clean[j++] = data[i];
	clean[j] = 0;
	bytes = xmalloc(j / 4 * 3 + 3);
	n = j ? util_b64_decode(clean, bytes, j / 4 * 3 + 3) : 0;
	if (n < 0) {
		*err = xstrdup("input_file base64 source has invalid 'data' "
			       "field");
		goto fail;
	}
	if (n > max_bytes) {
		*err = xasprintf("File too large: %ld bytes (limit: %lld "
				 "bytes)", n, (long long)max_bytes);
		goto fail;
	}
	text = files_decode(bytes, (size_t)n, cs, (size_t)max_chars);
	fname = json_string_value(json_object_get(src, "filename"));
	if (!fname)
		fname = json_string_value(json_object_get(part, "filename"));
	util_buf_puts(&b, "<file name=\"");
	files_put_name(&b, fname);
	if (files_blank(text)) {
		util_buf_puts(&b, "\">[No extractable text]</file>");
	} else {
		util_random(rnd, sizeof(rnd));
		util_hex(rnd, sizeof(rnd), id);
		safe = files_sanitize(text);
		util_buf_puts(&b, "\">\n\n<<<EXTERNAL_UNTRUSTED_CONTENT id=\"");
		util_buf_puts(&b, id);
		util_buf_puts(&b, "\">>>\nSource: External\n---\n");
		files_put_escaped(&b, safe);
		util_buf_puts(&b, "\n<<<END_EXTERNAL_UNTRUSTED_CONTENT id=\"");
		util_buf_puts(&b, id);
		util_buf_puts(&b, "\">>>\n</file>");
	}
	*block = b.p;
	free(clean);
	free(bytes);
	free(text);
	free(safe);
	return 0;
fail:
	free(clean);
	free(bytes);
	free(text);
	free(b.p);
	return -1;
}
