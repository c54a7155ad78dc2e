/*
 * fuzz_stream.c - libFuzzer harness of the send stream reader
 * (core/stream.c).
 *
 * The input is a stream, read in pieces whose size the input's length
 * chooses, until an error or the end record.  Beyond the sanitizers, it
 * checks what must hold for any input: an error comes with a message and
 * sticks; every record handed out is written again through the writer,
 * and a stream read to its end comes out of the writer byte for byte (the
 * reader accepts one encoding of each stream, the one the writer makes).
 *
 * Inputs that begin with 0xff are records that the harness chains into a
 * stream itself (run_framed), so that mutated payloads get past the
 * checks and reach the decoders.
 *
 * Seeds: tests/fuzz/corpus (made by test-stream --write-corpus DIR), in
 * both forms.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"

struct src {
	const uint8_t *p;
	size_t len, pos, step;
};

static int src_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct src *s = ctx;
	size_t n = s->len - s->pos;

	if (n > len)
		n = len;
	if (n > s->step)
		n = s->step;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	*got = n;
	return 0;
}

struct sink {
	uint8_t *p;
	size_t len, cap;
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
	struct sink *k = ctx;

	if (k->len + len > k->cap) {
		size_t cap = 2 * (k->len + len);
		uint8_t *p = realloc(k->p, cap);
		if (!p)
			return 12; /* ENOMEM */
		k->p = p;
		k->cap = cap;
	}
	memcpy(k->p + k->len, buf, len);
	k->len += len;
	return 0;
}

/* Write rec again; 0 or the writer's refusal. */
static int rewrite(struct stream_w *w, const struct stream_rec *rec)
{
	switch (rec->type) {
	case STREAM_HEADER:
		return stream_w_header(w, &rec->header);
	case STREAM_BLOB:
		return stream_w_blob(w, &rec->blob);
	case STREAM_ROWS:
		return stream_w_rows(w, rec->rows.data, rec->rows.len);
	default:
		return stream_w_end(w);
	}
}

/* Read a stream to its end or an error, checking the invariants. */
static void run(const uint8_t *data, size_t size)
{
	struct src s = {.p = data, .len = size, .step = 1 + size % 61};
	struct sink k = {0};
	struct stream_r *r = NULL;
	struct stream_w *w = NULL;
	struct stream_rec rec;
	int rc;

	if (size % 3 == 0)
		s.step = size ? size : 1; /* whole reads too */
	if (stream_r_new(src_read, &s, &r) || stream_w_new(sink_write, &k, &w))
		goto out;
	for (;;) {
		rc = stream_r_next(r, &rec);
		if (rc) {
			/* an error has a message and sticks */
			if (!stream_r_error(r)[0] ||
			    stream_r_next(r, &rec) != rc)
				__builtin_trap();
			break;
		}
		/* the reader hands out only what the writer takes */
		if (rewrite(w, &rec) != 0)
			__builtin_trap();
		if (rec.type == STREAM_END) {
			if (k.len != size || memcmp(k.p, data, size) != 0)
				__builtin_trap();
			break;
		}
	}
out:
	stream_w_free(w);
	stream_r_free(r);
	free(k.p);
}

/*
 * An input that begins with FRAMED is not a stream but records to make
 * one of, with right checks, so that mutations reach the decoding of
 * payloads instead of dying at a check: u8 type, u16 length (LE), that
 * many bytes (fewer at the end of the input), again and again.
 */
#define FRAMED 0xff

static void run_framed(const uint8_t *data, size_t size)
{
	uint8_t prev[STREAM_CHECK_BYTES] = {0};
	struct sink k = {0};
	size_t pos = 1;

	while (pos + 3 <= size) {
		uint32_t type = data[pos];
		size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
		uint8_t frame[STREAM_FRAME_BYTES];
		struct keep_hash_state st;

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		memset(frame, 0, sizeof(frame));
		frame[0] = (uint8_t)type;
		frame[4] = (uint8_t)len;
		frame[5] = (uint8_t)(len >> 8);
		keep_hash_init(&st);
		keep_hash_update(&st, prev, sizeof(prev));
		keep_hash_update(&st, frame, sizeof(frame));
		keep_hash_update(&st, data + pos, len);
		keep_hash_final(&st, prev);
		if (sink_write(&k, frame, sizeof(frame)) ||
		    sink_write(&k, data + pos, len) ||
		    sink_write(&k, prev, sizeof(prev)))
			break;
		pos += len;
	}
	run(k.p ? k.p : (const uint8_t *)"", k.len);
	free(k.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == FRAMED)
		run_framed(data, size);
	else
		run(data, size);
	return 0;
}
