/*
 * db_restore.c - the SQL of keep_restore (restore.c).
 *
 * A restore gives objects of the live tree the rows they had in a
 * committed view F, as new row versions born in the open commit O, with
 * the copy-on-write rule of db.c (design notes 1 and 2).  For one key the
 * live version is F's exactly when it was born at or before F (it was
 * visible in F and has not died since), so "make the key as in F" is two
 * set operations per table and object:
 *
 *   end   the live versions born after F that differ from F's version
 *         of their key (delete those born in O);
 *   copy  F's versions whose key has no live version left, as versions
 *         born in O.
 *
 * A version born after F that equals F's (a key changed and restored
 * since) stays, so restoring twice changes nothing the second time.
 * Keys untouched since F cost an index probe each.  A restored copy
 * (another inode number) copies every row visible in F instead.  The
 * statements are prepared once per restore and reused for every object.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"

enum rq_id {
	RQ_DIR_VIEW,
	RQ_DIR_LIVE,
	RQ_NAMES_LIVE,
	RQ_INODE_COPY,
	RQ_BLOCKS_END,
	RQ_BLOCKS_DROP,
	RQ_BLOCKS_REVIVE,
	RQ_BLOCKS_COPY,
	RQ_XATTRS_END,
	RQ_XATTRS_DROP,
	RQ_XATTRS_REVIVE,
	RQ_XATTRS_COPY,
	RQ_NAMED,
	RQ_SUBDIRS,
	RQ__COUNT
};

#define VISIBLE "born <= ?2 AND (died IS NULL OR died > ?2)"

static const char *const rq_sql[RQ__COUNT] = {
    [RQ_DIR_VIEW] = "SELECT name, ino FROM dirents WHERE parent = ?1 AND "
		    VISIBLE,
    [RQ_DIR_LIVE] = "SELECT id, name, ino FROM dirents "
		    "WHERE parent = ?1 AND died IS NULL",
    [RQ_NAMES_LIVE] = "SELECT parent, name FROM dirents "
		      "WHERE ino = ?1 AND died IS NULL",
    /* ?1 F's inode, ?2 F, ?3 O, ?4 the new inode number, ?5 ctime,
     * ?6 parent */
    [RQ_INODE_COPY] = "INSERT INTO inodes(ino, born, mode, uid, gid, nlink, "
		      "size, rdev, atime, mtime, ctime, btime, nblocks, parent, "
		      "symlink) SELECT ?4, ?3, mode, uid, gid, nlink, size, "
		      "rdev, atime, mtime, ?5, btime, nblocks, ?6, symlink "
		      "FROM inodes WHERE ino = ?1 AND " VISIBLE,
    /* ?1 inode, ?2 F, ?3 O, ?4 the copy's number: rows equal to F's
     * (same key, same value) stay */
    [RQ_BLOCKS_END] = "UPDATE blocks SET died = ?3 WHERE ino = ?1 "
		      "AND died IS NULL AND born > ?2 AND born < ?3 "
		      "AND NOT EXISTS (SELECT 1 FROM blocks AS f WHERE "
		      "f.ino = ?1 AND f.idx = blocks.idx AND f.born <= ?2 AND "
		      "(f.died IS NULL OR f.died > ?2) AND f.blob = blocks.blob)",
    [RQ_BLOCKS_DROP] = "DELETE FROM blocks WHERE ino = ?1 AND born = ?3 "
		       "AND died IS NULL AND NOT EXISTS (SELECT 1 FROM blocks "
		       "AS f WHERE f.ino = ?1 AND f.idx = blocks.idx AND "
		       "f.born <= ?2 AND (f.died IS NULL OR f.died > ?2) AND "
		       "f.blob = blocks.blob)",
    [RQ_BLOCKS_REVIVE] = "INSERT INTO blocks(ino, idx, born, blob) "
			 "SELECT ino, idx, ?3, blob FROM blocks AS f "
			 "WHERE ino = ?1 AND born <= ?2 AND died > ?2 AND "
			 "NOT EXISTS (SELECT 1 FROM blocks AS l WHERE "
			 "l.ino = ?1 AND l.idx = f.idx AND l.died IS NULL)",
    [RQ_BLOCKS_COPY] = "INSERT INTO blocks(ino, idx, born, blob) "
		       "SELECT ?4, idx, ?3, blob FROM blocks WHERE ino = ?1 "
		       "AND " VISIBLE,
    [RQ_XATTRS_END] = "UPDATE xattrs SET died = ?3 WHERE ino = ?1 "
		      "AND died IS NULL AND born > ?2 AND born < ?3 "
		      "AND NOT EXISTS (SELECT 1 FROM xattrs AS f WHERE "
		      "f.ino = ?1 AND f.name = xattrs.name AND f.born <= ?2 AND "
		      "(f.died IS NULL OR f.died > ?2) AND "
		      "f.value = xattrs.value)",
    [RQ_XATTRS_DROP] = "DELETE FROM xattrs WHERE ino = ?1 AND born = ?3 "
		       "AND died IS NULL AND NOT EXISTS (SELECT 1 FROM xattrs "
		       "AS f WHERE f.ino = ?1 AND f.name = xattrs.name AND "
		       "f.born <= ?2 AND (f.died IS NULL OR f.died > ?2) AND "
		       "f.value = xattrs.value)",
    [RQ_XATTRS_REVIVE] = "INSERT INTO xattrs(ino, name, born, value) "
			 "SELECT ino, name, ?3, value FROM xattrs AS f "
			 "WHERE ino = ?1 AND born <= ?2 AND died > ?2 AND "
			 "NOT EXISTS (SELECT 1 FROM xattrs AS l WHERE "
			 "l.ino = ?1 AND l.name = f.name AND l.died IS NULL)",
    [RQ_XATTRS_COPY] = "INSERT INTO xattrs(ino, name, born, value) "
		       "SELECT ?4, name, ?3, value FROM xattrs WHERE ino = ?1 "
		       "AND " VISIBLE,
    [RQ_NAMED] = "SELECT count(*) FROM dirents WHERE ino = ?1 "
		 "AND died IS NULL",
    [RQ_SUBDIRS] = "SELECT count(*) FROM dirents AS d JOIN inodes AS i "
		   "ON i.ino = d.ino AND i.died IS NULL WHERE d.parent = ?1 "
		   "AND d.died IS NULL AND (i.mode & 61440) = 16384",
};

struct rq {
	struct keep_store *s;
	sqlite3_stmt *st[RQ__COUNT];
};

int db_rq_open(struct keep_store *s, struct rq **out)
{
	struct rq *q = calloc(1, sizeof(*q));

	if (!q)
		return KEEP_E_NOMEM;
	q->s = s;
	*out = q;
	return 0;
}

void db_rq_close(struct rq *q)
{
	if (!q)
		return;
	for (int i = 0; i < RQ__COUNT; i++)
		sqlite3_finalize(q->st[i]);
	free(q);
}

static sqlite3_stmt *rq_stmt(struct rq *q, enum rq_id id)
{
	if (!q->st[id] && sqlite3_prepare_v2(db_handle(q->s), rq_sql[id], -1,
					     &q->st[id], NULL) != SQLITE_OK) {
		keep_log(LOG_ERR, "cannot prepare restore statement %d: %s",
			 (int)id, sqlite3_errmsg(db_handle(q->s)));
		return NULL;
	}
	return q->st[id];
}

/* Run a statement that returns no rows; *changed (may be NULL) grows by
 * the rows it changed. */
static int rq_run(struct rq *q, sqlite3_stmt *st, const char *what,
		  uint64_t *changed)
{
	int src = sqlite3_step(st);
	int rc = 0;

	if (src != SQLITE_DONE)
		rc = db_error(q->s, src, what);
	else if (changed)
		*changed += (uint64_t)sqlite3_changes(db_handle(q->s));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* Entries are read first and the statement reset before cb runs. */
static int list_entries(struct rq *q, sqlite3_stmt *st, bool with_id,
			db_dirent_cb cb, void *ctx, const char *what)
{
	struct row {
		int64_t id;
		uint64_t ino;
		char name[KEEP_NAME_MAX + 1];
	} *v = NULL;
	size_t n = 0, cap = 0;
	int src, rc = 0;
	int c = with_id ? 1 : 0;

	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		int len = sqlite3_column_bytes(st, c);
		const void *p = sqlite3_column_blob(st, c);
		if (len < 1 || len > KEEP_NAME_MAX || !p) {
			rc = KEEP_CORRUPT_BKPT("directory entry with a bad name");
			break;
		}
		rc = GROW(v, cap, n);
		if (rc)
			break;
		v[n].id = with_id ? sqlite3_column_int64(st, 0) : 0;
		memcpy(v[n].name, p, (size_t)len);
		v[n].name[len] = '\0';
		v[n].ino = (uint64_t)sqlite3_column_int64(st, c + 1);
		n++;
	}
	if (!rc && src != SQLITE_DONE)
		rc = db_error(q->s, src, what);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	for (size_t i = 0; !rc && i < n; i++)
		rc = cb(ctx, v[i].id, v[i].name, v[i].ino);
	free(v);
	return rc;
}

int db_rq_entries(struct rq *q, uint64_t view, uint64_t dir, db_dirent_cb cb,
		  void *ctx)
{
	sqlite3_stmt *st =
	    rq_stmt(q, view == KEEP_LIVE ? RQ_DIR_LIVE : RQ_DIR_VIEW);

	if (!st)
		return KEEP_E_SQLITE;
	sqlite3_bind_int64(st, 1, (int64_t)dir);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 2, (int64_t)view);
	return list_entries(q, st, view == KEEP_LIVE, cb, ctx, "list entries");
}

/* cb gets (0, name, parent) for each live name of ino. */
int db_rq_names(struct rq *q, uint64_t ino, db_dirent_cb cb, void *ctx)
{
	sqlite3_stmt *st = rq_stmt(q, RQ_NAMES_LIVE);

	if (!st)
		return KEEP_E_SQLITE;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	/* columns (parent, name): read as (name, ino) one column later */
	struct row {
		uint64_t parent;
		char name[KEEP_NAME_MAX + 1];
	} *v = NULL;
	size_t n = 0, cap = 0;
	int src, rc = 0;

	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		int len = sqlite3_column_bytes(st, 1);
		const void *p = sqlite3_column_blob(st, 1);
		if (len < 1 || len > KEEP_NAME_MAX || !p) {
			rc = KEEP_CORRUPT_BKPT("directory entry with a bad name");
			break;
		}
		rc = GROW(v, cap, n);
		if (rc)
			break;
		v[n].parent = (uint64_t)sqlite3_column_int64(st, 0);
		memcpy(v[n].name, p, (size_t)len);
		v[n].name[len] = '\0';
		n++;
	}
	if (!rc && src != SQLITE_DONE)
		rc = db_error(q->s, src, "list names");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	for (size_t i = 0; !rc && i < n; i++)
		rc = cb(ctx, 0, v[i].name, v[i].parent);
	free(v);
	return rc;
}

int db_rq_inode_copy(struct rq *q, uint64_t from, uint64_t ino, uint64_t to,
		     int64_t ctime_ns, uint64_t parent)
{
	sqlite3_stmt *st = rq_stmt(q, RQ_INODE_COPY);
	uint64_t n = 0;
	int rc;

	if (!st)
		return KEEP_E_SQLITE;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)from);
	sqlite3_bind_int64(st, 3, (int64_t)q->s->open_commit);
	sqlite3_bind_int64(st, 4, (int64_t)to);
	sqlite3_bind_int64(st, 5, ctime_ns);
	sqlite3_bind_int64(st, 6, (int64_t)parent);
	rc = rq_run(q, st, "restore an inode", &n);
	if (!rc && n != 1)
		rc = KEEP_CORRUPT_BKPT("inode missing from the view restored");
	return rc;
}

/* ids of the statements that end, drop, revive and copy one table's rows */
static const enum rq_id table_ops[2][4] = {
    {RQ_BLOCKS_END, RQ_BLOCKS_DROP, RQ_BLOCKS_REVIVE, RQ_BLOCKS_COPY},
    {RQ_XATTRS_END, RQ_XATTRS_DROP, RQ_XATTRS_REVIVE, RQ_XATTRS_COPY},
};

int db_rq_rows(struct rq *q, uint64_t from, uint64_t ino, uint64_t to,
	       uint64_t *changed)
{
	int rc = 0;

	for (int t = 0; !rc && t < 2; t++) {
		const enum rq_id *ops = table_ops[t];
		const char *what = t ? "restore xattrs" : "restore data";
		int first = to == ino ? 0 : 3, last = to == ino ? 2 : 3;
		for (int k = first; !rc && k <= last; k++) {
			sqlite3_stmt *st = rq_stmt(q, ops[k]);
			if (!st)
				return KEEP_E_SQLITE;
			sqlite3_bind_int64(st, 1, (int64_t)ino);
			sqlite3_bind_int64(st, 2, (int64_t)from);
			sqlite3_bind_int64(st, 3, (int64_t)q->s->open_commit);
			if (k == 3)
				sqlite3_bind_int64(st, 4, (int64_t)to);
			rc = rq_run(q, st, what, changed);
		}
	}
	return rc;
}

static int count(struct rq *q, enum rq_id id, uint64_t ino, uint64_t *out)
{
	sqlite3_stmt *st = rq_stmt(q, id);
	int src, rc = 0;

	if (!st)
		return KEEP_E_SQLITE;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	else
		rc = db_error(q->s, src, "count links");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int db_rq_links(struct rq *q, uint64_t ino, uint64_t *named,
		uint64_t *subdirs)
{
	int rc = count(q, RQ_NAMED, ino, named);

	if (!rc && subdirs)
		rc = count(q, RQ_SUBDIRS, ino, subdirs);
	return rc;
}
