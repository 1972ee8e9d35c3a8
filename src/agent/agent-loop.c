/* The agent loop's end of iteration: the thread's runtime (set by the
 * first job its agent thread runs) and the observer's flush, called by
 * the loop (provider_main) before it waits. Its own file: the provider
 * links without the rest of the runtime (tests/fuzz/fuzz-sse). */
#include <pthread.h>

#include "agent/agent-int.h"

/* The runtime whose agent thread this is. */
static __thread struct agent_rt *agent_loop_rt;

void agent_loop_init(void *arg)
{
	agent_loop_rt = arg;
}

void agent_loop_flush(void)
{
	struct agent_rt *rt = agent_loop_rt;
	void (*fn)(void *);
	void *arg;

	if (!rt)
		return;
	pthread_mutex_lock(&rt->mu);
	fn = rt->obs.flush;
	arg = rt->obs.arg;
	pthread_mutex_unlock(&rt->mu);
	if (fn)
		fn(arg);
}
