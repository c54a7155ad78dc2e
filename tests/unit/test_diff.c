/*
 * test_diff.c - keep_diff: each kind of change, renames, replacement,
 * hard links, whole trees, both directions, the live tree with dirty
 * data, stores made before the change journal, fsck of the journal, and
 * a brute-force check against full listings of both views after
 * thousands of random operations.
 */
#include <stdbool.h>

#include "unit_sql.h"

/* ---- keep_diff's output as lines ----------------------------------------- */

struct lines {
	char **v;
	size_t n, cap;
	bool full; /* with flags and inode numbers */
};

static void lines_add(struct lines *l, char *line)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	l->v[l->n++] = line;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static char *fmt_line(bool full, int kind, unsigned flags, uint64_t ino_a,
		      uint64_t ino_b, const char *pa, const char *pb)
{
	char *out = NULL;
	int n;

	if (full)
		n = asprintf(&out, "%c %02x %" PRIu64 " %" PRIu64 " %s|%s",
			     kind, flags, ino_a, ino_b, pa ? pa : "",
			     pb ? pb : "");
	else if (kind == KEEP_DIFF_RENAMED)
		n = asprintf(&out, "R %s -> %s", pa, pb);
	else
		n = asprintf(&out, "%c %s", kind,
			     kind == KEEP_DIFF_REMOVED ? pa : pb);
	if (n < 0)
		abort();
	return out;
}

static int take(void *ctx, const struct keep_diff_entry *e)
{
	struct lines *l = ctx;

	lines_add(l, fmt_line(l->full, e->kind, e->flags, e->ino_a, e->ino_b,
			      e->path_a, e->path_b));
	return 0;
}

/* keep_diff as one string, lines joined by ", " */
static char *diff_str(struct keep_store *s, uint64_t a, uint64_t b,
		      unsigned opts)
{
	struct lines l = {0};
	size_t len = 1;
	char *out;
	int rc = keep_diff(s, a, b, opts, take, &l);

	if (rc) {
		lines_free(&l);
		if (asprintf(&out, "error %s", keep_strerror(rc)) < 0)
			abort();
		return out;
	}
	for (size_t i = 0; i < l.n; i++)
		len += strlen(l.v[i]) + 2;
	out = calloc(1, len);
	for (size_t i = 0; i < l.n; i++) {
		if (i)
			strcat(out, ", ");
		strcat(out, l.v[i]);
	}
	lines_free(&l);
	return out;
}

/* Both the journal and the full scan give want. */
static void is_diff(struct keep_store *s, uint64_t a, uint64_t b,
		    const char *want, const char *what)
{
	char *j = diff_str(s, a, b, 0),
	     *f = diff_str(s, a, b, KEEP_DIFF_FULL_SCAN);

	is_str(j, want, "%s", what);
	is_str(f, want, "%s (full scan)", what);
	free(j);
	free(f);
}

static void setmode(struct keep_store *s, uint64_t ino, uint32_t mode)
{
	struct keep_attr a = {.mode = mode};

	keep_setattr(s, ino, &a, KEEP_SET_MODE, NULL);
}

/* ---- the kinds, one at a time
 * ------------------------------------------------ */

static void t_kinds(void)
{
	struct keep_store *s = unit_store("kinds", 4096);
	uint64_t R = KEEP_ROOT_INO, d, e, f, g, c0, c1, c2, c3, c4, c5;
	struct keep_attr a;

	d = unit_mkdir(s, R, "d");
	e = unit_mkdir(s, R, "e");
	f = unit_file(s, d, "f", "one", 3);
	g = unit_file(s, R, "g", "gee", 3);
	unit_file(s, R, "h", "aitch", 5);
	c0 = unit_commit(s);
	is_diff(s, c0, c0, "", "a view against itself: nothing");
	is_diff(s, c0, KEEP_LIVE, "", "nothing changed since the commit");

	unit_file(s, d, "new", "x", 1);
	keep_unlink(s, R, "h");
	keep_write(s, g, 0, "GEE", 3);
	c1 = unit_commit(s);
	is_diff(s, c0, c1, "+ d/new, M g, - h", "added, modified, removed");
	is_diff(s, c1, c0, "- d/new, M g, + h", "the reverse reads backwards");

	keep_rename(s, d, "f", d, "f2", 0);
	keep_rename(s, R, "g", e, "g", 0);
	c2 = unit_commit(s);
	is_diff(s, c1, c2, "R d/f -> d/f2, R g -> e/g",
		"renames within and across directories");

	keep_rename(s, R, "d", e, "d", 0);
	c3 = unit_commit(s);
	is_diff(s, c2, c3, "R d -> e/d",
		"a renamed directory is one line, not its contents");

	/* rename-over: a temporary file renamed over an existing one */
	uint64_t t = unit_file(s, e, "tmp", "new content", 11);
	keep_rename(s, e, "tmp", e, "g", 0);
	keep_forget(s, g);
	c4 = unit_commit(s);
	is_diff(s, c3, c4, "M e/g",
		"rename-over is a modification of the path");
	{
		struct lines l = {.full = true};
		keep_diff(s, c3, c4, 0, take, &l);
		char want[128];
		snprintf(want, sizeof(want),
			 "M %02x %" PRIu64 " %" PRIu64 " e/g|e/g",
			 KEEP_DIFF_REPLACED, g, t);
		ok(l.n == 1 && !strcmp(l.v[0], want),
		   "rename-over: REPLACED, old and new inode (%s)",
		   l.n ? l.v[0] : "none");
		lines_free(&l);
	}

	/* metadata only, xattrs, symlinks; ctime and atime alone do not count
	 */
	setmode(s, f, 0600);
	keep_setxattr(s, t, "user.k", "v", 1, 0);
	keep_symlink(s, R, "ln", "target", unit_cred(), &a);
	uint64_t ln = a.ino;
	unit_mkdir(s, e, "sub"); /* e's times change: e is not M */
	c5 = unit_commit(s);
	is_diff(s, c4, c5, "M e/d/f2, M e/g, + e/sub, + ln",
		"chmod, xattr, new symlink, a directory with a new entry");
	{
		struct keep_attr x = {.ctime_ns = 5, .atime_ns = 6};
		keep_setattr(s, f, &x, KEEP_SET_CTIME | KEEP_SET_ATIME, NULL);
	}
	is_diff(s, c5, KEEP_LIVE, "", "ctime and atime alone are no change");
	setmode(s, e, 0700);
	is_diff(s, c5, KEEP_LIVE, "M e", "a directory's own mode is");
	setmode(s, e, 0755);
	is_diff(s, c5, KEEP_LIVE, "", "and back to what it was: no change");
	(void)ln;

	/* hard links */
	uint64_t c6 = unit_commit(s);
	keep_link(s, t, R, "hard", &a);
	uint64_t c7 = unit_commit(s);
	is_diff(s, c6, c7, "+ hard", "a new hard link");
	keep_write(s, t, 0, "NEW", 3);
	uint64_t c8 = unit_commit(s);
	is_diff(s, c7, c8, "M e/g, M hard",
		"a changed file shows under each name");
	keep_unlink(s, e, "g");
	uint64_t c9 = unit_commit(s);
	is_diff(s, c8, c9, "- e/g", "one link removed");
	{
		struct lines l = {.full = true};
		keep_diff(s, c8, c9, 0, take, &l);
		ok(l.n == 1 && strtoul(l.v[0] + 2, NULL, 16) == KEEP_DIFF_LINK,
		   "the removed link has the LINK flag (%s)",
		   l.n ? l.v[0] : "");
		lines_free(&l);
	}
	keep_rename(s, R, "hard", R, "soft", 0);
	is_diff(s, c9, KEEP_LIVE, "R hard -> soft",
		"a hard-linked file renamed");

	/* uncommitted changes and dirty data of the writer's live tree */
	keep_store_set_write_times(s, 0); /* as under the writeback cache */
	keep_write(s, t, 0, "NEW", 3);	  /* the bytes it holds */
	is_diff(s, c9, KEEP_LIVE, "R hard -> soft",
		"dirty data with the same bytes");
	{
		struct lines l = {.full = true};
		keep_diff(s, c9, KEEP_LIVE, 0, take, &l);
		ok(l.n == 1 && strtoul(l.v[0] + 2, NULL, 16) == 0,
		   "renamed only (%s)", l.n ? l.v[0] : "");
		lines_free(&l);
	}
	keep_write(s, t, 1, "Z", 1);
	{
		struct lines l = {.full = true};
		keep_diff(s, c9, KEEP_LIVE, 0, take, &l);
		ok(l.n == 1 && strtoul(l.v[0] + 2, NULL, 16) ==
				   (KEEP_DIFF_CHANGED | KEEP_DIFF_DATA),
		   "renamed, and dirty data changed: CHANGED|DATA (%s)",
		   l.n ? l.v[0] : "");
		lines_free(&l);
	}
	keep_store_set_write_times(s, 1);

	/* trees */
	uint64_t c10 = unit_commit(s);
	uint64_t x = unit_mkdir(s, R, "x");
	uint64_t y = unit_mkdir(s, x, "y");
	unit_file(s, y, "1", "1", 1);
	unit_file(s, x, "2", "2", 1);
	uint64_t c11 = unit_commit(s);
	is_diff(s, c10, c11, "+ x, + x/2, + x/y, + x/y/1", "a tree added");
	keep_unlink(s, y, "1");
	keep_rmdir(s, x, "y");
	keep_unlink(s, x, "2");
	keep_rmdir(s, R, "x");
	uint64_t c12 = unit_commit(s);
	is_diff(s, c11, c12, "- x, - x/2, - x/y, - x/y/1", "a tree removed");
	is_diff(s, c10, c12, "", "made and removed in between: nothing");

	/* a directory replaced by a file of the same name */
	keep_rmdir(s, e, "sub");
	unit_file(s, e, "sub", "", 0);
	is_diff(s, c12, KEEP_LIVE, "M e/sub", "a directory replaced by a file");

	/* the root's own attributes */
	setmode(s, R, 0700);
	is_diff(s, c12, KEEP_LIVE, "M ., M e/sub", "the root is '.'");

	is_int(keep_diff(s, 999, c1, 0, take, NULL), ENOENT,
	       "a commit that does not exist: ENOENT");
	is_int(keep_diff(s, c1, c2, 0, NULL, NULL), KEEP_E_INVAL,
	       "no callback");

	/* names with odd bytes come back as they are */
	unit_file(s, R, "a\nb", "", 0);
	is_diff(s, c12, KEEP_LIVE, "M ., + a\nb, M e/sub",
		"a name with a newline");

	uint64_t problems = 99;
	is_int(keep_check(s, 1, NULL, NULL, &problems), 0, "fsck: clean");
	is_int(problems, 0, "fsck: no problems");

	/* a read-only handle: committed state only */
	unit_commit(s);
	keep_store_close(s);
	s = unit_reopen(NULL, "kinds", KEEP_OPEN_RDONLY);
	is_diff(s, c12, KEEP_LIVE, "M ., + a\nb, M e/sub",
		"a read-only handle: live is the newest commit");
	is_diff(s, c0, c2, "R d/f -> d/f2, + d/new, R g -> e/g, - h",
		"further back");
	keep_store_close(s);
	unit_rmtree(unit_path("kinds"));
	(void)c3;
}

/* ---- brute force
 * -------------------------------------------------------------- */

struct bname {
	uint64_t parent;
	char *name, *path;
};

struct obj {
	uint64_t ino;
	struct keep_attr a;
	uint8_t *data; /* content, symlink target */
	size_t len;
	char *xattrs; /* "name=hex;..." */
	struct bname *names;
	size_t nnames;
};

struct view {
	struct keep_store *s;
	uint64_t v;
	struct obj *o;
	size_t n, cap;
};

static struct obj *find_obj(struct view *w, uint64_t ino)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->o[i].ino == ino)
			return &w->o[i];
	return NULL;
}

static char *xattr_text(struct keep_store *s, uint64_t v, uint64_t ino)
{
	char list[8192], *out = calloc(1, 1);
	size_t len = 0, used = 0;

	if (keep_listxattr(s, v, ino, list, sizeof(list), &len))
		len = 0;
	for (size_t off = 0; off < len; off += strlen(list + off) + 1) {
		uint8_t val[512];
		size_t vl = 0;
		keep_getxattr(s, v, ino, list + off, val, sizeof(val), &vl);
		size_t need = used + strlen(list + off) + 2 * vl + 3;
		out = realloc(out, need);
		used += (size_t)sprintf(out + used, "%s=", list + off);
		for (size_t i = 0; i < vl; i++)
			used += (size_t)sprintf(out + used, "%02x", val[i]);
		used += (size_t)sprintf(out + used, ";");
	}
	return out;
}

struct walkctx {
	struct view *w;
	uint64_t dir;
	const char *dpath;
	uint64_t *subdirs;
	char **subpaths;
	size_t nsub, capsub;
};

static int walk_cb(void *ctx, const char *name, const struct keep_attr *attr,
		   uint64_t next)
{
	struct walkctx *c = ctx;
	struct view *w = c->w;
	struct obj *o = find_obj(w, attr->ino);
	char *path;

	(void)next;
	if (asprintf(&path, "%s%s%s", c->dpath, *c->dpath ? "/" : "", name) < 0)
		abort();
	if (!o) {
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 64;
			w->o = realloc(w->o, w->cap * sizeof(*w->o));
		}
		o = &w->o[w->n++];
		memset(o, 0, sizeof(*o));
		o->ino = attr->ino;
		keep_getattr(w->s, w->v, attr->ino, &o->a);
		if (S_ISREG(o->a.mode)) {
			o->data = malloc(o->a.size + 1);
			keep_read(w->s, w->v, o->ino, 0, o->a.size, o->data,
				  &o->len);
		} else if (S_ISLNK(o->a.mode)) {
			o->data = malloc(4097);
			keep_readlink(w->s, w->v, o->ino, (char *)o->data,
				      4097);
			o->len = strlen((char *)o->data);
		}
		o->xattrs = xattr_text(w->s, w->v, o->ino);
		if (S_ISDIR(attr->mode)) {
			if (c->nsub == c->capsub) {
				c->capsub = c->capsub ? c->capsub * 2 : 16;
				c->subdirs = realloc(
				    c->subdirs, c->capsub * sizeof(uint64_t));
				c->subpaths = realloc(
				    c->subpaths, c->capsub * sizeof(char *));
			}
			c->subdirs[c->nsub] = attr->ino;
			c->subpaths[c->nsub++] = strdup(path);
		}
	}
	o->names = realloc(o->names, (o->nnames + 1) * sizeof(*o->names));
	o->names[o->nnames++] = (struct bname){c->dir, strdup(name), path};
	return 0;
}

static void walk(struct view *w, uint64_t dir, const char *dpath)
{
	struct walkctx c = {.w = w, .dir = dir, .dpath = dpath};

	keep_readdir(w->s, w->v, dir, 0, walk_cb, &c);
	for (size_t i = 0; i < c.nsub; i++) {
		walk(w, c.subdirs[i], c.subpaths[i]);
		free(c.subpaths[i]);
	}
	free(c.subdirs);
	free(c.subpaths);
}

static void view_load(struct view *w, struct keep_store *s, uint64_t v)
{
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->v = v;
	/* the root, nameless */
	w->o = calloc(1, sizeof(*w->o));
	w->cap = w->n = 1;
	w->o[0].ino = KEEP_ROOT_INO;
	keep_getattr(s, v, KEEP_ROOT_INO, &w->o[0].a);
	w->o[0].xattrs = xattr_text(s, v, KEEP_ROOT_INO);
	walk(w, KEEP_ROOT_INO, "");
}

static void view_free(struct view *w)
{
	for (size_t i = 0; i < w->n; i++) {
		for (size_t j = 0; j < w->o[i].nnames; j++) {
			free(w->o[i].names[j].name);
			free(w->o[i].names[j].path);
		}
		free(w->o[i].names);
		free(w->o[i].data);
		free(w->o[i].xattrs);
	}
	free(w->o);
}

static unsigned obj_change(const struct obj *x, const struct obj *y)
{
	unsigned f = 0;

	if (x->a.mode != y->a.mode || x->a.uid != y->a.uid ||
	    x->a.gid != y->a.gid)
		f |= KEEP_DIFF_ATTR;
	if (!S_ISDIR(x->a.mode) &&
	    (x->a.size != y->a.size || x->a.rdev != y->a.rdev ||
	     x->a.mtime_ns != y->a.mtime_ns))
		f |= KEEP_DIFF_ATTR;
	if (x->len != y->len || (x->len && memcmp(x->data, y->data, x->len)))
		f |= KEEP_DIFF_DATA;
	if (strcmp(x->xattrs, y->xattrs))
		f |= KEEP_DIFF_XATTR;
	return f;
}

struct bpend {
	uint64_t ino;
	const char *path;
	bool both, used;
	unsigned change;
};

static int bp_path(const void *x, const void *y)
{
	return strcmp(((const struct bpend *)x)->path,
		      ((const struct bpend *)y)->path);
}

static int bp_ino(const void *x, const void *y)
{
	const struct bpend *a = x, *b = y;

	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return strcmp(a->path, b->path);
}

static const char *line_key(const char *l)
{
	/* "K ff a b pa|pb": removals sort by pa, the rest by pb */
	const char *p = l;
	for (int i = 0; i < 4; i++)
		p = strchr(p, ' ') + 1;
	return p;
}

static int cmp_lines(const void *x, const void *y)
{
	const char *a = *(char *const *)x, *b = *(char *const *)y;
	const char *ka = line_key(a), *kb = line_key(b);
	size_t la = strcspn(ka, "|"), lb = strcspn(kb, "|");
	if (a[0] != '-')
		ka += la + 1, la = strlen(ka);
	if (b[0] != '-')
		kb += lb + 1, lb = strlen(kb);
	/* compare as the NUL-terminated path strings core compares */
	size_t m = la < lb ? la : lb;
	int c = memcmp(ka, kb, m);
	if (c)
		return c;
	if (la != lb)
		return la < lb ? -1 : 1;
	return a[0] - b[0];
}

/* The differences from full listings of both views, by the rules of
 * keep.h, as lines in the full format. */
static void brute(struct view *A, struct view *B, struct lines *out)
{
	struct bpend *rem = NULL, *add = NULL;
	size_t nrem = 0, nadd = 0;

	out->full = true;
	rem = malloc((A->n + B->n) * 8 * sizeof(*rem) + 1);
	add = malloc((A->n + B->n) * 8 * sizeof(*add) + 1);
	/* objects of either view */
	for (int side = 0; side < 2; side++) {
		struct view *w = side ? B : A, *o = side ? A : B;
		for (size_t i = 0; i < w->n; i++) {
			struct obj *x = &w->o[i], *y = find_obj(o, x->ino);
			if (side && y)
				continue; /* done from a */
			struct obj *oa = side ? NULL : x, *ob = side ? x : y;
			bool both = oa && ob;
			unsigned ch = both ? obj_change(oa, ob) : 0;
			if (x->ino == KEEP_ROOT_INO) {
				if (ch)
					lines_add(out,
						  fmt_line(true, 'M', ch, 1, 1,
							   ".", "."));
				continue;
			}
			for (size_t k = 0; oa && k < oa->nnames; k++) {
				struct bname *n = &oa->names[k], *kept = NULL;
				for (size_t m = 0;
				     ob && m < ob->nnames && !kept; m++)
					if (ob->names[m].parent == n->parent &&
					    !strcmp(ob->names[m].name, n->name))
						kept = &ob->names[m];
				if (kept && ch)
					lines_add(out, fmt_line(true, 'M', ch,
								x->ino, x->ino,
								n->path,
								kept->path));
				else if (!kept)
					rem[nrem++] = (struct bpend){
					    x->ino, n->path, both, false, ch};
			}
			for (size_t m = 0; ob && m < ob->nnames; m++) {
				struct bname *n = &ob->names[m];
				bool kept = false;
				for (size_t k = 0;
				     oa && k < oa->nnames && !kept; k++)
					kept =
					    oa->names[k].parent == n->parent &&
					    !strcmp(oa->names[k].name, n->name);
				if (!kept)
					add[nadd++] = (struct bpend){
					    x->ino, n->path, both, false, ch};
			}
		}
	}
	if (nrem > 1)
		qsort(rem, nrem, sizeof(*rem), bp_path);
	if (nadd > 1)
		qsort(add, nadd, sizeof(*add), bp_path);
	for (size_t i = 0; i < nrem; i++)
		for (size_t j = 0; j < nadd; j++) {
			if (add[j].used || strcmp(rem[i].path, add[j].path))
				continue;
			if (rem[i].ino != add[j].ino)
				lines_add(
				    out, fmt_line(true, 'M', KEEP_DIFF_REPLACED,
						  rem[i].ino, add[j].ino,
						  rem[i].path, add[j].path));
			else if (rem[i].change)
				lines_add(out,
					  fmt_line(true, 'M', rem[i].change,
						   rem[i].ino, add[j].ino,
						   rem[i].path, add[j].path));
			rem[i].used = add[j].used = true;
			break;
		}
	if (nrem > 1)
		qsort(rem, nrem, sizeof(*rem), bp_ino);
	if (nadd > 1)
		qsort(add, nadd, sizeof(*add), bp_ino);
	for (size_t i = 0; i < nrem; i++) {
		if (rem[i].used || !rem[i].both)
			continue;
		for (size_t j = 0; j < nadd; j++) {
			if (add[j].used || !add[j].both ||
			    add[j].ino != rem[i].ino)
				continue;
			unsigned f = rem[i].change
					 ? rem[i].change | KEEP_DIFF_CHANGED
					 : 0;
			lines_add(out,
				  fmt_line(true, 'R', f, rem[i].ino, add[j].ino,
					   rem[i].path, add[j].path));
			rem[i].used = add[j].used = true;
			break;
		}
	}
	for (size_t i = 0; i < nrem; i++)
		if (!rem[i].used)
			lines_add(out,
				  fmt_line(true, '-',
					   rem[i].both ? KEEP_DIFF_LINK : 0,
					   rem[i].ino, 0, rem[i].path, NULL));
	for (size_t j = 0; j < nadd; j++)
		if (!add[j].used)
			lines_add(out,
				  fmt_line(true, '+',
					   add[j].both ? KEEP_DIFF_LINK : 0, 0,
					   add[j].ino, NULL, add[j].path));
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), cmp_lines);
	free(rem);
	free(add);
}

static int compare_lines(struct lines *got, struct lines *want,
			 const char *what)
{
	size_t n = got->n > want->n ? got->n : want->n;

	for (size_t i = 0; i < n; i++) {
		const char *g = i < got->n ? got->v[i] : "(none)";
		const char *w = i < want->n ? want->v[i] : "(none)";
		if (strcmp(g, w)) {
			diag("%s: line %zu: got '%s', want '%s' (%zu vs %zu "
			     "lines)",
			     what, i, g, w, got->n, want->n);
			return 0;
		}
	}
	return 1;
}

static int check_pair(struct keep_store *s, uint64_t a, uint64_t b,
		      size_t *changes)
{
	struct view A, B;
	struct lines want = {0}, got = {.full = true}, full = {.full = true};
	int good = 1;

	view_load(&A, s, a);
	view_load(&B, s, b);
	brute(&A, &B, &want);
	int rc = keep_diff(s, a, b, 0, take, &got);
	int rc2 = keep_diff(s, a, b, KEEP_DIFF_FULL_SCAN, take, &full);
	if (rc || rc2) {
		diag("keep_diff %" PRIu64 " %" PRIu64 ": %s / %s", a, b,
		     keep_strerror(rc), keep_strerror(rc2));
		good = 0;
	}
	if (good) {
		char what[64];
		snprintf(what, sizeof(what), "%" PRIu64 " -> %" PRIu64, a, b);
		good = compare_lines(&got, &want, what) &&
		       compare_lines(&full, &want, what);
	}
	*changes += want.n;
	lines_free(&want);
	lines_free(&got);
	lines_free(&full);
	view_free(&A);
	view_free(&B);
	return good;
}

static const char *const pool[] = {"a", "b", "c", "dd", "e f", "g\nh"};
#define NPOOL (sizeof(pool) / sizeof(pool[0]))

static void random_op(struct keep_store *s, uint64_t *dirs, size_t *ndirs,
		      size_t *kinds)
{
	uint64_t d = dirs[unit_rand() % *ndirs],
		 d2 = dirs[unit_rand() % *ndirs];
	const char *n = pool[unit_rand() % NPOOL],
		   *n2 = pool[unit_rand() % NPOOL];
	struct keep_attr a, x;
	uint8_t buf[9000];
	int op = (int)(unit_rand() % 13), rc = 0;

	if (keep_getattr(s, KEEP_LIVE, d, &x) || !x.nlink || !S_ISDIR(x.mode))
		return;
	bool have = keep_lookup(s, KEEP_LIVE, d, n, &a) == 0;
	switch (op) {
	case 0:
		rc = unit_mkfile(s, d, n, 0644, &a);
		break;
	case 1:
	case 2:
		if (have && S_ISREG(a.mode)) {
			size_t len = unit_rand() % sizeof(buf);
			unit_fill_random(buf, len);
			rc =
			    keep_write(s, a.ino, unit_rand() % 20000, buf, len);
		}
		break;
	case 3:
		if (have && S_ISREG(a.mode)) {
			x.size = unit_rand() % 12000;
			rc = keep_setattr(s, a.ino, &x, KEEP_SET_SIZE, NULL);
		}
		break;
	case 4:
		rc = keep_rename(s, d, n, d2, n2,
				 unit_rand() % 4 ? 0 : KEEP_RENAME_EXCHANGE);
		break;
	case 5:
		if (have && !S_ISDIR(a.mode))
			rc = keep_link(s, a.ino, d2, n2, &x);
		break;
	case 6:
		if (have && !S_ISDIR(a.mode)) {
			rc = keep_unlink(s, d, n);
			keep_forget(s, a.ino);
		}
		break;
	case 7:
		rc = keep_mkdir(s, d, n, 0755, unit_cred(), &a);
		if (!rc && *ndirs < 256)
			dirs[(*ndirs)++] = a.ino;
		break;
	case 8:
		if (have && S_ISDIR(a.mode)) {
			rc = keep_rmdir(s, d, n);
			keep_forget(s, a.ino);
		}
		break;
	case 9:
		if (have) {
			x.mode = (uint32_t)(unit_rand() % 2 ? 0600 : 0755);
			rc = keep_setattr(s, a.ino, &x, KEEP_SET_MODE, NULL);
		}
		break;
	case 10:
		if (have) {
			char v = (char)('0' + unit_rand() % 3);
			if (unit_rand() % 3)
				rc = keep_setxattr(s, a.ino,
						   unit_rand() % 2 ? "user.a"
								   : "user.b",
						   &v, 1, 0);
			else
				rc = keep_removexattr(s, a.ino, "user.a");
		}
		break;
	case 11:
		rc = keep_symlink(s, d, n, unit_rand() % 2 ? "t1" : "t2",
				  unit_cred(), &a);
		break;
	case 12:
		if (have) {
			x.mtime_ns = (int64_t)(unit_rand() % 3);
			rc = keep_setattr(s, a.ino, &x, KEEP_SET_MTIME, NULL);
		}
		break;
	}
	if (rc == 0)
		kinds[op]++;
}

static void t_brute(void)
{
	struct keep_store *s = unit_store("brute", 4096);
	uint64_t dirs[256] = {KEEP_ROOT_INO}, commits[64];
	size_t ndirs = 1, ncommits = 0, kinds[13] = {0}, changes = 0;
	int bad = 0, pairs = 0;

	commits[ncommits++] = unit_commit(s);
	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < 60; i++)
			random_op(s, dirs, &ndirs, kinds);
		/* against the live tree, uncommitted rows and dirty data */
		uint64_t old = commits[unit_rand() % ncommits];
		bad += !check_pair(s, old, KEEP_LIVE, &changes);
		bad += !check_pair(s, KEEP_LIVE, old, &changes);
		pairs += 2;
		if (round % 2 == 0 && ncommits < 64)
			commits[ncommits++] = unit_commit(s);
	}
	commits[ncommits++] = unit_commit(s);
	for (int i = 0; i < 40; i++) {
		uint64_t a = commits[unit_rand() % ncommits];
		uint64_t b = commits[unit_rand() % ncommits];
		bad += !check_pair(s, a, b, &changes);
		pairs++;
	}
	size_t total = 0;
	for (int i = 0; i < 13; i++)
		total += kinds[i];
	diag("%zu operations done (create %zu, write %zu, truncate %zu, rename "
	     "%zu, link %zu, unlink %zu, mkdir %zu, rmdir %zu, chmod %zu, "
	     "xattr %zu, symlink %zu, utimes %zu); %d pairs, %zu differences",
	     total, kinds[0], kinds[1] + kinds[2], kinds[3], kinds[4], kinds[5],
	     kinds[6], kinds[7], kinds[8], kinds[9], kinds[10], kinds[11],
	     kinds[12], pairs, changes);
	ok(total >= 1000, "at least 1,000 random operations succeeded (%zu)",
	   total);
	is_int(bad, 0, "keep_diff equals the brute force on %d pairs of views",
	       pairs);
	uint64_t problems = 99;
	is_int(keep_check(s, 0, NULL, NULL, &problems), 0, "fsck clean after");

	/* the same store, reopened read-only */
	keep_store_close(s);
	s = unit_reopen(NULL, "brute", KEEP_OPEN_RDONLY);
	bad = 0;
	for (int i = 0; i < 10; i++)
		bad += !check_pair(s, commits[unit_rand() % ncommits],
				   KEEP_LIVE, &changes);
	is_int(bad, 0, "read-only handle: equal on 10 more pairs");
	keep_store_close(s);
}

/* ---- stores made before the journal, and fsck of it
 * ------------------------------ */

static void t_old_store(void)
{
	struct keep_store *s = unit_store("old", 4096);
	uint64_t c1, c2, c3, problems = 0;

	uint64_t ia = unit_file(s, KEEP_ROOT_INO, "a", "a", 1);
	c1 = unit_commit(s);
	unit_file(s, KEEP_ROOT_INO, "b", "b", 1);
	keep_unlink(s, KEEP_ROOT_INO, "a");
	keep_forget(s, ia);
	c2 = unit_commit(s);
	keep_store_close(s);
	/* as a store made before the journal */
	unit_sql("old", "DROP TABLE changes; DROP INDEX dirents_ino; "
			"DELETE FROM meta WHERE key LIKE 'changes_%'");
	s = unit_reopen(NULL, "old", KEEP_OPEN_RDONLY);
	is_diff(s, c1, c2, "- a, + b", "read-only, no journal: whole tables");
	is_int(keep_check(s, 0, NULL, NULL, &problems), 0,
	       "fsck of a store without the journal: clean");
	keep_store_close(s);

	s = unit_reopen(NULL, "old", KEEP_OPEN_WRITE);
	unit_file(s, KEEP_ROOT_INO, "c", "c", 1);
	c3 = unit_commit(s);
	is_diff(s, c1, c3, "- a, + b, + c", "reaching before the journal");
	is_diff(s, c2, c3, "+ c", "within the journal");
	is_int(keep_check(s, 0, NULL, NULL, &problems), 0, "fsck clean");
	keep_store_close(s);
	is_int(unit_sql_int("old", "SELECT value FROM meta WHERE key = "
				   "'changes_from'"),
	       (long long)c2 + 1, "the journal starts after the upgrade");

	/* a journal row lost: fsck says so */
	unit_sql("old", "DELETE FROM changes WHERE ino = (SELECT ino FROM "
			"dirents WHERE name = CAST('c' AS BLOB))");
	s = unit_reopen(NULL, "old", KEEP_OPEN_RDONLY);
	is_int(keep_check(s, 0, NULL, NULL, &problems), KEEP_E_CORRUPT,
	       "fsck: a change missing from the journal");
	ok(problems >= 1, "counted (%" PRIu64 ")", problems);
	keep_store_close(s);

	/* commits made without the journal (an older program): the journal
	 * restarts after them */
	unit_sql("old",
		 "INSERT OR REPLACE INTO meta VALUES ('changes_upto', 1)");
	s = unit_reopen(NULL, "old", KEEP_OPEN_RDONLY);
	is_diff(s, c2, c3, "+ c", "journal behind the commits: whole tables");
	keep_store_close(s);
	s = unit_reopen(NULL, "old", KEEP_OPEN_WRITE);
	keep_store_close(s);
	is_int(unit_sql_int("old", "SELECT value FROM meta WHERE key = "
				   "'changes_from'"),
	       (long long)c3 + 1, "a writable open restarts it");
}

int main(void)
{
	unit_begin("diff");
	unit_seed(11);
	t_kinds();
	t_old_store();
	t_brute();
	is_int(unit_log_problems, 0, "no errors or warnings logged");
	unit_end();
	return tap_done();
}
