/* Live runs by id and by session key: two chained hash tables (FNV-1a,
 * power-of-two buckets, doubled at one entry per bucket; never shrunk:
 * they are as large as the most runs ever in flight). A session entry
 * holds its runs as a list in the order they were added; it goes away
 * with its last run. */
#include <stdlib.h>
#include <string.h>

#include "agent/runidx.h"
#include "core/common.h"
#include "core/util.h"

#define RUNIDX_MIN 64

struct runidx_sess {
	struct runidx_sess *next;	/* bucket chain */
	uint32_t h;
	char *key;
	struct runidx_node *first, *last;
};

static uint32_t runidx_hash(const char *s)
{
	return util_fnv1a(s, strlen(s));
}

void runidx_init(struct runidx *x)
{
	memset(x, 0, sizeof(*x));
}

void runidx_free(struct runidx *x)
{
	struct runidx_sess *s, *n;
	size_t i;

	for (i = 0; i < x->cap_sess; i++)
		for (s = x->sess[i]; s; s = n) {
			n = s->next;
			free(s->key);
			free(s);
		}
	free(x->sess);
	free(x->ids);
	memset(x, 0, sizeof(*x));
}

/* Bucket tables grown to hold one more entry. */
static void runidx_grow_ids(struct runidx *x)
{
	struct runidx_node **t, *n, *next;
	size_t cap, i;

	if (x->nids < x->cap_ids)
		return;
	cap = x->cap_ids ? x->cap_ids * 2 : RUNIDX_MIN;
	t = xcalloc(cap, sizeof(*t));
	/* Rehash keeping each chain's order (newest first). */
	for (i = 0; i < x->cap_ids; i++)
		for (n = x->ids[i]; n; n = next) {
			struct runidx_node **p = &t[n->hid & (cap - 1)];

			next = n->id_next;
			while (*p)
				p = &(*p)->id_next;
			n->id_next = NULL;
			*p = n;
		}
	free(x->ids);
	x->ids = t;
	x->cap_ids = cap;
}

static void runidx_grow_sess(struct runidx *x)
{
	struct runidx_sess **t, *s, *next;
	size_t cap, i;

	if (x->nsess < x->cap_sess)
		return;
	cap = x->cap_sess ? x->cap_sess * 2 : RUNIDX_MIN;
	t = xcalloc(cap, sizeof(*t));
	for (i = 0; i < x->cap_sess; i++)
		for (s = x->sess[i]; s; s = next) {
			next = s->next;
			s->next = t[s->h & (cap - 1)];
			t[s->h & (cap - 1)] = s;
		}
	free(x->sess);
	x->sess = t;
	x->cap_sess = cap;
}

static struct runidx_sess *runidx_sess_get(const struct runidx *x,
					   const char *key, uint32_t h)
{
	struct runidx_sess *s;

	if (!x->cap_sess)
		return NULL;
	for (s = x->sess[h & (x->cap_sess - 1)]; s; s = s->next)
		if (s->h == h && strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

void runidx_add(struct runidx *x, struct runidx_node *n)
{
	uint32_t hk = runidx_hash(n->key);
	struct runidx_sess *s;
	size_t b;

	runidx_grow_ids(x);
	n->hid = runidx_hash(n->id);
	b = n->hid & (x->cap_ids - 1);
	n->id_next = x->ids[b];
	x->ids[b] = n;
	x->nids++;

	s = runidx_sess_get(x, n->key, hk);
	if (!s) {
		runidx_grow_sess(x);
		s = xcalloc(1, sizeof(*s));
		s->h = hk;
		s->key = xstrdup(n->key);
		b = hk & (x->cap_sess - 1);
		s->next = x->sess[b];
		x->sess[b] = s;
		x->nsess++;
	}
	n->sess = s;
	n->s_next = NULL;
	n->s_prev = s->last;
	if (s->last)
		s->last->s_next = n;
	else
		s->first = n;
	s->last = n;
}

void runidx_del(struct runidx *x, struct runidx_node *n)
{
	struct runidx_node **p = &x->ids[n->hid & (x->cap_ids - 1)];
	struct runidx_sess *s = n->sess, **q;

	while (*p && *p != n)
		p = &(*p)->id_next;
	if (*p) {
		*p = n->id_next;
		x->nids--;
	}
	n->id_next = NULL;
	if (n->s_prev)
		n->s_prev->s_next = n->s_next;
	else
		s->first = n->s_next;
	if (n->s_next)
		n->s_next->s_prev = n->s_prev;
	else
		s->last = n->s_prev;
	n->s_prev = n->s_next = NULL;
	n->sess = NULL;
	if (s->first)
		return;
	for (q = &x->sess[s->h & (x->cap_sess - 1)]; *q != s; q = &(*q)->next)
		;
	*q = s->next;
	x->nsess--;
	free(s->key);
	free(s);
}

struct runidx_node *runidx_find(const struct runidx *x, const char *id)
{
	uint32_t h;
	struct runidx_node *n;

	if (!x->cap_ids)
		return NULL;
	h = runidx_hash(id);
	for (n = x->ids[h & (x->cap_ids - 1)]; n; n = n->id_next)
		if (n->hid == h && strcmp(n->id, id) == 0)
			return n;
	return NULL;
}

struct runidx_node *runidx_first(const struct runidx *x, const char *key)
{
	struct runidx_sess *s = runidx_sess_get(x, key, runidx_hash(key));

	return s ? s->first : NULL;
}

struct runidx_node *runidx_last(const struct runidx *x, const char *key)
{
	struct runidx_sess *s = runidx_sess_get(x, key, runidx_hash(key));

	return s ? s->last : NULL;
}
