/*
 * cmd_config.c - "keepfs config": the retention settings a store keeps.
 *
 * Showing reads the store (read-only, mounted or not).  Changing goes
 * through the daemon of a mounted store (ctl_config), which then applies
 * the new settings at once, or opens an unmounted store for writing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfs.h"
#include "keep.h"
#include "util_i.h"

const char usage_config[] =
    "usage: keepfs config TARGET [KEY=VALUE...]\n"
    "\n"
    "Show the retention settings of a store, one KEY=VALUE per line, or\n"
    "change them.  Settings live in the store; a mount option of the same\n"
    "name overrides one for the life of that mount.\n"
    "\n"
    "   journal=DURATION    every commit stays browsable this long (1h)\n"
    "   auto=INTERVAL       take an automatic snapshot this often, when\n"
    "                       something changed, or 'off' (15m)\n"
    "   hourly=N daily=N weekly=N monthly=N\n"
    "                       automatic snapshots kept: the newest of each of\n"
    "                       the last N hours, days, weeks, months\n"
    "                       (24, 30, 8, 12)\n"
    "   prerestore=N        pre-restore snapshots kept, the newest (10)\n"
    "   max_history=BUDGET  space history may take: 'none', a size (20G)\n"
    "                       or a share of the file system (10%) (none)\n"
    "\n"
    "DURATION is 0 or a whole number with s, m, h, d or w (90s, 15m, 1h,\n"
    "7d, 2w).  VALUE 'default' returns a setting to its default.  Every\n"
    "value is checked before any is changed.\n"
    "\n"
    "options:\n"
    "   -h, --help  show this help\n";

static void show(FILE *f, const struct keep_policy *p)
{
	char v[64];

	for (int i = 0; keep_policy_keys[i]; i++) {
		keep_policy_get(p, keep_policy_keys[i], v, sizeof(v));
		fprintf(f, "%s=%s\n", keep_policy_keys[i], v);
	}
}

/* Split "key=value" arguments; prints the first that has no '='. */
static int split(int n, char **args, char **keys, char **values,
		 FILE *err)
{
	for (int i = 0; i < n; i++) {
		char *eq = strchr(args[i], '=');
		if (!eq || eq == args[i]) {
			fprintf(err,
				"keepfs: '%s' is not KEY=VALUE (see 'keepfs "
				"config --help')\n",
				args[i]);
			return EXIT_USAGE;
		}
		keys[i] = xstrdup(args[i]);
		keys[i][eq - args[i]] = '\0';
		values[i] = eq + 1;
	}
	return EXIT_OK;
}

/* Set and show; the store is writable. */
static int put(struct keep_store *s, const char *store, int n, char **args,
	       FILE *out, FILE *err, struct keep_policy *now)
{
	char **keys = calloc((size_t)n + 1, sizeof(*keys));
	char **values = calloc((size_t)n + 1, sizeof(*values));
	char msg[256] = "";
	int rc, status;

	if (!keys || !values)
		die("out of memory");
	rc = split(n, args, keys, values, err);
	status = rc;

	if (rc == EXIT_OK) {
		rc = keep_policy_put(s, (size_t)n, (const char *const *)keys,
				     (const char *const *)values, msg,
				     sizeof(msg));
		if (rc == EINVAL) {
			fprintf(err, "keepfs: %s\n", msg);
			status = EXIT_USAGE;
		} else if (rc) {
			fprintf(err, "keepfs: cannot change the settings of '%s': %s\n",
				store, keep_strerror(rc));
			status = EXIT_FAILED;
		} else {
			rc = keep_policy_load(s, now);
			if (!rc)
				show(out, now);
			status = rc ? EXIT_FAILED : EXIT_OK;
		}
	}
	for (int i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	free(values);
	return status;
}

int cmd_config(int argc, char **argv)
{
	struct keep_policy p;
	struct keep_store *s = NULL;
	char *store = NULL, *mnt = NULL;
	int c, rc, status = EXIT_FAILED;

	opterr = 0;
	while ((c = getopt(argc, argv, "+:")) != -1)
		return bad_option("config", c, argv);
	if (optind >= argc)
		return usage_error("config", "missing TARGET");
	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		goto out;
	int n = argc - optind - 1;
	char **pairs = argv + optind + 1;
	if (n == 0) {
		rc = keep_store_open(store, KEEP_OPEN_RDONLY, &s);
		if (rc) {
			s = NULL;
			error("cannot open store '%s': %s", store,
			      keep_strerror(rc));
			goto out;
		}
		rc = keep_policy_load(s, &p);
		if (rc)
			error("cannot read the settings of '%s': %s", store,
			      keep_strerror(rc));
		else
			show(stdout, &p);
		status = rc ? EXIT_FAILED : EXIT_OK;
		goto out;
	}
	if (mnt) {
		char **args = xmalloc((size_t)(n + 2) * sizeof(*args));
		args[0] = "config";
		args[1] = "--";
		memcpy(args + 2, pairs, (size_t)n * sizeof(*args));
		status = ctl_run(store, mnt, n + 2, args);
		free(args);
		goto out;
	}
	if (open_writable(store, &s) != EXIT_OK)
		goto out;
	status = put(s, store, n, pairs, stdout, stderr, &p);
out:
	if (s) {
		rc = keep_store_close(s);
		if (rc && status == EXIT_OK)
			status = error("closing store '%s' failed: %s", store,
				       keep_strerror(rc));
	}
	free(store);
	free(mnt);
	return status;
}

int ctl_config(struct kfs_ctl *c, int argc, char **argv)
{
	const struct kfs_config *cfg = kfs_ctl_config(c);
	struct keep_policy p;
	int i = 1;

	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (cfg->read_only)
		return ctl_error(c, "the store is mounted read-only: its "
				    "settings cannot change");
	int status = put(kfs_ctl_store(c), cfg->store_path, argc - i, argv + i,
			 kfs_ctl_out(c), kfs_ctl_err(c), &p);
	if (status == EXIT_OK)
		kfs_ctl_policy_changed(c);
	return status;
}
