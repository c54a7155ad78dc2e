/*
 * daemon.c - the life of a keepfs daemon.
 *
 * kfs_run() opens the store, mounts it, serves FUSE requests on a pool of
 * threads, and on unmount (or SIGTERM/SIGINT/SIGHUP) makes the final
 * commit.  This file also owns the commit timer, the FUSE init/destroy
 * callbacks, libfuse's log routing and the ops table.
 *
 * Design notes:
 *  1. The ready fd gets exactly one line, "OK" once the mount is live or
 *     "ERR <message>" for the first failure before that, then is closed.
 *  2. The commit timer commits once the oldest uncommitted change is older
 *     than commit_interval; it is stopped before the store is closed, and
 *     keep_store_close() makes the last commit.
 *  3. Nodes the kernel still holds at unmount are forgotten in the store,
 *     so files unlinked while open are reaped at a clean unmount.
 *  4. The control socket (ctl.c) listens before the ready line is written
 *     and is stopped, its commands finished, before the store is closed.
 */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "kfs_i.h"

int kfs_errno(int rc)
{
	if (rc == 0)
		return 0;
	if (rc < 0 && rc != KEEP_E_READONLY && rc != KEEP_E_NOMEM)
		keep_log(LOG_ERR, "store error: %s", keep_strerror(rc));
	return keep_errno(rc);
}

/* Nanoseconds since the epoch, before 1970 too, as a timespec. */
static struct timespec ts_of(int64_t ns)
{
	struct timespec ts;
	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

void kfs_stat_of(const struct kfs *fs, const struct keep_attr *a,
		 struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_rdev = (dev_t)a->rdev;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = (blksize_t)fs->block_size;
	st->st_atim = ts_of(a->atime_ns);
	st->st_mtim = ts_of(a->mtime_ns);
	st->st_ctim = ts_of(a->ctime_ns);
}

void kfs_reply_node(fuse_req_t req, uint64_t nodeid, const struct keep_attr *a,
		    double timeout)
{
	struct kfs *fs = kfs_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = nodeid;
	e.generation = 1; /* inode numbers are never reused */
	e.attr_timeout = timeout;
	e.entry_timeout = timeout;
	kfs_stat_of(fs, a, &e.attr);
	e.attr.st_ino = kfs_st_ino(nodeid);
	if (fuse_reply_entry(req, &e) != 0)
		kfs_forget_node(fs, nodeid, 1); /* the kernel never saw it */
}

void kfs_reply_entry(fuse_req_t req, uint64_t slot, const struct keep_attr *a)
{
	struct kfs *fs = kfs_of(req);
	uint64_t nodeid;

	int err = kfs_node_ref(&fs->nodes, slot, a->ino, &nodeid);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	kfs_reply_node(req, nodeid, a, slot ? KFS_VIEW_TIMEOUT : KFS_TIMEOUT);
}

void kfs_forget_node(struct kfs *fs, uint64_t nodeid, uint64_t n)
{
	uint64_t view, ino;
	if (kfs_node_unref(&fs->nodes, nodeid, n, &view, &ino) &&
	    view == KEEP_LIVE)
		keep_forget(fs->store, ino);
}

void kfs_close_node(struct kfs *fs, uint64_t nodeid, int writer)
{
	uint64_t view, ino;
	if (kfs_node_close(&fs->nodes, nodeid, writer, &view, &ino) &&
	    view == KEEP_LIVE)
		keep_forget(fs->store, ino);
}

/* ---- requests answered off the request threads --------------------------- */

struct offload {
	struct kfs *fs;
	void (*fn)(void *);
	void *arg;
};

static void *offload_main(void *p)
{
	struct offload o = *(struct offload *)p;
	free(p);
	o.fn(o.arg);
	pthread_mutex_lock(&o.fs->offload_mu);
	if (--o.fs->offload_n == 0)
		pthread_cond_broadcast(&o.fs->offload_cond);
	pthread_mutex_unlock(&o.fs->offload_mu);
	return NULL;
}

int kfs_offload(struct kfs *fs, void (*fn)(void *), void *arg)
{
	struct offload *o = malloc(sizeof(*o));
	pthread_attr_t at;
	pthread_t t;
	int rc;

	if (!o)
		return ENOMEM;
	o->fs = fs;
	o->fn = fn;
	o->arg = arg;
	rc = pthread_attr_init(&at);
	if (!rc)
		rc = pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (!rc) {
		pthread_mutex_lock(&fs->offload_mu);
		fs->offload_n++;
		pthread_mutex_unlock(&fs->offload_mu);
		rc = pthread_create(&t, &at, offload_main, o);
		if (rc) {
			pthread_mutex_lock(&fs->offload_mu);
			fs->offload_n--;
			pthread_mutex_unlock(&fs->offload_mu);
		}
	}
	pthread_attr_destroy(&at);
	if (rc) {
		free(o);
		keep_log(LOG_WARNING, "cannot start a thread: %s",
			 strerror(rc));
		return ENOMEM; /* EAGAIN means something else to callers */
	}
	return 0;
}

void kfs_offload_wait(struct kfs *fs)
{
	pthread_mutex_lock(&fs->offload_mu);
	while (fs->offload_n)
		pthread_cond_wait(&fs->offload_cond, &fs->offload_mu);
	pthread_mutex_unlock(&fs->offload_mu);
}

int kfs_commit(struct kfs *fs)
{
	kfs_times_restore_all(fs);
	int rc = keep_commit(fs->store, NULL);
	if (rc)
		keep_log(LOG_ERR, "commit failed: %s", keep_strerror(rc));
	return rc;
}

/* ---- commit timer -------------------------------------------------------- */

static int64_t now_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *timer_main(void *arg)
{
	struct kfs *fs = arg;
	int64_t interval = (int64_t)(fs->cfg->commit_interval * 1e9);
	int64_t tick = interval / 4;
	int failing = 0;

	if (tick > 100000000)
		tick = 100000000;
	if (tick < 1000000)
		tick = 1000000;

	pthread_mutex_lock(&fs->timer_lock);
	while (!fs->timer_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t t = (int64_t)ts.tv_nsec + tick;
		ts.tv_sec += t / 1000000000;
		ts.tv_nsec = t % 1000000000;
		pthread_cond_timedwait(&fs->timer_cond, &fs->timer_lock, &ts);
		if (fs->timer_stop)
			break;
		pthread_mutex_unlock(&fs->timer_lock);

		int64_t since = keep_dirty_since(fs->store);
		if (since != 0 && now_mono_ns() - since >= interval) {
			kfs_times_restore_all(fs);
			/* nobody waits on this one: it must survive a crash
			 * of the daemon, not a power loss (the contract) */
			int rc = keep_commit_nosync(fs->store, NULL);
			if (rc && !failing)
				keep_log(LOG_ERR, "commit failed: %s",
					 keep_strerror(rc));
			failing = rc != 0;
		}

		pthread_mutex_lock(&fs->timer_lock);
	}
	pthread_mutex_unlock(&fs->timer_lock);
	return NULL;
}

static int timer_start(struct kfs *fs)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&fs->timer_lock, NULL);
	fs->timer_stop = 0;

	int err = pthread_create(&fs->timer, NULL, timer_main, fs);
	if (err) {
		pthread_cond_destroy(&fs->timer_cond);
		pthread_mutex_destroy(&fs->timer_lock);
		return err;
	}
	fs->timer_running = 1;
	return 0;
}

static void timer_stop(struct kfs *fs)
{
	if (!fs->timer_running)
		return;
	pthread_mutex_lock(&fs->timer_lock);
	fs->timer_stop = 1;
	pthread_cond_signal(&fs->timer_cond);
	pthread_mutex_unlock(&fs->timer_lock);
	pthread_join(fs->timer, NULL);
	pthread_cond_destroy(&fs->timer_cond);
	pthread_mutex_destroy(&fs->timer_lock);
	fs->timer_running = 0;
}

/* ---- FUSE init / destroy ------------------------------------------------- */

static void want(struct fuse_conn_info *conn, unsigned cap)
{
	if (conn->capable & cap)
		conn->want |= cap;
}

static void kfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct kfs *fs = userdata;

	want(conn, FUSE_CAP_ASYNC_READ);
	want(conn, FUSE_CAP_ATOMIC_O_TRUNC);
	if (fs->cfg->readdirplus) {
		want(conn, FUSE_CAP_READDIRPLUS);
		want(conn, FUSE_CAP_READDIRPLUS_AUTO);
	} else {
		conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS |
					  FUSE_CAP_READDIRPLUS_AUTO);
	}
	want(conn, FUSE_CAP_PARALLEL_DIROPS);
	want(conn, FUSE_CAP_CACHE_SYMLINKS);
	if (!fs->cfg->read_only && fs->cfg->writeback)
		want(conn, FUSE_CAP_WRITEBACK_CACHE);
	else
		conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* The kernel does POSIX and flock locks locally (design of fs/). */
	conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	/* Only we change the data, and we invalidate what we change
	 * ourselves; an mtime that differs after a writeback must not drop
	 * the page cache. */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	fs->writeback = !!(conn->want & FUSE_CAP_WRITEBACK_CACHE);
	/* The kernel stamps writes itself and sends the times with setattr;
	 * the store's own stamp would be a different, later time. */
	keep_store_set_write_times(fs->store, !fs->writeback);

	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	if (conn->max_background < 64)
		conn->max_background = 64;
	keep_log(LOG_DEBUG, "fuse protocol %u.%u, capable 0x%x, want 0x%x",
		 conn->proto_major, conn->proto_minor, conn->capable,
		 conn->want);
}

static void forget_left(void *ctx, uint64_t view, uint64_t ino)
{
	struct kfs *fs = ctx;
	if (view == KEEP_LIVE)
		keep_forget(fs->store, ino);
}

static void kfs_destroy(void *userdata)
{
	struct kfs *fs = userdata;
	/* Design note 3: the kernel drops everything at unmount. */
	kfs_times_restore_all(fs);
	kfs_nodes_release(&fs->nodes, forget_left, fs);
	kfs_nodes_init(&fs->nodes);
}

static const struct fuse_lowlevel_ops kfs_ops = {
	.init = kfs_init,
	.destroy = kfs_destroy,
	.lookup = kfs_lookup,
	.forget = kfs_forget,
	.forget_multi = kfs_forget_multi,
	.getattr = kfs_getattr,
	.setattr = kfs_setattr,
	.readlink = kfs_readlink,
	.mknod = kfs_mknod,
	.mkdir = kfs_mkdir,
	.unlink = kfs_unlink,
	.rmdir = kfs_rmdir,
	.symlink = kfs_symlink,
	.rename = kfs_rename,
	.link = kfs_link,
	.open = kfs_open,
	.create = kfs_create,
	.read = kfs_read,
	.write = kfs_write,
	.release = kfs_release,
	.fsync = kfs_fsync,
	.opendir = kfs_opendir,
	.readdir = kfs_readdir,
	.readdirplus = kfs_readdirplus,
	.releasedir = kfs_releasedir,
	.fsyncdir = kfs_fsyncdir,
	.statfs = kfs_statfs,
	.setxattr = kfs_setxattr,
	.getxattr = kfs_getxattr,
	.listxattr = kfs_listxattr,
	.removexattr = kfs_removexattr,
	.fallocate = kfs_fallocate,
	.lseek = kfs_lseek,
	.copy_file_range = kfs_copy_file_range,
};

/* ---- libfuse's log ------------------------------------------------------- */

/* The last error libfuse reported, for the ready fd's "ERR" line. */
static char fuse_last_error[256];

static void fuse_log_to_keep(enum fuse_log_level level, const char *fmt,
			     va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (!n)
		return;
	if ((int)level <= LOG_ERR) {
		const char *m = msg;
		if (!strncmp(m, "fuse: ", 6))
			m += 6;
		size_t len = strlen(m);
		if (len >= sizeof(fuse_last_error))
			len = sizeof(fuse_last_error) - 1;
		memcpy(fuse_last_error, m, len);
		fuse_last_error[len] = '\0';
	}
	keep_log((int)level, "%s", msg);
}

/* ---- kfs_run ------------------------------------------------------------- */

/* Design note 1: write one line to the ready fd and close it. */
static void ready_line(int *fd, const char *line)
{
	if (*fd < 0)
		return;
	size_t len = strlen(line);
	while (len) {
		ssize_t res = write(*fd, line, len);
		if (res < 0 && errno == EINTR)
			continue;
		if (res <= 0)
			break;
		line += res;
		len -= (size_t)res;
	}
	close(*fd);
	*fd = -1;
}

static void ready_err(int *fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ready_err(int *fd, const char *fmt, ...)
{
	char msg[1024], line[1100];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	keep_log(LOG_ERR, "%s", msg);
	snprintf(line, sizeof(line), "ERR %s\n", msg);
	ready_line(fd, line);
}

static const char *fuse_error(void)
{
	return fuse_last_error[0] ? fuse_last_error : "see the log";
}

/* Build libfuse's argument vector.  Returns 0 or ENOMEM. */
static int build_args(const struct kfs_config *cfg, struct fuse_args *args)
{
	char *opts = NULL;
	int err = 0;

	if (fuse_opt_add_arg(args, "keepfs") ||
	    fuse_opt_add_opt(&opts, "default_permissions") ||
	    fuse_opt_add_opt(&opts, "subtype=keepfs"))
		err = ENOMEM;
	if (!err) {
		char *fsname = malloc(strlen(cfg->store_path) + 8);
		if (!fsname) {
			err = ENOMEM;
		} else {
			sprintf(fsname, "fsname=%s", cfg->store_path);
			if (fuse_opt_add_opt_escaped(&opts, fsname))
				err = ENOMEM;
			free(fsname);
		}
	}
	if (!err && cfg->read_only && fuse_opt_add_opt(&opts, "ro"))
		err = ENOMEM;
	if (!err && cfg->allow_other && fuse_opt_add_opt(&opts, "allow_other"))
		err = ENOMEM;
	if (!err && cfg->allow_root && fuse_opt_add_opt(&opts, "allow_root"))
		err = ENOMEM;
	if (!err && cfg->fuse_opts && cfg->fuse_opts[0] &&
	    fuse_opt_add_opt(&opts, cfg->fuse_opts))
		err = ENOMEM;
	if (!err && (fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, opts)))
		err = ENOMEM;
	if (!err && cfg->debug && fuse_opt_add_arg(args, "-d"))
		err = ENOMEM;
	free(opts);
	return err;
}

int kfs_run(const struct kfs_config *given, int ready_fd)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	/* the options in force: a replica's store turns read_only on */
	struct kfs_config own = *given, *cfg = &own;
	struct kfs fs;
	int status = 1;
	int rc;

	memset(&fs, 0, sizeof(fs));
	fs.cfg = cfg;
	{
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		fs.snapdir_ns = (int64_t)now.tv_sec * 1000000000 +
				now.tv_nsec;
	}
	/* Block buffers are filled by request threads and freed by the
	 * committer: with an arena per thread, glibc keeps every thread's
	 * freed memory apart and the daemon's size creeps up.  Two arenas
	 * keep it flat at no measurable cost. */
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 2);
#endif
	pthread_mutex_init(&fs.times_lock, NULL);
	pthread_mutex_init(&fs.flush_lock, NULL);
	pthread_mutex_init(&fs.policy_mu, NULL);
	pthread_mutex_init(&fs.gc_lock, NULL);
	{
		/* a restore must not wait behind a stream of lookups */
		pthread_rwlockattr_t ra;
		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(
		    &ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&fs.entry_gate, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	pthread_mutex_init(&fs.flush_mu, NULL);
	pthread_mutex_init(&fs.offload_mu, NULL);
	pthread_cond_init(&fs.offload_cond, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&fs.flush_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	fuse_last_error[0] = '\0';
	fuse_set_log_func(fuse_log_to_keep);
	if (cfg->debug)
		keep_log_set_level(LOG_DEBUG);

	if (!cfg->store_path || !cfg->mountpoint) {
		ready_err(&ready_fd, "no store or mount point given");
		goto out;
	}
	if (kfs_nodes_init(&fs.nodes)) {
		ready_err(&ready_fd, "out of memory");
		goto out;
	}

	rc = keep_store_open_secret(cfg->store_path, KEEP_OPEN_WRITE,
				    cfg->secret, &fs.store);
	keep_secret_wipe(cfg->secret); /* the store holds its own keys */
	if (rc == KEEP_E_LOCKED) {
		pid_t pid = keep_store_lock_owner(cfg->store_path);
		if (pid > 0)
			ready_err(&ready_fd, "store '%s' is locked by pid %ld",
			      cfg->store_path, (long)pid);
		else
			ready_err(&ready_fd, "store '%s' is locked by another "
			      "process", cfg->store_path);
		goto out_nodes;
	}
	if (rc) {
		ready_err(&ready_fd, "cannot open store '%s': %s%s",
			  cfg->store_path, keep_strerror(rc),
			  rc == KEEP_E_BADKEY ? "; nothing was mounted or "
						"changed"
					      : "");
		goto out_nodes;
	}
	{
		/* a replica's live tree is its newest received snapshot:
		 * writing there would break the next receive */
		char of[64] = "";
		rc = keep_replica_of(fs.store, of, sizeof(of));
		if (!rc && of[0] && cfg->rw_given) {
			ready_err(&ready_fd, "store '%s' is a replica: it mounts "
				  "read-only ('keepfs promote %s' makes it an "
				  "ordinary writable store)", cfg->store_path,
				  cfg->store_path);
			goto out_store;
		}
		if (!rc && of[0]) {
			cfg->read_only = 1;
			keep_log(LOG_INFO, "store '%s' is a replica: mounted "
				 "read-only", cfg->store_path);
		}
		if (rc) {
			ready_err(&ready_fd, "cannot read store '%s': %s",
				  cfg->store_path, keep_strerror(rc));
			goto out_store;
		}
	}
	keep_store_set_dirty_limit(fs.store, cfg->dirty_limit);
	fs.block_size = keep_store_block_size(fs.store);
	rc = kfs_policy_reload(&fs);
	if (rc) {
		ready_err(&ready_fd, "cannot read the settings of '%s': %s",
			  cfg->store_path, keep_strerror(rc));
		goto out_store;
	}

	if (build_args(cfg, &args)) {
		ready_err(&ready_fd, "out of memory");
		goto out_store;
	}
	se = fuse_session_new(&args, &kfs_ops, sizeof(kfs_ops), &fs);
	if (!se) {
		ready_err(&ready_fd, "cannot start a fuse session: %s",
		      fuse_error());
		goto out_args;
	}
	fs.se = se;
	if (fuse_set_signal_handlers(se)) {
		ready_err(&ready_fd, "cannot set signal handlers");
		goto out_session;
	}
	if (fuse_session_mount(se, cfg->mountpoint)) {
		ready_err(&ready_fd, "cannot mount at '%s': %s",
		      cfg->mountpoint, fuse_error());
		goto out_signals;
	}
	rc = kfs_rawio_start(&fs);
	if (rc) {
		ready_err(&ready_fd, "cannot set up the FUSE device: %s",
			  strerror(rc));
		goto out_unmount;
	}
	rc = kfs_notify_start(&fs);
	if (rc) {
		ready_err(&ready_fd, "cannot start a thread: %s",
			  strerror(rc));
		goto out_unmount;
	}
	rc = timer_start(&fs);
	if (rc) {
		ready_err(&ready_fd, "cannot start the commit timer: %s",
		      strerror(rc));
		goto out_notify;
	}
	rc = kfs_retain_start(&fs);
	if (rc) {
		ready_err(&ready_fd, "cannot start the retention thread: %s",
			  strerror(rc));
		goto out_timer;
	}
	rc = kfs_ctl_start(&fs);
	if (rc) {
		ready_err(&ready_fd, "cannot listen on '%s/%s': %s",
			  cfg->store_path, KFS_CTL_NAME, strerror(rc));
		goto out_retain;
	}

	ready_line(&ready_fd, "OK\n");
	keep_log(LOG_INFO, "store '%s' mounted at '%s'", cfg->store_path,
		 cfg->mountpoint);

	/* As many idle threads as threads: none ever exits, since starting
	 * threads costs more than keeping them. */
	struct fuse_loop_config *loop = fuse_loop_cfg_create();
	int res = -ENOMEM;
	if (loop) {
		fuse_loop_cfg_set_max_threads(loop, cfg->threads);
		fuse_loop_cfg_set_idle_threads(loop, cfg->threads);
		res = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	if (res < 0)
		keep_log(LOG_ERR, "fuse loop failed: %s", strerror(-res));
	else
		status = 0;

	kfs_ctl_stop(&fs);
out_retain:
	kfs_retain_stop(&fs);
out_timer:
	timer_stop(&fs);
out_notify:
	kfs_notify_stop(&fs);
out_unmount:
	fuse_session_unmount(se);
	/* After a signal the kernel may still hold requests that offloaded
	 * threads wait on; the unmount closed /dev/fuse, which ends them. */
	kfs_offload_wait(&fs);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	fuse_opt_free_args(&args);
out_store:
	rc = keep_store_close(fs.store);
	if (rc) {
		keep_log(LOG_ERR, "final commit of '%s' failed: %s",
			 cfg->store_path, keep_strerror(rc));
		status = 1;
	} else if (status == 0) {
		keep_log(LOG_INFO, "store '%s' unmounted", cfg->store_path);
	}
out_nodes:
	kfs_nodes_release(&fs.nodes, NULL, NULL);
out:
	if (ready_fd >= 0)
		close(ready_fd);
	fuse_set_log_func(NULL);
	pthread_mutex_destroy(&fs.times_lock);
	pthread_mutex_destroy(&fs.flush_lock);
	pthread_rwlock_destroy(&fs.entry_gate);
	pthread_mutex_destroy(&fs.policy_mu);
	pthread_mutex_destroy(&fs.gc_lock);
	pthread_mutex_destroy(&fs.flush_mu);
	pthread_cond_destroy(&fs.flush_cond);
	pthread_mutex_destroy(&fs.offload_mu);
	pthread_cond_destroy(&fs.offload_cond);
	return status;
}
