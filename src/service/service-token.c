/* The gateway token generated once and kept in <state_dir>/gateway.token
 * (0600), so a gateway without a configured token keeps the same one
 * across restarts and the CLI on the same host finds it. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

#define SERVICE_TOKEN_MAX 4096

char *service_token_path(const char *state_dir)
{
	return xasprintf("%s/gateway.token", state_dir);
}

int service_token_read(const char *state_dir, char **tok)
{
	char *path = service_token_path(state_dir), *buf = NULL;
	size_t len = 0;
	int r;

	*tok = NULL;
	r = util_read_file(path, SERVICE_TOKEN_MAX, &buf, &len);
	free(path);
	if (r <= 0)
		return r;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
		       buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (len == 0 || strpbrk(buf, "\n\r")) {
		xfree_secret(buf);
		return -EINVAL;
	}
	*tok = buf;
	return 1;
}

int service_token_write(const char *state_dir, const char *tok)
{
	char *path = service_token_path(state_dir);
	char *text = xasprintf("%s\n", tok);
	int r;

	r = service_write_file(path, text, 0600);
	xfree_secret(text);
	free(path);
	return r;
}

char *service_token_generate(void)
{
	uint8_t rnd[32];
	char *t;

	util_random(rnd, sizeof(rnd));
	t = util_b64url_encode(rnd, sizeof(rnd));
	explicit_bzero(rnd, sizeof(rnd));
	return t;
}
