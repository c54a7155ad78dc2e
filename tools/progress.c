/*
 * progress.c - bytes, rate and time left of a transfer, on a terminal
 * (stderr) only: send, receive and sync.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keep.h"
#include "util_i.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_init(struct progress *p, const char *verb)
{
	memset(p, 0, sizeof(*p));
	p->on = isatty(STDERR_FILENO);
	p->verb = verb;
	p->start = now_s();
	p->last = 0; /* the first bytes show at once */
}

void progress_show(struct progress *p, bool final)
{
	char a[32], b[32], c[32];
	double t = now_s(), el = t - p->start;

	if (!p->on || !p->ready || (!final && t - p->last < 0.25))
		return;
	p->last = t;
	double rate = el > 0 ? (double)p->done / el : 0;
	human_bytes(p->done, a, sizeof(a));
	human_bytes((uint64_t)rate, c, sizeof(c));
	if (p->total && !final) {
		uint64_t total = p->total > p->done ? p->total : p->done;
		double left = rate > 0 ? (double)(total - p->done) / rate : 0;
		fprintf(stderr, "\r%s %s of %s (%d%%), %s/s, %.0f s left   ",
			p->verb, a, human_bytes(total, b, sizeof(b)),
			(int)(100.0 * (double)p->done / (double)total), c, left);
	} else {
		fprintf(stderr, "\r%s %s, %s/s%s", p->verb, a, c,
			final ? "                                \n" : "   ");
	}
	fflush(stderr);
	p->shown = true;
}

void progress_end(struct progress *p)
{
	if (p->shown)
		progress_show(p, true);
}


int progress_fd_write(void *ctx, const void *buf, size_t len)
{
	struct progress_fd *k = ctx;
	const char *p = buf;

	while (len) {
		ssize_t n = write(k->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		p += n;
		len -= (size_t)n;
		k->pr.done += (uint64_t)n;
	}
	progress_show(&k->pr, false);
	return 0;
}

void progress_started(void *ctx, const struct keep_stream_info *info)
{
	struct progress_fd *k = ctx;

	k->pr.total = info->expect_bytes;
	k->pr.ready = true;
}
