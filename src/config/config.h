/* Configuration: the option table drives parsing, validation, defaults,
 * redaction and (later) config.schema. A loaded config is an immutable,
 * reference-counted snapshot: a request holds one while it runs. */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum config_bind { BIND_LOOPBACK = 0, BIND_LAN, BIND_CUSTOM, BIND_AUTO,
		   BIND_TAILNET };
enum config_auth_mode { AUTH_MODE_TOKEN = 0, AUTH_MODE_PASSWORD,
			AUTH_MODE_NONE, AUTH_MODE_TRUSTED_PROXY };

/* ---- option table (config-options.c) ------------------------------------- */

enum config_type {
	CFG_OBJECT = 0,	/* descend; children must be in the table */
	CFG_STRING,
	CFG_BOOL,
	CFG_INT,	/* integer; range [min, max] when min < max */
	CFG_NUMBER,
	CFG_STRINGS,	/* array of strings */
	CFG_ENUM,	/* string from values[] */
	CFG_SECRET,	/* string or SecretRef {source, provider, id} */
	CFG_ANY,	/* accepted as is, not descended */
};

/* What applying a change of this key needs (the reload plan). */
enum config_reload { CONFIG_RELOAD_HOT = 0, CONFIG_RELOAD_RESTART,
		     CONFIG_RELOAD_NONE };

#define CFG_F_SECRET 0x1	/* redact in config.get / logs */
#define CFG_F_OPEN 0x2		/* CFG_OBJECT: unknown children accepted */

struct config_option;
struct secrets_snapshot;
struct config_issues;
/* Custom check: 0 if v is fine, else -1 with a message in msg. */
typedef int (*config_check_fn)(const struct config_option *o,
			       const json_t *v, char *msg, size_t len);

struct config_option {
	const char *key;	/* dotted; a "*" segment matches any map key */
	enum config_type type;
	const char *def;	/* default as JSON text; NULL = none */
	const char *const *values; /* CFG_ENUM: NULL-terminated */
	int64_t min, max;	/* CFG_INT range when min < max */
	config_check_fn check;	/* extra check, runs after the type check */
	enum config_reload reload;
	unsigned flags;		/* CFG_F_* */
	const char *help;
};

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
	/* Reload: reuse the running snapshot's generated token (when it has
	 * auth_token_generated) instead of generating a new one. */
	const char *generated_token;
};

/* One problem found while loading: a dotted path and a message. */
struct config_issue {
	char *path;
	char *message;
};

/* Errors (v, n: the config is invalid) and warnings (w, nw: e.g. an
 * unresolved ${VAR}; the config is still usable). */
struct config_issues {
	struct config_issue *v;
	int n;
	struct config_issue *w;
	int nw;
};

struct gw_config {
	atomic_int refs;
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
	int64_t reload_debounce_ms; /* gateway.reload.debounceMs (300) */
	char *path;		/* the config file path given to config_load */
	char **included_files;	/* $include realpaths, NULL-terminated */
	/* The resolved SecretRefs of root (src/secrets/), owned; NULL when
	 * no secrets module is installed. */
	struct secrets_snapshot *secrets;
};

/* The secrets module plugs in here (secrets_install), so the config
 * layer does not link it. activate resolves c->root's refs into
 * c->secrets (fail-closed problems become issues); lookup gives the value
 * of a secret field (GW_OK, GW_ENOTFOUND: no ref, GW_EUNAVAIL: cold). */
struct config_secrets_hooks {
	int (*activate)(struct gw_config *c, struct config_issues *is);
	void (*release)(struct secrets_snapshot *s);
	int (*lookup)(const struct gw_config *c, const char *path,
		      const char **value, char *why, size_t len);
	int (*changed)(const struct gw_config *a, const struct gw_config *b);
	/* One value (string or SecretRef) resolved now, against the
	 * providers of the current config: config_secret_resolve. */
	int (*resolve)(const json_t *v, char **out, char *why, size_t len);
};
void config_set_secrets_hooks(const struct config_secrets_hooks *h);
/* Resolve a secret value (string or SecretRef object) into *out (owned;
 * xfree_secret) now, running its provider: -1 with a reason on failure.
 * For code that has not moved to the snapshot yet; prefer
 * secrets_lookup(cfg, path) (no I/O on a request). */
int config_secret_resolve(const json_t *v, char **out, char *why,
			  size_t len);
/* 1 if the resolved secrets of a and b differ (0 without hooks). */
int config_secrets_changed(const struct gw_config *a,
			   const struct gw_config *b);

/* Resolve paths from the environment and the profile flags (profile NULL
 * and dev 0: OPENCLAW_PROFILE, if set, selects the profile). GW_EINVAL for
 * an invalid profile name or --dev with another --profile. */
int config_paths_resolve(struct config_paths *p, const char *profile, int dev);
void config_paths_free(struct config_paths *p);
/* 1 if name matches [A-Za-z0-9_-]{1,64}. */
int config_paths_profile_valid(const char *name);

/* Load, validate and resolve the config at path (a missing file gives the
 * defaults, file_exists = 0). On validation failure returns GW_ECONFIG and
 * fills issues (the caller prints them and exits 78). */
int config_load(const char *path, const struct config_overrides *ov,
		struct gw_config **out, struct config_issues *issues);
/* Validate an already-parsed root (used by load and by unit tests). */
int config_validate(const json_t *root, struct config_issues *issues);

/* The value at a dotted path in root (borrowed), or NULL. */
const json_t *config_get(const json_t *root, const char *dotted);


struct gw_config *config_ref(struct gw_config *c);
void config_unref(struct gw_config *c);

void config_issues_add(struct config_issues *is, const char *path,
		       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void config_issues_warn(struct config_issues *is, const char *path,
			const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 1 if a warning was recorded for exactly this path. */
int config_issues_has_warning(const struct config_issues *is,
			      const char *path);
void config_issues_free(struct config_issues *is);
/* Print "Invalid config at <path>:\n- a.b: msg\n...Config invalid\n". */
void config_issues_print(FILE *f, const char *path,
			 const struct config_issues *is);

/* The process-wide current snapshot (swapped atomically by the reload path;
 * config_current returns a new reference). */
struct gw_config *config_current(void);
void config_set_current(struct gw_config *c);

/* ---- option table access (config-options.c) ------------------------------ */

const struct config_option *config_options_table(size_t *n);
/* The entry for a dotted path: exact match (literal segments beat "*"),
 * else the longest matching prefix; NULL when nothing matches. */
const struct config_option *config_options_lookup(const char *dotted);
/* Exact match for a path given as segments (keys may contain dots). */
const struct config_option *config_options_match(const char *const *segs,
						 size_t n);
/* Check one value against an entry (type, range, enum, custom check; for
 * CFG_STRINGS and CFG_SECRET also the elements); issues go under path.
 * Returns 0 or -1. Objects are not descended. */
int config_options_check(const struct config_option *o, const json_t *v,
			 const char *path, struct config_issues *is);
/* Validate a whole tree against the table (what config_validate does). */
int config_options_validate(const json_t *root, struct config_issues *is);
/* The entry's default as a new reference, or NULL when it has none. */
json_t *config_options_default(const struct config_option *o);
const char *config_options_reload_name(enum config_reload r);
const char *config_options_type_name(enum config_type t);

/* ---- ${VAR} and $include (config-env.c) ---------------------------------- */

/* Replace ${VAR} in every string of root in place; $${VAR} becomes a literal
 * ${VAR}; a missing or empty VAR stays as is with a warning. */
void config_env_substitute(json_t *root, struct config_issues *is);
/* Resolve $include directives in root (parsed from config_path). Returns
 * the new tree (new reference) or NULL with issues added. *files receives
 * the included realpaths, NULL-terminated (owned; may be NULL if none). */
json_t *config_env_includes(json_t *root, const char *config_path,
			    char ***files, struct config_issues *is);
/* Free a NULL-terminated string vector. */
void config_env_strv_free(char **v);
