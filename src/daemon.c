/* The composition root of `gateway run`: config, state dir lock, log file,
 * store, identity, presence, the transports and the two faces; then signals
 * until a graceful shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "config.h"

#include "agent/agent.h"
#include "agent/curl-dl.h"
#include "agent/run-lane.h"
#include "api/api.h"
#include "api/api-ui.h"
#include "channel/channel.h"
#include "auth/auth.h"
#include "auth/identity.h"
#include "auth/limiter.h"
#include "auth/pairing.h"
#include "config/config-reload.h"
#include "config/config-watch.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "cron/cron.h"
#include "daemon.h"
#include "net/http.h"
#include "net/listener.h"
#include "net/ws.h"
#include "presence/presence.h"
#include "rpc/rpc.h"
#include "secrets/secrets.h"
#include "service/service.h"
#include "store/store.h"

/* The upstream release whose protocol and frames we match. */
#define DAEMON_COMPAT_VERSION "2026.9.6"
#define DAEMON_EXIT_CONFIG 78
#define DAEMON_BIND_RETRIES 4
#define DAEMON_BIND_RETRY_MS 250
#define DAEMON_LOCK_TIMEOUT_MS 1000
#define DAEMON_MAX_BUFFERED (50u * 1024 * 1024)

struct daemon {
	struct config_paths paths;
	struct gw_config *cfg;
	int lock_fd;
	char *lock_path;
	struct store *store;
	struct identity_lazy *identity;
	struct pairing *pairing;
	struct limiter *limiter;
	struct workq *workers;
	struct ws_server *ws;
	struct http_server *http;
	struct listener *listener;
	struct rpc_server *rpc;
	struct api *api;
	struct agent_rt *agents;	/* agent runtime (runs, sessions) */
	struct cron *cron;		/* automations scheduler */
	struct channels *channels;	/* channel connections (IRC) */
	char boot_id[37];
	char *listening;
	char *build_id;
	int64_t start_mono;
	volatile int ready;
	/* Config lifecycle (reload + restart): */
	const struct daemon_opts *opts;
	struct config_reloader *reloader;
	struct config_watch *watch;
	int restarting;		/* daemon_stop keeps the listen sockets */
	char *restart_reason;	/* pending restart (restart_mu) */
	int64_t restart_at;	/* monotonic ms when it is due; 0 = none */
	int64_t last_restart_wall; /* wall ms of the last restart */
};

static int64_t daemon_env_ms(const char *name, int64_t def)
{
	const char *v = getenv(name);
	char *end;
	long long n;

	if (!v || !*v)
		return def;
	n = strtoll(v, &end, 10);
	if (*end || n <= 0)
		return def;
	return n;
}

/* CLAWGATE_SCHED=batch: the daemon's threads run SCHED_BATCH (default:
 * the policy it was started with). Threads so scheduled do not preempt
 * the running thread when woken: on a host where the gateway and its
 * clients share the cores, its threads then take several hand-offs per
 * wake-up (context switches per chat.send run 2.8 -> 1.4); but next to
 * a process that keeps a core busy, a woken gateway thread waits for
 * the scheduler's tick (a chat completion's p50 went from +0.1 to +2 ms
 * next to two busy loops; tests/bench/README.md, "SCHED_BATCH"), hence
 * not the default. A policy chosen outside the gateway (chrt, systemd's
 * CPUSchedulingPolicy=) is kept. Called before any thread starts:
 * threads inherit the policy of the thread that creates them. What was
 * done, for the log. */
static const char *daemon_sched(void)
{
	const char *v = getenv("CLAWGATE_SCHED");
	struct sched_param sp = {0};
	int cur = sched_getscheduler(0);

	if (!v || !*v || strcmp(v, "normal") == 0)
		return cur == SCHED_OTHER ? "SCHED_OTHER" :
		       cur == SCHED_BATCH ? "SCHED_BATCH (as started)" :
		       "as started (a policy chosen outside the gateway)";
	if (strcmp(v, "batch") != 0)
		return "as started (CLAWGATE_SCHED is neither \"batch\" "
		       "nor \"normal\")";
	if (cur != SCHED_OTHER && cur != SCHED_BATCH)
		return "as started (a policy chosen outside the gateway)";
	if (cur == SCHED_OTHER && sched_setscheduler(0, SCHED_BATCH, &sp))
		return "SCHED_OTHER (SCHED_BATCH was refused)";
	return "SCHED_BATCH (CLAWGATE_SCHED=batch)";
}

/* A positive int from the environment, else 0 (the callee's default). */
static int daemon_env_int(const char *name)
{
	int64_t v = daemon_env_ms(name, 0);

	return v > 0 && v < (1 << 30) ? (int)v : 0;
}

/* Sockets a held stream costs: its client's and, for a provider reached
 * over plain http (HTTP/1.1: a connection per request in flight), its
 * upstream's. https providers multiplex the streams over a few HTTP/2
 * connections (a server that only speaks HTTP/1.1 over TLS gets a 502
 * for the request that finds no descriptor left). No provider yet: two. */
static int daemon_sockets_per_stream(const json_t *root)
{
	const json_t *ps = config_get(root, "models.providers"), *p;
	const char *k, *base;

	if (!json_object_size(ps))
		return 2;
	json_object_foreach((json_t *)ps, k, p) {
		base = json_string_value(json_object_get(p, "baseUrl"));
		if (!base || strncasecmp(base, "https://", 8) != 0)
			return 2;
	}
	return 1;
}

/* systemd readiness without libsystemd (src/service/service-notify.c). */
static void daemon_sd_notify(const char *msg)
{
	if (strcmp(msg, "READY=1") == 0)
		service_notify_ready("ready");
	else if (strcmp(msg, "RELOADING=1") == 0)
		service_notify_reloading();
	else if (strcmp(msg, "STOPPING=1") == 0)
		service_notify_stopping();
	else
		service_notify(msg);
}

static int daemon_mkdirs(const char *dir)
{
	char *p = xstrdup(dir), *s;
	int r = 0;

	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
	}
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		r = -errno;
	free(p);
	return r;
}

/* Keep a generated token in <state_dir>/gateway.token (0600). */
static void daemon_token_keep(struct daemon *d)
{
	char *cur = NULL;
	int r;

	if (service_token_read(d->paths.state_dir, &cur) == 1 &&
	    strcmp(cur, d->cfg->auth_token) == 0) {
		xfree_secret(cur);
		return;
	}
	xfree_secret(cur);
	r = service_token_write(d->paths.state_dir, d->cfg->auth_token);
	if (r < 0)
		log_warn("gateway", "cannot keep the gateway token in %s: %s "
			 "(it changes on the next start)", d->paths.state_dir,
			 strerror(-r));
}

/* The last banner line: the Control UI URL with the token fragment
 * (stdout only, never the log). Under systemd stdout is the journal:
 * the token stays out of it. */
static void daemon_print_dashboard(struct daemon *d)
{
	const char *t = d->cfg->auth_mode == AUTH_MODE_TOKEN
				? d->cfg->auth_token : NULL;
	const unsigned char *p;
	char base[256];

	if (api_ui_banner(d->cfg, stdout, base, sizeof(base)) != 0) {
		fflush(stdout);
		return;		/* gateway.controlUi.enabled: false */
	}
	if (getenv("INVOCATION_ID") || getenv("NOTIFY_SOCKET")) {
		printf("Dashboard: http://127.0.0.1:%d%s/ (the URL with the "
		       "token: clawgate dashboard)\n", d->cfg->port, base);
		fflush(stdout);
		return;
	}
	printf("Dashboard: http://127.0.0.1:%d%s/", d->cfg->port, base);
	if (t && *t) {
		printf("#token=");
		for (p = (const unsigned char *)t; *p; p++) {
			if ((*p >= 'A' && *p <= 'Z') ||
			    (*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
				putchar(*p);
			else
				printf("%%%02X", *p);
		}
	}
	printf("\n");
	fflush(stdout);
}

/* The state-dir lock: flock held for the process lifetime. */
static int daemon_lock(struct daemon *d)
{
	int64_t deadline = util_mono_ms() + DAEMON_LOCK_TIMEOUT_MS;
	char buf[512] = "";
	json_t *o;
	ssize_t n;
	long pid = 0;

	d->lock_path = xasprintf("%s/gateway.lock", d->paths.state_dir);
	d->lock_fd = open(d->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		fprintf(stderr, "cannot open lock file %s: %s\n", d->lock_path,
			strerror(errno));
		return -1;
	}
	while (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		struct timespec ts = {0, 50 * 1000000};

		if (util_mono_ms() >= deadline) {
			n = pread(d->lock_fd, buf, sizeof(buf) - 1, 0);
			if (n > 0) {
				buf[n] = 0;
				o = json_loads(buf, 0, NULL);
				pid = (long)json_integer_value(
					json_object_get(o, "pid"));
				json_decref(o);
			}
			fprintf(stderr, "gateway already running (pid %ld); "
				"lock timeout after %dms\n", pid,
				DAEMON_LOCK_TIMEOUT_MS);
			close(d->lock_fd);
			d->lock_fd = -1;
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void daemon_lock_write(struct daemon *d)
{
	json_t *o, *l = json_array();
	char *text, *p, *save = NULL, *copy = xstrdup(d->listening);
	static const char *const bind_names[] = {
		[BIND_LOOPBACK] = "loopback", [BIND_LAN] = "lan",
		[BIND_CUSTOM] = "custom", [BIND_AUTO] = "auto",
		[BIND_TAILNET] = "tailnet",
	};

	for (p = strtok_r(copy, ", ", &save); p; p = strtok_r(NULL, ", ", &save))
		json_array_append_new(l, json_string(p));
	free(copy);
	o = json_pack("{s:i,s:i,s:s,s:o,s:I,s:s,s:s}", "pid", (int)getpid(),
		      "port", d->cfg->port, "bind", bind_names[d->cfg->bind],
		      "listening", l, "startedAtMs", (json_int_t)util_now_ms(),
		      "configPath", d->paths.config_path, "stateDir",
		      d->paths.state_dir);
	text = json_dumps(o, JSON_COMPACT);
	if (ftruncate(d->lock_fd, 0) == 0 &&
	    pwrite(d->lock_fd, text, strlen(text), 0) < 0)
		log_warn("gateway", "cannot write %s: %s", d->lock_path,
			 strerror(errno));
	free(text);
	json_decref(o);
}

static void daemon_unlock(struct daemon *d)
{
	if (d->lock_fd < 0)
		return;
	if (ftruncate(d->lock_fd, 0) != 0)
		log_debug("gateway", "truncate lock: %s", strerror(errno));
	flock(d->lock_fd, LOCK_UN);
	close(d->lock_fd);
	d->lock_fd = -1;
}

/* ---- transport glue ----------------------------------------------------- */

static void daemon_to_ws(void *arg, int fd, const struct sockaddr *sa,
			 socklen_t salen)
{
	struct daemon *d = arg;

	(void)sa;
	(void)salen;
	ws_server_adopt(d->ws, fd);
}

static void daemon_to_http(void *arg, int fd, const struct sockaddr *sa,
			   socklen_t salen)
{
	struct daemon *d = arg;

	http_server_adopt(d->http, fd, sa, salen);
}

static int daemon_ready(char *failing, size_t n, void *arg)
{
	struct daemon *d = arg;

	if (!d->ready) {
		snprintf(failing, n, "gateway");
		return 0;
	}
	if (d->channels && !channels_healthy(d->channels, NULL)) {
		snprintf(failing, n, "channels");
		return 0;
	}
	return 1;
}

/* ---- persistence hooks (presence → store, async) ------------------------ */

struct daemon_pjob {
	char *key;
	json_t *entry;
	const char *kind;
};

static int daemon_pjob_run(sqlite3 *db, void *arg)
{
	struct daemon_pjob *j = arg;
	int r;

	if (j->entry) {
		r = store_presence_upsert_tx(db, j->key, j->entry);
		if (r != GW_OK)
			return r;
	}
	return store_state_version_bump_tx(db, j->kind, NULL);
}

static void daemon_pjob_done(int rc, void *arg)
{
	struct daemon_pjob *j = arg;

	if (rc != GW_OK && rc != GW_EUNAVAIL)
		log_warn("store", "presence write failed: %s", gw_err_str(rc));
	free(j->key);
	json_decref(j->entry);
	free(j);
}

static void daemon_persist(struct daemon *d, const char *kind,
			   const char *key, const json_t *entry)
{
	struct daemon_pjob *j;

	if (!d->store)
		return;
	j = xcalloc(1, sizeof(*j));
	j->kind = kind;
	j->key = key ? xstrdup(key) : NULL;
	j->entry = entry ? json_deep_copy(entry) : NULL;
	if (store_write(d->store, daemon_pjob_run, j, daemon_pjob_done) != GW_OK)
		daemon_pjob_done(GW_EUNAVAIL, j);
}

static void daemon_on_presence(const char *key, const json_t *entry,
			       int64_t version, void *arg)
{
	(void)version;
	daemon_persist(arg, "presence", key, entry);
}

static void daemon_on_health(int64_t version, void *arg)
{
	(void)version;
	daemon_persist(arg, "health", NULL, NULL);
}

/* ---- start-up ----------------------------------------------------------- */

static int daemon_bind_hosts(const struct gw_config *cfg, const char **hosts,
			     int *n)
{
	*n = 0;
	switch (cfg->bind) {
	case BIND_LOOPBACK:
	case BIND_AUTO:
		hosts[(*n)++] = "127.0.0.1";
		hosts[(*n)++] = "::1";
		return 0;
	case BIND_LAN:
		hosts[(*n)++] = "0.0.0.0";
		return 0;
	case BIND_CUSTOM:
		if (!cfg->custom_bind_host) {
			fprintf(stderr, "gateway.bind=custom requires a valid "
				"IPv4 customBindHost, got \"\"\n");
			return -1;
		}
		hosts[(*n)++] = cfg->custom_bind_host;
		if (strcmp(cfg->custom_bind_host, "127.0.0.1") != 0 &&
		    strcmp(cfg->custom_bind_host, "0.0.0.0") != 0)
			hosts[(*n)++] = "127.0.0.1";
		return 0;
	case BIND_TAILNET:
		fprintf(stderr, "gateway.bind=tailnet is not supported by "
			"clawgate (no Tailscale integration); bind loopback and "
			"use `tailscale serve`, or use lan/custom\n");
		return -1;
	}
	return -1;
}

static int daemon_is_loopback_host(const char *h)
{
	return strcmp(h, "::1") == 0 || strncmp(h, "127.", 4) == 0;
}

/* ---- config lifecycle: reload, restart, inherited sockets --------------- */

static void daemon_stop(struct daemon *d, int signo);
static void daemon_free(struct daemon *d);

#define DAEMON_RESTART_EXPECTED_MS 2000
#define DAEMON_RESTART_RPC_DELAY_MS 200
#define DAEMON_MAX_INHERIT 8
#define DAEMON_TRIM_MS 60000

/* Listen sockets inherited across a re-exec (CLAWGATE_LISTEN_FDS), parsed
 * once per process; owned here until a listener adopts them. */
static int daemon_inherit[DAEMON_MAX_INHERIT];
static int daemon_ninherit = -1;
static pthread_mutex_t daemon_restart_mu = PTHREAD_MUTEX_INITIALIZER;

static void daemon_inherit_parse(void)
{
	const char *v = getenv("CLAWGATE_LISTEN_FDS");
	char *copy, *save = NULL, *t;

	if (daemon_ninherit < 0)
		daemon_ninherit = 0;
	if (!v)
		return;
	copy = xstrdup(v);
	for (t = strtok_r(copy, ",", &save);
	     t && daemon_ninherit < DAEMON_MAX_INHERIT;
	     t = strtok_r(NULL, ",", &save)) {
		int fd = atoi(t), on = 0;
		socklen_t len = sizeof(on);

		if (fd > 2 && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on,
					 &len) == 0 && on) {
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			daemon_inherit[daemon_ninherit++] = fd;
		}
	}
	free(copy);
	unsetenv("CLAWGATE_LISTEN_FDS");
}

static void daemon_inherit_close(void)
{
	int i;

	for (i = 0; i < daemon_ninherit; i++)
		close(daemon_inherit[i]);
	daemon_ninherit = 0;
}

/* 1 if the inherited sockets are exactly hosts:port. */
static int daemon_inherit_match(const char *const *hosts, int n, int port)
{
	int i, j, hit;

	if (daemon_ninherit != n)
		return 0;
	for (i = 0; i < daemon_ninherit; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char a[INET6_ADDRSTRLEN] = "", b[INET6_ADDRSTRLEN];
		int p = 0;

		if (getsockname(daemon_inherit[i], (struct sockaddr *)&ss,
				&len) != 0)
			return 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
			p = ntohs(s4->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
			p = ntohs(s6->sin6_port);
		}
		if (p != port)
			return 0;
		for (j = 0, hit = 0; j < n && !hit; j++) {
			struct in6_addr x;
			struct in_addr y;

			/* normalise the configured host the same way */
			if (inet_pton(AF_INET6, hosts[j], &x) == 1)
				inet_ntop(AF_INET6, &x, b, sizeof(b));
			else if (inet_pton(AF_INET, hosts[j], &y) == 1)
				inet_ntop(AF_INET, &y, b, sizeof(b));
			else
				continue;
			hit = strcmp(a, b) == 0;
		}
		if (!hit)
			return 0;
	}
	return 1;
}

/* Port of the first inherited socket (-1 if none). */
static int daemon_inherit_port(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (daemon_ninherit <= 0 ||
	    getsockname(daemon_inherit[0], (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* Adopt the inherited sockets when they fit, else bind. */
static int daemon_listen(struct daemon *d, const char **hosts, int nhosts,
			 const char **failed)
{
	int r;

	daemon_inherit_parse();
	if (daemon_ninherit > 0 &&
	    daemon_inherit_match(hosts, nhosts, d->cfg->port)) {
		d->listener = listener_adopt(daemon_inherit, daemon_ninherit);
		if (d->listener) {
			log_info("gateway", "listening sockets inherited "
				 "across restart");
			daemon_ninherit = 0;
			return 0;
		}
	}
	/* Same port, other addresses: free the port before binding (else
	 * they stay open for a rollback retry). */
	if (daemon_ninherit > 0 && daemon_inherit_port() == d->cfg->port)
		daemon_inherit_close();
	r = listener_bind(&d->listener, hosts, nhosts, d->cfg->port,
			  DAEMON_BIND_RETRIES, DAEMON_BIND_RETRY_MS, failed);
	/* On failure the inherited sockets stay for a rollback retry. */
	if (r == 0)
		daemon_inherit_close();
	return r;
}

/* Restart when due: at most one per cooldown (the storm guard). */
static void daemon_request_restart(struct daemon *d, const char *reason,
				   int64_t delay_ms)
{
	int64_t now = util_mono_ms(), at = now + delay_ms, since;
	int64_t cooldown = daemon_env_ms("CLAWGATE_RESTART_COOLDOWN_MS",
					 CONFIG_RESTART_COOLDOWN_MS);

	if (d->last_restart_wall > 0) {
		since = util_now_ms() - d->last_restart_wall;
		if (since >= 0 && since < cooldown && now + cooldown - since > at) {
			at = now + cooldown - since;
			log_warn("gateway", "restart deferred %lldms (at most one "
				 "restart per %llds): %s",
				 (long long)(at - now),
				 (long long)(cooldown / 1000), reason);
		}
	}
	pthread_mutex_lock(&daemon_restart_mu);
	if (!d->restart_at || at < d->restart_at)
		d->restart_at = at;
	if (!d->restart_reason)
		d->restart_reason = xstrdup(reason);
	pthread_mutex_unlock(&daemon_restart_mu);
	/* Wake the signal loop so it recomputes its timeout. */
	kill(getpid(), SIGUSR2);
}

/* -1: no restart pending; else ms until it is due. */
static int64_t daemon_restart_wait(struct daemon *d)
{
	int64_t w = -1;

	pthread_mutex_lock(&daemon_restart_mu);
	if (d->restart_at) {
		w = d->restart_at - util_mono_ms();
		if (w < 0)
			w = 0;
	}
	pthread_mutex_unlock(&daemon_restart_mu);
	return w;
}

static void daemon_on_channel_event(void *arg, json_t *payload)
{
	struct daemon *d = arg;

	if (d->rpc)
		rpc_broadcast(d->rpc, "channel", payload, 0, SCOPE_READ);
	else
		json_decref(payload);
}

/* Channel connections (IRC): their own loop thread; accounts from the
 * config, restarted per changed subtree on reload. */
static void daemon_channels_start(struct daemon *d)
{
	struct channels_opts co = { d->store, d->agents,
				    daemon_on_channel_event, d };

	if (channels_new(&co, &d->channels) != GW_OK)
		return;
	channels_set_global(d->channels);
	channels_apply(d->channels, d->cfg);
}

static void daemon_on_config_apply(const struct gw_config *old,
				   const struct gw_config *neu,
				   const struct config_plan *p, void *arg)
{
	struct daemon *d = arg;
	enum log_level lvl;

	if (p->rotate && d->rpc)
		rpc_config_auth_rotated(d->rpc, neu);
	channels_apply(d->channels, neu);
	run_lane_apply(d->agents, neu);
	if (!d->opts->verbose && neu->log_level &&
	    (!old || !old->log_level ||
	     strcmp(old->log_level, neu->log_level) != 0) &&
	    log_level_parse(neu->log_level, &lvl) == 0)
		log_set_level(lvl);
	if (d->cron)
		cron_configure(d->cron, neu->root);
}

/* Cron delivery and failure alerts go through the channel send path. */
static int daemon_cron_deliver(void *arg, const char *channel,
			       const char *account, const char *to,
			       const char *text, char **err)
{
	json_t *res = NULL;
	int rc;

	(void)arg;
	if (!channels_global()) {
		*err = xstrdup("no channel is running");
		return GW_EUNAVAIL;
	}
	rc = channels_send(channels_global(), channel, account, to, text,
			   &res, err);
	json_decref(res);
	return rc;
}

/* A cron event: to operators holding operator.read. */
static void daemon_on_cron_event(void *arg, json_t *payload)
{
	struct daemon *d = arg;

	if (d->rpc)
		rpc_broadcast(d->rpc, "cron", payload, 0, SCOPE_READ);
	else
		json_decref(payload);
}

static void daemon_on_config_restart(const char *reason, void *arg)
{
	daemon_request_restart(arg, reason, DAEMON_RESTART_RPC_DELAY_MS);
}

static void daemon_on_config_changed(json_t *payload, void *arg)
{
	struct daemon *d = arg;

	if (d->rpc)
		rpc_broadcast(d->rpc, "config.changed", payload, 0,
			      SCOPE_ADMIN);
	else
		json_decref(payload);
}

static void daemon_reloader_new(struct daemon *d, const struct daemon_opts *o)
{
	struct config_reloader_opts ro = {0};

	ro.path = d->paths.config_path;
	ro.ov = &o->ov;
	ro.store = d->store;
	ro.cbs.apply = daemon_on_config_apply;
	ro.cbs.restart = daemon_on_config_restart;
	ro.cbs.changed = daemon_on_config_changed;
	ro.cbs.arg = d;
	d->reloader = config_reloader_new(&ro);
	/* Current before the transports start: a request never sees none. */
	config_set_current(d->cfg);
	config_reloader_set_global(d->reloader);
}

static void daemon_on_file_change(void *arg)
{
	struct daemon *d = arg;
	struct config_req req = { .source = "file", .actor = "file" };
	struct config_result res;

	config_reloader_run(d->reloader, &req, &res);
	config_result_free(&res);
}

static char *daemon_last_good_path(const struct daemon *d)
{
	return xasprintf("%s/state/config-last-good.json", d->paths.state_dir);
}

/* After a successful start: record the snapshot row, keep a copy of the
 * file that started (for the rollback of a failing restart), watch. */
static void daemon_lifecycle_start(struct daemon *d)
{
	const char *src = "startup", *why = getenv("CLAWGATE_ROLLBACK_REASON");
	const char *at = getenv("CLAWGATE_RESTART_AT_MS");
	char *raw = NULL, *lg;
	size_t len = 0;

	if (at)
		d->last_restart_wall = strtoll(at, NULL, 10);
	if (why)
		src = "rollback";
	else if (at)
		src = "restart";
	/* Watch first, then record: an edit made in between is caught by
	 * the catch-up run below (hash compare), never lost. */
	d->watch = config_watch_start(d->paths.config_path, -1,
				      daemon_on_file_change, d);
	/* The copy is of the text that started (an edit already made is
	 * not: it has not started; the last copy stays). */
	raw = config_reloader_started(d->reloader, d->cfg, src, why, &len);
	unsetenv("CLAWGATE_ROLLBACK_REASON");
	unsetenv("CLAWGATE_RESTART_AT_MS");
	unsetenv("CLAWGATE_RESTART_REASON");
	if (raw) {
		lg = daemon_last_good_path(d);
		if (config_write_atomic(lg, raw, len) != 0)
			log_warn("gateway", "cannot write %s", lg);
		free(lg);
		explicit_bzero(raw, len);
	}
	free(raw);
	config_reloader_set_global(d->reloader);
	daemon_on_file_change(d);
}

/* SIGHUP: the same reload path, now (secrets re-resolved too). */
static void daemon_reload(struct daemon *d)
{
	struct config_req req = { .source = "signal", .actor = "SIGHUP" };
	struct config_result res;

	log_info("reload", "SIGHUP: reloading %s", d->paths.config_path);
	config_reloader_run(d->reloader, &req, &res);
	if (res.outcome == CONFIG_OUT_UNCHANGED)
		log_info("reload", "config unchanged");
	config_result_free(&res);
}

/* A restarted process failed to start: put back the file that last
 * started, keep the failing one as <path>.rejected.<ts>, retry once. */
static int daemon_rollback(struct daemon *d, int rc)
{
	char *lg = NULL, *good = NULL, *cur = NULL, *rej = NULL, *why;
	size_t glen = 0, clen = 0;
	int r = 0;

	if (!getenv("CLAWGATE_RESTART_AT_MS") ||
	    getenv("CLAWGATE_ROLLBACK_REASON") || !d->paths.state_dir)
		return 0;
	lg = daemon_last_good_path(d);
	if (config_read_file(lg, &good, &glen) <= 0)
		goto out;
	if (config_read_file(d->paths.config_path, &cur, &clen) > 0 &&
	    clen == glen && memcmp(cur, good, glen) == 0)
		goto out;
	rej = xasprintf("%s.rejected.%lld", d->paths.config_path,
			(long long)util_now_ms());
	if (cur && config_write_atomic(rej, cur, clen) != 0)
		log_warn("gateway", "cannot keep the failing config as %s", rej);
	if (config_write_atomic(d->paths.config_path, good, glen) != 0)
		goto out;
	why = xasprintf("config restart failed (exit code %d); rolled back "
			"to the last config that started; the failing file is "
			"kept as %s", rc, rej);
	log_warn("gateway", "%s", why);
	fprintf(stderr, "%s\n", why);
	setenv("CLAWGATE_ROLLBACK_REASON", why, 1);
	free(why);
	r = 1;
out:
	if (good)
		explicit_bzero(good, glen);
	if (cur)
		explicit_bzero(cur, clen);
	free(good);
	free(cur);
	free(lg);
	free(rej);
	return r;
}

/* The argv this process was started with (/proc/self/cmdline). */
static char **daemon_self_argv(void)
{
	char *buf = NULL, **argv = NULL;
	size_t len = 0;
	int n = 0;
	size_t i;

	if (config_read_file("/proc/self/cmdline", &buf, &len) <= 0)
		return NULL;
	for (i = 0; i < len; i++)
		if (buf[i] == 0)
			n++;
	argv = xcalloc((size_t)n + 2, sizeof(*argv));
	n = 0;
	for (i = 0; i < len; i += strlen(buf + i) + 1)
		argv[n++] = buf + i;
	argv[n] = NULL;
	return argv;	/* argv[0] points at the start of buf */
}

/* Stop everything but the listen sockets, then re-exec in place (same
 * pid: a supervisor sees no exit; connection attempts wait in the
 * backlog). OPENCLAW_NO_RESPAWN=1 (or a failed exec): returns, and the
 * caller starts again in this process. */
static void daemon_restart(struct daemon *d)
{
	int fds[DAEMON_MAX_INHERIT], n = 0, i;
	char list[128] = "", num[32], **argv;
	const char *nr = getenv("OPENCLAW_NO_RESPAWN");

	log_info("gateway", "restarting: %s", d->restart_reason);
	d->restarting = 1;
	if (d->listener)
		n = listener_fds(d->listener, fds, DAEMON_MAX_INHERIT);
	daemon_stop(d, 0);
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%s%d", i ? "," : "", fds[i]);
		strncat(list, num, sizeof(list) - strlen(list) - 1);
	}
	if (n)
		setenv("CLAWGATE_LISTEN_FDS", list, 1);
	snprintf(num, sizeof(num), "%lld", (long long)util_now_ms());
	setenv("CLAWGATE_RESTART_AT_MS", num, 1);
	setenv("CLAWGATE_RESTART_REASON", d->restart_reason, 1);
	if (d->cfg && d->cfg->auth_token_generated && d->cfg->auth_token)
		setenv("CLAWGATE_INHERIT_TOKEN", d->cfg->auth_token, 1);
	free(d->restart_reason);
	d->restart_reason = NULL;
	if (nr && strcmp(nr, "1") == 0) {
		log_info("gateway", "restart mode: in-process restart "
			 "(OPENCLAW_NO_RESPAWN=1)");
		daemon_free(d);
		return;
	}
	log_info("gateway", "restart mode: full process restart (re-exec, "
		 "pid %d)", (int)getpid());
	daemon_free(d);
	argv = daemon_self_argv();
	for (i = 0; argv && i < n; i++)
		fcntl(fds[i], F_SETFD, 0);
	fflush(stdout);
	fflush(stderr);
	if (argv)
		execv("/proc/self/exe", argv);
	log_warn("gateway", "re-exec failed (%s); restarting in process",
		 strerror(errno));
	for (i = 0; i < n; i++)
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	if (argv)
		free(argv[0]);
	free(argv);
}

static int daemon_start(struct daemon *d, const struct daemon_opts *o)
{
	struct config_issues issues = {0};
	struct config_overrides ov;
	struct presence_opts po = {0};
	struct ws_server_opts wso = {0};
	struct ws_server_cbs wsc = {0};
	struct http_server_cbs hc = {0};
	struct listener_cbs lc = {0};
	struct api_deps ad = {0};
	struct rpc_deps rd = {0};
	const char *hosts[4], *failed = NULL;
	char *path = NULL, *errmsg = NULL, *inherited_tok = NULL;
	char *stored_tok = NULL;
	const char *inherited;
	int nhosts, r, i;
	int64_t pv = 0, hv = 0;
	enum log_level lvl;

	if (config_paths_resolve(&d->paths, o->ov.profile, o->ov.dev) != 0) {
		fprintf(stderr, "invalid --profile/--dev combination\n");
		return 1;
	}
	ov = o->ov;
	if (d->paths.profile && strcmp(d->paths.profile, "dev") == 0)
		ov.dev = 1;
	/* A token generated before a re-exec restart stays the same, so
	 * clients reconnect with what they have. Taken once, then wiped
	 * from the environment block (/proc/self/environ). */
	inherited = getenv("CLAWGATE_INHERIT_TOKEN");
	if (inherited) {
		inherited_tok = xstrdup(inherited);
		explicit_bzero((char *)inherited, strlen(inherited));
		unsetenv("CLAWGATE_INHERIT_TOKEN");
		ov.generated_token = inherited_tok;
	}
	/* SecretRefs resolve inside config_load, for every surface. */
	secrets_install(SECRETS_SCOPE_FULL, d->paths.state_dir);
	/* A generated token is kept in the state dir and reused on every
	 * start (it wins over an inherited one: `auth-token --rotate`). */
	if (service_token_read(d->paths.state_dir, &stored_tok) == 1) {
		xfree_secret(inherited_tok);
		inherited_tok = stored_tok;
		stored_tok = NULL;
		ov.generated_token = inherited_tok;
	}
	r = config_load(d->paths.config_path, &ov, &d->cfg, &issues);
	xfree_secret(inherited_tok);
	inherited_tok = NULL;
	if (r != GW_OK) {
		config_issues_print(stderr, d->paths.config_path, &issues);
		config_issues_free(&issues);
		return DAEMON_EXIT_CONFIG;
	}
	for (i = 0; i < issues.nw; i++)
		log_warn("config", "%s: %s", issues.w[i].path,
			 issues.w[i].message);
	config_issues_free(&issues);
	if (d->cfg->file_exists && !o->ov.allow_unconfigured &&
	    (!d->cfg->mode || strcmp(d->cfg->mode, "local") != 0)) {
		fprintf(stderr, "Gateway start blocked: set gateway.mode=local "
			"(current: %s)\n", d->cfg->mode ? d->cfg->mode : "unset");
		return DAEMON_EXIT_CONFIG;
	}
	if (api_hooks_check(d->cfg, &errmsg) != 0) {
		fprintf(stderr, "%s\n", errmsg);
		free(errmsg);
		return DAEMON_EXIT_CONFIG;
	}
	if (daemon_bind_hosts(d->cfg, hosts, &nhosts) != 0)
		return DAEMON_EXIT_CONFIG;
	for (i = 0; i < nhosts; i++) {
		if (!daemon_is_loopback_host(hosts[i]) &&
		    d->cfg->auth_mode == AUTH_MODE_NONE) {
			fprintf(stderr, "refusing to bind gateway to %s:%d "
				"without auth (set gateway.auth.token/password, "
				"or set OPENCLAW_GATEWAY_TOKEN/"
				"OPENCLAW_GATEWAY_PASSWORD)\n", hosts[i],
				d->cfg->port);
			return 1;
		}
	}
	if (daemon_mkdirs(d->paths.state_dir) != 0) {
		fprintf(stderr, "cannot create state dir %s: %s\n",
			d->paths.state_dir, strerror(errno));
		return 1;
	}
	if (daemon_lock(d) != 0)
		return 1;
	if (d->cfg->auth_token_generated)
		daemon_token_keep(d);

	if (o->verbose)
		log_set_level(LOG_DEBUG);
	else if (d->cfg->log_level && log_level_parse(d->cfg->log_level,
						       &lvl) == 0)
		log_set_level(lvl);
	if (d->cfg->log_file)
		r = log_open_file(d->cfg->log_file, "clawgate");
	else {
		path = xasprintf("%s/logs", d->paths.state_dir);
		r = log_open_file(path, "clawgate");
		free(path);
		path = NULL;
	}
	if (r != 0)
		log_warn("gateway", "cannot open log file: %s", strerror(-r));

	path = xasprintf("%s/state/clawgate.sqlite", d->paths.state_dir);
	r = store_open(path, &d->store, &errmsg);
	if (r != GW_OK) {
		fprintf(stderr, "%s\n", errmsg ? errmsg : "cannot open state");
		free(errmsg);
		free(path);
		return 1;
	}
	free(path);
	secrets_set_store(d->store);
	daemon_reloader_new(d, o);
	if (store_state_version_bump(d->store, "presence", &pv) != GW_OK ||
	    store_state_version_bump(d->store, "health", &hv) != GW_OK)
		log_warn("store", "cannot persist state versions");

	if (pairing_open(d->store, &d->pairing) != GW_OK) {
		fprintf(stderr, "cannot load the device pairing state from "
			"%s\n", store_path(d->store));
		return 1;
	}
	d->identity = identity_lazy_new(d->paths.state_dir);
	util_uuid(d->boot_id);
	d->build_id = xasprintf("clawgate-%s", PACKAGE_VERSION);
	po.version = DAEMON_COMPAT_VERSION;
	po.instance_id = d->boot_id;
	po.presence_version = pv;
	po.health_version = hv;
	po.on_change = daemon_on_presence;
	po.on_health = daemon_on_health;
	po.arg = d;
	presence_init(&po);

	d->limiter = limiter_new(4096);
	d->workers = workq_new(2, 4096);

	wso.max_payload = 64 * 1024;
	wso.max_buffered = DAEMON_MAX_BUFFERED;
	wsc.on_open = rpc_ws_on_open;
	wsc.on_message = rpc_ws_on_message;
	wsc.on_too_big = rpc_ws_on_too_big;
	wsc.on_close = rpc_ws_on_close;

	ad.start_mono_ms = d->start_mono;
	ad.limiter = d->limiter;
	ad.ready = daemon_ready;
	ad.arg = d;
	ad.workers = d->workers;
	ad.version = DAEMON_COMPAT_VERSION;
	ad.build_id = d->build_id;
	ad.pairing = d->pairing;
	{
		struct agent_rt_opts ao = { d->store, d->paths.state_dir };

		if (agent_rt_new(&ao, &d->agents) != GW_OK)
			log_warn("agent", "agent runtime unavailable");
	}
	{
		struct cron_opts co = { d->store, d->agents,
					daemon_on_cron_event, d,
					daemon_cron_deliver, d };

		if (cron_new(&co, d->cfg->root, &d->cron) != GW_OK)
			log_warn("cron", "automations unavailable");
	}
	ad.agents = d->agents;
	d->api = api_new(&ad);
	hc.body_limit = api_body_limit;
	hc.handler = api_handle;
	hc.preauth = api_preauth;
	hc.arg = d->api;
	d->http = http_server_new(&hc);
	{
		const json_t *mc = config_get(d->cfg->root,
					      "gateway.http.maxConnections");
		int env = daemon_env_int("CLAWGATE_HTTP_MAX_CONNS");

		http_server_set_max_conns(d->http, env > 0 ? env :
			(int)json_integer_value(mc));
		http_server_set_shard_conns(d->http, daemon_env_int(
			"CLAWGATE_HTTP_SHARD_CONNS"));
		http_server_fit_nofile(d->http,
				       daemon_sockets_per_stream(d->cfg->root));
	}

	r = daemon_listen(d, hosts, nhosts, &failed);
	if (r != 0) {
		if (r == -EADDRINUSE)
			fprintf(stderr, "another gateway instance is already "
				"listening on ws://%s%s%s:%d\n",
				strchr(failed ? failed : "", ':') ? "[" : "",
				failed ? failed : "127.0.0.1",
				strchr(failed ? failed : "", ':') ? "]" : "",
				d->cfg->port);
		else
			fprintf(stderr, "failed to bind gateway socket on "
				"ws://%s:%d: %s\n", failed ? failed : "?",
				d->cfg->port, strerror(-r));
		return 1;
	}
	d->listening = listener_describe(d->listener);

	rd.ws = d->ws;
	rd.workers = d->workers;
	rd.limiter = d->limiter;
	rd.identity = d->identity;
	rd.pairing = d->pairing;
	rd.agents = d->agents;
	rd.store = d->store;
	rd.cron = d->cron;
	rd.version = DAEMON_COMPAT_VERSION;
	rd.build_id = d->build_id;
	rd.boot_id = d->boot_id;
	rd.state_dir = d->paths.state_dir;
	rd.config_path = d->paths.config_path;
	rd.listening = d->listening;
	rd.port = d->cfg->port;
	rd.start_mono_ms = d->start_mono;
	rd.tick_ms = daemon_env_ms("CLAWGATE_TICK_INTERVAL_MS", 30000);
	rd.handshake_ms = daemon_env_ms("OPENCLAW_HANDSHAKE_TIMEOUT_MS", 10000);
	rd.health_ms = daemon_env_ms("CLAWGATE_HEALTH_INTERVAL_MS", 60000);
	d->rpc = rpc_server_new(&rd);
	wsc.arg = d->rpc;
	d->ws = ws_server_new(&wso, &wsc);
	ws_server_set_total_budget(d->ws, (size_t)daemon_env_int(
		"CLAWGATE_WS_TOTAL_BUDGET"));
	rpc_server_set_ws(d->rpc, d->ws);

	if (ws_server_start(d->ws) != 0 || http_server_start(d->http) != 0) {
		fprintf(stderr, "cannot start the transports\n");
		return 1;
	}
	rpc_server_start(d->rpc);
	if (d->cron && cron_start(d->cron) != GW_OK)
		log_warn("cron", "cannot start the scheduler");
	daemon_channels_start(d);
	lc.to_ws = daemon_to_ws;
	lc.to_http = daemon_to_http;
	lc.arg = d;
	/* Front-door budgets (doc/hardening.md); tests lower them. */
	listener_set_budgets(d->listener, daemon_env_int(
		"CLAWGATE_PREAUTH_PER_ADDR"), daemon_env_int(
		"CLAWGATE_PREAUTH_MAX"));
	listener_set_pending_timeout(d->listener, daemon_env_int(
		"CLAWGATE_HEAD_TIMEOUT_MS"));
	if (listener_start(d->listener, &lc) != 0) {
		fprintf(stderr, "cannot start the listener\n");
		return 1;
	}
	daemon_lock_write(d);
	return 0;
}

/* The agent runtime is freed: what its runs' sinks reach goes too. */
static void daemon_free_runners(struct daemon *d)
{
	d->agents = NULL;
	channels_free(d->channels);
	d->channels = NULL;
	cron_free(d->cron);
	d->cron = NULL;
}

/* The one shutdown order (doc/hardening.md), for SIGTERM and for the
 * in-place restart alike:
 *   1. stop accepting (the listen sockets stay open on restart)
 *   2. refuse new HTTP requests (503) and new connects (rpc shutdown)
 *   3. send `shutdown` to every client
 *   4. drain worker jobs (bounded), then refuse posts and join
 *   5. end runs, then stop WS and HTTP (no thread can post after this)
 *   6. free the agent runtime (provider thread), the channels, cron
 *   7. close the store (runs still ending at 6: free them after it)
 *   8. daemon_free: free the transports, then the queue they posted to */
static void daemon_stop(struct daemon *d, int signo)
{
	int64_t t0 = util_mono_ms();

	d->ready = 0;
	if (signo)
		log_info("gateway", "received %s; shutting down",
			 signo == SIGINT ? "SIGINT" : "SIGTERM");
	config_watch_stop(d->watch);
	d->watch = NULL;
	config_reloader_set_global(NULL);
	if (d->listener)
		listener_stop(d->listener, d->restarting);
	http_server_refuse_new(d->http);
	if (d->rpc && d->ws)
		rpc_server_shutdown(d->rpc, d->restarting ? d->restart_reason :
				    "gateway stopping", d->restarting ?
				    DAEMON_RESTART_EXPECTED_MS : -1, 2000);
	/* In-flight calls finish (bounded) while lws can still answer;
	 * later posts get -1 ("unavailable"). The queue itself is freed
	 * in daemon_free, after both transports. */
	workq_stop(d->workers, d->restarting ? daemon_env_ms(
			   "CLAWGATE_RESTART_DRAIN_MS", 5000) : 5000);
	cron_stop(d->cron);
	/* Then runs end (aborted, sinks get on_end) while WS and HTTP can
	 * still send; a late HTTP request gets "gateway is stopping". The
	 * runtime is freed only once neither face can reach it. */
	agent_rt_stop(d->agents, 2000);
	/* The channel loop thread ends here (it starts runs and writes the
	 * store); its memory stays until the runtime is freed: a run still
	 * ending calls its channel sink (doc/hardening.md, "Threads"). */
	channels_set_global(NULL);
	channels_quit(d->channels);
	if (d->ws)
		ws_server_stop(d->ws, d->restarting ? 1012 : 1001,
			       d->restarting ? "service restart" :
			       "gateway stopping", 2000);
	if (d->http)
		http_server_stop(d->http);
	/* Runs still ending (their ends queued behind a held-up store
	 * writer or agent thread) keep the runtime, and the channels and
	 * automations their sinks reach, until the store has drained. */
	if (agent_rt_free(d->agents, 0) == GW_OK)
		daemon_free_runners(d);
	secrets_set_store(NULL);
	store_close(d->store);
	d->store = NULL;
	if (d->agents && agent_rt_free(d->agents, 2000) == GW_OK)
		daemon_free_runners(d);
	if (signo)
		log_info("gateway", "shutdown completed cleanly in %lldms",
			 (long long)(util_mono_ms() - t0));
}

static void daemon_free(struct daemon *d)
{
	ws_server_free(d->ws);
	http_server_free(d->http);
	listener_free(d->listener);
	rpc_server_free(d->rpc);
	api_free(d->api);
	workq_free(d->workers);
	d->workers = NULL;
	free(d->restart_reason);	/* a restart still pending at exit */
	d->restart_reason = NULL;
	limiter_free(d->limiter);
	config_reloader_free(d->reloader);
	d->reloader = NULL;
	identity_lazy_free(d->identity);
	pairing_free(d->pairing);
	presence_shutdown();
	daemon_unlock(d);
	free(d->lock_path);
	free(d->listening);
	free(d->build_id);
	config_set_current(NULL);
	config_unref(d->cfg);
	config_paths_free(&d->paths);
	log_close_file();
}

/* Wait for signals (and a due restart). Returns the terminating signal,
 * or 0 when a restart is due. */
static int daemon_loop(struct daemon *d, const sigset_t *set)
{
	siginfo_t si;
	int sig;

	for (;;) {
		int64_t wait = daemon_restart_wait(d);
		struct timespec ts;

		if (wait == 0)
			return 0;
		/* Idle minutes give freed memory back to the system (glibc
		 * keeps arena pages after bursts of connections). */
		if (wait < 0 || wait > DAEMON_TRIM_MS)
			wait = DAEMON_TRIM_MS;
		ts.tv_sec = wait / 1000;
		ts.tv_nsec = (long)(wait % 1000) * 1000000;
		sig = sigtimedwait(set, &si, &ts);
		if (sig < 0 && errno == EAGAIN)
			malloc_trim(0);
		if (sig < 0 || sig == SIGUSR2)
			continue;
		if (sig == SIGHUP) {
			daemon_reload(d);
			continue;
		}
		if (sig == SIGUSR1) {
			log_info("gateway", "signal SIGUSR1 received");
			daemon_request_restart(d, "SIGUSR1", 0);
			continue;
		}
		return sig;
	}
}

int daemon_run(const struct daemon_opts *o)
{
	struct daemon d;
	sigset_t set;
	const char *sched;
	int rc, sig;

	/* Signals are taken synchronously by this thread; every thread
	 * started below inherits the mask. SIGUSR2 wakes the loop. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Before anything touches OpenSSL: we never print its error
	 * strings, and loading them costs ~150 KB once crypto is used. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);
	sched = daemon_sched();

again:
	memset(&d, 0, sizeof(d));
	d.lock_fd = -1;
	d.start_mono = util_mono_ms();
	d.opts = o;
	rc = daemon_start(&d, o);
	if (rc != 0 && daemon_rollback(&d, rc)) {
		daemon_stop(&d, 0);
		daemon_free(&d);
		memset(&d, 0, sizeof(d));
		d.lock_fd = -1;
		d.start_mono = util_mono_ms();
		d.opts = o;
		rc = daemon_start(&d, o);
	}
	if (rc != 0) {
		daemon_stop(&d, 0);
		daemon_free(&d);
		daemon_inherit_close();
		curl_dl_cleanup();
		return rc;
	}
	config_set_current(d.cfg);
	log_info("gateway", "clawgate %s (OpenClaw gateway protocol 4, "
		 "compatible with %s)", PACKAGE_VERSION, DAEMON_COMPAT_VERSION);
	log_info("gateway", "listening on ws://%s:%d (%s)",
		 d.cfg->bind == BIND_LAN ? "0.0.0.0" :
		 d.cfg->bind == BIND_CUSTOM ? d.cfg->custom_bind_host :
		 "127.0.0.1", d.cfg->port, d.listening);
	log_info("gateway", "auth mode: %s; state: %s", auth_mode_name(d.cfg->auth_mode),
		 d.paths.state_dir);
	log_info("gateway", "threads scheduled: %s", sched);
	if (d.cfg->auth_token_generated)
		printf("Gateway token: generated once, kept in %s/gateway.token "
		       "(`clawgate gateway auth-token` prints it)\n",
		       d.paths.state_dir);
	printf("Gateway URL: ws://127.0.0.1:%d  OpenAI-compatible API: "
	       "http://127.0.0.1:%d/v1\n", d.cfg->port, d.cfg->port);
	fflush(stdout);
	log_info("gateway", "ready (%lldms)",
		 (long long)(util_mono_ms() - d.start_mono));
	daemon_print_dashboard(&d);
	/* /readyz answers 200 from here: whoever waits for it finds the
	 * banner printed (stdout, then the log). */
	d.ready = 1;
	daemon_lifecycle_start(&d);
	daemon_sd_notify("READY=1");

	sig = daemon_loop(&d, &set);
	if (sig == 0) {
		daemon_sd_notify("RELOADING=1");
		daemon_restart(&d);
		goto again;
	}
	daemon_sd_notify("STOPPING=1");
	daemon_stop(&d, sig);
	daemon_free(&d);
	curl_dl_cleanup();
	return 0;
}
