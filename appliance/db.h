/* The box's SQLite database: the custody log's index, holds, policies,
 * identity.  Opened with the settings the custody log depends on, read back
 * after opening: if any differs the box refuses to run. */
#ifndef SBX_DB_H
#define SBX_DB_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "crypto/err.h"

#define DB_SCHEMA_VERSION 1

/* Opens (create != 0: creates a new file, which must not exist) and checks
 * the settings: DBCONFIG_DEFENSIVE on, trusted_schema off, synchronous FULL,
 * journal_mode TRUNCATE, foreign_keys on.  An existing database gets its
 * journal file created (and its directory synced) if it has none. */
int db_open(const char *path, int create, sqlite3 **out, struct sbx_err *e);
void db_close(sqlite3 *db);

/* Creates the schema (STRICT tables) in a new database. */
int db_create_schema(sqlite3 *db, struct sbx_err *e);

int db_exec(sqlite3 *db, const char *sql, struct sbx_err *e);
int db_begin(sqlite3 *db, struct sbx_err *e);      /* BEGIN IMMEDIATE */
int db_commit(sqlite3 *db, struct sbx_err *e);
void db_rollback(sqlite3 *db);

/* meta key/value store (values are blobs). */
int db_meta_set(sqlite3 *db, const char *key, const void *val, size_t len, struct sbx_err *e);
/* *val is malloc'd; SBX_ENOENT if absent. */
int db_meta_get(sqlite3 *db, const char *key, uint8_t **val, size_t *len, struct sbx_err *e);
int db_meta_set_u64(sqlite3 *db, const char *key, uint64_t v, struct sbx_err *e);
int db_meta_get_u64(sqlite3 *db, const char *key, uint64_t *v, struct sbx_err *e);

/* Prepares or fails with a message naming the statement. */
int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct sbx_err *e);
/* sqlite3_step expecting SQLITE_DONE. */
int db_step_done(sqlite3 *db, sqlite3_stmt *st, struct sbx_err *e);

#endif
