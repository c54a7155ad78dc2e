/*
 * fuzz_receive.c - libFuzzer harness of keep_receive: what a stream's
 * blobs and rows do to a replica (core/receive.c), beyond the record
 * format (fuzz_stream.c).
 *
 * The input is not a stream but what to make one of, so that mutations
 * reach the rows decoder instead of dying at a check:
 *   u8 mode: even, a full stream into a new replica; odd, an incremental
 *            stream onto a copy of a replica made once at start (a root
 *            with one file and one directory, commit 7)
 *   then records: u8 kind, u16 length (LE), that many bytes:
 *     even kind: a blob with those bytes (stored raw, its hash and CRC
 *                computed here);  odd kind: a rows record of those bytes.
 * Besides the sanitizers it checks that a refused stream changes nothing
 * (the replica's newest commit and files stay) and that an accepted one
 * leaves a store that opens and passes keep_check.
 *
 * Seeds: tests/fuzz/corpus-receive (made by make_receive_seeds.py).
 * Replicas are made under /dev/shm (or $TMPDIR), one per input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keep_i.h"

#define UUID "3a6b1f0c-9d2e-4c8a-b7f5-1e2d3c4b5a69"

struct mem {
	uint8_t *p;
	size_t len, cap, pos;
};

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;

	if (m->len + len > m->cap) {
		size_t cap = 2 * (m->len + len);
		uint8_t *p = realloc(m->p, cap);
		if (!p)
			return 12;
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static int mem_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct mem *m = ctx;
	size_t n = m->len - m->pos < len ? m->len - m->pos : len;

	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

static char dir[256], tmpl[300];
static unsigned long serial;

static void quiet(int level, const char *msg, void *ctx)
{
	(void)level;
	(void)msg;
	(void)ctx;
}

static void say_problem(void *ctx, const struct keep_problem *p)
{
	(void)ctx;
	fprintf(stderr, "fuzz_receive: fsck: %s\n", p->what);
}

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				char p[600];
				snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
				unlink(p);
			}
		closedir(d);
	}
	rmdir(path);
}

static void copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b;
	char buf[65536];
	size_t n;

	if (!a)
		return;
	b = fopen(to, "wb");
	while (b && (n = fread(buf, 1, sizeof(buf), a)) > 0)
		fwrite(buf, 1, n, b);
	if (b)
		fclose(b);
	fclose(a);
}

/* The stream of the input's records (after the mode byte). */
static void build(const uint8_t *data, size_t size, bool incr, struct mem *m)
{
	struct stream_header h = {
	    .store_format = KEEP_FORMAT_PLAIN,
	    .block_size = 4096,
	    .name = incr ? "next" : "first",
	    .commit = incr ? 8 : 7,
	    .commit_ns = 1795000000000000000,
	    .created_ns = 1795000000000000001,
	    .incremental = incr,
	    .base_name = "first",
	    .base_commit = 7,
	};
	struct stream_w *w = NULL;
	size_t pos = 0;

	memcpy(h.uuid, UUID, sizeof(h.uuid));
	if (stream_w_new(mem_write, m, &w) || stream_w_header(w, &h))
		goto out;
	while (pos + 3 <= size) {
		int kind = data[pos];
		size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		if (kind % 2 == 0) {
			struct stream_blob b = {.id = pos + 1,
						.size = (uint32_t)len,
						.csize = (uint32_t)len,
						.data = data + pos};
			if (len == 0 || len > 4096) {
				pos += len;
				continue;
			}
			keep_hash(data + pos, len, b.hash);
			b.crc = keep_crc32c(data + pos, len);
			if (stream_w_blob(w, &b))
				goto out;
		} else if (stream_w_rows(w, data + pos, len)) {
			goto out;
		}
		pos += len;
	}
	stream_w_end(w);
out:
	stream_w_free(w);
}

static uint64_t newest(const char *path)
{
	struct keep_store *s = NULL;
	uint64_t c = 0;

	if (keep_store_open(path, KEEP_OPEN_RDONLY, &s) == 0) {
		c = keep_last_commit(s);
		keep_store_close(s);
	}
	return c;
}

/* an INODE op (keep_i.h, enum rop) into p; its length */
static size_t put_inode(uint8_t *p, uint64_t ino, uint32_t mode,
			uint32_t nlink, uint64_t parent)
{
	size_t n = 0;
	uint64_t v32[4] = {mode, 0, 0, nlink};

	p[n++] = ROP_INODE;
	for (int i = 0; i < 8; i++)
		p[n++] = (uint8_t)(ino >> (8 * i));
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < 4; i++)
			p[n++] = (uint8_t)(v32[k] >> (8 * i));
	for (int k = 0; k < 8; k++) /* size .. nblocks 0, then parent */
		for (int i = 0; i < 8; i++)
			p[n++] = (uint8_t)(k == 7 ? parent >> (8 * i) : 0);
	p[n++] = 0; /* no link target */
	p[n++] = 0;
	return n;
}

/* a replica of the empty root at commit 7, made once */
static void make_template(void)
{
	struct keep_recv_req req = {.path = tmpl};
	struct keep_recv_result res;
	struct mem m = {0};
	uint8_t in[128];
	char err[512];
	size_t n = put_inode(in + 3, KEEP_ROOT_INO, 040755, 2, KEEP_ROOT_INO);

	in[0] = 1; /* a rows record */
	in[1] = (uint8_t)n;
	in[2] = 0;
	build(in, n + 3, false, &m);
	if (keep_receive(&req, mem_read, &m, &res, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_receive: cannot make the template: %s\n",
			err);
		abort();
	}
	free(m.p);
}

static void cleanup(void)
{
	rm_tree(tmpl);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm"
			   : getenv("TMPDIR")		    ? getenv("TMPDIR")
							    : "/tmp";
	(void)argc;
	(void)argv;
	keep_log_set_sink(quiet, NULL);
	snprintf(dir, sizeof(dir), "%s/kfs-fuzz-receive-%ld", base,
		 (long)getpid());
	mkdir(dir, 0700);
	snprintf(tmpl, sizeof(tmpl), "%s/template", dir);
	make_template();
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[400], a[600], b[600];
	struct keep_recv_req req = {.path = path};
	struct keep_recv_result res;
	struct mem m = {0};
	char err[1024];
	uint64_t before = 0;
	bool incr;

	if (size < 1)
		return 0;
	incr = data[0] & 1;
	snprintf(path, sizeof(path), "%s/r%lu", dir, serial++);
	if (incr) {
		mkdir(path, 0700);
		snprintf(a, sizeof(a), "%s/store.db", tmpl);
		snprintf(b, sizeof(b), "%s/store.db", path);
		copy_file(a, b);
		snprintf(a, sizeof(a), "%s/store.db-wal", tmpl);
		snprintf(b, sizeof(b), "%s/store.db-wal", path);
		copy_file(a, b);
		before = newest(path);
	}
	build(data + 1, size - 1, incr, &m);
	int rc = keep_receive(&req, mem_read, &m, &res, err, sizeof(err));
	if (rc) {
		/* a refusal has a message and changes nothing */
		if (!err[0])
			__builtin_trap();
		if (incr && newest(path) != before)
			__builtin_trap();
		if (!incr && access(path, F_OK) == 0)
			__builtin_trap();
	} else {
		struct keep_store *s = NULL;
		uint64_t problems = 0;

		if (keep_store_open(path, KEEP_OPEN_RDONLY, &s) != 0)
			__builtin_trap();
		keep_check(s, 0, say_problem, NULL, &problems);
		keep_store_close(s);
		if (problems)
			__builtin_trap();
	}
	rm_tree(path);
	free(m.p);
	return 0;
}
