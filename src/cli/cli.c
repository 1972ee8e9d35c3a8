/* The command table, the global flags, generated help and dispatch. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"
#include "core/log.h"

#define A(f) offsetof(struct cli_args, f)

const struct cli_opt cli_global_opts[] = {
	{"profile", CLI_OPT_STR, A(profile), "NAME",
	 "use ~/.openclaw-NAME as the state dir"},
	{"dev", CLI_OPT_FLAG, A(dev), NULL,
	 "dev profile: ~/.openclaw-dev, default port 19001"},
	{"no-color", CLI_OPT_FLAG, A(no_color), NULL, "disable colours"},
	{"help", CLI_OPT_FLAG, A(help), NULL, "show help"},
	{"version", CLI_OPT_FLAG, A(version), NULL, "print the version"},
	{NULL, 0, 0, NULL, NULL},
};

static int cli_help_cmd(struct cli_args *a);

static const struct cli_opt cli_no_opts[] = {
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cli_cmds[] = {
	{"gateway", cli_gateway_run, cli_gateway_run_opts, "[options]",
	 "Run the gateway in the foreground (= gateway run)", 0, 1},
	{"gateway run", cli_gateway_run, cli_gateway_run_opts, "[options]",
	 "Run the gateway in the foreground", 0, 0},
	{"gateway call", cli_gateway_call, cli_gateway_call_opts,
	 "<method> [options]",
	 "Call a gateway RPC method and print its payload", 1, 0},
	{"gateway health", cli_gateway_health, cli_gateway_health_opts,
	 "[options]", "Fetch the gateway's health", 0, 0},
	{"gateway status", cli_status_gateway, cli_status_gateway_opts,
	 "[options]", "Show the gateway's runtime and probe it", 0, 0},
	{"gateway probe", cli_gateway_probe, cli_gateway_probe_opts,
	 "[options]", "Probe the given and the local gateway", 0, 0},
	{"devices list", cli_devices_list, cli_devices_opts, "[options]",
	 "List pending pairing requests and paired devices", 0, 0},
	{"devices approve", cli_devices_approve, cli_devices_approve_opts,
	 "[requestId] [--latest] [options]",
	 "Approve a pairing request (no id: preview the newest)", 1, 0},
	{"devices reject", cli_devices_reject, cli_devices_opts,
	 "<requestId> [options]", "Reject a pairing request", 1, 0},
	{"devices remove", cli_devices_remove, cli_devices_opts,
	 "<deviceId> [options]", "Forget a paired device", 1, 0},
	{"devices rotate", cli_devices_rotate, cli_devices_token_opts,
	 "--device <id> --role <role> [--scope s...] [options]",
	 "Issue a new device token for a role", 16, 0},
	{"devices revoke", cli_devices_revoke, cli_devices_token_opts,
	 "--device <id> --role <role> [options]",
	 "Revoke the device token of a role", 0, 0},
	{"gateway restart", cli_service_restart, cli_service_restart_opts,
	 "[options]", "Restart the gateway (systemctl, or in place with "
	 "SIGUSR1)", 0, 0},
	{"config get", cli_config_get, cli_config_opts, "[path] [options]",
	 "Print the running config (redacted), or one value", 1, 0},
	{"config set", cli_config_set, cli_config_opts,
	 "<path> <value> [options]",
	 "Set one value (JSON5 or a string) through the gateway", 2, 0},
	{"config unset", cli_config_unset, cli_config_opts, "<path> [options]",
	 "Remove one value through the gateway", 1, 0},
	{"config validate", cli_config_validate, cli_config_opts,
	 "[file] [options]", "Validate a config file (offline)", 1, 0},
	{"config diff", cli_config_diff, cli_config_opts, "[A] [B] [options]",
	 "Diff snapshots (ids) or files (default: previous snapshot vs the "
	 "file)", 2, 0},
	{"config history", cli_config_history, cli_config_opts, "[options]",
	 "The numbered config snapshots, newest first", 0, 0},
	{"config rollback", cli_config_rollback, cli_config_opts,
	 "[N] [options]",
	 "Restore snapshot N (default: the previous config)", 1, 0},
	{"config plan", cli_config_plan, cli_config_opts, "[file] [options]",
	 "What applying a config would do: hot, restart or none per path",
	 1, 0},
	{"secrets reload", cli_secrets_reload, cli_secrets_reload_opts,
	 "[options]", "Re-resolve every SecretRef in the running gateway", 0,
	 0},
	{"secrets store list", cli_secrets_store_list, cli_secrets_store_opts,
	 "[--json|--plain]", "List the secret store's entries (local)", 0, 0},
	{"secrets store set", cli_secrets_store_set, cli_secrets_store_opts,
	 "<NAME> [options]", "Set an entry (value from stdin, --value-file "
	 "or a prompt)", 1, 0},
	{"secrets store get", cli_secrets_store_get, cli_secrets_store_opts,
	 "<NAME>", "Print an env entry as NAME=value", 1, 0},
	{"secrets store rm", cli_secrets_store_rm, cli_secrets_store_opts,
	 "<NAME>... [--dry-run]", "Remove entries (soft delete)", 64, 0},
	{"secrets store import", cli_secrets_store_import,
	 cli_secrets_store_opts, "[--from FILE | --from-openclaw DB]",
	 "Import a dotenv file or an OpenClaw secret store", 0, 0},
	{"secrets audit", cli_secrets_audit, cli_secrets_audit_opts,
	 "[--check] [--json] [--allow-exec]",
	 "Scan config, .env and stored config versions for plaintext and "
	 "unresolved refs", 0, 0},
	{"secrets configure", cli_secrets_configure,
	 cli_secrets_configure_opts, "[--plan-out F] [--apply] [--yes]",
	 "Move plaintext secrets of the config to the encrypted store "
	 "(interactive)", 0, 0},
	{"secrets apply", cli_secrets_apply, cli_secrets_apply_opts,
	 "--from PLAN [--dry-run] [--allow-exec]",
	 "Apply a secrets plan (validated before any write)", 0, 0},
	{"cron status", cli_cron_status, cli_cron_opts, "[options]",
	 "Show the automations scheduler status", 0, 0},
	{"cron list", cli_cron_list, cli_cron_list_opts, "[options]",
	 "List automations (--all: with disabled ones)", 0, 0},
	{"cron add", cli_cron_add, cli_cron_job_opts,
	 "[schedule|name] [message] [options]", "Add an automation", 2, 0},
	{"cron edit", cli_cron_edit, cli_cron_job_opts, "<id> [options]",
	 "Change an automation", 1, 0},
	{"cron rm", cli_cron_rm, cli_cron_opts, "<id> [options]",
	 "Remove an automation", 1, 0},
	{"cron run", cli_cron_run, cli_cron_run_opts, "<id> [options]",
	 "Run an automation now (--wait: until it ends)", 1, 0},
	{"cron runs", cli_cron_runs, cli_cron_runs_opts, "[id] [options]",
	 "Show automation run history", 1, 0},
	{"cron enable", cli_cron_enable, cli_cron_opts, "<id> [options]",
	 "Enable an automation", 1, 0},
	{"cron disable", cli_cron_disable, cli_cron_opts, "<id> [options]",
	 "Disable an automation", 1, 0},
	{"cron get", cli_cron_get, cli_cron_opts, "<id> [options]",
	 "Print an automation as JSON", 1, 0},
	{"gateway install", cli_service_install, cli_service_install_opts,
	 "[--port N] [--force] [--system] [--print] [options]",
	 "Install the gateway as a systemd service and start it", 0, 0},
	{"gateway uninstall", cli_service_uninstall, cli_service_opts,
	 "[options]", "Stop, disable and remove the gateway service", 0, 0},
	{"gateway start", cli_service_start, cli_service_opts, "[options]",
	 "Start the installed gateway service", 0, 0},
	{"gateway stop", cli_service_stop, cli_service_stop_opts,
	 "[--disable] [options]", "Stop the gateway service", 0, 0},
	{"gateway auth-token", cli_service_auth_token, cli_service_token_opts,
	 "[--rotate] [options]",
	 "Print the local gateway token (or generate a new one)", 0, 0},
	{"status", cli_status_overview, cli_status_overview_opts,
	 "[--deep] [--all] [--json]",
	 "Overview: dashboard, reachability, service, agents, sessions", 0,
	 0},
	{"health", cli_gateway_health, cli_gateway_health_opts, "[options]",
	 "Fetch the gateway's health (= gateway health)", 0, 0},
	{"doctor", cli_doctor, cli_doctor_opts,
	 "[--fix] [--yes] [--json] [--lint] [--non-interactive]",
	 "Check config, state, service, port and store; --fix repairs", 0,
	 0},
	{"logs", cli_logs, cli_logs_opts,
	 "[--follow] [--limit N] [--json] [--plain] [options]",
	 "Print the gateway's log (logs.tail; the file when it is down)", 0,
	 0},
	{"completion", cli_completion, cli_no_opts, "bash|zsh|fish",
	 "Print a shell completion script", 1, 0},
	{"config file", cli_config_file, cli_config_opts, "[--json]",
	 "Print the active config file path", 0, 0},
	{"config schema", cli_config_schema, cli_config_opts, "[--json]",
	 "Print the JSON schema of openclaw.json", 0, 0},
	{"config patch", cli_config_patch_cmd, cli_config_patch_opts,
	 "--file PATCH | --stdin [--dry-run] [options]",
	 "Apply a JSON5 merge patch through the gateway (one snapshot)", 0,
	 0},
	{"devices rename", cli_devices_rename, cli_devices_rename_opts,
	 "--device <id> --name <label> [options]",
	 "Give a paired device an operator label", 0, 0},
	{"devices clear", cli_devices_clear, cli_devices_clear_opts,
	 "--yes [--pending] [options]",
	 "Remove every paired device (--pending: reject requests too)", 0,
	 0},
	{"dashboard", cli_service_dashboard, cli_service_dashboard_opts,
	 "[--no-open] [--json]",
	 "Print (and open) the Control UI URL with the token", 0, 0},
	{"pairing list", cli_pairing_list, cli_pairing_opts,
	 "[channel] [options]", "List pending DM access requests", 1, 0},
	{"pairing approve", cli_pairing_approve, cli_pairing_opts,
	 "<channel> <code> [--account id] [--notify] [options]",
	 "Approve a DM pairing code and allow that sender", 2, 0},
	{"pairing dismiss", cli_pairing_dismiss, cli_pairing_opts,
	 "<channel> <code> [--account id] [options]",
	 "Dismiss a pending DM access request", 2, 0},
	{"channels status", cli_channels_status, cli_pairing_opts,
	 "[--probe] [options]", "Show channel accounts and connections", 0,
	 0},
	{"channels start", cli_channels_start, cli_pairing_opts,
	 "<channel> [--account id] [options]", "Start a channel account", 1,
	 0},
	{"channels stop", cli_channels_stop, cli_pairing_opts,
	 "<channel> [--account id] [options]",
	 "Stop a channel account (stays stopped)", 1, 0},
	{"help", cli_help_cmd, cli_no_opts, "[command]",
	 "Show help for a command", 3, 0},
};

const size_t cli_ncmds = ARRAY_SIZE(cli_cmds);

static const struct cli_opt *cli_opt_lookup(const struct cli_opt *const *t,
					    const char *name, size_t n)
{
	const struct cli_opt *o;

	for (; *t; t++)
		for (o = *t; o->name; o++)
			if (strlen(o->name) == n &&
			    strncmp(o->name, name, n) == 0)
				return o;
	return NULL;
}

int cli_opt_parse(const struct cli_opt *const *tables, int argc,
		  char **argv, struct cli_args *a, char *err, size_t errlen)
{
	const struct cli_opt *o;
	const char *arg, *name, *eq, *val;
	size_t n;
	int i, no_more = 0;

	for (i = 0; i < argc; i++) {
		arg = argv[i];
		if (no_more || arg[0] != '-' || arg[1] == '\0') {
			a->pos = xrealloc(a->pos, sizeof(*a->pos) *
					  (size_t)(a->npos + 1));
			a->pos[a->npos++] = argv[i];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			no_more = 1;
			continue;
		}
		if (strcmp(arg, "-h") == 0) {
			a->help = 1;
			continue;
		}
		if (strcmp(arg, "-V") == 0) {
			a->version = 1;
			continue;
		}
		if (arg[1] != '-') {
			snprintf(err, errlen, "unknown option: %s", arg);
			return -1;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		n = eq ? (size_t)(eq - name) : strlen(name);
		o = cli_opt_lookup(tables, name, n);
		if (!o) {
			snprintf(err, errlen, "unknown option: --%.*s",
				 (int)n, name);
			return -1;
		}
		if (o->type == CLI_OPT_FLAG) {
			if (eq) {
				snprintf(err, errlen,
					 "option --%s takes no value",
					 o->name);
				return -1;
			}
			*(int *)((char *)a + o->off) = 1;
			continue;
		}
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			snprintf(err, errlen, "option --%s needs a value (%s)",
				 o->name, o->arg ? o->arg : "VALUE");
			return -1;
		}
		*(const char **)((char *)a + o->off) = val;
	}
	return 0;
}

void cli_args_free(struct cli_args *a)
{
	if (!a)
		return;
	free(a->pos);
	a->pos = NULL;
	a->npos = 0;
}

char *cli_read_prefix(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = xmalloc(max + 1);
	n = fread(buf, 1, max, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Number of words in a command path. */
static int cli_path_words(const char *path)
{
	int n = 1;

	for (; *path; path++)
		n += *path == ' ';
	return n;
}

static int cli_path_matches(const char *path, char **words, int n)
{
	size_t len;
	int i;

	for (i = 0; i < n; i++) {
		len = strcspn(path, " ");
		if (strlen(words[i]) != len ||
		    strncmp(words[i], path, len) != 0)
			return 0;
		path += len;
		if (*path == ' ')
			path++;
		else
			return i == n - 1;
	}
	return 0;
}

const struct cli_cmd *cli_cmd_find(char **words, int n, int *used)
{
	const struct cli_cmd *best = NULL;
	int bw = 0, w;
	size_t i;

	for (i = 0; i < cli_ncmds; i++) {
		w = cli_path_words(cli_cmds[i].path);
		if (w > n || w <= bw)
			continue;
		if (cli_path_matches(cli_cmds[i].path, words, w)) {
			best = &cli_cmds[i];
			bw = w;
		}
	}
	*used = bw;
	return best;
}

/* The command with exactly this path. */
static const struct cli_cmd *cli_cmd_get(const char *path)
{
	size_t i;

	for (i = 0; i < cli_ncmds; i++)
		if (strcmp(cli_cmds[i].path, path) == 0)
			return &cli_cmds[i];
	return NULL;
}

static void cli_help_opts(FILE *f, const struct cli_opt *o)
{
	char left[48];

	for (; o->name; o++) {
		snprintf(left, sizeof(left), "--%s%s%s", o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(f, "  %-24s %s\n", left, o->help);
	}
}

void cli_help(FILE *f, const struct cli_cmd *cmd)
{
	size_t i;

	if (!cmd) {
		fprintf(f, "Usage: clawgate [--profile NAME] [--dev] "
			   "<command> [options]\n\nCommands:\n");
		/* Grouped by first word, groups in table order. */
		for (i = 0; i < cli_ncmds; i++) {
			size_t j, k, w = strcspn(cli_cmds[i].path, " ");

			for (k = 0; k < i; k++)
				if (strncmp(cli_cmds[k].path, cli_cmds[i].path,
					    w) == 0 &&
				    strcspn(cli_cmds[k].path, " ") == w)
					break;
			if (k < i)
				continue;	/* group already printed */
			for (j = i; j < cli_ncmds; j++) {
				char left[48];

				if (cli_cmds[j].hidden ||
				    strcspn(cli_cmds[j].path, " ") != w ||
				    strncmp(cli_cmds[j].path, cli_cmds[i].path,
					    w) != 0)
					continue;
				snprintf(left, sizeof(left), "%s%s",
					 cli_cmds[j].path,
					 strcmp(cli_cmds[j].path, "help") == 0
						 ? " [command]" : "");
				fprintf(f, "  %-24s %s\n", left,
					cli_cmds[j].summary);
			}
		}
		fprintf(f, "\n`clawgate gateway` alone runs the gateway "
			   "(as `gateway run`).\n\nGlobal options:\n");
		cli_help_opts(f, cli_global_opts);
		fprintf(f, "  %-24s %s\n", "-h", "same as --help");
		fprintf(f, "  %-24s %s\n", "-V", "same as --version");
		return;
	}
	fprintf(f, "Usage: clawgate %s %s\n\n%s\n", cmd->path, cmd->usage,
		cmd->summary);
	if (cmd->opts && cmd->opts[0].name) {
		fprintf(f, "\nOptions:\n");
		cli_help_opts(f, cmd->opts);
	}
	fprintf(f, "\nGlobal options:\n");
	cli_help_opts(f, cli_global_opts);
}

static int cli_help_cmd(struct cli_args *a)
{
	const struct cli_cmd *c;
	int used = 0;

	if (a->npos == 0) {
		cli_help(stdout, NULL);
		return 0;
	}
	/* `help devices`, `help gateway`: the group's subcommands. */
	if (a->npos == 1 && cli_completion_is_group_word(a->pos[0])) {
		cli_completion_group_help(stdout, a->pos[0]);
		if (strcmp(a->pos[0], "gateway") == 0)
			printf("`clawgate gateway` alone runs the gateway: see "
			       "'clawgate help gateway run'.\n");
		return 0;
	}
	c = cli_cmd_find(a->pos, a->npos, &used);
	if (!c || used != a->npos) {
		fprintf(stderr, "clawgate: unknown command: %s\n", a->pos[0]);
		cli_help(stderr, NULL);
		return 2;
	}
	if (c->hidden && strcmp(c->path, "gateway") == 0)
		c = cli_cmd_get("gateway run");
	cli_help(stdout, c);
	return 0;
}

static void cli_print_unknown(int argc, char **argv)
{
	int i;

	fprintf(stderr, "clawgate: unknown command:");
	for (i = 0; i < argc; i++)
		fprintf(stderr, " %s", argv[i]);
	fprintf(stderr, "\n\n");
	cli_help(stderr, NULL);
}

int cli_main(int argc, char **argv)
{
	const struct cli_opt *const globals[] = {cli_global_opts, NULL};
	const struct cli_opt *tables[3] = {NULL, cli_global_opts, NULL};
	struct cli_args a = {0};
	const struct cli_cmd *cmd;
	char err[256];
	int i, used = 0, r;

	log_set_console(0);
	/* Global flags may come before the command words. */
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const struct cli_opt *o;

		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (cli_opt_parse(globals, 1, &argv[i], &a, err,
				  sizeof(err)) == 0) {
			continue;
		}
		/* A global with its value in the next word. */
		o = NULL;
		if (strncmp(argv[i], "--", 2) == 0 && !strchr(argv[i], '='))
			o = cli_opt_lookup(globals, argv[i] + 2,
					   strlen(argv[i] + 2));
		if (o && o->type == CLI_OPT_STR && i + 1 < argc) {
			if (cli_opt_parse(globals, 2, &argv[i], &a, err,
					  sizeof(err)) == 0) {
				i++;
				continue;
			}
		}
		fprintf(stderr, "clawgate: %s\n", err);
		fprintf(stderr, "Try 'clawgate --help'.\n");
		r = 2;
		goto out;
	}
	if (a.version) {
		printf("clawgate %s\n", PACKAGE_VERSION);
		r = 0;
		goto out;
	}
	if (i >= argc) {
		cli_help(a.help ? stdout : stderr, NULL);
		r = a.help ? 0 : 2;
		goto out;
	}
	cmd = cli_cmd_find(argv + i, argc - i, &used);
	if (!cmd && cli_completion_is_group_word(argv[i])) {
		/* `clawgate devices [--help]`: the group's subcommands; an
		 * unknown subcommand gets them too, on stderr. */
		int alone = argc - i == 1 || (argc - i == 2 &&
			(strcmp(argv[i + 1], "--help") == 0 ||
			 strcmp(argv[i + 1], "-h") == 0));

		if (!alone)
			fprintf(stderr, "clawgate: unknown command: %s %s\n\n",
				argv[i], argv[i + 1]);
		cli_completion_group_help(alone ? stdout : stderr, argv[i]);
		r = alone ? 0 : 2;
		goto out;
	}
	if (!cmd) {
		cli_print_unknown(argc - i, argv + i);
		r = 2;
		goto out;
	}
	tables[0] = cmd->opts;
	if (cli_opt_parse(tables, argc - i - used, argv + i + used, &a, err,
			  sizeof(err)) < 0) {
		fprintf(stderr, "clawgate %s: %s\n", cmd->path, err);
		fprintf(stderr, "Try 'clawgate help %s'.\n", cmd->path);
		r = 2;
		goto out;
	}
	if (a.version) {
		printf("clawgate %s\n", PACKAGE_VERSION);
		r = 0;
		goto out;
	}
	if (a.help) {
		if (cmd->hidden && strcmp(cmd->path, "gateway") == 0)
			cmd = cli_cmd_get("gateway run");
		cli_help(stdout, cmd);
		r = 0;
		goto out;
	}
	if (a.npos > cmd->max_pos) {
		/* `clawgate gateway foo`: an unknown subcommand. */
		if (cmd->max_pos == 0 && a.pos[0] == argv[i + used])
			cli_print_unknown(used + 1, argv + i);
		else
			fprintf(stderr, "clawgate %s: unexpected argument: "
				"%s\nUsage: clawgate %s %s\n", cmd->path,
				a.pos[cmd->max_pos], cmd->path, cmd->usage);
		r = 2;
		goto out;
	}
	r = cmd->handler(&a);
out:
	cli_args_free(&a);
	return r;
}
