/* Session methods: sessions.list/get/preview/patch/reset/delete, the
 * subscriptions (sessions.subscribe, sessions.messages.subscribe) and the
 * targeted `sessions.changed` / `session.message` events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "core/common.h"
#include "core/log.h"
#include "rpc/rpc-int.h"

#define SESSIONS_PREVIEW_LIMIT 12
#define SESSIONS_PREVIEW_CHARS 240
#define SESSIONS_PREVIEW_KEYS 64
#define SESSIONS_SUBS_MAX 256

/* The canonical session key from params[name]; NULL with an error set. */
char *rpc_sessions_canon(struct rpc_call *call, const char *k)
{
	char *key = NULL, *err = NULL;

	if (agent_session_key_canon(call->srv->d.agents, k, &key, &err) !=
	    GW_OK) {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "%s", err);
		free(err);
		return NULL;
	}
	return key;
}

static char *rpc_sessions_key(struct rpc_call *call, const char *name)
{
	const json_t *v = json_object_get(call->params, name);

	if (!json_is_string(v) || !json_string_length(v)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: must have required property "
			       "'%s'", name);
		return NULL;
	}
	return rpc_sessions_canon(call, json_string_value(v));
}

static int rpc_sessions_list(struct rpc_call *call)
{
	const json_t *v;

	if (rpc_call_need_agents(call) != 0)
		return GW_EINVAL;
	v = json_object_get(call->params, "limit");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /limit: must be >= 1");
		return GW_EINVAL;
	}
	call->payload = session_list(call->srv->d.agents, call->params);
	return GW_OK;
}

static int rpc_sessions_get(struct rpc_call *call)
{
	json_t *row;
	char *key;

	if (rpc_call_need_agents(call) != 0 ||
	    !(key = rpc_sessions_key(call, "key")))
		return GW_EINVAL;
	row = session_get(call->srv->d.agents, key);
	call->payload = json_pack("{s:s,s:b,s:o}", "key", key, "exists",
				  row != NULL, "entry",
				  row ? row : json_null());
	free(key);
	return GW_OK;
}

static int rpc_sessions_preview(struct rpc_call *call)
{
	const json_t *keys = json_object_get(call->params, "keys"), *v;
	int64_t limit = SESSIONS_PREVIEW_LIMIT, chars = SESSIONS_PREVIEW_CHARS;
	size_t i;

	if (rpc_call_need_agents(call) != 0)
		return GW_EINVAL;
	if (!json_is_array(keys) || !json_array_size(keys) ||
	    json_array_size(keys) > SESSIONS_PREVIEW_KEYS) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: keys must be an array of 1..%d "
			       "session keys", SESSIONS_PREVIEW_KEYS);
		return GW_EINVAL;
	}
	json_array_foreach(keys, i, v) {
		if (!json_is_string(v) || !json_string_length(v)) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "invalid params: at /keys/%zu: must be "
				       "a non-empty string", i);
			return GW_EINVAL;
		}
	}
	v = json_object_get(call->params, "limit");
	if (json_is_integer(v) && json_integer_value(v) >= 1)
		limit = json_integer_value(v) > 200 ? 200
						    : json_integer_value(v);
	v = json_object_get(call->params, "maxChars");
	if (json_is_integer(v) && json_integer_value(v) >= 20)
		chars = json_integer_value(v) > 20000 ? 20000
						      : json_integer_value(v);
	call->payload = session_preview(call->srv->d.agents, keys, (int)limit,
					(int)chars);
	return GW_OK;
}

static int rpc_sessions_patch(struct rpc_call *call)
{
	json_t *entry = NULL;
	char *key, *err = NULL;
	const char *model, *slash;
	int r;

	if (rpc_call_need_agents(call) != 0 ||
	    !(key = rpc_sessions_key(call, "key")))
		return GW_EINVAL;
	r = session_patch(call->srv->d.agents, key, call->params, &entry,
			  &err);
	if (r != GW_OK) {
		if (err)
			rpc_call_error(call, "INVALID_REQUEST", NULL, "%s",
				       err);
		free(err);
		free(key);
		return r;
	}
	log_info("rpc", "sessions.patch %s by %s", key,
		 call->conn && call->conn->client_id ? call->conn->client_id
						     : "?");
	call->payload = json_pack("{s:b,s:s,s:s,s:o}", "ok", 1, "path", "",
				  "key", key, "entry", entry);
	model = json_string_value(json_object_get(call->params, "model"));
	if (model && (slash = strchr(model, '/')))
		json_object_set_new(call->payload, "resolved", json_pack(
			"{s:s%,s:s}", "modelProvider", model,
			(size_t)(slash - model), "model", slash + 1));
	free(key);
	return GW_OK;
}

static int rpc_sessions_reset(struct rpc_call *call)
{
	const char *reason = json_string_value(json_object_get(call->params,
							       "reason"));
	json_t *entry = NULL;
	char *key;
	int r;

	if (rpc_call_need_agents(call) != 0 ||
	    !(key = rpc_sessions_key(call, "key")))
		return GW_EINVAL;
	if (reason && strcmp(reason, "new") && strcmp(reason, "reset")) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: reason must be \"new\" or "
			       "\"reset\"");
		free(key);
		return GW_EINVAL;
	}
	run_abort_session(call->srv->d.agents, key);
	r = session_reset(call->srv->d.agents, key, reason, &entry);
	if (r == GW_OK) {
		log_info("rpc", "sessions.reset %s", key);
		call->payload = json_pack("{s:b,s:s,s:o}", "ok", 1, "key", key,
					  "entry", entry);
	}
	free(key);
	return r;
}

static int rpc_sessions_delete(struct rpc_call *call)
{
	const json_t *dt = json_object_get(call->params, "deleteTranscript");
	char *key;
	int r, deleted = 0;
	size_t kl;

	if (rpc_call_need_agents(call) != 0 ||
	    !(key = rpc_sessions_key(call, "key")))
		return GW_EINVAL;
	kl = strlen(key);
	if (kl > 5 && strcmp(key + kl - 5, ":main") == 0) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "cannot delete the main session %s (use "
			       "sessions.reset)", key);
		free(key);
		return GW_EINVAL;
	}
	run_abort_session(call->srv->d.agents, key);
	r = session_delete(call->srv->d.agents, key,
			   dt ? json_is_true(dt) : 1, &deleted);
	if (r == GW_OK) {
		log_info("rpc", "sessions.delete %s (%s)", key,
			 deleted ? "deleted" : "absent");
		call->payload = json_pack("{s:b,s:s,s:b,s:[]}", "ok", 1, "key",
					  key, "deleted", deleted, "archived");
	}
	free(key);
	return r;
}

/* ---- subscriptions (lws thread) -------------------------------------------- */

void rpc_sessions_recount(struct rpc_conn *c, int gone)
{
	int now = !gone && (c->sessions_sub ||
			    json_object_size(c->session_keys) > 0);

	if (now == c->session_counted)
		return;
	c->session_counted = now;
	atomic_fetch_add(&c->srv->session_subs, now ? 1 : -1);
}

static int rpc_sessions_subscribe(struct rpc_call *call)
{
	call->conn->sessions_sub = 1;
	rpc_sessions_recount(call->conn, 0);
	call->payload = json_pack("{s:b}", "subscribed", 1);
	return GW_OK;
}

static int rpc_sessions_unsubscribe(struct rpc_call *call)
{
	call->conn->sessions_sub = 0;
	rpc_sessions_recount(call->conn, 0);
	call->payload = json_pack("{s:b}", "subscribed", 0);
	return GW_OK;
}

static int rpc_sessions_msg_subscribe(struct rpc_call *call)
{
	struct rpc_conn *c = call->conn;
	char *key;

	if (rpc_call_need_agents(call) != 0 ||
	    !(key = rpc_sessions_key(call, "key")))
		return GW_EINVAL;
	if (!c->session_keys)
		c->session_keys = json_object();
	if (json_object_size(c->session_keys) >= SESSIONS_SUBS_MAX &&
	    !json_object_get(c->session_keys, key)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "too many session subscriptions (max %d)",
			       SESSIONS_SUBS_MAX);
		free(key);
		return GW_EINVAL;
	}
	json_object_set_new(c->session_keys, key, json_true());
	rpc_sessions_recount(c, 0);
	call->payload = json_pack("{s:b,s:s}", "subscribed", 1, "key", key);
	free(key);
	return GW_OK;
}

static int rpc_sessions_msg_unsubscribe(struct rpc_call *call)
{
	char *key;

	if (rpc_call_need_agents(call) != 0 ||
	    !(key = rpc_sessions_key(call, "key")))
		return GW_EINVAL;
	json_object_del(call->conn->session_keys, key);
	rpc_sessions_recount(call->conn, 0);
	call->payload = json_pack("{s:b,s:s}", "subscribed", 0, "key", key);
	free(key);
	return GW_OK;
}

const struct rpc_method rpc_sessions_methods[] = {
	{"sessions.list", rpc_sessions_list, "operator.read", RPC_F_WORKER,
	 "sessions, most recently active first"},
	{"sessions.get", rpc_sessions_get, "operator.read", RPC_F_WORKER,
	 "one session row"},
	{"sessions.preview", rpc_sessions_preview, "operator.read",
	 RPC_F_WORKER, "the last messages of some sessions"},
	{"sessions.patch", rpc_sessions_patch, "operator.write", RPC_F_WORKER,
	 "set session fields (label, model, thinkingLevel, ...)"},
	{"sessions.reset", rpc_sessions_reset, "operator.admin", RPC_F_WORKER,
	 "start a new session id (empty history)"},
	{"sessions.delete", rpc_sessions_delete, "operator.admin",
	 RPC_F_WORKER, "delete a session and its transcript"},
	{"sessions.subscribe", rpc_sessions_subscribe, "operator.read", 0,
	 "receive sessions.changed events"},
	/* Upstream v3 had it; the published v4 schema does not: callable,
	 * not advertised. */
	{"sessions.unsubscribe", rpc_sessions_unsubscribe, "operator.read",
	 RPC_F_LOCAL, "stop sessions.changed events"},
	{"sessions.messages.subscribe", rpc_sessions_msg_subscribe,
	 "operator.read", 0, "receive session.message events of a session"},
	{"sessions.messages.unsubscribe", rpc_sessions_msg_unsubscribe,
	 "operator.read", 0, "stop session.message events of a session"},
};
const size_t rpc_sessions_methods_count = ARRAY_SIZE(rpc_sessions_methods);
