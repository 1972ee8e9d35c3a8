/* Running the gateway as a service: the persisted gateway token, systemd
 * notifications, unit writers (systemd, launchd, schtasks), the one
 * systemctl runner, discovery of gateway-like services and unit drift. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

/* --- files (service-file.c) ------------------------------------------- */

/* mkdir -p. 0 or -1 with errno. */
int service_mkdirs(const char *dir, mode_t mode);
/* Write text to path atomically (temp file + rename) with mode. 0 or
 * -errno (errno set too). */
int service_write_file(const char *path, const char *text, mode_t mode);

/* --- the gateway token kept in the state dir (service-token.c) --------- */

/* <state_dir>/gateway.token. New string. */
char *service_token_path(const char *state_dir);
/* The stored token: 1 and *tok (new secret string) when present, 0 when
 * there is none, -errno when it cannot be read (or is empty). */
int service_token_read(const char *state_dir, char **tok);
/* Store tok atomically with mode 0600 (the state dir must exist).
 * 0 or -errno. */
int service_token_write(const char *state_dir, const char *tok);
/* A new random token (32 bytes, base64url). New secret string. */
char *service_token_generate(void);

/* --- systemd notifications over $NOTIFY_SOCKET (service-notify.c) ----- */

/* Send one datagram ("READY=1\nMAINPID=123"); no-op without
 * $NOTIFY_SOCKET. 0 sent, -1 not sent. */
int service_notify(const char *msg);
/* READY=1 with STATUS and MAINPID (kept across the re-exec restart). */
void service_notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC (systemd 253+ wants it). */
void service_notify_reloading(void);
void service_notify_stopping(void);

/* --- unit writers (service-unit.c) -------------------------------------- */

enum service_target {
	SERVICE_SYSTEMD,
	SERVICE_LAUNCHD,
	SERVICE_SCHTASKS,
};

/* What a unit runs: everything absolute, no secret. */
struct service_spec {
	const char *binary;	/* absolute path of clawgate */
	int port;
	const char *profile;	/* NULL: the default profile */
	const char *state_dir;	/* OPENCLAW_STATE_DIR */
	const char *config_path; /* OPENCLAW_CONFIG_PATH */
	const char *home;	/* HOME */
	const char *path_env;	/* PATH for the service, or NULL */
	int system;		/* system unit (systemd) */
	const char *user;	/* User= of a system unit, or NULL */
};

/* "systemd" -> SERVICE_SYSTEMD... -1 when unknown. */
int service_target_parse(const char *name);
const char *service_target_name(enum service_target t);
/* openclaw-gateway[-<profile>].service, ai.openclaw.gateway[.<profile>]
 * (plist label), "OpenClaw Gateway[ (<profile>)]". New string. */
char *service_unit_name(enum service_target t, const char *profile);
/* The unit text. New string, or NULL with *err (new string) when a value
 * cannot be written safely (line breaks, relative paths). */
char *service_unit_render(enum service_target t,
			  const struct service_spec *s, char **err);
/* The directory systemd units go to: $XDG_CONFIG_HOME/systemd/user (or
 * ~/.config/systemd/user), or /etc/systemd/system with system
 * ($CLAWGATE_SYSTEM_UNIT_DIR overrides it, for tests). New string or
 * NULL when HOME is unknown. */
char *service_unit_dir(int system);

/* --- systemctl (service-systemctl.c) ------------------------------------ */

/* Run `systemctl [--user] args...` (PATH lookup), at most timeout_ms;
 * *out (if not NULL) gets stdout+stderr (new string, bounded). Returns
 * the exit status, 127 when systemctl cannot be run, 124 on timeout. */
int service_systemctl(int system, const char *const *args, char **out);
/* Can we talk to the (user) service manager? 1 yes, 0 no with *why (new
 * string: the cause and the fix). */
int service_systemd_available(int system, char **why);
/* Is lingering enabled for the current user (/var/lib/systemd/linger)?
 * 1 yes, 0 no, -1 unknown. */
int service_linger_enabled(void);

/* --- discovery and drift (service-scan.c) ------------------------------- */

/* Scan the systemd user and system unit dirs ($CLAWGATE_SYSTEM_UNIT_DIR
 * replaces the system ones) for gateway-like services other than the
 * managed user unit (NULL: report all). Array of openclaw's extraServices
 * entries {platform, label, detail, scope, marker, legacy}. New ref. */
json_t *service_scan_extra(const char *managed);
/* Compare an installed unit with the one we would write: an array of
 * {field, installed, expected} (empty: no drift). New reference. */
json_t *service_drift(const char *installed, const char *expected);
/* ExecStart= of a systemd unit text ("" when absent). New string. */
char *service_unit_exec_start(const char *text);

/* --- ports (service-port.c) --------------------------------------------- */

/* The LISTEN sockets on a TCP port: [{address, pid?, commandLine?}].
 * New reference. */
json_t *service_port_listeners(int port);

/* --- doctor (service-doctor.c) ------------------------------------------ */

enum service_doctor_severity {
	SERVICE_DOCTOR_INFO,
	SERVICE_DOCTOR_WARN,
	SERVICE_DOCTOR_ERROR,
};

/* What the checks look at, the fixes they may make, what they found. */
struct service_doctor {
	const char *state_dir;
	const char *config_path;
	int port;
	json_t *raw;		/* the config file as written (JSON5), owned */
	const char *config_error; /* why the config is invalid, or NULL */
	const char *gateway_token; /* effective token (configured or kept) */
	const char *configured_token; /* gateway.auth.token / env, or NULL */
	const char *unit_path;	/* the systemd unit of this profile */
	const char *unit_expected; /* what `gateway install` would write */
	const char *managed_label; /* openclaw-gateway[-profile].service */
	int system;
	int lock_held;
	long lock_pid;
	int fix, yes, lint;
	/* Fixes that need the CLI: a config merge patch through the running
	 * gateway (a config snapshot), re-installing the unit. NULL: not
	 * possible now. 0 or -1 with *err (new string). */
	int (*config_patch)(void *arg, const char *patch, char **err);
	int (*reinstall)(void *arg, char **err);
	/* Ask the operator (a terminal, no --non-interactive): 1 yes, 0 no.
	 * NULL: never ask (only --yes removes stale units). */
	int (*confirm)(void *arg, const char *question);
	void *arg;
	json_t *findings;	/* [{id, severity, message, fixable, fixed,
				 * fix?, hint?}], owned */
};

/* Parse the config file as written into d->raw (absent or invalid: NULL).
 * Returns 0. */
int service_doctor_load_raw(struct service_doctor *d);
/* Run every check of the table (only the config ones with lint). */
int service_doctor_run(struct service_doctor *d);
/* The check ids, in report order. */
const char *const *service_doctor_ids(size_t *n);
