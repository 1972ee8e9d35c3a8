/* Shared-secret authentication decision. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/common.h"
#include "core/util.h"

#define AUTH_HINT_CLI "use this gateway's gateway.auth.token or pair the device"
#define AUTH_HINT_CLI_PW "use this gateway's gateway.auth.password"
#define AUTH_HINT_UI "open the dashboard URL and paste the token in Control UI settings"
#define AUTH_HINT_UI_PW "enter the password in Control UI settings"

const char *auth_mode_name(int mode)
{
	switch (mode) {
	case AUTH_MODE_PASSWORD:
		return "password";
	case AUTH_MODE_NONE:
		return "none";
	case AUTH_MODE_TRUSTED_PROXY:
		return "trusted-proxy";
	default:
		return "token";
	}
}

static void auth_fail(struct auth_result *res, const char *reason,
		      const char *code, const char *step, const char *what,
		      const char *hint)
{
	res->ok = 0;
	res->reason = reason;
	res->detail_code = code;
	res->next_step = step;
	snprintf(res->message, sizeof(res->message), "unauthorized: %s (%s)",
		 what, hint);
}

void auth_check(const struct gw_config *cfg, struct limiter *lim,
		const struct auth_request *rq, struct auth_result *res)
{
	struct limiter_policy pol = {
		.max_attempts = cfg->rate_max_attempts,
		.window_ms = cfg->rate_window_ms,
		.lockout_ms = cfg->rate_lockout_ms,
	};
	/* trusted-proxy with a password offered: the local fallback. */
	int pw = cfg->auth_mode == AUTH_MODE_PASSWORD ||
		 cfg->auth_mode == AUTH_MODE_TRUSTED_PROXY;
	const char *want = pw ? cfg->auth_password : cfg->auth_token;
	const char *got = pw ? rq->password : rq->token;
	/* The other kind of credential offered counts as a wrong one (as
	 * upstream: a password sent to a token gateway is a mismatch). */
	const char *other = pw ? rq->token : rq->password;
	const char *hint = pw ? (rq->ui_client ? AUTH_HINT_UI_PW :
				 AUTH_HINT_CLI_PW) :
				(rq->ui_client ? AUTH_HINT_UI : AUTH_HINT_CLI);
	char key[320];
	int exempt;
	int64_t now = util_now_ms();

	memset(res, 0, sizeof(*res));
	res->method = auth_mode_name(cfg->auth_mode);
	if (cfg->auth_mode == AUTH_MODE_NONE) {
		res->ok = 1;
		return;
	}
	if (cfg->auth_mode == AUTH_MODE_TRUSTED_PROXY &&
	    !(rq->password && *rq->password && cfg->auth_password)) {
		struct proxy_auth pa;
		struct proxy_req none = {0};

		proxy_auth_check(cfg, rq->proxy ? rq->proxy : &none, &pa);
		if (!pa.ok) {
			res->ok = 0;
			snprintf(res->reason_buf, sizeof(res->reason_buf), "%s",
				 pa.reason);
			res->reason = res->reason_buf;
			res->detail_code = pa.detail_code;
			res->next_step = "review_auth_configuration";
			snprintf(res->message, sizeof(res->message), "%s",
				 pa.message);
			return;
		}
		res->ok = 1;
		snprintf(res->user, sizeof(res->user), "%s", pa.user);
		return;
	}
	if (cfg->auth_mode == AUTH_MODE_TRUSTED_PROXY)
		res->method = "password";
	if (rq->browser)
		snprintf(key, sizeof(key), "browser-origin:%s",
			 rq->origin ? rq->origin : "null");
	else
		snprintf(key, sizeof(key), "shared-secret:%s",
			 rq->client_ip ? rq->client_ip : "?");
	exempt = rq->is_loopback && !rq->browser && cfg->rate_exempt_loopback;
	if (!exempt && lim &&
	    limiter_locked(lim, key, now, &res->retry_after_ms)) {
		res->ok = 0;
		res->rate_limited = 1;
		res->reason = "rate_limited";
		res->detail_code = "AUTH_RATE_LIMITED";
		res->next_step = "wait_then_retry";
		snprintf(res->message, sizeof(res->message),
			 "unauthorized: too many failed authentication "
			 "attempts (retry later)");
		return;
	}
	if (!want || !*want) {
		auth_fail(res, pw ? "password_missing_config" :
				    "token_missing_config",
			  pw ? "AUTH_PASSWORD_NOT_CONFIGURED" :
			       "AUTH_TOKEN_NOT_CONFIGURED",
			  "update_auth_configuration",
			  pw ? "gateway password not configured" :
			       "gateway token not configured",
			  pw ? "set gateway.auth.password" :
			       "set gateway.auth.token");
		return;
	}
	if ((!got || !*got) && !(other && *other)) {
		auth_fail(res, pw ? "password_missing" : "token_missing",
			  pw ? "AUTH_PASSWORD_MISSING" : "AUTH_TOKEN_MISSING",
			  "update_auth_configuration",
			  pw ? "gateway password missing" :
			       "gateway token missing", hint);
		return;
	}
	if (!got || !*got || !util_secret_equal(got, want)) {
		auth_fail(res, pw ? "password_mismatch" : "token_mismatch",
			  pw ? "AUTH_PASSWORD_MISMATCH" : "AUTH_TOKEN_MISMATCH",
			  "update_auth_credentials",
			  pw ? "gateway password mismatch" :
			       "gateway token mismatch", hint);
		if (!exempt && lim)
			limiter_fail(lim, key, now, &pol);
		return;
	}
	if (lim)
		limiter_reset(lim, key);
	res->ok = 1;
}

void auth_check_bearer(const struct gw_config *cfg, struct limiter *lim,
		       const char *bearer, struct auth_request *rq,
		       struct auth_result *res)
{
	const char *cred = NULL;

	if (bearer && strncasecmp(bearer, "Bearer ", 7) == 0) {
		cred = bearer + 7;
		while (*cred == ' ')
			cred++;
	}
	rq->token = NULL;
	rq->password = NULL;
	if (cred && *cred) {
		if (cfg->auth_mode == AUTH_MODE_PASSWORD ||
		    cfg->auth_mode == AUTH_MODE_TRUSTED_PROXY)
			rq->password = cred;
		else
			rq->token = cred;
	}
	auth_check(cfg, lim, rq, res);
}
