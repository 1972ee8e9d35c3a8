/* Presence entries (TTL 5 min, at most 200) and state versions. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/common.h"
#include "core/util.h"
#include "presence/presence.h"

static struct {
	pthread_mutex_t mu;
	json_t *entries;	/* key -> entry */
	char *self_key;
	_Atomic int64_t pversion;
	_Atomic int64_t hversion;
	_Atomic int64_t sessions;	/* session rows (presence_set_sessions) */
	void (*on_change)(const char *, const json_t *, int64_t, void *);
	void (*on_health)(int64_t, void *);
	void *arg;
} pres = { .mu = PTHREAD_MUTEX_INITIALIZER };

char *presence_self_text(const char *host, const char *ip, const char *ver)
{
	if (ip)
		return xasprintf("Gateway: %s (%s) \xc2\xb7 app %s \xc2\xb7 mode "
				 "gateway \xc2\xb7 reason self", host, ip, ver);
	return xasprintf("Gateway: %s \xc2\xb7 app %s \xc2\xb7 mode gateway "
			 "\xc2\xb7 reason self", host, ver);
}

/* First non-loopback IPv4 address of an interface that is up. */
static int presence_lan_ip(char *out, size_t n)
{
	struct ifaddrs *ifa = NULL, *i;
	int r = -1;

	if (getifaddrs(&ifa) != 0)
		return -1;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
			  out, (socklen_t)n);
		r = 0;
		break;
	}
	freeifaddrs(ifa);
	return r;
}

void presence_init(const struct presence_opts *o)
{
	char host[256] = "localhost", ip[64], *text, *plat;
	struct utsname un;
	json_t *self;
	int have_ip;

	gethostname(host, sizeof(host) - 1);
	have_ip = presence_lan_ip(ip, sizeof(ip)) == 0;
	if (uname(&un) == 0)
		plat = xasprintf("linux %s", un.release);
	else
		plat = xstrdup("linux");
	text = presence_self_text(host, have_ip ? ip : NULL, o->version);
	self = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "host", host,
			 "version", o->version, "platform", plat,
			 "deviceFamily", "Linux", "mode", "gateway", "reason",
			 "self", "instanceId", o->instance_id, "text", text,
			 "ts", (json_int_t)util_now_ms());
	if (have_ip)
		json_object_set_new(self, "ip", json_string(ip));
	pthread_mutex_lock(&pres.mu);
	json_decref(pres.entries);
	pres.entries = json_object();
	free(pres.self_key);
	pres.self_key = xstrdup(host);
	json_object_set_new(pres.entries, host, self);
	pres.on_change = o->on_change;
	pres.on_health = o->on_health;
	pres.arg = o->arg;
	atomic_store(&pres.pversion, o->presence_version > 0 ?
		     o->presence_version : 1);
	atomic_store(&pres.hversion, o->health_version > 0 ?
		     o->health_version : 1);
	pthread_mutex_unlock(&pres.mu);
	free(text);
	free(plat);
}

void presence_shutdown(void)
{
	pthread_mutex_lock(&pres.mu);
	json_decref(pres.entries);
	pres.entries = NULL;
	free(pres.self_key);
	pres.self_key = NULL;
	pres.on_change = NULL;
	pres.on_health = NULL;
	pthread_mutex_unlock(&pres.mu);
}

/* Drop expired entries and keep at most PRESENCE_MAX (mutex held). */
static void presence_prune_locked(int64_t now)
{
	const char *k;
	json_t *v, *tmp;
	void *iter;
	size_t n;

	json_object_foreach_safe(pres.entries, tmp, k, v) {
		if (strcmp(k, pres.self_key) == 0)
			continue;
		if (now - json_integer_value(json_object_get(v, "ts")) >
		    PRESENCE_TTL_MS)
			json_object_del(pres.entries, k);
	}
	while ((n = json_object_size(pres.entries)) > PRESENCE_MAX) {
		const char *oldest = NULL;
		json_int_t ots = 0;

		for (iter = json_object_iter(pres.entries); iter;
		     iter = json_object_iter_next(pres.entries, iter)) {
			k = json_object_iter_key(iter);
			v = json_object_iter_value(iter);
			if (strcmp(k, pres.self_key) == 0)
				continue;
			if (!oldest ||
			    json_integer_value(json_object_get(v, "ts")) < ots) {
				oldest = k;
				ots = json_integer_value(json_object_get(v, "ts"));
			}
		}
		if (!oldest)
			break;
		json_object_del(pres.entries, oldest);
	}
}

int64_t presence_upsert(const char *key, const json_t *fields)
{
	json_t *e, *copy = NULL;
	int64_t v, now = util_now_ms();
	void (*cb)(const char *, const json_t *, int64_t, void *);
	void *arg;

	pthread_mutex_lock(&pres.mu);
	if (!pres.entries) {
		pthread_mutex_unlock(&pres.mu);
		return atomic_load(&pres.pversion);
	}
	e = json_object_get(pres.entries, key);
	if (!e) {
		e = json_object();
		json_object_set_new(pres.entries, key, e);
	}
	json_object_update(e, (json_t *)fields);
	json_object_set_new(e, "ts", json_integer(now));
	presence_prune_locked(now);
	v = atomic_fetch_add(&pres.pversion, 1) + 1;
	cb = pres.on_change;
	arg = pres.arg;
	if (cb)
		copy = json_deep_copy(json_object_get(pres.entries, key));
	pthread_mutex_unlock(&pres.mu);
	if (cb)
		cb(key, copy, v, arg);
	json_decref(copy);
	return v;
}

static int presence_cmp_ts(const void *a, const void *b)
{
	json_int_t ta = json_integer_value(json_object_get(*(json_t **)a, "ts"));
	json_int_t tb = json_integer_value(json_object_get(*(json_t **)b, "ts"));

	return ta < tb ? 1 : ta > tb ? -1 : 0;
}

json_t *presence_list(void)
{
	json_t *arr = json_array(), **v = NULL, *e;
	const char *k;
	size_t n = 0, i;
	int64_t now = util_now_ms();

	pthread_mutex_lock(&pres.mu);
	if (!pres.entries)
		goto out;
	e = json_object_get(pres.entries, pres.self_key);
	if (e)
		json_object_set_new(e, "ts", json_integer(now));
	presence_prune_locked(now);
	v = xcalloc(json_object_size(pres.entries) + 1, sizeof(*v));
	json_object_foreach(pres.entries, k, e)
		v[n++] = json_deep_copy(e);
out:
	pthread_mutex_unlock(&pres.mu);
	if (v)
		qsort(v, n, sizeof(*v), presence_cmp_ts);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
	return arr;
}

int64_t presence_version(void)
{
	return atomic_load(&pres.pversion);
}

int64_t presence_health_version(void)
{
	return atomic_load(&pres.hversion);
}

int64_t presence_health_bump(void)
{
	int64_t v = atomic_fetch_add(&pres.hversion, 1) + 1;
	void (*cb)(int64_t, void *) = pres.on_health;

	if (cb)
		cb(v, pres.arg);
	return v;
}

void presence_set_sessions(int64_t count)
{
	atomic_store(&pres.sessions, count);
}

json_t *presence_health(const char *sessions_path)
{
	int64_t t0 = util_mono_ms();
	json_t *sessions, *agent, *h;

	sessions = json_pack("{s:s,s:I,s:[]}", "path",
			     sessions_path ? sessions_path : "", "count",
			     (json_int_t)atomic_load(&pres.sessions),
			     "recent");
	agent = json_pack("{s:s,s:b,s:{s:b,s:s,s:I,s:s,s:s,s:i},s:O}",
			  "agentId", "main", "isDefault", 1, "heartbeat",
			  "enabled", 0, "every", "30m", "everyMs",
			  (json_int_t)1800000, "prompt", "", "target", "none",
			  "ackMaxChars", 300, "sessions", sessions);
	h = json_pack("{s:b,s:I,s:I,s:{},s:[],s:{},s:i,s:s,s:[o],s:o,"
		      "s:{s:s}}",
		      "ok", 1, "ts", (json_int_t)util_now_ms(), "durationMs",
		      (json_int_t)(util_mono_ms() - t0), "channels",
		      "channelOrder", "channelLabels", "heartbeatSeconds", 0,
		      "defaultAgentId", "main", "agents", agent, "sessions",
		      sessions, "configReload", "hotReloadStatus", "active");
	/* clawgate loads no plugins. */
	json_object_set_new(h, "plugins", json_pack("{s:[],s:[],s:[]}",
						    "loaded", "errors",
						    "unavailable"));
	return h;
}
