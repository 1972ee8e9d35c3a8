/* Fuzz target: the request frame's fast parse (src/rpc/rpc-json.c) against
 * jansson's json_loadb(JSON_REJECT_DUPLICATES). Whatever the fast parse
 * takes, jansson takes too and gives the same tree, member order, integer
 * and string types included; rpc_json_frame gives jansson's verdict. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rpc/rpc-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_tree(json_t *a, json_t *b)
{
	char *da, *db;

	if (!b || !json_equal(a, b))
		__builtin_trap();
	da = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
	db = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!da || !db || strcmp(da, db) != 0)
		__builtin_trap();
	free(da);
	free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *t = (const char *)data;
	json_t *j = json_loadb(t, size, JSON_REJECT_DUPLICATES, NULL);
	json_t *f = rpc_json_load(t, size);
	json_t *g = rpc_json_frame(t, size, NULL);

	if (f)
		same_tree(f, j);
	if ((g == NULL) != (j == NULL))
		__builtin_trap();
	if (g)
		same_tree(g, j);
	json_decref(f);
	json_decref(g);
	json_decref(j);
	return 0;
}
