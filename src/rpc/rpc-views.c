/* Read methods the Control UI's chat, sessions and settings views call:
 * chat.startup, chat.metadata, sessions.describe, sessions.branches.list,
 * sessions.companion.state, sessions.observer.visibility,
 * agent.identity.get, models.authStatus, tools.catalog. They answer from
 * the agent runtime (sessions and transcripts in SQLite, the config and
 * the agent workspace): worker methods. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "api/api.h"
#include "core/common.h"
#include "core/util.h"
#include "rpc/rpc-int.h"

#define VIEWS_HISTORY_DEFAULT 200
#define VIEWS_HISTORY_MAX 1000
#define VIEWS_IDENTITY_FILE_MAX 65536
#define VIEWS_HEADLINE_MAX 120

/* The session key param `name` in canonical form, or the default agent's
 * main session when absent and dflt is set. NULL with the error set. */
static char *rpc_views_key(struct rpc_call *call, const char *name, int dflt)
{
	const json_t *v = json_object_get(call->params, name);
	const char *agent;

	if (rpc_call_need_agents(call) != 0)
		return NULL;
	if (!v && dflt) {
		agent = json_string_value(json_object_get(call->params,
							  "agentId"));
		return agent_session_key_main(agent && *agent ? agent :
			agent_default_id(call->srv->d.agents));
	}
	if (!json_is_string(v) || !json_string_length(v)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid %s params: must have required "
			       "property '%s'", call->method, name);
		return NULL;
	}
	return rpc_sessions_canon(call, json_string_value(v));
}

/* chat.startup: chat.history of the requested (or main) session plus how
 * the key was resolved. */
static int rpc_views_chat_startup(struct rpc_call *call)
{
	const json_t *v = json_object_get(call->params, "limit");
	int64_t limit = VIEWS_HISTORY_DEFAULT;
	char *key, *agent;

	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > VIEWS_HISTORY_MAX)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid chat.startup params: at /limit: must "
			       "be integer in 1..%d", VIEWS_HISTORY_MAX);
		return GW_EINVAL;
	}
	if (v)
		limit = json_integer_value(v);
	if (!(key = rpc_views_key(call, "sessionKey", 1)))
		return GW_EINVAL;
	agent = agent_session_key_agent(key);
	call->payload = session_history(call->srv->d.agents, key, (int)limit,
					0);
	json_object_set_new(call->payload, "resolution",
			    json_pack("{s:b,s:s,s:s}", "ok", 1, "key", key,
				      "agentId", agent ? agent : "main"));
	free(agent);
	free(key);
	return GW_OK;
}

static int rpc_views_chat_metadata(struct rpc_call *call)
{
	const char *agent = json_string_value(json_object_get(call->params,
							      "agentId"));
	json_t *m;

	if (rpc_call_need_agents(call) != 0)
		return GW_EUNAVAIL;
	m = agent_models(call->srv->d.agents);
	call->payload = json_pack("{s:s,s:O}", "agentId",
				  agent && *agent ? agent :
				  agent_default_id(call->srv->d.agents),
				  "models", json_object_get(m, "models"));
	json_decref(m);
	return GW_OK;
}

static int rpc_views_sessions_describe(struct rpc_call *call)
{
	json_t *row;
	char *key;

	if (!(key = rpc_views_key(call, "key", 0)))
		return GW_EINVAL;
	row = session_get(call->srv->d.agents, key);
	call->payload = json_pack("{s:o}", "session",
				  row ? row : json_null());
	free(key);
	return GW_OK;
}

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static void rpc_views_cut_utf8(char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n <= max)
		return;
	i = max;
	/* Back to the lead byte of the sequence that crosses the cut. */
	while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
		i--;
	s[i] = 0;
}

static char *rpc_views_iso(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char b[40];

	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("%s.%03dZ", b, (int)(ms % 1000));
}

/* Transcripts are linear: one branch, the current one, when the session
 * has messages. */
static int rpc_views_branches(struct rpc_call *call)
{
	json_t *row, *hist, *last, *branches;
	const char *text, *mid;
	char *headline, *iso, *key;
	size_t n;
	int64_t count, ts;

	if (!(key = rpc_views_key(call, "sessionKey", 1)))
		return GW_EINVAL;
	branches = json_array();
	row = session_get(call->srv->d.agents, key);
	hist = row ? session_history(call->srv->d.agents, key, 1, 0) : NULL;
	n = json_array_size(json_object_get(hist, "messages"));
	last = n ? json_array_get(json_object_get(hist, "messages"), n - 1)
		 : NULL;
	mid = json_string_value(json_object_get(last, "messageId"));
	if (mid) {
		text = json_string_value(json_object_get(row,
							 "lastMessagePreview"));
		headline = xstrdup(text && *text ? text : "current branch");
		rpc_views_cut_utf8(headline, VIEWS_HEADLINE_MAX);
		count = json_integer_value(json_object_get(hist, "total"));
		if (!count)
			count = json_integer_value(json_object_get(last,
								"messageSeq"));
		ts = json_integer_value(json_object_get(row, "updatedAt"));
		iso = rpc_views_iso(ts > 0 ? ts : util_now_ms());
		json_array_append_new(branches, json_pack(
			"{s:s,s:s,s:I,s:s,s:b}", "leafEntryId", mid,
			"headline", headline, "messageCount",
			(json_int_t)count, "updatedAt", iso, "active", 1));
		free(iso);
		free(headline);
	}
	json_decref(hist);
	json_decref(row);
	free(key);
	call->payload = json_pack("{s:o}", "branches", branches);
	return GW_OK;
}

/* clawgate has no session companion: no exchanges. */
static int rpc_views_companion_state(struct rpc_call *call)
{
	char *key = rpc_views_key(call, "sessionKey", 1);

	if (!key)
		return GW_EINVAL;
	free(key);
	call->payload = json_pack("{s:[]}", "exchanges");
	return GW_OK;
}

/* The observer is a UI display preference: acknowledged, nothing to keep
 * (clawgate has no session observer). */
static int rpc_views_observer_visibility(struct rpc_call *call)
{
	call->payload = json_pack("{s:b}", "ok", 1);
	return GW_OK;
}

/* ---- agent.identity.get ------------------------------------------------- */

/* Strip markdown emphasis around an IDENTITY.md value, in place. */
static char *rpc_views_trim(char *s)
{
	char *e;

	while (*s && (isspace((unsigned char)*s) || strchr("*_`", *s)))
		s++;
	e = s + strlen(s);
	while (e > s && (isspace((unsigned char)e[-1]) ||
			 strchr("*_`", e[-1])))
		*--e = 0;
	return s;
}

/* "- Name: X" lines of <workspace>/IDENTITY.md (the upstream format);
 * placeholders in parentheses are skipped. */
static json_t *rpc_views_identity_file(const char *workspace)
{
	char *path = xasprintf("%s/IDENTITY.md", workspace);
	char line[1024], *p, *c, *label, *val;
	json_t *o = json_object();
	size_t total = 0;
	FILE *f = fopen(path, "re");

	free(path);
	if (!f)
		return o;
	while (fgets(line, sizeof(line), f) &&
	       (total += strlen(line)) < VIEWS_IDENTITY_FILE_MAX) {
		line[strcspn(line, "\r\n")] = 0;
		p = line + strspn(line, " \t");
		if (*p == '-')
			p += 1 + strspn(p + 1, " \t");
		if (!(c = strchr(p, ':')))
			continue;
		*c = 0;
		label = rpc_views_trim(p);
		val = rpc_views_trim(c + 1);
		if (!*val || *val == '(')
			continue;
		for (p = label; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (strcmp(label, "name") == 0 || strcmp(label, "emoji") == 0 ||
		    strcmp(label, "avatar") == 0)
			json_object_set_new(o, label, json_string(val));
	}
	fclose(f);
	return o;
}

static const char *rpc_views_avatar_status(const char *a)
{
	if (strncmp(a, "http://", 7) == 0 || strncmp(a, "https://", 8) == 0)
		return "remote";
	if (strncmp(a, "data:", 5) == 0)
		return "data";
	if (strchr(a, '/') || strchr(a, '.'))
		return "local";
	return NULL;
}

static int rpc_views_identity(struct rpc_call *call)
{
	const char *want = json_string_value(json_object_get(call->params,
							     "agentId"));
	json_t *list, *a, *found = NULL, *file, *ent = NULL;
	const char *name = NULL, *src = "default", *avatar = NULL, *emoji;
	const char *ws, *st;
	size_t i;

	if (rpc_call_need_agents(call) != 0)
		return GW_EUNAVAIL;
	if (!want || !*want)
		want = agent_default_id(call->srv->d.agents);
	list = agent_list(call->srv->d.agents);
	json_array_foreach(json_object_get(list, "agents"), i, a)
		if (strcasecmp(json_string_value(json_object_get(a, "id")),
			       want) == 0)
			found = a;
	if (!found) {
		json_decref(list);
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown agent id \"%s\"", want);
		return GW_EINVAL;
	}
	ent = json_object_get(json_object_get(call->cfg->root,
					      "agents"), "entries");
	ent = json_object_get(json_object_get(ent,
		json_string_value(json_object_get(found, "id"))), "identity");
	ws = json_string_value(json_object_get(found, "workspace"));
	file = ws ? rpc_views_identity_file(ws) : json_object();
	if ((name = json_string_value(json_object_get(ent, "name")))) {
		src = "config";
	} else if ((name = json_string_value(json_object_get(found,
							      "name")))) {
		src = "agent";
	} else if ((name = json_string_value(json_object_get(file,
							      "name")))) {
		src = "workspace";
	} else {
		name = "Assistant";
	}
	avatar = json_string_value(json_object_get(ent, "avatar"));
	if (!avatar)
		avatar = json_string_value(json_object_get(file, "avatar"));
	emoji = json_string_value(json_object_get(ent, "emoji"));
	if (!emoji)
		emoji = json_string_value(json_object_get(file, "emoji"));
	call->payload = json_pack("{s:O,s:s,s:s}", "agentId",
				  json_object_get(found, "id"), "name", name,
				  "nameSource", src);
	st = avatar ? rpc_views_avatar_status(avatar) : NULL;
	if (avatar && st) {
		json_object_set_new(call->payload, "avatar",
				    json_string(avatar));
		json_object_set_new(call->payload, "avatarSource",
				    json_string(avatar));
		json_object_set_new(call->payload, "avatarStatus",
				    json_string(st));
	} else {
		json_object_set_new(call->payload, "avatarStatus",
				    json_string("none"));
		json_object_set_new(call->payload, "avatarReason",
				    json_string(avatar ? "unsupported" :
							 "missing"));
	}
	if (emoji)
		json_object_set_new(call->payload, "emoji", json_string(emoji));
	json_decref(file);
	json_decref(list);
	return GW_OK;
}

/* clawgate keeps provider credentials in the config (models.providers.*.
 * apiKey), with no auth profiles or OAuth: the per-provider auth status
 * the UI shows does not exist here. */
static int rpc_views_models_auth(struct rpc_call *call)
{
	call->payload = json_pack(
		"{s:I,s:[],s:{s:s,s:s}}", "ts", (json_int_t)util_now_ms(),
		"providers", "unavailable", "code",
		"MODEL_AUTH_PROFILES_UNAVAILABLE", "message",
		"clawgate reads provider credentials from the config "
		"(models.providers.*.apiKey); it has no auth profiles.");
	return GW_OK;
}

static int rpc_views_tools_catalog(struct rpc_call *call)
{
	const char *agent = json_string_value(json_object_get(call->params,
							      "agentId"));
	const char *name, *summary;
	json_t *tools = json_array();
	size_t i;

	for (i = 0; (name = api_tools_name(i, &summary)); i++)
		json_array_append_new(tools, json_pack(
			"{s:s,s:s,s:s,s:s,s:s,s:[s,s,s]}", "id", name, "label",
			name, "description", summary, "source", "core",
			"risk", "low", "defaultProfiles", "coding",
			"messaging", "full"));
	call->payload = json_pack(
		"{s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}],"
		"s:[{s:s,s:s,s:s,s:o}]}",
		"agentId", agent && *agent ? agent :
		(call->srv->d.agents ? agent_default_id(call->srv->d.agents)
				     : "main"),
		"profiles", "id", "minimal", "label", "Minimal", "id",
		"coding", "label", "Coding", "id", "messaging", "label",
		"Messaging", "id", "full", "label", "Full", "groups", "id",
		"sessions", "label", "Sessions and agents", "source", "core",
		"tools", tools);
	return GW_OK;
}

const struct rpc_method rpc_views_methods[] = {
	{"chat.startup", rpc_views_chat_startup, "operator.read",
	 RPC_F_WORKER, "chat history of a session plus its resolution"},
	{"chat.metadata", rpc_views_chat_metadata, "operator.read",
	 RPC_F_WORKER, "models the chat composer offers"},
	{"sessions.describe", rpc_views_sessions_describe, "operator.read",
	 RPC_F_WORKER, "one session row, or null"},
	{"sessions.branches.list", rpc_views_branches, "operator.read",
	 RPC_F_WORKER, "transcript branches (one: transcripts are linear)"},
	{"sessions.companion.state", rpc_views_companion_state,
	 "operator.read", RPC_F_WORKER,
	 "session companion exchanges (none: no companion)"},
	{"sessions.observer.visibility", rpc_views_observer_visibility,
	 "operator.read", 0, "acknowledge the UI's observer toggle"},
	{"agent.identity.get", rpc_views_identity, "operator.read",
	 RPC_F_WORKER, "agent name/avatar from config and IDENTITY.md"},
	{"models.authStatus", rpc_views_models_auth, "operator.read", 0,
	 "provider auth profiles (none: keys live in the config)"},
	{"tools.catalog", rpc_views_tools_catalog, "operator.read", 0,
	 "the gateway's built-in tools"},
};
const size_t rpc_views_methods_count = ARRAY_SIZE(rpc_views_methods);
