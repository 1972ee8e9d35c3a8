/* `clawgate gateway probe [--json]`: the explicit URL, the configured
 * remote (OPENCLAW_GATEWAY_URL), the local loopback gateway and the other
 * local gateways found through their state dirs' locks, each probed the
 * way the real CLI does (mode probe), with openclaw's JSON fields (ts,
 * durationMs, timeoutMs, warnings[], network, discovery, targets[]) and
 * its warning when several gateway identities answer. */
#include "config.h"

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

#define CLI_PROBE_TIMEOUT_MS 3000
#define CLI_PROBE_MAX_TARGETS 8

const struct cli_opt cli_gateway_probe_opts[] = {
	CLI_CLIENT_OPTS("per-target timeout in ms (default 3000)"),
	{NULL, 0, 0, NULL, NULL},
};

static const char cli_probe_multi_msg[] =
	"Unconventional setup: multiple reachable gateway identities "
	"detected. Usually one gateway per network is recommended unless you "
	"intentionally run isolated profiles, like a rescue bot (see docs: "
	"/gateway#multiple-gateways-same-host).";
static const char cli_probe_scope_msg[] =
	"Read-probe diagnostics are limited by gateway scopes (missing "
	"operator.read). Connection succeeded, but read-only status calls are "
	"incomplete. Hint: pair device identity or use credentials with "
	"operator.read.";

struct cli_probe_target {
	const char *id;		/* "explicit", "configRemote",
				 * "localLoopback", "localState:<dir>" */
	char *idbuf;
	const char *kind;
	const char *label;	/* "URL (explicit)", "Local loopback" */
	struct cli_target t;
	int ok;
	int64_t latency_ms;
	char *error;
	const char *capability;
	char *read;		/* "ok", "limited - missing scope: X",
				 * "failed" */
	char *identity;		/* gateway.identity.get deviceId, or NULL */
	json_t *hello;
};

/* The read probe: `status` with the probe connection's scopes; when it
 * works, the gateway's identity too. */
static void cli_probe_read(struct gwclient *c, int timeout,
			   struct cli_probe_target *pt)
{
	struct gwclient_err e = {0};
	json_t *payload = NULL;
	const char *code, *missing;

	if (gwclient_request(c, "status", NULL, timeout, 0, &payload,
			     &e) == 0) {
		pt->read = xstrdup("ok");
		json_decref(payload);
		payload = NULL;
		if (gwclient_request(c, "gateway.identity.get", NULL, timeout,
				     0, &payload, &e) == 0 &&
		    json_string_value(json_object_get(payload, "deviceId")))
			pt->identity = xstrdup(json_string_value(
				json_object_get(payload, "deviceId")));
		goto out;
	}
	code = json_string_value(json_object_get(e.error, "code"));
	missing = json_string_value(json_object_get(
		json_object_get(e.error, "details"), "missingScope"));
	if (e.kind == GWC_ERR_RPC && e.message &&
	    strncmp(e.message, "missing scope: ", 15) == 0 && !missing)
		missing = e.message + 15;
	if (missing && (!code || strcmp(code, "FORBIDDEN") == 0 ||
			strcmp(code, "INVALID_REQUEST") == 0))
		pt->read = xasprintf("limited - missing scope: %s", missing);
	else
		pt->read = xstrdup("failed");
out:
	json_decref(payload);
	gwclient_err_free(&e);
}

static void cli_probe_one(struct cli_probe_target *pt, int timeout)
{
	const struct cli_gateway_as as = {"cli", "probe", "dev", NULL,
					  "operator.read", 3};
	struct gwclient *c = NULL;
	struct gwclient_err e = {0};
	int64_t t0 = util_mono_ms();

	pt->ok = cli_gateway_connect(&pt->t, &as, NULL, timeout, &c,
				     &pt->hello, &e) == 0;
	pt->latency_ms = util_mono_ms() - t0;
	if (!pt->ok) {
		pt->error = cli_gateway_err_text(&pt->t, &e);
		pt->capability = cli_gateway_capability(NULL, e.error);
		pt->read = xstrdup("failed");
		goto out;
	}
	pt->capability = cli_gateway_capability(pt->hello, NULL);
	cli_probe_read(c, timeout, pt);
out:
	gwclient_close(c);
	gwclient_err_free(&e);
}

/* Identity of a reachable target: the gateway's device id when the read
 * probe could ask, else its bootId (one process, one bootId). */
static const char *cli_probe_identity(const struct cli_probe_target *pt)
{
	if (pt->identity)
		return pt->identity;
	return json_string_value(json_object_get(
		json_object_get(pt->hello, "server"), "bootId"));
}

/* openclaw's capability word: connect-only is
 * connected_no_operator_scope; dashes become underscores in JSON. */
static char *cli_probe_cap(const char *cap, int json)
{
	char *s, *p;

	if (!cap)
		return NULL;
	if (strcmp(cap, "connect-only") == 0)
		cap = "connected-no-operator-scope";
	s = xstrdup(cap);
	for (p = s; json && *p; p++)
		if (*p == '-')
			*p = '_';
	return s;
}

/* Other running gateways of this user: ~/.openclaw and ~/.openclaw-*
 * (and $OPENCLAW_STATE_DIR) whose lock is held. Adds targets. */
static int cli_probe_discover(const struct cli_args *a,
			      const struct cli_local *l,
			      struct cli_probe_target *pts, int n,
			      json_t *beacons)
{
	const char *home = getenv("HOME");
	DIR *d;
	struct dirent *de;
	json_t *lock;
	char *dir, *tok;
	int port, k;

	if (!home || !(d = opendir(home)))
		return n;
	while ((de = readdir(d)) && n < CLI_PROBE_MAX_TARGETS) {
		if (strcmp(de->d_name, ".openclaw") != 0 &&
		    strncmp(de->d_name, ".openclaw-", 10) != 0)
			continue;
		dir = xasprintf("%s/%s", home, de->d_name);
		lock = NULL;
		if (cli_lock_read(dir, &lock) != 1 ||
		    (port = (int)json_integer_value(json_object_get(
			     lock, "port"))) <= 0) {
			json_decref(lock);
			free(dir);
			continue;
		}
		json_array_append_new(beacons, json_pack(
			"{s:s,s:s,s:i,s:I}", "source", "state-dir", "stateDir",
			dir, "port", port, "pid",
			json_integer_value(json_object_get(lock, "pid"))));
		json_decref(lock);
		/* Already a target (the local loopback one)? */
		for (k = 0; k < n; k++)
			if (strstr(pts[k].t.url, ":") &&
			    atoi(strrchr(pts[k].t.url, ':') + 1) == port)
				break;
		if (k < n || strcmp(dir, l->state_dir) == 0) {
			free(dir);
			continue;
		}
		memset(&pts[n], 0, sizeof(pts[n]));
		pts[n].idbuf = xasprintf("localState:%s", de->d_name);
		pts[n].id = pts[n].idbuf;
		pts[n].kind = "localState";
		pts[n].label = "Local state dir";
		pts[n].t.url = xasprintf("ws://127.0.0.1:%d", port);
		pts[n].t.url_source = "local state dir";
		pts[n].t.local_default = 0;
		/* Same user, same host: that gateway's own kept token. */
		if (service_token_read(dir, &tok) == 1)
			pts[n].t.token = tok;
		else if (a->token)
			pts[n].t.token = xstrdup(a->token);
		n++;
		free(dir);
	}
	closedir(d);
	return n;
}

static json_t *cli_probe_target_json(const struct cli_probe_target *pt,
				     int active)
{
	const json_t *auth = json_object_get(pt->hello, "auth");
	char *cap = cli_probe_cap(pt->capability, 1);
	json_t *tj;

	tj = json_pack("{s:s,s:s,s:s,s:b,s:n,s:{s:b,s:b,s:b,s:I,s:s?,s:n}}",
		       "id", pt->id, "kind", pt->kind, "url", pt->t.url,
		       "active", active, "tunnel", "connect", "ok", pt->ok,
		       "rpcOk", pt->read && strcmp(pt->read, "ok") == 0,
		       "scopeLimited",
		       pt->read && strncmp(pt->read, "limited", 7) == 0,
		       "latencyMs", (json_int_t)pt->latency_ms, "error",
		       pt->error ? pt->error
		       : pt->read && strncmp(pt->read, "limited - ", 10) == 0
			       ? pt->read + 10
			       : NULL,
		       "close");
	json_object_set_new(tj, "auth", pt->ok ? json_pack(
		"{s:O?,s:O?,s:s?}", "role", json_object_get(auth, "role"),
		"scopes", json_object_get(auth, "scopes"), "capability", cap)
					       : json_null());
	json_object_set(tj, "server", json_object_get(pt->hello, "server")
					      ? json_object_get(pt->hello,
								"server")
					      : json_null());
	json_object_set_new(tj, "readProbe", json_string(pt->read));
	if (pt->identity)
		json_object_set_new(tj, "identity",
				    json_string(pt->identity));
	json_object_set_new(tj, "self", json_null());
	json_object_set_new(tj, "config", json_null());
	json_object_set_new(tj, "health", json_null());
	json_object_set_new(tj, "summary", json_null());
	json_object_set_new(tj, "presence", json_null());
	free(cap);
	return tj;
}

int cli_gateway_probe(struct cli_args *a)
{
	struct cli_probe_target pts[CLI_PROBE_MAX_TARGETS];
	struct cli_local l;
	json_t *out = NULL, *warnings = json_array(), *targets = json_array();
	json_t *beacons = json_array(), *limited = json_array(), *multi;
	const char *id0 = NULL, *idk;
	char *cap = NULL;
	int64_t t0 = util_mono_ms(), ts = util_now_ms();
	int n = 0, i, timeout, primary = -1, multiple = 0, r = 1;

	memset(pts, 0, sizeof(pts));
	cli_target_local_load(a->profile, a->dev, &l);
	timeout = cli_gateway_timeout(a, CLI_PROBE_TIMEOUT_MS);
	if (timeout < 0) {
		r = 2;
		goto out;
	}
	cli_target_resolve(a, &l, &pts[0].t);
	if (!pts[0].t.local_default) {
		pts[0].id = a->url ? "explicit" : "configRemote";
		pts[0].kind = pts[0].id;
		pts[0].label = a->url ? "URL (explicit)" : "Remote (env)";
		n = 1;
		cli_target_local(a, &l, &pts[1].t);
		if (strcmp(pts[1].t.url, pts[0].t.url) == 0)
			cli_target_free(&pts[1].t);
		else
			n = 2;
	} else {
		n = 1;
	}
	if (n == 2 || pts[0].t.local_default) {
		pts[n - 1].id = "localLoopback";
		pts[n - 1].kind = "localLoopback";
		pts[n - 1].label = "Local loopback";
	}
	n = cli_probe_discover(a, &l, pts, n, beacons);
	for (i = 0; i < n; i++) {
		cli_probe_one(&pts[i], timeout);
		if (pts[i].ok && primary < 0)
			primary = i;
	}
	/* One process answers with one identity on every socket. */
	for (i = 0; i < n; i++) {
		if (!pts[i].ok)
			continue;
		idk = cli_probe_identity(&pts[i]);
		if (!id0)
			id0 = idk;
		else if (!idk || strcmp(idk, id0) != 0)
			multiple = 1;
		if (pts[i].read && strncmp(pts[i].read, "limited", 7) == 0)
			json_array_append_new(limited,
					      json_string(pts[i].id));
	}
	r = primary >= 0 ? 0 : 1;
	if (multiple) {
		multi = json_array();
		for (i = 0; i < n; i++)
			if (pts[i].ok)
				json_array_append_new(multi,
						      json_string(pts[i].id));
		json_array_append_new(warnings, json_pack(
			"{s:s,s:s,s:o}", "code", "multiple_gateways",
			"message", cli_probe_multi_msg, "targetIds", multi));
	}
	if (json_array_size(limited))
		json_array_append_new(warnings, json_pack(
			"{s:s,s:s,s:O}", "code", "probe_scope_limited",
			"message", cli_probe_scope_msg, "targetIds", limited));
	cap = cli_probe_cap(primary >= 0 ? pts[primary].capability : NULL,
			    a->json);
	if (a->json) {
		char *loop = xasprintf("ws://127.0.0.1:%d", l.port);

		for (i = 0; i < n; i++)
			json_array_append_new(targets, cli_probe_target_json(
				&pts[i], i == primary));
		out = json_pack("{s:b,s:b,s:s?,s:I,s:I,s:i,s:s?,s:O,"
				"s:{s:s,s:n,s:n},s:{s:i,s:I,s:O},s:O}",
				"ok", primary >= 0, "degraded",
				primary >= 0 &&
					strcmp(pts[primary].read, "ok") != 0,
				"capability", cap, "ts", (json_int_t)ts,
				"durationMs",
				(json_int_t)(util_mono_ms() - t0),
				"timeoutMs", timeout, "primaryTargetId",
				primary >= 0 ? pts[primary].id : NULL,
				"warnings", warnings, "network",
				"localLoopbackUrl", loop, "localTailnetUrl",
				"tailnetIPv4", "discovery", "timeoutMs", 0,
				"count", (json_int_t)json_array_size(beacons),
				"beacons", beacons, "targets", targets);
		cli_json_print(stdout, out);
		free(loop);
		goto out;
	}
	printf("Gateway Status\nReachable: %s\n", primary >= 0 ? "yes" : "no");
	if (primary >= 0)
		printf("Capability: %s\n", cap);
	printf("Probe budget: %dms\n", timeout);
	if (json_array_size(warnings)) {
		printf("\nWarning:\n");
		if (multiple)
			printf("- %s\n", cli_probe_multi_msg);
		for (i = 0; i < (int)json_array_size(limited); i++)
			printf("- %s\n", cli_probe_scope_msg);
	}
	printf("\nDiscovery (this machine)\nFound %zu gateway%s via local "
	       "state dirs (~/.openclaw*).\n", json_array_size(beacons),
	       json_array_size(beacons) == 1 ? "" : "s");
	printf("\nTargets\n");
	for (i = 0; i < n; i++) {
		printf("%s %s\n", pts[i].label, pts[i].t.url);
		if (pts[i].ok)
			printf("  Connect: ok (%lldms) · Capability: %s · "
			       "Read probe: %s\n",
			       (long long)pts[i].latency_ms,
			       pts[i].capability, pts[i].read);
		else
			printf("  Connect: failed · %s%s%s\n", pts[i].error,
			       pts[i].capability ? " · Capability: " : "",
			       pts[i].capability ? pts[i].capability : "");
		printf("\n");
	}
out:
	for (i = 0; i < CLI_PROBE_MAX_TARGETS; i++) {
		cli_target_free(&pts[i].t);
		free(pts[i].error);
		free(pts[i].read);
		free(pts[i].identity);
		free(pts[i].idbuf);
		json_decref(pts[i].hello);
	}
	json_decref(out);
	json_decref(warnings);
	json_decref(targets);
	json_decref(beacons);
	json_decref(limited);
	free(cap);
	cli_target_local_free(&l);
	return r;
}
