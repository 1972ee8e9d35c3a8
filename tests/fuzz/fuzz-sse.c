/* Fuzz target for the upstream SSE parser (src/agent/provider.c): the
 * events are the same whether the stream arrives in one piece or split at
 * arbitrary points (the split points come from the first input byte), and
 * no event is longer than the bound plus the chunk it arrived in (the
 * parser checks the bound on what it keeps buffered: an event that is
 * complete inside one chunk is delivered whole; curl's chunks are at most
 * 16 KiB). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SSE_MAX 1024

struct fuzz_events {
	char *buf;
	size_t len;
	size_t cap;
	int n;
	size_t limit;	/* FUZZ_SSE_MAX + the largest chunk fed */
};

static void fuzz_sse_cb(void *arg, const char *d, size_t len)
{
	struct fuzz_events *e = arg;

	if (len > e->limit)
		abort();
	/* grow by doubling: a realloc per event is quadratic under ASan,
	 * whose realloc always moves (most of the target's time went there) */
	if (e->len + len + 1 > e->cap) {
		e->cap = (e->len + len + 1) * 2;
		e->buf = realloc(e->buf, e->cap);
		if (!e->buf)
			abort();
	}
	memcpy(e->buf + e->len, d, len);
	e->len += len;
	e->buf[e->len++] = '\x1e';	/* event separator */
	e->n++;
}

static int fuzz_sse_run(const char *p, size_t n, unsigned step,
			struct fuzz_events *e)
{
	struct provider_sse s;
	size_t off = 0;
	int r = 0;

	provider_sse_init(&s, FUZZ_SSE_MAX);
	while (off < n && r == 0) {
		size_t k = step ? step : n;

		if (k > n - off)
			k = n - off;
		e->limit = FUZZ_SSE_MAX + k;
		r = provider_sse_feed(&s, p + off, k, fuzz_sse_cb, e);
		off += k;
		step = step ? (step * 7 + 3) % 17 + 1 : 0;
	}
	provider_sse_free(&s);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_events a = { NULL, 0, 0, 0, 0 }, b = { NULL, 0, 0, 0, 0 };
	int ra, rb;

	if (size < 1)
		return 0;
	ra = fuzz_sse_run((const char *)data + 1, size - 1, 0, &a);
	rb = fuzz_sse_run((const char *)data + 1, size - 1,
			  (unsigned)data[0] % 16 + 1, &b);
	if (ra == 0 && rb == 0 &&
	    (a.n != b.n || a.len != b.len ||
	     (a.len && memcmp(a.buf, b.buf, a.len) != 0)))
		abort();
	free(a.buf);
	free(b.buf);
	return 0;
}
