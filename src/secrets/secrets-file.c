/* The file provider: a private regular file (one hard link, owned by the
 * gateway user, no group/other permissions, not a symlink), either a JSON
 * object read with JSON pointers (mode json) or one raw value (mode
 * singleValue, id "value", one trailing newline stripped). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "secrets/secrets-int.h"
#include "secrets/secrets.h"

static int secrets_file_single(const json_t *def)
{
	const char *m = json_string_value(json_object_get(def, "mode"));

	return m && strcmp(m, "singleValue") == 0;
}

static int secrets_file_check(const json_t *def, char *why, size_t len)
{
	static const char *const keys[] = { "source", "path", "mode",
					    "timeoutMs", "maxBytes", NULL };
	const char *m = json_string_value(json_object_get(def, "mode"));
	const char *p = json_string_value(json_object_get(def, "path"));

	if (secrets_def_keys(def, keys, why, len) < 0)
		return -1;
	if (!p || !*p || (p[0] != '/' && p[0] != '~')) {
		snprintf(why, len, "path: expected an absolute path");
		return -1;
	}
	if (json_object_get(def, "mode") && (!m ||
	    (strcmp(m, "json") != 0 && strcmp(m, "singleValue") != 0))) {
		snprintf(why, len, "mode: expected \"json\" or "
			 "\"singleValue\"");
		return -1;
	}
	if (secrets_def_int(def, "timeoutMs", 5000, 1, 120000) < 0 ||
	    secrets_def_int(def, "maxBytes", 1, 1, 16 * 1024 * 1024) < 0) {
		snprintf(why, len, "timeoutMs/maxBytes: out of range");
		return -1;
	}
	return 0;
}

static int secrets_file_id_ok(const char *id, const json_t *def)
{
	if (secrets_file_single(def))
		return strcmp(id, "value") == 0;
	return id[0] == '/' && secrets_file_id_valid(id);
}

/* Read the file after the checks; -1 with a reason. */
static int secrets_file_read(const char *path, size_t max, char **out,
			     size_t *olen, char *why, size_t len)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int fd = -1, r = -1;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, len, "%s", errno == ELOOP ?
			 "file must not be a symlink" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, len, "not a regular file");
		goto out;
	}
	if (st.st_nlink != 1) {
		snprintf(why, len, "file must not be hardlinked");
		goto out;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, len, "file must be owned by the gateway user");
		goto out;
	}
	if (st.st_mode & 077) {
		snprintf(why, len, "file must be private (mode 0600 or "
			 "stricter)");
		goto out;
	}
	if ((size_t)st.st_size > max) {
		snprintf(why, len, "file larger than %zu bytes", max);
		goto out;
	}
	buf = xmalloc(max + 1);
	for (;;) {
		ssize_t k = read(fd, buf + n, max + 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(why, len, "%s", strerror(errno));
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > max) {
			snprintf(why, len, "file larger than %zu bytes", max);
			goto out;
		}
	}
	buf[n] = 0;
	if (memchr(buf, 0, n)) {
		snprintf(why, len, "file contains a NUL byte");
		goto out;
	}
	*out = buf;
	*olen = n;
	buf = NULL;
	r = 0;
out:
	if (buf) {
		explicit_bzero(buf, max + 1);
		free(buf);
	}
	close(fd);
	return r;
}

static int secrets_file_resolve(struct secrets_batch *b, char *why,
				size_t len)
{
	int64_t max = secrets_def_int(b->def, "maxBytes",
				      SECRETS_FILE_MAX_DEFAULT, 1,
				      16 * 1024 * 1024);
	char *path = secrets_expand_home(json_string_value(
		json_object_get(b->def, "path")));
	char *buf = NULL;
	json_t *doc = NULL;
	json_error_t jerr;
	size_t n = 0, i;
	int r = -1;

	if (secrets_file_read(path, (size_t)max, &buf, &n, why, len) < 0)
		goto out;
	if (secrets_file_single(b->def)) {
		if (n && buf[n - 1] == '\n')
			buf[--n] = 0;
		if (n && buf[n - 1] == '\r')
			buf[--n] = 0;
		for (i = 0; i < b->n; i++)
			b->values[i] = xstrdup(buf);
		r = 0;
		goto out;
	}
	doc = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		snprintf(why, len, "file is not a JSON object");
		goto out;
	}
	for (i = 0; i < b->n; i++) {
		const json_t *v = secrets_json_pointer(doc, b->ids[i]);

		if (!v)
			b->errs[i] = xstrdup("JSON pointer does not match");
		else if (!json_is_string(v))
			b->errs[i] = xstrdup("JSON pointer does not name a "
					     "string");
		else if (strlen(json_string_value(v)) !=
			 json_string_length(v))
			b->errs[i] = xstrdup("value contains a NUL byte");
		else
			b->values[i] = xstrdup(json_string_value(v));
	}
	r = 0;
out:
	if (buf) {
		explicit_bzero(buf, n);
		free(buf);
	}
	json_decref(doc);
	free(path);
	return r;
}

const struct secrets_provider secrets_file_provider = {
	.source = "file",
	.check = secrets_file_check,
	.id_valid = secrets_file_id_ok,
	.resolve = secrets_file_resolve,
};
