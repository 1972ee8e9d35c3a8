/* The config lifecycle: the diff of two configs as dotted leaf paths, the
 * rule table that classifies each path (hot, restart or none), redaction,
 * merge patch and the generated schema (config-redact.c), and the one
 * reload path shared by the file watcher, SIGHUP, the config.* RPCs and
 * rollback: read -> parse -> validate -> resolve secrets -> plan -> commit
 * snapshot (SQLite) -> swap -> apply -> release the old snapshot. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"

struct store;

/* What config.get shows instead of a secret (upstream's sentinel). */
#define CONFIG_REDACTED "__OPENCLAW_REDACTED__"
/* Default spacing of restarts (the storm guard). */
#define CONFIG_RESTART_COOLDOWN_MS 30000

/* ---- plan (config-plan.c) --------------------------------------------- */

struct config_change {
	char *path;		/* dotted leaf path */
	enum config_reload cls;
	const char *rule;	/* matching rule prefix; "" when unmatched */
};

struct config_plan {
	struct config_change *v;
	size_t n;
	int restart;		/* some change needs a restart */
	int hot;		/* some change is applied hot */
	int rotate;		/* the shared secret (token/password) changed */
};

/* The dotted leaf paths where a and b differ (either may be NULL = {}).
 * Objects are descended; arrays and scalars compare structurally. The
 * paths are sorted; *paths is NULL-terminated and owned by the caller
 * (config_env_strv_free). Returns the count. */
size_t config_plan_diff(const json_t *a, const json_t *b, char ***paths);
/* Class of one changed path by the rule table (longest prefix wins; an
 * unmatched path needs a restart). *rule (may be NULL) gets the prefix. */
enum config_reload config_plan_classify(const char *path,
					const char **rule);
/* Number of rules and the i-th rule (tests enumerate them). */
size_t config_plan_rules_count(void);
const char *config_plan_rule(size_t i, enum config_reload *cls);
/* Plan from two configs (roots plus the resolved secrets, so a SecretRef
 * whose value changed counts as a change). old may be NULL. */
void config_plan_build(const struct gw_config *old,
		       const struct gw_config *neu, struct config_plan *p);
/* Plan from two JSON roots only. */
void config_plan_build_json(const json_t *a, const json_t *b,
			    struct config_plan *p);
void config_plan_free(struct config_plan *p);
/* [{path, action: "hot"|"restart"|"none", rule}] (new reference). */
json_t *config_plan_json(const struct config_plan *p);
/* "a.b, c.d" of the changes of one class (cls < 0: all). Owned. */
char *config_plan_paths(const struct config_plan *p, int cls);

/* ---- redaction, merge patch, schema (config-redact.c) ------------------ */

/* 1 if a value under this key is a secret: the table says so, or the
 * key's last segment looks like one (token, password, secret, apiKey...). */
int config_redact_is_secret(const char *dotted);
/* A deep copy of v with every secret string replaced by CONFIG_REDACTED
 * (whole-string ${VAR} references and SecretRef objects are kept: they
 * name a secret, they are not one). */
json_t *config_redact(const json_t *v);
/* Replace every CONFIG_REDACTED string in v (in place) by the value at the
 * same path in current. -1 with the path in bad when current has none. */
int config_redact_restore(json_t *v, const json_t *current, char *bad,
			  size_t len);
/* 1 if v contains CONFIG_REDACTED anywhere. */
int config_redact_has_sentinel(const json_t *v);
/* RFC 7396 merge patch applied to *target (replaced when the patch is not
 * an object); arrays whose elements are all objects with a string "id" on
 * both sides are merged element-wise by id. */
void config_merge_patch(json_t **target, const json_t *patch);
/* The redacted JSON text stored for a raw JSON5 file text (NULL if it
 * does not parse). Owned. */
char *config_redact_text(const char *raw, size_t len);
/* The JSON Schema of the config, generated from the option table:
 * {schema, uiHints, version, generatedAt} (new reference). */
json_t *config_schema_json(const char *version);
/* {path, schema, hint?, hintPath?, children[]} or NULL when unknown. */
json_t *config_schema_lookup(const char *dotted);

/* ---- the reloader ------------------------------------------------------ */

enum config_reload_mode {
	CONFIG_MODE_OFF = 0,
	CONFIG_MODE_HOT,
	CONFIG_MODE_RESTART,
	CONFIG_MODE_HYBRID,
};

enum config_outcome {
	CONFIG_OUT_UNCHANGED = 0,	/* same content: nothing recorded */
	CONFIG_OUT_APPLIED,		/* swapped (hot / none) */
	CONFIG_OUT_RESTART,		/* swapped, a restart was requested */
	CONFIG_OUT_PENDING,		/* swapped; restart paths not applied
					 * (mode hot) */
	CONFIG_OUT_SKIPPED,		/* mode off: logged only */
	CONFIG_OUT_REJECTED,		/* invalid: the old snapshot stays */
	CONFIG_OUT_MISSING,		/* the file is gone: kept running */
};

struct config_reloader_cbs {
	/* After the swap, before the old snapshot is released (reload
	 * thread): apply hot actions (e.g. close old-secret sockets). */
	void (*apply)(const struct gw_config *old,
		      const struct gw_config *neu,
		      const struct config_plan *p, void *arg);
	/* A restart is needed (reason is short text). */
	void (*restart)(const char *reason, void *arg);
	/* config.changed event payload (stolen). */
	void (*changed)(json_t *payload, void *arg);
	void *arg;
};

struct config_reloader_opts {
	const char *path;		/* the active config file */
	const struct config_overrides *ov; /* CLI overrides (kept) */
	struct store *store;		/* snapshots; may be NULL */
	int64_t keep;			/* retention: rows kept (0 = all) */
	struct config_reloader_cbs cbs;
};

/* One reload request. */
struct config_req {
	const char *source;	/* file, signal, rpc, rollback, startup */
	const char *actor;	/* device/client id, "file", "signal" */
	const char *method;	/* rpc method or NULL */
	int force_restart;	/* config.apply: restart when swapped */
	int64_t parent;		/* rollback: the restored snapshot id */
};

struct config_result {
	enum config_outcome outcome;
	int64_t snapshot_id;	/* 0 when nothing was recorded */
	struct config_plan plan;
	struct config_issues issues;
	char hash[65];
	char *reason;		/* rejected / skipped: why (owned) */
};

struct config_reloader *config_reloader_new(const struct config_reloader_opts
					    *o);
void config_reloader_free(struct config_reloader *r);
/* The process-wide reloader (the RPC face finds it here); NULL if none. */
void config_reloader_set_global(struct config_reloader *r);
struct config_reloader *config_reloader_global(void);
/* The file path the reloader watches (borrowed). */
const char *config_reloader_path(const struct config_reloader *r);

/* Serialise writers: the RPC face holds it across read-check-write. */
void config_reloader_lock(struct config_reloader *r);
void config_reloader_unlock(struct config_reloader *r);

/* Record the running snapshot as the start-up row (outcome "started";
 * source startup, restart or rollback; reason may be NULL). Returns the
 * file's text when it is still the one cfg was loaded from (same hash;
 * *len its length; the caller frees it), else NULL: the file was
 * edited since (the row then has no text, not the edit's). */
char *config_reloader_started(struct config_reloader *r,
			      const struct gw_config *cfg,
			      const char *source, const char *reason,
			      size_t *len);
/* The reload path for the file as it is now. */
int config_reloader_run(struct config_reloader *r,
			const struct config_req *req,
			struct config_result *res);
/* Same, caller holds the lock. */
int config_reloader_run_locked(struct config_reloader *r,
			       const struct config_req *req,
			       struct config_result *res);
/* Validate text as the config file (same directory, for $include), then
 * write it atomically (temp, fsync, rename, fsync dir, mode kept) and run
 * the reload path. Caller holds the lock. An invalid text is not written:
 * GW_ECONFIG with res->issues. */
int config_reloader_write_locked(struct config_reloader *r, const char *text,
				 size_t len, const struct config_req *req,
				 struct config_result *res);
/* Dry run: what applying text would do (res->plan; issues when invalid).
 * Against the running snapshot. */
int config_reloader_plan_text(struct config_reloader *r, const char *text,
			      size_t len, struct config_result *res);
void config_result_free(struct config_result *res);
const char *config_outcome_name(enum config_outcome o);
/* Parse gateway.reload.mode (hybrid when NULL/unknown). */
enum config_reload_mode config_reload_mode_parse(const char *s);

/* Snapshot rows: newest first, at most limit (new reference). */
json_t *config_reloader_history(struct config_reloader *r, int limit);
/* The stored (redacted) text of snapshot id, or of the latest accepted
 * snapshot before the current one when id <= 0. GW_ENOTFOUND. *text is
 * owned; *out_id gets the id. */
int config_reloader_snapshot_text(struct config_reloader *r, int64_t id,
				  char **text, int64_t *out_id);

/* Atomic file write: temp in the same directory, fsync, rename over path,
 * fsync the directory; keeps the mode of an existing file (else 0600).
 * Returns 0 or -errno. */
int config_write_atomic(const char *path, const char *text, size_t len);
/* Read a whole file (bounded to 4 MiB): 1 = read, 0 = missing, -errno. */
int config_read_file(const char *path, char **out, size_t *len);
