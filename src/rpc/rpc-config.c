/* Config methods: config.get (redacted, with hash), config.set,
 * config.patch (RFC 7396 merge patch, arrays of objects merged by id),
 * config.apply (write + restart), config.schema(.lookup) generated from
 * the option table, and clawgate's config.plan, config.history,
 * config.snapshot and config.rollback. Writes go through the one reload
 * path (config/config-reload.h) under its lock: baseHash check, sentinel
 * restore, validate, atomic write, reload. Also the shared-secret
 * fingerprint used to close old-secret sockets on rotation. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-reload.h"
#include "core/common.h"
#include "core/json5.h"
#include "core/log.h"
#include "core/util.h"
#include "rpc/rpc-int.h"
#include "secrets/secrets.h"

#define RPC_CONFIG_WRITE_LIMIT 30
#define RPC_CONFIG_WRITE_WINDOW_MS 60000
#define RPC_CONFIG_LIMITER_KEYS 256
#define RPC_CONFIG_MAX_RAW (2u * 1024 * 1024)

/* ---- control-plane write limiter (30 per 60 s per method per client) --- */

struct rpc_config_bucket {
	char key[200];
	int64_t at[RPC_CONFIG_WRITE_LIMIT];	/* ring of write times */
	int n, head;
	int64_t used;				/* LRU */
};

static pthread_mutex_t rpc_config_lim_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rpc_config_bucket rpc_config_lim[RPC_CONFIG_LIMITER_KEYS];

/* 0 when allowed (and counted), else the ms until the next slot. */
static int64_t rpc_config_limit(const char *key)
{
	struct rpc_config_bucket *b = NULL, *lru = &rpc_config_lim[0];
	int64_t now = util_mono_ms(), wait = 0;
	size_t i;

	pthread_mutex_lock(&rpc_config_lim_mu);
	for (i = 0; i < RPC_CONFIG_LIMITER_KEYS; i++) {
		if (strcmp(rpc_config_lim[i].key, key) == 0) {
			b = &rpc_config_lim[i];
			break;
		}
		if (rpc_config_lim[i].used < lru->used)
			lru = &rpc_config_lim[i];
	}
	if (!b) {
		b = lru;
		memset(b, 0, sizeof(*b));
		snprintf(b->key, sizeof(b->key), "%s", key);
	}
	b->used = now;
	/* Drop the times that left the window (oldest first). */
	while (b->n > 0 && now - b->at[(b->head + RPC_CONFIG_WRITE_LIMIT -
				       b->n) % RPC_CONFIG_WRITE_LIMIT] >=
				 RPC_CONFIG_WRITE_WINDOW_MS)
		b->n--;
	if (b->n >= RPC_CONFIG_WRITE_LIMIT) {
		int64_t oldest = b->at[(b->head + RPC_CONFIG_WRITE_LIMIT -
					b->n) % RPC_CONFIG_WRITE_LIMIT];

		wait = oldest + RPC_CONFIG_WRITE_WINDOW_MS - now;
		if (wait < 1)
			wait = 1;
	} else {
		b->at[b->head] = now;
		b->head = (b->head + 1) % RPC_CONFIG_WRITE_LIMIT;
		b->n++;
	}
	pthread_mutex_unlock(&rpc_config_lim_mu);
	return wait;
}

/* The caller as upstream keys it: deviceId, else client id, plus IP.
 * These rpc_conn fields are set at hello and immutable afterwards. */
static const char *rpc_config_actor(const struct rpc_call *call)
{
	const struct rpc_conn *c = call->conn;

	if (c && c->device_id)
		return c->device_id;
	if (c && c->client_id)
		return c->client_id;
	return "rpc";
}

static int rpc_config_limited(struct rpc_call *call)
{
	const struct rpc_conn *c = call->conn;
	char key[200];
	int64_t wait;

	snprintf(key, sizeof(key), "%s|%s|%s", call->method,
		 rpc_config_actor(call), c && c->client_ip ? c->client_ip : "");
	wait = rpc_config_limit(key);
	if (!wait)
		return 0;
	rpc_call_error(call, "UNAVAILABLE",
		       json_pack("{s:s,s:s}", "method", call->method, "limit",
				 "30 per 60s"),
		       "rate limit exceeded for %s; retry after %llds",
		       call->method, (long long)((wait + 999) / 1000));
	call->err_retryable = 1;
	call->err_retry_after_ms = wait;
	return 1;
}

/* ---- shared-secret fingerprint ------------------------------------------ */

void rpc_config_auth_fp(const struct gw_config *cfg, char out[17])
{
	const char *sec = NULL, *kind = "";
	char *buf, hex[65];

	out[0] = 0;
	if (cfg->auth_mode == AUTH_MODE_TOKEN) {
		sec = cfg->auth_token;
		kind = "token";
	} else if (cfg->auth_mode == AUTH_MODE_PASSWORD) {
		sec = cfg->auth_password;
		kind = "password";
	}
	if (!sec)
		return;
	buf = xasprintf("clawgate-shared-auth:%s:%s", kind, sec);
	util_sha256_hex(buf, strlen(buf), hex);
	xfree_secret(buf);
	memcpy(out, hex, 16);
	out[16] = 0;
}

void rpc_config_auth_note(struct rpc_conn *c, const struct gw_config *cfg)
{
	c->shared_auth_fp[0] = 0;
	if (c->auth_method && (strcmp(c->auth_method, "token") == 0 ||
			       strcmp(c->auth_method, "password") == 0))
		rpc_config_auth_fp(cfg, c->shared_auth_fp);
}

static int rpc_config_old_secret(const struct rpc_conn *c, void *arg)
{
	return c->shared_auth_fp[0] && strcmp(c->shared_auth_fp, arg) != 0;
}

void rpc_config_auth_rotated(struct rpc_server *s, const struct gw_config *cfg)
{
	char fp[17];

	rpc_config_auth_fp(cfg, fp);
	log_info("reload", "gateway shared secret changed; closing the "
		 "connections that used the old one");
	rpc_close_where(s, rpc_config_old_secret, xstrdup(fp), free, 4001,
			"gateway auth changed");
}

/* ---- helpers ----------------------------------------------------------- */

static struct config_reloader *rpc_config_reloader(struct rpc_call *call)
{
	struct config_reloader *r = config_reloader_global();

	if (!r)
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "config reload is not running");
	return r;
}

static json_t *rpc_config_issues_json(const struct config_issues *is)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < is->n; i++)
		json_array_append_new(a, json_pack("{s:s,s:s}", "path",
			is->v[i].path, "message", is->v[i].message));
	return a;
}

/* The file now: raw text (owned, NULL when missing), hash, parsed. */
struct rpc_config_file {
	char *raw;
	size_t len;
	int exists;
	char hash[65];
	json_t *parsed;		/* NULL when it does not parse */
	char perr[200];
};

/* Read the config file at path; on failure the call's error is set. */
static int rpc_config_file_read(struct rpc_call *call, const char *path,
				struct rpc_config_file *f)
{
	struct json5_error err;
	int rd;

	memset(f, 0, sizeof(*f));
	rd = config_read_file(path, &f->raw, &f->len);
	if (rd < 0) {
		rpc_call_error(call, "UNAVAILABLE", NULL, "cannot read %s",
			       path);
		return -1;
	}
	f->exists = rd > 0;
	if (!f->exists)
		return 0;
	util_sha256_hex(f->raw, f->len, f->hash);
	if (json5_parse(f->raw, f->len, &f->parsed, &err) < 0)
		snprintf(f->perr, sizeof(f->perr), "JSON5 parse error at line "
			 "%d column %d: %s", err.line, err.column, err.message);
	return 0;
}

static void rpc_config_file_free(struct rpc_config_file *f)
{
	free(f->raw);
	json_decref(f->parsed);
	memset(f, 0, sizeof(*f));
}

/* baseHash rule: required when the file exists, must equal its hash. */
static int rpc_config_check_base(struct rpc_call *call,
				 const struct rpc_config_file *f)
{
	const char *base = json_string_value(json_object_get(call->params,
							     "baseHash"));

	if (!f->exists)
		return 0;
	if (!base || !*base) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "config base hash "
			       "required; re-run config.get and retry");
		return -1;
	}
	if (strcmp(base, f->hash) != 0) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "config changed "
			       "since last load; re-run config.get and retry");
		return -1;
	}
	return 0;
}

static const char *rpc_config_raw_param(struct rpc_call *call, size_t *len)
{
	const json_t *v = json_object_get(call->params, "raw");

	if (!json_is_string(v)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid %s params: must have required property "
			       "'raw'", call->method);
		return NULL;
	}
	*len = json_string_length(v);
	if (*len > RPC_CONFIG_MAX_RAW) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid %s params: raw is larger than %u bytes",
			       call->method, RPC_CONFIG_MAX_RAW);
		return NULL;
	}
	return json_string_value(v);
}

/* Restore sentinels in v from the current file (or fail naming the path). */
static int rpc_config_restore(struct rpc_call *call, json_t *v,
			      const struct rpc_config_file *f)
{
	char bad[300];

	if (!config_redact_has_sentinel(v))
		return 0;
	if (config_redact_restore(v, f->parsed, bad, sizeof(bad)) == 0)
		return 0;
	rpc_call_error(call, "INVALID_REQUEST", NULL, "cannot restore the "
		       "redacted value at %s (no current value); send the "
		       "real value", bad);
	return -1;
}

/* Write text through the reload path and answer like upstream. */
/* OpenClaw's config write result names the degraded secret owners of the
 * config it prepared: [{ownerKind, ownerId, state: cold|stale, paths,
 * reason}] (its status summary says state "unavailable" and
 * degradationState instead). */
static json_t *rpc_config_degraded(const struct gw_config *cfg)
{
	json_t *a = secrets_degraded_owners_json(cfg), *o;
	size_t i;

	json_array_foreach(a, i, o) {
		json_object_set(o, "state",
				json_object_get(o, "degradationState"));
		json_object_del(o, "degradationState");
	}
	return a;
}

static int rpc_config_write(struct rpc_call *call, struct config_reloader *r,
			    const char *text, size_t len, int force_restart,
			    int64_t parent, const char *source)
{
	struct config_req req = {
		.source = source, .actor = rpc_config_actor(call),
		.method = call->method, .force_restart = force_restart,
		.parent = parent,
	};
	struct config_result res;
	struct gw_config *cur;
	json_t *deg;
	int rc;

	rc = config_reloader_write_locked(r, text, len, &req, &res);
	if (rc == GW_ECONFIG || (rc != GW_OK &&
				 res.outcome == CONFIG_OUT_REJECTED &&
				 res.issues.n)) {
		rpc_call_error(call, "INVALID_REQUEST",
			       json_pack("{s:o}", "issues",
					 rpc_config_issues_json(&res.issues)),
			       "invalid config: %s",
			       res.reason ? res.reason :
			       res.issues.n ? res.issues.v[0].message : "?");
		config_result_free(&res);
		return GW_EINVAL;
	}
	if (rc != GW_OK) {
		rpc_call_error(call, "UNAVAILABLE", NULL, "cannot write the "
			       "config: %s", res.issues.n ?
			       res.issues.v[0].message : gw_err_str(rc));
		config_result_free(&res);
		return rc;
	}
	cur = config_current();
	deg = rpc_config_degraded(cur);
	call->payload = json_pack("{s:b,s:s,s:o,s:s,s:I,s:s,s:b,s:o}", "ok", 1,
				  "path", config_reloader_path(r), "config",
				  config_redact(cur ? cur->root : NULL),
				  "hash", cur ? cur->hash : "", "snapshotId",
				  (json_int_t)res.snapshot_id, "outcome",
				  config_outcome_name(res.outcome), "restart",
				  res.outcome == CONFIG_OUT_RESTART, "changes",
				  config_plan_json(&res.plan));
	if (json_array_size(deg))
		json_object_set(call->payload, "degradedSecretOwners", deg);
	json_decref(deg);
	config_unref(cur);
	config_result_free(&res);
	return GW_OK;
}

/* Pretty JSON text of v with a final newline (owned). */
static char *rpc_config_text(const json_t *v)
{
	char *t = json_dumps(v, JSON_INDENT(2)), *o = xasprintf("%s\n", t);

	xfree_secret(t);
	return o;
}

/* ---- methods ----------------------------------------------------------- */

static int rpc_config_get(struct rpc_call *call)
{
	struct config_reloader *r = config_reloader_global();
	const char *path = r ? config_reloader_path(r) : call->cfg->path;
	struct rpc_config_file f;
	struct config_issues is = {0};
	struct gw_config *c = NULL;
	json_t *out, *resolved = NULL, *red;
	char *raw = NULL;
	int valid;

	if (rpc_config_file_read(call, path, &f) < 0)
		return GW_EIO;
	if (!f.exists || strcmp(f.hash, call->cfg->hash) == 0) {
		/* The running snapshot is the file: no second load. */
		valid = 1;
		resolved = json_incref(call->cfg->root);
	} else if (f.parsed) {
		valid = config_load(path, NULL, &c, &is) == GW_OK;
		resolved = valid ? json_incref(c->root) : json_object();
	} else {
		valid = 0;
		config_issues_add(&is, "<root>", "%s", f.perr);
		resolved = json_object();
	}
	if (f.parsed) {
		red = config_redact(f.parsed);
		/* No secret in the file: the raw text as is (comments kept,
		 * so a config.set round trip keeps them too). */
		raw = json_equal(red, f.parsed) ? xstrdup(f.raw)
						 : json_dumps(red,
							      JSON_INDENT(2));
		json_decref(red);
	}
	out = json_pack("{s:s,s:b,s:s?,s:o,s:o,s:b,s:o,s:s,s:o,s:[],s:[]}",
			"path", path, "exists", f.exists, "raw", raw, "parsed",
			f.parsed ? config_redact(f.parsed) : json_null(),
			"resolved", config_redact(resolved), "valid", valid,
			"config", valid ? config_redact(resolved) : json_object(),
			"hash", f.exists ? f.hash : "", "issues",
			rpc_config_issues_json(&is), "warnings",
			"legacyIssues");
	json_object_set_new(out, "appliedConfigHash",
			    json_string(call->cfg->hash));
	call->payload = out;
	free(raw);
	json_decref(resolved);
	config_unref(c);
	config_issues_free(&is);
	rpc_config_file_free(&f);
	return GW_OK;
}

/* config.set / config.apply: the whole file. */
static int rpc_config_set_common(struct rpc_call *call, int apply)
{
	struct config_reloader *r = rpc_config_reloader(call);
	struct rpc_config_file f;
	struct json5_error err;
	json_t *v = NULL;
	const char *raw;
	char *text = NULL;
	size_t len = 0;
	int rc = GW_EINVAL;

	if (!r)
		return GW_EUNAVAIL;
	if (!(raw = rpc_config_raw_param(call, &len)))
		return GW_EINVAL;
	if (rpc_config_limited(call))
		return GW_ERATELIMIT;
	config_reloader_lock(r);
	if (rpc_config_file_read(call, config_reloader_path(r), &f) < 0) {
		rc = GW_EIO;
		goto out;
	}
	if (rpc_config_check_base(call, &f) < 0)
		goto out;
	if (json5_parse(raw, len, &v, &err) < 0) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "invalid config: "
			       "JSON5 parse error at line %d column %d: %s",
			       err.line, err.column, err.message);
		goto out;
	}
	if (config_redact_has_sentinel(v)) {
		if (rpc_config_restore(call, v, &f) < 0)
			goto out;
		text = rpc_config_text(v);
		raw = text;
		len = strlen(text);
	}
	rc = rpc_config_write(call, r, raw, len, apply, 0, "rpc");
out:
	config_reloader_unlock(r);
	rpc_config_file_free(&f);
	json_decref(v);
	if (text)
		xfree_secret(text);
	return rc;
}

static int rpc_config_set(struct rpc_call *call)
{
	return rpc_config_set_common(call, 0);
}

static int rpc_config_apply(struct rpc_call *call)
{
	return rpc_config_set_common(call, 1);
}

static int rpc_config_patch(struct rpc_call *call)
{
	struct config_reloader *r = rpc_config_reloader(call);
	struct rpc_config_file f;
	struct json5_error err;
	json_t *patch = NULL, *merged = NULL;
	const char *raw;
	char *text = NULL;
	size_t len = 0;
	int rc = GW_EINVAL;

	if (!r)
		return GW_EUNAVAIL;
	if (!(raw = rpc_config_raw_param(call, &len)))
		return GW_EINVAL;
	if (rpc_config_limited(call))
		return GW_ERATELIMIT;
	config_reloader_lock(r);
	if (rpc_config_file_read(call, config_reloader_path(r), &f) < 0) {
		rc = GW_EIO;
		goto out;
	}
	if (rpc_config_check_base(call, &f) < 0)
		goto out;
	if (f.exists && !f.parsed) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "the config file "
			       "does not parse (%s); use config.set", f.perr);
		goto out;
	}
	if (json5_parse(raw, len, &patch, &err) < 0 ||
	    !json_is_object(patch)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "invalid config."
			       "patch params: raw must be a JSON5 object");
		goto out;
	}
	merged = f.parsed ? json_deep_copy(f.parsed) : json_object();
	config_merge_patch(&merged, patch);
	if (rpc_config_restore(call, merged, &f) < 0)
		goto out;
	text = rpc_config_text(merged);
	rc = rpc_config_write(call, r, text, strlen(text), 0, 0, "rpc");
out:
	config_reloader_unlock(r);
	rpc_config_file_free(&f);
	json_decref(patch);
	json_decref(merged);
	if (text)
		xfree_secret(text);
	return rc;
}

static int rpc_config_schema(struct rpc_call *call)
{
	call->payload = config_schema_json(call->srv->d.version);
	return GW_OK;
}

static int rpc_config_schema_lookup(struct rpc_call *call)
{
	const char *path = json_string_value(json_object_get(call->params,
							     "path"));

	if (!path) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid config.schema.lookup params: must have "
			       "required property 'path'");
		return GW_EINVAL;
	}
	call->payload = config_schema_lookup(path);
	if (!call->payload) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown config path: %.200s", path);
		return GW_EINVAL;
	}
	return GW_OK;
}

/* config.plan {raw}: what applying raw would do, per path. */
static int rpc_config_plan(struct rpc_call *call)
{
	struct config_reloader *r = rpc_config_reloader(call);
	struct config_result res;
	const char *raw;
	size_t len = 0;
	int rc;

	if (!r)
		return GW_EUNAVAIL;
	if (!(raw = rpc_config_raw_param(call, &len)))
		return GW_EINVAL;
	rc = config_reloader_plan_text(r, raw, len, &res);
	call->payload = json_pack("{s:b,s:o,s:o,s:b,s:s,s:s}", "valid",
				  rc == GW_OK, "issues",
				  rpc_config_issues_json(&res.issues),
				  "changes", config_plan_json(&res.plan),
				  "restart", res.plan.restart, "mode",
				  call->cfg->reload_mode ?
				  call->cfg->reload_mode : "hybrid",
				  "outcome", config_outcome_name(res.outcome));
	config_result_free(&res);
	return GW_OK;
}

static int rpc_config_history(struct rpc_call *call)
{
	struct config_reloader *r = rpc_config_reloader(call);
	json_int_t limit = json_integer_value(json_object_get(call->params,
							      "limit"));

	if (!r)
		return GW_EUNAVAIL;
	call->payload = json_pack("{s:o,s:s}", "snapshots",
				  config_reloader_history(r, (int)limit),
				  "hash", call->cfg->hash);
	return GW_OK;
}

static int rpc_config_snapshot(struct rpc_call *call)
{
	struct config_reloader *r = rpc_config_reloader(call);
	int64_t id = json_integer_value(json_object_get(call->params, "id"));
	char *text = NULL;
	int64_t got = 0;
	json_t *parsed;
	int rc;

	if (!r)
		return GW_EUNAVAIL;
	rc = config_reloader_snapshot_text(r, id, &text, &got);
	if (rc != GW_OK) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "no such config snapshot: %lld", (long long)id);
		return GW_EINVAL;
	}
	parsed = json_loads(text, 0, NULL);
	call->payload = json_pack("{s:I,s:s,s:o}", "id", (json_int_t)got,
				  "text", text, "config",
				  parsed ? parsed : json_object());
	free(text);
	return GW_OK;
}

/* config.rollback {id?, baseHash?}: restore a snapshot's text (secrets
 * restored from the current file) through the write path. */
static int rpc_config_rollback(struct rpc_call *call)
{
	struct config_reloader *r = rpc_config_reloader(call);
	int64_t id = json_integer_value(json_object_get(call->params, "id"));
	struct rpc_config_file f;
	json_t *v = NULL;
	char *text = NULL, *out = NULL;
	int64_t got = 0;
	int rc = GW_EINVAL;

	if (!r)
		return GW_EUNAVAIL;
	if (rpc_config_limited(call))
		return GW_ERATELIMIT;
	config_reloader_lock(r);
	if (rpc_config_file_read(call, config_reloader_path(r), &f) < 0) {
		rc = GW_EIO;
		goto out;
	}
	if (json_object_get(call->params, "baseHash") &&
	    rpc_config_check_base(call, &f) < 0)
		goto out;
	if (config_reloader_snapshot_text(r, id, &text, &got) != GW_OK) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, id > 0 ?
			       "no config snapshot %lld to roll back to" :
			       "no earlier config snapshot to roll back to",
			       (long long)id);
		goto out;
	}
	v = json_loads(text, 0, NULL);
	if (!v || rpc_config_restore(call, v, &f) < 0) {
		if (!v)
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "snapshot %lld is not JSON",
				       (long long)got);
		goto out;
	}
	out = rpc_config_text(v);
	log_info("reload", "rolling back to config snapshot %lld (by %s)",
		 (long long)got, rpc_config_actor(call));
	rc = rpc_config_write(call, r, out, strlen(out), 0, got, "rollback");
	if (rc == GW_OK)
		json_object_set_new(call->payload, "restoredFrom",
				    json_integer(got));
out:
	config_reloader_unlock(r);
	rpc_config_file_free(&f);
	json_decref(v);
	free(text);
	if (out)
		xfree_secret(out);
	return rc;
}

const struct rpc_method rpc_config_methods[] = {
	{"config.get", rpc_config_get, "operator.read", RPC_F_WORKER,
	 "the config file (redacted) with its hash"},
	{"config.set", rpc_config_set, "operator.admin", RPC_F_WORKER,
	 "replace the config file (baseHash required when it exists)"},
	{"config.patch", rpc_config_patch, "operator.admin", RPC_F_WORKER,
	 "merge-patch the config file (RFC 7396, arrays merged by id)"},
	{"config.apply", rpc_config_apply, "operator.admin", RPC_F_WORKER,
	 "replace the config file and restart the gateway"},
	{"config.schema", rpc_config_schema, "operator.read", RPC_F_WORKER,
	 "the config JSON Schema (from the option table)"},
	{"config.schema.lookup", rpc_config_schema_lookup, "operator.read",
	 RPC_F_WORKER, "the schema of one config path and its children"},
	{"config.plan", rpc_config_plan, "operator.read",
	 RPC_F_WORKER | RPC_F_LOCAL,
	 "what applying a config would do (hot, restart or none per path)"},
	{"config.history", rpc_config_history, "operator.admin",
	 RPC_F_WORKER | RPC_F_LOCAL,
	 "the numbered config snapshots, newest first"},
	{"config.snapshot", rpc_config_snapshot, "operator.admin",
	 RPC_F_WORKER | RPC_F_LOCAL, "the redacted text of one config snapshot"},
	{"config.rollback", rpc_config_rollback, "operator.admin",
	 RPC_F_WORKER | RPC_F_LOCAL, "restore a config snapshot (default: the previous)"},
};
const size_t rpc_config_methods_count = ARRAY_SIZE(rpc_config_methods);
