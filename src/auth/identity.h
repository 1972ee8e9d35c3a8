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
/* Ed25519 signature of msg with the private key into sig. 0 or -1. */
int identity_sign(const struct identity *id, const void *msg, size_t n,
		  uint8_t sig[64]);
