/* The gateway's own Ed25519 identity, created once and kept in
 * <stateDir>/identity/device.json (mode 0600), format as upstream:
 * {version:1, deviceId, publicKeyPem, privateKeyPem, createdAtMs}. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct identity {
	char device_id[65];	/* hex SHA-256 of the raw public key */
	uint8_t pub[32];
	char *pub_b64url;	/* base64url of the raw key */
	void *pkey;		/* EVP_PKEY (private) */
};

int identity_load_or_create(const char *state_dir, struct identity **out);
void identity_free(struct identity *id);

/* The identity loaded (or created) on first use: OpenSSL's first use
 * costs ~2 MB of RSS, which an idle gateway does not need to pay. */
struct identity_lazy;
struct identity_lazy *identity_lazy_new(const char *state_dir);
/* Any thread (does file I/O the first time: call it from a worker).
 * Borrowed until identity_lazy_free; NULL when it cannot be loaded or
 * created (logged; the next call tries again). */
const struct identity *identity_lazy_get(struct identity_lazy *l);
void identity_lazy_free(struct identity_lazy *l);
/* Ed25519 signature of msg with the private key into sig. 0 or -1. */
int identity_sign(const struct identity *id, const void *msg, size_t n,
		  uint8_t sig[64]);
