/*
 * stream.c - the record format of send streams.
 *
 * A send stream carries a snapshot of one store (or what changed since a
 * base snapshot) to another: a header, the blobs the receiver needs,
 * batches of metadata rows, an end record.  This file owns the bytes on
 * the wire and nothing else: it writes records through a caller's write
 * function and reads them back, strictly checked, through a read
 * function.  What the rows mean, and reading or changing a store, belong
 * to the layer above.
 *
 * Design notes:
 *
 *  1. A record is u32 type, u64 payload length (little-endian), the
 *     payload, then a 32-byte check: BLAKE2b-256 over the previous
 *     record's check, the type, the length and the payload; the first
 *     record chains from 32 zero bytes.  A record's check thus vouches
 *     for every byte before it: a damaged, dropped, repeated, reordered
 *     or spliced-in record fails its own check or the next one's.
 *  2. The header comes first and once, the end record last and once.  The
 *     end counts the records of each type before it and their payload
 *     bytes, and nothing may follow it, so a stream cut anywhere is never
 *     a shorter valid stream: the end record is only handed out when the
 *     input ends right after it.
 *  3. Nothing is allocated for a record before its type is known and its
 *     length is within that type's bound, and a payload buffer grows in
 *     steps of at most 1 MiB as its bytes arrive: a length field cannot
 *     make the reader allocate more than 1 MiB beyond what the input
 *     holds.
 *  4. A record is handed out only after its check matched and every field
 *     was decoded with bounds checks; a length that points past the
 *     payload, or bytes left over, are damage.  The writer applies the
 *     same field rules (header_problem, blob_problem), so it never writes
 *     what the reader would refuse.
 *  5. The first record's framing and check, and the first 20 bytes of its
 *     payload (magic, format version), stay the same in every version of
 *     the format: any reader can tell a foreign stream from a newer one.
 *  6. Errors are sticky: after a failed read nothing more is handed out;
 *     after a failed write the stream is cut and nothing more is written.
 *     Every refusal of the reader goes through r_fail, the one place for
 *     a breakpoint; the message says what and at which record and byte.
 *     (A damaged stream is not a damaged store: it is not logged.)
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keep_i.h"

#define ROWS_CHUNK ((size_t)1 << 20) /* a payload grows by this at most */

_Static_assert(sizeof(STREAM_MAGIC) <= STREAM_MAGIC_BYTES, "magic length");
_Static_assert(STREAM_MAGIC_BYTES + 4 + STREAM_UUID_BYTES + 4 + 4 +
			       2 * (2 + KEEP_SNAP_NAME_MAX + 8) + 8 + 8 + 1 + 8 + 1 + 2 +
			       STREAM_WRAP_MAX <=
		       STREAM_HEADER_MAX,
	       "the largest header fits its bound");
_Static_assert(4 * 8 <= STREAM_END_MAX, "end record");

static const char *type_name(uint32_t type)
{
	switch (type) {
	case STREAM_HEADER:
		return "header";
	case STREAM_BLOB:
		return "blob";
	case STREAM_ROWS:
		return "rows";
	case STREAM_END:
		return "end";
	default:
		return NULL;
	}
}

static uint64_t type_bound(uint32_t type)
{
	switch (type) {
	case STREAM_HEADER:
		return STREAM_HEADER_MAX;
	case STREAM_BLOB:
		return STREAM_BLOB_FIXED + STREAM_BLOB_DATA_MAX;
	case STREAM_ROWS:
		return STREAM_ROWS_MAX;
	default:
		return STREAM_END_MAX;
	}
}

/* ---- little-endian encoding -------------------------------------------- */

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Appends to a buffer the caller sized for the largest output. */
struct enc {
	uint8_t *p;
	size_t len;
};

static void put_bytes(struct enc *e, const void *src, size_t n)
{
	if (n)
		memcpy(e->p + e->len, src, n);
	e->len += n;
}

static void put8(struct enc *e, uint8_t v)
{
	e->p[e->len++] = v;
}

static void put16(struct enc *e, uint16_t v)
{
	le16(e->p + e->len, v);
	e->len += 2;
}

static void put32(struct enc *e, uint32_t v)
{
	le32(e->p + e->len, v);
	e->len += 4;
}

static void put64(struct enc *e, uint64_t v)
{
	le64(e->p + e->len, v);
	e->len += 8;
}

/* Takes from a payload; once a take would pass its end, every take fails
 * and `short_` stays set. */
struct dec {
	const uint8_t *p;
	size_t len, pos;
	bool short_;
};

static const uint8_t *take(struct dec *d, size_t n)
{
	const uint8_t *at;

	if (d->short_ || n > d->len - d->pos) {
		d->short_ = true;
		return NULL;
	}
	at = d->p + d->pos;
	d->pos += n;
	return at;
}

static uint8_t take8(struct dec *d)
{
	const uint8_t *p = take(d, 1);
	return p ? p[0] : 0;
}

static uint16_t take16(struct dec *d)
{
	const uint8_t *p = take(d, 2);
	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

static uint32_t take32(struct dec *d)
{
	const uint8_t *p = take(d, 4);
	return p ? get32(p) : 0;
}

static uint64_t take64(struct dec *d)
{
	const uint8_t *p = take(d, 8);
	return p ? get64(p) : 0;
}

/* ---- the rules of fields, shared by writer and reader ------------------ */

static const char *name_problem(const char *name, size_t len)
{
	if (len == 0)
		return "is empty";
	if (len > KEEP_SNAP_NAME_MAX)
		return "is longer than 255 bytes";
	if (memchr(name, '/', len) || memchr(name, '\0', len))
		return "holds a '/' or NUL byte";
	return NULL;
}

static bool uuid_ok(const char *u)
{
	for (int i = 0; i < STREAM_UUID_BYTES; i++) {
		char c = u[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') ||
			     (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return u[STREAM_UUID_BYTES] == '\0';
}

/* Names and the key wrap as lengths (the reader's may hold a NUL). */
struct hdr_lens {
	size_t name, base, wrap;
};

static const char *header_problem(const struct stream_header *h,
				  const struct hdr_lens *n)
{
	uint32_t bs = h->block_size;

	if (!uuid_ok(h->uuid))
		return "the source store's uuid is not a uuid";
	if (h->store_format < KEEP_FORMAT_PLAIN ||
	    h->store_format > KEEP_FORMAT_VERSION)
		return "the store format is not one this keepfs knows";
	if (bs < KEEP_MIN_BLOCK_SIZE || bs > KEEP_MAX_BLOCK_SIZE ||
	    (bs & (bs - 1)))
		return "the block size is impossible";
	if (name_problem(h->name, n->name))
		return "the snapshot's name is not a snapshot name";
	if (h->commit == 0)
		return "the snapshot's commit is 0";
	if (h->origin != KEEP_ORIGIN_MANUAL && h->origin != KEEP_ORIGIN_AUTO &&
	    h->origin != KEEP_ORIGIN_PRE_RESTORE)
		return "the snapshot's origin is not one a store takes";
	if (h->incremental) {
		if (name_problem(h->base_name, n->base))
			return "the base's name is not a snapshot name";
		/* the same commit: a second name the receiver has the
		 * commit of (a stream with nothing in it) */
		if (h->base_commit == 0 || h->base_commit > h->commit)
			return "the base's commit is newer than the "
			       "snapshot's";
	}
	if (n->wrap > STREAM_WRAP_MAX)
		return "the key wrap is too long";
	if (n->wrap && memchr(h->key_wrap, '\0', n->wrap))
		return "the key wrap holds a NUL byte";
	if (n->wrap && h->store_format == KEEP_FORMAT_PLAIN)
		return "a plain store's stream carries a key wrap";
	return NULL;
}

static const char *blob_problem(const struct stream_blob *b, uint32_t format)
{
	bool sealed = b->flags & BLOB_SEALED, zstd = b->flags & BLOB_ZSTD;

	if (b->id == 0)
		return "has id 0";
	if (b->size > KEEP_MAX_BLOCK_SIZE)
		return "is larger than a block can be";
	if (b->csize > STREAM_BLOB_DATA_MAX)
		return "is stored in more bytes than a block can take";
	if (b->flags & ~(uint32_t)(BLOB_ZSTD | BLOB_SEALED))
		return "has flags this keepfs does not know";
	if (sealed != (format != KEEP_FORMAT_PLAIN))
		return sealed ? "is sealed in a plain store's stream"
			      : "is not sealed in an encrypted store's stream";
	if (sealed && b->csize < CRYPT_OVERHEAD)
		return "is too short to be sealed";
	if (!zstd && b->csize != b->size + (sealed ? CRYPT_OVERHEAD : 0))
		return "is stored raw in a number of bytes that is not its "
		       "size";
	return NULL;
}

/* ---- the writer -------------------------------------------------------- */

enum { W_START, W_BODY, W_ENDED };

struct stream_w {
	stream_write_fn write;
	void *ctx;
	uint8_t prev[STREAM_CHECK_BYTES];
	struct stream_end counts;
	uint32_t store_format;
	int state;
	int sticky; /* the write function's error: the stream is cut */
};

int stream_w_new(stream_write_fn write, void *ctx, struct stream_w **out)
{
	struct stream_w *w = calloc(1, sizeof(*w));

	if (!w)
		return KEEP_E_NOMEM;
	w->write = write;
	w->ctx = ctx;
	*out = w;
	return 0;
}

void stream_w_free(struct stream_w *w)
{
	free(w);
}

/* One record whose payload is a then b (either may be empty). */
static int w_record(struct stream_w *w, uint32_t type, const void *a,
		    size_t alen, const void *b, size_t blen)
{
	uint8_t frame[STREAM_FRAME_BYTES], check[STREAM_CHECK_BYTES];
	struct keep_hash_state st;
	uint64_t len = (uint64_t)alen + blen;
	int rc = 0;

	le32(frame, type);
	le64(frame + 4, len);
	keep_hash_init(&st);
	keep_hash_update(&st, w->prev, sizeof(w->prev));
	keep_hash_update(&st, frame, sizeof(frame));
	if (alen)
		keep_hash_update(&st, a, alen);
	if (blen)
		keep_hash_update(&st, b, blen);
	keep_hash_final(&st, check);

	rc = w->write(w->ctx, frame, sizeof(frame));
	if (rc == 0 && alen)
		rc = w->write(w->ctx, a, alen);
	if (rc == 0 && blen)
		rc = w->write(w->ctx, b, blen);
	if (rc == 0)
		rc = w->write(w->ctx, check, sizeof(check));
	if (rc) {
		w->sticky = rc;
		return rc;
	}
	memcpy(w->prev, check, sizeof(check));
	if (type == STREAM_END)
		return 0;
	w->counts.headers += type == STREAM_HEADER;
	w->counts.blobs += type == STREAM_BLOB;
	w->counts.rows += type == STREAM_ROWS;
	w->counts.bytes += len;
	return 0;
}

static int w_ready(struct stream_w *w, int state)
{
	if (w->sticky)
		return w->sticky;
	return w->state == state ? 0 : KEEP_E_INVAL;
}

int stream_w_header(struct stream_w *w, const struct stream_header *h)
{
	uint8_t buf[STREAM_HEADER_MAX];
	struct enc e = {.p = buf};
	struct hdr_lens n = {0};
	int rc = w_ready(w, W_START);

	if (rc)
		return rc;
	if (!h->name || (h->incremental && !h->base_name))
		return KEEP_E_INVAL;
	n.name = strlen(h->name);
	n.base = h->incremental ? strlen(h->base_name) : 0;
	n.wrap = h->key_wrap ? strlen(h->key_wrap) : 0;
	if (header_problem(h, &n))
		return KEEP_E_INVAL;

	memset(buf, 0, STREAM_MAGIC_BYTES);
	memcpy(buf, STREAM_MAGIC, sizeof(STREAM_MAGIC) - 1);
	e.len = STREAM_MAGIC_BYTES;
	put32(&e, STREAM_VERSION);
	put_bytes(&e, h->uuid, STREAM_UUID_BYTES);
	put32(&e, h->store_format);
	put32(&e, h->block_size);
	put16(&e, (uint16_t)n.name);
	put_bytes(&e, h->name, n.name);
	put64(&e, h->commit);
	put64(&e, (uint64_t)h->commit_ns);
	put64(&e, (uint64_t)h->created_ns);
	put8(&e, (uint8_t)h->origin);
	put64(&e, h->expect_bytes);
	put8(&e, h->incremental ? 1 : 0);
	if (h->incremental) {
		put16(&e, (uint16_t)n.base);
		put_bytes(&e, h->base_name, n.base);
		put64(&e, h->base_commit);
	}
	put16(&e, (uint16_t)n.wrap);
	put_bytes(&e, h->key_wrap, n.wrap);

	rc = w_record(w, STREAM_HEADER, buf, e.len, NULL, 0);
	if (rc == 0) {
		w->state = W_BODY;
		w->store_format = h->store_format;
	}
	return rc;
}

int stream_w_blob(struct stream_w *w, const struct stream_blob *b)
{
	uint8_t fixed[STREAM_BLOB_FIXED];
	struct enc e = {.p = fixed};
	int rc = w_ready(w, W_BODY);

	if (rc)
		return rc;
	if (blob_problem(b, w->store_format) || (b->csize && !b->data))
		return KEEP_E_INVAL;
	if (keep_crc32c(b->csize ? b->data : "", b->csize) != b->crc)
		return KEEP_CORRUPT_BKPT("a blob to send does not match its "
					 "checksum");
	put64(&e, b->id);
	put_bytes(&e, b->hash, KEEP_HASH_BYTES);
	put32(&e, b->size);
	put32(&e, b->csize);
	put32(&e, b->flags);
	put32(&e, b->crc);
	return w_record(w, STREAM_BLOB, fixed, e.len, b->data, b->csize);
}

int stream_w_rows(struct stream_w *w, const void *data, size_t len)
{
	int rc = w_ready(w, W_BODY);

	if (rc)
		return rc;
	if (len > STREAM_ROWS_MAX || (len && !data))
		return KEEP_E_INVAL;
	return w_record(w, STREAM_ROWS, data, len, NULL, 0);
}

int stream_w_end(struct stream_w *w)
{
	uint8_t buf[4 * 8];
	struct enc e = {.p = buf};
	int rc = w_ready(w, W_BODY);

	if (rc)
		return rc;
	put64(&e, w->counts.headers);
	put64(&e, w->counts.blobs);
	put64(&e, w->counts.rows);
	put64(&e, w->counts.bytes);
	rc = w_record(w, STREAM_END, buf, e.len, NULL, 0);
	if (rc == 0)
		w->state = W_ENDED;
	return rc;
}

/* ---- the reader -------------------------------------------------------- */

struct stream_r {
	stream_read_fn read;
	void *ctx;
	uint8_t prev[STREAM_CHECK_BYTES];
	uint64_t records; /* handed out so far */
	uint64_t offset;  /* bytes read so far */
	struct stream_end counts;
	uint32_t store_format;
	bool ended;
	int sticky;
	/* the record being read, for messages */
	uint64_t cur_index, cur_offset;
	uint32_t cur_type; /* 0: not known yet */
	uint8_t *buf;	   /* its payload */
	size_t cap;
	/* the header's strings */
	char name[KEEP_SNAP_NAME_MAX + 1], base[KEEP_SNAP_NAME_MAX + 1];
	char wrap[STREAM_WRAP_MAX + 1];
	char msg[320];
};

int stream_r_new(stream_read_fn read, void *ctx, struct stream_r **out)
{
	struct stream_r *r = calloc(1, sizeof(*r));

	if (!r)
		return KEEP_E_NOMEM;
	r->read = read;
	r->ctx = ctx;
	*out = r;
	return 0;
}

void stream_r_free(struct stream_r *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

const char *stream_r_error(const struct stream_r *r)
{
	return r->msg;
}

/* Every refusal of the reader (note 6). */
static int __attribute__((format(printf, 3, 4)))
r_fail(struct stream_r *r, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->sticky = rc;
	return rc;
}

/* "stream damaged: record 7 (blob) at byte 123456: " and why. */
static int __attribute__((format(printf, 2, 3)))
r_damage(struct stream_r *r, const char *fmt, ...)
{
	char why[200], where[40] = "";
	const char *tn = type_name(r->cur_type);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (tn)
		snprintf(where, sizeof(where), " (%s)", tn);
	return r_fail(r, KEEP_E_CORRUPT,
		      "stream damaged: record %" PRIu64 "%s at byte %" PRIu64
		      ": %s",
		      r->cur_index, where, r->cur_offset, why);
}

static int r_truncated(struct stream_r *r)
{
	const char *tn = type_name(r->cur_type);

	if (r->offset == r->cur_offset)
		return r_fail(r, KEEP_E_CORRUPT,
			      "stream ends without its end record "
			      "(truncated?) after record %" PRIu64
			      " at byte %" PRIu64,
			      r->records, r->offset);
	return r_fail(r, KEEP_E_CORRUPT,
		      "stream ends without its end record (truncated?) "
		      "inside record %" PRIu64 "%s%s%s at byte %" PRIu64,
		      r->cur_index, tn ? " (" : "", tn ? tn : "", tn ? ")" : "",
		      r->offset);
}

/* Read len bytes, or fewer only at the end of the input. */
static int r_fill(struct stream_r *r, void *buf, size_t len, size_t *got)
{
	size_t have = 0;

	while (have < len) {
		size_t n = 0;
		int err = r->read(r->ctx, (uint8_t *)buf + have, len - have,
				  &n);
		if (err)
			return r_fail(r, err,
				      "cannot read the stream at byte %" PRIu64
				      ": %s",
				      r->offset, strerror(err));
		if (n == 0)
			break;
		if (n > len - have)
			return r_fail(r, EIO,
				      "the stream's read function returned "
				      "more than it was asked for");
		have += n;
		r->offset += n;
	}
	*got = have;
	return 0;
}

/* The payload, into r->buf, grown as its bytes arrive (note 3). */
static int r_payload(struct stream_r *r, size_t len)
{
	size_t have = 0;

	while (have < len) {
		size_t chunk =
		    len - have < ROWS_CHUNK ? len - have : ROWS_CHUNK;
		size_t got;
		int rc;

		if (have + chunk > r->cap) {
			size_t cap = r->cap * 2 > have + chunk ? r->cap * 2
							       : have + chunk;
			if (cap > len)
				cap = len;
			void *p = realloc(r->buf, cap);
			if (!p)
				return r_fail(r, KEEP_E_NOMEM, "out of memory");
			r->buf = p;
			r->cap = cap;
		}
		rc = r_fill(r, r->buf + have, chunk, &got);
		if (rc)
			return rc;
		have += got;
		if (got < chunk)
			return r_truncated(r);
	}
	return 0;
}

/*
 * Record 1's first bytes: a foreign stream (note 5) is told apart from a
 * damaged one by the type field and the magic together, so that one
 * flipped bit reads as damage.  frame holds got bytes; with a wrong type
 * this reads on into the magic, and the record is refused either way.
 */
static int r_first(struct stream_r *r, const uint8_t *frame, size_t got)
{
	uint8_t want[STREAM_FRAME_BYTES], magic[STREAM_MAGIC_BYTES] = {0};
	uint8_t seen[STREAM_MAGIC_BYTES];
	size_t n = got < 4 ? got : 4, m = 0;
	int rc;

	if (got == 0)
		return r_fail(r, KEEP_E_CORRUPT,
			      "not a keepfs stream (the input is empty)");
	le32(want, STREAM_HEADER);
	if (memcmp(frame, want, n) == 0)
		return 0; /* the rest is checked as any record's */
	if (got == STREAM_FRAME_BYTES) {
		rc = r_fill(r, seen, sizeof(seen), &m);
		if (rc)
			return rc;
	}
	memcpy(magic, STREAM_MAGIC, sizeof(STREAM_MAGIC) - 1);
	if (m == 0 || memcmp(seen, magic, m) != 0)
		return r_fail(r, KEEP_E_CORRUPT, "not a keepfs stream");
	r->cur_type = get32(frame);
	return r_damage(r, "a stream begins with its header record, not "
			   "type %" PRIu32,
			get32(frame));
}

/* A name: u16 length and its bytes, copied to out with a NUL. */
static const char *take_name(struct dec *d, char *out, size_t *len)
{
	size_t n = take16(d);
	const uint8_t *p;
	const char *why;

	if (d->short_)
		return NULL;
	if (n > KEEP_SNAP_NAME_MAX) {
		*len = n;
		return "is longer than 255 bytes";
	}
	p = take(d, n);
	if (!p)
		return NULL;
	memcpy(out, p, n);
	out[n] = '\0';
	*len = n;
	why = name_problem(out, n);
	return why;
}

static int r_header(struct stream_r *r, struct dec *d, struct stream_header *h)
{
	uint8_t magic[STREAM_MAGIC_BYTES] = {0};
	const uint8_t *p = take(d, STREAM_MAGIC_BYTES);
	struct hdr_lens n = {0};
	const char *why;
	uint8_t base;

	memcpy(magic, STREAM_MAGIC, sizeof(STREAM_MAGIC) - 1);
	if (!p || memcmp(p, magic, sizeof(magic)) != 0)
		return r_fail(r, KEEP_E_CORRUPT, "not a keepfs stream");
	memset(h, 0, sizeof(*h));
	h->version = take32(d);
	if (d->short_)
		return r_damage(r, "the header is cut short");
	if (h->version > STREAM_VERSION)
		return r_fail(r, KEEP_E_CORRUPT,
			      "stream of a newer format %" PRIu32
			      " (this keepfs reads format %d); upgrade keepfs",
			      h->version, STREAM_VERSION);
	if (h->version != STREAM_VERSION)
		return r_damage(r, "format version %" PRIu32, h->version);
	p = take(d, STREAM_UUID_BYTES);
	if (p)
		memcpy(h->uuid, p, STREAM_UUID_BYTES);
	h->store_format = take32(d);
	h->block_size = take32(d);
	why = take_name(d, r->name, &n.name);
	if (why)
		return r_damage(r, "the snapshot's name %s", why);
	h->name = r->name;
	h->commit = take64(d);
	h->commit_ns = (int64_t)take64(d);
	h->created_ns = (int64_t)take64(d);
	h->origin = take8(d);
	h->expect_bytes = take64(d);
	base = take8(d);
	if (!d->short_ && base > 1)
		return r_damage(r, "the base's flag is %u", base);
	h->incremental = base == 1;
	if (h->incremental) {
		why = take_name(d, r->base, &n.base);
		if (why)
			return r_damage(r, "the base's name %s", why);
		h->base_name = r->base;
		h->base_commit = take64(d);
	}
	n.wrap = take16(d);
	if (!d->short_ && n.wrap > STREAM_WRAP_MAX)
		return r_damage(r, "the key wrap is %zu bytes, more than %d",
				n.wrap, STREAM_WRAP_MAX);
	p = take(d, n.wrap);
	if (d->short_)
		return r_damage(r, "a field runs past the end of the header");
	if (d->pos != d->len)
		return r_damage(r, "%zu byte(s) left over after the header",
				d->len - d->pos);
	memcpy(r->wrap, p, n.wrap);
	r->wrap[n.wrap] = '\0';
	h->key_wrap = n.wrap ? r->wrap : NULL;
	why = header_problem(h, &n);
	if (why)
		return r_damage(r, "%s", why);
	r->store_format = h->store_format;
	return 0;
}

static int r_blob(struct stream_r *r, struct dec *d, struct stream_blob *b)
{
	const uint8_t *p;
	const char *why;

	b->id = take64(d);
	p = take(d, KEEP_HASH_BYTES);
	if (p)
		memcpy(b->hash, p, KEEP_HASH_BYTES);
	b->size = take32(d);
	b->csize = take32(d);
	b->flags = take32(d);
	b->crc = take32(d);
	if (d->short_)
		return r_damage(r, "a blob record shorter than its fields");
	if (b->csize != d->len - d->pos)
		return r_damage(r,
				"blob %" PRIu64 " says %" PRIu32
				" stored bytes but carries %zu",
				b->id, b->csize, d->len - d->pos);
	b->data = take(d, b->csize);
	why = blob_problem(b, r->store_format);
	if (why)
		return r_damage(r, "blob %" PRIu64 " %s", b->id, why);
	if (keep_crc32c(b->data, b->csize) != b->crc)
		return r_damage(r,
				"blob %" PRIu64
				"'s bytes do not match their checksum",
				b->id);
	return 0;
}

static int r_end(struct stream_r *r, struct dec *d, struct stream_end *e)
{
	const struct stream_end *c = &r->counts;
	uint8_t extra;
	size_t got;
	int rc;

	e->headers = take64(d);
	e->blobs = take64(d);
	e->rows = take64(d);
	e->bytes = take64(d);
	if (d->short_ || d->pos != d->len)
		return r_damage(r, "an end record of %zu bytes, not 32",
				d->len);
	if (e->headers != c->headers || e->blobs != c->blobs ||
	    e->rows != c->rows)
		return r_damage(r,
				"it counts %" PRIu64 " header, %" PRIu64
				" blob and %" PRIu64
				" rows records; the stream has %" PRIu64
				", %" PRIu64 " and %" PRIu64,
				e->headers, e->blobs, e->rows, c->headers,
				c->blobs, c->rows);
	if (e->bytes != c->bytes)
		return r_damage(r,
				"it counts %" PRIu64
				" payload bytes; the stream has %" PRIu64,
				e->bytes, c->bytes);
	/* nothing may follow (note 2) */
	rc = r_fill(r, &extra, 1, &got);
	if (rc)
		return rc;
	if (got) {
		r->cur_index++;
		r->cur_offset = r->offset - 1;
		r->cur_type = 0;
		return r_damage(r, "data after the end record");
	}
	return 0;
}

int stream_r_next(struct stream_r *r, struct stream_rec *rec)
{
	uint8_t frame[STREAM_FRAME_BYTES], check[STREAM_CHECK_BYTES];
	struct keep_hash_state st;
	struct stream_rec out = {0};
	struct dec d = {0};
	uint32_t type;
	uint64_t len;
	size_t got;
	int rc;

	if (r->sticky)
		return r->sticky;
	if (r->ended)
		return KEEP_E_INVAL;
	r->cur_index = r->records + 1;
	r->cur_offset = r->offset;
	r->cur_type = 0;

	rc = r_fill(r, frame, sizeof(frame), &got);
	if (rc == 0 && r->cur_index == 1)
		rc = r_first(r, frame, got);
	if (rc)
		return rc;
	if (got < sizeof(frame))
		return r_truncated(r);
	type = get32(frame);
	len = get64(frame + 4);
	if (!type_name(type))
		return r_damage(r,
				"unknown record type %" PRIu32
				" (written by a newer keepfs?)",
				type);
	r->cur_type = type;
	if (len > type_bound(type))
		return r_damage(r,
				"a payload of %" PRIu64
				" bytes, over the %s record bound of %" PRIu64,
				len, type_name(type), type_bound(type));

	rc = r_payload(r, (size_t)len);
	if (rc == 0)
		rc = r_fill(r, check, sizeof(check), &got);
	if (rc)
		return rc;
	if (got < sizeof(check))
		return r_truncated(r);
	{
		uint8_t want[STREAM_CHECK_BYTES];

		keep_hash_init(&st);
		keep_hash_update(&st, r->prev, sizeof(r->prev));
		keep_hash_update(&st, frame, sizeof(frame));
		if (len)
			keep_hash_update(&st, r->buf, (size_t)len);
		keep_hash_final(&st, want);
		if (memcmp(want, check, sizeof(want)) != 0)
			return r_damage(r, "check does not match");
	}

	/* the order of records (note 2); r_first saw to record 1's type */
	assert(r->cur_index > 1 || type == STREAM_HEADER);
	if (r->cur_index > 1 && type == STREAM_HEADER)
		return r_damage(r, "a second header record");

	d.p = r->buf;
	d.len = (size_t)len;
	out.type = type;
	out.index = r->cur_index;
	out.offset = r->cur_offset;
	switch (type) {
	case STREAM_HEADER:
		rc = r_header(r, &d, &out.header);
		break;
	case STREAM_BLOB:
		rc = r_blob(r, &d, &out.blob);
		break;
	case STREAM_ROWS:
		out.rows.data = r->buf;
		out.rows.len = (size_t)len;
		break;
	default:
		rc = r_end(r, &d, &out.end);
		break;
	}
	if (rc)
		return rc;

	memcpy(r->prev, check, sizeof(check));
	r->records++;
	if (type == STREAM_END) {
		r->ended = true;
	} else {
		r->counts.headers += type == STREAM_HEADER;
		r->counts.blobs += type == STREAM_BLOB;
		r->counts.rows += type == STREAM_ROWS;
		r->counts.bytes += len;
	}
	*rec = out;
	return 0;
}

/* ---- over a file descriptor -------------------------------------------- */

int stream_fd_write(void *ctx, const void *buf, size_t len)
{
	int fd = *(const int *)ctx;
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t res = write(fd, p, len);
		if (res < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += res;
		len -= (size_t)res;
	}
	return 0;
}

int stream_fd_read(void *ctx, void *buf, size_t len, size_t *got)
{
	int fd = *(const int *)ctx;
	ssize_t res;

	do
		res = read(fd, buf, len);
	while (res < 0 && errno == EINTR);
	if (res < 0)
		return errno;
	*got = (size_t)res;
	return 0;
}
