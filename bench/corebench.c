/*
 * corebench.c - the versioned store (core/) on its own, without FUSE.
 *
 * usage: corebench STORE WORKLOAD [--block-size N] [--page-size N] [--mb N]
 *
 * Workloads (each creates STORE afresh, except "read" and "rand", which
 * use the file "seq" made by a previous "write" into the same STORE):
 *   write   write --mb MiB (default 64) sequentially in 1 MiB pieces and
 *           commit durably
 *   read    read that file back in 1 MiB pieces
 *   rand    8192 4 KiB overwrites at random 4 KiB offsets of that file,
 *           with the commits the dirty limit makes, then a durable commit
 *   files   create 2000 files of 1 KiB in one directory, commit, look each
 *           up, unlink and forget each
 * Prints wall time and the store's size.  Wall time on a shared machine
 * is noisy; bench/blocksize.sh runs these under callgrind, whose
 * instruction counts are the same from run to run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keep.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void check(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "corebench: %s: %s\n", what, keep_strerror(rc));
		exit(1);
	}
}

/* deterministic incompressible bytes */
static void fill(uint8_t *buf, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, n - i < 8 ? n - i : 8);
	}
}

static struct keep_store *fresh(const char *path, uint32_t bs, uint32_t ps)
{
	struct keep_init_opts o = {.block_size = bs, .page_size = ps};
	struct keep_store *s;
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		exit(1);
	check(keep_store_init(path, &o), "init");
	check(keep_store_open(path, KEEP_OPEN_WRITE, &s), "open");
	return s;
}

int main(int argc, char **argv)
{
	uint32_t bs = 0, ps = 0;
	int mb = 64;
	struct keep_cred cred = {0, 0};
	struct keep_store *s;
	struct keep_attr a, d;
	struct keep_stats st;
	uint8_t *buf = malloc(1 << 20);
	double t0, t1;
	size_t n;

	if (argc < 3 || !buf) {
		fprintf(stderr, "usage: corebench STORE write|read|rand|files "
				"[--block-size N] [--page-size N] [--mb N]\n");
		return 2;
	}
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--block-size"))
			bs = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--page-size"))
			ps = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--mb"))
			mb = atoi(argv[i + 1]);
		else {
			fprintf(stderr, "corebench: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	const char *path = argv[1], *w = argv[2];

	t0 = now();
	if (!strcmp(w, "write")) {
		s = fresh(path, bs, ps);
		check(keep_mknod(s, KEEP_ROOT_INO, "seq", S_IFREG | 0644, 0, &cred,
				 &a), "create");
		for (int i = 0; i < mb; i++) {
			fill(buf, 1 << 20, (uint64_t)i);
			check(keep_write(s, a.ino, (uint64_t)i << 20, buf, 1 << 20),
			      "write");
		}
		check(keep_commit(s, NULL), "commit");
	} else if (!strcmp(w, "read") || !strcmp(w, "rand")) {
		check(keep_store_open(path, KEEP_OPEN_WRITE, &s), "open");
		check(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "seq", &a), "lookup");
		if (w[1] == 'e') {
			for (uint64_t off = 0; off < a.size; off += 1 << 20)
				check(keep_read(s, KEEP_LIVE, a.ino, off, 1 << 20, buf,
						&n), "read");
		} else {
			uint64_t x = 88172645463325252ull, pages = a.size / 4096;
			fill(buf, 1 << 20, 7);
			for (int i = 0; i < 8192; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				check(keep_write(s, a.ino, (x % pages) * 4096,
						 buf + (i % 256) * 4096, 4096), "write");
			}
			check(keep_commit(s, NULL), "commit");
		}
	} else if (!strcmp(w, "files")) {
		char name[32];
		s = fresh(path, bs, ps);
		check(keep_mkdir(s, KEEP_ROOT_INO, "d", 0755, &cred, &d), "mkdir");
		fill(buf, 1024, 1);
		for (int i = 0; i < 2000; i++) {
			snprintf(name, sizeof(name), "file%d", i);
			check(keep_mknod(s, d.ino, name, S_IFREG | 0644, 0, &cred, &a),
			      "create");
			check(keep_write(s, a.ino, 0, buf, 1024), "write");
		}
		check(keep_commit(s, NULL), "commit");
		for (int i = 0; i < 2000; i++) {
			snprintf(name, sizeof(name), "file%d", i);
			check(keep_lookup(s, KEEP_LIVE, d.ino, name, &a), "lookup");
			check(keep_unlink(s, d.ino, name), "unlink");
			keep_forget(s, a.ino);
		}
		check(keep_commit(s, NULL), "commit");
	} else {
		fprintf(stderr, "corebench: unknown workload '%s'\n", w);
		return 2;
	}
	t1 = now();
	check(keep_stats(s, &st), "stats");
	printf("%s: %.3f s, block size %u, store %.1f MiB\n", w, t1 - t0,
	       st.block_size, (double)st.db_bytes / (1 << 20));
	check(keep_store_close(s), "close");
	free(buf);
	return 0;
}
