/* Device pairing: the in-memory mirror and its durable writes. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include "auth/device.h"
#include "auth/pairing.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-devices.h"

struct pr_token {
	char *role;
	char hash[65];
	json_t *scopes;
	int64_t created, rotated, revoked, last_used;
};

struct pr_device {
	char *id, *public_key, *display_name, *platform, *device_family;
	char *client_id, *client_mode, *remote_ip, *via;
	json_t *roles, *scopes;
	int64_t created, approved;
	struct pr_token *tok;
	size_t ntok;
	struct pr_device *next;
};

struct pr_request {
	char id[37];
	char *device_id, *public_key, *display_name, *platform;
	char *device_family, *client_id, *client_mode, *role, *remote_ip;
	const char *reason;
	json_t *scopes;
	int is_repair;
	int64_t created, updated, expires;
	struct pr_request *next;
};

struct pairing {
	struct store *st;
	pthread_mutex_t mu;	/* the in-memory state (short sections) */
	pthread_mutex_t wmu;	/* serialises durable decisions */
	struct pr_device *devs;
	struct pr_request *reqs;
	size_t nreqs;
};

static const char *const pairing_need_names[] = {
	[PAIRING_OK] = "ok",
	[PAIRING_NOT_PAIRED] = "not-paired",
	[PAIRING_ROLE_UPGRADE] = "role-upgrade",
	[PAIRING_SCOPE_UPGRADE] = "scope-upgrade",
	[PAIRING_METADATA_UPGRADE] = "metadata-upgrade",
};

const char *pairing_need_name(int need)
{
	if (need < 0 || need >= (int)ARRAY_SIZE(pairing_need_names))
		return "not-paired";
	return pairing_need_names[need];
}

/* ---- small helpers ------------------------------------------------------- */

static char *pr_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int pr_streq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static int pr_has(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

int pairing_scope_covered(const json_t *approved, const char *s)
{
	if (!s)
		return 0;
	if (pr_has(approved, s))
		return 1;
	if (strncmp(s, "operator.", 9) == 0 &&
	    pr_has(approved, "operator.admin"))
		return 1;
	if ((strcmp(s, "operator.read") == 0 ||
	     strcmp(s, "operator.talk") == 0) &&
	    pr_has(approved, "operator.write"))
		return 1;
	return 0;
}

/* Strings of arr (deduplicated) as a new array; NULL arr gives []. */
static json_t *pr_strs(const json_t *arr)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && !pr_has(out, json_string_value(v)))
			json_array_append(out, v);
	return out;
}

/* a ∪ b, new array. */
static json_t *pr_union(const json_t *a, const json_t *b)
{
	json_t *out = pr_strs(a), *v;
	size_t i;

	json_array_foreach(b, i, v)
		if (json_is_string(v) && !pr_has(out, json_string_value(v)))
			json_array_append(out, v);
	return out;
}

static int pr_same_set(const json_t *a, const json_t *b)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
		if (!pr_has(b, json_string_value(v)))
			return 0;
	json_array_foreach(b, i, v)
		if (!pr_has(a, json_string_value(v)))
			return 0;
	return 1;
}

static int pr_meta_differs(const char *pinned, const char *claimed)
{
	char *a, *b;
	int d;

	if (!pinned || !*pinned)
		return 0;
	a = device_norm_meta(pinned);
	b = device_norm_meta(claimed);
	d = strcmp(a, b) != 0;
	free(a);
	free(b);
	return d;
}

static void pr_token_clear(struct pr_token *t)
{
	free(t->role);
	json_decref(t->scopes);
}

static void pr_device_free(struct pr_device *d)
{
	size_t i;

	if (!d)
		return;
	free(d->id);
	free(d->public_key);
	free(d->display_name);
	free(d->platform);
	free(d->device_family);
	free(d->client_id);
	free(d->client_mode);
	free(d->remote_ip);
	free(d->via);
	json_decref(d->roles);
	json_decref(d->scopes);
	for (i = 0; i < d->ntok; i++)
		pr_token_clear(&d->tok[i]);
	free(d->tok);
	free(d);
}

/* The store's view of d (borrowed; *tok is an array the caller frees). */
static void pr_dev_row(const struct pr_device *d, struct store_device *row,
		       struct store_device_token **tok)
{
	size_t i;

	*tok = xcalloc(d->ntok + 1, sizeof(**tok));
	for (i = 0; i < d->ntok; i++) {
		(*tok)[i].role = d->tok[i].role;
		(*tok)[i].hash = d->tok[i].hash;
		(*tok)[i].scopes = d->tok[i].scopes;
		(*tok)[i].created = d->tok[i].created;
		(*tok)[i].rotated = d->tok[i].rotated;
		(*tok)[i].revoked = d->tok[i].revoked;
		(*tok)[i].last_used = d->tok[i].last_used;
	}
	*row = (struct store_device){
		.id = d->id, .public_key = d->public_key,
		.display_name = d->display_name, .platform = d->platform,
		.device_family = d->device_family, .client_id = d->client_id,
		.client_mode = d->client_mode, .remote_ip = d->remote_ip,
		.via = d->via, .roles = d->roles, .scopes = d->scopes,
		.created = d->created, .approved = d->approved,
		.tok = *tok, .ntok = d->ntok,
	};
}

/* A token from the store's view of one (owned copies). */
static void pr_token_set(struct pr_token *t,
			 const struct store_device_token *s)
{
	memset(t, 0, sizeof(*t));
	t->role = xstrdup(s->role ? s->role : "operator");
	memcpy(t->hash, s->hash, 65);
	t->scopes = json_deep_copy(s->scopes);
	t->created = s->created;
	t->rotated = s->rotated;
	t->revoked = s->revoked;
	t->last_used = s->last_used;
}

/* A new device from the store's view of one (owned copies). */
static struct pr_device *pr_device_from_row(const struct store_device *s)
{
	struct pr_device *d = xcalloc(1, sizeof(*d));
	size_t i;

	d->id = pr_dup(s->id);
	d->public_key = pr_dup(s->public_key);
	d->display_name = pr_dup(s->display_name);
	d->platform = pr_dup(s->platform);
	d->device_family = pr_dup(s->device_family);
	d->client_id = pr_dup(s->client_id);
	d->client_mode = pr_dup(s->client_mode);
	d->remote_ip = pr_dup(s->remote_ip);
	d->via = pr_dup(s->via);
	d->roles = json_deep_copy(s->roles);
	d->scopes = json_deep_copy(s->scopes);
	d->created = s->created;
	d->approved = s->approved;
	d->ntok = s->ntok;
	d->tok = xcalloc(s->ntok + 1, sizeof(*d->tok));
	for (i = 0; i < s->ntok; i++)
		pr_token_set(&d->tok[i], &s->tok[i]);
	return d;
}

static struct pr_device *pr_device_dup(const struct pr_device *s)
{
	struct store_device row;
	struct store_device_token *tok = NULL;
	struct pr_device *d;

	pr_dev_row(s, &row, &tok);
	d = pr_device_from_row(&row);
	free(tok);
	return d;
}

static void pr_request_free(struct pr_request *r)
{
	if (!r)
		return;
	free(r->device_id);
	free(r->public_key);
	free(r->display_name);
	free(r->platform);
	free(r->device_family);
	free(r->client_id);
	free(r->client_mode);
	free(r->role);
	free(r->remote_ip);
	json_decref(r->scopes);
	free(r);
}

static struct pr_device *pr_find_dev(struct pairing *p, const char *id)
{
	struct pr_device *d;

	for (d = p->devs; d; d = d->next)
		if (strcmp(d->id, id) == 0)
			return d;
	return NULL;
}

static struct pr_token *pr_find_tok(struct pr_device *d, const char *role)
{
	size_t i;

	for (i = 0; d && i < d->ntok; i++)
		if (strcmp(d->tok[i].role, role) == 0)
			return &d->tok[i];
	return NULL;
}

/* Replace (or add) the device with the same id; takes nd. */
static void pr_put_dev(struct pairing *p, struct pr_device *nd)
{
	struct pr_device **pp;

	for (pp = &p->devs; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, nd->id) == 0) {
			nd->next = (*pp)->next;
			pr_device_free(*pp);
			*pp = nd;
			return;
		}
	}
	nd->next = p->devs;
	p->devs = nd;
}

static void pr_del_dev(struct pairing *p, const char *id)
{
	struct pr_device **pp, *d;

	for (pp = &p->devs; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			d = *pp;
			*pp = d->next;
			pr_device_free(d);
			return;
		}
	}
}

/* Unlink the requests matching (request id or device id); NULL = any. */
static void pr_del_req(struct pairing *p, const char *rid, const char *did)
{
	struct pr_request **pp = &p->reqs, *r;

	while ((r = *pp)) {
		if ((rid && strcmp(r->id, rid) == 0) ||
		    (did && strcmp(r->device_id, did) == 0)) {
			*pp = r->next;
			pr_request_free(r);
			p->nreqs--;
			continue;
		}
		pp = &r->next;
	}
}

/* Drop expired requests; returns how many. */
static int pr_prune(struct pairing *p, int64_t now)
{
	struct pr_request **pp = &p->reqs, *r;
	int n = 0;

	while ((r = *pp)) {
		if (r->expires <= now) {
			*pp = r->next;
			pr_request_free(r);
			p->nreqs--;
			n++;
			continue;
		}
		pp = &r->next;
	}
	return n;
}

static struct pr_request *pr_find_req(struct pairing *p, const char *rid,
				      int64_t now)
{
	struct pr_request *r;

	for (r = p->reqs; r; r = r->next)
		if (strcmp(r->id, rid) == 0 && r->expires > now)
			return r;
	return NULL;
}

/* ---- JSON views ---------------------------------------------------------- */

static void pr_set_str(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

/* The pending request; for_event: exactly the device.pair.requested
 * fields (the schema is closed). */
static json_t *pr_req_json(const struct pr_request *r, int for_event)
{
	json_t *o = json_pack("{s:s,s:s,s:s}", "requestId", r->id,
			      "deviceId", r->device_id, "publicKey",
			      r->public_key);

	pr_set_str(o, "displayName", r->display_name);
	pr_set_str(o, "platform", r->platform);
	pr_set_str(o, "deviceFamily", r->device_family);
	pr_set_str(o, "clientId", r->client_id);
	pr_set_str(o, "clientMode", r->client_mode);
	json_object_set_new(o, "role", json_string(r->role));
	json_object_set_new(o, "roles", json_pack("[s]", r->role));
	json_object_set_new(o, "scopes", json_deep_copy(r->scopes));
	pr_set_str(o, "remoteIp", r->remote_ip);
	json_object_set_new(o, "silent", json_false());
	json_object_set_new(o, "isRepair", json_boolean(r->is_repair));
	json_object_set_new(o, "ts", json_integer(r->updated));
	if (!for_event) {
		json_object_set_new(o, "reason", json_string(r->reason));
		json_object_set_new(o, "createdAtMs",
				    json_integer(r->created));
		json_object_set_new(o, "expiresAtMs",
				    json_integer(r->expires));
	}
	return o;
}

static json_t *pr_dev_json(const struct pr_device *d)
{
	json_t *o = json_pack("{s:s,s:s}", "deviceId", d->id, "publicKey",
			      d->public_key), *toks = json_array(), *t;
	size_t i;

	pr_set_str(o, "displayName", d->display_name);
	pr_set_str(o, "platform", d->platform);
	pr_set_str(o, "deviceFamily", d->device_family);
	pr_set_str(o, "clientId", d->client_id);
	pr_set_str(o, "clientMode", d->client_mode);
	if (json_array_size(d->roles))
		json_object_set(o, "role", json_array_get(d->roles, 0));
	json_object_set_new(o, "roles", json_deep_copy(d->roles));
	json_object_set_new(o, "scopes", json_deep_copy(d->scopes));
	json_object_set_new(o, "approvedScopes", json_deep_copy(d->scopes));
	pr_set_str(o, "remoteIp", d->remote_ip);
	json_object_set_new(o, "approvedVia", json_string(d->via));
	json_object_set_new(o, "createdAtMs", json_integer(d->created));
	json_object_set_new(o, "approvedAtMs", json_integer(d->approved));
	for (i = 0; i < d->ntok; i++) {
		const struct pr_token *k = &d->tok[i];

		t = json_pack("{s:s,s:O,s:I}", "role", k->role, "scopes",
			      k->scopes, "createdAtMs",
			      (json_int_t)k->created);
		if (k->rotated)
			json_object_set_new(t, "rotatedAtMs",
					    json_integer(k->rotated));
		if (k->revoked)
			json_object_set_new(t, "revokedAtMs",
					    json_integer(k->revoked));
		if (k->last_used)
			json_object_set_new(t, "lastUsedAtMs",
					    json_integer(k->last_used));
		json_array_append_new(toks, t);
	}
	json_object_set_new(o, "tokens", toks);
	return o;
}

/* ---- store rows ---------------------------------------------------------- */

/* Commit c durably (synchronous=FULL), with d (may be NULL) as c->put. */
static int pr_commit(struct pairing *p, struct store_devices_change *c,
		     const struct pr_device *d)
{
	struct store_device row;
	struct store_device_token *tok = NULL;
	int r;

	if (d) {
		pr_dev_row(d, &row, &tok);
		c->put = &row;
	}
	r = store_devices_commit(p->st, c);
	c->put = NULL;
	free(tok);
	if (r != GW_OK)
		log_error("pairing", "durable write failed: %s",
			  gw_err_str(r));
	return r;
}

/* ---- load ---------------------------------------------------------------- */

static int pr_load_dev(const struct store_device *s, void *arg)
{
	struct pairing *p = arg;
	struct pr_device *d = pr_device_from_row(s);

	d->next = p->devs;
	p->devs = d;
	return 0;
}

static int pr_load_tok(const char *device_id,
		       const struct store_device_token *s, void *arg)
{
	struct pairing *p = arg;
	struct pr_device *d = device_id ? pr_find_dev(p, device_id) : NULL;

	if (!d || !s->hash || strlen(s->hash) != 64)
		return 0;
	d->tok = xrealloc(d->tok, (d->ntok + 1) * sizeof(*d->tok));
	pr_token_set(&d->tok[d->ntok++], s);
	return 0;
}

static int pr_load_req(const struct store_pairing_request *s, void *arg)
{
	struct pairing *p = arg;
	struct pr_request *r;
	int i;

	if (!s->id || strlen(s->id) > 36)
		return 0;
	r = xcalloc(1, sizeof(*r));
	memcpy(r->id, s->id, strlen(s->id) + 1);
	r->device_id = pr_dup(s->device_id);
	r->public_key = pr_dup(s->public_key);
	r->display_name = pr_dup(s->display_name);
	r->platform = pr_dup(s->platform);
	r->device_family = pr_dup(s->device_family);
	r->client_id = pr_dup(s->client_id);
	r->client_mode = pr_dup(s->client_mode);
	r->role = pr_dup(s->role);
	r->scopes = json_deep_copy(s->scopes);
	r->remote_ip = pr_dup(s->remote_ip);
	r->reason = pairing_need_name(PAIRING_NOT_PAIRED);
	for (i = 1; s->reason && i < (int)ARRAY_SIZE(pairing_need_names);
	     i++)
		if (strcmp(s->reason, pairing_need_names[i]) == 0)
			r->reason = pairing_need_names[i];
	r->is_repair = s->is_repair;
	r->created = s->created;
	r->updated = s->updated;
	r->expires = s->expires;
	if (!r->device_id || !r->public_key || !r->role) {
		pr_request_free(r);
		return 0;
	}
	r->next = p->reqs;
	p->reqs = r;
	p->nreqs++;
	return 0;
}

static int pr_load(struct pairing *p)
{
	int rc = store_devices_each(p->st, pr_load_dev, p);

	if (rc == GW_OK)
		rc = store_device_tokens_each(p->st, pr_load_tok, p);
	if (rc == GW_OK)
		rc = store_pairing_requests_each(p->st, pr_load_req, p);
	if (rc != GW_OK)
		log_error("pairing", "cannot load pairing state: %s",
			  gw_err_str(rc));
	return rc;
}

int pairing_open(struct store *st, struct pairing **out)
{
	struct pairing *p = xcalloc(1, sizeof(*p));
	int r;

	p->st = st;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->wmu, NULL);
	r = pr_load(p);
	if (r != GW_OK) {
		pairing_free(p);
		p = NULL;
	}
	*out = p;
	return r;
}

void pairing_free(struct pairing *p)
{
	struct pr_device *d;
	struct pr_request *r;

	if (!p)
		return;
	while ((d = p->devs)) {
		p->devs = d->next;
		pr_device_free(d);
	}
	while ((r = p->reqs)) {
		p->reqs = r->next;
		pr_request_free(r);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->wmu);
	free(p);
}

/* ---- reads (any thread, non-blocking) ------------------------------------ */

static int pr_check_locked(struct pairing *p, const struct pairing_claim *c,
			   int *has_token)
{
	struct pr_device *d = pr_find_dev(p, c->device_id);
	struct pr_token *t;
	size_t i;
	json_t *v;

	if (has_token)
		*has_token = 0;
	if (!d || !pr_streq(d->public_key, c->public_key))
		return PAIRING_NOT_PAIRED;
	if (pr_meta_differs(d->platform, c->platform) ||
	    pr_meta_differs(d->device_family, c->device_family))
		return PAIRING_METADATA_UPGRADE;
	if (!pr_has(d->roles, c->role))
		return PAIRING_ROLE_UPGRADE;
	json_array_foreach(c->scopes, i, v)
		if (!pairing_scope_covered(d->scopes, json_string_value(v)))
			return PAIRING_SCOPE_UPGRADE;
	t = pr_find_tok(d, c->role);
	if (has_token)
		*has_token = t && !t->revoked;
	return PAIRING_OK;
}

int pairing_check(struct pairing *p, const struct pairing_claim *c,
		  int *has_token)
{
	int r;

	pthread_mutex_lock(&p->mu);
	r = pr_check_locked(p, c, has_token);
	pthread_mutex_unlock(&p->mu);
	return r;
}

/* Constant-time equality of two 64-char hex hashes. */
static int pr_hash_eq(const char *a, const char *b)
{
	return CRYPTO_memcmp(a, b, 64) == 0;
}

int pairing_token_check(struct pairing *p, const char *device_id,
			const char *role, const char *token, json_t **scopes)
{
	struct pr_device *d;
	struct pr_token *t;
	char h[65];
	int ok = 0;

	if (!token || !*token || !device_id || !role)
		return 0;
	util_sha256_hex(token, strlen(token), h);
	pthread_mutex_lock(&p->mu);
	d = pr_find_dev(p, device_id);
	t = pr_find_tok(d, role);
	if (t && !t->revoked && pr_hash_eq(t->hash, h)) {
		ok = 1;
		t->last_used = util_now_ms();
		if (scopes)
			*scopes = json_deep_copy(t->scopes);
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

int pairing_token_find(struct pairing *p, const char *role,
		       const char *token, json_t **scopes)
{
	struct pr_device *d;
	struct pr_token *t;
	char h[65];
	int ok = 0;

	if (!token || !*token || !role)
		return 0;
	util_sha256_hex(token, strlen(token), h);
	pthread_mutex_lock(&p->mu);
	for (d = p->devs; d && !ok; d = d->next) {
		t = pr_find_tok(d, role);
		if (t && !t->revoked && pr_hash_eq(t->hash, h)) {
			ok = 1;
			t->last_used = util_now_ms();
			if (scopes)
				*scopes = json_deep_copy(t->scopes);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

json_t *pairing_request(struct pairing *p, const struct pairing_claim *c,
			int need, int *fresh)
{
	struct pr_request *r, *old = NULL, **pp;
	struct store_pairing_request row;
	int64_t now = util_now_ms();
	json_t *ev;

	pthread_mutex_lock(&p->mu);
	pr_prune(p, now);
	for (r = p->reqs; r; r = r->next)
		if (strcmp(r->device_id, c->device_id) == 0)
			old = r;
	*fresh = 1;
	if (old && pr_streq(old->public_key, c->public_key) &&
	    pr_streq(old->role, c->role) &&
	    pr_same_set(old->scopes, c->scopes) &&
	    !pr_meta_differs(old->platform, c->platform) &&
	    !pr_meta_differs(old->device_family, c->device_family)) {
		/* An identical retry: refresh the expiry. */
		*fresh = 0;
		r = old;
		r->updated = now;
		r->expires = now + PAIRING_PENDING_TTL_MS;
		r->reason = pairing_need_name(need);
	} else {
		if (old)
			pr_del_req(p, old->id, NULL);
		while (p->nreqs >= PAIRING_MAX_PENDING) {
			/* Drop the oldest. */
			struct pr_request *o = p->reqs;

			for (r = p->reqs; r; r = r->next)
				if (r->updated < o->updated)
					o = r;
			pr_del_req(p, o->id, NULL);
		}
		r = xcalloc(1, sizeof(*r));
		util_uuid(r->id);
		r->device_id = xstrdup(c->device_id);
		r->public_key = xstrdup(c->public_key);
		r->display_name = pr_dup(c->display_name);
		r->platform = pr_dup(c->platform);
		r->device_family = pr_dup(c->device_family);
		r->client_id = pr_dup(c->client_id);
		r->client_mode = pr_dup(c->client_mode);
		r->role = xstrdup(c->role);
		r->remote_ip = pr_dup(c->remote_ip);
		r->scopes = pr_strs(c->scopes);
		r->reason = pairing_need_name(need);
		r->is_repair = need != PAIRING_NOT_PAIRED ||
			       pr_find_dev(p, c->device_id) != NULL;
		r->created = r->updated = now;
		r->expires = now + PAIRING_PENDING_TTL_MS;
		for (pp = &p->reqs; *pp; pp = &(*pp)->next)
			;
		*pp = r;
		p->nreqs++;
	}
	ev = pr_req_json(r, 1);
	row = (struct store_pairing_request){
		.id = r->id, .device_id = r->device_id,
		.public_key = r->public_key, .display_name = r->display_name,
		.platform = r->platform, .device_family = r->device_family,
		.client_id = r->client_id, .client_mode = r->client_mode,
		.role = r->role, .remote_ip = r->remote_ip,
		.reason = r->reason, .scopes = r->scopes,
		.is_repair = r->is_repair, .created = r->created,
		.updated = r->updated, .expires = r->expires,
	};
	/* copied before it returns: queued under mu, in decision order */
	store_pairing_request_queue(p->st, &row, now);
	pthread_mutex_unlock(&p->mu);
	return ev;
}

json_t *pairing_pending_get(struct pairing *p, const char *request_id)
{
	struct pr_request *r;
	json_t *o = NULL;

	pthread_mutex_lock(&p->mu);
	r = pr_find_req(p, request_id, util_now_ms());
	if (r)
		o = pr_req_json(r, 0);
	pthread_mutex_unlock(&p->mu);
	return o;
}

char *pairing_pending_latest(struct pairing *p)
{
	struct pr_request *r, *best = NULL;
	int64_t now = util_now_ms();
	char *id = NULL;

	pthread_mutex_lock(&p->mu);
	for (r = p->reqs; r; r = r->next)
		if (r->expires > now && (!best || r->updated >= best->updated))
			best = r;
	if (best)
		id = xstrdup(best->id);
	pthread_mutex_unlock(&p->mu);
	return id;
}

json_t *pairing_device_get(struct pairing *p, const char *device_id)
{
	struct pr_device *d;
	json_t *o = NULL;

	pthread_mutex_lock(&p->mu);
	d = pr_find_dev(p, device_id);
	if (d)
		o = pr_dev_json(d);
	pthread_mutex_unlock(&p->mu);
	return o;
}

json_t *pairing_list(struct pairing *p)
{
	json_t *pend = json_array(), *paired = json_array();
	struct pr_request *r;
	struct pr_device *d;
	int64_t now = util_now_ms();

	pthread_mutex_lock(&p->mu);
	for (r = p->reqs; r; r = r->next)
		if (r->expires > now)
			json_array_insert_new(pend, 0, pr_req_json(r, 0));
	for (d = p->devs; d; d = d->next)
		json_array_append_new(paired, pr_dev_json(d));
	pthread_mutex_unlock(&p->mu);
	return json_pack("{s:o,s:o}", "pending", pend, "paired", paired);
}

/* ---- durable decisions --------------------------------------------------- */

static void pr_job_audit(struct store_devices_change *j,
			 const struct pairing_actor *who, const char *action,
			 const char *target, json_t *detail)
{
	j->action = action;
	j->actor = who && who->actor ? who->actor : "gateway";
	j->remote_ip = who ? who->remote_ip : NULL;
	j->target = target;
	j->detail = detail;
}

static void pr_job_clear(struct store_devices_change *j)
{
	json_decref((json_t *)j->detail);
	memset(j, 0, sizeof(*j));
}

/* A fresh token for role in d (replacing any): plain text in *plain. */
static void pr_issue(struct pr_device *d, const char *role,
		     const json_t *scopes, int64_t now, char **plain,
		     int rotate)
{
	struct pr_token *t = pr_find_tok(d, role);
	uint8_t rnd[PAIRING_TOKEN_BYTES];
	int64_t created = now;

	if (!t) {
		d->tok = xrealloc(d->tok, (d->ntok + 1) * sizeof(*d->tok));
		t = &d->tok[d->ntok++];
		memset(t, 0, sizeof(*t));
		t->role = xstrdup(role);
	} else {
		json_decref(t->scopes);
		if (rotate)
			created = t->created;
	}
	util_random(rnd, sizeof(rnd));
	*plain = util_b64url_encode(rnd, sizeof(rnd));
	explicit_bzero(rnd, sizeof(rnd));
	util_sha256_hex(*plain, strlen(*plain), t->hash);
	t->scopes = pr_strs(scopes);
	t->created = created;
	t->rotated = rotate ? now : 0;
	t->revoked = 0;
	t->last_used = 0;
}

/* Token scopes for role from the approved baseline: operator tokens carry
 * the operator scopes, other roles the scopes prefixed "<role>.". */
static json_t *pr_role_scopes(const json_t *approved, const char *role)
{
	json_t *out = json_array(), *v;
	size_t i, n = strlen(role);
	int op = strcmp(role, "operator") == 0;

	json_array_foreach(approved, i, v) {
		const char *s = json_string_value(v);

		if (!s)
			continue;
		if (op ? strncmp(s, "operator.", 9) == 0 :
			 strncmp(s, role, n) == 0 && s[n] == '.')
			json_array_append(out, v);
	}
	return out;
}

/* Pair from a request-like claim into a new device copy. */
static struct pr_device *pr_merge(struct pairing *p, const char *device_id,
				  const char *public_key,
				  const char *display_name,
				  const char *platform,
				  const char *device_family,
				  const char *client_id,
				  const char *client_mode, const char *role,
				  const json_t *scopes, const char *remote_ip,
				  const char *via, int64_t now)
{
	struct pr_device *old = pr_find_dev(p, device_id), *d;
	json_t *tmp;
	size_t i;

	if (old && pr_streq(old->public_key, public_key)) {
		d = pr_device_dup(old);
		tmp = pr_union(d->roles, NULL);
		if (!pr_has(tmp, role))
			json_array_append_new(tmp, json_string(role));
		json_decref(d->roles);
		d->roles = tmp;
		tmp = pr_union(d->scopes, scopes);
		json_decref(d->scopes);
		d->scopes = tmp;
	} else {
		d = xcalloc(1, sizeof(*d));
		d->id = xstrdup(device_id);
		d->public_key = xstrdup(public_key);
		d->roles = json_pack("[s]", role);
		d->scopes = pr_strs(scopes);
		d->created = now;
		d->tok = xcalloc(1, sizeof(*d->tok));
	}
#define PR_SET(f, v) do { if (v) { free(d->f); d->f = xstrdup(v); } } while (0)
	PR_SET(display_name, display_name);
	PR_SET(platform, platform);
	PR_SET(device_family, device_family);
	PR_SET(client_id, client_id);
	PR_SET(client_mode, client_mode);
	PR_SET(remote_ip, remote_ip);
#undef PR_SET
	free(d->via);
	d->via = xstrdup(via);
	d->approved = now;
	/* Active tokens follow the new approval of their role. */
	for (i = 0; i < d->ntok; i++) {
		if (d->tok[i].revoked)
			continue;
		json_decref(d->tok[i].scopes);
		d->tok[i].scopes = pr_role_scopes(d->scopes, d->tok[i].role);
	}
	return d;
}

int pairing_approve(struct pairing *p, const char *request_id,
		    const struct pairing_actor *who, json_t **device,
		    char **device_id)
{
	struct store_devices_change j = {0};
	struct pr_request *r;
	struct pr_device *d = NULL;
	int64_t now = util_now_ms();
	char rid[37];
	int rc;

	pthread_mutex_lock(&p->wmu);
	pthread_mutex_lock(&p->mu);
	r = pr_find_req(p, request_id, now);
	if (!r) {
		pthread_mutex_unlock(&p->mu);
		rc = GW_ENOTFOUND;
		goto out;
	}
	memcpy(rid, r->id, sizeof(rid));
	d = pr_merge(p, r->device_id, r->public_key, r->display_name,
		     r->platform, r->device_family, r->client_id,
		     r->client_mode, r->role, r->scopes, r->remote_ip,
		     "operator", now);
	pthread_mutex_unlock(&p->mu);
	j.drop_request_id = rid;
	pr_job_audit(&j, who, "device.pair.approve", d->id,
		     json_pack("{s:s,s:O,s:O}", "requestId", rid, "roles",
			       d->roles, "scopes", d->scopes));
	rc = pr_commit(p, &j, d);
	if (rc != GW_OK)
		goto out;
	if (device_id)
		*device_id = xstrdup(d->id);
	if (device)
		*device = pr_dev_json(d);
	pthread_mutex_lock(&p->mu);
	pr_del_req(p, rid, NULL);
	pr_put_dev(p, d);
	d = NULL;
	pthread_mutex_unlock(&p->mu);
out:
	pthread_mutex_unlock(&p->wmu);
	pr_device_free(d);
	pr_job_clear(&j);
	return rc;
}

int pairing_approve_silent(struct pairing *p, const struct pairing_claim *c,
			   const struct pairing_actor *who, char **request_id,
			   char **token, int64_t *issued_at)
{
	struct store_devices_change j = {0};
	struct pr_device *d;
	json_t *ts;
	int64_t now = util_now_ms();
	char rid[37];
	int rc;

	util_uuid(rid);
	pthread_mutex_lock(&p->wmu);
	pthread_mutex_lock(&p->mu);
	d = pr_merge(p, c->device_id, c->public_key, c->display_name,
		     c->platform, c->device_family, c->client_id,
		     c->client_mode, c->role, c->scopes, c->remote_ip,
		     "silent", now);
	pthread_mutex_unlock(&p->mu);
	ts = pr_role_scopes(d->scopes, c->role);
	pr_issue(d, c->role, ts, now, token, 0);
	json_decref(ts);
	j.drop_requests_of = d->id;
	pr_job_audit(&j, who, "device.pair.approve.silent", d->id,
		     json_pack("{s:s,s:O,s:O}", "requestId", rid, "roles",
			       d->roles, "scopes", d->scopes));
	rc = pr_commit(p, &j, d);
	if (rc != GW_OK) {
		xfree_secret(*token);
		*token = NULL;
		pr_device_free(d);
		goto out;
	}
	*issued_at = now;
	*request_id = xstrdup(rid);
	pthread_mutex_lock(&p->mu);
	pr_del_req(p, NULL, d->id);
	pr_put_dev(p, d);
	pthread_mutex_unlock(&p->mu);
out:
	pthread_mutex_unlock(&p->wmu);
	pr_job_clear(&j);
	return rc;
}

int pairing_reject(struct pairing *p, const char *request_id,
		   const struct pairing_actor *who, char **device_id)
{
	struct store_devices_change j = {0};
	struct pr_request *r;
	char rid[37], *did = NULL;
	int rc;

	pthread_mutex_lock(&p->wmu);
	pthread_mutex_lock(&p->mu);
	r = pr_find_req(p, request_id, util_now_ms());
	if (r) {
		memcpy(rid, r->id, sizeof(rid));
		did = xstrdup(r->device_id);
	}
	pthread_mutex_unlock(&p->mu);
	if (!did) {
		rc = GW_ENOTFOUND;
		goto out;
	}
	j.drop_request_id = rid;
	pr_job_audit(&j, who, "device.pair.reject", did,
		     json_pack("{s:s}", "requestId", rid));
	rc = pr_commit(p, &j, NULL);
	if (rc != GW_OK)
		goto out;
	pthread_mutex_lock(&p->mu);
	pr_del_req(p, rid, NULL);
	pthread_mutex_unlock(&p->mu);
	if (device_id) {
		*device_id = did;
		did = NULL;
	}
out:
	pthread_mutex_unlock(&p->wmu);
	free(did);
	pr_job_clear(&j);
	return rc;
}

int pairing_remove(struct pairing *p, const char *device_id,
		   const struct pairing_actor *who, json_t **removed)
{
	struct store_devices_change j = {0};
	struct pr_device *d;
	json_t *snap = NULL;
	int rc;

	pthread_mutex_lock(&p->wmu);
	pthread_mutex_lock(&p->mu);
	d = pr_find_dev(p, device_id);
	if (d)
		snap = pr_dev_json(d);
	pthread_mutex_unlock(&p->mu);
	if (!snap) {
		rc = GW_ENOTFOUND;
		goto out;
	}
	j.remove_id = device_id;
	pr_job_audit(&j, who, "device.pair.remove", device_id, NULL);
	rc = pr_commit(p, &j, NULL);
	if (rc != GW_OK)
		goto out;
	pthread_mutex_lock(&p->mu);
	pr_del_dev(p, device_id);
	pr_del_req(p, NULL, device_id);
	pthread_mutex_unlock(&p->mu);
	if (removed) {
		*removed = snap;
		snap = NULL;
	}
out:
	pthread_mutex_unlock(&p->wmu);
	json_decref(snap);
	pr_job_clear(&j);
	return rc;
}

int pairing_rename(struct pairing *p, const char *device_id,
		   const char *name, const struct pairing_actor *who)
{
	struct store_devices_change j = {0};
	struct pr_device *d;
	int found, rc;

	pthread_mutex_lock(&p->wmu);
	pthread_mutex_lock(&p->mu);
	found = pr_find_dev(p, device_id) != NULL;
	pthread_mutex_unlock(&p->mu);
	if (!found) {
		rc = GW_ENOTFOUND;
		goto out;
	}
	j.rename_id = device_id;
	j.rename_to = name;
	pr_job_audit(&j, who, "device.pair.rename", device_id, NULL);
	rc = pr_commit(p, &j, NULL);
	if (rc != GW_OK)
		goto out;
	pthread_mutex_lock(&p->mu);
	if ((d = pr_find_dev(p, device_id))) {
		free(d->display_name);
		d->display_name = pr_dup(name);
	}
	pthread_mutex_unlock(&p->mu);
out:
	pthread_mutex_unlock(&p->wmu);
	pr_job_clear(&j);
	return rc;
}

/* Copy of the device for a token change; GW_ENOTFOUND when the device is
 * unknown or the role is not approved. */
static int pr_dev_for_role(struct pairing *p, const char *device_id,
			   const char *role, struct pr_device **out)
{
	struct pr_device *d;
	int rc = GW_ENOTFOUND;

	pthread_mutex_lock(&p->mu);
	d = pr_find_dev(p, device_id);
	if (d && pr_has(d->roles, role)) {
		*out = pr_device_dup(d);
		rc = GW_OK;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int pr_token_commit(struct pairing *p, struct pr_device *d,
			   struct store_devices_change *j)
{
	int rc;

	rc = pr_commit(p, j, d);
	if (rc == GW_OK) {
		pthread_mutex_lock(&p->mu);
		pr_put_dev(p, d);
		pthread_mutex_unlock(&p->mu);
	} else {
		pr_device_free(d);
	}
	return rc;
}

int pairing_token_ensure(struct pairing *p, const char *device_id,
			 const char *role, char **token, int64_t *issued_at)
{
	struct store_devices_change j = {0};
	struct pr_device *d = NULL;
	struct pr_token *t;
	json_t *ts;
	int64_t now = util_now_ms();
	int rc;

	pthread_mutex_lock(&p->wmu);
	rc = pr_dev_for_role(p, device_id, role, &d);
	if (rc != GW_OK)
		goto out;
	t = pr_find_tok(d, role);
	if (t && !t->revoked) {
		pr_device_free(d);
		rc = GW_EEXIST;
		goto out;
	}
	ts = pr_role_scopes(d->scopes, role);
	pr_issue(d, role, ts, now, token, 0);
	json_decref(ts);
	pr_job_audit(&j, NULL, "device.token.issue", device_id,
		     json_pack("{s:s}", "role", role));
	rc = pr_token_commit(p, d, &j);
	if (rc != GW_OK) {
		xfree_secret(*token);
		*token = NULL;
	} else {
		*issued_at = now;
	}
out:
	pthread_mutex_unlock(&p->wmu);
	pr_job_clear(&j);
	return rc;
}

int pairing_token_rotate(struct pairing *p, const char *device_id,
			 const char *role, const json_t *scopes,
			 const struct pairing_actor *who, char **token,
			 json_t **scopes_out, int64_t *rotated_at)
{
	struct store_devices_change j = {0};
	struct pr_device *d = NULL;
	struct pr_token *t;
	json_t *ts = NULL, *v;
	int64_t now = util_now_ms();
	size_t i;
	int rc;

	pthread_mutex_lock(&p->wmu);
	rc = pr_dev_for_role(p, device_id, role, &d);
	if (rc != GW_OK)
		goto out;
	if (scopes) {
		json_array_foreach(scopes, i, v) {
			if (!pairing_scope_covered(d->scopes,
						   json_string_value(v))) {
				pr_device_free(d);
				rc = GW_EFORBIDDEN;
				goto out;
			}
		}
		ts = pr_strs(scopes);
	} else {
		t = pr_find_tok(d, role);
		ts = t && !t->revoked ? json_deep_copy(t->scopes)
				      : pr_role_scopes(d->scopes, role);
	}
	pr_issue(d, role, ts, now, token, 1);
	pr_job_audit(&j, who, "device.token.rotate", device_id,
		     json_pack("{s:s,s:O}", "role", role, "scopes", ts));
	rc = pr_token_commit(p, d, &j);
	if (rc != GW_OK) {
		xfree_secret(*token);
		*token = NULL;
		goto out;
	}
	*scopes_out = json_incref(ts);
	*rotated_at = now;
out:
	json_decref(ts);
	pthread_mutex_unlock(&p->wmu);
	pr_job_clear(&j);
	return rc;
}

int pairing_token_revoke(struct pairing *p, const char *device_id,
			 const char *role, const struct pairing_actor *who,
			 int64_t *revoked_at)
{
	struct store_devices_change j = {0};
	struct pr_device *d = NULL;
	struct pr_token *t;
	int64_t now = util_now_ms();
	int rc;

	pthread_mutex_lock(&p->wmu);
	rc = pr_dev_for_role(p, device_id, role, &d);
	if (rc != GW_OK)
		goto out;
	t = pr_find_tok(d, role);
	if (!t) {
		pr_device_free(d);
		rc = GW_ENOTFOUND;
		goto out;
	}
	if (!t->revoked)
		t->revoked = now;
	*revoked_at = t->revoked;
	pr_job_audit(&j, who, "device.token.revoke", device_id,
		     json_pack("{s:s}", "role", role));
	rc = pr_token_commit(p, d, &j);
out:
	pthread_mutex_unlock(&p->wmu);
	pr_job_clear(&j);
	return rc;
}
