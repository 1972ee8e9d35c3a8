/* `clawgate logs [--follow] [--limit N] [--json] [--plain]`: the gateway's
 * log over logs.tail, or its log file when the gateway is down. Colour
 * only on a terminal, never with --no-color or NO_COLOR. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"

#define A(f) offsetof(struct cli_args, f)
#define CLI_LOGS_DEFAULT_LIMIT 200
#define CLI_LOGS_MAX_LIMIT 5000
#define CLI_LOGS_POLL_MS 1000
#define CLI_LOGS_TIMEOUT_MS 10000
#define CLI_LOGS_FILE_MAX (1024 * 1024)

const struct cli_opt cli_logs_opts[] = {
	{"follow", CLI_OPT_FLAG, A(follow), NULL, "keep printing new lines"},
	{"limit", CLI_OPT_STR, A(limit), "N",
	 "how many of the last lines (default 200)"},
	{"plain", CLI_OPT_FLAG, A(plain), NULL,
	 "plain text lines, no colour"},
	CLI_CLIENT_OPTS("request timeout in ms (default 10000)"),
	{NULL, 0, 0, NULL, NULL},
};

int cli_logs_color(const struct cli_args *a)
{
	const char *nc = getenv("NO_COLOR");

	return !a->no_color && !(nc && *nc) && isatty(STDOUT_FILENO);
}

static volatile sig_atomic_t cli_logs_stop;

static void cli_logs_on_signal(int sig)
{
	(void)sig;
	cli_logs_stop = 1;
}

/* One log line (a JSON object, or any text) in the chosen form. */
static void cli_logs_print(const struct cli_args *a, const char *line,
			   int color)
{
	json_t *o = json_loads(line, 0, NULL);
	const char *lvl, *ts, *sub, *msg, *c = "";

	if (!json_is_object(o)) {
		if (a->json) {
			json_t *s = json_pack("{s:s?}", "raw", line);

			if (s) {
				char *t = json_dumps(s, JSON_COMPACT);

				printf("%s\n", t);
				free(t);
			}
			json_decref(s);
		} else {
			printf("%s\n", line);
		}
		json_decref(o);
		return;
	}
	if (a->json) {
		char *t = json_dumps(o, JSON_COMPACT);

		printf("%s\n", t);
		free(t);
		json_decref(o);
		return;
	}
	ts = json_string_value(json_object_get(o, "time"));
	lvl = json_string_value(json_object_get(o, "level"));
	sub = json_string_value(json_object_get(o, "subsystem"));
	msg = json_string_value(json_object_get(o, "message"));
	if (color && lvl) {
		if (strcmp(lvl, "error") == 0)
			c = "\033[31m";
		else if (strcmp(lvl, "warn") == 0)
			c = "\033[33m";
		else if (strcmp(lvl, "debug") == 0)
			c = "\033[2m";
	}
	printf("%s%s %-5s [%s] %s%s\n", c, ts ? ts : "", lvl ? lvl : "",
	       sub ? sub : "-", msg ? msg : "", *c ? "\033[0m" : "");
	json_decref(o);
}

static void cli_logs_nap(void)
{
	struct timespec ts = {CLI_LOGS_POLL_MS / 1000,
			      (CLI_LOGS_POLL_MS % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* The log file, when the gateway cannot be asked: the last `limit` lines,
 * then (with --follow) what is appended. */
static int cli_logs_file(const struct cli_args *a, const char *path,
			 long limit, int color)
{
	FILE *f;
	char *buf = NULL, *p, *nl, line[65536];
	size_t n = 0, count = 0;
	long off;
	struct stat st;
	int r;

	r = util_read_file(path, CLI_LOGS_FILE_MAX, &buf, &n);
	if (r == -EFBIG) {
		f = fopen(path, "re");
		if (f && fseek(f, -(long)CLI_LOGS_FILE_MAX, SEEK_END) == 0) {
			buf = xmalloc(CLI_LOGS_FILE_MAX + 1);
			n = fread(buf, 1, CLI_LOGS_FILE_MAX, f);
			buf[n] = '\0';
			r = 1;
		}
		if (f)
			fclose(f);
	}
	if (r != 1) {
		fprintf(stderr, "No log file at %s%s%s\n", path,
			r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
		free(buf);
		return 1;
	}
	for (p = buf; (nl = strchr(p, '\n')); p = nl + 1)
		count++;
	for (p = buf; (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		if ((long)count-- <= limit)
			cli_logs_print(a, p, color);
	}
	free(buf);
	fflush(stdout);
	if (!a->follow)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 1;
	fseek(f, 0, SEEK_END);
	off = ftell(f);
	while (!cli_logs_stop) {
		if (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			cli_logs_print(a, line, color);
			fflush(stdout);
			off = ftell(f);
			continue;
		}
		clearerr(f);
		/* Rotated or truncated: start over. */
		if (stat(path, &st) == 0 && st.st_size < off) {
			fseek(f, 0, SEEK_SET);
			off = 0;
		}
		cli_logs_nap();
	}
	fclose(f);
	return 0;
}

int cli_logs(struct cli_args *a)
{
	const char *scopes[] = {"operator.read", NULL};
	struct cli_local l;
	struct cli_target t;
	struct gwclient_opts o;
	struct gwclient *c = NULL;
	struct gwclient_err e = {0};
	json_t *hello = NULL, *params = NULL, *p = NULL, *v;
	char *end, *file = NULL, *err = NULL;
	long limit = CLI_LOGS_DEFAULT_LIMIT;
	json_int_t cursor = -1;
	int timeout, color, r = 1;
	size_t i;

	if (a->limit) {
		errno = 0;
		limit = strtol(a->limit, &end, 10);
		if (errno || *end || limit < 1 || limit > CLI_LOGS_MAX_LIMIT) {
			fprintf(stderr, "clawgate logs: invalid --limit: %s "
				"(1..%d)\n", a->limit, CLI_LOGS_MAX_LIMIT);
			return 2;
		}
	}
	timeout = cli_gateway_timeout(a, CLI_LOGS_TIMEOUT_MS);
	if (timeout < 0)
		return 2;
	color = !a->plain && !a->json && cli_logs_color(a);
	signal(SIGINT, cli_logs_on_signal);
	signal(SIGTERM, cli_logs_on_signal);
	cli_target_local_load(a->profile, a->dev, &l);
	cli_target_resolve(a, &l, &t);
	cli_target_opts(&t, scopes, timeout, &o);
	if (gwclient_connect(&o, &c, &hello, &e) != 0) {
		err = cli_gateway_err_text(&t, &e);
		if (!t.local_default) {
			fprintf(stderr, "Gateway logs failed: %s\n", err);
			goto out;
		}
		file = cli_status_log_file(&l);
		fprintf(stderr, "Gateway not reachable (%s); reading %s\n",
			err, file);
		r = cli_logs_file(a, file, limit, color);
		goto out;
	}
	params = json_pack("{s:I}", "limit", (json_int_t)limit);
	while (!cli_logs_stop) {
		json_decref(p);
		p = NULL;
		gwclient_err_free(&e);
		if (gwclient_request(c, "logs.tail", params, timeout, 0, &p,
				     &e) != 0) {
			fprintf(stderr, "Gateway logs failed: %s\n",
				e.message ? e.message : "request failed");
			if (cursor >= 0 && t.local_default && a->follow) {
				/* The gateway went away: follow the file. */
				free(file);
				file = cli_status_log_file(&l);
				fprintf(stderr, "Following %s\n", file);
				r = cli_logs_file(a, file, 0, color);
			}
			goto out;
		}
		json_array_foreach(json_object_get(p, "lines"), i, v)
			cli_logs_print(a, json_string_value(v), color);
		fflush(stdout);
		if (!a->follow)
			break;
		cursor = json_integer_value(json_object_get(p, "cursor"));
		json_decref(params);
		params = json_pack("{s:I,s:I}", "cursor", cursor, "limit",
				   (json_int_t)CLI_LOGS_MAX_LIMIT);
		cli_logs_nap();
	}
	r = 0;
out:
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	gwclient_close(c);
	gwclient_err_free(&e);
	json_decref(hello);
	json_decref(params);
	json_decref(p);
	free(file);
	free(err);
	cli_target_free(&t);
	cli_target_local_free(&l);
	return r;
}
