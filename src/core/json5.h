/* JSON5 reader: our own (no C JSON5 library in our package sources), small
 * and fuzzed. It produces jansson values. Supported: comments, trailing
 * commas, unquoted keys (ECMAScript identifiers), single-quoted strings,
 * hex numbers, leading/trailing decimal point, +/-Infinity, NaN, explicit
 * plus sign, multi-line strings (backslash-newline), all JSON5 escapes.
 * Duplicate keys are an error. Input is bounded (depth, size).
 * Infinity and NaN are recognised but rejected ("Infinity/NaN is not
 * supported"): jansson has no non-finite reals. Integers that fit int64
 * become json_integer, other numbers json_real. Strings may hold NUL
 * (json_stringn); keys may not. Input must be valid UTF-8; a leading BOM
 * is skipped. Error messages are short, valid UTF-8, and say where
 * ("invalid character 'x'", "unterminated string", "expected ',' or '}'",
 * "unexpected end of input", "duplicate key \"k\"", ...). */
#pragma once

#include <stddef.h>

#include <jansson.h>

#define JSON5_MAX_DEPTH 128
#define JSON5_MAX_INPUT (16u * 1024 * 1024)

struct json5_error {
	int line;	/* 1-based */
	int column;	/* 1-based, in characters (UTF-8 code points) */
	char message[160];
};

/* Parse buf[0..len). On success *out is a new reference and 0 is returned.
 * On failure -1 is returned, *out is NULL and err (if non-NULL) says where
 * and why. */
int json5_parse(const char *buf, size_t len, json_t **out,
		struct json5_error *err);
