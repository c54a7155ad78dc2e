/*
 * test_view.c - a committed view never changes after later writes, and the
 * visibility rules: an entry created after commit C is absent from view C,
 * one deleted after C is still in view C, uncommitted changes are seen in
 * the live tree only.
 */
#include "unit.h"

static uint32_t bs;

static int same_attr(const struct keep_attr *got, const struct keep_attr *want)
{
	int same = got->ino == want->ino && got->mode == want->mode &&
		   got->uid == want->uid && got->gid == want->gid &&
		   got->nlink == want->nlink && got->size == want->size &&
		   got->blocks == want->blocks &&
		   got->mtime_ns == want->mtime_ns &&
		   got->ctime_ns == want->ctime_ns &&
		   got->btime_ns == want->btime_ns;

	if (!same)
		diag("attr differs: mode %o/%o uid %u/%u nlink %u/%u size "
		     "%" PRIu64 "/%" PRIu64 " blocks %" PRIu64 "/%" PRIu64
		     " mtime %" PRId64 "/%" PRId64 " ctime %" PRId64 "/%" PRId64,
		     got->mode, want->mode, got->uid, want->uid, got->nlink,
		     want->nlink, got->size, want->size, got->blocks,
		     want->blocks, got->mtime_ns, want->mtime_ns, got->ctime_ns,
		     want->ctime_ns);
	return same;
}

static int xattr_is(struct keep_store *s, uint64_t view, uint64_t ino,
		    const char *name, const char *want)
{
	char buf[256];
	size_t len = 0;
	int rc = keep_getxattr(s, view, ino, name, buf, sizeof(buf), &len);

	if (!want) {
		if (rc != ENODATA)
			diag("getxattr '%s': rc %d, want ENODATA", name, rc);
		return rc == ENODATA;
	}
	if (rc != 0 || len != strlen(want) || memcmp(buf, want, len) != 0) {
		diag("getxattr '%s': rc %d len %zu", name, rc, len);
		return 0;
	}
	return 1;
}

static int xattr_list_is(struct keep_store *s, uint64_t view, uint64_t ino,
			 const char *want, size_t want_len)
{
	char buf[256];
	size_t len = 0;
	int rc = keep_listxattr(s, view, ino, buf, sizeof(buf), &len);

	/* order of names is not specified: compare as sets of two at most */
	if (rc != 0 || len != want_len) {
		diag("listxattr: rc %d len %zu want %zu", rc, len, want_len);
		return 0;
	}
	if (memcmp(buf, want, len) == 0)
		return 1;
	if (want_len == strlen("user.x") + strlen("user.y") + 2)
		return memcmp(buf, "user.y\0user.x", len) == 0;
	return 0;
}

/* List dir one entry per call, resuming from each next offset. */
static const char *ls_paged(struct keep_store *st, uint64_t view, uint64_t dir)
{
	static char out[8192];
	struct unit_list l;
	uint64_t off = 0;
	int rounds = 0;

	out[0] = '\0';
	do {
		memset(&l, 0, sizeof(l));
		l.stop_after = 1;
		if (keep_readdir(st, view, dir, off, unit_list_cb, &l) != 0)
			return "ERR";
		if (l.count) {
			size_t used = strlen(out), add = strlen(l.buf);

			if (used + add + 2 > sizeof(out))
				return "TOO LONG";
			if (used)
				out[used++] = ',';
			memcpy(out + used, l.buf, add + 1);
			off = l.last_off;
		}
	} while (l.count && ++rounds < 100);
	unit_sort_list(out);
	return out;
}

struct old {
	uint64_t a, b, d, e, f, dir, gone, l;
	struct keep_attr aa, ab, af, adir, aroot;
	uint8_t *a_data, *f_data;
	size_t a_len, f_len;
	uint64_t c1;
};

static void check_c1(struct keep_store *s, const struct old *o, const char *when)
{
	uint64_t v = o->c1;
	struct keep_attr at;
	char buf[64];

	is_str(unit_ls(s, v, KEEP_ROOT_INO), "a,b,d,dir,e,f,gone,l",
	       "%s: view c1 lists the old root", when);
	is_str(ls_paged(s, v, KEEP_ROOT_INO), "a,b,d,dir,e,f,gone,l",
	       "%s: view c1 lists the same one entry at a time", when);
	is_str(unit_ls(s, v, o->dir), "c", "%s: view c1 lists the old dir", when);
	is_str(unit_ls(s, v, o->gone), "", "%s: view c1 has the removed dir",
	       when);
	ok(unit_same(s, v, o->a, o->a_data, o->a_len),
	   "%s: view c1 reads the old content of an overwritten file", when);
	ok(unit_same(s, v, o->f, o->f_data, o->f_len),
	   "%s: view c1 reads the old content of a truncated file", when);
	ok(unit_same_str(s, v, o->b, "bee"),
	   "%s: view c1 reads the old content of an appended file", when);
	ok(unit_same_str(s, v, o->d, "dee"),
	   "%s: view c1 reads a file unlinked later", when);
	is_int(unit_ino(s, v, KEEP_ROOT_INO, "d"), o->d,
	       "%s: view c1 looks up the unlinked file", when);
	is_int(unit_ino(s, v, KEEP_ROOT_INO, "e"), o->e,
	       "%s: view c1 looks up a renamed file by its old name", when);
	is_int(keep_lookup(s, v, o->dir, "e2", &at), ENOENT,
	       "%s: view c1 does not have the new name", when);
	is_int(keep_lookup(s, v, KEEP_ROOT_INO, "new", &at), ENOENT,
	       "%s: view c1 does not have a file created later", when);
	is_int(keep_lookup(s, v, KEEP_ROOT_INO, "newdir", &at), ENOENT,
	       "%s: view c1 does not have a directory created later", when);
	is_int(keep_lookup(s, v, KEEP_ROOT_INO, "b2", &at), ENOENT,
	       "%s: view c1 does not have a hard link made later", when);
	ok(keep_getattr(s, v, o->a, &at) == 0 && same_attr(&at, &o->aa),
	   "%s: view c1 has the old attributes of the overwritten file", when);
	ok(keep_getattr(s, v, o->b, &at) == 0 && same_attr(&at, &o->ab),
	   "%s: view c1 has the old attributes (nlink 1, mtime) of b", when);
	ok(keep_getattr(s, v, o->f, &at) == 0 && same_attr(&at, &o->af),
	   "%s: view c1 has the old attributes (uid, size) of f", when);
	ok(keep_getattr(s, v, o->dir, &at) == 0 && same_attr(&at, &o->adir),
	   "%s: view c1 has the old attributes of dir", when);
	ok(keep_getattr(s, v, KEEP_ROOT_INO, &at) == 0 &&
		   same_attr(&at, &o->aroot),
	   "%s: view c1 has the old attributes of the root", when);
	ok(keep_lookup(s, v, KEEP_ROOT_INO, "a", &at) == 0 &&
		   same_attr(&at, &o->aa),
	   "%s: lookup in view c1 gives the old attributes", when);
	ok(xattr_is(s, v, o->a, "user.x", "1"),
	   "%s: view c1 has the old xattr value", when);
	ok(xattr_is(s, v, o->a, "user.y", NULL),
	   "%s: view c1 does not have an xattr set later", when);
	ok(xattr_list_is(s, v, o->a, "user.x", 7),
	   "%s: view c1 lists the old xattrs", when);
	ok(xattr_is(s, v, o->dir, "user.gone", "bye"),
	   "%s: view c1 has an xattr removed later", when);
	memset(buf, 0, sizeof(buf));
	ok(keep_readlink(s, v, o->l, buf, sizeof(buf)) == 0 &&
		   strcmp(buf, "a") == 0,
	   "%s: view c1 reads the old symlink target", when);
}

static void check_c2(struct keep_store *s, uint64_t v, const struct old *o,
		     const uint8_t *a2, const char *when)
{
	struct keep_attr at;
	char buf[64];

	is_str(unit_ls(s, v, KEEP_ROOT_INO), "a,b,b2,dir,f,l,new,newdir",
	       "%s: the new root listing", when);
	is_str(ls_paged(s, v, KEEP_ROOT_INO), "a,b,b2,dir,f,l,new,newdir",
	       "%s: the same one entry at a time", when);
	is_str(unit_ls(s, v, o->dir), "c,e2", "%s: the new dir listing", when);
	ok(unit_same(s, v, o->a, a2, o->a_len), "%s: the overwritten content",
	   when);
	ok(unit_same(s, v, o->f, o->f_data, 100), "%s: the truncated content",
	   when);
	ok(unit_same_str(s, v, o->b, "bee-more"), "%s: the appended content",
	   when);
	is_int(keep_lookup(s, v, KEEP_ROOT_INO, "d", &at), ENOENT,
	       "%s: the unlinked file is gone", when);
	is_int(keep_getattr(s, v, o->d, &at), ENOENT,
	       "%s: the unlinked and forgotten inode is gone", when);
	is_int(keep_lookup(s, v, KEEP_ROOT_INO, "gone", &at), ENOENT,
	       "%s: the removed directory is gone", when);
	is_int(unit_ino(s, v, o->dir, "e2"), o->e,
	       "%s: the renamed file keeps its inode", when);
	ok(keep_getattr(s, v, o->a, &at) == 0 && at.mode == (S_IFREG | 0600),
	   "%s: the new mode", when);
	ok(keep_getattr(s, v, o->b, &at) == 0 && at.nlink == 2 &&
		   at.mtime_ns == 1000000000123LL,
	   "%s: the new nlink and mtime", when);
	ok(keep_getattr(s, v, o->f, &at) == 0 && at.uid == 1234 &&
		   at.size == 100,
	   "%s: the new owner and size", when);
	ok(xattr_is(s, v, o->a, "user.x", "2"), "%s: the new xattr value", when);
	ok(xattr_is(s, v, o->a, "user.y", "y"), "%s: the added xattr", when);
	ok(xattr_is(s, v, o->dir, "user.gone", NULL),
	   "%s: the removed xattr is gone", when);
	memset(buf, 0, sizeof(buf));
	ok(keep_readlink(s, v, o->l, buf, sizeof(buf)) != 0 ||
		   strcmp(buf, "a") != 0,
	   "%s: the old symlink inode is not l any more", when);
	ok(keep_lookup(s, v, KEEP_ROOT_INO, "l", &at) == 0 &&
		   keep_readlink(s, v, at.ino, buf, sizeof(buf)) == 0 &&
		   strcmp(buf, "b") == 0,
	   "%s: the new symlink target", when);
}

int main(void)
{
	struct keep_store *s;
	struct old o;
	struct keep_attr at;
	uint64_t c2 = 0, c3 = 0, c4 = 0, newino, u;
	uint8_t *a2;
	int rc;

	unit_begin("view");
	s = unit_store("v", 0);
	bs = keep_store_block_size(s);
	memset(&o, 0, sizeof(o));
	unit_seed(1);

	o.a_len = 3 * (size_t)bs + 17;
	o.a_data = malloc(o.a_len);
	unit_fill_random(o.a_data, o.a_len);
	o.f_len = 2 * (size_t)bs;
	o.f_data = malloc(o.f_len);
	unit_fill_text(o.f_data, o.f_len);

	o.a = unit_file(s, KEEP_ROOT_INO, "a", o.a_data, o.a_len);
	o.b = unit_file(s, KEEP_ROOT_INO, "b", "bee", 3);
	o.d = unit_file(s, KEEP_ROOT_INO, "d", "dee", 3);
	o.e = unit_file(s, KEEP_ROOT_INO, "e", "eee", 3);
	o.f = unit_file(s, KEEP_ROOT_INO, "f", o.f_data, o.f_len);
	ok(o.a && o.b && o.d && o.e && o.f, "create files");
	is_int(keep_mkdir(s, KEEP_ROOT_INO, "dir", 0755, unit_cred(), &at), 0,
	       "mkdir dir");
	o.dir = at.ino;
	is_int(keep_mkdir(s, KEEP_ROOT_INO, "gone", 0755, unit_cred(), &at), 0,
	       "mkdir gone");
	o.gone = at.ino;
	unit_file(s, o.dir, "c", "sea", 3);
	is_int(keep_symlink(s, KEEP_ROOT_INO, "l", "a", unit_cred(), &at), 0,
	       "symlink l -> a");
	o.l = at.ino;
	is_int(keep_setxattr(s, o.a, "user.x", "1", 1, 0), 0, "setxattr user.x");
	is_int(keep_setxattr(s, o.dir, "user.gone", "bye", 3, 0), 0,
	       "setxattr user.gone");
	ok(keep_dirty_since(s) > 0, "dirty_since is set before a commit");
	rc = keep_commit(s, &o.c1);
	is_int(rc, 0, "commit c1");
	ok(o.c1 > 0, "c1 has an id (%" PRIu64 ")", o.c1);
	is_int(keep_last_commit(s), o.c1, "last commit is c1");
	is_int(keep_dirty_since(s), 0, "dirty_since is 0 after a commit");
	keep_getattr(s, KEEP_LIVE, o.a, &o.aa);
	keep_getattr(s, KEEP_LIVE, o.b, &o.ab);
	keep_getattr(s, KEEP_LIVE, o.f, &o.af);
	keep_getattr(s, KEEP_LIVE, o.dir, &o.adir);
	keep_getattr(s, KEEP_LIVE, KEEP_ROOT_INO, &o.aroot);
	check_c1(s, &o, "after c1");

	/* change everything */
	a2 = malloc(o.a_len);
	memcpy(a2, o.a_data, o.a_len);
	memset(a2 + bs - 50, 'Z', 100);
	is_int(keep_write(s, o.a, bs - 50, a2 + bs - 50, 100), 0,
	       "overwrite across a block boundary");
	at.mode = S_IFREG | 0600;
	is_int(keep_setattr(s, o.a, &at, KEEP_SET_MODE, &at), 0, "chmod a");
	is_int(keep_setxattr(s, o.a, "user.x", "2", 1, KEEP_XATTR_REPLACE), 0,
	       "replace user.x");
	is_int(keep_setxattr(s, o.a, "user.y", "y", 1, KEEP_XATTR_CREATE), 0,
	       "create user.y");
	is_int(keep_removexattr(s, o.dir, "user.gone"), 0, "remove user.gone");
	at.size = 100;
	is_int(keep_setattr(s, o.f, &at, KEEP_SET_SIZE, &at), 0, "truncate f");
	at.uid = 1234;
	is_int(keep_setattr(s, o.f, &at, KEEP_SET_UID, &at), 0, "chown f");
	is_int(keep_write(s, o.b, 3, "-more", 5), 0, "append to b");
	at.mtime_ns = 1000000000123LL;
	is_int(keep_setattr(s, o.b, &at, KEEP_SET_MTIME, &at), 0,
	       "set the mtime of b");
	is_int(keep_link(s, o.b, KEEP_ROOT_INO, "b2", &at), 0, "link b2 to b");
	is_int(keep_unlink(s, KEEP_ROOT_INO, "d"), 0, "unlink d");
	keep_forget(s, o.d);
	is_int(keep_rmdir(s, KEEP_ROOT_INO, "gone"), 0, "rmdir gone");
	keep_forget(s, o.gone);
	is_int(keep_rename(s, KEEP_ROOT_INO, "e", o.dir, "e2", 0), 0,
	       "rename e to dir/e2");
	is_int(keep_unlink(s, KEEP_ROOT_INO, "l"), 0, "unlink l");
	keep_forget(s, o.l);
	is_int(keep_symlink(s, KEEP_ROOT_INO, "l", "b", unit_cred(), &at), 0,
	       "symlink l -> b");
	newino = unit_file(s, KEEP_ROOT_INO, "new", "new", 3);
	ok(newino != 0, "create new");
	is_int(keep_mkdir(s, KEEP_ROOT_INO, "newdir", 0755, unit_cred(), &at), 0,
	       "mkdir newdir");

	/* the uncommitted changes are live only */
	check_c1(s, &o, "before c2");
	check_c2(s, KEEP_LIVE, &o, a2, "live before c2");
	is_int(keep_getattr(s, o.c1, newino, &at), ENOENT,
	       "getattr of a new inode in view c1 is ENOENT");

	rc = keep_commit(s, &c2);
	is_int(rc, 0, "commit c2");
	ok(c2 > o.c1, "c2 (%" PRIu64 ") > c1", c2);
	check_c1(s, &o, "after c2");
	check_c2(s, c2, &o, a2, "view c2");
	check_c2(s, KEEP_LIVE, &o, a2, "live after c2");

	/* uncommitted changes on top of c2 */
	is_int(keep_write(s, newino, 0, "NEW", 3), 0, "overwrite new");
	u = unit_file(s, KEEP_ROOT_INO, "u", "u", 1);
	is_int(keep_unlink(s, KEEP_ROOT_INO, "b2"), 0, "unlink b2");
	ok(unit_same_str(s, KEEP_LIVE, newino, "NEW"),
	   "live reads the uncommitted write");
	ok(unit_same_str(s, c2, newino, "new"),
	   "view c2 reads the committed content");
	ok(unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "u") == u && u != 0,
	   "live has the uncommitted file");
	is_int(keep_lookup(s, c2, KEEP_ROOT_INO, "u", &at), ENOENT,
	       "view c2 does not");
	is_int(keep_getattr(s, c2, u, &at), ENOENT,
	       "view c2 does not have its inode");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "b2", &at), ENOENT,
	       "live no longer has the unlinked link");
	ok(keep_lookup(s, c2, KEEP_ROOT_INO, "b2", &at) == 0 && at.ino == o.b &&
		   at.nlink == 2,
	   "view c2 still has it, with nlink 2");
	ok(keep_getattr(s, KEEP_LIVE, o.b, &at) == 0 && at.nlink == 1,
	   "live nlink of b is 1");
	is_int(keep_commit(s, &c3), 0, "commit c3");
	ok(c3 > c2, "c3 > c2");
	is_int(keep_commit(s, &c4), 0, "commit with nothing changed");
	is_int(c4, c3, "is a no-op returning the last id");
	is_int(keep_last_commit(s), c3, "last commit is c3");

	s = unit_reopen(s, "v", KEEP_OPEN_RDONLY);
	check_c1(s, &o, "after reopening");
	check_c2(s, c2, &o, a2, "view c2 after reopening");
	ok(unit_same_str(s, KEEP_LIVE, newino, "NEW"),
	   "live after reopening has the last commit");
	is_int(keep_last_commit(s), c3, "last commit after reopening");
	keep_store_close(s);

	/* more writes after reopening do not disturb the old views */
	s = unit_reopen(NULL, "v", KEEP_OPEN_WRITE);
	is_int(keep_write(s, o.a, 0, "rewritten", 9), 0, "write after reopening");
	at.size = 0;
	is_int(keep_setattr(s, o.b, &at, KEEP_SET_SIZE, &at), 0,
	       "truncate b to 0");
	is_int(keep_commit(s, NULL), 0, "commit");
	check_c1(s, &o, "after a commit in a new session");
	{
		uint64_t problems = 99;

		is_int(keep_check(s, 1, NULL, NULL, &problems), 0,
		       "keep_check is clean");
		is_int(problems, 0, "with 0 problems");
	}
	keep_store_close(s);
	is_int(unit_log_problems, 0, "no errors or warnings were logged");
	free(a2);
	free(o.a_data);
	free(o.f_data);
	unit_end();
	return tap_done();
}
