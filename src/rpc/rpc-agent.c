/* Agent methods: `agent` (two res frames on one request id: accepted,
 * then the final result), agent.wait, wake, models.list, agents.list. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "rpc/rpc-int.h"

#define AGENT_MESSAGE_MAX (1024 * 1024)
#define AGENT_WAIT_DEFAULT_MS 30000
#define AGENT_WAIT_MAX_MS (24LL * 3600 * 1000)

static const char *rpc_agent_opt_str(struct rpc_call *call, const char *name,
				     int *bad)
{
	const json_t *v = json_object_get(call->params, name);

	if (!v)
		return NULL;
	if (!json_is_string(v)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /%s: must be string", name);
		*bad = 1;
		return NULL;
	}
	return json_string_value(v);
}

/* ---- agent: the second res comes from the run's end ------------------------ */

struct rpc_agent_job {
	struct rpc_call *call;
	pthread_mutex_t mu;
	atomic_int refs;	/* the handler and the sink */
	int acked;		/* the accepted ack went out (or none due) */
	json_t *final_payload;	/* a final that arrived before the ack */
	char *final_err;
	int final_ok;
	struct run_sink sink;
};

static void rpc_agent_job_unref(struct rpc_agent_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	json_decref(j->final_payload);
	free(j->final_err);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

/* Send the final res and let the call go. */
static void rpc_agent_send_final(struct rpc_agent_job *j, int ok,
				 json_t *payload, const char *err)
{
	if (ok)
		rpc_call_reply(j->call, 1, payload, NULL, NULL, NULL);
	else
		rpc_call_reply(j->call, 0, payload, "UNAVAILABLE", err, NULL);
	rpc_call_release(j->call);
}

static json_t *rpc_agent_final(const struct run_result *res, int *ok)
{
	json_t *p;

	*ok = res->status == RUN_OK;
	if (!*ok)
		return json_pack("{s:s,s:s,s:s}", "runId", res->run_id,
				 "status", "error", "summary",
				 res->error ? res->error : "run failed");
	p = json_pack("{s:s,s:s,s:s,s:{s:s,s:[{s:s}],s:{s:I,s:{s:I,s:I}}}}",
		      "runId", res->run_id, "status", "ok", "summary",
		      "completed", "result", "text", res->text, "payloads",
		      "text", res->text, "meta", "durationMs",
		      (json_int_t)(res->ended_at - res->started_at), "usage",
		      "input", (json_int_t)res->input_tokens, "output",
		      (json_int_t)res->output_tokens);
	if (res->model)
		json_object_set_new(json_object_get(json_object_get(p,
			"result"), "meta"), "model", json_string(res->model));
	if (res->session_key)
		json_object_set_new(json_object_get(p, "result"),
				    "sessionKey",
				    json_string(res->session_key));
	return p;
}

static void rpc_agent_on_end(void *arg, const struct run_result *res)
{
	struct rpc_agent_job *j = arg;
	json_t *p;
	int ok;

	p = rpc_agent_final(res, &ok);
	pthread_mutex_lock(&j->mu);
	if (j->acked) {
		rpc_agent_send_final(j, ok, p,
				     res->error ? res->error : "run failed");
	} else {
		j->final_payload = p;
		j->final_ok = ok;
		j->final_err = xstrdup(res->error ? res->error : "run failed");
	}
	pthread_mutex_unlock(&j->mu);
	rpc_agent_job_unref(j);
}

static int rpc_agent_run(struct rpc_call *call)
{
	struct agent_rt *rt = call->srv->d.agents;
	struct run_request rq = {0};
	struct rpc_agent_job *j = NULL;
	struct run *r = NULL;
	const char *msg, *idem, *sk, *aid, *model, *prov, *extra, *ch;
	const json_t *v;
	char *key = NULL, *err = NULL, *agent = NULL, *ovr = NULL;
	int bad = 0, rc;

	if (rpc_call_need_agents(call) != 0)
		return GW_EINVAL;
	v = json_object_get(call->params, "message");
	msg = json_string_value(v);
	if (!msg || !*msg || json_string_length(v) > AGENT_MESSAGE_MAX) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: must have required property "
			       "'message' (a non-empty string)");
		return GW_EINVAL;
	}
	v = json_object_get(call->params, "idempotencyKey");
	idem = json_string_value(v);
	if (!idem || !*idem || json_string_length(v) > 256) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: must have required property "
			       "'idempotencyKey'");
		return GW_EINVAL;
	}
	sk = rpc_agent_opt_str(call, "sessionKey", &bad);
	aid = rpc_agent_opt_str(call, "agentId", &bad);
	model = rpc_agent_opt_str(call, "model", &bad);
	prov = rpc_agent_opt_str(call, "provider", &bad);
	extra = rpc_agent_opt_str(call, "extraSystemPrompt", &bad);
	ch = rpc_agent_opt_str(call, "channel", &bad);
	v = json_object_get(call->params, "timeout");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /timeout: must be integer "
			       ">= 0");
		return GW_EINVAL;
	}
	if (bad)
		return GW_EINVAL;
	if ((model || prov) && !(call->scopes & SCOPE_ADMIN))
		return rpc_call_missing_scope(call, "operator.admin");
	if (aid && !agent_exists(rt, aid)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "Unknown agent '%s'.", aid);
		return GW_EINVAL;
	}
	if (sk && *sk) {
		if (!(key = rpc_sessions_canon(call, sk)))
			return GW_EINVAL;
		agent = agent_session_key_agent(key);
	} else {
		key = agent_session_key_main(aid ? aid
						 : agent_default_id(rt));
		agent = agent_session_key_agent(key);
	}
	if (model && prov && !strchr(model, '/'))
		ovr = xasprintf("%s/%s", prov, model);
	else if (model)
		ovr = xstrdup(model);

	j = xcalloc(1, sizeof(*j));
	pthread_mutex_init(&j->mu, NULL);
	atomic_init(&j->refs, 2);
	j->call = call;
	j->sink.on_end = rpc_agent_on_end;
	j->sink.arg = j;
	rpc_call_defer(call);

	rq.agent_id = agent;
	rq.session_key = key;
	rq.run_id = idem;
	rq.messages = json_pack("[{s:s,s:s}]", "role", "user", "content",
				msg);
	rq.use_history = 1;
	rq.extra_system = extra;
	rq.model_override = ovr;
	rq.channel = ch && *ch ? ch : "agent";
	/* Range-checked before the arithmetic (a client's 1e18 would
	 * overflow): longer than the longest wait means "no limit". */
	rq.timeout_ms = !v ? 0 : json_integer_value(v) > AGENT_WAIT_MAX_MS /
		1000 ? AGENT_WAIT_MAX_MS : json_integer_value(v) * 1000;
	rc = run_start(rt, &rq, &j->sink, &r, &err);
	if (rc != GW_OK) {
		/* The sink was never attached: one error res. */
		rpc_call_reply(call, 0, NULL, rc == GW_EUNAVAIL
			       ? "UNAVAILABLE" : "INVALID_REQUEST",
			       err ? err : gw_err_str(rc), NULL);
		rpc_call_release(call);
		rpc_agent_job_unref(j);
		rpc_agent_job_unref(j);
		goto out;
	}
	pthread_mutex_lock(&j->mu);
	if (rq.origin != RUN_REPLAY)
		rpc_call_reply(call, 1, json_pack("{s:s,s:s,s:I}", "runId",
			run_id(r), "status", "accepted", "acceptedAt",
			(json_int_t)util_now_ms()), NULL, NULL, NULL);
	j->acked = 1;
	if (j->final_payload) {
		rpc_agent_send_final(j, j->final_ok, j->final_payload,
				     j->final_err);
		j->final_payload = NULL;
	}
	pthread_mutex_unlock(&j->mu);
	rpc_agent_job_unref(j);
out:
	run_unref(r);
	free(err);
	free(key);
	free(agent);
	free(ovr);
	return GW_EPENDING;
}

/* ---- agent.wait ------------------------------------------------------------ */

static void rpc_agent_wait_done(void *arg, json_t *payload)
{
	struct rpc_call *call = arg;

	rpc_call_reply(call, 1, payload, NULL, NULL, NULL);
	rpc_call_release(call);
}

static int rpc_agent_wait(struct rpc_call *call)
{
	const json_t *v;
	const char *id;
	int64_t t = AGENT_WAIT_DEFAULT_MS;

	if (rpc_call_need_agents(call) != 0)
		return GW_EINVAL;
	v = json_object_get(call->params, "runId");
	id = json_string_value(v);
	if (!id || !*id) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: must have required property "
			       "'runId'");
		return GW_EINVAL;
	}
	v = json_object_get(call->params, "timeoutMs");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: at /timeoutMs: must be "
			       "integer >= 0");
		return GW_EINVAL;
	}
	if (v)
		t = json_integer_value(v) > AGENT_WAIT_MAX_MS
			? AGENT_WAIT_MAX_MS : json_integer_value(v);
	rpc_call_defer(call);
	if (run_wait(call->srv->d.agents, id, t, rpc_agent_wait_done, call) !=
	    GW_OK) {
		rpc_call_reply(call, 0, NULL, "UNAVAILABLE",
			       "gateway is stopping", NULL);
		rpc_call_release(call);
	}
	return GW_EPENDING;
}

/* ---- wake, models, agents ---------------------------------------------------- */

static int rpc_agent_wake(struct rpc_call *call)
{
	const char *mode, *text, *sk;
	char *err = NULL, *rid = NULL;
	int rc;

	if (rpc_call_need_agents(call) != 0)
		return GW_EINVAL;
	mode = json_string_value(json_object_get(call->params, "mode"));
	text = json_string_value(json_object_get(call->params, "text"));
	if (!mode || (strcmp(mode, "now") && strcmp(mode, "next-heartbeat"))) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: mode must be \"now\" or "
			       "\"next-heartbeat\"");
		return GW_EINVAL;
	}
	if (!text || !*text) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid params: must have required property "
			       "'text'");
		return GW_EINVAL;
	}
	sk = json_string_value(json_object_get(call->params, "sessionKey"));
	rc = agent_wake(call->srv->d.agents, NULL, sk, text, mode, &rid,
			&err);
	if (rc == GW_OK) {
		call->payload = json_pack("{s:b,s:s}", "ok", 1, "mode", mode);
		if (rid)
			json_object_set_new(call->payload, "runId",
					    json_string(rid));
	} else {
		rpc_call_error(call, "INVALID_REQUEST", NULL, "%s",
			       err ? err : gw_err_str(rc));
	}
	free(rid);
	free(err);
	return rc;
}

static int rpc_agent_models(struct rpc_call *call)
{
	if (rpc_call_need_agents(call) != 0)
		return GW_EINVAL;
	call->payload = agent_models(call->srv->d.agents);
	return GW_OK;
}

static int rpc_agent_list(struct rpc_call *call)
{
	if (rpc_call_need_agents(call) != 0)
		return GW_EINVAL;
	call->payload = agent_list(call->srv->d.agents);
	return GW_OK;
}

const struct rpc_method rpc_agent_methods[] = {
	{"agent", rpc_agent_run, "operator.write", RPC_F_WORKER,
	 "run the agent: accepted now, the result on the same id later"},
	{"agent.wait", rpc_agent_wait, "operator.write", RPC_F_WORKER,
	 "wait for a run to end"},
	{"wake", rpc_agent_wake, "operator.write", RPC_F_WORKER,
	 "wake the agent with a system event"},
	{"models.list", rpc_agent_models, "operator.read", 0,
	 "configured provider models"},
	{"agents.list", rpc_agent_list, "operator.read", 0,
	 "configured agents"},
};
const size_t rpc_agent_methods_count = ARRAY_SIZE(rpc_agent_methods);
