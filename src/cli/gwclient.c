/* The OpenClaw gateway protocol as the `openclaw` CLI speaks it: wait for
 * connect.challenge, send connect, read hello-ok, then req/res by id with
 * events skipped. Request ids are "<n>:<uuid>" like the real CLI's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"

/* After a failed connect the gateway closes right away: wait this long for
 * its close frame so the code and reason can be reported. */
#define GWCLIENT_CLOSE_WAIT_MS 1000

struct gwclient {
	struct wsclient *ws;
	unsigned next_id;
};

void gwclient_err_free(struct gwclient_err *e)
{
	if (!e)
		return;
	free(e->message);
	json_decref(e->error);
	free(e->close_reason);
	memset(e, 0, sizeof(*e));
}

static void gwclient_err_set(struct gwclient_err *e,
			     enum gwclient_err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void gwclient_err_set(struct gwclient_err *e,
			     enum gwclient_err_kind kind, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	e->kind = kind;
	free(e->message);
	e->message = xstrdup(buf);
}

/* Record the peer's close code/reason (if any) into e. */
static void gwclient_err_close(struct gwclient_err *e,
			       const struct wsclient *ws)
{
	const char *reason = wsclient_close_reason(ws);

	if (!wsclient_close_code(ws))
		return;
	e->close_code = wsclient_close_code(ws);
	free(e->close_reason);
	e->close_reason = xstrdup(reason ? reason : "");
}

/* Map a wsclient_recv failure into e. */
static int gwclient_recv_fail(struct gwclient *c, int r, const char *what,
			      int timeout_ms, struct gwclient_err *e)
{
	if (r == GW_ETIMEOUT) {
		gwclient_err_set(e, GWC_ERR_TIMEOUT, "%s", what);
		(void)timeout_ms;
		return r;
	}
	if (r == GW_EIO) {
		gwclient_err_close(e, c->ws);
		if (e->close_code)
			gwclient_err_set(e, GWC_ERR_CLOSED,
					 "gateway closed (%d): %s",
					 e->close_code, e->close_reason);
		else
			gwclient_err_set(e, GWC_ERR_CLOSED,
					 "gateway closed (1006): %s",
					 wsclient_error(c->ws));
		return r;
	}
	gwclient_err_set(e, GWC_ERR_PROTOCOL, "%s", wsclient_error(c->ws));
	return r;
}

/* Read the next JSON object frame before deadline. */
static int gwclient_next(struct gwclient *c, int64_t deadline, json_t **out,
			 const char *what, int timeout_ms,
			 struct gwclient_err *e)
{
	json_error_t jerr;
	char *msg = NULL;
	size_t len = 0;
	json_t *j;
	int r;

	for (;;) {
		r = wsclient_recv(c->ws, deadline, &msg, &len, NULL);
		if (r)
			return gwclient_recv_fail(c, r, what, timeout_ms, e);
		j = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);
		free(msg);
		if (j && json_is_object(j)) {
			*out = j;
			return 0;
		}
		json_decref(j);	/* not an object: ignored */
	}
}

static char *gwclient_new_id(struct gwclient *c)
{
	char uuid[37];

	util_uuid(uuid);
	return xasprintf("%u:%s", ++c->next_id, uuid);
}

json_t *gwclient_connect_params(const struct gwclient_opts *o)
{
	char instance[37];
	json_t *client, *params, *scopes;
	size_t i;

	util_uuid(instance);
	client = json_object();
	json_object_set_new(client, "id", json_string(o->client_id));
	if (o->display_name)
		json_object_set_new(client, "displayName",
				    json_string(o->display_name));
	json_object_set_new(client, "version",
			    json_string(o->client_version));
	json_object_set_new(client, "platform", json_string("linux"));
	json_object_set_new(client, "deviceFamily", json_string("Linux"));
	json_object_set_new(client, "mode", json_string(o->client_mode));
	json_object_set_new(client, "instanceId", json_string(instance));

	params = json_object();
	json_object_set_new(params, "minProtocol",
			    json_integer(o->min_protocol));
	json_object_set_new(params, "maxProtocol",
			    json_integer(o->max_protocol));
	json_object_set_new(params, "client", client);
	json_object_set_new(params, "caps", json_array());
	if (o->token && *o->token)
		json_object_set_new(params, "auth",
				    json_pack("{s:s}", "token", o->token));
	else if (o->password && *o->password)
		json_object_set_new(params, "auth",
				    json_pack("{s:s}", "password",
					      o->password));
	json_object_set_new(params, "role", json_string("operator"));
	scopes = json_array();
	for (i = 0; o->scopes && o->scopes[i]; i++)
		json_array_append_new(scopes, json_string(o->scopes[i]));
	json_object_set_new(params, "scopes", scopes);
	return params;
}

static int gwclient_send_req(struct gwclient *c, const char *id,
			     const char *method, const json_t *params,
			     struct gwclient_err *e)
{
	json_t *req = json_pack("{s:s,s:s,s:s}", "type", "req", "id", id,
				"method", method);
	char *s;
	int r;

	if (params)
		json_object_set(req, "params", (json_t *)params);
	s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	r = wsclient_send_text(c->ws, s, strlen(s));
	if (s)
		memset(s, 0, strlen(s));	/* may hold a secret */
	free(s);
	if (r) {
		gwclient_err_close(e, c->ws);
		gwclient_err_set(e, GWC_ERR_CLOSED, "%s",
				 wsclient_error(c->ws));
	}
	return r;
}

/* Wait for the res of id; events and other responses are skipped. */
static int gwclient_wait_res(struct gwclient *c, const char *id,
			     int64_t deadline, int expect_final,
			     const char *what, int timeout_ms, json_t **payload,
			     struct gwclient_err *e)
{
	json_t *f = NULL, *p;
	const char *type, *fid, *status;
	int r;

	for (;;) {
		r = gwclient_next(c, deadline, &f, what, timeout_ms, e);
		if (r)
			return r;
		type = json_string_value(json_object_get(f, "type"));
		fid = json_string_value(json_object_get(f, "id"));
		if (!type || strcmp(type, "res") != 0 || !fid ||
		    strcmp(fid, id) != 0) {
			json_decref(f);
			continue;
		}
		p = json_object_get(f, "payload");
		if (!json_is_true(json_object_get(f, "ok"))) {
			json_t *err = json_object_get(f, "error");
			const char *m = json_string_value(
				json_object_get(err, "message"));

			e->error = json_is_object(err) ? json_incref(err)
						       : json_object();
			gwclient_err_set(e, GWC_ERR_RPC, "%s",
					 m ? m : "request failed");
			json_decref(f);
			return GW_EINVAL;
		}
		status = json_string_value(json_object_get(p, "status"));
		if (expect_final && status && strcmp(status, "accepted") == 0) {
			json_decref(f);
			continue;
		}
		*payload = p ? json_incref(p) : json_null();
		json_decref(f);
		return 0;
	}
}

static int gwclient_connect_once(const struct gwclient_opts *o,
				 struct gwclient **out, json_t **hello,
				 struct gwclient_err *e)
{
	struct wsclient_url u;
	struct gwclient *c = NULL;
	json_t *f = NULL, *params = NULL;
	char err[256], *id = NULL;
	const char *ev;
	int64_t deadline = util_mono_ms() + o->timeout_ms;
	int r;

	memset(e, 0, sizeof(*e));
	if (wsclient_url_parse(o->url, &u, err, sizeof(err)) < 0) {
		gwclient_err_set(e, GWC_ERR_URL, "%s", err);
		return GW_EINVAL;
	}
	c = xcalloc(1, sizeof(*c));
	r = wsclient_connect(&u, o->timeout_ms, &c->ws, err, sizeof(err),
			     e->sys);
	wsclient_url_free(&u);
	if (r) {
		gwclient_err_set(e, r == GW_ETIMEOUT ? GWC_ERR_TIMEOUT
						     : GWC_ERR_CONNECT,
				 "%s", err);
		goto out;
	}
	/* The server speaks first: connect.challenge. */
	for (;;) {
		r = gwclient_next(c, deadline, &f, "connect challenge timeout",
				  o->timeout_ms, e);
		if (r == GW_ETIMEOUT) {
			/* What the real CLI does: close 1008 itself. */
			gwclient_err_set(e, GWC_ERR_TIMEOUT,
					 "gateway closed (1008): connect "
					 "challenge timeout");
			e->close_code = 1008;
			e->close_reason = xstrdup("connect challenge timeout");
			wsclient_close(c->ws, 1008);
			c->ws = NULL;
			goto out;
		}
		if (r)
			goto out;
		ev = json_string_value(json_object_get(f, "event"));
		if (ev && strcmp(ev, "connect.challenge") == 0)
			break;
		json_decref(f);
		f = NULL;
	}
	params = gwclient_connect_params(o);
	if (o->sign) {
		json_t *ch = json_object_get(f, "payload");

		if (o->sign(o->sign_arg, params,
			    json_string_value(json_object_get(ch, "nonce")),
			    json_integer_value(json_object_get(ch, "ts")))) {
			gwclient_err_set(e, GWC_ERR_PROTOCOL,
					 "cannot sign the device identity");
			r = GW_ECRYPTO;
			goto out;
		}
	}
	id = gwclient_new_id(c);
	r = gwclient_send_req(c, id, "connect", params, e);
	if (r)
		goto out;
	r = gwclient_wait_res(c, id, deadline, 0, "gateway connect timeout",
			      o->timeout_ms, hello, e);
	if (r == GW_EINVAL && e->kind == GWC_ERR_RPC) {
		char *m = NULL;

		/* Collect the close that follows a rejected connect. */
		while (wsclient_recv(c->ws, util_mono_ms() +
				     GWCLIENT_CLOSE_WAIT_MS, &m, NULL,
				     NULL) == 0)
			free(m);
		gwclient_err_close(e, c->ws);
	}
	if (r)
		goto out;
	*out = c;
	c = NULL;
out:
	if (params) {
		json_t *auth = json_object_get(params, "auth");
		const char *k;
		json_t *v;

		json_object_foreach(auth, k, v) {
			if (json_string_length(v))
				memset((char *)json_string_value(v), 0,
				       json_string_length(v));
		}
	}
	json_decref(params);
	json_decref(f);
	free(id);
	gwclient_close(c);
	return r;
}

int gwclient_request(struct gwclient *c, const char *method,
		     const json_t *params, int timeout_ms, int expect_final,
		     json_t **payload, struct gwclient_err *e)
{
	char what[64];
	char *id = gwclient_new_id(c);
	int r;

	memset(e, 0, sizeof(*e));
	snprintf(what, sizeof(what), "gateway timeout after %dms", timeout_ms);
	r = gwclient_send_req(c, id, method, params, e);
	if (r == 0)
		r = gwclient_wait_res(c, id, util_mono_ms() + timeout_ms,
				      expect_final, what, timeout_ms, payload,
				      e);
	free(id);
	return r;
}

void gwclient_close(struct gwclient *c)
{
	if (!c)
		return;
	wsclient_close(c->ws, 0);
	free(c);
}

static int gwclient_err_is(const struct gwclient_err *e, const char *code)
{
	const char *c = json_string_value(json_object_get(e->error, "code"));
	const char *dc = json_string_value(json_object_get(
		json_object_get(e->error, "details"), "code"));

	return e->kind == GWC_ERR_RPC &&
	       ((c && strcmp(c, code) == 0) || (dc && strcmp(dc, code) == 0));
}

/* As the openclaw CLI: a shared credential is enough on its own, so an
 * unapproved device identity never locks the operator out (pairing
 * required: connect again without the device block). Without any
 * credential, say that the token is what is missing. */
int gwclient_connect(const struct gwclient_opts *o, struct gwclient **out,
		     json_t **hello, struct gwclient_err *e)
{
	struct gwclient_opts plain;
	int r;

	r = gwclient_connect_once(o, out, hello, e);
	if (r && o->sign && (o->token || o->password) &&
	    (gwclient_err_is(e, "NOT_PAIRED") ||
	     gwclient_err_is(e, "PAIRING_REQUIRED"))) {
		plain = *o;
		plain.sign = NULL;
		plain.sign_arg = NULL;
		gwclient_err_free(e);
		r = gwclient_connect_once(&plain, out, hello, e);
	}
	if (r && !o->token && !o->password &&
	    (gwclient_err_is(e, "DEVICE_IDENTITY_REQUIRED") ||
	     gwclient_err_is(e, "AUTH_TOKEN_MISSING"))) {
		free(e->message);
		e->message = xstrdup("gateway token required (pass --token, "
				     "set OPENCLAW_GATEWAY_TOKEN, or on the "
				     "gateway host run `clawgate gateway "
				     "auth-token`)");
	}
	return r;
}
