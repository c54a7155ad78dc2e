/*
 * diff.c - what differs between two views of the store (keep_diff).
 *
 * The rules of what counts as a change are in keep.h, above keep_diff.
 *
 * Design notes:
 *
 *  1. Candidates.  The inodes to compare are those the change journal
 *     (db_diff.c) names for the commits between the two views, (lo, hi],
 *     plus, for the writer's live tree, those with dirty file data not
 *     yet written to rows.  Every other inode has the same rows in both
 *     views, so it cannot differ: the work follows the changes, not the
 *     tree.  Without the journal (older commits) the same set comes from
 *     a scan of the born/died columns of every versioned table.
 *  2. Each candidate is compared as two objects (attributes, block map,
 *     symlink target, xattrs) and two sets of names.  Names come from
 *     dirents_ino; paths are built by walking directories' parent
 *     links, cached per view for the run.
 *  3. Then per path: a path removed in a and added in b is one
 *     replacement, decided before renames are paired, so a rename over
 *     an existing file reads as git reads it (the path was modified, the
 *     old name removed).
 *  4. Everything is gathered under commit_mu and mu (the writer's live
 *     tree is then still: no commit moves dirty data meanwhile), sorted,
 *     and handed to the callback after both are released.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keep_i.h"

#define SYMLINK_MAX 4096
#define DEPTH_MAX 100000

/* ---- the state of one diff ----------------------------------------------- */

struct side {
	uint64_t view;	  /* a commit, or KEEP_LIVE (writer only) */
	struct umap dirs; /* directory ino -> malloc'd path ("" for the root) */
};

struct name {
	uint64_t parent;
	char *path;
	size_t len; /* of the last component */
	const char *base;
};

/* a name removed or added, waiting for the per-path pass */
struct pend {
	uint64_t ino;
	char *path;
	uint32_t mode;
	uint64_t size;
	bool both;	 /* the object is in both views */
	unsigned change; /* what changed, when both */
	bool used;
};

struct rec {
	int kind;
	unsigned flags;
	uint64_t ino_a, ino_b;
	char *path_a, *path_b;
	uint32_t mode_a, mode_b;
	uint64_t size_a, size_b;
};

/* dirty block of the writer's live tree */
struct dirt {
	uint64_t ino, idx;
};

struct diff {
	struct keep_store *s;
	struct dq *q;
	struct side side[2];
	struct umap cand; /* inodes to compare (values unused) */
	uint64_t *inos;
	size_t ninos, capinos;
	struct dirt *dirt; /* sorted by ino, idx */
	size_t ndirt, capdirt;
	struct pend *rem, *add;
	size_t nrem, caprem, nadd, capadd;
	struct rec *recs;
	size_t nrecs, caprecs;
	uint8_t *buf[2]; /* one block each, for dirty data */
};

static int add_candidate(void *ctx, uint64_t ino)
{
	struct diff *d = ctx;
	void **slot;
	bool fresh;
	int rc = umap_put(&d->cand, ino, &slot, &fresh);

	if (!rc && fresh) {
		rc = GROW(d->inos, d->capinos, d->ninos);
		if (!rc)
			d->inos[d->ninos++] = ino;
	}
	return rc;
}

/* qsort() wants a valid pointer even for no elements */
static void sort(void *base, size_t n, size_t size,
		 int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

static int cmp_dirt(const void *x, const void *y)
{
	const struct dirt *a = x, *b = y;

	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int collect_dirty(struct diff *d, const struct dmap *m)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < m->nbuckets; i++)
		for (const struct dblock *b = m->tab[i]; b && !rc;
		     b = b->next) {
			rc = GROW(d->dirt, d->capdirt, d->ndirt);
			if (!rc)
				d->dirt[d->ndirt++] =
				    (struct dirt){b->ino, b->idx};
			if (!rc)
				rc = add_candidate(d, b->ino);
		}
	return rc;
}

/* ---- paths --------------------------------------------------------------- */

static char *join(const char *dir, const char *name, size_t len)
{
	size_t n = strlen(dir);
	char *p = malloc(n + len + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, n);
	if (n)
		p[n++] = '/';
	memcpy(p + n, name, len);
	p[n + len] = '\0';
	return p;
}

struct one_name {
	uint64_t parent;
	char name[KEEP_NAME_MAX + 1];
	size_t len;
	int count;
};

static int take_one(void *ctx, uint64_t parent, const char *name, size_t len)
{
	struct one_name *o = ctx;

	if (o->count++ == 0) {
		o->parent = parent;
		memcpy(o->name, name, len);
		o->len = len;
	}
	return 0;
}

/* The path of directory ino in a side ("" for the root); cached. */
static int dir_path(struct diff *d, struct side *sd, uint64_t ino, int depth,
		    const char **out)
{
	struct one_name o = {0};
	const char *ppath;
	void **slot = umap_get(&sd->dirs, ino);
	bool fresh;
	int rc;

	if (slot) {
		*out = *slot;
		return 0;
	}
	if (depth > DEPTH_MAX)
		return KEEP_CORRUPT_BKPT("directory tree deeper than possible");
	if (ino == KEEP_ROOT_INO) {
		char *root = strdup("");
		if (!root)
			return KEEP_E_NOMEM;
		rc = umap_put(&sd->dirs, ino, &slot, &fresh);
		if (rc) {
			free(root);
			return rc;
		}
		*slot = root;
		*out = root;
		return 0;
	}
	rc = db_dq_names(d->q, sd->view, ino, take_one, &o);
	if (!rc && o.count != 1)
		rc = KEEP_CORRUPT_BKPT("directory without exactly one name");
	if (!rc)
		rc = dir_path(d, sd, o.parent, depth + 1, &ppath);
	if (rc)
		return rc;
	char *p = join(ppath, o.name, o.len);
	if (!p)
		return KEEP_E_NOMEM;
	rc = umap_put(&sd->dirs, ino, &slot, &fresh);
	if (rc) {
		free(p);
		return rc;
	}
	*slot = p;
	*out = p;
	return 0;
}

struct names {
	struct diff *d;
	struct side *sd;
	struct name *v;
	size_t n, cap;
};

static int take_name(void *ctx, uint64_t parent, const char *name, size_t len)
{
	struct names *ns = ctx;
	const char *dir;
	int rc = dir_path(ns->d, ns->sd, parent, 0, &dir);

	if (!rc)
		rc = GROW(ns->v, ns->cap, ns->n);
	if (rc)
		return rc;
	char *p = join(dir, name, len);
	if (!p)
		return KEEP_E_NOMEM;
	ns->v[ns->n++] = (struct name){parent, p, len, p + strlen(p) - len};
	return 0;
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].path);
	free(ns->v);
}

static bool same_name(const struct name *x, const struct name *y)
{
	return x->parent == y->parent && x->len == y->len &&
	       memcmp(x->base, y->base, x->len) == 0;
}

/* ---- comparing one object ------------------------------------------------ */

struct blk {
	uint64_t idx, blob;
};

struct blks {
	struct blk *v;
	size_t n, cap;
};

static int take_block(void *ctx, uint64_t idx, uint64_t blob)
{
	struct blks *b = ctx;
	int rc = GROW(b->v, b->cap, b->n);

	if (!rc)
		b->v[b->n++] = (struct blk){idx, blob};
	return rc;
}

static bool dirty_at(const struct diff *d, uint64_t ino, uint64_t idx)
{
	struct dirt key = {ino, idx};

	return d->ndirt &&
	       bsearch(&key, d->dirt, d->ndirt, sizeof(key), cmp_dirt) != NULL;
}

/* Do the block contents of ino[0] in side a and ino[1] in side b differ?
 * Dirty blocks are the live tree's, of one inode on both sides (a diff's:
 * keep_history compares committed views only, so it has none). */
static int data_differs(struct diff *d, const uint64_t ino[2],
			uint64_t size_a, uint64_t size_b, bool *differs)
{
	struct blks b[2] = {{0}};
	uint32_t bs = d->s->block_size;
	int rc = 0;

	for (int i = 0; i < 2 && !rc; i++)
		rc = db_block_range(d->s, d->side[i].view, ino[i], 0,
				    UINT64_MAX, take_block, &b[i]);
	*differs = false;
	/* rows, merged by index; a dirty block is compared by its bytes */
	size_t i = 0, j = 0;
	while (!rc && !*differs && (i < b[0].n || j < b[1].n)) {
		uint64_t ia = i < b[0].n ? b[0].v[i].idx : UINT64_MAX;
		uint64_t ib = j < b[1].n ? b[1].v[j].idx : UINT64_MAX;
		uint64_t idx = ia < ib ? ia : ib;
		bool same = ia == ib && b[0].v[i].blob == b[1].v[j].blob;
		if (!same && !dirty_at(d, ino[1], idx))
			*differs = true;
		i += ia == idx;
		j += ib == idx;
	}
	/* dirty blocks, by their bytes */
	struct dirt key = {ino[1], 0};
	size_t k = 0;
	if (d->ndirt) {
		/* first dirty block of ino */
		size_t lo = 0, hi = d->ndirt;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (cmp_dirt(&d->dirt[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		k = lo;
	}
	for (; !rc && !*differs && k < d->ndirt && d->dirt[k].ino == ino[1];
	     k++) {
		uint64_t off = d->dirt[k].idx * bs;
		size_t n[2] = {0, 0};
		for (int s = 0; s < 2 && !rc; s++) {
			uint64_t size = s ? size_b : size_a;
			if (off < size)
				rc = keep_read(d->s, d->side[s].view, ino[s],
					       off, bs, d->buf[s], &n[s]);
		}
		if (!rc && (n[0] != n[1] || memcmp(d->buf[0], d->buf[1], n[0])))
			*differs = true;
	}
	free(b[0].v);
	free(b[1].v);
	return rc;
}

struct xlist {
	char *names;
	size_t len;
};

static int xattr_names(struct diff *d, uint64_t view, uint64_t ino,
		       struct xlist *x)
{
	int rc = db_xattr_list(d->s, view, ino, NULL, 0, &x->len);

	if (rc || !x->len)
		return rc;
	x->names = malloc(x->len);
	if (!x->names)
		return KEEP_E_NOMEM;
	return db_xattr_list(d->s, view, ino, x->names, x->len, &x->len);
}

static int xattrs_differ(struct diff *d, const uint64_t ino[2],
			 bool *differs)
{
	struct xlist x[2] = {{0}};
	void *val[2] = {NULL, NULL};
	int rc = 0;

	for (int i = 0; i < 2 && !rc; i++)
		rc = xattr_names(d, d->side[i].view, ino[i], &x[i]);
	*differs =
	    !rc && (x[0].len != x[1].len ||
		    (x[0].len && memcmp(x[0].names, x[1].names, x[0].len)));
	for (size_t off = 0; !rc && !*differs && off < x[0].len;) {
		const char *name = x[0].names + off;
		size_t len[2];
		for (int i = 0; i < 2 && !rc; i++) {
			rc = db_xattr_get(d->s, d->side[i].view, ino[i],
					  name, NULL, 0, &len[i]);
			if (!rc) {
				free(val[i]);
				val[i] = malloc(len[i] ? len[i] : 1);
				if (!val[i])
					rc = KEEP_E_NOMEM;
			}
			if (!rc && len[i])
				rc = db_xattr_get(d->s, d->side[i].view,
						  ino[i], name, val[i], len[i],
						  &len[i]);
		}
		if (!rc && (len[0] != len[1] || memcmp(val[0], val[1], len[0])))
			*differs = true;
		off += strlen(name) + 1;
	}
	free(val[0]);
	free(val[1]);
	free(x[0].names);
	free(x[1].names);
	return rc;
}

/* What changed of an object present in both views (KEEP_DIFF_* flags). */
static int compare(struct diff *d, const struct kinode *a,
		   const struct kinode *b, unsigned *out)
{
	const struct keep_attr *x = &a->a, *y = &b->a;
	const uint64_t ino[2] = {x->ino, y->ino};
	unsigned f = 0;
	bool differs = false;
	int rc = 0;

	if (x->mode != y->mode || x->uid != y->uid || x->gid != y->gid)
		f |= KEEP_DIFF_ATTR;
	if (!S_ISDIR(x->mode) && (x->size != y->size || x->rdev != y->rdev ||
				  x->mtime_ns != y->mtime_ns))
		f |= KEEP_DIFF_ATTR;
	if (S_ISREG(x->mode)) {
		/* content of another length is other content */
		differs = x->size != y->size;
		if (!differs)
			rc = data_differs(d, ino, x->size, y->size, &differs);
	} else if (S_ISLNK(x->mode)) {
		char *t = malloc(2 * (SYMLINK_MAX + 1));
		if (!t)
			return KEEP_E_NOMEM;
		rc = db_symlink_get(d->s, d->side[0].view, ino[0], t,
				    SYMLINK_MAX + 1);
		if (!rc)
			rc = db_symlink_get(d->s, d->side[1].view, ino[1],
					    t + SYMLINK_MAX + 1,
					    SYMLINK_MAX + 1);
		differs = !rc && strcmp(t, t + SYMLINK_MAX + 1) != 0;
		free(t);
	}
	if (differs)
		f |= KEEP_DIFF_DATA;
	if (!rc)
		rc = xattrs_differ(d, ino, &differs);
	if (!rc && differs)
		f |= KEEP_DIFF_XATTR;
	if (!rc)
		*out = f;
	return rc;
}

int diff_objects(struct keep_store *s, uint64_t va, const struct kinode *a,
		 uint64_t vb, const struct kinode *b, unsigned *flags)
{
	struct diff d = {.s = s};

	d.side[0].view = va;
	d.side[1].view = vb;
	/* another type is another object: its bytes are not comparable */
	if ((a->a.mode & S_IFMT) != (b->a.mode & S_IFMT)) {
		*flags = KEEP_DIFF_DATA | KEEP_DIFF_ATTR;
		return 0;
	}
	return compare(&d, a, b, flags);
}

/* ---- gathering ----------------------------------------------------------- */

static int add_rec(struct diff *d, int kind, unsigned flags, uint64_t ino_a,
		   const char *pa, const struct kinode *na, uint64_t ino_b,
		   const char *pb, const struct kinode *nb)
{
	int rc = GROW(d->recs, d->caprecs, d->nrecs);
	struct rec r = {
	    .kind = kind, .flags = flags, .ino_a = ino_a, .ino_b = ino_b};

	if (rc)
		return rc;
	r.path_a = pa ? strdup(pa) : NULL;
	r.path_b = pb ? strdup(pb) : NULL;
	if ((pa && !r.path_a) || (pb && !r.path_b)) {
		free(r.path_a);
		free(r.path_b);
		return KEEP_E_NOMEM;
	}
	if (na) {
		r.mode_a = na->a.mode;
		r.size_a = na->a.size;
	}
	if (nb) {
		r.mode_b = nb->a.mode;
		r.size_b = nb->a.size;
	}
	d->recs[d->nrecs++] = r;
	return 0;
}

static int add_pend(struct pend **v, size_t *n, size_t *cap, uint64_t ino,
		    const char *path, const struct kinode *k, bool both,
		    unsigned change)
{
	int rc = keep_grow((void **)v, cap, *n, sizeof(**v));

	if (rc)
		return rc;
	char *p = strdup(path);
	if (!p)
		return KEEP_E_NOMEM;
	(*v)[(*n)++] =
	    (struct pend){ino, p, k->a.mode, k->a.size, both, change, false};
	return 0;
}

static int get_object(struct diff *d, int i, uint64_t ino, struct kinode *n,
		      bool *there)
{
	int rc = db_inode_get(d->s, d->side[i].view, ino, n);

	*there = rc == 0 && n->a.nlink > 0;
	return rc == ENOENT ? 0 : rc;
}

static int one_inode(struct diff *d, uint64_t ino)
{
	struct kinode k[2];
	bool there[2];
	struct names ns[2] = {{.d = d, .sd = &d->side[0]},
			      {.d = d, .sd = &d->side[1]}};
	unsigned change = 0;
	int rc = 0;

	for (int i = 0; i < 2 && !rc; i++)
		rc = get_object(d, i, ino, &k[i], &there[i]);
	if (rc || (!there[0] && !there[1]))
		return rc;
	for (int i = 0; i < 2 && !rc; i++)
		if (there[i])
			rc = db_dq_names(d->q, d->side[i].view, ino, take_name,
					 &ns[i]);
	if (!rc && there[0] && there[1])
		rc = compare(d, &k[0], &k[1], &change);
	bool both = there[0] && there[1];
	/* names in a: kept, or removed */
	for (size_t i = 0; !rc && i < ns[0].n; i++) {
		const struct name *x = &ns[0].v[i];
		const struct name *kept = NULL;
		for (size_t j = 0; j < ns[1].n && !kept; j++)
			if (same_name(x, &ns[1].v[j]))
				kept = &ns[1].v[j];
		if (kept && change)
			rc = add_rec(d, KEEP_DIFF_MODIFIED, change, ino,
				     x->path, &k[0], ino, kept->path, &k[1]);
		else if (!kept)
			rc = add_pend(&d->rem, &d->nrem, &d->caprem, ino,
				      x->path, &k[0], both, change);
	}
	for (size_t j = 0; !rc && j < ns[1].n; j++) {
		const struct name *y = &ns[1].v[j];
		bool kept = false;
		for (size_t i = 0; i < ns[0].n && !kept; i++)
			kept = same_name(&ns[0].v[i], y);
		if (!kept)
			rc = add_pend(&d->add, &d->nadd, &d->capadd, ino,
				      y->path, &k[1], both, change);
	}
	/* the root has no name: only its own changes */
	if (!rc && ino == KEEP_ROOT_INO && change)
		rc = add_rec(d, KEEP_DIFF_MODIFIED, change, ino, ".", &k[0],
			     ino, ".", &k[1]);
	names_free(&ns[0]);
	names_free(&ns[1]);
	return rc;
}

static int cmp_pend_path(const void *x, const void *y)
{
	return strcmp(((const struct pend *)x)->path,
		      ((const struct pend *)y)->path);
}

static int cmp_pend_ino(const void *x, const void *y)
{
	const struct pend *a = x, *b = y;

	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return strcmp(a->path, b->path);
}

static struct kinode pend_node(const struct pend *p)
{
	struct kinode k = {
	    .a = {.ino = p->ino, .mode = p->mode, .size = p->size}};

	return k;
}

/* Names removed and added: replacements, renames, the rest (note 3). */
static int settle(struct diff *d)
{
	int rc = 0;

	sort(d->rem, d->nrem, sizeof(*d->rem), cmp_pend_path);
	sort(d->add, d->nadd, sizeof(*d->add), cmp_pend_path);
	for (size_t i = 0, j = 0; !rc && i < d->nrem && j < d->nadd;) {
		struct pend *r = &d->rem[i], *a = &d->add[j];
		int c = strcmp(r->path, a->path);
		if (c < 0) {
			i++;
		} else if (c > 0) {
			j++;
		} else {
			struct kinode x = pend_node(r), y = pend_node(a);
			if (r->ino != a->ino)
				rc = add_rec(d, KEEP_DIFF_MODIFIED,
					     KEEP_DIFF_REPLACED, r->ino,
					     r->path, &x, a->ino, a->path, &y);
			else if (r->change)
				rc = add_rec(d, KEEP_DIFF_MODIFIED, r->change,
					     r->ino, r->path, &x, a->ino,
					     a->path, &y);
			r->used = a->used = true;
			i++;
			j++;
		}
	}
	sort(d->rem, d->nrem, sizeof(*d->rem), cmp_pend_ino);
	sort(d->add, d->nadd, sizeof(*d->add), cmp_pend_ino);
	/* renames: the unused names of one object, paired in path order */
	for (size_t i = 0, j = 0; !rc && i < d->nrem && j < d->nadd;) {
		struct pend *r = &d->rem[i], *a = &d->add[j];
		if (r->used || !r->both) {
			i++;
		} else if (a->used || !a->both || a->ino < r->ino) {
			j++;
		} else if (r->ino < a->ino) {
			i++;
		} else {
			struct kinode x = pend_node(r), y = pend_node(a);
			unsigned f =
			    r->change ? r->change | KEEP_DIFF_CHANGED : 0;
			rc = add_rec(d, KEEP_DIFF_RENAMED, f, r->ino, r->path,
				     &x, a->ino, a->path, &y);
			r->used = a->used = true;
			i++;
			j++;
		}
	}
	for (size_t i = 0; !rc && i < d->nrem; i++) {
		struct pend *r = &d->rem[i];
		struct kinode x = pend_node(r);
		if (!r->used)
			rc = add_rec(d, KEEP_DIFF_REMOVED,
				     r->both ? KEEP_DIFF_LINK : 0, r->ino,
				     r->path, &x, 0, NULL, NULL);
	}
	for (size_t j = 0; !rc && j < d->nadd; j++) {
		struct pend *a = &d->add[j];
		struct kinode y = pend_node(a);
		if (!a->used)
			rc = add_rec(d, KEEP_DIFF_ADDED,
				     a->both ? KEEP_DIFF_LINK : 0, 0, NULL,
				     NULL, a->ino, a->path, &y);
	}
	return rc;
}

static const char *rec_key(const struct rec *r)
{
	return r->kind == KEEP_DIFF_REMOVED ? r->path_a : r->path_b;
}

static int cmp_rec(const void *x, const void *y)
{
	const struct rec *a = x, *b = y;
	int c = strcmp(rec_key(a), rec_key(b));

	return c ? c : a->kind - b->kind;
}

/* A view's id on the commit line: the live tree is the open commit. */
static int check_view(struct keep_store *s, uint64_t *view, uint64_t *pos)
{
	struct keep_commit_info ci;
	int rc;

	if (*view == KEEP_LIVE && !(s->flags & KEEP_OPEN_WRITE))
		*view = db_last_commit(s); /* committed state only */
	if (*view == KEEP_LIVE) {
		*pos = s->open_commit;
		return 0;
	}
	rc = db_commit_get(s, *view, &ci);
	*pos = *view;
	return rc;
}

static int gather(struct diff *d, uint64_t a, uint64_t b, unsigned opts)
{
	struct keep_store *s = d->s;
	uint64_t pa, pb, lo, hi, from = 0;
	int rc;

	if (s->flags & KEEP_OPEN_WRITE) {
		rc = s->sticky ? KEEP_E_READONLY : 0;
		if (!rc)
			rc = ns_flush(s);
		if (rc)
			return rc;
	}
	rc = check_view(s, &a, &pa);
	if (!rc)
		rc = check_view(s, &b, &pb);
	if (rc || pa == pb)
		return rc;
	d->side[0].view = a;
	d->side[1].view = b;
	lo = pa < pb ? pa : pb;
	hi = pa < pb ? pb : pa;
	rc = db_journal_from(s, &from);
	if (rc)
		return rc;
	bool full = (opts & KEEP_DIFF_FULL_SCAN) || !from || lo + 1 < from;
	if (full && !(opts & KEEP_DIFF_FULL_SCAN))
		keep_log(LOG_INFO,
			 "diff: commits before %llu predate the change "
			 "journal: comparing whole tables",
			 (unsigned long long)(from ? from : hi + 1));
	rc = db_dq_candidates(d->q, lo, hi, full, add_candidate, d);
	if (!rc && (a == KEEP_LIVE || b == KEEP_LIVE)) {
		rc = db_journal_pending(s, add_candidate, d);
		if (!rc)
			rc = collect_dirty(d, &s->dirty);
		if (!rc)
			rc = collect_dirty(d, &s->inflight);
		sort(d->dirt, d->ndirt, sizeof(*d->dirt), cmp_dirt);
		for (int i = 0; !rc && i < 2; i++)
			if (!(d->buf[i] = malloc(s->block_size)))
				rc = KEEP_E_NOMEM;
	}
	for (size_t i = 0; !rc && i < d->ninos; i++)
		rc = one_inode(d, d->inos[i]);
	if (!rc)
		rc = settle(d);
	if (!rc)
		sort(d->recs, d->nrecs, sizeof(*d->recs), cmp_rec);
	return rc;
}

static void diff_free(struct diff *d)
{
	for (int i = 0; i < 2; i++) {
		umap_free(&d->side[i].dirs, true);
		free(d->buf[i]);
	}
	umap_free(&d->cand, false);
	free(d->inos);
	free(d->dirt);
	for (size_t i = 0; i < d->nrem; i++)
		free(d->rem[i].path);
	for (size_t i = 0; i < d->nadd; i++)
		free(d->add[i].path);
	free(d->rem);
	free(d->add);
	for (size_t i = 0; i < d->nrecs; i++) {
		free(d->recs[i].path_a);
		free(d->recs[i].path_b);
	}
	free(d->recs);
	db_dq_close(d->q);
}

int keep_diff(struct keep_store *s, uint64_t a, uint64_t b, unsigned opts,
	      keep_diff_cb cb, void *ctx)
{
	struct diff d = {.s = s};
	int rc;

	if (!s || !cb || (opts & ~(unsigned)KEEP_DIFF_FULL_SCAN))
		return KEEP_E_INVAL;
	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->mu);
	rc = db_read_begin(s); /* one snapshot for every query */
	if (!rc)
		rc = db_dq_open(s, &d.q);
	if (!rc)
		rc = gather(&d, a, b, opts);
	db_read_end(s);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->commit_mu);
	for (size_t i = 0; !rc && i < d.nrecs; i++) {
		const struct rec *r = &d.recs[i];
		struct keep_diff_entry e = {
		    .kind = r->kind,
		    .flags = r->flags,
		    .ino_a = r->ino_a,
		    .ino_b = r->ino_b,
		    .path_a = r->path_a,
		    .path_b = r->path_b,
		    .mode_a = r->mode_a,
		    .mode_b = r->mode_b,
		    .size_a = r->size_a,
		    .size_b = r->size_b,
		};
		rc = cb(ctx, &e);
	}
	diff_free(&d);
	return rc;
}
