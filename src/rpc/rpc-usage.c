/* Usage: usage.cost, sessions.usage and usage.status, computed from the
 * token counts recorded with each transcript message (SQLite,
 * store-usage.c), per UTC day, agent, session and model. Costs come from
 * models.providers.<p>.models[].cost ({input, output, cacheRead,
 * cacheWrite} in USD per million tokens); a metered message of a model
 * without a price counts as a missing cost entry, as upstream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "config/config.h"
#include "core/common.h"
#include "core/util.h"
#include "rpc/rpc-int.h"
#include "store/store-usage.h"

#define USAGE_DAY_MS 86400000LL
#define USAGE_MAX_DAYS 3660
#define USAGE_DEFAULT_DAYS 30
#define USAGE_SESSIONS_DEFAULT 50
#define USAGE_SESSIONS_MAX 1000

/* ---- dates -------------------------------------------------------------- */

/* "YYYY-MM-DD" → UTC midnight ms; -1 when malformed. */
static int64_t rpc_usage_parse_day(const char *s)
{
	struct tm tm;
	int y, m, d;
	char tail;

	if (!s || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 ||
	    strlen(s) != 10 || m < 1 || m > 12 || d < 1 || d > 31 ||
	    y < 1970 || y > 9999)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	return (int64_t)timegm(&tm) * 1000;
}

static void rpc_usage_day(int64_t ms, char out[11])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* The [start, end) range of the params: startDate/endDate (inclusive
 * days), else `days` (default 30) or `range` ending today (UTC). */
static int rpc_usage_range(struct rpc_call *call, int64_t *start,
			   int64_t *end)
{
	const json_t *p = call->params, *v;
	const char *sd = json_string_value(json_object_get(p, "startDate"));
	const char *ed = json_string_value(json_object_get(p, "endDate"));
	const char *range = json_string_value(json_object_get(p, "range"));
	int64_t today = util_now_ms() / USAGE_DAY_MS * USAGE_DAY_MS;
	int64_t days = USAGE_DEFAULT_DAYS;

	v = json_object_get(p, "days");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > USAGE_MAX_DAYS)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid %s params: at /days: must be integer "
			       "in 1..%d", call->method, USAGE_MAX_DAYS);
		return -1;
	}
	if (v)
		days = json_integer_value(v);
	else if (range && strcmp(range, "7d") == 0)
		days = 7;
	else if (range && strcmp(range, "90d") == 0)
		days = 90;
	else if (range && strcmp(range, "1y") == 0)
		days = 365;
	else if (range && strcmp(range, "all") == 0)
		days = USAGE_MAX_DAYS;
	*end = ed ? rpc_usage_parse_day(ed) : today;
	*start = sd ? rpc_usage_parse_day(sd) : *end - (days - 1) *
						   USAGE_DAY_MS;
	if ((sd && *start < 0) || (ed && *end < 0) || *start > *end ||
	    (*end - *start) / USAGE_DAY_MS >= USAGE_MAX_DAYS) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid %s params: startDate/endDate must be "
			       "YYYY-MM-DD, start <= end, at most %d days",
			       call->method, USAGE_MAX_DAYS);
		return -1;
	}
	*end += USAGE_DAY_MS;
	return 0;
}

/* ---- totals ------------------------------------------------------------- */

static json_t *rpc_usage_totals_new(void)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f,s:I}",
			 "input", (json_int_t)0, "output", (json_int_t)0,
			 "cacheRead", (json_int_t)0, "cacheWrite",
			 (json_int_t)0, "totalTokens", (json_int_t)0,
			 "totalCost", 0.0, "inputCost", 0.0, "outputCost", 0.0,
			 "cacheReadCost", 0.0, "cacheWriteCost", 0.0,
			 "missingCostEntries", (json_int_t)0);
}

static void rpc_usage_inc(json_t *o, const char *k, json_int_t by)
{
	json_object_set_new(o, k, json_integer(
		json_integer_value(json_object_get(o, k)) + by));
}

static void rpc_usage_incf(json_t *o, const char *k, double by)
{
	json_object_set_new(o, k, json_real(
		json_number_value(json_object_get(o, k)) + by));
}

/* One aggregated transcript row, priced. */
struct rpc_usage_row {
	const char *day, *key, *agent, *provider, *model, *role, *status;
	json_int_t count, in, out, metered, first, last;
	double in_cost, out_cost;
	int priced;
};

static void rpc_usage_totals_add(json_t *t, const struct rpc_usage_row *r)
{
	rpc_usage_inc(t, "input", r->in);
	rpc_usage_inc(t, "output", r->out);
	rpc_usage_inc(t, "totalTokens", r->in + r->out);
	rpc_usage_incf(t, "inputCost", r->in_cost);
	rpc_usage_incf(t, "outputCost", r->out_cost);
	rpc_usage_incf(t, "totalCost", r->in_cost + r->out_cost);
	if (!r->priced)
		rpc_usage_inc(t, "missingCostEntries", r->metered);
}

/* The model entry {id, cost?} of provider/model in the config. */
static const json_t *rpc_usage_model_cfg(const struct gw_config *cfg,
					 const char *provider,
					 const char *model)
{
	const json_t *p = json_object_get(json_object_get(json_object_get(
		cfg->root, "models"), "providers"), provider), *m;
	size_t i;

	json_array_foreach(json_object_get(p, "models"), i, m)
		if (json_is_string(json_object_get(m, "id")) &&
		    strcmp(json_string_value(json_object_get(m, "id")),
			   model) == 0)
			return m;
	return NULL;
}

/* Fill r from a store row; provider and model split "provider/model"
 * into buf. */
static void rpc_usage_row_read(const struct gw_config *cfg, const json_t *j,
			       struct rpc_usage_row *r, char *buf, size_t n)
{
	const json_t *cost;
	char *slash;

	memset(r, 0, sizeof(*r));
	r->day = json_string_value(json_object_get(j, "day"));
	r->key = json_string_value(json_object_get(j, "sessionKey"));
	r->agent = json_string_value(json_object_get(j, "agentId"));
	r->role = json_string_value(json_object_get(j, "role"));
	r->status = json_string_value(json_object_get(j, "status"));
	r->count = json_integer_value(json_object_get(j, "count"));
	r->in = json_integer_value(json_object_get(j, "input"));
	r->out = json_integer_value(json_object_get(j, "output"));
	r->metered = json_integer_value(json_object_get(j, "metered"));
	r->first = json_integer_value(json_object_get(j, "first"));
	r->last = json_integer_value(json_object_get(j, "last"));
	snprintf(buf, n, "%s", json_string_value(json_object_get(j,
								 "model")));
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		r->provider = buf;
		r->model = slash + 1;
	} else {
		r->provider = "";
		r->model = buf;
	}
	cost = json_object_get(rpc_usage_model_cfg(cfg, r->provider,
						   r->model), "cost");
	if (json_is_number(json_object_get(cost, "input")) ||
	    json_is_number(json_object_get(cost, "output"))) {
		r->priced = 1;
		r->in_cost = (double)r->in * json_number_value(
			json_object_get(cost, "input")) / 1e6;
		r->out_cost = (double)r->out * json_number_value(
			json_object_get(cost, "output")) / 1e6;
	}
}

/* Rows of the range for agent (NULL = all) and key (NULL = all). */
static json_t *rpc_usage_load(struct rpc_call *call, int64_t start,
			      int64_t end, const char *agent, const char *key)
{
	json_t *rows = NULL;

	if (store_usage_rows(call->srv->d.store, start, end, agent, key,
			     &rows) != GW_OK) {
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "usage store unavailable");
		return NULL;
	}
	return rows;
}

/* agentId param, else the default agent unless agentScope is "all".
 * *agent is borrowed or NULL; -1 on a bad combination. */
static int rpc_usage_agent(struct rpc_call *call, const char **agent)
{
	const char *a = json_string_value(json_object_get(call->params,
							  "agentId"));
	const char *scope = json_string_value(json_object_get(call->params,
							      "agentScope"));

	if (scope && strcmp(scope, "all") == 0) {
		if (a || json_object_get(call->params, "key")) {
			rpc_call_error(call, "INVALID_REQUEST", NULL,
				       "agentScope=all cannot be combined "
				       "with key or agentId");
			return -1;
		}
		*agent = NULL;
		return 0;
	}
	if (a && *a)
		*agent = a;
	else
		*agent = call->srv->d.agents ?
			 agent_default_id(call->srv->d.agents) : "main";
	return 0;
}

/* ---- usage.cost --------------------------------------------------------- */

static int rpc_usage_cost(struct rpc_call *call)
{
	json_t *rows, *daily, *by_day, *totals, *d, *j;
	struct rpc_usage_row r;
	int64_t start, end, t;
	const char *agent;
	char day[11], buf[512];
	size_t i;

	if (rpc_usage_range(call, &start, &end) != 0 ||
	    rpc_usage_agent(call, &agent) != 0)
		return GW_EINVAL;
	if (!(rows = rpc_usage_load(call, start, end, agent, NULL)))
		return GW_EUNAVAIL;
	by_day = json_object();
	daily = json_array();
	for (t = start; t < end; t += USAGE_DAY_MS) {
		rpc_usage_day(t, day);
		d = rpc_usage_totals_new();
		json_object_set_new(d, "date", json_string(day));
		json_object_set(by_day, day, d);
		json_array_append_new(daily, d);
	}
	totals = rpc_usage_totals_new();
	json_array_foreach(rows, i, j) {
		rpc_usage_row_read(call->cfg, j, &r, buf, sizeof(buf));
		if ((d = json_object_get(by_day, r.day)))
			rpc_usage_totals_add(d, &r);
		rpc_usage_totals_add(totals, &r);
	}
	call->payload = json_pack(
		"{s:I,s:I,s:o,s:o,s:{s:s,s:i,s:i,s:i}}", "updatedAt",
		(json_int_t)util_now_ms(), "days",
		(json_int_t)((end - start) / USAGE_DAY_MS), "daily", daily,
		"totals", totals, "cacheStatus", "status", "fresh",
		"cachedFiles", 0, "pendingFiles", 0, "staleFiles", 0);
	json_decref(by_day);
	json_decref(rows);
	return GW_OK;
}

/* ---- sessions.usage ----------------------------------------------------- */

static json_t *rpc_usage_counts_new(void)
{
	return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i}", "total", 0, "user", 0,
			 "assistant", 0, "toolCalls", 0, "toolResults", 0,
			 "errors", 0);
}

static void rpc_usage_counts_add(json_t *c, const struct rpc_usage_row *r)
{
	rpc_usage_inc(c, "total", r->count);
	if (strcmp(r->role, "user") == 0)
		rpc_usage_inc(c, "user", r->count);
	else if (strcmp(r->role, "assistant") == 0)
		rpc_usage_inc(c, "assistant", r->count);
	else if (strcmp(r->role, "tool") == 0)
		rpc_usage_inc(c, "toolResults", r->count);
	if (strcmp(r->status, "error") == 0 ||
	    strcmp(r->status, "timeout") == 0 ||
	    strcmp(r->status, "aborted") == 0)
		rpc_usage_inc(c, "errors", r->count);
}

/* The {provider, model, count, totals} entry of list keyed in idx. */
static json_t *rpc_usage_model_entry(json_t *idx, json_t *list,
				     const char *prefix, const char *provider,
				     const char *model)
{
	char k[1300];
	json_t *e;

	snprintf(k, sizeof(k), "%s\n%s/%s", prefix, provider,
		 model ? model : "");
	if ((e = json_object_get(idx, k)))
		return e;
	e = json_pack("{s:s,s:I,s:o}", "provider", provider, "count",
		      (json_int_t)0, "totals", rpc_usage_totals_new());
	if (model)
		json_object_set_new(e, "model", json_string(model));
	json_object_set(idx, k, e);
	json_array_append_new(list, e);
	return e;
}

/* A per-key accumulator object in idx/list created by mk. */
static json_t *rpc_usage_group(json_t *idx, json_t *list, const char *key,
			       json_t *(*mk)(const char *key))
{
	json_t *e = json_object_get(idx, key);

	if (!e) {
		e = mk(key);
		json_object_set(idx, key, e);
		json_array_append_new(list, e);
	}
	return e;
}

static json_t *rpc_usage_mk_agent(const char *k)
{
	return json_pack("{s:s,s:o}", "agentId", k, "totals",
			 rpc_usage_totals_new());
}

static json_t *rpc_usage_mk_day(const char *k)
{
	return json_pack("{s:s,s:I,s:f,s:I,s:i,s:I}", "date", k, "tokens",
			 (json_int_t)0, "cost", 0.0, "messages", (json_int_t)0,
			 "toolCalls", 0, "errors", (json_int_t)0);
}

static json_t *rpc_usage_mk_costday(const char *k)
{
	json_t *t = rpc_usage_totals_new();

	json_object_set_new(t, "date", json_string(k));
	return t;
}

static json_t *rpc_usage_mk_session_usage(const char *k)
{
	json_t *u = rpc_usage_totals_new();

	(void)k;
	json_object_set_new(u, "messageCounts", rpc_usage_counts_new());
	json_object_set_new(u, "modelUsage", json_array());
	json_object_set_new(u, "dailyBreakdown", json_array());
	json_object_set_new(u, "dailyMessageCounts", json_array());
	json_object_set_new(u, "activityDates", json_array());
	return u;
}

static json_t *rpc_usage_mk_daycounts(const char *k)
{
	json_t *c = rpc_usage_counts_new();

	json_object_set_new(c, "date", json_string(k));
	return c;
}

static int rpc_usage_sessions(struct rpc_call *call)
{
	const json_t *v = json_object_get(call->params, "limit");
	const char *agent, *key_param;
	json_t *rows = NULL, *srows = NULL, *sessions, *j, *s, *u, *e;
	json_t *totals, *counts, *by_model, *by_model_i, *by_prov, *by_prov_i;
	json_t *by_agent, *by_agent_i, *days, *days_i, *cdays, *cdays_i;
	json_t *mdaily, *mdaily_i, *su_i, *sub_i;
	struct rpc_usage_row r;
	int64_t start, end, limit = USAGE_SESSIONS_DEFAULT;
	char *key = NULL, buf[512], sd[11], ed[11], k[700];
	int nsessions = 0, r_ = GW_EINVAL;
	size_t i;

	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > USAGE_SESSIONS_MAX)) {
		rpc_call_error(call, "INVALID_REQUEST", NULL,
			       "invalid sessions.usage params: at /limit: "
			       "must be integer in 1..%d", USAGE_SESSIONS_MAX);
		return GW_EINVAL;
	}
	if (v)
		limit = json_integer_value(v);
	if (rpc_usage_range(call, &start, &end) != 0 ||
	    rpc_usage_agent(call, &agent) != 0)
		return GW_EINVAL;
	key_param = json_string_value(json_object_get(call->params, "key"));
	if (key_param) {
		if (rpc_call_need_agents(call) != 0 ||
		    !(key = rpc_sessions_canon(call, key_param)))
			return GW_EINVAL;
		agent = NULL;
	}
	if (!(rows = rpc_usage_load(call, start, end, agent, key)))
		goto out;
	if (store_usage_sessions(call->srv->d.store, agent, key,
				 USAGE_SESSIONS_MAX, &srows) != GW_OK) {
		rpc_call_error(call, "UNAVAILABLE", NULL,
			       "usage store unavailable");
		r_ = GW_EUNAVAIL;
		goto out;
	}
	totals = rpc_usage_totals_new();
	counts = rpc_usage_counts_new();
	by_model = json_array(), by_model_i = json_object();
	by_prov = json_array(), by_prov_i = json_object();
	by_agent = json_array(), by_agent_i = json_object();
	days = json_array(), days_i = json_object();
	cdays = json_array(), cdays_i = json_object();
	mdaily = json_array(), mdaily_i = json_object();
	su_i = json_object();	/* sessionKey -> usage */
	sub_i = json_object();	/* sessionKey + "\n" + sub key -> entry */
	json_array_foreach(rows, i, j) {
		rpc_usage_row_read(call->cfg, j, &r, buf, sizeof(buf));
		rpc_usage_totals_add(totals, &r);
		rpc_usage_counts_add(counts, &r);
		/* Session. */
		u = json_object_get(su_i, r.key);
		if (!u) {
			u = rpc_usage_mk_session_usage(r.key);
			json_object_set_new(u, "firstActivity",
					    json_integer(r.first));
			json_object_set_new(u, "lastActivity",
					    json_integer(r.last));
			json_object_set_new(su_i, r.key, u);
		}
		rpc_usage_totals_add(u, &r);
		rpc_usage_counts_add(json_object_get(u, "messageCounts"), &r);
		if (r.first < json_integer_value(json_object_get(u,
							"firstActivity")))
			json_object_set_new(u, "firstActivity",
					    json_integer(r.first));
		if (r.last > json_integer_value(json_object_get(u,
							"lastActivity")))
			json_object_set_new(u, "lastActivity",
					    json_integer(r.last));
		snprintf(k, sizeof(k), "%s\nday\n%s", r.key, r.day);
		e = rpc_usage_group(sub_i, json_object_get(u,
				    "dailyBreakdown"), k, rpc_usage_mk_day);
		json_object_set_new(e, "date", json_string(r.day));
		rpc_usage_inc(e, "tokens", r.in + r.out);
		rpc_usage_incf(e, "cost", r.in_cost + r.out_cost);
		snprintf(k, sizeof(k), "%s\ncounts\n%s", r.key, r.day);
		e = rpc_usage_group(sub_i, json_object_get(u,
				    "dailyMessageCounts"), k,
				    rpc_usage_mk_daycounts);
		json_object_set_new(e, "date", json_string(r.day));
		rpc_usage_counts_add(e, &r);
		snprintf(k, sizeof(k), "%s\nact\n%s", r.key, r.day);
		if (!json_object_get(sub_i, k)) {
			json_object_set_new(sub_i, k, json_true());
			json_array_append_new(json_object_get(u,
				"activityDates"), json_string(r.day));
		}
		if (r.metered) {
			e = rpc_usage_model_entry(sub_i, json_object_get(u,
						  "modelUsage"), r.key,
						  r.provider, r.model);
			rpc_usage_inc(e, "count", r.metered);
			rpc_usage_totals_add(json_object_get(e, "totals"), &r);
			e = rpc_usage_model_entry(by_model_i, by_model, "",
						  r.provider, r.model);
			rpc_usage_inc(e, "count", r.metered);
			rpc_usage_totals_add(json_object_get(e, "totals"), &r);
			e = rpc_usage_model_entry(by_prov_i, by_prov, "",
						  r.provider, NULL);
			rpc_usage_inc(e, "count", r.metered);
			rpc_usage_totals_add(json_object_get(e, "totals"), &r);
			snprintf(k, sizeof(k), "%s\n%s/%s", r.day, r.provider,
				 r.model);
			e = json_object_get(mdaily_i, k);
			if (!e) {
				e = json_pack("{s:s,s:s,s:s,s:I,s:f,s:I}",
					      "date", r.day, "provider",
					      r.provider, "model", r.model,
					      "tokens", (json_int_t)0, "cost",
					      0.0, "count", (json_int_t)0);
				json_object_set(mdaily_i, k, e);
				json_array_append_new(mdaily, e);
			}
			rpc_usage_inc(e, "tokens", r.in + r.out);
			rpc_usage_incf(e, "cost", r.in_cost + r.out_cost);
			rpc_usage_inc(e, "count", r.metered);
		}
		e = rpc_usage_group(by_agent_i, by_agent, r.agent,
				    rpc_usage_mk_agent);
		rpc_usage_totals_add(json_object_get(e, "totals"), &r);
		e = rpc_usage_group(days_i, days, r.day, rpc_usage_mk_day);
		rpc_usage_inc(e, "tokens", r.in + r.out);
		rpc_usage_incf(e, "cost", r.in_cost + r.out_cost);
		rpc_usage_inc(e, "messages", r.count);
		if (strcmp(r.status, "error") == 0 ||
		    strcmp(r.status, "timeout") == 0 ||
		    strcmp(r.status, "aborted") == 0)
			rpc_usage_inc(e, "errors", r.count);
		e = rpc_usage_group(cdays_i, cdays, r.day,
				    rpc_usage_mk_costday);
		rpc_usage_totals_add(e, &r);
	}
	/* The sessions with activity in the range, newest first. */
	sessions = json_array();
	json_array_foreach(srows, i, s) {
		u = json_object_get(su_i, json_string_value(
			json_object_get(s, "key")));
		if (!u)
			continue;
		nsessions++;
		if ((int64_t)json_array_size(sessions) >= limit)
			continue;
		json_object_set_new(u, "durationMs", json_integer(
			json_integer_value(json_object_get(u, "lastActivity")) -
			json_integer_value(json_object_get(u,
							   "firstActivity"))));
		e = json_deep_copy(s);
		json_object_del(e, "createdAt");
		json_object_set(e, "usage", u);
		json_array_append_new(sessions, e);
	}
	rpc_usage_day(start, sd);
	rpc_usage_day(end - USAGE_DAY_MS, ed);
	call->payload = json_pack(
		"{s:I,s:s,s:s,s:o,s:o,s:{s:i,s:o,s:{s:i,s:i,s:[]},s:o,s:o,s:o,"
		"s:[],s:[],s:o,s:[],s:o,s:o},s:[],s:{s:s,s:i,s:i,s:i}}",
		"updatedAt", (json_int_t)util_now_ms(), "startDate", sd,
		"endDate", ed, "sessions", sessions, "totals", totals,
		"aggregates", "sessionCount", nsessions, "messages", counts,
		"tools", "totalCalls", 0, "uniqueTools", 0, "tools",
		"byModel", by_model, "byProvider", by_prov, "byAgent",
		by_agent, "byChannel", "byCreator", "costDaily", cdays,
		"dailyLatency", "modelDaily", mdaily, "daily", days,
		"creatorOptions", "cacheStatus", "status", "fresh",
		"cachedFiles", 0, "pendingFiles", 0, "staleFiles", 0);
	json_decref(by_model_i);
	json_decref(by_prov_i);
	json_decref(by_agent_i);
	json_decref(days_i);
	json_decref(cdays_i);
	json_decref(mdaily_i);
	json_decref(su_i);
	json_decref(sub_i);
	r_ = GW_OK;
out:
	json_decref(rows);
	json_decref(srows);
	free(key);
	return r_;
}

/* usage.status is the providers' own quota windows (plan limits, resets):
 * clawgate queries no provider usage API, so there are none. */
static int rpc_usage_status(struct rpc_call *call)
{
	call->payload = json_pack("{s:I,s:[]}", "updatedAt",
				  (json_int_t)util_now_ms(), "providers");
	return GW_OK;
}

const struct rpc_method rpc_usage_methods[] = {
	{"usage.status", rpc_usage_status, "operator.read", 0,
	 "provider quota windows (none: no provider usage API)"},
	{"usage.cost", rpc_usage_cost, "operator.read", RPC_F_WORKER,
	 "tokens and cost per UTC day from the transcripts"},
	{"sessions.usage", rpc_usage_sessions, "operator.read", RPC_F_WORKER,
	 "per-session usage with aggregates by model, agent and day"},
};
const size_t rpc_usage_methods_count = ARRAY_SIZE(rpc_usage_methods);
