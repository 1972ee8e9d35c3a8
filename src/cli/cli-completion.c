/* `clawgate completion bash|zsh|fish`: completion scripts generated from
 * the command and option tables, so they never fall behind the CLI. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"

/* Is w one of the space-separated words of acc? */
static int cli_completion_has(const char *acc, const char *w)
{
	size_t n = strlen(w);
	const char *p = acc;

	while ((p = strstr(p, w))) {
		if ((p == acc || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return 1;
		p += n;
	}
	return 0;
}

/* Add w to the word list *acc unless it is there. */
static void cli_completion_add(char **acc, const char *w)
{
	char *n;

	if (cli_completion_has(*acc, w))
		return;
	n = xasprintf("%s%s%s", *acc, **acc ? " " : "", w);
	free(*acc);
	*acc = n;
}

/* The distinct first words of the visible commands, space-separated. */
static char *cli_completion_words(const char *group)
{
	char *acc = xstrdup(""), *w;
	size_t i, gl = group ? strlen(group) : 0;
	const char *p;

	for (i = 0; i < cli_ncmds; i++) {
		p = cli_cmds[i].path;
		if (cli_cmds[i].hidden)
			continue;
		if (group) {
			if (strncmp(p, group, gl) != 0 || p[gl] != ' ')
				continue;
			p += gl + 1;
		}
		w = xstrndup(p, strcspn(p, " "));
		cli_completion_add(&acc, w);
		free(w);
	}
	return acc;
}

/* Every --option of the commands under a first word (and the globals). */
static char *cli_completion_opts(const char *first)
{
	char *acc = xstrdup(""), *w;
	const struct cli_opt *o;
	size_t i, fl = strlen(first);

	for (i = 0; i < cli_ncmds + 1; i++) {
		o = i < cli_ncmds ? cli_cmds[i].opts : cli_global_opts;
		if (i < cli_ncmds &&
		    (strncmp(cli_cmds[i].path, first, fl) != 0 ||
		     (cli_cmds[i].path[fl] != ' ' &&
		      cli_cmds[i].path[fl] != '\0')))
			continue;
		for (; o && o->name; o++) {
			w = xasprintf("--%s", o->name);
			cli_completion_add(&acc, w);
			free(w);
		}
	}
	return acc;
}

/* The groups: first words that have subcommands. */
static int cli_completion_is_group(const char *w)
{
	size_t i, n = strlen(w);

	for (i = 0; i < cli_ncmds; i++)
		if (strncmp(cli_cmds[i].path, w, n) == 0 &&
		    cli_cmds[i].path[n] == ' ')
			return 1;
	return 0;
}

static void cli_completion_bash(void)
{
	char *top = cli_completion_words(NULL), *copy, *w, *save = NULL;
	char *sub, *opts;

	printf("# bash completion for clawgate (clawgate completion bash)\n"
	       "_clawgate() {\n"
	       "\tlocal cur=${COMP_WORDS[COMP_CWORD]} first=${COMP_WORDS[1]}"
	       "\n\tlocal words\n"
	       "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n"
	       "\t\twords=\"%s\"\n"
	       "\telse\n\t\tcase $first in\n", top);
	copy = xstrdup(top);
	for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		opts = cli_completion_opts(w);
		sub = cli_completion_is_group(w) ? cli_completion_words(w)
						 : xstrdup("");
		printf("\t\t%s)\n\t\t\tif [ \"$COMP_CWORD\" -eq 2 ]; then "
		       "words=\"%s %s\"; else words=\"%s\"; fi ;;\n",
		       w, sub, opts, opts);
		free(opts);
		free(sub);
	}
	printf("\t\t*) words=\"\" ;;\n\t\tesac\n\tfi\n"
	       "\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n"
	       "complete -o default -F _clawgate clawgate\n");
	free(copy);
	free(top);
}

static void cli_completion_zsh(void)
{
	printf("#compdef clawgate\n"
	       "# zsh completion for clawgate (clawgate completion zsh): "
	       "reuses the bash one\n"
	       "autoload -U +X bashcompinit && bashcompinit\n");
	cli_completion_bash();
}

static void cli_completion_fish(void)
{
	char *top = cli_completion_words(NULL), *copy, *w, *save = NULL;
	char *sub, *s2, *x, *save2 = NULL;
	const struct cli_opt *o;
	size_t i;

	printf("# fish completion for clawgate (clawgate completion fish)\n"
	       "complete -c clawgate -f\n");
	copy = xstrdup(top);
	for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		printf("complete -c clawgate -n __fish_use_subcommand -a %s\n",
		       w);
		if (!cli_completion_is_group(w))
			continue;
		sub = cli_completion_words(w);
		s2 = xstrdup(sub);
		for (x = strtok_r(s2, " ", &save2); x;
		     x = strtok_r(NULL, " ", &save2))
			printf("complete -c clawgate -n '__fish_seen_subcommand"
			       "_from %s' -a %s\n", w, x);
		free(s2);
		free(sub);
		save2 = NULL;
	}
	for (i = 0; i < cli_ncmds; i++) {
		char first[64];

		snprintf(first, sizeof(first), "%.*s",
			 (int)strcspn(cli_cmds[i].path, " "),
			 cli_cmds[i].path);
		for (o = cli_cmds[i].opts; o && o->name; o++)
			printf("complete -c clawgate -n '__fish_seen_subcommand"
			       "_from %s' -l %s%s\n", first, o->name,
			       o->type == CLI_OPT_STR ? " -r" : "");
	}
	for (o = cli_global_opts; o->name; o++)
		printf("complete -c clawgate -l %s%s\n", o->name,
		       o->type == CLI_OPT_STR ? " -r" : "");
	free(copy);
	free(top);
}

static const struct {
	const char *shell;
	void (*print)(void);
} cli_completion_shells[] = {
	{"bash", cli_completion_bash},
	{"zsh", cli_completion_zsh},
	{"fish", cli_completion_fish},
};

int cli_completion(struct cli_args *a)
{
	size_t i;

	if (a->npos != 1) {
		fprintf(stderr, "Usage: clawgate completion bash|zsh|fish\n");
		return 2;
	}
	for (i = 0; i < ARRAY_SIZE(cli_completion_shells); i++) {
		if (strcmp(a->pos[0], cli_completion_shells[i].shell) == 0) {
			cli_completion_shells[i].print();
			return 0;
		}
	}
	fprintf(stderr, "clawgate completion: unknown shell %s "
		"(bash|zsh|fish)\n", a->pos[0]);
	return 2;
}

void cli_completion_group_help(FILE *f, const char *group)
{
	size_t i, gl = strlen(group);
	char left[48];

	fprintf(f, "Usage: clawgate %s <command> [options]\n\nCommands:\n",
		group);
	for (i = 0; i < cli_ncmds; i++) {
		if (cli_cmds[i].hidden ||
		    strncmp(cli_cmds[i].path, group, gl) != 0 ||
		    cli_cmds[i].path[gl] != ' ')
			continue;
		snprintf(left, sizeof(left), "%s", cli_cmds[i].path);
		fprintf(f, "  %-24s %s\n", left, cli_cmds[i].summary);
	}
	fprintf(f, "\nRun 'clawgate help %s <command>' for its options.\n",
		group);
}

int cli_completion_is_group_word(const char *w)
{
	return cli_completion_is_group(w);
}
