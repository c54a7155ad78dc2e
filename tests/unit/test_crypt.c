/*
 * test_crypt.c - the key material of encrypted stores (core/crypt.c, an
 * internal interface, hence keep_i.h): a wrapped master key opens with
 * the passphrase or key file it was wrapped with and with nothing else
 * (another passphrase, another or a truncated key file, a damaged wrap);
 * re-wrapping keeps the master key; the stored text form round-trips and
 * refuses garbage; keyed hashes differ between stores and from plain
 * BLAKE2b; sealed blobs open only with their key and associated data and
 * any flipped bit is caught.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "keep_i.h"
#include "tap.h"

/* fast Argon2id limits for the test; real stores use stronger ones */
#define OPS crypto_pwhash_OPSLIMIT_MIN
#define MEM crypto_pwhash_MEMLIMIT_MIN

static void t_wrap(void)
{
	struct keep_keys *k = NULL, *k2 = NULL;
	struct keep_wrap w, w2, parsed;
	uint8_t keyfile[32], other[32];
	char text[512];

	ok(crypt_keys_new(&k) == 0, "a new master key");
	ok(crypt_wrap(k, CRYPT_WRAP_PASSPHRASE, "correct horse", 13, OPS, MEM,
		      &w) == 0,
	   "wrapped under a passphrase");
	ok(crypt_unwrap(&w, "correct horse", 13, &k2) == 0 &&
		   !memcmp(k->master, k2->master, KEEP_KEY_BYTES) &&
		   !memcmp(k->seal_key, k2->seal_key, KEEP_KEY_BYTES) &&
		   !memcmp(k->hash_key, k2->hash_key, KEEP_KEY_BYTES),
	   "the passphrase opens it: the same keys");
	crypt_keys_free(k2);
	k2 = NULL;
	is_int(crypt_unwrap(&w, "correct horsf", 13, &k2), EACCES,
	       "another passphrase does not");
	is_int(crypt_unwrap(&w, "correct hors", 12, &k2), EACCES,
	       "nor a shorter one");
	ok(k2 == NULL, "and hands out nothing");

	randombytes_buf(keyfile, sizeof(keyfile));
	randombytes_buf(other, sizeof(other));
	ok(crypt_wrap(k, CRYPT_WRAP_KEYFILE, keyfile, 32, 0, 0, &w2) == 0,
	   "wrapped under a key file");
	ok(crypt_unwrap(&w2, keyfile, 32, &k2) == 0 &&
		   !memcmp(k->master, k2->master, KEEP_KEY_BYTES),
	   "the key file opens it");
	crypt_keys_free(k2);
	k2 = NULL;
	is_int(crypt_unwrap(&w2, other, 32, &k2), EACCES,
	       "another key file does not");
	is_int(crypt_unwrap(&w2, keyfile, 31, &k2), EINVAL,
	       "a truncated key file is refused");

	/* re-wrapping (a passphrase change) keeps the master key */
	struct keep_wrap w3;
	ok(crypt_wrap(k, CRYPT_WRAP_PASSPHRASE, "new pass", 8, OPS, MEM, &w3) ==
			   0 &&
		   crypt_unwrap(&w3, "new pass", 8, &k2) == 0 &&
		   !memcmp(k->master, k2->master, KEEP_KEY_BYTES),
	   "a new wrap of the same key opens with the new passphrase");
	crypt_keys_free(k2);
	k2 = NULL;
	is_int(crypt_unwrap(&w3, "correct horse", 13, &k2), EACCES,
	       "and not with the old one");

	/* the stored form */
	ok(crypt_wrap_format(&w, text, sizeof(text)) == 0 &&
		   crypt_wrap_parse(text, &parsed) == 0 &&
		   !memcmp(&parsed, &w, sizeof(w)),
	   "the text form round-trips: %.40s...", text);
	ok(crypt_wrap_format(&w, text, 20) == ENAMETOOLONG,
	   "a short buffer is refused");
	crypt_wrap_format(&w, text, sizeof(text));
	text[strlen(text) - 1] = 'g';
	is_int(crypt_wrap_parse(text, &parsed), KEEP_E_CORRUPT,
	       "a non-hex digit is refused");
	crypt_wrap_format(&w, text, sizeof(text));
	text[strlen(text) - 2] = '\0';
	is_int(crypt_wrap_parse(text, &parsed), KEEP_E_CORRUPT,
	       "a truncated form is refused");
	is_int(crypt_wrap_parse("v2:1:2:3:00:00:00", &parsed), KEEP_E_CORRUPT,
	       "an unknown version is refused");
	crypt_wrap_format(&w, text, sizeof(text));
	/* a flipped bit in the sealed key: the passphrase no longer opens */
	crypt_wrap_parse(text, &parsed);
	parsed.sealed[5] ^= 1;
	is_int(crypt_unwrap(&parsed, "correct horse", 13, &k2), EACCES,
	       "a damaged wrap does not open");
	parsed = w;
	parsed.salt[0] ^= 1;
	is_int(crypt_unwrap(&parsed, "correct horse", 13, &k2), EACCES,
	       "nor one with another salt");
	parsed = w;
	parsed.opslimit = 0;
	is_int(crypt_unwrap(&parsed, "correct horse", 13, &k2), EINVAL,
	       "limits out of range are refused");
	crypt_keys_free(k);
}

static void t_seal(void)
{
	struct keep_keys *a = NULL, *b = NULL;
	uint8_t data[5000], sealed[5000 + CRYPT_OVERHEAD], back[5000];
	uint8_t ha[KEEP_HASH_BYTES], hb[KEEP_HASH_BYTES], plain[KEEP_HASH_BYTES];
	const char ad[] = "blob 42";
	int caught = 0;

	crypt_keys_new(&a);
	crypt_keys_new(&b);
	randombytes_buf(data, sizeof(data));
	crypt_hash(a, data, sizeof(data), ha);
	crypt_hash(b, data, sizeof(data), hb);
	keep_hash(data, sizeof(data), plain);
	ok(memcmp(ha, hb, sizeof(ha)) && memcmp(ha, plain, sizeof(ha)),
	   "keyed hashes differ between keys and from the plain hash");

	crypt_seal(a, data, sizeof(data), ad, sizeof(ad), sealed);
	ok(crypt_open(a, sealed, sizeof(sealed), ad, sizeof(ad), back) == 0 &&
		   !memcmp(back, data, sizeof(data)),
	   "a sealed blob opens to its bytes");
	ok(memmem(sealed, sizeof(sealed), data + 100, 32) == NULL,
	   "no run of its bytes is in the sealed form");
	is_int(crypt_open(b, sealed, sizeof(sealed), ad, sizeof(ad), back),
	       KEEP_E_CORRUPT, "another store's key does not open it");
	is_int(crypt_open(a, sealed, sizeof(sealed), "blob 43", 8, back),
	       KEEP_E_CORRUPT, "nor does it open as another blob");
	is_int(crypt_open(a, sealed, CRYPT_OVERHEAD - 1, ad, sizeof(ad), back),
	       KEEP_E_CORRUPT, "a blob shorter than a seal is damaged");
	for (size_t bit = 0; bit < sizeof(sealed) * 8; bit += 97) {
		sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		caught += crypt_open(a, sealed, sizeof(sealed), ad, sizeof(ad),
				     back) == KEEP_E_CORRUPT;
		sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	is_int(caught, (int)((sizeof(sealed) * 8 + 96) / 97),
	       "every flipped bit is caught");
	uint8_t twice[5000 + CRYPT_OVERHEAD];
	crypt_seal(a, data, sizeof(data), ad, sizeof(ad), twice);
	ok(memcmp(twice, sealed, sizeof(sealed)) != 0,
	   "sealing twice gives two forms (a fresh nonce each time)");
	crypt_keys_free(a);
	crypt_keys_free(b);
}

int main(void)
{
	t_wrap();
	t_seal();
	return tap_done();
}
