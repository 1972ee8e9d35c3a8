/* Small helpers: clocks, ids, encodings, hashing, randomness. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Wall clock in epoch milliseconds. */
int64_t util_now_ms(void);
/* Monotonic milliseconds (for timeouts and uptime). */
int64_t util_mono_ms(void);

/* Random bytes from the OS CSPRNG (OpenSSL RAND_bytes); aborts on failure. */
void util_random(void *buf, size_t n);
/* Lowercase UUID v4 into out[37]. */
void util_uuid(char out[37]);

/* FNV-1a (32-bit) of n bytes: the hash of in-memory tables. */
uint32_t util_fnv1a(const void *p, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void util_hex(const uint8_t *in, size_t n, char *out);
/* SHA-256 of data into out[32]. */
void util_sha256(const void *data, size_t len, uint8_t out[32]);
/* Lowercase hex SHA-256 into out[65]. */
void util_sha256_hex(const void *data, size_t len, char out[65]);

/* base64url without padding. Returns a new string. */
char *util_b64url_encode(const uint8_t *in, size_t n);
/* Decode base64url (padding optional) or, as a fallback, standard base64.
 * Returns the number of bytes written to out (at most cap), or -1. */
long util_b64_decode(const char *in, uint8_t *out, size_t cap);

/* Constant-time string equality (lengths compared without early exit). */
int util_secret_equal(const char *a, const char *b);

/* Read a whole regular file of at most max bytes into *out (NUL-terminated,
 * caller frees) and *len. Returns 1 when read, 0 when it does not exist,
 * else -errno: -EINVAL not a regular file, -EFBIG larger than max. What was
 * read is wiped before a failure returns (files may hold secrets). */
int util_read_file(const char *path, size_t max, char **out, size_t *len);

struct timespec;
/* An absolute CLOCK_REALTIME deadline ms from now (for timed waits). */
void util_deadline(struct timespec *ts, int64_t ms);

/* A growing NUL-terminated string: start with {0}; p is NULL until the
 * first append, then owned by the caller (free(b.p)). */
struct util_buf {
	char *p;
	size_t len, cap;
};
void util_buf_put(struct util_buf *b, const char *s, size_t n);
void util_buf_puts(struct util_buf *b, const char *s);
void util_buf_printf(struct util_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parse a decimal port 1..65535; -1 on error. */
int util_parse_port(const char *s);
