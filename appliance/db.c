#include "appliance/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/dbvfs.h"
#include "export/atomic.h"

static const char *const schema_sql =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;"
	/* The canonical record bytes are the truth; the other columns are an
	 * index re-derived from them and checked by `sealbox log verify`. */
	"CREATE TABLE records ("
	"  seq INTEGER PRIMARY KEY, body BLOB NOT NULL, leaf BLOB NOT NULL,"
	"  time_ms INTEGER NOT NULL, event TEXT NOT NULL, outcome TEXT NOT NULL,"
	"  case_id TEXT NOT NULL, bundle_id TEXT NOT NULL) STRICT;"
	"CREATE INDEX records_case ON records(case_id);"
	/* One signed head per append.  sig is NULL only between the commit of
	 * the record and the signature (rolled forward on the next start). */
	"CREATE TABLE heads ("
	"  tree_size INTEGER PRIMARY KEY, body BLOB NOT NULL, sig BLOB,"
	"  counter INTEGER NOT NULL) STRICT;"
	"CREATE TABLE policies (hash BLOB PRIMARY KEY, body BLOB NOT NULL,"
	"  installed_seq INTEGER NOT NULL) STRICT;"
	"CREATE TABLE holds ("
	"  case_id TEXT PRIMARY KEY, authority TEXT NOT NULL, purpose TEXT NOT NULL,"
	"  operator TEXT NOT NULL, opened_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
	"  renewed_ms INTEGER, closed_ms INTEGER, state TEXT NOT NULL"
	"  CHECK (state IN ('open','closed'))) STRICT;"
	/* Sealed bundles.  wrapped_key is the content key wrapped to the TPM's
	 * decrypt key; purging sets it NULL (crypto-erase), then deletes the file. */
	"CREATE TABLE bundles ("
	"  id TEXT PRIMARY KEY, case_id TEXT NOT NULL, sealed_ms INTEGER NOT NULL,"
	"  reads INTEGER NOT NULL, images INTEGER NOT NULL, bytes INTEGER NOT NULL,"
	"  ciphertext_sha256 TEXT NOT NULL, wrapped_key BLOB, record_seq INTEGER NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('sealed','purged')), purged_ms INTEGER) STRICT;"
	"CREATE INDEX bundles_case ON bundles(case_id);"
	/* Trust anchors per role, CRLs (one per issuer name, the newest), and
	 * recipients (docs/RECIPIENTS.md).  There is no federal role. */
	"CREATE TABLE trust_anchors ("
	"  role TEXT NOT NULL CHECK (role IN ('court','prosecutor')),"
	"  cert_sha256 BLOB NOT NULL CHECK (length(cert_sha256) = 32), cert BLOB NOT NULL,"
	"  subject TEXT NOT NULL, not_before_ms INTEGER NOT NULL, not_after_ms INTEGER NOT NULL,"
	"  added_ms INTEGER NOT NULL, operator TEXT NOT NULL, record_seq INTEGER NOT NULL,"
	"  PRIMARY KEY (role, cert_sha256)) STRICT;"
	"CREATE TABLE crls ("
	"  issuer_key BLOB PRIMARY KEY CHECK (length(issuer_key) = 32), issuer TEXT NOT NULL,"
	"  crl BLOB NOT NULL, crl_sha256 BLOB NOT NULL, signer TEXT NOT NULL,"
	"  this_update_ms INTEGER NOT NULL, next_update_ms INTEGER NOT NULL,"
	"  crl_number TEXT NOT NULL, revoked INTEGER NOT NULL, loaded_ms INTEGER NOT NULL,"
	"  operator TEXT NOT NULL, record_seq INTEGER NOT NULL) STRICT;"
	"CREATE TABLE recipients ("
	"  name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('court','prosecutor')),"
	"  cert BLOB NOT NULL, chain BLOB NOT NULL,"
	"  cert_sha256 BLOB NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"
	"  subject TEXT NOT NULL, attestation TEXT NOT NULL, operator TEXT NOT NULL,"
	"  added_ms INTEGER NOT NULL, record_seq INTEGER NOT NULL) STRICT;";

static int fail_db(sqlite3 *db, struct sbx_err *e, const char *what)
{
	return sbx_fail(e, SBX_EIO, "database: %s: %s", what,
	                db ? sqlite3_errmsg(db) : "cannot allocate");
}

int db_exec(sqlite3 *db, const char *sql, struct sbx_err *e)
{
	char *msg = NULL;
	int r = 0;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		r = sbx_fail(e, SBX_EIO, "database: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
	}
	return r;
}

int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct sbx_err *e)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return fail_db(db, e, "prepare");
	}
	return 0;
}

int db_step_done(sqlite3 *db, sqlite3_stmt *st, struct sbx_err *e)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_CONSTRAINT)
		return sbx_fail(e, SBX_EEXIST, "database: %s", sqlite3_errmsg(db));
	return fail_db(db, e, "write");
}

static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int r = SBX_EIO;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

/* Sets the custody log's required settings and reads every one back: a
 * build or a file that silently ignores one must not run. */
static int settings_apply_and_check(sqlite3 *db, struct sbx_err *e)
{
	int on = -1;
	char v[64];

	if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK || on != 1)
		return sbx_fail(e, SBX_EIO, "database: cannot enable SQLITE_DBCONFIG_DEFENSIVE");
	if (db_exec(db, "PRAGMA trusted_schema=OFF; PRAGMA synchronous=FULL;"
	                "PRAGMA foreign_keys=ON; PRAGMA journal_mode=TRUNCATE;"
	                "PRAGMA secure_delete=ON;", e) != 0)
		return SBX_EIO;
	on = -1;
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, -1, &on);
	if (on != 1)
		return sbx_fail(e, SBX_EIO, "database: DEFENSIVE is off after opening");
	if (pragma_text(db, "PRAGMA trusted_schema", v, sizeof v) != 0 || strcmp(v, "0") != 0)
		return sbx_fail(e, SBX_EIO, "database: trusted_schema is not OFF (got %s)", v);
	if (pragma_text(db, "PRAGMA synchronous", v, sizeof v) != 0 || strcmp(v, "2") != 0)
		return sbx_fail(e, SBX_EIO, "database: synchronous is not FULL (got %s)", v);
	if (pragma_text(db, "PRAGMA journal_mode", v, sizeof v) != 0 || strcmp(v, "truncate") != 0)
		return sbx_fail(e, SBX_EIO, "database: journal_mode is not TRUNCATE (got %s)", v);
	if (pragma_text(db, "PRAGMA foreign_keys", v, sizeof v) != 0 || strcmp(v, "1") != 0)
		return sbx_fail(e, SBX_EIO, "database: foreign_keys is not ON");
	return 0;
}

/* The rollback journal must exist before the first transaction, and its
 * directory entry must be durable.  Why: SQLite syncs the directory after
 * creating a journal but ignores a failure of that sync, and in DELETE mode
 * commits by unlinking the journal without syncing the directory (unless
 * synchronous=EXTRA), so a power cut can bring back a committed
 * transaction's journal and roll it back after the TPM counter moved.  With
 * journal_mode=TRUNCATE the journal stays (a commit truncates and fsyncs
 * it); created here once, with every error checked, and then opened
 * without SQLITE_OPEN_CREATE (appliance/dbvfs.c), SQLite makes no
 * unchecked directory sync at all.  Found by the power-cut and I/O-error
 * campaigns (tests/faults). */
static int journal_prepare(const char *path, struct sbx_err *e)
{
	char *jpath = NULL;
	struct stat sb;
	int fd = -1, r = SBX_EIO;

	if (asprintf(&jpath, "%s-journal", path) < 0) {
		jpath = NULL;
		r = SBX_ENOMEM;
		goto out;
	}
	if (lstat(jpath, &sb) == 0) {
		if (!S_ISREG(sb.st_mode)) {
			r = sbx_fail(e, SBX_ESTATE, "database journal %s is not a regular file", jpath);
			goto out;
		}
		r = 0;
		goto out;
	}
	if (errno != ENOENT) {
		r = sbx_fail(e, SBX_EIO, "cannot stat %s: %s", jpath, strerror(errno));
		goto out;
	}
	fd = open(jpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = sbx_fail(e, SBX_EIO, "cannot create %s: %s", jpath, strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0) {
		r = sbx_fail(e, SBX_EIO, "fsync of %s failed: %s", jpath, strerror(errno));
		goto out;
	}
	r = atomic_fsync_parent(jpath, e);
out:
	if (fd >= 0)
		close(fd);
	free(jpath);
	return r;
}

int db_open(const char *path, int create, sqlite3 **out, struct sbx_err *e)
{
	sqlite3 *db = NULL;
	struct stat sb;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	const char *vfs;
	int r = SBX_EIO;

	*out = NULL;
	if (create) {
		if (stat(path, &sb) == 0) {
			r = sbx_fail(e, SBX_EEXIST, "database %s already exists", path);
			goto out;
		}
		flags |= SQLITE_OPEN_CREATE;
	} else if (stat(path, &sb) != 0) {
		r = sbx_fail(e, SBX_ESTATE, "no database at %s: the box is not provisioned "
		             "(run 'sealbox init')", path);
		goto out;
	}
	vfs = dbvfs_name();
	if (vfs == NULL) {
		r = sbx_fail(e, SBX_EIO, "database: SQLite has no default VFS");
		goto out;
	}
	if (sqlite3_open_v2(path, &db, flags, vfs) != SQLITE_OK) {
		r = fail_db(db, e, path);
		goto out;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, 10000);
	r = settings_apply_and_check(db, e);
	if (r != 0)
		goto out;
	if (!create) {
		uint64_t ver = 0;

		r = journal_prepare(path, e);
		if (r != 0)
			goto out;

		r = db_meta_get_u64(db, "schema_version", &ver, e);
		if (r != 0 || ver != DB_SCHEMA_VERSION) {
			r = sbx_fail(e, SBX_ESTATE, "database %s: unsupported schema version", path);
			goto out;
		}
	}
	*out = db;
	db = NULL;   /* transferred */
	r = 0;
out:
	sqlite3_close(db);
	return r;
}

void db_close(sqlite3 *db)
{
	/* A statement left unfinalized would keep the connection (and its
	 * file) open: that is a bug, and ASan's leak check shows it. */
	sqlite3_close(db);
}

int db_create_schema(sqlite3 *db, struct sbx_err *e)
{
	int r = db_begin(db, e);

	if (r != 0)
		return r;
	r = db_exec(db, schema_sql, e);
	if (r == 0)
		r = db_meta_set_u64(db, "schema_version", DB_SCHEMA_VERSION, e);
	if (r == 0)
		r = db_commit(db, e);
	if (r != 0)
		db_rollback(db);
	return r;
}

int db_begin(sqlite3 *db, struct sbx_err *e)
{
	return db_exec(db, "BEGIN IMMEDIATE", e);
}

int db_commit(sqlite3 *db, struct sbx_err *e)
{
	return db_exec(db, "COMMIT", e);
}

void db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int db_meta_set(sqlite3 *db, const char *key, const void *val, size_t len, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r = db_prepare(db, "INSERT INTO meta(key, value) VALUES (?1, ?2) "
	                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &st, e);

	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, len ? val : "", (int)len, SQLITE_TRANSIENT);
	r = db_step_done(db, st, e);
	sqlite3_finalize(st);
	return r;
}

int db_meta_get(sqlite3 *db, const char *key, uint8_t **val, size_t *len, struct sbx_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, rc, n;
	const void *p;

	*val = NULL;
	*len = 0;
	r = db_prepare(db, "SELECT value FROM meta WHERE key = ?1", &st, e);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = SBX_ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = fail_db(db, e, "read meta");
		goto out;
	}
	p = sqlite3_column_blob(st, 0);
	n = sqlite3_column_bytes(st, 0);
	*val = malloc((size_t)n + 1);
	if (*val == NULL) {
		r = SBX_ENOMEM;
		goto out;
	}
	if (n > 0)
		memcpy(*val, p, (size_t)n);
	(*val)[n] = 0;
	*len = (size_t)n;
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

int db_meta_set_u64(sqlite3 *db, const char *key, uint64_t v, struct sbx_err *e)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	return db_meta_set(db, key, b, 8, e);
}

int db_meta_get_u64(sqlite3 *db, const char *key, uint64_t *v, struct sbx_err *e)
{
	uint8_t *b = NULL;
	size_t n = 0;
	int r = db_meta_get(db, key, &b, &n, e);

	*v = 0;
	if (r == 0 && n != 8)
		r = sbx_fail(e, SBX_EFORMAT, "database: meta %s has the wrong size", key);
	if (r == 0)
		for (int i = 0; i < 8; i++)
			*v = (*v << 8) | b[i];
	free(b);
	return r;
}
