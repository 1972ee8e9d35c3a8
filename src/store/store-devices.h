/* Paired devices, their tokens and pending pairing requests: the tables of
 * migration 0002 (paired_device, device_token, pairing_request). The
 * pairing module (src/auth/pairing.c) keeps the in-memory mirror; this file
 * holds its SQL. Rows are passed as plain structs of borrowed pointers;
 * roles and scopes are JSON arrays of strings (a stored value that is not
 * an array reads back as []). Reads use the calling thread's reader. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;

struct store_device_token {
	const char *role;
	const char *hash;		/* hex SHA-256 of the token */
	const json_t *scopes;
	int64_t created, rotated, revoked, last_used;	/* ms, 0 = never */
};

struct store_device {
	const char *id, *public_key, *display_name, *platform;
	const char *device_family, *client_id, *client_mode, *remote_ip;
	const char *via;		/* approved_via: operator | silent */
	const json_t *roles, *scopes;
	int64_t created, approved;
	const struct store_device_token *tok;	/* all of its tokens */
	size_t ntok;
};

struct store_pairing_request {
	const char *id, *device_id, *public_key, *display_name, *platform;
	const char *device_family, *client_id, *client_mode, *role;
	const char *remote_ip, *reason;
	const json_t *scopes;
	int is_repair;
	int64_t created, updated, expires;
};

/* The stored rows, one callback each (the row is valid during the call;
 * a device's tok is empty: its tokens come from the token walk, with the
 * owner's device_id). A non-zero return from fn stops the walk. Requests
 * come in updated order. GW_OK or GW_ESTORE (logged). */
int store_devices_each(struct store *st,
		       int (*fn)(const struct store_device *d, void *arg),
		       void *arg);
int store_device_tokens_each(struct store *st,
			     int (*fn)(const char *device_id,
				       const struct store_device_token *t,
				       void *arg), void *arg);
int store_pairing_requests_each(struct store *st,
				int (*fn)(const struct store_pairing_request
					  *r, void *arg), void *arg);

/* One durable transaction (synchronous=FULL) of the devices family. The
 * parts that are set run in this order, then the audit row when action is
 * set (store_audit_tx):
 *   put              upsert the device and replace all of its tokens;
 *   rename_id/to     set display_name (NULL clears it);
 *   remove_id        delete the device, its tokens and its requests;
 *   drop_request_id  delete the request with that id;
 *   drop_requests_of delete the request of that device.
 * Returns GW_OK or GW_ESTORE (the change rolled back; logged). */
struct store_devices_change {
	const struct store_device *put;
	const char *rename_id, *rename_to;
	const char *remove_id;
	const char *drop_request_id, *drop_requests_of;
	const char *action, *actor, *target, *remote_ip;
	const json_t *detail;
};
int store_devices_commit(struct store *st,
			 const struct store_devices_change *c);

/* Queue (not awaited) a pending request write: requests that expired at
 * now are deleted, then r replaces any request of its device or with its
 * id. r is copied before this returns. A failure is logged. */
void store_pairing_request_queue(struct store *st,
				 const struct store_pairing_request *r,
				 int64_t now);
