/*
 * keep_i.h - private declarations shared by the modules of core/.
 *
 * Module map (each file says what it owns at its top):
 *   log.c    logging, return codes, the corruption breakpoint
 *   codec.c  content hashing (BLAKE2b) and compression (zstd), packing
 *            and unpacking blobs; the only file that includes zstd.h
 *   crypt.c  an encrypted store's keys, keyed hashes and seals (with
 *            codec.c, the only files that include sodium.h)
 *   db.c     every SQL statement of the write path and of views
 *   db_diff.c  the change journal's SQL (with db.c, db_restore.c, gc.c,
 *            db_fsck.c, send.c and receive.c, the only files that
 *            include sqlite3.h)
 *   store.c  store lifecycle, the lock, the commit pipeline, statistics
 *   ns.c     the namespace: lookup, create, link, unlink, rename, xattrs
 *   data.c   file data: the dirty-block cache, read, write, truncate,
 *            holes, copy_range, the decoded-block cache
 *   snap.c   snapshots, the commit list, points in time, view counts
 *   timefmt.c  parsing and formatting points in time
 *   diff.c   what changed between two views (keep_diff)
 *   restore.c  making the live tree what a view was (keep_restore)
 *   db_restore.c  restore's SQL
 *   umap.c   an inode map and growable arrays
 *   fsck.c   consistency checks and repair (keep_check, keep_repair):
 *            which paths in which views a problem affects
 *   db_fsck.c  fsck's queries, garbage, the copy before a repair
 *   stream.c the record format of send streams: writing and reading
 *            records over caller-given functions (no store access)
 *   send.c   what a send stream of a snapshot holds (keep_send)
 *   receive.c  applying a stream to a replica (keep_receive, promote)
 */
#ifndef KEEP_I_H
#define KEEP_I_H

#include <pthread.h>
#include <stdbool.h>
#include <syslog.h>

#include "keep.h"

/* Report corruption at the place it was found: one greppable message, one
 * place for a breakpoint (see keep_corrupt_at in log.c). */
int keep_corrupt_at(const char *file, int line, const char *what);
#define KEEP_CORRUPT_BKPT(what) keep_corrupt_at(__FILE__, __LINE__, (what))

/* Test seam: non-zero (an errno) when KEEP_FAULT names this point. */
int keep_fault(const char *point);

int64_t keep_now_ns(void);	 /* CLOCK_REALTIME */
int64_t keep_monotonic_ns(void); /* CLOCK_MONOTONIC */

/* ---- codec.c ------------------------------------------------------------ */

#define KEEP_HASH_BYTES 32

/* The format a plain store is written in (keep.h: KEEP_FORMAT_VERSION). */
#define KEEP_FORMAT_PLAIN 1

enum {
	BLOB_ZSTD = 1 << 0,   /* data is a zstd frame; otherwise raw bytes */
	BLOB_SEALED = 1 << 1, /* data is sealed (crypt.c) around the above */
};

struct keep_codec; /* per-thread compression state */

int keep_codec_global_init(void);
struct keep_codec *keep_codec_new(void);
void keep_codec_free(struct keep_codec *c);

uint32_t keep_crc32c(const void *buf, size_t len);
uint32_t keep_crc32c_soft(const void *buf, size_t len);
uint32_t keep_crc32c_combine(uint32_t a, uint32_t b, uint64_t blen);
void keep_hash(const void *buf, size_t len, uint8_t out[KEEP_HASH_BYTES]);
/* keep_hash over data that comes in pieces (a send stream's records):
 * init, update any number of times, final (which ends the state). */
struct keep_hash_state {
	_Alignas(64) unsigned char opaque[384]; /* libsodium's state */
};
void keep_hash_init(struct keep_hash_state *st);
void keep_hash_update(struct keep_hash_state *st, const void *buf, size_t len);
void keep_hash_final(struct keep_hash_state *st, uint8_t out[KEEP_HASH_BYTES]);

/* Compress len bytes: *out (malloc'd, caller frees) with *flags =
 * BLOB_ZSTD, or *out = NULL and *flags = 0 when compression does not make
 * it smaller (the caller then stores buf itself, *outlen = len). */
int keep_encode(struct keep_codec *c, const void *buf, size_t len,
		void **out, size_t *outlen, unsigned *flags);
/* Decode a stored blob of decoded size `size` into dst (size bytes). */
int keep_decode(struct keep_codec *c, const void *src, size_t srclen,
		unsigned flags, void *dst, size_t size);
struct keep_keys;
/*
 * Everything a read does with a stored blob: check its CRC32C, open it if
 * sealed (keys may be NULL for a plain store; hash is the blob's stored
 * hash, which a seal is bound to with size and the compression flag),
 * decode it into dst (size bytes).  In an encrypted store a blob that is
 * not sealed is damage.
 * Returns 0, KEEP_E_CORRUPT with *why set, or KEEP_E_NEEDKEY.
 */
int keep_unpack(struct keep_codec *c, bool encrypted,
		const struct keep_keys *keys, const uint8_t *hash,
		const void *src, size_t srclen, unsigned flags, uint32_t crc,
		void *dst, size_t size, const char **why);
/*
 * Everything a commit does with a block's len bytes: hash it (keyed when
 * keys is not NULL), compress it, seal it when keys is not NULL.  *out is
 * malloc'd, or NULL when buf itself is what is stored (*outlen = len);
 * *crc covers what is stored.
 */
int keep_pack(struct keep_codec *c, const struct keep_keys *keys,
	      const void *buf, size_t len, uint8_t hash[KEEP_HASH_BYTES],
	      void **out, size_t *outlen, unsigned *flags, uint32_t *crc);

/* ---- crypt.c: key material and sealed blobs ----------------------------- */

#define KEEP_KEY_BYTES 32
#define CRYPT_NONCE_BYTES 24
#define CRYPT_TAG_BYTES 16
#define CRYPT_SALT_BYTES 16
#define CRYPT_OVERHEAD (CRYPT_NONCE_BYTES + CRYPT_TAG_BYTES)

/* In guarded memory (sodium_malloc): wiped when freed. */
struct keep_keys {
	uint8_t master[KEEP_KEY_BYTES];
	uint8_t hash_key[KEEP_KEY_BYTES]; /* keys dedup hashes */
	uint8_t seal_key[KEEP_KEY_BYTES]; /* seals blobs */
};

enum { CRYPT_WRAP_PASSPHRASE = 1, CRYPT_WRAP_KEYFILE = 2 };

/* The master key as a store keeps it: sealed under a key-encryption key
 * from a passphrase (Argon2id with these limits and salt) or a key file. */
struct keep_wrap {
	int kind;
	uint64_t opslimit;
	size_t memlimit;
	uint8_t salt[CRYPT_SALT_BYTES];
	uint8_t nonce[CRYPT_NONCE_BYTES];
	uint8_t sealed[KEEP_KEY_BYTES + CRYPT_TAG_BYTES];
};

int crypt_keys_new(struct keep_keys **out);
/* 1 if a and b hold the same master key (in constant time). */
int crypt_keys_same(const struct keep_keys *a, const struct keep_keys *b);
void crypt_keys_free(struct keep_keys *k); /* NULL: no-op */
/* Wrap k's master key under secret (a passphrase, or the 32 bytes of a key
 * file).  Returns 0, EINVAL (a key file of another size, limits out of
 * range), KEEP_E_NOMEM. */
int crypt_wrap(const struct keep_keys *k, int kind, const void *secret,
	       size_t len, uint64_t opslimit, size_t memlimit,
	       struct keep_wrap *out);
/* The keys a wrap holds.  Returns 0, EACCES (wrong passphrase or key, or a
 * damaged wrap), EINVAL, KEEP_E_NOMEM. */
int crypt_unwrap(const struct keep_wrap *w, const void *secret, size_t len,
		 struct keep_keys **out);
/* The keyed hash dedup finds blobs by. */
void crypt_hash(const struct keep_keys *k, const void *buf, size_t len,
		uint8_t out[KEEP_HASH_BYTES]);
/* Seal len bytes into out (len + CRYPT_OVERHEAD bytes), bound to ad. */
void crypt_seal(const struct keep_keys *k, const void *in, size_t len,
		const void *ad, size_t adlen, uint8_t *out);
/* Open a sealed blob (len bytes, CRYPT_OVERHEAD more than what out gets).
 * Returns 0 or KEEP_E_CORRUPT (damaged, or not bound to ad). */
int crypt_open(const struct keep_keys *k, const uint8_t *in, size_t len,
	       const void *ad, size_t adlen, void *out);
/* Wrap k's master key under a caller's secret, with this build's Argon2id
 * limits, into its text form.  Returns 0, KEEP_E_INVAL, KEEP_E_NOMEM. */
int crypt_wrap_secret(const struct keep_keys *k,
		      const struct keep_secret *secret, char *text,
		      size_t len);
/* The keys a wrap's text form holds.  Returns 0, KEEP_E_BADKEY (wrong
 * secret, or a secret of the other kind), KEEP_E_CORRUPT (the text is
 * damaged), KEEP_E_NOMEM. */
int crypt_unwrap_secret(const char *text, const struct keep_secret *secret,
			struct keep_keys **out);
/* The kind of secret a wrap's text form wants (CRYPT_WRAP_*), or
 * KEEP_E_CORRUPT. */
int crypt_wrap_kind(const char *text);
/* The stored text form of a wrap, and back.  format: 0 or ENAMETOOLONG;
 * parse: 0 or KEEP_E_CORRUPT. */
int crypt_wrap_format(const struct keep_wrap *w, char *buf, size_t len);
int crypt_wrap_parse(const char *text, struct keep_wrap *out);

/* Length of buf without its trailing zero bytes. */
size_t keep_trim_zeros(const void *buf, size_t len);
void keep_random(void *buf, size_t len);
void keep_wipe(void *buf, size_t len); /* zeroes that are not optimised away */

/* ---- in-memory inode -------------------------------------------------- */

struct kinode {
	uint64_t born;	 /* commit that created this version */
	uint64_t parent; /* directories: the directory holding it */
	struct keep_attr a; /* a.blocks counts stored blocks, not 512s */
};

/* ---- the live-inode cache (ns.c) ----------------------------------------- */

struct icache_ent {
	struct icache_ent *next;
	struct kinode n;
	bool dirty; /* newer than its row: written at the next flush */
};

struct icache {
	struct icache_ent **tab;
	size_t nbuckets, count;
};

#define ICACHE_MAX 16384
#define STAGE_MAX 8

/* ---- the dirty-block cache (data.c) ------------------------------------ */

enum dkind {
	DIRTY_DATA,  /* buf holds the block's bytes (block_size) */
	DIRTY_HOLE,  /* the block is all zeros */
	DIRTY_BLOB,  /* the block is blob `blob` (shared by copy_range) */
};

struct dblock {
	struct dblock *next; /* hash chain */
	uint64_t ino, idx;
	enum dkind kind;
	uint64_t blob;
	uint8_t *buf;
	/* filled by the encoder */
	bool encoded;
	uint8_t hash[KEEP_HASH_BYTES];
	void *enc; /* compressed bytes, or NULL: stored as buf */
	size_t enclen, rawlen;
	unsigned flags;
	uint32_t crc; /* of enc */
	bool zero;
};

/* Recycled block buffers: fresh 64-128 KiB allocations page-fault on
 * every use, which costs more than the copy itself. */
struct bufpool {
	void *free;	  /* singly linked through the buffers */
	size_t count, max;
	uint32_t size;
};

struct dmap {
	struct bufpool *pool;
	struct dblock **tab;
	size_t nbuckets, count;
	uint64_t bytes; /* buffers held */
};

/* ---- the store ---------------------------------------------------------- */

struct db; /* db.c */
struct rpool; /* reader connections, db.c */
struct dcache; /* decoded-block cache, data.c */

struct keep_store {
	char *path;
	unsigned flags;
	int lock_fd;
	uint32_t block_size;
	char uuid[37];

	/*
	 * mu protects the writer connection, every field below it and both
	 * dirty maps.  commit_mu serialises commits; lock order is
	 * commit_mu, then mu.
	 */
	pthread_mutex_t commit_mu;
	pthread_mutex_t mu;
	struct db *db;
	uint64_t open_commit; /* O: id the next commit will have */
	uint64_t next_ino;
	uint64_t next_dirent; /* entry numbers: readdir cursors, never reused */
	uint64_t synced;      /* newest commit known to be on disk */
	int64_t last_commit_ns; /* time_ns of the newest commit (writer) */
	bool in_tx;	      /* a write transaction is open */
	bool changed;	      /* rows changed since the last commit */
	int64_t dirty_since;  /* monotonic ns, 0 when clean */
	int sticky;	      /* non-zero: the store is read-only */
	struct bufpool pool;  /* block buffers (under mu) */
	struct icache icache; /* live inodes (under mu) */
	struct kinode staged[STAGE_MAX]; /* inode changes of the operation */
	int nstaged;
	struct dmap dirty;    /* blocks changed since the swap */
	struct dmap inflight; /* blocks being encoded by a commit */
	uint64_t dirty_limit;
	bool kernel_times;    /* keep_write leaves mtime/ctime alone */

	struct rpool *readers;
	struct dcache *dcache;
	struct keep_codec *codec; /* used by the committer only */
	struct encoder *encoder;  /* second encoding thread (data.c) */
	struct journal *journal;  /* writer: inodes touched (db_diff.c) */

	/* an encrypted store: its wrapped key, and the keys when unlocked */
	bool encrypted;
	/* a replica (meta 'replica_of'): its tree changes only by receive */
	bool replica;
	uint32_t format;	 /* meta 'format_version' */
	char *wrap_text;	 /* meta 'key_wrap' */
	struct keep_keys *keys; /* NULL: contents cannot be read */
};

/* store.c */
struct snap_op;
/*
 * The commit pipeline: commit every change so far (durable: fsync the
 * WAL before returning), with op (may be NULL) applied inside the same
 * SQLite transaction; see store.c's design note 3.  With op and nothing to
 * commit, op alone is committed and synced, without a new commit.
 */
int store_commit(struct keep_store *s, uint64_t *id, bool durable,
		 struct snap_op *op);
/* The same, called with commit_mu and mu held. */
int store_commit_locked(struct keep_store *s, uint64_t *id, bool durable,
			struct snap_op *op);
/* Under commit_mu and mu, with nothing pending but rows written into the
 * open transaction (a restore): commit them durably, with the journal.
 * A failure rolls back and makes the handle read-only. */
int store_commit_tx(struct keep_store *s, uint64_t *id);
/*
 * A transaction of the store's own that makes no commit (garbage
 * collection, settings): store_own_begin takes commit_mu and mu, commits
 * what is pending (the write transaction must hold nothing else) and opens
 * the transaction; store_own_end commits it (rc 0) or rolls it back, and
 * releases both locks.  Returns rc, or the error that ending it met.
 */
int store_own_begin(struct keep_store *s);
int store_own_end(struct keep_store *s, int rc);
/* Instead of store_own_end, after no error: make the transaction commit
 * `id` with time time_ns (a received snapshot's), with its journal,
 * durably; the next commit is id + 1.  Releases both locks. */
int store_own_commit(struct keep_store *s, uint64_t id, int64_t time_ns);
/* A store directory's files (store.db, its WAL and shm, the lock):
 * removed; whether a directory is empty; fsync of a directory (0 or an
 * errno). */
void store_remove_files(const char *path);
bool store_dir_is_empty(const char *path);
int store_sync_dir(const char *path);
/* Make everything committed so far durable (an own transaction's too). */
int store_sync(struct keep_store *s);

/* keep_store_open: a writable handle on an encrypted store without its
 * key, for what never reads or writes file contents (receive.c) */
#define KEEP_OPEN_NOKEY (1u << 16)
int keep_begin(struct keep_store *s); /* under mu: open the write tx */
/* The same for a change of the live tree: EROFS on a replica. */
int keep_begin_live(struct keep_store *s);
void keep_touch(struct keep_store *s); /* under mu: note a change */
int keep_writable(struct keep_store *s); /* 0, EROFS or KEEP_E_READONLY */
/* under mu: ENOSPC when the backing file system cannot take `more` bytes
 * plus what is pending */
int keep_space_check(struct keep_store *s, uint64_t more);

/* ---- db.c --------------------------------------------------------------- */

int db_open(struct keep_store *s, const char *file, bool create, bool rdonly);
/* One name of ino in view (the first by parent and name), under mu, for
 * messages.  Returns 0, ENOENT (no name), or an error. */
int db_name_of(struct keep_store *s, uint64_t view, uint64_t ino,
	       uint64_t *parent, char *name, size_t len);
/* A meta value, read without the store's lock or a writable connection:
 * from the database file alone (immutable: no WAL or shm made) when there
 * is no WAL, else through a read-only connection (which leaves the WAL as
 * it is).  Returns 0, ENOENT, or EAGAIN when it could not be read. */
int db_peek_meta(const char *file, const char *key, char *buf, size_t len);
void db_close(struct keep_store *s);
int db_create_schema(struct keep_store *s, const struct keep_init_opts *o,
		     const char *uuid, int64_t now);
int db_load_meta(struct keep_store *s); /* format, block size, uuid, next_ino */
int db_exclusive(struct keep_store *s,
		 int (*cb)(void *ctx, uint64_t commit, uint64_t bytes),
		 void *ctx);
/* A meta row as text: 0, or ENOENT when there is none. */
int db_meta_text(struct keep_store *s, const char *key, char *buf,
		 size_t len);
/* Write a meta row as text (NULL: delete it), in the open transaction. */
int db_meta_set_text(struct keep_store *s, const char *key, const char *text);
int db_meta_set_int(struct keep_store *s, const char *key, int64_t v);
int db_begin(struct keep_store *s);
/* A read-only handle's several queries in one snapshot of the database,
 * so a writer (a collection) between them changes nothing they see; the
 * writer's own handle needs none (no-ops there). */
int db_read_begin(struct keep_store *s);
void db_read_end(struct keep_store *s);
/* Make one operation all-or-nothing inside the open transaction. */
int db_savepoint(struct keep_store *s);
int db_release(struct keep_store *s, int rc); /* rolls back if rc != 0 */
int db_commit(struct keep_store *s, uint64_t id, int64_t time_ns);
void db_rollback(struct keep_store *s);
int db_sync_wal(struct keep_store *s); /* make committed frames durable */
uint64_t db_last_commit(struct keep_store *s);

int db_inode_get(struct keep_store *s, uint64_t view, uint64_t ino,
		 struct kinode *out);
int db_inode_put(struct keep_store *s, struct kinode *n);
int db_inode_new(struct keep_store *s, struct kinode *n, const char *symlink);
int db_inode_kill(struct keep_store *s, uint64_t ino);
int db_symlink_get(struct keep_store *s, uint64_t view, uint64_t ino,
		   char *buf, size_t size);
/* live inodes with nlink 0 (crash leftovers) */
int db_orphans(struct keep_store *s, uint64_t *inos, size_t max, size_t *n);

int db_dirent_find(struct keep_store *s, uint64_t view, uint64_t parent,
		   const char *name, uint64_t *ino, int64_t *id);
int db_dirent_add(struct keep_store *s, uint64_t parent, const char *name,
		  uint64_t ino);
int db_dirent_kill(struct keep_store *s, uint64_t parent, int64_t id);
int db_dirent_has_children(struct keep_store *s, uint64_t parent, bool *yes);
typedef int (*db_dirent_cb)(void *ctx, int64_t id, const char *name,
			    uint64_t ino);
int db_dirent_list(struct keep_store *s, uint64_t view, uint64_t parent,
		   int64_t after, db_dirent_cb cb, void *ctx);

int db_block_get(struct keep_store *s, uint64_t view, uint64_t ino,
		 uint64_t idx, uint64_t *blob);
typedef int (*db_block_cb)(void *ctx, uint64_t idx, uint64_t blob);
int db_block_range(struct keep_store *s, uint64_t view, uint64_t ino,
		   uint64_t from, uint64_t to, db_block_cb cb, void *ctx);
int db_block_set(struct keep_store *s, uint64_t ino, uint64_t idx,
		 uint64_t blob, bool *was_hole);
int db_block_kill(struct keep_store *s, uint64_t ino, uint64_t idx,
		  bool *was_data);
int db_block_kill_from(struct keep_store *s, uint64_t ino, uint64_t from,
		       uint64_t *killed);

int db_blob_find(struct keep_store *s, const uint8_t *hash, uint64_t *id);
int db_blob_insert(struct keep_store *s, const uint8_t *hash, size_t size,
		   const void *data, size_t csize, unsigned flags,
		   uint32_t crc, uint64_t *id);
/* Reader connections (any thread): get one, read committed blobs with it
 * inside one read transaction, put it back.  db_blob_read with a NULL
 * slot takes and returns one itself. */
struct rslot;
struct rslot *db_reader_get(struct keep_store *s);
void db_reader_put(struct rslot *r);
int db_blob_read(struct keep_store *s, struct rslot *slot, uint64_t id,
		 void *dst, size_t dstsize, size_t *size);

int db_xattr_get(struct keep_store *s, uint64_t view, uint64_t ino,
		 const char *name, void *buf, size_t size, size_t *len);
int db_xattr_set(struct keep_store *s, uint64_t ino, const char *name,
		 const void *val, size_t size, unsigned flags);
int db_xattr_remove(struct keep_store *s, uint64_t ino, const char *name);
int db_xattr_list(struct keep_store *s, uint64_t view, uint64_t ino,
		  char *buf, size_t size, size_t *len);
int db_xattr_kill_all(struct keep_store *s, uint64_t ino);

int db_rpool_open(struct keep_store *s, const char *file);
void db_rpool_close(struct keep_store *s);

/* Snapshots and commits.  Callers hold mu.  On a store made before the
 * snapshots table existed, a read-only handle finds no snapshots. */
int db_upgrade(struct keep_store *s); /* writer: add missing tables */
/* Note 2 of db.c: under mu, with no transaction open, after a commit
 * (and after its WAL sync, if it has one). */
void db_wal_turn(struct keep_store *s);
int db_end_tx(struct keep_store *s);  /* COMMIT with no commits row */
/* Called without locks by long background work (garbage collection)
 * between its steps: once SETTLE_BYTES of the WAL wait to be copied,
 * have the checkpoint thread copy all of it now, whatever the load, and
 * wait for that (max_ns at most): small rounds, so that an fsync meanwhile
 * does not wait for a big one (db.c note 4), and a WAL that can start
 * over (note 2). */
void db_wal_settle(struct keep_store *s, int64_t max_ns);
/* Have the checkpoint thread copy the WAL into the database and shrink
 * both at the next pause (after garbage collection gave pages back). */
void db_checkpoint_soon(struct keep_store *s);
/* by name, or by id when name is NULL; 0 or ENOENT */
int db_snap_get(struct keep_store *s, const char *name, uint64_t id,
		struct keep_snapshot *out);
int db_snap_list(struct keep_store *s, uint64_t after,
		 struct keep_snapshot *out, size_t max, size_t *n);
int db_snap_insert(struct keep_store *s, const char *name, uint64_t commit,
		   int64_t created_ns, int origin, uint64_t *id);
int db_snap_delete(struct keep_store *s, const char *name);
int db_snap_rename(struct keep_store *s, const char *oldname,
		   const char *newname);
int db_commit_get(struct keep_store *s, uint64_t id,
		  struct keep_commit_info *out);
int db_commit_list(struct keep_store *s, uint64_t after,
		   struct keep_commit_info *out, size_t max, size_t *n);
int db_commit_at(struct keep_store *s, int64_t time_ns, uint64_t *id);
int db_view_stats(struct keep_store *s, uint64_t view,
		  struct keep_view_stats *out);

int db_stats(struct keep_store *s, struct keep_stats *st);
struct fsck;
int db_check(struct keep_store *s, int data, struct fsck *f);
/* The shape checks of db_check on the live tree alone (entries, link
 * counts, the tree, stray blocks): *problems gets their count, first the
 * first one's text.  For receive.c, on the tree a stream made. */
int db_check_live(struct keep_store *s, uint64_t *problems, char *first,
		  size_t len);

/* ---- vfs.c: the SQLite VFS of every connection -------------------------- */

/* The VFS name for sqlite3_open_v2 (vfs.c), NULL for SQLite's default. */
const char *db_vfs(void);
/* How many truncates and syncs that VFS has passed on so far (for
 * tests). */
uint64_t db_vfs_truncates(void);
uint64_t db_vfs_syncs(void);
/* sqlite3_file_control op, arg an int: nonzero, checkpoints of this
 * connection never make the file smaller (note 2 of vfs.c) */
#define DB_FCNTL_KEEP_SIZE 0x6b660001
/* sqlite3_file_control op, no arg: sync the file if it was written since
 * its last sync (note 3 of vfs.c) */
#define DB_FCNTL_SYNC_DIRTY 0x6b660002
/* sqlite3_file_control op, arg an int: nonzero, the file is synced after
 * every 32 MiB written through this connection (note 5 of vfs.c) */
#define DB_FCNTL_SYNC_EVERY 0x6b660003

/* ---- data.c ------------------------------------------------------------- */

void dmap_init(struct dmap *m, struct bufpool *pool);
void bufpool_release(struct bufpool *p);
void dmap_release(struct dmap *m);
struct dblock *dmap_find(struct dmap *m, uint64_t ino, uint64_t idx);
int dcache_new(struct keep_store *s);
void dcache_free(struct keep_store *s);
/* under mu: drop all cached block state of a reclaimed inode */
void data_forget_inode(struct keep_store *s, uint64_t ino);
/* under mu: cut a file to size (blocks and dirty state) */
int data_truncate(struct keep_store *s, struct kinode *n, uint64_t size);
/* committer, under mu: write encoded blocks to rows */
int data_apply(struct keep_store *s, struct dmap *m, struct dmap *newer);
/* committer, without mu: encode every DIRTY_DATA block of m */
int data_encode(struct keep_store *s, struct dmap *m);
int data_encoder_start(struct keep_store *s); /* writers only */
void data_encoder_stop(struct keep_store *s);

/* ---- ns.c ------------------------------------------------------------- */

/*
 * Inodes of the live tree go through a cache (design note 3 of ns.c):
 * ns_get reads (cache first for the live tree), ns_put stages a change for
 * the running operation, ns_finish ends the operation (releasing its
 * savepoint if it took one) and applies the staged changes only when it
 * succeeded; ns_flush writes every changed inode to its row (before a
 * commit and before whole-table queries).
 */
int ns_get(struct keep_store *s, uint64_t view, uint64_t ino, struct kinode *n);
int ns_get_live(struct keep_store *s, uint64_t ino, struct kinode *n);
int ns_put(struct keep_store *s, const struct kinode *n);
int ns_finish(struct keep_store *s, int rc, bool savepoint);
int ns_flush(struct keep_store *s);
void ns_drop(struct keep_store *s, uint64_t ino);
void icache_release(struct icache *c);
/* under mu: remove an inode with no links from the live tree */
int ns_reclaim(struct keep_store *s, uint64_t ino);
void ns_to_attr(const struct keep_store *s, const struct kinode *n,
		struct keep_attr *out);

/* ---- snap.c ----------------------------------------------------------- */

enum snap_kind { SNAP_CREATE, SNAP_DELETE, SNAP_RENAME };

/* A change to the snapshots table, made by the commit pipeline. */
struct snap_op {
	enum snap_kind kind;
	const char *name;    /* CREATE, DELETE; RENAME: the old name */
	const char *newname; /* RENAME */
	int origin;	     /* CREATE */
	struct keep_snapshot made; /* CREATE: filled by snap_apply */
};

/* under commit_mu and mu, before anything is written: the op's own
 * refusals (EEXIST, ENOENT, ENOSPC), which leave everything as it was */
int snap_check(struct keep_store *s, struct snap_op *op);
/* under mu, inside the transaction that will commit as commit_ns */
int snap_apply(struct keep_store *s, struct snap_op *op, uint64_t commit,
	       int64_t commit_ns);

/* ---- db_restore.c: restore's statements (restore.c) -------------------- */

struct rq;
int db_rq_open(struct keep_store *s, struct rq **out);
void db_rq_close(struct rq *q);
/* Entries of dir in view (KEEP_LIVE: with their ids), read first, then
 * passed to cb. */
int db_rq_entries(struct rq *q, uint64_t view, uint64_t dir, db_dirent_cb cb,
		  void *ctx);
/* The live names of ino: cb(ctx, 0, name, parent) for each. */
int db_rq_names(struct rq *q, uint64_t ino, db_dirent_cb cb, void *ctx);
/* Insert view from's row of ino as the live row of `to` (born in the open
 * commit), with ctime and parent given.  The live row of `to`, if any,
 * must have been ended first. */
int db_rq_inode_copy(struct rq *q, uint64_t from, uint64_t ino, uint64_t to,
		     int64_t ctime_ns, uint64_t parent);
/* Make the block and xattr rows of `to` those of ino in view from: with
 * to == ino only what differs is changed, otherwise every row is copied
 * (`to` having none).  *changed grows by the rows changed. */
int db_rq_rows(struct rq *q, uint64_t from, uint64_t ino, uint64_t to,
	       uint64_t *changed);
/* Live names of ino, and (subdirs not NULL) its live subdirectories. */
int db_rq_links(struct rq *q, uint64_t ino, uint64_t *named,
		uint64_t *subdirs);

/* ---- umap.c ------------------------------------------------------------ */

/* A map from inode numbers (never 0) to pointers; zeroed is empty. */
struct umap {
	uint64_t *keys;
	void **vals;
	size_t cap, n;
};
/* The value's place, or NULL when k is absent. */
void **umap_get(const struct umap *m, uint64_t k);
/* Insert k (value NULL) if absent; *slot gets its value's place and
 * *fresh whether it was inserted.  Returns 0 or KEEP_E_NOMEM. */
int umap_put(struct umap *m, uint64_t k, void ***slot, bool *fresh);
/* Release the map (and with free_vals each value); it is empty again. */
void umap_free(struct umap *m, bool free_vals);

/* Make room for element n of an array of *cap elements of size bytes
 * (doubling).  Returns 0 or KEEP_E_NOMEM; *v is unchanged on failure. */
int keep_grow(void **v, size_t *cap, size_t n, size_t size);
#define GROW(arr, cap, n) keep_grow((void **)&(arr), &(cap), (n), sizeof(*(arr)))

/* ---- db_diff.c: the change journal ----------------------------------- */

/* db.c's writer (or read-only) connection and its error mapping, for
 * db_diff.c */
struct sqlite3 *db_handle(struct keep_store *s);
int db_error(struct keep_store *s, int src, const char *what);

/* writer, at open: add the journal (table, index, meta) if anything is
 * missing and start noting the inodes each change touches */
int db_journal_upgrade(struct keep_store *s);
/* commit pipeline, under mu, inside the commit's transaction: write the
 * inodes touched since the last commit as the journal of commit */
int db_journal_flush(struct keep_store *s, uint64_t commit);
void db_journal_close(struct keep_store *s); /* NULL journal: no-op */
/* gc.c: at a writable open, make its tables and the index of blocks by
 * blob if missing */
int gc_setup(struct keep_store *s);
/* gc.c, under mu: while paused, row changes are not noted */
void db_journal_pause(struct keep_store *s, bool paused);
/* first commit the journal covers in full; 0 when there is no journal */
int db_journal_from(struct keep_store *s, uint64_t *from);
/* fsck: rows changed since the journal began that it does not name */
int db_journal_check(struct keep_store *s, struct fsck *f);

/* The prepared queries of one diff (under mu, on s's connection). */
struct dq;
int db_dq_open(struct keep_store *s, struct dq **out);
void db_dq_close(struct dq *q);
typedef int (*db_ino_cb)(void *ctx, uint64_t ino);
/* writer: the inodes touched by the open commit so far */
int db_journal_pending(struct keep_store *s, db_ino_cb cb, void *ctx);
/* Inodes with rows changed in commits (lo, hi]: from the journal, or with
 * full from a scan of every versioned table.  May name an inode twice
 * (full) or one that did not change in the end. */
int db_dq_candidates(struct dq *q, uint64_t lo, uint64_t hi, bool full,
		     db_ino_cb cb, void *ctx);
/* The names (parent, name bytes) of ino in a view. */
typedef int (*db_name_cb)(void *ctx, uint64_t parent, const char *name,
			  size_t len);
int db_dq_names(struct dq *q, uint64_t view, uint64_t ino, db_name_cb cb,
		void *ctx);
/* keep_history: the directory entries name in parent visible at some
 * commit in [lo, hi), in order of birth (died 0: still there). */
typedef int (*db_entry_cb)(void *ctx, uint64_t born, uint64_t died,
			   uint64_t ino);
int db_dq_entries(struct dq *q, uint64_t parent, const char *name,
		  uint64_t lo, uint64_t hi, db_entry_cb cb, void *ctx);
/* keep_history: commits in (lo, hi) where a row of ino (inode, block or
 * xattr) was born or died, ascending, each once (passed as the ino
 * argument of cb). */
int db_dq_points(struct dq *q, uint64_t ino, uint64_t lo, uint64_t hi,
		 db_ino_cb cb, void *ctx);

/* diff.c, for keep_history: what differs between object a in view va and
 * object b in view vb (committed views; the objects may be two inodes),
 * as KEEP_DIFF_DATA, _ATTR and _XATTR flags.  Under mu. */
int diff_objects(struct keep_store *s, uint64_t va, const struct kinode *a,
		 uint64_t vb, const struct kinode *b, unsigned *flags);

/* ---- fsck.c: problems and what they affect ------------------------------ */

/* A commit id past every commit: [lo, FSCK_END) reaches the live tree,
 * [FSCK_LIVE, FSCK_END) is the live tree alone. */
#define FSCK_END ((uint64_t)INT64_MAX)
#define FSCK_LIVE (FSCK_END - 1)

/* What a problem is about, for finding the paths it affects. */
struct fsck_subject {
	uint64_t ino;	    /* an object: its paths; 0: see below */
	uint64_t parent;    /* with name: the entry name in directory parent */
	const void *name;
	size_t name_len;
	uint64_t blob;	    /* non-zero: every file block that uses it */
	int64_t offset;	    /* of the object's block concerned, -1: none */
	uint64_t lo, hi;    /* the commits concerned: [lo, hi) */
};

/* Count a problem and report it with the places subj (NULL: none)
 * affects.  An error of finding them stops the check: keep_check
 * returns it. */
void fsck_report(struct fsck *f, const struct fsck_subject *subj,
		 unsigned flags, const char *what);
/* non-zero once an error stopped finding places */
int fsck_failed(const struct fsck *f);

/* ---- db_fsck.c: fsck's queries --------------------------------------- */

struct fq;
int db_fq_open(struct keep_store *s, struct fq **out);
void db_fq_close(struct fq *q); /* NULL: no-op */
/* The entries naming ino at some commit in [lo, hi), by birth; died is
 * FSCK_END for a live one.  cb must not call db_fq_names. */
typedef int (*db_fname_cb)(void *ctx, uint64_t parent, const void *name,
			   size_t len, uint64_t born, uint64_t died);
int db_fq_names(struct fq *q, uint64_t ino, uint64_t lo, uint64_t hi,
		db_fname_cb cb, void *ctx);
/* The block rows that use blob. */
typedef int (*db_fblock_cb)(void *ctx, uint64_t ino, uint64_t idx,
			    uint64_t born, uint64_t died);
int db_fq_blob_blocks(struct fq *q, uint64_t blob, db_fblock_cb cb,
		      void *ctx);
/* The snapshots of commits in [lo, hi), by commit. */
typedef int (*db_fsnap_cb)(void *ctx, const void *name, size_t len,
			   uint64_t commit);
int db_fq_snaps(struct fq *q, uint64_t lo, uint64_t hi, db_fsnap_cb cb,
		void *ctx);
/* How many commits in [lo, hi) no snapshot names, the lowest, the
 * highest. */
int db_fq_commits(struct fq *q, uint64_t lo, uint64_t hi, uint64_t *n,
		  uint64_t *first, uint64_t *last);
/* keep_garbage's counts; db_garbage_drop deletes the garbage (inside the
 * caller's transaction) and counts what it deleted. */
int db_garbage(struct keep_store *s, struct keep_garbage *g);
int db_garbage_drop(struct keep_store *s, struct keep_garbage *g);
/* PRAGMA quick_check: *ok false when SQLite finds damage. */
int db_integrity_ok(struct keep_store *s, bool *ok);
/* Give every free page back (incremental auto-vacuum stores). */
int db_vacuum_free(struct keep_store *s);
/* Copy the database (with what the WAL holds) into the new file `file`
 * (made 0600; EEXIST if it exists).  On failure no file is left. */
int db_backup(struct keep_store *s, const char *file);

/* ---- stream.c: the record format of send streams ---------------------- */

/*
 * A stream is a sequence of records: u32 type, u64 payload length (both
 * little-endian), the payload, and a check (BLAKE2b-256 over the previous
 * record's check, type, length and payload).  The header comes first, the
 * end record last, each exactly once; see stream.c's design notes and
 * docs/design.md, "Send streams (format)".
 */
#define STREAM_VERSION 1
#define STREAM_MAGIC "KEEPFS-STREAM" /* NUL-padded to 16 bytes */
#define STREAM_MAGIC_BYTES 16
#define STREAM_CHECK_BYTES 32
#define STREAM_FRAME_BYTES 12 /* type and length */
#define STREAM_UUID_BYTES 36
#define STREAM_WRAP_MAX 1024 /* bytes of key wrap text */
/* the largest payload of each type, refused before anything is read */
#define STREAM_HEADER_MAX 4096
#define STREAM_BLOB_FIXED 56 /* a blob's fields before its bytes */
#define STREAM_BLOB_DATA_MAX (KEEP_MAX_BLOCK_SIZE + 64)
#define STREAM_ROWS_MAX ((size_t)64 << 20)
#define STREAM_END_MAX 64

enum stream_type {
	STREAM_HEADER = 1,
	STREAM_BLOB = 2,
	STREAM_ROWS = 3, /* a batch of metadata rows, opaque here */
	STREAM_END = 4,
};

/* Write all len bytes: 0 or an errno. */
typedef int (*stream_write_fn)(void *ctx, const void *buf, size_t len);
/* Read up to len bytes: 0 with *got bytes read (0 only at the end of
 * the stream), or an errno. */
typedef int (*stream_read_fn)(void *ctx, void *buf, size_t len, size_t *got);
/* Both over a file descriptor: ctx points to an int. */
int stream_fd_write(void *ctx, const void *buf, size_t len);
int stream_fd_read(void *ctx, void *buf, size_t len, size_t *got);

/* What a stream carries and from where.  Names are snapshot names: 1 to
 * KEEP_SNAP_NAME_MAX bytes, any byte but '/' and NUL. */
struct stream_header {
	uint32_t version;	/* the reader fills it: STREAM_VERSION */
	char uuid[STREAM_UUID_BYTES + 1]; /* the source store's */
	uint32_t store_format;	/* KEEP_FORMAT_PLAIN, or 2: encrypted */
	uint32_t block_size;
	const char *name;	/* the snapshot sent */
	uint64_t commit;	/* its commit id (not 0) */
	int64_t commit_ns;	/* that commit's time */
	int64_t created_ns;	/* when the snapshot was taken */
	int origin;		/* KEEP_ORIGIN_MANUAL, _AUTO or _PRE_RESTORE */
	/* what the sender expects the whole stream to weigh, in bytes (for
	 * progress; 0: unknown) */
	uint64_t expect_bytes;
	bool incremental;	/* sent against a base the receiver has: */
	const char *base_name;
	uint64_t base_commit;	/* not newer than commit */
	/* NULL or "": none; else the wrapped key an encrypted store's
	 * replica is opened with (text, at most STREAM_WRAP_MAX bytes) */
	const char *key_wrap;
};

/* A stored blob as the store keeps it (compressed, sealed): the stream
 * does not look inside but checks its CRC and the shape of its flags. */
struct stream_blob {
	uint64_t id;		/* the source store's blob id (not 0) */
	uint8_t hash[KEEP_HASH_BYTES];
	uint32_t size;		/* decoded, at most KEEP_MAX_BLOCK_SIZE */
	uint32_t csize;		/* stored: bytes of data */
	uint32_t flags;		/* BLOB_ZSTD, BLOB_SEALED */
	uint32_t crc;		/* keep_crc32c of data */
	const void *data;
};

/* Records of each type before the end, and their payload bytes. */
struct stream_end {
	uint64_t headers, blobs, rows, bytes;
};

struct stream_rec {
	enum stream_type type;
	uint64_t index;	 /* 1 for the header */
	uint64_t offset; /* of the record's first byte */
	union {
		struct stream_header header;
		struct stream_blob blob;
		struct {
			const void *data;
			size_t len;
		} rows;
		struct stream_end end;
	};
};

/*
 * The writer.  Records go out in order: one header, any blobs and rows,
 * the end (which counts them).  Each returns 0; KEEP_E_INVAL for a record
 * out of order or a field the reader would refuse (nothing is written);
 * KEEP_E_CORRUPT for a blob whose bytes do not match its CRC (the source
 * store is damaged; nothing is written); or the write function's errno,
 * after which the writer refuses everything with it (the stream is cut).
 */
struct stream_w;
int stream_w_new(stream_write_fn write, void *ctx, struct stream_w **out);
void stream_w_free(struct stream_w *w); /* NULL: no-op */
int stream_w_header(struct stream_w *w, const struct stream_header *h);
int stream_w_blob(struct stream_w *w, const struct stream_blob *b);
int stream_w_rows(struct stream_w *w, const void *data, size_t len);
int stream_w_end(struct stream_w *w);

/*
 * The reader.  stream_r_next fills *rec with the next record, checked
 * (its check, its place in the order, every field); pointers in it stay
 * valid until the next call or stream_r_free.  The end record is handed
 * out only when its counts match and nothing follows it.
 * Returns 0; KEEP_E_CORRUPT for anything wrong with the stream (damaged,
 * truncated, foreign, of a newer format), with stream_r_error saying what
 * and where; the read function's errno; KEEP_E_NOMEM; KEEP_E_INVAL after
 * the end record.  An error is sticky: later calls return it again.
 */
struct stream_r;
int stream_r_new(stream_read_fn read, void *ctx, struct stream_r **out);
void stream_r_free(struct stream_r *r); /* NULL: no-op */
int stream_r_next(struct stream_r *r, struct stream_rec *rec);
/* The last error's message, "" when there was none. */
const char *stream_r_error(const struct stream_r *r);

/* ---- send.c and receive.c: the rows of a stream -------------------------- */

/*
 * A rows record is a sequence of ops, each a byte and its fields
 * (little-endian; names are a length byte and 1 to 255 bytes):
 *   ROP_GONE ino                 the object is gone: end all its rows
 *   ROP_FRESH ino                the object is new: end any rows it has
 *   ROP_INODE ino mode uid gid nlink (u32 each) size rdev atime mtime
 *             ctime btime nblocks parent (u64 each) tlen (u16: a symlink
 *             target's length + 1, 0 for none) target
 *   ROP_BLOCK ino idx hash[32]   block idx is the blob with this hash
 *   ROP_BLOCK_DEL ino idx        block idx is a hole now
 *   ROP_XATTR ino name vlen (u32) value
 *   ROP_XATTR_DEL ino name
 *   ROP_DIRENT dir id name ino   entry id of dir
 *   ROP_DIRENT_DEL dir id
 * A row op replaces the row of its key that the replica's live tree has;
 * a _DEL op ends one that must be there.
 */
enum rop {
	ROP_GONE = 1,
	ROP_FRESH = 2,
	ROP_INODE = 3,
	ROP_BLOCK = 4,
	ROP_BLOCK_DEL = 5,
	ROP_XATTR = 6,
	ROP_XATTR_DEL = 7,
	ROP_DIRENT = 8,
	ROP_DIRENT_DEL = 9,
};

#endif /* KEEP_I_H */
