/* Configuration: the option table drives parsing, validation, defaults,
 * redaction and (later) config.schema. A loaded config is an immutable,
 * reference-counted snapshot: a request holds one while it runs. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum config_bind { BIND_LOOPBACK = 0, BIND_LAN, BIND_CUSTOM, BIND_AUTO,
		   BIND_TAILNET };
enum config_auth_mode { AUTH_MODE_TOKEN = 0, AUTH_MODE_PASSWORD,
			AUTH_MODE_NONE, AUTH_MODE_TRUSTED_PROXY };

/* Resolved paths (core of paths/profiles). */
struct config_paths {
	char *home;		/* OPENCLAW_HOME > HOME */
	char *state_dir;	/* OPENCLAW_STATE_DIR > ~/.openclaw[-profile|-dev] */
	char *config_path;	/* OPENCLAW_CONFIG_PATH > <state_dir>/openclaw.json */
	char *profile;		/* NULL, "dev" or the --profile name */
};

/* Command-line overrides for `gateway run` (NULL/0 = not given). */
struct config_overrides {
	const char *profile;	/* --profile NAME */
	int dev;		/* --dev */
	int port;		/* --port */
	const char *bind;	/* --bind */
	const char *auth_mode;	/* --auth */
	const char *token;	/* --token */
	const char *password;	/* --password (or read from --password-file) */
	int allow_unconfigured;	/* --allow-unconfigured */
};

/* One problem found while loading: a dotted path and a message. */
struct config_issue {
	char *path;
	char *message;
};

struct config_issues {
	struct config_issue *v;
	int n;
};

struct gw_config {
	int refs;		/* atomic */
	json_t *root;		/* the validated file content (with defaults
				 * NOT filled in), owned */
	char hash[65];		/* hex SHA-256 of the raw file text ("" when no file) */
	int file_exists;

	/* Effective values after precedence (CLI > env > file > default). */
	char *mode;		/* gateway.mode or NULL */
	int port;
	enum config_bind bind;
	char *custom_bind_host;
	enum config_auth_mode auth_mode;
	char *auth_token;	/* secret; NULL when unset */
	char *auth_password;	/* secret; NULL when unset */
	int auth_token_generated; /* token was generated at start (not configured) */
	int rate_max_attempts;	/* gateway.auth.rateLimit.maxAttempts (10) */
	int64_t rate_window_ms;	/* windowMs (60000) */
	int64_t rate_lockout_ms; /* lockoutMs (300000) */
	int rate_exempt_loopback; /* exemptLoopback (true) */
	char **allowed_origins;	/* gateway.controlUi.allowedOrigins, NULL-terminated */
	char *log_file;		/* logging.file or NULL */
	char *log_level;	/* logging.level or NULL */
	char *reload_mode;	/* gateway.reload.mode ("hybrid") */
};

/* Resolve paths from the environment and the profile flags. */
int config_paths_resolve(struct config_paths *p, const char *profile, int dev);
void config_paths_free(struct config_paths *p);

/* Load, validate and resolve the config at path (a missing file gives the
 * defaults, file_exists = 0). On validation failure returns GW_ECONFIG and
 * fills issues (the caller prints them and exits 78). */
int config_load(const char *path, const struct config_overrides *ov,
		struct gw_config **out, struct config_issues *issues);
/* Validate an already-parsed root (used by load and by unit tests). */
int config_validate(const json_t *root, struct config_issues *issues);

struct gw_config *config_ref(struct gw_config *c);
void config_unref(struct gw_config *c);

void config_issues_add(struct config_issues *is, const char *path,
		       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void config_issues_free(struct config_issues *is);
/* Print "Invalid config at <path>:\n- a.b: msg\n...Config invalid\n". */
void config_issues_print(FILE *f, const char *path,
			 const struct config_issues *is);

/* The process-wide current snapshot (swapped atomically by the reload path;
 * config_current returns a new reference). */
struct gw_config *config_current(void);
void config_set_current(struct gw_config *c);
