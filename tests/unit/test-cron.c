/* Unit tests for src/cron/cron-expr.c: the expression parser, next-time
 * search with time zones (DST gaps and folds, end of month, leap days,
 * 6-field seconds, zones past the last TZif transition), absolute times
 * and durations. Table-driven. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/util.h"
#include "cron/cron-expr.h"
#include "cron/cron.h"

/* ISO UTC "YYYY-MM-DDTHH:MM:SSZ" → ms (via the module's own parser, whose
 * offset handling is tested separately against fixed epoch values). */
static int64_t ms(const char *iso)
{
	int64_t v = 0;

	ck_assert_msg(cron_parse_at(iso, NULL, &v) == 0, "bad iso %s", iso);
	return v;
}

static void fmt(int64_t t, char *buf, size_t n)
{
	int64_t days = t / 1000 / 86400, y;
	int64_t sod = t / 1000 - days * 86400;
	unsigned m, d;

	cron_civil_from_days(days, &y, &m, &d);
	snprintf(buf, n, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ",
		 (long long)y, m, d, (long long)(sod / 3600),
		 (long long)(sod / 60 % 60), (long long)(sod % 60));
}

struct next_case {
	const char *expr, *tz, *after, *want;	/* want NULL: none */
};

static const struct next_case next_cases[] = {
	/* plain fields */
	{ "* * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z" },
	{ "*/15 * * * *", "UTC", "2026-01-01T00:14:59Z",
	  "2026-01-01T00:15:00Z" },
	{ "0 9 * * 1-5", "UTC", "2026-12-04T10:00:00Z",
	  "2026-12-07T09:00:00Z" },
	{ "0 0 * * 7", "UTC", "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z" },
	{ "0 0 * * sun", "UTC", "2026-12-05T00:00:00Z",
	  "2026-12-06T00:00:00Z" },
	{ "0 0 1 jan,jul *", "UTC", "2026-02-01T00:00:00Z",
	  "2026-07-01T00:00:00Z" },
	{ "@hourly", "UTC", "2026-01-01T00:30:00Z", "2026-01-01T01:00:00Z" },
	{ "@daily", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z" },
	{ "5-10/5 1 * * *", "UTC", "2026-01-01T01:05:00Z",
	  "2026-01-01T01:10:00Z" },
	/* day-of-month OR day-of-week when both are restricted */
	{ "0 0 13 * 5", "UTC", "2026-02-01T00:00:00Z",
	  "2026-02-06T00:00:00Z" },
	{ "0 0 13 * *", "UTC", "2026-02-01T00:00:00Z",
	  "2026-02-13T00:00:00Z" },
	/* end of month, leap days */
	{ "0 12 31 * *", "UTC", "2026-04-01T00:00:00Z",
	  "2026-05-31T12:00:00Z" },
	{ "0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z",
	  "2028-02-29T00:00:00Z" },
	{ "0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z",
	  "2104-02-29T00:00:00Z" },
	{ "0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z", NULL },
	{ "59 23 31 12 *", "UTC", "2026-12-31T23:59:00Z",
	  "2027-12-31T23:59:00Z" },
	/* 6 fields: seconds */
	{ "*/15 * * * * *", "UTC", "2026-01-01T00:00:07Z",
	  "2026-01-01T00:00:15Z" },
	{ "30 0 0 * * *", "UTC", "2026-01-01T00:00:30Z",
	  "2026-01-02T00:00:30Z" },
	{ "0 0 0 29 2 *", "UTC", "2027-06-01T00:00:00Z",
	  "2028-02-29T00:00:00Z" },
	/* zones */
	{ "0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z",
	  "2026-01-01T03:30:00Z" },
	{ "0 9 * * *", "America/New_York", "2026-07-01T00:00:00Z",
	  "2026-07-01T13:00:00Z" },
	/* DST gap (Berlin 2026-03-29 02:00 CET → 03:00 CEST): runs once at
	 * the end of the gap, then normally. */
	{ "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
	  "2026-03-29T01:00:00Z" },
	{ "30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z",
	  "2026-03-30T00:30:00Z" },
	{ "*/20 2 * * *", "Europe/Berlin", "2026-03-29T00:59:00Z",
	  "2026-03-29T01:00:00Z" },
	{ "*/20 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z",
	  "2026-03-30T00:00:00Z" },
	/* DST fold (Berlin 2026-10-25 03:00 CEST → 02:00 CET): the repeated
	 * 02:30 runs once, at its first occurrence. */
	{ "30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z",
	  "2026-10-25T00:30:00Z" },
	{ "30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z",
	  "2026-10-26T01:30:00Z" },
	{ "*/30 * * * *", "America/New_York", "2026-11-01T05:45:00Z",
	  "2026-11-01T07:00:00Z" },
	/* New York spring forward 2026-03-08 02:00 EST → 03:00 EDT */
	{ "0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z",
	  "2026-03-08T07:00:00Z" },
	/* past the zone's last transition: the POSIX footer rule */
	{ "0 12 1 7 *", "Europe/Berlin", "2040-01-01T00:00:00Z",
	  "2040-07-01T10:00:00Z" },
	{ "0 12 1 1 *", "Australia/Sydney", "2045-06-01T00:00:00Z",
	  "2046-01-01T01:00:00Z" },
	{ "0 12 1 7 *", "Australia/Sydney", "2045-01-01T00:00:00Z",
	  "2045-07-01T02:00:00Z" },
};

START_TEST(test_next)
{
	const struct next_case *c = &next_cases[_i];
	struct cron_expr e;
	struct cron_tz *tz = NULL;
	char err[128], got[40];
	int64_t out = 0;
	int rc;

	ck_assert_msg(cron_expr_parse(c->expr, &e, err, sizeof(err)) == 0,
		      "%s: %s", c->expr, err);
	ck_assert_msg(cron_tz_load(c->tz, NULL, &tz, err, sizeof(err)) == 0,
		      "%s: %s", c->tz, err);
	rc = cron_expr_next(&e, tz, ms(c->after), &out);
	if (!c->want) {
		ck_assert_int_eq(rc, -1);
	} else {
		ck_assert_int_eq(rc, 0);
		fmt(out, got, sizeof(got));
		ck_assert_msg(out == ms(c->want), "%s in %s after %s: got %s, "
			      "want %s", c->expr, c->tz, c->after, got,
			      c->want);
	}
	cron_tz_free(tz);
}
END_TEST

static const char *const bad_exprs[] = {
	"", "   ", "* * * *", "* * * * * * *", "60 * * * *", "* 24 * * *",
	"* * 0 * *", "* * 32 * *", "* * * 13 *", "* * * 0 *", "* * * * 8",
	"*/0 * * * *", "5-1 * * * *", "a * * * *", "1,,2 * * * *",
	"1, * * * *", ",1 * * * *", "@foo", "@hourly x", "1-2-3 * * * *",
	"*/ * * * *", "1/2/3 * * * *", "99999 * * * *", "* * * foo *",
	"L * * * *", "0 0 L * *", "0 0 * * 5#3", "- * * * *",
};

START_TEST(test_bad)
{
	struct cron_expr e;
	char err[128] = "";

	ck_assert_msg(cron_expr_parse(bad_exprs[_i], &e, err,
				      sizeof(err)) == -1, "accepted '%s'",
		      bad_exprs[_i]);
	ck_assert_msg(strncmp(err, "invalid cron expression", 23) == 0,
		      "message '%s'", err);
}
END_TEST

START_TEST(test_fields)
{
	struct cron_expr e;
	char err[128];

	ck_assert_int_eq(cron_expr_parse("0 0 * * *", &e, err, sizeof(err)),
			 0);
	ck_assert_int_eq(e.has_seconds, 0);
	ck_assert(e.sec == 1);
	ck_assert(e.dom_star && e.dow_star);
	ck_assert_int_eq(cron_expr_parse("0 0 0 ? * MON-fri", &e, err,
					 sizeof(err)), 0);
	ck_assert_int_eq(e.has_seconds, 1);
	ck_assert_int_eq(e.dow, 0x3e);
	ck_assert(e.dom_star && !e.dow_star);
	ck_assert_int_eq(cron_expr_parse("0 0 1 * 5-7", &e, err,
					 sizeof(err)), 0);
	ck_assert_int_eq(e.dow, 0x61);
	ck_assert_int_eq(cron_expr_parse("0 0 1 */3 *", &e, err,
					 sizeof(err)), 0);
	ck_assert_int_eq(e.mon, (1 << 1) | (1 << 4) | (1 << 7) | (1 << 10));
	ck_assert_int_eq(cron_expr_parse("10/20 * * * *", &e, err,
					 sizeof(err)), 0);
	ck_assert(e.min == ((1ull << 10) | (1ull << 30) | (1ull << 50)));
}
END_TEST

START_TEST(test_tz)
{
	struct cron_tz *tz = NULL;
	char err[128];

	ck_assert_int_eq(cron_tz_load("Mars/Olympus", NULL, &tz, err,
				      sizeof(err)), -1);
	ck_assert_str_eq(err, "Invalid time zone: Mars/Olympus");
	ck_assert_int_eq(cron_tz_load("../../etc/passwd", NULL, &tz, err,
				      sizeof(err)), -1);
	ck_assert_int_eq(cron_tz_load("/etc/passwd", NULL, &tz, err,
				      sizeof(err)), -1);
	ck_assert_int_eq(cron_tz_load("Europe/Berlin", "/nonexistent", &tz,
				      err, sizeof(err)), -1);
	ck_assert_int_eq(cron_tz_load("Europe/Berlin", NULL, &tz, err,
				      sizeof(err)), 0);
	ck_assert_int_eq(cron_tz_offset(tz, ms("2026-01-15T00:00:00Z") / 1000),
			 3600);
	ck_assert_int_eq(cron_tz_offset(tz, ms("2026-07-15T00:00:00Z") / 1000),
			 7200);
	ck_assert_int_eq(cron_tz_offset(tz, ms("2026-03-29T00:59:59Z") / 1000),
			 3600);
	ck_assert_int_eq(cron_tz_offset(tz, ms("2026-03-29T01:00:00Z") / 1000),
			 7200);
	ck_assert_int_eq(cron_tz_offset(tz, ms("2090-07-15T00:00:00Z") / 1000),
			 7200);
	ck_assert_int_eq(cron_tz_offset(tz, ms("2090-12-15T00:00:00Z") / 1000),
			 3600);
	cron_tz_free(tz);
	ck_assert_int_eq(cron_tz_load("UTC", NULL, &tz, err, sizeof(err)), 0);
	ck_assert_str_eq(cron_tz_name(tz), "UTC");
	cron_tz_free(tz);
	/* the host zone from $TZ */
	setenv("TZ", "Asia/Tokyo", 1);
	ck_assert_int_eq(cron_tz_load(NULL, NULL, &tz, err, sizeof(err)), 0);
	ck_assert_int_eq(cron_tz_offset(tz, 0), 9 * 3600);
	cron_tz_free(tz);
	unsetenv("TZ");
}
END_TEST

START_TEST(test_at)
{
	struct cron_tz *tz = NULL;
	char err[128];
	int64_t v;

	ck_assert_int_eq(cron_parse_at("2026-01-01T00:00:00Z", NULL, &v), 0);
	ck_assert(v == 1767225600000LL);
	ck_assert_int_eq(cron_parse_at("2026-01-01", NULL, &v), 0);
	ck_assert(v == 1767225600000LL);
	ck_assert_int_eq(cron_parse_at("2026-01-01T05:30:00+05:30", NULL, &v),
			 0);
	ck_assert(v == 1767225600000LL);
	ck_assert_int_eq(cron_parse_at("2025-12-31T19:00:00-0500", NULL, &v),
			 0);
	ck_assert(v == 1767225600000LL);
	ck_assert_int_eq(cron_parse_at("2026-01-01T00:00:00.250Z", NULL, &v),
			 0);
	ck_assert(v == 1767225600250LL);
	ck_assert_int_eq(cron_parse_at("1767225600000", NULL, &v), 0);
	ck_assert(v == 1767225600000LL);
	ck_assert_int_eq(cron_parse_at("2028-02-29T12:00", NULL, &v), 0);
	ck_assert_int_eq(cron_parse_at("2026-02-29T12:00", NULL, &v), -1);
	ck_assert_int_eq(cron_parse_at("2026-13-01", NULL, &v), -1);
	ck_assert_int_eq(cron_parse_at("2026-01-01T24:00", NULL, &v), -1);
	ck_assert_int_eq(cron_parse_at("tomorrow", NULL, &v), -1);
	ck_assert_int_eq(cron_parse_at("", NULL, &v), -1);
	ck_assert_int_eq(cron_parse_at("2026-01-01T00:00Zx", NULL, &v), -1);
	ck_assert_int_eq(cron_tz_load("Europe/Berlin", NULL, &tz, err,
				      sizeof(err)), 0);
	/* offset-less: local to the zone; a gap time → end of the gap; a
	 * repeated time → its first occurrence */
	ck_assert_int_eq(cron_parse_at("2026-07-01T12:00", tz, &v), 0);
	ck_assert(v == ms("2026-07-01T10:00:00Z"));
	ck_assert_int_eq(cron_parse_at("2026-03-29T02:30", tz, &v), 0);
	ck_assert(v == ms("2026-03-29T01:00:00Z"));
	ck_assert_int_eq(cron_parse_at("2026-10-25T02:30", tz, &v), 0);
	ck_assert(v == ms("2026-10-25T00:30:00Z"));
	cron_tz_free(tz);
}
END_TEST

START_TEST(test_duration)
{
	static const struct {
		const char *s;
		int64_t want;	/* -1: invalid */
	} c[] = {
		{ "20m", 1200000 }, { "1h30m", 5400000 }, { "90s", 90000 },
		{ "500ms", 500 }, { "2d", 172800000 }, { "1w", 604800000 },
		{ "10", 600000 }, { "+5m", 300000 }, { "1H", 3600000 },
		{ "", -1 }, { "m", -1 }, { "5x", -1 }, { "-5m", -1 },
		{ "5m x", -1 }, { "1h 5", -1 }, { "9999999999999m", -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int64_t v = -1;
		int rc = cron_parse_duration(c[i].s, 60000, &v);

		if (c[i].want < 0)
			ck_assert_msg(rc == -1, "accepted '%s'", c[i].s);
		else
			ck_assert_msg(rc == 0 && v == c[i].want,
				      "'%s' → %lld", c[i].s, (long long)v);
	}
}
END_TEST

START_TEST(test_civil)
{
	int64_t d, y;
	unsigned m, dd;

	for (d = -800000; d < 800000; d += 997) {
		cron_civil_from_days(d, &y, &m, &dd);
		ck_assert(cron_days_from_civil(y, m, dd) == d);
	}
}
END_TEST

/* cron_job_next: the scheduler's next time of a job JSON. */
START_TEST(test_job_next)
{
	static const struct {
		const char *job, *now, *want;	/* want NULL: none */
	} c[] = {
		/* at: once, until it ran */
		{ "{\"id\":\"a\",\"schedule\":{\"kind\":\"at\",\"at\":"
		  "\"2026-05-01T10:00:00Z\"}}", "2026-01-01T00:00:00Z",
		  "2026-05-01T10:00:00Z" },
		{ "{\"id\":\"a\",\"schedule\":{\"kind\":\"at\",\"at\":"
		  "\"2026-05-01T10:00:00Z\"}}", "2026-06-01T00:00:00Z",
		  "2026-05-01T10:00:00Z" },
		{ "{\"id\":\"a\",\"schedule\":{\"kind\":\"at\",\"at\":"
		  "\"2026-05-01T10:00:00Z\"},\"state\":{\"lastRunAtMs\":1}}",
		  "2026-01-01T00:00:00Z", NULL },
		/* every: anchored slots, strictly after now */
		{ "{\"id\":\"e\",\"schedule\":{\"kind\":\"every\","
		  "\"everyMs\":3600000,\"anchorMs\":1767225600000}}",
		  "2026-01-01T05:30:00Z", "2026-01-01T06:00:00Z" },
		{ "{\"id\":\"e\",\"schedule\":{\"kind\":\"every\","
		  "\"everyMs\":3600000,\"anchorMs\":1767225600000}}",
		  "2026-01-01T06:00:00Z", "2026-01-01T07:00:00Z" },
		{ "{\"id\":\"e\",\"schedule\":{\"kind\":\"every\","
		  "\"everyMs\":3600000,\"anchorMs\":1767225600000}}",
		  "2025-12-31T00:00:00Z", "2026-01-01T00:00:00Z" },
		/* every: one interval after the last run */
		{ "{\"id\":\"e\",\"schedule\":{\"kind\":\"every\","
		  "\"everyMs\":3600000,\"anchorMs\":1767225600000},"
		  "\"state\":{\"lastRunAtMs\":1767231000000}}",
		  "2026-01-01T01:40:00Z", "2026-01-01T02:30:00Z" },
		/* cron with an explicit stagger of 0, and in a zone */
		{ "{\"id\":\"c\",\"schedule\":{\"kind\":\"cron\","
		  "\"expr\":\"0 * * * *\",\"staggerMs\":0}}",
		  "2026-01-01T05:30:00Z", "2026-01-01T06:00:00Z" },
		{ "{\"id\":\"c\",\"schedule\":{\"kind\":\"cron\","
		  "\"expr\":\"30 8 * * *\",\"tz\":\"Asia/Kolkata\"}}",
		  "2026-01-01T00:00:00Z", "2026-01-01T03:00:00Z" },
		/* never matches */
		{ "{\"id\":\"c\",\"schedule\":{\"kind\":\"cron\","
		  "\"expr\":\"0 0 30 2 *\"}}", "2026-01-01T00:00:00Z", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		json_t *j = json_loads(c[i].job, 0, NULL);
		int64_t got;

		ck_assert_msg(j != NULL, "case %zu json", i);
		got = cron_job_next(j, ms(c[i].now));
		if (!c[i].want)
			ck_assert_msg(got == 0, "case %zu: %lld", i,
				      (long long)got);
		else
			ck_assert_msg(got == ms(c[i].want), "case %zu: %lld",
				      i, (long long)got);
		json_decref(j);
	}
}
END_TEST

/* Default stagger of top-of-hour jobs: a stable offset below 5 minutes
 * from SHA-256 of the id (upstream's resolveStableCronOffsetMs). */
START_TEST(test_job_stagger)
{
	json_t *j = json_loads("{\"id\":\"job-1\",\"schedule\":{\"kind\":"
			       "\"cron\",\"expr\":\"0 * * * *\"}}", 0, NULL);
	json_t *k = json_loads("{\"id\":\"job-1\",\"schedule\":{\"kind\":"
			       "\"cron\",\"expr\":\"0 9 * * *\"}}", 0, NULL);
	uint8_t h[32];
	int64_t off, got;

	util_sha256("job-1", 5, h);
	off = (int64_t)(((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
			 (uint32_t)h[2] << 8 | h[3]) % 300000u);
	got = cron_job_next(j, ms("2026-01-01T05:30:00Z"));
	ck_assert(got == ms("2026-01-01T06:00:00Z") + off);
	/* not top of every hour: exact */
	got = cron_job_next(k, ms("2026-01-01T05:30:00Z"));
	ck_assert(got == ms("2026-01-01T09:00:00Z"));
	json_decref(j);
	json_decref(k);
}
END_TEST

static Suite *cron_suite(void)
{
	Suite *s = suite_create("cron");
	TCase *tc = tcase_create("expr");

	tcase_add_loop_test(tc, test_next, 0, (int)(sizeof(next_cases) /
						   sizeof(next_cases[0])));
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad_exprs) /
						  sizeof(bad_exprs[0])));
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_tz);
	tcase_add_test(tc, test_at);
	tcase_add_test(tc, test_duration);
	tcase_add_test(tc, test_civil);
	tcase_add_test(tc, test_job_next);
	tcase_add_test(tc, test_job_stagger);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cron_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
