/* Device identity proof: key and signature decoding, the signed payloads,
 * Ed25519 verification through OpenSSL libcrypto. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/device.h"
#include "core/common.h"
#include "core/util.h"

#define DEVICE_MAX_KEY_TEXT 4096

static const struct {
	const char *message;
	const char *reason;
	const char *code;
} device_fails[] = {
	[DEVICE_OK] = {"ok", "ok", "DEVICE_AUTH_INVALID"},
	[DEVICE_ID_MISMATCH] = {"device identity mismatch",
				"device-id-mismatch",
				"DEVICE_AUTH_DEVICE_ID_MISMATCH"},
	[DEVICE_SIG_EXPIRED] = {"device signature expired",
				"device-signature-stale",
				"DEVICE_AUTH_SIGNATURE_EXPIRED"},
	[DEVICE_NONCE_REQUIRED] = {"device nonce required",
				   "device-nonce-missing",
				   "DEVICE_AUTH_NONCE_REQUIRED"},
	[DEVICE_NONCE_MISMATCH] = {"device nonce mismatch",
				   "device-nonce-mismatch",
				   "DEVICE_AUTH_NONCE_MISMATCH"},
	[DEVICE_SIG_INVALID] = {"device signature invalid",
				"device-signature",
				"DEVICE_AUTH_SIGNATURE_INVALID"},
	[DEVICE_PUBKEY_INVALID] = {"device public key invalid",
				   "device-public-key",
				   "DEVICE_AUTH_PUBLIC_KEY_INVALID"},
};

void device_fail_info(int fail, const char **message, const char **reason,
		      const char **code)
{
	if (fail < 0 || fail >= (int)ARRAY_SIZE(device_fails))
		fail = DEVICE_OK;
	*message = device_fails[fail].message;
	*reason = device_fails[fail].reason;
	*code = device_fails[fail].code;
}

int device_pubkey_raw(const char *s, uint8_t out[32])
{
	EVP_PKEY *pk = NULL;
	BIO *b = NULL;
	uint8_t tmp[33];
	size_t n = 32;
	int r = -1;

	if (!s || strlen(s) > DEVICE_MAX_KEY_TEXT)
		return -1;
	if (strstr(s, "-----BEGIN")) {
		b = BIO_new_mem_buf(s, -1);
		pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
		if (pk && EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519 &&
		    EVP_PKEY_get_raw_public_key(pk, out, &n) == 1 && n == 32)
			r = 0;
		EVP_PKEY_free(pk);
		BIO_free(b);
		ERR_clear_error();
		return r;
	}
	if (util_b64_decode(s, tmp, sizeof(tmp)) != 32)
		return -1;
	memcpy(out, tmp, 32);
	return 0;
}

int device_sig_decode(const char *s, uint8_t out[64])
{
	uint8_t tmp[65];

	if (!s || strlen(s) > 200)
		return -1;
	if (util_b64_decode(s, tmp, sizeof(tmp)) != 64)
		return -1;
	memcpy(out, tmp, 64);
	return 0;
}

void device_id_of(const uint8_t raw[32], char out[65])
{
	util_sha256_hex(raw, 32, out);
}

int device_ed25519_verify(const uint8_t pub[32], const void *msg, size_t n,
			  const uint8_t sig[64])
{
	EVP_PKEY *pk;
	EVP_MD_CTX *ctx;
	int ok = 0;

	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	if (!pk) {
		ERR_clear_error();
		return 0;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	    EVP_DigestVerify(ctx, sig, 64, msg, n) == 1)
		ok = 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return ok;
}

char *device_norm_meta(const char *s)
{
	const char *e;
	char *out, *p;

	if (!s)
		return xstrdup("");
	while (*s && isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	out = xstrndup(s, (size_t)(e - s));
	for (p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* Scopes joined with ",". */
char *device_scopes_join(const json_t *scopes)
{
	size_t i, len = 1;
	json_t *v;
	char *out;

	json_array_foreach(scopes, i, v)
		len += json_string_length(v) + 1;
	out = xcalloc(1, len);
	json_array_foreach(scopes, i, v) {
		if (i)
			strcat(out, ",");
		if (json_is_string(v))
			strcat(out, json_string_value(v));
	}
	return out;
}

static char *device_payload(const struct device_proof *p, int v3)
{
	char *sc = device_scopes_join(p->scopes);
	char *pl = NULL, *fam = NULL, *out;

	if (v3) {
		pl = device_norm_meta(p->platform);
		fam = device_norm_meta(p->device_family);
		out = xasprintf("v3|%s|%s|%s|%s|%s|%lld|%s|%s|%s|%s", p->id,
				p->client_id, p->client_mode,
				p->role ? p->role : "operator", sc,
				(long long)p->signed_at,
				p->token ? p->token : "", p->nonce, pl, fam);
	} else {
		out = xasprintf("v2|%s|%s|%s|%s|%s|%lld|%s|%s", p->id,
				p->client_id, p->client_mode,
				p->role ? p->role : "operator", sc,
				(long long)p->signed_at,
				p->token ? p->token : "", p->nonce);
	}
	free(sc);
	free(pl);
	free(fam);
	return out;
}

char *device_payload_v2(const struct device_proof *p)
{
	return device_payload(p, 0);
}

char *device_payload_v3(const struct device_proof *p)
{
	return device_payload(p, 1);
}

static int device_blank(const char *s)
{
	if (!s)
		return 1;
	while (*s && isspace((unsigned char)*s))
		s++;
	return *s == 0;
}

int device_verify(const struct device_proof *p, const char *challenge,
		  int64_t now_ms, uint8_t pub_out[32])
{
	uint8_t pub[32], sig[64];
	char id[65], *msg;
	int64_t d;
	int ok;

	if (device_pubkey_raw(p->public_key, pub) != 0)
		return DEVICE_ID_MISMATCH;
	device_id_of(pub, id);
	if (!p->id || strcmp(id, p->id) != 0)
		return DEVICE_ID_MISMATCH;
	d = now_ms - p->signed_at;
	if (d > DEVICE_SIGNATURE_SKEW_MS || d < -DEVICE_SIGNATURE_SKEW_MS)
		return DEVICE_SIG_EXPIRED;
	if (device_blank(p->nonce))
		return DEVICE_NONCE_REQUIRED;
	if (!challenge || strcmp(p->nonce, challenge) != 0)
		return DEVICE_NONCE_MISMATCH;
	if (device_sig_decode(p->signature, sig) != 0)
		return DEVICE_SIG_INVALID;
	msg = device_payload_v3(p);
	ok = device_ed25519_verify(pub, msg, strlen(msg), sig);
	free(msg);
	if (!ok) {
		msg = device_payload_v2(p);
		ok = device_ed25519_verify(pub, msg, strlen(msg), sig);
		free(msg);
	}
	if (!ok)
		return DEVICE_SIG_INVALID;
	if (pub_out)
		memcpy(pub_out, pub, 32);
	return DEVICE_OK;
}
