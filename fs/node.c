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
 *  4. Live node ids equal inode numbers; view nodes (KFS_NODE_VIEW_BIT)
 *     get ids from a counter and are found only through the table.
 */
#include <errno.h>
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

/* Find or insert the node; NULL when out of memory.  Caller holds lock. */
static struct kfs_node *get(struct kfs_nodes *t, uint64_t nodeid,
			    uint64_t view, uint64_t ino)
{
	struct kfs_node *n = find(t, nodeid);
	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->nodeid = nodeid;
	n->view = view;
	n->ino = ino;
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
	if (n) {
		*view = n->view;
		*ino = n->ino;
		err = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

int kfs_node_ref(struct kfs_nodes *t, uint64_t view, uint64_t ino,
		 uint64_t *nodeid)
{
	/* Views get their own node ids in a later change; until then every
	 * node is live. */
	if (view != KEEP_LIVE)
		return EINVAL;
	if (ino == FUSE_ROOT_ID) {
		*nodeid = ino;
		return 0;
	}
	int err = 0;
	pthread_mutex_lock(&t->lock);
	struct kfs_node *n = get(t, ino, view, ino);
	if (n)
		n->nlookup++;
	else
		err = ENOMEM;
	pthread_mutex_unlock(&t->lock);
	if (!err)
		*nodeid = ino;
	return err;
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
		n = get(t, nodeid, KEEP_LIVE, nodeid);
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
