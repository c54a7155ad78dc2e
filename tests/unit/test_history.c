/*
 * test_history.c - keep_history: each kind of version, atomic writes by
 * rename-over, directories on the way renamed and made again, what is
 * not a version (atime, ctime, link count, uncommitted changes), bad
 * paths, a read-only handle, and a brute-force check against the state
 * of the path at every commit after hundreds of random operations.
 */
#include <stdbool.h>

#include "unit.h"

#define R KEEP_ROOT_INO

/* ---- keep_history as a string ------------------------------------------- */

struct hbuf {
	char s[16384];
	struct keep_version v[512];
	size_t n;
};

static int take(void *ctx, const struct keep_version *v)
{
	struct hbuf *h = ctx;
	size_t used = strlen(h->s);
	char flags[8] = "", *f = flags;

	if (v->flags & KEEP_DIFF_DATA)
		*f++ = 'd';
	if (v->flags & KEEP_DIFF_ATTR)
		*f++ = 'a';
	if (v->flags & KEEP_DIFF_XATTR)
		*f++ = 'x';
	if (v->flags & KEEP_DIFF_REPLACED)
		*f++ = 'r';
	*f = '\0';
	snprintf(h->s + used, sizeof(h->s) - used,
		 "%s%c%s%s @%" PRIu64 " #%" PRIu64 " %" PRIu64, used ? ", " : "",
		 v->kind, *flags ? ":" : "", flags, v->commit, v->ino, v->size);
	if (h->n < sizeof(h->v) / sizeof(h->v[0]))
		h->v[h->n++] = *v;
	return 0;
}

/* keep_history of path as "KIND[:FLAGS] @COMMIT #INO SIZE, ..." (newest
 * first), or "error ..." */
static const char *hist(struct keep_store *s, const char *path,
			struct hbuf *h)
{
	int rc;

	memset(h, 0, sizeof(*h));
	rc = keep_history(s, path, take, h);
	if (rc)
		snprintf(h->s, sizeof(h->s), "error %s", keep_strerror(rc));
	return h->s;
}

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
	static char b[4][16384];
	static unsigned k;
	char *out = b[k++ % 4];
	va_list ap;

	va_start(ap, f);
	vsnprintf(out, sizeof(b[0]), f, ap);
	va_end(ap);
	return out;
}

static void set_mode(struct keep_store *s, uint64_t ino, uint32_t mode)
{
	struct keep_attr a = {.mode = mode};
	int rc = keep_setattr(s, ino, &a, KEEP_SET_MODE, NULL);

	if (rc)
		diag("chmod: %s", keep_strerror(rc));
}

/* Replace R/name atomically: write a temporary file, commit, rename it
 * over name.  Returns the new file's inode. */
static uint64_t atomic_write(struct keep_store *s, uint64_t dir,
			     const char *name, const char *text)
{
	uint64_t ino = unit_file(s, dir, ".tmp", text, strlen(text));
	int rc;

	unit_commit(s);
	rc = keep_rename(s, dir, ".tmp", dir, name, 0);
	if (rc)
		diag("rename over %s: %s", name, keep_strerror(rc));
	return ino;
}

/* ---- each kind ----------------------------------------------------------- */

static void t_kinds(void)
{
	struct keep_store *s = unit_store("kinds", 4096);
	struct hbuf h;
	struct keep_attr a;
	uint64_t c[12], f, g;

	f = unit_file(s, R, "f", "one", 3);
	c[0] = unit_commit(s);
	keep_write(s, f, 0, "two!", 4);
	c[1] = unit_commit(s);
	set_mode(s, f, 0600);
	c[2] = unit_commit(s);
	keep_setxattr(s, f, "user.k", "v", 1, 0);
	c[3] = unit_commit(s);
	/* not versions: another file, atime, ctime and nlink (a link) */
	unit_file(s, R, "other", "x", 1);
	c[4] = unit_commit(s);
	a.atime_ns = 12345;
	keep_setattr(s, f, &a, KEEP_SET_ATIME, NULL);
	a.ctime_ns = 67890;
	keep_setattr(s, f, &a, KEEP_SET_CTIME, NULL);
	keep_link(s, f, R, "hard", NULL);
	c[5] = unit_commit(s);
	/* through the other name: still this path's object */
	keep_write(s, f, 4, "+", 1);
	keep_unlink(s, R, "hard");
	c[6] = unit_commit(s);
	keep_unlink(s, R, "f");
	c[7] = unit_commit(s);
	unit_commit(s); /* empty commits change nothing */
	g = unit_file(s, R, "f", "again", 5);
	c[8] = unit_commit(s);

	char want_f[512];
	snprintf(want_f, sizeof(want_f), "%s",
		 fmt("+ @%" PRIu64 " #%" PRIu64 " 5, - @%" PRIu64 " #%" PRIu64
		     " 5, M:da @%" PRIu64 " #%" PRIu64 " 5, M:x @%" PRIu64
		     " #%" PRIu64 " 4, M:a @%" PRIu64 " #%" PRIu64
		     " 4, M:da @%" PRIu64 " #%" PRIu64 " 4, + @%" PRIu64
		     " #%" PRIu64 " 3",
		     c[8], g, c[7], f, c[6], f, c[3], f, c[2], f, c[1], f, c[0],
		     f));
	is_str(hist(s, "f", &h), want_f, "every kind of version, newest first");
	ok(h.n == 7 && h.v[0].until == 0 && h.v[1].until == c[8] &&
		   h.v[6].until == c[1],
	   "each version lasts until the next one");
	{
		struct keep_commit_info ci;
		bool times = true;
		for (size_t i = 0; i < h.n; i++)
			times = times && keep_commit_get(s, h.v[i].commit, &ci) == 0 &&
				ci.time_ns == h.v[i].time_ns;
		ok(times, "each version carries its commit's time");
	}
	ok(h.n == 7 && S_ISREG(h.v[0].mode) && (h.v[2].mode & 07777) == 0600,
	   "versions carry the mode of their object");
	is_str(hist(s, "other", &h),
	       fmt("+ @%" PRIu64 " #%" PRIu64 " 1", c[4],
		   unit_ino(s, KEEP_LIVE, R, "other")),
	       "a file never changed has one version");
	is_str(hist(s, "never", &h), "", "a path that never existed has none");
	is_str(hist(s, "f/under", &h), "", "nor has a path under a file");
	is_str(hist(s, "", &h), fmt("+ @1 #1 0"),
	       "the root: made with the store, its entries are no change");

	/* uncommitted changes are not versions yet */
	keep_write(s, g, 0, "AGAIN", 5);
	unit_file(s, R, "fresh", "", 0);
	is_str(hist(s, "f", &h), want_f, "an uncommitted write is no version");
	is_str(hist(s, "fresh", &h), "", "nor an uncommitted file");
	c[9] = unit_commit(s);
	is_str(hist(s, "fresh", &h),
	       fmt("+ @%" PRIu64 " #%" PRIu64 " 0", c[9],
		   unit_ino(s, KEEP_LIVE, R, "fresh")),
	       "once committed it is");

	/* the same from a read-only handle */
	char want[16384];
	snprintf(want, sizeof(want), "%s", hist(s, "f", &h));
	s = unit_reopen(s, "kinds", KEEP_OPEN_RDONLY);
	is_str(hist(s, "f", &h), want, "a read-only handle sees the same");
	is_str(hist(s, "/f/", &h), want, "slashes around the path are ignored");

	/* bad paths change nothing and say so */
	is_str(hist(s, "a/../f", &h), "error invalid argument", "'..' refused");
	is_str(hist(s, "./f", &h), "error invalid argument", "'.' refused");
	is_str(hist(s, "a//f", &h), "error invalid argument",
	       "an empty component refused");
	char longname[300];
	memset(longname, 'n', 256);
	longname[256] = '\0';
	is_str(hist(s, longname, &h), "error invalid argument",
	       "a component over 255 bytes refused");
	ok(keep_history(s, NULL, take, &h) == KEEP_E_INVAL, "NULL path refused");
	keep_store_close(s);
}

/* ---- atomic writes -------------------------------------------------------- */

static void t_atomic(void)
{
	struct keep_store *s = unit_store("atomic", 4096);
	struct hbuf h;
	uint64_t ino[6], commit[6];
	char text[6][64];

	for (int i = 0; i < 6; i++) {
		/* the fourth rewrite is the same bytes as the third */
		snprintf(text[i], sizeof(text[i]), "{\"version\": %d}\n",
			 i == 3 ? 2 : i);
		ino[i] = atomic_write(s, R, "mcp.json", text[i]);
		commit[i] = unit_commit(s);
	}
	hist(s, "mcp.json", &h);
	ok(h.n == 6, "six atomic writes are six versions (got %zu)", h.n);
	bool right = h.n == 6;
	for (size_t i = 0; right && i < 6; i++) {
		const struct keep_version *v = &h.v[5 - i];
		right = v->commit == commit[i] && v->ino == ino[i] &&
			v->kind == (i ? KEEP_DIFF_MODIFIED : KEEP_DIFF_ADDED) &&
			(i == 0 || (v->flags & KEEP_DIFF_REPLACED)) &&
			v->old_ino == (i ? ino[i - 1] : 0) &&
			unit_same_str(s, v->commit, v->ino, text[i]);
		if (!right)
			diag("version %zu: %s", i, h.s);
	}
	ok(right, "each is a replacement by the next file, with its bytes");
	ok(h.n == 6 && (h.v[2].flags & KEEP_DIFF_DATA) == 0 &&
		   (h.v[1].flags & KEEP_DIFF_DATA),
	   "a rewrite with the same bytes is a replacement without new "
	   "content");
	is_str(hist(s, ".tmp", &h),
	       fmt("- @%" PRIu64 " #%" PRIu64 " 15, + @%" PRIu64 " #%" PRIu64
		   " 15, - @%" PRIu64 " #%" PRIu64 " 15, + @%" PRIu64
		   " #%" PRIu64 " 15, - @%" PRIu64 " #%" PRIu64
		   " 15, + @%" PRIu64 " #%" PRIu64 " 15, - @%" PRIu64
		   " #%" PRIu64 " 15, + @%" PRIu64 " #%" PRIu64
		   " 15, - @%" PRIu64 " #%" PRIu64 " 15, + @%" PRIu64
		   " #%" PRIu64 " 15, - @%" PRIu64 " #%" PRIu64
		   " 15, + @%" PRIu64 " #%" PRIu64 " 15",
		   commit[5], ino[5], commit[5] - 1, ino[5], commit[4], ino[4],
		   commit[4] - 1, ino[4], commit[3], ino[3], commit[3] - 1,
		   ino[3], commit[2], ino[2], commit[2] - 1, ino[2], commit[1],
		   ino[1], commit[1] - 1, ino[1], commit[0], ino[0],
		   commit[0] - 1, ino[0]),
	       "the temporary name comes and goes");
	keep_store_close(s);
}

/* ---- directories on the way ---------------------------------------------- */

static void t_dirs(void)
{
	struct keep_store *s = unit_store("dirs", 4096);
	struct hbuf h;
	uint64_t d, d2, e, f, f2, c[6];

	d = unit_mkdir(s, R, "d");
	f = unit_file(s, d, "f", "first", 5);
	c[0] = unit_commit(s);
	keep_rename(s, R, "d", R, "old", 0); /* d/f goes with it */
	c[1] = unit_commit(s);
	d2 = unit_mkdir(s, R, "d");
	f2 = unit_file(s, d2, "f", "second", 6);
	c[2] = unit_commit(s);
	/* in one commit: the new d goes, the old one comes back */
	keep_rename(s, R, "d", R, "gone", 0);
	keep_rename(s, R, "old", R, "d", 0);
	c[3] = unit_commit(s);
	/* the file moves to another directory that takes d's place */
	e = unit_mkdir(s, R, "e");
	unit_commit(s);
	keep_rename(s, d, "f", e, "f", 0);
	keep_rename(s, R, "d", R, "old2", 0);
	keep_rename(s, R, "e", R, "d", 0);
	c[4] = unit_commit(s);
	keep_write(s, f, 0, "FIRST", 5);
	c[5] = unit_commit(s);

	is_str(hist(s, "d/f", &h),
	       fmt("M:da @%" PRIu64 " #%" PRIu64 " 5, M:dar @%" PRIu64
		   " #%" PRIu64 " 5, + @%" PRIu64 " #%" PRIu64 " 6, - @%" PRIu64
		   " #%" PRIu64 " 5, + @%" PRIu64 " #%" PRIu64 " 5",
		   c[5], f, c[3], f, c[2], f2, c[1], f, c[0], f),
	       "the path follows the directories that held it");
	is_str(hist(s, "d", &h),
	       fmt("M:r @%" PRIu64 " #%" PRIu64 " 0, M:r @%" PRIu64
		   " #%" PRIu64 " 0, + @%" PRIu64 " #%" PRIu64
		   " 0, - @%" PRIu64 " #%" PRIu64 " 0, + @%" PRIu64
		   " #%" PRIu64 " 0",
		   c[4], e, c[3], d, c[2], d2, c[1], d, c[0], d),
	       "a directory's versions: its own changes, not its entries");
	keep_store_close(s);
}

/* ---- brute force ---------------------------------------------------------- */

/* The state of a path in one view, for comparison. */
struct state {
	bool there;
	struct keep_attr a;
	char *bytes; /* content or symlink target */
	size_t len;
	char *xattrs; /* "name=value;" sorted by the store's listing */
};

static void state_free(struct state *st)
{
	free(st->bytes);
	free(st->xattrs);
	memset(st, 0, sizeof(*st));
}

static void state_load(struct keep_store *s, uint64_t view, const char *path,
		       struct state *st)
{
	char *p = strdup(path), *save = NULL;
	uint64_t cur = R;
	struct keep_attr a;
	int rc = keep_getattr(s, view, R, &a);

	memset(st, 0, sizeof(*st));
	for (char *t = strtok_r(p, "/", &save); !rc && t;
	     t = strtok_r(NULL, "/", &save)) {
		if (!S_ISDIR(a.mode)) {
			rc = ENOTDIR;
			break;
		}
		rc = keep_lookup(s, view, cur, t, &a);
		cur = a.ino;
	}
	free(p);
	if (rc)
		return;
	st->there = true;
	st->a = a;
	if (S_ISREG(a.mode)) {
		st->bytes = malloc(a.size + 1);
		keep_read(s, view, a.ino, 0, a.size, st->bytes, &st->len);
	} else if (S_ISLNK(a.mode)) {
		st->bytes = malloc(4097);
		keep_readlink(s, view, a.ino, st->bytes, 4097);
		st->len = strlen(st->bytes);
	}
	char names[4096], val[256];
	size_t nl = 0, vl;
	size_t used = 0;
	st->xattrs = calloc(1, 8192);
	keep_listxattr(s, view, a.ino, names, sizeof(names), &nl);
	for (size_t off = 0; off < nl; off += strlen(names + off) + 1) {
		vl = 0;
		keep_getxattr(s, view, a.ino, names + off, val, sizeof(val),
			      &vl);
		used += (size_t)snprintf(st->xattrs + used, 8192 - used,
					 "%s=%.*s;", names + off, (int)vl, val);
	}
}

/* keep_diff's rules (keep.h) on two states of a path */
static unsigned state_change(const struct state *x, const struct state *y)
{
	unsigned f = 0;

	if ((x->a.mode & S_IFMT) != (y->a.mode & S_IFMT))
		return KEEP_DIFF_DATA | KEEP_DIFF_ATTR;
	if (x->a.mode != y->a.mode || x->a.uid != y->a.uid ||
	    x->a.gid != y->a.gid)
		f |= KEEP_DIFF_ATTR;
	if (!S_ISDIR(x->a.mode) &&
	    (x->a.size != y->a.size || x->a.rdev != y->a.rdev ||
	     x->a.mtime_ns != y->a.mtime_ns))
		f |= KEEP_DIFF_ATTR;
	if (x->len != y->len || (x->len && memcmp(x->bytes, y->bytes, x->len)))
		f |= KEEP_DIFF_DATA;
	if (strcmp(x->xattrs, y->xattrs))
		f |= KEEP_DIFF_XATTR;
	return f;
}

struct ids {
	uint64_t v[4096];
	size_t n;
};

static int take_id(void *ctx, const struct keep_commit_info *c)
{
	struct ids *ids = ctx;

	if (ids->n < 4096)
		ids->v[ids->n++] = c->id;
	return 0;
}

/* The versions of path from the state at every commit there is (up to
 * last), newest first, in hist()'s format. */
static void brute(struct keep_store *s, uint64_t last, const char *path,
		  char *out, size_t size)
{
	struct state prev = {0}, ver = {0}, cur;
	static struct ids ids;
	char *lines[4096];
	size_t n = 0, used = 0;

	ids.n = 0;
	keep_commit_list(s, 0, take_id, &ids);
	for (size_t k = 0; k < ids.n && ids.v[k] <= last; k++) {
		uint64_t c = ids.v[k];
		char *l = NULL;
		state_load(s, c, path, &cur);
		if (!prev.there && cur.there) {
			if (asprintf(&l, "+ @%" PRIu64 " #%" PRIu64 " %" PRIu64,
				     c, cur.a.ino, cur.a.size) < 0)
				abort();
		} else if (prev.there && !cur.there) {
			if (asprintf(&l, "- @%" PRIu64 " #%" PRIu64 " %" PRIu64,
				     c, ver.a.ino, ver.a.size) < 0)
				abort();
		} else if (cur.there) {
			unsigned f = state_change(&ver, &cur);
			if (prev.a.ino != cur.a.ino)
				f |= KEEP_DIFF_REPLACED;
			if (f && asprintf(&l, "M:%s%s%s%s @%" PRIu64
					  " #%" PRIu64 " %" PRIu64,
					  f & KEEP_DIFF_DATA ? "d" : "",
					  f & KEEP_DIFF_ATTR ? "a" : "",
					  f & KEEP_DIFF_XATTR ? "x" : "",
					  f & KEEP_DIFF_REPLACED ? "r" : "", c,
					  cur.a.ino, cur.a.size) < 0)
				abort();
		}
		if (l) {
			if (n < 4096)
				lines[n++] = l;
			else
				free(l);
			if (cur.there) {
				state_free(&ver);
				state_load(s, c, path, &ver);
			}
		}
		state_free(&prev);
		prev = cur;
	}
	state_free(&prev);
	state_free(&ver);
	out[0] = '\0';
	while (n > 0) {
		char *l = lines[--n];
		used += (size_t)snprintf(out + used, size - used, "%s%s",
					 used ? ", " : "", l);
		free(l);
	}
}

static const char *const names[] = {"a", "b", "d/a", "d/b", "e/a"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* The directory of R-relative "x" or "d/x", made if asked; 0 if absent. */
static uint64_t dir_of(struct keep_store *s, const char *path,
		       const char **base, bool make)
{
	const char *slash = strchr(path, '/');
	char dname[8];
	uint64_t d;

	*base = slash ? slash + 1 : path;
	if (!slash)
		return R;
	snprintf(dname, sizeof(dname), "%.*s", (int)(slash - path), path);
	d = unit_ino(s, KEEP_LIVE, R, dname);
	if (!d && make)
		d = unit_mkdir(s, R, dname);
	return d;
}

static void random_op(struct keep_store *s, unsigned *tmpseq)
{
	const char *path = names[unit_rand() % NNAMES], *base, *base2;
	const char *other = names[unit_rand() % NNAMES];
	uint64_t d = dir_of(s, path, &base, unit_rand() % 2);
	uint64_t d2 = dir_of(s, other, &base2, unit_rand() % 2);
	uint64_t ino = d ? unit_ino(s, KEEP_LIVE, d, base) : 0;
	char text[64], tmp[32];
	struct keep_attr a = {0};

	snprintf(text, sizeof(text), "text %u\n", (unsigned)(unit_rand() % 5));
	switch (unit_rand() % 12) {
	case 0: /* atomic write */
		if (!d)
			return;
		snprintf(tmp, sizeof(tmp), ".t%u", (*tmpseq)++);
		unit_file(s, d, tmp, text, strlen(text));
		keep_rename(s, d, tmp, d, base, 0);
		return;
	case 1: /* write in place */
		if (ino)
			keep_write(s, ino, unit_rand() % 8, text, strlen(text));
		else if (d)
			unit_file(s, d, base, text, strlen(text));
		return;
	case 2:
		a.size = unit_rand() % 12;
		if (ino)
			keep_setattr(s, ino, &a, KEEP_SET_SIZE, NULL);
		return;
	case 3:
		if (ino)
			set_mode(s, ino, (unit_rand() % 2 ? 0600 : 0644) |
					     (unit_rand() % 2 ? S_IFREG : 0));
		return;
	case 4:
		if (ino)
			keep_setxattr(s, ino, "user.x", text, 6, 0);
		return;
	case 5:
		if (d)
			keep_unlink(s, d, base);
		return;
	case 6:
		if (d && d2)
			keep_rename(s, d, base, d2, base2, 0);
		return;
	case 7:
		if (ino && d2)
			keep_link(s, ino, d2, base2, NULL);
		return;
	case 8: /* a directory renamed, removed or made */
		if (unit_rand() % 2)
			keep_rename(s, R, unit_rand() % 2 ? "d" : "e", R,
				    unit_rand() % 2 ? "d" : "e",
				    unit_rand() % 2 ? KEEP_RENAME_EXCHANGE : 0);
		else
			keep_rmdir(s, R, unit_rand() % 2 ? "d" : "e");
		return;
	case 9: /* times only: atime makes no version, mtime does */
		a.atime_ns = (int64_t)(unit_rand() % 1000);
		a.mtime_ns = (int64_t)(unit_rand() % 1000);
		if (ino)
			keep_setattr(s, ino, &a,
				     unit_rand() % 2 ? KEEP_SET_ATIME
						     : KEEP_SET_MTIME,
				     NULL);
		return;
	case 10:
		if (d && !ino)
			keep_symlink(s, d, base, text, unit_cred(), NULL);
		return;
	default:
		if (ino)
			keep_removexattr(s, ino, "user.x");
		return;
	}
}

static int check_all(struct keep_store *s, uint64_t last, const char *what);

static void t_brute(void)
{
	struct keep_store *s = unit_store("brute", 4096);
	struct keep_gc_result r;
	struct keep_snapshot snap;
	unsigned tmpseq = 0;
	uint64_t last = 0;
	char name[32];

	for (int i = 0; i < 600; i++) {
		random_op(s, &tmpseq);
		if (unit_rand() % 3 == 0)
			last = unit_commit(s);
		if (unit_rand() % 40 == 0) {
			snprintf(name, sizeof(name), "s%d", i);
			keep_snapshot_create(s, name, KEEP_ORIGIN_MANUAL, &snap);
		}
	}
	last = unit_commit(s);
	diag("%" PRIu64 " commits", last);
	ok(check_all(s, last, "every commit") == 0,
	   "history equals the state at every commit for %zu paths",
	   NNAMES + 2);

	/* garbage collection keeps the snapshots, every third commit and
	 * the newest: the history is that of the commits left */
	struct keep_commit_info ci;
	uint64_t pins[4096];
	size_t npins = 0;
	for (uint64_t c = 3; c <= last && npins < 4096; c += 3)
		pins[npins++] = c;
	keep_commit_get(s, last, &ci);
	struct keep_gc_req req = {.now_ns = ci.time_ns + 1, .pins = pins,
				  .npins = npins};
	int rc = keep_gc(s, &req, &r);
	ok(rc == 0 && r.done && r.commits > last / 3,
	   "gc dropped %" PRIu64 " commits", r.commits);
	ok(check_all(s, last, "the commits left") == 0,
	   "after gc, history equals the state at every commit left");
	keep_store_close(s);
}

/* hist() against brute() for every name; the number that differ */
static int check_all(struct keep_store *s, uint64_t last, const char *what)
{
	static char want[65536];
	struct hbuf h;
	int bad = 0;

	diag("checking %s", what);
	for (size_t i = 0; i < NNAMES; i++) {
		brute(s, last, names[i], want, sizeof(want));
		hist(s, names[i], &h);
		if (strcmp(h.s, want)) {
			diag("%s: got  %s", names[i], h.s);
			diag("%s: want %s", names[i], want);
			bad++;
		}
	}
	const char *dirs[] = {"d", "e"};
	for (size_t i = 0; i < 2; i++) {
		brute(s, last, dirs[i], want, sizeof(want));
		if (strcmp(hist(s, dirs[i], &h), want)) {
			diag("%s: got  %s", dirs[i], h.s);
			diag("%s: want %s", dirs[i], want);
			bad++;
		}
	}
	return bad;
}

int main(void)
{
	unit_begin("history");
	unit_seed(11);
	t_kinds();
	t_atomic();
	t_dirs();
	t_brute();
	is_int(unit_log_problems, 0, "core logged no errors or warnings");
	unit_end();
	return tap_done();
}
