/*
 * receive.c - applying a send stream to a replica (keep_receive), and
 * turning a replica into an ordinary store (keep_promote).
 *
 * Design notes:
 *
 *  1. A replica's commits are its source's: a received snapshot becomes
 *     commit C of the replica, C being the source's commit id, with the
 *     source's commit time, and every row it adds is born at C, every row
 *     it ends dies at C.  So the replica's live tree is its newest
 *     snapshot, commit ids compare across the two stores, and an
 *     incremental stream applies exactly when the replica's newest commit
 *     is the stream's base.  The change journal is written as for any
 *     commit (the writer connection's hook sees these rows too).
 *  2. All or nothing.  Everything a stream does is one SQLite transaction
 *     on the replica's writer connection, committed only after the end
 *     record has been read and checked, and after the new tree has been
 *     checked (every entry names a live object; the root is a
 *     directory).  Any failure rolls it back.  A new replica is made in a
 *     hidden directory beside the path and renamed into place once its
 *     commit is durable, so a failed first receive leaves no store.
 *  3. Nothing in a stream is trusted: every op's fields are checked
 *     before use (names, sizes, types, inode and block numbers), a block
 *     must name a blob the stream carried or the replica has, an op that
 *     ends a row must find it, and a key given twice is refused by the
 *     tables' primary keys.  Blobs are stored as they came, their CRC
 *     checked by stream.c; a replica of an encrypted store holds sealed
 *     blobs only (stream.c refuses anything else in such a stream).
 *  4. The replica is opened writable without a key (KEEP_OPEN_NOKEY):
 *     receiving moves rows and stored blobs, never file contents.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keep_i.h"

enum rq_id {
	RQ_BLOB_ADD,
	RQ_BLOB_FIND,
	RQ_END_INODE,
	RQ_END_BLOCKS,
	RQ_END_XATTRS,
	RQ_END_DIRENTS,
	RQ_INODE_ADD,
	RQ_END_BLOCK,
	RQ_BLOCK_ADD,
	RQ_END_XATTR,
	RQ_XATTR_ADD,
	RQ_END_DIRENT,
	RQ_DIRENT_ADD,
	RQ_DIRENT_KEEP,
	RQ_END_ALL_INODES,
	RQ_END_ALL_BLOCKS,
	RQ_END_ALL_XATTRS,
	RQ_END_ALL_DIRENTS,
	RQ_SNAP_ADD,
	RQ_DANGLING,
	RQ_ROOT,
	RQ_MAX_INO,
	RQ_MAX_DIRENT,
	RQ__COUNT
};

static const char *const rq_sql[RQ__COUNT] = {
    [RQ_BLOB_ADD] = "INSERT INTO blobs(hash, size, csize, flags, crc, data) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
		    "ON CONFLICT(hash) DO NOTHING",
    [RQ_BLOB_FIND] = "SELECT id FROM blobs WHERE hash = ?1",
    [RQ_END_INODE] = "UPDATE inodes SET died = ?2 WHERE ino = ?1 "
		     "AND died IS NULL",
    [RQ_END_BLOCKS] = "UPDATE blocks SET died = ?2 WHERE ino = ?1 "
		      "AND died IS NULL",
    [RQ_END_XATTRS] = "UPDATE xattrs SET died = ?2 WHERE ino = ?1 "
		      "AND died IS NULL",
    [RQ_END_DIRENTS] = "UPDATE dirents SET died = ?2 WHERE parent = ?1 "
		       "AND died IS NULL",
    [RQ_INODE_ADD] = "INSERT INTO inodes(ino, born, mode, uid, gid, nlink, "
		     "size, rdev, atime, mtime, ctime, btime, nblocks, parent, "
		     "symlink) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		     "?11, ?12, ?13, ?14, ?15)",
    [RQ_END_BLOCK] = "UPDATE blocks SET died = ?3 WHERE ino = ?1 AND "
		     "idx = ?2 AND died IS NULL",
    [RQ_BLOCK_ADD] = "INSERT INTO blocks(ino, idx, born, blob) "
		     "VALUES (?1, ?2, ?3, ?4)",
    [RQ_END_XATTR] = "UPDATE xattrs SET died = ?3 WHERE ino = ?1 AND "
		     "name = ?2 AND died IS NULL",
    [RQ_XATTR_ADD] = "INSERT INTO xattrs(ino, name, born, value) "
		     "VALUES (?1, ?2, ?3, ?4)",
    [RQ_END_DIRENT] = "UPDATE dirents SET died = ?3 WHERE parent = ?1 AND "
		      "id = ?2 AND died IS NULL",
    [RQ_DIRENT_ADD] = "INSERT INTO dirents(parent, id, name, born, ino) "
		      "VALUES (?1, ?2, ?3, ?4, ?5)",
    /* entries never change (an id is one name of one object for its
     * whole life): one this receive ended is the same entry again */
    [RQ_DIRENT_KEEP] = "UPDATE dirents SET died = NULL WHERE parent = ?1 "
		       "AND id = ?2 AND died = ?3 AND name = ?4 AND ino = ?5",
    [RQ_END_ALL_INODES] = "UPDATE inodes SET died = ?1 WHERE died IS NULL",
    [RQ_END_ALL_BLOCKS] = "UPDATE blocks SET died = ?1 WHERE died IS NULL",
    [RQ_END_ALL_XATTRS] = "UPDATE xattrs SET died = ?1 WHERE died IS NULL",
    [RQ_END_ALL_DIRENTS] = "UPDATE dirents SET died = ?1 WHERE died IS NULL",
    [RQ_SNAP_ADD] = "INSERT INTO snapshots(name, commit_id, created_ns, "
		    "origin) VALUES (?1, ?2, ?3, ?4)",
    /* a live entry whose object is not live */
    [RQ_DANGLING] = "SELECT d.parent, d.ino FROM dirents AS d WHERE "
		    "d.died IS NULL AND NOT EXISTS (SELECT 1 FROM inodes AS i "
		    "WHERE i.ino = d.ino AND i.died IS NULL AND i.nlink > 0) "
		    "LIMIT 1",
    [RQ_ROOT] = "SELECT mode FROM inodes WHERE ino = 1 AND died IS NULL",
    [RQ_MAX_INO] = "SELECT coalesce(max(ino), 0) FROM inodes",
    [RQ_MAX_DIRENT] = "SELECT coalesce(max(id), 0) FROM dirents",
};

static const char wipe_sql[] =
    "DELETE FROM inodes; DELETE FROM dirents; DELETE FROM blocks;"
    " DELETE FROM xattrs; DELETE FROM blobs; DELETE FROM commits;"
    " DELETE FROM changes; DELETE FROM snapshots;";

struct rcv {
	struct keep_store *s;
	sqlite3 *h;
	sqlite3_stmt *q[RQ__COUNT];
	uint64_t commit; /* the commit being made */
	uint32_t block_size;
	struct keep_xfer x;
	uint64_t record; /* index of the record being applied */
	char *err;
	size_t errlen;
	keep_read_fn read;
	void *rctx;
};

static int __attribute__((format(printf, 3, 4)))
fail(struct rcv *r, int rc, const char *fmt, ...)
{
	va_list ap;

	if (r->err && r->errlen && !r->err[0]) {
		va_start(ap, fmt);
		vsnprintf(r->err, r->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* A stream whose rows do not fit: the record it is in. */
static int __attribute__((format(printf, 2, 3)))
bad_rows(struct rcv *r, const char *fmt, ...)
{
	char what[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fail(r, KEEP_E_CORRUPT, "the stream's rows do not fit: record %"
		    PRIu64 ": %s", r->record, what);
}

static int sql_fail(struct rcv *r, int src, const char *what)
{
	int rc;

	if (src == SQLITE_FULL)
		return fail(r, ENOSPC, "the replica's disk is full (%s)", what);
	if (src == SQLITE_CONSTRAINT ||
	    (src & 0xff) == SQLITE_CONSTRAINT)
		return bad_rows(r, "%s: a key given twice", what);
	rc = db_error(r->s, src, what);
	return fail(r, rc ? rc : KEEP_E_SQLITE, "writing the replica (%s): %s",
		    what, sqlite3_errmsg(r->h));
}

static sqlite3_stmt *stmt(struct rcv *r, enum rq_id id)
{
	if (!r->q[id] &&
	    sqlite3_prepare_v2(r->h, rq_sql[id], -1, &r->q[id], NULL) !=
		    SQLITE_OK)
		return NULL;
	sqlite3_reset(r->q[id]);
	sqlite3_clear_bindings(r->q[id]);
	return r->q[id];
}

/* Run a statement that returns no row; *changes (may be NULL) gets the
 * rows it changed. */
static int run(struct rcv *r, sqlite3_stmt *st, const char *what,
	       int *changes)
{
	int src;

	if (!st)
		return sql_fail(r, sqlite3_errcode(r->h), what);
	src = sqlite3_step(st);
	sqlite3_reset(st);
	if (src != SQLITE_DONE)
		return sql_fail(r, src, what);
	if (changes)
		*changes = sqlite3_changes(r->h);
	return 0;
}

/* A query's single integer; *found whether there was a row. */
static int one_int(struct rcv *r, sqlite3_stmt *st, const char *what,
		   int64_t *v, bool *found)
{
	int src;

	*found = false;
	if (!st)
		return sql_fail(r, sqlite3_errcode(r->h), what);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*found = true;
		*v = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (src != SQLITE_ROW && src != SQLITE_DONE)
		return sql_fail(r, src, what);
	return 0;
}

/* meta changes of the receive, with its message on failure */
static int meta_text(struct rcv *r, const char *key, const char *v)
{
	int rc = db_meta_set_text(r->s, key, v);

	return rc ? fail(r, rc, "writing the replica (meta %s): %s", key,
			 keep_strerror(rc))
		  : 0;
}

static int meta_int(struct rcv *r, const char *key, int64_t v)
{
	int rc = db_meta_set_int(r->s, key, v);

	return rc ? fail(r, rc, "writing the replica (meta %s): %s", key,
			 keep_strerror(rc))
		  : 0;
}

/* Does the replica have commit id?  0 with *yes, or an error. */
static int has_commit(struct rcv *r, uint64_t id, bool *yes)
{
	struct keep_commit_info ci;
	int rc = db_commit_get(r->s, id, &ci);

	*yes = rc == 0;
	return rc == ENOENT ? 0 : rc;
}

/* ---- decoding ops -------------------------------------------------------- */

struct cur {
	const uint8_t *p;
	size_t len, pos;
	bool short_;
};

static uint64_t take(struct cur *c, int bytes)
{
	uint64_t v = 0;

	if (c->len - c->pos < (size_t)bytes) {
		c->short_ = true;
		c->pos = c->len;
		return 0;
	}
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)c->p[c->pos + (size_t)i] << (8 * i);
	c->pos += (size_t)bytes;
	return v;
}

static const uint8_t *take_raw(struct cur *c, size_t n)
{
	const uint8_t *p;

	if (c->len - c->pos < n) {
		c->short_ = true;
		c->pos = c->len;
		return NULL;
	}
	p = c->p + c->pos;
	c->pos += n;
	return p;
}

/* A name: a length byte and 1 to 255 bytes with no NUL. */
static const uint8_t *take_name(struct cur *c, size_t *n)
{
	const uint8_t *p;

	*n = (size_t)take(c, 1);
	p = take_raw(c, *n);
	if (!p || *n == 0 || memchr(p, '\0', *n))
		return NULL;
	return p;
}

static bool ino_ok(uint64_t ino)
{
	return ino >= KEEP_ROOT_INO && ino < KEEP_INO_LIMIT;
}

static int end_all_of(struct rcv *r, uint64_t ino, int *had)
{
	static const enum rq_id ids[] = {RQ_END_INODE, RQ_END_BLOCKS,
					 RQ_END_XATTRS, RQ_END_DIRENTS};
	int rc = 0;

	for (size_t i = 0; !rc && i < sizeof(ids) / sizeof(ids[0]); i++) {
		sqlite3_stmt *st = stmt(r, ids[i]);
		int n = 0;

		if (st) {
			sqlite3_bind_int64(st, 1, (int64_t)ino);
			sqlite3_bind_int64(st, 2, (int64_t)r->commit);
		}
		rc = run(r, st, "end an object", &n);
		if (i == 0 && had)
			*had = n;
	}
	return rc;
}

static int op_inode(struct rcv *r, struct cur *c, uint64_t ino)
{
	uint32_t v32[4];
	uint64_t v64[8];
	size_t tlen;
	const uint8_t *target = NULL;
	sqlite3_stmt *st;
	int rc;

	for (int i = 0; i < 4; i++)
		v32[i] = (uint32_t)take(c, 4);
	for (int i = 0; i < 8; i++)
		v64[i] = take(c, 8);
	tlen = (size_t)take(c, 2);
	if (tlen > 1)
		target = take_raw(c, tlen - 1);
	if (c->short_)
		return bad_rows(r, "an object's row is cut short");

	uint32_t mode = v32[0], type = mode & S_IFMT;
	if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK &&
	    type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
	    type != S_IFBLK)
		return bad_rows(r, "object %" PRIu64 " has type %#o", ino, type);
	if (v32[3] == 0)
		return bad_rows(r, "object %" PRIu64 " has no links", ino);
	if (v64[0] > INT64_MAX || v64[6] > INT64_MAX ||
	    (v64[7] && !ino_ok(v64[7])) || (type == S_IFDIR && !v64[7]))
		return bad_rows(r, "object %" PRIu64 " has an impossible size "
			       "or parent", ino);
	size_t tl = tlen > 1 ? tlen - 1 : 0;
	if ((type == S_IFLNK) != (tl > 0) || tl > 4095 ||
	    (target && memchr(target, '\0', tl)))
		return bad_rows(r, "object %" PRIu64 " has a bad link target",
				ino);
	if (ino == KEEP_ROOT_INO && type != S_IFDIR)
		return bad_rows(r, "the root is not a directory");

	st = stmt(r, RQ_END_INODE);
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)r->commit);
	}
	rc = run(r, st, "an object", NULL);
	if (rc)
		return rc;
	st = stmt(r, RQ_INODE_ADD);
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)r->commit);
		for (int i = 0; i < 4; i++)
			sqlite3_bind_int64(st, 3 + i, v32[i]);
		for (int i = 0; i < 8; i++)
			sqlite3_bind_int64(st, 7 + i, (int64_t)v64[i]);
		if (target)
			sqlite3_bind_blob(st, 15, target, (int)tl,
					  SQLITE_STATIC);
	}
	return run(r, st, "an object", NULL);
}

static int op_block(struct rcv *r, struct cur *c, uint64_t ino, bool del)
{
	uint64_t idx = take(c, 8);
	const uint8_t *hash = del ? NULL : take_raw(c, KEEP_HASH_BYTES);
	int64_t blob = 0;
	sqlite3_stmt *st;
	bool found;
	int n = 0, rc;

	if (c->short_)
		return bad_rows(r, "a block's row is cut short");
	if (idx > (uint64_t)INT64_MAX / r->block_size)
		return bad_rows(r, "block %" PRIu64 " of object %" PRIu64
			       " is past any file's end", idx, ino);
	if (hash) {
		st = stmt(r, RQ_BLOB_FIND);
		if (st)
			sqlite3_bind_blob(st, 1, hash, KEEP_HASH_BYTES,
					  SQLITE_STATIC);
		rc = one_int(r, st, "a block's blob", &blob, &found);
		if (rc)
			return rc;
		if (!found)
			return bad_rows(r, "block %" PRIu64 " of object %" PRIu64
				       " uses a blob that neither the stream "
				       "nor the replica has", idx, ino);
	}
	st = stmt(r, RQ_END_BLOCK);
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)idx);
		sqlite3_bind_int64(st, 3, (int64_t)r->commit);
	}
	rc = run(r, st, "a block", &n);
	if (rc)
		return rc;
	if (del)
		return n == 1 ? 0
			      : bad_rows(r, "block %" PRIu64 " of object %"
					 PRIu64 " is not in the replica", idx,
					 ino);
	st = stmt(r, RQ_BLOCK_ADD);
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)idx);
		sqlite3_bind_int64(st, 3, (int64_t)r->commit);
		sqlite3_bind_int64(st, 4, blob);
	}
	return run(r, st, "a block", NULL);
}

static int op_xattr(struct rcv *r, struct cur *c, uint64_t ino, bool del)
{
	size_t nlen, vlen = 0;
	const uint8_t *name = take_name(c, &nlen), *value = NULL;
	sqlite3_stmt *st;
	int n = 0, rc;

	if (!del) {
		vlen = (size_t)take(c, 4);
		if (vlen > KEEP_XATTR_SIZE_MAX)
			return bad_rows(r, "an xattr of object %" PRIu64
				       " is %zu bytes", ino, vlen);
		value = take_raw(c, vlen);
	}
	if (c->short_ || !name)
		return bad_rows(r, "an xattr's row is cut short or unnamed");
	st = stmt(r, RQ_END_XATTR);
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_blob(st, 2, name, (int)nlen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)r->commit);
	}
	rc = run(r, st, "an xattr", &n);
	if (rc)
		return rc;
	if (del)
		return n == 1 ? 0
			      : bad_rows(r, "an xattr of object %" PRIu64
					 " is not in the replica", ino);
	st = stmt(r, RQ_XATTR_ADD);
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_blob(st, 2, name, (int)nlen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)r->commit);
		/* a zero-length value is a value: not NULL */
		sqlite3_bind_blob(st, 4, vlen ? (const void *)value : "",
				  (int)vlen, SQLITE_STATIC);
	}
	return run(r, st, "an xattr", NULL);
}

static int op_dirent(struct rcv *r, struct cur *c, uint64_t dir, bool del)
{
	uint64_t id = take(c, 8), ino = 0;
	size_t nlen = 0;
	const uint8_t *name = NULL;
	sqlite3_stmt *st;
	int n = 0, rc;

	if (!del) {
		name = take_name(c, &nlen);
		ino = take(c, 8);
		if (!c->short_ &&
		    (!name || memchr(name, '/', nlen) ||
		     (nlen == 1 && name[0] == '.') ||
		     (nlen == 2 && name[0] == '.' && name[1] == '.')))
			return bad_rows(r, "an entry of directory %" PRIu64
				       " has an impossible name", dir);
		if (!c->short_ && (!ino_ok(ino) || ino == KEEP_ROOT_INO))
			return bad_rows(r, "an entry of directory %" PRIu64
				       " names object %" PRIu64, dir, ino);
	}
	if (c->short_)
		return bad_rows(r, "an entry's row is cut short");
	if (id == 0 || id > INT64_MAX)
		return bad_rows(r, "an entry of directory %" PRIu64
			       " has number %" PRIu64, dir, id);
	if (!del) {
		/* a full stream onto a replica ended every entry first */
		st = stmt(r, RQ_DIRENT_KEEP);
		if (st) {
			sqlite3_bind_int64(st, 1, (int64_t)dir);
			sqlite3_bind_int64(st, 2, (int64_t)id);
			sqlite3_bind_int64(st, 3, (int64_t)r->commit);
			sqlite3_bind_blob(st, 4, name, (int)nlen, SQLITE_STATIC);
			sqlite3_bind_int64(st, 5, (int64_t)ino);
		}
		rc = run(r, st, "an entry", &n);
		if (rc || n == 1)
			return rc;
	}
	st = stmt(r, RQ_END_DIRENT);
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)dir);
		sqlite3_bind_int64(st, 2, (int64_t)id);
		sqlite3_bind_int64(st, 3, (int64_t)r->commit);
	}
	rc = run(r, st, "an entry", &n);
	if (rc)
		return rc;
	if (del)
		return n == 1 ? 0
			      : bad_rows(r, "entry %" PRIu64 " of directory %"
					 PRIu64 " is not in the replica", id,
					 dir);
	st = stmt(r, RQ_DIRENT_ADD);
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)dir);
		sqlite3_bind_int64(st, 2, (int64_t)id);
		sqlite3_bind_blob(st, 3, name, (int)nlen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)r->commit);
		sqlite3_bind_int64(st, 5, (int64_t)ino);
	}
	return run(r, st, "an entry", NULL);
}

static int apply_rows(struct rcv *r, const void *data, size_t len)
{
	struct cur c = {.p = data, .len = len};
	int rc = 0;

	while (!rc && c.pos < c.len) {
		int op = (int)take(&c, 1);
		uint64_t ino = take(&c, 8);
		int had = 0;

		if (c.short_)
			return bad_rows(r, "an op is cut short");
		if (!ino_ok(ino))
			return bad_rows(r, "op %d names object %" PRIu64, op,
					ino);
		r->x.rows++;
		switch (op) {
		case ROP_GONE:
			r->x.objects++;
			rc = end_all_of(r, ino, &had);
			if (!rc && had != 1)
				rc = bad_rows(r, "object %" PRIu64 " is to go, "
					     "but the replica does not have "
					     "it", ino);
			break;
		case ROP_FRESH:
			rc = end_all_of(r, ino, NULL);
			break;
		case ROP_INODE:
			r->x.objects++;
			rc = op_inode(r, &c, ino);
			break;
		case ROP_BLOCK:
		case ROP_BLOCK_DEL:
			rc = op_block(r, &c, ino, op == ROP_BLOCK_DEL);
			break;
		case ROP_XATTR:
		case ROP_XATTR_DEL:
			rc = op_xattr(r, &c, ino, op == ROP_XATTR_DEL);
			break;
		case ROP_DIRENT:
		case ROP_DIRENT_DEL:
			rc = op_dirent(r, &c, ino, op == ROP_DIRENT_DEL);
			break;
		default:
			rc = bad_rows(r, "unknown op %d", op);
		}
	}
	return rc;
}

static int add_blob(struct rcv *r, const struct stream_blob *b)
{
	sqlite3_stmt *st = stmt(r, RQ_BLOB_ADD);
	int n = 0, rc;

	if (st) {
		sqlite3_bind_blob(st, 1, b->hash, KEEP_HASH_BYTES,
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, b->size);
		sqlite3_bind_int64(st, 3, b->csize);
		sqlite3_bind_int64(st, 4, b->flags);
		sqlite3_bind_int64(st, 5, b->crc);
		sqlite3_bind_blob(st, 6, b->csize ? b->data : "", (int)b->csize,
				  SQLITE_STATIC);
	}
	rc = run(r, st, "a blob", &n);
	if (!rc) {
		r->x.blobs++;
		r->x.blob_bytes += b->csize;
		r->x.new_blobs += n > 0;
	}
	return rc;
}

/* The tree the transaction made: every entry names a live object, the
 * root is a directory.  Then the counters of new objects and entries. */
static int check_tree(struct rcv *r)
{
	sqlite3_stmt *st = stmt(r, RQ_DANGLING);
	int64_t v = 0;
	bool found;
	int src, rc;

	if (!st)
		return sql_fail(r, sqlite3_errcode(r->h), "check");
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		uint64_t dir = (uint64_t)sqlite3_column_int64(st, 0),
			 ino = (uint64_t)sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
		return bad_rows(r, "an entry of directory %" PRIu64
			       " names object %" PRIu64 ", which the tree "
			       "does not have", dir, ino);
	}
	sqlite3_reset(st);
	if (src != SQLITE_DONE)
		return sql_fail(r, src, "check");
	rc = one_int(r, stmt(r, RQ_ROOT), "check", &v, &found);
	if (!rc && (!found || ((uint32_t)v & S_IFMT) != S_IFDIR))
		return bad_rows(r, "the tree has no root directory");
	if (!rc) {
		/* the rest of what fsck asks of a tree: a stream is checked
		 * for damage, not forgery, so its rows are not trusted */
		char what[400];
		uint64_t n = 0;

		rc = db_check_live(r->s, &n, what, sizeof(what));
		if (!rc && n)
			return bad_rows(r, "the tree it makes is not "
				       "consistent (%" PRIu64 " problem%s: %s)",
				       n, n == 1 ? "" : "s", what);
	}
	if (!rc)
		rc = one_int(r, stmt(r, RQ_MAX_INO), "check", &v, &found);
	if (!rc && (uint64_t)v + 1 > r->s->next_ino)
		r->s->next_ino = (uint64_t)v + 1;
	if (!rc)
		rc = one_int(r, stmt(r, RQ_MAX_DIRENT), "check", &v, &found);
	if (!rc && (uint64_t)v + 1 > r->s->next_dirent)
		r->s->next_dirent = (uint64_t)v + 1;
	return rc;
}

/* ---- the whole receive ---------------------------------------------------- */

struct counted {
	keep_read_fn read;
	void *ctx;
	uint64_t bytes;
};

static int count_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct counted *c = ctx;
	int rc = c->read(c->ctx, buf, len, got);

	if (!rc)
		c->bytes += *got;
	return rc;
}

static void info_of(const struct stream_header *h,
		    struct keep_stream_info *info)
{
	memset(info, 0, sizeof(*info));
	memcpy(info->source, h->uuid, sizeof(info->source));
	snprintf(info->name, sizeof(info->name), "%s", h->name);
	info->commit = h->commit;
	info->commit_ns = h->commit_ns;
	info->created_ns = h->created_ns;
	info->origin = h->origin;
	info->incremental = h->incremental;
	if (h->incremental)
		snprintf(info->base, sizeof(info->base), "%s", h->base_name);
	info->base_commit = h->base_commit;
	info->encrypted = h->store_format != KEEP_FORMAT_PLAIN;
	info->block_size = h->block_size;
	info->expect_bytes = h->expect_bytes;
}

/*
 * Whether the replica can take this stream (called in the transaction):
 * 0 to go on, or an error.  *have gets 1 when it has the snapshot
 * already, 2 when it has its commit under another name (the name is all
 * that is missing).
 */
static int fits(struct rcv *r, const struct stream_header *h, bool fresh,
		  const char *path, int *have)
{
	struct keep_snapshot snap;
	char buf[64] = "";
	uint64_t last = fresh ? 0 : db_last_commit(r->s);
	bool found;
	int rc;

	if (fresh)
		return 0;
	rc = db_meta_text(r->s, "replica_of", buf, sizeof(buf));
	if (rc && rc != ENOENT)
		return fail(r, rc, "cannot read %s: %s", path,
			    keep_strerror(rc));
	if (!buf[0])
		return fail(r, EEXIST, "%s is a store of its own, not a replica; "
			    "receive into a new path", path);
	if (strcmp(buf, h->uuid) != 0)
		return fail(r, EEXIST, "%s is a replica of another store (%s); "
			    "this stream comes from %s", path, buf, h->uuid);
	if (r->s->block_size != h->block_size ||
	    r->s->encrypted != (h->store_format != KEEP_FORMAT_PLAIN))
		return fail(r, KEEP_E_CORRUPT, "%s does not match its source's "
			    "block size or encryption", path);
	rc = db_snap_get(r->s, h->name, 0, &snap);
	if (rc == 0 && snap.commit == h->commit) {
		*have = 1;
		return 0;
	}
	if (rc == 0)
		return fail(r, EEXIST, "%s has a snapshot '%s' of another "
			    "commit (%" PRIu64 ", the stream's is %" PRIu64
			    "); delete it there or rename it", path, h->name,
			    snap.commit, h->commit);
	if (rc != ENOENT)
		return rc;
	/* the commit is there under another name: the name is all */
	rc = has_commit(r, h->commit, &found);
	if (rc)
		return rc;
	if (found) {
		*have = 2;
		return 0;
	}
	if (h->commit < last)
		return fail(r, ESTALE, "%s already has newer snapshots (commit %"
			    PRIu64 ") than '%s' (commit %" PRIu64 "); "
			    "snapshots are received oldest first", path, last,
			    h->name, h->commit);
	if (h->incremental && h->base_commit != last) {
		rc = has_commit(r, h->base_commit, &found);
		if (rc)
			return rc;
		if (found)
			return fail(r, ENOENT, "the stream is incremental from "
				    "'%s' (commit %" PRIu64 "), but %s has "
				    "newer snapshots (commit %" PRIu64 "); "
				    "send from its newest snapshot", h->base_name,
				    h->base_commit, path, last);
		return fail(r, ENOENT, "the stream is incremental from '%s' "
			    "(commit %" PRIu64 "), which %s does not have; "
			    "send from a snapshot it has, or a full stream",
			    h->base_name, h->base_commit, path);
	}
	return 0;
}

static int add_snapshot(struct rcv *r, const struct stream_header *h)
{
	sqlite3_stmt *st = stmt(r, RQ_SNAP_ADD);

	if (st) {
		sqlite3_bind_blob(st, 1, h->name, (int)strlen(h->name),
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)h->commit);
		sqlite3_bind_int64(st, 3, h->created_ns);
		sqlite3_bind_int(st, 4, h->origin);
	}
	return run(r, st, "the snapshot", NULL);
}

static int set_meta(struct rcv *r, const struct stream_header *h, bool fresh)
{
	int rc = meta_text(r, "replica_of", h->uuid);

	if (!rc && fresh)
		rc = meta_int(r, "changes_from", (int64_t)h->commit);
	if (!rc && fresh && h->store_format != KEEP_FORMAT_PLAIN)
		rc = meta_int(r, "format_version", h->store_format);
	if (!rc && fresh && h->store_format != KEEP_FORMAT_PLAIN)
		rc = meta_text(r, "cipher", "xchacha20poly1305");
	/* the source's newest wrap: a key changed there opens this too */
	if (!rc && h->key_wrap && h->key_wrap[0])
		rc = meta_text(r, "key_wrap", h->key_wrap);
	return rc;
}

/* Everything after the header, in the transaction.  Returns 0 after the
 * end record, or an error. */
static int apply(struct rcv *r, struct stream_r *sr, const struct stream_header *h,
		 bool fresh)
{
	struct stream_rec rec;
	int rc = 0;

	if (fresh) {
		char *msg = NULL;
		int src = sqlite3_exec(r->h, wipe_sql, NULL, NULL, &msg);

		sqlite3_free(msg);
		if (src != SQLITE_OK)
			return sql_fail(r, src, "a new replica");
		/* its first commit is gone: the received ones keep their
		 * times */
		r->s->last_commit_ns = 0;
	} else if (!h->incremental) {
		/* a full stream replaces the whole tree */
		static const enum rq_id all[] = {
		    RQ_END_ALL_INODES, RQ_END_ALL_BLOCKS, RQ_END_ALL_XATTRS,
		    RQ_END_ALL_DIRENTS};
		for (size_t i = 0; !rc && i < sizeof(all) / sizeof(all[0]);
		     i++) {
			sqlite3_stmt *st = stmt(r, all[i]);

			if (st)
				sqlite3_bind_int64(st, 1, (int64_t)r->commit);
			rc = run(r, st, "replace the tree", NULL);
		}
	}
	while (!rc) {
		rc = stream_r_next(sr, &rec);
		if (rc == KEEP_E_CORRUPT)
			return fail(r, rc, "%s", stream_r_error(sr));
		if (rc == KEEP_E_NOMEM)
			return fail(r, rc, "out of memory");
		if (rc)
			return fail(r, rc, "cannot read the stream: %s",
				    rc > 0 ? strerror(rc) : keep_strerror(rc));
		r->record = rec.index;
		switch (rec.type) {
		case STREAM_BLOB:
			rc = add_blob(r, &rec.blob);
			break;
		case STREAM_ROWS:
			rc = apply_rows(r, rec.rows.data, rec.rows.len);
			break;
		case STREAM_END:
			goto done;
		default:
			rc = fail(r, KEEP_E_CORRUPT, "stream damaged: record %"
				  PRIu64 " out of place", rec.index);
		}
	}
	return rc;
done:
	rc = check_tree(r);
	if (!rc)
		rc = add_snapshot(r, h);
	if (!rc)
		rc = set_meta(r, h, fresh);
	return rc;
}

/* ---- paths ---------------------------------------------------------------- */

/* path's directory and a hidden name beside path for a new replica */
static int staging_of(const char *path, char **dir, char **stage)
{
	size_t n = strlen(path);
	char *p;

	while (n > 1 && path[n - 1] == '/')
		n--;
	p = strndup(path, n);
	if (!p)
		return KEEP_E_NOMEM;
	char *slash = strrchr(p, '/');
	const char *base = slash ? slash + 1 : p;
	if (!slash)
		*dir = strdup(".");
	else if (slash == p)
		*dir = strdup("/");
	else
		*dir = strndup(p, (size_t)(slash - p));
	if (!*dir || asprintf(stage, "%s/.%s.receiving-XXXXXX", *dir, base) < 0) {
		free(*dir);
		free(p);
		*stage = *dir = NULL;
		return KEEP_E_NOMEM;
	}
	free(p);
	if (!mkdtemp(*stage)) {
		int e = errno;
		free(*stage);
		free(*dir);
		*stage = *dir = NULL;
		return e;
	}
	return 0;
}

int keep_receive(const struct keep_recv_req *req, keep_read_fn read,
		 void *rctx, struct keep_recv_result *out, char *err,
		 size_t errlen)
{
	struct counted cnt = {.read = read, .ctx = rctx};
	struct rcv r = {.err = err, .errlen = errlen};
	struct keep_recv_result res = {0};
	struct stream_r *sr = NULL;
	struct stream_rec rec;
	struct stat st;
	char *dir = NULL, *stage = NULL;
	bool fresh, began = false;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!req || !req->path || !read)
		return KEEP_E_INVAL;
	if (keep_codec_global_init())
		return KEEP_E_NOMEM;
	rc = stream_r_new(count_read, &cnt, &sr);
	if (rc)
		return fail(&r, rc, "out of memory");
	rc = stream_r_next(sr, &rec);
	if (rc == KEEP_E_CORRUPT)
		rc = fail(&r, rc, "%s", stream_r_error(sr));
	else if (rc)
		rc = fail(&r, rc, "cannot read the stream: %s",
			  rc > 0 ? strerror(rc) : keep_strerror(rc));
	if (rc)
		goto out;
	const struct stream_header *h = &rec.header;
	info_of(h, &res.info);

	fresh = !keep_is_store(req->path);
	if (fresh && h->incremental) {
		rc = fail(&r, ENOENT, "%s is not a replica; the stream is "
			  "incremental from '%s' and needs one that has it "
			  "(send a full stream first)", req->path, h->base_name);
		goto out;
	}
	if (fresh && lstat(req->path, &st) == 0 &&
	    !(S_ISDIR(st.st_mode) && store_dir_is_empty(req->path))) {
		rc = fail(&r, EEXIST, "%s exists and is not a keepfs store",
			  req->path);
		goto out;
	}
	if (fresh) {
		struct keep_init_opts o = {.block_size = h->block_size,
					   .root_mode = 0755};
		rc = staging_of(req->path, &dir, &stage);
		if (rc) {
			fail(&r, rc, "cannot make a replica beside %s: %s",
			     req->path, rc > 0 ? strerror(rc) : keep_strerror(rc));
			goto out;
		}
		rc = keep_store_init(stage, &o);
		if (!rc)
			rc = keep_store_open(stage, KEEP_OPEN_WRITE, &r.s);
		if (rc) {
			fail(&r, rc, "cannot make a replica beside %s: %s",
			     req->path, rc > 0 ? strerror(rc) : keep_strerror(rc));
			goto out;
		}
	} else {
		rc = keep_store_open(req->path, KEEP_OPEN_WRITE | KEEP_OPEN_NOKEY,
				     &r.s);
		if (rc == KEEP_E_LOCKED) {
			pid_t pid = keep_store_lock_owner(req->path);
			if (pid > 0)
				fail(&r, rc, "%s is in use by process %ld "
				     "(mounted?); unmount it first", req->path,
				     (long)pid);
			else
				fail(&r, rc, "%s is in use (mounted?); unmount "
				     "it first", req->path);
			goto out;
		}
		if (rc) {
			fail(&r, rc, "cannot open %s: %s", req->path,
			     rc > 0 ? strerror(rc) : keep_strerror(rc));
			goto out;
		}
	}
	r.block_size = r.s->block_size;
	r.commit = h->commit;
	r.h = db_handle(r.s);

	rc = store_own_begin(r.s);
	if (rc) {
		fail(&r, rc, "cannot write %s: %s", req->path,
		     keep_strerror(rc));
		goto out;
	}
	began = true;
	rc = fits(&r, h, fresh, req->path, &res.already);
	if (!rc && res.already) {
		/* the name, when only the commit was there; and a key
		 * changed on the source opens the replica too */
		rc = res.already == 2 ? add_snapshot(&r, h) : 0;
		if (!rc && h->key_wrap && h->key_wrap[0])
			rc = meta_text(&r, "key_wrap", h->key_wrap);
		rc = store_own_end(r.s, rc);
		began = false;
		if (!rc)
			rc = store_sync(r.s);
		if (rc)
			fail(&r, rc, "cannot write %s: %s", req->path,
			     rc > 0 ? strerror(rc) : keep_strerror(rc));
		goto out;
	}
	if (!rc && req->started)
		req->started(req->ctx, &res.info);
	if (!rc)
		rc = apply(&r, sr, h, fresh);
	if (rc) {
		store_own_end(r.s, rc);
		began = false;
		goto out;
	}
	rc = store_own_commit(r.s, h->commit, h->commit_ns);
	r.s->replica = true;
	began = false;
	icache_release(&r.s->icache); /* rows changed under it */
	if (rc) {
		fail(&r, rc, "cannot commit the snapshot to %s: %s", req->path,
		     rc > 0 ? strerror(rc) : keep_strerror(rc));
		goto out;
	}
	if (req->flags & KEEP_RECV_PRUNE) {
		struct keep_policy p;
		struct keep_gc_req g = {0};

		rc = keep_policy_load(r.s, &p);
		if (!rc)
			rc = keep_retain(r.s, &p, NULL, NULL, &res.pruned);
		g.journal_ns = p.journal_ns;
		if (!rc)
			rc = keep_gc(r.s, &g, &res.gc);
		if (rc)
			fail(&r, rc, "received '%s', but pruning %s failed: %s",
			     h->name, req->path,
			     rc > 0 ? strerror(rc) : keep_strerror(rc));
	}
out:
	if (began)
		store_own_end(r.s, rc ? rc : KEEP_E_INVAL);
	for (int i = 0; i < RQ__COUNT; i++)
		sqlite3_finalize(r.q[i]);
	if (r.s) {
		int crc = keep_store_close(r.s);
		if (!rc && crc)
			rc = fail(&r, crc, "cannot close %s: %s", req->path,
				  keep_strerror(crc));
	}
	if (stage && !rc && !res.already) {
		/* the new replica takes its place, durably */
		if (rename(stage, req->path) != 0)
			rc = fail(&r, errno, "cannot move the new replica to "
				  "%s: %s", req->path, strerror(errno));
		else if ((rc = store_sync_dir(dir)) != 0)
			fail(&r, rc, "cannot sync %s: %s", dir, strerror(rc));
		else
			res.created = 1;
	}
	if (stage && !res.created) {
		store_remove_files(stage);
		rmdir(stage);
	}
	free(stage);
	free(dir);
	stream_r_free(sr);
	res.xfer = r.x;
	res.xfer.bytes = cnt.bytes;
	if (!rc && out)
		*out = res;
	return rc;
}

/* ---- replicas ------------------------------------------------------------ */

int keep_replica_of(struct keep_store *s, char *buf, size_t len)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = db_meta_text(s, "replica_of", buf, len);
	pthread_mutex_unlock(&s->mu);
	if (rc == ENOENT) {
		if (len)
			buf[0] = '\0';
		rc = 0;
	}
	return rc;
}

int keep_promote(struct keep_store *s)
{
	char buf[64];
	int rc = keep_replica_of(s, buf, sizeof(buf));

	if (rc)
		return rc;
	if (!buf[0])
		return EINVAL;
	rc = store_own_begin(s);
	if (!rc)
		rc = db_meta_set_text(s, "replica_of", NULL);
	rc = store_own_end(s, rc);
	if (!rc)
		s->replica = false;
	if (!rc)
		rc = store_sync(s); /* durable before return */
	return rc;
}
