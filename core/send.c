/*
 * send.c - writing a snapshot of a store as a send stream (keep_send).
 *
 * stream.c owns the bytes of records; this file decides what goes into
 * them: which objects, which of their rows, which blobs.  receive.c
 * applies what it writes.
 *
 * Design notes:
 *
 *  1. A view's objects are the inodes it sees with a link count above 0.
 *     An object's rows are its inode row, its blocks, its xattrs and, for
 *     a directory, the entries in it.  Rows of one key have one version
 *     in a view (db.c note 1), so "what changed between B and S" is, per
 *     key, the row S sees when B did not see it (born in (B, S]) and the
 *     keys B saw that S no longer has.
 *  2. The objects of an incremental stream are those the change journal
 *     names for commits (B, S] (db_dq_candidates; a scan of the tables
 *     where the journal does not reach back that far).  Each is sent as
 *     one of: GONE (not in S: the receiver ends all its rows), FRESH (in
 *     S, not in B: all its rows) or changed (its rows born after B, and
 *     the keys that went).  A full stream sends every object FRESH.
 *  3. Blocks travel by content hash, not by blob id (ids are each
 *     store's own).  A blob is sent once per stream, before any row
 *     that uses it, and not at all when an object of B uses it (the
 *     receiver has B); without the blocks_blob index (a store that never
 *     collected garbage) that last test is skipped and such blobs are
 *     sent again, which the receiver ignores.
 *  4. Everything is read in one read transaction, so a mount that keeps
 *     committing, or collecting garbage, cannot change the view midway.
 *  5. The row format (enum rop, in keep_i.h) is little-endian, each op a
 *     byte and its fields; receive.c checks every field.
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"

enum sq_id {
	SQ_OBJECTS,
	SQ_INODE,
	SQ_BLOCKS_NEW,
	SQ_BLOCKS_GONE,
	SQ_XATTRS_NEW,
	SQ_XATTRS_GONE,
	SQ_DIRENTS_NEW,
	SQ_DIRENTS_GONE,
	SQ_BLOB_IN_BASE,
	SQ_BLOB,
	SQ_BLOB_INDEX,
	SQ__COUNT
};

#define SEES(t, c) "(" t "born <= " c " AND (" t "died IS NULL OR " t \
		   "died > " c "))"

/* ?1 the object, ?2 the base (0: none), ?3 the snapshot */
static const char *const sq_sql[SQ__COUNT] = {
    [SQ_OBJECTS] = "SELECT ino FROM inodes WHERE " SEES("", "?1")
		   " AND nlink > 0 ORDER BY ino",
    [SQ_INODE] = "SELECT born, mode, uid, gid, nlink, size, rdev, atime, "
		 "mtime, ctime, btime, nblocks, parent, symlink FROM inodes "
		 "WHERE ino = ?1 AND " SEES("", "?2"),
    [SQ_BLOCKS_NEW] = "SELECT b.idx, b.blob, o.hash, o.csize FROM blocks AS b "
		      "JOIN blobs AS o ON o.id = b.blob WHERE b.ino = ?1 "
		      "AND b.born > ?2 AND " SEES("b.", "?3")
		      " ORDER BY b.idx",
    [SQ_BLOCKS_GONE] = "SELECT idx FROM blocks AS b WHERE ino = ?1 AND "
		       SEES("", "?2") " AND died <= ?3 AND NOT EXISTS "
		       "(SELECT 1 FROM blocks AS n WHERE n.ino = ?1 AND "
		       "n.idx = b.idx AND n.born > ?2 AND " SEES("n.", "?3")
		       ") ORDER BY idx",
    [SQ_XATTRS_NEW] = "SELECT name, value FROM xattrs WHERE ino = ?1 AND "
		      "born > ?2 AND " SEES("", "?3") " ORDER BY name",
    [SQ_XATTRS_GONE] = "SELECT name FROM xattrs AS x WHERE ino = ?1 AND "
		       SEES("", "?2") " AND died <= ?3 AND NOT EXISTS "
		       "(SELECT 1 FROM xattrs AS n WHERE n.ino = ?1 AND "
		       "n.name = x.name AND n.born > ?2 AND " SEES("n.", "?3")
		       ") ORDER BY name",
    [SQ_DIRENTS_NEW] = "SELECT id, name, ino FROM dirents WHERE parent = ?1 "
		       "AND born > ?2 AND " SEES("", "?3") " ORDER BY id",
    [SQ_DIRENTS_GONE] = "SELECT id FROM dirents WHERE parent = ?1 AND "
			SEES("", "?2") " AND died <= ?3 ORDER BY id",
    /* ?1 a blob, ?2 the base: does an object of the base use it? */
    [SQ_BLOB_IN_BASE] = "SELECT 1 FROM blocks AS b JOIN inodes AS i ON "
			"i.ino = b.ino AND " SEES("i.", "?2")
			" AND i.nlink > 0 WHERE b.blob = ?1 AND "
			SEES("b.", "?2") " LIMIT 1",
    [SQ_BLOB] = "SELECT hash, size, csize, flags, crc, data FROM blobs "
		"WHERE id = ?1",
    [SQ_BLOB_INDEX] = "SELECT count(*) FROM sqlite_master WHERE "
		      "type = 'index' AND name = 'blocks_blob'",
};

enum obj_kind { OBJ_GONE, OBJ_FRESH, OBJ_CHANGED };

struct obj {
	uint64_t ino;
	int kind;
};

struct snd {
	struct keep_store *s;
	sqlite3 *h;
	sqlite3_stmt *q[SQ__COUNT];
	uint64_t snap, base; /* commits; base 0: a full stream */
	bool blob_index;

	struct obj *objs;
	size_t nobjs, capobjs;
	struct umap seen; /* objects (incremental: the journal names twice) */
	struct umap blobset; /* blob id -> SENT or SKIP */
	uint64_t *blobs;
	size_t nblobs, capblobs;
	uint64_t expect; /* the stream's bytes, estimated while planning */

	struct stream_w *w;
	keep_write_fn write;
	void *wctx;
	uint8_t *buf; /* the rows record being filled */
	size_t len, cap;
	struct keep_xfer x;
	char *err;
	size_t errlen;
};

static char SENT, SKIP; /* values in blobset */

static int __attribute__((format(printf, 3, 4)))
fail(struct snd *d, int rc, const char *fmt, ...)
{
	va_list ap;

	if (d->err && d->errlen && !d->err[0]) {
		va_start(ap, fmt);
		vsnprintf(d->err, d->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int sql_fail(struct snd *d, int src, const char *what)
{
	int rc = db_error(d->s, src, what);

	return fail(d, rc ? rc : KEEP_E_SQLITE, "reading the store (%s): %s",
		    what, sqlite3_errmsg(d->h));
}

static sqlite3_stmt *stmt(struct snd *d, enum sq_id id)
{
	if (!d->q[id] &&
	    sqlite3_prepare_v2(d->h, sq_sql[id], -1, &d->q[id], NULL) !=
		    SQLITE_OK)
		return NULL;
	sqlite3_reset(d->q[id]);
	sqlite3_clear_bindings(d->q[id]);
	return d->q[id];
}

/* ---- the rows record --------------------------------------------------- */

#define ROWS_FLUSH ((size_t)1 << 20)

static int rows_flush(struct snd *d)
{
	int rc;

	if (!d->len)
		return 0;
	rc = stream_w_rows(d->w, d->buf, d->len);
	d->len = 0;
	return rc;
}

/* Room for n more bytes (flushing first when the record is full). */
static int room(struct snd *d, size_t n)
{
	int rc = 0;

	if (d->len && d->len + n > ROWS_FLUSH)
		rc = rows_flush(d);
	if (!rc && d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		void *p;

		while (cap < d->len + n)
			cap *= 2;
		p = realloc(d->buf, cap);
		if (!p)
			return KEEP_E_NOMEM;
		d->buf = p;
		d->cap = cap;
	}
	return rc;
}

static void put(struct snd *d, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		d->buf[d->len++] = (uint8_t)(v >> (8 * i));
}

static void put_raw(struct snd *d, const void *p, size_t n)
{
	if (n)
		memcpy(d->buf + d->len, p, n);
	d->len += n;
}

static int op_ino(struct snd *d, int op, uint64_t ino)
{
	int rc = room(d, 9);

	if (!rc) {
		put(d, (uint64_t)op, 1);
		put(d, ino, 8);
		d->x.rows++;
	}
	return rc;
}

/* ---- planning: the objects and the blobs -------------------------------- */

static int add_obj(struct snd *d, uint64_t ino, int kind)
{
	if (GROW(d->objs, d->capobjs, d->nobjs))
		return KEEP_E_NOMEM;
	d->objs[d->nobjs++] = (struct obj){.ino = ino, .kind = kind};
	return 0;
}

/* Does view `commit` see ino with a link count above 0? */
static int sees(struct snd *d, uint64_t ino, uint64_t commit, bool *yes)
{
	sqlite3_stmt *st = stmt(d, SQ_INODE);
	int src;

	*yes = false;
	if (!st)
		return sql_fail(d, sqlite3_errcode(d->h), "an object");
	if (!commit)
		return 0;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)commit);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*yes = sqlite3_column_int64(st, 4) > 0;
	else if (src != SQLITE_DONE)
		return sql_fail(d, src, "an object");
	sqlite3_reset(st);
	return 0;
}

static int classify(void *ctx, uint64_t ino)
{
	struct snd *d = ctx;
	void **slot;
	bool fresh, in_base, in_snap;
	int rc = umap_put(&d->seen, ino, &slot, &fresh);

	if (rc || !fresh)
		return rc;
	rc = sees(d, ino, d->base, &in_base);
	if (!rc)
		rc = sees(d, ino, d->snap, &in_snap);
	if (rc || (!in_base && !in_snap))
		return rc;
	return add_obj(d, ino, !in_snap ? OBJ_GONE
				: !in_base ? OBJ_FRESH
					   : OBJ_CHANGED);
}

/* A per-row step of each_row: the query's current row, of object ino. */
typedef int (*row_fn)(struct snd *d, sqlite3_stmt *st, uint64_t ino);

/* Run query q (?1 ino, ?2 after, ?3 the snapshot) and fn on each row. */
static int each_row(struct snd *d, enum sq_id q, uint64_t ino, uint64_t after,
		    row_fn fn, const char *what)
{
	sqlite3_stmt *st = stmt(d, q);
	int src = SQLITE_DONE, rc = 0;

	if (!st)
		return sql_fail(d, sqlite3_errcode(d->h), what);
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)after);
	sqlite3_bind_int64(st, 3, (int64_t)d->snap);
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = fn(d, st, ino);
	if (!rc && src != SQLITE_DONE)
		rc = sql_fail(d, src, what);
	sqlite3_reset(st);
	return rc;
}

/* A block new in the snapshot: its blob is noted for sending, unless the
 * base has it, and counted into the estimate. */
static int plan_block(struct snd *d, sqlite3_stmt *st, uint64_t ino)
{
	uint64_t blob = (uint64_t)sqlite3_column_int64(st, 1);
	void **slot;
	bool fresh;
	int rc;

	(void)ino;
	d->expect += 1 + 8 + 8 + KEEP_HASH_BYTES;
	rc = umap_put(&d->blobset, blob, &slot, &fresh);
	if (rc || !fresh)
		return rc;
	*slot = &SENT;
	if (d->base && d->blob_index) {
		sqlite3_stmt *b = stmt(d, SQ_BLOB_IN_BASE);
		int src;

		if (!b)
			return sql_fail(d, sqlite3_errcode(d->h), "blob users");
		sqlite3_bind_int64(b, 1, (int64_t)blob);
		sqlite3_bind_int64(b, 2, (int64_t)d->base);
		src = sqlite3_step(b);
		sqlite3_reset(b);
		if (src == SQLITE_ROW) {
			*slot = &SKIP;
			return 0;
		}
		if (src != SQLITE_DONE)
			return sql_fail(d, src, "blob users");
	}
	if (GROW(d->blobs, d->capblobs, d->nblobs))
		return KEEP_E_NOMEM;
	d->blobs[d->nblobs++] = blob;
	/* a blob record: frame, fields, the stored bytes, check */
	d->expect += STREAM_FRAME_BYTES + STREAM_BLOB_FIXED +
		     (uint64_t)sqlite3_column_int64(st, 3) + STREAM_CHECK_BYTES;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_obj(const void *a, const void *b)
{
	return cmp_u64(&((const struct obj *)a)->ino,
		       &((const struct obj *)b)->ino);
}

static int plan(struct snd *d)
{
	sqlite3_stmt *st;
	int src, rc = 0;

	st = stmt(d, SQ_BLOB_INDEX);
	if (!st)
		return sql_fail(d, sqlite3_errcode(d->h), "schema");
	if (sqlite3_step(st) == SQLITE_ROW)
		d->blob_index = sqlite3_column_int(st, 0) > 0;
	sqlite3_reset(st);

	if (!d->base) {
		st = stmt(d, SQ_OBJECTS);
		if (!st)
			return sql_fail(d, sqlite3_errcode(d->h), "objects");
		sqlite3_bind_int64(st, 1, (int64_t)d->snap);
		while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
			rc = add_obj(d, (uint64_t)sqlite3_column_int64(st, 0),
				     OBJ_FRESH);
		if (!rc && src != SQLITE_DONE)
			rc = sql_fail(d, src, "objects");
		sqlite3_reset(st);
	} else {
		struct dq *q = NULL;
		uint64_t from = 0;

		rc = db_journal_from(d->s, &from);
		if (!rc)
			rc = db_dq_open(d->s, &q);
		if (!rc)
			rc = db_dq_candidates(q, d->base, d->snap,
					      !from || d->base + 1 < from,
					      classify, d);
		db_dq_close(q);
		if (!rc && d->nobjs)
			qsort(d->objs, d->nobjs, sizeof(*d->objs), cmp_obj);
	}
	d->expect = 1024 + 120 * (uint64_t)d->nobjs; /* header, inode rows */
	for (size_t i = 0; !rc && i < d->nobjs; i++)
		if (d->objs[i].kind != OBJ_GONE)
			rc = each_row(d, SQ_BLOCKS_NEW, d->objs[i].ino,
				      d->objs[i].kind == OBJ_FRESH ? 0 : d->base,
				      plan_block, "blocks");
	if (!rc && d->nblobs)
		qsort(d->blobs, d->nblobs, sizeof(*d->blobs), cmp_u64);
	return rc;
}

/* ---- writing ------------------------------------------------------------ */

static int send_blob(struct snd *d, uint64_t id)
{
	sqlite3_stmt *st = stmt(d, SQ_BLOB);
	struct stream_blob b = {.id = id};
	int src, rc;

	if (!st)
		return sql_fail(d, sqlite3_errcode(d->h), "a blob");
	sqlite3_bind_int64(st, 1, (int64_t)id);
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		sqlite3_reset(st);
		if (src == SQLITE_DONE)
			return fail(d, KEEP_CORRUPT_BKPT("a block's blob is "
							 "missing"),
				    "the store is damaged: blob %" PRIu64
				    " is missing (run keepfs fsck)", id);
		return sql_fail(d, src, "a blob");
	}
	if (sqlite3_column_bytes(st, 0) != KEEP_HASH_BYTES) {
		sqlite3_reset(st);
		return fail(d, KEEP_CORRUPT_BKPT("a blob's hash"),
			    "the store is damaged: blob %" PRIu64
			    " has a bad hash (run keepfs fsck)", id);
	}
	memcpy(b.hash, sqlite3_column_blob(st, 0), KEEP_HASH_BYTES);
	b.size = (uint32_t)sqlite3_column_int64(st, 1);
	b.csize = (uint32_t)sqlite3_column_bytes(st, 5);
	b.flags = (uint32_t)sqlite3_column_int64(st, 3);
	b.crc = (uint32_t)sqlite3_column_int64(st, 4);
	b.data = sqlite3_column_blob(st, 5);
	if ((uint64_t)sqlite3_column_int64(st, 2) != b.csize) {
		sqlite3_reset(st);
		return fail(d, KEEP_CORRUPT_BKPT("a blob's stored size"),
			    "the store is damaged: blob %" PRIu64
			    " is not the size it says (run keepfs fsck)", id);
	}
	rc = stream_w_blob(d->w, &b);
	sqlite3_reset(st);
	if (rc == KEEP_E_CORRUPT)
		return fail(d, rc,
			    "the store is damaged: blob %" PRIu64
			    " fails its CRC (run keepfs fsck)", id);
	if (rc == KEEP_E_INVAL)
		return fail(d, KEEP_CORRUPT_BKPT("a blob's fields"),
			    "the store is damaged: blob %" PRIu64
			    " has impossible fields (run keepfs fsck)", id);
	if (!rc) {
		d->x.blobs++;
		d->x.blob_bytes += b.csize;
	}
	return rc;
}

static int send_inode(struct snd *d, uint64_t ino, uint64_t after)
{
	sqlite3_stmt *st = stmt(d, SQ_INODE);
	int src, rc = 0;

	if (!st)
		return sql_fail(d, sqlite3_errcode(d->h), "an object");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)d->snap);
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		sqlite3_reset(st);
		return src == SQLITE_DONE ? KEEP_CORRUPT_BKPT("object vanished")
					  : sql_fail(d, src, "an object");
	}
	if ((uint64_t)sqlite3_column_int64(st, 0) > after) {
		int tlen = sqlite3_column_type(st, 13) == SQLITE_NULL
				   ? -1
				   : sqlite3_column_bytes(st, 13);

		rc = room(d, 1 + 8 + 4 * 4 + 8 * 8 + 2 + (tlen > 0 ? tlen : 0));
		if (!rc) {
			put(d, ROP_INODE, 1);
			put(d, ino, 8);
			for (int c = 1; c <= 4; c++) /* mode uid gid nlink */
				put(d, (uint64_t)sqlite3_column_int64(st, c), 4);
			for (int c = 5; c <= 12; c++) /* size .. parent */
				put(d, (uint64_t)sqlite3_column_int64(st, c), 8);
			/* a target's length + 1, or 0 for none */
			put(d, (uint64_t)(tlen + 1), 2);
			if (tlen > 0)
				put_raw(d, sqlite3_column_blob(st, 13),
					(size_t)tlen);
			d->x.rows++;
		}
	}
	sqlite3_reset(st);
	return rc;
}

static int block_row(struct snd *d, sqlite3_stmt *st, uint64_t ino)
{
	int rc;

	if (sqlite3_column_bytes(st, 2) != KEEP_HASH_BYTES)
		return fail(d, KEEP_CORRUPT_BKPT("a blob's hash"),
			    "the store is damaged: a blob of inode %" PRIu64
			    " has a bad hash (run keepfs fsck)", ino);
	rc = room(d, 1 + 8 + 8 + KEEP_HASH_BYTES);
	if (rc)
		return rc;
	put(d, ROP_BLOCK, 1);
	put(d, ino, 8);
	put(d, (uint64_t)sqlite3_column_int64(st, 0), 8);
	put_raw(d, sqlite3_column_blob(st, 2), KEEP_HASH_BYTES);
	d->x.rows++;
	return 0;
}

/* An op of a key that went: a block index or an entry id (column 0). */
static int gone_row(struct snd *d, sqlite3_stmt *st, uint64_t ino, int op)
{
	int rc = room(d, 1 + 8 + 8);

	if (rc)
		return rc;
	put(d, (uint64_t)op, 1);
	put(d, ino, 8);
	put(d, (uint64_t)sqlite3_column_int64(st, 0), 8);
	d->x.rows++;
	return 0;
}

static int block_gone_row(struct snd *d, sqlite3_stmt *st, uint64_t ino)
{
	return gone_row(d, st, ino, ROP_BLOCK_DEL);
}

static int dirent_gone_row(struct snd *d, sqlite3_stmt *st, uint64_t dir)
{
	return gone_row(d, st, dir, ROP_DIRENT_DEL);
}

/* A name column: 1 to KEEP_NAME_MAX bytes, or the store is damaged. */
static int name_col(struct snd *d, sqlite3_stmt *st, int col, uint64_t ino,
		    const void **p, size_t *n)
{
	int len = sqlite3_column_bytes(st, col);

	if (len < 1 || len > KEEP_NAME_MAX)
		return fail(d, KEEP_CORRUPT_BKPT("a name's length"),
			    "the store is damaged: a name of inode %" PRIu64
			    " is %d bytes (run keepfs fsck)", ino, len);
	*p = sqlite3_column_blob(st, col);
	*n = (size_t)len;
	return 0;
}

/* an xattr (column 0 its name; with a value, column 1) */
static int xattr_op(struct snd *d, sqlite3_stmt *st, uint64_t ino,
		    bool value)
{
	size_t vlen = value ? (size_t)sqlite3_column_bytes(st, 1) : 0, nlen = 0;
	const void *name = NULL;
	int rc = name_col(d, st, 0, ino, &name, &nlen);

	if (!rc && vlen > KEEP_XATTR_SIZE_MAX)
		rc = fail(d, KEEP_CORRUPT_BKPT("an xattr's size"),
			  "the store is damaged: an xattr of inode %" PRIu64
			  " is too big (run keepfs fsck)", ino);
	if (!rc)
		rc = room(d, 1 + 8 + 1 + nlen + (value ? 4 + vlen : 0));
	if (rc)
		return rc;
	put(d, value ? ROP_XATTR : ROP_XATTR_DEL, 1);
	put(d, ino, 8);
	put(d, nlen, 1);
	put_raw(d, name, nlen);
	if (value) {
		put(d, vlen, 4);
		put_raw(d, sqlite3_column_blob(st, 1), vlen);
	}
	d->x.rows++;
	return 0;
}

static int xattr_row(struct snd *d, sqlite3_stmt *st, uint64_t ino)
{
	return xattr_op(d, st, ino, true);
}

static int xattr_gone_row(struct snd *d, sqlite3_stmt *st, uint64_t ino)
{
	return xattr_op(d, st, ino, false);
}

static int dirent_row(struct snd *d, sqlite3_stmt *st, uint64_t dir)
{
	const void *name = NULL;
	size_t nlen = 0;
	int rc = name_col(d, st, 1, dir, &name, &nlen);

	if (!rc)
		rc = room(d, 1 + 8 + 8 + 1 + nlen + 8);
	if (rc)
		return rc;
	put(d, ROP_DIRENT, 1);
	put(d, dir, 8);
	put(d, (uint64_t)sqlite3_column_int64(st, 0), 8);
	put(d, nlen, 1);
	put_raw(d, name, nlen);
	put(d, (uint64_t)sqlite3_column_int64(st, 2), 8);
	d->x.rows++;
	return 0;
}

static int send_obj(struct snd *d, const struct obj *o)
{
	uint64_t after = o->kind == OBJ_CHANGED ? d->base : 0;
	int rc;

	d->x.objects++;
	if (o->kind == OBJ_GONE)
		return op_ino(d, ROP_GONE, o->ino);
	rc = o->kind == OBJ_FRESH && d->base ? op_ino(d, ROP_FRESH, o->ino)
					     : 0;
	if (!rc)
		rc = send_inode(d, o->ino, after);
	if (!rc)
		rc = each_row(d, SQ_BLOCKS_NEW, o->ino, after, block_row,
			      "blocks");
	if (!rc)
		rc = each_row(d, SQ_XATTRS_NEW, o->ino, after, xattr_row,
			      "xattrs");
	if (!rc)
		rc = each_row(d, SQ_DIRENTS_NEW, o->ino, after, dirent_row,
			      "entries");
	if (!after) /* all of it is new: nothing went */
		return rc;
	if (!rc)
		rc = each_row(d, SQ_BLOCKS_GONE, o->ino, after, block_gone_row,
			      "blocks");
	if (!rc)
		rc = each_row(d, SQ_XATTRS_GONE, o->ino, after, xattr_gone_row,
			      "xattrs");
	if (!rc)
		rc = each_row(d, SQ_DIRENTS_GONE, o->ino, after,
			      dirent_gone_row, "entries");
	return rc;
}

static int count_write(void *ctx, const void *buf, size_t len)
{
	struct snd *d = ctx;
	int rc = d->write(d->wctx, buf, len);

	if (!rc)
		d->x.bytes += len;
	return rc;
}

static int write_all(struct snd *d, const struct keep_snapshot *snap,
		     const struct keep_snapshot *base, int64_t commit_ns,
		     const struct keep_send_req *req)
{
	struct stream_header h = {
	    .store_format = d->s->format,
	    .block_size = d->s->block_size,
	    .name = snap->name,
	    .commit = snap->commit,
	    .commit_ns = commit_ns,
	    .created_ns = snap->created_ns,
	    .origin = snap->origin == KEEP_ORIGIN_RECEIVED ? KEEP_ORIGIN_MANUAL
							   : snap->origin,
	    .incremental = base != NULL,
	    .base_name = base ? base->name : NULL,
	    .base_commit = base ? base->commit : 0,
	    .key_wrap = d->s->encrypted ? d->s->wrap_text : NULL,
	};
	struct keep_stream_info info = {0};
	int rc;

	memcpy(h.uuid, d->s->uuid, sizeof(h.uuid));
	rc = stream_w_new(count_write, d, &d->w);
	if (rc)
		return rc;
	h.expect_bytes = d->expect;
	rc = stream_w_header(d->w, &h);
	if (rc == KEEP_E_INVAL)
		return fail(d, KEEP_CORRUPT_BKPT("a header field"),
			    "the store's identity cannot be sent (run keepfs "
			    "fsck)");
	if (rc)
		return rc;
	if (req->started) {
		memcpy(info.source, h.uuid, sizeof(info.source));
		snprintf(info.name, sizeof(info.name), "%s", snap->name);
		info.commit = snap->commit;
		info.commit_ns = commit_ns;
		info.created_ns = snap->created_ns;
		info.origin = h.origin;
		info.incremental = base != NULL;
		if (base)
			snprintf(info.base, sizeof(info.base), "%s",
				 base->name);
		info.base_commit = h.base_commit;
		info.encrypted = d->s->encrypted;
		info.block_size = h.block_size;
		info.expect_bytes = d->expect;
		req->started(req->ctx, &info);
	}
	for (size_t i = 0; !rc && i < d->nblobs; i++)
		rc = send_blob(d, d->blobs[i]);
	for (size_t i = 0; !rc && i < d->nobjs; i++)
		rc = send_obj(d, &d->objs[i]);
	if (!rc)
		rc = rows_flush(d);
	if (!rc)
		rc = stream_w_end(d->w);
	return rc;
}

int keep_send(struct keep_store *s, const struct keep_send_req *req,
	      keep_write_fn write, void *wctx, struct keep_xfer *out,
	      char *err, size_t errlen)
{
	struct snd d = {.s = s, .write = write, .wctx = wctx, .err = err,
			.errlen = errlen};
	struct keep_snapshot snap, base;
	struct keep_commit_info ci;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!s || !req || !req->snapshot || !write)
		return KEEP_E_INVAL;
	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->mu);
	d.h = db_handle(s);
	rc = db_read_begin(s); /* one view of everything (note 4) */
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		pthread_mutex_unlock(&s->commit_mu);
		return fail(&d, rc, "cannot read the store: %s",
			    keep_strerror(rc));
	}
	rc = db_snap_get(s, req->snapshot, 0, &snap);
	if (rc == ENOENT)
		rc = fail(&d, ENOENT, "no snapshot '%s'", req->snapshot);
	if (!rc && req->base) {
		rc = db_snap_get(s, req->base, 0, &base);
		if (rc == ENOENT)
			rc = fail(&d, ENOENT, "no snapshot '%s' (the base)",
				  req->base);
		/* (the same commit makes a stream with nothing in it: a
		 * second name of a commit the receiver has) */
		if (!rc && base.commit > snap.commit)
			rc = fail(&d, EINVAL,
				  "the base '%s' is newer than '%s' (commit "
				  "%" PRIu64 " against %" PRIu64 ")",
				  base.name, snap.name, base.commit,
				  snap.commit);
	}
	if (!rc) {
		rc = db_commit_get(s, snap.commit, &ci);
		if (rc == ENOENT)
			rc = fail(&d, KEEP_CORRUPT_BKPT("a snapshot's commit"),
				  "the store is damaged: snapshot '%s' names "
				  "commit %" PRIu64 ", which is missing (run "
				  "keepfs fsck)", snap.name, snap.commit);
	}
	if (!rc) {
		d.snap = snap.commit;
		d.base = req->base ? base.commit : 0;
		rc = plan(&d);
	}
	if (!rc)
		rc = write_all(&d, &snap, req->base ? &base : NULL, ci.time_ns,
			       req);
	for (int i = 0; i < SQ__COUNT; i++)
		sqlite3_finalize(d.q[i]);
	db_read_end(s);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->commit_mu);

	if (rc > 0 && rc != ENOENT && rc != EINVAL)
		fail(&d, rc, "cannot write the stream: %s", strerror(rc));
	else if (rc)
		fail(&d, rc, "%s", keep_strerror(rc));
	if (!rc && out)
		*out = d.x;
	stream_w_free(d.w);
	umap_free(&d.seen, false);
	umap_free(&d.blobset, false);
	free(d.objs);
	free(d.blobs);
	free(d.buf);
	return rc;
}
