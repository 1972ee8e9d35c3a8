/* Fuzz target for the one session-key rule (src/agent/agent.c), which
 * every face applies to a key a client names (WS methods, OpenAI and
 * Responses x-openclaw-session-key, hooks, /tools/invoke): input
 * "key\nuser" (the OpenAI `user` field). An accepted key is short, has no
 * control byte and no reserved namespace, and an "agent:" key names its
 * agent; the HTTP face accepts exactly what the rule accepts, and a key it
 * derives from `user` passes the rule itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "core/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_key_http(const char *user, const char *key,
			  enum agent_key_verdict v)
{
	char *out = NULL, *err = NULL;
	int r = agent_session_key_for_http("Main", "openai", user, key, &out,
					   &err);

	if (r == GW_OK) {
		if (!out || err)
			abort();
		if (key && (v != AGENT_KEY_OK || strcmp(out, key) != 0))
			abort();
		if (!key && (agent_session_key_check(out) != AGENT_KEY_OK ||
			     strncmp(out, "agent:main:openai", 17) != 0)) {
			fprintf(stderr, "derived key refused: %s\n", out);
			abort();
		}
	} else {
		if (out || !err || !*err || (key && v == AGENT_KEY_OK))
			abort();
	}
	free(out);
	free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *key, *user, *nl, *id;
	enum agent_key_verdict v;
	size_t i;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	key = buf;
	nl = strchr(buf, '\n');
	user = nl ? nl + 1 : NULL;
	if (nl)
		*nl = '\0';
	v = agent_session_key_check(key);
	if (v != AGENT_KEY_OK && v != AGENT_KEY_INVALID &&
	    v != AGENT_KEY_RESERVED)
		abort();
	if (v == AGENT_KEY_OK) {
		if (!*key || strlen(key) > AGENT_SESSION_KEY_MAX ||
		    agent_session_key_reserved(key))
			abort();
		for (i = 0; key[i]; i++)
			if ((unsigned char)key[i] < 0x20)
				abort();
		id = agent_session_key_agent(key);
		if (strncasecmp(key, "agent:", 6) == 0 && (!id || !*id))
			abort();
		free(id);
	}
	fuzz_key_http(user, key, v);
	fuzz_key_http(user, NULL, v);
	free(buf);
	return 0;
}
