/* Paired devices, device tokens and pairing requests (store-devices.h).
 * Every statement is a constant prepared once per connection (store_stmt)
 * and reset after use (store_stmt_done). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store-devices.h"
#include "store/store.h"

static int store_devices_fail(sqlite3 *db, const char *what)
{
	log_error("store", "devices %s: %s", what,
		  db ? sqlite3_errmsg(db) : "no connection");
	return GW_ESTORE;
}

/* A JSON value as text, bound at i. */
static void store_devices_bind_json(sqlite3_stmt *s, int i, const json_t *v)
{
	char *t = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	if (t)
		sqlite3_bind_text(s, i, t, -1, free);
	else
		sqlite3_bind_null(s, i);
}

static const char *store_devices_col(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

/* New array from a JSON column: [] when NULL or not an array. */
static json_t *store_devices_col_array(sqlite3_stmt *s, int i)
{
	const char *t = store_devices_col(s, i);
	json_t *v = t ? json_loads(t, 0, NULL) : NULL;

	if (!json_is_array(v)) {
		json_decref(v);
		v = json_array();
	}
	return v;
}

/* Run s (a statement of db) to its end, then hand it back. */
static int store_devices_run(sqlite3 *db, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	store_stmt_done(s);
	return rc == SQLITE_DONE ? GW_OK : store_devices_fail(db, what);
}

/* ---- reads -------------------------------------------------------------- */

int store_devices_each(struct store *st,
		       int (*fn)(const struct store_device *d, void *arg),
		       void *arg)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = store_stmt(db, "SELECT device_id, public_key, "
				     "display_name, platform, device_family, "
				     "client_id, client_mode, roles, scopes, "
				     "remote_ip, approved_via, created_at, "
				     "approved_at FROM paired_device");
	struct store_device d;
	json_t *roles, *scopes;
	int rc, stop = 0;

	if (!s)
		return store_devices_fail(db, "load");
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&d, 0, sizeof(d));
		d.id = store_devices_col(s, 0);
		d.public_key = store_devices_col(s, 1);
		d.display_name = store_devices_col(s, 2);
		d.platform = store_devices_col(s, 3);
		d.device_family = store_devices_col(s, 4);
		d.client_id = store_devices_col(s, 5);
		d.client_mode = store_devices_col(s, 6);
		d.roles = roles = store_devices_col_array(s, 7);
		d.scopes = scopes = store_devices_col_array(s, 8);
		d.remote_ip = store_devices_col(s, 9);
		d.via = store_devices_col(s, 10);
		d.created = sqlite3_column_int64(s, 11);
		d.approved = sqlite3_column_int64(s, 12);
		stop = fn(&d, arg);
		json_decref(roles);
		json_decref(scopes);
	}
	store_stmt_done(s);
	return stop || rc == SQLITE_DONE ? GW_OK
					 : store_devices_fail(db, "load");
}

int store_device_tokens_each(struct store *st,
			     int (*fn)(const char *device_id,
				       const struct store_device_token *t,
				       void *arg), void *arg)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = store_stmt(db, "SELECT device_id, role, "
				     "token_hash, scopes, created_at, "
				     "rotated_at, revoked_at, last_used_at "
				     "FROM device_token");
	struct store_device_token t;
	json_t *scopes;
	int rc, stop = 0;

	if (!s)
		return store_devices_fail(db, "load tokens");
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&t, 0, sizeof(t));
		t.role = store_devices_col(s, 1);
		t.hash = store_devices_col(s, 2);
		t.scopes = scopes = store_devices_col_array(s, 3);
		t.created = sqlite3_column_int64(s, 4);
		t.rotated = sqlite3_column_int64(s, 5);
		t.revoked = sqlite3_column_int64(s, 6);
		t.last_used = sqlite3_column_int64(s, 7);
		stop = fn(store_devices_col(s, 0), &t, arg);
		json_decref(scopes);
	}
	store_stmt_done(s);
	return stop || rc == SQLITE_DONE ? GW_OK
					 : store_devices_fail(db, "load tokens");
}

int store_pairing_requests_each(struct store *st,
				int (*fn)(const struct store_pairing_request
					  *r, void *arg), void *arg)
{
	sqlite3 *db = store_reader(st);
	sqlite3_stmt *s = store_stmt(db, "SELECT request_id, device_id, "
				     "public_key, display_name, platform, "
				     "device_family, client_id, client_mode, "
				     "role, scopes, remote_ip, reason, "
				     "is_repair, created_at, updated_at, "
				     "expires_at FROM pairing_request ORDER BY "
				     "updated_at");
	struct store_pairing_request r;
	json_t *scopes;
	int rc, stop = 0;

	if (!s)
		return store_devices_fail(db, "load requests");
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.id = store_devices_col(s, 0);
		r.device_id = store_devices_col(s, 1);
		r.public_key = store_devices_col(s, 2);
		r.display_name = store_devices_col(s, 3);
		r.platform = store_devices_col(s, 4);
		r.device_family = store_devices_col(s, 5);
		r.client_id = store_devices_col(s, 6);
		r.client_mode = store_devices_col(s, 7);
		r.role = store_devices_col(s, 8);
		r.scopes = scopes = store_devices_col_array(s, 9);
		r.remote_ip = store_devices_col(s, 10);
		r.reason = store_devices_col(s, 11);
		r.is_repair = sqlite3_column_int(s, 12);
		r.created = sqlite3_column_int64(s, 13);
		r.updated = sqlite3_column_int64(s, 14);
		r.expires = sqlite3_column_int64(s, 15);
		stop = fn(&r, arg);
		json_decref(scopes);
	}
	store_stmt_done(s);
	return stop || rc == SQLITE_DONE ? GW_OK
					 : store_devices_fail(db,
							      "load requests");
}

/* ---- writes (writer thread, inside a job) -------------------------------- */

static int store_devices_token_put_tx(sqlite3 *db, const char *device_id,
				      const struct store_device_token *t)
{
	sqlite3_stmt *s = store_stmt(db, "INSERT INTO device_token("
				     "device_id, role, token_hash, scopes, "
				     "created_at, rotated_at, revoked_at, "
				     "last_used_at) VALUES(?, ?, ?, ?, ?, "
				     "NULLIF(?, 0), NULLIF(?, 0), "
				     "NULLIF(?, 0))");

	if (!s)
		return store_devices_fail(db, "token");
	store_bind_text(s, 1, device_id);
	store_bind_text(s, 2, t->role);
	store_bind_text(s, 3, t->hash);
	store_devices_bind_json(s, 4, t->scopes);
	sqlite3_bind_int64(s, 5, t->created);
	sqlite3_bind_int64(s, 6, t->rotated);
	sqlite3_bind_int64(s, 7, t->revoked);
	sqlite3_bind_int64(s, 8, t->last_used);
	return store_devices_run(db, s, "token");
}

/* Delete by one key: the statement's only parameter. */
static int store_devices_delete_tx(sqlite3 *db, const char *sql,
				   const char *key, const char *what)
{
	sqlite3_stmt *s = store_stmt(db, sql);

	if (!s)
		return store_devices_fail(db, what);
	store_bind_text(s, 1, key);
	return store_devices_run(db, s, what);
}

static const char store_devices_del_tokens[] =
	"DELETE FROM device_token WHERE device_id = ?";
static const char store_devices_del_device[] =
	"DELETE FROM paired_device WHERE device_id = ?";
static const char store_devices_del_req_id[] =
	"DELETE FROM pairing_request WHERE request_id = ?";
static const char store_devices_del_req_dev[] =
	"DELETE FROM pairing_request WHERE device_id = ?";

static int store_devices_put_tx(sqlite3 *db, const struct store_device *d)
{
	sqlite3_stmt *s = store_stmt(db, "INSERT INTO paired_device("
				     "device_id, public_key, display_name, "
				     "platform, device_family, client_id, "
				     "client_mode, roles, scopes, remote_ip, "
				     "approved_via, created_at, approved_at) "
				     "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
				     "?, ?) ON CONFLICT(device_id) DO UPDATE "
				     "SET public_key = excluded.public_key, "
				     "display_name = excluded.display_name, "
				     "platform = excluded.platform, "
				     "device_family = excluded.device_family, "
				     "client_id = excluded.client_id, "
				     "client_mode = excluded.client_mode, "
				     "roles = excluded.roles, "
				     "scopes = excluded.scopes, "
				     "remote_ip = excluded.remote_ip, "
				     "approved_via = excluded.approved_via, "
				     "approved_at = excluded.approved_at");
	size_t i;
	int r;

	if (!s)
		return store_devices_fail(db, "put");
	store_bind_text(s, 1, d->id);
	store_bind_text(s, 2, d->public_key);
	store_bind_text(s, 3, d->display_name);
	store_bind_text(s, 4, d->platform);
	store_bind_text(s, 5, d->device_family);
	store_bind_text(s, 6, d->client_id);
	store_bind_text(s, 7, d->client_mode);
	store_devices_bind_json(s, 8, d->roles);
	store_devices_bind_json(s, 9, d->scopes);
	store_bind_text(s, 10, d->remote_ip);
	store_bind_text(s, 11, d->via);
	sqlite3_bind_int64(s, 12, d->created);
	sqlite3_bind_int64(s, 13, d->approved);
	r = store_devices_run(db, s, "put");
	if (r == GW_OK)
		r = store_devices_delete_tx(db, store_devices_del_tokens,
					    d->id, "put");
	for (i = 0; r == GW_OK && i < d->ntok; i++)
		r = store_devices_token_put_tx(db, d->id, &d->tok[i]);
	return r;
}

static int store_devices_rename_tx(sqlite3 *db, const char *id,
				   const char *name)
{
	sqlite3_stmt *s = store_stmt(db, "UPDATE paired_device SET "
				     "display_name = ? WHERE device_id = ?");

	if (!s)
		return store_devices_fail(db, "rename");
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, id);
	return store_devices_run(db, s, "rename");
}

static int store_devices_commit_fn(sqlite3 *db, void *arg)
{
	const struct store_devices_change *c = arg;
	int r = GW_OK;

	if (c->put)
		r = store_devices_put_tx(db, c->put);
	if (r == GW_OK && c->rename_id)
		r = store_devices_rename_tx(db, c->rename_id, c->rename_to);
	if (r == GW_OK && c->remove_id)
		r = store_devices_delete_tx(db, store_devices_del_tokens,
					    c->remove_id, "remove");
	if (r == GW_OK && c->remove_id)
		r = store_devices_delete_tx(db, store_devices_del_device,
					    c->remove_id, "remove");
	if (r == GW_OK && c->remove_id)
		r = store_devices_delete_tx(db, store_devices_del_req_dev,
					    c->remove_id, "remove");
	if (r == GW_OK && c->drop_request_id)
		r = store_devices_delete_tx(db, store_devices_del_req_id,
					    c->drop_request_id, "request");
	if (r == GW_OK && c->drop_requests_of)
		r = store_devices_delete_tx(db, store_devices_del_req_dev,
					    c->drop_requests_of, "request");
	if (r == GW_OK && c->action)
		r = store_audit_tx(db, c->actor, c->action, c->target,
				   c->detail, c->remote_ip);
	return r;
}

int store_devices_commit(struct store *st,
			 const struct store_devices_change *c)
{
	return store_write_sync(st, store_devices_commit_fn, (void *)c,
				STORE_DURABLE);
}

/* ---- queued request writes ---------------------------------------------- */

struct store_devices_req_job {
	struct store_pairing_request r;	/* strings owned (xstrdup) */
	json_t *scopes;
	int64_t now;
};

static char *store_devices_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void store_devices_req_job_free(struct store_devices_req_job *j)
{
	free((char *)j->r.id);
	free((char *)j->r.device_id);
	free((char *)j->r.public_key);
	free((char *)j->r.display_name);
	free((char *)j->r.platform);
	free((char *)j->r.device_family);
	free((char *)j->r.client_id);
	free((char *)j->r.client_mode);
	free((char *)j->r.role);
	free((char *)j->r.remote_ip);
	free((char *)j->r.reason);
	json_decref(j->scopes);
	free(j);
}

static int store_devices_req_fn(sqlite3 *db, void *arg)
{
	struct store_devices_req_job *j = arg;
	const struct store_pairing_request *r = &j->r;
	sqlite3_stmt *s;
	int rc;

	s = store_stmt(db, "DELETE FROM pairing_request WHERE expires_at <= ?");
	if (!s)
		return store_devices_fail(db, "expire");
	sqlite3_bind_int64(s, 1, j->now);
	if ((rc = store_devices_run(db, s, "expire")) != GW_OK)
		return rc;
	s = store_stmt(db, "DELETE FROM pairing_request WHERE device_id = ? "
		       "OR request_id = ?");
	if (!s)
		return store_devices_fail(db, "request");
	store_bind_text(s, 1, r->device_id);
	store_bind_text(s, 2, r->id);
	if ((rc = store_devices_run(db, s, "request")) != GW_OK)
		return rc;
	s = store_stmt(db, "INSERT INTO pairing_request(request_id, "
		       "device_id, public_key, display_name, platform, "
		       "device_family, client_id, client_mode, role, scopes, "
		       "remote_ip, reason, is_repair, created_at, updated_at, "
		       "expires_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
		       "?, ?, ?, ?)");
	if (!s)
		return store_devices_fail(db, "request");
	store_bind_text(s, 1, r->id);
	store_bind_text(s, 2, r->device_id);
	store_bind_text(s, 3, r->public_key);
	store_bind_text(s, 4, r->display_name);
	store_bind_text(s, 5, r->platform);
	store_bind_text(s, 6, r->device_family);
	store_bind_text(s, 7, r->client_id);
	store_bind_text(s, 8, r->client_mode);
	store_bind_text(s, 9, r->role);
	store_devices_bind_json(s, 10, r->scopes);
	store_bind_text(s, 11, r->remote_ip);
	store_bind_text(s, 12, r->reason);
	sqlite3_bind_int(s, 13, r->is_repair);
	sqlite3_bind_int64(s, 14, r->created);
	sqlite3_bind_int64(s, 15, r->updated);
	sqlite3_bind_int64(s, 16, r->expires);
	return store_devices_run(db, s, "request");
}

static void store_devices_req_done(int rc, void *arg)
{
	if (rc != GW_OK && rc != GW_EUNAVAIL)
		log_warn("pairing", "pending request write failed: %s",
			 gw_err_str(rc));
	store_devices_req_job_free(arg);
}

void store_pairing_request_queue(struct store *st,
				 const struct store_pairing_request *r,
				 int64_t now)
{
	struct store_devices_req_job *j = xcalloc(1, sizeof(*j));

	j->r = *r;
	j->r.id = store_devices_dup(r->id);
	j->r.device_id = store_devices_dup(r->device_id);
	j->r.public_key = store_devices_dup(r->public_key);
	j->r.display_name = store_devices_dup(r->display_name);
	j->r.platform = store_devices_dup(r->platform);
	j->r.device_family = store_devices_dup(r->device_family);
	j->r.client_id = store_devices_dup(r->client_id);
	j->r.client_mode = store_devices_dup(r->client_mode);
	j->r.role = store_devices_dup(r->role);
	j->r.remote_ip = store_devices_dup(r->remote_ip);
	j->r.reason = store_devices_dup(r->reason);
	j->r.scopes = j->scopes = r->scopes ? json_deep_copy(r->scopes)
					    : NULL;
	j->now = now;
	if (store_write(st, store_devices_req_fn, j, store_devices_req_done) !=
	    GW_OK)
		store_devices_req_done(GW_EUNAVAIL, j);
}
