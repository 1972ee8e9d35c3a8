/* Secrets: grammars, the provider table, activation into one snapshot per
 * config snapshot, the owner state machine (warm, stale, cold), the log
 * codes, and the logger mask. Values never reach a log line or an issue
 * message; ref ids never reach a log line. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "secrets/secrets-int.h"
#include "secrets/secrets.h"

/* The provider table: one row per source. */
static const struct secrets_provider *const secrets_providers[] = {
	&secrets_env_provider,
	&secrets_file_provider,
	&secrets_exec_provider,
	&secrets_store_provider,
};

struct secrets_entry {
	char *path;		/* dotted config path */
	char *owner;		/* "gateway.auth", "models.providers.x" */
	char *source;
	char *alias;		/* effective provider alias */
	char *id;
	char fp[65];		/* ref + provider definition fingerprint */
	enum secrets_state state;
	char *value;		/* owned secret, NULL when cold */
	char *reason;		/* why it failed (no value, no id) */
	/* activation only: */
	const struct secrets_provider *ops;
	const json_t *def;
	int fail_closed;
};

struct secrets_snapshot {
	struct secrets_entry *v;
	size_t n;
	int warnings;
};

static struct {
	pthread_mutex_t mu;
	enum secrets_scope scope;
	char *state_dir;
	struct store *store;
	int degraded;		/* SECRETS_RELOADER_DEGRADED logged */
} secrets_g = { .mu = PTHREAD_MUTEX_INITIALIZER };

#define SECRETS_MASK_MAX 8192

/* ---- grammars ----------------------------------------------------------- */

int secrets_alias_valid(const char *s)
{
	size_t i;

	if (!s || !(*s >= 'a' && *s <= 'z'))
		return 0;
	for (i = 1; s[i]; i++)
		if (i > 63 || !((s[i] >= 'a' && s[i] <= 'z') ||
				(s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
				s[i] == '-'))
			return 0;
	return 1;
}

int secrets_env_name_valid(const char *s)
{
	size_t i;

	if (!s || !(*s >= 'A' && *s <= 'Z'))
		return 0;
	for (i = 1; s[i]; i++)
		if (i > 127 || !((s[i] >= 'A' && s[i] <= 'Z') ||
				 (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

int secrets_exec_id_valid(const char *s)
{
	const char *seg;
	size_t i;

	if (!s || !isalnum((unsigned char)*s))
		return 0;
	for (i = 1; s[i]; i++)
		if (i > 255 || !(isalnum((unsigned char)s[i]) ||
				 strchr("._:/#-", s[i])))
			return 0;
	/* no "." or ".." segment between slashes */
	for (seg = s; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 :
		     NULL) {
		size_t n = strcspn(seg, "/");

		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
	}
	return 1;
}

int secrets_file_id_valid(const char *s)
{
	size_t i;

	if (!s)
		return 0;
	if (strcmp(s, "value") == 0)
		return 1;
	if (s[0] != '/' || strlen(s) > 1024)
		return 0;
	for (i = 0; s[i]; i++)
		if (s[i] == '~' && s[i + 1] != '0' && s[i + 1] != '1')
			return 0;
	return 1;
}

/* "$NAME" or "${NAME}" (an unresolved ${VAR} stays as text after the
 * config's own substitution): the NAME, written into buf. */
static const char *secrets_shorthand(const char *s, char *buf, size_t len)
{
	size_t n;

	if (!s || s[0] != '$')
		return NULL;
	if (s[1] == '{') {
		n = strlen(s);
		if (n < 4 || s[n - 1] != '}' || n - 3 >= len)
			return NULL;
		memcpy(buf, s + 2, n - 3);
		buf[n - 3] = 0;
	} else {
		if (strlen(s + 1) >= len)
			return NULL;
		strcpy(buf, s + 1);
	}
	return secrets_env_name_valid(buf) ? buf : NULL;
}

int secrets_ref_parse(const json_t *v, const char **source,
		      const char **provider, const char **id)
{
	*source = *provider = *id = NULL;
	if (json_is_object(v) && json_object_get(v, "source")) {
		*source = json_string_value(json_object_get(v, "source"));
		*provider = json_string_value(json_object_get(v, "provider"));
		*id = json_string_value(json_object_get(v, "id"));
		return 1;
	}
	return 0;
}

const json_t *secrets_json_pointer(const json_t *doc, const char *ptr)
{
	char seg[1024];

	if (!ptr || *ptr != '/')
		return NULL;
	while (doc && *ptr == '/') {
		size_t n = 0;
		const char *p = ptr + 1;

		while (*p && *p != '/') {
			if (n + 1 >= sizeof(seg))
				return NULL;
			if (*p == '~') {
				if (p[1] == '0')
					seg[n++] = '~';
				else if (p[1] == '1')
					seg[n++] = '/';
				else
					return NULL;
				p += 2;
				continue;
			}
			seg[n++] = *p++;
		}
		seg[n] = 0;
		ptr = p;
		if (json_is_object(doc)) {
			doc = json_object_get(doc, seg);
		} else if (json_is_array(doc)) {
			char *end;
			unsigned long k;

			if (!n || (n > 1 && seg[0] == '0') ||
			    !isdigit((unsigned char)seg[0]))
				return NULL;
			errno = 0;
			k = strtoul(seg, &end, 10);
			if (*end || errno)
				return NULL;
			doc = json_array_get(doc, k);
		} else {
			return NULL;
		}
	}
	return *ptr ? NULL : doc;
}

/* ---- helpers for providers ---------------------------------------------- */

int64_t secrets_def_int(const json_t *def, const char *key, int64_t dflt,
			int64_t min, int64_t max)
{
	const json_t *v = json_object_get(def, key);

	if (!v)
		return dflt;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return -1;
	return json_integer_value(v);
}

char *secrets_expand_home(const char *path)
{
	const char *home = getenv("HOME");

	if (path[0] == '~' && (path[1] == '/' || !path[1]) && home)
		return xasprintf("%s%s", home, path + 1);
	return xstrdup(path);
}

int secrets_def_keys(const json_t *def, const char *const *allowed,
		     char *why, size_t len)
{
	const char *k;
	const json_t *v;
	size_t i;

	json_object_foreach((json_t *)def, k, v) {
		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], k) == 0)
				break;
		if (!allowed[i]) {
			snprintf(why, len, "unknown key \"%s\"", k);
			return -1;
		}
	}
	return 0;
}

/* ---- the logger mask ---------------------------------------------------- */

/* Registered values, and a 65,536-bit filter of their 3-byte prefixes so
 * that a log line without any of them costs one pass over its bytes. */
static struct {
	pthread_mutex_t mu;
	char **v;
	size_t n;
	uint8_t filter[8192];
} secrets_mask = { .mu = PTHREAD_MUTEX_INITIALIZER };

static unsigned secrets_mask_hash(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return ((unsigned)u[0] * 961u + (unsigned)u[1] * 31u + u[2]) &
	       0xffffu;
}

void secrets_mask_add(const char *value)
{
	unsigned h;
	size_t i;

	if (!value || strlen(value) < 3)
		return;
	pthread_mutex_lock(&secrets_mask.mu);
	for (i = 0; i < secrets_mask.n; i++)
		if (strcmp(secrets_mask.v[i], value) == 0)
			break;
	if (i == secrets_mask.n && secrets_mask.n < SECRETS_MASK_MAX) {
		secrets_mask.v = xrealloc(secrets_mask.v,
					  (secrets_mask.n + 1) *
					  sizeof(char *));
		secrets_mask.v[secrets_mask.n++] = xstrdup(value);
		h = secrets_mask_hash(value);
		secrets_mask.filter[h >> 3] |= (uint8_t)(1u << (h & 7));
	}
	pthread_mutex_unlock(&secrets_mask.mu);
}

/* The log hook: replace every registered value in msg by "***". */
static void secrets_mask_apply(char *msg, size_t cap)
{
	size_t i, len = strlen(msg);
	int hit = 0;

	pthread_mutex_lock(&secrets_mask.mu);
	for (i = 0; i + 3 <= len && !hit; i++) {
		unsigned h = secrets_mask_hash(msg + i);

		hit = secrets_mask.filter[h >> 3] & (1u << (h & 7));
	}
	for (i = 0; hit && i < secrets_mask.n; i++) {
		const char *m = secrets_mask.v[i];
		size_t mn = strlen(m);
		char *p;

		while ((p = strstr(msg, m))) {
			size_t tail = strlen(p + mn);

			if ((size_t)(p - msg) + 3 + tail + 1 > cap)
				break;
			memmove(p + 3, p + mn, tail + 1);
			memcpy(p, "***", 3);
		}
	}
	pthread_mutex_unlock(&secrets_mask.mu);
}

/* ---- snapshot ----------------------------------------------------------- */

static void secrets_snapshot_free(struct secrets_snapshot *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		struct secrets_entry *e = &s->v[i];

		free(e->path);
		free(e->owner);
		free(e->source);
		free(e->alias);
		free(e->id);
		xfree_secret(e->value);
		free(e->reason);
	}
	free(s->v);
	free(s);
}

static int secrets_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct secrets_entry *)a)->path,
		      ((const struct secrets_entry *)b)->path);
}

/* The entry of path: the snapshot is sorted by path (binary search). */
static const struct secrets_entry *
secrets_find(const struct secrets_snapshot *s, const char *path)
{
	struct secrets_entry key = { .path = (char *)path };

	if (!s || !s->n)
		return NULL;
	return bsearch(&key, s->v, s->n, sizeof(*s->v), secrets_entry_cmp);
}

int secrets_lookup(const struct gw_config *cfg, const char *path,
		   const char **value, char *why, size_t len)
{
	const struct secrets_entry *e = cfg ? secrets_find(cfg->secrets, path)
					    : NULL;

	*value = NULL;
	if (!e)
		return GW_ENOTFOUND;
	if (!e->value) {
		snprintf(why, len, "SECRET_SURFACE_UNAVAILABLE: %s is "
			 "unavailable (provider \"%s\", source %s: %s); run "
			 "`openclaw secrets reload` after fixing it", path,
			 e->alias, e->source, e->reason ? e->reason : "?");
		return GW_EUNAVAIL;
	}
	*value = e->value;
	return GW_OK;
}

int secrets_field(const struct gw_config *cfg, const char *path,
		  const json_t *v, char **out, char *why, size_t len)
{
	const char *val;
	int r;

	*out = NULL;
	if (!v || json_is_null(v))
		return GW_OK;
	r = secrets_lookup(cfg, path, &val, why, len);
	if (r == GW_OK) {
		*out = xstrdup(val);
		return GW_OK;
	}
	if (r != GW_ENOTFOUND)
		return r;
	if (json_is_string(v)) {
		*out = xstrdup(json_string_value(v));
		return GW_OK;
	}
	snprintf(why, len, "%s: SecretRef was not resolved", path);
	return GW_EINVAL;
}

int secrets_changed(const struct gw_config *a, const struct gw_config *b)
{
	const struct secrets_snapshot *sa = a ? a->secrets : NULL,
				      *sb = b ? b->secrets : NULL;
	size_t i;

	if ((sa ? sa->n : 0) != (sb ? sb->n : 0))
		return 1;
	for (i = 0; sb && i < sb->n; i++) {
		const struct secrets_entry *x = secrets_find(sa, sb->v[i].path);

		if (!x || x->state != sb->v[i].state ||
		    !x->value != !sb->v[i].value ||
		    (x->value && !util_secret_equal(x->value, sb->v[i].value)))
			return 1;
	}
	return 0;
}

int secrets_warning_count(const struct gw_config *cfg)
{
	return cfg && cfg->secrets ? cfg->secrets->warnings : 0;
}

int secrets_uses_store_name(const struct gw_config *cfg, const char *name)
{
	const struct secrets_snapshot *s = cfg ? cfg->secrets : NULL;
	size_t i;

	for (i = 0; s && i < s->n; i++)
		if (strcmp(s->v[i].source, "store") == 0 &&
		    strcmp(s->v[i].id, name) == 0)
			return 1;
	return 0;
}

static const char *secrets_state_name(enum secrets_state st)
{
	return st == SECRETS_WARM ? "active" : st == SECRETS_STALE ? "stale"
								   : "cold";
}

json_t *secrets_status_json(const struct gw_config *cfg)
{
	const struct secrets_snapshot *s = cfg ? cfg->secrets : NULL;
	json_t *a = json_array();
	size_t i;

	for (i = 0; s && i < s->n; i++)
		json_array_append_new(a, json_pack(
			"{s:s,s:s,s:s,s:s,s:s}", "path", s->v[i].path,
			"owner", s->v[i].owner, "source", s->v[i].source,
			"provider", s->v[i].alias, "state",
			secrets_state_name(s->v[i].state)));
	return a;
}

/* OpenClaw's redacted failure classes (runtime-degraded-state): a reason
 * never carries an id or a value. */
static const char *secrets_reason_class(const char *reason)
{
	if (reason && (strstr(reason, "no such") || strstr(reason, "missing") ||
		       strstr(reason, "not found") ||
		       strstr(reason, "no value")))
		return "secret reference was not found";
	if (reason && strstr(reason, "placeholder"))
		return "resolved secret value is a redaction placeholder";
	return "secret provider failed";
}

/* "models.providers.X" -> provider/X (lower case), "hooks" ->
 * capability/hooks, "channels.C.accounts.A" -> account/C:A, else
 * gateway/<owner>. */
static json_t *secrets_owner_ref(const char *owner)
{
	static const char mp[] = "models.providers.";
	char *id;
	json_t *o;
	size_t i;

	if (strncmp(owner, mp, sizeof(mp) - 1) == 0) {
		id = xstrdup(owner + sizeof(mp) - 1);
		for (i = 0; id[i]; i++)
			id[i] = (char)tolower((unsigned char)id[i]);
		o = json_pack("{s:s,s:s}", "ownerKind", "provider", "ownerId",
			      id);
		free(id);
		return o;
	}
	if (strncmp(owner, "channels.", 9) == 0 &&
	    strstr(owner + 9, ".accounts.")) {
		const char *ch = owner + 9, *acct = strstr(ch, ".accounts.");

		id = xasprintf("%.*s:%s", (int)(acct - ch), ch, acct + 10);
		o = json_pack("{s:s,s:s}", "ownerKind", "account", "ownerId",
			      id);
		free(id);
		return o;
	}
	if (strcmp(owner, "hooks") == 0)
		return json_pack("{s:s,s:s}", "ownerKind", "capability",
				 "ownerId", "hooks");
	return json_pack("{s:s,s:s}", "ownerKind", "gateway", "ownerId",
			 owner);
}

json_t *secrets_degraded_owners_json(const struct gw_config *cfg)
{
	const struct secrets_snapshot *s = cfg ? cfg->secrets : NULL;
	json_t *a = json_array(), *o, *byowner = json_object();
	const struct secrets_entry *e;
	size_t i;

	for (i = 0; s && i < s->n; i++) {
		e = &s->v[i];
		if (e->state == SECRETS_WARM)
			continue;
		o = json_object_get(byowner, e->owner);
		if (!o) {
			o = secrets_owner_ref(e->owner);
			json_object_set_new(o, "state",
					    json_string("unavailable"));
			json_object_set_new(o, "degradationState",
					    json_string("stale"));
			json_object_set_new(o, "paths", json_array());
			json_object_set_new(o, "reason", json_string(
				secrets_reason_class(e->reason)));
			json_object_set_new(byowner, e->owner, o);
			json_array_append(a, o);
		}
		/* One cold path makes the owner cold (OpenClaw: stale only
		 * when every ref keeps its last-known-good value). */
		if (e->state == SECRETS_COLD)
			json_object_set_new(o, "degradationState",
					    json_string("cold"));
		json_array_append_new(json_object_get(o, "paths"),
				      json_string(e->path));
	}
	json_decref(byowner);
	return a;
}

/* ---- collecting refs ---------------------------------------------------- */

struct secrets_collect {
	struct secrets_entry *v;
	size_t n;
	const json_t *root;
	struct config_issues *is;
	int bad;
	enum secrets_scope scope;
	int log;		/* activation (not an audit): log codes */
};

/* Which owner a secret path belongs to, and how it fails. 0 = skip the
 * path (inactive surface). */
static int secrets_owner(const json_t *root, enum secrets_scope scope,
			 const char *const *segs, size_t n, char **owner,
			 int *fail_closed)
{
	const char *mode;

	*fail_closed = 0;
	if (n >= 2 && strcmp(segs[0], "gateway") == 0 &&
	    strcmp(segs[1], "remote") == 0)
		return 0;	/* client credentials: not the gateway's */
	if (n == 3 && strcmp(segs[0], "gateway") == 0 &&
	    strcmp(segs[1], "auth") == 0) {
		mode = json_string_value(config_get(root,
						    "gateway.auth.mode"));
		if (strcmp(segs[2], "token") == 0 && mode &&
		    strcmp(mode, "token") != 0)
			return 0;
		if (strcmp(segs[2], "password") == 0 &&
		    (mode ? strcmp(mode, "password") != 0
			  : config_get(root, "gateway.auth.token") != NULL))
			return 0;
		*owner = xstrdup("gateway.auth");
		*fail_closed = 1;
		return 1;
	}
	if (scope == SECRETS_SCOPE_AUTH)
		return 0;
	if (n >= 3 && strcmp(segs[0], "models") == 0 &&
	    strcmp(segs[1], "providers") == 0) {
		*owner = xasprintf("models.providers.%s", segs[2]);
		return 1;
	}
	if (n >= 3 && strcmp(segs[0], "channels") == 0) {
		/* a channel account (OpenClaw: ownerKind account, ownerId
		 * <channel>:<account>); channel-wide keys belong to the
		 * default account */
		const char *def = json_string_value(json_object_get(
			json_object_get(config_get(root, "channels"), segs[1]),
			"defaultAccount"));

		if (n >= 5 && strcmp(segs[2], "accounts") == 0)
			*owner = xasprintf("channels.%s.accounts.%s", segs[1],
					   segs[3]);
		else
			*owner = xasprintf("channels.%s.accounts.%s", segs[1],
					   def ? def : "default");
		return 1;
	}
	if (n == 2 && strcmp(segs[0], "hooks") == 0) {
		if (!json_is_true(config_get(root, "hooks.enabled")))
			return 0;
		*owner = xstrdup("hooks");
		return 1;
	}
	*owner = xstrdup(segs[0]);
	return 1;
}

/* The provider of a ref: NULL with a reason when it has none. */
static const json_t *secrets_provider_def(const json_t *root,
					  const char *source,
					  const char *alias, int *builtin,
					  char *why, size_t len)
{
	const json_t *def = json_object_get(config_get(root,
						      "secrets.providers"),
					    alias);
	const char *dflt = json_string_value(json_object_get(
		config_get(root, "secrets.defaults"), source));
	const char *ds = json_string_value(json_object_get(def, "source"));

	*builtin = 0;
	if (def && ds && strcmp(ds, source) == 0)
		return def;
	/* env and store have a built-in reader at their default alias */
	if ((strcmp(source, "env") == 0 || strcmp(source, "store") == 0) &&
	    strcmp(alias, dflt ? dflt : "default") == 0) {
		*builtin = 1;
		return NULL;
	}
	if (def)
		snprintf(why, len, "provider \"%s\" has source \"%s\", not "
			 "\"%s\"", alias, ds ? ds : "?", source);
	else
		snprintf(why, len, "provider \"%s\" is not configured "
			 "(secrets.providers.%s)", alias, alias);
	return NULL;
}

static const struct secrets_provider *secrets_ops(const char *source)
{
	size_t i;

	for (i = 0; source && i < ARRAY_SIZE(secrets_providers); i++)
		if (strcmp(secrets_providers[i]->source, source) == 0)
			return secrets_providers[i];
	return NULL;
}

static void secrets_collect_one(struct secrets_collect *c,
				const char *const *segs, size_t n,
				const json_t *v)
{
	struct secrets_entry e = { 0 };
	const char *source, *alias, *id, *dflt;
	char name[160], why[300], *path = NULL, *fpin = NULL, *defs = NULL;
	int builtin = 0, fail_closed = 0;
	size_t i, plen = 0;

	if (json_is_string(v) &&
	    (id = secrets_shorthand(json_string_value(v), name,
				    sizeof(name)))) {
		source = "env";
		alias = NULL;
	} else if (!secrets_ref_parse(v, &source, &alias, &id)) {
		return;
	}
	for (i = 0; i < n; i++)
		plen += strlen(segs[i]) + 1;
	path = xmalloc(plen + 1);
	path[0] = 0;
	for (i = 0; i < n; i++) {
		if (i)
			strcat(path, ".");
		strcat(path, segs[i]);
	}
	/* which surfaces are active is the daemon's view; a CLI (scope
	 * auth) still checks every active ref's structure */
	if (!secrets_owner(c->root, SECRETS_SCOPE_FULL, segs, n, &e.owner,
			   &fail_closed)) {
		if (strncmp(path, "gateway.auth.", 13) == 0 && c->log)
			log_info("secrets", "SECRETS_GATEWAY_AUTH_SURFACE "
				 "path=%s inactive (gateway.auth.mode=%s)",
				 path, json_string_value(config_get(
					 c->root, "gateway.auth.mode")) ?
				 json_string_value(config_get(
					 c->root, "gateway.auth.mode")) :
				 "unset");
		else
			log_debug("secrets", "SECRETS_REF_IGNORED_INACTIVE_"
				  "SURFACE path=%s", path);
		free(path);
		return;
	}
	if (fail_closed && c->log)
		log_info("secrets", "SECRETS_GATEWAY_AUTH_SURFACE path=%s active",
			 path);
	e.path = path;
	e.fail_closed = fail_closed;
	e.ops = secrets_ops(source);
	if (!e.ops) {
		config_issues_add(c->is, path, "SecretRef source must be env, "
				  "file, exec or store");
		goto bad;
	}
	dflt = json_string_value(json_object_get(
		config_get(c->root, "secrets.defaults"), source));
	if (!alias)
		alias = dflt ? dflt : "default";
	if (!secrets_alias_valid(alias)) {
		config_issues_add(c->is, path, "invalid SecretRef provider "
				  "alias (expected ^[a-z][a-z0-9_-]{0,63}$)");
		goto bad;
	}
	e.def = secrets_provider_def(c->root, source, alias, &builtin, why,
				     sizeof(why));
	if (!e.def && !builtin) {
		config_issues_add(c->is, path, "%s", why);
		goto bad;
	}
	if (!id || !e.ops->id_valid(id, e.def)) {
		config_issues_add(c->is, path, "invalid %s SecretRef id for "
				  "provider \"%s\"", source, alias);
		goto bad;
	}
	if (c->scope == SECRETS_SCOPE_AUTH && !fail_closed) {
		free(e.owner);
		free(path);
		return;
	}
	e.source = xstrdup(source);
	e.alias = xstrdup(alias);
	e.id = xstrdup(id);
	defs = e.def ? json_dumps(e.def, JSON_COMPACT | JSON_SORT_KEYS)
		     : xstrdup("builtin");
	fpin = xasprintf("%s%c%s%c%s%c%s", source, 0, alias, 0, id, 0, defs);
	util_sha256_hex(fpin, strlen(source) + strlen(alias) + strlen(id) +
			strlen(defs) + 3, e.fp);
	free(fpin);
	free(defs);
	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	c->v[c->n++] = e;
	return;
bad:
	c->bad = 1;
	free(e.owner);
	free(path);
}

/* Expand the table key (segments, "*" = any key) over root. */
static void secrets_walk(struct secrets_collect *c, const json_t *node,
			 char **key, size_t k, size_t nk, const char **segs,
			 size_t depth)
{
	const char *name;
	const json_t *v;

	if (k == nk) {
		secrets_collect_one(c, segs, depth, node);
		return;
	}
	if (!json_is_object(node))
		return;
	if (strcmp(key[k], "*") == 0) {
		json_object_foreach((json_t *)node, name, v) {
			segs[depth] = name;
			secrets_walk(c, v, key, k + 1, nk, segs, depth + 1);
		}
		return;
	}
	v = json_object_get(node, key[k]);
	if (v) {
		segs[depth] = key[k];
		secrets_walk(c, v, key, k + 1, nk, segs, depth + 1);
	}
}

/* Secret fields inside the open "channels" subtree (not in the option
 * table): channel account passwords. */
static const char *const secrets_channel_keys[] = {
	"channels.irc.password",
	"channels.irc.nickserv.password",
	"channels.irc.accounts.*.password",
	"channels.irc.accounts.*.nickserv.password",
};

static void secrets_collect(struct secrets_collect *c)
{
	const struct config_option *t;
	size_t n, i, nt;

	t = config_options_table(&nt);
	n = nt + ARRAY_SIZE(secrets_channel_keys);
	for (i = 0; i < n; i++) {
		char *copy, *save = NULL, *tok, *key[16];
		const char *segs[16];
		size_t nk = 0;

		if (i < nt && t[i].type != CFG_SECRET)
			continue;
		copy = xstrdup(i < nt ? t[i].key
				      : secrets_channel_keys[i - nt]);
		for (tok = strtok_r(copy, ".", &save); tok && nk < 16;
		     tok = strtok_r(NULL, ".", &save))
			key[nk++] = tok;
		secrets_walk(c, c->root, key, 0, nk, segs, 0);
		free(copy);
	}
}

/* ---- providers' definitions --------------------------------------------- */

static void secrets_check_providers(const json_t *root,
				    struct config_issues *is, int *bad)
{
	const json_t *provs = config_get(root, "secrets.providers"), *def,
		     *dflts = config_get(root, "secrets.defaults"), *v;
	const struct secrets_provider *ops;
	const char *alias;
	char why[300];

	if (provs && !json_is_object(provs)) {
		config_issues_add(is, "secrets.providers", "expected object");
		*bad = 1;
		return;
	}
	json_object_foreach((json_t *)provs, alias, def) {
		char *p = xasprintf("secrets.providers.%s", alias);

		if (!secrets_alias_valid(alias)) {
			config_issues_add(is, p, "invalid provider alias "
					  "(expected ^[a-z][a-z0-9_-]{0,63}$)");
			*bad = 1;
		} else if (!json_is_object(def) ||
			   !(ops = secrets_ops(json_string_value(
				   json_object_get(def, "source"))))) {
			config_issues_add(is, p, "provider needs \"source\": "
					  "env, file, exec or store");
			*bad = 1;
		} else if (ops->check && ops->check(def, why,
						    sizeof(why)) < 0) {
			config_issues_add(is, p, "%s", why);
			*bad = 1;
		}
		free(p);
	}
	json_object_foreach((json_t *)dflts, alias, v) {
		if (!secrets_ops(alias) || !json_is_string(v) ||
		    !secrets_alias_valid(json_string_value(v))) {
			char *p = xasprintf("secrets.defaults.%s", alias);

			config_issues_add(is, p, "expected a provider alias "
					  "for source env, file, exec or "
					  "store");
			free(p);
			*bad = 1;
		}
	}
}

/* ---- activation --------------------------------------------------------- */

struct secrets_group {
	const char *alias, *source;
	const struct secrets_provider *ops;
	const json_t *def;
	const char **ids;
	size_t n;
	char **values, **errs;
	char why[300];
	int failed;
	char *owners;		/* for SECRETS_PROVIDER_DEGRADED */
};

static struct secrets_group *secrets_group_get(struct secrets_group **gs,
					       size_t *ng,
					       const struct secrets_entry *e)
{
	size_t i;

	for (i = 0; i < *ng; i++)
		if (strcmp((*gs)[i].alias, e->alias) == 0 &&
		    strcmp((*gs)[i].source, e->source) == 0)
			return &(*gs)[i];
	*gs = xrealloc(*gs, (*ng + 1) * sizeof(**gs));
	memset(&(*gs)[*ng], 0, sizeof(**gs));
	(*gs)[*ng].alias = e->alias;
	(*gs)[*ng].source = e->source;
	(*gs)[*ng].ops = e->ops;
	(*gs)[*ng].def = e->def;
	return &(*gs)[(*ng)++];
}

static size_t secrets_group_add_id(struct secrets_group *g, const char *id)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (strcmp(g->ids[i], id) == 0)
			return i;
	g->ids = xrealloc(g->ids, (g->n + 1) * sizeof(char *));
	g->ids[g->n] = id;
	return g->n++;
}

static void secrets_group_run(struct secrets_group *g)
{
	struct secrets_batch b = {
		.alias = g->alias, .def = g->def, .ids = g->ids, .n = g->n,
	};
	size_t i;

	g->values = b.values = xcalloc(g->n ? g->n : 1, sizeof(char *));
	g->errs = b.errs = xcalloc(g->n ? g->n : 1, sizeof(char *));
	if (g->n > SECRETS_IDS_MAX) {
		snprintf(g->why, sizeof(g->why), "more than %d ids",
			 SECRETS_IDS_MAX);
		g->failed = 1;
	} else if (g->ops->resolve(&b, g->why, sizeof(g->why)) < 0) {
		g->failed = 1;
	}
	for (i = 0; i < g->n; i++) {
		if (g->failed) {
			xfree_secret(g->values[i]);
			g->values[i] = NULL;
		}
		if (g->values[i] && !*g->values[i]) {
			xfree_secret(g->values[i]);
			g->values[i] = NULL;
			free(g->errs[i]);
			g->errs[i] = xstrdup("value is empty");
		}
		if (g->values[i] && strlen(g->values[i]) > SECRETS_VALUE_MAX) {
			xfree_secret(g->values[i]);
			g->values[i] = NULL;
			free(g->errs[i]);
			g->errs[i] = xasprintf("value larger than %u bytes",
					       SECRETS_VALUE_MAX);
		}
		if (g->values[i] &&
		    strcmp(g->values[i], "__OPENCLAW_REDACTED__") == 0) {
			xfree_secret(g->values[i]);
			g->values[i] = NULL;
			free(g->errs[i]);
			g->errs[i] = xstrdup("value is the redaction "
					     "placeholder");
		}
		if (!g->values[i] && !g->errs[i])
			g->errs[i] = xstrdup(g->failed ? g->why : "not found");
	}
}

static void *secrets_group_thread(void *arg)
{
	secrets_group_run(arg);
	return NULL;
}

/* Run every group not marked skipped (failed < 0); the slow ones (exec,
 * file) each on its own thread when there are several. */
static void secrets_groups_run(struct secrets_group *gs, size_t ng,
			       int parallel)
{
	pthread_t *th = xcalloc(ng ? ng : 1, sizeof(pthread_t));
	int *started = xcalloc(ng ? ng : 1, sizeof(int));
	size_t i;

	for (i = 0; i < ng; i++) {
		if (gs[i].failed < 0)
			continue;
		if (parallel && ng > 1 && (strcmp(gs[i].source, "exec") == 0 ||
					   strcmp(gs[i].source, "file") == 0) &&
		    pthread_create(&th[i], NULL, secrets_group_thread,
				   &gs[i]) == 0) {
			started[i] = 1;
			continue;
		}
		secrets_group_run(&gs[i]);
	}
	for (i = 0; i < ng; i++)
		if (started[i])
			pthread_join(th[i], NULL);
	free(th);
	free(started);
}

static void secrets_group_free(struct secrets_group *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		xfree_secret(g->values ? g->values[i] : NULL);
		free(g->errs ? g->errs[i] : NULL);
	}
	free(g->values);
	free(g->errs);
	free(g->ids);
	free(g->owners);
}

/* 1 if the comma-separated list holds item. */
static int secrets_list_has(const char *list, const char *item)
{
	size_t n = strlen(item);

	while (list && *list) {
		size_t k = strcspn(list, ",");

		if (k == n && strncmp(list, item, n) == 0)
			return 1;
		list += k;
		if (*list)
			list++;
	}
	return 0;
}

static void secrets_log(const struct secrets_snapshot *s,
			struct secrets_group *gs, size_t ng)
{
	size_t i, j;
	int degraded = 0;

	for (i = 0; i < s->n; i++) {
		const struct secrets_entry *e = &s->v[i];

		if (e->state == SECRETS_WARM)
			continue;
		/* one line per owner: the first failing entry */
		for (j = 0; j < i; j++)
			if (s->v[j].state != SECRETS_WARM &&
			    strcmp(s->v[j].owner, e->owner) == 0)
				break;
		if (j < i)
			continue;
		degraded = 1;
		if (e->state == SECRETS_COLD)
			log_warn("secrets", "SECRETS_OWNER_UNAVAILABLE owner=%s "
				 "path=%s provider=%s", e->owner, e->path,
				 e->alias);
		log_warn("secrets", "SECRETS_DEGRADED owner=%s state=%s "
			 "provider=%s reason=%s; retry with `openclaw secrets "
			 "reload`", e->owner, secrets_state_name(e->state),
			 e->alias, e->reason ? e->reason : "?");
	}
	for (i = 0; i < ng; i++) {
		for (j = 0; j < s->n; j++) {
			const struct secrets_entry *e = &s->v[j];
			char *o;

			if (e->state == SECRETS_WARM ||
			    strcmp(e->alias, gs[i].alias) != 0 ||
			    strcmp(e->source, gs[i].source) != 0 ||
			    secrets_list_has(gs[i].owners, e->owner))
				continue;
			o = gs[i].owners ? xasprintf("%s,%s", gs[i].owners,
						     e->owner)
					 : xstrdup(e->owner);
			free(gs[i].owners);
			gs[i].owners = o;
		}
		if (gs[i].owners)
			log_warn("secrets", "SECRETS_PROVIDER_DEGRADED "
				 "provider=%s source=%s owners=%s",
				 gs[i].alias, gs[i].source, gs[i].owners);
	}
	pthread_mutex_lock(&secrets_g.mu);
	j = (size_t)secrets_g.degraded;
	secrets_g.degraded = degraded;
	pthread_mutex_unlock(&secrets_g.mu);
	if (degraded && !j)
		log_warn("secrets", "SECRETS_RELOADER_DEGRADED owners=%d",
			 s->warnings);
	else if (!degraded && j)
		log_info("secrets", "SECRETS_RELOADER_RECOVERED");
}

static int secrets_activate(struct gw_config *c, struct config_issues *is)
{
	struct secrets_collect col = { .root = c->root, .is = is };
	struct secrets_snapshot *s = NULL;
	struct secrets_group *gs = NULL;
	struct gw_config *prev = config_current();
	const struct secrets_snapshot *ps = prev ? prev->secrets : NULL;
	size_t ng = 0, i, *slot = NULL, *grp = NULL;
	int r = GW_ECONFIG;

	pthread_mutex_lock(&secrets_g.mu);
	col.scope = secrets_g.scope;
	pthread_mutex_unlock(&secrets_g.mu);
	col.log = col.scope == SECRETS_SCOPE_FULL;
	secrets_check_providers(c->root, is, &col.bad);
	secrets_collect(&col);
	if (col.bad)
		goto out;
	slot = xcalloc(col.n ? col.n : 1, sizeof(size_t));
	grp = xcalloc(col.n ? col.n : 1, sizeof(size_t));
	for (i = 0; i < col.n; i++) {
		struct secrets_group *g = secrets_group_get(&gs, &ng,
							    &col.v[i]);

		grp[i] = (size_t)(g - gs);
		slot[i] = secrets_group_add_id(g, col.v[i].id);
	}
	/* One call per provider, with all its ids; providers in parallel. */
	secrets_groups_run(gs, ng, 1);
	s = xcalloc(1, sizeof(*s));
	for (i = 0; i < col.n; i++) {
		struct secrets_entry *e = &col.v[i];
		struct secrets_group *g = &gs[grp[i]];
		const struct secrets_entry *old;

		if (g->values[slot[i]]) {
			e->value = xstrdup(g->values[slot[i]]);
			e->state = SECRETS_WARM;
			secrets_mask_add(e->value);
			continue;
		}
		e->reason = xstrdup(g->errs[slot[i]]);
		if (e->fail_closed) {
			config_issues_add(is, e->path, "required secret is "
					  "unavailable: provider \"%s\" "
					  "(source %s): %s", e->alias,
					  e->source, e->reason);
			col.bad = 1;
			continue;
		}
		old = secrets_find(ps, e->path);
		if (old && old->value && strcmp(old->fp, e->fp) == 0) {
			e->value = xstrdup(old->value);
			e->state = SECRETS_STALE;
		} else {
			e->state = SECRETS_COLD;
		}
		s->warnings++;
	}
	if (col.bad)
		goto out;
	s->v = col.v;
	s->n = col.n;
	col.v = NULL;
	col.n = 0;
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), secrets_entry_cmp);
	secrets_log(s, gs, ng);
	c->secrets = s;
	s = NULL;
	r = GW_OK;
out:
	for (i = 0; i < col.n; i++) {
		free(col.v[i].path);
		free(col.v[i].owner);
		free(col.v[i].source);
		free(col.v[i].alias);
		free(col.v[i].id);
		xfree_secret(col.v[i].value);
		free(col.v[i].reason);
	}
	free(col.v);
	for (i = 0; i < ng; i++)
		secrets_group_free(&gs[i]);
	free(gs);
	free(slot);
	free(grp);
	secrets_snapshot_free(s);
	config_unref(prev);
	return r;
}

static void secrets_collect_free(struct secrets_collect *col)
{
	size_t i;

	for (i = 0; i < col->n; i++) {
		free(col->v[i].path);
		free(col->v[i].owner);
		free(col->v[i].source);
		free(col->v[i].alias);
		free(col->v[i].id);
		xfree_secret(col->v[i].value);
		free(col->v[i].reason);
	}
	free(col->v);
	col->v = NULL;
	col->n = 0;
}

int secrets_check_refs(const json_t *root, int allow_exec,
		       secrets_check_fn fn, void *arg,
		       struct config_issues *is)
{
	struct secrets_collect col = { .root = root, .is = is,
				       .scope = SECRETS_SCOPE_FULL };
	struct secrets_group *gs = NULL;
	size_t ng = 0, i, *slot = NULL, *grp = NULL;
	int r = GW_ECONFIG;

	secrets_check_providers(root, is, &col.bad);
	secrets_collect(&col);
	if (col.bad)
		goto out;
	slot = xcalloc(col.n ? col.n : 1, sizeof(size_t));
	grp = xcalloc(col.n ? col.n : 1, sizeof(size_t));
	for (i = 0; i < col.n; i++) {
		struct secrets_group *g = secrets_group_get(&gs, &ng,
							    &col.v[i]);

		grp[i] = (size_t)(g - gs);
		slot[i] = secrets_group_add_id(g, col.v[i].id);
	}
	for (i = 0; i < ng; i++)
		if (!allow_exec && strcmp(gs[i].source, "exec") == 0)
			gs[i].failed = -1;
	secrets_groups_run(gs, ng, 0);
	for (i = 0; i < col.n; i++) {
		struct secrets_group *g = &gs[grp[i]];
		int st = g->failed < 0 ? SECRETS_CHECK_SKIPPED :
			 g->values[slot[i]] ? SECRETS_CHECK_OK :
			 SECRETS_CHECK_UNRESOLVED;

		if (fn)
			fn(arg, col.v[i].path, col.v[i].source,
			   col.v[i].alias, st, st == SECRETS_CHECK_UNRESOLVED ?
			   g->errs[slot[i]] : NULL);
	}
	r = GW_OK;
out:
	secrets_collect_free(&col);
	for (i = 0; i < ng; i++)
		secrets_group_free(&gs[i]);
	free(gs);
	free(slot);
	free(grp);
	return r;
}

static int secrets_hook_lookup(const struct gw_config *c, const char *path,
			       const char **value, char *why, size_t len)
{
	return secrets_lookup(c, path, value, why, len);
}

/* config_secret_resolve: one ref, resolved now with the providers of the
 * running config (or of none: env and store only). */
static int secrets_resolve_now(const json_t *v, char **out, char *why,
			       size_t len)
{
	struct gw_config *cur = config_current();
	json_t *root = json_pack("{s:O*,s:{s:{s:{s:O}}}}", "secrets",
				 cur ? config_get(cur->root, "secrets") : NULL,
				 "models", "providers", "x", "apiKey", v);
	struct secrets_collect col = { .root = root,
				       .scope = SECRETS_SCOPE_FULL };
	struct config_issues is = { 0 };
	struct secrets_group g = { 0 };
	int r = -1;

	*out = NULL;
	col.is = &is;
	secrets_collect(&col);
	if (col.bad || col.n != 1) {
		snprintf(why, len, "%s", is.n ? is.v[0].message :
			 "not a string or SecretRef");
		goto out;
	}
	g.alias = col.v[0].alias;
	g.source = col.v[0].source;
	g.ops = col.v[0].ops;
	g.def = col.v[0].def;
	secrets_group_add_id(&g, col.v[0].id);
	secrets_group_run(&g);
	if (!g.values[0]) {
		snprintf(why, len, "provider \"%s\" (source %s): %s", g.alias,
			 g.source, g.errs[0] ? g.errs[0] : "?");
		goto out;
	}
	*out = xstrdup(g.values[0]);
	secrets_mask_add(*out);
	r = 0;
out:
	secrets_group_free(&g);
	secrets_collect_free(&col);
	config_issues_free(&is);
	json_decref(root);
	config_unref(cur);
	return r;
}

static const struct config_secrets_hooks secrets_hooks = {
	.activate = secrets_activate,
	.release = secrets_snapshot_free,
	.lookup = secrets_hook_lookup,
	.changed = secrets_changed,
	.resolve = secrets_resolve_now,
};

void secrets_install(enum secrets_scope scope, const char *state_dir)
{
	pthread_mutex_lock(&secrets_g.mu);
	secrets_g.scope = scope;
	free(secrets_g.state_dir);
	secrets_g.state_dir = state_dir ? xstrdup(state_dir) : NULL;
	pthread_mutex_unlock(&secrets_g.mu);
	config_set_secrets_hooks(&secrets_hooks);
	log_set_mask(secrets_mask_apply);
}

void secrets_set_store(struct store *st)
{
	pthread_mutex_lock(&secrets_g.mu);
	secrets_g.store = st;
	pthread_mutex_unlock(&secrets_g.mu);
}

struct store *secrets_store(void)
{
	struct store *st;

	pthread_mutex_lock(&secrets_g.mu);
	st = secrets_g.store;
	pthread_mutex_unlock(&secrets_g.mu);
	return st;
}

const char *secrets_state_dir(void)
{
	struct config_paths p = { 0 };

	pthread_mutex_lock(&secrets_g.mu);
	if (!secrets_g.state_dir &&
	    config_paths_resolve(&p, NULL, 0) == GW_OK) {
		secrets_g.state_dir = p.state_dir;
		p.state_dir = NULL;
	}
	pthread_mutex_unlock(&secrets_g.mu);
	config_paths_free(&p);
	return secrets_g.state_dir;
}
