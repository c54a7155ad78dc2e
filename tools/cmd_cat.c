/*
 * cmd_cat.c - "keepfs cat": write one version of a file to stdout.
 *
 * FROM is a snapshot name or @TIME, as in .snapshots.  The store is opened
 * read-only, which works whether or not it is mounted: FROM is committed
 * by definition, and a read-only handle sees every committed change.
 *
 * PATH is resolved in FROM's view from its root, the way the kernel would
 * resolve it inside MOUNTPOINT/.snapshots/FROM: "." and ".." (which stops
 * at the root) are understood, and symbolic links are followed, at most
 * MAX_HOPS of them, an absolute target from the view's root, so a link
 * never leads out of the view.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

const char usage_cat[] =
	"usage: keepfs cat TARGET FROM PATH\n"
	"\n"
	"Write the file PATH as it was in FROM to standard output.  FROM is a\n"
	"snapshot name or @TIME (@2026-11-24T08:35:00Z, @-10m: the newest\n"
	"commit at or before TIME).  PATH is relative to the root of the tree\n"
	"(a leading '/' is allowed); symbolic links are followed inside FROM.\n"
	"Works on a mounted store and on one that is not mounted.\n"
	"\n"
	"options:\n"
	"   -h, --help  show this help\n";

#define CHUNK (1024 * 1024)
#define MAX_HOPS 40
#define MAX_DEPTH 4096

struct cat_from {
	uint64_t commit;
	char *label; /* "snapshot 'x'" or "the tree as of '@-10m'" */
};

/* Find FROM's commit.  Returns EXIT_OK or prints why not. */
static int resolve_from(struct keep_store *s, const char *store,
			const char *from, struct cat_from *out)
{
	if (find_version(s, store, from, &out->commit) != EXIT_OK)
		return EXIT_FAILED;
	out->label = from[0] == '@'
			     ? xasprintf("the tree as of '%s'", from)
			     : xasprintf("snapshot '%s'", from);
	return EXIT_OK;
}

/*
 * Resolve path in view from the root.  On success *attr is the object's.
 * Returns 0, ENOENT (missing, or a dangling link: *via_link set), ENOTDIR,
 * ELOOP, ENAMETOOLONG, or a store code.
 */
static int resolve_path(struct keep_store *s, uint64_t view, const char *path,
			struct keep_attr *attr, int *via_link)
{
	uint64_t *stack = xmalloc(MAX_DEPTH * sizeof(*stack));
	size_t depth = 0;
	char *todo = xstrdup(path), *p = todo;
	char target[4096];
	int hops = 0, rc = 0;
	struct keep_attr a;

	*via_link = 0;
	stack[0] = KEEP_ROOT_INO;
	rc = keep_getattr(s, view, KEEP_ROOT_INO, &a);
	while (rc == 0) {
		char *name, *next;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		name = p;
		next = strchr(p, '/');
		p = next ? next : p + strlen(p);
		if (next)
			*next = '\0';

		if (!S_ISDIR(a.mode)) {
			rc = ENOTDIR;
			break;
		}
		if (strcmp(name, ".") == 0)
			goto step;
		if (strcmp(name, "..") == 0) {
			if (depth > 0)
				depth--;
			rc = keep_getattr(s, view, stack[depth], &a);
			goto step;
		}
		rc = keep_lookup(s, view, stack[depth], name, &a);
		if (rc != 0)
			break;
		if (S_ISLNK(a.mode)) {
			char *rest;

			if (++hops > MAX_HOPS) {
				rc = ELOOP;
				break;
			}
			rc = keep_readlink(s, view, a.ino, target,
					   sizeof(target));
			if (rc != 0)
				break;
			*via_link = 1;
			/* the link's target, then what was left of the path */
			rest = xasprintf("%s/%s", target, next ? next + 1 : "");
			free(todo);
			todo = p = rest;
			if (target[0] == '/')
				depth = 0;
			rc = keep_getattr(s, view, stack[depth], &a);
			continue;
		}
		if (S_ISDIR(a.mode)) {
			if (depth + 1 >= MAX_DEPTH) {
				rc = ENAMETOOLONG;
				break;
			}
			stack[++depth] = a.ino;
		}
	step:
		if (next)
			p = next + 1;
	}
	if (rc == 0)
		*attr = a;
	free(todo);
	free(stack);
	return rc;
}

/* Write all of buf to fd 1.  Returns 0 or an errno. */
static int write_out(const char *buf, size_t len)
{
	while (len) {
		ssize_t res = write(STDOUT_FILENO, buf, len);

		if (res < 0 && errno == EINTR)
			continue;
		if (res < 0)
			return errno;
		buf += res;
		len -= (size_t)res;
	}
	return 0;
}

static int cat_file(struct keep_store *s, uint64_t view, uint64_t ino,
		    const char *path, const char *label)
{
	char *buf = xmalloc(CHUNK);
	uint64_t off = 0;
	size_t nread;
	int rc, err, status = EXIT_OK;

	fflush(stdout);
	for (;;) {
		rc = keep_read(s, view, ino, off, CHUNK, buf, &nread);
		if (rc != 0) {
			status = error("cannot read '%s' from %s: %s", path,
				       label, keep_strerror(rc));
			break;
		}
		err = write_out(buf, nread);
		if (err == EPIPE) {
			/* the reader has had enough: not our failure to
			 * report, but the output is cut */
			status = EXIT_FAILED;
			break;
		}
		if (err) {
			status = error("write error on standard output: %s",
				       strerror(err));
			break;
		}
		off += nread;
		if (nread < CHUNK)
			break;
	}
	free(buf);
	return status;
}

int cmd_cat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{NULL, 0, NULL, 0},
	};
	struct keep_store *s = NULL;
	struct cat_from from = {0, NULL};
	struct keep_attr a;
	char *store = NULL, *mnt = NULL;
	const char *path, *shown;
	int c, rc, via_link, status = EXIT_FAILED;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", longopts, NULL)) != -1)
		return bad_option("cat", c, argv);
	switch (argc - optind) {
	case 0:
		return usage_error("cat", "missing TARGET");
	case 1:
		return usage_error("cat", "missing FROM and PATH");
	case 2:
		return usage_error("cat", "missing PATH");
	case 3:
		break;
	default:
		return usage_error("cat", "too many arguments");
	}
	path = argv[optind + 2];
	shown = path;
	while (shown[0] == '/' && shown[1])
		shown++;

	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		return EXIT_FAILED;
	if (open_read(store, 1, &s) != EXIT_OK)
		goto out;
	if (resolve_from(s, store, argv[optind + 1], &from) != EXIT_OK)
		goto out;

	rc = resolve_path(s, from.commit, path, &a, &via_link);
	if (rc == ENOENT && via_link)
		error("'%s' is not in %s (a symbolic link on the way leads "
		      "nowhere)",
		      shown, from.label);
	else if (rc == ENOENT || rc == ENOTDIR)
		error("'%s' is not in %s", shown, from.label);
	else if (rc == ELOOP)
		error("'%s' in %s: more than %d symbolic links on the way",
		      shown, from.label, MAX_HOPS);
	else if (rc == ENAMETOOLONG)
		error("'%s' is not a valid path: %s", shown, strerror(rc));
	else if (rc != 0)
		error("cannot look up '%s' in %s: %s", shown, from.label,
		      keep_strerror(rc));
	else if (S_ISDIR(a.mode))
		error("'%s' is a directory in %s", shown, from.label);
	else if (!S_ISREG(a.mode))
		error("'%s' is not a regular file in %s", shown, from.label);
	else
		status = cat_file(s, from.commit, a.ino, shown, from.label);
out:
	free(from.label);
	keep_store_close(s);
	free(store);
	free(mnt);
	return status;
}
