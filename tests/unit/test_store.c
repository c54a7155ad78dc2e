/*
 * test_store.c - store lifecycle: init, open, close, the refusals of open
 * (missing path, not a store, newer format, locked), the lock owner, and
 * the error code helpers.
 */
#include "unit_sql.h"

static void t_init(void)
{
	struct keep_init_opts o = { .uid = (uint32_t)getuid(),
				    .gid = (uint32_t)getgid() };
	struct keep_store *s = NULL;
	struct keep_attr a;
	struct keep_stats st;
	struct stat sb;
	int rc, fd;

	rc = keep_store_init(unit_path("s1"), &o);
	is_int(rc, 0, "init a new store");
	ok(stat(unit_path("s1"), &sb) == 0 && S_ISDIR(sb.st_mode) &&
		   (sb.st_mode & 07777) == 0700,
	   "init creates the directory with mode 0700");
	is_int(keep_is_store(unit_path("s1")), 1, "keep_is_store on a store");
	is_int(keep_is_store(unit_dir), 0, "keep_is_store on a plain directory");
	is_int(keep_is_store(unit_path("nothing")), 0,
	       "keep_is_store on a missing path");

	rc = keep_store_open(unit_path("s1"), KEEP_OPEN_WRITE, &s);
	is_int(rc, 0, "open for writing");
	if (rc != 0)
		return;
	is_int(keep_store_block_size(s), KEEP_DEFAULT_BLOCK_SIZE,
	       "block size 0 means the default");
	rc = keep_getattr(s, KEEP_LIVE, KEEP_ROOT_INO, &a);
	is_int(rc, 0, "getattr of the root");
	is_int(a.ino, KEEP_ROOT_INO, "root inode number");
	is_int(a.mode, S_IFDIR | 0755, "root mode defaults to 0755");
	is_int(a.uid, getuid(), "root uid from the options");
	is_int(a.gid, getgid(), "root gid from the options");
	is_int(a.nlink, 2, "empty root has nlink 2");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "x", &a), ENOENT,
	       "lookup in an empty root is ENOENT");
	is_str(unit_ls(s, KEEP_LIVE, KEEP_ROOT_INO), "", "new root is empty");
	rc = keep_stats(s, &st);
	is_int(rc, 0, "stats of a new store");
	is_int(st.dirs, 1, "stats: one directory (the root)");
	is_int(st.files, 0, "stats: no files");
	is_int(st.others, 0, "stats: no other objects");
	is_int(st.logical_bytes, 0, "stats: no bytes");
	is_int(st.block_size, KEEP_DEFAULT_BLOCK_SIZE, "stats: block size");
	is_int(st.format_version, 1, "stats: format version 1 (a plain store)");
	is_int(strlen(st.uuid), 36, "stats: uuid has 36 characters");
	is_int(keep_store_close(s), 0, "close");
	keep_store_close(NULL);
	ok(1, "close(NULL) is a no-op");

	/* data survives close and reopen (close commits) */
	rc = keep_store_open(unit_path("s1"), KEEP_OPEN_WRITE, &s);
	is_int(rc, 0, "reopen for writing");
	if (rc != 0)
		return;
	ok(unit_file(s, KEEP_ROOT_INO, "hello", "hello\n", 6) != 0,
	   "create a file");
	is_int(keep_store_close(s), 0, "close commits outstanding changes");
	rc = keep_store_open(unit_path("s1"), KEEP_OPEN_RDONLY, &s);
	is_int(rc, 0, "open read-only");
	if (rc != 0)
		return;
	ok(unit_same_str(s, KEEP_LIVE,
			 unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "hello"),
			 "hello\n"),
	   "the file is there after reopening");
	/* POSIX answer for changes through a read-only handle: EROFS */
	is_int(keep_write(s, unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "hello"), 0,
			  "x", 1),
	       EROFS, "write through a read-only handle is EROFS");
	is_int(unit_mkfile(s, KEEP_ROOT_INO, "new", 0644, &a), EROFS,
	       "mknod through a read-only handle is EROFS");
	keep_store_close(s);

	/* refusals of init */
	is_int(keep_store_init(unit_path("s1"), &o), KEEP_E_EXISTS,
	       "init over an existing store is KEEP_E_EXISTS");
	mkdir(unit_path("full"), 0755);
	fd = open(unit_path("full/data"), O_CREAT | O_WRONLY, 0644);
	close(fd);
	is_int(keep_store_init(unit_path("full"), &o), KEEP_E_EXISTS,
	       "init in a non-empty directory is KEEP_E_EXISTS");
	is_str(unit_ls_fs("full"), "data", "and leaves the directory as it was");
	mkdir(unit_path("empty"), 0755);
	is_int(keep_store_init(unit_path("empty"), &o), 0,
	       "init in an existing empty directory");
	is_int(keep_is_store(unit_path("empty")), 1, "which is then a store");

	o.block_size = 1000;
	is_int(keep_store_init(unit_path("bs1"), &o), KEEP_E_INVAL,
	       "block size below the minimum is KEEP_E_INVAL");
	ok(access(unit_path("bs1"), F_OK) != 0, "and leaves nothing behind");
	o.block_size = 2 * KEEP_MAX_BLOCK_SIZE;
	is_int(keep_store_init(unit_path("bs2"), &o), KEEP_E_INVAL,
	       "block size above the maximum is KEEP_E_INVAL");
	ok(access(unit_path("bs2"), F_OK) != 0, "and leaves nothing behind");

	o.block_size = KEEP_MIN_BLOCK_SIZE;
	o.root_mode = 0700;
	is_int(keep_store_init(unit_path("bs3"), &o), 0,
	       "init with the minimum block size and root mode 0700");
	if (keep_store_open(unit_path("bs3"), KEEP_OPEN_RDONLY, &s) == 0) {
		is_int(keep_store_block_size(s), KEEP_MIN_BLOCK_SIZE,
		       "block size is kept");
		keep_getattr(s, KEEP_LIVE, KEEP_ROOT_INO, &a);
		is_int(a.mode, S_IFDIR | 0700, "root mode is kept");
		keep_store_close(s);
	} else {
		ok(0, "open the store with the minimum block size");
	}
	o.block_size = KEEP_MAX_BLOCK_SIZE;
	o.root_mode = 0;
	is_int(keep_store_init(unit_path("bs4"), &o), 0,
	       "init with the maximum block size");
}

static void t_open_errors(void)
{
	static int sentinel;
	struct keep_store *s = (struct keep_store *)&sentinel;
	int rc, fd;

	rc = keep_store_open(unit_path("missing"), KEEP_OPEN_WRITE, &s);
	ok(rc == ENOENT || rc == KEEP_E_NOTSTORE,
	   "open of a missing path is ENOENT or KEEP_E_NOTSTORE (got %d)", rc);
	ok(s == (struct keep_store *)&sentinel, "out-pointer untouched");
	ok(access(unit_path("missing"), F_OK) != 0,
	   "open does not create the missing path");
	rc = keep_store_open(unit_path("missing"), KEEP_OPEN_RDONLY, &s);
	ok(rc == ENOENT || rc == KEEP_E_NOTSTORE,
	   "read-only open of a missing path is ENOENT or KEEP_E_NOTSTORE (got %d)",
	   rc);

	mkdir(unit_path("plain"), 0755);
	is_int(keep_store_open(unit_path("plain"), KEEP_OPEN_WRITE, &s),
	       KEEP_E_NOTSTORE, "open of an empty directory is KEEP_E_NOTSTORE");
	is_int(keep_store_open(unit_path("plain"), KEEP_OPEN_RDONLY, &s),
	       KEEP_E_NOTSTORE, "read-only open of it too");
	is_str(unit_ls_fs("plain"), "", "and it stays empty");
	fd = open(unit_path("plain/notes.txt"), O_CREAT | O_WRONLY, 0644);
	close(fd);
	is_int(keep_store_open(unit_path("plain"), KEEP_OPEN_WRITE, &s),
	       KEEP_E_NOTSTORE,
	       "open of a directory with other files is KEEP_E_NOTSTORE");
	rc = keep_store_open(unit_path("plain/notes.txt"), KEEP_OPEN_WRITE, &s);
	ok(rc == KEEP_E_NOTSTORE || rc == ENOTDIR,
	   "open of a regular file is KEEP_E_NOTSTORE or ENOTDIR (got %d)", rc);
	ok(s == (struct keep_store *)&sentinel, "out-pointer still untouched");
}

static void t_version(void)
{
	struct keep_store *s = unit_store("ver", 0);
	int rc;

	keep_store_close(s);
	s = NULL;
	is_int(unit_sql("ver", "UPDATE meta SET value='99' "
			       "WHERE key='format_version'"),
	       1, "tamper: set the format version to 99");
	is_int(keep_store_open(unit_path("ver"), KEEP_OPEN_WRITE, &s),
	       KEEP_E_VERSION, "open of a newer format is KEEP_E_VERSION");
	is_int(keep_store_open(unit_path("ver"), KEEP_OPEN_RDONLY, &s),
	       KEEP_E_VERSION, "read-only open of it too");
	is_int(keep_is_store(unit_path("ver")), 1, "it is still a store");
	is_int(unit_sql("ver", "UPDATE meta SET value='banana' "
			       "WHERE key='format_version'"),
	       1, "tamper: set the format version to garbage");
	is_int(keep_store_open(unit_path("ver"), KEEP_OPEN_WRITE, &s),
	       KEEP_E_VERSION, "open of an unknown format is KEEP_E_VERSION");
	unit_sql("ver", "UPDATE meta SET value='1' WHERE key='format_version'");
	rc = keep_store_open(unit_path("ver"), KEEP_OPEN_WRITE, &s);
	is_int(rc, 0, "with the version restored it opens again");
	if (rc == 0) {
		uint64_t problems = 99;

		is_int(keep_check(s, 1, NULL, NULL, &problems), 0,
		       "and checks clean: the refusals changed nothing");
		keep_store_close(s);
	}
}

static void child_open(void *arg, long long *out, int n)
{
	struct keep_store *s = NULL;
	int rc;

	(void)n;
	out[0] = keep_store_open(arg, KEEP_OPEN_WRITE, &s);
	if (out[0] == 0)
		keep_store_close(s);
	s = NULL;
	rc = keep_store_open(arg, KEEP_OPEN_RDONLY, &s);
	out[1] = rc;
	if (rc == 0) {
		out[2] = unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "committed") != 0;
		keep_store_close(s);
	}
	out[3] = keep_store_lock_owner(arg);
}

static void t_lock(void)
{
	struct keep_store *s = unit_store("lock", 0), *s2 = NULL;
	const char *path = unit_path("lock");
	long long r[4];

	unit_file(s, KEEP_ROOT_INO, "committed", "x", 1);
	keep_commit(s, NULL);
	is_int(keep_store_lock_owner(path), getpid(),
	       "lock owner is this process while open for writing");
	if (unit_child(child_open, (void *)path, r, 4) == 0) {
		is_int(r[0], KEEP_E_LOCKED,
		       "a second writer (another process) gets KEEP_E_LOCKED");
		is_int(r[1], 0, "a read-only open works while it is locked");
		is_int(r[2], 1, "and sees the committed file");
		is_int(r[3], getpid(), "the other process sees the owner's pid");
	} else {
		ok(0, "child reported");
	}
	/* flock locks are per open file description: a second open in the
	 * same process conflicts too */
	is_int(keep_store_open(path, KEEP_OPEN_WRITE, &s2), KEEP_E_LOCKED,
	       "a second writer in the same process gets KEEP_E_LOCKED");
	is_int(keep_store_close(s), 0, "close the writer");
	is_int(keep_store_lock_owner(path), 0, "no lock owner after close");
	if (unit_child(child_open, (void *)path, r, 4) == 0) {
		is_int(r[0], 0, "another process can now open for writing");
		is_int(r[3], 0, "and after it closed nobody owns the lock");
	} else {
		ok(0, "child reported");
	}
	is_int(keep_store_lock_owner(unit_path("missing")), 0,
	       "lock owner of a missing path is 0");
}

static void t_codes(void)
{
	static const int codes[] = { KEEP_E_CORRUPT,  KEEP_E_NOTSTORE,
				     KEEP_E_VERSION,  KEEP_E_LOCKED,
				     KEEP_E_READONLY, KEEP_E_SQLITE,
				     KEEP_E_NOMEM,    KEEP_E_EXISTS,
				     KEEP_E_INVAL };
	size_t i, j;
	int good = 1;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *m = keep_strerror(codes[i]);

		if (!m || !*m) {
			good = 0;
			continue;
		}
		for (j = 0; j < i; j++)
			if (strcmp(m, keep_strerror(codes[j])) == 0)
				good = 0;
	}
	ok(good, "keep_strerror gives a distinct message for every KEEP_E_*");
	ok(keep_strerror(0) && keep_strerror(ENOENT) && *keep_strerror(ENOENT),
	   "keep_strerror of 0 and of an errno");
	ok(keep_strerror(-1000) != NULL, "keep_strerror of an unknown code");
	is_int(keep_errno(0), 0, "keep_errno(0)");
	is_int(keep_errno(ENOSPC), ENOSPC, "keep_errno passes errno through");
	is_int(keep_errno(KEEP_E_READONLY), EROFS, "READONLY maps to EROFS");
	is_int(keep_errno(KEEP_E_NOMEM), ENOMEM, "NOMEM maps to ENOMEM");
	is_int(keep_errno(KEEP_E_CORRUPT), EIO, "CORRUPT maps to EIO");
	is_int(keep_errno(KEEP_E_SQLITE), EIO, "SQLITE maps to EIO");
}

int main(void)
{
	unit_begin("store");
	t_init();
	t_open_errors();
	t_lock();
	t_codes();
	is_int(unit_log_problems, 0, "no errors or warnings were logged");
	t_version();
	unit_end();
	return tap_done();
}
