/*
 * udiff.c - unified diffs of two texts, for "keepfs log -p".
 *
 * Design notes:
 *
 *  1. Lines (each with its '\n', so a last line without one differs from
 *     the same text with one) are numbered by content through a hash
 *     table, and the two arrays of numbers compared.
 *  2. The comparison is Myers' O(ND) algorithm in its linear-space form:
 *     find the middle snake of a range by searching from both ends at
 *     once, split there, go on with both halves (on an explicit stack,
 *     so a long edit script needs no deep recursion).  Common prefixes
 *     and suffixes are taken off every range first, which makes appends
 *     to a JSONL file and edits of one line cost what they change.
 *  3. The search of a range gives up after BUDGET steps of D and marks
 *     the whole range changed: the diff stays correct, only not minimal,
 *     and its time stays bounded (O((N+M) * BUDGET)) on inputs that
 *     share nothing.
 *  4. Output is GNU diff's unified format with 3 lines of context:
 *     changes closer than 2 * 3 lines share a hunk, a change's deletions
 *     come before its insertions, and "\ No newline at end of file"
 *     follows a last line without one.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_i.h"

#define CONTEXT 3
#define BUDGET 4096
#define BINARY_PROBE 8000

struct line {
	const char *p;
	size_t len;
};

struct text {
	struct line *l;
	long n;
	int *id;    /* line numbers by content */
	char *mark; /* 1: deleted (a) or inserted (b) */
};

static void split(struct text *t, const char *data, size_t len)
{
	long n = 0;

	for (size_t i = 0; i < len; i++)
		n += data[i] == '\n';
	if (len && data[len - 1] != '\n')
		n++;
	t->l = xmalloc((size_t)(n ? n : 1) * sizeof(*t->l));
	t->id = xmalloc((size_t)(n ? n : 1) * sizeof(*t->id));
	t->mark = calloc((size_t)(n ? n : 1), 1);
	if (!t->mark)
		die("out of memory");
	t->n = 0;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - data) + 1 : len;
		t->l[t->n++] = (struct line){data + i, e - i};
		i = e;
	}
}

static uint64_t hash(const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h;
}

/* Number the lines of both texts by content (note 1). */
static void number(struct text *a, struct text *b)
{
	size_t cap = 16;
	long total = a->n + b->n;

	while (cap < (size_t)total * 2)
		cap *= 2;
	struct slot {
		const struct line *l;
		uint64_t h;
		int id;
	} *tab = calloc(cap, sizeof(*tab));
	int next = 0;

	if (!tab)
		die("out of memory");
	for (int side = 0; side < 2; side++) {
		struct text *t = side ? b : a;
		for (long i = 0; i < t->n; i++) {
			const struct line *l = &t->l[i];
			uint64_t h = hash(l->p, l->len);
			size_t k = (size_t)h & (cap - 1);
			while (tab[k].l &&
			       !(tab[k].h == h && tab[k].l->len == l->len &&
				 !memcmp(tab[k].l->p, l->p, l->len)))
				k = (k + 1) & (cap - 1);
			if (!tab[k].l)
				tab[k] = (struct slot){l, h, next++};
			t->id[i] = tab[k].id;
		}
	}
	free(tab);
}

struct range {
	long alo, ahi, blo, bhi;
};

struct myers {
	const int *a, *b;
	long *vf, *vb; /* indexed by diagonal + off */
	long off;
};

/*
 * The middle snake of a[alo..ahi) against b[blo..bhi), both non-empty
 * (note 2): on success *x, *y is a point on an optimal path, strictly
 * inside the range so both halves are smaller.  False past BUDGET.
 */
static bool bisect(struct myers *m, const struct range *r, long *x, long *y)
{
	const int *a = m->a + r->alo, *b = m->b + r->blo;
	long n = r->ahi - r->alo, mm = r->bhi - r->blo;
	long delta = n - mm, dmax = (n + mm + 1) / 2;
	bool odd = delta & 1;
	long *vf = m->vf + m->off, *vb = m->vb + m->off;

	if (dmax > BUDGET)
		dmax = BUDGET;
	for (long k = -dmax - 2; k <= dmax + 2; k++)
		vf[k] = vb[k] = -1;
	vf[1] = vb[1] = 0;
	for (long d = 0; d <= dmax; d++) {
		/* forward: furthest x on diagonal k = x - y */
		for (long k = -d; k <= d; k += 2) {
			long fx = k == -d || (k != d && vf[k - 1] < vf[k + 1])
					  ? vf[k + 1]
					  : vf[k - 1] + 1;
			long fy = fx - k;
			while (fx < n && fy < mm && a[fx] == b[fy])
				fx++, fy++;
			vf[k] = fx;
			if (fx > n || fy > mm)
				continue;
			long kb = delta - k; /* the same diagonal, backwards */
			if (odd && kb >= -(d - 1) && kb <= d - 1 &&
			    vb[kb] >= 0 && fx + vb[kb] >= n) {
				*x = fx;
				*y = fy;
				return true;
			}
		}
		/* backward: furthest x from the end on diagonal k */
		for (long k = -d; k <= d; k += 2) {
			long bx = k == -d || (k != d && vb[k - 1] < vb[k + 1])
					  ? vb[k + 1]
					  : vb[k - 1] + 1;
			long by = bx - k;
			while (bx < n && by < mm &&
			       a[n - bx - 1] == b[mm - by - 1])
				bx++, by++;
			vb[k] = bx;
			if (bx > n || by > mm)
				continue;
			long kf = delta - k;
			if (!odd && kf >= -d && kf <= d && vf[kf] >= 0 &&
			    vf[kf] + bx >= n) {
				*x = n - bx;
				*y = mm - by;
				return true;
			}
		}
	}
	return false;
}

static void compare(struct text *ta, struct text *tb)
{
	struct myers m = {ta->id, tb->id, NULL, NULL, BUDGET + 4};
	struct range *stack;
	size_t sn = 0, scap = 64;

	m.vf = xmalloc((2 * (size_t)m.off + 1) * sizeof(long));
	m.vb = xmalloc((2 * (size_t)m.off + 1) * sizeof(long));
	stack = xmalloc(scap * sizeof(*stack));
	stack[sn++] = (struct range){0, ta->n, 0, tb->n};
	while (sn) {
		struct range r = stack[--sn];
		long x, y;

		while (r.alo < r.ahi && r.blo < r.bhi &&
		       m.a[r.alo] == m.b[r.blo])
			r.alo++, r.blo++;
		while (r.alo < r.ahi && r.blo < r.bhi &&
		       m.a[r.ahi - 1] == m.b[r.bhi - 1])
			r.ahi--, r.bhi--;
		/* a split that leaves the whole range on one side would
		 * loop: take the range as changed instead */
		if (r.alo == r.ahi || r.blo == r.bhi ||
		    !bisect(&m, &r, &x, &y) || (x == 0 && y == 0) ||
		    (x == r.ahi - r.alo && y == r.bhi - r.blo)) {
			memset(ta->mark + r.alo, 1, (size_t)(r.ahi - r.alo));
			memset(tb->mark + r.blo, 1, (size_t)(r.bhi - r.blo));
			continue;
		}
		if (sn + 2 > scap) {
			scap *= 2;
			struct range *g = realloc(stack, scap * sizeof(*stack));
			if (!g)
				die("out of memory");
			stack = g;
		}
		stack[sn++] = (struct range){r.alo + x, r.ahi, r.blo + y, r.bhi};
		stack[sn++] = (struct range){r.alo, r.alo + x, r.blo, r.blo + y};
	}
	free(stack);
	free(m.vf);
	free(m.vb);
}

static void put_line(FILE *f, char prefix, const struct line *l)
{
	fputc(prefix, f);
	fwrite(l->p, 1, l->len, f);
	if (!l->len || l->p[l->len - 1] != '\n')
		fputs("\n\\ No newline at end of file\n", f);
}

static void put_range(FILE *f, long start, long count)
{
	if (count == 1)
		fprintf(f, "%ld", start + 1);
	else if (count == 0)
		fprintf(f, "%ld,0", start);
	else
		fprintf(f, "%ld,%ld", start + 1, count);
}

/* One hunk: a[as..ae) against b[bs..be). */
static void hunk(FILE *f, const struct text *a, const struct text *b, long as,
		 long ae, long bs, long be)
{
	long i = as, j = bs;

	fputs("@@ -", f);
	put_range(f, as, ae - as);
	fputs(" +", f);
	put_range(f, bs, be - bs);
	fputs(" @@\n", f);
	while (i < ae || j < be) {
		if ((i < ae && a->mark[i]) || (j < be && b->mark[j])) {
			while (i < ae && a->mark[i])
				put_line(f, '-', &a->l[i++]);
			while (j < be && b->mark[j])
				put_line(f, '+', &b->l[j++]);
		} else {
			put_line(f, ' ', &a->l[i]);
			i++, j++;
		}
	}
}

/* Hunks from the marks (note 4). */
static void hunks(FILE *f, const struct text *a, const struct text *b)
{
	long i = 0, j = 0;
	bool open = false;
	long as = 0, bs = 0, ae = 0, be = 0; /* the hunk being gathered */

	while (i < a->n || j < b->n) {
		if (!((i < a->n && a->mark[i]) || (j < b->n && b->mark[j]))) {
			i++, j++;
			continue;
		}
		long ci = i, cj = j;
		while (i < a->n && a->mark[i])
			i++;
		while (j < b->n && b->mark[j])
			j++;
		long pre = ci < CONTEXT ? ci : CONTEXT;
		if (open && ci - ae <= 2 * CONTEXT) {
			ae = i;
			be = j;
			continue;
		}
		if (open) {
			long post = ae + CONTEXT <= a->n ? CONTEXT : a->n - ae;
			hunk(f, a, b, as, ae + post, bs, be + post);
		}
		open = true;
		as = ci - pre;
		bs = cj - pre;
		ae = i;
		be = j;
	}
	if (open) {
		long post = ae + CONTEXT <= a->n ? CONTEXT : a->n - ae;
		hunk(f, a, b, as, ae + post, bs, be + post);
	}
}

bool udiff_binary(const char *data, size_t len)
{
	return memchr(data, '\0', len < BINARY_PROBE ? len : BINARY_PROBE) !=
	       NULL;
}

void udiff(FILE *f, const char *label_a, const char *a, size_t alen,
	   const char *label_b, const char *b, size_t blen)
{
	struct text ta = {0}, tb = {0};

	if (udiff_binary(a, alen) || udiff_binary(b, blen)) {
		fprintf(f, "Binary files %s and %s differ\n", label_a, label_b);
		return;
	}
	split(&ta, a, alen);
	split(&tb, b, blen);
	number(&ta, &tb);
	compare(&ta, &tb);
	bool changed = false;
	for (long i = 0; i < ta.n && !changed; i++)
		changed = ta.mark[i];
	for (long j = 0; j < tb.n && !changed; j++)
		changed = tb.mark[j];
	if (changed) { /* equal texts: nothing at all, as diff -u */
		fprintf(f, "--- %s\n+++ %s\n", label_a, label_b);
		hunks(f, &ta, &tb);
	}
	for (int i = 0; i < 2; i++) {
		struct text *t = i ? &tb : &ta;
		free(t->l);
		free(t->id);
		free(t->mark);
	}
}
