/*
 * snap.c - snapshots (named, retained commits), the list of commits,
 * points in time, and the counts of a view.
 *
 * Owns the public snapshot and commit-listing API; the rows live in db.c
 * and the commit they ride in is store.c's.
 *
 * Design notes:
 *
 *  1. A snapshot is a row (id, name, commit_id, created_ns, origin).
 *     Nothing else: every view is already kept by the copy-on-write rule,
 *     so creating a snapshot is O(1) whatever the size of the tree.
 *  2. Creation is atomic with the commit it names.  The row is inserted
 *     by the commit pipeline (store_commit) inside the SQLite transaction
 *     that also holds every pending change and the commits row; dirty data
 *     still in memory, and data a concurrent commit is encoding (that
 *     commit holds commit_mu, so this one waits for it), are all in that
 *     commit.  With nothing pending, the row names the last commit and is
 *     committed alone.  Either way it is synced before the call returns.
 *  3. Renames and deletions go through the same pipeline: the writer has
 *     one SQLite transaction holding every pending change, so a name
 *     change cannot be made durable without them; it commits them too.
 *  4. Ids come from AUTOINCREMENT and are never reused, even after the
 *     newest snapshot is deleted, so an id names one view for good.
 *  5. Deleting a snapshot drops the name only; no data is freed here
 *     (garbage collection is a separate step).
 *  6. Listings read a batch of rows under mu, drop it, then run the
 *     callbacks, so a callback may call back into the store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"

#define SNAP_BATCH 64
#define COMMIT_BATCH 256

const char *keep_origin_name(int origin)
{
	switch (origin) {
	case KEEP_ORIGIN_MANUAL:
		return "manual";
	case KEEP_ORIGIN_AUTO:
		return "auto";
	case KEEP_ORIGIN_PRE_RESTORE:
		return "pre-restore";
	case KEEP_ORIGIN_RECEIVED:
		return "received";
	default:
		return "unknown";
	}
}

int keep_snapshot_name_check(const char *name)
{
	size_t len;

	if (!name)
		return EINVAL;
	len = strlen(name);
	if (len == 0)
		return EINVAL;
	if (len > KEEP_SNAP_NAME_MAX)
		return ENAMETOOLONG;
	if (strchr(name, '/') || name[0] == '@' || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return EINVAL;
	return 0;
}

/* ---- the commit pipeline's side --------------------------------------- */

int snap_check(struct keep_store *s, struct snap_op *op)
{
	struct keep_snapshot tmp;
	int rc;

	switch (op->kind) {
	case SNAP_CREATE:
		rc = db_snap_get(s, op->name, 0, &tmp);
		if (rc == 0)
			return EEXIST;
		if (rc != ENOENT)
			return rc;
		return keep_space_check(s, 0);
	case SNAP_DELETE:
		return db_snap_get(s, op->name, 0, &tmp);
	case SNAP_RENAME:
		rc = db_snap_get(s, op->name, 0, &tmp);
		if (rc)
			return rc;
		rc = db_snap_get(s, op->newname, 0, &tmp);
		if (rc == 0)
			return EEXIST;
		return rc == ENOENT ? 0 : rc;
	}
	return KEEP_E_INVAL;
}

int snap_apply(struct keep_store *s, struct snap_op *op, uint64_t commit,
	       int64_t commit_ns)
{
	struct keep_snapshot *m = &op->made;
	int rc;

	switch (op->kind) {
	case SNAP_CREATE:
		memset(m, 0, sizeof(*m));
		m->commit = commit;
		m->commit_ns = commit_ns;
		m->created_ns = keep_clock_ns();
		m->origin = op->origin;
		rc = db_snap_insert(s, op->name, commit, m->created_ns,
				    op->origin, &m->id);
		if (!rc)
			memcpy(m->name, op->name, strlen(op->name) + 1);
		return rc;
	case SNAP_DELETE:
		return db_snap_delete(s, op->name);
	case SNAP_RENAME:
		return db_snap_rename(s, op->name, op->newname);
	}
	return KEEP_E_INVAL;
}

/* ---- snapshots ----------------------------------------------------------- */

int keep_snapshot_create(struct keep_store *s, const char *name, int origin,
			 struct keep_snapshot *out)
{
	struct snap_op op = {.kind = SNAP_CREATE, .name = name, .origin = origin};
	int rc = keep_snapshot_name_check(name);

	if (rc)
		return rc;
	if (origin < KEEP_ORIGIN_MANUAL || origin > KEEP_ORIGIN_RECEIVED)
		return KEEP_E_INVAL;
	rc = store_commit(s, NULL, true, &op);
	if (!rc && out)
		*out = op.made;
	return rc;
}

int keep_snapshot_delete(struct keep_store *s, const char *name)
{
	struct snap_op op = {.kind = SNAP_DELETE, .name = name};

	if (!name)
		return KEEP_E_INVAL;
	return store_commit(s, NULL, true, &op);
}

int keep_snapshot_rename(struct keep_store *s, const char *oldname,
			 const char *newname)
{
	struct snap_op op = {
		.kind = SNAP_RENAME, .name = oldname, .newname = newname};
	struct keep_snapshot tmp;
	int rc;

	if (!oldname)
		return KEEP_E_INVAL;
	rc = keep_snapshot_name_check(newname);
	if (rc)
		return rc;
	if (strcmp(oldname, newname) != 0)
		return store_commit(s, NULL, true, &op);
	/* to its own name: nothing to write, but the answers of a rename */
	pthread_mutex_lock(&s->mu);
	rc = keep_writable(s);
	if (!rc)
		rc = db_snap_get(s, oldname, 0, &tmp);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_snapshot_get(struct keep_store *s, const char *name,
		      struct keep_snapshot *out)
{
	struct keep_snapshot snap;
	int rc;

	if (!name)
		return KEEP_E_INVAL;
	pthread_mutex_lock(&s->mu);
	rc = db_snap_get(s, name, 0, &snap);
	pthread_mutex_unlock(&s->mu);
	if (!rc)
		*out = snap;
	return rc;
}

int keep_snapshot_by_id(struct keep_store *s, uint64_t id,
			struct keep_snapshot *out)
{
	struct keep_snapshot snap;
	int rc;

	if (id == 0 || id > INT64_MAX)
		return ENOENT;
	pthread_mutex_lock(&s->mu);
	rc = db_snap_get(s, NULL, id, &snap);
	pthread_mutex_unlock(&s->mu);
	if (!rc)
		*out = snap;
	return rc;
}

int keep_snapshot_list(struct keep_store *s, uint64_t after,
		       keep_snapshot_cb cb, void *ctx)
{
	struct keep_snapshot *batch = malloc(sizeof(*batch) * SNAP_BATCH);
	size_t n = 0;
	int rc = 0;

	if (!batch)
		return KEEP_E_NOMEM;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		rc = db_snap_list(s, after, batch, SNAP_BATCH, &n);
		pthread_mutex_unlock(&s->mu);
		for (size_t i = 0; !rc && i < n; i++)
			rc = cb(ctx, &batch[i]);
		if (rc || n < SNAP_BATCH)
			break;
		after = batch[n - 1].id;
	}
	free(batch);
	return rc;
}

/* ---- commits and views --------------------------------------------------- */

int keep_view_stats(struct keep_store *s, uint64_t view,
		    struct keep_view_stats *out)
{
	struct keep_view_stats vs = {0};
	struct keep_commit_info ci;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (view == KEEP_LIVE)
		rc = ns_flush(s); /* the writer's cached inodes to their rows */
	else
		rc = db_commit_get(s, view, &ci);
	if (!rc)
		rc = db_view_stats(s, view, &vs);
	pthread_mutex_unlock(&s->mu);
	if (!rc)
		*out = vs;
	return rc;
}

int keep_commit_list(struct keep_store *s, uint64_t after, keep_commit_cb cb,
		     void *ctx)
{
	struct keep_commit_info *batch = malloc(sizeof(*batch) * COMMIT_BATCH);
	size_t n = 0;
	int rc = 0;

	if (!batch)
		return KEEP_E_NOMEM;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		rc = db_commit_list(s, after, batch, COMMIT_BATCH, &n);
		pthread_mutex_unlock(&s->mu);
		for (size_t i = 0; !rc && i < n; i++)
			rc = cb(ctx, &batch[i]);
		if (rc || n < COMMIT_BATCH)
			break;
		after = batch[n - 1].id;
	}
	free(batch);
	return rc;
}

int keep_commit_get(struct keep_store *s, uint64_t id,
		    struct keep_commit_info *out)
{
	struct keep_commit_info ci;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = db_commit_get(s, id, &ci);
	pthread_mutex_unlock(&s->mu);
	if (!rc)
		*out = ci;
	return rc;
}

int keep_commit_at(struct keep_store *s, int64_t time_ns, uint64_t *id)
{
	uint64_t found = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = db_commit_at(s, time_ns, &found);
	pthread_mutex_unlock(&s->mu);
	if (!rc)
		*id = found;
	return rc;
}
