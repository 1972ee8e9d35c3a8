/* The one place that runs systemctl, and the checks that tell an operator
 * why the service manager cannot be used (containers, no user manager, no
 * lingering) with the fix. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

#define SERVICE_SYSTEMCTL_TIMEOUT_MS 60000
#define SERVICE_SYSTEMCTL_OUT_MAX (64 * 1024)
#define SERVICE_SYSTEMCTL_MAX_ARGS 16

extern char **environ;

int service_systemctl(int system, const char *const *args, char **out)
{
	const char *argv[SERVICE_SYSTEMCTL_MAX_ARGS + 3];
	posix_spawn_file_actions_t fa;
	char *buf = xmalloc(SERVICE_SYSTEMCTL_OUT_MAX + 1);
	size_t len = 0;
	int64_t deadline = util_mono_ms() + SERVICE_SYSTEMCTL_TIMEOUT_MS;
	int p[2] = {-1, -1}, n = 0, status = 0, r = 127, timed_out = 0;
	pid_t pid = -1;
	ssize_t k;

	argv[n++] = "systemctl";
	if (!system)
		argv[n++] = "--user";
	while (*args && n < SERVICE_SYSTEMCTL_MAX_ARGS + 2)
		argv[n++] = *args++;
	argv[n] = NULL;
	buf[0] = '\0';
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(buf, SERVICE_SYSTEMCTL_OUT_MAX, "pipe: %s",
			 strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	errno = posix_spawnp(&pid, "systemctl", &fa, NULL,
			     (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	p[1] = -1;
	if (errno != 0) {
		snprintf(buf, SERVICE_SYSTEMCTL_OUT_MAX,
			 "cannot run systemctl: %s", strerror(errno));
		pid = -1;
		goto out;
	}
	for (;;) {
		struct pollfd pf = {p[0], POLLIN, 0};
		int64_t left = deadline - util_mono_ms();

		if (left <= 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pf, 1, (int)left) < 0 && errno != EINTR)
			break;
		if (!pf.revents)
			continue;
		if (len < SERVICE_SYSTEMCTL_OUT_MAX) {
			k = read(p[0], buf + len,
				 SERVICE_SYSTEMCTL_OUT_MAX - len);
		} else {
			char sink[512];

			k = read(p[0], sink, sizeof(sink));
			k = k > 0 ? 0 : k;
			if (k == 0)
				continue;
		}
		if (k <= 0 && !(k < 0 && errno == EINTR))
			break;
		if (k > 0)
			len += (size_t)k;
	}
	buf[len] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out)
		r = 124;
	else if (WIFEXITED(status))
		r = WEXITSTATUS(status);
	else
		r = 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (out)
		*out = buf;
	else
		free(buf);
	return r;
}

static const char *service_user_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	const char *u = getenv("USER");

	if (pw && pw->pw_name)
		return pw->pw_name;
	return u && *u ? u : "$USER";
}

int service_systemd_available(int system, char **why)
{
	const char *args[] = {"show-environment", NULL};
	const char *rt = getenv("XDG_RUNTIME_DIR");
	char *out = NULL;
	int r;

	*why = NULL;
	if (!system && (!rt || !*rt)) {
		*why = xasprintf("systemd user services are unavailable: "
				 "XDG_RUNTIME_DIR is not set (no login "
				 "session).\nFix: export XDG_RUNTIME_DIR="
				 "/run/user/%d, and run `loginctl "
				 "enable-linger %s` so the user manager runs "
				 "without a login; or install a system unit "
				 "with --system.", (int)getuid(),
				 service_user_name());
		return 0;
	}
	r = service_systemctl(system, args, &out);
	if (r == 127) {
		*why = xasprintf("systemd is not available here (%s): this "
				 "looks like a container or a system without "
				 "systemd.\nRun `clawgate gateway run` under "
				 "your own supervisor; `clawgate gateway "
				 "install --print` writes the unit for use "
				 "elsewhere.", out);
	} else if (r != 0) {
		*why = xasprintf("systemd %s manager is not reachable: %s\n"
				 "Fix: %s", system ? "system" : "user",
				 *out ? out : "systemctl failed",
				 system ? "run on a host booted with systemd "
					  "(not a container), as root"
					: "run `loginctl enable-linger` for "
					  "this user and log in again, and "
					  "make sure XDG_RUNTIME_DIR points at "
					  "/run/user/<uid>; or use --system");
	}
	free(out);
	return *why == NULL;
}

int service_linger_enabled(void)
{
	const char *dir = getenv("CLAWGATE_LINGER_DIR");
	struct stat st;
	char *path;
	int r;

	path = xasprintf("%s/%s", dir && *dir ? dir : "/var/lib/systemd/linger",
			 service_user_name());
	if (stat(path, &st) == 0)
		r = 1;
	else
		r = errno == ENOENT ? 0 : -1;
	free(path);
	return r;
}
