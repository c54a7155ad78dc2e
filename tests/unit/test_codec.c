/*
 * test_codec.c - core's block checksum (CRC32C), which guards every read,
 * and block compression.
 *
 * Both are internal to core (keep_i.h).  The checksum's fast path (three
 * interleaved streams combined in GF(2)) must equal the portable table
 * implementation for every length and alignment, and both must give the
 * standard check value.  Compression stores what would shrink by less than
 * an eighth as it is, without compressing all of it first (a sample
 * decides), and compresses everything else, skewed bytes included.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"
#include "tap.h"

uint32_t keep_crc32c_soft(const void *buf, size_t len);
uint32_t keep_crc32c_combine(uint32_t a, uint32_t b, uint64_t blen);

/* Encode len bytes, decode them again; returns the stored size and sets
 * *flags, or SIZE_MAX when the round trip failed. */
static size_t round_trip(struct keep_codec *c, const unsigned char *buf,
			 size_t len, unsigned *flags)
{
	void *enc = NULL;
	size_t enclen = 0;
	unsigned char *back = malloc(len + 1);
	int good = back && keep_encode(c, buf, len, &enc, &enclen, flags) == 0 &&
		   keep_decode(c, enc ? enc : buf, enclen, *flags, back, len) == 0 &&
		   memcmp(back, buf, len) == 0 && (enc != NULL) == (*flags != 0);

	free(enc);
	free(back);
	return good ? enclen : SIZE_MAX;
}

static void compression(const unsigned char *rnd)
{
	enum { B = 32768 };
	struct keep_codec *c = keep_codec_new();
	unsigned char *buf = malloc(B);
	unsigned flags = 99;
	size_t n;

	if (!ok(c && buf, "a codec")) {
		free(buf);
		keep_codec_free(c);
		return;
	}
	is_int(round_trip(c, rnd, B, &flags), B, "random block: stored as it is");
	is_int(flags, 0, "random block: not compressed");
	is_int(round_trip(c, rnd, 3000, &flags), 3000,
	       "a short random block: stored as it is");

	/* base64-like: no repeats, but six bits a byte */
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
				  "vwxyz0123456789+/";
	for (int i = 0; i < B; i++)
		buf[i] = (unsigned char)b64[rnd[i] & 63];
	n = round_trip(c, buf, B, &flags);
	ok(n < B * 8 / 10, "base64-like text compresses (%zu bytes)",
	   n);
	is_int(flags, BLOB_ZSTD, "and is stored compressed");

	/* 4 KiB of random bytes, eight times: the sample sees the repeat */
	for (int i = 0; i < B; i++)
		buf[i] = rnd[i % 4096];
	n = round_trip(c, buf, B, &flags);
	ok(n < B / 4, "a repeated random 4 KiB compresses (%zu bytes)",
	   n);

	/* random but for zeros where the sample looks: compressed whole */
	memcpy(buf, rnd, B);
	for (int i = 0; i < 4; i++)
		memset(buf + i * (B / 4), 0, 1024);
	n = round_trip(c, buf, B, &flags);
	ok(n < B, "zeros where the sample looks: compressed (%zu)", n);

	/* the other way round: the sample alone decides, so a block that
	 * is random only where it looks is stored as it is, uncompressed */
	memset(buf, 0, B);
	for (int i = 0; i < 4; i++)
		memcpy(buf + i * (B / 4), rnd + i * 1024, 1024);
	is_int(round_trip(c, buf, B, &flags), B,
	       "random only where the sample looks: stored as it is");

	/* one byte in eight zero, the rest random: zstd would take about a
	 * tenth off, less than the eighth the sample asks for */
	for (int i = 0; i < B; i++)
		buf[i] = i % 8 ? rnd[i] : 0;
	is_int(round_trip(c, buf, B, &flags), B,
	       "a tenth to gain: stored as it is");

	/* every size from 0 up, random and compressible */
	int bad = 0;
	for (size_t len = 0; len <= B; len = len * 3 / 2 + 1) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(i % 7 == 0 ? rnd[i] : 'a');
		if (round_trip(c, buf, len, &flags) == SIZE_MAX ||
		    round_trip(c, rnd, len, &flags) != len) {
			diag("round trip of %zu bytes failed", len);
			bad++;
		}
	}
	is_int(bad, 0, "round trips of every size");
	free(buf);
	keep_codec_free(c);
}

int main(void)
{
	enum { N = 1 << 20 };
	unsigned char *buf = malloc(N + 16);
	int mismatches = 0, tried = 0;

	srand(7);
	for (int i = 0; i < N + 16; i++)
		buf[i] = (unsigned char)rand();

	is_int(keep_crc32c("123456789", 9), 0xe3069283u, "check value");
	is_int(keep_crc32c_soft("123456789", 9), 0xe3069283u,
	       "check value, portable");
	is_int(keep_crc32c("", 0), 0, "empty input");

	for (size_t len = 0; len <= N; len = len * 5 / 4 + 1)
		for (size_t off = 0; off < 16; off += 3) {
			tried++;
			if (keep_crc32c(buf + off, len) !=
			    keep_crc32c_soft(buf + off, len)) {
				if (mismatches++ < 5)
					diag("mismatch at length %zu offset %zu",
					     len, off);
			}
		}
	ok(tried > 200, "%d lengths and alignments tried", tried);
	is_int(mismatches, 0, "fast and portable CRCs agree");

	/* CRC(A||B) from CRC(A), CRC(B) and |B| */
	uint32_t a = keep_crc32c(buf, 1000), b = keep_crc32c(buf + 1000, 3333);
	is_int(keep_crc32c_combine(a, b, 3333), keep_crc32c(buf, 4333),
	       "combination rule");

	/* a flipped bit anywhere changes the checksum */
	uint32_t whole = keep_crc32c(buf, 65536);
	int missed = 0;
	for (int bit = 0; bit < 65536 * 8; bit += 977) {
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		if (keep_crc32c(buf, 65536) == whole)
			missed++;
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
	is_int(missed, 0, "every single-bit flip is detected");
	compression(buf);
	free(buf);
	return tap_done();
}
