/*
 * test_send.c - keep_send and keep_receive: a full stream and ten
 * incremental ones of a tree under random changes (files, holes, renames,
 * links, xattrs, symlinks, removals) make a replica whose every snapshot
 * lists exactly as the source's; the same stream twice; damaged, cut,
 * foreign and out-of-order streams refused with the replica unchanged and
 * no new replica left behind; an encrypted store's replica holds no
 * plaintext and opens with the source's key; promote.
 */
#include <dirent.h>
#include <stdbool.h>

#include "unit_tree.h"

struct mem {
	uint8_t *p;
	size_t len, cap;
	size_t pos; /* reading */
	size_t cut; /* reading: stop here (0: at len) */
};

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;

	if (m->len + len > m->cap) {
		m->cap = (m->len + len) * 2;
		m->p = realloc(m->p, m->cap);
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static int mem_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct mem *m = ctx;
	size_t end = m->cut ? m->cut : m->len;
	size_t n = end - m->pos < len ? end - m->pos : len;

	if (n > 4099)
		n = 4099; /* pieces that do not line up with records */
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

static char err[1024];

static int send(struct keep_store *s, const char *snap, const char *base,
		struct mem *m, struct keep_xfer *x)
{
	struct keep_send_req req = {.snapshot = snap, .base = base};

	free(m->p);
	*m = (struct mem){0};
	return keep_send(s, &req, mem_write, m, x, err, sizeof(err));
}

static int receive(const char *name, struct mem *m, size_t cut,
		   struct keep_recv_result *res)
{
	struct keep_recv_req req = {.path = unit_path(name)};
	struct keep_recv_result tmp;

	m->pos = 0;
	m->cut = cut;
	return keep_receive(&req, mem_read, m, res ? res : &tmp, err,
			    sizeof(err));
}

static struct keep_store *open_ro(const char *name)
{
	struct keep_store *r = NULL;
	int rc = keep_store_open(unit_path(name), KEEP_OPEN_RDONLY, &r);

	if (rc) {
		printf("Bail out! open %s: %s\n", name, keep_strerror(rc));
		exit(1);
	}
	return r;
}

/* Every snapshot of src named in names[0..n) lists the same on the
 * replica; and the replica's live tree is the newest. */
static bool same_views(struct keep_store *src, const char *rep_name,
		       char names[][16], int n)
{
	struct keep_store *r = open_ro(rep_name);
	bool same = true;

	for (int i = 0; i < n; i++) {
		struct keep_snapshot a, b;
		if (keep_snapshot_get(src, names[i], &a) ||
		    keep_snapshot_get(r, names[i], &b) || a.commit != b.commit) {
			diag("snapshot %s missing or of another commit",
			     names[i]);
			same = false;
			continue;
		}
		char *la = listing(src, a.commit, NULL, true, NULL);
		char *lb = listing(r, b.commit, NULL, true, NULL);
		if (strcmp(la, lb)) {
			diag("%s differs:\n--- source\n%s--- replica\n%s",
			     names[i], la, lb);
			same = false;
		}
		if (i == n - 1) {
			char *live = listing(r, KEEP_LIVE, NULL, true, NULL);
			if (strcmp(la, live)) {
				diag("the replica's live tree is not %s",
				     names[i]);
				same = false;
			}
			free(live);
		}
		free(la);
		free(lb);
	}
	if (problems(r)) {
		diag("fsck finds problems in the replica");
		same = false;
	}
	keep_store_close(r);
	return same;
}

static uint64_t newest(const char *name)
{
	struct keep_store *r = open_ro(name);
	uint64_t c = keep_last_commit(r);

	keep_store_close(r);
	return c;
}

static int entries_like(const char *prefix)
{
	DIR *d = opendir(unit_dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) != NULL)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	if (d)
		closedir(d);
	return n;
}

static void build(struct keep_store *s, uint64_t *dirs, size_t *ndirs)
{
	uint8_t big[50000];
	struct keep_attr a;

	unit_fill_random(big, sizeof(big));
	uint64_t d = unit_mkdir(s, KEEP_ROOT_INO, "state");
	uint64_t f = unit_file(s, d, "memory.jsonl", big, sizeof(big));
	unit_file(s, d, "mcp.json", "{\"a\":1}\n", 8);
	unit_file(s, KEEP_ROOT_INO, "copy", big, sizeof(big)); /* dedup */
	keep_link(s, f, KEEP_ROOT_INO, "hard", NULL);
	keep_setxattr(s, f, "user.k", "v1", 2, 0);
	keep_setxattr(s, d, "user.empty", "", 0, 0);
	keep_symlink(s, d, "link", "memory.jsonl", unit_cred(), &a);
	keep_mknod(s, d, "fifo", S_IFIFO | 0600, 0, unit_cred(), &a);
	uint64_t sp = unit_file(s, KEEP_ROOT_INO, "sparse", "", 0);
	keep_write(s, sp, 1 << 20, "end", 3); /* a hole, then 3 bytes */
	dirs[(*ndirs)++] = KEEP_ROOT_INO;
	dirs[(*ndirs)++] = d;
}

static void t_replica(void)
{
	struct keep_store *s = unit_store("src", 4096);
	struct keep_recv_result res;
	struct keep_xfer x, full;
	struct mem m = {0}, keep = {0};
	char names[12][16];
	uint64_t dirs[300];
	size_t ndirs = 0;
	int rc;

	build(s, dirs, &ndirs);
	snprintf(names[0], sizeof(names[0]), "s0");
	ok(keep_snapshot_create(s, names[0], KEEP_ORIGIN_MANUAL, NULL) == 0,
	   "snapshot s0");
	rc = send(s, "s0", NULL, &m, &full);
	ok(rc == 0, "a full stream of s0 (%s)", err);
	diag("full: %" PRIu64 " bytes, %" PRIu64 " blobs, %" PRIu64 " rows",
	     full.bytes, full.blobs, full.rows);
	ok(full.bytes == m.len && full.blobs > 0, "its totals count it");
	rc = receive("rep", &m, 0, &res);
	ok(rc == 0 && res.created && !res.already,
	   "received into a new replica (%s)", err);
	ok(same_views(s, "rep", names, 1), "s0 lists the same on the replica");
	ok(res.xfer.blobs == full.blobs && res.xfer.new_blobs == full.blobs,
	   "every blob was new to it");

	/* the copy of memory.jsonl shares its blobs: each went once */
	struct keep_stats st;
	keep_stats(s, &st);
	is_int(full.blobs, st.blobs, "a blob used twice went once");

	struct keep_store *r = open_ro("rep");
	char of[64];
	ok(keep_replica_of(r, of, sizeof(of)) == 0 && !strcmp(of, st.uuid),
	   "the replica knows its source");
	keep_store_close(r);

	for (int i = 1; i <= 10; i++) {
		for (int k = 0; k < 40; k++)
			random_op(s, dirs, &ndirs);
		snprintf(names[i], sizeof(names[i]), "s%d", i);
		keep_snapshot_create(s, names[i], KEEP_ORIGIN_MANUAL, NULL);
		rc = send(s, names[i], names[i - 1], &m, &x);
		if (rc)
			diag("send %s: %s", names[i], err);
		rc = rc ? rc : receive("rep", &m, 0, &res);
		if (rc)
			diag("receive %s: %s", names[i], err);
		if (i == 5)
			diag("incremental: %" PRIu64 " bytes, %" PRIu64
			     " blobs, %" PRIu64 " rows, %" PRIu64 " objects",
			     x.bytes, x.blobs, x.rows, x.objects);
		if (i == 10) {
			free(keep.p);
			keep = m;
			keep.p = malloc(m.len);
			memcpy(keep.p, m.p, m.len);
		}
	}
	ok(rc == 0, "ten incremental streams received");
	ok(same_views(s, "rep", names, 11),
	   "every snapshot lists the same on the replica");
	r = open_ro("rep");
	int times = 0;
	for (int i = 0; i <= 10; i++) {
		struct keep_snapshot a, b;
		struct keep_commit_info ca, cb;
		times += keep_snapshot_get(s, names[i], &a) == 0 &&
			 keep_snapshot_get(r, names[i], &b) == 0 &&
			 keep_commit_get(s, a.commit, &ca) == 0 &&
			 keep_commit_get(r, b.commit, &cb) == 0 &&
			 ca.time_ns == cb.time_ns && a.created_ns == b.created_ns;
	}
	is_int(times, 11, "the replica's commits and snapshots have the "
			  "source's times");
	keep_store_close(r);

	/* twice */
	uint64_t before = newest("rep");
	rc = receive("rep", &keep, 0, &res);
	ok(rc == 0 && res.already == 1, "the same stream again: harmless");
	is_int(newest("rep"), before, "and nothing was committed");

	/* damaged and cut streams change nothing */
	for (int i = 0; i < 4; i++)
		random_op(s, dirs, &ndirs);
	unit_file(s, KEEP_ROOT_INO, "late", "late", 4);
	keep_snapshot_create(s, "s11", KEEP_ORIGIN_MANUAL, NULL);
	snprintf(names[11], sizeof(names[11]), "s11");
	ok(send(s, "s11", "s10", &m, &x) == 0, "s11 from s10");
	char *was = listing(s, 0, NULL, true, NULL);
	free(was);
	int refused = 0, tries = 0;
	for (size_t off = 0; off < m.len; off += 1 + m.len / 97) {
		m.p[off] ^= 0x20;
		rc = receive("rep", &m, 0, NULL);
		m.p[off] ^= 0x20;
		tries++;
		refused += rc == KEEP_E_CORRUPT;
		if (rc != KEEP_E_CORRUPT)
			diag("flip at %zu: rc %d %s", off, rc, err);
	}
	is_int(refused, tries, "%d damaged copies are refused", tries);
	for (size_t cut = 1; cut < m.len; cut += 1 + m.len / 37) {
		rc = receive("rep", &m, cut, NULL);
		if (rc != KEEP_E_CORRUPT) {
			diag("cut at %zu: rc %d %s", cut, rc, err);
			break;
		}
	}
	ok(rc == KEEP_E_CORRUPT, "cut copies are refused: %s", err);
	is_int(newest("rep"), before, "the replica is as it was");
	ok(same_views(s, "rep", names, 11), "and lists as before");
	ok(receive("rep", &m, 0, &res) == 0 && !res.already,
	   "the good copy then applies");
	ok(same_views(s, "rep", names, 12), "and s11 lists the same");

	/* out of order and missing bases; two names of one commit */
	unit_file(s, KEEP_ROOT_INO, "x12", "x", 1);
	keep_snapshot_create(s, "s12", KEEP_ORIGIN_MANUAL, NULL);
	keep_snapshot_create(s, "s12b", KEEP_ORIGIN_MANUAL, NULL);
	unit_file(s, KEEP_ROOT_INO, "later", "x", 1);
	keep_snapshot_create(s, "s13", KEEP_ORIGIN_MANUAL, NULL);
	send(s, "s13", "s12", &m, NULL);
	rc = receive("rep", &m, 0, NULL);
	ok(rc == ENOENT && strstr(err, "which") && strstr(err, "'s12'"),
	   "a base the replica lacks: %s", err);
	send(s, "s10", "s9", &m, NULL);
	rc = receive("rep", &m, 0, &res);
	ok(rc == 0 && res.already == 1, "an older stream it has: harmless");
	send(s, "s12", "s11", &m, NULL);
	ok(receive("rep", &m, 0, &res) == 0, "s12 from s11 (%s)", err);
	send(s, "s12b", "s12", &m, &x);
	ok(x.blobs == 0 && x.rows == 0, "a stream between two names of one "
					"commit is empty");
	rc = receive("rep", &m, 0, &res);
	ok(rc == 0 && res.already == 2, "a second name of a commit it has");
	r = open_ro("rep");
	struct keep_snapshot a, b;
	ok(keep_snapshot_get(r, "s12b", &a) == 0 &&
		   keep_snapshot_get(r, "s12", &b) == 0 && a.commit == b.commit,
	   "is added as a name");
	keep_store_close(r);
	send(s, "s11", NULL, &m, NULL);
	rc = receive("rep", &m, 0, NULL);
	ok(rc == 0, "a full stream of an older snapshot it has: harmless");
	keep_snapshot_delete(s, "s11");
	keep_snapshot_create(s, "s11", KEEP_ORIGIN_MANUAL, NULL);
	send(s, "s11", "s10", &m, NULL);
	rc = receive("rep", &m, 0, NULL);
	ok(rc == EEXIST && strstr(err, "another commit"),
	   "a name it has for another commit: %s", err);
	send(s, "s13", "s12", &m, NULL);
	ok(receive("rep", &m, 0, &res) == 0, "s13 from s12 (%s)", err);

	/* a foreign stream */
	struct keep_store *o = unit_store("other", 4096);
	keep_snapshot_create(o, "s1", KEEP_ORIGIN_MANUAL, NULL);
	send(o, "s1", NULL, &m, NULL);
	rc = receive("rep", &m, 0, NULL);
	ok(rc == EEXIST && strstr(err, "replica of another store"),
	   "a stream of another store: %s", err);
	keep_store_close(o);
	send(s, "s13", NULL, &m, NULL);
	rc = receive("other", &m, 0, NULL);
	ok(rc == EEXIST && strstr(err, "not a replica"),
	   "a stream into an ordinary store: %s", err);

	/* a new replica from a damaged stream is not made */
	send(s, "s12", NULL, &m, NULL);
	m.p[m.len / 2] ^= 1;
	rc = receive("rep2", &m, 0, NULL);
	ok(rc == KEEP_E_CORRUPT, "a damaged full stream: %s", err);
	is_int(entries_like("rep2"), 0, "leaves no replica");
	is_int(entries_like(".rep2"), 0, "and nothing hidden");
	m.p[m.len / 2] ^= 1;
	rc = receive("rep2", &m, 0, &res);
	ok(rc == 0 && res.created, "the good copy makes it");

	/* a full stream into a replica that has older snapshots */
	unit_file(s, KEEP_ROOT_INO, "full", "f", 1);
	keep_snapshot_create(s, "s14", KEEP_ORIGIN_MANUAL, NULL);
	send(s, "s14", NULL, &m, NULL);
	rc = receive("rep", &m, 0, &res);
	ok(rc == 0 && !res.already, "a full stream onto older snapshots (%s)", err);
	ok(res.xfer.new_blobs < res.xfer.blobs,
	   "it stores only the blobs the replica lacked (%" PRIu64 " of %"
	   PRIu64 ")", res.xfer.new_blobs, res.xfer.blobs);
	snprintf(names[0], sizeof(names[0]), "s14");
	ok(same_views(s, "rep", names, 1), "s14 lists the same");

	/* promote */
	r = NULL;
	ok(keep_store_open(unit_path("rep"), KEEP_OPEN_WRITE, &r) == 0,
	   "the replica opens writable");
	struct keep_attr na;
	is_int(keep_mkdir(r, KEEP_ROOT_INO, "x", 0755, unit_cred(), &na), EROFS,
	       "its tree changes only by receive");
	struct keep_restore_req rq = {.from = keep_last_commit(r)};
	struct keep_restore_result rr;
	is_int(keep_restore(r, &rq, NULL, NULL, &rr), EROFS,
	       "a restore into it is refused");
	ok(keep_promote(r) == 0, "promote");
	ok(keep_replica_of(r, of, sizeof(of)) == 0 && !of[0],
	   "it is no replica now");
	unit_file(r, KEEP_ROOT_INO, "mine", "m", 1);
	keep_store_close(r);
	unit_file(s, KEEP_ROOT_INO, "next", "n", 1);
	keep_snapshot_create(s, "s15", KEEP_ORIGIN_MANUAL, NULL);
	send(s, "s15", "s14", &m, NULL);
	rc = receive("rep", &m, 0, NULL);
	ok(rc == EEXIST && strstr(err, "store of its own"),
	   "nothing more is received into it: %s", err);

	/* bad requests */
	ok(send(s, "nosuch", NULL, &m, NULL) == ENOENT &&
		   strstr(err, "no snapshot 'nosuch'"),
	   "send of an unknown snapshot: %s", err);
	ok(send(s, "s1", "s2", &m, NULL) == EINVAL &&
		   strstr(err, "is newer than"),
	   "a base that is newer: %s", err);

	free(m.p);
	free(keep.p);
	keep_store_close(s);
}

static bool file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	size_t n = strlen(needle), len = 0;
	char *buf = NULL;
	bool found = false;

	if (!f)
		return false;
	buf = malloc(64 << 20);
	len = fread(buf, 1, 64 << 20, f);
	fclose(f);
	found = memmem(buf, len, needle, n) != NULL;
	free(buf);
	return found;
}

static void t_encrypted(void)
{
	uint8_t key[KEEP_KEYFILE_BYTES];
	struct keep_secret sec = {KEEP_SECRET_KEYFILE, key, sizeof(key)};
	struct keep_init_opts o = {.block_size = 4096, .encrypt = &sec};
	struct keep_store *s = NULL, *r = NULL;
	struct keep_recv_result res;
	struct mem m = {0};
	const char *marker = "PLAINTEXT-MARKER-4d1f6e";
	char text[600];

	unit_fill_random(key, sizeof(key));
	for (size_t i = 0; i + strlen(marker) < sizeof(text); i += strlen(marker))
		memcpy(text + i, marker, strlen(marker));
	ok(keep_store_init(unit_path("esrc"), &o) == 0 &&
		   keep_store_open_secret(unit_path("esrc"), KEEP_OPEN_WRITE,
					  &sec, &s) == 0,
	   "an encrypted store");
	unit_file(s, KEEP_ROOT_INO, "secret.txt", text, sizeof(text));
	keep_snapshot_create(s, "e1", KEEP_ORIGIN_MANUAL, NULL);
	keep_store_close(s);

	/* sent from a handle without the key */
	ok(keep_store_open(unit_path("esrc"), KEEP_OPEN_RDONLY, &s) == 0,
	   "opened without its key");
	ok(send(s, "e1", NULL, &m, NULL) == 0, "sent (%s)", err);
	ok(!memmem(m.p, m.len, marker, strlen(marker)),
	   "the stream holds no plaintext");
	ok(receive("erep", &m, 0, &res) == 0 && res.info.encrypted,
	   "received without the key (%s)", err);
	keep_store_close(s);
	ok(!file_has(unit_path("erep/store.db"), marker) &&
		   !file_has(unit_path("erep/store.db-wal"), marker),
	   "the replica holds no plaintext");
	int kind = 0;
	ok(keep_store_encrypted(unit_path("erep"), &kind) == 0 &&
		   kind == KEEP_SECRET_KEYFILE,
	   "the replica is encrypted, opened by the key file");
	ok(keep_store_open_secret(unit_path("erep"), KEEP_OPEN_RDONLY, &sec,
				  &r) == 0,
	   "it opens with the source's key");
	struct keep_attr a;
	char back[600];
	size_t got = 0;
	ok(r && keep_lookup(r, KEEP_LIVE, KEEP_ROOT_INO, "secret.txt", &a) == 0 &&
		   keep_read(r, KEEP_LIVE, a.ino, 0, sizeof(back), back, &got) ==
			   0 &&
		   got == sizeof(text) && !memcmp(back, text, got),
	   "and reads the file");
	keep_store_close(r);
	free(m.p);
}

int main(void)
{
	unit_begin("send");
	t_replica();
	t_encrypted();
	is_int(unit_log_problems, 0, "core logged no errors or warnings");
	unit_end();
	return 0;
}
