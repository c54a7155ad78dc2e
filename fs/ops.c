/*
 * ops.c - namespace operations of the FUSE daemon.
 *
 * Each handler resolves the kernel's node ids to (view, inode), makes one
 * call into the store, and replies exactly once.  Lookup references are
 * taken in kfs_reply_entry() and in readdirplus, and dropped in forget.
 * The daemon checks no permissions: the mount always has
 * default_permissions, so the kernel does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <syslog.h>

#include "kfs_i.h"

/* Resolve a node id to (view, ino). */
static int resolve(struct kfs *fs, fuse_ino_t nodeid, uint64_t *view,
		   uint64_t *ino)
{
	return kfs_node_resolve(&fs->nodes, nodeid, view, ino);
}

/* Resolve a node that is about to be changed: it must be live and the
 * mount writable.  Returns 0, EROFS or ENOENT. */
static int resolve_live(struct kfs *fs, fuse_ino_t nodeid, uint64_t *ino)
{
	uint64_t view;
	if (fs->cfg->read_only || nodeid == KFS_SNAPDIR_NODE)
		return EROFS;
	int err = resolve(fs, nodeid, &view, ino);
	if (!err && view != KEEP_LIVE)
		err = EROFS;
	return err;
}

static struct keep_cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct keep_cred c = { .uid = ctx->uid, .gid = ctx->gid };
	return c;
}

void kfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kfs *fs = kfs_of(req);
	struct keep_attr a;
	uint64_t view, dir;

	if (parent == KFS_SNAPDIR_NODE) {
		kfs_snap_lookup(req, name);
		return;
	}
	if (parent == FUSE_ROOT_ID && !strcmp(name, KFS_SNAPDIR_NAME)) {
		kfs_snapdir_entry(req);
		return;
	}
	uint64_t slot = kfs_node_slot(parent);
	int err = resolve(fs, parent, &view, &dir);
	int gone = err != 0;
	kfs_gate_enter(fs);
	if (!err)
		err = kfs_errno(keep_lookup(fs->store, view, dir, name, &a));
	if (err == ENOENT && !gone) {
		/* Cached by the kernel as a negative entry (not when the
		 * parent's view was deleted: it just fails). */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.ino = 0;
		e.entry_timeout = slot ? KFS_VIEW_TIMEOUT : KFS_TIMEOUT;
		kfs_gate_leave(fs);
		fuse_reply_entry(req, &e);
		return;
	}
	if (err) {
		kfs_gate_leave(fs);
		fuse_reply_err(req, err);
		return;
	}
	kfs_reply_entry(req, slot, &a);
	kfs_gate_leave(fs);
}

void kfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	kfs_times_restore(kfs_of(req), ino);
	kfs_forget_node(kfs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

void kfs_forget_multi(fuse_req_t req, size_t count,
		      struct fuse_forget_data *forgets)
{
	struct kfs *fs = kfs_of(req);
	for (size_t i = 0; i < count; i++) {
		kfs_times_restore(fs, forgets[i].ino);
		kfs_forget_node(fs, forgets[i].ino, forgets[i].nlookup);
	}
	fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, const struct keep_attr *a,
		       fuse_ino_t nodeid)
{
	struct kfs *fs = kfs_of(req);
	struct stat st;
	kfs_stat_of(fs, a, &st);
	st.st_ino = kfs_st_ino(nodeid);
	fuse_reply_attr(req, &st,
			kfs_node_slot(nodeid) ? KFS_VIEW_TIMEOUT : KFS_TIMEOUT);
}

void kfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	struct keep_attr a;
	uint64_t view, i;
	(void)fi;

	if (ino == KFS_SNAPDIR_NODE) {
		kfs_snapdir_attr(fs, &a);
		reply_attr(req, &a, ino);
		return;
	}
	int err = resolve(fs, ino, &view, &i);
	if (!err)
		err = kfs_errno(keep_getattr(fs->store, view, i, &a));
	if (err)
		fuse_reply_err(req, err);
	else
		reply_attr(req, &a, ino);
}

static int64_t ns_of(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + (int64_t)ts->tv_nsec;
}

static int64_t now_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ns_of(&ts);
}

void kfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	struct keep_attr in, out;
	unsigned set = 0;
	uint64_t i;
	(void)fi; /* ftruncate: the handle names the same inode */

	int err = resolve_live(fs, ino, &i);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	memset(&in, 0, sizeof(in));
	if (to_set & FUSE_SET_ATTR_MODE) {
		in.mode = attr->st_mode;
		set |= KEEP_SET_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		in.uid = attr->st_uid;
		set |= KEEP_SET_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		in.gid = attr->st_gid;
		set |= KEEP_SET_GID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		in.size = (uint64_t)attr->st_size;
		set |= KEEP_SET_SIZE;
	}
	/* The store gets the time of the change either way, so that the two
	 * "now" flags do not depend on how it reads them. */
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		in.atime_ns = now_real_ns();
		set |= KEEP_SET_ATIME | KEEP_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		in.atime_ns = ns_of(&attr->st_atim);
		set |= KEEP_SET_ATIME;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		in.mtime_ns = now_real_ns();
		set |= KEEP_SET_MTIME | KEEP_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		in.mtime_ns = ns_of(&attr->st_mtim);
		set |= KEEP_SET_MTIME;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		in.ctime_ns = ns_of(&attr->st_ctim);
		set |= KEEP_SET_CTIME;
	}

	/* A truncation or chown that clears set-user/group-ID bits
	 * (rawio.c): part of the same change. */
	if (kfs_req_kill) {
		struct keep_attr cur;
		uint32_t m;
		if (!(set & KEEP_SET_MODE)) {
			err = kfs_errno(keep_getattr(fs->store, KEEP_LIVE, i,
						     &cur));
			if (err) {
				fuse_reply_err(req, err);
				return;
			}
			in.mode = cur.mode;
		}
		if (kfs_kill_suidgid_mode(in.mode, &m)) {
			in.mode = m;
			set |= KEEP_SET_MODE;
		}
	}
	err = kfs_errno(kfs_times_setattr(fs, ino, i, &in, set, &out));
	if (err)
		fuse_reply_err(req, err);
	else
		reply_attr(req, &out, ino);
}

void kfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct kfs *fs = kfs_of(req);
	char buf[4096];
	uint64_t view, i;

	int err = ino == KFS_SNAPDIR_NODE ? EINVAL : resolve(fs, ino, &view, &i);
	if (!err)
		err = kfs_errno(keep_readlink(fs->store, view, i, buf,
					      sizeof(buf)));
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_readlink(req, buf);
}

void kfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, dev_t rdev)
{
	struct kfs *fs = kfs_of(req);
	struct keep_cred c = cred_of(req);
	struct keep_attr a;
	uint64_t dir;

	int err = resolve_live(fs, parent, &dir);
	kfs_gate_enter(fs);
	if (!err)
		err = kfs_errno(keep_mknod(fs->store, dir, name, mode, rdev,
					   &c, &a));
	if (err)
		fuse_reply_err(req, err);
	else
		kfs_reply_entry(req, KEEP_LIVE, &a);
	kfs_gate_leave(fs);
}

void kfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode)
{
	struct kfs *fs = kfs_of(req);
	struct keep_cred c = cred_of(req);
	struct keep_attr a;
	uint64_t dir;

	if (parent == KFS_SNAPDIR_NODE) {
		kfs_snap_mkdir(req, name);
		return;
	}
	int err = resolve_live(fs, parent, &dir);
	kfs_gate_enter(fs);
	if (!err)
		err = kfs_errno(keep_mkdir(fs->store, dir, name, mode, &c, &a));
	if (err)
		fuse_reply_err(req, err);
	else
		kfs_reply_entry(req, KEEP_LIVE, &a);
	kfs_gate_leave(fs);
}

void kfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kfs *fs = kfs_of(req);
	uint64_t dir;

	int err = resolve_live(fs, parent, &dir);
	if (!err)
		err = kfs_errno(keep_unlink(fs->store, dir, name));
	fuse_reply_err(req, err);
}

void kfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kfs *fs = kfs_of(req);
	uint64_t dir;

	if (parent == KFS_SNAPDIR_NODE) {
		kfs_snap_rmdir(req, name);
		return;
	}
	int err = resolve_live(fs, parent, &dir);
	if (!err && dir == KEEP_ROOT_INO && !strcmp(name, KFS_SNAPDIR_NAME)) {
		keep_log(LOG_NOTICE, "'%s' is reserved for browsing snapshots "
			 "and cannot be removed", KFS_SNAPDIR_NAME);
		err = EPERM;
	}
	if (!err)
		err = kfs_errno(keep_rmdir(fs->store, dir, name));
	fuse_reply_err(req, err);
}

void kfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name)
{
	struct kfs *fs = kfs_of(req);
	struct keep_cred c = cred_of(req);
	struct keep_attr a;
	uint64_t dir;

	int err = resolve_live(fs, parent, &dir);
	kfs_gate_enter(fs);
	if (!err)
		err = kfs_errno(keep_symlink(fs->store, dir, name, link, &c,
					     &a));
	if (err)
		fuse_reply_err(req, err);
	else
		kfs_reply_entry(req, KEEP_LIVE, &a);
	kfs_gate_leave(fs);
}

void kfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct kfs *fs = kfs_of(req);
	unsigned kflags = 0;
	uint64_t from, to;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & RENAME_NOREPLACE)
		kflags |= KEEP_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		kflags |= KEEP_RENAME_EXCHANGE;

	if (parent == KFS_SNAPDIR_NODE && newparent == KFS_SNAPDIR_NODE) {
		kfs_snap_rename(req, name, newname, flags);
		return;
	}
	int err = resolve_live(fs, parent, &from);
	if (!err)
		err = resolve_live(fs, newparent, &to);
	if (!err && from == KEEP_ROOT_INO && !strcmp(name, KFS_SNAPDIR_NAME)) {
		keep_log(LOG_NOTICE, "'%s' is reserved for browsing snapshots "
			 "and cannot be renamed", KFS_SNAPDIR_NAME);
		err = EPERM;
	}
	if (!err)
		err = kfs_errno(keep_rename(fs->store, from, name, to, newname,
					    kflags));
	fuse_reply_err(req, err);
}

void kfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname)
{
	struct kfs *fs = kfs_of(req);
	struct keep_attr a;
	uint64_t i, dir;

	int err = resolve_live(fs, ino, &i);
	if (!err)
		err = resolve_live(fs, newparent, &dir);
	kfs_gate_enter(fs);
	if (!err)
		err = kfs_errno(keep_link(fs->store, i, dir, newname, &a));
	if (err)
		fuse_reply_err(req, err);
	else
		kfs_reply_entry(req, KEEP_LIVE, &a);
	kfs_gate_leave(fs);
}

/* ---- directories --------------------------------------------------------- */

void kfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	int err = kfs_node_open(&fs->nodes, ino, 0);
	fi->fh = 0;
	if (kfs_node_slot(ino) != 0) {
		/* A view's listing never changes (design of snap.c). */
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	if (err)
		fuse_reply_err(req, err);
	else if (fuse_reply_open(req, fi) != 0)
		kfs_close_node(fs, ino, 0);
}

void kfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	kfs_close_node(kfs_of(req), ino, 0);
	fuse_reply_err(req, 0);
}

void kfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	struct kfs *fs = kfs_of(req);
	fuse_reply_err(req, fs->cfg->read_only ? 0 : kfs_errno(kfs_commit(fs)));
}

/*
 * Directory offsets: 0 is the start, 1 follows ".", 2 follows "..", 3
 * follows ".snapshots" (listed in the root with snapdir=visible), and the
 * store's own offsets (opaque, > 0) are shifted by 3 so that they stay
 * valid across calls while entries come and go.  In .snapshots the
 * offset after an entry is its snapshot id + 3 (ids are never reused).
 */
#define DOT_ENTRIES 3

struct dir_fill {
	fuse_req_t req;
	struct kfs *fs;
	uint64_t slot; /* view slot of the directory, 0 for live */
	int plus;
	char *buf;
	size_t size; /* of buf */
	size_t pos;  /* bytes used */
	int err;     /* why the walk stopped early, if not a full buffer */
	int stopped; /* a callback stopped the walk (full buffer or d->err) */
	uint64_t *refs; /* readdirplus: node ids referenced in buf */
	size_t nrefs;
};

/* The smallest readdirplus entry (a one-byte name), to size d->refs. */
#define MIN_PLUS_ENTRY 152

/*
 * Add one entry; returns 1 when the buffer is full (entry not added).
 * snap_id: the entry is the root of that snapshot's view (in .snapshots);
 * 0: the entry is inode a->ino of the directory's own view.  "." and ".."
 * take no reference and show st_ino.
 */
static int fill_one(struct dir_fill *d, const char *name,
		    const struct keep_attr *a, uint64_t st_ino,
		    uint64_t snap_id, uint64_t commit, off_t next)
{
	size_t rem = d->size - d->pos;
	size_t need;
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	kfs_stat_of(d->fs, a, &e.attr);
	e.attr.st_ino = st_ino;
	if (!d->plus) {
		need = fuse_add_direntry(d->req, NULL, 0, name, NULL, 0);
		if (need > rem)
			return 1;
		fuse_add_direntry(d->req, d->buf + d->pos, rem, name, &e.attr,
				  next);
		d->pos += need;
		return 0;
	}

	need = fuse_add_direntry_plus(d->req, NULL, 0, name, NULL, 0);
	if (need > rem)
		return 1; /* no reference was taken for it */
	int is_dot = !strcmp(name, ".") || !strcmp(name, "..");
	if (!is_dot) {
		uint64_t id;
		double timeout = d->fs->cfg->cache_timeout;
		if (snap_id) {
			d->err = kfs_view_ref_root(&d->fs->nodes, snap_id,
						   commit, &id);
			timeout = KFS_VIEW_TIMEOUT;
		} else {
			d->err = kfs_node_ref(&d->fs->nodes, d->slot, a->ino,
					      &id);
			if (d->slot)
				timeout = KFS_VIEW_TIMEOUT;
		}
		if (d->err)
			return 1;
		d->refs[d->nrefs++] = id;
		e.ino = id;
		e.generation = 1;
		e.attr.st_ino = kfs_st_ino(id);
		e.attr_timeout = timeout;
		e.entry_timeout = timeout;
	}
	fuse_add_direntry_plus(d->req, d->buf + d->pos, rem, name, &e, next);
	d->pos += need;
	return 0;
}

static int fill_cb(void *ctx, const char *name, const struct keep_attr *attr,
		   uint64_t next_off)
{
	struct dir_fill *d = ctx;
	d->stopped = fill_one(d, name, attr,
			      kfs_st_ino(kfs_nodeid_of(d->slot, attr->ino)),
			      0, 0, (off_t)(next_off + DOT_ENTRIES));
	return d->stopped;
}

/* One entry of .snapshots. */
static int snap_cb(void *ctx, const struct keep_snapshot *snap)
{
	struct dir_fill *d = ctx;
	struct keep_attr a;

	if (snap->id >= KFS_SLOT_TIME)
		return 0; /* cannot be shown (logged at lookup) */
	int rc = keep_getattr(d->fs->store, snap->commit, KEEP_ROOT_INO, &a);
	if (rc) {
		d->err = kfs_errno(rc);
		return d->stopped = 1;
	}
	d->stopped = fill_one(d, snap->name, &a,
			      kfs_st_ino(kfs_nodeid_of(snap->id,
						       KEEP_ROOT_INO)),
			      snap->id, snap->commit,
			      (off_t)(snap->id + DOT_ENTRIES));
	return d->stopped;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       int plus)
{
	struct kfs *fs = kfs_of(req);
	struct dir_fill d = { .req = req, .fs = fs, .plus = plus, .size = size };
	struct keep_attr self;
	uint64_t view = KEEP_LIVE, dir = 0;
	int snapdir = ino == KFS_SNAPDIR_NODE;

	int err = 0;
	d.slot = kfs_node_slot(ino);
	if (snapdir)
		kfs_snapdir_attr(fs, &self);
	else
		err = resolve(fs, ino, &view, &dir);
	if (!err && !snapdir && off < DOT_ENTRIES)
		err = kfs_errno(keep_getattr(fs->store, view, dir, &self));
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	d.buf = malloc(size ? size : 1);
	if (plus)
		d.refs = malloc((size / MIN_PLUS_ENTRY + 1) * sizeof(*d.refs));
	if (!d.buf || (plus && !d.refs)) {
		free(d.buf);
		free(d.refs);
		fuse_reply_err(req, ENOMEM);
		return;
	}

	uint64_t self_ino = kfs_st_ino(ino);
	int full = 0;
	if (off == 0)
		full = fill_one(&d, ".", &self, self_ino, 0, 0, 1);
	if (!full && off <= 1) {
		/* The kernel ignores ".."'s inode number; the directory's
		 * own is as good as any. */
		full = fill_one(&d, "..", &self, self_ino, 0, 0, 2);
	}
	if (!full && off <= 2 && ino == FUSE_ROOT_ID &&
	    fs->cfg->snapdir_visible) {
		struct keep_attr sa;
		kfs_snapdir_attr(fs, &sa);
		full = fill_one(&d, KFS_SNAPDIR_NAME, &sa, KFS_SNAPDIR_INO, 0,
				0, 3);
		if (full && d.err)
			err = d.err;
	}
	if (!full && !err) {
		uint64_t from = off > DOT_ENTRIES ? (uint64_t)off - DOT_ENTRIES
						  : 0;
		if (plus && !snapdir)
			kfs_gate_enter(fs);
		int rc = snapdir ? keep_snapshot_list(fs->store, from, snap_cb,
						      &d)
				 : keep_readdir(fs->store, view, dir, from,
						fill_cb, &d);
		if (plus && !snapdir)
			kfs_gate_leave(fs);
		/* a callback that stopped the walk says why in d.err (0:
		 * the buffer is full) */
		err = d.stopped ? d.err : kfs_errno(rc);
	}
	/* Once anything is buffered, an error returns what we have. */
	if (err && d.pos == 0) {
		fuse_reply_err(req, err);
	} else if (fuse_reply_buf(req, d.buf, d.pos) != 0) {
		/* The kernel never saw these entries. */
		for (size_t k = 0; k < d.nrefs; k++)
			kfs_forget_node(fs, d.refs[k], 1);
	}
	free(d.buf);
	free(d.refs);
}

void kfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

void kfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

void kfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct kfs *fs = kfs_of(req);
	struct statvfs sv;
	(void)ino;

	if (statvfs(fs->cfg->store_path, &sv) != 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = KEEP_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes -------------------------------------------------- */

void kfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  const char *value, size_t size, int flags)
{
	struct kfs *fs = kfs_of(req);
	unsigned kflags = 0;
	uint64_t i;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & XATTR_CREATE)
		kflags |= KEEP_XATTR_CREATE;
	if (flags & XATTR_REPLACE)
		kflags |= KEEP_XATTR_REPLACE;
	int err = resolve_live(fs, ino, &i);
	if (!err)
		err = kfs_errno(keep_setxattr(fs->store, i, name, value, size,
					      kflags));
	kfs_node_xattr_changed(&fs->nodes, ino);
	fuse_reply_err(req, err);
}

/* Might the inode have xattrs?  Asking the store for the size of the list
 * is one call; when it is empty the answer is kept for the next asks. */
static int has_xattrs(struct kfs *fs, fuse_ino_t nodeid, uint64_t view,
		      uint64_t ino)
{
	uint64_t gen;
	size_t len = 1;
	int state = kfs_node_xattrs(&fs->nodes, nodeid, &gen);

	if (state != KFS_XATTRS_UNKNOWN)
		return state == KFS_XATTRS_SOME;
	if (nodeid == FUSE_ROOT_ID)
		return 1; /* not in the table: nowhere to keep an answer */
	if (keep_listxattr(fs->store, view, ino, NULL, 0, &len) != 0)
		return 1; /* let getxattr report the error */
	kfs_node_xattrs_learn(&fs->nodes, nodeid, gen,
			      len ? KFS_XATTRS_SOME : KFS_XATTRS_NONE);
	return len != 0;
}

void kfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  size_t size)
{
	struct kfs *fs = kfs_of(req);
	char *buf = NULL;
	size_t len = 0;
	uint64_t view, i;

	int err = ino == KFS_SNAPDIR_NODE ? ENODATA
					  : resolve(fs, ino, &view, &i);
	if (!err && !has_xattrs(fs, ino, view, i))
		err = ENODATA;
	if (!err && size) {
		buf = malloc(size);
		if (!buf)
			err = ENOMEM;
	}
	if (!err)
		err = kfs_errno(keep_getxattr(fs->store, view, i, name, buf,
					      size, &len));
	if (err)
		fuse_reply_err(req, err);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

void kfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct kfs *fs = kfs_of(req);
	char *buf = NULL;
	size_t len = 0;
	uint64_t view, i;

	if (ino == KFS_SNAPDIR_NODE) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	int err = resolve(fs, ino, &view, &i);
	if (!err && size) {
		buf = malloc(size);
		if (!buf)
			err = ENOMEM;
	}
	if (!err)
		err = kfs_errno(keep_listxattr(fs->store, view, i, buf, size,
					       &len));
	if (err)
		fuse_reply_err(req, err);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

void kfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct kfs *fs = kfs_of(req);
	uint64_t i;

	int err = resolve_live(fs, ino, &i);
	if (!err)
		err = kfs_errno(keep_removexattr(fs->store, i, name));
	kfs_node_xattr_changed(&fs->nodes, ino);
	fuse_reply_err(req, err);
}
