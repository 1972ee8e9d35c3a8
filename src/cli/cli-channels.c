/* `clawgate channels status|start|stop`: channel accounts over the
 * gateway (channels.status, channels.start, channels.stop), like
 * `openclaw channels`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"

static const char *cli_channels_s(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

int cli_channels_status(struct cli_args *a)
{
	json_t *params = json_object(), *p = NULL, *ch, *acct;
	size_t i, j;
	int r;

	if (a->probe)
		json_object_set_new(params, "probe", json_true());
	if (a->channel)
		json_object_set_new(params, "channel",
				    json_string(a->channel));
	r = cli_pairing_call(a, "Channels status", "channels.status", params,
			     &p);
	json_decref(params);
	if (r != 0)
		return r;
	if (a->json) {
		cli_json_print(stdout, p);
		json_decref(p);
		return 0;
	}
	if (!json_array_size(json_object_get(p, "channelOrder")))
		printf("No channels configured.\n");
	json_array_foreach(json_object_get(p, "channelOrder"), i, ch) {
		const char *id = json_string_value(ch);

		printf("%s:\n", cli_channels_s(json_object_get(p,
			"channelLabels"), id));
		json_array_foreach(json_object_get(json_object_get(p,
				   "channelAccounts"), id), j, acct) {
			const json_t *err = json_object_get(acct,
							    "lastError");

			printf("  %s: %s, %s, %s, dm %s%s%s\n",
			       cli_channels_s(acct, "accountId"),
			       json_is_true(json_object_get(acct, "enabled")) ?
			       "enabled" : "disabled",
			       json_is_true(json_object_get(acct, "running")) ?
			       "running" : "stopped",
			       json_is_true(json_object_get(acct,
							    "connected")) ?
			       "connected" : "disconnected",
			       cli_channels_s(acct, "dmPolicy"),
			       json_is_string(err) ? ", error: " : "",
			       json_is_string(err) ? json_string_value(err)
						   : "");
		}
	}
	json_decref(p);
	return 0;
}

static int cli_channels_ctl(struct cli_args *a, int start)
{
	const char *ch = a->channel ? a->channel :
			 a->npos > 0 ? a->pos[0] : NULL;
	json_t *params, *p = NULL;
	int r;

	if (!ch) {
		fprintf(stderr, "Usage: clawgate channels %s <channel> "
			"[--account <id>]\n", start ? "start" : "stop");
		return 2;
	}
	params = json_pack("{s:s}", "channel", ch);
	if (a->account)
		json_object_set_new(params, "accountId",
				    json_string(a->account));
	r = cli_pairing_call(a, start ? "Channels start" : "Channels stop",
			     start ? "channels.start" : "channels.stop",
			     params, &p);
	if (r == 0) {
		if (a->json)
			cli_json_print(stdout, p);
		else
			printf("%s %s%s%s.\n", start ? "Started" : "Stopped",
			       ch, a->account ? ":" : "",
			       a->account ? a->account : "");
	}
	json_decref(params);
	json_decref(p);
	return r;
}

int cli_channels_start(struct cli_args *a)
{
	return cli_channels_ctl(a, 1);
}

int cli_channels_stop(struct cli_args *a)
{
	return cli_channels_ctl(a, 0);
}
