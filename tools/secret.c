/*
 * secret.c - where the passphrase or key file of an encrypted store comes
 * from, for every command that needs one.
 *
 * Design notes:
 *  1. A secret is read into guarded memory (sodium_malloc) and wiped when
 *     freed; it lives only until the store is open (core keeps its own
 *     derived keys).
 *  2. The sources, in order: the command's options (--passphrase-file,
 *     --key-file, or mount's passfile=/keyfile=), then the environment
 *     (KEEPFS_PASSPHRASE_FILE, KEEPFS_KEY_FILE), then a systemd credential
 *     ($CREDENTIALS_DIRECTORY/keepfs.passphrase or keepfs.key, as
 *     LoadCredential= makes them), then a prompt on the terminal.  The
 *     store says which kind it wants, so a key file offered to a store
 *     with a passphrase is a clear error, not a failed guess.
 *  3. A passphrase file may end with one newline, LF or CR LF (how
 *     editors and echo write it); it is not part of the passphrase.  A key file is exactly
 *     KEEP_KEYFILE_BYTES bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

#define PASSPHRASE_MAX 4096

struct keep_secret *secret_new(int kind, size_t cap)
{
	if (sodium_init() < 0)
		return NULL;
	struct keep_secret *s = calloc(1, sizeof(*s));
	void *buf = sodium_malloc(cap ? cap : 1);

	if (!s || !buf) {
		free(s);
		sodium_free(buf);
		return NULL;
	}
	s->kind = kind;
	s->data = buf;
	return s;
}

void secret_free(struct keep_secret *s)
{
	if (!s)
		return;
	sodium_free((void *)s->data); /* wipes it */
	free(s);
}

static const char *kind_name(int kind)
{
	return kind == KEEP_SECRET_KEYFILE ? "key file" : "passphrase";
}

int secret_from_file(const char *path, int kind, struct keep_secret **out)
{
	/* one byte more than the longest allowed, to tell a longer file */
	size_t cap = kind == KEEP_SECRET_KEYFILE ? KEEP_KEYFILE_BYTES + 1
						 : PASSPHRASE_MAX + 3;
	struct keep_secret *s;
	struct stat st;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return error("cannot read %s '%s': %s", kind_name(kind), path,
			     strerror(errno));
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) &&
	    !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
		close(fd);
		return error("%s '%s' is not a file", kind_name(kind), path);
	}
	s = secret_new(kind, cap);
	if (!s) {
		close(fd);
		return error("out of memory");
	}
	while (n < cap) {
		ssize_t r = read(fd, (char *)s->data + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			secret_free(s);
			return error("cannot read %s '%s': %s", kind_name(kind),
				     path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (kind == KEEP_SECRET_KEYFILE) {
		if (n != KEEP_KEYFILE_BYTES) {
			secret_free(s);
			return error("key file '%s' holds %s%zu bytes; a key "
				     "file holds exactly %d (make one with "
				     "'keepfs key generate FILE')",
				     path, n == cap ? "more than " : "",
				     n == cap ? (size_t)KEEP_KEYFILE_BYTES : n,
				     KEEP_KEYFILE_BYTES);
		}
	} else {
		char *p = (char *)s->data;
		int over = n == cap; /* there is more than was read */
		if (!over && n && p[n - 1] == '\n') {
			n--;
			if (n && p[n - 1] == '\r')
				n--;
		}
		if (over || n > PASSPHRASE_MAX) {
			secret_free(s);
			return error("passphrase file '%s' is longer than %d "
				     "bytes",
				     path, PASSPHRASE_MAX);
		}
		if (n == 0) {
			secret_free(s);
			return error("passphrase file '%s' is empty", path);
		}
	}
	s->len = n;
	*out = s;
	return EXIT_OK;
}

/* The terminal's settings while echo is off, for a signal that ends the
 * program meanwhile: it gets its echo back first. */
static struct termios saved_tio;
static volatile sig_atomic_t saved_fd = -1;
static const int echo_signals[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGTSTP};
#define N_ECHO_SIGNALS (sizeof(echo_signals) / sizeof(echo_signals[0]))

static void echo_back(int sig)
{
	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSANOW, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read one line from the terminal without echo.  Returns its length, or
 * -1 (errno set) when there is no terminal or reading failed. */
static ssize_t read_hidden(FILE *tty, const char *prompt, char *buf,
			   size_t cap)
{
	struct sigaction sa = {.sa_handler = echo_back}, old_sa[N_ECHO_SIGNALS];
	struct termios old, quiet;
	size_t n = 0;
	int fd = fileno(tty), c, echo_off;

	echo_off = tcgetattr(fd, &old) == 0;
	if (echo_off) {
		saved_tio = old;
		saved_fd = fd;
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < N_ECHO_SIGNALS; i++)
			sigaction(echo_signals[i], &sa, &old_sa[i]);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		echo_off = tcsetattr(fd, TCSANOW, &quiet) == 0;
	}
	/* asked once nothing typed shows any more */
	fputs(prompt, tty);
	fflush(tty);
	while ((c = getc(tty)) != EOF && c != '\n') {
		if (n + 1 < cap)
			buf[n] = (char)c;
		n++;
	}
	if (saved_fd >= 0) {
		tcsetattr(fd, TCSANOW, &old);
		saved_fd = -1;
		for (size_t i = 0; i < N_ECHO_SIGNALS; i++)
			sigaction(echo_signals[i], &old_sa[i], NULL);
	}
	fputc('\n', tty);
	fflush(tty);
	if (c == EOF && n == 0) {
		errno = EIO;
		return -1;
	}
	if (n + 1 > cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return (ssize_t)n;
}

int secret_prompt(const char *store, int twice, struct keep_secret **out)
{
	struct keep_secret *s = NULL, *again = NULL;
	char prompt[600];
	FILE *tty = fopen("/dev/tty", "r+e");
	ssize_t n, m;
	int status = EXIT_FAILED;

	if (!tty || !isatty(fileno(tty))) {
		if (tty)
			fclose(tty);
		return error("store '%s' is encrypted and there is no terminal "
			     "to ask for its passphrase on: give it in a file "
			     "(-o passfile=FILE to mount, --passphrase-file "
			     "FILE where a command takes one, or "
			     "KEEPFS_PASSPHRASE_FILE in the environment)",
			     store);
	}
	setvbuf(tty, NULL, _IONBF, 0); /* nothing of it in a stdio buffer */
	s = secret_new(KEEP_SECRET_PASSPHRASE, PASSPHRASE_MAX + 1);
	again = twice ? secret_new(KEEP_SECRET_PASSPHRASE, PASSPHRASE_MAX + 1)
		      : NULL;
	if (!s || (twice && !again)) {
		error("out of memory");
		goto out;
	}
	snprintf(prompt, sizeof(prompt), "%s for '%s': ",
		 twice ? "New passphrase" : "Passphrase", store);
	n = read_hidden(tty, prompt, (char *)s->data, PASSPHRASE_MAX + 1);
	if (n < 0) {
		error(errno == ENAMETOOLONG
			      ? "the passphrase is longer than %d bytes"
			      : "no passphrase was given",
		      PASSPHRASE_MAX);
		goto out;
	}
	if (n == 0) {
		error("the passphrase is empty");
		goto out;
	}
	s->len = (size_t)n;
	if (twice) {
		m = read_hidden(tty, "Again, to be sure: ", (char *)again->data,
				PASSPHRASE_MAX + 1);
		if (m != n || sodium_memcmp(s->data, again->data,
					    (size_t)n) != 0) {
			error("the two passphrases differ; nothing was changed");
			goto out;
		}
	}
	*out = s;
	s = NULL;
	status = EXIT_OK;
out:
	secret_free(s);
	secret_free(again);
	fclose(tty);
	return status;
}

/* A systemd credential of the given name, if there is one. */
static int from_credentials(int kind, struct keep_secret **out, int *found)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *name = kind == KEEP_SECRET_KEYFILE ? "keepfs.key"
						       : "keepfs.passphrase";
	char path[4200];

	*found = 0;
	if (!dir || !*dir)
		return EXIT_OK;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (access(path, F_OK) != 0)
		return EXIT_OK;
	*found = 1;
	return secret_from_file(path, kind, out);
}

int secret_for_store(const char *store, const char *passfile,
		     const char *keyfile, struct keep_secret **out)
{
	int kind = 0, found, rc = keep_store_encrypted(store, &kind);
	const char *envp = getenv("KEEPFS_PASSPHRASE_FILE");
	const char *envk = getenv("KEEPFS_KEY_FILE");

	*out = NULL;
	if (rc)
		return error("cannot open store '%s': %s", store,
			     keep_strerror(rc));
	if (passfile && keyfile)
		return error("give a passphrase file or a key file, not both");
	if (kind == 0) {
		if (passfile || keyfile)
			return error("store '%s' is not encrypted: it takes "
				     "no %s",
				     store, passfile ? "passphrase" : "key file");
		return EXIT_OK;
	}
	if (passfile || keyfile) {
		int given = passfile ? KEEP_SECRET_PASSPHRASE
				     : KEEP_SECRET_KEYFILE;
		if (given != kind)
			return error("store '%s' is unlocked by a %s, not a %s",
				     store, kind_name(kind), kind_name(given));
		return secret_from_file(passfile ? passfile : keyfile, kind,
					out);
	}
	if (kind == KEEP_SECRET_PASSPHRASE && envp && *envp)
		return secret_from_file(envp, kind, out);
	if (kind == KEEP_SECRET_KEYFILE && envk && *envk)
		return secret_from_file(envk, kind, out);
	int status = from_credentials(kind, out, &found);
	if (found || status != EXIT_OK)
		return status;
	if (kind == KEEP_SECRET_KEYFILE)
		return error("store '%s' is encrypted with a key file: give it "
			     "(-o keyfile=FILE to mount, --key-file FILE "
			     "where a command takes one, or KEEPFS_KEY_FILE "
			     "in the environment)",
			     store);
	return secret_prompt(store, 0, out);
}
