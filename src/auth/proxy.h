/* Trusted reverse proxies (reference/ws-protocol.md §7.1, §7.6): CIDR
 * matching (IPv4 and IPv6), the client IP behind a trusted proxy
 * (X-Forwarded-For, X-Real-IP only with gateway.allowRealIpFallback),
 * locality, and the trusted-proxy auth decision. Pure functions of the
 * config snapshot and the request: one decision for WS and HTTP. */
#pragma once

#include <stddef.h>

#include "config/config.h"

/* A request as both faces see it. header(arg, "x-forwarded-for") gives a
 * header value or NULL (names are lowercase). */
struct proxy_req {
	const char *peer_ip;
	int peer_loopback;
	const char *(*header)(void *arg, const char *name);
	void *arg;
};

/* Does ip fall in cidr ("10.0.0.0/8", "::1", "fd00::/8", a bare address
 * = /32 or /128)? 1 yes, 0 no, -1 when cidr or ip does not parse. */
int proxy_cidr_match(const char *cidr, const char *ip);
/* Is ip listed in gateway.trustedProxies? */
int proxy_ip_trusted(const struct gw_config *cfg, const char *ip);
/* Any of Forwarded / X-Forwarded-* / X-Real-IP present? */
int proxy_has_headers(const struct proxy_req *rq);
/* The client IP: from X-Forwarded-For (right to left, the first hop that
 * is not a trusted proxy) only when the peer is a trusted proxy; else the
 * peer address. */
void proxy_client_ip(const struct gw_config *cfg, const struct proxy_req *rq,
		     char *out, size_t n);
/* Local-direct: a loopback peer and no proxy headers. */
int proxy_is_local(const struct proxy_req *rq);

struct proxy_auth {
	int ok;
	const char *reason;	/* trusted_proxy_* */
	const char *detail_code; /* AUTH_UNAUTHORIZED or
				  * AUTH_IDENTITY_HEADER_REQUIRED */
	char user[256];		/* the identity from userHeader */
	char reason_buf[96];	/* storage for a composed reason */
	char message[256];
};

/* gateway.auth.mode=trusted-proxy: source in trustedProxies, not loopback
 * unless allowLoopback, requiredHeaders present, user from userHeader and
 * in allowUsers when that is set. */
void proxy_auth_check(const struct gw_config *cfg, const struct proxy_req *rq,
		      struct proxy_auth *out);
