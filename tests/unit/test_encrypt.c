/*
 * test_encrypt.c - encrypted stores through the public interface: a store
 * made with a key file or a passphrase opens with it and with nothing
 * else, and a refused open changes no byte of the store; without the key
 * the history is readable but no file's contents; file contents appear
 * nowhere in the store's files, WAL included; equal blocks still dedup,
 * under hashes that are not the plain BLAKE2b of the content; a key
 * change makes the new secret work and the old one fail, with the data
 * untouched; fsck --data verifies every seal and reports a damaged one;
 * a damaged blob fails the read of its file only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keep.h"
#include "keep_i.h" /* keep_crc32c: a forger's checksum */
#include "tap.h"
#include "unit.h"
#include "unit_sql.h"

#define MARKER "MARKER-7f3a9c-secret-api-token"

static uint8_t keyfile[KEEP_KEYFILE_BYTES], other[KEEP_KEYFILE_BYTES];
static const struct keep_secret key = {KEEP_SECRET_KEYFILE, keyfile,
				       sizeof(keyfile)};
static const struct keep_secret wrong = {KEEP_SECRET_KEYFILE, other,
					 sizeof(other)};

static int open_s(const char *name, unsigned flags,
		  const struct keep_secret *sec, struct keep_store **s)
{
	*s = NULL;
	return keep_store_open_secret(unit_path(name), flags, sec, s);
}

/* What unlocks the store (0: plain), or the error telling it. */
static int kind_of(const char *name)
{
	int kind = -100, rc = keep_store_encrypted(unit_path(name), &kind);

	return rc ? rc : kind;
}

/* Does the file at path hold the bytes of needle?  -1 if unreadable. */
static int file_has(const char *path, const void *needle, size_t n)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	int found = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		char *buf = malloc((size_t)st.st_size);
		if (buf && read(fd, buf, (size_t)st.st_size) == st.st_size)
			found = memmem(buf, (size_t)st.st_size, needle, n) != NULL;
		free(buf);
	}
	close(fd);
	return found;
}

/* How many files of the store directory hold needle (checked: db, WAL). */
static int store_has(const char *name, const void *needle, size_t n,
		     int *checked)
{
	static const char *const files[] = {"store.db", "store.db-wal"};
	char path[4300];
	int hits = 0;

	*checked = 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", unit_path(name), files[i]);
		int r = file_has(path, needle, n);
		if (r >= 0)
			(*checked)++;
		if (r > 0)
			hits++;
	}
	return hits;
}

/* A checksum of every file in the store directory. */
static void store_sum(const char *name, uint8_t out[32])
{
	static const char *const files[] = {"store.db", "store.db-wal",
					    "store.db-shm", "lock"};
	crypto_generichash_state st;
	char path[4300];

	crypto_generichash_init(&st, NULL, 0, 32);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", unit_path(name), files[i]);
		int fd = open(path, O_RDONLY);
		crypto_generichash_update(&st, (const uint8_t *)files[i],
					  strlen(files[i]) + 1);
		if (fd < 0)
			continue;
		uint8_t buf[65536];
		ssize_t r;
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			crypto_generichash_update(&st, buf, (size_t)r);
		close(fd);
	}
	crypto_generichash_final(&st, out, 32);
}

static void t_keyfile(void)
{
	struct keep_init_opts o = {.uid = (uint32_t)getuid(),
				   .gid = (uint32_t)getgid(),
				   .encrypt = &key};
	struct keep_store *s = NULL;
	uint8_t data[100000], back[100000], sum1[32], sum2[32];
	uint64_t ino, ino2, ino3;
	size_t n = 0;
	int checked;

	is_int(keep_store_init(unit_path("enc"), &o), 0,
	       "init an encrypted store with a key file");
	is_int(kind_of("enc"), KEEP_SECRET_KEYFILE,
	       "it is encrypted, with a key file");
	is_int(open_s("enc", KEEP_OPEN_WRITE, &key, &s), 0,
	       "it opens with its key file");
	if (!s)
		return;
	unit_fill_text(data, sizeof(data));
	memcpy(data + 40000, MARKER, sizeof(MARKER) - 1);
	ok((ino = unit_file(s, KEEP_ROOT_INO, "token.json", data,
			    sizeof(data))) != 0,
	   "a file holding a marker");
	ok((ino2 = unit_file(s, KEEP_ROOT_INO, "copy.json", data,
			     sizeof(data))) != 0,
	   "and a copy of it");
	ok(unit_commit(s) != 0, "committed");
	is_int(store_has("enc", MARKER, sizeof(MARKER) - 1, &checked), 0,
	       "the marker is in no file of the store right after the commit");
	is_int(checked, 2, "(the database and its WAL were both read)");
	ok(unit_same(s, KEEP_LIVE, ino, data, sizeof(data)),
	   "the file reads back");

	struct keep_stats st;
	is_int(keep_stats(s, &st), 0, "stats");
	is_int((int)st.format_version, 2, "format version 2");
	is_int(st.encrypted, 1, "stats say encrypted");
	is_int((int)st.blobs, 4, "the copy shares the original's blobs "
				 "(dedup under keyed hashes)");
	uint8_t h[32];
	crypto_generichash(h, 32, data, 32768, NULL, 0);
	char q[256];
	snprintf(q, sizeof(q), "SELECT count(*) FROM blobs WHERE hash = x'");
	for (int i = 0; i < 32; i++)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "%02x", h[i]);
	snprintf(q + strlen(q), sizeof(q) - strlen(q), "'");
	is_int((int)unit_sql_int("enc", q), 0,
	       "no blob is found by the plain hash of its content");
	keep_store_close(s);
	s = NULL;
	is_int(store_has("enc", MARKER, sizeof(MARKER) - 1, &checked), 0,
	       "nor after a clean close");

	/* refusals change nothing */
	store_sum("enc", sum1);
	is_int(open_s("enc", KEEP_OPEN_WRITE, &wrong, &s), KEEP_E_BADKEY,
	       "another key file is refused");
	uint8_t shortkey[31];
	memcpy(shortkey, keyfile, sizeof(shortkey));
	struct keep_secret trunc = {KEEP_SECRET_KEYFILE, shortkey, 31};
	is_int(open_s("enc", KEEP_OPEN_WRITE, &trunc, &s), KEEP_E_BADKEY,
	       "a truncated key file is refused");
	struct keep_secret pass = {KEEP_SECRET_PASSPHRASE, "hunter2", 7};
	is_int(open_s("enc", KEEP_OPEN_WRITE, &pass, &s), KEEP_E_BADKEY,
	       "a passphrase is refused (the store wants a key file)");
	is_int(open_s("enc", KEEP_OPEN_WRITE, NULL, &s), KEEP_E_NEEDKEY,
	       "a writable open without the key is refused");
	is_int(open_s("enc", KEEP_OPEN_RDONLY, &wrong, &s), KEEP_E_BADKEY,
	       "a read-only open with the wrong key too");
	ok(s == NULL, "no handle was handed out");
	store_sum("enc", sum2);
	ok(memcmp(sum1, sum2, 32) == 0,
	   "the store's files are byte for byte as before");

	/* without the key: metadata yes, contents no */
	is_int(open_s("enc", KEEP_OPEN_RDONLY, NULL, &s), 0,
	       "a read-only open without the key");
	if (s) {
		struct keep_attr a;
		is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "token.json", &a),
		       0, "names are readable");
		is_int((int)a.size, (int)sizeof(data), "so are sizes");
		is_int(keep_read(s, KEEP_LIVE, ino, 0, sizeof(back), back, &n),
		       KEEP_E_NEEDKEY, "contents are not: KEEP_E_NEEDKEY");
		is_int(keep_check(s, 0, NULL, NULL, NULL), 0,
		       "fsck without --data runs without the key");
		is_int(keep_check(s, 1, NULL, NULL, NULL), KEEP_E_NEEDKEY,
		       "fsck --data needs it");
		keep_store_close(s);
		s = NULL;
	}
	store_sum("enc", sum1); /* a read-only open leaves SQLite's shm */

	is_int(open_s("enc", KEEP_OPEN_RDONLY, &wrong, &s), KEEP_E_BADKEY,
	       "a read-only open with the wrong key, with a WAL there");
	store_sum("enc", sum2);
	ok(memcmp(sum1, sum2, 32) == 0, "changes nothing either");

	/* a damaged blob: fsck --data names it, a read fails, others do not */
	is_int(open_s("enc", KEEP_OPEN_WRITE, &key, &s), 0, "reopened");
	if (!s)
		return;
	ok((ino3 = unit_file(s, KEEP_ROOT_INO, "other", "other bytes", 11)) != 0,
	   "a third file");
	ok(unit_commit(s) != 0, "committed");
	is_int(keep_check(s, 1, NULL, NULL, NULL), 0, "fsck --data: clean");
	keep_store_close(s);
	s = NULL;
	/* another blob's sealed bytes, with their CRC, in the place of
	 * token.json's second block: only the seal can tell */
	char upd[512];
	snprintf(upd, sizeof(upd),
		 "UPDATE blobs SET (data, crc) = (SELECT data, crc FROM blobs "
		 "WHERE id = (SELECT blob FROM blocks WHERE ino = %llu AND "
		 "idx = 0)) WHERE id = (SELECT blob FROM blocks WHERE ino = "
		 "%llu AND idx = 1)",
		 (unsigned long long)ino, (unsigned long long)ino);
	is_int((int)unit_sql("enc", upd), 1,
	       "token.json's second block holds its first block's seal");
	is_int(open_s("enc", KEEP_OPEN_RDONLY, &key, &s), 0, "opened");
	if (!s)
		return;
	uint64_t problems = 0;
	is_int(keep_check(s, 1, NULL, NULL, &problems), KEEP_E_CORRUPT,
	       "fsck --data finds it");
	is_int((int)problems, 1, "one problem");
	is_int(keep_read(s, KEEP_LIVE, ino, 32768, 100, back, &n), EIO,
	       "the damaged block does not read: EIO");
	is_int(keep_read(s, KEEP_LIVE, ino, 0, 100, back, &n), 0,
	       "the file's other blocks do");
	ok(n == 100 && !memcmp(back, data, 100), "with the right bytes");
	ok(unit_same(s, KEEP_LIVE, ino3, "other bytes", 11),
	   "another file reads correctly");
	keep_store_close(s);
	s = NULL;

	/* a forger who can write the database: a clear blob of their own in
	 * the place of token.json's third block, with a right checksum */
	static const char forged[] = "forged content";
	char q2[600];
	snprintf(q2, sizeof(q2),
		 "UPDATE blobs SET data = CAST('%s' AS BLOB), size = %zu, "
		 "csize = %zu, flags = 0, crc = %u WHERE id = (SELECT blob FROM "
		 "blocks WHERE ino = %llu AND idx = 2)",
		 forged, sizeof(forged) - 1, sizeof(forged) - 1,
		 (unsigned)keep_crc32c(forged, sizeof(forged) - 1),
		 (unsigned long long)ino);
	is_int((int)unit_sql("enc", q2), 1,
	       "a clear blob forged into token.json's third block");
	/* and the compression flag of the fourth (sealed, compressed) blob
	 * cleared, its size made to fit */
	snprintf(q2, sizeof(q2),
		 "UPDATE blobs SET flags = 2, size = csize - 40 WHERE id = "
		 "(SELECT blob FROM blocks WHERE ino = %llu AND idx = 3) AND "
		 "flags = 3",
		 (unsigned long long)ino);
	is_int((int)unit_sql("enc", q2), 1,
	       "a sealed blob's compression flag cleared");
	is_int(open_s("enc", KEEP_OPEN_RDONLY, &key, &s), 0, "opened");
	if (!s)
		return;
	is_int(keep_read(s, KEEP_LIVE, ino, 2 * 32768, 100, back, &n), EIO,
	       "the forged clear block does not read: EIO");
	is_int(keep_read(s, KEEP_LIVE, ino, 3 * 32768, 100, back, &n), EIO,
	       "nor the block whose flag was changed");
	problems = 0;
	is_int(keep_check(s, 1, NULL, NULL, &problems), KEEP_E_CORRUPT,
	       "fsck --data finds both");
	is_int((int)problems, 3, "three problems now");
	keep_store_close(s);
}

static void t_passphrase(void)
{
	struct keep_secret pass = {KEEP_SECRET_PASSPHRASE,
				   "correct horse battery", 21};
	struct keep_secret pass2 = {KEEP_SECRET_PASSPHRASE, "staple", 6};
	struct keep_init_opts o = {.uid = (uint32_t)getuid(),
				   .gid = (uint32_t)getgid(),
				   .encrypt = &pass};
	struct keep_store *s = NULL;
	uint64_t ino;

	is_int(keep_store_init(unit_path("pw"), &o), 0,
	       "init with a passphrase");
	is_int(kind_of("pw"), KEEP_SECRET_PASSPHRASE,
	       "it wants a passphrase");
	is_int(open_s("pw", KEEP_OPEN_WRITE, &pass, &s), 0,
	       "it opens with it");
	if (!s)
		return;
	ok((ino = unit_file(s, KEEP_ROOT_INO, "f", "contents", 8)) != 0,
	   "a file");
	ok(unit_commit(s) != 0, "committed");
	is_int(keep_key_change(s, &pass2, &pass2), KEEP_E_BADKEY,
	       "a key change with a wrong old passphrase is refused");
	is_int(keep_key_change(s, &pass, &key), 0,
	       "the passphrase changed for a key file");
	keep_store_close(s);
	s = NULL;
	is_int(kind_of("pw"), KEEP_SECRET_KEYFILE,
	       "now it wants a key file");
	is_int(open_s("pw", KEEP_OPEN_RDONLY, &pass, &s), KEEP_E_BADKEY,
	       "the old passphrase no longer opens it");
	is_int(open_s("pw", KEEP_OPEN_WRITE, &key, &s), 0,
	       "the key file does");
	if (!s)
		return;
	ok(unit_same(s, KEEP_LIVE, ino, "contents", 8),
	   "the data is untouched");
	is_int(keep_key_change(s, &key, &pass2), 0, "and back to a passphrase");
	keep_store_close(s);
	s = NULL;
	is_int(open_s("pw", KEEP_OPEN_RDONLY, &key, &s), KEEP_E_BADKEY,
	       "the key file stops working");
	is_int(open_s("pw", KEEP_OPEN_RDONLY, &pass2, &s), 0,
	       "the new passphrase works");
	keep_store_close(s);
}

static void t_plain(void)
{
	struct keep_store *s = unit_store("plain", 0);

	keep_store_close(s);
	s = NULL;
	is_int(kind_of("plain"), 0,
	       "a plain store is not encrypted");
	is_int(open_s("plain", KEEP_OPEN_WRITE, &key, &s), KEEP_E_INVAL,
	       "a key for a plain store is refused");
	is_int(open_s("plain", KEEP_OPEN_WRITE, NULL, &s), 0,
	       "it opens without one");
	if (s) {
		is_int(keep_key_change(s, &key, &key), KEEP_E_INVAL,
		       "a plain store has no key to change");
		struct keep_stats st;
		keep_stats(s, &st);
		is_int((int)st.format_version, 1, "plain stores stay format 1");
		keep_store_close(s);
	}
	struct keep_secret none = {0, NULL, 0};
	struct keep_init_opts o = {.encrypt = &none};
	is_int(keep_store_init(unit_path("bad"), &o), KEEP_E_INVAL,
	       "init with a secret of no kind is refused");
	struct stat st;
	ok(stat(unit_path("bad"), &st) != 0, "and leaves nothing behind");
}

int main(void)
{
	unit_begin("encrypt");
	randombytes_buf(keyfile, sizeof(keyfile));
	randombytes_buf(other, sizeof(other));
	t_keyfile();
	t_passphrase();
	t_plain();
	unit_end();
	return tap_done();
}
