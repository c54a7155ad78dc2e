/*
 * test_names.c - namespace semantics of the live tree: create and remove,
 * rename and its flags, hard links and nlink, readdir offsets that stay
 * valid while entries come and go, keep_forget, xattrs, name lengths and
 * the reserved root name.
 */
#include <time.h>

#include "unit.h"

static struct keep_store *s;

static uint64_t mkdir_(uint64_t parent, const char *name)
{
	struct keep_attr a;

	return keep_mkdir(s, parent, name, 0755, unit_cred(), &a) == 0 ? a.ino :
									 0;
}

static uint32_t nlink_of(uint64_t ino)
{
	struct keep_attr a;

	return keep_getattr(s, KEEP_LIVE, ino, &a) == 0 ? a.nlink : 9999;
}

static void t_create_remove(void)
{
	struct keep_attr a;
	uint64_t d, f;
	char buf[8];

	d = mkdir_(KEEP_ROOT_INO, "d");
	ok(d != 0, "mkdir");
	ok(keep_getattr(s, KEEP_LIVE, d, &a) == 0 && a.mode == (S_IFDIR | 0755) &&
		   a.nlink == 2 && a.uid == getuid(),
	   "new directory: mode, nlink 2, owner");
	is_int(nlink_of(KEEP_ROOT_INO), 3, "parent nlink counts the subdirectory");
	is_int(keep_mkdir(s, KEEP_ROOT_INO, "d", 0755, unit_cred(), &a), EEXIST,
	       "mkdir of an existing name is EEXIST");
	f = unit_file(s, d, "f", "x", 1);
	is_int(unit_mkfile(s, d, "f", 0644, &a), EEXIST,
	       "mknod of an existing name is EEXIST");
	is_int(keep_symlink(s, d, "f", "t", unit_cred(), &a), EEXIST,
	       "symlink over an existing name is EEXIST");
	is_int(unit_mkfile(s, f, "x", 0644, &a), ENOTDIR,
	       "mknod in a file is ENOTDIR");
	is_int(keep_lookup(s, KEEP_LIVE, f, "x", &a), ENOTDIR,
	       "lookup in a file is ENOTDIR");
	is_int(unit_mkfile(s, 999999, "x", 0644, &a), ENOENT,
	       "mknod in a missing directory is ENOENT");
	is_int(keep_lookup(s, KEEP_LIVE, 999999, "x", &a), ENOENT,
	       "lookup in a missing directory is ENOENT");
	is_int(keep_mknod(s, d, "bad", S_IFDIR | 0755, 0, unit_cred(), &a),
	       EINVAL, "mknod of a directory type is EINVAL");
	is_int(keep_mknod(s, d, "bad", S_IFLNK | 0777, 0, unit_cred(), &a),
	       EINVAL, "mknod of a symlink type is EINVAL");
	is_int(unit_mkfile(s, d, "a/b", 0644, &a), EINVAL,
	       "a name with '/' is EINVAL");
	is_int(keep_mknod(s, d, "fifo", S_IFIFO | 0600, 0, unit_cred(), &a), 0,
	       "mknod a fifo");
	is_int(a.mode, S_IFIFO | 0600, "fifo mode");
	is_int(keep_mknod(s, d, "sock", S_IFSOCK | 0600, 0, unit_cred(), &a), 0,
	       "mknod a socket");
	is_int(keep_mknod(s, d, "chr", S_IFCHR | 0600, 0x0103, unit_cred(), &a),
	       0, "mknod a character device");
	is_int(a.rdev, 0x0103, "device number kept");
	is_int(keep_symlink(s, d, "l", "../d/f", unit_cred(), &a), 0, "symlink");
	is_int(a.mode & S_IFMT, S_IFLNK, "symlink type");
	is_int(a.size, 6, "symlink size is the target length");
	is_int(keep_readlink(s, KEEP_LIVE, a.ino, buf, sizeof(buf)), 0,
	       "readlink");
	is_str(buf, "../d/f", "readlink target");
	is_int(keep_readlink(s, KEEP_LIVE, a.ino, buf, 6), ERANGE,
	       "readlink into a too small buffer is ERANGE");
	is_int(keep_readlink(s, KEEP_LIVE, f, buf, sizeof(buf)), EINVAL,
	       "readlink of a file is EINVAL");
	{
		char target[4096], back[4096];

		memset(target, 't', 4095);
		target[4095] = '\0';
		is_int(keep_symlink(s, d, "long", target, unit_cred(), &a), 0,
		       "symlink with a 4095-byte target");
		ok(keep_readlink(s, KEEP_LIVE, a.ino, back, sizeof(back)) == 0 &&
			   strcmp(back, target) == 0,
		   "reads back");
	}

	/* setgid directories pass their group on */
	{
		struct keep_attr in = { .gid = 4321 };
		struct keep_cred other = { 1000, 1000 };
		uint64_t sg = mkdir_(KEEP_ROOT_INO, "sgid");

		keep_setattr(s, sg, &in, KEEP_SET_GID, &in);
		in.mode = S_IFDIR | 02775;
		keep_setattr(s, sg, &in, KEEP_SET_MODE, &in);
		is_int(keep_mknod(s, sg, "f", S_IFREG | 0644, 0, &other, &a), 0,
		       "create in a setgid directory");
		is_int(a.gid, 4321, "inherits the directory's group");
		is_int(a.uid, 1000, "owner is the caller");
		is_int(keep_mkdir(s, sg, "sub", 0755, &other, &a), 0,
		       "mkdir in a setgid directory");
		is_int(a.gid, 4321, "inherits the group");
		ok(a.mode & S_ISGID, "and the setgid bit");
	}

	is_int(keep_rmdir(s, KEEP_ROOT_INO, "d"), ENOTEMPTY,
	       "rmdir of a non-empty directory is ENOTEMPTY");
	is_int(keep_rmdir(s, d, "f"), ENOTDIR, "rmdir of a file is ENOTDIR");
	is_int(keep_rmdir(s, d, "nope"), ENOENT, "rmdir of a missing name");
	is_int(keep_unlink(s, KEEP_ROOT_INO, "d"), EISDIR,
	       "unlink of a directory is EISDIR");
	is_int(keep_unlink(s, d, "nope"), ENOENT, "unlink of a missing name");
	is_int(keep_unlink(s, f, "x"), ENOTDIR, "unlink in a file is ENOTDIR");
	is_int(keep_unlink(s, d, "f"), 0, "unlink f");
	keep_forget(s, f);
	is_int(keep_unlink(s, d, "fifo"), 0, "unlink fifo");
	is_int(keep_unlink(s, d, "sock"), 0, "unlink sock");
	is_int(keep_unlink(s, d, "chr"), 0, "unlink chr");
	is_int(keep_unlink(s, d, "l"), 0, "unlink symlink");
	is_int(keep_unlink(s, d, "long"), 0, "unlink long symlink");
	is_str(unit_ls(s, KEEP_LIVE, d), "", "directory is empty");
	is_int(keep_rmdir(s, KEEP_ROOT_INO, "d"), 0, "rmdir");
	is_int(nlink_of(KEEP_ROOT_INO), 3, "parent nlink drops (sgid remains)");
	is_int(keep_rmdir(s, KEEP_ROOT_INO, "d"), ENOENT, "rmdir again is ENOENT");
	is_int(nlink_of(d), 0,
	       "the removed directory's inode lives on with nlink 0");
	keep_forget(s, d);
	is_int(keep_getattr(s, KEEP_LIVE, d, &a), ENOENT,
	       "until it is forgotten");
}

static void t_rename(void)
{
	struct keep_attr a;
	uint64_t r = mkdir_(KEEP_ROOT_INO, "r"), sub, a_ino, b_ino, e1, e2, full;

	a_ino = unit_file(s, r, "a", "AAA", 3);
	b_ino = unit_file(s, r, "b", "BBB", 3);
	sub = mkdir_(r, "sub");
	e1 = mkdir_(r, "e1");
	e2 = mkdir_(r, "e2");
	full = mkdir_(r, "full");
	unit_file(s, full, "x", "x", 1);

	is_int(keep_rename(s, r, "a", r, "a2", 0), 0, "rename in one directory");
	is_int(unit_ino(s, KEEP_LIVE, r, "a2"), a_ino, "keeps the inode");
	is_int(keep_lookup(s, KEEP_LIVE, r, "a", &a), ENOENT, "old name gone");
	is_int(keep_rename(s, r, "a2", sub, "a", 0), 0, "rename across dirs");
	is_int(unit_ino(s, KEEP_LIVE, sub, "a"), a_ino, "found in the new dir");
	is_int(keep_rename(s, sub, "a", r, "a", 0), 0, "and back");
	is_int(keep_rename(s, r, "nope", r, "x", 0), ENOENT,
	       "rename of a missing name is ENOENT");
	is_int(keep_rename(s, r, "a", 999999, "x", 0), ENOENT,
	       "rename into a missing directory is ENOENT");
	is_int(keep_rename(s, r, "a", r, "a", 0), 0, "rename onto itself");
	is_int(unit_ino(s, KEEP_LIVE, r, "a"), a_ino, "changes nothing");

	/* NOREPLACE */
	is_int(keep_rename(s, r, "a", r, "b", KEEP_RENAME_NOREPLACE), EEXIST,
	       "NOREPLACE over an existing name is EEXIST");
	ok(unit_same_str(s, KEEP_LIVE, unit_ino(s, KEEP_LIVE, r, "b"), "BBB"),
	   "and the target is untouched");
	is_int(keep_rename(s, r, "a", r, "c", KEEP_RENAME_NOREPLACE), 0,
	       "NOREPLACE to a free name");
	keep_rename(s, r, "c", r, "a", 0);

	/* EXCHANGE */
	is_int(keep_rename(s, r, "a", r, "b", KEEP_RENAME_EXCHANGE), 0,
	       "EXCHANGE two files");
	ok(unit_ino(s, KEEP_LIVE, r, "a") == b_ino &&
		   unit_ino(s, KEEP_LIVE, r, "b") == a_ino,
	   "the names are swapped");
	is_int(keep_rename(s, r, "a", r, "zz", KEEP_RENAME_EXCHANGE), ENOENT,
	       "EXCHANGE with a missing target is ENOENT");
	is_int(keep_rename(s, r, "a", sub, "a", KEEP_RENAME_EXCHANGE), ENOENT,
	       "EXCHANGE with a missing target in another dir is ENOENT");
	is_int(keep_rename(s, r, "b", r, "e1", KEEP_RENAME_EXCHANGE), 0,
	       "EXCHANGE a file and a directory");
	ok(unit_ino(s, KEEP_LIVE, r, "b") == e1 &&
		   unit_ino(s, KEEP_LIVE, r, "e1") == a_ino,
	   "swapped");
	keep_rename(s, r, "b", r, "e1", KEEP_RENAME_EXCHANGE);
	keep_rename(s, r, "a", r, "b", KEEP_RENAME_EXCHANGE);
	is_int(keep_rename(s, r, "e1", sub, "x", 0), 0, "move e1 into sub");
	is_int(nlink_of(sub), 3, "sub's nlink counts it");
	is_int(keep_rename(s, sub, "x", r, "full", KEEP_RENAME_EXCHANGE), 0,
	       "EXCHANGE directories across parents");
	ok(unit_ino(s, KEEP_LIVE, r, "full") == e1 &&
		   unit_ino(s, KEEP_LIVE, sub, "x") == full,
	   "swapped across parents");
	is_int(unit_ino(s, KEEP_LIVE, full, "x") != 0, 1,
	       "the moved directory keeps its content");
	keep_rename(s, sub, "x", r, "full", KEEP_RENAME_EXCHANGE);
	keep_rename(s, sub, "x", r, "e1", 0);
	is_int(nlink_of(sub), 2, "sub's nlink after moving it out again");
	is_int(keep_rename(s, r, "a", r, "b",
			   KEEP_RENAME_EXCHANGE | KEEP_RENAME_NOREPLACE),
	       EINVAL, "both flags together are EINVAL");

	/* replacing */
	is_int(keep_rename(s, r, "a", r, "b", 0), 0, "rename over a file");
	is_int(unit_ino(s, KEEP_LIVE, r, "b"), a_ino, "the target is replaced");
	is_int(nlink_of(b_ino), 0, "the replaced inode has nlink 0");
	keep_forget(s, b_ino);
	is_int(keep_getattr(s, KEEP_LIVE, b_ino, &a), ENOENT,
	       "and is gone once forgotten");
	is_int(keep_rename(s, r, "b", r, "e1", 0), EISDIR,
	       "a file over a directory is EISDIR");
	is_int(keep_rename(s, r, "e1", r, "b", 0), ENOTDIR,
	       "a directory over a file is ENOTDIR");
	is_int(keep_rename(s, r, "e1", r, "full", 0), ENOTEMPTY,
	       "a directory over a non-empty one is ENOTEMPTY");
	is_int(nlink_of(r), 2 + 4, "r has four subdirectories");
	is_int(keep_rename(s, r, "e1", r, "e2", 0), 0,
	       "a directory over an empty one");
	is_int(unit_ino(s, KEEP_LIVE, r, "e2"), e1, "replaced");
	is_int(nlink_of(e2), 0, "the replaced directory has nlink 0");
	keep_forget(s, e2);
	is_int(keep_getattr(s, KEEP_LIVE, e2, &a), ENOENT,
	       "and is gone once forgotten");
	is_int(nlink_of(r), 2 + 3, "r's nlink drops by one");
	is_int(keep_rename(s, r, "sub", sub, "inner", 0), EINVAL,
	       "a directory into itself is EINVAL");
	{
		uint64_t deep = mkdir_(sub, "deep");

		is_int(keep_rename(s, r, "sub", deep, "x", 0), EINVAL,
		       "a directory into its own subtree is EINVAL");
	}
	/* two links of one inode */
	keep_link(s, a_ino, r, "b-link", &a);
	is_int(keep_rename(s, r, "b", r, "b-link", 0), 0,
	       "rename onto another link of the same inode");
	ok(unit_ino(s, KEEP_LIVE, r, "b") == a_ino &&
		   unit_ino(s, KEEP_LIVE, r, "b-link") == a_ino &&
		   nlink_of(a_ino) == 2,
	   "does nothing (POSIX)");
}

static void t_links(void)
{
	struct keep_attr a;
	uint64_t d = mkdir_(KEEP_ROOT_INO, "links"), f, sub;
	int64_t ctime;

	f = unit_file(s, d, "f", "data", 4);
	sub = mkdir_(d, "sub");
	keep_getattr(s, KEEP_LIVE, f, &a);
	ctime = a.ctime_ns;
	usleep(2000);
	is_int(keep_link(s, f, d, "g", &a), 0, "link");
	is_int(a.nlink, 2, "link returns nlink 2");
	ok(a.ctime_ns > ctime, "link updates ctime");
	is_int(keep_link(s, f, sub, "h", &a), 0, "link into another directory");
	is_int(nlink_of(f), 3, "nlink 3");
	ok(keep_lookup(s, KEEP_LIVE, sub, "h", &a) == 0 && a.ino == f &&
		   a.nlink == 3,
	   "lookup through a link");
	is_int(keep_link(s, f, d, "g", &a), EEXIST, "link to a used name");
	is_int(keep_link(s, sub, d, "dirlink", &a), EPERM,
	       "link of a directory is EPERM");
	is_int(keep_link(s, 999999, d, "x", &a), ENOENT,
	       "link of a missing inode is ENOENT");
	is_int(keep_unlink(s, d, "f"), 0, "unlink the first name");
	is_int(nlink_of(f), 2, "nlink 2");
	ok(unit_same_str(s, KEEP_LIVE, unit_ino(s, KEEP_LIVE, sub, "h"), "data"),
	   "content through the other name");
	keep_forget(s, f);
	is_int(nlink_of(f), 2, "forget of a linked inode changes nothing");
	is_int(keep_unlink(s, d, "g"), 0, "unlink");
	is_int(keep_unlink(s, sub, "h"), 0, "unlink the last name");

	/* an unlinked inode lives until keep_forget */
	is_int(nlink_of(f), 0, "nlink 0 after the last unlink");
	ok(unit_same_str(s, KEEP_LIVE, f, "data"),
	   "the unlinked file is still readable");
	is_int(keep_write(s, f, 4, "more", 4), 0,
	       "and writable (an open file)");
	ok(unit_same_str(s, KEEP_LIVE, f, "datamore"), "reads the write");
	is_int(keep_commit(s, NULL), 0, "a commit while it is unlinked");
	is_int(nlink_of(f), 0, "does not reap it");
	keep_forget(s, f);
	is_int(keep_getattr(s, KEEP_LIVE, f, &a), ENOENT,
	       "keep_forget reclaims it");
	keep_forget(s, f);
	keep_forget(s, 999999);
	ok(1, "keep_forget of a gone or unknown inode is safe");
}

struct walk {
	char seen[400][8];
	int n;
	int stop_after;
	uint64_t next;
};

static int walk_cb(void *ctx, const char *name, const struct keep_attr *a,
		   uint64_t next_off)
{
	struct walk *w = ctx;

	(void)a;
	if (w->stop_after && w->n == w->stop_after)
		return 1;
	if (w->n < 400)
		snprintf(w->seen[w->n], 8, "%s", name);
	w->n++;
	w->next = next_off;
	return 0;
}

static int seen(const struct walk *w, const char *name)
{
	int i, count = 0;

	for (i = 0; i < w->n && i < 400; i++)
		count += strcmp(w->seen[i], name) == 0;
	return count;
}

static void t_readdir(void)
{
	uint64_t d = mkdir_(KEEP_ROOT_INO, "rd"), f;
	struct walk w;
	char name[16];
	int i, missing = 0, dups = 0, rc;

	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "e%03d", i);
		unit_file(s, d, name, NULL, 0);
	}
	memset(&w, 0, sizeof(w));
	rc = keep_readdir(s, KEEP_LIVE, d, 0, walk_cb, &w);
	is_int(rc, 0, "readdir");
	is_int(w.n, 100, "lists 100 entries");
	ok(seen(&w, ".") == 0 && seen(&w, "..") == 0,
	   "without '.' and '..'");

	/* read 30, then change the directory, then continue */
	memset(&w, 0, sizeof(w));
	w.stop_after = 30;
	rc = keep_readdir(s, KEEP_LIVE, d, 0, walk_cb, &w);
	is_int(rc, 0, "readdir stopped by the callback returns 0");
	is_int(w.n, 30, "30 entries delivered");
	ok(w.next > 0, "next offset is > 0");
	{
		uint64_t off = w.next;
		int stopped = w.n;

		/* remove five already seen and five not yet seen, add ten */
		for (i = 0; i < 5; i++) {
			f = unit_ino(s, KEEP_LIVE, d, w.seen[i]);
			keep_unlink(s, d, w.seen[i]);
			keep_forget(s, f);
		}
		for (i = 0, rc = 0; i < 100 && rc < 5; i++) {
			snprintf(name, sizeof(name), "e%03d", i);
			f = unit_ino(s, KEEP_LIVE, d, name);
			if (!seen(&w, name) && keep_unlink(s, d, name) == 0) {
				keep_forget(s, f);
				rc++;
			}
		}
		for (i = 0; i < 10; i++) {
			snprintf(name, sizeof(name), "n%03d", i);
			unit_file(s, d, name, NULL, 0);
		}
		w.stop_after = 0;
		rc = keep_readdir(s, KEEP_LIVE, d, off, walk_cb, &w);
		is_int(rc, 0, "continue from the saved offset");
		for (i = 0; i < 100; i++) {
			snprintf(name, sizeof(name), "e%03d", i);
			if (unit_ino(s, KEEP_LIVE, d, name) == 0)
				continue; /* removed meanwhile: either way */
			if (seen(&w, name) == 0)
				missing++;
			if (seen(&w, name) > 1)
				dups++;
		}
		is_int(missing, 0,
		       "every entry present throughout is listed once");
		is_int(dups, 0, "no entry is listed twice");
		ok(w.n >= 90 - 5 && w.n <= 110,
		   "total listed is plausible (%d, %d before the change)", w.n,
		   stopped);
	}
	/* a deleted entry's offset is still a valid place to continue */
	memset(&w, 0, sizeof(w));
	w.stop_after = 1;
	keep_readdir(s, KEEP_LIVE, d, 0, walk_cb, &w);
	{
		uint64_t off = w.next;

		memset(&w, 0, sizeof(w));
		w.stop_after = 1;
		keep_readdir(s, KEEP_LIVE, d, off, walk_cb, &w);
		f = unit_ino(s, KEEP_LIVE, d, w.seen[0]);
		keep_unlink(s, d, w.seen[0]);
		keep_forget(s, f);
		memset(&w, 0, sizeof(w));
		rc = keep_readdir(s, KEEP_LIVE, d, off, walk_cb, &w);
		is_int(rc, 0, "continue at the offset of a deleted entry");
		ok(w.n > 0, "and get the entries after it");
	}
	/* the offsets of a finished listing */
	memset(&w, 0, sizeof(w));
	keep_readdir(s, KEEP_LIVE, d, 0, walk_cb, &w);
	{
		struct walk w2;

		memset(&w2, 0, sizeof(w2));
		rc = keep_readdir(s, KEEP_LIVE, d, w.next, walk_cb, &w2);
		ok(rc == 0 && w2.n == 0, "the last offset gives no entries");
	}
	memset(&w, 0, sizeof(w));
	f = unit_ino(s, KEEP_LIVE, d, "n000");
	is_int(keep_readdir(s, KEEP_LIVE, f, 0, walk_cb, &w), ENOTDIR,
	       "readdir of a file is ENOTDIR");
	is_int(keep_readdir(s, KEEP_LIVE, 999999, 0, walk_cb, &w), ENOENT,
	       "readdir of a missing inode is ENOENT");
}

static void t_xattr(void)
{
	uint64_t f = unit_file(s, KEEP_ROOT_INO, "xf", NULL, 0);
	char buf[300], name[300], *big;
	size_t len = 0;

	is_int(keep_getxattr(s, KEEP_LIVE, f, "user.a", buf, sizeof(buf), &len),
	       ENODATA, "getxattr of a missing name is ENODATA");
	is_int(keep_setxattr(s, f, "user.a", "one", 3, KEEP_XATTR_REPLACE),
	       ENODATA, "REPLACE of a missing name is ENODATA");
	is_int(keep_setxattr(s, f, "user.a", "one", 3, KEEP_XATTR_CREATE), 0,
	       "CREATE");
	is_int(keep_setxattr(s, f, "user.a", "two", 3, KEEP_XATTR_CREATE),
	       EEXIST, "CREATE of an existing name is EEXIST");
	is_int(keep_setxattr(s, f, "user.a", "three", 5, KEEP_XATTR_REPLACE), 0,
	       "REPLACE");
	is_int(keep_getxattr(s, KEEP_LIVE, f, "user.a", NULL, 0, &len), 0,
	       "getxattr with size 0");
	is_int(len, 5, "gives the value's size");
	is_int(keep_getxattr(s, KEEP_LIVE, f, "user.a", buf, 4, &len), ERANGE,
	       "getxattr into a small buffer is ERANGE");
	ok(keep_getxattr(s, KEEP_LIVE, f, "user.a", buf, sizeof(buf), &len) ==
			   0 &&
		   len == 5 && memcmp(buf, "three", 5) == 0,
	   "getxattr reads the value");
	is_int(keep_setxattr(s, f, "user.b", "", 0, 0), 0, "an empty value");
	ok(keep_getxattr(s, KEEP_LIVE, f, "user.b", buf, sizeof(buf), &len) ==
			   0 &&
		   len == 0,
	   "reads back empty");
	is_int(keep_setxattr(s, f, "user.bin", "\0\1\2", 3, 0), 0,
	       "a binary value");
	ok(keep_getxattr(s, KEEP_LIVE, f, "user.bin", buf, sizeof(buf), &len) ==
			   0 &&
		   len == 3 && memcmp(buf, "\0\1\2", 3) == 0,
	   "reads back");
	is_int(keep_listxattr(s, KEEP_LIVE, f, NULL, 0, &len), 0,
	       "listxattr size");
	is_int(len, sizeof("user.a") + sizeof("user.b") + sizeof("user.bin"),
	       "listxattr size is the names with their NULs");
	is_int(keep_listxattr(s, KEEP_LIVE, f, buf, 5, &len), ERANGE,
	       "listxattr into a small buffer is ERANGE");
	memset(buf, 0, sizeof(buf));
	if (keep_listxattr(s, KEEP_LIVE, f, buf, sizeof(buf), &len) == 0) {
		size_t off;
		int a = 0, b = 0, bin = 0;

		for (off = 0; off < len; off += strlen(buf + off) + 1) {
			a += !strcmp(buf + off, "user.a");
			b += !strcmp(buf + off, "user.b");
			bin += !strcmp(buf + off, "user.bin");
		}
		ok(a == 1 && b == 1 && bin == 1, "listxattr names");
	} else {
		ok(0, "listxattr");
	}
	is_int(keep_removexattr(s, f, "user.b"), 0, "removexattr");
	is_int(keep_removexattr(s, f, "user.b"), ENODATA,
	       "removexattr again is ENODATA");
	is_int(keep_getxattr(s, KEEP_LIVE, f, "user.b", buf, sizeof(buf), &len),
	       ENODATA, "removed");

	memset(name, 'n', sizeof(name));
	memcpy(name, "user.", 5);
	name[KEEP_XATTR_NAME_MAX] = '\0';
	is_int(keep_setxattr(s, f, name, "v", 1, 0), 0,
	       "a 255-byte xattr name");
	name[KEEP_XATTR_NAME_MAX] = 'n';
	name[KEEP_XATTR_NAME_MAX + 1] = '\0';
	is_int(keep_setxattr(s, f, name, "v", 1, 0), ERANGE,
	       "a 256-byte xattr name is ERANGE");
	big = calloc(1, KEEP_XATTR_SIZE_MAX + 1);
	is_int(keep_setxattr(s, f, "user.big", big, KEEP_XATTR_SIZE_MAX, 0), 0,
	       "a 64 KiB value");
	/* keep.h says ERANGE; setxattr(2) says E2BIG, and that is what an
	 * application must see */
	is_int(keep_setxattr(s, f, "user.big", big, KEEP_XATTR_SIZE_MAX + 1, 0),
	       E2BIG, "a larger value is E2BIG");
	ok(keep_getxattr(s, KEEP_LIVE, f, "user.big", NULL, 0, &len) == 0 &&
		   len == KEEP_XATTR_SIZE_MAX,
	   "the 64 KiB value is kept");
	free(big);
	is_int(keep_getxattr(s, KEEP_LIVE, 999999, "user.a", buf, sizeof(buf),
			     &len),
	       ENOENT, "getxattr of a missing inode is ENOENT");
	is_int(keep_setxattr(s, KEEP_ROOT_INO, "user.root", "r", 1, 0), 0,
	       "xattr on the root");
}

static void t_names(void)
{
	char n255[KEEP_NAME_MAX + 2], odd[] = "\x01\xff odd\tname\n";
	struct keep_attr a;
	uint64_t d = mkdir_(KEEP_ROOT_INO, "names"), f;

	memset(n255, 'x', sizeof(n255));
	n255[KEEP_NAME_MAX] = '\0';
	is_int(unit_mkfile(s, d, n255, 0644, &a), 0, "a 255-byte name");
	f = a.ino;
	is_int(unit_ino(s, KEEP_LIVE, d, n255), f, "lookup of it");
	is_str(unit_ls(s, KEEP_LIVE, d), n255, "readdir gives it whole");
	is_int(keep_rename(s, d, n255, d, "short", 0), 0, "rename it away");
	is_int(keep_rename(s, d, "short", d, n255, 0), 0, "and back");
	n255[KEEP_NAME_MAX] = 'x';
	n255[KEEP_NAME_MAX + 1] = '\0';
	is_int(unit_mkfile(s, d, n255, 0644, &a), ENAMETOOLONG,
	       "a 256-byte name is ENAMETOOLONG for mknod");
	is_int(keep_mkdir(s, d, n255, 0755, unit_cred(), &a), ENAMETOOLONG,
	       "for mkdir");
	is_int(keep_symlink(s, d, n255, "t", unit_cred(), &a), ENAMETOOLONG,
	       "for symlink");
	is_int(keep_lookup(s, KEEP_LIVE, d, n255, &a), ENAMETOOLONG,
	       "for lookup");
	is_int(keep_link(s, f, d, n255, &a), ENAMETOOLONG, "for link");
	is_int(keep_rename(s, d, n255 + 1, d, n255, 0), ENAMETOOLONG,
	       "for rename (n255 + 1 is the 255-byte name)");
	is_int(unit_mkfile(s, d, odd, 0644, &a), 0,
	       "a name with control and high bytes");
	is_int(unit_ino(s, KEEP_LIVE, d, odd), a.ino, "lookup of it");

	/* the reserved root name */
	is_int(unit_mkfile(s, KEEP_ROOT_INO, ".snapshots", 0644, &a), EPERM,
	       ".snapshots in the root: mknod is EPERM");
	is_int(keep_mkdir(s, KEEP_ROOT_INO, ".snapshots", 0755, unit_cred(), &a),
	       EPERM, "mkdir is EPERM");
	is_int(keep_symlink(s, KEEP_ROOT_INO, ".snapshots", "x", unit_cred(),
			    &a),
	       EPERM, "symlink is EPERM");
	is_int(keep_link(s, f, KEEP_ROOT_INO, ".snapshots", &a), EPERM,
	       "link is EPERM");
	is_int(keep_rename(s, d, n255 + 1, KEEP_ROOT_INO, ".snapshots", 0), EPERM,
	       "rename of an existing file onto it is EPERM");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, ".snapshots", &a),
	       ENOENT, "core's live root has no .snapshots entry");
	is_int(unit_mkfile(s, d, ".snapshots", 0644, &a), 0,
	       "the name is fine below the root");
	is_int(keep_rename(s, d, ".snapshots", d, "snap", 0), 0,
	       "and can be renamed there");
	is_int(unit_mkfile(s, KEEP_ROOT_INO, ".snapshot", 0644, &a), 0,
	       "a similar name in the root is fine");
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void t_setattr(void)
{
	uint64_t f = unit_file(s, KEEP_ROOT_INO, "sa", "0123456789", 10);
	struct keep_attr in, out, before;
	int64_t t0;
	char buf[16];
	size_t n;

	memset(&in, 0, sizeof(in));
	keep_getattr(s, KEEP_LIVE, f, &before);
	usleep(2000);
	in.size = 4;
	is_int(keep_setattr(s, f, &in, KEEP_SET_SIZE, &out), 0, "truncate");
	is_int(out.size, 4, "returns the new size");
	ok(out.mtime_ns > before.mtime_ns && out.ctime_ns > before.ctime_ns,
	   "truncate updates mtime and ctime");
	in.size = 8;
	is_int(keep_setattr(s, f, &in, KEEP_SET_SIZE, &out), 0, "extend");
	ok(unit_same(s, KEEP_LIVE, f, "0123\0\0\0\0", 8),
	   "the extended tail reads as zeros");
	in.mode = S_IFREG | 0640;
	is_int(keep_setattr(s, f, &in, KEEP_SET_MODE, &out), 0, "chmod");
	is_int(out.mode, S_IFREG | 0640, "keeps the type, sets the bits");
	in.uid = 77;
	in.gid = 88;
	is_int(keep_setattr(s, f, &in, KEEP_SET_UID | KEEP_SET_GID, &out), 0,
	       "chown");
	ok(out.uid == 77 && out.gid == 88, "new owner and group");
	keep_getattr(s, KEEP_LIVE, f, &before);
	usleep(2000);
	in.atime_ns = 1000000001;
	in.mtime_ns = 2000000002;
	is_int(keep_setattr(s, f, &in, KEEP_SET_ATIME | KEEP_SET_MTIME, &out),
	       0, "set atime and mtime");
	ok(out.atime_ns == 1000000001 && out.mtime_ns == 2000000002,
	   "to the given times");
	ok(out.ctime_ns > before.ctime_ns, "and ctime moves to now");
	in.ctime_ns = 5;
	is_int(keep_setattr(s, f, &in, KEEP_SET_CTIME, &out), 0, "set ctime");
	is_int(out.ctime_ns, 5, "to the given time");
	t0 = now_ns();
	is_int(keep_setattr(s, f, &in, KEEP_SET_ATIME_NOW | KEEP_SET_MTIME_NOW,
			    &out),
	       0, "set atime and mtime to now");
	ok(out.atime_ns >= t0 - 1000000 && out.mtime_ns >= t0 - 1000000 &&
		   out.mtime_ns <= now_ns() + 1000000,
	   "both are now");
	ok(keep_getattr(s, KEEP_LIVE, f, &before) == 0 &&
		   before.mtime_ns == out.mtime_ns && before.uid == 77,
	   "getattr agrees");
	usleep(2000);
	keep_write(s, f, 0, "x", 1);
	keep_getattr(s, KEEP_LIVE, f, &out);
	ok(out.mtime_ns > before.mtime_ns && out.ctime_ns > before.ctime_ns,
	   "a write updates mtime and ctime");
	in.size = 0;
	is_int(keep_setattr(s, KEEP_ROOT_INO, &in, KEEP_SET_SIZE, &out), EISDIR,
	       "truncate of a directory is EISDIR");
	is_int(keep_setattr(s, 999999, &in, KEEP_SET_MODE, &out), ENOENT,
	       "setattr of a missing inode is ENOENT");
	is_int(keep_getattr(s, KEEP_LIVE, 999999, &out), ENOENT,
	       "getattr of a missing inode is ENOENT");
	is_int(keep_read(s, KEEP_LIVE, KEEP_ROOT_INO, 0, sizeof(buf), buf, &n),
	       EISDIR, "read of a directory is EISDIR");
	is_int(keep_write(s, KEEP_ROOT_INO, 0, "x", 1), EISDIR,
	       "write to a directory is EISDIR");
	is_int(keep_read(s, KEEP_LIVE, 999999, 0, sizeof(buf), buf, &n), ENOENT,
	       "read of a missing inode is ENOENT");
}

int main(void)
{
	unit_begin("names");
	s = unit_store("n", 0);
	t_create_remove();
	t_rename();
	t_links();
	t_readdir();
	t_xattr();
	t_names();
	t_setattr();
	is_int(keep_commit(s, NULL), 0, "commit everything");
	s = unit_reopen(s, "n", KEEP_OPEN_WRITE);
	{
		uint64_t problems = 99;

		is_int(keep_check(s, 1, NULL, NULL, &problems), 0,
		       "keep_check is clean after all of it");
		is_int(problems, 0, "0 problems");
	}
	keep_store_close(s);
	is_int(unit_log_problems, 0, "no errors or warnings were logged");
	unit_end();
	return tap_done();
}
