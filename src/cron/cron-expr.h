/* Schedules: cron expressions (5 fields, or 6 with seconds first), time
 * zones read from the system tz database (/usr/share/zoneinfo, TZif) by
 * this module itself (no TZ/tzset: thread-safe, no process-wide state),
 * absolute times (ISO 8601 or epoch ms) and durations ("20m", "1h30m").
 *
 * Next-time semantics (as upstream's croner-based scheduler): wall-clock
 * times in the job's zone; a local time skipped by a DST gap runs once, at
 * the end of the gap; a local time repeated by a DST fold runs once (its
 * first occurrence). Day-of-month and day-of-week combine with OR when both
 * are restricted, AND when one is "*" (vixie cron). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CRON_EXPR_MAX 256	/* longest expression accepted */

struct cron_expr {
	uint64_t sec;		/* bit i: second i (0-59) */
	uint64_t min;		/* 0-59 */
	uint32_t hour;		/* 0-23 */
	uint32_t dom;		/* bit d: day d (1-31) */
	uint16_t mon;		/* bit m: month m (1-12) */
	uint8_t dow;		/* bit d: weekday d (0 = Sunday) */
	uint8_t dom_star;	/* the day-of-month field was "*" or "?" */
	uint8_t dow_star;
	uint8_t has_seconds;	/* 6 fields */
};

/* Parse expr (5 or 6 fields, names JAN-DEC/SUN-SAT, lists, ranges, steps,
 * "?", dow 7 = Sunday, @yearly/@annually/@monthly/@weekly/@daily/@midnight/
 * @hourly). 0, or -1 with a message in err. */
int cron_expr_parse(const char *expr, struct cron_expr *out, char *err,
		    size_t errlen);

/* A time zone. */
struct cron_tz;
/* name: an IANA zone ("Europe/Berlin"), "UTC"/"Z", or NULL/"" for the
 * host zone ($TZ when it names a zone, else /etc/localtime, else UTC).
 * dir: the tz database root (NULL: $TZDIR, else /usr/share/zoneinfo).
 * 0, or -1 with a message in err. */
int cron_tz_load(const char *name, const char *dir, struct cron_tz **out,
		 char *err, size_t errlen);
void cron_tz_free(struct cron_tz *tz);
/* UTC offset (seconds east) in effect at utc_s. */
int32_t cron_tz_offset(const struct cron_tz *tz, int64_t utc_s);
/* The zone's name as loaded ("UTC" for UTC). */
const char *cron_tz_name(const struct cron_tz *tz);

/* The first time strictly after after_ms (epoch ms) that the expression
 * matches in tz (NULL = UTC). 0 with *out_ms, or -1 when there is none
 * within 50 years (e.g. "0 0 30 2 *"). */
int cron_expr_next(const struct cron_expr *e, const struct cron_tz *tz,
		   int64_t after_ms, int64_t *out_ms);

/* Local wall time (ms since the epoch as if the zone were UTC) → UTC ms.
 * A time in a gap gives the end of the gap; a repeated time its first
 * occurrence. */
int64_t cron_tz_local_to_utc(const struct cron_tz *tz, int64_t local_ms);

/* An absolute time: digits = epoch ms; ISO "YYYY-MM-DD[THH:MM[:SS[.fff]]]
 * [Z|±HH:MM|±HHMM]"; without an offset the time is local to tz (NULL =
 * UTC). 0, or -1. */
int cron_parse_at(const char *s, const struct cron_tz *tz, int64_t *out_ms);
/* A duration: "500ms", "90s", "20m", "1h30m", "2d", "1w", a bare number
 * (minutes unless default_unit_ms says otherwise). 0, or -1. */
int cron_parse_duration(const char *s, int64_t default_unit_ms,
			int64_t *out_ms);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t cron_days_from_civil(int64_t y, unsigned m, unsigned d);
void cron_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
