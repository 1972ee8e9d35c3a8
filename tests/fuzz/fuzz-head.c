/* Fuzz target for the connection classifier and the strict HTTP head
 * check (src/net/head.c, listener_classify): any bytes, no crash, and the
 * verdicts agree with each other: a head judged OK has its blank line
 * inside the input, a WS verdict is a GET, a refusal has a status line,
 * and every prefix of an OK head is INCOMPLETE or OK (a head is never
 * refused for bytes that come later). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/head.h"
#include "net/listener.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_WINDOW 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct head_info hi, hp;
	const char *status = NULL;
	enum listener_class c;
	enum head_result r;
	size_t k;

	r = head_check(buf, size, FUZZ_WINDOW, &hi);
	c = listener_classify(buf, size, FUZZ_WINDOW, &status);
	if (status == NULL ||
	    (status[0] != '4' && strncmp(status, "505", 3) != 0))
		abort();
	switch (r) {
	case HEAD_INCOMPLETE:
		if (c != LISTENER_PENDING || size >= FUZZ_WINDOW)
			abort();
		break;
	case HEAD_OK:
		if (hi.head_len < 4 || hi.head_len > size ||
		    memcmp(buf + hi.head_len - 4, "\r\n\r\n", 4) != 0)
			abort();
		if (c != (hi.websocket ? LISTENER_WS : LISTENER_HTTP))
			abort();
		if (hi.websocket && (!hi.get || memcmp(buf, "GET ", 4) != 0))
			abort();
		if (hi.fields > HEAD_MAX_FIELDS)
			abort();
		/* a few prefixes: never refused */
		for (k = 0; k < hi.head_len; k += 1 + hi.head_len / 16) {
			enum head_result pr = head_check(buf, k, FUZZ_WINDOW,
							 &hp);

			if (pr != HEAD_INCOMPLETE && pr != HEAD_OK)
				abort();
		}
		break;
	default:
		if (c != LISTENER_REFUSE || hi.why == NULL)
			abort();
		break;
	}
	return 0;
}
