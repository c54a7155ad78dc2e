/*
 * times.c - keeping the store's file times equal to the kernel's.
 *
 * Under the writeback cache the kernel owns the mtime and ctime of regular
 * files: it stamps them itself on write, and sends them to us in SETATTR
 * when it writes the inode back -- but only when they changed, and on its
 * own coarse clock.  The store stamps its own clock on data changes too.
 * Left alone the two disagree, and a remount shows times that no one saw
 * while the file was mounted.
 *
 * Writes and copies are simple: the store is told not to stamp them
 * (keep_store_set_write_times, in kfs_init).  It still stamps fallocate
 * and truncation, so for those each file gets a pin: the times the kernel
 * last sent, or the store's times before the daemon first changed its
 * data.  Such a change marks the node stale; the pin is put back into the store before every
 * commit, at flush, release and forget, and at unmount.  A stale mark
 * that turns out unneeded costs one keep_setattr() of the same times.
 *
 * Design notes:
 *  1. Pins exist only with the writeback cache, for regular files of the
 *     live tree.
 *  2. Every keep_setattr() that sets times from a pin or replaces the pin
 *     runs under fs->times_lock, so a late restore never overwrites times
 *     the kernel sent after the pin was read.
 *  3. A crash between a data change and the next restore may leave the
 *     store's own stamp in the last commit; data is never affected.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>

#include "kfs_i.h"

void kfs_times_before(struct kfs *fs, uint64_t nodeid, uint64_t ino)
{
	int64_t m, c;
	struct keep_attr a;

	if (!fs->writeback || kfs_node_pin(&fs->nodes, nodeid, &m, &c))
		return;
	if (keep_getattr(fs->store, KEEP_LIVE, ino, &a) == 0 &&
	    S_ISREG(a.mode))
		kfs_node_pin_set(&fs->nodes, nodeid, a.mtime_ns, a.ctime_ns, 0);
}

void kfs_times_after(struct kfs *fs, uint64_t nodeid, uint64_t ino)
{
	(void)ino;
	kfs_node_attr_stale(&fs->nodes, nodeid);
	if (!fs->writeback)
		return;
	if (kfs_node_mark_stale(&fs->nodes, nodeid) != 0)
		kfs_times_restore(fs, nodeid); /* no room to remember it */
}

void kfs_times_restore(struct kfs *fs, uint64_t nodeid)
{
	struct keep_attr in, out;
	uint64_t view, ino;

	if (!fs->writeback)
		return;
	pthread_mutex_lock(&fs->times_lock);
	memset(&in, 0, sizeof(in));
	if (kfs_node_resolve(&fs->nodes, nodeid, &view, &ino) == 0 &&
	    view == KEEP_LIVE &&
	    kfs_node_take_stale(&fs->nodes, nodeid, &in.mtime_ns,
				&in.ctime_ns)) {
		int rc = keep_setattr(fs->store, ino, &in,
				      KEEP_SET_MTIME | KEEP_SET_CTIME, &out);
		if (rc && rc != ENOENT)
			keep_log(LOG_WARNING, "cannot set the times of inode "
				 "%llu: %s", (unsigned long long)ino,
				 keep_strerror(rc));
	}
	pthread_mutex_unlock(&fs->times_lock);
}

void kfs_times_restore_all(struct kfs *fs)
{
	uint64_t *ids;

	if (!fs->writeback)
		return;
	size_t n = kfs_node_take_stale_list(&fs->nodes, &ids);
	for (size_t i = 0; i < n; i++)
		kfs_times_restore(fs, ids[i]);
	free(ids);
}

int kfs_times_setattr(struct kfs *fs, uint64_t nodeid, uint64_t ino,
		      struct keep_attr *in, unsigned set, struct keep_attr *out)
{
	int64_t m, c;

	if (!fs->writeback)
		return keep_setattr(fs->store, ino, in, set, out);

	pthread_mutex_lock(&fs->times_lock);
	if (kfs_node_pin(&fs->nodes, nodeid, &m, &c)) {
		/* Times the kernel did not send are the ones it has. */
		if (!(set & (KEEP_SET_MTIME | KEEP_SET_SIZE))) {
			in->mtime_ns = m;
			set |= KEEP_SET_MTIME;
		}
		if (!(set & KEEP_SET_CTIME)) {
			in->ctime_ns = c;
			set |= KEEP_SET_CTIME;
		}
	}
	int rc = keep_setattr(fs->store, ino, in, set, out);
	if (rc == 0 && S_ISREG(out->mode))
		kfs_node_pin_set(&fs->nodes, nodeid, out->mtime_ns,
				 out->ctime_ns, 1);
	pthread_mutex_unlock(&fs->times_lock);
	return rc;
}

void kfs_attr_refresh(struct kfs *fs, uint64_t nodeid)
{
	if (!kfs_node_take_attr_stale(&fs->nodes, nodeid))
		return;
	/* Attributes only (offset < 0): the page cache stays. */
	int res = fuse_lowlevel_notify_inval_inode(fs->se, nodeid, -1, 0);
	if (res < 0 && res != -ENOENT)
		keep_log(LOG_DEBUG, "cannot invalidate inode %llu: %s",
			 (unsigned long long)nodeid, strerror(-res));
}
