/* `clawgate pairing list|approve|dismiss`: DM access requests of channel
 * accounts (channels.pairing.* over a signed connect), like `openclaw
 * pairing`. The connection helper is shared with cli-channels.c. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"

#define A(f) offsetof(struct cli_args, f)
#define CLI_PAIRING_TIMEOUT_MS 10000

const struct cli_opt cli_pairing_opts[] = {
	CLI_CLIENT_OPTS("timeout in ms (default 10000)"),
	{"channel", CLI_OPT_STR, A(channel), "CHANNEL", "channel (irc)"},
	{"account", CLI_OPT_STR, A(account), "ID",
	 "account id (for multi-account channels)"},
	{"notify", CLI_OPT_FLAG, A(notify), NULL,
	 "notify the requester on the same channel"},
	{"probe", CLI_OPT_FLAG, A(probe), NULL, "probe each account"},
	{NULL, 0, 0, NULL, NULL},
};

static const char *const cli_pairing_scopes[] = {
	"operator.admin", "operator.pairing", NULL,
};

static void cli_pairing_fail(const struct cli_args *a, const char *what,
			     const struct gwclient_err *e)
{
	if (a->json) {
		json_t *o = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error",
				      "type", e->kind == GWC_ERR_RPC ?
				      "gateway_request_error" :
				      "gateway_transport_error", "message",
				      e->message ? e->message : "failed");

		cli_json_print(stdout, o);
		json_decref(o);
		return;
	}
	fprintf(stderr, "%s failed: %s\n", what,
		e->message ? e->message : "error");
}

/* Connect (signed), call method, close. 0, 1 (printed) or 2 (usage). */
int cli_pairing_call(struct cli_args *a, const char *what,
		     const char *method, const json_t *params,
		     json_t **payload)
{
	struct cli_session d;
	struct gwclient_err e = {0};
	int r;

	*payload = NULL;
	r = cli_session_open(a, cli_pairing_scopes, CLI_PAIRING_TIMEOUT_MS,
			     600000, &d, &e);
	if (r == 0 && gwclient_request(d.c, method, params, d.timeout, 0,
				       payload, &e) != 0)
		r = 1;
	if (r == 1 && d.ci.id)
		cli_pairing_fail(a, what, &e);
	gwclient_err_free(&e);
	cli_session_close(&d);
	return r;
}

static const char *cli_pairing_s(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

/* channel from --channel or the first positional word. */
static const char *cli_pairing_channel(struct cli_args *a, int *used)
{
	*used = 0;
	if (a->channel)
		return a->channel;
	if (a->npos > 0) {
		*used = 1;
		return a->pos[0];
	}
	return NULL;
}

int cli_pairing_list(struct cli_args *a)
{
	json_t *params = json_object(), *payload = NULL, *v;
	const char *ch;
	size_t i;
	int used, r;

	ch = cli_pairing_channel(a, &used);
	if (ch)
		json_object_set_new(params, "channel", json_string(ch));
	if (a->account)
		json_object_set_new(params, "accountId",
				    json_string(a->account));
	r = cli_pairing_call(a, "Pairing list", "channels.pairing.list",
			     params, &payload);
	json_decref(params);
	if (r != 0)
		return r;
	if (a->json) {
		cli_json_print(stdout, payload);
	} else if (!json_array_size(json_object_get(payload, "requests"))) {
		printf("No pending DM access requests.\n");
	} else {
		printf("Pending DM access requests (%zu)\n",
		       json_array_size(json_object_get(payload, "requests")));
		json_array_foreach(json_object_get(payload, "requests"), i, v)
			printf("  %s  %s:%s  sender %s  created %s  expires "
			       "%s\n", cli_pairing_s(v, "requestId"),
			       cli_pairing_s(v, "channel"),
			       cli_pairing_s(v, "accountId"),
			       cli_pairing_s(v, "senderId"),
			       cli_pairing_s(v, "createdAt"),
			       cli_pairing_s(v, "expiresAt"));
		printf("Approve with: clawgate pairing approve <channel> "
		       "<code or requestId>\n");
	}
	json_decref(payload);
	return 0;
}

/* approve/dismiss <channel> <code> (or --channel C <code>). */
static int cli_pairing_resolve(struct cli_args *a, int approve)
{
	const char *what = approve ? "Pairing approve" : "Pairing dismiss";
	json_t *params = NULL, *payload = NULL, *lp = NULL;
	const char *ch, *code, *acc = a->account;
	int used, r;

	ch = cli_pairing_channel(a, &used);
	code = a->npos > used ? a->pos[used] : NULL;
	if (!ch || !code || a->npos > used + 1) {
		fprintf(stderr, "Usage: clawgate pairing %s <channel> <code> "
			"(or: clawgate pairing %s --channel <channel> "
			"<code>)\n", approve ? "approve" : "dismiss",
			approve ? "approve" : "dismiss");
		return 2;
	}
	if (!acc) {
		/* The channel's one account that uses pairing. */
		params = json_pack("{s:s}", "channel", ch);
		r = cli_pairing_call(a, what, "channels.pairing.list", params,
				     &lp);
		json_decref(params);
		params = NULL;
		if (r != 0)
			return r;
		if (json_array_size(json_object_get(lp, "accounts")) != 1) {
			fprintf(stderr, "%s: %s has %zu accounts using DM "
				"pairing; pass --account <id>\n", what, ch,
				json_array_size(json_object_get(lp,
							       "accounts")));
			json_decref(lp);
			return 1;
		}
		acc = cli_pairing_s(json_array_get(json_object_get(lp,
				    "accounts"), 0), "accountId");
	}
	params = json_pack("{s:s,s:s,s:s}", "channel", ch, "accountId", acc,
			   "requestId", code);
	if (approve && a->notify)
		json_object_set_new(params, "notify", json_true());
	/* As `openclaw pairing approve`: the first approval makes the
	 * sender the command owner when none is configured. */
	if (approve)
		json_object_set_new(params, "bootstrapCommandOwner",
				    json_true());
	r = cli_pairing_call(a, what, approve ? "channels.pairing.approve" :
			     "channels.pairing.dismiss", params, &payload);
	if (r == 0) {
		if (a->json)
			cli_json_print(stdout, payload);
		else if (approve)
			printf("Approved %s sender %s.\n", ch,
			       cli_pairing_s(payload, "senderId"));
		else
			printf("Dismissed %s sender %s.\n", ch,
			       cli_pairing_s(payload, "senderId"));
	}
	json_decref(params);
	json_decref(payload);
	json_decref(lp);
	return r;
}

int cli_pairing_approve(struct cli_args *a)
{
	return cli_pairing_resolve(a, 1);
}

int cli_pairing_dismiss(struct cli_args *a)
{
	return cli_pairing_resolve(a, 0);
}
