/* Shared-secret authentication (token, password, none): one decision used by
 * the WebSocket handshake and by HTTP Bearer auth, so the two never disagree. */
#pragma once

#include <stdint.h>

#include "auth/limiter.h"
#include "config/config.h"

struct auth_request {
	const char *token;	/* offered token (connect auth.token / Bearer) */
	const char *password;	/* offered password */
	const char *client_ip;	/* for the limiter key */
	int is_loopback;	/* peer is loopback and no proxy headers */
	int browser;		/* Origin present / browser client: the
				 * limiter never exempts loopback */
	const char *origin;	/* normalized origin for the browser key */
	int ui_client;		/* Control UI: hint text differs */
};

struct auth_result {
	int ok;
	const char *method;	/* "token", "password", "none" */
	const char *reason;	/* token_missing, token_mismatch, ... */
	const char *detail_code; /* AUTH_TOKEN_MISMATCH, ... */
	const char *next_step;	/* recommendedNextStep */
	int rate_limited;
	int64_t retry_after_ms;
	char message[256];
};

/* Decide. A wrong credential counts toward the limiter; a missing one does
 * not; a success resets the key. */
void auth_check(const struct gw_config *cfg, struct limiter *lim,
		const struct auth_request *rq, struct auth_result *res);
const char *auth_mode_name(int mode);
