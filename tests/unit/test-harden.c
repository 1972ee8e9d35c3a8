/* Units of issue 10 outside src/net: log line escaping, the worker pool's
 * stop/free split. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/workq.h"

static const char *esc(const char *in, size_t n)
{
	static char out[256];

	log_escape(in, n, out, sizeof(out));
	return out;
}

START_TEST(test_log_escape)
{
	ck_assert_str_eq(esc("plain text", 10), "plain text");
	ck_assert_str_eq(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14),
			 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* control bytes escaped: no terminal sequence, no forged line */
	ck_assert_str_eq(esc("a\x1b[2Jb\nc\rd\x7f", 11),
			 "a\\x1b[2Jb\\x0ac\\x0dd\\x7f");
	ck_assert_str_eq(esc("\xc2\x9b", 2), "\\u009b");
	/* invalid UTF-8 replaced, never dropped */
	ck_assert_str_eq(esc("x\xffy", 3), "x\xef\xbf\xbdy");
	ck_assert_str_eq(esc("\xc0\xaf", 2), "\xef\xbf\xbd\xef\xbf\xbd");
	ck_assert_str_eq(esc("\xed\xa0\x80", 3),
			 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	ck_assert_str_eq(esc("\xe2\x82", 2), "\xef\xbf\xbd\xef\xbf\xbd");
	ck_assert_str_eq(esc("\xf4\x90\x80\x80", 4),
			 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}
END_TEST

START_TEST(test_log_escape_truncates_whole)
{
	char out[6];

	/* "ab" + 4-byte emoji does not fit in 5 + NUL: cut before it */
	ck_assert_uint_eq(log_escape("ab\xf0\x9f\x98\x80", 6, out,
				     sizeof(out)), 2);
	ck_assert_str_eq(out, "ab");
	ck_assert_uint_eq(log_escape("\x01\x02", 2, out, sizeof(out)), 4);
	ck_assert_str_eq(out, "\\x01");
}
END_TEST

static int ran;
static pthread_mutex_t ran_mu = PTHREAD_MUTEX_INITIALIZER;

static void job(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ran_mu);
	ran++;
	pthread_mutex_unlock(&ran_mu);
}

/* After workq_stop the queue refuses posts but is still valid memory
 * (what a late HTTP keep-alive request sees during shutdown). */
START_TEST(test_workq_stop_then_post)
{
	struct workq *q = workq_new(2, 16);
	int i;

	for (i = 0; i < 10; i++)
		ck_assert_int_eq(workq_post(q, job, NULL), 0);
	workq_stop(q, 5000);
	ck_assert_int_eq(ran, 10);
	ck_assert_int_eq(workq_post(q, job, NULL), -1);
	workq_stop(q, 0);	/* idempotent */
	workq_free(q);
	workq_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("harden");
	TCase *tc = tcase_create("harden");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_log_escape);
	tcase_add_test(tc, test_log_escape_truncates_whole);
	tcase_add_test(tc, test_workq_stop_then_post);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
