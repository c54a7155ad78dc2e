/*
 * unit.h - helpers shared by the unit tests of core/.
 *
 * Each test program calls unit_begin() first: it makes a fresh directory
 * under $TMPDIR (default /tmp) with mkdtemp, where every store of the run
 * lives, and routes core's log through a sink that counts errors and
 * warnings (core logs those only for real problems, so a clean test
 * expects none).  unit_end() removes the directory.
 *
 * Children made with unit_child() report their results through a pipe,
 * so only the parent prints TAP lines.
 */
#ifndef KEEP_UNIT_H
#define KEEP_UNIT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "keep.h"
#include "tap.h"

static char unit_dir[4096];
static int unit_log_problems;

static inline void unit_log_sink(int level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= LOG_WARNING)
		unit_log_problems++;
	diag("core log (level %d): %s", level, msg);
}

static inline void unit_begin(const char *name)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(unit_dir, sizeof(unit_dir), "%s/keep-unit-%s-XXXXXX", tmp, name);
	if (!mkdtemp(unit_dir)) {
		printf("Bail out! mkdtemp '%s': %s\n", unit_dir, strerror(errno));
		exit(1);
	}
	keep_log_set_sink(unit_log_sink, NULL);
	diag("work directory %s", unit_dir);
}

static inline int unit_rm_one(const char *path, const struct stat *st, int type,
		       struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static inline void unit_rmtree(const char *path)
{
	nftw(path, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void unit_end(void)
{
	unit_rmtree(unit_dir);
}

/* unit_dir/name in one of a few rotating static buffers. */
static inline const char *unit_path(const char *name)
{
	static char bufs[8][4200];
	static unsigned next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", unit_dir, name);
	return b;
}

/* Create a store at unit_dir/name and open it for writing. */
static inline struct keep_store *unit_store(const char *name, uint32_t block_size)
{
	struct keep_init_opts o = {
		.block_size = block_size,
		.uid = (uint32_t)getuid(),
		.gid = (uint32_t)getgid(),
	};
	struct keep_store *s = NULL;
	int rc = keep_store_init(unit_path(name), &o);

	if (rc != 0) {
		printf("Bail out! keep_store_init '%s': %s\n", unit_path(name),
		       keep_strerror(rc));
		exit(1);
	}
	rc = keep_store_open(unit_path(name), KEEP_OPEN_WRITE, &s);
	if (rc != 0) {
		printf("Bail out! keep_store_open '%s': %s\n", unit_path(name),
		       keep_strerror(rc));
		exit(1);
	}
	return s;
}

static inline struct keep_store *unit_reopen(struct keep_store *s, const char *name,
				      unsigned flags)
{
	int rc = keep_store_close(s);

	if (rc != 0)
		diag("keep_store_close: %s", keep_strerror(rc));
	s = NULL;
	rc = keep_store_open(unit_path(name), flags, &s);
	if (rc != 0) {
		printf("Bail out! reopen '%s': %s\n", unit_path(name),
		       keep_strerror(rc));
		exit(1);
	}
	return s;
}

static inline const struct keep_cred *unit_cred(void)
{
	static struct keep_cred c;

	c.uid = (uint32_t)getuid();
	c.gid = (uint32_t)getgid();
	return &c;
}

static inline int unit_mkfile(struct keep_store *s, uint64_t parent, const char *name,
		       uint32_t perm, struct keep_attr *out)
{
	return keep_mknod(s, parent, name, S_IFREG | perm, 0, unit_cred(), out);
}

/* Create a regular file holding data; the inode number, 0 on failure. */
static inline uint64_t unit_file(struct keep_store *s, uint64_t parent,
			  const char *name, const void *data, size_t len)
{
	struct keep_attr a;
	int rc = unit_mkfile(s, parent, name, 0644, &a);

	if (rc != 0) {
		diag("create '%s': %s", name, keep_strerror(rc));
		return 0;
	}
	if (len) {
		rc = keep_write(s, a.ino, 0, data, len);
		if (rc != 0) {
			diag("write '%s': %s", name, keep_strerror(rc));
			return 0;
		}
	}
	return a.ino;
}

/* keep_commit; the commit's id, 0 on failure (diagnosed). */
static inline uint64_t unit_commit(struct keep_store *s)
{
	uint64_t id = 0;
	int rc = keep_commit(s, &id);

	if (rc)
		diag("commit: %s", keep_strerror(rc));
	return id;
}

/* A directory (0755); its inode number, 0 on failure (diagnosed). */
static inline uint64_t unit_mkdir(struct keep_store *s, uint64_t parent,
				  const char *name)
{
	struct keep_attr a;
	int rc = keep_mkdir(s, parent, name, 0755, unit_cred(), &a);

	if (rc)
		diag("mkdir %s: %s", name, keep_strerror(rc));
	return rc ? 0 : a.ino;
}

/* Inode number of parent/name in view, 0 if the lookup fails. */
static inline uint64_t unit_ino(struct keep_store *s, uint64_t view, uint64_t parent,
			 const char *name)
{
	struct keep_attr a;

	return keep_lookup(s, view, parent, name, &a) == 0 ? a.ino : 0;
}

/*
 * Does file ino in view hold exactly want[0..len)?  Checks the size, a read
 * of the whole file in one call, a read in odd-sized pieces, and a read
 * past the end.  Returns 1 when all agree; diagnoses the first difference.
 */
static inline int unit_same(struct keep_store *s, uint64_t view, uint64_t ino,
		     const void *want, size_t len)
{
	struct keep_attr a;
	uint8_t *buf;
	size_t n = 0, off, piece = 4093;
	int rc;

	rc = keep_getattr(s, view, ino, &a);
	if (rc != 0) {
		diag("getattr ino %" PRIu64 " view %" PRIu64 ": %s", ino, view,
		     keep_strerror(rc));
		return 0;
	}
	if (a.size != len) {
		diag("size %" PRIu64 ", want %zu", a.size, len);
		return 0;
	}
	buf = malloc(len + 100);
	if (!buf)
		abort();
	rc = keep_read(s, view, ino, 0, len + 100, buf, &n);
	if (rc != 0 || n != len) {
		diag("read all: rc %d (%s), nread %zu, want %zu", rc,
		     keep_strerror(rc), n, len);
		free(buf);
		return 0;
	}
	if (memcmp(buf, want, len) != 0) {
		for (off = 0; off < len; off++)
			if (buf[off] != ((const uint8_t *)want)[off])
				break;
		diag("content differs first at byte %zu (got 0x%02x, want 0x%02x)",
		     off, buf[off], ((const uint8_t *)want)[off]);
		free(buf);
		return 0;
	}
	memset(buf, 0xa5, len);
	for (off = 0; off < len; off += piece) {
		size_t want_n = len - off < piece ? len - off : piece;

		rc = keep_read(s, view, ino, off, piece, buf + off, &n);
		if (rc != 0 || n != want_n) {
			diag("read piece at %zu: rc %d, nread %zu, want %zu", off,
			     rc, n, want_n);
			free(buf);
			return 0;
		}
	}
	if (memcmp(buf, want, len) != 0) {
		diag("content read in pieces differs");
		free(buf);
		return 0;
	}
	rc = keep_read(s, view, ino, (uint64_t)len + 7, 10, buf, &n);
	free(buf);
	if (rc != 0 || n != 0) {
		diag("read past end: rc %d, nread %zu", rc, n);
		return 0;
	}
	return 1;
}

static inline int unit_same_str(struct keep_store *s, uint64_t view, uint64_t ino,
			 const char *want)
{
	return unit_same(s, view, ino, want, strlen(want));
}

/* ---- directory listings ------------------------------------------------ */

struct unit_list {
	char buf[8192];
	size_t count;
	int stop_after; /* > 0: stop the walk after this many entries */
	uint64_t last_off;
};

static inline int unit_list_cb(void *ctx, const char *name, const struct keep_attr *a,
			uint64_t next_off)
{
	struct unit_list *l = ctx;
	size_t used = strlen(l->buf);

	(void)a;
	if (l->stop_after > 0 && l->count == (size_t)l->stop_after)
		return 1;
	snprintf(l->buf + used, sizeof(l->buf) - used, "%s%s", used ? "," : "",
		 name);
	l->count++;
	l->last_off = next_off;
	return 0;
}

static inline int unit_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort a comma-separated list in place. */
static inline void unit_sort_list(char *list)
{
	char *v[1024], *copy, *save = NULL, *t;
	size_t n = 0, i, used = 0;

	copy = strdup(list);
	if (!copy)
		abort();
	for (t = strtok_r(copy, ",", &save); t && n < 1024;
	     t = strtok_r(NULL, ",", &save))
		v[n++] = t;
	qsort(v, n, sizeof(v[0]), unit_cmp_str);
	list[0] = '\0';
	for (i = 0; i < n; i++)
		used += (size_t)sprintf(list + used, "%s%s", i ? "," : "", v[i]);
	free(copy);
}

/* Sorted comma-separated names of directory dir in view ("" if empty,
 * "ERR:<rc>" on failure). */
static inline const char *unit_ls(struct keep_store *s, uint64_t view, uint64_t dir)
{
	static struct unit_list l;
	int rc;

	memset(&l, 0, sizeof(l));
	rc = keep_readdir(s, view, dir, 0, unit_list_cb, &l);
	if (rc != 0) {
		snprintf(l.buf, sizeof(l.buf), "ERR:%d", rc);
		return l.buf;
	}
	unit_sort_list(l.buf);
	return l.buf;
}

/* Sorted comma-separated names in the real directory unit_dir/name. */
static inline const char *unit_ls_fs(const char *name)
{
	static char buf[8192];
	DIR *d = opendir(unit_path(name));
	struct dirent *e;
	size_t used = 0;

	buf[0] = '\0';
	if (!d)
		return "ERR";
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
					 used ? "," : "", e->d_name);
	}
	closedir(d);
	unit_sort_list(buf);
	return buf;
}

#define is_str(got, want, ...)                                             \
	do {                                                               \
		const char *g_ = (got), *w_ = (want);                      \
		if (!ok(g_ && strcmp(g_, w_) == 0, __VA_ARGS__))           \
			diag("  got '%s', want '%s'", g_ ? g_ : "(null)", w_); \
	} while (0)

/* ---- randomness -------------------------------------------------------- */

static uint64_t unit_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t unit_rand(void)
{
	uint64_t x = unit_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	unit_rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* The seed comes from $KEEP_TEST_SEED if set; it is printed either way. */
static inline uint64_t unit_seed(uint64_t fallback)
{
	const char *e = getenv("KEEP_TEST_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : fallback;

	unit_rng_state = seed ? seed : 1;
	diag("random seed %" PRIu64 " (set KEEP_TEST_SEED to repeat)", seed);
	return seed;
}

static inline void unit_fill_random(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(unit_rand() >> 56);
}

/* Text-like data that zstd compresses well. */
static inline void unit_fill_text(uint8_t *p, size_t n)
{
	static const char *words[] = { "keep ", "store ", "commit ", "blob ",
				       "view ", "inode ", "{\"id\": ", "42, ",
				       "\n" };
	size_t i = 0;

	while (i < n) {
		const char *w = words[unit_rand() % 9];
		size_t k = strlen(w);

		if (k > n - i)
			k = n - i;
		memcpy(p + i, w, k);
		i += k;
	}
}

/* ---- child processes --------------------------------------------------- */

/*
 * Run fn in a forked child.  fn fills out[0..n) with result codes; the
 * parent gets them back.  Returns 0, or -1 if the child failed to report
 * (crashed, or exited without writing).
 */
static inline int unit_child(void (*fn)(void *arg, long long *out, int n), void *arg,
		      long long *out, int n)
{
	int fds[2], status = 0;
	pid_t pid;
	ssize_t got = 0, r;

	if (pipe(fds) != 0)
		abort();
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		long long res[64];
		int i;

		close(fds[0]);
		for (i = 0; i < 64; i++)
			res[i] = -12345;
		fn(arg, res, n);
		r = write(fds[1], res, sizeof(res[0]) * (size_t)n);
		(void)r;
		fflush(stdout);
		_exit(0);
	}
	close(fds[1]);
	while ((size_t)got < sizeof(out[0]) * (size_t)n) {
		r = read(fds[0], (char *)out + got,
			 sizeof(out[0]) * (size_t)n - (size_t)got);
		if (r <= 0)
			break;
		got += r;
	}
	close(fds[0]);
	waitpid(pid, &status, 0);
	if ((size_t)got != sizeof(out[0]) * (size_t)n) {
		diag("child did not report (status 0x%x)", status);
		return -1;
	}
	return 0;
}

#endif
