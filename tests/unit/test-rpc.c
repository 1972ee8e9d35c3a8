/* Unit tests: request frame validation, connect params validation, the
 * method table and scope rules, the auth decision and the limiter. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/agent.h"
#include "auth/auth.h"
#include "auth/limiter.h"
#include "core/common.h"
#include "core/util.h"
#include "net/ws.h"
#include "rpc/rpc.h"
#include "rpc/rpc-int.h"
#include "rpc/rpc-json.h"

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

	ck_assert_msg(v != NULL, "bad test JSON: %s", e.text);
	return v;
}

static const struct {
	const char *frame;
	const char *msg;	/* NULL = valid */
} frame_cases[] = {
	{"{\"type\":\"req\",\"id\":\"1\",\"method\":\"health\"}", NULL},
	{"{\"type\":\"req\",\"id\":\"1\",\"method\":\"health\",\"params\":{}}",
	 NULL},
	{"{\"type\":\"req\",\"id\":\"x\"}",
	 "must have required property 'method'"},
	{"{\"id\":\"x\",\"method\":\"m\"}", "must have required property 'type'"},
	{"{\"type\":\"req\",\"method\":\"m\"}",
	 "must have required property 'id'"},
	{"{\"type\":\"event\",\"id\":\"1\",\"method\":\"m\"}",
	 "at /type: must be equal to constant"},
	{"{\"type\":\"req\",\"id\":1,\"method\":\"m\"}", "at /id: must be string"},
	{"{\"type\":\"req\",\"id\":\"\",\"method\":\"m\"}",
	 "at /id: must NOT have fewer than 1 characters"},
	{"{\"type\":\"req\",\"id\":\"1\",\"method\":\"\"}",
	 "at /method: must NOT have fewer than 1 characters"},
	{"{\"type\":\"req\",\"id\":\"1\",\"method\":\"m\",\"x\":1}",
	 "must NOT have additional properties"},
	{"[1,2]", "must be object"},
	{"{\"type\":\"req\",\"id\":\"1\",\"method\":\"m\",\"traceparent\":7}",
	 "at /traceparent: must be string"},
};

START_TEST(test_frame_check)
{
	json_t *f = J(frame_cases[_i].frame);
	char msg[200] = "";
	int r = rpc_frame_check_req(f, msg, sizeof(msg));

	if (!frame_cases[_i].msg)
		ck_assert_int_eq(r, 0);
	else {
		ck_assert_int_eq(r, -1);
		ck_assert_str_eq(msg, frame_cases[_i].msg);
	}
	json_decref(f);
}
END_TEST

#define CLIENT "\"client\":{\"id\":\"cli\",\"version\":\"1\"," \
	       "\"platform\":\"linux\",\"mode\":\"cli\"}"

static const struct {
	const char *params;
	const char *msg;
} connect_cases[] = {
	{"{\"minProtocol\":4,\"maxProtocol\":4," CLIENT "}", NULL},
	{"{\"minProtocol\":4,\"maxProtocol\":4," CLIENT ",\"role\":\"operator\","
	 "\"scopes\":[\"operator.read\"],\"caps\":[],\"auth\":{\"token\":\"t\"}}",
	 NULL},
	{"{\"minProtocol\":4,\"maxProtocol\":4}",
	 "must have required property 'client'"},
	{"{\"maxProtocol\":4," CLIENT "}",
	 "must have required property 'minProtocol'"},
	{"{\"minProtocol\":4,\"maxProtocol\":4,\"client\":{\"id\":\"nope\","
	 "\"version\":\"1\",\"platform\":\"linux\",\"mode\":\"cli\"}}",
	 "at /client/id: must be equal to one of the allowed values"},
	{"{\"minProtocol\":4,\"maxProtocol\":4,\"client\":{\"id\":\"cli\","
	 "\"version\":\"1\",\"platform\":\"linux\",\"mode\":\"nope\"}}",
	 "at /client/mode: must be equal to one of the allowed values"},
	{"{\"minProtocol\":4,\"maxProtocol\":4,\"client\":{\"id\":\"cli\","
	 "\"platform\":\"linux\",\"mode\":\"cli\"}}",
	 "at /client: must have required property 'version'"},
	{"{\"minProtocol\":\"4\",\"maxProtocol\":4," CLIENT "}",
	 "at /minProtocol: must be integer"},
	{"{\"minProtocol\":0,\"maxProtocol\":4," CLIENT "}",
	 "at /minProtocol: must be >= 1"},
	{"{\"minProtocol\":4,\"maxProtocol\":4," CLIENT ",\"password\":\"p\"}",
	 "at root: unexpected property 'password'"},
	{"{\"minProtocol\":4,\"maxProtocol\":4," CLIENT ",\"auth\":{\"x\":1}}",
	 "at /auth: unexpected property 'x'"},
	{"{\"minProtocol\":4,\"maxProtocol\":4," CLIENT ",\"scopes\":[\"\"]}",
	 "at /scopes/0: must NOT have fewer than 1 characters"},
	{"{\"minProtocol\":4,\"maxProtocol\":4," CLIENT ",\"device\":{\"id\":\"a\"}}",
	 "at /device: must have required property 'publicKey'"},
	{"{\"minProtocol\":4,\"maxProtocol\":4," CLIENT ",\"permissions\":"
	 "{\"a\":1}}", "at /permissions/a: must be boolean"},
	{"\"str\"", "must be object"},
};

START_TEST(test_connect_params)
{
	json_t *p = J(connect_cases[_i].params);
	char msg[200] = "";
	int r = rpc_connect_check_params(p, msg, sizeof(msg));

	if (!connect_cases[_i].msg)
		ck_assert_msg(r == 0, "unexpected error: %s", msg);
	else {
		ck_assert_int_eq(r, -1);
		ck_assert_str_eq(msg, connect_cases[_i].msg);
	}
	json_decref(p);
}
END_TEST

START_TEST(test_scope_rules)
{
	unsigned r = rpc_scope_bit("operator.read");
	unsigned w = rpc_scope_bit("operator.write");
	unsigned a = rpc_scope_bit("operator.admin");
	unsigned p = rpc_scope_bit("operator.pairing");

	ck_assert_uint_ne(r, 0);
	ck_assert_uint_eq(rpc_scope_bit("operator.bogus"), 0);
	ck_assert(rpc_scope_allows(a, r));
	ck_assert(rpc_scope_allows(a, p));
	ck_assert(rpc_scope_allows(w, r));
	ck_assert(!rpc_scope_allows(r, w));
	ck_assert(!rpc_scope_allows(w, p));
	ck_assert(!rpc_scope_allows(p, r));
	ck_assert(!rpc_scope_allows(0, r));
	ck_assert_str_eq(rpc_method_scope("health"), "operator.read");
	ck_assert_str_eq(rpc_method_scope("system-event"), "operator.admin");
	ck_assert_str_eq(rpc_method_scope("device.pair.list"),
			 "operator.pairing");
	/* Unlisted methods need admin (default-deny). */
	ck_assert_str_eq(rpc_method_scope("no.such.method"), "operator.admin");
	ck_assert_str_eq(rpc_method_scope("connect"), "operator.admin");
}
END_TEST

START_TEST(test_method_table)
{
	size_t n = rpc_method_count(), i, j;
	const char *name;

	ck_assert_uint_ge(n, 7);
	for (i = 0; i < n; i++) {
		name = rpc_method_name(i);
		/* Every method has a known scope, or is a node-role one. */
		if (strcmp(rpc_method_scope(name), "node") != 0)
			ck_assert_uint_ne(rpc_scope_bit(
				rpc_method_scope(name)), 0);
		for (j = i + 1; j < n; j++)
			ck_assert_str_ne(name, rpc_method_name(j));
		/* Found by name (rpc_method_find's sorted table). */
		ck_assert_ptr_nonnull(rpc_method_group_scope(name));
	}
	ck_assert_ptr_null(rpc_method_group_scope("no.such.method"));
	ck_assert_ptr_null(rpc_method_group_scope(""));
	ck_assert_ptr_null(rpc_method_group_scope("zzzz"));
}
END_TEST

START_TEST(test_limiter)
{
	struct limiter *l = limiter_new(2);
	struct limiter_policy p = {3, 60000, 300000};
	int64_t ra = 0;

	ck_assert(!limiter_locked(l, "k", 1000, &ra));
	ck_assert_int_eq(limiter_fail(l, "k", 1000, &p), 0);
	ck_assert_int_eq(limiter_fail(l, "k", 1001, &p), 0);
	ck_assert_int_eq(limiter_fail(l, "k", 1002, &p), 1);
	ck_assert(limiter_locked(l, "k", 1003, &ra));
	ck_assert_int_eq(ra, 300000 - 1);
	ck_assert(!limiter_locked(l, "k", 1002 + 300000, &ra));
	/* Failures that left the window do not count. */
	limiter_fail(l, "w", 0, &p);
	limiter_fail(l, "w", 1, &p);
	ck_assert_int_eq(limiter_fail(l, "w", 70000, &p), 0);
	ck_assert(!limiter_locked(l, "w", 70001, NULL));
	/* A success resets. */
	limiter_fail(l, "w", 70002, &p);
	limiter_reset(l, "w");
	ck_assert_int_eq(limiter_fail(l, "w", 70003, &p), 0);
	/* Bounded keys: a third key evicts the least recently used. */
	limiter_fail(l, "z", 80000, &p);
	ck_assert(!limiter_locked(l, "k", 1003, NULL));
	limiter_free(l);
}
END_TEST

static struct gw_config *test_cfg(int mode, const char *tok, const char *pw)
{
	static struct gw_config c;

	memset(&c, 0, sizeof(c));
	c.auth_mode = mode;
	c.auth_token = (char *)tok;
	c.auth_password = (char *)pw;
	c.rate_max_attempts = 2;
	c.rate_window_ms = 60000;
	c.rate_lockout_ms = 300000;
	c.rate_exempt_loopback = 1;
	return &c;
}

START_TEST(test_auth_decision)
{
	struct limiter *l = limiter_new(16);
	struct auth_request rq = {0};
	struct auth_result res;
	struct gw_config *c = test_cfg(AUTH_MODE_TOKEN, "secret", NULL);

	rq.client_ip = "10.0.0.9";
	rq.token = "secret";
	auth_check(c, l, &rq, &res);
	ck_assert(res.ok);
	ck_assert_str_eq(res.method, "token");

	rq.token = NULL;
	auth_check(c, l, &rq, &res);
	ck_assert(!res.ok);
	ck_assert_str_eq(res.detail_code, "AUTH_TOKEN_MISSING");
	ck_assert_str_eq(res.reason, "token_missing");

	rq.token = "wrong";
	auth_check(c, l, &rq, &res);
	ck_assert(!res.ok);
	ck_assert_str_eq(res.detail_code, "AUTH_TOKEN_MISMATCH");
	ck_assert_str_eq(res.next_step, "update_auth_credentials");
	ck_assert_str_eq(res.message, "unauthorized: gateway token mismatch "
			 "(use this gateway's gateway.auth.token or pair the "
			 "device)");
	auth_check(c, l, &rq, &res);
	/* Two failures lock this IP out; even the right token is refused. */
	rq.token = "secret";
	auth_check(c, l, &rq, &res);
	ck_assert(!res.ok);
	ck_assert(res.rate_limited);
	ck_assert_str_eq(res.detail_code, "AUTH_RATE_LIMITED");
	ck_assert_int_gt(res.retry_after_ms, 0);

	/* Loopback is exempt (not for browser origins). */
	rq.client_ip = "127.0.0.1";
	rq.is_loopback = 1;
	rq.token = "wrong";
	auth_check(c, l, &rq, &res);
	auth_check(c, l, &rq, &res);
	auth_check(c, l, &rq, &res);
	rq.token = "secret";
	auth_check(c, l, &rq, &res);
	ck_assert(res.ok);

	c = test_cfg(AUTH_MODE_PASSWORD, NULL, "pw");
	rq.password = "nope";
	auth_check(c, l, &rq, &res);
	ck_assert_str_eq(res.detail_code, "AUTH_PASSWORD_MISMATCH");
	rq.password = "pw";
	auth_check(c, l, &rq, &res);
	ck_assert(res.ok);
	ck_assert_str_eq(res.method, "password");

	c = test_cfg(AUTH_MODE_NONE, NULL, NULL);
	auth_check(c, l, &rq, &res);
	ck_assert(res.ok);
	limiter_free(l);
}
END_TEST

/* An event frame's shared head (up to the seq each connection splices
 * in, tests/unit/test-net.c): the same bytes as jansson's compact
 * output. */
START_TEST(test_event_splice)
{
	static const struct {
		const char *event, *payload;
	} v[] = {
		{ "chat", "{\"runId\":\"r\",\"state\":\"delta\","
		  "\"deltaText\":\"a\\\"b\\u00e9\\n\"}" },
		{ "tick", "{\"ts\":1796536113451}" },
		{ "presence", "{\"presence\":[{\"host\":\"h\",\"n\":1.5}]}" },
		{ "health", "[]" },
		{ "x", "\"scalar\"" },
		{ "y", NULL },
	};
	char *head, *want, *pay;
	json_t *p;
	size_t i, hl;

	for (i = 0; i < ARRAY_SIZE(v); i++) {
		p = v[i].payload ? json_loads(v[i].payload, JSON_DECODE_ANY,
					      NULL) : NULL;
		ck_assert(!v[i].payload || p);
		head = rpc_event_head(v[i].event, p, &hl);
		ck_assert_uint_eq(hl, strlen(head));
		pay = p ? json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY)
			: strdup("null");
		want = xasprintf("{\"type\":\"event\",\"event\":\"%s\","
				 "\"payload\":%s,\"seq\":", v[i].event, pay);
		ck_assert_str_eq(head, want);
		free(want);
		free(pay);
		free(head);
		json_decref(p);
	}
}
END_TEST

/* dropIfSlow (reference/ws-protocol.md section 9). */
START_TEST(test_event_flags)
{
	static const char *const drop[] = {
		"presence", "heartbeat", "cron", "device.pair.requested",
		"node.pair.resolved", "exec.approval.requested",
		"plugin.approval.resolved", "talk.mode", "sessions.changed",
		"session.message", "session.tool",
	};
	static const char *const keep[] = {
		"tick", "health", "shutdown", "agent", "config.changed",
		"channel", "connect.challenge",
	};
	json_t *p;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(drop); i++)
		ck_assert_uint_eq(rpc_event_flags(drop[i], NULL),
				  WS_SEND_DROP_IF_SLOW);
	for (i = 0; i < ARRAY_SIZE(keep); i++)
		ck_assert_uint_eq(rpc_event_flags(keep[i], NULL), 0);
	p = json_pack("{s:s}", "state", "delta");
	ck_assert_uint_eq(rpc_event_flags("chat", p), WS_SEND_DROP_IF_SLOW);
	json_object_set_new(p, "state", json_string("final"));
	ck_assert_uint_eq(rpc_event_flags("chat", p), 0);
	json_object_set_new(p, "state", json_string("error"));
	ck_assert_uint_eq(rpc_event_flags("chat", p), 0);
	ck_assert_uint_eq(rpc_event_flags("agent", p), 0);
	json_decref(p);
}
END_TEST

/* ---- the run fan-out's text writer against the json_t shapes ---------- */

/* The events of a run as the fan-out built them with json_pack before it
 * wrote them as text: the reference the text must equal byte for byte. */
struct fan_ref {
	json_t *out;
	const char *run_id, *key, *agent_id;
	int64_t ts, agent_seq, chat_seq;
	char pending[4096];
	int sent;
};

static void fan_ref_add(struct fan_ref *r, const char *event, json_t *p,
			int drop)
{
	char *pay = p ? json_dumps(p, JSON_COMPACT) : strdup("null");
	char *head = xasprintf("{\"type\":\"event\",\"event\":\"%s\","
			       "\"payload\":%s,\"seq\":", event, pay);

	json_array_append_new(r->out, json_pack("{s:s,s:b}", "head", head,
						"dropIfSlow", drop));
	free(head);
	free(pay);
	json_decref(p);
}

static void fan_ref_agent(struct fan_ref *r, const char *stream,
			  json_t *data)
{
	json_object_set_new(data, "sessionKey", json_string(r->key));
	fan_ref_add(r, "agent", json_pack("{s:s,s:I,s:s,s:I,s:o}", "runId",
		r->run_id, "seq", (json_int_t)++r->agent_seq, "stream",
		stream, "ts", (json_int_t)r->ts, "data", data), 0);
}

static json_t *fan_ref_base(struct fan_ref *r, const char *state)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:s}", "runId", r->run_id,
			 "sessionKey", r->key, "agentId", r->agent_id, "seq",
			 (json_int_t)++r->chat_seq, "state", state);
}

static void fan_ref_flush(struct fan_ref *r)
{
	json_t *p;

	if (!*r->pending)
		return;
	p = fan_ref_base(r, "delta");
	json_object_set_new(p, "deltaText", json_string(r->pending));
	fan_ref_add(r, "chat", p, 1);
	*r->pending = 0;
	r->sent = 1;
}

static json_t *fan_ref_run(struct fan_ref *r, const char *const *deltas,
			   size_t n, const json_t *tool,
			   const struct run_result *res)
{
	json_t *p, *msg = NULL, *d;
	const char *slash;
	size_t i;

	r->out = json_array();
	fan_ref_agent(r, "lifecycle", json_pack("{s:s,s:I}", "phase",
		"start", "startedAt", (json_int_t)res->started_at));
	for (i = 0; i < n; i++) {
		fan_ref_agent(r, "assistant", json_pack("{s:s}", "delta",
							deltas[i]));
		ck_assert_uint_lt(strlen(r->pending) + strlen(deltas[i]),
				  sizeof(r->pending));
		strcat(r->pending, deltas[i]);
		if (!r->sent)
			fan_ref_flush(r);
	}
	if (tool) {
		fan_ref_flush(r);
		fan_ref_agent(r, "tool", json_pack("{s:s,s:O}", "phase",
						   "update", "call", tool));
	}
	fan_ref_flush(r);
	if (res->text && *res->text)
		msg = json_pack("{s:s,s:[{s:s,s:s}],s:I}", "role", "assistant",
				"content", "type", "text", "text", res->text,
				"timestamp", (json_int_t)res->ended_at);
	switch (res->status) {
	case RUN_OK:
		p = fan_ref_base(r, "final");
		if (!msg)
			msg = json_pack("{s:s,s:[],s:I}", "role", "assistant",
					"content", "timestamp",
					(json_int_t)res->ended_at);
		json_object_set_new(p, "message", msg);
		json_object_set_new(p, "usage", json_pack("{s:I,s:I,s:I}",
			"input", (json_int_t)res->input_tokens, "output",
			(json_int_t)res->output_tokens, "totalTokens",
			(json_int_t)(res->input_tokens +
				     res->output_tokens)));
		json_object_set_new(p, "stopReason", json_string(
			res->finish_reason ? res->finish_reason : "stop"));
		break;
	case RUN_ABORTED:
		p = fan_ref_base(r, "aborted");
		if (msg)
			json_object_set_new(p, "message", msg);
		json_object_set_new(p, "stopReason", json_string("aborted"));
		break;
	default:
		p = fan_ref_base(r, "error");
		json_object_set_new(p, "errorMessage", json_string(
			res->error ? res->error : "run failed"));
		json_object_set_new(p, "errorKind", json_string(
			res->status == RUN_TIMEOUT || res->http_status == 504
			? "timeout" : res->http_status == 429 ? "rate_limit"
			: "unknown"));
		d = json_object();
		if (res->model && (slash = strchr(res->model, '/'))) {
			json_object_set_new(d, "provider", json_stringn(
				res->model, (size_t)(slash - res->model)));
			json_object_set_new(d, "model",
					    json_string(slash + 1));
		}
		if (res->http_status >= 100 && res->http_status <= 599)
			json_object_set_new(d, "httpStatus",
					    json_integer(res->http_status));
		json_object_set_new(p, "errorDetail", d);
		if (msg)
			json_object_set_new(p, "message", msg);
		break;
	}
	fan_ref_add(r, "chat", p, 0);
	d = json_pack("{s:s,s:I,s:I}", "phase",
		      res->status == RUN_OK ? "end" : "error", "startedAt",
		      (json_int_t)res->started_at, "endedAt",
		      (json_int_t)res->ended_at);
	if (res->status != RUN_OK) {
		json_object_set_new(d, "error", json_string(
			res->error ? res->error : "run failed"));
		if (res->status == RUN_ABORTED)
			json_object_set_new(d, "aborted", json_true());
	}
	fan_ref_agent(r, "lifecycle", d);
	return r->out;
}

/* Strings that need escaping: quotes, backslashes, every kind of control
 * character, multi-byte UTF-8 (2, 3, 4 bytes, U+2028), DEL, empty. */
static const char *const fan_strs[] = {
	"plain", "", "q\"uo\\te/", "\x01\x1f\b\f\n\r\t\x7f",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8.",
	"</script>\\u0000",
};

static const struct {
	enum run_status status;
	const char *finish, *model, *error;
	int http_status, has_text, tool;
} fan_ends[] = {
	{ RUN_OK, "stop", NULL, NULL, 200, 1, 0 },
	{ RUN_OK, NULL, NULL, NULL, 0, 0, 1 },
	{ RUN_OK, "length", "mock/m", NULL, 200, 1, 1 },
	{ RUN_ABORTED, NULL, NULL, "aborted by \"user\"", 0, 1, 0 },
	{ RUN_ABORTED, NULL, NULL, NULL, 0, 0, 0 },
	{ RUN_ERROR, NULL, "openai/gpt-x\n", "upstream said \x01no", 502, 1,
	  0 },
	{ RUN_ERROR, NULL, "nomodelslash", NULL, 0, 0, 0 },
	{ RUN_ERROR, NULL, "/", "", 429, 0, 1 },
	{ RUN_TIMEOUT, NULL, "p/q", "timed out", 0, 0, 0 },
	{ RUN_ERROR, NULL, NULL, "rate", 504, 0, 0 },
};

START_TEST(test_fan_text)
{
	const char *s = fan_strs[_i % ARRAY_SIZE(fan_strs)];
	const char *t = fan_strs[(_i + 1) % ARRAY_SIZE(fan_strs)];
	const char *deltas[] = { s, t, "\"", s };
	struct rpc_server *srv = xcalloc(1, sizeof(*srv));
	struct fan_ref r = {0};
	struct run_result res = {0};
	char text[1024];
	json_t *got, *want, *tool = NULL;
	size_t i, e = _i % ARRAY_SIZE(fan_ends);

	atomic_store(&srv->listeners, 1);
	snprintf(text, sizeof(text), "%s%s\"%s", s, t, s);
	res.status = fan_ends[e].status;
	res.finish_reason = fan_ends[e].finish;
	res.model = fan_ends[e].model;
	res.error = fan_ends[e].error;
	res.http_status = fan_ends[e].http_status;
	res.text = fan_ends[e].has_text ? text : "";
	res.input_tokens = 12;
	res.output_tokens = (int64_t)_i * 1000000007;
	res.started_at = 1796536113451;
	res.ended_at = res.started_at + (int64_t)_i;
	if (fan_ends[e].tool)
		tool = json_pack("{s:i,s:s,s:{s:s,s:s}}", "index", 0, "id", t,
				 "function", "name", s, "arguments", "{\"a\":1.5}");
	r.run_id = t;
	r.key = "agent:main:k\"\xc3\xa9";
	r.agent_id = s;
	r.ts = 1796536113999;
	want = fan_ref_run(&r, deltas, ARRAY_SIZE(deltas), tool, &res);
	got = rpc_chat_fan_script(srv, r.run_id, r.key, r.agent_id, deltas,
				  ARRAY_SIZE(deltas), tool, &res, r.ts);
	ck_assert_uint_eq(json_array_size(got), json_array_size(want));
	for (i = 0; i < json_array_size(want); i++) {
		json_t *g = json_array_get(got, i), *w = json_array_get(want, i);

		ck_assert_str_eq(json_string_value(json_object_get(g, "head")),
				 json_string_value(json_object_get(w, "head")));
		ck_assert_str_eq(json_string_value(json_object_get(g, "tail")),
				 "}");
		ck_assert(json_equal(json_object_get(g, "dropIfSlow"),
				     json_object_get(w, "dropIfSlow")));
	}
	json_decref(got);
	json_decref(want);
	json_decref(tool);
	free(srv);
}
END_TEST

/* Not UTF-8 (jansson refuses it; the json_t path sent a null payload or
 * dropped the member): the text stays valid JSON and valid UTF-8, the
 * bad bytes U+FFFD, the rest as it was. */
START_TEST(test_fan_text_bad_utf8)
{
	const char *deltas[] = { "ok \xc3\xa9 \xff\xc3(" };
	struct rpc_server *srv = xcalloc(1, sizeof(*srv));
	struct run_result res = {0};
	json_t *got, *frame, *pay;
	const char *head;
	char *full;
	size_t i;

	atomic_store(&srv->listeners, 1);
	res.status = RUN_OK;
	res.text = deltas[0];
	got = rpc_chat_fan_script(srv, "r1", "agent:main:\xe2\x82", "main",
				  deltas, 1, NULL, &res, 5);
	ck_assert_uint_eq(json_array_size(got), 5);
	for (i = 0; i < json_array_size(got); i++) {
		head = json_string_value(json_object_get(json_array_get(got, i),
							 "head"));
		full = xasprintf("%s1}", head);
		/* json_loads refuses invalid UTF-8 */
		frame = json_loads(full, 0, NULL);
		ck_assert_msg(frame != NULL, "%s", full);
		pay = json_object_get(frame, "payload");
		if (json_object_get(pay, "data"))	/* agent events */
			pay = json_object_get(pay, "data");
		ck_assert_str_eq(json_string_value(json_object_get(pay,
			"sessionKey")), "agent:main:\xef\xbf\xbd\xef\xbf\xbd");
		if (i == 1)
			ck_assert_str_eq(json_string_value(json_object_get(
				json_object_get(json_object_get(frame,
				"payload"), "data"), "delta")),
				"ok \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd"
				"\xef\xbf\xbd(");
		json_decref(frame);
		free(full);
	}
	json_decref(got);
	free(srv);
}
END_TEST


/* ---- the request frame's fast parse (rpc-json.c) ------------------------ */

/* The tree jansson gives, member order included. */
static void json_same_as_jansson(json_t *v, const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	char *a, *b;

	ck_assert_msg(j != NULL, "jansson refuses %s", text);
	ck_assert(json_equal(v, j));
	a = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	b = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	json_decref(j);
}

static const char *const json_fast[] = {
	"{\"type\":\"req\",\"id\":\"r1\",\"method\":\"chat.send\",\"params\":"
	"{\"sessionKey\":\"agent:main:b1\",\"message\":\"hello\","
	"\"idempotencyKey\":\"k-1\"}}",
	" \t\r\n{ \"a\" : [ 1 , -2 , 0 , -0 , 999999999999999999 , true , "
	"false , null , { } , [ ] , \"\" ] } \n",
	"{\"s\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t u\\u00e9\\u20AC\\ud83d\\ude00"
	"\\u0001 e\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f\"}",
	"{\"z\":1,\"a\":2,\"m\":{\"y\":[[[\"deep\"]]],\"b\":\"\"},\"\":3}",
	"[\"top\",{\"level\":\"array\"}]",
	"{\"" "\xe6\x97\xa5\xe6\x9c\xac" "\":\"key in UTF-8\"}",
};

START_TEST(test_json_fast)
{
	const char *t = json_fast[_i];
	json_t *v = rpc_json_load(t, strlen(t));

	ck_assert_msg(v != NULL, "fast parse refused %s", t);
	json_same_as_jansson(v, t, strlen(t));
	json_decref(v);
}
END_TEST

/* Left to jansson: its tree or its error, never one of ours. */
static const char *const json_slow[] = {
	"", " ", "1", "\"s\"", "null", "{", "{\"a\":1", "{\"a\":1,}", "[1,]",
	"{\"a\" 1}", "{a:1}", "{\"a\":1}x", "{\"a\":1}{}", "{\"a\":01}",
	"{\"a\":-}", "{\"a\":1.5}", "{\"a\":1e3}", "{\"a\":-0.0}",
	"{\"a\":1234567890123456789}", "{\"a\":99999999999999999999}",
	"{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud83d\"}", "{\"a\":\"\\ude00\"}",
	"{\"a\":\"\\ud83d\\u0041\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}",
	"{\"a\":\"\x01\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}",
	"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":\"\x80\"}",
	"{\"a\":\"\xf5\x80\x80\x80\"}", "{\"a\":1,\"a\":2}",
	"{\"a\\u0062\":1}", "{\"a\":tru}", "{\"a\":truex}", "{\"a\":nul}",
	"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]"
	"]]]]]]]]]]]]]]]]}", "{\"a\":\"unterminated",
};

START_TEST(test_json_slow)
{
	const char *t = json_slow[_i];
	json_error_t e1, e2;
	json_t *v = rpc_json_load(t, strlen(t)), *f, *j;

	ck_assert_msg(v == NULL, "fast parse took %s", t);
	f = rpc_json_frame(t, strlen(t), &e1);
	j = json_loadb(t, strlen(t), JSON_REJECT_DUPLICATES, &e2);
	ck_assert((f == NULL) == (j == NULL));
	if (f)
		json_same_as_jansson(f, t, strlen(t));
	else
		ck_assert_str_eq(e1.text, e2.text);
	json_decref(f);
	json_decref(j);
}
END_TEST

/* Bytes past the length are not read; a NUL inside is refused. */
START_TEST(test_json_bounds)
{
	static const char t[] = "{\"a\":\"b\"}trailing";
	static const char nul[] = "{\"a\":\"b\0\"}";
	json_t *v = rpc_json_load(t, 9);

	ck_assert(v != NULL);
	json_same_as_jansson(v, t, 9);
	json_decref(v);
	ck_assert(rpc_json_load(t, 8) == NULL);
	ck_assert(rpc_json_load(nul, sizeof(nul) - 1) == NULL);
}
END_TEST

static Suite *rpc_suite(void)
{
	Suite *s = suite_create("rpc");
	TCase *tc = tcase_create("frames");

	tcase_add_loop_test(tc, test_frame_check, 0, ARRAY_SIZE(frame_cases));
	tcase_add_loop_test(tc, test_connect_params, 0,
			    ARRAY_SIZE(connect_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("policy");
	tcase_add_test(tc, test_scope_rules);
	tcase_add_test(tc, test_method_table);
	tcase_add_test(tc, test_limiter);
	tcase_add_test(tc, test_auth_decision);
	suite_add_tcase(s, tc);
	tc = tcase_create("events");
	tcase_add_test(tc, test_event_splice);
	tcase_add_test(tc, test_event_flags);
	tcase_add_loop_test(tc, test_fan_text, 0,
			    ARRAY_SIZE(fan_strs) * ARRAY_SIZE(fan_ends));
	tcase_add_test(tc, test_fan_text_bad_utf8);
	suite_add_tcase(s, tc);
	tc = tcase_create("json");
	tcase_add_loop_test(tc, test_json_fast, 0, ARRAY_SIZE(json_fast));
	tcase_add_loop_test(tc, test_json_slow, 0, ARRAY_SIZE(json_slow));
	tcase_add_test(tc, test_json_bounds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rpc_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
