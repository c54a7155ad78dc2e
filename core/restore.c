/*
 * restore.c - making the live tree, or parts of it, what a view was
 * (keep_restore; the contract is in keep.h).
 *
 * Design notes:
 *
 *  1. One path at a time.  For a path P restored to a place D (P itself,
 *     or `to`): S is the set of objects reachable from P in the view F,
 *     with F's entries between them; L is the set reachable from what D
 *     holds now.  Every object of S gets an image in the live tree: its
 *     own inode number when the live tree has it nowhere but inside L
 *     (or not at all), a new number otherwise (it was moved or linked
 *     out of P since, and must not change there).  Then every directory
 *     of L and every image directory gets exactly the images of F's
 *     entries, D names the image of P's object, and link counts are
 *     counted again for everything touched.  What was in L and is not an
 *     image keeps only the names it has outside L, if any.
 *  2. Rows.  An image with its own number gets F's rows back through
 *     db_restore.c's end-and-copy statements, which touch only what
 *     differs; a new number gets a copy of every row F has.  No blob is
 *     written: rows point at the blobs F's rows point at.  ctime is the
 *     restore's time, as for every change to an inode (no tool can set
 *     it, and a backup program relies on it moving); every other
 *     attribute is F's.
 *  3. One commit.  Pending changes are committed first, so the restore's
 *     transaction holds nothing else; a refusal or failure found while
 *     applying rolls that transaction back and leaves the store as it
 *     was, still writable.  The pre-restore snapshot names the commit
 *     before the restore and is written in the restore's transaction.
 *  4. Every change is recorded as an event for the file system layer
 *     (kernel caches), handed over after the locks are released.
 *  5. The inode cache holds nothing dirty once pending changes are
 *     committed, so entries of touched inodes are simply dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keep_i.h"

#define RESERVED_NAME ".snapshots"

struct robj {
	uint64_t ino;	  /* in F */
	uint64_t img;	  /* in the live tree, after */
	uint64_t fparent; /* directories: the parent in F */
	uint32_t mode;
	bool live; /* ino has a live row now */
};

struct redge {
	uint64_t dir, child; /* F's numbers */
	char *name;
};

struct rev {
	int kind;
	uint64_t ino, parent;
	char *name;
};

struct rs {
	struct keep_store *s;
	struct rq *q;
	uint64_t from;
	int64_t now;

	/* the path being restored */
	struct robj *objs;
	size_t nobjs, capobjs;
	struct umap fidx; /* F ino -> index + 1 */
	struct redge *edges;
	size_t nedges, capedges;
	struct umap lset; /* live subtree: ino -> 1 file, 2 directory */
	uint64_t *ldirs;
	size_t nldirs, capldirs;

	/* the whole restore */
	struct umap touched; /* inodes whose links are counted again */
	uint64_t *tinos;
	size_t ntinos, captinos;
	struct umap changed; /* inodes with OBJECT events */
	struct umap fromf;   /* images that have F's attributes */
	struct rev *evs;
	size_t nevs, capevs;
	int bad;
};

#define IDX(p) ((size_t)(uintptr_t)(p))

static void path_reset(struct rs *r)
{
	for (size_t i = 0; i < r->nedges; i++)
		free(r->edges[i].name);
	r->nobjs = r->nedges = r->nldirs = 0;
	umap_free(&r->fidx, false);
	umap_free(&r->lset, false);
}

static void rs_free(struct rs *r)
{
	path_reset(r);
	free(r->objs);
	free(r->edges);
	free(r->ldirs);
	umap_free(&r->touched, false);
	umap_free(&r->changed, false);
	umap_free(&r->fromf, false);
	free(r->tinos);
	for (size_t i = 0; i < r->nevs; i++)
		free(r->evs[i].name);
	free(r->evs);
	db_rq_close(r->q);
}

static int touch(struct rs *r, uint64_t ino)
{
	void **slot;
	bool fresh;
	int rc = umap_put(&r->touched, ino, &slot, &fresh);

	if (!rc && fresh) {
		rc = GROW(r->tinos, r->captinos, r->ntinos);
		if (!rc)
			r->tinos[r->ntinos++] = ino;
	}
	if (!rc)
		ns_drop(r->s, ino);
	return rc;
}

static int event(struct rs *r, int kind, uint64_t ino, uint64_t parent,
		 const char *name)
{
	int rc = GROW(r->evs, r->capevs, r->nevs);
	struct rev *e;

	if (rc)
		return rc;
	e = &r->evs[r->nevs];
	e->kind = kind;
	e->ino = ino;
	e->parent = parent;
	e->name = NULL;
	if (name && !(e->name = strdup(name)))
		return KEEP_E_NOMEM;
	r->nevs++;
	return 0;
}

static int object_changed(struct rs *r, uint64_t ino)
{
	void **slot;
	bool fresh;
	int rc = umap_put(&r->changed, ino, &slot, &fresh);

	if (!rc && fresh)
		rc = event(r, KEEP_RESTORED_OBJECT, ino, 0, NULL);
	return rc;
}

/* ---- paths ---------------------------------------------------------------- */

/* The next component of *p ('/'-separated, empty ones skipped) into
 * name; 0 at the end, 1 with a component, or an errno. */
static int next_name(const char **p, char name[KEEP_NAME_MAX + 1])
{
	const char *s = *p, *e;
	size_t len;

	while (*s == '/')
		s++;
	if (!*s)
		return 0;
	e = strchr(s, '/');
	len = e ? (size_t)(e - s) : strlen(s);
	if (len > KEEP_NAME_MAX)
		return ENAMETOOLONG;
	memcpy(name, s, len);
	name[len] = '\0';
	*p = s + len;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return EINVAL;
	return 1;
}

/*
 * Walk path in view (KEEP_LIVE or F).  With `all_but_last`, stop before
 * the last component and put it in last (empty for the root).  *ino gets
 * the object reached.  Returns 0, ENOENT, ENOTDIR, EINVAL, ENAMETOOLONG.
 */
static int walk(struct rs *r, uint64_t view, const char *path,
		bool all_but_last, uint64_t *ino, char last[KEEP_NAME_MAX + 1])
{
	char name[KEEP_NAME_MAX + 1];
	const char *p = path;
	uint64_t cur = KEEP_ROOT_INO;
	int got, rc = 0;

	if (last)
		last[0] = '\0';
	while ((got = next_name(&p, name)) == 1) {
		struct kinode n;
		char peek[KEEP_NAME_MAX + 1];
		const char *q = p;
		int more = next_name(&q, peek);

		if (more > 1)
			return more;
		if (all_but_last && more == 0) {
			memcpy(last, name, strlen(name) + 1);
			break;
		}
		rc = db_inode_get(r->s, view, cur, &n);
		if (rc)
			return rc;
		if (!S_ISDIR(n.a.mode))
			return ENOTDIR;
		rc = db_dirent_find(r->s, view, cur, name, &cur, NULL);
		if (rc)
			return rc;
	}
	if (got > 1)
		return got;
	if (all_but_last) {
		struct kinode n;
		rc = db_inode_get(r->s, view, cur, &n);
		if (!rc && !S_ISDIR(n.a.mode))
			rc = ENOTDIR;
	}
	if (!rc)
		*ino = cur;
	return rc;
}

/* ---- the two sets ---------------------------------------------------------- */

struct gather {
	struct rs *r;
	uint64_t dir;
	int rc;
};

static int add_obj(struct rs *r, uint64_t ino, uint64_t fparent, bool *fresh)
{
	void **slot;
	struct kinode n;
	int rc = umap_put(&r->fidx, ino, &slot, fresh);

	if (rc || !*fresh)
		return rc;
	rc = db_inode_get(r->s, r->from, ino, &n);
	if (rc == ENOENT)
		return KEEP_CORRUPT_BKPT("an entry of the view names no inode");
	if (!rc)
		rc = GROW(r->objs, r->capobjs, r->nobjs);
	if (rc)
		return rc;
	r->objs[r->nobjs] = (struct robj){
	    .ino = ino, .img = ino, .fparent = fparent, .mode = n.a.mode};
	*slot = (void *)(uintptr_t)(r->nobjs + 1);
	r->nobjs++;
	return 0;
}

static int take_fedge(void *ctx, int64_t id, const char *name, uint64_t ino)
{
	struct gather *g = ctx;
	struct rs *r = g->r;
	bool fresh;
	int rc;

	(void)id;
	rc = GROW(r->edges, r->capedges, r->nedges);
	if (rc)
		return rc;
	r->edges[r->nedges].dir = g->dir;
	r->edges[r->nedges].child = ino;
	r->edges[r->nedges].name = strdup(name);
	if (!r->edges[r->nedges].name)
		return KEEP_E_NOMEM;
	r->nedges++;
	return add_obj(r, ino, g->dir, &fresh);
}

/* S: F's objects under top, breadth first. */
static int gather_from(struct rs *r, uint64_t top, uint64_t fparent)
{
	bool fresh;
	int rc = add_obj(r, top, fparent, &fresh);

	for (size_t i = 0; !rc && i < r->nobjs; i++) {
		if (!S_ISDIR(r->objs[i].mode))
			continue;
		struct gather g = {r, r->objs[i].ino, 0};
		rc = db_rq_entries(r->q, r->from, g.dir, take_fedge, &g);
	}
	return rc;
}

static int take_ledge(void *ctx, int64_t id, const char *name, uint64_t ino)
{
	struct gather *g = ctx;
	struct rs *r = g->r;
	struct kinode n;
	void **slot;
	bool fresh;
	int rc;

	(void)id;
	(void)name;
	rc = umap_put(&r->lset, ino, &slot, &fresh);
	if (rc || !fresh)
		return rc;
	rc = db_inode_get(r->s, KEEP_LIVE, ino, &n);
	if (rc == ENOENT)
		return KEEP_CORRUPT_BKPT("a live entry names no inode");
	if (rc)
		return rc;
	*slot = (void *)(uintptr_t)(S_ISDIR(n.a.mode) ? 2 : 1);
	if (S_ISDIR(n.a.mode)) {
		rc = GROW(r->ldirs, r->capldirs, r->nldirs);
		if (!rc)
			r->ldirs[r->nldirs++] = ino;
	}
	return rc;
}

/* L: the live objects under top. */
static int gather_live(struct rs *r, uint64_t top)
{
	struct gather g = {r, 0, 0};
	int rc = take_ledge(&g, 0, "", top);

	for (size_t i = 0; !rc && i < r->nldirs; i++) {
		g.dir = r->ldirs[i];
		rc = db_rq_entries(r->q, KEEP_LIVE, g.dir, take_ledge, &g);
	}
	return rc;
}

static bool in_ldirs(const struct rs *r, uint64_t ino)
{
	void **v = umap_get(&r->lset, ino);
	return v && IDX(*v) == 2;
}

/* ---- images ------------------------------------------------------------------ */

struct escape {
	struct rs *r;
	uint64_t dp; /* D's directory (0: D is the root) */
	const char *dname;
	bool out;
};

static int check_name(void *ctx, int64_t id, const char *name, uint64_t parent)
{
	struct escape *e = ctx;

	(void)id;
	if (in_ldirs(e->r, parent))
		return 0;
	if (parent == e->dp && !strcmp(name, e->dname))
		return 0;
	e->out = true;
	return 0;
}

static int choose_images(struct rs *r, uint64_t dp, const char *dname,
			 bool whole)
{
	for (size_t i = 0; i < r->nobjs; i++) {
		struct robj *o = &r->objs[i];
		struct kinode n;
		int rc = db_inode_get(r->s, KEEP_LIVE, o->ino, &n);

		if (rc == ENOENT)
			continue; /* gone: it comes back under its number */
		if (rc)
			return rc;
		o->live = true;
		if (whole)
			continue; /* L is the whole tree */
		struct escape e = {r, dp, dname, false};
		rc = db_rq_names(r->q, o->ino, check_name, &e);
		if (rc)
			return rc;
		if (o->ino == KEEP_ROOT_INO)
			e.out = true; /* the root stays where it is */
		if (!e.out)
			continue;
		if (r->s->next_ino >= KEEP_INO_LIMIT)
			return ENOSPC;
		o->img = r->s->next_ino++;
		o->live = false;
	}
	return 0;
}

static uint64_t image_of(const struct rs *r, uint64_t fino)
{
	void **v = umap_get(&r->fidx, fino);
	return v ? r->objs[IDX(*v) - 1].img : 0;
}

/* ---- applying -------------------------------------------------------------- */

/* a directory's wanted entries, or its live ones */
struct ent {
	char *name;
	uint64_t ino;
	int64_t id;
	bool keep;
};

struct ents {
	struct ent *v;
	size_t n, cap;
};

static void ents_free(struct ents *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].name);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

static int ents_add(struct ents *e, const char *name, uint64_t ino, int64_t id)
{
	int rc = GROW(e->v, e->cap, e->n);

	if (rc)
		return rc;
	e->v[e->n] = (struct ent){strdup(name), ino, id, false};
	if (!e->v[e->n].name)
		return KEEP_E_NOMEM;
	e->n++;
	return 0;
}

static int take_live(void *ctx, int64_t id, const char *name, uint64_t ino)
{
	return ents_add(ctx, name, ino, id);
}

static int cmp_ent(const void *x, const void *y)
{
	const struct ent *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	if (c)
		return c;
	return a->ino < b->ino ? -1 : a->ino > b->ino;
}

/* Give directory dir (a live number) exactly the entries `want`. */
static int set_entries(struct rs *r, uint64_t dir, struct ents *want)
{
	struct ents have = {0};
	int rc = db_rq_entries(r->q, KEEP_LIVE, dir, take_live, &have);
	size_t i = 0, j = 0;

	if (have.n > 1)
		qsort(have.v, have.n, sizeof(*have.v), cmp_ent);
	if (want->n > 1)
		qsort(want->v, want->n, sizeof(*want->v), cmp_ent);
	/* matching (name, ino) pairs stay; the rest goes or comes */
	while (!rc && i < have.n && j < want->n) {
		int c = cmp_ent(&have.v[i], &want->v[j]);
		if (c == 0) {
			have.v[i++].keep = true;
			want->v[j++].keep = true;
		} else if (c < 0) {
			i++;
		} else {
			j++;
		}
	}
	for (i = 0; !rc && i < have.n; i++) {
		if (have.v[i].keep)
			continue;
		rc = touch(r, have.v[i].ino);
		if (!rc)
			rc = db_dirent_kill(r->s, dir, have.v[i].id);
		if (!rc)
			rc = event(r, KEEP_RESTORED_NAME, 0, dir, have.v[i].name);
	}
	for (j = 0; !rc && j < want->n; j++) {
		if (want->v[j].keep)
			continue;
		rc = touch(r, want->v[j].ino);
		if (!rc)
			rc = db_dirent_add(r->s, dir, want->v[j].name,
					   want->v[j].ino);
		if (!rc)
			rc = event(r, KEEP_RESTORED_NAME, 0, dir, want->v[j].name);
	}
	ents_free(&have);
	return rc;
}

/* F's entries of F directory fdir, as images. */
static int wanted(struct rs *r, uint64_t fdir, struct ents *want)
{
	int rc = 0;

	/* edges are grouped by directory in gathering order */
	for (size_t i = 0; !rc && i < r->nedges; i++)
		if (r->edges[i].dir == fdir)
			rc = ents_add(want, r->edges[i].name,
				      image_of(r, r->edges[i].child), 0);
	return rc;
}

/* Does the live row already hold F's attributes?  The link count is
 * counted afterwards and ctime is not restored.  (A symlink's target never
 * changes: the same inode has the same target.) */
static bool same_attrs(const struct kinode *l, const struct kinode *f,
		       uint64_t parent)
{
	const struct keep_attr *a = &l->a, *b = &f->a;

	return l->parent == parent && a->mode == b->mode && a->uid == b->uid &&
	       a->gid == b->gid && a->size == b->size && a->rdev == b->rdev &&
	       a->atime_ns == b->atime_ns && a->mtime_ns == b->mtime_ns &&
	       a->btime_ns == b->btime_ns && a->blocks == b->blocks;
}

/* The rows of one object: attributes, data, xattrs. */
static int restore_rows(struct rs *r, struct robj *o, uint64_t parent)
{
	struct kinode live, f;
	uint64_t changed = 0;
	int rc = touch(r, o->img);

	if (!rc)
		rc = db_inode_get(r->s, r->from, o->ino, &f);
	if (rc)
		return rc;
	if (o->live) {
		rc = db_inode_get(r->s, KEEP_LIVE, o->img, &live);
		if (rc)
			return rc;
	}
	if (!S_ISDIR(f.a.mode))
		parent = f.parent;
	if (!o->live || !same_attrs(&live, &f, parent)) {
		if (o->live)
			rc = db_inode_kill(r->s, o->img);
		if (!rc)
			rc = db_rq_inode_copy(r->q, r->from, o->ino, o->img,
					      r->now, parent);
		changed++;
	}
	if (!rc)
		rc = db_rq_rows(r->q, r->from, o->ino, o->img, &changed);
	if (!rc && changed && o->img == o->ino)
		rc = object_changed(r, o->img);
	if (!rc) {
		void **slot;
		bool fresh;
		rc = umap_put(&r->fromf, o->img, &slot, &fresh);
	}
	return rc;
}

/* Restore one path (design note 1). */
static int restore_path(struct rs *r, const char *path, const char *to)
{
	const char *dest = to ? to : path;
	char dname[KEEP_NAME_MAX + 1];
	uint64_t top, dp = 0, y = 0;
	int64_t yid = 0;
	int rc;

	path_reset(r);
	rc = walk(r, r->from, path, false, &top, NULL);
	if (rc == ENOENT || rc == ENOTDIR) {
		r->bad = KEEP_RESTORE_NOT_IN_FROM;
		return rc;
	}
	if (rc)
		return rc;
	rc = walk(r, KEEP_LIVE, dest, true, &dp, dname);
	if (rc == ENOENT || rc == ENOTDIR) {
		r->bad = to ? KEEP_RESTORE_TO_NO_PARENT : KEEP_RESTORE_NO_PARENT;
		return rc;
	}
	if (rc)
		return rc;
	if (!dname[0]) {
		/* D is the root */
		if (to || top != KEEP_ROOT_INO) {
			r->bad = KEEP_RESTORE_TO_EXISTS;
			return EEXIST;
		}
		dp = 0;
		y = KEEP_ROOT_INO;
	} else {
		if (dp == KEEP_ROOT_INO && !strcmp(dname, RESERVED_NAME))
			return EPERM;
		rc = db_dirent_find(r->s, KEEP_LIVE, dp, dname, &y, &yid);
		if (rc == ENOENT)
			y = 0;
		else if (rc)
			return rc;
		if (y && to) {
			r->bad = KEEP_RESTORE_TO_EXISTS;
			return EEXIST;
		}
	}

	/* F's parent of the top, for a directory's parent link */
	struct kinode ftop;
	rc = db_inode_get(r->s, r->from, top, &ftop);
	if (!rc)
		rc = gather_from(r, top, ftop.parent);
	if (!rc && y)
		rc = gather_live(r, y);
	if (!rc)
		rc = choose_images(r, dp, dname, dp == 0);
	if (rc)
		return rc;

	/* entries: every directory of L and every image directory */
	for (size_t i = 0; !rc && i < r->nldirs; i++) {
		struct ents want = {0};
		uint64_t d = r->ldirs[i];
		void **v = umap_get(&r->fidx, d);
		if (v && r->objs[IDX(*v) - 1].img == d)
			rc = wanted(r, d, &want);
		if (!rc)
			rc = set_entries(r, d, &want);
		ents_free(&want);
	}
	for (size_t i = 0; !rc && i < r->nobjs; i++) {
		struct robj *o = &r->objs[i];
		struct ents want = {0};
		if (!S_ISDIR(o->mode) || in_ldirs(r, o->img))
			continue;
		rc = wanted(r, o->ino, &want);
		if (!rc)
			rc = set_entries(r, o->img, &want);
		ents_free(&want);
	}
	/* D's own entry */
	uint64_t timg = image_of(r, top);
	if (!rc && dp && y != timg) {
		if (y)
			rc = touch(r, y);
		if (!rc && y)
			rc = db_dirent_kill(r->s, dp, yid);
		if (!rc)
			rc = db_dirent_add(r->s, dp, dname, timg);
		if (!rc)
			rc = event(r, KEEP_RESTORED_NAME, 0, dp, dname);
		if (!rc)
			rc = touch(r, dp);
	}
	/* rows, with each directory's parent as an image */
	for (size_t i = 0; !rc && i < r->nobjs; i++) {
		struct robj *o = &r->objs[i];
		uint64_t parent = o->ino == top ? (dp ? dp : KEEP_ROOT_INO)
						: image_of(r, o->fparent);
		rc = restore_rows(r, o, parent);
	}
	/* what lost or gained an entry was touched on the way */
	return rc;
}

/* Link counts of everything touched; the directory holding a changed
 * entry gets the restore's times, like any directory changed. */
static int recount(struct rs *r)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < r->ntinos; i++) {
		uint64_t ino = r->tinos[i], named, subdirs = 0;
		struct kinode n;
		uint32_t want;

		rc = db_inode_get(r->s, KEEP_LIVE, ino, &n);
		if (rc == ENOENT) {
			rc = 0;
			continue;
		}
		bool dir = S_ISDIR(n.a.mode);
		if (!rc)
			rc = db_rq_links(r->q, ino, &named, dir ? &subdirs : NULL);
		if (rc)
			break;
		if (!dir)
			want = (uint32_t)named;
		else if (ino == KEEP_ROOT_INO)
			want = 2 + (uint32_t)subdirs;
		else
			want = named ? 1 + (uint32_t)named + (uint32_t)subdirs : 0;
		if (want == n.a.nlink)
			continue;
		bool was = n.a.nlink > 0;
		n.a.nlink = want;
		n.a.ctime_ns = r->now;
		rc = db_inode_put(r->s, &n);
		if (!rc && was && want == 0)
			rc = event(r, KEEP_RESTORED_UNLINKED, ino, 0, NULL);
		else if (!rc)
			rc = object_changed(r, ino);
	}
	return rc;
}

/* A directory that holds a changed entry but was not restored itself
 * (the one holding a restored path) changes like any directory: new
 * mtime and ctime.  Restored ones keep F's times. */
static int stamp_parents(struct rs *r)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < r->nevs; i++) {
		struct rev *e = &r->evs[i];
		struct kinode n;
		if (e->kind != KEEP_RESTORED_NAME ||
		    umap_get(&r->fromf, e->parent))
			continue;
		rc = db_inode_get(r->s, KEEP_LIVE, e->parent, &n);
		if (rc || (n.a.mtime_ns == r->now && n.a.ctime_ns == r->now))
			continue;
		n.a.mtime_ns = n.a.ctime_ns = r->now;
		rc = db_inode_put(r->s, &n);
		if (!rc)
			rc = object_changed(r, e->parent);
	}
	return rc;
}

static int deliver(struct rs *r, keep_restore_cb cb, void *ctx)
{
	int rc = 0;

	for (size_t i = 0; !rc && cb && i < r->nevs; i++) {
		struct rev *v = &r->evs[i];
		struct keep_restore_event e = {
		    .kind = v->kind,
		    .ino = v->ino,
		    .parent = v->parent,
		    .name = v->name,
		};
		if (v->kind == KEEP_RESTORED_OBJECT &&
		    keep_getattr(r->s, KEEP_LIVE, v->ino, &e.attr) != 0)
			continue;
		rc = cb(ctx, &e);
	}
	return rc;
}

int keep_restore(struct keep_store *s, const struct keep_restore_req *req,
		 keep_restore_cb cb, void *ctx,
		 struct keep_restore_result *result)
{
	struct keep_restore_result res = {0};
	struct keep_commit_info ci;
	struct snap_op op = {.kind = SNAP_CREATE,
			     .origin = KEEP_ORIGIN_PRE_RESTORE};
	struct rs r = {.s = s, .from = req ? req->from : 0};
	size_t npaths = req && req->paths ? req->npaths : 0;
	int rc;

	if (!req || (req->to && npaths != 1))
		return KEEP_E_INVAL;
	if (req->pre_snapshot) {
		rc = keep_snapshot_name_check(req->pre_snapshot);
		if (rc) {
			if (result)
				result->bad = KEEP_RESTORE_SNAPSHOT;
			return rc;
		}
		op.name = req->pre_snapshot;
	}
	rc = keep_writable(s);
	if (!rc && s->replica)
		rc = EROFS; /* a replica's tree changes only by receive */
	if (rc)
		return rc;

	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->mu);
	rc = s->sticky ? KEEP_E_READONLY : db_commit_get(s, req->from, &ci);
	if (!rc && req->pre_snapshot) {
		rc = snap_check(s, &op);
		if (rc == EEXIST)
			res.bad = KEEP_RESTORE_SNAPSHOT;
	}
	if (!rc)
		rc = keep_space_check(s, 0);
	/* design note 3: the restore's transaction holds nothing else */
	if (!rc)
		rc = store_commit_locked(s, NULL, false, NULL);
	if (!rc)
		rc = db_rq_open(s, &r.q);
	if (!rc)
		rc = keep_begin(s);
	if (rc)
		goto out;
	r.now = keep_now_ns();
	if (npaths == 0) {
		rc = restore_path(&r, "", NULL);
	} else {
		for (size_t i = 0; !rc && i < npaths; i++) {
			rc = restore_path(&r, req->paths[i], req->to);
			if (rc && r.bad) {
				res.bad = r.bad;
				res.bad_index = i;
			}
		}
	}
	if (!rc)
		rc = recount(&r);
	if (!rc)
		rc = stamp_parents(&r);
	res.changes = r.nevs;
	if (!rc && r.nevs && req->pre_snapshot) {
		rc = snap_apply(s, &op, s->open_commit - 1, s->last_commit_ns);
		if (!rc)
			res.pre = op.made;
	}
	if (rc || r.nevs == 0) {
		/* a refusal or failure, or nothing to do: nothing changes */
		db_rollback(s);
		s->in_tx = false;
		for (size_t i = 0; i < r.ntinos; i++)
			ns_drop(s, r.tinos[i]);
		if (rc)
			res.changes = 0;
		goto out;
	}
	rc = store_commit_tx(s, &res.commit);
	if (rc)
		res = (struct keep_restore_result){0};
out:
	/* an errno is a refusal, for the caller to explain; our own codes
	 * are failures */
	if (rc < 0)
		keep_log(LOG_ERR, "restore from commit %llu failed: %s",
			 (unsigned long long)req->from, keep_strerror(rc));
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->commit_mu);
	if (!rc)
		rc = deliver(&r, cb, ctx);
	rs_free(&r);
	if (result)
		*result = res;
	return rc;
}
