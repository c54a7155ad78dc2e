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

/* ---- a full listing of a subtree, as text ------------------------------- */

struct ent {
	char *path;
	uint64_t ino;
	char *text;
};

struct listing {
	struct keep_store *s;
	uint64_t view;
	bool dir_times; /* list directories' mtimes and link counts */
	struct ent *v;
	size_t n, cap;
};

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t content_hash(struct keep_store *s, uint64_t view, uint64_t ino,
			     uint64_t size)
{
	uint8_t buf[65536];
	uint64_t h = 0xcbf29ce484222325ull, off = 0;

	while (off < size) {
		size_t got = 0;
		if (keep_read(s, view, ino, off, sizeof(buf), buf, &got) || !got)
			return 0;
		h = fnv(buf, got, h);
		off += got;
	}
	return h;
}

static char *xattrs_of(struct keep_store *s, uint64_t view, uint64_t ino)
{
	char names[4096], *out = NULL;
	size_t len = 0, olen = 0;
	FILE *f = open_memstream(&out, &olen);

	if (keep_listxattr(s, view, ino, names, sizeof(names), &len) == 0)
		for (size_t i = 0; i < len; i += strlen(names + i) + 1) {
			char val[256];
			size_t vl = 0;
			keep_getxattr(s, view, ino, names + i, val, sizeof(val),
				      &vl);
			fprintf(f, "%s=%.*s;", names + i, (int)vl, val);
		}
	fclose(f);
	return out;
}

static void list_add(struct listing *l, const char *path,
		     const struct keep_attr *a)
{
	char target[4200] = "", *x, *text;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	if (S_ISLNK(a->mode))
		keep_readlink(l->s, l->view, a->ino, target, sizeof(target));
	x = xattrs_of(l->s, l->view, a->ino);
	bool dir = S_ISDIR(a->mode);
	if (asprintf(&text, "%o %u %u n%u s%" PRIu64 " m%" PRId64 " h%" PRIx64
			    " t'%s' x'%s'",
		     a->mode, a->uid, a->gid, dir && l->dir_times ? a->nlink : 0,
		     dir ? 0 : a->size, dir && !l->dir_times ? 0 : a->mtime_ns,
		     S_ISREG(a->mode) ? content_hash(l->s, l->view, a->ino,
						     a->size)
				      : 0,
		     target, x) < 0)
		abort();
	free(x);
	l->v[l->n++] = (struct ent){strdup(path), a->ino, text};
}

struct walk_ctx {
	struct listing *l;
	const char *dir;
};

static void list_dir(struct listing *l, uint64_t dir, const char *dpath);

static int list_cb(void *ctx, const char *name, const struct keep_attr *a,
		   uint64_t next)
{
	struct walk_ctx *w = ctx;
	char *p;

	(void)next;
	if (asprintf(&p, "%s/%s", w->dir, name) < 0)
		abort();
	list_add(w->l, p, a);
	if (S_ISDIR(a->mode))
		list_dir(w->l, a->ino, p);
	free(p);
	return 0;
}

static void list_dir(struct listing *l, uint64_t dir, const char *dpath)
{
	struct walk_ctx w = {l, dpath};
	keep_readdir(l->s, l->view, dir, 0, list_cb, &w);
}

static int cmp_ent(const void *x, const void *y)
{
	return strcmp(((const struct ent *)x)->path,
		      ((const struct ent *)y)->path);
}

/* The listing of the object at path (NULL or "" for the root) in view as
 * one string; hard links show as the first path of their inode.  Paths
 * under `skip` (if given) are left out. */
static char *listing(struct keep_store *s, uint64_t view, const char *path,
		     bool dir_times, const char *skip)
{
	struct listing l = {s, view, dir_times, NULL, 0, 0};
	struct keep_attr a;
	uint64_t cur = KEEP_ROOT_INO;
	char *out = NULL, *copy = strdup(path ? path : ""), *save = NULL;
	size_t olen = 0;

	keep_getattr(s, view, KEEP_ROOT_INO, &a);
	for (char *t = strtok_r(copy, "/", &save); t;
	     t = strtok_r(NULL, "/", &save)) {
		if (keep_lookup(s, view, cur, t, &a)) {
			free(copy);
			return strdup("(absent)");
		}
		cur = a.ino;
	}
	free(copy);
	list_add(&l, ".", &a);
	if (S_ISDIR(a.mode))
		list_dir(&l, a.ino, ".");
	qsort(l.v, l.n, sizeof(*l.v), cmp_ent);
	FILE *f = open_memstream(&out, &olen);
	size_t skiplen = skip ? strlen(skip) : 0;
	/* what is skipped does not count as a link either */
	size_t kept = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *rel = l.v[i].path[1] ? l.v[i].path + 2 : "";
		if (skip && !strncmp(rel, skip, skiplen) &&
		    (rel[skiplen] == '\0' || rel[skiplen] == '/')) {
			free(l.v[i].path);
			free(l.v[i].text);
			continue;
		}
		l.v[kept++] = l.v[i];
	}
	l.n = kept;
	for (size_t i = 0; i < l.n; i++) {
		const char *first = l.v[i].path;
		for (size_t k = 0; k < i; k++)
			if (l.v[k].ino == l.v[i].ino) {
				first = l.v[k].path;
				break;
			}
		fprintf(f, "%s: %s%s%s\n", l.v[i].path, l.v[i].text,
			first != l.v[i].path ? " link " : "",
			first != l.v[i].path ? first : "");
	}
	fclose(f);
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].path);
		free(l.v[i].text);
	}
	free(l.v);
	return out;
}

/* ---- helpers ------------------------------------------------------------- */

static uint64_t problems(struct keep_store *s)
{
	uint64_t n = 0;
	int rc = keep_check(s, 0, NULL, NULL, &n);

	if (rc)
		diag("check: %s", keep_strerror(rc));
	return rc ? 1 : n;
}

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

static long long rows(const char *store, const char *table)
{
	char path[4300], sql[200];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long n = -1;

	snprintf(path, sizeof(path), "%s/store.db", unit_path(store));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
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
	long long blobs = rows("whole", "blobs");

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
	is_int(rows("whole", "blobs"), blobs, "no blob was written");
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

static const char *const pool[] = {"a", "b", "c", "dd"};
#define NPOOL (sizeof(pool) / sizeof(pool[0]))

static void random_op(struct keep_store *s, uint64_t *dirs, size_t *ndirs)
{
	uint64_t d = dirs[unit_rand() % *ndirs],
		 d2 = dirs[unit_rand() % *ndirs];
	const char *n = pool[unit_rand() % NPOOL],
		   *n2 = pool[unit_rand() % NPOOL];
	struct keep_attr a, x;
	uint8_t buf[9000];
	int op = (int)(unit_rand() % 12);

	if (keep_getattr(s, KEEP_LIVE, d, &x) || !x.nlink || !S_ISDIR(x.mode))
		return;
	bool have = keep_lookup(s, KEEP_LIVE, d, n, &a) == 0;
	switch (op) {
	case 0:
		unit_mkfile(s, d, n, 0644, &a);
		break;
	case 1:
	case 2:
		if (have && S_ISREG(a.mode)) {
			size_t len = unit_rand() % sizeof(buf);
			unit_fill_random(buf, len);
			keep_write(s, a.ino, unit_rand() % 20000, buf, len);
		}
		break;
	case 3:
		if (have && S_ISREG(a.mode)) {
			x.size = unit_rand() % 12000;
			keep_setattr(s, a.ino, &x, KEEP_SET_SIZE, NULL);
		}
		break;
	case 4:
		keep_rename(s, d, n, d2, n2, 0);
		break;
	case 5:
		if (have && !S_ISDIR(a.mode))
			keep_link(s, a.ino, d2, n2, &x);
		break;
	case 6:
		if (have && !S_ISDIR(a.mode)) {
			keep_unlink(s, d, n);
			keep_forget(s, a.ino);
		}
		break;
	case 7:
		if (keep_mkdir(s, d, n, 0755, unit_cred(), &a) == 0 &&
		    *ndirs < 256)
			dirs[(*ndirs)++] = a.ino;
		break;
	case 8:
		if (have && S_ISDIR(a.mode)) {
			keep_rmdir(s, d, n);
			keep_forget(s, a.ino);
		}
		break;
	case 9:
		if (have) {
			x.mode = (uint32_t)(unit_rand() % 2 ? 0600 : 0755);
			keep_setattr(s, a.ino, &x, KEEP_SET_MODE, NULL);
		}
		break;
	case 10:
		if (have) {
			char v = (char)('0' + unit_rand() % 3);
			if (unit_rand() % 3)
				keep_setxattr(s, a.ino, "user.a", &v, 1, 0);
			else
				keep_removexattr(s, a.ino, "user.a");
		}
		break;
	case 11:
		keep_symlink(s, d, n, unit_rand() % 2 ? "t1" : "t2",
			     unit_cred(), &a);
		break;
	}
}

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
