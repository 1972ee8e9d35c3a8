/* Discovery of gateway-like services (openclaw's rules: the service marker
 * environment, or an ExecStart running `gateway` with openclaw/clawdbot/
 * moltbot in it) and drift between an installed unit and the one we would
 * write. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

#define SERVICE_SCAN_FILE_MAX (64 * 1024)

static const char *const service_markers[] = {
	"openclaw", "clawdbot", "moltbot", NULL,
};

static char *service_lower(const char *s)
{
	char *l = xstrdup(s), *p;

	for (p = l; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return l;
}

/* Both marker keys, the openclaw value and "gateway" (upstream's test). */
static int service_has_marker(const char *lower)
{
	return strstr(lower, "openclaw_service_marker") &&
	       strstr(lower, "openclaw_service_kind") &&
	       strstr(lower, "openclaw") && strstr(lower, "gateway");
}

/* " gateway" as a whole word. */
static int service_has_gateway_word(const char *l)
{
	const char *p = l;

	while ((p = strstr(p, " gateway"))) {
		if (p[8] == '\0' || p[8] == ' ' || p[8] == '"')
			return 1;
		p += 8;
	}
	return 0;
}

/* A marker on an ExecStart line that runs a `gateway` subcommand. */
static const char *service_exec_marker(const char *lower)
{
	const char *line = lower, *nl, *const *m;
	char *l;
	const char *found = NULL;

	for (; *line && !found; line = nl ? nl + 1 : line + strlen(line)) {
		nl = strchr(line, '\n');
		l = xstrndup(line, nl ? (size_t)(nl - line) : strlen(line));
		if (strncmp(l, "execstart=", 10) == 0 &&
		    service_has_gateway_word(l)) {
			for (m = service_markers; *m; m++)
				if (strstr(l, *m)) {
					found = *m;
					break;
				}
		}
		free(l);
		if (!nl)
			break;
	}
	return found;
}

static void service_scan_dir(const char *dir, const char *scope,
			     const char *managed, json_t *found)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *path, *body, *lower;
	const char *marker;
	size_t n, nl;
	int r;

	if (!d)
		return;
	while ((de = readdir(d))) {
		nl = strlen(de->d_name);
		if (de->d_name[0] == '.' || nl < 9 ||
		    strcmp(de->d_name + nl - 8, ".service") != 0)
			continue;
		if (managed && strcmp(de->d_name, managed) == 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		body = NULL;
		r = util_read_file(path, SERVICE_SCAN_FILE_MAX, &body, &n);
		if (r != 1) {
			free(path);
			continue;
		}
		lower = service_lower(body);
		marker = service_has_marker(lower) ? "openclaw"
						   : service_exec_marker(lower);
		if (!marker && (strstr(de->d_name, "clawdbot") ||
				strstr(de->d_name, "moltbot")) &&
		    strstr(lower, "gateway"))
			marker = strstr(de->d_name, "clawdbot") ? "clawdbot"
								: "moltbot";
		if (marker) {
			char *detail = xasprintf("unit: %s", path);

			json_array_append_new(found, json_pack(
				"{s:s,s:s,s:s,s:s,s:s,s:b}", "platform",
				"linux", "label", de->d_name, "detail", detail,
				"scope", scope, "marker", marker, "legacy",
				strcmp(marker, "openclaw") != 0));
			free(detail);
		}
		free(lower);
		free(body);
		free(path);
	}
	closedir(d);
}

json_t *service_scan_extra(const char *managed)
{
	static const char *const system_dirs[] = {
		"/etc/systemd/system", "/usr/lib/systemd/system",
		"/lib/systemd/system", NULL,
	};
	const char *sys = getenv("CLAWGATE_SYSTEM_UNIT_DIR");
	const char *const *d;
	json_t *found = json_array();
	char *user = service_unit_dir(0);

	if (user)
		service_scan_dir(user, "user", managed, found);
	free(user);
	if (sys && *sys) {
		service_scan_dir(sys, "system", NULL, found);
	} else {
		for (d = system_dirs; *d; d++)
			service_scan_dir(*d, "system", NULL, found);
	}
	return found;
}

/* The value of the first `key=` line (systemd), "" when absent. */
static char *service_unit_value(const char *text, const char *key,
				int nth)
{
	size_t kl = strlen(key);
	const char *line = text, *nl;
	int seen = 0;

	while (line && *line) {
		nl = strchr(line, '\n');
		if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
			if (seen++ == nth)
				return xstrndup(line + kl + 1,
						nl ? (size_t)(nl - line - kl - 1)
						   : strlen(line + kl + 1));
		}
		line = nl ? nl + 1 : NULL;
	}
	return xstrdup("");
}

char *service_unit_exec_start(const char *text)
{
	return service_unit_value(text, "ExecStart", 0);
}

/* Every Environment= line up to the first empty one, joined by '\n'. One
 * pass: asking service_unit_value for the nth line each time was quadratic
 * in the number of lines (the fuzz target ran at a tenth of its speed). */
static char *service_unit_env(const char *text)
{
	static const char key[] = "Environment=";
	struct util_buf b = { 0 };
	const char *line = text, *nl;
	size_t n;

	util_buf_put(&b, "", 0);
	while (line && *line) {
		nl = strchr(line, '\n');
		n = nl ? (size_t)(nl - line) : strlen(line);
		if (n >= sizeof(key) - 1 &&
		    strncmp(line, key, sizeof(key) - 1) == 0) {
			if (n == sizeof(key) - 1)
				break;
			if (b.len)
				util_buf_put(&b, "\n", 1);
			util_buf_put(&b, line + sizeof(key) - 1,
				     n - (sizeof(key) - 1));
		}
		line = nl ? nl + 1 : NULL;
	}
	return b.p;
}

json_t *service_drift(const char *installed, const char *expected)
{
	static const char *const fields[] = {
		"ExecStart", "Type", "Restart", "RestartPreventExitStatus",
		"User", "WantedBy", NULL,
	};
	const char *const *f;
	json_t *out = json_array();
	char *a, *b;

	for (f = fields; *f; f++) {
		a = service_unit_value(installed, *f, 0);
		b = service_unit_value(expected, *f, 0);
		if (strcmp(a, b) != 0)
			json_array_append_new(out, json_pack(
				"{s:s,s:s,s:s}", "field", *f, "installed", a,
				"expected", b));
		free(a);
		free(b);
	}
	a = service_unit_env(installed);
	b = service_unit_env(expected);
	if (strcmp(a, b) != 0)
		json_array_append_new(out, json_pack("{s:s,s:s,s:s}", "field",
						     "Environment", "installed",
						     a, "expected", b));
	free(a);
	free(b);
	return out;
}
