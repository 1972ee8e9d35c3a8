/* Channel access policy: who may reach an agent through a channel
 * (dmPolicy, groupPolicy, groups, allowFrom, groupAllowFrom, mention
 * gating), as OpenClaw decides it. A pure function over the account's
 * resolved config: the caller supplies whether the sender is approved in
 * the pairing store. Unit tested as a table. */
#pragma once

#include <jansson.h>

enum channel_verdict {
	CHANNEL_ACCEPT = 0,
	CHANNEL_PAIR,		/* unknown DM sender under dmPolicy=pairing */
	CHANNEL_DROP,
};

struct channel_policy_in {
	const json_t *acct;	/* resolved account config (object) */
	const json_t *root;	/* whole config (messages.groupChat...) */
	int is_dm;
	const char *sender;	/* stable id: nick!user@host */
	const char *nick;	/* display nick */
	const char *target;	/* channel name for group messages */
	const char *text;
	const char *bot_nick;
	int paired;		/* sender approved in the pairing store */
};

/* Decide; *reason gets OpenClaw's words for drops and pairing
 * ("dmPolicy=pairing", "dmPolicy=allowlist", "dmPolicy=disabled",
 * "groupPolicy=disabled", "policy=allowlist", "channel-disabled",
 * "channel-not-allowed", "missing-mention"), "" when accepted. */
enum channel_verdict channel_policy_decide(const struct channel_policy_in *in,
					   const char **reason);
/* The groups entry of a channel (RFC 1459 case-insensitive), else
 * groups["*"], else NULL. Borrowed. */
const json_t *channel_policy_group_cfg(const json_t *acct,
				       const char *target);
/* The effective dmPolicy / groupPolicy names of an account. */
const char *channel_policy_dm(const json_t *acct);
const char *channel_policy_group(const json_t *acct);
/* 1 if sender (nick!user@host, nick) matches one entry of list (array of
 * strings: "*", globs on the full id, "irc:" prefixes, bare nicks only
 * with dangerouslyAllowNameMatching, "accessGroup:<name>" for the irc
 * members of root's accessGroups.<name>). */
int channel_policy_match(const json_t *acct, const json_t *root,
			 const json_t *list, const char *sender,
			 const char *nick);
/* 1 if text mentions nick (a whole word, case-insensitive) or matches
 * one of the regex patterns (array, may be NULL). */
int channel_policy_mentioned(const char *text, const char *nick,
			     const json_t *patterns);
