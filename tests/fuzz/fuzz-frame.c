/* Fuzz target: a WebSocket text frame as the RPC layer sees it: JSON parse,
 * request frame validation, connect params validation. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "rpc/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *f = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
			       NULL);
	char msg[200];
	int r;

	if (!f)
		return 0;
	msg[0] = 0;
	r = rpc_frame_check_req(f, msg, sizeof(msg));
	if (r != 0 && !msg[0])
		__builtin_trap();	/* an error always says why */
	if (r == 0)
		rpc_connect_check_params(json_object_get(f, "params"), msg,
					 sizeof(msg));
	rpc_connect_check_params(f, msg, sizeof(msg));
	if (strlen(msg) >= sizeof(msg))
		__builtin_trap();
	json_decref(f);
	return 0;
}
