/* Unit tests for the held wake-ups (core/wake.h): a thread that holds
 * wakes each receiver once at its flush, never before; a thread that does
 * not hold is told to wake at once; a receiver removed meanwhile is not
 * woken; a full list or table falls back to waking at once. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/wake.h"

static int woken[16];

static void wake_fn(void *arg)
{
	woken[(int *)arg - woken]++;
}

START_TEST(test_not_holding_wakes_now)
{
	ck_assert_int_eq(wake_target_add(&woken[0]), 1);
	ck_assert_int_eq(wake_later(wake_fn, &woken[0]), 0);
	wake_flush();
	ck_assert_int_eq(woken[0], 0);
	wake_target_del(&woken[0]);
}
END_TEST

START_TEST(test_held_until_flush_once_each)
{
	wake_target_add(&woken[0]);
	wake_target_add(&woken[1]);
	wake_hold();
	ck_assert_int_eq(wake_later(wake_fn, &woken[0]), 1);
	ck_assert_int_eq(wake_later(wake_fn, &woken[1]), 1);
	ck_assert_int_eq(wake_later(wake_fn, &woken[0]), 1);
	ck_assert_int_eq(woken[0] + woken[1], 0);	/* not before */
	wake_flush();
	ck_assert_int_eq(woken[0], 1);
	ck_assert_int_eq(woken[1], 1);
	wake_flush();					/* nothing left */
	ck_assert_int_eq(woken[0], 1);
	ck_assert_int_eq(wake_later(wake_fn, &woken[0]), 1);
	wake_flush();
	ck_assert_int_eq(woken[0], 2);
	wake_target_del(&woken[0]);
	wake_target_del(&woken[1]);
}
END_TEST

START_TEST(test_removed_receiver_not_woken)
{
	wake_target_add(&woken[2]);
	wake_hold();
	ck_assert_int_eq(wake_later(wake_fn, &woken[2]), 1);
	wake_target_del(&woken[2]);
	wake_flush();
	ck_assert_int_eq(woken[2], 0);
}
END_TEST

START_TEST(test_full_list_wakes_now)
{
	int i, held = 0;

	for (i = 0; i < 16; i++)
		wake_target_add(&woken[i]);
	wake_hold();
	for (i = 0; i < 16; i++)
		held += wake_later(wake_fn, &woken[i]);
	ck_assert_int_eq(held, 8);		/* WAKE_MAX */
	wake_flush();
	for (i = 0; i < 16; i++)
		ck_assert_int_eq(woken[i], i < 8);
	for (i = 0; i < 16; i++)
		wake_target_del(&woken[i]);
}
END_TEST

START_TEST(test_full_table_refused)
{
	static char t[65];
	int i;

	for (i = 0; i < 64; i++)
		ck_assert_int_eq(wake_target_add(&t[i]), 1);
	ck_assert_int_eq(wake_target_add(&t[64]), 0);
	wake_target_del(&t[0]);
	ck_assert_int_eq(wake_target_add(&t[64]), 1);
	for (i = 1; i < 65; i++)
		wake_target_del(&t[i]);
}
END_TEST

static void *other_thread(void *arg)
{
	/* Another thread does not inherit the hold. */
	*(int *)arg = wake_later(wake_fn, &woken[3]);
	return NULL;
}

START_TEST(test_hold_is_per_thread)
{
	pthread_t t;
	int r = -1;

	wake_target_add(&woken[3]);
	wake_hold();
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &r), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(r, 0);
	wake_flush();
	ck_assert_int_eq(woken[3], 0);
	wake_target_del(&woken[3]);
}
END_TEST

static Suite *wake_suite(void)
{
	Suite *s = suite_create("wake");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_not_holding_wakes_now);
	tcase_add_test(tc, test_held_until_flush_once_each);
	tcase_add_test(tc, test_removed_receiver_not_woken);
	tcase_add_test(tc, test_full_list_wakes_now);
	tcase_add_test(tc, test_full_table_refused);
	tcase_add_test(tc, test_hold_is_per_thread);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wake_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
