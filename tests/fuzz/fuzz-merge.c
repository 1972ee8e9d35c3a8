/* Fuzz target for the config merge patch (RFC 7396 plus id-keyed arrays,
 * src/config/config-redact.c): input "target JSON \0 patch JSON". No
 * crash, no leak; a patch that is not an object replaces the target; the
 * result dumps as JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/config-reload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, '\0', size);
	size_t tl = nul ? (size_t)(nul - (const char *)data) : size;
	json_t *target, *patch;
	char *dump;

	target = json_loadb((const char *)data, tl,
			    JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	patch = nul ? json_loadb(nul + 1, size - tl - 1, JSON_DECODE_ANY |
				 JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (target == NULL || patch == NULL)
		goto out;
	config_merge_patch(&target, patch);
	if (target == NULL)
		abort();
	if (!json_is_object(patch) && !json_equal(target, patch))
		abort();
	dump = json_dumps(target, JSON_ENCODE_ANY | JSON_COMPACT);
	if (dump == NULL)
		abort();
	free(dump);
out:
	json_decref(target);
	json_decref(patch);
	return 0;
}
