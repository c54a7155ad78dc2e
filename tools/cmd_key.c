/*
 * cmd_key.c - "keepfs key": key files, and changing what unlocks an
 * encrypted store.
 *
 * "key change" re-wraps the store's master key (keep_key_change): no data
 * is rewritten.  The current secret is asked for even on a mounted store,
 * whose daemon holds the keys already: whoever changes the passphrase must
 * know it.  On a mounted store the daemon does the change; the secrets
 * travel to it over the control socket (mode 0600, the owner or root
 * only), hex-encoded, and are wiped on both sides once used.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keep.h"
#include "kfs.h"
#include "util_i.h"

const char usage_key[] =
	"usage: keepfs key generate FILE\n"
	"       keepfs key change TARGET [--passphrase-file FILE | --key-file FILE]\n"
	"                         [--new-passphrase-file FILE | --new-key-file FILE]\n"
	"\n"
	"generate writes a new key file: 32 random bytes, mode 0600.  It never\n"
	"overwrites a file.  Give it to 'keepfs init --key-file FILE'.\n"
	"\n"
	"change makes a new passphrase or key file unlock the encrypted store\n"
	"TARGET (a store or its mount point) and the old one stop working.  No\n"
	"data is rewritten; a mounted store stays mounted.  The current\n"
	"passphrase or key file comes from --passphrase-file or --key-file,\n"
	"KEEPFS_PASSPHRASE_FILE or KEEPFS_KEY_FILE, the systemd credential\n"
	"keepfs.passphrase or keepfs.key, or the terminal; the new one\n"
	"from --new-passphrase-file or --new-key-file, or is asked for twice on\n"
	"the terminal.  A passphrase file's one trailing newline is not part of\n"
	"the passphrase.\n"
	"\n"
	"options:\n"
	"   --passphrase-file FILE       the current passphrase\n"
	"   --key-file FILE              the current key file\n"
	"   --new-passphrase-file FILE   the new passphrase\n"
	"   --new-key-file FILE          the new key file\n"
	"   -h, --help                   show this help\n";

static int generate(int argc, char **argv)
{
	uint8_t key[KEEP_KEYFILE_BYTES];
	int fd;

	if (argc != 3)
		return usage_error("key", argc < 3 ? "missing FILE"
						   : "too many arguments");
	fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return error("cannot create key file '%s': %s%s", argv[2],
			     strerror(errno),
			     errno == EEXIST ? " (a key file is never "
					       "overwritten)"
					     : "");
	randombytes_buf(key, sizeof(key));
	ssize_t n = write(fd, key, sizeof(key));
	int e = n < 0 ? errno : n != (ssize_t)sizeof(key) ? EIO : 0;
	sodium_memzero(key, sizeof(key));
	if (!e && fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && !e)
		e = errno;
	if (e) {
		unlink(argv[2]);
		return error("cannot write key file '%s': %s", argv[2],
			     strerror(e));
	}
	printf("wrote a new key file '%s' (keep a copy somewhere safe: "
	       "without it the store cannot be read)\n",
	       argv[2]);
	return EXIT_OK;
}

/* The wire form of a secret: KIND:HEX, in guarded memory. */
static char *to_wire(const struct keep_secret *s)
{
	size_t n = 3 + 2 * s->len + 1;
	char *w = sodium_malloc(n);

	if (!w)
		return NULL;
	w[0] = s->kind == KEEP_SECRET_KEYFILE ? 'k' : 'p';
	w[1] = ':';
	sodium_bin2hex(w + 2, n - 2, s->data, s->len);
	return w;
}

static struct keep_secret *from_wire(const char *w)
{
	size_t hl = strlen(w), got = 0;
	int kind;

	if (hl < 2 || w[1] != ':' || (w[0] != 'k' && w[0] != 'p'))
		return NULL;
	kind = w[0] == 'k' ? KEEP_SECRET_KEYFILE : KEEP_SECRET_PASSPHRASE;
	struct keep_secret *s = secret_new(kind, hl / 2 + 1);
	if (s && sodium_hex2bin((unsigned char *)s->data, hl / 2 + 1, w + 2,
				hl - 2, NULL, &got, NULL) != 0) {
		secret_free(s);
		return NULL;
	}
	if (s)
		s->len = got;
	return s;
}

static int changed(FILE *f, const char *store)
{
	fprintf(f, "the key of store '%s' was changed: the old one no longer "
		   "opens it\n",
		store);
	return EXIT_OK;
}

static int change(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"passphrase-file", required_argument, NULL, 'p'},
		{"key-file", required_argument, NULL, 'k'},
		{"new-passphrase-file", required_argument, NULL, 'P'},
		{"new-key-file", required_argument, NULL, 'K'},
		{NULL, 0, NULL, 0},
	};
	const char *pf = NULL, *kf = NULL, *npf = NULL, *nkf = NULL;
	struct keep_secret *old = NULL, *new = NULL;
	struct keep_store *s = NULL;
	char *store = NULL, *mnt = NULL;
	int c, status = EXIT_FAILED;

	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pf = optarg;
			break;
		case 'k':
			kf = optarg;
			break;
		case 'P':
			npf = optarg;
			break;
		case 'K':
			nkf = optarg;
			break;
		default:
			return bad_option("key", c, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("key", argc - optind ? "too many arguments"
							 : "missing TARGET");
	if (npf && nkf)
		return usage_error("key", "give a new passphrase file or a new "
					  "key file, not both");
	if (pf && kf)
		return usage_error("key", "give the current passphrase file or "
					  "key file, not both");
	if (resolve_target(argv[optind], &store, &mnt) != EXIT_OK)
		goto out;
	int kind = 0, rc0 = keep_store_encrypted(store, &kind);
	if (rc0) {
		error("cannot open store '%s': %s", store, keep_strerror(rc0));
		goto out;
	}
	if (kind == 0) {
		error("store '%s' is not encrypted: it has no key to change "
		      "(encryption is chosen at 'keepfs init --encrypt')",
		      store);
		goto out;
	}
	/* a busy store is told before anyone is asked for a passphrase */
	if (!mnt) {
		pid_t pid = keep_store_lock_owner(store);
		if (pid > 0) {
			store_busy(store, pid);
			goto out;
		}
	}
	if (secret_for_store(store, pf, kf, &old) != EXIT_OK)
		goto out;
	if (npf || nkf) {
		if (secret_from_file(npf ? npf : nkf,
				     npf ? KEEP_SECRET_PASSPHRASE
					 : KEEP_SECRET_KEYFILE,
				     &new) != EXIT_OK)
			goto out;
	} else if (secret_prompt(store, 1, &new) != EXIT_OK) {
		goto out;
	}

	if (mnt) {
		char *wold = to_wire(old), *wnew = to_wire(new);
		char *args[3] = {"key-change", wold, wnew};
		if (!wold || !wnew)
			error("out of memory");
		else
			status = ctl_run(store, mnt, 3, args);
		sodium_free(wold);
		sodium_free(wnew);
		goto out;
	}
	int rc = keep_store_open_secret(store, KEEP_OPEN_WRITE, old, &s);
	if (rc == 0)
		rc = keep_key_change(s, old, new);
	if (rc == 0) {
		rc = keep_store_close(s);
		s = NULL;
	}
	if (rc) {
		error("cannot change the key of store '%s': %s%s", store,
		      keep_strerror(rc),
		      rc == KEEP_E_BADKEY ? "; nothing was changed" : "");
		goto out;
	}
	status = changed(stdout, store);
out:
	keep_store_close(s);
	secret_free(old);
	secret_free(new);
	free(store);
	free(mnt);
	return status;
}

int cmd_key(int argc, char **argv)
{
	if (sodium_init() < 0)
		return error("cannot start libsodium");
	if (argc < 2)
		return usage_error("key", "missing 'generate' or 'change'");
	if (!strcmp(argv[1], "generate"))
		return generate(argc, argv);
	if (!strcmp(argv[1], "change"))
		return change(argc, argv);
	return usage_error("key", "unknown subcommand '%s': expected "
				  "'generate' or 'change'",
			   argv[1]);
}

/* The daemon's side of "key change" on a mounted store. */
int ctl_key_change(struct kfs_ctl *c, int argc, char **argv)
{
	struct keep_secret *old, *new;
	int rc;

	if (argc != 3)
		return ctl_error(c, "key-change: malformed request");
	old = from_wire(argv[1]);
	new = from_wire(argv[2]);
	sodium_memzero(argv[1], strlen(argv[1]));
	sodium_memzero(argv[2], strlen(argv[2]));
	if (!old || !new) {
		secret_free(old);
		secret_free(new);
		return ctl_error(c, "key-change: malformed request");
	}
	if (kfs_ctl_config(c)->read_only)
		rc = EROFS;
	else
		rc = keep_key_change(kfs_ctl_store(c), old, new);
	secret_free(old);
	secret_free(new);
	if (rc == EROFS)
		return ctl_error(c, "the store is mounted read-only: its key "
				    "cannot be changed; unmount it and run "
				    "'keepfs key change' on the store");
	if (rc)
		return ctl_error(c, "cannot change the key: %s%s",
				 keep_strerror(rc),
				 rc == KEEP_E_BADKEY ? "; nothing was changed"
						     : "");
	return changed(kfs_ctl_out(c), kfs_ctl_config(c)->store_path);
}
