/* POST /tools/invoke (reference/http-config-cli.md §1.8): the built-in
 * gateway tools that make sense without a shell, behind the upstream hard
 * deny list and gateway.tools.allow / deny. Tools read SQLite, so they run
 * on a worker and answer through a deferred reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "agent/agent.h"
#include "api/api-int.h"
#include "config/config.h"
#include "core/common.h"
#include "core/workq.h"
#include "net/http.h"

/* Until the agent core implements these (agent.h, "needed by the HTTP
 * face"), weak references keep the link working; missing → 503. */
#pragma weak agent_sessions_list
#pragma weak agent_session_history
#pragma weak agent_session_status

#define TOOLS_NAME_MAX 128

typedef json_t *(*tools_fn)(struct api *a, const char *agent,
			    const char *session_key, const json_t *args,
			    char **err, int *status);

struct tools_entry {
	const char *name;
	tools_fn fn;
	const char *summary;
};

static json_t *tools_sessions_list(struct api *a, const char *agent,
				   const char *key, const json_t *args,
				   char **err, int *status);
static json_t *tools_sessions_history(struct api *a, const char *agent,
				      const char *key, const json_t *args,
				      char **err, int *status);
static json_t *tools_session_status(struct api *a, const char *agent,
				    const char *key, const json_t *args,
				    char **err, int *status);
static json_t *tools_agents_list(struct api *a, const char *agent,
				 const char *key, const json_t *args,
				 char **err, int *status);

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

static json_t *tools_sessions_list(struct api *a, const char *agent,
				   const char *key, const json_t *args,
				   char **err, int *status)
{
	const char *aid = json_string_value(json_object_get(args, "agentId"));

	(void)agent;
	(void)key;
	(void)err;
	(void)status;
	return agent_sessions_list(a->d.agents, aid,
				   tools_limit(args, 100, 1000));
}

static json_t *tools_sessions_history(struct api *a, const char *agent,
				      const char *key, const json_t *args,
				      char **err, int *status)
{
	const char *k = json_string_value(json_object_get(args,
							  "sessionKey"));
	json_t *v;

	(void)agent;
	if (!k)
		k = key;
	v = agent_session_history(a->d.agents, k, tools_limit(args, 50, 500));
	if (!v) {
		*err = xasprintf("Session not found: %s", k);
		*status = 404;
	}
	return v;
}

static json_t *tools_session_status(struct api *a, const char *agent,
				    const char *key, const json_t *args,
				    char **err, int *status)
{
	const char *k = json_string_value(json_object_get(args,
							  "sessionKey"));
	json_t *v;

	(void)agent;
	if (!k)
		k = key;
	v = agent_session_status(a->d.agents, k);
	if (!v) {
		*err = xasprintf("Session not found: %s", k);
		*status = 404;
	}
	return v;
}

static json_t *tools_agents_list(struct api *a, const char *agent,
				 const char *key, const json_t *args,
				 char **err, int *status)
{
	(void)agent;
	(void)key;
	(void)args;
	(void)err;
	(void)status;
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
	char *err = NULL, *text;
	int status = 500;

	if (j->dry_run) {
		tools_reply(j->as, 200, json_pack("{s:b,s:{s:b,s:s}}", "ok", 1,
			"result", "dryRun", 1, "tool", j->t->name));
		goto out;
	}
	res = j->t->fn(j->a, j->agent, j->key, j->args, &err, &status);
	if (!res) {
		tools_reply(j->as, status, json_pack("{s:b,s:{s:s,s:s}}", "ok",
			0, "error", "type", status == 404 ? "not_found" :
			"tool_error", "message", err ? err : "tool failed"));
		goto out;
	}
	text = json_dumps(res, JSON_INDENT(2));
	tools_reply(j->as, 200, json_pack("{s:b,s:{s:[{s:s,s:s}],s:o}}", "ok",
		1, "result", "content", "type", "text", "text", text,
		"details", res));
	free(text);
out:
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
	if (t->fn != tools_agents_list && !agent_session_status) {
		tools_error(r, 503, "unavailable", "Tool not implemented by "
			    "the agent core yet.");
		goto out;
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
