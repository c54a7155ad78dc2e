/*
 * keep.h - the one public interface of keepfs's versioned store.
 *
 * A store is a directory holding one SQLite database (WAL mode) with every
 * version of a file tree.  This header is all that fs/ and tools/ may use of
 * core/: an opaque store handle, the POSIX-shaped operations on the live
 * tree, read-only access to any committed view, and commits.
 *
 * Return codes (the LMDB convention):
 *   0            success
 *   > 0          an errno value (ENOENT, EEXIST, ENOTEMPTY, ENOSPC, ...),
 *                meant to reach the application unchanged
 *   < 0          one of the KEEP_E_* codes below
 * keep_strerror() turns any of them into a message.
 *
 * Out-pointers are written only on success.
 *
 * Threads: every function may be called from any thread.  The store
 * serialises changes internally; reads of committed data do not wait for
 * a commit that is encoding data.
 */
#ifndef KEEP_H
#define KEEP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KEEP_VERSION_STRING "0.1.0"

/* Newest store format this build reads and writes (2: an encrypted store;
 * a plain one is still written as 1); newer stores are refused. */
#define KEEP_FORMAT_VERSION 2

/* Our own error codes (negative). */
enum {
	KEEP_E_CORRUPT = -1,  /* the store violates an invariant */
	KEEP_E_NOTSTORE = -2, /* the path is not a keepfs store */
	KEEP_E_VERSION = -3,  /* store format newer or unknown */
	KEEP_E_LOCKED = -4,   /* another process has the store open for writing */
	KEEP_E_READONLY = -5, /* a commit failed earlier; reopen the store */
	KEEP_E_SQLITE = -6,   /* unexpected database error (details logged) */
	KEEP_E_NOMEM = -7,    /* out of memory */
	KEEP_E_EXISTS = -8,   /* keep_store_init: the path already holds data */
	KEEP_E_INVAL = -9,    /* invalid argument to a core function */
	KEEP_E_NEEDKEY = -10, /* the store is encrypted and was opened
				 without its key */
	KEEP_E_BADKEY = -11,  /* wrong passphrase or key file */
};

const char *keep_strerror(int rc);

/* Map any return code to an errno for a FUSE reply (EIO for our codes,
 * EROFS for KEEP_E_READONLY, ENOMEM for KEEP_E_NOMEM). */
int keep_errno(int rc);

/* ---- logging ---------------------------------------------------------- */

/* Levels are syslog's (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
 * LOG_DEBUG).  The default sink writes "keepfs: LEVEL: msg\n" to stderr
 * for levels <= the threshold (default LOG_NOTICE). */
typedef void (*keep_log_sink)(int level, const char *msg, void *ctx);

void keep_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void keep_vlog(int level, const char *fmt, va_list ap);
void keep_log_set_sink(keep_log_sink sink, void *ctx); /* NULL: default */
void keep_log_set_level(int max_level);
int keep_log_get_level(void);

/* ---- store lifecycle ---------------------------------------------------- */

struct keep_store;

/*
 * What unlocks an encrypted store: a passphrase (any bytes, stretched
 * with Argon2id) or the contents of a key file (exactly
 * KEEP_KEYFILE_BYTES random bytes).  The bytes are only read during the
 * call they are passed to; the caller wipes them.
 */
enum { KEEP_SECRET_PASSPHRASE = 1, KEEP_SECRET_KEYFILE = 2 };
#define KEEP_KEYFILE_BYTES 32

struct keep_secret {
	int kind; /* KEEP_SECRET_* */
	const void *data;
	size_t len;
};

struct keep_init_opts {
	uint32_t block_size; /* 0: default (KEEP_DEFAULT_BLOCK_SIZE) */
	uint32_t page_size;  /* SQLite page size; 0: default */
	uint32_t uid, gid;   /* owner of the root directory */
	uint32_t root_mode;  /* permission bits of the root; 0: 0755 */
	/* NULL: a plain store; else an encrypted one, unlocked by this */
	const struct keep_secret *encrypt;
};

#define KEEP_DEFAULT_BLOCK_SIZE (32 * 1024)
#define KEEP_MIN_BLOCK_SIZE 4096
#define KEEP_MAX_BLOCK_SIZE (1024 * 1024)

/*
 * Create a new store at path.  The directory may exist only if it is empty;
 * it is created (mode 0700) otherwise.  Returns 0, KEEP_E_EXISTS if path
 * holds anything, KEEP_E_INVAL for a bad block size, or an errno.
 * On failure nothing is left behind that was not there before.
 */
int keep_store_init(const char *path, const struct keep_init_opts *opts);

/* Is path a keepfs store (has a store database)?  1 yes, 0 no. */
int keep_is_store(const char *path);

enum {
	KEEP_OPEN_RDONLY = 0,	/* query only; works while mounted */
	KEEP_OPEN_WRITE = 1 << 0, /* take the store's lock; one writer */
};

/*
 * Open the store at path.  KEEP_OPEN_WRITE takes an exclusive flock() on
 * STORE/lock (KEEP_E_LOCKED if held), runs crash recovery (reaps inodes
 * that were unlinked while open, which makes a commit if there were any)
 * and prepares the open commit.
 * Returns 0, KEEP_E_NOTSTORE, KEEP_E_VERSION, KEEP_E_LOCKED,
 * KEEP_E_CORRUPT, or an errno.
 */
int keep_store_open(const char *path, unsigned flags, struct keep_store **out);

/*
 * Open an encrypted store with its secret (a plain store too, when secret
 * is NULL: keep_store_open is this with NULL).  Without the secret an
 * encrypted store opens read-only only: names, sizes, times and history
 * are readable, file contents are not (KEEP_E_NEEDKEY), and a writable
 * open is refused with KEEP_E_NEEDKEY.  A wrong secret is KEEP_E_BADKEY,
 * told before anything in the store is written.  A secret for a plain
 * store is KEEP_E_INVAL.
 */
int keep_store_open_secret(const char *path, unsigned flags,
			   const struct keep_secret *secret,
			   struct keep_store **out);

/* Zero a secret's bytes (len becomes 0).  NULL is a no-op. */
void keep_secret_wipe(struct keep_secret *secret);

/* Whether the store at path is encrypted, without its lock or a writable
 * connection: *kind gets 0 for a plain store, else what unlocks it
 * (KEEP_SECRET_PASSPHRASE or KEEP_SECRET_KEYFILE).  Returns 0 or a
 * keep_store_open error. */
int keep_store_encrypted(const char *path, int *kind);
/* The same for an open store: 0, KEEP_SECRET_*, or KEEP_E_CORRUPT. */
int keep_store_is_encrypted(const struct keep_store *s);

/*
 * Re-wrap an encrypted store's master key: from now on new_secret opens
 * it and old_secret no longer does.  No data is rewritten.  s must be
 * writable and opened with its secret; old_secret must open it too.
 * Returns 0, KEEP_E_BADKEY (old_secret is wrong), KEEP_E_INVAL (a plain
 * store, a key file of the wrong size), KEEP_E_NEEDKEY, or an errno.
 */
int keep_key_change(struct keep_store *s, const struct keep_secret *old_secret,
		    const struct keep_secret *new_secret);

/* Reclaim inodes left with no links, commit outstanding changes (if
 * writable) durably, and close.  Returns the commit's result; the handle is
 * freed in every case.  NULL is a no-op. */
int keep_store_close(struct keep_store *s);

/* Bytes per file block of this store. */
uint32_t keep_store_block_size(const struct keep_store *s);

/* PID of the process holding the store's write lock, 0 if none (-1 if it
 * cannot be told).  Works on a path, without opening the store. */
pid_t keep_store_lock_owner(const char *path);

/* Bound on dirty file data held in memory before a commit is forced.
 * Default 8 MiB, at least 1 MiB.  A commit should fit in SQLite's page
 * cache (16 MiB): one that does not spills and costs a second pass. */
void keep_store_set_dirty_limit(struct keep_store *s, uint64_t bytes);

/*
 * Whether keep_write and keep_copy_range set the file's mtime and ctime
 * (default yes).  A file system layer whose kernel keeps those times itself
 * and sends them with setattr (FUSE's writeback cache) turns this off:
 * a late write would otherwise overwrite the kernel's newer times.
 */
void keep_store_set_write_times(struct keep_store *s, int on);

/* ---- attributes -------------------------------------------------------- */

/* The root directory's inode number in every view. */
#define KEEP_ROOT_INO 1

/* The live tree.  Any other value names a committed view (a commit id). */
#define KEEP_LIVE 0

struct keep_attr {
	uint64_t ino;
	uint32_t mode; /* type and permission bits, as st_mode */
	uint32_t uid, gid;
	uint32_t nlink;
	uint64_t size;
	uint64_t rdev;
	uint64_t blocks; /* 512-byte units actually stored (holes excluded) */
	int64_t atime_ns, mtime_ns, ctime_ns, btime_ns; /* since the epoch */
};

/* keep_setattr: which fields of *in to apply. */
enum {
	KEEP_SET_MODE = 1 << 0,
	KEEP_SET_UID = 1 << 1,
	KEEP_SET_GID = 1 << 2,
	KEEP_SET_SIZE = 1 << 3,
	KEEP_SET_ATIME = 1 << 4,
	KEEP_SET_MTIME = 1 << 5,
	KEEP_SET_CTIME = 1 << 6,
	KEEP_SET_ATIME_NOW = 1 << 7, /* ignore in->atime_ns, use the clock */
	KEEP_SET_MTIME_NOW = 1 << 8,
};

/* Caller identity for creating objects. */
struct keep_cred {
	uint32_t uid, gid;
};

/* ---- namespace (live tree unless a view is named) ---------------------- */

/* Maximum name length in bytes (any byte but '/' and NUL). */
#define KEEP_NAME_MAX 255

/* Returns 0, ENOENT, ENOTDIR, ENAMETOOLONG. */
int keep_lookup(struct keep_store *s, uint64_t view, uint64_t parent,
		const char *name, struct keep_attr *out);
/* Returns 0 or ENOENT. */
int keep_getattr(struct keep_store *s, uint64_t view, uint64_t ino,
		 struct keep_attr *out);
/*
 * Change attributes of a live inode.  A SIZE change truncates or extends
 * (the new tail reads as zeros) and updates mtime/ctime.  Every change sets
 * ctime unless KEEP_SET_CTIME gives one.  Returns 0, ENOENT, EISDIR (size
 * of a directory), EFBIG, ENOSPC, EROFS.
 */
int keep_setattr(struct keep_store *s, uint64_t ino, const struct keep_attr *in,
		 unsigned to_set, struct keep_attr *out);

/*
 * Create a non-directory object: S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR,
 * S_IFBLK (mode has the type).  The group is inherited from a setgid
 * parent.  Returns 0, EEXIST (also for "." and ".."), ENOENT (parent),
 * ENOTDIR, ENAMETOOLONG, EINVAL (bad type or name), ENOSPC, EROFS (a
 * read-only handle), EPERM (reserved name).
 */
int keep_mknod(struct keep_store *s, uint64_t parent, const char *name,
	       uint32_t mode, uint64_t rdev, const struct keep_cred *cred,
	       struct keep_attr *out);
int keep_mkdir(struct keep_store *s, uint64_t parent, const char *name,
	       uint32_t mode, const struct keep_cred *cred, struct keep_attr *out);
int keep_symlink(struct keep_store *s, uint64_t parent, const char *name,
		 const char *target, const struct keep_cred *cred,
		 struct keep_attr *out);
/* Copies the target, NUL-terminated, into buf; ERANGE if it does not fit
 * (a target is at most 4095 bytes).  EINVAL if not a symlink. */
int keep_readlink(struct keep_store *s, uint64_t view, uint64_t ino,
		  char *buf, size_t size);

/* Remove a non-directory entry.  The inode lives on, with nlink 0, while
 * the file system layer still holds it (see keep_forget).  Returns 0,
 * ENOENT, EISDIR, ENOTDIR. */
int keep_unlink(struct keep_store *s, uint64_t parent, const char *name);
/* Remove an empty directory; like keep_unlink, the inode lives on with
 * nlink 0 until forgotten.  Returns 0, ENOENT, ENOTDIR, ENOTEMPTY, EINVAL
 * ("."). */
int keep_rmdir(struct keep_store *s, uint64_t parent, const char *name);

enum {
	KEEP_RENAME_NOREPLACE = 1 << 0,
	KEEP_RENAME_EXCHANGE = 1 << 1,
};
/* POSIX rename plus the two renameat2 flags.  A replaced target lives on
 * like an unlinked one.  Returns 0, ENOENT, EEXIST, ENOTEMPTY, EISDIR,
 * ENOTDIR, EINVAL (directory into its own subtree, both flags), EPERM
 * (reserved name). */
int keep_rename(struct keep_store *s, uint64_t parent, const char *name,
		uint64_t newparent, const char *newname, unsigned flags);

/* Hard link.  Returns 0, EEXIST, EPERM (directory), ENOENT, EMLINK. */
int keep_link(struct keep_store *s, uint64_t ino, uint64_t newparent,
	      const char *newname, struct keep_attr *out);

/*
 * The file system layer dropped its last reference to ino (no kernel
 * lookups, no open handles).  If the inode has no links left it is removed
 * from the live tree now.  Always safe to call.
 */
void keep_forget(struct keep_store *s, uint64_t ino);

/*
 * Directory listing.  Offsets are opaque, > 0, and stay valid while entries
 * are added and removed; pass 0 to start.  "." and ".." are not produced
 * (the file system layer adds them).  cb gets each entry's name, its attrs
 * and the offset of the entry after it; returning non-zero stops the walk
 * (the entry counts as not delivered).  Returns 0, ENOENT, ENOTDIR, or the
 * first error.
 */
typedef int (*keep_dirent_cb)(void *ctx, const char *name,
			      const struct keep_attr *attr, uint64_t next_off);
int keep_readdir(struct keep_store *s, uint64_t view, uint64_t dir,
		 uint64_t off, keep_dirent_cb cb, void *ctx);

/* ---- file data --------------------------------------------------------- */

/* Read up to size bytes at off; *nread < size only at end of file.
 * Holes read as zeros.  Returns 0, ENOENT, EISDIR, EIO (damaged data). */
int keep_read(struct keep_store *s, uint64_t view, uint64_t ino, uint64_t off,
	      size_t size, void *buf, size_t *nread);

/* Write size bytes at off, extending the file as needed; updates mtime and
 * ctime.  Returns 0, ENOENT, EISDIR, EFBIG, ENOSPC, EROFS. */
int keep_write(struct keep_store *s, uint64_t ino, uint64_t off,
	       const void *buf, size_t size);

enum {
	KEEP_FALLOC_KEEP_SIZE = 1 << 0,
	KEEP_FALLOC_PUNCH_HOLE = 1 << 1, /* requires KEEP_SIZE */
};
/* Default mode extends the size (holes stay holes: space is not reserved
 * ahead, the store is copy-on-write).  PUNCH_HOLE zeroes the range and
 * frees whole blocks.  Returns 0, EOPNOTSUPP (other modes), EFBIG, ENOSPC. */
int keep_fallocate(struct keep_store *s, uint64_t ino, unsigned mode,
		   uint64_t off, uint64_t len);

/* SEEK_DATA / SEEK_HOLE (whence from <unistd.h>).  Returns 0 with *out set,
 * ENXIO past the end, EINVAL for another whence. */
int keep_lseek(struct keep_store *s, uint64_t view, uint64_t ino, uint64_t off,
	       int whence, uint64_t *out);

/* Copy len bytes; whole aligned blocks are shared (no data copied),
 * the rest is copied.  *copied is less than len only at the source's end
 * of file.  Returns 0, EINVAL (overlapping range in the same file),
 * EISDIR, EFBIG, ENOSPC. */
int keep_copy_range(struct keep_store *s, uint64_t ino_in, uint64_t off_in,
		    uint64_t ino_out, uint64_t off_out, uint64_t len,
		    uint64_t *copied);

/* ---- extended attributes ----------------------------------------------- */

enum {
	KEEP_XATTR_CREATE = 1 << 0,
	KEEP_XATTR_REPLACE = 1 << 1,
};
#define KEEP_XATTR_NAME_MAX 255
#define KEEP_XATTR_SIZE_MAX 65536

/* size 0: *len gets the value's size.  Otherwise ERANGE if it does not fit.
 * Returns 0, ENODATA, ERANGE, ENOENT. */
int keep_getxattr(struct keep_store *s, uint64_t view, uint64_t ino,
		  const char *name, void *buf, size_t size, size_t *len);
/* Returns 0, EEXIST (CREATE), ENODATA (REPLACE), ERANGE (name too long),
 * E2BIG (value over KEEP_XATTR_SIZE_MAX), EINVAL (empty name, both flags),
 * ENOSPC. */
int keep_setxattr(struct keep_store *s, uint64_t ino, const char *name,
		  const void *value, size_t size, unsigned flags);
/* NUL-separated names, as listxattr(2).  size 0: *len gets the size
 * needed.  Returns 0, ERANGE. */
int keep_listxattr(struct keep_store *s, uint64_t view, uint64_t ino,
		   char *buf, size_t size, size_t *len);
/* Returns 0, ENODATA. */
int keep_removexattr(struct keep_store *s, uint64_t ino, const char *name);

/* ---- commits ----------------------------------------------------------- */

/*
 * Make every change so far durable as one commit (a checkpoint of the
 * whole tree), fsynced before return.  A no-op (returning the last commit
 * id) when nothing changed.  If the commit fails the store becomes
 * read-only (KEEP_E_READONLY from then on) and stays consistent on disk at
 * the previous commit.  *id may be NULL.
 */
int keep_commit(struct keep_store *s, uint64_t *id);

/*
 * The same commit, all-or-nothing, without waiting for the disk: it
 * survives the crash of any process at once, and a power loss once a later
 * keep_commit() (or the store's own checkpoint) has synced it.  For
 * commits nobody waits on (a timer, a full dirty cache).
 */
int keep_commit_nosync(struct keep_store *s, uint64_t *id);

/* Monotonic time (CLOCK_MONOTONIC, ns) of the first change not yet
 * committed, or 0 when there is none. */
int64_t keep_dirty_since(struct keep_store *s);

/* Id of the newest commit (0 if none); on a read-only handle, the newest
 * one committed by any process. */
uint64_t keep_last_commit(struct keep_store *s);

/* ---- snapshots and commits --------------------------------------------- */

/*
 * A snapshot is a named, retained commit.  Names are 1 to
 * KEEP_SNAP_NAME_MAX bytes, any byte but '/' and NUL, not "." or "..", and
 * not starting with '@' (that prefix names points in time); they compare
 * as bytes.  A snapshot's id is never reused, so it can identify the
 * snapshot's view for good.
 *
 * Every function of this section works on read-only handles too, which see
 * the committed state (a mounted store's daemon never leaves a snapshot
 * change uncommitted); the functions that change snapshots return EROFS
 * there.
 */
#define KEEP_SNAP_NAME_MAX 255

enum {
	KEEP_ORIGIN_MANUAL = 0,	     /* asked for by a user */
	KEEP_ORIGIN_AUTO = 1,	     /* taken by the retention policy */
	KEEP_ORIGIN_PRE_RESTORE = 2, /* taken before a restore */
	KEEP_ORIGIN_RECEIVED = 3,    /* arrived in a send stream */
};

/* "manual", "auto", "pre-restore", "received"; "unknown" otherwise. */
const char *keep_origin_name(int origin);

struct keep_snapshot {
	uint64_t id;	    /* > 0, never reused within a store */
	uint64_t commit;    /* the commit it names */
	int64_t created_ns; /* when the snapshot was taken (CLOCK_REALTIME) */
	int64_t commit_ns;  /* the commit's time */
	int origin;	    /* KEEP_ORIGIN_* */
	char name[KEEP_SNAP_NAME_MAX + 1];
};

/* Is name a valid snapshot name?  Returns 0, EINVAL (empty, ".", "..",
 * contains '/', starts with '@') or ENAMETOOLONG. */
int keep_snapshot_name_check(const char *name);

/*
 * Commit every change made so far (durably, as keep_commit) and name that
 * commit; the snapshot row is part of that same commit, so a crash keeps
 * both or neither.  Changes still in memory, and those a concurrent commit
 * is encoding, are included.  When nothing changed since the last commit,
 * the snapshot names the last commit and no empty commit is made.  The
 * time taken does not depend on the size of the tree.  *out (may be NULL)
 * gets the snapshot.  A refusal (EEXIST, a bad name, ENOSPC) commits
 * nothing.  Returns 0, EEXIST (name taken), EINVAL/ENAMETOOLONG (bad
 * name), KEEP_E_INVAL (origin not a KEEP_ORIGIN_*), EROFS (read-only
 * handle), ENOSPC (the backing file system is nearly full),
 * KEEP_E_READONLY (this or an earlier commit failed).
 */
int keep_snapshot_create(struct keep_store *s, const char *name, int origin,
			 struct keep_snapshot *out);
/* Drop the name (no data is freed: that is garbage collection's work).
 * Durable before return.  The writer holds all pending changes in one
 * transaction, so they are committed with the deletion, as by
 * keep_commit.  Returns 0, ENOENT, EROFS, KEEP_E_READONLY. */
int keep_snapshot_delete(struct keep_store *s, const char *name);
/* Durable before return, committing pending changes with it like
 * keep_snapshot_delete.  The snapshot keeps its id, commit and view; an
 * automatic or pre-restore snapshot becomes manual, so retention keeps it
 * (renaming is how a user pins one).
 * Returns 0, ENOENT (no oldname), EEXIST (newname taken),
 * EINVAL/ENAMETOOLONG (bad newname), EROFS, KEEP_E_READONLY.  Renaming a
 * snapshot to its own name is a no-op (0 if it exists). */
int keep_snapshot_rename(struct keep_store *s, const char *oldname,
			 const char *newname);
/* Find a snapshot by name.  Returns 0 or ENOENT. */
int keep_snapshot_get(struct keep_store *s, const char *name,
		      struct keep_snapshot *out);
/* Find a snapshot by id.  Returns 0 or ENOENT. */
int keep_snapshot_by_id(struct keep_store *s, uint64_t id,
			struct keep_snapshot *out);
/*
 * Snapshots with id > after, in id order (which is creation order).  cb
 * returning non-zero stops the walk and is returned.  Returns 0 or an
 * error.  No store lock is held while cb runs, so cb may call back into
 * the store.
 */
typedef int (*keep_snapshot_cb)(void *ctx, const struct keep_snapshot *snap);
int keep_snapshot_list(struct keep_store *s, uint64_t after,
		       keep_snapshot_cb cb, void *ctx);

/* Counts of one committed view (O(size of the tree)). */
struct keep_view_stats {
	uint64_t files;	 /* regular files */
	uint64_t dirs;	 /* directories, its root included */
	uint64_t others; /* symlinks, fifos, sockets, devices */
	uint64_t logical_bytes; /* sum of regular file sizes */
};
/* view is a commit id or KEEP_LIVE (for a read-only handle: the committed
 * live tree).  Objects that lost their last name but are still open are
 * not counted.  Returns 0, ENOENT (no such commit). */
int keep_view_stats(struct keep_store *s, uint64_t view,
		    struct keep_view_stats *out);

struct keep_commit_info {
	uint64_t id;
	/* CLOCK_REALTIME when it was made, or 1 ns past the previous
	 * commit's time if the clock had stepped back: times grow with ids */
	int64_t time_ns;
};
/* Commits with id > after in id order; cb as keep_snapshot_list. */
typedef int (*keep_commit_cb)(void *ctx, const struct keep_commit_info *c);
int keep_commit_list(struct keep_store *s, uint64_t after, keep_commit_cb cb,
		     void *ctx);
/* Does commit id exist?  Returns 0 with its time, or ENOENT. */
int keep_commit_get(struct keep_store *s, uint64_t id,
		    struct keep_commit_info *out);
/* The newest commit made at or before time_ns (one index seek).  Returns 0
 * or ENOENT (every commit is newer, or there is none). */
int keep_commit_at(struct keep_store *s, int64_t time_ns, uint64_t *id);

/*
 * Parse a point in time: UTC ISO-8601 "2026-11-24T08:35:00Z" (seconds
 * optional, a fraction ".123" of 1 to 9 digits allowed after seconds),
 * with an offset "2026-11-24T09:35:00+01:00" (or "+0100"), or relative to
 * now_ns: "-30s", "-10m", "-2h", "-1d", "-1w" (a positive integer and one
 * unit).  Strict: the zone is required, every field is range-checked
 * (no month 13, February 30, hour 24 or second 60), nothing may follow,
 * and a result outside int64 is refused.  Returns 0 with *out (ns since
 * the epoch), or EINVAL (*out untouched).
 */
int keep_parse_time(const char *text, int64_t now_ns, int64_t *out);
/*
 * The time of history, in ns since the epoch: commit and snapshot times,
 * the journal window, automatic snapshots and their retention, relative
 * @TIME.  CLOCK_REALTIME, unless the environment names a test clock:
 * KEEPFS_TEST_CLOCK=FILE, a file holding seconds since the epoch (a
 * fraction allowed), read at every call, so that a test can move time on
 * by months in seconds.  File times (mtime, ctime) always follow the real
 * clock.
 */
int64_t keep_clock_ns(void);
/* Parse a duration: "0", or a positive integer and one unit of s, m, h,
 * d, w ("90s", "15m", "1h", "30d", "8w").  Returns 0 with *out in ns, or
 * EINVAL (*out untouched). */
int keep_parse_duration(const char *text, int64_t *out);
/* Format ns since the epoch as "2026-11-24T08:35:00Z" (UTC, whole
 * seconds, rounded down) into buf (at least 21 bytes; a shorter buffer
 * gets a NUL-terminated prefix). */
void keep_format_time(int64_t ns, char *buf, size_t size);

/* Inode numbers stay below this (creating an object when the next number
 * would reach it is ENOSPC, and changes nothing): the file system layer
 * packs a view number above these bits. */
#define KEEP_INO_BITS 40
#define KEEP_INO_LIMIT ((UINT64_C(1) << KEEP_INO_BITS) - 16)

/* ---- differences between views ---------------------------------------- */

/*
 * keep_diff reports what differs between view a and view b, each a commit
 * id or KEEP_LIVE.  The live tree of the writer includes its uncommitted
 * changes (rows and dirty file data); a read-only handle sees committed
 * state only, so KEEP_LIVE there is the newest commit.  a may be newer
 * than b (the difference is then reported backwards, as it reads: from a
 * to b); a == b reports nothing.
 *
 * The cost follows the number of inodes changed between the two commits,
 * not the size of the tree: a change journal names the inodes touched by
 * each commit.  Commits older than the journal (a store made before it,
 * until its first writable open) are compared by a scan of every versioned
 * table instead, which finds the same differences.
 *
 * Rules, applied to every inode the journal names:
 *
 *  - An object exists in a view when its inode is there with a link count
 *    above 0 (files unlinked while open do not exist).  Its names are its
 *    directory entries; a path is its names joined from the root, the
 *    root itself being ".".  Paths are bytes (any byte but '/' and NUL).
 *  - Changed, for an object in both views:
 *      regular files, symlinks, devices, fifos, sockets: type and
 *      permission bits, owner, group, size, rdev, mtime, content (the
 *      bytes: another size is other content; the block maps are compared,
 *      and for the live tree the bytes of dirty blocks),
 *      symlink target, extended attributes (names and values);
 *      directories: permission bits, owner, group and extended attributes
 *      only.  A directory whose entries were added, removed or renamed is
 *      not itself changed (the entries are the change, as in git), and
 *      its times follow its entries, so they are not compared.
 *    ctime alone is not a change (every rename and link moves it), nor is
 *    atime, nor the link count (the names show it).
 *  - Per name, for an object in both views: a name kept (same directory,
 *    same name) is reported KEEP_DIFF_MODIFIED when the object changed;
 *    names only in a and names only in b are paired in path order as
 *    KEEP_DIFF_RENAMED (flag KEEP_DIFF_CHANGED set when the object
 *    changed too); the names left over are KEEP_DIFF_REMOVED or
 *    KEEP_DIFF_ADDED with the flag KEEP_DIFF_LINK (a hard link made or
 *    removed: the object lives on).  An object only in a: each of its
 *    names KEEP_DIFF_REMOVED; only in b: KEEP_DIFF_ADDED.  Every path of
 *    a removed directory tree, and of an added one, is reported.
 *  - A renamed directory is one entry: the paths under it are not
 *    reported unless they changed themselves.
 *  - Replacement: when the same path is removed (one object) and added
 *    (another), as when a temporary file is renamed over a file or a file
 *    is deleted and made again, the two are one KEEP_DIFF_MODIFIED entry
 *    with flag KEEP_DIFF_REPLACED and the two inode numbers (git shows a
 *    modified path).  The object that came from another name then shows
 *    that name removed (a rename onto a path that existed is not a
 *    rename of the path).  This is decided on the paths as printed in
 *    each view.
 *
 * Entries are passed to cb in byte order of their path (path_a for
 * removals, path_b otherwise), each change once, after the store lock is
 * released (cb may call back into the store).  Pointers in the entry are
 * valid during the call only.  cb returning non-zero stops the walk and
 * is returned.  The differences are gathered first, in memory
 * proportional to their number, under the store lock (the writer waits
 * meanwhile).
 *
 * Returns 0, ENOENT (a or b is not a commit of this store), KEEP_E_NOMEM,
 * KEEP_E_CORRUPT, cb's value, or another error.
 */
enum keep_diff_kind {
	KEEP_DIFF_ADDED = '+',
	KEEP_DIFF_REMOVED = '-',
	KEEP_DIFF_MODIFIED = 'M',
	KEEP_DIFF_RENAMED = 'R',
};

/* What changed, in keep_diff_entry.flags. */
enum {
	KEEP_DIFF_CHANGED = 1 << 0,  /* RENAMED: the object changed too */
	KEEP_DIFF_DATA = 1 << 1,     /* content or symlink target */
	KEEP_DIFF_ATTR = 1 << 2,     /* mode, owner, group, size, rdev, mtime */
	KEEP_DIFF_XATTR = 1 << 3,    /* extended attributes */
	KEEP_DIFF_REPLACED = 1 << 4, /* MODIFIED: another object, same path */
	KEEP_DIFF_LINK = 1 << 5,     /* ADDED/REMOVED: a name, not the object */
};

struct keep_diff_entry {
	int kind;	/* enum keep_diff_kind */
	unsigned flags; /* KEEP_DIFF_* above */
	/* side a and side b; ino 0, path NULL, mode 0 when absent */
	uint64_t ino_a, ino_b;
	const char *path_a, *path_b;
	uint32_t mode_a, mode_b;
	uint64_t size_a, size_b;
};

/* Options of keep_diff. */
enum {
	KEEP_DIFF_FULL_SCAN = 1 << 0, /* ignore the journal (checks, tests) */
};

typedef int (*keep_diff_cb)(void *ctx, const struct keep_diff_entry *e);
int keep_diff(struct keep_store *s, uint64_t a, uint64_t b, unsigned opts,
	      keep_diff_cb cb, void *ctx);

/* ---- history of a path --------------------------------------------------- */

/*
 * keep_history reports every version of one path, as the committed views
 * of the store saw it: the path is followed, not the object.  When another
 * object takes the path (a temporary file renamed over it, as editors and
 * MCP servers write atomically; a file deleted and made again; a
 * directory on the way replaced), that is a new version of the path,
 * kind KEEP_DIFF_MODIFIED with flag KEEP_DIFF_REPLACED, not a removal and
 * an addition.
 *
 * path is relative to the root, '/'-separated ("" is the root itself);
 * no component may be "." or "..", and none is followed as a symbolic
 * link (the history of a link is the link's).  Components are looked up
 * in the directories that held them at each commit, so a path under a
 * directory that was renamed away and made again follows the new one.
 *
 * A version begins at the commit where the path first showed it:
 *   KEEP_DIFF_ADDED    the path appeared (made, or renamed there);
 *   KEEP_DIFF_MODIFIED the object at the path changed, by the rules of
 *                      keep_diff (flags DATA, ATTR, XATTR: atime, ctime
 *                      and the link count alone make no version), or was
 *                      replaced by another (flag REPLACED, with the
 *                      others telling how the two differ);
 *   KEEP_DIFF_REMOVED  the path went away (ino, mode and size are then
 *                      the object that went).
 * Only committed changes are versions: the writer's uncommitted ones are
 * not yet.  A path that never existed has no versions (0 is returned and
 * cb never called).
 *
 * Versions are passed newest first, after the store lock is released (cb
 * may call back into the store); cb returning non-zero stops and is
 * returned.  The cost follows the number of rows of the objects that held
 * the path and of the directory entries on the way, not the tree or the
 * number of commits.
 *
 * Returns 0, KEEP_E_INVAL (bad path), KEEP_E_NOMEM, KEEP_E_CORRUPT, cb's
 * value, or another error.
 */
struct keep_version {
	uint64_t commit; /* the commit that made this version */
	int64_t time_ns; /* that commit's time */
	uint64_t until;	 /* the commit of the next version; 0: current */
	int kind;	 /* KEEP_DIFF_ADDED, _MODIFIED or _REMOVED */
	unsigned flags;	 /* KEEP_DIFF_DATA, _ATTR, _XATTR, _REPLACED */
	uint64_t ino;	 /* the object at the path */
	uint32_t mode;
	uint64_t size;
	uint64_t old_ino; /* REPLACED: the object it replaced */
};

typedef int (*keep_history_cb)(void *ctx, const struct keep_version *v);
int keep_history(struct keep_store *s, const char *path, keep_history_cb cb,
		 void *ctx);

/* ---- garbage collection -------------------------------------------------- */

/*
 * keep_gc drops what nothing retains any more.  A commit is retained when
 * it is the newest, was made within journal_ns before now_ns, is named by
 * a snapshot, or is one of pins (views in use); every other commit is
 * dropped, then every row version that no retained commit can see, then
 * every blob that no row references.  A store made with incremental
 * auto-vacuum (every store since it exists) gives the freed pages back to
 * the file system, so its file shrinks (at the next WAL checkpoint).
 * Nothing any retained view shows changes.
 *
 * Pending changes are committed first.  The work goes in small steps,
 * each its own transaction under the store lock (an application waits
 * for one step at most, a few milliseconds), and is resumed where it
 * stopped by the next call after a crash or after max_ms.
 *
 * Needs a writable handle.  Returns 0 (out->done tells whether all the
 * work is done), EROFS, KEEP_E_INVAL, KEEP_E_READONLY or another error.
 */
struct keep_gc_req {
	int64_t now_ns;	    /* 0: the clock */
	int64_t journal_ns; /* the journal window (>= 0) */
	const uint64_t *pins;
	size_t npins;
	unsigned max_ms; /* 0: until done; else stop after about this long */
};

struct keep_gc_result {
	uint64_t commits;    /* commits dropped */
	uint64_t rows;	     /* row versions dropped */
	uint64_t blobs;	     /* blobs dropped */
	uint64_t blob_bytes; /* their stored (compressed) bytes */
	uint64_t pages;	     /* database pages given back */
	uint64_t page_bytes; /* their size */
	int done;	     /* non-zero: nothing is left to do */
};

int keep_gc(struct keep_store *s, const struct keep_gc_req *req,
	    struct keep_gc_result *out);

/* ---- retention settings ------------------------------------------------ */

/*
 * The settings a store keeps for its retention and garbage collection,
 * each with a text form used by `keepfs config` and the mount options:
 *   journal      DURATION  every commit stays this long (default 1h; 0)
 *   auto         INTERVAL  automatic snapshots, or "off" (default 15m;
 *                          at least 1m)
 *   hourly, daily, weekly, monthly
 *                COUNT     auto snapshots kept, one per period
 *                          (24, 30, 8, 12)
 *   prerestore   COUNT     pre-restore snapshots kept (10)
 *   max_history  BUDGET    "none", a size ("20G") or a percentage of the
 *                          backing file system ("10%") (none)
 * DURATION is "0" or a whole number and one of s, m, h, d, w.  COUNT is
 * 0 to 100000.
 */
struct keep_policy {
	int64_t journal_ns;
	int64_t auto_ns; /* 0: off */
	uint32_t hourly, daily, weekly, monthly;
	uint32_t prerestore;
	uint64_t max_history_bytes; /* 0 with pct 0: no budget */
	uint32_t max_history_pct;   /* 1 to 100, or 0 */
};

/* The names, in display order, NULL-terminated. */
extern const char *const keep_policy_keys[];
void keep_policy_default(struct keep_policy *p);
/* Parse value for key into p.  Returns 0, or EINVAL with a message
 * ("bad value 'x' for journal: ...", "unknown setting 'x' ...") in err. */
int keep_policy_set(struct keep_policy *p, const char *key, const char *value,
		    char *err, size_t errlen);
/* The canonical text of key's value ("1h", "off", "10%").  Returns 0 or
 * KEEP_E_INVAL (unknown key). */
int keep_policy_get(const struct keep_policy *p, const char *key, char *buf,
		    size_t len);
/* The store's settings: the defaults, with those set in the store. */
int keep_policy_load(struct keep_store *s, struct keep_policy *p);
/*
 * Set n settings in the store, durably and all at once: each value as
 * keep_policy_set takes it, or "default" to drop the setting.  Every pair
 * is checked first; a bad one changes nothing (EINVAL, message in err).
 * Pending changes are committed first.  Needs a writable handle.
 */
int keep_policy_put(struct keep_store *s, size_t n,
		    const char *const *keys, const char *const *values,
		    char *err, size_t errlen);

/*
 * Apply the retention of snapshots: automatic snapshots keep the newest of
 * each of the `hourly` most recent hours that have one, and likewise of
 * days, weeks (Monday to Sunday) and months, in UTC; the newest automatic
 * snapshot always stays.  The newest `prerestore` pre-restore snapshots
 * stay.  Manual and received snapshots are never deleted.  Each deletion
 * is passed to deleted (may be NULL); *ndeleted (may be NULL) gets their
 * count.  Returns 0 or the first error.
 */
int keep_retain(struct keep_store *s, const struct keep_policy *p,
		keep_snapshot_cb deleted, void *ctx, uint64_t *ndeleted);
/* Is an automatic snapshot due at now_ns: auto is on, the newest auto
 * snapshot was taken at least `auto` ago, and something changed since it?
 * Without any auto snapshot, base (may be NULL: "long ago, before any
 * commit") stands for it: a mount passes its start, so the first comes
 * one interval after the mount.  Sets *due.  Returns 0 or an error. */
struct keep_auto_base {
	int64_t time_ns;
	uint64_t commit;
};
int keep_auto_due(struct keep_store *s, const struct keep_policy *p,
		  int64_t now_ns, const struct keep_auto_base *base, int *due);
/*
 * The space each commit holds alone: for every commit that is the only
 * one to see some blobs (no other commit, not the live tree), cb gets the
 * commit and those blobs' stored bytes.  What deleting the one snapshot of
 * such a commit would free once the journal window no longer keeps it.
 * O(block rows); cb runs under the store lock and must not call into the
 * store.  Returns 0, cb's value, or an error.
 */
/* The bytes max_history allows history: the size given, or the share of
 * the backing file system's size; 0 when there is no budget. */
uint64_t keep_history_budget(struct keep_store *s, const struct keep_policy *p);
typedef int (*keep_space_cb)(void *ctx, uint64_t commit, uint64_t bytes);
int keep_commit_space(struct keep_store *s, keep_space_cb cb, void *ctx);

/* ---- restore ------------------------------------------------------------ */

/*
 * keep_restore makes parts of the live tree (or all of it) exactly what
 * they were in a committed view: content, attributes, extended
 * attributes, symlink targets and hard links; entries made since go away
 * and entries removed since come back.  No file data is copied: restored
 * objects get new row versions that point at the blobs they had.
 *
 * Paths are relative to the root, '/'-separated ("" or "/" is the root);
 * every component must be a directory in the view (symbolic links are not
 * followed, a restore acts on the link itself).  Without paths the whole
 * tree is restored.
 *
 * In place (no `to`): each path's object in FROM takes its place in the
 * live tree, whatever is there now.  An object keeps its inode number when
 * the live tree has it only inside the restored path (or not at all);
 * one that now also lives elsewhere (moved out, or hard-linked from
 * outside) is restored as a new object, so nothing outside the path
 * changes.  The directory holding the path must exist in the live tree.
 * With `to` (one path): FROM's object is placed at `to`, which must not
 * exist, as a new object (objects live nowhere else keep their numbers).
 *
 * Atomic: every change is one commit, made durable before return.  Before
 * it, every change made so far is committed; when pre_snapshot is given,
 * a snapshot of that state (origin KEEP_ORIGIN_PRE_RESTORE) is part of the
 * restore's commit, so a crash keeps both or neither.  When nothing
 * differs, nothing is committed and no snapshot is made (result->changes
 * is 0).
 *
 * Each change the kernel may cache is reported to cb after the store's
 * locks are released: objects whose attributes, data or xattrs changed
 * (with their new attributes), names that changed (removed, added, or now
 * naming another object), and objects left without a name (reclaim them
 * with keep_forget when nothing holds them open).
 *
 * Returns 0; ENOENT (from is not a commit, or see result->bad);
 * EEXIST (`to` exists); ENOTDIR; EINVAL (bad path, `to` with other than
 * one path, a path into `.snapshots`); EPERM (`to` is the reserved name);
 * EEXIST for a taken snapshot name; ENOSPC; EROFS; KEEP_E_READONLY.  A
 * refusal changes nothing.
 */
struct keep_restore_req {
	uint64_t from;		   /* the commit to restore from */
	const char *const *paths;  /* NULL or npaths 0: the whole tree */
	size_t npaths;
	const char *to;		   /* or NULL: in place */
	const char *pre_snapshot;  /* name, or NULL: no snapshot */
};

enum keep_restore_bad {
	KEEP_RESTORE_OK = 0,
	KEEP_RESTORE_NOT_IN_FROM,  /* paths[bad_index] is not in FROM */
	KEEP_RESTORE_NO_PARENT,    /* its directory is not in the live tree */
	KEEP_RESTORE_TO_EXISTS,    /* `to` exists */
	KEEP_RESTORE_TO_NO_PARENT, /* `to`'s directory is not in the tree */
	KEEP_RESTORE_SNAPSHOT,	   /* the snapshot name is taken or bad */
};

struct keep_restore_result {
	uint64_t commit;	   /* the restore's commit (0: none) */
	uint64_t changes;	   /* objects and names changed */
	struct keep_snapshot pre;  /* the pre-restore snapshot (id 0: none) */
	int bad;		   /* enum keep_restore_bad, on a refusal */
	size_t bad_index;	   /* the path it is about */
};

enum keep_restore_event_kind {
	KEEP_RESTORED_OBJECT = 1,  /* ino: attributes, data or xattrs */
	KEEP_RESTORED_NAME = 2,	   /* name in parent */
	KEEP_RESTORED_UNLINKED = 3, /* ino has no name left */
};

struct keep_restore_event {
	int kind;
	uint64_t ino;		 /* OBJECT, UNLINKED */
	struct keep_attr attr;	 /* OBJECT: its attributes now */
	uint64_t parent;	 /* NAME */
	const char *name;	 /* NAME */
};

typedef int (*keep_restore_cb)(void *ctx, const struct keep_restore_event *e);
int keep_restore(struct keep_store *s, const struct keep_restore_req *req,
		 keep_restore_cb cb, void *ctx,
		 struct keep_restore_result *result);

/* ---- statistics -------------------------------------------------------- */

struct keep_stats {
	uint64_t commits;	/* commits in the store */
	uint64_t last_commit;	/* id of the newest */
	int64_t last_commit_ns; /* its time */
	uint64_t files;		/* live regular files */
	uint64_t dirs;		/* live directories (root included) */
	uint64_t others;	/* live symlinks, fifos, sockets, devices */
	uint64_t logical_bytes; /* sum of live file sizes */
	uint64_t live_block_bytes; /* bytes of stored (non-hole) live blocks */
	uint64_t history_block_bytes; /* the same over every row version */
	uint64_t blobs;		   /* distinct blobs */
	uint64_t blob_raw_bytes;   /* their decoded size */
	uint64_t blob_stored_bytes; /* their size as stored */
	uint64_t live_stored_bytes; /* stored bytes of the blobs the live
				       tree references */
	uint64_t history_stored_bytes; /* those only history references */
	uint64_t db_bytes;	   /* store.db + store.db-wal on disk */
	uint32_t block_size;
	uint32_t format_version;
	int encrypted;
	char uuid[37];
	char replica_of[37]; /* the source's uuid; "" unless a replica */
};

/* The state this handle sees: the committed state for a read-only handle
 * (a mounted store's uncommitted changes are not seen), the live state
 * with its uncommitted rows for the writer.  Dedup ratio = history_block_bytes / blob_raw_bytes; compression ratio =
 * blob_raw_bytes / blob_stored_bytes. */
int keep_stats(struct keep_store *s, struct keep_stats *out);

/* ---- consistency ------------------------------------------------------- */

/*
 * A place a problem affects: a path in one view.  Views are the live
 * tree, a snapshot, or journal commits (commits no snapshot names; a run
 * of them where the path is the same is one place).
 */
enum {
	KEEP_AFFECT_LIVE = 1,
	KEEP_AFFECT_SNAPSHOT = 2,
	KEEP_AFFECT_COMMITS = 3,
};

struct keep_affect {
	int view;	      /* KEEP_AFFECT_* */
	const char *snapshot; /* _SNAPSHOT: its name (bytes, no NUL) */
	uint64_t first, last; /* _SNAPSHOT: its commit (both); _COMMITS:
				 the lowest and the highest commit */
	uint64_t commits;     /* _COMMITS: how many commits */
	/* 0: path starts at the root ("/a/b", "/" for the root itself).
	 * Else no path to the root was found (no name, a cycle): path is
	 * below the directory or file with this inode number ("" for
	 * itself, "/x" for its entry x). */
	uint64_t inode;
	const char *path;
	int64_t offset; /* the damaged block's offset in the file; -1: none */
};

#define KEEP_AFFECTS_MAX 10

enum {
	KEEP_PROBLEM_DATA = 1 << 0, /* file contents are damaged or missing */
};

struct keep_problem {
	const char *what; /* one line, e.g. "blob 17: does not decode" */
	unsigned flags;	  /* KEEP_PROBLEM_* */
	/* The places affected, live tree first, then snapshots by commit,
	 * then journal commits; at most KEEP_AFFECTS_MAX, `more` counts the
	 * rest.  None when the problem is about no file (a snapshot row, the
	 * journal, SQLite's own structure, a blob nothing uses). */
	const struct keep_affect *affects;
	size_t naffects;
	uint64_t more;
};

/*
 * Check the store's invariants (SQLite integrity, references, link counts,
 * overlapping lifetimes, tree shape of the live view and of the newest
 * commit, the change journal of keep_diff; with data != 0 also decode
 * every blob and check its hash).
 * Each problem is passed to cb (may be NULL); what it points to lives
 * until cb returns.
 * Returns 0 when clean, KEEP_E_CORRUPT when problems were found, or an
 * error that stopped the check.  *problems (may be NULL) gets the count.
 */
typedef void (*keep_problem_cb)(void *ctx, const struct keep_problem *p);
int keep_check(struct keep_store *s, int data, keep_problem_cb cb, void *ctx,
	       uint64_t *problems);

/*
 * Garbage: what no view can see, which keep_repair may drop.  Rows: row
 * versions (inodes, entries, blocks, xattrs) with died set and no commit
 * left in [born, died).  Blobs: blobs no block row but such garbage
 * references (but the one with the highest id, which always stays: see
 * keep_gc).  Garbage is
 * not a problem; keep_gc drops what its own bookkeeping knows of, this
 * finds all of it (one pass over every table).
 */
struct keep_garbage {
	uint64_t rows;
	uint64_t blobs;
	uint64_t blob_bytes; /* stored bytes of those blobs */
};

int keep_garbage(struct keep_store *s, struct keep_garbage *out);

struct keep_repair_result {
	struct keep_garbage dropped;
	char backup[4200]; /* the copy taken first; "" when nothing changed */
};

/*
 * Drop the garbage (see keep_garbage), after copying the database to
 * STORE/store.db.before-repair-YYYYmmddTHHMMSSZ (online backup, the file
 * mode 0600).  Nothing else changes: every view shows exactly what it
 * showed.  With no garbage nothing is copied or changed.  s must be
 * writable (which an unmounted store is).  Returns 0, EROFS (read-only
 * handle), KEEP_E_CORRUPT (SQLite finds the database itself damaged:
 * deleting rows there is not safe, so nothing is done), or an error of
 * the copy or of the change (which then changes nothing).
 */
int keep_repair(struct keep_store *s, struct keep_repair_result *out);

/* ---- send and receive ------------------------------------------------------ */

/*
 * A send stream carries one snapshot of a store to another place: a
 * header (the source store's identity, the snapshot's and, for an
 * incremental stream, its base's), the blobs the receiver needs exactly
 * as the source stores them (compressed; sealed, for an encrypted store:
 * nothing in the stream is plaintext file data), the snapshot's metadata
 * rows, and an end record with totals; every record carries a check
 * chained over everything before it.  A full stream holds the whole
 * view; one with a base holds what changed since it, and only the blobs
 * that no object of the base uses.
 *
 * A replica is a store made by receiving streams: its commits are the
 * source's snapshot commits (same ids and times), its live tree is the
 * newest snapshot received, and it is read-only to everything but the
 * next receive until keep_promote.  An encrypted source's replica holds
 * the same wrapped key, so the source's secret opens it; receiving needs
 * no secret.
 */
typedef int (*keep_write_fn)(void *ctx, const void *buf, size_t len);
/* 0 with *got bytes (0 only at the end of the input), or an errno */
typedef int (*keep_read_fn)(void *ctx, void *buf, size_t len, size_t *got);

/* What a stream is, from its header. */
struct keep_stream_info {
	char source[37];	/* the source store's uuid */
	char name[KEEP_SNAP_NAME_MAX + 1];
	uint64_t commit;
	int64_t commit_ns, created_ns;
	int origin;		/* KEEP_ORIGIN_* */
	int incremental;
	char base[KEEP_SNAP_NAME_MAX + 1]; /* incremental: the base */
	uint64_t base_commit;
	int encrypted;
	uint32_t block_size;
	uint64_t expect_bytes;	/* the sender's estimate of the stream */
};

/* Totals of a send or a receive. */
struct keep_xfer {
	uint64_t objects;    /* objects sent whole, changed or removed */
	uint64_t rows;	     /* metadata rows (added or ended) */
	uint64_t blobs;	     /* blobs in the stream */
	uint64_t blob_bytes; /* their stored bytes */
	uint64_t new_blobs;  /* receive: the blobs the replica lacked */
	uint64_t bytes;	     /* bytes of the stream */
};

struct keep_send_req {
	const char *snapshot; /* the snapshot to send */
	const char *base;     /* NULL: a full stream; else an older snapshot */
	/* called once the header is written (may be NULL) */
	void (*started)(void *ctx, const struct keep_stream_info *info);
	void *ctx;
};

/*
 * Write the stream of req->snapshot through write.  The view is read in
 * one read transaction (a mounted store keeps working; what it commits
 * meanwhile is not in the stream).  Objects that lost their last name
 * but are still open are not part of a view here.
 * Returns 0 with *out (may be NULL) filled; ENOENT (no such snapshot or
 * base: err says which); EINVAL (the base is newer than the snapshot; a
 * base of the same commit makes an empty stream, which gives a replica
 * that has the commit the snapshot's name); KEEP_E_CORRUPT (a blob of the source fails its CRC: the
 * store is damaged, err names it); write's errno (the stream is cut).
 */
int keep_send(struct keep_store *s, const struct keep_send_req *req,
	      keep_write_fn write, void *wctx, struct keep_xfer *out,
	      char *err, size_t errlen);

enum {
	KEEP_RECV_PRUNE = 1 << 0, /* then apply the replica's retention and
				     collect its garbage */
};

struct keep_recv_req {
	const char *path; /* the replica; made if it does not exist */
	unsigned flags;	  /* KEEP_RECV_* */
	/* called once the header is read and accepted (may be NULL) */
	void (*started)(void *ctx, const struct keep_stream_info *info);
	void *ctx;
};

struct keep_recv_result {
	struct keep_stream_info info;
	int created;	/* the replica was made by this receive */
	int already;	/* it had the snapshot: nothing was done */
	struct keep_xfer xfer;
	uint64_t pruned; /* KEEP_RECV_PRUNE: snapshots retention deleted */
	struct keep_gc_result gc;
};

/*
 * Read a stream through read and apply it: the replica at req->path gets
 * the snapshot (made, when the path does not exist or is an empty
 * directory).  All or nothing: the snapshot is one commit, made durable
 * before return, and only after the end record has been checked; a
 * damaged, cut or refused stream leaves the replica as it was (a new one
 * is not made).  A stream whose snapshot the replica has is not read
 * past its header (result->already).
 * Returns 0; KEEP_E_CORRUPT (the stream is damaged or cut, or its rows
 * do not fit the replica: err says what); EEXIST (the path is not a
 * replica of this stream's source, or holds a snapshot of that name with
 * another commit); ENOENT (an incremental stream whose base is not the
 * replica's newest snapshot, or no replica for it); ESTALE (the replica
 * already has a newer snapshot); KEEP_E_LOCKED (in use); ENOSPC; read's
 * errno; another error.  err gets a message for every failure.
 */
int keep_receive(const struct keep_recv_req *req, keep_read_fn read,
		 void *rctx, struct keep_recv_result *out, char *err,
		 size_t errlen);

/* The uuid of the store s is a replica of, into buf (37 bytes); "" when
 * s is not a replica.  Returns 0 or an error. */
int keep_replica_of(struct keep_store *s, char *buf, size_t len);

/*
 * Make a replica an ordinary writable store: it forgets its source, so
 * nothing more can be received into it.  s must be writable.  Returns 0,
 * EINVAL (not a replica), EROFS.
 */
int keep_promote(struct keep_store *s);

#ifdef __cplusplus
}
#endif

#endif /* KEEP_H */
