/*
 * ctl.c - the client of a daemon's control socket, and "keepfs ctl-ping".
 *
 * ctl_run() sends one request (the wire format is in fs/kfs.h) and copies
 * the reply to our stdout and stderr as it comes, so a long answer is
 * seen while the daemon works.  The daemon runs the command with its own
 * store handle (daemon_ctl() in keepfs.c), so what a mounted store shows
 * stays true.
 *
 * "keepfs ctl-ping TARGET [ARG...]" is hidden: it asks the daemon to echo
 * its arguments, with "--bytes N" to send N bytes, with "--inval" to have
 * the kernel drop everything it caches of the live tree, for tests of the
 * socket itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keep.h"
#include "kfs.h"
#include "util_i.h"

static void vreport_to(FILE *err, const char *fmt, va_list ap)
{
	fputs("keepfs: ", err);
	vfprintf(err, fmt, ap);
	fputc('\n', err);
}

int ctl_error(struct kfs_ctl *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_to(kfs_ctl_err(c), fmt, ap);
	va_end(ap);
	return EXIT_FAILED;
}

/* ---- the client --------------------------------------------------------- */

/* Connect to STORE/control (through /proc/self/fd for a long path).
 * Returns the socket, or -1 with errno set. */
#define CONNECT_TRIES 40 /* 50 ms apart */

static int ctl_connect(const char *store)
{
	struct sockaddr_un addr;
	int fd, dirfd = -1, n, err;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", store,
		     KFS_CTL_NAME);
	if (n < 0 || (size_t)n >= sizeof(addr.sun_path)) {
		dirfd = open(store, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			return -1;
		snprintf(addr.sun_path, sizeof(addr.sun_path),
			 "/proc/self/fd/%d/%s", dirfd, KFS_CTL_NAME);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr,
			       sizeof(addr)) != 0) {
		err = errno;
		close(fd);
		fd = -1;
		errno = err;
	}
	if (dirfd >= 0) {
		err = errno;
		close(dirfd);
		errno = err;
	}
	return fd;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v & 0xff);
	p[1] = (unsigned char)(v >> 8 & 0xff);
	p[2] = (unsigned char)(v >> 16 & 0xff);
	p[3] = (unsigned char)(v >> 24 & 0xff);
}

/* The request frame for argv; *len gets its size.  Caller frees. */
static unsigned char *build_request(int argc, char **argv, size_t *len)
{
	static const char magic[] = KFS_CTL_MAGIC " ";
	char ver[16];
	size_t n, vlen;
	unsigned char *buf, *p;

	vlen = (size_t)snprintf(ver, sizeof(ver), "%d", KFS_CTL_VERSION) + 1;
	n = sizeof(magic) - 1 + vlen;
	for (int i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	buf = xmalloc(4 + n);
	put_le32(buf, (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n));
	p = buf + 4;
	memcpy(p, magic, sizeof(magic) - 1);
	p += sizeof(magic) - 1;
	memcpy(p, ver, vlen);
	p += vlen;
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]) + 1;

		memcpy(p, argv[i], l);
		p += l;
	}
	*len = 4 + n;
	return buf;
}

/* What the store's daemon is doing, for messages. */
static const char *who(const char *store, const char *mnt)
{
	return mnt ? mnt : store;
}

int ctl_run(const char *store, const char *mnt, int argc, char **argv)
{
	unsigned char hdr[4], *req;
	char *frame = NULL;
	size_t reqlen;
	int fd, err, status = -1;

	/* a daemon started with -f shows its mount a moment before it
	 * listens: give it that moment */
	for (int tries = 0;; tries++) {
		fd = ctl_connect(store);
		err = errno;
		if (fd >= 0 || !mnt || tries == CONNECT_TRIES ||
		    (err != ENOENT && err != ECONNREFUSED))
			break;
		nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
	}
	if (fd < 0) {
		if (err == ENOENT)
			return error("the daemon of '%s' has no control "
				     "socket: it was started by an older "
				     "keepfs; remount it",
				     who(store, mnt));
		if (err == ECONNREFUSED && mnt)
			return error("the daemon of '%s' is gone; unmount it "
				     "('keepfs umount %s') and mount the store "
				     "again",
				     mnt, mnt);
		if (err == EACCES)
			return error("cannot reach the control socket of '%s': "
				     "%s (only the owner of the mount or root "
				     "may control it)",
				     who(store, mnt), strerror(err));
		return error("cannot reach the daemon of '%s': %s",
			     who(store, mnt), strerror(err));
	}

	req = build_request(argc, argv, &reqlen);
	err = kfs_ctl_send_all(fd, req, reqlen);
	explicit_bzero(req, reqlen); /* it may carry a secret (key change) */
	free(req);
	/* a refused request may be answered before it was all sent: the
	 * answer says why, so read it either way */
	(void)err;

	frame = xmalloc(KFS_CTL_FRAME_MAX);
	for (;;) {
		uint32_t len;

		err = kfs_ctl_recv_all(fd, hdr, sizeof(hdr));
		if (err)
			break;
		len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 |
		      (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
		if (len == 0 || len > KFS_CTL_FRAME_MAX) {
			err = EPROTO;
			break;
		}
		err = kfs_ctl_recv_all(fd, frame, len);
		if (err)
			break;
		if (frame[0] == 'o') {
			fwrite(frame + 1, 1, len - 1, stdout);
		} else if (frame[0] == 'e') {
			fflush(stdout);
			fwrite(frame + 1, 1, len - 1, stderr);
		} else if (frame[0] == 'x') {
			char num[16];
			size_t n = len - 1 < sizeof(num) - 1 ? len - 1
							     : sizeof(num) - 1;

			memcpy(num, frame + 1, n);
			num[n] = '\0';
			status = atoi(num);
			break;
		} else {
			err = EPROTO;
			break;
		}
	}
	free(frame);
	close(fd);
	if (status >= 0)
		return status;
	if (err == EPROTO)
		return error("the daemon of '%s' sent a malformed reply",
			     who(store, mnt));
	return error("the daemon of '%s' stopped answering before the "
		     "command finished (%s); it may have died: see its log",
		     who(store, mnt),
		     err == EPIPE ? "connection closed" : strerror(err));
}

/* ---- keepfs ctl-ping --------------------------------------------------- */

const char usage_ctl_ping[] =
	"usage: keepfs ctl-ping TARGET [--bytes N] [--inval] [ARG...]\n"
	"\n"
	"Ask the daemon of a mounted store to answer: it prints \"pong\" and\n"
	"each ARG on a line of its own, or N bytes with --bytes.  --inval\n"
	"first has the kernel drop what it caches of the live tree.  For\n"
	"tests of the control socket.\n";

/* The daemon's side. */
int ctl_ping(struct kfs_ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"bytes", required_argument, NULL, 'b'},
		{"inval", no_argument, NULL, 'i'},
		{NULL, 0, NULL, 0},
	};
	FILE *out = kfs_ctl_out(c);
	uint64_t bytes = 0;
	int ch, sized = 0;

	while ((ch = getopt_long(argc, argv, "+:", longopts, NULL)) != -1) {
		if (ch == 'i') {
			kfs_ctl_invalidate_all(c);
			continue;
		}
		if (ch != 'b') {
			ctl_error(c, "ctl-ping: bad option");
			return EXIT_USAGE;
		}
		if (parse_size(optarg, &bytes) != 0) {
			ctl_error(c, "ctl-ping: bad size '%s'", optarg);
			return EXIT_USAGE;
		}
		sized = 1;
	}
	if (sized) {
		char buf[8192];

		memset(buf, 'p', sizeof(buf));
		while (bytes && !ferror(out)) {
			size_t n = bytes < sizeof(buf) ? bytes : sizeof(buf);

			fwrite(buf, 1, n, out);
			bytes -= n;
		}
		return ferror(out) ? EXIT_FAILED : EXIT_OK;
	}
	fputs("pong\n", out);
	for (int i = optind; i < argc; i++)
		fprintf(out, "%s\n", argv[i]);
	return EXIT_OK;
}

int cmd_ctl_ping(int argc, char **argv)
{
	char *store, *mnt, **args;
	int status;

	if (argc < 2)
		return usage_error("ctl-ping", "missing TARGET");
	if (resolve_target(argv[1], &store, &mnt) != EXIT_OK)
		return EXIT_FAILED;
	if (!mnt) {
		error("store '%s' is not mounted", store);
		free(store);
		return EXIT_FAILED;
	}
	/* the daemon gets the command and its arguments, not TARGET */
	args = xmalloc(sizeof(*args) * (size_t)argc);
	args[0] = argv[0];
	for (int i = 2; i < argc; i++)
		args[i - 1] = argv[i];
	status = ctl_run(store, mnt, argc - 1, args);
	free(args);
	free(store);
	free(mnt);
	return status;
}

const char usage_retain_now[] =
	"usage: keepfs retain-now TARGET\n"
	"\n"
	"For tests: have the daemon of a mounted store run its retention at\n"
	"once (an automatic snapshot if one is due, the retention of snapshots,\n"
	"garbage collection) and print what it did.\n";

int cmd_retain_now(int argc, char **argv)
{
	char *store, *mnt;
	int status;

	if (argc != 2)
		return usage_error("retain-now", "give exactly one TARGET");
	if (resolve_target(argv[1], &store, &mnt) != EXIT_OK)
		return EXIT_FAILED;
	if (!mnt) {
		status = error("store '%s' is not mounted", store);
	} else {
		char *args[1] = {argv[0]};
		status = ctl_run(store, mnt, 1, args);
	}
	free(store);
	free(mnt);
	return status;
}

int ctl_retain_now(struct kfs_ctl *c, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return ctl_error(c, "retain-now takes no arguments");
	int rc = kfs_ctl_retain_now(c);
	if (rc)
		return ctl_error(c, "retention failed: %s", keep_strerror(rc));
	return EXIT_OK;
}
