/*
 * kfs_i.h - private interface between the files of the FUSE daemon.
 *
 * daemon.c  the daemon's life: kfs_run(), init/destroy, the commit timer,
 *           routing libfuse's log into keep_log()
 * config.c  mount option parsing (struct kfs_config)
 * node.c    the node table: kernel node ids, lookup and open counts
 * ops.c     namespace operations (lookup, mkdir, rename, readdir, xattrs...)
 * data.c    file operations (open, read, write, fsync, fallocate...)
 * snap.c    the .snapshots directory, the flush before a snapshot
 * ctl.c     the control socket's server
 *
 * Node ids.  A node id of the live tree is the store's inode number (the
 * root is 1 in both worlds), so resolving a live node needs no table look
 * up.  Node ids with KFS_NODE_VIEW_BIT set are reserved for nodes of
 * read-only views (.snapshots) and are resolved through the table.
 *
 * Locking.  The node table has one mutex, a leaf lock: nothing else is
 * taken while it is held and it is never held across a keep_*() call or a
 * fuse_reply_*() call.
 */
#ifndef KFS_I_H
#define KFS_I_H

#define FUSE_USE_VERSION 312

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>

#include "keep.h"
#include "kfs.h"

/* Seconds the kernel may cache entries and attributes: the daemon is the
 * only way the tree changes, and it invalidates what it changes itself. */
/* Entry and attribute timeout; needs `fs` in scope. */
#define KFS_TIMEOUT (fs->cfg->cache_timeout)

#define KFS_NODE_VIEW_BIT (UINT64_C(1) << 63)

/*
 * View node ids pack a view slot above the inode number:
 *   KFS_NODE_VIEW_BIT | slot << KEEP_INO_BITS | ino
 * and the same value without the top bit is the st_ino the kernel shows,
 * so every object of every view has an st_ino of its own.  Slots
 * 1 .. KFS_SLOT_TIME-1 are snapshot ids (stable across mounts); slots from
 * KFS_SLOT_TIME up are handed out to point-in-time views while in use.
 * The .snapshots directory is slot 0 with the highest inode number, which
 * the store never hands out (KEEP_INO_LIMIT).
 */
#define KFS_SLOT_BITS (63 - KEEP_INO_BITS)
#define KFS_SLOT_TIME (UINT64_C(1) << (KFS_SLOT_BITS - 1))
#define KFS_SLOT_MAX ((UINT64_C(1) << KFS_SLOT_BITS) - 1)
#define KFS_INO_MASK ((UINT64_C(1) << KEEP_INO_BITS) - 1)
#define KFS_SNAPDIR_INO KFS_INO_MASK
#define KFS_SNAPDIR_NODE (KFS_NODE_VIEW_BIT | KFS_SNAPDIR_INO)
#define KFS_SNAPDIR_NAME ".snapshots"

/* Views never change: the kernel may keep what it learns of them this
 * long (seconds); deleting a snapshot invalidates it. */
#define KFS_VIEW_TIMEOUT 86400.0

/* The node id of inode ino in view slot (0: the live tree). */
static inline uint64_t kfs_nodeid_of(uint64_t slot, uint64_t ino)
{
	return slot ? KFS_NODE_VIEW_BIT | slot << KEEP_INO_BITS | ino : ino;
}

static inline uint64_t kfs_st_ino(uint64_t nodeid)
{
	return nodeid & ~KFS_NODE_VIEW_BIT;
}

/* The view slot of a node id (0 for the live tree and .snapshots). */
static inline uint64_t kfs_node_slot(uint64_t nodeid)
{
	if (!(nodeid & KFS_NODE_VIEW_BIT))
		return 0;
	return (nodeid & ~KFS_NODE_VIEW_BIT) >> KEEP_INO_BITS;
}

/* ---- node table (node.c) ----------------------------------------------- */

/* A view the kernel holds nodes of. */
struct kfs_view {
	uint64_t slot;
	uint64_t commit;  /* the commit it shows */
	uint64_t snap_id; /* its snapshot; 0 for a point in time */
	int dead;	  /* the snapshot was deleted: every use is ENOENT */
	uint64_t nodes;	  /* nodes of the table in this view */
	struct kfs_view *next;
};

struct kfs_node {
	uint64_t nodeid;
	uint64_t view; /* slot: 0 for the live tree (and .snapshots) */
	uint64_t ino;  /* inode number inside view */
	struct kfs_view *v; /* NULL for the live tree */
	uint64_t nlookup;
	uint64_t nopen;
	uint64_t nwriters; /* open handles that may write */
	/* What we know of the inode's xattrs (KFS_XATTRS_*), valid while
	 * xattr_gen is unchanged.  Anything that changes xattrs behind the
	 * kernel's back (a restore) must call kfs_node_xattr_changed(). */
	int xattrs;
	uint64_t xattr_gen;
	/* Regular files under the writeback cache (times.c): the times the
	 * kernel last gave or saw, and whether the store has others. */
	int pin_valid;
	int times_stale;
	int attr_stale; /* the kernel's st_blocks may be out of date */
	int64_t pin_mtime_ns, pin_ctime_ns;
	struct kfs_node *next; /* hash chain */
};

enum {
	KFS_XATTRS_UNKNOWN = 0,
	KFS_XATTRS_NONE = 1, /* the inode has no xattrs at all */
	KFS_XATTRS_SOME = 2,
};

struct kfs_nodes {
	pthread_mutex_t lock;
	struct kfs_node **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	uint64_t *stale; /* node ids whose times_stale was set */
	size_t nstale, stale_cap;
	struct kfs_view *views; /* views with nodes in the table */
	uint64_t next_time_slot;
};

/* Returns 0 or ENOMEM. */
int kfs_nodes_init(struct kfs_nodes *t);
/* Frees every node; calls forget(ctx, view, ino) for each one first. */
void kfs_nodes_release(struct kfs_nodes *t,
		       void (*forget)(void *ctx, uint64_t view, uint64_t ino),
		       void *ctx);

/*
 * Resolve a node id to (view, ino): view is KEEP_LIVE or the commit the
 * node's view shows.  Returns 0, or ENOENT (an unknown node, a view whose
 * snapshot was deleted, or .snapshots itself, which has no inode).
 */
int kfs_node_resolve(struct kfs_nodes *t, uint64_t nodeid, uint64_t *view,
		     uint64_t *ino);

/* Take one lookup reference on (slot, ino); *nodeid gets its node id.  A
 * view slot must belong to a node the caller holds (the parent of a
 * lookup, an open directory).  Returns 0, ENOMEM or ENOENT (no such
 * view, or a deleted one). */
int kfs_node_ref(struct kfs_nodes *t, uint64_t slot, uint64_t ino,
		 uint64_t *nodeid);

/* Take one lookup reference on the root of the view of snapshot snap_id
 * (or, with snap_id 0, of the point-in-time view of commit), making the
 * view if the table has none.  Returns 0, ENOMEM, or EOVERFLOW (a
 * snapshot id or the point-in-time slots past what node ids can hold). */
int kfs_view_ref_root(struct kfs_nodes *t, uint64_t snap_id, uint64_t commit,
		      uint64_t *nodeid);

/* The snapshot snap_id was deleted: mark its view dead.  Returns the node
 * ids the kernel may still cache (caller frees *ids), 0 if none. */
size_t kfs_view_kill(struct kfs_nodes *t, uint64_t snap_id, uint64_t **ids);
/* The same for the point-in-time views of a commit that is gone. */
size_t kfs_view_kill_commit(struct kfs_nodes *t, uint64_t commit,
			    uint64_t **ids);
/* The commits of the views with open files or directories (caller frees
 * *out); their count.  A view only cached by the kernel is not in use. */
size_t kfs_view_commits(struct kfs_nodes *t, uint64_t **out);
/* The commits of every live view in the table, in use or only cached. */
size_t kfs_view_all_commits(struct kfs_nodes *t, uint64_t **out);

/*
 * Drop n lookup references.  Aborts if that would make the count negative.
 * Returns 1 when the node became unused (no lookups, no opens) and was
 * removed: *view and *ino then name the inode to pass to keep_forget().
 */
int kfs_node_unref(struct kfs_nodes *t, uint64_t nodeid, uint64_t n,
		   uint64_t *view, uint64_t *ino);

/* Count an open handle (open, create, opendir); writer: it may write.
 * Returns 0 or ENOMEM. */
int kfs_node_open(struct kfs_nodes *t, uint64_t nodeid, int writer);
/* Drop an open handle; same result as kfs_node_unref(). */
int kfs_node_close(struct kfs_nodes *t, uint64_t nodeid, int writer,
		   uint64_t *view, uint64_t *ino);
/* Open handles of the node that may write.  While there is none, the
 * kernel holds no dirty pages of it (close writes them back, and a shared
 * mapping keeps its handle open). */
uint64_t kfs_node_writers(struct kfs_nodes *t, uint64_t nodeid);
/* Does the kernel hold the node (is it in the table)? */
int kfs_node_held(struct kfs_nodes *t, uint64_t nodeid);
/* A restore changed the live node's object behind the kernel: forget its
 * time pin, cached xattr state and attributes.  Returns 1 if the kernel
 * holds the node, 0 if not. */
int kfs_node_restored(struct kfs_nodes *t, uint64_t nodeid);
/* Node ids of the live nodes in the table (KFS_LIST_LIVE), or of those
 * with open handles that may write (KFS_LIST_WRITERS); caller frees *ids.
 * Returns the count, 0 also when out of memory. */
enum { KFS_LIST_LIVE, KFS_LIST_WRITERS };
size_t kfs_node_list(struct kfs_nodes *t, int which, uint64_t **ids);

/*
 * The xattr cache: every "ls -l" asks for security.selinux and ACL xattrs
 * that almost no file has.  kfs_node_xattrs() gives the known state and a
 * generation; kfs_node_xattrs_learn() records a state learnt from the
 * store, unless the generation moved meanwhile; kfs_node_xattr_changed()
 * is called after every change of an inode's xattrs.
 */
int kfs_node_xattrs(struct kfs_nodes *t, uint64_t nodeid, uint64_t *gen);
void kfs_node_xattrs_learn(struct kfs_nodes *t, uint64_t nodeid, uint64_t gen,
			   int state);
void kfs_node_xattr_changed(struct kfs_nodes *t, uint64_t nodeid);

/* Pinned times (see times.c).  kfs_node_pin() returns 1 with the pin
 * when one is set.  kfs_node_pin_set() with force 0 sets only a missing
 * pin; with force 1 it replaces it. */
int kfs_node_pin(struct kfs_nodes *t, uint64_t nodeid, int64_t *mtime_ns,
		 int64_t *ctime_ns);
void kfs_node_pin_set(struct kfs_nodes *t, uint64_t nodeid, int64_t mtime_ns,
		      int64_t ctime_ns, int force);
/* Mark the node's store times stale.  Returns 0 or ENOMEM. */
int kfs_node_mark_stale(struct kfs_nodes *t, uint64_t nodeid);
/* If the node's times are stale: clear the mark and return 1 with the
 * pin. */
int kfs_node_take_stale(struct kfs_nodes *t, uint64_t nodeid,
			int64_t *mtime_ns, int64_t *ctime_ns);
/* Set or take (return and clear) the node's attr_stale mark. */
void kfs_node_attr_stale(struct kfs_nodes *t, uint64_t nodeid);
int kfs_node_take_attr_stale(struct kfs_nodes *t, uint64_t nodeid);
/* Hand over the list of nodes marked stale (caller frees *ids). */
size_t kfs_node_take_stale_list(struct kfs_nodes *t, uint64_t **ids);

/* ---- daemon state (daemon.c) ------------------------------------------- */

struct kfs {
	struct keep_store *store;
	struct fuse_session *se;
	const struct kfs_config *cfg;
	struct kfs_nodes nodes;
	uint32_t block_size;
	int writeback; /* the kernel does writeback caching */
	pthread_mutex_t times_lock; /* orders time changes (times.c) */

	/* commit timer */
	pthread_t timer;
	pthread_mutex_t timer_lock;
	pthread_cond_t timer_cond;
	int timer_stop;
	int timer_running;

	/* notifier thread (snap.c) */
	pthread_t notify_thread;
	pthread_mutex_t notify_lock;
	pthread_cond_t notify_cond;
	struct notify_job *notify_head;
	int notify_stop;
	int notify_running;
	int64_t snapdir_ns; /* times of .snapshots (atomic) */
	/* flushing the kernel's cache for a snapshot (snap.c) */
	pthread_mutex_t flush_lock; /* one snapshot flush at a time */
	pthread_mutex_t flush_mu;   /* leaf: guards flush and its slots */
	pthread_cond_t flush_cond;  /* a helper settled */
	struct kfs_flush *flush;    /* the flush under way, or NULL */
	int flush_warned; /* the syncfs fallback was logged (flush_lock) */

	struct kfs_ctld *ctld; /* the control socket's server (ctl.c) */

	/* requests answered on threads of their own (kfs_offload) */
	pthread_mutex_t offload_mu;
	pthread_cond_t offload_cond; /* offload_n went down */
	unsigned offload_n;	     /* such threads running */

	/* Replies that make the kernel create an inode from attributes read
	 * from the store hold this for reading from the read to the node
	 * table's reference; a restore holds it for writing from its commit
	 * until it has listed the nodes the kernel holds (restore.c). */
	pthread_rwlock_t entry_gate;

	/* retention (retain.c): the settings in force, the store's with
	 * the mount's options over them */
	pthread_mutex_t policy_mu;
	struct keep_policy policy;
	pthread_mutex_t gc_lock; /* one collection at a time (snap.c) */
	pthread_t retain_thread;
	pthread_mutex_t retain_lock; /* one pass at a time; the fields below */
	pthread_cond_t retain_cond;
	int retain_stop, retain_running;
	int64_t retain_last; /* history clock of the last full pass */
	struct keep_auto_base auto_base; /* the mount's start */
	struct keep_store *ro_store; /* counts space without the store lock */
	int budget_warned; /* the budget could not be met (logged once) */
};

static inline void kfs_gate_enter(struct kfs *fs)
{
	pthread_rwlock_rdlock(&fs->entry_gate);
}

static inline void kfs_gate_leave(struct kfs *fs)
{
	pthread_rwlock_unlock(&fs->entry_gate);
}

static inline struct kfs *kfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The one place store return codes become errnos. */
int kfs_errno(int rc);

/* Drop a reference obtained from the node table: forget the inode in the
 * store when nothing holds it any more. */
void kfs_forget_node(struct kfs *fs, uint64_t nodeid, uint64_t n);
/* Release one open handle of nodeid. */
void kfs_close_node(struct kfs *fs, uint64_t nodeid, int writer);
/* Open flags that give a handle write access. */
static inline int kfs_is_writer(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* Fill a struct stat from store attributes. */
void kfs_stat_of(const struct kfs *fs, const struct keep_attr *a,
		 struct stat *st);

/* Take a lookup reference for a's inode in view slot (0: live) and reply
 * with the entry. */
void kfs_reply_entry(fuse_req_t req, uint64_t slot, const struct keep_attr *a);
/* Reply with an entry for nodeid, on which a reference is already taken
 * (dropped again if the kernel does not get it). */
void kfs_reply_node(fuse_req_t req, uint64_t nodeid, const struct keep_attr *a,
		    double timeout);

/* ---- operations (ops.c, data.c) ---------------------------------------- */

void kfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void kfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void kfs_forget_multi(fuse_req_t req, size_t count,
		      struct fuse_forget_data *forgets);
void kfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi);
void kfs_readlink(fuse_req_t req, fuse_ino_t ino);
void kfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, dev_t rdev);
void kfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode);
void kfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void kfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void kfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name);
void kfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags);
void kfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname);
void kfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void kfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
void kfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi);
void kfs_statfs(fuse_req_t req, fuse_ino_t ino);
void kfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  const char *value, size_t size, int flags);
void kfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  size_t size);
void kfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void kfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

void kfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi);
void kfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi);
void kfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi);
void kfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi);
void kfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi);
void kfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	       struct fuse_file_info *fi);
void kfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			 struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			 off_t off_out, struct fuse_file_info *fi_out,
			 size_t len, int flags);

/* ---- the .snapshots directory (snap.c) ---------------------------------- */

/* The notifier thread sends the kernel invalidations that may not be sent
 * from inside a request.  Returns 0 or an errno. */
int kfs_notify_start(struct kfs *fs);
void kfs_notify_stop(struct kfs *fs);

/* An FSYNC sent by a snapshot's flush (snap.c, design note 1): keep the
 * request, answered once the snapshot is committed.  Returns 1 when it was
 * taken, 0 for any other FSYNC. */
int kfs_flush_park(struct kfs *fs, fuse_req_t req);

/* FUSE's file handle of a node (fuse_encode_fh in the kernel: the node id
 * in two 32-bit words and the generation, type FILEID_INO64_GEN). */
#define KFS_FH_TYPE 0x81

/* Have the kernel hand over what write() has accepted into its cache and
 * hold the files open for writing still (their FSYNCs parked) until
 * kfs_flush_end().  Callers hold fs->flush_lock across both. */
void kfs_flush_begin(struct kfs *fs);
void kfs_flush_end(struct kfs *fs);

/* Attributes of .snapshots. */
void kfs_snapdir_attr(struct kfs *fs, struct keep_attr *a);
/* Reply to a lookup of .snapshots in the root. */
void kfs_snapdir_entry(fuse_req_t req);
/* Requests whose parent is .snapshots. */
void kfs_snap_lookup(fuse_req_t req, const char *name);
void kfs_snap_mkdir(fuse_req_t req, const char *name);
/* Make a snapshot as mkdir in .snapshots does: hand over and hold what the
 * kernel caches (design note 1 of snap.c), commit and name the commit.
 * *out may be NULL.  Returns a store code (EROFS on a read-only mount). */
int kfs_snap_create(struct kfs *fs, const char *name, int origin,
		    struct keep_snapshot *out);
void kfs_snap_rmdir(fuse_req_t req, const char *name);
void kfs_snap_rename(fuse_req_t req, const char *name, const char *newname,
		     unsigned flags);

/* ---- restore (restore.c) ----------------------------------------------------- */

/* keep_restore on the mounted store, with the kernel's caches made true
 * afterwards (restore.c).  Returns keep_restore's code (EROFS on a
 * read-only mount). */
/* retain.c: load the settings in force (at mount, and after `keepfs
 * config` changed the store's) */
int kfs_policy_reload(struct kfs *fs);
void kfs_policy_get(struct kfs *fs, struct keep_policy *out);

/* snap.c, outside any request (the retention thread): tell the kernel
 * that a snapshot was made, or was deleted (its view dies, as by rmdir) */
void kfs_snap_made(struct kfs *fs, const char *name);
void kfs_snap_gone(struct kfs *fs, const struct keep_snapshot *snap);

/* retain.c: the retention thread; kfs_retain_now runs one pass at once
 * (all of it, whatever time says) and reports to f (may be NULL) */
int kfs_retain_start(struct kfs *fs);
void kfs_retain_stop(struct kfs *fs);
int kfs_retain_now(struct kfs *fs, FILE *f);

/* snap.c: keep_gc, pinning the views in use, killing those whose commit
 * went meanwhile */
int kfs_gc(struct kfs *fs, const struct keep_gc_req *req,
	   struct keep_gc_result *res);
int kfs_restore(struct kfs *fs, const struct keep_restore_req *req,
		struct keep_restore_result *res);

/* ---- the control socket (ctl.c) ------------------------------------------ */

/* Listen on STORE/control (the daemon holds the store's lock, so a socket
 * found there is stale) and serve requests with cfg->ctl_handler.
 * Returns 0 or an errno. */
int kfs_ctl_start(struct kfs *fs);
/* Stop listening, wait for the requests under way, remove the socket. */
void kfs_ctl_stop(struct kfs *fs);

/* Commit now (fsync, fsyncdir); logs a failure.  Returns a store code. */
int kfs_commit(struct kfs *fs);

/* ---- /dev/fuse reads and writes (rawio.c) ------------------------------ */

/* Set for the request this thread is handling when the kernel asks that
 * its set-user-ID and set-group-ID bits be cleared (FUSE_HANDLE_KILLPRIV_V2:
 * a write, truncation, chown or O_TRUNC open by a caller without
 * CAP_FSETID). */
extern _Thread_local int kfs_req_kill;

/* Read requests and write replies through rawio.c.  Returns 0 or errno. */
int kfs_rawio_start(struct kfs *fs);
/* mode without S_ISUID, and without S_ISGID if the group may execute;
 * returns 1 if that changed it. */
int kfs_kill_suidgid_mode(uint32_t mode, uint32_t *out);
/* Clear those bits of a live inode in the store and have the kernel fetch
 * its attributes again.  Returns 0 or a keep error. */
int kfs_kill_suidgid(struct kfs *fs, fuse_ino_t nodeid, uint64_t ino);

/* Run fn(arg) on a detached thread of its own, for the few requests whose
 * handlers wait on the kernel: it may need other requests answered first
 * (write-back), and the request threads are few (cfg->threads), so none of
 * them may wait on it.  Returns 0, or ENOMEM with nothing started.
 * kfs_offload_wait() returns once all such threads have finished. */
int kfs_offload(struct kfs *fs, void (*fn)(void *), void *arg);
void kfs_offload_wait(struct kfs *fs);

/* ---- file times under the writeback cache (times.c) -------------------- */

/* Around a change of a file's data by the daemon that the store stamps
 * with its own clock (fallocate, O_TRUNC) while the kernel keeps its own
 * times. */
void kfs_times_before(struct kfs *fs, uint64_t nodeid, uint64_t ino);
void kfs_times_after(struct kfs *fs, uint64_t nodeid, uint64_t ino);
/* After its data reached the store (flush, fsync), let the kernel fetch
 * a changed file's attributes again: st_blocks is ours, not the
 * kernel's. */
void kfs_attr_refresh(struct kfs *fs, uint64_t nodeid);
/* Put the kernel's times back into the store for one node, or all. */
void kfs_times_restore(struct kfs *fs, uint64_t nodeid);
void kfs_times_restore_all(struct kfs *fs);
/* keep_setattr() for the kernel's SETATTR, keeping the pin true. */
int kfs_times_setattr(struct kfs *fs, uint64_t nodeid, uint64_t ino,
		      struct keep_attr *in, unsigned set, struct keep_attr *out);

#endif /* KFS_I_H */
