/*
 * cmd_log.c - "keepfs log": every version of one path.
 *
 * The store is opened read-only, mounted or not (as by diff and cat), so
 * the versions are the committed ones.  Each version is named by the
 * shortest @TIME that picks its commit: its commit time rounded up to
 * the second, or to the millisecond, microsecond or nanosecond when the
 * next commit came sooner.  That name is what cat, diff, restore and
 * MOUNTPOINT/.snapshots take, so a version seen here is one argument
 * away from being read or restored.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

const char usage_log[] =
    "usage: keepfs log PATH [-p] [--json]\n"
    "       keepfs log TARGET PATH [-p] [--json]\n"
    "\n"
    "Show every version of PATH, newest first, one line each:\n"
    "   @TIME  CHANGE  SIZE  snapshots: NAME, ...\n"
    "@TIME is when the version was committed, rounded up to the second\n"
    "(or to the fraction of one that tells it from the next commit); it\n"
    "names the version for 'keepfs cat', 'diff' and 'restore', and in\n"
    "MOUNTPOINT/.snapshots.  CHANGE is one of:\n"
    "   created   the path appeared (made, or renamed there)\n"
    "   modified  its content changed\n"
    "   metadata  its mode, owner, group, size or mtime changed\n"
    "   xattrs    its extended attributes changed\n"
    "   replaced  another file took the path, as when a temporary file is\n"
    "             renamed over it (an atomic write): the path is followed,\n"
    "             not the file\n"
    "   deleted   the path went away\n"
    "The snapshots listed hold that version.  Only committed changes are\n"
    "versions; a mount commits within its commit interval (about a\n"
    "second) and at every fsync.\n"
    "\n"
    "PATH alone must be inside a mounted keepfs file system.  After TARGET\n"
    "(a mount point or a store) it is relative to the root of the tree.\n"
    "A symbolic link as PATH's last component is not followed.\n"
    "\n"
    "options:\n"
    "   -p, --patch  after each version, a unified diff from the version\n"
    "                before it (files and symbolic links; a file with a\n"
    "                NUL byte in its first 8000 is binary)\n"
    "   --json       print JSON: an array of versions, newest first\n"
    "   -h, --help   show this help\n";

#define PATCH_MAX (16u << 20) /* bytes of one version shown by -p */
#define FIRST_ONLY 0x7fff     /* stops a walk; no error code has it */

struct ver {
	struct keep_version v;
	char name[48]; /* @TIME */
	char **snaps;
	size_t nsnaps;
};

struct log {
	struct keep_store *s;
	const char *path; /* relative to the root */
	bool patch, json;
	struct ver *v;
	size_t n, cap;
	struct keep_snapshot *snaps;
	size_t nsnaps, capsnaps;
};

/* ---- where PATH is ------------------------------------------------------- */

/*
 * The absolute form of arg without following its last component (a
 * symbolic link there is what the user names) and without needing the
 * components that no longer exist (a deleted file or directory still
 * has a history).  NULL after saying why.
 */
static char *absolute(const char *arg)
{
	char *cwd = arg[0] == '/' ? NULL : getcwd(NULL, 0);
	char *full, *head, *tail = NULL, *real = NULL, *out;
	size_t len;

	if (arg[0] != '/' && !cwd) {
		error("cannot tell the current directory: %s", strerror(errno));
		return NULL;
	}
	full = cwd ? xasprintf("%s/%s", cwd, arg) : xstrdup(arg);
	free(cwd);
	len = strlen(full);
	while (len > 1 && full[len - 1] == '/')
		full[--len] = '\0';
	head = full;
	/* the last component stays as it is, unless it is . or .. */
	char *slash = strrchr(head, '/');
	const char *base = slash + 1;
	if (*base && strcmp(base, ".") && strcmp(base, "..")) {
		tail = xstrdup(base);
		*slash = '\0';
		if (slash == head)
			strcpy(head, "/");
	}
	while (!(real = realpath(head, NULL))) {
		if (errno != ENOENT && errno != ENOTDIR) {
			error("cannot resolve '%s': %s", head, strerror(errno));
			break;
		}
		slash = strrchr(head, '/');
		base = slash + 1;
		if (!strcmp(base, ".") || !strcmp(base, "..")) {
			error("cannot resolve '%s': %s", head, strerror(ENOENT));
			break;
		}
		char *t = tail ? xasprintf("%s/%s", base, tail) : xstrdup(base);
		free(tail);
		tail = t;
		*slash = '\0';
		if (slash == head)
			strcpy(head, "/");
	}
	out = !real ? NULL
	      : !tail ? xstrdup(real)
	      : xasprintf("%s%s%s", real, strcmp(real, "/") ? "/" : "", tail);
	free(real);
	free(tail);
	free(full);
	return out;
}

/* PATH alone: the keepfs mount holding it (the innermost). */
static int locate(const char *arg, char **store, char **mnt, char **rel)
{
	struct mount_entry *m;
	size_t n = mounts_read(&m);
	const char *best = NULL;
	char *abs = absolute(arg);
	int rc = EXIT_FAILED;

	if (!abs)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(m[i].fstype, KEEPFS_FSTYPE) &&
		    path_within(abs, m[i].mountpoint) &&
		    (!best || strlen(m[i].mountpoint) >= strlen(best)))
			best = m[i].mountpoint;
	if (!best) {
		error("'%s' is not inside a mounted keepfs file system: name "
		      "the store too, as in 'keepfs log TARGET PATH'",
		      arg);
		goto out;
	}
	if (resolve_target(best, store, mnt) != EXIT_OK)
		goto out;
	*rel = tree_path(abs, *mnt);
	rc = *rel ? EXIT_OK : EXIT_FAILED;
out:
	free(abs);
	mounts_free(m, n);
	return rc;
}

/* ---- versions ------------------------------------------------------------ */

static int take_version(void *ctx, const struct keep_version *v)
{
	struct log *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		struct ver *g = realloc(l->v, l->cap * sizeof(*g));
		if (!g)
			die("out of memory");
		l->v = g;
	}
	l->v[l->n++] = (struct ver){.v = *v};
	return 0;
}

static int take_snap(void *ctx, const struct keep_snapshot *snap)
{
	struct log *l = ctx;

	if (l->nsnaps == l->capsnaps) {
		l->capsnaps = l->capsnaps ? 2 * l->capsnaps : 16;
		struct keep_snapshot *g =
		    realloc(l->snaps, l->capsnaps * sizeof(*g));
		if (!g)
			die("out of memory");
		l->snaps = g;
	}
	l->snaps[l->nsnaps++] = *snap;
	return 0;
}

static int first_commit(void *ctx, const struct keep_commit_info *c)
{
	*(int64_t *)ctx = c->time_ns;
	return FIRST_ONLY;
}

/* "2026-11-24T08:35:00Z" with digits (0, 3, 6 or 9) of fraction. */
static void format_time(int64_t ns, int digits, char *buf, size_t len)
{
	int64_t frac = ns % 1000000000;
	char sec[32];

	if (frac < 0)
		frac += 1000000000;
	keep_format_time(ns, sec, sizeof(sec));
	if (!digits) {
		snprintf(buf, len, "%s", sec);
		return;
	}
	for (int d = 9; d > digits; d--)
		frac /= 10;
	sec[strlen(sec) - 1] = '\0'; /* the 'Z' */
	snprintf(buf, len, "%s.%0*" PRId64 "Z", sec, digits, frac);
}

/* The shortest @TIME naming the commit made at t when the next one was
 * made at next (0: none yet). */
static void version_name(int64_t t, int64_t next, char *buf, size_t len)
{
	static const int64_t unit[] = {1000000000, 1000000, 1000, 1};

	for (int i = 0; i < 4; i++) {
		int64_t r = t % unit[i];
		int64_t up = r > 0 ? t - r + unit[i] : t;
		if (i < 3 && next && up >= next)
			continue;
		buf[0] = '@';
		format_time(up, 3 * i, buf + 1, len - 1);
		return;
	}
}

/* Names, snapshots and times of every version. */
static int describe(struct log *l, const char *store)
{
	int rc = keep_snapshot_list(l->s, 0, take_snap, l);

	if (rc)
		return error("cannot list the snapshots of '%s': %s", store,
			     keep_strerror(rc));
	for (size_t i = 0; i < l->n; i++) {
		struct ver *v = &l->v[i];
		int64_t next = 0;
		rc = keep_commit_list(l->s, v->v.commit, first_commit, &next);
		if (rc && rc != FIRST_ONLY)
			return error("cannot list the commits of '%s': %s",
				     store, keep_strerror(rc));
		version_name(v->v.time_ns, next, v->name, sizeof(v->name));
		if (v->v.kind == KEEP_DIFF_REMOVED)
			continue; /* a snapshot of the path's absence */
		for (size_t k = 0; k < l->nsnaps; k++) {
			uint64_t c = l->snaps[k].commit;
			if (c < v->v.commit || (v->v.until && c >= v->v.until))
				continue;
			v->snaps = realloc(v->snaps,
					   (v->nsnaps + 1) * sizeof(char *));
			if (!v->snaps)
				die("out of memory");
			v->snaps[v->nsnaps++] = l->snaps[k].name;
		}
	}
	return EXIT_OK;
}

/* ---- output -------------------------------------------------------------- */

static const char *change_name(const struct keep_version *v)
{
	if (v->kind == KEEP_DIFF_ADDED)
		return "created";
	if (v->kind == KEEP_DIFF_REMOVED)
		return "deleted";
	if (v->flags & KEEP_DIFF_REPLACED)
		return "replaced";
	if (v->flags & KEEP_DIFF_DATA)
		return "modified";
	if (v->flags & KEEP_DIFF_ATTR)
		return "metadata";
	return "xattrs";
}

/* The SIZE column: bytes of a file, else what the object is. */
static const char *size_text(const struct keep_version *v, char *buf,
			     size_t len)
{
	if (v->kind == KEEP_DIFF_REMOVED)
		return "-";
	if (!S_ISREG(v->mode))
		return file_type_name(v->mode);
	return human_bytes(v->size, buf, len);
}

/* The bytes of a version that -p compares: a file's content or a link's
 * target.  NULL with *why set when there is nothing to compare. */
static char *content(struct log *l, const struct keep_version *v, size_t *len,
		     const char **why)
{
	char *buf;
	int rc;

	*len = 0;
	if (S_ISLNK(v->mode)) {
		buf = xmalloc(PATH_MAX + 1);
		rc = keep_readlink(l->s, v->commit, v->ino, buf, PATH_MAX + 1);
		if (rc) {
			*why = keep_strerror(rc);
			free(buf);
			return NULL;
		}
		*len = strlen(buf);
		return buf;
	}
	if (!S_ISREG(v->mode)) {
		*why = "not a file";
		return NULL;
	}
	if (v->size > PATCH_MAX) {
		*why = "larger than 16 MiB";
		return NULL;
	}
	buf = xmalloc(v->size ? v->size : 1);
	rc = keep_read(l->s, v->commit, v->ino, 0, v->size, buf, len);
	if (rc) {
		*why = keep_strerror(rc);
		free(buf);
		return NULL;
	}
	return buf;
}

/* The patch of version i against the one before it (older, i + 1), as
 * text; NULL when it has none (no content changed, or not text). */
static char *patch(struct log *l, size_t i)
{
	const struct keep_version *v = &l->v[i].v;
	const struct keep_version *old = i + 1 < l->n ? &l->v[i + 1].v : NULL;
	bool has_old = v->kind != KEEP_DIFF_ADDED && old;
	bool has_new = v->kind != KEEP_DIFF_REMOVED;
	char *a = NULL, *b = NULL, *out = NULL, *la = NULL, *lb = NULL;
	size_t alen = 0, blen = 0, olen = 0, n;
	const char *why = NULL;
	FILE *f;

	if (v->kind == KEEP_DIFF_MODIFIED && !(v->flags & KEEP_DIFF_DATA))
		return NULL;
	if (has_old && has_new && (old->mode & S_IFMT) != (v->mode & S_IFMT))
		why = "another type of file";
	if (!why && has_old)
		a = content(l, old, &alen, &why);
	if (!why && has_new)
		b = content(l, v, &blen, &why);
	f = open_memstream(&out, &olen);
	if (!f)
		die("out of memory");
	if (why) {
		if (strcmp(why, "not a file"))
			fprintf(f, "(no patch: %s)\n", why);
	} else {
		FILE *lf = open_memstream(&la, &n);
		if (!lf)
			die("out of memory");
		fputs(has_old ? "a/" : "", lf);
		put_path(lf, has_old ? l->path : "/dev/null");
		fclose(lf);
		lf = open_memstream(&lb, &n);
		if (!lf)
			die("out of memory");
		fputs(has_new ? "b/" : "", lf);
		put_path(lf, has_new ? l->path : "/dev/null");
		fclose(lf);
		udiff(f, la, a ? a : "", alen, lb, b ? b : "", blen);
	}
	fclose(f);
	free(a);
	free(b);
	free(la);
	free(lb);
	if (!olen) {
		free(out);
		return NULL;
	}
	return out;
}

static void print_json(struct log *l)
{
	static const struct {
		unsigned flag;
		const char *name;
	} flags[] = {
	    {KEEP_DIFF_DATA, "content"},
	    {KEEP_DIFF_ATTR, "metadata"},
	    {KEEP_DIFF_XATTR, "xattrs"},
	    {KEEP_DIFF_REPLACED, "replaced"},
	};

	putchar('[');
	for (size_t i = 0; i < l->n; i++) {
		const struct ver *v = &l->v[i];
		bool gone = v->v.kind == KEEP_DIFF_REMOVED;
		char t[48];
		int k = 0;

		format_time(v->v.time_ns, 9, t, sizeof(t));
		printf("%s{\"version\": \"%s\", \"commit\": %" PRIu64
		       ", \"time\": \"%s\", \"change\": \"%s\", \"changes\": [",
		       i ? ",\n " : "", v->name, v->v.commit, t,
		       change_name(&v->v));
		for (size_t j = 0; j < sizeof(flags) / sizeof(flags[0]); j++)
			if (v->v.flags & flags[j].flag)
				printf("%s\"%s\"", k++ ? ", " : "",
				       flags[j].name);
		if (gone)
			printf("], \"type\": null, \"size\": null, \"ino\": "
			       "null, \"old_ino\": %" PRIu64,
			       v->v.ino);
		else
			printf("], \"type\": \"%s\", \"size\": %" PRIu64
			       ", \"ino\": %" PRIu64,
			       file_type_name(v->v.mode), v->v.size, v->v.ino);
		if (v->v.old_ino)
			printf(", \"old_ino\": %" PRIu64, v->v.old_ino);
		fputs(", \"snapshots\": [", stdout);
		for (size_t j = 0; j < v->nsnaps; j++) {
			fputs(j ? ", " : "", stdout);
			json_string(v->snaps[j]);
		}
		putchar(']');
		if (l->patch) {
			char *p = patch(l, i);
			fputs(", \"patch\": ", stdout);
			if (p)
				json_string(p);
			else
				fputs("null", stdout);
			free(p);
		}
		putchar('}');
	}
	fputs("]\n", stdout);
}

static void print_text(struct log *l)
{
	int wname = 0, wsize = 0;
	char sz[32];

	for (size_t i = 0; i < l->n; i++) {
		int a = (int)strlen(l->v[i].name);
		int b = (int)strlen(size_text(&l->v[i].v, sz, sizeof(sz)));
		wname = a > wname ? a : wname;
		wsize = b > wsize ? b : wsize;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct ver *v = &l->v[i];
		printf("%-*s  %-8s  %*s", wname, v->name, change_name(&v->v),
		       wsize, size_text(&v->v, sz, sizeof(sz)));
		for (size_t j = 0; j < v->nsnaps; j++)
			printf("%s%s", j ? ", " : "  snapshots: ",
			       v->snaps[j]);
		putchar('\n');
		if (l->patch) {
			char *p = patch(l, i);
			if (p) {
				fputs(p, stdout);
				putchar('\n');
			}
			free(p);
		}
	}
}

/* ---- the command --------------------------------------------------------- */

int cmd_log(int argc, char **argv)
{
	enum { OPT_JSON = 1 };
	static const struct option longopts[] = {
	    {"patch", no_argument, NULL, 'p'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {NULL, 0, NULL, 0},
	};
	struct log l = {0};
	char *store = NULL, *mnt = NULL, *rel = NULL;
	int c, rc, status = EXIT_FAILED;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			l.patch = true;
			break;
		case OPT_JSON:
			l.json = true;
			break;
		default:
			return bad_option("log", c, argv);
		}
	}
	switch (argc - optind) {
	case 0:
		return usage_error("log", "missing PATH");
	case 1:
		if (locate(argv[optind], &store, &mnt, &rel) != EXIT_OK)
			goto out;
		break;
	case 2:
		if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
			goto out;
		if (!(rel = tree_path(argv[optind + 1], mnt)))
			goto out;
		break;
	default:
		return usage_error("log", "too many arguments");
	}
	l.path = *rel ? rel : ".";
	if (open_read(store, l.patch, &l.s) != EXIT_OK)
		goto out;
	rc = keep_history(l.s, rel, take_version, &l);
	if (rc) {
		error("cannot read the history of '%s' in '%s': %s", l.path,
		      store, keep_strerror(rc));
		goto out;
	}
	if (!l.n) {
		error("'%s' has no versions in '%s': no commit held that path",
		      l.path, store);
		goto out;
	}
	if (describe(&l, store) != EXIT_OK)
		goto out;
	if (l.json)
		print_json(&l);
	else
		print_text(&l);
	status = EXIT_OK;
out:
	keep_store_close(l.s);
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].snaps);
	free(l.v);
	free(l.snaps);
	free(store);
	free(mnt);
	free(rel);
	return status;
}
