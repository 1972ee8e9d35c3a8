/* The store provider and the shared secret store's encryption at rest.
 * Values are sealed with AES-256-GCM (OpenSSL): a fresh 96-bit nonce per
 * write, the entry name as associated data (a value moved to another name
 * does not open), layout 0x01 || nonce || ciphertext || tag. The key is
 * kept outside the database: $CREDENTIALS_DIRECTORY/secrets.key when the
 * service manager provides it, else <state>/state/secrets.key (0600,
 * created on first write). A missing or wrong key is an error, never
 * garbage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/common.h"
#include "core/util.h"
#include "secrets/secrets-int.h"
#include "secrets/secrets.h"
#include "store/store.h"

#define SECRETS_NONCE_LEN 12
#define SECRETS_TAG_LEN 16
#define SECRETS_BLOB_V1 0x01

/* ---- key ---------------------------------------------------------------- */

char *secrets_key_path(const char *state_dir)
{
	const char *cd = getenv("CREDENTIALS_DIRECTORY");
	char *p;

	if (cd && *cd) {
		p = xasprintf("%s/secrets.key", cd);
		if (access(p, F_OK) == 0)
			return p;
		free(p);
	}
	return xasprintf("%s/state/secrets.key", state_dir ? state_dir : ".");
}

static int secrets_key_parse(const char *text, size_t n,
			     uint8_t key[SECRETS_KEY_LEN])
{
	size_t i;

	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	if (n != SECRETS_KEY_LEN * 2)
		return -1;
	for (i = 0; i < SECRETS_KEY_LEN; i++) {
		unsigned v;

		if (sscanf(text + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", text[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", text[2 * i + 1]))
			return -1;
		key[i] = (uint8_t)v;
	}
	return 0;
}

static int secrets_key_create(const char *path, uint8_t key[SECRETS_KEY_LEN],
			      char *why, size_t len)
{
	char hex[SECRETS_KEY_LEN * 2 + 2], *dir = xstrdup(path), *slash;
	int fd, r = GW_EIO;

	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0700);
	}
	free(dir);
	util_random(key, SECRETS_KEY_LEN);
	util_hex(key, SECRETS_KEY_LEN, hex);
	strcat(hex, "\n");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		snprintf(why, len, "cannot create the secret store key %s: %s",
			 path, strerror(errno));
		goto out;
	}
	if (write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) ||
	    fsync(fd) < 0) {
		snprintf(why, len, "cannot write the secret store key %s: %s",
			 path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	r = GW_OK;
out:
	explicit_bzero(hex, sizeof(hex));
	return r;
}

int secrets_key_load(const char *state_dir, int create,
		     uint8_t key[SECRETS_KEY_LEN], char *why, size_t len)
{
	char *path = secrets_key_path(state_dir), *buf = NULL;
	struct stat st;
	size_t n = 0;
	int rd, r = GW_ECRYPTO;

	rd = util_read_file(path, 4096, &buf, &n);
	if (rd == 0) {
		if (create) {
			r = secrets_key_create(path, key, why, len);
			goto out;
		}
		snprintf(why, len, "the secret store key %s is missing", path);
		r = GW_ENOTFOUND;
		goto out;
	}
	if (rd < 0) {
		snprintf(why, len, "cannot read the secret store key %s: %s",
			 path, strerror(-rd));
		r = GW_EIO;
		goto out;
	}
	if (stat(path, &st) == 0 && (st.st_mode & 077)) {
		snprintf(why, len, "the secret store key %s must be private "
			 "(chmod 600)", path);
		goto out;
	}
	if (secrets_key_parse(buf, n, key) < 0) {
		snprintf(why, len, "the secret store key %s is malformed "
			 "(expected 64 hex digits)", path);
		goto out;
	}
	r = GW_OK;
out:
	if (buf) {
		explicit_bzero(buf, n);
		free(buf);
	}
	free(path);
	return r;
}

/* ---- seal / unseal ------------------------------------------------------ */

int secrets_seal(const uint8_t key[SECRETS_KEY_LEN], const char *name,
		 const char *val, size_t vlen, uint8_t **blob, size_t *blen)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t total = 1 + SECRETS_NONCE_LEN + vlen + SECRETS_TAG_LEN;
	uint8_t *b = xmalloc(total), *nonce = b + 1, *ct = nonce +
		SECRETS_NONCE_LEN;
	int n = 0, f = 0, r = GW_ECRYPTO;

	b[0] = SECRETS_BLOB_V1;
	util_random(nonce, SECRETS_NONCE_LEN);
	if (!ctx || vlen > SECRETS_VALUE_MAX * 4 ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRETS_NONCE_LEN,
				NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)name,
			      (int)strlen(name)) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &n, (const uint8_t *)val,
			      (int)vlen) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &f) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRETS_TAG_LEN,
				ct + vlen) != 1)
		goto out;
	*blob = b;
	*blen = total;
	b = NULL;
	r = GW_OK;
out:
	free(b);
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int secrets_unseal(const uint8_t key[SECRETS_KEY_LEN], const char *name,
		   const uint8_t *blob, size_t blen, char **val, size_t *vlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	const uint8_t *nonce = blob + 1, *ct = nonce + SECRETS_NONCE_LEN;
	size_t clen;
	char *out = NULL;
	int n = 0, f = 0, r = GW_ECRYPTO;

	*val = NULL;
	if (blen < 1 + SECRETS_NONCE_LEN + SECRETS_TAG_LEN ||
	    blob[0] != SECRETS_BLOB_V1)
		return GW_ECRYPTO;
	clen = blen - 1 - SECRETS_NONCE_LEN - SECRETS_TAG_LEN;
	out = xmalloc(clen + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRETS_NONCE_LEN,
				NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)name,
			      (int)strlen(name)) != 1 ||
	    EVP_DecryptUpdate(ctx, (uint8_t *)out, &n, ct, (int)clen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRETS_TAG_LEN,
				(void *)(ct + clen)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (uint8_t *)out + n, &f) != 1)
		goto out;
	out[clen] = 0;
	*val = out;
	if (vlen)
		*vlen = clen;
	out = NULL;
	r = GW_OK;
out:
	if (out) {
		explicit_bzero(out, clen + 1);
		free(out);
	}
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

/* ---- the store operations (RPC and CLI) --------------------------------- */

int secrets_store_value(sqlite3 *db, const char *name, char **kind,
			char **value, char *why, size_t len)
{
	struct store_secret e;
	uint8_t key[SECRETS_KEY_LEN];
	int r;

	*value = NULL;
	if (kind)
		*kind = NULL;
	r = store_secrets_get_db(db, name, &e);
	if (r != GW_OK) {
		snprintf(why, len, r == GW_ENOTFOUND ? "no entry" :
			 "cannot read the secret store");
		return r;
	}
	r = secrets_key_load(secrets_state_dir(), 0, key, why, len);
	if (r == GW_OK &&
	    (r = secrets_unseal(key, name, e.value, e.value_len, value,
				NULL)) != GW_OK)
		snprintf(why, len, "cannot decrypt the entry: wrong secret "
			 "store key or tampered data");
	explicit_bzero(key, sizeof(key));
	if (r == GW_OK && kind)
		*kind = xstrdup(e.kind);
	store_secret_clear(&e);
	return r;
}

int secrets_store_set(struct store *st, const char *name, const char *kind,
		      const char *value, size_t vlen, const json_t *hosts,
		      const char *actor, char *why, size_t len)
{
	struct store_secret e = { 0 };
	uint8_t key[SECRETS_KEY_LEN];
	int r;

	r = secrets_key_load(secrets_state_dir(), 1, key, why, len);
	if (r != GW_OK)
		return r;
	r = secrets_seal(key, name, value, vlen, &e.value, &e.value_len);
	explicit_bzero(key, sizeof(key));
	if (r != GW_OK) {
		snprintf(why, len, "cannot encrypt the value");
		return r;
	}
	e.name = (char *)name;
	e.kind = (char *)kind;
	e.updated_by = (char *)actor;
	e.allowed_hosts = hosts && json_array_size(hosts) ?
		json_dumps(hosts, JSON_COMPACT) : NULL;
	r = store_secrets_put(st, &e);
	if (r != GW_OK)
		snprintf(why, len, "cannot write the secret store");
	free(e.value);
	free(e.allowed_hosts);
	return r;
}

json_t *secrets_store_entry_json(const struct store_secret *e,
				 const char *value)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "name", e->name,
			      "scopeKind", "team", "scopeId", "",
			      "createdAtMs", (json_int_t)e->created_at_ms,
			      "updatedAtMs", (json_int_t)e->updated_at_ms,
			      "kind", e->kind);

	if (e->updated_by)
		json_object_set_new(o, "updatedBy", json_string(e->updated_by));
	if (strcmp(e->kind, "env") == 0) {
		json_object_set_new(o, "value", json_string(value ? value : ""));
	} else if (e->allowed_hosts) {
		json_t *h = json_loads(e->allowed_hosts, 0, NULL);

		if (json_is_array(h) && json_array_size(h))
			json_object_set(o, "allowedHosts", h);
		json_decref(h);
	}
	return o;
}

int secrets_store_list_json(struct store *st, json_t **out, char *why,
			    size_t len)
{
	struct store_secret *v = NULL;
	json_t *a = json_array();
	size_t n = 0, i;
	int r;

	*out = NULL;
	r = store_secrets_list(st, &v, &n);
	if (r != GW_OK) {
		snprintf(why, len, "cannot read the secret store");
		json_decref(a);
		return r;
	}
	for (i = 0; i < n; i++) {
		char *val = NULL;

		if (strcmp(v[i].kind, "env") == 0) {
			uint8_t key[SECRETS_KEY_LEN];

			r = secrets_key_load(secrets_state_dir(), 0, key, why,
					     len);
			if (r == GW_OK &&
			    (r = secrets_unseal(key, v[i].name, v[i].value,
						v[i].value_len, &val, NULL)) !=
			    GW_OK)
				snprintf(why, len, "cannot decrypt %s: wrong "
					 "secret store key or tampered data",
					 v[i].name);
			explicit_bzero(key, sizeof(key));
			if (r != GW_OK)
				break;
		}
		json_array_append_new(a, secrets_store_entry_json(&v[i], val));
		xfree_secret(val);
	}
	for (i = 0; i < n; i++)
		store_secret_clear(&v[i]);
	free(v);
	if (r != GW_OK) {
		json_decref(a);
		return r;
	}
	*out = a;
	return GW_OK;
}

/* ---- the provider ------------------------------------------------------- */

static int secrets_store_check(const json_t *def, char *why, size_t len)
{
	static const char *const keys[] = { "source", NULL };

	return secrets_def_keys(def, keys, why, len);
}

static int secrets_store_id_ok(const char *id, const json_t *def)
{
	(void)def;
	return secrets_env_name_valid(id);
}

static int secrets_store_resolve(struct secrets_batch *b, char *why,
				 size_t len)
{
	struct store *st = secrets_store();
	sqlite3 *db = NULL, *own = NULL;
	char *path = NULL, sub[300];
	size_t i;
	int r;

	if (st) {
		db = store_reader(st);
	} else {
		path = xasprintf("%s/state/clawgate.sqlite",
				 secrets_state_dir());
		r = store_secrets_open_ro(path, &own);
		free(path);
		if (r == GW_ENOTFOUND) {
			for (i = 0; i < b->n; i++)
				b->errs[i] = xstrdup("no such store entry");
			return 0;
		}
		db = own;
	}
	if (!db) {
		snprintf(why, len, "the state database is unavailable");
		return -1;
	}
	for (i = 0; i < b->n; i++) {
		r = secrets_store_value(db, b->ids[i], NULL, &b->values[i],
					sub, sizeof(sub));
		if (r == GW_ENOTFOUND && b->values[i] == NULL)
			b->errs[i] = xstrdup(strcmp(sub, "no entry") == 0 ?
					     "no such store entry" : sub);
		else if (r != GW_OK)
			b->errs[i] = xstrdup(sub);
	}
	store_secrets_close_ro(own);
	return 0;
}

const struct secrets_provider secrets_store_provider = {
	.source = "store",
	.check = secrets_store_check,
	.id_valid = secrets_store_id_ok,
	.resolve = secrets_store_resolve,
};
