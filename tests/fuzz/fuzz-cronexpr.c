/* Fuzz target for the schedule parsers (src/cron/cron-expr.c): the cron
 * expression parser and next-time search (UTC and a DST zone), absolute
 * times and durations. Any input: no crash, no leak, no hang; a parsed
 * expression's next time is strictly after the start and itself matches
 * again as a fixed point (next(next-1ms) == next). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron/cron-expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cron_tz *fuzz_cronexpr_tz;

static void fuzz_cronexpr_next(const struct cron_expr *e,
			       const struct cron_tz *tz, int64_t after)
{
	int64_t n1, n2;

	if (cron_expr_next(e, tz, after, &n1) != 0)
		return;
	if (n1 <= after) {
		fprintf(stderr, "next %lld <= after %lld\n", (long long)n1,
			(long long)after);
		abort();
	}
	if (cron_expr_next(e, tz, n1 - 1, &n2) != 0 || n2 != n1) {
		fprintf(stderr, "next is not a fixed point\n");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[CRON_EXPR_MAX + 2], err[128];
	struct cron_expr e;
	int64_t v;

	if (!fuzz_cronexpr_tz &&
	    cron_tz_load("Europe/Berlin", NULL, &fuzz_cronexpr_tz, err,
			 sizeof(err)) != 0)
		fuzz_cronexpr_tz = NULL;
	if (size > CRON_EXPR_MAX + 1)
		size = CRON_EXPR_MAX + 1;
	memcpy(buf, data, size);
	buf[size] = '\0';
	err[0] = '\0';
	if (cron_expr_parse(buf, &e, err, sizeof(err)) == 0) {
		fuzz_cronexpr_next(&e, NULL, 1767225600000LL);
		/* around the 2026 spring-forward and fall-back in Berlin */
		fuzz_cronexpr_next(&e, fuzz_cronexpr_tz, 1774742400000LL);
		fuzz_cronexpr_next(&e, fuzz_cronexpr_tz, 1792886400000LL);
	} else if (!err[0]) {
		fprintf(stderr, "no error message\n");
		abort();
	}
	(void)cron_parse_at(buf, fuzz_cronexpr_tz, &v);
	/* a duration is at most 100 years: never a wrapped product */
	if (cron_parse_duration(buf, 60000, &v) == 0 &&
	    (v < 0 || v > 100LL * 365 * 86400000))
		abort();
	return 0;
}
