/*
 * codec.c - content hashing and compression of blocks.
 *
 * A block's identity is the BLAKE2b-256 hash of its decoded bytes, so equal
 * content is stored once across files and time.  Content is compressed
 * with zstd at a fast level and stored raw when that does not make it
 * smaller.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "keep_i.h"

#define KEEP_ZSTD_LEVEL 1

struct keep_codec {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	void *scratch; /* compression output, kept only when smaller */
	size_t scratch_size;
	void *opened; /* a sealed blob's compressed bytes, opened */
	size_t opened_size;
};

int keep_codec_global_init(void)
{
	return sodium_init() < 0 ? KEEP_E_NOMEM : 0;
}

struct keep_codec *keep_codec_new(void)
{
	struct keep_codec *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cctx = ZSTD_createCCtx();
	c->dctx = ZSTD_createDCtx();
	if (!c->cctx || !c->dctx) {
		keep_codec_free(c);
		return NULL;
	}
	ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, KEEP_ZSTD_LEVEL);
	/* Stored bytes carry a CRC32C (keep_crc32c), so zstd's own content
	 * checksum would only repeat that work. */
	ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 0);
	return c;
}

void keep_codec_free(struct keep_codec *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	if (c->scratch)
		sodium_memzero(c->scratch, c->scratch_size);
	free(c->scratch);
	if (c->opened)
		sodium_memzero(c->opened, c->opened_size);
	free(c->opened);
	free(c);
}

void keep_hash(const void *buf, size_t len, uint8_t out[KEEP_HASH_BYTES])
{
	crypto_generichash(out, KEEP_HASH_BYTES, buf, len, NULL, 0);
}

_Static_assert(sizeof(crypto_generichash_state) <=
		       sizeof(((struct keep_hash_state *)0)->opaque),
	       "hash state size");
_Static_assert(_Alignof(crypto_generichash_state) <=
		       _Alignof(struct keep_hash_state),
	       "hash state alignment");

static crypto_generichash_state *hash_state(struct keep_hash_state *st)
{
	return (crypto_generichash_state *)(void *)st->opaque;
}

void keep_hash_init(struct keep_hash_state *st)
{
	crypto_generichash_init(hash_state(st), NULL, 0, KEEP_HASH_BYTES);
}

void keep_hash_update(struct keep_hash_state *st, const void *buf, size_t len)
{
	crypto_generichash_update(hash_state(st), buf, len);
}

void keep_hash_final(struct keep_hash_state *st, uint8_t out[KEEP_HASH_BYTES])
{
	crypto_generichash_final(hash_state(st), out, KEEP_HASH_BYTES);
}

/*
 * Compressing data that hardly compresses is the largest cost of writing
 * it (zstd at level 1 runs at about 500 MB/s over random bytes, as fast as
 * the hash, and was 41% of the daemon's time writing fio's buffers, which
 * it shrinks by 10%).  So a block of PROBE_MIN bytes or more is first tried
 * as a sample of PROBE_SLICES slices of PROBE_SLICE bytes spread over it:
 * when zstd takes less than 1/8 off the sample, the block is stored as it
 * is, for an eighth of the work (the same 1/8 rule as ZFS's).  The sample
 * is compressed at the block's own level, so skewed bytes (base64, hex)
 * count as compressible too.  On real data the sample almost never errs
 * (a tar of /usr/include, JSON lines, base64, a SQLite database and a
 * shared library lost 3 KB of 70 MB of savings); what it cannot see is a
 * repeat farther apart than a slice, and such a block is stored raw (dedup
 * still applies to it as a whole).
 */
#define PROBE_SLICE 1024
#define PROBE_SLICES 4
#define PROBE_MIN (4 * PROBE_SLICE * PROBE_SLICES)

static bool incompressible(struct keep_codec *c, const uint8_t *buf,
			   size_t len)
{
	uint8_t sample[PROBE_SLICE * PROBE_SLICES];
	size_t n;

	for (int i = 0; i < PROBE_SLICES; i++)
		memcpy(sample + i * PROBE_SLICE, buf + len / PROBE_SLICES * i,
		       PROBE_SLICE);
	n = ZSTD_compress2(c->cctx, c->scratch, c->scratch_size, sample,
			   sizeof(sample));
	sodium_memzero(sample, sizeof(sample)); /* may be a secret's */
	return ZSTD_isError(n) || n > sizeof(sample) - sizeof(sample) / 8;
}

int keep_encode(struct keep_codec *c, const void *buf, size_t len, void **out,
		size_t *outlen, unsigned *flags)
{
	size_t cap = ZSTD_compressBound(len), n;
	void *dst;

	if (cap < ZSTD_compressBound(PROBE_SLICE * PROBE_SLICES))
		cap = ZSTD_compressBound(PROBE_SLICE * PROBE_SLICES);
	if (cap > c->scratch_size) {
		void *p = realloc(c->scratch, cap);
		if (!p)
			return KEEP_E_NOMEM;
		c->scratch = p;
		c->scratch_size = cap;
	}
	if (len >= PROBE_MIN && incompressible(c, buf, len))
		n = len;
	else
		n = ZSTD_compress2(c->cctx, c->scratch, cap, buf, len);
	if (ZSTD_isError(n) || n >= len) {
		/* incompressible: the caller stores its own bytes */
		*out = NULL;
		*outlen = len;
		*flags = 0;
		return 0;
	}
	dst = malloc(n);
	if (!dst)
		return KEEP_E_NOMEM;
	memcpy(dst, c->scratch, n);
	*out = dst;
	*outlen = n;
	*flags = BLOB_ZSTD;
	return 0;
}

int keep_decode(struct keep_codec *c, const void *src, size_t srclen,
		unsigned flags, void *dst, size_t size)
{
	size_t n;

	if (!(flags & BLOB_ZSTD)) {
		if (srclen != size)
			return KEEP_CORRUPT_BKPT("raw blob has the wrong size");
		memcpy(dst, src, size);
		return 0;
	}
	n = ZSTD_decompressDCtx(c->dctx, dst, size, src, srclen);
	if (ZSTD_isError(n) || n != size)
		return KEEP_CORRUPT_BKPT("blob does not decode");
	return 0;
}

/* A larger buffer for plaintext: the old one is wiped, not left to
 * realloc. */
static int grow(void **p, size_t *cap, size_t want)
{
	if (want <= *cap)
		return 0;
	void *q = malloc(want);
	if (!q)
		return KEEP_E_NOMEM;
	if (*p) {
		sodium_memzero(*p, *cap);
		free(*p);
	}
	*p = q;
	*cap = want;
	return 0;
}

/*
 * What a seal is bound to: the blob's keyed hash, its decoded size and
 * whether it is compressed, so that none of the row's clear fields can be
 * changed (or the blob moved to another row) without the seal failing.
 */
#define SEAL_AD_BYTES (KEEP_HASH_BYTES + 8 + 4)

static void seal_ad(uint8_t ad[SEAL_AD_BYTES], const uint8_t *hash,
		    uint64_t size, unsigned flags)
{
	uint32_t f = flags & BLOB_ZSTD;

	memcpy(ad, hash, KEEP_HASH_BYTES);
	for (int i = 0; i < 8; i++)
		ad[KEEP_HASH_BYTES + i] = (uint8_t)(size >> (8 * i));
	for (int i = 0; i < 4; i++)
		ad[KEEP_HASH_BYTES + 8 + i] = (uint8_t)(f >> (8 * i));
}

int keep_pack(struct keep_codec *c, const struct keep_keys *keys,
	      const void *buf, size_t len, uint8_t hash[KEEP_HASH_BYTES],
	      void **out, size_t *outlen, unsigned *flags, uint32_t *crc)
{
	void *enc;
	size_t enclen;
	int rc;

	if (keys)
		crypt_hash(keys, buf, len, hash);
	else
		keep_hash(buf, len, hash);
	rc = keep_encode(c, buf, len, &enc, &enclen, flags);
	if (rc)
		return rc;
	if (keys) {
		uint8_t *sealed = malloc(enclen + CRYPT_OVERHEAD);
		if (!sealed) {
			free(enc);
			return KEEP_E_NOMEM;
		}
		uint8_t ad[SEAL_AD_BYTES];
		seal_ad(ad, hash, len, *flags);
		crypt_seal(keys, enc ? enc : buf, enclen, ad, sizeof(ad),
			   sealed);
		free(enc);
		enc = sealed;
		enclen += CRYPT_OVERHEAD;
		*flags |= BLOB_SEALED;
	}
	*out = enc;
	*outlen = enclen;
	*crc = keep_crc32c(enc ? enc : buf, enclen);
	return 0;
}

int keep_unpack(struct keep_codec *c, bool encrypted,
		const struct keep_keys *keys, const uint8_t *hash,
		const void *src, size_t srclen, unsigned flags, uint32_t crc,
		void *dst, size_t size, const char **why)
{
	int rc;

	*why = NULL;
	if (keep_crc32c(src, srclen) != crc) {
		*why = "stored bytes do not match their checksum";
		return KEEP_E_CORRUPT;
	}
	if (flags & ~(unsigned)(BLOB_ZSTD | BLOB_SEALED)) {
		*why = "has flags this build does not know";
		return KEEP_E_CORRUPT;
	}
	/* an encrypted store holds nothing but sealed blobs: a clear one
	 * was put there behind its back */
	if (encrypted != !!(flags & BLOB_SEALED)) {
		*why = encrypted ? "is not sealed in an encrypted store"
				 : "is sealed in a plain store";
		return KEEP_E_CORRUPT;
	}
	if (flags & BLOB_SEALED) {
		if (!keys)
			return KEEP_E_NEEDKEY;
		if (srclen < CRYPT_OVERHEAD) {
			*why = "is too short to be sealed";
			return KEEP_E_CORRUPT;
		}
		size_t n = srclen - CRYPT_OVERHEAD;
		/* a raw blob opens straight into dst */
		void *to = dst;
		if (flags & BLOB_ZSTD) {
			rc = grow(&c->opened, &c->opened_size, n ? n : 1);
			if (rc)
				return rc;
			to = c->opened;
		} else if (n != size) {
			*why = "has the wrong size";
			return KEEP_E_CORRUPT;
		}
		uint8_t ad[SEAL_AD_BYTES];
		seal_ad(ad, hash, size, flags);
		if (crypt_open(keys, src, srclen, ad, sizeof(ad), to) != 0) {
			*why = "seal does not open (damaged, or not of this "
			       "store)";
			return KEEP_E_CORRUPT;
		}
		src = to;
		srclen = n;
		if (!(flags & BLOB_ZSTD))
			return 0;
	}
	rc = keep_decode(c, src, srclen, flags & BLOB_ZSTD, dst, size);
	if (rc == KEEP_E_CORRUPT)
		*why = "does not decode";
	return rc;
}

size_t keep_trim_zeros(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* whole 64-byte chunks from the end, then the remaining bytes */
	while (len >= 64) {
		uint64_t w[8];
		memcpy(w, p + len - 64, 64);
		if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
			break;
		len -= 64;
	}
	while (len > 0 && p[len - 1] == 0)
		len--;
	return len;
}

void keep_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

void keep_wipe(void *buf, size_t len)
{
	sodium_memzero(buf, len);
}

/*
 * CRC32C (Castagnoli) of stored blob bytes, checked on every read: a
 * damaged blob is never decoded or returned.  SSE4.2 computes it at many
 * GB/s; other machines use a table.
 */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
	pthread_once(&crc_once, crc_init);
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
		      crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
		      crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
		      crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

/*
 * Combining CRCs: in the reflected representation (bit 31 is the
 * coefficient of x^0) the CRC of A||B is CRC(A) * x^(8|B|) + CRC(B) modulo
 * the polynomial, for the usual pre- and post-inverted CRC.  That lets
 * three independent streams run at once, which the crc32 instruction's
 * latency otherwise forbids.
 */
#define CRC32C_POLY 0x82f63b78u

static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	uint32_t prod = 0;

	for (int k = 0; k < 32; k++) {
		if (a & (0x80000000u >> k))
			prod ^= b;
		b = b & 1 ? (b >> 1) ^ CRC32C_POLY : b >> 1;
	}
	return prod;
}

/* x^(8n) modulo the polynomial */
static uint32_t x8n(uint64_t n)
{
	uint32_t r = 0x80000000u, base = 0x80000000u >> 8;

	for (; n; n >>= 1) {
		if (n & 1)
			r = gf_mul(r, base);
		base = gf_mul(base, base);
	}
	return r;
}

static uint32_t crc_combine(uint32_t a, uint32_t b, uint64_t blen)
{
	return gf_mul(a, x8n(blen)) ^ b;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw1(uint32_t crc,
							   const uint8_t *p,
							   size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}

/* Pre-inverted register in, register out (not post-inverted). */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc,
							  const uint8_t *p,
							  size_t len)
{
	static __thread uint64_t cached_len;
	static __thread uint32_t cached_shift;
	size_t third = (len / 3) & ~(size_t)7;

	if (third < 1024)
		return crc_hw1(crc, p, len);
	uint64_t c0 = crc, c1 = 0xffffffffu, c2 = 0xffffffffu;
	const uint8_t *p1 = p + third, *p2 = p + 2 * third;
	for (size_t i = 0; i < third; i += 8) {
		uint64_t w0, w1, w2;
		memcpy(&w0, p + i, 8);
		memcpy(&w1, p1 + i, 8);
		memcpy(&w2, p2 + i, 8);
		c0 = __builtin_ia32_crc32di(c0, w0);
		c1 = __builtin_ia32_crc32di(c1, w1);
		c2 = __builtin_ia32_crc32di(c2, w2);
	}
	if (cached_len != third) {
		cached_shift = x8n(third);
		cached_len = third;
	}
	/* combine the finished (post-inverted) CRCs, then carry on */
	uint32_t a = ~(uint32_t)c0, b = ~(uint32_t)c1, c = ~(uint32_t)c2;
	uint32_t ab = gf_mul(a, cached_shift) ^ b;
	uint32_t abc = gf_mul(ab, cached_shift) ^ c;
	return crc_hw1(~abc, p + 3 * third, len - 3 * third);
}
#endif

uint32_t keep_crc32c(const void *buf, size_t len)
{
	uint32_t crc = 0xffffffffu;

#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(crc, buf, len);
#endif
	return ~crc_soft(crc, buf, len);
}

/* For tests: the portable CRC and the combination rule. */
uint32_t keep_crc32c_soft(const void *buf, size_t len)
{
	return ~crc_soft(0xffffffffu, buf, len);
}

uint32_t keep_crc32c_combine(uint32_t a, uint32_t b, uint64_t blen)
{
	return crc_combine(a, b, blen);
}
