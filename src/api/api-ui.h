/* The Control UI on the gateway port (reference/control-ui.md, "What
 * clawgate needs in order to serve the UI"): static files of a UI root,
 * the SPA fallback, the base path, the index.html rewrite with its CSP,
 * control-ui-config.json behind gateway auth, and a small HTML page that
 * says how to install the UI when none is installed.
 *
 * The UI root is gateway.controlUi.root when set, else the installed copy
 * (contrib/install-ui.sh), searched in this order:
 *   1. $CLAWGATE_CONTROL_UI_DIR (when set, the only place looked at;
 *      set and empty: no installed UI)
 *   2. ${XDG_DATA_HOME:-$HOME/.local/share}/clawgate/control-ui
 *   3. $(pkgdatadir)/control-ui
 * A directory counts when it holds index.html.
 *
 * File work never runs on the MHD thread: each UI file request is read on
 * the worker pool and answered with a deferred reply. Nothing is cached in
 * the daemon (the kernel page cache serves repeated reads), so a changed
 * root is served as it is on disk. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct api;
struct gw_config;
struct http_req;

/* MHD thread, after the API routes and hooks found nothing: 1 when the
 * request belongs to the UI and has been answered (or deferred), else 0
 * (the caller answers its JSON 404). */
int api_ui_handle(struct api *a, struct http_req *r, struct gw_config *cfg);

/* hello-ok server.controlUiBuildSource: "configured" when the gateway has
 * a UI root (gateway.controlUi.root, or an installed copy, which is never
 * the gateway's own build), else "bundled" (what upstream sends without a
 * root). Any thread; no file access (the installed copy is probed at start
 * and on each UI request). */
const char *api_ui_build_source(const struct gw_config *cfg);
/* The dashboard's path on the gateway's port: 0 with base = "" or "/x"
 * (gateway.controlUi.basePath) when the UI is on; -1 when
 * gateway.controlUi.enabled is false. When no UI is installed (and no
 * root is configured) a line on `out` says how to install it. The
 * daemon prints the one `Dashboard:` line from it. */
int api_ui_banner(const struct gw_config *cfg, FILE *out, char *base,
		  size_t n);
/* Probe the installed copy (start-up; file access). */
void api_ui_probe(void);
/* The installed UI directory by the search order above, or NULL (owned). */
char *api_ui_installed_root(void);

/* ---- pure helpers (unit tests, fuzz target) ---------------------------- */

/* gateway.controlUi.basePath normalised: "" or "/x" without a trailing
 * slash. Returns -1 (out = "") for a value with characters outside
 * [A-Za-z0-9/._~-]. */
int api_ui_base_path(const char *raw, char *out, size_t n);
/* The file path under the root for a URL path (decoded, below the base
 * path, starting with '/'): "", "assets/x.js", "settings/devices", ...
 * Returns -1 when the path is unsafe (a ".." segment, a backslash, a
 * control character) or too long. "." and empty segments are dropped. */
int api_ui_rel_path(const char *path, char *out, size_t n);
/* Content type by file name extension, or NULL when the extension is not
 * a known static type. */
const char *api_ui_content_type(const char *name);
/* Does the Accept header take an HTML document (absent: yes)? */
int api_ui_accepts_html(const char *accept);
/* The content coding to send: "br", "gzip" or "identity" (in that order of
 * preference among equal q), limited to the allowed codings; NULL when
 * nothing acceptable is left (406). */
const char *api_ui_encoding(const char *accept_encoding, int allow_br,
			    int allow_gzip);
/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as Unix seconds, or -1. */
int64_t api_ui_http_date(const char *s);
/* "sha256-<base64>" of each inline <script> (no src attribute, non-empty
 * body) of html, in order; *n set. NULL-terminated array (owned; free
 * with api_ui_strv_free). */
char **api_ui_script_hashes(const char *html, size_t *n);
void api_ui_strv_free(char **v);
/* The Content-Security-Policy value: hashes may be NULL; host (the Host
 * header) adds http://<hostname>:* https://<hostname>:* to connect-src
 * when it is a plain host[:port]. Owned. */
char *api_ui_csp(char *const *hashes, size_t n, const char *host);
/* index.html as served: asset links anchored at base, the <html> tag with
 * the base path and terminal attributes (plus data-openclaw-environment
 * when env_json is not NULL), the build-id attribute dropped. Owned. */
char *api_ui_index_rewrite(const char *html, const char *base,
			   const char *env_json);
