/* Fuzz target for base64url (src/core/util.c): decoding any text never
 * writes past the buffer and never returns more than it may; whatever
 * decodes, encoded again and decoded again, gives the same bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	size_t cap = size;	/* decoded is never longer than the text */
	uint8_t *out = malloc(cap + 1), *again = malloc(cap + 1);
	char *enc = NULL;
	long n, m;

	memcpy(in, data, size);
	in[size] = '\0';
	n = util_b64_decode(in, out, cap);
	if (n < -1 || n > (long)cap)
		abort();
	if (n >= 0) {
		enc = util_b64url_encode(out, (size_t)n);
		if (enc == NULL || strpbrk(enc, "+/=") != NULL)
			abort();
		m = util_b64_decode(enc, again, cap);
		if (m != n || memcmp(out, again, (size_t)n) != 0)
			abort();
	}
	free(enc);
	free(in);
	free(out);
	free(again);
	return 0;
}
