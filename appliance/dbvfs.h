/* The SQLite VFS the box opens its database with: the default unix VFS,
 * except that an existing rollback journal is opened without
 * SQLITE_OPEN_CREATE.  Why: for a journal opened with CREATE, SQLite syncs
 * the directory at the first sync and ignores a failure of that sync.  The
 * box creates the journal once and syncs its directory itself, checking
 * the result (appliance/db.c); after that no sync may fail unseen. */
#ifndef SBX_DBVFS_H
#define SBX_DBVFS_H

/* Registers the VFS (once; not as the default) and returns its name, or
 * NULL if SQLite has no default VFS to wrap. */
const char *dbvfs_name(void);

#endif
