/* Who listens on a TCP port: /proc/net/tcp{,6} LISTEN entries, their
 * socket inodes matched against /proc/<pid>/fd (processes we may inspect;
 * others show without a pid). Linux only, best effort. */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

#define SERVICE_PORT_MAX_INODES 32
#define SERVICE_PORT_CMD_MAX 4096

/* LISTEN sockets on port from one /proc/net file: inodes and addresses. */
static int service_port_proc(const char *file, int port, int v6,
			     unsigned long *inodes, char addrs[][64], int n)
{
	FILE *f = fopen(file, "re");
	char line[512], local[64];
	unsigned int lport, st;
	unsigned long inode;

	if (!f)
		return n;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return n;
	}
	while (n < SERVICE_PORT_MAX_INODES && fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x "
			   "%x %*x:%*x %*x:%*x %*x %*d %*d %lu", local, &lport,
			   &st, &inode) != 4)
			continue;
		if ((int)lport != port || st != 0x0A)
			continue;
		inodes[n] = inode;
		if (!v6 && strlen(local) == 8) {
			unsigned long a = strtoul(local, NULL, 16);

			snprintf(addrs[n], 64, "%lu.%lu.%lu.%lu:%d", a & 255,
				 (a >> 8) & 255, (a >> 16) & 255,
				 (a >> 24) & 255, port);
		} else {
			snprintf(addrs[n], 64, "%s:%d",
				 strcmp(local, "00000000000000000000000001000000")
						 == 0
					 ? "[::1]"
					 : strspn(local, "0") == 32 ? "[::]"
								    : "[v6]",
				 port);
		}
		n++;
	}
	fclose(f);
	return n;
}

/* The command line of pid, NULs as blanks. New string or NULL. */
static char *service_port_cmdline(long pid)
{
	char *path = xasprintf("/proc/%ld/cmdline", pid), *buf = NULL;
	size_t n = 0, i;
	int r;

	r = util_read_file(path, SERVICE_PORT_CMD_MAX, &buf, &n);
	free(path);
	if (r != 1)
		return NULL;
	for (i = 0; i + 1 < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return buf;
}

/* The pid whose fd table has socket:[inode], or 0. */
static long service_port_pid(unsigned long inode)
{
	DIR *proc = opendir("/proc"), *fds;
	struct dirent *de, *fe;
	char want[64], path[600], link[64];
	long pid = 0;
	ssize_t k;

	if (!proc)
		return 0;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while (!pid && (de = readdir(proc))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while ((fe = readdir(fds))) {
			snprintf(path, sizeof(path), "/proc/%s/fd/%s",
				 de->d_name, fe->d_name);
			k = readlink(path, link, sizeof(link) - 1);
			if (k <= 0)
				continue;
			link[k] = '\0';
			if (strcmp(link, want) == 0) {
				pid = strtol(de->d_name, NULL, 10);
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return pid;
}

json_t *service_port_listeners(int port)
{
	unsigned long inodes[SERVICE_PORT_MAX_INODES];
	char addrs[SERVICE_PORT_MAX_INODES][64];
	json_t *out = json_array(), *l;
	char *cmd;
	long pid;
	int n = 0, i;

	n = service_port_proc("/proc/net/tcp", port, 0, inodes, addrs, n);
	n = service_port_proc("/proc/net/tcp6", port, 1, inodes, addrs, n);
	for (i = 0; i < n; i++) {
		pid = service_port_pid(inodes[i]);
		l = json_pack("{s:s}", "address", addrs[i]);
		if (pid > 0) {
			json_object_set_new(l, "pid", json_integer(pid));
			cmd = service_port_cmdline(pid);
			if (cmd)
				json_object_set_new(l, "commandLine",
						    json_string(cmd));
			free(cmd);
		}
		json_array_append_new(out, l);
	}
	return out;
}
