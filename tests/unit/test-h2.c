/* h2 (src/agent/h2.c): which https URLs the HTTP/2 client takes (the
 * rest go to libcurl). The client itself is tested black-box
 * (tests/integration/test_upstream_h2.py). */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "agent/h2.h"

START_TEST(test_h2_url_ok)
{
	static const char *const yes[] = {
		"https://api.openai.com/v1/chat/completions",
		"https://127.0.0.1:8443/v1", "https://[::1]:443/v1",
		"https://localhost", "https://h.example:1/v1?x=1",
		"HTTPS://Example.COM/v1", "https://a_b.example/v1",
	};
	static const char *const no[] = {
		"http://127.0.0.1/v1", "https://user@h.example/v1",
		"https://h.example:0/v1", "https://h.example:65536/v1",
		"https://h.example:/v1", "https://h.example:+1/v1",
		"https:///v1", "https://[::1/v1", "https://h.example/a b",
		"https://h.example/v1#frag", "https://h\x01.example/",
		"https://h.example/\xc3\xa9", "https://h%41.example/",
	};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(h2_url_ok(yes[i]), "refused %s", yes[i]);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!h2_url_ok(no[i]), "took %s", no[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("h2");
	TCase *tc = tcase_create("url");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_h2_url_ok);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
