/*
 * cmd_sync.c - "keepfs sync": bring a replica (a path, or a path on
 * another host over ssh) up to date with a store's snapshots.
 *
 * The destination's state (is it a replica of this store, which
 * snapshots has it, its newest commit) comes from the hidden command
 * "sync-state", run locally or over ssh; each snapshot then goes as a
 * stream into "keepfs receive", a child process here or over ssh, written
 * by keep_send in this process.  Only the last receive applies the
 * destination's retention, so no base is pruned in between.
 *
 * sync-state prints, one per line:
 *   keepfs-sync-state 1
 *   none                          (no store at the path)
 *   store REPLICA_OF|- NEWEST     (REPLICA_OF "-": an ordinary store)
 *   snap COMMIT HEXNAME           (one per snapshot)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

const char usage_sync[] =
    "usage: keepfs sync SOURCE DEST [--ssh CMD] [--remote-keepfs PATH] "
    "[--json]\n"
    "\n"
    "Make DEST a replica holding every snapshot of the store SOURCE (a\n"
    "store path or a mount point).  DEST is a path, or\n"
    "ssh://[USER@]HOST[:PORT]/PATH for a path on another host, which must\n"
    "have keepfs.  Finds the newest snapshot both sides share and sends\n"
    "each newer snapshot as a stream of what changed since the one before\n"
    "(everything, when they share none), then applies DEST's own retention\n"
    "settings, so a backup host prunes its copies too.  A second sync with\n"
    "nothing new sends nothing.  Each stream is applied whole or not at\n"
    "all: an interrupted sync leaves DEST at the last snapshot that\n"
    "arrived, and the next sync goes on from there.  No passphrase is\n"
    "needed on either side, even for an encrypted store.\n"
    "\n"
    "options:\n"
    "   --ssh CMD             the ssh command and its options (default:\n"
    "                         $KEEPFS_SSH, else ssh), split at spaces\n"
    "   --remote-keepfs PATH  keepfs on the other host (default: keepfs)\n"
    "   --json                print what was sent as JSON\n"
    "   -h, --help            show this help\n";

const char usage_sync_state[] =
    "usage: keepfs sync-state PATH\n"
    "\n"
    "What 'keepfs sync' needs to know of a destination, for a machine.\n";

/* ---- the destination ----------------------------------------------------- */

struct dest {
	bool remote;
	char *path;		/* on the destination's host */
	char **ssh;		/* remote: argv prefix up to the host */
	size_t nssh;
	const char *keepfs;	/* remote keepfs */
};

struct snap {
	char *name;
	uint64_t commit, id;
};

struct state {
	bool exists;
	char of[64]; /* replica of; "" for an ordinary store */
	uint64_t newest;
	struct snap *v;
	size_t n, cap;
};

static void state_free(struct state *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->v[i].name);
	free(st->v);
}

static void add_snap(struct state *st, const char *name, uint64_t commit,
		     uint64_t id)
{
	if (st->n == st->cap) {
		st->cap = st->cap ? 2 * st->cap : 16;
		st->v = realloc(st->v, st->cap * sizeof(*st->v));
		if (!st->v)
			die("out of memory");
	}
	st->v[st->n++] = (struct snap){xstrdup(name), commit, id};
}

static int collect(void *ctx, const struct keep_snapshot *sn)
{
	add_snap(ctx, sn->name, sn->commit, sn->id);
	return 0;
}

/* A local store's state; EXIT_OK or a message printed. */
static int local_state(const char *path, struct state *st)
{
	struct keep_store *s = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!keep_is_store(path))
		return EXIT_OK;
	rc = keep_store_open(path, KEEP_OPEN_RDONLY, &s);
	if (!rc)
		rc = keep_replica_of(s, st->of, sizeof(st->of));
	if (!rc)
		rc = keep_snapshot_list(s, 0, collect, st);
	if (!rc)
		st->newest = keep_last_commit(s);
	keep_store_close(s);
	if (rc)
		return error("cannot read '%s': %s", path, keep_strerror(rc));
	st->exists = true;
	return EXIT_OK;
}

int cmd_sync_state(int argc, char **argv)
{
	struct state st;

	if (argc != 2)
		return usage_error("sync-state", "give one PATH");
	if (local_state(argv[1], &st) != EXIT_OK)
		return EXIT_FAILED;
	printf("keepfs-sync-state 1\n");
	if (!st.exists) {
		printf("none\n");
		return EXIT_OK;
	}
	printf("store %s %" PRIu64 "\n", st.of[0] ? st.of : "-", st.newest);
	for (size_t i = 0; i < st.n; i++) {
		printf("snap %" PRIu64 " ", st.v[i].commit);
		for (const unsigned char *p = (const unsigned char *)st.v[i].name;
		     *p; p++)
			printf("%02x", *p);
		printf("\n");
	}
	state_free(&st);
	return EXIT_OK;
}

static int unhex(const char *h, char *out, size_t len)
{
	size_t n = strlen(h);

	if (n % 2 || n / 2 >= len || n == 0)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1 || v == 0)
			return -1;
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return 0;
}

/* Single-quote s for the remote shell ssh hands the command to. */
static char *shell_quote(const char *s)
{
	size_t n = 3;
	char *out, *p;

	for (const char *c = s; *c; c++)
		n += *c == '\'' ? 4 : 1;
	out = p = xmalloc(n);
	*p++ = '\'';
	for (const char *c = s; *c; c++) {
		if (*c == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *c;
		}
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

/* argv for running "keepfs ARGS... PATH" at the destination; free with
 * free_argv. */
static char **dest_argv(const struct dest *d, const char *const *args,
			size_t nargs)
{
	size_t n = 0, cap = d->nssh + nargs + 4;
	char **v = xmalloc(cap * sizeof(*v));

	if (!d->remote) {
		v[n++] = xstrdup("/proc/self/exe");
		for (size_t i = 0; i < nargs; i++)
			v[n++] = xstrdup(args[i]);
		v[n++] = xstrdup(d->path);
	} else {
		/* ssh joins its arguments into one shell command line */
		char *cmd = shell_quote(d->keepfs);
		for (size_t i = 0; i < d->nssh; i++)
			v[n++] = xstrdup(d->ssh[i]);
		for (size_t i = 0; i < nargs; i++) {
			char *q = shell_quote(args[i]);
			char *t = xasprintf("%s %s", cmd, q);
			free(q);
			free(cmd);
			cmd = t;
		}
		char *q = shell_quote(d->path);
		v[n++] = xasprintf("%s %s", cmd, q);
		free(q);
		free(cmd);
	}
	v[n] = NULL;
	return v;
}

static void free_argv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/*
 * Start argv with a pipe to its stdin (*in_fd >= 0) or from its stdout
 * (*out_fd).  Its stdout goes to quiet ? /dev/null : ours, unless piped.
 */
static pid_t spawn(char **argv, int *in_fd, int *out_fd, bool quiet)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		if (in_fd)
			dup2(p[0], STDIN_FILENO);
		if (out_fd)
			dup2(p[1], STDOUT_FILENO);
		if (quiet && !out_fd) {
			int nul = open("/dev/null", O_WRONLY);
			if (nul >= 0)
				dup2(nul, STDOUT_FILENO);
		}
		if (out_fd) {
			int nul = open("/dev/null", O_RDONLY);
			if (nul >= 0)
				dup2(nul, STDIN_FILENO);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "keepfs: cannot run '%s': %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	if (in_fd) {
		close(p[0]);
		*in_fd = p[1];
	} else {
		close(p[1]);
		*out_fd = p[0];
	}
	return pid;
}

/* Wait for pid: its exit status, or 128 + signal. */
static int reap(pid_t pid)
{
	int ws;

	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return 255;
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	return 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
}

static int remote_state(const struct dest *d, struct state *st)
{
	const char *args[] = {"sync-state"};
	char **argv = dest_argv(d, args, 1);
	char *line = NULL, name[KEEP_SNAP_NAME_MAX + 1], hex[600];
	size_t cap = 0;
	int fd = -1, status, bad = 0, lines = 0;
	FILE *f;
	pid_t pid;

	memset(st, 0, sizeof(*st));
	pid = spawn(argv, NULL, &fd, false);
	free_argv(argv);
	if (pid < 0)
		return error("cannot run ssh: %s", strerror(errno));
	f = fdopen(fd, "r");
	while (f && getline(&line, &cap, f) > 0) {
		uint64_t a, b;
		char of[64];

		line[strcspn(line, "\n")] = '\0';
		if (lines++ == 0) {
			bad |= strcmp(line, "keepfs-sync-state 1") != 0;
		} else if (!strcmp(line, "none")) {
			st->exists = false;
		} else if (sscanf(line, "store %63s %" SCNu64, of, &a) == 2) {
			st->exists = true;
			snprintf(st->of, sizeof(st->of), "%s",
				 strcmp(of, "-") ? of : "");
			st->newest = a;
		} else if (sscanf(line, "snap %" SCNu64 " %599s", &b, hex) == 2 &&
			   unhex(hex, name, sizeof(name)) == 0) {
			add_snap(st, name, b, 0);
		} else {
			bad = 1;
		}
	}
	free(line);
	if (f)
		fclose(f);
	status = reap(pid);
	if (status != 0)
		return error("cannot read the state of '%s' on the other host "
			     "(exit status %d; see above)", d->path, status);
	if (bad || !lines)
		return error("the other host's keepfs answered something else "
			     "than its state (a different version?)");
	return EXIT_OK;
}

/* ssh://[user@]host[:port]/path */
static int parse_dest(const char *arg, const char *ssh, const char *keepfs,
		      struct dest *d)
{
	memset(d, 0, sizeof(*d));
	if (strncmp(arg, "ssh://", 6) != 0) {
		d->path = xstrdup(arg);
		return EXIT_OK;
	}
	const char *host = arg + 6, *slash = strchr(host, '/');
	if (!slash || slash == host || !slash[1])
		return usage_error("sync", "bad destination '%s': give "
					   "ssh://[USER@]HOST[:PORT]/PATH", arg);
	char *hp = strndup(host, (size_t)(slash - host)), *port = NULL;
	char *at = strrchr(hp, '@'), *colon = strrchr(at ? at : hp, ':');
	if (colon) {
		*colon = '\0';
		port = colon + 1;
		if (!*port || strspn(port, "0123456789") != strlen(port)) {
			free(hp);
			return usage_error("sync", "bad port in '%s'", arg);
		}
	}
	d->remote = true;
	d->path = xstrdup(slash);
	d->keepfs = keepfs;
	/* the ssh command, split at spaces, then -p PORT, then the host */
	char *cmd = xstrdup(ssh), *save = NULL;
	size_t cap = 8;
	d->ssh = xmalloc(cap * sizeof(*d->ssh));
	for (char *t = strtok_r(cmd, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save)) {
		if (d->nssh + 4 >= cap) {
			cap *= 2;
			d->ssh = realloc(d->ssh, cap * sizeof(*d->ssh));
			if (!d->ssh)
				die("out of memory");
		}
		d->ssh[d->nssh++] = xstrdup(t);
	}
	free(cmd);
	if (!d->nssh) {
		free(hp);
		return usage_error("sync", "--ssh is empty");
	}
	if (port) {
		d->ssh[d->nssh++] = xstrdup("-p");
		d->ssh[d->nssh++] = xstrdup(port);
	}
	d->ssh[d->nssh++] = xstrdup(hp);
	free(hp);
	return EXIT_OK;
}

static void dest_free(struct dest *d)
{
	for (size_t i = 0; i < d->nssh; i++)
		free(d->ssh[i]);
	free(d->ssh);
	free(d->path);
}

/* ---- sending one snapshot ---------------------------------------------------- */

static int send_one(struct keep_store *s, const struct dest *d,
		    const char *name, const char *base, bool last, bool json,
		    struct keep_xfer *x)
{
	const char *args[] = {"receive", "--no-prune"};
	char **argv = dest_argv(d, args, last ? 1 : 2);
	struct keep_send_req req = {.snapshot = name, .base = base};
	struct progress_fd k;
	char err[1024];
	char *verb = xasprintf("'%s': sent", name);
	int rc, status;
	pid_t pid;

	progress_init(&k.pr, verb);
	req.started = progress_started;
	req.ctx = &k;
	pid = spawn(argv, &k.fd, NULL, json);
	free_argv(argv);
	if (pid < 0) {
		free(verb);
		return error("cannot start the receiving side: %s",
			     strerror(errno));
	}
	rc = keep_send(s, &req, progress_fd_write, &k, x, err, sizeof(err));
	close(k.fd);
	progress_end(&k.pr);
	free(verb);
	status = reap(pid);
	if (rc && rc != EPIPE)
		return error("cannot send '%s': %s", name, err);
	if (status != 0)
		return error("'%s' was not received (the receiving side exited "
			     "with status %d%s); the destination keeps what it "
			     "had", name, status,
			     status == 255 && d->remote ? ": ssh failed" : "");
	if (rc)
		return error("cannot send '%s': %s", name, err);
	return EXIT_OK;
}

/* ---- the sync ------------------------------------------------------------------ */

static int by_commit(const void *a, const void *b)
{
	const struct snap *x = a, *y = b;

	if (x->commit != y->commit)
		return x->commit < y->commit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static bool dest_has(const struct state *st, const struct snap *sn)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->v[i].commit == sn->commit &&
		    !strcmp(st->v[i].name, sn->name))
			return true;
	return false;
}

int cmd_sync(int argc, char **argv)
{
	enum { OPT_SSH = 1, OPT_REMOTE, OPT_JSON };
	static const struct option longopts[] = {
	    {"ssh", required_argument, NULL, OPT_SSH},
	    {"remote-keepfs", required_argument, NULL, OPT_REMOTE},
	    {"json", no_argument, NULL, OPT_JSON},
	    {NULL, 0, NULL, 0},
	};
	const char *ssh = getenv("KEEPFS_SSH"), *rk = "keepfs";
	struct state src = {0}, dst = {0};
	struct keep_store *s = NULL;
	struct keep_stats stats;
	struct dest d = {0};
	char *store = NULL, *mnt = NULL;
	int c, json = 0, status = EXIT_FAILED, rc;
	uint64_t sent = 0, bytes = 0;

	if (!ssh || !*ssh)
		ssh = "ssh";
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SSH:
			ssh = optarg;
			break;
		case OPT_REMOTE:
			rk = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		default:
			return bad_option("sync", c, argv);
		}
	}
	if (argc - optind < 2)
		return usage_error("sync", "missing %s",
				   argc - optind ? "DEST" : "SOURCE");
	if (argc - optind > 2)
		return usage_error("sync", "too many arguments");
	rc = parse_dest(argv[optind + 1], ssh, rk, &d);
	if (rc != EXIT_OK)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		goto out;
	if (open_read(store, 0, &s) != EXIT_OK)
		goto out;
	rc = keep_stats(s, &stats);
	if (!rc)
		rc = keep_snapshot_list(s, 0, collect, &src);
	if (rc) {
		error("cannot read '%s': %s", store, keep_strerror(rc));
		goto out;
	}
	if (!src.n) {
		error("'%s' has no snapshots to send; take one with 'keepfs "
		      "snapshot'", store);
		goto out;
	}
	qsort(src.v, src.n, sizeof(*src.v), by_commit);
	if ((d.remote ? remote_state(&d, &dst) : local_state(d.path, &dst)) !=
	    EXIT_OK)
		goto out;
	if (dst.exists && !dst.of[0]) {
		error("'%s' is a store of its own, not a replica; sync into a "
		      "new path", argv[optind + 1]);
		goto out;
	}
	if (dst.exists && strcmp(dst.of, stats.uuid) != 0) {
		error("'%s' is a replica of another store (%s); '%s' is %s",
		      argv[optind + 1], dst.of, store, stats.uuid);
		goto out;
	}

	/* the base: a snapshot of the destination's newest commit */
	const char *base = NULL;
	uint64_t base_commit = 0;
	for (size_t i = 0; dst.exists && i < src.n; i++)
		if (src.v[i].commit == dst.newest) {
			base = src.v[i].name;
			base_commit = src.v[i].commit;
			if (dest_has(&dst, &src.v[i]))
				break; /* a name it has is the best base */
		}
	/* without a shared commit, a full stream of the first snapshot past
	 * what the destination has (older ones it cannot take any more) */
	uint64_t floor = base ? base_commit : dst.exists ? dst.newest + 1 : 0;
	size_t todo = 0;
	for (size_t i = 0; i < src.n; i++)
		todo += src.v[i].commit >= floor && !dest_has(&dst, &src.v[i]);
	if (!todo) {
		if (json)
			printf("{\"sent\": 0, \"bytes\": 0}\n");
		else
			printf("'%s' is up to date (newest snapshot: '%s')\n",
			       argv[optind + 1], src.v[src.n - 1].name);
		status = EXIT_OK;
		goto out;
	}
	const char *prev = base;
	size_t done = 0;
	for (size_t i = 0; i < src.n; i++) {
		const struct snap *sn = &src.v[i];
		struct keep_xfer x = {0};

		if (sn->commit < floor)
			continue;
		if (dest_has(&dst, sn)) {
			prev = sn->name;
			continue;
		}
		done++;
		if (send_one(s, &d, sn->name, prev, done == todo, json, &x) !=
		    EXIT_OK)
			goto out;
		sent++;
		bytes += x.bytes;
		prev = sn->name;
	}
	if (json)
		printf("{\"sent\": %" PRIu64 ", \"bytes\": %" PRIu64 "}\n", sent,
		       bytes);
	status = EXIT_OK;
out:
	keep_store_close(s);
	state_free(&src);
	state_free(&dst);
	dest_free(&d);
	free(store);
	free(mnt);
	return status;
}
