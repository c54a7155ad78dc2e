/*
 * data.c - file contents: the dirty-block cache, read, write, truncate,
 * holes, SEEK_DATA/SEEK_HOLE, block-sharing copy and the decoded-block
 * cache.
 *
 * Design notes:
 *
 *  1. A file is a sequence of fixed-size blocks; a block with no row is a
 *     hole and reads as zeros.  A stored block keeps its bytes up to its
 *     last non-zero byte (the rest reads as zeros), so a block's content
 *     identity does not depend on the file's size.
 *  2. Changes to blocks never touch rows directly: they go into the dirty
 *     map as DATA (bytes), HOLE, or BLOB (a shared existing blob), and the
 *     commit turns them into rows.  Truncation is the one exception: it
 *     ends the rows past the new end at once, and leaves a HOLE entry for
 *     every block a running commit is encoding, so that block cannot come
 *     back.
 *  3. Where to find block (ino, idx) of the live tree: the dirty map, else
 *     the inflight map (a commit encoding it), else the rows.  The first
 *     that has an entry is the truth.
 *  4. Bytes of a block past the end of the file are always zero (truncate
 *     zeroes them), so extending a file needs no block work.
 *  5. The stored-block count of an inode (st_blocks) is exact as of the
 *     last commit; it is maintained only when rows change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keep_i.h"

#define MAX_FILE_SIZE ((uint64_t)1 << 62)
#define DCACHE_BYTES (8u << 20)

/* ---- the dirty map ----------------------------------------------------- */

void dmap_init(struct dmap *m, struct bufpool *pool)
{
	*m = (struct dmap){.pool = pool};
}

static uint8_t *buf_get(struct bufpool *p)
{
	void *b = p->free;

	if (!b)
		return malloc(p->size);
	p->free = *(void **)b;
	p->count--;
	return b;
}

static void buf_put(struct bufpool *p, uint8_t *b)
{
	if (!b)
		return;
	if (p->count >= p->max) {
		free(b);
		return;
	}
	*(void **)b = p->free;
	p->free = b;
	p->count++;
}

void bufpool_release(struct bufpool *p)
{
	while (p->free) {
		void *next = *(void **)p->free;
		free(p->free);
		p->free = next;
	}
	p->count = 0;
}

static void dblock_free(struct dmap *m, struct dblock *b)
{
	buf_put(m->pool, b->buf);
	free(b->enc);
	free(b);
}

void dmap_release(struct dmap *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct dblock *b = m->tab[i], *next;
		for (; b; b = next) {
			next = b->next;
			dblock_free(m, b);
		}
	}
	free(m->tab);
	dmap_init(m, m->pool);
}

static size_t bucket(const struct dmap *m, uint64_t ino, uint64_t idx)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ull ^ (idx + 0x632be59bd9b4e019ull) *
						       0xbf58476d1ce4e5b9ull;
	return (size_t)(h ^ (h >> 29)) & (m->nbuckets - 1);
}

struct dblock *dmap_find(struct dmap *m, uint64_t ino, uint64_t idx)
{
	if (!m->nbuckets)
		return NULL;
	for (struct dblock *b = m->tab[bucket(m, ino, idx)]; b; b = b->next)
		if (b->ino == ino && b->idx == idx)
			return b;
	return NULL;
}

static int dmap_grow(struct dmap *m)
{
	size_t n = m->nbuckets ? m->nbuckets * 2 : 256;
	struct dblock **tab = calloc(n, sizeof(*tab));
	struct dmap tmp = {.pool = m->pool, .tab = tab, .nbuckets = n};

	if (!tab)
		return KEEP_E_NOMEM;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct dblock *b = m->tab[i], *next;
		for (; b; b = next) {
			size_t k = bucket(&tmp, b->ino, b->idx);
			next = b->next;
			b->next = tab[k];
			tab[k] = b;
		}
	}
	free(m->tab);
	m->tab = tab;
	m->nbuckets = n;
	return 0;
}

/* Find or add the entry of (ino, idx); a new one is a HOLE. */
static int dmap_get(struct dmap *m, uint64_t ino, uint64_t idx,
		    struct dblock **out, bool *added)
{
	struct dblock *b = dmap_find(m, ino, idx);
	size_t k;

	*added = false;
	if (!b) {
		if (m->count + 1 > m->nbuckets && dmap_grow(m))
			return KEEP_E_NOMEM;
		b = calloc(1, sizeof(*b));
		if (!b)
			return KEEP_E_NOMEM;
		b->ino = ino;
		b->idx = idx;
		b->kind = DIRTY_HOLE;
		k = bucket(m, ino, idx);
		b->next = m->tab[k];
		m->tab[k] = b;
		m->count++;
		*added = true;
	}
	*out = b;
	return 0;
}

/* Set an entry's kind, freeing its buffer when it no longer needs one. */
static void dblock_set(struct dmap *m, struct dblock *b, enum dkind kind,
		       uint64_t blob, uint32_t bs)
{
	if (kind != DIRTY_DATA && b->buf) {
		buf_put(m->pool, b->buf);
		b->buf = NULL;
		m->bytes -= bs;
	}
	free(b->enc);
	b->enc = NULL;
	b->kind = kind;
	b->blob = blob;
}

/* ---- the decoded-block cache ------------------------------------------- */

struct dentry {
	struct dentry *hnext, *prev, *next;
	uint64_t blob;
	size_t len;
	uint8_t data[];
};

struct dcache {
	pthread_mutex_t mu;
	struct dentry **tab;
	size_t nbuckets;
	struct dentry *head; /* LRU list: head->next is the newest (a
			     * sentinel of its own: a struct with a
			     * flexible array is no member) */
	size_t bytes;
};

int dcache_new(struct keep_store *s)
{
	struct dcache *c = calloc(1, sizeof(*c));

	if (!c)
		return KEEP_E_NOMEM;
	c->nbuckets = 1024;
	c->tab = calloc(c->nbuckets, sizeof(*c->tab));
	c->head = calloc(1, sizeof(*c->head));
	if (!c->tab || !c->head) {
		free(c->tab);
		free(c->head);
		free(c);
		return KEEP_E_NOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->head->next = c->head->prev = c->head;
	s->dcache = c;
	return 0;
}

void dcache_free(struct keep_store *s)
{
	struct dcache *c = s->dcache;

	if (!c)
		return;
	for (struct dentry *e = c->head->next, *n; e != c->head; e = n) {
		n = e->next;
		free(e);
	}
	pthread_mutex_destroy(&c->mu);
	free(c->head);
	free(c->tab);
	free(c);
	s->dcache = NULL;
}

static void lru_unlink(struct dentry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push(struct dcache *c, struct dentry *e)
{
	e->next = c->head->next;
	e->prev = c->head;
	c->head->next->prev = e;
	c->head->next = e;
}

static bool dcache_get(struct dcache *c, uint64_t blob, void *dst, size_t bs)
{
	bool hit = false;

	pthread_mutex_lock(&c->mu);
	for (struct dentry *e = c->tab[blob & (c->nbuckets - 1)]; e; e = e->hnext) {
		if (e->blob == blob) {
			memcpy(dst, e->data, e->len);
			memset((uint8_t *)dst + e->len, 0, bs - e->len);
			lru_unlink(e);
			lru_push(c, e);
			hit = true;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

static void dcache_put(struct dcache *c, uint64_t blob, const void *src,
		       size_t len)
{
	struct dentry *e = malloc(sizeof(*e) + len), **p;

	if (!e)
		return;
	e->blob = blob;
	e->len = len;
	memcpy(e->data, src, len);
	pthread_mutex_lock(&c->mu);
	for (struct dentry *x = c->tab[blob & (c->nbuckets - 1)]; x; x = x->hnext) {
		if (x->blob == blob) {
			pthread_mutex_unlock(&c->mu);
			free(e);
			return;
		}
	}
	e->hnext = c->tab[blob & (c->nbuckets - 1)];
	c->tab[blob & (c->nbuckets - 1)] = e;
	lru_push(c, e);
	c->bytes += len;
	while (c->bytes > DCACHE_BYTES && c->head->prev != e) {
		struct dentry *old = c->head->prev;
		lru_unlink(old);
		for (p = &c->tab[old->blob & (c->nbuckets - 1)]; *p; p = &(*p)->hnext)
			if (*p == old) {
				*p = old->hnext;
				break;
			}
		c->bytes -= old->len;
		free(old);
	}
	pthread_mutex_unlock(&c->mu);
}

/* Decode blob into a whole block buffer (zero-padded).  Any thread. */
static int blob_load_with(struct keep_store *s, struct rslot *slot,
			  uint64_t blob, uint8_t *dst, bool cache)
{
	size_t n = 0;
	int rc;

	if (dcache_get(s->dcache, blob, dst, s->block_size))
		return 0;
	rc = db_blob_read(s, slot, blob, dst, s->block_size, &n);
	if (rc) {
		if (rc == KEEP_E_CORRUPT)
			rc = EIO;
		return rc;
	}
	memset(dst + n, 0, s->block_size - n);
	if (cache)
		dcache_put(s->dcache, blob, dst, n);
	return 0;
}

static int blob_load(struct keep_store *s, uint64_t blob, uint8_t *dst,
		     bool cache)
{
	return blob_load_with(s, NULL, blob, dst, cache);
}

/* ---- block lookup (live tree, under mu) ---------------------------------- */

enum src_kind { SRC_HOLE, SRC_BUF, SRC_BLOB };

struct bsrc {
	enum src_kind kind;
	const uint8_t *buf;
	uint64_t blob;
};

static int live_source(struct keep_store *s, uint64_t ino, uint64_t idx,
		       struct bsrc *src)
{
	struct dblock *b = dmap_find(&s->dirty, ino, idx);
	int rc;

	if (!b)
		b = dmap_find(&s->inflight, ino, idx);
	if (b) {
		src->kind = b->kind == DIRTY_DATA   ? SRC_BUF
			    : b->kind == DIRTY_BLOB ? SRC_BLOB
						    : SRC_HOLE;
		src->buf = b->buf;
		src->blob = b->blob;
		return 0;
	}
	rc = db_block_get(s, KEEP_LIVE, ino, idx, &src->blob);
	if (rc == ENOENT) {
		src->kind = SRC_HOLE;
		return 0;
	}
	if (!rc)
		src->kind = SRC_BLOB;
	return rc;
}

/* The dirty DATA entry of a live block, created from its current content
 * when needed.  whole: 1 = start from zeros, 2 = the caller overwrites
 * every byte. */
static int dirty_block(struct keep_store *s, uint64_t ino, uint64_t idx,
		       int whole, struct dblock **out)
{
	uint32_t bs = s->block_size;
	struct dblock *b = dmap_find(&s->dirty, ino, idx);
	struct bsrc src = {0};
	bool added;
	uint8_t *buf;
	int rc;

	if (b && b->kind == DIRTY_DATA) {
		free(b->enc); /* about to change: encode again */
		b->enc = NULL;
		b->encoded = false;
		b->zero = false;
		*out = b;
		return 0;
	}
	if (!whole) {
		rc = live_source(s, ino, idx, &src);
		if (rc)
			return rc;
	}
	buf = buf_get(&s->pool);
	if (!buf)
		return KEEP_E_NOMEM;
	if (whole == 2)
		; /* the caller writes every byte */
	else if (whole || src.kind == SRC_HOLE)
		memset(buf, 0, bs);
	else if (src.kind == SRC_BUF)
		memcpy(buf, src.buf, bs);
	else if ((rc = blob_load(s, src.blob, buf, true))) {
		buf_put(&s->pool, buf);
		return rc;
	}
	rc = dmap_get(&s->dirty, ino, idx, &b, &added);
	if (rc) {
		buf_put(&s->pool, buf);
		return rc;
	}
	free(b->enc);
	b->enc = NULL;
	b->encoded = false;
	b->zero = false;
	b->kind = DIRTY_DATA;
	b->buf = buf;
	s->dirty.bytes += bs;
	*out = b;
	return 0;
}

static int set_dirty_kind(struct keep_store *s, uint64_t ino, uint64_t idx,
			  enum dkind kind, uint64_t blob)
{
	struct dblock *b;
	bool added;
	int rc = dmap_get(&s->dirty, ino, idx, &b, &added);

	if (!rc)
		dblock_set(&s->dirty, b, kind, blob, s->block_size);
	return rc;
}

/* Change bytes [from, to) of block idx (to <= block size) to zeros. */
static int zero_part(struct keep_store *s, uint64_t ino, uint64_t idx,
		     uint32_t from, uint32_t to)
{
	struct bsrc src;
	struct dblock *b;
	int rc = live_source(s, ino, idx, &src);

	if (rc || src.kind == SRC_HOLE || from >= to)
		return rc;
	rc = dirty_block(s, ino, idx, 0, &b);
	if (!rc)
		memset(b->buf + from, 0, to - from);
	return rc;
}

void data_forget_inode(struct keep_store *s, uint64_t ino)
{
	struct dmap *m = &s->dirty;

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct dblock **p = &m->tab[i];
		while (*p) {
			struct dblock *b = *p;
			if (b->ino == ino) {
				*p = b->next;
				if (b->buf)
					m->bytes -= s->block_size;
				m->count--;
				dblock_free(m, b);
			} else {
				p = &b->next;
			}
		}
	}
}

int data_truncate(struct keep_store *s, struct kinode *n, uint64_t size)
{
	uint32_t bs = s->block_size;
	uint64_t first_dead, killed;
	int rc;

	if (size > MAX_FILE_SIZE)
		return EFBIG;
	if (size >= n->a.size) {
		n->a.size = size;
		return 0;
	}
	first_dead = (size + bs - 1) / bs;
	/* dirty entries past the end go; inflight ones are masked */
	struct dmap *m = &s->dirty;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct dblock **p = &m->tab[i];
		while (*p) {
			struct dblock *b = *p;
			if (b->ino == n->a.ino && b->idx >= first_dead) {
				*p = b->next;
				if (b->buf)
					m->bytes -= bs;
				m->count--;
				dblock_free(m, b);
			} else {
				p = &b->next;
			}
		}
	}
	m = &s->inflight;
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct dblock *b = m->tab[i]; b; b = b->next)
			if (b->ino == n->a.ino && b->idx >= first_dead &&
			    (rc = set_dirty_kind(s, b->ino, b->idx, DIRTY_HOLE, 0)))
				return rc;
	rc = db_block_kill_from(s, n->a.ino, first_dead, &killed);
	if (rc)
		return rc;
	n->a.blocks = n->a.blocks > killed ? n->a.blocks - killed : 0;
	if (size % bs) {
		rc = zero_part(s, n->a.ino, size / bs, (uint32_t)(size % bs), bs);
		if (rc)
			return rc;
	}
	n->a.size = size;
	return 0;
}

/* ---- read ------------------------------------------------------------- */

struct fetch {
	uint64_t idx, blob;
};

struct range_ctx {
	struct fetch *f;
	size_t n;
	uint64_t first;
};

static int range_collect(void *arg, uint64_t idx, uint64_t blob)
{
	struct range_ctx *r = arg;

	r->f[r->n].idx = idx;
	r->f[r->n].blob = blob;
	r->n++;
	return 0;
}

/*
 * A path of ino in view for a log line: "/a/b" (bytes outside printable
 * ASCII as \xNN), "(unnamed)" for a file with no name there, or the part
 * that could be found after "...".  Never fails.
 */
static void path_for_log(struct keep_store *s, uint64_t view, uint64_t ino,
			 char *out, size_t len)
{
	char name[KEEP_NAME_MAX + 1], *tail = out + len - 1;
	uint64_t parent;
	int depth = 0;

	*tail = '\0';
	pthread_mutex_lock(&s->mu);
	while (ino != KEEP_ROOT_INO && depth++ < 64) {
		if (db_name_of(s, view, ino, &parent, name, sizeof(name)) != 0)
			break;
		char esc[4 * KEEP_NAME_MAX + 2], *e = esc;
		*e++ = '/';
		for (const unsigned char *c = (const unsigned char *)name; *c;
		     c++) {
			if (*c >= 0x20 && *c < 0x7f && *c != '\\')
				*e++ = (char)*c;
			else
				e += sprintf(e, "\\x%02x", *c);
		}
		size_t n = (size_t)(e - esc);
		if ((size_t)(tail - out) < n)
			break;
		tail -= n;
		memcpy(tail, esc, n);
		ino = parent;
	}
	pthread_mutex_unlock(&s->mu);
	if (ino == KEEP_ROOT_INO) {
		memmove(out, tail, strlen(tail) + 1);
		if (!*out)
			snprintf(out, len, "/");
	} else if (!*tail) {
		snprintf(out, len, "(unnamed)");
	} else {
		size_t n = strlen(tail);
		memmove(out + 3, tail, n + 1 <= len - 3 ? n + 1 : len - 3);
		memcpy(out, "...", 3);
		out[len - 1] = '\0';
	}
}

int keep_read(struct keep_store *s, uint64_t view, uint64_t ino, uint64_t off,
	      size_t size, void *buf, size_t *nread)
{
	uint32_t bs = s->block_size;
	uint8_t *out = buf, *tmp = NULL;
	struct fetch *f = NULL;
	struct range_ctx rc_ctx = {0};
	struct kinode n;
	uint64_t first, last, end;
	size_t nf = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = ns_get(s, view, ino, &n);
	if (!rc && S_ISDIR(n.a.mode))
		rc = EISDIR;
	if (rc || off >= n.a.size || size == 0) {
		pthread_mutex_unlock(&s->mu);
		if (!rc)
			*nread = 0;
		return rc;
	}
	end = off + size > n.a.size ? n.a.size : off + size;
	size = (size_t)(end - off);
	first = off / bs;
	last = (end - 1) / bs;
	f = malloc(sizeof(*f) * (size_t)(last - first + 1));
	if (!f) {
		pthread_mutex_unlock(&s->mu);
		return KEEP_E_NOMEM;
	}
	memset(out, 0, size);
	rc_ctx.f = f;
	rc = db_block_range(s, view, ino, first, last + 1, range_collect, &rc_ctx);
	for (size_t i = 0; !rc && i < rc_ctx.n; i++) {
		struct fetch *x = &f[i];
		/* the live tree: pending changes override the rows */
		if (view == KEEP_LIVE &&
		    (dmap_find(&s->dirty, ino, x->idx) ||
		     dmap_find(&s->inflight, ino, x->idx)))
			continue;
		f[nf++] = *x;
	}
	if (!rc && view == KEEP_LIVE && (s->dirty.count || s->inflight.count)) {
		for (uint64_t idx = first; idx <= last && !rc; idx++) {
			struct dblock *b = dmap_find(&s->dirty, ino, idx);
			if (!b)
				b = dmap_find(&s->inflight, ino, idx);
			if (!b || b->kind == DIRTY_HOLE)
				continue;
			uint64_t bstart = idx * bs;
			uint64_t lo = off > bstart ? off : bstart;
			uint64_t hi = end < bstart + bs ? end : bstart + bs;
			if (b->kind == DIRTY_DATA)
				memcpy(out + (lo - off), b->buf + (lo - bstart),
				       (size_t)(hi - lo));
			else
				f[nf++] = (struct fetch){idx, b->blob};
		}
	}
	pthread_mutex_unlock(&s->mu);

	struct rslot *slot = !rc && nf ? db_reader_get(s) : NULL;
	uint64_t bad = off; /* the block that failed */
	for (size_t i = 0; !rc && i < nf; i++) {
		uint64_t bstart = f[i].idx * bs;
		bad = bstart;
		uint64_t lo = off > bstart ? off : bstart;
		uint64_t hi = end < bstart + bs ? end : bstart + bs;
		if (lo == bstart && hi == bstart + bs) {
			/* whole block: decode straight into the caller's buffer */
			rc = blob_load_with(s, slot, f[i].blob, out + (lo - off),
					    false);
			continue;
		}
		if (!tmp && !(tmp = malloc(bs))) {
			rc = KEEP_E_NOMEM;
			break;
		}
		rc = blob_load_with(s, slot, f[i].blob, tmp, true);
		if (!rc)
			memcpy(out + (lo - off), tmp + (lo - bstart), (size_t)(hi - lo));
	}
	db_reader_put(slot);
	if (rc == EIO) {
		char path[1024];
		path_for_log(s, view, ino, path, sizeof(path));
		if (view == KEEP_LIVE)
			keep_log(LOG_ERR, "%s (inode %llu) in the live tree: "
					  "damaged data in the block at offset "
					  "%llu",
				 path, (unsigned long long)ino,
				 (unsigned long long)bad);
		else
			keep_log(LOG_ERR, "%s (inode %llu) in commit %llu: "
					  "damaged data in the block at offset "
					  "%llu",
				 path, (unsigned long long)ino,
				 (unsigned long long)view,
				 (unsigned long long)bad);
	}
	free(tmp);
	free(f);
	if (!rc)
		*nread = size;
	return rc;
}

/* ---- write ------------------------------------------------------------- */

static int write_locked(struct keep_store *s, struct kinode *n, uint64_t off,
			const uint8_t *src, size_t size)
{
	uint32_t bs = s->block_size;
	uint64_t end = off + size;

	for (uint64_t pos = off; pos < end;) {
		uint64_t idx = pos / bs;
		uint32_t boff = (uint32_t)(pos % bs);
		size_t len = bs - boff;
		struct dblock *b;
		int rc;

		if (len > end - pos)
			len = (size_t)(end - pos);
		/* a whole block, or the part past the end of the file, need
		 * no old content (it is zero past the end: note 4) */
		int whole = len == bs ? 2 : (boff == 0 && pos >= n->a.size);
		rc = dirty_block(s, n->a.ino, idx, whole, &b);
		if (rc)
			return rc;
		memcpy(b->buf + boff, src + (pos - off), len);
		pos += len;
	}
	return 0;
}

/*
 * Common start of a data change: the live regular file, in a change.  A
 * data change writes no row: its blocks go to the dirty map and its inode
 * to the inode cache (applied only if the change succeeds), so it needs no
 * savepoint.
 */
static int data_begin(struct keep_store *s, uint64_t ino, uint64_t space,
		      struct kinode *n, bool *sp)
{
	int rc = keep_begin_live(s);

	*sp = false;
	s->nstaged = 0;
	if (!rc)
		rc = keep_space_check(s, space);
	if (!rc)
		rc = ns_get_live(s, ino, n);
	if (!rc && S_ISDIR(n->a.mode))
		rc = EISDIR;
	if (!rc && !S_ISREG(n->a.mode))
		rc = EINVAL;
	return rc;
}

static int data_end(struct keep_store *s, struct kinode *n, int rc,
		    bool times, bool sp)
{
	if (!rc) {
		if (times || !s->kernel_times)
			n->a.mtime_ns = n->a.ctime_ns = keep_now_ns();
		rc = ns_put(s, n);
	}
	return ns_finish(s, rc, sp);
}

static void maybe_commit(struct keep_store *s)
{
	bool over;

	pthread_mutex_lock(&s->mu);
	over = s->dirty.bytes >= s->dirty_limit;
	pthread_mutex_unlock(&s->mu);
	if (over)
		keep_commit_nosync(s, NULL); /* a failure is logged, sticks */
}

int keep_write(struct keep_store *s, uint64_t ino, uint64_t off,
	       const void *buf, size_t size)
{
	struct kinode n;
	bool sp;
	int rc;

	if (off > MAX_FILE_SIZE || size > MAX_FILE_SIZE - off)
		return EFBIG;
	pthread_mutex_lock(&s->mu);
	rc = data_begin(s, ino, size, &n, &sp);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	rc = write_locked(s, &n, off, buf, size);
	if (!rc && off + size > n.a.size)
		n.a.size = off + size;
	rc = data_end(s, &n, rc, false, sp);
	pthread_mutex_unlock(&s->mu);
	maybe_commit(s);
	return rc;
}

int keep_fallocate(struct keep_store *s, uint64_t ino, unsigned mode,
		   uint64_t off, uint64_t len)
{
	uint32_t bs = s->block_size;
	struct kinode n;
	uint64_t end;
	bool sp;
	int rc;

	if (mode & ~(unsigned)(KEEP_FALLOC_KEEP_SIZE | KEEP_FALLOC_PUNCH_HOLE))
		return EOPNOTSUPP;
	if ((mode & KEEP_FALLOC_PUNCH_HOLE) && !(mode & KEEP_FALLOC_KEEP_SIZE))
		return EOPNOTSUPP;
	if (len == 0)
		return EINVAL;
	if (off > MAX_FILE_SIZE || len > MAX_FILE_SIZE - off)
		return EFBIG;
	end = off + len;
	pthread_mutex_lock(&s->mu);
	rc = data_begin(s, ino, 0, &n, &sp);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	if (!(mode & KEEP_FALLOC_PUNCH_HOLE)) {
		if (!(mode & KEEP_FALLOC_KEEP_SIZE) && end > n.a.size)
			n.a.size = end;
	} else {
		if (end > n.a.size)
			end = n.a.size;
		for (uint64_t pos = off; !rc && pos < end;) {
			uint64_t idx = pos / bs, bstart = idx * bs;
			uint64_t hi = end < bstart + bs ? end : bstart + bs;
			if (pos == bstart && hi == bstart + bs)
				rc = set_dirty_kind(s, ino, idx, DIRTY_HOLE, 0);
			else
				rc = zero_part(s, ino, idx, (uint32_t)(pos - bstart),
					       (uint32_t)(hi - bstart));
			pos = hi;
		}
	}
	rc = data_end(s, &n, rc, true, sp);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- SEEK_DATA / SEEK_HOLE ------------------------------------------------ */

/* Does block idx hold data?  Live: the pending maps win over the rows. */
static int block_has_data(struct keep_store *s, uint64_t view, uint64_t ino,
			  uint64_t idx, bool *yes)
{
	uint64_t blob;
	int rc;

	if (view == KEEP_LIVE) {
		struct bsrc src;
		rc = live_source(s, ino, idx, &src);
		if (!rc)
			*yes = src.kind != SRC_HOLE;
		return rc;
	}
	rc = db_block_get(s, view, ino, idx, &blob);
	*yes = rc == 0;
	return rc == ENOENT ? 0 : rc;
}

struct next_ctx {
	struct keep_store *s;
	uint64_t view, ino, found;
	bool have;
};

static int next_row(void *arg, uint64_t idx, uint64_t blob)
{
	struct next_ctx *c = arg;
	bool yes = true;

	(void)blob;
	if (c->view == KEEP_LIVE) {
		struct dblock *b = dmap_find(&c->s->dirty, c->ino, idx);
		if (!b)
			b = dmap_find(&c->s->inflight, c->ino, idx);
		if (b)
			yes = b->kind != DIRTY_HOLE;
	}
	if (yes) {
		c->found = idx;
		c->have = true;
		return 1; /* stop */
	}
	return 0;
}

static void next_pending(struct dmap *m, uint64_t ino, uint64_t from,
			 struct next_ctx *c, struct dmap *over)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct dblock *b = m->tab[i]; b; b = b->next) {
			if (b->ino != ino || b->idx < from || b->kind == DIRTY_HOLE)
				continue;
			if (over && dmap_find(over, ino, b->idx))
				continue;
			if (!c->have || b->idx < c->found) {
				c->found = b->idx;
				c->have = true;
			}
		}
}

int keep_lseek(struct keep_store *s, uint64_t view, uint64_t ino, uint64_t off,
	       int whence, uint64_t *out)
{
	uint32_t bs = s->block_size;
	struct kinode n;
	int rc;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return EINVAL;
	pthread_mutex_lock(&s->mu);
	rc = ns_get(s, view, ino, &n);
	if (!rc && off >= n.a.size)
		rc = ENXIO;
	if (rc)
		goto out;
	if (whence == SEEK_DATA) {
		struct next_ctx c = {s, view, ino, 0, false};
		rc = db_block_range(s, view, ino, off / bs, UINT64_MAX, next_row, &c);
		if (rc == 1)
			rc = 0;
		if (!rc && view == KEEP_LIVE) {
			next_pending(&s->dirty, ino, off / bs, &c, NULL);
			next_pending(&s->inflight, ino, off / bs, &c, &s->dirty);
		}
		if (!rc) {
			uint64_t pos = c.have ? c.found * bs : UINT64_MAX;
			if (pos < off)
				pos = off;
			if (!c.have || pos >= n.a.size)
				rc = ENXIO;
			else
				*out = pos;
		}
	} else {
		uint64_t idx = off / bs, lastidx = (n.a.size - 1) / bs;
		bool yes = true;
		for (; idx <= lastidx; idx++) {
			rc = block_has_data(s, view, ino, idx, &yes);
			if (rc || !yes)
				break;
		}
		if (!rc) {
			uint64_t pos = idx > lastidx ? n.a.size : idx * bs;
			*out = pos < off ? off : pos;
		}
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- copy_file_range --------------------------------------------------- */

int keep_copy_range(struct keep_store *s, uint64_t ino_in, uint64_t off_in,
		    uint64_t ino_out, uint64_t off_out, uint64_t len,
		    uint64_t *copied)
{
	uint32_t bs = s->block_size;
	struct kinode in, out;
	uint8_t *tmp = NULL;
	uint64_t done_ = 0;
	bool sp;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = ns_get_live(s, ino_in, &in);
	if (!rc && S_ISDIR(in.a.mode))
		rc = EISDIR;
	if (rc)
		goto out_unlocked_tx;
	if (off_in >= in.a.size) {
		*copied = 0;
		goto out_unlocked_tx;
	}
	if (len > in.a.size - off_in)
		len = in.a.size - off_in;
	if (off_out > MAX_FILE_SIZE || len > MAX_FILE_SIZE - off_out) {
		rc = EFBIG;
		goto out_unlocked_tx;
	}
	if (ino_in == ino_out && off_in < off_out + len && off_out < off_in + len) {
		rc = EINVAL;
		goto out_unlocked_tx;
	}
	rc = data_begin(s, ino_out, len, &out, &sp);
	if (rc)
		goto out_unlocked_tx;
	tmp = malloc(bs);
	if (!tmp)
		rc = KEEP_E_NOMEM;
	while (!rc && done_ < len) {
		uint64_t sp = off_in + done_, dp = off_out + done_;
		uint64_t sidx = sp / bs;
		struct bsrc src;
		size_t chunk;

		if (sp % bs == 0 && dp % bs == 0 && len - done_ >= bs) {
			/* share the whole block */
			rc = live_source(s, ino_in, sidx, &src);
			if (rc)
				break;
			if (src.kind == SRC_HOLE) {
				rc = set_dirty_kind(s, ino_out, dp / bs, DIRTY_HOLE, 0);
			} else if (src.kind == SRC_BLOB) {
				rc = set_dirty_kind(s, ino_out, dp / bs, DIRTY_BLOB,
						    src.blob);
			} else {
				struct dblock *b;
				memcpy(tmp, src.buf, bs);
				rc = dirty_block(s, ino_out, dp / bs, 2, &b);
				if (!rc)
					memcpy(b->buf, tmp, bs);
			}
			if (!rc && dp + bs > out.a.size)
				out.a.size = dp + bs;
			done_ += bs;
			continue;
		}
		/* byte copy up to the next block edge of either side */
		chunk = bs - (size_t)(sp % bs);
		if (chunk > bs - dp % bs)
			chunk = bs - (size_t)(dp % bs);
		if (chunk > len - done_)
			chunk = (size_t)(len - done_);
		rc = live_source(s, ino_in, sidx, &src);
		if (rc)
			break;
		if (src.kind == SRC_HOLE)
			memset(tmp, 0, bs);
		else if (src.kind == SRC_BUF)
			memcpy(tmp, src.buf, bs);
		else
			rc = blob_load(s, src.blob, tmp, true);
		if (!rc)
			rc = write_locked(s, &out, dp, tmp + sp % bs, chunk);
		if (!rc && dp + chunk > out.a.size)
			out.a.size = dp + chunk;
		done_ += chunk;
	}
	rc = data_end(s, &out, rc, false, sp);
	if (!rc)
		*copied = len;
	free(tmp);
	pthread_mutex_unlock(&s->mu);
	maybe_commit(s);
	return rc;

out_unlocked_tx:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- commit support ------------------------------------------------------ */

/* Encode the DIRTY_DATA blocks of buckets [from, to) of m with codec. */
static int encode_range(struct keep_store *s, struct keep_codec *codec,
			struct dmap *m, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		for (struct dblock *b = m->tab[i]; b; b = b->next) {
			size_t len;
			if (b->kind != DIRTY_DATA || b->encoded)
				continue;
			len = keep_trim_zeros(b->buf, s->block_size);
			b->encoded = true;
			if (len == 0) {
				b->zero = true;
				continue;
			}
			b->rawlen = len;
			int rc = keep_pack(codec, s->keys, b->buf, len,
					   b->hash, &b->enc, &b->enclen,
					   &b->flags, &b->crc);
			if (rc)
				return rc;
		}
	return 0;
}

/*
 * A second encoder thread: hashing and compressing a commit's blocks is
 * the committer's longest step, and it is split in two halves of the
 * bucket table, one per thread (they share no block).
 */
struct encoder {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct keep_store *s;
	struct keep_codec *codec;
	struct dmap *m;
	size_t from, to;
	int rc;
	bool pending, done, stop;
};

static void *encoder_main(void *arg)
{
	struct encoder *e = arg;

	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->pending && !e->stop)
			pthread_cond_wait(&e->cv, &e->mu);
		if (e->stop)
			break;
		e->pending = false;
		pthread_mutex_unlock(&e->mu);
		int rc = encode_range(e->s, e->codec, e->m, e->from, e->to);
		pthread_mutex_lock(&e->mu);
		e->rc = rc;
		e->done = true;
		pthread_cond_broadcast(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

int data_encoder_start(struct keep_store *s)
{
	struct encoder *e = calloc(1, sizeof(*e));

	if (!e)
		return KEEP_E_NOMEM;
	e->s = s;
	e->codec = keep_codec_new();
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	if (!e->codec || pthread_create(&e->thread, NULL, encoder_main, e) != 0) {
		keep_codec_free(e->codec);
		pthread_mutex_destroy(&e->mu);
		pthread_cond_destroy(&e->cv);
		free(e);
		return KEEP_E_NOMEM;
	}
	s->encoder = e;
	return 0;
}

void data_encoder_stop(struct keep_store *s)
{
	struct encoder *e = s->encoder;

	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	keep_codec_free(e->codec);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	free(e);
	s->encoder = NULL;
}

int data_encode(struct keep_store *s, struct dmap *m)
{
	struct encoder *e = s->encoder;
	size_t half = m->nbuckets / 2;
	int rc, rc2;

	if (!e || m->count < 16)
		return encode_range(s, s->codec, m, 0, m->nbuckets);
	pthread_mutex_lock(&e->mu);
	e->m = m;
	e->from = 0;
	e->to = half;
	e->done = false;
	e->pending = true;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);

	rc = encode_range(s, s->codec, m, half, m->nbuckets);

	pthread_mutex_lock(&e->mu);
	while (!e->done)
		pthread_cond_wait(&e->cv, &e->mu);
	rc2 = e->rc;
	pthread_mutex_unlock(&e->mu);
	return rc ? rc : rc2;
}

struct apply_ino {
	uint64_t ino;
	bool live;
	struct kinode n;
	int64_t delta;
};

static int flush_ino(struct keep_store *s, struct apply_ino *a)
{
	if (!a->live || a->delta == 0)
		return 0;
	int64_t b = (int64_t)a->n.a.blocks + a->delta;
	a->n.a.blocks = b > 0 ? (uint64_t)b : 0;
	a->delta = 0;
	s->nstaged = 0;
	int rc = ns_put(s, &a->n);
	return ns_finish(s, rc, false);
}

static int apply_one(struct keep_store *s, struct dblock *b, struct apply_ino *a)
{
	bool flag;
	uint64_t blob;
	int rc;

	if (!a->live || b->idx * (uint64_t)s->block_size >= a->n.a.size)
		return 0; /* reclaimed or cut off meanwhile */
	if (b->kind == DIRTY_HOLE || (b->kind == DIRTY_DATA && b->zero)) {
		rc = db_block_kill(s, b->ino, b->idx, &flag);
		if (!rc && flag)
			a->delta--;
		return rc;
	}
	if (b->kind == DIRTY_BLOB) {
		blob = b->blob;
	} else {
		if (!b->encoded)
			return KEEP_CORRUPT_BKPT("dirty block was not encoded");
		rc = db_blob_find(s, b->hash, &blob);
		if (rc == ENOENT) {
			rc = keep_fault("blob");
			if (!rc)
				rc = db_blob_insert(s, b->hash, b->rawlen,
						    b->enc ? b->enc : b->buf,
						    b->enclen, b->flags, b->crc,
						    &blob);
		}
		if (rc)
			return rc;
	}
	rc = db_block_set(s, b->ino, b->idx, blob, &flag);
	if (!rc && flag)
		a->delta++;
	return rc;
}

int data_apply(struct keep_store *s, struct dmap *m, struct dmap *newer)
{
	struct apply_ino a = {0};
	int rc = 0;

	/* entries of one inode are not adjacent in the hash table; keep one
	 * inode loaded and flush its block count when another comes */
	for (size_t i = 0; !rc && i < m->nbuckets; i++)
		for (struct dblock *b = m->tab[i]; !rc && b; b = b->next) {
			if (newer && dmap_find(newer, b->ino, b->idx))
				continue;
			if (a.ino != b->ino) {
				rc = flush_ino(s, &a);
				if (rc)
					break;
				a = (struct apply_ino){.ino = b->ino};
				rc = ns_get_live(s, b->ino, &a.n);
				a.live = rc == 0;
				if (rc == ENOENT)
					rc = 0;
				if (rc)
					break;
			}
			rc = apply_one(s, b, &a);
			free(b->enc);
			b->enc = NULL;
			b->encoded = false;
		}
	if (!rc)
		rc = flush_ino(s, &a);
	return rc;
}
