/* Unit tests for src/store/store-devices.c: paired devices, their tokens
 * and pending pairing requests through the store's API (commit, queued
 * request writes, the walks), one transaction per change, statements
 * cached per connection. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-devices.h"
#include "store/store.h"
#include "store-fixture.h"

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* ---- what the walks saw -------------------------------------------------- */

struct seen {
	json_t *devs, *toks, *reqs;	/* arrays of objects */
	int stop_after;			/* stop the walk after this many */
};

static void seen_init(struct seen *s)
{
	s->devs = json_array();
	s->toks = json_array();
	s->reqs = json_array();
	s->stop_after = 0;
}

static void seen_clear(struct seen *s)
{
	json_decref(s->devs);
	json_decref(s->toks);
	json_decref(s->reqs);
}

static json_t *str_or_null(const char *v)
{
	return v ? json_string(v) : json_null();
}

static int seen_dev(const struct store_device *d, void *arg)
{
	struct seen *s = arg;

	ck_assert_uint_eq(d->ntok, 0);
	json_array_append_new(s->devs, json_pack(
		"{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:O,s:O,s:I,s:I}",
		"id", d->id, "public_key", d->public_key,
		"display_name", str_or_null(d->display_name),
		"platform", str_or_null(d->platform),
		"device_family", str_or_null(d->device_family),
		"client_id", str_or_null(d->client_id),
		"client_mode", str_or_null(d->client_mode),
		"remote_ip", str_or_null(d->remote_ip),
		"via", str_or_null(d->via), "roles", d->roles,
		"scopes", d->scopes, "created", (json_int_t)d->created,
		"approved", (json_int_t)d->approved));
	return s->stop_after &&
	       json_array_size(s->devs) >= (size_t)s->stop_after;
}

static int seen_tok(const char *device_id,
		    const struct store_device_token *t, void *arg)
{
	struct seen *s = arg;

	json_array_append_new(s->toks, json_pack(
		"{s:s,s:s,s:s,s:O,s:I,s:I,s:I,s:I}", "device_id", device_id,
		"role", t->role, "hash", t->hash, "scopes", t->scopes,
		"created", (json_int_t)t->created,
		"rotated", (json_int_t)t->rotated,
		"revoked", (json_int_t)t->revoked,
		"last_used", (json_int_t)t->last_used));
	return 0;
}

static int seen_req(const struct store_pairing_request *r, void *arg)
{
	struct seen *s = arg;

	json_array_append_new(s->reqs, json_pack(
		"{s:s,s:s,s:s,s:s,s:O,s:s,s:i,s:I,s:I,s:I,s:o}", "id", r->id,
		"device_id", r->device_id, "public_key", r->public_key,
		"role", r->role, "scopes", r->scopes, "reason", r->reason,
		"is_repair", r->is_repair, "created", (json_int_t)r->created,
		"updated", (json_int_t)r->updated,
		"expires", (json_int_t)r->expires,
		"platform", str_or_null(r->platform)));
	return 0;
}

static void walk(struct store *st, struct seen *s)
{
	ck_assert_int_eq(store_devices_each(st, seen_dev, s), GW_OK);
	ck_assert_int_eq(store_device_tokens_each(st, seen_tok, s), GW_OK);
	ck_assert_int_eq(store_pairing_requests_each(st, seen_req, s), GW_OK);
}

/* Rows of the audit log with action (reader of this thread). */
static int audit_count(struct store *st, const char *action)
{
	sqlite3_stmt *s = NULL;
	int n = -1;

	ck_assert_int_eq(sqlite3_prepare_v2(store_reader(st),
		"SELECT count(*) FROM audit_log WHERE action = ?", -1, &s,
		NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, action, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* ---- fixtures ------------------------------------------------------------ */

static json_t *roles, *scopes, *tscopes;

static void make_dev(struct store_device *d, struct store_device_token *t,
		     size_t ntok)
{
	roles = json_pack("[s,s]", "operator", "node");
	scopes = json_pack("[s,s]", "operator.read", "operator.write");
	tscopes = json_pack("[s]", "operator.read");
	t[0] = (struct store_device_token){
		.role = "operator", .hash = HASH_A, .scopes = tscopes,
		.created = 100, .rotated = 0, .revoked = 0, .last_used = 0,
	};
	t[1] = (struct store_device_token){
		.role = "node", .hash = HASH_B, .scopes = tscopes,
		.created = 101, .rotated = 150, .revoked = 160,
		.last_used = 170,
	};
	*d = (struct store_device){
		.id = "dev1", .public_key = "pk1", .display_name = "Laptop",
		.platform = "linux", .client_id = "cli", .client_mode = "ui",
		.remote_ip = "127.0.0.1", .via = "operator", .roles = roles,
		.scopes = scopes, .created = 100, .approved = 120,
		.tok = t, .ntok = ntok,
	};
}

static void free_dev(void)
{
	json_decref(roles);
	json_decref(scopes);
	json_decref(tscopes);
}

static struct store_pairing_request make_req(const char *id,
					     const char *device_id,
					     int64_t updated, int64_t expires)
{
	return (struct store_pairing_request){
		.id = id, .device_id = device_id, .public_key = "pk",
		.role = "operator", .reason = "scope-upgrade",
		.scopes = tscopes, .is_repair = 1, .created = updated,
		.updated = updated, .expires = expires,
	};
}

/* ---- tests --------------------------------------------------------------- */

/* The token object of role in the walk's tokens, or NULL. */
static json_t *tok_of(struct seen *s, const char *role)
{
	json_t *o;
	size_t i;

	json_array_foreach(s->toks, i, o)
		if (strcmp(json_string_value(json_object_get(o, "role")),
			   role) == 0)
			return o;
	return NULL;
}

static json_int_t int_of(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

START_TEST(test_put_roundtrip)
{
	struct store *st = open_ok();
	struct store_device d;
	struct store_device_token t[2];
	struct store_devices_change c = { 0 };
	struct seen s;
	json_t *o, *detail = json_pack("{s:s}", "requestId", "r1");

	make_dev(&d, t, 2);
	c.put = &d;
	c.action = "device.pair.approve";
	c.actor = "tester";
	c.target = "dev1";
	c.detail = detail;
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	seen_init(&s);
	walk(st, &s);
	ck_assert_uint_eq(json_array_size(s.devs), 1);
	o = json_array_get(s.devs, 0);
	ck_assert_str_eq(json_string_value(json_object_get(o, "id")), "dev1");
	ck_assert_str_eq(json_string_value(json_object_get(o,
		"display_name")), "Laptop");
	ck_assert_str_eq(json_string_value(json_object_get(o, "via")),
			 "operator");
	ck_assert(json_is_null(json_object_get(o, "device_family")));
	ck_assert(json_equal(json_object_get(o, "roles"), roles));
	ck_assert(json_equal(json_object_get(o, "scopes"), scopes));
	ck_assert_int_eq(int_of(o, "created"), 100);
	ck_assert_int_eq(int_of(o, "approved"), 120);
	/* tokens: 0 stored as NULL reads back 0; the others as given */
	ck_assert_uint_eq(json_array_size(s.toks), 2);
	o = tok_of(&s, "operator");
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "device_id")),
			 "dev1");
	ck_assert_str_eq(json_string_value(json_object_get(o, "hash")),
			 HASH_A);
	ck_assert(json_equal(json_object_get(o, "scopes"), tscopes));
	ck_assert_int_eq(int_of(o, "created"), 100);
	ck_assert_int_eq(int_of(o, "rotated"), 0);
	ck_assert_int_eq(int_of(o, "revoked"), 0);
	o = tok_of(&s, "node");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(int_of(o, "rotated"), 150);
	ck_assert_int_eq(int_of(o, "revoked"), 160);
	ck_assert_int_eq(int_of(o, "last_used"), 170);
	seen_clear(&s);
	ck_assert_int_eq(audit_count(st, "device.pair.approve"), 1);
	json_decref(detail);
	free_dev();
	store_close(st);
}
END_TEST

/* A second put updates in place (created kept) and replaces the tokens. */
START_TEST(test_put_replaces_tokens)
{
	struct store *st = open_ok();
	struct store_device d;
	struct store_device_token t[2];
	struct store_devices_change c = { 0 };
	struct seen s;
	json_t *o;

	make_dev(&d, t, 2);
	c.put = &d;
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	d.ntok = 1;
	d.created = 999;
	d.approved = 500;
	d.display_name = NULL;
	d.via = "silent";
	t[0].rotated = 400;
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	seen_init(&s);
	walk(st, &s);
	ck_assert_uint_eq(json_array_size(s.devs), 1);
	o = json_array_get(s.devs, 0);
	ck_assert_int_eq(int_of(o, "created"), 100);
	ck_assert_int_eq(int_of(o, "approved"), 500);
	ck_assert(json_is_null(json_object_get(o, "display_name")));
	ck_assert_str_eq(json_string_value(json_object_get(o, "via")),
			 "silent");
	ck_assert_uint_eq(json_array_size(s.toks), 1);
	ck_assert_int_eq(int_of(tok_of(&s, "operator"), "rotated"), 400);
	ck_assert_ptr_null(tok_of(&s, "node"));
	seen_clear(&s);
	/* no audit without an action */
	ck_assert_int_eq(audit_count(st, "device.pair.approve"), 0);
	free_dev();
	store_close(st);
}
END_TEST

START_TEST(test_rename_remove)
{
	struct store *st = open_ok();
	struct store_device d;
	struct store_device_token t[2];
	struct store_devices_change c = { 0 };
	struct store_pairing_request r;
	struct seen s;

	make_dev(&d, t, 2);
	c.put = &d;
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	r = make_req("req1", "dev1", 10, INT64_MAX);
	store_pairing_request_queue(st, &r, 10);
	c = (struct store_devices_change){ .rename_id = "dev1",
					   .rename_to = "Desk",
					   .action = "device.pair.rename",
					   .target = "dev1" };
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	seen_init(&s);
	walk(st, &s);
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(s.devs, 0), "display_name")), "Desk");
	ck_assert_uint_eq(json_array_size(s.reqs), 1);
	seen_clear(&s);
	/* rename to NULL clears the name */
	c.rename_to = NULL;
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	seen_init(&s);
	walk(st, &s);
	ck_assert(json_is_null(json_object_get(json_array_get(s.devs, 0),
					       "display_name")));
	seen_clear(&s);
	ck_assert_int_eq(audit_count(st, "device.pair.rename"), 2);
	/* remove: the device, its tokens and its request */
	c = (struct store_devices_change){ .remove_id = "dev1",
					   .action = "device.pair.remove",
					   .target = "dev1" };
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	seen_init(&s);
	walk(st, &s);
	ck_assert_uint_eq(json_array_size(s.devs), 0);
	ck_assert_uint_eq(json_array_size(s.toks), 0);
	ck_assert_uint_eq(json_array_size(s.reqs), 0);
	seen_clear(&s);
	ck_assert_int_eq(audit_count(st, "device.pair.remove"), 1);
	free_dev();
	store_close(st);
}
END_TEST

START_TEST(test_requests)
{
	struct store *st = open_ok();
	struct store_devices_change c = { 0 };
	struct store_pairing_request r;
	struct seen s;
	json_t *o;

	tscopes = json_pack("[s]", "operator.admin");
	/* queued, not awaited: visible once the queue drained */
	r = make_req("req1", "devA", 10, 1000);
	r.platform = "macos";
	store_pairing_request_queue(st, &r, 10);
	r = make_req("req2", "devB", 20, 2000);
	store_pairing_request_queue(st, &r, 20);
	ck_assert_int_eq(store_flush(st), GW_OK);
	seen_init(&s);
	walk(st, &s);
	ck_assert_uint_eq(json_array_size(s.reqs), 2);
	/* in updated order */
	o = json_array_get(s.reqs, 0);
	ck_assert_str_eq(json_string_value(json_object_get(o, "id")), "req1");
	ck_assert_str_eq(json_string_value(json_object_get(o, "platform")),
			 "macos");
	ck_assert_str_eq(json_string_value(json_object_get(o, "reason")),
			 "scope-upgrade");
	ck_assert(json_equal(json_object_get(o, "scopes"), tscopes));
	ck_assert_int_eq(int_of(o, "is_repair"), 1);
	ck_assert_int_eq(int_of(o, "expires"), 1000);
	seen_clear(&s);
	/* a new request of devA replaces its old one; at now=1500 req1's
	 * expiry (1000) has passed anyway, req2's (2000) has not */
	r = make_req("req3", "devA", 1500, 3000);
	store_pairing_request_queue(st, &r, 1500);
	ck_assert_int_eq(store_flush(st), GW_OK);
	seen_init(&s);
	walk(st, &s);
	ck_assert_uint_eq(json_array_size(s.reqs), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(s.reqs, 0), "id")), "req2");
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(s.reqs, 1), "id")), "req3");
	seen_clear(&s);
	/* expiry: now=2500 drops req2 */
	r = make_req("req4", "devC", 2500, 4000);
	store_pairing_request_queue(st, &r, 2500);
	/* drop by request id and by device, with the audit row */
	c = (struct store_devices_change){ .drop_request_id = "req3",
					   .drop_requests_of = "devC",
					   .action = "device.pair.reject" };
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	seen_init(&s);
	walk(st, &s);
	ck_assert_uint_eq(json_array_size(s.reqs), 0);
	seen_clear(&s);
	ck_assert_int_eq(audit_count(st, "device.pair.reject"), 1);
	json_decref(tscopes);
	store_close(st);
}
END_TEST

/* A failing part rolls the whole change back, audit row included. */
START_TEST(test_commit_atomic)
{
	struct store *st = open_ok();
	struct store_device d;
	struct store_device_token t[2];
	struct store_devices_change c = { 0 };
	struct seen s;

	make_dev(&d, t, 2);
	t[1].hash = "short";		/* CHECK (length(token_hash) = 64) */
	c.put = &d;
	c.action = "device.pair.approve";
	ck_assert_int_eq(store_devices_commit(st, &c), GW_ESTORE);
	seen_init(&s);
	walk(st, &s);
	ck_assert_uint_eq(json_array_size(s.devs), 0);
	ck_assert_uint_eq(json_array_size(s.toks), 0);
	seen_clear(&s);
	ck_assert_int_eq(audit_count(st, "device.pair.approve"), 0);
	/* the store still works afterwards */
	t[1].hash = HASH_B;
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	ck_assert_int_eq(audit_count(st, "device.pair.approve"), 1);
	free_dev();
	store_close(st);
}
END_TEST

/* Each statement is prepared once per connection and reused: after many
 * commits and walks the writer and the reader hold one statement each. */
START_TEST(test_statements_cached)
{
	struct store *st = open_ok();
	struct store_device d;
	struct store_device_token t[2];
	struct store_devices_change c = { 0 };
	struct seen s;
	int i;

	make_dev(&d, t, 2);
	c.put = &d;
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	ck_assert_int_eq(writer_stmts(st, "INSERT INTO paired_device"), 1);
	ck_assert_int_eq(writer_stmts(st, "INSERT INTO device_token"), 1);
	for (i = 0; i < 3; i++) {
		seen_init(&s);
		walk(st, &s);
		seen_clear(&s);
	}
	ck_assert_int_eq(stmts_of(store_reader(st), "FROM paired_device"), 1);
	free_dev();
	store_close(st);
}
END_TEST

/* A walk stops when its callback says so. */
START_TEST(test_walk_stops)
{
	struct store *st = open_ok();
	struct store_device d;
	struct store_device_token t[2];
	struct store_devices_change c = { 0 };
	struct seen s;

	make_dev(&d, t, 0);
	c.put = &d;
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	d.id = "dev2";
	ck_assert_int_eq(store_devices_commit(st, &c), GW_OK);
	seen_init(&s);
	s.stop_after = 1;
	ck_assert_int_eq(store_devices_each(st, seen_dev, &s), GW_OK);
	ck_assert_uint_eq(json_array_size(s.devs), 1);
	seen_clear(&s);
	seen_init(&s);
	ck_assert_int_eq(store_devices_each(st, seen_dev, &s), GW_OK);
	ck_assert_uint_eq(json_array_size(s.devs), 2);
	seen_clear(&s);
	free_dev();
	store_close(st);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, test_put_roundtrip);
	tcase_add_test(tc, test_put_replaces_tokens);
	tcase_add_test(tc, test_rename_remove);
	tcase_add_test(tc, test_requests);
	tcase_add_test(tc, test_commit_atomic);
	tcase_add_test(tc, test_statements_cached);
	tcase_add_test(tc, test_walk_stops);
}

int main(void)
{
	return fixture_main("store-devices", add_tests);
}
