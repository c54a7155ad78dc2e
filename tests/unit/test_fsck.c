/*
 * test_fsck.c - what keep_check reports about a damaged store, with the
 * paths each problem affects, and keep_repair.
 *
 * Every case builds the same small history (make_store), damages it
 * behind core's back with SQL, and compares the full report, line by
 * line, with what it must be: a blob whose bytes changed (checksum), one
 * that does not decode, one whose content is not its hash, a blob dozens
 * of places share (the list is capped), an entry naming a missing inode, a
 * link count, overlapping lifetimes, and a cycle of directories.  Then the
 * garbage of a commit dropped without its rows: keep_repair copies the
 * database first, drops exactly the garbage, and every view reads as
 * before.
 */
#include "keep_i.h" /* keep_hash, keep_crc32c: blobs made by hand */
#include "unit_sql.h"

#define R KEEP_ROOT_INO
#define BS KEEP_MIN_BLOCK_SIZE
#define NDUP 12

/* the store of every case; inode numbers and commits of make_store */
struct base {
	uint64_t dir, a, b, c, d, dup;
	uint64_t c2, c3, c4; /* s1 names c2 */
};

static struct base B;

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/*
 * c2: dir/a (2 blocks), b (1 block), c (a copy of dir/a: the same
 *     blobs), dir/l (a hard link of b), dup/f00..f11 (one shared block);
 *     snapshot s1 names c2
 * c3: b renamed b2, block 1 of dir/a rewritten
 * c4: d made
 */
static void make_store(const char *name)
{
	struct keep_store *s = unit_store(name, BS);
	uint8_t a[2 * BS], blk[BS];
	struct keep_attr at;
	char fn[16];

	fill(a, sizeof(a), 1);
	B.dir = unit_mkdir(s, R, "dir");
	B.a = unit_file(s, B.dir, "a", a, sizeof(a));
	fill(blk, sizeof(blk), 2);
	B.b = unit_file(s, R, "b", blk, sizeof(blk));
	B.c = unit_file(s, R, "c", a, sizeof(a));
	keep_link(s, B.b, B.dir, "l", &at);
	B.dup = unit_mkdir(s, R, "dup");
	fill(blk, sizeof(blk), 3);
	for (int i = 0; i < NDUP; i++) {
		snprintf(fn, sizeof(fn), "f%02d", i);
		unit_file(s, B.dup, fn, blk, sizeof(blk));
	}
	B.c2 = unit_commit(s);
	if (keep_snapshot_create(s, "s1", KEEP_ORIGIN_MANUAL, NULL))
		diag("snapshot s1 failed");
	keep_rename(s, R, "b", R, "b2", 0);
	fill(blk, sizeof(blk), 4);
	keep_write(s, B.a, BS, blk, BS);
	B.c3 = unit_commit(s);
	B.d = unit_file(s, R, "d", "d", 1);
	B.c4 = unit_commit(s);
	keep_store_close(s);
}

/* ---- the report, as lines ---------------------------------------------- */

struct lines {
	char *v[64];
	int n;
	int data; /* problems flagged KEEP_PROBLEM_DATA */
};

static void put_place(FILE *f, const struct keep_affect *a)
{
	switch (a->view) {
	case KEEP_AFFECT_LIVE:
		fputs(" [live ", f);
		break;
	case KEEP_AFFECT_SNAPSHOT:
		fprintf(f, " [%s@%" PRIu64 " ", a->snapshot, a->first);
		break;
	case KEEP_AFFECT_COMMITS:
		fprintf(f, " [commits %" PRIu64 "-%" PRIu64 "/%" PRIu64 " ",
			a->first, a->last, a->commits);
		break;
	default:
		fputs(" [? ", f);
	}
	if (a->inode)
		fprintf(f, "(inode %" PRIu64 ")", a->inode);
	fputs(a->path, f);
	if (a->offset >= 0)
		fprintf(f, "@%" PRId64, a->offset);
	fputc(']', f);
}

static void collect(void *ctx, const struct keep_problem *p)
{
	struct lines *l = ctx;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fputs(p->what, f);
	for (size_t i = 0; i < p->naffects; i++)
		put_place(f, &p->affects[i]);
	if (p->more)
		fprintf(f, " +%" PRIu64, p->more);
	fclose(f);
	if (p->flags & KEEP_PROBLEM_DATA)
		l->data++;
	if (l->n < 64)
		l->v[l->n++] = buf;
	else
		free(buf);
	diag("problem: %s", buf);
}

static void lines_free(struct lines *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	memset(l, 0, sizeof(*l));
}

/* fsck (with data) of store name must report exactly want[0..n), in
 * order. */
static void expect(const char *name, const char *what, const char *const *want,
		   int n)
{
	struct keep_store *s = NULL;
	struct lines l = {0};
	uint64_t problems = 0;
	int rc;

	rc = keep_store_open(unit_path(name), KEEP_OPEN_RDONLY, &s);
	if (!ok(rc == 0, "%s: open read-only", what))
		return;
	rc = keep_check(s, 1, collect, &l, &problems);
	is_int(rc, KEEP_E_CORRUPT, "%s: keep_check finds damage", what);
	is_int(problems, n, "%s: %d problems", what, n);
	for (int i = 0; i < n; i++) {
		const char *got = i < l.n ? l.v[i] : "(none)";
		if (!ok(strcmp(got, want[i]) == 0, "%s: problem %d", what, i + 1)) {
			diag("  got:  %s", got);
			diag("  want: %s", want[i]);
		}
	}
	keep_store_close(s);
	lines_free(&l);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	static char bufs[16][1024];
	static unsigned next;
	char *b = bufs[next++ % 16];
	va_list ap;

	va_start(ap, f);
	vsnprintf(b, sizeof(bufs[0]), f, ap);
	va_end(ap);
	return b;
}

static long long blob_of(const char *name, uint64_t ino, uint64_t idx,
			 uint64_t born)
{
	return unit_sql_int(name, fmt("SELECT blob FROM blocks WHERE ino = %"
				      PRIu64 " AND idx = %" PRIu64
				      " AND born = %" PRIu64,
				      ino, idx, born));
}

/* Flip one bit of byte off of a blob's stored bytes. */
static int flip(const char *name, long long blob, int off)
{
	char path[4300];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint8_t *buf = NULL;
	int n = 0, done = 0;

	snprintf(path, sizeof(path), "%s/store.db", unit_path(name));
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(db, "SELECT data FROM blobs WHERE id = ?1", -1,
			       &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, blob);
	if (sqlite3_step(st) == SQLITE_ROW) {
		n = sqlite3_column_bytes(st, 0);
		buf = malloc((size_t)n);
		if (buf && n > off)
			memcpy(buf, sqlite3_column_blob(st, 0), (size_t)n);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (!buf || n <= off)
		goto out;
	buf[off] ^= 0x10;
	if (sqlite3_prepare_v2(db, "UPDATE blobs SET data = ?2 WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, blob);
	sqlite3_bind_blob(st, 2, buf, n, SQLITE_STATIC);
	done = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1;
out:
	if (!done)
		diag("flip: %s", db ? sqlite3_errmsg(db) : "no database");
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(buf);
	return done;
}

/* ---- the cases ------------------------------------------------------------ */

static void t_clean(void)
{
	struct keep_store *s = NULL;
	struct keep_garbage g = {1, 1, 1};
	struct lines l = {0};
	uint64_t problems = 9;

	make_store("clean");
	if (keep_store_open(unit_path("clean"), KEEP_OPEN_RDONLY, &s) != 0) {
		ok(0, "open the clean store");
		return;
	}
	is_int(keep_check(s, 1, collect, &l, &problems), 0, "clean: check is 0");
	is_int(problems, 0, "clean: no problems");
	is_int(keep_garbage(s, &g), 0, "clean: keep_garbage");
	ok(g.rows == 0 && g.blobs == 0 && g.blob_bytes == 0,
	   "clean: no garbage (%" PRIu64 " rows, %" PRIu64 " blobs)", g.rows,
	   g.blobs);
	struct keep_repair_result res;
	is_int(keep_repair(s, &res), EROFS, "clean: no repair on a read-only "
					    "handle");
	keep_store_close(s);
	lines_free(&l);
}

static void t_blobs(void)
{
	long long b0, b1old, bb;

	/* the first block of dir/a and c: every view of both */
	make_store("crc");
	b0 = blob_of("crc", B.a, 0, B.c2);
	ok(b0 > 0 && b0 == blob_of("crc", B.c, 0, B.c2),
	   "dir/a and c share their first blob");
	ok(flip("crc", b0, 100), "flip a bit in blob %lld", b0);
	const char *crc[] = {
	    fmt("blob %lld: stored bytes do not match their checksum"
		" [live /c@0] [live /dir/a@0] [s1@%" PRIu64 " /c@0]"
		" [s1@%" PRIu64 " /dir/a@0]"
		" [commits %" PRIu64 "-%" PRIu64 "/2 /c@0]"
		" [commits %" PRIu64 "-%" PRIu64 "/2 /dir/a@0]",
		b0, B.c2, B.c2, B.c3, B.c4, B.c3, B.c4),
	};
	expect("crc", "checksum", crc, 1);

	/* the old second block of dir/a, still c's: dir/a only in s1 */
	make_store("decode");
	b1old = blob_of("decode", B.a, 1, B.c2);
	ok(b1old > 0 && b1old != blob_of("decode", B.a, 1, B.c3),
	   "block 1 of dir/a changed in c3");
	is_int(unit_sql("decode", fmt("UPDATE blobs SET flags = 1 WHERE id = "
				      "%lld AND flags = 0", b1old)),
	       1, "mark the raw blob %lld as compressed", b1old);
	const char *dec[] = {
	    fmt("blob %lld: does not decode [live /c@4096]"
		" [s1@%" PRIu64 " /c@4096] [s1@%" PRIu64 " /dir/a@4096]"
		" [commits %" PRIu64 "-%" PRIu64 "/2 /c@4096]",
		b1old, B.c2, B.c2, B.c3, B.c4),
	};
	expect("decode", "decode", dec, 1);

	/* b: renamed in c3, with a second name all along */
	make_store("hash");
	bb = blob_of("hash", B.b, 0, B.c2);
	is_int(unit_sql("hash", fmt("UPDATE blobs SET hash = zeroblob(32) "
				    "WHERE id = %lld", bb)),
	       1, "change the hash of blob %lld", bb);
	const char *hash[] = {
	    fmt("blob %lld: content does not match its hash [live /b2@0]"
		" [live /dir/l@0] [s1@%" PRIu64 " /b@0] [s1@%" PRIu64
		" /dir/l@0] [commits %" PRIu64 "-%" PRIu64 "/2 /b2@0]"
		" [commits %" PRIu64 "-%" PRIu64 "/2 /dir/l@0]",
		bb, B.c2, B.c2, B.c3, B.c4, B.c3, B.c4),
	};
	expect("hash", "hash", hash, 1);

	/* the block NDUP files share: 3 * NDUP places, 10 listed */
	make_store("dup");
	bb = blob_of("dup", B.dup + 1, 0, B.c2);
	ok(flip("dup", bb, 0), "flip a bit in the shared blob %lld", bb);
	const char *dup[] = {
	    fmt("blob %lld: stored bytes do not match their checksum"
		" [live /dup/f00@0] [live /dup/f01@0] [live /dup/f02@0]"
		" [live /dup/f03@0] [live /dup/f04@0] [live /dup/f05@0]"
		" [live /dup/f06@0] [live /dup/f07@0] [live /dup/f08@0]"
		" [live /dup/f09@0] +%d",
		bb, 3 * NDUP - KEEP_AFFECTS_MAX),
	};
	expect("dup", "shared", dup, 1);

	/* a block row naming a blob that is not there */
	make_store("missing");
	is_int(unit_sql("missing", fmt("UPDATE blocks SET blob = 9999 WHERE ino "
				       "= %" PRIu64 " AND idx = 0", B.d)),
	       1, "point d's block at a missing blob");
	const char *miss[] = {
	    fmt("blob reference: block 0 of inode %" PRIu64 " refers to "
		"missing blob 9999 [live /d@0] [commits %" PRIu64 "-%" PRIu64
		"/1 /d@0]",
		B.d, B.c4, B.c4),
	};
	expect("missing", "missing blob", miss, 1);
}

static void t_rows(void)
{
	long long id;

	/* d's entry names an inode that does not exist */
	make_store("ino");
	id = unit_sql_int("ino", "SELECT id FROM dirents WHERE name = "
				 "CAST('d' AS BLOB)");
	is_int(unit_sql("ino", "UPDATE dirents SET ino = 999 WHERE name = "
			       "CAST('d' AS BLOB)"),
	       1, "d's entry names inode 999");
	const char *ino[] = {
	    fmt("live tree: entry without inode: entry %lld names missing "
		"inode 999 [live /d]", id),
	    fmt("live tree: link count: inode %" PRIu64 " has nlink 1 but 0 "
		"names [live (inode %" PRIu64 ")]", B.d, B.d),
	    fmt("commit %" PRIu64 ": entry without inode: entry %lld names "
		"missing inode 999 [commits %" PRIu64 "-%" PRIu64 "/1 /d]",
		B.c4, id, B.c4, B.c4),
	    fmt("commit %" PRIu64 ": link count: inode %" PRIu64 " has nlink "
		"1 but 0 names [commits %" PRIu64 "-%" PRIu64 "/1 (inode %"
		PRIu64 ")]", B.c4, B.d, B.c4, B.c4, B.d),
	    fmt("change journal: entry of inode 999 changed in commit %" PRIu64
		" is missing from the journal [commits %" PRIu64 "-%" PRIu64
		"/1 /d]", B.c4, B.c4, B.c4),
	};
	expect("ino", "missing inode", ino, 5);

	/* b's link count */
	make_store("nlink");
	is_int(unit_sql("nlink", fmt("UPDATE inodes SET nlink = 5 WHERE ino = "
				     "%" PRIu64 " AND died IS NULL", B.b)),
	       1, "b's nlink is 5");
	const char *nlink[] = {
	    fmt("live tree: link count: inode %" PRIu64 " has nlink 5 but 2 "
		"names [live /b2] [live /dir/l]", B.b),
	    fmt("commit %" PRIu64 ": link count: inode %" PRIu64 " has nlink "
		"5 but 2 names [commits %" PRIu64 "-%" PRIu64 "/1 /b2]"
		" [commits %" PRIu64 "-%" PRIu64 "/1 /dir/l]",
		B.c4, B.b, B.c4, B.c4, B.c4, B.c4),
	};
	expect("nlink", "link count", nlink, 2);

	/* b's first inode version (c2) made to live into c3's */
	make_store("overlap");
	is_int(unit_sql_int("overlap", fmt("SELECT count(*) FROM inodes WHERE "
					   "ino = %" PRIu64, B.b)),
	       2, "b has two inode versions");
	is_int(unit_sql("overlap", fmt("UPDATE inodes SET died = %" PRIu64
				       " WHERE ino = %" PRIu64 " AND born = %"
				       PRIu64, B.c4, B.b, B.c2)),
	       1, "its first lives until c4");
	const char *over[] = {
	    fmt("inodes lifetimes: inodes %" PRIu64 " born %" PRIu64 " died %"
		PRIu64 " overlaps %" PRIu64 " [commits %" PRIu64 "-%" PRIu64
		"/1 /b2] [commits %" PRIu64 "-%" PRIu64 "/1 /dir/l]",
		B.b, B.c2, B.c4, B.c3, B.c3, B.c3, B.c3, B.c3),
	    fmt("change journal: inode %" PRIu64 " changed in commit %" PRIu64
		" is missing from the journal [commits %" PRIu64 "-%" PRIu64
		"/1 /b2] [commits %" PRIu64 "-%" PRIu64 "/1 /dir/l]",
		B.b, B.c4, B.c4, B.c4, B.c4, B.c4),
	};
	expect("overlap", "overlapping lifetimes", over, 2);

	/* dir's entry moved into dir itself: a cycle cut off from the root */
	make_store("cycle");
	is_int(unit_sql("cycle", fmt("UPDATE dirents SET parent = %" PRIu64
				     " WHERE ino = %" PRIu64, B.dir, B.dir)),
	       1, "dir's entry is in dir");
	const char *cyc[] = {
	    fmt("live tree: directory link count: directory 1 has nlink 4, "
		"expected 3 [live /]"),
	    fmt("live tree: directory link count: directory %" PRIu64 " has "
		"nlink 2, expected 3 [live (inode %" PRIu64 ")/dir]",
		B.dir, B.dir),
	    fmt("live tree: directory names: directory %" PRIu64 " has 1 "
		"names, in %" PRIu64 ", recorded parent 1 [live (inode %"
		PRIu64 ")/dir]", B.dir, B.dir, B.dir),
	    fmt("live tree: tree shape: directory %" PRIu64 " is not reachable "
		"from the root [live (inode %" PRIu64 ")/dir]", B.dir, B.dir),
	    fmt("commit %" PRIu64 ": directory link count: directory 1 has "
		"nlink 4, expected 3 [commits %" PRIu64 "-%" PRIu64 "/1 /]",
		B.c4, B.c4, B.c4),
	    fmt("commit %" PRIu64 ": directory link count: directory %" PRIu64
		" has nlink 2, expected 3 [commits %" PRIu64 "-%" PRIu64
		"/1 (inode %" PRIu64 ")/dir]", B.c4, B.dir, B.c4, B.c4, B.dir),
	    fmt("commit %" PRIu64 ": directory names: directory %" PRIu64
		" has 1 names, in %" PRIu64 ", recorded parent 1 [commits %"
		PRIu64 "-%" PRIu64 "/1 (inode %" PRIu64 ")/dir]",
		B.c4, B.dir, B.dir, B.c4, B.c4, B.dir),
	    fmt("commit %" PRIu64 ": tree shape: directory %" PRIu64 " is not "
		"reachable from the root [commits %" PRIu64 "-%" PRIu64
		"/1 (inode %" PRIu64 ")/dir]", B.c4, B.dir, B.c4, B.c4, B.dir),
	};
	expect("cycle", "cycle", cyc, 8);
}

/* ---- repair ----------------------------------------------------------------- */

/* the backup files in the store's directory */
static int backups(const char *name, char *first, size_t len)
{
	DIR *d = opendir(unit_path(name));
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "store.db.before-repair-", 23)) {
			if (!n++)
				snprintf(first, len, "%s", e->d_name);
		}
	closedir(d);
	return n;
}

/* Blobs with this id in the database file path (the copy), or -1. */
static long long copy_blobs(const char *path, long long id)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM blobs WHERE id = ?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
	}
	if (v < 0)
		diag("copy '%s': %s", path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void t_repair(void)
{
	struct keep_store *s = NULL;
	struct keep_repair_result res;
	struct keep_garbage g = {0};
	struct lines l = {0};
	uint64_t problems = 9;
	uint8_t a[2 * BS], blk[BS];
	char file[256] = "", copy[4200];
	long long rows, blobs, orphan;

	make_store("repair");
	/* what a collection that stopped after dropping commit c2 leaves
	 * (its journal moved to c3): the row versions only c2 saw, which
	 * are b's old name and inode, dir/a's old block 1 (c still uses its
	 * blob) and inode, the root's */
	is_int(unit_sql("repair", fmt("DELETE FROM snapshots;"
				      "INSERT OR IGNORE INTO changes(commit_id, ino) "
				      "SELECT %" PRIu64 ", ino FROM changes WHERE "
				      "commit_id = %" PRIu64 ";"
				      "DELETE FROM changes WHERE commit_id = %" PRIu64 ";"
				      "DELETE FROM commits WHERE id = %" PRIu64,
				      B.c3, B.c2, B.c2, B.c2)),
	       1, "drop snapshot s1 and commit c2 the way gc does");
	rows = 0;
	static const char *const tabs[] = {"inodes", "dirents", "blocks",
					   "xattrs"};
	for (int i = 0; i < 4; i++)
		rows += unit_sql_int("repair", fmt("SELECT count(*) FROM %s WHERE "
						   "born = %" PRIu64 " AND died = %"
						   PRIu64, tabs[i], B.c2, B.c3));
	ok(rows >= 5, "%lld row versions only c2 saw", rows);
	/* two sound blobs no block uses: the lower is garbage, the highest
	 * stays */
	orphan = unit_sql_int("repair", "SELECT max(id) + 1 FROM blobs");
	for (int i = 0; i < 2; i++) {
		uint8_t h[KEEP_HASH_BYTES];
		char hex[2 * KEEP_HASH_BYTES + 1];
		const char *x = i ? "y" : "x";
		keep_hash(x, 1, h);
		for (int j = 0; j < KEEP_HASH_BYTES; j++)
			snprintf(hex + 2 * j, 3, "%02x", h[j]);
		is_int(unit_sql("repair",
				fmt("INSERT INTO blobs(id, hash, size, csize, "
				    "flags, crc, data) VALUES (%lld, x'%s', 1, "
				    "1, 0, %u, CAST('%s' AS BLOB))",
				    orphan + i, hex, keep_crc32c(x, 1), x)),
		       1, "blob %lld, used by nothing", orphan + i);
	}
	blobs = 1;

	if (keep_store_open(unit_path("repair"), KEEP_OPEN_RDONLY, &s) != 0) {
		ok(0, "open");
		return;
	}
	is_int(keep_check(s, 0, collect, &l, &problems), 0,
	       "garbage is not a problem");
	is_int(keep_garbage(s, &g), 0, "keep_garbage");
	is_int(g.rows, rows, "every row only c2 saw is garbage");
	is_int(g.blobs, blobs, "every orphan blob but the highest is garbage");
	keep_store_close(s);
	is_int(backups("repair", file, sizeof(file)), 0, "no copy yet");

	s = NULL;
	if (keep_store_open(unit_path("repair"), KEEP_OPEN_WRITE, &s) != 0) {
		ok(0, "open for writing");
		return;
	}
	is_int(keep_repair(s, &res), 0, "keep_repair");
	is_int(res.dropped.rows, rows, "dropped the rows");
	is_int(res.dropped.blobs, blobs, "dropped the blobs");
	is_int(backups("repair", file, sizeof(file)), 1, "one copy taken");
	ok(strstr(res.backup, file) && strstr(res.backup, unit_path("repair")),
	   "the result names it: %s", res.backup);
	is_int(keep_garbage(s, &g), 0, "keep_garbage after");
	ok(g.rows == 0 && g.blobs == 0, "no garbage left");
	is_int(keep_check(s, 1, collect, &l, &problems), 0, "clean after");
	snprintf(copy, sizeof(copy), "%s", res.backup);
	is_int(keep_repair(s, &res), 0, "a second repair");
	ok(res.backup[0] == '\0' && res.dropped.rows == 0 &&
		   res.dropped.blobs == 0,
	   "finds nothing and copies nothing");
	is_int(backups("repair", file, sizeof(file)), 1, "still one copy");

	/* every view reads as before */
	fill(a, sizeof(a), 1);
	fill(blk, sizeof(blk), 4);
	memcpy(a + BS, blk, BS);
	ok(unit_same(s, KEEP_LIVE, B.a, a, sizeof(a)), "live dir/a");
	ok(unit_same(s, B.c3, B.a, a, sizeof(a)), "dir/a in c3");
	fill(a, sizeof(a), 1);
	ok(unit_same(s, KEEP_LIVE, B.c, a, sizeof(a)), "live c");
	fill(blk, sizeof(blk), 2);
	ok(unit_same(s, B.c3, unit_ino(s, B.c3, R, "b2"), blk, sizeof(blk)),
	   "b2 in c3");
	keep_store_close(s);

	is_int(unit_sql_int("repair", fmt("SELECT count(*) FROM blobs WHERE id "
					  "= %lld", orphan)),
	       0, "the orphan blob is gone");
	is_int(unit_sql_int("repair", fmt("SELECT count(*) FROM blobs WHERE id "
					  "= %lld", orphan + 1)),
	       1, "the highest blob stays");
	/* the copy is the store as it was */
	is_int(copy_blobs(copy, orphan), 1, "the copy holds the orphan");
	lines_free(&l);
}

int main(void)
{
	unit_begin("fsck");
	t_clean();
	t_blobs();
	t_rows();
	t_repair();
	is_int(unit_log_problems > 0, 1, "core logged the damage it met");
	unit_end();
	return tap_done();
}
