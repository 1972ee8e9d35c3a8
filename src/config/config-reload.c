/* The one reload path: read -> parse -> validate -> resolve secrets ->
 * plan -> commit snapshot row -> swap -> apply -> release the old snapshot
 * (when its last reader drops it: readers hold references, never locks).
 * File edits (the watcher), SIGHUP, the config.* RPCs and rollback all come
 * through config_reloader_run_locked; writers serialise on the reloader's
 * mutex. Snapshot rows hold the redacted file text: secrets never reach
 * SQLite. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "config/config-reload.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-config.h"
#include "store/store.h"

#define CONFIG_RELOAD_MAX_FILE (4u * 1024 * 1024)
#define CONFIG_RELOAD_ISSUES_MAX 600
#define CONFIG_RELOAD_HISTORY_MAX 1000

struct config_reloader {
	pthread_mutex_t mu;
	char *path;
	const struct config_overrides *ov;
	struct store *store;
	int64_t keep;
	struct config_reloader_cbs cbs;
	int64_t current_id;	/* snapshot row of the running config */
	char rejected_hash[65];	/* last invalid content seen (not re-logged) */
	int missing;		/* the file is gone (logged once) */
};

static pthread_mutex_t config_reloader_global_mu = PTHREAD_MUTEX_INITIALIZER;
static struct config_reloader *config_reloader_global_ptr;

void config_reloader_set_global(struct config_reloader *r)
{
	pthread_mutex_lock(&config_reloader_global_mu);
	config_reloader_global_ptr = r;
	pthread_mutex_unlock(&config_reloader_global_mu);
}

struct config_reloader *config_reloader_global(void)
{
	struct config_reloader *r;

	pthread_mutex_lock(&config_reloader_global_mu);
	r = config_reloader_global_ptr;
	pthread_mutex_unlock(&config_reloader_global_mu);
	return r;
}

const char *config_outcome_name(enum config_outcome o)
{
	static const char *const names[] = {
		[CONFIG_OUT_UNCHANGED] = "unchanged",
		[CONFIG_OUT_APPLIED] = "applied",
		[CONFIG_OUT_RESTART] = "restart",
		[CONFIG_OUT_PENDING] = "pending",
		[CONFIG_OUT_SKIPPED] = "skipped",
		[CONFIG_OUT_REJECTED] = "rejected",
		[CONFIG_OUT_MISSING] = "missing",
	};

	return (unsigned)o < ARRAY_SIZE(names) ? names[o] : "?";
}

enum config_reload_mode config_reload_mode_parse(const char *s)
{
	if (s && strcmp(s, "off") == 0)
		return CONFIG_MODE_OFF;
	if (s && strcmp(s, "hot") == 0)
		return CONFIG_MODE_HOT;
	if (s && strcmp(s, "restart") == 0)
		return CONFIG_MODE_RESTART;
	return CONFIG_MODE_HYBRID;
}

void config_result_free(struct config_result *res)
{
	if (!res)
		return;
	config_plan_free(&res->plan);
	config_issues_free(&res->issues);
	free(res->reason);
	res->reason = NULL;
}

/* ---- files ------------------------------------------------------------- */

int config_read_file(const char *path, char **out, size_t *len)
{
	return util_read_file(path, CONFIG_RELOAD_MAX_FILE, out, len);
}

static int config_reload_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, p, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Write text to a new temp file next to path (fsynced, mode of path or
 * 0600). *tmp is the owned temp path. Returns 0 or -errno. */
static int config_reload_tmp_write(const char *path, const char *text,
				   size_t len, char **tmp)
{
	char *copy = xstrdup(path), *dir, *base = xstrdup(path);
	struct stat st;
	mode_t mode = 0600;
	char rnd[9];
	uint8_t b[4];
	int fd, r;

	dir = dirname(copy);
	util_random(b, sizeof(b));
	snprintf(rnd, sizeof(rnd), "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
	*tmp = xasprintf("%s/.%s.%ld.%s.tmp", dir, basename(base),
			 (long)getpid(), rnd);
	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = config_reload_write_all(fd, text, len);
	if (r == 0 && fchmod(fd, mode) != 0)
		r = -errno;
	if (r == 0 && fsync(fd) != 0)
		r = -errno;
	if (close(fd) != 0 && r == 0)
		r = -errno;
	if (r != 0)
		unlink(*tmp);
out:
	if (r != 0) {
		free(*tmp);
		*tmp = NULL;
	}
	free(copy);
	free(base);
	return r;
}

/* rename tmp over path, then fsync the directory. */
static int config_reload_commit_file(const char *tmp, const char *path)
{
	char *copy;
	int dfd, r = 0;

	if (rename(tmp, path) != 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
	copy = xstrdup(path);
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) != 0)
			r = -errno;
		close(dfd);
	}
	free(copy);
	return r;
}

int config_write_atomic(const char *path, const char *text, size_t len)
{
	char *tmp = NULL;
	int r = config_reload_tmp_write(path, text, len, &tmp);

	if (r == 0)
		r = config_reload_commit_file(tmp, path);
	free(tmp);
	return r;
}

/* ---- snapshot rows ------------------------------------------------------ */

struct config_row {
	const char *hash;
	int64_t parent;
	const char *source, *actor, *method, *outcome, *reason;
	char *text;		/* redacted */
	char *paths;		/* JSON */
	int64_t restored_from;
};

/* Retention from meta.config_snapshots_keep (0 or absent = keep all). */
static int64_t config_reload_keep(struct config_reloader *r)
{
	char *v = NULL;
	int64_t keep = r->keep;

	if (r->store && store_meta_get(r->store, "config_snapshots_keep",
				       &v) == GW_OK && v)
		keep = strtoll(v, NULL, 10);
	free(v);
	return keep > 0 ? keep : 0;
}

/* Insert a row (durable); returns its id or 0. */
static int64_t config_reload_record(struct config_reloader *r,
				    struct config_row *row)
{
	struct store_config_row sr = {
		.hash = row->hash, .parent = row->parent,
		.source = row->source, .actor = row->actor,
		.method = row->method, .outcome = row->outcome,
		.reason = row->reason, .text = row->text, .paths = row->paths,
		.restored_from = row->restored_from,
	};
	int64_t id = 0;

	if (!r->store)
		return 0;
	if (store_config_add(r->store, &sr, config_reload_keep(r), &id) !=
	    GW_OK)
		log_warn("reload", "cannot record config snapshot");
	return id;
}

/* ---- the reloader ------------------------------------------------------- */

struct config_reloader *config_reloader_new(const struct config_reloader_opts
					    *o)
{
	struct config_reloader *r = xcalloc(1, sizeof(*r));

	pthread_mutex_init(&r->mu, NULL);
	r->path = xstrdup(o->path);
	r->ov = o->ov;
	r->store = o->store;
	r->keep = o->keep;
	r->cbs = o->cbs;
	return r;
}

void config_reloader_free(struct config_reloader *r)
{
	if (!r)
		return;
	if (config_reloader_global() == r)
		config_reloader_set_global(NULL);
	pthread_mutex_destroy(&r->mu);
	free(r->path);
	free(r);
}

const char *config_reloader_path(const struct config_reloader *r)
{
	return r->path;
}

void config_reloader_lock(struct config_reloader *r)
{
	pthread_mutex_lock(&r->mu);
}

void config_reloader_unlock(struct config_reloader *r)
{
	pthread_mutex_unlock(&r->mu);
}

/* "a.b: msg; c: msg" of the issues (bounded). Owned. */
static char *config_reload_issues_text(const struct config_issues *is)
{
	char buf[CONFIG_RELOAD_ISSUES_MAX];
	size_t off = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < is->n && off < sizeof(buf) - 1; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s: %s",
					i ? "; " : "", is->v[i].path,
					is->v[i].message);
	return xstrdup(buf);
}

static int config_reload_hash_differs(const char *raw, size_t len,
				      const char *hash)
{
	char h[65];

	util_sha256_hex(raw, len, h);
	return strcmp(h, hash) != 0;
}

char *config_reloader_started(struct config_reloader *r,
			      const struct gw_config *cfg,
			      const char *source, const char *reason,
			      size_t *len)
{
	struct config_row row = {0};
	char *raw = NULL;

	*len = 0;
	pthread_mutex_lock(&r->mu);
	if (config_read_file(r->path, &raw, len) <= 0 ||
	    config_reload_hash_differs(raw, *len, cfg->hash)) {
		if (raw)
			explicit_bzero(raw, *len);
		free(raw);
		raw = NULL;
		*len = 0;
	}
	if (raw)
		row.text = config_redact_text(raw, *len);
	row.hash = cfg->hash;
	row.parent = 0;
	row.source = source ? source : "startup";
	row.actor = "gateway";
	row.outcome = "started";
	row.reason = reason;
	r->current_id = config_reload_record(r, &row);
	free(row.text);
	pthread_mutex_unlock(&r->mu);
	return raw;
}

/* The overrides for a load: a generated token stays across reloads. */
static void config_reload_overrides(const struct config_reloader *r,
				    const struct gw_config *cur,
				    struct config_overrides *ov)
{
	static const struct config_overrides none;

	*ov = r->ov ? *r->ov : none;
	if (cur && cur->auth_token_generated)
		ov->generated_token = cur->auth_token;
}

static void config_reload_changed(struct config_reloader *r,
				  const struct config_req *req,
				  const struct config_result *res)
{
	json_t *p;

	if (!r->cbs.changed)
		return;
	p = json_pack("{s:s,s:I,s:s,s:s*,s:s,s:o,s:I}", "hash", res->hash,
		      "snapshotId", (json_int_t)res->snapshot_id, "source",
		      req->source, "actor", req->actor, "outcome",
		      config_outcome_name(res->outcome), "changes",
		      config_plan_json(&res->plan), "ts",
		      (json_int_t)util_now_ms());
	r->cbs.changed(p, r->cbs.arg);
}

static void config_reload_pause_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0 || ms > 5000)
		ms = 300;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* pre (may be NULL, consumed): a config config_reloader_write_locked
 * loaded from the bytes it then wrote. When the file still holds those
 * bytes it is used as is, so that the providers of its SecretRefs are not
 * run a second time (the preflight's resolution is the reload's). */
static int config_reloader_run_pre(struct config_reloader *r,
				   const struct config_req *req,
				   struct config_result *res,
				   struct gw_config *pre)
{
	struct gw_config *cur = config_current(), *neu = NULL;
	struct config_overrides ov;
	struct config_row row = {0};
	enum config_reload_mode mode;
	json_t *pj;
	char *raw = NULL, *paths = NULL, *rpaths = NULL;
	size_t len = 0;
	int rd, r_ = GW_OK, explicit_req, reread = 0;

	memset(res, 0, sizeof(*res));
	explicit_req = strcmp(req->source, "file") != 0;
again:
	res->outcome = CONFIG_OUT_UNCHANGED;
	free(raw);
	raw = NULL;
	rd = config_read_file(r->path, &raw, &len);
	if (rd == 0) {
		if (cur && cur->file_exists && !r->missing)
			log_warn("reload", "config file %s was removed; keeping "
				 "the running config", r->path);
		r->missing = cur && cur->file_exists;
		res->outcome = cur && cur->file_exists ? CONFIG_OUT_MISSING
						       : CONFIG_OUT_UNCHANGED;
		goto out;
	}
	r->missing = 0;
	/* An empty file is a write in progress (an editor's truncate
	 * before its write), never a config: wait for the next change
	 * instead of recording a rejection. */
	if (rd > 0 && len == 0 && !explicit_req) {
		log_info("reload", "config file %s is empty (a write in "
			 "progress?); waiting for the next change", r->path);
		goto out;
	}
	if (rd < 0) {
		log_warn("reload", "config reload skipped (cannot read %s: %s)",
			 r->path, strerror(-rd));
		res->outcome = CONFIG_OUT_REJECTED;
		res->reason = xasprintf("cannot read: %s", strerror(-rd));
		r_ = GW_EIO;
		goto out;
	}
	util_sha256_hex(raw, len, res->hash);
	/* Same bytes: nothing to do (touch, our own write seen again). An
	 * explicit request (SIGHUP, RPC) still re-resolves the secrets. */
	if (!explicit_req && cur && strcmp(res->hash, cur->hash) == 0)
		goto out;
	if (!explicit_req && strcmp(res->hash, r->rejected_hash) == 0)
		goto out;

	if (pre && strcmp(pre->hash, res->hash) == 0) {
		neu = pre;
		pre = NULL;
		free(neu->path);
		neu->path = xstrdup(r->path);
		goto loaded;
	}
	config_reload_overrides(r, cur, &ov);
	if (config_load(r->path, &ov, &neu, &res->issues) != GW_OK &&
	    !explicit_req && !reread) {
		/* An editor may still be writing in place (the file read
		 * empty or cut): look once more after the debounce before
		 * rejecting; a file that changed meanwhile is evaluated
		 * afresh. */
		reread = 1;
		config_reload_pause_ms(cur ? cur->reload_debounce_ms : 300);
		config_issues_free(&res->issues);
		free(raw);
		raw = NULL;
		rd = config_read_file(r->path, &raw, &len);
		if (rd <= 0 || config_reload_hash_differs(raw, len, res->hash))
			goto again;
		if (config_load(r->path, &ov, &neu, &res->issues) == GW_OK)
			goto loaded;
	}
	if (neu == NULL) {
		res->outcome = CONFIG_OUT_REJECTED;
		res->reason = config_reload_issues_text(&res->issues);
		log_warn("reload", "config reload skipped (invalid config): %s",
			 res->reason);
		memcpy(r->rejected_hash, res->hash, sizeof(r->rejected_hash));
		row.text = config_redact_text(raw, len);
		row.hash = res->hash;
		row.parent = r->current_id;
		row.source = req->source;
		row.actor = req->actor;
		row.method = req->method;
		row.outcome = "rejected";
		row.reason = res->reason;
		res->snapshot_id = config_reload_record(r, &row);
		r_ = GW_ECONFIG;
		goto out;
	}
loaded:
	r->rejected_hash[0] = 0;
	/* The loaded file is the truth (it may have changed since our
	 * read): keep its hash and text together. */
	memcpy(res->hash, neu->hash, sizeof(res->hash));
	config_plan_build(cur, neu, &res->plan);
	if (res->plan.n == 0 && cur && strcmp(neu->hash, cur->hash) == 0 &&
	    !req->force_restart && !config_secrets_changed(cur, neu))
		goto out;
	free(raw);
	raw = NULL;
	if (config_read_file(r->path, &raw, &len) > 0)
		row.text = config_redact_text(raw, len);

	paths = config_plan_paths(&res->plan, -1);
	if (res->plan.n)
		log_info("reload", "config change detected; evaluating reload "
			 "(%s)", paths);
	mode = config_reload_mode_parse(neu->reload_mode);
	/* off gates the file watcher only: SIGHUP, RPC writes and rollback
	 * are explicit requests and apply as hybrid. */
	if (mode == CONFIG_MODE_OFF && explicit_req)
		mode = CONFIG_MODE_HYBRID;
	if (req->force_restart)
		mode = CONFIG_MODE_RESTART;
	rpaths = config_plan_paths(&res->plan, CONFIG_RELOAD_RESTART);
	switch (mode) {
	case CONFIG_MODE_OFF:
		res->outcome = CONFIG_OUT_SKIPPED;
		res->reason = xstrdup("gateway.reload.mode=off");
		log_info("reload", "config reload disabled "
			 "(gateway.reload.mode=off)");
		break;
	case CONFIG_MODE_HOT:
		res->outcome = res->plan.restart ? CONFIG_OUT_PENDING
						 : CONFIG_OUT_APPLIED;
		if (res->plan.restart) {
			log_warn("reload", "config reload requires gateway "
				 "restart; hot mode ignoring (%s)", rpaths);
			res->reason = xasprintf("restart needed: %s", rpaths);
		}
		break;
	case CONFIG_MODE_RESTART:
		res->outcome = CONFIG_OUT_RESTART;
		break;
	case CONFIG_MODE_HYBRID:
		res->outcome = res->plan.restart ? CONFIG_OUT_RESTART
						 : CONFIG_OUT_APPLIED;
		break;
	}
	if (res->outcome == CONFIG_OUT_RESTART)
		log_info("reload", "config change requires gateway restart "
			 "(%s)", res->plan.restart ? rpaths :
			 req->force_restart ? "config.apply" : paths);

	/* Commit the snapshot row before the swap: what runs is recorded. */
	row.hash = res->hash;
	row.parent = r->current_id;
	row.source = req->source;
	row.actor = req->actor;
	row.method = req->method;
	row.outcome = config_outcome_name(res->outcome);
	row.reason = res->reason;
	row.restored_from = req->parent;
	pj = config_plan_json(&res->plan);
	row.paths = json_dumps(pj, JSON_COMPACT);
	json_decref(pj);
	res->snapshot_id = config_reload_record(r, &row);
	if (res->outcome == CONFIG_OUT_SKIPPED) {
		config_reload_changed(r, req, res);
		goto out;
	}
	if (res->snapshot_id)
		r->current_id = res->snapshot_id;

	config_set_current(neu);
	if (r->cbs.apply)
		r->cbs.apply(cur, neu, &res->plan, r->cbs.arg);
	if (res->outcome == CONFIG_OUT_APPLIED ||
	    res->outcome == CONFIG_OUT_PENDING)
		log_info("reload", "config hot reload applied (%s)",
			 res->plan.n ? paths : "no effective changes");
	config_reload_changed(r, req, res);
	if (res->outcome == CONFIG_OUT_RESTART && r->cbs.restart) {
		char reason[200];

		snprintf(reason, sizeof(reason), "config change (%s)",
			 res->plan.restart ? rpaths : paths);
		r->cbs.restart(reason, r->cbs.arg);
	}
out:
	free(row.text);
	free(row.paths);
	free(paths);
	free(rpaths);
	free(raw);
	config_unref(pre);
	config_unref(neu);
	config_unref(cur);
	return r_;
}

int config_reloader_run_locked(struct config_reloader *r,
			       const struct config_req *req,
			       struct config_result *res)
{
	return config_reloader_run_pre(r, req, res, NULL);
}

int config_reloader_run(struct config_reloader *r,
			const struct config_req *req,
			struct config_result *res)
{
	int rc;

	pthread_mutex_lock(&r->mu);
	rc = config_reloader_run_locked(r, req, res);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* Load text as if it were the file (a temp file next to it, so $include
 * resolves the same way). */
static int config_reload_load_text(struct config_reloader *r,
				   const char *text, size_t len,
				   struct gw_config **out, char **tmp_keep,
				   struct config_issues *is)
{
	struct gw_config *cur = config_current();
	struct config_overrides ov;
	char *tmp = NULL;
	int rc;

	*out = NULL;
	rc = config_reload_tmp_write(r->path, text, len, &tmp);
	if (rc != 0) {
		config_issues_add(is, "<root>", "cannot write a temporary "
				  "file next to %s: %s", r->path,
				  strerror(-rc));
		config_unref(cur);
		return GW_EIO;
	}
	config_reload_overrides(r, cur, &ov);
	rc = config_load(tmp, &ov, out, is);
	config_unref(cur);
	if (rc == GW_OK && tmp_keep) {
		*tmp_keep = tmp;
		return GW_OK;
	}
	unlink(tmp);
	free(tmp);
	return rc;
}

int config_reloader_write_locked(struct config_reloader *r, const char *text,
				 size_t len, const struct config_req *req,
				 struct config_result *res)
{
	struct gw_config *c = NULL;
	char *tmp = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = config_reload_load_text(r, text, len, &c, &tmp, &res->issues);
	if (rc != GW_OK) {
		res->outcome = CONFIG_OUT_REJECTED;
		res->reason = config_reload_issues_text(&res->issues);
		return rc == GW_EIO ? GW_EIO : GW_ECONFIG;
	}
	rc = config_reload_commit_file(tmp, r->path);
	free(tmp);
	if (rc != 0) {
		config_unref(c);
		log_warn("reload", "cannot write %s: %s", r->path,
			 strerror(-rc));
		config_issues_add(&res->issues, "<root>", "cannot write %s: %s",
				  r->path, strerror(-rc));
		res->outcome = CONFIG_OUT_REJECTED;
		return GW_EIO;
	}
	log_info("reload", "config written by %s (%s)",
		 req->actor ? req->actor : "?", req->method ? req->method :
		 req->source);
	config_issues_free(&res->issues);
	return config_reloader_run_pre(r, req, res, c);
}

int config_reloader_plan_text(struct config_reloader *r, const char *text,
			      size_t len, struct config_result *res)
{
	struct gw_config *c = NULL, *cur;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = config_reload_load_text(r, text, len, &c, NULL, &res->issues);
	if (rc != GW_OK) {
		res->outcome = CONFIG_OUT_REJECTED;
		res->reason = config_reload_issues_text(&res->issues);
		return GW_ECONFIG;
	}
	cur = config_current();
	config_plan_build(cur, c, &res->plan);
	util_sha256_hex(text, len, res->hash);
	res->outcome = res->plan.restart ? CONFIG_OUT_RESTART
		       : res->plan.n ? CONFIG_OUT_APPLIED
				     : CONFIG_OUT_UNCHANGED;
	config_unref(cur);
	config_unref(c);
	return GW_OK;
}

/* ---- history ------------------------------------------------------------ */

json_t *config_reloader_history(struct config_reloader *r, int limit)
{
	json_t *a = NULL, *row;
	size_t i;

	if (limit <= 0 || limit > CONFIG_RELOAD_HISTORY_MAX)
		limit = CONFIG_RELOAD_HISTORY_MAX;
	if (!r->store || store_config_history(r->store, limit, &a) != GW_OK)
		return json_array();
	json_array_foreach(a, i, row)
		json_object_set_new(row, "current", json_boolean(
			json_integer_value(json_object_get(row, "id")) ==
			r->current_id));
	return a;
}

int config_reloader_snapshot_text(struct config_reloader *r, int64_t id,
				  char **text, int64_t *out_id)
{
	struct gw_config *cur;
	int rc;

	*text = NULL;
	if (!r->store)
		return GW_EUNAVAIL;
	cur = config_current();
	rc = store_config_text(r->store, id, r->current_id > 0 ?
			       r->current_id : INT64_MAX,
			       cur ? cur->hash : "", text, out_id);
	config_unref(cur);
	return rc;
}
