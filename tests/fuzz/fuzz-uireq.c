/* Fuzz target: what a browser sends the Control UI server (src/api/
 * api-ui.c): the URL path, Accept, Accept-Encoding and If-Modified-Since
 * (input split on newlines), plus the index.html rewrite and the inline
 * script scan over the same bytes. Invariants: a path accepted by
 * api_ui_rel_path has no ".." segment and no backslash; the encoding is one
 * of the three names or NULL; the CSP is built for any Host. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-ui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_dotdot(const char *p)
{
	const char *s = p;

	while ((s = strstr(s, ".."))) {
		if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/'))
			return 1;
		s += 2;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *f[5] = {0}, *p, *out, **h;
	char rel[512], base[128], empty[1] = "";
	const char *e;
	size_t i, n;

	memcpy(buf, data, size);
	buf[size] = 0;
	p = buf;
	for (i = 0; i < 5; i++) {
		f[i] = p;
		p = strchr(p, '\n');
		if (!p)
			break;
		*p++ = 0;
	}
	for (i = 0; i < 5; i++)
		if (!f[i])
			f[i] = empty;
	if (api_ui_rel_path(f[0], rel, sizeof(rel)) == 0 &&
	    (has_dotdot(rel) || strchr(rel, '\\') || rel[0] == '/'))
		__builtin_trap();
	api_ui_accepts_html(f[1]);
	e = api_ui_encoding(f[2], f[0][0] & 1, f[0][0] & 2);
	if (e && strcmp(e, "br") && strcmp(e, "gzip") && strcmp(e, "identity"))
		__builtin_trap();
	api_ui_http_date(f[3]);
	api_ui_content_type(f[0]);
	if (api_ui_base_path(f[4], base, sizeof(base)) == 0 &&
	    base[0] && base[0] != '/')
		__builtin_trap();
	out = api_ui_csp(NULL, 0, f[4]);
	free(out);
	/* The whole input as an index.html. */
	out = api_ui_index_rewrite((const char *)buf, "/b", "{\"x\":1}");
	h = api_ui_script_hashes(out, &n);
	for (i = 0; i < n; i++)
		if (strncmp(h[i], "sha256-", 7) != 0 || strlen(h[i]) != 51)
			__builtin_trap();
	api_ui_strv_free(h);
	free(out);
	free(buf);
	return 0;
}
