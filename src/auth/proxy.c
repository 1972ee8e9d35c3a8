/* Trusted-proxy handling: CIDR matching, client IP, auth decision. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/proxy.h"
#include "core/common.h"

#define PROXY_MAX_XFF 2048

/* Parse an IPv4 or IPv6 address into 16 bytes (v4-mapped for v4). */
static int proxy_parse_ip(const char *s, unsigned char out[16], int *v4)
{
	struct in_addr a4;
	char buf[64];
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	if (buf[0] == '[' && buf[n - 1] == ']') {
		buf[n - 1] = 0;
		memmove(buf, buf + 1, n - 1);
	}
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0,
							  0, 0, 0xff, 0xff};

		*v4 = memcmp(out, mapped, 12) == 0;
		return 0;
	}
	return -1;
}

int proxy_cidr_match(const char *cidr, const char *ip)
{
	unsigned char net[16], addr[16];
	char buf[64], *slash, *end;
	int nv4, av4, bits, full;
	long l;

	if (!cidr || !ip || strlen(cidr) >= sizeof(buf))
		return -1;
	memcpy(buf, cidr, strlen(cidr) + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	if (proxy_parse_ip(buf, net, &nv4) != 0 ||
	    proxy_parse_ip(ip, addr, &av4) != 0)
		return -1;
	full = nv4 ? 32 : 128;
	bits = full;
	if (slash) {
		l = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || l < 0 || l > full)
			return -1;
		bits = (int)l;
	}
	if (nv4) {
		if (!av4)
			return 0;
		bits += 96;
	}
	full = bits / 8;
	if (memcmp(net, addr, (size_t)full) != 0)
		return 0;
	if (bits % 8) {
		unsigned char m = (unsigned char)(0xff << (8 - bits % 8));

		if ((net[full] & m) != (addr[full] & m))
			return 0;
	}
	return 1;
}

int proxy_ip_trusted(const struct gw_config *cfg, const char *ip)
{
	const json_t *list = cfg ? config_get(cfg->root,
					      "gateway.trustedProxies") : NULL;
	json_t *v;
	size_t i;

	if (!ip)
		return 0;
	json_array_foreach(list, i, v)
		if (proxy_cidr_match(json_string_value(v), ip) == 1)
			return 1;
	return 0;
}

static const char *proxy_hdr(const struct proxy_req *rq, const char *name)
{
	return rq->header ? rq->header(rq->arg, name) : NULL;
}

int proxy_has_headers(const struct proxy_req *rq)
{
	static const char *const names[] = {
		"forwarded", "x-forwarded-for", "x-forwarded-proto",
		"x-forwarded-host", "x-real-ip",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (proxy_hdr(rq, names[i]))
			return 1;
	return 0;
}

int proxy_is_local(const struct proxy_req *rq)
{
	return rq->peer_loopback && !proxy_has_headers(rq);
}

/* Trim spaces of [s, e) in place into out. */
static void proxy_trim(const char *s, const char *e, char *out, size_t n)
{
	size_t k;

	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	k = (size_t)(e - s);
	if (k >= n)
		k = n - 1;
	memcpy(out, s, k);
	out[k] = 0;
}

void proxy_client_ip(const struct gw_config *cfg, const struct proxy_req *rq,
		     char *out, size_t n)
{
	const char *xff, *end, *p;
	const json_t *fb;
	char hop[64], first[64] = "";
	unsigned char tmp[16];
	int v4;

	snprintf(out, n, "%s", rq->peer_ip ? rq->peer_ip : "");
	if (!proxy_ip_trusted(cfg, rq->peer_ip))
		return;
	xff = proxy_hdr(rq, "x-forwarded-for");
	if (xff && strlen(xff) <= PROXY_MAX_XFF) {
		end = xff + strlen(xff);
		while (end > xff) {
			p = end;
			while (p > xff && p[-1] != ',')
				p--;
			proxy_trim(p, end, hop, sizeof(hop));
			end = p > xff ? p - 1 : xff;
			if (proxy_parse_ip(hop, tmp, &v4) != 0)
				continue;
			snprintf(first, sizeof(first), "%s", hop);
			if (!proxy_ip_trusted(cfg, hop)) {
				snprintf(out, n, "%s", hop);
				return;
			}
		}
		/* Every hop is a trusted proxy: the leftmost one. */
		if (first[0]) {
			snprintf(out, n, "%s", first);
			return;
		}
	}
	fb = config_get(cfg->root, "gateway.allowRealIpFallback");
	xff = proxy_hdr(rq, "x-real-ip");
	if (json_is_true(fb) && xff) {
		proxy_trim(xff, xff + strlen(xff), hop, sizeof(hop));
		if (proxy_parse_ip(hop, tmp, &v4) == 0)
			snprintf(out, n, "%s", hop);
	}
}

static void proxy_fail(struct proxy_auth *o, const char *reason,
		       const char *code, const char *what)
{
	o->ok = 0;
	o->reason = reason;
	o->detail_code = code;
	snprintf(o->message, sizeof(o->message), "unauthorized: %s", what);
}

static int proxy_lower_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

void proxy_auth_check(const struct gw_config *cfg, const struct proxy_req *rq,
		      struct proxy_auth *o)
{
	const json_t *tp = config_get(cfg->root, "gateway.auth.trustedProxy");
	const char *uh = json_string_value(json_object_get(tp, "userHeader"));
	const json_t *req = json_object_get(tp, "requiredHeaders");
	const json_t *allow = json_object_get(tp, "allowUsers");
	const char *v;
	char user[256], reason[96];
	json_t *e;
	size_t i;
	int found;

	memset(o, 0, sizeof(*o));
	if (!uh || !*uh) {
		proxy_fail(o, "trusted_proxy_config_missing",
			   "AUTH_UNAUTHORIZED",
			   "trusted-proxy auth is not configured (set "
			   "gateway.trustedProxies and "
			   "gateway.auth.trustedProxy.userHeader)");
		return;
	}
	if (rq->peer_loopback &&
	    !json_is_true(json_object_get(tp, "allowLoopback"))) {
		proxy_fail(o, "trusted_proxy_loopback_source",
			   "AUTH_UNAUTHORIZED",
			   "trusted-proxy auth refuses loopback sources (set "
			   "gateway.auth.trustedProxy.allowLoopback)");
		return;
	}
	if (!proxy_ip_trusted(cfg, rq->peer_ip)) {
		proxy_fail(o, "trusted_proxy_untrusted_source",
			   "AUTH_UNAUTHORIZED",
			   "request did not come from a trusted proxy (see "
			   "gateway.trustedProxies)");
		return;
	}
	json_array_foreach(req, i, e) {
		if (!json_is_string(e) || proxy_hdr(rq, json_string_value(e)))
			continue;
		snprintf(reason, sizeof(reason),
			 "trusted proxy header missing: %.60s",
			 json_string_value(e));
		proxy_fail(o, NULL, "AUTH_IDENTITY_HEADER_REQUIRED", reason);
		snprintf(o->reason_buf, sizeof(o->reason_buf),
			 "trusted_proxy_missing_header_%.60s",
			 json_string_value(e));
		o->reason = o->reason_buf;
		return;
	}
	v = proxy_hdr(rq, uh);
	if (v)
		proxy_trim(v, v + strlen(v), user, sizeof(user));
	if (!v || !user[0]) {
		snprintf(reason, sizeof(reason),
			 "trusted proxy user header missing: %.60s", uh);
		proxy_fail(o, "trusted_proxy_user_missing",
			   "AUTH_IDENTITY_HEADER_REQUIRED", reason);
		return;
	}
	if (json_array_size(allow) > 0) {
		found = 0;
		json_array_foreach(allow, i, e)
			if (json_is_string(e) &&
			    proxy_lower_eq(json_string_value(e), user))
				found = 1;
		if (!found) {
			proxy_fail(o, "trusted_proxy_user_not_allowed",
				   "AUTH_UNAUTHORIZED",
				   "user not in gateway.auth.trustedProxy."
				   "allowUsers");
			return;
		}
	}
	o->ok = 1;
	o->reason = NULL;
	snprintf(o->user, sizeof(o->user), "%s", user);
}
