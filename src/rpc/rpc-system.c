/* System methods: health, status, system-presence, system-event,
 * last-heartbeat, gateway.identity.get, logs.tail. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/run-lane.h"
#include "auth/auth.h"
#include "auth/identity.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/ws.h"
#include "presence/presence.h"
#include "rpc/rpc-int.h"
#include "secrets/secrets.h"
#include "store/store.h"

#define LOGS_DEFAULT_LIMIT 500
#define LOGS_MAX_LIMIT 5000
#define LOGS_DEFAULT_BYTES 250000
#define LOGS_MAX_BYTES 1000000

/* Read an optional integer param within [lo, hi]; -1 on a bad value. */
static int rpc_param_int(struct rpc_call *call, const char *name, int64_t lo,
			 int64_t hi, int64_t *out)
{
	json_t *v = json_object_get(call->params, name);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /%s: must be integer in "
			       "%lld..%lld", name, (long long)lo,
			       (long long)hi);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

/* health: the session count comes from the store (a worker), then the
 * snapshot is refreshed and answered on the lws thread. */
static void rpc_system_health_answer(void *arg)
{
	struct rpc_call *call = arg;

	rpc_health_refresh(call->srv, json_is_true(json_object_get(
		call->params, "probe")));
	rpc_call_reply(call, 1, json_loads(rpc_health_json(call->srv), 0,
					   NULL), NULL, NULL, NULL);
	rpc_call_release(call);
}

static void rpc_system_health_count(void *arg)
{
	struct rpc_call *call = arg;

	rpc_diagnostics_count_sessions(call->srv, NULL);
	if (ws_post(call->srv->d.ws, rpc_system_health_answer, call) != 0) {
		rpc_call_reply(call, 0, NULL, "UNAVAILABLE",
			       "gateway is stopping", NULL);
		rpc_call_release(call);
	}
}

static int rpc_system_health(struct rpc_call *call)
{
	json_t *probe;
	int r;

	if (call->srv->d.store && call->srv->d.workers) {
		r = rpc_call_defer(call);
		if (workq_post(call->srv->d.workers, rpc_system_health_count,
			       call) == 0)
			return r;
		/* The pool is full: not deferred after all; answer from
		 * the last count. */
		call->deferred = 0;
		call->refs = 0;
	}
	probe = json_object_get(call->params, "probe");
	if (json_is_true(probe))
		rpc_health_refresh(call->srv, 1);
	call->payload_raw = xstrdup(rpc_health_json(call->srv));
	return GW_OK;
}

/* The RPC worker pool, in the upstream workerPools shape. */
static json_t *rpc_system_worker_pools(struct rpc_server *s)
{
	struct workq_stats ws = {0};

	if (s->d.workers)
		workq_stats(s->d.workers, &ws);
	return json_pack("{s:{s:i,s:i,s:i,s:i,s:i}}", "rpcWorkers",
			 "maxWorkers", ws.threads, "workers", ws.threads,
			 "workersCreated", ws.threads, "activeTasks",
			 ws.running, "pendingTasks", ws.queued);
}

/* clawgate's own figure (doc/hardening.md, "idle sockets"): the WS
 * service loop's backend and its work so far; the reliability harness
 * checks that the work per connect does not grow with open sockets. */
static json_t *rpc_system_ws_loop(struct rpc_server *s)
{
	unsigned long long iters = 0, scanned = 0;

	if (!s->d.ws)
		return json_null();
	ws_server_loop_work(s->d.ws, &iters, &scanned);
	return json_pack("{s:s,s:I,s:I,s:I}", "backend",
			 ws_server_loop_backend(s->d.ws), "wakeups",
			 (json_int_t)iters, "events", (json_int_t)scanned,
			 "timers", (json_int_t)ws_server_timers(s->d.ws));
}

/* status gateway.sessionEvents: store jobs that built session events for
 * subscribers (built) and that skipped them with none (skipped), and the
 * connections subscribed now. */
static json_t *rpc_system_sess_events(struct rpc_server *s)
{
	int64_t built = 0, skipped = 0;

	if (s->d.agents)
		agent_session_event_counts(s->d.agents, &built, &skipped);
	return json_pack("{s:I,s:I,s:i}", "built", (json_int_t)built,
			 "skipped", (json_int_t)skipped, "subscribers",
			 atomic_load(&s->session_subs));
}

/* status (worker): the gateway, sessions (counted from the store), the
 * heartbeat state (clawgate runs no heartbeat), process memory and the
 * lws timer lag. */
static int rpc_system_status(struct rpc_call *call)
{
	struct rpc_server *s = call->srv;
	json_t *gw, *by_agent = NULL, *ba, *v;
	const char *k;
	int64_t n;

	gw = json_pack("{s:i,s:I,s:i,s:s,s:s,s:i}", "pid", (int)getpid(),
		       "uptimeMs",
		       (json_int_t)(util_mono_ms() - s->d.start_mono_ms),
		       "port", s->d.port, "listening", s->d.listening,
		       "authMode", auth_mode_name(call->cfg->auth_mode),
		       "connections", s->nready);
	json_object_set_new(gw, "wsLoop", rpc_system_ws_loop(s));
	/* clawgate's own: the store writer's commits and checkpoints */
	if (s->d.store)
		json_object_set_new(gw, "store", store_status_json(s->d.store));
	json_object_set_new(gw, "wsOut", rpc_ws_out_json(s));
	json_object_set_new(gw, "sessionEvents", rpc_system_sess_events(s));
	if (s->d.agents) {	/* the global run lane */
		int act, wait, cap;

		run_lane_counts(s->d.agents, &act, &wait, &cap);
		json_object_set_new(gw, "runs", json_pack("{s:i,s:i,s:i}",
			"active", act, "waiting", wait, "maxConcurrent", cap));
	}
	if (call->scopes & SCOPE_ADMIN) {
		json_object_set_new(gw, "stateDir",
				    json_string(s->d.state_dir));
		json_object_set_new(gw, "configPath",
				    json_string(s->d.config_path));
	}
	n = rpc_diagnostics_count_sessions(s, &by_agent);
	ba = json_array();
	json_object_foreach(by_agent, k, v)
		json_array_append_new(ba, json_pack("{s:s,s:O,s:[]}",
			"agentId", k, "count", v, "recent"));
	call->payload = json_pack("{s:s,s:s,s:o,s:{s:s,s:[{s:s,s:b}]},"
				  "s:{s:I,s:o,s:[]},s:o,s:o,s:i}",
				  "runtimeVersion", s->d.version,
				  "implementation", s->d.build_id,
				  "gateway", gw, "heartbeat",
				  "defaultAgentId", "main", "agents",
				  "agentId", "main", "enabled", 0,
				  "sessions", "count",
				  (json_int_t)(n < 0 ? 0 : n), "byAgent", ba,
				  "recent", "processMemory",
				  rpc_diagnostics_process_memory(),
				  "eventLoop", rpc_diagnostics_event_loop(),
				  "pid", (int)getpid());
	json_object_set_new(call->payload, "workerPools",
			    rpc_system_worker_pools(s));
	/* No background tasks, channels or queued system events here. */
	json_object_set_new(call->payload, "tasks", json_pack(
		"{s:i,s:i,s:i,s:i,s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},"
		"s:{s:i,s:i,s:i,s:i}}", "total", 0, "active", 0, "terminal", 0,
		"failures", 0, "byStatus", "queued", 0, "running", 0,
		"succeeded", 0, "failed", 0, "timed_out", 0, "cancelled", 0,
		"lost", 0, "byRuntime", "subagent", 0, "acp", 0, "cli", 0,
		"cron", 0));
	json_object_set_new(call->payload, "channelSummary", json_array());
	json_object_set_new(call->payload, "queuedSystemEvents",
			    json_array());
	json_object_set_new(call->payload, "degradedSecretOwners",
			    secrets_degraded_owners_json(call->cfg));
	json_decref(by_agent);
	return GW_OK;
}

static int rpc_system_presence(struct rpc_call *call)
{
	call->payload = presence_list();
	return GW_OK;
}

/* system-event: a presence beacon and a line for the main session. */
static int rpc_system_event(struct rpc_call *call)
{
	static const char *const str_fields[] = {
		"deviceId", "instanceId", "host", "ip", "mode", "version",
		"platform", "deviceFamily", "modelIdentifier", "reason",
	};
	const char *text, *key;
	json_t *f, *v;
	size_t i;
	char *lk, *p;

	text = json_string_value(json_object_get(call->params, "text"));
	if (!text || !*text) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid system-event params: must have "
			       "required property 'text'");
		return GW_EINVAL;
	}
	if (strlen(text) > 4096) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid system-event params: text too long");
		return GW_EINVAL;
	}
	f = json_pack("{s:s}", "text", text);
	for (i = 0; i < ARRAY_SIZE(str_fields); i++) {
		v = json_object_get(call->params, str_fields[i]);
		if (json_is_string(v) && json_string_length(v) > 0 &&
		    json_string_length(v) <= 256)
			json_object_set(f, str_fields[i], v);
	}
	v = json_object_get(call->params, "lastInputSeconds");
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		json_object_set(f, "lastInputSeconds", v);
	if (!json_object_get(f, "reason"))
		json_object_set_new(f, "reason", json_string("event"));
	key = json_string_value(json_object_get(f, "deviceId"));
	if (!key)
		key = json_string_value(json_object_get(f, "instanceId"));
	if (!key)
		key = json_string_value(json_object_get(f, "host"));
	if (!key)
		key = call->conn->conn_id;
	lk = xstrdup(key);
	for (p = lk; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (!json_object_get(f, "host"))
		json_object_set_new(f, "host", json_string(key));
	presence_upsert(lk, f);
	free(lk);
	json_decref(f);
	log_info("gateway", "system-event: %.200s", text);
	rpc_broadcast(call->srv, "presence",
		      json_pack("{s:o}", "presence", presence_list()), 1, 0);
	call->payload = json_pack("{s:b}", "ok", 1);
	return GW_OK;
}

static int rpc_system_last_heartbeat(struct rpc_call *call)
{
	call->payload = json_null();
	return GW_OK;
}

static int rpc_system_identity(struct rpc_call *call)
{
	const struct identity *id = identity_lazy_get(call->srv->d.identity);

	if (!id)
		return GW_EUNAVAIL;
	call->payload = json_pack("{s:s,s:s}", "deviceId", id->device_id,
				  "publicKey", id->pub_b64url);
	return GW_OK;
}

/* Split buf[0..n) into complete lines appended to arr; returns bytes used
 * (up to and including the last newline). */
static size_t rpc_logs_lines(const char *buf, size_t n, json_t *arr)
{
	size_t start = 0, i;

	for (i = 0; i < n; i++) {
		if (buf[i] != '\n')
			continue;
		if (i > start)
			json_array_append_new(arr,
				json_stringn_nocheck(buf + start, i - start));
		start = i + 1;
	}
	return start;
}

static int rpc_system_logs_tail(struct rpc_call *call)
{
	int64_t limit = LOGS_DEFAULT_LIMIT, max_bytes = LOGS_DEFAULT_BYTES;
	int64_t cursor = -1, from, size;
	json_t *lines = NULL, *trimmed;
	char *path = NULL, *buf = NULL;
	struct stat st;
	int fd = -1, r = GW_EIO, reset = 0, truncated = 0;
	ssize_t got;
	size_t used, skip = 0, i, n;

	if (rpc_param_int(call, "limit", 1, LOGS_MAX_LIMIT, &limit) != 0 ||
	    rpc_param_int(call, "maxBytes", 1, LOGS_MAX_BYTES,
			  &max_bytes) != 0 ||
	    rpc_param_int(call, "cursor", 0, INT64_MAX, &cursor) != 0)
		return GW_EINVAL;
	path = log_file_path();
	if (!path) {
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "no log file is configured");
		return GW_EUNAVAIL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0)
		goto out;
	size = st.st_size;
	if (cursor > size) {
		reset = 1;
		cursor = -1;
	}
	if (cursor < 0) {
		from = size > max_bytes ? size - max_bytes : 0;
	} else {
		from = cursor;
		if (size - from > max_bytes)
			truncated = 1;
	}
	n = (size_t)(size - from < max_bytes ? size - from : max_bytes);
	buf = xmalloc(n + 1);
	got = pread(fd, buf, n, from);
	if (got < 0)
		goto out;
	n = (size_t)got;
	/* A tail that starts mid-file drops its partial first line. */
	if (cursor < 0 && from > 0) {
		const char *nl = memchr(buf, '\n', n);

		skip = nl ? (size_t)(nl - buf) + 1 : n;
	}
	lines = json_array();
	used = skip + rpc_logs_lines(buf + skip, n - skip, lines);
	if (cursor < 0 && json_array_size(lines) > (size_t)limit) {
		trimmed = json_array();
		for (i = json_array_size(lines) - (size_t)limit;
		     i < json_array_size(lines); i++)
			json_array_append(trimmed, json_array_get(lines, i));
		json_decref(lines);
		lines = trimmed;
		truncated = 1;
	} else if (cursor >= 0 && json_array_size(lines) > (size_t)limit) {
		/* Keep the first `limit` lines; the cursor stops after them. */
		const char *p = buf;

		for (i = 0; i < (size_t)limit; i++)
			p = (const char *)memchr(p, '\n', n - (size_t)(p - buf)) + 1;
		used = (size_t)(p - buf);
		while (json_array_size(lines) > (size_t)limit)
			json_array_remove(lines, json_array_size(lines) - 1);
		truncated = 1;
	}
	call->payload = json_pack("{s:s,s:I,s:I,s:o}", "file", path, "cursor",
				  (json_int_t)(from + (int64_t)used), "size",
				  (json_int_t)size, "lines", lines);
	if (truncated)
		json_object_set_new(call->payload, "truncated", json_true());
	if (reset)
		json_object_set_new(call->payload, "reset", json_true());
	r = GW_OK;
out:
	if (r != GW_OK)
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "cannot read log file: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return r;
}

const struct rpc_method rpc_system_methods[] = {
	{"health", rpc_system_health, "operator.read", 0,
	 "health summary (cached; probe:true refreshes)"},
	{"status", rpc_system_status, "operator.read", RPC_F_WORKER,
	 "gateway status summary"},
	{"system-presence", rpc_system_presence, "operator.read", 0,
	 "presence entries, newest first"},
	{"system-event", rpc_system_event, "operator.admin", 0,
	 "record a system event / presence beacon"},
	{"last-heartbeat", rpc_system_last_heartbeat, "operator.read", 0,
	 "the last heartbeat event, or null"},
	{"gateway.identity.get", rpc_system_identity, "operator.read",
	 RPC_F_WORKER,
	 "the gateway's own Ed25519 identity"},
	{"logs.tail", rpc_system_logs_tail, "operator.read", RPC_F_WORKER,
	 "tail the gateway's JSON-lines log file"},
};
const size_t rpc_system_methods_count = ARRAY_SIZE(rpc_system_methods);
