/* Unit tests: trusted proxies (CIDR v4/v6, client IP, auth decision). */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "auth/proxy.h"
#include "config/config.h"

START_TEST(test_cidr)
{
	ck_assert_int_eq(proxy_cidr_match("10.0.0.0/8", "10.1.2.3"), 1);
	ck_assert_int_eq(proxy_cidr_match("10.0.0.0/8", "11.1.2.3"), 0);
	ck_assert_int_eq(proxy_cidr_match("192.168.1.0/25", "192.168.1.127"),
			 1);
	ck_assert_int_eq(proxy_cidr_match("192.168.1.0/25", "192.168.1.128"),
			 0);
	ck_assert_int_eq(proxy_cidr_match("127.0.0.1", "127.0.0.1"), 1);
	ck_assert_int_eq(proxy_cidr_match("127.0.0.1", "127.0.0.2"), 0);
	ck_assert_int_eq(proxy_cidr_match("0.0.0.0/0", "8.8.8.8"), 1);
	ck_assert_int_eq(proxy_cidr_match("0.0.0.0/0", "::1"), 0);
	ck_assert_int_eq(proxy_cidr_match("10.0.0.0/8", "::ffff:10.9.9.9"),
			 1);
	ck_assert_int_eq(proxy_cidr_match("::1", "::1"), 1);
	ck_assert_int_eq(proxy_cidr_match("::1/128", "[::1]"), 1);
	ck_assert_int_eq(proxy_cidr_match("fd00::/8", "fd12:3456::1"), 1);
	ck_assert_int_eq(proxy_cidr_match("fd00::/8", "fe80::1"), 0);
	ck_assert_int_eq(proxy_cidr_match("2001:db8::/33", "2001:db8:7fff::1"),
			 1);
	ck_assert_int_eq(proxy_cidr_match("2001:db8::/33", "2001:db8:8000::1"),
			 0);
	ck_assert_int_eq(proxy_cidr_match("::/0", "1.2.3.4"), 1);
	ck_assert_int_eq(proxy_cidr_match("10.0.0.0/33", "10.0.0.1"), -1);
	ck_assert_int_eq(proxy_cidr_match("10.0.0.0/", "10.0.0.1"), -1);
	ck_assert_int_eq(proxy_cidr_match("bogus", "10.0.0.1"), -1);
	ck_assert_int_eq(proxy_cidr_match("10.0.0.0/8", "10.0.0"), -1);
	ck_assert_int_eq(proxy_cidr_match("fd00::/129", "fd00::1"), -1);
}
END_TEST

struct hdrs {
	const char *k[8], *v[8];
};

static const char *hget(void *arg, const char *name)
{
	struct hdrs *h = arg;
	int i;

	for (i = 0; i < 8 && h->k[i]; i++)
		if (strcasecmp(h->k[i], name) == 0)
			return h->v[i];
	return NULL;
}

static struct gw_config *cfg_of(const char *text)
{
	struct gw_config *c = calloc(1, sizeof(*c));

	c->root = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(c->root);
	return c;
}

static void cfg_free(struct gw_config *c)
{
	json_decref(c->root);
	free(c);
}

START_TEST(test_client_ip)
{
	struct gw_config *c = cfg_of("{\"gateway\":{\"trustedProxies\":"
				     "[\"127.0.0.1\",\"10.0.0.0/8\"]}}");
	struct hdrs h = {{"x-forwarded-for"}, {"203.0.113.9, 10.1.1.1"}};
	struct proxy_req rq = {"127.0.0.1", 1, hget, &h};
	char ip[64];

	proxy_client_ip(c, &rq, ip, sizeof(ip));
	ck_assert_str_eq(ip, "203.0.113.9");
	ck_assert(!proxy_is_local(&rq));
	rq.peer_ip = "192.0.2.1";	/* not a trusted proxy: ignore XFF */
	proxy_client_ip(c, &rq, ip, sizeof(ip));
	ck_assert_str_eq(ip, "192.0.2.1");
	h.v[0] = "10.2.2.2, 10.1.1.1";	/* all trusted: the leftmost */
	rq.peer_ip = "127.0.0.1";
	proxy_client_ip(c, &rq, ip, sizeof(ip));
	ck_assert_str_eq(ip, "10.2.2.2");
	h.k[0] = "x-real-ip";
	h.v[0] = "198.51.100.4";
	proxy_client_ip(c, &rq, ip, sizeof(ip));
	ck_assert_str_eq(ip, "127.0.0.1");	/* no allowRealIpFallback */
	cfg_free(c);
	c = cfg_of("{\"gateway\":{\"trustedProxies\":[\"127.0.0.1\"],"
		   "\"allowRealIpFallback\":true}}");
	proxy_client_ip(c, &rq, ip, sizeof(ip));
	ck_assert_str_eq(ip, "198.51.100.4");
	h.k[0] = NULL;
	ck_assert(proxy_is_local(&rq));
	cfg_free(c);
}
END_TEST

START_TEST(test_auth)
{
	struct gw_config *c = cfg_of(
		"{\"gateway\":{\"trustedProxies\":[\"10.0.0.0/8\",\"::1\"],"
		"\"auth\":{\"mode\":\"trusted-proxy\",\"trustedProxy\":{"
		"\"userHeader\":\"x-forwarded-user\",\"requiredHeaders\":"
		"[\"x-forwarded-proto\"],\"allowUsers\":[\"alice\"]}}}}");
	struct hdrs h = {{"x-forwarded-user", "x-forwarded-proto"},
			 {" Alice ", "https"}};
	struct proxy_req rq = {"10.0.0.5", 0, hget, &h};
	struct proxy_auth pa;

	proxy_auth_check(c, &rq, &pa);
	ck_assert_int_eq(pa.ok, 1);
	ck_assert_str_eq(pa.user, "Alice");
	rq.peer_ip = "192.0.2.1";
	proxy_auth_check(c, &rq, &pa);
	ck_assert_int_eq(pa.ok, 0);
	ck_assert_str_eq(pa.reason, "trusted_proxy_untrusted_source");
	rq.peer_ip = "::1";
	rq.peer_loopback = 1;
	proxy_auth_check(c, &rq, &pa);
	ck_assert_str_eq(pa.reason, "trusted_proxy_loopback_source");
	rq.peer_ip = "10.0.0.5";
	rq.peer_loopback = 0;
	h.v[1] = NULL;
	h.k[1] = NULL;
	proxy_auth_check(c, &rq, &pa);
	ck_assert_str_eq(pa.reason,
			 "trusted_proxy_missing_header_x-forwarded-proto");
	ck_assert_str_eq(pa.detail_code, "AUTH_IDENTITY_HEADER_REQUIRED");
	h.k[1] = "x-forwarded-proto";
	h.v[1] = "https";
	h.v[0] = "bob";
	proxy_auth_check(c, &rq, &pa);
	ck_assert_str_eq(pa.reason, "trusted_proxy_user_not_allowed");
	h.v[0] = "";
	proxy_auth_check(c, &rq, &pa);
	ck_assert_str_eq(pa.reason, "trusted_proxy_user_missing");
	cfg_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_cidr);
	tcase_add_test(tc, test_client_ip);
	tcase_add_test(tc, test_auth);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
