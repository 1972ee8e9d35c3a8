/* The WebSocket face: connections, the dispatcher (frame validation, method
 * table, role and scope policy, worker hand-off) and event fan-out. Runs on
 * the lws thread except where a function says "any thread". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/ws.h"
#include "presence/presence.h"
#include "channel/channel.h"
#include "rpc/rpc-int.h"
#include "rpc/rpc-json.h"
#include "store/store-sessions.h"

#define RPC_PREAUTH_MAX_PAYLOAD (64u * 1024)
#define RPC_MAX_PAYLOAD (25u * 1024 * 1024)
#define RPC_MAX_BAD_ROLE_CALLS 10

/* THE method -> scope policy: the `methods` map of protocol.schema.json in
 * @openclaw/gateway-protocol@2026.9.1 (reference/ws-protocol.md §4.3), one
 * row per published method, sorted by name (bsearch). Columns: method, the
 * published scope, and for "dynamic" methods the minimum the dispatcher
 * enforces (the handler checks the rest, e.g. agent /reset needs admin).
 * "node" = node-role method. A method not listed here uses its group
 * table's scope column; unknown methods need operator.admin. */
struct rpc_scope_row {
	const char *name;
	const char *scope;
	const char *dynamic_base;
};

static const struct rpc_scope_row rpc_scope_table[] = {
	{"agent", "dynamic", "operator.write"},
	{"agent.identity.get", "operator.read", NULL},
	{"agent.wait", "operator.write", NULL},
	{"agents.create", "operator.admin", NULL},
	{"agents.delete", "operator.admin", NULL},
	{"agents.files.get", "operator.read", NULL},
	{"agents.files.list", "operator.read", NULL},
	{"agents.files.set", "operator.admin", NULL},
	{"agents.list", "operator.read", NULL},
	{"agents.update", "operator.admin", NULL},
	{"agents.workspace.get", "operator.read", NULL},
	{"agents.workspace.list", "operator.read", NULL},
	{"approval.get", "operator.approvals", NULL},
	{"approval.history", "operator.approvals", NULL},
	{"approval.resolve", "operator.approvals", NULL},
	{"artifacts.download", "operator.read", NULL},
	{"artifacts.get", "operator.read", NULL},
	{"artifacts.list", "operator.read", NULL},
	{"assistant.media.get", "operator.read", NULL},
	{"attach.grant", "operator.admin", NULL},
	{"attach.revoke", "operator.admin", NULL},
	{"audit.activity.list", "operator.read", NULL},
	{"audit.list", "operator.read", NULL},
	{"audit.run.inspect", "operator.read", NULL},
	{"board.action", "operator.write", NULL},
	{"board.data.read", "operator.read", NULL},
	{"board.event", "operator.write", NULL},
	{"board.get", "operator.read", NULL},
	{"board.prompt.authorize", "operator.read", NULL},
	{"board.update", "operator.write", NULL},
	{"board.widget.appView", "operator.read", NULL},
	{"board.widget.grant", "operator.approvals", NULL},
	{"board.widget.put", "operator.write", NULL},
	{"channels.logout", "operator.admin", NULL},
	{"channels.pairing.approve", "dynamic", "operator.pairing"},
	{"channels.pairing.dismiss", "operator.pairing", NULL},
	{"channels.pairing.list", "operator.pairing", NULL},
	{"channels.start", "operator.admin", NULL},
	{"channels.status", "operator.read", NULL},
	{"channels.stop", "operator.admin", NULL},
	{"chat.abort", "operator.write", NULL},
	{"chat.history", "operator.read", NULL},
	{"chat.inject", "operator.admin", NULL},
	{"chat.message.get", "operator.read", NULL},
	{"chat.metadata", "operator.read", NULL},
	{"chat.send", "operator.write", NULL},
	{"chat.startup", "operator.read", NULL},
	{"chat.toolTitles", "operator.write", NULL},
	{"commands.list", "operator.read", NULL},
	{"config.apply", "operator.admin", NULL},
	{"config.get", "operator.read", NULL},
	{"config.openFile", "operator.admin", NULL},
	{"config.patch", "operator.admin", NULL},
	{"config.schema", "operator.read", NULL},
	{"config.schema.lookup", "operator.read", NULL},
	{"config.set", "operator.admin", NULL},
	{"connect", "operator.admin", NULL},
	{"controlUi.githubPreview", "operator.read", NULL},
	{"controlUi.sessionPreview", "operator.read", NULL},
	{"controlUi.sessionPullRequests.subscribe", "operator.read", NULL},
	{"conversations.list", "operator.admin", NULL},
	{"conversations.send", "operator.admin", NULL},
	{"conversations.turn", "operator.admin", NULL},
	{"conversations.turn.cancel", "operator.admin", NULL},
	{"cron.add", "operator.admin", NULL},
	{"cron.get", "operator.read", NULL},
	{"cron.list", "operator.read", NULL},
	{"cron.remove", "operator.admin", NULL},
	{"cron.run", "operator.admin", NULL},
	{"cron.runs", "operator.read", NULL},
	{"cron.scratch.get", "operator.admin", NULL},
	{"cron.scratch.set", "operator.admin", NULL},
	{"cron.status", "operator.read", NULL},
	{"cron.update", "operator.admin", NULL},
	{"desktop.launch", "operator.admin", NULL},
	{"desktop.observe", "operator.admin", NULL},
	{"device.pair.approve", "operator.pairing", NULL},
	{"device.pair.list", "operator.pairing", NULL},
	{"device.pair.reject", "operator.pairing", NULL},
	{"device.pair.remove", "operator.pairing", NULL},
	{"device.pair.rename", "operator.pairing", NULL},
	{"device.pair.setupCode", "operator.admin", NULL},
	{"device.pair.setupStatus", "operator.admin", NULL},
	{"device.scopes.requestUpgrade", "operator.read", NULL},
	{"device.scopes.waitUpgrade", "operator.read", NULL},
	{"device.token.revoke", "operator.pairing", NULL},
	{"device.token.rotate", "operator.pairing", NULL},
	{"diagnostics.lanes", "operator.read", NULL},
	{"diagnostics.stability", "operator.read", NULL},
	{"doctor.memory.backfillDreamDiary", "operator.write", NULL},
	{"doctor.memory.dedupeDreamDiary", "operator.write", NULL},
	{"doctor.memory.dreamDiary", "operator.read", NULL},
	{"doctor.memory.repairDreamingArtifacts", "operator.write", NULL},
	{"doctor.memory.resetDreamDiary", "operator.write", NULL},
	{"doctor.memory.resetGroundedShortTerm", "operator.write", NULL},
	{"doctor.memory.status", "operator.read", NULL},
	{"environments.create", "operator.admin", NULL},
	{"environments.destroy", "operator.admin", NULL},
	{"environments.list", "operator.read", NULL},
	{"environments.status", "operator.read", NULL},
	{"exec.approval.get", "operator.approvals", NULL},
	{"exec.approval.grants.list", "operator.approvals", NULL},
	{"exec.approval.grants.revoke", "operator.approvals", NULL},
	{"exec.approval.list", "operator.approvals", NULL},
	{"exec.approval.request", "operator.approvals", NULL},
	{"exec.approval.resolve", "operator.approvals", NULL},
	{"exec.approval.waitDecision", "operator.approvals", NULL},
	{"exec.approvals.get", "operator.admin", NULL},
	{"exec.approvals.node.get", "operator.admin", NULL},
	{"exec.approvals.node.set", "operator.admin", NULL},
	{"exec.approvals.set", "operator.admin", NULL},
	{"fs.listDir", "dynamic", "operator.admin"},
	{"gateway.identity.get", "operator.read", NULL},
	{"gateway.restart.preflight", "operator.read", NULL},
	{"gateway.restart.request", "operator.admin", NULL},
	{"gateway.suspend.prepare", "operator.admin", NULL},
	{"gateway.suspend.resume", "operator.admin", NULL},
	{"gateway.suspend.status", "operator.read", NULL},
	{"health", "operator.read", NULL},
	{"hooks.status", "operator.read", NULL},
	{"last-heartbeat", "operator.read", NULL},
	{"logs.tail", "operator.read", NULL},
	{"mcp.app.callTool", "operator.write", NULL},
	{"mcp.app.listResourceTemplates", "operator.read", NULL},
	{"mcp.app.listResources", "operator.read", NULL},
	{"mcp.app.listTools", "operator.read", NULL},
	{"mcp.app.readResource", "operator.read", NULL},
	{"mcp.app.updateModelContext", "operator.write", NULL},
	{"mcp.app.view", "operator.read", NULL},
	{"memory.search", "operator.read", NULL},
	{"message.action", "operator.write", NULL},
	{"migrations.memory.apply", "operator.admin", NULL},
	{"migrations.memory.plan", "operator.admin", NULL},
	{"models.authLogout", "operator.admin", NULL},
	{"models.authStatus", "operator.read", NULL},
	{"models.list", "operator.read", NULL},
	{"models.probe", "operator.admin", NULL},
	{"nativeHook.invoke", "operator.admin", NULL},
	{"node.describe", "operator.read", NULL},
	{"node.event", "node", NULL},
	{"node.invoke", "dynamic", "operator.write"},
	{"node.invoke.progress", "node", NULL},
	{"node.invoke.result", "node", NULL},
	{"node.list", "operator.read", NULL},
	{"node.pair.approve", "operator.pairing", NULL},
	{"node.pair.list", "operator.pairing", NULL},
	{"node.pair.reject", "operator.pairing", NULL},
	{"node.pair.remove", "operator.pairing", NULL},
	{"node.pending.ack", "node", NULL},
	{"node.pending.drain", "node", NULL},
	{"node.pending.enqueue", "operator.write", NULL},
	{"node.pending.pull", "node", NULL},
	{"node.pluginSurface.refresh", "node", NULL},
	{"node.pluginTools.update", "node", NULL},
	{"node.rename", "operator.pairing", NULL},
	{"node.runnerInventory.update", "node", NULL},
	{"node.skills.update", "node", NULL},
	{"openclaw.approval.list", "operator.approvals", NULL},
	{"openclaw.changes.list", "operator.admin", NULL},
	{"openclaw.chat", "operator.admin", NULL},
	{"openclaw.chat.history", "operator.admin", NULL},
	{"openclaw.setup.activate", "operator.admin", NULL},
	{"openclaw.setup.activate.start", "operator.admin", NULL},
	{"openclaw.setup.auth.start", "operator.admin", NULL},
	{"openclaw.setup.detect", "operator.admin", NULL},
	{"openclaw.setup.prepare.start", "operator.admin", NULL},
	{"openclaw.setup.verify", "operator.admin", NULL},
	{"plugin.approval.list", "operator.approvals", NULL},
	{"plugin.approval.request", "operator.approvals", NULL},
	{"plugin.approval.resolve", "operator.approvals", NULL},
	{"plugin.approval.waitDecision", "operator.approvals", NULL},
	{"plugin.surface.refresh", "operator.read", NULL},
	{"plugins.inspect", "operator.read", NULL},
	{"plugins.install", "operator.admin", NULL},
	{"plugins.list", "operator.read", NULL},
	{"plugins.refresh", "operator.admin", NULL},
	{"plugins.search", "operator.read", NULL},
	{"plugins.sessionAction", "dynamic", "operator.write"},
	{"plugins.setEnabled", "operator.admin", NULL},
	{"plugins.uiDescriptors", "operator.read", NULL},
	{"plugins.uninstall", "operator.admin", NULL},
	{"poll", "operator.write", NULL},
	{"portal.close", "operator.write", NULL},
	{"portal.list", "operator.read", NULL},
	{"portal.open", "operator.write", NULL},
	{"progressCard.get", "operator.read", NULL},
	{"progressCard.put", "operator.write", NULL},
	{"projects.add", "operator.write", NULL},
	{"projects.list", "operator.read", NULL},
	{"projects.register", "operator.admin", NULL},
	{"projects.remove", "operator.admin", NULL},
	{"projects.searchRemote", "operator.read", NULL},
	{"push.test", "operator.write", NULL},
	{"push.web.preferences.get", "operator.read", NULL},
	{"push.web.preferences.set", "operator.write", NULL},
	{"push.web.subscribe", "operator.write", NULL},
	{"push.web.test", "operator.write", NULL},
	{"push.web.unsubscribe", "operator.write", NULL},
	{"push.web.vapidPublicKey", "operator.write", NULL},
	{"question.get", "operator.questions", NULL},
	{"question.list", "operator.questions", NULL},
	{"question.request", "operator.questions", NULL},
	{"question.resolve", "operator.questions", NULL},
	{"question.waitAnswer", "operator.questions", NULL},
	{"secrets.reload", "operator.admin", NULL},
	{"secrets.resolve", "operator.admin", NULL},
	{"secrets.store.delete", "operator.admin", NULL},
	{"secrets.store.list", "operator.admin", NULL},
	{"secrets.store.set", "operator.admin", NULL},
	{"send", "operator.write", NULL},
	{"session.discussion.info", "operator.read", NULL},
	{"session.discussion.open", "operator.write", NULL},
	{"session.members.add", "operator.write", NULL},
	{"session.members.list", "operator.read", NULL},
	{"session.members.listEvidence", "operator.read", NULL},
	{"session.members.remove", "operator.write", NULL},
	{"session.suggestions.add", "operator.write", NULL},
	{"session.suggestions.list", "operator.read", NULL},
	{"session.suggestions.resolve", "operator.write", NULL},
	{"session.typing", "operator.write", NULL},
	{"session.visibility.set", "operator.write", NULL},
	{"sessions.abort", "operator.write", NULL},
	{"sessions.assignOwner", "operator.write", NULL},
	{"sessions.branches.list", "operator.read", NULL},
	{"sessions.branches.switch", "operator.admin", NULL},
	{"sessions.catalog.archive", "operator.write", NULL},
	{"sessions.catalog.continue", "operator.write", NULL},
	{"sessions.catalog.list", "operator.read", NULL},
	{"sessions.catalog.read", "operator.read", NULL},
	{"sessions.catalog.startTerminal", "operator.admin", NULL},
	{"sessions.cleanup", "operator.admin", NULL},
	{"sessions.compact", "operator.admin", NULL},
	{"sessions.compaction.branch", "operator.write", NULL},
	{"sessions.compaction.list", "operator.read", NULL},
	{"sessions.compaction.restore", "operator.admin", NULL},
	{"sessions.companion.ask", "operator.read", NULL},
	{"sessions.companion.reset", "operator.write", NULL},
	{"sessions.companion.state", "operator.read", NULL},
	{"sessions.create", "dynamic", "operator.write"},
	{"sessions.delete", "dynamic", "operator.admin"},
	{"sessions.describe", "operator.read", NULL},
	{"sessions.diff", "operator.read", NULL},
	{"sessions.dispatch", "dynamic", "operator.write"},
	{"sessions.files.get", "operator.read", NULL},
	{"sessions.files.list", "operator.read", NULL},
	{"sessions.files.reveal", "operator.admin", NULL},
	{"sessions.files.set", "operator.admin", NULL},
	{"sessions.fork", "operator.write", NULL},
	{"sessions.get", "operator.read", NULL},
	{"sessions.github.confirm", "operator.write", NULL},
	{"sessions.github.options", "operator.read", NULL},
	{"sessions.github.publish", "operator.write", NULL},
	{"sessions.github.status", "operator.read", NULL},
	{"sessions.goal.clear", "operator.write", NULL},
	{"sessions.goal.update", "operator.write", NULL},
	{"sessions.groups.defaults", "operator.write", NULL},
	{"sessions.groups.delete", "operator.write", NULL},
	{"sessions.groups.list", "operator.read", NULL},
	{"sessions.groups.put", "operator.write", NULL},
	{"sessions.groups.rename", "operator.write", NULL},
	{"sessions.groups.update", "operator.write", NULL},
	{"sessions.list", "operator.read", NULL},
	{"sessions.messages.subscribe", "operator.read", NULL},
	{"sessions.messages.unsubscribe", "operator.read", NULL},
	{"sessions.move", "dynamic", "operator.write"},
	{"sessions.observer.visibility", "operator.read", NULL},
	{"sessions.patch", "dynamic", "operator.write"},
	{"sessions.patchMany", "dynamic", "operator.write"},
	{"sessions.pluginPatch", "operator.admin", NULL},
	{"sessions.preview", "operator.read", NULL},
	{"sessions.reclaim", "operator.write", NULL},
	{"sessions.recover", "operator.write", NULL},
	{"sessions.reset", "operator.admin", NULL},
	{"sessions.resolve", "operator.read", NULL},
	{"sessions.rewind", "operator.admin", NULL},
	{"sessions.search", "operator.read", NULL},
	{"sessions.send", "operator.write", NULL},
	{"sessions.steer", "operator.write", NULL},
	{"sessions.subscribe", "operator.read", NULL},
	{"sessions.title.prepare", "operator.write", NULL},
	{"sessions.usage", "operator.read", NULL},
	{"sessions.usage.logs", "operator.read", NULL},
	{"sessions.usage.timeseries", "operator.read", NULL},
	{"sessions.viewers.set", "operator.read", NULL},
	{"set-heartbeats", "operator.admin", NULL},
	{"skills.bins", "node", NULL},
	{"skills.curator.pin", "operator.admin", NULL},
	{"skills.curator.restore", "operator.admin", NULL},
	{"skills.curator.status", "operator.read", NULL},
	{"skills.curator.unpin", "operator.admin", NULL},
	{"skills.detail", "operator.read", NULL},
	{"skills.install", "operator.admin", NULL},
	{"skills.library.activate", "operator.write", NULL},
	{"skills.library.import", "operator.write", NULL},
	{"skills.library.list", "operator.read", NULL},
	{"skills.library.mutate", "operator.write", NULL},
	{"skills.library.read", "operator.read", NULL},
	{"skills.library.save", "operator.write", NULL},
	{"skills.library.upload", "operator.write", NULL},
	{"skills.proposals.apply", "operator.admin", NULL},
	{"skills.proposals.create", "operator.admin", NULL},
	{"skills.proposals.evaluate", "operator.admin", NULL},
	{"skills.proposals.events.list", "operator.read", NULL},
	{"skills.proposals.historyScan", "operator.admin", NULL},
	{"skills.proposals.historyStatus", "operator.read", NULL},
	{"skills.proposals.inspect", "operator.read", NULL},
	{"skills.proposals.list", "operator.read", NULL},
	{"skills.proposals.quarantine", "operator.admin", NULL},
	{"skills.proposals.reject", "operator.admin", NULL},
	{"skills.proposals.requestRevision", "operator.admin", NULL},
	{"skills.proposals.revise", "operator.admin", NULL},
	{"skills.proposals.update", "operator.admin", NULL},
	{"skills.search", "operator.read", NULL},
	{"skills.securityVerdicts", "operator.read", NULL},
	{"skills.skillCard", "operator.read", NULL},
	{"skills.status", "operator.read", NULL},
	{"skills.update", "operator.admin", NULL},
	{"skills.upload.begin", "operator.admin", NULL},
	{"skills.upload.chunk", "operator.admin", NULL},
	{"skills.upload.commit", "operator.admin", NULL},
	{"status", "operator.read", NULL},
	{"system-event", "operator.admin", NULL},
	{"system-presence", "operator.read", NULL},
	{"system.info", "operator.read", NULL},
	{"talk.catalog", "operator.read", NULL},
	{"talk.client.close", "operator.talk", NULL},
	{"talk.client.create", "operator.talk", NULL},
	{"talk.client.steer", "operator.talk", NULL},
	{"talk.client.toolCall", "operator.talk", NULL},
	{"talk.client.transcript", "operator.talk", NULL},
	{"talk.config", "dynamic", "operator.read"},
	{"talk.mode", "operator.talk", NULL},
	{"talk.session.acknowledgeMark", "operator.talk", NULL},
	{"talk.session.appendAudio", "operator.talk", NULL},
	{"talk.session.cancelOutput", "operator.talk", NULL},
	{"talk.session.close", "operator.talk", NULL},
	{"talk.session.create", "operator.talk", NULL},
	{"talk.session.steer", "operator.talk", NULL},
	{"talk.session.submitToolResult", "operator.talk", NULL},
	{"talk.speak", "operator.talk", NULL},
	{"taskSuggestions.accept", "operator.admin", NULL},
	{"taskSuggestions.create", "operator.write", NULL},
	{"taskSuggestions.dismiss", "operator.write", NULL},
	{"taskSuggestions.list", "operator.read", NULL},
	{"tasks.cancel", "operator.write", NULL},
	{"tasks.dismiss", "operator.write", NULL},
	{"tasks.get", "operator.read", NULL},
	{"tasks.list", "operator.read", NULL},
	{"tasks.retry", "operator.write", NULL},
	{"terminal.attach", "operator.admin", NULL},
	{"terminal.close", "operator.admin", NULL},
	{"terminal.input", "operator.admin", NULL},
	{"terminal.list", "operator.admin", NULL},
	{"terminal.open", "operator.admin", NULL},
	{"terminal.resize", "operator.admin", NULL},
	{"terminal.upload", "operator.admin", NULL},
	{"tools.catalog", "operator.read", NULL},
	{"tools.effective", "operator.read", NULL},
	{"tools.github.authorize.cancel", "operator.admin", NULL},
	{"tools.github.authorize.poll", "operator.admin", NULL},
	{"tools.github.authorize.start", "operator.admin", NULL},
	{"tools.github.configure", "operator.admin", NULL},
	{"tools.github.status", "operator.read", NULL},
	{"tools.invoke", "operator.write", NULL},
	{"tts.convert", "operator.write", NULL},
	{"tts.disable", "operator.write", NULL},
	{"tts.enable", "operator.write", NULL},
	{"tts.personas", "operator.read", NULL},
	{"tts.providers", "operator.read", NULL},
	{"tts.setPersona", "operator.write", NULL},
	{"tts.setProvider", "operator.write", NULL},
	{"tts.speak", "operator.write", NULL},
	{"tts.status", "operator.read", NULL},
	{"ui.command", "operator.write", NULL},
	{"update.hold", "operator.admin", NULL},
	{"update.run", "operator.admin", NULL},
	{"update.status", "operator.admin", NULL},
	{"usage.cost", "operator.read", NULL},
	{"usage.status", "operator.read", NULL},
	{"users.github.authorize.cancel", "operator.read", NULL},
	{"users.github.authorize.poll", "operator.read", NULL},
	{"users.github.authorize.start", "operator.read", NULL},
	{"users.github.disconnect", "operator.read", NULL},
	{"users.github.status", "operator.read", NULL},
	{"users.linkEmail", "operator.admin", NULL},
	{"users.list", "operator.read", NULL},
	{"users.prefs.get", "operator.read", NULL},
	{"users.prefs.set", "operator.write", NULL},
	{"users.self", "operator.write", NULL},
	{"users.setAvatar", "operator.write", NULL},
	{"users.setDisplayName", "operator.write", NULL},
	{"users.setRole", "operator.admin", NULL},
	{"voicewake.get", "operator.read", NULL},
	{"voicewake.routing.get", "operator.read", NULL},
	{"voicewake.set", "operator.write", NULL},
	{"wake", "operator.write", NULL},
	{"web.login.start", "operator.admin", NULL},
	{"web.login.wait", "operator.admin", NULL},
	{"wizard.cancel", "operator.admin", NULL},
	{"wizard.next", "operator.admin", NULL},
	{"wizard.start", "operator.admin", NULL},
	{"wizard.status", "operator.admin", NULL},
	{"worker.desktop.launch", "operator.admin", NULL},
	{"worker.desktop.observe", "operator.admin", NULL},
	{"worktrees.branches", "operator.write", NULL},
	{"worktrees.create", "operator.write", NULL},
	{"worktrees.gc", "operator.admin", NULL},
	{"worktrees.list", "operator.read", NULL},
	{"worktrees.remove", "operator.admin", NULL},
	{"worktrees.restore", "operator.admin", NULL},
};

/* The method table, one group per namespace file (rpc-<ns>.c). The
 * scope column is the policy; handlers never check scopes themselves. To
 * add a namespace: a table + count in its file, a line here. */
static const struct {
	const struct rpc_method *v;
	const size_t *n;
} rpc_groups[] = {
	{rpc_system_methods, &rpc_system_methods_count},
	{rpc_device_methods, &rpc_device_methods_count},
	{rpc_config_methods, &rpc_config_methods_count},
	{rpc_sessions_methods, &rpc_sessions_methods_count},
	{rpc_chat_methods, &rpc_chat_methods_count},
	{rpc_agent_methods, &rpc_agent_methods_count},
	{rpc_unavail_methods, &rpc_unavail_methods_count},
	{rpc_diagnostics_methods, &rpc_diagnostics_methods_count},
	{rpc_views_methods, &rpc_views_methods_count},
	{rpc_usage_methods, &rpc_usage_methods_count},
	{rpc_node_methods, &rpc_node_methods_count},
	{rpc_secrets_methods, &rpc_secrets_methods_count},
	{rpc_cron_methods, &rpc_cron_methods_count},
	{rpc_channels_methods, &rpc_channels_methods_count},
};

/* Events this server emits (features.events). */
static const char *const rpc_events[] = {
	"connect.challenge", "tick", "presence", "health", "shutdown",
	"device.pair.requested", "device.pair.resolved",
	"config.changed",
	"chat", "agent", "session.message", "sessions.changed",
	"node.pair.requested", "node.pair.resolved", "node.invoke.request",
	"cron",
	"channel",
};

static const struct {
	const char *name;
	unsigned bit;
} rpc_scope_names[] = {
	{"operator.read", SCOPE_READ},
	{"operator.write", SCOPE_WRITE},
	{"operator.admin", SCOPE_ADMIN},
	{"operator.approvals", SCOPE_APPROVALS},
	{"operator.pairing", SCOPE_PAIRING},
	{"operator.talk.secrets", SCOPE_TALK_SECRETS},
	{"operator.talk", SCOPE_TALK},
	{"operator.questions", SCOPE_QUESTIONS},
};

/* The i-th method across the groups, or NULL. */
static const struct rpc_method *rpc_method_at(size_t i)
{
	size_t g;

	for (g = 0; g < ARRAY_SIZE(rpc_groups); g++) {
		if (i < *rpc_groups[g].n)
			return &rpc_groups[g].v[i];
		i -= *rpc_groups[g].n;
	}
	return NULL;
}

size_t rpc_method_count(void)
{
	size_t g, n = 0;

	for (g = 0; g < ARRAY_SIZE(rpc_groups); g++)
		n += *rpc_groups[g].n;
	return n;
}

const char *rpc_method_name(size_t i)
{
	const struct rpc_method *m = rpc_method_at(i);

	return m ? m->name : NULL;
}

/* The methods of every group by name, for rpc_method_find's bsearch
 * (the names are unique: test-rpc's test_method_table). */
static const struct rpc_method **rpc_by_name;
static size_t rpc_by_name_n;
static pthread_once_t rpc_by_name_once = PTHREAD_ONCE_INIT;

static int rpc_by_name_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct rpc_method *const *)a)->name,
		      (*(const struct rpc_method *const *)b)->name);
}

static void rpc_by_name_init(void)
{
	size_t g, i, n = 0;

	rpc_by_name = xcalloc(rpc_method_count(), sizeof(*rpc_by_name));
	for (g = 0; g < ARRAY_SIZE(rpc_groups); g++)
		for (i = 0; i < *rpc_groups[g].n; i++)
			rpc_by_name[n++] = &rpc_groups[g].v[i];
	qsort(rpc_by_name, n, sizeof(*rpc_by_name), rpc_by_name_cmp);
	rpc_by_name_n = n;
}

static int rpc_by_name_key(const void *key, const void *row)
{
	return strcmp(key, (*(const struct rpc_method *const *)row)->name);
}

static const struct rpc_method *rpc_method_find(const char *name)
{
	const struct rpc_method *const *m;

	pthread_once(&rpc_by_name_once, rpc_by_name_init);
	m = bsearch(name, rpc_by_name, rpc_by_name_n, sizeof(*rpc_by_name),
		    rpc_by_name_key);
	return m ? *m : NULL;
}

static int rpc_scope_row_cmp(const void *key, const void *row)
{
	return strcmp(key, ((const struct rpc_scope_row *)row)->name);
}

static const struct rpc_scope_row *rpc_scope_row(const char *method)
{
	return bsearch(method, rpc_scope_table, ARRAY_SIZE(rpc_scope_table),
		       sizeof(rpc_scope_table[0]), rpc_scope_row_cmp);
}

const char *rpc_method_published_scope(const char *method)
{
	const struct rpc_scope_row *r = rpc_scope_row(method);

	return r ? r->scope : NULL;
}

const char *rpc_method_group_scope(const char *method)
{
	const struct rpc_method *m = rpc_method_find(method);

	return m ? m->scope : NULL;
}

size_t rpc_scope_table_size(void)
{
	return ARRAY_SIZE(rpc_scope_table);
}

const char *rpc_scope_table_name(size_t i)
{
	return i < ARRAY_SIZE(rpc_scope_table) ? rpc_scope_table[i].name
					       : NULL;
}

const char *rpc_method_scope(const char *method)
{
	const struct rpc_scope_row *r = rpc_scope_row(method);
	const struct rpc_method *m;

	if (r)
		return r->dynamic_base ? r->dynamic_base : r->scope;
	m = rpc_method_find(method);
	if (m && m->scope)
		return m->scope;
	return "operator.admin";
}

unsigned rpc_scope_bit(const char *scope)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rpc_scope_names); i++)
		if (strcmp(rpc_scope_names[i].name, scope) == 0)
			return rpc_scope_names[i].bit;
	return 0;
}

int rpc_scope_allows(unsigned granted, unsigned need)
{
	if (granted & SCOPE_ADMIN)
		return 1;
	if ((need == SCOPE_READ || need == SCOPE_TALK) &&
	    (granted & SCOPE_WRITE))
		return 1;
	return (granted & need) == need;
}

json_t *rpc_scopes_json(unsigned mask)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rpc_scope_names); i++)
		if (mask & rpc_scope_names[i].bit)
			json_array_append_new(a,
				json_string(rpc_scope_names[i].name));
	return a;
}

json_t *rpc_features(void)
{
	json_t *m = json_array(), *e = json_array();
	const struct rpc_method *mt;
	size_t i;

	for (i = 0; (mt = rpc_method_at(i)); i++)
		if (!(mt->flags & RPC_F_LOCAL))
			json_array_append_new(m, json_string(mt->name));
	for (i = 0; i < ARRAY_SIZE(rpc_events); i++)
		json_array_append_new(e, json_string(rpc_events[i]));
	/* Capabilities the clients check before a call (openclaw
	 * `models list`: the models.list catalog is the published one). */
	return json_pack("{s:o,s:o,s:[s]}", "methods", m, "events", e,
			 "capabilities", "published-model-catalog");
}

/* ---- frames ------------------------------------------------------------ */

int rpc_frame_check_req(const json_t *frame, char *msg, size_t n)
{
	static const char *const allowed[] = {"type", "id", "method", "params",
					       "traceparent"};
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(frame)) {
		snprintf(msg, n, "must be object");
		return -1;
	}
	if (!json_object_get(frame, "type")) {
		snprintf(msg, n, "must have required property 'type'");
		return -1;
	}
	if (!json_object_get(frame, "id")) {
		snprintf(msg, n, "must have required property 'id'");
		return -1;
	}
	if (!json_object_get(frame, "method")) {
		snprintf(msg, n, "must have required property 'method'");
		return -1;
	}
	json_object_foreach((json_t *)frame, k, v) {
		for (i = 0; i < ARRAY_SIZE(allowed); i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (i == ARRAY_SIZE(allowed)) {
			snprintf(msg, n, "must NOT have additional properties");
			return -1;
		}
	}
	v = json_object_get(frame, "type");
	if (!json_is_string(v) || strcmp(json_string_value(v), "req") != 0) {
		snprintf(msg, n, "at /type: must be equal to constant");
		return -1;
	}
	v = json_object_get(frame, "id");
	if (!json_is_string(v)) {
		snprintf(msg, n, "at /id: must be string");
		return -1;
	}
	if (json_string_length(v) == 0) {
		snprintf(msg, n, "at /id: must NOT have fewer than 1 characters");
		return -1;
	}
	v = json_object_get(frame, "method");
	if (!json_is_string(v)) {
		snprintf(msg, n, "at /method: must be string");
		return -1;
	}
	if (json_string_length(v) == 0) {
		snprintf(msg, n,
			 "at /method: must NOT have fewer than 1 characters");
		return -1;
	}
	v = json_object_get(frame, "traceparent");
	if (v && !json_is_string(v)) {
		snprintf(msg, n, "at /traceparent: must be string");
		return -1;
	}
	if (v && json_string_length(v) > 128) {
		snprintf(msg, n,
			 "at /traceparent: must NOT have more than 128 characters");
		return -1;
	}
	return 0;
}

/* ---- sending --------------------------------------------------------- */

static void rpc_conn_send_text(struct rpc_conn *c, char *text)
{
	if (c->ws && text)
		ws_conn_send(c->ws, text, strlen(text));
	free(text);
}

void rpc_conn_send_json(struct rpc_conn *c, json_t *frame)
{
	rpc_conn_send_text(c, json_dumps(frame, JSON_COMPACT));
	json_decref(frame);
}

static json_t *rpc_error_json(const char *code, const char *msg,
			      json_t *details)
{
	json_t *e = json_pack("{s:s,s:s}", "code", code, "message", msg);

	if (details)
		json_object_set(e, "details", details);
	return e;
}

void rpc_conn_send_res_error(struct rpc_conn *c, json_t *id, const char *code,
			     const char *msg, json_t *details)
{
	json_t *f = json_pack("{s:s,s:O,s:b,s:o}", "type", "res", "id",
			      id ? id : json_string("invalid"), "ok", 0,
			      "error", rpc_error_json(code, msg, details));

	if (!id)
		json_decref(json_object_get(f, "id"));
	rpc_conn_send_json(c, f);
}

/* Send a handshake rejection (a res error when id is given) then close. */
void rpc_conn_reject(struct rpc_conn *c, json_t *id, const char *code,
		     const char *msg, json_t *details, int close_code,
		     const char *close_reason)
{
	if (id)
		rpc_conn_send_res_error(c, id, code, msg, details);
	c->state = RPC_CLOSING;
	if (c->ws)
		ws_conn_close(c->ws, close_code, close_reason);
}

int rpc_call_need_agents(struct rpc_call *call)
{
	if (call->srv->d.agents)
		return 0;
	rpc_call_error(call, "UNAVAILABLE", NULL, "agents are not available");
	return -1;
}

int rpc_call_missing_scope(struct rpc_call *call, const char *scope)
{
	rpc_call_error(call, "FORBIDDEN",
		       json_pack("{s:s,s:s,s:[s]}", "code", "MISSING_SCOPE",
				 "missingScope", scope, "requiredScopes",
				 scope),
		       "missing scope: %s", scope);
	return GW_EFORBIDDEN;
}

void rpc_call_error(struct rpc_call *call, const char *code, json_t *details,
		    const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	call->err_code = code;
	free(call->err_msg);
	call->err_msg = xstrdup(buf);
	json_decref(call->err_details);
	call->err_details = details;
}

/* ---- connections ------------------------------------------------------ */

void rpc_conn_unref(struct rpc_conn *c)
{
	if (--c->refs > 0)
		return;
	free(c->role);
	free(c->client_id);
	free(c->client_mode);
	free(c->presence_key);
	free(c->device_id);
	free(c->client_ip);
	json_decref(c->scope_list);
	json_decref(c->session_keys);
	free(c);
}

static void rpc_hs_timeout(void *arg)
{
	struct rpc_conn *c = arg;

	c->hs_timer = NULL;
	if (c->state != RPC_AWAIT_CONNECT || !c->ws)
		return;
	log_debug("ws", "handshake timeout conn=%s", c->conn_id);
	c->state = RPC_CLOSING;
	ws_conn_close(c->ws, 1000, "");
}

void rpc_ws_on_open(struct ws_conn *wc, void *arg)
{
	struct rpc_server *s = arg;
	struct rpc_conn *c = xcalloc(1, sizeof(*c));
	char buf[160];

	c->srv = s;
	c->ws = wc;
	c->refs = 1;
	util_uuid(c->conn_id);
	util_uuid(c->nonce);
	ws_conn_set_user(wc, c);
	ws_conn_set_max_payload(wc, RPC_PREAUTH_MAX_PAYLOAD);
	snprintf(buf, sizeof(buf),
		 "{\"type\":\"event\",\"event\":\"connect.challenge\","
		 "\"payload\":{\"nonce\":\"%s\",\"ts\":%lld}}",
		 c->nonce, (long long)util_now_ms());
	ws_conn_send(wc, buf, strlen(buf));
	c->hs_timer = ws_timer_add(s->d.ws, s->d.handshake_ms, rpc_hs_timeout,
				   c);
}

void rpc_ws_on_too_big(struct ws_conn *wc, size_t len, void *arg)
{
	struct rpc_conn *c = ws_conn_user(wc);

	(void)arg;
	(void)len;
	if (!c)
		return;
	if (c->state == RPC_READY) {
		ws_conn_close(wc, 1009, "Max payload size exceeded");
	} else {
		c->state = RPC_CLOSING;
		ws_conn_close(wc, 1009, "preauth payload too large");
	}
}

static void rpc_presence_disconnect(struct rpc_conn *c)
{
	json_t *f;

	if (!c->presence_key)
		return;
	f = json_pack("{s:s}", "reason", "disconnect");
	presence_upsert(c->presence_key, f);
	json_decref(f);
	rpc_broadcast(c->srv, "presence",
		      json_pack("{s:o}", "presence", presence_list()), 1, 0);
}

void rpc_ws_on_close(struct ws_conn *wc, void *arg)
{
	struct rpc_server *s = arg;
	struct rpc_conn *c = ws_conn_user(wc);

	if (!c)
		return;
	ws_conn_set_user(wc, NULL);
	c->ws = NULL;
	if (c->hs_timer) {
		ws_timer_cancel(c->hs_timer);
		c->hs_timer = NULL;
	}
	if (c->state == RPC_READY || (c->prev || c->next || s->ready == c)) {
		if (c->prev)
			c->prev->next = c->next;
		else if (s->ready == c)
			s->ready = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->next = c->prev = NULL;
		s->nready--;
		rpc_device_online(c->device_id, -1);
		atomic_store(&s->listeners, s->nready);
		rpc_sessions_recount(c, 1);
		if (!s->stopping)
			rpc_presence_disconnect(c);
		if (c->role && strcmp(c->role, "node") == 0)
			rpc_node_disconnected(c);
	}
	c->state = RPC_CLOSING;
	rpc_conn_unref(c);
}

/* The handshake succeeded: the connection joins the ready list. */
void rpc_conn_ready(struct rpc_conn *c)
{
	struct rpc_server *s = c->srv;

	if (c->hs_timer) {
		ws_timer_cancel(c->hs_timer);
		c->hs_timer = NULL;
	}
	c->state = RPC_READY;
	c->operator_role = c->role && strcmp(c->role, "operator") == 0;
	ws_conn_set_max_payload(c->ws, RPC_MAX_PAYLOAD);
	c->next = s->ready;
	if (s->ready)
		s->ready->prev = c;
	s->ready = c;
	s->nready++;
	rpc_device_online(c->device_id, 1);
	atomic_store(&s->listeners, s->nready);
}

int rpc_has_listeners(struct rpc_server *s)
{
	return atomic_load(&s->listeners) > 0;
}

/* ---- dispatch ----------------------------------------------------------- */

static void rpc_call_free(struct rpc_call *call)
{
	json_decref(call->id);
	free(call->method);
	json_decref(call->params);
	config_unref(call->cfg);
	json_decref(call->payload);
	free(call->payload_raw);
	free(call->err_msg);
	json_decref(call->err_details);
	if (call->after_free)
		call->after_free(call->after_arg);
	free(call);
}

/* Drop a reference of a deferred call (lws thread). */
static void rpc_call_put(struct rpc_call *call)
{
	if (__atomic_sub_fetch(&call->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (call->conn)
		rpc_conn_unref(call->conn);
	rpc_call_free(call);
}

int rpc_call_defer(struct rpc_call *call)
{
	call->deferred = 1;
	call->refs = 2;
	return GW_EPENDING;
}

struct rpc_reply {
	struct rpc_call *call;
	char *text;		/* the frame, or NULL for a release */
};

static void rpc_reply_on_lws(void *arg)
{
	struct rpc_reply *r = arg;
	struct rpc_conn *c = r->call->conn;

	if (!r->text) {
		rpc_call_put(r->call);
	} else if (c && c->ws && c->state == RPC_READY) {
		rpc_conn_send_text(c, r->text);
		r->text = NULL;
	}
	free(r->text);
	free(r);
}

static void rpc_reply_post(struct rpc_call *call, char *text)
{
	struct rpc_reply *r = xcalloc(1, sizeof(*r));

	r->call = call;
	r->text = text;
	if (ws_post(call->srv->d.ws, rpc_reply_on_lws, r) == 0)
		return;
	/* lws is gone (shutdown): nothing else runs there any more. */
	free(text);
	free(r);
	if (!text) {
		call->conn = NULL;
		if (__atomic_sub_fetch(&call->refs, 1, __ATOMIC_ACQ_REL) <= 0)
			rpc_call_free(call);
	}
}

void rpc_call_reply(struct rpc_call *call, int ok, json_t *payload,
		    const char *err_code, const char *err_msg,
		    json_t *err_details)
{
	json_t *f = json_pack("{s:s,s:O,s:b}", "type", "res", "id", call->id,
			      "ok", ok);

	if (ok || payload)
		json_object_set_new(f, "payload",
				    payload ? payload : json_null());
	if (!ok)
		json_object_set_new(f, "error", rpc_error_json(
			err_code ? err_code : "UNAVAILABLE",
			err_msg && *err_msg ? err_msg : "request failed",
			err_details));
	json_decref(err_details);
	rpc_reply_post(call, json_dumps(f, JSON_COMPACT));
	json_decref(f);
}

void rpc_call_release(struct rpc_call *call)
{
	rpc_reply_post(call, NULL);
}

/* A successful res frame written by the store's JSON writer (byte for
 * byte jansson's compact output, without its per-call set-up), or NULL
 * when it refuses the id or payload. Once per request. */
static char *rpc_res_text(const struct rpc_call *call)
{
	static const char pre[] = "{\"type\":\"res\",\"id\":";
	static const char mid[] = ",\"ok\":true,\"payload\":";
	struct store_json_buf jb = {0};

	store_json_raw(&jb, pre, sizeof(pre) - 1);
	if (store_json_val(&jb, call->id) < 0)
		goto fail;
	store_json_raw(&jb, mid, sizeof(mid) - 1);
	if (call->payload_raw)
		store_json_raw(&jb, call->payload_raw,
			       strlen(call->payload_raw));
	else if (store_json_val(&jb, call->payload ? call->payload
						   : json_null()) < 0)
		goto fail;
	store_json_raw(&jb, "}", 1);
	return store_json_done(&jb, NULL);
fail:
	free(jb.p);
	return NULL;
}

/* Send the call's result (lws thread). */
static void rpc_call_finish(struct rpc_call *call)
{
	struct rpc_conn *c = call->conn;
	char *id = NULL, *pl = NULL, *text;
	json_t *f;

	if (call->deferred) {
		rpc_call_put(call);
		return;
	}
	if (!c->ws || c->state != RPC_READY)
		goto hook;
	if (call->err_code) {
		f = json_pack("{s:s,s:O,s:b,s:o}", "type", "res", "id",
			      call->id, "ok", 0, "error",
			      rpc_error_json(call->err_code, call->err_msg,
					     call->err_details));
		if (call->err_retryable) {
			json_t *e = json_object_get(f, "error");

			json_object_set_new(e, "retryable", json_true());
			if (call->err_retry_after_ms > 0)
				json_object_set_new(e, "retryAfterMs",
					json_integer(call->err_retry_after_ms));
		}
		rpc_conn_send_json(c, f);
		goto hook;
	}
	if ((text = rpc_res_text(call)) == NULL) {
		/* what the fast writer refuses: jansson */
		id = json_dumps(call->id, JSON_ENCODE_ANY | JSON_COMPACT);
		if (!call->payload_raw)
			pl = json_dumps(call->payload ? call->payload
				: json_null(), JSON_ENCODE_ANY | JSON_COMPACT);
		text = xasprintf("{\"type\":\"res\",\"id\":%s,\"ok\":true,"
				 "\"payload\":%s}", id,
				 call->payload_raw ? call->payload_raw : pl);
	}
	rpc_conn_send_text(c, text);
hook:
	/* After the answer is queued: e.g. close the sockets of a removed
	 * device (the caller's own included) with 4001. */
	if (call->after_send)
		call->after_send(call);
	free(id);
	free(pl);
	rpc_conn_unref(c);
	rpc_call_free(call);
}

static void rpc_call_done_on_lws(void *arg)
{
	rpc_call_finish(arg);
}

/* A deferred call completed by its owner: answered as a handler's
 * return is (the dispatcher's reference is gone: it ran before this
 * job could). */
static void rpc_call_complete_on_lws(void *arg)
{
	struct rpc_call *call = arg;

	call->deferred = 0;
	call->refs = 0;
	rpc_call_finish(call);
}

void rpc_call_complete(struct rpc_call *call)
{
	if (ws_post(call->srv->d.ws, rpc_call_complete_on_lws, call) == 0)
		return;
	/* lws is gone (shutdown): nothing else runs there any more. */
	call->conn = NULL;
	if (__atomic_sub_fetch(&call->refs, 1, __ATOMIC_ACQ_REL) <= 0)
		rpc_call_free(call);
}

static void rpc_call_run(struct rpc_call *call, const struct rpc_method *m)
{
	int r = m->fn(call);

	if (r == GW_EPENDING && call->deferred)
		return;
	if (r != GW_OK && !call->err_code)
		rpc_call_error(call, gw_err_proto_code(r), NULL, "%s",
			       gw_err_str(r));
}

struct rpc_job {
	struct rpc_call *call;
	const struct rpc_method *m;
};

static void rpc_call_worker(void *arg)
{
	struct rpc_job *j = arg;
	struct rpc_call *call = j->call;

	rpc_call_run(call, j->m);
	free(j);
	/* The daemon drains workers before stopping lws, so this fails only
	 * in a shutdown race: then the connection is gone anyway. */
	if (ws_post(call->srv->d.ws, rpc_call_done_on_lws, call) != 0) {
		call->conn = NULL;
		if (!call->deferred ||
		    __atomic_sub_fetch(&call->refs, 1, __ATOMIC_ACQ_REL) <= 0)
			rpc_call_free(call);
	}
}

static void rpc_dispatch(struct rpc_conn *c, json_t *frame)
{
	const char *method, *scope;
	const struct rpc_method *m;
	struct rpc_call *call;
	struct rpc_job *job;
	json_t *params;
	unsigned need;

	method = json_string_value(json_object_get(frame, "method"));
	m = rpc_method_find(method);
	/* Role policy: nodes call node methods, operators the rest. */
	if (m && (m->flags & RPC_F_NODE) != 0 &&
	    strcmp(c->role, "node") != 0) {
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
			"INVALID_REQUEST", "unauthorized role: operator", NULL);
		goto bad_role;
	}
	if (strcmp(c->role, "node") == 0 && (!m || !(m->flags & RPC_F_NODE)) &&
	    strcmp(method, "health") != 0) {
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
			"INVALID_REQUEST", "unauthorized role: node", NULL);
		goto bad_role;
	}
	if (strcmp(c->role, "operator") == 0 &&
	    strcmp(rpc_method_scope(method), "node") == 0) {
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
			"INVALID_REQUEST", "unauthorized role: operator", NULL);
		goto bad_role;
	}
	if (strcmp(c->role, "operator") == 0) {
		scope = rpc_method_scope(method);
		need = rpc_scope_bit(scope);
		if (!rpc_scope_allows(c->scopes, need)) {
			char msg[128];
			json_t *details = json_pack("{s:s,s:s,s:[s]}", "code",
				"MISSING_SCOPE", "missingScope", scope,
				"requiredScopes", scope);

			snprintf(msg, sizeof(msg), "missing scope: %s", scope);
			rpc_conn_send_res_error(c, json_object_get(frame, "id"),
				"FORBIDDEN", msg, details);
			json_decref(details);
			return;
		}
	}
	if (strcmp(method, "connect") == 0) {
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
			"INVALID_REQUEST",
			"connect is only valid as the first request", NULL);
		return;
	}
	if (!m) {
		char msg[200];

		snprintf(msg, sizeof(msg), "unknown method: %.150s", method);
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
					"INVALID_REQUEST", msg, NULL);
		return;
	}
	/* Params are an object (or absent) for every method: checked here,
	 * once, not in each handler. */
	params = json_object_get(frame, "params");
	if (params && !json_is_null(params) && !json_is_object(params)) {
		char msg[200];

		snprintf(msg, sizeof(msg), "invalid %.150s params: must be "
			 "object", method);
		rpc_conn_send_res_error(c, json_object_get(frame, "id"),
					"INVALID_REQUEST", msg, NULL);
		return;
	}
	c->bad_role_calls = 0;
	call = xcalloc(1, sizeof(*call));
	call->srv = c->srv;
	call->conn = c;
	c->refs++;
	call->id = json_incref(json_object_get(frame, "id"));
	call->method = xstrdup(method);
	params = json_object_get(frame, "params");
	call->params = params && !json_is_null(params) ? json_incref(params)
						       : json_object();
	call->cfg = config_current();
	call->scopes = c->scopes;
	if (m->flags & RPC_F_WORKER) {
		job = xmalloc(sizeof(*job));
		job->call = call;
		job->m = m;
		if (workq_post(c->srv->d.workers, rpc_call_worker, job) == 0)
			return;
		free(job);
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "gateway busy; retry shortly");
		call->err_retryable = 1;
		call->err_retry_after_ms = 500;
		rpc_call_finish(call);
		return;
	}
	rpc_call_run(call, m);
	rpc_call_finish(call);
	return;
bad_role:
	if (++c->bad_role_calls > RPC_MAX_BAD_ROLE_CALLS) {
		c->state = RPC_CLOSING;
		ws_conn_close(c->ws, 1008, "repeated unauthorized calls");
	}
}

void rpc_ws_on_message(struct ws_conn *wc, const char *data, size_t len,
		       int binary, void *arg)
{
	struct rpc_conn *c = ws_conn_user(wc);
	json_error_t jerr;
	json_t *frame, *type, *id;
	char msg[200], full[240];

	(void)binary;
	(void)arg;
	if (!c || c->state == RPC_CLOSING)
		return;
	frame = rpc_json_frame(data, len, &jerr);
	if (c->state == RPC_AWAIT_CONNECT) {
		if (!frame) {
			/* Not JSON before the handshake: close, no answer. */
			rpc_conn_reject(c, NULL, NULL, NULL, NULL, 1000, "");
			return;
		}
		rpc_connect_handle(c, frame);
		json_decref(frame);
		return;
	}
	if (!frame) {
		log_debug("ws", "unparseable frame from conn=%s: %s",
			  c->conn_id, jerr.text);
		return;
	}
	type = json_object_get(frame, "type");
	if (json_is_string(type) &&
	    strcmp(json_string_value(type), "cancel") == 0) {
		/* Nothing cancellable runs longer than one call here yet. */
		json_decref(frame);
		return;
	}
	if (rpc_frame_check_req(frame, msg, sizeof(msg)) != 0) {
		id = json_object_get(frame, "id");
		snprintf(full, sizeof(full), "invalid request frame: %s", msg);
		rpc_conn_send_res_error(c,
			json_is_string(id) && json_string_length(id) ? id : NULL,
			"INVALID_REQUEST", full, NULL);
		json_decref(frame);
		return;
	}
	rpc_dispatch(c, frame);
	json_decref(frame);
}

/* ---- events ------------------------------------------------------------- */

/* One event for the lws thread: its frame text up to the seq serialized
 * once (shared by every connection's queue), or a close order. */
struct rpc_bcast {
	struct rpc_bcast *next;	/* posted together (struct rpc_events) */
	struct rpc_server *srv;
	/* {"type":"event",...,"seq":<each connection's>[stateVersion]} */
	struct ws_shared *head;
	unsigned flags;		/* WS_SEND_DROP_IF_SLOW */
	unsigned scope_mask;
	rpc_conn_pred pred;	/* NULL = every ready connection */
	void *pred_arg;
	void (*pred_free)(void *);
	/* For rpc_close_where: */
	int close_code;
	char *close_reason;
};

static void rpc_bcast_free(struct rpc_bcast *b)
{
	if (b->pred_free)
		b->pred_free(b->pred_arg);
	ws_shared_unref(b->head);
	free(b->close_reason);
	free(b);
}

/* Events skipped, not closed for, on a connection over its output limits
 * (reference/ws-protocol.md section 9: dropIfSlow); chat deltas too. */
static const char *const rpc_drop_if_slow[] = {
	"cron", "device.pair.requested", "device.pair.resolved",
	"exec.approval.requested", "exec.approval.resolved", "heartbeat",
	"node.pair.requested", "node.pair.resolved",
	"plugin.approval.requested", "plugin.approval.resolved", "presence",
	"session.message", "session.tool", "sessions.changed", "talk.mode",
};

unsigned rpc_event_flags(const char *event, const json_t *payload)
{
	size_t i;
	const char *st;

	if (strcmp(event, "chat") == 0) {
		st = json_string_value(json_object_get(payload, "state"));
		return st && strcmp(st, "delta") == 0 ? WS_SEND_DROP_IF_SLOW
						      : 0;
	}
	for (i = 0; i < ARRAY_SIZE(rpc_drop_if_slow); i++)
		if (strcmp(event, rpc_drop_if_slow[i]) == 0)
			return WS_SEND_DROP_IF_SLOW;
	return 0;
}

void rpc_event_open(struct store_json_buf *jb, const char *event)
{
	static const char pre[] = "{\"type\":\"event\",\"event\":";

	store_json_raw(jb, pre, sizeof(pre) - 1);
	store_json_str(jb, event, strlen(event));
	store_json_raw(jb, ",\"payload\":", 11);
}

/* rpc_event_head written into jb. */
static void rpc_event_head_buf(struct store_json_buf *jb, const char *event,
			       const json_t *payload)
{
	size_t mark;
	char *p;

	rpc_event_open(jb, event);
	mark = jb->len;
	if (!payload) {
		store_json_raw(jb, "null", 4);
	} else if ((!json_is_object(payload) && !json_is_array(payload)) ||
		   store_json_val(jb, payload) < 0) {
		/* Scalars, and what the fast writer refuses: jansson. */
		jb->len = mark;
		p = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
		store_json_raw(jb, p ? p : "null", p ? strlen(p) : 4);
		free(p);
	}
	store_json_raw(jb, ",\"seq\":", 7);
}

char *rpc_event_head(const char *event, const json_t *payload, size_t *len)
{
	struct store_json_buf jb = {0};

	rpc_event_head_buf(&jb, event, payload);
	return store_json_done(&jb, len);
}

/* An event ready for the fan-out: its frame head written in jb, to
 * which the end of the frame is added (jb taken). */
static struct rpc_bcast *rpc_bcast_new(struct rpc_server *s,
				       struct store_json_buf *jb,
				       unsigned flags, int with_state,
				       unsigned scope_mask)
{
	struct rpc_bcast *b = xcalloc(1, sizeof(*b));
	size_t split = jb->len, len;
	char extra[96], *text;
	int n;

	b->srv = s;
	b->flags = flags;
	b->scope_mask = scope_mask;
	if (with_state) {
		n = snprintf(extra, sizeof(extra),
			     ",\"stateVersion\":{\"presence\":%lld,"
			     "\"health\":%lld}", (long long)presence_version(),
			     (long long)presence_health_version());
		store_json_raw(jb, extra, (size_t)n);
	}
	store_json_raw(jb, "}", 1);
	text = store_json_done(jb, &len);
	b->head = ws_shared_new(text, len, split);
	return b;
}

/* The same for a json_t payload (borrowed). */
static struct rpc_bcast *rpc_bcast_json(struct rpc_server *s,
					const char *event,
					const json_t *payload, int with_state,
					unsigned scope_mask)
{
	struct store_json_buf jb = {0};

	rpc_event_head_buf(&jb, event, payload);
	return rpc_bcast_new(s, &jb, rpc_event_flags(event, payload),
			     with_state, scope_mask);
}

/* One event to every ready connection it is for, each with its own seq
 * (counting only the frames queued on that socket). */
static void rpc_bcast_fan(struct rpc_bcast *b)
{
	struct rpc_conn *c, *next;

	for (c = b->srv->ready; c; c = next) {
		next = c->next;
		if (!c->ws || c->state != RPC_READY)
			continue;
		if (b->scope_mask && (!c->operator_role ||
		    !rpc_scope_allows(c->scopes, b->scope_mask)))
			continue;
		if (b->pred && !b->pred(c, b->pred_arg))
			continue;
		if (ws_conn_send_shared(c->ws, b->head, c->seq + 1,
					b->flags) == 0)
			c->seq++;
	}
}

/* Events posted together: each connection gets them queued at once (one
 * write when it is writable). */
static void rpc_broadcast_on_lws(void *arg)
{
	struct rpc_bcast *b = arg, *next;

	for (; b; b = next) {
		next = b->next;
		rpc_bcast_fan(b);
		rpc_bcast_free(b);
	}
}

json_t *rpc_ws_out_json(struct rpc_server *s)
{
	struct ws_out_stats st;

	if (!s->d.ws)
		return json_null();
	ws_server_out_stats(s->d.ws, &st);
	return json_pack("{s:I,s:I,s:I,s:I}", "frames", (json_int_t)st.frames,
			 "writes", (json_int_t)st.writes, "batchedFrames",
			 (json_int_t)st.batched, "droppedIfSlow",
			 (json_int_t)st.dropped);
}

void rpc_broadcast(struct rpc_server *s, const char *event, json_t *payload,
		   int with_state, unsigned scope_mask)
{
	rpc_send_where(s, event, payload, with_state, scope_mask, NULL, NULL,
		       NULL);
}

static void rpc_events_append(struct rpc_events *q, struct rpc_bcast *b)
{
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
}

void rpc_events_add(struct rpc_events *q, const char *event,
		    json_t *payload, int with_state, unsigned scope_mask,
		    rpc_conn_pred pred, void *pred_arg,
		    void (*pred_free)(void *))
{
	struct rpc_bcast *b;

	if (!rpc_has_listeners(q->srv)) {
		/* Nobody to tell: no serialising, no lws wake-up. A client
		 * that completes its handshake now would not have got it
		 * a moment earlier either. */
		json_decref(payload);
		if (pred_free)
			pred_free(pred_arg);
		return;
	}
	b = rpc_bcast_json(q->srv, event, payload, with_state, scope_mask);
	json_decref(payload);
	b->pred = pred;
	b->pred_arg = pred_arg;
	b->pred_free = pred_free;
	rpc_events_append(q, b);
}

void rpc_events_add_text(struct rpc_events *q, struct store_json_buf *jb,
			 unsigned flags, unsigned scope_mask)
{
	store_json_raw(jb, ",\"seq\":", 7);
	rpc_events_append(q, rpc_bcast_new(q->srv, jb, flags, 0,
					   scope_mask));
}

json_t *rpc_events_take(struct rpc_events *q)
{
	json_t *out = json_array();
	struct rpc_bcast *b, *next;
	const char *t;
	size_t len, split;

	for (b = q->head; b; b = next) {
		next = b->next;
		t = ws_shared_text(b->head, &len, &split);
		json_array_append_new(out, json_pack("{s:s%,s:s%,s:b}", "head",
			t, split, "tail", t + split, len - split, "dropIfSlow",
			!!(b->flags & WS_SEND_DROP_IF_SLOW)));
		rpc_bcast_free(b);
	}
	q->head = q->tail = NULL;
	return out;
}

void rpc_events_post(struct rpc_events *q)
{
	struct rpc_bcast *b = q->head, *next;

	q->head = q->tail = NULL;
	if (!b || ws_post(q->srv->d.ws, rpc_broadcast_on_lws, b) == 0)
		return;
	for (; b; b = next) {
		next = b->next;
		rpc_bcast_free(b);
	}
}

void rpc_send_where(struct rpc_server *s, const char *event, json_t *payload,
		    int with_state, unsigned scope_mask, rpc_conn_pred pred,
		    void *pred_arg, void (*pred_free)(void *))
{
	struct rpc_events q = {.srv = s};

	rpc_events_add(&q, event, payload, with_state, scope_mask, pred,
		       pred_arg, pred_free);
	rpc_events_post(&q);
}

static void rpc_close_on_lws(void *arg)
{
	struct rpc_bcast *b = arg;
	struct rpc_conn *c;

	for (c = b->srv->ready; c; c = c->next) {
		if (!c->ws || c->state != RPC_READY)
			continue;
		if (b->pred && !b->pred(c, b->pred_arg))
			continue;
		c->state = RPC_CLOSING;
		ws_conn_close(c->ws, b->close_code, b->close_reason);
	}
	rpc_bcast_free(b);
}

void rpc_close_where(struct rpc_server *s, rpc_conn_pred pred, void *pred_arg,
		     void (*pred_free)(void *), int code, const char *reason)
{
	struct rpc_bcast *b = xcalloc(1, sizeof(*b));

	b->srv = s;
	b->pred = pred;
	b->pred_arg = pred_arg;
	b->pred_free = pred_free;
	b->close_code = code;
	b->close_reason = xstrdup(reason);
	if (ws_post(s->d.ws, rpc_close_on_lws, b) != 0)
		rpc_bcast_free(b);
}

/* The health snapshot, cached as JSON text (lws thread). */
const char *rpc_health_json(struct rpc_server *s)
{
	if (!s->health_json)
		rpc_health_refresh(s, 0);
	return s->health_json;
}

void rpc_health_refresh(struct rpc_server *s, int broadcast)
{
	char *sp = xasprintf("%s/state/clawgate.sqlite", s->d.state_dir);
	json_t *h = presence_health(sp);

	channels_health_fill(channels_global(), h);
	free(sp);
	json_object_set_new(h, "eventLoop", rpc_diagnostics_event_loop());
	free(s->health_json);
	s->health_json = json_dumps(h, JSON_COMPACT);
	s->health_at = util_now_ms();
	presence_health_bump();
	if (broadcast)
		rpc_broadcast(s, "health", h, 1, 0);
	else
		json_decref(h);
}

static void rpc_tick(void *arg)
{
	struct rpc_server *s = arg;
	char payload[48];

	s->tick_timer = NULL;
	if (s->stopping)
		return;
	snprintf(payload, sizeof(payload), "{\"ts\":%lld}",
		 (long long)util_now_ms());
	rpc_broadcast(s, "tick", json_loads(payload, 0, NULL), 0, 0);
	s->tick_timer = ws_timer_add(s->d.ws, s->d.tick_ms, rpc_tick, s);
}

static void rpc_health_tick(void *arg)
{
	struct rpc_server *s = arg;

	s->health_timer = NULL;
	if (s->stopping)
		return;
	rpc_health_refresh(s, 1);
	s->health_timer = ws_timer_add(s->d.ws, s->d.health_ms,
				       rpc_health_tick, s);
}

static void rpc_start_on_lws(void *arg)
{
	struct rpc_server *s = arg;

	rpc_health_refresh(s, 0);
	rpc_diagnostics_start(s);
	s->tick_timer = ws_timer_add(s->d.ws, s->d.tick_ms, rpc_tick, s);
	s->health_timer = ws_timer_add(s->d.ws, s->d.health_ms,
				       rpc_health_tick, s);
}

void rpc_server_start(struct rpc_server *s)
{
	if (ws_post(s->d.ws, rpc_start_on_lws, s) != 0)
		log_warn("gateway", "cannot start rpc timers");
}

struct rpc_server *rpc_server_new(const struct rpc_deps *d)
{
	struct rpc_server *s = xcalloc(1, sizeof(*s));

	s->d = *d;
	if (s->d.agents)
		rpc_chat_observe(s);
	return s;
}

void rpc_server_set_ws(struct rpc_server *s, struct ws_server *ws)
{
	s->d.ws = ws;
}

struct rpc_stop {
	struct rpc_server *srv;
	char *reason;
	int64_t restart_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int abandoned;	/* the waiter timed out: the closure frees st */
};

static void rpc_stop_free(struct rpc_stop *st)
{
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	free(st->reason);
	free(st);
}

static void rpc_shutdown_on_lws(void *arg)
{
	struct rpc_stop *st = arg;
	struct rpc_server *s = st->srv;
	struct rpc_conn *c;
	json_t *p;
	int abandoned;

	s->stopping = 1;
	rpc_diagnostics_stop(s);
	rpc_node_stop(s);
	if (s->tick_timer)
		ws_timer_cancel(s->tick_timer);
	if (s->health_timer)
		ws_timer_cancel(s->health_timer);
	s->tick_timer = s->health_timer = NULL;
	p = json_pack("{s:s}", "reason", st->reason);
	if (st->restart_ms >= 0)
		json_object_set_new(p, "restartExpectedMs",
				    json_integer(st->restart_ms));
	/* Send synchronously: the fan-out below runs now, not posted. */
	rpc_broadcast_on_lws(rpc_bcast_json(s, "shutdown", p, 0, 0));
	json_decref(p);
	for (c = s->ready; c; c = c->next) {
		if (!c->ws)
			continue;
		c->state = RPC_CLOSING;
		if (st->restart_ms >= 0)
			ws_conn_close(c->ws, 1012, "service restart");
		else
			ws_conn_close(c->ws, 1001, "gateway stopping");
	}
	pthread_mutex_lock(&st->mu);
	st->done = 1;
	abandoned = st->abandoned;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	if (abandoned)
		rpc_stop_free(st);
}

void rpc_server_shutdown(struct rpc_server *s, const char *reason,
			 int64_t restart_expected_ms, int wait_ms)
{
	struct rpc_stop *st = xcalloc(1, sizeof(*st));
	struct timespec ts;
	int done;

	st->srv = s;
	st->reason = xstrdup(reason);
	st->restart_ms = restart_expected_ms;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	if (ws_post(s->d.ws, rpc_shutdown_on_lws, st) != 0) {
		free(st->reason);
		free(st);
		return;
	}
	util_deadline(&ts, wait_ms);
	pthread_mutex_lock(&st->mu);
	while (!st->done &&
	       pthread_cond_timedwait(&st->cv, &st->mu, &ts) == 0)
		;
	done = st->done;
	/* The closure still runs later (ws runs every queued closure
	 * before its thread exits): it frees st then. */
	st->abandoned = !done;
	pthread_mutex_unlock(&st->mu);
	if (!done) {
		log_warn("gateway", "shutdown broadcast timed out");
		return;
	}
	rpc_stop_free(st);
}

void rpc_server_free(struct rpc_server *s)
{
	if (!s)
		return;
	free(s->health_json);
	free(s);
}
