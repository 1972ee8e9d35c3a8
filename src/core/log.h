/* Logging: levels + subsystem prefix on the console, JSON lines in a daily
 * file (the file logs.tail reads). Thread-safe. Secrets are never logged. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Console level (default info). */
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
int log_level_parse(const char *s, enum log_level *out);
/* Open the daily JSON-lines file. If path ends in ".log" it is used as is,
 * otherwise it is a directory and the file is <dir>/<prefix>-YYYY-MM-DD.log.
 * Returns 0 or -errno. */
int log_open_file(const char *path_or_dir, const char *prefix);
void log_close_file(void);
/* Current file path (owned copy, or NULL when no file). */
char *log_file_path(void);
/* Silence the console (tests, CLI). */
void log_set_console(int on);

/* A filter run on every formatted message before it is written (the
 * secrets module masks resolved values with it). NULL = none. */
void log_set_mask(void (*fn)(char *msg, size_t cap));

/* What every log line goes through: in[0..n) copied to out (always
 * terminated, truncated at a character boundary to fit cap) with invalid
 * UTF-8 replaced by U+FFFD, C0 controls and DEL written as \xNN and C1
 * controls as \u00NN. Returns the bytes written. */
size_t log_escape(const char *in, size_t n, char *out, size_t cap);
void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level lvl, const char *subsys, const char *fmt,
	      va_list ap);

#define log_error(sub, ...) log_msg(LOG_ERROR, sub, __VA_ARGS__)
#define log_warn(sub, ...) log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...) log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...)                                              \
	do {                                                             \
		if (log_get_level() >= LOG_DEBUG)                        \
			log_msg(LOG_DEBUG, sub, __VA_ARGS__);            \
	} while (0)
