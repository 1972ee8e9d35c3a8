/* Fuzz target for the JSON5 reader. Any input: no crash, no leak, a sane
 * error on failure. On success the value, dumped as plain JSON and read
 * again by json5_parse, must be equal to itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_json5_check_error(const struct json5_error *err)
{
	json_t *msg;

	if (err->line < 1 || err->column < 1 || !err->message[0] ||
	    !memchr(err->message, '\0', sizeof(err->message))) {
		fprintf(stderr, "bad error %d:%d\n", err->line, err->column);
		abort();
	}
	/* messages end up in JSON replies: they must be valid UTF-8 */
	msg = json_string(err->message);
	if (!msg) {
		fprintf(stderr, "error message is not UTF-8: %s\n",
			err->message);
		abort();
	}
	json_decref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json5_error err;
	json_t *v = NULL, *again = NULL;
	char *dump = NULL;

	if (json5_parse((const char *)data, size, &v, &err) < 0) {
		if (v)
			abort();
		fuzz_json5_check_error(&err);
		return 0;
	}
	if (!v)
		abort();
	dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!dump)
		abort();
	if (json5_parse(dump, strlen(dump), &again, &err) < 0) {
		fprintf(stderr, "dump does not parse: %d:%d %s\n%s\n",
			err.line, err.column, err.message, dump);
		abort();
	}
	if (!json_equal(v, again)) {
		fprintf(stderr, "round trip differs: %s\n", dump);
		abort();
	}
	free(dump);
	json_decref(again);
	json_decref(v);
	return 0;
}
