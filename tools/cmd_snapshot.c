/*
 * cmd_snapshot.c - "keepfs snapshot", "keepfs delete", "keepfs rename":
 * make, remove and rename named snapshots.
 *
 * A mounted store is changed only through its daemon, so that what the
 * daemon caches (the .snapshots listing, its views) stays true.  snapshot
 * asks the daemon over its control socket, which runs ctl_snapshot() with
 * its own store handle; delete and rename do rmdir(2) and rename(2) in
 * MNT/.snapshots and check what they need with a read-only open of the
 * store, which sees every committed change.  A store that is not mounted
 * is opened for writing and changed through core/ directly.
 *
 * Names are checked, and every named snapshot looked up, before anything
 * changes: bad input changes nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keep.h"
#include "kfs.h"
#include "util_i.h"

const char usage_snapshot[] =
	"usage: keepfs snapshot TARGET [NAME]\n"
	"\n"
	"Commit every change made so far and keep that commit as the\n"
	"snapshot NAME; print the name.  The default NAME is the current UTC\n"
	"time, like 2026-11-24T08:35:00Z.  On a mounted store this is the\n"
	"same as 'mkdir MOUNTPOINT/.snapshots/NAME'.\n"
	"\n"
	"A name is 1 to 255 bytes, any but '/', not '.' or '..', and does\n"
	"not start with '@' (that prefix names a point in time).\n"
	"\n"
	"options:\n"
	"   -h, --help  show this help\n";

const char usage_delete[] =
	"usage: keepfs delete TARGET NAME...\n"
	"\n"
	"Delete the named snapshots.  Every NAME must exist; otherwise\n"
	"nothing is deleted.  On a mounted store this is the same as\n"
	"'rmdir MOUNTPOINT/.snapshots/NAME'.\n"
	"\n"
	"options:\n"
	"   -h, --help  show this help\n";

const char usage_rename[] =
	"usage: keepfs rename TARGET OLD NEW\n"
	"\n"
	"Rename the snapshot OLD to NEW; NEW must not exist.  On a mounted\n"
	"store this is the same as\n"
	"'mv MOUNTPOINT/.snapshots/OLD MOUNTPOINT/.snapshots/NEW'.\n"
	"\n"
	"options:\n"
	"   -h, --help  show this help\n";

/* The directory of a mount that holds the snapshots. */
#define SNAPDIR ".snapshots"

/* Names longer than this are shortened in messages. */
#define SHOWN_NAME_MAX 48

struct snap_target {
	char *store;	      /* absolute path */
	char *mnt;	      /* mount point, NULL when not mounted */
	struct keep_store *s; /* open handle, NULL when closed */
	int writable;	      /* s was opened with KEEP_OPEN_WRITE */
	FILE *err;	      /* where messages go: stderr, or the
			       * control client's (in the daemon) */
};

/* ---- messages ------------------------------------------------------------ */

/* error() to err; returns EXIT_FAILED. */
static int say(FILE *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int say(FILE *err, const char *fmt, ...)
{
	va_list ap;

	if (err == stderr)
		fflush(stdout);
	fputs("keepfs: ", err);
	va_start(ap, fmt);
	vfprintf(err, fmt, ap);
	va_end(ap);
	fputc('\n', err);
	return EXIT_FAILED;
}

/* name as it goes into a message: shortened when very long. */
static const char *shown(const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	if (n <= SHOWN_NAME_MAX)
		return name;
	snprintf(buf, len, "%.*s...", SHOWN_NAME_MAX - 3, name);
	return buf;
}

/*
 * Is name acceptable as a snapshot name?  Returns EXIT_OK, or prints what
 * is wrong and returns EXIT_FAILED.  core decides; the wording is ours.
 */
static int check_name_to(FILE *err, const char *name)
{
	char buf[SHOWN_NAME_MAX + 1];
	int rc = keep_snapshot_name_check(name);

	if (rc == 0)
		return EXIT_OK;
	if (name[0] == '\0')
		return say(err, "a snapshot name must not be empty");
	if (rc == ENAMETOOLONG)
		return say(err, "snapshot name '%s' is %zu bytes long; "
			   "at most %d are allowed",
			   shown(name, buf, sizeof(buf)), strlen(name),
			   KEEP_SNAP_NAME_MAX);
	if (name[0] == '@')
		return say(err, "snapshot name '%s' must not start with '@' "
			   "(that prefix names a point in time)",
			   shown(name, buf, sizeof(buf)));
	if (strchr(name, '/'))
		return say(err, "snapshot name '%s' must not contain '/'",
			   shown(name, buf, sizeof(buf)));
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return say(err, "'%s' cannot be a snapshot name "
			   "(it names a directory)",
			   name);
	return say(err, "'%s' is not a valid snapshot name: %s",
		   shown(name, buf, sizeof(buf)), keep_strerror(rc));
}

static int check_name(const char *name)
{
	return check_name_to(stderr, name);
}

static int no_such(const struct snap_target *t, const char *name)
{
	char buf[SHOWN_NAME_MAX + 1];

	return say(t->err, "no snapshot '%s' in '%s' (see 'keepfs list')",
		   shown(name, buf, sizeof(buf)), t->store);
}

/*
 * Explain why changing snapshot name failed with rc (an errno from the
 * mount or a core code).  verb is "create", "delete" or "rename".
 * Returns EXIT_FAILED.
 */
static int report(const struct snap_target *t, const char *verb,
		  const char *name, int rc)
{
	char buf[SHOWN_NAME_MAX + 1];
	const char *n = shown(name, buf, sizeof(buf));

	switch (rc) {
	case EEXIST:
		return say(t->err, "snapshot '%s' already exists", n);
	case ENOENT:
		if (strcmp(verb, "create") != 0)
			return no_such(t, name);
		break;
	case EINVAL:
	case ENAMETOOLONG:
		if (check_name_to(t->err, name) != EXIT_OK)
			return EXIT_FAILED;
		break;
	case EROFS:
		if (t->mnt)
			return say(t->err, "cannot %s snapshot '%s': '%s' is "
				   "mounted read-only",
				   verb, n, t->mnt);
		break;
	case ENOTCONN:
		if (t->mnt)
			return say(t->err, "cannot %s snapshot '%s': the "
				   "daemon of '%s' is gone; unmount it "
				   "('keepfs umount %s') and mount the "
				   "store again",
				   verb, n, t->mnt, t->mnt);
		break;
	case KEEP_E_READONLY:
		return say(t->err, "cannot %s snapshot '%s': store '%s' is "
			   "read-only after a failed commit; unmount and "
			   "mount it again",
			   verb, n, t->store);
	case ENOSPC:
		return say(t->err, "cannot %s snapshot '%s': no space left "
			   "on the disk of store '%s'",
			   verb, n, t->store);
	default:
		break;
	}
	if (t->mnt)
		return say(t->err, "cannot %s snapshot '%s' through '%s': %s",
			   verb, n, t->mnt, keep_strerror(rc));
	return say(t->err, "cannot %s snapshot '%s' in '%s': %s", verb, n,
		   t->store, keep_strerror(rc));
}

/* ---- the store ----------------------------------------------------------- */

/* Resolve TARGET; nothing is opened yet. */
static int target_resolve(const char *arg, struct snap_target *t)
{
	memset(t, 0, sizeof(*t));
	t->err = stderr;
	return resolve_target(arg, &t->store, &t->mnt);
}

/*
 * Open the store: read-only when it is mounted (changes go through the
 * daemon), for writing otherwise.  Returns EXIT_OK or prints why not.
 */
static int target_open(struct snap_target *t)
{
	unsigned flags = t->mnt ? KEEP_OPEN_RDONLY : KEEP_OPEN_WRITE;
	int rc;
	pid_t pid;

	struct keep_secret *sec = NULL;
	/* a busy store is told before anyone is asked for a passphrase */
	if (!t->mnt && keep_store_lock_owner(t->store) > 0)
		rc = KEEP_E_LOCKED;
	else if (!t->mnt &&
		 secret_for_store(t->store, NULL, NULL, &sec) != EXIT_OK)
		return EXIT_FAILED;
	else
		rc = keep_store_open_secret(t->store, flags, sec, &t->s);
	secret_free(sec);
	if (rc == 0) {
		t->writable = !t->mnt;
		return EXIT_OK;
	}
	t->s = NULL;
	if (rc == KEEP_E_LOCKED) {
		char comm[64];

		/* locked but not mounted in our view of the mounts: another
		 * mount namespace, or a mount that is starting or ending */
		pid = keep_store_lock_owner(t->store);
		if (pid > 0)
			return error("store '%s' is in use by process %d (%s) "
				     "but not mounted here; run the command "
				     "on its mount point",
				     t->store, (int)pid,
				     proc_comm(pid, comm, sizeof(comm)));
		return error("store '%s' is in use by another process; run "
			     "the command on its mount point",
			     t->store);
	}
	return error("cannot open store '%s': %s%s", t->store,
		     keep_strerror(rc),
		     rc == KEEP_E_BADKEY ? "; nothing was changed" : "");
}

/* Close the handle; a writable one commits.  Returns EXIT_OK or prints
 * why the final commit failed. */
static int target_close(struct snap_target *t)
{
	int rc = keep_store_close(t->s);

	t->s = NULL;
	if (rc != 0 && t->writable)
		return error("cannot close store '%s': %s", t->store,
			     keep_strerror(rc));
	return EXIT_OK;
}

static void target_release(struct snap_target *t)
{
	if (t->s)
		keep_store_close(t->s);
	free(t->store);
	free(t->mnt);
	memset(t, 0, sizeof(*t));
}

/* MNT/.snapshots/NAME; caller frees. */
static char *snap_path(const struct snap_target *t, const char *name)
{
	return xasprintf("%s/%s/%s", strcmp(t->mnt, "/") == 0 ? "" : t->mnt,
			 SNAPDIR, name);
}

/* Does snapshot name exist?  1 yes, 0 no; -1 after printing an error. */
static int snap_exists(const struct snap_target *t, const char *name)
{
	struct keep_snapshot snap;
	char buf[SHOWN_NAME_MAX + 1];
	int rc = keep_snapshot_get(t->s, name, &snap);

	if (rc == 0)
		return 1;
	if (rc == ENOENT)
		return 0;
	error("cannot look up snapshot '%s' in '%s': %s",
	      shown(name, buf, sizeof(buf)), t->store, keep_strerror(rc));
	return -1;
}

/* A mkdir/rmdir/rename in MNT/.snapshots failed with ENOENT: is it the
 * snapshot that is missing, or .snapshots itself? */
static int snapdir_missing(const struct snap_target *t)
{
	struct stat st;
	char *dir = snap_path(t, "");
	int missing = stat(dir, &st) != 0 && errno == ENOENT;

	free(dir);
	if (missing)
		error("'%s' has no %s directory: its daemon is an older "
		      "keepfs; unmount and mount it again",
		      t->mnt, SNAPDIR);
	return missing;
}

/* ---- the three changes --------------------------------------------------- */

/* Each returns 0, or an errno (mounted) or a core code (not mounted). */

/* Mounted stores make snapshots through the daemon (ctl_snapshot). */
static int do_create(struct snap_target *t, const char *name)
{
	return keep_snapshot_create(t->s, name, KEEP_ORIGIN_MANUAL, NULL);
}

static int do_delete(struct snap_target *t, const char *name)
{
	char *path;
	int err = 0;

	if (!t->mnt)
		return keep_snapshot_delete(t->s, name);
	path = snap_path(t, name);
	if (rmdir(path) != 0)
		err = errno;
	free(path);
	return err;
}

static int do_rename(struct snap_target *t, const char *from, const char *to)
{
	char *a, *b;
	int err = 0;

	if (!t->mnt)
		return keep_snapshot_rename(t->s, from, to);
	a = snap_path(t, from);
	b = snap_path(t, to);
	if (rename(a, b) != 0)
		err = errno;
	free(a);
	free(b);
	return err;
}

/* ---- options ------------------------------------------------------------- */

/* Parse the (no) options of cmd; returns EXIT_OK or a usage error. */
static int no_options(const char *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		return bad_option(cmd, c, argv);
	return EXIT_OK;
}

/* ---- keepfs snapshot ----------------------------------------------------- */

/* The snapshot's name: the one given, or the current UTC time. */
static const char *pick_name(int nargs, char **args, char *when, size_t len)
{
	if (nargs > 0)
		return args[0];
	keep_format_time(keep_clock_ns(), when, len);
	return when;
}

int cmd_snapshot(int argc, char **argv)
{
	struct snap_target t;
	char when[32];
	const char *name;
	int rc, nargs, status = EXIT_FAILED;

	if (no_options("snapshot", argc, argv) != EXIT_OK)
		return EXIT_USAGE;
	nargs = argc - optind;
	if (nargs < 1)
		return usage_error("snapshot", "missing TARGET");
	if (nargs > 2)
		return usage_error("snapshot", "too many arguments");
	if (nargs == 2 && check_name(argv[optind + 1]) != EXIT_OK)
		return EXIT_FAILED;
	if (target_resolve(argv[optind], &t) != EXIT_OK)
		return EXIT_FAILED;

	if (t.mnt) {
		/* the daemon makes it (ctl_snapshot), naming it if unnamed */
		char *args[] = {"snapshot",
				nargs == 2 ? argv[optind + 1] : NULL, NULL};

		status = ctl_run(t.store, t.mnt, nargs, args);
		goto out;
	}
	name = pick_name(nargs - 1, argv + optind + 1, when, sizeof(when));
	if (check_name(name) != EXIT_OK)
		goto out;
	if (target_open(&t) != EXIT_OK)
		goto out;
	rc = do_create(&t, name);
	if (rc != 0) {
		report(&t, "create", name, rc);
		if (rc == EEXIST && nargs == 1)
			fputs("(name it, or try again in a second)\n",
			      stderr);
		goto out;
	}
	if (target_close(&t) != EXIT_OK)
		goto out;
	printf("%s\n", name);
	status = EXIT_OK;
out:
	target_release(&t);
	return status;
}

/* "keepfs snapshot" in the daemon of a mounted store: argv is "snapshot"
 * [NAME].  The snapshot is made as mkdir in .snapshots makes it. */
int ctl_snapshot(struct kfs_ctl *c, int argc, char **argv)
{
	const struct kfs_config *cfg = kfs_ctl_config(c);
	struct snap_target t;
	char when[32];
	const char *name;
	int rc;

	memset(&t, 0, sizeof(t));
	t.store = cfg->store_path;
	t.mnt = cfg->mountpoint;
	t.err = kfs_ctl_err(c);
	if (argc > 2) {
		ctl_error(c, "snapshot: too many arguments");
		return EXIT_USAGE;
	}
	name = pick_name(argc - 1, argv + 1, when, sizeof(when));
	if (check_name_to(t.err, name) != EXIT_OK)
		return EXIT_FAILED;
	rc = kfs_ctl_snapshot(c, name, KEEP_ORIGIN_MANUAL, NULL);
	if (rc != 0) {
		report(&t, "create", name, rc);
		if (rc == EEXIST && argc == 1)
			fprintf(t.err, "(name it, or try again in a second)\n");
		return EXIT_FAILED;
	}
	fprintf(kfs_ctl_out(c), "%s\n", name);
	return EXIT_OK;
}

/* ---- keepfs delete ------------------------------------------------------- */

int cmd_delete(int argc, char **argv)
{
	struct snap_target t;
	char **names, *missing = NULL, *grown;
	char buf[SHOWN_NAME_MAX + 1];
	int i, j, n = 0, nmissing = 0, done = 0, rc, bad = 0;
	int status = EXIT_FAILED;

	if (no_options("delete", argc, argv) != EXIT_OK)
		return EXIT_USAGE;
	if (argc - optind < 1)
		return usage_error("delete", "missing TARGET");
	if (argc - optind < 2)
		return usage_error("delete", "missing NAME");

	/* every name checked, each at most once */
	names = xmalloc(sizeof(*names) * (size_t)(argc - optind - 1));
	for (i = optind + 1; i < argc; i++) {
		if (check_name(argv[i]) != EXIT_OK) {
			bad = 1;
			continue;
		}
		for (j = 0; j < n; j++)
			if (strcmp(names[j], argv[i]) == 0)
				break;
		if (j == n)
			names[n++] = argv[i];
	}
	if (bad) {
		free(names);
		return EXIT_FAILED;
	}
	if (target_resolve(argv[optind], &t) != EXIT_OK) {
		free(names);
		return EXIT_FAILED;
	}
	if (target_open(&t) != EXIT_OK)
		goto out;

	for (i = 0; i < n; i++) {
		rc = snap_exists(&t, names[i]);
		if (rc < 0)
			goto out;
		if (rc == 1)
			continue;
		grown = xasprintf("%s%s'%s'", missing ? missing : "",
				  missing ? ", " : "",
				  shown(names[i], buf, sizeof(buf)));
		free(missing);
		missing = grown;
		nmissing++;
	}
	if (nmissing == 1 && n == 1) {
		no_such(&t, names[0]);
		goto out;
	}
	if (nmissing) {
		error("no snapshot%s %s in '%s' (see 'keepfs list'); nothing "
		      "was deleted",
		      nmissing > 1 ? "s" : "", missing, t.store);
		goto out;
	}

	/* through the daemon: let go of the store before changing it */
	if (t.mnt && target_close(&t) != EXIT_OK)
		goto out;
	for (i = 0; i < n; i++) {
		rc = do_delete(&t, names[i]);
		if (rc == ENOENT && t.mnt && snapdir_missing(&t))
			break;
		if (rc != 0) {
			report(&t, "delete", names[i], rc);
			break;
		}
		done++;
	}
	if (done < n) {
		if (done)
			fprintf(stderr,
				"keepfs: %d of the %d snapshots were deleted "
				"before that\n",
				done, n);
		goto out;
	}
	if (t.s && target_close(&t) != EXIT_OK)
		goto out;
	status = EXIT_OK;
out:
	free(missing);
	free(names);
	target_release(&t);
	return status;
}

/* ---- keepfs rename ------------------------------------------------------- */

int cmd_rename(int argc, char **argv)
{
	struct snap_target t;
	const char *from, *to;
	int rc, status = EXIT_FAILED;

	if (no_options("rename", argc, argv) != EXIT_OK)
		return EXIT_USAGE;
	switch (argc - optind) {
	case 0:
		return usage_error("rename", "missing TARGET");
	case 1:
		return usage_error("rename", "missing OLD and NEW");
	case 2:
		return usage_error("rename", "missing NEW");
	case 3:
		break;
	default:
		return usage_error("rename", "too many arguments");
	}
	from = argv[optind + 1];
	to = argv[optind + 2];
	if (check_name(from) != EXIT_OK || check_name(to) != EXIT_OK)
		return EXIT_FAILED;
	if (target_resolve(argv[optind], &t) != EXIT_OK)
		return EXIT_FAILED;
	if (target_open(&t) != EXIT_OK)
		goto out;

	rc = snap_exists(&t, from);
	if (rc == 0)
		no_such(&t, from);
	if (rc != 1)
		goto out;
	if (strcmp(from, to) != 0) {
		rc = snap_exists(&t, to);
		if (rc == 1)
			report(&t, "rename", to, EEXIST);
		if (rc != 0)
			goto out;
	}

	if (t.mnt && target_close(&t) != EXIT_OK)
		goto out;
	rc = do_rename(&t, from, to);
	if (rc == ENOENT && t.mnt && snapdir_missing(&t))
		goto out;
	if (rc != 0) {
		report(&t, "rename", rc == EEXIST ? to : from, rc);
		goto out;
	}
	if (t.s && target_close(&t) != EXIT_OK)
		goto out;
	status = EXIT_OK;
out:
	target_release(&t);
	return status;
}
