/* Channel methods: channels.status (probe), channels.start|stop|logout,
 * channels.pairing.list|approve|dismiss and send, over the channel
 * subsystem (src/channel/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel/channel.h"
#include "config/config-reload.h"
#include "core/json5.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "rpc/rpc-int.h"
#include "store/store-channels.h"
#include "store/store.h"

#define RPC_CHANNELS_PAIR_TTL_MS 3600000
#define RPC_CHANNELS_PAIR_CAP 3
#define RPC_CHANNELS_TEXT_MAX (256 * 1024)

/* One property of a method's params: name and JSON type ('s' non-empty
 * string, 'S' any string, 'b' boolean, 'i' integer >= 0, '*' anything),
 * required when upper-case flag req is set. */
struct rpc_channels_prop {
	const char *name;
	char type;
	int req;
};

static int rpc_channels_check(struct rpc_call *call,
			      const struct rpc_channels_prop *props, size_t n)
{
	const char *k;
	json_t *v;
	size_t i;

	for (i = 0; i < n; i++) {
		if (props[i].req && !json_object_get(call->params,
						     props[i].name)) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "invalid %s params: must have required "
				       "property '%s'", call->method,
				       props[i].name);
			return -1;
		}
	}
	json_object_foreach(call->params, k, v) {
		const char *want = NULL;

		for (i = 0; i < n; i++)
			if (strcmp(props[i].name, k) == 0)
				break;
		if (i == n) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "invalid %s params: unexpected property "
				       "'%.100s'", call->method, k);
			return -1;
		}
		switch (props[i].type) {
		case 's':
			if (!json_is_string(v))
				want = "must be string";
			else if (json_string_length(v) == 0)
				want = "must NOT have fewer than 1 characters";
			break;
		case 'S':
			if (!json_is_string(v))
				want = "must be string";
			break;
		case 'b':
			if (!json_is_boolean(v))
				want = "must be boolean";
			break;
		case 'i':
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				want = "must be integer >= 0";
			break;
		default:
			break;
		}
		if (want) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "invalid %s params: at /%s: %s",
				       call->method, k, want);
			return -1;
		}
	}
	return 0;
}

static const char *rpc_channels_str(struct rpc_call *call, const char *k)
{
	const char *v = json_string_value(json_object_get(call->params, k));

	return v && *v ? v : NULL;
}

static struct channels *rpc_channels_need(struct rpc_call *call)
{
	struct channels *c = channels_global();

	if (!c)
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "channels are not running");
	return c;
}

static int rpc_channels_fail(struct rpc_call *call, int rc, char *err)
{
	rpc_call_error(call, rc == GW_EINVAL ? "INVALID_REQUEST" :
		       "UNAVAILABLE", NULL, "%s", err ? err : gw_err_str(rc));
	free(err);
	return rc;
}

static int rpc_channels_status(struct rpc_call *call)
{
	static const struct rpc_channels_prop p[] = {
		{"probe", 'b', 0}, {"timeoutMs", 'i', 0}, {"channel", 's', 0},
	};
	const json_t *t = json_object_get(call->params, "timeoutMs");

	if (rpc_channels_check(call, p, ARRAY_SIZE(p)))
		return GW_EINVAL;
	call->payload = channels_status(channels_global(),
		rpc_channels_str(call, "channel"),
		json_is_true(json_object_get(call->params, "probe")),
		t ? json_integer_value(t) : 10000);
	return GW_OK;
}

static const struct rpc_channels_prop rpc_channels_ctl_props[] = {
	{"channel", 's', 1}, {"accountId", 'S', 0},
};

static int rpc_channels_ctl(struct rpc_call *call, int start)
{
	struct channels *c;
	const char *ch, *acc;
	char *err = NULL;
	int rc;

	if (rpc_channels_check(call, rpc_channels_ctl_props,
			       ARRAY_SIZE(rpc_channels_ctl_props)))
		return GW_EINVAL;
	if (!(c = rpc_channels_need(call)))
		return GW_EUNAVAIL;
	ch = rpc_channels_str(call, "channel");
	acc = rpc_channels_str(call, "accountId");
	rc = start ? channels_start(c, ch, acc, &err)
		   : channels_stop(c, ch, acc, &err);
	if (rc != GW_OK)
		return rpc_channels_fail(call, rc, err);
	log_info("channels", "%s %s%s%s", call->method, ch, acc ? ":" : "",
		 acc ? acc : "");
	call->payload = json_pack("{s:s,s:s*,s:b}", "channel", ch,
				  "accountId", acc, start ? "started" :
				  "stopped", 1);
	return GW_OK;
}

static int rpc_channels_start(struct rpc_call *call)
{
	return rpc_channels_ctl(call, 1);
}

static int rpc_channels_stop(struct rpc_call *call)
{
	return rpc_channels_ctl(call, 0);
}

/* IRC holds no login session: logout stops the account (as upstream does
 * for channels without stored credentials) and reports cleared=false. */
static int rpc_channels_logout(struct rpc_call *call)
{
	struct channels *c;
	const char *ch, *acc;
	char *err = NULL;
	int rc;

	if (rpc_channels_check(call, rpc_channels_ctl_props,
			       ARRAY_SIZE(rpc_channels_ctl_props)))
		return GW_EINVAL;
	if (!(c = rpc_channels_need(call)))
		return GW_EUNAVAIL;
	ch = rpc_channels_str(call, "channel");
	acc = rpc_channels_str(call, "accountId");
	rc = channels_stop(c, ch, acc, &err);
	if (rc != GW_OK)
		return rpc_channels_fail(call, rc, err);
	call->payload = json_pack("{s:s,s:s*,s:b,s:b}", "channel", ch,
				  "accountId", acc, "cleared", 0,
				  "loggedOut", 1);
	return GW_OK;
}

static char *rpc_channels_iso(int64_t ms)
{
	char buf[40];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
	return xstrdup(buf);
}

static int rpc_channels_owner_configured(const struct rpc_call *call)
{
	const json_t *o = config_get(call->cfg->root,
				     "commands.ownerAllowFrom");

	return json_array_size(o) > 0;
}

#define RPC_CHANNELS_CONFIG_MAX (4 * 1024 * 1024)

/* First-owner bootstrap: with no commands.ownerAllowFrom configured, set
 * it to ["<channel>:<sender>"] through the one config write path (the file
 * is rewritten as JSON and reloaded). Returns the result word. */
static const char *rpc_channels_bootstrap_owner(struct rpc_call *call,
						const char *channel,
						const char *sender)
{
	struct config_reloader *r = config_reloader_global();
	struct config_req req = { .source = "rpc", .actor = "pairing",
				  .method = call->method };
	struct config_result res;
	struct json5_error jerr;
	json_t *root = NULL, *cmds;
	const char *word = "unavailable";
	char *text = NULL, *out = NULL;
	size_t len = 0;
	int rc;

	if (!r)
		return word;
	memset(&res, 0, sizeof(res));
	config_reloader_lock(r);
	rc = util_read_file(config_reloader_path(r), RPC_CHANNELS_CONFIG_MAX,
			    &text, &len);
	if (rc == 0) {
		root = json_object();	/* no file yet */
	} else if (rc != 1 || json5_parse(text, len, &root, &jerr) != 0 ||
		   !json_is_object(root)) {
		log_warn("channels", "command-owner bootstrap: cannot read "
			 "%s", config_reloader_path(r));
		goto out;
	}
	if (json_array_size(config_get(root, "commands.ownerAllowFrom"))) {
		word = "already-configured";
		goto out;
	}
	cmds = json_object_get(root, "commands");
	if (!json_is_object(cmds)) {
		cmds = json_object();
		json_object_set_new(root, "commands", cmds);
	}
	json_object_set_new(cmds, "ownerAllowFrom", json_pack("[s++]",
			    channel, ":", sender));
	out = json_dumps(root, JSON_INDENT(2));
	if (out && config_reloader_write_locked(r, out, strlen(out), &req,
						&res) == GW_OK) {
		word = "configured";
		log_info("channels", "command owner bootstrapped: %s:%s",
			 channel, sender);
	}
	else
		log_warn("channels", "command-owner bootstrap failed: %s",
			 res.reason ? res.reason : "config write failed");
out:
	config_reloader_unlock(r);
	config_result_free(&res);
	json_decref(root);
	free(text);
	free(out);
	return word;
}

static int rpc_channels_pairing_list(struct rpc_call *call)
{
	static const struct rpc_channels_prop p[] = {
		{"channel", 's', 0}, {"accountId", 's', 0},
	};
	const char *ch, *acc;
	json_t *accounts, *rows = NULL, *reqs, *a, *row;
	size_t i, j;
	int rc;

	if (rpc_channels_check(call, p, ARRAY_SIZE(p)))
		return GW_EINVAL;
	ch = rpc_channels_str(call, "channel");
	acc = rpc_channels_str(call, "accountId");
	if (!rpc_channels_need(call))
		return GW_EUNAVAIL;
	accounts = channels_pairing_accounts(channels_global(), ch, acc);
	reqs = json_array();
	rc = store_channels_pair_list(channels_store(channels_global()), ch,
				      acc,
				      util_now_ms(), RPC_CHANNELS_PAIR_TTL_MS,
				      &rows);
	if (rc != GW_OK) {
		json_decref(accounts);
		json_decref(reqs);
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "cannot read pairing requests");
		return rc;
	}
	json_array_foreach(rows, i, row) {
		const char *rch = json_string_value(json_object_get(row,
							"channel"));
		const char *racc = json_string_value(json_object_get(row,
							 "account"));
		int64_t created = json_integer_value(json_object_get(row,
						     "createdAt"));
		int64_t seen = json_integer_value(json_object_get(row,
						  "lastSeenAt"));
		json_t *meta = json_object(), *mv, *r;
		const char *mk;
		const char *label = NULL;
		char *c_iso, *s_iso, *e_iso;

		json_array_foreach(accounts, j, a)
			if (strcmp(json_string_value(json_object_get(a,
				   "channel")), rch) == 0 &&
			    strcmp(json_string_value(json_object_get(a,
				   "accountId")), racc) == 0)
				label = json_string_value(json_object_get(a,
							  "channelLabel"));
		if (!label)
			continue;	/* account no longer uses pairing */
		json_object_foreach(json_object_get(row, "meta"), mk, mv)
			if (json_is_string(mv) && json_string_length(mv) &&
			    strcmp(mk, "accountId") != 0 &&
			    strcmp(mk, "senderId") != 0)
				json_object_set(meta, mk, mv);
		c_iso = rpc_channels_iso(created);
		s_iso = rpc_channels_iso(seen);
		e_iso = rpc_channels_iso(created + RPC_CHANNELS_PAIR_TTL_MS);
		r = json_pack("{s:O,s:O,s:s,s:O,s:O,s:s,s:s,s:s,s:s,s:b}",
			"requestId", json_object_get(row, "requestId"),
			"channel", json_object_get(row, "channel"),
			"channelLabel", label,
			"accountId", json_object_get(row, "account"),
			"senderId", json_object_get(row, "senderId"),
			"senderLabel", "IRC id (nick!user@host)",
			"createdAt", c_iso, "lastSeenAt", s_iso,
			"expiresAt", e_iso, "notifySupported", 1);
		if (json_object_size(meta))
			json_object_set_new(r, "metadata", meta);
		else
			json_decref(meta);
		json_array_append_new(reqs, r);
		free(c_iso);
		free(s_iso);
		free(e_iso);
	}
	json_decref(rows);
	call->payload = json_pack("{s:o,s:o,s:b,s:{s:i,s:I}}",
		"accounts", accounts, "requests", reqs,
		"commandOwnerConfigured", rpc_channels_owner_configured(call),
		"limits", "pendingPerAccount", RPC_CHANNELS_PAIR_CAP, "ttlMs",
		(json_int_t)RPC_CHANNELS_PAIR_TTL_MS);
	return GW_OK;
}

static int rpc_channels_pair_resolve(struct rpc_call *call, int approve)
{
	static const struct rpc_channels_prop pa[] = {
		{"channel", 's', 1}, {"accountId", 's', 1},
		{"requestId", 's', 1}, {"notify", 'b', 0},
		{"bootstrapCommandOwner", 'b', 0},
	};
	const char *ch, *acc, *rid, *sender;
	json_t *accounts, *req = NULL;
	const char *notification = "not-requested";
	const char *owner = "not-requested";
	int rc;

	if (rpc_channels_check(call, pa, approve ? ARRAY_SIZE(pa) : 3))
		return GW_EINVAL;
	ch = rpc_channels_str(call, "channel");
	acc = rpc_channels_str(call, "accountId");
	rid = rpc_channels_str(call, "requestId");
	if (!rpc_channels_need(call))
		return GW_EUNAVAIL;
	accounts = channels_pairing_accounts(channels_global(), ch, acc);
	if (json_array_size(accounts) != 1) {
		json_decref(accounts);
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "channel account does not use DM pairing: "
			       "%s:%s", ch, acc);
		return GW_EINVAL;
	}
	json_decref(accounts);
	rc = store_channels_pair_resolve(channels_store(channels_global()),
					 ch, acc, rid,
					 approve, util_now_ms(),
					 RPC_CHANNELS_PAIR_TTL_MS, &req);
	if (rc == GW_ENOTFOUND) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "pending DM access request no longer exists");
		return rc;
	}
	if (rc != GW_OK) {
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "cannot update the pairing store");
		return rc;
	}
	sender = json_string_value(json_object_get(req, "senderId"));
	log_info("channels", "%s %s:%s %s", call->method, ch, acc, sender);
	if (approve && json_is_true(json_object_get(call->params, "notify"))) {
		const char *nick = json_string_value(json_object_get(
			json_object_get(req, "meta"), "nick"));
		json_t *res = NULL;
		char *err = NULL;

		notification = "failed";
		if (nick && channels_global() &&
		    channels_send(channels_global(), ch, acc, nick,
				  "OpenClaw: your access has been approved. "
				  "You can now send messages.", &res, &err)
		    == GW_OK)
			notification = "sent";
		json_decref(res);
		free(err);
	}
	if (approve && json_is_true(json_object_get(call->params,
						    "bootstrapCommandOwner")))
		owner = rpc_channels_owner_configured(call) ?
			"already-configured" :
			rpc_channels_bootstrap_owner(call, ch, sender);
	if (approve)
		call->payload = json_pack("{s:s,s:s,s:s,s:s}", "requestId",
					  rid, "senderId", sender,
					  "notification", notification,
					  "commandOwnerBootstrap", owner);
	else
		call->payload = json_pack("{s:s,s:s}", "requestId", rid,
					  "senderId", sender);
	json_decref(req);
	return GW_OK;
}

static int rpc_channels_pairing_approve(struct rpc_call *call)
{
	return rpc_channels_pair_resolve(call, 1);
}

static int rpc_channels_pairing_dismiss(struct rpc_call *call)
{
	return rpc_channels_pair_resolve(call, 0);
}

static int rpc_channels_send(struct rpc_call *call)
{
	static const struct rpc_channels_prop p[] = {
		{"to", 's', 1}, {"message", 'S', 0}, {"mediaUrl", 'S', 0},
		{"mediaUrls", '*', 0}, {"buffer", 'S', 0},
		{"filename", 'S', 0}, {"contentType", 'S', 0},
		{"asVoice", 'b', 0}, {"gifPlayback", 'b', 0},
		{"channel", 'S', 0}, {"accountId", 'S', 0},
		{"agentId", 'S', 0}, {"replyToId", 'S', 0},
		{"threadId", 'S', 0}, {"forceDocument", 'b', 0},
		{"silent", 'b', 0}, {"parseMode", 'S', 0},
		{"sessionKey", 'S', 0}, {"idempotencyKey", 's', 1},
	};
	struct channels *c;
	const char *ch, *msg;
	json_t *res = NULL;
	char *err = NULL;
	int rc;

	if (rpc_channels_check(call, p, ARRAY_SIZE(p)))
		return GW_EINVAL;
	if (!(c = rpc_channels_need(call)))
		return GW_EUNAVAIL;
	ch = rpc_channels_str(call, "channel");
	msg = rpc_channels_str(call, "message");
	if (!ch)
		ch = "irc";	/* the only channel with an adapter */
	if (!msg) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid send params: message is required "
			       "(media is not supported on %s)", ch);
		return GW_EINVAL;
	}
	if (strlen(msg) > RPC_CHANNELS_TEXT_MAX) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "message too long (max %d bytes)",
			       RPC_CHANNELS_TEXT_MAX);
		return GW_EINVAL;
	}
	rc = channels_send(c, ch, rpc_channels_str(call, "accountId"),
			   rpc_channels_str(call, "to"), msg, &res, &err);
	if (rc != GW_OK)
		return rpc_channels_fail(call, rc, err);
	json_object_set_new(res, "runId", json_string(
		rpc_channels_str(call, "idempotencyKey")));
	call->payload = res;
	return GW_OK;
}

const struct rpc_method rpc_channels_methods[] = {
	{"channels.status", rpc_channels_status, "operator.read",
	 RPC_F_WORKER, "channel accounts and their connection state"},
	{"channels.start", rpc_channels_start, "operator.admin",
	 RPC_F_WORKER, "start a channel account"},
	{"channels.stop", rpc_channels_stop, "operator.admin", RPC_F_WORKER,
	 "stop a channel account (stays stopped across reloads)"},
	{"channels.logout", rpc_channels_logout, "operator.admin",
	 RPC_F_WORKER, "stop a channel account and clear its login"},
	{"channels.pairing.list", rpc_channels_pairing_list,
	 "operator.pairing", RPC_F_WORKER, "pending DM access requests"},
	{"channels.pairing.approve", rpc_channels_pairing_approve,
	 "operator.pairing", RPC_F_WORKER, "approve a DM access request"},
	{"channels.pairing.dismiss", rpc_channels_pairing_dismiss,
	 "operator.pairing", RPC_F_WORKER, "dismiss a DM access request"},
	{"send", rpc_channels_send, "operator.write", RPC_F_WORKER,
	 "send a message through a channel"},
};
const size_t rpc_channels_methods_count = ARRAY_SIZE(rpc_channels_methods);
