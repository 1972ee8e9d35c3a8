/* secrets.*: reload the runtime snapshot, resolve command targets, and the
 * shared secret store (list, set, delete). All admin-scoped (the table in
 * rpc.c); all on the worker pool (activation runs providers, the store is
 * SQLite). A `secret` value never appears in a result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-reload.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "rpc/rpc-int.h"
#include "secrets/secrets.h"
#include "store/store.h"

#define RPC_SECRETS_VALUE_MAX 65536
#define RPC_SECRETS_HOSTS_MAX 128

static const char *rpc_secrets_actor(const struct rpc_call *call)
{
	const struct rpc_conn *c = call->conn;

	if (c && c->device_id)
		return c->device_id;
	if (c && c->client_id)
		return c->client_id;
	return "rpc";
}

/* 0 if params has only the given keys; else INVALID_REQUEST and -1. */
static int rpc_secrets_keys(struct rpc_call *call,
			    const char *const *allowed)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(call->params, k, v) {
		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], k) == 0)
				break;
		if (!allowed[i]) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "invalid %s params: unexpected property "
				       "'%s'", call->method, k);
			return -1;
		}
	}
	return 0;
}

/* Run the reload path as an explicit request (re-resolves every ref).
 * GW_OK with *warnings, or GW_EUNAVAIL when the reload was refused. */
static int rpc_secrets_reload_run(struct rpc_call *call, int *warnings)
{
	struct config_reloader *r = config_reloader_global();
	struct config_req req = {
		.source = "rpc", .actor = rpc_secrets_actor(call),
		.method = call->method,
	};
	struct config_result res;
	struct gw_config *cur;
	int rc;

	*warnings = 0;
	if (!r)
		return GW_EUNAVAIL;
	rc = config_reloader_run(r, &req, &res);
	if (rc != GW_OK || res.outcome == CONFIG_OUT_REJECTED) {
		log_warn("secrets", "secrets reload failed; keeping the active "
			 "snapshot");
		config_result_free(&res);
		return GW_EUNAVAIL;
	}
	config_result_free(&res);
	cur = config_current();
	*warnings = secrets_warning_count(cur);
	config_unref(cur);
	return GW_OK;
}

static int rpc_secrets_reload(struct rpc_call *call)
{
	static const char *const keys[] = { NULL };
	int w;

	if (rpc_secrets_keys(call, keys) < 0)
		return GW_EINVAL;
	if (rpc_secrets_reload_run(call, &w) != GW_OK) {
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "secrets.reload failed");
		return GW_EUNAVAIL;
	}
	log_info("secrets", "secrets reloaded by %s (%d warnings)",
		 rpc_secrets_actor(call), w);
	call->payload = json_pack("{s:b,s:i}", "ok", 1, "warningCount", w);
	return GW_OK;
}

/* 1 if path (dotted) matches the table key pattern ("*" = one segment). */
static int rpc_secrets_match(const char *pattern, const char *path)
{
	while (*pattern && *path) {
		if (pattern[0] == '*' && (pattern[1] == '.' || !pattern[1])) {
			path += strcspn(path, ".");
			pattern++;
		} else {
			size_t n = strcspn(pattern, "."), m = strcspn(path, ".");

			if (n != m || strncmp(pattern, path, n) != 0)
				return 0;
			pattern += n;
			path += m;
		}
		if (*pattern != *path)
			return 0;
		if (*pattern) {
			pattern++;
			path++;
		}
	}
	return !*pattern && !*path;
}

static int rpc_secrets_target_known(const char *id)
{
	const struct config_option *t;
	size_t n, i;

	t = config_options_table(&n);
	for (i = 0; i < n; i++)
		if (t[i].type == CFG_SECRET && strcmp(t[i].key, id) == 0)
			return 1;
	return 0;
}

static json_t *rpc_secrets_segments(const char *path)
{
	json_t *a = json_array();
	const char *p = path;

	while (*p) {
		size_t n = strcspn(p, ".");

		json_array_append_new(a, json_stringn(p, n));
		p += n;
		if (*p)
			p++;
	}
	return a;
}

static int rpc_secrets_resolve(struct rpc_call *call)
{
	static const char *const keys[] = {
		"commandName", "targetIds", "allowedPaths",
		"forcedActivePaths", "optionalActivePaths",
		"providerOverrides", NULL
	};
	const json_t *ids = json_object_get(call->params, "targetIds"), *e;
	const char *cmd = json_string_value(json_object_get(call->params,
							    "commandName"));
	json_t *st, *asg = json_array(), *diag = json_array(), *s;
	size_t i, j;

	if (rpc_secrets_keys(call, keys) < 0)
		goto bad;
	if (!cmd || !*cmd || !json_is_array(ids)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "invalid "
			       "secrets.resolve params: commandName and "
			       "targetIds are required");
		goto bad;
	}
	json_array_foreach(ids, i, e) {
		if (!json_is_string(e) ||
		    !rpc_secrets_target_known(json_string_value(e))) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "unknown secrets.resolve target id");
			goto bad;
		}
	}
	st = secrets_status_json(call->cfg);
	json_array_foreach(st, j, s) {
		const char *path = json_string_value(json_object_get(s,
								     "path"));
		const char *val;
		char why[400];

		json_array_foreach(ids, i, e)
			if (rpc_secrets_match(json_string_value(e), path))
				break;
		if (i == json_array_size(ids))
			continue;
		if (secrets_lookup(call->cfg, path, &val, why,
				   sizeof(why)) != GW_OK) {
			json_array_append_new(diag, json_sprintf(
				"%s: secret is configured but unavailable",
				path));
			continue;
		}
		json_array_append_new(asg, json_pack(
			"{s:s,s:o,s:s}", "path", path, "pathSegments",
			rpc_secrets_segments(path), "value", val));
	}
	json_decref(st);
	call->payload = json_pack("{s:b,s:o,s:o,s:[]}", "ok", 1, "assignments",
				  asg, "diagnostics", diag, "inactiveRefPaths");
	return GW_OK;
bad:
	json_decref(asg);
	json_decref(diag);
	return GW_EINVAL;
}

static int rpc_secrets_store_list(struct rpc_call *call)
{
	static const char *const keys[] = { NULL };
	struct store *st = secrets_store();
	json_t *entries = NULL;
	char why[300];

	if (rpc_secrets_keys(call, keys) < 0)
		return GW_EINVAL;
	if (!st || secrets_store_list_json(st, &entries, why,
					   sizeof(why)) != GW_OK) {
		rpc_call_error(call, "UNAVAILABLE", NULL, "secret store "
			       "unavailable: %s", st ? why : "no store");
		return GW_EUNAVAIL;
	}
	call->payload = json_pack("{s:o}", "entries", entries);
	return GW_OK;
}

/* Name grammar of the store (and OpenClaw's github-setup entries). */
static int rpc_secrets_name_ok(const char *n)
{
	size_t i;

	if (n && strncmp(n, "github-setup-", 13) == 0 && strlen(n) == 45) {
		for (i = 13; n[i]; i++)
			if (!strchr("0123456789abcdef", n[i]))
				return 0;
		return 1;
	}
	return secrets_env_name_valid(n);
}

/* After a change of entry name: refresh the snapshot when a ref uses it. */
static void rpc_secrets_mutated(struct rpc_call *call, const char *name)
{
	struct gw_config *cur = config_current();
	int used = secrets_uses_store_name(cur, name), w = 0, reloaded = 0;

	config_unref(cur);
	if (used && rpc_secrets_reload_run(call, &w) == GW_OK)
		reloaded = 1;
	call->payload = json_pack("{s:b,s:b}", "ok", 1, "reloaded", reloaded);
	if (reloaded)
		json_object_set_new(call->payload, "warningCount",
				    json_integer(w));
}

static int rpc_secrets_hosts_ok(const json_t *h)
{
	const json_t *e, *f;
	size_t i, j;

	if (!h)
		return 1;
	if (!json_is_array(h) || json_array_size(h) > RPC_SECRETS_HOSTS_MAX)
		return 0;
	json_array_foreach(h, i, e) {
		if (!json_is_string(e) || json_string_length(e) < 1 ||
		    json_string_length(e) > 253)
			return 0;
		json_array_foreach(h, j, f)
			if (j < i && json_equal(e, f))
				return 0;
	}
	return 1;
}

static int rpc_secrets_store_set(struct rpc_call *call)
{
	static const char *const keys[] = { "name", "value", "kind",
					    "allowedHosts", NULL };
	const char *name = json_string_value(json_object_get(call->params,
							     "name"));
	const char *kind = json_string_value(json_object_get(call->params,
							     "kind"));
	const json_t *val = json_object_get(call->params, "value");
	const json_t *hosts = json_object_get(call->params, "allowedHosts");
	struct store *st = secrets_store();
	char why[300];
	int rc;

	if (rpc_secrets_keys(call, keys) < 0)
		return GW_EINVAL;
	if (!rpc_secrets_name_ok(name) || !json_is_string(val) || !kind ||
	    (strcmp(kind, "secret") != 0 && strcmp(kind, "env") != 0) ||
	    !rpc_secrets_hosts_ok(hosts)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "invalid "
			       "secrets.store.set params: name, value and "
			       "kind (secret|env) are required");
		return GW_EINVAL;
	}
	if (json_string_length(val) > RPC_SECRETS_VALUE_MAX ||
	    strlen(json_string_value(val)) != json_string_length(val) ||
	    (strcmp(kind, "secret") == 0 && json_string_length(val) == 0) ||
	    strcmp(json_string_value(val), "__OPENCLAW_REDACTED__") == 0) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "invalid value "
			       "for %s: empty, over %d bytes, NUL byte or a "
			       "placeholder", name, RPC_SECRETS_VALUE_MAX);
		return GW_EINVAL;
	}
	if (!st) {
		rpc_call_error(call, "UNAVAILABLE", NULL, "secret store "
			       "unavailable");
		return GW_EUNAVAIL;
	}
	rc = secrets_store_set(st, name, kind, json_string_value(val),
			       json_string_length(val), hosts,
			       rpc_secrets_actor(call), why, sizeof(why));
	if (rc != GW_OK) {
		rpc_call_error(call, "UNAVAILABLE", NULL, "%s", why);
		return rc;
	}
	log_info("secrets", "secret store entry %s set by %s", name,
		 rpc_secrets_actor(call));
	rpc_secrets_mutated(call, name);
	return GW_OK;
}

static int rpc_secrets_store_delete(struct rpc_call *call)
{
	static const char *const keys[] = { "name", NULL };
	const char *name = json_string_value(json_object_get(call->params,
							     "name"));
	struct store *st = secrets_store();
	int rc;

	if (rpc_secrets_keys(call, keys) < 0)
		return GW_EINVAL;
	if (!rpc_secrets_name_ok(name)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "invalid "
			       "secrets.store.delete params: name");
		return GW_EINVAL;
	}
	if (!st) {
		rpc_call_error(call, "UNAVAILABLE", NULL, "secret store "
			       "unavailable");
		return GW_EUNAVAIL;
	}
	rc = store_secrets_delete(st, name, rpc_secrets_actor(call));
	if (rc == GW_ENOTFOUND) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "no secret store entry "
			       "%s", name);
		return rc;
	}
	if (rc != GW_OK) {
		rpc_call_error(call, "UNAVAILABLE", NULL, "cannot write the "
			       "secret store");
		return rc;
	}
	log_info("secrets", "secret store entry %s deleted by %s", name,
		 rpc_secrets_actor(call));
	rpc_secrets_mutated(call, name);
	return GW_OK;
}

const struct rpc_method rpc_secrets_methods[] = {
	{"secrets.reload", rpc_secrets_reload, "operator.admin", RPC_F_WORKER,
	 "re-resolve every SecretRef into a new snapshot"},
	{"secrets.resolve", rpc_secrets_resolve, "operator.admin",
	 RPC_F_WORKER, "resolved SecretRef assignments for command targets"},
	{"secrets.store.list", rpc_secrets_store_list, "operator.admin",
	 RPC_F_WORKER, "secret store entries (env values only)"},
	{"secrets.store.set", rpc_secrets_store_set, "operator.admin",
	 RPC_F_WORKER, "set a secret store entry (encrypted at rest)"},
	{"secrets.store.delete", rpc_secrets_store_delete, "operator.admin",
	 RPC_F_WORKER, "soft-delete a secret store entry"},
};
const size_t rpc_secrets_methods_count = ARRAY_SIZE(rpc_secrets_methods);
