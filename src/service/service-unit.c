/* Unit writers: a systemd unit, a launchd plist and a Windows scheduled
 * task, all from one service_spec. Names, policy and marker environment
 * follow openclaw's own installer, so `openclaw gateway status` and
 * clawgate manage the same service; no secret is ever written (the token
 * stays in the state dir). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

static const struct {
	const char *name;
	enum service_target t;
} service_targets[] = {
	{"systemd", SERVICE_SYSTEMD},
	{"launchd", SERVICE_LAUNCHD},
	{"schtasks", SERVICE_SCHTASKS},
};

int service_target_parse(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(service_targets); i++)
		if (strcmp(service_targets[i].name, name) == 0)
			return (int)service_targets[i].t;
	return -1;
}

const char *service_target_name(enum service_target t)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(service_targets); i++)
		if (service_targets[i].t == t)
			return service_targets[i].name;
	return "?";
}

static const char *service_profile(const char *profile)
{
	if (!profile || !*profile || strcasecmp(profile, "default") == 0)
		return NULL;
	return profile;
}

char *service_unit_name(enum service_target t, const char *profile)
{
	profile = service_profile(profile);
	switch (t) {
	case SERVICE_SYSTEMD:
		return profile ? xasprintf("openclaw-gateway-%s.service",
					   profile)
			       : xstrdup("openclaw-gateway.service");
	case SERVICE_LAUNCHD:
		return profile ? xasprintf("ai.openclaw.%s", profile)
			       : xstrdup("ai.openclaw.gateway");
	case SERVICE_SCHTASKS:
		return profile ? xasprintf("OpenClaw Gateway (%s)", profile)
			       : xstrdup("OpenClaw Gateway");
	}
	return xstrdup("?");
}

char *service_unit_dir(int system)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	const char *sys = getenv("CLAWGATE_SYSTEM_UNIT_DIR");

	if (system)
		return xstrdup(sys && *sys ? sys : "/etc/systemd/system");
	if (x && x[0] == '/')
		return xasprintf("%s/systemd/user", x);
	if (home && home[0] == '/')
		return xasprintf("%s/.config/systemd/user", home);
	return NULL;
}

/* The environment of the service: where its state is, the upstream
 * markers (isGatewayServiceEnv) and one naming clawgate. */
struct service_env {
	const char *key;
	char *value;		/* owned */
};

static int service_env_build(enum service_target t,
			     const struct service_spec *s,
			     struct service_env *env, int cap)
{
	const char *profile = service_profile(s->profile);
	int n = 0;

#define ENV(k, v)                                                             \
	do {                                                                  \
		char *v_ = (v);                                               \
		if (n < cap && v_) {                                          \
			env[n].key = (k);                                     \
			env[n].value = v_;                                    \
			n++;                                                  \
		} else {                                                      \
			free(v_);                                             \
		}                                                             \
	} while (0)
	ENV("HOME", s->home ? xstrdup(s->home) : NULL);
	ENV("PATH", s->path_env ? xstrdup(s->path_env) : NULL);
	ENV("OPENCLAW_STATE_DIR", xstrdup(s->state_dir));
	ENV("OPENCLAW_CONFIG_PATH", xstrdup(s->config_path));
	ENV("OPENCLAW_PROFILE", profile ? xstrdup(profile) : NULL);
	ENV("OPENCLAW_GATEWAY_PORT", xasprintf("%d", s->port));
	if (t == SERVICE_SYSTEMD)
		ENV("OPENCLAW_SYSTEMD_UNIT",
		    service_unit_name(SERVICE_SYSTEMD, profile));
	if (t == SERVICE_LAUNCHD)
		ENV("OPENCLAW_LAUNCHD_LABEL",
		    service_unit_name(SERVICE_LAUNCHD, profile));
	ENV("OPENCLAW_SERVICE_MARKER", xstrdup("openclaw"));
	ENV("OPENCLAW_SERVICE_KIND", xstrdup("gateway"));
	ENV("CLAWGATE_SERVICE", xasprintf("clawgate %s", PACKAGE_VERSION));
#undef ENV
	return n;
}

static void service_env_free(struct service_env *env, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(env[i].value);
}

/* One systemd word: quoted when it has blanks, quotes or backslashes;
 * % doubled. New string. */
static char *service_systemd_word(const char *v)
{
	struct util_buf b = {0};
	int quote = strpbrk(v, " \t\"\\'") != NULL;
	const char *p;

	util_buf_printf(&b, "%s", quote ? "\"" : "");
	for (p = v; *p; p++) {
		if (*p == '%')
			util_buf_printf(&b, "%%%%");
		else if (*p == '"' || *p == '\\')
			util_buf_printf(&b, "\\%c", *p);
		else
			util_buf_printf(&b, "%c", *p);
	}
	util_buf_printf(&b, "%s", quote ? "\"" : "");
	return b.p;
}

static void service_xml(struct util_buf *b, const char *v)
{
	for (; *v; v++) {
		switch (*v) {
		case '&':
			util_buf_printf(b, "&amp;");
			break;
		case '<':
			util_buf_printf(b, "&lt;");
			break;
		case '>':
			util_buf_printf(b, "&gt;");
			break;
		case '"':
			util_buf_printf(b, "&quot;");
			break;
		default:
			util_buf_printf(b, "%c", *v);
		}
	}
}

static void service_render_systemd(struct util_buf *b,
				   const struct service_spec *s,
				   struct service_env *env, int nenv)
{
	const char *profile = service_profile(s->profile);
	char *w, *bin = service_systemd_word(s->binary);
	int i;

	util_buf_printf(b, "# Written by `clawgate gateway install`; "
			"re-run it after changing the port or the binary.\n"
			"[Unit]\n");
	if (profile)
		util_buf_printf(b, "Description=OpenClaw Gateway (profile: "
				"%s, clawgate)\n", profile);
	else
		util_buf_printf(b, "Description=OpenClaw Gateway (clawgate)\n");
	util_buf_printf(b, "After=network-online.target\n"
			"Wants=network-online.target\n"
			"StartLimitBurst=10\n"
			"StartLimitIntervalSec=300\n\n"
			"[Service]\n"
			"Type=notify\n"
			"NotifyAccess=main\n"
			"ExecStart=%s gateway run --port %d\n"
			"ExecReload=/bin/kill -USR1 $MAINPID\n"
			"Restart=always\n"
			"RestartSec=5\n"
			"RestartPreventExitStatus=78\n"
			"TimeoutStopSec=330\n"
			"TimeoutStartSec=30\n"
			"SuccessExitStatus=0 143\n"
			"OOMPolicy=continue\n"
			"KillMode=mixed\n"
			"UMask=0077\n", bin, s->port);
	if (s->system && s->user) {
		w = service_systemd_word(s->user);
		util_buf_printf(b, "User=%s\n", w);
		free(w);
	}
	for (i = 0; i < nenv; i++) {
		char *kv = xasprintf("%s=%s", env[i].key, env[i].value);

		w = service_systemd_word(kv);
		util_buf_printf(b, "Environment=%s\n", w);
		free(w);
		free(kv);
	}
	util_buf_printf(b, "\n[Install]\nWantedBy=%s\n",
			s->system ? "multi-user.target" : "default.target");
	free(bin);
}

static void service_render_launchd(struct util_buf *b,
				   const struct service_spec *s,
				   struct service_env *env, int nenv)
{
	char *label = service_unit_name(SERVICE_LAUNCHD, s->profile);
	char port[16];
	const char *args[] = {s->binary, "gateway", "run", "--port", port};
	size_t i;
	int k;

	snprintf(port, sizeof(port), "%d", s->port);
	util_buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
			"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
			"<plist version=\"1.0\">\n<dict>\n"
			"  <key>Label</key>\n  <string>");
	service_xml(b, label);
	util_buf_printf(b, "</string>\n  <key>ProgramArguments</key>\n"
			"  <array>\n");
	for (i = 0; i < ARRAY_SIZE(args); i++) {
		util_buf_printf(b, "    <string>");
		service_xml(b, args[i]);
		util_buf_printf(b, "</string>\n");
	}
	util_buf_printf(b, "  </array>\n  <key>RunAtLoad</key>\n  <true/>\n"
			"  <key>KeepAlive</key>\n  <dict>\n"
			"    <key>SuccessfulExit</key>\n    <false/>\n"
			"  </dict>\n  <key>ThrottleInterval</key>\n"
			"  <integer>5</integer>\n"
			"  <key>EnvironmentVariables</key>\n  <dict>\n");
	for (k = 0; k < nenv; k++) {
		util_buf_printf(b, "    <key>%s</key>\n    <string>",
				env[k].key);
		service_xml(b, env[k].value);
		util_buf_printf(b, "</string>\n");
	}
	util_buf_printf(b, "  </dict>\n  <key>StandardOutPath</key>\n"
			"  <string>");
	service_xml(b, s->state_dir);
	util_buf_printf(b, "/logs/gateway.log</string>\n"
			"  <key>StandardErrorPath</key>\n  <string>");
	service_xml(b, s->state_dir);
	util_buf_printf(b, "/logs/gateway.err.log</string>\n</dict>\n"
			"</plist>\n");
	free(label);
}

static void service_render_schtasks(struct util_buf *b,
				    const struct service_spec *s,
				    struct service_env *env, int nenv)
{
	char *name = service_unit_name(SERVICE_SCHTASKS, s->profile);
	int k;

	util_buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n"
			"<Task version=\"1.2\" xmlns=\"http://schemas."
			"microsoft.com/windows/2004/02/mit/task\">\n"
			"  <RegistrationInfo>\n    <URI>\\");
	service_xml(b, name);
	util_buf_printf(b, "</URI>\n    <Description>");
	service_xml(b, name);
	util_buf_printf(b, " (clawgate). Environment:");
	for (k = 0; k < nenv; k++) {
		util_buf_printf(b, " %s=", env[k].key);
		service_xml(b, env[k].value);
		util_buf_printf(b, ";");
	}
	util_buf_printf(b, "</Description>\n  </RegistrationInfo>\n"
			"  <Triggers>\n    <LogonTrigger>\n"
			"      <Enabled>true</Enabled>\n"
			"    </LogonTrigger>\n  </Triggers>\n"
			"  <Settings>\n"
			"    <MultipleInstancesPolicy>IgnoreNew"
			"</MultipleInstancesPolicy>\n"
			"    <DisallowStartIfOnBatteries>false"
			"</DisallowStartIfOnBatteries>\n"
			"    <StopIfGoingOnBatteries>false"
			"</StopIfGoingOnBatteries>\n"
			"    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>\n"
			"    <RestartOnFailure>\n"
			"      <Interval>PT1M</Interval>\n"
			"      <Count>999</Count>\n"
			"    </RestartOnFailure>\n"
			"    <Hidden>true</Hidden>\n"
			"  </Settings>\n"
			"  <Actions Context=\"Author\">\n    <Exec>\n"
			"      <Command>");
	service_xml(b, s->binary);
	util_buf_printf(b, "</Command>\n      <Arguments>gateway run --port "
			"%d</Arguments>\n    </Exec>\n  </Actions>\n"
			"</Task>\n", s->port);
	free(name);
}

static const struct {
	enum service_target t;
	void (*render)(struct util_buf *, const struct service_spec *,
		       struct service_env *, int);
} service_writers[] = {
	{SERVICE_SYSTEMD, service_render_systemd},
	{SERVICE_LAUNCHD, service_render_launchd},
	{SERVICE_SCHTASKS, service_render_schtasks},
};

static int service_bad_value(const char *v)
{
	return v && strpbrk(v, "\r\n") != NULL;
}

char *service_unit_render(enum service_target t,
			  const struct service_spec *s, char **err)
{
	struct service_env env[16];
	struct util_buf b = {0};
	int nenv, i;
	size_t k;

	*err = NULL;
	if (!s->binary || s->binary[0] != '/') {
		*err = xasprintf("the binary path must be absolute (got %s)",
				 s->binary ? s->binary : "nothing");
		return NULL;
	}
	if (!s->state_dir || s->state_dir[0] != '/' || !s->config_path ||
	    s->config_path[0] != '/') {
		*err = xstrdup("the state dir and config path must be "
			       "absolute");
		return NULL;
	}
	if (s->port < 1 || s->port > 65535) {
		*err = xasprintf("invalid port %d", s->port);
		return NULL;
	}
	nenv = service_env_build(t, s, env, (int)ARRAY_SIZE(env));
	for (i = 0; i < nenv; i++) {
		if (service_bad_value(env[i].value)) {
			*err = xasprintf("%s cannot contain line breaks",
					 env[i].key);
			goto out;
		}
	}
	if (service_bad_value(s->binary) || service_bad_value(s->user)) {
		*err = xstrdup("values cannot contain line breaks");
		goto out;
	}
	for (k = 0; k < ARRAY_SIZE(service_writers); k++)
		if (service_writers[k].t == t)
			service_writers[k].render(&b, s, env, nenv);
out:
	service_env_free(env, nenv);
	if (*err) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
