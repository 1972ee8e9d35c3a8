/* Fuzz target for the upstream SSE parser (src/agent/provider.c): the
 * events are the same whether the stream arrives in one piece or split at
 * arbitrary points (the split points come from the first input byte), and
 * no event is longer than the bound plus the chunk it arrived in (the
 * parser checks the bound on what it keeps buffered: an event that is
 * complete inside one chunk is delivered whole; curl's chunks are at most
 * 16 KiB). The input after the first byte is also one chunk for the
 * chat.completion.chunk scanner, checked against jansson. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

/* The chunk scanner (provider_chunk_scan) against jansson: when it takes
 * an input, jansson parses it too and gives the same values. */
static void fuzz_str_same(const struct provider_chunk_str *f,
			  const json_t *v)
{
	char *t;
	size_t n;

	if (!json_is_string(v)) {
		if (f->is_str)
			abort();
		return;
	}
	if (!f->is_str)
		abort();
	t = malloc(f->len + 1);
	n = provider_chunk_text(f, t);
	if (n != json_string_length(v) || memcmp(t, json_string_value(v), n))
		abort();
	free(t);
}

static void fuzz_chunk(const char *p, size_t n)
{
	struct provider_chunk c;
	json_t *o, *u, *ch, *d, *v;

	if (!provider_chunk_scan(p, n, &c))
		return;
	o = json_loadb(p, n, 0, NULL);
	if (!json_is_object(o) || json_object_get(o, "error"))
		abort();
	u = json_object_get(o, "usage");
	v = json_is_object(u) ? json_object_get(u, "prompt_tokens") : NULL;
	if (c.in_set != json_is_integer(v) ||
	    (c.in_set && c.in_tok != json_integer_value(v)))
		abort();
	v = json_is_object(u) ? json_object_get(u, "completion_tokens")
			      : NULL;
	if (c.out_set != json_is_integer(v) ||
	    (c.out_set && c.out_tok != json_integer_value(v)))
		abort();
	ch = json_array_get(json_object_get(o, "choices"), 0);
	if (c.has_choice != (ch != NULL))
		abort();
	d = json_object_get(ch, "delta");
	if (json_object_get(d, "tool_calls"))
		abort();
	fuzz_str_same(&c.content, json_object_get(d, "content"));
	fuzz_str_same(&c.finish, json_object_get(ch, "finish_reason"));
	json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_events a = { NULL, 0, 0, 0, 0 }, b = { NULL, 0, 0, 0, 0 };
	int ra, rb;

	if (size < 1)
		return 0;
	fuzz_chunk((const char *)data + 1, size - 1);
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
