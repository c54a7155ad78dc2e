/*
 * log.c - logging, return codes and the corruption breakpoint.
 *
 * Every message of core/, fs/ and tools/ goes through keep_log(), so the
 * daemon can send it to stderr in the foreground and to syslog in the
 * background, and tests can fail on "error" and "warning" lines.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keep_i.h"

static keep_log_sink log_sink;
static void *log_ctx;
static int log_level = LOG_NOTICE;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void keep_vlog(int level, const char *fmt, va_list ap)
{
	char msg[1024];

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	pthread_mutex_lock(&log_mu);
	if (log_sink)
		log_sink(level, msg, log_ctx);
	else
		fprintf(stderr, "keepfs: %s: %s\n", level_name(level), msg);
	pthread_mutex_unlock(&log_mu);
}

void keep_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	keep_vlog(level, fmt, ap);
	va_end(ap);
}

void keep_log_set_sink(keep_log_sink sink, void *ctx)
{
	pthread_mutex_lock(&log_mu);
	log_sink = sink;
	log_ctx = ctx;
	pthread_mutex_unlock(&log_mu);
}

void keep_log_set_level(int max_level)
{
	log_level = max_level;
}

int keep_log_get_level(void)
{
	return log_level;
}

int keep_corrupt_at(const char *file, int line, const char *what)
{
	keep_log(LOG_ERR, "store corruption: %s (%s:%d)", what, file, line);
	return KEEP_E_CORRUPT;
}

const char *keep_strerror(int rc)
{
	if (rc >= 0)
		return rc == 0 ? "success" : strerror(rc);
	switch (rc) {
	case KEEP_E_CORRUPT:
		return "the store is damaged (run keepfs fsck)";
	case KEEP_E_NOTSTORE:
		return "not a keepfs store";
	case KEEP_E_VERSION:
		return "the store has a newer or unknown format; upgrade keepfs";
	case KEEP_E_LOCKED:
		return "the store is in use by another keepfs process";
	case KEEP_E_READONLY:
		return "the store is read-only after a failed commit; remount it";
	case KEEP_E_SQLITE:
		return "database error (see the log)";
	case KEEP_E_NOMEM:
		return "out of memory";
	case KEEP_E_EXISTS:
		return "the directory is not empty";
	case KEEP_E_INVAL:
		return "invalid argument";
	case KEEP_E_NEEDKEY:
		return "the store is encrypted: its passphrase or key file is "
		       "needed";
	case KEEP_E_BADKEY:
		return "wrong passphrase or key file";
	default:
		return "unknown error";
	}
}

int keep_errno(int rc)
{
	if (rc >= 0)
		return rc;
	switch (rc) {
	case KEEP_E_READONLY:
		return EROFS;
	case KEEP_E_NOMEM:
		return ENOMEM;
	case KEEP_E_INVAL:
		return EINVAL;
	case KEEP_E_NEEDKEY:
	case KEEP_E_BADKEY:
		return EACCES;
	default:
		return EIO;
	}
}

/*
 * Fault injection for tests.  KEEP_FAULT="point:n[:errno]" makes the n-th
 * (1-based) passage through keep_fault("point") fail with errno (default
 * EIO), and every later one too when n is prefixed with '+'.  Unset, it
 * costs one pointer test.
 */
static const char *fault_spec;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static unsigned long fault_hits;

static void fault_init(void)
{
	fault_spec = getenv("KEEP_FAULT");
}

int keep_fault(const char *point)
{
	char name[64];
	unsigned long n;
	int err = EIO;
	bool sticky = false;
	const char *p;

	pthread_once(&fault_once, fault_init);
	if (!fault_spec)
		return 0;
	p = strchr(fault_spec, ':');
	if (!p || (size_t)(p - fault_spec) >= sizeof(name))
		return 0;
	memcpy(name, fault_spec, (size_t)(p - fault_spec));
	name[p - fault_spec] = '\0';
	if (strcmp(name, point) != 0)
		return 0;
	p++;
	if (*p == '+') {
		sticky = true;
		p++;
	}
	n = strtoul(p, (char **)&p, 10);
	if (*p == ':')
		err = atoi(p + 1);
	unsigned long hit = __atomic_add_fetch(&fault_hits, 1, __ATOMIC_RELAXED);
	if (hit == n || (sticky && hit >= n)) {
		keep_log(LOG_WARNING, "injected fault at '%s' (%s)", point,
			 strerror(err));
		return err;
	}
	return 0;
}

int64_t keep_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the clock of history ----------------------------------------------- */

static const char *clock_file;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

static void clock_init(void)
{
	const char *f = getenv("KEEPFS_TEST_CLOCK");

	clock_file = f && *f ? f : NULL;
}

/* Seconds since the epoch, with a fraction, from the test clock's file;
 * false when it cannot be read. */
static bool clock_read(int64_t *out)
{
	char buf[64];
	FILE *f = fopen(clock_file, "re");
	size_t n = 0;
	char *end;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	errno = 0;
	double t = n ? strtod(buf, &end) : 0;
	if (!n || errno || end == buf || t < 0 || t > 9e9)
		return false;
	*out = (int64_t)(t * 1e9);
	return true;
}

int64_t keep_clock_ns(void)
{
	static bool warned;
	int64_t t;

	pthread_once(&clock_once, clock_init);
	if (clock_file) {
		if (clock_read(&t))
			return t;
		if (!warned) {
			warned = true;
			keep_log(LOG_WARNING,
				 "cannot read the time from KEEPFS_TEST_CLOCK "
				 "'%s': using the real clock",
				 clock_file);
		}
	}
	return keep_now_ns();
}

int64_t keep_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
