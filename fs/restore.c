/*
 * restore.c - a restore on a mounted store, and the kernel's caches
 * after it.
 *
 * keep_restore changes objects behind the kernel's back.  The kernel
 * caches names (dentries, negative ones too), attributes, pages, and with
 * the writeback cache it trusts its own size and times of a regular file
 * over ours for as long as it holds the inode.  So:
 *
 *  1. Before: what write() has accepted is handed over and the writers
 *     held still (kfs_flush_begin, as for a snapshot), so no page dirtied
 *     before the restore is written back over it afterwards.
 *  2. During the commit and until the daemon knows which of the changed
 *     objects the kernel holds, no reply may create a kernel inode from
 *     attributes read before the commit: fs->entry_gate is held for
 *     writing (lookups, creates and readdirplus hold it for reading).
 *  3. After: for every changed object the kernel holds, its cached pages
 *     and attributes are dropped, and, with the writeback cache, a
 *     regular file's size and times are set through the mount itself
 *     (opened by handle; ftruncate and futimens reach the kernel's inode
 *     and come back to us as SETATTRs that change nothing but ctime), so
 *     a process that has the file open reads the restored bytes.  Every
 *     changed name is dropped, so every later lookup sees the restored
 *     tree.  Objects left without names that the kernel does not hold
 *     are reclaimed now; the others when it forgets them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <syslog.h>
#include <unistd.h>

#include "kfs_i.h"

struct robj {
	uint64_t ino;
	struct keep_attr a;
	int held;
};

struct rname {
	uint64_t parent;
	char *name;
};

struct gathered {
	struct robj *objs;
	size_t nobjs, capobjs;
	struct rname *names;
	size_t nnames, capnames;
	uint64_t *gone;
	size_t ngone, capgone;
	int oom;
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 32;
	void *g = realloc(*v, c * size);
	if (!g)
		return -1;
	*v = g;
	*cap = c;
	return 0;
}

#define GROW(arr, cap, n) grow((void **)&(arr), &(cap), (n), sizeof(*(arr)))

static int take(void *ctx, const struct keep_restore_event *e)
{
	struct gathered *g = ctx;

	switch (e->kind) {
	case KEEP_RESTORED_OBJECT:
		if (GROW(g->objs, g->capobjs, g->nobjs))
			break;
		g->objs[g->nobjs++] = (struct robj){e->ino, e->attr, 0};
		return 0;
	case KEEP_RESTORED_NAME:
		if (GROW(g->names, g->capnames, g->nnames))
			break;
		g->names[g->nnames].parent = e->parent;
		g->names[g->nnames].name = strdup(e->name);
		if (!g->names[g->nnames].name)
			break;
		g->nnames++;
		return 0;
	case KEEP_RESTORED_UNLINKED:
		if (GROW(g->gone, g->capgone, g->ngone))
			break;
		g->gone[g->ngone++] = e->ino;
		return 0;
	default:
		return 0;
	}
	g->oom = 1;
	return 0;
}

static void gathered_free(struct gathered *g)
{
	for (size_t i = 0; i < g->nnames; i++)
		free(g->names[i].name);
	free(g->objs);
	free(g->names);
	free(g->gone);
}

static void inval_inode(struct kfs *fs, uint64_t ino)
{
	int res = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	if (res && res != -ENOENT)
		keep_log(LOG_WARNING, "the kernel refused to drop what it "
			 "caches of inode %llu: %s", (unsigned long long)ino,
			 strerror(-res));
}

/* Open the mount's root, checking that it still is this mount. */
static int open_mount(struct kfs *fs)
{
	struct statfs sf;
	struct stat st;
	int fd = open(fs->cfg->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstatfs(fd, &sf) != 0 || sf.f_type != FUSE_SUPER_MAGIC ||
	    fstat(fd, &st) != 0 || st.st_ino != KEEP_ROOT_INO) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

/* Design note 3: the kernel's size and times of a held regular file. */
static int sync_file(int mntfd, const struct robj *o)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 3 * sizeof(uint32_t)];
	} h;
	uint32_t raw[3] = {(uint32_t)(o->ino >> 32), (uint32_t)o->ino, 1};
	struct timespec ts[2] = {
	    {o->a.atime_ns / 1000000000, o->a.atime_ns % 1000000000},
	    {o->a.mtime_ns / 1000000000, o->a.mtime_ns % 1000000000},
	};
	struct stat st;
	int err = 0;

	h.fh.handle_bytes = sizeof(raw);
	h.fh.handle_type = KFS_FH_TYPE;
	memcpy(h.fh.f_handle, raw, sizeof(raw));
	int fd = open_by_handle_at(mntfd, &h.fh, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ESTALE || errno == ENOENT ? 0 : errno;
	if (fstat(fd, &st) != 0)
		err = errno;
	if (!err && (uint64_t)st.st_size != o->a.size &&
	    ftruncate(fd, (off_t)o->a.size) != 0)
		err = errno;
	if (!err && (st.st_mtim.tv_sec != ts[1].tv_sec ||
		     st.st_mtim.tv_nsec != ts[1].tv_nsec ||
		     (uint64_t)st.st_size != o->a.size) &&
	    futimens(fd, ts) != 0)
		err = errno;
	close(fd);
	return err;
}

int kfs_restore(struct kfs *fs, const struct keep_restore_req *req,
		struct keep_restore_result *res)
{
	struct gathered g = {0};
	int rc;

	if (fs->cfg->read_only)
		return EROFS;

	pthread_mutex_lock(&fs->flush_lock);
	kfs_flush_begin(fs);
	kfs_times_restore_all(fs);
	pthread_rwlock_wrlock(&fs->entry_gate);
	rc = keep_restore(fs->store, req, take, &g, res);
	for (size_t i = 0; !rc && i < g.nobjs; i++)
		g.objs[i].held = kfs_node_restored(&fs->nodes, g.objs[i].ino);
	pthread_rwlock_unlock(&fs->entry_gate);
	/* pages first, while the writers are held still */
	for (size_t i = 0; !rc && i < g.nobjs; i++)
		if (g.objs[i].held)
			inval_inode(fs, g.objs[i].ino);
	kfs_flush_end(fs);
	pthread_mutex_unlock(&fs->flush_lock);
	if (rc)
		goto out;
	if (g.oom)
		keep_log(LOG_WARNING, "out of memory noting what a restore "
			 "changed: the kernel may show old names or data for "
			 "up to the cache timeout");

	int mntfd = -1, denied = 0;
	for (size_t i = 0; fs->writeback && i < g.nobjs; i++) {
		const struct robj *o = &g.objs[i];
		if (!o->held || !S_ISREG(o->a.mode) || denied)
			continue;
		if (mntfd < 0 && (mntfd = open_mount(fs)) < 0) {
			denied = errno;
			break;
		}
		int err = sync_file(mntfd, o);
		if (err == EPERM || err == EACCES)
			denied = err;
		else if (err)
			keep_log(LOG_WARNING, "cannot give the kernel the "
				 "restored size of inode %llu: %s",
				 (unsigned long long)o->ino, strerror(err));
		inval_inode(fs, o->ino);
	}
	if (denied)
		keep_log(LOG_WARNING, "cannot reach open files through the "
			 "mount (%s): a restored file that a process holds open "
			 "keeps its old size until it is closed", strerror(denied));
	if (mntfd >= 0)
		close(mntfd);

	for (size_t i = 0; i < g.nnames; i++) {
		int r = fuse_lowlevel_notify_inval_entry(
		    fs->se, g.names[i].parent, g.names[i].name,
		    strlen(g.names[i].name));
		if (r && r != -ENOENT)
			keep_log(LOG_WARNING, "the kernel refused to drop the "
				 "name '%s': %s", g.names[i].name, strerror(-r));
		if (i == 0 || g.names[i].parent != g.names[i - 1].parent)
			inval_inode(fs, g.names[i].parent);
	}
	for (size_t i = 0; i < g.ngone; i++)
		if (!kfs_node_held(&fs->nodes, g.gone[i]))
			keep_forget(fs->store, g.gone[i]);
out:
	gathered_free(&g);
	return rc;
}
