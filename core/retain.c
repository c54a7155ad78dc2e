/*
 * retain.c - which snapshots the retention settings keep (keep_retain),
 * and when an automatic snapshot is due (keep_auto_due).
 *
 * Design notes:
 *
 *  1. Automatic snapshots (origin auto) are kept by the period in which
 *     they were taken, as snapper's timeline does: for hours, days, weeks (Monday to Sunday) and months,
 *     all in UTC, walk the auto snapshots newest first; the first one met
 *     in a period is that period's newest, and it is kept while fewer
 *     than N periods of that kind have been met.  So "daily=30" keeps the
 *     newest snapshot of each of the 30 most recent days that have one: a
 *     store left alone for a month loses nothing of what came before.
 *     The newest auto snapshot is always kept: the next one is taken only
 *     if something changed since it.
 *  2. Pre-restore snapshots: the newest `prerestore` are kept.  Manual
 *     and received snapshots are never deleted here.
 *  3. Applying the rule after every new snapshot gives what applying it
 *     once to all of them would: a snapshot dropped is not the newest of
 *     its period for any kind kept, and stays so.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <string.h>
#include <time.h>

#include "keep_i.h"

#define NS_PER_SEC INT64_C(1000000000)

struct snaps {
	struct keep_snapshot *v;
	size_t n, cap;
};

static int take(void *ctx, const struct keep_snapshot *snap)
{
	struct snaps *s = ctx;
	int rc = GROW(s->v, s->cap, s->n);

	if (!rc)
		s->v[s->n++] = *snap;
	return rc;
}

/* newest first: by the time they were taken, then by id */
static int newest_first(const void *x, const void *y)
{
	const struct keep_snapshot *a = x, *b = y;

	if (a->created_ns != b->created_ns)
		return a->created_ns > b->created_ns ? -1 : 1;
	return a->id > b->id ? -1 : a->id < b->id;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The period of time t for kind k (0 hour, 1 day, 2 week, 3 month). */
static int64_t period(int64_t t, int k)
{
	int64_t sec = floor_div(t, NS_PER_SEC);
	int64_t day = floor_div(sec, 86400);
	struct tm tm;
	time_t tt = (time_t)sec;

	switch (k) {
	case 0:
		return floor_div(sec, 3600);
	case 1:
		return day;
	case 2:
		return floor_div(day + 3, 7); /* 1970-01-01 was a Thursday */
	default:
		gmtime_r(&tt, &tm);
		return (int64_t)tm.tm_year * 12 + tm.tm_mon;
	}
}

static int list(struct keep_store *s, struct snaps *out)
{
	int rc = keep_snapshot_list(s, 0, take, out);

	if (!rc && out->n)
		qsort(out->v, out->n, sizeof(*out->v), newest_first);
	return rc;
}

int keep_retain(struct keep_store *s, const struct keep_policy *p,
		keep_snapshot_cb deleted, void *ctx, uint64_t *ndeleted)
{
	struct snaps all = {0};
	bool *keep = NULL;
	int rc;

	if (!s || !p)
		return KEEP_E_INVAL;
	if (ndeleted)
		*ndeleted = 0;
	rc = list(s, &all);
	if (!rc && all.n && !(keep = calloc(all.n, sizeof(*keep))))
		rc = KEEP_E_NOMEM;
	if (rc)
		goto out;
	/* note 1 */
	const uint32_t counts[4] = {p->hourly, p->daily, p->weekly, p->monthly};
	bool newest = true;
	for (int k = 0; k < 4; k++) {
		uint32_t met = 0;
		int64_t last = 0;
		for (size_t i = 0; i < all.n; i++) {
			if (all.v[i].origin != KEEP_ORIGIN_AUTO)
				continue;
			int64_t per = period(all.v[i].created_ns, k);
			if (met && per == last)
				continue; /* not the newest of its period */
			met++;
			last = per;
			if (met <= counts[k])
				keep[i] = true;
		}
	}
	/* note 2; and every snapshot of another origin */
	uint32_t pre = 0;
	for (size_t i = 0; i < all.n; i++) {
		if (all.v[i].origin == KEEP_ORIGIN_AUTO) {
			if (newest)
				keep[i] = true;
			newest = false;
		} else if (all.v[i].origin == KEEP_ORIGIN_PRE_RESTORE) {
			keep[i] = pre++ < p->prerestore;
		} else {
			keep[i] = true;
		}
	}
	for (size_t i = 0; !rc && i < all.n; i++) {
		if (keep[i])
			continue;
		rc = keep_snapshot_delete(s, all.v[i].name);
		if (rc == ENOENT) {
			rc = 0; /* deleted meanwhile */
			continue;
		}
		if (!rc && ndeleted)
			(*ndeleted)++;
		if (!rc && deleted)
			rc = deleted(ctx, &all.v[i]);
	}
out:
	free(keep);
	free(all.v);
	return rc;
}

int keep_auto_due(struct keep_store *s, const struct keep_policy *p,
		  int64_t now_ns, const struct keep_auto_base *base, int *due)
{
	struct snaps all = {0};
	const struct keep_snapshot *last = NULL;
	int rc;

	if (!s || !p || !due)
		return KEEP_E_INVAL;
	*due = 0;
	if (!p->auto_ns)
		return 0;
	rc = list(s, &all);
	for (size_t i = 0; !rc && i < all.n && !last; i++)
		if (all.v[i].origin == KEEP_ORIGIN_AUTO)
			last = &all.v[i];
	if (!rc) {
		/* the newest auto snapshot, or else the start (a mount) */
		uint64_t since_commit = last ? last->commit
				       : base ? base->commit : 0;
		int64_t since_ns = last ? last->created_ns
				   : base ? base->time_ns : INT64_MIN / 2;
		/* something changed since: a commit after it, or changes
		 * not committed yet */
		bool changed = keep_last_commit(s) > since_commit ||
			       keep_dirty_since(s) != 0;
		*due = changed && now_ns - since_ns >= p->auto_ns;
	}
	free(all.v);
	return rc;
}

int keep_commit_space(struct keep_store *s, keep_space_cb cb, void *ctx)
{
	int rc;

	if (!s || !cb)
		return KEEP_E_INVAL;
	pthread_mutex_lock(&s->mu);
	rc = db_exclusive(s, cb, ctx);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

uint64_t keep_history_budget(struct keep_store *s, const struct keep_policy *p)
{
	struct statvfs v;

	if (p->max_history_bytes)
		return p->max_history_bytes;
	if (!p->max_history_pct || statvfs(s->path, &v) != 0)
		return 0;
	return (uint64_t)v.f_blocks * v.f_frsize / 100 * p->max_history_pct;
}
