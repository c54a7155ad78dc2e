/*
 * umap.c - small helpers of core/'s in-memory work: a map from inode
 * numbers (never 0) to pointers, and growable arrays.
 */
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"

/* ---- the map ------------------------------------------------------------ */

static size_t umap_slot(const struct umap *m, uint64_t k)
{
	size_t i = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);

	while (m->keys[i] && m->keys[i] != k)
		i = (i + 1) & (m->cap - 1);
	return i;
}

void **umap_get(const struct umap *m, uint64_t k)
{
	if (!m->cap)
		return NULL;
	size_t i = umap_slot(m, k);
	return m->keys[i] ? &m->vals[i] : NULL;
}

/* Insert k (value NULL) if absent; *slot gets its value's place. */
int umap_put(struct umap *m, uint64_t k, void ***slot, bool *fresh)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct umap g = {.cap = m->cap ? m->cap * 2 : 64};
		g.keys = calloc(g.cap, sizeof(*g.keys));
		g.vals = calloc(g.cap, sizeof(*g.vals));
		if (!g.keys || !g.vals) {
			free(g.keys);
			free(g.vals);
			return KEEP_E_NOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->keys[i])
				continue;
			size_t j = umap_slot(&g, m->keys[i]);
			g.keys[j] = m->keys[i];
			g.vals[j] = m->vals[i];
			g.n++;
		}
		free(m->keys);
		free(m->vals);
		*m = g;
	}
	size_t i = umap_slot(m, k);
	*fresh = !m->keys[i];
	if (*fresh) {
		m->keys[i] = k;
		m->vals[i] = NULL;
		m->n++;
	}
	*slot = &m->vals[i];
	return 0;
}

void umap_free(struct umap *m, bool free_vals)
{
	for (size_t i = 0; free_vals && i < m->cap; i++)
		if (m->keys[i])
			free(m->vals[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- growable arrays ----------------------------------------------------- */

int keep_grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *g = realloc(*v, c * size);
	if (!g)
		return KEEP_E_NOMEM;
	*v = g;
	*cap = c;
	return 0;
}


