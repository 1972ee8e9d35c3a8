/* A small fixed pool of worker threads running posted jobs in FIFO order
 * (RPC handlers that touch the store or files, later agent runs). */
#pragma once

struct workq;

struct workq *workq_new(int nthreads, int max_queued);
/* Any thread. Returns 0, or -1 when the queue is full or stopping (the job
 * is not run; the caller answers "unavailable"). */
int workq_post(struct workq *q, void (*fn)(void *arg), void *arg);
/* Lifecycle (doc/hardening.md): workq_stop waits up to wait_ms for the
 * queue to drain, then refuses every later post (-1) and joins the threads
 * (they run what is still queued first). The queue stays valid memory:
 * transports that may still call workq_post are stopped before
 * workq_free, which the owner calls last. Both are idempotent. */
void workq_stop(struct workq *q, int wait_ms);
void workq_free(struct workq *q);

/* A snapshot of the pool's load (diagnostics.lanes). Any thread. */
struct workq_stats {
	int threads, running, queued, max_queued, stopping;
};
void workq_stats(struct workq *q, struct workq_stats *out);
