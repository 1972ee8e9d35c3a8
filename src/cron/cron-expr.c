/* Schedules: the cron expression parser, next-time search in wall-clock
 * time, a TZif (RFC 8536) zone reader with its POSIX TZ footer rule, and
 * the absolute-time and duration parsers. Pure functions, no global state
 * (the process TZ is never touched: other threads read it). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "cron/cron-expr.h"

#define CRON_TZIF_MAX (1024 * 1024)
#define CRON_SEARCH_YEARS 50
#define CRON_DAY 86400LL

static void cron_expr_err(char *err, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cron_expr_err(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (!err || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

/* ---- calendar arithmetic (Howard Hinnant's civil algorithms) ------------ */

int64_t cron_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void cron_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t cron_expr_floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b) != 0 && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int cron_expr_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned cron_expr_mdays(int64_t y, unsigned m)
{
	static const unsigned char n[] = { 31, 28, 31, 30, 31, 30, 31, 31,
					   30, 31, 30, 31 };

	return m == 2 && cron_expr_leap(y) ? 29 : n[m - 1];
}

/* 0 = Sunday. */
static unsigned cron_expr_wday(int64_t days)
{
	int64_t w = (days + 4) % 7;

	return (unsigned)(w < 0 ? w + 7 : w);
}

/* ---- expression parsing --------------------------------------------------- */

static const char *const cron_expr_months[] = { "jan", "feb", "mar", "apr",
	"may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const cron_expr_days[] = { "sun", "mon", "tue", "wed",
	"thu", "fri", "sat", NULL };

struct cron_expr_field {
	const char *name;
	int lo, hi;
	const char *const *names;	/* names[i] = lo + i */
};

static const struct cron_expr_field cron_expr_fields[] = {
	{ "second", 0, 59, NULL },
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day-of-month", 1, 31, NULL },
	{ "month", 1, 12, cron_expr_months },
	{ "day-of-week", 0, 7, cron_expr_days },
};

/* One value (number or name) at *p; advances *p. */
static int cron_expr_value(const char **p, const struct cron_expr_field *f,
			   int *out)
{
	const char *s = *p;
	int v = 0, nd = 0, i;

	if (isdigit((unsigned char)*s)) {
		while (isdigit((unsigned char)*s)) {
			if (++nd > 4)
				return -1;
			v = v * 10 + (*s++ - '0');
		}
		*p = s;
		*out = v;
		return 0;
	}
	if (!f->names)
		return -1;
	for (i = 0; f->names[i]; i++) {
		if (strncasecmp(s, f->names[i], 3) == 0 &&
		    !isalpha((unsigned char)s[3])) {
			*p = s + 3;
			*out = f->lo + i;
			return 0;
		}
	}
	return -1;
}

/* Parse one field (text [s, e)) into bits. */
static int cron_expr_field(const char *s, const char *e,
			   const struct cron_expr_field *f, uint64_t *bits,
			   uint8_t *star, char *err, size_t n)
{
	char part[CRON_EXPR_MAX + 1];
	const char *p, *q;
	size_t len = (size_t)(e - s);
	uint64_t b = 0;

	if (len == 0 || len > CRON_EXPR_MAX)
		goto bad;
	*star = (*s == '*' || *s == '?');
	p = s;
	while (p < e) {
		int a, z, step = 1, v;
		size_t pl;

		q = memchr(p, ',', (size_t)(e - p));
		if (!q)
			q = e;
		pl = (size_t)(q - p);
		if (pl == 0)
			goto bad;
		memcpy(part, p, pl);
		part[pl] = '\0';
		{
			const char *c = part;

			if (*c == '*' || *c == '?') {
				a = f->lo;
				z = f->hi == 7 ? 6 : f->hi;
				c++;
			} else {
				if (cron_expr_value(&c, f, &a) != 0)
					goto bad;
				z = a;
				if (*c == '-') {
					c++;
					if (cron_expr_value(&c, f, &z) != 0)
						goto bad;
				} else if (*c == '/') {
					z = f->hi == 7 ? 6 : f->hi;
				}
			}
			if (*c == '/') {
				c++;
				if (!isdigit((unsigned char)*c))
					goto bad;
				step = 0;
				while (isdigit((unsigned char)*c)) {
					if (step > 1000)
						goto bad;
					step = step * 10 + (*c++ - '0');
				}
				if (step < 1)
					goto bad;
			}
			if (*c != '\0')
				goto bad;
		}
		if (a < f->lo || a > f->hi || z < f->lo || z > f->hi ||
		    a > z)
			goto range;
		for (v = a; v <= z; v += step)
			b |= 1ull << (f->hi == 7 && v == 7 ? 0 : v);
		p = q < e ? q + 1 : e;
		if (q < e && p == e)
			goto bad;
	}
	*bits = b;
	return 0;
range:
	cron_expr_err(err, n, "invalid cron expression: %s field out of "
		      "range (%d-%d)", f->name, f->lo, f->hi);
	return -1;
bad:
	cron_expr_err(err, n, "invalid cron expression: bad %s field",
		      f->name);
	return -1;
}

static const struct {
	const char *name, *expr;
} cron_expr_macros[] = {
	{ "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

int cron_expr_parse(const char *expr, struct cron_expr *out, char *err,
		    size_t errlen)
{
	const char *s[6], *e[6], *p;
	struct cron_expr x;
	uint64_t bits;
	int nf = 0, i, first;
	size_t k;

	if (!expr) {
		cron_expr_err(err, errlen, "invalid cron expression: empty");
		return -1;
	}
	if (strlen(expr) > CRON_EXPR_MAX) {
		cron_expr_err(err, errlen, "invalid cron expression: longer "
			      "than %d characters", CRON_EXPR_MAX);
		return -1;
	}
	while (isspace((unsigned char)*expr))
		expr++;
	if (*expr == '@') {
		size_t l = strcspn(expr, " \t\r\n");

		for (k = 0; k < ARRAY_SIZE(cron_expr_macros); k++) {
			if (strlen(cron_expr_macros[k].name) == l &&
			    strncasecmp(expr, cron_expr_macros[k].name, l) == 0
			    && expr[l + strspn(expr + l, " \t\r\n")] == '\0')
				return cron_expr_parse(cron_expr_macros[k].expr,
						       out, err, errlen);
		}
		cron_expr_err(err, errlen, "invalid cron expression: unknown "
			      "macro");
		return -1;
	}
	p = expr;
	while (*p) {
		if (nf == 6) {
			cron_expr_err(err, errlen, "invalid cron expression: "
				      "expected 5 or 6 fields");
			return -1;
		}
		s[nf] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		e[nf++] = p;
		while (isspace((unsigned char)*p))
			p++;
	}
	if (nf != 5 && nf != 6) {
		cron_expr_err(err, errlen, "invalid cron expression: expected "
			      "5 or 6 fields, got %d", nf);
		return -1;
	}
	memset(&x, 0, sizeof(x));
	first = nf == 6 ? 0 : 1;
	if (nf == 5)
		x.sec = 1;
	x.has_seconds = nf == 6;
	for (i = 0; i < nf; i++) {
		const struct cron_expr_field *f = &cron_expr_fields[first + i];
		uint8_t star = 0;

		if (cron_expr_field(s[i], e[i], f, &bits, &star, err,
				    errlen) != 0)
			return -1;
		switch (first + i) {
		case 0: x.sec = bits; break;
		case 1: x.min = bits; break;
		case 2: x.hour = (uint32_t)bits; break;
		case 3: x.dom = (uint32_t)bits; x.dom_star = star; break;
		case 4: x.mon = (uint16_t)bits; break;
		default: x.dow = (uint8_t)bits; x.dow_star = star; break;
		}
	}
	*out = x;
	return 0;
}

/* ---- next match in wall-clock seconds ----------------------------------- */

static int cron_expr_day_ok(const struct cron_expr *e, unsigned d,
			    unsigned wd)
{
	int dm = (e->dom >> d) & 1, wm = (e->dow >> wd) & 1;

	if (e->dom_star || e->dow_star)
		return dm && wm;
	return dm || wm;
}

/* Lowest set bit >= from in mask (bits 0..hi), or -1. */
static int cron_expr_bit_from(uint64_t mask, int from, int hi)
{
	int i;

	for (i = from; i <= hi; i++)
		if ((mask >> i) & 1)
			return i;
	return -1;
}

/* The first local second > t matching e; -1 when none before limit. */
static int cron_expr_next_local(const struct cron_expr *e, int64_t t,
				int64_t limit, int64_t *out)
{
	t++;
	while (t <= limit) {
		int64_t days = cron_expr_floordiv(t, CRON_DAY), y;
		int64_t sod = t - days * CRON_DAY;
		unsigned m, d;
		int H = (int)(sod / 3600), M = (int)(sod / 60 % 60);
		int S = (int)(sod % 60), v;

		cron_civil_from_days(days, &y, &m, &d);
		if (!((e->mon >> m) & 1)) {
			if (m == 12)
				t = cron_days_from_civil(y + 1, 1, 1) *
				    CRON_DAY;
			else
				t = cron_days_from_civil(y, m + 1, 1) *
				    CRON_DAY;
			continue;
		}
		if (!cron_expr_day_ok(e, d, cron_expr_wday(days))) {
			t = (days + 1) * CRON_DAY;
			continue;
		}
		if (!((e->hour >> H) & 1)) {
			v = cron_expr_bit_from(e->hour, H, 23);
			t = v < 0 ? (days + 1) * CRON_DAY
				  : days * CRON_DAY + v * 3600;
			continue;
		}
		if (!((e->min >> M) & 1)) {
			v = cron_expr_bit_from(e->min, M, 59);
			t = v < 0 ? days * CRON_DAY + (H + 1) * 3600
				  : days * CRON_DAY + H * 3600 + v * 60;
			continue;
		}
		if (!((e->sec >> S) & 1)) {
			v = cron_expr_bit_from(e->sec, S, 59);
			t = v < 0 ? days * CRON_DAY + H * 3600 + (M + 1) * 60
				  : days * CRON_DAY + H * 3600 + M * 60 + v;
			continue;
		}
		*out = t;
		return 0;
	}
	return -1;
}

/* ---- time zones ---------------------------------------------------------- */

struct cron_tz_rule {
	char kind;		/* 'M', 'J' or 'n' */
	int m, w, d;		/* M: month, week, weekday; J/n: day */
	int32_t time;		/* seconds after local midnight */
};

struct cron_tz {
	char name[80];
	int utc;
	int64_t *trans;		/* transition times (UTC s), ascending */
	uint8_t *idx;		/* type of each transition */
	int ntrans;
	int32_t *utoff;		/* offset of each type */
	int ntypes;
	int has_rule;		/* POSIX footer */
	int has_dst;
	int32_t std_off, dst_off;
	struct cron_tz_rule start, end;
};

static int64_t cron_tz_be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	if (n == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

/* POSIX TZ: [+-]hh[:mm[:ss]] → seconds (sign as written). */
static int cron_tz_posix_time(const char **p, int32_t *out)
{
	const char *s = *p;
	int sign = 1, h = 0, m = 0, sec = 0, nd = 0;

	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s) && nd++ < 3)
		h = h * 10 + (*s++ - '0');
	if (h > 167)
		return -1;
	if (*s == ':') {
		s++;
		if (!isdigit((unsigned char)s[0]) ||
		    !isdigit((unsigned char)s[1]))
			return -1;
		m = (s[0] - '0') * 10 + (s[1] - '0');
		s += 2;
		if (*s == ':') {
			s++;
			if (!isdigit((unsigned char)s[0]) ||
			    !isdigit((unsigned char)s[1]))
				return -1;
			sec = (s[0] - '0') * 10 + (s[1] - '0');
			s += 2;
		}
	}
	*p = s;
	*out = sign * (h * 3600 + m * 60 + sec);
	return 0;
}

static int cron_tz_posix_name(const char **p)
{
	const char *s = *p;

	if (*s == '<') {
		s = strchr(s, '>');
		if (!s)
			return -1;
		*p = s + 1;
		return 0;
	}
	while (isalpha((unsigned char)*s))
		s++;
	if (s - *p < 3)
		return -1;
	*p = s;
	return 0;
}

static int cron_tz_posix_num(const char **p, int lo, int hi, int *out)
{
	const char *s = *p;
	int v = 0, nd = 0;

	while (isdigit((unsigned char)*s) && nd++ < 4)
		v = v * 10 + (*s++ - '0');
	if (!nd || v < lo || v > hi)
		return -1;
	*p = s;
	*out = v;
	return 0;
}

static int cron_tz_posix_rule(const char **p, struct cron_tz_rule *r)
{
	const char *s = *p;

	r->time = 7200;
	if (*s == 'M') {
		s++;
		r->kind = 'M';
		if (cron_tz_posix_num(&s, 1, 12, &r->m) || *s++ != '.' ||
		    cron_tz_posix_num(&s, 1, 5, &r->w) || *s++ != '.' ||
		    cron_tz_posix_num(&s, 0, 6, &r->d))
			return -1;
	} else if (*s == 'J') {
		s++;
		r->kind = 'J';
		if (cron_tz_posix_num(&s, 1, 365, &r->d))
			return -1;
	} else {
		r->kind = 'n';
		if (cron_tz_posix_num(&s, 0, 365, &r->d))
			return -1;
	}
	if (*s == '/') {
		s++;
		if (cron_tz_posix_time(&s, &r->time))
			return -1;
	}
	*p = s;
	return 0;
}

/* Parse the footer; 0 on success (tz->has_rule set). */
static int cron_tz_posix(struct cron_tz *tz, const char *s)
{
	int32_t v;

	if (cron_tz_posix_name(&s) || cron_tz_posix_time(&s, &v))
		return -1;
	tz->std_off = -v;
	if (*s == '\0') {
		tz->has_rule = 1;
		return 0;
	}
	if (cron_tz_posix_name(&s))
		return -1;
	tz->dst_off = tz->std_off + 3600;
	if (*s && *s != ',') {
		if (cron_tz_posix_time(&s, &v))
			return -1;
		tz->dst_off = -v;
	}
	if (*s++ != ',' || cron_tz_posix_rule(&s, &tz->start) ||
	    *s++ != ',' || cron_tz_posix_rule(&s, &tz->end) || *s)
		return -1;
	tz->has_dst = 1;
	tz->has_rule = 1;
	return 0;
}

/* Local day number (days since epoch) of a rule in year y. */
static int64_t cron_tz_rule_day(const struct cron_tz_rule *r, int64_t y)
{
	int64_t first;
	unsigned wd;
	int day;

	if (r->kind == 'J') {
		day = r->d;
		if (cron_expr_leap(y) && day >= 60)
			day++;
		return cron_days_from_civil(y, 1, 1) + day - 1;
	}
	if (r->kind == 'n')
		return cron_days_from_civil(y, 1, 1) + r->d;
	first = cron_days_from_civil(y, (unsigned)r->m, 1);
	wd = cron_expr_wday(first);
	day = 1 + ((r->d - (int)wd + 7) % 7) + (r->w - 1) * 7;
	while (day > (int)cron_expr_mdays(y, (unsigned)r->m))
		day -= 7;
	return first + day - 1;
}

static int32_t cron_tz_rule_offset(const struct cron_tz *tz, int64_t t)
{
	int64_t y, s, e;
	unsigned m, d;

	if (!tz->has_dst)
		return tz->std_off;
	cron_civil_from_days(cron_expr_floordiv(t + tz->std_off, CRON_DAY),
			     &y, &m, &d);
	s = cron_tz_rule_day(&tz->start, y) * CRON_DAY + tz->start.time -
	    tz->std_off;
	e = cron_tz_rule_day(&tz->end, y) * CRON_DAY + tz->end.time -
	    tz->dst_off;
	if (s < e)
		return t >= s && t < e ? tz->dst_off : tz->std_off;
	return t >= e && t < s ? tz->std_off : tz->dst_off;
}

int32_t cron_tz_offset(const struct cron_tz *tz, int64_t t)
{
	int lo, hi;

	if (!tz || tz->utc)
		return 0;
	if (tz->ntrans == 0 || t >= tz->trans[tz->ntrans - 1]) {
		if (tz->has_rule && (tz->ntrans == 0 ||
				     t >= tz->trans[tz->ntrans - 1]))
			return cron_tz_rule_offset(tz, t);
		if (tz->ntrans == 0)
			return tz->ntypes ? tz->utoff[0] : 0;
		return tz->utoff[tz->idx[tz->ntrans - 1]];
	}
	if (t < tz->trans[0])
		return tz->utoff[0];
	lo = 0;
	hi = tz->ntrans - 1;	/* trans[lo] <= t < trans[hi] */
	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;

		if (tz->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return tz->utoff[tz->idx[lo]];
}

const char *cron_tz_name(const struct cron_tz *tz)
{
	return tz ? tz->name : "UTC";
}

void cron_tz_free(struct cron_tz *tz)
{
	if (!tz)
		return;
	free(tz->trans);
	free(tz->idx);
	free(tz->utoff);
	free(tz);
}

/* Parse a TZif image into tz. 0 or -1. */
static int cron_tz_parse(struct cron_tz *tz, const unsigned char *b,
			 size_t n)
{
	const unsigned char *p = b, *end = b + n;
	int64_t cnt[6];
	size_t v1, tsz = 4;
	int i;

	if (n < 44 || memcmp(b, "TZif", 4) != 0)
		return -1;
	for (i = 0; i < 6; i++)
		cnt[i] = cron_tz_be(b + 20 + i * 4, 4);
	for (i = 0; i < 6; i++)
		if (cnt[i] < 0 || cnt[i] > 100000)
			return -1;
	/* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
	v1 = (size_t)(cnt[3] * 5 + cnt[4] * 6 + cnt[5] + cnt[2] * 8 +
		      cnt[1] + cnt[0]);
	p = b + 44;
	if (b[4] >= '2') {
		if ((size_t)(end - p) < v1 + 44)
			return -1;
		p += v1;
		if (memcmp(p, "TZif", 4) != 0)
			return -1;
		for (i = 0; i < 6; i++)
			cnt[i] = cron_tz_be(p + 20 + i * 4, 4);
		for (i = 0; i < 6; i++)
			if (cnt[i] < 0 || cnt[i] > 100000)
				return -1;
		p += 44;
		tsz = 8;
	}
	if (cnt[4] < 1 ||
	    (size_t)(end - p) < (size_t)(cnt[3] * ((int64_t)tsz + 1) +
					 cnt[4] * 6))
		return -1;
	tz->ntrans = (int)cnt[3];
	tz->ntypes = (int)cnt[4];
	tz->trans = xcalloc((size_t)tz->ntrans + 1, sizeof(*tz->trans));
	tz->idx = xcalloc((size_t)tz->ntrans + 1, 1);
	tz->utoff = xcalloc((size_t)tz->ntypes, sizeof(*tz->utoff));
	for (i = 0; i < tz->ntrans; i++, p += tsz) {
		tz->trans[i] = cron_tz_be(p, (int)tsz);
		if (i && tz->trans[i] <= tz->trans[i - 1])
			return -1;
	}
	for (i = 0; i < tz->ntrans; i++, p++) {
		if (*p >= tz->ntypes)
			return -1;
		tz->idx[i] = *p;
	}
	for (i = 0; i < tz->ntypes; i++, p += 6) {
		tz->utoff[i] = (int32_t)cron_tz_be(p, 4);
		if (tz->utoff[i] < -25 * 3600 || tz->utoff[i] > 26 * 3600)
			return -1;
	}
	if (tsz == 8) {
		size_t rest = (size_t)(cnt[5] + cnt[2] * 12 + cnt[1] +
				       cnt[0]);
		char foot[128];
		const unsigned char *nl;

		if ((size_t)(end - p) >= rest + 2 && p[rest] == '\n') {
			p += rest + 1;
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl && (size_t)(nl - p) < sizeof(foot) && nl > p) {
				memcpy(foot, p, (size_t)(nl - p));
				foot[nl - p] = '\0';
				if (cron_tz_posix(tz, foot) != 0)
					tz->has_rule = 0;
			}
		}
	}
	return 0;
}

static int cron_tz_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '/' || s[0] == '.' || strstr(s, ".."))
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '/' && c != '_' && c != '-' &&
		    c != '+')
			return 0;
	}
	return 1;
}

static int cron_tz_read(const char *path, unsigned char **buf, size_t *n)
{
	struct stat sb;
	unsigned char *b = NULL;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > CRON_TZIF_MAX || sb.st_size < 44) {
		close(fd);
		return -1;
	}
	b = xmalloc((size_t)sb.st_size);
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, b + got, (size_t)sb.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != (size_t)sb.st_size) {
		free(b);
		return -1;
	}
	*buf = b;
	*n = got;
	return 0;
}

static int cron_tz_is_utc(const char *s)
{
	return strcasecmp(s, "UTC") == 0 || strcasecmp(s, "Z") == 0 ||
	       strcasecmp(s, "Etc/UTC") == 0 || strcasecmp(s, "GMT") == 0 ||
	       strcasecmp(s, "Etc/GMT") == 0 || strcasecmp(s, "UCT") == 0 ||
	       strcasecmp(s, "Universal") == 0 || strcasecmp(s, "Zulu") == 0;
}

int cron_tz_load(const char *name, const char *dir, struct cron_tz **out,
		 char *err, size_t errlen)
{
	struct cron_tz *tz = NULL;
	unsigned char *buf = NULL;
	char path[512];
	const char *file = NULL;
	size_t n = 0;
	int host = !name || !*name;

	if (!dir || !*dir)
		dir = getenv("TZDIR");
	if (!dir || !*dir)
		dir = "/usr/share/zoneinfo";
	tz = xcalloc(1, sizeof(*tz));
	if (host) {
		const char *e = getenv("TZ");

		if (e && *e == ':')
			e++;
		if (e && *e) {
			name = e;
		} else {
			file = "/etc/localtime";
			snprintf(tz->name, sizeof(tz->name), "localtime");
		}
	}
	if (!file && cron_tz_is_utc(name)) {
		tz->utc = 1;
		snprintf(tz->name, sizeof(tz->name), "UTC");
		*out = tz;
		return 0;
	}
	if (!file) {
		if (host && name[0] == '/') {
			file = name;
		} else if (!cron_tz_name_ok(name)) {
			goto bad;
		} else {
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			file = path;
		}
		snprintf(tz->name, sizeof(tz->name), "%s", name);
	}
	if (cron_tz_read(file, &buf, &n) != 0 ||
	    cron_tz_parse(tz, buf, n) != 0) {
		if (host) {	/* the host zone falls back to UTC */
			cron_tz_free(tz);
			tz = xcalloc(1, sizeof(*tz));
			tz->utc = 1;
			snprintf(tz->name, sizeof(tz->name), "UTC");
			free(buf);
			*out = tz;
			return 0;
		}
		goto bad;
	}
	free(buf);
	*out = tz;
	return 0;
bad:
	cron_expr_err(err, errlen, "Invalid time zone: %s", name ? name : "");
	free(buf);
	cron_tz_free(tz);
	return -1;
}

int64_t cron_tz_local_to_utc(const struct cron_tz *tz, int64_t local_ms)
{
	int64_t L = cron_expr_floordiv(local_ms, 1000);
	int64_t frac = local_ms - L * 1000;
	int32_t oa, ob;
	int64_t u1, u2, best = INT64_MAX, lo, hi;

	if (!tz || tz->utc)
		return local_ms;
	oa = cron_tz_offset(tz, L - CRON_DAY);
	ob = cron_tz_offset(tz, L + CRON_DAY);
	u1 = L - oa;
	u2 = L - ob;
	if (cron_tz_offset(tz, u1) == oa)
		best = u1;
	if (cron_tz_offset(tz, u2) == ob && u2 < best)
		best = u2;
	if (best != INT64_MAX)
		return best * 1000 + frac;
	/* In a gap: the transition instant, found between u2 (old offset)
	 * and u1 (new offset). */
	lo = u1 < u2 ? u1 : u2;
	hi = u1 < u2 ? u2 : u1;
	{
		int32_t o0 = cron_tz_offset(tz, lo);

		while (hi - lo > 1) {
			int64_t mid = lo + (hi - lo) / 2;

			if (cron_tz_offset(tz, mid) == o0)
				lo = mid;
			else
				hi = mid;
		}
	}
	return hi * 1000;
}

int cron_expr_next(const struct cron_expr *e, const struct cron_tz *tz,
		   int64_t after_ms, int64_t *out_ms)
{
	int64_t after_s = cron_expr_floordiv(after_ms, 1000);
	int64_t cursor = after_s + cron_tz_offset(tz, after_s);
	int64_t limit = cursor + CRON_SEARCH_YEARS * 366 * CRON_DAY;
	int64_t L, u;
	int i;

	/* A fold can put the next instant behind a few local matches that
	 * map to earlier instants; bounded. */
	for (i = 0; i < 100000; i++) {
		if (cron_expr_next_local(e, cursor, limit, &L) != 0)
			return -1;
		u = cron_tz_local_to_utc(tz, L * 1000);
		if (u > after_ms) {
			*out_ms = u;
			return 0;
		}
		cursor = L;
	}
	return -1;
}

/* ---- absolute times and durations ---------------------------------------- */

static int cron_expr_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int cron_parse_at(const char *s, const struct cron_tz *tz, int64_t *out_ms)
{
	int Y, M, D, h = 0, mi = 0, sec = 0, ms = 0, off = 0, has_off = 0;
	const char *p;
	int64_t t;

	if (!s)
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	p = s;
	if (*p && strspn(p, "0123456789") == strlen(p)) {
		if (strlen(p) > 16)
			return -1;
		t = strtoll(p, NULL, 10);
		if (t <= 0)
			return -1;
		*out_ms = t;
		return 0;
	}
	if (cron_expr_digits(&p, 4, &Y) || *p++ != '-' ||
	    cron_expr_digits(&p, 2, &M) || *p++ != '-' ||
	    cron_expr_digits(&p, 2, &D))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > (int)cron_expr_mdays(Y,
							     (unsigned)M))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (cron_expr_digits(&p, 2, &h) || *p++ != ':' ||
		    cron_expr_digits(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (cron_expr_digits(&p, 2, &sec))
				return -1;
			if (*p == '.' || *p == ',') {
				int nd = 0;

				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				while (isdigit((unsigned char)*p)) {
					if (nd < 3) {
						ms = ms * 10 + (*p - '0');
						nd++;
					}
					p++;
				}
				while (nd++ < 3)
					ms *= 10;
			}
		}
		if (h > 23 || mi > 59 || sec > 59)
			return -1;
		if (*p == 'Z' || *p == 'z') {
			has_off = 1;
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, oh, om = 0;

			if (cron_expr_digits(&p, 2, &oh))
				return -1;
			if (*p == ':')
				p++;
			if (isdigit((unsigned char)*p) &&
			    cron_expr_digits(&p, 2, &om))
				return -1;
			if (oh > 23 || om > 59)
				return -1;
			off = sign * (oh * 3600 + om * 60);
			has_off = 1;
		}
	}
	if (*p != '\0')
		return -1;
	t = (cron_days_from_civil(Y, (unsigned)M, (unsigned)D) * CRON_DAY +
	     h * 3600 + mi * 60 + sec) * 1000 + ms;
	if (has_off)
		t -= (int64_t)off * 1000;
	else
		t = cron_tz_local_to_utc(tz, t);
	*out_ms = t;
	return 0;
}

#define CRON_DURATION_MAX_MS (100LL * 365 * 86400000)

int cron_parse_duration(const char *s, int64_t default_unit_ms,
			int64_t *out_ms)
{
	static const struct {
		const char *u;
		int64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 }, { "w", 604800000 },
	};
	int64_t total = 0;
	int parts = 0;

	if (!s)
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '+')
		s++;
	while (*s && !isspace((unsigned char)*s)) {
		int64_t v = 0, mul = -1;
		int nd = 0;
		size_t k, ul = 0;

		while (isdigit((unsigned char)*s)) {
			if (++nd > 12)
				return -1;
			v = v * 10 + (*s++ - '0');
		}
		if (!nd)
			return -1;
		for (k = 0; k < ARRAY_SIZE(units); k++) {
			size_t l = strlen(units[k].u);

			if (strncasecmp(s, units[k].u, l) == 0 &&
			    !isalpha((unsigned char)s[l]) && l > ul) {
				mul = units[k].ms;
				ul = l;
			}
		}
		if (mul < 0) {
			if (*s || parts)
				return -1;
			mul = default_unit_ms;
		}
		s += ul;
		/* bound the product before computing it: 12 digits of weeks
		 * overflowed int64 (found by the cronexpr fuzz target) */
		if (mul > 0 && v > (CRON_DURATION_MAX_MS - total) / mul)
			return -1;
		total += v * mul;
		parts++;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s || !parts)
		return -1;
	*out_ms = total;
	return 0;
}
