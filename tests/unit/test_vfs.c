/*
 * test_vfs.c - the SQLite VFS of core (vfs.c), internal to core.
 *
 * A checkpoint that leaves the database file's size as it was truncates
 * nothing; a connection that asked to keep the size never makes the file
 * smaller; what a crash leaves then (the longer file and the WAL) is a
 * sound database, for SQLite's own VFS too, whose next checkpoint cuts the
 * file to size; a connection that does not keep the size shrinks the file
 * in steps of 16 MiB to exactly the pages the database has; a connection
 * that asked syncs once per 32 MiB it writes.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keep_i.h"
#include "tap.h"
#include "unit.h"

#define STEP ((int64_t)16 << 20)      /* SHRINK_STEP */
#define SYNC_STEP ((int64_t)32 << 20) /* the same */

static int64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static int copy(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;
	int rc = in && out ? 0 : -1;

	while (!rc && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	if (in && ferror(in))
		rc = -1;
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		rc = -1;
	return rc;
}

static int exec(sqlite3 *h, const char *sql)
{
	char *msg = NULL;
	int src = sqlite3_exec(h, sql, NULL, NULL, &msg);

	if (src != SQLITE_OK)
		diag("%s: %s", sql, msg ? msg : sqlite3_errstr(src));
	sqlite3_free(msg);
	return src;
}

static int64_t one_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *one_text(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

/* A PASSIVE checkpoint that must copy the whole WAL. */
static int checkpoint(sqlite3 *h)
{
	int nlog = -1, nckpt = -2;
	int src = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE,
					    &nlog, &nckpt);
	return src == SQLITE_OK && nlog == nckpt ? 0 : -1;
}

static int64_t db_bytes(sqlite3 *h)
{
	return one_int(h, "PRAGMA page_count") * one_int(h, "PRAGMA page_size");
}

static void sound(const char *file, const char *vfs, const char *what)
{
	sqlite3 *h = NULL;
	char *check = NULL, *mark = NULL;

	if (sqlite3_open_v2(file, &h, SQLITE_OPEN_READWRITE, vfs) == SQLITE_OK) {
		check = one_text(h, "PRAGMA integrity_check");
		mark = one_text(h, "SELECT b FROM t WHERE id = 0");
	}
	is_str(check ? check : "(none)", "ok", "%s: integrity_check", what);
	is_str(mark ? mark : "(none)", "marker", "%s: the row kept reads back",
	       what);
	free(check);
	free(mark);
	sqlite3_close_v2(h);
}

int main(void)
{
	sqlite3 *h = NULL;
	int on = 1;

	unit_begin("vfs");
	const char *file = unit_path("t.db");
	const char *vfs = db_vfs();
	ok(vfs != NULL, "core's VFS is registered");

	is_int(sqlite3_open_v2(file, &h,
			       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
	       SQLITE_OK, "open a new database through it");
	is_int(exec(h, "PRAGMA page_size = 4096;"
		       "PRAGMA auto_vacuum = INCREMENTAL;"
		       "PRAGMA journal_mode = WAL;"
		       "PRAGMA wal_autocheckpoint = 0;"
		       "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);"
		       "INSERT INTO t VALUES (0, 'marker');"
		       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
		       "SELECT i + 1 FROM n WHERE i < 48) "
		       "INSERT INTO t (b) SELECT randomblob(1048576) FROM n;"),
	       SQLITE_OK, "48 MiB written");

	/* note 1: the size stays, nothing is truncated */
	uint64_t t0 = db_vfs_truncates();
	is_int(checkpoint(h), 0, "a checkpoint copies the WAL");
	int64_t full = file_size(file);
	is_int(full, db_bytes(h), "the file holds the database's pages");
	ok(full > 48 * (1 << 20), "and they are more than 48 MiB (%lld)",
	   (long long)full);
	is_int(exec(h, "UPDATE t SET b = 'marker' WHERE id = 0"), SQLITE_OK,
	       "a small change");
	is_int(checkpoint(h), 0, "its checkpoint");
	is_int(db_vfs_truncates() - t0, 0,
	       "checkpoints that leave the size as it was truncate nothing");

	/* note 2: a connection that keeps the size */
	is_int(sqlite3_file_control(h, "main", DB_FCNTL_KEEP_SIZE, &on),
	       SQLITE_OK, "ask to keep the file's size");
	is_int(exec(h, "DELETE FROM t WHERE id > 0;"
		       "PRAGMA incremental_vacuum;"),
	       SQLITE_OK, "delete the 48 MiB and give the pages back");
	is_int(checkpoint(h), 0, "a checkpoint of that");
	int64_t small = db_bytes(h);
	ok(small < 2 * (1 << 20), "the database is under 2 MiB (%lld)",
	   (long long)small);
	is_int(file_size(file), full, "the file kept its size");
	is_int(db_vfs_truncates() - t0, 0, "nothing was truncated");
	/* note 3: a sync only of a file written since its last one */
	uint64_t s0 = db_vfs_syncs();
	is_int(sqlite3_file_control(h, "main", DB_FCNTL_SYNC_DIRTY, NULL),
	       SQLITE_OK, "sync if written, after a synced checkpoint");
	is_int(db_vfs_syncs() - s0, 0, "nothing to sync: no sync");
	is_int(exec(h, "PRAGMA synchronous = OFF;"
		       "INSERT INTO t (b) VALUES ('unsynced')"),
	       SQLITE_OK, "a change, its checkpoint not to sync");
	s0 = db_vfs_syncs();
	is_int(checkpoint(h), 0, "that checkpoint");
	is_int(db_vfs_syncs() - s0, 0, "it synced nothing");
	is_int(sqlite3_file_control(h, "main", DB_FCNTL_SYNC_DIRTY, NULL),
	       SQLITE_OK, "sync if written, after it");
	is_int(db_vfs_syncs() - s0, 1, "the written file is synced once");
	is_int(exec(h, "PRAGMA synchronous = NORMAL"), SQLITE_OK,
	       "syncs on again");

	/* what a crash leaves now: the longer file and the WAL */
	const char *crash = unit_path("crash.db");
	ok(copy(file, crash) == 0 && copy(unit_path("t.db-wal"),
					  unit_path("crash.db-wal")) == 0,
	   "copy the files as a crash would leave them");
	sound(crash, NULL, "after a crash, SQLite's own VFS");
	sound(crash, vfs, "after a crash, core's VFS");
	{
		sqlite3 *c = NULL;
		int64_t cut = -1;
		if (sqlite3_open_v2(crash, &c, SQLITE_OPEN_READWRITE, vfs) ==
			    SQLITE_OK &&
		    exec(c, "INSERT INTO t (b) VALUES ('after')") == SQLITE_OK &&
		    checkpoint(c) == 0)
			cut = db_bytes(c);
		is_int(file_size(crash), cut,
		       "after a crash, the next checkpoint cuts the file to "
		       "its pages");
		sqlite3_close_v2(c);
	}

	/* note 4: without keeping the size, the file shrinks in steps */
	on = 0;
	is_int(sqlite3_file_control(h, "main", DB_FCNTL_KEEP_SIZE, &on),
	       SQLITE_OK, "stop keeping the size");
	is_int(exec(h, "INSERT INTO t (b) VALUES ('more')"), SQLITE_OK,
	       "a change");
	t0 = db_vfs_truncates();
	is_int(checkpoint(h), 0, "its checkpoint");
	small = db_bytes(h);
	is_int(file_size(file), small, "the file shrank to the database's pages");
	is_int(db_vfs_truncates() - t0, (full - small + STEP - 1) / STEP,
	       "in steps of 16 MiB");
	is_int(sqlite3_close_v2(h), SQLITE_OK, "close");
	sound(file, vfs, "the shrunk file");

	/* note 5: a connection that syncs every 32 MiB it writes; two
	 * databases made alike, one checkpointed each way */
	int64_t got[2] = {-1, -1}, wrote = -1;
	for (int every = 0; every < 2; every++) {
		const char *name = unit_path(every ? "every.db" : "once.db");
		sqlite3 *c = NULL;
		if (sqlite3_open_v2(name, &c,
				    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
				    vfs) != SQLITE_OK ||
		    exec(c, "PRAGMA page_size = 4096;"
			    "PRAGMA journal_mode = WAL;"
			    "PRAGMA wal_autocheckpoint = 0;"
			    "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);"
			    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
			    "SELECT i + 1 FROM n WHERE i < 80) "
			    "INSERT INTO t (b) SELECT zeroblob(1048576) "
			    "FROM n;") != SQLITE_OK ||
		    sqlite3_file_control(c, "main", DB_FCNTL_SYNC_EVERY,
					 &every) != SQLITE_OK) {
			sqlite3_close_v2(c);
			break;
		}
		uint64_t before = db_vfs_syncs();
		if (checkpoint(c) == 0)
			got[every] = (int64_t)(db_vfs_syncs() - before);
		wrote = file_size(name);
		sqlite3_close_v2(c);
	}
	is_int(got[0], 2, "a checkpoint syncs the WAL and the database");
	ok(wrote > 80 * (1 << 20), "it wrote %lld bytes", (long long)wrote);
	is_int(got[1] - got[0], wrote / SYNC_STEP,
	       "syncing every 32 MiB adds one sync per 32 MiB written");

	unit_end();
	return tap_done();
}
