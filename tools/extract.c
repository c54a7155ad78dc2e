/*
 * extract.c - copying a subtree of a committed view out of a store into
 * the local file system: "keepfs restore REPLICA FROM [PATH] --to DEST" on
 * a replica, whose own tree only receive changes.
 *
 * Everything the view holds comes out: contents (holes stay holes),
 * directories, symbolic links, fifos, sockets and device nodes, hard links
 * within the subtree, mode, owner, times and extended attributes.  Owners,
 * device nodes and trusted.* attributes need root; what cannot be set is
 * counted and named, not fatal.  DEST must not exist; on a failure the
 * part made so far stays, and the message says where.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

#define CHUNK (1024 * 1024)

struct link_seen {
	uint64_t ino;
	char *path;
};

struct ex {
	struct keep_store *s;
	uint64_t view;
	struct extract_stats *st;
	struct link_seen *links;
	size_t nlinks, caplinks;
	char *buf;
	int failed; /* an error was printed */
};

/* What could not be set (owner, xattr, times) on path: counted, the first
 * few named. */
static void not_set(struct ex *x, const char *path, const char *what)
{
	if (x->st->not_set++ < 5)
		fprintf(stderr, "keepfs: warning: cannot set the %s of '%s': %s\n",
			what, path, strerror(errno));
}

static const char *seen(struct ex *x, uint64_t ino)
{
	for (size_t i = 0; i < x->nlinks; i++)
		if (x->links[i].ino == ino)
			return x->links[i].path;
	return NULL;
}

static void remember(struct ex *x, uint64_t ino, const char *path)
{
	if (x->nlinks == x->caplinks) {
		x->caplinks = x->caplinks ? 2 * x->caplinks : 64;
		x->links = realloc(x->links, x->caplinks * sizeof(*x->links));
		if (!x->links)
			die("out of memory");
	}
	x->links[x->nlinks++] = (struct link_seen){ino, xstrdup(path)};
}

static int copy_data(struct ex *x, const struct keep_attr *a, int fd,
		     const char *path)
{
	uint64_t off = 0, data, hole;

	while (off < a->size) {
		int rc = keep_lseek(x->s, x->view, a->ino, off, SEEK_DATA, &data);
		if (rc == ENXIO)
			break;
		if (!rc)
			rc = keep_lseek(x->s, x->view, a->ino, data, SEEK_HOLE,
					&hole);
		if (rc)
			return error("cannot read '%s' from the store: %s", path,
				     keep_strerror(rc));
		for (off = data; off < hole;) {
			size_t want = hole - off < CHUNK ? (size_t)(hole - off)
							 : CHUNK,
			       got = 0;
			rc = keep_read(x->s, x->view, a->ino, off, want, x->buf,
				       &got);
			if (rc || !got)
				return error("cannot read '%s' from the store: %s",
					     path, rc ? keep_strerror(rc)
						      : "short read");
			if (pwrite(fd, x->buf, got, (off_t)off) != (ssize_t)got)
				return error("cannot write '%s': %s", path,
					     strerror(errno));
			off += got;
			x->st->bytes += got;
		}
	}
	if (ftruncate(fd, (off_t)a->size) != 0)
		return error("cannot write '%s': %s", path, strerror(errno));
	return EXIT_OK;
}

static void set_xattrs(struct ex *x, const struct keep_attr *a,
		       const char *path)
{
	char names[65536], value[KEEP_XATTR_SIZE_MAX];
	size_t len = 0, vlen;

	if (keep_listxattr(x->s, x->view, a->ino, names, sizeof(names), &len))
		return;
	for (size_t i = 0; i < len; i += strlen(names + i) + 1) {
		if (keep_getxattr(x->s, x->view, a->ino, names + i, value,
				  sizeof(value), &vlen))
			continue;
		if (lsetxattr(path, names + i, value, vlen, 0) != 0)
			not_set(x, path, "extended attributes");
	}
}

/* Owner, mode and times of what is at path (after its contents). */
static void set_meta(struct ex *x, const struct keep_attr *a, const char *path)
{
	struct timespec ts[2] = {
	    {.tv_sec = a->atime_ns / 1000000000, .tv_nsec = a->atime_ns % 1000000000},
	    {.tv_sec = a->mtime_ns / 1000000000, .tv_nsec = a->mtime_ns % 1000000000},
	};

	if (lchown(path, a->uid, a->gid) != 0)
		not_set(x, path, "owner");
	if (!S_ISLNK(a->mode) && chmod(path, a->mode & 07777) != 0)
		not_set(x, path, "mode");
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0)
		not_set(x, path, "times");
}

static int one(struct ex *x, const struct keep_attr *a, const char *path);

struct walk {
	struct ex *x;
	const char *dir;
	int rc;
};

static int walk_cb(void *ctx, const char *name, const struct keep_attr *a,
		   uint64_t next)
{
	struct walk *w = ctx;
	char *p = xasprintf("%s/%s", w->dir, name);

	(void)next;
	w->rc = one(w->x, a, p);
	free(p);
	return w->rc;
}

static int one(struct ex *x, const struct keep_attr *a, const char *path)
{
	const char *first = !S_ISDIR(a->mode) && a->nlink > 1 ? seen(x, a->ino)
							       : NULL;
	int rc = EXIT_OK;

	if (first) {
		if (link(first, path) != 0)
			return error("cannot link '%s' to '%s': %s", path, first,
				     strerror(errno));
		x->st->objects++;
		return EXIT_OK;
	}
	switch (a->mode & S_IFMT) {
	case S_IFDIR: {
		struct walk w = {x, path, 0};
		if (mkdir(path, 0700) != 0)
			return error("cannot make '%s': %s", path, strerror(errno));
		int krc = keep_readdir(x->s, x->view, a->ino, 0, walk_cb, &w);
		if (w.rc)
			return w.rc;
		if (krc)
			return error("cannot list '%s' in the store: %s", path,
				     keep_strerror(krc));
		break;
	}
	case S_IFREG: {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return error("cannot make '%s': %s", path, strerror(errno));
		rc = copy_data(x, a, fd, path);
		if (close(fd) != 0 && rc == EXIT_OK)
			rc = error("cannot write '%s': %s", path, strerror(errno));
		if (rc != EXIT_OK)
			return rc;
		break;
	}
	case S_IFLNK: {
		char target[4096];
		int krc = keep_readlink(x->s, x->view, a->ino, target,
					sizeof(target));
		if (krc)
			return error("cannot read the link '%s': %s", path,
				     keep_strerror(krc));
		if (symlink(target, path) != 0)
			return error("cannot make '%s': %s", path, strerror(errno));
		break;
	}
	default:
		if (mknod(path, (a->mode & S_IFMT) | 0600, (dev_t)a->rdev) != 0)
			return error("cannot make '%s': %s", path, strerror(errno));
	}
	x->st->objects++;
	if (!S_ISDIR(a->mode) && a->nlink > 1)
		remember(x, a->ino, path);
	set_xattrs(x, a, path);
	set_meta(x, a, path);
	return EXIT_OK;
}

int extract_tree(struct keep_store *s, uint64_t view, const char *path,
		 const char *dest, struct extract_stats *st)
{
	struct ex x = {.s = s, .view = view, .st = st};
	struct keep_attr a;
	char *copy = xstrdup(path), *save = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = keep_getattr(s, view, KEEP_ROOT_INO, &a);
	for (char *t = strtok_r(copy, "/", &save); t && !rc;
	     t = strtok_r(NULL, "/", &save))
		rc = S_ISDIR(a.mode) ? keep_lookup(s, view, a.ino, t, &a) : ENOTDIR;
	free(copy);
	if (rc == ENOENT || rc == ENOTDIR)
		return error("'%s' is not in that version", path);
	if (rc)
		return error("cannot read the store: %s", keep_strerror(rc));
	x.buf = xmalloc(CHUNK);
	rc = one(&x, &a, dest);
	free(x.buf);
	for (size_t i = 0; i < x.nlinks; i++)
		free(x.links[i].path);
	free(x.links);
	return rc;
}
