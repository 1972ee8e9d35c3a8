/* Nodes: devices connected with role "node" that run commands for the
 * operators. The device pairing of the role (rpc-connect.c, pairing.c)
 * admits the connection; its declared command surface (caps, commands,
 * permissions) then needs node pairing (node.pair.*): the first surface and
 * any widening of it waits as a pending request until an operator
 * approves it, and only approved commands can be invoked.
 *
 * node.invoke is relayed to the node's connection as a node.invoke.request
 * event; the node answers with node.invoke.result, which answers the
 * caller. An invocation ends with the node's result, a timeout, or the
 * node's disconnect; a retry with the same idempotencyKey joins the one in
 * flight or gets the finished result (kept RPC_NODE_DONE_TTL_MS).
 *
 * Threads: the registry of connected nodes is written on the lws thread
 * (connect, disconnect) and by workers (effective commands after an
 * approval), read by workers, all under nodes.mu. Invocations live on the
 * lws thread only. Surfaces are stored by store-nodes.c (workers). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/ws.h"
#include "rpc/rpc-int.h"
#include "store/store-nodes.h"

#define RPC_NODE_SURFACE_MAX 256	/* caps or commands per node */
#define RPC_NODE_STR_MAX 200
#define RPC_NODE_INVOKE_DEFAULT_MS 30000
#define RPC_NODE_INVOKE_MAX_MS 600000
#define RPC_NODE_PARAMS_MAX (4u * 1024 * 1024)
#define RPC_NODE_JOIN_MAX 8
#define RPC_NODE_DONE_MAX 128
#define RPC_NODE_DONE_TTL_MS (5 * 60 * 1000)

/* A connected node. */
struct rpc_node_sess {
	char conn_id[37];
	struct rpc_conn *c;	/* lws thread only */
	char *node_id;
	json_t *declared;	/* what it connected with (see _declared) */
	json_t *effective;	/* declared commands that are approved */
	char *pending_request;	/* its surface waits for approval */
	int64_t connected_at;
	struct rpc_node_sess *next;
};

/* An invocation in flight (lws thread). */
struct rpc_node_inv {
	char id[37];
	char conn_id[37];
	char *node_id, *command, *idem;
	struct rpc_call *calls[RPC_NODE_JOIN_MAX];
	int ncalls;
	struct ws_timer *timer;
	struct rpc_server *srv;
	struct rpc_node_inv *next;
};

/* A finished invocation, for idempotent retries (lws thread). */
struct rpc_node_done {
	char *node_id, *idem;
	json_t *payload;	/* ok: the result; else NULL */
	char *err_msg;
	json_t *err_details;
	int64_t at;
};

static struct {
	pthread_mutex_t mu;
	struct rpc_node_sess *sess;
	struct rpc_node_inv *inv;		/* lws thread */
	struct rpc_node_done done[RPC_NODE_DONE_MAX];	/* lws thread */
	int done_next;
} nodes = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- surfaces ---------------------------------------------------------- */

/* A bounded array of distinct non-empty strings (NULL when invalid). */
static json_t *rpc_node_strlist(const json_t *v)
{
	json_t *a = json_array(), *e;
	size_t i, j;

	if (!v)
		return a;
	if (!json_is_array(v) || json_array_size(v) > RPC_NODE_SURFACE_MAX)
		goto bad;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || !json_string_length(e) ||
		    json_string_length(e) > RPC_NODE_STR_MAX)
			goto bad;
		for (j = 0; j < json_array_size(a); j++)
			if (json_equal(json_array_get(a, j), e))
				break;
		if (j == json_array_size(a))
			json_array_append(a, e);
	}
	return a;
bad:
	json_decref(a);
	return NULL;
}

static int rpc_node_has(const json_t *list, const char *s)
{
	const json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
		if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
			return 1;
	return 0;
}

/* Every string of a is in b. */
static int rpc_node_subset(const json_t *a, const json_t *b)
{
	const json_t *e;
	size_t i;

	json_array_foreach(a, i, e)
		if (!rpc_node_has(b, json_string_value(e)))
			return 0;
	return 1;
}

static json_t *rpc_node_intersect(const json_t *a, const json_t *b)
{
	json_t *o = json_array();
	const json_t *e;
	size_t i;

	json_array_foreach(a, i, e)
		if (rpc_node_has(b, json_string_value(e)))
			json_array_append(o, (json_t *)e);
	return o;
}

static void rpc_node_copy_str(json_t *dst, const char *dk, const json_t *src,
			      const char *sk)
{
	const json_t *v = json_object_get(src, sk);

	if (json_is_string(v) && json_string_length(v) &&
	    json_string_length(v) <= RPC_NODE_STR_MAX)
		json_object_set(dst, dk, (json_t *)v);
}

/* The declared surface of connect params: {clientId, clientMode,
 * displayName?, platform?, version?, deviceFamily?, modelIdentifier?,
 * remoteIp?, caps, commands, permissions?}. */
static json_t *rpc_node_declared(struct rpc_conn *c, const json_t *params)
{
	const json_t *cl = json_object_get(params, "client"), *p;
	json_t *o = json_object(), *l;

	rpc_node_copy_str(o, "clientId", cl, "id");
	rpc_node_copy_str(o, "clientMode", cl, "mode");
	rpc_node_copy_str(o, "displayName", cl, "displayName");
	rpc_node_copy_str(o, "platform", cl, "platform");
	rpc_node_copy_str(o, "version", cl, "version");
	rpc_node_copy_str(o, "deviceFamily", cl, "deviceFamily");
	rpc_node_copy_str(o, "modelIdentifier", cl, "modelIdentifier");
	if (c->client_ip)
		json_object_set_new(o, "remoteIp", json_string(c->client_ip));
	l = rpc_node_strlist(json_object_get(params, "caps"));
	json_object_set_new(o, "caps", l ? l : json_array());
	l = rpc_node_strlist(json_object_get(params, "commands"));
	json_object_set_new(o, "commands", l ? l : json_array());
	p = json_object_get(params, "permissions");
	if (json_is_object(p) && json_object_size(p) <= RPC_NODE_SURFACE_MAX)
		json_object_set(o, "permissions", (json_t *)p);
	return o;
}

/* Does the declared surface stay within the approved one? */
static int rpc_node_within(const json_t *declared, const json_t *surface)
{
	const json_t *dp = json_object_get(declared, "permissions");
	const json_t *sp = json_object_get(surface, "permissions");
	const char *k;
	json_t *v;

	if (!surface)
		return 0;
	if (!rpc_node_subset(json_object_get(declared, "caps"),
			     json_object_get(surface, "caps")) ||
	    !rpc_node_subset(json_object_get(declared, "commands"),
			     json_object_get(surface, "commands")))
		return 0;
	json_object_foreach((json_t *)dp, k, v)
		if (json_is_true(v) && !json_is_true(json_object_get(sp, k)))
			return 0;
	return 1;
}

/* The public pending request (node.pair.list pending[]). */
static json_t *rpc_node_request_public(const json_t *req)
{
	return json_deep_copy(req);
}

/* The paired node (node.pair.list paired[], node.pair.approve node). */
static json_t *rpc_node_paired_public(const json_t *surface)
{
	return json_deep_copy(surface);
}

/* ---- the registry ------------------------------------------------------ */

static void rpc_node_sess_free(struct rpc_node_sess *n)
{
	if (!n)
		return;
	free(n->node_id);
	free(n->pending_request);
	json_decref(n->declared);
	json_decref(n->effective);
	free(n);
}

/* nodes.mu held: the newest session of node_id, or NULL. */
static struct rpc_node_sess *rpc_node_find(const char *node_id)
{
	struct rpc_node_sess *n;

	for (n = nodes.sess; n; n = n->next)
		if (strcmp(n->node_id, node_id) == 0)
			return n;
	return NULL;
}

/* nodes.mu held: set the effective commands (and pending request) of the
 * sessions of node_id from its approved surface (NULL: none). */
static void rpc_node_apply(const char *node_id, const json_t *surface,
			   const char *pending)
{
	struct rpc_node_sess *n;

	for (n = nodes.sess; n; n = n->next) {
		if (strcmp(n->node_id, node_id) != 0)
			continue;
		json_decref(n->effective);
		n->effective = surface ? rpc_node_intersect(
			json_object_get(n->declared, "commands"),
			json_object_get(surface, "commands")) : json_array();
		free(n->pending_request);
		n->pending_request = pending ? xstrdup(pending) : NULL;
	}
}

static int rpc_node_conn_is(const struct rpc_conn *c, void *arg)
{
	return strcmp(c->conn_id, arg) == 0;
}

static int rpc_node_conns_of(const struct rpc_conn *c, void *arg)
{
	return c->role && strcmp(c->role, "node") == 0 && c->device_id &&
	       strcmp(c->device_id, arg) == 0;
}

/* Reconcile a node's declared surface with the store (worker). */
struct rpc_node_reconcile {
	struct rpc_server *srv;
	char conn_id[37];
	char *node_id;
	json_t *declared;
};

static void rpc_node_reconcile_run(void *arg)
{
	struct rpc_node_reconcile *j = arg;
	struct store *st = j->srv->d.store;
	json_t *surface = NULL, *req = NULL, *old = NULL, *ev;
	int64_t now = util_now_ms();
	char rid[37];
	int fresh = 0;

	if (store_nodes_get(st, STORE_NODES_SURFACE, j->node_id, &surface) !=
	    GW_OK)
		surface = NULL;
	if (surface) {
		json_object_set_new(surface, "lastConnectedAtMs",
				    json_integer(now));
		/* Metadata follows the node; the approved lists do not. */
		if (!json_object_get(surface, "displayNameSet"))
			rpc_node_copy_str(surface, "displayName", j->declared,
					  "displayName");
		rpc_node_copy_str(surface, "version", j->declared, "version");
		rpc_node_copy_str(surface, "remoteIp", j->declared,
				  "remoteIp");
	}
	if (!rpc_node_within(j->declared, surface)) {
		if (store_nodes_get(st, STORE_NODES_REQUEST, j->node_id,
				    &old) != GW_OK)
			old = NULL;
		req = json_deep_copy(j->declared);
		/* Same surface as the pending one: same request. */
		if (old && json_equal(json_object_get(old, "caps"),
				      json_object_get(req, "caps")) &&
		    json_equal(json_object_get(old, "commands"),
			       json_object_get(req, "commands"))) {
			json_object_set(req, "requestId",
					json_object_get(old, "requestId"));
		} else {
			util_uuid(rid);
			json_object_set_new(req, "requestId",
					    json_string(rid));
			fresh = 1;
		}
		json_object_set_new(req, "nodeId", json_string(j->node_id));
		json_object_set_new(req, "ts", json_integer(now));
		if (surface)
			json_object_set_new(req, "isRepair", json_true());
	}
	if (store_nodes_write(st, j->node_id, surface, surface == NULL, req,
			      req == NULL) != GW_OK)
		log_warn("gateway", "node %s: cannot record its surface",
			 j->node_id);
	pthread_mutex_lock(&nodes.mu);
	rpc_node_apply(j->node_id, surface, req ? json_string_value(
		json_object_get(req, "requestId")) : NULL);
	pthread_mutex_unlock(&nodes.mu);
	if (req && fresh) {
		log_info("gateway", "node pairing requested node=%s request=%s",
			 j->node_id, json_string_value(json_object_get(
				 req, "requestId")));
		ev = rpc_node_request_public(req);
		rpc_broadcast(j->srv, "node.pair.requested", ev, 0,
			      SCOPE_PAIRING);
	}
	json_decref(surface);
	json_decref(req);
	json_decref(old);
	json_decref(j->declared);
	free(j->node_id);
	free(j);
}

void rpc_node_connected(struct rpc_conn *c, const json_t *params)
{
	struct rpc_node_sess *n;
	struct rpc_node_reconcile *j;

	if (!c->device_id)
		return;
	n = xcalloc(1, sizeof(*n));
	snprintf(n->conn_id, sizeof(n->conn_id), "%s", c->conn_id);
	n->c = c;
	n->node_id = xstrdup(c->device_id);
	n->declared = rpc_node_declared(c, params);
	n->effective = json_array();
	n->connected_at = util_now_ms();
	j = xcalloc(1, sizeof(*j));
	j->srv = c->srv;
	snprintf(j->conn_id, sizeof(j->conn_id), "%s", c->conn_id);
	j->node_id = xstrdup(n->node_id);
	j->declared = json_deep_copy(n->declared);
	pthread_mutex_lock(&nodes.mu);
	n->next = nodes.sess;
	nodes.sess = n;
	pthread_mutex_unlock(&nodes.mu);
	log_info("gateway", "node connected node=%s conn=%s commands=%zu",
		 n->node_id, c->conn_id,
		 json_array_size(json_object_get(n->declared, "commands")));
	if (!c->srv->d.store || !c->srv->d.workers ||
	    workq_post(c->srv->d.workers, rpc_node_reconcile_run, j) != 0) {
		log_warn("gateway", "node %s: surface not reconciled",
			 n->node_id);
		json_decref(j->declared);
		free(j->node_id);
		free(j);
	}
}

/* ---- invocations (lws thread) ------------------------------------------ */

static void rpc_node_inv_unlink(struct rpc_node_inv *inv)
{
	struct rpc_node_inv **pp;

	for (pp = &nodes.inv; *pp; pp = &(*pp)->next)
		if (*pp == inv) {
			*pp = inv->next;
			break;
		}
}

/* Answer every caller of inv and free it. ok: payload (borrowed). */
static void rpc_node_inv_end(struct rpc_node_inv *inv, const json_t *payload,
			     const char *msg, const json_t *details)
{
	int i;

	if (inv->timer)
		ws_timer_cancel(inv->timer);
	rpc_node_inv_unlink(inv);
	for (i = 0; i < inv->ncalls; i++) {
		if (payload)
			rpc_call_reply(inv->calls[i], 1,
				       json_deep_copy(payload), NULL, NULL,
				       NULL);
		else
			rpc_call_reply(inv->calls[i], 0, NULL, "UNAVAILABLE",
				       msg, json_deep_copy(details));
		rpc_call_release(inv->calls[i]);
	}
	free(inv->node_id);
	free(inv->command);
	free(inv->idem);
	free(inv);
}

static json_t *rpc_node_err_details(const char *code, const char *msg,
				    int dispatched)
{
	return json_pack("{s:s,s:{s:s,s:s},s:b}", "code", code, "nodeError",
			 "code", code, "message", msg,
			 "nodeCommandDispatched", dispatched);
}

static void rpc_node_inv_timeout(void *arg)
{
	struct rpc_node_inv *inv = arg;
	json_t *d = rpc_node_err_details("TIMEOUT", "node invoke timed out",
					 1);

	inv->timer = NULL;
	log_info("gateway", "node invoke timed out node=%s command=%s id=%s",
		 inv->node_id, inv->command, inv->id);
	rpc_node_inv_end(inv, NULL, "node invoke timed out", d);
	json_decref(d);
}

static void rpc_node_done_put(const char *node_id, const char *idem,
			      const json_t *payload, const char *msg,
			      const json_t *details)
{
	struct rpc_node_done *d = &nodes.done[nodes.done_next];

	nodes.done_next = (nodes.done_next + 1) % RPC_NODE_DONE_MAX;
	free(d->node_id);
	free(d->idem);
	json_decref(d->payload);
	free(d->err_msg);
	json_decref(d->err_details);
	d->node_id = xstrdup(node_id);
	d->idem = xstrdup(idem);
	d->payload = payload ? json_deep_copy(payload) : NULL;
	d->err_msg = msg ? xstrdup(msg) : NULL;
	d->err_details = details ? json_deep_copy(details) : NULL;
	d->at = util_mono_ms();
}

static struct rpc_node_done *rpc_node_done_find(const char *node_id,
						const char *idem)
{
	int64_t now = util_mono_ms();
	int i;

	for (i = 0; i < RPC_NODE_DONE_MAX; i++) {
		struct rpc_node_done *d = &nodes.done[i];

		if (d->node_id && now - d->at < RPC_NODE_DONE_TTL_MS &&
		    strcmp(d->node_id, node_id) == 0 &&
		    strcmp(d->idem, idem) == 0)
			return d;
	}
	return NULL;
}

static const char *rpc_node_pstr(struct rpc_call *call, const char *k,
				 int required)
{
	const json_t *v = json_object_get(call->params, k);

	if (!v && !required)
		return NULL;
	if (!json_is_string(v) || !json_string_length(v) ||
	    json_string_length(v) > 512) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid %s params: at /%s: must be a "
			       "non-empty string", call->method, k);
		return NULL;
	}
	return json_string_value(v);
}

/* The gateway's own policy on commands, before any node surface: private
 * worker controls and the node's exec-approval store are never relayed;
 * browser proxying and raw file access need operator.admin (as
 * upstream); gateway.nodes.commands.deny lists commands this gateway
 * refuses. 0 when the command may go on, else -1 with the error set. */
static int rpc_node_policy(struct rpc_call *call, const char *command)
{
	static const char *const admin_only[] = {
		"browser.proxy", "browser.proxy.upload.v1", "fs.listDir",
		"terminal.upload",
	};
	const json_t *deny = json_object_get(json_object_get(json_object_get(
		json_object_get(call->cfg->root, "gateway"), "nodes"),
		"commands"), "deny");
	size_t i;

	if (strncmp(command, "worker.", 7) == 0) {
		rpc_call_error(call, "INVALID_REQUEST", json_pack("{s:s}",
			"command", command), "node.invoke does not allow "
			"private node controls");
		return -1;
	}
	if (strncmp(command, "system.execApprovals.", 21) == 0) {
		rpc_call_error(call, "INVALID_REQUEST", json_pack("{s:s}",
			"command", command), "node.invoke does not allow "
			"system.execApprovals.*");
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(admin_only); i++)
		if (strcmp(command, admin_only[i]) == 0 &&
		    !(call->scopes & SCOPE_ADMIN)) {
			rpc_call_missing_scope(call, "operator.admin");
			return -1;
		}
	if (json_is_array(deny) && rpc_node_has(deny, command)) {
		rpc_call_error(call, "INVALID_REQUEST", json_pack("{s:s,s:s}",
			"reason", "command-denied", "command", command),
			"node command not allowed: \"%s\" is in "
			"gateway.nodes.commands.deny", command);
		return -1;
	}
	return 0;
}

static int rpc_node_invoke(struct rpc_call *call)
{
	const char *node_id, *command, *idem;
	const json_t *v, *params;
	struct rpc_node_sess *n;
	struct rpc_node_inv *inv;
	struct rpc_node_done *done;
	json_t *ev, *d;
	int64_t timeout = RPC_NODE_INVOKE_DEFAULT_MS;
	int allowed, declared, r;
	char *pj = NULL;

	if (!(node_id = rpc_node_pstr(call, "nodeId", 1)) ||
	    !(command = rpc_node_pstr(call, "command", 1)) ||
	    !(idem = rpc_node_pstr(call, "idempotencyKey", 1)))
		return GW_EINVAL;
	if (rpc_node_policy(call, command) != 0)
		return GW_EINVAL;
	v = json_object_get(call->params, "timeoutMs");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid node.invoke params: at /timeoutMs: "
			       "must be integer >= 0");
		return GW_EINVAL;
	}
	if (v && json_integer_value(v) > 0)
		timeout = json_integer_value(v);
	if (timeout > RPC_NODE_INVOKE_MAX_MS)
		timeout = RPC_NODE_INVOKE_MAX_MS;
	params = json_object_get(call->params, "params");
	if (params) {
		pj = json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!pj || strlen(pj) > RPC_NODE_PARAMS_MAX) {
			free(pj);
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "node.invoke params too large");
			return GW_EINVAL;
		}
	}
	/* A retry: the finished result, or join the one in flight. */
	if ((done = rpc_node_done_find(node_id, idem))) {
		free(pj);
		if (done->payload) {
			call->payload = json_deep_copy(done->payload);
			return GW_OK;
		}
		rpc_call_error(call, "UNAVAILABLE",
			       json_deep_copy(done->err_details), "%s",
			       done->err_msg);
		return GW_EUNAVAIL;
	}
	for (inv = nodes.inv; inv; inv = inv->next) {
		if (strcmp(inv->node_id, node_id) != 0 ||
		    strcmp(inv->idem, idem) != 0)
			continue;
		free(pj);
		if (inv->ncalls >= RPC_NODE_JOIN_MAX) {
			rpc_call_error(call, "UNAVAILABLE", NULL,
				       "too many retries in flight");
			return GW_EUNAVAIL;
		}
		r = rpc_call_defer(call);
		inv->calls[inv->ncalls++] = call;
		return r;
	}
	pthread_mutex_lock(&nodes.mu);
	n = rpc_node_find(node_id);
	allowed = n && rpc_node_has(n->effective, command);
	declared = n && rpc_node_has(json_object_get(n->declared, "commands"),
				     command);
	if (n && allowed) {
		inv = xcalloc(1, sizeof(*inv));
		snprintf(inv->conn_id, sizeof(inv->conn_id), "%s",
			 n->conn_id);
	} else {
		inv = NULL;
	}
	pthread_mutex_unlock(&nodes.mu);
	if (!n) {
		free(pj);
		rpc_call_error(call, "UNAVAILABLE", rpc_node_err_details(
			"NOT_CONNECTED", "node not connected", 0),
			"node not connected");
		return GW_EUNAVAIL;
	}
	if (!inv) {
		free(pj);
		d = json_pack("{s:s,s:s}", "reason", declared ?
			      "command-not-approved" : "command-not-declared",
			      "command", command);
		rpc_call_error(call, "INVALID_REQUEST", d,
			       declared ? "node command not allowed: \"%s\" "
			       "is waiting for node pairing approval "
			       "(openclaw nodes approve)" :
			       "node command not allowed: the node does not "
			       "declare \"%s\"", command);
		return GW_EINVAL;
	}
	util_uuid(inv->id);
	inv->node_id = xstrdup(node_id);
	inv->command = xstrdup(command);
	inv->idem = xstrdup(idem);
	inv->srv = call->srv;
	r = rpc_call_defer(call);
	inv->calls[inv->ncalls++] = call;
	inv->next = nodes.inv;
	nodes.inv = inv;
	inv->timer = ws_timer_add(call->srv->d.ws, timeout,
				  rpc_node_inv_timeout, inv);
	ev = json_pack("{s:s,s:s,s:s,s:I,s:s}", "id", inv->id, "nodeId",
		       node_id, "command", command, "timeoutMs",
		       (json_int_t)timeout, "idempotencyKey", idem);
	if (pj)
		json_object_set_new(ev, "paramsJSON", json_string(pj));
	free(pj);
	log_info("gateway", "node invoke node=%s command=%s id=%s",
		 node_id, command, inv->id);
	rpc_send_where(call->srv, "node.invoke.request", ev, 0, 0,
		       rpc_node_conn_is, xstrdup(inv->conn_id), free);
	return r;
}

static int rpc_node_invoke_result(struct rpc_call *call)
{
	const char *id, *node_id, *pj;
	const json_t *ok, *err;
	struct rpc_node_inv *inv;
	json_t *payload, *d;
	char msg[600];

	if (!(id = rpc_node_pstr(call, "id", 1)) ||
	    !(node_id = rpc_node_pstr(call, "nodeId", 1)))
		return GW_EINVAL;
	ok = json_object_get(call->params, "ok");
	if (!json_is_boolean(ok)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid node.invoke.result params: must have "
			       "required property 'ok'");
		return GW_EINVAL;
	}
	if (!call->conn->device_id ||
	    strcmp(call->conn->device_id, node_id) != 0) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "nodeId mismatch");
		return GW_EINVAL;
	}
	for (inv = nodes.inv; inv; inv = inv->next)
		if (strcmp(inv->id, id) == 0 &&
		    strcmp(inv->node_id, node_id) == 0 &&
		    strcmp(inv->conn_id, call->conn->conn_id) == 0)
			break;
	if (!inv) {
		log_debug("gateway", "late invoke result ignored: id=%s "
			  "node=%s", id, node_id);
		call->payload = json_pack("{s:b,s:b}", "ok", 1, "ignored", 1);
		return GW_OK;
	}
	if (json_is_true(ok)) {
		pj = json_string_value(json_object_get(call->params,
						       "payloadJSON"));
		payload = pj ? json_loads(pj, JSON_DECODE_ANY, NULL) : NULL;
		if (!payload) {
			payload = json_object_get(call->params, "payload");
			payload = payload ? json_incref(payload) : json_null();
		}
		d = json_pack("{s:b,s:s,s:s,s:o,s:o}", "ok", 1, "nodeId",
			      node_id, "command", inv->command, "payload",
			      payload, "payloadJSON",
			      pj ? json_string(pj) : json_null());
		rpc_node_done_put(node_id, inv->idem, d, NULL, NULL);
		rpc_node_inv_end(inv, d, NULL, NULL);
		json_decref(d);
	} else {
		err = json_object_get(call->params, "error");
		snprintf(msg, sizeof(msg), "%s%s%s",
			 json_string_value(json_object_get(err, "code")) ?: "",
			 json_string_value(json_object_get(err, "code")) ?
			 ": " : "",
			 json_string_value(json_object_get(err, "message")) ?:
			 "node invoke failed");
		d = json_pack("{s:O,s:b}", "nodeError",
			      json_is_object(err) ? (json_t *)err
						  : json_null(),
			      "nodeCommandDispatched", 1);
		rpc_node_done_put(node_id, inv->idem, NULL, msg, d);
		rpc_node_inv_end(inv, NULL, msg, d);
		json_decref(d);
	}
	call->payload = json_pack("{s:b}", "ok", 1);
	return GW_OK;
}

void rpc_node_disconnected(struct rpc_conn *c)
{
	struct rpc_node_sess **pp, *n;
	struct rpc_node_inv *inv, *next;
	json_t *d;
	char msg[300];

	pthread_mutex_lock(&nodes.mu);
	for (pp = &nodes.sess; *pp;) {
		n = *pp;
		if (n->c == c) {
			*pp = n->next;
			log_info("gateway", "node disconnected node=%s conn=%s",
				 n->node_id, n->conn_id);
			rpc_node_sess_free(n);
		} else {
			pp = &n->next;
		}
	}
	pthread_mutex_unlock(&nodes.mu);
	for (inv = nodes.inv; inv; inv = next) {
		next = inv->next;
		if (strcmp(inv->conn_id, c->conn_id) != 0)
			continue;
		snprintf(msg, sizeof(msg), "node disconnected (%s)",
			 inv->command);
		d = rpc_node_err_details("DISCONNECTED", msg, 1);
		rpc_node_inv_end(inv, NULL, msg, d);
		json_decref(d);
	}
}

void rpc_node_stop(struct rpc_server *s)
{
	json_t *d = rpc_node_err_details("UNAVAILABLE", "gateway is stopping",
					 1);
	int i;

	(void)s;
	while (nodes.inv)
		rpc_node_inv_end(nodes.inv, NULL, "gateway is stopping", d);
	json_decref(d);
	for (i = 0; i < RPC_NODE_DONE_MAX; i++) {
		struct rpc_node_done *x = &nodes.done[i];

		free(x->node_id);
		free(x->idem);
		json_decref(x->payload);
		free(x->err_msg);
		json_decref(x->err_details);
		memset(x, 0, sizeof(*x));
	}
}

/* node.event: a node reports something. clawgate handles no node event
 * kinds (no canvas, voice or exec events); they are acknowledged and
 * logged. */
static int rpc_node_event(struct rpc_call *call)
{
	const char *ev = rpc_node_pstr(call, "event", 1);

	if (!ev)
		return GW_EINVAL;
	log_debug("gateway", "node event node=%s event=%.100s",
		  call->conn->device_id ? call->conn->device_id : "?", ev);
	call->payload = json_pack("{s:b,s:s,s:b,s:s}", "ok", 1, "event", ev,
				  "handled", 0, "reason",
				  "clawgate handles no node events");
	return GW_OK;
}

/* ---- reads (workers) --------------------------------------------------- */

/* The known nodes: paired (stored surface), connected, or pending. */
static json_t *rpc_node_known(struct rpc_call *call, const char *only)
{
	json_t *surfaces = NULL, *reqs = NULL, *idx = json_object();
	json_t *out = json_array(), *e, *s, *o;
	struct rpc_node_sess *n;
	const char *id, *k;
	size_t i;

	if (store_nodes_list(call->srv->d.store, STORE_NODES_SURFACE,
			     &surfaces) != GW_OK ||
	    store_nodes_list(call->srv->d.store, STORE_NODES_REQUEST,
			     &reqs) != GW_OK) {
		json_decref(surfaces);
		json_decref(idx);
		json_decref(out);
		return NULL;
	}
	json_array_foreach(surfaces, i, s) {
		id = json_string_value(json_object_get(s, "nodeId"));
		if (!id || (only && strcmp(id, only) != 0))
			continue;
		o = json_deep_copy(s);
		json_object_del(o, "displayNameSet");
		json_object_set_new(o, "paired", json_true());
		json_object_set_new(o, "connected", json_false());
		json_object_set_new(idx, id, o);
	}
	json_array_foreach(reqs, i, s) {
		id = json_string_value(json_object_get(s, "nodeId"));
		if (!id || (only && strcmp(id, only) != 0))
			continue;
		if (!(o = json_object_get(idx, id)))
			continue;	/* unpaired + offline: not known */
		json_object_set(o, "pendingRequestId",
				json_object_get(s, "requestId"));
	}
	pthread_mutex_lock(&nodes.mu);
	for (n = nodes.sess; n; n = n->next) {
		if (only && strcmp(n->node_id, only) != 0)
			continue;
		o = json_object_get(idx, n->node_id);
		if (o && json_is_true(json_object_get(o, "connected")))
			continue;	/* an older session of the node */
		if (!o) {
			o = json_pack("{s:s,s:b}", "nodeId", n->node_id,
				      "paired", 0);
			json_object_set_new(idx, n->node_id, o);
		}
		json_object_foreach(n->declared, k, e)
			if (strcmp(k, "caps") && strcmp(k, "commands") &&
			    (strcmp(k, "displayName") ||
			     !json_object_get(o, "displayName")))
				json_object_set(o, k, e);
		json_object_set(o, "commands", n->effective);
		json_object_set_new(o, "caps", json_is_true(json_object_get(
			o, "paired")) ? rpc_node_intersect(
			json_object_get(n->declared, "caps"),
			json_object_get(o, "caps")) : json_array());
		json_object_set(o, "declaredCommands",
				json_object_get(n->declared, "commands"));
		json_object_set_new(o, "connected", json_true());
		json_object_set_new(o, "connectedAtMs",
				    json_integer(n->connected_at));
		if (n->pending_request)
			json_object_set_new(o, "pendingRequestId",
					    json_string(n->pending_request));
	}
	pthread_mutex_unlock(&nodes.mu);
	json_object_foreach(idx, k, o)
		json_array_append(out, o);
	json_decref(idx);
	json_decref(surfaces);
	json_decref(reqs);
	return out;
}

static int rpc_node_list(struct rpc_call *call)
{
	json_t *nodes_ = rpc_node_known(call, NULL);

	if (!nodes_)
		return GW_ESTORE;
	call->payload = json_pack("{s:I,s:o}", "ts",
				  (json_int_t)util_now_ms(), "nodes", nodes_);
	return GW_OK;
}

static int rpc_node_describe(struct rpc_call *call)
{
	const char *id = rpc_node_pstr(call, "nodeId", 1);
	json_t *l, *o;

	if (!id)
		return GW_EINVAL;
	if (!(l = rpc_node_known(call, id)))
		return GW_ESTORE;
	o = json_array_get(l, 0);
	if (!o) {
		json_decref(l);
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown nodeId");
		return GW_EINVAL;
	}
	call->payload = json_incref(o);
	json_object_set_new(call->payload, "ts", json_integer(util_now_ms()));
	json_decref(l);
	return GW_OK;
}

static int rpc_node_pair_list(struct rpc_call *call)
{
	json_t *surfaces = NULL, *reqs = NULL, *pending, *paired, *e;
	size_t i;

	if (store_nodes_list(call->srv->d.store, STORE_NODES_SURFACE,
			     &surfaces) != GW_OK ||
	    store_nodes_list(call->srv->d.store, STORE_NODES_REQUEST,
			     &reqs) != GW_OK) {
		json_decref(surfaces);
		return GW_ESTORE;
	}
	pending = json_array();
	paired = json_array();
	json_array_foreach(reqs, i, e)
		json_array_append_new(pending, rpc_node_request_public(e));
	json_array_foreach(surfaces, i, e) {
		json_array_append_new(paired, rpc_node_paired_public(e));
		json_object_del(json_array_get(paired, i), "displayNameSet");
	}
	call->payload = json_pack("{s:o,s:o}", "pending", pending, "paired",
				  paired);
	json_decref(surfaces);
	json_decref(reqs);
	return GW_OK;
}

/* The pending request with request_id (new reference) or NULL. */
static json_t *rpc_node_request_by_id(struct rpc_call *call,
				      const char *request_id)
{
	json_t *reqs = NULL, *e, *found = NULL;
	size_t i;

	if (store_nodes_list(call->srv->d.store, STORE_NODES_REQUEST,
			     &reqs) != GW_OK)
		return NULL;
	json_array_foreach(reqs, i, e)
		if (strcmp(json_string_value(json_object_get(e, "requestId")) ?:
			   "", request_id) == 0)
			found = json_incref(e);
	json_decref(reqs);
	return found;
}

static void rpc_node_resolved(struct rpc_call *call, const char *rid,
			      const char *node_id, const char *decision)
{
	json_t *ev = json_pack("{s:s,s:s,s:s,s:I}", "requestId", rid,
			       "nodeId", node_id, "decision", decision, "ts",
			       (json_int_t)util_now_ms());

	rpc_send_where(call->srv, "node.pair.resolved", json_deep_copy(ev),
		       0, 0, rpc_node_conns_of, xstrdup(node_id), free);
	rpc_broadcast(call->srv, "node.pair.resolved", ev, 0, SCOPE_PAIRING);
}

static int rpc_node_pair_approve(struct rpc_call *call)
{
	const char *rid = rpc_node_pstr(call, "requestId", 1);
	json_t *req, *old = NULL, *surface;
	const char *node_id;
	int64_t now = util_now_ms();
	int r;

	if (!rid)
		return GW_EINVAL;
	if (!(req = rpc_node_request_by_id(call, rid))) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown requestId");
		return GW_EINVAL;
	}
	node_id = json_string_value(json_object_get(req, "nodeId"));
	if (store_nodes_get(call->srv->d.store, STORE_NODES_SURFACE, node_id,
			    &old) != GW_OK)
		old = NULL;
	surface = json_deep_copy(req);
	json_object_del(surface, "requestId");
	json_object_del(surface, "ts");
	json_object_del(surface, "isRepair");
	json_object_set_new(surface, "createdAtMs", json_integer(old ?
		json_integer_value(json_object_get(old, "createdAtMs")) :
		json_integer_value(json_object_get(req, "ts"))));
	json_object_set_new(surface, "approvedAtMs", json_integer(now));
	if (old && json_object_get(old, "displayNameSet")) {
		json_object_set(surface, "displayName",
				json_object_get(old, "displayName"));
		json_object_set_new(surface, "displayNameSet", json_true());
	}
	pthread_mutex_lock(&nodes.mu);
	if (rpc_node_find(node_id))
		json_object_set_new(surface, "lastConnectedAtMs",
				    json_integer(now));
	pthread_mutex_unlock(&nodes.mu);
	r = store_nodes_write(call->srv->d.store, node_id, surface, 0, NULL,
			      0);
	if (r == GW_OK) {
		pthread_mutex_lock(&nodes.mu);
		rpc_node_apply(node_id, surface, NULL);
		pthread_mutex_unlock(&nodes.mu);
		log_info("gateway", "node pairing approved node=%s request=%s",
			 node_id, rid);
		rpc_node_resolved(call, rid, node_id, "approved");
		json_object_del(surface, "displayNameSet");
		call->payload = json_pack("{s:s,s:O}", "requestId", rid,
					  "node", surface);
	}
	json_decref(surface);
	json_decref(old);
	json_decref(req);
	return r;
}

static int rpc_node_pair_reject(struct rpc_call *call)
{
	const char *rid = rpc_node_pstr(call, "requestId", 1);
	const char *node_id;
	json_t *req;
	int r;

	if (!rid)
		return GW_EINVAL;
	if (!(req = rpc_node_request_by_id(call, rid))) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown requestId");
		return GW_EINVAL;
	}
	node_id = json_string_value(json_object_get(req, "nodeId"));
	r = store_nodes_write(call->srv->d.store, node_id, NULL, 1, NULL, 0);
	if (r == GW_OK) {
		pthread_mutex_lock(&nodes.mu);
		for (struct rpc_node_sess *n = nodes.sess; n; n = n->next)
			if (strcmp(n->node_id, node_id) == 0) {
				free(n->pending_request);
				n->pending_request = NULL;
			}
		pthread_mutex_unlock(&nodes.mu);
		log_info("gateway", "node pairing rejected node=%s request=%s",
			 node_id, rid);
		rpc_node_resolved(call, rid, node_id, "rejected");
		call->payload = json_pack("{s:s,s:s}", "requestId", rid,
					  "nodeId", node_id);
	}
	json_decref(req);
	return r;
}

static int rpc_node_pair_remove(struct rpc_call *call)
{
	const char *id = rpc_node_pstr(call, "nodeId", 1);
	struct rpc_node_sess **pp, *n;
	json_t *s = NULL;
	int r;

	if (!id)
		return GW_EINVAL;
	if (store_nodes_get(call->srv->d.store, STORE_NODES_SURFACE, id,
			    &s) != GW_OK) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown nodeId");
		return GW_EINVAL;
	}
	json_decref(s);
	r = store_nodes_write(call->srv->d.store, id, NULL, 0, NULL, 0);
	if (r != GW_OK)
		return r;
	/* Its sockets are closing: it is no longer a known node. */
	pthread_mutex_lock(&nodes.mu);
	for (pp = &nodes.sess; *pp;) {
		n = *pp;
		if (strcmp(n->node_id, id) == 0) {
			*pp = n->next;
			rpc_node_sess_free(n);
		} else {
			pp = &n->next;
		}
	}
	pthread_mutex_unlock(&nodes.mu);
	log_info("gateway", "node pairing removed node=%s", id);
	rpc_node_resolved(call, "", id, "removed");
	rpc_close_where(call->srv, rpc_node_conns_of, xstrdup(id), free, 4001,
			"node removed");
	call->payload = json_pack("{s:s}", "nodeId", id);
	return GW_OK;
}

static int rpc_node_rename(struct rpc_call *call)
{
	const char *id = rpc_node_pstr(call, "nodeId", 1);
	const char *name = id ? rpc_node_pstr(call, "displayName", 1) : NULL;
	json_t *s = NULL;
	int r;

	if (!id || !name)
		return GW_EINVAL;
	if (store_nodes_get(call->srv->d.store, STORE_NODES_SURFACE, id,
			    &s) != GW_OK) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown nodeId");
		return GW_EINVAL;
	}
	json_object_set_new(s, "displayName", json_string(name));
	json_object_set_new(s, "displayNameSet", json_true());
	r = store_nodes_write(call->srv->d.store, id, s, 0, NULL, 1);
	json_decref(s);
	if (r != GW_OK)
		return r;
	log_info("gateway", "node renamed node=%s name=%.100s", id, name);
	call->payload = json_pack("{s:s,s:s}", "nodeId", id, "displayName",
				  name);
	return GW_OK;
}

/* The string lists a and b, sorted, without duplicates (new). */
static int rpc_node_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *rpc_node_union_sorted(const json_t *a, const json_t *b)
{
	const char *v[2 * RPC_NODE_SURFACE_MAX];
	const json_t *e;
	json_t *o = json_array();
	size_t i, n = 0;

	json_array_foreach(a, i, e)
		if (json_is_string(e) && n < ARRAY_SIZE(v))
			v[n++] = json_string_value(e);
	json_array_foreach(b, i, e)
		if (json_is_string(e) && n < ARRAY_SIZE(v))
			v[n++] = json_string_value(e);
	qsort(v, n, sizeof(v[0]), rpc_node_strcmp);
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
			json_array_append_new(o, json_string(v[i]));
	return o;
}

/* environments.list: where agents and commands run here: the gateway
 * itself (agents, sessions, its tools, the workspace) and each known
 * node. clawgate has no cloud workers (no profiles). */
static int rpc_node_environments(struct rpc_call *call)
{
	json_t *known = rpc_node_known(call, NULL), *envs, *n, *e, *caps, *v;
	const char *id, *label, *plat;
	size_t i;
	char eid[600];

	if (!known)
		return GW_ESTORE;
	envs = json_pack("[{s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:[s,s,s,s]}]",
			 "id", "gateway", "type", "local", "label",
			 "Gateway local", "status", "available", "platform",
			 "linux", "sessionHost", 1, "trust", "persistent",
			 "capabilities", "agent.run", "sessions", "tools",
			 "workspace");
	json_array_foreach(known, i, n) {
		id = json_string_value(json_object_get(n, "nodeId"));
		label = json_string_value(json_object_get(n, "displayName"));
		plat = json_string_value(json_object_get(n, "platform"));
		snprintf(eid, sizeof(eid), "node:%s", id);
		e = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s}", "id", eid, "type",
			      "node", "label", label ? label : id, "status",
			      json_is_true(json_object_get(n, "connected")) ?
			      "available" : "unavailable", "sessionHost", 0,
			      "trust", "persistent");
		if (plat)
			json_object_set_new(e, "platform", json_string(plat));
		v = json_object_get(n, "lastConnectedAtMs");
		if (v)
			json_object_set(e, "lastConnectedAtMs", v);
		caps = rpc_node_union_sorted(json_object_get(n, "caps"),
					     json_object_get(n, "commands"));
		if (json_array_size(caps))
			json_object_set_new(e, "capabilities", caps);
		else
			json_decref(caps);
		if (json_is_true(json_object_get(n, "connected")) &&
		    json_array_size(json_object_get(n, "commands")))
			json_object_set_new(e, "invocableCommands",
				rpc_node_union_sorted(json_object_get(
					n, "commands"), NULL));
		json_array_append_new(envs, e);
	}
	json_decref(known);
	call->payload = json_pack("{s:o}", "environments", envs);
	return GW_OK;
}

const struct rpc_method rpc_node_methods[] = {
	{"node.list", rpc_node_list, "operator.read", RPC_F_WORKER,
	 "known nodes: paired, connected, pending"},
	{"node.describe", rpc_node_describe, "operator.read", RPC_F_WORKER,
	 "one known node"},
	{"node.rename", rpc_node_rename, "operator.pairing", RPC_F_WORKER,
	 "set a paired node's display name"},
	{"node.pair.list", rpc_node_pair_list, "operator.pairing",
	 RPC_F_WORKER, "pending node surfaces and paired nodes"},
	{"node.pair.approve", rpc_node_pair_approve, "operator.pairing",
	 RPC_F_WORKER, "approve a node's command surface"},
	{"node.pair.reject", rpc_node_pair_reject, "operator.pairing",
	 RPC_F_WORKER, "reject a node's pending command surface"},
	{"node.pair.remove", rpc_node_pair_remove, "operator.pairing",
	 RPC_F_WORKER, "forget a paired node (closes its sockets 4001)"},
	{"environments.list", rpc_node_environments, "operator.read",
	 RPC_F_WORKER, "the gateway and its nodes as environments"},
	{"node.invoke", rpc_node_invoke, "operator.write", 0,
	 "run an approved command on a connected node"},
	{"node.invoke.result", rpc_node_invoke_result, "node", RPC_F_NODE,
	 "a node's answer to node.invoke.request"},
	{"node.event", rpc_node_event, "node", RPC_F_NODE,
	 "a node reports an event"},
};
const size_t rpc_node_methods_count = ARRAY_SIZE(rpc_node_methods);
