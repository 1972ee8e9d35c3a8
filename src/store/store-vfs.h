#ifndef CLAWGATE_STORE_VFS_H
#define CLAWGATE_STORE_VFS_H

#include <sqlite3.h>

/* The name of the VFS for the writer connection (the unix VFS with the
 * WAL gathered into one write per commit, store-vfs.c), registered on
 * first use; NULL (SQLite's default) if it could not be. */
const char *store_vfs_name(void);

#endif
