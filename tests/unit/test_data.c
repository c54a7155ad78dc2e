/*
 * test_data.c - file data round trips through the block codec.
 *
 * Random, compressible and all-zero data of many sizes, written at odd
 * offsets, must read back byte for byte before a commit, after it, and
 * after the store is closed and reopened.  Then a randomized sequence of
 * write / truncate / punch hole / fallocate / copy_range on two files is
 * checked against an in-memory model, with views of earlier commits
 * checked against copies of the model taken at those commits.
 */
#include "unit.h"

enum { KIND_RANDOM, KIND_TEXT, KIND_ZERO, KINDS };
static const char *kind_name[] = { "random", "text", "zero" };

static void gen(int kind, uint64_t seed, uint8_t *p, size_t n)
{
	uint64_t saved = unit_rng_state;

	unit_rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	if (kind == KIND_RANDOM)
		unit_fill_random(p, n);
	else if (kind == KIND_TEXT)
		unit_fill_text(p, n);
	else
		memset(p, 0, n);
	unit_rng_state = saved;
}

struct rt_file {
	uint64_t ino;
	int kind;
	size_t off, len;
	uint64_t seed;
};

/* Expected content of f: zeros up to off, then the generated data. */
static uint8_t *rt_expect(const struct rt_file *f)
{
	uint8_t *p = calloc(1, f->off + f->len + 1);

	if (!p)
		abort();
	gen(f->kind, f->seed, p + f->off, f->len);
	return p;
}

static int rt_check_all(struct keep_store *s, uint64_t view,
			const struct rt_file *files, size_t n, const char *when)
{
	size_t i, bad = 0;

	for (i = 0; i < n; i++) {
		uint8_t *want = rt_expect(&files[i]);

		if (!unit_same(s, view, files[i].ino, want,
			       files[i].off + files[i].len)) {
			diag("%s: %s data, %zu bytes at offset %zu differs",
			     when, kind_name[files[i].kind], files[i].len,
			     files[i].off);
			bad++;
		}
		free(want);
	}
	return ok(bad == 0, "%s: %zu files read back byte for byte", when, n);
}

static void t_round_trips(void)
{
	struct keep_store *s = unit_store("rt", 0);
	size_t bs = keep_store_block_size(s);
	const size_t sizes[] = { 0,	     1,		 2,	     bs - 1,
				 bs,	     bs + 1,	 2 * bs - 1, 2 * bs + 1,
				 12345,	     100003,	 (3 << 20) + 7,
				 (5 << 20) - 3 };
	const size_t offs[] = { 0, 1, 4095, bs - 1, bs + 3, 3 * bs };
	const size_t nsizes = sizeof(sizes) / sizeof(sizes[0]);
	const size_t noffs = sizeof(offs) / sizeof(offs[0]);
	struct rt_file *files = calloc(KINDS * nsizes * noffs, sizeof(*files));
	size_t n = 0, k, i, j, zero_blocks = 0;
	struct keep_stats st;
	uint64_t c1 = 0;
	int bad = 0;

	for (k = 0; k < KINDS; k++) {
		for (i = 0; i < nsizes; i++) {
			for (j = 0; j < noffs; j++) {
				struct rt_file *f = &files[n];
				char name[64];
				uint8_t *data;
				size_t pos, piece;
				int rc = 0;

				/* the big sizes at three offsets only */
				if (sizes[i] > (1u << 20) && j % 2)
					continue;
				f->kind = (int)k;
				f->off = offs[j];
				f->len = sizes[i];
				f->seed = n + 1;
				snprintf(name, sizeof(name), "%s-%zu-%zu",
					 kind_name[k], f->len, f->off);
				f->ino = unit_file(s, KEEP_ROOT_INO, name, NULL, 0);
				data = rt_expect(f);
				/* odd files are written in odd-sized pieces */
				piece = n % 2 ? 77777 : f->len + 1;
				for (pos = 0; pos < f->len && rc == 0;
				     pos += piece) {
					size_t m = f->len - pos < piece ?
							   f->len - pos :
							   piece;

					rc = keep_write(s, f->ino, f->off + pos,
							data + f->off + pos, m);
				}
				if (f->len == 0 && f->off > 0) {
					/* nothing written: extend by setattr */
					struct keep_attr a = { .size = f->off };

					rc = keep_setattr(s, f->ino, &a,
							  KEEP_SET_SIZE, &a);
				}
				if (f->ino == 0 || rc != 0) {
					diag("%s: rc %d", name, rc);
					bad++;
				}
				free(data);
				n++;
			}
		}
	}
	is_int(bad, 0, "create and write %zu files", n);
	rt_check_all(s, KEEP_LIVE, files, n, "live before commit");
	is_int(keep_commit(s, &c1), 0, "commit");
	rt_check_all(s, KEEP_LIVE, files, n, "live after commit");
	rt_check_all(s, c1, files, n, "view after commit");
	for (i = 0; i < n; i++) {
		struct keep_attr a;

		if (files[i].kind != KIND_ZERO)
			continue;
		if (keep_getattr(s, KEEP_LIVE, files[i].ino, &a) != 0 ||
		    a.blocks != 0) {
			diag("zero file of %zu bytes at %zu: %" PRIu64
			     " blocks stored",
			     files[i].len, files[i].off, a.blocks);
			zero_blocks++;
		}
	}
	is_int(zero_blocks, 0, "files written with zeros store no blocks");
	if (keep_stats(s, &st) == 0) {
		ok(st.blob_stored_bytes < st.blob_raw_bytes,
		   "compressible data is stored compressed (%" PRIu64
		   " of %" PRIu64 " bytes)",
		   st.blob_stored_bytes, st.blob_raw_bytes);
		is_int(st.files, n, "stats count the files");
	} else {
		ok(0, "keep_stats");
	}
	s = unit_reopen(s, "rt", KEEP_OPEN_RDONLY);
	rt_check_all(s, KEEP_LIVE, files, n, "live after reopening");
	rt_check_all(s, c1, files, n, "view after reopening");
	{
		uint64_t problems = 99;

		is_int(keep_check(s, 1, NULL, NULL, &problems), 0,
		       "keep_check with data is clean");
	}
	keep_store_close(s);
	free(files);

	/* incompressible data is not stored larger than it is */
	s = unit_store("rt-random", 0);
	{
		size_t len = 8 * bs;
		uint8_t *p = malloc(len);

		unit_fill_random(p, len);
		unit_file(s, KEEP_ROOT_INO, "r", p, len);
		keep_commit(s, NULL);
		if (keep_stats(s, &st) == 0) {
			is_int(st.blob_raw_bytes, len,
			       "random data: raw bytes counted once");
			ok(st.blob_stored_bytes <= st.blob_raw_bytes,
			   "random data is stored raw, not larger (%" PRIu64
			   " of %" PRIu64 ")",
			   st.blob_stored_bytes, st.blob_raw_bytes);
		} else {
			ok(0, "keep_stats");
		}
		free(p);
	}
	keep_store_close(s);
}

/* ---- randomized operations against a model --------------------------- */

struct model {
	uint64_t ino;
	uint8_t *data; /* cap bytes; beyond size always zero */
	size_t size;
};

struct saved_view {
	uint64_t id;
	uint8_t *data[2];
	size_t size[2];
};

static size_t rnd(size_t n)
{
	return n ? (size_t)(unit_rand() % n) : 0;
}

static int check_models(struct keep_store *s, uint64_t view, struct model *m,
			const char *when, int step)
{
	int good = unit_same(s, view, m[0].ino, m[0].data, m[0].size) &&
		   unit_same(s, view, m[1].ino, m[1].data, m[1].size);

	if (!good)
		diag("%s: mismatch after step %d", when, step);
	return good;
}

static void t_random_ops(const char *store, uint32_t block_size, int steps)
{
	struct keep_store *s = unit_store(store, block_size);
	size_t bs = keep_store_block_size(s);
	size_t cap = 8 * bs + 1000;
	struct model m[2];
	struct saved_view views[4];
	int nviews = 0, step, bad_rc = 0, bad_cmp = 0, i, f;
	uint8_t *tmp = malloc(cap);
	char what[200];

	diag("random ops on a store with %zu-byte blocks, %d steps", bs, steps);
	for (i = 0; i < 2; i++) {
		m[i].data = calloc(1, cap);
		m[i].size = 0;
		m[i].ino = unit_file(s, KEEP_ROOT_INO, i ? "y" : "x", NULL, 0);
	}
	for (step = 0; step < steps; step++) {
		int op = (int)rnd(100), rc = 0;
		struct model *t;

		f = (int)rnd(2);
		t = &m[f];
		if (op < 35) { /* write */
			size_t len = rnd(4) ? rnd(bs / 2 + 1) : rnd(2 * bs + 1);
			size_t off = rnd(4) ? rnd(cap - len) :
					      rnd((cap - len) / bs + 1) * bs;
			int kind = (int)rnd(4);

			if (kind == 3 && t->size >= bs) {
				/* repeat an existing block: dedup path */
				size_t from = rnd(t->size / bs) * bs;

				len = bs;
				off = rnd((cap - len) / bs + 1) * bs;
				memcpy(tmp, t->data + from, bs);
			} else {
				gen(kind % 3, unit_rand(), tmp, len);
			}
			snprintf(what, sizeof(what), "write %zu at %zu", len, off);
			rc = keep_write(s, t->ino, off, tmp, len);
			memcpy(t->data + off, tmp, len);
			if (len && off + len > t->size)
				t->size = off + len;
		} else if (op < 47) { /* truncate */
			struct keep_attr a;
			size_t ns = rnd(4) ? rnd(cap + 1) : rnd(cap / bs + 1) * bs;

			if (ns > cap)
				ns = cap;
			a.size = ns;
			snprintf(what, sizeof(what), "truncate to %zu", ns);
			rc = keep_setattr(s, t->ino, &a, KEEP_SET_SIZE, &a);
			if (ns < t->size)
				memset(t->data + ns, 0, t->size - ns);
			t->size = ns;
		} else if (op < 60) { /* punch a hole */
			size_t off = rnd(cap), len = rnd(cap - off) + 1;

			if (rnd(2)) {
				off = off / bs * bs;
				len = (len + bs - 1) / bs * bs;
				if (off + len > cap)
					len = cap - off;
			}
			snprintf(what, sizeof(what), "punch %zu at %zu", len, off);
			rc = keep_fallocate(s, t->ino,
					    KEEP_FALLOC_PUNCH_HOLE |
						    KEEP_FALLOC_KEEP_SIZE,
					    off, len);
			if (off < t->size)
				memset(t->data + off, 0,
				       (off + len < t->size ? off + len :
							      t->size) -
					       off);
		} else if (op < 67) { /* fallocate, default mode */
			size_t off = rnd(cap), len = rnd(cap - off) + 1;

			snprintf(what, sizeof(what), "fallocate %zu at %zu", len,
				 off);
			rc = keep_fallocate(s, t->ino, 0, off, len);
			if (off + len > t->size)
				t->size = off + len;
		} else if (op < 88) { /* copy_range */
			struct model *src = &m[rnd(2)];
			size_t len = rnd(2 * bs + 1), oi, oo, want;
			uint64_t copied = 0;

			if (rnd(2)) { /* block aligned: the sharing path */
				len = (rnd(3) + 1) * bs;
				oi = rnd(cap / bs) * bs;
				oo = rnd((cap - len) / bs + 1) * bs;
			} else {
				oi = rnd(cap);
				oo = rnd(cap - len + 1);
			}
			if (src == t && oi < oo + len && oo < oi + len)
				continue; /* overlapping: not this test */
			want = oi < src->size ?
				       (src->size - oi < len ? src->size - oi :
							       len) :
				       0;
			snprintf(what, sizeof(what),
				 "copy %zu from %s@%zu to %s@%zu", len,
				 src == &m[0] ? "x" : "y", oi,
				 t == &m[0] ? "x" : "y", oo);
			rc = keep_copy_range(s, src->ino, oi, t->ino, oo, len,
					     &copied);
			if (rc == 0 && copied != want) {
				diag("step %d: %s copied %" PRIu64 ", want %zu",
				     step, what, copied, want);
				bad_cmp++;
			}
			memmove(tmp, src->data + oi, want);
			memcpy(t->data + oo, tmp, want);
			if (want && oo + want > t->size)
				t->size = oo + want;
		} else { /* commit, sometimes keeping the model for later */
			uint64_t id = 0;

			snprintf(what, sizeof(what), "commit");
			rc = keep_commit(s, &id);
			if (rc == 0 && nviews < 4 && rnd(3) == 0) {
				struct saved_view *v = &views[nviews++];

				v->id = id;
				for (i = 0; i < 2; i++) {
					v->data[i] = malloc(cap);
					memcpy(v->data[i], m[i].data, cap);
					v->size[i] = m[i].size;
				}
			}
		}
		if (rc != 0) {
			diag("step %d: %s on %s: %s", step, what, f ? "y" : "x",
			     keep_strerror(rc));
			bad_rc++;
		}
		if ((step % 25 == 24 || step == steps - 1) &&
		    !check_models(s, KEEP_LIVE, m, "live", step)) {
			diag("last op: %s", what);
			bad_cmp++;
			break;
		}
	}
	is_int(bad_rc, 0, "%s: %d random operations succeed", store, steps);
	is_int(bad_cmp, 0, "%s: live content matches the model throughout",
	       store);
	is_int(keep_commit(s, NULL), 0, "%s: final commit", store);
	ok(check_models(s, KEEP_LIVE, m, "live after commit", step),
	   "%s: live matches the model after the final commit", store);
	for (i = 0; i < nviews; i++) {
		struct model vm[2] = {
			{ m[0].ino, views[i].data[0], views[i].size[0] },
			{ m[1].ino, views[i].data[1], views[i].size[1] },
		};

		ok(check_models(s, views[i].id, vm, "view", step),
		   "%s: view of commit %" PRIu64 " matches its saved model",
		   store, views[i].id);
	}
	s = unit_reopen(s, store, KEEP_OPEN_RDONLY);
	ok(check_models(s, KEEP_LIVE, m, "live after reopening", step),
	   "%s: live matches the model after reopening", store);
	for (i = 0; i < nviews; i++) {
		struct model vm[2] = {
			{ m[0].ino, views[i].data[0], views[i].size[0] },
			{ m[1].ino, views[i].data[1], views[i].size[1] },
		};

		ok(check_models(s, views[i].id, vm, "view", step),
		   "%s: after reopening, view %" PRIu64 " matches", store,
		   views[i].id);
		free(views[i].data[0]);
		free(views[i].data[1]);
	}
	{
		uint64_t problems = 99;

		is_int(keep_check(s, 1, NULL, NULL, &problems), 0,
		       "%s: keep_check with data is clean", store);
	}
	keep_store_close(s);
	free(m[0].data);
	free(m[1].data);
	free(tmp);
}

int main(void)
{
	unit_begin("data");
	unit_seed(20240611);
	t_round_trips();
	t_random_ops("ops-4k", KEEP_MIN_BLOCK_SIZE, 600);
	t_random_ops("ops-default", 0, 400);
	is_int(unit_log_problems, 0, "no errors or warnings were logged");
	unit_end();
	return tap_done();
}
