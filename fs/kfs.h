/*
 * kfs.h - entry points of the keepfs FUSE daemon, for tools/.
 *
 * fs/ owns the mount options and the daemon's life: tools/ parses its own
 * command line, hands the "-o" option string here, and calls kfs_run() in
 * the process that is to become the daemon.
 */
#ifndef KFS_H
#define KFS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "keep.h"

struct keep_store;
struct keep_snapshot;
struct kfs_ctl;

struct kfs_config {
	char *store_path; /* absolute */
	char *mountpoint; /* absolute */

	/* keepfs options */
	double commit_interval;	  /* seconds; "commit_interval=" default 1 */
	uint64_t dirty_limit;	  /* bytes; "dirty_limit=" default 8 MiB */
	int snapdir_visible;	  /* "snapdir=visible|hidden" */
	int writeback;		  /* "writeback=on|off", default on */
	int readdirplus;	  /* "readdirplus=on|off", default on */
	double cache_timeout;	  /* "cache_timeout=" entry/attr, default 60 s */
	unsigned threads;	  /* "threads=" request threads, default: CPUs
				   * online, at least 2 and at most 8 */
	/* retention settings given as mount options ("journal=0,auto=1h"):
	 * they override the store's for this mount; bit i of policy_mask
	 * stands for keep_policy_keys[i] */
	struct keep_policy policy;
	unsigned policy_mask;

	/* generic options */
	int read_only;		  /* "ro" (and "rw" clears it) */
	int rw_given;		  /* "rw" was given (a replica refuses it) */
	int allow_other;	  /* "allow_other" */
	int allow_root;		  /* "allow_root" */
	int debug;		  /* "debug": FUSE request log, LOG_DEBUG */
	int foreground;		  /* set by tools from -f, not an -o option */

	/* an encrypted store's secret: the files named by "passfile=" or
	 * "keyfile=" (tools read them), and what they hold; kfs_run wipes
	 * the secret's bytes once the store is open */
	char *passfile, *keyfile;
	struct keep_secret *secret;

	/* Options passed to the kernel/libfuse as they are ("fsname=",
	 * "subtype=", "max_read=", ...), comma-separated; may be NULL. */
	char *fuse_opts;

	/* Requests on the control socket (below) run this, one at a time,
	 * with the request's argument vector: argv[0] is the command, the
	 * store is the daemon's.  It returns the exit status for the client.
	 * NULL: every request is refused. */
	int (*ctl_handler)(struct kfs_ctl *c, int argc, char **argv);
	void *ctl_ctx;
};

/* Defaults for every field; store_path and mountpoint NULL. */
void kfs_config_init(struct kfs_config *cfg);
void kfs_config_release(struct kfs_config *cfg);

/*
 * Parse a comma-separated mount option string ("a,b=c,...") into cfg.
 * fstab-only options (auto, noauto, nofail, _netdev, user, users, owner,
 * x-systemd.*, comment=*, defaults) are accepted and ignored.  Unknown
 * options and bad values fail: returns -1 and writes a message such as
 * "unknown mount option 'foo'" into err.  Returns 0 on success.
 */
int kfs_config_parse(struct kfs_config *cfg, const char *opts, char *err,
		     size_t errlen);

/*
 * Open the store, mount it and serve requests until unmounted or until
 * SIGTERM/SIGINT/SIGHUP (which commit and unmount).
 *
 * ready_fd (-1 if none): once the mount is live, "OK\n" is written to it;
 * if anything fails before that, "ERR <message>\n" is written instead.
 * Either way the fd is closed afterwards.  The daemon logs through
 * keep_log(); the caller chooses the sink (stderr or syslog).
 *
 * Returns the process exit status: 0 after a clean unmount with the final
 * commit on disk, 1 otherwise.
 */
int kfs_run(const struct kfs_config *cfg, int ready_fd);

/* ---- the control socket -------------------------------------------------
 *
 * A mounted store is changed through its daemon, which listens on the UNIX
 * stream socket STORE/KFS_CTL_NAME (mode 0600; only the daemon's own uid
 * and root are served, checked with SO_PEERCRED).
 *
 * A frame is a length (u32, little-endian) and that many bytes.  The
 * request is one frame: "KEEPFS-CTL 1" NUL, then each argument followed by
 * a NUL (any byte but NUL may travel), at most KFS_CTL_REQUEST_MAX bytes.
 * The magic, its version number and the framing stay as they are in
 * every later version.  The reply is a stream of frames whose first byte
 * says what follows: 'o' bytes of standard output, 'e' bytes of standard
 * error, 'x' the exit status in decimal (the last frame).
 */
#define KFS_CTL_NAME "control"
#define KFS_CTL_MAGIC "KEEPFS-CTL"
#define KFS_CTL_VERSION 1
#define KFS_CTL_REQUEST_MAX (1024 * 1024)
#define KFS_CTL_FRAME_MAX (64 * 1024) /* reply frames, the type byte too */

/* Both ends of the socket: send or receive exactly len bytes (sends never
 * raise SIGPIPE).  Return 0, or an errno: EPIPE when the peer has gone,
 * EAGAIN after the socket's timeout. */
int kfs_ctl_send_all(int fd, const void *buf, size_t len);
int kfs_ctl_recv_all(int fd, void *buf, size_t len);

/* What a ctl_handler may use of its request.  Every function takes the c
 * the handler was given, and only during the call. */

/* cfg->ctl_ctx. */
void *kfs_ctl_ctx(struct kfs_ctl *c);
/* The daemon's store, open for writing.  Do not close it. */
struct keep_store *kfs_ctl_store(struct kfs_ctl *c);
/* The daemon's configuration: store path, mount point, options. */
const struct kfs_config *kfs_ctl_config(struct kfs_ctl *c);
/* The client's standard output and error.  What is written is sent as it
 * is flushed (error flushes output first, so the order holds).  Once the
 * client has gone, writes fail with EPIPE; the command may go on. */
FILE *kfs_ctl_out(struct kfs_ctl *c);
FILE *kfs_ctl_err(struct kfs_ctl *c);

/*
 * Make a snapshot exactly as mkdir in .snapshots does: the kernel hands
 * over what it caches of files open for writing, which are held still
 * until the snapshot's commit, so it holds every write() that returned
 * before.  The kernel is told that .snapshots changed.  *out may be NULL.
 * Returns the codes of keep_snapshot_create(), EROFS on a read-only
 * mount.
 */
int kfs_ctl_snapshot(struct kfs_ctl *c, const char *name, int origin,
		     struct keep_snapshot *out);

/*
 * keep_restore() on the daemon's store, as one step for the kernel: what
 * it caches of files open for writing is handed over first, and whatever
 * it caches of the objects and names the restore changed is dropped (or,
 * for the size and times of open files, set) afterwards.  Returns
 * keep_restore()'s codes, EROFS on a read-only mount.
 */
int kfs_ctl_restore(struct kfs_ctl *c, const struct keep_restore_req *req,
		    struct keep_restore_result *res);

/* Run the mount's retention now (kfs_retain_now), reporting to the
 * client's stdout.  EROFS on a read-only mount. */
int kfs_ctl_retain_now(struct kfs_ctl *c);

/* The store's settings changed (keepfs config): apply them, under the
 * mount's options, at once. */
void kfs_ctl_policy_changed(struct kfs_ctl *c);

/* Garbage collection of the mounted store (keep_gc), keeping the commits
 * of the .snapshots views in use; a journal_ns of -1 takes the setting in
 * force.  EROFS on a read-only mount. */
int kfs_ctl_gc(struct kfs_ctl *c, const struct keep_gc_req *req,
	       struct keep_gc_result *res);

/*
 * After changing the live tree behind the kernel's back (a restore): make
 * the kernel drop what it caches.  Inode numbers are the live tree's node
 * ids.  kfs_ctl_inval_inode drops the attributes and cached pages of ino;
 * kfs_ctl_inval_entry drops the name in directory parent (call it for
 * every name that was removed or now names another inode).  Both return
 * 0 (also when the kernel does not hold the object) or an errno.
 * kfs_ctl_invalidate_all drops the attributes and pages of every live
 * node the kernel holds and, in each such directory, every name the live
 * tree has now; names that no longer exist must be given to
 * kfs_ctl_inval_entry (a name may otherwise resolve for up to
 * cache_timeout).  Call them after the change is committed, outside any
 * lock that a FUSE request might wait for.
 */
int kfs_ctl_inval_inode(struct kfs_ctl *c, uint64_t ino);
int kfs_ctl_inval_entry(struct kfs_ctl *c, uint64_t parent, const char *name);
void kfs_ctl_invalidate_all(struct kfs_ctl *c);

#endif /* KFS_H */
