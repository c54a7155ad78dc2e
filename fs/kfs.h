/*
 * kfs.h - entry points of the keepfs FUSE daemon, for tools/.
 *
 * fs/ owns the mount options and the daemon's life: tools/ parses its own
 * command line, hands the "-o" option string here, and calls kfs_run() in
 * the process that is to become the daemon.
 */
#ifndef KFS_H
#define KFS_H

#include <stddef.h>
#include <stdint.h>

struct kfs_config {
	char *store_path; /* absolute */
	char *mountpoint; /* absolute */

	/* keepfs options */
	double commit_interval;	  /* seconds; "commit_interval=" default 1 */
	uint64_t dirty_limit;	  /* bytes; "dirty_limit=" default 8 MiB */
	int snapdir_visible;	  /* "snapdir=visible|hidden" */
	int writeback;		  /* "writeback=on|off", default on */
	int readdirplus;	  /* "readdirplus=on|off", default on */
	double cache_timeout;	  /* "cache_timeout=" entry/attr, default 60 s */

	/* generic options */
	int read_only;		  /* "ro" (and "rw" clears it) */
	int allow_other;	  /* "allow_other" */
	int allow_root;		  /* "allow_root" */
	int debug;		  /* "debug": FUSE request log, LOG_DEBUG */
	int foreground;		  /* set by tools from -f, not an -o option */

	/* Options passed to the kernel/libfuse as they are ("fsname=",
	 * "subtype=", "max_read=", ...), comma-separated; may be NULL. */
	char *fuse_opts;
};

/* Defaults for every field; store_path and mountpoint NULL. */
void kfs_config_init(struct kfs_config *cfg);
void kfs_config_release(struct kfs_config *cfg);

/*
 * Parse a comma-separated mount option string ("a,b=c,...") into cfg.
 * fstab-only options (auto, noauto, nofail, _netdev, user, users, owner,
 * x-systemd.*, comment=*, defaults) are accepted and ignored.  Unknown
 * options and bad values fail: returns -1 and writes a message such as
 * "unknown mount option 'foo'" into err.  Returns 0 on success.
 */
int kfs_config_parse(struct kfs_config *cfg, const char *opts, char *err,
		     size_t errlen);

/*
 * Open the store, mount it and serve requests until unmounted or until
 * SIGTERM/SIGINT/SIGHUP (which commit and unmount).
 *
 * ready_fd (-1 if none): once the mount is live, "OK\n" is written to it;
 * if anything fails before that, "ERR <message>\n" is written instead.
 * Either way the fd is closed afterwards.  The daemon logs through
 * keep_log(); the caller chooses the sink (stderr or syslog).
 *
 * Returns the process exit status: 0 after a clean unmount with the final
 * commit on disk, 1 otherwise.
 */
int kfs_run(const struct kfs_config *cfg, int ready_fd);

#endif /* KFS_H */
