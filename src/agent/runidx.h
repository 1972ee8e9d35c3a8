/* The live runs of the agent runtime indexed by run id and by session key
 * (src/agent/run.c), so a run's start, end, join and abort cost the same
 * whatever the number of runs in flight. Intrusive: a run embeds a
 * runidx_node; the index owns only its bucket tables and its per-session
 * entries. Not thread-safe: the runtime's lock guards it. */
#ifndef CLAWGATE_AGENT_RUNIDX_H
#define CLAWGATE_AGENT_RUNIDX_H

#include <stddef.h>
#include <stdint.h>

struct runidx_sess;

struct runidx_node {
	const char *id, *key;		/* not owned; unchanged while linked */
	uint32_t hid;			/* hash of id */
	struct runidx_node *id_next;	/* id bucket (newest first) */
	struct runidx_sess *sess;
	struct runidx_node *s_prev, *s_next; /* the session's runs, in the
					 * order they were added */
};

struct runidx {
	struct runidx_node **ids;
	struct runidx_sess **sess;
	size_t nids, nsess;		/* entries */
	size_t cap_ids, cap_sess;	/* buckets, powers of two */
};

void runidx_init(struct runidx *x);
/* Frees the tables and the session entries (the nodes are the caller's). */
void runidx_free(struct runidx *x);
/* Link n (n->id and n->key set): last of its session's runs. */
void runidx_add(struct runidx *x, struct runidx_node *n);
/* Unlink a linked node. */
void runidx_del(struct runidx *x, struct runidx_node *n);
/* The newest linked node with this id, or NULL. */
struct runidx_node *runidx_find(const struct runidx *x, const char *id);
/* The first (oldest) linked node of the session (walk ->s_next), or NULL. */
struct runidx_node *runidx_first(const struct runidx *x, const char *key);
/* The last (newest) linked node of the session (walk ->s_prev), or NULL. */
struct runidx_node *runidx_last(const struct runidx *x, const char *key);

#endif
