/*
 * test_stream.c - the record format of send streams (core/stream.c, an
 * internal interface, hence keep_i.h): what the writer writes the reader
 * gives back field for field, with the end record's counts; a stream cut
 * at any byte, or with any bit flipped, is refused as truncated or
 * damaged with a message naming a record, never read as valid; records
 * reordered, repeated, after the end, of an unknown type or of an absurd
 * length are refused, each with its own message, even when their checks
 * are right (the test builds such streams with its own encoder); names
 * that are not snapshot names are refused by both sides.
 *
 * With --write-corpus DIR it writes a few valid streams into DIR as seeds
 * for the fuzzer (tests/fuzz) instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keep_i.h"
#include "tap.h"

#define UUID "0f3c2a9e-5b1d-4c7e-8a26-93d4e1f07b58"
#define WRAP "v1:1:3:268435456:00112233445566778899aabbccddeeff:0102:0304"

/* ---- memory as the stream's two ends ------------------------------------ */

struct mem {
	uint8_t *p;
	size_t len, cap;
	size_t fail_after; /* 0: never; else the write that passes it fails */
};

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;

	if (m->fail_after && m->len + len > m->fail_after)
		return ENOSPC;
	if (m->len + len > m->cap) {
		size_t cap = (m->len + len) * 2;
		uint8_t *p = realloc(m->p, cap);
		if (!p)
			return ENOMEM;
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

struct src {
	const uint8_t *p;
	size_t len, pos;
	size_t step;	 /* at most this many bytes a read (0: any) */
	size_t fail_at;	 /* 0: never; else a read at this offset fails */
};

static int src_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct src *s = ctx;
	size_t n = s->len - s->pos;

	if (s->fail_at && s->pos >= s->fail_at)
		return EIO;
	if (n > len)
		n = len;
	if (s->step && n > s->step)
		n = s->step;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	*got = n;
	return 0;
}

/* Read a stream to its end.  Returns the first error (its message in
 * msg) or 0 after the end record; *n counts the records read. */
static int read_all(const uint8_t *p, size_t len, size_t step, int *n,
		    char *msg, size_t msglen)
{
	struct src s = {.p = p, .len = len, .step = step};
	struct stream_r *r = NULL;
	struct stream_rec rec;
	int rc;

	*n = 0;
	msg[0] = '\0';
	rc = stream_r_new(src_read, &s, &r);
	while (rc == 0) {
		rc = stream_r_next(r, &rec);
		if (rc)
			break;
		++*n;
		if (rec.type == STREAM_END)
			break;
	}
	if (r)
		snprintf(msg, msglen, "%s", stream_r_error(r));
	stream_r_free(r);
	return rc;
}

/* ---- a small stream ------------------------------------------------------ */

static uint8_t blob_data[3][300];
/* rows i of a small stream are its first 15 + i bytes */
static const char rows_text[] = "rows of a batch: some bytes the next layer "
				"will define";

static void blob_of(int i, uint32_t format, struct stream_blob *b)
{
	size_t n = 100 + 50 * (size_t)i;

	for (size_t j = 0; j < n; j++)
		blob_data[i][j] = (uint8_t)(i * 31 + j * 7);
	memset(b, 0, sizeof(*b));
	b->id = 10 + (uint64_t)i;
	keep_hash(blob_data[i], n, b->hash);
	b->csize = (uint32_t)n;
	b->flags = i == 1 ? BLOB_ZSTD : 0;
	b->size = i == 1 ? 4096 : (uint32_t)n;
	if (format != KEEP_FORMAT_PLAIN) {
		b->flags |= BLOB_SEALED;
		if (i != 1)
			b->size = (uint32_t)n - CRYPT_OVERHEAD;
	}
	b->crc = keep_crc32c(blob_data[i], n);
	b->data = blob_data[i];
}

static void header_of(struct stream_header *h, bool incremental,
		      bool encrypted)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->uuid, UUID, sizeof(h->uuid));
	h->store_format = encrypted ? KEEP_FORMAT_VERSION : KEEP_FORMAT_PLAIN;
	h->block_size = 65536;
	h->name = "2026-11-24T08:35:00Z";
	h->commit = 4711;
	h->commit_ns = 1795000000023456789;
	h->created_ns = 1795000000123456789;
	h->origin = KEEP_ORIGIN_AUTO;
	h->expect_bytes = 123456;
	h->incremental = incremental;
	if (incremental) {
		h->base_name = "nightly";
		h->base_commit = 4000;
	}
	h->key_wrap = encrypted ? WRAP : NULL;
}

/* header, blobs, rows, end into m; 0 or the first error */
static int write_small(struct mem *m, bool incremental, bool encrypted,
		       int nblobs, int nrows)
{
	struct stream_header h;
	struct stream_w *w = NULL;
	struct stream_blob b;
	int rc;

	header_of(&h, incremental, encrypted);
	rc = stream_w_new(mem_write, m, &w);
	if (rc == 0)
		rc = stream_w_header(w, &h);
	for (int i = 0; rc == 0 && i < nblobs; i++) {
		blob_of(i % 3, h.store_format, &b);
		rc = stream_w_blob(w, &b);
		if (rc == 0 && i < nrows)
			rc = stream_w_rows(w, rows_text, 15 + (size_t)i);
	}
	for (int i = nblobs; rc == 0 && i < nrows; i++)
		rc = stream_w_rows(w, rows_text, 15 + (size_t)i);
	if (rc == 0)
		rc = stream_w_end(w);
	stream_w_free(w);
	return rc;
}

/* ---- an encoder of the test's own, for well-chained bad streams ---------- */

struct craft {
	struct mem m;
	uint8_t prev[STREAM_CHECK_BYTES];
};

static void craft_rec(struct craft *c, uint32_t type, uint64_t len_field,
		      const void *payload, size_t len)
{
	uint8_t frame[12], check[32];
	struct keep_hash_state st;

	for (int i = 0; i < 4; i++)
		frame[i] = (uint8_t)(type >> (8 * i));
	for (int i = 0; i < 8; i++)
		frame[4 + i] = (uint8_t)(len_field >> (8 * i));
	keep_hash_init(&st);
	keep_hash_update(&st, c->prev, 32);
	keep_hash_update(&st, frame, 12);
	keep_hash_update(&st, payload, len);
	keep_hash_final(&st, check);
	mem_write(&c->m, frame, 12);
	mem_write(&c->m, payload, len);
	mem_write(&c->m, check, 32);
	memcpy(c->prev, check, 32);
}

struct hp {
	uint32_t version, format, block_size;
	const char *uuid;
	const char *name;
	size_t name_len;
	uint64_t commit;
	uint8_t origin;
	uint8_t base;
	const char *base_name;
	size_t base_len;
	uint64_t base_commit;
	const char *wrap;
	size_t wrap_len;
	size_t extra; /* trailing bytes */
	int cut;      /* > 0: drop this many bytes at the end */
};

static void put(uint8_t *buf, size_t *n, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		buf[(*n)++] = (uint8_t)(v >> (8 * i));
}

static size_t hp_encode(const struct hp *h, uint8_t *buf)
{
	size_t n = 16;

	memset(buf, 0, 16);
	memcpy(buf, "KEEPFS-STREAM", 13);
	put(buf, &n, h->version, 4);
	memcpy(buf + n, h->uuid, 36);
	n += 36;
	put(buf, &n, h->format, 4);
	put(buf, &n, h->block_size, 4);
	put(buf, &n, h->name_len, 2);
	memcpy(buf + n, h->name, h->name_len);
	n += h->name_len;
	put(buf, &n, h->commit, 8);
	put(buf, &n, 41, 8); /* the commit's time */
	put(buf, &n, 42, 8); /* the snapshot's */
	put(buf, &n, h->origin, 1);
	put(buf, &n, 0, 8); /* expected bytes */
	put(buf, &n, h->base, 1);
	if (h->base) {
		put(buf, &n, h->base_len, 2);
		if (h->base_len)
			memcpy(buf + n, h->base_name, h->base_len);
		n += h->base_len;
		put(buf, &n, h->base_commit, 8);
	}
	put(buf, &n, h->wrap_len, 2);
	memcpy(buf + n, h->wrap, h->wrap_len);
	n += h->wrap_len;
	memset(buf + n, 0, h->extra);
	n += h->extra;
	return n - (size_t)h->cut;
}

static struct hp hp_plain(void)
{
	return (struct hp){.version = 1,
			   .format = 1,
			   .block_size = 65536,
			   .uuid = UUID,
			   .name = "snap",
			   .name_len = 4,
			   .commit = 9,
			   .wrap = ""};
}

static void craft_header(struct craft *c, const struct hp *h)
{
	uint8_t buf[8192];
	size_t n = hp_encode(h, buf);

	craft_rec(c, STREAM_HEADER, n, buf, n);
}

static void craft_end(struct craft *c, uint64_t headers, uint64_t blobs,
		      uint64_t rows, uint64_t bytes)
{
	uint8_t buf[32];
	size_t n = 0;

	put(buf, &n, headers, 8);
	put(buf, &n, blobs, 8);
	put(buf, &n, rows, 8);
	put(buf, &n, bytes, 8);
	craft_rec(c, STREAM_END, 32, buf, 32);
}

/* the blob payload of blob_of(i), possibly with a wrong crc */
static size_t craft_blob_payload(int i, uint32_t crc_xor, uint8_t *buf)
{
	struct stream_blob b;
	size_t n = 0;

	blob_of(i, KEEP_FORMAT_PLAIN, &b);
	put(buf, &n, b.id, 8);
	memcpy(buf + n, b.hash, 32);
	n += 32;
	put(buf, &n, b.size, 4);
	put(buf, &n, b.csize, 4);
	put(buf, &n, b.flags, 4);
	put(buf, &n, b.crc ^ crc_xor, 4);
	memcpy(buf + n, b.data, b.csize);
	return n + b.csize;
}

/* Read c's stream; ok when it is refused with KEEP_E_CORRUPT and a
 * message containing want. */
static void refused(struct craft *c, const char *want, const char *what)
{
	char msg[400];
	int n, rc = read_all(c->m.p, c->m.len, 0, &n, msg, sizeof(msg));

	ok(rc == KEEP_E_CORRUPT && strstr(msg, want), "%s: %s", what, msg);
	if (rc != KEEP_E_CORRUPT || !strstr(msg, want))
		diag("rc %d, wanted a message with \"%s\"", rc, want);
	free(c->m.p);
	memset(c, 0, sizeof(*c));
}

/* ---- the tests ------------------------------------------------------------
 */

static void t_hash_pieces(void)
{
	uint8_t buf[1000], whole[32], parts[32];
	struct keep_hash_state st;

	for (int i = 0; i < 1000; i++)
		buf[i] = (uint8_t)(i * 13);
	keep_hash(buf, sizeof(buf), whole);
	keep_hash_init(&st);
	keep_hash_update(&st, buf, 1);
	keep_hash_update(&st, buf + 1, 600);
	keep_hash_update(&st, buf + 601, 399);
	keep_hash_final(&st, parts);
	ok(!memcmp(whole, parts, 32),
	   "a hash in pieces is the hash of the whole");
}

static void t_round_trip(bool incremental, bool encrypted)
{
	struct mem m = {0};
	struct src s;
	struct stream_r *r = NULL;
	struct stream_rec rec;
	struct stream_header want;
	struct stream_blob b;
	int rc, bad = 0;
	const char *what =
	    incremental ? (encrypted ? "incremental, encrypted" : "incremental")
			: (encrypted ? "full, encrypted" : "full");

	header_of(&want, incremental, encrypted);
	rc = write_small(&m, incremental, encrypted, 5, 2);
	is_int(rc, 0,
	       "%s: a stream of a header, 5 blobs, 2 rows and an end is "
	       "written (%zu bytes)",
	       what, m.len);

	s = (struct src){.p = m.p, .len = m.len, .step = 7};
	stream_r_new(src_read, &s, &r);
	rc = stream_r_next(r, &rec);
	ok(rc == 0 && rec.type == STREAM_HEADER && rec.index == 1 &&
		   rec.offset == 0,
	   "%s: record 1 is the header, at byte 0", what);
	const struct stream_header *h = &rec.header;
	ok(h->version == STREAM_VERSION && !strcmp(h->uuid, UUID) &&
		   h->store_format == want.store_format &&
		   h->block_size == want.block_size &&
		   !strcmp(h->name, want.name) && h->commit == want.commit &&
		   h->created_ns == want.created_ns &&
		   h->commit_ns == want.commit_ns &&
		   h->origin == want.origin &&
		   h->expect_bytes == want.expect_bytes &&
		   h->incremental == incremental,
	   "%s: the header's fields come back", what);
	if (incremental)
		ok(!strcmp(h->base_name, "nightly") && h->base_commit == 4000,
		   "%s: the base comes back", what);
	if (encrypted)
		ok(h->key_wrap && !strcmp(h->key_wrap, WRAP),
		   "%s: the key wrap comes back", what);
	else
		ok(h->key_wrap == NULL, "%s: no key wrap", what);

	uint64_t off = 0;
	for (int i = 0; i < 5; i++) {
		off = rec.offset;
		rc = stream_r_next(r, &rec);
		blob_of(i % 3, want.store_format, &b);
		if (rc || rec.type != STREAM_BLOB || rec.offset <= off ||
		    rec.blob.id != b.id || memcmp(rec.blob.hash, b.hash, 32) ||
		    rec.blob.size != b.size || rec.blob.csize != b.csize ||
		    rec.blob.flags != b.flags || rec.blob.crc != b.crc ||
		    memcmp(rec.blob.data, b.data, b.csize))
			bad++;
		if (i < 2) {
			rc = stream_r_next(r, &rec);
			if (rc || rec.type != STREAM_ROWS ||
			    rec.rows.len != 15 + (size_t)i ||
			    memcmp(rec.rows.data, rows_text, rec.rows.len))
				bad++;
		}
	}
	is_int(bad, 0, "%s: blobs and rows come back in order, field for field",
	       what);
	rc = stream_r_next(r, &rec);
	ok(rc == 0 && rec.type == STREAM_END && rec.index == 9 &&
		   rec.end.headers == 1 && rec.end.blobs == 5 &&
		   rec.end.rows == 2,
	   "%s: record 9 is the end: 1 header, 5 blobs, 2 rows", what);
	/* payload bytes: everything but frames, checks and the end's 32 */
	is_int(rec.end.bytes, m.len - 9 * (12 + 32) - 32,
	       "%s: the end counts the payload bytes", what);
	is_int(stream_r_next(r, &rec), KEEP_E_INVAL,
	       "%s: nothing is read after the end", what);
	stream_r_free(r);
	free(m.p);
}

static void t_big_rows(void)
{
	size_t n = (5 << 20) + 123;
	uint8_t *rows = malloc(n);
	struct mem m = {0};
	struct stream_header h;
	struct stream_w *w;
	struct stream_r *r;
	struct stream_rec rec;
	struct src s;

	for (size_t i = 0; i < n; i++)
		rows[i] = (uint8_t)(i ^ (i >> 9));
	header_of(&h, false, false);
	stream_w_new(mem_write, &m, &w);
	ok(stream_w_header(w, &h) == 0 && stream_w_rows(w, rows, n) == 0 &&
		   stream_w_rows(w, NULL, 0) == 0 && stream_w_end(w) == 0,
	   "rows of 5 MiB and empty rows are written");
	stream_w_free(w);
	s = (struct src){.p = m.p, .len = m.len};
	stream_r_new(src_read, &s, &r);
	stream_r_next(r, &rec);
	ok(stream_r_next(r, &rec) == 0 && rec.rows.len == n &&
		   !memcmp(rec.rows.data, rows, n),
	   "and read back whole");
	ok(stream_r_next(r, &rec) == 0 && rec.rows.len == 0 &&
		   stream_r_next(r, &rec) == 0 && rec.type == STREAM_END &&
		   rec.end.rows == 2,
	   "the empty one too, then the end");
	stream_r_free(r);
	free(m.p);
	free(rows);
}

/* Every prefix of a small stream is refused, as truncated. */
static void t_truncated(void)
{
	struct mem m = {0};
	char msg[400], first[400] = "", last[400] = "";
	int n, corrupt = 0, truncated = 0, crashed_or_ok = 0;

	write_small(&m, true, true, 3, 2);
	for (size_t cut = 0; cut < m.len; cut++) {
		int rc = read_all(m.p, cut, cut % 5, &n, msg, sizeof(msg));
		corrupt += rc == KEEP_E_CORRUPT;
		crashed_or_ok += rc == 0;
		if (strstr(msg, "stream ends without its end record "
				"(truncated?)") &&
		    strstr(msg, "record "))
			truncated++;
		if (cut == m.len / 2)
			snprintf(first, sizeof(first), "%s", msg);
		if (cut == m.len - 1)
			snprintf(last, sizeof(last), "%s", msg);
	}
	is_int(corrupt, m.len, "every one of %zu cuts is refused as damage",
	       m.len);
	is_int(crashed_or_ok, 0, "none reads as a whole stream");
	is_int(truncated, m.len - 1,
	       "every cut but the one before the first byte says truncated");
	read_all(m.p, 0, 0, &n, msg, sizeof(msg));
	ok(strstr(msg, "not a keepfs stream") != NULL,
	   "no bytes at all: %s", msg);
	diag("halfway: %s", first);
	diag("one byte short: %s", last);
	/* a cut at a record boundary: "after record N" */
	size_t boundary = 0;
	{
		int n2;
		/* the header record's length plus frame and check */
		uint64_t hl = 0;
		for (int i = 0; i < 8; i++)
			hl |= (uint64_t)m.p[4 + i] << (8 * i);
		boundary = 12 + (size_t)hl + 32;
		read_all(m.p, boundary, 0, &n2, msg, sizeof(msg));
		ok(n2 == 1 &&
		       strstr(msg, "(truncated?) after record 1 at byte"),
		   "a cut after the header: %s", msg);
	}
	free(m.p);
}

/* Every single-bit flip of a small stream is caught. */
static void t_flipped(void)
{
	struct mem m = {0};
	char msg[400];
	int n, caught = 0, named = 0, checks = 0, tries = 0;

	write_small(&m, true, true, 3, 2);
	for (size_t off = 0; off < m.len; off++)
		for (int bit = 0; bit < 8; bit++) {
			m.p[off] ^= (uint8_t)(1u << bit);
			int rc = read_all(m.p, m.len, 0, &n, msg, sizeof(msg));
			m.p[off] ^= (uint8_t)(1u << bit);
			tries++;
			caught += rc == KEEP_E_CORRUPT;
			named += strstr(msg, "record ") != NULL;
			checks += strstr(msg, "check does not match") != NULL;
			if (rc != KEEP_E_CORRUPT || !strstr(msg, "record "))
				diag("byte %zu bit %d: rc %d: %s", off, bit, rc,
				     msg);
		}
	is_int(caught, tries,
	       "all %d single-bit flips of %zu bytes are refused as damage",
	       tries, m.len);
	is_int(named, tries, "and each message names a record");
	diag("%d of them by a check that does not match", checks);
	free(m.p);
}

static void t_order(void)
{
	struct craft c = {0};
	struct mem m = {0};
	uint8_t blob[400];
	size_t bl = craft_blob_payload(0, 0, blob);
	struct hp h = hp_plain();
	char msg[400];
	int n;

	/* the test's encoder agrees with the writer */
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, bl, blob, bl);
	craft_rec(&c, STREAM_ROWS, 3, "abc", 3);
	craft_end(&c, 1, 1, 1, 0);
	/* (bytes were left 0 on purpose) */
	refused(&c, "record 4 (end) at byte",
		"an end record with wrong counts");
	craft_header(&c, &h);
	craft_end(&c, 1, 1, 0, 0);
	refused(&c, "counts 1 header, 1 blob and 0 rows records; the stream "
		    "has 1, 0 and 0",
		"an end that counts a blob that is not there");
	craft_header(&c, &h);
	size_t hl = c.m.len - 44;
	craft_end(&c, 1, 0, 0, hl);
	int rc = read_all(c.m.p, c.m.len, 0, &n, msg, sizeof(msg));
	is_int(rc, 0,
	       "the test's own encoder makes a valid stream (%d records)", n);
	free(c.m.p);
	memset(&c, 0, sizeof(c));

	/* reordered bytes: two blob records swapped */
	write_small(&m, false, false, 2, 0);
	{
		/* records: header, blob 10 (100 bytes), blob 11 (150), end */
		size_t h1 = 12 + (size_t)m.p[4] + ((size_t)m.p[5] << 8) + 32;
		size_t b1 = 12 + 56 + 100 + 32, b2 = 12 + 56 + 150 + 32;
		uint8_t *sw = malloc(m.len);
		memcpy(sw, m.p, h1);
		memcpy(sw + h1, m.p + h1 + b1, b2);
		memcpy(sw + h1 + b2, m.p + h1, b1);
		memcpy(sw + h1 + b1 + b2, m.p + h1 + b1 + b2,
		       m.len - h1 - b1 - b2);
		is_int(read_all(sw, m.len, 0, &n, msg, sizeof(msg)),
		       KEEP_E_CORRUPT, "two records swapped are refused: %s",
		       msg);
		ok(strstr(msg, "record 2 (blob)") &&
			   strstr(msg, "check does not match"),
		   "at the first one moved");
		/* a record dropped */
		memcpy(sw, m.p, h1);
		memcpy(sw + h1, m.p + h1 + b1, m.len - h1 - b1);
		is_int(read_all(sw, m.len - b1, 0, &n, msg, sizeof(msg)),
		       KEEP_E_CORRUPT, "a record dropped is refused: %s", msg);
		/* the header repeated, byte for byte */
		uint8_t *dup = malloc(m.len + h1);
		memcpy(dup, m.p, h1);
		memcpy(dup + h1, m.p, m.len);
		is_int(read_all(dup, m.len + h1, 0, &n, msg, sizeof(msg)),
		       KEEP_E_CORRUPT, "a header copied twice is refused: %s",
		       msg);
		/* a second stream spliced on */
		uint8_t *two = malloc(2 * m.len);
		memcpy(two, m.p, m.len);
		memcpy(two + m.len, m.p, m.len);
		is_int(read_all(two, 2 * m.len, 0, &n, msg, sizeof(msg)),
		       KEEP_E_CORRUPT, "two streams back to back: %s", msg);
		ok(strstr(msg, "data after the end record") &&
			   strstr(msg, "record 5 at byte"),
		   "refused after the first one's end");
		free(two);
		free(dup);
		free(sw);
	}
	free(m.p);

	/* well-chained, but out of order */
	craft_header(&c, &h);
	craft_header(&c, &h);
	refused(&c, "record 2 (header) at byte", "a second header");
	craft_header(&c, &h);
	craft_end(&c, 1, 0, 0, c.m.len - 44);
	craft_rec(&c, STREAM_ROWS, 3, "abc", 3);
	refused(&c, "record 3 at byte", "a record after the end");
	craft_rec(&c, STREAM_ROWS, 3, "abc", 3);
	refused(&c, "not a keepfs stream", "rows before any header");
	craft_rec(&c, STREAM_BLOB, bl, blob, bl);
	refused(&c, "not a keepfs stream", "a blob before any header");
	craft_header(&c, &h);
	craft_rec(&c, 9, 3, "abc", 3);
	refused(&c, "record 2 at byte", "an unknown type");
	craft_header(&c, &h);
	craft_rec(&c, 9, 3, "abc", 3);
	refused(&c, "unknown record type 9", "an unknown type, named");
	craft_header(&c, &h);
	craft_rec(&c, STREAM_ROWS, (uint64_t)1 << 63, "abc", 3);
	refused(&c, "record 2 (rows) at byte", "a length of 2^63");
	craft_header(&c, &h);
	craft_rec(&c, STREAM_ROWS, (uint64_t)1 << 63, "abc", 3);
	refused(&c, "a payload of 9223372036854775808 bytes, over the rows",
		"a length of 2^63, named");
	craft_header(&c, &h);
	craft_rec(&c, STREAM_ROWS, STREAM_ROWS_MAX + 1, "abc", 3);
	refused(&c, "over the rows record bound of 67108864",
		"rows one byte over their bound");
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, STREAM_BLOB_FIXED + STREAM_BLOB_DATA_MAX + 1,
		  blob, bl);
	refused(&c, "over the blob record bound",
		"a blob one byte over its bound");
	craft_header(&c, &h);
	craft_rec(&c, STREAM_END, 65, blob, 65);
	refused(&c, "over the end record bound of 64", "an end over its bound");
	craft_header(&c, &h);
	craft_rec(&c, STREAM_ROWS, 64 << 20, "abc", 3);
	refused(&c, "(truncated?) inside record 2 (rows)",
		"64 MiB of rows announced, 3 bytes there");
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, bl, blob, bl);
	c.m.len -= 32; /* no check */
	refused(&c, "inside record 2 (blob)", "a record without its check");
}

static void t_foreign(void)
{
	struct craft c = {0};
	struct hp h = hp_plain();
	const char *text = "#!/bin/sh\necho this is not a stream\n";

	mem_write(&c.m, text, strlen(text));
	refused(&c, "not a keepfs stream", "a shell script");
	mem_write(&c.m, "\x28\xb5\x2f\xfd", 4);
	refused(&c, "not a keepfs stream", "four bytes of a zstd frame");
	h.version = 2;
	craft_header(&c, &h);
	refused(&c, "stream of a newer format 2", "a stream of format 2");
	h.version = 0;
	craft_header(&c, &h);
	refused(&c, "record 1 (header) at byte 0: format version 0",
		"format 0");
	h = hp_plain();
	craft_header(&c, &h);
	c.m.p[12] = 'k'; /* "kEEPFS-STREAM", with its check right */
	memset(c.prev, 0, 32);
	{
		struct mem keep = c.m;
		memset(&c.m, 0, sizeof(c.m));
		/* re-chain the changed header */
		craft_rec(&c, STREAM_HEADER, keep.len - 44, keep.p + 12,
			  keep.len - 44);
		free(keep.p);
	}
	refused(&c, "not a keepfs stream",
		"a well-chained header, magic wrong");
}

static void t_header_fields(void)
{
	struct craft c = {0};
	struct hp h;
	char name256[256];

	memset(name256, 'x', sizeof(name256));
	h = hp_plain();
	h.extra = 1;
	craft_header(&c, &h);
	refused(&c, "1 byte(s) left over after the header", "a byte left over");
	h = hp_plain();
	h.cut = 1;
	craft_header(&c, &h);
	refused(&c, "runs past the end of the header", "a header cut short");
	h = hp_plain();
	h.name_len = 200; /* points past the payload */
	h.name = name256;
	h.cut = 190;
	craft_header(&c, &h);
	refused(&c, "runs past the end", "a name length past the payload");
	h = hp_plain();
	h.name = "a/b";
	h.name_len = 3;
	craft_header(&c, &h);
	refused(&c, "the snapshot's name holds a '/' or NUL byte",
		"a name with '/'");
	h.name = "a\0b";
	craft_header(&c, &h);
	refused(&c, "the snapshot's name holds a '/' or NUL byte",
		"a name with NUL");
	h.name_len = 0;
	craft_header(&c, &h);
	refused(&c, "the snapshot's name is empty", "an empty name");
	h.name = name256;
	h.name_len = 256;
	craft_header(&c, &h);
	refused(&c, "the snapshot's name is longer than 255 bytes",
		"a name of 256 bytes");
	h.name_len = 255;
	craft_header(&c, &h);
	craft_end(&c, 1, 0, 0, c.m.len - 44);
	{
		char msg[400];
		int n;
		is_int(read_all(c.m.p, c.m.len, 0, &n, msg, sizeof(msg)), 0,
		       "a name of 255 bytes is a name");
		free(c.m.p);
		memset(&c, 0, sizeof(c));
	}
	h = hp_plain();
	h.base = 1;
	h.base_name = "a/b";
	h.base_len = 3;
	h.base_commit = 2;
	craft_header(&c, &h);
	refused(&c, "the base's name holds a '/'", "a base name with '/'");
	h.base_len = 0;
	craft_header(&c, &h);
	refused(&c, "the base's name is empty", "an empty base name");
	h.base_name = "old";
	h.base_len = 3;
	h.base_commit = 10;
	craft_header(&c, &h);
	refused(&c, "is newer than", "a base newer than the snapshot");
	h = hp_plain();
	h.base = 2;
	craft_header(&c, &h);
	refused(&c, "the base's flag is 2", "a base flag of 2");
	h = hp_plain();
	h.uuid = "0f3c2a9e-5b1d-4c7e-8a26-93d4e1f07b5G";
	craft_header(&c, &h);
	refused(&c, "uuid is not a uuid", "a uuid that is not one");
	h = hp_plain();
	h.format = 3;
	craft_header(&c, &h);
	refused(&c, "store format is not one this keepfs knows",
		"a store of format 3");
	h = hp_plain();
	h.block_size = 65535;
	craft_header(&c, &h);
	refused(&c, "block size is impossible", "a block size of 65535");
	h = hp_plain();
	h.commit = 0;
	craft_header(&c, &h);
	refused(&c, "commit is 0", "commit 0");
	h = hp_plain();
	h.wrap = WRAP;
	h.wrap_len = strlen(WRAP);
	craft_header(&c, &h);
	refused(&c, "a plain store's stream carries a key wrap",
		"a key wrap for a plain store");
	h.format = 2;
	h.wrap_len = STREAM_WRAP_MAX + 1;
	{
		static char big[STREAM_WRAP_MAX + 1];
		memset(big, 'w', sizeof(big));
		h.wrap = big;
		craft_header(&c, &h);
		refused(&c, "the key wrap is 1025 bytes",
			"a key wrap too long");
	}
	h.wrap = "a\0b";
	h.wrap_len = 3;
	craft_header(&c, &h);
	refused(&c, "the key wrap holds a NUL byte", "a key wrap with NUL");
}

static void t_blob_fields(void)
{
	struct craft c = {0};
	struct hp h = hp_plain();
	uint8_t blob[400];
	size_t bl;

	bl = craft_blob_payload(2, 1, blob);
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, bl, blob, bl);
	refused(&c, "blob 12's bytes do not match their checksum",
		"a blob whose crc does not match");
	bl = craft_blob_payload(2, 0, blob);
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, bl - 1, blob, bl - 1);
	refused(&c, "blob 12 says 200 stored bytes but carries 199",
		"a blob shorter than its stored size");
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, 50, blob, 50);
	refused(&c, "a blob record shorter than its fields",
		"a blob record of 50 bytes");
	blob[48] |= BLOB_SEALED; /* flags */
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, bl, blob, bl);
	refused(&c, "blob 12 is sealed in a plain store's stream",
		"a sealed blob in a plain store's stream");
	blob[48] = 0x80;
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, bl, blob, bl);
	refused(&c, "has flags this keepfs does not know", "unknown flags");

	/* an encrypted store's stream: a sealed blob of 10 stored bytes */
	h.format = 2;
	bl = craft_blob_payload(2, 0, blob);
	blob[48] = BLOB_ZSTD | BLOB_SEALED;
	blob[44] = 10; /* csize */
	blob[45] = blob[46] = blob[47] = 0;
	uint32_t crc = keep_crc32c(blob + STREAM_BLOB_FIXED, 10);
	for (int i = 0; i < 4; i++)
		blob[52 + i] = (uint8_t)(crc >> (8 * i));
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, STREAM_BLOB_FIXED + 10, blob,
		  STREAM_BLOB_FIXED + 10);
	refused(&c, "blob 12 is too short to be sealed",
		"a sealed blob shorter than a seal");
	blob[48] = BLOB_ZSTD;
	craft_header(&c, &h);
	craft_rec(&c, STREAM_BLOB, STREAM_BLOB_FIXED + 10, blob,
		  STREAM_BLOB_FIXED + 10);
	refused(&c, "blob 12 is not sealed in an encrypted store's stream",
		"a blob not sealed in an encrypted store's stream");
}

static void t_names_writer(void)
{
	struct stream_header h;
	struct stream_w *w;
	struct mem m = {0};
	char long_name[300];

	memset(long_name, 'n', sizeof(long_name));
	long_name[256] = '\0';
	stream_w_new(mem_write, &m, &w);
	header_of(&h, true, false);
	h.name = "a/b";
	is_int(stream_w_header(w, &h), KEEP_E_INVAL,
	       "the writer refuses a name with '/'");
	h.name = "";
	is_int(stream_w_header(w, &h), KEEP_E_INVAL,
	       "the writer refuses an empty name");
	h.name = long_name;
	is_int(stream_w_header(w, &h), KEEP_E_INVAL,
	       "the writer refuses a name of 256 bytes");
	long_name[255] = '\0';
	h.name = "snap";
	h.base_name = "x/y";
	is_int(stream_w_header(w, &h), KEEP_E_INVAL,
	       "the writer refuses a base name with '/'");
	h.base_name = "";
	is_int(stream_w_header(w, &h), KEEP_E_INVAL,
	       "and an empty base name");
	h.base_name = "base";
	h.base_commit = h.commit + 1;
	is_int(stream_w_header(w, &h), KEEP_E_INVAL,
	       "and a base that is newer");
	header_of(&h, false, false);
	h.key_wrap = WRAP;
	is_int(stream_w_header(w, &h), KEEP_E_INVAL,
	       "and a key wrap for a plain store");
	header_of(&h, false, false);
	h.uuid[3] = 'X';
	is_int(stream_w_header(w, &h), KEEP_E_INVAL, "and a bad uuid");
	header_of(&h, false, false);
	h.origin = KEEP_ORIGIN_RECEIVED;
	is_int(stream_w_header(w, &h), KEEP_E_INVAL,
	       "and an origin no store takes");
	is_int(m.len, 0, "nothing was written by the refusals");
	header_of(&h, false, false);
	h.name = long_name; /* 255 bytes */
	is_int(stream_w_header(w, &h), 0, "a name of 255 bytes is written");
	stream_w_free(w);
	free(m.p);
}

static int log_errors;

static void count_errors(int level, const char *msg, void *ctx)
{
	(void)msg;
	(void)ctx;
	log_errors += level <= LOG_ERR;
}

static void t_writer(void)
{
	struct stream_header h;
	struct stream_blob b;
	struct stream_w *w;
	struct mem m = {0};

	header_of(&h, false, false);
	blob_of(0, KEEP_FORMAT_PLAIN, &b);
	stream_w_new(mem_write, &m, &w);
	is_int(stream_w_blob(w, &b), KEEP_E_INVAL, "no blob before the header");
	is_int(stream_w_rows(w, "x", 1), KEEP_E_INVAL,
	       "no rows before the header");
	is_int(stream_w_end(w), KEEP_E_INVAL, "no end before the header");
	is_int(stream_w_header(w, &h), 0, "the header");
	is_int(stream_w_header(w, &h), KEEP_E_INVAL, "no second header");
	b.flags = BLOB_SEALED;
	b.size -= CRYPT_OVERHEAD;
	is_int(stream_w_blob(w, &b), KEEP_E_INVAL,
	       "no sealed blob from a plain store");
	blob_of(0, KEEP_FORMAT_PLAIN, &b);
	b.size++;
	is_int(stream_w_blob(w, &b), KEEP_E_INVAL,
	       "no raw blob of another size than it is stored in");
	blob_of(0, KEEP_FORMAT_PLAIN, &b);
	b.crc ^= 1;
	keep_log_set_sink(count_errors, NULL);
	is_int(stream_w_blob(w, &b), KEEP_E_CORRUPT,
	       "a blob that does not match its crc is not sent");
	keep_log_set_sink(NULL, NULL);
	is_int(log_errors, 1, "and the damage is logged");
	blob_of(0, KEEP_FORMAT_PLAIN, &b);
	is_int(stream_w_blob(w, &b), 0, "a blob");
	is_int(stream_w_end(w), 0, "the end");
	is_int(stream_w_end(w), KEEP_E_INVAL, "no second end");
	is_int(stream_w_rows(w, "x", 1), KEEP_E_INVAL, "nothing after the end");
	stream_w_free(w);
	char msg[400];
	int n;
	int rc = read_all(m.p, m.len, 0, &n, msg, sizeof(msg));
	is_int(rc, 0,
	       "what was written after the refusals reads back (%d records)",
	       n);
	free(m.p);

	/* a failed write cuts the stream: sticky */
	m = (struct mem){.fail_after = 200};
	stream_w_new(mem_write, &m, &w);
	is_int(stream_w_header(w, &h), 0, "a header into a small sink");
	is_int(stream_w_blob(w, &b), ENOSPC,
	       "a blob that does not fit: ENOSPC");
	is_int(stream_w_rows(w, "x", 1), ENOSPC, "and everything after it");
	is_int(stream_w_end(w), ENOSPC, "the end too");
	stream_w_free(w);
	free(m.p);
	stream_w_free(NULL);
	stream_r_free(NULL);
}

static void t_read_error(void)
{
	struct mem m = {0};
	struct src s;
	struct stream_r *r;
	struct stream_rec rec;
	int rc = 0;

	write_small(&m, false, false, 3, 1);
	s = (struct src){.p = m.p, .len = m.len, .step = 1, .fail_at = 300};
	stream_r_new(src_read, &s, &r);
	while (rc == 0 && (rc = stream_r_next(r, &rec)) == 0)
		;
	is_int(rc, EIO, "a read error of the source is its errno");
	ok(strstr(stream_r_error(r), "cannot read the stream at byte 300") !=
		   NULL,
	   "%s", stream_r_error(r));
	is_int(stream_r_next(r, &rec), EIO, "and it sticks");
	stream_r_free(r);
	free(m.p);
}

static void t_fd(void)
{
	FILE *f = tmpfile();
	int fd = fileno(f), n = 0, rc;
	struct stream_header h;
	struct stream_w *w;
	struct stream_r *r;
	struct stream_rec rec;

	header_of(&h, false, false);
	stream_w_new(stream_fd_write, &fd, &w);
	ok(stream_w_header(w, &h) == 0 && stream_w_rows(w, "abc", 3) == 0 &&
		   stream_w_end(w) == 0,
	   "a stream written to a file");
	stream_w_free(w);
	lseek(fd, 0, SEEK_SET);
	stream_r_new(stream_fd_read, &fd, &r);
	while ((rc = stream_r_next(r, &rec)) == 0) {
		n++;
		if (rec.type == STREAM_END)
			break;
	}
	ok(rc == 0 && n == 3, "and read back from it: %d records", n);
	stream_r_free(r);
	fclose(f);
}

/* ---- seeds for the fuzzer -------------------------------------------------
 */

static int save(const char *dir, const char *name, const struct mem *m)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(m->p, 1, m->len, f) != m->len || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

/* The fuzzer's second form of a stream (tests/fuzz/fuzz_stream.c): 0xff,
 * then each record as u8 type, u16 length, payload; no checks. */
static struct mem framed(const struct mem *m)
{
	struct mem f = {0};
	size_t pos = 0;

	mem_write(&f, "\xff", 1);
	while (pos + 12 + 32 <= m->len) {
		size_t len = (size_t)m->p[pos + 4] | (size_t)m->p[pos + 5] << 8;
		uint8_t t[3] = {m->p[pos], m->p[pos + 4], m->p[pos + 5]};
		mem_write(&f, t, 3);
		mem_write(&f, m->p + pos + 12, len);
		pos += 12 + len + 32;
	}
	return f;
}

static int write_corpus(const char *dir)
{
	static const struct {
		const char *name;
		bool incremental, encrypted;
		int blobs, rows;
	} seeds[] = {
		{"full-plain", false, false, 3, 2},
		{"incremental-encrypted", true, true, 2, 1},
		{"incremental-plain", true, false, 1, 3},
		{"header-end", false, false, 0, 0},
	};
	int bad = 0;

	_Static_assert(sizeof(rows_text) > 15 + 3, "rows of the seeds");
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct mem m = {0};
		bad |= write_small(&m, seeds[i].incremental, seeds[i].encrypted,
				   seeds[i].blobs, seeds[i].rows) != 0;
		bad |= save(dir, seeds[i].name, &m);
		struct mem f = framed(&m);
		char name[64];
		snprintf(name, sizeof(name), "framed-%s", seeds[i].name);
		bad |= save(dir, name, &f);
		free(f.p);
		free(m.p);
	}
	return bad;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--write-corpus"))
		return write_corpus(argv[2]);
	t_hash_pieces();
	t_round_trip(false, false);
	t_round_trip(true, false);
	t_round_trip(false, true);
	t_round_trip(true, true);
	t_big_rows();
	t_truncated();
	t_flipped();
	t_order();
	t_foreign();
	t_header_fields();
	t_blob_fields();
	t_names_writer();
	t_writer();
	t_read_error();
	t_fd();
	return tap_done();
}
