/* The Control UI on the gateway port (api-ui.h). Request shape follows
 * upstream's control-ui.ts / control-ui-routing.ts / control-ui-csp.ts
 * (openclaw 2026.9.6): the classification of paths, the file lookup, the
 * headers and the index.html rewrite. */
#include "api/api-ui.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "api/api-int.h"
#include "auth/pairing.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/http.h"

#define UI_FILE_MAX (64u * 1024 * 1024)	/* largest file served */
#define UI_PATH_MAX 1024
#define UI_IMMUTABLE "public, max-age=31536000, immutable"
#define UI_PERMISSIONS "camera=(self), microphone=*, geolocation=*, " \
	"clipboard-write=*"
#define UI_BASE_ATTR "data-openclaw-control-ui-base-path"
#define UI_TERMINAL_ATTR "data-openclaw-terminal-enabled"
#define UI_ENV_ATTR "data-openclaw-environment"
#define UI_BUILD_ATTR "data-openclaw-control-ui-build-id"
#define UI_TEXT "text/plain; charset=utf-8"
#define UI_HTML "text/html; charset=utf-8"

/* Root files of the UI build, served under any base path. */
static const char *const api_ui_root_assets[] = {
	"apple-touch-icon.png", "favicon-32.png", "favicon.ico",
	"favicon.svg", "manifest.webmanifest", "sw.js",
};

static const struct {
	const char *ext;
	const char *type;
	int compressible;	/* precompressed siblings may stand in */
} api_ui_types[] = {
	{".html", UI_HTML, 1},
	{".js", "application/javascript; charset=utf-8", 1},
	{".css", "text/css; charset=utf-8", 1},
	{".json", "application/json; charset=utf-8", 1},
	{".map", "application/json; charset=utf-8", 0},
	{".svg", "image/svg+xml", 1},
	{".png", "image/png", 0},
	{".jpg", "image/jpeg", 0},
	{".jpeg", "image/jpeg", 0},
	{".gif", "image/gif", 0},
	{".webp", "image/webp", 0},
	{".ico", "image/x-icon", 0},
	{".txt", "text/plain; charset=utf-8", 1},
	{".wasm", "application/wasm", 1},
	{".webmanifest", "application/manifest+json; charset=utf-8", 1},
	{".woff2", "font/woff2", 0},
};

/* -1 unknown, 0 no installed copy, 1 installed copy found. */
static int api_ui_installed_state = -1;

/* ---- pure helpers ------------------------------------------------------- */

static const char *api_ui_ext(const char *name)
{
	const char *slash = strrchr(name, '/');
	const char *dot = strrchr(slash ? slash + 1 : name, '.');

	return dot ? dot : "";
}

static int api_ui_type_index(const char *name)
{
	const char *ext = api_ui_ext(name);
	size_t i;

	for (i = 0; i < ARRAY_SIZE(api_ui_types); i++)
		if (strcasecmp(ext, api_ui_types[i].ext) == 0)
			return (int)i;
	return -1;
}

const char *api_ui_content_type(const char *name)
{
	int i = api_ui_type_index(name);

	return i < 0 ? NULL : api_ui_types[i].type;
}

int api_ui_base_path(const char *raw, char *out, size_t n)
{
	size_t len, i;
	const char *s = raw ? raw : "";

	out[0] = 0;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || (len == 1 && s[0] == '/'))
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("/._~-", s[i]))
			return -1;
	if (len + 2 > n)
		return -1;
	snprintf(out, n, "%s%.*s", s[0] == '/' ? "" : "/", (int)len, s);
	len = strlen(out);
	if (len > 1 && out[len - 1] == '/')
		out[len - 1] = 0;
	return 0;
}

int api_ui_rel_path(const char *path, char *out, size_t n)
{
	const char *p = path, *seg;
	size_t len, o = 0;

	if (n == 0)
		return -1;
	out[0] = 0;
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
			return -1;
	p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		seg = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - seg);
		if (len == 1 && seg[0] == '.')
			continue;
		if (len == 2 && seg[0] == '.' && seg[1] == '.')
			return -1;
		if (o + len + 2 > n)
			return -1;
		if (o > 0)
			out[o++] = '/';
		memcpy(out + o, seg, len);
		o += len;
		out[o] = 0;
	}
	/* A trailing slash names a directory: its index.html. */
	if (o > 0 && path[strlen(path) - 1] == '/') {
		if (o + 2 > n)
			return -1;
		out[o++] = '/';
		out[o] = 0;
	}
	return 0;
}

/* One media range or coding of an Accept* header: its name (lowercase,
 * bounded) and q (0..1000). Returns the rest after the comma, or NULL. */
static const char *api_ui_accept_item(const char *s, char *name, size_t n,
				      int *q)
{
	size_t o = 0;
	const char *p;

	if (!s)
		return NULL;
	while (*s == ' ' || *s == '\t' || *s == ',')
		s++;
	if (!*s)
		return NULL;
	while (*s && *s != ',' && *s != ';' && *s != ' ' && *s != '\t') {
		if (o + 1 < n)
			name[o++] = (char)tolower((unsigned char)*s);
		s++;
	}
	name[o] = 0;
	*q = 1000;
	while (*s && *s != ',') {
		if (*s == ';') {
			p = s + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
				double d = strtod(p + 2, NULL);

				if (d < 0)
					d = 0;
				if (d > 1)
					d = 1;
				*q = (int)(d * 1000 + 0.5);
			}
		}
		s++;
	}
	return s;
}

int api_ui_accepts_html(const char *accept)
{
	char name[128];
	int q, best = -1;
	const char *s = accept;

	while (s && (*s == ' ' || *s == '\t'))
		s++;
	if (!s || !*s)
		return 1;
	while ((s = api_ui_accept_item(s, name, sizeof(name), &q))) {
		if (strcmp(name, "text/html") == 0 ||
		    strcmp(name, "application/xhtml+xml") == 0) {
			best = q;	/* the most specific range decides */
			break;
		}
		if ((strcmp(name, "*/*") == 0 || strcmp(name, "text/*") == 0) &&
		    q > best)
			best = q;
	}
	return best > 0;
}

const char *api_ui_encoding(const char *ae, int allow_br, int allow_gzip)
{
	char name[64];
	int q, q_br = -1, q_gz = -1, q_id = -1, q_star = -1, best;
	const char *s = ae;

	while ((s = api_ui_accept_item(s, name, sizeof(name), &q))) {
		if (strcmp(name, "br") == 0)
			q_br = q;
		else if (strcmp(name, "gzip") == 0 ||
			 strcmp(name, "x-gzip") == 0)
			q_gz = q;
		else if (strcmp(name, "identity") == 0)
			q_id = q;
		else if (strcmp(name, "*") == 0)
			q_star = q;
	}
	if (q_br < 0)
		q_br = q_star >= 0 && ae ? q_star : 0;
	if (q_gz < 0)
		q_gz = q_star >= 0 ? q_star : 0;
	/* identity is acceptable unless refused by name or by "*;q=0" */
	if (q_id < 0)
		q_id = q_star == 0 ? 0 : 1;
	if (!allow_br)
		q_br = 0;
	if (!allow_gzip)
		q_gz = 0;
	best = q_br > q_gz ? q_br : q_gz;
	if (best > 0 && best >= q_id)
		return q_br >= q_gz ? "br" : "gzip";
	if (q_id > 0)
		return "identity";
	return best > 0 ? (q_br >= q_gz ? "br" : "gzip") : NULL;
}

int64_t api_ui_http_date(const char *s)
{
	struct tm tm;
	const char *end;

	if (!s)
		return -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	return (int64_t)timegm(&tm);
}

static void api_ui_date_str(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void api_ui_strv_free(char **v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

/* Does the opening tag [tag, end) name a src attribute? */
static int api_ui_tag_has_src(const char *tag, const char *end)
{
	const char *p = tag + 7;	/* after "<script" */
	const char *name;
	size_t len;
	char q;

	while (p < end) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p >= end || *p == '>')
			break;
		name = p;
		while (p < end && !isspace((unsigned char)*p) && *p != '=' &&
		       *p != '/' && *p != '>')
			p++;
		len = (size_t)(p - name);
		if (len == 0)
			p++;	/* a stray '/' or '=' */
		else if (len == 3 && strncasecmp(name, "src", 3) == 0)
			return 1;
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p < end && *p == '=') {
			p++;
			while (p < end && isspace((unsigned char)*p))
				p++;
			if (p < end && (*p == '"' || *p == '\'')) {
				q = *p++;
				while (p < end && *p != q)
					p++;
				if (p < end)
					p++;
			} else {
				while (p < end && !isspace((unsigned char)*p) &&
				       *p != '>')
					p++;
			}
		}
	}
	return 0;
}

char **api_ui_script_hashes(const char *html, size_t *n)
{
	char **v = xcalloc(1, sizeof(*v));
	const char *p = html, *gt, *body, *close;
	uint8_t md[32];
	unsigned char b64[48];
	size_t cnt = 0;

	while ((p = strcasestr(p, "<script"))) {
		if (p[7] != '>' && !isspace((unsigned char)p[7])) {
			p += 7;
			continue;
		}
		gt = strchr(p, '>');
		if (!gt)
			break;
		body = gt + 1;
		close = strcasestr(body, "</script>");
		if (!close)
			break;
		if (!api_ui_tag_has_src(p, gt) && close > body) {
			util_sha256(body, (size_t)(close - body), md);
			EVP_EncodeBlock(b64, md, sizeof(md));
			v = xrealloc(v, (cnt + 2) * sizeof(*v));
			v[cnt++] = xasprintf("sha256-%s", (char *)b64);
			v[cnt] = NULL;
		}
		p = close + 9;
	}
	*n = cnt;
	return v;
}

/* The hostname of a Host header that is a plain host[:port], else 0. */
static int api_ui_host_name(const char *host, char *out, size_t n)
{
	const char *end;
	size_t len;

	if (!host || !*host)
		return 0;
	if (host[0] == '[') {
		end = strchr(host, ']');
		if (!end)
			return 0;
		end++;
	} else {
		end = strchr(host, ':');
		if (!end)
			end = host + strlen(host);
	}
	len = (size_t)(end - host);
	if (len == 0 || len >= n)
		return 0;
	if (*end && (*end != ':' || !end[1] ||
		     strspn(end + 1, "0123456789") != strlen(end + 1)))
		return 0;
	memcpy(out, host, len);
	out[len] = 0;
	if (strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789.-[]:") != len)
		return 0;
	return 1;
}

char *api_ui_csp(char *const *hashes, size_t n, const char *host)
{
	char hn[256], *script, *connect, *out, *t;
	size_t i;

	script = xstrdup("'self'");
	for (i = 0; hashes && i < n; i++) {
		t = xasprintf("%s '%s'", script, hashes[i]);
		free(script);
		script = t;
	}
	connect = xstrdup("'self' ws: wss: data: https://api.openai.com "
			  "https://tweakcn.com");
	if (api_ui_host_name(host, hn, sizeof(hn))) {
		t = xasprintf("%s http://%s:* https://%s:*", connect, hn, hn);
		free(connect);
		connect = t;
	}
	out = xasprintf("default-src 'self'; base-uri 'none'; "
			"object-src 'none'; frame-ancestors 'none'; "
			"frame-src 'self' http: https:; script-src %s; "
			"style-src 'self' 'unsafe-inline' "
			"https://fonts.googleapis.com; "
			"img-src 'self' data: blob: https:; "
			"media-src 'self' data: blob:; "
			"font-src 'self' https://fonts.gstatic.com; "
			"worker-src 'self'; connect-src %s", script, connect);
	free(script);
	free(connect);
	return out;
}

static void api_ui_put_escaped(struct util_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': util_buf_puts(b, "&amp;"); break;
		case '<': util_buf_puts(b, "&lt;"); break;
		case '>': util_buf_puts(b, "&gt;"); break;
		case '"': util_buf_puts(b, "&quot;"); break;
		case '\'': util_buf_puts(b, "&#39;"); break;
		default: util_buf_put(b, s, 1);
		}
	}
}

char *api_ui_index_rewrite(const char *html, const char *base,
			   const char *env_json)
{
	struct util_buf b = {0}, t = {0};
	const char *from[2 + 3 * ARRAY_SIZE(api_ui_root_assets)];
	char *to[ARRAY_SIZE(from)], *tag_end;
	const char *p, *tag;
	size_t nrep = 0, i, k, len;
	unsigned char first[256] = {0};
	char *attr;

	from[nrep] = "src=\"./assets/";
	to[nrep++] = xasprintf("src=\"%s/assets/", base);
	from[nrep] = "href=\"./assets/";
	to[nrep++] = xasprintf("href=\"%s/assets/", base);
	for (i = 0; i < ARRAY_SIZE(api_ui_root_assets); i++) {
		const char *a = api_ui_root_assets[i];

		for (k = 0; k < 3; k++) {
			from[nrep] = k == 0 ? xasprintf("href=\"./%s\"", a) :
				     k == 1 ? xasprintf("href=\"/%s\"", a) :
				     xasprintf("href=\"%s/%s\"", base, a);
			to[nrep++] = xasprintf("href=\"%s/%s\"", base, a);
		}
	}
	/* Leftmost match, first listed alternative (as a regex would). Only
	 * where a pattern can start: trying every pattern at every byte was
	 * most of the uireq fuzz target's time. */
	for (i = 0; i < nrep; i++)
		first[(unsigned char)from[i][0]] = 1;
	for (p = html; *p;) {
		for (i = first[(unsigned char)*p] ? 0 : nrep; i < nrep; i++) {
			len = strlen(from[i]);
			if (strncmp(p, from[i], len) == 0)
				break;
		}
		if (i < nrep) {
			util_buf_puts(&t, to[i]);
			p += strlen(from[i]);
		} else {
			util_buf_put(&t, p, 1);
			p++;
		}
	}
	for (i = 0; i < nrep; i++) {
		if (i >= 2)
			free((char *)from[i]);
		free(to[i]);
	}
	if (!t.p)
		util_buf_puts(&t, "");
	/* The <html> tag: drop the build id, add our attributes. */
	for (tag = t.p; (tag = strcasestr(tag, "<html")); tag += 5)
		if (!isalnum((unsigned char)tag[5]) && tag[5] != '_')
			break;
	tag_end = tag ? strchr(tag, '>') : NULL;
	if (!tag || !tag_end) {
		free(b.p);
		return t.p;
	}
	util_buf_put(&b, t.p, (size_t)(tag - t.p));
	util_buf_puts(&b, "<html " UI_BASE_ATTR "=\"");
	api_ui_put_escaped(&b, base);
	util_buf_puts(&b, "\" " UI_TERMINAL_ATTR "=\"false\"");
	if (env_json) {
		util_buf_puts(&b, " " UI_ENV_ATTR "=\"");
		api_ui_put_escaped(&b, env_json);
		util_buf_puts(&b, "\"");
	}
	for (p = tag + 5; p < tag_end;) {
		attr = NULL;
		if (isspace((unsigned char)*p) &&
		    strncmp(p + 1, UI_BUILD_ATTR "=\"",
			    strlen(UI_BUILD_ATTR) + 2) == 0)
			attr = strchr(p + strlen(UI_BUILD_ATTR) + 3, '"');
		if (attr && attr < tag_end) {
			p = attr + 1;
			continue;
		}
		util_buf_put(&b, p, 1);
		p++;
	}
	util_buf_puts(&b, tag_end);
	free(t.p);
	return b.p;
}

/* ---- roots --------------------------------------------------------------- */

static int api_ui_has_index(const char *dir)
{
	char *p = xasprintf("%s/index.html", dir);
	struct stat st;
	int ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);

	free(p);
	return ok;
}

char *api_ui_installed_root(void)
{
	const char *env = getenv("CLAWGATE_CONTROL_UI_DIR");
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char *d;

	if (env)	/* set: the only place (empty: no installed UI) */
		return *env && api_ui_has_index(env) ? xstrdup(env) : NULL;
	if (xdg && *xdg)
		d = xasprintf("%s/clawgate/control-ui", xdg);
	else if (home && *home)
		d = xasprintf("%s/.local/share/clawgate/control-ui", home);
	else
		d = NULL;
	if (d && api_ui_has_index(d))
		return d;
	free(d);
	d = xstrdup(PKGDATADIR "/control-ui");
	if (api_ui_has_index(d))
		return d;
	free(d);
	return NULL;
}

void api_ui_probe(void)
{
	char *d = api_ui_installed_root();

	__atomic_store_n(&api_ui_installed_state, d ? 1 : 0,
			 __ATOMIC_RELAXED);
	free(d);
}

static const char *api_ui_cfg_str(const struct gw_config *cfg,
				  const char *path)
{
	const json_t *v = cfg && cfg->root ? config_get(cfg->root, path) :
		NULL;

	return json_is_string(v) && json_string_length(v) > 0 ?
		json_string_value(v) : NULL;
}

const char *api_ui_build_source(const struct gw_config *cfg)
{
	if (api_ui_cfg_str(cfg, "gateway.controlUi.root") ||
	    __atomic_load_n(&api_ui_installed_state, __ATOMIC_RELAXED) == 1)
		return "configured";
	return "bundled";
}

int api_ui_banner(const struct gw_config *cfg, FILE *out, char *base,
		  size_t n)
{
	int configured = api_ui_cfg_str(cfg, "gateway.controlUi.root") != NULL;

	if (!cfg || !api_cfg_bool(cfg, "gateway.controlUi.enabled", 1) ||
	    api_ui_base_path(api_ui_cfg_str(cfg, "gateway.controlUi.basePath"),
			     base, n) != 0)
		return -1;
	if (!configured && __atomic_load_n(&api_ui_installed_state,
					   __ATOMIC_RELAXED) != 1)
		fprintf(out, "Control UI: not installed (make install-ui)\n");
	return 0;
}

/* ---- the worker side ------------------------------------------------------ */

struct api_ui_job {
	struct http_async *as;
	char *root;		/* configured root, or NULL: the installed copy */
	char *base;		/* normalised base path */
	char *path;		/* URL path below the base ("/..." ) */
	char *host, *accept_enc, *ims, *inm;
	char *env_json;
	int spa;
};

static void api_ui_job_free(struct api_ui_job *j)
{
	if (!j)
		return;
	free(j->root);
	free(j->base);
	free(j->path);
	free(j->host);
	free(j->accept_enc);
	free(j->ims);
	free(j->inm);
	free(j->env_json);
	free(j);
}

static int api_ui_within(const char *root, const char *p)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return p[0] == '/';
	return strncmp(root, p, n) == 0 && (p[n] == '/' || p[n] == 0);
}

/* Open rel under root_real as a regular file that, symlinks resolved,
 * stays inside the root (and, when reject_links, has one link only).
 * The fd, or -1 (missing or refused). */
static int api_ui_open(const char *root_real, const char *rel,
		       int reject_links, struct stat *st)
{
	char *full = xasprintf("%s/%s", root_real, rel);
	char *real = realpath(full, NULL);
	char proc[64], got[PATH_MAX];
	ssize_t n;
	int fd = -1;

	if (!real || !api_ui_within(root_real, real))
		goto out;
	fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) ||
	    (reject_links && st->st_nlink > 1))
		goto bad;
	/* What was opened, not what was looked at (a swap in between). */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, got, sizeof(got) - 1);
	if (n > 0) {
		got[n] = 0;
		if (!api_ui_within(root_real, got))
			goto bad;
	}
	goto out;
bad:
	close(fd);
	fd = -1;
out:
	free(full);
	free(real);
	return fd;
}

/* Read an open file (closes it); NULL when over the limit or on error. */
static char *api_ui_read(int fd, size_t size, size_t *len)
{
	char *buf;
	size_t off = 0;
	ssize_t n;

	if (size > UI_FILE_MAX) {
		close(fd);
		return NULL;
	}
	buf = xmalloc(size + 1);
	while (off < size) {
		n = read(fd, buf + off, size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = 0;
	*len = off;
	return buf;
}

static char *api_ui_gzip(const char *in, size_t len, size_t *out_len)
{
	z_stream zs;
	char *out;
	uLong cap;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	cap = deflateBound(&zs, (uLong)len) + 32;
	out = xmalloc(cap);
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&zs);
		free(out);
		return NULL;
	}
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static void api_ui_text(struct http_async *as, int status, const char *msg)
{
	http_async_reply(as, status, UI_TEXT, msg, strlen(msg));
}

static void api_ui_not_acceptable(struct http_async *as)
{
	http_async_header(as, "Cache-Control", "no-store");
	http_async_header(as, "Vary", "Accept-Encoding");
	api_ui_text(as, 406, "Not Acceptable");
}

/* The UI's own file below the root (relative path, "" = index). */
static void api_ui_rel_of(const char *path, char *rel, size_t n, int *bad)
{
	const char *p = path, *a;
	size_t i;

	*bad = 0;
	if (strncmp(p, "/__openclaw__/", 14) == 0) {
		for (i = 0; i < ARRAY_SIZE(api_ui_root_assets); i++)
			if (strcmp(p + 14, api_ui_root_assets[i]) == 0) {
				snprintf(rel, n, "%s", p + 14);
				return;
			}
	}
	/* Deep links load their chunks relative to the page. */
	a = strstr(p, "/assets/");
	if (a)
		p = a;
	if (api_ui_rel_path(p, rel, n) != 0)
		*bad = 1;
}

/* Standalone documents (approval, focus) are the index itself. */
static int api_ui_standalone(const char *path)
{
	const char *s;

	if (strcmp(path, "/approve") == 0 || strcmp(path, "/approve/") == 0)
		return 1;
	if (strncmp(path, "/approve/", 9) == 0) {
		s = path + 9;
		return *s && !strchr(s, '/');
	}
	return strcmp(path, "/focus") == 0 || strcmp(path, "/focus/") == 0 ||
	       strncmp(path, "/focus/", 7) == 0;
}

static void api_ui_serve_asset(struct api_ui_job *j, const char *root_real,
			       const char *rel, int fd, struct stat *st,
			       int installed)
{
	struct http_async *as = j->as;
	int ti = api_ui_type_index(rel);
	int pre = installed && strncmp(rel, "assets/", 7) == 0 &&
		  ti >= 0 && api_ui_types[ti].compressible;
	const char *enc = api_ui_encoding(j->accept_enc, pre, pre);
	char date[64], *sib, *body;
	int64_t now = util_now_ms() / 1000, lm, since;
	struct stat st2;
	size_t len;
	int fd2;

	if (!enc) {
		close(fd);
		api_ui_not_acceptable(as);
		return;
	}
	/* The asset's own time, whichever representation goes out. */
	lm = (int64_t)st->st_mtime < now ? (int64_t)st->st_mtime : now;
	/* A precompressed sibling stands in for the asset when there. */
	while (strcmp(enc, "identity") != 0) {
		sib = xasprintf("%s.%s", rel, strcmp(enc, "br") == 0 ? "br" :
				"gz");
		fd2 = api_ui_open(root_real, sib, !installed, &st2);
		free(sib);
		if (fd2 >= 0) {
			close(fd);
			fd = fd2;
			*st = st2;
			break;
		}
		enc = strcmp(enc, "br") == 0 ?
			api_ui_encoding(j->accept_enc, 0, 1) : "identity";
		if (!enc) {
			close(fd);
			api_ui_not_acceptable(as);
			return;
		}
	}
	api_ui_date_str(lm, date, sizeof(date));
	http_async_header(as, "Cache-Control",
			  installed && strncmp(rel, "assets/", 7) == 0 ?
			  UI_IMMUTABLE : "no-cache");
	http_async_header(as, "Last-Modified", date);
	http_async_header(as, "Vary", "Accept-Encoding");
	since = j->inm ? -1 : api_ui_http_date(j->ims);
	if ((j->inm && strcmp(j->inm, "*") == 0) || (since >= 0 &&
						      lm <= since)) {
		close(fd);
		http_async_reply(as, 304, NULL, NULL, 0);
		return;
	}
	if (ti >= 0 && api_ui_types[ti].compressible &&
	    strcmp(enc, "identity") != 0)
		http_async_header(as, "Content-Encoding", enc);
	body = api_ui_read(fd, (size_t)st->st_size, &len);
	if (!body) {
		api_ui_text(as, 500, "Internal Server Error");
		return;
	}
	http_async_reply(as, 200, ti >= 0 ? api_ui_types[ti].type :
			 "application/octet-stream", body, len);
	free(body);
}

static void api_ui_serve_index(struct api_ui_job *j, int fd,
			       struct stat *st)
{
	struct http_async *as = j->as;
	const char *enc = api_ui_encoding(j->accept_enc, 0, 1);
	char *html, *page = NULL, *csp, *gz = NULL, **hashes;
	size_t len, n, gzlen = 0;

	if (!enc) {
		close(fd);
		api_ui_not_acceptable(as);
		return;
	}
	html = api_ui_read(fd, (size_t)st->st_size, &len);
	if (!html) {
		api_ui_text(as, 500, "Internal Server Error");
		return;
	}
	page = api_ui_index_rewrite(html, j->base, j->env_json);
	hashes = api_ui_script_hashes(page, &n);
	csp = api_ui_csp(hashes, n, j->host);
	http_async_header(as, "Content-Security-Policy", csp);
	http_async_header(as, "Cache-Control", "no-cache");
	http_async_header(as, "Vary", "Accept-Encoding");
	len = strlen(page);
	if (strcmp(enc, "gzip") == 0 && (gz = api_ui_gzip(page, len, &gzlen))) {
		http_async_header(as, "Content-Encoding", "gzip");
		http_async_reply(as, 200, UI_HTML, gz, gzlen);
	} else {
		http_async_reply(as, 200, UI_HTML, page, len);
	}
	free(gz);
	free(csp);
	api_ui_strv_free(hashes);
	free(page);
	free(html);
}

static void api_ui_install_page(struct http_async *as)
{
	static const char page[] =
		"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<title>clawgate: Control UI not installed</title></head>\n"
		"<body><h1>The Control UI is not installed</h1>\n"
		"<p>This gateway serves the OpenClaw Control UI, but no copy "
		"of it was found. Install the pinned copy with</p>\n"
		"<pre>make install-ui</pre>\n<p>(or "
		"<code>contrib/install-ui.sh</code>) from the clawgate source "
		"tree, then reload this page. It goes to "
		"<code>~/.local/share/clawgate/control-ui</code>; "
		"<code>gateway.controlUi.root</code> names another "
		"directory.</p>\n</body></html>\n";

	http_async_header(as, "Cache-Control", "no-store");
	http_async_reply(as, 503, UI_HTML, page, sizeof(page) - 1);
}

static void api_ui_job_run(void *arg)
{
	struct api_ui_job *j = arg;
	struct http_async *as = j->as;
	char rel[UI_PATH_MAX + 16], *root = NULL, *root_real = NULL, *msg;
	char *csp = api_ui_csp(NULL, 0, NULL);
	const char *file;
	struct stat st;
	int installed = !j->root, bad, fd = -1, ti;

	root = j->root ? xstrdup(j->root) : api_ui_installed_root();
	if (installed)
		__atomic_store_n(&api_ui_installed_state, root ? 1 : 0,
				 __ATOMIC_RELAXED);
	if (root)
		root_real = realpath(root, NULL);
	if (!root_real) {
		http_async_header(as, "Content-Security-Policy", csp);
		if (!installed) {
			msg = xasprintf("Control UI assets not found at %s. "
					"Install them with `make install-ui` "
					"or update gateway.controlUi.root.",
					root);
			api_ui_text(as, 503, msg);
			free(msg);
		} else if (j->spa && api_ui_type_index(j->path) < 0) {
			api_ui_install_page(as);
		} else {
			/* No UI: what the gateway answers any unknown path. */
			http_async_reply_json(as, 404, "{\"error\":{\"message\":"
					      "\"Not Found\",\"type\":"
					      "\"not_found\"}}");
		}
		goto out;
	}
	api_ui_rel_of(j->path, rel, sizeof(rel) - 16, &bad);
	if (bad)
		goto not_found;
	if (api_ui_standalone(j->path))
		snprintf(rel, sizeof(rel), "index.html");
	else if (!rel[0] || rel[strlen(rel) - 1] == '/')
		strcat(rel, "index.html");
	file = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	/* The installed copy's precompressed files are not URLs. */
	if (installed && (strcasecmp(api_ui_ext(rel), ".br") == 0 ||
			  strcasecmp(api_ui_ext(rel), ".gz") == 0))
		goto not_found;
	fd = api_ui_open(root_real, rel, !installed, &st);
	if (fd >= 0 && strcmp(file, "index.html") != 0) {
		http_async_header(as, "Content-Security-Policy", csp);
		api_ui_serve_asset(j, root_real, rel, fd, &st, installed);
		goto out;
	}
	if (fd < 0) {
		/* SPA fallback: page paths get the index. */
		ti = api_ui_type_index(rel);
		if ((ti >= 0 && strcmp(api_ui_types[ti].ext, ".html") != 0) ||
		    !j->spa)
			goto not_found;
		fd = api_ui_open(root_real, "index.html", !installed, &st);
		if (fd < 0)
			goto not_found;
	}
	/* HEAD too: libmicrohttpd drops the body and keeps its length. */
	api_ui_serve_index(j, fd, &st);
	goto out;
not_found:
	http_async_header(as, "Content-Security-Policy", csp);
	api_ui_text(as, 404, "Not Found");
out:
	free(csp);
	free(root);
	free(root_real);
	api_ui_job_free(j);
}

/* ---- the MHD side --------------------------------------------------------- */

enum api_ui_kind { UI_NOT, UI_NOT_FOUND, UI_REDIRECT, UI_SERVE };

static int api_ui_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 &&
	       (path[n] == 0 || path[n] == '/');
}

static enum api_ui_kind api_ui_classify(const char *base, const char *path,
					int read)
{
	static const char *const not_ui[] = {
		"/health", "/healthz", "/ready", "/readyz", "/startup",
		"/startupz", "/api", "/j", "/v1", "/plugins",
		"/__openclaw__/mcp-app", "/__openclaw__/worker",
		"/__openclaw__/worker-bundle", "/__openclaw__/worker-transfer",
		"/__openclaw__/worker-bootstrap",
	};
	size_t i;

	if (!base[0]) {
		if (api_ui_under(path, "/ui"))
			return UI_NOT_FOUND;
		for (i = 0; i < ARRAY_SIZE(not_ui); i++)
			if (api_ui_under(path, not_ui[i]))
				return UI_NOT;
		return read ? UI_SERVE : UI_NOT;
	}
	if (!api_ui_under(path, base) || !read)
		return UI_NOT;
	return strcmp(path, base) == 0 ? UI_REDIRECT : UI_SERVE;
}

static void api_ui_security_headers(struct http_req *r, int csp)
{
	char *v;

	http_reply_header(r, "X-Frame-Options", "DENY");
	http_reply_header(r, "Permissions-Policy", UI_PERMISSIONS);
	if (csp) {
		v = api_ui_csp(NULL, 0, NULL);
		http_reply_header(r, "Content-Security-Policy", v);
		free(v);
	}
}

static void api_ui_security_headers_csp(struct http_req *r)
{
	char *v = api_ui_csp(NULL, 0, NULL);

	http_reply_header(r, "Content-Security-Policy", v);
	free(v);
}

/* "~/x" against $HOME, as the config paths do. */
static char *api_ui_expand_home(const char *s)
{
	const char *home = getenv("HOME");

	if (s[0] == '~' && (s[1] == 0 || s[1] == '/') && home)
		return xasprintf("%s%s", home, s + 1);
	return xstrdup(s);
}

static int api_ui_is_config_path(const char *path, const char *base)
{
	char a[UI_PATH_MAX], b[UI_PATH_MAX];

	snprintf(a, sizeof(a), "%s/control-ui-config.json", base);
	snprintf(b, sizeof(b), "%s/__openclaw/control-ui-config.json", base);
	return strcmp(path, a) == 0 || strcmp(path, b) == 0 ||
	       (!base[0] &&
		strcmp(path, "/__openclaw__/control-ui-config.json") == 0);
}

/* The UI authenticates its HTTP reads with the operator device token it
 * got in hello-ok (upstream authorizeControlUiReadRequestOrReply): 1 when
 * the bearer is one that grants operator.read. */
static int api_ui_device_bearer(struct api *a, struct http_req *r)
{
	const char *h = api_header(r, "authorization");
	json_t *scopes = NULL;
	int ok;

	if (!a->d.pairing || !h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	ok = pairing_token_find(a->d.pairing, "operator", h, &scopes) &&
	     pairing_scope_covered(scopes, "operator.read");
	json_decref(scopes);
	return ok;
}

static void api_ui_config_json(struct api *a, struct http_req *r,
			       struct gw_config *cfg, const char *base)
{
	/* The assistant identity of the config (agent.identity.get has the
	 * full resolution; the UI refreshes from it once connected). */
	const char *name = api_ui_cfg_str(cfg, "identity.name");
	const char *avatar = api_ui_cfg_str(cfg, "identity.avatar");
	const char *sandbox = api_ui_cfg_str(cfg,
					     "gateway.controlUi.embedSandbox");
	const json_t *env = cfg && cfg->root ?
		config_get(cfg->root, "gateway.controlUi.environment") : NULL;
	json_t *o;

	if (!api_ui_device_bearer(a, r) && !api_authorize(a, r, cfg))
		return;
	http_reply_header(r, "Cache-Control", "no-cache");
	if (strcmp(http_req_method(r), "HEAD") == 0) {
		http_reply(r, 200, "application/json; charset=utf-8", "", 0);
		return;
	}
	o = json_pack("{s:s,s:s,s:s,s:n,s:s,s:s,s:s,s:s}", "basePath", base,
		      "assistantName", name ? name : "Assistant",
		      "assistantAvatar", avatar ? avatar : "A",
		      "assistantAvatarSource", "assistantAvatarStatus",
		      "none", "assistantAvatarReason", "missing",
		      "assistantAgentId",
		      "main", "serverVersion",
		      a->d.version ? a->d.version : "");
	if (avatar) {	/* a configured text avatar: nothing resolved */
		json_object_set_new(o, "assistantAvatarStatus", json_null());
		json_object_set_new(o, "assistantAvatarReason", json_null());
	}
	if (!api_ui_cfg_str(cfg, "gateway.controlUi.root") && a->d.build_id)
		json_object_set_new(o, "serverBuildId",
				    json_string(a->d.build_id));
	json_object_set_new(o, "embedSandbox", json_string(
		sandbox && (strcmp(sandbox, "trusted") == 0 ||
			    strcmp(sandbox, "strict") == 0) ? sandbox :
		"scripts"));
	json_object_set_new(o, "allowExternalEmbedUrls", json_boolean(
		api_cfg_bool(cfg, "gateway.controlUi.allowExternalEmbedUrls",
				0)));
	json_object_set_new(o, "automaticallyFetchFavicons", json_boolean(
		api_cfg_bool(cfg,
			"gateway.controlUi.automaticallyFetchFavicons", 1)));
	if (env)
		json_object_set(o, "environment", (json_t *)env);
	json_object_set_new(o, "communityInvite", json_boolean(
		!json_is_false(cfg && cfg->root ? config_get(cfg->root,
			"gateway.controlUi.communityInvite") : NULL)));
	/* clawgate has no terminal and no CLI agents. */
	json_object_set_new(o, "terminalEnabled", json_false());
	json_object_set_new(o, "cliAgentsEnabled", json_false());
	json_object_set_new(o, "pluginAssetsRequireAuth", json_boolean(
		cfg && cfg->auth_mode != AUTH_MODE_NONE));
	json_object_set_new(o, "pluginFrameGrants", json_array());
	api_reply_json(r, 200, o);
}

static char *api_ui_hdup(struct http_req *r, const char *name)
{
	const char *v = api_header(r, name);

	return v ? xstrndup(v, 512) : NULL;
}

int api_ui_handle(struct api *a, struct http_req *r, struct gw_config *cfg)
{
	const char *path = http_req_path(r), *m = http_req_method(r);
	const char *root, *sub;
	int read = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	char base[256], *loc;
	const json_t *env;
	struct api_ui_job *j;

	if (!cfg || !api_cfg_bool(cfg, "gateway.controlUi.enabled", 1))
		return 0;
	if (api_ui_base_path(api_ui_cfg_str(cfg, "gateway.controlUi.basePath"),
			     base, sizeof(base)) != 0)
		return 0;
	switch (api_ui_classify(base, path, read)) {
	case UI_NOT:
		return 0;
	case UI_NOT_FOUND:
		api_ui_security_headers(r, 1);
		http_reply(r, 404, UI_TEXT, "Not Found", 9);
		return 1;
	case UI_REDIRECT:
		api_ui_security_headers(r, 1);
		loc = xasprintf("%s/", base);
		http_reply_header(r, "Location", loc);
		free(loc);
		http_reply(r, 302, UI_TEXT, "", 0);
		return 1;
	case UI_SERVE:
		break;
	}
	/* Files get their CSP on the worker: the index's carries the hashes
	 * of its inline scripts, and two CSP headers would both apply. */
	api_ui_security_headers(r, 0);
	if (api_ui_is_config_path(path, base)) {
		api_ui_security_headers_csp(r);
		api_ui_config_json(a, r, cfg, base);
		return 1;
	}
	if (strlen(path) > UI_PATH_MAX) {
		api_ui_security_headers_csp(r);
		http_reply(r, 404, UI_TEXT, "Not Found", 9);
		return 1;
	}
	sub = base[0] ? path + strlen(base) : path;
	root = api_ui_cfg_str(cfg, "gateway.controlUi.root");
	j = xcalloc(1, sizeof(*j));
	j->root = root ? api_ui_expand_home(root) : NULL;
	j->base = xstrdup(base);
	j->path = xstrdup(sub);
	j->host = api_ui_hdup(r, "host");
	j->accept_enc = api_ui_hdup(r, "accept-encoding");
	j->ims = api_ui_hdup(r, "if-modified-since");
	j->inm = api_ui_hdup(r, "if-none-match");
	j->spa = api_ui_accepts_html(http_req_header(r, "accept"));
	env = cfg->root ? config_get(cfg->root,
				     "gateway.controlUi.environment") : NULL;
	if (env && !json_is_null(env))
		j->env_json = json_dumps(env, JSON_COMPACT | JSON_ENCODE_ANY);
	/* The index carries its own CSP (with the script hashes). */
	j->as = http_reply_later(r);
	if (!j->as) {
		api_ui_job_free(j);
		return 1;
	}
	if (!a->d.workers || workq_post(a->d.workers, api_ui_job_run, j) != 0) {
		api_ui_text(j->as, 503, "Service Unavailable");
		api_ui_job_free(j);
	}
	return 1;
}
