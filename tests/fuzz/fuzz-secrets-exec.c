/* Fuzz target for the exec provider's output parser (protocol v1). Any
 * resolver output: no crash, no leak; either a clean failure with a reason
 * or, for each requested id, exactly one of a value or an error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "secrets/secrets-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *ids[] = { "a/b", "x", "providers/openai/apiKey#value" };
	struct secrets_batch b = { .alias = "fuzz", .ids = ids };
	char why[300];
	size_t i, n;
	int json_only;

	for (json_only = 0; json_only < 2; json_only++) {
		for (n = 1; n <= 3; n += 2) {
			b.n = n;
			b.values = xcalloc(n, sizeof(char *));
			b.errs = xcalloc(n, sizeof(char *));
			why[0] = 0;
			if (secrets_exec_parse((const char *)data, size,
					       json_only, &b, why,
					       sizeof(why)) < 0) {
				if (!why[0])
					abort();
			} else {
				for (i = 0; i < n; i++)
					if (!b.values[i] == !b.errs[i] &&
					    !(n == 1 && !json_only))
						abort();
			}
			for (i = 0; i < n; i++) {
				free(b.values[i]);
				free(b.errs[i]);
			}
			free(b.values);
			free(b.errs);
		}
	}
	return 0;
}
