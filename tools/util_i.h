/*
 * util_i.h - helpers shared by the keepfs subcommands.
 *
 * Messages go to stderr as "keepfs: msg" (lowercase, no full stop, the
 * subject quoted).  Exit statuses: 0 ok, 1 failed, 2 usage.  die() exists
 * only in tools/: core/ and fs/ return errors instead.
 */
#ifndef KEEPFS_UTIL_I_H
#define KEEPFS_UTIL_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <sys/types.h>

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

/* ---- the command table (keepfs.c) --------------------------------------- */

struct kfs_ctl;

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	unsigned flags;
	const char *summary; /* one line for "keepfs --help" */
	const char *usage;   /* full --help text; first line is the synopsis */
	/* CMD_VIA_DAEMON: what the daemon of a mounted store runs when fn
	 * sends it the command over the control socket.  argv[0] is the
	 * command, TARGET is left out (the store is the daemon's); output
	 * goes to kfs_ctl_out(c) and kfs_ctl_err(c); getopt starts afresh. */
	int (*ctl_fn)(struct kfs_ctl *c, int argc, char **argv);
};

/* Flags of struct command. */
enum {
	CMD_HIDDEN = 1 << 0,	 /* not listed by "keepfs --help" */
	CMD_VIA_DAEMON = 1 << 1, /* a mounted store's daemon runs ctl_fn */
};

int cmd_init(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_mount_helper(int argc, char **argv); /* invoked as mount.keepfs */
int cmd_umount(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_rename(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_ctl_ping(int argc, char **argv);
int cmd_retain_now(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_receive(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_sync_state(int argc, char **argv);

int ctl_snapshot(struct kfs_ctl *c, int argc, char **argv);
int ctl_restore(struct kfs_ctl *c, int argc, char **argv);
int ctl_gc(struct kfs_ctl *c, int argc, char **argv);
int ctl_config(struct kfs_ctl *c, int argc, char **argv);
int ctl_ping(struct kfs_ctl *c, int argc, char **argv);
int ctl_retain_now(struct kfs_ctl *c, int argc, char **argv);
int ctl_key_change(struct kfs_ctl *c, int argc, char **argv);

extern const char usage_init[];
extern const char usage_key[];
extern const char usage_send[];
extern const char usage_receive[];
extern const char usage_promote[];
extern const char usage_sync[];
extern const char usage_sync_state[];
extern const char usage_mount[];
extern const char usage_mount_helper[];
extern const char usage_umount[];
extern const char usage_stats[];
extern const char usage_fsck[];
extern const char usage_snapshot[];
extern const char usage_delete[];
extern const char usage_rename[];
extern const char usage_list[];
extern const char usage_cat[];
extern const char usage_diff[];
extern const char usage_log[];
extern const char usage_gc[];
extern const char usage_config[];
extern const char usage_restore[];
extern const char usage_ctl_ping[];
extern const char usage_retain_now[];

/* ---- the control socket (ctl.c) ------------------------------------------ */

/*
 * Run argv (argv[0] the command, TARGET left out) in the daemon of the
 * mounted store at store (mnt, its mount point, for messages; may be
 * NULL), copying its output to stdout and stderr as it comes.  Returns the
 * command's exit status, or prints why the daemon could not be asked (no
 * socket, refused, gone) and returns EXIT_FAILED.
 */
int ctl_run(const char *store, const char *mnt, int argc, char **argv);

/* The daemon's handler of control requests: runs the ctl_fn of the
 * command argv[0] (keepfs.c).  cmd_mount.c gives it to kfs_run(). */
int daemon_ctl(struct kfs_ctl *c, int argc, char **argv);

/* In a ctl_fn: "keepfs: msg" to the client's stderr; returns
 * EXIT_FAILED. */
int ctl_error(struct kfs_ctl *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- messages ------------------------------------------------------------ */

/* Where error() and the commands that run in the daemon print; NULL:
 * stdout and stderr.  daemon_ctl() sets them for each request (requests
 * run one at a time). */
void tool_streams(FILE *out, FILE *err);
extern FILE *tool_out, *tool_err;
#define TOOL_OUT (tool_out ? tool_out : stdout)
#define TOOL_ERR (tool_err ? tool_err : stderr)

/* Print "keepfs: msg" and exit 1. */
noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "keepfs: msg"; returns EXIT_FAILED. */
int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "keepfs: msg" (unless fmt is NULL) and a pointer to the command's
 * --help; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* After getopt_long() (optstring starting with ':') returned '?' or ':':
 * report the unknown option or missing value; returns EXIT_USAGE. */
int bad_option(const char *cmd, int c, char **argv);

/* Allocation that cannot fail (dies on ENOMEM). */
void *xmalloc(size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- paths and mounts ---------------------------------------------------- */

/*
 * The absolute form of path without touching a mount that may hang or be
 * disconnected more than needed: realpath(path) when it resolves, else
 * realpath(dirname) + "/" + basename (the last component need not exist).
 * Returns NULL (errno set) when not even the parent resolves.  Caller frees.
 */
char *abs_path(const char *path);

/* Is the absolute path equal to dir or below it? */
int path_within(const char *path, const char *dir);

/* One line of /proc/self/mountinfo, unescaped. */
struct mount_entry {
	char *mountpoint;
	char *fstype;
	char *source;
};

/* All mounts, in mountinfo order.  Returns the count (0 if unreadable);
 * *out gets an array to release with mounts_free(). */
size_t mounts_read(struct mount_entry **out);
void mounts_free(struct mount_entry *m, size_t n);

#define KEEPFS_FSTYPE "fuse.keepfs"

/* The mount entry whose mount point is exactly abs (the last one if the
 * point is mounted over), or NULL. */
const struct mount_entry *mounts_find_point(const struct mount_entry *m,
					    size_t n, const char *abs);
/* The keepfs mount serving the store at abs, or NULL. */
const struct mount_entry *mounts_find_store(const struct mount_entry *m,
					    size_t n, const char *abs);

/*
 * TARGET resolution: a keepfs mount point (its source is the store) or a
 * store path.  On success *store (absolute) and *mnt (the mount point, or
 * NULL when the store is not mounted) are set; caller frees both.  On
 * failure prints the reason and returns EXIT_FAILED.
 */
int resolve_target(const char *arg, char **store, char **mnt);

/* ---- secrets of encrypted stores (secret.c) ------------------------------ */

struct keep_secret;
struct keep_secret *secret_new(int kind, size_t cap); /* guarded memory */
void secret_free(struct keep_secret *s);	      /* wipes; NULL ok */
/* Read a passphrase file (one trailing newline dropped) or a key file
 * (exactly KEEP_KEYFILE_BYTES).  EXIT_OK or EXIT_FAILED (said why). */
int secret_from_file(const char *path, int kind, struct keep_secret **out);
/* Ask for a passphrase on the terminal without echo; twice: a new one,
 * asked again to be sure.  EXIT_OK or EXIT_FAILED (said why). */
int secret_prompt(const char *store, int twice, struct keep_secret **out);
/* The secret that opens store: NULL for a plain store; else from
 * passfile or keyfile (either may be NULL), the environment, a systemd
 * credential or the terminal.  EXIT_OK or EXIT_FAILED (said why). */
int secret_for_store(const char *store, const char *passfile,
		     const char *keyfile, struct keep_secret **out);

/* A path relative to the root of the tree, from what the user gave:
 * leading and trailing slashes go, an absolute path inside mnt (may be
 * NULL) is made relative.  Returns NULL after saying why for "." or ".."
 * components and for paths inside .snapshots.  Caller frees. */
char *tree_path(const char *p, const char *mnt);

/* Print a path as git quotes it: in double quotes with C escapes when it
 * holds a control byte, '"', '\\' or " -> ", else as it is. */
void put_path(FILE *f, const char *p);

/* ---- versions ------------------------------------------------------------ */

struct keep_store;

/*
 * The commit that FROM names: a snapshot name, or @TIME as in
 * MOUNT/.snapshots (the newest commit at or before TIME).  Returns EXIT_OK
 * with *commit set, or prints why not (unknown snapshot, a time that does
 * not parse, a time before the first commit) and returns EXIT_FAILED.
 */
int find_version(struct keep_store *s, const char *store, const char *what,
		 uint64_t *commit);

/* Open an unmounted store for writing (an encrypted one with its
 * secret, see secret_for_store), or print why not (busy: which process
 * holds it; a wrong secret) and return EXIT_FAILED. */
int open_writable(const char *store, struct keep_store **s);
/* Say that store is open for writing by process pid (0 or less: by some
 * process); EXIT_FAILED. */
int store_busy(const char *store, pid_t pid);
/* Open a store read-only; contents: files' contents will be read, so an
 * encrypted store's secret is needed.  EXIT_OK or EXIT_FAILED (said). */
int open_read(const char *store, int contents, struct keep_store **s);

/* progress.c: a transfer's bytes, rate and time left on stderr, when it
 * is a terminal: init, then set total (0: unknown) and ready (once the
 * total is known) and add to done as bytes go, calling show; end prints
 * the last line. */
struct progress {
	bool on;
	bool ready; /* the header is through: the total is known */
	const char *verb; /* "sent", "received" */
	uint64_t done, total;
	double start, last;
	bool shown;
};
void progress_init(struct progress *p, const char *verb);
void progress_show(struct progress *p, bool final);
void progress_end(struct progress *p);
/* A stream written to fd with progress: keep_send's write function and
 * started callback, ctx a struct progress_fd. */
struct progress_fd {
	int fd;
	struct progress pr;
};
struct keep_stream_info;
int progress_fd_write(void *ctx, const void *buf, size_t len);
void progress_started(void *ctx, const struct keep_stream_info *info);

/* extract.c: copy PATH ("" the root) of view out of the store to dest (a
 * new path in the file system).  EXIT_OK or a message printed. */
struct extract_stats {
	uint64_t objects, bytes;
	uint64_t not_set; /* owners, modes, times, xattrs not set */
};
int extract_tree(struct keep_store *s, uint64_t view, const char *path,
		 const char *dest, struct extract_stats *st);

/* ---- values --------------------------------------------------------------- */

/* Parse "64K", "1M", "4096" (suffixes K, M, G, optionally "iB").  Returns 0,
 * or -1 for a malformed or overflowing value. */
int parse_size(const char *s, uint64_t *out);

/* "1.5 MiB", "512 B" into buf. */
const char *human_bytes(uint64_t n, char *buf, size_t len);

/* "file", "directory", "symlink", "fifo", "socket", "char-device",
 * "block-device" or "unknown", for mode's type (JSON and tables). */
const char *file_type_name(uint32_t mode);

/* Print s as a JSON string (quoted, escaped) to stdout; bytes that are
 * not UTF-8 become U+FFFD.  json_text returns whether there were none. */
void json_string(const char *s);
bool json_text(const char *s);

/* Name of a process from /proc/PID/comm into buf ("?" if gone). */
const char *proc_comm(pid_t pid, char *buf, size_t len);

/* ---- text diffs (udiff.c) ------------------------------------------------ */

/* Does data look binary (a NUL byte in its first 8000)? */
bool udiff_binary(const char *data, size_t len);
/* Write a unified diff (3 lines of context) of a against b to f, under
 * "--- label_a" and "+++ label_b"; nothing when they are equal, one line
 * "Binary files label_a and label_b differ" when either is binary. */
void udiff(FILE *f, const char *label_a, const char *a, size_t alen,
	   const char *label_b, const char *b, size_t blen);

#endif /* KEEPFS_UTIL_I_H */
