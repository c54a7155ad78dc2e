/*
 * crypt.c - the key material of an encrypted store, and sealing blobs.
 *
 * The building blocks of encryption at rest (DESIGN.md, "Security and
 * integrity"); the store's write and read paths take them up separately.
 *
 * Design notes:
 *
 *  1. A random master key (32 bytes) is the root of everything.  It never
 *     leaves locked, guarded memory (sodium_malloc) but wrapped: sealed
 *     with XChaCha20-Poly1305 under a key-encryption key, which comes from
 *     a passphrase through Argon2id (crypto_pwhash; the salt and the
 *     limits are stored beside the wrapped key, so stronger limits later
 *     do not break older stores) or from a key file of 32 random bytes.
 *     A wrong passphrase or key file fails the tag: EACCES, nothing else
 *     learned.  Changing the passphrase re-wraps the same master key: no
 *     data is rewritten.
 *  2. Two subkeys are derived from the master key (crypto_kdf): one keys
 *     the BLAKE2b hashes that dedup looks blobs up by, so equal content is
 *     not recognisable in the store without the key; one seals the blobs.
 *  3. A sealed blob is nonce (24 random bytes) || ciphertext || tag (16).
 *     The associated data binds it to where it belongs (the blob's keyed
 *     hash), so a blob moved to another row does not open.
 *  4. The wrapped key's stored form is text, so it fits in meta and can be
 *     printed: "v1:KIND:OPS:MEM:SALT:NONCE:SEALED", numbers in decimal,
 *     bytes in hex.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"

#define WRAP_AD "keepfs master key v1"
/* the largest Argon2id limits a wrap may carry: above libsodium's
 * "sensitive" (4 passes over 1 GiB), below what would exhaust a server */
#define WRAP_OPS_MAX 64
#define WRAP_MEM_MAX ((size_t)4 << 30)
#define KDF_CTX "keepfs__" /* crypto_kdf_CONTEXTBYTES (8) */

_Static_assert(sizeof(KDF_CTX) - 1 == crypto_kdf_CONTEXTBYTES,
	       "kdf context length");
_Static_assert(KEEP_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "key length");
_Static_assert(KEEP_KEY_BYTES == crypto_kdf_KEYBYTES, "kdf key length");
_Static_assert(CRYPT_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	       "nonce length");
_Static_assert(CRYPT_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "tag length");
_Static_assert(CRYPT_SALT_BYTES == crypto_pwhash_SALTBYTES, "salt length");

static int derive(struct keep_keys *k)
{
	if (crypto_kdf_derive_from_key(k->hash_key, sizeof(k->hash_key), 1,
				       KDF_CTX, k->master) != 0 ||
	    crypto_kdf_derive_from_key(k->seal_key, sizeof(k->seal_key), 2,
				       KDF_CTX, k->master) != 0)
		return KEEP_E_INVAL;
	return 0;
}

static struct keep_keys *keys_alloc(void)
{
	if (sodium_init() < 0)
		return NULL;
	return sodium_malloc(sizeof(struct keep_keys));
}

void crypt_keys_free(struct keep_keys *k)
{
	if (k)
		sodium_free(k); /* wipes it */
}

int crypt_keys_new(struct keep_keys **out)
{
	struct keep_keys *k = keys_alloc();
	int rc;

	if (!k)
		return KEEP_E_NOMEM;
	crypto_aead_xchacha20poly1305_ietf_keygen(k->master);
	rc = derive(k);
	if (rc) {
		crypt_keys_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

int crypt_keys_same(const struct keep_keys *a, const struct keep_keys *b)
{
	return sodium_memcmp(a->master, b->master, KEEP_KEY_BYTES) == 0;
}

/* The key-encryption key of a wrap (note 1), into guarded memory. */
static int kek_of(const struct keep_wrap *w, const void *secret, size_t len,
		  unsigned char *kek)
{
	if (w->kind == CRYPT_WRAP_KEYFILE) {
		if (len != KEEP_KEY_BYTES)
			return EINVAL;
		/* a key file is random already: hash it to the key size,
		 * bound to this store's salt */
		crypto_generichash(kek, KEEP_KEY_BYTES, secret, len, w->salt,
				   sizeof(w->salt));
		return 0;
	}
	if (w->kind != CRYPT_WRAP_PASSPHRASE)
		return EINVAL;
	/* a damaged wrap must not ask for more than a store ever would */
	if (w->opslimit < crypto_pwhash_OPSLIMIT_MIN ||
	    w->opslimit > WRAP_OPS_MAX ||
	    w->memlimit < crypto_pwhash_MEMLIMIT_MIN ||
	    w->memlimit > WRAP_MEM_MAX)
		return EINVAL;
	if (crypto_pwhash(kek, KEEP_KEY_BYTES, secret, len, w->salt,
			  w->opslimit, w->memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return KEEP_E_NOMEM; /* the memory limit could not be had */
	return 0;
}

int crypt_wrap(const struct keep_keys *k, int kind, const void *secret,
	       size_t len, uint64_t opslimit, size_t memlimit,
	       struct keep_wrap *out)
{
	unsigned char *kek = sodium_malloc(KEEP_KEY_BYTES);
	struct keep_wrap w = {.kind = kind,
			      .opslimit = opslimit,
			      .memlimit = memlimit};
	int rc;

	if (!kek)
		return KEEP_E_NOMEM;
	randombytes_buf(w.salt, sizeof(w.salt));
	randombytes_buf(w.nonce, sizeof(w.nonce));
	rc = kek_of(&w, secret, len, kek);
	if (!rc)
		crypto_aead_xchacha20poly1305_ietf_encrypt(
		    w.sealed, NULL, k->master, KEEP_KEY_BYTES,
		    (const unsigned char *)WRAP_AD, sizeof(WRAP_AD) - 1, NULL,
		    w.nonce, kek);
	sodium_free(kek);
	if (!rc)
		*out = w;
	return rc;
}

int crypt_unwrap(const struct keep_wrap *w, const void *secret, size_t len,
		 struct keep_keys **out)
{
	unsigned char *kek = sodium_malloc(KEEP_KEY_BYTES);
	struct keep_keys *k = keys_alloc();
	int rc;

	if (!kek || !k) {
		sodium_free(kek);
		crypt_keys_free(k);
		return KEEP_E_NOMEM;
	}
	rc = kek_of(w, secret, len, kek);
	if (!rc && crypto_aead_xchacha20poly1305_ietf_decrypt(
		       k->master, NULL, NULL, w->sealed, sizeof(w->sealed),
		       (const unsigned char *)WRAP_AD, sizeof(WRAP_AD) - 1,
		       w->nonce, kek) != 0)
		rc = EACCES; /* wrong passphrase or key, or a damaged wrap */
	sodium_free(kek);
	if (!rc)
		rc = derive(k);
	if (rc) {
		crypt_keys_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

void crypt_hash(const struct keep_keys *k, const void *buf, size_t len,
		uint8_t out[KEEP_HASH_BYTES])
{
	crypto_generichash(out, KEEP_HASH_BYTES, buf, len, k->hash_key,
			   sizeof(k->hash_key));
}

void crypt_seal(const struct keep_keys *k, const void *in, size_t len,
		const void *ad, size_t adlen, uint8_t *out)
{
	randombytes_buf(out, CRYPT_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + CRYPT_NONCE_BYTES, NULL, in, len, ad, adlen, NULL, out,
	    k->seal_key);
}

int crypt_open(const struct keep_keys *k, const uint8_t *in, size_t len,
	       const void *ad, size_t adlen, void *out)
{
	if (len < CRYPT_OVERHEAD)
		return KEEP_E_CORRUPT;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		out, NULL, NULL, in + CRYPT_NONCE_BYTES, len - CRYPT_NONCE_BYTES,
		ad, adlen, in, k->seal_key) != 0)
		return KEEP_E_CORRUPT;
	return 0;
}

/* ---- the stored form (note 4) ---------------------------------------------- */

static void hex(char *dst, const uint8_t *src, size_t n)
{
	sodium_bin2hex(dst, 2 * n + 1, src, n);
}

int crypt_wrap_format(const struct keep_wrap *w, char *buf, size_t len)
{
	char salt[2 * CRYPT_SALT_BYTES + 1], nonce[2 * CRYPT_NONCE_BYTES + 1];
	char sealed[2 * sizeof(w->sealed) + 1];
	int n;

	hex(salt, w->salt, sizeof(w->salt));
	hex(nonce, w->nonce, sizeof(w->nonce));
	hex(sealed, w->sealed, sizeof(w->sealed));
	n = snprintf(buf, len, "v1:%d:%" PRIu64 ":%zu:%s:%s:%s", w->kind,
		     w->opslimit, w->memlimit, salt, nonce, sealed);
	return n < 0 || (size_t)n >= len ? ENAMETOOLONG : 0;
}

static int unhex(const char *src, size_t srclen, uint8_t *dst, size_t n)
{
	size_t got = 0;

	return sodium_hex2bin(dst, n, src, srclen, NULL, &got, NULL) == 0 &&
			       got == n
		       ? 0
		       : -1;
}

int crypt_wrap_parse(const char *text, struct keep_wrap *out)
{
	struct keep_wrap w = {0};
	char salt[64], nonce[64], sealed[128];
	unsigned long long ops;
	size_t mem;
	int kind, used = 0;

	if (sscanf(text, "v1:%d:%llu:%zu:%63[0-9a-f]:%63[0-9a-f]:%127[0-9a-f]%n",
		   &kind, &ops, &mem, salt, nonce, sealed, &used) != 6 ||
	    text[used] != '\0')
		return KEEP_E_CORRUPT;
	w.kind = kind;
	w.opslimit = ops;
	w.memlimit = mem;
	if ((kind != CRYPT_WRAP_PASSPHRASE && kind != CRYPT_WRAP_KEYFILE) ||
	    unhex(salt, strlen(salt), w.salt, sizeof(w.salt)) ||
	    unhex(nonce, strlen(nonce), w.nonce, sizeof(w.nonce)) ||
	    unhex(sealed, strlen(sealed), w.sealed, sizeof(w.sealed)))
		return KEEP_E_CORRUPT;
	*out = w;
	return 0;
}

/* ---- for the store --------------------------------------------------------- */

void keep_secret_wipe(struct keep_secret *secret)
{
	if (!secret || !secret->data)
		return;
	sodium_memzero((void *)secret->data, secret->len);
	secret->len = 0;
}

/* Argon2id's limits for new wraps: libsodium's "moderate" (256 MiB, about
 * a second on a small server), against guessing from a stolen store. */
#define WRAP_OPSLIMIT crypto_pwhash_OPSLIMIT_MODERATE
#define WRAP_MEMLIMIT crypto_pwhash_MEMLIMIT_MODERATE

_Static_assert((int)KEEP_SECRET_PASSPHRASE == (int)CRYPT_WRAP_PASSPHRASE &&
		       (int)KEEP_SECRET_KEYFILE == (int)CRYPT_WRAP_KEYFILE,
	       "secret kinds");
_Static_assert(KEEP_KEYFILE_BYTES == KEEP_KEY_BYTES, "key file size");

int crypt_wrap_secret(const struct keep_keys *k,
		      const struct keep_secret *secret, char *text,
		      size_t len)
{
	struct keep_wrap w;
	int rc;

	if (!secret || (secret->kind != KEEP_SECRET_PASSPHRASE &&
			secret->kind != KEEP_SECRET_KEYFILE))
		return KEEP_E_INVAL;
	rc = crypt_wrap(k, secret->kind, secret->data, secret->len,
			WRAP_OPSLIMIT, WRAP_MEMLIMIT, &w);
	if (rc == EINVAL)
		return KEEP_E_INVAL;
	if (!rc && crypt_wrap_format(&w, text, len) != 0)
		rc = KEEP_E_INVAL;
	sodium_memzero(&w, sizeof(w));
	return rc;
}

int crypt_wrap_kind(const char *text)
{
	struct keep_wrap w;
	int rc = crypt_wrap_parse(text, &w);

	return rc ? rc : w.kind;
}

int crypt_unwrap_secret(const char *text, const struct keep_secret *secret,
			struct keep_keys **out)
{
	struct keep_wrap w;
	int rc = crypt_wrap_parse(text, &w);

	if (rc)
		return KEEP_CORRUPT_BKPT("the store's wrapped key is damaged");
	if (!secret || secret->kind != w.kind)
		return KEEP_E_BADKEY;
	if (w.kind == CRYPT_WRAP_KEYFILE && secret->len != KEEP_KEY_BYTES)
		return KEEP_E_BADKEY; /* a key file of the wrong size */
	rc = crypt_unwrap(&w, secret->data, secret->len, out);
	if (rc == EACCES)
		rc = KEEP_E_BADKEY;
	else if (rc == EINVAL)
		rc = KEEP_CORRUPT_BKPT("the store's wrapped key has "
				       "impossible limits");
	return rc;
}
