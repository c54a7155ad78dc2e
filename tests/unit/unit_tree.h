/*
 * unit_tree.h - whole-tree helpers shared by the unit tests that compare
 * views: a full listing of a subtree as text (attributes, content hash,
 * symlink target, xattrs, hard links), fsck's problem count, and a random
 * operation on a tree of a few names.
 */
#ifndef KEEP_UNIT_TREE_H
#define KEEP_UNIT_TREE_H

#include <stdbool.h>

#include "unit.h"

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

static inline uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static inline uint64_t content_hash(struct keep_store *s, uint64_t view, uint64_t ino,
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

static inline char *xattrs_of(struct keep_store *s, uint64_t view, uint64_t ino)
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

static inline void list_add(struct listing *l, const char *path,
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

static inline void list_dir(struct listing *l, uint64_t dir,
			    const char *dpath);

static inline int list_cb(void *ctx, const char *name, const struct keep_attr *a,
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

static inline void list_dir(struct listing *l, uint64_t dir, const char *dpath)
{
	struct walk_ctx w = {l, dpath};
	keep_readdir(l->s, l->view, dir, 0, list_cb, &w);
}

static inline int cmp_ent(const void *x, const void *y)
{
	return strcmp(((const struct ent *)x)->path,
		      ((const struct ent *)y)->path);
}

/* The listing of the object at path (NULL or "" for the root) in view as
 * one string; hard links show as the first path of their inode.  Paths
 * under `skip` (if given) are left out. */
static inline char *listing(struct keep_store *s, uint64_t view, const char *path,
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

static inline uint64_t problems(struct keep_store *s)
{
	uint64_t n = 0;
	int rc = keep_check(s, 0, NULL, NULL, &n);

	if (rc)
		diag("check: %s", keep_strerror(rc));
	return rc ? 1 : n;
}

/* ---- random operations ----------------------------------------------------- */

static const char *const pool[] __attribute__((unused)) = {"a", "b", "c", "dd"};
#define NPOOL (sizeof(pool) / sizeof(pool[0]))

static inline void random_op(struct keep_store *s, uint64_t *dirs, size_t *ndirs)
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

#endif /* KEEP_UNIT_TREE_H */
