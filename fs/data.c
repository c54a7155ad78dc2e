/*
 * data.c - file operations of the FUSE daemon: open handles and file data.
 *
 * File handles carry no state: every request names its inode, and the
 * store is the only place data lives, so fi->fh stays 0.  Open handles are
 * counted in the node table so that an unlinked file stays in the store
 * until its last handle is released and the kernel has forgotten it.
 *
 * With the writeback cache the kernel keeps file data and sizes itself,
 * turns O_APPEND writes into writes at the end, and sends us page-sized
 * reads even on write-only handles; nothing here checks access modes
 * (default_permissions and the VFS already did).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfs_i.h"

/* A handle that may change the file: the mount must be writable and the
 * node live. */
static int wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static int resolve_data(struct kfs *fs, fuse_ino_t nodeid, int write,
			uint64_t *view, uint64_t *ino)
{
	if (nodeid == KFS_SNAPDIR_NODE)
		return write ? EROFS : EISDIR;
	if (write && fs->cfg->read_only)
		return EROFS;
	int err = kfs_node_resolve(&fs->nodes, nodeid, view, ino);
	if (!err && write && *view != KEEP_LIVE)
		err = EROFS;
	return err;
}

static int truncate_zero(struct kfs *fs, uint64_t ino)
{
	struct keep_attr in, out;
	memset(&in, 0, sizeof(in));
	return kfs_errno(keep_setattr(fs->store, ino, &in, KEEP_SET_SIZE, &out));
}

void kfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	uint64_t view, i;

	int err = resolve_data(fs, ino, wants_write(fi->flags), &view, &i);
	if (!err && (fi->flags & O_TRUNC)) {
		kfs_times_before(fs, ino, i);
		err = truncate_zero(fs, i);
		if (!err)
			kfs_times_after(fs, ino, i);
		if (!err && kfs_req_kill)
			err = kfs_errno(kfs_kill_suidgid(fs, ino, i));
	}
	if (!err)
		err = kfs_node_open(&fs->nodes, ino, kfs_is_writer(fi->flags));
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = 0;
	fi->keep_cache = 1; /* only we change the data */
	if (fuse_reply_open(req, fi) != 0)
		kfs_close_node(fs, ino, kfs_is_writer(fi->flags));
}

void kfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct keep_cred c = { .uid = ctx->uid, .gid = ctx->gid };
	struct fuse_entry_param e;
	struct keep_attr a;
	uint64_t view, dir, nodeid;

	int err = resolve_data(fs, parent, 1, &view, &dir);
	kfs_gate_enter(fs);
	if (!err)
		err = kfs_errno(keep_mknod(fs->store, dir, name,
					   (mode & ~(mode_t)S_IFMT) | S_IFREG,
					   0, &c, &a));
	int made = !err;
	if (err == EEXIST && !(fi->flags & O_EXCL)) {
		/* Lost a race with another creator: open what is there. */
		err = kfs_errno(keep_lookup(fs->store, KEEP_LIVE, dir, name,
					    &a));
		if (!err && S_ISDIR(a.mode))
			err = EISDIR;
		if (!err && (fi->flags & O_TRUNC) && S_ISREG(a.mode)) {
			uint32_t m;
			err = truncate_zero(fs, a.ino);
			if (!err && kfs_req_kill &&
			    kfs_kill_suidgid_mode(a.mode, &m)) {
				struct keep_attr in = { .mode = m };
				err = kfs_errno(keep_setattr(fs->store, a.ino,
							     &in, KEEP_SET_MODE,
							     &a));
			}
		}
		if (!err)
			err = kfs_errno(keep_getattr(fs->store, KEEP_LIVE,
						     a.ino, &a));
	}
	if (!err)
		err = kfs_node_ref(&fs->nodes, KEEP_LIVE, a.ino, &nodeid);
	if (!err && made) {
		/* a new inode has no xattrs: the kernel's check for
		 * security.capability at the first write asks the store
		 * nothing (2 % of the daemon's time in a run of creates) */
		uint64_t gen;
		kfs_node_xattrs(&fs->nodes, nodeid, &gen);
		kfs_node_xattrs_learn(&fs->nodes, nodeid, gen, KFS_XATTRS_NONE);
	}
	kfs_gate_leave(fs);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	err = kfs_node_open(&fs->nodes, nodeid, kfs_is_writer(fi->flags));
	if (err) {
		kfs_forget_node(fs, nodeid, 1);
		fuse_reply_err(req, err);
		return;
	}

	memset(&e, 0, sizeof(e));
	e.ino = nodeid;
	e.generation = 1;
	e.attr_timeout = KFS_TIMEOUT;
	e.entry_timeout = KFS_TIMEOUT;
	kfs_stat_of(fs, &a, &e.attr);
	e.attr.st_ino = kfs_st_ino(nodeid);
	fi->fh = 0;
	fi->keep_cache = 1;
	if (fuse_reply_create(req, &e, fi) != 0) {
		kfs_close_node(fs, nodeid, kfs_is_writer(fi->flags));
		kfs_forget_node(fs, nodeid, 1);
	}
}

void kfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	uint64_t view, i;
	size_t n = 0;
	char *buf = NULL;
	(void)fi;

	int err = off < 0 ? EINVAL : resolve_data(fs, ino, 0, &view, &i);
	if (!err) {
		buf = malloc(size ? size : 1);
		if (!buf)
			err = ENOMEM;
	}
	if (!err)
		err = kfs_errno(keep_read(fs->store, view, i, (uint64_t)off,
					  size, buf, &n));
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

void kfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	uint64_t view, i;
	(void)fi;

	int err = off < 0 ? EINVAL : resolve_data(fs, ino, 1, &view, &i);
	if (!err) {
		err = kfs_errno(keep_write(fs->store, i, (uint64_t)off, buf,
					   size));
		if (!err)
			kfs_node_attr_stale(&fs->nodes, ino);
		if (!err && kfs_req_kill)
			err = kfs_errno(kfs_kill_suidgid(fs, ino, i));
	}
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, size);
}

/* There is no FLUSH handler: close() is not a durability point (fsync
 * is), locks are the kernel's, and the kernel writes its dirty pages
 * back to us at close() whether we take FLUSH or not.  Without one the
 * kernel stops sending it after the first ENOSYS, which saves a round
 * trip at every close() (one of eight requests of a small file's create,
 * write and close).  What it did is done here, at release. */
void kfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	kfs_times_restore(kfs_of(req), ino);
	kfs_attr_refresh(kfs_of(req), ino);
	kfs_close_node(kfs_of(req), ino, kfs_is_writer(fi->flags));
	fuse_reply_err(req, 0);
}

void kfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi)
{
	/* One commit makes everything durable, data and metadata alike. */
	(void)datasync;
	(void)fi;
	struct kfs *fs = kfs_of(req);
	if (kfs_flush_park(fs, req))
		return; /* a snapshot's flush: answered after its commit */
	int err = fs->cfg->read_only ? 0 : kfs_errno(kfs_commit(fs));
	if (!err)
		kfs_attr_refresh(fs, ino);
	fuse_reply_err(req, err);
}

void kfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	unsigned kmode = 0;
	uint64_t view, i;
	(void)fi;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (mode & FALLOC_FL_KEEP_SIZE)
		kmode |= KEEP_FALLOC_KEEP_SIZE;
	if (mode & FALLOC_FL_PUNCH_HOLE)
		kmode |= KEEP_FALLOC_PUNCH_HOLE;
	int err = resolve_data(fs, ino, 1, &view, &i);
	if (!err) {
		kfs_times_before(fs, ino, i);
		err = kfs_errno(keep_fallocate(fs->store, i, kmode,
					       (uint64_t)offset,
					       (uint64_t)length));
		if (!err)
			kfs_times_after(fs, ino, i);
	}
	fuse_reply_err(req, err);
}

/* SEEK_DATA/SEEK_HOLE of the store, after the kernel's dirty pages from
 * off on are written back if inval says so. */
static void lseek_answer(struct kfs *fs, fuse_req_t req, fuse_ino_t ino,
			 uint64_t view, uint64_t i, off_t off, int whence,
			 int inval)
{
	uint64_t out = 0;
	int err = 0;

	if (inval) {
		int res = fuse_lowlevel_notify_inval_inode(fs->se, ino, off, 0);
		if (res < 0 && res != -ENOENT)
			err = -res;
	}
	if (!err)
		err = kfs_errno(keep_lseek(fs->store, view, i, (uint64_t)off,
					   whence, &out));
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_lseek(req, (off_t)out);
}

struct lseek_job {
	struct kfs *fs;
	fuse_req_t req;
	fuse_ino_t ino;
	uint64_t view, i;
	off_t off;
	int whence;
};

static void lseek_job_run(void *arg)
{
	struct lseek_job *j = arg;
	lseek_answer(j->fs, j->req, j->ino, j->view, j->i, j->off, j->whence,
		     1);
	free(j);
}

void kfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	       struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	uint64_t view, i;
	(void)fi;

	if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	int err = resolve_data(fs, ino, 0, &view, &i);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	/* The kernel asks without writing its dirty pages back first, and
	 * the store would answer "hole" where they are.  Invalidating the
	 * inode's pages from off on writes them back and returns once they
	 * are in the store; request threads serve those writes, so this one
	 * must not be the one waiting (kfs_offload).  Without a writer there
	 * are no dirty pages, and the cache stays. */
	if (!fs->writeback || view != KEEP_LIVE ||
	    kfs_node_writers(&fs->nodes, ino) == 0) {
		lseek_answer(fs, req, ino, view, i, off, whence, 0);
		return;
	}
	struct lseek_job *j = malloc(sizeof(*j));
	if (!j) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	*j = (struct lseek_job){ .fs = fs, .req = req, .ino = ino,
				 .view = view, .i = i, .off = off,
				 .whence = whence };
	err = kfs_offload(fs, lseek_job_run, j);
	if (err) {
		free(j);
		fuse_reply_err(req, err);
	}
}

void kfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			 struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			 off_t off_out, struct fuse_file_info *fi_out,
			 size_t len, int flags)
{
	struct kfs *fs = kfs_of(req);
	uint64_t view_in, view_out, in, out, copied = 0;
	(void)fi_in;
	(void)fi_out;

	if (flags != 0 || off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	int err = resolve_data(fs, ino_out, 1, &view_out, &out);
	if (!err)
		err = resolve_data(fs, ino_in, 0, &view_in, &in);
	/* The store shares blocks only within the live tree; the kernel
	 * copies by itself when we decline. */
	if (!err && view_in != KEEP_LIVE)
		err = EOPNOTSUPP;
	if (!err && len) {
		err = kfs_errno(keep_copy_range(fs->store, in, (uint64_t)off_in,
						out, (uint64_t)off_out, len,
						&copied));
		if (!err)
			kfs_node_attr_stale(&fs->nodes, ino_out);
	}
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, (size_t)copied);
}
