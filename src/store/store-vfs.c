/* The writer's WAL written in one pwrite per commit.
 *
 * SQLite writes each WAL frame with two calls (its 24-byte header, then
 * the page), so a commit of 20 pages was 40 pwrites: in a chat.send
 * benchmark, 40 % of the writer thread's CPU was the kernel's write path
 * entered once per call (ext4's write_begin/write_end per page touched,
 * and every header straddles two). This VFS is the default one (unix)
 * with the WAL file alone wrapped: writes that append to the WAL are
 * gathered in a buffer and go to the file in one call, at the latest
 * with the page of the transaction's commit frame (a frame whose header
 * carries the database size, in the documented WAL format), so before
 * SQLite publishes the commit in the WAL index and returns from COMMIT:
 * readers (ours or another process's) and a kill -9 after the commit see
 * the same file as without the buffer. Any other call on the WAL file
 * (read, sync, truncate, size, a write elsewhere, close, ...) writes the
 * buffer out first, so SQLite never sees the file behind what it wrote.
 * The database, journal and other files are the unix VFS's own, not
 * wrapped.
 *
 * Only the writer connection uses it (store_open), the one that writes
 * frames; a connection is used by one thread at a time, so is its WAL
 * file and its buffer. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/store-vfs.h"

#define STORE_VFS_NAME "clawgate-wal"
/* Gathered bytes, at most: the unix VFS writes at most 128 KiB - 1 in
 * one call (its seekAndWrite masks the length to 17 bits). */
#define STORE_VFS_BUF (120 * 1024)
#define STORE_VFS_FRAME_HDR 24		/* a WAL frame's header */

struct store_wal_file {
	sqlite3_file base;		/* pMethods = &store_vfs_wal_io */
	unsigned char *buf;
	sqlite3_int64 off;		/* the file offset of buf[0] */
	int len;
	int commit_next;		/* the next write ends a commit frame */
	/* the unix file follows (store_vfs_real) */
};

_Static_assert(sizeof(struct store_wal_file) % 8 == 0,
	       "the unix file after ours stays aligned");

static sqlite3_vfs store_vfs;
static sqlite3_vfs *store_vfs_unix;
static const sqlite3_io_methods store_vfs_wal_io;

/* The wrapped file, after ours (sizeof is a multiple of 8). */
static sqlite3_file *store_vfs_real(sqlite3_file *f)
{
	return (sqlite3_file *)((struct store_wal_file *)f + 1);
}

static int store_vfs_flush(struct store_wal_file *w)
{
	sqlite3_file *r = store_vfs_real(&w->base);
	int rc;

	if (!w->len)
		return SQLITE_OK;
	rc = r->pMethods->xWrite(r, w->buf, w->len, w->off);
	/* Failed: SQLite fails the statement and rolls back; what was
	 * gathered is beyond the frames it will use. */
	w->len = 0;
	w->commit_next = 0;
	return rc;
}

static unsigned store_vfs_be32(const unsigned char *p)
{
	return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 |
	       (unsigned)p[2] << 8 | p[3];
}

static int store_vfs_write(sqlite3_file *f, const void *data, int amt,
			   sqlite3_int64 off)
{
	struct store_wal_file *w = (struct store_wal_file *)f;
	sqlite3_file *r = store_vfs_real(f);
	int rc, commit;

	if (w->len && off != w->off + w->len &&
	    (rc = store_vfs_flush(w)) != SQLITE_OK)
		return rc;
	if (w->len + amt > STORE_VFS_BUF &&
	    (rc = store_vfs_flush(w)) != SQLITE_OK)
		return rc;
	if (!w->buf && amt <= STORE_VFS_BUF && !(w->buf = malloc(STORE_VFS_BUF)))
		return SQLITE_IOERR_NOMEM;
	if (amt > STORE_VFS_BUF)
		return r->pMethods->xWrite(r, data, amt, off);
	if (!w->len)
		w->off = off;
	memcpy(w->buf + w->len, data, (size_t)amt);
	w->len += amt;
	commit = w->commit_next;
	/* A frame header with a database size: a commit frame, whose page
	 * is written next. */
	w->commit_next = amt == STORE_VFS_FRAME_HDR &&
			 store_vfs_be32((const unsigned char *)data + 4) != 0;
	return commit ? store_vfs_flush(w) : SQLITE_OK;
}

static int store_vfs_close(sqlite3_file *f)
{
	struct store_wal_file *w = (struct store_wal_file *)f;
	sqlite3_file *r = store_vfs_real(f);
	int rc = store_vfs_flush(w), rc2 = SQLITE_OK;

	if (r->pMethods)
		rc2 = r->pMethods->xClose(r);
	free(w->buf);
	w->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

/* The other calls: the buffer out first, then the unix file's own. */
#define STORE_VFS_FLUSHED(w)						\
	do {								\
		int frc_ = store_vfs_flush(w);				\
		if (frc_ != SQLITE_OK)					\
			return frc_;					\
	} while (0)

static int store_vfs_read(sqlite3_file *f, void *data, int amt,
			  sqlite3_int64 off)
{
	sqlite3_file *r = store_vfs_real(f);

	STORE_VFS_FLUSHED((struct store_wal_file *)f);
	return r->pMethods->xRead(r, data, amt, off);
}

static int store_vfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	sqlite3_file *r = store_vfs_real(f);

	STORE_VFS_FLUSHED((struct store_wal_file *)f);
	return r->pMethods->xTruncate(r, size);
}

static int store_vfs_sync(sqlite3_file *f, int flags)
{
	sqlite3_file *r = store_vfs_real(f);

	STORE_VFS_FLUSHED((struct store_wal_file *)f);
	return r->pMethods->xSync(r, flags);
}

static int store_vfs_size(sqlite3_file *f, sqlite3_int64 *size)
{
	sqlite3_file *r = store_vfs_real(f);

	STORE_VFS_FLUSHED((struct store_wal_file *)f);
	return r->pMethods->xFileSize(r, size);
}

static int store_vfs_lock(sqlite3_file *f, int lock)
{
	sqlite3_file *r = store_vfs_real(f);

	STORE_VFS_FLUSHED((struct store_wal_file *)f);
	return r->pMethods->xLock(r, lock);
}

static int store_vfs_unlock(sqlite3_file *f, int lock)
{
	sqlite3_file *r = store_vfs_real(f);

	STORE_VFS_FLUSHED((struct store_wal_file *)f);
	return r->pMethods->xUnlock(r, lock);
}

static int store_vfs_reserved(sqlite3_file *f, int *out)
{
	sqlite3_file *r = store_vfs_real(f);

	STORE_VFS_FLUSHED((struct store_wal_file *)f);
	return r->pMethods->xCheckReservedLock(r, out);
}

static int store_vfs_fcntl(sqlite3_file *f, int op, void *arg)
{
	sqlite3_file *r = store_vfs_real(f);

	STORE_VFS_FLUSHED((struct store_wal_file *)f);
	return r->pMethods->xFileControl(r, op, arg);
}

static int store_vfs_sector(sqlite3_file *f)
{
	sqlite3_file *r = store_vfs_real(f);

	return r->pMethods->xSectorSize(r);
}

static int store_vfs_device(sqlite3_file *f)
{
	sqlite3_file *r = store_vfs_real(f);

	return r->pMethods->xDeviceCharacteristics(r);
}

/* A WAL file has no shared memory and is not mapped (SQLite maps the
 * database file only): the version 1 methods are all it is given. */
static const sqlite3_io_methods store_vfs_wal_io = {
	.iVersion = 1,
	.xClose = store_vfs_close,
	.xRead = store_vfs_read,
	.xWrite = store_vfs_write,
	.xTruncate = store_vfs_truncate,
	.xSync = store_vfs_sync,
	.xFileSize = store_vfs_size,
	.xLock = store_vfs_lock,
	.xUnlock = store_vfs_unlock,
	.xCheckReservedLock = store_vfs_reserved,
	.xFileControl = store_vfs_fcntl,
	.xSectorSize = store_vfs_sector,
	.xDeviceCharacteristics = store_vfs_device,
};

static int store_vfs_open(sqlite3_vfs *vfs, sqlite3_filename name,
			  sqlite3_file *f, int flags, int *out_flags)
{
	struct store_wal_file *w = (struct store_wal_file *)f;
	sqlite3_file *r = store_vfs_real(f);
	int rc;

	(void)vfs;
	if (!(flags & SQLITE_OPEN_WAL))
		return store_vfs_unix->xOpen(store_vfs_unix, name, f, flags,
					     out_flags);
	memset(w, 0, sizeof(*w));
	r->pMethods = NULL;
	rc = store_vfs_unix->xOpen(store_vfs_unix, name, r, flags, out_flags);
	if (rc != SQLITE_OK) {
		if (r->pMethods)
			r->pMethods->xClose(r);
		f->pMethods = NULL;
		return rc;
	}
	f->pMethods = &store_vfs_wal_io;
	return SQLITE_OK;
}

static void store_vfs_init(void)
{
	store_vfs_unix = sqlite3_vfs_find(NULL);
	if (!store_vfs_unix)
		return;
	/* The unix VFS's own methods and data (its calls do not look at
	 * which sqlite3_vfs they were given beyond pAppData, kept); its
	 * files, or a WAL file with ours in front. */
	store_vfs = *store_vfs_unix;
	store_vfs.pNext = NULL;
	store_vfs.zName = STORE_VFS_NAME;
	store_vfs.szOsFile = (int)sizeof(struct store_wal_file) +
			     store_vfs_unix->szOsFile;
	store_vfs.xOpen = store_vfs_open;
	if (sqlite3_vfs_register(&store_vfs, 0) != SQLITE_OK)
		store_vfs_unix = NULL;
}

const char *store_vfs_name(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, store_vfs_init);
	return store_vfs_unix ? STORE_VFS_NAME : NULL;
}
