/*
 * test_gc.c - keep_gc: what is retained (the newest commit, the journal
 * window, snapshots, pins) and what goes (commits, row versions, blobs);
 * the file shrinks; diffs between the commits left still follow the
 * journal; a stopped collection goes on after a reopen; and a randomized
 * check: random workloads, snapshots taken and deleted, collections with
 * random windows, and after each every commit left reads exactly as it
 * did when it was made (full listings), diffs between them equal full
 * scans, and fsck finds nothing.
 */
#include <pthread.h>
#include <stdbool.h>

#include "unit_sql.h"
#include "unit_tree.h"

#define R KEEP_ROOT_INO

static int gc(struct keep_store *s, int64_t now, int64_t journal,
	      struct keep_gc_result *r)
{
	struct keep_gc_req req = {.now_ns = now, .journal_ns = journal};
	int rc = keep_gc(s, &req, r);

	if (rc)
		diag("gc: %s", keep_strerror(rc));
	return rc;
}

static int64_t commit_ns(struct keep_store *s, uint64_t c)
{
	struct keep_commit_info ci;

	return keep_commit_get(s, c, &ci) == 0 ? ci.time_ns : -1;
}

static bool exists(struct keep_store *s, uint64_t c)
{
	return commit_ns(s, c) >= 0;
}

struct dlines {
	char *text;
	size_t len;
	FILE *f;
};

static int take_diff(void *ctx, const struct keep_diff_entry *e)
{
	FILE *f = ctx;

	fprintf(f, "%c %x %s|%s\n", e->kind, e->flags,
		e->path_a ? e->path_a : "", e->path_b ? e->path_b : "");
	return 0;
}

static char *diff_text(struct keep_store *s, uint64_t a, uint64_t b,
		       unsigned opts)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	int rc = keep_diff(s, a, b, opts, take_diff, f);

	if (rc)
		fprintf(f, "error %s", keep_strerror(rc));
	fclose(f);
	return out;
}

/* ---- rewrites, snapshots, the window, pins -------------------------------- */

static void t_basic(void)
{
	struct keep_store *s = unit_store("basic", 4096);
	struct keep_gc_result r;
	struct keep_snapshot snap;
	uint8_t data[10][65536];
	uint64_t c[10], f;
	char *before[10];

	f = unit_file(s, R, "f", "", 0);
	for (int i = 0; i < 10; i++) {
		unit_fill_random(data[i], sizeof(data[i]));
		keep_write(s, f, 0, data[i], sizeof(data[i]));
		c[i] = unit_commit(s);
		if (i == 4)
			keep_snapshot_create(s, "keep", KEEP_ORIGIN_MANUAL,
					     &snap);
	}
	for (int i = 0; i < 10; i++)
		before[i] = listing(s, c[i], NULL, true, NULL);
	long long blobs = unit_rows("basic", "blobs");
	ok(unit_rows("basic", "blocks") == 160 && blobs == 160,
	   "ten versions of 16 blocks before (%lld rows, %lld blobs)",
	   unit_rows("basic", "blocks"), blobs);

	/* a window reaching back to c[7]: c[7..9] stay, and the snapshot */
	int64_t now = commit_ns(s, c[9]) + 1;
	ok(gc(s, now, now - commit_ns(s, c[7]), &r) == 0 && r.done,
	   "gc with a window");
	bool kept = true;
	for (int i = 0; i < 10; i++)
		kept = kept && exists(s, c[i]) == (i == 4 || i >= 7);
	ok(kept, "the window's commits and the snapshot's stay, no other");
	ok(!exists(s, 1), "the commit made at init went too");
	ok(r.blobs == 160 - 64 && r.blob_bytes > 96 * 4000,
	   "the blobs of the six versions no commit sees went (%" PRIu64
	   ", %" PRIu64 " bytes)",
	   r.blobs, r.blob_bytes);
	bool same = true;
	for (int i = 0; i < 10; i++) {
		if (!exists(s, c[i]))
			continue;
		char *now_l = listing(s, c[i], NULL, true, NULL);
		same = same && !strcmp(now_l, before[i]) &&
		       unit_same(s, c[i], f, data[i], sizeof(data[i]));
		free(now_l);
	}
	ok(same, "every commit left reads as before, byte for byte");
	ok(unit_same(s, KEEP_LIVE, f, data[9], sizeof(data[9])),
	   "and the live tree");
	is_int(problems(s), 0, "fsck finds nothing");
	char *j = diff_text(s, c[4], c[8], 0);
	char *full = diff_text(s, c[4], c[8], KEEP_DIFF_FULL_SCAN);
	is_str(j, full, "a diff across dropped commits follows the journal");
	is_str(j, "M 6 f|f\n", "and sees the change");
	free(j);
	free(full);

	/* nothing left: a second run changes nothing */
	ok(gc(s, now, now - commit_ns(s, c[7]), &r) == 0 && r.done &&
		   r.commits == 0 && r.rows == 0 && r.blobs == 0,
	   "a second run finds nothing to do");

	/* journal 0: only the newest and the snapshot stay */
	ok(gc(s, now, 0, &r) == 0 && r.commits == 2, "gc with no window");
	ok(exists(s, c[4]) && exists(s, c[9]) && !exists(s, c[7]) &&
		   !exists(s, c[8]),
	   "the newest commit and the snapshot stay");
	ok(keep_snapshot_delete(s, "keep") == 0 && gc(s, now, 0, &r) == 0 &&
		   r.commits == 1 && !exists(s, c[4]) &&
		   unit_rows("basic", "blocks") == 16,
	   "a deleted snapshot's commit goes, and its blocks");
	ok(unit_same(s, c[9], f, data[9], sizeof(data[9])),
	   "the newest reads as before");
	is_int(problems(s), 0, "fsck finds nothing");

	/* pins keep a commit however old */
	for (int i = 0; i < 3; i++) {
		keep_write(s, f, 0, data[i], 100);
		c[i] = unit_commit(s);
	}
	struct keep_gc_req req = {.now_ns = commit_ns(s, c[2]) + 1,
				  .pins = &c[0], .npins = 1};
	ok(keep_gc(s, &req, &r) == 0 && exists(s, c[0]) && !exists(s, c[1]),
	   "a pinned commit stays, an unpinned one goes");
	struct keep_gc_req bad = {.journal_ns = -1};
	ok(keep_gc(s, &bad, &r) == KEEP_E_INVAL, "a negative window refused");
	for (int i = 0; i < 10; i++)
		free(before[i]);
	keep_store_close(s);

	s = unit_reopen(NULL, "basic", KEEP_OPEN_RDONLY);
	ok(keep_gc(s, NULL, &r) == EROFS, "a read-only handle cannot collect");
	keep_store_close(s);
}

/* ---- space ----------------------------------------------------------------- */

static long long file_bytes(const char *store)
{
	struct stat st;
	long long n = 0;
	char p[4300];

	snprintf(p, sizeof(p), "%s/store.db", unit_path(store));
	if (stat(p, &st) == 0)
		n += st.st_size;
	snprintf(p, sizeof(p), "%s/store.db-wal", unit_path(store));
	if (stat(p, &st) == 0)
		n += st.st_size;
	return n;
}

static void t_space(void)
{
	struct keep_store *s = unit_store("space", 4096); /* 12k block rows */
	struct keep_gc_result r;
	const size_t size = 4u << 20;
	uint8_t *buf = malloc(size);
	uint64_t f = unit_file(s, R, "big", "", 0);

	for (int i = 0; i < 12; i++) {
		unit_fill_random(buf, size);
		keep_write(s, f, 0, buf, size);
		unit_commit(s);
	}
	s = unit_reopen(s, "space", KEEP_OPEN_WRITE); /* a checkpoint */
	long long full = file_bytes("space");
	ok(full > 12 * (long long)size, "12 versions of 4 MiB: %lld bytes",
	   full);
	int rc = gc(s, 0, 0, &r);
	ok(rc == 0 && r.done && r.pages > 0, "gc gives %" PRIu64 " pages back",
	   r.pages);
	s = unit_reopen(s, "space", KEEP_OPEN_WRITE);
	long long after = file_bytes("space");
	ok(after < 2 * (long long)size,
	   "the file shrinks to under twice one version: %lld bytes", after);
	ok(unit_same(s, KEEP_LIVE, f, buf, size), "the newest version is intact");
	is_int(problems(s), 0, "fsck finds nothing");
	free(buf);
	keep_store_close(s);
}

/* ---- what each commit holds alone -------------------------------------------- */

struct spc {
	uint64_t commit[8], bytes[8];
	size_t n;
};

static int take_spc(void *ctx, uint64_t commit, uint64_t bytes)
{
	struct spc *p = ctx;

	if (p->n < 8) {
		p->commit[p->n] = commit;
		p->bytes[p->n++] = bytes;
	}
	return 0;
}

static uint64_t spc_of(const struct spc *p, uint64_t c)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->commit[i] == c)
			return p->bytes[i];
	return 0;
}

static void t_space_of_commits(void)
{
	struct keep_store *s = unit_store("alone", 4096);
	struct keep_snapshot a, b;
	struct keep_gc_result r;
	struct spc p = {0};
	uint8_t buf[65536], shared[4096];
	uint64_t f = unit_file(s, R, "f", "", 0);

	unit_fill_random(shared, sizeof(shared));
	unit_fill_random(buf, sizeof(buf));
	memcpy(buf, shared, sizeof(shared)); /* block 0 stays the same */
	keep_write(s, f, 0, buf, sizeof(buf));
	keep_snapshot_create(s, "a", KEEP_ORIGIN_MANUAL, &a);
	unit_fill_random(buf + 4096, sizeof(buf) - 4096);
	keep_write(s, f, 0, buf, sizeof(buf));
	keep_snapshot_create(s, "b", KEEP_ORIGIN_MANUAL, &b);
	unit_fill_random(buf + 4096, sizeof(buf) - 4096);
	keep_write(s, f, 0, buf, sizeof(buf));
	unit_commit(s);
	ok(gc(s, 0, 0, &r) == 0 && keep_commit_space(s, take_spc, &p) == 0,
	   "space of the commits left after gc");
	ok(p.n == 2 && spc_of(&p, a.commit) >= 15 * 4000 &&
		   spc_of(&p, a.commit) <= 15 * 4200 &&
		   spc_of(&p, b.commit) >= 15 * 4000 &&
		   spc_of(&p, b.commit) <= 15 * 4200,
	   "each snapshot holds its 15 own blocks alone, not the one all "
	   "three share (%" PRIu64 ", %" PRIu64 ")",
	   spc_of(&p, a.commit), spc_of(&p, b.commit));
	ok(keep_snapshot_delete(s, "a") == 0 && gc(s, 0, 0, &r) == 0 &&
		   r.blob_bytes == spc_of(&p, a.commit),
	   "deleting 'a' frees exactly what it held alone");
	keep_store_close(s);
}

/* ---- corner cases found in review --------------------------------------------- */

static long long unseen_rows(const char *store)
{
	return unit_sql_int(store,
			    "SELECT count(*) FROM blocks WHERE died IS NOT NULL "
			    "AND NOT EXISTS (SELECT 1 FROM commits WHERE id >= "
			    "born AND id < died)");
}

static void t_corners(void)
{
	struct keep_store *s = unit_store("corners", 4096);
	struct keep_gc_result r;
	uint8_t a[4096], b[4096], c[4096];
	uint64_t f = unit_file(s, R, "f", "", 0), pins[80], last = 0;

	/* many pins on the oldest commits hide none of the others */
	for (int i = 0; i < 140; i++) {
		keep_write(s, f, 0, &i, sizeof(i));
		last = unit_commit(s);
		if (i < 80)
			pins[i] = last;
	}
	struct keep_gc_req req = {.now_ns = commit_ns(s, last) + 1,
				  .pins = pins, .npins = 80};
	int rc = keep_gc(s, &req, &r);
	ok(rc == 0 && r.done && unit_rows("corners", "commits") == 81,
	   "80 pinned commits stay and every other old one goes (%" PRIu64
	   " dropped, %lld left)",
	   r.commits, unit_rows("corners", "commits"));

	/* the highest blob is garbage: it waits, and goes once a newer one
	 * exists */
	unit_fill_random(a, sizeof(a));
	unit_fill_random(b, sizeof(b));
	unit_fill_random(c, sizeof(c));
	keep_write(s, f, 0, a, sizeof(a));
	unit_commit(s);
	keep_write(s, f, 0, b, sizeof(b));
	unit_commit(s);
	keep_write(s, f, 0, a, sizeof(a)); /* a's blob again: b is garbage */
	unit_commit(s);
	rc = gc(s, 0, 0, &r);
	ok(rc == 0 && r.done &&
		   unit_sql_int("corners", "SELECT count(*) FROM gc_blobs") == 1,
	   "the garbage blob with the highest id waits in gc_blobs");
	keep_write(s, f, 0, c, sizeof(c));
	unit_commit(s);
	rc = gc(s, 0, 0, &r);
	ok(rc == 0 && r.done && r.blobs >= 1 &&
		   unit_sql_int("corners", "SELECT count(*) FROM gc_blobs") == 0,
	   "and goes once a newer blob exists");
	is_int(problems(s), 0, "fsck finds nothing");

	/* commits older than the change journal name nothing: a sweep */
	for (int i = 0; i < 5; i++) {
		unit_fill_random(a, sizeof(a));
		keep_write(s, f, 0, a, sizeof(a));
		last = unit_commit(s);
	}
	s = unit_reopen(s, "corners", KEEP_OPEN_RDONLY);
	unit_sql("corners", "DELETE FROM changes");
	char sql[200];
	snprintf(sql, sizeof(sql),
		 "UPDATE meta SET value = %" PRIu64 " WHERE key = "
		 "'changes_from'",
		 last + 1);
	unit_sql("corners", sql);
	s = unit_reopen(s, "corners", KEEP_OPEN_WRITE);
	rc = gc(s, 0, 0, &r);
	ok(rc == 0 && r.done && unseen_rows("corners") == 0,
	   "rows of commits older than the journal are collected too "
	   "(%lld left unseen)",
	   unseen_rows("corners"));
	ok(unit_same(s, KEEP_LIVE, f, a, sizeof(a)), "the file reads as written");
	keep_store_close(s);
}

/* history on a read-only handle while the writer collects */
struct hist_run {
	const char *store;
	int errors, runs;
	volatile int stop;
};

static int count_v(void *ctx, const struct keep_version *v)
{
	(void)v;
	(*(int *)ctx)++;
	return 0;
}

static void *reader(void *arg)
{
	struct hist_run *h = arg;
	struct keep_store *ro = NULL;

	if (keep_store_open(unit_path(h->store), KEEP_OPEN_RDONLY, &ro))
		return NULL;
	while (!h->stop) {
		int n = 0;
		if (keep_history(ro, "f", count_v, &n))
			h->errors++;
		h->runs++;
	}
	keep_store_close(ro);
	return NULL;
}

static void t_history_during_gc(void)
{
	struct keep_store *s = unit_store("readgc", 4096);
	struct keep_gc_result r;
	struct hist_run h = {.store = "readgc"};
	uint64_t f = unit_file(s, R, "f", "x", 1);
	pthread_t t;

	unit_commit(s);
	pthread_create(&t, NULL, reader, &h);
	for (int i = 0; i < 300; i++) {
		keep_write(s, f, 0, &i, sizeof(i));
		unit_commit(s);
		if (i % 3 == 0)
			gc(s, 0, 0, &r);
	}
	h.stop = 1;
	pthread_join(t, NULL);
	ok(h.runs > 0 && h.errors == 0,
	   "keep_history on a read-only handle, %d runs during 100 "
	   "collections: no error",
	   h.runs);
	keep_store_close(s);
}

/* ---- stopped and resumed ----------------------------------------------------- */

static void t_resume(void)
{
	struct keep_store *s = unit_store("resume", 4096);
	struct keep_gc_result r;
	uint8_t buf[8192];
	uint64_t last = 0;

	for (int i = 0; i < 400; i++) {
		unit_fill_random(buf, sizeof(buf));
		unit_file(s, R, i % 2 ? "a" : "b", buf, sizeof(buf));
		keep_unlink(s, R, i % 2 ? "b" : "a");
		last = unit_commit(s);
	}
	char *want = listing(s, last, NULL, true, NULL);
	struct keep_gc_req req = {.max_ms = 1};
	int rc = keep_gc(s, &req, &r);
	ok(rc == 0 && !r.done && r.commits > 0,
	   "a collection cut short after 1 ms (%" PRIu64 " commits)",
	   r.commits);
	s = unit_reopen(s, "resume", KEEP_OPEN_WRITE);
	ok(gc(s, 0, 0, &r) == 0 && r.done, "the next run finishes");
	ok(unit_rows("resume", "commits") == 1 && unit_rows("resume", "gc_todo") == 0 &&
		   unit_rows("resume", "gc_blobs") == 0,
	   "one commit left, no work pending");
	char *got = listing(s, last, NULL, true, NULL);
	is_str(got, want, "the newest commit reads as before");
	is_int(problems(s), 0, "fsck finds nothing");
	free(want);
	free(got);
	keep_store_close(s);
}

/* ---- random ---------------------------------------------------------------- */

struct rec {
	uint64_t commit;
	char *text;
};

static void t_random(void)
{
	struct keep_store *s = unit_store("random", 4096);
	struct keep_gc_result r;
	struct keep_snapshot snap;
	uint64_t dirs[256] = {R};
	size_t ndirs = 1;
	static struct rec recs[4096];
	size_t nrecs = 0, nsnaps = 0, runs = 0;
	int bad = 0, badfsck = 0, baddiff = 0;
	char name[32];

	for (int round = 0; round < 30; round++) {
		for (int i = 0; i < 40; i++) {
			random_op(s, dirs, &ndirs);
			if (unit_rand() % 4)
				continue;
			uint64_t c = unit_commit(s);
			if (c && nrecs < 4096 &&
			    (!nrecs || recs[nrecs - 1].commit != c))
				recs[nrecs++] = (struct rec){
				    c, listing(s, c, NULL, true, NULL)};
			if (unit_rand() % 10 == 0) {
				snprintf(name, sizeof(name), "s%zu", nsnaps++);
				keep_snapshot_create(s, name,
						     KEEP_ORIGIN_MANUAL, &snap);
			}
		}
		if (nsnaps && unit_rand() % 2) {
			snprintf(name, sizeof(name), "s%zu",
				 (size_t)(unit_rand() % nsnaps));
			keep_snapshot_delete(s, name); /* may be gone */
		}
		/* a window reaching back to a random recorded commit */
		uint64_t last = unit_commit(s);
		int64_t now = commit_ns(s, last) + 1;
		int64_t window =
		    nrecs ? now - commit_ns(s, recs[unit_rand() % nrecs].commit)
			  : 0;
		if (window < 0 || unit_rand() % 4 == 0)
			window = 0;
		if (gc(s, now, window, &r) || !r.done)
			bad++;
		runs++;
		/* every commit left reads as recorded */
		uint64_t prev = 0;
		for (size_t i = 0; i < nrecs; i++) {
			if (!exists(s, recs[i].commit))
				continue;
			char *got = listing(s, recs[i].commit, NULL, true, NULL);
			if (strcmp(got, recs[i].text)) {
				diag("round %d: commit %" PRIu64 " changed",
				     round, recs[i].commit);
				bad++;
			}
			free(got);
			if (prev && unit_rand() % 3 == 0) {
				char *j = diff_text(s, prev, recs[i].commit, 0);
				char *f = diff_text(s, prev, recs[i].commit,
						    KEEP_DIFF_FULL_SCAN);
				if (strcmp(j, f)) {
					diag("diff %" PRIu64 "..%" PRIu64
					     ": journal '%s', scan '%s'",
					     prev, recs[i].commit, j, f);
					baddiff++;
				}
				free(j);
				free(f);
			}
			prev = recs[i].commit;
		}
		if (problems(s))
			badfsck++;
	}
	ok(bad == 0, "%zu collections: every commit left reads as when it "
		     "was made",
	   runs);
	ok(baddiff == 0, "diffs between commits left follow the journal");
	ok(badfsck == 0, "fsck found nothing after any of them");
	ok(unit_rows("random", "commits") < (long long)nrecs,
	   "commits went (%lld of %zu left)", unit_rows("random", "commits"),
	   nrecs);
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].text);
	keep_store_close(s);
}

int main(void)
{
	unit_begin("gc");
	unit_seed(3);
	t_basic();
	t_space();
	t_space_of_commits();
	t_corners();
	t_history_during_gc();
	t_resume();
	t_random();
	is_int(unit_log_problems, 0, "core logged no errors or warnings");
	unit_end();
	return tap_done();
}
