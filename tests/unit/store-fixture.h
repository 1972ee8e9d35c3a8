/* The fixture of the store's unit tests that open a fresh database: a
 * temporary state directory per test (removed afterwards) and open_ok().
 * Include once per test program, after check.h. */
#pragma once

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core/common.h"
#include "store/store.h"

static char tmpdir[256];
static char dbpath[512];

static int rm_cb(const char *p, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-store-XXXXXX",
		 t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/state/clawgate.sqlite", tmpdir);
}

static void teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_ok(void)
{
	struct store *st = NULL;
	char *msg = NULL;

	ck_assert_int_eq(store_open(dbpath, &st, &msg), GW_OK);
	ck_assert_ptr_null(msg);
	return st;
}
