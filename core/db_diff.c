/*
 * db_diff.c - the change journal: which inodes changed in which commit.
 *
 * The SQL of keep_diff (diff.c) and of its fsck checks, kept apart from
 * db.c, whose statements are the write path's.  The queries of a diff are
 * prepared once per diff (struct dq) and reused for every inode it looks
 * at.
 *
 * Design notes:
 *
 *  1. The journal is a table changes(commit_id, ino), WITHOUT ROWID,
 *     primary key (commit_id, ino): one row per inode touched in a
 *     commit.  "Touched": a row of the inode (its inode row, a block, an
 *     xattr) or a directory entry naming it was inserted, updated or
 *     deleted in that commit.  A directory entry also touches the
 *     directory holding it, so a commit's rows name every directory whose
 *     listing changed: what a restore must revert.
 *  2. The writer connection's SQLite pre-update hook sees every row
 *     change and notes the inode in an in-memory set (struct journal);
 *     the commit pipeline writes the set as rows of the commit just
 *     before its COMMIT (db_journal_flush), inside the same transaction,
 *     so the journal is exactly as atomic and durable as the commit.
 *     Nothing in the write path's C code knows about it.  Measured
 *     against SQL triggers doing the same (docs/design.md, "Diff"):
 *     a trigger makes SQLite open a statement journal for every write
 *     statement, which cost 50% more instructions per file created.
 *  3. A change rolled back by its operation's savepoint stays noted: the
 *     journal may name an inode that did not change in the end, never
 *     miss one that did.  Readers compare both views of what it names.
 *  4. The set is also the journal of the open commit, so a diff against
 *     the writer's live tree costs what its uncommitted changes are.
 *     (Dirty file data is not rows yet: diff.c looks at the dirty-block
 *     maps for it.)
 *  5. meta 'changes_from' is the first commit the journal covers in full,
 *     'changes_upto' the last commit it was written for.  Stores made
 *     before the journal get it at their first writable open, covering
 *     from the next commit; so does a store whose newest commit is past
 *     'changes_upto' (written by a program that does not keep the
 *     journal).  A diff reaching further back compares whole tables
 *     (db_dq_candidates with full set): the born/died columns give the
 *     same inodes, at the cost of a scan.
 *  6. dirents_ino, an index on dirents(ino), finds the names of an inode
 *     without walking its directories (a file's inode row does not know
 *     its parents).  It costs one more index entry per name created.
 */
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"

static const char journal_ddl[] =
    "CREATE TABLE IF NOT EXISTS changes(commit_id INTEGER NOT NULL,"
    " ino INTEGER NOT NULL, PRIMARY KEY(commit_id, ino)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS dirents_ino ON dirents(ino);";

static const char journal_state_sql[] =
    "SELECT count(*) FILTER (WHERE type = 'table' AND name = 'changes'),"
    " count(*) FILTER (WHERE type = 'index' AND name = 'dirents_ino'),"
    " (SELECT value FROM meta WHERE key = 'changes_from'),"
    " (SELECT value FROM meta WHERE key = 'changes_upto'),"
    " (SELECT coalesce(max(id), 0) FROM commits)"
    " FROM sqlite_master";

static int sql_err(struct keep_store *s, int src, const char *what)
{
	return db_error(s, src, what);
}

static int exec(struct keep_store *s, const char *sql)
{
	char *msg = NULL;
	int src = sqlite3_exec(db_handle(s), sql, NULL, NULL, &msg);
	int rc = 0;

	if (src != SQLITE_OK) {
		rc = sql_err(s, src, "change journal");
		if (msg)
			keep_log(LOG_DEBUG, "change journal: %s", msg);
	}
	sqlite3_free(msg);
	return rc;
}

struct jstate {
	bool table, index;
	uint64_t from, upto; /* 0: no meta row */
	uint64_t last;	     /* newest commit */
};

static int journal_state(struct keep_store *s, struct jstate *j)
{
	sqlite3_stmt *st;
	int src, rc = 0;

	memset(j, 0, sizeof(*j));
	src = sqlite3_prepare_v2(db_handle(s), journal_state_sql, -1, &st,
				 NULL);
	if (src != SQLITE_OK)
		return sql_err(s, src, "read schema");
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		j->table = sqlite3_column_int(st, 0) > 0;
		j->index = sqlite3_column_int(st, 1) > 0;
		if (sqlite3_column_type(st, 2) != SQLITE_NULL)
			j->from = (uint64_t)sqlite3_column_int64(st, 2);
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			j->upto = (uint64_t)sqlite3_column_int64(st, 3);
		j->last = (uint64_t)sqlite3_column_int64(st, 4);
	} else {
		rc = sql_err(s, src, "read schema");
		if (!rc)
			rc = KEEP_E_SQLITE;
	}
	sqlite3_finalize(st);
	return rc;
}

/* ---- the open commit's set (note 2) -------------------------------------- */

struct journal {
	uint64_t *keys; /* open addressing; 0 is empty (no inode 0) */
	size_t cap, n;
	bool nomem; /* a note was lost: the flush fails the commit */
	bool paused; /* garbage collection: its changes change no view */
	sqlite3_stmt *ins, *meta;
};

static size_t jslot(const struct journal *j, uint64_t k)
{
	size_t i = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 17) & (j->cap - 1);

	while (j->keys[i] && j->keys[i] != k)
		i = (i + 1) & (j->cap - 1);
	return i;
}

static void jnote(struct journal *j, int64_t v)
{
	uint64_t k = (uint64_t)v;

	if (v <= 0)
		return;
	if ((j->n + 1) * 2 > j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 1024;
		uint64_t *old = j->keys, *keys = calloc(cap, sizeof(*keys));
		size_t oldcap = j->cap;
		if (!keys) {
			j->nomem = true;
			return;
		}
		j->keys = keys;
		j->cap = cap;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i])
				j->keys[jslot(j, old[i])] = old[i];
		free(old);
	}
	size_t i = jslot(j, k);
	if (!j->keys[i]) {
		j->keys[i] = k;
		j->n++;
	}
}

static void jnote_col(struct journal *j, sqlite3 *h, int op, int col)
{
	sqlite3_value *v = NULL;
	int src = op == SQLITE_INSERT ? sqlite3_preupdate_new(h, col, &v)
				      : sqlite3_preupdate_old(h, col, &v);

	if (src == SQLITE_OK && v && sqlite3_value_type(v) == SQLITE_INTEGER)
		jnote(j, sqlite3_value_int64(v));
	else
		j->nomem = true; /* cannot tell: fail rather than miss it */
}

static void preupdate(void *ctx, sqlite3 *h, int op, const char *db,
		      const char *table, sqlite3_int64 k1, sqlite3_int64 k2)
{
	struct journal *j = ctx;

	(void)k1;
	(void)k2;
	if (j->paused || strcmp(db, "main") != 0)
		return;
	/* the ino is column 0, except in dirents(parent, id, name, born,
	 * died, ino), where it is column 5 and the parent column 0 */
	if (!strcmp(table, "inodes") || !strcmp(table, "blocks") ||
	    !strcmp(table, "xattrs")) {
		jnote_col(j, h, op, 0);
	} else if (!strcmp(table, "dirents")) {
		jnote_col(j, h, op, 0);
		jnote_col(j, h, op, 5);
	}
}

static void journal_free(struct journal *j)
{
	if (!j)
		return;
	sqlite3_finalize(j->ins);
	sqlite3_finalize(j->meta);
	free(j->keys);
	free(j);
}

void db_journal_pause(struct keep_store *s, bool paused)
{
	if (s->journal)
		s->journal->paused = paused;
}

void db_journal_close(struct keep_store *s)
{
	if (!s->journal)
		return;
	if (s->db)
		sqlite3_preupdate_hook(db_handle(s), NULL, NULL);
	journal_free(s->journal);
	s->journal = NULL;
}

int db_journal_upgrade(struct keep_store *s)
{
	struct jstate js;
	struct journal *j;
	char sql[256];
	int rc = journal_state(s, &js);

	if (rc)
		return rc;
	if (!js.table || !js.index || !js.from || js.upto < js.last) {
		/* new, incomplete, or commits were made without it */
		keep_log(LOG_INFO,
			 "change journal starts at commit %llu; "
			 "diffs reaching further back compare whole "
			 "tables",
			 (unsigned long long)js.last + 1);
		rc = exec(s, "BEGIN IMMEDIATE");
		if (rc)
			return rc;
		rc = exec(s, journal_ddl);
		snprintf(sql, sizeof(sql),
			 "INSERT OR REPLACE INTO meta(key, value) VALUES "
			 "('changes_from', %llu), ('changes_upto', %llu)",
			 (unsigned long long)js.last + 1,
			 (unsigned long long)js.last);
		if (!rc)
			rc = exec(s, sql);
		if (!rc)
			rc = exec(s, "COMMIT");
		if (rc) {
			exec(s, "ROLLBACK");
			return rc;
		}
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return KEEP_E_NOMEM;
	if (sqlite3_prepare_v3(db_handle(s),
			       "INSERT OR IGNORE INTO changes(commit_id, ino) "
			       "VALUES (?1, ?2)",
			       -1, SQLITE_PREPARE_PERSISTENT, &j->ins,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db_handle(s),
			       "INSERT OR REPLACE INTO meta(key, value) "
			       "VALUES ('changes_upto', ?1)",
			       -1, SQLITE_PREPARE_PERSISTENT, &j->meta,
			       NULL) != SQLITE_OK) {
		rc = sql_err(s, sqlite3_errcode(db_handle(s)),
			     "change journal");
		journal_free(j);
		return rc ? rc : KEEP_E_SQLITE;
	}
	s->journal = j;
	sqlite3_preupdate_hook(db_handle(s), preupdate, j);
	return 0;
}

int db_journal_flush(struct keep_store *s, uint64_t commit)
{
	struct journal *j = s->journal;
	int src = SQLITE_DONE;

	if (!j)
		return 0;
	if (j->nomem)
		return KEEP_E_NOMEM;
	for (size_t i = 0; src == SQLITE_DONE && i < j->cap; i++) {
		if (!j->keys[i])
			continue;
		sqlite3_bind_int64(j->ins, 1, (int64_t)commit);
		sqlite3_bind_int64(j->ins, 2, (int64_t)j->keys[i]);
		src = sqlite3_step(j->ins);
		sqlite3_reset(j->ins);
	}
	if (src == SQLITE_DONE) {
		sqlite3_bind_int64(j->meta, 1, (int64_t)commit);
		src = sqlite3_step(j->meta);
		sqlite3_reset(j->meta);
	}
	if (src != SQLITE_DONE)
		return sql_err(s, src, "write the change journal");
	/* the rows are in the transaction; the set starts over (if the
	 * COMMIT fails, the handle is read-only from then on) */
	if (j->keys) /* a commit that touched nothing: no set yet */
		memset(j->keys, 0, j->cap * sizeof(*j->keys));
	j->n = 0;
	return 0;
}

int db_journal_pending(struct keep_store *s, db_ino_cb cb, void *ctx)
{
	struct journal *j = s->journal;
	int rc = 0;

	for (size_t i = 0; j && !rc && i < j->cap; i++)
		if (j->keys[i])
			rc = cb(ctx, j->keys[i]);
	return rc;
}

int db_journal_from(struct keep_store *s, uint64_t *from)
{
	struct jstate j;
	int rc = journal_state(s, &j);

	if (!rc)
		*from = j.table && j.index && j.upto >= j.last ? j.from : 0;
	return rc;
}

/* ---- the queries of one diff --------------------------------------------- */

enum dq_id {
	DQ_JOURNAL,
	DQ_FULL,
	DQ_NAMES_LIVE,
	DQ_NAMES_VIEW,
	DQ_ENTRIES,
	DQ_POINTS,
	DQ__COUNT
};

/* born or died in (?1, ?2] */
#define IN_RANGE "(born > ?1 AND born <= ?2) OR (died > ?1 AND died <= ?2)"

static const char *const dq_sql[DQ__COUNT] = {
    [DQ_JOURNAL] = "SELECT DISTINCT ino FROM changes "
		   "WHERE commit_id > ?1 AND commit_id <= ?2",
    [DQ_FULL] = "SELECT ino FROM inodes WHERE " IN_RANGE
		" UNION SELECT ino FROM dirents WHERE " IN_RANGE
		" UNION SELECT parent FROM dirents WHERE " IN_RANGE
		" UNION SELECT ino FROM blocks WHERE " IN_RANGE
		" UNION SELECT ino FROM xattrs WHERE " IN_RANGE,
    [DQ_NAMES_LIVE] = "SELECT parent, name FROM dirents "
		      "WHERE ino = ?1 AND died IS NULL",
    [DQ_NAMES_VIEW] = "SELECT parent, name FROM dirents WHERE ino = ?1 "
		      "AND born <= ?2 AND (died IS NULL OR died > ?2)",
    /* keep_history: a name's rows over a range of commits, by
     * dirents_name; the commits that changed an object, by the primary
     * keys (ino first) */
    [DQ_ENTRIES] = "SELECT born, died, ino FROM dirents WHERE parent = ?1 "
		   "AND name = ?2 AND born < ?4 AND (died IS NULL OR died > ?3) "
		   "ORDER BY born",
    [DQ_POINTS] = "SELECT born FROM inodes WHERE ino = ?1 AND born > ?2 "
		  "AND born < ?3"
		  " UNION SELECT born FROM blocks WHERE ino = ?1 AND born > ?2 "
		  "AND born < ?3"
		  " UNION SELECT died FROM blocks WHERE ino = ?1 AND died > ?2 "
		  "AND died < ?3"
		  " UNION SELECT born FROM xattrs WHERE ino = ?1 AND born > ?2 "
		  "AND born < ?3"
		  " UNION SELECT died FROM xattrs WHERE ino = ?1 AND died > ?2 "
		  "AND died < ?3"
		  " ORDER BY 1",
};

struct dq {
	struct keep_store *s;
	sqlite3_stmt *st[DQ__COUNT];
};

int db_dq_open(struct keep_store *s, struct dq **out)
{
	struct dq *q = calloc(1, sizeof(*q));

	if (!q)
		return KEEP_E_NOMEM;
	q->s = s;
	*out = q;
	return 0;
}

void db_dq_close(struct dq *q)
{
	if (!q)
		return;
	for (int i = 0; i < DQ__COUNT; i++)
		sqlite3_finalize(q->st[i]);
	free(q);
}

static sqlite3_stmt *dq_stmt(struct dq *q, enum dq_id id)
{
	if (!q->st[id] && sqlite3_prepare_v2(db_handle(q->s), dq_sql[id], -1,
					     &q->st[id], NULL) != SQLITE_OK) {
		keep_log(LOG_ERR, "cannot prepare diff query %d: %s", (int)id,
			 sqlite3_errmsg(db_handle(q->s)));
		return NULL;
	}
	return q->st[id];
}

static bool too_big(uint64_t v) { return v > INT64_MAX; }

int db_dq_candidates(struct dq *q, uint64_t lo, uint64_t hi, bool full,
		     db_ino_cb cb, void *ctx)
{
	sqlite3_stmt *st = dq_stmt(q, full ? DQ_FULL : DQ_JOURNAL);
	int src, rc = 0;

	if (!st)
		return KEEP_E_SQLITE;
	if (too_big(lo) || too_big(hi))
		return KEEP_E_INVAL;
	sqlite3_bind_int64(st, 1, (int64_t)lo);
	sqlite3_bind_int64(st, 2, (int64_t)hi);
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = cb(ctx, (uint64_t)sqlite3_column_int64(st, 0));
	if (!rc && src != SQLITE_DONE)
		rc = sql_err(q->s, src, "list changed inodes");
	sqlite3_reset(st);
	return rc;
}

/* Rows are read first and the statement reset before cb runs, so cb may
 * ask for the names of another inode (a path's directories). */
int db_dq_names(struct dq *q, uint64_t view, uint64_t ino, db_name_cb cb,
		void *ctx)
{
	sqlite3_stmt *st =
	    dq_stmt(q, view == KEEP_LIVE ? DQ_NAMES_LIVE : DQ_NAMES_VIEW);
	struct row {
		uint64_t parent;
		size_t len;
		char name[KEEP_NAME_MAX];
	} *v = NULL, *g;
	size_t n = 0, cap = 0;
	int src, rc = 0;

	if (!st)
		return KEEP_E_SQLITE;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	if (view != KEEP_LIVE)
		sqlite3_bind_int64(st, 2, (int64_t)view);
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		int len = sqlite3_column_bytes(st, 1);
		const void *p = sqlite3_column_blob(st, 1);
		if (len < 1 || len > KEEP_NAME_MAX || !p) {
			rc = KEEP_CORRUPT_BKPT(
			    "directory entry with a bad name");
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			g = realloc(v, cap * sizeof(*v));
			if (!g) {
				rc = KEEP_E_NOMEM;
				break;
			}
			v = g;
		}
		v[n].parent = (uint64_t)sqlite3_column_int64(st, 0);
		v[n].len = (size_t)len;
		memcpy(v[n].name, p, (size_t)len);
		n++;
	}
	if (!rc && src != SQLITE_DONE)
		rc = sql_err(q->s, src, "list names");
	sqlite3_reset(st);
	for (size_t i = 0; !rc && i < n; i++)
		rc = cb(ctx, v[i].parent, v[i].name, v[i].len);
	free(v);
	return rc;
}

int db_dq_entries(struct dq *q, uint64_t parent, const char *name,
		  uint64_t lo, uint64_t hi, db_entry_cb cb, void *ctx)
{
	sqlite3_stmt *st = dq_stmt(q, DQ_ENTRIES);
	int src, rc = 0;

	if (!st)
		return KEEP_E_SQLITE;
	if (too_big(parent) || too_big(lo) || too_big(hi))
		return KEEP_E_INVAL;
	sqlite3_bind_int64(st, 1, (int64_t)parent);
	sqlite3_bind_blob(st, 2, name, (int)strlen(name), SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)lo);
	sqlite3_bind_int64(st, 4, (int64_t)hi);
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t born = sqlite3_column_int64(st, 0);
		int64_t died = sqlite3_column_type(st, 1) == SQLITE_NULL
				   ? 0
				   : sqlite3_column_int64(st, 1);
		int64_t ino = sqlite3_column_int64(st, 2);
		if (born < 1 || died < 0 || ino < 1) {
			rc = KEEP_CORRUPT_BKPT("directory entry with a bad "
					       "commit or inode number");
			break;
		}
		rc = cb(ctx, (uint64_t)born, (uint64_t)died, (uint64_t)ino);
	}
	if (!rc && src != SQLITE_DONE)
		rc = sql_err(q->s, src, "list a name's entries");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int db_dq_points(struct dq *q, uint64_t ino, uint64_t lo, uint64_t hi,
		 db_ino_cb cb, void *ctx)
{
	sqlite3_stmt *st = dq_stmt(q, DQ_POINTS);
	int src, rc = 0;

	if (!st)
		return KEEP_E_SQLITE;
	if (too_big(ino) || too_big(lo) || too_big(hi))
		return KEEP_E_INVAL;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)lo);
	sqlite3_bind_int64(st, 3, (int64_t)hi);
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = cb(ctx, (uint64_t)sqlite3_column_int64(st, 0));
	if (!rc && src != SQLITE_DONE)
		rc = sql_err(q->s, src, "list an object's changes");
	sqlite3_reset(st);
	return rc;
}

/* ---- fsck ---------------------------------------------------------------- */

/* Every row of sql is a problem: column 0 its text, and where there are
 * columns 1 and 2, the inode concerned and the commit. */
static int check_rows(struct keep_store *s, const char *sql, const char *label,
		      struct fsck *f)
{
	sqlite3_stmt *st;
	char msg[512];
	int src, n = 0;

	src = sqlite3_prepare_v2(db_handle(s), sql, -1, &st, NULL);
	if (src != SQLITE_OK)
		return sql_err(s, src, label);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		struct fsck_subject subj = {.offset = -1};
		if (++n > 100) {
			snprintf(msg, sizeof(msg),
				 "%s: more problems not listed", label);
			fsck_report(f, NULL, 0, msg);
			break;
		}
		snprintf(msg, sizeof(msg), "%s: %s", label,
			 t ? (const char *)t : "?");
		if (sqlite3_column_count(st) > 2) {
			subj.ino = (uint64_t)sqlite3_column_int64(st, 1);
			subj.lo = (uint64_t)sqlite3_column_int64(st, 2);
			subj.hi = subj.lo + 1;
		}
		fsck_report(f, subj.ino ? &subj : NULL, 0, msg);
	}
	sqlite3_finalize(st);
	return src == SQLITE_ROW || src == SQLITE_DONE ? 0
						       : sql_err(s, src, label);
}

/* every row changed in a committed commit the journal covers is in it:
 * in that commit's entries, or, for a commit garbage collection dropped,
 * in those of the next commit left, where they moved (gc.c) */
#define UNJOURNALED(tab, col, label)                                           \
	"SELECT '" label " ' || x.k || ' changed in commit ' || x.c || "       \
	"' is missing from the journal', x.k, x.c FROM (SELECT " col " AS k, born AS c " \
	"FROM " tab " WHERE born >= %llu AND born <= %llu UNION SELECT " col   \
	", died FROM " tab " WHERE died >= %llu AND died <= %llu) AS x "       \
	"WHERE NOT EXISTS (SELECT 1 FROM changes WHERE commit_id = "           \
	"(SELECT min(id) FROM commits WHERE id >= x.c) AND ino = x.k)"

int db_journal_check(struct keep_store *s, struct fsck *f)
{
	static const char *const sqls[] = {
	    UNJOURNALED("inodes", "ino", "inode"),
	    UNJOURNALED("dirents", "ino", "entry of inode"),
	    UNJOURNALED("dirents", "parent", "directory"),
	    UNJOURNALED("blocks", "ino", "data of inode"),
	    UNJOURNALED("xattrs", "ino", "xattr of inode"),
	};
	struct jstate j;
	char sql[1024];
	int rc = journal_state(s, &j);

	if (rc || !j.table)
		return rc; /* a store from before the journal */
	if (!j.index || !j.from || j.upto > j.last) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "change journal: damaged (index %d, from %llu, up to "
			 "%llu, last commit %llu)",
			 j.index, (unsigned long long)j.from,
			 (unsigned long long)j.upto,
			 (unsigned long long)j.last);
		fsck_report(f, NULL, 0, msg);
	}
	/* commits past 'changes_upto' were made without the journal, which
	 * a writable open notices and restarts the journal after */
	uint64_t to = j.upto < j.last ? j.upto : j.last;
	for (size_t i = 0; !rc && j.from && i < sizeof(sqls) / sizeof(sqls[0]);
	     i++) {
		unsigned long long lo = j.from, hi = to;
		snprintf(sql, sizeof(sql), sqls[i], lo, hi, lo, hi);
		rc = check_rows(s, sql, "change journal", f);
	}
	snprintf(sql, sizeof(sql),
		 "SELECT 'row for commit ' || commit_id || ', which does not "
		 "exist' FROM changes WHERE commit_id NOT IN (SELECT id FROM "
		 "commits)");
	if (!rc)
		rc = check_rows(s, sql, "change journal", f);
	return rc;
}
