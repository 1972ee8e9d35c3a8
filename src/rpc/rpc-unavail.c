/* Methods of features clawgate does not have (exec and plugin approvals,
 * questions, talk/voice, themes, tasks, progress cards, environments,
 * skills, self-update). Reads answer the true state in the published
 * shape (empty lists, nothing enabled, the effective deny policy); writes
 * are refused with UNAVAILABLE naming the feature. THE table is
 * RPC_UNAVAIL_TABLE below; doc/unavailable-methods.md lists the same rows
 * with why (tests/integration/test_unavail.py holds the two together). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "core/common.h"
#include "core/util.h"
#include "rpc/rpc-int.h"

/* ---- read answers ------------------------------------------------------ */

static json_t *rpc_unavail_empty_array(struct rpc_call *call)
{
	(void)call;
	return json_array();
}

/* clawgate runs no exec tools: the effective policy denies everything. */
static json_t *rpc_unavail_exec_policy(struct rpc_call *call)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:b}", "security", "deny", "ask",
			      "off", "askFallback", "deny", "autoAllowSkills",
			      0);
	json_t *file = json_pack("{s:i,s:O,s:{}}", "version", 1, "defaults",
				 d, "agents");
	char *text = json_dumps(file, JSON_COMPACT | JSON_SORT_KEYS);
	char hash[65];

	(void)call;
	util_sha256_hex(text, strlen(text), hash);
	free(text);
	return json_pack("{s:s,s:b,s:s,s:o,s:o}", "path",
			 "(none: clawgate runs no exec tools)", "exists", 0,
			 "hash", hash, "file", file, "resolvedDefaults", d);
}

static json_t *rpc_unavail_questions(struct rpc_call *call)
{
	(void)call;
	return json_pack("{s:[]}", "questions");
}

static json_t *rpc_unavail_talk_catalog(struct rpc_call *call)
{
	(void)call;
	return json_pack("{s:[],s:[],s:[],s:{s:b,s:[]},s:{s:b,s:[]},"
			 "s:{s:b,s:[]}}", "modes", "transports", "brains",
			 "speech", "ready", 0, "providers", "transcription",
			 "ready", 0, "providers", "realtime", "ready", 0,
			 "providers");
}

/* Themes are the Control UI's own; the gateway stores no choice: the
 * current one is the UI's default, "claw". */
static json_t *rpc_unavail_themes(struct rpc_call *call)
{
	(void)call;
	return json_pack("{s:{s:s,s:s,s:s,s:{}},s:{s:s,s:s},s:[{s:s,s:s}]}",
			 "current", "id", "claw", "mode", "system", "scope",
			 "gateway", "overrides", "theme", "id", "claw", "name",
			 "Claw", "themes", "id", "claw", "name", "Claw");
}

static json_t *rpc_unavail_tasks(struct rpc_call *call)
{
	(void)call;
	return json_pack("{s:[]}", "tasks");
}

static json_t *rpc_unavail_progress_card(struct rpc_call *call)
{
	(void)call;
	return json_pack("{s:n}", "card");
}

static json_t *rpc_unavail_skills(struct rpc_call *call)
{
	const char *sd = call->srv->d.state_dir;
	char dir[1024], ws[1024] = "";
	json_t *list, *a;
	size_t i;

	/* The default agent's workspace, where skills would live. */
	if (call->srv->d.agents) {
		list = agent_list(call->srv->d.agents);
		json_array_foreach(json_object_get(list, "agents"), i, a)
			if (json_equal(json_object_get(a, "id"),
				       json_object_get(list, "defaultId")) &&
			    json_is_string(json_object_get(a, "workspace")))
				snprintf(ws, sizeof(ws), "%s",
					 json_string_value(json_object_get(
						 a, "workspace")));
		json_decref(list);
	}
	snprintf(dir, sizeof(dir), "%s/skills", sd ? sd : "");
	return json_pack("{s:s,s:s,s:[]}", "workspaceDir", ws,
			 "managedSkillsDir", dir, "skills");
}

/* No plugins: an empty catalog that cannot be changed. */
static json_t *rpc_unavail_plugins(struct rpc_call *call)
{
	(void)call;
	return json_pack("{s:[],s:[],s:b}", "plugins", "diagnostics",
			 "mutationAllowed", 0);
}

static json_t *rpc_unavail_update(struct rpc_call *call)
{
	(void)call;
	return json_pack("{s:n,s:n}", "sentinel", "updateAvailable");
}

/* ---- the table ----------------------------------------------------------- */

typedef json_t *(*rpc_unavail_read_fn)(struct rpc_call *call);

/* X(method, scope, flags, feature, read answer or NULL = refused).
 * RPC_F_LOCAL: the published 2026.9.1 schema lacks the method (the
 * 2026.9.6 Control UI calls it unconditionally): callable, not
 * advertised in features.methods. */
#define RPC_UNAVAIL_TABLE(X)						\
	X("environments.create", "operator.admin", 0,			\
	  "cloud worker environments", NULL)				\
	X("environments.destroy", "operator.admin", 0,			\
	  "cloud worker environments", NULL)				\
	X("exec.approval.list", "operator.approvals", 0,		\
	  "exec approvals", rpc_unavail_empty_array)			\
	X("exec.approval.resolve", "operator.approvals", 0,		\
	  "exec approvals", NULL)					\
	X("exec.approvals.get", "operator.admin", 0,			\
	  "exec approvals", rpc_unavail_exec_policy)			\
	X("exec.approvals.set", "operator.admin", 0,			\
	  "exec approvals", NULL)					\
	X("node.pluginTools.update", "node", RPC_F_NODE,		\
	  "plugin tools", NULL)						\
	X("node.skills.update", "node", RPC_F_NODE,			\
	  "skills", NULL)						\
	X("openclaw.approval.list", "operator.approvals", 0,		\
	  "system agent approvals", rpc_unavail_empty_array)		\
	X("plugin.approval.list", "operator.approvals", 0,		\
	  "plugin approvals", rpc_unavail_empty_array)			\
	X("plugin.approval.resolve", "operator.approvals", 0,		\
	  "plugin approvals", NULL)					\
	X("plugins.list", "operator.read", 0,				\
	  "plugins", rpc_unavail_plugins)				\
	X("progressCard.get", "operator.read", 0,			\
	  "progress cards", rpc_unavail_progress_card)			\
	X("progressCard.put", "operator.write", 0,			\
	  "progress cards", NULL)					\
	X("question.list", "operator.questions", 0,			\
	  "questions", rpc_unavail_questions)				\
	X("question.resolve", "operator.questions", 0,			\
	  "questions", NULL)						\
	X("skills.install", "operator.admin", 0,			\
	  "skills", NULL)						\
	X("skills.status", "operator.read", 0,				\
	  "skills", rpc_unavail_skills)					\
	X("skills.update", "operator.admin", 0,				\
	  "skills", NULL)						\
	X("talk.catalog", "operator.read", 0,				\
	  "talk/voice", rpc_unavail_talk_catalog)			\
	X("talk.mode", "operator.talk", 0,				\
	  "talk/voice", NULL)						\
	X("talk.speak", "operator.talk", 0,				\
	  "talk/voice", NULL)						\
	X("tasks.cancel", "operator.write", 0,				\
	  "tasks", NULL)						\
	X("tasks.list", "operator.read", 0,				\
	  "tasks", rpc_unavail_tasks)					\
	X("themes.list", "operator.read", RPC_F_LOCAL,			\
	  "themes", rpc_unavail_themes)					\
	X("themes.set", "operator.write", RPC_F_LOCAL,			\
	  "themes", NULL)						\
	X("update.run", "operator.admin", 0,				\
	  "self-update", NULL)						\
	X("update.status", "operator.admin", 0,				\
	  "self-update", rpc_unavail_update)

static const struct {
	const char *method;
	const char *feature;
	rpc_unavail_read_fn read;
} rpc_unavail_rows[] = {
#define RPC_UNAVAIL_ROW(m, s, fl, f, r) {m, f, r},
	RPC_UNAVAIL_TABLE(RPC_UNAVAIL_ROW)
#undef RPC_UNAVAIL_ROW
};

static int rpc_unavail_call(struct rpc_call *call)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rpc_unavail_rows); i++) {
		if (strcmp(rpc_unavail_rows[i].method, call->method) != 0)
			continue;
		if (rpc_unavail_rows[i].read) {
			call->payload = rpc_unavail_rows[i].read(call);
			return GW_OK;
		}
		rpc_call_error(call, "UNAVAILABLE",
			       json_pack("{s:s,s:s}", "code",
					 "FEATURE_UNAVAILABLE", "feature",
					 rpc_unavail_rows[i].feature),
			       "%s is not available: clawgate has no %s "
			       "feature (doc/unavailable-methods.md)",
			       call->method, rpc_unavail_rows[i].feature);
		return GW_EUNAVAIL;
	}
	return GW_EINVAL;
}

const struct rpc_method rpc_unavail_methods[] = {
#define RPC_UNAVAIL_METHOD(m, s, fl, f, r)				\
	{m, rpc_unavail_call, s, fl, "feature not in clawgate: " f},
	RPC_UNAVAIL_TABLE(RPC_UNAVAIL_METHOD)
#undef RPC_UNAVAIL_METHOD
};
const size_t rpc_unavail_methods_count = ARRAY_SIZE(rpc_unavail_methods);
