/* Fuzz target for the CLI's WebSocket frame reader (src/cli/wsclient.c,
 * wsclient_reader_step): the bytes a gateway sends the CLI after the
 * upgrade. The first input byte picks the message limit (64 B .. 8 KiB, so
 * the oversize path is reachable) and the split step; the rest is the
 * stream. It is read twice, whole and in small pieces the way the client's
 * socket delivers it, and both give the same frames, messages, close and
 * error. Every step makes progress or asks for more bytes than it has;
 * messages are within the limit and NUL-terminated; a message encoded
 * again (unmasked and masked) reads back the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "cli/wsclient.h"
#include "core/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_trace {
	uint8_t *buf;
	size_t len;
	size_t cap;
};

static void fuzz_ws_put(struct fuzz_trace *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 64;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			abort();
	}
	if (n)
		memcpy(t->buf + t->len, p, n);
	t->len += n;
}

static void fuzz_ws_put_num(struct fuzz_trace *t, int kind, size_t v)
{
	uint8_t k = (uint8_t)kind;

	fuzz_ws_put(t, &k, 1);
	fuzz_ws_put(t, &v, sizeof(v));
}

/* Encode m as an unmasked server message (two fragments when it has more
 * than one byte) and as one masked client frame; both read back as m. */
static void fuzz_ws_reencode(const char *m, size_t len, int opcode,
			     size_t max)
{
	static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	struct wsclient_reader r;
	struct wsclient_event ev;
	struct wsclient_frame f;
	uint8_t *a, *b, *all;
	size_t alen, blen, half = len / 2;

	a = wsclient_frame_encode(opcode, half == 0, m, half ? half : len,
				  NULL, &alen);
	b = half ? wsclient_frame_encode(WS_OP_CONT, 1, m + half, len - half,
					 NULL, &blen) : NULL;
	if (!b)
		blen = 0;
	all = malloc(alen + blen);
	if (!all)
		abort();
	memcpy(all, a, alen);
	if (blen)
		memcpy(all + alen, b, blen);
	wsclient_reader_init(&r, max);
	if (half) {
		if (wsclient_reader_step(&r, all, alen + blen, &ev) !=
		    WSCLIENT_EV_FRAGMENT || ev.used != alen)
			abort();
	} else {
		ev.used = 0;
	}
	if (wsclient_reader_step(&r, all + ev.used, alen + blen - ev.used,
				 &ev) != WSCLIENT_EV_MESSAGE ||
	    ev.mlen != len || ev.opcode != opcode ||
	    memcmp(ev.msg, m, len) != 0)
		abort();
	free(ev.msg);
	wsclient_reader_reset(&r);
	free(all);
	free(a);
	free(b);

	a = wsclient_frame_encode(opcode, 1, m, len, mask, &alen);
	if (wsclient_frame_parse(a, alen, &f) != 1 || !f.masked ||
	    f.len != len || f.hdr_len + len != alen || f.opcode != opcode)
		abort();
	wsclient_mask(a + f.hdr_len, len, f.mask, 0);
	if (memcmp(a + f.hdr_len, m, len) != 0)
		abort();
	free(a);
}

/* Read d[0..n) delivering step bytes at a time (0: all at once); record
 * what the reader reports in t. */
static void fuzz_ws_run(const uint8_t *d, size_t n, size_t step, size_t max,
			struct fuzz_trace *t, int reencode)
{
	struct wsclient_reader r;
	struct wsclient_event ev;
	/* a copy of d whose bytes not yet delivered are poisoned: reading
	 * past what the socket gave is an ASan report, as at the end of a
	 * heap buffer, without a copy per delivery */
	uint8_t *win = malloc(n ? n : 1);
	size_t pos = 0, delivered = step && step < n ? step : n;
	size_t have, prev;

	if (!win)
		abort();
	memcpy(win, d, n);
	ASAN_POISON_MEMORY_REGION(win + delivered, n - delivered);
	wsclient_reader_init(&r, max);
	for (;;) {
		have = delivered - pos;
		wsclient_reader_step(&r, win + pos, have, &ev);
		if (ev.used > have)
			abort();
		if (ev.kind == WSCLIENT_EV_NEED) {
			/* no progress is only allowed when asking for more,
			 * and never for more than a header and a message */
			if (ev.used || ev.need <= have || ev.need > 14 + max)
				abort();
			if (delivered == n) {
				fuzz_ws_put_num(t, 'N', ev.need);
				break;
			}
			/* the socket gives some more bytes: a few at a time
			 * in a header; for a long payload, up to one byte
			 * short of it or all of it at once (copying the
			 * window byte by byte would be quadratic) */
			prev = delivered;
			if (ev.need > have + 16)
				delivered = pos + ev.need - (step & 1);
			else
				delivered += step;
			if (delivered > n)
				delivered = n;
			step = step % 13 + 1;
			/* only the new bytes: unpoisoning the whole prefix
			 * each time was quadratic in the input */
			ASAN_UNPOISON_MEMORY_REGION(win + prev, delivered - prev);
			continue;
		}
		if (ev.kind == WSCLIENT_EV_ERROR) {
			if (ev.used || !ev.what ||
			    (ev.error != GW_EINVAL && ev.error != GW_ETOOBIG))
				abort();
			fuzz_ws_put_num(t, 'E', (size_t)ev.error);
			break;
		}
		if (ev.used == 0)
			abort();
		pos += ev.used;
		switch (ev.kind) {
		case WSCLIENT_EV_MESSAGE:
			if (ev.mlen > max || ev.msg[ev.mlen] != '\0' ||
			    (ev.opcode != WS_OP_TEXT &&
			     ev.opcode != WS_OP_BINARY))
				abort();
			fuzz_ws_put_num(t, 'M' + ev.opcode, ev.mlen);
			fuzz_ws_put(t, ev.msg, ev.mlen);
			if (reencode)
				fuzz_ws_reencode(ev.msg, ev.mlen, ev.opcode,
						 max);
			free(ev.msg);
			break;
		case WSCLIENT_EV_FRAGMENT:
			fuzz_ws_put_num(t, 'F', ev.used);
			break;
		case WSCLIENT_EV_PING:
		case WSCLIENT_EV_PONG:
			if (ev.len > 125 || ev.payload < win + pos - ev.used ||
			    ev.payload + ev.len > win + delivered)
				abort();
			fuzz_ws_put_num(t, 'P' + ev.kind, ev.len);
			fuzz_ws_put(t, ev.payload, ev.len);
			break;
		case WSCLIENT_EV_CLOSE:
			if (ev.close_code < 0 || ev.close_code > 0xffff ||
			    ev.len > 125)
				abort();
			fuzz_ws_put_num(t, 'C', (size_t)ev.close_code);
			fuzz_ws_put(t, ev.payload, ev.len);
			goto out;	/* the client stops reading here */
		default:
			abort();
		}
	}
out:
	ASAN_UNPOISON_MEMORY_REGION(win, n);
	free(win);
	wsclient_reader_reset(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* kept from one input to the next: fewer allocations per run */
	static struct fuzz_trace a, b;
	size_t max;

	if (size < 1)
		return 0;
	a.len = 0;
	b.len = 0;
	max = (size_t)64 << (data[0] >> 5);
	fuzz_ws_run(data + 1, size - 1, 0, max, &a, 1);
	fuzz_ws_run(data + 1, size - 1, (size_t)(data[0] & 15) + 1, max, &b,
		    0);
	if (a.len != b.len || (a.len && memcmp(a.buf, b.buf, a.len) != 0)) {
		fprintf(stderr, "whole and split reads differ\n");
		abort();
	}
	return 0;
}
