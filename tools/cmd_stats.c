/*
 * cmd_stats.c - "keepfs stats": what a store holds and what it costs.
 *
 * Works on a mounted store too: a read-only open sees the last commit.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keep.h"
#include "util_i.h"

const char usage_stats[] =
	"usage: keepfs stats TARGET [--json]\n"
	"\n"
	"Show the commits, files, sizes, dedup and compression ratios of a\n"
	"store, as of its last commit.  TARGET is a store or the mount point\n"
	"of one.\n"
	"\n"
	"options:\n"
	"   --json      print one JSON object, sizes in exact bytes\n"
	"   -h, --help  show this help\n";

static double ratio(uint64_t num, uint64_t den)
{
	return den ? (double)num / (double)den : 1.0;
}

/* "2024-05-01T12:00:00Z", or "" for no time. */
static const char *iso_time(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	buf[0] = '\0';
	if (ns > 0 && gmtime_r(&t, &tm))
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static void print_human(const char *store, const char *mnt, pid_t pid,
			const struct keep_stats *st, uint64_t budget)
{
	char a[32], b[32], when[32];

	printf("store:             %s\n", store);
	if (mnt && pid > 0)
		printf("mounted at:        %s (daemon pid %d)\n", mnt, (int)pid);
	else if (mnt)
		printf("mounted at:        %s\n", mnt);
	else if (pid > 0)
		printf("mounted at:        - (store locked by pid %d)\n",
		       (int)pid);
	else
		printf("mounted at:        -\n");
	printf("format version:    %" PRIu32 "\n", st->format_version);
	printf("encrypted:         %s\n",
	       st->encrypted ? "yes (XChaCha20-Poly1305)" : "no");
	printf("uuid:              %s\n", st->uuid);
	printf("replica of:        %s\n",
	       st->replica_of[0] ? st->replica_of : "- (not a replica)");
	printf("block size:        %s\n",
	       human_bytes(st->block_size, a, sizeof(a)));
	printf("commits:           %" PRIu64 "\n", st->commits);
	if (st->commits)
		printf("last commit:       %s (id %" PRIu64 ")\n",
		       iso_time(st->last_commit_ns, when, sizeof(when)),
		       st->last_commit);
	else
		printf("last commit:       -\n");
	printf("files:             %" PRIu64 "\n", st->files);
	printf("directories:       %" PRIu64 "\n", st->dirs);
	printf("other:             %" PRIu64 "\n", st->others);
	printf("logical bytes:     %s\n",
	       human_bytes(st->logical_bytes, a, sizeof(a)));
	printf("stored bytes:      %s (%" PRIu64 " blobs, %s before "
	       "compression)\n",
	       human_bytes(st->blob_stored_bytes, a, sizeof(a)), st->blobs,
	       human_bytes(st->blob_raw_bytes, b, sizeof(b)));
	printf("live:              %s (stored bytes the live tree uses)\n",
	       human_bytes(st->live_stored_bytes, a, sizeof(a)));
	printf("history:           %s (stored bytes only history uses)\n",
	       human_bytes(st->history_stored_bytes, a, sizeof(a)));
	if (budget)
		printf("history budget:    %s (max_history)\n",
		       human_bytes(budget, a, sizeof(a)));
	else
		printf("history budget:    none\n");
	printf("dedup ratio:       %.2f\n",
	       ratio(st->history_block_bytes, st->blob_raw_bytes));
	printf("compression ratio: %.2f\n",
	       ratio(st->blob_raw_bytes, st->blob_stored_bytes));
	printf("store size:        %s\n",
	       human_bytes(st->db_bytes, a, sizeof(a)));
}

static void print_json(const char *store, const char *mnt, pid_t pid,
		       const struct keep_stats *st, uint64_t budget)
{
	char when[32];

	fputs("{\"store\": ", stdout);
	json_string(store);
	fputs(", \"mountpoint\": ", stdout);
	if (mnt)
		json_string(mnt);
	else
		fputs("null", stdout);
	if (pid > 0)
		printf(", \"daemon_pid\": %d", (int)pid);
	else
		fputs(", \"daemon_pid\": null", stdout);
	printf(", \"format_version\": %" PRIu32, st->format_version);
	printf(", \"encrypted\": %s", st->encrypted ? "true" : "false");
	fputs(", \"uuid\": ", stdout);
	json_string(st->uuid);
	fputs(", \"replica_of\": ", stdout);
	if (st->replica_of[0])
		json_string(st->replica_of);
	else
		fputs("null", stdout);
	printf(", \"block_size\": %" PRIu32, st->block_size);
	printf(", \"commits\": %" PRIu64, st->commits);
	printf(", \"last_commit\": %" PRIu64, st->last_commit);
	if (st->commits && iso_time(st->last_commit_ns, when, sizeof(when))[0])
		printf(", \"last_commit_time\": \"%s\"", when);
	else
		fputs(", \"last_commit_time\": null", stdout);
	printf(", \"last_commit_ns\": %" PRId64, st->last_commit_ns);
	printf(", \"files\": %" PRIu64, st->files);
	printf(", \"dirs\": %" PRIu64, st->dirs);
	printf(", \"others\": %" PRIu64, st->others);
	printf(", \"logical_bytes\": %" PRIu64, st->logical_bytes);
	printf(", \"live_block_bytes\": %" PRIu64, st->live_block_bytes);
	printf(", \"history_block_bytes\": %" PRIu64, st->history_block_bytes);
	printf(", \"blobs\": %" PRIu64, st->blobs);
	printf(", \"blob_raw_bytes\": %" PRIu64, st->blob_raw_bytes);
	printf(", \"stored_bytes\": %" PRIu64, st->blob_stored_bytes);
	printf(", \"store_bytes\": %" PRIu64, st->db_bytes);
	printf(", \"live_stored_bytes\": %" PRIu64, st->live_stored_bytes);
	printf(", \"history_stored_bytes\": %" PRIu64,
	       st->history_stored_bytes);
	printf(", \"history_budget_bytes\": %" PRIu64, budget);
	printf(", \"dedup_ratio\": %.4f",
	       ratio(st->history_block_bytes, st->blob_raw_bytes));
	printf(", \"compression_ratio\": %.4f",
	       ratio(st->blob_raw_bytes, st->blob_stored_bytes));
	fputs("}\n", stdout);
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	struct keep_stats st;
	struct keep_store *s;
	char *store = NULL, *mnt = NULL;
	int c, json = 0, rc, status = EXIT_FAILED;
	pid_t pid;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		default:
			return bad_option("stats", c, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("stats", argc - optind ? "too many arguments"
							  : "missing TARGET");
	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		return EXIT_FAILED;

	rc = keep_store_open(store, KEEP_OPEN_RDONLY, &s);
	if (rc != 0) {
		error("cannot open store '%s': %s", store, keep_strerror(rc));
		goto out;
	}
	struct keep_policy p;
	uint64_t budget = 0;
	rc = keep_stats(s, &st);
	if (!rc)
		rc = keep_policy_load(s, &p);
	if (!rc)
		budget = keep_history_budget(s, &p);
	keep_store_close(s);
	if (rc != 0) {
		error("cannot read the statistics of store '%s': %s", store,
		      keep_strerror(rc));
		goto out;
	}
	pid = keep_store_lock_owner(store);
	if (json)
		print_json(store, mnt, pid, &st, budget);
	else
		print_human(store, mnt, pid, &st, budget);
	status = EXIT_OK;
out:
	free(store);
	free(mnt);
	return status;
}
