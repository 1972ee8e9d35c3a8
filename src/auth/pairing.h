/* Device pairing on top of the store (reference/ws-protocol.md §7.6, §10;
 * doc/pairing.md): pending requests, paired devices, per-(device, role)
 * tokens stored hashed, approvals, rejections, removal, rotation and
 * revocation, an audit row per decision.
 *
 * The state is mirrored in memory so that the connect handshake decides
 * on the lws thread without touching SQLite (pairing_check,
 * pairing_token_check, pairing_request never block on the disk). Every
 * decision (approve, reject, remove, token issue/rotate/revoke) is
 * committed with STORE_DURABLE before the function returns: call those
 * from a worker thread only. Thread-safe. */
#pragma once

#include <stdint.h>

#include <jansson.h>

struct pairing;
struct store;

#define PAIRING_PENDING_TTL_MS (5 * 60 * 1000)
#define PAIRING_MAX_PENDING 512
#define PAIRING_TOKEN_BYTES 32

/* Why a connect needs (re)pairing. */
enum pairing_need {
	PAIRING_OK = 0,
	PAIRING_NOT_PAIRED,	/* unknown device or new public key */
	PAIRING_ROLE_UPGRADE,
	PAIRING_SCOPE_UPGRADE,
	PAIRING_METADATA_UPGRADE, /* platform / deviceFamily changed */
};

/* What a connecting device claims (all borrowed). */
struct pairing_claim {
	const char *device_id;
	const char *public_key;	/* base64url raw key */
	const char *display_name;
	const char *platform;
	const char *device_family;
	const char *client_id;
	const char *client_mode;
	const char *role;
	const json_t *scopes;	/* requested (array of strings) */
	const char *remote_ip;
};

/* Who decided (for the audit row). */
struct pairing_actor {
	const char *actor;	/* "device:<id>", "conn:<id>", "cli" ... */
	const char *remote_ip;
};

/* Load the state from the store (call once at start, any thread that may
 * use store_reader). */
int pairing_open(struct store *st, struct pairing **out);
void pairing_free(struct pairing *p);

/* "not-paired", "role-upgrade", "scope-upgrade", "metadata-upgrade". */
const char *pairing_need_name(int need);
/* Does the approved list cover scope s (operator.admin covers every
 * operator.* scope, operator.write covers operator.read and
 * operator.talk; others exact)? */
int pairing_scope_covered(const json_t *approved, const char *s);

/* In memory, non-blocking. Returns enum pairing_need. *has_token (may be
 * NULL) tells whether an active token exists for the claim's role. */
int pairing_check(struct pairing *p, const struct pairing_claim *c,
		  int *has_token);
/* Is token the active device token of (device_id, role)? 1 and a new
 * array of the token's scopes in *scopes (may be NULL), else 0. */
int pairing_token_check(struct pairing *p, const char *device_id,
			const char *role, const char *token, json_t **scopes);
/* Is token the active device token of role for any paired device (HTTP
 * bearer, where no device id comes with it)? As pairing_token_check. */
int pairing_token_find(struct pairing *p, const char *role,
		       const char *token, json_t **scopes);
/* Create or refresh the pending request of the claim's device (an
 * identical retry refreshes the expiry, a changed one supersedes it with a
 * new requestId). The store write is queued, not awaited. Returns the
 * request as the device.pair.requested payload (new reference); *fresh is
 * 1 when the request is new or superseded. */
json_t *pairing_request(struct pairing *p, const struct pairing_claim *c,
			int need, int *fresh);
/* The pending request (new reference) or NULL (unknown or expired). */
json_t *pairing_pending_get(struct pairing *p, const char *request_id);
/* The newest pending request id (new string) or NULL. */
char *pairing_pending_latest(struct pairing *p);
/* The paired device summary (tokens without secrets) or NULL. */
json_t *pairing_device_get(struct pairing *p, const char *device_id);
/* {pending: [...], paired: [...]} (device.pair.list). */
json_t *pairing_list(struct pairing *p);

/* ---- durable decisions (worker threads only) --------------------------- */

/* Approve a pending request: the device is paired (roles and scopes
 * merged), the request removed. *device (may be NULL) gets the device
 * summary, *device_id its id. GW_ENOTFOUND for an unknown request. */
int pairing_approve(struct pairing *p, const char *request_id,
		    const struct pairing_actor *who, json_t **device,
		    char **device_id);
/* Approve the claim directly (silent local pairing) and issue the
 * claim-role token: *token (plain, caller frees) and *issued_at. */
int pairing_approve_silent(struct pairing *p, const struct pairing_claim *c,
			   const struct pairing_actor *who, char **request_id,
			   char **token, int64_t *issued_at);
/* Reject a pending request. */
int pairing_reject(struct pairing *p, const char *request_id,
		   const struct pairing_actor *who, char **device_id);
/* Forget a paired device, its tokens and its pending request. */
/* Set a paired device's display name (device.pair.rename). GW_ENOTFOUND
 * for an unknown device. Worker thread. */
int pairing_rename(struct pairing *p, const char *device_id,
		   const char *name, const struct pairing_actor *who);
int pairing_remove(struct pairing *p, const char *device_id,
		   const struct pairing_actor *who, json_t **removed);
/* Issue the token of (device, role) when none is active (first connect
 * after approval): *token plain. GW_EEXIST when one is active. */
int pairing_token_ensure(struct pairing *p, const char *device_id,
			 const char *role, char **token, int64_t *issued_at);
/* Rotate: a new token for (device, role) with scopes (NULL = keep),
 * bounded by the approval (GW_EFORBIDDEN otherwise; GW_ENOTFOUND when the
 * device or role is not approved). */
int pairing_token_rotate(struct pairing *p, const char *device_id,
			 const char *role, const json_t *scopes,
			 const struct pairing_actor *who, char **token,
			 json_t **scopes_out, int64_t *rotated_at);
/* Revoke the token of (device, role). */
int pairing_token_revoke(struct pairing *p, const char *device_id,
			 const char *role, const struct pairing_actor *who,
			 int64_t *revoked_at);
