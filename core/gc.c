/*
 * gc.c - garbage collection: drop the commits nothing retains, the row
 * versions no retained commit can see, the blobs no row references, and
 * give the space back to the file system (keep_gc).
 *
 * Design notes:
 *
 *  1. Retained: the newest commit, every commit made at or after
 *     now - journal (times grow with ids, so that is every id from the
 *     first such commit on), every commit a snapshot names, and the
 *     commits the caller pins (views in use).  Everything else goes.
 *  2. Steps.  The work is done in small SQLite transactions on the
 *     writer connection, each under commit_mu and mu (so no commit or
 *     operation interleaves) and each bounded (STEP_COMMITS commits,
 *     STEP_INODES inodes and STEP_ROWS block rows, STEP_BLOBS blobs,
 *     STEP_PAGES pages), so an application waits for one step at most.  Pending changes are
 *     committed first: a step needs the write transaction to itself.
 *     The state between steps is in the store (tables gc_todo and
 *     gc_blobs), so a crash or a stop mid-way loses nothing: the next
 *     run goes on where this one was.
 *  3. Dropping commit c: its change-journal rows move to the next
 *     retained commit c' (a diff between retained commits looks at
 *     (lo, hi], and c is in that range exactly when c' is), the inodes
 *     they name go to gc_todo, and the commits row goes.
 *  4. An inode in gc_todo loses every row version with died set and no
 *     commit left in [born, died) (one index probe on commits per row).
 *     Only those can have become invisible: a row's visibility ends with
 *     a dropped commit only if it was born or died in a dropped commit's
 *     range, and the journal names every inode a commit touched (with
 *     the directory of every entry).  The blobs of dropped blocks go to
 *     gc_blobs.
 *     Commits older than the journal name nothing: dropping one sweeps
 *     the versioned tables once for inodes with rows dead before it.
 *  5. A blob in gc_blobs goes when no block row references it (index
 *     blocks_blob) - except the blob with the highest id, which stays so
 *     that SQLite never hands an id out again (decoded-block caches are
 *     keyed by blob id, in this process and in readers).
 *  6. Space: a store made with incremental auto-vacuum gives its free
 *     pages back (PRAGMA incremental_vacuum, STEP_PAGES at a time); the
 *     file shrinks at the next WAL checkpoint.  Older stores reuse the
 *     free pages for new data instead.
 *  7. The pre-update hook of the change journal is paused meanwhile:
 *     dropping garbage changes no view, so no commit should name it.
 *  8. The tables and the index are made at the first writable open
 *     (gc_setup), not at the first collection: indexing the blocks of a
 *     large store takes a while, and a collection must not stall.
 *  9. Between two steps the collection pauses as long as the step took
 *     (PAUSE_MIN_NS to PAUSE_MAX_NS): a mutex hands itself to whoever
 *     asks first, and the collection would ask again at once, so
 *     without a pause the requests waiting for the store starved for
 *     many steps in a row (seen: 0.5 s).  It also lets the WAL be copied
 *     into the database when steps (page moves above all) have filled
 *     it (db_wal_settle): back-to-back steps leave the checkpointer no
 *     moment in which the WAL could start over, and it grew to 700 MiB.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keep_i.h"

#define STEP_COMMITS 32
#define STEP_INODES 128
#define STEP_ROWS 2048 /* block rows dropped in one step */
#define STEP_BLOBS 256
#define STEP_PAGES 128
#define PAUSE_MIN_NS 1000000LL	 /* 1 ms */
#define PAUSE_MAX_NS 50000000LL	 /* 50 ms */
#define SETTLE_MAX_NS 2000000000LL /* 2 s */

static const char gc_ddl[] =
    "CREATE TABLE IF NOT EXISTS gc_todo(ino INTEGER PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS gc_blobs(blob INTEGER PRIMARY KEY);"
    "CREATE INDEX IF NOT EXISTS blocks_blob ON blocks(blob);";

/* no retained commit in [born, died) */
#define UNSEEN                                                            \
	"died IS NOT NULL AND NOT EXISTS (SELECT 1 FROM commits "         \
	"WHERE id >= born AND id < died)"

enum gq_id {
	GQ_WINDOW,   /* first commit in the journal window */
	GQ_NEWEST,
	GQ_DROPPABLE,
	GQ_SNAP_NEXT,
	GQ_TODO_ADD,
	GQ_JOURNAL_MOVE,
	GQ_JOURNAL_DROP,
	GQ_COMMIT_DROP,
	GQ_TODO_TAKE,
	GQ_TODO_DONE,
	GQ_BLOCKS_TAKE,
	GQ_BLOB_NOTE,
	GQ_BLOCK_DROP,
	GQ_INODES_DROP,
	GQ_XATTRS_DROP,
	GQ_DIRENTS_DROP,
	GQ_BLOBS_TAKE,
	GQ_BLOB_DROP,
	GQ_BLOBS_DONE,
	GQ_FREELIST,
	GQ_PENDING,
	GQ_EXISTS,
	GQ__COUNT
};

static const char *const gq_sql[GQ__COUNT] = {
    [GQ_WINDOW] = "SELECT min(id) FROM commits WHERE time_ns >= ?1",
    [GQ_NEWEST] = "SELECT coalesce(max(id), 0) FROM commits",
    [GQ_DROPPABLE] = "SELECT id FROM commits WHERE id > ?3 AND id < ?1 AND "
		     "id NOT IN (SELECT commit_id FROM snapshots) ORDER BY id "
		     "LIMIT ?2",
    [GQ_SNAP_NEXT] = "SELECT min(commit_id) FROM snapshots "
		     "WHERE commit_id > ?1",
    [GQ_TODO_ADD] = "INSERT OR IGNORE INTO gc_todo(ino) "
		    "SELECT ino FROM changes WHERE commit_id = ?1",
    [GQ_JOURNAL_MOVE] = "INSERT OR IGNORE INTO changes(commit_id, ino) "
			"SELECT ?2, ino FROM changes WHERE commit_id = ?1",
    [GQ_JOURNAL_DROP] = "DELETE FROM changes WHERE commit_id = ?1",
    [GQ_COMMIT_DROP] = "DELETE FROM commits WHERE id = ?1",
    [GQ_TODO_TAKE] = "SELECT ino FROM gc_todo ORDER BY ino LIMIT ?1",
    [GQ_TODO_DONE] = "DELETE FROM gc_todo WHERE ino = ?1",
    [GQ_BLOCKS_TAKE] = "SELECT idx, born, blob FROM blocks WHERE ino = ?1 "
		       "AND " UNSEEN " LIMIT ?2",
    [GQ_BLOB_NOTE] = "INSERT OR IGNORE INTO gc_blobs(blob) VALUES (?1)",
    [GQ_BLOCK_DROP] = "DELETE FROM blocks WHERE ino = ?1 AND idx = ?2 AND "
		      "born = ?3",
    /* at most ?2 rows at a time, by primary key */
    [GQ_INODES_DROP] = "DELETE FROM inodes WHERE ino = ?1 AND born IN "
		       "(SELECT born FROM inodes WHERE ino = ?1 AND " UNSEEN
		       " LIMIT ?2)",
    [GQ_XATTRS_DROP] = "DELETE FROM xattrs WHERE (ino, name, born) IN "
		       "(SELECT ino, name, born FROM xattrs WHERE ino = ?1 AND "
		       UNSEEN " LIMIT ?2)",
    [GQ_DIRENTS_DROP] = "DELETE FROM dirents WHERE (parent, id) IN "
			"(SELECT parent, id FROM dirents WHERE ino = ?1 AND "
			UNSEEN " LIMIT ?2)",
    /* the highest blob stays (note 5): it waits in gc_blobs until a
     * newer one exists */
    [GQ_BLOBS_TAKE] = "SELECT blob FROM gc_blobs WHERE blob < "
		      "(SELECT coalesce(max(id), 0) FROM blobs) ORDER BY blob "
		      "LIMIT ?1",
    [GQ_BLOB_DROP] = "DELETE FROM blobs WHERE id = ?1 "
		     "AND id < (SELECT max(id) FROM blobs) "
		     "AND NOT EXISTS (SELECT 1 FROM blocks WHERE blob = ?1) "
		     "RETURNING csize",
    [GQ_BLOBS_DONE] = "DELETE FROM gc_blobs WHERE blob = ?1",
    [GQ_FREELIST] = "PRAGMA freelist_count",
    [GQ_PENDING] = "SELECT EXISTS (SELECT 1 FROM gc_todo) OR "
		   "EXISTS (SELECT 1 FROM gc_blobs WHERE blob < "
		   "(SELECT coalesce(max(id), 0) FROM blobs))",
    [GQ_EXISTS] = "SELECT EXISTS (SELECT 1 FROM commits WHERE id = ?1)",
};

struct gc {
	struct keep_store *s;
	const struct keep_gc_req *req;
	struct keep_gc_result *res;
	sqlite3_stmt *st[GQ__COUNT];
	int64_t cutoff;	      /* commits made before this may go */
	bool incremental;     /* the store gives pages back */
	uint64_t page_size;
};

static sqlite3_stmt *gq(struct gc *g, enum gq_id id)
{
	if (!g->st[id] && sqlite3_prepare_v2(db_handle(g->s), gq_sql[id], -1,
					     &g->st[id], NULL) != SQLITE_OK) {
		keep_log(LOG_ERR, "cannot prepare gc query %d: %s", (int)id,
			 sqlite3_errmsg(db_handle(g->s)));
		return NULL;
	}
	return g->st[id];
}

static int sql_err(struct gc *g, int src, const char *what)
{
	return db_error(g->s, src, what);
}

/* Run statement id with up to two integer arguments; for a query, *out
 * gets the first column of the first row (0 if NULL or no row). */
static int run(struct gc *g, enum gq_id id, int nargs, uint64_t a, uint64_t b,
	       uint64_t *out)
{
	sqlite3_stmt *st = gq(g, id);
	int src, rc = 0;

	if (!st)
		return KEEP_E_SQLITE;
	if (nargs > 0)
		sqlite3_bind_int64(st, 1, (int64_t)a);
	if (nargs > 1)
		sqlite3_bind_int64(st, 2, (int64_t)b);
	src = sqlite3_step(st);
	if (out)
		*out = src == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0)
					 : 0;
	if (src == SQLITE_ROW)
		while ((src = sqlite3_step(st)) == SQLITE_ROW)
			;
	if (src != SQLITE_DONE)
		rc = sql_err(g, src, "garbage collection");
	sqlite3_reset(st);
	return rc;
}

/* Up to max integers from query id (one argument) into v. */
static int list(struct gc *g, enum gq_id id, int nargs, uint64_t a,
		uint64_t max, uint64_t after, uint64_t *v, size_t *n)
{
	sqlite3_stmt *st = gq(g, id);
	int src, rc = 0;

	*n = 0;
	if (!st)
		return KEEP_E_SQLITE;
	sqlite3_bind_int64(st, 1, (int64_t)a);
	if (nargs > 1)
		sqlite3_bind_int64(st, 2, (int64_t)max);
	if (nargs > 2)
		sqlite3_bind_int64(st, 3, (int64_t)after);
	while ((src = sqlite3_step(st)) == SQLITE_ROW && *n < max)
		v[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
	if (src != SQLITE_ROW && src != SQLITE_DONE)
		rc = sql_err(g, src, "garbage collection");
	sqlite3_reset(st);
	return rc;
}

static bool pinned(const struct gc *g, uint64_t c)
{
	for (size_t i = 0; i < g->req->npins; i++)
		if (g->req->pins[i] == c)
			return true;
	return false;
}

/* The first commit retained by the window or as the newest (note 1). */
static int window_start(struct gc *g, uint64_t *w)
{
	uint64_t first = 0, newest = 0;
	int rc = run(g, GQ_WINDOW, 1, (uint64_t)g->cutoff, 0, &first);

	if (!rc)
		rc = run(g, GQ_NEWEST, 0, 0, 0, &newest);
	*w = first && first < newest ? first : newest;
	return rc;
}

/* The first retained commit after c (note 3); there is always one, as
 * the newest is retained.  A pin counts only if it is a commit (a stale
 * one may name a commit dropped meanwhile). */
static int next_retained(struct gc *g, uint64_t c, uint64_t w,
			 uint64_t *out)
{
	uint64_t snap = 0, there = 0;
	int rc = run(g, GQ_SNAP_NEXT, 1, c, 0, &snap);

	*out = w;
	if (snap && snap < *out)
		*out = snap;
	for (size_t i = 0; !rc && i < g->req->npins; i++) {
		uint64_t p = g->req->pins[i];
		if (p <= c || p >= *out)
			continue;
		rc = run(g, GQ_EXISTS, 1, p, 0, &there);
		if (!rc && there)
			*out = p;
	}
	return rc;
}

/* Up to max droppable commits, pinned ones left out: the candidates are
 * paged through, so any number of pins cannot hide one behind them. */
static int droppable(struct gc *g, uint64_t w, uint64_t *v, size_t max,
		     size_t *n)
{
	uint64_t page[STEP_COMMITS], after = 0;
	size_t got;
	int rc = 0;

	*n = 0;
	do {
		rc = list(g, GQ_DROPPABLE, 3, w, STEP_COMMITS, after, page,
			  &got);
		for (size_t i = 0; !rc && i < got && *n < max; i++)
			if (!pinned(g, page[i]))
				v[(*n)++] = page[i];
		if (got)
			after = page[got - 1];
	} while (!rc && got == STEP_COMMITS && *n < max);
	return rc;
}

/*
 * Commits older than the change journal (a store made before it, or
 * commits made by a program that did not keep it) name no inodes: when one
 * of them goes, every inode with a row that died before the journal began
 * is a candidate, once (meta 'gc_swept' remembers up to where).  One pass
 * over the versioned tables, in one step: it happens once per store.
 */
static int sweep_old(struct gc *g, uint64_t from)
{
	static const char sql[] =
	    "INSERT OR IGNORE INTO gc_todo(ino) "
	    "SELECT ino FROM inodes WHERE died <= ?1 "
	    "UNION SELECT ino FROM blocks WHERE died <= ?1 "
	    "UNION SELECT ino FROM xattrs WHERE died <= ?1 "
	    "UNION SELECT ino FROM dirents WHERE died <= ?1 "
	    "UNION SELECT parent FROM dirents WHERE died <= ?1";
	char v[32], key[] = "gc_swept";
	sqlite3_stmt *st;
	int src, rc;

	if (db_meta_text(g->s, key, v, sizeof(v)) == 0 &&
	    strtoull(v, NULL, 10) >= from)
		return 0;
	keep_log(LOG_INFO, "garbage collection: looking through the commits "
			   "older than the change journal (once)");
	src = sqlite3_prepare_v2(db_handle(g->s), sql, -1, &st, NULL);
	if (src != SQLITE_OK)
		return sql_err(g, src, "sweep old commits");
	sqlite3_bind_int64(st, 1, (int64_t)from);
	src = sqlite3_step(st);
	sqlite3_finalize(st);
	if (src != SQLITE_DONE)
		return sql_err(g, src, "sweep old commits");
	snprintf(v, sizeof(v), "%llu", (unsigned long long)from);
	rc = db_meta_set_text(g->s, key, v);
	return rc;
}

/* One step of dropping commits; *did is how many went. */
static int drop_commits(struct gc *g, size_t *did)
{
	uint64_t v[STEP_COMMITS], w, next;
	size_t n;
	int rc = window_start(g, &w);

	uint64_t from = 0;
	*did = 0;
	if (!rc)
		rc = droppable(g, w, v, STEP_COMMITS, &n);
	if (!rc && n)
		rc = db_journal_from(g->s, &from);
	if (!rc && n && v[0] < from)
		rc = sweep_old(g, from); /* the oldest goes first */
	for (size_t i = 0; !rc && i < n; i++) {
		rc = next_retained(g, v[i], w, &next);
		if (!rc)
			rc = run(g, GQ_TODO_ADD, 1, v[i], 0, NULL);
		if (!rc)
			rc = run(g, GQ_JOURNAL_MOVE, 2, v[i], next, NULL);
		if (!rc)
			rc = run(g, GQ_JOURNAL_DROP, 1, v[i], 0, NULL);
		if (!rc)
			rc = run(g, GQ_COMMIT_DROP, 1, v[i], 0, NULL);
		if (!rc) {
			(*did)++;
			g->res->commits++;
		}
	}
	return rc;
}

/* Up to max unseen block rows of ino, their blobs noted in gc_blobs;
 * *got is how many went.  Blocks are bounded per step: a large file has
 * a row per block and version. */
static int drop_blocks(struct gc *g, uint64_t ino, size_t max, size_t *got)
{
	struct brow {
		uint64_t idx, born, blob;
	} *v = malloc(max * sizeof(*v));
	sqlite3_stmt *st = gq(g, GQ_BLOCKS_TAKE);
	size_t n = 0;
	int src, rc = 0;

	*got = 0;
	if (!v)
		return KEEP_E_NOMEM;
	if (!st) {
		free(v);
		return KEEP_E_SQLITE;
	}
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)max);
	while (n < max && (src = sqlite3_step(st)) == SQLITE_ROW)
		v[n++] = (struct brow){(uint64_t)sqlite3_column_int64(st, 0),
				       (uint64_t)sqlite3_column_int64(st, 1),
				       (uint64_t)sqlite3_column_int64(st, 2)};
	if (n < max && src != SQLITE_DONE)
		rc = sql_err(g, src, "list garbage blocks");
	sqlite3_reset(st);
	for (size_t i = 0; !rc && i < n; i++) {
		rc = run(g, GQ_BLOB_NOTE, 1, v[i].blob, 0, NULL);
		st = rc ? NULL : gq(g, GQ_BLOCK_DROP);
		if (!rc && !st)
			rc = KEEP_E_SQLITE;
		if (rc)
			break;
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)v[i].idx);
		sqlite3_bind_int64(st, 3, (int64_t)v[i].born);
		src = sqlite3_step(st);
		sqlite3_reset(st);
		if (src != SQLITE_DONE)
			rc = sql_err(g, src, "drop a block row");
	}
	free(v);
	if (!rc) {
		*got = n;
		g->res->rows += n;
	}
	return rc;
}

/* One step over gc_todo (note 4): inodes until STEP_ROWS rows went; an
 * inode with more left stays in gc_todo for the next step. */
static int drop_rows(struct gc *g, size_t *did)
{
	static const enum gq_id drops[] = {GQ_INODES_DROP, GQ_XATTRS_DROP,
					   GQ_DIRENTS_DROP};
	uint64_t v[STEP_INODES];
	size_t n, budget = STEP_ROWS;
	int rc = list(g, GQ_TODO_TAKE, 1, STEP_INODES, STEP_INODES, 0, v, &n);

	*did = n;
	for (size_t i = 0; !rc && i < n && budget; i++) {
		size_t got = 0;
		bool more = false;
		rc = drop_blocks(g, v[i], budget, &got);
		if (rc || got == budget)
			break; /* perhaps more: this inode again next step */
		budget -= got;
		for (size_t k = 0;
		     !rc && !more && k < sizeof(drops) / sizeof(drops[0]); k++) {
			rc = run(g, drops[k], 2, v[i], budget, NULL);
			if (rc)
				break;
			size_t gone =
			    (size_t)sqlite3_changes64(db_handle(g->s));
			g->res->rows += gone;
			more = gone == budget;
			budget -= gone;
		}
		if (more)
			break; /* the budget ran out on this inode */
		if (!rc)
			rc = run(g, GQ_TODO_DONE, 1, v[i], 0, NULL);
	}
	return rc;
}

/* One step over gc_blobs (note 5). */
static int drop_blobs(struct gc *g, size_t *did)
{
	uint64_t v[STEP_BLOBS], csize;
	size_t n;
	int rc = list(g, GQ_BLOBS_TAKE, 1, STEP_BLOBS, STEP_BLOBS, 0, v, &n);

	*did = n;
	for (size_t i = 0; !rc && i < n; i++) {
		sqlite3_stmt *st = gq(g, GQ_BLOB_DROP);
		int src;
		if (!st) {
			rc = KEEP_E_SQLITE;
			break;
		}
		sqlite3_bind_int64(st, 1, (int64_t)v[i]);
		src = sqlite3_step(st);
		if (src == SQLITE_ROW) {
			csize = (uint64_t)sqlite3_column_int64(st, 0);
			g->res->blobs++;
			g->res->blob_bytes += csize;
			src = sqlite3_step(st);
		}
		if (src != SQLITE_DONE)
			rc = sql_err(g, src, "drop a blob");
		sqlite3_reset(st);
		if (!rc)
			rc = run(g, GQ_BLOBS_DONE, 1, v[i], 0, NULL);
	}
	return rc;
}

/* One step of giving pages back (note 6). */
static int vacuum(struct gc *g, size_t *did)
{
	uint64_t free_pages = 0;
	int rc;

	*did = 0;
	if (!g->incremental)
		return 0;
	rc = run(g, GQ_FREELIST, 0, 0, 0, &free_pages);
	if (rc || !free_pages)
		return rc;
	*did = free_pages < STEP_PAGES ? free_pages : STEP_PAGES;
	/* a pragma takes no parameters */
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%zu)", *did);
	int src = sqlite3_exec(db_handle(g->s), sql, NULL, NULL, NULL);
	if (src != SQLITE_OK)
		return sql_err(g, src, "give pages back");
	g->res->pages += *did;
	g->res->page_bytes += *did * g->page_size;
	return 0;
}

/* One bounded step in its own transaction (note 2); *more when work is
 * left. */
static int step(struct gc *g, bool *more)
{
	struct keep_store *s = g->s;
	size_t did = 0;
	int rc;

	rc = store_own_begin(s);
	if (rc)
		return rc;
	db_journal_pause(s, true);
	rc = drop_commits(g, &did);
	if (!rc && !did)
		rc = drop_rows(g, &did);
	if (!rc && !did)
		rc = drop_blobs(g, &did);
	if (!rc && !did)
		rc = vacuum(g, &did);
	db_journal_pause(s, false);
	rc = store_own_end(s, rc);
	*more = !rc && did > 0;
	return rc;
}

int gc_setup(struct keep_store *s)
{
	sqlite3 *h = db_handle(s);
	sqlite3_stmt *st;
	char *msg = NULL;
	int have = 0, src;

	if (sqlite3_prepare_v2(h,
			       "SELECT count(*) FROM sqlite_master WHERE name "
			       "IN ('gc_todo', 'gc_blobs', 'blocks_blob')",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		have = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (have == 3)
		return 0;
	if (sqlite3_prepare_v2(h, "SELECT EXISTS (SELECT 1 FROM blocks)", -1,
			       &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0))
		keep_log(LOG_INFO, "setting up garbage collection: indexing "
				   "the blocks (once)");
	sqlite3_finalize(st);
	src = sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_exec(h, gc_ddl, NULL, NULL, &msg);
	if (src == SQLITE_OK)
		src = sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
	if (src != SQLITE_OK) {
		int rc = db_error(s, src, "set up garbage collection");
		if (msg)
			keep_log(LOG_DEBUG, "gc schema: %s", msg);
		sqlite3_free(msg);
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return 0;
}

/* Is there anything to do?  Asked before pending changes are committed:
 * a collection with nothing to do makes no commit. */
static int any_work(struct gc *g, bool *any)
{
	uint64_t v[1], w, flag = 0, free_pages = 0;
	size_t n = 0;
	int rc = window_start(g, &w);

	*any = false;
	if (!rc)
		rc = droppable(g, w, v, 1, &n);
	*any = n > 0;
	if (!rc && !*any)
		rc = run(g, GQ_PENDING, 0, 0, 0, &flag);
	if (!rc && !*any && g->incremental)
		rc = run(g, GQ_FREELIST, 0, 0, 0, &free_pages);
	*any = *any || flag || free_pages;
	return rc;
}

static int prepare(struct gc *g, bool *any)
{
	struct keep_store *s = g->s;
	int rc = 0;
	sqlite3_stmt *st;

	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(db_handle(s), "PRAGMA auto_vacuum", -1,
				      &st, NULL) == SQLITE_OK) {
		g->incremental = sqlite3_step(st) == SQLITE_ROW &&
				 sqlite3_column_int(st, 0) == 2;
		sqlite3_finalize(st);
	}
	if (!rc && sqlite3_prepare_v2(db_handle(s), "PRAGMA page_size", -1,
				      &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			g->page_size = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (!rc)
		rc = any_work(g, any);
	if (!rc && *any && (s->changed || s->dirty.count))
		rc = store_commit_locked(s, NULL, false, NULL);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->commit_mu);
	return rc;
}

/* Between two steps (note 9): as long a pause as the step took, so
 * that requests waiting for the store lock get it, and a WAL grown past
 * its checkpoint threshold copied into the database. */
static void pause_between(struct keep_store *s, int64_t took_ns)
{
	if (took_ns < PAUSE_MIN_NS)
		took_ns = PAUSE_MIN_NS;
	if (took_ns > PAUSE_MAX_NS)
		took_ns = PAUSE_MAX_NS;
	nanosleep(&(struct timespec){.tv_sec = took_ns / 1000000000,
				     .tv_nsec = took_ns % 1000000000},
		  NULL);
	db_wal_settle(s, SETTLE_MAX_NS);
}

int keep_gc(struct keep_store *s, const struct keep_gc_req *req,
	    struct keep_gc_result *out)
{
	static const struct keep_gc_req defaults = {0};
	struct gc g = {.s = s, .req = req ? req : &defaults, .res = out};
	int64_t now, start = keep_monotonic_ns();
	bool more = true, any = false;
	int rc;

	if (!s || !out)
		return KEEP_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (!(s->flags & KEEP_OPEN_WRITE))
		return EROFS;
	if (g.req->journal_ns < 0 || (g.req->npins && !g.req->pins))
		return KEEP_E_INVAL;
	now = g.req->now_ns ? g.req->now_ns : keep_clock_ns();
	g.cutoff = now - g.req->journal_ns;
	rc = prepare(&g, &any);
	more = any;
	while (!rc && more) {
		int64_t t0 = keep_monotonic_ns();
		rc = step(&g, &more);
		if (!rc && more && g.req->max_ms &&
		    keep_monotonic_ns() - start >=
			(int64_t)g.req->max_ms * 1000000)
			break;
		if (!rc && more)
			pause_between(s, keep_monotonic_ns() - t0);
	}
	out->done = !rc && !more;
	if (out->pages)
		db_checkpoint_soon(s); /* the file shrinks then (note 6) */
	for (int i = 0; i < GQ__COUNT; i++)
		sqlite3_finalize(g.st[i]);
	if (rc && rc != KEEP_E_READONLY)
		keep_log(LOG_ERR, "garbage collection stopped: %s",
			 keep_strerror(rc));
	return rc;
}
