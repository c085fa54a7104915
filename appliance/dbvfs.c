#include "appliance/dbvfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

static sqlite3_vfs wrapped;
static sqlite3_vfs *base;
static int registered;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int vfs_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags,
                    int *out_flags)
{
	(void)v;
	if ((flags & SQLITE_OPEN_MAIN_JOURNAL) && (flags & SQLITE_OPEN_CREATE) && name != NULL &&
	    access(name, F_OK) == 0)
		flags &= ~SQLITE_OPEN_CREATE;
	/* The base VFS's own object: its xOpen reads its pAppData. */
	return base->xOpen(base, name, f, flags, out_flags);
}

static void vfs_register(void)
{
	base = sqlite3_vfs_find(NULL);
	if (base == NULL)
		return;
	wrapped = *base;
	wrapped.zName = "sealbox-unix";
	wrapped.pNext = NULL;
	wrapped.xOpen = vfs_open;
	registered = sqlite3_vfs_register(&wrapped, 0) == SQLITE_OK;
}

const char *dbvfs_name(void)
{
	pthread_once(&once, vfs_register);
	return registered ? wrapped.zName : NULL;
}
