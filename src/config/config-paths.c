/* Home, state dir and config path from the environment and profile flags. */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/common.h"

/* getenv that treats an empty value as unset. */
static const char *config_paths_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* "~" or "~/x" expanded against home; anything else copied. */
static char *config_paths_expand(const char *s, const char *home)
{
	if (s[0] == '~' && (s[1] == 0 || s[1] == '/'))
		return xasprintf("%s%s", home, s + 1);
	return xstrdup(s);
}

int config_paths_profile_valid(const char *name)
{
	size_t n;

	if (!name)
		return 0;
	n = strlen(name);
	if (n < 1 || n > 64)
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int config_paths_resolve(struct config_paths *p, const char *profile, int dev)
{
	const char *home = config_paths_env("OPENCLAW_HOME");
	const char *v;
	char *h = NULL;

	memset(p, 0, sizeof(*p));
	if (dev && profile && strcmp(profile, "dev") != 0)
		return GW_EINVAL;
	if (dev)
		profile = "dev";
	if (!profile)
		profile = config_paths_env("OPENCLAW_PROFILE");
	if (profile && !config_paths_profile_valid(profile))
		return GW_EINVAL;

	if (!home)
		home = config_paths_env("HOME");
	if (!home) {
		struct passwd *pw = getpwuid(getuid());

		home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/";
	}
	h = xstrdup(home);
	/* OPENCLAW_HOME may itself start with ~ (relative to $HOME). */
	if (h[0] == '~' && config_paths_env("HOME")) {
		char *x = config_paths_expand(h, getenv("HOME"));

		free(h);
		h = x;
	}
	p->home = h;
	p->profile = profile ? xstrdup(profile) : NULL;

	if ((v = config_paths_env("OPENCLAW_STATE_DIR")))
		p->state_dir = config_paths_expand(v, p->home);
	else if (profile)
		p->state_dir = xasprintf("%s/.openclaw-%s", p->home, profile);
	else
		p->state_dir = xasprintf("%s/.openclaw", p->home);

	if ((v = config_paths_env("OPENCLAW_CONFIG_PATH")))
		p->config_path = config_paths_expand(v, p->home);
	else
		p->config_path = xasprintf("%s/openclaw.json", p->state_dir);
	return GW_OK;
}

void config_paths_free(struct config_paths *p)
{
	if (!p)
		return;
	free(p->home);
	free(p->state_dir);
	free(p->config_path);
	free(p->profile);
	memset(p, 0, sizeof(*p));
}
