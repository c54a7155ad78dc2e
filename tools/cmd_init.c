/*
 * cmd_init.c - "keepfs init": create a new store.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

const char usage_init[] =
	"usage: keepfs init STORE [--block-size SIZE]\n"
	"\n"
	"Create a new, empty keepfs store in the directory STORE (created\n"
	"with mode 0700; an existing directory must be empty).  The root of\n"
	"the tree belongs to the calling user.\n"
	"\n"
	"options:\n"
	"   --block-size SIZE   bytes per file block: a power of two from 4K\n"
	"                       to 1M (suffixes K and M), default 32K\n"
	"   -h, --help          show this help\n";

static int parse_block_size(const char *arg, uint32_t *out)
{
	uint64_t v;

	if (parse_size(arg, &v) != 0 || v < KEEP_MIN_BLOCK_SIZE ||
	    v > KEEP_MAX_BLOCK_SIZE || (v & (v - 1)) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"block-size", required_argument, NULL, 'b'},
		{NULL, 0, NULL, 0},
	};
	struct keep_init_opts opts = {0};
	struct stat st;
	char *abs;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_block_size(optarg, &opts.block_size) != 0)
				return usage_error(
					"init",
					"bad block size '%s': expected a power "
					"of two from 4K to 1M",
					optarg);
			break;
		default:
			return bad_option("init", c, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("init", argc - optind ? "too many arguments"
							 : "missing STORE");

	abs = abs_path(argv[optind]);
	if (!abs)
		return error("cannot create store '%s': %s", argv[optind],
			     strerror(errno));

	opts.uid = (uint32_t)getuid();
	opts.gid = (uint32_t)getgid();
	rc = keep_store_init(abs, &opts);
	if (rc == 0) {
		printf("initialized keepfs store at '%s'\n", abs);
	} else if (keep_is_store(abs)) {
		error("'%s' is already a keepfs store", argv[optind]);
	} else if (stat(abs, &st) == 0 && !S_ISDIR(st.st_mode)) {
		error("cannot create store '%s': it exists and is not a directory",
		      argv[optind]);
	} else if (rc == KEEP_E_EXISTS) {
		error("cannot create store '%s': the directory is not empty",
		      argv[optind]);
	} else {
		error("cannot create store '%s': %s", argv[optind],
		      keep_strerror(rc));
	}
	free(abs);
	return rc == 0 ? EXIT_OK : EXIT_FAILED;
}
