/* Where the client commands connect: the local context (state dir, config
 * path, port and credentials from env and config file) and the resolved
 * target URL with its credentials.
 *
 * The config module (config_paths_resolve/config_load) is written
 * concurrently; until the CLI switches to it, this file reads only the few
 * keys it needs (gateway.port, gateway.auth.token/password) with
 * json5_parse, behind cli_target_local_load. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"
#include "core/json5.h"
#include "core/util.h"

#define CLI_TARGET_DEFAULT_PORT 18789
#define CLI_TARGET_DEV_PORT 19001

/* Read a whole file, bounded by JSON5_MAX_INPUT. NULL with errno set. */
static char *cli_target_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (cap > JSON5_MAX_INPUT + 1)
				cap = JSON5_MAX_INPUT + 1;
			buf = xrealloc(buf, cap + 1);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n > JSON5_MAX_INPUT) {
			free(buf);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A string config value; "${VAR}" is taken from the environment. */
static char *cli_target_secret(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n;

	if (!s || !*s)
		return NULL;
	n = strlen(s);
	if (n > 3 && s[0] == '$' && s[1] == '{' && s[n - 1] == '}') {
		char *name = xstrndup(s + 2, n - 3);
		const char *e = getenv(name);

		free(name);
		return e && *e ? xstrdup(e) : NULL;
	}
	return xstrdup(s);
}

static void cli_target_read_config(struct cli_local *l, int *file_port)
{
	struct json5_error jerr;
	json_t *root = NULL, *gw, *auth;
	char *buf = NULL;
	size_t len = 0;
	json_int_t p;

	*file_port = 0;
	buf = cli_target_slurp(l->config_path, &len);
	if (!buf) {
		if (errno != ENOENT)
			l->cfg_error = xasprintf("%s: %s", l->config_path,
						 strerror(errno));
		return;
	}
	if (json5_parse(buf, len, &root, &jerr) < 0) {
		l->cfg_error = xasprintf("%s:%d:%d: %s", l->config_path,
					 jerr.line, jerr.column, jerr.message);
		goto out;
	}
	gw = json_object_get(root, "gateway");
	p = json_integer_value(json_object_get(gw, "port"));
	if (p >= 1 && p <= 65535)
		*file_port = (int)p;
	auth = json_object_get(gw, "auth");
	l->cfg_token = cli_target_secret(json_object_get(auth, "token"));
	l->cfg_password = cli_target_secret(json_object_get(auth,
							    "password"));
out:
	json_decref(root);
	if (buf)
		memset(buf, 0, len);
	free(buf);
}

int cli_target_local_load(const char *profile, int dev, struct cli_local *l)
{
	const char *home, *sd, *cp, *env_port;
	int file_port = 0, p;

	memset(l, 0, sizeof(*l));
	home = getenv("OPENCLAW_HOME");
	if (!home || !*home)
		home = getenv("HOME");
	if (!home || !*home)
		home = "/";
	sd = getenv("OPENCLAW_STATE_DIR");
	if (sd && *sd)
		l->state_dir = xstrdup(sd);
	else if (profile && *profile && strcmp(profile, "default") != 0)
		l->state_dir = xasprintf("%s/.openclaw-%s", home, profile);
	else if (dev)
		l->state_dir = xasprintf("%s/.openclaw-dev", home);
	else
		l->state_dir = xasprintf("%s/.openclaw", home);
	cp = getenv("OPENCLAW_CONFIG_PATH");
	l->config_path = cp && *cp ? xstrdup(cp)
				   : xasprintf("%s/openclaw.json",
					       l->state_dir);
	cli_target_read_config(l, &file_port);

	l->port = dev ? CLI_TARGET_DEV_PORT : CLI_TARGET_DEFAULT_PORT;
	if (file_port)
		l->port = file_port;
	env_port = getenv("OPENCLAW_GATEWAY_PORT");
	if (env_port && *env_port) {
		p = util_parse_port(env_port);
		if (p > 0)
			l->port = p;
	}
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
