/* Fuzz target: an installed systemd unit as `gateway status` and `doctor`
 * read it (drift against the unit we would write, ExecStart). Invariants:
 * a unit never drifts from itself, every drift entry is complete. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/common.h"
#include "service/service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct service_spec spec = {
		.binary = "/usr/bin/clawgate", .port = 18789,
		.state_dir = "/home/u/.openclaw",
		.config_path = "/home/u/.openclaw/openclaw.json",
		.home = "/home/u",
	};
	/* the expected unit is the same for every input: rendered once */
	static char *expected;
	char *text = xstrndup((const char *)data, size), *err = NULL;
	char *exec;
	json_t *d, *e;
	size_t i;

	if (!expected)
		expected = service_unit_render(SERVICE_SYSTEMD, &spec, &err);

	d = service_drift(text, text);
	if (json_array_size(d) != 0)
		__builtin_trap();
	json_decref(d);
	d = service_drift(text, expected);
	json_array_foreach(d, i, e) {
		if (!json_string_value(json_object_get(e, "field")) ||
		    !json_string_value(json_object_get(e, "installed")) ||
		    !json_string_value(json_object_get(e, "expected")))
			__builtin_trap();
	}
	json_decref(d);
	exec = service_unit_exec_start(text);
	if (!exec)
		__builtin_trap();
	free(exec);
	free(err);
	free(text);
	return 0;
}
