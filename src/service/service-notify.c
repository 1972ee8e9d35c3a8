/* sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET. The
 * variable is kept (not unset) so the re-exec restart notifies too. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "service/service.h"

int service_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	ssize_t n;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
			  strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
		   (struct sockaddr *)&sa, len);
	close(fd);
	return n < 0 ? -1 : 0;
}

void service_notify_ready(const char *status)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\nSTATUS=%s",
		 (int)getpid(), status ? status : "ready");
	service_notify(msg);
}

void service_notify_reloading(void)
{
	struct timespec ts;
	char msg[128];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg),
		 "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=restarting",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
			 (unsigned long long)ts.tv_nsec / 1000ULL);
	service_notify(msg);
}

void service_notify_stopping(void)
{
	service_notify("STOPPING=1\nSTATUS=stopping");
}
