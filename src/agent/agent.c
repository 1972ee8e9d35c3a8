/* Agents and models from the config snapshot (agents.defaults,
 * agents.entries, the legacy agents.list, models.providers), the runtime
 * object, session key rules and the observer hand-off. */
#include <ctype.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/agent-int.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "secrets/secrets.h"
#include "store/store.h"

#define AGENT_DEFAULT_ID "main"
#define AGENT_DEFAULT_TIMEOUT_MS (300 * 1000)
#define AGENT_MAX_TIMEOUT_S (366 * 86400)
#define AGENT_CONNECT_TIMEOUT_MS 10000
#define AGENT_PROMPT_FILE_MAX (64 * 1024)

static const char *const agent_reserved_prefixes[] = {
	"subagent:", "cron:", "acp:",
};

/* Interned default-agent ids: agent_default_id returns a borrowed string
 * that must stay valid across config reloads. */
static pthread_mutex_t agent_intern_mu = PTHREAD_MUTEX_INITIALIZER;
static char **agent_interned;
static size_t agent_ninterned;

static const char *agent_intern(const char *s)
{
	const char *r = NULL;
	size_t i;

	pthread_mutex_lock(&agent_intern_mu);
	for (i = 0; i < agent_ninterned; i++)
		if (strcmp(agent_interned[i], s) == 0)
			r = agent_interned[i];
	if (!r && agent_ninterned < 256) {
		agent_interned = xrealloc(agent_interned,
			(agent_ninterned + 1) * sizeof(*agent_interned));
		r = agent_interned[agent_ninterned++] = xstrdup(s);
	}
	pthread_mutex_unlock(&agent_intern_mu);
	return r ? r : AGENT_DEFAULT_ID;
}

static atomic_int agent_legacy_warned;

static const json_t *agent_cfg_root(const struct gw_config *cfg)
{
	return cfg ? cfg->root : NULL;
}

static char *agent_lower(const char *s)
{
	char *r = xstrdup(s), *p;

	for (p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

/* The configured agents: object id → entry (new ref; entries borrowed
 * copies). The legacy agents.list array is folded in. */
static json_t *agent_entries(const struct gw_config *cfg)
{
	const json_t *root = agent_cfg_root(cfg), *ents, *list, *e;
	json_t *out = json_object();
	const char *k;
	size_t i;
	char *id;

	ents = config_get(root, "agents.entries");
	json_object_foreach((json_t *)ents, k, e) {
		if (!json_is_object(e))
			continue;
		id = agent_lower(k);
		json_object_set_new(out, id, json_deep_copy(e));
		free(id);
	}
	list = config_get(root, "agents.list");
	if (json_array_size(list) && !atomic_exchange(&agent_legacy_warned, 1))
		log_warn("config", "agents.list is the legacy agent roster; "
			 "move each {id, ...} to agents.entries.<id>");
	json_array_foreach(list, i, e) {
		const char *lid = json_string_value(json_object_get(e, "id"));

		if (!json_is_object(e) || !lid || !*lid)
			continue;
		id = agent_lower(lid);
		if (!json_object_get(out, id))
			json_object_set_new(out, id, json_deep_copy(e));
		free(id);
	}
	return out;
}

static char *agent_default_of(const struct gw_config *cfg)
{
	json_t *ents = agent_entries(cfg), *e;
	const char *k, *first = NULL;
	char *r = NULL;

	json_object_foreach(ents, k, e) {
		if (!first)
			first = k;
		if (json_is_true(json_object_get(e, "default")) && !r)
			r = xstrdup(k);
	}
	if (!r && json_object_size(ents) == 1)
		r = xstrdup(first);
	if (!r)
		r = xstrdup(AGENT_DEFAULT_ID);
	json_decref(ents);
	return r;
}

const char *agent_default_id(struct agent_rt *rt)
{
	struct gw_config *cfg = config_current();
	char *id = agent_default_of(cfg);
	const char *r = agent_intern(id);

	(void)rt;
	free(id);
	config_unref(cfg);
	return r;
}

char *agent_canon_id(struct agent_rt *rt, const struct gw_config *cfg,
		     const char *id)
{
	json_t *ents;
	char *l, *def;

	(void)rt;
	if (!id || !*id)
		return agent_default_of(cfg);
	l = agent_lower(id);
	if (strcmp(l, AGENT_DEFAULT_ID) == 0)
		return l;
	def = agent_default_of(cfg);
	if (strcmp(l, def) == 0) {
		free(def);
		return l;
	}
	free(def);
	ents = agent_entries(cfg);
	if (!json_object_get(ents, l)) {
		free(l);
		l = NULL;
	}
	json_decref(ents);
	return l;
}

int agent_exists(struct agent_rt *rt, const char *id)
{
	struct gw_config *cfg = config_current();
	char *c = agent_canon_id(rt, cfg, id ? id : "");

	config_unref(cfg);
	free(c);
	return c != NULL;
}

/* The model setting (string or {primary, fallbacks}) of an agent. */
static const json_t *agent_model_setting(const struct gw_config *cfg,
					 const json_t *entry)
{
	const json_t *m = json_object_get(entry, "model");

	if (json_is_string(m) || json_is_object(m))
		return m;
	return config_get(agent_cfg_root(cfg), "agents.defaults.model");
}

static char *agent_home_expand(const char *p)
{
	const char *h = getenv("HOME");

	if (p[0] == '~' && (p[1] == '/' || !p[1]) && h)
		return xasprintf("%s%s", h, p + 1);
	return xstrdup(p);
}

static char *agent_workspace(struct agent_rt *rt, const struct gw_config *cfg,
			     const char *id, const json_t *entry)
{
	const char *w = json_string_value(json_object_get(entry, "workspace"));
	const char *env = getenv("OPENCLAW_WORKSPACE_DIR");
	int is_main = strcmp(id, AGENT_DEFAULT_ID) == 0;

	if (w && *w)
		return agent_home_expand(w);
	w = json_string_value(config_get(agent_cfg_root(cfg),
					 "agents.defaults.workspace"));
	if (w && *w && is_main)
		return agent_home_expand(w);
	if (w && *w)
		return xasprintf("%s-%s", w, id);
	if (env && *env)
		return is_main ? xstrdup(env) : xasprintf("%s-%s", env, id);
	return is_main ? xasprintf("%s/workspace", rt->state_dir)
		       : xasprintf("%s/workspace-%s", rt->state_dir, id);
}

static json_t *agent_model_json(const json_t *m)
{
	json_t *o = json_object(), *fb, *v;
	size_t i;

	if (json_is_string(m) && json_string_length(m)) {
		json_object_set(o, "primary", (json_t *)m);
		return o;
	}
	v = json_object_get(m, "primary");
	if (json_is_string(v) && json_string_length(v))
		json_object_set(o, "primary", v);
	fb = json_array();
	json_array_foreach(json_object_get(m, "fallbacks"), i, v)
		if (json_is_string(v) && json_string_length(v))
			json_array_append(fb, v);
	if (json_array_size(fb))
		json_object_set_new(o, "fallbacks", fb);
	else
		json_decref(fb);
	return o;
}

json_t *agent_list(struct agent_rt *rt)
{
	struct gw_config *cfg = config_current();
	json_t *ents = agent_entries(cfg), *agents = json_array(), *e, *a, *m;
	char *def = agent_default_of(cfg), *ws;
	const char *k, *name;

	if (!json_object_get(ents, def))
		json_object_set_new(ents, def, json_object());
	json_object_foreach(ents, k, e) {
		a = json_pack("{s:s}", "id", k);
		name = json_string_value(json_object_get(e, "name"));
		if (name && *name)
			json_object_set_new(a, "name", json_string(name));
		ws = agent_workspace(rt, cfg, k, e);
		json_object_set_new(a, "workspace", json_string(ws));
		free(ws);
		m = agent_model_json(agent_model_setting(cfg, e));
		if (json_object_size(m))
			json_object_set_new(a, "model", m);
		else
			json_decref(m);
		json_array_append_new(agents, a);
	}
	a = json_pack("{s:s,s:s,s:b,s:s,s:s,s:o}", "defaultId", def,
		      "ownership", json_object_size(ents) > 1 ? "explicit"
							       : "sole",
		      "selectionRequired", 0, "mainKey", "main", "scope",
		      "per-sender", "agents", agents);
	free(def);
	json_decref(ents);
	config_unref(cfg);
	return a;
}

json_t *agent_models(struct agent_rt *rt)
{
	struct gw_config *cfg = config_current();
	const json_t *provs = config_get(agent_cfg_root(cfg),
					 "models.providers"), *p, *m, *v;
	json_t *out = json_array(), *o, *in;
	const char *pid, *id, *s;
	size_t i, j;

	(void)rt;
	json_object_foreach((json_t *)provs, pid, p) {
		json_array_foreach(json_object_get(p, "models"), i, m) {
			id = json_string_value(json_object_get(m, "id"));
			if (!id || !*id)
				continue;
			s = json_string_value(json_object_get(m, "name"));
			o = json_pack("{s:s,s:s,s:s}", "id", id, "name",
				      s && *s ? s : id, "provider", pid);
			v = json_object_get(m, "contextWindow");
			if (json_is_integer(v) && json_integer_value(v) >= 1)
				json_object_set(o, "contextWindow", (json_t *)v);
			v = json_object_get(m, "reasoning");
			if (json_is_boolean(v))
				json_object_set(o, "reasoning", (json_t *)v);
			in = json_array();
			json_array_foreach(json_object_get(m, "input"), j, v) {
				s = json_string_value(v);
				if (s && (!strcmp(s, "text") ||
					  !strcmp(s, "image") ||
					  !strcmp(s, "audio") ||
					  !strcmp(s, "video") ||
					  !strcmp(s, "document")))
					json_array_append(in, (json_t *)v);
			}
			if (json_array_size(in))
				json_object_set_new(o, "input", in);
			else
				json_decref(in);
			json_array_append_new(out, o);
		}
	}
	config_unref(cfg);
	return json_pack("{s:o}", "models", out);
}

/* ---- model targets ------------------------------------------------------- */

void agent_target_free(struct agent_target *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) > 1)
		return;
	free(t->ref);
	free(t->provider);
	free(t->model);
	free(t->url);
	free(t->base);
	xfree_secret(t->api_key);
	json_decref(t->headers);
	free(t->error);
	free(t);
}

static int agent_provider_has_model(const json_t *p, const char *model)
{
	const json_t *m;
	size_t i;

	json_array_foreach(json_object_get(p, "models"), i, m)
		if (json_is_string(json_object_get(m, "id")) &&
		    strcmp(json_string_value(json_object_get(m, "id")),
			   model) == 0)
			return 1;
	return 0;
}

/* Resolve "provider/model" or a bare model id into a target. NULL with
 * *err when the reference names nothing configured. */
/* models.connectionPool.* (0 when unset: the provider's default). */
static void agent_target_pool(const struct gw_config *cfg,
			      struct agent_target *t)
{
	const json_t *pool = config_get(agent_cfg_root(cfg),
					"models.connectionPool");

	t->pool_max_idle = (long)json_integer_value(json_object_get(pool,
								  "maxIdle"));
	t->pool_max_host = (long)json_integer_value(json_object_get(pool,
							"maxPerHost"));
	t->pool_idle_s = (long)json_integer_value(json_object_get(pool,
							  "idleSeconds"));
}

static struct agent_target *agent_target_new(struct agent_rt *rt,
					     const struct gw_config *cfg,
					     const char *ref, char **err)
{
	const json_t *provs = config_get(agent_cfg_root(cfg),
					 "models.providers"), *p = NULL, *v;
	struct agent_target *t;
	const char *slash = strchr(ref, '/'), *pid = NULL, *api, *base;
	const char *k;
	char why[512], *prov = NULL;
	size_t n = 0;

	if (slash) {
		prov = xstrndup(ref, (size_t)(slash - ref));
		p = json_object_get(provs, prov);
		if (p)
			pid = prov;
	}
	if (!p) {
		/* A bare id (or an id with slashes): the provider that lists
		 * it, else the only provider. */
		json_object_foreach((json_t *)provs, k, v) {
			n++;
			if (!p && agent_provider_has_model(v, ref)) {
				p = v;
				pid = k;
			}
		}
		if (!p && n == 1 && !slash) {
			json_object_foreach((json_t *)provs, k, v) {
				p = v;
				pid = k;
			}
		}
		if (p)
			slash = NULL;
	}
	if (!p) {
		*err = slash ? xasprintf("unknown model provider '%s' in "
					 "model '%s' (configure "
					 "models.providers.%s)", prov, ref,
					 prov)
			     : xasprintf("unknown model '%s' (use "
					 "\"provider/model\")", ref);
		free(prov);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	atomic_init(&t->refs, 1);
	t->provider = xstrdup(pid);
	t->model = xstrdup(slash ? slash + 1 : ref);
	t->ref = xasprintf("%s/%s", t->provider, t->model);
	free(prov);
	t->timeout_ms = AGENT_DEFAULT_TIMEOUT_MS;
	v = json_object_get(p, "timeoutSeconds");
	/* Range-check the double before scaling: NaN/inf or more than a
	 * year would overflow the int64 conversion (UB). */
	if (json_is_number(v) && json_number_value(v) > 0 &&
	    json_number_value(v) <= AGENT_MAX_TIMEOUT_S)
		t->timeout_ms = (int64_t)(json_number_value(v) * 1000);
	else if (json_is_number(v) && json_number_value(v) >
		 AGENT_MAX_TIMEOUT_S)
		t->timeout_ms = (int64_t)AGENT_MAX_TIMEOUT_S * 1000;
	v = json_object_get(p, "headers");
	if (json_is_object(v))
		t->headers = json_deep_copy(v);
	t->usage_in_stream = 1;
	agent_target_pool(cfg, t);
	api = json_string_value(json_object_get(p, "api"));
	base = json_string_value(json_object_get(p, "baseUrl"));
	if (api && strcmp(api, "openai-completions") != 0 &&
	    strcmp(api, "ollama") != 0) {
		t->error = xasprintf("provider '%s' uses api '%s', which "
				     "clawgate does not support yet "
				     "(supported: openai-completions, ollama)",
				     t->provider, api);
		return t;
	}
	if (!base || !*base) {
		t->error = xasprintf("provider '%s' has no baseUrl",
				     t->provider);
		return t;
	}
	{
		size_t bl = strlen(base);

		while (bl && base[bl - 1] == '/')
			bl--;
		/* Ollama's native root serves the OpenAI wire under /v1. */
		if (api && strcmp(api, "ollama") == 0 &&
		    (bl < 3 || strncmp(base + bl - 3, "/v1", 3) != 0))
			t->base = xasprintf("%.*s/v1", (int)bl, base);
		else
			t->base = xasprintf("%.*s", (int)bl, base);
		t->url = xasprintf("%s/chat/completions", t->base);
	}
	/* The value resolved at activation: one lookup, no I/O here. */
	{
		char *path = xasprintf("models.providers.%s.apiKey",
				       t->provider);

		v = json_object_get(p, "apiKey");
		if (secrets_field(cfg, path, v, &t->api_key, why,
				  sizeof(why)) != GW_OK)
			t->error = xasprintf("provider '%s': apiKey: %s",
					     t->provider, why);
		free(path);
	}
	/* Header values may be SecretRefs too (resolved at activation). */
	if (!t->error && t->headers) {
		const char *hk, *val;
		json_t *hv;

		json_object_foreach(t->headers, hk, hv) {
			char *path = xasprintf("models.providers.%s.headers.%s",
					       t->provider, hk);
			int rc = secrets_lookup(cfg, path, &val, why,
						sizeof(why));

			free(path);
			if (rc == GW_OK) {
				json_object_set_new(t->headers, hk,
						    json_string(val));
			} else if (rc != GW_ENOTFOUND) {
				t->error = xasprintf("provider '%s': header "
						     "%s: %s", t->provider, hk,
						     why);
				break;
			}
		}
	}
	return t;
}

/* The first model of the first provider (when no agent model is set). */
static char *agent_first_model(const struct gw_config *cfg)
{
	const json_t *provs = config_get(agent_cfg_root(cfg),
					 "models.providers"), *p, *m;
	const char *k, *id;
	size_t i;

	json_object_foreach((json_t *)provs, k, p) {
		json_array_foreach(json_object_get(p, "models"), i, m) {
			id = json_string_value(json_object_get(m, "id"));
			if (id && *id)
				return xasprintf("%s/%s", k, id);
		}
	}
	return NULL;
}

static int agent_chain_new(struct agent_rt *rt, const struct gw_config *cfg,
			   const char *agent_id, const char *override,
			   struct agent_target ***out, size_t *n, char **err)
{
	json_t *ents = agent_entries(cfg), *refs = json_array(), *m, *v;
	struct agent_target **v_out = NULL, *t;
	const json_t *setting;
	char *first = NULL;
	size_t i, cnt = 0;
	int r = GW_EINVAL;

	(void)rt;
	*out = NULL;
	*n = 0;
	if (override && *override) {
		json_array_append_new(refs, json_string(override));
	} else {
		setting = agent_model_setting(cfg,
					      json_object_get(ents, agent_id));
		m = agent_model_json(setting);
		v = json_object_get(m, "primary");
		if (v)
			json_array_append(refs, v);
		json_array_foreach(json_object_get(m, "fallbacks"), i, v)
			json_array_append(refs, v);
		json_decref(m);
		if (!json_array_size(refs) && (first = agent_first_model(cfg)))
			json_array_append_new(refs, json_string(first));
	}
	if (!json_array_size(refs)) {
		*err = xasprintf("no model configured for agent '%s' (set "
				 "agents.defaults.model.primary to "
				 "\"provider/model\" and configure "
				 "models.providers)", agent_id);
		goto out;
	}
	json_array_foreach(refs, i, v) {
		char *e = NULL;

		t = agent_target_new(rt, cfg, json_string_value(v), &e);
		if (!t) {
			if (i == 0 || (override && *override)) {
				*err = e;
				goto out;
			}
			/* A bad fallback: kept as an unusable target. */
			t = xcalloc(1, sizeof(*t));
			atomic_init(&t->refs, 1);
			t->ref = xstrdup(json_string_value(v));
			t->provider = xstrdup("?");
			t->model = xstrdup(t->ref);
			t->error = e;
		}
		v_out = xrealloc(v_out, (cnt + 1) * sizeof(*v_out));
		v_out[cnt++] = t;
	}
	*out = v_out;
	*n = cnt;
	v_out = NULL;
	cnt = 0;
	r = GW_OK;
out:
	for (i = 0; i < cnt; i++)
		agent_target_free(v_out[i]);
	free(v_out);
	free(first);
	json_decref(refs);
	json_decref(ents);
	return r;
}

/* ---- run set-up cache --------------------------------------------------- */

#define AGENT_SETUP_CACHE 8

struct agent_setup_ent {
	struct gw_config *cfg;		/* a reference: the key stays unique */
	char *agent;
	struct agent_target **chain;	/* NULL until resolved without error */
	size_t nchain;
	char *ws;			/* workspace directory, or NULL */
};

static void agent_setup_ent_free(struct agent_setup_ent *e)
{
	size_t i;

	for (i = 0; i < e->nchain; i++)
		agent_target_free(e->chain[i]);
	free(e->chain);
	free(e->agent);
	free(e->ws);
	config_unref(e->cfg);
	memset(e, 0, sizeof(*e));
}

static void agent_setup_cache_free(struct agent_rt *rt)
{
	size_t i;

	for (i = 0; i < rt->nsetups; i++)
		agent_setup_ent_free(&rt->setups[i]);
	free(rt->setups);
	rt->setups = NULL;
	rt->nsetups = 0;
}

/* cache_mu held: the entry of (cfg, agent), created when absent (entries
 * of other snapshots are dropped first; the oldest goes when full). */
static struct agent_setup_ent *agent_setup_get(struct agent_rt *rt,
					       const struct gw_config *cfg,
					       const char *agent)
{
	struct agent_setup_ent *e;
	size_t i, k = 0;

	for (i = 0; i < rt->nsetups; i++)
		if (rt->setups[i].cfg == cfg &&
		    strcmp(rt->setups[i].agent, agent) == 0)
			return &rt->setups[i];
	for (i = 0; i < rt->nsetups; i++) {
		if (rt->setups[i].cfg != cfg)
			agent_setup_ent_free(&rt->setups[i]);
		else
			rt->setups[k++] = rt->setups[i];
	}
	rt->nsetups = k;
	if (!rt->setups)
		rt->setups = xcalloc(AGENT_SETUP_CACHE, sizeof(*rt->setups));
	if (rt->nsetups == AGENT_SETUP_CACHE) {
		agent_setup_ent_free(&rt->setups[0]);
		memmove(rt->setups, rt->setups + 1,
			(AGENT_SETUP_CACHE - 1) * sizeof(*rt->setups));
		rt->nsetups--;
	}
	e = &rt->setups[rt->nsetups++];
	memset(e, 0, sizeof(*e));
	e->cfg = config_ref((struct gw_config *)cfg);
	e->agent = xstrdup(agent);
	return e;
}

/* A copy of a chain (new references to the same targets). */
static struct agent_target **agent_chain_share(struct agent_target **v,
					       size_t n)
{
	struct agent_target **out = xcalloc(n, sizeof(*out));
	size_t i;

	for (i = 0; i < n; i++) {
		atomic_fetch_add(&v[i]->refs, 1);
		out[i] = v[i];
	}
	return out;
}

int agent_resolve_chain(struct agent_rt *rt, const struct gw_config *cfg,
			const char *agent_id, const char *override,
			struct agent_target ***out, size_t *n, char **err)
{
	struct agent_setup_ent *e;
	int rc;

	/* An override names its own model: resolved each time (rare). A
	 * snapshot never changes, so its chain is resolved once. */
	if (!rt || (override && *override))
		return agent_chain_new(rt, cfg, agent_id, override, out, n,
				       err);
	pthread_mutex_lock(&rt->cache_mu);
	e = agent_setup_get(rt, cfg, agent_id);
	if (e->chain) {
		*out = agent_chain_share(e->chain, e->nchain);
		*n = e->nchain;
		pthread_mutex_unlock(&rt->cache_mu);
		*err = NULL;
		return GW_OK;
	}
	pthread_mutex_unlock(&rt->cache_mu);
	rc = agent_chain_new(rt, cfg, agent_id, NULL, out, n, err);
	if (rc != GW_OK)
		return rc;
	pthread_mutex_lock(&rt->cache_mu);
	e = agent_setup_get(rt, cfg, agent_id);
	if (!e->chain) {
		e->chain = agent_chain_share(*out, *n);
		e->nchain = *n;
	}
	pthread_mutex_unlock(&rt->cache_mu);
	return GW_OK;
}

static char *agent_read_small(const char *path)
{
	char *buf = NULL;
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	buf = xmalloc(AGENT_PROMPT_FILE_MAX + 1);
	while (len < AGENT_PROMPT_FILE_MAX) {
		n = read(fd, buf + len, AGENT_PROMPT_FILE_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	if (!len) {
		free(buf);
		return NULL;
	}
	return buf;
}

#define AGENT_PROMPT_FILES 2
#define AGENT_PROMPT_CACHE 32

struct agent_prompt_file {
	int present;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct agent_prompt_ent {
	char *ws;
	struct agent_prompt_file f[AGENT_PROMPT_FILES];
	char *text;		/* NULL: no prompt */
};

static const char *const agent_prompt_names[AGENT_PROMPT_FILES] = {
	"AGENTS.md", "SOUL.md"
};

static void agent_prompt_stat(const char *ws, struct agent_prompt_file *f)
{
	struct stat sb;

	for (int i = 0; i < AGENT_PROMPT_FILES; i++) {
		char *path = xasprintf("%s/%s", ws, agent_prompt_names[i]);

		memset(&f[i], 0, sizeof(f[i]));
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
			f[i].present = 1;
			f[i].dev = sb.st_dev;
			f[i].ino = sb.st_ino;
			f[i].size = sb.st_size;
			f[i].mtime = sb.st_mtim;
		}
		free(path);
	}
}

static int agent_prompt_same(const struct agent_prompt_file *a,
			     const struct agent_prompt_file *b)
{
	for (int i = 0; i < AGENT_PROMPT_FILES; i++)
		if (a[i].present != b[i].present || a[i].dev != b[i].dev ||
		    a[i].ino != b[i].ino || a[i].size != b[i].size ||
		    a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
		    a[i].mtime.tv_nsec != b[i].mtime.tv_nsec)
			return 0;
	return 1;
}

static char *agent_prompt_read(const char *ws)
{
	char *out = NULL, *path, *text, *tmp;

	for (int i = 0; i < AGENT_PROMPT_FILES; i++) {
		path = xasprintf("%s/%s", ws, agent_prompt_names[i]);
		text = agent_read_small(path);
		free(path);
		if (!text)
			continue;
		tmp = out ? xasprintf("%s\n\n%s", out, text) : xstrdup(text);
		free(out);
		free(text);
		out = tmp;
	}
	return out;
}

/* The prompt of workspace ws: cached while its files' (inode, size,
 * mtime) stay the same (a stat per file, no read, when nothing changed). */
static char *agent_prompt_cached(struct agent_rt *rt, const char *ws)
{
	struct agent_prompt_file now[AGENT_PROMPT_FILES];
	struct agent_prompt_ent *e = NULL;
	char *text = NULL;
	size_t i;

	agent_prompt_stat(ws, now);
	pthread_mutex_lock(&rt->cache_mu);
	for (i = 0; i < rt->nprompts; i++)
		if (strcmp(rt->prompts[i].ws, ws) == 0)
			e = &rt->prompts[i];
	if (e && agent_prompt_same(e->f, now)) {
		text = e->text ? xstrdup(e->text) : NULL;
		pthread_mutex_unlock(&rt->cache_mu);
		return text;
	}
	pthread_mutex_unlock(&rt->cache_mu);
	text = agent_prompt_read(ws);
	pthread_mutex_lock(&rt->cache_mu);
	e = NULL;
	for (i = 0; i < rt->nprompts; i++)
		if (strcmp(rt->prompts[i].ws, ws) == 0)
			e = &rt->prompts[i];
	if (!e && rt->nprompts < AGENT_PROMPT_CACHE) {
		rt->prompts = xrealloc(rt->prompts, (rt->nprompts + 1) *
				       sizeof(*rt->prompts));
		e = &rt->prompts[rt->nprompts++];
		e->ws = xstrdup(ws);
		e->text = NULL;
	}
	if (e) {
		/* A file changed between the stat and the read is seen by
		 * the next call (its stat differs from the one kept). */
		memcpy(e->f, now, sizeof(now));
		free(e->text);
		e->text = text ? xstrdup(text) : NULL;
	}
	pthread_mutex_unlock(&rt->cache_mu);
	return text;
}

/* The workspace directory of an agent (new string). */
static char *agent_workspace_of(struct agent_rt *rt,
				const struct gw_config *cfg,
				const char *agent_id)
{
	json_t *ents = agent_entries(cfg);
	char *ws = agent_workspace(rt, cfg, agent_id,
				   json_object_get(ents, agent_id));

	json_decref(ents);
	return ws;
}

char *agent_workspace_prompt(struct agent_rt *rt, const struct gw_config *cfg,
			     const char *agent_id)
{
	struct agent_setup_ent *e;
	char *ws = NULL, *out;

	if (!rt) {
		ws = agent_workspace_of(rt, cfg, agent_id);
		out = agent_prompt_read(ws);
		free(ws);
		return out;
	}
	/* The directory comes from the snapshot (and the environment,
	 * fixed at start): resolved once per snapshot and agent. */
	pthread_mutex_lock(&rt->cache_mu);
	e = agent_setup_get(rt, cfg, agent_id);
	if (e->ws)
		ws = xstrdup(e->ws);
	pthread_mutex_unlock(&rt->cache_mu);
	if (!ws) {
		ws = agent_workspace_of(rt, cfg, agent_id);
		pthread_mutex_lock(&rt->cache_mu);
		e = agent_setup_get(rt, cfg, agent_id);
		if (!e->ws)
			e->ws = xstrdup(ws);
		pthread_mutex_unlock(&rt->cache_mu);
	}
	out = agent_prompt_cached(rt, ws);
	free(ws);
	return out;
}

/* ---- session keys ---------------------------------------------------------- */

static int agent_has_prefix_ci(const char *s, const char *p)
{
	return strncasecmp(s, p, strlen(p)) == 0;
}

int agent_session_key_reserved(const char *key)
{
	const char *rest = key;
	size_t i;

	if (agent_has_prefix_ci(key, "agent:")) {
		rest = strchr(key + 6, ':');
		rest = rest ? rest + 1 : "";
	}
	for (i = 0; i < ARRAY_SIZE(agent_reserved_prefixes); i++)
		if (agent_has_prefix_ci(key, agent_reserved_prefixes[i]) ||
		    agent_has_prefix_ci(rest, agent_reserved_prefixes[i]))
			return 1;
	return 0;
}

char *agent_session_key_main(const char *agent_id)
{
	char *l = agent_lower(agent_id && *agent_id ? agent_id
						    : AGENT_DEFAULT_ID);
	char *r = xasprintf("agent:%s:main", l);

	free(l);
	return r;
}

char *agent_session_key_agent(const char *key)
{
	const char *e;
	char *id, *l;

	if (!key || !agent_has_prefix_ci(key, "agent:"))
		return NULL;
	e = strchr(key + 6, ':');
	if (!e || e == key + 6)
		return NULL;
	id = xstrndup(key + 6, (size_t)(e - key - 6));
	l = agent_lower(id);
	free(id);
	return l;
}

static int agent_key_chars_ok(const char *k)
{
	for (; *k; k++)
		if ((unsigned char)*k < 0x20)
			return 0;
	return 1;
}

enum agent_key_verdict agent_session_key_check(const char *key)
{
	const char *e;

	if (!key || !*key || strlen(key) > AGENT_SESSION_KEY_MAX ||
	    !agent_key_chars_ok(key))
		return AGENT_KEY_INVALID;
	if (agent_session_key_reserved(key))
		return AGENT_KEY_RESERVED;
	if (agent_has_prefix_ci(key, "agent:")) {
		e = strchr(key + 6, ':');
		if (!e || e == key + 6 || !e[1])
			return AGENT_KEY_INVALID;
	}
	return AGENT_KEY_OK;
}

int agent_session_key_canon(struct agent_rt *rt, const char *key, char **out,
			    char **err)
{
	char *id;

	*out = NULL;
	switch (agent_session_key_check(key)) {
	case AGENT_KEY_OK:
		break;
	case AGENT_KEY_RESERVED:
		*err = xstrdup("session key cannot use reserved internal "
			       "session namespaces");
		return GW_EINVAL;
	default:
		*err = xstrdup("invalid session key");
		return GW_EINVAL;
	}
	id = agent_session_key_agent(key);
	if (id) {
		*out = xasprintf("agent:%s:%s", id, strchr(key + 6, ':') + 1);
		free(id);
		return GW_OK;
	}
	if (strcasecmp(key, "main") == 0 || strcasecmp(key, "global") == 0)
		*out = xasprintf("agent:%s:main", agent_default_id(rt));
	else
		*out = xasprintf("agent:%s:%s", agent_default_id(rt), key);
	return GW_OK;
}

int agent_session_key_for_http(const char *agent_id, const char *prefix,
			       const char *user, const char *explicit_key,
			       char **out, char **err)
{
	char uuid[37], *id;

	*out = NULL;
	if (explicit_key) {
		switch (agent_session_key_check(explicit_key)) {
		case AGENT_KEY_OK:
			*out = xstrdup(explicit_key);
			return GW_OK;
		case AGENT_KEY_RESERVED:
			*err = xstrdup("`x-openclaw-session-key` cannot use "
				       "reserved internal session "
				       "namespaces.");
			return GW_EINVAL;
		default:
			*err = xstrdup("invalid `x-openclaw-session-key`.");
			return GW_EINVAL;
		}
	}
	if (user && *user) {
		if (strlen(user) > AGENT_HTTP_USER_MAX) {
			*err = xasprintf("`user` is too long (max %d).",
					 AGENT_HTTP_USER_MAX);
			return GW_EINVAL;
		}
		if (!agent_key_chars_ok(user)) {
			*err = xstrdup("invalid `user`.");
			return GW_EINVAL;
		}
	}
	id = agent_lower(agent_id && *agent_id ? agent_id : AGENT_DEFAULT_ID);
	if (user && *user) {
		*out = xasprintf("agent:%s:%s-user:%s", id, prefix, user);
	} else {
		store_uuid7(uuid);
		*out = xasprintf("agent:%s:%s:%s", id, prefix, uuid);
	}
	free(id);
	return GW_OK;
}

/* ---- runtime -------------------------------------------------------------- */

void agent_rt_set_observer(struct agent_rt *rt, const struct agent_observer *o)
{
	pthread_mutex_lock(&rt->mu);
	if (o)
		rt->obs = *o;
	else
		memset(&rt->obs, 0, sizeof(rt->obs));
	pthread_mutex_unlock(&rt->mu);
}

json_t *agent_events_new(struct agent_rt *rt)
{
	struct agent_observer o;

	pthread_mutex_lock(&rt->mu);
	o = rt->obs;
	pthread_mutex_unlock(&rt->mu);
	if (o.subscribed ? !o.subscribed(o.arg)
			 : o.listening && !o.listening(o.arg)) {
		atomic_fetch_add(&rt->sess_ev_skipped, 1);
		return NULL;
	}
	atomic_fetch_add(&rt->sess_ev_built, 1);
	/* The job's events are posted by the store writer: what this
	 * iteration of the agent loop holds goes out before them. */
	agent_loop_flush();
	return json_array();
}

int agent_listening(struct agent_rt *rt)
{
	struct agent_observer o;

	pthread_mutex_lock(&rt->mu);
	o = rt->obs;
	pthread_mutex_unlock(&rt->mu);
	return !o.listening || o.listening(o.arg);
}

void agent_session_event_counts(struct agent_rt *rt, int64_t *built,
				int64_t *skipped)
{
	*built = atomic_load(&rt->sess_ev_built);
	*skipped = atomic_load(&rt->sess_ev_skipped);
}

void agent_emit(struct agent_rt *rt, json_t *events)
{
	struct agent_observer o;
	json_t *e;
	size_t i;

	pthread_mutex_lock(&rt->mu);
	o = rt->obs;
	pthread_mutex_unlock(&rt->mu);
	json_array_foreach(events, i, e) {
		if (!o.on_session)
			break;
		o.on_session(o.arg,
			json_string_value(json_object_get(e, "event")),
			json_string_value(json_object_get(e, "key")),
			json_incref(json_object_get(e, "payload")));
	}
	json_decref(events);
}

int agent_post(struct agent_rt *rt, void (*fn)(void *arg), void *arg)
{
	return provider_post(rt->prov, fn, arg);
}

int agent_on_thread(struct agent_rt *rt)
{
	return provider_on_thread(rt->prov);
}

int agent_rt_new(const struct agent_rt_opts *o, struct agent_rt **out)
{
	struct agent_rt *rt = xcalloc(1, sizeof(*rt));
	int r;

	rt->store = o->store;
	rt->state_dir = xstrdup(o->state_dir ? o->state_dir : ".");
	pthread_mutex_init(&rt->mu, NULL);
	pthread_mutex_init(&rt->cache_mu, NULL);
	pthread_cond_init(&rt->idle, NULL);
	store_session_recover(rt->store);
	r = provider_new(&rt->prov);
	if (r == GW_OK)	/* a new thread: the post cannot fail */
		provider_post(rt->prov, agent_loop_init, rt);
	if (r != GW_OK) {
		pthread_mutex_destroy(&rt->mu);
		pthread_mutex_destroy(&rt->cache_mu);
		pthread_cond_destroy(&rt->idle);
		free(rt->state_dir);
		free(rt);
		return r;
	}
	*out = rt;
	return GW_OK;
}

void agent_rt_stop(struct agent_rt *rt, int wait_ms)
{
	if (rt)
		run_abort_all(rt, wait_ms);
}

int agent_rt_free(struct agent_rt *rt, int wait_ms)
{
	int n;

	if (!rt)
		return GW_OK;
	run_abort_all(rt, wait_ms);
	/* A run still ending is finished by a store job whose callback (on
	 * the writer) reaches the provider and this runtime: freeing them
	 * under it is a use after free. Only a held-up store or agent
	 * thread gets here; leaving the runtime allocated is the safe way
	 * out. */
	if ((n = run_live_count(rt)) > 0) {
		log_error("agent", "%d run(s) still ending: the agent runtime "
			  "is left allocated", n);
		return GW_EBUSY;
	}
	/* So is a start still queued on the store (run_start_async). */
	if ((n = atomic_load(&rt->starting)) > 0) {
		log_error("agent", "%d start(s) still queued: the agent "
			  "runtime is left allocated", n);
		return GW_EBUSY;
	}
	/* Leaving the list (run_unlink) is a run's last touch of the
	 * runtime; the agent thread is joined here. */
	provider_free(rt->prov);
	json_decref(rt->sysevents);
	for (size_t i = 0; i < rt->nprompts; i++) {
		free(rt->prompts[i].ws);
		free(rt->prompts[i].text);
	}
	free(rt->prompts);
	agent_setup_cache_free(rt);
	runidx_free(&rt->runidx);
	pthread_mutex_destroy(&rt->mu);
	pthread_mutex_destroy(&rt->cache_mu);
	pthread_cond_destroy(&rt->idle);
	free(rt->state_dir);
	free(rt);
	return GW_OK;
}

/* ---- embeddings ------------------------------------------------------------ */

struct agent_embed_job {
	struct agent_rt *rt;
	struct agent_target *t;
	json_t *inputs;
	agent_embed_fn fn;
	void *arg;
};

static void agent_embed_job_free(struct agent_embed_job *j)
{
	agent_target_free(j->t);
	json_decref(j->inputs);
	free(j);
}

static void agent_embed_event(void *arg, const char *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
}

static void agent_embed_done(void *arg, int status, int curl_err,
			     const char *curl_msg, const char *body,
			     size_t blen, int overflow)
{
	struct agent_embed_job *j = arg;
	json_t *o = NULL, *vec = NULL, *d, *e, *m;
	char *err = NULL;
	int64_t toks = 0;
	size_t i;

	if (curl_err) {
		err = xasprintf("provider '%s' (model %s): upstream request "
				"failed: %s", j->t->provider, j->t->model,
				curl_msg ? curl_msg : "transport error");
		j->fn(j->arg, NULL, 0, err, curl_err == CURLE_OPERATION_TIMEDOUT
						? 504 : 502);
		goto out;
	}
	o = json_loadb(body, blen, 0, NULL);
	if (status < 200 || status >= 300 || overflow) {
		e = json_object_get(o, "error");
		m = json_object_get(e, "message");
		err = xasprintf("provider '%s' (model %s) returned HTTP %d%s%s",
				j->t->provider, j->t->model, status,
				json_is_string(m) ? ": " : "",
				json_is_string(m) ? json_string_value(m) : "");
		j->fn(j->arg, NULL, 0, err, status == 429 ? 429 :
		      status == 400 ? 400 : 502);
		goto out;
	}
	vec = json_array();
	json_array_foreach(json_object_get(o, "data"), i, d) {
		e = json_object_get(d, "embedding");
		if (!json_is_array(e))
			break;
		json_array_append(vec, e);
	}
	if (json_array_size(vec) != json_array_size(j->inputs)) {
		err = xasprintf("provider '%s' (model %s): unreadable "
				"embeddings response", j->t->provider,
				j->t->model);
		j->fn(j->arg, NULL, 0, err, 502);
		goto out;
	}
	toks = json_integer_value(json_object_get(json_object_get(o, "usage"),
						  "prompt_tokens"));
	j->fn(j->arg, vec, toks, NULL, 200);
out:
	free(err);
	json_decref(vec);
	json_decref(o);
	agent_embed_job_free(j);
}

static void agent_embed_start(void *arg)
{
	struct agent_embed_job *j = arg;
	struct provider_http_req hr = {0};
	struct provider_http_cbs cbs = {0};
	struct provider_http *h;
	char *url, *body, *err = NULL, *msg;
	json_t *b;

	url = xasprintf("%s/embeddings", j->t->base);
	b = json_pack("{s:s,s:O}", "model", j->t->model, "input", j->inputs);
	body = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	hr.url = url;
	hr.body = body;
	hr.headers = j->t->headers;
	hr.api_key = j->t->api_key;
	hr.timeout_ms = j->t->timeout_ms;
	hr.connect_timeout_ms = AGENT_CONNECT_TIMEOUT_MS;
	cbs.on_event = agent_embed_event;
	cbs.on_done = agent_embed_done;
	cbs.arg = j;
	h = provider_http_start(j->rt->prov, &hr, &cbs, &err);
	free(url);
	free(body);
	if (!h) {
		msg = xasprintf("provider '%s': %s", j->t->provider, err);
		j->fn(j->arg, NULL, 0, msg, 502);
		free(msg);
		free(err);
		agent_embed_job_free(j);
	}
}

/* The embedding model reference of an agent: memorySearch {provider,
 * model} on the entry or the defaults. New string or NULL. */
static char *agent_embed_ref(const struct gw_config *cfg, const char *id)
{
	json_t *ents = agent_entries(cfg);
	const json_t *ms = json_object_get(json_object_get(ents, id),
					   "memorySearch"), *p, *m;
	char *r = NULL;

	if (!json_is_object(ms))
		ms = config_get(agent_cfg_root(cfg),
				"agents.defaults.memorySearch");
	p = json_object_get(ms, "provider");
	m = json_object_get(ms, "model");
	if (json_is_string(m) && json_string_length(m))
		r = json_is_string(p) && json_string_length(p) &&
		    !strchr(json_string_value(m), '/')
			? xasprintf("%s/%s", json_string_value(p),
				    json_string_value(m))
			: xstrdup(json_string_value(m));
	json_decref(ents);
	return r;
}

int agent_embed(struct agent_rt *rt, const char *agent_id,
		const char *model_override, json_t *inputs, agent_embed_fn fn,
		void *arg, char **err)
{
	struct gw_config *cfg = config_current();
	struct agent_embed_job *j = NULL;
	struct agent_target *t = NULL;
	char *id = NULL, *ref = NULL;
	int r = GW_EINVAL, stopping;

	*err = NULL;
	pthread_mutex_lock(&rt->mu);
	stopping = rt->stopping;
	pthread_mutex_unlock(&rt->mu);
	if (stopping) {
		*err = xstrdup("gateway is stopping");
		r = GW_EUNAVAIL;
		goto out;
	}
	id = agent_canon_id(rt, cfg, agent_id);
	if (!id) {
		*err = xasprintf("Unknown agent '%s'.", agent_id);
		goto out;
	}
	ref = model_override && *model_override ? xstrdup(model_override)
						: agent_embed_ref(cfg, id);
	if (!ref) {
		*err = xasprintf("no embedding model configured for agent "
				 "'%s' (set agents.defaults.memorySearch."
				 "{provider, model} or send x-openclaw-model)",
				 id);
		goto out;
	}
	t = agent_target_new(rt, cfg, ref, err);
	if (!t)
		goto out;
	if (t->error) {
		*err = xstrdup(t->error);
		goto out;
	}
	j = xcalloc(1, sizeof(*j));
	j->rt = rt;
	j->t = t;
	t = NULL;
	j->inputs = inputs;
	inputs = NULL;
	j->fn = fn;
	j->arg = arg;
	if (provider_post(rt->prov, agent_embed_start, j) != 0) {
		*err = xstrdup("gateway is stopping");
		agent_embed_job_free(j);
		r = GW_EUNAVAIL;
		goto out;
	}
	r = GW_OK;
out:
	json_decref(inputs);
	agent_target_free(t);
	free(id);
	free(ref);
	config_unref(cfg);
	return r;
}
