/* The global run lane (src/agent/run.c): at most agents.defaults.
 * maxConcurrent agent runs in flight across sessions (each session is
 * still serialised); the others wait in arrival order. */
#ifndef CLAWGATE_AGENT_RUN_LANE_H
#define CLAWGATE_AGENT_RUN_LANE_H

struct agent_rt;
struct gw_config;

/* The cap of a config snapshot: agents.defaults.maxConcurrent, or
 * max(8, 4 x the CPUs this process may run on) when unset. */
int run_lane_cap(const struct gw_config *cfg);
/* A config was applied (hot reload): take its cap now; a raised cap
 * starts waiting runs at once. */
void run_lane_apply(struct agent_rt *rt, const struct gw_config *cfg);
/* Runs that wait (for their session's turn or a lane slot) are bounded:
 * at most run_wait_max(cap) at once, max(RUN_WAIT_MIN, RUN_WAIT_PER_SLOT
 * x the cap in force) (env CLAWGATE_RUN_WAIT_MAX=N overrides it, for
 * tests); past it a new run that would wait is refused (GW_EUNAVAIL, "too
 * many runs waiting": UNAVAILABLE on WS, 503 on HTTP) instead of held in
 * memory. Each waiting run holds its request (about 4 KB for a short
 * one) and, acknowledged, its rows. The bound is far above what a client
 * that waits for its answers makes wait: the bench's chat.send "ack" row
 * (16 connections that never wait, 8 slots) peaks at 30-37k waiting runs
 * (tests/bench/README.md, "The global run lane"). */
#define RUN_WAIT_MIN 65536
#define RUN_WAIT_PER_SLOT 1024
int run_wait_max(int cap);
/* Runs holding a slot, runs waiting for one, and the cap in force. */
void run_lane_counts(struct agent_rt *rt, int *active, int *waiting,
		     int *cap);

#endif
