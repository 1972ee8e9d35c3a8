/* Unit tests for the JSON5 reader: a valid corpus compared with the JSON it
 * means, and an invalid corpus with exact positions and messages. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json5.h"

struct valid_case {
	const char *in;
	const char *json;	/* expected value, as plain JSON */
	size_t len;		/* 0: strlen(in) */
};

static const struct valid_case valid_cases[] = {
	{ "{}", "{}", 0 },
	{ "[]", "[]", 0 },
	{ "null", "null", 0 },
	{ "true", "true", 0 },
	{ " false ", "false", 0 },
	{ "[1, 2, 3]", "[1, 2, 3]", 0 },
	{ "{\"a\": 1, \"b\": [true, null]}", "{\"a\": 1, \"b\": [true, null]}",
	  0 },
	/* comments */
	{ "// comment\n{a: 1}", "{\"a\": 1}", 0 },
	{ "/* block */ [1, /* inner */ 2]", "[1, 2]", 0 },
	{ "[1] // trailing comment, no newline", "[1]", 0 },
	{ "{a:1}/**/", "{\"a\": 1}", 0 },
	{ "/* multi\n * line\n */ 7", "7", 0 },
	{ "/***/ 1 /* ** / */", "1", 0 },
	{ "// a\r\n// b\xe2\x80\xa8[]", "[]", 0 },
	/* trailing commas */
	{ "{a: 1,}", "{\"a\": 1}", 0 },
	{ "[1, 2,]", "[1, 2]", 0 },
	{ "[[],]", "[[]]", 0 },
	/* keys */
	{ "{$key: 1, _k: 2, k9: 3, A$_0: 4}",
	  "{\"$key\": 1, \"_k\": 2, \"k9\": 3, \"A$_0\": 4}", 0 },
	{ "{'single': 1, \"double\": 2}", "{\"single\": 1, \"double\": 2}",
	  0 },
	{ "{null: 1, true: 2, Infinity: 3, NaN: 4}",
	  "{\"null\": 1, \"true\": 2, \"Infinity\": 3, \"NaN\": 4}", 0 },
	{ "{\\u0061b: 1, c\\u0024: 2}", "{\"ab\": 1, \"c$\": 2}", 0 },
	{ "{\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87: 1}",
	  "{\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\": 1}", 0 },
	{ "{caf\xc3\xa9: 1, \xe6\x97\xa5\xe6\x9c\xac: 2}",
	  "{\"caf\xc3\xa9\": 1, \"\xe6\x97\xa5\xe6\x9c\xac\": 2}", 0 },
	{ "{'': 1}", "{\"\": 1}", 0 },
	/* strings */
	{ "'single'", "\"single\"", 0 },
	{ "'He said \"hi\"'", "\"He said \\\"hi\\\"\"", 0 },
	{ "\"it's\"", "\"it's\"", 0 },
	{ "''", "\"\"", 0 },
	{ "'\\''", "\"'\"", 0 },
	{ "\"\\\"\"", "\"\\\"\"", 0 },
	{ "'\\\\'", "\"\\\\\"", 0 },
	{ "'\\b\\f\\n\\r\\t\\v'", "\"\\b\\f\\n\\r\\t\\u000b\"", 0 },
	{ "'\\0'", "\"\\u0000\"", 0 },
	{ "'a\\u0000b'", "\"a\\u0000b\"", 0 },
	{ "'\\x41\\x7a\\xe9'", "\"Az\\u00e9\"", 0 },
	{ "'\\u00e9\\u4e2D'", "\"\\u00e9\\u4e2d\"", 0 },
	{ "'\\ud83d\\ude00'", "\"\\ud83d\\ude00\"", 0 },
	{ "'\\a\\c\\/\\ \\\xc3\xa9'", "\"ac/ \\u00e9\"", 0 },
	{ "'a\\\nb'", "\"ab\"", 0 },
	{ "'a\\\r\nb'", "\"ab\"", 0 },
	{ "'a\\\rb'", "\"ab\"", 0 },
	{ "'a\\\xe2\x80\xa8" "b\\\xe2\x80\xa9" "c'", "\"abc\"", 0 },
	{ "'a\xe2\x80\xa8" "b'", "\"a\\u2028b\"", 0 },
	{ "'tab\there'", "\"tab\\there\"", 0 },
	{ "'raw\x01' ", "\"raw\\u0001\"", 0 },
	{ "'nul\0'", "\"nul\\u0000\"", 6 },
	{ "'\xf0\x9f\x98\x80 \xe2\x82\xac'", "\"\\ud83d\\ude00 \\u20ac\"", 0 },
	/* numbers */
	{ "0", "0", 0 },
	{ "-0", "0", 0 },
	{ "0.0", "0.0", 0 },
	{ "42", "42", 0 },
	{ "+1", "1", 0 },
	{ "-17", "-17", 0 },
	{ "0x1F", "31", 0 },
	{ "0XaB", "171", 0 },
	{ "-0x10", "-16", 0 },
	{ "+0x0", "0", 0 },
	{ ".5", "0.5", 0 },
	{ "5.", "5.0", 0 },
	{ "-.5e1", "-5.0", 0 },
	{ "1e3", "1000.0", 0 },
	{ "1E+2", "100.0", 0 },
	{ "25e-2", "0.25", 0 },
	{ "1.5e308", "1.5e308", 0 },
	{ "9223372036854775807", "9223372036854775807", 0 },
	{ "-9223372036854775808", "-9223372036854775808", 0 },
	{ "9223372036854775808", "9223372036854775808.0", 0 },
	{ "-9223372036854775809", "-9223372036854775809.0", 0 },
	{ "123456789012345678901234567890", "1.2345678901234568e29", 0 },
	{ "0x7FFFFFFFFFFFFFFF", "9223372036854775807", 0 },
	{ "-0x8000000000000000", "-9223372036854775808", 0 },
	{ "0xFFFFFFFFFFFFFFFF", "18446744073709551615.0", 0 },
	{ "0x10000000000000000", "18446744073709551616.0", 0 },
	/* whitespace */
	{ "\v\f\xc2\xa0\xef\xbb\xbf\xe2\x80\xa8\xe2\x80\xa9\xe3\x80\x80"
	  "\xe1\x9a\x80\xe2\x80\x80\xe2\x80\x8a\xe2\x80\xaf\xe2\x81\x9f[1]",
	  "[1]", 0 },
	{ "\xef\xbb\xbf{a: 1}", "{\"a\": 1}", 0 },
	{ "\r\n\t[\r1\r\n]\n", "[1]", 0 },
	/* nesting and mixtures */
	{ "{a: [1, {b: [true, null, 'x']}], c: {}, d: {e: {f: -1.5}}}",
	  "{\"a\": [1, {\"b\": [true, null, \"x\"]}], \"c\": {},"
	  " \"d\": {\"e\": {\"f\": -1.5}}}", 0 },
	{ "{\n  // the port\n  port: 18789,\n  bind: 'loopback',\n"
	  "  auth: {\n    token: \"s3cret\", /* inline */\n  },\n"
	  "  list: [0x10, .5, +2,],\n}\n",
	  "{\"port\": 18789, \"bind\": \"loopback\","
	  " \"auth\": {\"token\": \"s3cret\"}, \"list\": [16, 0.5, 2]}", 0 },
};

struct invalid_case {
	const char *in;
	int line;
	int col;
	const char *msg;	/* substring of the message */
	size_t len;		/* 0: strlen(in) */
};

static const struct invalid_case invalid_cases[] = {
	{ "", 1, 1, "unexpected end of input", 0 },
	{ "   ", 1, 4, "unexpected end of input", 0 },
	{ "// only a comment", 1, 18, "unexpected end of input", 0 },
	{ "{", 1, 2, "unexpected end of input", 0 },
	{ "[1,", 1, 4, "unexpected end of input", 0 },
	{ "{a:1", 1, 5, "unexpected end of input", 0 },
	{ "{\"a\"", 1, 5, "unexpected end of input", 0 },
	{ "{a:", 1, 4, "unexpected end of input", 0 },
	{ "{a 1}", 1, 4, "expected ':'", 0 },
	{ "{a-b: 1}", 1, 3, "expected ':'", 0 },
	{ "{a:1 b:2}", 1, 6, "expected ',' or '}'", 0 },
	{ "[1 2]", 1, 4, "expected ',' or ']'", 0 },
	{ "[1a]", 1, 3, "expected ',' or ']'", 0 },
	{ "[,]", 1, 2, "invalid character ','", 0 },
	{ "{,}", 1, 2, "invalid character ','", 0 },
	{ "[1,,]", 1, 4, "invalid character ','", 0 },
	{ "{a:1,,}", 1, 6, "invalid character ','", 0 },
	{ "{a:}", 1, 4, "invalid character '}'", 0 },
	{ "{1: 2}", 1, 2, "invalid character '1'", 0 },
	{ "}", 1, 1, "invalid character '}'", 0 },
	{ "[1]]", 1, 4, "invalid character ']'", 0 },
	{ "true false", 1, 6, "invalid character 'f'", 0 },
	{ "\x01", 1, 1, "invalid character U+0001", 0 },
	{ "\0", 1, 1, "invalid character U+0000", 1 },
	{ "[\xe2\x80\x8b]", 1, 2, "invalid character U+200B", 0 },
	{ "tru", 1, 4, "unexpected end of input", 0 },
	{ "trux", 1, 4, "invalid character 'x'", 0 },
	{ "nul", 1, 4, "unexpected end of input", 0 },
	{ "undefined", 1, 1, "invalid character 'u'", 0 },
	/* strings */
	{ "'abc", 1, 1, "unterminated string", 0 },
	{ "[\"ab\ncd\"]", 1, 2, "unterminated string", 0 },
	{ "'a\rb'", 1, 1, "unterminated string", 0 },
	{ "'\\", 1, 1, "unterminated string", 0 },
	{ "'\\1'", 1, 2, "invalid escape '\\1'", 0 },
	{ "'ab\\01'", 1, 4, "invalid escape '\\01'", 0 },
	{ "'\\x4'", 1, 2, "invalid \\x escape", 0 },
	{ "'\\xg0'", 1, 2, "invalid \\x escape", 0 },
	{ "'\\u12g4'", 1, 2, "invalid \\u escape", 0 },
	{ "'\\u12", 1, 2, "invalid \\u escape", 0 },
	{ "'\\ud800'", 1, 2, "lone surrogate", 0 },
	{ "'\\udc00'", 1, 2, "lone surrogate", 0 },
	{ "'x\\ud800\\u0041'", 1, 3, "lone surrogate", 0 },
	{ "'\\ud800\\ud800'", 1, 2, "lone surrogate", 0 },
	/* comments */
	{ "/* x", 1, 1, "unterminated comment", 0 },
	{ "[1,\n  /* x *", 2, 3, "unterminated comment", 0 },
	{ "/x", 1, 2, "invalid character 'x'", 0 },
	{ "/", 1, 2, "unexpected end of input", 0 },
	/* numbers */
	{ "Infinity", 1, 1, "Infinity/NaN is not supported", 0 },
	{ "-Infinity", 1, 1, "Infinity/NaN is not supported", 0 },
	{ "[1, NaN]", 1, 5, "Infinity/NaN is not supported", 0 },
	{ "{a: +NaN}", 1, 5, "Infinity/NaN is not supported", 0 },
	{ "Infinit", 1, 8, "unexpected end of input", 0 },
	{ "NaNa", 1, 1, "Infinity/NaN is not supported", 0 },
	{ "01", 1, 2, "invalid character '1'", 0 },
	{ "-00", 1, 3, "invalid character '0'", 0 },
	{ "0x", 1, 3, "unexpected end of input", 0 },
	{ "0xg", 1, 3, "invalid character 'g'", 0 },
	{ "0x1.5", 1, 4, "invalid character '.'", 0 },
	{ "1e", 1, 3, "unexpected end of input", 0 },
	{ "1e+x", 1, 4, "invalid character 'x'", 0 },
	{ ".", 1, 2, "unexpected end of input", 0 },
	{ ".e1", 1, 2, "invalid character 'e'", 0 },
	{ "-", 1, 2, "unexpected end of input", 0 },
	{ "+-1", 1, 2, "invalid character '-'", 0 },
	{ "5..", 1, 3, "invalid character '.'", 0 },
	{ "1e999", 1, 1, "number out of range", 0 },
	{ "[-1e400]", 1, 2, "number out of range", 0 },
	/* keys */
	{ "{a:1, a:2}", 1, 7, "duplicate key \"a\"", 0 },
	{ "{'a':1, \"a\":2}", 1, 9, "duplicate key \"a\"", 0 },
	{ "{a\\u0061:1, aa:2}", 1, 13, "duplicate key \"aa\"", 0 },
	{ "{x: {y: 1, y: 2}}", 1, 12, "duplicate key \"y\"", 0 },
	{ "{\\u0020: 1}", 1, 2, "invalid identifier escape", 0 },
	{ "{a\\u002d: 1}", 1, 3, "invalid identifier escape", 0 },
	{ "{\\u0031: 1}", 1, 2, "invalid identifier escape", 0 },
	{ "{a\\x41: 1}", 1, 4, "invalid character 'x'", 0 },
	{ "{'a\\u0000': 1}", 1, 2, "NUL character in a key", 0 },
	/* UTF-8 */
	{ "\xff", 1, 1, "invalid UTF-8", 0 },
	{ "'a\xc3'", 1, 3, "invalid UTF-8", 0 },
	{ "'\xc0\xaf'", 1, 2, "invalid UTF-8", 0 },
	{ "'\xed\xa0\x80'", 1, 2, "invalid UTF-8", 0 },
	{ "'\xf4\x90\x80\x80'", 1, 2, "invalid UTF-8", 0 },
	{ "[1] // \xfe", 1, 8, "invalid UTF-8", 0 },
	{ "{\xe9t\xe9: 1}", 1, 2, "invalid UTF-8", 0 },
	/* positions */
	{ "{\n  a: 1,\n  b: ?\n}", 3, 6, "invalid character '?'", 0 },
	{ "{\r\n a: x}", 2, 5, "invalid character 'x'", 0 },
	{ "[\r\r?]", 3, 1, "invalid character '?'", 0 },
	{ "['\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80' x]", 1, 8,
	  "expected ',' or ']'", 0 },
	{ "[1,\xe2\x80\xa8 ?]", 2, 2, "invalid character '?'", 0 },
	{ "'a\\\nb' x", 2, 4, "invalid character 'x'", 0 },
	{ "/* \n\n */ \t@", 3, 6, "invalid character '@'", 0 },
	{ "\xef\xbb\xbf@", 1, 1, "invalid character '@'", 0 },
};

static void check_valid(const struct valid_case *c)
{
	size_t len = c->len ? c->len : strlen(c->in);
	struct json5_error err;
	json_error_t jerr;
	json_t *got = NULL, *want;
	char *dump;
	int r;

	want = json_loads(c->json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	ck_assert_msg(want, "bad expected JSON %s: %s", c->json, jerr.text);
	r = json5_parse(c->in, len, &got, &err);
	ck_assert_msg(r == 0, "%s: failed at %d:%d: %s", c->in, err.line,
		      err.column, err.message);
	dump = json_dumps(got, JSON_ENCODE_ANY);
	ck_assert_msg(json_equal(got, want), "%s: got %s, want %s", c->in,
		      dump, c->json);
	free(dump);
	json_decref(got);
	json_decref(want);
}

START_TEST(test_valid)
{
	check_valid(&valid_cases[_i]);
}
END_TEST

START_TEST(test_invalid)
{
	const struct invalid_case *c = &invalid_cases[_i];
	size_t len = c->len ? c->len : strlen(c->in);
	struct json5_error err;
	json_t *got = (json_t *)1;
	int r;

	r = json5_parse(c->in, len, &got, &err);
	ck_assert_msg(r == -1, "case %d (%s) parsed", _i, c->in);
	ck_assert_ptr_null(got);
	ck_assert_msg(err.line == c->line && err.column == c->col &&
		      strstr(err.message, c->msg),
		      "case %d (%s): got %d:%d \"%s\", want %d:%d \"%s\"", _i,
		      c->in, err.line, err.column, err.message, c->line,
		      c->col, c->msg);
}
END_TEST

/* n nested arrays around 1: "[[[1]]]". */
static char *nested(int n)
{
	char *s = malloc((size_t)n * 2 + 2);
	int i;

	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[n + 1 + i] = ']';
	}
	s[n] = '1';
	s[2 * n + 1] = '\0';
	return s;
}

START_TEST(test_depth_limit)
{
	struct json5_error err;
	json_t *v = NULL;
	char *s;

	s = nested(JSON5_MAX_DEPTH);
	ck_assert_int_eq(json5_parse(s, strlen(s), &v, &err), 0);
	json_decref(v);
	free(s);

	s = nested(JSON5_MAX_DEPTH + 1);
	ck_assert_int_eq(json5_parse(s, strlen(s), &v, &err), -1);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(err.line, 1);
	ck_assert_int_eq(err.column, JSON5_MAX_DEPTH + 1);
	ck_assert_str_eq(err.message, "nesting too deep (limit 128)");
	free(s);

	/* objects count too, and a deep unclosed input fails cleanly */
	s = malloc(100001);
	memset(s, '[', 100000);
	memcpy(s + 50, "{a:", 3);
	s[100000] = '\0';
	ck_assert_int_eq(json5_parse(s, 100000, &v, &err), -1);
	ck_assert_str_eq(err.message, "nesting too deep (limit 128)");
	free(s);
}
END_TEST

START_TEST(test_input_limit)
{
	struct json5_error err;
	json_t *v = NULL;
	size_t len = JSON5_MAX_INPUT + 1;
	char *s = malloc(len);

	memset(s, ' ', len);
	s[0] = '1';
	ck_assert_int_eq(json5_parse(s, len, &v, &err), -1);
	ck_assert_int_eq(err.line, 1);
	ck_assert_int_eq(err.column, 1);
	ck_assert_ptr_nonnull(strstr(err.message, "input too large"));
	ck_assert_int_eq(json5_parse(s, len - 1, &v, &err), 0);
	ck_assert_int_eq(json_integer_value(v), 1);
	json_decref(v);
	free(s);
}
END_TEST

/* Long strings, many keys, NULL error pointer, not NUL-terminated input. */
START_TEST(test_misc)
{
	size_t n = 100000, i;
	char *s = malloc(n + 3);
	char key[32];
	json_t *v = NULL;
	struct json5_error err;

	s[0] = '\'';
	for (i = 1; i <= n; i++)
		s[i] = (char)('a' + i % 26);
	s[n + 1] = '\'';
	s[n + 2] = 'X';	/* outside len: must not be read */
	ck_assert_int_eq(json5_parse(s, n + 2, &v, NULL), 0);
	ck_assert_uint_eq(json_string_length(v), n);
	ck_assert_int_eq(memcmp(json_string_value(v), s + 1, n), 0);
	json_decref(v);
	free(s);

	ck_assert_int_eq(json5_parse("[1,", 3, &v, NULL), -1);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(json5_parse(NULL, 0, &v, &err), -1);
	ck_assert_str_eq(err.message, "unexpected end of input");

	s = malloc(20 * 1000 + 3);
	s[0] = '{';
	n = 1;
	for (i = 0; i < 1000; i++)
		n += (size_t)sprintf(s + n, "k%zu:%zu,", i, i);
	s[n++] = '}';
	ck_assert_int_eq(json5_parse(s, n, &v, &err), 0);
	ck_assert_uint_eq(json_object_size(v), 1000);
	snprintf(key, sizeof(key), "k%d", 999);
	ck_assert_int_eq(json_integer_value(json_object_get(v, key)), 999);
	json_decref(v);
	free(s);

	/* the message quotes long keys briefly, as valid UTF-8 */
	s = malloc(1000);
	strcpy(s, "{");
	for (i = 0; i < 100; i++)
		strcat(s, "\xc3\xa9");
	strcat(s, ":1,");
	for (i = 0; i < 100; i++)
		strcat(s, "\xc3\xa9");
	strcat(s, ":2}");
	ck_assert_int_eq(json5_parse(s, strlen(s), &v, &err), -1);
	ck_assert_int_eq(err.column, 105);
	ck_assert_ptr_nonnull(strstr(err.message, "duplicate key \""));
	ck_assert_ptr_nonnull(strstr(err.message, "...\""));
	v = json_string(err.message);
	ck_assert_ptr_nonnull(v);
	json_decref(v);
	free(s);
}
END_TEST

static Suite *json5_suite(void)
{
	Suite *s = suite_create("json5");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_valid, 0, (int)(sizeof(valid_cases) /
						    sizeof(valid_cases[0])));
	tcase_add_loop_test(tc, test_invalid, 0,
			    (int)(sizeof(invalid_cases) /
				  sizeof(invalid_cases[0])));
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_input_limit);
	tcase_add_test(tc, test_misc);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json5_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
