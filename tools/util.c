/*
 * util.c - messages, paths, mount table and value parsing for tools/.
 *
 * The mount table is read from /proc/self/mountinfo, never from mtab: it is
 * what the kernel says is mounted in our namespace, and it carries the
 * filesystem type ("fuse.keepfs") and source (the absolute store path the
 * daemon passes as fsname) that map a mount point to its store.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

/* ---- messages ------------------------------------------------------------ */

/* Where commands print: the process's streams, or in the daemon those of
 * the control client being served (tool_streams). */
FILE *tool_out, *tool_err;

void tool_streams(FILE *out, FILE *err)
{
	tool_out = out;
	tool_err = err;
}


static void vreport(const char *fmt, va_list ap)
{
	/* stdout first, so what was printed before the error stays in order
	 * when both go to the same place */
	fflush(TOOL_OUT);
	fputs("keepfs: ", TOOL_ERR);
	vfprintf(TOOL_ERR, fmt, ap);
	fputc('\n', TOOL_ERR);
}

noreturn void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	exit(EXIT_FAILED);
}

int error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	return EXIT_FAILED;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vreport(fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "see 'keepfs %s --help'\n", cmd);
	return EXIT_USAGE;
}

int bad_option(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return usage_error(cmd, "option '%s' needs a value", arg);
	if (optopt && strncmp(arg, "--", 2) != 0)
		return usage_error(cmd, "unknown option '-%c'", optopt);
	return usage_error(cmd, "unknown option '%s'", arg);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		die("out of memory");
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int res;

	va_start(ap, fmt);
	res = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (res < 0)
		die("out of memory");
	return p;
}

/* ---- paths --------------------------------------------------------------- */

char *abs_path(const char *path)
{
	char *full, *copy1, *copy2, *dir, *base, *res;

	full = realpath(path, NULL);
	if (full)
		return full;

	copy1 = xstrdup(path);
	copy2 = xstrdup(path);
	dir = realpath(dirname(copy1), NULL);
	base = basename(copy2);
	res = NULL;
	if (dir && strcmp(base, ".") != 0 && strcmp(base, "..") != 0 &&
	    strcmp(base, "/") != 0) {
		if (strcmp(dir, "/") == 0)
			res = xasprintf("/%s", base);
		else
			res = xasprintf("%s/%s", dir, base);
	} else if (dir) {
		errno = ENOENT;
	}
	free(dir);
	free(copy1);
	free(copy2);
	return res;
}

int path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ---- the mount table ----------------------------------------------------- */

/* Undo mountinfo's octal escapes (\040 space, \011 tab, \012 newline,
 * \134 backslash) in place. */
static void unescape(char *s)
{
	char *w = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 4;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
}

/* Split one mountinfo line; 0 on success.  Format:
 * ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER */
static int parse_mountinfo_line(char *line, struct mount_entry *e)
{
	char *field[6], *save = NULL, *tok, *fstype, *source;
	int i;

	for (i = 0; i < 6; i++) {
		field[i] = strtok_r(i ? NULL : line, " \n", &save);
		if (!field[i])
			return -1;
	}
	do {
		tok = strtok_r(NULL, " \n", &save);
	} while (tok && strcmp(tok, "-") != 0);
	if (!tok)
		return -1;
	fstype = strtok_r(NULL, " \n", &save);
	source = strtok_r(NULL, " \n", &save);
	if (!fstype || !source)
		return -1;
	unescape(field[4]);
	unescape(fstype);
	unescape(source);
	e->mountpoint = xstrdup(field[4]);
	e->fstype = xstrdup(fstype);
	e->source = xstrdup(source);
	return 0;
}

size_t mounts_read(struct mount_entry **out)
{
	struct mount_entry *m = NULL, *grown;
	size_t n = 0, cap = 0, linecap = 0;
	char *line = NULL;
	FILE *f;

	*out = NULL;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	while (getline(&line, &linecap, f) > 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			grown = realloc(m, cap * sizeof(*m));
			if (!grown)
				die("out of memory");
			m = grown;
		}
		if (parse_mountinfo_line(line, &m[n]) == 0)
			n++;
	}
	free(line);
	fclose(f);
	*out = m;
	return n;
}

void mounts_free(struct mount_entry *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].mountpoint);
		free(m[i].fstype);
		free(m[i].source);
	}
	free(m);
}

const struct mount_entry *mounts_find_point(const struct mount_entry *m,
					    size_t n, const char *abs)
{
	const struct mount_entry *found = NULL;

	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].mountpoint, abs) == 0)
			found = &m[i];
	return found;
}

const struct mount_entry *mounts_find_store(const struct mount_entry *m,
					    size_t n, const char *abs)
{
	const struct mount_entry *found = NULL;

	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].fstype, KEEPFS_FSTYPE) == 0 &&
		    strcmp(m[i].source, abs) == 0)
			found = &m[i];
	return found;
}

int resolve_target(const char *arg, char **store, char **mnt)
{
	const struct mount_entry *e;
	struct mount_entry *m;
	size_t n;
	char *abs;
	int rc = EXIT_FAILED;

	abs = abs_path(arg);
	if (!abs)
		return error("cannot resolve '%s': %s", arg, strerror(errno));

	/* The mount table first: it needs no access to the path itself, so a
	 * hung or disconnected mount cannot block us, and a file named like a
	 * store database inside a mount cannot fool us. */
	n = mounts_read(&m);
	e = mounts_find_point(m, n, abs);
	if (e && strcmp(e->fstype, KEEPFS_FSTYPE) == 0) {
		*store = xstrdup(e->source);
		*mnt = xstrdup(e->mountpoint);
		rc = EXIT_OK;
	} else if (keep_is_store(abs)) {
		*store = xstrdup(abs);
		e = mounts_find_store(m, n, abs);
		*mnt = e ? xstrdup(e->mountpoint) : NULL;
		rc = EXIT_OK;
	} else if (access(abs, F_OK) != 0 && errno == ENOENT) {
		error("'%s' does not exist", arg);
	} else {
		error("'%s' is neither a keepfs store nor a keepfs mount point",
		      arg);
	}
	mounts_free(m, n);
	free(abs);
	return rc;
}

/* ---- values -------------------------------------------------------------- */

int parse_size(const char *s, uint64_t *out)
{
	uint64_t mult = 1, v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mult = 1024;
		end++;
		break;
	case 'M':
		mult = 1024 * 1024;
		end++;
		break;
	case 'G':
		mult = 1024 * 1024 * 1024;
		end++;
		break;
	default:
		return -1;
	}
	if (mult > 1 && strcmp(end, "iB") == 0)
		end += 2;
	if (*end)
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

const char *human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = {"B",	  "KiB", "MiB",
					   "GiB", "TiB", "PiB", "EiB"};
	double v = (double)n;
	int u = 0;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return buf;
	}
	while (v >= 1024.0 && u < 6) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/* Length of the valid UTF-8 sequence at p, 0 if there is none. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A JSON string of p; bytes that are not UTF-8 become U+FFFD.  Returns
 * whether p was valid UTF-8 (when not, the caller adds the exact bytes). */
bool json_text(const char *p)
{
	bool valid = true;

	putchar('"');
	for (const unsigned char *c = (const unsigned char *)p; *c;) {
		size_t n = utf8_len(c);
		if (n == 0) {
			fputs("\\ufffd", stdout);
			valid = false;
			c++;
		} else if (*c == '"' || *c == '\\') {
			printf("\\%c", *c++);
		} else if (*c == '\n') {
			fputs("\\n", stdout);
			c++;
		} else if (*c == '\t') {
			fputs("\\t", stdout);
			c++;
		} else if (*c < 0x20 || *c == 0x7f) {
			printf("\\u%04x", *c++);
		} else {
			fwrite(c, 1, n, stdout);
			c += n;
		}
	}
	putchar('"');
	return valid;
}

void json_string(const char *s)
{
	(void)json_text(s);
}

const char *proc_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f || !fgets(buf, (int)len, f)) {
		snprintf(buf, len, "?");
	} else {
		buf[strcspn(buf, "\n")] = '\0';
	}
	if (f)
		fclose(f);
	return buf;
}

/* ---- paths as printed ---------------------------------------------------- */

static bool needs_quotes(const char *p)
{
	for (const unsigned char *c = (const unsigned char *)p; *c; c++)
		if (*c < 0x20 || *c == 0x7f || *c == '"' || *c == '\\')
			return true;
	return strstr(p, " -> ") != NULL;
}

void put_path(FILE *f, const char *p)
{
	if (!needs_quotes(p)) {
		fputs(p, f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)p; *c; c++) {
		switch (*c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\a':
			fputs("\\a", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\v':
			fputs("\\v", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (*c < 0x20 || *c == 0x7f)
				fprintf(f, "\\%03o", *c);
			else
				fputc(*c, f);
		}
	}
	fputc('"', f);
}

/* ---- versions ------------------------------------------------------------ */

int find_version(struct keep_store *s, const char *store, const char *what,
		 uint64_t *commit)
{
	struct keep_snapshot snap;
	int64_t t;
	int rc;

	if (what[0] == '@') {
		if (keep_parse_time(what + 1, keep_clock_ns(), &t) != 0)
			return error("'%s' is not a time: use "
				     "@2026-11-24T08:35:00Z (UTC), an offset "
				     "like +01:00, or @-10m, @-2h, @-1d",
				     what);
		rc = keep_commit_at(s, t, commit);
		if (rc == ENOENT)
			return error("store '%s' has no commit at or before "
				     "'%s'",
				     store, what);
		if (rc != 0)
			return error("cannot look up '%s' in '%s': %s", what,
				     store, keep_strerror(rc));
		return EXIT_OK;
	}
	rc = keep_snapshot_get(s, what, &snap);
	if (rc == ENOENT)
		return error("no snapshot '%s' in '%s' (see 'keepfs list')",
			     what, store);
	if (rc != 0)
		return error("cannot look up snapshot '%s' in '%s': %s", what,
			     store, keep_strerror(rc));
	*commit = snap.commit;
	return EXIT_OK;
}

/* A path relative to the root, from what the user gave: leading and
 * trailing slashes go, an absolute path inside mnt is made relative.
 * Returns NULL (and says why) for "." or ".." components. */
char *tree_path(const char *p, const char *mnt)
{
	size_t ml = mnt ? strlen(mnt) : 0;

	if (mnt && p[0] == '/' && !strncmp(p, mnt, ml) &&
	    (p[ml] == '/' || p[ml] == '\0'))
		p += ml;
	while (*p == '/')
		p++;
	char *r = xstrdup(p);
	size_t len = strlen(r);
	while (len && r[len - 1] == '/')
		r[--len] = '\0';
	for (char *c = r; *c;) {
		char *e = strchr(c, '/');
		size_t cl = e ? (size_t)(e - c) : strlen(c);
		if ((cl == 1 && c[0] == '.') ||
		    (cl == 2 && c[0] == '.' && c[1] == '.')) {
			error("'%s': '.' and '..' are not allowed in a path; "
			      "give it from the root of the tree", p);
			free(r);
			return NULL;
		}
		if (cl == 10 && !strncmp(c, ".snapshots", 10) && c == r) {
			error("'%s' is inside .snapshots, which holds the "
			      "snapshots, not the tree: give the path in the "
			      "live tree", p);
			free(r);
			return NULL;
		}
		c += cl;
		while (*c == '/')
			c++;
	}
	return r;
}

int open_read(const char *store, int contents, struct keep_store **s)
{
	struct keep_secret *sec = NULL;
	int rc;

	*s = NULL;
	if (contents && secret_for_store(store, NULL, NULL, &sec) != EXIT_OK)
		return EXIT_FAILED;
	rc = keep_store_open_secret(store, KEEP_OPEN_RDONLY, sec, s);
	secret_free(sec);
	if (rc == 0)
		return EXIT_OK;
	*s = NULL;
	return error("cannot open store '%s': %s", store, keep_strerror(rc));
}

int store_busy(const char *store, pid_t pid)
{
	char comm[64];

	if (pid > 0)
		return error("store '%s' is busy: process %d (%s) has it open "
			     "for writing; try again when it is done",
			     store, (int)pid,
			     proc_comm(pid, comm, sizeof(comm)));
	return error("store '%s' is busy: another process has it open for "
		     "writing",
		     store);
}

int open_writable(const char *store, struct keep_store **s)
{
	struct keep_secret *sec = NULL;
	pid_t pid;

	*s = NULL;
	/* a busy store is told before anyone is asked for a passphrase */
	pid = keep_store_lock_owner(store);
	if (pid > 0)
		return store_busy(store, pid);
	if (secret_for_store(store, NULL, NULL, &sec) != EXIT_OK)
		return EXIT_FAILED;
	int rc = keep_store_open_secret(store, KEEP_OPEN_WRITE, sec, s);
	secret_free(sec);
	if (rc == 0)
		return EXIT_OK;
	*s = NULL;
	if (rc != KEEP_E_LOCKED)
		return error("cannot open store '%s': %s%s", store,
			     keep_strerror(rc),
			     rc == KEEP_E_BADKEY ? "; nothing was changed" : "");
	return store_busy(store, keep_store_lock_owner(store));
}

const char *file_type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symlink";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	case S_IFCHR:
		return "char-device";
	case S_IFBLK:
		return "block-device";
	default:
		return "unknown";
	}
}
