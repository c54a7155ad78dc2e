/*
 * test_fault.c - what a failure in the middle of a commit leaves behind.
 *
 * Uses core's fault-injection seam (KEEP_FAULT, read once per process):
 * the second real commit of this process fails as if the disk had.  The
 * store must refuse every later change with KEEP_E_READONLY (EROFS for
 * applications), and once reopened hold exactly the first commit, clean.
 */
#include "unit.h"

int main(void)
{
	struct keep_store *s;
	struct keep_attr a;
	uint64_t id = 0, c1 = 0;
	char buf[16];
	size_t n;

	/* before the store reads it: commit #2 of this process fails */
	setenv("KEEP_FAULT", "commit:2", 1);
	unit_begin("fault");
	s = unit_store("st", 0);

	ok(unit_file(s, KEEP_ROOT_INO, "kept", "first", 5) != 0, "file written");
	is_int(keep_commit(s, &c1), 0, "first commit succeeds");

	uint64_t ino = unit_file(s, KEEP_ROOT_INO, "lost", "second", 6);
	ok(ino != 0, "second file written");
	is_int(keep_write(s, ino, 6, "!", 1), 0, "and appended to");
	int before = unit_log_problems;
	is_int(keep_commit(s, &id), KEEP_E_READONLY, "failing commit says read-only");
	ok(unit_log_problems > before, "the failure is logged");
	is_int(id, c1, "the last commit is still the first one");
	is_int(keep_errno(KEEP_E_READONLY), EROFS, "applications see EROFS");

	is_int(keep_mknod(s, KEEP_ROOT_INO, "more", S_IFREG | 0644, 0,
			  unit_cred(), &a),
	       KEEP_E_READONLY, "a later create is refused");
	is_int(keep_commit(s, NULL), KEEP_E_READONLY, "a later commit too");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "kept", &a), 0,
	       "committed data stays readable");

	is_int(keep_store_close(s), KEEP_E_READONLY, "close reports the failure");
	s = NULL;
	is_int(keep_store_open(unit_path("st"), KEEP_OPEN_WRITE, &s), 0,
	       "the store opens again");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "kept", &a), 0,
	       "the first commit's file is there");
	is_int(keep_read(s, KEEP_LIVE, a.ino, 0, sizeof(buf), buf, &n), 0,
	       "and reads");
	ok(n == 5 && memcmp(buf, "first", 5) == 0, "with its content");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "lost", &a), ENOENT,
	       "nothing of the failed commit is there");
	uint64_t problems = 1;
	is_int(keep_check(s, 1, NULL, NULL, &problems), 0, "the store checks clean");
	is_int(problems, 0, "no problems");
	is_int(keep_store_close(s), 0, "closes cleanly");
	unit_end();
	return tap_done();
}
