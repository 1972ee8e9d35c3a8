/* Fuzz target for the config text a client sends (config.apply, the
 * Control UI's raw editor) and the file the watcher re-reads: JSON5 parse,
 * ${VAR} substitution (src/config/config-env.c) and validation against the
 * option table (config_validate). A rejected config has issues, every
 * issue a path and a UTF-8 message; substitution leaves strings without
 * '$' alone and replaces ${CLAWGATE_FUZZ_A}; validating is deterministic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/config.h"
#include "core/common.h"
#include "core/json5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("CLAWGATE_FUZZ_A", "v$a{l}", 1);
	setenv("CLAWGATE_FUZZ_EMPTY", "", 1);
	return 0;
}

static void fuzz_config_issues(const struct config_issue *v, int n)
{
	json_t *s;
	int i;

	for (i = 0; i < n; i++) {
		if (!v[i].path || !v[i].message || !v[i].message[0])
			abort();
		s = json_string(v[i].message);
		if (!s)
			abort();	/* goes out in JSON answers */
		json_decref(s);
	}
}

/* Strings of a and b (same shape) are equal unless a's holds a '$'. */
static void fuzz_config_same(const json_t *a, const json_t *b, int depth)
{
	const char *k;
	json_t *e;
	size_t i;

	if (depth > JSON5_MAX_DEPTH + 8 || json_typeof(a) != json_typeof(b))
		abort();
	if (json_is_string(a)) {
		if (!memchr(json_string_value(a), '$', json_string_length(a)) &&
		    !json_equal(a, b))
			abort();
		return;
	}
	json_object_foreach((json_t *)a, k, e)
		fuzz_config_same(e, json_object_get(b, k), depth + 1);
	json_array_foreach(a, i, e)
		fuzz_config_same(e, json_array_get(b, i), depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_issues is = { 0 }, again = { 0 };
	struct json5_error err;
	json_t *root = NULL, *orig = NULL;
	int r;

	if (json5_parse((const char *)data, size, &root, &err) < 0)
		return 0;
	orig = json_deep_copy(root);
	if (!orig)
		abort();
	config_env_substitute(root, &is);
	fuzz_config_same(orig, root, 0);
	r = config_validate(root, &is);
	if ((r != GW_OK) != (is.n > 0))
		abort();
	fuzz_config_issues(is.v, is.n);
	fuzz_config_issues(is.w, is.nw);
	if (config_validate(root, &again) != r || again.n != is.n)
		abort();
	config_issues_free(&again);
	config_issues_free(&is);
	json_decref(orig);
	json_decref(root);
	return 0;
}
