/* Channel access policy (see channel-policy.h). */
#include <ctype.h>
#include <fnmatch.h>
#include <regex.h>
#include <string.h>
#include <strings.h>

#include "channel/channel-policy.h"
#include "channel/irc-line.h"
#include "core/common.h"

static const char *channel_policy_str(const json_t *o, const char *k,
				      const char *def)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v && *v ? v : def;
}

const char *channel_policy_dm(const json_t *acct)
{
	return channel_policy_str(acct, "dmPolicy", "pairing");
}

const char *channel_policy_group(const json_t *acct)
{
	return channel_policy_str(acct, "groupPolicy", "allowlist");
}

/* One allowlist, without accessGroup: expansion. */
static int channel_policy_match_list(const json_t *acct, const json_t *list,
				     const char *sender, const char *nick,
				     const json_t *root, int depth)
{
	int names = json_is_true(json_object_get(acct,
				 "dangerouslyAllowNameMatching"));
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e) {
		const char *s = json_string_value(e);

		if (!s || !*s)
			continue;
		if (strncmp(s, "accessGroup:", 12) == 0) {
			/* accessGroups.<name> {type: "message.senders",
			 * members: {irc: [...]}} */
			const json_t *g = json_object_get(json_object_get(
				root, "accessGroups"), s + 12);
			const char *type = json_string_value(
				json_object_get(g, "type"));

			if (depth == 0 && g && (!type || strcmp(type,
					"message.senders") == 0) &&
			    channel_policy_match_list(acct, json_object_get(
					json_object_get(g, "members"), "irc"),
					sender, nick, root, 1))
				return 1;
			continue;
		}
		if (strncasecmp(s, "irc:", 4) == 0)
			s += 4;
		if (strcmp(s, "*") == 0)
			return 1;
		if (strchr(s, '!') || strchr(s, '@')) {
			if (fnmatch(s, sender, FNM_CASEFOLD) == 0)
				return 1;
			continue;
		}
		if (names && irc_line_casecmp(s, nick) == 0)
			return 1;
	}
	return 0;
}

int channel_policy_match(const json_t *acct, const json_t *root,
			 const json_t *list, const char *sender,
			 const char *nick)
{
	return channel_policy_match_list(acct, list, sender, nick, root, 0);
}

static int channel_policy_nickchar(int c)
{
	return isalnum(c) || strchr("-_[]\\`^{}|", c);
}

int channel_policy_mentioned(const char *text, const char *nick,
			     const json_t *patterns)
{
	size_t nl = nick ? strlen(nick) : 0, i;
	const char *p;
	json_t *e;

	if (nl) {
		for (p = text; *p; p++) {
			if (strncasecmp(p, nick, nl) != 0)
				continue;
			if ((p == text ||
			     !channel_policy_nickchar((unsigned char)p[-1])) &&
			    !channel_policy_nickchar((unsigned char)p[nl]))
				return 1;
		}
	}
	json_array_foreach(patterns, i, e) {
		regex_t re;
		int hit;

		if (!json_is_string(e) ||
		    regcomp(&re, json_string_value(e),
			    REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0)
			continue;
		hit = regexec(&re, text, 0, NULL, 0) == 0;
		regfree(&re);
		if (hit)
			return 1;
	}
	return 0;
}

/* groups[target] (RFC 1459 case-insensitive) or NULL. */
static const json_t *channel_policy_group_entry(const json_t *groups,
						const char *target)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)groups, k, v)
		if (irc_line_casecmp(k, target) == 0)
			return v;
	return NULL;
}

enum channel_verdict channel_policy_decide(const struct channel_policy_in *in,
					   const char **reason)
{
	const json_t *a = in->acct;
	const char *pol;

	*reason = "";
	if (in->is_dm) {
		const json_t *allow = json_object_get(a, "allowFrom");

		pol = channel_policy_dm(a);
		if (strcmp(pol, "disabled") == 0) {
			*reason = "dmPolicy=disabled";
			return CHANNEL_DROP;
		}
		if (channel_policy_match(a, in->root, allow, in->sender,
					 in->nick))
			return CHANNEL_ACCEPT;
		if (strcmp(pol, "open") == 0) {
			*reason = "dmPolicy=open";
			return CHANNEL_DROP;
		}
		if (strcmp(pol, "allowlist") == 0) {
			*reason = "dmPolicy=allowlist";
			return CHANNEL_DROP;
		}
		if (in->paired)
			return CHANNEL_ACCEPT;
		*reason = "dmPolicy=pairing";
		return CHANNEL_PAIR;
	} else {
		const json_t *groups = json_object_get(a, "groups");
		const json_t *g = channel_policy_group_entry(groups,
							     in->target);
		const json_t *star = json_object_get(groups, "*");
		const json_t *allow, *gallow, *rm, *pats;
		int require;

		pol = channel_policy_group(a);
		if (strcmp(pol, "disabled") == 0) {
			*reason = "groupPolicy=disabled";
			return CHANNEL_DROP;
		}
		if (g && json_is_false(json_object_get(g, "enabled"))) {
			*reason = "channel-disabled";
			return CHANNEL_DROP;
		}
		if (!g && strcmp(pol, "allowlist") == 0 && !star) {
			*reason = "channel-not-allowed";
			return CHANNEL_DROP;
		}
		if (!g)
			g = star;
		allow = json_object_get(g, "allowFrom");
		gallow = json_object_get(a, "groupAllowFrom");
		if (json_array_size(allow) || json_array_size(gallow) ||
		    strcmp(pol, "allowlist") == 0) {
			if (!channel_policy_match(a, in->root, allow,
						  in->sender, in->nick) &&
			    !channel_policy_match(a, in->root, gallow,
						  in->sender, in->nick)) {
				*reason = "policy=allowlist";
				return CHANNEL_DROP;
			}
		}
		rm = json_object_get(g, "requireMention");
		if (!rm && g != star)
			rm = json_object_get(star, "requireMention");
		require = rm ? json_is_true(rm) : 1;
		pats = json_object_get(a, "mentionPatterns");
		if (!pats)
			pats = json_object_get(json_object_get(json_object_get(
				in->root, "messages"), "groupChat"),
				"mentionPatterns");
		if (require && !channel_policy_mentioned(in->text,
							 in->bot_nick, pats)) {
			*reason = "missing-mention";
			return CHANNEL_DROP;
		}
		return CHANNEL_ACCEPT;
	}
}

const json_t *channel_policy_group_cfg(const json_t *acct, const char *target)
{
	const json_t *groups = json_object_get(acct, "groups");
	const json_t *g = channel_policy_group_entry(groups, target);

	return g ? g : json_object_get(groups, "*");
}
