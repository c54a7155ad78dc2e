/*
 * ctl.c - the control socket: commands that change a mounted store run in
 * its daemon.
 *
 * The daemon listens on STORE/control.  A listening thread accepts
 * connections; each gets a thread of its own that checks the peer, reads
 * the one request frame and runs cfg->ctl_handler with the daemon's store,
 * sending what the handler writes as reply frames while it runs.  The wire
 * format is described in kfs.h.  fs/ knows no command: the handler (tools/)
 * does.
 *
 * Design notes:
 *  1. Only the daemon's own uid and root are served (SO_PEERCRED).  The
 *     store directory is 0700 and the socket 0600 already; the check is
 *     what holds if someone loosens those modes.  A refused peer gets one
 *     message and exit status 1, and nothing of its request is read.
 *  2. Handlers run one at a time (run_lock): they parse options with
 *     getopt, whose state is global, and two changes of one store have
 *     nothing to gain from running together.  Reading a request does not
 *     take the lock, so a client that connects and sends nothing holds up
 *     no one; it is dropped after CTL_READ_TIMEOUT_S.
 *  3. A client that goes away, or stops reading for CTL_SEND_TIMEOUT_S,
 *     loses the rest of its output; the command itself runs to its end (a
 *     change half made because a terminal closed would be worse).  Sends
 *     use MSG_NOSIGNAL: a closed peer is EPIPE, never a signal.
 *  4. The socket is made while the daemon holds the store's lock, so one
 *     found there belongs to no live daemon and is replaced.  At a clean
 *     exit it is removed, unless it is no longer ours.  A store path too
 *     long for sun_path is reached through /proc/self/fd/N/control.
 *  5. Invalidations are sent from the request's thread, which is not a
 *     FUSE request: the kernel may take the locks of the inodes it drops.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "kfs_i.h"

#define CTL_MAX_CONNS 64
#define CTL_READ_TIMEOUT_S 10
#define CTL_SEND_TIMEOUT_S 30
#define CTL_BACKLOG 64

struct ctl_conn {
	struct kfs_ctld *d;
	int fd;
	pthread_t thread;
	struct ctl_conn *next;
};

struct kfs_ctld {
	struct kfs *fs;
	int fd;	      /* listening socket */
	int wake[2];  /* a pipe: written to stop the listener */
	int dirfd;    /* the store directory, for long paths */
	char *path;   /* the socket's path as bound */
	dev_t dev;    /* the socket we made, to remove only ours */
	ino_t ino;
	pthread_t listener;
	pthread_mutex_t lock; /* guards conns and nconns */
	pthread_cond_t idle;  /* nconns dropped to 0 */
	struct ctl_conn *conns;
	int nconns;
	pthread_mutex_t run_lock; /* design note 2 */
};

struct kfs_ctl {
	struct kfs *fs;
	int fd;
	int dead; /* the client is gone: output is dropped */
	FILE *out, *err;
	char frame[KFS_CTL_FRAME_MAX + 4];
};

/* ---- frames -------------------------------------------------------------- */

int kfs_ctl_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t res = send(fd, p, len, MSG_NOSIGNAL);
		if (res < 0 && errno == EINTR)
			continue;
		if (res <= 0)
			return res < 0 ? errno : EPIPE;
		p += res;
		len -= (size_t)res;
	}
	return 0;
}

static void put_le32(char *p, uint32_t v)
{
	p[0] = (char)(v & 0xff);
	p[1] = (char)(v >> 8 & 0xff);
	p[2] = (char)(v >> 16 & 0xff);
	p[3] = (char)(v >> 24 & 0xff);
}

/* Send bytes as frames of the given type.  Returns 0 or EPIPE once the
 * client is gone. */
static int send_frames(struct kfs_ctl *c, char type, const char *buf,
		       size_t len)
{
	do {
		size_t n = len < KFS_CTL_FRAME_MAX - 1 ? len
						      : KFS_CTL_FRAME_MAX - 1;
		if (c->dead)
			return EPIPE;
		put_le32(c->frame, (uint32_t)(n + 1));
		c->frame[4] = type;
		memcpy(c->frame + 5, buf, n);
		if (kfs_ctl_send_all(c->fd, c->frame, n + 5) != 0)
			c->dead = 1;
		buf += n;
		len -= n;
	} while (len);
	return c->dead ? EPIPE : 0;
}

/*
 * The streams' write functions.  A failed write returns 0, never -1:
 * fopencookie(3) forbids a negative result, and glibc takes -1 for a
 * count of SIZE_MAX bytes and reads past the caller's buffer.
 */
static ssize_t out_write(void *cookie, const char *buf, size_t size)
{
	struct kfs_ctl *c = cookie;
	if (send_frames(c, 'o', buf, size) != 0) {
		errno = EPIPE;
		return 0;
	}
	return (ssize_t)size;
}

static ssize_t err_write(void *cookie, const char *buf, size_t size)
{
	struct kfs_ctl *c = cookie;
	fflush(c->out); /* what was printed before the error comes first */
	if (send_frames(c, 'e', buf, size) != 0) {
		errno = EPIPE;
		return 0;
	}
	return (ssize_t)size;
}

/* A message and an exit status, for requests that never reach the
 * handler. */
static void refuse(struct kfs_ctl *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void refuse(struct kfs_ctl *c, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	send_frames(c, 'e', msg, (size_t)n);
	n = snprintf(msg, sizeof(msg), "%d", status);
	send_frames(c, 'x', msg, (size_t)n);
}

/* ---- one request --------------------------------------------------------- */

int kfs_ctl_recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t res = recv(fd, p, len, 0);
		if (res < 0 && errno == EINTR)
			continue;
		if (res <= 0)
			return res < 0 ? errno : EPIPE;
		p += res;
		len -= (size_t)res;
	}
	return 0;
}

/* Design note 1.  Returns 1 when the peer may control the mount. */
static int peer_allowed(struct kfs_ctl *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t self = geteuid();

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		keep_log(LOG_WARNING, "control socket: cannot tell who is "
			 "connected: %s", strerror(errno));
		refuse(c, 1, "keepfs: cannot tell who is asking\n");
		return 0;
	}
	if (cred.uid == self || cred.uid == 0)
		return 1;
	keep_log(LOG_NOTICE, "control socket: refused uid %u (pid %d)",
		 (unsigned)cred.uid, (int)cred.pid);
	refuse(c, 1, "keepfs: only uid %u or root may control this mount\n",
	       (unsigned)self);
	return 0;
}

/*
 * Check the request's header and split its arguments.  Returns the
 * argument count (argv NULL-terminated, pointing into req), or -1 after
 * refusing the request.
 */
static int parse_request(struct kfs_ctl *c, char *req, size_t len,
			 char ***argvp)
{
	static const char magic[] = KFS_CTL_MAGIC " ";
	size_t mlen = sizeof(magic) - 1;

	if (len < mlen || memcmp(req, magic, mlen) != 0) {
		refuse(c, 2, "keepfs: not a keepfs control request\n");
		return -1;
	}
	char *ver = req + mlen;
	char *end = memchr(ver, '\0', len - mlen);
	size_t vlen = end ? (size_t)(end - ver) : 0;
	int digits = end && vlen > 0 && vlen <= 9;
	for (size_t i = 0; digits && i < vlen; i++)
		digits = ver[i] >= '0' && ver[i] <= '9';
	if (!digits) {
		refuse(c, 2, "keepfs: not a keepfs control request\n");
		return -1;
	}
	long v = strtol(ver, NULL, 10);
	if (v != KFS_CTL_VERSION) {
		refuse(c, 2, "keepfs: the daemon speaks control protocol %d, "
		       "the command %ld; use the keepfs that mounted the "
		       "store\n", KFS_CTL_VERSION, v);
		return -1;
	}

	char *p = end + 1, *stop = req + len;
	if (p >= stop || stop[-1] != '\0') {
		refuse(c, 2, "keepfs: %s\n", p >= stop ?
		       "the control request names no command" :
		       "the control request's last argument is not "
		       "terminated");
		return -1;
	}
	int argc = 0;
	for (char *q = p; q < stop; q += strlen(q) + 1)
		argc++;
	char **argv = malloc(((size_t)argc + 1) * sizeof(*argv));
	if (!argv) {
		refuse(c, 1, "keepfs: the daemon is out of memory\n");
		return -1;
	}
	int i = 0;
	for (char *q = p; q < stop; q += strlen(q) + 1)
		argv[i++] = q;
	argv[argc] = NULL;
	*argvp = argv;
	return argc;
}

static void run_handler(struct kfs_ctl *c, int argc, char **argv)
{
	struct kfs_ctld *d = c->fs->ctld;
	static const cookie_io_functions_t out_io = {.write = out_write};
	static const cookie_io_functions_t err_io = {.write = err_write};
	char status[16];
	int st;

	c->out = fopencookie(c, "w", out_io);
	c->err = c->out ? fopencookie(c, "w", err_io) : NULL;
	if (!c->err) {
		if (c->out)
			fclose(c->out);
		refuse(c, 1, "keepfs: the daemon is out of memory\n");
		return;
	}
	setvbuf(c->err, NULL, _IOLBF, 0);

	pthread_mutex_lock(&d->run_lock);
	if (c->fs->cfg->ctl_handler) {
		st = c->fs->cfg->ctl_handler(c, argc, argv);
	} else {
		fprintf(c->err, "keepfs: this daemon takes no commands\n");
		st = 1;
	}
	fflush(c->out);
	fflush(c->err);
	pthread_mutex_unlock(&d->run_lock);

	fclose(c->out);
	fclose(c->err);
	c->out = c->err = NULL;
	int n = snprintf(status, sizeof(status), "%d", st);
	send_frames(c, 'x', status, (size_t)n);
}

static void serve(struct kfs_ctl *c)
{
	char hdr[4];
	char **argv = NULL;

	if (!peer_allowed(c))
		return;
	struct timeval tv = {.tv_sec = CTL_READ_TIMEOUT_S};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = CTL_SEND_TIMEOUT_S;
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	int err = kfs_ctl_recv_all(c->fd, hdr, sizeof(hdr));
	if (err) {
		if (err != EPIPE)
			keep_log(LOG_NOTICE, "control socket: no request: %s",
				 strerror(err));
		return;
	}
	uint32_t len = (uint32_t)(unsigned char)hdr[0] |
		       (uint32_t)(unsigned char)hdr[1] << 8 |
		       (uint32_t)(unsigned char)hdr[2] << 16 |
		       (uint32_t)(unsigned char)hdr[3] << 24;
	if (len > KFS_CTL_REQUEST_MAX) {
		refuse(c, 2, "keepfs: a control request of %lu bytes is "
		       "over the limit of %d\n", (unsigned long)len,
		       KFS_CTL_REQUEST_MAX);
		return;
	}
	char *req = malloc((size_t)len + 1);
	if (!req) {
		refuse(c, 1, "keepfs: the daemon is out of memory\n");
		return;
	}
	err = kfs_ctl_recv_all(c->fd, req, len);
	if (err) {
		keep_log(LOG_NOTICE, "control socket: request cut short: %s",
			 strerror(err == EPIPE ? ECONNRESET : err));
		explicit_bzero(req, len);
		free(req);
		return;
	}
	req[len] = '\0';
	int argc = parse_request(c, req, len, &argv);
	if (argc >= 0)
		run_handler(c, argc, argv);
	free(argv);
	/* a request may carry a secret (a key change): none stays behind */
	explicit_bzero(req, len);
	free(req);
}

static void *conn_main(void *arg)
{
	struct ctl_conn *cn = arg;
	struct kfs_ctld *d = cn->d;
	struct kfs_ctl *c = calloc(1, sizeof(*c));

	if (c) {
		c->fs = d->fs;
		c->fd = cn->fd;
		serve(c);
		free(c);
	}

	pthread_mutex_lock(&d->lock);
	struct ctl_conn **pp = &d->conns;
	while (*pp != cn)
		pp = &(*pp)->next;
	*pp = cn->next;
	close(cn->fd);
	free(cn);
	if (--d->nconns == 0)
		pthread_cond_broadcast(&d->idle);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- the listener -------------------------------------------------------- */

/* Refuse a connection past CTL_MAX_CONNS without a thread. */
static void refuse_busy(struct kfs_ctld *d, int fd)
{
	struct kfs_ctl *c = calloc(1, sizeof(*c));
	if (c) {
		c->fs = d->fs;
		c->fd = fd;
		struct timeval tv = {.tv_sec = 1};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		refuse(c, 1, "keepfs: the daemon has %d commands under way; "
		       "try again\n", CTL_MAX_CONNS);
		free(c);
	}
	close(fd);
}

static void *listen_main(void *arg)
{
	struct kfs_ctld *d = arg;
	struct pollfd pfd[2] = {
		{.fd = d->fd, .events = POLLIN},
		{.fd = d->wake[0], .events = POLLIN},
	};
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

	for (;;) {
		int res = poll(pfd, 2, -1);
		if (res < 0 && errno == EINTR)
			continue;
		if (res < 0) {
			keep_log(LOG_ERR, "control socket: poll: %s",
				 strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		int fd = accept4(d->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN &&
			    errno != ECONNABORTED)
				keep_log(LOG_WARNING, "control socket: "
					 "accept: %s", strerror(errno));
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOMEM || errno == ENOBUFS)
				poll(NULL, 0, 100); /* let some close */
			continue;
		}

		struct ctl_conn *cn = NULL;
		pthread_mutex_lock(&d->lock);
		if (d->nconns < CTL_MAX_CONNS)
			cn = calloc(1, sizeof(*cn));
		if (cn) {
			cn->d = d;
			cn->fd = fd;
			cn->next = d->conns;
			d->conns = cn;
			d->nconns++;
			if (pthread_create(&cn->thread, &attr, conn_main,
					   cn) != 0) {
				d->conns = cn->next;
				d->nconns--;
				free(cn);
				cn = NULL;
			}
		}
		pthread_mutex_unlock(&d->lock);
		if (!cn)
			refuse_busy(d, fd);
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

/* Fill addr with the socket's path (design note 4).  Returns 0 or an
 * errno. */
static int ctl_addr(struct kfs_ctld *d, struct sockaddr_un *addr)
{
	const char *store = d->fs->cfg->store_path;
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	int n = snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/%s",
			 store, KFS_CTL_NAME);
	if (n > 0 && (size_t)n < sizeof(addr->sun_path))
		return 0;
	d->dirfd = open(store, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0)
		return errno;
	snprintf(addr->sun_path, sizeof(addr->sun_path),
		 "/proc/self/fd/%d/%s", d->dirfd, KFS_CTL_NAME);
	return 0;
}

static void ctld_free(struct kfs_ctld *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->wake[0] >= 0)
		close(d->wake[0]);
	if (d->wake[1] >= 0)
		close(d->wake[1]);
	if (d->dirfd >= 0)
		close(d->dirfd);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->run_lock);
	pthread_cond_destroy(&d->idle);
	free(d->path);
	free(d);
}

int kfs_ctl_start(struct kfs *fs)
{
	struct sockaddr_un addr;
	struct stat st;
	struct kfs_ctld *d = calloc(1, sizeof(*d));
	int err = 0;

	if (!d)
		return ENOMEM;
	d->fs = fs;
	d->fd = d->dirfd = d->wake[0] = d->wake[1] = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->run_lock, NULL);
	pthread_cond_init(&d->idle, NULL);

	err = ctl_addr(d, &addr);
	if (!err && !(d->path = strdup(addr.sun_path)))
		err = ENOMEM;
	if (!err && pipe2(d->wake, O_CLOEXEC) != 0)
		err = errno;
	if (!err) {
		d->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (d->fd < 0)
			err = errno;
	}
	/* design note 4: we hold the lock, so whatever is there is stale */
	if (!err && unlink(d->path) != 0 && errno != ENOENT)
		err = errno;
	if (!err && bind(d->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		err = errno;
	/* the directory is 0700: nobody else reaches it before the chmod */
	if (!err && (chmod(d->path, 0600) != 0 || stat(d->path, &st) != 0))
		err = errno;
	if (!err) {
		d->dev = st.st_dev;
		d->ino = st.st_ino;
		if (listen(d->fd, CTL_BACKLOG) != 0)
			err = errno;
	}
	if (!err)
		err = pthread_create(&d->listener, NULL, listen_main, d);
	if (err) {
		if (d->ino)
			unlink(d->path);
		ctld_free(d);
		return err;
	}
	fs->ctld = d;
	return 0;
}

void kfs_ctl_stop(struct kfs *fs)
{
	struct kfs_ctld *d = fs->ctld;
	struct stat st;

	if (!d)
		return;
	/* no new connections */
	while (write(d->wake[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(d->listener, NULL);
	if (stat(d->path, &st) == 0 && st.st_dev == d->dev &&
	    st.st_ino == d->ino)
		unlink(d->path);

	/* clients still reading a request are dropped; commands under way
	 * run to their end */
	pthread_mutex_lock(&d->lock);
	for (struct ctl_conn *cn = d->conns; cn; cn = cn->next)
		shutdown(cn->fd, SHUT_RD);
	while (d->nconns > 0)
		pthread_cond_wait(&d->idle, &d->lock);
	pthread_mutex_unlock(&d->lock);

	fs->ctld = NULL;
	ctld_free(d);
}

/* ---- what a handler may use ---------------------------------------------- */

void *kfs_ctl_ctx(struct kfs_ctl *c)
{
	return c->fs->cfg->ctl_ctx;
}

struct keep_store *kfs_ctl_store(struct kfs_ctl *c)
{
	return c->fs->store;
}

const struct kfs_config *kfs_ctl_config(struct kfs_ctl *c)
{
	return c->fs->cfg;
}

FILE *kfs_ctl_out(struct kfs_ctl *c)
{
	return c->out;
}

FILE *kfs_ctl_err(struct kfs_ctl *c)
{
	return c->err;
}

static int inval_result(int res)
{
	/* ENOENT: the kernel holds no such node or name */
	return res == 0 || res == -ENOENT ? 0 : -res;
}

int kfs_ctl_inval_inode(struct kfs_ctl *c, uint64_t ino)
{
	return inval_result(
		fuse_lowlevel_notify_inval_inode(c->fs->se, ino, 0, 0));
}

int kfs_ctl_inval_entry(struct kfs_ctl *c, uint64_t parent, const char *name)
{
	return inval_result(fuse_lowlevel_notify_inval_entry(
		c->fs->se, parent, name, strlen(name)));
}

int kfs_ctl_snapshot(struct kfs_ctl *c, const char *name, int origin,
		     struct keep_snapshot *out)
{
	struct kfs *fs = c->fs;
	int rc = kfs_snap_create(fs, name, origin, out);

	if (rc == 0) {
		/* the kernel may cache .snapshots' listing and a negative
		 * entry for the new name */
		kfs_ctl_inval_entry(c, KFS_SNAPDIR_NODE, name);
		kfs_ctl_inval_inode(c, KFS_SNAPDIR_NODE);
	}
	return rc;
}

int kfs_ctl_restore(struct kfs_ctl *c, const struct keep_restore_req *req,
		    struct keep_restore_result *res)
{
	return kfs_restore(c->fs, req, res);
}

int kfs_ctl_retain_now(struct kfs_ctl *c)
{
	return kfs_retain_now(c->fs, c->out);
}

void kfs_ctl_policy_changed(struct kfs_ctl *c)
{
	kfs_policy_reload(c->fs);
}

int kfs_ctl_gc(struct kfs_ctl *c, const struct keep_gc_req *req,
	       struct keep_gc_result *res)
{
	if (c->fs->cfg->read_only)
		return EROFS;
	return kfs_gc(c->fs, req, res);
}

/* The names in a directory, gathered before any is invalidated: the
 * kernel takes the directory's lock to drop a name, and an operation that
 * holds it may be waiting for the store, which keep_readdir holds while
 * its callback runs. */
struct dir_names {
	char **names;
	size_t n, cap;
	int oom;
};

static int gather_name(void *ctx, const char *name,
		       const struct keep_attr *attr, uint64_t next_off)
{
	struct dir_names *d = ctx;
	(void)attr;
	(void)next_off;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 64;
		char **p = realloc(d->names, nc * sizeof(*p));
		if (!p) {
			d->oom = 1;
			return 1;
		}
		d->names = p;
		d->cap = nc;
	}
	d->names[d->n] = strdup(name);
	if (!d->names[d->n]) {
		d->oom = 1;
		return 1;
	}
	d->n++;
	return 0;
}

void kfs_ctl_invalidate_all(struct kfs_ctl *c)
{
	struct kfs *fs = c->fs;
	uint64_t *ids;
	size_t n = kfs_node_list(&fs->nodes, KFS_LIST_LIVE, &ids);
	int failed = 0;

	/* the root is not in the table: the kernel holds it for good */
	for (size_t i = 0; i <= n; i++) {
		uint64_t ino = i < n ? ids[i] : KEEP_ROOT_INO;
		struct keep_attr a;
		if (i < n && ino == KEEP_ROOT_INO)
			continue;
		if (kfs_ctl_inval_inode(c, ino))
			failed++;
		if (keep_getattr(fs->store, KEEP_LIVE, ino, &a) == 0 &&
		    S_ISDIR(a.mode)) {
			struct dir_names d = {NULL, 0, 0, 0};
			keep_readdir(fs->store, KEEP_LIVE, ino, 0, gather_name,
				     &d);
			if (d.oom)
				failed++;
			for (size_t k = 0; k < d.n; k++) {
				kfs_ctl_inval_entry(c, ino, d.names[k]);
				free(d.names[k]);
			}
			free(d.names);
		}
	}
	if (failed)
		keep_log(LOG_WARNING, "the kernel refused to drop %d cached "
			 "nodes", failed);
	free(ids);
}
