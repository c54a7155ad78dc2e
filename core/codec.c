/*
 * codec.c - content hashing and compression of blocks.
 *
 * A block's identity is the BLAKE2b-256 hash of its decoded bytes, so equal
 * content is stored once across files and time.  Content is compressed
 * with zstd at a fast level and stored raw when that does not make it
 * smaller.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "keep_i.h"

#define KEEP_ZSTD_LEVEL 1

struct keep_codec {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
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
	/* A checksum of the decoded content lets a damaged frame be caught. */
	ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 1);
	return c;
}

void keep_codec_free(struct keep_codec *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c);
}

void keep_hash(const void *buf, size_t len, uint8_t out[KEEP_HASH_BYTES])
{
	crypto_generichash(out, KEEP_HASH_BYTES, buf, len, NULL, 0);
}

int keep_encode(struct keep_codec *c, const void *buf, size_t len, void **out,
		size_t *outlen, unsigned *flags)
{
	size_t cap = ZSTD_compressBound(len);
	void *dst = malloc(cap);
	size_t n;

	if (!dst)
		return KEEP_E_NOMEM;
	n = ZSTD_compress2(c->cctx, dst, cap, buf, len);
	if (!ZSTD_isError(n) && n < len) {
		*out = dst;
		*outlen = n;
		*flags = BLOB_ZSTD;
		return 0;
	}
	/* incompressible: keep the raw bytes */
	if (cap < len) {
		void *p = realloc(dst, len);
		if (!p) {
			free(dst);
			return KEEP_E_NOMEM;
		}
		dst = p;
	}
	memcpy(dst, buf, len);
	*out = dst;
	*outlen = len;
	*flags = 0;
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

bool keep_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	const uint64_t *w;
	size_t i = 0;

	while (i < len && ((uintptr_t)(p + i) & 7))
		if (p[i++])
			return false;
	w = (const uint64_t *)(p + i);
	for (; i + 64 <= len; i += 64, w += 8)
		if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
			return false;
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

void keep_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}
