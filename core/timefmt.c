/*
 * timefmt.c - points in time as text: the names of automatic snapshots
 * and the TIME of ".snapshots/@TIME".
 *
 * The parser is strict on purpose: a TIME comes from a path that a person
 * or a script typed, and a lenient parser (normalising February 30 to
 * March 2, reading "5m" as "-5m") would silently open the wrong view.
 * Accepted:
 *
 *   YYYY-MM-DDThh:mm[:ss[.f]]ZONE   f: 1 to 9 digits; ZONE: "Z", "+hh:mm",
 *                                   "-hh:mm", "+hhmm" or "-hhmm"
 *   -N{s,m,h,d,w}                   N > 0, relative to the caller's now
 *
 * Every field is range-checked (no month 13, no February 30, no hour 24,
 * no second 60), nothing may follow, and any result outside int64 ns is
 * refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keep_i.h"

#define NS_PER_SEC 1000000000LL

/* Exactly n decimal digits at *p; advances *p. */
static bool fixed_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/* "N{s,m,h,d,w}" after the '-'. */
static int parse_relative(const char *p, int64_t now_ns, int64_t *out)
{
	int64_t n = 0, unit, back, t;

	if (*p < '0' || *p > '9')
		return EINVAL;
	while (*p >= '0' && *p <= '9') {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, *p - '0', &n))
			return EINVAL;
		p++;
	}
	switch (*p) {
	case 's':
		unit = NS_PER_SEC;
		break;
	case 'm':
		unit = 60 * NS_PER_SEC;
		break;
	case 'h':
		unit = 3600 * NS_PER_SEC;
		break;
	case 'd':
		unit = 86400 * NS_PER_SEC;
		break;
	case 'w':
		unit = 7 * 86400 * NS_PER_SEC;
		break;
	default:
		return EINVAL;
	}
	if (p[1] != '\0' || n == 0)
		return EINVAL;
	if (__builtin_mul_overflow(n, unit, &back) ||
	    __builtin_sub_overflow(now_ns, back, &t))
		return EINVAL;
	*out = t;
	return 0;
}

static int parse_absolute(const char *p, int64_t *out)
{
	int year, mon, day, hour, min, sec = 0, oh = 0, om = 0;
	int64_t frac = 0, secs, t;
	int sign = 0;
	struct tm tm;

	if (!fixed_digits(&p, 4, &year) || !expect(&p, '-') ||
	    !fixed_digits(&p, 2, &mon) || !expect(&p, '-') ||
	    !fixed_digits(&p, 2, &day) || !expect(&p, 'T') ||
	    !fixed_digits(&p, 2, &hour) || !expect(&p, ':') ||
	    !fixed_digits(&p, 2, &min))
		return EINVAL;
	if (expect(&p, ':')) {
		if (!fixed_digits(&p, 2, &sec))
			return EINVAL;
		if (expect(&p, '.')) {
			int ndig = 0;
			while (*p >= '0' && *p <= '9' && ndig < 9) {
				frac = frac * 10 + (*p++ - '0');
				ndig++;
			}
			if (ndig == 0 || (*p >= '0' && *p <= '9'))
				return EINVAL;
			for (; ndig < 9; ndig++)
				frac *= 10;
		}
	}
	if (expect(&p, 'Z')) {
		sign = 0;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!fixed_digits(&p, 2, &oh))
			return EINVAL;
		expect(&p, ':'); /* "+hh:mm" or "+hhmm" */
		if (!fixed_digits(&p, 2, &om))
			return EINVAL;
	} else {
		return EINVAL; /* a time without a zone is ambiguous */
	}
	if (*p != '\0')
		return EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
	    hour > 23 || min > 59 || sec > 59 || oh > 23 || om > 59)
		return EINVAL;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	secs = (int64_t)timegm(&tm);
	/* the local time is UTC + offset, so UTC is local - offset */
	secs -= (int64_t)sign * (oh * 3600 + om * 60);
	/* a fraction before the epoch is added to the next whole second
	 * down from it, so the earliest representable time still fits */
	if (secs < 0 && frac > 0) {
		secs++;
		frac -= NS_PER_SEC;
	}
	if (__builtin_mul_overflow(secs, NS_PER_SEC, &t) ||
	    __builtin_add_overflow(t, frac, &t))
		return EINVAL;
	*out = t;
	return 0;
}

int keep_parse_duration(const char *text, int64_t *out)
{
	int64_t t;

	if (!text || !out)
		return EINVAL;
	if (!strcmp(text, "0")) {
		*out = 0;
		return 0;
	}
	if (parse_relative(text, 0, &t))
		return EINVAL;
	*out = -t;
	return 0;
}

int keep_parse_time(const char *text, int64_t now_ns, int64_t *out)
{
	if (!text || !out)
		return EINVAL;
	if (text[0] == '-')
		return parse_relative(text + 1, now_ns, out);
	return parse_absolute(text, out);
}

void keep_format_time(int64_t ns, char *buf, size_t size)
{
	int64_t secs = ns / NS_PER_SEC;
	struct tm tm;
	time_t t;

	if (!buf || size == 0)
		return;
	if (ns % NS_PER_SEC < 0)
		secs--; /* whole seconds round down, before the epoch too */
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm)) {
		buf[0] = '\0';
		return;
	}
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
}
