/* `clawgate gateway install|uninstall|start|stop|restart|auth-token` and
 * `clawgate dashboard`: the gateway as a systemd service (user unit
 * openclaw-gateway[-<profile>].service, the name the openclaw CLI uses),
 * and the token the gateway keeps in its state dir. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

#define A(f) offsetof(struct cli_args, f)
#define CLI_SERVICE_UNIT_MAX (64 * 1024)
#define CLI_SERVICE_RESTART_WAIT_MS 60000
#define CLI_SERVICE_COOLDOWN_MS 30000
#define CLI_SERVICE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:" \
			 "/sbin:/bin"

const struct cli_opt cli_service_install_opts[] = {
	{"port", CLI_OPT_STR, A(port), "PORT",
	 "port the service listens on (default: the configured one)"},
	{"force", CLI_OPT_FLAG, A(force), NULL,
	 "overwrite an installed unit that differs"},
	{"system", CLI_OPT_FLAG, A(system), NULL,
	 "a system unit (/etc/systemd/system, needs root)"},
	{"print", CLI_OPT_FLAG, A(print), NULL,
	 "print the unit and change nothing"},
	{"target", CLI_OPT_STR, A(target), "KIND",
	 "systemd (default) | launchd | schtasks (with --print)"},
	{"user", CLI_OPT_STR, A(user), "NAME",
	 "User= of a --system unit (default: the caller)"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_service_opts[] = {
	{"system", CLI_OPT_FLAG, A(system), NULL, "the system unit"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_service_stop_opts[] = {
	{"disable", CLI_OPT_FLAG, A(disable), NULL,
	 "also disable it (no start at boot/login)"},
	{"system", CLI_OPT_FLAG, A(system), NULL, "the system unit"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_service_restart_opts[] = {
	{"system", CLI_OPT_FLAG, A(system), NULL, "the system unit"},
	{"timeout", CLI_OPT_STR, A(timeout), "MS",
	 "how long to wait for the new process (default 60000)"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_service_token_opts[] = {
	{"rotate", CLI_OPT_FLAG, A(rotate), NULL,
	 "generate a new token (and restart a running gateway)"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_service_dashboard_opts[] = {
	{"no-open", CLI_OPT_FLAG, A(no_open), NULL,
	 "print the URL, do not open a browser"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{NULL, 0, 0, NULL, NULL},
};

/* --- shared helpers ----------------------------------------------------- */

const char *cli_service_profile(const struct cli_args *a)
{
	const char *p = getenv("OPENCLAW_PROFILE");

	if (a->dev)
		return "dev";
	if (a->profile && *a->profile)
		return a->profile;
	return p && *p ? p : NULL;
}

char *cli_service_unit_path(const struct cli_args *a, int system)
{
	char *dir = service_unit_dir(system), *name, *p;

	if (!dir)
		return NULL;
	name = service_unit_name(SERVICE_SYSTEMD, cli_service_profile(a));
	p = xasprintf("%s/%s", dir, name);
	free(dir);
	free(name);
	return p;
}

char *cli_service_self_path(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

char *cli_service_render(const struct cli_args *a,
			 const struct cli_local *l, enum service_target t,
			 int system, char **err)
{
	struct service_spec s = {0};
	char *bin = cli_service_self_path(), *text;

	s.binary = bin;
	s.port = l->port;
	if (a->port)
		s.port = util_parse_port(a->port);
	s.profile = cli_service_profile(a);
	s.state_dir = l->state_dir;
	s.config_path = l->config_path;
	s.home = getenv("HOME");
	s.path_env = CLI_SERVICE_PATH;
	s.system = system;
	if (system) {
		s.user = a->user;
		if (!s.user && getuid() != 0)
			s.user = getenv("USER");
	}
	text = service_unit_render(t, &s, err);
	free(bin);
	return text;
}

/* Print the outcome: text, or {ok, action, result, message, unit}. */
static int cli_service_report(const struct cli_args *a, const char *action,
			      int ok, const char *result, const char *unit,
			      const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static int cli_service_report(const struct cli_args *a, const char *action,
			      int ok, const char *result, const char *unit,
			      const char *fmt, ...)
{
	va_list ap;
	char msg[2048];
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (a->json) {
		j = json_pack("{s:b,s:s,s:s,s:s,s:s?}", "ok", ok, "action",
			      action, "result", result, "message", msg,
			      "unit", unit);
		cli_json_print(stdout, j);
		json_decref(j);
	} else {
		fprintf(ok ? stdout : stderr, "%s\n", msg);
	}
	return ok ? 0 : 1;
}

/* systemctl with its output appended to a failure message. */
static int cli_service_ctl(int system, const char *verb, const char *unit,
			   char **out)
{
	const char *args[] = {verb, unit, NULL};

	return service_systemctl(system, args, out);
}

static int cli_service_manager(const struct cli_args *a, const char *action,
			       const char *unit)
{
	char *why = NULL;
	int r;

	if (service_systemd_available(a->system, &why))
		return 0;
	r = cli_service_report(a, action, 0, "unavailable", unit,
			       "Gateway %s failed: %s", action, why);
	free(why);
	return r ? r : 1;
}

static char *cli_service_unit_label(const struct cli_args *a)
{
	return service_unit_name(SERVICE_SYSTEMD, cli_service_profile(a));
}

/* --- install / uninstall ------------------------------------------------ */

int cli_service_install(struct cli_args *a)
{
	struct cli_local l;
	enum service_target t = SERVICE_SYSTEMD;
	char *text = NULL, *err = NULL, *path = NULL, *label = NULL;
	char *old = NULL, *out = NULL, *dir = NULL;
	json_t *drift = NULL;
	size_t n;
	int r = 1, k;

	cli_target_local_load(a->profile, a->dev, &l);
	if (a->port && util_parse_port(a->port) < 0) {
		fprintf(stderr, "clawgate gateway install: invalid --port: "
			"%s\n", a->port);
		r = 2;
		goto out;
	}
	if (a->target) {
		k = service_target_parse(a->target);
		if (k < 0) {
			fprintf(stderr, "clawgate gateway install: unknown "
				"--target %s (systemd|launchd|schtasks)\n",
				a->target);
			r = 2;
			goto out;
		}
		t = (enum service_target)k;
	}
	text = cli_service_render(a, &l, t, a->system, &err);
	if (!text) {
		r = cli_service_report(a, "install", 0, "error", NULL,
				       "Gateway install failed: %s", err);
		goto out;
	}
	if (a->print) {
		fputs(text, stdout);
		r = 0;
		goto out;
	}
	if (t != SERVICE_SYSTEMD) {
		r = cli_service_report(a, "install", 0, "unsupported", NULL,
				       "Gateway install: %s units can only be "
				       "printed on this system (use --print "
				       "--target %s and install the file "
				       "there).", service_target_name(t),
				       service_target_name(t));
		goto out;
	}
	label = cli_service_unit_label(a);
	path = cli_service_unit_path(a, a->system);
	if (!path) {
		r = cli_service_report(a, "install", 0, "error", NULL,
				       "Gateway install failed: HOME is not "
				       "set, so there is no user unit "
				       "directory.");
		goto out;
	}
	if ((r = cli_service_manager(a, "install", path)))
		goto out;
	r = 1;
	if (util_read_file(path, CLI_SERVICE_UNIT_MAX, &old, &n) == 1) {
		drift = service_drift(old, text);
		if (strcmp(old, text) != 0 && !a->force) {
			r = cli_service_report(
				a, "install", 0, "exists", path,
				"Gateway service already installed at %s and "
				"it differs from this setup (%zu field%s: "
				"%s). Re-run with --force to replace it.",
				path, json_array_size(drift),
				json_array_size(drift) == 1 ? "" : "s",
				json_array_size(drift)
					? json_string_value(json_object_get(
						  json_array_get(drift, 0),
						  "field"))
					: "comments");
			goto out;
		}
	}
	dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	if (service_mkdirs(dir, 0755) != 0 ||
	    service_write_file(path, text, 0644) != 0) {
		r = cli_service_report(a, "install", 0, "error", path,
				       "Gateway install failed: cannot write "
				       "%s: %s%s", path, strerror(errno),
				       a->system && getuid() != 0
					       ? " (a --system unit needs "
						 "root: use sudo)"
					       : "");
		goto out;
	}
	if (service_systemctl(a->system,
			      (const char *[]){"daemon-reload", NULL},
			      &out) != 0 ||
	    (free(out), out = NULL,
	     cli_service_ctl(a->system, "enable", label, &out) != 0) ||
	    (free(out), out = NULL,
	     cli_service_ctl(a->system, "restart", label, &out) != 0)) {
		r = cli_service_report(a, "install", 0, "error", path,
				       "Gateway service written to %s, but "
				       "systemctl failed: %s", path,
				       out && *out ? out : "(no output)");
		goto out;
	}
	r = cli_service_report(a, "install", 1, "installed", path,
			       "Installed %s (%s) and started it.%s", label,
			       path,
			       !a->system && service_linger_enabled() == 0
				       ? "\nNote: lingering is off, so the "
					 "service stops when you log out. "
					 "Fix: loginctl enable-linger $USER"
				       : "");
out:
	json_decref(drift);
	free(text);
	free(err);
	free(path);
	free(label);
	free(old);
	free(out);
	free(dir);
	cli_target_local_free(&l);
	return r;
}

int cli_service_uninstall(struct cli_args *a)
{
	char *path = cli_service_unit_path(a, a->system), *out = NULL;
	char *label = cli_service_unit_label(a);
	struct stat st;
	int r;

	if (!path || stat(path, &st) != 0) {
		r = cli_service_report(a, "uninstall", 1, "not-installed",
				       path, "Gateway service not installed "
				       "(%s).", path ? path : "no HOME");
		goto out;
	}
	if ((r = cli_service_manager(a, "uninstall", path)))
		goto out;
	/* Not loaded is fine: the file goes either way. */
	cli_service_ctl(a->system, "disable", label, NULL);
	cli_service_ctl(a->system, "stop", label, NULL);
	if (unlink(path) != 0) {
		r = cli_service_report(a, "uninstall", 0, "error", path,
				       "Gateway uninstall failed: cannot "
				       "remove %s: %s", path, strerror(errno));
		goto out;
	}
	service_systemctl(a->system, (const char *[]){"daemon-reload", NULL},
			  &out);
	r = cli_service_report(a, "uninstall", 1, "uninstalled", path,
			       "Stopped, disabled and removed %s.", path);
out:
	free(path);
	free(label);
	free(out);
	return r;
}

/* --- start / stop / restart --------------------------------------------- */

/* The unit is installed: 1; else report and 0 (*r the exit code). */
static int cli_service_installed(struct cli_args *a, const char *action,
				 const char *path, int *r)
{
	struct stat st;

	if (path && stat(path, &st) == 0)
		return 1;
	*r = cli_service_report(a, action, 0, "not-installed", path,
				"Gateway service not installed (%s).\n"
				"Install it with: clawgate gateway install%s",
				path ? path : "no HOME",
				a->system ? " --system" : "");
	return 0;
}

int cli_service_start(struct cli_args *a)
{
	char *path = cli_service_unit_path(a, a->system), *out = NULL;
	char *label = cli_service_unit_label(a);
	int r = 1;

	if (!cli_service_installed(a, "start", path, &r) ||
	    (r = cli_service_manager(a, "start", path)))
		goto out;
	if (cli_service_ctl(a->system, "start", label, &out) != 0)
		r = cli_service_report(a, "start", 0, "error", path,
				       "Gateway start failed: %s", out);
	else
		r = cli_service_report(a, "start", 1, "started", path,
				       "Started %s.", label);
out:
	free(path);
	free(label);
	free(out);
	return r;
}

int cli_service_stop(struct cli_args *a)
{
	char *path = cli_service_unit_path(a, a->system), *out = NULL;
	char *label = cli_service_unit_label(a);
	struct cli_local l;
	json_t *lock = NULL;
	int r = 1;

	cli_target_local_load(a->profile, a->dev, &l);
	if (!cli_service_installed(a, "stop", path, &r)) {
		if (cli_lock_read(l.state_dir, &lock) == 1)
			fprintf(stderr, "A foreground gateway runs (pid %lld): "
				"stop it with Ctrl-C or kill -TERM %lld.\n",
				(long long)json_integer_value(
					json_object_get(lock, "pid")),
				(long long)json_integer_value(
					json_object_get(lock, "pid")));
		goto out;
	}
	if ((r = cli_service_manager(a, "stop", path)))
		goto out;
	if (cli_service_ctl(a->system, "stop", label, &out) != 0 ||
	    (a->disable &&
	     (free(out), out = NULL,
	      cli_service_ctl(a->system, "disable", label, &out) != 0))) {
		r = cli_service_report(a, "stop", 0, "error", path,
				       "Gateway stop failed: %s", out);
		goto out;
	}
	r = cli_service_report(a, "stop", 1, "stopped", path,
			       "Stopped %s%s.", label,
			       a->disable ? " and disabled it" : "");
out:
	json_decref(lock);
	free(path);
	free(label);
	free(out);
	cli_target_local_free(&l);
	return r;
}

/* The gateway's minimum time between restarts (the same
 * CLAWGATE_RESTART_COOLDOWN_MS override it honours). */
static int64_t cli_service_cooldown_ms(void)
{
	const char *v = getenv("CLAWGATE_RESTART_COOLDOWN_MS");
	long long n = v ? atoll(v) : 0;

	return n > 0 ? n : CLI_SERVICE_COOLDOWN_MS;
}

/* SIGUSR1 to the lock's pid; wait for a newer startedAtMs. */
static int cli_service_restart_signal(struct cli_args *a,
				      const struct cli_local *l)
{
	json_t *lock = NULL, *now = NULL;
	int64_t started, deadline, age, wait_ms = CLI_SERVICE_RESTART_WAIT_MS;
	int64_t cooldown;
	long pid;
	int held, r = 1;

	if (a->timeout && atoi(a->timeout) > 0)
		wait_ms = atoi(a->timeout);
	held = cli_lock_read(l->state_dir, &lock);
	pid = (long)json_integer_value(json_object_get(lock, "pid"));
	if (held != 1 || pid <= 0) {
		r = cli_service_report(a, "restart", 0, "not-running", NULL,
				       "Gateway is not running (no lock held "
				       "in %s).", l->state_dir);
		goto out;
	}
	started = json_integer_value(json_object_get(lock, "startedAtMs"));
	if (kill((pid_t)pid, SIGUSR1) != 0) {
		r = cli_service_report(a, "restart", 0, "error", NULL,
				       "cannot signal pid %ld: %s", pid,
				       strerror(errno));
		goto out;
	}
	age = util_now_ms() - started;
	cooldown = cli_service_cooldown_ms();
	if (age >= 0 && age < cooldown && !a->json)
		fprintf(stderr, "Restart requested; the gateway started %llds "
			"ago, so it may be deferred by the %llds restart limit "
			"(up to %llds).\n", (long long)(age / 1000),
			(long long)(cooldown / 1000),
			(long long)((cooldown - age + 999) / 1000));
	deadline = util_mono_ms() + wait_ms;
	while (util_mono_ms() < deadline) {
		struct timespec ts = {0, 50 * 1000000};

		json_decref(now);
		now = NULL;
		if (cli_lock_read(l->state_dir, &now) == 1 &&
		    json_integer_value(json_object_get(now, "startedAtMs")) >
			    started) {
			r = cli_service_report(
				a, "restart", 1, "restarted", NULL,
				"Gateway restarted (pid %lld).",
				(long long)json_integer_value(
					json_object_get(now, "pid")));
			goto out;
		}
		nanosleep(&ts, NULL);
	}
	r = cli_service_report(a, "restart", 0, "timeout", NULL,
			       "Gateway did not come back within %llds (pid "
			       "%ld); a restart less than 30s after the "
			       "previous one is deferred.",
			       (long long)(wait_ms / 1000), pid);
out:
	json_decref(lock);
	json_decref(now);
	return r;
}

int cli_service_restart(struct cli_args *a)
{
	char *path = cli_service_unit_path(a, a->system), *out = NULL;
	char *label = cli_service_unit_label(a), *why = NULL;
	struct cli_local l;
	struct stat st;
	int r;

	cli_target_local_load(a->profile, a->dev, &l);
	/* Under systemd when the unit is installed and the manager answers;
	 * else the running gateway's own restart (lock + SIGUSR1). */
	if (path && stat(path, &st) == 0 &&
	    service_systemd_available(a->system, &why)) {
		if (cli_service_ctl(a->system, "restart", label, &out) != 0)
			r = cli_service_report(a, "restart", 0, "error", path,
					       "Gateway restart failed: %s",
					       out);
		else
			r = cli_service_report(a, "restart", 1, "restarted",
					       path, "Restarted %s.", label);
	} else {
		r = cli_service_restart_signal(a, &l);
	}
	free(why);
	free(path);
	free(label);
	free(out);
	cli_target_local_free(&l);
	return r;
}

/* --- auth-token and dashboard ------------------------------------------- */

/* The token a local client uses: configured, else the kept one. */
static char *cli_service_local_token(const struct cli_local *l)
{
	return l->cfg_token ? xstrdup(l->cfg_token) : NULL;
}

int cli_service_auth_token(struct cli_args *a)
{
	struct cli_local l;
	char *tok = NULL, *path = NULL, *stored = NULL;
	json_t *j, *lock = NULL;
	int r = 1, held, k;

	cli_target_local_load(a->profile, a->dev, &l);
	path = service_token_path(l.state_dir);
	k = service_token_read(l.state_dir, &stored);
	if (a->rotate) {
		if (l.cfg_token && (!stored || strcmp(stored, l.cfg_token))) {
			fprintf(stderr, "The token is configured "
				"(gateway.auth.token or "
				"OPENCLAW_GATEWAY_TOKEN), not generated: "
				"change it there.\n");
			goto out;
		}
		tok = service_token_generate();
		if (service_mkdirs(l.state_dir, 0700) != 0 ||
		    (k = service_token_write(l.state_dir, tok)) < 0) {
			fprintf(stderr, "cannot write %s: %s\n", path,
				strerror(k < 0 ? -k : errno));
			goto out;
		}
		held = cli_lock_read(l.state_dir, &lock);
		if (!a->json)
			printf("New gateway token written to %s.\n", path);
		if (held == 1) {
			struct cli_args ra = *a;

			ra.json = 0;
			ra.timeout = NULL;
			if (!a->json)
				printf("Restarting the running gateway so it "
				       "takes the new token...\n");
			fflush(stdout);
			r = cli_service_restart(&ra);
			if (r)
				goto out;
		} else if (!a->json) {
			printf("The gateway is not running; it uses the new "
			       "token on its next start.\n");
		}
	} else {
		if (k < 0) {
			fprintf(stderr, "cannot read %s: %s\n", path,
				strerror(-k));
			goto out;
		}
		tok = cli_service_local_token(&l);
		if (!tok) {
			fprintf(stderr, "No gateway token yet: %s does not "
				"exist. Start the gateway once (clawgate "
				"gateway run) or run `clawgate gateway "
				"auth-token --rotate`.\n", path);
			goto out;
		}
	}
	if (a->json) {
		j = json_pack("{s:s,s:s,s:b}", "token", tok, "path", path,
			      "rotated", a->rotate);
		cli_json_print(stdout, j);
		json_decref(j);
	} else {
		printf("%s\n", tok);
	}
	r = 0;
out:
	json_decref(lock);
	xfree_secret(tok);
	xfree_secret(stored);
	free(path);
	cli_target_local_free(&l);
	return r;
}

/* A display to open a browser on. */
static int cli_service_has_display(void)
{
	const char *d = getenv("DISPLAY"), *w = getenv("WAYLAND_DISPLAY");

	return (d && *d) || (w && *w);
}

int cli_service_dashboard(struct cli_args *a)
{
	struct cli_local l;
	char *tok = NULL, *url = NULL, *base = NULL, *frag = NULL;
	json_t *j, *lock = NULL;
	int held, opened = 0;
	const unsigned char *p;
	size_t n;

	cli_target_local_load(a->profile, a->dev, &l);
	held = cli_lock_read(l.state_dir, &lock);
	if (held == 1 && json_integer_value(json_object_get(lock, "port")) > 0)
		l.port = (int)json_integer_value(json_object_get(lock, "port"));
	base = xasprintf("http://127.0.0.1:%d/", l.port);
	tok = cli_service_local_token(&l);
	if (tok) {
		frag = xmalloc(strlen(tok) * 3 + 1);
		n = 0;
		for (p = (const unsigned char *)tok; *p; p++) {
			if ((*p >= 'A' && *p <= 'Z') ||
			    (*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
				frag[n++] = (char)*p;
			else
				n += (size_t)sprintf(frag + n, "%%%02X", *p);
		}
		frag[n] = '\0';
		url = xasprintf("%s#token=%s", base, frag);
	} else {
		url = xstrdup(base);
	}
	if (!a->json && !a->no_open && cli_service_has_display() &&
	    isatty(STDOUT_FILENO)) {
		char *cmd = xasprintf("xdg-open '%s' >/dev/null 2>&1 &", url);

		opened = system(cmd) == 0;
		free(cmd);
	}
	if (a->json) {
		char *ws = xasprintf("ws://127.0.0.1:%d", l.port);

		j = json_pack("{s:b,s:s,s:s,s:s,s:i,s:b,s:b}", "ok", 1, "url",
			      url, "httpUrl", base, "wsUrl", ws, "port",
			      l.port, "tokenIncluded", tok != NULL,
			      "running", held == 1);
		cli_json_print(stdout, j);
		json_decref(j);
		free(ws);
	} else {
		printf("Dashboard URL: %s\n", url);
		if (held != 1)
			printf("The gateway is not running: start it with "
			       "`clawgate gateway run` or `clawgate gateway "
			       "start`.\n");
		else if (opened)
			printf("Opened in your browser.\n");
		else
			printf("Open it in a browser on this machine (the "
			       "token is in the #fragment, never sent to "
			       "the network).\n");
	}
	json_decref(lock);
	xfree_secret(tok);
	xfree_secret(url);
	xfree_secret(frag);
	free(base);
	cli_target_local_free(&l);
	return 0;
}
