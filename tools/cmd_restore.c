/*
 * cmd_restore.c - "keepfs restore": make the live tree, or paths in it,
 * what they were in a snapshot or at a point in time.
 *
 * A mounted store is restored by its daemon (ctl_restore(), over the
 * control socket), which keeps the kernel's caches true; a store that is
 * not mounted is opened for writing and restored through core/ directly.
 * Both run restore_run() below with their own store handle, so they print
 * the same.  Paths are relative to the root of the tree; an absolute path
 * inside the mount point is taken relative to it.
 *
 * Every restore takes a pre-restore snapshot first (named
 * pre-restore-TIME) and prints its name, so it can be undone by restoring
 * that snapshot.
 */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "keep.h"
#include "kfs.h"
#include "util_i.h"

const char usage_restore[] =
	"usage: keepfs restore TARGET FROM [PATH...] [--to DEST] [--dry-run]\n"
	"\n"
	"Make each PATH of the live tree (default: the whole tree) exactly\n"
	"what it was in FROM: content, attributes, extended attributes,\n"
	"symbolic links and hard links; what was made since goes, what was\n"
	"deleted since comes back.  FROM is a snapshot name or @TIME\n"
	"(@2026-11-24T08:35:00Z, @-10m: the newest commit at or before TIME).\n"
	"PATH is relative to the root of the tree (or an absolute path inside\n"
	"the mount point); the directory holding it must exist.\n"
	"\n"
	"First a snapshot of the tree as it is now is taken and its name\n"
	"printed (pre-restore-TIME): restoring that snapshot undoes the\n"
	"restore.  A restore is one commit: after a crash the tree is either\n"
	"wholly as before or wholly restored.  No file data is copied.  A\n"
	"file that was moved or linked out of PATH since FROM is restored as\n"
	"a copy, so nothing outside PATH changes.  Works on a mounted store\n"
	"(programs see the restored files at once, also through files they\n"
	"hold open) and on one that is not mounted.\n"
	"\n"
	"options:\n"
	"       --to DEST  put FROM's PATH (one) at DEST instead, which must\n"
	"                  not exist: recover a deleted file next to the\n"
	"                  current one.  On a replica DEST is a new path\n"
	"                  outside the store: PATH is copied out there\n"
	"   -n, --dry-run  print what would change (as 'keepfs diff' prints\n"
	"                  it: + comes back, - goes, M changes, R moves) and\n"
	"                  change nothing\n"
	"   -h, --help     show this help\n";

struct ropts {
	const char *from;
	char **paths; /* normalized: no leading or trailing '/' */
	int npaths;
	char *to;
	int dry_run;
};

/* Parse argv (TARGET left out when `has_target` is 0).  Returns EXIT_OK. */
static int parse(int argc, char **argv, int has_target, struct ropts *o,
		 const char **target)
{
	static const struct option longopts[] = {
		{"to", required_argument, NULL, 't'},
		{"dry-run", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (o->to) {
				free(o->to);
				o->to = NULL;
				return usage_error("restore", "--to given twice");
			}
			o->to = xstrdup(optarg);
			break;
		case 'n':
			o->dry_run = 1;
			break;
		default:
			return bad_option("restore", c, argv);
		}
	}
	int n = argc - optind;
	if (has_target) {
		if (n < 1)
			return usage_error("restore", "missing TARGET");
		*target = argv[optind++];
		n--;
	}
	if (n < 1)
		return usage_error("restore", "missing FROM (a snapshot name "
			"or @TIME; see 'keepfs list')");
	o->from = argv[optind++];
	o->npaths = n - 1;
	o->paths = argv + optind;
	if (o->to && o->npaths != 1)
		return usage_error("restore", "--to needs exactly one PATH");
	return EXIT_OK;
}

static int in_scope(const char *path, const char *p)
{
	size_t n = strlen(p);

	if (!path)
		return 0;
	if (!*p)
		return 1;
	return !strncmp(path, p, n) && (path[n] == '\0' || path[n] == '/');
}

/* ---- --dry-run ------------------------------------------------------------ */

struct dry {
	struct ropts *o;
	FILE *out;
	unsigned long lines;
};

static void line(struct dry *d, char kind, const char *a, const char *b)
{
	fprintf(d->out, "%c ", kind);
	put_path(d->out, a);
	if (b) {
		fputs(" -> ", d->out);
		put_path(d->out, b);
	}
	fputc('\n', d->out);
	d->lines++;
}

/* keep_diff from the live tree to FROM reads as what the restore does. */
static int dry_entry(void *ctx, const struct keep_diff_entry *e)
{
	struct dry *d = ctx;
	int a = 0, b = 0;

	for (int i = 0; i < d->o->npaths || (i == 0 && !d->o->npaths); i++) {
		const char *p = d->o->npaths ? d->o->paths[i] : "";
		a |= in_scope(e->path_a, p);
		b |= in_scope(e->path_b, p);
	}
	switch (e->kind) {
	case KEEP_DIFF_ADDED:
		if (b)
			line(d, '+', e->path_b, NULL);
		break;
	case KEEP_DIFF_REMOVED:
		if (a)
			line(d, '-', e->path_a, NULL);
		break;
	case KEEP_DIFF_MODIFIED:
		if (b)
			line(d, 'M', e->path_b, NULL);
		break;
	case KEEP_DIFF_RENAMED:
		/* moved out of a restored path: it is copied back, and stays
		 * where it is; moved in: it goes from the path */
		if (a && b)
			line(d, 'R', e->path_a, e->path_b);
		else if (b)
			line(d, '+', e->path_b, NULL);
		else if (a)
			line(d, '-', e->path_a, NULL);
		break;
	}
	return 0;
}

struct walk {
	struct keep_store *s;
	uint64_t view;
	struct dry *d;
	char *prefix;
	int depth;
};

static int walk_entry(void *ctx, const char *name, const struct keep_attr *a,
		      uint64_t next)
{
	struct walk *w = ctx;
	char *p = xasprintf("%s/%s", w->prefix, name);

	(void)next;
	line(w->d, '+', p, NULL);
	if (S_ISDIR(a->mode) && w->depth < 4096) {
		struct walk sub = {w->s, w->view, w->d, p, w->depth + 1};
		keep_readdir(w->s, w->view, a->ino, 0, walk_entry, &sub);
	}
	free(p);
	return 0;
}

static int dry_run(struct keep_store *s, uint64_t commit, struct ropts *o,
		   const char *label)
{
	struct dry d = {o, TOOL_OUT, 0};
	int rc;

	if (o->to) {
		/* everything under FROM's PATH comes at DEST */
		struct keep_attr a;
		uint64_t cur = KEEP_ROOT_INO;
		char *copy = xstrdup(o->paths[0]), *save = NULL;
		rc = keep_getattr(s, commit, cur, &a);
		for (char *t = strtok_r(copy, "/", &save); t && !rc;
		     t = strtok_r(NULL, "/", &save)) {
			rc = keep_lookup(s, commit, cur, t, &a);
			cur = a.ino;
		}
		free(copy);
		if (rc == ENOENT || rc == ENOTDIR) {
			return error("'%s' is not in %s", o->paths[0], label);
		}
		if (rc)
			return error("cannot read %s: %s", label,
				     keep_strerror(rc));
		line(&d, '+', o->to, NULL);
		if (S_ISDIR(a.mode)) {
			struct walk w = {s, commit, &d, o->to, 0};
			keep_readdir(s, commit, a.ino, 0, walk_entry, &w);
		}
	} else {
		rc = keep_diff(s, KEEP_LIVE, commit, 0, dry_entry, &d);
		if (rc)
			return error("cannot compare the live tree with %s: %s",
				     label, keep_strerror(rc));
	}
	fprintf(TOOL_ERR, "keepfs: dry run: %lu change%s, nothing was "
		"changed\n", d.lines, d.lines == 1 ? "" : "s");
	return EXIT_OK;
}

/* ---- the restore ------------------------------------------------------------ */

typedef int (*restore_fn)(void *ctx, const struct keep_restore_req *req,
			  struct keep_restore_result *res);

static int restore_direct(void *ctx, const struct keep_restore_req *req,
			  struct keep_restore_result *res)
{
	return keep_restore(ctx, req, NULL, NULL, res);
}

static int restore_daemon(void *ctx, const struct keep_restore_req *req,
			  struct keep_restore_result *res)
{
	return kfs_ctl_restore(ctx, req, res);
}

static int explain(int rc, const struct keep_restore_result *res,
		   const struct ropts *o, const char *label)
{
	const char *p = o->npaths ? o->paths[res->bad_index] : "";
	const char *shown = *p ? p : ".";

	switch (res->bad) {
	case KEEP_RESTORE_NOT_IN_FROM:
		return error("'%s' is not in %s (see 'keepfs diff' or browse "
			     ".snapshots)", shown, label);
	case KEEP_RESTORE_NO_PARENT:
		return error("the directory holding '%s' is not in the live "
			     "tree: restore that directory (or one above it) "
			     "instead, or put '%s' elsewhere with --to",
			     shown, shown);
	case KEEP_RESTORE_TO_EXISTS:
		return error("'%s' exists: --to needs a path that does not "
			     "exist yet", o->to ? o->to : ".");
	case KEEP_RESTORE_TO_NO_PARENT:
		return error("the directory holding '%s' does not exist in "
			     "the live tree", o->to);
	}
	switch (rc) {
	case EPERM:
		return error("'.snapshots' is reserved for the snapshots: "
			     "choose another --to");
	case EROFS:
		return error("the store is mounted read-only");
	case ENOSPC:
		return error("not enough space left for the restore; nothing "
			     "was changed");
	case ENAMETOOLONG:
		return error("a name in '%s' is longer than 255 bytes", shown);
	}
	return error("restore from %s failed: %s; nothing was changed", label,
		     keep_strerror(rc));
}

static int restore_run(struct keep_store *s, const char *store,
		       const char *shown_target, const char *mnt,
		       struct ropts *o, restore_fn fn, void *ctx)
{
	struct keep_restore_result res;
	uint64_t commit;
	char *label, **norm = NULL;
	int status = EXIT_FAILED, rc = 0, n = 0;

	if (find_version(s, store, o->from, &commit) != EXIT_OK)
		return EXIT_FAILED;
	label = o->from[0] == '@' ? xasprintf("the tree as of '%s'", o->from)
				  : xasprintf("snapshot '%s'", o->from);
	norm = xmalloc(sizeof(*norm) * (size_t)(o->npaths + 1));
	for (n = 0; n < o->npaths; n++)
		if (!(norm[n] = tree_path(o->paths[n], mnt)))
			goto out;
	if (o->to) {
		char *t = tree_path(o->to, mnt);
		if (!t)
			goto out;
		if (!*t) {
			free(t);
			error("--to cannot be the root of the tree");
			goto out;
		}
		free(o->to);
		o->to = t;
	}
	o->paths = norm;

	if (o->dry_run) {
		status = dry_run(s, commit, o, label);
		goto out;
	}

	struct keep_restore_req req = {
		.from = commit,
		.paths = (const char *const *)norm,
		.npaths = (size_t)o->npaths,
		.to = o->to,
	};
	char when[32], name[64];
	keep_format_time(keep_clock_ns(), when, sizeof(when));
	for (int k = 1; k < 100; k++) {
		if (k == 1)
			snprintf(name, sizeof(name), "pre-restore-%s", when);
		else
			snprintf(name, sizeof(name), "pre-restore-%s-%d", when,
				 k);
		req.pre_snapshot = name;
		rc = fn(ctx, &req, &res);
		if (!(rc == EEXIST && res.bad == KEEP_RESTORE_SNAPSHOT))
			break;
	}
	if (rc) {
		explain(rc, &res, o, label);
		goto out;
	}
	if (res.changes == 0) {
		fprintf(TOOL_OUT, "nothing to restore: %s %s already as in "
			"%s\n", o->npaths == 0 ? "the tree" :
			o->npaths == 1 ? "the path" : "the paths",
			o->npaths > 1 ? "are" : "is", label);
		status = EXIT_OK;
		goto out;
	}
	fprintf(TOOL_OUT, "pre-restore snapshot: %s\n", res.pre.name);
	const char *what = o->npaths == 0 || (o->npaths == 1 && !*norm[0])
				   ? "the whole tree"
			   : o->npaths == 1 ? norm[0]
					    : "the paths";
	fprintf(TOOL_OUT, "restored %s%s%s from %s (%llu change%s)\n", what,
		o->to ? " to " : "", o->to ? o->to : "", label,
		(unsigned long long)res.changes, res.changes == 1 ? "" : "s");
	fprintf(TOOL_OUT, "undo with: keepfs restore %s %s\n", shown_target,
		res.pre.name);
	status = EXIT_OK;
out:
	for (int i = 0; i < n; i++)
		free(norm[i]);
	free(norm);
	free(label);
	return status;
}

/* 1 for a replica, 0 for another store, -1 (printed) when it cannot
 * be told */
static int is_replica(const char *store)
{
	struct keep_store *s = NULL;
	char of[64] = "";
	int rc;

	if (open_read(store, 0, &s) != EXIT_OK)
		return -1;
	rc = keep_replica_of(s, of, sizeof(of));
	keep_store_close(s);
	if (rc) {
		error("cannot read store '%s': %s", store, keep_strerror(rc));
		return -1;
	}
	return of[0] != '\0';
}

/* A replica's tree changes only by receive: --to copies out of it. */
static int from_replica(const char *store, const struct ropts *o)
{
	struct extract_stats st;
	struct keep_store *s = NULL;
	uint64_t commit;
	char a[32];
	int status;

	if (!o->to)
		return error("'%s' is a replica: its tree is the newest snapshot "
			     "it received and changes only by 'keepfs receive'; "
			     "give --to DEST (a new path outside the store) to "
			     "copy PATH out of it, or make it an ordinary store "
			     "with 'keepfs promote'", store);
	if (o->dry_run)
		return usage_error("restore", "--dry-run does not apply to a "
					      "replica");
	if (open_read(store, 1, &s) != EXIT_OK)
		return EXIT_FAILED;
	status = find_version(s, store, o->from, &commit);
	if (status == EXIT_OK)
		status = extract_tree(s, commit, o->paths[0], o->to, &st);
	keep_store_close(s);
	if (status != EXIT_OK)
		return status;
	fprintf(TOOL_OUT, "copied '%s' of %s%s out of replica '%s' to '%s': "
		"%" PRIu64 " object%s, %s\n", *o->paths[0] ? o->paths[0] : "/",
		o->from[0] == '@' ? "" : "snapshot ", o->from, store, o->to,
		st.objects, st.objects == 1 ? "" : "s",
		human_bytes(st.bytes, a, sizeof(a)));
	if (st.not_set)
		fprintf(TOOL_OUT, "%" PRIu64 " owner, mode, time or attribute "
			"setting%s failed (see the warnings above)\n",
			st.not_set, st.not_set == 1 ? "" : "s");
	return EXIT_OK;
}

int cmd_restore(int argc, char **argv)
{
	struct ropts o;
	const char *target = NULL;
	char *store = NULL, *mnt = NULL;
	int status = EXIT_FAILED, rc;

	rc = parse(argc, argv, 1, &o, &target);
	if (rc != EXIT_OK) {
		free(o.to);
		return rc;
	}
	if (resolve_target(target, &store, &mnt) != EXIT_OK)
		goto out;
	rc = is_replica(store);
	if (rc < 0)
		goto out;
	if (rc) {
		status = from_replica(store, &o);
		goto out;
	}
	if (mnt) {
		/* the daemon restores: FROM, paths relative to the root */
		char **args = xmalloc(sizeof(*args) * (size_t)(o.npaths + 5));
		char **norm = xmalloc(sizeof(*norm) * (size_t)(o.npaths + 1));
		int k = 0, ok = 1;
		args[k++] = "restore";
		if (o.dry_run)
			args[k++] = "--dry-run";
		if (o.to) {
			args[k++] = "--to";
			args[k++] = o.to;
		}
		args[k++] = "--";
		args[k++] = (char *)o.from;
		for (int i = 0; i < o.npaths && ok; i++) {
			norm[i] = tree_path(o.paths[i], mnt);
			if (!norm[i]) {
				ok = 0;
				for (int j = 0; j < i; j++)
					free(norm[j]);
				break;
			}
		}
		if (ok) {
			for (int i = 0; i < o.npaths; i++)
				args[k + i] = *norm[i] ? norm[i] : "/";
			status = ctl_run(store, mnt, k + o.npaths, args);
			for (int i = 0; i < o.npaths; i++)
				free(norm[i]);
		}
		free(norm);
		free(args);
		goto out;
	}

	struct keep_store *s = NULL;
	if (open_writable(store, &s) != EXIT_OK)
		goto out;
	status = restore_run(s, store, target, NULL, &o, restore_direct, s);
	rc = keep_store_close(s);
	if (rc && status == EXIT_OK)
		status = error("closing store '%s' failed: %s", store,
			       keep_strerror(rc));
out:
	free(o.to);
	free(store);
	free(mnt);
	return status;
}

/* "keepfs restore" in the daemon of a mounted store: argv is "restore"
 * [--dry-run] [--to DEST] -- FROM [PATH...], paths relative to the root. */
int ctl_restore(struct kfs_ctl *c, int argc, char **argv)
{
	const struct kfs_config *cfg = kfs_ctl_config(c);
	struct ropts o;
	int rc = parse(argc, argv, 0, &o, NULL);

	if (rc == EXIT_OK)
		rc = restore_run(kfs_ctl_store(c), cfg->store_path,
				 cfg->mountpoint, NULL, &o, restore_daemon, c);
	free(o.to);
	return rc;
}
