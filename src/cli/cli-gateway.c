/* `clawgate gateway run|call|health|status|probe`: the foreground daemon
 * and the client commands, with the outputs of the real `openclaw gateway`
 * CLI (reference/peer-cli-outputs.txt). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "rpc/rpc.h"
#include "core/log.h"
#include "core/util.h"
#include "daemon.h"

#define A(f) offsetof(struct cli_args, f)
#define CLI_GW_DEFAULT_TIMEOUT_MS 10000
#define CLI_GW_PROBE_TIMEOUT_MS 3000
#define CLI_GW_MAX_TIMEOUT_MS (24 * 60 * 60 * 1000)
#define CLI_GW_FIRST_LINE_MAX 4096
#define CLI_GW_SERVICE_FILE_MAX (64 * 1024)

const struct cli_opt cli_gateway_run_opts[] = {
	{"port", CLI_OPT_STR, A(port), "PORT", "port for WebSocket + HTTP"},
	{"bind", CLI_OPT_STR, A(bind), "MODE",
	 "loopback | lan | custom | auto | tailnet"},
	{"auth", CLI_OPT_STR, A(auth), "MODE",
	 "none | token | password | trusted-proxy"},
	{"token", CLI_OPT_STR, A(token), "TOKEN", "shared gateway token"},
	{"password", CLI_OPT_STR, A(password), "PASSWORD",
	 "shared gateway password"},
	{"password-file", CLI_OPT_STR, A(password_file), "PATH",
	 "read the password from the first line of PATH"},
	{"allow-unconfigured", CLI_OPT_FLAG, A(allow_unconfigured), NULL,
	 "start even when gateway.mode is not local"},
	{"verbose", CLI_OPT_FLAG, A(verbose), NULL, "debug logging"},
	{"force", CLI_OPT_FLAG, A(force), NULL,
	 "not supported (clawgate never kills processes)"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_gateway_call_opts[] = {
	{"params", CLI_OPT_STR, A(params), "JSON",
	 "request params as JSON (default {})"},
	CLI_CLIENT_OPTS("request timeout in ms (default 10000)"),
	{"expect-final", CLI_OPT_FLAG, A(expect_final), NULL,
	 "wait for the final answer of a two-phase method (agent)"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_gateway_health_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 10000)"),
	{NULL, 0, 0, NULL, NULL},
};

/* --- small helpers ------------------------------------------------------ */

char *cli_gateway_read_first_line(const char *path)
{
	char *buf, *nl;
	size_t n;

	buf = cli_read_prefix(path, CLI_GW_FIRST_LINE_MAX, &n);
	if (!buf)
		return NULL;
	nl = memchr(buf, '\n', n);
	if (!nl && n == CLI_GW_FIRST_LINE_MAX) {
		xfree_secret(buf);
		errno = EFBIG;
		return NULL;
	}
	if (nl)
		*nl = '\0';
	n = strlen(buf);
	if (n && buf[n - 1] == '\r')
		buf[n - 1] = '\0';
	return buf;
}

static void cli_gateway_print_json(const json_t *j)
{
	cli_json_print(stdout, j);
}

/* Parse --timeout (ms) or use def. -1 when invalid. */
int cli_gateway_timeout(const struct cli_args *a, int def)
{
	char *end;
	long v;

	if (!a->timeout)
		return def;
	errno = 0;
	v = strtol(a->timeout, &end, 10);
	if (errno || *end || end == a->timeout || v < 1 ||
	    v > CLI_GW_MAX_TIMEOUT_MS) {
		fprintf(stderr, "clawgate: invalid --timeout: %s (expected "
			"milliseconds)\n", a->timeout);
		return -1;
	}
	return (int)v;
}

/* The scope `gateway call` asks for: the gateway's own method -> scope
 * table (the published map); node-role methods ask for admin (an operator
 * cannot call them anyway). */
const char *cli_gateway_method_scope(const char *method)
{
	const char *s = rpc_method_scope(method);

	return strncmp(s, "operator.", 9) == 0 ? s : "operator.admin";
}

static int cli_gateway_has_scope(const json_t *scopes, const char *s)
{
	const json_t *v;
	size_t i;

	json_array_foreach(scopes, i, v) {
		if (json_string_value(v) &&
		    strcmp(json_string_value(v), s) == 0)
			return 1;
	}
	return 0;
}

const char *cli_gateway_capability(const json_t *hello, const json_t *error)
{
	const json_t *scopes;
	const char *code, *dcode;

	if (error) {
		code = json_string_value(json_object_get(error, "code"));
		dcode = json_string_value(json_object_get(
			json_object_get(error, "details"), "code"));
		/* Not DEVICE_IDENTITY_REQUIRED: nothing is pending then. */
		if ((code && strcmp(code, "NOT_PAIRED") == 0 &&
		     !(dcode && strcmp(dcode, "DEVICE_IDENTITY_REQUIRED") ==
		       0)) ||
		    (dcode && strcmp(dcode, "PAIRING_REQUIRED") == 0))
			return "pairing-pending";
		return NULL;
	}
	if (!hello)
		return NULL;
	scopes = json_object_get(json_object_get(hello, "auth"), "scopes");
	if (cli_gateway_has_scope(scopes, "operator.admin"))
		return "admin-capable";
	if (cli_gateway_has_scope(scopes, "operator.write"))
		return "write-capable";
	if (cli_gateway_has_scope(scopes, "operator.read"))
		return "read-only";
	return "connect-only";
}

/* --- connecting and reporting failures ---------------------------------- */

/* Connect as `as`. Except in probe mode (probes create no identity, as
 * upstream) the connect is signed with the CLI's device identity from
 * state_dir, so a remote gateway that requires pairing can pair it; a
 * device token it receives is kept for the next connects. */
int cli_gateway_connect(const struct cli_target *t,
			const struct cli_gateway_as *as,
			const char *state_dir, int timeout_ms,
			struct gwclient **c, json_t **hello,
			struct gwclient_err *e)
{
	const char *scopes[] = {as->scope, NULL};
	struct cli_identity ci;
	int signed_ = 0, r;
	struct gwclient_opts o = {
		.url = t->url,
		.token = t->token,
		.password = t->token ? NULL : t->password,
		.client_id = as->client_id,
		.client_mode = as->mode,
		.client_version = as->version,
		.display_name = as->display_name,
		.scopes = scopes,
		.min_protocol = as->min_protocol,
		.max_protocol = 4,
		.timeout_ms = timeout_ms,
	};

	if (state_dir && strcmp(as->mode, "probe") != 0 &&
	    cli_identity_open(state_dir, &ci) == 0) {
		o.sign = cli_identity_sign;
		o.sign_arg = &ci;
		signed_ = 1;
	}
	r = gwclient_connect(&o, c, hello, e);
	if (signed_) {
		if (r == 0 && hello)
			cli_identity_store_token(&ci, *hello);
		cli_identity_close(&ci);
	}
	return r;
}

/* The one-line text of a failure, as the real CLI words it. New string. */
char *cli_gateway_err_text(const struct cli_target *t,
			   const struct gwclient_err *e)
{
	if (e->kind == GWC_ERR_CONNECT && e->sys[0])
		return xasprintf("Gateway not reachable at %s (%s).", t->url,
				 e->sys);
	if (e->kind == GWC_ERR_RPC && e->close_code && e->message)
		return xstrdup(e->message);
	return xstrdup(e->message ? e->message : "gateway request failed");
}

static json_t *cli_gateway_err_json(const struct cli_target *t,
				    const struct gwclient_err *e)
{
	json_t *err, *out;
	char *text = cli_gateway_err_text(t, e);
	const char *k;
	json_t *v;

	if (e->kind == GWC_ERR_RPC) {
		err = json_pack("{s:s}", "type", "gateway_request_error");
		json_object_foreach(e->error, k, v)
			json_object_set(err, k, v);
		if (!json_object_get(err, "message"))
			json_object_set_new(err, "message", json_string(text));
	} else {
		err = json_pack("{s:s,s:s,s:s,s:s}", "type",
				"gateway_transport_error", "kind",
				e->kind == GWC_ERR_TIMEOUT ? "timeout"
							   : "closed",
				"message", text, "reason",
				e->message ? e->message : "");
		if (e->close_code)
			json_object_set_new(err, "close",
					    json_pack("{s:i,s:s}", "code",
						      e->close_code, "reason",
						      e->close_reason));
	}
	out = json_pack("{s:b,s:o,s:{s:s,s:s}}", "ok", 0, "error", err,
			"gateway", "url", t->url, "urlSource", t->url_source);
	free(text);
	return out;
}

/* Report a failed connect or request, on stdout as JSON or on stderr. */
static void cli_gateway_fail(const char *what, const struct cli_target *t,
			     const struct cli_local *l,
			     const struct gwclient_err *e, int json)
{
	json_t *j;
	char *text, *d;

	if (json) {
		j = cli_gateway_err_json(t, e);
		cli_gateway_print_json(j);
		json_decref(j);
		return;
	}
	text = cli_gateway_err_text(t, e);
	if (e->kind == GWC_ERR_CONNECT && e->sys[0]) {
		fprintf(stderr, "%s\nStart it with `clawgate gateway run` or "
			"check `clawgate gateway status`.\n", text);
	} else {
		fprintf(stderr, "%s failed: %s\n", what, text);
		if (e->error && json_object_get(e->error, "details")) {
			d = json_dumps(json_object_get(e->error, "details"),
				       JSON_COMPACT);
			fprintf(stderr, "Details: %s\n", d ? d : "");
			free(d);
		}
		if (e->kind == GWC_ERR_RPC && e->close_code &&
		    e->close_reason && strcmp(e->close_reason, text) != 0)
			fprintf(stderr, "Gateway closed (%d): %s\n",
				e->close_code, e->close_reason);
	}
	/* Where we tried, unless the gateway itself answered. */
	if (e->kind != GWC_ERR_RPC)
		fprintf(stderr, "Gateway target: %s\nSource: %s\n"
			"Config: %s\n", t->url, t->url_source,
			l->config_path);
	free(text);
}

/* --- gateway run -------------------------------------------------------- */

static const char *const cli_gateway_binds[] = {
	"loopback", "lan", "custom", "auto", "tailnet", NULL,
};
static const char *const cli_gateway_auths[] = {
	"none", "token", "password", "trusted-proxy", NULL,
};

static int cli_gateway_one_of(const char *v, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(v, *set) == 0)
			return 1;
	return 0;
}

int cli_gateway_run(struct cli_args *a)
{
	struct daemon_opts o;
	char *pw = NULL;
	int r;

	memset(&o, 0, sizeof(o));
	if (a->force) {
		fprintf(stderr, "clawgate gateway run: --force is not "
			"supported: clawgate never kills other processes; "
			"stop the other gateway first.\n");
		return 2;
	}
	if (a->port) {
		o.ov.port = util_parse_port(a->port);
		if (o.ov.port < 0) {
			fprintf(stderr, "clawgate gateway run: invalid --port: "
				"%s\n", a->port);
			return 2;
		}
	}
	if (a->bind && !cli_gateway_one_of(a->bind, cli_gateway_binds)) {
		fprintf(stderr, "clawgate gateway run: invalid --bind: %s "
			"(loopback|lan|custom|auto|tailnet)\n", a->bind);
		return 2;
	}
	if (a->auth && !cli_gateway_one_of(a->auth, cli_gateway_auths)) {
		fprintf(stderr, "clawgate gateway run: invalid --auth: %s "
			"(none|token|password|trusted-proxy)\n", a->auth);
		return 2;
	}
	if (a->password && a->password_file) {
		fprintf(stderr, "clawgate gateway run: use either --password "
			"or --password-file\n");
		return 2;
	}
	if (a->password_file) {
		pw = cli_gateway_read_first_line(a->password_file);
		if (!pw || !*pw) {
			fprintf(stderr, "clawgate gateway run: cannot read "
				"--password-file %s: %s\n", a->password_file,
				pw ? "empty file" : strerror(errno));
			xfree_secret(pw);
			return 2;
		}
	}
	o.ov.profile = a->profile;
	o.ov.dev = a->dev;
	o.ov.bind = a->bind;
	o.ov.auth_mode = a->auth;
	o.ov.token = a->token;
	o.ov.password = pw ? pw : a->password;
	o.ov.allow_unconfigured = a->allow_unconfigured;
	o.verbose = a->verbose;
	log_set_console(1);
	r = daemon_run(&o);
	xfree_secret(pw);
	return r;
}

/* --- gateway call / health ---------------------------------------------- */

/* Connect with `as`, send one request, print failures. 0 or 1. */
static int cli_gateway_rpc(const char *what, struct cli_args *a,
			   const struct cli_gateway_as *as, const char *method,
			   const json_t *params, json_t **payload,
			   int64_t *elapsed_ms)
{
	struct cli_local l;
	struct cli_target t;
	struct gwclient *c = NULL;
	struct gwclient_err e = {0};
	json_t *hello = NULL;
	int64_t t0 = util_mono_ms();
	int timeout, r = 1;

	cli_target_local_load(a->profile, a->dev, &l);
	cli_target_resolve(a, &l, &t);
	timeout = cli_gateway_timeout(a, CLI_GW_DEFAULT_TIMEOUT_MS);
	if (timeout < 0) {
		r = 2;
		goto out;
	}
	if (cli_gateway_connect(&t, as, l.state_dir, timeout, &c, &hello,
				&e) ||
	    gwclient_request(c, method, params, timeout, a->expect_final,
			     payload, &e)) {
		cli_gateway_fail(what, &t, &l, &e, a->json);
		goto out;
	}
	*elapsed_ms = util_mono_ms() - t0;
	r = 0;
out:
	gwclient_close(c);
	gwclient_err_free(&e);
	json_decref(hello);
	cli_target_free(&t);
	cli_target_local_free(&l);
	return r;
}

int cli_gateway_call(struct cli_args *a)
{
	struct cli_gateway_as as = {"cli", "cli", PACKAGE_VERSION, NULL,
				    NULL, 4};
	json_t *params = NULL, *payload = NULL;
	json_error_t jerr;
	int64_t ms = 0;
	int r;

	if (a->npos < 1) {
		fprintf(stderr, "clawgate gateway call: missing <method>\n"
			"Usage: clawgate gateway call <method> [--params "
			"JSON] [options]\n");
		return 2;
	}
	params = json_loads(a->params ? a->params : "{}",
			    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!params) {
		fprintf(stderr, "clawgate gateway call: invalid --params JSON: "
			"%s\n", jerr.text);
		return 2;
	}
	as.scope = cli_gateway_method_scope(a->pos[0]);
	r = cli_gateway_rpc("Gateway call", a, &as, a->pos[0], params,
			    &payload, &ms);
	if (r == 0) {
		if (!a->json)
			printf("Gateway call: %s\n", a->pos[0]);
		cli_gateway_print_json(payload);
	}
	json_decref(payload);
	json_decref(params);
	return r;
}

int cli_gateway_health(struct cli_args *a)
{
	const struct cli_gateway_as as = {"cli", "cli", PACKAGE_VERSION, NULL,
					  "operator.read", 4};
	json_t *payload = NULL, *d;
	int64_t ms = 0;
	int r;

	r = cli_gateway_rpc("Gateway health", a, &as, "health", NULL,
			    &payload, &ms);
	if (r)
		return r;
	if (a->json) {
		cli_gateway_print_json(payload);
	} else {
		d = json_object_get(payload, "durationMs");
		if (json_is_number(d))
			ms = (int64_t)json_number_value(d);
		printf("Gateway Health\n%s (%lldms)\n",
		       json_is_false(json_object_get(payload, "ok")) ? "FAILED"
								     : "OK",
		       (long long)ms);
	}
	if (json_is_false(json_object_get(payload, "ok")))
		r = 1;
	json_decref(payload);
	return r;
}
