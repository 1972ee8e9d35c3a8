/* Load or create the gateway's Ed25519 identity. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/identity.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"

static int identity_finish(struct identity *id, EVP_PKEY *pk)
{
	size_t n = 32;

	if (EVP_PKEY_get_raw_public_key(pk, id->pub, &n) != 1 || n != 32)
		return GW_ECRYPTO;
	id->pkey = pk;
	util_sha256_hex(id->pub, 32, id->device_id);
	id->pub_b64url = util_b64url_encode(id->pub, 32);
	return GW_OK;
}

static char *identity_pem(EVP_PKEY *pk, int priv)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long n;

	if (!b)
		return NULL;
	if (priv ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
		 : PEM_write_bio_PUBKEY(b, pk)) {
		n = BIO_get_mem_data(b, &data);
		s = xstrndup(data, (size_t)n);
	}
	BIO_free(b);
	return s;
}

static int identity_save(const char *path, const struct identity *id)
{
	char *priv = NULL, *pub = NULL, *text = NULL, *tmp = NULL;
	json_t *o = NULL;
	int fd = -1, r = GW_EIO;

	priv = identity_pem(id->pkey, 1);
	pub = identity_pem(id->pkey, 0);
	if (!priv || !pub)
		goto out;
	o = json_pack("{s:i,s:s,s:s,s:s,s:I}", "version", 1, "deviceId",
		      id->device_id, "publicKeyPem", pub, "privateKeyPem", priv,
		      "createdAtMs", (json_int_t)util_now_ms());
	text = json_dumps(o, JSON_INDENT(2));
	tmp = xasprintf("%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fsync(fd) != 0)
		goto out;
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out;
	r = GW_OK;
out:
	if (fd >= 0)
		close(fd);
	if (r != GW_OK && tmp)
		unlink(tmp);
	xfree_secret(priv);
	free(pub);
	if (text)
		explicit_bzero(text, strlen(text));
	free(text);
	free(tmp);
	json_decref(o);
	return r;
}

static int identity_read(const char *path, struct identity *id)
{
	json_error_t jerr;
	json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	const char *pem;
	BIO *b = NULL;
	EVP_PKEY *pk = NULL;
	int r = GW_EINVAL;

	if (!o)
		return errno == ENOENT ? GW_ENOTFOUND : GW_EINVAL;
	pem = json_string_value(json_object_get(o, "privateKeyPem"));
	if (!pem)
		goto out;
	b = BIO_new_mem_buf(pem, -1);
	pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	if (!pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519)
		goto out;
	r = identity_finish(id, pk);
	if (r == GW_OK)
		pk = NULL;
out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	BIO_free(b);
	json_decref(o);
	return r;
}

int identity_load_or_create(const char *state_dir, struct identity **out)
{
	struct identity *id = xcalloc(1, sizeof(*id));
	char *dir = xasprintf("%s/identity", state_dir);
	char *path = xasprintf("%s/device.json", dir);
	EVP_PKEY *pk = NULL;
	int r;

	if (access(path, F_OK) == 0) {
		r = identity_read(path, id);
		if (r != GW_OK)
			log_error("gateway", "cannot read identity %s: %s", path,
				  gw_err_str(r));
		goto out;
	}
	mkdir(state_dir, 0700);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		r = GW_EIO;
		goto out;
	}
	pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pk) {
		r = GW_ECRYPTO;
		goto out;
	}
	r = identity_finish(id, pk);
	if (r != GW_OK)
		goto out;
	pk = NULL;
	r = identity_save(path, id);
out:
	EVP_PKEY_free(pk);
	free(dir);
	free(path);
	if (r != GW_OK) {
		identity_free(id);
		id = NULL;
	}
	*out = id;
	return r;
}

void identity_free(struct identity *id)
{
	if (!id)
		return;
	EVP_PKEY_free(id->pkey);
	free(id->pub_b64url);
	free(id);
}

int identity_sign(const struct identity *id, const void *msg, size_t n,
		  uint8_t sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t len = 64;
	int r = -1;

	if (ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, id->pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &len, msg, n) == 1 && len == 64)
		r = 0;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

struct identity_lazy {
	pthread_mutex_t mu;
	char *state_dir;
	struct identity *id;
};

struct identity_lazy *identity_lazy_new(const char *state_dir)
{
	struct identity_lazy *l = xcalloc(1, sizeof(*l));

	pthread_mutex_init(&l->mu, NULL);
	l->state_dir = xstrdup(state_dir);
	return l;
}

const struct identity *identity_lazy_get(struct identity_lazy *l)
{
	struct identity *id;
	int r;

	if (!l)
		return NULL;
	pthread_mutex_lock(&l->mu);
	if (!l->id) {
		r = identity_load_or_create(l->state_dir, &l->id);
		if (r != GW_OK)
			log_error("gateway", "cannot load or create the "
				  "gateway identity in %s/identity: %s",
				  l->state_dir, gw_err_str(r));
	}
	id = l->id;
	pthread_mutex_unlock(&l->mu);
	return id;
}

void identity_lazy_free(struct identity_lazy *l)
{
	if (!l)
		return;
	identity_free(l->id);
	pthread_mutex_destroy(&l->mu);
	free(l->state_dir);
	free(l);
}
