/* The connect handshake: frame and params validation, protocol negotiation,
 * role, browser origin, shared-secret auth, device proof, device tokens,
 * pairing, scopes, presence, hello-ok.
 * Every rejection is a res error then a close (SPEC §2). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-ui.h"
#include "auth/auth.h"
#include "auth/device.h"
#include "auth/limiter.h"
#include "auth/pairing.h"
#include "auth/proxy.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/ws.h"
#include "presence/presence.h"
#include "rpc/rpc-int.h"

#define PROTOCOL_VERSION 4
#define MIN_PROBE_PROTOCOL 3
#define MIN_NODE_PROTOCOL 3

static const char *const rpc_client_ids[] = {
	"webchat-ui", "openclaw-control-ui", "openclaw-browser-copilot",
	"openclaw-tui", "webchat", "cli", "gateway-client", "openclaw-macos",
	"openclaw-linux", "openclaw-ios", "openclaw-watchos",
	"openclaw-android", "node-host", "openclaw-worker", "test",
	"fingerprint", "openclaw-probe",
};

static const char *const rpc_client_modes[] = {
	"webchat", "cli", "ui", "backend", "node", "worker", "probe", "test",
};

/* Kinds of value in the closed ConnectParams schema. */
enum cp_kind { CP_INT1, CP_INT0, CP_STR1, CP_STR, CP_STRARR, CP_OBJ, CP_ANY,
	       CP_BOOLMAP, CP_ENUM_ID, CP_ENUM_MODE };

struct cp_field {
	const char *name;
	enum cp_kind kind;
	int required;
	const struct cp_field *sub;	/* for CP_OBJ: closed object fields */
};

static const struct cp_field cp_client[] = {
	{"id", CP_ENUM_ID, 1, NULL},
	{"displayName", CP_STR1, 0, NULL},
	{"version", CP_STR1, 1, NULL},
	{"buildId", CP_STR1, 0, NULL},
	{"platform", CP_STR1, 1, NULL},
	{"deviceFamily", CP_STR1, 0, NULL},
	{"modelIdentifier", CP_STR1, 0, NULL},
	{"timeZone", CP_STR1, 0, NULL},
	{"mode", CP_ENUM_MODE, 1, NULL},
	{"instanceId", CP_STR1, 0, NULL},
	{NULL, 0, 0, NULL},
};

static const struct cp_field cp_device[] = {
	{"id", CP_STR1, 1, NULL},
	{"publicKey", CP_STR1, 1, NULL},
	{"signature", CP_STR1, 1, NULL},
	{"signedAt", CP_INT0, 1, NULL},
	{"nonce", CP_STR1, 1, NULL},
	{NULL, 0, 0, NULL},
};

static const struct cp_field cp_auth[] = {
	{"token", CP_STR, 0, NULL},
	{"bootstrapToken", CP_STR, 0, NULL},
	{"deviceToken", CP_STR, 0, NULL},
	{"password", CP_STR, 0, NULL},
	{"approvalRuntimeToken", CP_STR, 0, NULL},
	{"agentRuntimeIdentityToken", CP_STR, 0, NULL},
	{NULL, 0, 0, NULL},
};

static const struct cp_field cp_root[] = {
	{"minProtocol", CP_INT1, 1, NULL},
	{"maxProtocol", CP_INT1, 1, NULL},
	{"client", CP_OBJ, 1, cp_client},
	{"caps", CP_STRARR, 0, NULL},
	{"commands", CP_STRARR, 0, NULL},
	{"computerUse", CP_ANY, 0, NULL},
	{"workerRuns", CP_ANY, 0, NULL},
	{"permissions", CP_BOOLMAP, 0, NULL},
	{"pathEnv", CP_STR, 0, NULL},
	{"role", CP_STR1, 0, NULL},
	{"scopes", CP_STRARR, 0, NULL},
	{"device", CP_OBJ, 0, cp_device},
	{"auth", CP_OBJ, 0, cp_auth},
	{"locale", CP_STR, 0, NULL},
	{"userAgent", CP_STR, 0, NULL},
	{NULL, 0, 0, NULL},
};

static int cp_in(const char *s, const char *const *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(s, set[i]) == 0)
			return 1;
	return 0;
}

static int cp_fail(char *msg, size_t n, const char *at, const char *what)
{
	if (at && *at)
		snprintf(msg, n, "at %s: %s", at, what);
	else
		snprintf(msg, n, "%s", what);
	return -1;
}

static int cp_check_obj(const json_t *o, const struct cp_field *fs,
			const char *at, char *msg, size_t n);

static int cp_check_value(const json_t *v, const struct cp_field *f,
			  const char *at, char *msg, size_t n)
{
	size_t i;
	json_t *x;
	const char *k;
	char sub[160];

	switch (f->kind) {
	case CP_INT1:
	case CP_INT0:
		if (!json_is_integer(v))
			return cp_fail(msg, n, at, "must be integer");
		if (json_integer_value(v) < (f->kind == CP_INT1 ? 1 : 0))
			return cp_fail(msg, n, at, f->kind == CP_INT1 ?
				       "must be >= 1" : "must be >= 0");
		return 0;
	case CP_STR1:
	case CP_STR:
		if (!json_is_string(v))
			return cp_fail(msg, n, at, "must be string");
		if (f->kind == CP_STR1 && json_string_length(v) == 0)
			return cp_fail(msg, n, at,
				       "must NOT have fewer than 1 characters");
		return 0;
	case CP_ENUM_ID:
	case CP_ENUM_MODE:
		if (!json_is_string(v) ||
		    !(f->kind == CP_ENUM_ID ?
		      cp_in(json_string_value(v), rpc_client_ids,
			    ARRAY_SIZE(rpc_client_ids)) :
		      cp_in(json_string_value(v), rpc_client_modes,
			    ARRAY_SIZE(rpc_client_modes))))
			return cp_fail(msg, n, at,
				"must be equal to one of the allowed values");
		return 0;
	case CP_STRARR:
		if (!json_is_array(v))
			return cp_fail(msg, n, at, "must be array");
		json_array_foreach(v, i, x) {
			snprintf(sub, sizeof(sub), "%.100s/%zu", at, i);
			if (!json_is_string(x))
				return cp_fail(msg, n, sub, "must be string");
			if (json_string_length(x) == 0)
				return cp_fail(msg, n, sub,
				"must NOT have fewer than 1 characters");
		}
		return 0;
	case CP_OBJ:
		if (!json_is_object(v))
			return cp_fail(msg, n, at, "must be object");
		return cp_check_obj(v, f->sub, at, msg, n);
	case CP_BOOLMAP:
		if (!json_is_object(v))
			return cp_fail(msg, n, at, "must be object");
		json_object_foreach((json_t *)v, k, x) {
			snprintf(sub, sizeof(sub), "%.100s/%.50s", at, k);
			if (!json_is_boolean(x))
				return cp_fail(msg, n, sub, "must be boolean");
		}
		return 0;
	case CP_ANY:
		return 0;
	}
	return 0;
}

static int cp_check_obj(const json_t *o, const struct cp_field *fs,
			const char *at, char *msg, size_t n)
{
	const struct cp_field *f;
	const char *k;
	json_t *v;
	char what[200], sub[160];

	for (f = fs; f->name; f++) {
		if (f->required && !json_object_get(o, f->name)) {
			snprintf(what, sizeof(what),
				 "must have required property '%s'", f->name);
			return cp_fail(msg, n, at, what);
		}
	}
	json_object_foreach((json_t *)o, k, v) {
		for (f = fs; f->name; f++)
			if (strcmp(f->name, k) == 0)
				break;
		if (!f->name) {
			/* Upstream's wording for closed objects. */
			snprintf(what, sizeof(what),
				 "unexpected property '%.100s'", k);
			return cp_fail(msg, n, at && *at ? at : "root", what);
		}
	}
	for (f = fs; f->name; f++) {
		v = json_object_get(o, f->name);
		if (!v)
			continue;
		snprintf(sub, sizeof(sub), "%.100s/%.50s", at, f->name);
		if (cp_check_value(v, f, sub, msg, n) != 0)
			return -1;
	}
	return 0;
}

int rpc_connect_check_params(const json_t *params, char *msg, size_t n)
{
	if (!json_is_object(params))
		return cp_fail(msg, n, NULL, "must be object");
	return cp_check_obj(params, cp_root, "", msg, n);
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Close reasons are bounded to 120 bytes (on a UTF-8 boundary). */
static void rpc_truncate_reason(const char *in, char out[124])
{
	size_t n = strlen(in);

	if (n > 120) {
		n = 120;
		while (n > 0 && ((unsigned char)in[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, in, n);
	out[n] = 0;
}

static void rpc_reject_1008(struct rpc_conn *c, json_t *id, const char *code,
			    const char *msg, json_t *details)
{
	char reason[124];

	rpc_truncate_reason(msg, reason);
	rpc_conn_reject(c, id, code, msg, details, 1008, reason);
	json_decref(details);
}

/* The header accessor of proxy_req over a ws connection. */
static const char *rpc_ws_header(void *arg, const char *name)
{
	return ws_conn_header(arg, name);
}

/* Is the origin one of the seeded ones of a non-loopback bind (SPEC §1)? */
static int rpc_origin_seeded(const struct gw_config *cfg, const char *norm)
{
	char a[64], b[64];

	if (cfg->bind == BIND_LOOPBACK)
		return 0;
	snprintf(a, sizeof(a), "http://localhost:%d", cfg->port);
	snprintf(b, sizeof(b), "http://127.0.0.1:%d", cfg->port);
	return strcmp(norm, a) == 0 || strcmp(norm, b) == 0;
}

/* Is this origin allowed for this socket? (SPEC §2, reference §7.5):
 * allowedOrigins ("*" or exact), the seeded origins of a non-loopback
 * bind, the Host fallback when enabled, loopback origins from a local
 * socket. */
static int rpc_origin_allowed(const struct gw_config *cfg, const char *origin,
			      int local, const char *host_hdr, char *norm,
			      size_t n)
{
	const char *p, *host, *end;
	size_t i, hl;
	char **ao;

	if (!origin || !*origin || strcmp(origin, "null") == 0)
		return 0;
	p = strstr(origin, "://");
	if (!p || p == origin || !p[3])
		return 0;
	for (i = 0; origin[i] && i + 1 < n; i++)
		norm[i] = (char)tolower((unsigned char)origin[i]);
	norm[i] = 0;
	while (i > 0 && norm[i - 1] == '/')
		norm[--i] = 0;
	for (ao = cfg->allowed_origins; ao && *ao; ao++)
		if (strcmp(*ao, "*") == 0 || strcasecmp(*ao, norm) == 0)
			return 1;
	if (rpc_origin_seeded(cfg, norm))
		return 1;
	host = norm + (p - origin) + 3;
	if (host_hdr && json_is_true(config_get(cfg->root,
			"gateway.controlUi."
			"dangerouslyAllowHostHeaderOriginFallback")) &&
	    strcasecmp(host, host_hdr) == 0)
		return 1;
	if (!local)
		return 0;
	if (*host == '[') {
		end = strchr(host, ']');
		if (!end)
			return 0;
		return strncmp(host, "[::1]", 5) == 0;
	}
	end = host + strcspn(host, ":/");
	hl = (size_t)(end - host);
	return (hl == 9 && strncmp(host, "localhost", 9) == 0) ||
	       (hl >= 4 && strncmp(host, "127.", 4) == 0);
}

static int rpc_is_ephemeral(const char *mode)
{
	return strcmp(mode, "cli") == 0 || strcmp(mode, "backend") == 0 ||
	       strcmp(mode, "probe") == 0;
}

static void rpc_presence_connect(struct rpc_conn *c, const json_t *params,
				 int local)
{
	const json_t *cl = json_object_get(params, "client");
	const char *host = jstr(cl, "displayName");
	const char *inst = jstr(cl, "instanceId");
	const char *ver = jstr(cl, "version"), *mode = jstr(cl, "mode");
	const char *kid = c->device_id ? c->device_id : inst;
	char *key, *text, *p;
	json_t *f;

	if (!host)
		host = jstr(cl, "id");
	key = xstrdup(kid ? kid : c->conn_id);
	for (p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	text = xasprintf("%s \xc2\xb7 app %s \xc2\xb7 mode %s \xc2\xb7 "
			 "reason connect", host, ver, mode);
	f = json_pack("{s:s,s:s,s:s,s:s,s:[s],s:O,s:s,s:s,s:s}", "host", host,
		      "version", ver, "platform", jstr(cl, "platform"), "mode",
		      mode, "roles", c->role, "scopes", c->scope_list,
		      "instanceId", kid ? kid : c->conn_id, "reason",
		      "connect", "text", text);
	if (c->device_id)
		json_object_set_new(f, "deviceId", json_string(c->device_id));
	if (jstr(cl, "deviceFamily"))
		json_object_set_new(f, "deviceFamily",
				    json_string(jstr(cl, "deviceFamily")));
	if (jstr(cl, "modelIdentifier"))
		json_object_set_new(f, "modelIdentifier",
				    json_string(jstr(cl, "modelIdentifier")));
	if (!local)
		json_object_set_new(f, "ip", json_string(c->client_ip));
	presence_upsert(key, f);
	json_decref(f);
	free(text);
	c->presence_key = key;
}

static json_t *rpc_hello(struct rpc_conn *c, const struct gw_config *cfg,
			 const char *device_token, int64_t issued_at)
{
	struct rpc_server *s = c->srv;
	json_t *snap, *hello, *health;

	health = json_loads(rpc_health_json(s), 0, NULL);
	snap = json_pack("{s:o,s:o,s:{s:I,s:I},s:I,s:{s:s,s:s,s:s,s:s}}",
			 "presence", presence_list(), "health",
			 health ? health : json_object(), "stateVersion",
			 "presence", (json_int_t)presence_version(), "health",
			 (json_int_t)presence_health_version(), "uptimeMs",
			 (json_int_t)(util_mono_ms() - s->d.start_mono_ms),
			 "sessionDefaults", "defaultAgentId", "main",
			 "mainKey", "main", "mainSessionKey", "agent:main:main",
			 "scope", "per-sender");
	if (c->scopes & SCOPE_ADMIN) {
		json_object_set_new(snap, "configPath",
				    json_string(s->d.config_path));
		json_object_set_new(snap, "stateDir",
				    json_string(s->d.state_dir));
		json_object_set_new(snap, "authMode",
				    json_string(auth_mode_name(cfg->auth_mode)));
	}
	hello = json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:s,s:s},s:o,s:o,"
			  "s:{s:s,s:O},s:{s:i,s:i,s:I}}",
			  "type", "hello-ok", "protocol", PROTOCOL_VERSION,
			  "server", "version", s->d.version, "buildId",
			  s->d.build_id, "bootId", s->d.boot_id,
			  "controlUiBuildSource", api_ui_build_source(cfg),
			  "connId", c->conn_id, "features", rpc_features(),
			  "snapshot",
			  snap, "auth", "role", c->role, "scopes",
			  c->scope_list, "policy", "maxPayload", 26214400,
			  "maxBufferedBytes", 52428800, "tickIntervalMs",
			  (json_int_t)s->d.tick_ms);
	if (device_token) {
		json_t *a = json_object_get(hello, "auth");

		json_object_set_new(a, "deviceToken",
				    json_string(device_token));
		json_object_set_new(a, "issuedAtMs", json_integer(issued_at));
	}
	return hello;
}

/* The handshake succeeded: presence, ready list, hello-ok. */
static void rpc_hs_finish(struct rpc_conn *c, json_t *id,
			  const json_t *params, const struct gw_config *cfg,
			  int local, const char *device_token,
			  int64_t issued_at)
{
	json_t *res;

	if (!rpc_is_ephemeral(c->client_mode))
		rpc_presence_connect(c, params, local);
	rpc_conn_ready(c);
	res = json_pack("{s:s,s:O,s:b,s:o}", "type", "res", "id", id, "ok", 1,
			"payload", rpc_hello(c, cfg, device_token, issued_at));
	rpc_conn_send_json(c, res);
	if (strcmp(c->role, "node") == 0)
		rpc_node_connected(c, params);
	log_debug("ws", "connected conn=%s client=%s mode=%s auth=%s%s%s",
		  c->conn_id, c->client_id, c->client_mode, c->auth_method,
		  c->device_id ? " device=" : "",
		  c->device_id ? c->device_id : "");
}

/* ---- pairing work off the lws thread ------------------------------------ */

/* A connect that needs a durable pairing write (silent approval or the
 * first token of an approved device) before its hello-ok. */
struct rpc_hs_job {
	struct rpc_conn *c;	/* referenced */
	json_t *id;
	json_t *params;		/* the claim's strings point into it */
	struct gw_config *cfg;
	struct pairing_claim claim;
	char pubkey[48];
	int local;
	int silent;		/* approve silently, else ensure the token */
	int rc;
	char *token;
	char *request_id;
	int64_t issued_at;
};

static void rpc_hs_job_free(struct rpc_hs_job *j)
{
	json_decref(j->id);
	json_decref(j->params);
	config_unref(j->cfg);
	xfree_secret(j->token);
	free(j->request_id);
	free(j);
}

static void rpc_hs_job_done(void *arg)
{
	struct rpc_hs_job *j = arg;
	struct rpc_conn *c = j->c;

	c->hs_pending = 0;
	if (!c->ws || c->state != RPC_AWAIT_CONNECT)
		goto out;
	if (j->rc != GW_OK && j->rc != GW_EEXIST) {
		rpc_reject_1008(c, j->id, "UNAVAILABLE",
				"pairing state unavailable; retry shortly",
				NULL);
		goto out;
	}
	rpc_hs_finish(c, j->id, j->params, j->cfg, j->local, j->token,
		      j->issued_at);
out:
	rpc_conn_unref(c);
	rpc_hs_job_free(j);
}

static void rpc_hs_job_run(void *arg)
{
	struct rpc_hs_job *j = arg;
	struct pairing *p = j->c->srv->d.pairing;
	struct pairing_actor who = {"gateway:auto-approve-local",
				    j->claim.remote_ip};

	if (j->silent) {
		j->rc = pairing_approve_silent(p, &j->claim, &who,
					       &j->request_id, &j->token,
					       &j->issued_at);
		if (j->rc == GW_OK)
			rpc_broadcast(j->c->srv, "device.pair.resolved",
				      json_pack("{s:s,s:s,s:s,s:I}",
						"requestId", j->request_id,
						"deviceId",
						j->claim.device_id, "decision",
						"approved", "ts",
						(json_int_t)util_now_ms()),
				      0, SCOPE_PAIRING);
	} else {
		j->rc = pairing_token_ensure(p, j->claim.device_id,
					     j->claim.role, &j->token,
					     &j->issued_at);
	}
	if (ws_post(j->c->srv->d.ws, rpc_hs_job_done, j) != 0) {
		/* Shutting down: the connection is going away. */
		log_debug("ws", "pairing job dropped (shutdown)");
	}
}

/* ---- the handshake ------------------------------------------------------ */

/* A client that authenticates by device token or by the shared secret but
 * asks for scopes: the scope mask and list it gets. bound (may be NULL)
 * limits the operator scopes to those it covers. */
static void rpc_hs_scopes(struct rpc_conn *c, const json_t *requested,
			  const char *mode, const char *role,
			  const json_t *bound)
{
	json_t *v;
	size_t i;

	c->scope_list = json_array();
	if (strcasecmp(mode, "probe") == 0 || strcmp(role, "operator") != 0)
		return;
	json_array_foreach(requested, i, v) {
		const char *sc = json_string_value(v);

		if (bound && !pairing_scope_covered(bound, sc))
			continue;
		c->scopes |= rpc_scope_bit(sc);
		json_array_append(c->scope_list, v);
	}
}

static void rpc_reject_auth(struct rpc_conn *c, json_t *id,
			    const struct auth_result *ares, int can_retry,
			    const char *client_id, const char *mode)
{
	json_t *details, *res, *v;
	char reason[124];

	details = json_pack("{s:s,s:s,s:b,s:s}", "code", ares->detail_code,
			    "authReason", ares->reason,
			    "canRetryWithDeviceToken", can_retry,
			    "recommendedNextStep",
			    can_retry ? "retry_with_device_token" :
					ares->next_step);
	res = json_pack("{s:s,s:O,s:b,s:{s:s,s:s,s:O}}", "type", "res", "id",
			id, "ok", 0, "error", "code", "INVALID_REQUEST",
			"message", ares->message, "details", details);
	if (ares->rate_limited) {
		v = json_object_get(res, "error");
		json_object_set_new(v, "retryable", json_true());
		json_object_set_new(v, "retryAfterMs",
				    json_integer(ares->retry_after_ms));
	}
	json_decref(details);
	log_info("ws", "unauthorized conn=%s remote=%s client=%s %s "
		 "reason=%s", c->conn_id, c->client_ip ? c->client_ip : "?",
		 client_id, mode, ares->reason);
	rpc_conn_send_json(c, res);
	rpc_truncate_reason(ares->message, reason);
	rpc_conn_reject(c, NULL, NULL, NULL, NULL, 1008, reason);
}

/* Control UI for the device-auth policy (reference §7.5). */
static int rpc_is_control_ui(const char *client_id)
{
	return strcasecmp(client_id, "openclaw-control-ui") == 0 ||
	       strcasecmp(client_id, "openclaw-tui") == 0;
}

/* Verify the device proof; on failure reject (1008) and return -1. */
static int rpc_hs_device(struct rpc_conn *c, json_t *id, const json_t *params,
			 const char *role, const char *client_id,
			 const char *mode, uint8_t pub[32])
{
	const json_t *dev = json_object_get(params, "device");
	const json_t *auth = json_object_get(params, "auth");
	const json_t *cl = json_object_get(params, "client");
	struct device_proof pf;
	const char *msg, *reason, *code;
	int f;

	memset(&pf, 0, sizeof(pf));
	pf.id = jstr(dev, "id");
	pf.public_key = jstr(dev, "publicKey");
	pf.signature = jstr(dev, "signature");
	pf.signed_at = json_integer_value(json_object_get(dev, "signedAt"));
	pf.nonce = jstr(dev, "nonce");
	pf.client_id = client_id;
	pf.client_mode = mode;
	pf.role = role;
	pf.scopes = json_object_get(params, "scopes");
	pf.token = jstr(auth, "token");
	if (!pf.token)
		pf.token = jstr(auth, "deviceToken");
	if (!pf.token)
		pf.token = jstr(auth, "bootstrapToken");
	pf.platform = jstr(cl, "platform");
	pf.device_family = jstr(cl, "deviceFamily");
	f = device_verify(&pf, c->nonce, util_now_ms(), pub);
	if (f == DEVICE_OK)
		return 0;
	device_fail_info(f, &msg, &reason, &code);
	log_info("ws", "device auth failed conn=%s remote=%s reason=%s",
		 c->conn_id, c->client_ip, reason);
	rpc_reject_1008(c, id, "INVALID_REQUEST", msg,
			json_pack("{s:s,s:s}", "code", code, "reason", reason));
	return -1;
}

/* Upstream's wording per pairing reason (connect-error-details). */
static const struct {
	const char *reason, *requirement, *hint;
} rpc_pairing_texts[] = {
	{"not-paired", "device is not approved yet",
	 "Approve this device from the pending pairing requests."},
	{"role-upgrade",
	 "device is asking for a higher role than currently approved",
	 "Review the requested role upgrade, then approve the pending "
	 "request."},
	{"scope-upgrade",
	 "device is asking for more scopes than currently approved",
	 "Review the requested scopes, then approve the pending upgrade."},
	{"metadata-upgrade", "device identity changed and must be re-approved",
	 "Review the refreshed device details, then approve the pending "
	 "request."},
};

/* The pairing-required answer and 1008 close. A Control UI operator is
 * told to wait and retry (it reconnects by itself once approved), as
 * upstream does while its approval is pending. */
static void rpc_hs_pairing_required(struct rpc_conn *c, json_t *id,
				    int need, const char *rid,
				    const struct pairing_claim *claim,
				    int control_ui)
{
	const char *role = claim->role;
	const json_t *scopes = claim->scopes;
	json_t *dev;
	const char *reason = pairing_need_name(need);
	const char *req = "device approval is required";
	const char *hint = "Approve the pending device request before "
			   "retrying.";
	char msg[160], full[240], close_reason[124];
	json_t *details, *sc = json_array(), *e;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rpc_pairing_texts); i++)
		if (strcmp(rpc_pairing_texts[i].reason, reason) == 0) {
			req = rpc_pairing_texts[i].requirement;
			hint = rpc_pairing_texts[i].hint;
		}
	json_array_foreach(scopes, i, e)
		if (json_is_string(e) && json_string_length(e) > 0)
			json_array_append(sc, e);
	details = json_pack("{s:s,s:s,s:s,s:s}", "code", "PAIRING_REQUIRED",
			    "reason", reason, "requestId", rid,
			    "remediationHint", hint);
	if (control_ui && strcmp(role, "operator") == 0) {
		json_object_set_new(details, "recommendedNextStep",
				    json_string("wait_then_retry"));
		json_object_set_new(details, "retryable", json_true());
		json_object_set_new(details, "pauseReconnect", json_false());
	}
	json_object_set_new(details, "deviceId", json_string(c->device_id));
	json_object_set_new(details, "requestedRole", json_string(role));
	json_object_set_new(details, "requestedScopes", sc);
	/* What the same key holds already (an upgrade). */
	dev = pairing_device_get(c->srv->d.pairing, claim->device_id);
	if (dev && json_is_string(json_object_get(dev, "publicKey")) &&
	    claim->public_key &&
	    strcmp(json_string_value(json_object_get(dev, "publicKey")),
		   claim->public_key) == 0) {
		if (json_array_size(json_object_get(dev, "roles")))
			json_object_set(details, "approvedRoles",
					json_object_get(dev, "roles"));
		if (json_array_size(json_object_get(dev, "scopes")))
			json_object_set(details, "approvedScopes",
					json_object_get(dev, "scopes"));
	}
	json_decref(dev);
	snprintf(msg, sizeof(msg), "pairing required: %s", req);
	log_info("ws", "pairing required conn=%s device=%s reason=%s "
		 "request=%s", c->conn_id, c->device_id, reason, rid);
	snprintf(full, sizeof(full), "%s (requestId: %s)", msg, rid);
	rpc_truncate_reason(strlen(full) <= 123 ? full : msg, close_reason);
	rpc_conn_reject(c, id, "NOT_PAIRED", msg, details, 1008,
			close_reason);
	json_decref(details);
}

void rpc_connect_handle(struct rpc_conn *c, json_t *frame)
{
	struct gw_config *cfg = NULL;
	struct auth_request arq;
	struct auth_result ares;
	struct proxy_req prq;
	struct pairing_claim claim;
	struct rpc_hs_job *job;
	json_t *id, *params, *auth, *device, *scopes, *v, *details;
	json_t *tok_scopes = NULL;
	const char *method, *role, *mode, *client_id, *origin, *cand;
	char msg[256], full[300], norm[256], cip[64];
	uint8_t pub[32];
	char *pub_b64 = NULL;
	int64_t minp, maxp;
	int local, browser, ok, control_ui, need, has_token, silent;
	int by_device_token = 0;

	if (c->hs_pending)
		return;		/* one connect at a time */
	if (rpc_frame_check_req(frame, msg, sizeof(msg)) != 0) {
		rpc_conn_reject(c, NULL, NULL, NULL, NULL, 1008,
				"invalid request frame");
		return;
	}
	id = json_object_get(frame, "id");
	method = jstr(frame, "method");
	if (strcmp(method, "connect") != 0) {
		rpc_reject_1008(c, id, "INVALID_REQUEST",
			"invalid handshake: first request must be connect",
			NULL);
		return;
	}
	params = json_object_get(frame, "params");
	if (rpc_connect_check_params(params, msg, sizeof(msg)) != 0) {
		snprintf(full, sizeof(full), "invalid connect params: %s", msg);
		rpc_reject_1008(c, id, "INVALID_REQUEST", full, NULL);
		return;
	}
	minp = json_integer_value(json_object_get(params, "minProtocol"));
	maxp = json_integer_value(json_object_get(params, "maxProtocol"));
	v = json_object_get(params, "client");
	mode = jstr(v, "mode");
	client_id = jstr(v, "id");
	role = jstr(params, "role");
	if (!role)
		role = "operator";
	ok = minp <= PROTOCOL_VERSION && PROTOCOL_VERSION <= maxp;
	if (!ok && strcasecmp(mode, "probe") == 0)
		ok = maxp >= MIN_PROBE_PROTOCOL && minp <= PROTOCOL_VERSION;
	if (!ok && strcmp(role, "node") == 0 && strcasecmp(mode, "node") == 0)
		ok = minp <= MIN_NODE_PROTOCOL && MIN_NODE_PROTOCOL <= maxp;
	if (!ok) {
		details = json_pack("{s:s,s:I,s:I,s:i,s:i}", "code",
				    "PROTOCOL_MISMATCH", "clientMinProtocol",
				    (json_int_t)minp, "clientMaxProtocol",
				    (json_int_t)maxp, "expectedProtocol",
				    PROTOCOL_VERSION, "minimumProbeProtocol",
				    MIN_PROBE_PROTOCOL);
		rpc_conn_reject(c, id, "INVALID_REQUEST", "protocol mismatch",
				details, 1002, "protocol mismatch");
		json_decref(details);
		return;
	}
	if (strcmp(role, "operator") != 0 && strcmp(role, "node") != 0) {
		rpc_conn_reject(c, id, "INVALID_REQUEST", "invalid role", NULL,
				1008, "invalid role");
		return;
	}
	cfg = config_current();
	memset(&prq, 0, sizeof(prq));
	prq.peer_ip = ws_conn_peer_ip(c->ws);
	prq.peer_loopback = ws_conn_peer_is_loopback(c->ws);
	prq.header = rpc_ws_header;
	prq.arg = c->ws;
	local = proxy_is_local(&prq);
	proxy_client_ip(cfg, &prq, cip, sizeof(cip));
	free(c->client_ip);
	c->client_ip = xstrdup(cip);
	origin = ws_conn_header(c->ws, "origin");
	browser = origin != NULL ||
		  strcasecmp(client_id, "openclaw-control-ui") == 0 ||
		  strcasecmp(client_id, "webchat-ui") == 0 ||
		  strcasecmp(mode, "webchat") == 0;
	control_ui = rpc_is_control_ui(client_id);
	norm[0] = 0;
	if (browser && !rpc_origin_allowed(cfg, origin, local,
					   ws_conn_header(c->ws, "host"), norm,
					   sizeof(norm))) {
		details = json_pack("{s:s,s:s}", "code",
				    "CONTROL_UI_ORIGIN_NOT_ALLOWED", "reason",
				    origin ? "origin not allowed" :
					     "origin missing or invalid");
		rpc_reject_1008(c, id, "INVALID_REQUEST",
			"origin not allowed (open the Control UI from the "
			"gateway host or allow it in "
			"gateway.controlUi.allowedOrigins)", details);
		goto out;
	}
	auth = json_object_get(params, "auth");
	device = json_object_get(params, "device");
	if (!auth && !device && cfg->auth_mode != AUTH_MODE_NONE &&
	    cfg->auth_mode != AUTH_MODE_TRUSTED_PROXY) {
		rpc_reject_1008(c, id, "NOT_PAIRED", "device identity required",
				json_pack("{s:s}", "code",
					  "DEVICE_IDENTITY_REQUIRED"));
		goto out;
	}
	if (strcmp(role, "node") == 0 && !device) {
		rpc_reject_1008(c, id, "NOT_PAIRED", "device identity required",
				json_pack("{s:s}", "code",
					  "DEVICE_IDENTITY_REQUIRED"));
		goto out;
	}
	memset(&arq, 0, sizeof(arq));
	arq.token = jstr(auth, "token");
	arq.password = jstr(auth, "password");
	arq.client_ip = cip;
	arq.is_loopback = local;
	arq.browser = origin != NULL;
	arq.origin = norm[0] ? norm : origin;
	arq.ui_client = strcasecmp(client_id, "openclaw-control-ui") == 0 ||
			strcasecmp(client_id, "webchat-ui") == 0;
	arq.proxy = &prq;
	auth_check(cfg, c->srv->d.limiter, &arq, &ares);
	/* Missing device identity (reference §7.4). */
	if (!device) {
		if (control_ui && cfg->auth_mode != AUTH_MODE_TRUSTED_PROXY &&
		    cfg->auth_mode != AUTH_MODE_NONE) {
			rpc_reject_1008(c, id, "INVALID_REQUEST",
				"control ui requires device identity (use "
				"HTTPS or localhost secure context)",
				json_pack("{s:s}", "code",
				"CONTROL_UI_DEVICE_IDENTITY_REQUIRED"));
			goto out;
		}
		if (!ares.ok) {
			rpc_reject_auth(c, id, &ares, 0, client_id, mode);
			goto out;
		}
		/* A device-less shared-secret operator gets what it asks
		 * for (SPEC §2); probe mode gets none. */
		c->auth_method = ares.method;
		rpc_config_auth_note(c, cfg);
		c->role = xstrdup(role);
		c->client_id = xstrdup(client_id);
		c->client_mode = xstrdup(mode);
		rpc_hs_scopes(c, json_object_get(params, "scopes"), mode, role,
			      NULL);
		rpc_hs_finish(c, id, params, cfg, local, NULL, 0);
		goto out;
	}
	/* Device proof (reference §2.3, the table of §2.1 step 13). */
	if (rpc_hs_device(c, id, params, role, client_id, mode, pub) != 0)
		goto out;
	free(c->device_id);
	c->device_id = xstrdup(jstr(device, "id"));
	pub_b64 = util_b64url_encode(pub, 32);
	/* Auth decision: the shared secret, else the device token
	 * (auth.deviceToken, or auth.token as a fallback). */
	if (!ares.ok && c->srv->d.pairing) {
		cand = jstr(auth, "deviceToken");
		if (!cand)
			cand = jstr(auth, "token");
		if (cand && pairing_token_check(c->srv->d.pairing,
						c->device_id, role, cand,
						&tok_scopes)) {
			by_device_token = 1;
		} else if (jstr(auth, "deviceToken") && !ares.rate_limited &&
			   !jstr(auth, "token") && !jstr(auth, "password")) {
			ares.reason = "device_token_mismatch";
			ares.detail_code = "AUTH_DEVICE_TOKEN_MISMATCH";
			ares.next_step = "update_auth_credentials";
			snprintf(ares.message, sizeof(ares.message),
				 "unauthorized: device token mismatch "
				 "(rotate/reissue device token)");
		}
	}
	if (!ares.ok && !by_device_token) {
		rpc_reject_auth(c, id, &ares,
				strcmp(ares.reason ? ares.reason : "",
				       "token_mismatch") == 0 &&
				jstr(auth, "token") &&
				!jstr(auth, "deviceToken"),
				client_id, mode);
		goto out;
	}
	c->auth_method = by_device_token ? "device-token" : ares.method;
	rpc_config_auth_note(c, cfg);
	c->role = xstrdup(role);
	c->client_id = xstrdup(client_id);
	c->client_mode = xstrdup(mode);
	scopes = json_object_get(params, "scopes");
	memset(&claim, 0, sizeof(claim));
	claim.device_id = c->device_id;
	claim.public_key = pub_b64;
	v = json_object_get(params, "client");
	claim.display_name = jstr(v, "displayName");
	claim.platform = jstr(v, "platform");
	claim.device_family = jstr(v, "deviceFamily");
	claim.client_id = client_id;
	claim.client_mode = mode;
	claim.role = role;
	claim.scopes = scopes;
	claim.remote_ip = cip;
	/* Pairing is skipped for the local backend self-connect with the
	 * shared secret, trusted-proxy Control UI and mode none Control UI. */
	if (!c->srv->d.pairing ||
	    (local && !by_device_token &&
	     strcasecmp(client_id, "gateway-client") == 0 &&
	     strcasecmp(mode, "backend") == 0) ||
	    (control_ui && (cfg->auth_mode == AUTH_MODE_TRUSTED_PROXY ||
			    cfg->auth_mode == AUTH_MODE_NONE))) {
		rpc_hs_scopes(c, scopes, mode, role, tok_scopes);
		rpc_hs_finish(c, id, params, cfg, local, NULL, 0);
		goto out;
	}
	need = pairing_check(c->srv->d.pairing, &claim, &has_token);
	silent = local &&
		 !json_is_false(config_get(cfg->root,
				"gateway.nodes.pairing.autoApproveLocal")) &&
		 (!origin || control_ui ||
		  strcasecmp(client_id, "webchat-ui") == 0 ||
		  strcasecmp(mode, "webchat") == 0) &&
		 (need == PAIRING_NOT_PAIRED || need == PAIRING_ROLE_UPGRADE ||
		  need == PAIRING_SCOPE_UPGRADE);
	if (need != PAIRING_OK && !silent) {
		int fresh = 0;
		json_t *ev = pairing_request(c->srv->d.pairing, &claim, need,
					     &fresh);
		const char *rid = jstr(ev, "requestId");

		rpc_hs_pairing_required(c, id, need, rid, &claim, control_ui);
		if (fresh)
			rpc_broadcast(c->srv, "device.pair.requested", ev, 0,
				      SCOPE_PAIRING);
		else
			json_decref(ev);
		goto out;
	}
	rpc_hs_scopes(c, scopes, mode, role, tok_scopes);
	if (need == PAIRING_OK && (has_token || by_device_token)) {
		rpc_hs_finish(c, id, params, cfg, local, NULL, 0);
		goto out;
	}
	/* A durable write first: silent approval, or the first token of an
	 * approved device. The hello-ok follows from the worker's answer. */
	job = xcalloc(1, sizeof(*job));
	job->c = c;
	c->refs++;
	job->id = json_incref(id);
	job->params = json_incref(params);
	job->cfg = config_ref(cfg);
	job->claim = claim;
	snprintf(job->pubkey, sizeof(job->pubkey), "%s", pub_b64);
	job->claim.public_key = job->pubkey;
	job->claim.device_id = c->device_id;
	job->claim.remote_ip = c->client_ip;
	job->local = local;
	job->silent = need != PAIRING_OK;
	c->hs_pending = 1;
	if (workq_post(c->srv->d.workers, rpc_hs_job_run, job) != 0) {
		c->hs_pending = 0;
		c->refs--;
		rpc_hs_job_free(job);
		rpc_reject_1008(c, id, "UNAVAILABLE",
				"gateway busy; retry shortly", NULL);
	}
out:
	json_decref(tok_scopes);
	free(pub_b64);
	config_unref(cfg);
}
