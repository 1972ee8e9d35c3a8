/* Unit tests for libcurl's allocator (src/agent/curl-dl.c): blocks of
 * 16 KiB or more from malloc/calloc are mappings of their own (page
 * aligned, counted, gone at free), smaller ones and strdup are libc's,
 * realloc keeps the contents across both kinds, a full table falls back
 * to malloc, and libcurl loaded through curl_dl_get runs with it. */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/curl-dl.h"
#include "core/log.h"

#define BIG (16 * 1024)

static int aligned(const void *p)
{
	return ((uintptr_t)p % (uintptr_t)sysconf(_SC_PAGESIZE)) == 0;
}

START_TEST(test_big_blocks_are_mappings)
{
	size_t n0 = curl_dl_big_count();
	char *a = curl_dl_malloc(BIG), *b = curl_dl_malloc(BIG - 1);
	unsigned char *c = curl_dl_calloc(4, BIG / 4 + 100);
	size_t i;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert(aligned(a) && aligned(c));
	ck_assert_uint_eq(curl_dl_big_count(), n0 + 2);
	memset(a, 'a', BIG);
	memset(b, 'b', BIG - 1);
	for (i = 0; i < BIG + 400; i++)
		ck_assert_uint_eq(c[i], 0);
	curl_dl_free(a);
	ck_assert_uint_eq(curl_dl_big_count(), n0 + 1);
	curl_dl_free(b);
	curl_dl_free(c);
	curl_dl_free(NULL);
	ck_assert_uint_eq(curl_dl_big_count(), n0);
}
END_TEST

START_TEST(test_realloc_keeps_contents)
{
	size_t n0 = curl_dl_big_count(), i;
	char *p = curl_dl_malloc(BIG), *s;

	for (i = 0; i < BIG; i++)
		p[i] = (char)(i * 7);
	p = curl_dl_realloc(p, 5 * BIG);	/* grows: still a mapping */
	ck_assert_ptr_nonnull(p);
	ck_assert(aligned(p));
	ck_assert_uint_eq(curl_dl_big_count(), n0 + 1);
	for (i = 0; i < BIG; i++)
		ck_assert_int_eq(p[i], (char)(i * 7));
	memset(p + BIG, 'x', 4 * BIG);
	p = curl_dl_realloc(p, 100);		/* small: a libc block */
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(curl_dl_big_count(), n0);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(p[i], (char)(i * 7));
	p = curl_dl_realloc(p, 3 * BIG);	/* a libc block stays one */
	ck_assert_uint_eq(curl_dl_big_count(), n0);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(p[i], (char)(i * 7));
	curl_dl_free(p);
	s = curl_dl_strdup("a string");
	ck_assert_str_eq(s, "a string");
	curl_dl_free(s);
	ck_assert_uint_eq(curl_dl_big_count(), n0);
}
END_TEST

START_TEST(test_full_table_falls_back_to_malloc)
{
	enum { N = 300 };	/* more than the table's slots */
	char *p[N];
	size_t n0 = curl_dl_big_count(), peak;
	int i;

	for (i = 0; i < N; i++) {
		p[i] = curl_dl_malloc(BIG);
		ck_assert_ptr_nonnull(p[i]);
		memset(p[i], i, BIG);
	}
	peak = curl_dl_big_count();
	ck_assert_uint_gt(peak, n0);
	ck_assert_uint_lt(peak, n0 + N);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq((unsigned char)p[i][BIG - 1], i & 0xff);
		curl_dl_free(p[i]);
	}
	ck_assert_uint_eq(curl_dl_big_count(), n0);
}
END_TEST

START_TEST(test_libcurl_runs_with_it)
{
	const char *err = NULL;
	const struct curl_dl *cu = curl_dl_get(&err);
	CURL *e;

	ck_assert_msg(cu != NULL, "libcurl: %s", err ? err : "?");
	e = cu->easy_init();
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(cu->easy_setopt(e, CURLOPT_URL,
					 "https://127.0.0.1:1/v1"), CURLE_OK);
	ck_assert_int_eq(cu->easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE,
					 16L * 1024), CURLE_OK);
	cu->easy_cleanup(e);
	ck_assert_uint_eq(curl_dl_big_count(), 0);
}
END_TEST

static Suite *curl_dl_suite(void)
{
	Suite *s = suite_create("curl-dl");
	TCase *tc = tcase_create("alloc");

	tcase_add_test(tc, test_big_blocks_are_mappings);
	tcase_add_test(tc, test_realloc_keeps_contents);
	tcase_add_test(tc, test_full_table_falls_back_to_malloc);
	tcase_add_test(tc, test_libcurl_runs_with_it);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(curl_dl_suite());
	int failed;

	log_set_console(0);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_dl_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
