/*
 * test_holes.c - holes and sharing: sparse writes, SEEK_DATA/SEEK_HOLE,
 * all-zero blocks that are never stored, fallocate (default mode and
 * PUNCH_HOLE), files past 4 GiB, deduplication of identical blocks across
 * files, and copy_range sharing blocks.
 */
#include "unit.h"

static uint32_t bs;

static uint64_t seek(struct keep_store *s, uint64_t view, uint64_t ino,
		     uint64_t off, int whence, int *rc)
{
	uint64_t out = 0xdeadbeef;

	*rc = keep_lseek(s, view, ino, off, whence, &out);
	return out;
}

#define is_seek(s, view, ino, off, whence, want, ...)                       \
	do {                                                                \
		int rc_;                                                    \
		uint64_t got_ = seek(s, view, ino, off, whence, &rc_);      \
		if (!ok(rc_ == 0 && got_ == (uint64_t)(want), __VA_ARGS__)) \
			diag("  rc %d, got %" PRIu64 ", want %" PRIu64, rc_, \
			     got_, (uint64_t)(want));                       \
	} while (0)

static uint64_t blocks_of(struct keep_store *s, uint64_t ino)
{
	struct keep_attr a;

	return keep_getattr(s, KEEP_LIVE, ino, &a) == 0 ? a.blocks : ~0ull;
}

static void t_sparse(void)
{
	struct keep_store *s = unit_store("sparse", 0);
	uint8_t *buf, *want;
	uint64_t ino, zino, big, c1 = 0;
	struct keep_attr a;
	struct keep_stats st;
	size_t len = 12 * (size_t)bs, n = 0;
	int rc;

	bs = keep_store_block_size(s);
	len = 12 * (size_t)bs;
	buf = malloc(bs);
	want = calloc(1, len);
	unit_fill_random(buf, bs);

	/* data in blocks 4 and 9, holes elsewhere; size ends in a hole */
	ino = unit_file(s, KEEP_ROOT_INO, "sparse", NULL, 0);
	is_int(keep_write(s, ino, 4 * (uint64_t)bs, buf, bs), 0,
	       "write block 4");
	is_int(keep_write(s, ino, 9 * (uint64_t)bs, buf, bs), 0,
	       "write block 9");
	a.size = len;
	is_int(keep_setattr(s, ino, &a, KEEP_SET_SIZE, &a), 0,
	       "extend to 12 blocks");
	memcpy(want + 4 * (size_t)bs, buf, bs);
	memcpy(want + 9 * (size_t)bs, buf, bs);
	ok(unit_same(s, KEEP_LIVE, ino, want, len), "holes read as zeros");

	/* an all-zero file written with data */
	memset(buf, 0, bs);
	zino = unit_file(s, KEEP_ROOT_INO, "zeros", NULL, 0);
	for (n = 0; n < 4; n++)
		keep_write(s, zino, n * bs, buf, bs);
	is_int(keep_commit(s, &c1), 0, "commit");

	for (int pass = 0; pass < 2; pass++) {
		uint64_t v = pass ? c1 : KEEP_LIVE;
		const char *w = pass ? "view" : "live";

		is_seek(s, v, ino, 0, SEEK_DATA, 4 * (uint64_t)bs,
			"%s: SEEK_DATA from 0 finds block 4", w);
		is_seek(s, v, ino, 4 * (uint64_t)bs + 10, SEEK_DATA,
			4 * (uint64_t)bs + 10,
			"%s: SEEK_DATA inside data stays put", w);
		is_seek(s, v, ino, 0, SEEK_HOLE, 0,
			"%s: SEEK_HOLE from 0 is 0", w);
		is_seek(s, v, ino, 4 * (uint64_t)bs, SEEK_HOLE,
			5 * (uint64_t)bs, "%s: SEEK_HOLE after block 4", w);
		is_seek(s, v, ino, 5 * (uint64_t)bs, SEEK_DATA,
			9 * (uint64_t)bs, "%s: SEEK_DATA finds block 9", w);
		is_seek(s, v, ino, 9 * (uint64_t)bs + 1, SEEK_HOLE,
			10 * (uint64_t)bs, "%s: SEEK_HOLE after block 9", w);
		is_seek(s, v, ino, len - 1, SEEK_HOLE, len - 1,
			"%s: SEEK_HOLE in the trailing hole", w);
		seek(s, v, ino, 10 * (uint64_t)bs, SEEK_DATA, &rc);
		is_int(rc, ENXIO, "%s: SEEK_DATA past the last data is ENXIO",
		       w);
		seek(s, v, ino, len, SEEK_DATA, &rc);
		is_int(rc, ENXIO, "%s: SEEK_DATA at EOF is ENXIO", w);
		seek(s, v, ino, len, SEEK_HOLE, &rc);
		is_int(rc, ENXIO, "%s: SEEK_HOLE at EOF is ENXIO", w);
		seek(s, v, ino, len + 5, SEEK_HOLE, &rc);
		is_int(rc, ENXIO, "%s: SEEK_HOLE past EOF is ENXIO", w);
		seek(s, v, ino, 0, SEEK_SET, &rc);
		is_int(rc, EINVAL, "%s: another whence is EINVAL", w);
		seek(s, v, zino, 0, SEEK_DATA, &rc);
		is_int(rc, ENXIO, "%s: SEEK_DATA in an all-zero file is ENXIO",
		       w);
		is_seek(s, v, zino, 0, SEEK_HOLE, 0,
			"%s: an all-zero file is one hole", w);
	}
	is_int(blocks_of(s, ino), 2 * (uint64_t)bs / 512,
	       "attr.blocks counts the two stored blocks only");
	is_int(blocks_of(s, zino), 0, "zero blocks written are not stored");
	if (keep_stats(s, &st) == 0) {
		is_int(st.live_block_bytes, 2 * (uint64_t)bs,
		       "stats: live block bytes exclude holes and zeros");
		is_int(st.logical_bytes, len + 4 * (uint64_t)bs,
		       "stats: logical bytes are the file sizes");
		is_int(st.blob_raw_bytes, bs,
		       "stats: the two equal blocks are one blob");
	} else {
		ok(0, "keep_stats");
	}

	/* zeros written over data make a hole */
	is_int(keep_write(s, ino, 9 * (uint64_t)bs, buf, bs), 0,
	       "write zeros over block 9");
	keep_commit(s, NULL);
	is_int(blocks_of(s, ino), (uint64_t)bs / 512,
	       "the zeroed block is not stored");
	seek(s, KEEP_LIVE, ino, 5 * (uint64_t)bs, SEEK_DATA, &rc);
	is_int(rc, ENXIO, "and SEEK_DATA no longer finds it");
	is_seek(s, c1, ino, 5 * (uint64_t)bs, SEEK_DATA, 9 * (uint64_t)bs,
		"the old view still has it");

	/* fallocate default mode: extends, holes stay holes */
	is_int(keep_fallocate(s, ino, 0, len, 3 * (uint64_t)bs), 0,
	       "fallocate past EOF");
	keep_getattr(s, KEEP_LIVE, ino, &a);
	is_int(a.size, len + 3 * (uint64_t)bs, "extends the size");
	is_int(keep_fallocate(s, ino, KEEP_FALLOC_KEEP_SIZE, a.size, 5 * bs), 0,
	       "fallocate KEEP_SIZE past EOF");
	keep_getattr(s, KEEP_LIVE, ino, &a);
	is_int(a.size, len + 3 * (uint64_t)bs, "keeps the size");
	keep_commit(s, NULL);
	is_int(blocks_of(s, ino), (uint64_t)bs / 512,
	       "fallocate stores no blocks");
	is_int(keep_fallocate(s, ino, KEEP_FALLOC_PUNCH_HOLE, 0, bs), EOPNOTSUPP,
	       "PUNCH_HOLE without KEEP_SIZE is EOPNOTSUPP");
	is_int(keep_fallocate(s, ino, 1u << 7, 0, bs), EOPNOTSUPP,
	       "an unknown mode is EOPNOTSUPP");
	free(buf);
	free(want);

	/* a sparse file past 4 GiB */
	big = unit_file(s, KEEP_ROOT_INO, "big", NULL, 0);
	{
		uint64_t off = (5ull << 30) + 12345;
		char got[16] = "";
		static const char zero16[16];

		is_int(keep_write(s, big, off, "past 4 GiB", 10), 0,
		       "write at 5 GiB + 12345");
		keep_getattr(s, KEEP_LIVE, big, &a);
		is_int(a.size, off + 10, "size past 4 GiB");
		rc = keep_read(s, KEEP_LIVE, big, off, 16, got, &n);
		ok(rc == 0 && n == 10 && memcmp(got, "past 4 GiB", 10) == 0,
		   "read it back");
		memset(got, 1, sizeof(got));
		rc = keep_read(s, KEEP_LIVE, big, 1ull << 32, 16, got, &n);
		ok(rc == 0 && n == 16 && !memcmp(got, zero16, 16),
		   "the hole before it reads as zeros");
		keep_commit(s, NULL);
		is_int(blocks_of(s, big), (uint64_t)bs / 512,
		       "one block stored for a 5 GiB file");
		is_seek(s, KEEP_LIVE, big, 0, SEEK_DATA, off / bs * bs,
			"SEEK_DATA finds its block");
	}
	keep_store_close(s);
}

static void t_punch(void)
{
	struct keep_store *s = unit_store("punch", 0);
	size_t len = 4 * (size_t)bs;
	uint8_t *data = malloc(len);
	uint64_t ino, c1 = 0;
	struct keep_attr a;
	int rc;

	unit_fill_random(data, len);
	ino = unit_file(s, KEEP_ROOT_INO, "f", data, len);
	keep_commit(s, &c1);
	is_int(blocks_of(s, ino), len / 512, "four blocks stored");
	rc = keep_fallocate(s, ino, KEEP_FALLOC_PUNCH_HOLE | KEEP_FALLOC_KEEP_SIZE,
			    bs, bs);
	is_int(rc, 0, "punch block 1");
	memset(data + bs, 0, bs);
	rc = keep_fallocate(s, ino, KEEP_FALLOC_PUNCH_HOLE | KEEP_FALLOC_KEEP_SIZE,
			    2 * (uint64_t)bs + 10, 20);
	is_int(rc, 0, "punch 20 bytes inside block 2");
	memset(data + 2 * bs + 10, 0, 20);
	rc = keep_fallocate(s, ino, KEEP_FALLOC_PUNCH_HOLE | KEEP_FALLOC_KEEP_SIZE,
			    3 * (uint64_t)bs + 5, 10 * (uint64_t)bs);
	is_int(rc, 0, "punch from inside block 3 to past EOF");
	memset(data + 3 * bs + 5, 0, bs - 5);
	keep_getattr(s, KEEP_LIVE, ino, &a);
	is_int(a.size, len, "punching keeps the size");
	ok(unit_same(s, KEEP_LIVE, ino, data, len), "punched ranges read zeros");
	keep_commit(s, NULL);
	is_int(blocks_of(s, ino), 3 * (uint64_t)bs / 512,
	       "the punched whole block is freed, partial ones kept");
	is_seek(s, KEEP_LIVE, ino, 0, SEEK_HOLE, bs, "SEEK_HOLE finds the punch");
	is_seek(s, KEEP_LIVE, ino, bs, SEEK_DATA, 2 * (uint64_t)bs,
		"SEEK_DATA skips it");
	ok(unit_same(s, KEEP_LIVE, ino, data, len), "content after commit");
	s = unit_reopen(s, "punch", KEEP_OPEN_RDONLY);
	ok(unit_same(s, KEEP_LIVE, ino, data, len), "content after reopening");
	is_seek(s, c1, ino, 0, SEEK_HOLE, len,
		"the view before the punch has no hole");
	keep_store_close(s);
	free(data);
}

static void t_dedup(void)
{
	struct keep_store *s = unit_store("dedup", 0);
	size_t len = 1 << 20, i, nblocks;
	uint8_t *data = malloc(len), *other = malloc(len);
	struct keep_stats st;
	uint64_t inos[10];
	char name[16];
	int bad = 0;

	nblocks = (len + bs - 1) / bs;
	unit_fill_random(data, len);
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "copy%zu", i);
		inos[i] = unit_file(s, KEEP_ROOT_INO, name, data, len);
		bad += inos[i] == 0;
	}
	is_int(bad, 0, "write the same 1 MiB to 10 files");
	is_int(keep_commit(s, NULL), 0, "commit");
	if (keep_stats(s, &st) == 0) {
		is_int(st.files, 10, "stats: 10 files");
		is_int(st.logical_bytes, 10 * len, "stats: 10 MiB logical");
		is_int(st.blobs, nblocks, "stats: the blocks are stored once");
		is_int(st.blob_raw_bytes, len, "stats: blob bytes count 1 MiB");
		is_int(st.live_block_bytes, 10 * len,
		       "stats: live block bytes 10 MiB");
		is_int(st.history_block_bytes, 10 * len,
		       "stats: history block bytes 10 MiB");
		ok(st.blob_stored_bytes <= st.blob_raw_bytes + 64 * nblocks,
		   "stats: stored bytes about the raw bytes (%" PRIu64 ")",
		   st.blob_stored_bytes);
	} else {
		ok(0, "keep_stats");
	}

	/* new content in one file: history grows, live does not */
	unit_fill_random(other, len);
	is_int(keep_write(s, inos[3], 0, other, len), 0,
	       "overwrite one copy with new content");
	keep_commit(s, NULL);
	if (keep_stats(s, &st) == 0) {
		is_int(st.blobs, 2 * nblocks, "stats: new blocks are new blobs");
		is_int(st.blob_raw_bytes, 2 * len, "stats: 2 MiB of blobs");
		is_int(st.live_block_bytes, 10 * len,
		       "stats: live block bytes still 10 MiB");
		is_int(st.history_block_bytes, 11 * len,
		       "stats: history block bytes 11 MiB");
	}

	/* back to the old content: no new blob */
	is_int(keep_write(s, inos[3], 0, data, len), 0,
	       "write the original content back");
	keep_commit(s, NULL);
	if (keep_stats(s, &st) == 0)
		is_int(st.blobs, 2 * nblocks,
		       "stats: old content is found again, no new blob");

	/* identical blocks within one file */
	for (i = 0; i < len; i += bs)
		memcpy(other + i, data, bs);
	unit_file(s, KEEP_ROOT_INO, "repeat", other, len);
	keep_commit(s, NULL);
	if (keep_stats(s, &st) == 0)
		is_int(st.blobs, 2 * nblocks,
		       "stats: a file repeating a known block adds no blob");

	/* copy_range shares whole blocks */
	{
		uint64_t dst = unit_file(s, KEEP_ROOT_INO, "clone", NULL, 0);
		uint64_t copied = 0;
		uint64_t before;

		keep_stats(s, &st);
		before = st.blobs;
		is_int(keep_copy_range(s, inos[0], 0, dst, 0, len, &copied), 0,
		       "copy_range a whole file");
		is_int(copied, len, "copies all of it");
		ok(unit_same(s, KEEP_LIVE, dst, data, len), "the clone reads back");
		is_int(keep_copy_range(s, inos[0], len - 10, dst, len, 100,
				       &copied),
		       0, "copy_range across the source's EOF");
		is_int(copied, 10, "copies up to the source's EOF");
		is_int(keep_copy_range(s, inos[0], 0, inos[0], bs, 2 * bs,
				       &copied),
		       EINVAL, "overlapping ranges in one file are EINVAL");
		keep_commit(s, NULL);
		keep_stats(s, &st);
		ok(st.blobs <= before + 1,
		   "the clone adds at most its partial tail block as a blob");
	}
	{
		uint64_t problems = 99;

		is_int(keep_check(s, 1, NULL, NULL, &problems), 0,
		       "keep_check with data is clean");
	}
	keep_store_close(s);
	free(data);
	free(other);
}

int main(void)
{
	unit_begin("holes");
	unit_seed(7);
	t_sparse();
	t_punch();
	t_dedup();
	is_int(unit_log_problems, 0, "no errors or warnings were logged");
	unit_end();
	return tap_done();
}
