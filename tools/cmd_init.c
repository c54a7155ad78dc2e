/*
 * cmd_init.c - "keepfs init": create a new store.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

const char usage_init[] =
	"usage: keepfs init STORE [--block-size SIZE]\n"
	"       keepfs init --encrypt STORE [--passphrase-file FILE | --key-file FILE]\n"
	"\n"
	"Create a new, empty keepfs store in the directory STORE (created\n"
	"with mode 0700; an existing directory must be empty).  The root of\n"
	"the tree belongs to the calling user.\n"
	"\n"
	"With --encrypt every file's contents are sealed with a random master\n"
	"key, which a passphrase (asked twice on the terminal, or read from\n"
	"--passphrase-file) or a key file (--key-file, made by 'keepfs key\n"
	"generate') unlocks.  Names, sizes and times stay readable without it:\n"
	"see the threat model in docs/encryption.md.  Lose the passphrase or\n"
	"key file and the contents are gone.\n"
	"\n"
	"options:\n"
	"   --block-size SIZE       bytes per file block: a power of two from\n"
	"                           4K to 1M (suffixes K and M), default 32K\n"
	"   --encrypt               make an encrypted store\n"
	"   --passphrase-file FILE  its passphrase (one trailing newline is\n"
	"                           not part of it); implies --encrypt\n"
	"   --key-file FILE         its key file; implies --encrypt\n"
	"   -h, --help              show this help\n";

static int parse_block_size(const char *arg, uint32_t *out)
{
	uint64_t v;

	if (parse_size(arg, &v) != 0 || v < KEEP_MIN_BLOCK_SIZE ||
	    v > KEEP_MAX_BLOCK_SIZE || (v & (v - 1)) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 1; /* keep_store_init will say what is wrong */
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

int cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"block-size", required_argument, NULL, 'b'},
		{"encrypt", no_argument, NULL, 'e'},
		{"passphrase-file", required_argument, NULL, 'p'},
		{"key-file", required_argument, NULL, 'k'},
		{NULL, 0, NULL, 0},
	};
	struct keep_init_opts opts = {0};
	struct keep_secret *sec = NULL;
	const char *passfile = NULL, *keyfile = NULL;
	struct stat st;
	char *abs;
	int c, rc, encrypt = 0;

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
		case 'e':
			encrypt = 1;
			break;
		case 'p':
			passfile = optarg;
			encrypt = 1;
			break;
		case 'k':
			keyfile = optarg;
			encrypt = 1;
			break;
		default:
			return bad_option("init", c, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("init", argc - optind ? "too many arguments"
							 : "missing STORE");
	if (passfile && keyfile)
		return usage_error("init", "give a passphrase file or a key "
					   "file, not both");
	/* nobody is asked for a passphrase for a store that cannot be made */
	if (encrypt && (keep_is_store(argv[optind]) ||
			(stat(argv[optind], &st) == 0 && S_ISDIR(st.st_mode) &&
			 !dir_empty(argv[optind]))))
		return error("cannot create store '%s': %s", argv[optind],
			     keep_is_store(argv[optind])
				     ? "it is already a keepfs store"
				     : "the directory is not empty");
	if (encrypt) {
		int r = passfile || keyfile
				? secret_from_file(passfile ? passfile : keyfile,
						   passfile ? KEEP_SECRET_PASSPHRASE
							    : KEEP_SECRET_KEYFILE,
						   &sec)
				: secret_prompt(argv[optind], 1, &sec);
		if (r != EXIT_OK)
			return EXIT_FAILED;
		opts.encrypt = sec;
	}

	abs = abs_path(argv[optind]);
	if (!abs) {
		secret_free(sec);
		return error("cannot create store '%s': %s", argv[optind],
			     strerror(errno));
	}

	opts.uid = (uint32_t)getuid();
	opts.gid = (uint32_t)getgid();
	rc = keep_store_init(abs, &opts);
	secret_free(sec);
	if (rc == 0) {
		printf("initialized %skeepfs store at '%s'\n",
		       encrypt ? "encrypted " : "", abs);
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
