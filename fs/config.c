/*
 * config.c - keepfs mount options.
 *
 * Owns struct kfs_config: its defaults and the parsing of a "-o" option
 * string as mount(8), fstab and the keepfs command hand it to us.  Options
 * that only mean something to mount(8) or systemd are accepted and
 * dropped here, so libfuse never sees them; the few generic options libfuse
 * understands are collected in cfg->fuse_opts.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfs.h"

#define KFS_DEFAULT_DIRTY_LIMIT (UINT64_C(8) << 20)
#define KFS_MIN_DIRTY_LIMIT (UINT64_C(1) << 20)
#define KFS_MAX_COMMIT_INTERVAL 86400.0
#define KFS_MAX_THREADS 64

/* One request thread a CPU, from 2 to 8: see "Request threads" in
 * docs/design.md for why not libfuse's ten. */
static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 2)
		return 2;
	return n > 8 ? 8 : (unsigned)n;
}

void kfs_config_init(struct kfs_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->commit_interval = 1.0;
	cfg->dirty_limit = KFS_DEFAULT_DIRTY_LIMIT;
	cfg->snapdir_visible = 0;
	cfg->writeback = 1;
	cfg->readdirplus = 1;
	cfg->cache_timeout = 60.0;
	cfg->threads = default_threads();
	keep_policy_default(&cfg->policy);
}

void kfs_config_release(struct kfs_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->store_path);
	free(cfg->mountpoint);
	free(cfg->fuse_opts);
	free(cfg->passfile);
	free(cfg->keyfile);
	cfg->store_path = NULL;
	cfg->mountpoint = NULL;
	cfg->fuse_opts = NULL;
	cfg->passfile = cfg->keyfile = NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Append opt to the comma-separated list *list.  Returns 0 or ENOMEM. */
static int add_fuse_opt(char **list, const char *opt)
{
	size_t old = *list ? strlen(*list) : 0;
	char *n = realloc(*list, old + strlen(opt) + 2);
	if (!n)
		return ENOMEM;
	if (old)
		n[old++] = ',';
	strcpy(n + old, opt);
	*list = n;
	return 0;
}

/* Seconds: a decimal number > 0 and <= one day. */
static int parse_interval(const char *v, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d <= 0 ||
	    d > KFS_MAX_COMMIT_INTERVAL)
		return -1;
	*out = d;
	return 0;
}

/* A byte count with an optional K, M or G suffix (binary units). */
static int parse_size(const char *v, uint64_t *out)
{
	char *end;
	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		return -1;
	}
	if (*end) {
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
	}
	if (*end)
		return -1;
	if (shift && n > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)n << shift;
	return 0;
}

static int is_one_of(const char *key, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(key, *list))
			return 1;
	return 0;
}

/* Options for mount(8), fstab or systemd only. */
static const char *const ignored_opts[] = {
	"auto", "noauto", "nofail", "_netdev", "user", "users", "owner",
	"nouser", "group", "defaults", "relatime", "norelatime", "strictatime",
	"nostrictatime", "lazytime", "nolazytime", "diratime", "nodiratime",
	"atime", "suid", "dev", "exec", "async", "loud", "silent",
	"default_permissions", /* always on */
	NULL,
};

/* Generic options libfuse passes on to the kernel as they are. */
static const char *const passed_opts[] = {
	"nosuid", "nodev", "noexec", "noatime", "dirsync", "sync", NULL,
};

/* Apply one "key" or "key=value" option. */
static int parse_one(struct kfs_config *cfg, char *opt, char *err,
		     size_t errlen)
{
	char *val = strchr(opt, '=');
	if (val)
		*val++ = '\0';
	const char *key = opt;

	if (!*key)
		return 0; /* "a,,b" */

	for (int i = 0; keep_policy_keys[i]; i++) {
		if (strcmp(key, keep_policy_keys[i]))
			continue;
		if (!val && !strcmp(key, "auto"))
			break; /* fstab's "auto": mount at boot, ignored */
		if (!val)
			return fail(err, errlen,
				    "mount option '%s' needs a value (see "
				    "keepfs-config(1))",
				    key);
		if (keep_policy_set(&cfg->policy, key, val, err, errlen))
			return -1;
		cfg->policy_mask |= 1u << i;
		return 0;
	}
	if (!strcmp(key, "commit_interval")) {
		if (!val || parse_interval(val, &cfg->commit_interval))
			return fail(err, errlen,
				    "bad value '%s' for commit_interval: "
				    "expected seconds > 0 (at most 86400)",
				    val ? val : "");
		return 0;
	}
	if (!strcmp(key, "dirty_limit")) {
		uint64_t n;
		if (!val || parse_size(val, &n) || n < KFS_MIN_DIRTY_LIMIT)
			return fail(err, errlen,
				    "bad value '%s' for dirty_limit: expected a "
				    "size of at least 1M (suffixes K, M, G)",
				    val ? val : "");
		cfg->dirty_limit = n;
		return 0;
	}
	if (!strcmp(key, "snapdir")) {
		if (val && !strcmp(val, "visible"))
			cfg->snapdir_visible = 1;
		else if (val && !strcmp(val, "hidden"))
			cfg->snapdir_visible = 0;
		else
			return fail(err, errlen,
				    "bad value '%s' for snapdir: expected "
				    "'visible' or 'hidden'",
				    val ? val : "");
		return 0;
	}
	if (!strcmp(key, "writeback") || !strcmp(key, "readdirplus")) {
		int *flag = key[0] == 'w' ? &cfg->writeback : &cfg->readdirplus;
		if (val && !strcmp(val, "on"))
			*flag = 1;
		else if (val && !strcmp(val, "off"))
			*flag = 0;
		else
			return fail(err, errlen,
				    "bad value '%s' for %s: expected 'on' or 'off'",
				    val ? val : "", key);
		return 0;
	}
	if (!strcmp(key, "passfile") || !strcmp(key, "keyfile")) {
		char **slot = key[0] == 'p' ? &cfg->passfile : &cfg->keyfile;
		if (!val || !*val)
			return fail(err, errlen,
				    "mount option '%s' needs a file name", key);
		free(*slot);
		if (!(*slot = strdup(val)))
			return fail(err, errlen, "out of memory");
		return 0;
	}
	if (!strcmp(key, "cache_timeout")) {
		char *end;
		double t = val ? strtod(val, &end) : -1;
		if (!val || end == val || *end || !(t >= 0 && t <= 86400))
			return fail(err, errlen,
				    "bad value '%s' for cache_timeout: expected "
				    "seconds from 0 to 86400",
				    val ? val : "");
		cfg->cache_timeout = t;
		return 0;
	}
	if (!strcmp(key, "threads")) {
		char *end;
		errno = 0;
		unsigned long n = val ? strtoul(val, &end, 10) : 0;
		if (!val || errno || end == val || *end || *val == '-' ||
		    n < 1 || n > KFS_MAX_THREADS)
			return fail(err, errlen,
				    "bad value '%s' for threads: expected a "
				    "number from 1 to %d",
				    val ? val : "", KFS_MAX_THREADS);
		cfg->threads = (unsigned)n;
		return 0;
	}
	if (!strcmp(key, "max_read")) {
		char *end;
		errno = 0;
		unsigned long n = val ? strtoul(val, &end, 10) : 0;
		if (!val || errno || end == val || *end || n == 0 ||
		    n > (1UL << 30) || *val == '-')
			return fail(err, errlen,
				    "bad value '%s' for max_read: expected a "
				    "positive number of bytes",
				    val ? val : "");
		char buf[64];
		snprintf(buf, sizeof(buf), "max_read=%lu", n);
		if (add_fuse_opt(&cfg->fuse_opts, buf))
			return fail(err, errlen, "out of memory");
		return 0;
	}
	if (!strcmp(key, "fsname") || !strcmp(key, "subtype") ||
	    !strcmp(key, "comment") || !strncmp(key, "x-", 2))
		return 0; /* we set fsname and subtype ourselves */
	/* mount(8) hands helpers "user=NAME" for fstab's user mounts */
	if (val && (!strcmp(key, "user") || !strcmp(key, "users") ||
		    !strcmp(key, "owner") || !strcmp(key, "group")))
		return 0;

	static const char *const flags[] = {
		"ro", "rw", "allow_other", "allow_root", "debug", NULL,
	};
	if (val && (is_one_of(key, flags) || is_one_of(key, ignored_opts) ||
		    is_one_of(key, passed_opts)))
		return fail(err, errlen, "mount option '%s' takes no value",
			    key);
	if (val)
		return fail(err, errlen, "unknown mount option '%s'", key);

	if (!strcmp(key, "ro")) {
		cfg->read_only = 1;
	} else if (!strcmp(key, "rw")) {
		cfg->read_only = 0;
		cfg->rw_given = 1;
	} else if (!strcmp(key, "allow_other")) {
		cfg->allow_other = 1;
	} else if (!strcmp(key, "allow_root")) {
		cfg->allow_root = 1;
	} else if (!strcmp(key, "debug")) {
		cfg->debug = 1;
	} else if (is_one_of(key, ignored_opts)) {
		/* accepted, nothing to do */
	} else if (is_one_of(key, passed_opts)) {
		if (add_fuse_opt(&cfg->fuse_opts, key))
			return fail(err, errlen, "out of memory");
	} else {
		return fail(err, errlen, "unknown mount option '%s'", key);
	}
	return 0;
}

int kfs_config_parse(struct kfs_config *cfg, const char *opts, char *err,
		     size_t errlen)
{
	if (!opts)
		return 0;
	char *copy = strdup(opts);
	if (!copy)
		return fail(err, errlen, "out of memory");

	int rc = 0;
	char *p = copy;
	while (rc == 0 && p) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		rc = parse_one(cfg, p, err, errlen);
		p = comma ? comma + 1 : NULL;
	}
	if (rc == 0 && cfg->allow_other && cfg->allow_root)
		rc = fail(err, errlen,
			  "mount options 'allow_other' and 'allow_root' "
			  "exclude each other");
	if (rc == 0 && cfg->passfile && cfg->keyfile)
		rc = fail(err, errlen,
			  "mount options 'passfile' and 'keyfile' exclude each "
			  "other");
	free(copy);
	return rc;
}
