/*
 * test_crash.c - crash safety and the consistency check.
 *
 * A child process opens the store, commits, changes more without
 * committing and dies without closing; the parent finds exactly the
 * committed state and a clean check.  A second round kills a writer at
 * random moments.  Then keep_check must find damage done to the database
 * behind core's back.
 */
#include <poll.h>
#include <signal.h>
#include <time.h>

#include "unit_sql.h"

static uint32_t bs = KEEP_MIN_BLOCK_SIZE;

static void gen(uint64_t seed, uint8_t *p, size_t n)
{
	uint64_t saved = unit_rng_state;

	unit_rng_state = seed * 0x9e3779b97f4a7c15ull + 7;
	unit_fill_random(p, n);
	unit_rng_state = saved;
}

static size_t gen_len(uint64_t seed)
{
	return (size_t)(seed * 2654435761u % (3 * KEEP_MIN_BLOCK_SIZE + 500));
}

static int check_clean(struct keep_store *s, const char *what)
{
	uint64_t problems = 99;
	int rc = keep_check(s, 1, NULL, NULL, &problems);

	if (rc != 0 || problems != 0)
		diag("%s: keep_check rc %d, %" PRIu64 " problems", what, rc,
		     problems);
	return rc == 0 && problems == 0;
}

/* ---- die without closing ------------------------------------------------ */

static void crash_child(void *arg, long long *out, int n)
{
	struct keep_store *s = NULL;
	uint8_t data[3 * KEEP_MIN_BLOCK_SIZE + 5];
	struct keep_attr a;
	uint64_t f, victim, c1 = 0, c2 = 0;

	(void)n;
	out[0] = keep_store_open(arg, KEEP_OPEN_WRITE, &s);
	if (out[0] != 0)
		return;
	gen(1, data, sizeof(data));
	f = unit_file(s, KEEP_ROOT_INO, "committed", data, sizeof(data));
	keep_mkdir(s, KEEP_ROOT_INO, "dir", 0755, unit_cred(), &a);
	keep_setxattr(s, f, "user.k", "v1", 2, 0);
	victim = unit_file(s, KEEP_ROOT_INO, "victim", "still open", 10);
	out[1] = keep_commit(s, &c1);
	/* unlinked while "open": committed with no name, never forgotten */
	out[2] = keep_unlink(s, KEEP_ROOT_INO, "victim");
	out[3] = keep_commit(s, &c2);
	/* and more that is never committed */
	memset(data + 100, 'U', 5000);
	out[4] = keep_write(s, f, 100, data + 100, 5000);
	out[5] = unit_file(s, KEEP_ROOT_INO, "uncommitted", "u", 1) != 0;
	out[6] = keep_rename(s, KEEP_ROOT_INO, "dir", KEEP_ROOT_INO, "dir2", 0);
	out[7] = keep_setxattr(s, f, "user.k", "v2", 2, 0);
	out[8] = (long long)c1;
	out[9] = (long long)c2;
	out[10] = (long long)victim;
	out[11] = (long long)f;
	out[12] = getpid();
	/* unit_child now reports and calls _exit(0): no close, no commit */
}

static void t_crash(void)
{
	struct keep_store *s = unit_store("crash", KEEP_MIN_BLOCK_SIZE);
	const char *path = unit_path("crash");
	uint8_t data[3 * KEEP_MIN_BLOCK_SIZE + 5];
	long long r[13];
	struct keep_attr a;
	char v[8];
	size_t len = 0;
	int i, good = 1;

	keep_store_close(s);
	if (unit_child(crash_child, (void *)path, r, 13) != 0) {
		ok(0, "crashing child reported");
		return;
	}
	for (i = 0; i < 8; i++)
		good &= (i == 5 ? r[i] == 1 : r[i] == 0);
	ok(good, "child: open, commit, unlink, commit, more changes");
	is_int(keep_store_lock_owner(path), 0,
	       "the dead child does not own the lock");
	s = NULL;
	is_int(keep_store_open(path, KEEP_OPEN_WRITE, &s), 0,
	       "the store opens for writing after the crash");
	if (!s)
		return;
	/* reaping the orphan may itself make a commit */
	ok(keep_last_commit(s) >= (uint64_t)r[9],
	   "the last commit (%" PRIu64 ") is at least the child's c2 (%lld)",
	   keep_last_commit(s), r[9]);
	gen(1, data, sizeof(data));
	ok(unit_same(s, (uint64_t)r[9], (uint64_t)r[11], data, sizeof(data)),
	   "view c2 holds the committed data");
	gen(1, data, sizeof(data));
	ok(unit_same(s, KEEP_LIVE, (uint64_t)r[11], data, sizeof(data)),
	   "committed data is there, the uncommitted write is not");
	ok(keep_getxattr(s, KEEP_LIVE, (uint64_t)r[11], "user.k", v, sizeof(v),
			 &len) == 0 &&
		   len == 2 && memcmp(v, "v1", 2) == 0,
	   "the committed xattr value");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "uncommitted", &a),
	       ENOENT, "the uncommitted file is not there");
	is_int(unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "dir") != 0, 1,
	       "the uncommitted rename did not happen");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "dir2", &a), ENOENT,
	       "no dir2");
	is_int(keep_getattr(s, KEEP_LIVE, (uint64_t)r[10], &a), ENOENT,
	       "recovery reaped the inode unlinked while open");
	ok(unit_same_str(s, (uint64_t)r[8], (uint64_t)r[10], "still open"),
	   "which view c1 still has");
	ok(check_clean(s, "after the crash"), "keep_check reports 0 problems");
	is_str(unit_ls(s, KEEP_LIVE, KEEP_ROOT_INO), "committed,dir",
	       "the root lists the committed entries");
	keep_store_close(s);
}

/* ---- killed at random moments ------------------------------------------ */

struct record {
	uint64_t id, seed;
};

static void writer(const char *path, int fd)
{
	struct keep_store *s = NULL;
	uint8_t buf[3 * KEEP_MIN_BLOCK_SIZE + 500];
	uint64_t f, seed;
	struct keep_attr a;

	if (keep_store_open(path, KEEP_OPEN_WRITE, &s) != 0)
		_exit(3);
	f = unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "f");
	if (!f)
		f = unit_file(s, KEEP_ROOT_INO, "f", NULL, 0);
	for (seed = (uint64_t)getpid() << 20;; seed++) {
		struct record rec = { 0, seed };
		size_t len = gen_len(seed);
		char name[32];

		gen(seed, buf, len);
		a.size = 0;
		keep_setattr(s, f, &a, KEEP_SET_SIZE, &a);
		keep_write(s, f, 0, buf, len);
		snprintf(name, sizeof(name), "t%" PRIu64, seed % 7);
		if (keep_unlink(s, KEEP_ROOT_INO, name) != 0)
			keep_mknod(s, KEEP_ROOT_INO, name, S_IFREG | 0600, 0,
				   unit_cred(), &a);
		if (keep_commit(s, &rec.id) != 0)
			_exit(4);
		if (write(fd, &rec, sizeof(rec)) != sizeof(rec))
			_exit(5);
		/* change more without committing */
		keep_write(s, f, len / 2, "garbage", 7);
	}
}

static void t_kill_loop(int rounds)
{
	struct keep_store *s = unit_store("kill", KEEP_MIN_BLOCK_SIZE);
	const char *path = unit_path("kill");
	int round, bad = 0, commits = 0;

	keep_store_close(s);
	for (round = 0; round < rounds; round++) {
		struct record rec, last = { 0, 0 };
		int fds[2], status, have = 0;
		pid_t pid;
		uint8_t want[3 * KEEP_MIN_BLOCK_SIZE + 500];
		long delay = 5 + (long)(unit_rand() % 60);
		struct timespec ts = { 0, delay * 1000000L };

		if (pipe(fds) != 0)
			abort();
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			writer(path, fds[1]);
			_exit(0);
		}
		close(fds[1]);
		/* every other round waits for the first commit, so kills land
		 * both while opening and in the middle of the work */
		if (round % 2) {
			struct pollfd pfd = { .fd = fds[0], .events = POLLIN };

			if (poll(&pfd, 1, 10000) == 1 &&
			    read(fds[0], &rec, sizeof(rec)) == sizeof(rec)) {
				last = rec;
				have = 1;
				commits++;
			}
		}
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		while (read(fds[0], &rec, sizeof(rec)) == sizeof(rec)) {
			last = rec;
			have = 1;
			commits++;
		}
		close(fds[0]);
		if (WIFEXITED(status)) {
			diag("round %d: writer exited with %d", round,
			     WEXITSTATUS(status));
			bad++;
			continue;
		}
		s = NULL;
		if (keep_store_open(path, KEEP_OPEN_WRITE, &s) != 0) {
			diag("round %d: the store does not open", round);
			bad++;
			continue;
		}
		if (have) {
			uint64_t f = unit_ino(s, last.id, KEEP_ROOT_INO, "f");

			gen(last.seed, want, gen_len(last.seed));
			if (!unit_same(s, last.id, f, want,
				       gen_len(last.seed))) {
				diag("round %d: view %" PRIu64
				     " lost its content",
				     round, last.id);
				bad++;
			}
			if (keep_last_commit(s) < last.id) {
				diag("round %d: last commit %" PRIu64
				     " < reported %" PRIu64,
				     round, keep_last_commit(s), last.id);
				bad++;
			}
		}
		if (!check_clean(s, "after a kill"))
			bad++;
		keep_store_close(s);
	}
	is_int(bad, 0,
	       "%d rounds of SIGKILL at random moments (%d commits): every "
	       "reported commit is intact and the store checks clean",
	       rounds, commits);
}

/* ---- the consistency check finds damage ------------------------------ */

struct problems {
	int lines;
};

static void count_problem(void *ctx, const struct keep_problem *problem)
{
	struct problems *p = ctx;

	p->lines++;
	diag("problem: %s", problem->what);
}

static void make_damaged(const char *name, struct keep_store **out)
{
	struct keep_store *s = unit_store(name, KEEP_MIN_BLOCK_SIZE);
	uint8_t data[2 * KEEP_MIN_BLOCK_SIZE];
	struct keep_attr a;
	uint64_t f;

	gen(99, data, sizeof(data));
	f = unit_file(s, KEEP_ROOT_INO, "data", data, sizeof(data));
	keep_mkdir(s, KEEP_ROOT_INO, "dir", 0755, unit_cred(), &a);
	unit_file(s, a.ino, "victim", NULL, 0);
	keep_link(s, f, a.ino, "link", &a);
	keep_setxattr(s, f, "user.x", "x", 1, 0);
	keep_symlink(s, KEEP_ROOT_INO, "sym", "data", unit_cred(), &a);
	keep_store_close(s);
	*out = NULL;
}

static void expect_corrupt(const char *name, int data, const char *what)
{
	struct keep_store *s = NULL;
	struct problems p = { 0 };
	uint64_t problems = 0;
	int rc;

	rc = keep_store_open(unit_path(name), KEEP_OPEN_RDONLY, &s);
	if (rc != 0) {
		ok(rc == KEEP_E_CORRUPT,
		   "%s: open refuses the damaged store (%d)", what, rc);
		return;
	}
	rc = keep_check(s, data, count_problem, &p, &problems);
	is_int(rc, KEEP_E_CORRUPT, "%s: keep_check finds it", what);
	ok(problems > 0, "%s: %" PRIu64 " problems reported", what, problems);
	is_int(p.lines, problems, "%s: one callback line per problem", what);
	keep_store_close(s);
}

static void t_check(void)
{
	struct keep_store *s;
	struct problems p = { 0 };
	uint64_t problems = 99, f;
	uint8_t buf[64];
	size_t n;
	int rc;

	make_damaged("clean", &s);
	rc = keep_store_open(unit_path("clean"), KEEP_OPEN_RDONLY, &s);
	is_int(rc, 0, "open a clean store");
	if (rc == 0) {
		is_int(keep_check(s, 0, count_problem, &p, &problems), 0,
		       "keep_check on a clean store is 0");
		is_int(problems, 0, "with 0 problems");
		is_int(keep_check(s, 1, count_problem, &p, &problems), 0,
		       "keep_check with data on a clean store is 0");
		is_int(p.lines, 0, "and the callback is never called");
		is_int(keep_check(s, 1, NULL, NULL, NULL), 0,
		       "keep_check with NULL callback and count");
		keep_store_close(s);
	}
	is_int(unit_log_problems, 0, "no errors or warnings were logged so far");

	/* damaged content: a blob whose bytes changed */
	make_damaged("flip", &s);
	is_int(unit_sql("flip", "UPDATE blobs SET data = zeroblob(length(data)) "
				"WHERE id = (SELECT min(id) FROM blobs)"),
	       1, "tamper: zero one blob's bytes");
	if (keep_store_open(unit_path("flip"), KEEP_OPEN_RDONLY, &s) == 0) {
		f = unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "data");
		rc = 0;
		for (n = 0; n < 2 && rc == 0; n++) {
			size_t got;

			rc = keep_read(s, KEEP_LIVE, f, n * bs, sizeof(buf),
				       buf, &got);
		}
		is_int(rc, EIO, "reading the damaged block is EIO");
		keep_store_close(s);
	}
	expect_corrupt("flip", 1, "changed blob bytes");

	/* a block refers to a blob that is gone */
	make_damaged("noblob", &s);
	is_int(unit_sql("noblob",
			"DELETE FROM blobs WHERE id = (SELECT min(id) FROM blobs)"),
	       1, "tamper: delete a blob row");
	expect_corrupt("noblob", 0, "missing blob");

	/* a directory entry whose inode is gone */
	make_damaged("noinode", &s);
	is_int(unit_sql("noinode",
			"DELETE FROM inodes WHERE ino = (SELECT ino FROM dirents "
			"WHERE name = CAST('victim' AS BLOB) OR name = 'victim')"),
	       1, "tamper: delete a dirent's target inode");
	expect_corrupt("noinode", 0, "dangling directory entry");

	/* a wrong link count */
	make_damaged("nlink", &s);
	is_int(unit_sql("nlink",
			"UPDATE inodes SET nlink = 7 WHERE died IS NULL AND ino = "
			"(SELECT ino FROM dirents WHERE name = CAST('link' AS "
			"BLOB) OR name = 'link')"),
	       1, "tamper: wrong nlink");
	expect_corrupt("nlink", 0, "wrong link count");

	/* an entry that makes a directory cycle */
	make_damaged("cycle", &s);
	is_int(unit_sql("cycle",
			"UPDATE dirents SET parent = ino WHERE name = CAST('dir' "
			"AS BLOB) OR name = 'dir'"),
	       1, "tamper: a directory inside itself");
	expect_corrupt("cycle", 0, "directory cycle");
}

/* ---- the dirty limit forces commits ------------------------------------ */

static void t_dirty_limit(void)
{
	struct keep_store *s = unit_store("dirty", KEEP_MIN_BLOCK_SIZE);
	size_t len = 2 << 20;
	uint8_t *data = malloc(len);
	uint64_t before, f;
	int rc;

	keep_commit(s, NULL);
	before = keep_last_commit(s);
	keep_store_set_dirty_limit(s, 256 << 10);
	unit_fill_random(data, len);
	f = unit_file(s, KEEP_ROOT_INO, "f", NULL, 0);
	for (rc = 0, len = 0; len < (2u << 20) && rc == 0; len += 64 << 10)
		rc = keep_write(s, f, len, data + len, 64 << 10);
	is_int(rc, 0, "write 2 MiB with a 256 KiB dirty limit");
	ok(keep_last_commit(s) > before,
	   "the dirty limit forced a commit (%" PRIu64 " -> %" PRIu64 ")",
	   before, keep_last_commit(s));
	ok(unit_same(s, KEEP_LIVE, f, data, len), "the data reads back");
	keep_store_close(s);
	free(data);
}

int main(void)
{
	const char *r = getenv("KEEP_KILL_ROUNDS");

	unit_begin("crash");
	unit_seed(4242);
	signal(SIGPIPE, SIG_IGN);
	t_crash();
	t_kill_loop(r ? atoi(r) : 20);
	t_dirty_limit();
	t_check();
	unit_end();
	return tap_done();
}
