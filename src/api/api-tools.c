/* POST /tools/invoke (reference/http-config-cli.md §1.8): the built-in
 * gateway tools that make sense without a shell, behind the upstream hard
 * deny list and gateway.tools.allow / deny. Tools read SQLite, so they run
 * on a worker and answer through a deferred reply. Results have the
 * upstream tool shapes ({content:[{type:"text",text}], details}; the text
 * is the details as indented JSON, session_status's is its status card);
 * bad arguments are a 400 tool_error with the reason, a failing tool a
 * 500 tool_error "tool execution failed" (the reason is logged), as
 * upstream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "agent/agent.h"
#include "api/api-int.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/http.h"

#define TOOLS_NAME_MAX 128

/* A tool: the result details (new reference), or NULL with *err and
 * *status (400: bad arguments, 500: failed; the message is logged and the
 * caller gets the upstream "tool execution failed"). *text, when set, is
 * the result's text content (default: the details as indented JSON). */
typedef json_t *(*tools_fn)(struct api *a, const char *agent,
			    const char *session_key, const json_t *args,
			    char **err, int *status, char **text);

struct tools_entry {
	const char *name;
	tools_fn fn;
	const char *summary;
};

static json_t *tools_sessions_list(struct api *a, const char *agent,
				   const char *key, const json_t *args,
				   char **err, int *status, char **text);
static json_t *tools_sessions_history(struct api *a, const char *agent,
				      const char *key, const json_t *args,
				      char **err, int *status, char **text);
static json_t *tools_session_status(struct api *a, const char *agent,
				    const char *key, const json_t *args,
				    char **err, int *status, char **text);
static json_t *tools_agents_list(struct api *a, const char *agent,
				 const char *key, const json_t *args,
				 char **err, int *status, char **text);

/* The built-in tools. */
static const struct tools_entry tools_table[] = {
	{ "sessions_list", tools_sessions_list, "List sessions" },
	{ "sessions_history", tools_sessions_history,
	  "Messages of a session" },
	{ "session_status", tools_session_status, "Status of a session" },
	{ "agents_list", tools_agents_list, "Configured agents" },
};

/* Never over HTTP unless gateway.tools.allow lists them (as upstream). */
static const char *const tools_hard_deny[] = {
	"exec", "spawn", "shell", "fs_write", "fs_delete", "fs_move",
	"apply_patch", "sessions_spawn", "sessions_send", "cron", "gateway",
	"nodes",
};

static int tools_listed(const json_t *list, const char *name)
{
	const json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
		if (json_is_string(v) &&
		    strcasecmp(json_string_value(v), name) == 0)
			return 1;
	return 0;
}

/* Policy: deny when in gateway.tools.deny, or in the hard list and not
 * in gateway.tools.allow. */
static int tools_denied(const struct gw_config *cfg, const char *name)
{
	const json_t *allow = cfg && cfg->root ? config_get(cfg->root,
		"gateway.tools.allow") : NULL;
	const json_t *deny = cfg && cfg->root ? config_get(cfg->root,
		"gateway.tools.deny") : NULL;
	size_t i;

	if (tools_listed(deny, name))
		return 1;
	for (i = 0; i < ARRAY_SIZE(tools_hard_deny); i++)
		if (strcasecmp(tools_hard_deny[i], name) == 0)
			return !tools_listed(allow, name);
	return 0;
}

static int tools_limit(const json_t *args, int def, int max)
{
	json_int_t n = json_integer_value(json_object_get(args, "limit"));

	return n <= 0 ? def : n > max ? max : (int)n;
}

/* The session a tool argument names: "main" is the agent's main session,
 * "current" (or nothing) the invocation's; others are canonicalised.
 * NULL with *err (a 400) when the key is not acceptable. */
static char *tools_key(struct api *a, const char *agent, const char *ctx,
		       const char *k, char **err)
{
	char *out = NULL;

	if (!k || !*k || strcmp(k, "current") == 0)
		return xstrdup(ctx);
	if (strcmp(k, "main") == 0)
		return xasprintf("agent:%s:main", agent);
	if (agent_session_key_canon(a->d.agents, k, &out, err) != GW_OK)
		return NULL;
	return out;
}

static json_t *tools_sessions_list(struct api *a, const char *agent,
				   const char *key, const json_t *args,
				   char **err, int *status, char **text)
{
	(void)agent;
	(void)key;
	(void)err;
	(void)status;
	(void)text;
	return agent_sessions_list(a->d.agents, args);
}

static json_t *tools_sessions_history(struct api *a, const char *agent,
				      const char *key, const json_t *args,
				      char **err, int *status, char **text)
{
	const char *k = json_string_value(json_object_get(args,
							  "sessionKey"));
	char *sk;
	json_t *v;

	(void)text;
	if (!k || !*k) {
		*err = xstrdup("sessionKey required");
		*status = 400;
		return NULL;
	}
	if (!(sk = tools_key(a, agent, key, k, err))) {
		*status = 400;
		return NULL;
	}
	v = agent_session_history(a->d.agents, sk, tools_limit(args, 0, 1000),
		json_is_true(json_object_get(args, "includeTools")));
	if (!v)
		/* The tool's own error shape (a 200, as upstream). */
		v = json_pack("{s:s,s:s++}", "status", "error", "error",
			      "Session not found: ", k,
			      " (use the full sessionKey from sessions_list)");
	free(sk);
	return v;
}

/* The status card of a session (the tool's text). */
static char *tools_status_text(const json_t *st)
{
	const char *model = json_string_value(json_object_get(st, "model"));
	const char *prov = json_string_value(json_object_get(st,
							     "modelProvider"));
	const char *def = json_string_value(json_object_get(st,
							    "defaultModel"));
	const char *status = json_string_value(json_object_get(st, "status"));
	const char *label = json_string_value(json_object_get(st, "label"));
	const char *over = json_string_value(json_object_get(st,
							     "modelOverride"));
	json_int_t upd = json_integer_value(json_object_get(st, "updatedAt"));
	int64_t ago = (util_now_ms() - (int64_t)upd) / 1000;
	char *m, *out;

	if (over)
		m = xasprintf("%s (session override)", over);
	else if (model)
		m = prov ? xasprintf("%s/%s", prov, model) : xstrdup(model);
	else
		m = xstrdup(def ? def : "not configured");
	out = xasprintf("\U0001F99E clawgate\n"
			"\U0001F9E0 Model: %s\n"
			"\U0001F9EE Tokens: %lld in / %lld out\n"
			"\U0001F9F5 Session: %s%s%s%s \u2022 "
			"updated %llds ago\n"
			"\u2699\ufe0f Runtime: %s%s%s",
			m, (long long)json_integer_value(json_object_get(st,
				"inputTokens")),
			(long long)json_integer_value(json_object_get(st,
				"outputTokens")),
			json_string_value(json_object_get(st, "key")),
			label ? " (" : "", label ? label : "",
			label ? ")" : "", (long long)(ago < 0 ? 0 : ago),
			json_is_true(json_object_get(st, "running")) ?
			"running" : "idle", status ? " \u00b7 last run: " : "",
			status ? status : "");
	free(m);
	return out;
}

static json_t *tools_session_status(struct api *a, const char *agent,
				    const char *key, const json_t *args,
				    char **err, int *status, char **text)
{
	const char *k = json_string_value(json_object_get(args,
							  "sessionKey"));
	const json_t *model = json_object_get(args, "model");
	json_t *st = NULL, *out = NULL, *patch, *entry = NULL;
	const char *m, *old, *nw;
	char *sk, *before = NULL;
	int changed = 0;

	if (model && !json_is_string(model)) {
		*err = xstrdup("model must be a string");
		*status = 400;
		return NULL;
	}
	if (!(sk = tools_key(a, agent, key, k, err))) {
		*status = 400;
		return NULL;
	}
	st = agent_session_status(a->d.agents, sk);
	if (!st) {
		*err = xasprintf("Unknown sessionKey: %s", sk);
		*status = 500;
		goto out;
	}
	if (model) {
		m = json_string_value(model);
		old = json_string_value(json_object_get(st, "modelOverride"));
		before = old ? xstrdup(old) : NULL;
		patch = json_pack("{s:o}", "model", !*m ||
				  strcasecmp(m, "default") == 0 ?
				  json_null() : json_string(m));
		if (session_patch(a->d.agents, sk, patch, &entry, err) !=
		    GW_OK) {
			json_decref(patch);
			*status = 400;
			goto out;
		}
		json_decref(patch);
		json_decref(entry);
		json_decref(st);
		st = agent_session_status(a->d.agents, sk);
		if (!st) {
			*err = xasprintf("Unknown sessionKey: %s", sk);
			*status = 500;
			goto out;
		}
		nw = json_string_value(json_object_get(st, "modelOverride"));
		changed = (before == NULL) != (nw == NULL) ||
			  (before && nw && strcmp(before, nw) != 0);
	}
	*text = tools_status_text(st);
	out = json_pack("{s:b,s:s,s:O,s:b,s:O,s:s}", "ok", 1, "sessionKey",
			sk, "agentId", json_object_get(st, "agentId"),
			"changedModel", changed, "stateVersion",
			json_object_get(st, "updatedAt"), "statusText", *text);
	if (model) {
		const char *ov = json_string_value(json_object_get(st,
			"modelOverride"));
		const char *slash = ov ? strchr(ov, '/') : NULL;

		if (ov && slash) {
			json_object_set_new(out, "model", json_string(slash +
								      1));
			json_object_set_new(out, "modelProvider", json_stringn(
				ov, (size_t)(slash - ov)));
		} else if (ov) {
			json_object_set_new(out, "model", json_string(ov));
		} else if (json_object_get(st, "model")) {
			json_object_set(out, "model", json_object_get(st,
								      "model"));
			if (json_object_get(st, "modelProvider"))
				json_object_set(out, "modelProvider",
					json_object_get(st, "modelProvider"));
		}
		json_object_set_new(out, "modelOverride",
				    ov ? json_string(ov) : json_null());
	}
out:
	json_decref(st);
	free(sk);
	free(before);
	return out;
}

static json_t *tools_agents_list(struct api *a, const char *agent,
				 const char *key, const json_t *args,
				 char **err, int *status, char **text)
{
	(void)agent;
	(void)key;
	(void)args;
	(void)err;
	(void)status;
	(void)text;
	return agent_list(a->d.agents);
}

struct tools_job {
	struct api *a;
	struct http_async *as;
	const struct tools_entry *t;
	char *agent, *key;
	json_t *args;
	int dry_run;
};

static void tools_reply(struct http_async *as, int status, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);

	http_async_reply_json(as, status, s);
	free(s);
	json_decref(v);
}

static void tools_run(void *arg)
{
	struct tools_job *j = arg;
	json_t *res = NULL;
	char *err = NULL, *text = NULL;
	int status = 500;

	if (j->dry_run) {
		tools_reply(j->as, 200, json_pack("{s:b,s:{s:b,s:s}}", "ok", 1,
			"result", "dryRun", 1, "tool", j->t->name));
		goto out;
	}
	res = j->t->fn(j->a, j->agent, j->key, j->args, &err, &status,
		       &text);
	if (!res) {
		/* As upstream: argument errors are told, failures are
		 * logged and answered with a sanitized message. */
		if (status >= 500)
			log_warn("api", "tools-invoke: %s failed: %s",
				 j->t->name, err ? err : "?");
		tools_reply(j->as, status >= 500 ? 500 : 400, json_pack(
			"{s:b,s:{s:s,s:s}}", "ok", 0, "error", "type",
			"tool_error", "message", status < 500 && err ? err :
			"tool execution failed"));
		goto out;
	}
	if (!text)
		text = json_dumps(res, JSON_INDENT(2));
	tools_reply(j->as, 200, json_pack("{s:b,s:{s:[{s:s,s:s}],s:o}}", "ok",
		1, "result", "content", "type", "text", "text", text,
		"details", res));
out:
	free(text);
	free(err);
	free(j->agent);
	free(j->key);
	json_decref(j->args);
	free(j);
}

static void tools_error(struct http_req *r, int status, const char *type,
			const char *msg)
{
	api_reply_json(r, status, json_pack("{s:b,s:{s:s,s:s}}", "ok", 0,
		"error", "type", type, "message", msg));
}

void api_tools_invoke(struct api *a, struct http_req *r,
		      struct gw_config *cfg)
{
	json_t *body = NULL, *args = NULL;
	const json_t *ra;
	const char *name, *action, *key, *aid;
	const struct tools_entry *t = NULL;
	struct tools_job *j;
	char *msg = NULL, *agent = NULL, *skey = NULL;
	size_t i;

	if (!(body = api_body_object(r)))
		return;
	name = json_string_value(json_object_get(body, "name"));
	if (!name)
		name = json_string_value(json_object_get(body, "tool"));
	if (!name || !*name || strlen(name) > TOOLS_NAME_MAX) {
		tools_error(r, 400, "invalid_request", "tool is required");
		goto out;
	}
	ra = json_object_get(body, "args");
	if (ra && !json_is_object(ra) && !json_is_null(ra)) {
		tools_error(r, 400, "invalid_request",
			    "args must be an object");
		goto out;
	}
	args = json_is_object(ra) ? json_deep_copy(ra) : json_object();
	action = json_string_value(json_object_get(body, "action"));
	if (action && !json_object_get(args, "action"))
		json_object_set_new(args, "action", json_string(action));
	for (i = 0; i < ARRAY_SIZE(tools_table); i++)
		if (strcmp(tools_table[i].name, name) == 0)
			t = &tools_table[i];
	if (!t || tools_denied(cfg, name)) {
		msg = xasprintf("Tool not available: %s", name);
		tools_error(r, 404, "not_found", msg);
		goto out;
	}
	if (!a->d.agents || !a->d.workers) {
		tools_error(r, 503, "unavailable", "Agent runtime unavailable.");
		goto out;
	}
	key = json_string_value(json_object_get(body, "sessionKey"));
	aid = json_string_value(json_object_get(body, "agentId"));
	if (aid && !agent_exists(a->d.agents, aid)) {
		msg = xasprintf("Unknown agent '%s'.", aid);
		tools_error(r, 400, "invalid_request", msg);
		goto out;
	}
	agent = xstrdup(aid ? aid : agent_default_id(a->d.agents));
	if (!key || !*key || strcmp(key, "main") == 0) {
		skey = xasprintf("agent:%s:main", agent);
	} else if (agent_session_key_check(key) != AGENT_KEY_OK) {
		tools_error(r, 400, "invalid_request",
			    agent_session_key_check(key) == AGENT_KEY_RESERVED
			    ? "sessionKey cannot use reserved internal "
			      "session namespaces"
			    : "invalid sessionKey");
		goto out;
	} else {
		/* agent:<id>:... must name the same agent as agentId. */
		if (aid && strncmp(key, "agent:", 6) == 0) {
			size_t n = strlen(aid);

			if (strncasecmp(key + 6, aid, n) != 0 ||
			    key[6 + n] != ':') {
				tools_error(r, 400, "invalid_request",
					    "agentId conflicts with "
					    "sessionKey");
				goto out;
			}
		}
		skey = xstrdup(key);
	}
	j = xcalloc(1, sizeof(*j));
	j->a = a;
	j->t = t;
	j->agent = agent;
	j->key = skey;
	j->args = args;
	j->dry_run = json_is_true(json_object_get(body, "dryRun"));
	agent = skey = NULL;
	args = NULL;
	j->as = http_reply_later(r);
	if (workq_post(a->d.workers, tools_run, j) != 0) {
		http_async_reply_json(j->as, 503, "{\"ok\":false,\"error\":{"
				      "\"type\":\"unavailable\",\"message\":"
				      "\"server busy\"}}");
		json_decref(j->args);
		free(j->agent);
		free(j->key);
		free(j);
	}
out:
	json_decref(body);
	json_decref(args);
	free(msg);
	free(agent);
	free(skey);
}

size_t api_tools_count(void)
{
	return ARRAY_SIZE(tools_table);
}

const char *api_tools_name(size_t i, const char **summary)
{
	if (i >= ARRAY_SIZE(tools_table))
		return NULL;
	if (summary)
		*summary = tools_table[i].summary;
	return tools_table[i].name;
}
