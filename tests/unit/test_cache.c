/*
 * test_cache.c - more live inodes than core's inode cache holds.
 *
 * 20,000 files are created and changed in one commit (past the cache's
 * bound of 16,384), read back, committed, and read back again after the
 * store is reopened: every change must have reached the rows, the clean
 * entries the cache dropped must read back from them, and the store must
 * check clean.
 */
#include "unit.h"

enum { N = 20000 };

static int count_cb(void *ctx, const char *name, const struct keep_attr *a,
		    uint64_t next)
{
	(void)name;
	(void)next;
	uint64_t *n = ctx;
	if (a->size == 8)
		(*n)++;
	return 0;
}

int main(void)
{
	struct keep_store *s;
	struct keep_attr d, a;
	char name[32];
	int bad = 0;

	unit_begin("cache");
	s = unit_store("st", 0);
	is_int(keep_mkdir(s, KEEP_ROOT_INO, "d", 0755, unit_cred(), &d), 0, "mkdir");
	for (int i = 0; i < N && !bad; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		if (keep_mknod(s, d.ino, name, S_IFREG | 0600, 0, unit_cred(), &a) ||
		    keep_write(s, a.ino, 0, "12345678", 8))
			bad++;
	}
	is_int(bad, 0, "%d files created and written in one commit", N);
	/* change the first ones again: their entries are long gone from
	 * the cache unless they are dirty */
	bad = 0;
	for (int i = 0; i < 100; i++) {
		struct keep_attr in = {.mode = 0644};
		snprintf(name, sizeof(name), "f%05d", i);
		if (keep_lookup(s, KEEP_LIVE, d.ino, name, &a) ||
		    keep_setattr(s, a.ino, &in, KEEP_SET_MODE, NULL))
			bad++;
	}
	is_int(bad, 0, "the first 100 changed again");
	is_int(keep_getattr(s, KEEP_LIVE, d.ino, &a), 0, "directory attributes");
	is_int(a.mtime_ns >= d.mtime_ns, 1, "directory mtime moved forward");

	uint64_t c;
	is_int(keep_commit(s, &c), 0, "commit");
	s = unit_reopen(s, "st", KEEP_OPEN_WRITE);
	uint64_t n = 0;
	is_int(keep_readdir(s, KEEP_LIVE, d.ino, 0, count_cb, &n), 0, "list");
	is_int(n, N, "every file is there with its 8 bytes");
	bad = 0;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		if (keep_lookup(s, c, d.ino, name, &a) || a.size != 8 ||
		    (a.mode & 07777) != (i < 100 ? 0644 : 0600))
			bad++;
	}
	is_int(bad, 0, "the commit holds every size and mode");
	uint64_t problems = 1;
	is_int(keep_check(s, 0, NULL, NULL, &problems), 0, "the store checks clean");
	is_int(problems, 0, "no problems");
	is_int(keep_store_close(s), 0, "close");
	is_int(unit_log_problems, 0, "no errors or warnings logged");
	unit_end();
	return tap_done();
}
