/* Sliding-window failure limiter with lockout. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/limiter.h"
#include "core/common.h"

#define LIMITER_MAX_FAILS 64	/* timestamps kept per key */

struct limiter_entry {
	char *key;
	int64_t fails[LIMITER_MAX_FAILS];
	int nfails;
	int64_t locked_until;
	int64_t last;
};

struct limiter {
	pthread_mutex_t mu;
	struct limiter_entry *v;
	int n, cap;
};

struct limiter *limiter_new(int max_keys)
{
	struct limiter *l = xcalloc(1, sizeof(*l));

	pthread_mutex_init(&l->mu, NULL);
	l->cap = max_keys > 0 ? max_keys : 4096;
	l->v = xcalloc((size_t)l->cap, sizeof(*l->v));
	return l;
}

void limiter_free(struct limiter *l)
{
	int i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		free(l->v[i].key);
	free(l->v);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static struct limiter_entry *limiter_find(struct limiter *l, const char *key)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return &l->v[i];
	return NULL;
}

/* Find or create; when full, the least recently used entry is reused. */
static struct limiter_entry *limiter_get(struct limiter *l, const char *key)
{
	struct limiter_entry *e = limiter_find(l, key);
	int i, oldest = 0;

	if (e)
		return e;
	if (l->n < l->cap) {
		e = &l->v[l->n++];
	} else {
		for (i = 1; i < l->n; i++)
			if (l->v[i].last < l->v[oldest].last)
				oldest = i;
		e = &l->v[oldest];
		free(e->key);
	}
	memset(e, 0, sizeof(*e));
	e->key = xstrdup(key);
	return e;
}

int limiter_locked(struct limiter *l, const char *key, int64_t now_ms,
		   int64_t *retry_after_ms)
{
	struct limiter_entry *e;
	int r = 0;

	pthread_mutex_lock(&l->mu);
	e = limiter_find(l, key);
	if (e && e->locked_until > now_ms) {
		r = 1;
		if (retry_after_ms)
			*retry_after_ms = e->locked_until - now_ms;
	}
	pthread_mutex_unlock(&l->mu);
	return r;
}

int limiter_fail(struct limiter *l, const char *key, int64_t now_ms,
		 const struct limiter_policy *p)
{
	struct limiter_entry *e;
	int i, j, r = 0;

	pthread_mutex_lock(&l->mu);
	e = limiter_get(l, key);
	e->last = now_ms;
	/* Drop failures that left the window. */
	for (i = 0, j = 0; i < e->nfails; i++)
		if (now_ms - e->fails[i] < p->window_ms)
			e->fails[j++] = e->fails[i];
	e->nfails = j;
	if (e->nfails == LIMITER_MAX_FAILS) {
		memmove(e->fails, e->fails + 1,
			sizeof(e->fails[0]) * (LIMITER_MAX_FAILS - 1));
		e->nfails--;
	}
	e->fails[e->nfails++] = now_ms;
	if (e->nfails >= p->max_attempts && e->locked_until <= now_ms) {
		e->locked_until = now_ms + p->lockout_ms;
		e->nfails = 0;
		r = 1;
	}
	pthread_mutex_unlock(&l->mu);
	return r;
}

void limiter_reset(struct limiter *l, const char *key)
{
	struct limiter_entry *e;

	pthread_mutex_lock(&l->mu);
	e = limiter_find(l, key);
	if (e) {
		e->nfails = 0;
		e->locked_until = 0;
	}
	pthread_mutex_unlock(&l->mu);
}
