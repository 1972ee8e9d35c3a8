/* Device identity proof on `connect` (reference/ws-protocol.md §2.3):
 * Ed25519 over the v3 (then v2) signed payload, device.id = hex SHA-256 of
 * the raw 32-byte public key, +-2 min skew, nonce = this socket's
 * challenge. Pure functions (no state): used by the handshake, the CLI's
 * signing side and the unit tests. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define DEVICE_SIGNATURE_SKEW_MS 120000

/* Failures in the order they are checked; each has a message, a
 * details.reason and a details.code (device_fail_info). */
enum device_fail {
	DEVICE_OK = 0,
	DEVICE_ID_MISMATCH,
	DEVICE_SIG_EXPIRED,
	DEVICE_NONCE_REQUIRED,
	DEVICE_NONCE_MISMATCH,
	DEVICE_SIG_INVALID,
	DEVICE_PUBKEY_INVALID,
};

/* What the server knows about one connect. Strings may be NULL where the
 * protocol allows absence (token, platform, deviceFamily). */
struct device_proof {
	const char *id;
	const char *public_key;	/* base64url raw key, or PEM (SPKI) */
	const char *signature;	/* base64url (std base64 accepted) */
	int64_t signed_at;
	const char *nonce;
	const char *client_id;
	const char *client_mode;
	const char *role;
	const json_t *scopes;	/* strings as sent (may be NULL) */
	const char *token;	/* auth.token ?? deviceToken ?? bootstrap */
	const char *platform;
	const char *device_family;
};

/* Check the proof against the challenge nonce at now_ms; on success
 * pub_out (may be NULL) gets the raw key. Returns DEVICE_OK or a fail. */
int device_verify(const struct device_proof *p, const char *challenge,
		  int64_t now_ms, uint8_t pub_out[32]);
void device_fail_info(int fail, const char **message, const char **reason,
		      const char **code);

/* Raw 32-byte key from base64url/base64 (32 bytes) or a PEM SPKI Ed25519
 * public key. 0 or -1. */
int device_pubkey_raw(const char *s, uint8_t out[32]);
/* Signature bytes: base64url, else std base64; exactly 64 bytes. 0/-1. */
int device_sig_decode(const char *s, uint8_t out[64]);
/* Lowercase hex SHA-256 of the raw key. */
void device_id_of(const uint8_t raw[32], char out[65]);
/* Ed25519 verification of msg with a raw public key: 1 valid, 0 not. */
int device_ed25519_verify(const uint8_t pub[32], const void *msg, size_t n,
			  const uint8_t sig[64]);

/* Signed payloads (new strings). v3 trims and ASCII-lowercases platform
 * and deviceFamily; scopes are joined with "," in the order given. */
char *device_payload_v2(const struct device_proof *p);
char *device_payload_v3(const struct device_proof *p);
/* Metadata normalisation used by v3 (trim + ASCII lowercase); new string
 * ("" for NULL). */
char *device_norm_meta(const char *s);
/* A scopes (or roles) array joined with "," as the payloads sign it (new
 * string; non-string entries count as empty). */
char *device_scopes_join(const json_t *scopes);
