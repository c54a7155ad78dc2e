/*
 * test_restore.c - keep_restore: the whole tree and single paths, in
 * place and elsewhere (`to`), objects moved or linked out of the path,
 * deleted trees coming back, the pre-restore snapshot and undoing a
 * restore with it, refusals that change nothing, no data written, and a
 * randomized check: after each of many restores between random
 * workloads, the restored path reads exactly as in FROM (full listings
 * compared), everything else is unchanged, and fsck finds nothing.
 */
#include <stdbool.h>

#include "unit_sql.h"
#include "unit_tree.h"

/* ---- helpers ------------------------------------------------------------- */

static int restore(struct keep_store *s, uint64_t from, const char *path,
		   const char *to, const char *pre,
		   struct keep_restore_result *res)
{
	const char *paths[1] = {path};
	struct keep_restore_req req = {
	    .from = from,
	    .paths = path ? paths : NULL,
	    .npaths = path ? 1 : 0,
	    .to = to,
	    .pre_snapshot = pre,
	};
	return keep_restore(s, &req, NULL, NULL, res);
}

/* ---- the whole tree ------------------------------------------------------ */

static void t_whole(void)
{
	struct keep_store *s = unit_store("whole", 4096);
	struct keep_restore_result res;
	struct keep_snapshot snap;
	uint8_t big[20000];

	unit_fill_random(big, sizeof(big));
	uint64_t d = unit_mkdir(s, KEEP_ROOT_INO, "state");
	uint64_t f = unit_file(s, d, "memory.jsonl", big, sizeof(big));
	unit_file(s, d, "mcp.json", "{\"a\":1}\n", 8);
	keep_link(s, f, KEEP_ROOT_INO, "hard", NULL);
	keep_setxattr(s, f, "user.k", "v1", 2, 0);
	struct keep_attr sl;
	keep_symlink(s, d, "link", "memory.jsonl", unit_cred(), &sl);
	ok(keep_snapshot_create(s, "good", KEEP_ORIGIN_MANUAL, &snap) == 0,
	   "snapshot 'good'");
	char *before = listing(s, snap.commit, NULL, true, NULL);

	/* damage: overwrite, truncate, xattr, rename, new files, rm -rf */
	keep_write(s, f, 100, "XXXX", 4);
	struct keep_attr x = {.size = 50};
	keep_setattr(s, f, &x, KEEP_SET_SIZE, NULL);
	keep_setxattr(s, f, "user.k", "v2", 2, 0);
	keep_rename(s, d, "mcp.json", KEEP_ROOT_INO, "moved.json", 0);
	unit_file(s, KEEP_ROOT_INO, "new.txt", "new", 3);
	unit_commit(s);
	keep_unlink(s, d, "memory.jsonl");
	keep_unlink(s, d, "link");
	keep_unlink(s, KEEP_ROOT_INO, "hard");
	keep_forget(s, f);
	is_int(keep_rmdir(s, KEEP_ROOT_INO, "state"), 0, "rm -rf state");
	keep_forget(s, d);
	unit_commit(s);
	char *damaged = listing(s, KEEP_LIVE, NULL, true, NULL);
	long long blobs = unit_rows("whole", "blobs");

	int rc = restore(s, snap.commit, NULL, NULL, "pre-1", &res);
	is_int(rc, 0, "restore the whole tree");
	ok(res.changes > 0 && res.commit > snap.commit && res.pre.id > 0,
	   "it made a commit (%" PRIu64 ") and a snapshot", res.commit);
	is_int(res.pre.origin, KEEP_ORIGIN_PRE_RESTORE,
	       "the snapshot's origin is pre-restore");
	is_int(res.pre.commit, res.commit - 1,
	       "it names the commit before the restore");
	char *after = listing(s, KEEP_LIVE, NULL, true, NULL);
	is_str(after, before, "the live tree is the snapshot's, exactly");
	is_int(unit_ino(s, KEEP_LIVE, unit_ino(s, KEEP_LIVE, 1, "state"),
			"memory.jsonl"),
	       (long long)f, "a deleted file comes back under its number");
	char *pre = listing(s, res.pre.commit, NULL, true, NULL);
	is_str(pre, damaged, "the pre-restore snapshot holds the state before");
	is_int((long long)problems(s), 0, "fsck: clean");
	keep_store_close(s);
	is_int(unit_rows("whole", "blobs"), blobs, "no blob was written");
	s = unit_reopen(NULL, "whole", KEEP_OPEN_WRITE);
	char *again = listing(s, KEEP_LIVE, NULL, true, NULL);
	is_str(again, before, "the restore survives a reopen");

	/* again: nothing to do */
	rc = restore(s, snap.commit, NULL, NULL, "pre-2", &res);
	ok(rc == 0 && res.changes == 0 && res.commit == 0 && res.pre.id == 0,
	   "restoring it again changes nothing and takes no snapshot");
	is_int(keep_snapshot_get(s, "pre-2", &snap), ENOENT,
	       "no 'pre-2' snapshot");

	/* undo the restore */
	struct keep_snapshot p1;
	keep_snapshot_get(s, "pre-1", &p1);
	rc = restore(s, p1.commit, NULL, NULL, "pre-3", &res);
	is_int(rc, 0, "undo: restore the pre-restore snapshot");
	char *undone = listing(s, KEEP_LIVE, NULL, true, NULL);
	is_str(undone, damaged, "the damaged state is back");
	is_int((long long)problems(s), 0, "fsck: clean");
	free(before);
	free(damaged);
	free(after);
	free(pre);
	free(again);
	free(undone);
	keep_store_close(s);
}

/* ---- single paths ------------------------------------------------------- */

static void t_paths(void)
{
	struct keep_store *s = unit_store("paths", 4096);
	struct keep_restore_result res;
	struct keep_snapshot snap;
	char name[32];

	uint64_t d = unit_mkdir(s, KEEP_ROOT_INO, "d");
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		unit_file(s, d, name, name, strlen(name));
	}
	uint64_t sub = unit_mkdir(s, d, "sub");
	uint64_t g = unit_file(s, sub, "g", "gee", 3);
	keep_link(s, g, KEEP_ROOT_INO, "g-outside", NULL);
	keep_snapshot_create(s, "s1", KEEP_ORIGIN_MANUAL, &snap);

	/* change every file; restore one */
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		uint64_t ino = unit_ino(s, KEEP_LIVE, d, name);
		keep_write(s, ino, 0, "changed", 7);
	}
	char *others = listing(s, KEEP_LIVE, NULL, false, "d/f07");
	is_int(restore(s, snap.commit, "d/f07", NULL, NULL, &res), 0,
	       "restore d/f07");
	char *one = listing(s, KEEP_LIVE, "d/f07", true, NULL);
	char *want = listing(s, snap.commit, "d/f07", true, NULL);
	is_str(one, want, "d/f07 is as in s1");
	char *others2 = listing(s, KEEP_LIVE, NULL, false, "d/f07");
	is_str(others2, others, "nothing else changed");
	free(one);
	free(want);
	free(others);
	free(others2);

	/* a file moved out of the path since: the restore makes a copy */
	keep_rename(s, sub, "g", KEEP_ROOT_INO, "g-moved", 0);
	keep_write(s, g, 0, "GEE", 3);
	others = listing(s, KEEP_LIVE, NULL, false, "d/sub");
	is_int(restore(s, snap.commit, "d/sub", NULL, NULL, &res), 0,
	       "restore d/sub after its file moved out");
	one = listing(s, KEEP_LIVE, "d/sub", true, NULL);
	want = listing(s, snap.commit, "d/sub", true, NULL);
	is_str(one, want, "d/sub is as in s1");
	others2 = listing(s, KEEP_LIVE, NULL, false, "d/sub");
	is_str(others2, others, "the moved file and its other link are "
				"untouched");
	ok(unit_ino(s, KEEP_LIVE, sub, "g") != g,
	   "the restored file is a new object");
	free(one);
	free(want);
	free(others);
	free(others2);
	is_int((long long)problems(s), 0, "fsck: clean");

	/* --to: next to the current one */
	is_int(restore(s, snap.commit, "d", "d-old", NULL, &res), 0,
	       "restore d to d-old");
	one = listing(s, KEEP_LIVE, "d-old", true, NULL);
	want = listing(s, snap.commit, "d", true, NULL);
	is_str(one, want, "d-old is s1's d");
	ok(unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "d") == d,
	   "d is still there");
	free(one);
	free(want);
	is_int((long long)problems(s), 0, "fsck: clean");

	/* a removed directory tree comes back in place */
	keep_unlink(s, sub, "g");
	keep_rmdir(s, d, "sub");
	keep_forget(s, sub);
	is_int(restore(s, snap.commit, "d/sub", NULL, NULL, &res), 0,
	       "restore a removed directory");
	one = listing(s, KEEP_LIVE, "d/sub", true, NULL);
	want = listing(s, snap.commit, "d/sub", true, NULL);
	is_str(one, want, "it is back, as in s1");
	free(one);
	free(want);

	/* a file over a directory, and a directory over a file */
	uint64_t f3 = unit_ino(s, KEEP_LIVE, d, "f03");
	keep_unlink(s, d, "f03");
	keep_forget(s, f3);
	uint64_t nd = unit_mkdir(s, d, "f03");
	unit_file(s, nd, "inside", "x", 1);
	is_int(restore(s, snap.commit, "d/f03", NULL, NULL, &res), 0,
	       "restore a file where a directory now is");
	one = listing(s, KEEP_LIVE, "d/f03", true, NULL);
	want = listing(s, snap.commit, "d/f03", true, NULL);
	is_str(one, want, "the file is back");
	free(one);
	free(want);
	is_int((long long)problems(s), 0, "fsck: clean");

	/* refusals change nothing */
	char *all = listing(s, KEEP_LIVE, NULL, true, NULL);
	uint64_t last = keep_last_commit(s);
	is_int(restore(s, snap.commit, "nope", NULL, NULL, &res), ENOENT,
	       "a path not in FROM: ENOENT");
	is_int(res.bad, KEEP_RESTORE_NOT_IN_FROM, "... said to be not in FROM");
	is_int(restore(s, snap.commit, "d/f01", "d-old", NULL, &res), EEXIST,
	       "--to an existing path: EEXIST");
	is_int(res.bad, KEEP_RESTORE_TO_EXISTS, "... said to exist");
	is_int(restore(s, snap.commit, "d/f01", "no/where", NULL, &res),
	       ENOENT, "--to under a missing directory: ENOENT");
	is_int(res.bad, KEEP_RESTORE_TO_NO_PARENT, "... said so");
	is_int(restore(s, snap.commit, "d/../d", NULL, NULL, &res), EINVAL,
	       "'..' in a path: EINVAL");
	is_int(restore(s, 999999, NULL, NULL, NULL, &res), ENOENT,
	       "an unknown commit: ENOENT");
	is_int(restore(s, snap.commit, "d/f01", ".snapshots", NULL, &res),
	       EPERM, "--to the reserved name: EPERM");
	is_int(restore(s, snap.commit, NULL, NULL, "s1", &res), EEXIST,
	       "a taken snapshot name: EEXIST");
	is_int(res.bad, KEEP_RESTORE_SNAPSHOT, "... said to be the snapshot");
	keep_rename(s, KEEP_ROOT_INO, "d", KEEP_ROOT_INO, "d2", 0);
	unit_commit(s);
	free(all);
	all = listing(s, KEEP_LIVE, NULL, true, NULL);
	last = keep_last_commit(s);
	is_int(restore(s, snap.commit, "d/f01", NULL, NULL, &res), ENOENT,
	       "its directory gone from the live tree: ENOENT");
	is_int(res.bad, KEEP_RESTORE_NO_PARENT, "... said so");
	char *still = listing(s, KEEP_LIVE, NULL, true, NULL);
	is_str(still, all, "the refusals changed nothing");
	is_int((long long)keep_last_commit(s), (long long)last,
	       "and committed nothing");
	free(still);
	free(all);
	keep_store_close(s);
}

/* ---- random ---------------------------------------------------------------- */

/* A random path of view (a directory or not), "" for the root. */
static char *random_path(struct keep_store *s, uint64_t view)
{
	char *path = strdup("");
	uint64_t cur = KEEP_ROOT_INO;

	while (unit_rand() % 3) {
		const char *n = pool[unit_rand() % NPOOL];
		struct keep_attr a;
		if (keep_lookup(s, view, cur, n, &a))
			break;
		char *p;
		if (asprintf(&p, "%s%s%s", path, *path ? "/" : "", n) < 0)
			abort();
		free(path);
		path = p;
		if (!S_ISDIR(a.mode))
			break;
		cur = a.ino;
	}
	return path;
}

static void t_random(void)
{
	struct keep_store *s = unit_store("random", 4096);
	uint64_t dirs[256] = {KEEP_ROOT_INO}, commits[64];
	size_t ndirs = 1, ncommits = 0;
	int bad_path = 0, bad_rest = 0, bad_fsck = 0, done = 0, to_done = 0;
	int whole = 0, refused = 0;

	for (int round = 0; round < 120; round++) {
		for (int i = 0; i < 40; i++)
			random_op(s, dirs, &ndirs);
		if (ncommits < 64)
			commits[ncommits++] = unit_commit(s);
		uint64_t from = commits[unit_rand() % ncommits];
		char *path = random_path(s, from);
		bool to = unit_rand() % 5 == 0 && *path;
		char copy[32];
		snprintf(copy, sizeof(copy), "copy-%d", round);
		const char *dest = to ? copy : path;
		struct keep_restore_result res;

		/* outside the path, the directory holding it changes its
		 * times and link count: those are not compared */
		char *others = listing(s, KEEP_LIVE, NULL, false,
				       *dest ? dest : NULL);
		int rc = restore(s, from, path, to ? dest : NULL, NULL, &res);
		if (rc) {
			/* only a missing directory on the way may refuse */
			if (rc != ENOENT && rc != ENOTDIR)
				diag("round %d: restore %s: %s", round, path,
				     keep_strerror(rc));
			refused++;
			free(others);
			free(path);
			continue;
		}
		done++;
		to_done += to;
		whole += !*path;
		char *got = listing(s, KEEP_LIVE, dest, true, NULL);
		char *want = listing(s, from, path, true, NULL);
		if (strcmp(got, want)) {
			if (bad_path++ < 3)
				diag("round %d: '%s' from %" PRIu64
				     "\ngot:\n%s\nwant:\n%s",
				     round, path, from, got, want);
		}
		if (*dest) {
			char *others2 = listing(s, KEEP_LIVE, NULL, false, dest);
			if (strcmp(others, others2) && bad_rest++ < 3)
				diag("round %d: outside '%s' changed:\nbefore:"
				     "\n%s\nafter:\n%s",
				     round, dest, others, others2);
			free(others2);
		}
		if (problems(s) && bad_fsck++ < 3)
			diag("round %d: fsck after restoring '%s'", round, path);
		free(got);
		free(want);
		free(others);
		free(path);
	}
	diag("%d restores (%d whole tree, %d elsewhere), %d refused", done,
	     whole, to_done, refused);
	ok(done >= 60, "at least 60 random restores made (%d)", done);
	is_int(bad_path, 0, "each restored path reads as in FROM");
	is_int(bad_rest, 0, "nothing outside the path changed");
	is_int(bad_fsck, 0, "fsck found nothing after any of them");
	s = unit_reopen(s, "random", KEEP_OPEN_RDONLY);
	is_int((long long)problems(s), 0, "fsck after reopening: clean");
	keep_store_close(s);
}

int main(void)
{
	unit_begin("restore");
	unit_seed(7);
	t_whole();
	t_paths();
	t_random();
	is_int(unit_log_problems, 0, "core logged no errors or warnings");
	unit_end();
	return tap_done();
}
