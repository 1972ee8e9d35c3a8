/* Reading the daemon's single-instance lock: <stateDir>/gateway.lock, held
 * with flock(LOCK_EX) by the running daemon, content one JSON object
 * {pid, port, bind, listening[], startedAtMs, configPath}. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/common.h"

#define CLI_LOCK_MAX (64 * 1024)

int cli_lock_read(const char *state_dir, json_t **out)
{
	char *path = xasprintf("%s/gateway.lock", state_dir);
	char *buf = NULL;
	json_error_t jerr;
	size_t n = 0;
	ssize_t r;
	int fd, held = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -1;
	/* A separate open file description: a shared lock fails with
	 * EWOULDBLOCK while the daemon holds its exclusive one. */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		held = errno == EWOULDBLOCK;
	else
		flock(fd, LOCK_UN);
	buf = xmalloc(CLI_LOCK_MAX + 1);
	while (n < CLI_LOCK_MAX) {
		r = read(fd, buf + n, CLI_LOCK_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*out = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
	if (*out && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
	}
	free(buf);
	return held;
}
