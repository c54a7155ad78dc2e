/*
 * cmd_gc.c - "keepfs gc": garbage collection, now.
 *
 * A mounted store is collected by its daemon (ctl_gc), which keeps the
 * commits of the .snapshots views in use; an unmounted one is opened for
 * writing here.  Both print the same report.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfs.h"
#include "keep.h"
#include "util_i.h"

const char usage_gc[] =
    "usage: keepfs gc TARGET [--journal DURATION]\n"
    "\n"
    "Drop what the store no longer keeps, and give the space back: the\n"
    "commits older than the journal window that no snapshot names, the\n"
    "versions of files that only those commits could see, and the data\n"
    "nothing refers to any more.  Snapshots, the commits of the journal\n"
    "window and the newest commit are never touched; nothing the live tree\n"
    "or a snapshot shows changes.  Prints what it freed.  Works on a mounted\n"
    "store (its daemon collects, a few milliseconds at a time, while\n"
    "applications go on) and on one that is not mounted.\n"
    "\n"
    "options:\n"
    "   --journal DURATION  the window to keep, this time: 0 (keep only\n"
    "                       what snapshots name), 90s, 15m, 1h, 7d, 2w\n"
    "                       (default: the store's setting, see 'keepfs\n"
    "                       config'; a mount's journal= option on a\n"
    "                       mounted store)\n"
    "   -h, --help          show this help\n";

struct gcopts {
	int64_t journal_ns; /* -1: the setting in force */
	const char *journal; /* as given, to pass on to a daemon */
};

/* Options and TARGET; *target NULL for the daemon's argv. */
static int parse(int argc, char **argv, struct gcopts *o, const char **target)
{
	enum { OPT_JOURNAL = 1 };
	static const struct option longopts[] = {
	    {"journal", required_argument, NULL, OPT_JOURNAL},
	    {NULL, 0, NULL, 0},
	};
	int c;

	o->journal_ns = -1;
	o->journal = NULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JOURNAL:
			if (keep_parse_duration(optarg, &o->journal_ns))
				return usage_error(
				    "gc",
				    "bad value '%s' for --journal: give 0 or "
				    "a whole number and a unit, as in 90s, "
				    "15m, 1h, 7d, 2w",
				    optarg);
			o->journal = optarg;
			break;
		default:
			return bad_option("gc", c, argv);
		}
	}
	if (target) {
		if (optind >= argc)
			return usage_error("gc", "missing TARGET");
		*target = argv[optind++];
	}
	if (optind < argc)
		return usage_error("gc", "too many arguments");
	return EXIT_OK;
}

static void report(FILE *f, const struct keep_gc_result *r)
{
	char a[32], b[32];

	if (!r->commits && !r->rows && !r->blobs && !r->pages) {
		fputs("nothing to collect\n", f);
		return;
	}
	fprintf(f,
		"dropped %" PRIu64 " commit%s, %" PRIu64 " row version%s and %" PRIu64
		" blob%s (%s stored); gave %s back to the file system\n",
		r->commits, r->commits == 1 ? "" : "s", r->rows,
		r->rows == 1 ? "" : "s", r->blobs, r->blobs == 1 ? "" : "s",
		human_bytes(r->blob_bytes, a, sizeof(a)),
		human_bytes(r->page_bytes, b, sizeof(b)));
}

int cmd_gc(int argc, char **argv)
{
	struct keep_gc_result res;
	struct keep_store *s = NULL;
	struct gcopts o;
	const char *target = NULL;
	char *store = NULL, *mnt = NULL;
	int status = EXIT_FAILED, rc;

	rc = parse(argc, argv, &o, &target);
	if (rc != EXIT_OK)
		return rc;
	if (resolve_target(target, &store, &mnt) != EXIT_OK)
		goto out;
	if (mnt) {
		char *args[3] = {"gc", NULL, NULL};
		int n = 1;
		if (o.journal)
			args[n++] = xasprintf("--journal=%s", o.journal);
		status = ctl_run(store, mnt, n, args);
		free(args[1]);
		goto out;
	}
	if (open_writable(store, &s) != EXIT_OK)
		goto out;
	struct keep_gc_req req = {.journal_ns = o.journal_ns};
	struct keep_policy p;
	rc = req.journal_ns < 0 ? keep_policy_load(s, &p) : 0;
	if (!rc && req.journal_ns < 0)
		req.journal_ns = p.journal_ns;
	if (!rc)
		rc = keep_gc(s, &req, &res);
	if (rc)
		error("garbage collection of '%s' failed: %s", store,
		      keep_strerror(rc));
	else
		report(stdout, &res);
	int rc2 = keep_store_close(s);
	if (!rc && rc2)
		error("closing store '%s' failed: %s", store,
		      keep_strerror(rc2));
	status = rc || rc2 ? EXIT_FAILED : EXIT_OK;
out:
	free(store);
	free(mnt);
	return status;
}

int ctl_gc(struct kfs_ctl *c, int argc, char **argv)
{
	struct keep_gc_result res;
	struct gcopts o;
	int rc = parse(argc, argv, &o, NULL);

	if (rc != EXIT_OK)
		return rc;
	struct keep_gc_req req = {.journal_ns = o.journal_ns};
	rc = kfs_ctl_gc(c, &req, &res);
	if (rc == EROFS)
		return ctl_error(c, "the store is mounted read-only: it cannot "
				    "be collected");
	if (rc)
		return ctl_error(c, "garbage collection failed: %s",
				 keep_strerror(rc));
	report(kfs_ctl_out(c), &res);
	return EXIT_OK;
}
