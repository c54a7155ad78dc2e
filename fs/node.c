/*
 * node.c - the daemon's node table: which inodes the kernel holds.
 *
 * The kernel counts lookups: every reply that hands it an entry (lookup,
 * create, mknod, mkdir, symlink, link, each readdirplus entry) adds one,
 * and FORGET later takes them back.  Open handles count separately.  An
 * inode may leave the store only when both counts are zero: that is how a
 * file unlinked while open stays usable until its last close.
 *
 * Design notes:
 *  1. The root (node id 1) is never counted: the kernel never forgets it.
 *  2. A count never goes negative; if the kernel would make it so, the
 *     table is wrong and we abort() rather than reap a live inode.
 *  3. A node is in the table exactly while nlookup + nopen > 0.
 *  4. Live node ids equal inode numbers; view node ids pack the view's
 *     slot and the inode number (kfs_i.h), so the same object of the same
 *     view always gets the same id, and hard links within a view share it.
 *  5. A view is in t->views exactly while nodes of it are in the table; a
 *     dead view (its snapshot deleted) resolves to ENOENT and takes no new
 *     references, but its nodes stay until the kernel forgets them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "kfs_i.h"

#define KFS_NODES_MIN 1024

static size_t hash_of(uint64_t nodeid, size_t nbuckets)
{
	uint64_t h = nodeid * UINT64_C(0x9e3779b97f4a7c15);
	return (size_t)(h >> 32) & (nbuckets - 1);
}

int kfs_nodes_init(struct kfs_nodes *t)
{
	t->buckets = calloc(KFS_NODES_MIN, sizeof(*t->buckets));
	if (!t->buckets)
		return ENOMEM;
	t->nbuckets = KFS_NODES_MIN;
	t->count = 0;
	t->stale = NULL;
	t->nstale = t->stale_cap = 0;
	t->views = NULL;
	t->next_time_slot = KFS_SLOT_TIME;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void kfs_nodes_release(struct kfs_nodes *t,
		       void (*forget)(void *ctx, uint64_t view, uint64_t ino),
		       void *ctx)
{
	if (!t->buckets)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct kfs_node *n = t->buckets[i];
		while (n) {
			struct kfs_node *next = n->next;
			if (forget)
				forget(ctx, n->view, n->ino);
			free(n);
			n = next;
		}
	}
	while (t->views) {
		struct kfs_view *v = t->views;
		t->views = v->next;
		free(v);
	}
	free(t->buckets);
	free(t->stale);
	t->buckets = NULL;
	t->stale = NULL;
	t->nbuckets = 0;
	t->count = 0;
	t->nstale = t->stale_cap = 0;
	pthread_mutex_destroy(&t->lock);
}

/* Caller holds t->lock. */
static struct kfs_node *find(struct kfs_nodes *t, uint64_t nodeid)
{
	struct kfs_node *n = t->buckets[hash_of(nodeid, t->nbuckets)];
	while (n && n->nodeid != nodeid)
		n = n->next;
	return n;
}

/* Double the buckets when the chains get long; a failure only costs
 * speed.  Caller holds t->lock. */
static void grow(struct kfs_nodes *t)
{
	size_t nb = t->nbuckets * 2;
	struct kfs_node **b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct kfs_node *n = t->buckets[i];
		while (n) {
			struct kfs_node *next = n->next;
			size_t h = hash_of(n->nodeid, nb);
			n->next = b[h];
			b[h] = n;
			n = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

/* Find or insert the node of (v's slot, ino); NULL when out of memory.
 * Caller holds lock. */
static struct kfs_node *get(struct kfs_nodes *t, uint64_t nodeid,
			    struct kfs_view *v, uint64_t ino)
{
	struct kfs_node *n = find(t, nodeid);
	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->nodeid = nodeid;
	n->view = v ? v->slot : 0;
	n->ino = ino;
	n->v = v;
	if (v)
		v->nodes++;
	if (t->count >= t->nbuckets)
		grow(t);
	size_t h = hash_of(nodeid, t->nbuckets);
	n->next = t->buckets[h];
	t->buckets[h] = n;
	t->count++;
	return n;
}

/* Unlink and free n if nothing holds it.  Returns 1 if it was removed.
 * Caller holds lock. */
static int drop_if_unused(struct kfs_nodes *t, struct kfs_node *n,
			  uint64_t *view, uint64_t *ino)
{
	if (n->nlookup || n->nopen)
		return 0;
	struct kfs_node **pp = &t->buckets[hash_of(n->nodeid, t->nbuckets)];
	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	t->count--;
	*view = n->view;
	*ino = n->ino;
	if (n->v && --n->v->nodes == 0) {
		struct kfs_view **vp = &t->views;
		while (*vp != n->v)
			vp = &(*vp)->next;
		*vp = n->v->next;
		free(n->v);
	}
	free(n);
	return 1;
}

int kfs_node_resolve(struct kfs_nodes *t, uint64_t nodeid, uint64_t *view,
		     uint64_t *ino)
{
	if (!(nodeid & KFS_NODE_VIEW_BIT)) {
		*view = KEEP_LIVE;
		*ino = nodeid;
		return 0;
	}
	int err = ENOENT;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n && n->v && !n->v->dead) {
		*view = n->v->commit;
		*ino = n->ino;
		err = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

/* Caller holds lock. */
static struct kfs_view *view_of_slot(struct kfs_nodes *t, uint64_t slot)
{
	struct kfs_view *v = t->views;
	while (v && v->slot != slot)
		v = v->next;
	return v;
}

/* Reference (v, ino), or the live node ino when v is NULL.  Caller holds
 * lock. */
static int ref_locked(struct kfs_nodes *t, struct kfs_view *v, uint64_t ino,
		      uint64_t *nodeid)
{
	uint64_t id = v ? kfs_nodeid_of(v->slot, ino)
		: ino == KFS_SNAPDIR_INO ? KFS_SNAPDIR_NODE : ino;
	struct kfs_node *n = get(t, id, v, ino);
	if (!n)
		return ENOMEM;
	n->nlookup++;
	*nodeid = id;
	return 0;
}

int kfs_node_ref(struct kfs_nodes *t, uint64_t slot, uint64_t ino,
		 uint64_t *nodeid)
{
	if (slot == 0 && ino == FUSE_ROOT_ID) {
		*nodeid = ino;
		return 0;
	}
	if (ino > KFS_INO_MASK)
		return EOVERFLOW;
	int err = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_view *v = NULL;
	if (slot != 0) {
		v = view_of_slot(t, slot);
		if (!v || v->dead)
			err = ENOENT;
	}
	if (!err)
		err = ref_locked(t, v, ino, nodeid);
	pthread_mutex_unlock(&t->lock);
	return err;
}

/* A point-in-time slot no view uses.  Caller holds lock. */
static int time_slot(struct kfs_nodes *t, uint64_t *slot)
{
	for (uint64_t tries = 0; tries <= KFS_SLOT_MAX - KFS_SLOT_TIME;
	     tries++) {
		uint64_t s = t->next_time_slot++;
		if (t->next_time_slot > KFS_SLOT_MAX)
			t->next_time_slot = KFS_SLOT_TIME;
		if (!view_of_slot(t, s)) {
			*slot = s;
			return 0;
		}
	}
	return EOVERFLOW;
}

int kfs_view_ref_root(struct kfs_nodes *t, uint64_t snap_id, uint64_t commit,
		      uint64_t *nodeid)
{
	if (snap_id >= KFS_SLOT_TIME)
		return EOVERFLOW;
	int err = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_view *v = t->views;
	while (v && !(snap_id ? v->snap_id == snap_id
			      : v->snap_id == 0 && v->commit == commit))
		v = v->next;
	if (v && v->dead) {
		/* A deleted snapshot's id is never handed out again. */
		err = ENOENT;
	} else if (!v) {
		uint64_t slot = snap_id;
		if (!snap_id)
			err = time_slot(t, &slot);
		if (!err) {
			v = calloc(1, sizeof(*v));
			if (!v)
				err = ENOMEM;
		}
		if (!err) {
			v->slot = slot;
			v->commit = commit;
			v->snap_id = snap_id;
			v->next = t->views;
			t->views = v;
		}
	}
	if (!err) {
		err = ref_locked(t, v, KEEP_ROOT_INO, nodeid);
		if (err && v->nodes == 0) {
			t->views = v->next; /* just made: still first */
			free(v);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

/* Does view v belong to snapshot snap_id, or (snap_id 0) is it a point
 * in time showing commit? */
static bool view_is(const struct kfs_view *v, uint64_t snap_id,
		    uint64_t commit)
{
	return snap_id ? v->snap_id == snap_id
		       : v->commit == commit && !v->snap_id;
}

/* Mark those views dead; collect the node ids of their nodes. */
static size_t kill_views(struct kfs_nodes *t, uint64_t snap_id,
			 uint64_t commit, uint64_t **ids)
{
	size_t n = 0, cap = 0, killed = 0;
	*ids = NULL;
	pthread_mutex_lock(&t->lock);
	for (struct kfs_view *v = t->views; v; v = v->next) {
		if (view_is(v, snap_id, commit)) {
			v->dead = 1;
			killed++;
		}
	}
	if (killed) {
		for (size_t b = 0; b < t->nbuckets; b++) {
			for (struct kfs_node *x = t->buckets[b]; x;
			     x = x->next) {
				if (!x->v || !view_is(x->v, snap_id, commit))
					continue;
				if (n == cap) {
					size_t nc = cap ? cap * 2 : 16;
					uint64_t *p = realloc(*ids,
							      nc * sizeof(*p));
					if (!p)
						goto out; /* best effort */
					*ids = p;
					cap = nc;
				}
				(*ids)[n++] = x->nodeid;
			}
		}
	}
out:
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t kfs_view_kill(struct kfs_nodes *t, uint64_t snap_id, uint64_t **ids)
{
	if (!snap_id) {
		*ids = NULL;
		return 0;
	}
	return kill_views(t, snap_id, 0, ids);
}

size_t kfs_view_kill_commit(struct kfs_nodes *t, uint64_t commit,
			    uint64_t **ids)
{
	return kill_views(t, 0, commit, ids);
}

size_t kfs_view_commits(struct kfs_nodes *t, uint64_t **out)
{
	size_t n = 0, cap = 0;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	for (size_t b = 0; b < t->nbuckets; b++) {
		for (struct kfs_node *x = t->buckets[b]; x; x = x->next) {
			if (!x->v || x->v->dead || !x->nopen)
				continue;
			bool seen = false;
			for (size_t i = 0; i < n && !seen; i++)
				seen = (*out)[i] == x->v->commit;
			if (seen)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				uint64_t *p = realloc(*out, nc * sizeof(*p));
				if (!p)
					goto out; /* best effort: fewer pins */
				*out = p;
				cap = nc;
			}
			(*out)[n++] = x->v->commit;
		}
	}
out:
	pthread_mutex_unlock(&t->lock);
	return n;
}

int kfs_node_unref(struct kfs_nodes *t, uint64_t nodeid, uint64_t count,
		   uint64_t *view, uint64_t *ino)
{
	if (nodeid == FUSE_ROOT_ID || count == 0)
		return 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (!n || n->nlookup < count)
		abort(); /* design note 2 */
	n->nlookup -= count;
	int gone = drop_if_unused(t, n, view, ino);
	pthread_mutex_unlock(&t->lock);
	return gone;
}

int kfs_node_open(struct kfs_nodes *t, uint64_t nodeid, int writer)
{
	if (nodeid == FUSE_ROOT_ID)
		return 0;
	int err = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (!n && !(nodeid & KFS_NODE_VIEW_BIT))
		n = get(t, nodeid, NULL, nodeid);
	if (n && n->v && n->v->dead) {
		pthread_mutex_unlock(&t->lock);
		return ENOENT;
	}
	if (n) {
		n->nopen++;
		if (writer)
			n->nwriters++;
	} else
		err = (nodeid & KFS_NODE_VIEW_BIT) ? ENOENT : ENOMEM;
	pthread_mutex_unlock(&t->lock);
	return err;
}

int kfs_node_close(struct kfs_nodes *t, uint64_t nodeid, int writer,
		   uint64_t *view, uint64_t *ino)
{
	if (nodeid == FUSE_ROOT_ID)
		return 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (!n || n->nopen == 0)
		abort(); /* design note 2 */
	n->nopen--;
	/* Only a hint for lseek: never worth an abort. */
	if (writer && n->nwriters > 0)
		n->nwriters--;
	if (n->nwriters > n->nopen)
		n->nwriters = n->nopen;
	int gone = drop_if_unused(t, n, view, ino);
	pthread_mutex_unlock(&t->lock);
	return gone;
}

int kfs_node_xattrs(struct kfs_nodes *t, uint64_t nodeid, uint64_t *gen)
{
	int state = KFS_XATTRS_UNKNOWN;
	*gen = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n) {
		state = n->xattrs;
		*gen = n->xattr_gen;
	}
	pthread_mutex_unlock(&t->lock);
	return state;
}

void kfs_node_xattrs_learn(struct kfs_nodes *t, uint64_t nodeid, uint64_t gen,
			   int state)
{
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n && n->xattr_gen == gen)
		n->xattrs = state;
	pthread_mutex_unlock(&t->lock);
}

void kfs_node_xattr_changed(struct kfs_nodes *t, uint64_t nodeid)
{
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n) {
		n->xattr_gen++;
		n->xattrs = KFS_XATTRS_UNKNOWN;
	}
	pthread_mutex_unlock(&t->lock);
}

int kfs_node_pin(struct kfs_nodes *t, uint64_t nodeid, int64_t *mtime_ns,
		 int64_t *ctime_ns)
{
	int valid = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n && n->pin_valid) {
		*mtime_ns = n->pin_mtime_ns;
		*ctime_ns = n->pin_ctime_ns;
		valid = 1;
	}
	pthread_mutex_unlock(&t->lock);
	return valid;
}

void kfs_node_pin_set(struct kfs_nodes *t, uint64_t nodeid, int64_t mtime_ns,
		      int64_t ctime_ns, int force)
{
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n && (force || !n->pin_valid)) {
		n->pin_mtime_ns = mtime_ns;
		n->pin_ctime_ns = ctime_ns;
		n->pin_valid = 1;
	}
	pthread_mutex_unlock(&t->lock);
}

int kfs_node_mark_stale(struct kfs_nodes *t, uint64_t nodeid)
{
	int err = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n && n->pin_valid && !n->times_stale) {
		if (t->nstale == t->stale_cap) {
			size_t cap = t->stale_cap ? t->stale_cap * 2 : 64;
			uint64_t *p = realloc(t->stale, cap * sizeof(*p));
			if (p) {
				t->stale = p;
				t->stale_cap = cap;
			}
		}
		if (t->nstale < t->stale_cap) {
			t->stale[t->nstale++] = nodeid;
			n->times_stale = 1;
		} else {
			err = ENOMEM;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

int kfs_node_take_stale(struct kfs_nodes *t, uint64_t nodeid,
			int64_t *mtime_ns, int64_t *ctime_ns)
{
	int stale = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n && n->times_stale) {
		n->times_stale = 0;
		*mtime_ns = n->pin_mtime_ns;
		*ctime_ns = n->pin_ctime_ns;
		stale = 1;
	}
	pthread_mutex_unlock(&t->lock);
	return stale;
}

size_t kfs_node_take_stale_list(struct kfs_nodes *t, uint64_t **ids)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->nstale;
	*ids = t->stale;
	t->stale = NULL;
	t->nstale = t->stale_cap = 0;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void kfs_node_attr_stale(struct kfs_nodes *t, uint64_t nodeid)
{
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n)
		n->attr_stale = 1;
	pthread_mutex_unlock(&t->lock);
}

int kfs_node_take_attr_stale(struct kfs_nodes *t, uint64_t nodeid)
{
	int stale = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n) {
		stale = n->attr_stale;
		n->attr_stale = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return stale;
}

int kfs_node_held(struct kfs_nodes *t, uint64_t nodeid)
{
	pthread_mutex_lock(&t->lock);
	int held = find(t, nodeid) != NULL;
	pthread_mutex_unlock(&t->lock);
	return held;
}

int kfs_node_restored(struct kfs_nodes *t, uint64_t nodeid)
{
	int held = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n) {
		held = 1;
		n->pin_valid = 0;
		n->times_stale = 0; /* a stale-list entry now finds nothing */
		n->xattr_gen++;
		n->xattrs = KFS_XATTRS_UNKNOWN;
		n->attr_stale = 1;
	}
	pthread_mutex_unlock(&t->lock);
	return held;
}

uint64_t kfs_node_writers(struct kfs_nodes *t, uint64_t nodeid)
{
	uint64_t w = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = find(t, nodeid);
	if (n)
		w = n->nwriters;
	pthread_mutex_unlock(&t->lock);
	return w;
}

size_t kfs_node_list(struct kfs_nodes *t, int which, uint64_t **ids)
{
	size_t n = 0, cap = 0;
	*ids = NULL;
	pthread_mutex_lock(&t->lock);
	for (size_t b = 0; b < t->nbuckets; b++) {
		for (struct kfs_node *x = t->buckets[b]; x; x = x->next) {
			if (x->v || (x->nodeid & KFS_NODE_VIEW_BIT))
				continue; /* views and .snapshots */
			if (which == KFS_LIST_WRITERS && !x->nwriters)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				uint64_t *p = realloc(*ids, nc * sizeof(*p));
				if (!p) {
					n = 0;
					goto out;
				}
				*ids = p;
				cap = nc;
			}
			(*ids)[n++] = x->nodeid;
		}
	}
out:
	pthread_mutex_unlock(&t->lock);
	if (!n) {
		free(*ids);
		*ids = NULL;
	}
	return n;
}

size_t kfs_view_all_commits(struct kfs_nodes *t, uint64_t **out)
{
	size_t n = 0, cap = 0;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	for (struct kfs_view *v = t->views; v; v = v->next) {
		if (v->dead)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint64_t *p = realloc(*out, nc * sizeof(*p));
			if (!p)
				break; /* best effort */
			*out = p;
			cap = nc;
		}
		(*out)[n++] = v->commit;
	}
	pthread_mutex_unlock(&t->lock);
	return n;
}
