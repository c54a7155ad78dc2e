/*
 * snap.c - the .snapshots directory of a mount.
 *
 * MOUNT/.snapshots lists the store's snapshots; each entry is the root of
 * a read-only view of the tree as of the snapshot's commit, and
 * MOUNT/.snapshots/@TIME (never listed) is the view of the newest commit
 * at or before TIME.  mkdir, rmdir and rename in .snapshots create, delete
 * and rename snapshots.
 *
 * Design notes:
 *  1. A snapshot holds every write() that returned before it was asked
 *     for, and no part of a write() still under way.  With the writeback
 *     cache such data may sit in the kernel's page cache, so mkdir first
 *     has the kernel hand it over, holding each file still meanwhile: for
 *     every file open for writing a helper thread opens the inode through
 *     the mount by its handle and fsyncs it.  The kernel's fsync takes the
 *     inode's lock (write() holds it from start to end, so a write is
 *     either wholly before or wholly after), writes the dirty pages back
 *     to us and sends FSYNC.  That FSYNC, recognised by the helper's
 *     thread id, is parked, not answered: the lock stays held, and no page
 *     of a later write() can reach us.  Once every helper's FSYNC is
 *     parked (or its fsync failed), the store commits and names the
 *     commit, then the parked requests are answered.  Parked requests hold
 *     no thread of the loop.  Files nobody has open for writing hold no
 *     dirty pages.  When handles cannot be opened (the daemon lacks
 *     CAP_DAC_READ_SEARCH) it falls back to syncfs of the mount, which
 *     hands over everything written but may cut a write under way.  The
 *     mount's root is opened for the flush only: a descriptor kept open
 *     would make "fusermount3 -u" fail with EBUSY.
 *  2. Views never change, so their entries and attributes are cached for
 *     a day and their files and directories keep their page cache.  A
 *     deleted snapshot's view is marked dead (every request on it is
 *     ENOENT) and its nodes are invalidated in the kernel.  The
 *     invalidation runs on the notifier thread, never inside the request
 *     that caused it: the kernel holds .snapshots locked while rmdir runs.
 *  3. An @TIME name is resolved at every lookup (entry timeout 0): "-10m"
 *     moves with the clock.  Its view is keyed by the commit, so two
 *     names that resolve to the same commit share the view.
 *  4. .snapshots itself has no inode in the store: it is owned by the
 *     owner of the root, mode 0755, and refuses everything but lookup,
 *     readdir, mkdir, rmdir and rename of its entries (EROFS).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "kfs_i.h"

static int64_t now_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- notifier thread ----------------------------------------------------- */

struct notify_job {
	uint64_t *ids; /* nodes whose attributes and data to drop */
	size_t n;
	struct notify_job *next;
};

static void *notify_main(void *arg)
{
	struct kfs *fs = arg;

	pthread_mutex_lock(&fs->notify_lock);
	for (;;) {
		while (!fs->notify_head && !fs->notify_stop)
			pthread_cond_wait(&fs->notify_cond, &fs->notify_lock);
		struct notify_job *job = fs->notify_head;
		if (!job)
			break; /* stopping, nothing left */
		fs->notify_head = job->next;
		pthread_mutex_unlock(&fs->notify_lock);

		for (size_t i = 0; i < job->n && !fs->notify_stop; i++) {
			int res = fuse_lowlevel_notify_inval_inode(
				fs->se, job->ids[i], 0, 0);
			if (res < 0 && res != -ENOENT)
				keep_log(LOG_DEBUG, "cannot invalidate node "
					 "%llx: %s",
					 (unsigned long long)job->ids[i],
					 strerror(-res));
		}
		free(job->ids);
		free(job);
		pthread_mutex_lock(&fs->notify_lock);
	}
	pthread_mutex_unlock(&fs->notify_lock);
	return NULL;
}

int kfs_notify_start(struct kfs *fs)
{
	pthread_mutex_init(&fs->notify_lock, NULL);
	pthread_cond_init(&fs->notify_cond, NULL);
	fs->notify_head = NULL;
	fs->notify_stop = 0;
	int err = pthread_create(&fs->notify_thread, NULL, notify_main, fs);
	if (err) {
		pthread_cond_destroy(&fs->notify_cond);
		pthread_mutex_destroy(&fs->notify_lock);
		return err;
	}
	fs->notify_running = 1;
	return 0;
}

void kfs_notify_stop(struct kfs *fs)
{
	if (!fs->notify_running)
		return;
	pthread_mutex_lock(&fs->notify_lock);
	fs->notify_stop = 1;
	pthread_cond_signal(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
	pthread_join(fs->notify_thread, NULL);
	while (fs->notify_head) {
		struct notify_job *job = fs->notify_head;
		fs->notify_head = job->next;
		free(job->ids);
		free(job);
	}
	pthread_cond_destroy(&fs->notify_cond);
	pthread_mutex_destroy(&fs->notify_lock);
	fs->notify_running = 0;
}

/* Queue ids (taken over) for invalidation. */
static void notify_inval(struct kfs *fs, uint64_t *ids, size_t n)
{
	struct notify_job *job = NULL;
	if (n && fs->notify_running)
		job = malloc(sizeof(*job));
	if (!job) {
		if (n)
			keep_log(LOG_WARNING, "cannot invalidate %zu cached "
				 "nodes of a deleted snapshot", n);
		free(ids);
		return;
	}
	job->ids = ids;
	job->n = n;
	job->next = NULL;
	pthread_mutex_lock(&fs->notify_lock);
	struct notify_job **pp = &fs->notify_head;
	while (*pp)
		pp = &(*pp)->next;
	*pp = job;
	pthread_cond_signal(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_lock);
}

/* ---- the .snapshots directory itself -------------------------------------- */

void kfs_snapdir_attr(struct kfs *fs, struct keep_attr *a)
{
	struct keep_attr root;
	memset(a, 0, sizeof(*a));
	if (keep_getattr(fs->store, KEEP_LIVE, KEEP_ROOT_INO, &root) == 0) {
		a->uid = root.uid;
		a->gid = root.gid;
	}
	a->ino = KFS_SNAPDIR_INO;
	a->mode = S_IFDIR | 0755;
	a->nlink = 2;
	int64_t t = __atomic_load_n(&fs->snapdir_ns, __ATOMIC_RELAXED);
	a->atime_ns = a->mtime_ns = a->ctime_ns = a->btime_ns = t;
}

static void snapdir_touch(struct kfs *fs)
{
	__atomic_store_n(&fs->snapdir_ns, now_real_ns(), __ATOMIC_RELAXED);
}

void kfs_snapdir_entry(fuse_req_t req)
{
	struct kfs *fs = kfs_of(req);
	struct keep_attr a;
	uint64_t nodeid;

	kfs_snapdir_attr(fs, &a);
	int err = kfs_node_ref(&fs->nodes, 0, KFS_SNAPDIR_INO, &nodeid);
	if (err)
		fuse_reply_err(req, err);
	else
		kfs_reply_node(req, nodeid, &a, KFS_TIMEOUT);
}

/* ---- lookup ---------------------------------------------------------------- */

static void reply_negative(fuse_req_t req, double timeout)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.entry_timeout = timeout;
	fuse_reply_entry(req, &e);
}

/* Design note 3. */
static void lookup_time(fuse_req_t req, const char *name)
{
	struct kfs *fs = kfs_of(req);
	struct fuse_entry_param e;
	struct keep_attr a;
	int64_t t;
	uint64_t commit, nodeid;

	int err = keep_parse_time(name + 1, keep_clock_ns(), &t);
	if (!err)
		err = kfs_errno(keep_commit_at(fs->store, t, &commit));
	if (!err)
		err = kfs_errno(keep_getattr(fs->store, commit, KEEP_ROOT_INO,
					     &a));
	if (err == EINVAL || err == ENOENT) {
		reply_negative(req, 0);
		return;
	}
	if (!err)
		err = kfs_view_ref_root(&fs->nodes, 0, commit, &nodeid);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = nodeid;
	e.generation = 1;
	e.entry_timeout = 0;
	e.attr_timeout = KFS_VIEW_TIMEOUT;
	kfs_stat_of(fs, &a, &e.attr);
	e.attr.st_ino = kfs_st_ino(nodeid);
	if (fuse_reply_entry(req, &e) != 0)
		kfs_forget_node(fs, nodeid, 1);
}

void kfs_snap_lookup(fuse_req_t req, const char *name)
{
	struct kfs *fs = kfs_of(req);
	struct keep_snapshot snap;
	struct keep_attr a;
	uint64_t nodeid;

	if (name[0] == '@') {
		lookup_time(req, name);
		return;
	}
	int err = kfs_errno(keep_snapshot_get(fs->store, name, &snap));
	if (err == ENOENT) {
		reply_negative(req, KFS_TIMEOUT);
		return;
	}
	if (!err)
		err = kfs_errno(keep_getattr(fs->store, snap.commit,
					     KEEP_ROOT_INO, &a));
	if (!err)
		err = kfs_view_ref_root(&fs->nodes, snap.id, snap.commit,
					&nodeid);
	if (err == EOVERFLOW)
		keep_log(LOG_ERR, "snapshot '%s' has id %llu, past what this "
			 "daemon can show", name, (unsigned long long)snap.id);
	if (err)
		fuse_reply_err(req, err);
	else
		kfs_reply_node(req, nodeid, &a, KFS_VIEW_TIMEOUT);
}

/* ---- mkdir, rmdir, rename -------------------------------------------------- */

/* At most this many files are held still at once; past it the rest are
 * flushed one by one (each whole, not all at one instant). */
#define FLUSH_MAX_HELD 256

/* How long a snapshot waits for the files to be handed over before it
 * goes on without the stragglers (they are logged). */
#define FLUSH_TIMEOUT_S 20

struct flush_slot {
	struct kfs_flush *f;
	uint64_t nodeid;
	pid_t tid;	   /* the helper's thread id, once it runs */
	fuse_req_t parked; /* its FSYNC, answered after the commit */
	int settled;	   /* parked, or the helper gave up */
};

struct kfs_flush {
	struct kfs *fs;
	int mntfd;
	size_t n, settled;
	int refs;   /* the snapshot's + one per running helper */
	int denied; /* handles refused: fall back to syncfs */
	struct flush_slot slots[];
};

/* Drop one reference; the last frees.  Caller holds fs->flush_mu. */
static void flush_unref(struct kfs_flush *f)
{
	if (--f->refs == 0) {
		close(f->mntfd);
		free(f);
	}
}

static void *flush_helper(void *arg)
{
	struct flush_slot *sl = arg;
	struct kfs_flush *f = sl->f;
	struct kfs *fs = f->fs;
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 3 * sizeof(uint32_t)];
	} h;
	uint32_t raw[3] = { (uint32_t)(sl->nodeid >> 32),
			    (uint32_t)sl->nodeid, 1 };

	pthread_mutex_lock(&fs->flush_mu);
	sl->tid = gettid();
	pthread_mutex_unlock(&fs->flush_mu);

	h.fh.handle_bytes = sizeof(raw);
	h.fh.handle_type = KFS_FH_TYPE;
	memcpy(h.fh.f_handle, raw, sizeof(raw));
	int fd = open_by_handle_at(f->mntfd, &h.fh, O_RDONLY | O_CLOEXEC);
	int err = fd < 0 ? errno : 0;
	if (fd >= 0) {
		if (fsync(fd) != 0 && errno != EINTR)
			keep_log(LOG_WARNING, "flushing node %llx for a "
				 "snapshot failed: %s",
				 (unsigned long long)sl->nodeid,
				 strerror(errno));
		close(fd);
	}

	pthread_mutex_lock(&fs->flush_mu);
	if (err && err != ESTALE && err != ENOENT)
		f->denied = err;
	if (!sl->settled) {
		sl->settled = 1;
		f->settled++;
		pthread_cond_broadcast(&fs->flush_cond);
	}
	flush_unref(f);
	pthread_mutex_unlock(&fs->flush_mu);
	return NULL;
}

int kfs_flush_park(struct kfs *fs, fuse_req_t req)
{
	pid_t pid = fuse_req_ctx(req)->pid;
	int parked = 0;

	pthread_mutex_lock(&fs->flush_mu);
	struct kfs_flush *f = fs->flush;
	for (size_t i = 0; f && i < f->n; i++) {
		struct flush_slot *sl = &f->slots[i];
		if (sl->tid == pid && !sl->settled) {
			sl->parked = req;
			sl->settled = 1;
			f->settled++;
			pthread_cond_broadcast(&fs->flush_cond);
			parked = 1;
			break;
		}
	}
	pthread_mutex_unlock(&fs->flush_mu);
	return parked;
}

/* Answer the parked FSYNCs and let the helpers go. */
void kfs_flush_end(struct kfs *fs)
{
	pthread_mutex_lock(&fs->flush_mu);
	struct kfs_flush *f = fs->flush;
	fs->flush = NULL;
	pthread_mutex_unlock(&fs->flush_mu);
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		if (f->slots[i].parked)
			fuse_reply_err(f->slots[i].parked, 0);
	}
	pthread_mutex_lock(&fs->flush_mu);
	flush_unref(f);
	pthread_mutex_unlock(&fs->flush_mu);
}

/* Design note 1: have the kernel hand over what write() has accepted and
 * hold the files still.  Every call is followed by kfs_flush_end(). */
void kfs_flush_begin(struct kfs *fs)
{
	struct statfs sf;
	struct stat st;
	uint64_t *ids = NULL;

	if (!fs->writeback)
		return; /* write() returns only after we have the data */
	int fd = open(fs->cfg->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		keep_log(LOG_WARNING, "cannot open '%s' to flush the kernel's "
			 "cache before a snapshot: %s", fs->cfg->mountpoint,
			 strerror(errno));
		return;
	}
	if (fstatfs(fd, &sf) != 0 || sf.f_type != FUSE_SUPER_MAGIC ||
	    fstat(fd, &st) != 0 || st.st_ino != KEEP_ROOT_INO) {
		keep_log(LOG_WARNING, "'%s' is not this mount any more: the "
			 "snapshot may miss data still in the kernel's cache",
			 fs->cfg->mountpoint);
		close(fd);
		return;
	}

	size_t n = kfs_node_list(&fs->nodes, KFS_LIST_WRITERS, &ids);
	size_t held = n < FLUSH_MAX_HELD ? n : FLUSH_MAX_HELD;
	struct kfs_flush *f = NULL;
	if (held)
		f = calloc(1, sizeof(*f) + held * sizeof(f->slots[0]));
	if (!f) {
		if (held)
			keep_log(LOG_WARNING, "out of memory flushing the "
				 "kernel's cache: falling back to syncfs");
		if (n && syncfs(fd) != 0)
			keep_log(LOG_WARNING, "syncfs before a snapshot "
				 "failed: %s", strerror(errno));
		free(ids);
		close(fd);
		return;
	}
	f->fs = fs;
	f->mntfd = fd;
	f->n = held;
	f->refs = 1;
	for (size_t i = 0; i < held; i++) {
		f->slots[i].f = f;
		f->slots[i].nodeid = ids[i];
	}
	pthread_mutex_lock(&fs->flush_mu);
	fs->flush = f;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (size_t i = 0; i < held; i++) {
		pthread_t t;
		f->refs++;
		if (pthread_create(&t, &attr, flush_helper, &f->slots[i])) {
			f->refs--;
			f->slots[i].settled = 1;
			f->settled++;
			f->denied = EAGAIN;
		}
	}
	pthread_attr_destroy(&attr);

	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += FLUSH_TIMEOUT_S;
	while (f->settled < f->n) {
		if (pthread_cond_timedwait(&fs->flush_cond, &fs->flush_mu,
					   &until) == ETIMEDOUT) {
			keep_log(LOG_WARNING, "%zu files were not handed over "
				 "within %d s: the snapshot goes on without "
				 "their latest writes", f->n - f->settled,
				 FLUSH_TIMEOUT_S);
			break;
		}
	}
	int denied = f->denied;
	pthread_mutex_unlock(&fs->flush_mu);

	/* Past the limit, or without handles: the rest one by one. */
	if (denied || n > held) {
		if (denied && !fs->flush_warned) {
			keep_log(LOG_WARNING, "cannot open files by handle "
				 "(%s): snapshots flush with syncfs, and a "
				 "write() under way during one may be cut",
				 strerror(denied));
			fs->flush_warned = 1;
		}
		if (syncfs(f->mntfd) != 0)
			keep_log(LOG_WARNING, "syncfs before a snapshot "
				 "failed: %s", strerror(errno));
	}
	free(ids);
}

int kfs_snap_create(struct kfs *fs, const char *name, int origin,
		    struct keep_snapshot *out)
{
	struct keep_snapshot snap;

	int rc = fs->cfg->read_only ? EROFS : keep_snapshot_name_check(name);
	if (!rc) {
		pthread_mutex_lock(&fs->flush_lock);
		kfs_flush_begin(fs);
		kfs_times_restore_all(fs);
		rc = keep_snapshot_create(fs->store, name, origin, &snap);
		kfs_flush_end(fs);
		pthread_mutex_unlock(&fs->flush_lock);
	}
	if (!rc) {
		snapdir_touch(fs);
		keep_log(LOG_INFO, "snapshot '%s' of commit %llu", name,
			 (unsigned long long)snap.commit);
		if (out)
			*out = snap;
	}
	return rc;
}

/* mkdir in .snapshots: the snapshot's flush waits for the kernel to hand
 * over its dirty pages and answer fsyncs, which request threads serve, so
 * it runs on a thread of its own (kfs_offload). */
struct snap_job {
	fuse_req_t req;
	char name[];
};

static void snap_mkdir_run(void *arg);

void kfs_snap_mkdir(fuse_req_t req, const char *name)
{
	size_t len = strlen(name);
	struct snap_job *j = malloc(sizeof(*j) + len + 1);
	if (!j) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	j->req = req;
	memcpy(j->name, name, len + 1);
	int err = kfs_offload(kfs_of(req), snap_mkdir_run, j);
	if (err) {
		free(j);
		fuse_reply_err(req, err);
	}
}

static void snap_mkdir_run(void *arg)
{
	struct snap_job *j = arg;
	fuse_req_t req = j->req;
	const char *name = j->name;
	struct kfs *fs = kfs_of(req);
	struct keep_snapshot snap;
	struct keep_attr a;
	uint64_t nodeid;

	int err = kfs_errno(kfs_snap_create(fs, name, KEEP_ORIGIN_MANUAL,
					    &snap));
	if (!err)
		err = kfs_errno(keep_getattr(fs->store, snap.commit,
					     KEEP_ROOT_INO, &a));
	if (!err)
		err = kfs_view_ref_root(&fs->nodes, snap.id, snap.commit,
					&nodeid);
	if (err)
		fuse_reply_err(req, err);
	else
		kfs_reply_node(req, nodeid, &a, KFS_VIEW_TIMEOUT);
	free(j);
}

void kfs_snap_rmdir(fuse_req_t req, const char *name)
{
	struct kfs *fs = kfs_of(req);
	struct keep_snapshot snap;
	uint64_t *ids;

	int err = 0;
	if (name[0] == '@')
		err = EPERM; /* a point in time is not a snapshot */
	else if (fs->cfg->read_only)
		err = EROFS;
	if (!err)
		err = kfs_errno(keep_snapshot_get(fs->store, name, &snap));
	if (!err)
		err = kfs_errno(keep_snapshot_delete(fs->store, name));
	if (!err) {
		snapdir_touch(fs);
		keep_log(LOG_INFO, "snapshot '%s' deleted", name);
		size_t n = kfs_view_kill(&fs->nodes, snap.id, &ids);
		notify_inval(fs, ids, n);
	}
	fuse_reply_err(req, err);
}

void kfs_snap_rename(fuse_req_t req, const char *name, const char *newname,
		     unsigned flags)
{
	struct kfs *fs = kfs_of(req);

	int err = 0;
	if (flags & RENAME_EXCHANGE)
		err = EINVAL;
	else if (name[0] == '@')
		err = EPERM;
	else if (fs->cfg->read_only)
		err = EROFS;
	if (!err)
		err = keep_snapshot_name_check(newname);
	if (!err)
		err = kfs_errno(keep_snapshot_rename(fs->store, name,
						     newname));
	if (!err) {
		snapdir_touch(fs);
		keep_log(LOG_INFO, "snapshot '%s' renamed to '%s'", name,
			 newname);
	}
	fuse_reply_err(req, err);
}

/* ---- garbage collection ---------------------------------------------------- */

int kfs_gc(struct kfs *fs, const struct keep_gc_req *req,
	   struct keep_gc_result *res)
{
	struct keep_gc_req r = *req;
	struct keep_commit_info ci;
	struct keep_policy p;
	uint64_t *pins, *ids;
	int rc;

	if (r.journal_ns < 0) { /* the setting in force */
		kfs_policy_get(fs, &p);
		r.journal_ns = p.journal_ns;
	}
	/* one collection at a time (keepfs gc and the retention thread):
	 * each pins the views it saw, and must not drop another's */
	pthread_mutex_lock(&fs->gc_lock);
	/* the views with open files stay as they are */
	r.npins = kfs_view_commits(&fs->nodes, &pins);
	r.pins = pins;
	rc = keep_gc(fs->store, &r, res);
	free(pins);
	/* a view the kernel only caches, or one a point in time resolved to
	 * while the collection ran, may show a commit that went: it is gone,
	 * as a deleted snapshot's view */
	size_t n = kfs_view_all_commits(&fs->nodes, &pins);
	for (size_t i = 0; i < n; i++) {
		if (keep_commit_get(fs->store, pins[i], &ci) != ENOENT)
			continue;
		size_t k = kfs_view_kill_commit(&fs->nodes, pins[i], &ids);
		notify_inval(fs, ids, k);
	}
	pthread_mutex_unlock(&fs->gc_lock);
	free(pins);
	return rc;
}

void kfs_snap_made(struct kfs *fs, const char *name)
{
	/* the kernel may cache .snapshots' listing and a negative entry */
	fuse_lowlevel_notify_inval_entry(fs->se, KFS_SNAPDIR_NODE, name,
					 strlen(name));
	fuse_lowlevel_notify_inval_inode(fs->se, KFS_SNAPDIR_NODE, 0, 0);
}

void kfs_snap_gone(struct kfs *fs, const struct keep_snapshot *snap)
{
	uint64_t *ids;

	snapdir_touch(fs);
	size_t n = kfs_view_kill(&fs->nodes, snap->id, &ids);
	notify_inval(fs, ids, n);
	fuse_lowlevel_notify_inval_entry(fs->se, KFS_SNAPDIR_NODE, snap->name,
					 strlen(snap->name));
	fuse_lowlevel_notify_inval_inode(fs->se, KFS_SNAPDIR_NODE, 0, 0);
}
