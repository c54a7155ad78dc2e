/*
 * rawio.c - the daemon's own reads and writes of /dev/fuse, for the one
 * protocol feature libfuse 3.14 (Debian 12's) does not carry:
 * FUSE_HANDLE_KILLPRIV_V2.
 *
 * Without it the kernel clears set-user-ID and set-group-ID bits itself,
 * and before every write(2) into a file it asks the daemon whether the
 * file has a security.capability attribute: one GETXATTR round trip per
 * write(2), since FUSE superblocks do not get SB_NOSEC otherwise (8,192
 * GETXATTRs for 8,192 4 KiB writes, counted with -o debug).  With it the
 * kernel asks once per inode, and the daemon clears the bits when the
 * request says so: FUSE_WRITE_KILL_SUIDGID on a write,
 * FATTR_KILL_SUIDGID on a setattr (truncation, chown),
 * FUSE_OPEN_KILL_SUIDGID on an open with O_TRUNC.  The kernel sets them
 * exactly when the Linux VFS would clear the bits (the caller lacks
 * CAP_FSETID; always for chown).
 *
 * fuse_session_custom_io() gives us the read of each request and the write
 * of each reply:
 *   - the INIT request's offer is noted, and the INIT reply asks for
 *     FUSE_HANDLE_KILLPRIV_V2 when it was offered;
 *   - a WRITE, SETATTR, OPEN or CREATE request's kill flag is left in
 *     kfs_req_kill, a thread-local: libfuse hands a request to its handler
 *     on the thread that read it.
 */
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "kfs_i.h"

_Thread_local int kfs_req_kill;

/* The INIT request's unique id while its reply is due, and whether the
 * kernel offered the feature.  INIT is answered before any other request
 * is read. */
static uint64_t init_unique;
static int init_offered;

/* Where each request that can carry a kill flag keeps it: the request's
 * argument struct, the offset of its 32-bit flags field, the flag. */
static const struct {
	uint32_t opcode;
	size_t size, off;
	uint32_t flag;
} kills[] = {
	{ FUSE_WRITE, sizeof(struct fuse_write_in),
	  offsetof(struct fuse_write_in, write_flags), FUSE_WRITE_KILL_SUIDGID },
	{ FUSE_SETATTR, sizeof(struct fuse_setattr_in),
	  offsetof(struct fuse_setattr_in, valid), FATTR_KILL_SUIDGID },
	{ FUSE_OPEN, sizeof(struct fuse_open_in),
	  offsetof(struct fuse_open_in, open_flags), FUSE_OPEN_KILL_SUIDGID },
	{ FUSE_CREATE, sizeof(struct fuse_create_in),
	  offsetof(struct fuse_create_in, open_flags), FUSE_OPEN_KILL_SUIDGID },
};

static int kill_flag(const char *buf, size_t n)
{
	const struct fuse_in_header *h = (const void *)buf;

	for (size_t i = 0; i < sizeof(kills) / sizeof(kills[0]); i++) {
		uint32_t v;
		if (kills[i].opcode != h->opcode)
			continue;
		if (n - sizeof(*h) < kills[i].size)
			return 0;
		memcpy(&v, buf + sizeof(*h) + kills[i].off, sizeof(v));
		return (v & kills[i].flag) != 0;
	}
	return 0;
}

static ssize_t raw_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	ssize_t n = read(fd, buf, len);

	kfs_req_kill = 0;
	if (n < (ssize_t)sizeof(struct fuse_in_header))
		return n;
	const struct fuse_in_header *h = buf;
	if (h->opcode == FUSE_INIT) {
		struct fuse_init_in in;
		if ((size_t)n >= sizeof(*h) + offsetof(struct fuse_init_in, flags2)) {
			memset(&in, 0, sizeof(in));
			memcpy(&in, (const char *)buf + sizeof(*h),
			       offsetof(struct fuse_init_in, flags2));
			init_offered = in.major == 7 && in.minor >= 33 &&
				       (in.flags & FUSE_HANDLE_KILLPRIV_V2);
			init_unique = h->unique;
		}
		return n;
	}
	kfs_req_kill = kill_flag(buf, (size_t)n);
	return n;
}

static ssize_t raw_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;

	if (init_unique && count >= 2 &&
	    iov[0].iov_len >= sizeof(struct fuse_out_header)) {
		struct fuse_out_header *o = iov[0].iov_base;
		if (o->unique == init_unique) {
			init_unique = 0;
			if (o->error == 0 && init_offered &&
			    iov[1].iov_len >= offsetof(struct fuse_init_out,
						       max_background)) {
				struct fuse_init_out *io = iov[1].iov_base;
				io->flags |= FUSE_HANDLE_KILLPRIV_V2;
				keep_log(LOG_DEBUG, "set-user-ID bits are "
					 "cleared here (FUSE_HANDLE_KILLPRIV_V2)");
			}
		}
	}
	return writev(fd, iov, count);
}

int kfs_rawio_start(struct kfs *fs)
{
	static const struct fuse_custom_io io = {
		.read = raw_read,
		.writev = raw_writev,
	};
	int rc = fuse_session_custom_io(fs->se, &io, fuse_session_fd(fs->se));
	return rc < 0 ? -rc : rc;
}

int kfs_kill_suidgid_mode(uint32_t mode, uint32_t *out)
{
	uint32_t m = mode & ~(uint32_t)S_ISUID;
	if (m & S_IXGRP)
		m &= ~(uint32_t)S_ISGID;
	*out = m;
	return m != mode;
}

int kfs_kill_suidgid(struct kfs *fs, fuse_ino_t nodeid, uint64_t ino)
{
	struct keep_attr a, in, out;
	uint32_t m;

	int rc = keep_getattr(fs->store, KEEP_LIVE, ino, &a);
	if (rc || !kfs_kill_suidgid_mode(a.mode, &m))
		return rc;
	memset(&in, 0, sizeof(in));
	in.mode = m;
	rc = kfs_times_setattr(fs, nodeid, ino, &in, KEEP_SET_MODE, &out);
	if (!rc) {
		/* the kernel caches the mode: have it ask again */
		kfs_node_attr_stale(&fs->nodes, nodeid);
		kfs_attr_refresh(fs, nodeid);
	}
	return rc;
}
