/*
 * ns.c - the namespace: lookup, attributes, create, link, unlink, rename,
 * directory listing and extended attributes.
 *
 * Every change runs under s->mu inside the open transaction and inside a
 * savepoint, so an operation that fails halfway (a full disk, say) leaves
 * no trace.  Row versions follow db.c's copy-on-write rule.
 *
 * Design notes:
 *  1. An inode whose last name is removed stays live (nlink 0) until the
 *     file system layer forgets it (keep_forget), so open files stay
 *     usable; crash leftovers are reclaimed when the store is opened.
 *  2. ".snapshots" is reserved in the root directory.
 *  3. Live inodes are cached.  An operation stages its inode changes
 *     (ns_put); they reach the cache only if the whole operation succeeded
 *     (ns_finish), so a failed operation rolled back by its savepoint
 *     leaves the cache as true as the rows.  Changed inodes are written to
 *     their rows by ns_flush, which every commit runs first: a commit
 *     holds exactly the cache's state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keep_i.h"

#define RESERVED_NAME ".snapshots"
#define KEEP_LINK_MAX 65000
#define SYMLINK_MAX 4095

static bool is_dir(const struct kinode *n)
{
	return S_ISDIR(n->a.mode);
}

void ns_to_attr(const struct keep_store *s, const struct kinode *n,
		struct keep_attr *out)
{
	/* a stored block keeps only its bytes up to the last non-zero one,
	 * so a small file does not count a whole block */
	uint64_t stored = n->a.blocks * s->block_size;
	uint64_t rounded = (n->a.size + 4095) & ~(uint64_t)4095;

	*out = n->a;
	out->blocks = (stored < rounded ? stored : rounded) / 512;
}

/* ---- the live-inode cache ------------------------------------------------ */

static size_t ibucket(const struct icache *c, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 20) & (c->nbuckets - 1);
}

static struct icache_ent *icache_find(struct icache *c, uint64_t ino)
{
	if (!c->nbuckets)
		return NULL;
	for (struct icache_ent *e = c->tab[ibucket(c, ino)]; e; e = e->next)
		if (e->n.a.ino == ino)
			return e;
	return NULL;
}

void icache_release(struct icache *c)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct icache_ent *e = c->tab[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(c->tab);
	*c = (struct icache){0};
}

/* Forget every entry that is no newer than its row. */
static void icache_evict_clean(struct icache *c)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct icache_ent **p = &c->tab[i]; *p;) {
			struct icache_ent *e = *p;
			if (e->dirty) {
				p = &e->next;
				continue;
			}
			*p = e->next;
			free(e);
			c->count--;
		}
}

/*
 * Insert or replace.  A clean entry that cannot be kept only costs a later
 * row read; a dirty one is a change and is always kept (dirty entries are
 * bounded by what one commit changes).  Never writes rows: this runs inside
 * operations whose savepoint may still roll back.
 */
static void icache_set(struct keep_store *s, const struct kinode *n, bool dirty)
{
	struct icache *c = &s->icache;
	struct icache_ent *e = icache_find(c, n->a.ino);

	if (e) {
		e->n = *n;
		e->dirty = e->dirty || dirty;
		return;
	}
	if (c->count >= ICACHE_MAX) {
		icache_evict_clean(c);
		if (c->count >= ICACHE_MAX && !dirty)
			return;
	}
	if (!c->nbuckets) {
		c->tab = calloc(4096, sizeof(*c->tab));
		if (!c->tab)
			goto nomem;
		c->nbuckets = 4096;
	}
	e = malloc(sizeof(*e));
	if (!e)
		goto nomem;
	e->n = *n;
	e->dirty = dirty;
	size_t k = ibucket(c, n->a.ino);
	e->next = c->tab[k];
	c->tab[k] = e;
	c->count++;
	return;
nomem:
	if (dirty) {
		/* a change with nowhere to go: refuse further changes rather
		 * than lose it silently */
		keep_log(LOG_ERR, "out of memory keeping inode %llu",
			 (unsigned long long)n->a.ino);
		s->sticky = KEEP_E_NOMEM;
	}
}

void ns_drop(struct keep_store *s, uint64_t ino)
{
	struct icache *c = &s->icache;

	if (!c->nbuckets)
		return;
	for (struct icache_ent **p = &c->tab[ibucket(c, ino)]; *p; p = &(*p)->next)
		if ((*p)->n.a.ino == ino) {
			struct icache_ent *e = *p;
			*p = e->next;
			free(e);
			c->count--;
			return;
		}
}

int ns_flush(struct keep_store *s)
{
	struct icache *c = &s->icache;
	int rc = 0;

	for (size_t i = 0; !rc && i < c->nbuckets; i++)
		for (struct icache_ent *e = c->tab[i]; !rc && e; e = e->next)
			if (e->dirty) {
				rc = db_inode_put(s, &e->n);
				if (!rc)
					e->dirty = false;
			}
	return rc;
}

int ns_get_live(struct keep_store *s, uint64_t ino, struct kinode *n)
{
	struct icache_ent *e;
	int rc;

	for (int i = s->nstaged - 1; i >= 0; i--)
		if (s->staged[i].a.ino == ino) {
			*n = s->staged[i];
			return 0;
		}
	e = icache_find(&s->icache, ino);
	if (e) {
		*n = e->n;
		return 0;
	}
	rc = db_inode_get(s, KEEP_LIVE, ino, n);
	if (!rc && (s->flags & KEEP_OPEN_WRITE))
		icache_set(s, n, false);
	return rc;
}

int ns_get(struct keep_store *s, uint64_t view, uint64_t ino, struct kinode *n)
{
	return view == KEEP_LIVE ? ns_get_live(s, ino, n)
				 : db_inode_get(s, view, ino, n);
}

int ns_put(struct keep_store *s, const struct kinode *n)
{
	if (s->nstaged >= STAGE_MAX)
		return KEEP_CORRUPT_BKPT("too many inode changes in one operation");
	s->staged[s->nstaged++] = *n;
	return 0;
}

int ns_finish(struct keep_store *s, int rc, bool savepoint)
{
	if (savepoint)
		rc = db_release(s, rc);
	if (!rc) {
		for (int i = 0; i < s->nstaged; i++)
			icache_set(s, &s->staged[i], true);
		keep_touch(s);
	}
	s->nstaged = 0;
	return rc;
}

static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (len > KEEP_NAME_MAX)
		return ENAMETOOLONG;
	if (len == 0 || strchr(name, '/'))
		return EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return EEXIST;
	return 0;
}

static int check_new_name(uint64_t parent, const char *name)
{
	int rc = check_name(name);

	if (!rc && parent == KEEP_ROOT_INO && !strcmp(name, RESERVED_NAME)) {
		keep_log(LOG_NOTICE, "refused to create '/%s': the name is "
				     "reserved for snapshots", name);
		rc = EPERM;
	}
	return rc;
}

/* Start a change: writable, transaction open, savepoint taken. */
static int change_begin(struct keep_store *s, uint64_t space)
{
	int rc = keep_begin_live(s);

	if (!rc)
		rc = keep_space_check(s, space);
	if (!rc)
		rc = db_savepoint(s);
	s->nstaged = 0;
	return rc;
}

static int change_end(struct keep_store *s, int rc)
{
	return ns_finish(s, rc, true);
}

static int get_dir(struct keep_store *s, uint64_t view, uint64_t ino,
		   struct kinode *n)
{
	int rc = ns_get(s, view, ino, n);

	if (!rc && !is_dir(n))
		rc = ENOTDIR;
	if (!rc && view == KEEP_LIVE && n->a.nlink == 0)
		rc = ENOENT; /* removed while in use */
	return rc;
}

static void stamp(struct kinode *n, int64_t now, bool mtime)
{
	n->a.ctime_ns = now;
	if (mtime)
		n->a.mtime_ns = now;
}

int keep_lookup(struct keep_store *s, uint64_t view, uint64_t parent,
		const char *name, struct keep_attr *out)
{
	struct kinode d, n;
	uint64_t ino;
	int rc;

	if (strlen(name) > KEEP_NAME_MAX)
		return ENAMETOOLONG;
	pthread_mutex_lock(&s->mu);
	rc = get_dir(s, view, parent, &d);
	if (!rc)
		rc = db_dirent_find(s, view, parent, name, &ino, NULL);
	if (!rc)
		rc = ns_get(s, view, ino, &n);
	if (!rc)
		ns_to_attr(s, &n, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_getattr(struct keep_store *s, uint64_t view, uint64_t ino,
		 struct keep_attr *out)
{
	struct kinode n;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = ns_get(s, view, ino, &n);
	if (!rc)
		ns_to_attr(s, &n, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_setattr(struct keep_store *s, uint64_t ino, const struct keep_attr *in,
		 unsigned to_set, struct keep_attr *out)
{
	int64_t now = keep_now_ns();
	struct kinode n;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = change_begin(s, 0);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	rc = ns_get_live(s, ino, &n);
	if (!rc && (to_set & KEEP_SET_SIZE)) {
		if (is_dir(&n))
			rc = EISDIR;
		else if (!S_ISREG(n.a.mode))
			rc = EINVAL;
		else if (in->size != n.a.size) {
			rc = data_truncate(s, &n, in->size);
			stamp(&n, now, true);
		}
	}
	if (!rc) {
		if (to_set & KEEP_SET_MODE)
			n.a.mode = (n.a.mode & S_IFMT) | (in->mode & 07777);
		if (to_set & KEEP_SET_UID)
			n.a.uid = in->uid;
		if (to_set & KEEP_SET_GID)
			n.a.gid = in->gid;
		if (to_set & KEEP_SET_ATIME_NOW)
			n.a.atime_ns = now;
		else if (to_set & KEEP_SET_ATIME)
			n.a.atime_ns = in->atime_ns;
		if (to_set & KEEP_SET_MTIME_NOW)
			n.a.mtime_ns = now;
		else if (to_set & KEEP_SET_MTIME)
			n.a.mtime_ns = in->mtime_ns;
		n.a.ctime_ns = (to_set & KEEP_SET_CTIME) ? in->ctime_ns : now;
		rc = ns_put(s, &n);
	}
	rc = change_end(s, rc);
	if (!rc && out)
		ns_to_attr(s, &n, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Create any object; the caller holds mu and an open change. */
static int create(struct keep_store *s, uint64_t parent, const char *name,
		  uint32_t mode, uint64_t rdev, const char *target,
		  const struct keep_cred *cred, struct kinode *n)
{
	int64_t now = keep_now_ns();
	struct kinode d;
	uint64_t ino;
	int rc;

	rc = get_dir(s, KEEP_LIVE, parent, &d);
	if (rc)
		return rc;
	rc = db_dirent_find(s, KEEP_LIVE, parent, name, &ino, NULL);
	if (rc == 0)
		return EEXIST;
	if (rc != ENOENT)
		return rc;
	if (S_ISDIR(mode) && d.a.nlink >= KEEP_LINK_MAX)
		return EMLINK;
	/* the file system layer packs a view number above the inode bits
	 * (keep.h); refused before anything is allocated or written */
	if (s->next_ino >= KEEP_INO_LIMIT)
		return ENOSPC;

	*n = (struct kinode){0};
	n->a.ino = s->next_ino++;
	n->a.mode = mode;
	n->a.uid = cred->uid;
	n->a.gid = cred->gid;
	if (d.a.mode & S_ISGID) {
		n->a.gid = d.a.gid;
		if (S_ISDIR(mode))
			n->a.mode |= S_ISGID;
	}
	n->a.nlink = S_ISDIR(mode) ? 2 : 1;
	n->parent = S_ISDIR(mode) ? parent : 0;
	n->a.rdev = rdev;
	n->a.size = target ? strlen(target) : 0;
	n->a.atime_ns = n->a.mtime_ns = n->a.ctime_ns = n->a.btime_ns = now;

	rc = db_inode_new(s, n, target);
	if (!rc)
		rc = db_dirent_add(s, parent, name, n->a.ino);
	if (!rc) {
		if (S_ISDIR(mode))
			d.a.nlink++;
		stamp(&d, now, true);
		rc = ns_put(s, &d);
	}
	return rc;
}

static int create_op(struct keep_store *s, uint64_t parent, const char *name,
		     uint32_t mode, uint64_t rdev, const char *target,
		     const struct keep_cred *cred, struct keep_attr *out)
{
	struct kinode n;
	int rc = check_new_name(parent, name);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	rc = change_begin(s, 4096);
	if (!rc) {
		rc = create(s, parent, name, mode, rdev, target, cred, &n);
		rc = change_end(s, rc);
	}
	if (!rc && out)
		ns_to_attr(s, &n, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_mknod(struct keep_store *s, uint64_t parent, const char *name,
	       uint32_t mode, uint64_t rdev, const struct keep_cred *cred,
	       struct keep_attr *out)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		break;
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return EINVAL;
	}
	return create_op(s, parent, name, mode & (S_IFMT | 07777), rdev, NULL,
			 cred, out);
}

int keep_mkdir(struct keep_store *s, uint64_t parent, const char *name,
	       uint32_t mode, const struct keep_cred *cred, struct keep_attr *out)
{
	return create_op(s, parent, name, S_IFDIR | (mode & 07777), 0, NULL,
			 cred, out);
}

int keep_symlink(struct keep_store *s, uint64_t parent, const char *name,
		 const char *target, const struct keep_cred *cred,
		 struct keep_attr *out)
{
	size_t len = strlen(target);

	if (len == 0)
		return ENOENT;
	if (len > SYMLINK_MAX)
		return ENAMETOOLONG;
	return create_op(s, parent, name, S_IFLNK | 0777, 0, target, cred, out);
}

int keep_readlink(struct keep_store *s, uint64_t view, uint64_t ino, char *buf,
		  size_t size)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = db_symlink_get(s, view, ino, buf, size);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Drop one name of n (whose entry is id, in directory d). */
static int drop_name(struct keep_store *s, struct kinode *d, int64_t id,
		     struct kinode *n, int64_t now)
{
	int rc = db_dirent_kill(s, d->a.ino, id);

	if (rc)
		return rc;
	if (is_dir(n)) {
		n->a.nlink = 0;
		d->a.nlink--;
	} else {
		n->a.nlink--;
	}
	stamp(n, now, false);
	return ns_put(s, n);
}

static int remove_op(struct keep_store *s, uint64_t parent, const char *name,
		     bool dir)
{
	int64_t now = keep_now_ns();
	struct kinode d, n;
	uint64_t ino;
	int64_t id;
	int rc;

	if (strlen(name) > KEEP_NAME_MAX)
		return ENAMETOOLONG;
	pthread_mutex_lock(&s->mu);
	rc = change_begin(s, 0);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	rc = get_dir(s, KEEP_LIVE, parent, &d);
	if (!rc)
		rc = db_dirent_find(s, KEEP_LIVE, parent, name, &ino, &id);
	if (!rc)
		rc = ns_get_live(s, ino, &n);
	if (!rc && dir && !is_dir(&n))
		rc = ENOTDIR;
	if (!rc && !dir && is_dir(&n))
		rc = EISDIR;
	if (!rc && dir) {
		bool full;
		rc = db_dirent_has_children(s, ino, &full);
		if (!rc && full)
			rc = ENOTEMPTY;
	}
	if (!rc)
		rc = drop_name(s, &d, id, &n, now);
	if (!rc) {
		stamp(&d, now, true);
		rc = ns_put(s, &d);
	}
	rc = change_end(s, rc);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_unlink(struct keep_store *s, uint64_t parent, const char *name)
{
	return remove_op(s, parent, name, false);
}

int keep_rmdir(struct keep_store *s, uint64_t parent, const char *name)
{
	if (!strcmp(name, "."))
		return EINVAL;
	if (!strcmp(name, ".."))
		return ENOTEMPTY;
	return remove_op(s, parent, name, true);
}

/* Is directory `ino` the directory `dir` or inside it?  Walks up through
 * the parent every directory's inode records. */
static int is_within(struct keep_store *s, uint64_t ino, uint64_t dir, bool *yes)
{
	for (int depth = 0; depth < 100000; depth++) {
		struct kinode n;
		int rc;

		if (ino == dir) {
			*yes = true;
			return 0;
		}
		if (ino == KEEP_ROOT_INO) {
			*yes = false;
			return 0;
		}
		rc = ns_get_live(s, ino, &n);
		if (rc)
			return rc == ENOENT ? KEEP_CORRUPT_BKPT("directory without a parent")
					    : rc;
		ino = n.parent;
	}
	return KEEP_CORRUPT_BKPT("directory loop");
}

/* Load a directory once even when both sides of a rename name it. */
struct dirpair {
	struct kinode a, b;
	struct kinode *pa, *pb;
};

static int rename_locked(struct keep_store *s, uint64_t parent,
			 const char *name, uint64_t newparent,
			 const char *newname, unsigned flags)
{
	int64_t now = keep_now_ns();
	struct dirpair dp;
	struct kinode src, dst;
	uint64_t sino, dino;
	int64_t sid, did;
	bool have_dst, inside = false; /* gcc -O3 cannot see is_within sets it */
	int rc;

	rc = get_dir(s, KEEP_LIVE, parent, &dp.a);
	if (rc)
		return rc;
	dp.pa = &dp.a;
	if (newparent == parent) {
		dp.pb = &dp.a;
	} else {
		rc = get_dir(s, KEEP_LIVE, newparent, &dp.b);
		if (rc)
			return rc;
		dp.pb = &dp.b;
	}
	rc = db_dirent_find(s, KEEP_LIVE, parent, name, &sino, &sid);
	if (!rc)
		rc = ns_get_live(s, sino, &src);
	if (rc)
		return rc;
	rc = db_dirent_find(s, KEEP_LIVE, newparent, newname, &dino, &did);
	if (rc && rc != ENOENT)
		return rc;
	have_dst = rc == 0;
	if (have_dst) {
		rc = ns_get_live(s, dino, &dst);
		if (rc)
			return rc;
	}
	if ((flags & KEEP_RENAME_EXCHANGE) && !have_dst)
		return ENOENT;
	if ((flags & KEEP_RENAME_NOREPLACE) && have_dst)
		return EEXIST;
	if (have_dst && dino == sino)
		return 0; /* two names of one inode: nothing to do */

	/* a directory may not move into itself */
	if (is_dir(&src) && newparent != parent) {
		rc = is_within(s, newparent, sino, &inside);
		if (rc)
			return rc;
		if (inside)
			return EINVAL;
	}
	if ((flags & KEEP_RENAME_EXCHANGE) && is_dir(&dst) && newparent != parent) {
		rc = is_within(s, parent, dino, &inside);
		if (rc)
			return rc;
		if (inside)
			return EINVAL;
	}

	if (flags & KEEP_RENAME_EXCHANGE) {
		rc = db_dirent_kill(s, parent, sid);
		if (!rc)
			rc = db_dirent_kill(s, newparent, did);
		if (is_dir(&src))
			src.parent = newparent;
		if (is_dir(&dst))
			dst.parent = parent;
		if (!rc)
			rc = db_dirent_add(s, parent, name, dino);
		if (!rc)
			rc = db_dirent_add(s, newparent, newname, sino);
		if (!rc && parent != newparent && is_dir(&src) != is_dir(&dst)) {
			if (is_dir(&src)) {
				dp.pa->a.nlink--;
				dp.pb->a.nlink++;
			} else {
				dp.pa->a.nlink++;
				dp.pb->a.nlink--;
			}
		}
		stamp(&dst, now, false);
		if (!rc)
			rc = ns_put(s, &dst);
	} else {
		if (have_dst) {
			if (is_dir(&src) && !is_dir(&dst))
				return ENOTDIR;
			if (!is_dir(&src) && is_dir(&dst))
				return EISDIR;
			if (is_dir(&dst)) {
				bool full;
				rc = db_dirent_has_children(s, dino, &full);
				if (rc)
					return rc;
				if (full)
					return ENOTEMPTY;
			}
			rc = drop_name(s, dp.pb, did, &dst, now);
			if (rc)
				return rc;
		}
		rc = db_dirent_kill(s, parent, sid);
		if (!rc)
			rc = db_dirent_add(s, newparent, newname, sino);
		if (is_dir(&src))
			src.parent = newparent;
		if (!rc && is_dir(&src) && parent != newparent) {
			dp.pa->a.nlink--;
			dp.pb->a.nlink++;
		}
	}
	if (rc)
		return rc;
	stamp(&src, now, false);
	rc = ns_put(s, &src);
	stamp(dp.pa, now, true);
	if (!rc)
		rc = ns_put(s, dp.pa);
	if (!rc && dp.pb != dp.pa) {
		stamp(dp.pb, now, true);
		rc = ns_put(s, dp.pb);
	}
	return rc;
}

int keep_rename(struct keep_store *s, uint64_t parent, const char *name,
		uint64_t newparent, const char *newname, unsigned flags)
{
	int rc;

	if ((flags & KEEP_RENAME_EXCHANGE) && (flags & KEEP_RENAME_NOREPLACE))
		return EINVAL;
	if (flags & ~(unsigned)(KEEP_RENAME_EXCHANGE | KEEP_RENAME_NOREPLACE))
		return EINVAL;
	rc = check_name(name);
	if (rc == EEXIST)
		rc = EBUSY; /* "." or ".." */
	if (!rc)
		rc = check_new_name(newparent, newname);
	if (rc == EEXIST)
		rc = EBUSY;
	if (!rc && (flags & KEEP_RENAME_EXCHANGE) && parent == KEEP_ROOT_INO &&
	    !strcmp(name, RESERVED_NAME))
		rc = EPERM;
	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	rc = change_begin(s, 0);
	if (!rc) {
		rc = rename_locked(s, parent, name, newparent, newname, flags);
		rc = change_end(s, rc);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_link(struct keep_store *s, uint64_t ino, uint64_t newparent,
	      const char *newname, struct keep_attr *out)
{
	int64_t now = keep_now_ns();
	struct kinode n, d;
	uint64_t other;
	int rc = check_new_name(newparent, newname);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	rc = change_begin(s, 4096);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	rc = ns_get_live(s, ino, &n);
	if (!rc && is_dir(&n))
		rc = EPERM;
	if (!rc && n.a.nlink == 0)
		rc = ENOENT;
	if (!rc && n.a.nlink >= KEEP_LINK_MAX)
		rc = EMLINK;
	if (!rc)
		rc = get_dir(s, KEEP_LIVE, newparent, &d);
	if (!rc) {
		rc = db_dirent_find(s, KEEP_LIVE, newparent, newname, &other, NULL);
		if (rc == 0)
			rc = EEXIST;
		else if (rc == ENOENT)
			rc = 0;
	}
	if (!rc)
		rc = db_dirent_add(s, newparent, newname, ino);
	if (!rc) {
		n.a.nlink++;
		stamp(&n, now, false);
		rc = ns_put(s, &n);
	}
	if (!rc) {
		stamp(&d, now, true);
		rc = ns_put(s, &d);
	}
	rc = change_end(s, rc);
	if (!rc && out)
		ns_to_attr(s, &n, out);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int ns_reclaim(struct keep_store *s, uint64_t ino)
{
	uint64_t killed;
	int rc = keep_begin(s);

	if (!rc)
		rc = db_savepoint(s);
	if (rc)
		return rc;
	data_forget_inode(s, ino);
	rc = db_block_kill_from(s, ino, 0, &killed);
	if (!rc)
		rc = db_xattr_kill_all(s, ino);
	if (!rc) {
		ns_drop(s, ino);
		rc = db_inode_kill(s, ino);
	}
	return change_end(s, rc);
}

void keep_forget(struct keep_store *s, uint64_t ino)
{
	struct kinode n;

	pthread_mutex_lock(&s->mu);
	if (keep_writable(s) == 0 && ns_get_live(s, ino, &n) == 0 &&
	    n.a.nlink == 0 && ino != KEEP_ROOT_INO) {
		int rc = ns_reclaim(s, ino);
		if (rc)
			keep_log(LOG_WARNING, "cannot reclaim inode %llu: %s",
				 (unsigned long long)ino, keep_strerror(rc));
	}
	pthread_mutex_unlock(&s->mu);
}

/* ---- directory listing ------------------------------------------------- */

struct list_ctx {
	struct keep_store *s;
	uint64_t view;
	keep_dirent_cb cb;
	void *ctx;
};

static int list_one(void *arg, int64_t id, const char *name, uint64_t ino)
{
	struct list_ctx *l = arg;
	struct keep_attr a;
	struct kinode n;
	int rc = ns_get(l->s, l->view, ino, &n);

	if (rc)
		return rc == ENOENT ? KEEP_CORRUPT_BKPT("entry names a missing inode")
				    : rc;
	ns_to_attr(l->s, &n, &a);
	return l->cb(l->ctx, name, &a, (uint64_t)id) ? 1 : 0;
}

int keep_readdir(struct keep_store *s, uint64_t view, uint64_t dir, uint64_t off,
		 keep_dirent_cb cb, void *ctx)
{
	struct list_ctx l = {s, view, cb, ctx};
	struct kinode d;
	int rc;

	if (off > (uint64_t)INT64_MAX)
		return 0;
	pthread_mutex_lock(&s->mu);
	rc = ns_get(s, view, dir, &d);
	if (!rc && !is_dir(&d))
		rc = ENOTDIR;
	if (!rc)
		rc = db_dirent_list(s, view, dir, (int64_t)off, list_one, &l);
	pthread_mutex_unlock(&s->mu);
	return rc == 1 ? 0 : rc;
}

/* ---- extended attributes ----------------------------------------------- */

static int check_xattr_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return EINVAL;
	if (len > KEEP_XATTR_NAME_MAX)
		return ERANGE;
	return 0;
}

int keep_getxattr(struct keep_store *s, uint64_t view, uint64_t ino,
		  const char *name, void *buf, size_t size, size_t *len)
{
	struct kinode n;
	int rc = check_xattr_name(name);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	rc = ns_get(s, view, ino, &n);
	if (!rc)
		rc = db_xattr_get(s, view, ino, name, buf, size, len);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_setxattr(struct keep_store *s, uint64_t ino, const char *name,
		  const void *value, size_t size, unsigned flags)
{
	struct kinode n;
	int rc = check_xattr_name(name);

	if (rc)
		return rc;
	if (size > KEEP_XATTR_SIZE_MAX)
		return E2BIG;
	if ((flags & KEEP_XATTR_CREATE) && (flags & KEEP_XATTR_REPLACE))
		return EINVAL;
	pthread_mutex_lock(&s->mu);
	rc = change_begin(s, size + 4096);
	if (!rc) {
		rc = ns_get_live(s, ino, &n);
		if (!rc)
			rc = db_xattr_set(s, ino, name, value, size, flags);
		if (!rc) {
			stamp(&n, keep_now_ns(), false);
			rc = ns_put(s, &n);
		}
		rc = change_end(s, rc);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_listxattr(struct keep_store *s, uint64_t view, uint64_t ino, char *buf,
		   size_t size, size_t *len)
{
	struct kinode n;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = ns_get(s, view, ino, &n);
	if (!rc)
		rc = db_xattr_list(s, view, ino, buf, size, len);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_removexattr(struct keep_store *s, uint64_t ino, const char *name)
{
	struct kinode n;
	int rc = check_xattr_name(name);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	rc = change_begin(s, 0);
	if (!rc) {
		rc = ns_get_live(s, ino, &n);
		if (!rc)
			rc = db_xattr_remove(s, ino, name);
		if (!rc) {
			stamp(&n, keep_now_ns(), false);
			rc = ns_put(s, &n);
		}
		rc = change_end(s, rc);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}
