/* Offline checks of a state database for `clawgate doctor`: integrity
 * (PRAGMA quick_check) and the schema version against the embedded
 * migrations. Read-only: never migrates, never creates the file. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "store/store.h"

int store_check_file(const char *path, char **quick_check, int *version,
		     int *latest)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *acc = NULL, *n;
	int r = GW_ESTORE, rc;

	*quick_check = NULL;
	*version = 0;
	*latest = store_migrations_count;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
		    SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto out;
	*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	/* At most 10 problems are worth printing. */
	if (sqlite3_prepare_v2(db, "PRAGMA quick_check(10)", -1, &st, NULL) !=
	    SQLITE_OK)
		goto out;
	acc = xstrdup("");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *row = (const char *)sqlite3_column_text(st, 0);

		n = xasprintf("%s%s%s", acc, *acc ? "; " : "",
			      row ? row : "");
		free(acc);
		acc = n;
	}
	if (rc != SQLITE_DONE) {
		n = xasprintf("%s%s%s", acc, *acc ? "; " : "",
			      sqlite3_errmsg(db));
		free(acc);
		acc = n;
	}
	*quick_check = acc;
	acc = NULL;
	r = GW_OK;
out:
	if (r != GW_OK && db && !*quick_check)
		*quick_check = xstrdup(sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(acc);
	return r;
}
