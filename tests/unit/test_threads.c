/*
 * test_threads.c - one store used from several threads at once.
 *
 * Writer threads each rewrite their own file whole, one generation after
 * another, committing now and then; reader threads read the newest commit
 * over and over.  Every file in every view must be exactly one generation
 * (a commit is all or nothing), the live tree must end at the last
 * generation, and the store must check clean.
 */
#include <pthread.h>

#include "unit.h"

#define WRITERS 4
#define READERS 2
#define GENERATIONS 400

static struct keep_store *s;
static uint32_t bs;
static uint64_t inos[WRITERS];
static int writers_left = WRITERS;
static int errors, views_checked;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static size_t file_len(int i)
{
	return 8 + (size_t)i * bs * 3 / 2 + 123;
}

/* Generation g of file i: g in the first 8 bytes, then bytes from g. */
static void fill(int i, uint64_t g, uint8_t *p)
{
	size_t n = file_len(i), k;
	uint64_t x = (uint64_t)i * 1000003 + g * 7919 + 1;

	memcpy(p, &g, 8);
	for (k = 8; k < n; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[k] = (uint8_t)x;
	}
}

static void fail(const char *what, int i, uint64_t v)
{
	pthread_mutex_lock(&mu);
	errors++;
	if (errors < 10)
		diag("%s: file %d view %" PRIu64, what, i, v);
	pthread_mutex_unlock(&mu);
}

static void *writer(void *arg)
{
	int i = (int)(intptr_t)arg;
	uint8_t *buf = malloc(file_len(i)), *back = malloc(file_len(i));
	uint64_t g;
	size_t n;

	for (g = 1; g <= GENERATIONS; g++) {
		fill(i, g, buf);
		if (keep_write(s, inos[i], 0, buf, file_len(i)) != 0)
			fail("write", i, 0);
		if (keep_read(s, KEEP_LIVE, inos[i], 0, file_len(i), back,
			      &n) != 0 ||
		    n != file_len(i) || memcmp(back, buf, n) != 0)
			fail("live read after write", i, 0);
		if (g % 10 == (uint64_t)i && keep_commit(s, NULL) != 0)
			fail("commit", i, 0);
	}
	pthread_mutex_lock(&mu);
	writers_left--;
	pthread_mutex_unlock(&mu);
	free(buf);
	free(back);
	return NULL;
}

static void *reader(void *arg)
{
	uint8_t *buf = malloc(file_len(WRITERS) + 1);
	uint8_t *want = malloc(file_len(WRITERS) + 1);
	int left;

	(void)arg;
	do {
		uint64_t v = keep_last_commit(s);
		int i;

		pthread_mutex_lock(&mu);
		left = writers_left;
		pthread_mutex_unlock(&mu);
		if (!v)
			continue;
		for (i = 0; i < WRITERS; i++) {
			struct keep_attr a;
			uint64_t g;
			size_t n = 0;

			if (keep_getattr(s, v, inos[i], &a) != 0) {
				fail("getattr", i, v);
				continue;
			}
			if (a.size == 0)
				continue; /* not written yet in this view */
			if (a.size != file_len(i) ||
			    keep_read(s, v, inos[i], 0, file_len(i) + 1, buf,
				      &n) != 0 ||
			    n != file_len(i)) {
				fail("size or read", i, v);
				continue;
			}
			memcpy(&g, buf, 8);
			fill(i, g, want);
			if (g < 1 || g > GENERATIONS || memcmp(buf, want, n) != 0)
				fail("content is not one generation", i, v);
		}
		pthread_mutex_lock(&mu);
		views_checked++;
		pthread_mutex_unlock(&mu);
	} while (left > 0);
	free(buf);
	free(want);
	return NULL;
}

int main(void)
{
	pthread_t w[WRITERS], r[READERS];
	char name[16];
	uint8_t *want;
	int i;

	unit_begin("threads");
	s = unit_store("t", KEEP_MIN_BLOCK_SIZE);
	bs = keep_store_block_size(s);
	for (i = 0; i < WRITERS; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		inos[i] = unit_file(s, KEEP_ROOT_INO, name, NULL, 0);
	}
	keep_commit(s, NULL);
	for (i = 0; i < READERS; i++)
		pthread_create(&r[i], NULL, reader, NULL);
	for (i = 0; i < WRITERS; i++)
		pthread_create(&w[i], NULL, writer, (void *)(intptr_t)i);
	for (i = 0; i < WRITERS; i++)
		pthread_join(w[i], NULL);
	for (i = 0; i < READERS; i++)
		pthread_join(r[i], NULL);
	is_int(errors, 0,
	       "%d writers and %d readers: every view holds whole generations "
	       "(%d views checked)",
	       WRITERS, READERS, views_checked);
	is_int(keep_commit(s, NULL), 0, "final commit");
	want = malloc(file_len(WRITERS));
	for (i = 0; i < WRITERS; i++) {
		fill(i, GENERATIONS, want);
		ok(unit_same(s, KEEP_LIVE, inos[i], want, file_len(i)),
		   "file %d ends at the last generation", i);
	}
	s = unit_reopen(s, "t", KEEP_OPEN_RDONLY);
	{
		uint64_t problems = 99;

		is_int(keep_check(s, 1, NULL, NULL, &problems), 0,
		       "keep_check with data is clean");
	}
	keep_store_close(s);
	free(want);
	is_int(unit_log_problems, 0, "no errors or warnings were logged");
	unit_end();
	return tap_done();
}
