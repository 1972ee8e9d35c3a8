/* Channel subsystem: the adapter table, accounts and their lifecycle, the
 * one event-loop thread (epoll + eventfd, timers from a sorted deadline,
 * no polling), the inbound path and the operator surface. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/agent.h"
#include "channel/channel-int.h"
#include "channel/channel-policy.h"
#include "channel/irc-line.h"
#include "config/config.h"
#include "secrets/secrets.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-channels.h"
#include "store/store.h"

#define CHANNEL_PAIR_TTL_MS 3600000
#define CHANNEL_PAIR_CAP 3
#define CHANNEL_READY_GRACE_MS 30000
#define CHANNEL_RECOVER_MAX 1000
/* Runs in flight or queued per account; beyond it messages are dropped
 * ("overloaded") so that a flood cannot queue unbounded work. */
#define CHANNEL_MAX_RUNS 64
/* Ingress rows are kept 30 days (pruned when the subsystem starts). */
#define CHANNEL_INGRESS_KEEP_MS (30LL * 24 * 3600 * 1000)
#define CHANNEL_MAX_EVENTS 32
#define CHANNEL_TEXT_MAX 16384	/* inbound text kept per message */

/* The adapters: one file each (channel-<id>.c). */
static const struct channel_adapter *const channel_adapters[] = {
	&channel_irc_adapter,
};

struct channel_cmd {
	void (*fn)(struct channels *c, void *arg);
	void *arg;
	struct channel_cmd *next;
};

struct channels {
	struct channels_opts o;
	pthread_t thread;
	int thread_ok;
	int epfd, evfd;
	struct channel_io evio;
	pthread_mutex_t mu;		/* accounts list + status fields */
	struct chan_account *accounts;
	pthread_mutex_t qmu;		/* command queue */
	struct channel_cmd *qhead, *qtail;
	int closed;			/* under qmu: posts refused */
	struct channel_timer *timers;	/* loop thread */
	atomic_int stopping;
	json_t *root;			/* config root of the last apply */
};

static _Atomic(struct channels *) channels_g;

void channels_set_global(struct channels *c)
{
	atomic_store(&channels_g, c);
}

struct channels *channels_global(void)
{
	return atomic_load(&channels_g);
}

static const struct channel_adapter *channel_adapter_find(const char *id)
{
	for (size_t i = 0; i < ARRAY_SIZE(channel_adapters); i++)
		if (strcasecmp(channel_adapters[i]->id, id) == 0)
			return channel_adapters[i];
	return NULL;
}

/* ---- loop: commands, io, timers ---------------------------------------- */

/* Queue fn for the loop thread. -1 once the loop has quit (fn will never
 * run: the caller still owns arg); every command queued before that runs
 * (the loop drains its queue before it returns). */
static int channel_post(struct channels *c,
			void (*fn)(struct channels *c, void *arg), void *arg)
{
	struct channel_cmd *k;
	uint64_t one = 1;

	pthread_mutex_lock(&c->qmu);
	if (c->closed) {
		pthread_mutex_unlock(&c->qmu);
		return -1;
	}
	k = xcalloc(1, sizeof(*k));
	k->fn = fn;
	k->arg = arg;
	if (c->qtail)
		c->qtail->next = k;
	else
		c->qhead = k;
	c->qtail = k;
	pthread_mutex_unlock(&c->qmu);
	if (write(c->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("channels", "eventfd write: %s", strerror(errno));
	return 0;
}

/* A command the caller waits for (never from the loop thread). */
struct channel_call {
	void (*fn)(struct channels *c, void *arg);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void channel_call_run(struct channels *c, void *arg)
{
	struct channel_call *k = arg;

	k->fn(c, k->arg);
	pthread_mutex_lock(&k->mu);
	k->done = 1;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

static void channel_call(struct channels *c,
			 void (*fn)(struct channels *c, void *arg), void *arg)
{
	struct channel_call k = { .fn = fn, .arg = arg };

	if (pthread_equal(pthread_self(), c->thread)) {
		fn(c, arg);
		return;
	}
	pthread_mutex_init(&k.mu, NULL);
	pthread_cond_init(&k.cv, NULL);
	/* After channels_quit fn does not run (the stop order makes every
	 * caller stop first: reloads, workers, the cron thread). */
	if (channel_post(c, channel_call_run, &k) != 0)
		k.done = 1;
	pthread_mutex_lock(&k.mu);
	while (!k.done)
		pthread_cond_wait(&k.cv, &k.mu);
	pthread_mutex_unlock(&k.mu);
	pthread_mutex_destroy(&k.mu);
	pthread_cond_destroy(&k.cv);
}

int channel_io_add(struct chan_account *a, struct channel_io *io,
		   uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	return epoll_ctl(a->c->epfd, EPOLL_CTL_ADD, io->fd, &ev);
}

int channel_io_mod(struct chan_account *a, struct channel_io *io,
		   uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	return epoll_ctl(a->c->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void channel_io_del(struct chan_account *a, struct channel_io *io)
{
	if (io->fd >= 0)
		epoll_ctl(a->c->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

void channel_timer_cancel(struct chan_account *a, struct channel_timer *t)
{
	struct channel_timer **pp;

	for (pp = &a->c->timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->at = 0;
	t->next = NULL;
}

void channel_timer_set(struct chan_account *a, struct channel_timer *t,
		       int64_t delay_ms)
{
	struct channel_timer **pp;

	channel_timer_cancel(a, t);
	t->at = util_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
	if (t->at == 0)
		t->at = 1;
	for (pp = &a->c->timers; *pp && (*pp)->at <= t->at;
	     pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
}

static void channel_run_cmds(struct channels *c)
{
	struct channel_cmd *k;
	uint64_t v;

	if (read(c->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("channels", "eventfd read: %s", strerror(errno));
	for (;;) {
		pthread_mutex_lock(&c->qmu);
		k = c->qhead;
		if (k) {
			c->qhead = k->next;
			if (!c->qhead)
				c->qtail = NULL;
		}
		pthread_mutex_unlock(&c->qmu);
		if (!k)
			break;
		k->fn(c, k->arg);
		free(k);
	}
}

static void *channel_main(void *arg)
{
	struct channels *c = arg;
	struct epoll_event ev[CHANNEL_MAX_EVENTS];

	while (!atomic_load(&c->stopping)) {
		int timeout = -1, n, i, cmds;
		int64_t now = util_mono_ms();

		if (c->timers) {
			int64_t w = c->timers->at - now;

			timeout = w < 0 ? 0 : (w > 3600000 ? 3600000 : (int)w);
		}
		n = epoll_wait(c->epfd, ev, CHANNEL_MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("channels", "epoll_wait: %s",
				  strerror(errno));
			break;
		}
		/* Commands run after the batch's I/O: a command may stop an
		 * account and free the io an event of this batch points to. */
		cmds = 0;
		for (i = 0; i < n; i++) {
			struct channel_io *io = ev[i].data.ptr;

			if (io == &c->evio)
				cmds = 1;
			else
				io->cb(io, ev[i].events);
		}
		if (cmds)
			channel_run_cmds(c);
		now = util_mono_ms();
		while (c->timers && c->timers->at <= now) {
			struct channel_timer *t = c->timers;

			c->timers = t->next;
			t->next = NULL;
			t->at = 0;
			t->cb(t);
		}
	}
	channel_run_cmds(c);
	return NULL;
}

/* ---- status helpers for adapters ----------------------------------------- */

static void channel_emit(struct chan_account *a, const char *type,
			 json_t *extra)
{
	json_t *p;

	if (!a->c->o.on_event) {
		json_decref(extra);
		return;
	}
	p = json_pack("{s:s,s:s,s:s,s:I}", "channel", a->channel,
		      "accountId", a->id, "type", type, "ts",
		      (json_int_t)util_now_ms());
	if (extra)
		json_object_update(p, extra);
	json_decref(extra);
	a->c->o.on_event(a->c->o.arg, p);
}

void channel_account_connected(struct chan_account *a, int connected,
			       const char *error)
{
	pthread_mutex_lock(&a->c->mu);
	a->connected = connected;
	if (connected) {
		a->last_connected_at = util_now_ms();
		a->reconnect_attempts = 0;
		free(a->last_error);
		a->last_error = NULL;
	} else if (error) {
		free(a->last_error);
		a->last_error = xstrdup(error);
	}
	pthread_mutex_unlock(&a->c->mu);
	log_info("channels", "%s:%s %s%s%s", a->channel, a->id,
		 connected ? "connected" : "disconnected",
		 error ? ": " : "", error ? error : "");
	channel_emit(a, connected ? "connected" : "disconnected",
		     error ? json_pack("{s:s}", "error", error) : NULL);
}

void channel_account_error(struct chan_account *a, const char *error)
{
	pthread_mutex_lock(&a->c->mu);
	free(a->last_error);
	a->last_error = error ? xstrdup(error) : NULL;
	pthread_mutex_unlock(&a->c->mu);
	if (error)
		channel_emit(a, "error", json_pack("{s:s}", "error", error));
}

void channel_account_outbound(struct chan_account *a)
{
	pthread_mutex_lock(&a->c->mu);
	a->last_outbound_at = util_now_ms();
	a->last_activity_at = a->last_outbound_at;
	pthread_mutex_unlock(&a->c->mu);
}

void channel_account_attempts(struct chan_account *a, int n)
{
	pthread_mutex_lock(&a->c->mu);
	a->reconnect_attempts = n;
	pthread_mutex_unlock(&a->c->mu);
}

/* ---- accounts ------------------------------------------------------------- */

static struct chan_account *channel_account_find(struct channels *c,
						 const char *channel,
						 const char *id)
{
	struct chan_account *a;

	for (a = c->accounts; a; a = a->next)
		if (strcasecmp(a->channel, channel) == 0 &&
		    (!id || strcmp(a->id, id) == 0))
			return a;
	return NULL;
}

static struct chan_account *channel_account_default(struct channels *c,
						    const char *channel)
{
	struct chan_account *a;

	for (a = c->accounts; a; a = a->next)
		if (strcasecmp(a->channel, channel) == 0 && a->is_default)
			return a;
	return channel_account_find(c, channel, NULL);
}

/* Loop thread. */
static void channel_account_start(struct chan_account *a)
{
	int r;

	if (a->running || !a->enabled || !a->configured)
		return;
	pthread_mutex_lock(&a->c->mu);
	a->running = 1;
	a->last_start_at = util_now_ms();
	pthread_mutex_unlock(&a->c->mu);
	r = a->ad->start(a);
	if (r != 0) {
		pthread_mutex_lock(&a->c->mu);
		a->running = 0;
		pthread_mutex_unlock(&a->c->mu);
	}
	log_info("channels", "%s:%s started", a->channel, a->id);
}

static void channel_account_stop(struct chan_account *a)
{
	if (!a->running)
		return;
	a->ad->stop(a);
	pthread_mutex_lock(&a->c->mu);
	a->running = 0;
	a->connected = 0;
	a->last_stop_at = util_now_ms();
	pthread_mutex_unlock(&a->c->mu);
	log_info("channels", "%s:%s stopped", a->channel, a->id);
	channel_emit(a, "stopped", NULL);
}

static void channel_account_free(struct chan_account *a)
{
	if (!a)
		return;
	free(a->channel);
	free(a->id);
	json_decref(a->cfg);
	json_decref(a->root);
	free(a->last_error);
	free(a);
}

/* The desired accounts of one config root. */
struct channel_want {
	const struct channel_adapter *ad;
	char *id;
	json_t *cfg;
	int is_default;
	struct channel_want *next;
};

/* An account's secret fields are owners of the secrets snapshot: the
 * resolved value replaces the field in the account's config (so a changed
 * value restarts the account); a cold one sets "_secretError" and the
 * adapter does not connect. A field that holds no active ref keeps its
 * config value. */
static const char *const channel_secret_fields[] = {
	"password", "nickserv.password",
};

static void channel_secrets(const struct gw_config *gc, const json_t *root,
			    const char *chan, const char *acct, json_t *cfg)
{
	for (size_t i = 0; i < ARRAY_SIZE(channel_secret_fields); i++) {
		const char *f = channel_secret_fields[i], *val = NULL;
		char *path = xasprintf("channels.%s.accounts.%s.%s", chan,
				       acct, f), why[400];
		json_t *parent = cfg;
		const char *leaf = f;
		int r;

		if (!config_get(root, path)) {
			free(path);
			path = xasprintf("channels.%s.%s", chan, f);
		}
		r = secrets_lookup(gc, path, &val, why, sizeof(why));
		if (strchr(f, '.')) {
			parent = json_object_get(cfg, "nickserv");
			leaf = strchr(f, '.') + 1;
		}
		if (r == GW_OK && json_is_object(parent))
			json_object_set_new(parent, leaf, json_string(val));
		else if (r == GW_EUNAVAIL &&
			 !json_object_get(cfg, "_secretError"))
			json_object_set_new(cfg, "_secretError",
					    json_string(why));
		free(path);
	}
}

static struct channel_want *channel_wanted(const struct gw_config *gc,
					   const json_t *root)
{
	const json_t *chans = json_object_get(root, "channels");
	struct channel_want *list = NULL, *w;

	for (size_t i = 0; i < ARRAY_SIZE(channel_adapters); i++) {
		const struct channel_adapter *ad = channel_adapters[i];
		const json_t *ch = json_object_get(chans, ad->id);
		const json_t *accts = json_object_get(ch, "accounts");
		const char *def = json_string_value(json_object_get(ch,
							"defaultAccount"));
		const char *k;
		json_t *v;
		int any = 0;

		if (!def)
			def = "default";
		/* The channel-wide keys are the default account (inherited
		 * by the named ones), unless accounts.<default> says more. */
		any = ch && (json_object_get(ch, "host") ||
			     json_object_get(ch, "nick"));
		json_object_foreach((json_t *)accts, k, v) {
			if (!json_is_object(v))
				continue;
			if (strcmp(k, def) == 0)
				any = 0;
			w = xcalloc(1, sizeof(*w));
			w->ad = ad;
			w->id = xstrdup(k);
			w->is_default = strcmp(k, def) == 0;
			w->cfg = ad->resolve(ch, k, w->is_default);
			channel_secrets(gc, root, ad->id, k, w->cfg);
			w->next = list;
			list = w;
		}
		if (any || (!json_object_size(accts) &&
			    (ch || getenv("IRC_HOST")))) {
			w = xcalloc(1, sizeof(*w));
			w->ad = ad;
			w->id = xstrdup(def);
			w->is_default = 1;
			w->cfg = ad->resolve(ch, def, 1);
			channel_secrets(gc, root, ad->id, def, w->cfg);
			w->next = list;
			list = w;
		}
	}
	return list;
}

static void channel_wanted_free(struct channel_want *w)
{
	while (w) {
		struct channel_want *n = w->next;

		free(w->id);
		json_decref(w->cfg);
		free(w);
		w = n;
	}
}

struct channel_apply {
	struct channel_want *want;
	json_t *root;
};

static void channel_recover(struct channels *c, struct chan_account *a);
static void channel_after_ingest(struct channels *c, void *arg);

static int channel_cfg_enabled(const json_t *cfg)
{
	const json_t *e = json_object_get(cfg, "enabled");

	return e ? json_is_true(e) : 1;
}

static void channel_apply_run(struct channels *c, void *arg)
{
	struct channel_apply *ap = arg;
	struct chan_account **pp, *a;
	struct channel_want *w;
	int fresh = 0;

	/* Removed accounts: stop and unlink. */
	for (pp = &c->accounts; *pp;) {
		a = *pp;
		for (w = ap->want; w; w = w->next)
			if (w->ad == a->ad && strcmp(w->id, a->id) == 0)
				break;
		if (w) {
			pp = &a->next;
			continue;
		}
		/* Unlinked first: once the network sees it leave, status no
		 * longer lists it. */
		pthread_mutex_lock(&c->mu);
		*pp = a->next;
		pthread_mutex_unlock(&c->mu);
		channel_account_stop(a);
		channel_account_free(a);
	}
	for (w = ap->want; w; w = w->next) {
		a = channel_account_find(c, w->ad->id, w->id);
		if (a && json_equal(a->cfg, w->cfg)) {
			pthread_mutex_lock(&c->mu);
			json_decref(a->root);
			a->root = json_incref(ap->root);
			a->is_default = w->is_default;
			pthread_mutex_unlock(&c->mu);
			continue;
		}
		if (a) {
			/* Changed subtree: restart this account only. */
			channel_account_stop(a);
		} else {
			fresh = 1;
			a = xcalloc(1, sizeof(*a));
			a->c = c;
			a->ad = w->ad;
			a->channel = xstrdup(w->ad->id);
			a->id = xstrdup(w->id);
			pthread_mutex_lock(&c->mu);
			a->next = c->accounts;
			c->accounts = a;
			pthread_mutex_unlock(&c->mu);
		}
		pthread_mutex_lock(&c->mu);
		json_decref(a->cfg);
		a->cfg = json_incref(w->cfg);
		json_decref(a->root);
		a->root = json_incref(ap->root);
		a->is_default = w->is_default;
		a->enabled = channel_cfg_enabled(w->cfg);
		a->configured = w->ad->configured(w->cfg);
		pthread_mutex_unlock(&c->mu);
		if (fresh)
			channel_recover(c, a);
		fresh = 0;
		if (!a->manual_stop)
			channel_account_start(a);
	}
}

void channels_apply(struct channels *c, const struct gw_config *cfg)
{
	struct channel_apply ap;

	if (!c)
		return;
	ap.root = json_incref(cfg ? cfg->root : NULL);
	if (!ap.root)
		ap.root = json_object();
	ap.want = channel_wanted(cfg, ap.root);
	channel_call(c, channel_apply_run, &ap);
	pthread_mutex_lock(&c->mu);
	json_decref(c->root);
	c->root = ap.root;
	pthread_mutex_unlock(&c->mu);
	channel_wanted_free(ap.want);
}

/* ---- inbound: ingress row -> policy -> pairing -> dispatch ---------------- */

struct channel_job {
	struct channels *c;
	char *channel, *account, *conversation, *sender, *nick, *text;
	char *bot_nick;
	int is_dm;
	json_t *cfg, *root;
	int64_t received_at;
	/* results (writer thread) */
	int64_t id;
	enum channel_verdict verdict;
	const char *reason;
	char *code;
	int created;
	char *session_key;
	char *agent_id;
};

static void channel_job_free(struct channel_job *j)
{
	if (!j)
		return;
	free(j->channel);
	free(j->account);
	free(j->conversation);
	free(j->sender);
	free(j->nick);
	free(j->text);
	free(j->bot_nick);
	json_decref(j->cfg);
	json_decref(j->root);
	free(j->code);
	free(j->session_key);
	free(j->agent_id);
	free(j);
}

static int channel_ingest_fn(sqlite3 *db, void *arg)
{
	struct channel_job *j = arg;
	struct store_channel_msg m = { j->channel, j->account,
				       j->conversation, j->sender, j->is_dm,
				       j->text, j->received_at };
	struct channel_policy_in in = { 0 };
	const char *status = NULL;
	int r, paired = 0;

	free(j->code);
	j->code = NULL;
	j->created = 0;
	r = store_channels_ingress_add_tx(db, &m, &j->id);
	if (r)
		return r;
	if (j->is_dm) {
		r = store_channels_allowed_tx(db, j->channel, j->account,
					      j->sender, &paired);
		if (r)
			return r;
	}
	in.acct = j->cfg;
	in.root = j->root;
	in.is_dm = j->is_dm;
	in.sender = j->sender;
	in.nick = j->nick;
	in.target = j->conversation;
	in.text = j->text;
	in.bot_nick = j->bot_nick;
	in.paired = paired;
	j->verdict = channel_policy_decide(&in, &j->reason);
	if (j->verdict == CHANNEL_DROP) {
		status = "dropped";
	} else if (j->verdict == CHANNEL_PAIR) {
		char *meta = NULL;
		json_t *mj = json_pack("{s:s,s:s}", "nick", j->nick,
				       "accountId", j->account);

		meta = json_dumps(mj, JSON_COMPACT);
		json_decref(mj);
		status = "pairing";
		r = store_channels_pair_request_tx(db, j->channel, j->account,
			j->sender, meta, util_now_ms(), CHANNEL_PAIR_TTL_MS,
			CHANNEL_PAIR_CAP, &j->code, &j->created);
		free(meta);
		if (r)
			return r;
	}
	if (status)
		r = store_channels_ingress_mark_tx(db, j->id, status,
						   j->reason, NULL, NULL);
	return r;
}

/* Session key and agent of an accepted message, as OpenClaw routes:
 * bindings (peer, then account, then channel), session.dmScope and
 * session.groupScope (the binding's session.* wins). */
static void channel_route(struct channels *c, struct channel_job *j)
{
	const json_t *binds = json_object_get(j->root, "bindings");
	const json_t *sess = json_object_get(j->root, "session");
	const json_t *best = NULL, *b;
	const char *kind = j->is_dm ? "direct" : "group";
	const char *agent, *scope;
	char *peer;
	int best_rank = 0;
	size_t i;

	json_array_foreach(binds, i, b) {
		const json_t *m = json_object_get(b, "match");
		const char *ch = json_string_value(json_object_get(m,
							"channel"));
		const char *acc = json_string_value(json_object_get(m,
							"accountId"));
		const json_t *p = json_object_get(m, "peer");
		int rank;

		if (!ch || strcasecmp(ch, j->channel) != 0)
			continue;
		if (acc && strcmp(acc, "*") != 0 &&
		    strcmp(acc, j->account) != 0)
			continue;
		if (p) {
			const char *pk = json_string_value(json_object_get(p,
							   "kind"));
			const char *pid = json_string_value(json_object_get(p,
							    "id"));

			if (!pk || !pid)
				continue;
			if (strcmp(pk, kind) != 0 &&
			    !(strcmp(pk, "channel") == 0 && !j->is_dm))
				continue;
			if (strcmp(pid, "*") == 0)
				rank = 3;
			else if (irc_line_casecmp(pid, j->conversation) == 0)
				rank = 4;
			else
				continue;
		} else {
			rank = acc && strcmp(acc, "*") != 0 ? 2 : 1;
		}
		if (rank > best_rank) {
			best_rank = rank;
			best = b;
		}
	}
	agent = json_string_value(json_object_get(best, "agentId"));
	if (!agent || !agent_exists(c->o.agents, agent))
		agent = agent_default_id(c->o.agents);
	j->agent_id = irc_line_lower(agent);
	peer = irc_line_lower(j->conversation);
	if (j->is_dm) {
		scope = json_string_value(json_object_get(json_object_get(
				best, "session"), "dmScope"));
		if (!scope)
			scope = json_string_value(json_object_get(sess,
								  "dmScope"));
		if (!scope || strcmp(scope, "main") == 0)
			j->session_key = xasprintf("agent:%s:main",
						   j->agent_id);
		else if (strcmp(scope, "per-peer") == 0)
			j->session_key = xasprintf("agent:%s:direct:%s",
						   j->agent_id, peer);
		else if (strcmp(scope, "per-channel-peer") == 0)
			j->session_key = xasprintf("agent:%s:%s:direct:%s",
						   j->agent_id, j->channel,
						   peer);
		else
			j->session_key = xasprintf("agent:%s:%s:%s:direct:%s",
						   j->agent_id, j->channel,
						   j->account, peer);
	} else {
		scope = json_string_value(json_object_get(json_object_get(
				best, "session"), "groupScope"));
		if (!scope)
			scope = json_string_value(json_object_get(sess,
								  "groupScope"));
		if (scope && strcmp(scope, "main") == 0)
			j->session_key = xasprintf("agent:%s:main",
						   j->agent_id);
		else
			j->session_key = xasprintf("agent:%s:%s:group:%s",
						   j->agent_id, j->channel,
						   peer);
	}
	free(peer);
}

/* One run's consumer: the answer goes back where the message came from. */
struct channel_reply {
	struct channels *c;
	char *channel, *account, *target;
	int64_t ingress_id;
	struct run_sink sink;
	char *text;
	int ok;
};

static void channel_reply_free(struct channel_reply *rp)
{
	free(rp->channel);
	free(rp->account);
	free(rp->target);
	free(rp->text);
	free(rp);
}

static void channel_reply_send(struct channels *c, void *arg)
{
	struct channel_reply *rp = arg;
	struct chan_account *a = channel_account_find(c, rp->channel,
						      rp->account);
	char *err = NULL;

	if (a) {
		pthread_mutex_lock(&c->mu);
		if (a->active_runs > 0)
			a->active_runs--;
		pthread_mutex_unlock(&c->mu);
	}
	if (rp->ok && rp->text && *rp->text) {
		if (!a || !a->running) {
			log_warn("channels", "%s:%s gone; answer to %s dropped",
				 rp->channel, rp->account, rp->target);
		} else {
			char *plain = irc_line_markdown(rp->text);

			if (a->ad->send(a, rp->target, plain, &err) != 0) {
				log_warn("channels", "%s:%s send to %s: %s",
					 rp->channel, rp->account, rp->target,
					 err ? err : "failed");
				free(err);
			}
			free(plain);
		}
	}
	channel_reply_free(rp);
}

static void channel_reply_on_end(void *arg, const struct run_result *res)
{
	struct channel_reply *rp = arg;

	rp->ok = res->status == RUN_OK;
	rp->text = xstrdup(res->text ? res->text : "");
	store_channels_ingress_mark(rp->c->o.store, rp->ingress_id,
				    rp->ok ? "answered" : "failed",
				    rp->ok ? NULL : res->error, NULL, NULL);
	if (!rp->ok)
		log_warn("channels", "%s:%s run for %s: %s", rp->channel,
			 rp->account, rp->target,
			 res->error ? res->error : "failed");
	if (atomic_load(&rp->c->stopping) ||
	    channel_post(rp->c, channel_reply_send, rp) != 0)
		channel_reply_free(rp);
}

static void channel_dispatch(struct channels *c, struct channel_job *j)
{
	struct run_request rq = { 0 };
	struct channel_reply *rp;
	struct chan_account *a;
	struct run *r = NULL;
	char *err = NULL;
	int rc;

	channel_route(c, j);
	rp = xcalloc(1, sizeof(*rp));
	rp->c = c;
	rp->channel = xstrdup(j->channel);
	rp->account = xstrdup(j->account);
	rp->target = xstrdup(j->conversation);
	rp->ingress_id = j->id;
	rp->sink.on_end = channel_reply_on_end;
	rp->sink.arg = rp;
	rq.agent_id = j->agent_id;
	rq.session_key = j->session_key;
	rq.messages = json_pack("[{s:s,s:s}]", "role", "user", "content",
				j->text);
	rq.use_history = 1;
	rq.channel = j->channel;
	/* groups["#room"].systemPrompt: extra system text for that room. */
	if (!j->is_dm)
		rq.extra_system = json_string_value(json_object_get(
			channel_policy_group_cfg(j->cfg, j->conversation),
			"systemPrompt"));
	a = channel_account_find(c, j->channel, j->account);
	if (a && a->active_runs >= CHANNEL_MAX_RUNS) {
		log_warn("channels", "%s: drop %s %s (overloaded: %d runs)",
			 j->channel, j->sender, j->conversation,
			 a->active_runs);
		store_channels_ingress_mark(c->o.store, j->id, "dropped",
					    "overloaded", j->session_key,
					    NULL);
		json_decref(rq.messages);
		channel_reply_free(rp);
		return;
	}
	if (a) {
		pthread_mutex_lock(&c->mu);
		a->active_runs++;
		pthread_mutex_unlock(&c->mu);
	}
	rc = c->o.agents ? run_start(c->o.agents, &rq, &rp->sink, &r, &err)
			 : GW_EUNAVAIL;
	if (rc != GW_OK) {
		log_warn("channels", "%s:%s cannot start a run for %s: %s",
			 j->channel, j->account, j->conversation,
			 err ? err : gw_err_str(rc));
		store_channels_ingress_mark(c->o.store, j->id, "failed",
					    err ? err : gw_err_str(rc),
					    j->session_key, NULL);
		free(err);
		if (a) {
			pthread_mutex_lock(&c->mu);
			a->active_runs--;
			pthread_mutex_unlock(&c->mu);
		}
		channel_reply_free(rp);
		return;
	}
	store_channels_ingress_mark(c->o.store, j->id, "dispatched", NULL,
				    j->session_key, run_id(r));
	run_unref(r);
}

static void channel_pair_reply(struct channels *c, struct channel_job *j)
{
	struct chan_account *a = channel_account_find(c, j->channel,
						      j->account);
	char *msg, *err = NULL;

	if (!a || !a->running)
		return;
	msg = xasprintf("OpenClaw: access not configured.\n"
			"Your IRC id: %s\n"
			"Pairing code: %s\n"
			"Ask the bot owner to approve with: openclaw pairing "
			"approve %s %s", j->sender, j->code, j->channel,
			j->code);
	if (a->ad->send(a, j->nick, msg, &err) != 0) {
		log_warn("channels", "%s:%s pairing reply: %s", j->channel,
			 j->account, err ? err : "failed");
		free(err);
	}
	free(msg);
}

/* An account seen for the first time in this process: messages an
 * earlier process accepted but did not answer (it died in between) are
 * dispatched again, in order. Pending DMs are not: IRC nicks change
 * owners, so they are marked discarded (as OpenClaw does). */
static void channel_recover(struct channels *c, struct chan_account *a)
{
	json_t *rows = NULL, *row;
	size_t i;

	if (store_channels_ingress_unfinished(c->o.store, a->channel, a->id,
					      CHANNEL_RECOVER_MAX, &rows)
	    != GW_OK)
		return;
	json_array_foreach(rows, i, row) {
		struct channel_job *j;
		int64_t id = json_integer_value(json_object_get(row, "id"));
		char nick[64];

		if (json_is_true(json_object_get(row, "isDm"))) {
			store_channels_ingress_mark(c->o.store, id,
						    "discarded", "restart",
						    NULL, NULL);
			continue;
		}
		j = xcalloc(1, sizeof(*j));
		j->c = c;
		j->id = id;
		j->channel = xstrdup(a->channel);
		j->account = xstrdup(a->id);
		j->conversation = xstrdup(json_string_value(json_object_get(
					  row, "conversation")));
		j->sender = xstrdup(json_string_value(json_object_get(row,
							  "sender")));
		irc_line_nick(j->sender, nick, sizeof(nick));
		j->nick = xstrdup(nick);
		j->text = xstrdup(json_string_value(json_object_get(row,
							"text")));
		j->bot_nick = xstrdup("");
		j->cfg = json_incref(a->cfg);
		j->root = json_incref(a->root);
		j->verdict = CHANNEL_ACCEPT;
		j->reason = "";
		log_info("channels", "%s:%s recovering message %lld from %s",
			 a->channel, a->id, (long long)id, j->sender);
		/* After the account is up: the answer needs a connection. */
		if (channel_post(c, channel_after_ingest, j) != 0)
			channel_job_free(j);
	}
	json_decref(rows);
}

/* Loop thread: what the ingest transaction decided. */
static void channel_after_ingest(struct channels *c, void *arg)
{
	struct channel_job *j = arg;
	struct chan_account *acc = channel_account_find(c, j->channel,
							j->account);

	if (acc)
		channel_emit(acc, "message", json_pack(
			"{s:I,s:s,s:s,s:b,s:s,s:s,s:b}", "ingressId",
			(json_int_t)j->id, "conversation", j->conversation,
			"senderId", j->sender, "isDm", j->is_dm, "status",
			j->verdict == CHANNEL_ACCEPT ? "dispatched" :
			j->verdict == CHANNEL_PAIR ? "pairing" : "dropped",
			"reason", j->reason, "codeSent", j->created));
	switch (j->verdict) {
	case CHANNEL_ACCEPT:
		channel_dispatch(c, j);
		break;
	case CHANNEL_PAIR:
		if (j->created) {
			log_info("channels", "%s: pairing request from %s "
				 "(code sent)", j->channel, j->sender);
			channel_pair_reply(c, j);
			{
				struct chan_account *a = channel_account_find(
					c, j->channel, j->account);

				if (a)
					channel_emit(a, "pairing.requested",
						json_pack("{s:s}", "senderId",
							  j->sender));
			}
		} else {
			log_info("channels", "%s: drop dm sender %s (%s%s)",
				 j->channel, j->sender, j->reason,
				 j->code ? ", request pending" :
				 ", pairing capped");
		}
		break;
	case CHANNEL_DROP:
		log_info("channels", "%s: drop %s %s %s (%s)", j->channel,
			 j->is_dm ? "dm sender" : "group sender", j->sender,
			 j->is_dm ? "" : j->conversation, j->reason);
		break;
	}
	channel_job_free(j);
}

static void channel_ingest_done(int rc, void *arg)
{
	struct channel_job *j = arg;

	if (rc != GW_OK) {
		log_error("channels", "%s:%s ingress write failed (%s); "
			  "message from %s dropped", j->channel, j->account,
			  gw_err_str(rc), j->sender);
		channel_job_free(j);
		return;
	}
	if (atomic_load(&j->c->stopping) ||
	    channel_post(j->c, channel_after_ingest, j) != 0)
		channel_job_free(j);
}

void channel_inbound(struct chan_account *a, const struct channel_inbound *m)
{
	struct channel_job *j = xcalloc(1, sizeof(*j));
	size_t tl = strlen(m->text);

	pthread_mutex_lock(&a->c->mu);
	a->last_inbound_at = util_now_ms();
	a->last_activity_at = a->last_inbound_at;
	pthread_mutex_unlock(&a->c->mu);
	j->c = a->c;
	j->channel = xstrdup(a->channel);
	j->account = xstrdup(a->id);
	j->conversation = xstrdup(m->conversation);
	j->sender = xstrdup(m->sender);
	j->nick = xstrdup(m->nick);
	j->text = xstrndup(m->text, tl > CHANNEL_TEXT_MAX ? CHANNEL_TEXT_MAX
							  : tl);
	j->bot_nick = xstrdup(m->bot_nick ? m->bot_nick : "");
	j->is_dm = m->is_dm;
	j->cfg = json_incref(a->cfg);
	j->root = json_incref(a->root);
	j->received_at = util_now_ms();
	if (store_write(a->c->o.store, channel_ingest_fn, j,
			channel_ingest_done) != GW_OK) {
		log_error("channels", "%s:%s store closing; message from %s "
			  "dropped", a->channel, a->id, m->sender);
		channel_job_free(j);
	}
}

/* ---- lifecycle -------------------------------------------------------------- */

int channels_new(const struct channels_opts *o, struct channels **out)
{
	struct channels *c = xcalloc(1, sizeof(*c));

	*out = NULL;
	c->o = *o;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->qmu, NULL);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->epfd < 0 || c->evfd < 0)
		goto fail;
	c->evio.fd = c->evfd;
	{
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.ptr = &c->evio };

		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev) != 0)
			goto fail;
	}
	if (pthread_create(&c->thread, NULL, channel_main, c) != 0)
		goto fail;
	c->thread_ok = 1;
	{
		int removed = 0;

		if (store_channels_ingress_prune(c->o.store, util_now_ms() -
						 CHANNEL_INGRESS_KEEP_MS,
						 &removed) == GW_OK && removed)
			log_info("channels", "pruned %d ingress rows older "
				 "than 30 days", removed);
	}
	*out = c;
	return GW_OK;
fail:
	log_error("channels", "cannot start the channel loop: %s",
		  strerror(errno));
	channels_free(c);
	return GW_EINTERNAL;
}

static void channel_stop_all(struct channels *c, void *arg)
{
	struct chan_account *a;

	(void)arg;
	for (a = c->accounts; a; a = a->next)
		channel_account_stop(a);
}

/* The loop's last command: later posts are refused, the ones queued
 * before this still run (channel_run_cmds drains the queue). */
static void channel_quit(struct channels *c, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&c->qmu);
	c->closed = 1;
	pthread_mutex_unlock(&c->qmu);
	atomic_store(&c->stopping, 1);
}

void channels_quit(struct channels *c)
{
	if (!c || !c->thread_ok)
		return;
	channel_call(c, channel_stop_all, NULL);
	/* Ingress jobs already queued finish before the loop goes. */
	store_flush(c->o.store);
	channel_post(c, channel_quit, NULL);
	pthread_join(c->thread, NULL);
	c->thread_ok = 0;
}

void channels_free(struct channels *c)
{
	struct chan_account *a;

	if (!c)
		return;
	channels_quit(c);
	while ((a = c->accounts)) {
		c->accounts = a->next;
		channel_account_free(a);
	}
	while (c->qhead) {
		struct channel_cmd *k = c->qhead;

		c->qhead = k->next;
		free(k);	/* late replies: their args leak-free below */
	}
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->evfd >= 0)
		close(c->evfd);
	json_decref(c->root);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->qmu);
	free(c);
}

/* ---- operator surface ------------------------------------------------------- */

static json_t *channel_opt_ms(int64_t v)
{
	return v ? json_integer(v) : json_null();
}

/* Under c->mu. */
static json_t *channel_account_snapshot(struct chan_account *a)
{
	json_t *s = json_object();
	json_t *allow = json_object_get(a->cfg, "allowFrom");

	json_object_set_new(s, "accountId", json_string(a->id));
	json_object_set_new(s, "enabled", json_boolean(a->enabled));
	json_object_set_new(s, "configured", json_boolean(a->configured));
	json_object_set_new(s, "running", json_boolean(a->running));
	json_object_set_new(s, "connected", json_boolean(a->connected));
	json_object_set_new(s, "reconnectAttempts",
			    json_integer(a->reconnect_attempts));
	json_object_set_new(s, "lastConnectedAt",
			    channel_opt_ms(a->last_connected_at));
	json_object_set_new(s, "lastError", a->last_error ?
			    json_string(a->last_error) : json_null());
	json_object_set_new(s, "healthState", json_string(
		!a->enabled ? "disabled" : !a->configured ? "unconfigured" :
		!a->running ? "stopped" : a->connected ? "healthy" :
		"disconnected"));
	json_object_set_new(s, "lastStartAt",
			    channel_opt_ms(a->last_start_at));
	json_object_set_new(s, "lastStopAt", channel_opt_ms(a->last_stop_at));
	json_object_set_new(s, "lastInboundAt",
			    channel_opt_ms(a->last_inbound_at));
	json_object_set_new(s, "lastOutboundAt",
			    channel_opt_ms(a->last_outbound_at));
	json_object_set_new(s, "lastTransportActivityAt",
			    channel_opt_ms(a->last_activity_at));
	json_object_set_new(s, "busy", json_boolean(a->active_runs > 0));
	json_object_set_new(s, "activeRuns", json_integer(a->active_runs));
	json_object_set_new(s, "dmPolicy",
			    json_string(channel_policy_dm(a->cfg)));
	json_object_set_new(s, "allowFrom", json_is_array(allow) ?
			    json_deep_copy(allow) : json_array());
	json_object_set_new(s, "allowUnmentionedGroups", json_false());
	if (a->last_probe_at)
		json_object_set_new(s, "lastProbeAt",
				    json_integer(a->last_probe_at));
	if (a->ad->status)
		a->ad->status(a, s);
	return s;
}

struct channel_probe {
	const char *channel;
	json_t *probes;		/* "<channel>\n<account>" -> probe */
};

static void channel_probe_run(struct channels *c, void *arg)
{
	struct channel_probe *p = arg;
	struct chan_account *a;

	for (a = c->accounts; a; a = a->next) {
		char *k;

		if (p->channel && strcasecmp(a->channel, p->channel) != 0)
			continue;
		if (!a->running || !a->ad->probe)
			continue;
		k = xasprintf("%s\n%s", a->channel, a->id);
		json_object_set_new(p->probes, k, a->ad->probe(a));
		free(k);
		pthread_mutex_lock(&c->mu);
		a->last_probe_at = util_now_ms();
		pthread_mutex_unlock(&c->mu);
	}
}

json_t *channels_status(struct channels *c, const char *channel, int probe,
			int64_t timeout_ms)
{
	json_t *r = json_object(), *order = json_array(), *labels =
		json_object(), *dlabels = json_object(), *chans = json_object(),
		*accts = json_object(), *defs = json_object(),
		*meta = json_array();
	struct channel_probe p = { channel, json_object() };
	struct chan_account *a;

	(void)timeout_ms;
	if (c && probe)
		channel_call(c, channel_probe_run, &p);
	for (size_t i = 0; i < ARRAY_SIZE(channel_adapters); i++) {
		const struct channel_adapter *ad = channel_adapters[i];
		json_t *list = json_array(), *sum;
		const char *def = NULL;
		int configured = 0, running = 0, connected = 0;

		if (channel && strcasecmp(channel, ad->id) != 0)
			continue;
		if (c) {
			pthread_mutex_lock(&c->mu);
			for (a = c->accounts; a; a = a->next) {
				json_t *s;
				char *k;

				if (a->ad != ad)
					continue;
				s = channel_account_snapshot(a);
				k = xasprintf("%s\n%s", a->channel, a->id);
				if (json_object_get(p.probes, k))
					json_object_set(s, "probe",
						json_object_get(p.probes, k));
				free(k);
				json_array_append_new(list, s);
				configured |= a->configured;
				running |= a->running;
				connected |= a->connected;
				if (a->is_default || !def)
					def = a->id;
			}
			if (def)
				json_object_set_new(defs, ad->id,
						    json_string(def));
			pthread_mutex_unlock(&c->mu);
		}
		if (!json_array_size(list)) {
			json_decref(list);
			continue;
		}
		json_array_append_new(order, json_string(ad->id));
		json_object_set_new(labels, ad->id, json_string(ad->label));
		json_object_set_new(dlabels, ad->id,
				    json_string(ad->detail_label));
		json_array_append_new(meta, json_pack("{s:s,s:s,s:s}", "id",
			ad->id, "label", ad->label, "detailLabel",
			ad->detail_label));
		sum = json_pack("{s:b,s:b,s:b}", "configured", configured,
				"running", running, "connected", connected);
		json_object_set_new(chans, ad->id, sum);
		json_object_set_new(accts, ad->id, list);
	}
	json_decref(p.probes);
	json_object_set_new(r, "ts", json_integer(util_now_ms()));
	json_object_set_new(r, "channelOrder", order);
	json_object_set_new(r, "channelLabels", labels);
	json_object_set_new(r, "channelDetailLabels", dlabels);
	json_object_set_new(r, "channelMeta", meta);
	json_object_set_new(r, "channels", chans);
	json_object_set_new(r, "channelAccounts", accts);
	json_object_set_new(r, "channelDefaultAccountId", defs);
	return r;
}

struct channel_ctl {
	const char *channel, *account;
	int start;
	int found;
};

static void channel_ctl_run(struct channels *c, void *arg)
{
	struct channel_ctl *k = arg;
	struct chan_account *a;

	for (a = c->accounts; a; a = a->next) {
		if (strcasecmp(a->channel, k->channel) != 0 ||
		    (k->account && strcmp(a->id, k->account) != 0))
			continue;
		k->found++;
		if (k->start) {
			a->manual_stop = 0;
			channel_account_start(a);
		} else {
			a->manual_stop = 1;
			channel_account_stop(a);
		}
	}
}

static int channel_ctl(struct channels *c, const char *channel,
		       const char *account, int start, char **err)
{
	struct channel_ctl k = { channel, account && *account ? account : NULL,
				 start, 0 };

	*err = NULL;
	if (!channel_adapter_find(channel)) {
		*err = xasprintf("unknown channel: %s", channel);
		return GW_EINVAL;
	}
	channel_call(c, channel_ctl_run, &k);
	if (!k.found) {
		*err = k.account ? xasprintf("unknown %s account: %s",
					     channel, k.account)
				 : xasprintf("channel %s is not configured",
					     channel);
		return GW_EINVAL;
	}
	return GW_OK;
}

int channels_start(struct channels *c, const char *channel,
		   const char *account, char **err)
{
	return channel_ctl(c, channel, account, 1, err);
}

int channels_stop(struct channels *c, const char *channel,
		  const char *account, char **err)
{
	return channel_ctl(c, channel, account, 0, err);
}

struct channel_send {
	const char *channel, *account, *target, *text;
	int rc;
	char *err;
	char *account_used;
};

static void channel_send_run(struct channels *c, void *arg)
{
	struct channel_send *k = arg;
	struct chan_account *a = k->account ?
		channel_account_find(c, k->channel, k->account) :
		channel_account_default(c, k->channel);
	char *plain;

	if (!a) {
		k->rc = GW_EINVAL;
		k->err = xasprintf("unknown %s account: %s", k->channel,
				   k->account ? k->account : "default");
		return;
	}
	if (!a->running || !a->connected) {
		k->rc = GW_EUNAVAIL;
		k->err = xasprintf("%s account %s is not %s", k->channel,
				   a->id, a->running ? "connected" :
				   "running");
		return;
	}
	plain = irc_line_markdown(k->text);
	k->account_used = xstrdup(a->id);
	k->rc = a->ad->send(a, k->target, plain, &k->err) == 0 ? GW_OK
							       : GW_EUNAVAIL;
	free(plain);
}

int channels_send(struct channels *c, const char *channel,
		  const char *account, const char *target, const char *text,
		  json_t **result, char **err)
{
	struct channel_send k = { channel, account && *account ? account :
				  NULL, target, text, 0, NULL, NULL };
	char id[37];

	*result = NULL;
	*err = NULL;
	if (!channel_adapter_find(channel)) {
		*err = xasprintf("unsupported channel: %s", channel);
		return GW_EINVAL;
	}
	channel_call(c, channel_send_run, &k);
	if (k.rc != GW_OK) {
		*err = k.err;
		free(k.account_used);
		return k.rc;
	}
	util_uuid(id);
	*result = json_pack("{s:s,s:s,s:s,s:s}", "messageId", id, "channel",
			    channel, "chatId", target, "accountId",
			    k.account_used);
	free(k.account_used);
	return GW_OK;
}

json_t *channels_pairing_accounts(struct channels *c, const char *channel,
				  const char *account)
{
	json_t *out = json_array();
	struct chan_account *a;

	if (!c)
		return out;
	pthread_mutex_lock(&c->mu);
	for (a = c->accounts; a; a = a->next) {
		if (channel && strcasecmp(a->channel, channel) != 0)
			continue;
		if (account && strcmp(a->id, account) != 0)
			continue;
		if (strcmp(channel_policy_dm(a->cfg), "pairing") != 0)
			continue;
		json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:b}",
			"channel", a->channel, "channelLabel", a->ad->label,
			"accountId", a->id, "notifySupported", 1));
	}
	pthread_mutex_unlock(&c->mu);
	return out;
}

int channels_healthy(struct channels *c, json_t **detail)
{
	struct chan_account *a;
	json_t *d = json_object();
	int ok = 1;

	if (c) {
		pthread_mutex_lock(&c->mu);
		for (a = c->accounts; a; a = a->next) {
			json_t *ch = json_object_get(d, a->channel);
			int want = a->enabled && a->configured &&
				   !a->manual_stop;

			if (!ch) {
				ch = json_object();
				json_object_set_new(d, a->channel, ch);
			}
			json_object_set_new(ch, a->id, json_pack(
				"{s:b,s:b,s:o}", "running", a->running,
				"connected", a->connected, "lastError",
				a->last_error ? json_string(a->last_error)
					      : json_null()));
			/* A grace period after (re)start: connecting takes
			 * a moment; after it a down account fails. */
			if (want && !a->connected && a->last_start_at &&
			    util_now_ms() - a->last_start_at >
			    CHANNEL_READY_GRACE_MS)
				ok = 0;
		}
		pthread_mutex_unlock(&c->mu);
	}
	if (detail)
		*detail = d;
	else
		json_decref(d);
	return ok;
}

struct store *channels_store(struct channels *c)
{
	return c->o.store;
}

void channels_health_fill(struct channels *c, json_t *health)
{
	json_t *chans, *order, *labels, *detail = NULL;
	const char *k;
	json_t *v;

	if (!c)
		return;
	channels_healthy(c, &detail);
	chans = json_object();
	order = json_array();
	labels = json_object();
	json_object_foreach(detail, k, v) {
		const struct channel_adapter *ad = channel_adapter_find(k);
		int running = 0, connected = 0;
		const char *ak;
		json_t *av;

		json_object_foreach(v, ak, av) {
			running |= json_is_true(json_object_get(av,
							"running"));
			connected |= json_is_true(json_object_get(av,
							  "connected"));
		}
		json_object_set_new(chans, k, json_pack("{s:b,s:b,s:b,s:O}",
			"configured", 1, "running", running, "connected",
			connected, "accounts", v));
		json_array_append_new(order, json_string(k));
		json_object_set_new(labels, k, json_string(ad ? ad->label
							      : k));
	}
	json_decref(detail);
	json_object_set_new(health, "channels", chans);
	json_object_set_new(health, "channelOrder", order);
	json_object_set_new(health, "channelLabels", labels);
}
