/*
 * db_fsck.c - the SQL of fsck's reports and of keep_repair.
 *
 * The queries that find which paths a problem affects (fsck.c asks them
 * for each problem; they are prepared once per check, struct fq), the
 * garbage queries, and the copy of the database taken before a repair.
 * db.c keeps the checks themselves.
 *
 * Design notes:
 *
 *  1. Garbage (what keep_repair may drop) is exactly what no view can
 *     see, by design note 1 of db.c (a row is in the view of commit C
 *     when born <= C AND (died IS NULL OR died > C), the live tree is
 *     died IS NULL):
 *       - a row version of inodes, dirents, blocks or xattrs with died
 *         set and no row of commits in [born, died).  The commits table
 *         holds every commit still retained (keep_gc deletes the others
 *         first), so no retained view, and not the live tree, has the
 *         row.  A row with died <= born is in no view at all and is
 *         garbage too.  This is the rule of keep_gc (gc.c note 4), applied
 *         to every row instead of the rows of the inodes gc_todo names,
 *         so it also finds garbage that gc's bookkeeping lost (a damaged
 *         journal, a crash of an older program).
 *       - a blob that no block row references but garbage ones (gc.c
 *         note 5), except the blob with the highest id, which stays so
 *         that no id is handed out twice.
 *     Nothing else is garbage.  In particular a row that some view has
 *     stays even when that view cannot reach it (a block of an inode
 *     with no inode row, an entry naming a missing inode): it may be the
 *     only copy of data that a person can still recover, and dropping it
 *     would change what the view holds.  fsck reports those; it does not
 *     repair them.
 *  2. Dropping garbage changes no view, so every view shows exactly what
 *     it showed before, and the change journal is paused meanwhile (as
 *     for gc, gc.c note 7).
 *  3. Before anything is dropped, the database is copied whole with
 *     SQLite's online backup (page by page, through the writer
 *     connection, so the WAL's content is in the copy) into a new file
 *     of mode 0600 beside it.  A copy that fails leaves nothing behind and
 *     nothing changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keep_i.h"

enum fq_id {
	FQ_NAMES,
	FQ_BLOB_BLOCKS,
	FQ_SNAPS,
	FQ_COMMITS,
	FQ__COUNT
};

/* the entries naming ?1 at some commit in [?2, ?3) */
static const char *const fq_sql[FQ__COUNT] = {
    [FQ_NAMES] = "SELECT parent, name, born, died FROM dirents "
		 "WHERE ino = ?1 AND born < ?3 AND (died IS NULL OR died > ?2) "
		 "ORDER BY born, parent, name",
    [FQ_BLOB_BLOCKS] = "SELECT ino, idx, born, died FROM blocks "
		       "WHERE blob = ?1 ORDER BY ino, idx, born",
    [FQ_SNAPS] = "SELECT name, commit_id FROM snapshots WHERE commit_id >= ?1 "
		 "AND commit_id < ?2 ORDER BY commit_id, name",
    [FQ_COMMITS] = "SELECT count(*), min(id), max(id) FROM commits "
		   "WHERE id >= ?1 AND id < ?2 AND id NOT IN "
		   "(SELECT commit_id FROM snapshots)",
};

/* The same without a snapshots table (an older store, read-only). */
static const char fq_commits_nosnaps[] =
    "SELECT count(*), min(id), max(id) FROM commits WHERE id >= ?1 AND id < ?2";

struct fq {
	struct keep_store *s;
	bool snaps;
	sqlite3_stmt *st[FQ__COUNT];
};

static int sql_err(struct keep_store *s, int src, const char *what)
{
	return db_error(s, src, what);
}

static int64_t i64(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* died NULL reads as FSCK_END */
static uint64_t col_died(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL
		       ? FSCK_END
		       : (uint64_t)sqlite3_column_int64(st, i);
}

int db_fq_open(struct keep_store *s, struct fq **out)
{
	sqlite3 *h = db_handle(s);
	struct fq *q = calloc(1, sizeof(*q));
	sqlite3_stmt *st;
	int src, rc = 0;

	if (!q)
		return KEEP_E_NOMEM;
	q->s = s;
	src = sqlite3_prepare_v2(h,
				 "SELECT count(*) FROM sqlite_master WHERE "
				 "type = 'table' AND name = 'snapshots'",
				 -1, &st, NULL);
	if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
		q->snaps = sqlite3_column_int(st, 0) > 0;
	else
		rc = sql_err(s, src, "read schema");
	sqlite3_finalize(st);
	for (int i = 0; !rc && i < FQ__COUNT; i++) {
		const char *sql = fq_sql[i];
		if (!q->snaps && i == FQ_SNAPS)
			continue;
		if (!q->snaps && i == FQ_COMMITS)
			sql = fq_commits_nosnaps;
		src = sqlite3_prepare_v2(h, sql, -1, &q->st[i], NULL);
		if (src != SQLITE_OK)
			rc = sql_err(s, src, "prepare fsck queries");
	}
	if (rc) {
		db_fq_close(q);
		return rc;
	}
	*out = q;
	return 0;
}

void db_fq_close(struct fq *q)
{
	if (!q)
		return;
	for (int i = 0; i < FQ__COUNT; i++)
		sqlite3_finalize(q->st[i]);
	free(q);
}

/* Step st to its end, handing each row to row(); then reset it. */
static int each_row(struct fq *q, sqlite3_stmt *st, const char *what,
		    int (*row)(sqlite3_stmt *st, void *arg), void *arg)
{
	int src, rc = 0;

	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = row(st, arg);
	if (!rc && src != SQLITE_DONE)
		rc = sql_err(q->s, src, what);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

struct names_arg {
	db_fname_cb cb;
	void *ctx;
};

static int names_row(sqlite3_stmt *st, void *arg)
{
	struct names_arg *a = arg;
	int len = sqlite3_column_bytes(st, 1);
	const void *name = sqlite3_column_blob(st, 1);

	return a->cb(a->ctx, (uint64_t)sqlite3_column_int64(st, 0),
		     name ? name : "", (size_t)len,
		     (uint64_t)sqlite3_column_int64(st, 2), col_died(st, 3));
}

int db_fq_names(struct fq *q, uint64_t ino, uint64_t lo, uint64_t hi,
		db_fname_cb cb, void *ctx)
{
	sqlite3_stmt *st = q->st[FQ_NAMES];
	struct names_arg a = {cb, ctx};

	sqlite3_bind_int64(st, 1, i64(ino));
	sqlite3_bind_int64(st, 2, i64(lo));
	sqlite3_bind_int64(st, 3, i64(hi));
	return each_row(q, st, "names of an inode", names_row, &a);
}

struct blocks_arg {
	db_fblock_cb cb;
	void *ctx;
};

static int blocks_row(sqlite3_stmt *st, void *arg)
{
	struct blocks_arg *a = arg;

	return a->cb(a->ctx, (uint64_t)sqlite3_column_int64(st, 0),
		     (uint64_t)sqlite3_column_int64(st, 1),
		     (uint64_t)sqlite3_column_int64(st, 2), col_died(st, 3));
}

int db_fq_blob_blocks(struct fq *q, uint64_t blob, db_fblock_cb cb, void *ctx)
{
	sqlite3_stmt *st = q->st[FQ_BLOB_BLOCKS];
	struct blocks_arg a = {cb, ctx};

	sqlite3_bind_int64(st, 1, i64(blob));
	return each_row(q, st, "blocks of a blob", blocks_row, &a);
}

struct snaps_arg {
	db_fsnap_cb cb;
	void *ctx;
};

static int snaps_row(sqlite3_stmt *st, void *arg)
{
	struct snaps_arg *a = arg;
	const void *name = sqlite3_column_blob(st, 0);

	return a->cb(a->ctx, name ? name : "",
		     (size_t)sqlite3_column_bytes(st, 0),
		     (uint64_t)sqlite3_column_int64(st, 1));
}

int db_fq_snaps(struct fq *q, uint64_t lo, uint64_t hi, db_fsnap_cb cb,
		void *ctx)
{
	sqlite3_stmt *st = q->st[FQ_SNAPS];
	struct snaps_arg a = {cb, ctx};

	if (!st)
		return 0; /* no snapshots table */
	sqlite3_bind_int64(st, 1, i64(lo));
	sqlite3_bind_int64(st, 2, i64(hi));
	return each_row(q, st, "snapshots of a range", snaps_row, &a);
}

struct commits_arg {
	uint64_t *n, *first, *last;
};

static int commits_row(sqlite3_stmt *st, void *arg)
{
	struct commits_arg *a = arg;

	*a->n = (uint64_t)sqlite3_column_int64(st, 0);
	*a->first = (uint64_t)sqlite3_column_int64(st, 1);
	*a->last = (uint64_t)sqlite3_column_int64(st, 2);
	return 0;
}

int db_fq_commits(struct fq *q, uint64_t lo, uint64_t hi, uint64_t *n,
		  uint64_t *first, uint64_t *last)
{
	sqlite3_stmt *st = q->st[FQ_COMMITS];
	struct commits_arg a = {n, first, last};

	*n = *first = *last = 0;
	sqlite3_bind_int64(st, 1, i64(lo));
	sqlite3_bind_int64(st, 2, i64(hi));
	return each_row(q, st, "commits of a range", commits_row, &a);
}

/* ---- garbage (note 1) ------------------------------------------------------ */

#define UNSEEN                                                            \
	"died IS NOT NULL AND NOT EXISTS (SELECT 1 FROM commits "         \
	"WHERE id >= born AND id < died)"

/* used by no block row but garbage ones (so the count is what goes once
 * the rows went) */
#define ORPHAN_BLOBS                                                      \
	"FROM blobs WHERE id < (SELECT max(id) FROM blobs) AND NOT EXISTS " \
	"(SELECT 1 FROM blocks WHERE blob = blobs.id AND NOT (" UNSEEN "))"

static const char *const garbage_tables[] = {"inodes", "dirents", "blocks",
					     "xattrs"};

static int query_row(struct keep_store *s, const char *sql, uint64_t *v,
		     int ncols)
{
	sqlite3_stmt *st;
	int src, rc = 0;

	src = sqlite3_prepare_v2(db_handle(s), sql, -1, &st, NULL);
	if (src != SQLITE_OK)
		return sql_err(s, src, "garbage");
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		for (int i = 0; i < ncols; i++)
			v[i] = (uint64_t)sqlite3_column_int64(st, i);
		src = sqlite3_step(st);
	}
	if (src != SQLITE_DONE)
		rc = sql_err(s, src, "garbage");
	sqlite3_finalize(st);
	return rc;
}

int db_garbage(struct keep_store *s, struct keep_garbage *g)
{
	char sql[256];
	uint64_t v[2];
	int rc = 0;

	memset(g, 0, sizeof(*g));
	for (size_t i = 0; !rc && i < 4; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE " UNSEEN,
			 garbage_tables[i]);
		rc = query_row(s, sql, v, 1);
		g->rows += v[0];
	}
	if (!rc)
		rc = query_row(s, "SELECT count(*), coalesce(sum(csize), 0) "
				  ORPHAN_BLOBS, v, 2);
	if (!rc) {
		g->blobs = v[0];
		g->blob_bytes = v[1];
	}
	return rc;
}

/* Delete with sql; *n grows by the rows deleted. */
static int drop(struct keep_store *s, const char *sql, uint64_t *n)
{
	sqlite3 *h = db_handle(s);
	int src = sqlite3_exec(h, sql, NULL, NULL, NULL);

	if (src != SQLITE_OK)
		return sql_err(s, src, "drop garbage");
	*n += (uint64_t)sqlite3_changes64(h);
	return 0;
}

int db_garbage_drop(struct keep_store *s, struct keep_garbage *g)
{
	char sql[256];
	int rc = 0;

	memset(g, 0, sizeof(*g));
	for (size_t i = 0; !rc && i < 4; i++) {
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE " UNSEEN,
			 garbage_tables[i]);
		rc = drop(s, sql, &g->rows);
	}
	if (!rc)
		rc = query_row(s, "SELECT coalesce(sum(csize), 0) " ORPHAN_BLOBS,
			       &g->blob_bytes, 1);
	if (!rc)
		rc = drop(s, "DELETE " ORPHAN_BLOBS, &g->blobs);
	return rc;
}

int db_integrity_ok(struct keep_store *s, bool *ok)
{
	sqlite3_stmt *st;
	int src, rc = 0;

	*ok = true;
	src = sqlite3_prepare_v2(db_handle(s), "PRAGMA quick_check", -1, &st,
				 NULL);
	if (src != SQLITE_OK)
		return sql_err(s, src, "quick check");
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		if (!t || strcmp(t, "ok") != 0)
			*ok = false;
	}
	if (src != SQLITE_DONE)
		rc = sql_err(s, src, "quick check");
	sqlite3_finalize(st);
	return rc;
}

int db_vacuum_free(struct keep_store *s)
{
	int src = sqlite3_exec(db_handle(s), "PRAGMA incremental_vacuum", NULL,
			       NULL, NULL);

	return src == SQLITE_OK ? 0 : sql_err(s, src, "give pages back");
}

/* ---- the copy (note 3) ------------------------------------------------------ */

int db_backup(struct keep_store *s, const char *file)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *b;
	int fd, src, rc = 0;

	/* made here, private and new, so that SQLite opens an empty file */
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	close(fd);
	src = sqlite3_open_v2(file, &dst, SQLITE_OPEN_READWRITE, NULL);
	if (src == SQLITE_OK) {
		b = sqlite3_backup_init(dst, "main", db_handle(s), "main");
		if (!b) {
			src = sqlite3_errcode(dst);
		} else {
			src = sqlite3_backup_step(b, -1);
			int fin = sqlite3_backup_finish(b);
			if (src == SQLITE_DONE)
				src = fin;
		}
	}
	if (src != SQLITE_OK) {
		keep_log(LOG_ERR, "copy of the database to '%s' failed: %s",
			 file, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(src));
		rc = (src & 0xff) == SQLITE_FULL ? ENOSPC : EIO;
	}
	/* a copy of a WAL database is one too: closing it checkpoints */
	if (sqlite3_close(dst) != SQLITE_OK && !rc)
		rc = EIO;
	if (rc) {
		char side[4300];
		unlink(file);
		snprintf(side, sizeof(side), "%s-wal", file);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", file);
		unlink(side);
		return rc;
	}
	/* durable before anything is dropped: the file, then its name */
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) != 0)
			rc = errno;
		close(fd);
	}
	const char *slash = strrchr(file, '/');
	if (!rc && slash) {
		char dir[4300];
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file + 1), file);
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			if (fsync(fd) != 0)
				rc = errno;
			close(fd);
		}
	}
	return rc;
}
