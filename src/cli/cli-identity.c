/* The CLI's own device identity: <stateDir>/identity/device.json (the
 * same file and format as the gateway's, through auth/identity.c), the
 * v3 signature of connects, and cached device tokens in
 * identity/device-auth.json {version:1, deviceId, tokens:{role:{token,
 * role, scopes, updatedAtMs}}} (mode 0600). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/device.h"
#include "auth/identity.h"
#include "cli/cli.h"
#include "core/common.h"
#include "core/util.h"

int cli_identity_open(const char *state_dir, struct cli_identity *ci)
{
	int r;

	memset(ci, 0, sizeof(*ci));
	mkdir(state_dir, 0700);
	r = identity_load_or_create(state_dir, &ci->id);
	if (r != GW_OK) {
		fprintf(stderr, "cannot load or create the device identity in "
			"%s/identity: %s\n", state_dir, gw_err_str(r));
		return -1;
	}
	ci->state_dir = xstrdup(state_dir);
	return 0;
}

void cli_identity_close(struct cli_identity *ci)
{
	identity_free(ci->id);
	free(ci->state_dir);
	memset(ci, 0, sizeof(*ci));
}

static char *cli_identity_auth_path(const struct cli_identity *ci)
{
	return xasprintf("%s/identity/device-auth.json", ci->state_dir);
}

/* The cached token of role, or NULL (new string). */
static char *cli_identity_cached(const struct cli_identity *ci,
				 const char *role)
{
	char *path = cli_identity_auth_path(ci), *tok = NULL;
	json_t *o = json_load_file(path, 0, NULL), *t;

	free(path);
	if (!o)
		return NULL;
	if (json_is_string(json_object_get(o, "deviceId")) &&
	    strcmp(json_string_value(json_object_get(o, "deviceId")),
		   ci->id->device_id) == 0) {
		t = json_object_get(json_object_get(o, "tokens"), role);
		if (json_is_string(json_object_get(t, "token")))
			tok = xstrdup(json_string_value(
				json_object_get(t, "token")));
	}
	json_decref(o);
	return tok;
}

int cli_identity_sign(void *arg, json_t *params, const char *nonce,
		      int64_t ts)
{
	struct cli_identity *ci = arg;
	json_t *auth = json_object_get(params, "auth");
	json_t *cl = json_object_get(params, "client");
	struct device_proof pf;
	const char *role = json_string_value(json_object_get(params, "role"));
	char *msg = NULL, *sigs = NULL, *cached = NULL;
	uint8_t sig[64];
	int r = -1;

	if (!ci || !ci->id || !nonce)
		return -1;
	if (!role)
		role = "operator";
	if (!json_string_value(json_object_get(auth, "token")) &&
	    !json_string_value(json_object_get(auth, "password")) &&
	    (cached = cli_identity_cached(ci, role))) {
		if (!auth) {
			auth = json_object();
			json_object_set_new(params, "auth", auth);
		}
		json_object_set_new(auth, "deviceToken", json_string(cached));
	}
	memset(&pf, 0, sizeof(pf));
	pf.id = ci->id->device_id;
	pf.public_key = ci->id->pub_b64url;
	pf.signed_at = ts > 0 ? ts : util_now_ms();
	pf.nonce = nonce;
	pf.client_id = json_string_value(json_object_get(cl, "id"));
	pf.client_mode = json_string_value(json_object_get(cl, "mode"));
	pf.role = role;
	pf.scopes = json_object_get(params, "scopes");
	pf.token = json_string_value(json_object_get(auth, "token"));
	if (!pf.token)
		pf.token = json_string_value(json_object_get(auth,
							     "deviceToken"));
	pf.platform = json_string_value(json_object_get(cl, "platform"));
	pf.device_family = json_string_value(json_object_get(cl,
							     "deviceFamily"));
	msg = device_payload_v3(&pf);
	if (identity_sign(ci->id, msg, strlen(msg), sig) != 0)
		goto out;
	sigs = util_b64url_encode(sig, sizeof(sig));
	json_object_set_new(params, "device",
			    json_pack("{s:s,s:s,s:s,s:I,s:s}", "id", pf.id,
				      "publicKey", pf.public_key, "signature",
				      sigs, "signedAt",
				      (json_int_t)pf.signed_at, "nonce",
				      nonce));
	r = 0;
out:
	xfree_secret(cached);
	free(msg);
	free(sigs);
	return r;
}

void cli_identity_store_token(struct cli_identity *ci, const json_t *hello)
{
	const json_t *a = json_object_get(hello, "auth");
	const char *tok = json_string_value(json_object_get(a, "deviceToken"));
	const char *role = json_string_value(json_object_get(a, "role"));
	char *path, *tmp, *text;
	json_t *o, *toks;
	int fd;

	if (!ci || !ci->id || !tok || !role)
		return;
	path = cli_identity_auth_path(ci);
	o = json_load_file(path, 0, NULL);
	if (!json_is_object(o) ||
	    !json_is_string(json_object_get(o, "deviceId")) ||
	    strcmp(json_string_value(json_object_get(o, "deviceId")),
		   ci->id->device_id) != 0) {
		json_decref(o);
		o = json_pack("{s:i,s:s,s:{}}", "version", 1, "deviceId",
			      ci->id->device_id, "tokens");
	}
	toks = json_object_get(o, "tokens");
	if (!json_is_object(toks)) {
		toks = json_object();
		json_object_set_new(o, "tokens", toks);
	}
	json_object_set_new(toks, role,
			    json_pack("{s:s,s:s,s:O,s:I}", "token", tok, "role",
				      role, "scopes",
				      json_object_get(a, "scopes"),
				      "updatedAtMs",
				      (json_int_t)util_now_ms()));
	text = json_dumps(o, JSON_INDENT(2));
	tmp = xasprintf("%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		int ok = write(fd, text, strlen(text)) ==
			 (ssize_t)strlen(text) && fsync(fd) == 0;

		if (close(fd) != 0)
			ok = 0;
		if (!ok || rename(tmp, path) != 0)
			unlink(tmp);
	}
	if (text)
		explicit_bzero(text, strlen(text));
	free(text);
	free(tmp);
	free(path);
	json_decref(o);
}
