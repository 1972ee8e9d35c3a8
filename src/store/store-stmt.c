/* Prepared statements kept per connection: store_stmt prepares a constant
 * SQL text once (SQLITE_PREPARE_PERSISTENT) on a connection of the store
 * and hands the same statement back on every later call; store_stmt_done
 * resets it. Parsing is most of the cost of the small statements the
 * store runs (sqlite3Parser was the top of the writer's profile).
 *
 * A cache belongs to one connection and is used only by the thread that
 * owns that connection at the time (the writer; a reader's thread), so
 * its entries need no lock. The registry that maps a connection to its
 * cache is guarded by a mutex; each thread memoises its last lookup,
 * checked against a generation bumped whenever a cache is dropped. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "store/store.h"

#define STORE_STMT_MAX 128	/* statements cached per connection */

struct store_stmt_ent {
	const char *sql;	/* the caller's constant (identity) */
	sqlite3_stmt *s;
	int busy;		/* handed out, not yet done */
};

struct store_stmt_cache {
	struct store_stmt_cache *next;
	sqlite3 *db;
	struct store_stmt_ent ent[STORE_STMT_MAX];
	int n;
};

static pthread_mutex_t store_stmt_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store_stmt_cache *store_stmt_caches;
static atomic_uint store_stmt_gen;

static __thread struct {
	sqlite3 *db;
	struct store_stmt_cache *c;
	unsigned gen;
} store_stmt_memo;

void store_stmt_register(sqlite3 *db)
{
	struct store_stmt_cache *c = xcalloc(1, sizeof(*c));

	c->db = db;
	pthread_mutex_lock(&store_stmt_mu);
	c->next = store_stmt_caches;
	store_stmt_caches = c;
	atomic_fetch_add(&store_stmt_gen, 1);
	pthread_mutex_unlock(&store_stmt_mu);
}

void store_stmt_forget(sqlite3 *db)
{
	struct store_stmt_cache **pp, *c = NULL;

	pthread_mutex_lock(&store_stmt_mu);
	for (pp = &store_stmt_caches; *pp; pp = &(*pp)->next) {
		if ((*pp)->db == db) {
			c = *pp;
			*pp = c->next;
			break;
		}
	}
	atomic_fetch_add(&store_stmt_gen, 1);
	pthread_mutex_unlock(&store_stmt_mu);
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		sqlite3_finalize(c->ent[i].s);
	free(c);
}

/* The cache of db (registered connections only) or NULL. */
static struct store_stmt_cache *store_stmt_cache_of(sqlite3 *db)
{
	unsigned gen = atomic_load(&store_stmt_gen);
	struct store_stmt_cache *c;

	if (store_stmt_memo.db == db && store_stmt_memo.gen == gen)
		return store_stmt_memo.c;
	pthread_mutex_lock(&store_stmt_mu);
	for (c = store_stmt_caches; c; c = c->next)
		if (c->db == db)
			break;
	gen = atomic_load(&store_stmt_gen);
	pthread_mutex_unlock(&store_stmt_mu);
	store_stmt_memo.db = db;
	store_stmt_memo.c = c;
	store_stmt_memo.gen = gen;
	return c;
}

sqlite3_stmt *store_stmt(sqlite3 *db, const char *sql)
{
	struct store_stmt_cache *c;
	struct store_stmt_ent *e;
	sqlite3_stmt *s = NULL;

	if (!db)
		return NULL;
	c = store_stmt_cache_of(db);
	if (c) {
		for (int i = 0; i < c->n; i++) {
			e = &c->ent[i];
			if (e->sql != sql || e->busy ||
			    strcmp(sqlite3_sql(e->s), sql) != 0)
				continue;
			e->busy = 1;
			return e->s;
		}
	}
	if (sqlite3_prepare_v3(db, sql, -1, c && c->n < STORE_STMT_MAX ?
			       SQLITE_PREPARE_PERSISTENT : 0, &s, NULL) !=
	    SQLITE_OK) {
		log_error("store", "%s: %s", sql, sqlite3_errmsg(db));
		sqlite3_finalize(s);
		return NULL;
	}
	if (c && c->n < STORE_STMT_MAX) {
		e = &c->ent[c->n++];
		e->sql = sql;
		e->s = s;
		e->busy = 1;
	}
	return s;
}

void store_stmt_done(sqlite3_stmt *s)
{
	struct store_stmt_cache *c;

	if (!s)
		return;
	c = store_stmt_cache_of(sqlite3_db_handle(s));
	for (int i = 0; c && i < c->n; i++) {
		if (c->ent[i].s != s)
			continue;
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		c->ent[i].busy = 0;
		return;
	}
	sqlite3_finalize(s);
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

void store_bind_static(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

void store_bind_pos(sqlite3_stmt *s, int i, int64_t v)
{
	if (v > 0)
		sqlite3_bind_int64(s, i, v);
	else
		sqlite3_bind_null(s, i);
}
