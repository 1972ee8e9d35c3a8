/* Where the client commands connect: the local context (state dir, config
 * path, port and credentials from env and config file) and the resolved
 * target URL with its credentials.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "config/config.h"
#include "core/util.h"
#include "service/service.h"

#define CLI_TARGET_DEFAULT_PORT 18789
#define CLI_TARGET_DEV_PORT 19001

static const char *cli_target_bind_name(enum config_bind b)
{
	switch (b) {
	case BIND_LAN:
		return "lan";
	case BIND_CUSTOM:
		return "custom";
	case BIND_AUTO:
		return "auto";
	case BIND_TAILNET:
		return "tailnet";
	default:
		return "loopback";
	}
}

/* The local context comes from the config module, as the daemon sees it:
 * paths and profiles, then the file with its precedence rules. An invalid
 * file still gives paths and the default port (status works with a broken
 * config), with the reason in cfg_error. */
int cli_target_local_load(const char *profile, int dev, struct cli_local *l)
{
	struct config_paths p = {0};
	struct config_overrides ov = {0};
	struct config_issues is = {0};
	struct gw_config *c = NULL;
	const char *env_port;
	int port;

	memset(l, 0, sizeof(*l));
	if (config_paths_resolve(&p, profile, dev) != GW_OK)
		return -1;
	l->state_dir = xstrdup(p.state_dir);
	l->config_path = xstrdup(p.config_path);
	ov.dev = dev || (p.profile && strcmp(p.profile, "dev") == 0);
	if (config_load(p.config_path, &ov, &c, &is) == GW_OK) {
		l->port = c->port;
		if (c->log_file)
			l->cfg_log_file = xstrdup(c->log_file);
		if (c->mode)
			l->cfg_mode = xstrdup(c->mode);
		l->cfg_exists = c->file_exists;
		l->bind = cli_target_bind_name(c->bind);
		if (c->auth_token && !c->auth_token_generated)
			l->cfg_token = xstrdup(c->auth_token);
		if (c->auth_password)
			l->cfg_password = xstrdup(c->auth_password);
	} else {
		l->bind = "loopback";
		l->cfg_exists = access(p.config_path, F_OK) == 0;
		l->cfg_error = xasprintf("%s: %s: %s", p.config_path,
					 is.n ? is.v[0].path : "?",
					 is.n ? is.v[0].message : "invalid");
		l->port = ov.dev ? CLI_TARGET_DEV_PORT : CLI_TARGET_DEFAULT_PORT;
		env_port = getenv("OPENCLAW_GATEWAY_PORT");
		port = env_port ? util_parse_port(env_port) : -1;
		if (port > 0)
			l->port = port;
	}
	/* No configured credential: the token the gateway generated and
	 * keeps in the state dir (same host, same user). */
	if (!l->cfg_token && !l->cfg_password) {
		if (service_token_read(l->state_dir, &l->cfg_token) == 1)
			l->cfg_token_kept = 1;
		else
			l->cfg_token = NULL;
	}
	config_unref(c);
	config_issues_free(&is);
	config_paths_free(&p);
	return 0;
}

void cli_target_local_free(struct cli_local *l)
{
	if (!l)
		return;
	free(l->state_dir);
	free(l->config_path);
	xfree_secret(l->cfg_token);
	xfree_secret(l->cfg_password);
	free(l->cfg_error);
	free(l->cfg_log_file);
	free(l->cfg_mode);
	memset(l, 0, sizeof(*l));
}

static char *cli_target_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? xstrdup(v) : NULL;
}

/* Credentials: --token/--password, else the environment, else (only for a
 * target the config file describes) the file's. */
static void cli_target_creds(const struct cli_args *a,
			     const struct cli_local *l, int use_file,
			     struct cli_target *t)
{
	if (a->token && *a->token)
		t->token = xstrdup(a->token);
	else if (a->password && *a->password)
		t->password = xstrdup(a->password);
	if (t->token || t->password)
		return;
	t->token = cli_target_env("OPENCLAW_GATEWAY_TOKEN");
	t->password = cli_target_env("OPENCLAW_GATEWAY_PASSWORD");
	if (t->token || t->password || !use_file)
		return;
	if (l->cfg_token)
		t->token = xstrdup(l->cfg_token);
	else if (l->cfg_password)
		t->password = xstrdup(l->cfg_password);
}

void cli_target_local(const struct cli_args *a, const struct cli_local *l,
		      struct cli_target *t)
{
	memset(t, 0, sizeof(*t));
	t->url = xasprintf("ws://127.0.0.1:%d", l->port);
	t->url_source = "local default";
	t->local_default = 1;
	cli_target_creds(a, l, 1, t);
}

char *cli_target_http_url(const struct cli_target *t)
{
	const char *u = t->url, *scheme = "http", *end;

	if (strncasecmp(u, "wss://", 6) == 0) {
		scheme = "https";
		u += 6;
	} else if (strncasecmp(u, "ws://", 5) == 0) {
		u += 5;
	} else if (strncasecmp(u, "https://", 8) == 0) {
		scheme = "https";
		u += 8;
	} else if (strncasecmp(u, "http://", 7) == 0) {
		u += 7;
	}
	/* the authority only: the Control UI is served at the root */
	end = u + strcspn(u, "/?#");
	return xasprintf("%s://%.*s/", scheme, (int)(end - u), u);
}

void cli_target_resolve(const struct cli_args *a, const struct cli_local *l,
			struct cli_target *t)
{
	const char *env_url = getenv("OPENCLAW_GATEWAY_URL");

	if (!(a->url && *a->url) && !(env_url && *env_url)) {
		cli_target_local(a, l, t);
		return;
	}
	memset(t, 0, sizeof(*t));
	if (a->url && *a->url) {
		t->url = xstrdup(a->url);
		t->url_source = "cli --url";
	} else {
		t->url = xstrdup(env_url);
		t->url_source = "env OPENCLAW_GATEWAY_URL";
	}
	/* The file's secrets never go to an explicit --url (as upstream);
	 * OPENCLAW_GATEWAY_URL is part of the same local setup. */
	cli_target_creds(a, l, !a->url, t);
}

void cli_target_free(struct cli_target *t)
{
	if (!t)
		return;
	free(t->url);
	xfree_secret(t->token);
	xfree_secret(t->password);
	memset(t, 0, sizeof(*t));
}

void cli_target_opts(const struct cli_target *t, const char *const *scopes,
		     int timeout_ms, struct gwclient_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->url = t->url;
	o->token = t->token;
	o->password = t->token ? NULL : t->password;
	o->client_id = "cli";
	o->client_mode = "cli";
	o->client_version = PACKAGE_VERSION;
	o->scopes = scopes;
	o->min_protocol = 4;
	o->max_protocol = 4;
	o->timeout_ms = timeout_ms;
}

int cli_session_open(const struct cli_args *a, const char *const *scopes,
		     int def_ms, int max_ms, struct cli_session *s,
		     struct gwclient_err *e)
{
	struct gwclient_opts o;
	json_t *hello = NULL;
	char *end;
	long ms = def_ms;

	memset(s, 0, sizeof(*s));
	if (a->timeout) {
		ms = strtol(a->timeout, &end, 10);
		if (*end || ms <= 0 || ms > max_ms) {
			fprintf(stderr, "invalid --timeout: %s\n", a->timeout);
			return 2;
		}
	}
	s->timeout = (int)ms;
	cli_target_local_load(a->profile, a->dev, &s->l);
	cli_target_resolve(a, &s->l, &s->t);
	if (cli_identity_open(s->l.state_dir, &s->ci) != 0)
		return 1;
	cli_target_opts(&s->t, scopes, s->timeout, &o);
	o.password = s->t.password;
	o.sign = cli_identity_sign;
	o.sign_arg = &s->ci;
	if (gwclient_connect(&o, &s->c, &hello, e) != 0)
		return 1;
	cli_identity_store_token(&s->ci, hello);
	json_decref(hello);
	return 0;
}

void cli_session_close(struct cli_session *s)
{
	gwclient_close(s->c);
	cli_identity_close(&s->ci);
	cli_target_free(&s->t);
	cli_target_local_free(&s->l);
	memset(s, 0, sizeof(*s));
}
