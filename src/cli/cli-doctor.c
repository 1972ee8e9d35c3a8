/* `clawgate doctor [--fix] [--yes] [--json] [--lint] [--non-interactive]`:
 * runs the check table of src/service/service-doctor.c against this
 * profile's state dir, config, unit and port. Config fixes go through the
 * running gateway's config.patch (a config snapshot `config rollback`
 * undoes); exit 0 clean, 1 findings left, 2 the doctor could not run. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"
#include "service/service.h"

#define A(f) offsetof(struct cli_args, f)
#define CLI_DOCTOR_TIMEOUT_MS 10000

const struct cli_opt cli_doctor_opts[] = {
	{"fix", CLI_OPT_FLAG, A(fix), NULL, "repair what is safe"},
	{"yes", CLI_OPT_FLAG, A(yes), NULL,
	 "with --fix: also remove stale (legacy) gateway units"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{"lint", CLI_OPT_FLAG, A(lint), NULL,
	 "config checks only, JSON, never fixes"},
	{"non-interactive", CLI_OPT_FLAG, A(non_interactive), NULL,
	 "never ask (on a terminal --fix asks before removing stale units)"},
	{"system", CLI_OPT_FLAG, A(system), NULL,
	 "check the system unit instead of the user unit"},
	{"token", CLI_OPT_STR, A(token), "TOKEN",
	 "gateway token for config fixes"},
	{NULL, 0, 0, NULL, NULL},
};

struct cli_doctor {
	struct cli_args *a;
	struct cli_local *l;
};

/* A merge patch through the running gateway: a numbered snapshot. */
static int cli_doctor_patch(void *arg, const char *patch, char **err)
{
	struct cli_doctor *cd = arg;
	const char *scopes[] = {"operator.admin", NULL};
	struct cli_target t;
	struct gwclient_opts o;
	struct gwclient *c = NULL;
	struct gwclient_err e = {0};
	json_t *hello = NULL, *cur = NULL, *res = NULL, *params = NULL;
	int r = -1;

	cli_target_local(cd->a, cd->l, &t);
	cli_target_opts(&t, scopes, CLI_DOCTOR_TIMEOUT_MS, &o);
	if (gwclient_connect(&o, &c, &hello, &e) != 0 ||
	    gwclient_request(c, "config.get", NULL, CLI_DOCTOR_TIMEOUT_MS, 0,
			     &cur, &e) != 0)
		goto fail;
	params = json_pack("{s:s,s:O}", "raw", patch, "baseHash",
			   json_object_get(cur, "hash"));
	if (gwclient_request(c, "config.patch", params, CLI_DOCTOR_TIMEOUT_MS,
			     0, &res, &e) != 0)
		goto fail;
	r = 0;
	goto out;
fail:
	*err = xstrdup(e.message ? e.message : "request failed");
out:
	gwclient_close(c);
	gwclient_err_free(&e);
	json_decref(hello);
	json_decref(cur);
	json_decref(res);
	json_decref(params);
	cli_target_free(&t);
	return r;
}

/* A y/N question on the terminal. */
static int cli_doctor_confirm(void *arg, const char *question)
{
	char line[16];

	(void)arg;
	printf("%s [y/N] ", question);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	return line[0] == 'y' || line[0] == 'Y';
}

/* Re-write the unit (as `gateway install --force` without the restart),
 * then daemon-reload. */
static int cli_doctor_reinstall(void *arg, char **err)
{
	struct cli_doctor *cd = arg;
	char *text, *path = NULL, *out = NULL;
	int r = -1;

	text = cli_service_render(cd->a, cd->l, SERVICE_SYSTEMD,
				  cd->a->system, err);
	if (!text)
		return -1;
	path = cli_service_unit_path(cd->a, cd->a->system);
	if (!path || service_write_file(path, text, 0644) != 0) {
		*err = xasprintf("cannot write %s", path ? path : "the unit");
		goto out;
	}
	if (service_systemctl(cd->a->system,
			      (const char *[]){"daemon-reload", NULL},
			      &out) != 0) {
		*err = xasprintf("unit written; systemctl daemon-reload "
				 "failed: %s", out);
		goto out;
	}
	r = 0;
out:
	free(text);
	free(path);
	free(out);
	return r;
}

int cli_doctor(struct cli_args *a)
{
	struct service_doctor d = {0};
	struct cli_local l;
	struct cli_doctor cd = {a, &l};
	json_t *lock = NULL, *f, *out;
	char *unit = NULL, *expected = NULL, *err = NULL, *label = NULL;
	const char *sev;
	int left = 0, fixed = 0, errors = 0, r = 1;
	size_t i;

	if (cli_target_local_load(a->profile, a->dev, &l) != 0) {
		fprintf(stderr, "clawgate doctor: cannot resolve the state "
			"dir (invalid --profile?)\n");
		return 2;
	}
	d.state_dir = l.state_dir;
	d.config_path = l.config_path;
	d.port = l.port;
	d.config_error = l.cfg_error;
	d.gateway_token = l.cfg_token;
	d.configured_token = l.cfg_token && !l.cfg_token_kept ? l.cfg_token
							       : NULL;
	d.system = a->system;
	d.fix = a->fix && !a->lint;
	d.yes = a->yes;
	d.lint = a->lint;
	d.lock_held = cli_lock_read(l.state_dir, &lock) == 1;
	d.lock_pid = (long)json_integer_value(json_object_get(lock, "pid"));
	if (d.lock_held && json_integer_value(json_object_get(lock, "port")))
		d.port = (int)json_integer_value(json_object_get(lock, "port"));
	unit = cli_service_unit_path(a, a->system);
	label = service_unit_name(SERVICE_SYSTEMD, cli_service_profile(a));
	d.unit_path = unit;
	d.managed_label = label;
	/* Drift: the unit against what this config would install. */
	expected = cli_service_render(a, &l, SERVICE_SYSTEMD, a->system, &err);
	d.unit_expected = expected;
	d.config_patch = d.lock_held ? cli_doctor_patch : NULL;
	d.reinstall = cli_doctor_reinstall;
	if (d.fix && !a->yes && !a->non_interactive && !a->json &&
	    isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		d.confirm = cli_doctor_confirm;
	d.arg = &cd;
	service_doctor_load_raw(&d);
	service_doctor_run(&d);

	json_array_foreach(d.findings, i, f) {
		sev = json_string_value(json_object_get(f, "severity"));
		if (json_is_true(json_object_get(f, "fixed")))
			fixed++;
		else if (strcmp(sev, "info") != 0)
			left++;
		if (strcmp(sev, "error") == 0 &&
		    !json_is_true(json_object_get(f, "fixed")))
			errors++;
	}
	r = left ? 1 : 0;
	if (a->json || a->lint) {
		out = json_pack("{s:b,s:s,s:s,s:O,s:{s:i,s:i,s:i}}", "ok",
				left == 0, "stateDir", l.state_dir,
				"configPath", l.config_path, "findings",
				d.findings, "summary", "remaining", left,
				"fixed", fixed, "errors", errors);
		cli_json_print(stdout, out);
		json_decref(out);
		goto out;
	}
	printf("clawgate doctor (state %s, config %s)\n\n", l.state_dir,
	       l.config_path);
	json_array_foreach(d.findings, i, f) {
		const char *tag, *on = "";
		int color = cli_logs_color(a);

		sev = json_string_value(json_object_get(f, "severity"));
		if (json_is_true(json_object_get(f, "fixed"))) {
			tag = "[fixed]";
			on = "\033[32m";
		} else if (strcmp(sev, "error") == 0) {
			tag = "[error]";
			on = "\033[31m";
		} else if (strcmp(sev, "warn") == 0) {
			tag = "[warn] ";
			on = "\033[33m";
		} else {
			tag = "[info] ";
		}
		printf("%s%s%s %-18s %s\n", color ? on : "", tag,
		       color && *on ? "\033[0m" : "",
		       json_string_value(json_object_get(f, "id")),
		       json_string_value(json_object_get(f, "message")));
		if (json_object_get(f, "fix"))
			printf("        fix: %s\n", json_string_value(
				json_object_get(f, "fix")));
		else if (json_object_get(f, "hint"))
			printf("        hint: %s\n", json_string_value(
				json_object_get(f, "hint")));
	}
	if (!json_array_size(d.findings))
		printf("No findings.\n");
	else
		printf("\n%d finding%s left, %d fixed%s\n", left,
		       left == 1 ? "" : "s", fixed,
		       left && !a->fix ? " (clawgate doctor --fix repairs "
					 "what is safe)" : "");
out:
	json_decref(lock);
	json_decref(d.raw);
	json_decref(d.findings);
	free(unit);
	free(expected);
	free(err);
	free(label);
	cli_target_local_free(&l);
	return r;
}
