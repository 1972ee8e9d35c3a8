/* Shared-secret authentication (token, password, none): one decision used by
 * the WebSocket handshake and by HTTP Bearer auth, so the two never disagree. */
#pragma once

#include <stdint.h>

#include "auth/limiter.h"
#include "auth/proxy.h"
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
	const struct proxy_req *proxy; /* peer + headers (trusted-proxy) */
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
	char user[256];		/* trusted-proxy: the proxy's user */
	char reason_buf[96];
};

/* Decide. A wrong credential counts toward the limiter; a missing one does
 * not; a success resets the key. */
void auth_check(const struct gw_config *cfg, struct limiter *lim,
		const struct auth_request *rq, struct auth_result *res);
const char *auth_mode_name(int mode);
/* HTTP: "Authorization: Bearer <token|password>" through the same
 * decision (the credential is tried as the mode's kind). bearer is the
 * whole header value or NULL. */
void auth_check_bearer(const struct gw_config *cfg, struct limiter *lim,
		       const char *bearer, struct auth_request *rq,
		       struct auth_result *res);
