/* Fuzz target for the device proof of `connect` (src/auth/device.c), what
 * an unauthenticated client sends: public key (base64url or PEM), id,
 * signature, signedAt, nonce and the signed metadata. Input: one field a
 * line, "flags\nid\npublicKey\nsignature\nsignedAtOffsetMs\nnonce\n
 * clientId\nclientMode\nrole\nscopes,comma,separated\ntoken\nplatform\n
 * deviceFamily". Flags (first byte): 1 the id is the key's, 2 the
 * challenge is the nonce, 4 the proof is signed (v3 payload) with a fixed
 * key that replaces publicKey, 8 the same with the v2 payload. A signed,
 * fresh proof with the right nonce must verify and return its key; any
 * other answer is one of the failures, with a message, reason and code;
 * normalised metadata is trimmed and lowercase. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "auth/device.h"
#include "core/common.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_DEVICE_NOW 1760000000000LL
#define FUZZ_DEVICE_FIELDS 13

static EVP_PKEY *fuzz_device_key;
static uint8_t fuzz_device_pub[32];
static char *fuzz_device_pub_b64;

static void fuzz_device_init(void)
{
	static const uint8_t seed[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	size_t n = sizeof(fuzz_device_pub);

	fuzz_device_key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
						       seed, sizeof(seed));
	if (!fuzz_device_key ||
	    EVP_PKEY_get_raw_public_key(fuzz_device_key, fuzz_device_pub,
					&n) != 1)
		abort();
	fuzz_device_pub_b64 = util_b64url_encode(fuzz_device_pub, n);
}

static char *fuzz_device_sign(const char *msg)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t sig[64];
	size_t len = sizeof(sig);

	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL,
				       fuzz_device_key) != 1 ||
	    EVP_DigestSign(ctx, sig, &len, (const uint8_t *)msg,
			   strlen(msg)) != 1 || len != 64)
		abort();
	EVP_MD_CTX_free(ctx);
	return util_b64url_encode(sig, len);
}

static void fuzz_device_meta(const char *s)
{
	char *m = device_norm_meta(s);
	size_t i, n = strlen(m);

	if (n && (isspace((unsigned char)m[0]) ||
		  isspace((unsigned char)m[n - 1])))
		abort();
	for (i = 0; i < n; i++)
		if (m[i] >= 'A' && m[i] <= 'Z')
			abort();
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *f[FUZZ_DEVICE_FIELDS] = { NULL }, *p, *nl, *sig = NULL;
	char *msg = NULL, id[65], *tok, *save = NULL, *scopes_text;
	const char *message, *reason, *code;
	struct device_proof pr;
	json_t *scopes;
	uint8_t pub[32], raw[32];
	unsigned flags;
	int i, r;

	if (!fuzz_device_key)
		fuzz_device_init();
	if (size < 1)
		return 0;
	flags = data[0];
	buf = xstrndup((const char *)data + 1, size - 1);
	for (p = buf, i = 0; i < FUZZ_DEVICE_FIELDS; i++) {
		f[i] = p;
		nl = p ? strchr(p, '\n') : NULL;
		if (nl)
			*nl = '\0';
		p = nl ? nl + 1 : NULL;
	}
	scopes = json_array();
	if (f[9]) {
		scopes_text = xstrdup(f[9]);
		for (tok = strtok_r(scopes_text, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save))
			json_array_append_new(scopes, json_string(tok));
		free(scopes_text);
	}
	memset(&pr, 0, sizeof(pr));
	pr.id = f[1];
	pr.public_key = f[2];
	pr.signature = f[3];
	pr.signed_at = FUZZ_DEVICE_NOW +
		       (f[4] ? strtoll(f[4], NULL, 10) % 1000000 : 0);
	pr.nonce = f[5];
	pr.client_id = f[6] ? f[6] : "";
	pr.client_mode = f[7] ? f[7] : "";
	pr.role = f[8] ? f[8] : "";
	pr.scopes = scopes;
	pr.token = f[10];
	pr.platform = f[11];
	pr.device_family = f[12];
	if (flags & 12)
		pr.public_key = fuzz_device_pub_b64;
	if ((flags & 1) || (flags & 12)) {
		if (device_pubkey_raw(pr.public_key, raw) == 0) {
			device_id_of(raw, id);
			if (strlen(id) != 64 ||
			    strspn(id, "0123456789abcdef") != 64)
				abort();
			pr.id = id;
		}
	}
	if (flags & 12) {
		msg = flags & 4 ? device_payload_v3(&pr)
				: device_payload_v2(&pr);
		sig = fuzz_device_sign(msg);
		pr.signature = sig;
	}
	r = device_verify(&pr, (flags & 2) ? pr.nonce : f[0], FUZZ_DEVICE_NOW,
			  pub);
	if (r < DEVICE_OK || r > DEVICE_PUBKEY_INVALID)
		abort();
	if (r != DEVICE_OK) {
		message = reason = code = NULL;
		device_fail_info(r, &message, &reason, &code);
		if (!message || !reason || !code)
			abort();
	}
	/* signed with our key, fresh, the challenge's nonce: accepted */
	if ((flags & 12) && (flags & 2) && pr.nonce &&
	    llabs(pr.signed_at - FUZZ_DEVICE_NOW) <= DEVICE_SIGNATURE_SKEW_MS &&
	    pr.nonce[strspn(pr.nonce, " \t\n\v\f\r")] &&
	    (r != DEVICE_OK || memcmp(pub, fuzz_device_pub, 32) != 0)) {
		fprintf(stderr, "signed proof refused: %d\n", r);
		abort();
	}
	fuzz_device_meta(pr.platform);
	fuzz_device_meta(pr.device_family);
	free(msg);
	free(sig);
	json_decref(scopes);
	free(buf);
	return 0;
}
