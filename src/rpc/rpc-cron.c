/* Automations over WebSocket: the cron.* methods (src/cron/cron.h holds
 * the behaviour; these handlers map params, results and errors). Every
 * handler runs on the worker pool (the store is touched). */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "cron/cron.h"
#include "rpc/rpc-int.h"

typedef int (*rpc_cron_fn)(struct cron *c, const json_t *p, json_t **out,
			   char **err, json_t **details);

/* Common shape: no scheduler → UNAVAILABLE; a refused request →
 * INVALID_REQUEST "invalid <method> params: ..." (CRON_JOB_NOT_FOUND
 * details for an unknown job, as upstream). */
static int rpc_cron_call(struct rpc_call *call, rpc_cron_fn fn)
{
	struct cron *c = call->srv->d.cron;
	json_t *out = NULL, *details = NULL;
	char *err = NULL;
	int r;

	if (!c) {
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "automations are unavailable");
		return GW_EUNAVAIL;
	}
	r = fn(c, call->params, &out, &err, &details);
	if (r == GW_OK) {
		call->payload = out;
		if (strcmp(call->method, "cron.list") &&
		    strcmp(call->method, "cron.get") &&
		    strcmp(call->method, "cron.status") &&
		    strcmp(call->method, "cron.runs") &&
		    strcmp(call->method, "cron.scratch.get"))
			log_info("cron", "%s by %s", call->method,
				 call->conn && call->conn->client_id ?
				 call->conn->client_id : "?");
	} else if (r == GW_ENOTFOUND) {
		rpc_call_error(call, "INVALID_REQUEST", details, "%s",
			       err ? err : "not found");
		details = NULL;
	} else if (r == GW_ESTORE || r == GW_EUNAVAIL) {
		rpc_call_error(call, "UNAVAILABLE", NULL, "%s",
			       err ? err : "the state database is "
			       "unavailable");
	} else {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid %s params: %s", call->method,
			       err ? err : "bad request");
	}
	json_decref(details);
	free(err);
	return r;
}

static int rpc_cron_list_fn(struct cron *c, const json_t *p, json_t **out,
			    char **err, json_t **details)
{
	(void)details;
	return cron_list(c, p, out, err);
}

static int rpc_cron_status_fn(struct cron *c, const json_t *p, json_t **out,
			      char **err, json_t **details)
{
	(void)p;
	(void)err;
	(void)details;
	*out = cron_status(c);
	return GW_OK;
}

static int rpc_cron_add_fn(struct cron *c, const json_t *p, json_t **out,
			   char **err, json_t **details)
{
	(void)details;
	return cron_add(c, p, out, err);
}

static int rpc_cron_list(struct rpc_call *call)
{
	return rpc_cron_call(call, rpc_cron_list_fn);
}

static int rpc_cron_status(struct rpc_call *call)
{
	return rpc_cron_call(call, rpc_cron_status_fn);
}

static int rpc_cron_get(struct rpc_call *call)
{
	return rpc_cron_call(call, cron_get);
}

static int rpc_cron_add(struct rpc_call *call)
{
	return rpc_cron_call(call, rpc_cron_add_fn);
}

static int rpc_cron_update(struct rpc_call *call)
{
	return rpc_cron_call(call, cron_update);
}

static int rpc_cron_remove(struct rpc_call *call)
{
	return rpc_cron_call(call, cron_remove);
}

static int rpc_cron_run(struct rpc_call *call)
{
	return rpc_cron_call(call, cron_run);
}

static int rpc_cron_runs(struct rpc_call *call)
{
	return rpc_cron_call(call, cron_runs);
}

static int rpc_cron_scratch_get(struct rpc_call *call)
{
	return rpc_cron_call(call, cron_scratch_get);
}

static int rpc_cron_scratch_set(struct rpc_call *call)
{
	return rpc_cron_call(call, cron_scratch_set);
}

const struct rpc_method rpc_cron_methods[] = {
	{"cron.list", rpc_cron_list, "operator.read", RPC_F_WORKER,
	 "automations (enabled ones unless includeDisabled)"},
	{"cron.status", rpc_cron_status, "operator.read", RPC_F_WORKER,
	 "scheduler status: enabled, job count, next wake"},
	{"cron.get", rpc_cron_get, "operator.read", RPC_F_WORKER,
	 "one automation"},
	{"cron.add", rpc_cron_add, "operator.admin", RPC_F_WORKER,
	 "create an automation"},
	{"cron.update", rpc_cron_update, "operator.admin", RPC_F_WORKER,
	 "patch an automation"},
	{"cron.remove", rpc_cron_remove, "operator.admin", RPC_F_WORKER,
	 "delete an automation (its run history stays)"},
	{"cron.run", rpc_cron_run, "operator.admin", RPC_F_WORKER,
	 "queue a run now (mode force|due|if-enabled)"},
	{"cron.runs", rpc_cron_runs, "operator.read", RPC_F_WORKER,
	 "run history, newest first"},
	{"cron.scratch.get", rpc_cron_scratch_get, "operator.admin",
	 RPC_F_WORKER, "a job's private scratch text"},
	{"cron.scratch.set", rpc_cron_scratch_set, "operator.admin",
	 RPC_F_WORKER, "replace or clear a job's scratch (compare-and-swap)"},
};
const size_t rpc_cron_methods_count = ARRAY_SIZE(rpc_cron_methods);
