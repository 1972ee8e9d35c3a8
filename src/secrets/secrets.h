/* Secrets: SecretRefs resolved through named providers into one runtime
 * snapshot per config snapshot. Activation runs eagerly inside config_load
 * (start, every reload, secrets.reload, the config.set/apply/patch
 * preflight) on the thread that loads the config (main, watcher, worker:
 * never the HTTP or WebSocket thread). A request reads the value through
 * the config snapshot it already holds: one pointer, no I/O.
 *
 * Owners (gateway auth, each model provider, hooks, each channel account)
 * fail independently:
 * gateway auth and structurally invalid refs fail the load (closed); any
 * other owner that cannot be resolved is cold at start (its requests fail
 * with SECRET_SURFACE_UNAVAILABLE) or, on reload, keeps its last-known-good
 * value when neither its ref nor its provider changed (stale). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct gw_config;
struct store;

enum secrets_state {
	SECRETS_WARM = 0,	/* resolved in this activation */
	SECRETS_STALE,		/* failed; last-known-good value kept */
	SECRETS_COLD,		/* failed, no value: requests fail */
};

/* What an activation resolves. */
enum secrets_scope {
	SECRETS_SCOPE_AUTH = 0,	/* gateway auth only (CLI commands) */
	SECRETS_SCOPE_FULL,	/* every active surface (the daemon) */
};

/* Install the activation hooks into the config module. scope: see above.
 * state_dir (may be NULL: resolved from the environment when needed)
 * locates state/clawgate.sqlite and state/secrets.key. */
void secrets_install(enum secrets_scope scope, const char *state_dir);
/* The open store (the daemon, once it is open; NULL to detach). Before
 * it is set the store provider opens the database file read-only. */
void secrets_set_store(struct store *st);
const char *secrets_state_dir(void);
/* The daemon's open store, or NULL (then open the file read-only). */
struct store *secrets_store(void);

/* The resolved value of the secret field at dotted path in cfg's
 * snapshot. GW_OK with *value borrowed (valid while cfg is held);
 * GW_ENOTFOUND when the field holds no ref (read the config value);
 * GW_EUNAVAIL when its owner is cold (why gets a message naming
 * SECRET_SURFACE_UNAVAILABLE, the path and the provider). */
int secrets_lookup(const struct gw_config *cfg, const char *path,
		   const char **value, char *why, size_t len);
/* Convenience for a secret field: the plaintext string, or the ref's
 * value. Owned (xfree_secret) in *out; NULL when the field is unset. */
int secrets_field(const struct gw_config *cfg, const char *path,
		  const json_t *v, char **out, char *why, size_t len);

/* 1 if two configs' snapshots hold different values or states. */
int secrets_changed(const struct gw_config *a, const struct gw_config *b);
/* Warnings of cfg's activation (cold + stale owners). */
int secrets_warning_count(const struct gw_config *cfg);
/* 1 if an active ref of cfg names the store entry. */
int secrets_uses_store_name(const struct gw_config *cfg, const char *name);
/* [{path, owner, source, provider, state}] (no ids, no values). */
json_t *secrets_status_json(const struct gw_config *cfg);
/* OpenClaw's status.degradedSecretOwners: one object per cold or stale
 * owner {ownerKind, ownerId, state:"unavailable", degradationState,
 * paths, reason (a redacted class)}; [] when every owner resolved. */
json_t *secrets_degraded_owners_json(const struct gw_config *cfg);

/* Resolve every SecretRef of root without a snapshot or log lines (the
 * audit and apply preflight): fn gets each ref's path, source, provider
 * and outcome, and the reason when unresolved (never a value). Exec
 * providers are not run unless allow_exec. GW_ECONFIG with issues when a
 * provider or ref is invalid. */
enum { SECRETS_CHECK_OK = 0, SECRETS_CHECK_UNRESOLVED,
       SECRETS_CHECK_SKIPPED };
struct config_issues;
typedef void (*secrets_check_fn)(void *arg, const char *path,
				 const char *source, const char *provider,
				 int outcome, const char *reason);
int secrets_check_refs(const json_t *root, int allow_exec,
		       secrets_check_fn fn, void *arg,
		       struct config_issues *is);

/* Register a resolved value with the logger's mask (the logger replaces
 * it by "***" wherever it appears). */
void secrets_mask_add(const char *value);

/* ---- the shared secret store (secrets-store.c) -------------------------- */

struct sqlite3;
struct store_secret;
/* Decrypt the live entry name from db (a reader or a read-only handle).
 * GW_ENOTFOUND, GW_ECRYPTO (wrong key, tampered), GW_ESTORE; why says
 * which. *value owned (xfree_secret); *kind owned (may be NULL). */
int secrets_store_value(struct sqlite3 *db, const char *name, char **kind,
			char **value, char *why, size_t len);
/* Seal and write (key created on first use). hosts: array or NULL. */
int secrets_store_set(struct store *st, const char *name, const char *kind,
		      const char *value, size_t vlen, const json_t *hosts,
		      const char *actor, char *why, size_t len);
/* One entry as the protocol shows it (value only for kind env). */
json_t *secrets_store_entry_json(const struct store_secret *e,
				 const char *value);
/* The live entries as protocol objects (new array). */
int secrets_store_list_json(struct store *st, json_t **out, char *why,
			    size_t len);

/* ---- audit and apply plans (secrets-audit.c) ----------------------------- */

struct secrets_audit_opts {
	const char *config_path;
	const char *state_dir;
	int allow_exec;		/* run exec providers to check their refs */
};
/* The audit report in OpenClaw's shape (new reference); *status: 0 clean,
 * 1 findings, 2 unresolved refs. */
json_t *secrets_audit(const struct secrets_audit_opts *o, int *status);

/* Plaintext values in the secret fields of root: [{path, type, value}]
 * (new reference; holds values: wipe nothing, keep it short-lived). */
json_t *secrets_plaintext_fields(const json_t *root);

/* dotenv: NAME=value, export, quotes (double quotes span lines and take
 * escapes), comments. fn non-zero stops; -1 with the line in *bad. */
typedef int (*secrets_dotenv_fn)(const char *name, const char *value,
				 int line, void *arg);
int secrets_dotenv_parse(char *text, secrets_dotenv_fn fn, void *arg,
			 int *bad);
/* 1 for names OpenClaw treats as secrets (_API_KEY, _TOKEN, ...). */
int secrets_name_is_secret(const char *name);

/* Parse and validate a plan completely (version, targets: type, path
 * shape, forbidden segments, pathSegments, providerId, ref grammar;
 * providerUpserts/Deletes). GW_EINVAL with a reason. */
int secrets_plan_parse(const char *text, size_t len, json_t **plan,
		       char *why, size_t wlen);
int secrets_plan_has_exec(const json_t *plan);
/* The config root with the plan applied (new reference); the plaintext
 * strings it replaced are appended to migrated (may be NULL). */
json_t *secrets_plan_apply_root(const json_t *plan, const json_t *root,
				json_t *migrated);
/* Rewrite the stored config versions: each target replaced by its ref,
 * any other migrated plaintext by the redaction sentinel. */
int secrets_plan_scrub_versions(struct store *st, const json_t *plan,
				const json_t *migrated, int *changed);
/* Remove assignments holding a migrated plaintext from a .env file
 * (kept when the plan makes that name an env ref). Lines removed or -1. */
int secrets_plan_scrub_env(const char *path, const json_t *plan,
			   const json_t *migrated);

/* ---- grammars (secrets.c) ------------------------------------------------ */

int secrets_alias_valid(const char *s);		/* ^[a-z][a-z0-9_-]{0,63}$ */
int secrets_env_name_valid(const char *s);	/* ^[A-Z][A-Z0-9_]{0,127}$ */
int secrets_exec_id_valid(const char *s);
int secrets_file_id_valid(const char *s);	/* "/..." or "value" */
/* A SecretRef in v (object, "$NAME" or "${NAME}" string): 1 and the parts
 * (borrowed from v) when v is one; 0 when it is plaintext. */
int secrets_ref_parse(const json_t *v, const char **source,
		      const char **provider, const char **id);
/* RFC 6901: the value at ptr in doc (borrowed) or NULL. */
const json_t *secrets_json_pointer(const json_t *doc, const char *ptr);
