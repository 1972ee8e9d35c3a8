/* `clawgate devices list|approve|reject|remove|rotate|revoke`: the
 * device.pair.* and device.token.* methods over a signed connect (the
 * CLI's own device identity, cli-identity.c), output as `openclaw
 * devices`. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "auth/device.h"
#include "auth/identity.h"
#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"

#define A(f) offsetof(struct cli_args, f)
#define CLI_DEV_TIMEOUT_MS 10000

const struct cli_opt cli_devices_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 10000)"),
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_devices_approve_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 10000)"),
	{"latest", CLI_OPT_FLAG, A(latest), NULL,
	 "preview the newest pending request"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_devices_token_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 10000)"),
	{"device", CLI_OPT_STR, A(device), "ID", "device id"},
	{"role", CLI_OPT_STR, A(role), "ROLE", "role (operator, node)"},
	{"scope", CLI_OPT_STR, A(scope), "SCOPE",
	 "scopes of the new token (comma-separated or several words)"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_devices_clear_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 10000)"),
	{"yes", CLI_OPT_FLAG, A(yes), NULL, "really remove them all"},
	{"pending", CLI_OPT_FLAG, A(pending), NULL,
	 "also reject every pending request"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_devices_rename_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 10000)"),
	{"device", CLI_OPT_STR, A(device), "ID", "device id"},
	{"name", CLI_OPT_STR, A(name), "LABEL",
	 "operator label (1..64 characters)"},
	{NULL, 0, 0, NULL, NULL},
};

static const char *const cli_dev_scopes[] = {
	"operator.admin", "operator.pairing", NULL,
};

static void cli_dev_fail(const struct cli_args *a, const char *what,
			 const struct gwclient_err *e)
{
	json_t *o;

	if (a->json) {
		o = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "type",
			      e->kind == GWC_ERR_RPC ?
			      "gateway_request_error" :
			      "gateway_transport_error", "message",
			      e->message ? e->message : "failed");
		if (e->error) {
			json_t *er = json_object_get(o, "error");

			json_object_update_missing(er, e->error);
		}
		cli_json_print(stdout, o);
		json_decref(o);
		return;
	}
	fprintf(stderr, "%s failed: %s\n", what,
		e->message ? e->message : "error");
	if (e->error && json_object_get(e->error, "details")) {
		char *d = json_dumps(json_object_get(e->error, "details"),
				     JSON_COMPACT);

		fprintf(stderr, "Details: %s\n", d ? d : "");
		free(d);
	}
}

/* Connect (signed). 0, or 1 with the failure printed, or 2 (usage). */
static int cli_dev_open(struct cli_args *a, const char *what,
			struct cli_session *d)
{
	struct gwclient_err e = {0};
	int r = cli_session_open(a, cli_dev_scopes, CLI_DEV_TIMEOUT_MS,
				 600000, d, &e);

	if (r == 1 && d->ci.id)
		cli_dev_fail(a, what, &e);
	gwclient_err_free(&e);
	return r;
}

/* Connect, call method, close. 0, 1 (printed) or 2 (usage). */
static int cli_dev_call(struct cli_args *a, const char *what,
			const char *method, const json_t *params,
			json_t **payload)
{
	struct cli_session d;
	struct gwclient_err e = {0};
	int r;

	r = cli_dev_open(a, what, &d);
	if (r == 0 && gwclient_request(d.c, method, params, d.timeout, 0,
				       payload, &e) != 0) {
		cli_dev_fail(a, what, &e);
		r = 1;
	}
	gwclient_err_free(&e);
	cli_session_close(&d);
	return r;
}

static const char *cli_dev_s(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static void cli_dev_print_list(const json_t *p)
{
	const json_t *pend = json_object_get(p, "pending");
	const json_t *paired = json_object_get(p, "paired");
	json_t *v;
	size_t i;
	char *sc;

	if (!json_array_size(pend) && !json_array_size(paired)) {
		printf("No device pairing entries.\n");
		return;
	}
	printf("Pending (%zu)\n", json_array_size(pend));
	json_array_foreach(pend, i, v) {
		sc = device_scopes_join(json_object_get(v, "scopes"));
		printf("  %s  device %.16s  %s/%s  role %s  scopes %s  "
		       "reason %s  ip %s\n", cli_dev_s(v, "requestId"),
		       cli_dev_s(v, "deviceId"), cli_dev_s(v, "clientId"),
		       cli_dev_s(v, "platform"), cli_dev_s(v, "role"),
		       *sc ? sc : "-", cli_dev_s(v, "reason"),
		       cli_dev_s(v, "remoteIp"));
		free(sc);
	}
	printf("Paired (%zu)\n", json_array_size(paired));
	json_array_foreach(paired, i, v) {
		char *roles = device_scopes_join(json_object_get(v, "roles"));

		sc = device_scopes_join(json_object_get(v, "scopes"));
		printf("  %s  %s/%s  roles %s  scopes %s\n",
		       cli_dev_s(v, "deviceId"), cli_dev_s(v, "clientId"),
		       cli_dev_s(v, "platform"), roles, *sc ? sc : "-");
		free(sc);
		free(roles);
	}
}

int cli_devices_list(struct cli_args *a)
{
	json_t *params = json_object(), *payload = NULL;
	int r = cli_dev_call(a, "Device list", "device.pair.list", params,
			     &payload);

	if (r == 0) {
		if (a->json)
			cli_json_print(stdout, payload);
		else
			cli_dev_print_list(payload);
	}
	json_decref(payload);
	json_decref(params);
	return r;
}

/* The newest pending request of a list payload (borrowed) or NULL. */
static const json_t *cli_dev_newest(const json_t *list)
{
	const json_t *best = NULL;
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(list, "pending"), i, v)
		if (!best || json_integer_value(json_object_get(v, "ts")) >
			     json_integer_value(json_object_get(best, "ts")))
			best = v;
	return best;
}

int cli_devices_approve(struct cli_args *a)
{
	json_t *params = NULL, *payload = NULL;
	const json_t *nw;
	int r;

	if (a->npos == 0 || a->latest) {
		/* As upstream: without an id only preview, exit 1. */
		params = json_object();
		r = cli_dev_call(a, "Device approve", "device.pair.list",
				 params, &payload);
		if (r != 0)
			goto out;
		nw = cli_dev_newest(payload);
		if (a->json) {
			json_t *o = json_pack("{s:b,s:O?}", "ok", 0, "pending",
					      (json_t *)nw);

			cli_json_print(stdout, o);
			json_decref(o);
		} else if (!nw) {
			printf("No pending device pairing requests.\n");
		} else {
			char *sc = device_scopes_join(json_object_get(nw, "scopes"));

			printf("Newest pending request: %s\n"
			       "  device %s  client %s  role %s  scopes %s  "
			       "ip %s\n"
			       "Approve it with: clawgate devices approve %s\n",
			       cli_dev_s(nw, "requestId"),
			       cli_dev_s(nw, "deviceId"),
			       cli_dev_s(nw, "clientId"), cli_dev_s(nw, "role"),
			       *sc ? sc : "-", cli_dev_s(nw, "remoteIp"),
			       cli_dev_s(nw, "requestId"));
			free(sc);
		}
		r = 1;
		goto out;
	}
	params = json_pack("{s:s}", "requestId", a->pos[0]);
	r = cli_dev_call(a, "Device approve", "device.pair.approve", params,
			 &payload);
	if (r == 0) {
		if (a->json)
			cli_json_print(stdout, payload);
		else
			printf("Approved %s (request %s)\n",
			       cli_dev_s(json_object_get(payload, "device"),
					 "deviceId"), a->pos[0]);
	}
out:
	json_decref(params);
	json_decref(payload);
	return r;
}

/* reject/remove: one positional id. */
static int cli_dev_one(struct cli_args *a, const char *what,
		       const char *method, const char *key, const char *verb)
{
	json_t *params, *payload = NULL;
	int r;

	if (a->npos < 1) {
		fprintf(stderr, "%s: missing <%s>\n", what, key);
		return 2;
	}
	params = json_pack("{s:s}", key, a->pos[0]);
	r = cli_dev_call(a, what, method, params, &payload);
	if (r == 0) {
		if (a->json)
			cli_json_print(stdout, payload);
		else
			printf("%s %s\n", verb, a->pos[0]);
	}
	json_decref(params);
	json_decref(payload);
	return r;
}

int cli_devices_reject(struct cli_args *a)
{
	return cli_dev_one(a, "Device reject", "device.pair.reject",
			   "requestId", "Rejected");
}

int cli_devices_remove(struct cli_args *a)
{
	return cli_dev_one(a, "Device remove", "device.pair.remove",
			   "deviceId", "Removed");
}

static int cli_dev_need_target(const struct cli_args *a, const char *what)
{
	if (a->device && a->role)
		return 0;
	fprintf(stderr, "%s: --device <id> and --role <role> are required\n",
		what);
	return 2;
}

int cli_devices_rotate(struct cli_args *a)
{
	json_t *params, *payload = NULL, *sc;
	char *copy, *p, *save = NULL;
	int i, r;

	if (cli_dev_need_target(a, "Device rotate"))
		return 2;
	params = json_pack("{s:s,s:s}", "deviceId", a->device, "role",
			   a->role);
	if (a->scope) {
		sc = json_array();
		copy = xstrdup(a->scope);
		for (p = strtok_r(copy, ", ", &save); p;
		     p = strtok_r(NULL, ", ", &save))
			json_array_append_new(sc, json_string(p));
		free(copy);
		for (i = 0; i < a->npos; i++)
			json_array_append_new(sc, json_string(a->pos[i]));
		json_object_set_new(params, "scopes", sc);
	} else if (a->npos > 0) {
		fprintf(stderr, "Device rotate: unexpected argument %s\n",
			a->pos[0]);
		json_decref(params);
		return 2;
	}
	r = cli_dev_call(a, "Device rotate", "device.token.rotate", params,
			 &payload);
	if (r == 0) {
		if (a->json)
			cli_json_print(stdout, payload);
		else if (json_is_string(json_object_get(payload, "token")))
			printf("Rotated the %s token of %s\nToken: %s\n",
			       a->role, a->device, cli_dev_s(payload, "token"));
		else
			printf("Rotated the %s token of %s\nToken: withheld "
			       "(only the device itself receives it)\n",
			       a->role, a->device);
	}
	json_decref(params);
	json_decref(payload);
	return r;
}

int cli_devices_revoke(struct cli_args *a)
{
	json_t *params, *payload = NULL;
	int r;

	if (cli_dev_need_target(a, "Device revoke"))
		return 2;
	params = json_pack("{s:s,s:s}", "deviceId", a->device, "role",
			   a->role);
	r = cli_dev_call(a, "Device revoke", "device.token.revoke", params,
			 &payload);
	if (r == 0) {
		if (a->json)
			cli_json_print(stdout, payload);
		else
			printf("Revoked the %s token of %s\n", a->role,
			       a->device);
	}
	json_decref(params);
	json_decref(payload);
	return r;
}

/* clear --yes [--pending]: remove every paired device (and reject every
 * pending request), over one connection. */
int cli_devices_clear(struct cli_args *a)
{
	struct cli_session d;
	struct gwclient_err e = {0};
	json_t *list = NULL, *p = NULL, *params, *v, *removed, *rejected;
	json_t *out;
	const char *id, *self;
	size_t i;
	int r, self_paired = 0;

	if (!a->yes) {
		fprintf(stderr, "Device clear removes every paired device%s; "
			"re-run with --yes.\n", a->pending
			? " and rejects every pending request" : "");
		return 2;
	}
	r = cli_dev_open(a, "Device clear", &d);
	if (r)
		return r;
	removed = json_array();
	rejected = json_array();
	if (gwclient_request(d.c, "device.pair.list", NULL, d.timeout, 0,
			     &list, &e) != 0)
		goto fail;
	/* This CLI's own device goes last: removing it closes this
	 * connection, which then is the expected answer. */
	self = d.ci.id ? d.ci.id->device_id : "";
	json_array_foreach(json_object_get(list, "paired"), i, v) {
		id = json_string_value(json_object_get(v, "deviceId"));
		if (!id)
			continue;
		if (strcmp(id, self) == 0) {
			self_paired = 1;
			continue;
		}
		params = json_pack("{s:s}", "deviceId", id);
		r = gwclient_request(d.c, "device.pair.remove", params,
				     d.timeout, 0, &p, &e);
		json_decref(params);
		json_decref(p);
		p = NULL;
		if (r)
			goto fail;
		json_array_append_new(removed, json_string(id));
	}
	json_array_foreach(a->pending ? json_object_get(list, "pending")
				      : NULL, i, v) {
		id = json_string_value(json_object_get(v, "requestId"));
		if (!id)
			continue;
		params = json_pack("{s:s}", "requestId", id);
		r = gwclient_request(d.c, "device.pair.reject", params,
				     d.timeout, 0, &p, &e);
		json_decref(params);
		json_decref(p);
		p = NULL;
		if (r)
			goto fail;
		json_array_append_new(rejected, json_string(id));
	}
	if (self_paired) {
		params = json_pack("{s:s}", "deviceId", self);
		r = gwclient_request(d.c, "device.pair.remove", params,
				     d.timeout, 0, &p, &e);
		json_decref(params);
		json_decref(p);
		p = NULL;
		if (r && e.kind != GWC_ERR_CLOSED)
			goto fail;
		json_array_append_new(removed, json_string(self));
	}
	if (a->json) {
		out = json_pack("{s:b,s:O,s:O}", "ok", 1, "removed", removed,
				"rejected", rejected);
		cli_json_print(stdout, out);
		json_decref(out);
	} else {
		printf("Removed %zu paired device%s", json_array_size(removed),
		       json_array_size(removed) == 1 ? "" : "s");
		if (a->pending)
			printf(", rejected %zu pending request%s",
			       json_array_size(rejected),
			       json_array_size(rejected) == 1 ? "" : "s");
		printf(".\n");
	}
	r = 0;
	goto out;
fail:
	cli_dev_fail(a, "Device clear", &e);
	r = 1;
out:
	gwclient_err_free(&e);
	json_decref(list);
	json_decref(removed);
	json_decref(rejected);
	cli_session_close(&d);
	return r;
}

/* rename --device <id> --name <label>: the operator label of a paired
 * device (device.pair.rename {deviceId, label}; 1..64 characters). */
int cli_devices_rename(struct cli_args *a)
{
	json_t *params, *payload = NULL;
	char *label;
	size_t n;
	int r;

	if (!a->device || !a->name) {
		fprintf(stderr, "Device rename: --device <id> and --name "
			"<label> are required\n");
		return 2;
	}
	label = xstrdup(a->name);
	while (*label == ' ')
		memmove(label, label + 1, strlen(label));
	n = strlen(label);
	while (n && label[n - 1] == ' ')
		label[--n] = '\0';
	if (n == 0 || n > 64) {
		fprintf(stderr, "Device rename: --name must be 1 to 64 "
			"characters\n");
		free(label);
		return 2;
	}
	params = json_pack("{s:s,s:s}", "deviceId", a->device, "label",
			   label);
	r = cli_dev_call(a, "Device rename", "device.pair.rename", params,
			 &payload);
	if (r == 0) {
		if (a->json)
			cli_json_print(stdout, payload);
		else
			printf("Renamed %s to \"%s\"\n", a->device, label);
	}
	json_decref(params);
	json_decref(payload);
	free(label);
	return r;
}
