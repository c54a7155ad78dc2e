/*
 * posix.c - the POSIX surface of a mounted keepfs, one exact assertion at a
 * time.
 *
 *   posix DIR [STORE]
 *
 * Works in a fresh directory under DIR (normally a keepfs mount point) and
 * prints TAP.  Every check states the exact result and errno that Linux
 * gives on a local filesystem, so the same program also runs on tmpfs or
 * ext4 as a reference.  STORE, when given, is the backing store directory:
 * statfs on DIR must then report the free space of STORE's filesystem.
 * Checks that need root (device nodes, trusted.* and security.* xattrs,
 * chown) are skipped when not run as root.
 *
 * Reads that must come from the filesystem and not from the page cache
 * first push the file out (fsync) and drop its pages (POSIX_FADV_DONTNEED).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "../tap.h"

#define KiB (1024LL)
#define MiB (1024LL * KiB)
#define GiB (1024LL * MiB)

static int is_root;
static const char *store_dir;

/* --- assertions ----------------------------------------------------------- */

/* A call that must succeed (res >= 0). */
static int is_ok(long long res, const char *what)
{
	int err = errno;
	if (!ok(res >= 0, "%s", what))
		diag("  got %lld, errno %d (%s), want success", res, err, strerror(err));
	return res >= 0;
}

/* A call that must fail with exactly errno want. */
static int is_err(long long res, int want, const char *what)
{
	int err = errno;
	int pass = res == -1 && err == want;
	ok(pass, "%s fails with %s", what, strerrorname_np(want));
	if (!pass) {
		if (res == -1)
			diag("  got errno %d (%s), want %d (%s)", err,
			     strerrorname_np(err), want, strerrorname_np(want));
		else
			diag("  got success (%lld), want errno %s", res, strerrorname_np(want));
	}
	return pass;
}

static int is_str(const char *got, const char *want, const char *what)
{
	int pass = got && strcmp(got, want) == 0;
	ok(pass, "%s", what);
	if (!pass)
		diag("  got '%s', want '%s'", got ? got : "(null)", want);
	return pass;
}

static int is_mem(const void *got, const void *want, size_t len, const char *what)
{
	const unsigned char *g = got, *w = want;
	size_t i;
	for (i = 0; i < len && g[i] == w[i]; i++)
		;
	ok(i == len, "%s", what);
	if (i != len)
		diag("  first difference at byte %zu: got 0x%02x, want 0x%02x", i, g[i], w[i]);
	return i == len;
}

static int is_zero(const void *buf, size_t len, const char *what)
{
	const unsigned char *b = buf;
	size_t i;
	for (i = 0; i < len && b[i] == 0; i++)
		;
	ok(i == len, "%s", what);
	if (i != len)
		diag("  byte %zu is 0x%02x, want 0", i, b[i]);
	return i == len;
}

static void skip(const char *why, const char *what)
{
	printf("ok %d - %s # SKIP %s\n", ++tap_n, what, why);
	fflush(stdout);
}

/* --- helpers -------------------------------------------------------------- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static void fill_random(void *buf, size_t len)
{
	unsigned char *b = buf;
	for (size_t i = 0; i < len; i++) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		b[i] = (unsigned char)(rng_state >> 24);
	}
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, data, len);
	int err = errno;
	close(fd);
	errno = err;
	return w == (ssize_t)len ? 0 : -1;
}

/* Reads the whole file into a NUL-terminated malloc'd buffer; -1 on error. */
static ssize_t read_file(const char *path, char **out)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	size_t cap = 4096, len = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			cap *= 2;
			char *n = realloc(buf, cap + 1);
			if (!n)
				abort();
			buf = n;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0) {
			int err = errno;
			free(buf);
			close(fd);
			errno = err;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = 0;
	*out = buf;
	return (ssize_t)len;
}

static int file_is(const char *path, const char *want, const char *what)
{
	char *got = NULL;
	ssize_t n = read_file(path, &got);
	int pass = n >= 0 && (size_t)n == strlen(want) && memcmp(got, want, (size_t)n) == 0;
	ok(pass, "%s", what);
	if (!pass) {
		if (n < 0)
			diag("  reading '%s': %s", path, strerror(errno));
		else
			diag("  got '%.*s' (%zd bytes), want '%s'", (int)(n > 200 ? 200 : n), got, n, want);
	}
	free(got);
	return pass;
}

/* Push a file's dirty pages to the filesystem and drop its cached pages,
 * so the next read is served by the filesystem itself. */
static void drop_cache(int fd)
{
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static void drop_cache_path(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		drop_cache(fd);
		close(fd);
	}
}

static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static ssize_t pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t w = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (w < 0)
			return -1;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static struct stat st_of(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		memset(&st, 0, sizeof(st));
	return st;
}

/* st_blocks as the filesystem has it now, not as the kernel cached it */
static long long fresh_blocks(int fd)
{
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_BLOCKS, &sx) != 0)
		return -1;
	return (long long)sx.stx_blocks;
}

static long long ts_ns(struct timespec ts)
{
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return ts_ns(ts);
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Child process helpers: the child reports one int result through a pipe. */
struct child {
	pid_t pid;
	int to_child[2];   /* parent writes, child reads */
	int from_child[2]; /* child writes, parent reads */
};

static void child_send(int fd, int v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		_exit(3);
}

static int child_recv(int fd)
{
	int v;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return -12345;
	return v;
}

static int child_start(struct child *c)
{
	if (pipe(c->to_child) || pipe(c->from_child))
		return -1;
	fflush(stdout);
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		close(c->to_child[1]);
		close(c->from_child[0]);
		return 0;
	}
	close(c->to_child[0]);
	close(c->from_child[1]);
	return 1;
}

static int child_finish(struct child *c)
{
	int status = 0;
	close(c->to_child[1]);
	close(c->from_child[0]);
	waitpid(c->pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* --- lookup --------------------------------------------------------------- */

static void test_lookup(void)
{
	struct stat st, st2;
	diag("lookup");
	is_ok(mkdir("lk", 0755), "mkdir lk");
	is_ok(mkdir("lk/sub", 0755), "mkdir lk/sub");
	is_ok(write_file("lk/sub/f", "abc", 3), "create lk/sub/f");
	is_ok(stat("lk/sub/f", &st), "stat lk/sub/f");
	ok(S_ISREG(st.st_mode) && st.st_size == 3, "lk/sub/f is a regular file of 3 bytes");
	is_err(stat("lk/none", &st), ENOENT, "stat of a missing name");
	is_err(stat("lk/sub/f/x", &st), ENOTDIR, "stat through a regular file");
	is_ok(stat("lk", &st), "stat lk");
	is_ok(stat("lk/sub/..", &st2), "stat lk/sub/..");
	is_int(st2.st_ino, st.st_ino, "lk/sub/.. is lk");
	is_ok(stat("lk/sub/../sub/./f", &st2), "stat through . and ..");
	is_ok(stat("lk/sub/f", &st), "stat lk/sub/f again");
	is_int(st2.st_ino, st.st_ino, "same inode by both paths");
	ok(st.st_dev == st_of(".").st_dev, "st_dev is the mount's");
}

/* --- setattr -------------------------------------------------------------- */

static void test_setattr(void)
{
	struct stat st;
	char *buf;
	diag("chmod, chown, truncate, utimensat");

	is_ok(write_file("sa", "0123456789", 10), "create sa");
	struct stat before = st_of("sa");
	msleep(20);
	is_ok(chmod("sa", 0640), "chmod 0640");
	st = st_of("sa");
	is_int(st.st_mode, S_IFREG | 0640, "mode is 0640");
	ok(ts_ns(st.st_ctim) > ts_ns(before.st_ctim), "chmod moved ctime forward");
	is_int(ts_ns(st.st_mtim), ts_ns(before.st_mtim), "chmod left mtime alone");
	is_ok(chmod("sa", 04755), "chmod 04755");
	is_int(st_of("sa").st_mode, S_IFREG | 04755, "mode is 04755 (setuid kept)");
	is_ok(chmod("sa", 0600), "chmod 0600");
	is_int(st_of("sa").st_mode, S_IFREG | 0600, "mode is 0600");
	is_ok(mkdir("sadir", 0700), "mkdir sadir");
	is_ok(chmod("sadir", 01777), "chmod 01777 on a directory");
	is_int(st_of("sadir").st_mode, S_IFDIR | 01777, "directory mode is 01777");

	if (is_root) {
		is_ok(chown("sa", 1234, 5678), "chown 1234:5678");
		st = st_of("sa");
		ok(st.st_uid == 1234 && st.st_gid == 5678, "owner is 1234:5678");
		if (st.st_uid != 1234 || st.st_gid != 5678)
			diag("  got %u:%u", st.st_uid, st.st_gid);
		is_ok(chown("sa", (uid_t)-1, 99), "chown -1:99");
		st = st_of("sa");
		ok(st.st_uid == 1234 && st.st_gid == 99, "owner is 1234:99");
		is_ok(symlink("sa", "salink"), "symlink salink");
		is_ok(lchown("salink", 42, 43), "lchown on a symlink");
		st = st_of("salink");
		ok(S_ISLNK(st.st_mode) && st.st_uid == 42 && st.st_gid == 43, "symlink owner is 42:43");
		st = st_of("sa");
		ok(st.st_uid == 1234 && st.st_gid == 99, "target owner unchanged by lchown");
		is_ok(chown("sa", 0, 0), "chown back to 0:0");
	} else {
		skip("not root", "chown");
	}

	/* truncate */
	is_ok(truncate("sa", 4), "truncate to 4");
	is_int(st_of("sa").st_size, 4, "size is 4");
	file_is("sa", "0123", "content is 0123");
	is_ok(truncate("sa", 8192), "truncate up to 8192");
	is_int(st_of("sa").st_size, 8192, "size is 8192");
	drop_cache_path("sa");
	ssize_t n = read_file("sa", &buf);
	is_int(n, 8192, "read 8192 bytes");
	if (n == 8192) {
		is_mem(buf, "0123", 4, "first 4 bytes kept");
		is_zero(buf + 4, 8192 - 4, "extended part reads as zeros");
	}
	free(buf);

	/* shrink then grow: the old bytes must not come back */
	is_ok(write_file("sb", "ABCDEFGHIJKL", 12), "create sb");
	int fd = open("sb", O_RDWR);
	is_ok(fd, "open sb");
	is_ok(ftruncate(fd, 2), "ftruncate to 2");
	is_ok(ftruncate(fd, 8), "ftruncate to 8");
	char b8[16] = { 0 };
	drop_cache(fd);
	is_int(pread(fd, b8, sizeof(b8), 0), 8, "read 8 bytes");
	is_mem(b8, "AB\0\0\0\0\0\0", 8, "shrink+grow gives AB and zeros");
	struct stat fst;
	fstat(fd, &fst);
	is_int(fst.st_size, 8, "fstat size is 8");
	close(fd);

	/* big truncate across blocks of any size, then shrink into the middle */
	size_t big = 3 * MiB + 12345;
	char *data = xmalloc(big);
	fill_random(data, big);
	is_ok(write_file("sc", data, big), "write 3 MiB to sc");
	is_ok(truncate("sc", 1 * MiB + 777), "truncate sc to 1 MiB + 777");
	is_ok(truncate("sc", 2 * MiB), "truncate sc up to 2 MiB");
	drop_cache_path("sc");
	n = read_file("sc", &buf);
	is_int(n, 2 * MiB, "sc is 2 MiB");
	if (n == 2 * MiB) {
		is_mem(buf, data, 1 * MiB + 777, "kept part of sc intact");
		is_zero(buf + 1 * MiB + 777, 1 * MiB - 777, "regrown part of sc is zeros");
	}
	free(buf);
	free(data);

	/* utimensat */
	struct timespec t[2] = { { 1000, 123 }, { 2000, 456 } };
	is_ok(utimensat(AT_FDCWD, "sa", t, 0), "utimensat explicit times");
	st = st_of("sa");
	is_int(ts_ns(st.st_atim), 1000000000123LL, "atime exact to the ns");
	is_int(ts_ns(st.st_mtim), 2000000000456LL, "mtime exact to the ns");
	struct timespec t2[2] = { { 0, UTIME_OMIT }, { 3000, 500000000 } };
	is_ok(utimensat(AT_FDCWD, "sa", t2, 0), "utimensat atime=UTIME_OMIT");
	st = st_of("sa");
	is_int(ts_ns(st.st_atim), 1000000000123LL, "UTIME_OMIT kept atime");
	is_int(ts_ns(st.st_mtim), 3000500000000LL, "mtime set to 3000.5");
	long long lo = now_ns(CLOCK_REALTIME_COARSE);
	struct timespec t3[2] = { { 0, UTIME_OMIT }, { 0, UTIME_NOW } };
	is_ok(utimensat(AT_FDCWD, "sa", t3, 0), "utimensat mtime=UTIME_NOW");
	long long hi = now_ns(CLOCK_REALTIME);
	st = st_of("sa");
	is_int(ts_ns(st.st_atim), 1000000000123LL, "UTIME_OMIT kept atime again");
	ok(ts_ns(st.st_mtim) >= lo && ts_ns(st.st_mtim) <= hi, "UTIME_NOW set mtime to now");
	if (!(ts_ns(st.st_mtim) >= lo && ts_ns(st.st_mtim) <= hi))
		diag("  mtime %lld not in [%lld, %lld]", ts_ns(st.st_mtim), lo, hi);
	struct timespec t4[2] = { { 0, UTIME_NOW }, { 0, UTIME_OMIT } };
	long long m = ts_ns(st.st_mtim);
	lo = now_ns(CLOCK_REALTIME_COARSE);
	is_ok(utimensat(AT_FDCWD, "sa", t4, 0), "utimensat atime=UTIME_NOW mtime=UTIME_OMIT");
	hi = now_ns(CLOCK_REALTIME);
	st = st_of("sa");
	ok(ts_ns(st.st_atim) >= lo && ts_ns(st.st_atim) <= hi, "UTIME_NOW set atime to now");
	is_int(ts_ns(st.st_mtim), m, "UTIME_OMIT kept mtime");
	lo = now_ns(CLOCK_REALTIME_COARSE);
	is_ok(utimensat(AT_FDCWD, "sa", NULL, 0), "utimensat NULL (both now)");
	hi = now_ns(CLOCK_REALTIME);
	st = st_of("sa");
	ok(ts_ns(st.st_mtim) >= lo && ts_ns(st.st_mtim) <= hi &&
		   ts_ns(st.st_atim) >= lo && ts_ns(st.st_atim) <= hi,
	   "both times now");
	fd = open("sa", O_RDWR);
	struct timespec t5[2] = { { 5, 5 }, { 6, 6 } };
	is_ok(futimens(fd, t5), "futimens on an open fd");
	fstat(fd, &fst);
	ok(ts_ns(fst.st_atim) == 5000000005LL && ts_ns(fst.st_mtim) == 6000000006LL,
	   "futimens times exact");
	/* a write moves mtime and ctime forward */
	is_int(pwrite(fd, "x", 1, 0), 1, "write one byte");
	fsync(fd);
	fstat(fd, &fst);
	ok(ts_ns(fst.st_mtim) > 6000000006LL, "write moved mtime forward");
	close(fd);
	struct timespec tl[2] = { { 77, 7 }, { 88, 8 } };
	is_ok(symlink("sa", "salink2"), "symlink salink2");
	is_ok(utimensat(AT_FDCWD, "salink2", tl, AT_SYMLINK_NOFOLLOW), "utimensat on a symlink itself");
	is_int(ts_ns(st_of("salink2").st_mtim), 88000000008LL, "symlink mtime exact");
}

/* --- mknod ---------------------------------------------------------------- */

static void test_mknod(void)
{
	struct stat st;
	diag("mknod");
	is_ok(mknod("nreg", S_IFREG | 0644, 0), "mknod regular");
	st = st_of("nreg");
	ok(st.st_mode == (S_IFREG | 0644) && st.st_size == 0 && st.st_nlink == 1,
	   "regular node: mode 0644, empty, nlink 1");
	is_ok(mknod("nfifo", S_IFIFO | 0600, 0), "mknod fifo");
	is_int(st_of("nfifo").st_mode, S_IFIFO | 0600, "fifo mode");
	is_ok(mkfifo("nfifo2", 0640), "mkfifo");
	is_int(st_of("nfifo2").st_mode, S_IFIFO | 0640, "mkfifo mode");
	int fd = open("nfifo", O_RDWR | O_NONBLOCK);
	if (is_ok(fd, "open the fifo")) {
		is_int(write(fd, "pipe", 4), 4, "write into the fifo");
		char b[8] = { 0 };
		is_int(read(fd, b, sizeof(b)), 4, "read from the fifo");
		is_mem(b, "pipe", 4, "fifo passes data");
		close(fd);
	}
	is_ok(mknod("nsock", S_IFSOCK | 0600, 0), "mknod socket");
	is_int(st_of("nsock").st_mode, S_IFSOCK | 0600, "socket mode");
	is_err(mknod("nreg", S_IFREG | 0644, 0), EEXIST, "mknod over an existing name");
	if (is_root) {
		is_ok(mknod("nchr", S_IFCHR | 0620, makedev(1, 3)), "mknod char device 1:3");
		st = st_of("nchr");
		ok(st.st_mode == (S_IFCHR | 0620) && st.st_rdev == makedev(1, 3),
		   "char device mode 0620 and rdev 1:3");
		is_ok(mknod("nblk", S_IFBLK | 0600, makedev(259, 70000)), "mknod block device 259:70000");
		st = st_of("nblk");
		ok(S_ISBLK(st.st_mode) && major(st.st_rdev) == 259 && minor(st.st_rdev) == 70000,
		   "block device rdev 259:70000");
	} else {
		skip("not root", "device nodes");
	}
}

/* --- mkdir, unlink, rmdir ------------------------------------------------- */

static void test_dirs(void)
{
	struct stat st;
	diag("mkdir, unlink, rmdir");
	is_ok(mkdir("md", 0750), "mkdir md 0750");
	st = st_of("md");
	is_int(st.st_mode, S_IFDIR | 0750, "md mode");
	is_int(st.st_nlink, 2, "empty directory has nlink 2");
	nlink_t parent = st_of(".").st_nlink;
	is_ok(mkdir("md/a", 0755), "mkdir md/a");
	is_ok(mkdir("md/b", 0755), "mkdir md/b");
	is_int(st_of("md").st_nlink, 4, "two subdirectories: nlink 4");
	is_int(st_of(".").st_nlink, parent, "grandparent nlink unchanged");
	is_err(mkdir("md", 0755), EEXIST, "mkdir of an existing name");
	is_err(mkdir("md/x/y", 0755), ENOENT, "mkdir with a missing parent");
	is_ok(write_file("md/f", "x", 1), "create md/f");
	is_err(mkdir("md/f/y", 0755), ENOTDIR, "mkdir under a file");
	is_err(rmdir("md"), ENOTEMPTY, "rmdir of a non-empty directory");
	is_err(rmdir("md/f"), ENOTDIR, "rmdir of a file");
	is_err(unlink("md/a"), EISDIR, "unlink of a directory");
	is_err(unlink("md/none"), ENOENT, "unlink of a missing name");
	is_ok(unlink("md/f"), "unlink md/f");
	is_err(stat("md/f", &st), ENOENT, "unlinked name is gone");
	is_ok(rmdir("md/a"), "rmdir md/a");
	is_err(stat("md/a", &st), ENOENT, "removed directory is gone");
	is_int(st_of("md").st_nlink, 3, "nlink back to 3");
	is_err(rmdir("md/b/."), EINVAL, "rmdir of '.'");
	is_ok(rmdir("md/b"), "rmdir md/b");
	is_ok(rmdir("md"), "rmdir md");
	is_err(rmdir("md"), ENOENT, "rmdir again");
	/* a created-and-removed name leaves no trace */
	DIR *d = opendir(".");
	struct dirent *e;
	int seen = 0;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, "md") == 0)
			seen++;
	if (d)
		closedir(d);
	is_int(seen, 0, "removed directory not listed");
}

/* --- symlink / readlink --------------------------------------------------- */

static void test_symlink(void)
{
	char buf[PATH_MAX];
	struct stat st;
	diag("symlink, readlink");
	const char *tgt = "does/not/exist";
	is_ok(symlink(tgt, "sl"), "symlink to a missing target");
	st = st_of("sl");
	ok(S_ISLNK(st.st_mode) && st.st_size == (off_t)strlen(tgt), "lstat: a symlink of the target's length");
	ssize_t n = readlink("sl", buf, sizeof(buf));
	is_int(n, strlen(tgt), "readlink length");
	is_mem(buf, tgt, strlen(tgt), "readlink content");
	is_int(readlink("sl", buf, 4), 4, "readlink into a short buffer truncates");
	is_mem(buf, "does", 4, "truncated readlink content");
	is_err(stat("sl", &st), ENOENT, "stat through a dangling symlink");
	is_ok(write_file("sltarget", "through", 7), "create sltarget");
	is_ok(symlink("sltarget", "sl2"), "symlink to a file");
	file_is("sl2", "through", "read through the symlink");
	is_err(symlink("x", "sl2"), EEXIST, "symlink over an existing name");
	is_err(readlink("sltarget", buf, sizeof(buf)), EINVAL, "readlink of a regular file");
	char longt[4001];
	for (int i = 0; i < 4000; i++)
		longt[i] = "abcdefghij/"[i % 11];
	longt[4000] = 0;
	is_ok(symlink(longt, "sllong"), "symlink with a 4000-byte target");
	n = readlink("sllong", buf, sizeof(buf));
	ok(n == 4000 && memcmp(buf, longt, 4000) == 0, "4000-byte target read back exactly");
	is_ok(mkdir("sldir", 0755), "mkdir sldir");
	is_ok(symlink("../sltarget", "sldir/up"), "relative symlink in a subdirectory");
	file_is("sldir/up", "through", "relative symlink resolves");
	is_int(st_of("sl").st_nlink, 1, "symlink nlink 1");
}

/* --- rename --------------------------------------------------------------- */

static void test_rename(void)
{
	struct stat st;
	diag("rename");
	is_ok(mkdir("rn", 0755), "mkdir rn");
	is_ok(chdir("rn"), "chdir rn");

	/* over a file */
	is_ok(write_file("r1", "one", 3), "create r1");
	is_ok(write_file("r2", "two", 3), "create r2");
	is_ok(link("r2", "r2b"), "hard link r2b to r2");
	ino_t ino1 = st_of("r1").st_ino;
	is_ok(rename("r1", "r2"), "rename r1 over r2");
	is_err(stat("r1", &st), ENOENT, "r1 is gone");
	file_is("r2", "one", "r2 has r1's content");
	is_int(st_of("r2").st_ino, ino1, "r2 is r1's inode");
	is_int(st_of("r2b").st_nlink, 1, "replaced inode lost one link");
	file_is("r2b", "two", "replaced inode keeps its content");

	/* same inode: nothing happens */
	is_ok(link("r2", "r2c"), "link r2c to r2");
	is_ok(rename("r2", "r2c"), "rename between two links of one inode");
	ok(access("r2", F_OK) == 0 && access("r2c", F_OK) == 0, "both links still exist");
	is_int(st_of("r2").st_nlink, 2, "nlink still 2");
	is_ok(rename("r2", "r2"), "rename to itself");
	file_is("r2", "one", "content intact");

	/* over an empty dir, and over a non-empty one */
	is_ok(mkdir("da", 0755), "mkdir da");
	is_ok(write_file("da/inside", "in", 2), "create da/inside");
	is_ok(mkdir("db", 0755), "mkdir db (empty)");
	is_ok(mkdir("dc", 0755), "mkdir dc");
	is_ok(write_file("dc/x", "x", 1), "create dc/x");
	nlink_t n0 = st_of(".").st_nlink;
	is_ok(rename("da", "db"), "rename directory over an empty directory");
	is_err(stat("da", &st), ENOENT, "da is gone");
	file_is("db/inside", "in", "db has da's content");
	is_int(st_of(".").st_nlink, n0 - 1, "parent lost one link");
	is_err(rename("db", "dc"), ENOTEMPTY, "rename over a non-empty directory");
	file_is("dc/x", "x", "non-empty target untouched");
	is_err(rename("r2", "db"), EISDIR, "rename a file over a directory");
	is_err(rename("db", "r2"), ENOTDIR, "rename a directory over a file");
	is_err(rename("nothing", "r9"), ENOENT, "rename of a missing name");

	/* RENAME_NOREPLACE */
	is_err(renameat2(AT_FDCWD, "r2", AT_FDCWD, "r2b", RENAME_NOREPLACE), EEXIST,
	       "RENAME_NOREPLACE onto an existing name");
	file_is("r2b", "two", "target untouched");
	is_ok(renameat2(AT_FDCWD, "r2b", AT_FDCWD, "r3", RENAME_NOREPLACE), "RENAME_NOREPLACE to a new name");
	file_is("r3", "two", "renamed with NOREPLACE");

	/* RENAME_EXCHANGE */
	is_ok(renameat2(AT_FDCWD, "r2", AT_FDCWD, "r3", RENAME_EXCHANGE), "RENAME_EXCHANGE of two files");
	file_is("r2", "two", "r2 now has r3's content");
	file_is("r3", "one", "r3 now has r2's content");
	ino_t dino = st_of("db").st_ino, fino = st_of("r3").st_ino;
	is_ok(renameat2(AT_FDCWD, "r3", AT_FDCWD, "db", RENAME_EXCHANGE), "RENAME_EXCHANGE of a file and a directory");
	st = st_of("db");
	ok(S_ISREG(st.st_mode) && st.st_ino == fino, "db is now the file");
	st = st_of("r3");
	ok(S_ISDIR(st.st_mode) && st.st_ino == dino, "r3 is now the directory");
	file_is("r3/inside", "in", "exchanged directory keeps its content");
	is_err(renameat2(AT_FDCWD, "r2", AT_FDCWD, "missing", RENAME_EXCHANGE), ENOENT,
	       "RENAME_EXCHANGE with a missing target");
	is_err(renameat2(AT_FDCWD, "r2", AT_FDCWD, "db", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL,
	       "RENAME_EXCHANGE|RENAME_NOREPLACE");

	/* into its own subtree */
	is_ok(mkdir("t", 0755), "mkdir t");
	is_ok(mkdir("t/u", 0755), "mkdir t/u");
	is_err(rename("t", "t/u/v"), EINVAL, "rename a directory into its own subtree");
	is_err(rename("t", "t/v"), EINVAL, "rename a directory into itself");

	/* across directories */
	is_ok(mkdir("t/w", 0755), "mkdir t/w");
	nlink_t tn = st_of("t").st_nlink, un = st_of("t/u").st_nlink;
	is_ok(rename("t/w", "t/u/w"), "move a directory to another parent");
	is_int(st_of("t").st_nlink, tn - 1, "old parent lost a link");
	is_int(st_of("t/u").st_nlink, un + 1, "new parent gained a link");
	is_int(st_of("t/u/w/..").st_ino, st_of("t/u").st_ino, "moved directory's .. is its new parent");
	is_ok(rename("r2", "t/u/w/r2"), "move a file to another directory");
	file_is("t/u/w/r2", "two", "moved file content");
	struct stat cst = st_of("dc");
	msleep(20);
	is_ok(rename("dc", "dd"), "rename dc to dd");
	ok(ts_ns(st_of("dd").st_ctim) >= ts_ns(cst.st_ctim), "ctime not moved backwards by rename");
	is_ok(chdir(".."), "chdir ..");
}

/* --- hard links ----------------------------------------------------------- */

static void test_links(void)
{
	struct stat st;
	diag("hard links");
	is_ok(mkdir("hl", 0755), "mkdir hl");
	is_ok(mkdir("hl/other", 0755), "mkdir hl/other");
	is_ok(write_file("hl/f", "linked", 6), "create hl/f");
	ino_t ino = st_of("hl/f").st_ino;
	is_int(st_of("hl/f").st_nlink, 1, "nlink 1");
	is_ok(link("hl/f", "hl/g"), "link hl/g");
	is_int(st_of("hl/f").st_nlink, 2, "nlink 2 via f");
	is_int(st_of("hl/g").st_nlink, 2, "nlink 2 via g");
	is_int(st_of("hl/g").st_ino, ino, "same st_ino");
	is_ok(link("hl/f", "hl/other/h"), "link into another directory");
	is_int(st_of("hl/other/h").st_nlink, 3, "nlink 3");
	is_err(link("hl/f", "hl/g"), EEXIST, "link over an existing name");
	is_err(link("hl/other", "hl/dirlink"), EPERM, "link of a directory");
	is_err(link("hl/none", "hl/x"), ENOENT, "link of a missing file");
	int fd = open("hl/g", O_WRONLY | O_APPEND);
	is_int(write(fd, "+more", 5), 5, "append through g");
	close(fd);
	file_is("hl/other/h", "linked+more", "change seen through h");
	is_ok(unlink("hl/f"), "unlink f");
	is_int(st_of("hl/g").st_nlink, 2, "nlink 2 after unlink");
	is_ok(unlink("hl/other/h"), "unlink h");
	st = st_of("hl/g");
	is_int(st.st_nlink, 1, "nlink 1 after second unlink");
	file_is("hl/g", "linked+more", "last link keeps the content");
	is_ok(symlink("g", "hl/s"), "symlink");
	is_ok(link("hl/s", "hl/s2"), "hard link of a symlink");
	st = st_of("hl/s2");
	ok(S_ISLNK(st.st_mode) && st.st_nlink == 2, "linked symlink has nlink 2");
	is_ok(mkfifo("hl/p", 0600), "mkfifo");
	is_ok(link("hl/p", "hl/p2"), "hard link of a fifo");
	is_int(st_of("hl/p").st_nlink, 2, "fifo nlink 2");
}

/* --- open flags, appends -------------------------------------------------- */

static void test_open(void)
{
	struct stat st;
	diag("open, create, O_EXCL, O_TRUNC, O_APPEND");
	int fd = open("of", O_CREAT | O_EXCL | O_WRONLY, 0604);
	is_ok(fd, "O_CREAT|O_EXCL of a new name");
	is_int(write(fd, "hello", 5), 5, "write");
	close(fd);
	is_int(st_of("of").st_mode, S_IFREG | 0604, "created with mode 0604");
	is_err(open("of", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST, "O_CREAT|O_EXCL of an existing name");
	fd = open("of", O_CREAT | O_WRONLY, 0600);
	is_ok(fd, "O_CREAT of an existing name");
	close(fd);
	file_is("of", "hello", "O_CREAT alone keeps the content");
	is_int(st_of("of").st_mode, S_IFREG | 0604, "O_CREAT alone keeps the mode");
	fd = open("of", O_WRONLY | O_TRUNC);
	is_ok(fd, "O_TRUNC");
	fstat(fd, &st);
	is_int(st.st_size, 0, "O_TRUNC empties the file");
	close(fd);
	is_int(st_of("of").st_size, 0, "size 0 after close");
	is_ok(write_file("of", "abc", 3), "rewrite");
	fd = open("of", O_WRONLY | O_APPEND);
	is_ok(fd, "O_APPEND");
	lseek(fd, 0, SEEK_SET);
	is_int(write(fd, "def", 3), 3, "append");
	close(fd);
	file_is("of", "abcdef", "append went to the end");
	is_err(open("nofile", O_RDONLY), ENOENT, "open of a missing name");
	is_err(open("of", O_RDONLY | O_DIRECTORY), ENOTDIR, "O_DIRECTORY on a file");
	is_err(open(".", O_WRONLY), EISDIR, "open a directory for writing");
	fd = open("of", O_RDONLY);
	is_err(write(fd, "x", 1), EBADF, "write on a read-only fd");
	close(fd);
	fd = open("of", O_WRONLY);
	char c;
	is_err(read(fd, &c, 1), EBADF, "read on a write-only fd");
	close(fd);
	is_ok(chmod("of", 0), "chmod 0");
	fd = open("of", O_RDONLY);
	ok(fd >= 0, "root may still open a mode-0 file");
	if (fd >= 0)
		close(fd);
	chmod("of", 0644);

	/* two appenders, two processes, fixed-size records */
	enum { RECS = 2000, RLEN = 16 };
	close(open("ap", O_CREAT | O_TRUNC | O_WRONLY, 0644));
	struct child c1;
	int r = child_start(&c1);
	if (r == 0) {
		int afd = open("ap", O_WRONLY | O_APPEND);
		char rec[RLEN + 1];
		child_recv(c1.to_child[0]);
		for (int i = 0; i < RECS; i++) {
			snprintf(rec, sizeof(rec), "B%014d\n", i);
			if (write(afd, rec, RLEN) != RLEN)
				_exit(1);
		}
		close(afd);
		_exit(0);
	}
	int afd = open("ap", O_WRONLY | O_APPEND);
	int afd2 = open("ap", O_WRONLY | O_APPEND);
	char rec[RLEN + 1];
	child_send(c1.to_child[1], 1);
	int werr = 0;
	for (int i = 0; i < RECS; i++) {
		snprintf(rec, sizeof(rec), "%c%014d\n", i % 2 ? 'A' : 'C', i);
		if (write(i % 2 ? afd : afd2, rec, RLEN) != RLEN)
			werr++;
	}
	close(afd);
	close(afd2);
	is_int(child_finish(&c1), 0, "child appender succeeded");
	is_int(werr, 0, "parent appends all succeeded");
	char *buf = NULL;
	drop_cache_path("ap");
	ssize_t n = read_file("ap", &buf);
	is_int(n, 2 * RECS * RLEN, "all appended records are there");
	int bad = 0, nb = 0, na = 0;
	static char seen_b[RECS], seen_p[RECS];
	memset(seen_b, 0, sizeof(seen_b));
	memset(seen_p, 0, sizeof(seen_p));
	for (ssize_t off = 0; n > 0 && off + RLEN <= n; off += RLEN) {
		char *p = buf + off;
		int v = atoi(p + 1);
		if (p[RLEN - 1] != '\n' || v < 0 || v >= RECS) {
			bad++;
			continue;
		}
		if (p[0] == 'B') {
			nb += !seen_b[v];
			seen_b[v] = 1;
		} else if ((p[0] == 'A' && v % 2) || (p[0] == 'C' && v % 2 == 0)) {
			na += !seen_p[v];
			seen_p[v] = 1;
		} else {
			bad++;
		}
	}
	free(buf);
	is_int(bad, 0, "no torn or overwritten record");
	ok(nb == RECS && na == RECS, "every record of both processes present once");
}

/* --- read/write at offsets, fsync ----------------------------------------- */

static void test_rw(void)
{
	diag("read and write at offsets, fsync, fdatasync");
	int fd = open("rw", O_RDWR | O_CREAT | O_TRUNC, 0644);
	is_ok(fd, "create rw");
	is_int(pwrite(fd, "hello", 5, 0), 5, "pwrite at 0");
	is_int(pwrite(fd, "world", 5, 100000), 5, "pwrite at 100000");
	struct stat st;
	fstat(fd, &st);
	is_int(st.st_size, 100005, "size 100005");
	is_ok(fsync(fd), "fsync");
	is_ok(fdatasync(fd), "fdatasync");
	drop_cache(fd);
	char *buf = xmalloc(200000);
	is_int(pread(fd, buf, 5, 0), 5, "pread at 0");
	is_mem(buf, "hello", 5, "data at 0");
	is_int(pread_full(fd, buf, 100000 - 5, 5), 100000 - 5, "pread the gap");
	is_zero(buf, 100000 - 5, "gap reads as zeros");
	is_int(pread(fd, buf, 100, 100000), 5, "pread across EOF is short");
	is_mem(buf, "world", 5, "data at 100000");
	is_int(pread(fd, buf, 10, 100005), 0, "pread at EOF returns 0");
	is_int(pread(fd, buf, 10, 1000000), 0, "pread past EOF returns 0");
	is_int(pwrite(fd, "XY", 2, 3), 2, "overwrite in the middle");
	drop_cache(fd);
	is_int(pread(fd, buf, 7, 0), 7, "pread");
	is_mem(buf, "helXY\0\0", 7, "overwrite kept the surrounding bytes");
	close(fd);

	/* random data across block boundaries, read back in odd chunks */
	size_t len = 2 * MiB + 4097;
	char *data = xmalloc(len), *back = xmalloc(len);
	fill_random(data, len);
	fd = open("rw2", O_RDWR | O_CREAT | O_TRUNC, 0644);
	size_t off = 0;
	int werr = 0;
	while (off < len) {
		rng_state = rng_state * 6364136223846793005ull + 1;
		size_t chunk = 1 + (size_t)((rng_state >> 33) % 70000);
		if (chunk > len - off)
			chunk = len - off;
		if (pwrite_full(fd, data + off, chunk, (off_t)off) != (ssize_t)chunk)
			werr++;
		off += chunk;
	}
	is_int(werr, 0, "2 MiB written in odd-sized chunks");
	/* unaligned overwrites straddling boundaries of every power of two */
	for (off_t b = 4096; b <= 1 * MiB; b *= 2) {
		char patch[333];
		fill_random(patch, sizeof(patch));
		memcpy(data + b - 100, patch, sizeof(patch));
		pwrite_full(fd, patch, sizeof(patch), b - 100);
	}
	is_ok(fsync(fd), "fsync");
	close(fd);
	drop_cache_path("rw2");
	fd = open("rw2", O_RDONLY);
	off = 0;
	int rerr = 0;
	while (off < len) {
		size_t chunk = 4097;
		if (chunk > len - off)
			chunk = len - off;
		if (pread_full(fd, back + off, chunk, (off_t)off) != (ssize_t)chunk)
			rerr++;
		off += chunk;
	}
	close(fd);
	is_int(rerr, 0, "read back in 4097-byte chunks");
	is_mem(back, data, len, "content identical after a cache drop");
	free(data);
	free(back);
	free(buf);
}

/* --- readdir -------------------------------------------------------------- */

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

struct nameset {
	char **v;
	int n;
};

static int ns_has(const struct nameset *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return 1;
	return 0;
}

static void ns_add(struct nameset *s, const char *name)
{
	s->v = realloc(s->v, sizeof(char *) * (size_t)(s->n + 1));
	s->v[s->n++] = strdup(name);
}

static void ns_free(struct nameset *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/*
 * Reads entries with a small getdents64 buffer, so the filesystem is asked
 * many times with the offsets it handed out.  Stops after max entries (or
 * at the end); *last_off is the d_off of the last entry taken.  "." and
 * ".." are not added.  Returns the number of dups seen, or -1 on error.
 */
static int read_some(int fd, struct nameset *into, int max, int64_t *last_off, int *dups)
{
	char buf[600];
	int taken = 0;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n < 0)
			return -1;
		if (n == 0)
			return taken;
		for (long p = 0; p < n;) {
			struct linux_dirent64 *e = (void *)(buf + p);
			p += e->d_reclen;
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				if (ns_has(into, e->d_name))
					(*dups)++;
				else
					ns_add(into, e->d_name);
			}
			*last_off = e->d_off;
			if (++taken == max) {
				/* give back what was not consumed */
				lseek(fd, e->d_off, SEEK_SET);
				return taken;
			}
		}
	}
}

static void test_readdir(void)
{
	char name[64];
	diag("readdir, telldir/seekdir, changes during iteration, fsyncdir");
	is_ok(mkdir("rd", 0755), "mkdir rd");
	enum { N = 300 };
	int err = 0;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "rd/e%03d", i);
		if (i % 10 == 3)
			err += mkdir(name, 0755) != 0;
		else
			err += write_file(name, "", 0) != 0;
	}
	is_int(err, 0, "300 entries created");

	/* the exact set, with d_type */
	DIR *d = opendir("rd");
	struct dirent *e;
	int dot = 0, dotdot = 0, other = 0, badtype = 0;
	struct nameset all = { 0 };
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0) {
			dot++;
			continue;
		}
		if (strcmp(e->d_name, "..") == 0) {
			dotdot++;
			continue;
		}
		int i;
		if (sscanf(e->d_name, "e%03d", &i) != 1 || i < 0 || i >= N || ns_has(&all, e->d_name)) {
			other++;
			continue;
		}
		ns_add(&all, e->d_name);
		unsigned char want = i % 10 == 3 ? DT_DIR : DT_REG;
		if (e->d_type != DT_UNKNOWN && e->d_type != want)
			badtype++;
	}
	is_int(all.n, N, "readdir lists every entry");
	is_int(other, 0, "readdir lists nothing else, nothing twice");
	ok(dot == 1 && dotdot == 1, "readdir lists . and .. once each");
	is_int(badtype, 0, "d_type matches the file type");

	/* telldir / seekdir */
	rewinddir(d);
	for (int i = 0; i < 40; i++)
		readdir(d);
	long pos = telldir(d);
	e = readdir(d);
	char here[256] = "";
	if (e)
		snprintf(here, sizeof(here), "%s", e->d_name);
	for (int i = 0; i < 100; i++)
		readdir(d);
	seekdir(d, pos);
	e = readdir(d);
	is_str(e ? e->d_name : NULL, here, "seekdir(telldir()) returns to the same entry");
	closedir(d);
	ns_free(&all);

	/* offsets from getdents stay valid: read, seek back, read the same */
	int fd = open("rd", O_RDONLY | O_DIRECTORY);
	struct nameset a = { 0 }, b = { 0 }, c = { 0 };
	int64_t off30 = 0, lo;
	int dups = 0;
	read_some(fd, &a, 30, &off30, &dups);
	read_some(fd, &b, -1, &lo, &dups);
	is_int(a.n + b.n, N, "first pass sees every entry");
	is_int(dups, 0, "first pass sees no entry twice");
	lseek(fd, off30, SEEK_SET);
	read_some(fd, &c, -1, &lo, &dups);
	int same = c.n == b.n;
	for (int i = 0; same && i < b.n; i++)
		same = ns_has(&c, b.v[i]);
	ok(same, "seeking back to a d_off gives the same remainder");
	ns_free(&c);

	/* change the directory at that point, then continue from the offset:
	 * remove 60 entries not yet read, remove 10 already read, add 50 */
	struct nameset removed = { 0 }, added = { 0 };
	for (int i = 0, k = 0; i < b.n && k < 60; i += 2, k++) {
		snprintf(name, sizeof(name), "rd/%s", b.v[i]);
		if (unlink(name) != 0 && rmdir(name) != 0)
			err++;
		ns_add(&removed, b.v[i]);
	}
	for (int i = 0; i < 10 && i < a.n; i++) {
		snprintf(name, sizeof(name), "rd/%s", a.v[i]);
		if (unlink(name) != 0 && rmdir(name) != 0)
			err++;
		ns_add(&removed, a.v[i]);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "rd/n%03d", i);
		err += write_file(name, "", 0) != 0;
		ns_add(&added, name + 3);
	}
	is_int(err, 0, "directory changed during the iteration");
	lseek(fd, off30, SEEK_SET);
	dups = 0;
	read_some(fd, &c, -1, &lo, &dups);
	int missing = 0, bogus = 0;
	for (int i = 0; i < b.n; i++)
		if (!ns_has(&removed, b.v[i]) && !ns_has(&c, b.v[i])) {
			if (missing++ < 5)
				diag("  untouched entry '%s' not seen", b.v[i]);
		}
	for (int i = 0; i < c.n; i++)
		if (!ns_has(&b, c.v[i]) && !ns_has(&added, c.v[i]) && !ns_has(&a, c.v[i]))
			bogus++;
	is_int(missing, 0, "every untouched entry after the offset is still seen");
	is_int(dups, 0, "no entry seen twice after the change");
	is_int(bogus, 0, "no entry that never existed");
	close(fd);
	ns_free(&a);
	ns_free(&b);
	ns_free(&c);
	ns_free(&removed);
	ns_free(&added);

	/* rm -r style: unlink each entry as it is read */
	is_ok(mkdir("rd2", 0755), "mkdir rd2");
	err = 0;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "rd2/entry-with-a-longer-name-%04d", i);
		err += write_file(name, "", 0) != 0;
	}
	is_int(err, 0, "300 entries created in rd2");
	fd = open("rd2", O_RDONLY | O_DIRECTORY);
	int seen = 0;
	dups = 0;
	struct nameset gone = { 0 };
	char dbuf[512];
	for (;;) {
		long n = syscall(SYS_getdents64, fd, dbuf, sizeof(dbuf));
		if (n <= 0)
			break;
		for (long p = 0; p < n;) {
			struct linux_dirent64 *de = (void *)(dbuf + p);
			p += de->d_reclen;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (ns_has(&gone, de->d_name)) {
				dups++;
				continue;
			}
			ns_add(&gone, de->d_name);
			seen++;
			if (unlinkat(fd, de->d_name, 0) != 0)
				err++;
		}
	}
	close(fd);
	ns_free(&gone);
	is_int(seen, N, "deleting while reading sees every entry");
	is_int(dups, 0, "deleting while reading sees no entry twice");
	is_int(err, 0, "every entry deleted");
	is_ok(rmdir("rd2"), "directory is empty afterwards");

	/* fsyncdir */
	fd = open("rd", O_RDONLY | O_DIRECTORY);
	is_ok(fsync(fd), "fsync on a directory");
	is_ok(fdatasync(fd), "fdatasync on a directory");
	close(fd);
}

/* --- statfs --------------------------------------------------------------- */

static void test_statfs(void)
{
	struct statvfs sv;
	diag("statfs");
	is_ok(statvfs(".", &sv), "statvfs");
	ok(sv.f_bsize > 0 && sv.f_frsize > 0, "block sizes nonzero");
	ok(sv.f_blocks > 0, "total blocks nonzero");
	ok(sv.f_bfree <= sv.f_blocks && sv.f_bavail <= sv.f_bfree, "free <= total, avail <= free");
	is_int(sv.f_namemax, 255, "name max 255");
	if (store_dir) {
		struct statvfs bs;
		if (is_ok(statvfs(store_dir, &bs), "statvfs of the store")) {
			double mine = (double)sv.f_bavail * sv.f_frsize;
			double theirs = (double)bs.f_bavail * bs.f_frsize;
			double tmine = (double)sv.f_blocks * sv.f_frsize;
			double ttheirs = (double)bs.f_blocks * bs.f_frsize;
			ok(mine > theirs * 0.9 - 256 * MiB && mine < theirs * 1.1 + 256 * MiB,
			   "available space is the store filesystem's");
			if (!(mine > theirs * 0.9 - 256 * MiB && mine < theirs * 1.1 + 256 * MiB))
				diag("  mount says %.0f bytes, store filesystem %.0f", mine, theirs);
			ok(tmine > ttheirs * 0.9 && tmine < ttheirs * 1.1, "total space is the store filesystem's");
		}
	}
}

/* --- xattrs --------------------------------------------------------------- */

static int list_has_exactly(const char *path, const char *const *want, int nwant)
{
	char list[4096];
	ssize_t n = llistxattr(path, list, sizeof(list));
	if (n < 0)
		return 0;
	int count = 0;
	for (ssize_t p = 0; p < n; p += (ssize_t)strlen(list + p) + 1) {
		const char *nm = list + p;
		if (strncmp(nm, "security.selinux", 16) == 0)
			continue;
		int found = 0;
		for (int i = 0; i < nwant; i++)
			found |= strcmp(nm, want[i]) == 0;
		if (!found) {
			diag("  unexpected name '%s'", nm);
			return 0;
		}
		count++;
	}
	return count == nwant;
}

static void test_xattr(void)
{
	char buf[8192];
	diag("extended attributes");
	is_ok(write_file("xa", "x", 1), "create xa");
	is_err(getxattr("xa", "user.a", buf, sizeof(buf)), ENODATA, "get of a missing attribute");
	is_ok(setxattr("xa", "user.a", "v1", 2, 0), "set user.a");
	is_int(getxattr("xa", "user.a", NULL, 0), 2, "size query");
	is_int(getxattr("xa", "user.a", buf, sizeof(buf)), 2, "get user.a");
	is_mem(buf, "v1", 2, "value v1");
	is_err(setxattr("xa", "user.a", "v2", 2, XATTR_CREATE), EEXIST, "XATTR_CREATE on an existing name");
	is_err(setxattr("xa", "user.b", "v2", 2, XATTR_REPLACE), ENODATA, "XATTR_REPLACE on a missing name");
	is_err(getxattr("xa", "user.b", buf, sizeof(buf)), ENODATA, "failed XATTR_REPLACE created nothing");
	is_ok(setxattr("xa", "user.a", "value2", 6, XATTR_REPLACE), "XATTR_REPLACE on an existing name");
	is_int(getxattr("xa", "user.a", buf, sizeof(buf)), 6, "get replaced value");
	is_mem(buf, "value2", 6, "value replaced");
	is_ok(setxattr("xa", "user.c", "new", 3, XATTR_CREATE), "XATTR_CREATE of a new name");
	is_ok(setxattr("xa", "user.a", "third", 5, 0), "plain set replaces");
	is_int(getxattr("xa", "user.a", buf, sizeof(buf)), 5, "get third value");
	is_err(getxattr("xa", "user.a", buf, 2), ERANGE, "get into a too-small buffer");
	is_ok(setxattr("xa", "user.empty", "", 0, 0), "set an empty value");
	is_int(getxattr("xa", "user.empty", buf, sizeof(buf)), 0, "empty value has size 0");
	unsigned char bin[4000];
	fill_random(bin, sizeof(bin));
	bin[0] = 0;
	bin[100] = 0;
	is_ok(setxattr("xa", "user.bin", bin, sizeof(bin), 0), "set a 4000-byte binary value");
	is_int(getxattr("xa", "user.bin", buf, sizeof(buf)), 4000, "get the binary value");
	is_mem(buf, bin, sizeof(bin), "binary value exact");
	const char *const names[] = { "user.a", "user.c", "user.empty", "user.bin" };
	ssize_t want = 0;
	for (int i = 0; i < 4; i++)
		want += (ssize_t)strlen(names[i]) + 1;
	is_int(listxattr("xa", NULL, 0), want, "listxattr size query");
	ok(list_has_exactly("xa", names, 4), "listxattr lists exactly the four names");
	is_err(listxattr("xa", buf, 3), ERANGE, "listxattr into a too-small buffer");
	is_ok(removexattr("xa", "user.c"), "remove user.c");
	is_err(getxattr("xa", "user.c", buf, sizeof(buf)), ENODATA, "removed attribute is gone");
	is_err(removexattr("xa", "user.c"), ENODATA, "remove of a missing attribute");
	const char *const names3[] = { "user.a", "user.empty", "user.bin" };
	ok(list_has_exactly("xa", names3, 3), "listxattr no longer lists user.c");
	is_ok(link("xa", "xa2"), "hard link xa2");
	is_int(getxattr("xa2", "user.a", buf, sizeof(buf)), 5, "attributes belong to the inode");
	is_ok(mkdir("xd", 0755), "mkdir xd");
	is_ok(setxattr("xd", "user.dir", "d", 1, 0), "set on a directory");
	is_int(getxattr("xd", "user.dir", buf, sizeof(buf)), 1, "get on a directory");
	is_ok(symlink("xa", "xl"), "symlink xl");
	is_err(lsetxattr("xl", "user.l", "l", 1, 0), EPERM, "user.* on a symlink");
	is_int(getxattr("xl", "user.a", buf, sizeof(buf)), 5, "getxattr follows the symlink");
	if (is_root) {
		is_ok(setxattr("xa", "trusted.t", "tv", 2, 0), "set trusted.t as root");
		is_int(getxattr("xa", "trusted.t", buf, sizeof(buf)), 2, "get trusted.t");
		is_mem(buf, "tv", 2, "trusted value");
		is_ok(setxattr("xa", "security.s", "sv", 2, 0), "set security.s as root");
		is_int(getxattr("xa", "security.s", buf, sizeof(buf)), 2, "get security.s");
		is_mem(buf, "sv", 2, "security value");
		const char *const n2[] = { "user.a", "user.empty", "user.bin", "trusted.t", "security.s" };
		ok(list_has_exactly("xa", n2, 5), "listxattr includes trusted.* and security.*");
		is_err(setxattr("xa", "trusted.t", "x", 1, XATTR_CREATE), EEXIST, "XATTR_CREATE on trusted.t");
		is_ok(removexattr("xa", "trusted.t"), "remove trusted.t");
		is_ok(removexattr("xa", "security.s"), "remove security.s");
		is_err(getxattr("xa", "trusted.t", buf, sizeof(buf)), ENODATA, "trusted.t gone");
		is_ok(lsetxattr("xl", "trusted.l", "l", 1, 0), "trusted.* on a symlink");
		is_int(lgetxattr("xl", "trusted.l", buf, sizeof(buf)), 1, "get trusted.* of a symlink");
	} else {
		skip("not root", "trusted.* and security.*");
	}
}

/* --- fallocate, holes ----------------------------------------------------- */

static void test_fallocate(void)
{
	struct stat st;
	diag("fallocate, punch hole, SEEK_DATA/SEEK_HOLE");
	int fd = open("fa", O_RDWR | O_CREAT | O_TRUNC, 0644);
	is_ok(fallocate(fd, 0, 0, 1 * MiB), "fallocate 1 MiB");
	fstat(fd, &st);
	is_int(st.st_size, 1 * MiB, "size grew to 1 MiB");
	is_ok(fallocate(fd, 0, 2 * MiB, 4096), "fallocate past EOF");
	fstat(fd, &st);
	is_int(st.st_size, 2 * MiB + 4096, "size grew to 2 MiB + 4096");
	is_ok(fallocate(fd, 0, 0, 4096), "fallocate inside the file");
	fstat(fd, &st);
	is_int(st.st_size, 2 * MiB + 4096, "size unchanged by an inner fallocate");
	char *buf = xmalloc(2 * MiB + 4096);
	drop_cache(fd);
	is_int(pread_full(fd, buf, 2 * MiB + 4096, 0), 2 * MiB + 4096, "read the allocated file");
	is_zero(buf, 2 * MiB + 4096, "allocated range reads as zeros");
	close(fd);

	/* punch a hole */
	size_t len = 2 * MiB;
	char *data = xmalloc(len);
	fill_random(data, len);
	fd = open("ph", O_RDWR | O_CREAT | O_TRUNC, 0644);
	is_int(pwrite_full(fd, data, len, 0), len, "write 2 MiB");
	is_ok(fsync(fd), "fsync");
	fstat(fd, &st);
	ok(st.st_blocks >= (blkcnt_t)(len / 512) * 9 / 10, "fstat st_blocks counts the data after fsync");
	if (st.st_blocks < (blkcnt_t)(len / 512) * 9 / 10)
		diag("  st_blocks %lld for %zu bytes", (long long)st.st_blocks, len);
	long long blocks = fresh_blocks(fd);
	ok(blocks >= (long long)(len / 512) * 9 / 10, "statx(AT_STATX_FORCE_SYNC) st_blocks counts the data");
	if (blocks < (long long)(len / 512) * 9 / 10)
		diag("  st_blocks %lld for %zu bytes", blocks, len);
	is_ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 512 * KiB, 1 * MiB),
	      "punch 1 MiB at 512 KiB");
	is_ok(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 4000),
	      "punch an unaligned 4000 bytes at 1000");
	memset(data + 512 * KiB, 0, 1 * MiB);
	memset(data + 1000, 0, 4000);
	fstat(fd, &st);
	is_int(st.st_size, len, "size unchanged by the punch");
	drop_cache(fd);
	is_int(pread_full(fd, buf, len, 0), len, "read after punch");
	is_mem(buf, data, len, "punched ranges read zeros, the rest intact");
	fsync(fd);
	long long after = fresh_blocks(fd);
	ok(after < blocks, "st_blocks dropped");
	if (after >= blocks)
		diag("  st_blocks %lld, was %lld", after, blocks);
	close(fd);
	fd = open("fa", O_RDONLY);
	is_err(fallocate(fd, 0, 0, 4096), EBADF, "fallocate on a read-only fd");
	close(fd);

	/* SEEK_DATA / SEEK_HOLE on a sparse file: data at [0,4K) and [8M,8M+4K) */
	fd = open("sp", O_RDWR | O_CREAT | O_TRUNC, 0644);
	fill_random(data, 4096);
	pwrite(fd, data, 4096, 0);
	pwrite(fd, data, 4096, 8 * MiB);
	is_ok(ftruncate(fd, 16 * MiB), "sparse file of 16 MiB");
	close(fd);
	fd = open("sp", O_RDONLY);
	is_int(lseek(fd, 0, SEEK_DATA), 0, "SEEK_DATA from 0 is 0");
	off_t h = lseek(fd, 0, SEEK_HOLE);
	ok(h >= 4096 && h <= 1 * MiB, "SEEK_HOLE from 0 is the end of the first data block");
	if (!(h >= 4096 && h <= 1 * MiB))
		diag("  got %lld", (long long)h);
	is_int(lseek(fd, 1 * MiB, SEEK_DATA), 8 * MiB, "SEEK_DATA from 1 MiB is 8 MiB");
	is_int(lseek(fd, 1 * MiB, SEEK_HOLE), 1 * MiB, "SEEK_HOLE inside a hole is the offset");
	h = lseek(fd, 8 * MiB, SEEK_HOLE);
	ok(h >= 8 * MiB + 4096 && h <= 9 * MiB, "SEEK_HOLE from 8 MiB ends the second data block");
	if (!(h >= 8 * MiB + 4096 && h <= 9 * MiB))
		diag("  got %lld", (long long)h);
	is_err(lseek(fd, 9 * MiB, SEEK_DATA), ENXIO, "SEEK_DATA in the trailing hole");
	is_int(lseek(fd, 12 * MiB, SEEK_HOLE), 12 * MiB, "SEEK_HOLE in the trailing hole");
	is_err(lseek(fd, 16 * MiB, SEEK_DATA), ENXIO, "SEEK_DATA at EOF");
	is_err(lseek(fd, 16 * MiB, SEEK_HOLE), ENXIO, "SEEK_HOLE at EOF");
	is_int(pread(fd, buf, 4096, 4 * MiB), 4096, "read inside a hole");
	is_zero(buf, 4096, "hole reads as zeros");
	is_int(pread(fd, buf, 4096, 8 * MiB), 4096, "read the second data block");
	is_mem(buf, data, 4096, "second data block intact");
	struct stat sst;
	fstat(fd, &sst);
	ok(sst.st_blocks * 512 < 4 * MiB, "sparse file uses little space");
	close(fd);
	fd = open("dense", O_RDWR | O_CREAT | O_TRUNC, 0644);
	fill_random(data, 300000);
	pwrite(fd, data, 300000, 0);
	close(fd);
	fd = open("dense", O_RDONLY);
	is_int(lseek(fd, 0, SEEK_HOLE), 300000, "SEEK_HOLE of a dense file is its size");
	is_int(lseek(fd, 123, SEEK_DATA), 123, "SEEK_DATA inside data is the offset");
	close(fd);
	free(data);
	free(buf);
}

/* --- copy_file_range ------------------------------------------------------ */

static void test_copy_range(void)
{
	diag("copy_file_range");
	size_t len = 3 * MiB + 1234;
	char *data = xmalloc(len), *back = xmalloc(len);
	fill_random(data, len);
	is_ok(mkdir("cr", 0755), "mkdir cr");
	is_ok(write_file("cr/src", data, len), "write the source");
	int in = open("cr/src", O_RDONLY);
	int out = open("cpdst", O_RDWR | O_CREAT | O_TRUNC, 0644);
	off_t ioff = 0, ooff = 0;
	size_t left = len;
	int err = 0;
	while (left > 0) {
		ssize_t n = copy_file_range(in, &ioff, out, &ooff, left, 0);
		if (n <= 0) {
			err = n < 0 ? errno : -1;
			break;
		}
		left -= (size_t)n;
	}
	is_int(err, 0, "copy_file_range of the whole file (other directory)");
	ok(ioff == (off_t)len && ooff == (off_t)len, "both offsets advanced by the length");
	struct stat st;
	fstat(out, &st);
	is_int(st.st_size, len, "destination size");
	drop_cache(out);
	is_int(pread_full(out, back, len, 0), len, "read the copy");
	is_mem(back, data, len, "copy identical");
	close(out);

	/* an unaligned range into the middle of an existing file */
	char *dst = xmalloc(2 * MiB);
	fill_random(dst, 2 * MiB);
	is_ok(write_file("cpmid", dst, 2 * MiB), "write a 2 MiB destination");
	out = open("cpmid", O_RDWR);
	ioff = 100001;
	ooff = 7;
	size_t want = 1 * MiB + 3;
	size_t done = 0;
	while (done < want) {
		ssize_t n = copy_file_range(in, &ioff, out, &ooff, want - done, 0);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	is_int(done, want, "copied 1 MiB + 3 from offset 100001 to offset 7");
	memcpy(dst + 7, data + 100001, want);
	fstat(out, &st);
	is_int(st.st_size, 2 * MiB, "destination size unchanged");
	drop_cache(out);
	is_int(pread_full(out, back, 2 * MiB, 0), 2 * MiB, "read the destination");
	is_mem(back, dst, 2 * MiB, "range copied, surrounding bytes intact");
	off_t eof = (off_t)len;
	ooff = 0;
	is_int(copy_file_range(in, &eof, out, &ooff, 100, 0), 0, "copy from EOF copies nothing");
	close(out);
	/* changing the source afterwards does not change the copy */
	int w = open("cr/src", O_WRONLY);
	pwrite(w, "CHANGED", 7, 0);
	close(w);
	drop_cache_path("cpdst");
	int r = open("cpdst", O_RDONLY);
	char b7[7];
	pread(r, b7, 7, 0);
	close(r);
	is_mem(b7, data, 7, "copy independent of later writes to the source");
	close(in);
	free(data);
	free(back);
	free(dst);
}

/* --- locks ---------------------------------------------------------------- */

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &fl);
}

static void test_locks(void)
{
	diag("fcntl record locks and flock between processes");
	is_ok(write_file("lk1", "0123456789", 10), "create lk1");
	int fd = open("lk1", O_RDWR);
	is_ok(setlk(fd, F_SETLK, F_WRLCK, 0, 100), "parent write-locks [0,100)");
	struct child c;
	int r = child_start(&c);
	if (r == 0) {
		int cfd = open("lk1", O_RDWR);
		int res, err;
		/* 1: conflicting write lock */
		res = setlk(cfd, F_SETLK, F_WRLCK, 50, 10);
		err = errno;
		child_send(c.from_child[1], res == -1 ? err : 0);
		/* 2: F_GETLK reports the parent's lock */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10 };
		res = fcntl(cfd, F_GETLK, &fl);
		child_send(c.from_child[1], res);
		child_send(c.from_child[1], fl.l_type);
		child_send(c.from_child[1], fl.l_pid);
		child_send(c.from_child[1], (int)fl.l_start);
		child_send(c.from_child[1], (int)fl.l_len);
		/* 3: read lock also conflicts */
		res = setlk(cfd, F_SETLK, F_RDLCK, 0, 1);
		err = errno;
		child_send(c.from_child[1], res == -1 ? err : 0);
		/* 4: no overlap, no conflict */
		res = setlk(cfd, F_SETLK, F_WRLCK, 100, 100);
		child_send(c.from_child[1], res == 0 ? 0 : errno);
		/* 5: parent unlocks; then the lock is free */
		child_recv(c.to_child[0]);
		res = setlk(cfd, F_SETLK, F_WRLCK, 50, 10);
		child_send(c.from_child[1], res == 0 ? 0 : errno);
		setlk(cfd, F_SETLK, F_UNLCK, 0, 0);
		/* 6: blocking lock waits for the parent */
		child_recv(c.to_child[0]);
		long long t0 = now_ns(CLOCK_MONOTONIC);
		res = setlk(cfd, F_SETLKW, F_WRLCK, 0, 10);
		long long waited = (now_ns(CLOCK_MONOTONIC) - t0) / 1000000;
		err = errno;
		setlk(cfd, F_SETLK, F_UNLCK, 0, 0);
		child_send(c.from_child[1], res == 0 ? (int)waited : -err);
		/* 7: lock released when the parent closes any fd of the file */
		child_recv(c.to_child[0]);
		res = setlk(cfd, F_SETLK, F_WRLCK, 0, 0);
		child_send(c.from_child[1], res == 0 ? 0 : errno);
		close(cfd);
		_exit(0);
	}
	is_int(child_recv(c.from_child[0]), EAGAIN, "conflicting F_SETLK fails with EAGAIN");
	is_int(child_recv(c.from_child[0]), 0, "F_GETLK succeeds");
	int type = child_recv(c.from_child[0]), pid = child_recv(c.from_child[0]);
	int start = child_recv(c.from_child[0]), len = child_recv(c.from_child[0]);
	ok(type == F_WRLCK && pid == getpid() && start == 0 && len == 100,
	   "F_GETLK reports the parent's write lock on [0,100)");
	if (!(type == F_WRLCK && pid == getpid() && start == 0 && len == 100))
		diag("  got type %d pid %d start %d len %d (parent %d)", type, pid, start, len, getpid());
	is_int(child_recv(c.from_child[0]), EAGAIN, "read lock under a write lock fails with EAGAIN");
	is_int(child_recv(c.from_child[0]), 0, "lock on a disjoint range succeeds");
	is_ok(setlk(fd, F_SETLK, F_UNLCK, 0, 100), "parent unlocks");
	child_send(c.to_child[1], 1);
	is_int(child_recv(c.from_child[0]), 0, "child locks after the unlock");
	is_ok(setlk(fd, F_SETLK, F_WRLCK, 0, 10), "parent locks [0,10) again");
	child_send(c.to_child[1], 1);
	msleep(300);
	is_ok(setlk(fd, F_SETLK, F_UNLCK, 0, 10), "parent unlocks after 300 ms");
	int waited = child_recv(c.from_child[0]);
	ok(waited >= 200, "F_SETLKW waited for the unlock");
	if (waited < 200)
		diag("  waited %d ms (negative: errno)", waited);
	is_ok(setlk(fd, F_SETLK, F_WRLCK, 0, 0), "parent locks the whole file");
	int fd2 = open("lk1", O_RDONLY);
	close(fd2);
	child_send(c.to_child[1], 1);
	is_int(child_recv(c.from_child[0]), 0, "closing another fd of the file released the lock");
	is_int(child_finish(&c), 0, "child exited cleanly");
	close(fd);

	/* shared read locks */
	fd = open("lk1", O_RDONLY);
	is_ok(setlk(fd, F_SETLK, F_RDLCK, 0, 0), "parent read-locks");
	r = child_start(&c);
	if (r == 0) {
		int cfd = open("lk1", O_RDONLY);
		child_send(c.from_child[1], setlk(cfd, F_SETLK, F_RDLCK, 0, 0) == 0 ? 0 : errno);
		_exit(0);
	}
	is_int(child_recv(c.from_child[0]), 0, "two read locks coexist");
	child_finish(&c);
	close(fd);

	/* flock */
	fd = open("lk1", O_RDWR);
	is_ok(flock(fd, LOCK_EX), "parent flock LOCK_EX");
	r = child_start(&c);
	if (r == 0) {
		int cfd = open("lk1", O_RDWR);
		int res = flock(cfd, LOCK_EX | LOCK_NB);
		child_send(c.from_child[1], res == 0 ? 0 : errno);
		res = flock(cfd, LOCK_SH | LOCK_NB);
		child_send(c.from_child[1], res == 0 ? 0 : errno);
		child_recv(c.to_child[0]);
		res = flock(cfd, LOCK_EX | LOCK_NB);
		child_send(c.from_child[1], res == 0 ? 0 : errno);
		flock(cfd, LOCK_UN);
		res = flock(cfd, LOCK_SH | LOCK_NB);
		child_send(c.from_child[1], res == 0 ? 0 : errno);
		child_recv(c.to_child[0]);
		_exit(0);
	}
	is_int(child_recv(c.from_child[0]), EWOULDBLOCK, "second LOCK_EX|LOCK_NB fails with EWOULDBLOCK");
	is_int(child_recv(c.from_child[0]), EWOULDBLOCK, "LOCK_SH|LOCK_NB under LOCK_EX fails with EWOULDBLOCK");
	is_ok(flock(fd, LOCK_UN), "parent unlocks");
	child_send(c.to_child[1], 1);
	is_int(child_recv(c.from_child[0]), 0, "child gets LOCK_EX after the unlock");
	is_int(child_recv(c.from_child[0]), 0, "child holds LOCK_SH");
	is_ok(flock(fd, LOCK_SH | LOCK_NB), "parent LOCK_SH beside the child's LOCK_SH");
	is_err(flock(fd, LOCK_EX | LOCK_NB), EWOULDBLOCK, "parent LOCK_EX under the child's LOCK_SH");
	child_send(c.to_child[1], 1);
	is_int(child_finish(&c), 0, "child exited cleanly");
	is_ok(flock(fd, LOCK_EX | LOCK_NB), "lock released by the child's exit");
	close(fd);
}

/* --- mmap ----------------------------------------------------------------- */

static void test_mmap(void)
{
	diag("shared writable mmap");
	size_t len = 3 * 4096 + 100;
	int fd = open("mm", O_RDWR | O_CREAT | O_TRUNC, 0644);
	is_ok(ftruncate(fd, (off_t)len), "size the file");
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!ok(m != MAP_FAILED, "mmap MAP_SHARED read/write")) {
		diag("  %s", strerror(errno));
		close(fd);
		return;
	}
	char *data = xmalloc(len), *back = xmalloc(len);
	fill_random(data, len);
	memcpy(m, data, len);
	is_ok(msync(m, len, MS_SYNC), "msync");
	int fd2 = open("mm", O_RDONLY);
	is_int(pread_full(fd2, back, len, 0), len, "read() through another fd");
	is_mem(back, data, len, "read() sees the mapped writes");
	is_int(pwrite(fd, "WRITTEN", 7, 4096), 7, "write() into the mapped range");
	is_mem(m + 4096, "WRITTEN", 7, "the mapping sees the write");
	memcpy(data + 4096, "WRITTEN", 7);
	memcpy(m + 8000, "mapped-no-msync", 15);
	memcpy(data + 8000, "mapped-no-msync", 15);
	munmap(m, len);
	close(fd);
	close(fd2);
	drop_cache_path("mm");
	fd2 = open("mm", O_RDONLY);
	is_int(pread_full(fd2, back, len, 0), len, "read after munmap and a cache drop");
	is_mem(back, data, len, "mapped writes reached the filesystem");
	close(fd2);
	free(data);
	free(back);
}

/* --- > 4 GiB -------------------------------------------------------------- */

static void test_big(void)
{
	char buf[64];
	struct stat st;
	diag("files over 4 GiB");
	int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
	is_int(pwrite(fd, "tail", 4, 5 * GiB), 4, "write at 5 GiB");
	is_int(pwrite(fd, "ABCDEFGH", 8, 4 * GiB - 4), 8, "write across the 4 GiB boundary");
	fstat(fd, &st);
	is_int(st.st_size, 5 * GiB + 4, "size 5 GiB + 4");
	close(fd);
	drop_cache_path("big");
	is_int(st_of("big").st_size, 5 * GiB + 4, "stat size 5 GiB + 4");
	fd = open("big", O_RDONLY);
	is_int(pread(fd, buf, 10, 5 * GiB), 4, "read at 5 GiB");
	is_mem(buf, "tail", 4, "data at 5 GiB");
	is_int(pread(fd, buf, 8, 4 * GiB - 4), 8, "read across 4 GiB");
	is_mem(buf, "ABCDEFGH", 8, "data across 4 GiB");
	is_int(pread(fd, buf, 16, 4 * GiB + 4096), 16, "read inside the hole");
	is_zero(buf, 16, "hole beyond 4 GiB reads zeros");
	is_int(lseek(fd, 4 * GiB + 1 * MiB, SEEK_DATA), 5 * GiB, "SEEK_DATA finds the block at 5 GiB");
	fstat(fd, &st);
	ok(st.st_blocks * 512 < 64 * MiB, "the sparse 5 GiB file uses little space");
	close(fd);
	is_ok(truncate("big", 4 * GiB + 2), "truncate to 4 GiB + 2");
	fd = open("big", O_RDONLY);
	is_int(pread(fd, buf, 10, 4 * GiB - 4), 6, "short read at the new EOF");
	is_mem(buf, "ABCDEF", 6, "data kept up to the new EOF");
	close(fd);
	is_ok(unlink("big"), "unlink big");
}

/* --- names ---------------------------------------------------------------- */

static void test_names(void)
{
	char n255[256], n255b[256], n256[257], path[600];
	struct stat st;
	diag("255-byte names of any byte");
	int k = 0;
	for (int c = 1; c <= 0xff; c++)
		if (c != '/')
			n255[k++] = (char)c;
	n255[k++] = 'x';
	n255[k] = 0;
	is_int(strlen(n255), 255, "name has 255 bytes");
	for (int i = 0; i < 255; i++)
		n255b[i] = n255[254 - i];
	n255b[255] = 0;
	memset(n256, 'n', 256);
	n256[256] = 0;

	is_ok(mkdir("nm", 0755), "mkdir nm");
	snprintf(path, sizeof(path), "nm/%s", n255);
	is_ok(write_file(path, "bytes", 5), "create a file with a 255-byte name of bytes 0x01..0xff");
	is_ok(stat(path, &st), "stat it");
	file_is(path, "bytes", "read it");
	DIR *d = opendir("nm");
	struct dirent *e;
	int found = 0;
	while (d && (e = readdir(d)))
		found += strlen(e->d_name) == 255 && memcmp(e->d_name, n255, 255) == 0;
	if (d)
		closedir(d);
	is_int(found, 1, "readdir returns the exact bytes");
	char path2[600];
	snprintf(path2, sizeof(path2), "nm/%s", n255b);
	is_ok(rename(path, path2), "rename to another 255-byte name");
	file_is(path2, "bytes", "renamed file readable");
	is_err(stat(path, &st), ENOENT, "old name gone");
	snprintf(path, sizeof(path), "nm/d%.254s", n255);
	is_ok(mkdir(path, 0755), "mkdir with a 255-byte name");
	is_ok(rmdir(path), "rmdir it");
	snprintf(path, sizeof(path), "nm/%s", n255);
	is_ok(symlink(n255, path), "symlink with a 255-byte name and target");
	char lb[300];
	ssize_t n = readlink(path, lb, sizeof(lb));
	ok(n == 255 && memcmp(lb, n255, 255) == 0, "readlink returns the exact bytes");
	is_ok(unlink(path), "unlink it");
	is_ok(unlink(path2), "unlink the file");

	snprintf(path, sizeof(path), "nm/%s", n256);
	is_err(open(path, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG, "create with a 256-byte name");
	is_err(mkdir(path, 0755), ENAMETOOLONG, "mkdir with a 256-byte name");
	is_err(stat(path, &st), ENAMETOOLONG, "lookup of a 256-byte name");
	is_err(symlink("x", path), ENAMETOOLONG, "symlink with a 256-byte name");
	is_err(mknod(path, S_IFIFO | 0644, 0), ENAMETOOLONG, "mknod with a 256-byte name");
	is_ok(write_file("nm/short", "s", 1), "create nm/short");
	is_err(rename("nm/short", path), ENAMETOOLONG, "rename to a 256-byte name");
	is_err(link("nm/short", path), ENAMETOOLONG, "link to a 256-byte name");
	snprintf(path, sizeof(path), "nm/%s", n255);
	is_ok(link("nm/short", path), "link to a 255-byte name");
	is_int(st_of("nm/short").st_nlink, 2, "nlink 2");
}

/* --- unlinked but open ---------------------------------------------------- */

static void test_unlinked(void)
{
	struct stat st;
	char buf[64] = { 0 };
	diag("an unlinked file stays usable while open");
	int fd = open("ul", O_RDWR | O_CREAT | O_TRUNC, 0644);
	is_int(write(fd, "hello", 5), 5, "write");
	is_ok(fsync(fd), "fsync");
	is_ok(unlink("ul"), "unlink while open");
	is_err(stat("ul", &st), ENOENT, "name is gone");
	fstat(fd, &st);
	is_int(st.st_nlink, 0, "fstat nlink 0");
	is_int(pread(fd, buf, sizeof(buf), 0), 5, "still readable");
	is_mem(buf, "hello", 5, "content intact");
	is_int(pwrite(fd, "again", 5, 4096), 5, "still writable");
	is_ok(fsync(fd), "fsync of an unlinked file");
	fstat(fd, &st);
	is_int(st.st_size, 4101, "size grew");
	drop_cache(fd);
	is_int(pread(fd, buf, 5, 4096), 5, "read back after a cache drop");
	is_mem(buf, "again", 5, "written data read back");
	is_ok(fchmod(fd, 0600), "fchmod of an unlinked file");
	is_ok(ftruncate(fd, 3), "ftruncate of an unlinked file");
	is_int(pread(fd, buf, sizeof(buf), 0), 3, "read after truncate");
	int fd2 = open("ul", O_RDWR | O_CREAT | O_EXCL, 0644);
	is_ok(fd2, "a new file of the same name");
	fstat(fd2, &st);
	struct stat st1;
	fstat(fd, &st1);
	ok(st.st_ino != st1.st_ino && st.st_size == 0, "new file is a different, empty inode");
	close(fd2);
	unlink("ul");
	DIR *d = opendir(".");
	struct dirent *e;
	int listed = 0;
	while (d && (e = readdir(d)))
		listed += strcmp(e->d_name, "ul") == 0;
	if (d)
		closedir(d);
	is_int(listed, 0, "unlinked file not listed");
	is_ok(close(fd), "close the last fd");
	is_err(stat("ul", &st), ENOENT, "gone after close");

	/* two links, one unlinked while open */
	fd = open("ul2", O_RDWR | O_CREAT | O_TRUNC, 0644);
	is_ok(link("ul2", "ul3"), "second link");
	is_ok(unlink("ul2"), "unlink the first");
	fstat(fd, &st);
	is_int(st.st_nlink, 1, "fstat nlink 1");
	is_int(write(fd, "via-fd", 6), 6, "write through the fd");
	close(fd);
	file_is("ul3", "via-fd", "the other link sees it");
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: posix DIR [STORE]\n");
		return 2;
	}
	store_dir = argc == 3 ? argv[2] : NULL;
	is_root = geteuid() == 0;
	umask(0);
	signal(SIGPIPE, SIG_IGN);
	char work[PATH_MAX];
	snprintf(work, sizeof(work), "%s/posix.XXXXXX", argv[1]);
	if (!mkdtemp(work)) {
		printf("Bail out! cannot make a directory in '%s': %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (chdir(work) != 0) {
		printf("Bail out! chdir '%s': %s\n", work, strerror(errno));
		return 1;
	}
	diag("working in %s", work);
	rng_state ^= (uint64_t)getpid();

	test_lookup();
	test_setattr();
	test_mknod();
	test_dirs();
	test_symlink();
	test_rename();
	test_links();
	test_open();
	test_rw();
	test_readdir();
	test_statfs();
	test_xattr();
	test_fallocate();
	test_copy_range();
	test_locks();
	test_mmap();
	test_big();
	test_names();
	test_unlinked();
	return tap_done();
}
