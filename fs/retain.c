/*
 * retain.c - retention on a mount: the settings in force, automatic
 * snapshots, the retention of snapshots and background garbage
 * collection.
 *
 * Design notes:
 *
 *  1. The store keeps its settings (core/policy.c); mount options of the
 *     same names override them for the life of the mount.  Every setting
 *     passes through its text form (keep_policy_get, keep_policy_set), so
 *     merging needs no knowledge of the fields.
 *  2. One thread wakes every second.  When an automatic snapshot is due
 *     (keep_auto_due: the interval passed and something changed) it takes
 *     one the way mkdir in .snapshots does (the kernel's dirty pages
 *     first), named by the UTC time.  After a snapshot, and once a minute
 *     of the history clock, it applies retention (keep_retain) and
 *     collects garbage (kfs_gc: small steps, applications go on between
 *     them).  Deleted snapshots' views die as by rmdir.
 *  3. The space budget (max_history): history's share of the stored
 *     bytes is counted on a read-only handle of the store (a full pass
 *     over the blocks, which must not hold the writer's lock).  While it
 *     is over the budget, the oldest quarter of the journal's commits go
 *     (a shorter window for one collection), then, when the journal holds
 *     nothing more, the oldest automatic snapshot, one at a time.  Manual,
 *     received and pre-restore snapshots are never touched; when only they
 *     are left over the budget, a warning says so, once until it is met.
 *  4. Decisions follow keep_clock_ns(), the clock a test can replace, so
 *     a test moves time on by a month and asks for a pass at once
 *     (kfs_retain_now, the hidden "keepfs retain-now") instead of waiting.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "kfs_i.h"

int kfs_policy_reload(struct kfs *fs)
{
	struct keep_policy p;
	char v[64];
	int rc = keep_policy_load(fs->store, &p);

	if (rc) {
		keep_log(LOG_ERR, "cannot read the store's settings: %s",
			 keep_strerror(rc));
		return rc;
	}
	for (int i = 0; keep_policy_keys[i]; i++) {
		if (!(fs->cfg->policy_mask & (1u << i)))
			continue;
		keep_policy_get(&fs->cfg->policy, keep_policy_keys[i], v,
				sizeof(v));
		keep_policy_set(&p, keep_policy_keys[i], v, NULL, 0);
	}
	pthread_mutex_lock(&fs->policy_mu);
	fs->policy = p;
	pthread_mutex_unlock(&fs->policy_mu);
	return 0;
}

void kfs_policy_get(struct kfs *fs, struct keep_policy *out)
{
	pthread_mutex_lock(&fs->policy_mu);
	*out = fs->policy;
	pthread_mutex_unlock(&fs->policy_mu);
}

/* ---- the retention thread ----------------------------------------------- */

#define NS INT64_C(1000000000)
#define FULL_PASS_NS (60 * NS) /* of the history clock */

struct pass {
	struct kfs *fs;
	FILE *f;
	uint64_t deleted;
};

static int gone(void *ctx, const struct keep_snapshot *snap)
{
	struct pass *ps = ctx;

	keep_log(LOG_INFO, "retention: snapshot '%s' deleted", snap->name);
	if (ps->f)
		fprintf(ps->f, "deleted snapshot %s\n", snap->name);
	kfs_snap_gone(ps->fs, snap);
	return 0;
}

/* Take an automatic snapshot named by the time (note 2). */
static int take_auto(struct kfs *fs, int64_t now, FILE *f)
{
	struct keep_snapshot snap;
	char when[32], name[48];
	int rc = EEXIST;

	keep_format_time(now, when, sizeof(when));
	for (int k = 1; k < 100 && rc == EEXIST; k++) {
		if (k == 1)
			snprintf(name, sizeof(name), "%s", when);
		else
			snprintf(name, sizeof(name), "%s-%d", when, k);
		rc = kfs_snap_create(fs, name, KEEP_ORIGIN_AUTO, &snap);
	}
	if (rc) {
		keep_log(LOG_ERR, "automatic snapshot failed: %s",
			 keep_strerror(rc));
		return rc;
	}
	kfs_snap_made(fs, name);
	if (f)
		fprintf(f, "auto snapshot %s\n", name);
	return 0;
}

/* The journal's commits: those no snapshot names, oldest first. */
struct journal {
	uint64_t *snaps; /* commits snapshots name */
	size_t nsnaps, capsnaps;
	int64_t *times;
	size_t n, cap;
};

static int take_snap_commit(void *ctx, const struct keep_snapshot *s)
{
	struct journal *j = ctx;

	if (j->nsnaps == j->capsnaps) {
		size_t nc = j->capsnaps ? 2 * j->capsnaps : 32;
		uint64_t *p = realloc(j->snaps, nc * sizeof(*p));
		if (!p)
			return ENOMEM;
		j->snaps = p;
		j->capsnaps = nc;
	}
	j->snaps[j->nsnaps++] = s->commit;
	return 0;
}

static int take_commit(void *ctx, const struct keep_commit_info *c)
{
	struct journal *j = ctx;

	for (size_t i = 0; i < j->nsnaps; i++)
		if (j->snaps[i] == c->id)
			return 0;
	if (j->n == j->cap) {
		size_t nc = j->cap ? 2 * j->cap : 64;
		int64_t *p = realloc(j->times, nc * sizeof(*p));
		if (!p)
			return ENOMEM;
		j->times = p;
		j->cap = nc;
	}
	j->times[j->n++] = c->time_ns;
	return 0;
}

/* The journal window that leaves out the oldest quarter of the journal's
 * commits (the newest commit always stays); 0 with *ok false when there
 * is nothing to cut or it cannot be told. */
static int64_t shorter_window(struct kfs *fs, int64_t now, bool *ok)
{
	struct journal j = {0};
	int64_t window = 0;

	*ok = false;
	if (keep_snapshot_list(fs->store, 0, take_snap_commit, &j) == 0 &&
	    keep_commit_list(fs->store, 0, take_commit, &j) == 0 && j.n > 1) {
		size_t skip = (j.n - 1) / 4 ? (j.n - 1) / 4 : 1;
		int64_t cut = j.times[skip]; /* the first commit kept */
		if (cut <= now) {
			window = now - cut;
			*ok = true;
		}
	}
	free(j.snaps);
	free(j.times);
	return window;
}

struct autos {
	struct keep_snapshot oldest, newest;
	size_t n;
};

static int take_autos(void *ctx, const struct keep_snapshot *s)
{
	struct autos *a = ctx;

	if (s->origin != KEEP_ORIGIN_AUTO)
		return 0;
	if (!a->n || s->created_ns < a->oldest.created_ns)
		a->oldest = *s;
	if (!a->n || s->created_ns >= a->newest.created_ns)
		a->newest = *s;
	a->n++;
	return 0;
}

/* History's stored bytes, counted on the read-only handle. */
static int history_bytes(struct kfs *fs, uint64_t *out)
{
	struct keep_stats st;
	int rc = 0;

	if (!fs->ro_store)
		rc = keep_store_open(fs->cfg->store_path, KEEP_OPEN_RDONLY,
				     &fs->ro_store);
	if (rc) {
		fs->ro_store = NULL;
		return rc;
	}
	rc = keep_stats(fs->ro_store, &st);
	if (!rc)
		*out = st.history_stored_bytes;
	return rc;
}

/* Keep history under max_history (note 3). */
static int budget(struct kfs *fs, const struct keep_policy *p, int64_t now,
		  struct pass *ps)
{
	uint64_t limit = keep_history_budget(fs->store, p), used = 0;
	int rc;

	if (!limit)
		return 0;
	for (int round = 0; round < 64; round++) {
		rc = history_bytes(fs, &used);
		if (rc || used <= limit) {
			if (!rc && fs->budget_warned) {
				keep_log(LOG_INFO, "history is within its "
						   "budget again");
				fs->budget_warned = 0;
			}
			return rc;
		}
		/* the journal's commits first: the oldest quarter */
		bool cut = false;
		int64_t window = shorter_window(fs, now, &cut);
		struct keep_gc_req req = {.journal_ns = window};
		struct keep_gc_result res;
		if (cut) {
			rc = kfs_gc(fs, &req, &res);
			if (rc)
				return rc;
			if (res.commits)
				continue;
		}
		/* then the oldest automatic snapshot (never the newest) */
		struct autos a = {0};
		rc = keep_snapshot_list(fs->store, 0, take_autos, &a);
		if (rc)
			return rc;
		if (a.n > 1) {
			rc = keep_snapshot_delete(fs->store, a.oldest.name);
			if (!rc) {
				keep_log(LOG_INFO,
					 "history over its budget: snapshot "
					 "'%s' deleted",
					 a.oldest.name);
				if (ps->f)
					fprintf(ps->f,
						"over budget: deleted snapshot "
						"%s\n",
						a.oldest.name);
				kfs_snap_gone(fs, &a.oldest);
			}
			if (rc && rc != ENOENT)
				return rc;
			/* the journal as it is: only the snapshot's data */
			req.journal_ns = p->journal_ns;
			rc = kfs_gc(fs, &req, &res);
			if (rc)
				return rc;
			continue;
		}
		break;
	}
	if (!fs->budget_warned) {
		keep_log(LOG_WARNING,
			 "history takes %llu bytes, over its budget of %llu "
			 "(max_history): what is left is held by snapshots "
			 "retention never deletes (manual, received, "
			 "pre-restore) and the newest automatic one",
			 (unsigned long long)used, (unsigned long long)limit);
		fs->budget_warned = 1;
	}
	if (ps->f)
		fprintf(ps->f, "over budget: %llu bytes of history, budget "
			       "%llu\n",
			(unsigned long long)used, (unsigned long long)limit);
	return 0;
}

/* One pass, under retain_lock; full: retention and gc whatever the time. */
static int pass(struct kfs *fs, bool full, FILE *f)
{
	struct keep_policy p;
	struct pass ps = {fs, f, 0};
	int64_t now = keep_clock_ns();
	int due = 0, rc;

	if (fs->cfg->read_only)
		return EROFS;
	kfs_policy_get(fs, &p);
	rc = keep_auto_due(fs->store, &p, now, &fs->auto_base, &due);
	if (!rc && due) {
		rc = take_auto(fs, now, f);
		full = true;
	}
	if (!full && now - fs->retain_last < FULL_PASS_NS &&
	    now >= fs->retain_last)
		return rc;
	fs->retain_last = now;
	int rc2 = keep_retain(fs->store, &p, gone, &ps, &ps.deleted);
	if (rc2)
		keep_log(LOG_ERR, "retention failed: %s", keep_strerror(rc2));
	struct keep_gc_req req = {.journal_ns = p.journal_ns};
	struct keep_gc_result res;
	int rc3 = kfs_gc(fs, &req, &res);
	if (rc3)
		keep_log(LOG_ERR, "garbage collection failed: %s",
			 keep_strerror(rc3));
	else if (res.commits || res.blobs)
		keep_log(LOG_INFO,
			 "garbage collection: %llu commits, %llu row versions, "
			 "%llu blobs (%llu bytes) dropped",
			 (unsigned long long)res.commits,
			 (unsigned long long)res.rows,
			 (unsigned long long)res.blobs,
			 (unsigned long long)res.blob_bytes);
	if (f && !rc3)
		fprintf(f,
			"dropped %llu commits, %llu row versions and %llu "
			"blobs\n",
			(unsigned long long)res.commits,
			(unsigned long long)res.rows,
			(unsigned long long)res.blobs);
	int rc4 = budget(fs, &p, now, &ps);
	return rc ? rc : rc2 ? rc2 : rc3 ? rc3 : rc4;
}

static void *retain_main(void *arg)
{
	struct kfs *fs = arg;

	pthread_mutex_lock(&fs->retain_lock);
	while (!fs->retain_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&fs->retain_cond, &fs->retain_lock, &ts);
		if (fs->retain_stop)
			break;
		pass(fs, false, NULL);
	}
	pthread_mutex_unlock(&fs->retain_lock);
	return NULL;
}

int kfs_retain_start(struct kfs *fs)
{
	pthread_condattr_t ca;
	int err;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->retain_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&fs->retain_lock, NULL);
	fs->retain_stop = 0;
	fs->retain_last = keep_clock_ns();
	fs->auto_base.time_ns = fs->retain_last;
	fs->auto_base.commit = keep_last_commit(fs->store);
	if (fs->cfg->read_only)
		return 0; /* nothing to do on a read-only mount */
	err = pthread_create(&fs->retain_thread, NULL, retain_main, fs);
	if (!err)
		fs->retain_running = 1;
	return err;
}

void kfs_retain_stop(struct kfs *fs)
{
	if (fs->retain_running) {
		pthread_mutex_lock(&fs->retain_lock);
		fs->retain_stop = 1;
		pthread_cond_signal(&fs->retain_cond);
		pthread_mutex_unlock(&fs->retain_lock);
		pthread_join(fs->retain_thread, NULL);
		fs->retain_running = 0;
	}
	if (fs->ro_store)
		keep_store_close(fs->ro_store);
	fs->ro_store = NULL;
	pthread_cond_destroy(&fs->retain_cond);
	pthread_mutex_destroy(&fs->retain_lock);
}

int kfs_retain_now(struct kfs *fs, FILE *f)
{
	pthread_mutex_lock(&fs->retain_lock);
	int rc = pass(fs, true, f);
	pthread_mutex_unlock(&fs->retain_lock);
	return rc;
}
