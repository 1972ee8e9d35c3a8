/* A small fixed pool of worker threads running posted jobs in FIFO order
 * (RPC handlers that touch the store or files, later agent runs). */
#pragma once

struct workq;

struct workq *workq_new(int nthreads, int max_queued);
/* Any thread. Returns 0, or -1 when the queue is full or stopping (the job
 * is not run; the caller answers "unavailable"). */
int workq_post(struct workq *q, void (*fn)(void *arg), void *arg);
/* Run what is queued (bounded by wait_ms), then join the threads. */
void workq_free(struct workq *q, int wait_ms);

/* A snapshot of the pool's load (diagnostics.lanes). Any thread. */
struct workq_stats {
	int threads, running, queued, max_queued, stopping;
};
void workq_stats(struct workq *q, struct workq_stats *out);
