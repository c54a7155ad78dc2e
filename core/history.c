/*
 * history.c - every version of one path (keep_history).
 *
 * The rules of what is a version are in keep.h, above keep_history.
 *
 * Design notes:
 *
 *  1. Spans.  The path is resolved across time, not in one view: a span
 *     is a range of commits [from, to) over which one inode held the
 *     path.  The root holds "" over the whole history; the spans of
 *     dir/name are, for each span of dir, the rows of dirents_name for
 *     (dir's inode, name) alive in it, clipped to it.  Rows of one name
 *     in one directory never overlap, so neither do spans; two adjacent
 *     spans of the same inode (a row ended and another begun at the same
 *     commit) are one.  The cost is one index seek per span and
 *     component, whatever the size of the tree.
 *  2. Versions inside a span are found from the object's own rows: the
 *     commits where one of its inode, block or xattr rows was born or
 *     died (primary keys lead with ino).  Each such commit is compared
 *     with the previous version by diff.c's rules; one that changed
 *     nothing that counts (atime, ctime, the link count) is no version.
 *  3. Span boundaries: a span starting where the previous one ended is a
 *     replacement (another object at the same path), compared with the
 *     last version of the old object; one after a gap, or the first, is
 *     an addition; a span ending where no other begins is a removal.
 *  4. Only committed commits count: rows born after the newest commit
 *     are the writer's open commit and ignored, and a death after it is
 *     no death yet.  All of it is read under commit_mu and mu, so no
 *     commit lands midway, and, on a read-only handle, in one read
 *     transaction, so a collection by the mount's daemon does not either.
 *  5. Commits garbage collection dropped (gc.c): a row keeps the born or
 *     died of a commit that is gone, and a view of a gone commit is not
 *     a state the store kept (rows only it could see are gone).  So every
 *     commit a row names is taken as the first commit left at or after
 *     it: the first retained view that shows the change.  A span that
 *     maps to nothing (the path held that object only between retained
 *     commits) was never seen, and is no version.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keep_i.h"

struct span {
	uint64_t from, to, ino; /* to is h->end while the path holds it */
};

struct spans {
	struct span *v;
	size_t n, cap;
};

struct points {
	uint64_t *v;
	size_t n, cap;
};

struct hist {
	struct keep_store *s;
	struct dq *q;
	uint64_t end; /* one past the newest commit */
	int err;      /* of a lookup in kept() */
	struct spans cur, next;
	const struct span *parent; /* the span being resolved under */
	struct keep_version *v;
	size_t n, cap;
};

/* The first commit left at or after c, h->end if none (note 5). */
static uint64_t kept(struct hist *h, uint64_t c)
{
	struct keep_commit_info ci;
	size_t n = 0;
	int rc;

	if (c >= h->end)
		return h->end;
	rc = db_commit_list(h->s, c - 1, &ci, 1, &n);
	if (rc && !h->err)
		h->err = rc;
	return !rc && n && ci.id < h->end ? ci.id : h->end;
}

static int add_entry(void *ctx, uint64_t born, uint64_t died, uint64_t ino)
{
	struct hist *h = ctx;
	const struct span *p = h->parent;
	uint64_t from = born > p->from ? born : p->from;
	uint64_t to = died == 0 || died > h->end ? h->end : died;
	struct spans *sp = &h->next;
	int rc;

	if (to > p->to)
		to = p->to;
	if (from >= to || born >= h->end)
		return 0;
	from = kept(h, from);
	to = kept(h, to);
	if (h->err || from >= to)
		return h->err; /* seen by no commit left */
	if (sp->n && sp->v[sp->n - 1].to == from &&
	    sp->v[sp->n - 1].ino == ino) {
		sp->v[sp->n - 1].to = to; /* the same object, unbroken */
		return 0;
	}
	if (sp->n && sp->v[sp->n - 1].to > from)
		return KEEP_CORRUPT_BKPT("two directory entries of one name "
					 "at one commit");
	rc = GROW(sp->v, sp->cap, sp->n);
	if (!rc)
		sp->v[sp->n++] = (struct span){from, to, ino};
	return rc;
}

/* Replace h->cur, the spans of a directory path, by those of its entry
 * name (note 1). */
static int step(struct hist *h, const char *name)
{
	struct spans t;
	int rc = 0;

	h->next.n = 0;
	for (size_t i = 0; !rc && i < h->cur.n; i++) {
		h->parent = &h->cur.v[i];
		rc = db_dq_entries(h->q, h->parent->ino, name, h->parent->from,
				   h->parent->to, add_entry, h);
	}
	t = h->cur;
	h->cur = h->next;
	h->next = t;
	return rc;
}

/* Split path into h->cur's spans.  path is modified (components cut). */
static int resolve(struct hist *h, char *path, uint64_t first)
{
	int rc = GROW(h->cur.v, h->cur.cap, 0);

	if (rc)
		return rc;
	h->cur.v[0] = (struct span){first, h->end, KEEP_ROOT_INO};
	h->cur.n = 1;
	for (char *p = path; !rc && *p && h->cur.n;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		rc = step(h, p);
		p = slash ? slash + 1 : p + strlen(p);
	}
	return rc;
}

static int valid_path(const char *path)
{
	if (!*path)
		return 0;
	for (const char *p = path;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || len > KEEP_NAME_MAX ||
		    (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return KEEP_E_INVAL;
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

static int add_point(void *ctx, uint64_t commit)
{
	struct points *pt = ctx;
	int rc = GROW(pt->v, pt->cap, pt->n);

	if (!rc)
		pt->v[pt->n++] = commit;
	return rc;
}

static int add_version(struct hist *h, uint64_t commit, int kind,
		       unsigned flags, const struct kinode *k, uint64_t old)
{
	int rc = GROW(h->v, h->cap, h->n);

	if (rc)
		return rc;
	h->v[h->n++] = (struct keep_version){
	    .commit = commit,
	    .kind = kind,
	    .flags = flags,
	    .ino = k->a.ino,
	    .mode = k->a.mode,
	    .size = k->a.size,
	    .old_ino = old,
	};
	return 0;
}

/* The object of a span at commit c: present by the dirents, so its inode
 * row must be there. */
static int object_at(struct hist *h, uint64_t c, uint64_t ino,
		     struct kinode *k)
{
	int rc = db_inode_get(h->s, c, ino, k);

	if (rc == ENOENT)
		return KEEP_CORRUPT_BKPT("a directory entry names an inode "
					 "that is not there");
	return rc;
}

/* Versions of every span (notes 2 and 3), oldest first. */
static int versions(struct hist *h)
{
	struct points pt = {0};
	struct kinode last = {0}; /* the newest version so far */
	uint64_t last_view = 0;
	int rc = 0;

	for (size_t i = 0; !rc && i < h->cur.n; i++) {
		const struct span *sp = &h->cur.v[i];
		bool replaces = i > 0 && h->cur.v[i - 1].to == sp->from;
		bool ends = sp->to != h->end &&
			    !(i + 1 < h->cur.n && h->cur.v[i + 1].from == sp->to);
		struct kinode k;
		unsigned flags = 0;

		rc = object_at(h, sp->from, sp->ino, &k);
		if (!rc && replaces)
			rc = diff_objects(h->s, last_view, &last, sp->from, &k,
					  &flags);
		if (!rc)
			rc = add_version(h, sp->from,
					 replaces ? KEEP_DIFF_MODIFIED
						  : KEEP_DIFF_ADDED,
					 replaces ? flags | KEEP_DIFF_REPLACED
						  : 0,
					 &k, replaces ? last.a.ino : 0);
		if (rc)
			break;
		last = k;
		last_view = sp->from;
		pt.n = 0;
		if (!rc)
			rc = db_dq_points(h->q, sp->ino, sp->from, sp->to,
					  add_point, &pt);
		for (size_t j = 0; !rc && j < pt.n; j++) {
			uint64_t c = kept(h, pt.v[j]);
			rc = h->err;
			if (rc || c <= last_view || c >= sp->to)
				continue; /* seen already, or by no commit */
			rc = object_at(h, c, sp->ino, &k);
			if (!rc)
				rc = diff_objects(h->s, last_view, &last, c, &k,
						  &flags);
			if (rc || !flags)
				continue;
			rc = add_version(h, c, KEEP_DIFF_MODIFIED, flags, &k, 0);
			last = k;
			last_view = c;
		}
		if (!rc && ends)
			rc = add_version(h, sp->to, KEEP_DIFF_REMOVED, 0, &last,
					 0);
	}
	free(pt.v);
	return rc;
}

/* The time of commit c (one that exists: note 5). */
static int commit_time(struct hist *h, uint64_t c, int64_t *out)
{
	struct keep_commit_info ci;
	int rc = db_commit_get(h->s, c, &ci);

	if (rc == ENOENT)
		rc = KEEP_CORRUPT_BKPT("a version of a commit that is gone");
	if (!rc)
		*out = ci.time_ns;
	return rc;
}

static int gather(struct hist *h, char *path)
{
	struct keep_commit_info first;
	size_t n = 0;
	int rc;

	h->end = db_last_commit(h->s) + 1;
	rc = db_commit_list(h->s, 0, &first, 1, &n);
	if (rc || n == 0)
		return rc; /* no commit yet: no versions */
	rc = resolve(h, path, first.id);
	if (!rc)
		rc = versions(h);
	for (size_t i = 0; !rc && i < h->n; i++) {
		h->v[i].until = i + 1 < h->n ? h->v[i + 1].commit : 0;
		rc = commit_time(h, h->v[i].commit, &h->v[i].time_ns);
	}
	return rc;
}

int keep_history(struct keep_store *s, const char *path, keep_history_cb cb,
		 void *ctx)
{
	struct hist h = {.s = s};
	char *p;
	int rc;

	if (!s || !path || !cb)
		return KEEP_E_INVAL;
	while (*path == '/')
		path++;
	p = strdup(path);
	if (!p)
		return KEEP_E_NOMEM;
	for (size_t len = strlen(p); len && p[len - 1] == '/';)
		p[--len] = '\0';
	rc = valid_path(p);
	if (rc) {
		free(p);
		return rc;
	}
	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->mu);
	rc = db_read_begin(s);
	if (!rc)
		rc = db_dq_open(s, &h.q);
	if (!rc)
		rc = gather(&h, p);
	db_dq_close(h.q);
	db_read_end(s);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->commit_mu);
	for (size_t i = h.n; !rc && i > 0; i--)
		rc = cb(ctx, &h.v[i - 1]);
	free(h.v);
	free(h.cur.v);
	free(h.next.v);
	free(p);
	return rc;
}
