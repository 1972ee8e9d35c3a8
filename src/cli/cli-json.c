/* JSON output exactly as node's JSON.stringify(v, null, 2) writes it (the
 * real CLI's output): shortest round-trip numbers in ECMAScript notation,
 * lowercase \u00xx escapes for control characters only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"

/* Number::toString for a finite double (ECMA-262 6.1.6.1.20). */
void cli_json_number(double v, char *out, size_t cap)
{
	char buf[40], digits[20], *e, *p;
	int prec, exp10, k, n, i;
	size_t o = 0;

	if (!isfinite(v)) {
		snprintf(out, cap, "null");
		return;
	}
	if (v == 0) {
		snprintf(out, cap, "0");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	/* buf = [-]d[.ddd]e[+-]xx: split into digits and exponent */
	p = buf;
	if (*p == '-') {
		if (o + 1 < cap)
			out[o++] = '-';
		p++;
	}
	e = strchr(p, 'e');
	exp10 = atoi(e + 1);
	k = 0;
	for (; p < e && k < (int)sizeof(digits) - 1; p++)
		if (*p != '.')
			digits[k++] = *p;
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = '\0';
	n = exp10 + 1;
	if (k <= n && n <= 21) {
		o += (size_t)snprintf(out + o, cap - o, "%s", digits);
		for (i = 0; i < n - k && o + 1 < cap; i++)
			out[o++] = '0';
	} else if (0 < n && n <= 21) {
		o += (size_t)snprintf(out + o, cap - o, "%.*s.%s", n, digits,
				      digits + n);
	} else if (-6 < n && n <= 0) {
		o += (size_t)snprintf(out + o, cap - o, "0.");
		for (i = 0; i < -n && o + 1 < cap; i++)
			out[o++] = '0';
		o += (size_t)snprintf(out + o, cap - o, "%s", digits);
	} else {
		o += (size_t)snprintf(out + o, cap - o, "%c%s%.*s", digits[0],
				      k > 1 ? "." : "", k - 1, digits + 1);
		o += (size_t)snprintf(out + o, cap - o, "e%c%d",
				      n - 1 < 0 ? '-' : '+',
				      abs(n - 1));
	}
	out[o < cap ? o : cap - 1] = '\0';
}

static void cli_json_string(FILE *f, const char *s, size_t len)
{
	size_t i;
	unsigned char c;

	fputc('"', f);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

static void cli_json_indent(FILE *f, int depth)
{
	fprintf(f, "%*s", depth * 2, "");
}

static void cli_json_value(FILE *f, const json_t *v, int depth)
{
	const char *k;
	const json_t *x;
	char num[40];
	size_t i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (!json_object_size(v)) {
			fputs("{}", f);
			return;
		}
		fputs("{\n", f);
		n = 0;
		json_object_foreach((json_t *)v, k, x) {
			cli_json_indent(f, depth + 1);
			cli_json_string(f, k, strlen(k));
			fputs(": ", f);
			cli_json_value(f, x, depth + 1);
			fputs(++n < json_object_size(v) ? ",\n" : "\n", f);
		}
		cli_json_indent(f, depth);
		fputc('}', f);
		return;
	case JSON_ARRAY:
		if (!json_array_size(v)) {
			fputs("[]", f);
			return;
		}
		fputs("[\n", f);
		json_array_foreach(v, i, x) {
			cli_json_indent(f, depth + 1);
			cli_json_value(f, x, depth + 1);
			fputs(i + 1 < json_array_size(v) ? ",\n" : "\n", f);
		}
		cli_json_indent(f, depth);
		fputc(']', f);
		return;
	case JSON_STRING:
		cli_json_string(f, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	case JSON_REAL:
		cli_json_number(json_real_value(v), num, sizeof(num));
		fputs(num, f);
		return;
	case JSON_TRUE:
		fputs("true", f);
		return;
	case JSON_FALSE:
		fputs("false", f);
		return;
	default:
		fputs("null", f);
		return;
	}
}

void cli_json_print(FILE *f, const json_t *v)
{
	if (v)
		cli_json_value(f, v, 0);
	else
		fputs("null", f);
	fputc('\n', f);
}
