/* Failed-attempt rate limiter: a sliding window per key ("shared-secret:
 * <ip>"), then a lockout. Thread-safe; bounded number of keys. */
#pragma once

#include <stdint.h>

struct limiter;

struct limiter_policy {
	int max_attempts;	/* failures allowed in the window */
	int64_t window_ms;
	int64_t lockout_ms;
};

struct limiter *limiter_new(int max_keys);
void limiter_free(struct limiter *l);
/* Is key locked out at now_ms? If so, *retry_after_ms says for how long. */
int limiter_locked(struct limiter *l, const char *key, int64_t now_ms,
		   int64_t *retry_after_ms);
/* Record a failure; returns 1 when this failure starts a lockout. */
int limiter_fail(struct limiter *l, const char *key, int64_t now_ms,
		 const struct limiter_policy *p);
/* A success clears the key. */
void limiter_reset(struct limiter *l, const char *key);
