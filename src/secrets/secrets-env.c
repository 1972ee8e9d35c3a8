/* The env provider: values from the gateway's environment, optionally
 * limited by an exact-name allowlist ([] denies every name). */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "secrets/secrets-int.h"
#include "secrets/secrets.h"

static int secrets_env_check(const json_t *def, char *why, size_t len)
{
	static const char *const keys[] = { "source", "allowlist", NULL };
	const json_t *a = json_object_get(def, "allowlist"), *e;
	size_t i;

	if (secrets_def_keys(def, keys, why, len) < 0)
		return -1;
	if (a && !json_is_array(a)) {
		snprintf(why, len, "allowlist: expected an array of names");
		return -1;
	}
	json_array_foreach(a, i, e)
		if (!secrets_env_name_valid(json_string_value(e))) {
			snprintf(why, len, "allowlist.%zu: invalid name", i);
			return -1;
		}
	return 0;
}

static int secrets_env_id_valid(const char *id, const json_t *def)
{
	(void)def;
	return secrets_env_name_valid(id);
}

static int secrets_env_allowed(const json_t *def, const char *name)
{
	const json_t *a = json_object_get(def, "allowlist"), *e;
	size_t i;

	if (!json_is_array(a))
		return 1;
	json_array_foreach(a, i, e)
		if (json_is_string(e) && strcmp(json_string_value(e), name) == 0)
			return 1;
	return 0;
}

static int secrets_env_resolve(struct secrets_batch *b, char *why, size_t len)
{
	size_t i;

	(void)why;
	(void)len;
	for (i = 0; i < b->n; i++) {
		const char *v;

		if (!secrets_env_allowed(b->def, b->ids[i])) {
			b->errs[i] = xstrdup("name is not in the provider's "
					     "allowlist");
			continue;
		}
		v = getenv(b->ids[i]);
		if (!v || !*v)
			b->errs[i] = xstrdup("environment variable is missing "
					     "or empty");
		else
			b->values[i] = xstrdup(v);
	}
	return 0;
}

const struct secrets_provider secrets_env_provider = {
	.source = "env",
	.check = secrets_env_check,
	.id_valid = secrets_env_id_valid,
	.resolve = secrets_env_resolve,
};
