/*
 * tap.h - a tiny TAP producer for keepfs's C tests.
 *
 * ok(cond, fmt, ...) prints one "ok N - ..." or "not ok N - ..." line;
 * is_int(got, want, fmt, ...) also prints both values on failure;
 * tap_done() prints the plan and returns the exit status (0 when every
 * test passed).  Diagnostics go to stdout as "# ..." lines.
 */
#ifndef KEEP_TAP_H
#define KEEP_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_vline(int pass, const char *fmt, va_list ap)
{
	printf("%s %d - ", pass ? "ok" : "not ok", ++tap_n);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	if (!pass)
		tap_failed++;
}

static inline __attribute__((format(printf, 2, 3))) int
ok(int pass, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vline(pass, fmt, ap);
	va_end(ap);
	return pass;
}

static inline __attribute__((format(printf, 3, 4))) int
is_int_(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vline(got == want, fmt, ap);
	va_end(ap);
	if (got != want)
		printf("#   got %lld, want %lld\n", got, want);
	return got == want;
}
#define is_int(got, want, ...) is_int_((long long)(got), (long long)(want), __VA_ARGS__)

static inline __attribute__((format(printf, 1, 2))) void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	fflush(stdout);
}

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_failed)
		printf("# %d of %d failed\n", tap_failed, tap_n);
	return tap_failed ? 1 : 0;
}

#endif
