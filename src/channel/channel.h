/* Channel connections: chat networks (IRC first) through which people
 * talk to agents. One table of adapters, accounts per channel
 * (channels.<id> and channels.<id>.accounts.<name>) each with its own
 * lifecycle, one event-loop thread (epoll) for every channel connection,
 * the inbound path (durable ingress row -> access policy -> DM pairing ->
 * routing -> run -> reply to the originating conversation) and the
 * operator surface used by rpc-channels.c. doc/channels.md. */
#pragma once

#include <stdint.h>

#include <jansson.h>

struct store;
struct agent_rt;
struct gw_config;
struct channels;

struct channels_opts {
	struct store *store;
	struct agent_rt *agents;
	/* A `channel` event for WS subscribers (payload stolen). Any thread,
	 * must not block. May be NULL. */
	void (*on_event)(void *arg, json_t *payload);
	void *arg;
};

/* Start the loop thread; no account runs until channels_apply. */
int channels_new(const struct channels_opts *o, struct channels **out);
/* (Re)configure from a config snapshot: accounts whose resolved subtree
 * changed restart, removed ones stop, new enabled ones start; accounts an
 * operator stopped stay stopped. Any thread. */
void channels_apply(struct channels *c, const struct gw_config *cfg);
/* Stop the loop thread (accounts quit, queued ingress written, queued
 * commands run); later posts are refused and run ends that arrive after
 * it only free their state. The memory stays for channels_free, which
 * must come after the agent runtime is freed (run sinks point here). */
void channels_quit(struct channels *c);
/* channels_quit if still running, then free. NULL is fine. */
void channels_free(struct channels *c);

/* The instance the RPC face uses (set by the daemon). */
void channels_set_global(struct channels *c);
struct channels *channels_global(void);

/* channels.status payload (ChannelsStatusResult). channel NULL = all;
 * probe: ask each running account for a fresh probe (bounded wait). */
json_t *channels_status(struct channels *c, const char *channel, int probe,
			int64_t timeout_ms);
/* channels.start / stop / logout. account NULL = every account of the
 * channel. GW_EINVAL with *err for an unknown channel or account. */
int channels_start(struct channels *c, const char *channel,
		   const char *account, char **err);
int channels_stop(struct channels *c, const char *channel,
		  const char *account, char **err);
/* Send text to target (a nick or #channel) through an account (NULL =
 * the channel's default account); waits until the lines are queued.
 * *result: {runId?, messageId, channel, chatId, toJid?}. */
int channels_send(struct channels *c, const char *channel,
		  const char *account, const char *target, const char *text,
		  json_t **result, char **err);
/* Accounts whose dmPolicy is pairing: [{channel, channelLabel, accountId,
 * notifySupported}] (filters may be NULL). New reference. */
json_t *channels_pairing_accounts(struct channels *c, const char *channel,
				  const char *account);
/* The store the subsystem writes (pairing requests, approvals). */
struct store *channels_store(struct channels *c);
/* Fill health.channels / channelOrder / channelLabels of a health
 * snapshot (c may be NULL: left as is). Takes the accounts lock only. */
void channels_health_fill(struct channels *c, json_t *health);
/* Health summary for /readyz and health: 1 when every enabled account is
 * connected; *detail (may be NULL) gets {<channel>: {<account>: {...}}}. */
int channels_healthy(struct channels *c, json_t **detail);
