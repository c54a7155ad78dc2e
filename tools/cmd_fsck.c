/*
 * cmd_fsck.c - "keepfs fsck": check a store's consistency.
 *
 * Exit status: 0 clean, 1 problems found (or bad input: no such store, not
 * a store, a newer format), 2 the check could not run or a usage error.  The check reads committed state only, so it is safe on a
 * mounted store; uncommitted changes of a running daemon are not seen.
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
	"usage: keepfs fsck STORE [--data] [--json]\n"
	"\n"
	"Check the invariants of a store (database integrity, references,\n"
	"link counts, row lifetimes, tree shape) and print every problem.\n"
	"STORE may also be the mount point of a store.  Exit status: 0 clean,\n"
	"1 problems found (or STORE is missing, not a store, of a newer\n"
	"format), 2 the check could not run.\n"
	"\n"
	"options:\n"
	"   --data      also decode every stored block and verify its hash\n"
	"   --json      print one JSON object\n"
	"   -h, --help  show this help\n";

struct problems {
	int json;
	uint64_t n;
};

static void on_problem(void *ctx, const char *problem)
{
	struct problems *p = ctx;

	if (p->json) {
		fputs(p->n ? ", " : "", stdout);
		json_string(problem);
	} else {
		printf("%s\n", problem);
	}
	p->n++;
}

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data", no_argument, NULL, 'D'},
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	struct problems p = {0};
	struct keep_store *s;
	char *store = NULL, *mnt = NULL;
	uint64_t count = 0;
	int c, data = 0, rc, status = EXIT_USAGE;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'D':
			data = 1;
			break;
		case 'j':
			p.json = 1;
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

	struct keep_secret *sec = NULL;
	/* --data opens every blob: an encrypted store's secret is needed */
	if (data && secret_for_store(store, NULL, NULL, &sec) != EXIT_OK) {
		status = EXIT_USAGE;
		goto out;
	}
	rc = keep_store_open_secret(store, KEEP_OPEN_RDONLY, sec, &s);
	secret_free(sec);
	if (rc != 0) {
		fprintf(stderr, "keepfs: cannot open store '%s': %s\n", store,
			keep_strerror(rc));
		if (rc == KEEP_E_NOTSTORE || rc == KEEP_E_VERSION ||
		    rc == KEEP_E_CORRUPT || rc == ENOENT)
			status = EXIT_FAILED;
		goto out;
	}
	if (p.json) {
		fputs("{\"store\": ", stdout);
		json_string(store);
		printf(", \"data\": %s, \"problems\": [", data ? "true" : "false");
	}
	rc = keep_check(s, data, on_problem, &p, &count);
	keep_store_close(s);
	if (count < p.n)
		count = p.n;

	if (p.json) {
		printf("], \"count\": %" PRIu64 ", \"clean\": %s", count,
		       rc == 0 ? "true" : "false");
		if (rc != 0 && rc != KEEP_E_CORRUPT) {
			fputs(", \"error\": ", stdout);
			json_string(keep_strerror(rc));
		}
		fputs("}\n", stdout);
	}
	if (rc == 0) {
		if (!p.json)
			printf("store '%s' is consistent\n", store);
		status = EXIT_OK;
	} else if (rc == KEEP_E_CORRUPT) {
		if (!p.json)
			printf("%" PRIu64 " problem%s found in store '%s'\n",
			       count, count == 1 ? "" : "s", store);
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
