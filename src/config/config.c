/* Config load (read, hash, parse, include, substitute, validate, resolve),
 * SecretRef resolution, issues, and the reference-counted snapshot.
 *
 * The current snapshot is a plain pointer guarded by a mutex held only for
 * "load pointer + take a reference" (readers) and "swap pointer" (writer);
 * the old snapshot is released outside the lock. So a reader can never take
 * a reference on a snapshot whose count already reached zero. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/common.h"
#include "core/json5.h"
#include "core/util.h"

#define CONFIG_MAX_FILE (4u * 1024 * 1024)
#define CONFIG_SECRET_MAX (64u * 1024)
#define CONFIG_EXEC_TIMEOUT_MS 5000
#define CONFIG_EXEC_MAX_ARGS 64

extern char **environ;

/* ---- issues -------------------------------------------------------------- */

static void config_issue_vadd(struct config_issue **v, int *n,
			      const char *path, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	*v = xrealloc(*v, (size_t)(*n + 1) * sizeof(**v));
	(*v)[*n].path = xstrdup(path && *path ? path : "<root>");
	(*v)[*n].message = msg;
	(*n)++;
}

void config_issues_add(struct config_issues *is, const char *path,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_issue_vadd(&is->v, &is->n, path, fmt, ap);
	va_end(ap);
}

void config_issues_warn(struct config_issues *is, const char *path,
			const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_issue_vadd(&is->w, &is->nw, path, fmt, ap);
	va_end(ap);
}

int config_issues_has_warning(const struct config_issues *is,
			      const char *path)
{
	int i;

	for (i = 0; i < is->nw; i++)
		if (strcmp(is->w[i].path, path) == 0)
			return 1;
	return 0;
}

void config_issues_free(struct config_issues *is)
{
	int i;

	if (!is)
		return;
	for (i = 0; i < is->n; i++) {
		free(is->v[i].path);
		free(is->v[i].message);
	}
	for (i = 0; i < is->nw; i++) {
		free(is->w[i].path);
		free(is->w[i].message);
	}
	free(is->v);
	free(is->w);
	memset(is, 0, sizeof(*is));
}

void config_issues_print(FILE *f, const char *path,
			 const struct config_issues *is)
{
	int i;

	fprintf(f, "Invalid config at %s:\n", path);
	for (i = 0; i < is->n; i++)
		fprintf(f, "- %s: %s\n", is->v[i].path, is->v[i].message);
	fprintf(f, "Config invalid\n");
}

int config_validate(const json_t *root, struct config_issues *is)
{
	return config_options_validate(root, is) < 0 ? GW_ECONFIG : GW_OK;
}

const json_t *config_get(const json_t *root, const char *dotted)
{
	const char *p = dotted, *dot;
	char key[256];

	while (root && p && *p) {
		size_t n;

		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(key) || !json_is_object(root))
			return NULL;
		memcpy(key, p, n);
		key[n] = 0;
		root = json_object_get(root, key);
		p = dot ? dot + 1 : NULL;
	}
	return root;
}

/* ---- SecretRef hooks ----------------------------------------------------- */

static const struct config_secrets_hooks *config_secrets;

void config_set_secrets_hooks(const struct config_secrets_hooks *h)
{
	config_secrets = h;
}

int config_secret_resolve(const json_t *v, char **out, char *why,
			  size_t len)
{
	*out = NULL;
	if (json_is_string(v)) {
		*out = xstrdup(json_string_value(v));
		return 0;
	}
	if (config_secrets && config_secrets->resolve)
		return config_secrets->resolve(v, out, why, len);
	snprintf(why, len, "SecretRef cannot be resolved here");
	return -1;
}

int config_secrets_changed(const struct gw_config *a,
			   const struct gw_config *b)
{
	return config_secrets && config_secrets->changed ?
		config_secrets->changed(a, b) : 0;
}

/* ---- snapshot ------------------------------------------------------------ */

static pthread_mutex_t config_current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gw_config *config_current_ptr;

static void config_free(struct gw_config *c)
{
	json_decref(c->root);
	free(c->mode);
	free(c->custom_bind_host);
	xfree_secret(c->auth_token);
	xfree_secret(c->auth_password);
	config_env_strv_free(c->allowed_origins);
	free(c->log_file);
	free(c->log_level);
	free(c->reload_mode);
	free(c->path);
	config_env_strv_free(c->included_files);
	if (c->secrets && config_secrets)
		config_secrets->release(c->secrets);
	free(c);
}

struct gw_config *config_ref(struct gw_config *c)
{
	if (c)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void config_unref(struct gw_config *c)
{
	if (!c)
		return;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		config_free(c);
}

struct gw_config *config_current(void)
{
	struct gw_config *c;

	pthread_mutex_lock(&config_current_lock);
	c = config_ref(config_current_ptr);
	pthread_mutex_unlock(&config_current_lock);
	return c;
}

void config_set_current(struct gw_config *c)
{
	struct gw_config *old;

	config_ref(c);
	pthread_mutex_lock(&config_current_lock);
	old = config_current_ptr;
	config_current_ptr = c;
	pthread_mutex_unlock(&config_current_lock);
	config_unref(old);
}

/* ---- load ---------------------------------------------------------------- */

static const char *config_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The file value at key, else the table default (new reference or NULL). */
static json_t *config_value(const json_t *root, const char *key)
{
	const json_t *v = config_get(root, key);

	if (v)
		return json_incref((json_t *)v);
	return config_options_default(config_options_lookup(key));
}

static int64_t config_int(const json_t *root, const char *key)
{
	json_t *v = config_value(root, key);
	int64_t r = json_integer_value(v);

	json_decref(v);
	return r;
}

static char *config_str(const json_t *root, const char *key)
{
	json_t *v = config_value(root, key);
	char *r = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;

	json_decref(v);
	return r;
}

/* Check a CLI value against the entry of key; issues under the flag. */
static int config_check_flag(const char *key, const char *val,
			     const char *flag, struct config_issues *is)
{
	json_t *v = json_string(val);
	int r;

	if (!v) {
		config_issues_add(is, flag, "invalid value (not UTF-8)");
		return -1;
	}
	r = config_options_check(config_options_lookup(key), v, flag, is);
	json_decref(v);
	return r;
}

/* The secret at key into *out (NULL when unset): its resolved SecretRef
 * (activation already reported a failure as an issue) or its string. */
static int config_resolve_secret(const struct gw_config *c, const char *key,
				 char **out, struct config_issues *is)
{
	const json_t *v = config_get(c->root, key);
	const char *val = NULL;
	char why[400];
	int r;

	*out = NULL;
	if (!v)
		return 0;
	if (json_is_string(v) && config_issues_has_warning(is, key)) {
		config_issues_add(is, key, "unresolved ${VAR} reference in a "
				  "secret (environment variable missing or "
				  "empty)");
		return -1;
	}
	r = config_secrets ? config_secrets->lookup(c, key, &val, why,
						    sizeof(why))
			   : GW_ENOTFOUND;
	if (r == GW_OK) {
		*out = xstrdup(val);
		return 0;
	}
	if (r != GW_ENOTFOUND || !json_is_string(v)) {
		/* A ref that did not resolve, or one without the module. */
		if (!config_secrets)
			config_issues_add(is, key, "SecretRef cannot be "
					  "resolved here");
		return -1;
	}
	*out = xstrdup(json_string_value(v));
	if (!**out) {
		xfree_secret(*out);
		*out = NULL;
	}
	return 0;
}

static void config_map_enum(const char *s, const char *const *names,
			    int n, int *out)
{
	int i;

	for (i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			*out = i;
}

/* Effective values (CLI > env > file > default) into c. */
static void config_resolve(struct gw_config *c,
			   const struct config_overrides *ov,
			   struct config_issues *is)
{
	static const char *const binds[] = {
		[BIND_LOOPBACK] = "loopback", [BIND_LAN] = "lan",
		[BIND_CUSTOM] = "custom", [BIND_AUTO] = "auto",
		[BIND_TAILNET] = "tailnet",
	};
	static const char *const modes[] = {
		[AUTH_MODE_TOKEN] = "token", [AUTH_MODE_PASSWORD] = "password",
		[AUTH_MODE_NONE] = "none",
		[AUTH_MODE_TRUSTED_PROXY] = "trusted-proxy",
	};
	const json_t *root = c->root, *v, *e;
	char *bind = NULL, *mode = NULL, *tok = NULL, *pw = NULL;
	const char *env;
	int explicit_mode = 0, i = 0;
	size_t k;

	c->mode = config_str(root, "gateway.mode");

	/* port */
	env = config_env("OPENCLAW_GATEWAY_PORT");
	if (ov->port) {
		c->port = ov->port;
		if (ov->port < 1 || ov->port > 65535)
			config_issues_add(is, "--port", "invalid value %d "
					  "(expected an integer between 1 and "
					  "65535)", ov->port);
	} else if (env && util_parse_port(env) > 0) {
		c->port = util_parse_port(env);
	} else {
		if (env)
			config_issues_warn(is, "OPENCLAW_GATEWAY_PORT",
					   "ignoring invalid port \"%s\"",
					   env);
		if (config_get(root, "gateway.port"))
			c->port = (int)config_int(root, "gateway.port");
		else
			c->port = ov->dev ? 19001 : 18789;
	}

	/* bind */
	if (ov->bind && config_check_flag("gateway.bind", ov->bind, "--bind",
					  is) == 0)
		bind = xstrdup(ov->bind);
	else
		bind = config_str(root, "gateway.bind");
	i = BIND_LOOPBACK;
	config_map_enum(bind, binds, (int)ARRAY_SIZE(binds), &i);
	c->bind = (enum config_bind)i;
	c->custom_bind_host = config_str(root, "gateway.customBindHost");
	if (c->bind == BIND_CUSTOM && !c->custom_bind_host)
		config_issues_add(is, "gateway.customBindHost", "gateway.bind="
				  "custom requires a valid IPv4 customBindHost,"
				  " got \"\"");

	/* credentials: --token > gateway.auth.token > env (same for pw) */
	if (ov->token && *ov->token)
		tok = xstrdup(ov->token);
	else if (config_resolve_secret(c, "gateway.auth.token", &tok,
				       is) == 0 && !tok &&
		 config_env("OPENCLAW_GATEWAY_TOKEN"))
		tok = xstrdup(config_env("OPENCLAW_GATEWAY_TOKEN"));
	if (ov->password && *ov->password)
		pw = xstrdup(ov->password);
	else if (config_resolve_secret(c, "gateway.auth.password", &pw,
				       is) == 0 && !pw &&
		 config_env("OPENCLAW_GATEWAY_PASSWORD"))
		pw = xstrdup(config_env("OPENCLAW_GATEWAY_PASSWORD"));

	/* mode: --auth > gateway.auth.mode > password if one is set > token */
	if (ov->auth_mode) {
		explicit_mode = 1;
		if (config_check_flag("gateway.auth.mode", ov->auth_mode,
				      "--auth", is) == 0)
			mode = xstrdup(ov->auth_mode);
	} else if ((mode = config_str(root, "gateway.auth.mode"))) {
		explicit_mode = 1;
	}
	i = AUTH_MODE_TOKEN;
	if (mode)
		config_map_enum(mode, modes, (int)ARRAY_SIZE(modes), &i);
	else
		i = pw ? AUTH_MODE_PASSWORD : AUTH_MODE_TOKEN;
	c->auth_mode = (enum config_auth_mode)i;
	if (!explicit_mode && tok && pw)
		config_issues_add(is, "gateway.auth.mode", "both token and "
				  "password are set; set gateway.auth.mode "
				  "explicitly");
	if (c->auth_mode == AUTH_MODE_TOKEN && !tok && ov->generated_token) {
		tok = xstrdup(ov->generated_token);
		c->auth_token_generated = 1;
	} else if (c->auth_mode == AUTH_MODE_TOKEN && !tok) {
		uint8_t rnd[32];

		util_random(rnd, sizeof(rnd));
		tok = util_b64url_encode(rnd, sizeof(rnd));
		explicit_bzero(rnd, sizeof(rnd));
		c->auth_token_generated = 1;
	}
	if (c->auth_mode == AUTH_MODE_PASSWORD && !pw)
		config_issues_add(is, "gateway.auth.password", "gateway auth "
				  "mode=password requires a password (set "
				  "gateway.auth.password or "
				  "OPENCLAW_GATEWAY_PASSWORD)");
	if (c->auth_mode == AUTH_MODE_TRUSTED_PROXY) {
		v = config_get(root, "gateway.trustedProxies");
		if (json_array_size(v) == 0)
			config_issues_add(is, "gateway.trustedProxies",
					  "gateway auth mode=trusted-proxy "
					  "requires gateway.trustedProxies to "
					  "be configured");
		if (!config_get(root, "gateway.auth.trustedProxy.userHeader"))
			config_issues_add(is, "gateway.auth.trustedProxy."
					  "userHeader", "required when "
					  "gateway.auth.mode=trusted-proxy");
	}
	c->auth_token = tok;
	c->auth_password = pw;

	c->rate_max_attempts =
		(int)config_int(root, "gateway.auth.rateLimit.maxAttempts");
	c->rate_window_ms = config_int(root, "gateway.auth.rateLimit.windowMs");
	c->rate_lockout_ms =
		config_int(root, "gateway.auth.rateLimit.lockoutMs");
	v = config_get(root, "gateway.auth.rateLimit.exemptLoopback");
	c->rate_exempt_loopback = v ? json_is_true(v) : 1;

	v = config_get(root, "gateway.controlUi.allowedOrigins");
	c->allowed_origins = xcalloc(json_array_size(v) + 1, sizeof(char *));
	json_array_foreach(v, k, e)
		c->allowed_origins[k] = xstrdup(json_string_value(e));

	c->log_file = config_str(root, "logging.file");
	c->log_level = config_str(root, "logging.level");
	c->reload_mode = config_str(root, "gateway.reload.mode");
	c->reload_debounce_ms = config_int(root, "gateway.reload.debounceMs");
	free(bind);
	free(mode);
}

/* Read the main file: 1 = read, 0 = missing, -1 = error (issue added). */
static int config_read(const char *path, char **out, size_t *len,
		       struct config_issues *is)
{
	int r = util_read_file(path, CONFIG_MAX_FILE, out, len);

	if (r == -EINVAL)
		config_issues_add(is, "<root>", "config path is not a regular "
				  "file");
	else if (r == -EFBIG)
		config_issues_add(is, "<root>", "config file is larger than %u "
				  "bytes", CONFIG_MAX_FILE);
	else if (r < 0)
		config_issues_add(is, "<root>", "cannot read config file: %s",
				  strerror(-r));
	return r < 0 ? -1 : r;
}

int config_load(const char *path, const struct config_overrides *ov,
		struct gw_config **out, struct config_issues *issues)
{
	static const struct config_overrides none;
	struct gw_config *c = NULL;
	struct json5_error perr;
	json_t *parsed = NULL, *root = NULL;
	char *buf = NULL;
	size_t len = 0;
	int before = issues->n, r = GW_ECONFIG, rd;

	*out = NULL;
	if (!ov)
		ov = &none;
	c = xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->path = xstrdup(path);

	rd = config_read(path, &buf, &len, issues);
	if (rd < 0)
		goto out;
	if (rd == 0) {
		root = json_object();
	} else {
		c->file_exists = 1;
		util_sha256_hex(buf, len, c->hash);
		if (json5_parse(buf, len, &parsed, &perr) < 0) {
			config_issues_add(issues, "<root>", "JSON5 parse error "
					  "at line %d column %d: %s",
					  perr.line, perr.column,
					  perr.message);
			goto out;
		}
		root = config_env_includes(parsed, path, &c->included_files,
					   issues);
		if (!root)
			goto out;
		config_env_substitute(root, issues);
	}
	if (config_validate(root, issues) != GW_OK)
		goto out;
	c->root = root;
	root = NULL;
	if (config_secrets && config_secrets->activate(c, issues) != GW_OK)
		goto out;
	config_resolve(c, ov, issues);
	if (issues->n > before)
		goto out;
	*out = c;
	c = NULL;
	r = GW_OK;
out:
	if (r != GW_OK && issues->n == before)
		config_issues_add(issues, "<root>", "invalid config");
	if (c)
		config_unref(c);
	json_decref(root);
	json_decref(parsed);
	free(buf);
	return r;
}
