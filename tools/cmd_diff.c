/*
 * cmd_diff.c - "keepfs diff": what changed between two versions of a tree.
 *
 * FROM and TO are snapshot names or @TIME, as in .snapshots; TO defaults
 * to the live tree.  The store is always opened read-only, mounted or
 * not, so the live tree is the newest commit: a mount commits its changes
 * within its commit interval, and at every fsync.
 *
 * Paths are printed the way git quotes them: a path holding a control
 * byte, a double quote, a backslash or the separator " -> " is printed in
 * double quotes with C escapes (\n, \t, \\, \", \ooo for other control
 * bytes); other bytes, UTF-8 included, are printed as they are.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "keep.h"
#include "util_i.h"

const char usage_diff[] =
    "usage: keepfs diff TARGET FROM [TO] [--stat] [--json] [--full-scan]\n"
    "\n"
    "Show what changed from FROM to TO, one line per changed path:\n"
    "   + PATH          added\n"
    "   - PATH          removed\n"
    "   M PATH          content or metadata changed (also: another file\n"
    "                   now at the same path, as after a rename over it)\n"
    "   R OLD -> NEW    renamed (the same file, perhaps also changed)\n"
    "FROM and TO are snapshot names or @TIME (@2026-11-24T08:35:00Z,\n"
    "@-10m, as in MOUNTPOINT/.snapshots); TO defaults to the live tree,\n"
    "which on a mounted store is its newest commit.  Paths are relative to\n"
    "the root ('.' is the root itself); a path with control bytes, '\"',\n"
    "'\\' or ' -> ' in it is printed in double quotes with C escapes.\n"
    "\n"
    "options:\n"
    "   --stat      print only a summary: the count of each kind and the\n"
    "               bytes of regular files added and removed\n"
    "   --json      print JSON (an array of changes, or with --stat an\n"
    "               object)\n"
    "   --full-scan compare every row of the store instead of following\n"
    "               the change journal (slower; the same answer)\n"
    "   -h, --help  show this help\n";

static void json_field_path(const char *key, const char *p)
{
	printf(", \"%s\": ", key);
	if (!json_text(p)) {
		printf(", \"%s_hex\": \"", key);
		for (const unsigned char *c = (const unsigned char *)p; *c; c++)
			printf("%02x", *c);
		putchar('"');
	}
}

static const char *kind_name(int kind)
{
	switch (kind) {
	case KEEP_DIFF_ADDED:
		return "added";
	case KEEP_DIFF_REMOVED:
		return "removed";
	case KEEP_DIFF_RENAMED:
		return "renamed";
	default:
		return "modified";
	}
}

/* ---- the walk ------------------------------------------------------------ */

struct out {
	bool json, stat;
	uint64_t n, count[4];
	uint64_t bytes_added, bytes_removed;
};

static void count(struct out *o, const struct keep_diff_entry *e)
{
	uint64_t a = S_ISREG(e->mode_a) ? e->size_a : 0;
	uint64_t b = S_ISREG(e->mode_b) ? e->size_b : 0;

	switch (e->kind) {
	case KEEP_DIFF_ADDED:
		o->count[0]++;
		break;
	case KEEP_DIFF_REMOVED:
		o->count[1]++;
		break;
	case KEEP_DIFF_MODIFIED:
		o->count[2]++;
		break;
	default:
		o->count[3]++;
	}
	if (e->flags & KEEP_DIFF_LINK)
		return; /* a name, not the file's bytes */
	if (b > a)
		o->bytes_added += b - a;
	else
		o->bytes_removed += a - b;
}

static void print_json(struct out *o, const struct keep_diff_entry *e)
{
	static const struct {
		unsigned flag;
		const char *name;
	} flags[] = {
	    {KEEP_DIFF_DATA, "content"}, {KEEP_DIFF_ATTR, "metadata"},
	    {KEEP_DIFF_XATTR, "xattrs"}, {KEEP_DIFF_REPLACED, "replaced"},
	    {KEEP_DIFF_LINK, "link"},
	};
	bool b = e->kind != KEEP_DIFF_REMOVED;
	int n = 0;

	fputs(o->n ? ",\n {" : "[{", stdout);
	printf("\"kind\": \"%s\"", kind_name(e->kind));
	json_field_path("path", b ? e->path_b : e->path_a);
	/* a modified file under a renamed directory has an old path too */
	if (e->kind == KEEP_DIFF_RENAMED ||
	    (e->kind == KEEP_DIFF_MODIFIED && strcmp(e->path_a, e->path_b)))
		json_field_path("old_path", e->path_a);
	printf(", \"type\": \"%s\"", file_type_name(b ? e->mode_b : e->mode_a));
	if (e->kind == KEEP_DIFF_MODIFIED &&
	    (e->mode_a & S_IFMT) != (e->mode_b & S_IFMT))
		printf(", \"old_type\": \"%s\"", file_type_name(e->mode_a));
	if (e->ino_a)
		printf(", \"old_ino\": %" PRIu64 ", \"old_size\": %" PRIu64,
		       e->ino_a, e->size_a);
	if (e->ino_b)
		printf(", \"ino\": %" PRIu64 ", \"size\": %" PRIu64, e->ino_b,
		       e->size_b);
	fputs(", \"changes\": [", stdout);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (e->flags & flags[i].flag)
			printf("%s\"%s\"", n++ ? ", " : "", flags[i].name);
	fputs("]}", stdout);
}

static int each(void *ctx, const struct keep_diff_entry *e)
{
	struct out *o = ctx;

	count(o, e);
	if (o->stat) {
		/* summary only */
	} else if (o->json) {
		print_json(o, e);
	} else if (e->kind == KEEP_DIFF_RENAMED) {
		fputs("R ", stdout);
		put_path(stdout, e->path_a);
		fputs(" -> ", stdout);
		put_path(stdout, e->path_b);
		putchar('\n');
	} else {
		printf("%c ", e->kind);
		put_path(stdout, e->kind == KEEP_DIFF_REMOVED ? e->path_a : e->path_b);
		putchar('\n');
	}
	o->n++;
	return ferror(stdout) ? EIO : 0;
}

int cmd_diff(int argc, char **argv)
{
	enum { OPT_STAT = 1, OPT_JSON, OPT_FULL };
	static const struct option longopts[] = {
	    {"stat", no_argument, NULL, OPT_STAT},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"full-scan", no_argument, NULL, OPT_FULL},
	    {NULL, 0, NULL, 0},
	};
	struct keep_store *s = NULL;
	struct out o = {0};
	char *store = NULL, *mnt = NULL;
	uint64_t from = 0, to = KEEP_LIVE;
	unsigned opts = 0;
	int c, rc, status = EXIT_FAILED;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_STAT:
			o.stat = true;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_FULL:
			opts |= KEEP_DIFF_FULL_SCAN;
			break;
		default:
			return bad_option("diff", c, argv);
		}
	}
	switch (argc - optind) {
	case 0:
		return usage_error("diff", "missing TARGET and FROM");
	case 1:
		return usage_error("diff", "missing FROM");
	case 2:
	case 3:
		break;
	default:
		return usage_error("diff", "too many arguments");
	}
	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		return EXIT_FAILED;
	rc = keep_store_open(store, KEEP_OPEN_RDONLY, &s);
	if (rc) {
		s = NULL;
		error("cannot open store '%s': %s", store, keep_strerror(rc));
		goto out;
	}
	if (find_version(s, store, argv[optind + 1], &from) != EXIT_OK)
		goto out;
	if (argc - optind == 3 &&
	    find_version(s, store, argv[optind + 2], &to) != EXIT_OK)
		goto out;

	rc = keep_diff(s, from, to, opts, each, &o);
	if (rc == EIO && ferror(stdout)) {
		status = EXIT_FAILED; /* keepfs.c reports the write error */
		goto out;
	}
	if (rc) {
		error("cannot compare in '%s': %s", store, keep_strerror(rc));
		goto out;
	}
	if (o.stat && o.json)
		printf("{\"added\": %" PRIu64 ", \"removed\": %" PRIu64
		       ", \"modified\": %" PRIu64 ", \"renamed\": %" PRIu64
		       ", \"bytes_added\": %" PRIu64
		       ", \"bytes_removed\": %" PRIu64 "}\n",
		       o.count[0], o.count[1], o.count[2], o.count[3],
		       o.bytes_added, o.bytes_removed);
	else if (o.stat)
		printf("%" PRIu64 " added, %" PRIu64 " removed, %" PRIu64
		       " modified, %" PRIu64 " renamed; %" PRIu64
		       " bytes added, %" PRIu64 " bytes removed\n",
		       o.count[0], o.count[1], o.count[2], o.count[3],
		       o.bytes_added, o.bytes_removed);
	else if (o.json)
		fputs(o.n ? "]\n" : "[]\n", stdout);
	status = EXIT_OK;
out:
	keep_store_close(s);
	free(store);
	free(mnt);
	return status;
}
