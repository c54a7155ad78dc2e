/*
 * cmd_list.c - "keepfs list": the snapshots of a store, or its commits.
 *
 * Always a read-only open: on a mounted store it shows what has been
 * committed, which includes every snapshot (a snapshot is durable before
 * it is made known).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keep.h"
#include "util_i.h"

const char usage_list[] =
	"usage: keepfs list TARGET [--commits] [--json]\n"
	"\n"
	"List the snapshots of a store in the order they were made: name,\n"
	"creation time (UTC), origin (manual, auto, pre-restore, received),\n"
	"the number of files and their logical size in the snapshot, the id\n"
	"of the commit it keeps, and FREES: the stored space only it holds,\n"
	"which deleting it would give back (0 while another snapshot or the\n"
	"journal window keeps its commit too).\n"
	"\n"
	"options:\n"
	"   --commits   list every commit instead: id, time (UTC) and the\n"
	"               snapshots that keep it\n"
	"   --json      print a JSON array of objects, sizes in exact bytes\n"
	"   -h, --help  show this help\n";

/* One snapshot and the counts of its view. */
struct row {
	struct keep_snapshot snap;
	struct keep_view_stats vs;
	uint64_t frees; /* stored bytes only this snapshot holds */
	int gone; /* deleted while we were counting */
};

struct rows {
	struct row *v;
	size_t n, cap;
};

static int collect_snapshot(void *ctx, const struct keep_snapshot *snap)
{
	struct rows *r = ctx;
	struct row *grown;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		grown = realloc(r->v, r->cap * sizeof(*r->v));
		if (!grown)
			die("out of memory");
		r->v = grown;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[r->n]));
	r->v[r->n++].snap = *snap;
	return 0;
}

struct commits {
	struct keep_commit_info *v;
	size_t n, cap;
};

static int collect_commit(void *ctx, const struct keep_commit_info *c)
{
	struct commits *l = ctx;
	struct keep_commit_info *grown;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		grown = realloc(l->v, l->cap * sizeof(*l->v));
		if (!grown)
			die("out of memory");
		l->v = grown;
	}
	l->v[l->n++] = *c;
	return 0;
}

/* ---- text ---------------------------------------------------------------- */

/* Columns the terminal shows for s: one per UTF-8 character, control bytes
 * shown as \xNN (four). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			w += 4;
		else if ((c & 0xc0) != 0x80)
			w++;
	}
	return w;
}

/* Print s, control bytes escaped, padded with spaces to width columns. */
static void put_text(const char *s, size_t width)
{
	size_t w = text_width(s);

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	for (; w < width; w++)
		putchar(' ');
}

static int digits(uint64_t v)
{
	int d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

/* ---- snapshots ----------------------------------------------------------- */

static void print_snapshots(const struct rows *r)
{
	char when[32], size[32];
	size_t wname = strlen("NAME"), worigin = strlen("ORIGIN");
	int wfiles = (int)strlen("FILES"), wsize = (int)strlen("SIZE");
	int wcommit = (int)strlen("COMMIT"), wfrees = (int)strlen("FREES");

	for (size_t i = 0; i < r->n; i++) {
		const struct row *x = &r->v[i];
		size_t w = text_width(x->snap.name);
		int d;

		if (w > wname)
			wname = w;
		w = strlen(keep_origin_name(x->snap.origin));
		if (w > worigin)
			worigin = w;
		d = digits(x->vs.files);
		if (d > wfiles)
			wfiles = d;
		d = (int)strlen(human_bytes(x->vs.logical_bytes, size,
					    sizeof(size)));
		if (d > wsize)
			wsize = d;
		d = digits(x->snap.commit);
		if (d > wcommit)
			wcommit = d;
		d = (int)strlen(human_bytes(x->frees, size, sizeof(size)));
		if (d > wfrees)
			wfrees = d;
	}

	put_text("NAME", wname);
	printf("  %-20s  ", "CREATED");
	put_text("ORIGIN", worigin);
	printf("  %*s  %*s  %*s  %*s\n", wfiles, "FILES", wsize, "SIZE",
	       wcommit, "COMMIT", wfrees, "FREES");
	for (size_t i = 0; i < r->n; i++) {
		const struct row *x = &r->v[i];

		keep_format_time(x->snap.created_ns, when, sizeof(when));
		put_text(x->snap.name, wname);
		printf("  %-20s  ", when);
		put_text(keep_origin_name(x->snap.origin), worigin);
		printf("  %*" PRIu64 "  %*s  %*" PRIu64, wfiles, x->vs.files,
		       wsize,
		       human_bytes(x->vs.logical_bytes, size, sizeof(size)),
		       wcommit, x->snap.commit);
		printf("  %*s\n", wfrees,
		       human_bytes(x->frees, size, sizeof(size)));
	}
}

static void print_snapshots_json(const struct rows *r)
{
	char when[32];

	putchar('[');
	for (size_t i = 0; i < r->n; i++) {
		const struct row *x = &r->v[i];

		keep_format_time(x->snap.created_ns, when, sizeof(when));
		fputs(i ? ",\n {\"name\": " : "{\"name\": ", stdout);
		json_string(x->snap.name);
		printf(", \"time\": \"%s\"", when);
		printf(", \"created_ns\": %" PRId64, x->snap.created_ns);
		fputs(", \"origin\": ", stdout);
		json_string(keep_origin_name(x->snap.origin));
		printf(", \"commit\": %" PRIu64, x->snap.commit);
		printf(", \"files\": %" PRIu64, x->vs.files);
		printf(", \"logical_bytes\": %" PRIu64, x->vs.logical_bytes);
		printf(", \"frees_bytes\": %" PRIu64 "}", x->frees);
	}
	fputs("]\n", stdout);
}

struct space {
	uint64_t *commit, *bytes;
	size_t n, cap;
};

static int take_space(void *ctx, uint64_t commit, uint64_t bytes)
{
	struct space *sp = ctx;

	if (sp->n == sp->cap) {
		sp->cap = sp->cap ? 2 * sp->cap : 64;
		sp->commit = realloc(sp->commit, sp->cap * sizeof(uint64_t));
		sp->bytes = realloc(sp->bytes, sp->cap * sizeof(uint64_t));
		if (!sp->commit || !sp->bytes)
			die("out of memory");
	}
	sp->commit[sp->n] = commit;
	sp->bytes[sp->n++] = bytes;
	return 0;
}

/* What deleting each snapshot would free: the space its commit holds
 * alone, when nothing else keeps that commit. */
static int frees(struct keep_store *s, const char *store, struct rows *r)
{
	struct space sp = {0};
	struct keep_policy p;
	int64_t window_start;
	int rc = keep_policy_load(s, &p);

	if (!rc)
		rc = keep_commit_space(s, take_space, &sp);
	if (rc) {
		free(sp.commit);
		free(sp.bytes);
		return error("cannot count the space of the snapshots of '%s': "
			     "%s",
			     store, keep_strerror(rc));
	}
	window_start = keep_clock_ns() - p.journal_ns;
	for (size_t i = 0; i < r->n; i++) {
		struct row *x = &r->v[i];
		size_t same = 0;
		for (size_t k = 0; k < r->n; k++)
			same += r->v[k].snap.commit == x->snap.commit;
		if (same > 1 || x->snap.commit_ns >= window_start)
			continue;
		for (size_t k = 0; k < sp.n; k++)
			if (sp.commit[k] == x->snap.commit)
				x->frees = sp.bytes[k];
	}
	free(sp.commit);
	free(sp.bytes);
	return EXIT_OK;
}

static int list_snapshots(struct keep_store *s, const char *store, int json)
{
	struct rows r = {0};
	size_t kept = 0;
	int rc, status = EXIT_FAILED;

	rc = keep_snapshot_list(s, 0, collect_snapshot, &r);
	if (rc != 0) {
		error("cannot list the snapshots of store '%s': %s", store,
		      keep_strerror(rc));
		goto out;
	}
	for (size_t i = 0; i < r.n; i++) {
		struct row *x = &r.v[i];
		struct keep_snapshot again;

		/* snapshots in a row often keep the same commit */
		if (i > 0 && r.v[i - 1].snap.commit == x->snap.commit &&
		    !r.v[i - 1].gone) {
			x->vs = r.v[i - 1].vs;
			continue;
		}
		rc = keep_view_stats(s, x->snap.commit, &x->vs);
		if (rc == ENOENT &&
		    keep_snapshot_by_id(s, x->snap.id, &again) == ENOENT) {
			x->gone = 1;
			continue;
		}
		if (rc != 0) {
			error("cannot count the files of snapshot '%s' "
			      "(commit %" PRIu64 "): %s",
			      x->snap.name, x->snap.commit, keep_strerror(rc));
			goto out;
		}
	}
	if (frees(s, store, &r) != EXIT_OK)
		goto out;
	/* a store in use may have lost a snapshot since the listing */
	for (size_t i = 0; i < r.n; i++)
		if (!r.v[i].gone)
			r.v[kept++] = r.v[i];
	r.n = kept;
	if (json)
		print_snapshots_json(&r);
	else if (r.n == 0)
		printf("no snapshots in '%s'\n", store);
	else
		print_snapshots(&r);
	status = EXIT_OK;
out:
	free(r.v);
	return status;
}

/* ---- commits ------------------------------------------------------------- */

/* Snapshots by the commit they keep, then by id (creation order). */
static int by_commit(const void *a, const void *b)
{
	const struct keep_snapshot *x = &((const struct row *)a)->snap;
	const struct keep_snapshot *y = &((const struct row *)b)->snap;

	if (x->commit != y->commit)
		return x->commit < y->commit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void print_commits(const struct commits *c, const struct rows *r,
			  int json)
{
	char when[32];
	size_t j = 0;
	int wid = (int)strlen("COMMIT");

	if (c->n && digits(c->v[c->n - 1].id) > wid)
		wid = digits(c->v[c->n - 1].id);
	if (json)
		putchar('[');
	else
		printf("%*s  %-20s  %s\n", wid, "COMMIT", "TIME", "SNAPSHOTS");
	for (size_t i = 0; i < c->n; i++) {
		const struct keep_commit_info *ci = &c->v[i];
		int first = 1;

		keep_format_time(ci->time_ns, when, sizeof(when));
		/* commits and snapshots both ascend by commit id */
		while (j < r->n && r->v[j].snap.commit < ci->id)
			j++;
		if (json) {
			printf("%s{\"commit\": %" PRIu64
			       ", \"time\": \"%s\", \"time_ns\": %" PRId64
			       ", \"snapshots\": [",
			       i ? ",\n " : "", ci->id, when, ci->time_ns);
		} else {
			printf("%*" PRIu64 "  %-20s", wid, ci->id, when);
		}
		for (; j < r->n && r->v[j].snap.commit == ci->id; j++) {
			if (json) {
				fputs(first ? "" : ", ", stdout);
				json_string(r->v[j].snap.name);
			} else {
				fputs(first ? "  " : ", ", stdout);
				put_text(r->v[j].snap.name, 0);
			}
			first = 0;
		}
		fputs(json ? "]}" : "\n", stdout);
	}
	if (json)
		fputs("]\n", stdout);
}

static int list_commits(struct keep_store *s, const char *store, int json)
{
	struct commits c = {0};
	struct rows r = {0};
	int rc, status = EXIT_FAILED;

	rc = keep_snapshot_list(s, 0, collect_snapshot, &r);
	if (rc == 0)
		rc = keep_commit_list(s, 0, collect_commit, &c);
	if (rc != 0) {
		error("cannot list the commits of store '%s': %s", store,
		      keep_strerror(rc));
		goto out;
	}
	if (r.n)
		qsort(r.v, r.n, sizeof(*r.v), by_commit);
	if (!json && c.n == 0)
		printf("no commits in '%s'\n", store);
	else
		print_commits(&c, &r, json);
	status = EXIT_OK;
out:
	free(c.v);
	free(r.v);
	return status;
}

/* ---- the command --------------------------------------------------------- */

int cmd_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"commits", no_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	struct keep_store *s;
	char *store = NULL, *mnt = NULL;
	int c, json = 0, commits = 0, rc, status = EXIT_FAILED;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			commits = 1;
			break;
		case 'j':
			json = 1;
			break;
		default:
			return bad_option("list", c, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("list", argc - optind ? "too many arguments"
							 : "missing TARGET");
	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		return EXIT_FAILED;

	rc = keep_store_open(store, KEEP_OPEN_RDONLY, &s);
	if (rc != 0) {
		error("cannot open store '%s': %s", store, keep_strerror(rc));
		goto out;
	}
	if (commits)
		status = list_commits(s, store, json);
	else
		status = list_snapshots(s, store, json);
	keep_store_close(s);
out:
	free(store);
	free(mnt);
	return status;
}
