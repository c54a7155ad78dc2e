/*
 * cmd_mount.c - "keepfs mount" and the mount.keepfs helper.
 *
 * Everything that can be wrong with the request (options, the store, the
 * mount point, another daemon holding the store) is checked and reported
 * here, on the user's terminal, before anything is forked.  Then either
 * the daemon runs in this process (-f), or a child becomes the daemon and
 * this process waits on a pipe until the mount is live ("OK") or the
 * child reports why it is not ("ERR msg"), so the exit status of
 * "keepfs mount" tells the truth about the mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "kfs.h"
#include "keep.h"
#include "util_i.h"

const char usage_mount[] =
	"usage: keepfs mount STORE MOUNTPOINT [-o OPTS]... [-f|--foreground] "
	"[-d|--debug]\n"
	"\n"
	"Mount the store STORE on the directory MOUNTPOINT.  The command\n"
	"returns once the mount is ready, leaving a daemon that serves it\n"
	"and logs to syslog; with -f the daemon stays in the foreground and\n"
	"logs to stderr.\n"
	"\n"
	"An encrypted store's passphrase or key file comes from passfile= or\n"
	"keyfile=, else KEEPFS_PASSPHRASE_FILE or KEEPFS_KEY_FILE, else the\n"
	"systemd credential keepfs.passphrase or keepfs.key\n"
	"($CREDENTIALS_DIRECTORY), else the terminal.  A wrong one mounts\n"
	"nothing and changes nothing.\n"
	"\n"
	"options:\n"
	"   -o OPTS           comma-separated mount options (may repeat):\n"
	"                     commit_interval=SECONDS, dirty_limit=SIZE,\n"
	"                     snapdir=visible|hidden, passfile=FILE,\n"
	"                     keyfile=FILE, ro, rw, allow_other,\n"
	"                     allow_root, default_permissions, debug,\n"
	"                     max_read=N; see keepfs-mount(8)\n"
	"   -f, --foreground  do not daemonize; log to stderr\n"
	"   -d, --debug       log every request (implies -f)\n"
	"   -h, --help        show this help\n";

const char usage_mount_helper[] =
	"usage: mount.keepfs STORE MOUNTPOINT [-o OPTS] [-n] [-s] [-v] [-f]\n"
	"\n"
	"The mount(8) helper: 'mount -t keepfs STORE MOUNTPOINT' and\n"
	"/etc/fstab lines of type keepfs run it.\n"
	"\n"
	"options:\n"
	"   -o OPTS     comma-separated mount options (may repeat), as for\n"
	"               'keepfs mount'; see keepfs-mount(8)\n"
	"   -n          do not write /etc/mtab (accepted; there is none)\n"
	"   -s          sloppy: ignore mount options keepfs does not know\n"
	"   -v          verbose: say what was mounted\n"
	"   -f          fake: check everything, mount nothing\n"
	"   -h, --help  show this help\n"
	"\n"
	"Exit status, as mount(8) expects of a helper: 0 mounted, 32 not\n"
	"mounted (the reason on standard error), 1 usage error.\n";

struct mount_req {
	const char *cmd; /* for usage messages */
	const char *store;
	const char *mountpoint;
	char *opts; /* the -o strings joined by commas, or NULL */
	int foreground;
	int debug;
	int fake;
	int sloppy;
	int verbose;
};

static void append_opts(struct mount_req *req, const char *o)
{
	char *joined;

	if (!*o)
		return;
	if (!req->opts) {
		req->opts = xstrdup(o);
		return;
	}
	joined = xasprintf("%s,%s", req->opts, o);
	free(req->opts);
	req->opts = joined;
}

/* Sloppy mode: keep only the options kfs_config_parse() accepts. */
static char *drop_unknown_opts(const char *opts)
{
	char *copy = xstrdup(opts), *save = NULL, *tok, *kept = NULL, *tmp;
	char err[256];

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct kfs_config scratch;
		int ok;

		kfs_config_init(&scratch);
		ok = kfs_config_parse(&scratch, tok, err, sizeof(err)) == 0;
		kfs_config_release(&scratch);
		if (!ok)
			continue;
		tmp = kept ? xasprintf("%s,%s", kept, tok) : xstrdup(tok);
		free(kept);
		kept = tmp;
	}
	free(copy);
	return kept;
}

/* Is arg a store nobody has mounted?  With deep (mount -f, the fake
 * mount), also open it read-only: that proves the format is one we
 * understand and the database readable.  A real mount leaves that to the
 * daemon, whose open says the same before anything is mounted, and whose
 * refusal of a wrong secret then leaves no file behind (a read-only
 * connection would leave SQLite's WAL and shm). */
static int check_store(const char *arg, int deep, char **out_abs)
{
	struct keep_store *s;
	struct mount_entry *m;
	struct stat st;
	pid_t owner;
	size_t n;
	char *abs;
	int rc;

	if (stat(arg, &st) != 0) {
		if (errno == ENOENT)
			return error("store '%s' does not exist; create it with "
				     "'keepfs init %s'",
				     arg, arg);
		return error("cannot access store '%s': %s", arg,
			     strerror(errno));
	}
	abs = realpath(arg, NULL);
	if (!abs)
		return error("cannot access store '%s': %s", arg,
			     strerror(errno));
	if (!S_ISDIR(st.st_mode) || !keep_is_store(abs)) {
		error("'%s' is not a keepfs store", arg);
		free(abs);
		return EXIT_FAILED;
	}

	owner = keep_store_lock_owner(abs);
	if (owner > 0) {
		const struct mount_entry *e;

		n = mounts_read(&m);
		e = mounts_find_store(m, n, abs);
		if (e)
			error("store '%s' is already mounted at '%s' (pid %d)",
			      arg, e->mountpoint, (int)owner);
		else
			error("store '%s' is in use by pid %d", arg, (int)owner);
		mounts_free(m, n);
		free(abs);
		return EXIT_FAILED;
	}

	rc = deep ? keep_store_open(abs, KEEP_OPEN_RDONLY, &s) : 0;
	if (rc != 0) {
		error("cannot open store '%s': %s", arg, keep_strerror(rc));
		free(abs);
		return EXIT_FAILED;
	}
	if (deep)
		keep_store_close(s);
	*out_abs = abs;
	return EXIT_OK;
}

static int check_mountpoint(const char *arg, const char *store,
			    char **out_abs)
{
	const struct mount_entry *e;
	struct mount_entry *m;
	struct stat st;
	size_t n;
	char *abs;
	int status = EXIT_FAILED;

	if (stat(arg, &st) != 0) {
		if (errno == ENOENT)
			return error("mount point '%s' does not exist", arg);
		if (errno == ENOTCONN)
			return error("mount point '%s' is a disconnected mount; "
				     "unmount it with 'fusermount3 -u %s'",
				     arg, arg);
		return error("cannot access mount point '%s': %s", arg,
			     strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return error("mount point '%s' is not a directory", arg);
	abs = realpath(arg, NULL);
	if (!abs)
		return error("cannot access mount point '%s': %s", arg,
			     strerror(errno));

	n = mounts_read(&m);
	e = mounts_find_point(m, n, abs);
	if (e && strcmp(e->fstype, KEEPFS_FSTYPE) == 0 &&
	    keep_store_lock_owner(e->source) == 0)
		error("mount point '%s' is a keepfs mount whose daemon is gone; "
		      "unmount it with 'keepfs umount %s'",
		      arg, abs);
	else if (e && strcmp(e->fstype, KEEPFS_FSTYPE) == 0)
		error("mount point '%s' is already mounted (store '%s')", arg,
		      e->source);
	else if (e)
		error("mount point '%s' is already a mount point (%s)", arg,
		      e->fstype);
	else if (path_within(store, abs))
		error("store '%s' is inside mount point '%s'", store, abs);
	else
		status = EXIT_OK;
	mounts_free(m, n);

	if (status == EXIT_OK)
		*out_abs = abs;
	else
		free(abs);
	return status;
}

static void syslog_sink(int level, const char *msg, void *ctx)
{
	(void)ctx;
	syslog(level, "%s", msg);
}

/* The child: become the daemon.  Never returns. */
static void daemon_child(struct kfs_config *cfg, int ready_fd)
{
	int fd, status;

	setsid();
	if (chdir("/") != 0) {
		/* cannot happen in practice; the daemon needs no cwd */
	}
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	/* hold nothing of the caller's: a pipe inherited from a shell or a
	 * test harness would otherwise stay open as long as the mount */
	if (ready_fd > STDERR_FILENO + 1)
		close_range(STDERR_FILENO + 1, (unsigned)ready_fd - 1, 0);
	close_range((unsigned)ready_fd + 1, ~0U, 0);
	openlog("keepfs", LOG_PID, LOG_DAEMON);
	keep_log_set_sink(syslog_sink, NULL);
	keep_log_set_level(LOG_NOTICE);
	status = kfs_run(cfg, ready_fd);
	secret_free(cfg->secret);
	kfs_config_release(cfg);
	closelog();
	_exit(status);
}

/* The parent: wait for the daemon's verdict on the pipe. */
static int await_daemon(pid_t pid, int fd)
{
	char buf[1024];
	size_t len = 0;
	ssize_t res;

	while (len < sizeof(buf) - 1) {
		res = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (res < 0 && errno == EINTR)
			continue;
		if (res <= 0)
			break;
		len += (size_t)res;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';

	if (strcmp(buf, "OK") == 0)
		return EXIT_OK;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (strncmp(buf, "ERR ", 4) == 0 && buf[4])
		return error("%s", buf + 4);
	return error("daemon exited during startup");
}

/* Does /etc/fuse.conf let users other than root ask for allow_other or
 * allow_root ("user_allow_other" on a line of its own)? */
static int fuse_conf_allows_other(void)
{
	FILE *f = fopen("/etc/fuse.conf", "re");
	char line[256];
	int yes = 0;

	if (!f)
		return 0;
	while (!yes && fgets(line, sizeof(line), f)) {
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		yes = !strncmp(p, "user_allow_other", 16) &&
		      (p[16] == '\n' || p[16] == '\0' || p[16] == ' ' ||
		       p[16] == '\t');
	}
	fclose(f);
	return yes;
}

static int do_mount(struct mount_req *req)
{
	struct kfs_config cfg;
	char err[512], *store = NULL, *mnt = NULL, *opts = req->opts;
	int status = EXIT_FAILED, fds[2];
	pid_t pid;

	kfs_config_init(&cfg);
	if (opts && req->sloppy)
		opts = drop_unknown_opts(opts);
	if (opts && kfs_config_parse(&cfg, opts, err, sizeof(err)) != 0) {
		error("%s", err);
		goto out;
	}
	if ((cfg.allow_other || cfg.allow_root) && getuid() != 0 &&
	    !fuse_conf_allows_other()) {
		error("mount option '%s' is for root only here: a user may ask "
		      "for it when /etc/fuse.conf has a line "
		      "'user_allow_other'",
		      cfg.allow_other ? "allow_other" : "allow_root");
		goto out;
	}
	if (check_store(req->store, req->fake, &store) != EXIT_OK)
		goto out;
	if (check_mountpoint(req->mountpoint, store, &mnt) != EXIT_OK)
		goto out;
	if (req->fake) {
		status = EXIT_OK;
		goto out;
	}
	/* asked for here, on the caller's terminal, before the fork */
	if (secret_for_store(store, cfg.passfile, cfg.keyfile, &cfg.secret) !=
	    EXIT_OK)
		goto out;

	cfg.store_path = store;
	cfg.mountpoint = mnt;
	cfg.ctl_handler = daemon_ctl;
	store = mnt = NULL; /* owned by cfg now */
	cfg.foreground = req->foreground || req->debug;
	if (req->debug)
		cfg.debug = 1;

	if (cfg.foreground) {
		keep_log_set_level(cfg.debug ? LOG_DEBUG : LOG_NOTICE);
		status = kfs_run(&cfg, -1);
		goto out;
	}

	if (pipe2(fds, O_CLOEXEC) != 0) {
		error("cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		error("cannot fork the daemon: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		goto out;
	}
	if (pid == 0) {
		close(fds[0]);
		daemon_child(&cfg, fds[1]);
	}
	close(fds[1]);
	/* the daemon has its own copy */
	secret_free(cfg.secret);
	cfg.secret = NULL;
	status = await_daemon(pid, fds[0]);
	if (status == EXIT_OK && req->verbose)
		printf("mounted '%s' on '%s'\n", cfg.store_path,
		       cfg.mountpoint);
out:
	if (opts != req->opts)
		free(opts);
	free(store);
	free(mnt);
	secret_free(cfg.secret);
	kfs_config_release(&cfg);
	return status;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"foreground", no_argument, NULL, 'f'},
		{"debug", no_argument, NULL, 'd'},
		{NULL, 0, NULL, 0},
	};
	struct mount_req req = {.cmd = "mount"};
	int c, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:fd", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			append_opts(&req, optarg);
			break;
		case 'f':
			req.foreground = 1;
			break;
		case 'd':
			req.debug = 1;
			break;
		default:
			free(req.opts);
			return bad_option("mount", c, argv);
		}
	}
	if (argc - optind != 2) {
		free(req.opts);
		return usage_error("mount", argc - optind < 2
						    ? "missing STORE or MOUNTPOINT"
						    : "too many arguments");
	}
	req.store = argv[optind];
	req.mountpoint = argv[optind + 1];
	status = do_mount(&req);
	free(req.opts);
	return status;
}

/* mount(8)'s exit codes, which it passes on from a helper */
#define MNT_EX_USAGE 1
#define MNT_EX_FAIL 32

static int helper_status(int status)
{
	return status == EXIT_OK	  ? EXIT_OK
	       : status == EXIT_USAGE ? MNT_EX_USAGE
				      : MNT_EX_FAIL;
}

int cmd_mount_helper(int argc, char **argv)
{
	struct mount_req req = {.cmd = "mount.keepfs"};
	int c, status;

	opterr = 0;
	while ((c = getopt(argc, argv, ":o:nsvft:")) != -1) {
		switch (c) {
		case 'o':
			append_opts(&req, optarg);
			break;
		case 'n':
			break;
		case 's':
			req.sloppy = 1;
			break;
		case 'v':
			req.verbose = 1;
			break;
		case 'f':
			req.fake = 1;
			break;
		case 't':
			/* mount(8) may name the type ("keepfs"); we are it */
			break;
		default:
			free(req.opts);
			if (c == ':')
				fprintf(stderr,
					"keepfs: option '%s' needs a value\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "keepfs: unknown option '-%c'\n",
					optopt);
			fputs("see 'mount.keepfs --help'\n", stderr);
			return MNT_EX_USAGE;
		}
	}
	if (argc - optind != 2) {
		free(req.opts);
		fputs("keepfs: expected STORE and MOUNTPOINT\n"
		      "see 'mount.keepfs --help'\n",
		      stderr);
		return MNT_EX_USAGE;
	}
	req.store = argv[optind];
	req.mountpoint = argv[optind + 1];
	status = do_mount(&req);
	free(req.opts);
	return helper_status(status);
}
