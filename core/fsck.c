/*
 * fsck.c - the consistency check and the repair of a store (keep_check,
 * keep_garbage, keep_repair), and the places each problem affects.
 *
 * The checks themselves are queries in db.c (db_check) and db_diff.c
 * (db_journal_check); each problem they find comes here with its subject
 * (an inode, an entry, a block, a blob) and the commits concerned, and
 * leaves with the paths it affects in the views that have them.
 *
 * Design notes:
 *
 *  1. Paths are found backwards, from the object to the root, over a
 *     range of commits at once: the entries naming an inode over
 *     [lo, hi) each cover a part of the range, and the path of the
 *     parent is found over that part only, and so on up to the root.
 *     A path is the same over the whole of the part it comes with, so the
 *     work follows the number of distinct paths, not the number of
 *     commits.  Parts of the range no entry covers give the inode itself
 *     as the start ("inode" of struct keep_affect): an open file with no
 *     name left, or damage.  So does an inode met twice on the way up (a
 *     cycle of directories) or a chain deeper than CHAIN_MAX.
 *  2. A part [lo, hi) of a path becomes views: the live tree when hi is
 *     FSCK_END, each snapshot of a commit in [lo, hi), and the commits
 *     no snapshot names there as one run.  Runs of the same path and
 *     offset merge.  The places are sorted (live tree, snapshots by
 *     commit, runs of commits) and the first KEEP_AFFECTS_MAX go to the
 *     caller with the count of the others.
 *  3. Bounded work per problem: at most NAME_QUERIES lookups of names and
 *     PLACES_MAX places are kept (the rest only counted), so a damaged
 *     blob that thousands of files share, or a damaged tree, cannot make
 *     the check run away.
 *  4. Repair drops garbage only (db_fsck.c note 1: what no view can see),
 *     after a copy of the database, and refuses when SQLite itself finds
 *     the database damaged (deleting rows from damaged b-trees may lose
 *     more).  Damaged file data is never repaired: there is nothing safe
 *     to do; the check names the files, to restore from another version.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keep_i.h"

#define CHAIN_MAX 1024
#define NAME_QUERIES 100000
#define PLACES_MAX 10000

/* a path over a range of commits (note 1) */
struct piece {
	uint64_t base; /* 0: from the root */
	char *path;
	size_t len;
	uint64_t lo, hi;
};

struct pieces {
	struct piece *v;
	size_t n, cap;
};

struct place {
	struct keep_affect a; /* a.path and a.snapshot point into path, snap */
	char *path;
	char *snap;
};

struct fsck {
	struct keep_store *s;
	struct fq *q; /* NULL: places are not looked for */
	keep_problem_cb cb;
	void *ctx;
	uint64_t problems;
	int rc; /* the first error of finding places */
	/* the problem being reported */
	size_t queries;
	struct place *pl;
	size_t npl, cappl;
	uint64_t dropped; /* places past PLACES_MAX */
	uint64_t chain[CHAIN_MAX];
	size_t depth;
};

int fsck_failed(const struct fsck *f)
{
	return f->rc;
}

/* ---- pieces ------------------------------------------------------------ */

static void pieces_free(struct pieces *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].path);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

/* Append base + pre + "/" + name (name NULL: pre alone) over [lo, hi). */
static int piece_add(struct pieces *p, uint64_t base, const char *pre,
		     size_t prelen, const void *name, size_t len, uint64_t lo,
		     uint64_t hi)
{
	size_t n = prelen + (name ? 1 + len : 0);
	char *s;

	if (GROW(p->v, p->cap, p->n))
		return KEEP_E_NOMEM;
	s = malloc(n + 1);
	if (!s)
		return KEEP_E_NOMEM;
	memcpy(s, pre, prelen);
	if (name) {
		s[prelen] = '/';
		memcpy(s + prelen + 1, name, len);
	}
	s[n] = '\0';
	p->v[p->n++] = (struct piece){base, s, n, lo, hi};
	return 0;
}

struct nrow {
	uint64_t parent;
	char *name;
	size_t len;
	uint64_t lo, hi;
};

struct nrows {
	struct nrow *v;
	size_t n, cap;
	uint64_t lo, hi; /* the range asked for */
};

static int nrow_add(void *ctx, uint64_t parent, const void *name, size_t len,
		    uint64_t born, uint64_t died)
{
	struct nrows *r = ctx;
	uint64_t lo = born > r->lo ? born : r->lo;
	uint64_t hi = died < r->hi ? died : r->hi;

	if (lo >= hi)
		return 0;
	if (GROW(r->v, r->cap, r->n))
		return KEEP_E_NOMEM;
	struct nrow *x = &r->v[r->n];
	x->name = malloc(len + 1);
	if (!x->name)
		return KEEP_E_NOMEM;
	memcpy(x->name, name, len);
	x->name[len] = '\0';
	x->len = len;
	x->parent = parent;
	x->lo = lo;
	x->hi = hi;
	r->n++;
	return 0;
}

static void nrows_free(struct nrows *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
}

/* The paths of ino over [lo, hi) (note 1), appended to out. */
static int paths_of(struct fsck *f, uint64_t ino, uint64_t lo, uint64_t hi,
		    struct pieces *out)
{
	struct nrows r = {.lo = lo, .hi = hi};
	uint64_t cur = lo;
	bool stop = f->depth >= CHAIN_MAX || f->queries >= NAME_QUERIES;
	int rc = 0;

	if (ino == KEEP_ROOT_INO)
		return piece_add(out, 0, "", 0, NULL, 0, lo, hi);
	for (size_t i = 0; i < f->depth && !stop; i++)
		stop = f->chain[i] == ino;
	if (stop)
		return piece_add(out, ino, "", 0, NULL, 0, lo, hi);
	f->queries++;
	rc = db_fq_names(f->q, ino, lo, hi, nrow_add, &r);
	/* rows come by birth, so the parts no entry covers are the gaps */
	for (size_t i = 0; !rc && i < r.n; i++) {
		if (r.v[i].lo > cur)
			rc = piece_add(out, ino, "", 0, NULL, 0, cur, r.v[i].lo);
		if (r.v[i].hi > cur)
			cur = r.v[i].hi;
	}
	if (!rc && cur < hi)
		rc = piece_add(out, ino, "", 0, NULL, 0, cur, hi);
	f->chain[f->depth++] = ino;
	for (size_t i = 0; !rc && i < r.n; i++) {
		struct nrow *x = &r.v[i];
		struct pieces up = {0};
		rc = paths_of(f, x->parent, x->lo, x->hi, &up);
		for (size_t j = 0; !rc && j < up.n; j++)
			rc = piece_add(out, up.v[j].base, up.v[j].path,
				       up.v[j].len, x->name, x->len,
				       up.v[j].lo, up.v[j].hi);
		pieces_free(&up);
	}
	f->depth--;
	nrows_free(&r);
	return rc;
}

/* ---- places ------------------------------------------------------------ */

static int place_add(struct fsck *f, int view, const struct piece *p,
		     int64_t offset, const void *snap, size_t snaplen,
		     uint64_t first, uint64_t last, uint64_t commits)
{
	struct place *x;

	if (f->npl >= PLACES_MAX) {
		f->dropped++;
		return 0;
	}
	if (GROW(f->pl, f->cappl, f->npl))
		return KEEP_E_NOMEM;
	x = &f->pl[f->npl];
	memset(x, 0, sizeof(*x));
	x->path = strdup(p->base || p->len ? p->path : "/");
	if (snap) {
		x->snap = malloc(snaplen + 1);
		if (x->snap) {
			memcpy(x->snap, snap, snaplen);
			x->snap[snaplen] = '\0';
		}
	}
	if (!x->path || (snap && !x->snap)) {
		free(x->path);
		free(x->snap);
		return KEEP_E_NOMEM;
	}
	x->a = (struct keep_affect){
		.view = view,
		.first = first,
		.last = last,
		.commits = commits,
		.inode = p->base,
		.offset = offset,
	};
	f->npl++;
	return 0;
}

struct snap_ctx {
	struct fsck *f;
	const struct piece *p;
	int64_t offset;
};

static int snap_place(void *ctx, const void *name, size_t len, uint64_t commit)
{
	struct snap_ctx *c = ctx;

	return place_add(c->f, KEEP_AFFECT_SNAPSHOT, c->p, c->offset, name, len,
			 commit, commit, 1);
}

/* The views of a piece (note 2). */
static int places_of_piece(struct fsck *f, const struct piece *p,
			   int64_t offset)
{
	struct snap_ctx c = {f, p, offset};
	uint64_t n, first, last;
	int rc = 0;

	if (p->hi == FSCK_END)
		rc = place_add(f, KEEP_AFFECT_LIVE, p, offset, NULL, 0, 0, 0, 0);
	if (!rc)
		rc = db_fq_snaps(f->q, p->lo, p->hi, snap_place, &c);
	if (!rc)
		rc = db_fq_commits(f->q, p->lo, p->hi, &n, &first, &last);
	if (!rc && n)
		rc = place_add(f, KEEP_AFFECT_COMMITS, p, offset, NULL, 0, first,
			       last, n);
	return rc;
}

/* The places of an object (ino, or the entry name in parent) over
 * [lo, hi). */
static int places_of_object(struct fsck *f, uint64_t ino, uint64_t parent,
			    const void *name, size_t len, int64_t offset,
			    uint64_t lo, uint64_t hi)
{
	struct pieces p = {0}, named = {0};
	int rc;

	if (lo >= hi)
		return 0;
	f->depth = 0;
	if (name) {
		rc = paths_of(f, parent, lo, hi, &named);
		for (size_t i = 0; !rc && i < named.n; i++)
			rc = piece_add(&p, named.v[i].base, named.v[i].path,
				       named.v[i].len, name, len,
				       named.v[i].lo, named.v[i].hi);
		pieces_free(&named);
	} else {
		rc = paths_of(f, ino, lo, hi, &p);
	}
	for (size_t i = 0; !rc && i < p.n; i++)
		rc = places_of_piece(f, &p.v[i], offset);
	pieces_free(&p);
	return rc;
}

struct blk {
	uint64_t ino, idx, born, died;
};

struct blks {
	struct blk *v;
	size_t n, cap;
};

static int blk_add(void *ctx, uint64_t ino, uint64_t idx, uint64_t born,
		   uint64_t died)
{
	struct blks *b = ctx;

	if (GROW(b->v, b->cap, b->n))
		return KEEP_E_NOMEM;
	b->v[b->n++] = (struct blk){ino, idx, born, died};
	return 0;
}

static int places_of(struct fsck *f, const struct fsck_subject *subj)
{
	struct blks b = {0};
	int rc;

	if (!subj->blob)
		return places_of_object(f, subj->ino, subj->parent, subj->name,
					subj->name_len, subj->offset, subj->lo,
					subj->hi);
	rc = db_fq_blob_blocks(f->q, subj->blob, blk_add, &b);
	for (size_t i = 0; !rc && i < b.n; i++) {
		uint64_t lo = b.v[i].born > subj->lo ? b.v[i].born : subj->lo;
		uint64_t hi = b.v[i].died < subj->hi ? b.v[i].died : subj->hi;
		rc = places_of_object(f, b.v[i].ino, 0, NULL, 0,
				      (int64_t)(b.v[i].idx * f->s->block_size),
				      lo, hi);
	}
	free(b.v);
	return rc;
}

static int rank(int view)
{
	return view == KEEP_AFFECT_LIVE ? 0 : view == KEEP_AFFECT_SNAPSHOT ? 1 : 2;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* the place without its commits */
static int cmp_where(const struct place *a, const struct place *b)
{
	int c = cmp_u64(a->a.inode, b->a.inode);

	if (!c)
		c = strcmp(a->path, b->path);
	if (!c)
		c = a->a.offset < b->a.offset ? -1 : a->a.offset > b->a.offset;
	return c;
}

static int cmp_place(const void *pa, const void *pb)
{
	const struct place *a = pa, *b = pb;
	int c = rank(a->a.view) - rank(b->a.view);

	if (!c && a->a.view == KEEP_AFFECT_SNAPSHOT) {
		c = cmp_u64(a->a.first, b->a.first);
		if (!c)
			c = strcmp(a->snap, b->snap);
	}
	if (!c)
		c = cmp_where(a, b);
	if (!c)
		c = cmp_u64(a->a.first, b->a.first);
	return c;
}

/* Sort, merge runs of commits of one place and drop duplicates (note 2). */
static void places_settle(struct fsck *f)
{
	size_t n = 0;

	if (!f->npl)
		return;
	qsort(f->pl, f->npl, sizeof(*f->pl), cmp_place);
	for (size_t i = 1; i < f->npl; i++) {
		struct place *a = &f->pl[n], *b = &f->pl[i];
		bool same = a->a.view == b->a.view && !cmp_where(a, b) &&
			    (a->a.view != KEEP_AFFECT_SNAPSHOT ||
			     (a->a.first == b->a.first &&
			      !strcmp(a->snap, b->snap)));
		if (same && a->a.view == KEEP_AFFECT_COMMITS) {
			if (b->a.last > a->a.last)
				a->a.last = b->a.last;
			a->a.commits += b->a.commits;
		}
		if (same) {
			free(b->path);
			free(b->snap);
			continue;
		}
		f->pl[++n] = *b;
	}
	f->npl = n + 1;
}

static void places_free(struct fsck *f)
{
	for (size_t i = 0; i < f->npl; i++) {
		free(f->pl[i].path);
		free(f->pl[i].snap);
	}
	f->npl = 0;
	f->dropped = 0;
	f->queries = 0;
}

void fsck_report(struct fsck *f, const struct fsck_subject *subj,
		 unsigned flags, const char *what)
{
	struct keep_affect shown[KEEP_AFFECTS_MAX];
	struct keep_problem p = {.what = what, .flags = flags, .affects = shown};
	int rc = 0;

	f->problems++;
	if (subj && f->q && !f->rc)
		rc = places_of(f, subj);
	if (rc) {
		f->rc = rc;
		keep_log(LOG_ERR, "fsck: the paths of a problem were not all "
				  "found: %s", keep_strerror(rc));
	}
	places_settle(f);
	for (size_t i = 0; i < f->npl && p.naffects < KEEP_AFFECTS_MAX; i++) {
		shown[p.naffects] = f->pl[i].a;
		shown[p.naffects].path = f->pl[i].path;
		shown[p.naffects].snapshot = f->pl[i].snap;
		p.naffects++;
	}
	p.more = f->npl - p.naffects + f->dropped;
	if (f->cb)
		f->cb(f->ctx, &p);
	places_free(f);
}

/* ---- the check ------------------------------------------------------------ */

int keep_check(struct keep_store *s, int data, keep_problem_cb cb, void *ctx,
	       uint64_t *problems)
{
	struct fsck f = {.s = s, .cb = cb, .ctx = ctx};
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = ns_flush(s);
	/* without its queries (a damaged schema) problems come without
	 * places: what the check finds matters more */
	if (!rc && db_fq_open(s, &f.q) != 0)
		f.q = NULL;
	if (!rc)
		rc = db_check(s, data, &f);
	/* SQLite met damage where a check read: a problem, not the end */
	if (rc == KEEP_E_CORRUPT) {
		fsck_report(&f, NULL, 0, "sqlite: the check met a damaged "
					 "part of the database");
		rc = 0;
	}
	if (!rc)
		rc = db_journal_check(s, &f);
	if (rc == KEEP_E_CORRUPT) {
		fsck_report(&f, NULL, 0, "sqlite: the journal check met a "
					 "damaged part of the database");
		rc = 0;
	}
	if (!rc)
		rc = f.rc;
	if (!rc && f.problems)
		rc = KEEP_E_CORRUPT;
	db_fq_close(f.q);
	free(f.pl);
	pthread_mutex_unlock(&s->mu);
	if (problems)
		*problems = f.problems;
	return rc;
}

/* ---- garbage and repair (note 4) ------------------------------------------ */

int keep_garbage(struct keep_store *s, struct keep_garbage *out)
{
	int rc;

	if (!s || !out)
		return KEEP_E_INVAL;
	pthread_mutex_lock(&s->mu);
	rc = ns_flush(s);
	if (!rc)
		rc = db_garbage(s, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* STORE/store.db.before-repair-YYYYmmddTHHMMSSZ, -2, -3... if taken */
static int backup(struct keep_store *s, char *file, size_t size)
{
	struct tm tm;
	char stamp[32];
	time_t t = time(NULL);
	int rc = EEXIST;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 1; rc == EEXIST && i < 100; i++) {
		if (i == 1)
			snprintf(file, size, "%s/store.db.before-repair-%s",
				 s->path, stamp);
		else
			snprintf(file, size, "%s/store.db.before-repair-%s-%d",
				 s->path, stamp, i);
		rc = db_backup(s, file);
	}
	if (rc)
		file[0] = '\0';
	return rc;
}

int keep_repair(struct keep_store *s, struct keep_repair_result *out)
{
	struct keep_garbage g;
	bool ok = true;
	int rc;

	if (!s || !out)
		return KEEP_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (!(s->flags & KEEP_OPEN_WRITE))
		return EROFS;
	rc = store_own_begin(s);
	if (rc)
		return rc;
	rc = db_integrity_ok(s, &ok);
	if (!rc && !ok)
		rc = KEEP_E_CORRUPT;
	if (!rc)
		rc = db_garbage(s, &g);
	if (!rc && (g.rows || g.blobs)) {
		/* SQLite copies nothing from a connection that is writing:
		 * the copy is taken between two transactions, the locks
		 * held, so it is exactly what the second one starts from */
		rc = db_end_tx(s);
		if (!rc)
			rc = backup(s, out->backup, sizeof(out->backup));
		if (!rc)
			rc = db_begin(s);
		db_journal_pause(s, true);
		if (!rc)
			rc = db_garbage_drop(s, &out->dropped);
		db_journal_pause(s, false);
	}
	rc = store_own_end(s, rc);
	if (rc) {
		memset(&out->dropped, 0, sizeof(out->dropped));
		return rc;
	}
	if (out->dropped.rows || out->dropped.blobs) {
		/* the pages freed go back to the file system (gc.c note 6) */
		rc = store_own_begin(s);
		if (!rc)
			rc = store_own_end(s, db_vacuum_free(s));
		if (!rc)
			db_checkpoint_soon(s);
	}
	return rc;
}
