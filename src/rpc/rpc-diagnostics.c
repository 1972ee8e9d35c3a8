/* Diagnostics: system.info (the host), diagnostics.lanes (work queues and
 * runs in flight), diagnostics.stability (reload and restart history,
 * memory), and the lws thread's timer lag, clawgate's counterpart of the
 * upstream event-loop delay (health.eventLoop, status.eventLoop). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/run-lane.h"
#include "config/config-reload.h"
#include "core/common.h"
#include "core/util.h"
#include "core/workq.h"
#include "net/ws.h"
#include "presence/presence.h"
#include "store/store-usage.h"
#include "rpc/rpc-int.h"

#define DIAG_LAG_INTERVAL_MS 1000
#define DIAG_LAG_SAMPLES 60
#define DIAG_LAG_DEGRADED_MS 1000
#define DIAG_STABILITY_CAPACITY 200
/* Recount the sessions for health every this many lag ticks. */
#define DIAG_COUNT_EVERY 10

/* Lag samples: written on the lws thread, read by workers. */
static struct {
	pthread_mutex_t mu;
	struct ws_timer *timer;	/* lws thread only */
	struct rpc_server *srv;
	int64_t expect;		/* monotonic ms the timer is due */
	int64_t started;
	int64_t lag[DIAG_LAG_SAMPLES];
	int n, next;
	unsigned ticks;
	/* CPU at the last tick: the lws thread's, the process's (ns), wall
	 * (ms); and the ratios over the last interval. */
	int64_t thr_ns, proc_ns, wall_ms;
	double utilization, cpu_ratio;
} dgx = { .mu = PTHREAD_MUTEX_INITIALIZER };

int64_t rpc_diagnostics_count_sessions(struct rpc_server *s,
				       json_t **by_agent)
{
	json_t *o = NULL, *v;
	const char *k;
	int64_t n = 0;

	if (!s->d.store)
		return -1;
	if (!by_agent) {
		/* The total alone (the periodic refresh, health): counted
		 * without reading every row. */
		if (store_usage_session_total(s->d.store, &n) != GW_OK)
			return -1;
		presence_set_sessions(n);
		return n;
	}
	if (store_usage_session_counts(s->d.store, &o) != GW_OK)
		return -1;
	json_object_foreach(o, k, v)
		n += json_integer_value(v);
	presence_set_sessions(n);
	*by_agent = o;
	return n;
}

static void rpc_diagnostics_count_job(void *arg)
{
	rpc_diagnostics_count_sessions(arg, NULL);
}

static int64_t rpc_diagnostics_cpu_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void rpc_diagnostics_lag_tick(void *arg)
{
	int64_t now = util_mono_ms(), late;
	int64_t thr = rpc_diagnostics_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	int64_t proc = rpc_diagnostics_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	double wall_ns = (double)(now - dgx.wall_ms) * 1e6;

	(void)arg;
	dgx.timer = NULL;
	late = now - dgx.expect;
	pthread_mutex_lock(&dgx.mu);
	if (dgx.wall_ms && wall_ns > 0) {
		dgx.utilization = (double)(thr - dgx.thr_ns) / wall_ns;
		dgx.cpu_ratio = (double)(proc - dgx.proc_ns) / wall_ns;
	}
	dgx.thr_ns = thr;
	dgx.proc_ns = proc;
	dgx.wall_ms = now;
	dgx.lag[dgx.next] = late > 0 ? late : 0;
	dgx.next = (dgx.next + 1) % DIAG_LAG_SAMPLES;
	if (dgx.n < DIAG_LAG_SAMPLES)
		dgx.n++;
	pthread_mutex_unlock(&dgx.mu);
	if (dgx.srv->stopping)
		return;
	if (++dgx.ticks % DIAG_COUNT_EVERY == 0 && dgx.srv->d.workers)
		workq_post(dgx.srv->d.workers, rpc_diagnostics_count_job,
			   dgx.srv);
	dgx.expect = now + DIAG_LAG_INTERVAL_MS;
	dgx.timer = ws_timer_add(dgx.srv->d.ws, DIAG_LAG_INTERVAL_MS,
				  rpc_diagnostics_lag_tick, NULL);
}

void rpc_diagnostics_start(struct rpc_server *s)
{
	dgx.srv = s;
	dgx.started = util_mono_ms();
	dgx.wall_ms = 0;
	dgx.expect = dgx.started + DIAG_LAG_INTERVAL_MS;
	dgx.timer = ws_timer_add(s->d.ws, DIAG_LAG_INTERVAL_MS,
				  rpc_diagnostics_lag_tick, NULL);
}

void rpc_diagnostics_stop(struct rpc_server *s)
{
	(void)s;
	if (dgx.timer)
		ws_timer_cancel(dgx.timer);
	dgx.timer = NULL;
}

static int rpc_diagnostics_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Ratios as upstream prints them: 3 decimals, never negative. */
static double rpc_diagnostics_round3(double v)
{
	return v <= 0 ? 0.0 : (double)(int64_t)(v * 1000 + 0.5) / 1000;
}

json_t *rpc_diagnostics_event_loop(void)
{
	int64_t v[DIAG_LAG_SAMPLES], max = 0, p99 = 0;
	double util, cpu;
	int n, i;
	json_t *o;

	pthread_mutex_lock(&dgx.mu);
	n = dgx.n;
	memcpy(v, dgx.lag, sizeof(v));
	util = dgx.utilization;
	cpu = dgx.cpu_ratio;
	pthread_mutex_unlock(&dgx.mu);
	if (n > 0) {
		qsort(v, (size_t)n, sizeof(v[0]), rpc_diagnostics_cmp);
		max = v[n - 1];
		i = (n * 99 + 99) / 100 - 1;
		p99 = v[i < 0 ? 0 : i];
	}
	/* utilization: the lws thread's CPU share; cpuCoreRatio: the
	 * process's, in cores; both over the last lag interval. */
	o = json_pack("{s:b,s:n,s:[],s:i,s:I,s:I,s:f,s:f}", "degraded",
		      max >= DIAG_LAG_DEGRADED_MS, "degradedSinceMs", "reasons",
		      "intervalMs", DIAG_LAG_INTERVAL_MS, "delayP99Ms",
		      (json_int_t)p99, "delayMaxMs", (json_int_t)max,
		      "utilization", rpc_diagnostics_round3(util),
		      "cpuCoreRatio", rpc_diagnostics_round3(cpu));
	if (max >= DIAG_LAG_DEGRADED_MS)
		json_array_append_new(json_object_get(o, "reasons"),
				      json_string("event_loop_delay"));
	return o;
}

/* A "Key:   123 kB" figure of /proc/self/status in bytes (0 if absent). */
static int64_t rpc_diagnostics_proc_kb(const char *file, const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	int64_t v = 0;
	FILE *f = fopen(file, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtoll(line + kl + 1, NULL, 10) * 1024;
			break;
		}
	}
	fclose(f);
	return v;
}

json_t *rpc_diagnostics_process_memory(void)
{
	const char *f = "/proc/self/status";

	return json_pack("{s:I,s:I}", "rssBytes",
			 (json_int_t)rpc_diagnostics_proc_kb(f, "VmRSS"),
			 "maxRssBytes",
			 (json_int_t)rpc_diagnostics_proc_kb(f, "VmHWM"));
}

/* ---- system.info --------------------------------------------------------- */

static const char *rpc_diagnostics_arch(const char *m)
{
	if (strcmp(m, "x86_64") == 0)
		return "x64";
	if (strcmp(m, "aarch64") == 0)
		return "arm64";
	if (strcmp(m, "i686") == 0 || strcmp(m, "i386") == 0)
		return "ia32";
	return m;
}

/* PRETTY_NAME of /etc/os-release, else "Linux <release>". */
static char *rpc_diagnostics_os_label(const char *release)
{
	char line[512], *p, *e;
	FILE *f = fopen("/etc/os-release", "re");

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "PRETTY_NAME=", 12) != 0)
				continue;
			p = line + 12;
			if (*p == '"')
				p++;
			e = p + strcspn(p, "\"\n");
			*e = 0;
			fclose(f);
			return xstrdup(p);
		}
		fclose(f);
	}
	return xasprintf("Linux %s", release);
}

static char *rpc_diagnostics_cpu_model(void)
{
	char line[512], *p;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) != 0 ||
		    !(p = strchr(line, ':')))
			continue;
		p += 1 + strspn(p + 1, " \t");
		p[strcspn(p, "\n")] = 0;
		fclose(f);
		return xstrdup(p);
	}
	fclose(f);
	return NULL;
}

static int rpc_diagnostics_system_info(struct rpc_call *call)
{
	struct rpc_server *s = call->srv;
	struct utsname u;
	struct sysinfo si;
	struct statvfs vfs;
	double la[3] = {0, 0, 0};
	char host[256] = "";
	char *os = NULL, *cpu = NULL;
	int64_t avail;
	json_t *o;

	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "%s", u.nodename);
	if (sysinfo(&si) != 0)
		memset(&si, 0, sizeof(si));
	os = rpc_diagnostics_os_label(u.release);
	cpu = rpc_diagnostics_cpu_model();
	avail = rpc_diagnostics_proc_kb("/proc/meminfo", "MemAvailable");
	if (avail <= 0)
		avail = (int64_t)si.freeram * si.mem_unit;
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:i,s:s,s:I,s:i,"
		      "s:I,s:I,s:{s:s}}",
		      "machineName", host, "hostname", host, "platform",
		      "linux", "release", u.release, "arch",
		      rpc_diagnostics_arch(u.machine), "osLabel", os, "port",
		      s->d.port, "nodeVersion", s->d.build_id, "pid",
		      (int)getpid(), "processInstanceId", s->d.boot_id,
		      "uptimeMs", (json_int_t)si.uptime * 1000, "cpuCount",
		      (int)sysconf(_SC_NPROCESSORS_ONLN), "memoryTotalBytes",
		      (json_int_t)si.totalram * si.mem_unit,
		      "memoryFreeBytes", (json_int_t)avail,
		      "defaultAgentUtilityModel", "status", "unavailable");
	if (cpu)
		json_object_set_new(o, "cpuModel", json_string(cpu));
	if (getloadavg(la, 3) == 3)
		json_object_set_new(o, "loadAverage",
				    json_pack("[f,f,f]", la[0], la[1], la[2]));
	if (s->d.state_dir && statvfs(s->d.state_dir, &vfs) == 0) {
		json_object_set_new(o, "diskTotalBytes", json_integer(
			(json_int_t)vfs.f_blocks * (json_int_t)vfs.f_frsize));
		json_object_set_new(o, "diskAvailableBytes", json_integer(
			(json_int_t)vfs.f_bavail * (json_int_t)vfs.f_frsize));
		json_object_set_new(o, "diskPath",
				    json_string(s->d.state_dir));
	}
	free(os);
	free(cpu);
	call->payload = o;
	return GW_OK;
}

/* ---- diagnostics.lanes --------------------------------------------------- */

static json_t *rpc_diagnostics_lane(const char *name, int queued, int active,
			     int max, int draining)
{
	return json_pack("{s:s,s:i,s:i,s:i,s:b,s:i,s:n}", "lane", name,
			 "queuedCount", queued, "activeCount", active,
			 "maxConcurrent", max, "draining", draining,
			 "generation", 0, "blockedBy");
}

static int rpc_diagnostics_lanes(struct rpc_call *call)
{
	struct rpc_server *s = call->srv;
	struct workq_stats ws = {0};
	json_t *lanes = json_array();
	int live = 0, queued = 0;

	if (s->d.workers) {
		workq_stats(s->d.workers, &ws);
		/* This call runs on the lws thread: not one of the busy. */
		json_array_append_new(lanes, rpc_diagnostics_lane("workers",
			ws.queued, ws.running, ws.threads, ws.stopping));
	}
	if (s->d.agents) {
		int active = 0, waiting = 0, cap = 1;

		/* The global lane's cap (agents.defaults.maxConcurrent);
		 * queued counts runs waiting for their session or a slot. */
		run_counts(s->d.agents, &live, &queued);
		run_lane_counts(s->d.agents, &active, &waiting, &cap);
		json_array_append_new(lanes, rpc_diagnostics_lane("agent-runs",
			queued, live, cap, s->stopping));
	}
	call->payload = json_pack("{s:I,s:o,s:n}", "ts",
				  (json_int_t)util_now_ms(), "lanes", lanes,
				  "dynamic");
	return GW_OK;
}

/* ---- diagnostics.stability ----------------------------------------------- */

static char *rpc_diagnostics_iso(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char b[40];

	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("%s.%03dZ", b, (int)(ms % 1000));
}

static int rpc_diagnostics_stability(struct rpc_call *call)
{
	struct config_reloader *rl = config_reloader_global();
	json_t *v = json_object_get(call->params, "limit");
	json_t *rows, *events, *by_type, *row, *ev, *mem;
	int64_t limit = 25, first = 0, last = 0;
	const char *src, *t;
	size_t i, n;
	char *gen, type[80];

	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > DIAG_STABILITY_CAPACITY)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid diagnostics.stability params: at "
			       "/limit: must be integer in 1..%d",
			       DIAG_STABILITY_CAPACITY);
		return GW_EINVAL;
	}
	if (v)
		limit = json_integer_value(v);
	rows = rl ? config_reloader_history(rl, DIAG_STABILITY_CAPACITY)
		  : json_array();
	events = json_array();
	by_type = json_object();
	n = json_array_size(rows);
	/* rows are newest first; events oldest first, the newest `limit`. */
	for (i = n; i-- > 0;) {
		row = json_array_get(rows, i);
		src = json_string_value(json_object_get(row, "source"));
		snprintf(type, sizeof(type), "gateway.config.%s",
			 src ? src : "unknown");
		json_object_set_new(by_type, type, json_integer(
			json_integer_value(json_object_get(by_type, type)) +
			1));
		if (i >= (size_t)limit)
			continue;
		ev = json_pack("{s:O,s:O,s:s}", "seq",
			       json_object_get(row, "id"), "ts",
			       json_object_get(row, "ts"), "type", type);
		if ((t = json_string_value(json_object_get(row, "outcome"))))
			json_object_set_new(ev, "outcome", json_string(t));
		if ((t = json_string_value(json_object_get(row, "method"))))
			json_object_set_new(ev, "action", json_string(t));
		if ((t = json_string_value(json_object_get(row, "reason"))))
			json_object_set_new(ev, "reason", json_string(t));
		json_object_set(ev, "changes", json_object_get(row, "changes"));
		if (!first)
			first = json_integer_value(json_object_get(ev, "seq"));
		last = json_integer_value(json_object_get(ev, "seq"));
		json_array_append_new(events, ev);
	}
	mem = rpc_diagnostics_process_memory();
	gen = rpc_diagnostics_iso(util_now_ms());
	call->payload = json_pack(
		"{s:s,s:i,s:I,s:i,s:I,s:I,s:o,s:{s:o,s:{s:{s:O},s:O,s:i},"
		"s:o}}",
		"generatedAt", gen, "capacity", DIAG_STABILITY_CAPACITY,
		"count", (json_int_t)n, "dropped", 0, "firstSeq",
		(json_int_t)first, "lastSeq", (json_int_t)last, "events",
		events, "summary", "byType", by_type, "memory", "latest",
		"rssBytes", json_object_get(mem, "rssBytes"), "maxRssBytes",
		json_object_get(mem, "maxRssBytes"), "pressureCount", 0,
		"eventLoop", rpc_diagnostics_event_loop());
	free(gen);
	json_decref(mem);
	json_decref(rows);
	return GW_OK;
}

const struct rpc_method rpc_diagnostics_methods[] = {
	{"system.info", rpc_diagnostics_system_info, "operator.read",
	 RPC_F_WORKER,
	 "the host: OS, CPUs, memory, load, uptime, disk"},
	{"diagnostics.lanes", rpc_diagnostics_lanes, "operator.read", 0,
	 "work queues: worker pool and agent runs in flight"},
	{"diagnostics.stability", rpc_diagnostics_stability, "operator.read",
	 RPC_F_WORKER,
	 "reload and restart history, memory, timer lag"},
};
const size_t rpc_diagnostics_methods_count =
	ARRAY_SIZE(rpc_diagnostics_methods);
