/*
 * cmd_fsck.c - "keepfs fsck": check a store's consistency, and with
 * --repair drop what no view can see.
 *
 * Exit status: 0 clean (after the repair, with --repair), 1 problems found
 * (or bad input: no such store, not a store, a newer format; a repair
 * refused because the store is mounted or its database is damaged), 2 the
 * check could not run or a usage error.  The check reads committed state
 * only, so it is safe on a mounted store; uncommitted changes of a running
 * daemon are not seen.  A repair needs the store unmounted: it takes the
 * store's write lock.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keep.h"
#include "util_i.h"

const char usage_fsck[] =
	"usage: keepfs fsck STORE [--data] [--json] [--repair]\n"
	"\n"
	"Check the invariants of a store (database integrity, references,\n"
	"link counts, row lifetimes, tree shape, snapshots, the change\n"
	"journal) and print every problem, one a line, with the paths it\n"
	"affects in the live tree, in snapshots and in journal commits.\n"
	"STORE may also be the mount point of a store.  Exit status: 0 clean,\n"
	"1 problems found (or STORE is missing, not a store, of a newer\n"
	"format, or a repair was refused), 2 the check could not run.\n"
	"\n"
	"options:\n"
	"   --data      also decode every stored block and verify its hash;\n"
	"               a damaged block names every file and offset using it\n"
	"   --json      print one JSON object\n"
	"   --repair    drop what no view can see (row versions no commit\n"
	"               left sees, blocks of data no file uses), after\n"
	"               copying the database to\n"
	"               STORE/store.db.before-repair-TIME; then check again.\n"
	"               The store must not be mounted.  Nothing any view\n"
	"               shows changes; damaged file data is not repaired\n"
	"               (restore those files from another version)\n"
	"   -h, --help  show this help\n";

struct report {
	int json;
	uint64_t n;
	uint64_t data_files; /* places named by problems of file data */
};

/* ---- text ------------------------------------------------------------------ */

static bool same_where(const struct keep_affect *a, const struct keep_affect *b)
{
	return a->inode == b->inode && a->offset == b->offset &&
	       strcmp(a->path, b->path) == 0;
}

static void put_where(const struct keep_affect *a)
{
	if (a->inode) {
		printf("(inode %" PRIu64 ")", a->inode);
		if (*a->path)
			put_path(stdout, a->path);
	} else {
		put_path(stdout, a->path);
	}
	if (a->offset >= 0)
		printf(" at offset %" PRId64, a->offset);
}

static void put_view(const struct keep_affect *a)
{
	switch (a->view) {
	case KEEP_AFFECT_LIVE:
		fputs("live tree", stdout);
		break;
	case KEEP_AFFECT_SNAPSHOT:
		fputs("snapshot ", stdout);
		put_path(stdout, a->snapshot);
		break;
	default:
		if (a->commits == 1)
			printf("commit %" PRIu64, a->first);
		else
			printf("%" PRIu64 " commits from %" PRIu64 " to %" PRIu64,
			       a->commits, a->first, a->last);
	}
}

/* "WHAT; affects P (views), Q (views), and N more": the places grouped by
 * path, in the order they first come. */
static void text_problem(const struct keep_problem *p)
{
	fputs(p->what, stdout);
	for (size_t i = 0; i < p->naffects; i++) {
		size_t j;
		for (j = 0; j < i; j++)
			if (same_where(&p->affects[j], &p->affects[i]))
				break;
		if (j < i)
			continue;
		fputs(i ? ", " : "; affects ", stdout);
		put_where(&p->affects[i]);
		fputs(" (", stdout);
		for (j = i; j < p->naffects; j++) {
			if (!same_where(&p->affects[j], &p->affects[i]))
				continue;
			if (j > i)
				fputs(", ", stdout);
			put_view(&p->affects[j]);
		}
		fputs(")", stdout);
	}
	if (p->more)
		printf(", and %" PRIu64 " more", p->more);
	putchar('\n');
}

/* ---- JSON -------------------------------------------------------------------- */

static void json_bytes(const char *key, const char *s)
{
	printf("\"%s\": ", key);
	if (!json_text(s)) {
		printf(", \"%s_hex\": \"", key);
		for (const unsigned char *c = (const unsigned char *)s; *c; c++)
			printf("%02x", *c);
		putchar('"');
	}
}

static void json_affect(const struct keep_affect *a)
{
	switch (a->view) {
	case KEEP_AFFECT_LIVE:
		fputs("{\"view\": \"live\", ", stdout);
		break;
	case KEEP_AFFECT_SNAPSHOT:
		fputs("{\"view\": \"snapshot\", ", stdout);
		json_bytes("snapshot", a->snapshot);
		printf(", \"commit\": %" PRIu64 ", ", a->first);
		break;
	default:
		printf("{\"view\": \"commits\", \"first\": %" PRIu64
		       ", \"last\": %" PRIu64 ", \"count\": %" PRIu64 ", ",
		       a->first, a->last, a->commits);
	}
	if (a->inode)
		printf("\"inode\": %" PRIu64 ", ", a->inode);
	json_bytes("path", a->path);
	if (a->offset >= 0)
		printf(", \"offset\": %" PRId64, a->offset);
	putchar('}');
}

static void json_problem(const struct keep_problem *p)
{
	fputs("{\"problem\": ", stdout);
	json_string(p->what);
	printf(", \"data\": %s, \"affects\": [",
	       p->flags & KEEP_PROBLEM_DATA ? "true" : "false");
	for (size_t i = 0; i < p->naffects; i++) {
		fputs(i ? ", " : "", stdout);
		json_affect(&p->affects[i]);
	}
	printf("], \"more\": %" PRIu64 "}", p->more);
}

static void on_problem(void *ctx, const struct keep_problem *p)
{
	struct report *r = ctx;

	if (r->json) {
		fputs(r->n ? ", " : "", stdout);
		json_problem(p);
	} else {
		text_problem(p);
	}
	if (p->flags & KEEP_PROBLEM_DATA)
		r->data_files += p->naffects + p->more;
	r->n++;
}

/* ---- the command ------------------------------------------------------------- */

/* Open STORE for the repair, or say why not (1: mounted, busy, bad input;
 * 2: could not). */
static int open_for_repair(const char *store, const char *mnt,
			   struct keep_store **s)
{
	char comm[64];
	pid_t pid;
	int rc;

	if (mnt)
		return error("store '%s' is mounted at '%s': unmount it first "
			     "('keepfs umount %s'); nothing was changed",
			     store, mnt, mnt);
	struct keep_secret *sec = NULL;
	pid = keep_store_lock_owner(store);
	/* a busy store is told before anyone is asked for a passphrase */
	if (pid <= 0 && secret_for_store(store, NULL, NULL, &sec) != EXIT_OK)
		return EXIT_FAILED;
	rc = pid > 0 ? KEEP_E_LOCKED
		     : keep_store_open_secret(store, KEEP_OPEN_WRITE, sec, s);
	secret_free(sec);
	if (rc == 0)
		return EXIT_OK;
	*s = NULL;
	if (rc == KEEP_E_LOCKED) {
		pid = keep_store_lock_owner(store);
		if (pid > 0)
			return error("store '%s' is in use by process %d (%s): "
				     "unmount it first; nothing was changed",
				     store, (int)pid,
				     proc_comm(pid, comm, sizeof(comm)));
		return error("store '%s' is in use by another process: unmount "
			     "it first; nothing was changed",
			     store);
	}
	fprintf(stderr, "keepfs: cannot open store '%s': %s\n", store,
		keep_strerror(rc));
	return rc == KEEP_E_NOTSTORE || rc == KEEP_E_VERSION ||
		       rc == KEEP_E_CORRUPT || rc == ENOENT || rc == EROFS ||
		       rc == EACCES || rc == KEEP_E_BADKEY
		   ? EXIT_FAILED
		   : EXIT_USAGE;
}

/* The repair; EXIT_OK to go on with the check. */
static int repair(struct keep_store *s, const char *store, int json,
		  struct keep_repair_result *res)
{
	char size[32];
	int rc = keep_repair(s, res);

	if (rc == KEEP_E_CORRUPT)
		return error("SQLite finds the database of store '%s' damaged, "
			     "so deleting rows from it is not safe; nothing "
			     "was changed (see 'keepfs fsck %s')",
			     store, store);
	if (rc) {
		fprintf(stderr, "keepfs: repair of store '%s' failed: %s; "
				"nothing was changed\n",
			store, keep_strerror(rc));
		return EXIT_USAGE;
	}
	if (json)
		return EXIT_OK;
	if (!res->backup[0]) {
		printf("nothing to repair: no unreachable rows or orphan "
		       "blobs\n");
		return EXIT_OK;
	}
	printf("copy of the database before the repair: ");
	put_path(stdout, res->backup);
	printf("\ndropped %" PRIu64 " unreachable row%s and %" PRIu64
	       " orphan blob%s (%s)\n",
	       res->dropped.rows, res->dropped.rows == 1 ? "" : "s",
	       res->dropped.blobs, res->dropped.blobs == 1 ? "" : "s",
	       human_bytes(res->dropped.blob_bytes, size, sizeof(size)));
	return EXIT_OK;
}

int cmd_fsck(int argc, char **argv)
{
	enum { OPT_DATA = 1, OPT_JSON, OPT_REPAIR };
	static const struct option longopts[] = {
		{"data", no_argument, NULL, OPT_DATA},
		{"json", no_argument, NULL, OPT_JSON},
		{"repair", no_argument, NULL, OPT_REPAIR},
		{NULL, 0, NULL, 0},
	};
	struct report r = {0};
	struct keep_repair_result res = {0};
	struct keep_garbage g = {0};
	struct keep_store *s = NULL;
	char *store = NULL, *mnt = NULL, size[32];
	uint64_t count = 0;
	int c, data = 0, fix = 0, rc, grc, status = EXIT_USAGE;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DATA:
			data = 1;
			break;
		case OPT_JSON:
			r.json = 1;
			break;
		case OPT_REPAIR:
			fix = 1;
			break;
		default:
			return bad_option("fsck", c, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("fsck", argc - optind ? "too many arguments"
							 : "missing STORE");
	/* a bad TARGET is bad input like for every command (1); 2 is kept
	 * for a check that cannot run on a store that is there */
	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		return EXIT_FAILED;

	if (fix) {
		status = open_for_repair(store, mnt, &s);
		if (status == EXIT_OK)
			status = repair(s, store, r.json, &res);
		if (status != EXIT_OK) {
			keep_store_close(s);
			goto out;
		}
		status = EXIT_USAGE;
	} else {
		struct keep_secret *sec = NULL;
		/* --data opens every blob: an encrypted store's secret */
		if (data &&
		    secret_for_store(store, NULL, NULL, &sec) != EXIT_OK) {
			status = EXIT_USAGE;
			goto out;
		}
		rc = keep_store_open_secret(store, KEEP_OPEN_RDONLY, sec, &s);
		secret_free(sec);
		if (rc != 0) {
			fprintf(stderr, "keepfs: cannot open store '%s': %s\n",
				store, keep_strerror(rc));
			if (rc == KEEP_E_NOTSTORE || rc == KEEP_E_VERSION ||
			    rc == KEEP_E_CORRUPT || rc == ENOENT ||
			    rc == KEEP_E_BADKEY)
				status = EXIT_FAILED;
			goto out;
		}
	}
	if (r.json) {
		fputs("{\"store\": ", stdout);
		json_string(store);
		printf(", \"data\": %s", data ? "true" : "false");
		if (fix) {
			fputs(", \"repair\": {\"backup\": ", stdout);
			if (res.backup[0])
				json_string(res.backup);
			else
				fputs("null", stdout);
			printf(", \"rows\": %" PRIu64 ", \"blobs\": %" PRIu64
			       ", \"blob_bytes\": %" PRIu64 "}",
			       res.dropped.rows, res.dropped.blobs,
			       res.dropped.blob_bytes);
		}
		fputs(", \"problems\": [", stdout);
	}
	rc = keep_check(s, data, on_problem, &r, &count);
	grc = rc == 0 || rc == KEEP_E_CORRUPT ? keep_garbage(s, &g) : 0;
	if (grc)
		rc = grc;
	keep_store_close(s);
	if (count < r.n)
		count = r.n;

	if (r.json) {
		printf("], \"count\": %" PRIu64 ", \"clean\": %s, "
		       "\"garbage\": {\"rows\": %" PRIu64 ", \"blobs\": %" PRIu64
		       ", \"blob_bytes\": %" PRIu64 "}",
		       count, rc == 0 ? "true" : "false", g.rows, g.blobs,
		       g.blob_bytes);
		if (rc != 0 && rc != KEEP_E_CORRUPT) {
			fputs(", \"error\": ", stdout);
			json_string(keep_strerror(rc));
		}
		fputs("}\n", stdout);
	} else {
		if (r.data_files)
			printf("file data named above is damaged or missing and "
			       "fsck cannot repair it: restore those files from "
			       "a version not named above (keepfs restore) or "
			       "from a replica\n");
		if ((rc == 0 || rc == KEEP_E_CORRUPT) && (g.rows || g.blobs))
			printf("garbage: %" PRIu64 " unreachable row%s and %" PRIu64
			       " orphan blob%s (%s) that no view can see; "
			       "'keepfs fsck --repair' drops them\n",
			       g.rows, g.rows == 1 ? "" : "s", g.blobs,
			       g.blobs == 1 ? "" : "s",
			       human_bytes(g.blob_bytes, size, sizeof(size)));
	}
	if (rc == 0) {
		if (!r.json)
			printf("store '%s' is consistent%s\n", store,
			       fix ? " after the repair" : "");
		status = EXIT_OK;
	} else if (rc == KEEP_E_CORRUPT) {
		if (!r.json)
			printf("%" PRIu64 " problem%s %s in store '%s'\n", count,
			       count == 1 ? "" : "s",
			       fix ? "left after the repair" : "found", store);
		status = EXIT_FAILED;
	} else {
		fprintf(stderr, "keepfs: check of store '%s' stopped: %s\n",
			store, keep_strerror(rc));
		status = EXIT_USAGE;
	}
out:
	free(store);
	free(mnt);
	return status;
}
