/*
 * db.c - the store's SQLite database: schema, statements, row versions.
 *
 * Every SQL statement of keepfs is in this file, prepared once per
 * connection and reused.  The writer connection (s->db) is used under
 * s->mu; committed blobs are read through a small pool of read-only
 * connections so that reads never wait for a commit in progress.
 *
 * Design notes (the invariants the rest of core/ relies on):
 *
 *  1. Versioned rows.  inodes, dirents, blocks and xattrs rows carry
 *     born/died commit ids.  A row is in the view of commit C when
 *     born <= C AND (died IS NULL OR died > C); the live tree is
 *     died IS NULL.  Versions of one key never overlap.
 *  2. Copy-on-write.  Let O be the open commit.  A live row with born == O
 *     is changed in place (no committed view can see it); any other live
 *     row is ended (died = O) and a new version inserted with born = O.
 *     Killing a row with born == O deletes it.  Rows of committed views
 *     are never changed except to set died from NULL to O.
 *  3. Commit point.  A commit is the SQLite COMMIT of the write
 *     transaction that holds every change made since the previous one,
 *     including its commits row; it is atomic.  In WAL mode with
 *     synchronous=NORMAL it survives a process crash at once; it is
 *     durable against power loss once the WAL is synced (db_sync_wal) or
 *     checkpointed (which syncs the WAL first).
 *  4. Blobs are immutable and content-addressed (hash UNIQUE).  Block rows
 *     reference them only from inside the commit that inserts them, so a
 *     blob id that a reader obtains under s->mu is always committed.
 *  5. Inode numbers are never reused: next_ino is kept in meta and only
 *     grows.
 *  6. Commit times only grow: each commit's time_ns is above the previous
 *     one's even when CLOCK_REALTIME steps back (store.c), so the index on
 *     commits(time_ns) finds the newest commit at or before a time with
 *     one seek (db_commit_at).
 *  7. Snapshot rows change only inside the writer's transaction and only
 *     while it is being committed (snap.c), so the writer connection, like
 *     any reader, sees the snapshots table exactly as committed.  Their
 *     ids come from AUTOINCREMENT and are never reused.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keep_i.h"

enum sid {
	ST_BEGIN,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_META_SET,
	ST_META_GET,
	ST_COMMIT_INSERT,
	ST_LAST_COMMIT,
	ST_INODE_GET_LIVE,
	ST_INODE_GET_VIEW,
	ST_INODE_UPDATE,
	ST_INODE_DIE,
	ST_INODE_COPY,
	ST_INODE_INSERT,
	ST_INODE_DELETE,
	ST_SYMLINK_LIVE,
	ST_SYMLINK_VIEW,
	ST_ORPHANS,
	ST_DIRENT_FIND_LIVE,
	ST_DIRENT_FIND_VIEW,
	ST_DIRENT_ADD,
	ST_DIRENT_DIE,
	ST_DIRENT_DELETE,
	ST_DIRENT_CHILD,
	ST_DIRENT_LIST_LIVE,
	ST_DIRENT_LIST_VIEW,
	ST_BLOCK_GET_LIVE,
	ST_BLOCK_GET_VIEW,
	ST_BLOCK_RANGE_LIVE,
	ST_BLOCK_RANGE_VIEW,
	ST_BLOCK_FIND,
	ST_BLOCK_UPDATE,
	ST_BLOCK_DIE,
	ST_BLOCK_INSERT,
	ST_BLOCK_DELETE,
	ST_BLOCK_DELETE_FROM,
	ST_BLOCK_DIE_FROM,
	ST_BLOB_FIND,
	ST_BLOB_INSERT,
	ST_XATTR_GET_LIVE,
	ST_XATTR_GET_VIEW,
	ST_XATTR_FIND,
	ST_XATTR_UPDATE,
	ST_XATTR_DIE,
	ST_XATTR_INSERT,
	ST_XATTR_DELETE,
	ST_XATTR_LIST_LIVE,
	ST_XATTR_LIST_VIEW,
	ST_XATTR_DELETE_ALL,
	ST_XATTR_DIE_ALL,
	ST_SCHEMA_HAS_SNAPS,
	ST_SNAP_BY_NAME,
	ST_SNAP_BY_ID,
	ST_SNAP_LIST,
	ST_SNAP_INSERT,
	ST_SNAP_DELETE,
	ST_SNAP_RENAME,
	ST_COMMIT_GET,
	ST_COMMIT_LIST,
	ST_COMMIT_AT,
	ST_VIEW_STATS_LIVE,
	ST_VIEW_STATS_VIEW,
	ST__COUNT
};

#define SNAP_SELECT "SELECT s.id, s.name, s.commit_id, s.created_ns, " \
		    "s.origin, coalesce(c.time_ns, 0) FROM snapshots AS s " \
		    "LEFT JOIN commits AS c ON c.id = s.commit_id "

/* S_IFMT = 61440, S_IFDIR = 16384, S_IFREG = 32768 */
#define VIEW_COUNTS "count(*) FILTER (WHERE (mode & 61440) = 32768), " \
		    "count(*) FILTER (WHERE (mode & 61440) = 16384), " \
		    "count(*) FILTER (WHERE (mode & 61440) NOT IN (16384, 32768)), " \
		    "coalesce(sum(size) FILTER (WHERE (mode & 61440) = 32768), 0)"

/*
 * Added to format 1 after its first release: keep_store_init creates them,
 * a writable open of an older store adds them (db_upgrade), and a
 * read-only handle on an older store sees no snapshots.
 */
#define SNAPSHOTS_DDL                                                       \
	"CREATE TABLE IF NOT EXISTS snapshots("                             \
	"id INTEGER PRIMARY KEY AUTOINCREMENT, name BLOB NOT NULL UNIQUE,"  \
	" commit_id INTEGER NOT NULL, created_ns INTEGER NOT NULL,"         \
	" origin INTEGER NOT NULL);"                                        \
	"CREATE INDEX IF NOT EXISTS commits_time ON commits(time_ns);"

#define INODE_COLS "born, mode, uid, gid, nlink, size, rdev, atime, mtime, " \
		   "ctime, btime, nblocks, parent"

static const char *const sql_text[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_SAVEPOINT] = "SAVEPOINT op",
	[ST_RELEASE] = "RELEASE op",
	[ST_ROLLBACK_TO] = "ROLLBACK TO op",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[ST_COMMIT_INSERT] = "INSERT INTO commits(id, time_ns) VALUES (?1, ?2)",
	[ST_LAST_COMMIT] = "SELECT coalesce(max(id), 0) FROM commits",

	[ST_INODE_GET_LIVE] = "SELECT " INODE_COLS ", died FROM inodes "
			      "WHERE ino = ?1 AND died IS NULL",
	[ST_INODE_GET_VIEW] = "SELECT " INODE_COLS ", died FROM inodes "
			      "WHERE ino = ?1 AND born <= ?2 "
			      "ORDER BY born DESC LIMIT 1",
	[ST_INODE_UPDATE] = "UPDATE inodes SET mode = ?3, uid = ?4, gid = ?5, "
			    "nlink = ?6, size = ?7, rdev = ?8, atime = ?9, "
			    "mtime = ?10, ctime = ?11, btime = ?12, "
			    "nblocks = ?13, parent = ?14 "
			    "WHERE ino = ?1 AND born = ?2",
	[ST_INODE_DIE] = "UPDATE inodes SET died = ?3 "
			 "WHERE ino = ?1 AND born = ?2 AND died IS NULL",
	[ST_INODE_COPY] = "INSERT INTO inodes(ino, born, mode, uid, gid, nlink, "
			  "size, rdev, atime, mtime, ctime, btime, nblocks, "
			  "parent, symlink) SELECT ino, ?3, ?4, ?5, ?6, ?7, ?8, "
			  "?9, ?10, ?11, ?12, ?13, ?14, ?15, symlink FROM inodes "
			  "WHERE ino = ?1 AND born = ?2",
	[ST_INODE_INSERT] = "INSERT INTO inodes(ino, born, mode, uid, gid, "
			    "nlink, size, rdev, atime, mtime, ctime, btime, "
			    "nblocks, parent, symlink) VALUES (?1, ?2, ?3, ?4, "
			    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	[ST_INODE_DELETE] = "DELETE FROM inodes WHERE ino = ?1 AND born = ?2",
	[ST_SYMLINK_LIVE] = "SELECT symlink FROM inodes "
			    "WHERE ino = ?1 AND died IS NULL",
	[ST_SYMLINK_VIEW] = "SELECT symlink, died FROM inodes "
			    "WHERE ino = ?1 AND born <= ?2 "
			    "ORDER BY born DESC LIMIT 1",
	[ST_ORPHANS] = "SELECT ino FROM inodes "
		       "WHERE died IS NULL AND nlink = 0 LIMIT ?1",

	[ST_DIRENT_FIND_LIVE] = "SELECT id, ino FROM dirents INDEXED BY dirents_name "
				"WHERE parent = ?1 "
				"AND name = ?2 AND died IS NULL",
	[ST_DIRENT_FIND_VIEW] = "SELECT id, ino, died FROM dirents "
				"INDEXED BY dirents_name "
				"WHERE parent = ?1 AND name = ?2 AND born <= ?3 "
				"ORDER BY born DESC LIMIT 1",
	[ST_DIRENT_ADD] = "INSERT INTO dirents(parent, id, name, born, ino) "
			  "VALUES (?1, ?5, ?2, ?3, ?4)",
	[ST_DIRENT_DIE] = "UPDATE dirents SET died = ?2 WHERE parent = ?3 "
			  "AND id = ?1 AND born < ?2 AND died IS NULL",
	[ST_DIRENT_DELETE] = "DELETE FROM dirents WHERE parent = ?3 AND id = ?1 "
			     "AND born = ?2",
	[ST_DIRENT_CHILD] = "SELECT 1 FROM dirents WHERE parent = ?1 "
			    "AND died IS NULL LIMIT 1",
	[ST_DIRENT_LIST_LIVE] = "SELECT id, name, ino FROM dirents "
				"WHERE parent = ?1 AND id > ?2 AND died IS NULL "
				"ORDER BY id LIMIT ?3",
	[ST_DIRENT_LIST_VIEW] = "SELECT id, name, ino FROM dirents "
				"WHERE parent = ?1 AND id > ?2 AND born <= ?4 "
				"AND (died IS NULL OR died > ?4) "
				"ORDER BY id LIMIT ?3",

	[ST_BLOCK_GET_LIVE] = "SELECT blob FROM blocks WHERE ino = ?1 "
			      "AND idx = ?2 AND died IS NULL",
	[ST_BLOCK_GET_VIEW] = "SELECT blob, died FROM blocks WHERE ino = ?1 "
			      "AND idx = ?2 AND born <= ?3 "
			      "ORDER BY born DESC LIMIT 1",
	[ST_BLOCK_RANGE_LIVE] = "SELECT idx, blob FROM blocks WHERE ino = ?1 "
				"AND idx >= ?2 AND idx < ?3 AND died IS NULL "
				"ORDER BY idx",
	[ST_BLOCK_RANGE_VIEW] = "SELECT idx, blob FROM blocks WHERE ino = ?1 "
				"AND idx >= ?2 AND idx < ?3 AND born <= ?4 "
				"AND (died IS NULL OR died > ?4) ORDER BY idx",
	[ST_BLOCK_FIND] = "SELECT born FROM blocks WHERE ino = ?1 AND idx = ?2 "
			  "AND died IS NULL",
	[ST_BLOCK_UPDATE] = "UPDATE blocks SET blob = ?4 "
			    "WHERE ino = ?1 AND idx = ?2 AND born = ?3",
	[ST_BLOCK_DIE] = "UPDATE blocks SET died = ?4 "
			 "WHERE ino = ?1 AND idx = ?2 AND born = ?3",
	[ST_BLOCK_INSERT] = "INSERT INTO blocks(ino, idx, born, blob) "
			    "VALUES (?1, ?2, ?3, ?4)",
	[ST_BLOCK_DELETE] = "DELETE FROM blocks "
			    "WHERE ino = ?1 AND idx = ?2 AND born = ?3",
	[ST_BLOCK_DELETE_FROM] = "DELETE FROM blocks WHERE ino = ?1 "
				 "AND idx >= ?2 AND born = ?3 AND died IS NULL",
	[ST_BLOCK_DIE_FROM] = "UPDATE blocks SET died = ?3 WHERE ino = ?1 "
			      "AND idx >= ?2 AND died IS NULL",

	[ST_BLOB_FIND] = "SELECT id FROM blobs WHERE hash = ?1",
	[ST_BLOB_INSERT] = "INSERT INTO blobs(hash, size, csize, flags, crc, "
			   "data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",

	[ST_XATTR_GET_LIVE] = "SELECT value FROM xattrs WHERE ino = ?1 "
			      "AND name = ?2 AND died IS NULL",
	[ST_XATTR_GET_VIEW] = "SELECT value, died FROM xattrs WHERE ino = ?1 "
			      "AND name = ?2 AND born <= ?3 "
			      "ORDER BY born DESC LIMIT 1",
	[ST_XATTR_FIND] = "SELECT born FROM xattrs WHERE ino = ?1 "
			  "AND name = ?2 AND died IS NULL",
	[ST_XATTR_UPDATE] = "UPDATE xattrs SET value = ?4 "
			    "WHERE ino = ?1 AND name = ?2 AND born = ?3",
	[ST_XATTR_DIE] = "UPDATE xattrs SET died = ?4 "
			 "WHERE ino = ?1 AND name = ?2 AND born = ?3",
	[ST_XATTR_INSERT] = "INSERT INTO xattrs(ino, name, born, value) "
			    "VALUES (?1, ?2, ?3, ?4)",
	[ST_XATTR_DELETE] = "DELETE FROM xattrs "
			    "WHERE ino = ?1 AND name = ?2 AND born = ?3",
	[ST_XATTR_LIST_LIVE] = "SELECT name FROM xattrs WHERE ino = ?1 "
			       "AND died IS NULL ORDER BY name",
	[ST_XATTR_LIST_VIEW] = "SELECT name FROM xattrs WHERE ino = ?1 "
			       "AND born <= ?2 AND (died IS NULL OR died > ?2) "
			       "ORDER BY name",
	[ST_XATTR_DELETE_ALL] = "DELETE FROM xattrs WHERE ino = ?1 "
				"AND born = ?2 AND died IS NULL",
	[ST_XATTR_DIE_ALL] = "UPDATE xattrs SET died = ?2 WHERE ino = ?1 "
			     "AND died IS NULL",

	[ST_SCHEMA_HAS_SNAPS] = "SELECT count(*) FILTER (WHERE type = 'table' "
				"AND name = 'snapshots'), count(*) FILTER "
				"(WHERE type = 'index' AND name = 'commits_time') "
				"FROM sqlite_master",
	[ST_SNAP_BY_NAME] = SNAP_SELECT "WHERE s.name = ?1",
	[ST_SNAP_BY_ID] = SNAP_SELECT "WHERE s.id = ?1",
	[ST_SNAP_LIST] = SNAP_SELECT "WHERE s.id > ?1 ORDER BY s.id LIMIT ?2",
	[ST_SNAP_INSERT] = "INSERT INTO snapshots(name, commit_id, created_ns, "
			   "origin) VALUES (?1, ?2, ?3, ?4)",
	[ST_SNAP_DELETE] = "DELETE FROM snapshots WHERE name = ?1",
	/* a name given by hand keeps the snapshot: automatic and pre-restore
	 * ones become manual (retention.c leaves those alone) */
	[ST_SNAP_RENAME] = "UPDATE snapshots SET name = ?2, origin = CASE "
			   "WHEN origin IN (1, 2) THEN 0 ELSE origin END "
			   "WHERE name = ?1",
	[ST_COMMIT_GET] = "SELECT time_ns FROM commits WHERE id = ?1",
	[ST_COMMIT_LIST] = "SELECT id, time_ns FROM commits WHERE id > ?1 "
			   "ORDER BY id LIMIT ?2",
	/* commit times grow with ids (design note 6): the newest commit at
	 * or before a time is the last index entry at or below it */
	[ST_COMMIT_AT] = "SELECT id FROM commits WHERE time_ns <= ?1 "
			 "ORDER BY time_ns DESC, id DESC LIMIT 1",
	[ST_VIEW_STATS_LIVE] = "SELECT " VIEW_COUNTS " FROM inodes "
			       "WHERE died IS NULL AND nlink > 0",
	[ST_VIEW_STATS_VIEW] = "SELECT " VIEW_COUNTS " FROM inodes "
			       "WHERE born <= ?1 AND (died IS NULL OR died > ?1) "
			       "AND nlink > 0",
};

static const char schema_sql[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE commits(id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL);"
	"CREATE TABLE inodes(ino INTEGER NOT NULL, born INTEGER NOT NULL,"
	" died INTEGER, mode INTEGER NOT NULL, uid INTEGER NOT NULL,"
	" gid INTEGER NOT NULL, nlink INTEGER NOT NULL, size INTEGER NOT NULL,"
	" rdev INTEGER NOT NULL, atime INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	" ctime INTEGER NOT NULL, btime INTEGER NOT NULL,"
	" nblocks INTEGER NOT NULL, parent INTEGER NOT NULL, symlink BLOB,"
	" PRIMARY KEY(ino, born)) WITHOUT ROWID;"
	"CREATE TABLE dirents(parent INTEGER NOT NULL, id INTEGER NOT NULL,"
	" name BLOB NOT NULL, born INTEGER NOT NULL, died INTEGER,"
	" ino INTEGER NOT NULL, PRIMARY KEY(parent, id)) WITHOUT ROWID;"
	"CREATE INDEX dirents_name ON dirents(parent, name, born, died, ino);"
	"CREATE TABLE blocks(ino INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" born INTEGER NOT NULL, died INTEGER, blob INTEGER NOT NULL,"
	" PRIMARY KEY(ino, idx, born)) WITHOUT ROWID;"
	"CREATE TABLE xattrs(ino INTEGER NOT NULL, name BLOB NOT NULL,"
	" born INTEGER NOT NULL, died INTEGER, value BLOB NOT NULL,"
	" PRIMARY KEY(ino, name, born)) WITHOUT ROWID;"
	"CREATE TABLE blobs(id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
	" size INTEGER NOT NULL, csize INTEGER NOT NULL, flags INTEGER NOT NULL,"
	" crc INTEGER NOT NULL, data BLOB NOT NULL);"
	SNAPSHOTS_DDL;

struct db {
	sqlite3 *h;
	sqlite3_stmt *st[ST__COUNT];
	pthread_t ckpt_thread;
	bool ckpt_running, ckpt_stop, ckpt_wanted;
	bool wal_big; /* the WAL file may be past CKPT_BYTES; under ckpt_mu */
	bool ckpt_now;	/* db_wal_settle waits: no pause; under ckpt_mu */
	uint64_t ckpt_rounds; /* checkpoints run; under ckpt_mu */
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cv;
	pthread_cond_t ckpt_done_cv; /* ckpt_rounds moved */
	sqlite3 *ckpt_h;
	char *file;
	uint32_t page_size;
	bool has_snaps; /* the snapshots table exists */
	int64_t last_commit_ns; /* under ckpt_mu */
	uint64_t wal_frames;	/* in the WAL at the last commit; ckpt_mu */
	uint64_t backfilled;	/* of them in the database; under ckpt_mu */
	uint64_t wal_gen;	/* times the WAL started over; ckpt_mu */
};

#define RPOOL_SIZE 4

struct rslot {
	pthread_mutex_t mu;
	sqlite3 *h;
	sqlite3_stmt *read, *begin, *end;
	struct keep_codec *codec;
};

struct rpool {
	struct rslot slot[RPOOL_SIZE];
	unsigned next;
};

/* WAL bytes after which the background checkpointer runs. */
#define CKPT_BYTES (64u << 20)
/* WAL bytes db_wal_settle has copied at once (note 4). */
#define SETTLE_BYTES (16u << 20)

/* ---- errors ------------------------------------------------------------ */

static int db_err(sqlite3 *h, int src, const char *what)
{
	switch (src & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_FULL:
		return ENOSPC;
	case SQLITE_NOMEM:
		return KEEP_E_NOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return KEEP_CORRUPT_BKPT(h ? sqlite3_errmsg(h) : what);
	case SQLITE_READONLY:
		return EROFS;
	case SQLITE_IOERR:
		keep_log(LOG_ERR, "%s: i/o error: %s", what,
			 h ? sqlite3_errmsg(h) : "?");
		return EIO;
	case SQLITE_CANTOPEN:
		return ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return EACCES;
	default:
		keep_log(LOG_ERR, "%s: %s", what, h ? sqlite3_errmsg(h) : "?");
		return KEEP_E_SQLITE;
	}
}

static sqlite3_stmt *stmt(struct keep_store *s, enum sid id)
{
	struct db *d = s->db;
	sqlite3_stmt *st = d->st[id];

	if (!st) {
		int src = sqlite3_prepare_v3(d->h, sql_text[id], -1,
					     SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (src != SQLITE_OK) {
			keep_log(LOG_ERR, "cannot prepare statement %d: %s",
				 (int)id, sqlite3_errmsg(d->h));
			return NULL;
		}
		d->st[id] = st;
	}
	return st;
}

/* Step a statement that returns no rows, then reset it. */
static int run(struct keep_store *s, sqlite3_stmt *st, const char *what)
{
	int src = sqlite3_step(st);
	int rc = src == SQLITE_DONE ? 0 : db_err(s->db->h, src, what);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static void bind_name(sqlite3_stmt *st, int i, const char *name)
{
	sqlite3_bind_blob(st, i, name, (int)strlen(name), SQLITE_STATIC);
}

#define STMT(var, s, id)                        \
	sqlite3_stmt *var = stmt((s), (id));    \
	if (!var)                               \
		return KEEP_E_SQLITE

/* For db_diff.c, which holds the change journal's SQL. */
struct sqlite3 *db_handle(struct keep_store *s)
{
	return s->db->h;
}

int db_error(struct keep_store *s, int src, const char *what)
{
	return db_err(s->db->h, src, what);
}

/* ---- connections ------------------------------------------------------- */

static int exec(sqlite3 *h, const char *sql)
{
	char *msg = NULL;
	int src = sqlite3_exec(h, sql, NULL, NULL, &msg);

	if (src != SQLITE_OK) {
		int rc = db_err(h, src, sql);
		if (msg && rc == KEEP_E_SQLITE)
			keep_log(LOG_DEBUG, "%s: %s", sql, msg);
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

/*
 * Waiting for a lock another connection holds (the checkpointer's, for a
 * moment): SQLite's own busy handler sleeps 1, 2, 5, ... up to 100 ms
 * between tries, so a writer could sleep 100 ms past the moment the lock
 * came free, with the store lock held and every request waiting behind
 * it.  This one looks again every millisecond, for BUSY_WAIT_MS in all.
 */
#define BUSY_WAIT_MS 10000

static int busy_wait(void *ctx, int tries)
{
	(void)ctx;
	if (tries >= BUSY_WAIT_MS)
		return 0;
	nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	return 1;
}

static void busy_set(sqlite3 *h, bool wait)
{
	sqlite3_busy_handler(h, wait ? busy_wait : NULL, NULL);
}

/*
 * Checkpoints copy the WAL into the database: the same bytes written a
 * second time.  The rules, all about not making requests wait:
 *
 *  1. The checkpoint thread copies once CKPT_BYTES wait to be copied and
 *     writing pauses (no commit for CKPT_IDLE_NS), so a burst of writing
 *     does not pay for it as it goes; CKPT_MAX_BYTES waiting are copied at
 *     once whatever the load, and so is anything when db_wal_settle asks.
 *     It copies with a PASSIVE checkpoint, beside the writer, and syncs
 *     the database after every round that left writes unsynced: SQLite
 *     syncs it only when the copy ends with nothing more in the WAL, and
 *     under a steady load a commit always comes during the copy.  Left
 *     alone, the writer's next complete checkpoint (note 2), with the
 *     store lock held, synced tens of megabytes (vfs.c note 3).
 *  2. The WAL starts over only when a transaction begins with every frame
 *     in it copied.  The writer connection begins its next transaction at
 *     the first change after a commit, so under a steady load the
 *     checkpoint thread never has everything copied at that moment, and
 *     the WAL grew without end (700 MiB within seconds while a collection
 *     ran).  So after each of its commits (db_wal_turn), with no
 *     transaction open, once the WAL holds CKPT_BYTES and all but
 *     TURN_FRAMES of it are copied, the writer copies the rest itself
 *     (the frames of its last commits, and two syncs), and its next
 *     transaction starts the WAL over.  It holds the store lock, so it
 *     must be short: a durable commit turns after its own WAL sync (the
 *     checkpoint's WAL sync then has nothing to write), the database has
 *     nothing else unsynced (note 1), the writer never makes the file
 *     smaller (vfs.c note 2: the checkpoint thread does), and the steps
 *     of a collection do not turn (it settles between them instead).
 *     Turns took 35-65 ms during a collection before these rules, and
 *     0.7-1.7 ms after.
 *  3. A WAL that starts over is reused, never cut by a commit: SQLite
 *     would cut it down to journal_size_limit inside the next COMMIT,
 *     with every request waiting (500 ms for a 1 GiB WAL, measured in
 *     docs/design.md; 167 ms for 580 MiB).  So there is no such limit,
 *     and the checkpoint thread shrinks the file itself when writing has
 *     paused for CKPT_IDLE_NS, with a TRUNCATE checkpoint that gives up
 *     at once if a writer is busy (it holds the write lock while it
 *     runs).
 *  4. Every flush of the disk has to write what was written before it,
 *     so a writer's fsync that comes while the checkpoint thread syncs
 *     the database waits for all of that round's copy: 52-75 ms behind
 *     rounds of 70 MB during a collection.  Long background work asks
 *     for its rounds once SETTLE_BYTES are pending (db_wal_settle), so
 *     that each one is about as big as a collection's step.
 */
#define CKPT_IDLE_NS (500 * 1000000LL)
#define CKPT_MAX_BYTES (256ull << 20)
#define TURN_FRAMES 256

/* *ts = ns from now on CLOCK_REALTIME, for pthread_cond_timedwait. */
static void deadline(struct timespec *ts, int64_t ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	int64_t wake = ts->tv_nsec + ns;
	ts->tv_sec += wake / 1000000000;
	ts->tv_nsec = wake % 1000000000;
}

/* Frames of the WAL not yet in the database; under ckpt_mu. */
static uint64_t pending_bytes(const struct db *d)
{
	uint64_t done = d->backfilled < d->wal_frames ? d->backfilled
						       : d->wal_frames;
	return (d->wal_frames - done) * d->page_size;
}

static int wal_hook(void *ctx, sqlite3 *h, const char *dbname, int frames)
{
	struct db *d = ctx;

	(void)h;
	(void)dbname;
	pthread_mutex_lock(&d->ckpt_mu);
	d->last_commit_ns = keep_monotonic_ns();
	if ((uint64_t)frames < d->wal_frames) {
		d->backfilled = 0; /* the WAL started over (note 2) */
		d->wal_gen++;
	}
	d->wal_frames = (uint64_t)frames;
	if ((uint64_t)frames * d->page_size >= CKPT_BYTES)
		d->wal_big = true;
	if (pending_bytes(d) >= CKPT_BYTES) {
		d->ckpt_wanted = true;
		pthread_cond_signal(&d->ckpt_cv);
	}
	pthread_mutex_unlock(&d->ckpt_mu);
	return SQLITE_OK;
}

void db_wal_turn(struct keep_store *s)
{
	struct db *d = s->db;
	uint64_t frames, done;

	if (!d->ckpt_running)
		return;
	pthread_mutex_lock(&d->ckpt_mu);
	frames = d->wal_frames;
	done = d->backfilled;
	pthread_mutex_unlock(&d->ckpt_mu);
	if (frames * d->page_size < CKPT_BYTES || done > frames ||
	    frames - done > TURN_FRAMES)
		return;
	/* busy: the checkpoint thread is at it; the next commit tries again */
	int nlog = 0, nckpt = 0;
	int src = sqlite3_wal_checkpoint_v2(d->h, NULL, SQLITE_CHECKPOINT_PASSIVE,
					    &nlog, &nckpt);
	if (src != SQLITE_OK && src != SQLITE_BUSY)
		keep_log(LOG_WARNING, "checkpoint failed: %s",
			 sqlite3_errmsg(d->h));
	if (src == SQLITE_OK && nckpt >= 0) {
		pthread_mutex_lock(&d->ckpt_mu);
		if ((uint64_t)nckpt > d->backfilled)
			d->backfilled = (uint64_t)nckpt;
		pthread_mutex_unlock(&d->ckpt_mu);
	}
}

void db_wal_settle(struct keep_store *s, int64_t max_ns)
{
	struct db *d = s->db;
	struct timespec ts;

	if (!d->ckpt_running)
		return;
	pthread_mutex_lock(&d->ckpt_mu);
	if (pending_bytes(d) >= SETTLE_BYTES) {
		uint64_t round = d->ckpt_rounds;
		deadline(&ts, max_ns);
		d->ckpt_wanted = true;
		d->ckpt_now = true;
		pthread_cond_signal(&d->ckpt_cv);
		while (d->ckpt_rounds == round && !d->ckpt_stop &&
		       pthread_cond_timedwait(&d->ckpt_done_cv, &d->ckpt_mu,
					      &ts) == 0)
			;
	}
	pthread_mutex_unlock(&d->ckpt_mu);
}

void db_checkpoint_soon(struct keep_store *s)
{
	struct db *d = s->db;

	if (!d->ckpt_running)
		return; /* closing the store checkpoints instead */
	pthread_mutex_lock(&d->ckpt_mu);
	d->ckpt_wanted = true;
	d->ckpt_now = true;
	d->wal_big = true; /* copy, then truncate at the next pause */
	pthread_cond_signal(&d->ckpt_cv);
	pthread_mutex_unlock(&d->ckpt_mu);
}

/* Sync the database file of the checkpoint connection if a checkpoint
 * left writes in it unsynced (note 1). */
static void sync_db_file(sqlite3 *h)
{
	sqlite3_file *f = NULL;
	int src;

	if (db_vfs())
		src = sqlite3_file_control(h, "main", DB_FCNTL_SYNC_DIRTY, NULL);
	else if (sqlite3_file_control(h, "main", SQLITE_FCNTL_FILE_POINTER,
				      &f) == SQLITE_OK && f && f->pMethods)
		src = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	else
		src = SQLITE_OK;
	if (src != SQLITE_OK)
		keep_log(LOG_WARNING, "checkpoint: cannot sync the database");
}

/* Wait on ckpt_cv until ns from now at most; under ckpt_mu. */
static void ckpt_sleep(struct db *d, int64_t ns)
{
	struct timespec ts;

	deadline(&ts, ns);
	pthread_cond_timedwait(&d->ckpt_cv, &d->ckpt_mu, &ts);
}

static void *ckpt_main(void *arg)
{
	struct db *d = arg;

	pthread_mutex_lock(&d->ckpt_mu);
	for (;;) {
		while (!d->ckpt_wanted && !d->ckpt_stop)
			pthread_cond_wait(&d->ckpt_cv, &d->ckpt_mu);
		if (d->ckpt_stop)
			break;
		int64_t idle = keep_monotonic_ns() - d->last_commit_ns;
		uint64_t pending = pending_bytes(d);
		bool copy = d->ckpt_now || pending >= CKPT_MAX_BYTES ||
			    (pending >= CKPT_BYTES && idle >= CKPT_IDLE_NS);
		bool shrink = d->wal_big && idle >= CKPT_IDLE_NS;
		if (!copy && !shrink) {
			if (pending < CKPT_BYTES && !d->wal_big)
				d->ckpt_wanted = false; /* nothing to wait for */
			else /* wait for a pause (notes 1 and 3) */
				ckpt_sleep(d, CKPT_IDLE_NS - idle);
			continue;
		}
		d->ckpt_wanted = false;
		d->ckpt_now = false;
		uint64_t before = d->backfilled, gen = d->wal_gen;
		pthread_mutex_unlock(&d->ckpt_mu);

		int nlog = 0, nckpt = 0;
		int src = sqlite3_wal_checkpoint_v2(d->ckpt_h, NULL,
						    SQLITE_CHECKPOINT_PASSIVE,
						    &nlog, &nckpt);
		if (src != SQLITE_OK && src != SQLITE_BUSY)
			keep_log(LOG_WARNING, "checkpoint failed: %s",
				 sqlite3_errmsg(d->ckpt_h));
		bool all = src == SQLITE_OK && nlog == nckpt;
		if (src == SQLITE_OK && nckpt > 0 && (uint64_t)nckpt > before)
			sync_db_file(d->ckpt_h);
		bool shrunk = false, tried = false;
		if (all && shrink) {
			/* the copy took a while: is it still a pause? */
			pthread_mutex_lock(&d->ckpt_mu);
			tried = keep_monotonic_ns() - d->last_commit_ns >=
				CKPT_IDLE_NS;
			pthread_mutex_unlock(&d->ckpt_mu);
		}
		if (tried) {
			busy_set(d->ckpt_h, false);
			src = sqlite3_wal_checkpoint_v2(d->ckpt_h, NULL,
						SQLITE_CHECKPOINT_TRUNCATE,
						NULL, NULL);
			busy_set(d->ckpt_h, true);
			if (src != SQLITE_OK && src != SQLITE_BUSY)
				keep_log(LOG_WARNING, "checkpoint failed: %s",
					 sqlite3_errmsg(d->ckpt_h));
			shrunk = src == SQLITE_OK;
		}

		pthread_mutex_lock(&d->ckpt_mu);
		d->ckpt_rounds++;
		pthread_cond_broadcast(&d->ckpt_done_cv);
		if (shrunk) {
			d->wal_big = false;
			d->wal_frames = d->backfilled = 0;
		} else if (src == SQLITE_OK && nckpt >= 0 &&
			   (uint64_t)nckpt > d->backfilled &&
			   d->wal_gen == gen) {
			/* (a WAL started over meanwhile counts anew) */
			d->backfilled = (uint64_t)nckpt;
		}
		/* frames written meanwhile, or a file still to shrink:
		 * looked at again, by the rules above */
		if (pending_bytes(d) >= CKPT_BYTES || d->wal_big)
			d->ckpt_wanted = true;
		if (tried && !shrunk && !d->ckpt_stop)
			ckpt_sleep(d, CKPT_IDLE_NS); /* a writer came */
	}
	pthread_mutex_unlock(&d->ckpt_mu);
	return NULL;
}

static int conn_open(const char *file, int oflags, sqlite3 **out)
{
	sqlite3 *h = NULL;
	int src = sqlite3_open_v2(file, &h, oflags | SQLITE_OPEN_NOMUTEX,
				  db_vfs());

	if (src != SQLITE_OK) {
		int rc = (src & 0xff) == SQLITE_CANTOPEN ? KEEP_E_NOTSTORE
							 : db_err(h, src, file);
		sqlite3_close_v2(h);
		return rc;
	}
	busy_set(h, true);
	sqlite3_extended_result_codes(h, 0);
	*out = h;
	return 0;
}

static int peek(sqlite3 *h, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *q = NULL;
	int rc = EAGAIN;

	if (sqlite3_prepare_v2(h, "SELECT value FROM meta WHERE key = ?1", -1,
			       &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
		int src = sqlite3_step(q);
		if (src == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(q, 0);
			snprintf(buf, len, "%s", t ? (const char *)t : "");
			rc = 0;
		} else if (src == SQLITE_DONE) {
			rc = ENOENT;
		}
	}
	sqlite3_finalize(q);
	return rc;
}

int db_peek_meta(const char *file, const char *key, char *buf, size_t len)
{
	struct stat st;
	sqlite3 *h = NULL;
	char *uri = NULL;
	size_t n = strlen(file);
	int rc = EAGAIN;

	/* with a WAL, the database file alone may be out of date: a
	 * read-only connection reads through it (and neither checkpoints
	 * nor removes it when it closes) */
	char *wal = malloc(n + 5);
	if (!wal)
		return KEEP_E_NOMEM;
	snprintf(wal, n + 5, "%s-wal", file);
	int gone = stat(wal, &st) != 0 && errno == ENOENT;
	free(wal);
	if (!gone) {
		if (sqlite3_open_v2(file, &h,
				    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
				    NULL) == SQLITE_OK) {
			busy_set(h, true);
			rc = peek(h, key, buf, len);
		}
		sqlite3_close_v2(h);
		return rc;
	}
	/* a URI, its path percent-encoded but for the plainest bytes */
	uri = malloc(3 * n + 32);
	if (!uri)
		return KEEP_E_NOMEM;
	char *p = uri + sprintf(uri, "file:");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)file[i];
		if (isalnum(c) || strchr("/-_.~", c))
			*p++ = (char)c;
		else
			p += sprintf(p, "%%%02X", c);
	}
	strcpy(p, "?immutable=1");
	if (sqlite3_open_v2(uri, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
					     SQLITE_OPEN_NOMUTEX,
			    NULL) == SQLITE_OK)
		rc = peek(h, key, buf, len);
	sqlite3_close_v2(h);
	free(uri);
	return rc;
}

int db_open(struct keep_store *s, const char *file, bool create, bool rdonly)
{
	struct db *d = calloc(1, sizeof(*d));
	int oflags = rdonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	int rc;

	if (!d)
		return KEEP_E_NOMEM;
	if (create)
		oflags |= SQLITE_OPEN_CREATE;
	pthread_mutex_init(&d->ckpt_mu, NULL);
	pthread_cond_init(&d->ckpt_cv, NULL);
	pthread_cond_init(&d->ckpt_done_cv, NULL);
	d->file = strdup(file);
	rc = d->file ? conn_open(file, oflags, &d->h) : KEEP_E_NOMEM;
	if (rc == 0 && !rdonly)
		rc = exec(d->h, "PRAGMA synchronous = NORMAL;"
				"PRAGMA cache_size = -16384;"
				"PRAGMA temp_store = MEMORY;"
				"PRAGMA wal_autocheckpoint = 0;"
				"PRAGMA journal_size_limit = -1;");
	if (rc) {
		sqlite3_close_v2(d->h);
		free(d->file);
		free(d);
		return rc;
	}
	s->db = d;
	return 0;
}

/* Set one of vfs.c's DB_FCNTL_* switches of the database file; on
 * SQLite's default VFS (db_vfs() failed) it is not found and changes
 * nothing. */
static void vfs_switch(sqlite3 *h, int op, bool on)
{
	int arg = on;

	sqlite3_file_control(h, "main", op, &arg);
}

static int ckpt_start(struct keep_store *s)
{
	struct db *d = s->db;
	int rc = conn_open(d->file, SQLITE_OPEN_READWRITE, &d->ckpt_h);

	if (rc)
		return rc;
	exec(d->ckpt_h, "PRAGMA synchronous = NORMAL");
	vfs_switch(d->ckpt_h, DB_FCNTL_SYNC_EVERY, true); /* vfs.c note 5 */
	{
		sqlite3_stmt *st;
		d->page_size = 4096;
		if (sqlite3_prepare_v2(d->h, "PRAGMA page_size", -1, &st, NULL) ==
		    SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				d->page_size = (uint32_t)sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
		}
	}
	if (pthread_create(&d->ckpt_thread, NULL, ckpt_main, d) != 0) {
		sqlite3_close_v2(d->ckpt_h);
		d->ckpt_h = NULL;
		return KEEP_E_NOMEM;
	}
	d->ckpt_running = true;
	sqlite3_wal_hook(d->h, wal_hook, d);
	/* the checkpoint thread shrinks the file (vfs.c note 2) */
	vfs_switch(d->h, DB_FCNTL_KEEP_SIZE, true);
	return 0;
}

void db_close(struct keep_store *s)
{
	struct db *d = s->db;

	if (!d)
		return;
	if (d->ckpt_running) {
		sqlite3_wal_hook(d->h, NULL, NULL);
		pthread_mutex_lock(&d->ckpt_mu);
		d->ckpt_stop = true;
		pthread_cond_signal(&d->ckpt_cv);
		pthread_cond_broadcast(&d->ckpt_done_cv);
		pthread_mutex_unlock(&d->ckpt_mu);
		pthread_join(d->ckpt_thread, NULL);
		sqlite3_close_v2(d->ckpt_h);
		/* the last checkpoint, below, shrinks it */
		vfs_switch(d->h, DB_FCNTL_KEEP_SIZE, false);
	}
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(d->st[i]);
	/* A clean close of the last connection checkpoints and removes the
	 * WAL; make that durable too. */
	sqlite3_close_v2(d->h);
	pthread_mutex_destroy(&d->ckpt_mu);
	pthread_cond_destroy(&d->ckpt_cv);
	pthread_cond_destroy(&d->ckpt_done_cv);
	free(d->file);
	free(d);
	s->db = NULL;
}

static int meta_set(struct keep_store *s, const char *key, const char *text,
		    int64_t num, bool is_text)
{
	STMT(st, s, ST_META_SET);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (is_text)
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 2, num);
	return run(s, st, "write meta");
}

int db_create_schema(struct keep_store *s, const struct keep_init_opts *o,
		     const char *uuid, int64_t now)
{
	struct db *d = s->db;
	char sql[128];
	int rc;

	snprintf(sql, sizeof(sql), "PRAGMA page_size = %u", o->page_size);
	rc = exec(d->h, sql);
	/* before any table: garbage collection gives pages back (gc.c) */
	if (!rc)
		rc = exec(d->h, "PRAGMA auto_vacuum = INCREMENTAL");
	if (!rc)
		rc = exec(d->h, "PRAGMA journal_mode = WAL");
	if (!rc)
		rc = exec(d->h, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	rc = exec(d->h, schema_sql);
	/* an encrypted store is format 2, which builds that cannot seal
	 * blobs refuse to open */
	if (!rc)
		rc = meta_set(s, "format_version", NULL,
			      s->encrypted ? KEEP_FORMAT_VERSION
					   : KEEP_FORMAT_PLAIN,
			      false);
	if (!rc && s->encrypted)
		rc = meta_set(s, "cipher", "xchacha20poly1305", 0, true);
	if (!rc && s->encrypted)
		rc = meta_set(s, "key_wrap", s->wrap_text, 0, true);
	if (!rc)
		rc = meta_set(s, "block_size", NULL, o->block_size, false);
	if (!rc)
		rc = meta_set(s, "uuid", uuid, 0, true);
	if (!rc)
		rc = meta_set(s, "created_ns", NULL, now, false);
	if (!rc)
		rc = meta_set(s, "next_ino", NULL, KEEP_ROOT_INO + 1, false);
	if (!rc)
		rc = meta_set(s, "next_dirent", NULL, 1, false);
	if (!rc) {
		/* commit 1 holds the empty root directory */
		struct kinode root = {
			.parent = KEEP_ROOT_INO,
			.a = {.ino = KEEP_ROOT_INO,
			      .mode = S_IFDIR | (o->root_mode ? o->root_mode & 07777 : 0755),
			      .uid = o->uid,
			      .gid = o->gid,
			      .nlink = 2,
			      .atime_ns = now,
			      .mtime_ns = now,
			      .ctime_ns = now,
			      .btime_ns = now},
		};
		s->open_commit = 1;
		rc = db_inode_new(s, &root, NULL);
	}
	if (!rc) {
		STMT(st, s, ST_COMMIT_INSERT);
		sqlite3_bind_int64(st, 1, 1);
		sqlite3_bind_int64(st, 2, now);
		rc = run(s, st, "first commit");
	}
	if (!rc)
		rc = exec(d->h, "COMMIT");
	if (rc)
		exec(d->h, "ROLLBACK");
	return rc;
}

static int meta_get_int(struct keep_store *s, const char *key, int64_t *out)
{
	STMT(st, s, ST_META_GET);
	int src, rc = 0;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (src == SQLITE_DONE)
		rc = KEEP_CORRUPT_BKPT(key);
	else
		rc = db_err(s->db->h, src, "read meta");
	done(st);
	return rc;
}

int db_meta_text(struct keep_store *s, const char *key, char *buf,
		 size_t len)
{
	STMT(st, s, ST_META_GET);
	int src, rc = 0;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(buf, len, "%s", t ? (const char *)t : "");
	} else if (src == SQLITE_DONE) {
		rc = ENOENT;
	} else {
		rc = db_err(s->db->h, src, "read meta");
	}
	done(st);
	return rc;
}

int db_meta_set_int(struct keep_store *s, const char *key, int64_t v)
{
	return meta_set(s, key, NULL, v, false);
}

int db_meta_set_text(struct keep_store *s, const char *key, const char *text)
{
	sqlite3_stmt *st;
	int src;

	if (text)
		return meta_set(s, key, text, 0, true);
	src = sqlite3_prepare_v2(s->db->h, "DELETE FROM meta WHERE key = ?1",
				 -1, &st, NULL);
	if (src == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		src = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	return src == SQLITE_DONE || src == SQLITE_OK
		       ? 0
		       : db_err(s->db->h, src, "write meta");
}

int db_load_meta(struct keep_store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	int rc;

	/* Tell "not a store" from "damaged store" before anything else. */
	if (sqlite3_prepare_v2(s->db->h, "SELECT 1 FROM meta LIMIT 1", -1, &st,
			       NULL) != SQLITE_OK) {
		int src = sqlite3_errcode(s->db->h);
		sqlite3_finalize(st);
		if (src == SQLITE_NOTADB || src == SQLITE_ERROR)
			return KEEP_E_NOTSTORE;
		return db_err(s->db->h, src, "open");
	}
	sqlite3_finalize(st);

	rc = meta_get_int(s, "format_version", &v);
	if (rc)
		return rc;
	if (v < 1 || v > KEEP_FORMAT_VERSION)
		return KEEP_E_VERSION;
	s->format = (uint32_t)v;
	rc = meta_get_int(s, "block_size", &v);
	if (rc)
		return rc;
	if (v < KEEP_MIN_BLOCK_SIZE || v > KEEP_MAX_BLOCK_SIZE || (v & (v - 1)))
		return KEEP_CORRUPT_BKPT("bad block size in meta");
	s->block_size = (uint32_t)v;
	rc = meta_get_int(s, "next_ino", &v);
	if (rc)
		return rc;
	s->next_ino = (uint64_t)v;
	rc = meta_get_int(s, "next_dirent", &v);
	if (rc)
		return rc;
	s->next_dirent = (uint64_t)v;

	STMT(q, s, ST_META_GET);
	sqlite3_bind_text(q, 1, "uuid", -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(q, 0);
		snprintf(s->uuid, sizeof(s->uuid), "%s", t ? (const char *)t : "");
	}
	done(q);

	char wrap[512];
	rc = db_meta_text(s, "key_wrap", wrap, sizeof(wrap));
	if (rc == 0) {
		free(s->wrap_text);
		s->wrap_text = strdup(wrap);
		if (!s->wrap_text)
			return KEEP_E_NOMEM;
		s->encrypted = true;
	} else if (rc != ENOENT) {
		return rc;
	}
	if (s->encrypted != (s->format >= 2))
		return KEEP_CORRUPT_BKPT("format version and key disagree");
	return 0;
}

/* ---- transactions -------------------------------------------------------- */

int db_read_begin(struct keep_store *s)
{
	if (s->flags & KEEP_OPEN_WRITE)
		return 0; /* the writer's locks keep its view still */
	return exec(s->db->h, "BEGIN");
}

void db_read_end(struct keep_store *s)
{
	if (!(s->flags & KEEP_OPEN_WRITE) && !sqlite3_get_autocommit(s->db->h))
		exec(s->db->h, "COMMIT");
}

int db_begin(struct keep_store *s)
{
	STMT(st, s, ST_BEGIN);
	return run(s, st, "begin");
}

int db_savepoint(struct keep_store *s)
{
	STMT(st, s, ST_SAVEPOINT);
	return run(s, st, "savepoint");
}

int db_release(struct keep_store *s, int rc)
{
	if (rc) {
		sqlite3_stmt *st = stmt(s, ST_ROLLBACK_TO);
		if (!st || run(s, st, "undo operation") != 0) {
			keep_log(LOG_ERR, "cannot undo a failed operation");
			s->sticky = KEEP_E_READONLY;
		}
	}
	STMT(st, s, ST_RELEASE);
	int rc2 = run(s, st, "release");
	return rc ? rc : rc2;
}

int db_commit(struct keep_store *s, uint64_t id, int64_t time_ns)
{
	int rc;
	{
		STMT(st, s, ST_COMMIT_INSERT);
		sqlite3_bind_int64(st, 1, (int64_t)id);
		sqlite3_bind_int64(st, 2, time_ns);
		rc = run(s, st, "commit row");
	}
	if (!rc)
		rc = meta_set(s, "next_ino", NULL, (int64_t)s->next_ino, false);
	if (!rc)
		rc = meta_set(s, "next_dirent", NULL, (int64_t)s->next_dirent,
			      false);
	if (!rc) {
		STMT(st, s, ST_COMMIT);
		rc = run(s, st, "commit");
	}
	if (!rc && !s->db->ckpt_running && (s->flags & KEEP_OPEN_WRITE))
		ckpt_start(s); /* best effort; commits work without it */
	return rc;
}

int db_sync_wal(struct keep_store *s)
{
	size_t n = strlen(s->db->file) + 5;
	char *wal = malloc(n);
	int fd, rc = 0;

	if (!wal)
		return KEEP_E_NOMEM;
	snprintf(wal, n, "%s-wal", s->db->file);
	fd = open(wal, O_RDONLY | O_CLOEXEC);
	free(wal);
	if (fd < 0)
		return errno == ENOENT ? 0 : errno; /* no WAL: all in the db */
	if (fdatasync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}

void db_rollback(struct keep_store *s)
{
	if (sqlite3_get_autocommit(s->db->h))
		return;
	sqlite3_stmt *st = stmt(s, ST_ROLLBACK);
	if (st)
		run(s, st, "rollback");
}

uint64_t db_last_commit(struct keep_store *s)
{
	sqlite3_stmt *st = stmt(s, ST_LAST_COMMIT);
	uint64_t id = 0;

	if (!st)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		id = (uint64_t)sqlite3_column_int64(st, 0);
	done(st);
	return id;
}

/* ---- inodes ------------------------------------------------------------ */

static void read_inode(sqlite3_stmt *st, uint64_t ino, struct kinode *n)
{
	n->born = (uint64_t)sqlite3_column_int64(st, 0);
	n->a.ino = ino;
	n->a.mode = (uint32_t)sqlite3_column_int64(st, 1);
	n->a.uid = (uint32_t)sqlite3_column_int64(st, 2);
	n->a.gid = (uint32_t)sqlite3_column_int64(st, 3);
	n->a.nlink = (uint32_t)sqlite3_column_int64(st, 4);
	n->a.size = (uint64_t)sqlite3_column_int64(st, 5);
	n->a.rdev = (uint64_t)sqlite3_column_int64(st, 6);
	n->a.atime_ns = sqlite3_column_int64(st, 7);
	n->a.mtime_ns = sqlite3_column_int64(st, 8);
	n->a.ctime_ns = sqlite3_column_int64(st, 9);
	n->a.btime_ns = sqlite3_column_int64(st, 10);
	n->a.blocks = (uint64_t)sqlite3_column_int64(st, 11);
	n->parent = (uint64_t)sqlite3_column_int64(st, 12);
}

/* A view row found by "born <= C ORDER BY born DESC" is visible only if it
 * had not died by C. */
static bool alive_at(sqlite3_stmt *st, int col, uint64_t view)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ||
	       (uint64_t)sqlite3_column_int64(st, col) > view;
}

int db_inode_get(struct keep_store *s, uint64_t view, uint64_t ino,
		 struct kinode *out)
{
	STMT(st, s, view == KEEP_LIVE ? ST_INODE_GET_LIVE : ST_INODE_GET_VIEW);
	int src, rc = ENOENT;

	sqlite3_bind_int64(st, 1, (int64_t)ino);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 2, (int64_t)view);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		if (view == KEEP_LIVE || alive_at(st, 13, view)) {
			read_inode(st, ino, out);
			rc = 0;
		}
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "read inode");
	}
	done(st);
	return rc;
}

static void bind_attrs(sqlite3_stmt *st, int first, const struct kinode *n)
{
	sqlite3_bind_int64(st, first + 0, n->a.mode);
	sqlite3_bind_int64(st, first + 1, n->a.uid);
	sqlite3_bind_int64(st, first + 2, n->a.gid);
	sqlite3_bind_int64(st, first + 3, n->a.nlink);
	sqlite3_bind_int64(st, first + 4, (int64_t)n->a.size);
	sqlite3_bind_int64(st, first + 5, (int64_t)n->a.rdev);
	sqlite3_bind_int64(st, first + 6, n->a.atime_ns);
	sqlite3_bind_int64(st, first + 7, n->a.mtime_ns);
	sqlite3_bind_int64(st, first + 8, n->a.ctime_ns);
	sqlite3_bind_int64(st, first + 9, n->a.btime_ns);
	sqlite3_bind_int64(st, first + 10, (int64_t)n->a.blocks);
	sqlite3_bind_int64(st, first + 11, (int64_t)n->parent);
}

int db_inode_put(struct keep_store *s, struct kinode *n)
{
	uint64_t o = s->open_commit;
	int rc;

	if (n->born == o) {
		STMT(st, s, ST_INODE_UPDATE);
		sqlite3_bind_int64(st, 1, (int64_t)n->a.ino);
		sqlite3_bind_int64(st, 2, (int64_t)n->born);
		bind_attrs(st, 3, n);
		return run(s, st, "update inode");
	}
	{
		STMT(st, s, ST_INODE_DIE);
		sqlite3_bind_int64(st, 1, (int64_t)n->a.ino);
		sqlite3_bind_int64(st, 2, (int64_t)n->born);
		sqlite3_bind_int64(st, 3, (int64_t)o);
		rc = run(s, st, "end inode version");
	}
	if (rc)
		return rc;
	{
		STMT(st, s, ST_INODE_COPY);
		sqlite3_bind_int64(st, 1, (int64_t)n->a.ino);
		sqlite3_bind_int64(st, 2, (int64_t)n->born);
		sqlite3_bind_int64(st, 3, (int64_t)o);
		bind_attrs(st, 4, n);
		rc = run(s, st, "new inode version");
	}
	if (!rc)
		n->born = o;
	return rc;
}

int db_inode_new(struct keep_store *s, struct kinode *n, const char *symlink)
{
	STMT(st, s, ST_INODE_INSERT);
	int rc;

	sqlite3_bind_int64(st, 1, (int64_t)n->a.ino);
	sqlite3_bind_int64(st, 2, (int64_t)s->open_commit);
	bind_attrs(st, 3, n);
	if (symlink)
		sqlite3_bind_blob(st, 15, symlink, (int)strlen(symlink),
				  SQLITE_STATIC);
	rc = run(s, st, "insert inode");
	if (!rc)
		n->born = s->open_commit;
	return rc;
}

int db_inode_kill(struct keep_store *s, uint64_t ino)
{
	struct kinode n;
	int rc = db_inode_get(s, KEEP_LIVE, ino, &n);

	if (rc)
		return rc;
	if (n.born == s->open_commit) {
		STMT(st, s, ST_INODE_DELETE);
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)n.born);
		return run(s, st, "delete inode");
	}
	STMT(st, s, ST_INODE_DIE);
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)n.born);
	sqlite3_bind_int64(st, 3, (int64_t)s->open_commit);
	return run(s, st, "end inode");
}

int db_symlink_get(struct keep_store *s, uint64_t view, uint64_t ino,
		   char *buf, size_t size)
{
	STMT(st, s, view == KEEP_LIVE ? ST_SYMLINK_LIVE : ST_SYMLINK_VIEW);
	int src, rc = ENOENT;

	sqlite3_bind_int64(st, 1, (int64_t)ino);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 2, (int64_t)view);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW && (view == KEEP_LIVE || alive_at(st, 1, view))) {
		const void *p = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			rc = EINVAL;
		} else if (len + 1 > size) {
			rc = ERANGE;
		} else {
			if (len)
				memcpy(buf, p, len);
			buf[len] = '\0';
			rc = 0;
		}
	} else if (src != SQLITE_ROW && src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "read symlink");
	}
	done(st);
	return rc;
}

int db_orphans(struct keep_store *s, uint64_t *inos, size_t max, size_t *n)
{
	STMT(st, s, ST_ORPHANS);
	size_t k = 0;
	int src;

	sqlite3_bind_int64(st, 1, (int64_t)max);
	while ((src = sqlite3_step(st)) == SQLITE_ROW && k < max)
		inos[k++] = (uint64_t)sqlite3_column_int64(st, 0);
	done(st);
	*n = k;
	return src == SQLITE_ROW || src == SQLITE_DONE ? 0
						       : db_err(s->db->h, src, "orphans");
}

/* ---- directory entries ------------------------------------------------- */

int db_dirent_find(struct keep_store *s, uint64_t view, uint64_t parent,
		   const char *name, uint64_t *ino, int64_t *id)
{
	STMT(st, s, view == KEEP_LIVE ? ST_DIRENT_FIND_LIVE : ST_DIRENT_FIND_VIEW);
	int src, rc = ENOENT;

	sqlite3_bind_int64(st, 1, (int64_t)parent);
	bind_name(st, 2, name);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 3, (int64_t)view);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		if (view == KEEP_LIVE || alive_at(st, 2, view)) {
			if (id)
				*id = sqlite3_column_int64(st, 0);
			*ino = (uint64_t)sqlite3_column_int64(st, 1);
			rc = 0;
		}
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "lookup");
	}
	done(st);
	return rc;
}

int db_dirent_add(struct keep_store *s, uint64_t parent, const char *name,
		  uint64_t ino)
{
	STMT(st, s, ST_DIRENT_ADD);
	sqlite3_bind_int64(st, 1, (int64_t)parent);
	bind_name(st, 2, name);
	sqlite3_bind_int64(st, 3, (int64_t)s->open_commit);
	sqlite3_bind_int64(st, 4, (int64_t)ino);
	sqlite3_bind_int64(st, 5, (int64_t)s->next_dirent++);
	return run(s, st, "add entry");
}

int db_dirent_kill(struct keep_store *s, uint64_t parent, int64_t id)
{
	int rc;
	{
		STMT(st, s, ST_DIRENT_DIE);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)s->open_commit);
		sqlite3_bind_int64(st, 3, (int64_t)parent);
		rc = run(s, st, "end entry");
	}
	if (rc || sqlite3_changes(s->db->h) > 0)
		return rc;
	STMT(st, s, ST_DIRENT_DELETE);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)s->open_commit);
	sqlite3_bind_int64(st, 3, (int64_t)parent);
	return run(s, st, "delete entry");
}

int db_dirent_has_children(struct keep_store *s, uint64_t parent, bool *yes)
{
	STMT(st, s, ST_DIRENT_CHILD);
	int src;

	sqlite3_bind_int64(st, 1, (int64_t)parent);
	src = sqlite3_step(st);
	done(st);
	if (src != SQLITE_ROW && src != SQLITE_DONE)
		return db_err(s->db->h, src, "list");
	*yes = src == SQLITE_ROW;
	return 0;
}

/*
 * Entries are fetched in batches and the statement is reset before the
 * callback runs, so a callback may call back into the store (to fetch
 * attributes) with the same connection.
 */
int db_dirent_list(struct keep_store *s, uint64_t view, uint64_t parent,
		   int64_t after, db_dirent_cb cb, void *ctx)
{
	enum { BATCH = 64 };
	struct {
		int64_t id;
		uint64_t ino;
		char name[KEEP_NAME_MAX + 1];
	} *ent = malloc(sizeof(*ent) * BATCH);
	int rc = 0;

	if (!ent)
		return KEEP_E_NOMEM;
	for (;;) {
		sqlite3_stmt *st = stmt(s, view == KEEP_LIVE ? ST_DIRENT_LIST_LIVE
							      : ST_DIRENT_LIST_VIEW);
		int n = 0, src;

		if (!st) {
			rc = KEEP_E_SQLITE;
			break;
		}
		sqlite3_bind_int64(st, 1, (int64_t)parent);
		sqlite3_bind_int64(st, 2, after);
		sqlite3_bind_int64(st, 3, BATCH);
		if (view != KEEP_LIVE)
			sqlite3_bind_int64(st, 4, (int64_t)view);
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			int len = sqlite3_column_bytes(st, 1);
			if (len > KEEP_NAME_MAX)
				len = KEEP_NAME_MAX;
			ent[n].id = sqlite3_column_int64(st, 0);
			memcpy(ent[n].name, sqlite3_column_blob(st, 1), (size_t)len);
			ent[n].name[len] = '\0';
			ent[n].ino = (uint64_t)sqlite3_column_int64(st, 2);
			n++;
		}
		done(st);
		if (src != SQLITE_DONE) {
			rc = db_err(s->db->h, src, "list");
			break;
		}
		for (int i = 0; i < n && !rc; i++)
			rc = cb(ctx, ent[i].id, ent[i].name, ent[i].ino);
		if (rc || n < BATCH)
			break;
		after = ent[n - 1].id;
	}
	free(ent);
	return rc;
}

/* ---- blocks ------------------------------------------------------------ */

int db_block_get(struct keep_store *s, uint64_t view, uint64_t ino,
		 uint64_t idx, uint64_t *blob)
{
	STMT(st, s, view == KEEP_LIVE ? ST_BLOCK_GET_LIVE : ST_BLOCK_GET_VIEW);
	int src, rc = ENOENT;

	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 3, (int64_t)view);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		if (view == KEEP_LIVE || alive_at(st, 1, view)) {
			*blob = (uint64_t)sqlite3_column_int64(st, 0);
			rc = 0;
		}
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "read block map");
	}
	done(st);
	return rc;
}

int db_block_range(struct keep_store *s, uint64_t view, uint64_t ino,
		   uint64_t from, uint64_t to, db_block_cb cb, void *ctx)
{
	STMT(st, s, view == KEEP_LIVE ? ST_BLOCK_RANGE_LIVE : ST_BLOCK_RANGE_VIEW);
	int src, rc = 0;

	if (to > (uint64_t)INT64_MAX)
		to = (uint64_t)INT64_MAX;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)from);
	sqlite3_bind_int64(st, 3, (int64_t)to);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 4, (int64_t)view);
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = cb(ctx, (uint64_t)sqlite3_column_int64(st, 0),
			(uint64_t)sqlite3_column_int64(st, 1));
	if (!rc && src != SQLITE_DONE)
		rc = db_err(s->db->h, src, "read block map");
	done(st);
	return rc;
}

static int block_find(struct keep_store *s, uint64_t ino, uint64_t idx,
		      uint64_t *born)
{
	STMT(st, s, ST_BLOCK_FIND);
	int src, rc = ENOENT;

	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*born = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "read block map");
	}
	done(st);
	return rc;
}

static int block_op(struct keep_store *s, enum sid id, uint64_t ino,
		    uint64_t idx, uint64_t born, uint64_t arg, bool has_arg)
{
	STMT(st, s, id);
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_int64(st, 3, (int64_t)born);
	if (has_arg)
		sqlite3_bind_int64(st, 4, (int64_t)arg);
	return run(s, st, "write block map");
}

int db_block_set(struct keep_store *s, uint64_t ino, uint64_t idx,
		 uint64_t blob, bool *was_hole)
{
	uint64_t o = s->open_commit, born;
	int rc = block_find(s, ino, idx, &born);

	*was_hole = rc == ENOENT;
	if (rc == 0 && born == o)
		return block_op(s, ST_BLOCK_UPDATE, ino, idx, born, blob, true);
	if (rc == 0)
		rc = block_op(s, ST_BLOCK_DIE, ino, idx, born, o, true);
	else if (rc == ENOENT)
		rc = 0;
	if (!rc)
		rc = block_op(s, ST_BLOCK_INSERT, ino, idx, o, blob, true);
	return rc;
}

int db_block_kill(struct keep_store *s, uint64_t ino, uint64_t idx,
		  bool *was_data)
{
	uint64_t o = s->open_commit, born;
	int rc = block_find(s, ino, idx, &born);

	*was_data = rc == 0;
	if (rc == ENOENT)
		return 0;
	if (rc)
		return rc;
	if (born == o)
		return block_op(s, ST_BLOCK_DELETE, ino, idx, born, 0, false);
	return block_op(s, ST_BLOCK_DIE, ino, idx, born, o, true);
}

int db_block_kill_from(struct keep_store *s, uint64_t ino, uint64_t from,
		       uint64_t *killed)
{
	int rc;
	uint64_t n = 0;

	if (from > (uint64_t)INT64_MAX) {
		*killed = 0;
		return 0;
	}
	{
		STMT(st, s, ST_BLOCK_DELETE_FROM);
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)from);
		sqlite3_bind_int64(st, 3, (int64_t)s->open_commit);
		rc = run(s, st, "truncate block map");
		n += (uint64_t)sqlite3_changes(s->db->h);
	}
	if (!rc) {
		STMT(st, s, ST_BLOCK_DIE_FROM);
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)from);
		sqlite3_bind_int64(st, 3, (int64_t)s->open_commit);
		rc = run(s, st, "truncate block map");
		n += (uint64_t)sqlite3_changes(s->db->h);
	}
	if (!rc)
		*killed = n;
	return rc;
}

/* ---- blobs ------------------------------------------------------------- */

int db_blob_find(struct keep_store *s, const uint8_t *hash, uint64_t *id)
{
	STMT(st, s, ST_BLOB_FIND);
	int src, rc = ENOENT;

	sqlite3_bind_blob(st, 1, hash, KEEP_HASH_BYTES, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*id = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "find blob");
	}
	done(st);
	return rc;
}

int db_blob_insert(struct keep_store *s, const uint8_t *hash, size_t size,
		   const void *data, size_t csize, unsigned flags, uint32_t crc,
		   uint64_t *id)
{
	STMT(st, s, ST_BLOB_INSERT);
	int rc;

	sqlite3_bind_blob(st, 1, hash, KEEP_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	sqlite3_bind_int64(st, 3, (int64_t)csize);
	sqlite3_bind_int64(st, 4, flags);
	sqlite3_bind_int64(st, 5, crc);
	sqlite3_bind_blob(st, 6, data, (int)csize, SQLITE_STATIC);
	rc = run(s, st, "store blob");
	if (!rc)
		*id = (uint64_t)sqlite3_last_insert_rowid(s->db->h);
	return rc;
}

int db_rpool_open(struct keep_store *s, const char *file)
{
	struct rpool *p = calloc(1, sizeof(*p));
	int rc = 0;

	if (!p)
		return KEEP_E_NOMEM;
	for (int i = 0; i < RPOOL_SIZE; i++)
		pthread_mutex_init(&p->slot[i].mu, NULL);
	s->readers = p;
	for (int i = 0; i < RPOOL_SIZE && !rc; i++) {
		struct rslot *r = &p->slot[i];
		rc = conn_open(file, SQLITE_OPEN_READONLY, &r->h);
		if (!rc && sqlite3_prepare_v3(r->h,
					      "SELECT size, flags, data, crc, "
					      "hash FROM blobs WHERE id = ?1",
					      -1, SQLITE_PREPARE_PERSISTENT,
					      &r->read, NULL) != SQLITE_OK)
			rc = db_err(r->h, sqlite3_errcode(r->h), "prepare");
		if (!rc && (sqlite3_prepare_v3(r->h, "BEGIN", -1,
					       SQLITE_PREPARE_PERSISTENT, &r->begin,
					       NULL) != SQLITE_OK ||
			    sqlite3_prepare_v3(r->h, "COMMIT", -1,
					       SQLITE_PREPARE_PERSISTENT, &r->end,
					       NULL) != SQLITE_OK))
			rc = db_err(r->h, sqlite3_errcode(r->h), "prepare");
		if (!rc) {
			exec(r->h, "PRAGMA cache_size = -2048");
			r->codec = keep_codec_new();
			if (!r->codec)
				rc = KEEP_E_NOMEM;
		}
	}
	if (rc)
		db_rpool_close(s);
	return rc;
}

void db_rpool_close(struct keep_store *s)
{
	struct rpool *p = s->readers;

	if (!p)
		return;
	for (int i = 0; i < RPOOL_SIZE; i++) {
		sqlite3_finalize(p->slot[i].read);
		sqlite3_finalize(p->slot[i].begin);
		sqlite3_finalize(p->slot[i].end);
		sqlite3_close_v2(p->slot[i].h);
		keep_codec_free(p->slot[i].codec);
		pthread_mutex_destroy(&p->slot[i].mu);
	}
	free(p);
	s->readers = NULL;
}

struct rslot *db_reader_get(struct keep_store *s)
{
	struct rpool *p = s->readers;
	struct rslot *r = NULL;

	for (int i = 0; i < RPOOL_SIZE && !r; i++)
		if (pthread_mutex_trylock(&p->slot[i].mu) == 0)
			r = &p->slot[i];
	if (!r) {
		r = &p->slot[__atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED) %
			     RPOOL_SIZE];
		pthread_mutex_lock(&r->mu);
	}
	/* one read transaction for all the blobs of a request: the locks
	 * SQLite takes per transaction cost more than a small read */
	sqlite3_step(r->begin);
	sqlite3_reset(r->begin);
	return r;
}

void db_reader_put(struct rslot *r)
{
	if (!r)
		return;
	sqlite3_step(r->end);
	sqlite3_reset(r->end);
	pthread_mutex_unlock(&r->mu);
}

int db_blob_read(struct keep_store *s, struct rslot *slot, uint64_t id,
		 void *dst, size_t dstsize, size_t *size)
{
	struct rslot *r = slot ? slot : db_reader_get(s);
	int src, rc = 0;

	sqlite3_bind_int64(r->read, 1, (int64_t)id);
	src = sqlite3_step(r->read);
	if (src == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_int64(r->read, 0);
		unsigned flags = (unsigned)sqlite3_column_int64(r->read, 1);
		const void *data = sqlite3_column_blob(r->read, 2);
		size_t clen = (size_t)sqlite3_column_bytes(r->read, 2);
		uint32_t crc = (uint32_t)sqlite3_column_int64(r->read, 3);
		const uint8_t *hash = sqlite3_column_blob(r->read, 4);
		const char *why = NULL;
		if (n > dstsize)
			rc = KEEP_CORRUPT_BKPT("blob larger than a block");
		else if (sqlite3_column_bytes(r->read, 4) != KEEP_HASH_BYTES)
			rc = KEEP_CORRUPT_BKPT("blob hash of the wrong size");
		else
			rc = keep_unpack(r->codec, s->encrypted, s->keys, hash,
					 data, clen, flags, crc, dst, n, &why);
		if (rc == KEEP_E_CORRUPT && why)
			keep_log(LOG_ERR, "blob %llu: %s",
				 (unsigned long long)id, why);
		if (!rc)
			*size = n;
	} else if (src == SQLITE_DONE) {
		rc = KEEP_CORRUPT_BKPT("block refers to a missing blob");
	} else {
		rc = db_err(r->h, src, "read blob");
	}
	sqlite3_reset(r->read);
	if (!slot)
		db_reader_put(r);
	return rc;
}

/* ---- extended attributes ----------------------------------------------- */

int db_name_of(struct keep_store *s, uint64_t view, uint64_t ino,
	       uint64_t *parent, char *name, size_t len)
{
	sqlite3_stmt *st = NULL;
	int src, rc = ENOENT;

	src = sqlite3_prepare_v2(
	    s->db->h,
	    view == KEEP_LIVE
		? "SELECT parent, name FROM dirents WHERE ino = ?1 AND "
		  "died IS NULL ORDER BY parent, name LIMIT 1"
		: "SELECT parent, name FROM dirents WHERE ino = ?1 AND "
		  "born <= ?2 AND (died IS NULL OR died > ?2) ORDER BY parent, "
		  "name LIMIT 1",
	    -1, &st, NULL);
	if (src != SQLITE_OK)
		return db_err(s->db->h, src, "name of an inode");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 2, (int64_t)view);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 1);
		const void *p = sqlite3_column_blob(st, 1);
		if (n >= len)
			n = len - 1;
		if (n)
			memcpy(name, p, n);
		name[n] = '\0';
		*parent = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "name of an inode");
	}
	sqlite3_finalize(st);
	return rc;
}

int db_xattr_get(struct keep_store *s, uint64_t view, uint64_t ino,
		 const char *name, void *buf, size_t size, size_t *len)
{
	STMT(st, s, view == KEEP_LIVE ? ST_XATTR_GET_LIVE : ST_XATTR_GET_VIEW);
	int src, rc = ENODATA;

	sqlite3_bind_int64(st, 1, (int64_t)ino);
	bind_name(st, 2, name);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 3, (int64_t)view);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW && (view == KEEP_LIVE || alive_at(st, 1, view))) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		rc = 0;
		if (size && n > size)
			rc = ERANGE;
		else if (size && n)
			memcpy(buf, sqlite3_column_blob(st, 0), n);
		if (!rc)
			*len = n;
	} else if (src != SQLITE_ROW && src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "read xattr");
	}
	done(st);
	return rc;
}

static int xattr_find(struct keep_store *s, uint64_t ino, const char *name,
		      uint64_t *born)
{
	STMT(st, s, ST_XATTR_FIND);
	int src, rc = ENODATA;

	sqlite3_bind_int64(st, 1, (int64_t)ino);
	bind_name(st, 2, name);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*born = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "read xattr");
	}
	done(st);
	return rc;
}

static int xattr_op(struct keep_store *s, enum sid id, uint64_t ino,
		    const char *name, uint64_t born, const void *val,
		    size_t size, int64_t num)
{
	STMT(st, s, id);
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	bind_name(st, 2, name);
	sqlite3_bind_int64(st, 3, (int64_t)born);
	if (val)
		sqlite3_bind_blob(st, 4, size ? val : "", (int)size, SQLITE_STATIC);
	else if (num >= 0)
		sqlite3_bind_int64(st, 4, num);
	return run(s, st, "write xattr");
}

int db_xattr_set(struct keep_store *s, uint64_t ino, const char *name,
		 const void *val, size_t size, unsigned flags)
{
	uint64_t o = s->open_commit, born;
	int rc = xattr_find(s, ino, name, &born);
	static const char empty[1];

	if (!val)
		val = empty;
	if (rc == 0 && (flags & KEEP_XATTR_CREATE))
		return EEXIST;
	if (rc == ENODATA && (flags & KEEP_XATTR_REPLACE))
		return ENODATA;
	if (rc == 0 && born == o)
		return xattr_op(s, ST_XATTR_UPDATE, ino, name, born, val, size, -1);
	if (rc == 0)
		rc = xattr_op(s, ST_XATTR_DIE, ino, name, born, NULL, 0, (int64_t)o);
	else if (rc == ENODATA)
		rc = 0;
	if (!rc)
		rc = xattr_op(s, ST_XATTR_INSERT, ino, name, o, val, size, -1);
	return rc;
}

int db_xattr_remove(struct keep_store *s, uint64_t ino, const char *name)
{
	uint64_t o = s->open_commit, born;
	int rc = xattr_find(s, ino, name, &born);

	if (rc)
		return rc;
	if (born == o)
		return xattr_op(s, ST_XATTR_DELETE, ino, name, born, NULL, 0, -1);
	return xattr_op(s, ST_XATTR_DIE, ino, name, born, NULL, 0, (int64_t)o);
}

int db_xattr_list(struct keep_store *s, uint64_t view, uint64_t ino,
		  char *buf, size_t size, size_t *len)
{
	STMT(st, s, view == KEEP_LIVE ? ST_XATTR_LIST_LIVE : ST_XATTR_LIST_VIEW);
	size_t total = 0;
	int src, rc = 0;

	sqlite3_bind_int64(st, 1, (int64_t)ino);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 2, (int64_t)view);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		if (size) {
			if (total + n + 1 > size) {
				rc = ERANGE;
				break;
			}
			memcpy(buf + total, sqlite3_column_blob(st, 0), n);
			buf[total + n] = '\0';
		}
		total += n + 1;
	}
	if (!rc && src != SQLITE_DONE)
		rc = db_err(s->db->h, src, "list xattrs");
	done(st);
	if (!rc)
		*len = total;
	return rc;
}

int db_xattr_kill_all(struct keep_store *s, uint64_t ino)
{
	int rc;
	{
		STMT(st, s, ST_XATTR_DELETE_ALL);
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)s->open_commit);
		rc = run(s, st, "drop xattrs");
	}
	if (!rc) {
		STMT(st, s, ST_XATTR_DIE_ALL);
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)s->open_commit);
		rc = run(s, st, "drop xattrs");
	}
	return rc;
}

/* ---- snapshots and commits --------------------------------------------- */

/* Which of the tables and indexes added to format 1 the store has. */
static int schema_state(struct keep_store *s, bool *table, bool *index)
{
	STMT(st, s, ST_SCHEMA_HAS_SNAPS);
	int src = sqlite3_step(st), rc = 0;

	if (src == SQLITE_ROW) {
		*table = sqlite3_column_int(st, 0) > 0;
		*index = sqlite3_column_int(st, 1) > 0;
	} else {
		rc = db_err(s->db->h, src, "read schema");
		if (!rc)
			rc = KEEP_E_SQLITE; /* an aggregate always has a row */
	}
	done(st);
	return rc;
}

/*
 * Does the store have the snapshots table?  A read-only handle on a store
 * made before it existed asks again each time, so it sees the table once
 * a writer has added it.  (Points in time work without the index, only
 * slower.)
 */
static int snaps_present(struct keep_store *s, bool *yes)
{
	bool index;
	int rc = 0;

	if (!s->db->has_snaps)
		rc = schema_state(s, &s->db->has_snaps, &index);
	if (!rc)
		*yes = s->db->has_snaps;
	return rc;
}

int db_upgrade(struct keep_store *s)
{
	bool table = false, index = false;
	int rc = schema_state(s, &table, &index);

	if (rc || (table && index)) {
		s->db->has_snaps = table;
		return rc;
	}
	keep_log(LOG_INFO, "adding the snapshots table to the store");
	rc = exec(s->db->h, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	rc = exec(s->db->h, SNAPSHOTS_DDL);
	if (!rc)
		rc = exec(s->db->h, "COMMIT");
	if (rc)
		exec(s->db->h, "ROLLBACK");
	else
		s->db->has_snaps = true;
	return rc;
}

int db_end_tx(struct keep_store *s)
{
	STMT(st, s, ST_COMMIT);
	return run(s, st, "commit");
}

static void read_snap(sqlite3_stmt *st, struct keep_snapshot *out)
{
	int len = sqlite3_column_bytes(st, 1);

	memset(out, 0, sizeof(*out));
	out->id = (uint64_t)sqlite3_column_int64(st, 0);
	if (len > KEEP_SNAP_NAME_MAX)
		len = KEEP_SNAP_NAME_MAX; /* keep_check reports such a name */
	if (len > 0)
		memcpy(out->name, sqlite3_column_blob(st, 1), (size_t)len);
	out->name[len] = '\0';
	out->commit = (uint64_t)sqlite3_column_int64(st, 2);
	out->created_ns = sqlite3_column_int64(st, 3);
	out->origin = sqlite3_column_int(st, 4);
	out->commit_ns = sqlite3_column_int64(st, 5);
}

int db_snap_get(struct keep_store *s, const char *name, uint64_t id,
		struct keep_snapshot *out)
{
	bool yes = false;
	int src, rc = snaps_present(s, &yes);

	if (rc || !yes)
		return rc ? rc : ENOENT;
	STMT(st, s, name ? ST_SNAP_BY_NAME : ST_SNAP_BY_ID);
	if (name)
		bind_name(st, 1, name);
	else
		sqlite3_bind_int64(st, 1, (int64_t)id);
	src = sqlite3_step(st);
	rc = ENOENT;
	if (src == SQLITE_ROW) {
		read_snap(st, out);
		rc = 0;
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "read snapshot");
	}
	done(st);
	return rc;
}

int db_snap_list(struct keep_store *s, uint64_t after,
		 struct keep_snapshot *out, size_t max, size_t *n)
{
	bool yes = false;
	size_t k = 0;
	int src = SQLITE_DONE, rc = snaps_present(s, &yes);

	if (rc || !yes) {
		*n = 0;
		return rc;
	}
	STMT(st, s, ST_SNAP_LIST);
	sqlite3_bind_int64(st, 1, after > INT64_MAX ? INT64_MAX : (int64_t)after);
	sqlite3_bind_int64(st, 2, (int64_t)max);
	while (k < max && (src = sqlite3_step(st)) == SQLITE_ROW)
		read_snap(st, &out[k++]);
	if (k < max && src != SQLITE_DONE)
		rc = db_err(s->db->h, src, "list snapshots");
	done(st);
	*n = rc ? 0 : k;
	return rc;
}

int db_snap_insert(struct keep_store *s, const char *name, uint64_t commit,
		   int64_t created_ns, int origin, uint64_t *id)
{
	STMT(st, s, ST_SNAP_INSERT);
	int rc;

	bind_name(st, 1, name);
	sqlite3_bind_int64(st, 2, (int64_t)commit);
	sqlite3_bind_int64(st, 3, created_ns);
	sqlite3_bind_int(st, 4, origin);
	rc = run(s, st, "insert snapshot");
	if (!rc)
		*id = (uint64_t)sqlite3_last_insert_rowid(s->db->h);
	return rc;
}

int db_snap_delete(struct keep_store *s, const char *name)
{
	STMT(st, s, ST_SNAP_DELETE);
	int rc;

	bind_name(st, 1, name);
	rc = run(s, st, "delete snapshot");
	if (!rc && sqlite3_changes(s->db->h) != 1)
		rc = KEEP_CORRUPT_BKPT("snapshot vanished while being deleted");
	return rc;
}

int db_snap_rename(struct keep_store *s, const char *oldname,
		   const char *newname)
{
	STMT(st, s, ST_SNAP_RENAME);
	int rc;

	bind_name(st, 1, oldname);
	bind_name(st, 2, newname);
	rc = run(s, st, "rename snapshot");
	if (!rc && sqlite3_changes(s->db->h) != 1)
		rc = KEEP_CORRUPT_BKPT("snapshot vanished while being renamed");
	return rc;
}

int db_commit_get(struct keep_store *s, uint64_t id,
		  struct keep_commit_info *out)
{
	if (id == 0 || id > INT64_MAX)
		return ENOENT;
	STMT(st, s, ST_COMMIT_GET);
	int src, rc = ENOENT;

	sqlite3_bind_int64(st, 1, (int64_t)id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		out->id = id;
		out->time_ns = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "read commit");
	}
	done(st);
	return rc;
}

int db_commit_list(struct keep_store *s, uint64_t after,
		   struct keep_commit_info *out, size_t max, size_t *n)
{
	STMT(st, s, ST_COMMIT_LIST);
	size_t k = 0;
	int src = SQLITE_DONE, rc = 0;

	sqlite3_bind_int64(st, 1, after > INT64_MAX ? INT64_MAX : (int64_t)after);
	sqlite3_bind_int64(st, 2, (int64_t)max);
	while (k < max && (src = sqlite3_step(st)) == SQLITE_ROW) {
		out[k].id = (uint64_t)sqlite3_column_int64(st, 0);
		out[k].time_ns = sqlite3_column_int64(st, 1);
		k++;
	}
	if (k < max && src != SQLITE_DONE)
		rc = db_err(s->db->h, src, "list commits");
	done(st);
	*n = rc ? 0 : k;
	return rc;
}

int db_commit_at(struct keep_store *s, int64_t time_ns, uint64_t *id)
{
	STMT(st, s, ST_COMMIT_AT);
	int src, rc = ENOENT;

	sqlite3_bind_int64(st, 1, time_ns);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*id = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, "find commit");
	}
	done(st);
	return rc;
}

int db_view_stats(struct keep_store *s, uint64_t view,
		  struct keep_view_stats *out)
{
	STMT(st, s, view == KEEP_LIVE ? ST_VIEW_STATS_LIVE : ST_VIEW_STATS_VIEW);
	int src, rc = 0;

	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 1, (int64_t)view);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		out->files = (uint64_t)sqlite3_column_int64(st, 0);
		out->dirs = (uint64_t)sqlite3_column_int64(st, 1);
		out->others = (uint64_t)sqlite3_column_int64(st, 2);
		out->logical_bytes = (uint64_t)sqlite3_column_int64(st, 3);
	} else {
		rc = db_err(s->db->h, src, "count a view");
		if (!rc)
			rc = KEEP_E_SQLITE; /* an aggregate always has a row */
	}
	done(st);
	return rc;
}

/* ---- statistics and checks --------------------------------------------- */

/* One-off queries of stats and fsck: prepared per call, not on any hot
 * path. */
static int query_u64(struct keep_store *s, const char *sql, uint64_t *out,
		     int ncols)
{
	sqlite3_stmt *st;
	int src, rc = 0;

	if (sqlite3_prepare_v2(s->db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(s->db->h, sqlite3_errcode(s->db->h), sql);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		for (int i = 0; i < ncols; i++)
			out[i] = (uint64_t)sqlite3_column_int64(st, i);
	} else if (src != SQLITE_DONE) {
		rc = db_err(s->db->h, src, sql);
	}
	sqlite3_finalize(st);
	return rc;
}

int db_stats(struct keep_store *s, struct keep_stats *st)
{
	uint64_t v[4] = {0};
	int rc;

	rc = query_u64(s, "SELECT count(*), coalesce(max(id), 0), "
			  "coalesce((SELECT time_ns FROM commits ORDER BY id DESC "
			  "LIMIT 1), 0) FROM commits", v, 3);
	if (rc)
		return rc;
	st->commits = v[0];
	st->last_commit = v[1];
	st->last_commit_ns = (int64_t)v[2];
	rc = query_u64(s, "SELECT "
			  "count(*) FILTER (WHERE (mode & 61440) = 32768), "
			  "count(*) FILTER (WHERE (mode & 61440) = 16384), "
			  "count(*) FILTER (WHERE (mode & 61440) NOT IN (16384, 32768)), "
			  "coalesce(sum(size) FILTER (WHERE (mode & 61440) = 32768), 0) "
			  "FROM inodes WHERE died IS NULL AND nlink > 0", v, 4);
	if (rc)
		return rc;
	st->files = v[0];
	st->dirs = v[1];
	st->others = v[2];
	st->logical_bytes = v[3];
	rc = query_u64(s, "SELECT coalesce(sum(b.size) FILTER (WHERE k.died IS NULL), 0), "
			  "coalesce(sum(b.size), 0) FROM blocks k "
			  "JOIN blobs b ON b.id = k.blob", v, 2);
	if (rc)
		return rc;
	st->live_block_bytes = v[0];
	st->history_block_bytes = v[1];
	rc = query_u64(s, "SELECT count(*), coalesce(sum(size), 0), "
			  "coalesce(sum(csize), 0) FROM blobs", v, 3);
	if (rc)
		return rc;
	st->blobs = v[0];
	st->blob_raw_bytes = v[1];
	st->blob_stored_bytes = v[2];
	rc = query_u64(s, "SELECT coalesce(sum(csize), 0) FROM blobs WHERE id "
			  "IN (SELECT blob FROM blocks WHERE died IS NULL)",
		       v, 1);
	if (rc)
		return rc;
	st->live_stored_bytes = v[0];
	st->history_stored_bytes = st->blob_stored_bytes > v[0]
					   ? st->blob_stored_bytes - v[0]
					   : 0;
	return 0;
}

/*
 * The stored bytes of the blobs that only one commit sees: every block
 * row referencing the blob is dead and sees exactly that commit (rows no
 * commit sees, garbage waiting for a collection, do not count either
 * way).  One pass over the block rows, each with an index probe of
 * commits.
 */
int db_exclusive(struct keep_store *s,
		 int (*cb)(void *ctx, uint64_t commit, uint64_t bytes),
		 void *ctx)
{
	static const char sql[] =
	    "SELECT x.c, sum(b.csize) FROM (SELECT blob, min(c) AS c FROM "
	    "(SELECT blob, CASE WHEN died IS NULL THEN -1 ELSE (SELECT "
	    "CASE count(*) WHEN 0 THEN NULL WHEN 1 THEN min(id) ELSE -1 END "
	    "FROM commits WHERE id >= born AND id < died) END AS c FROM "
	    "blocks) GROUP BY blob HAVING min(c) = max(c) AND min(c) > 0) "
	    "AS x JOIN blobs b ON b.id = x.blob GROUP BY x.c";
	sqlite3_stmt *st;
	int src, rc = 0;

	src = sqlite3_prepare_v2(s->db->h, sql, -1, &st, NULL);
	if (src != SQLITE_OK)
		return db_err(s->db->h, src, "space of commits");
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = cb(ctx, (uint64_t)sqlite3_column_int64(st, 0),
			(uint64_t)sqlite3_column_int64(st, 1));
	if (!rc && src != SQLITE_DONE)
		rc = db_err(s->db->h, src, "space of commits");
	sqlite3_finalize(st);
	return rc;
}

struct checker {
	struct keep_store *s;
	struct fsck *f;	 /* NULL: count problems, keep the first's text */
	uint64_t lo, hi; /* the commits being checked (FSCK_LIVE: live) */
	uint64_t count;
	char *first;
	size_t first_len;
};

/* INT64_MAX: FSCK_END in a query */
#define SQL_END "9223372036854775807"

static void problem(struct checker *c, const struct fsck_subject *subj,
		    unsigned flags, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct checker *c, const struct fsck_subject *subj,
		    unsigned flags, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->f) {
		fsck_report(c->f, subj, flags, msg);
		return;
	}
	if (!c->count++ && c->first_len)
		snprintf(c->first, c->first_len, "%s", msg);
}

static uint64_t col_u64(sqlite3_stmt *st, int i, uint64_t dflt)
{
	if (i >= sqlite3_column_count(st) ||
	    sqlite3_column_type(st, i) == SQLITE_NULL)
		return dflt;
	return (uint64_t)sqlite3_column_int64(st, i);
}

/* Run a query whose every row is a problem.  Column 0 is its text; the
 * others, where the query has them and they are not NULL, say what it is
 * about: 1 an inode, 2 and 3 an entry (parent, name), 4 a block index of
 * the inode, 5 and 6 the commits [lo, hi) concerned (by default the view
 * being checked), 7 KEEP_PROBLEM_* flags. */
static int check_rows(struct checker *c, const char *sql, const char *label)
{
	sqlite3_stmt *st;
	int src, n = 0;

	if (sqlite3_prepare_v2(c->s->db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(c->s->db->h, sqlite3_errcode(c->s->db->h), label);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (++n > 100) {
			problem(c, NULL, 0, "%s: more problems not listed", label);
			break;
		}
		const unsigned char *t = sqlite3_column_text(st, 0);
		struct fsck_subject subj = {
			.ino = col_u64(st, 1, 0),
			.parent = col_u64(st, 2, 0),
			.offset = -1,
			.lo = col_u64(st, 5, c->lo),
			.hi = col_u64(st, 6, c->hi),
		};
		if (subj.parent && sqlite3_column_count(st) > 3) {
			subj.name = sqlite3_column_blob(st, 3);
			subj.name_len = (size_t)sqlite3_column_bytes(st, 3);
			if (!subj.name)
				subj.name = "";
		}
		if (col_u64(st, 4, UINT64_MAX) != UINT64_MAX)
			subj.offset = (int64_t)(col_u64(st, 4, 0) *
						c->s->block_size);
		problem(c, subj.ino || subj.parent ? &subj : NULL,
			(unsigned)col_u64(st, 7, 0), "%s: %s", label,
			t ? (const char *)t : "?");
	}
	sqlite3_finalize(st);
	return src == SQLITE_ROW || src == SQLITE_DONE
		       ? 0
		       : db_err(c->s->db->h, src, label);
}

/* The views checked for shape: the live tree and the newest commit. */
#define VIS_LIVE "died IS NULL"

static int check_view(struct checker *c, const char *vis, const char *vname,
		      uint64_t lo, uint64_t hi)
{
	char sql[2048];
	int rc = 0;
	char label[96];

	c->lo = lo;
	c->hi = hi;

#define CHECK(fmt, what, ...)                                              \
	do {                                                               \
		snprintf(sql, sizeof(sql), fmt, __VA_ARGS__);              \
		snprintf(label, sizeof(label), "%s: %s", vname, what);     \
		if (!rc)                                                   \
			rc = check_rows(c, sql, label);                    \
	} while (0)

	CHECK("WITH i AS (SELECT * FROM inodes WHERE %s), "
	      "d AS (SELECT * FROM dirents WHERE %s) "
	      "SELECT 'entry ' || d.id || ' names missing inode ' || d.ino, "
	      "NULL, d.parent, d.name FROM d WHERE NOT EXISTS (SELECT 1 FROM i WHERE i.ino = d.ino)",
	      "entry without inode", vis, vis);
	CHECK("WITH i AS (SELECT * FROM inodes WHERE %s), "
	      "d AS (SELECT * FROM dirents WHERE %s) "
	      "SELECT 'entry ' || d.id || ' in missing or non-directory ' || d.parent, "
	      "NULL, d.parent, d.name FROM d WHERE NOT EXISTS (SELECT 1 FROM i WHERE i.ino = d.parent "
	      "AND (i.mode & 61440) = 16384)",
	      "entry in a non-directory", vis, vis);
	CHECK("WITH d AS (SELECT * FROM dirents WHERE %s) "
	      "SELECT 'name ' || quote(name) || ' twice in directory ' || parent, "
	      "NULL, parent, name FROM d GROUP BY parent, name HAVING count(*) > 1",
	      "duplicate name", vis);
	CHECK("WITH i AS (SELECT * FROM inodes WHERE %s), "
	      "d AS (SELECT * FROM dirents WHERE %s), "
	      "names AS (SELECT ino, count(*) AS n FROM d GROUP BY ino) "
	      "SELECT 'inode ' || i.ino || ' has nlink ' || i.nlink || ' but ' || "
	      "coalesce(names.n, 0) || ' names', i.ino FROM i LEFT JOIN names "
	      "ON names.ino = i.ino WHERE (i.mode & 61440) != 16384 AND "
	      "i.nlink > 0 AND i.nlink != coalesce(names.n, 0)",
	      "link count", vis, vis);
	CHECK("WITH i AS (SELECT * FROM inodes WHERE %s), "
	      "d AS (SELECT * FROM dirents WHERE %s), "
	      "sub AS (SELECT d.parent AS ino, count(*) AS n FROM d JOIN i AS c "
	      " ON c.ino = d.ino WHERE (c.mode & 61440) = 16384 GROUP BY d.parent) "
	      "SELECT 'directory ' || i.ino || ' has nlink ' || i.nlink || "
	      "', expected ' || (2 + coalesce(sub.n, 0)), i.ino FROM i LEFT JOIN sub "
	      "ON sub.ino = i.ino WHERE (i.mode & 61440) = 16384 AND i.nlink > 0 "
	      "AND i.nlink != 2 + coalesce(sub.n, 0)",
	      "directory link count", vis, vis);
	CHECK("WITH i AS (SELECT * FROM inodes WHERE %s), "
	      "d AS (SELECT * FROM dirents WHERE %s), "
	      "names AS (SELECT ino, count(*) AS n, min(parent) AS p FROM d "
	      " GROUP BY ino) "
	      "SELECT 'directory ' || i.ino || ' has ' || coalesce(names.n, 0) || "
	      "' names, in ' || coalesce(names.p, 'none') || ', recorded parent ' || "
	      "i.parent, i.ino FROM i LEFT JOIN names ON names.ino = i.ino "
	      "WHERE (i.mode & 61440) = 16384 AND i.ino != 1 AND i.nlink > 0 AND "
	      "(coalesce(names.n, 0) != 1 OR names.p != i.parent)",
	      "directory names", vis, vis);
	CHECK("WITH RECURSIVE i AS (SELECT * FROM inodes WHERE %s), "
	      "d AS (SELECT * FROM dirents WHERE %s), "
	      "r(ino, depth) AS (SELECT 1, 0 UNION "
	      " SELECT d.ino, r.depth + 1 FROM d JOIN r ON d.parent = r.ino "
	      " WHERE r.depth < 100000) "
	      "SELECT 'directory ' || i.ino || ' is not reachable from the root', "
	      "i.ino FROM i WHERE (i.mode & 61440) = 16384 AND i.nlink > 0 AND i.ino NOT IN "
	      "(SELECT ino FROM r)",
	      "tree shape", vis, vis);
	CHECK("SELECT 'root directory missing', 1 WHERE NOT EXISTS "
	      "(SELECT 1 FROM inodes WHERE ino = 1 AND (mode & 61440) = 16384 "
	      "AND %s)",
	      "root", vis);
	CHECK("WITH k AS (SELECT * FROM blocks WHERE %s), "
	      "i AS (SELECT * FROM inodes WHERE %s) "
	      "SELECT 'block ' || k.idx || ' of inode ' || k.ino || "
	      "' belongs to no regular file', k.ino, NULL, NULL, k.idx "
	      "FROM k WHERE NOT EXISTS "
	      "(SELECT 1 FROM i WHERE i.ino = k.ino AND (i.mode & 61440) = 32768)",
	      "stray block", vis, vis);
#undef CHECK
	return rc;
}

int db_check_live(struct keep_store *s, uint64_t *problems, char *first,
		  size_t len)
{
	struct checker c = {.s = s, .first = first, .first_len = len};
	int rc;

	if (len)
		first[0] = '\0';
	rc = check_view(&c, VIS_LIVE, "the tree", FSCK_LIVE, FSCK_END);
	*problems = c.count;
	return rc;
}

/* subj: the subject columns 1-4 of check_rows; the commits concerned are
 * those of the overlap, or for a row that ends before it begins those of
 * its (empty) lifetime, which no view has */
static int check_versions(struct checker *c, const char *table,
			  const char *key, const char *subj)
{
	char sql[1024];
	char label[64];

	snprintf(sql, sizeof(sql),
		 "SELECT '%s ' || %s || ' born ' || born || ' died ' || "
		 "coalesce(died, 'never') || ' overlaps ' || nb, %s, "
		 "CASE WHEN died <= born THEN born ELSE nb END, "
		 "CASE WHEN died <= born THEN born ELSE coalesce(died, " SQL_END
		 ") END FROM "
		 "(SELECT *, lead(born) OVER (PARTITION BY %s ORDER BY born) AS nb "
		 "FROM %s) WHERE (nb IS NOT NULL AND (died IS NULL OR died > nb)) "
		 "OR (died IS NOT NULL AND died <= born)",
		 table, key, subj, key, table);
	snprintf(label, sizeof(label), "%s lifetimes", table);
	return check_rows(c, sql, label);
}

/*
 * Snapshots: each names a commit that exists, has a valid name (the rules
 * of keep_snapshot_name_check, on the stored bytes), a unique name, and an
 * id the AUTOINCREMENT counter has passed (so no id is handed out twice).
 */
static int check_snapshots(struct checker *c)
{
	bool yes = false;
	int rc = snaps_present(c->s, &yes);

	if (rc || !yes)
		return rc; /* an older store: nothing to check */
	rc = check_rows(c,
			"SELECT 'snapshot ' || id || ' names missing commit ' || "
			"commit_id FROM snapshots WHERE commit_id NOT IN "
			"(SELECT id FROM commits)",
			"snapshot commit");
	if (!rc)
		rc = check_rows(c,
				"SELECT 'snapshot ' || id || ' has the invalid name ' || "
				"quote(name) FROM snapshots WHERE typeof(name) != 'blob' "
				"OR length(name) < 1 OR length(name) > 255 "
				"OR instr(name, x'2f') > 0 OR instr(name, x'00') > 0 "
				"OR name IN (x'2e', x'2e2e') OR substr(name, 1, 1) = x'40'",
				"snapshot name");
	if (!rc)
		rc = check_rows(c,
				"SELECT 'name ' || quote(name) || ' is taken by ' || "
				"count(*) || ' snapshots' FROM snapshots GROUP BY name "
				"HAVING count(*) > 1",
				"snapshot name");
	if (!rc)
		rc = check_rows(c,
				"SELECT 'snapshot ' || max(id) || ' is above the id "
				"counter ' || coalesce((SELECT seq FROM sqlite_sequence "
				"WHERE name = 'snapshots'), 0) FROM snapshots HAVING "
				"max(id) > coalesce((SELECT seq FROM sqlite_sequence "
				"WHERE name = 'snapshots'), 0)",
				"snapshot ids");
	return rc;
}

/* A damaged blob: the problem names every file block that uses it. */
static void blob_problem(struct checker *c, uint64_t id, const char *what)
{
	struct fsck_subject subj = {.blob = id, .offset = -1, .hi = FSCK_END};

	problem(c, &subj, KEEP_PROBLEM_DATA, "blob %llu: %s",
		(unsigned long long)id, what);
}

int db_check(struct keep_store *s, int data, struct fsck *f)
{
	struct checker c = {.s = s, .f = f, .lo = FSCK_LIVE, .hi = FSCK_END};
	char vis[256];
	uint64_t last = db_last_commit(s);
	sqlite3_stmt *st;
	int rc = 0, src;

	if (sqlite3_prepare_v2(s->db->h, "PRAGMA integrity_check", -1, &st,
			       NULL) != SQLITE_OK)
		return db_err(s->db->h, sqlite3_errcode(s->db->h), "integrity");
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		if (t && strcmp(t, "ok") != 0)
			problem(&c, NULL, 0, "sqlite: %s", t);
	}
	sqlite3_finalize(st);
	if (src != SQLITE_DONE)
		return db_err(s->db->h, src, "integrity");

	rc = check_versions(&c, "inodes", "ino", "ino, NULL, NULL, NULL");
	if (!rc)
		rc = check_versions(&c, "dirents", "parent || '/' || hex(name)",
				    "NULL, parent, name, NULL");
	if (!rc)
		rc = check_versions(&c, "blocks", "ino || ':' || idx",
				    "ino, NULL, NULL, idx");
	if (!rc)
		rc = check_versions(&c, "xattrs", "ino || ':' || hex(name)",
				    "ino, NULL, NULL, NULL");
	if (!rc)
		rc = check_rows(&c,
				"SELECT 'block ' || idx || ' of inode ' || ino || "
				"' refers to missing blob ' || blob, ino, NULL, "
				"NULL, idx, born, coalesce(died, " SQL_END "), 1 "
				"FROM blocks WHERE blob NOT IN (SELECT id FROM blobs)",
				"blob reference");
	if (!rc) {
		snprintf(vis, sizeof(vis),
			 "SELECT 'row born in commit ' || born || ' after the last "
			 "commit %llu', ino FROM inodes WHERE born > %llu",
			 (unsigned long long)last, (unsigned long long)last);
		if (!(s->flags & KEEP_OPEN_WRITE))
			rc = check_rows(&c, vis, "uncommitted row");
	}
	if (!rc)
		rc = check_view(&c, VIS_LIVE, "live tree", FSCK_LIVE, FSCK_END);
	if (!rc && last) {
		snprintf(vis, sizeof(vis),
			 "born <= %llu AND (died IS NULL OR died > %llu)",
			 (unsigned long long)last, (unsigned long long)last);
		char vname[48];
		snprintf(vname, sizeof(vname), "commit %llu",
			 (unsigned long long)last);
		rc = check_view(&c, vis, vname, last, last + 1);
	}
	if (!rc)
		rc = check_snapshots(&c);
	if (!rc && data) {
		if (sqlite3_prepare_v2(s->db->h,
				       "SELECT id, hash, size, flags, data, crc "
				       "FROM blobs",
				       -1, &st, NULL) != SQLITE_OK)
			return db_err(s->db->h, sqlite3_errcode(s->db->h), "blobs");
		struct keep_codec *codec = keep_codec_new();
		uint8_t *buf = malloc(KEEP_MAX_BLOCK_SIZE);
		if (!codec || !buf) {
			rc = KEEP_E_NOMEM;
		} else {
			while ((src = sqlite3_step(st)) == SQLITE_ROW) {
				uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
				size_t n = (size_t)sqlite3_column_int64(st, 2);
				uint8_t h[KEEP_HASH_BYTES];
				const char *why = NULL;
				int urc = n > KEEP_MAX_BLOCK_SIZE ||
						  sqlite3_column_bytes(st, 1) != KEEP_HASH_BYTES
					      ? KEEP_E_CORRUPT
					      : keep_unpack(codec, s->encrypted, s->keys,
							    sqlite3_column_blob(st, 1),
							    sqlite3_column_blob(st, 4),
							    (size_t)sqlite3_column_bytes(st, 4),
							    (unsigned)sqlite3_column_int64(st, 3),
							    (uint32_t)sqlite3_column_int64(st, 5),
							    buf, n, &why);
				if (urc == KEEP_E_NEEDKEY) {
					rc = urc;
					break;
				}
				if (urc) {
					blob_problem(&c, id,
						     why ? why : "does not decode");
					continue;
				}
				if (s->keys)
					crypt_hash(s->keys, buf, n, h);
				else
					keep_hash(buf, n, h);
				if (sqlite3_column_bytes(st, 1) != KEEP_HASH_BYTES ||
				    memcmp(h, sqlite3_column_blob(st, 1),
					   KEEP_HASH_BYTES) != 0)
					blob_problem(&c, id, "content does not match its hash");
			}
			if (!rc && src != SQLITE_DONE)
				rc = db_err(s->db->h, src, "blobs");
		}
		if (buf && s->encrypted)
			keep_wipe(buf, KEEP_MAX_BLOCK_SIZE); /* plaintext */
		free(buf);
		keep_codec_free(codec);
		sqlite3_finalize(st);
	}
	return rc;
}
