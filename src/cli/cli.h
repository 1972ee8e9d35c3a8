/* Operator commands: `clawgate <command> ...`, a table of commands with a
 * table-driven option parser; the gateway client commands mirror the
 * `openclaw gateway ...` CLI. */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/cli-cron.h"

int cli_main(int argc, char **argv);

/* --- options --------------------------------------------------------- */

enum cli_opt_type { CLI_OPT_FLAG, CLI_OPT_STR };

/* One long option: --name (flag) or --name VALUE / --name=VALUE. off is
 * the offsetof() of its int (flag) or const char * (string) field in
 * struct cli_args. */
struct cli_opt {
	const char *name;
	enum cli_opt_type type;
	size_t off;
	const char *arg;	/* value placeholder for help ("PORT") */
	const char *help;
};

/* Everything any command can be given (NULL/0 = absent). */
struct cli_args {
	/* global */
	const char *profile;
	int dev;
	int no_color;
	int help;
	int version;
	/* gateway run */
	const char *port;
	const char *bind;
	const char *auth;
	const char *token;
	const char *password;
	const char *password_file;
	int allow_unconfigured;
	int verbose;
	int force;
	/* gateway client commands */
	const char *url;
	const char *timeout;
	const char *params;
	int json;
	int expect_final;
	int require_rpc;
	int deep;
	/* devices (cli-devices.c) */
	const char *device;
	const char *role;
	const char *scope;	/* --scope: comma-separated (or repeated
				 * words after it, in pos) */
	int latest;
	/* secrets (cli-secrets.c) */
	const char *kind;
	const char *value;
	const char *value_file;
	const char *allow_host;
	int clear_allowed_hosts;
	const char *from;
	const char *from_openclaw;
	int dry_run;
	int yes;
	int plain;
	int check;
	int allow_exec;
	const char *plan_out;
	int apply;
	int providers_only;
	int skip_provider_setup;
	const char *agent;
	/* automations (cli-cron.c) */
	struct cli_cron_args cron;
	/* service, status, doctor, logs, dashboard (cli-service.c,
	 * cli-status.c, cli-doctor.c, cli-logs.c) */
	int system;
	int print;
	const char *target;
	const char *user;
	int disable;
	int rotate;
	int no_open;
	int no_probe;
	int all;
	int fix;
	int lint;
	int non_interactive;
	int follow;
	const char *limit;
	int pending;		/* devices clear --pending */
	const char *name;	/* devices rename --name */
	const char *file;	/* config patch --file */
	int from_stdin;		/* config patch --stdin */
	/* pairing, channels (cli-pairing.c, cli-channels.c) */
	const char *channel;
	const char *account;
	int notify;
	int probe;
	/* positional arguments (pointers into argv) */
	char **pos;
	int npos;
};

extern const struct cli_opt cli_global_opts[];

/* The options of every command that talks to a gateway: --url, --token,
 * --password, --timeout (help text timeout_help) and --json. */
#define CLI_CLIENT_OPTS(timeout_help)                                         \
	{"url", CLI_OPT_STR, offsetof(struct cli_args, url), "URL",           \
	 "gateway WebSocket URL (default: local, ws://127.0.0.1:PORT)"},      \
	{"token", CLI_OPT_STR, offsetof(struct cli_args, token), "TOKEN",     \
	 "gateway token"},                                                    \
	{"password", CLI_OPT_STR, offsetof(struct cli_args, password),        \
	 "PASSWORD", "gateway password"},                                     \
	{"timeout", CLI_OPT_STR, offsetof(struct cli_args, timeout), "MS",    \
	 timeout_help},                                                       \
	{"json", CLI_OPT_FLAG, offsetof(struct cli_args, json), NULL,         \
	 "print JSON"}

/* Parse argv[0..argc) against the NULL-terminated list of option tables
 * (first match wins). Non-option words go to a->pos; "--" ends options.
 * Returns 0, or -1 with a message in err. */
int cli_opt_parse(const struct cli_opt *const *tables, int argc,
		  char **argv, struct cli_args *a, char *err, size_t errlen);
void cli_args_free(struct cli_args *a);

/* The first max bytes (at most) of a file, NUL-terminated, their number in
 * *len. New string, or NULL with errno set when it cannot be opened. */
char *cli_read_prefix(const char *path, size_t max, size_t *len);

/* --- commands ---------------------------------------------------------- */

struct cli_cmd {
	const char *path;	/* "gateway call" */
	int (*handler)(struct cli_args *a);
	const struct cli_opt *opts;	/* ends with a NULL name */
	const char *usage;	/* after the path: "<method> [options]" */
	const char *summary;
	int max_pos;		/* positional arguments accepted */
	int hidden;		/* alias, not listed in help */
};

extern const struct cli_cmd cli_cmds[];
extern const size_t cli_ncmds;

/* The command whose path is the longest prefix of words[0..n); *used gets
 * the number of words it consumed. NULL when none matches. */
const struct cli_cmd *cli_cmd_find(char **words, int n, int *used);

/* Print help for cmd (or the overview when NULL). */
void cli_help(FILE *f, const struct cli_cmd *cmd);

/* --- gateway commands (cli-gateway.c) ---------------------------------- */

struct cli_target;

int cli_gateway_run(struct cli_args *a);
int cli_gateway_call(struct cli_args *a);
int cli_gateway_health(struct cli_args *a);
int cli_gateway_probe(struct cli_args *a);

extern const struct cli_opt cli_gateway_run_opts[];
extern const struct cli_opt cli_gateway_call_opts[];
extern const struct cli_opt cli_gateway_health_opts[];
extern const struct cli_opt cli_gateway_probe_opts[];

/* Who we say we are for one command (reference/peer.md table). */
struct cli_gateway_as {
	const char *client_id;
	const char *mode;
	const char *version;
	const char *display_name;
	const char *scope;
	int min_protocol;
};

struct gwclient;
struct gwclient_err;
/* Connect to t as `as` (signed with the CLI's identity in state_dir unless
 * mode is probe or state_dir NULL). 0 or an error in e. */
int cli_gateway_connect(const struct cli_target *t,
			const struct cli_gateway_as *as,
			const char *state_dir, int timeout_ms,
			struct gwclient **c, json_t **hello,
			struct gwclient_err *e);
/* The one-line text of a failure, as the real CLI words it. New string. */
char *cli_gateway_err_text(const struct cli_target *t,
			   const struct gwclient_err *e);
/* --timeout in ms, or def; -1 (message printed) when invalid. */
int cli_gateway_timeout(const struct cli_args *a, int def);

/* Capability from a hello-ok (auth.scopes) or a connect error object:
 * "admin-capable", "write-capable", "read-only", "pairing-pending",
 * "connect-only"; NULL when neither says anything. */
const char *cli_gateway_capability(const json_t *hello, const json_t *error);
/* The scope `gateway call` requests for a method. */
const char *cli_gateway_method_scope(const char *method);
/* Read the first line of a file (bounded, newline stripped). New string or
 * NULL with errno set. */
char *cli_gateway_read_first_line(const char *path);

/* --- devices (cli-devices.c) ------------------------------------------- */

int cli_devices_list(struct cli_args *a);
int cli_devices_approve(struct cli_args *a);
int cli_devices_reject(struct cli_args *a);
int cli_devices_remove(struct cli_args *a);
int cli_devices_rotate(struct cli_args *a);
int cli_devices_revoke(struct cli_args *a);
/* rename --device <id> --name <label> (device.pair.rename). */
int cli_devices_rename(struct cli_args *a);
extern const struct cli_opt cli_devices_rename_opts[];
/* clear --yes [--pending]: every paired device (and pending request). */
int cli_devices_clear(struct cli_args *a);
extern const struct cli_opt cli_devices_clear_opts[];

extern const struct cli_opt cli_devices_opts[];
extern const struct cli_opt cli_devices_approve_opts[];
extern const struct cli_opt cli_devices_token_opts[];

/* --- automations (cli-cron.c) ------------------------------------------ */

int cli_cron_status(struct cli_args *a);
int cli_cron_list(struct cli_args *a);
int cli_cron_add(struct cli_args *a);
int cli_cron_edit(struct cli_args *a);
int cli_cron_rm(struct cli_args *a);
int cli_cron_run(struct cli_args *a);
int cli_cron_runs(struct cli_args *a);
int cli_cron_enable(struct cli_args *a);
int cli_cron_disable(struct cli_args *a);
int cli_cron_get(struct cli_args *a);

extern const struct cli_opt cli_cron_opts[];
extern const struct cli_opt cli_cron_job_opts[];
extern const struct cli_opt cli_cron_run_opts[];
extern const struct cli_opt cli_cron_runs_opts[];
extern const struct cli_opt cli_cron_list_opts[];

/* --- config commands (cli-config.c) ------------------------------------ */

int cli_config_get(struct cli_args *a);
int cli_config_set(struct cli_args *a);
int cli_config_unset(struct cli_args *a);
int cli_config_validate(struct cli_args *a);
int cli_config_diff(struct cli_args *a);
int cli_config_history(struct cli_args *a);
int cli_config_rollback(struct cli_args *a);
int cli_config_plan(struct cli_args *a);
/* config file: the active path; config schema: the JSON schema. */
int cli_config_file(struct cli_args *a);
int cli_config_schema(struct cli_args *a);
/* config patch --file F | --stdin [--dry-run]. */
int cli_config_patch_cmd(struct cli_args *a);
extern const struct cli_opt cli_config_patch_opts[];

extern const struct cli_opt cli_config_opts[];

/* --- secrets (cli-secrets.c) ------------------------------------------- */

int cli_secrets_reload(struct cli_args *a);
int cli_secrets_store_list(struct cli_args *a);
int cli_secrets_store_set(struct cli_args *a);
int cli_secrets_store_get(struct cli_args *a);
int cli_secrets_store_rm(struct cli_args *a);
int cli_secrets_store_import(struct cli_args *a);
int cli_secrets_audit(struct cli_args *a);
int cli_secrets_apply(struct cli_args *a);
int cli_secrets_configure(struct cli_args *a);

extern const struct cli_opt cli_secrets_reload_opts[];
extern const struct cli_opt cli_secrets_store_opts[];
extern const struct cli_opt cli_secrets_audit_opts[];
extern const struct cli_opt cli_secrets_apply_opts[];
extern const struct cli_opt cli_secrets_configure_opts[];

/* --- the CLI's device identity (cli-identity.c) ------------------------ */

struct identity;
/* Signing context for gwclient_opts.sign: the CLI's identity in
 * <stateDir>/identity/device.json and its cached device tokens in
 * identity/device-auth.json. */
struct cli_identity {
	struct identity *id;
	char *state_dir;
};

/* Load or create the identity (mode 0600). 0 or -1 (message printed). */
int cli_identity_open(const char *state_dir, struct cli_identity *ci);
void cli_identity_close(struct cli_identity *ci);
/* gwclient_opts.sign: add params.device signed over the v3 payload with
 * the challenge nonce (and auth.deviceToken from the cache when no
 * shared credential is given). arg = struct cli_identity. */
int cli_identity_sign(void *arg, json_t *params, const char *nonce,
		      int64_t ts);
/* Keep hello.auth.deviceToken (if any) in device-auth.json. */
void cli_identity_store_token(struct cli_identity *ci, const json_t *hello);

/* --- local context and target (cli-target.c) --------------------------- */

/* Paths, port and credentials from the environment and the config file. */
struct cli_local {
	char *state_dir;
	char *config_path;
	int port;		/* OPENCLAW_GATEWAY_PORT > gateway.port >
				 * 18789 (19001 with --dev) */
	char *cfg_token;	/* gateway.auth.token of the file */
	char *cfg_password;	/* gateway.auth.password of the file */
	char *cfg_error;	/* why the file could not be read, or NULL */
	char *cfg_log_file;	/* logging.file, or NULL */
	int cfg_token_kept;	/* cfg_token is <state_dir>/gateway.token */
	int cfg_exists;		/* the config file exists */
	char *cfg_mode;		/* gateway.mode, or NULL */
	const char *bind;	/* gateway.bind ("loopback") */
};

int cli_target_local_load(const char *profile, int dev, struct cli_local *l);
void cli_target_local_free(struct cli_local *l);

/* Where a client command connects, and with which credentials. */
struct cli_target {
	char *url;
	const char *url_source;	/* "cli --url", "local default",
				 * "env OPENCLAW_GATEWAY_URL" */
	int local_default;	/* url is the local loopback default */
	char *token;
	char *password;
};

/* --url > OPENCLAW_GATEWAY_URL > ws://127.0.0.1:<port>; --token >
 * OPENCLAW_GATEWAY_TOKEN > gateway.auth.token (the file's credentials only
 * for the local default target), password likewise. */
void cli_target_resolve(const struct cli_args *a, const struct cli_local *l,
			struct cli_target *t);
/* The local default target (ws://127.0.0.1:<port>) whatever --url says. */
void cli_target_local(const struct cli_args *a, const struct cli_local *l,
		      struct cli_target *t);
/* The dashboard's URL at t: http(s)://host:port/ of its ws(s) URL. */
char *cli_target_http_url(const struct cli_target *t);
void cli_target_free(struct cli_target *t);

struct gwclient_opts;
/* Zero o and fill it to connect to t as the `cli` client (protocol 4)
 * asking for scopes (NULL-terminated, borrowed) within timeout_ms; a
 * token goes without the password. */
void cli_target_opts(const struct cli_target *t, const char *const *scopes,
		     int timeout_ms, struct gwclient_opts *o);

struct gwclient;
struct gwclient_err;
/* A signed connection for one command group: the local context, the
 * target, the CLI's identity and the open connection. */
struct cli_session {
	struct cli_local l;
	struct cli_target t;
	struct cli_identity ci;
	struct gwclient *c;
	int timeout;		/* ms, from --timeout or the default */
};

/* Parse --timeout (1..max_ms, default def_ms), resolve the target and
 * connect signed with the CLI's identity asking for scopes (the password
 * goes with the token too); a device token received is kept. 0; 2 when
 * --timeout is invalid (printed); 1 with e filled when the connect failed,
 * or e->message NULL when the identity could not be opened (printed).
 * cli_session_close is safe after any result. */
int cli_session_open(const struct cli_args *a, const char *const *scopes,
		     int def_ms, int max_ms, struct cli_session *s,
		     struct gwclient_err *e);
void cli_session_close(struct cli_session *s);

/* --- output (cli-json.c) ---------------------------------------------- */

/* Print v as JSON.stringify(v, null, 2) does, plus a newline. */
void cli_json_print(FILE *f, const json_t *v);
/* ECMAScript Number::toString of a finite double into out. */
void cli_json_number(double v, char *out, size_t cap);

/* --- status, health (cli-status.c) ------------------------------------ */

struct cli_local;
/* `gateway status`: openclaw's text and JSON keys (cli, logFile, service,
 * config, gateway, port, rpc, extraServices). */
int cli_status_gateway(struct cli_args *a);
/* Top-level `status`: the overview. */
int cli_status_overview(struct cli_args *a);
extern const struct cli_opt cli_status_gateway_opts[];
extern const struct cli_opt cli_status_overview_opts[];
/* The log file the gateway of this state dir writes today. New string. */
char *cli_status_log_file(const struct cli_local *l);

/* --- completion and group help (cli-completion.c) --------------------- */

int cli_completion(struct cli_args *a);
/* The subcommands of a group ("devices") with their summaries. */
void cli_completion_group_help(FILE *f, const char *group);
/* 1 when some command path starts with "w ". */
int cli_completion_is_group_word(const char *w);

/* --- logs (cli-logs.c) ------------------------------------------------ */

int cli_logs(struct cli_args *a);
extern const struct cli_opt cli_logs_opts[];
/* Colour on: stdout is a terminal, no --no-color, no NO_COLOR. */
int cli_logs_color(const struct cli_args *a);

/* --- doctor (cli-doctor.c) -------------------------------------------- */

int cli_doctor(struct cli_args *a);
extern const struct cli_opt cli_doctor_opts[];

/* --- service lifecycle, token, dashboard (cli-service.c) -------------- */

int cli_service_install(struct cli_args *a);
int cli_service_uninstall(struct cli_args *a);
int cli_service_start(struct cli_args *a);
int cli_service_stop(struct cli_args *a);
/* systemctl restart when the unit is installed and systemd answers, else
 * SIGUSR1 through the lock (saying when the 30 s limit defers it). */
int cli_service_restart(struct cli_args *a);
int cli_service_auth_token(struct cli_args *a);
int cli_service_dashboard(struct cli_args *a);

extern const struct cli_opt cli_service_install_opts[];
extern const struct cli_opt cli_service_opts[];
extern const struct cli_opt cli_service_stop_opts[];
extern const struct cli_opt cli_service_restart_opts[];
extern const struct cli_opt cli_service_token_opts[];
extern const struct cli_opt cli_service_dashboard_opts[];

/* The profile the service is for: --dev, --profile, OPENCLAW_PROFILE. */
const char *cli_service_profile(const struct cli_args *a);
/* Path of the systemd unit file for this profile. New string or NULL. */
char *cli_service_unit_path(const struct cli_args *a, int system);
/* The absolute path of this binary. New string or NULL. */
char *cli_service_self_path(void);
enum service_target;
/* The unit `gateway install` would write. New string or NULL + *err. */
char *cli_service_render(const struct cli_args *a,
			 const struct cli_local *l, enum service_target t,
			 int system, char **err);

/* --- the daemon's lock file (cli-lock.c) ------------------------------- */

/* Read <state_dir>/gateway.lock. Returns -1 when there is no lock file,
 * 1 when it is held (the daemon is alive), 0 when it is stale. *out gets
 * the parsed content (new reference) or NULL. */
int cli_lock_read(const char *state_dir, json_t **out);

/* --- pairing, channels (cli-pairing.c, cli-channels.c) ------------------- */

int cli_pairing_list(struct cli_args *a);
int cli_pairing_approve(struct cli_args *a);
int cli_pairing_dismiss(struct cli_args *a);
int cli_channels_status(struct cli_args *a);
int cli_channels_start(struct cli_args *a);
int cli_channels_stop(struct cli_args *a);
/* Connect (signed), call method with params, close: 0 with *payload, 1
 * (failure printed) or 2 (usage). */
int cli_pairing_call(struct cli_args *a, const char *what,
		     const char *method, const json_t *params,
		     json_t **payload);
extern const struct cli_opt cli_pairing_opts[];
