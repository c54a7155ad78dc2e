/*
 * cmd_umount.c - "keepfs umount": unmount and wait for the final commit.
 *
 * fusermount3 -u only detaches the mount; the daemon then makes its final
 * commit and exits.  This command returns only after that daemon (the
 * holder of the store's lock) is gone, so whatever runs next - a backup,
 * a remount, "keepfs stats" - sees everything that was written.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

const char usage_umount[] =
	"usage: keepfs umount MOUNTPOINT [--lazy]\n"
	"\n"
	"Unmount a keepfs mount (MOUNTPOINT may also be the path of a\n"
	"mounted store) and wait until its daemon has made the final commit\n"
	"and exited.  A busy mount is left alone and the processes using it\n"
	"are listed.\n"
	"\n"
	"options:\n"
	"   -l, --lazy  detach the mount now even if it is busy; the daemon\n"
	"               commits and exits once the last user lets go\n"
	"   -h, --help  show this help\n";

#define WAIT_SECONDS 60
/* How long (10 ms rounds) an exited daemon may wait for init to reap it;
 * some container inits reap only every second or two. */
#define ZOMBIE_GRACE_ROUNDS 500

/* ---- who is using the mount ----------------------------------------------- */

/* readlink() of /proc/PID/NAME under the mount point?  Never stat()s:
 * the links name paths without asking the (possibly busy) filesystem. */
static int link_within(const char *proc_path, const char *mnt)
{
	char target[4096];
	ssize_t res;

	res = readlink(proc_path, target, sizeof(target) - 1);
	if (res <= 0)
		return 0;
	target[res] = '\0';
	return target[0] == '/' && path_within(target, mnt);
}

static int maps_within(pid_t pid, const char *mnt)
{
	char path[64], *line = NULL, *file;
	size_t cap = 0;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		file = strchr(line, '/');
		if (file && path_within(file, mnt))
			found = 1;
	}
	free(line);
	fclose(f);
	return found;
}

/* Print (if print) each process holding something under mnt; returns how
 * many were found. */
static int scan_users(const char *mnt, int print)
{
	char path[64], comm[64];
	struct dirent *d, *fd;
	DIR *proc, *fds;
	int count = 0;

	proc = opendir("/proc");
	if (!proc)
		return 0;
	while ((d = readdir(proc))) {
		pid_t pid;
		char what[64] = "";

		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		pid = (pid_t)atoi(d->d_name);
		if (pid == getpid())
			continue;

		snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
		if (link_within(path, mnt))
			snprintf(what, sizeof(what), "cwd");
		snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
		if (!what[0] && link_within(path, mnt))
			snprintf(what, sizeof(what), "root");
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
		fds = what[0] ? NULL : opendir(path);
		while (fds && (fd = readdir(fds))) {
			char link[320];

			if (!isdigit((unsigned char)fd->d_name[0]))
				continue;
			snprintf(link, sizeof(link), "/proc/%d/fd/%s", (int)pid,
				 fd->d_name);
			if (link_within(link, mnt)) {
				snprintf(what, sizeof(what), "fd %d",
					 atoi(fd->d_name));
				break;
			}
		}
		if (fds)
			closedir(fds);
		if (!what[0] && maps_within(pid, mnt))
			snprintf(what, sizeof(what), "mmap");
		if (!what[0])
			continue;
		count++;
		if (print)
			fprintf(stderr, "  pid %d (%s): %s\n", (int)pid,
				proc_comm(pid, comm, sizeof(comm)), what);
	}
	closedir(proc);
	return count;
}

/* ---- fusermount3 ----------------------------------------------------------- */

/* Run "fusermount3 -u [-z] mnt"; its stderr into msg.  Returns its exit
 * status, or -1 if it could not be run (msg says why). */
static int run_fusermount(const char *mnt, int lazy, char *msg, size_t len)
{
	char *argv[5];
	int fds[2], status, i = 0;
	size_t got = 0;
	ssize_t res;
	pid_t pid;

	argv[i++] = "fusermount3";
	argv[i++] = "-u";
	if (lazy)
		argv[i++] = "-z";
	argv[i++] = (char *)mnt;
	argv[i] = NULL;

	msg[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(msg, len, "cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		snprintf(msg, len, "cannot fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		/* its messages are matched below, so they must be English */
		setenv("LC_ALL", "C", 1);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run fusermount3: %s", strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	while (got < len - 1) {
		res = read(fds[0], msg + got, len - 1 - got);
		if (res < 0 && errno == EINTR)
			continue;
		if (res <= 0)
			break;
		got += (size_t)res;
	}
	msg[got] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	while (got > 0 && msg[got - 1] == '\n')
		msg[--got] = '\0';
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- waiting for the daemon ------------------------------------------------ */

/* 0 running, 1 a zombie (exited, not yet reaped), 2 gone. */
static int pid_state(pid_t pid)
{
	char path[64], buf[512], *paren;
	int state = 2;
	FILE *f;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return 2;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 2;
	if (fgets(buf, sizeof(buf), f)) {
		paren = strrchr(buf, ')');
		if (paren && paren[1] == ' ')
			state = (paren[2] == 'Z' || paren[2] == 'X') ? 1 : 0;
	}
	fclose(f);
	return state;
}

/*
 * Wait until pid has exited.  Callers may check with kill(pid, 0), which
 * succeeds on a zombie, so the exited daemon is given a few seconds to be
 * reaped by init; where nobody reaps, the zombie still counts as exited
 * (its store is closed, its final commit on disk).
 */
static int wait_gone(pid_t pid, int seconds)
{
	struct timespec pause = {0, 10 * 1000 * 1000};
	long rounds = (long)seconds * 100, zombie_rounds = 0;
	int state;

	for (long i = 0; i <= rounds; i++) {
		state = pid_state(pid);
		if (state == 2)
			return 1;
		if (state == 1 && ++zombie_rounds >= ZOMBIE_GRACE_ROUNDS)
			return 1;
		nanosleep(&pause, NULL);
	}
	return 0;
}

/* ---- the command ----------------------------------------------------------- */

/* Map the argument to a keepfs mount point and its store. */
static int find_mount(const char *arg, char **out_mnt, char **out_store)
{
	const struct mount_entry *e;
	struct mount_entry *m;
	size_t n;
	char *abs;
	int status = EXIT_FAILED;

	abs = abs_path(arg);
	if (!abs)
		return error("cannot resolve '%s': %s", arg, strerror(errno));
	n = mounts_read(&m);
	e = mounts_find_point(m, n, abs);
	if (!e || strcmp(e->fstype, KEEPFS_FSTYPE) != 0) {
		int is_store = keep_is_store(abs);

		e = is_store ? mounts_find_store(m, n, abs) : NULL;
		if (!e && is_store)
			error("store '%s' is not mounted", abs);
		else if (!e)
			error("'%s' is not a keepfs mount point", arg);
	}
	if (e) {
		*out_mnt = xstrdup(e->mountpoint);
		*out_store = xstrdup(e->source);
		status = EXIT_OK;
	}
	mounts_free(m, n);
	free(abs);
	return status;
}

int cmd_umount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"lazy", no_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	char msg[2048], *mnt = NULL, *store = NULL;
	int c, lazy = 0, users = 0, res, status = EXIT_FAILED;
	pid_t pid;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			lazy = 1;
			break;
		default:
			return bad_option("umount", c, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("umount", argc - optind ? "too many arguments"
							   : "missing MOUNTPOINT");

	if (find_mount(argv[optind], &mnt, &store) != EXIT_OK)
		return EXIT_FAILED;

	pid = keep_store_lock_owner(store);
	if (lazy)
		users = scan_users(mnt, 0);

	res = run_fusermount(mnt, lazy, msg, sizeof(msg));
	if (res != 0) {
		if (strstr(msg, "busy")) {
			error("'%s' is busy", mnt);
			scan_users(mnt, 1);
			fprintf(stderr,
				"use 'keepfs umount --lazy %s' to detach it now; "
				"the daemon commits and exits once the last of "
				"these lets go\n",
				mnt);
		} else if (res < 0) {
			error("%s", msg[0] ? msg : "cannot run fusermount3");
		} else {
			const char *why = msg;

			if (strncmp(why, "fusermount3: ", 13) == 0)
				why += 13;
			error("cannot unmount '%s': %s", mnt,
			      why[0] ? why : "fusermount3 failed");
		}
		goto out;
	}

	if (pid <= 0) {
		/* no daemon (it died, or cannot be told): nothing to wait for */
		status = EXIT_OK;
	} else if (lazy && users > 0) {
		fprintf(stderr,
			"keepfs: '%s' is detached; the daemon (pid %d) commits "
			"and exits once the last process using it lets go\n",
			mnt, (int)pid);
		status = EXIT_OK;
	} else if (wait_gone(pid, WAIT_SECONDS)) {
		status = EXIT_OK;
	} else {
		error("the daemon of '%s' (pid %d) did not exit within %d s",
		      mnt, (int)pid, WAIT_SECONDS);
	}
out:
	free(mnt);
	free(store);
	return status;
}
