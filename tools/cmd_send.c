/*
 * cmd_send.c - "keepfs send", "keepfs receive" and "keepfs promote":
 * off-site copies of a store's snapshots as streams, and replicas.
 *
 * send reads the store read-only (it works on a mounted store, and on an
 * encrypted one without its secret: blobs travel as stored).  receive
 * opens the replica for writing (not while it is mounted).  Both show
 * progress on a terminal (stderr) and stay quiet otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

const char usage_send[] =
    "usage: keepfs send TARGET SNAPSHOT [--from BASE] [-o FILE] [--json]\n"
    "\n"
    "Write SNAPSHOT as a stream, to standard output or FILE, for 'keepfs\n"
    "receive' on another disk or host.  The stream holds the store's\n"
    "identity and the snapshot's, the data blocks the receiver needs\n"
    "exactly as the store keeps them (compressed, and for an encrypted\n"
    "store still encrypted: the receiving side never sees file contents\n"
    "and needs no passphrase), the snapshot's metadata, and an end record;\n"
    "every record is checksummed.  With --from only what changed since the\n"
    "older snapshot BASE goes, and only data BASE does not have.  Works on\n"
    "a mounted store, and on an encrypted one without its secret.\n"
    "\n"
    "  keepfs send /var/lib/keepfs/agent nightly | ssh backup keepfs receive /srv/agent\n"
    "\n"
    "options:\n"
    "   --from BASE    send only the changes since snapshot BASE, which the\n"
    "                  receiver has as its newest snapshot\n"
    "   -o FILE        write the stream to FILE (made mode 0600; removed\n"
    "                  again if the send fails)\n"
    "   --json         print the totals as JSON on standard output (needs\n"
    "                  -o)\n"
    "   -h, --help     show this help\n";

const char usage_receive[] =
    "usage: keepfs receive STORE [-i FILE] [--json] [--no-prune]\n"
    "\n"
    "Read a stream written by 'keepfs send' from standard input (or FILE),\n"
    "check it and apply it: STORE becomes a replica of the stream's store\n"
    "(made when it does not exist) and gets the snapshot, as one commit.\n"
    "Nothing changes unless the whole stream arrived intact: a cut, damaged\n"
    "or foreign stream leaves STORE exactly as it was (and makes no new\n"
    "replica).  A stream with --from needs its BASE as the replica's newest\n"
    "snapshot.  Receiving a snapshot the replica has is harmless and says\n"
    "so.  Then the replica's own retention settings are applied (see\n"
    "'keepfs config'; manual snapshots are kept) and what they no longer\n"
    "keep is collected.  A replica mounts read-only; 'keepfs promote' makes\n"
    "it an ordinary store.  No passphrase is needed, even for an encrypted\n"
    "store's replica.\n"
    "\n"
    "options:\n"
    "   -i FILE        read the stream from FILE\n"
    "   --json         print what was received as JSON\n"
    "   --no-prune     do not apply retention or collect garbage\n"
    "   -h, --help     show this help\n";

const char usage_promote[] =
    "usage: keepfs promote STORE\n"
    "\n"
    "Make the replica STORE an ordinary, writable store, to use it in place\n"
    "of a lost or damaged one: it mounts read-write from now on and nothing\n"
    "more can be received into it.  Its snapshots, history and settings\n"
    "stay.  Not while it is mounted.\n"
    "\n"
    "options:\n"
    "   -h, --help     show this help\n";

/* ---- send ------------------------------------------------------------------- */

static void json_xfer(const struct keep_xfer *x)
{
	printf("\"bytes\": %" PRIu64 ", \"blobs\": %" PRIu64
	       ", \"blob_bytes\": %" PRIu64 ", \"rows\": %" PRIu64
	       ", \"objects\": %" PRIu64,
	       x->bytes, x->blobs, x->blob_bytes, x->rows, x->objects);
}

int cmd_send(int argc, char **argv)
{
	enum { OPT_FROM = 1, OPT_JSON };
	static const struct option longopts[] = {
	    {"from", required_argument, NULL, OPT_FROM},
	    {"json", no_argument, NULL, OPT_JSON},
	    {NULL, 0, NULL, 0},
	};
	const char *from = NULL, *file = NULL, *target, *snap;
	struct keep_send_req req = {0};
	struct keep_store *s = NULL;
	struct keep_xfer x;
	struct progress_fd k = {.fd = STDOUT_FILENO};
	char *store = NULL, *mnt = NULL, err[1024];
	int c, json = 0, status = EXIT_FAILED, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_FROM:
			from = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case 'o':
			file = optarg;
			break;
		default:
			return bad_option("send", c, argv);
		}
	}
	if (argc - optind < 2)
		return usage_error("send", "missing %s",
				   argc - optind ? "SNAPSHOT" : "TARGET");
	if (argc - optind > 2)
		return usage_error("send", "too many arguments");
	target = argv[optind];
	snap = argv[optind + 1];
	if (json && !file)
		return usage_error("send", "--json needs -o FILE: the stream "
					   "goes to standard output");
	if (!file && isatty(STDOUT_FILENO))
		return usage_error("send", "standard output is a terminal; "
					   "pipe the stream into 'keepfs "
					   "receive' or give -o FILE");
	if (resolve_target(target, &store, &mnt) != EXIT_OK)
		goto out;
	if (open_read(store, 0, &s) != EXIT_OK)
		goto out;
	if (file) {
		k.fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (k.fd < 0) {
			error("cannot create '%s': %s%s", file, strerror(errno),
			      errno == EEXIST ? " (remove it first)" : "");
			goto out;
		}
	}
	signal(SIGPIPE, SIG_IGN); /* a reader that goes away is an error */
	progress_init(&k.pr, "sent");
	req.snapshot = snap;
	req.base = from;
	req.started = progress_started;
	req.ctx = &k;
	rc = keep_send(s, &req, progress_fd_write, &k, &x, err, sizeof(err));
	progress_end(&k.pr);
	if (!rc && file && (fsync(k.fd) != 0 || close(k.fd) != 0)) {
		rc = errno;
		snprintf(err, sizeof(err), "cannot write '%s': %s", file,
			 strerror(rc));
		k.fd = -1;
	} else if (file) {
		close(k.fd);
		k.fd = -1;
	}
	if (rc) {
		if (rc == EPIPE)
			error("the receiving side stopped reading (broken pipe); "
			      "see its message");
		else
			error("cannot send '%s' of '%s': %s", snap, store, err);
		if (file)
			unlink(file);
		goto out;
	}
	if (json) {
		printf("{\"snapshot\": ");
		json_string(snap);
		printf(", \"from\": ");
		if (from)
			json_string(from);
		else
			printf("null");
		printf(", ");
		json_xfer(&x);
		printf("}\n");
	}
	status = EXIT_OK;
out:
	keep_store_close(s);
	free(store);
	free(mnt);
	return status;
}

/* ---- receive ---------------------------------------------------------------- */

struct source {
	int fd;
	struct progress pr;
};

static int source_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct source *r = ctx;
	ssize_t n;

	do
		n = read(r->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	*got = (size_t)n;
	r->pr.done += (uint64_t)n;
	progress_show(&r->pr, false);
	return 0;
}

static void recv_started(void *ctx, const struct keep_stream_info *info)
{
	struct source *r = ctx;

	r->pr.total = info->expect_bytes;
	r->pr.ready = true;
}

static const char *err_hint(int rc)
{
	if (rc == KEEP_E_CORRUPT)
		return "; nothing was changed";
	return "";
}

int cmd_receive(int argc, char **argv)
{
	enum { OPT_JSON = 1, OPT_NO_PRUNE };
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {"no-prune", no_argument, NULL, OPT_NO_PRUNE},
	    {NULL, 0, NULL, 0},
	};
	struct keep_recv_req req = {.flags = KEEP_RECV_PRUNE};
	struct keep_recv_result res;
	struct source src = {.fd = STDIN_FILENO};
	const char *file = NULL, *path;
	char err[1024], a[32];
	int c, json = 0, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":i:", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			file = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_NO_PRUNE:
			req.flags &= ~(unsigned)KEEP_RECV_PRUNE;
			break;
		default:
			return bad_option("receive", c, argv);
		}
	}
	if (optind >= argc)
		return usage_error("receive", "missing STORE");
	if (argc - optind > 1)
		return usage_error("receive", "too many arguments");
	path = argv[optind];
	if (!file && isatty(STDIN_FILENO))
		return usage_error("receive", "standard input is a terminal; "
					      "pipe a stream from 'keepfs send' "
					      "or give -i FILE");
	if (file) {
		src.fd = open(file, O_RDONLY | O_CLOEXEC);
		if (src.fd < 0)
			return error("cannot open '%s': %s", file,
				     strerror(errno));
	}
	progress_init(&src.pr, "received");
	req.path = path;
	req.started = recv_started;
	req.ctx = &src;
	rc = keep_receive(&req, source_read, &src, &res, err, sizeof(err));
	progress_end(&src.pr);
	if (file)
		close(src.fd);
	if (rc)
		return error("cannot receive into '%s': %s%s", path, err,
			     err_hint(rc));
	if (json) {
		printf("{\"store\": ");
		json_string(path);
		printf(", \"snapshot\": ");
		json_string(res.info.name);
		printf(", \"commit\": %" PRIu64 ", \"from\": ", res.info.commit);
		if (res.info.incremental)
			json_string(res.info.base);
		else
			printf("null");
		printf(", \"created\": %s, \"already\": %s, \"new_blobs\": %"
		       PRIu64 ", \"pruned\": %" PRIu64 ", ",
		       res.created ? "true" : "false",
		       res.already ? "true" : "false", res.xfer.new_blobs,
		       res.pruned);
		json_xfer(&res.xfer);
		printf("}\n");
		return EXIT_OK;
	}
	if (res.already == 1) {
		printf("'%s' already has snapshot '%s'; nothing to do\n", path,
		       res.info.name);
		return EXIT_OK;
	}
	if (res.already == 2) {
		printf("'%s' already had the commit of snapshot '%s'; the name "
		       "was added\n", path, res.info.name);
		return EXIT_OK;
	}
	printf("received snapshot '%s'", res.info.name);
	if (res.info.incremental)
		printf(" (changes since '%s')", res.info.base);
	printf(" into %s'%s': %s, %" PRIu64 " data block%s (%" PRIu64
	       " new)\n",
	       res.created ? "the new replica " : "", path,
	       human_bytes(res.xfer.bytes, a, sizeof(a)), res.xfer.blobs,
	       res.xfer.blobs == 1 ? "" : "s", res.xfer.new_blobs);
	if (res.pruned || res.gc.commits)
		printf("retention deleted %" PRIu64 " snapshot%s; %s given "
		       "back\n", res.pruned, res.pruned == 1 ? "" : "s",
		       human_bytes(res.gc.page_bytes, a, sizeof(a)));
	return EXIT_OK;
}

/* ---- promote ---------------------------------------------------------------- */

int cmd_promote(int argc, char **argv)
{
	struct keep_store *s = NULL;
	char *store = NULL, *mnt = NULL, of[64];
	pid_t pid;
	int c, status = EXIT_FAILED, rc;

	opterr = 0;
	optind = 1;
	static const struct option none[] = {{NULL, 0, NULL, 0}};

	while ((c = getopt_long(argc, argv, ":", none, NULL)) != -1)
		return bad_option("promote", c, argv);
	if (optind >= argc)
		return usage_error("promote", "missing STORE");
	if (argc - optind > 1)
		return usage_error("promote", "too many arguments");
	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		goto out;
	if (mnt) {
		error("'%s' is mounted at '%s'; unmount it first", store, mnt);
		goto out;
	}
	pid = keep_store_lock_owner(store);
	if (pid > 0) {
		store_busy(store, pid);
		goto out;
	}
	rc = keep_store_open(store, KEEP_OPEN_WRITE, &s);
	if (rc == KEEP_E_NEEDKEY) {
		/* an encrypted replica: its secret, as for any writable open */
		if (open_writable(store, &s) != EXIT_OK)
			goto out;
		rc = 0;
	}
	if (rc) {
		error("cannot open store '%s': %s", store, keep_strerror(rc));
		goto out;
	}
	rc = keep_replica_of(s, of, sizeof(of));
	if (!rc && !of[0]) {
		error("'%s' is not a replica; nothing to do", store);
		goto out;
	}
	if (!rc)
		rc = keep_promote(s);
	if (rc) {
		error("cannot promote '%s': %s", store, keep_strerror(rc));
		goto out;
	}
	printf("'%s' is an ordinary store now (it was a replica of %s); it "
	       "mounts read-write and receives nothing more\n", store, of);
	status = EXIT_OK;
out:
	if (s) {
		rc = keep_store_close(s);
		if (rc && status == EXIT_OK)
			status = error("closing '%s' failed: %s", store,
				       keep_strerror(rc));
	}
	free(store);
	free(mnt);
	return status;
}
