/* `clawgate doctor`: a table of checks with stable ids and severities.
 * Each check looks, adds findings, and with --fix repairs what is safe
 * (file modes, unit drift by re-install, stale units only with --yes,
 * gateway.mode through the caller's config snapshot path). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/common.h"
#include "core/json5.h"
#include "core/util.h"
#include "service/service.h"
#include "store/store.h"

#define DOCTOR_CONFIG_MAX (4 * 1024 * 1024)
#define DOCTOR_UNIT_MAX (64 * 1024)
#define DOCTOR_WEAK_TOKEN_LEN 24
#define DOCTOR_DISK_WARN_BYTES (512ULL * 1024 * 1024)
#define DOCTOR_DISK_ERROR_BYTES (64ULL * 1024 * 1024)

static const char *const service_doctor_severities[] = {
	[SERVICE_DOCTOR_INFO] = "info", [SERVICE_DOCTOR_WARN] = "warn",
	[SERVICE_DOCTOR_ERROR] = "error",
};

/* Add a finding; returns it (borrowed) so a fix can mark it. */
static json_t *service_doctor_add(struct service_doctor *c, const char *id,
			  enum service_doctor_severity sev, int fixable,
			  const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static json_t *service_doctor_add(struct service_doctor *c, const char *id,
			  enum service_doctor_severity sev, int fixable,
			  const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *f;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f = json_pack("{s:s,s:s,s:s,s:b,s:b}", "id", id, "severity",
		      service_doctor_severities[sev], "message", msg, "fixable",
		      fixable, "fixed", 0);
	json_array_append_new(c->findings, f);
	return f;
}

static void service_doctor_fixed(json_t *f, const char *how)
{
	json_object_set_new(f, "fixed", json_true());
	json_object_set_new(f, "fix", json_string(how));
}

static void service_doctor_hint(json_t *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void service_doctor_hint(json_t *f, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(f, "hint", json_string(msg));
}

/* --- config ------------------------------------------------------------- */

static void service_doctor_config_valid(struct service_doctor *c)
{
	json_t *f;

	if (!c->config_error)
		return;
	f = service_doctor_add(c, "config.valid", SERVICE_DOCTOR_ERROR, 0,
		       "config is invalid: %s", c->config_error);
	service_doctor_hint(f, "fix the file, then check it with `clawgate config "
		    "validate`");
}

static void service_doctor_config_mode(struct service_doctor *c)
{
	const json_t *m;
	json_t *f;
	char *err = NULL;

	if (!c->raw || c->config_error)
		return;
	m = json_object_get(json_object_get(c->raw, "gateway"), "mode");
	if (json_is_string(m) && strcmp(json_string_value(m), "local") == 0)
		return;
	f = service_doctor_add(c, "config.mode", SERVICE_DOCTOR_WARN, 1,
		       "gateway.mode is %s%s%s: `gateway run` refuses to "
		       "start without --allow-unconfigured",
		       json_is_string(m) ? "\"" : "",
		       json_is_string(m) ? json_string_value(m) : "unset",
		       json_is_string(m) ? "\"" : "");
	if (!c->fix)
		return;
	if (!c->config_patch) {
		service_doctor_hint(f, "start the gateway (it records the change as a "
			    "config snapshot) and run `clawgate doctor "
			    "--fix`, or `clawgate config set gateway.mode "
			    "local`");
		return;
	}
	if (c->config_patch(c->arg, "{\"gateway\":{\"mode\":\"local\"}}",
			    &err) == 0)
		service_doctor_fixed(f, "set gateway.mode=local (config snapshot; "
			     "`clawgate config rollback` undoes it)");
	else
		service_doctor_hint(f, "config.patch failed: %s", err ? err : "?");
	free(err);
}

static int service_doctor_is_secret_key(const char *k)
{
	static const char *const words[] = {"token", "password", "apikey",
					    "secret", "privatekey", NULL};
	const char *const *w;
	char low[64];
	size_t i;

	for (i = 0; k[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)k[i]);
	low[i] = '\0';
	for (w = words; *w; w++)
		if (strstr(low, *w))
			return 1;
	return 0;
}

/* A literal, not ${VAR} (env) and not a secret ref object. */
static int service_doctor_is_literal(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n;

	if (!s || !*s)
		return 0;
	n = strlen(s);
	return !(n > 3 && s[0] == '$' && s[1] == '{' && s[n - 1] == '}');
}

static void service_doctor_walk_secrets(struct service_doctor *c, const json_t *v,
				const char *path, json_t *found)
{
	const char *k;
	const json_t *x;
	char *p;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) {
			p = *path ? xasprintf("%s.%s", path, k) : xstrdup(k);
			if (service_doctor_is_secret_key(k) && service_doctor_is_literal(x))
				json_array_append_new(found, json_string(p));
			else
				service_doctor_walk_secrets(c, x, p, found);
			free(p);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			p = xasprintf("%s[%zu]", path, i);
			service_doctor_walk_secrets(c, x, p, found);
			free(p);
		}
	}
}

static void service_doctor_config_secrets(struct service_doctor *c)
{
	json_t *found = json_array(), *f;
	char *list = xstrdup(""), *n;
	size_t i;

	if (c->raw)
		service_doctor_walk_secrets(c, c->raw, "", found);
	for (i = 0; i < json_array_size(found); i++) {
		n = xasprintf("%s%s%s", list, i ? ", " : "",
			      json_string_value(json_array_get(found, i)));
		free(list);
		list = n;
	}
	if (json_array_size(found)) {
		f = service_doctor_add(c, "secrets.plaintext", SERVICE_DOCTOR_WARN, 0,
			       "plaintext secret%s in %s: %s",
			       json_array_size(found) == 1 ? "" : "s",
			       c->config_path, list);
		service_doctor_hint(f, "use an environment reference (\"${NAME}\") or "
			    "a secret ref instead, and keep the file 0600");
	}
	free(list);
	json_decref(found);
}

static void service_doctor_hooks_token(struct service_doctor *c)
{
	const char *h = json_string_value(json_object_get(
		json_object_get(c->raw, "hooks"), "token"));
	json_t *f;

	if (!h || !c->gateway_token || !util_secret_equal(h, c->gateway_token))
		return;
	f = service_doctor_add(c, "hooks.token-reuse", SERVICE_DOCTOR_ERROR, 0,
		       "hooks.token is the gateway token: whoever can send a "
		       "hook can also operate the gateway");
	service_doctor_hint(f, "give hooks their own token (hooks.token)");
}

static void service_doctor_weak_token(struct service_doctor *c)
{
	const char *t = c->configured_token;
	size_t n, i, classes = 0;
	int lo = 0, up = 0, dig = 0, oth = 0;
	json_t *f;

	if (!t)
		return;
	n = strlen(t);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)t[i];

		lo |= islower(ch) != 0;
		up |= isupper(ch) != 0;
		dig |= isdigit(ch) != 0;
		oth |= !isalnum(ch);
	}
	classes = (size_t)(lo + up + dig + oth);
	if (n >= DOCTOR_WEAK_TOKEN_LEN && classes >= 2)
		return;
	f = service_doctor_add(c, "auth.weak-token", SERVICE_DOCTOR_WARN, 0,
		       "the configured gateway token is weak (%zu "
		       "characters%s)", n,
		       classes < 2 ? ", one character class" : "");
	service_doctor_hint(f, "remove gateway.auth.token to let the gateway generate "
		    "one (kept in the state dir), or set a random one of 32+ "
		    "characters");
}

/* --- state dir and files ------------------------------------------------ */

static void service_doctor_mode(struct service_doctor *c, const char *path,
			mode_t want, const char *id)
{
	struct stat st;
	json_t *f;

	if (stat(path, &st) != 0 || !(st.st_mode & 077 & ~want))
		return;
	f = service_doctor_add(c, id, SERVICE_DOCTOR_WARN, 1,
		       "%s is mode %03o: readable by other users (want %03o)",
		       path, (unsigned)(st.st_mode & 0777), (unsigned)want);
	if (!c->fix)
		return;
	if (chmod(path, want) == 0)
		service_doctor_fixed(f, "chmod done");
	else
		service_doctor_hint(f, "chmod %03o %s failed: %s", (unsigned)want,
			    path, strerror(errno));
}

static void service_doctor_state_dir(struct service_doctor *c)
{
	struct stat st;

	if (stat(c->state_dir, &st) != 0) {
		service_doctor_add(c, "state.dir", SERVICE_DOCTOR_INFO, 0,
			   "state dir %s does not exist yet (created on the "
			   "first start)", c->state_dir);
		return;
	}
	service_doctor_mode(c, c->state_dir, 0700, "state.dir-mode");
}

static void service_doctor_state_files(struct service_doctor *c)
{
	static const char *const files[] = {
		"gateway.token", "identity/device.json",
		"identity/device-auth.json", "state/clawgate.sqlite",
		"state/clawgate.sqlite-wal", "state/config-last-good.json",
		NULL,
	};
	const char *const *f;
	char *p;

	for (f = files; *f; f++) {
		p = xasprintf("%s/%s", c->state_dir, *f);
		service_doctor_mode(c, p, 0600, "state.file-mode");
		free(p);
	}
	service_doctor_mode(c, c->config_path, 0600, "state.file-mode");
}

static void service_doctor_disk(struct service_doctor *c)
{
	struct statvfs vfs;
	unsigned long long avail;
	json_t *f;

	if (statvfs(c->state_dir, &vfs) != 0)
		return;
	avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	if (avail >= DOCTOR_DISK_WARN_BYTES)
		return;
	f = service_doctor_add(c, "disk.space",
		       avail < DOCTOR_DISK_ERROR_BYTES ? SERVICE_DOCTOR_ERROR
						       : SERVICE_DOCTOR_WARN,
		       0, "only %llu MiB free for the state dir %s",
		       avail / (1024 * 1024), c->state_dir);
	service_doctor_hint(f, "free space: SQLite needs room for its WAL and "
		    "checkpoints");
}

static void service_doctor_store(struct service_doctor *c)
{
	char *path = xasprintf("%s/state/clawgate.sqlite", c->state_dir);
	char *qc = NULL;
	int v = 0, latest = 0, r;
	struct stat st;
	json_t *f;

	if (stat(path, &st) != 0)
		goto out;
	r = store_check_file(path, &qc, &v, &latest);
	if (r != GW_OK || !qc || strcmp(qc, "ok") != 0) {
		f = service_doctor_add(c, "store.integrity", SERVICE_DOCTOR_ERROR, 0,
			       "PRAGMA quick_check on %s: %s", path,
			       qc ? qc : "cannot open");
		service_doctor_hint(f, "stop the gateway, back the file up, and "
			    "recover it with `sqlite3 %s .recover`", path);
	}
	if (r == GW_OK && v > latest)
		service_doctor_add(c, "store.migrations", SERVICE_DOCTOR_ERROR, 0,
			   "%s has schema version %d, newer than this "
			   "binary (%d): use a newer clawgate", path, v,
			   latest);
	else if (r == GW_OK && v < latest)
		service_doctor_add(c, "store.migrations", SERVICE_DOCTOR_INFO, 0,
			   "%d pending migration%s (schema %d of %d); the "
			   "gateway applies them on its next start",
			   latest - v, latest - v == 1 ? "" : "s", v, latest);
out:
	free(qc);
	free(path);
}

/* --- port and services -------------------------------------------------- */

static void service_doctor_port(struct service_doctor *c)
{
	json_t *ls = service_port_listeners(c->port), *l, *f;
	size_t i;
	long pid;

	json_array_foreach(ls, i, l) {
		pid = (long)json_integer_value(json_object_get(l, "pid"));
		if (c->lock_held && pid == c->lock_pid)
			continue;
		if (c->lock_held && pid == 0)
			continue;	/* cannot see it: assume ours */
		f = service_doctor_add(c, "port.collision", SERVICE_DOCTOR_ERROR, 0,
			       "port %d is taken by %s (pid %ld%s%s), not by "
			       "this gateway", c->port,
			       json_string_value(json_object_get(l,
								 "address")),
			       pid, pid ? ": " : "",
			       pid ? json_string_value(json_object_get(
					     l, "commandLine"))
				   : "unknown");
		service_doctor_hint(f, "stop that process or choose another port "
			    "(gateway.port / --port)");
		break;
	}
	json_decref(ls);
}

static void service_doctor_service_drift(struct service_doctor *c)
{
	char *text = NULL, *err = NULL;
	json_t *drift, *f, *d;
	size_t n;

	if (!c->unit_path || !c->unit_expected ||
	    util_read_file(c->unit_path, DOCTOR_UNIT_MAX, &text, &n) != 1)
		return;
	drift = service_drift(text, c->unit_expected);
	if (json_array_size(drift)) {
		d = json_array_get(drift, 0);
		f = service_doctor_add(c, "service.drift", SERVICE_DOCTOR_WARN, 1,
			       "%s differs from this setup: %s is \"%s\", "
			       "expected \"%s\"%s", c->unit_path,
			       json_string_value(json_object_get(d, "field")),
			       json_string_value(json_object_get(d,
								 "installed")),
			       json_string_value(json_object_get(d,
								 "expected")),
			       json_array_size(drift) > 1 ? " (and more)" : "");
		if (c->fix && c->reinstall) {
			if (c->reinstall(c->arg, &err) == 0)
				service_doctor_fixed(f, "re-installed the unit");
			else
				service_doctor_hint(f, "re-install failed: %s",
					    err ? err : "?");
		} else {
			service_doctor_hint(f, "clawgate gateway install --force");
		}
	}
	json_decref(drift);
	free(text);
	free(err);
}

static void service_doctor_service_duplicates(struct service_doctor *c)
{
	json_t *found = service_scan_extra(c->managed_label), *s, *f;
	const char *label, *scope, *detail, *path;
	size_t i;

	json_array_foreach(found, i, s) {
		label = json_string_value(json_object_get(s, "label"));
		scope = json_string_value(json_object_get(s, "scope"));
		detail = json_string_value(json_object_get(s, "detail"));
		path = detail && strncmp(detail, "unit: ", 6) == 0 ? detail + 6
								   : NULL;
		f = service_doctor_add(c, "service.duplicates", SERVICE_DOCTOR_WARN,
			       json_is_true(json_object_get(s, "legacy")),
			       "another gateway-like service: %s (%s, %s%s)",
			       label, scope, detail,
			       json_is_true(json_object_get(s, "legacy"))
				       ? ", legacy"
				       : "");
		if (!json_is_true(json_object_get(s, "legacy"))) {
			service_doctor_hint(f, "systemctl --%s status -- %s; run one "
				    "gateway per machine", scope, label);
			continue;
		}
		if (c->fix && !c->yes && c->confirm) {
			char *q = xasprintf("Disable and remove the legacy "
					    "unit %s (%s)?", label,
					    path ? path : scope);
			int ok = c->confirm(c->arg, q);

			free(q);
			if (!ok) {
				service_doctor_hint(f, "kept (answered no)");
				continue;
			}
		} else if (!c->fix || !c->yes) {
			service_doctor_hint(f, "clawgate doctor --fix --yes "
					    "disables and removes it (or: "
					    "systemctl --%s disable --now "
					    "%s)", scope, label);
			continue;
		}
		service_systemctl(strcmp(scope, "system") == 0,
				  (const char *[]){"disable", "--now", label,
						   NULL},
				  NULL);
		if (path && unlink(path) == 0) {
			service_systemctl(strcmp(scope, "system") == 0,
					  (const char *[]){"daemon-reload",
							   NULL},
					  NULL);
			service_doctor_fixed(f, "disabled and removed");
		} else {
			service_doctor_hint(f, "cannot remove %s: %s",
				    path ? path : label, strerror(errno));
		}
	}
	json_decref(found);
}

static void service_doctor_linger(struct service_doctor *c)
{
	json_t *f;
	struct stat st;

	if (!c->unit_path || c->system || stat(c->unit_path, &st) != 0 ||
	    service_linger_enabled() != 0)
		return;
	f = service_doctor_add(c, "service.linger", SERVICE_DOCTOR_WARN, 0,
		       "lingering is off: the user service stops when you "
		       "log out and does not start at boot");
	service_doctor_hint(f, "loginctl enable-linger $USER");
}

/* The table: order is the order of the report. */
static const struct service_doctor_check {
	const char *id;
	void (*fn)(struct service_doctor *c);
	int lint;		/* part of --lint (config-only) */
} service_doctor_checks[] = {
	{"config.valid", service_doctor_config_valid, 1},
	{"config.mode", service_doctor_config_mode, 1},
	{"secrets.plaintext", service_doctor_config_secrets, 1},
	{"hooks.token-reuse", service_doctor_hooks_token, 1},
	{"auth.weak-token", service_doctor_weak_token, 1},
	{"state.dir-mode", service_doctor_state_dir, 0},
	{"state.file-mode", service_doctor_state_files, 0},
	{"port.collision", service_doctor_port, 0},
	{"service.drift", service_doctor_service_drift, 0},
	{"service.duplicates", service_doctor_service_duplicates, 0},
	{"service.linger", service_doctor_linger, 0},
	{"store.integrity", service_doctor_store, 0},
	{"disk.space", service_doctor_disk, 0},
};

const char *const *service_doctor_ids(size_t *n)
{
	static const char *ids[ARRAY_SIZE(service_doctor_checks) + 1];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(service_doctor_checks); i++)
		ids[i] = service_doctor_checks[i].id;
	*n = ARRAY_SIZE(service_doctor_checks);
	return ids;
}

int service_doctor_load_raw(struct service_doctor *c)
{
	char *buf = NULL;
	size_t n = 0;
	struct json5_error err;

	if (util_read_file(c->config_path, DOCTOR_CONFIG_MAX, &buf, &n) != 1)
		return 0;
	if (json5_parse(buf, n, &c->raw, &err) != 0)
		c->raw = NULL;
	xfree_secret(buf);
	return 0;
}

int service_doctor_run(struct service_doctor *c)
{
	size_t i;

	if (!c->findings)
		c->findings = json_array();
	for (i = 0; i < ARRAY_SIZE(service_doctor_checks); i++) {
		if (c->lint && !service_doctor_checks[i].lint)
			continue;
		service_doctor_checks[i].fn(c);
	}
	return 0;
}
