/* Console and JSON-lines file logging. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "core/common.h"
#include "core/log.h"

static struct {
	pthread_mutex_t mu;
	enum log_level level;
	int console;
	FILE *file;
	char *path;	/* configured path or dir */
	char *prefix;
	int is_dir;
	char day[16];	/* YYYY-MM-DD of the open file */
	char *cur;	/* current file path */
} log_state = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.level = LOG_INFO,
	.console = 1,
};

static const char *const log_level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level lvl)
{
	log_state.level = lvl;
}

enum log_level log_get_level(void)
{
	return log_state.level;
}

void log_set_console(int on)
{
	log_state.console = on;
}

int log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(log_level_names); i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	if (strcmp(s, "trace") == 0 || strcmp(s, "verbose") == 0) {
		*out = LOG_DEBUG;
		return 0;
	}
	return -EINVAL;
}

static void log_mkdirs(const char *dir)
{
	char *p = xstrdup(dir), *s;

	for (s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0700);
			*s = '/';
		}
	}
	mkdir(p, 0700);
	free(p);
}

/* Called with the mutex held: (re)open the file for today if needed. */
static void log_rotate_locked(const struct tm *tm)
{
	char day[16];
	char *p;

	if (!log_state.path)
		return;
	strftime(day, sizeof(day), "%Y-%m-%d", tm);
	if (log_state.file && (!log_state.is_dir ||
			       strcmp(day, log_state.day) == 0))
		return;
	if (log_state.file)
		fclose(log_state.file);
	log_state.file = NULL;
	if (log_state.is_dir) {
		log_mkdirs(log_state.path);
		p = xasprintf("%s/%s-%s.log", log_state.path,
			      log_state.prefix, day);
	} else {
		p = xstrdup(log_state.path);
		if (strrchr(p, '/')) {
			*strrchr(p, '/') = 0;
			log_mkdirs(p);
			free(p);
			p = xstrdup(log_state.path);
		}
	}
	log_state.file = fopen(p, "ae");
	if (log_state.file)
		chmod(p, 0600);
	free(log_state.cur);
	log_state.cur = p;
	memcpy(log_state.day, day, sizeof(day));
}

int log_open_file(const char *path_or_dir, const char *prefix)
{
	size_t n = strlen(path_or_dir);
	time_t now = time(NULL);
	struct tm tm;
	int r = 0;

	pthread_mutex_lock(&log_state.mu);
	if (log_state.file)
		fclose(log_state.file);
	log_state.file = NULL;
	free(log_state.path);
	free(log_state.prefix);
	log_state.path = xstrdup(path_or_dir);
	log_state.prefix = xstrdup(prefix ? prefix : "clawgate");
	log_state.is_dir = !(n > 4 && strcmp(path_or_dir + n - 4, ".log") == 0);
	localtime_r(&now, &tm);
	log_rotate_locked(&tm);
	if (!log_state.file)
		r = -errno;
	pthread_mutex_unlock(&log_state.mu);
	return r;
}

void log_close_file(void)
{
	pthread_mutex_lock(&log_state.mu);
	if (log_state.file)
		fclose(log_state.file);
	log_state.file = NULL;
	free(log_state.path);
	log_state.path = NULL;
	free(log_state.prefix);
	log_state.prefix = NULL;
	free(log_state.cur);
	log_state.cur = NULL;
	pthread_mutex_unlock(&log_state.mu);
}

char *log_file_path(void)
{
	char *p = NULL;

	pthread_mutex_lock(&log_state.mu);
	if (log_state.cur)
		p = xstrdup(log_state.cur);
	pthread_mutex_unlock(&log_state.mu);
	return p;
}

/* Length of the valid UTF-8 sequence at s[0..n) (1-4), or 0. Rejects
 * overlong forms, surrogates and code points over U+10FFFF. */
static size_t log_utf8_len(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0], v;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
	    (len == 4 && (v < 0x10000 || v > 0x10ffff)))
		return 0;
	*cp = v;
	return len;
}

size_t log_escape(const char *in, size_t n, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	if (cap == 0)
		return 0;
	while (i < n) {
		char tmp[8];
		const char *add = tmp;
		size_t k, alen;
		unsigned cp;

		k = log_utf8_len(s + i, n - i, &cp);
		if (k == 0) {
			add = "\xef\xbf\xbd";	/* U+FFFD */
			alen = 3;
			k = 1;
		} else if (cp < 0x20 || cp == 0x7f) {
			alen = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x",
						cp);
		} else if (cp >= 0x80 && cp <= 0x9f) {
			alen = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x",
						cp);
		} else {
			add = in + i;
			alen = k;
		}
		if (o + alen + 1 > cap)
			break;
		memcpy(out + o, add, alen);
		o += alen;
		i += k;
	}
	out[o] = '\0';
	return o;
}

static void (*_Atomic log_mask_fn)(char *msg, size_t cap);

void log_set_mask(void (*fn)(char *msg, size_t cap))
{
	log_mask_fn = fn;
}

void log_vmsg(enum log_level lvl, const char *subsys, const char *fmt,
	      va_list ap)
{
	void (*mask)(char *, size_t) = log_mask_fn;
	char raw[2048], msg[2048 * 2], ts[40], tz[8];
	struct timespec now;
	struct tm tm;
	json_t *o;
	char *line;

	if (lvl > log_state.level && !log_state.file)
		return;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	if (mask)
		mask(raw, sizeof(raw));
	/* Peer text reaches log lines: invalid UTF-8 becomes U+FFFD (the
	 * JSON line would be dropped otherwise) and control bytes are
	 * escaped (they would reach the console). */
	log_escape(raw, strlen(raw), msg, sizeof(msg));
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(tz, sizeof(tz), "%z", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ld%.3s:%s",
		 now.tv_nsec / 1000000, tz, tz + 3);

	pthread_mutex_lock(&log_state.mu);
	if (log_state.console && lvl <= log_state.level)
		fprintf(stderr, "%s [%s] %s%s\n", ts, subsys,
			lvl == LOG_ERROR ? "error: " :
			lvl == LOG_WARN ? "warning: " : "", msg);
	if (log_state.path) {
		log_rotate_locked(&tm);
		if (log_state.file) {
			o = json_pack("{s:s,s:s,s:s,s:s}", "time", ts, "level",
				      log_level_names[lvl], "subsystem", subsys,
				      "message", msg);
			line = o ? json_dumps(o, JSON_COMPACT) : NULL;
			if (line) {
				fputs(line, log_state.file);
				fputc('\n', log_state.file);
				fflush(log_state.file);
			}
			free(line);
			json_decref(o);
		}
	}
	pthread_mutex_unlock(&log_state.mu);
}

void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, subsys, fmt, ap);
	va_end(ap);
}
