/* The error enum's message table and its mapping to protocol codes. */
#include "core/common.h"

static const struct {
	const char *msg;
	const char *proto;
	int http;
} err_table[GW__ECOUNT] = {
	[GW_OK] = {"ok", NULL, 200},
	[GW_EINVAL] = {"invalid request", "INVALID_REQUEST", 400},
	[GW_ENOMEM] = {"out of memory", "UNAVAILABLE", 503},
	[GW_ETOOBIG] = {"payload too large", "INVALID_REQUEST", 413},
	[GW_ENOTFOUND] = {"not found", "INVALID_REQUEST", 404},
	[GW_EEXIST] = {"already exists", "INVALID_REQUEST", 409},
	[GW_EFORBIDDEN] = {"forbidden", "FORBIDDEN", 403},
	[GW_EAUTH] = {"unauthorized", "INVALID_REQUEST", 401},
	[GW_ERATELIMIT] = {"rate limited", "UNAVAILABLE", 429},
	[GW_EUNAVAIL] = {"unavailable", "UNAVAILABLE", 503},
	[GW_ETIMEOUT] = {"timed out", "AGENT_TIMEOUT", 504},
	[GW_EIO] = {"i/o error", "UNAVAILABLE", 500},
	[GW_ESTORE] = {"state store error", "UNAVAILABLE", 500},
	[GW_ECONFIG] = {"invalid config", "INVALID_REQUEST", 400},
	[GW_ECRYPTO] = {"crypto error", "UNAVAILABLE", 500},
	[GW_EBUSY] = {"busy", "UNAVAILABLE", 503},
	[GW_EPENDING] = {"pending", NULL, 202},
	[GW_EINTERNAL] = {"internal error", "UNAVAILABLE", 500},
};

static int err_index(int err)
{
	if (err < 0)
		err = -err;
	if (err >= GW__ECOUNT)
		return GW_EINTERNAL;
	return err;
}

const char *gw_err_str(int err)
{
	return err_table[err_index(err)].msg;
}

const char *gw_err_proto_code(int err)
{
	const char *c = err_table[err_index(err)].proto;

	return c ? c : "UNAVAILABLE";
}

int gw_err_http_status(int err)
{
	return err_table[err_index(err)].http;
}
