/* The exec provider: an absolute command run without a shell, once per
 * activation with every id of its refs (protocol v1: a JSON request on
 * stdin, a JSON answer on stdout). The command must be a regular file,
 * not a symlink (unless allowSymlinkCommand), not group/world-writable,
 * owned by the gateway user or root (unless allowInsecurePath), inside
 * trustedDirs when given. Only passEnv names and env entries reach its
 * environment. Bounded by timeoutMs, noOutputTimeoutMs and
 * maxOutputBytes; stderr is discarded (it may hold secrets). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/util.h"
#include "secrets/secrets-int.h"
#include "secrets/secrets.h"

#define SECRETS_EXEC_MAX_ARGS 64
#define SECRETS_EXEC_MAX_ENV 128

static const char *const secrets_exec_keys[] = {
	"source", "command", "args", "passEnv", "env", "trustedDirs",
	"timeoutMs", "noOutputTimeoutMs", "maxOutputBytes", "jsonOnly",
	"allowInsecurePath", "allowSymlinkCommand", NULL
};

static int secrets_exec_strings(const json_t *a, size_t max)
{
	const json_t *e;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > max)
		return -1;
	json_array_foreach(a, i, e)
		if (!json_is_string(e) ||
		    strlen(json_string_value(e)) != json_string_length(e))
			return -1;
	return 0;
}

static int secrets_exec_check(const json_t *def, char *why, size_t len)
{
	const char *cmd = json_string_value(json_object_get(def, "command"));
	const json_t *env = json_object_get(def, "env"), *v;
	const char *k;

	if (json_object_get(def, "pluginIntegration")) {
		snprintf(why, len, "pluginIntegration is not supported; set "
			 "\"command\" to the resolver's absolute path");
		return -1;
	}
	if (secrets_def_keys(def, secrets_exec_keys, why, len) < 0)
		return -1;
	if (!cmd || cmd[0] != '/') {
		snprintf(why, len, "command: expected an absolute path");
		return -1;
	}
	if (secrets_exec_strings(json_object_get(def, "args"),
				 SECRETS_EXEC_MAX_ARGS) < 0 ||
	    secrets_exec_strings(json_object_get(def, "passEnv"),
				 SECRETS_EXEC_MAX_ENV) < 0 ||
	    secrets_exec_strings(json_object_get(def, "trustedDirs"), 64) < 0) {
		snprintf(why, len, "args, passEnv and trustedDirs: expected "
			 "arrays of strings");
		return -1;
	}
	if (env && (!json_is_object(env) ||
		    json_object_size(env) > SECRETS_EXEC_MAX_ENV)) {
		snprintf(why, len, "env: expected an object of strings");
		return -1;
	}
	json_object_foreach((json_t *)env, k, v)
		if (!json_is_string(v) || strchr(k, '=')) {
			snprintf(why, len, "env: expected an object of "
				 "strings");
			return -1;
		}
	if (secrets_def_int(def, "timeoutMs", 5000, 1, 120000) < 0 ||
	    secrets_def_int(def, "noOutputTimeoutMs", 5000, 1, 120000) < 0 ||
	    secrets_def_int(def, "maxOutputBytes", 1, 1,
			    16 * 1024 * 1024) < 0) {
		snprintf(why, len, "timeoutMs, noOutputTimeoutMs or "
			 "maxOutputBytes: out of range");
		return -1;
	}
	if (json_object_get(def, "jsonOnly") &&
	    !json_is_boolean(json_object_get(def, "jsonOnly"))) {
		snprintf(why, len, "jsonOnly: expected a boolean");
		return -1;
	}
	return 0;
}

static int secrets_exec_id_ok(const char *id, const json_t *def)
{
	(void)def;
	return secrets_exec_id_valid(id);
}

/* The command passes the path checks: 0, or -1 with a reason. */
static int secrets_exec_trust(const json_t *def, char *why, size_t len)
{
	const char *cmd = json_string_value(json_object_get(def, "command"));
	const json_t *dirs = json_object_get(def, "trustedDirs"), *d;
	char real[PATH_MAX], rdir[PATH_MAX];
	struct stat st;
	size_t i;

	if (lstat(cmd, &st) < 0) {
		snprintf(why, len, "command: %s", strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode) &&
	    !json_is_true(json_object_get(def, "allowSymlinkCommand"))) {
		snprintf(why, len, "command must not be a symlink");
		return -1;
	}
	if (!realpath(cmd, real) || stat(real, &st) < 0) {
		snprintf(why, len, "command: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		snprintf(why, len, "command is not an executable regular file");
		return -1;
	}
	if (!json_is_true(json_object_get(def, "allowInsecurePath"))) {
		if (st.st_mode & 022) {
			snprintf(why, len, "command must not be group- or "
				 "world-writable");
			return -1;
		}
		if (st.st_uid != geteuid() && st.st_uid != 0) {
			snprintf(why, len, "command must be owned by the "
				 "gateway user or root");
			return -1;
		}
	}
	if (!dirs)
		return 0;
	json_array_foreach(dirs, i, d) {
		size_t n;

		if (!realpath(json_string_value(d), rdir))
			continue;
		n = strlen(rdir);
		if (strncmp(real, rdir, n) == 0 &&
		    (real[n] == '/' || (n == 1 && rdir[0] == '/')))
			return 0;
	}
	snprintf(why, len, "command is not inside trustedDirs");
	return -1;
}

int secrets_exec_parse(const char *out, size_t len, int json_only,
		       struct secrets_batch *b, char *why, size_t wlen)
{
	json_t *doc = NULL;
	const json_t *vals, *errs, *v;
	json_error_t jerr;
	size_t i;
	int r = -1;

	if (memchr(out, 0, len)) {
		snprintf(why, wlen, "output contains a NUL byte");
		return -1;
	}
	doc = json_loadb(out, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		size_t n = len;

		if (json_only || b->n != 1) {
			snprintf(why, wlen, "output is not JSON");
			return -1;
		}
		/* jsonOnly false, one id: the raw output is the value */
		while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
			n--;
		b->values[0] = xstrndup(out, n);
		return 0;
	}
	if (!json_is_object(doc) ||
	    json_integer_value(json_object_get(doc, "protocolVersion")) != 1 ||
	    !json_is_integer(json_object_get(doc, "protocolVersion"))) {
		snprintf(why, wlen, "output is not a protocolVersion 1 object");
		goto out;
	}
	vals = json_object_get(doc, "values");
	errs = json_object_get(doc, "errors");
	if ((vals && !json_is_object(vals)) || (errs && !json_is_object(errs))) {
		snprintf(why, wlen, "values and errors must be objects");
		goto out;
	}
	for (i = 0; i < b->n; i++) {
		v = json_object_get(vals, b->ids[i]);
		if (json_is_string(v) &&
		    strlen(json_string_value(v)) == json_string_length(v)) {
			b->values[i] = xstrdup(json_string_value(v));
		} else if (v) {
			b->errs[i] = xstrdup(json_is_string(v) ?
					     "value contains a NUL byte" :
					     "value is not a string");
		} else {
			const char *code = json_string_value(json_object_get(
				json_object_get(errs, b->ids[i]), "code"));

			b->errs[i] = xstrdup(code && (strcmp(code,
							     "NOT_FOUND") == 0 ||
						      strcmp(code,
							     "AMBIGUOUS_DUPLICATE_KEY")
						      == 0) ?
					     code : "resolver returned no value");
		}
	}
	r = 0;
out:
	json_decref(doc);
	return r;
}

/* The child's environment: passEnv names from ours, then env entries. */
static char **secrets_exec_env(const json_t *def)
{
	const json_t *pass = json_object_get(def, "passEnv"), *e;
	const json_t *env = json_object_get(def, "env");
	const char *k;
	char **v;
	size_t i, n = 0;

	v = xcalloc(json_array_size(pass) + json_object_size(env) + 1,
		    sizeof(char *));
	json_array_foreach(pass, i, e) {
		const char *val = getenv(json_string_value(e));

		if (val)
			v[n++] = xasprintf("%s=%s", json_string_value(e), val);
	}
	json_object_foreach((json_t *)env, k, e)
		v[n++] = xasprintf("%s=%s", k, json_string_value(e));
	return v;
}

static void secrets_exec_strv_free(char **v, int secret)
{
	size_t i;

	for (i = 0; v && v[i]; i++) {
		if (secret)
			xfree_secret(v[i]);
		else
			free(v[i]);
	}
	free(v);
}

/* Wait for pid until deadline (monotonic ms; 0 = kill it now), then kill
 * it. Returns the wait status, or -1 when it had to be killed. */
static int secrets_exec_reap(pid_t pid, int64_t deadline)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	int st = 0;

	while (deadline && util_mono_ms() < deadline) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			return st;
		if (w < 0 && errno != EINTR)
			return -1;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return -1;
}

static int secrets_exec_resolve(struct secrets_batch *b, char *why,
				size_t len)
{
	const json_t *def = b->def, *e;
	int64_t timeout = secrets_def_int(def, "timeoutMs", 5000, 1, 120000);
	int64_t quiet = secrets_def_int(def, "noOutputTimeoutMs", timeout, 1,
					120000);
	int64_t max = secrets_def_int(def, "maxOutputBytes",
				      SECRETS_EXEC_OUT_DEFAULT, 1,
				      16 * 1024 * 1024);
	int json_only = !json_is_false(json_object_get(def, "jsonOnly"));
	const char *cmd = json_string_value(json_object_get(def, "command"));
	char *argv[SECRETS_EXEC_MAX_ARGS + 2], **envp = NULL, *req = NULL;
	char *buf = NULL;
	json_t *ids = json_array(), *rq;
	posix_spawn_file_actions_t fa;
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, r = -1, st, spawned = 0;
	int64_t start, last;
	size_t i, n = 0, reqlen = 0, sent = 0;
	pid_t pid = -1;

	if (secrets_exec_trust(def, why, len) < 0)
		goto out;
	for (i = 0; i < b->n; i++)
		json_array_append_new(ids, json_string(b->ids[i]));
	rq = json_pack("{s:i,s:s,s:O}", "protocolVersion", 1, "provider",
		       b->alias, "ids", ids);
	req = json_dumps(rq, JSON_COMPACT);
	json_decref(rq);
	reqlen = strlen(req);
	argv[0] = (char *)cmd;
	json_array_foreach(json_object_get(def, "args"), i, e)
		argv[i + 1] = (char *)json_string_value(e);
	argv[json_array_size(json_object_get(def, "args")) + 1] = NULL;
	envp = secrets_exec_env(def);
	/* stdin is a socket: a resolver that exits early cannot SIGPIPE us */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		snprintf(why, len, "pipe: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	/* none of the gateway's descriptors (sockets, the database) */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	st = posix_spawn(&pid, cmd, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(outp[1]);
	in[0] = outp[1] = -1;
	if (st != 0) {
		snprintf(why, len, "cannot run the command: %s", strerror(st));
		goto out;
	}
	spawned = 1;
	buf = xmalloc((size_t)max + 1);
	start = last = util_mono_ms();
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = outp[0], .events = POLLIN },
			{ .fd = in[1], .events = POLLOUT },
		};
		int64_t now = util_mono_ms();
		int64_t left = start + timeout - now, ql = last + quiet - now;
		ssize_t k;

		if (ql < left)
			left = ql;
		if (left <= 0) {
			snprintf(why, len, "timed out after %lld ms",
				 (long long)(now - start >= timeout ? timeout
								     : quiet));
			goto out;
		}
		k = poll(p, in[1] >= 0 ? 2 : 1, (int)left);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(why, len, "poll: %s", strerror(errno));
			goto out;
		}
		if (in[1] >= 0 && (p[1].revents & (POLLOUT | POLLERR |
						   POLLHUP))) {
			k = send(in[1], req + sent, reqlen - sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (k > 0)
				sent += (size_t)k;
			if ((k < 0 && errno != EAGAIN && errno != EINTR) ||
			    sent == reqlen) {
				close(in[1]);
				in[1] = -1;
			}
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		k = read(outp[0], buf + n, (size_t)max + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
		last = util_mono_ms();
		if (n > (size_t)max) {
			snprintf(why, len, "output larger than %lld bytes",
				 (long long)max);
			goto out;
		}
	}
	buf[n] = 0;
	/* stdout is closed: the exit status, within what is left of the
	 * timeout */
	st = secrets_exec_reap(pid, start + timeout);
	spawned = 0;
	if (st < 0) {
		snprintf(why, len, "timed out after %lld ms (no exit after its "
			 "output)", (long long)timeout);
		goto out;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, len, "command failed (%s %d)",
			 WIFEXITED(st) ? "exit status" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		goto out;
	}
	r = secrets_exec_parse(buf, n, json_only, b, why, len);
out:
	if (spawned)
		secrets_exec_reap(pid, 0);
	if (buf) {
		explicit_bzero(buf, (size_t)max + 1);
		free(buf);
	}
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (outp[0] >= 0)
		close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	secrets_exec_strv_free(envp, 1);
	free(req);
	json_decref(ids);
	return r;
}

const struct secrets_provider secrets_exec_provider = {
	.source = "exec",
	.check = secrets_exec_check,
	.id_valid = secrets_exec_id_ok,
	.resolve = secrets_exec_resolve,
};
