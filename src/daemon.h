/* The composition root: load config, open the store, start the transports,
 * wire them to rpc/api, handle signals, shut down or restart. */
#pragma once

#include "config/config.h"

struct daemon_opts {
	struct config_overrides ov;	/* CLI overrides for the config */
	int verbose;			/* --verbose: debug console logging */
};

/* Run the gateway in the foreground until a signal stops it. Returns the
 * process exit code (0 clean stop, 1 start failure, 78 invalid config). */
int daemon_run(const struct daemon_opts *o);
