/* `clawgate gateway status` with openclaw's text and JSON keys (cli,
 * logFile, service, config, gateway, port, rpc, extraServices), so scripts
 * written for `openclaw gateway status --json` read it unchanged; and the
 * top-level `clawgate status` overview. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

#define A(f) offsetof(struct cli_args, f)
#define CLI_STATUS_TIMEOUT_MS 10000
#define CLI_STATUS_UNIT_MAX (64 * 1024)

const struct cli_opt cli_status_gateway_opts[] = {
	CLI_CLIENT_OPTS("probe timeout in ms (default 10000)"),
	{"require-rpc", CLI_OPT_FLAG, A(require_rpc), NULL,
	 "also run a read RPC (status); fail when it fails"},
	{"deep", CLI_OPT_FLAG, A(deep), NULL,
	 "also look for other gateway-like services"},
	{"no-probe", CLI_OPT_FLAG, A(no_probe), NULL,
	 "do not connect to the gateway"},
	{"system", CLI_OPT_FLAG, A(system), NULL,
	 "inspect the system unit instead of the user unit"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_status_overview_opts[] = {
	CLI_CLIENT_OPTS("probe timeout in ms (default 10000)"),
	{"deep", CLI_OPT_FLAG, A(deep), NULL,
	 "also look for other gateway-like services"},
	{"all", CLI_OPT_FLAG, A(all), NULL, "everything: --deep and health"},
	{NULL, 0, 0, NULL, NULL},
};

char *cli_status_log_file(const struct cli_local *l)
{
	char day[16];
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	if (l->cfg_log_file) {
		n = strlen(l->cfg_log_file);
		if (n > 4 && strcmp(l->cfg_log_file + n - 4, ".log") == 0)
			return xstrdup(l->cfg_log_file);
		localtime_r(&now, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		return xasprintf("%s/clawgate-%s.log", l->cfg_log_file, day);
	}
	localtime_r(&now, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	return xasprintf("%s/logs/clawgate-%s.log", l->state_dir, day);
}

/* "KEY=VALUE" Environment= words of a unit into an object. */
static json_t *cli_status_unit_env(const char *text)
{
	json_t *env = json_object();
	const char *line = text, *nl;
	char *v, *eq;
	size_t n;

	for (; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		n = nl ? (size_t)(nl - line) : strlen(line);
		if (n < 13 || strncmp(line, "Environment=", 12) != 0)
			continue;
		v = xstrndup(line + 12, n - 12);
		if (v[0] == '"' && strlen(v) > 1 && v[strlen(v) - 1] == '"') {
			memmove(v, v + 1, strlen(v));
			v[strlen(v) - 1] = '\0';
		}
		eq = strchr(v, '=');
		if (eq) {
			*eq = '\0';
			json_object_set_new(env, v, json_string(eq + 1));
		}
		free(v);
	}
	return env;
}

static json_t *cli_status_words(const char *s)
{
	json_t *arr = json_array();
	char *copy = xstrdup(s), *save = NULL, *w;

	for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
		json_array_append_new(arr, json_string(w));
	free(copy);
	return arr;
}

/* openclaw's service block, for the systemd unit of this profile. */
static json_t *cli_status_service(struct cli_args *a,
				  const struct cli_local *l, int held,
				  long pid, char **daemon_cfg)
{
	char *path = cli_service_unit_path(a, a->system), *why = NULL;
	char *text = NULL, *expected = NULL, *err = NULL, *exec = NULL;
	json_t *svc, *cmd = json_null(), *issues = json_array(), *drift, *d;
	json_t *runtime, *env = NULL;
	size_t n, i;
	int avail, loaded;

	avail = service_systemd_available(a->system, &why);
	loaded = path && util_read_file(path, CLI_STATUS_UNIT_MAX, &text,
					&n) == 1;
	if (loaded) {
		exec = service_unit_exec_start(text);
		env = cli_status_unit_env(text);
		cmd = json_pack("{s:o,s:s,s:O}", "programArguments",
				cli_status_words(exec), "sourcePath", path,
				"environment", env);
		if (json_string_value(json_object_get(env,
						      "OPENCLAW_CONFIG_PATH")))
			*daemon_cfg = xstrdup(json_string_value(json_object_get(
				env, "OPENCLAW_CONFIG_PATH")));
		/* Drift: the unit against what this config would
		 * install (port, binary, paths). */
		drift = NULL;
		expected = cli_service_render(a, l, SERVICE_SYSTEMD, a->system,
					      &err);
		if (expected)
			drift = service_drift(text, expected);
		json_array_foreach(drift, i, d) {
			json_array_append_new(issues, json_pack(
				"{s:s,s:s,s:s}", "code", "service-drift",
				"message", json_string_value(json_object_get(
						   d, "field")),
				"detail", json_string_value(json_object_get(
						  d, "installed"))));
		}
		json_decref(drift);
	}
	if (held == 1)
		runtime = pid > 0 ? json_pack("{s:s,s:I}", "status", "running",
					      "pid", (json_int_t)pid)
				  : json_pack("{s:s}", "status", "running");
	else
		runtime = json_pack("{s:s}", "status", "stopped");
	svc = json_pack("{s:s,s:b,s:{s:s},s:s,s:s,s:s,s:o,s:o,s:{s:b,s:o}}",
			"label", avail ? "systemd"
				       : "no supported service manager "
					 "detected",
			"loaded", loaded, "loadState", "status",
			loaded ? "loaded" : "not-loaded", "loadedText",
			"enabled", "notLoadedText", "disabled", "targetRole",
			loaded && avail ? "probe-target" : "diagnostic-only",
			"command", cmd, "runtime", runtime, "configAudit", "ok",
			json_array_size(issues) == 0, "issues", issues);
	if (!avail) {
		json_object_set_new(svc, "inspectionReason",
				    json_string("service-manager-unavailable"));
		json_object_set_new(svc, "detail", json_string(why));
		runtime = json_object_get(svc, "runtime");
		json_object_set_new(runtime, "inspectionReason",
				    json_string("service-manager-unavailable"));
		json_object_set_new(runtime, "detail", json_string(why));
		json_object_set_new(runtime, "inspectionFailure", json_pack(
			"{s:s,s:s}", "code",
			"service-runtime-inspection-failed", "detail", why));
	}
	json_object_set_new(svc, "systemdInstallation",
			    json_pack("{s:s}", "kind", loaded ? (a->system ?
						"system" : "user") : "none"));
	json_decref(env);
	free(path);
	free(why);
	free(text);
	free(expected);
	free(err);
	free(exec);
	return svc;
}

static json_t *cli_status_cfg(const char *path, int valid)
{
	return json_pack("{s:s,s:b,s:b}", "path", path, "exists",
			 access(path, F_OK) == 0, "valid", valid);
}

/* Capability words: JSON with underscores (openclaw), text with dashes. */
static char *cli_status_cap_json(const char *cap)
{
	char *s = xstrdup(cap ? cap : "unknown"), *p;

	for (p = s; *p; p++)
		if (*p == '-')
			*p = '_';
	return s;
}

int cli_status_gateway(struct cli_args *a)
{
	const struct cli_gateway_as rpc_as = {"gateway-client", "backend",
					      PACKAGE_VERSION,
					      "gateway:status",
					      "operator.read", 4};
	const struct cli_gateway_as probe_as = {"cli", "probe", "dev", NULL,
						"operator.read", 3};
	struct cli_local l;
	struct cli_target t;
	struct gwclient *c = NULL;
	struct gwclient_err e = {0}, re = {0};
	json_t *hello = NULL, *lock = NULL, *payload = NULL, *out = NULL;
	json_t *services = NULL, *service = NULL, *listeners = NULL;
	json_t *rpc = NULL, *j;
	const char *cap = NULL, *sver = NULL, *s;
	char *err_text = NULL, *rpc_err = NULL, *self = NULL, *log = NULL;
	char *daemon_cfg = NULL, *label = NULL, *capj = NULL;
	int timeout, held = -1, probe_ok = 0, rpc_ok = 0, r = 1, mismatch;
	long pid = 0;
	size_t i;

	cli_target_local_load(a->profile, a->dev, &l);
	cli_target_resolve(a, &l, &t);
	timeout = cli_gateway_timeout(a, CLI_STATUS_TIMEOUT_MS);
	if (timeout < 0) {
		r = 2;
		goto out;
	}
	held = cli_lock_read(l.state_dir, &lock);
	pid = (long)json_integer_value(json_object_get(lock, "pid"));
	if (!a->no_probe) {
		probe_ok = cli_gateway_connect(&t, a->require_rpc ? &rpc_as
								  : &probe_as,
					       l.state_dir, timeout, &c,
					       &hello, &e) == 0;
		if (!probe_ok)
			err_text = cli_gateway_err_text(&t, &e);
		if (probe_ok && a->require_rpc) {
			rpc_ok = gwclient_request(c, "status", NULL, timeout,
						  0, &payload, &re) == 0;
			if (!rpc_ok)
				rpc_err = cli_gateway_err_text(&t, &re);
		}
		cap = cli_gateway_capability(probe_ok ? hello : NULL,
					     probe_ok ? NULL : e.error);
		/* openclaw's word for a connect without operator scopes. */
		if (cap && strcmp(cap, "connect-only") == 0)
			cap = "connected-no-operator-scope";
		sver = json_string_value(json_object_get(
			json_object_get(hello, "server"), "version"));
	}
	self = cli_service_self_path();
	log = cli_status_log_file(&l);
	label = service_unit_name(SERVICE_SYSTEMD, cli_service_profile(a));
	service = cli_status_service(a, &l, held, pid, &daemon_cfg);
	services = a->deep ? service_scan_extra(label) : json_array();
	listeners = service_port_listeners(l.port);
	mismatch = daemon_cfg && strcmp(daemon_cfg, l.config_path) != 0;
	r = a->require_rpc && !(probe_ok && rpc_ok) ? 1 : 0;

	out = json_object();
	json_object_set_new(out, "cli", json_pack("{s:s,s:s?}", "version",
						  PACKAGE_VERSION,
						  "entrypoint", self));
	json_object_set_new(out, "logFile", json_string(log));
	json_object_set(out, "service", service);
	json_object_set_new(out, "config", json_pack(
		"{s:o,s:o,s:b}", "cli",
		cli_status_cfg(l.config_path, l.cfg_error == NULL), "daemon",
		cli_status_cfg(daemon_cfg ? daemon_cfg : l.config_path,
			       mismatch || l.cfg_error == NULL),
		"mismatch", mismatch));
	j = json_pack("{s:s,s:s,s:i,s:s,s:s,s:{s:s,s:s}}", "bindMode",
		      l.bind ? l.bind : "loopback", "bindHost",
		      l.bind && strcmp(l.bind, "lan") == 0 ? "0.0.0.0"
							   : "127.0.0.1",
		      "port", l.port, "portSource",
		      getenv("OPENCLAW_GATEWAY_PORT") ? "env" : "env/config",
		      "probeUrl", t.url, "controlUiLinks", "httpUrl", "", "wsUrl",
		      "");
	json_object_set_new(json_object_get(j, "controlUiLinks"), "httpUrl",
			    json_sprintf("http://127.0.0.1:%d/", l.port));
	json_object_set_new(json_object_get(j, "controlUiLinks"), "wsUrl",
			    json_sprintf("ws://127.0.0.1:%d", l.port));
	if (sver)
		json_object_set_new(j, "version", json_string(sver));
	json_object_set_new(out, "gateway", j);
	json_object_set_new(out, "hostDesktop",
			    json_pack("{s:b,s:s,s:i}", "enabled", 0, "state",
				      "disabled", "port", 5900));
	json_object_set_new(out, "port", json_pack(
		"{s:i,s:s,s:O,s:[]}", "port", l.port, "status",
		json_array_size(listeners) ? "busy" : "free", "listeners",
		listeners, "hints"));
	if (!a->no_probe) {
		capj = cli_status_cap_json(cap);
		rpc = json_pack("{s:b,s:s,s:s,s:s}", "ok",
				probe_ok && (!a->require_rpc || rpc_ok),
				"kind", a->require_rpc ? "read" : "connect",
				"capability", capj, "url", t.url);
		if (probe_ok) {
			json_t *auth = json_object_get(hello, "auth");

			json_object_set_new(rpc, "auth", json_pack(
				"{s:O?,s:O?,s:s}", "role",
				json_object_get(auth, "role"), "scopes",
				json_object_get(auth, "scopes"), "capability",
				capj));
			json_object_set(rpc, "server",
					json_object_get(hello, "server")
						? json_object_get(hello,
								  "server")
						: json_null());
			if (sver)
				json_object_set_new(rpc, "version",
						    json_string(sver));
		}
		if (err_text || rpc_err)
			json_object_set_new(rpc, "error",
					    json_string(rpc_err ? rpc_err
								: err_text));
		json_object_set(out, "rpc", rpc);
	}
	json_object_set(out, "extraServices", services);
	if (a->json) {
		cli_json_print(stdout, out);
		goto out;
	}

	/* The text, in openclaw's order. */
	printf("Service: %s", json_string_value(json_object_get(service,
								 "label")));
	if (!json_object_get(service, "inspectionReason"))
		printf(" (%s)", json_is_true(json_object_get(service, "loaded"))
				       ? "enabled" : "disabled");
	if (strcmp(json_string_value(json_object_get(service, "targetRole")),
		   "diagnostic-only") == 0)
		printf(" (diagnostic only, not the probe target)");
	printf("\nFile logs: %s\nHost desktop: disabled\n", log);
	j = json_object_get(service, "command");
	if (json_is_object(j)) {
		const json_t *v;

		printf("Command:");
		json_array_foreach(json_object_get(j, "programArguments"), i,
				   v)
			printf(" %s", json_string_value(v));
		printf("\nService file: %s\n",
		       json_string_value(json_object_get(j, "sourcePath")));
	}
	printf("\n");
	j = json_object_get(json_object_get(service, "configAudit"), "issues");
	if (json_array_size(j)) {
		fprintf(stderr, "Service config looks out of date or "
			"non-standard.\n");
		for (i = 0; i < json_array_size(j); i++)
			fprintf(stderr, "Service config issue: %s differs "
				"(%s)\n",
				json_string_value(json_object_get(
					json_array_get(j, i), "message")),
				json_string_value(json_object_get(
					json_array_get(j, i), "detail")));
		fprintf(stderr, "Recommendation: run \"clawgate doctor\" for "
			"guided checks, or reinstall with \"clawgate gateway "
			"install --force\".\n");
	}
	printf("Config (cli): %s%s%s\n", l.config_path,
	       access(l.config_path, F_OK) == 0 ? "" : " (missing)",
	       l.cfg_error ? " (invalid)" : "");
	if (l.cfg_error)
		fprintf(stderr, "Config issue: %s\n", l.cfg_error);
	s = daemon_cfg ? daemon_cfg : l.config_path;
	printf("Config (service): %s%s\n", s,
	       access(s, F_OK) == 0 ? "" : " (missing)");
	if (mismatch) {
		fprintf(stderr, "Root cause: CLI and service are using "
			"different config paths (likely a profile/state-dir "
			"mismatch).\nFix: rerun `clawgate gateway install "
			"--force` from the same --profile / OPENCLAW_STATE_DIR "
			"you expect.\n");
	}
	printf("\nGateway: bind=%s (%s), port=%d (%s)\n",
	       l.bind ? l.bind : "loopback",
	       l.bind && strcmp(l.bind, "lan") == 0 ? "0.0.0.0" : "127.0.0.1",
	       l.port, getenv("OPENCLAW_GATEWAY_PORT") ? "env" : "env/config");
	printf("Probe target: %s\nDashboard: http://127.0.0.1:%d/\n\n", t.url,
	       l.port);
	printf("CLI version: %s (%s)\n", PACKAGE_VERSION,
	       self ? self : "clawgate");
	if (sver)
		printf("Gateway version: %s\n", sver);
	printf("\n");
	if (held == 1 && pid > 0)
		printf("Runtime: running (pid %ld)\n", pid);
	else if (held == 1)
		printf("Runtime: running\n");
	else
		printf("Runtime: stopped\n");
	if (!a->no_probe) {
		const char *pl = a->require_rpc ? "Read probe" :
						  "Connectivity probe";

		if (probe_ok && (!a->require_rpc || rpc_ok)) {
			printf("%s: ok\n", pl);
		} else {
			printf("%s: failed\n", pl);
			printf("Probe target: %s\n", t.url);
			printf("  %s\n", rpc_err ? rpc_err : err_text);
		}
		if (cap)
			printf("Capability: %s\n", cap);
		printf("\n");
	}
	if (json_array_size(services)) {
		const json_t *sv;
		const char *sc;

		printf("Other gateway-like services detected (best "
		       "effort):\n");
		json_array_foreach(services, i, sv)
			printf("- %s (%s, %s)\n",
			       json_string_value(json_object_get(sv, "label")),
			       json_string_value(json_object_get(sv, "scope")),
			       json_string_value(json_object_get(sv,
								 "detail")));
		json_array_foreach(services, i, sv) {
			sc = json_string_value(json_object_get(sv, "scope"));
			printf("Inspection hint: systemctl --%s status -- %s\n"
			       "Inspection hint: systemctl --%s cat -- %s\n",
			       sc, json_string_value(json_object_get(sv,
								     "label")),
			       sc, json_string_value(json_object_get(sv,
								     "label")));
		}
		json_array_foreach(services, i, sv) {
			if (!json_is_true(json_object_get(sv, "legacy")))
				continue;
			sc = json_string_value(json_object_get(sv, "scope"));
			printf("Cleanup hint: %ssystemctl --%s disable --now "
			       "%s (a legacy install; `clawgate doctor --fix "
			       "--yes` removes it)\n",
			       strcmp(sc, "system") == 0 ? "sudo " : "", sc,
			       json_string_value(json_object_get(sv,
								 "label")));
		}
		printf("Recommendation: run a single gateway per machine for "
		       "most setups. One gateway supports multiple agents.\n"
		       "\n");
	}
	if (json_array_size(listeners)) {
		const json_t *li;

		printf("Listening:");
		json_array_foreach(listeners, i, li)
			printf("%s %s", i ? "," : "",
			       json_string_value(json_object_get(li,
								 "address")));
		printf("\n");
	}
	printf("Troubles: run clawgate status\n"
	       "Troubleshooting: https://docs.openclaw.ai/troubleshooting\n");
out:
	gwclient_close(c);
	gwclient_err_free(&e);
	gwclient_err_free(&re);
	json_decref(hello);
	json_decref(lock);
	json_decref(payload);
	json_decref(out);
	json_decref(services);
	json_decref(service);
	json_decref(listeners);
	json_decref(rpc);
	free(err_text);
	free(rpc_err);
	free(self);
	free(log);
	free(daemon_cfg);
	free(label);
	free(capj);
	cli_target_free(&t);
	cli_target_local_free(&l);
	return r;
}

/* --- top-level status --------------------------------------------------- */

/* The store section of `status --deep`: the writer's group commits and
 * the WAL (the `status` RPC's gateway.store), and the database's files on
 * disk when the gateway is this machine's. */
static json_t *cli_status_store(const json_t *status, const char *state_dir)
{
	const json_t *gs = json_object_get(json_object_get(status, "gateway"),
					   "store");
	json_t *out = json_object();
	char *path = xasprintf("%s/state/clawgate.sqlite", state_dir);
	char *wal = xasprintf("%s-wal", path);
	struct stat st;

	if (gs)
		json_object_update(out, (json_t *)gs);
	json_object_set_new(out, "path", json_string(path));
	if (stat(path, &st) == 0)
		json_object_set_new(out, "fileBytes",
				    json_integer((json_int_t)st.st_size));
	if (stat(wal, &st) == 0)
		json_object_set_new(out, "walFileBytes",
				    json_integer((json_int_t)st.st_size));
	free(path);
	free(wal);
	return out;
}

static json_int_t cli_status_int(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void cli_status_store_print(const json_t *s)
{
	const json_t *w = json_object_get(s, "wal");
	json_int_t commits = cli_status_int(s, "commits");

	printf("Store: %s", json_string_value(json_object_get(s, "path")));
	if (json_object_get(s, "fileBytes"))
		printf(" (%lld KiB, WAL file %lld KiB)",
		       (long long)cli_status_int(s, "fileBytes") / 1024,
		       (long long)cli_status_int(s, "walFileBytes") / 1024);
	printf("\n");
	if (!w) {
		printf("  writer: no figures (gateway unreachable)\n");
		return;
	}
	printf("  writer: %lld writes in %lld commits (%.1f per commit)\n",
	       (long long)cli_status_int(s, "writes"), (long long)commits,
	       commits ? (double)cli_status_int(s, "writes") / (double)commits
		       : 0.0);
	printf("  WAL: %lld pages now, at most %lld; checkpoints from %lld "
	       "pages, on the writer past %lld\n",
	       (long long)cli_status_int(w, "pages"),
	       (long long)cli_status_int(w, "pagesMax"),
	       (long long)cli_status_int(w, "softPages"),
	       (long long)cli_status_int(w, "hardPages"));
	printf("  checkpoints: %lld (%lld pages, longest %.1f ms, %lld found "
	       "a reader), %lld on the writer\n",
	       (long long)cli_status_int(w, "checkpoints"),
	       (long long)cli_status_int(w, "checkpointPages"),
	       (double)cli_status_int(w, "maxCheckpointUs") / 1000.0,
	       (long long)cli_status_int(w, "checkpointsBusy"),
	       (long long)cli_status_int(w, "writerCheckpoints"));
}

/* The channel section of `status --deep`: one line per account of the
 * channels.status snapshot {channel: [account, ...]}. */
static void cli_status_channels(const json_t *accounts)
{
	const char *ch;
	const json_t *list, *acct;
	size_t i;

	printf("Channels:%s\n", json_object_size(accounts) ? "" : " none");
	json_object_foreach((json_t *)accounts, ch, list) {
		json_array_foreach(list, i, acct) {
			const char *id = json_string_value(
				json_object_get(acct, "accountId"));
			const char *err = json_string_value(
				json_object_get(acct, "lastError"));

			printf("  %s %s: %s%s%s\n", ch, id ? id : "default",
			       json_is_true(json_object_get(acct,
							    "connected"))
				       ? "connected"
			       : json_is_true(json_object_get(acct,
							      "running"))
				       ? "running, not connected"
				       : "stopped",
			       err && *err ? " · last error: " : "",
			       err && *err ? err : "");
		}
	}
}

int cli_status_overview(struct cli_args *a)
{
	const struct cli_gateway_as as = {"cli", "cli", PACKAGE_VERSION, NULL,
					  "operator.read", 4};
	struct cli_local l;
	struct cli_target t;
	struct gwclient *c = NULL;
	struct gwclient_err e = {0};
	json_t *hello = NULL, *status = NULL, *health = NULL, *sessions = NULL;
	json_t *out = NULL, *lock = NULL, *services = NULL, *agents = NULL;
	json_t *findings = json_array(), *svc = NULL, *channels = NULL;
	char *err_text = NULL, *label = NULL, *unit = NULL, *tokpath = NULL;
	char *dash = NULL;
	int timeout, ok, held, r = 0;
	long pid;
	int64_t t0 = util_mono_ms(), ms = 0;
	struct stat st;
	size_t i;

	cli_target_local_load(a->profile, a->dev, &l);
	cli_target_resolve(a, &l, &t);
	timeout = cli_gateway_timeout(a, CLI_STATUS_TIMEOUT_MS);
	if (timeout < 0) {
		r = 2;
		goto out;
	}
	held = cli_lock_read(l.state_dir, &lock);
	pid = (long)json_integer_value(json_object_get(lock, "pid"));
	ok = cli_gateway_connect(&t, &as, l.state_dir, timeout, &c, &hello,
				 &e) == 0;
	ms = util_mono_ms() - t0;
	if (!ok) {
		err_text = cli_gateway_err_text(&t, &e);
	} else {
		struct gwclient_err e2 = {0};

		gwclient_request(c, "health", NULL, timeout, 0, &health, &e2);
		gwclient_err_free(&e2);
		gwclient_request(c, "agents.list", NULL, timeout, 0, &agents,
				 &e2);
		gwclient_err_free(&e2);
		gwclient_request(c, "sessions.list", NULL, timeout, 0,
				 &sessions, &e2);
		gwclient_err_free(&e2);
		if (a->deep || a->all) {
			json_t *p = json_pack("{s:b}", "probe", 1);

			gwclient_request(c, "channels.status", p, timeout, 0,
					 &channels, &e2);
			gwclient_err_free(&e2);
			json_decref(p);
			gwclient_request(c, "status", NULL, timeout, 0,
					 &status, &e2);
			gwclient_err_free(&e2);
		}
	}
	label = service_unit_name(SERVICE_SYSTEMD, cli_service_profile(a));
	unit = cli_service_unit_path(a, 0);
	if (a->deep || a->all)
		services = service_scan_extra(label);
	/* Security findings a newcomer should see at once. */
	if (stat(l.state_dir, &st) == 0 && (st.st_mode & 077))
		json_array_append_new(findings, json_pack(
			"{s:s,s:s}", "id", "state.dir-mode", "message",
			"the state dir is readable by other users (chmod 700)"));
	tokpath = service_token_path(l.state_dir);
	if (stat(tokpath, &st) == 0 && (st.st_mode & 077))
		json_array_append_new(findings, json_pack(
			"{s:s,s:s}", "id", "state.file-mode", "message",
			"gateway.token is readable by other users (chmod 600)"));
	if (l.bind && strcmp(l.bind, "loopback") != 0)
		json_array_append_new(findings, json_pack(
			"{s:s,s:s}", "id", "gateway.bind", "message",
			"the gateway listens beyond loopback"));
	svc = json_pack("{s:s,s:b,s:s}", "label", label, "installed",
			unit && access(unit, F_OK) == 0, "path",
			unit ? unit : "");
	out = json_pack("{s:s,s:{s:b,s:s,s:I,s:s?},s:o,s:{s:b,s:I}}",
			"dashboard", "",
			"gateway", "reachable", ok, "url", t.url, "latencyMs",
			(json_int_t)ms, "error", err_text,
			"service", svc,
			"runtime", "running", held == 1, "pid",
			held == 1 ? (json_int_t)pid : (json_int_t)0);
	svc = NULL;
	/* the dashboard of the gateway probed (--url), else the local one */
	dash = t.local_default ? xasprintf("http://127.0.0.1:%d/", l.port)
			       : cli_target_http_url(&t);
	json_object_set_new(out, "dashboard", json_string(dash));
	if (json_object_get(agents, "agents"))
		json_object_set(out, "agents",
				json_object_get(agents, "agents"));
	else
		json_object_set_new(out, "agents", json_array());
	json_object_set_new(out, "sessions", json_pack(
		"{s:I}", "count",
		(json_int_t)json_array_size(json_object_get(sessions,
							    "sessions"))));
	json_object_set(out, "securityFindings", findings);
	if (services)
		json_object_set(out, "extraServices", services);
	if (a->all && health)
		json_object_set(out, "health", health);
	if (json_object_get(channels, "channelAccounts"))
		json_object_set(out, "channels",
				json_object_get(channels, "channelAccounts"));
	if (a->deep || a->all)
		json_object_set_new(out, "store",
				    cli_status_store(status, l.state_dir));
	if (a->json) {
		cli_json_print(stdout, out);
		goto out;
	}
	printf("clawgate status\n\n");
	printf("Dashboard: %s  (the URL with the token: clawgate dashboard)\n",
	       dash);
	printf("Gateway: %s · %s", t.url, ok ? "reachable" : "unreachable");
	if (ok)
		printf(" (%lldms)", (long long)ms);
	printf("\n");
	if (err_text)
		printf("  %s\n", err_text);
	printf("Runtime: %s\n", held == 1 ? "running" : "stopped");
	printf("Service: %s (%s)\n", label,
	       unit && access(unit, F_OK) == 0 ? "installed" :
						 "not installed");
	printf("Agents: %zu\n",
	       json_array_size(json_object_get(agents, "agents")));
	for (i = 0; i < json_array_size(json_object_get(agents, "agents"));
	     i++)
		printf("  - %s\n", json_string_value(json_object_get(
			json_array_get(json_object_get(agents, "agents"), i),
			"id")));
	printf("Sessions: %zu\n",
	       json_array_size(json_object_get(sessions, "sessions")));
	printf("Security: %s\n", json_array_size(findings)
					 ? "findings (clawgate doctor)"
					 : "no findings");
	for (i = 0; i < json_array_size(findings); i++)
		printf("  ! %s\n", json_string_value(json_object_get(
			json_array_get(findings, i), "message")));
	if (services && json_array_size(services)) {
		printf("Other gateway-like services detected (best effort):\n");
		for (i = 0; i < json_array_size(services); i++)
			printf("- %s (%s)\n",
			       json_string_value(json_object_get(
				       json_array_get(services, i), "label")),
			       json_string_value(json_object_get(
				       json_array_get(services, i),
				       "detail")));
	}
	if (json_object_get(channels, "channelAccounts"))
		cli_status_channels(json_object_get(channels,
						    "channelAccounts"));
	if (json_object_get(out, "store"))
		cli_status_store_print(json_object_get(out, "store"));
	if (a->all && health)
		printf("Health: %s\n",
		       json_is_false(json_object_get(health, "ok")) ? "FAILED"
								    : "OK");
out:
	r = r ? r : 0;
	gwclient_close(c);
	gwclient_err_free(&e);
	json_decref(hello);
	json_decref(status);
	json_decref(health);
	json_decref(sessions);
	json_decref(agents);
	json_decref(out);
	json_decref(lock);
	json_decref(services);
	json_decref(findings);
	json_decref(svc);
	json_decref(channels);
	free(err_text);
	free(label);
	free(unit);
	free(tokpath);
	free(dash);
	cli_target_free(&t);
	cli_target_local_free(&l);
	return r;
}
