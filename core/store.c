/*
 * store.c - store lifecycle, the writer lock, commits and statistics.
 *
 * Design notes:
 *
 *  1. One writer.  KEEP_OPEN_WRITE holds an exclusive flock() on
 *     STORE/lock for the life of the handle; the pid in that file only
 *     names the holder, the flock is the truth.
 *  2. The open commit O = last commit + 1.  Every change made through the
 *     handle goes into one SQLite write transaction, begun lazily at the
 *     first change, whose rows are born in O.
 *  3. The commit pipeline (keep_commit):
 *       a. under commit_mu and mu, the dirty-block map is moved aside
 *          ("inflight") when it is large;
 *       b. without mu, the inflight blocks are hashed and compressed, so
 *          readers and writers proceed meanwhile (new writes go to a fresh
 *          dirty map; reads look in dirty, then inflight, then the rows);
 *       c. under mu, whatever was dirtied meanwhile is encoded too, all
 *          blocks are written to rows (a newer dirty version wins over the
 *          inflight one), the commits row is inserted and the transaction
 *          COMMITs.  Everything changed before that point is in the
 *          commit, data and metadata alike: a commit is a true point in
 *          time.
 *     Commits asked for by fsync are made durable by syncing the WAL;
 *     the others (timer, full dirty cache) are not waited for: they
 *     survive a process crash at once and a power loss at the next sync.
 *     The sync runs under commit_mu alone (store_commit): reads, writes
 *     and metadata operations go on while the disk works, and the next
 *     commit waits for it.
 *     A change to the snapshots table (snap.c) rides in step c, in the
 *     same SQLite transaction as the commit it names, so no crash can
 *     leave a commit without its snapshot or the reverse; with nothing
 *     to commit it is committed alone, naming the last commit.  Either
 *     way it is synced before the call returns.
 *  4. A failed commit rolls the transaction back and makes the handle
 *     read-only (sticky): the store on disk is still the previous commit.
 *  5. Crash recovery needs nothing but SQLite's own: an uncommitted
 *     transaction never reached the database.  On open for writing,
 *     inodes left with no links (unlinked while open) are reclaimed.
 *  6. Commit times grow strictly with commit ids: a commit made while
 *     CLOCK_REALTIME reads at or before the previous commit's time gets
 *     that time + 1 ns.  "The newest commit at or before T" is then one
 *     index seek (db.c, keep_commit_at), and a point in time never names
 *     an older commit than one made before it.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "keep_i.h"

#define DB_NAME "store.db"
#define LOCK_NAME "lock"
#define DEFAULT_PAGE_SIZE 16384
#define DEFAULT_DIRTY_LIMIT (8u << 20)
/* Dirty data smaller than this is encoded inside the commit's critical
 * section; larger sets are encoded outside it first. */
#define ENCODE_OUTSIDE_BYTES (1u << 20)

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int keep_is_store(const char *path)
{
	char *db = path_join(path, DB_NAME);
	struct stat st;
	int yes = db && stat(db, &st) == 0 && S_ISREG(st.st_mode);

	free(db);
	return yes;
}

static void make_uuid(char out[37])
{
	uint8_t u[16];

	keep_random(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

static bool pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

void store_remove_files(const char *path)
{
	static const char *const names[] = {DB_NAME, DB_NAME "-wal",
					    DB_NAME "-shm", LOCK_NAME};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *p = path_join(path, names[i]);
		if (p)
			unlink(p);
		free(p);
	}
}

int store_sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}

bool store_dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return false;
	while (empty && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

int keep_store_init(const char *path, const struct keep_init_opts *opts)
{
	struct keep_init_opts o = opts ? *opts : (struct keep_init_opts){0};
	struct keep_store tmp = {0};
	bool made_dir = false;
	char *db = NULL, *lock = NULL;
	int rc = 0, fd;
	struct stat st;

	if (keep_codec_global_init())
		return KEEP_E_NOMEM;
	if (!o.block_size)
		o.block_size = KEEP_DEFAULT_BLOCK_SIZE;
	if (!o.page_size)
		o.page_size = DEFAULT_PAGE_SIZE;
	if (!pow2_in(o.block_size, KEEP_MIN_BLOCK_SIZE, KEEP_MAX_BLOCK_SIZE) ||
	    !pow2_in(o.page_size, 512, 65536))
		return KEEP_E_INVAL;

	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return ENOTDIR;
		if (keep_is_store(path))
			return KEEP_E_EXISTS;
		if (!store_dir_is_empty(path))
			return KEEP_E_EXISTS;
	} else if (errno == ENOENT) {
		if (mkdir(path, 0700) != 0)
			return errno;
		made_dir = true;
	} else {
		return errno;
	}
	chmod(path, 0700);

	db = path_join(path, DB_NAME);
	lock = path_join(path, LOCK_NAME);
	if (!db || !lock) {
		rc = KEEP_E_NOMEM;
		goto fail;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = errno;
		goto fail;
	}
	close(fd);

	make_uuid(tmp.uuid);
	tmp.flags = KEEP_OPEN_WRITE;
	if (o.encrypt) {
		struct keep_keys *k = NULL;
		char wrap[512];
		rc = crypt_keys_new(&k);
		if (!rc)
			rc = crypt_wrap_secret(k, o.encrypt, wrap, sizeof(wrap));
		crypt_keys_free(k);
		if (!rc && !(tmp.wrap_text = strdup(wrap)))
			rc = KEEP_E_NOMEM;
		if (rc)
			goto fail;
		tmp.encrypted = true;
	}
	rc = db_open(&tmp, db, true, false);
	if (rc)
		goto fail;
	rc = db_create_schema(&tmp, &o, tmp.uuid, keep_clock_ns());
	db_close(&tmp);
	if (rc)
		goto fail;
	free(tmp.wrap_text);
	tmp.wrap_text = NULL;
	chmod(db, 0600);
	store_sync_dir(path); /* make the new directory entries durable */
	free(db);
	free(lock);
	return 0;

fail:
	free(tmp.wrap_text);
	store_remove_files(path);
	if (made_dir)
		rmdir(path);
	free(db);
	free(lock);
	return rc;
}

pid_t keep_store_lock_owner(const char *path)
{
	char *lock = path_join(path, LOCK_NAME);
	char buf[32] = {0};
	pid_t pid = 0;
	int fd;

	if (!lock)
		return -1;
	fd = open(lock, O_RDONLY | O_CLOEXEC);
	free(lock);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
		close(fd);
		return 0;
	}
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		pid = (pid_t)strtol(buf, NULL, 10);
	close(fd);
	return pid > 0 ? pid : -1;
}

static int take_lock(struct keep_store *s)
{
	char *lock = path_join(s->path, LOCK_NAME);
	char buf[32];
	int fd, n;

	if (!lock)
		return KEEP_E_NOMEM;
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(lock);
	if (fd < 0)
		return errno;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		close(fd);
		return err == EWOULDBLOCK ? KEEP_E_LOCKED : err;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		keep_log(LOG_WARNING, "cannot record the pid in the lock file");
	s->lock_fd = fd;
	return 0;
}

static void store_free(struct keep_store *s)
{
	data_encoder_stop(s);
	db_rpool_close(s);
	db_journal_close(s);
	db_close(s);
	dcache_free(s);
	dmap_release(&s->dirty);
	dmap_release(&s->inflight);
	bufpool_release(&s->pool);
	icache_release(&s->icache);
	keep_codec_free(s->codec);
	if (s->lock_fd >= 0) {
		/* the pid is stale once we are gone */
		if (ftruncate(s->lock_fd, 0) != 0)
			keep_log(LOG_DEBUG, "cannot clear the lock file");
		close(s->lock_fd);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->commit_mu);
	crypt_keys_free(s->keys);
	free(s->wrap_text);
	free(s->path);
	free(s);
}

/* Reclaim inodes that lost their last link while open before a crash. */
static int reap_orphans(struct keep_store *s)
{
	uint64_t inos[256];
	size_t n;
	int rc;

	do {
		pthread_mutex_lock(&s->mu);
		rc = ns_flush(s);
		if (!rc)
			rc = db_orphans(s, inos, 256, &n);
		for (size_t i = 0; !rc && i < n; i++) {
			rc = ns_reclaim(s, inos[i]);
		}
		pthread_mutex_unlock(&s->mu);
		if (!rc && n)
			keep_log(LOG_NOTICE, "reclaimed %zu files unlinked while open", n);
	} while (!rc && n == 256);
	return rc;
}

int keep_store_open(const char *path, unsigned flags, struct keep_store **out)
{
	return keep_store_open_secret(path, flags, NULL, out);
}

/*
 * A secret is tried on the database file alone first (db_peek_meta): a
 * wrong one is refused before the store's lock, WAL or shm are touched.
 * The keys it gives are kept for unlock() when the wrapped key read
 * there is the one the open finds.
 */
struct prekeys {
	struct keep_keys *keys;
	char wrap[512];
};

/* The store's wrapped key, read without its lock or a writable
 * connection (db_peek_meta): 0, ENOENT (a plain store), or EAGAIN. */
static int peek_wrap(const char *path, char *buf, size_t len)
{
	char *db = path_join(path, DB_NAME);
	int rc;

	if (!db)
		return KEEP_E_NOMEM;
	rc = db_peek_meta(db, "key_wrap", buf, len);
	free(db);
	return rc;
}

static int precheck(const char *path, const struct keep_secret *secret,
		    struct prekeys *pk)
{
	int rc = peek_wrap(path, pk->wrap, sizeof(pk->wrap));

	if (rc == ENOENT)
		return KEEP_E_INVAL; /* a plain store */
	if (rc)
		return 0; /* the open will tell */
	return crypt_unwrap_secret(pk->wrap, secret, &pk->keys);
}

/* After the meta is read: take the keys of an encrypted store, before
 * anything is written. */
static int unlock(struct keep_store *s, const struct keep_secret *secret,
		  struct prekeys *pk)
{
	if (!s->encrypted)
		return secret ? KEEP_E_INVAL : 0;
	if (!secret)
		return (s->flags & KEEP_OPEN_WRITE) &&
				       !(s->flags & KEEP_OPEN_NOKEY)
			       ? KEEP_E_NEEDKEY
			       : 0;
	if (pk->keys && strcmp(pk->wrap, s->wrap_text) == 0) {
		s->keys = pk->keys;
		pk->keys = NULL;
		return 0;
	}
	return crypt_unwrap_secret(s->wrap_text, secret, &s->keys);
}

int keep_store_open_secret(const char *path, unsigned flags,
			   const struct keep_secret *secret,
			   struct keep_store **out)
{
	struct keep_store *s;
	struct stat st;
	char *db;
	int rc;

	if (keep_codec_global_init())
		return KEEP_E_NOMEM;
	if (stat(path, &st) != 0)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return ENOTDIR;
	if (!keep_is_store(path))
		return KEEP_E_NOTSTORE;
	struct prekeys pk = {0};
	if (secret && (rc = precheck(path, secret, &pk)) != 0)
		return rc;

	s = calloc(1, sizeof(*s));
	if (!s) {
		crypt_keys_free(pk.keys);
		return KEEP_E_NOMEM;
	}
	s->lock_fd = -1;
	s->flags = flags;
	s->dirty_limit = DEFAULT_DIRTY_LIMIT;
	{
		/* recursive: a readdir callback may call back into the store */
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&s->mu, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	pthread_mutex_init(&s->commit_mu, NULL);
	dmap_init(&s->dirty, &s->pool);
	dmap_init(&s->inflight, &s->pool);
	s->path = strdup(path);
	db = path_join(path, DB_NAME);
	if (!s->path || !db) {
		free(db);
		crypt_keys_free(pk.keys);
		store_free(s);
		return KEEP_E_NOMEM;
	}
	rc = (flags & KEEP_OPEN_WRITE) ? take_lock(s) : 0;
	if (!rc)
		rc = db_open(s, db, false, !(flags & KEEP_OPEN_WRITE));
	if (!rc)
		rc = db_load_meta(s);
	if (!rc)
		rc = unlock(s, secret, &pk);
	if (!rc) {
		char of[64];
		s->replica = db_meta_text(s, "replica_of", of, sizeof(of)) == 0 &&
			     of[0];
	}
	crypt_keys_free(pk.keys);
	if (!rc && (flags & KEEP_OPEN_WRITE))
		rc = db_upgrade(s);
	if (!rc && (flags & KEEP_OPEN_WRITE))
		rc = db_journal_upgrade(s);
	if (!rc && (flags & KEEP_OPEN_WRITE))
		rc = gc_setup(s);
	if (!rc) {
		struct keep_commit_info last;
		s->pool.size = s->block_size;
		s->pool.max = (8u << 20) / s->block_size;
		s->open_commit = db_last_commit(s) + 1;
		s->synced = s->open_commit - 1;
		if (db_commit_get(s, s->open_commit - 1, &last) == 0)
			s->last_commit_ns = last.time_ns;
		rc = db_rpool_open(s, db);
	}
	if (!rc)
		rc = dcache_new(s);
	if (!rc && !(s->codec = keep_codec_new()))
		rc = KEEP_E_NOMEM;
	if (!rc && (flags & KEEP_OPEN_WRITE))
		rc = data_encoder_start(s);
	free(db);
	if (!rc && (flags & KEEP_OPEN_WRITE))
		rc = reap_orphans(s);
	if (!rc && (flags & KEEP_OPEN_WRITE))
		rc = keep_commit(s, NULL);
	if (rc) {
		store_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int keep_store_close(struct keep_store *s)
{
	int rc = 0;

	if (!s)
		return 0;
	if (s->flags & KEEP_OPEN_WRITE) {
		/* whatever the file system layer did not forget is unused now */
		rc = keep_writable(s) ? 0 : reap_orphans(s);
		int rc2 = keep_commit(s, NULL);
		if (!rc)
			rc = rc2;
		pthread_mutex_lock(&s->mu);
		if (s->in_tx)
			db_rollback(s);
		pthread_mutex_unlock(&s->mu);
	}
	store_free(s);
	return rc;
}

int keep_store_is_encrypted(const struct keep_store *s)
{
	return s->encrypted ? crypt_wrap_kind(s->wrap_text) : 0;
}

int keep_store_encrypted(const char *path, int *kind)
{
	struct keep_store *s;
	char wrap[512];
	struct stat st;
	int rc;

	if (stat(path, &st) != 0)
		return errno;
	if (!keep_is_store(path))
		return KEEP_E_NOTSTORE;
	rc = peek_wrap(path, wrap, sizeof(wrap));
	if (rc == KEEP_E_NOMEM)
		return rc;
	if (rc == ENOENT) {
		*kind = 0;
		return 0;
	}
	if (rc == 0) {
		rc = crypt_wrap_kind(wrap);
		if (rc < 0)
			return rc;
		*kind = rc;
		return 0;
	}
	rc = keep_store_open(path, KEEP_OPEN_RDONLY, &s);
	if (rc)
		return rc;
	*kind = keep_store_is_encrypted(s);
	keep_store_close(s);
	return *kind < 0 ? *kind : 0;
}

static int sync_commits(struct keep_store *s);
static int synced(struct keep_store *s, uint64_t upto, int err);
static int commit_locked(struct keep_store *s, uint64_t *id, bool durable,
			 struct snap_op *op, bool *sync);
static void committed(struct keep_store *s, int64_t t);

int keep_key_change(struct keep_store *s, const struct keep_secret *old_secret,
		    const struct keep_secret *new_secret)
{
	struct keep_keys *check = NULL;
	char wrap[512], *text, old[512];
	int rc;

	if (!s->encrypted || !new_secret)
		return KEEP_E_INVAL;
	if (!s->keys)
		return KEEP_E_NEEDKEY;
	if (!(s->flags & KEEP_OPEN_WRITE))
		return EROFS;
	pthread_mutex_lock(&s->mu);
	snprintf(old, sizeof(old), "%s", s->wrap_text);
	pthread_mutex_unlock(&s->mu);
	rc = crypt_unwrap_secret(old, old_secret, &check);
	if (!rc && !crypt_keys_same(check, s->keys))
		rc = KEEP_E_BADKEY; /* the wrap changed under us */
	crypt_keys_free(check);
	if (!rc)
		rc = crypt_wrap_secret(s->keys, new_secret, wrap, sizeof(wrap));
	if (rc)
		return rc;
	if (!(text = strdup(wrap)))
		return KEEP_E_NOMEM;
	rc = store_own_begin(s);
	if (!rc)
		rc = db_meta_set_text(s, "key_wrap", text);
	rc = store_own_end(s, rc);
	if (rc) {
		free(text);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	free(s->wrap_text);
	s->wrap_text = text;
	/* on disk before anyone is told the old secret is done with */
	rc = sync_commits(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

uint32_t keep_store_block_size(const struct keep_store *s)
{
	return s->block_size;
}

void keep_store_set_dirty_limit(struct keep_store *s, uint64_t bytes)
{
	pthread_mutex_lock(&s->mu);
	s->dirty_limit = bytes < (1u << 20) ? (1u << 20) : bytes;
	pthread_mutex_unlock(&s->mu);
}

void keep_store_set_write_times(struct keep_store *s, int on)
{
	pthread_mutex_lock(&s->mu);
	s->kernel_times = !on;
	pthread_mutex_unlock(&s->mu);
}

/* ---- changes ------------------------------------------------------------ */

int keep_writable(struct keep_store *s)
{
	if (!(s->flags & KEEP_OPEN_WRITE))
		return EROFS;
	if (s->sticky)
		return KEEP_E_READONLY;
	return 0;
}

int keep_begin_live(struct keep_store *s)
{
	return s->replica ? EROFS : keep_begin(s);
}

int keep_begin(struct keep_store *s)
{
	int rc = keep_writable(s);

	if (rc || s->in_tx)
		return rc;
	rc = db_begin(s);
	if (!rc)
		s->in_tx = true;
	return rc;
}

void keep_touch(struct keep_store *s)
{
	s->changed = true;
	if (!s->dirty_since)
		s->dirty_since = keep_monotonic_ns();
}

int64_t keep_dirty_since(struct keep_store *s)
{
	pthread_mutex_lock(&s->mu);
	int64_t t = s->dirty_since;
	pthread_mutex_unlock(&s->mu);
	return t;
}

uint64_t keep_last_commit(struct keep_store *s)
{
	pthread_mutex_lock(&s->mu);
	/* a read-only handle follows the commits of the writer, if any */
	uint64_t id = (s->flags & KEEP_OPEN_WRITE) ? s->open_commit - 1
						    : db_last_commit(s);
	pthread_mutex_unlock(&s->mu);
	return id;
}

/* ---- commits ------------------------------------------------------------ */

/* A commit's time: the clock, or 1 ns past the previous commit when the
 * clock stepped back (design note 6), so times grow with ids. */
static int64_t commit_time(struct keep_store *s)
{
	int64_t now = keep_clock_ns();

	return now > s->last_commit_ns ? now : s->last_commit_ns + 1;
}

int store_commit(struct keep_store *s, uint64_t *id, bool durable,
		 struct snap_op *op)
{
	bool sync = false;
	uint64_t upto;
	int rc;

	if (!(s->flags & KEEP_OPEN_WRITE)) {
		if (op)
			return EROFS;
		if (id)
			*id = keep_last_commit(s);
		return 0;
	}
	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->mu);
	rc = commit_locked(s, id, durable, op, &sync);
	upto = s->open_commit - 1;
	pthread_mutex_unlock(&s->mu);
	if (!rc && sync) {
		/* note 3: the disk syncs outside the store lock */
		int err = keep_fault("sync");
		if (!err)
			err = db_sync_wal(s);
		pthread_mutex_lock(&s->mu);
		rc = synced(s, upto, err);
		if (!rc && !s->in_tx)
			db_wal_turn(s); /* its WAL sync is done now */
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&s->commit_mu);
	return rc;
}

int store_own_begin(struct keep_store *s)
{
	int rc;

	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->mu);
	rc = keep_writable(s);
	if (!rc && (s->changed || s->dirty.count))
		rc = store_commit_locked(s, NULL, false, NULL);
	/* an open transaction with nothing in it is used as it is */
	if (!rc && !s->in_tx)
		rc = db_begin(s);
	if (!rc) {
		s->in_tx = true;
		return 0;
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->commit_mu);
	return rc;
}

int store_sync(struct keep_store *s)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = sync_commits(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int store_own_commit(struct keep_store *s, uint64_t id, int64_t time_ns)
{
	int rc;

	if (time_ns <= s->last_commit_ns && id >= s->open_commit)
		time_ns = s->last_commit_ns + 1; /* note 6 of db.c */
	s->open_commit = id;
	rc = db_journal_flush(s, id);
	if (!rc)
		rc = keep_fault("commit");
	if (!rc)
		rc = db_commit(s, id, time_ns);
	if (rc) {
		/* nothing of it stays; the handle is done with (as after
		 * any failed commit) */
		db_rollback(s);
		s->sticky = rc;
	} else {
		committed(s, time_ns);
		rc = sync_commits(s);
	}
	s->in_tx = false;
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->commit_mu);
	return rc;
}

int store_own_end(struct keep_store *s, int rc)
{
	if (!rc)
		rc = db_end_tx(s);
	if (rc)
		db_rollback(s);
	s->in_tx = false;
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->commit_mu);
	return rc;
}

/* The bookkeeping of a commit that has just been made. */
static void committed(struct keep_store *s, int64_t t)
{
	s->in_tx = false;
	s->open_commit++;
	s->last_commit_ns = t;
	s->changed = false;
	s->dirty_since = 0;
	dmap_release(&s->inflight);
	dmap_release(&s->dirty);
}

/* The WAL was synced (err 0) with every commit up to upto in it; a
 * failure makes the handle read-only.  Under mu. */
static int synced(struct keep_store *s, uint64_t upto, int err)
{
	if (err) {
		/* the commit stands, but the disk did not take it */
		keep_log(LOG_ERR, "cannot sync the journal: %s",
			 keep_strerror(err));
		s->sticky = err;
		return KEEP_E_READONLY;
	}
	if (upto > s->synced)
		s->synced = upto;
	return 0;
}

/* Sync the WAL under mu; a failure makes the handle read-only. */
static int sync_commits(struct keep_store *s)
{
	int err = keep_fault("sync");

	if (!err)
		err = db_sync_wal(s);
	int rc = synced(s, s->open_commit - 1, err);
	if (!rc && !s->in_tx)
		db_wal_turn(s);
	return rc;
}

/* A failed commit: roll back, and the handle is read-only from now on. */
static int commit_failed(struct keep_store *s, int rc)
{
	keep_log(LOG_ERR, "commit %llu failed: %s; the store is read-only until "
			  "it is mounted again",
		 (unsigned long long)s->open_commit, keep_strerror(rc));
	db_rollback(s);
	s->in_tx = false;
	s->sticky = rc;
	return KEEP_E_READONLY;
}

int store_commit_tx(struct keep_store *s, uint64_t *id)
{
	int64_t t = commit_time(s);
	int rc = db_journal_flush(s, s->open_commit);

	if (!rc)
		rc = keep_fault("commit");
	if (!rc)
		rc = db_commit(s, s->open_commit, t);
	if (rc)
		return commit_failed(s, rc);
	committed(s, t);
	if (id)
		*id = s->open_commit - 1;
	return sync_commits(s);
}

int store_commit_locked(struct keep_store *s, uint64_t *id, bool durable,
			struct snap_op *op)
{
	bool sync = false;
	int rc = commit_locked(s, id, durable, op, &sync);

	if (!rc && sync)
		rc = sync_commits(s);
	return rc;
}

/* store_commit_locked, but the sync is left to the caller: *sync says
 * whether the WAL must be synced before the commit is reported. */
static int commit_locked(struct keep_store *s, uint64_t *id, bool durable,
			 struct snap_op *op, bool *sync)
{
	bool must_sync = false, nothing;
	int64_t t = 0;
	int rc = 0;

	if (s->sticky) {
		rc = KEEP_E_READONLY;
		goto out;
	}
	if (op) {
		/* refusals change nothing, not even the pending changes */
		rc = snap_check(s, op);
		if (rc)
			goto out;
		must_sync = true;
	}
	nothing = !s->changed && s->dirty.count == 0;
	if (nothing && !op)
		goto sync;
	if (nothing && s->open_commit > 1) {
		/* the op names the last commit and is committed alone (no
		 * empty commit); a store without any commit gets one */
		rc = keep_begin(s);
		if (!rc)
			rc = snap_apply(s, op, s->open_commit - 1,
					s->last_commit_ns);
		if (!rc)
			rc = keep_fault("commit");
		if (!rc)
			rc = db_end_tx(s);
		if (rc)
			goto fail;
		s->in_tx = false;
		goto sync;
	}

	if (s->dirty.bytes >= ENCODE_OUTSIDE_BYTES) {
		s->inflight = s->dirty;
		dmap_init(&s->dirty, &s->pool);
		pthread_mutex_unlock(&s->mu);
		/* Only the committer touches inflight buffers' encoding
		 * fields; readers copy from the buffers, which stay put. */
		rc = data_encode(s, &s->inflight);
		pthread_mutex_lock(&s->mu);
		if (rc)
			goto fail;
	}
	t = commit_time(s);
	rc = keep_begin(s);
	if (!rc)
		rc = data_encode(s, &s->dirty);
	if (!rc)
		rc = data_apply(s, &s->inflight, &s->dirty);
	if (!rc)
		rc = data_apply(s, &s->dirty, NULL);
	if (!rc)
		rc = ns_flush(s);
	if (!rc && op)
		rc = snap_apply(s, op, s->open_commit, t);
	if (!rc)
		rc = db_journal_flush(s, s->open_commit);
	if (!rc)
		rc = keep_fault("commit");
	if (!rc)
		rc = db_commit(s, s->open_commit, t);
	if (rc)
		goto fail;
	committed(s, t);
sync:
	*sync = (durable && s->synced < s->open_commit - 1) || must_sync;
	if (!*sync && !s->in_tx)
		db_wal_turn(s); /* a commit to sync turns after its sync */
	goto out;

fail:
	rc = commit_failed(s, rc);
out:
	if (id)
		*id = s->open_commit - 1;
	return rc;
}

int keep_commit(struct keep_store *s, uint64_t *id)
{
	return store_commit(s, id, true, NULL);
}

int keep_commit_nosync(struct keep_store *s, uint64_t *id)
{
	return store_commit(s, id, false, NULL);
}

/* ---- statistics --------------------------------------------------------- */

static uint64_t file_size(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	struct stat st;
	uint64_t n = 0;

	if (p && stat(p, &st) == 0)
		n = (uint64_t)st.st_blocks * 512;
	free(p);
	return n;
}

int keep_stats(struct keep_store *s, struct keep_stats *out)
{
	struct keep_stats st = {0};
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = ns_flush(s);
	if (!rc)
		rc = db_stats(s, &st);
	if (!rc && db_meta_text(s, "replica_of", st.replica_of,
				sizeof(st.replica_of)) != 0)
		st.replica_of[0] = '\0';
	pthread_mutex_unlock(&s->mu);
	if (rc)
		return rc;
	st.db_bytes = file_size(s->path, DB_NAME) +
		      file_size(s->path, DB_NAME "-wal");
	st.block_size = s->block_size;
	st.format_version = s->format;
	st.encrypted = s->encrypted;
	memcpy(st.uuid, s->uuid, sizeof(st.uuid));
	*out = st;
	return 0;
}

/* ---- space ----------------------------------------------------------- */

/* Free space the backing file system must keep beyond pending data, so a
 * commit never meets a full disk halfway. */
#define SPACE_MARGIN (8u << 20)

int keep_space_check(struct keep_store *s, uint64_t more)
{
	int err = keep_fault("space");
	if (err)
		return err;
	static __thread int64_t last_ns;
	static __thread uint64_t last_free;
	int64_t now = keep_monotonic_ns();
	uint64_t need;

	if (now - last_ns > 50 * 1000000 || last_free < (64u << 20)) {
		struct statvfs v;
		if (statvfs(s->path, &v) != 0)
			return 0;
		last_free = (uint64_t)v.f_bavail * v.f_frsize;
		last_ns = now;
	}
	need = SPACE_MARGIN + more + 2 * (s->dirty.bytes + s->inflight.bytes);
	return last_free < need ? ENOSPC : 0;
}
