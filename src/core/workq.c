/* Worker pool: a mutex-protected FIFO and N threads. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/common.h"
#include "core/util.h"
#include "core/workq.h"

struct workq_job {
	void (*fn)(void *arg);
	void *arg;
	struct workq_job *next;
};

struct workq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t idle;
	struct workq_job *head, *tail;
	int queued, running, max_queued, stopping, nthreads;
	int joined;	/* workq_stop joined the threads */
	pthread_t *threads;
};

static void *workq_main(void *arg)
{
	struct workq *q = arg;
	struct workq_job *j;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->head && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (!q->head)
			break;
		j = q->head;
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		q->queued--;
		q->running++;
		pthread_mutex_unlock(&q->mu);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&q->mu);
		q->running--;
		if (!q->head && !q->running)
			pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

struct workq *workq_new(int nthreads, int max_queued)
{
	struct workq *q = xcalloc(1, sizeof(*q));
	int i;

	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	pthread_cond_init(&q->idle, NULL);
	q->max_queued = max_queued;
	q->nthreads = nthreads;
	q->threads = xcalloc((size_t)nthreads, sizeof(pthread_t));
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&q->threads[i], NULL, workq_main, q) == 0)
			pthread_setname_np(q->threads[i], "worker");
	return q;
}

int workq_post(struct workq *q, void (*fn)(void *arg), void *arg)
{
	struct workq_job *j;

	pthread_mutex_lock(&q->mu);
	if (q->stopping || q->queued >= q->max_queued) {
		pthread_mutex_unlock(&q->mu);
		return -1;
	}
	j = xmalloc(sizeof(*j));
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->queued++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void workq_stop(struct workq *q, int wait_ms)
{
	struct timespec ts;
	int i, join;

	if (!q)
		return;
	util_deadline(&ts, wait_ms);
	pthread_mutex_lock(&q->mu);
	while ((q->head || q->running) && !q->stopping &&
	       pthread_cond_timedwait(&q->idle, &q->mu, &ts) == 0)
		;
	join = !q->joined;
	q->stopping = 1;
	q->joined = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	/* The threads run what is still queued before they exit. */
	for (i = 0; join && i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
}

void workq_free(struct workq *q)
{
	if (!q)
		return;
	workq_stop(q, 0);
	free(q->threads);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	pthread_cond_destroy(&q->idle);
	free(q);
}

void workq_stats(struct workq *q, struct workq_stats *out)
{
	pthread_mutex_lock(&q->mu);
	out->threads = q->nthreads;
	out->running = q->running;
	out->queued = q->queued;
	out->max_queued = q->max_queued;
	out->stopping = q->stopping;
	pthread_mutex_unlock(&q->mu);
}
