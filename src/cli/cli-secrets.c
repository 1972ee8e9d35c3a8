/* `clawgate secrets reload` (the running gateway's secrets.reload) and
 * `clawgate secrets store list|set|get|rm|import`, which work on the local
 * state database like OpenClaw's (no --url). Exit codes as OpenClaw: 2 for
 * bad input (a --value for a secret, get of a secret, an invalid name, an
 * empty, oversize or placeholder value, --scope other than team), 3 for a
 * missing name, 1 for anything else that failed. A value is never echoed:
 * it comes from stdin, --value-file or a no-echo prompt (--value only for
 * kind env). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "config/config-reload.h"
#include "config/config.h"
#include "core/json5.h"
#include "core/common.h"
#include "core/util.h"
#include "secrets/secrets.h"
#include "store/store.h"

#define A(f) offsetof(struct cli_args, f)
#define CLI_SECRETS_VALUE_MAX 65536
#define CLI_SECRETS_TIMEOUT_MS 30000
#define CLI_SECRETS_IMPORT_MAX (16u * 1024 * 1024)

enum { CLI_SECRETS_EBAD = 2, CLI_SECRETS_EMISSING = 3 };

const struct cli_opt cli_secrets_reload_opts[] = {
	CLI_CLIENT_OPTS("request timeout in ms (default 30000)"),
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_secrets_store_opts[] = {
	{"kind", CLI_OPT_STR, A(kind), "secret|env",
	 "entry kind (default: guessed from the name)"},
	{"value", CLI_OPT_STR, A(value), "V",
	 "the value (kind env only: a secret would reach shell history)"},
	{"value-file", CLI_OPT_STR, A(value_file), "FILE",
	 "read the value from FILE (one trailing newline stripped)"},
	{"allow-host", CLI_OPT_STR, A(allow_host), "H[,H...]",
	 "hosts the secret may be sent to"},
	{"clear-allowed-hosts", CLI_OPT_FLAG, A(clear_allowed_hosts), NULL,
	 "remove the allowed hosts"},
	{"from", CLI_OPT_STR, A(from), "FILE", "import: a dotenv file"},
	{"from-openclaw", CLI_OPT_STR, A(from_openclaw), "DB",
	 "import: an OpenClaw state/openclaw.sqlite"},
	{"scope", CLI_OPT_STR, A(scope), "team", "entry scope (team only)"},
	{"dry-run", CLI_OPT_FLAG, A(dry_run), NULL, "change nothing"},
	{"yes", CLI_OPT_FLAG, A(yes), NULL, "do not ask"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{"plain", CLI_OPT_FLAG, A(plain), NULL, "names only"},
	{NULL, 0, 0, NULL, NULL},
};

/* ---- reload ---------------------------------------------------------------- */

int cli_secrets_reload(struct cli_args *a)
{
	const char *scopes[] = {"operator.admin", NULL};
	struct cli_local l;
	struct cli_target t;
	struct gwclient_opts o;
	struct gwclient_err e = {0};
	struct gwclient *c = NULL;
	json_t *hello = NULL, *payload = NULL, *params = NULL;
	int timeout = a->timeout ? atoi(a->timeout) : CLI_SECRETS_TIMEOUT_MS;
	int r = 1;

	cli_target_local_load(a->profile, a->dev, &l);
	cli_target_resolve(a, &l, &t);
	cli_target_opts(&t, scopes, timeout > 0 ? timeout :
			CLI_SECRETS_TIMEOUT_MS, &o);
	if (gwclient_connect(&o, &c, &hello, &e) != 0) {
		fprintf(stderr, "Gateway not reachable at %s: %s\n", t.url,
			e.message ? e.message : "connect failed");
		goto out;
	}
	gwclient_err_free(&e);
	params = json_object();
	if (gwclient_request(c, "secrets.reload", params, o.timeout_ms, 0,
			     &payload, &e) != 0) {
		fprintf(stderr, "secrets.reload failed: %s\n",
			e.message ? e.message : "request failed");
		goto out;
	}
	if (a->json) {
		char *s = json_dumps(payload, JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
	} else {
		printf("Secrets reloaded (%lld warnings).\n", (long long)
		       json_integer_value(json_object_get(payload,
							  "warningCount")));
	}
	r = 0;
out:
	json_decref(hello);
	json_decref(payload);
	json_decref(params);
	gwclient_err_free(&e);
	gwclient_close(c);
	cli_target_free(&t);
	cli_target_local_free(&l);
	return r;
}

/* ---- the local store ---------------------------------------------------- */

struct cli_secrets_ctx {
	struct cli_local l;
	struct store *st;
};

static int cli_secrets_open(struct cli_args *a, struct cli_secrets_ctx *x)
{
	char *path, *err = NULL;

	memset(x, 0, sizeof(*x));
	if (a->scope && strcmp(a->scope, "team") != 0) {
		fprintf(stderr, "only the team scope is supported (--scope "
			"team)\n");
		return CLI_SECRETS_EBAD;
	}
	cli_target_local_load(a->profile, a->dev, &x->l);
	secrets_install(SECRETS_SCOPE_AUTH, x->l.state_dir);
	path = xasprintf("%s/state/clawgate.sqlite", x->l.state_dir);
	if (store_open(path, &x->st, &err) != GW_OK) {
		fprintf(stderr, "%s\n", err ? err : "cannot open the state "
			"database");
		free(err);
		free(path);
		cli_target_local_free(&x->l);
		return 1;
	}
	free(path);
	return 0;
}

static void cli_secrets_close(struct cli_secrets_ctx *x)
{
	store_close(x->st);
	cli_target_local_free(&x->l);
}

/* Kind from the name, as OpenClaw guesses it. */
static const char *cli_secrets_guess_kind(const char *name)
{
	return secrets_name_is_secret(name) ? "secret" : "env";
}

/* Bounded read of fd into an owned buffer; -1 when over max. */
static int cli_secrets_read_fd(int fd, size_t max, char **out, size_t *len)
{
	char *buf = xmalloc(max + 2);
	size_t n = 0;

	for (;;) {
		ssize_t k = read(fd, buf + n, max + 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n > max)
			break;
	}
	buf[n] = 0;
	if (n > max) {
		explicit_bzero(buf, max + 2);
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* The value: --value, --value-file, stdin, or a no-echo prompt. */
static int cli_secrets_value(struct cli_args *a, const char *name,
			     char **out, size_t *len)
{
	struct termios old, quiet;
	FILE *f;
	int r;

	*out = NULL;
	if (a->value) {
		*out = xstrdup(a->value);
		*len = strlen(a->value);
		return 0;
	}
	if (a->value_file) {
		int fd = strcmp(a->value_file, "-") == 0 ? 0 :
			open(a->value_file, O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			fprintf(stderr, "cannot read %s: %s\n", a->value_file,
				strerror(errno));
			return 1;
		}
		r = cli_secrets_read_fd(fd, CLI_SECRETS_VALUE_MAX + 2, out,
					len);
		if (fd)
			close(fd);
	} else if (!isatty(0)) {
		r = cli_secrets_read_fd(0, CLI_SECRETS_VALUE_MAX + 2, out,
					len);
	} else {
		f = fopen("/dev/tty", "r+");
		if (!f || tcgetattr(fileno(f), &old) < 0) {
			fprintf(stderr, "no terminal to prompt on; pipe the "
				"value on stdin or use --value-file\n");
			if (f)
				fclose(f);
			return CLI_SECRETS_EBAD;
		}
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		fprintf(f, "Value for %s: ", name);
		fflush(f);
		tcsetattr(fileno(f), TCSAFLUSH, &quiet);
		r = cli_secrets_read_fd(fileno(f), CLI_SECRETS_VALUE_MAX + 2,
					out, len);
		tcsetattr(fileno(f), TCSAFLUSH, &old);
		fprintf(f, "\n");
		fclose(f);
	}
	if (r < 0) {
		fprintf(stderr, "value is larger than %d bytes\n",
			CLI_SECRETS_VALUE_MAX);
		return CLI_SECRETS_EBAD;
	}
	/* one trailing newline is the file's or the terminal's */
	if (*len && (*out)[*len - 1] == '\n')
		(*out)[--*len] = 0;
	if (*len && (*out)[*len - 1] == '\r')
		(*out)[--*len] = 0;
	return 0;
}

/* 0 if value may be stored under kind; else the exit code (printed). */
static int cli_secrets_check_value(const char *name, const char *kind,
				   const char *v, size_t n)
{
	if (n > CLI_SECRETS_VALUE_MAX) {
		fprintf(stderr, "%s: value is larger than %d bytes\n", name,
			CLI_SECRETS_VALUE_MAX);
		return CLI_SECRETS_EBAD;
	}
	if (strlen(v) != n) {
		fprintf(stderr, "%s: value contains a NUL byte\n", name);
		return CLI_SECRETS_EBAD;
	}
	if (strcmp(kind, "secret") == 0 && n == 0) {
		fprintf(stderr, "%s: a secret cannot be empty\n", name);
		return CLI_SECRETS_EBAD;
	}
	if (strcmp(v, "__OPENCLAW_REDACTED__") == 0 ||
	    (n > 3 && v[0] == '<' && v[n - 1] == '>')) {
		fprintf(stderr, "%s: value is a placeholder\n", name);
		return CLI_SECRETS_EBAD;
	}
	return 0;
}

static json_t *cli_secrets_hosts(const char *csv)
{
	json_t *a = json_array();
	char *copy = xstrdup(csv), *save = NULL, *tok;

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (*tok)
			json_array_append_new(a, json_string(tok));
	free(copy);
	return a;
}

int cli_secrets_store_set(struct cli_args *a)
{
	struct cli_secrets_ctx x;
	const char *name = a->npos ? a->pos[0] : NULL, *kind;
	char *val = NULL, why[300];
	json_t *hosts = NULL;
	size_t n = 0;
	int r;

	if (!name || !secrets_env_name_valid(name)) {
		fprintf(stderr, "invalid name (expected ^[A-Z][A-Z0-9_]{0,127}"
			"$)\n");
		return CLI_SECRETS_EBAD;
	}
	kind = a->kind ? a->kind : cli_secrets_guess_kind(name);
	if (strcmp(kind, "secret") != 0 && strcmp(kind, "env") != 0) {
		fprintf(stderr, "--kind must be secret or env\n");
		return CLI_SECRETS_EBAD;
	}
	if (a->value && strcmp(kind, "secret") == 0) {
		fprintf(stderr, "refusing --value for the secret %s (it would "
			"reach shell history and the process list): pipe it "
			"on stdin, use --value-file or the prompt\n", name);
		return CLI_SECRETS_EBAD;
	}
	if (a->value && a->value_file) {
		fprintf(stderr, "--value and --value-file are exclusive\n");
		return CLI_SECRETS_EBAD;
	}
	r = cli_secrets_value(a, name, &val, &n);
	if (r)
		return r;
	r = cli_secrets_check_value(name, kind, val, n);
	if (r)
		goto out;
	if (a->allow_host && !a->clear_allowed_hosts)
		hosts = cli_secrets_hosts(a->allow_host);
	if (a->dry_run) {
		printf("Would set %s (%s, %zu bytes).\n", name, kind, n);
		r = 0;
		goto out;
	}
	r = cli_secrets_open(a, &x);
	if (r)
		goto out;
	if (secrets_store_set(x.st, name, kind, val, n, hosts, "cli", why,
			      sizeof(why)) != GW_OK) {
		fprintf(stderr, "%s\n", why);
		r = 1;
	} else {
		printf("Set %s (%s). Run `clawgate secrets reload` to use it in "
		       "a running gateway.\n", name, kind);
	}
	cli_secrets_close(&x);
out:
	xfree_secret(val);
	json_decref(hosts);
	return r;
}

int cli_secrets_store_get(struct cli_args *a)
{
	struct cli_secrets_ctx x;
	const char *name = a->npos ? a->pos[0] : NULL;
	char *kind = NULL, *val = NULL, why[300];
	int r;

	if (!name || !secrets_env_name_valid(name)) {
		fprintf(stderr, "invalid name\n");
		return CLI_SECRETS_EBAD;
	}
	r = cli_secrets_open(a, &x);
	if (r)
		return r;
	r = secrets_store_value(store_reader(x.st), name, &kind, &val, why,
				sizeof(why));
	if (r == GW_ENOTFOUND && strcmp(why, "no entry") == 0) {
		fprintf(stderr, "no secret store entry %s\n", name);
		r = CLI_SECRETS_EMISSING;
	} else if (r != GW_OK) {
		fprintf(stderr, "%s: %s\n", name, why);
		r = 1;
	} else if (strcmp(kind, "secret") == 0) {
		fprintf(stderr, "%s is a secret: its value cannot be read back\n",
			name);
		r = CLI_SECRETS_EBAD;
	} else {
		printf("%s=%s\n", name, val);
		r = 0;
	}
	xfree_secret(val);
	free(kind);
	cli_secrets_close(&x);
	return r;
}

int cli_secrets_store_list(struct cli_args *a)
{
	struct cli_secrets_ctx x;
	json_t *entries = NULL, *e;
	char why[300];
	size_t i;
	int r;

	r = cli_secrets_open(a, &x);
	if (r)
		return r;
	if (secrets_store_list_json(x.st, &entries, why, sizeof(why)) !=
	    GW_OK) {
		fprintf(stderr, "%s\n", why);
		cli_secrets_close(&x);
		return 1;
	}
	if (a->json) {
		json_t *o = json_pack("{s:O}", "entries", entries);
		char *s = json_dumps(o, JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		json_array_foreach(entries, i, e) {
			const char *name = json_string_value(
				json_object_get(e, "name"));

			if (a->plain)
				printf("%s\n", name);
			else
				printf("%-40s %s\n", name, json_string_value(
					json_object_get(e, "kind")));
		}
		if (!a->plain && !json_array_size(entries))
			printf("No secret store entries.\n");
	}
	json_decref(entries);
	cli_secrets_close(&x);
	return 0;
}

int cli_secrets_store_rm(struct cli_args *a)
{
	struct cli_secrets_ctx x;
	int i, r, rc = 0;

	if (!a->npos) {
		fprintf(stderr, "usage: clawgate secrets store rm NAME...\n");
		return CLI_SECRETS_EBAD;
	}
	for (i = 0; i < a->npos; i++)
		if (!secrets_env_name_valid(a->pos[i])) {
			fprintf(stderr, "invalid name %s\n", a->pos[i]);
			return CLI_SECRETS_EBAD;
		}
	r = cli_secrets_open(a, &x);
	if (r)
		return r;
	for (i = 0; i < a->npos; i++) {
		struct store_secret e;

		if (a->dry_run) {
			r = store_secrets_get(x.st, a->pos[i], &e);
			store_secret_clear(&e);
		} else {
			r = store_secrets_delete(x.st, a->pos[i], "cli");
		}
		if (r == GW_ENOTFOUND) {
			fprintf(stderr, "no secret store entry %s\n", a->pos[i]);
			rc = CLI_SECRETS_EMISSING;
		} else if (r != GW_OK) {
			fprintf(stderr, "cannot remove %s\n", a->pos[i]);
			rc = rc ? rc : 1;
		} else {
			printf("%s %s.\n", a->dry_run ? "Would remove" :
			       "Removed", a->pos[i]);
		}
	}
	cli_secrets_close(&x);
	return rc;
}

/* ---- import ------------------------------------------------------------- */

struct cli_secrets_imp {
	struct cli_args *a;
	struct cli_secrets_ctx *x;
	int n, rc;
};

static int cli_secrets_import_one(const char *name, const char *value,
				  int line, void *arg)
{
	struct cli_secrets_imp *im = arg;
	const char *kind = cli_secrets_guess_kind(name);
	char why[300];
	int r;

	(void)line;
	if (!secrets_env_name_valid(name)) {
		fprintf(stderr, "invalid name %s\n", name);
		im->rc = CLI_SECRETS_EBAD;
		return -1;
	}
	r = cli_secrets_check_value(name, kind, value, strlen(value));
	if (r) {
		im->rc = r;
		return -1;
	}
	if (im->a->dry_run) {
		printf("Would import %s (%s).\n", name, kind);
	} else if (secrets_store_set(im->x->st, name, kind, value,
				     strlen(value), NULL, "cli import", why,
				     sizeof(why)) != GW_OK) {
		fprintf(stderr, "%s: %s\n", name, why);
		im->rc = 1;
		return -1;
	} else {
		printf("Imported %s (%s).\n", name, kind);
	}
	im->n++;
	return 0;
}

static int cli_secrets_import_row(const char *name, const char *val,
				  size_t len, const char *kind, void *arg)
{
	struct cli_secrets_imp *im = arg;
	char why[300];

	if (!name || !val || !secrets_env_name_valid(name)) {
		fprintf(stderr, "skipping an entry with an invalid name\n");
		return 0;
	}
	if (!kind || (strcmp(kind, "secret") != 0 &&
		      strcmp(kind, "env") != 0))
		kind = cli_secrets_guess_kind(name);
	if (im->a->dry_run) {
		printf("Would import %s (%s).\n", name, kind);
	} else if (secrets_store_set(im->x->st, name, kind, val, len, NULL,
				     "openclaw import", why, sizeof(why)) !=
		   GW_OK) {
		fprintf(stderr, "%s: %s\n", name, why);
		im->rc = 1;
		return 1;
	} else {
		printf("Imported %s (%s).\n", name, kind);
	}
	im->n++;
	return 0;
}

/* OpenClaw's store: team rows of secret_store_entries, not deleted. */
static int cli_secrets_import_openclaw(struct cli_secrets_imp *im,
				       const char *path)
{
	sqlite3 *db = NULL;
	char why[300] = "";

	if (store_secrets_open_ro(path, &db) != GW_OK) {
		fprintf(stderr, "cannot open %s\n", path);
		return 1;
	}
	if (store_secrets_openclaw_each(db, cli_secrets_import_row, im, why,
					sizeof(why)) == GW_ENOTFOUND) {
		fprintf(stderr, "%s has no OpenClaw secret store "
			"(secret_store_entries): %s\n", path, why);
		store_secrets_close_ro(db);
		return 1;
	}
	store_secrets_close_ro(db);
	return im->rc;
}

int cli_secrets_store_import(struct cli_args *a)
{
	struct cli_secrets_ctx x;
	struct cli_secrets_imp im = { .a = a, .x = &x };
	char *text = NULL, *path = NULL;
	size_t n = 0;
	int r, bad = 0;

	if (a->from && a->from_openclaw) {
		fprintf(stderr, "--from and --from-openclaw are exclusive\n");
		return CLI_SECRETS_EBAD;
	}
	r = cli_secrets_open(a, &x);
	if (r)
		return r;
	if (a->from_openclaw) {
		r = cli_secrets_import_openclaw(&im, a->from_openclaw);
		goto done;
	}
	path = a->from ? xstrdup(a->from) : xasprintf("%s/.env",
						      x.l.state_dir);
	r = util_read_file(path, CLI_SECRETS_IMPORT_MAX, &text, &n);
	if (r <= 0) {
		fprintf(stderr, "cannot read %s: %s\n", path,
			strerror(r == 0 ? ENOENT : -r));
		r = 1;
		goto done;
	}
	if (secrets_dotenv_parse(text, cli_secrets_import_one, &im, &bad) <
	    0) {
		if (!im.rc)
			fprintf(stderr, "%s:%d: not NAME=value\n", path, bad);
		r = im.rc ? im.rc : CLI_SECRETS_EBAD;
		goto done;
	}
	r = 0;
done:
	if (!r)
		printf("%s %d entr%s.\n", a->dry_run ? "Would import" :
		       "Imported", im.n, im.n == 1 ? "y" : "ies");
	if (text) {
		explicit_bzero(text, n);
		free(text);
	}
	free(path);
	cli_secrets_close(&x);
	return r;
}

/* ---- audit and apply ------------------------------------------------------ */

const struct cli_opt cli_secrets_audit_opts[] = {
	{"check", CLI_OPT_FLAG, A(check), NULL,
	 "exit 1 when there are findings"},
	{"allow-exec", CLI_OPT_FLAG, A(allow_exec), NULL,
	 "run exec providers to check their refs"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print the JSON report"},
	{NULL, 0, 0, NULL, NULL},
};

const struct cli_opt cli_secrets_apply_opts[] = {
	{"from", CLI_OPT_STR, A(from), "PLAN", "the plan file (required)"},
	{"dry-run", CLI_OPT_FLAG, A(dry_run), NULL,
	 "validate and preflight only"},
	{"allow-exec", CLI_OPT_FLAG, A(allow_exec), NULL,
	 "allow exec refs and providers (runs them in the preflight)"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print JSON"},
	{NULL, 0, 0, NULL, NULL},
};

int cli_secrets_audit(struct cli_args *a)
{
	struct secrets_audit_opts o = { 0 };
	struct cli_local l;
	json_t *rep, *f;
	size_t i;
	int status = 0, r;

	cli_target_local_load(a->profile, a->dev, &l);
	secrets_install(SECRETS_SCOPE_AUTH, l.state_dir);
	o.config_path = l.config_path;
	o.state_dir = l.state_dir;
	o.allow_exec = a->allow_exec;
	rep = secrets_audit(&o, &status);
	if (a->json) {
		char *s = json_dumps(rep, JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
	} else {
		const json_t *sum = json_object_get(rep, "summary");

		printf("Secrets audit: %s (plaintext %lld, unresolved %lld, "
		       "refs checked %lld, exec refs skipped %lld)\n",
		       json_string_value(json_object_get(rep, "status")),
		       (long long)json_integer_value(json_object_get(
			       sum, "plaintextCount")),
		       (long long)json_integer_value(json_object_get(
			       sum, "unresolvedRefCount")),
		       (long long)json_integer_value(json_object_get(
			       json_object_get(rep, "resolution"),
			       "refsChecked")),
		       (long long)json_integer_value(json_object_get(
			       json_object_get(rep, "resolution"),
			       "skippedExecRefs")));
		json_array_foreach(json_object_get(rep, "findings"), i, f)
			printf("- %s %s %s: %s\n",
			       json_string_value(json_object_get(f, "code")),
			       json_string_value(json_object_get(f, "file")),
			       json_string_value(json_object_get(f,
								 "jsonPath")),
			       json_string_value(json_object_get(f,
								 "message")));
	}
	json_decref(rep);
	cli_target_local_free(&l);
	r = status == 2 ? 2 : (status == 1 && a->check) ? 1 : 0;
	return r;
}

struct cli_secrets_pre {
	const json_t *plan;
	int bad;
};

static void cli_secrets_pre_ref(void *arg, const char *path,
				const char *source, const char *provider,
				int outcome, const char *reason)
{
	struct cli_secrets_pre *p = arg;
	const json_t *t;
	size_t i;

	if (outcome != SECRETS_CHECK_UNRESOLVED)
		return;
	json_array_foreach(json_object_get(p->plan, "targets"), i, t)
		if (strcmp(json_string_value(json_object_get(t, "path")),
			   path) == 0) {
			fprintf(stderr, "preflight: %s does not resolve: "
				"provider \"%s\" (source %s): %s\n", path,
				provider, source, reason ? reason : "?");
			p->bad = 1;
		}
}

/* The config file's own tree (no $include, no ${VAR}): {} when absent. */
static json_t *cli_secrets_config_raw(const char *path)
{
	struct json5_error perr;
	json_t *root = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rd = config_read_file(path, &buf, &len);

	if (rd == 0)
		return json_object();
	if (rd < 0) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(-rd));
		return NULL;
	}
	if (json5_parse(buf, len, &root, &perr) < 0 || !json_is_object(root)) {
		fprintf(stderr, "%s: not a JSON5 object\n", path);
		json_decref(root);
		root = NULL;
	}
	explicit_bzero(buf, len);
	free(buf);
	return root;
}

/* Preflight and (unless dry_run) write a validated plan: the config file,
 * then the one-way scrub of .env and of the stored config versions. */
static int cli_secrets_apply_plan(const struct cli_local *l,
				  const json_t *plan, int dry_run,
				  int allow_exec)
{
	struct config_issues is = { 0 };
	struct cli_secrets_pre pre = { 0 };
	struct stat st;
	json_t *root = NULL, *neu = NULL, *migrated = json_array();
	char *out = NULL, *dir = NULL, *env = NULL;
	int r = 1, envs = 0, vers = 0;

	if (!dry_run && !allow_exec && secrets_plan_has_exec(plan)) {
		fprintf(stderr, "the plan has exec refs or providers: pass "
			"--allow-exec to apply it\n");
		goto out;
	}
	root = cli_secrets_config_raw(l->config_path);
	if (!root)
		goto out;
	neu = secrets_plan_apply_root(plan, root, migrated);
	/* preflight: the new config validates and every target resolves */
	pre.plan = plan;
	if (config_validate(neu, &is) != GW_OK ||
	    secrets_check_refs(neu, allow_exec, cli_secrets_pre_ref, &pre,
			       &is) != GW_OK) {
		fprintf(stderr, "preflight: %s: %s\n", is.n ? is.v[0].path :
			"<root>", is.n ? is.v[0].message : "invalid");
		goto out;
	}
	if (pre.bad)
		goto out;
	if (dry_run) {
		printf("Plan is valid: %zu targets (dry run: nothing "
		       "written).\n", json_array_size(json_object_get(
			       plan, "targets")));
		r = 0;
		goto out;
	}
	/* one new config version: the gateway's watcher (or its next start)
	 * loads it through the reload path */
	out = json_dumps(neu, JSON_INDENT(2));
	{
		char *t = xasprintf("%s\n", out);

		xfree_secret(out);
		out = t;
	}
	if (config_write_atomic(l->config_path, out, strlen(out)) != 0) {
		fprintf(stderr, "cannot write %s\n", l->config_path);
		goto out;
	}
	if (!json_is_false(json_object_get(plan, "scrubEnv"))) {
		int k;

		env = xasprintf("%s/.env", l->state_dir);
		k = secrets_plan_scrub_env(env, plan, migrated);
		envs += k > 0 ? k : 0;
		dir = xstrdup(l->config_path);
		if (strrchr(dir, '/'))
			*strrchr(dir, '/') = 0;
		free(env);
		env = xasprintf("%s/.env", dir);
		if (strcmp(dir, l->state_dir) != 0) {
			k = secrets_plan_scrub_env(env, plan, migrated);
			envs += k > 0 ? k : 0;
		}
	}
	if (json_array_size(migrated)) {
		char *dbp = xasprintf("%s/state/clawgate.sqlite", l->state_dir);
		struct store *s = NULL;
		char *err = NULL;

		if (stat(dbp, &st) == 0 && store_open(dbp, &s, &err) == GW_OK) {
			secrets_plan_scrub_versions(s, plan, migrated, &vers);
			store_close(s);
		}
		free(err);
		free(dbp);
	}
	printf("Applied %zu targets to %s; scrubbed %d .env entr%s and %d "
	       "stored config version%s.\n",
	       json_array_size(json_object_get(plan, "targets")),
	       l->config_path, envs, envs == 1 ? "y" : "ies", vers,
	       vers == 1 ? "" : "s");
	r = 0;
out:
	xfree_secret(out);
	free(env);
	free(dir);
	json_decref(root);
	json_decref(neu);
	json_decref(migrated);
	config_issues_free(&is);
	return r;
}

int cli_secrets_apply(struct cli_args *a)
{
	struct cli_local l;
	struct stat st;
	json_t *plan = NULL;
	char *text = NULL, why[300];
	size_t n = 0;
	int r = 1;

	cli_target_local_load(a->profile, a->dev, &l);
	secrets_install(SECRETS_SCOPE_AUTH, l.state_dir);
	if (!a->from) {
		fprintf(stderr, "usage: clawgate secrets apply --from PLAN\n");
		r = CLI_SECRETS_EBAD;
		goto out;
	}
	if (stat(a->from, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)CLI_SECRETS_IMPORT_MAX) {
		fprintf(stderr, "%s: the plan must be a regular file of at most "
			"16 MiB\n", a->from);
		goto out;
	}
	if (util_read_file(a->from, CLI_SECRETS_IMPORT_MAX, &text, &n) <= 0 ||
	    secrets_plan_parse(text, n, &plan, why, sizeof(why)) != GW_OK) {
		fprintf(stderr, "Invalid plan: %s\n", text ? why :
			"cannot read it");
		goto out;
	}
	r = cli_secrets_apply_plan(&l, plan, a->dry_run, a->allow_exec);
out:
	if (text)
		explicit_bzero(text, n);
	free(text);
	json_decref(plan);
	cli_target_local_free(&l);
	return r;
}

/* ---- configure ------------------------------------------------------------ */

const struct cli_opt cli_secrets_configure_opts[] = {
	{"plan-out", CLI_OPT_STR, A(plan_out), "FILE", "write the plan"},
	{"apply", CLI_OPT_FLAG, A(apply), NULL, "apply the plan"},
	{"yes", CLI_OPT_FLAG, A(yes), NULL, "do not ask before applying"},
	{"providers-only", CLI_OPT_FLAG, A(providers_only), NULL,
	 "provider setup only (not supported: edit secrets.providers)"},
	{"skip-provider-setup", CLI_OPT_FLAG, A(skip_provider_setup), NULL,
	 "map credentials to existing providers (the default here)"},
	{"agent", CLI_OPT_STR, A(agent), "ID",
	 "auth-profile scope (clawgate has no auth-profile store)"},
	{"allow-exec", CLI_OPT_FLAG, A(allow_exec), NULL,
	 "allow exec refs in the preflight"},
	{"json", CLI_OPT_FLAG, A(json), NULL, "print the plan as JSON"},
	{NULL, 0, 0, NULL, NULL},
};

/* A store name for a config path: upper case, [A-Z0-9_] only. */
static char *cli_secrets_name_for(const char *path)
{
	static const struct {
		const char *path, *name;
	} fixed[] = {
		{"gateway.auth.token", "OPENCLAW_GATEWAY_TOKEN"},
		{"gateway.auth.password", "OPENCLAW_GATEWAY_PASSWORD"},
		{"hooks.token", "OPENCLAW_HOOKS_TOKEN"},
	};
	const char *p = path, *id;
	char *out, *w;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fixed); i++)
		if (strcmp(fixed[i].path, path) == 0)
			return xstrdup(fixed[i].name);
	if (strncmp(path, "models.providers.", 17) == 0)
		p = path + 17;
	out = xmalloc(strlen(p) + 16);
	w = out;
	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		w += sprintf(w, "S_");
	for (id = p; *id && w - out < 120; id++) {
		char ch = *id;

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
			ch = '_';
		if (ch == '_' && w > out && w[-1] == '_')
			continue;
		*w++ = ch;
	}
	*w = 0;
	/* apiKey → API_KEY */
	if (w - out >= 7 && strcmp(w - 7, "_APIKEY") == 0)
		strcpy(w - 7, "_API_KEY");
	return out;
}

/* One line from stdin (the terminal), newline stripped. */
static int cli_secrets_ask(const char *prompt, char *buf, size_t len)
{
	fputs(prompt, stdout);
	fflush(stdout);
	if (!fgets(buf, (int)len, stdin))
		return -1;
	buf[strcspn(buf, "\r\n")] = 0;
	return 0;
}

int cli_secrets_configure(struct cli_args *a)
{
	struct cli_local l;
	struct cli_secrets_ctx x = { 0 };
	json_t *root = NULL, *plain = NULL, *plan = NULL, *targets, *f;
	json_t *names = json_array();
	char ans[200], prompt[600], why[300];
	size_t i;
	int r = 1, opened = 0;

	if (a->providers_only && a->skip_provider_setup) {
		fprintf(stderr, "--providers-only and --skip-provider-setup "
			"cannot be combined\n");
		json_decref(names);
		return CLI_SECRETS_EBAD;
	}
	if (a->providers_only) {
		fprintf(stderr, "--providers-only is not supported: clawgate's "
			"planner maps credentials to the secret store; edit "
			"secrets.providers in the config for other providers\n");
		json_decref(names);
		return CLI_SECRETS_EBAD;
	}
	if (!isatty(0) || !isatty(1)) {
		fprintf(stderr, "secrets configure requires an interactive "
			"TTY (use secrets apply --from PLAN in scripts)\n");
		json_decref(names);
		return 1;
	}
	cli_target_local_load(a->profile, a->dev, &l);
	secrets_install(SECRETS_SCOPE_AUTH, l.state_dir);
	root = cli_secrets_config_raw(l.config_path);
	if (!root)
		goto out;
	plain = secrets_plaintext_fields(root);
	printf("Secrets configure: %zu plaintext secret%s in %s.\n",
	       json_array_size(plain), json_array_size(plain) == 1 ? "" : "s",
	       l.config_path);
	plan = json_pack("{s:i,s:i,s:[],s:b}", "version", 1,
			 "protocolVersion", 1, "targets", "scrubEnv", 1);
	targets = json_object_get(plan, "targets");
	json_array_foreach(plain, i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		char *name = cli_secrets_name_for(path);
		json_t *t, *segs = json_array();
		const char *p = path;

		snprintf(prompt, sizeof(prompt), "Move %s to the secret store "
			 "as %s? [Y/n/NAME] ", path, name);
		if (cli_secrets_ask(prompt, ans, sizeof(ans)) < 0) {
			free(name);
			json_decref(segs);
			goto out;
		}
		if (ans[0] == 'n' || ans[0] == 'N') {
			free(name);
			json_decref(segs);
			continue;
		}
		if (ans[0] && strcmp(ans, "y") && strcmp(ans, "Y")) {
			if (!secrets_env_name_valid(ans)) {
				fprintf(stderr, "invalid name %s (expected "
					"^[A-Z][A-Z0-9_]{0,127}$)\n", ans);
				free(name);
				json_decref(segs);
				r = CLI_SECRETS_EBAD;
				goto out;
			}
			free(name);
			name = xstrdup(ans);
		}
		while (*p) {
			size_t n = strcspn(p, ".");

			json_array_append_new(segs, json_stringn(p, n));
			p += n;
			if (*p)
				p++;
		}
		t = json_pack("{s:O,s:s,s:o,s:{s:s,s:s,s:s}}", "type",
			      json_object_get(f, "type"), "path", path,
			      "pathSegments", segs, "ref", "source", "store",
			      "provider", "default", "id", name);
		if (strncmp(path, "models.providers.", 17) == 0)
			json_object_set_new(t, "providerId", json_stringn(
				path + 17, strcspn(path + 17, ".")));
		json_array_append_new(targets, t);
		json_array_append_new(names, json_pack("{s:s,s:O}", "name",
						       name, "value",
						       json_object_get(f,
								       "value")));
		free(name);
	}
	if (!json_array_size(targets)) {
		printf("Nothing to migrate.\n");
		r = 0;
		goto out;
	}
	{
		char *text = json_dumps(plan, JSON_INDENT(2));

		if (a->json)
			printf("%s\n", text);
		if (a->plan_out && config_write_atomic(a->plan_out, text,
						       strlen(text)) != 0) {
			fprintf(stderr, "cannot write %s\n", a->plan_out);
			free(text);
			goto out;
		}
		free(text);
	}
	if (!a->apply) {
		if (cli_secrets_ask("Apply this plan now? [y/N] ", ans,
				    sizeof(ans)) < 0 || (ans[0] != 'y' &&
							 ans[0] != 'Y')) {
			printf("Not applied.%s\n", a->plan_out ?
			       " Store the values, then run `clawgate secrets "
			       "apply --from` the plan." : "");
			r = 0;
			goto out;
		}
	} else if (!a->yes) {
		if (cli_secrets_ask("This is one-way: the plaintext leaves the "
				    "config, .env and the stored config "
				    "versions. Continue? [y/N] ", ans,
				    sizeof(ans)) < 0 ||
		    (ans[0] != 'y' && ans[0] != 'Y')) {
			printf("Not applied.\n");
			r = 0;
			goto out;
		}
	}
	/* the values go to the encrypted store first, then the plan */
	r = cli_secrets_open(a, &x);
	if (r)
		goto out;
	opened = 1;
	json_array_foreach(names, i, f) {
		const char *name = json_string_value(json_object_get(f, "name"));
		const char *val = json_string_value(json_object_get(f, "value"));

		if (secrets_store_set(x.st, name, "secret", val, strlen(val),
				      NULL, "cli configure", why,
				      sizeof(why)) != GW_OK) {
			fprintf(stderr, "%s: %s\n", name, why);
			r = 1;
			goto out;
		}
		printf("Stored %s (secret).\n", name);
	}
	store_close(x.st);
	x.st = NULL;
	r = cli_secrets_apply_plan(&l, plan, 0, a->allow_exec);
out:
	if (opened)
		cli_secrets_close(&x);
	json_decref(names);
	json_decref(plan);
	json_decref(plain);
	json_decref(root);
	cli_target_local_free(&l);
	return r;
}
