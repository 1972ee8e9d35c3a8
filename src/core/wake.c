/* Held wake-ups (wake.h): a short list per thread, and the receivers
 * still alive (a held wake-up runs only for those). */
#include "config.h"

#include <pthread.h>
#include <stddef.h>

#include "core/common.h"
#include "core/wake.h"

#define WAKE_MAX 8		/* held per thread: the WS thread, agents, store */
#define WAKE_TARGETS 64		/* receivers alive at once */

struct wake_ent {
	void (*fn)(void *arg);
	void *arg;
};

static __thread int wake_holding;
static __thread int wake_n;
static __thread struct wake_ent wake_ents[WAKE_MAX];

static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static void *wake_targets[WAKE_TARGETS];
static int wake_ntargets;

int wake_target_add(void *arg)
{
	int ok;

	pthread_mutex_lock(&wake_mu);
	ok = wake_ntargets < WAKE_TARGETS;
	if (ok)
		wake_targets[wake_ntargets++] = arg;
	pthread_mutex_unlock(&wake_mu);
	return ok;
}

void wake_target_del(void *arg)
{
	pthread_mutex_lock(&wake_mu);
	for (int i = 0; i < wake_ntargets; i++)
		if (wake_targets[i] == arg) {
			wake_targets[i] = wake_targets[--wake_ntargets];
			break;
		}
	pthread_mutex_unlock(&wake_mu);
}

static int wake_alive(const void *arg)
{
	for (int i = 0; i < wake_ntargets; i++)
		if (wake_targets[i] == arg)
			return 1;
	return 0;
}

void wake_hold(void)
{
	wake_holding = 1;
}

int wake_later(void (*fn)(void *arg), void *arg)
{
	int i;

	if (!wake_holding)
		return 0;
	for (i = 0; i < wake_n; i++)
		if (wake_ents[i].fn == fn && wake_ents[i].arg == arg)
			return 1;
	if (wake_n == WAKE_MAX)
		return 0;
	wake_ents[wake_n].fn = fn;
	wake_ents[wake_n].arg = arg;
	wake_n++;
	return 1;
}

void wake_flush(void)
{
	if (wake_n == 0)
		return;
	/* The receivers' wake-ups are short and never post: they run under
	 * the lock that keeps their receivers from going meanwhile. */
	pthread_mutex_lock(&wake_mu);
	while (wake_n > 0) {
		struct wake_ent e = wake_ents[--wake_n];

		if (wake_alive(e.arg))
			e.fn(e.arg);
	}
	pthread_mutex_unlock(&wake_mu);
}
