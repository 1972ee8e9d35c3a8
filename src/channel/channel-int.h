/* Shared between channel.c and the adapters (channel-*.c) only. */
#pragma once

#include <stdint.h>
#include <pthread.h>

#include <jansson.h>

#include "channel/channel.h"

struct chan_account;

/* The adapter interface: one per channel kind, listed in channel.c.
 * start/stop/send/probe run on the loop thread; status runs under the
 * accounts lock (fill adapter-specific snapshot fields only). */
struct channel_adapter {
	const char *id;			/* "irc" */
	const char *label;		/* "IRC" */
	const char *detail_label;
	const char *id_label;		/* pairing senderLabel */
	/* The account's config from the channel subtree (new object):
	 * shared keys overlaid by accounts.<id>, env for the default. */
	json_t *(*resolve)(const json_t *chan, const char *account_id,
			   int is_default);
	int (*configured)(const json_t *acct);
	int (*start)(struct chan_account *a);
	void (*stop)(struct chan_account *a);
	/* Queue text for target (already plain text). 0 or -1 with *err. */
	int (*send)(struct chan_account *a, const char *target,
		    const char *text, char **err);
	/* A probe result object (connected, lagMs, nick, ...). */
	json_t *(*probe)(struct chan_account *a);
	void (*status)(struct chan_account *a, json_t *snap);
};

struct chan_account {
	struct channels *c;
	const struct channel_adapter *ad;
	char *channel;			/* adapter id */
	char *id;			/* account id */
	json_t *cfg;			/* resolved config (immutable) */
	json_t *root;			/* whole config root (borrowed ref) */
	int is_default;
	int enabled, configured;
	int manual_stop;		/* channels.stop: stays stopped */
	/* Status (written on the loop thread under c->mu): */
	int running, connected;
	int reconnect_attempts;
	int64_t last_connected_at, last_start_at, last_stop_at;
	int64_t last_inbound_at, last_outbound_at, last_probe_at;
	int64_t last_activity_at;
	int active_runs;
	char *last_error;
	void *impl;			/* adapter state (loop thread) */
	int dead;			/* removed; freed by the loop */
	struct chan_account *next;
};

/* ---- the loop (channel.c), for adapters; loop thread only ---------------- */

struct channel_io {
	int fd;
	void (*cb)(struct channel_io *io, uint32_t events);
	void *arg;
};
int channel_io_add(struct chan_account *a, struct channel_io *io,
		   uint32_t events);
int channel_io_mod(struct chan_account *a, struct channel_io *io,
		   uint32_t events);
void channel_io_del(struct chan_account *a, struct channel_io *io);

struct channel_timer {
	int64_t at;			/* monotonic ms; 0 = not armed */
	void (*cb)(struct channel_timer *t);
	void *arg;
	struct channel_timer *next;
};
void channel_timer_set(struct chan_account *a, struct channel_timer *t,
		       int64_t delay_ms);
void channel_timer_cancel(struct chan_account *a, struct channel_timer *t);

/* Status updates from the adapter (take the lock). */
void channel_account_connected(struct chan_account *a, int connected,
			       const char *error);
void channel_account_error(struct chan_account *a, const char *error);
void channel_account_outbound(struct chan_account *a);
/* Reconnect attempt counter (0 resets). */
void channel_account_attempts(struct chan_account *a, int n);

/* An inbound message (already sanitised). The subsystem writes the
 * ingress row, decides the policy, pairs, routes and replies. */
struct channel_inbound {
	const char *conversation;	/* "#room", or the sender nick (DM) */
	const char *sender;		/* nick!user@host */
	const char *nick;
	const char *text;
	int is_dm;
	const char *bot_nick;
};
void channel_inbound(struct chan_account *a, const struct channel_inbound *m);

/* The adapters. */
extern const struct channel_adapter channel_irc_adapter;
