/* Node surfaces and pending node pairing requests (store-nodes.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store-nodes.h"

static const char *const store_nodes_prefix[] = {
	[STORE_NODES_SURFACE] = "node.surface.",
	[STORE_NODES_REQUEST] = "node.request.",
};

int store_nodes_list(struct store *st, enum store_nodes_kind kind,
		     json_t **rows)
{
	const char *pfx = store_nodes_prefix[kind];
	sqlite3 *db = st ? store_reader(st) : NULL;
	sqlite3_stmt *s = NULL;
	json_t *a = NULL, *v;
	int r = GW_ESTORE, rc;

	if (!db)
		return GW_EUNAVAIL;
	/* Keys of the prefix: [pfx, pfx + 0xff). */
	if (!(s = store_stmt(db, "SELECT value FROM meta WHERE key > ?1 AND "
			     "key < ?1 || char(255) ORDER BY key"))) {
		log_warn("store", "nodes list: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(s, 1, pfx, -1, SQLITE_STATIC);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = json_loads((const char *)sqlite3_column_text(s, 0), 0,
			       NULL);
		if (json_is_object(v))
			json_array_append_new(a, v);
		else
			json_decref(v);
	}
	if (rc != SQLITE_DONE) {
		log_warn("store", "nodes list: %s", sqlite3_errmsg(db));
		goto out;
	}
	*rows = a;
	a = NULL;
	r = GW_OK;
out:
	json_decref(a);
	store_stmt_done(s);
	return r;
}

int store_nodes_get(struct store *st, enum store_nodes_kind kind,
		    const char *node_id, json_t **row)
{
	char key[512];
	char *val = NULL;
	json_t *v;
	int r;

	snprintf(key, sizeof(key), "%s%s", store_nodes_prefix[kind], node_id);
	r = store_meta_get(st, key, &val);
	if (r != GW_OK)
		return r;
	v = json_loads(val, 0, NULL);
	free(val);
	if (!json_is_object(v)) {
		json_decref(v);
		return GW_ESTORE;
	}
	*row = v;
	return GW_OK;
}

struct store_nodes_job {
	const char *node_id;
	const json_t *row[2];
	int keep[2];
};

static int store_nodes_write_fn(sqlite3 *db, void *arg)
{
	struct store_nodes_job *j = arg;
	char key[512], *text;
	sqlite3_stmt *s = NULL;
	int k, r = GW_OK;

	for (k = 0; k < 2 && r == GW_OK; k++) {
		if (j->keep[k])
			continue;
		snprintf(key, sizeof(key), "%s%s", store_nodes_prefix[k],
			 j->node_id);
		if (!j->row[k]) {
			if (!(s = store_stmt(db, "DELETE FROM meta WHERE "
					     "key = ?")))
				return GW_ESTORE;
			sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		} else {
			if (!(s = store_stmt(db, "INSERT OR REPLACE INTO "
					     "meta(key, value) VALUES(?, ?)")))
				return GW_ESTORE;
			text = json_dumps(j->row[k], JSON_COMPACT);
			sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, text, -1, free);
		}
		if (sqlite3_step(s) != SQLITE_DONE) {
			log_warn("store", "nodes write: %s",
				 sqlite3_errmsg(db));
			r = GW_ESTORE;
		}
		store_stmt_done(s);
		s = NULL;
	}
	return r;
}

int store_nodes_write(struct store *st, const char *node_id,
		      const json_t *surface, int keep_surface,
		      const json_t *request, int keep_request)
{
	struct store_nodes_job j = {
		node_id, {surface, request}, {keep_surface, keep_request}
	};

	if (!st)
		return GW_EUNAVAIL;
	return store_write_sync(st, store_nodes_write_fn, &j, STORE_DURABLE);
}
