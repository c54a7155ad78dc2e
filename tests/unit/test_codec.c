/*
 * test_codec.c - core's block checksum (CRC32C), which guards every read.
 *
 * The checksum is internal to core, so this test declares the two entry
 * points it needs instead of including a public header.  The fast path
 * (three interleaved streams combined in GF(2)) must equal the portable
 * table implementation for every length and alignment, and both must give
 * the standard check value.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tap.h"

uint32_t keep_crc32c(const void *buf, size_t len);
uint32_t keep_crc32c_soft(const void *buf, size_t len);
uint32_t keep_crc32c_combine(uint32_t a, uint32_t b, uint64_t blen);

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
	free(buf);
	return tap_done();
}
