/* Device pairing methods: device.pair.list/approve/reject/remove,
 * device.token.rotate/revoke (reference/ws-protocol.md §4.5, §7.6). All run
 * on the worker pool: every decision is committed durably (STORE_DURABLE)
 * before the answer is sent. Removal, rotation and revocation close the
 * device's sockets with 4001 right after the answer. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/pairing.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "rpc/rpc-int.h"

/* Which sockets to close (device, and role when not NULL). */
struct rpc_device_target {
	char *device_id;
	char *role;
};

static void rpc_device_target_free(void *arg)
{
	struct rpc_device_target *t = arg;

	if (!t)
		return;
	free(t->device_id);
	free(t->role);
	free(t);
}

static int rpc_device_match(const struct rpc_conn *c, void *arg)
{
	const struct rpc_device_target *t = arg;

	return c->device_id && strcmp(c->device_id, t->device_id) == 0 &&
	       (!t->role || (c->role && strcmp(c->role, t->role) == 0));
}

/* After the answer: close the target's sockets with 4001. */
static void rpc_device_after(struct rpc_call *call)
{
	struct rpc_device_target *t = call->after_arg;

	if (!t || call->err_code)
		return;
	call->after_arg = NULL;
	rpc_close_where(call->srv, rpc_device_match, t,
			rpc_device_target_free, 4001, "device removed");
}

static void rpc_device_close_after(struct rpc_call *call,
				   const char *device_id, const char *role)
{
	struct rpc_device_target *t = xcalloc(1, sizeof(*t));

	t->device_id = xstrdup(device_id);
	t->role = role ? xstrdup(role) : NULL;
	call->after_send = rpc_device_after;
	call->after_arg = t;
	call->after_free = rpc_device_target_free;
}

/* Params: a closed object whose listed keys are non-empty strings
 * (required when req), plus an optional string array "scopes" when
 * allow_scopes. */
static int rpc_device_params(struct rpc_call *call, const char *const *keys,
			     size_t n, int allow_scopes)
{
	const char *k;
	json_t *v, *e;
	size_t i;

	for (i = 0; i < n; i++) {
		v = json_object_get(call->params, keys[i]);
		if (!v) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "invalid %s params: must have "
				       "required property '%s'", call->method,
				       keys[i]);
			return -1;
		}
		if (!json_is_string(v) || json_string_length(v) == 0) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "invalid %s params: at /%s: must be a "
				       "non-empty string", call->method,
				       keys[i]);
			return -1;
		}
	}
	json_object_foreach(call->params, k, v) {
		for (i = 0; i < n; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (i < n)
			continue;
		if (allow_scopes && strcmp(k, "scopes") == 0 &&
		    json_is_array(v)) {
			json_array_foreach(v, i, e)
				if (!json_is_string(e) ||
				    json_string_length(e) == 0)
					goto bad_scopes;
			continue;
		}
		if (allow_scopes && strcmp(k, "scopes") == 0) {
bad_scopes:
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "invalid %s params: at /scopes: must "
				       "be array of non-empty strings",
				       call->method);
			return -1;
		}
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid %s params: unexpected property "
			       "'%.100s'", call->method, k);
		return -1;
	}
	return 0;
}

static const char *rpc_device_str(struct rpc_call *call, const char *k)
{
	return json_string_value(json_object_get(call->params, k));
}

/* The audit actor of the caller. */
static void rpc_device_actor(struct rpc_call *call, char *buf, size_t n,
			     struct pairing_actor *who)
{
	const struct rpc_conn *c = call->conn;

	if (c->device_id)
		snprintf(buf, n, "device:%s", c->device_id);
	else
		snprintf(buf, n, "%s:%s", c->client_id ? c->client_id : "?",
			 c->conn_id);
	who->actor = buf;
	who->remote_ip = c->client_ip;
}

/* Non-admin callers with a device identity manage only their own device. */
static int rpc_device_own(struct rpc_call *call, const char *device_id)
{
	const struct rpc_conn *c = call->conn;

	if ((call->scopes & SCOPE_ADMIN) || !c->device_id ||
	    strcmp(c->device_id, device_id) == 0)
		return 0;
	rpc_call_missing_scope(call, "operator.admin");
	return -1;
}

static struct pairing *rpc_device_pairing(struct rpc_call *call)
{
	if (!call->srv->d.pairing)
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "device pairing is unavailable");
	return call->srv->d.pairing;
}

/* Ready connections per device id (device → count), kept by the lws
 * thread at hello and close and read by the workers for `connected`. */
static pthread_mutex_t rpc_device_online_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *rpc_device_online_map;

void rpc_device_online(const char *device_id, int delta)
{
	json_int_t n;

	if (!device_id)
		return;
	pthread_mutex_lock(&rpc_device_online_mu);
	if (!rpc_device_online_map)
		rpc_device_online_map = json_object();
	n = json_integer_value(json_object_get(rpc_device_online_map,
					       device_id)) + delta;
	if (n > 0)
		json_object_set_new(rpc_device_online_map, device_id,
				    json_integer(n));
	else
		json_object_del(rpc_device_online_map, device_id);
	if (json_object_size(rpc_device_online_map) == 0) {
		json_decref(rpc_device_online_map);
		rpc_device_online_map = NULL;
	}
	pthread_mutex_unlock(&rpc_device_online_mu);
}

static int rpc_device_is_online(const char *device_id)
{
	int on;

	pthread_mutex_lock(&rpc_device_online_mu);
	on = device_id && json_object_get(rpc_device_online_map,
					  device_id) != NULL;
	pthread_mutex_unlock(&rpc_device_online_mu);
	return on;
}

static int rpc_device_pair_list(struct rpc_call *call)
{
	struct pairing *p = rpc_device_pairing(call);
	json_t *d;
	size_t i;

	if (!p)
		return GW_EUNAVAIL;
	if (rpc_device_params(call, NULL, 0, 0) != 0)
		return GW_EINVAL;
	call->payload = pairing_list(p);
	json_array_foreach(json_object_get(call->payload, "paired"), i, d)
		json_object_set_new(d, "connected", json_boolean(
			rpc_device_is_online(json_string_value(
				json_object_get(d, "deviceId")))));
	return GW_OK;
}

static void rpc_device_resolved(struct rpc_call *call, const char *rid,
				const char *device_id, const char *decision)
{
	rpc_broadcast(call->srv, "device.pair.resolved",
		      json_pack("{s:s,s:s,s:s,s:I}", "requestId", rid,
				"deviceId", device_id, "decision", decision,
				"ts", (json_int_t)util_now_ms()),
		      0, SCOPE_PAIRING);
}

/* A pairing result as the call's answer: GW_ENOTFOUND becomes
 * INVALID_REQUEST "unknown <what>"; other errors pass through. */
static int rpc_device_result(struct rpc_call *call, int r, const char *what)
{
	if (r == GW_ENOTFOUND)
		rpc_call_error(call, "INVALID_REQUEST", NULL, "unknown %s",
			       what);
	return r;
}

static int rpc_device_pair_approve(struct rpc_call *call)
{
	static const char *const keys[] = {"requestId"};
	struct pairing *p = rpc_device_pairing(call);
	struct pairing_actor who;
	json_t *pend = NULL, *dev = NULL, *v;
	const char *rid, *role;
	char actor[160], *did = NULL;
	size_t i;
	int r;

	if (!p)
		return GW_EUNAVAIL;
	if (rpc_device_params(call, keys, 1, 0) != 0)
		return GW_EINVAL;
	rid = rpc_device_str(call, "requestId");
	pend = pairing_pending_get(p, rid);
	if (!pend) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown requestId");
		return GW_ENOTFOUND;
	}
	/* A caller grants only operator scopes it holds; any other role
	 * needs operator.admin. */
	role = json_string_value(json_object_get(pend, "role"));
	if (strcmp(role, "operator") != 0 && !(call->scopes & SCOPE_ADMIN)) {
		r = rpc_call_missing_scope(call, "operator.admin");
		goto out;
	}
	json_array_foreach(json_object_get(pend, "scopes"), i, v) {
		const char *sc = json_string_value(v);
		unsigned bit = rpc_scope_bit(sc);

		if (bit ? !rpc_scope_allows(call->scopes, bit)
			: !(call->scopes & SCOPE_ADMIN)) {
			r = rpc_call_missing_scope(call, bit ? sc :
						   "operator.admin");
			goto out;
		}
	}
	rpc_device_actor(call, actor, sizeof(actor), &who);
	r = pairing_approve(p, rid, &who, &dev, &did);
	if (rpc_device_result(call, r, "requestId") != GW_OK)
		goto out;
	log_info("pairing", "approved device=%s request=%s by %s", did, rid,
		 actor);
	rpc_device_resolved(call, rid, did, "approved");
	call->payload = json_pack("{s:s,s:o}", "requestId", rid, "device",
				  dev);
	dev = NULL;
out:
	json_decref(pend);
	json_decref(dev);
	free(did);
	return r;
}

static int rpc_device_pair_reject(struct rpc_call *call)
{
	static const char *const keys[] = {"requestId"};
	struct pairing *p = rpc_device_pairing(call);
	struct pairing_actor who;
	const char *rid;
	char actor[160], *did = NULL;
	int r;

	if (!p)
		return GW_EUNAVAIL;
	if (rpc_device_params(call, keys, 1, 0) != 0)
		return GW_EINVAL;
	rid = rpc_device_str(call, "requestId");
	rpc_device_actor(call, actor, sizeof(actor), &who);
	r = pairing_reject(p, rid, &who, &did);
	if (rpc_device_result(call, r, "requestId") != GW_OK)
		return r;
	log_info("pairing", "rejected device=%s request=%s by %s", did, rid,
		 actor);
	rpc_device_resolved(call, rid, did, "rejected");
	call->payload = json_pack("{s:s,s:s}", "requestId", rid, "deviceId",
				  did);
	free(did);
	return GW_OK;
}

static int rpc_device_pair_remove(struct rpc_call *call)
{
	static const char *const keys[] = {"deviceId"};
	struct pairing *p = rpc_device_pairing(call);
	struct pairing_actor who;
	const char *did;
	char actor[160];
	json_t *dev = NULL;
	int r;

	if (!p)
		return GW_EUNAVAIL;
	if (rpc_device_params(call, keys, 1, 0) != 0)
		return GW_EINVAL;
	did = rpc_device_str(call, "deviceId");
	if (rpc_device_own(call, did) != 0)
		return GW_EFORBIDDEN;
	rpc_device_actor(call, actor, sizeof(actor), &who);
	r = pairing_remove(p, did, &who, &dev);
	if (rpc_device_result(call, r, "deviceId") != GW_OK)
		return r;
	log_info("pairing", "removed device=%s by %s", did, actor);
	json_object_set_new(dev, "removedAtMs", json_integer(util_now_ms()));
	call->payload = dev;
	rpc_device_close_after(call, did, NULL);
	return GW_OK;
}

/* device.pair.rename: the operator's label for a paired device. */
static int rpc_device_pair_rename(struct rpc_call *call)
{
	static const char *const keys[] = {"deviceId", "label"};
	struct pairing *p = rpc_device_pairing(call);
	struct pairing_actor who;
	const char *did, *label;
	const unsigned char *c;
	size_t nchar = 0;
	char actor[160];
	int r;

	if (!p)
		return GW_EUNAVAIL;
	if (rpc_device_params(call, keys, 2, 0) != 0)
		return GW_EINVAL;
	did = rpc_device_str(call, "deviceId");
	label = rpc_device_str(call, "label");
	/* DevicePairRenameParams: label is 1..64 characters (code points). */
	for (c = (const unsigned char *)label; *c; c++)
		nchar += (*c & 0xC0) != 0x80;
	if (nchar > 64) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid device.pair.rename params: at /label: "
			       "must be at most 64 characters");
		return GW_EINVAL;
	}
	if (rpc_device_own(call, did) != 0)
		return GW_EFORBIDDEN;
	rpc_device_actor(call, actor, sizeof(actor), &who);
	r = pairing_rename(p, did, label, &who);
	if (rpc_device_result(call, r, "deviceId") != GW_OK)
		return r;
	log_info("pairing", "renamed device=%s label=%.100s by %s", did,
		 label, actor);
	call->payload = json_pack("{s:s,s:s}", "deviceId", did, "label",
				  label);
	return GW_OK;
}

static int rpc_device_token_rotate(struct rpc_call *call)
{
	static const char *const keys[] = {"deviceId", "role"};
	struct pairing *p = rpc_device_pairing(call);
	struct pairing_actor who;
	const char *did, *role;
	char actor[160], *token = NULL;
	json_t *scopes = NULL;
	int64_t at = 0;
	int r;

	if (!p)
		return GW_EUNAVAIL;
	if (rpc_device_params(call, keys, 2, 1) != 0)
		return GW_EINVAL;
	did = rpc_device_str(call, "deviceId");
	role = rpc_device_str(call, "role");
	if (rpc_device_own(call, did) != 0)
		return GW_EFORBIDDEN;
	rpc_device_actor(call, actor, sizeof(actor), &who);
	r = pairing_token_rotate(p, did, role,
				 json_object_get(call->params, "scopes"), &who,
				 &token, &scopes, &at);
	if (r == GW_ENOTFOUND) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown device or role (device %s is not "
			       "approved for role %s)", did, role);
		return r;
	}
	if (r == GW_EFORBIDDEN) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "scopes exceed the device's approved scopes");
		return r;
	}
	if (r != GW_OK)
		return r;
	log_info("pairing", "rotated token device=%s role=%s by %s", did,
		 role, actor);
	/* Only the device itself receives its new token (upstream
	 * shouldReturnRotatedDeviceToken): a shared-secret or another
	 * device's caller gets the metadata only. */
	if (call->conn->device_id && strcmp(call->conn->device_id, did) == 0)
		call->payload = json_pack("{s:s,s:s,s:s,s:o,s:I,s:s}",
					  "deviceId", did, "role", role,
					  "token", token, "scopes", scopes,
					  "rotatedAtMs", (json_int_t)at,
					  "tokenDelivery", "in-band");
	else
		call->payload = json_pack("{s:s,s:s,s:o,s:I,s:s}", "deviceId",
					  did, "role", role, "scopes", scopes,
					  "rotatedAtMs", (json_int_t)at,
					  "tokenDelivery",
					  "withheld-cross-device");
	xfree_secret(token);
	rpc_device_close_after(call, did, role);
	return GW_OK;
}

static int rpc_device_token_revoke(struct rpc_call *call)
{
	static const char *const keys[] = {"deviceId", "role"};
	struct pairing *p = rpc_device_pairing(call);
	struct pairing_actor who;
	const char *did, *role;
	char actor[160];
	int64_t at = 0;
	int r;

	if (!p)
		return GW_EUNAVAIL;
	if (rpc_device_params(call, keys, 2, 0) != 0)
		return GW_EINVAL;
	did = rpc_device_str(call, "deviceId");
	role = rpc_device_str(call, "role");
	if (rpc_device_own(call, did) != 0)
		return GW_EFORBIDDEN;
	rpc_device_actor(call, actor, sizeof(actor), &who);
	r = pairing_token_revoke(p, did, role, &who, &at);
	if (r == GW_ENOTFOUND) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "unknown device token (device %s, role %s)",
			       did, role);
		return r;
	}
	if (r != GW_OK)
		return r;
	log_info("pairing", "revoked token device=%s role=%s by %s", did,
		 role, actor);
	call->payload = json_pack("{s:s,s:s,s:I}", "deviceId", did, "role",
				  role, "revokedAtMs", (json_int_t)at);
	rpc_device_close_after(call, did, role);
	return GW_OK;
}

const struct rpc_method rpc_device_methods[] = {
	{"device.pair.list", rpc_device_pair_list, "operator.pairing",
	 RPC_F_WORKER, "pending pairing requests and paired devices"},
	{"device.pair.approve", rpc_device_pair_approve, "operator.pairing",
	 RPC_F_WORKER, "approve a pending pairing request"},
	{"device.pair.reject", rpc_device_pair_reject, "operator.pairing",
	 RPC_F_WORKER, "reject a pending pairing request"},
	{"device.pair.remove", rpc_device_pair_remove, "operator.pairing",
	 RPC_F_WORKER, "forget a paired device (closes its sockets 4001)"},
	{"device.pair.rename", rpc_device_pair_rename, "operator.pairing",
	 RPC_F_WORKER, "set a paired device's label"},
	{"device.token.rotate", rpc_device_token_rotate, "operator.pairing",
	 RPC_F_WORKER, "issue a new device token for a role"},
	{"device.token.revoke", rpc_device_token_revoke, "operator.pairing",
	 RPC_F_WORKER, "revoke the device token of a role"},
};
const size_t rpc_device_methods_count = ARRAY_SIZE(rpc_device_methods);
