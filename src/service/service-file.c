/* Small file helpers of the service module: mkdir -p and an atomic write
 * with a mode (units, the token file). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "service/service.h"

int service_mkdirs(const char *dir, mode_t mode)
{
	char *p = xstrdup(dir), *s;
	int r = 0;

	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			r = -1;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return r;
}

int service_write_file(const char *path, const char *text, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	size_t n = strlen(text);
	int fd, r = 0, e;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fchmod(fd, mode) != 0 || write(fd, text, n) != (ssize_t)n ||
	    fsync(fd) != 0) {
		r = -errno;
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		r = -errno;
		unlink(tmp);
	}
out:
	e = -r;
	free(tmp);
	errno = e;
	return r;
}
