/* Fuzz target for the plain-http upstream client's response parser
 * (src/agent/h1.c): the same verdict, status, keep-alive flag and body
 * bytes whether the response arrives in one piece or split at arbitrary
 * points (the split step comes from the first input byte), never more
 * body bytes than input, and the end of the input as a close of the
 * connection settles every response that has not failed or ended. The
 * rest of the input after a blank line is also tried as a URL for
 * h1_url_parse: an accepted URL has a path that starts the request line
 * without spaces or control bytes; and for h2_url_ok (the https client,
 * src/agent/h2.c): an accepted URL is https://, without user info, and
 * has no space, control or non-ASCII byte. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/h1.h"
#include "agent/h2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_h1 {
	char *body;
	size_t len, cap;
	int rc, status, keepalive;
};

static int fuzz_h1_body(void *arg, const char *p, size_t n)
{
	struct fuzz_h1 *f = arg;

	if (f->len + n > f->cap) {
		f->cap = (f->len + n) * 2 + 16;
		f->body = realloc(f->body, f->cap);
		if (!f->body)
			abort();
	}
	memcpy(f->body + f->len, p, n);
	f->len += n;
	return 1;
}

static void fuzz_h1_run(const char *p, size_t n, size_t step,
			struct fuzz_h1 *f)
{
	struct h1_resp r;
	size_t off = 0, k, used;
	int rc = 0;

	h1_resp_init(&r);
	while (off < n && rc == 0) {
		k = step && step < n - off ? step : n - off;
		rc = h1_resp_feed(&r, p + off, k, &used, fuzz_h1_body, f);
		if (used > k)
			abort();
		off += rc == 1 ? used : k;
		if (rc == 1 && used < k)
			r.keepalive = 0;	/* as provider.c does */
	}
	if (rc == 0)
		rc = h1_resp_eof(&r) == 1 ? 1 : -1;
	if (rc < 0 && !r.err)
		abort();
	f->rc = rc;
	f->status = r.status;
	f->keepalive = rc == 1 && off == n ? r.keepalive : 0;
	if (rc == 1 && (r.status < 200 || r.status > 999))
		abort();
	h1_resp_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_h1 whole = {0}, split = {0};
	struct h1_target t;
	const char *p = (const char *)data + 1;
	size_t n = size ? size - 1 : 0, i;
	char *url;

	if (!size)
		return 0;
	fuzz_h1_run(p, n, 0, &whole);
	fuzz_h1_run(p, n, (size_t)(data[0] % 7) + 1, &split);
	if (whole.len > n || whole.rc != split.rc ||
	    whole.status != split.status || whole.len != split.len ||
	    (whole.len && memcmp(whole.body, split.body, whole.len) != 0))
		abort();
	free(whole.body);
	free(split.body);
	url = malloc(n + 1);
	if (!url)
		abort();
	memcpy(url, p, n);
	url[n] = 0;
	if (h1_url_parse(url, &t)) {
		if (t.path_len > n || (t.salen != sizeof(struct sockaddr_in) &&
				       t.salen != sizeof(struct sockaddr_in6)))
			abort();
		for (i = 0; i < t.path_len; i++)
			if ((unsigned char)t.path[i] <= 0x20 ||
			    (unsigned char)t.path[i] >= 0x7f)
				abort();
	}
	if (h2_url_ok(url)) {
		if (strncasecmp(url, "https://", 8) != 0 ||
		    memchr(url, '@', strcspn(url + 8, "/?#") + 8))
			abort();
		for (i = 0; url[i]; i++)
			if ((unsigned char)url[i] <= 0x20 ||
			    (unsigned char)url[i] >= 0x7f)
				abort();
	}
	free(url);
	return 0;
}
