/*
 * policy.c - the retention settings a store keeps (keep_policy_*).
 *
 * Each setting that was set is a row of meta, key "policy.NAME", its value
 * the canonical text of the setting ("1h", "off", "24", "10%").  A setting
 * without a row has its default (setting "default" removes the row).  The
 * text forms are parsed in one place, here, for `keepfs config`, the
 * mount options and the store alike.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keep_i.h"

#define NS_PER_SEC INT64_C(1000000000)
#define COUNT_MAX 100000u

const char *const keep_policy_keys[] = {
    "journal", "auto",	  "hourly",	"daily",       "weekly",
    "monthly", "prerestore", "max_history", NULL,
};

void keep_policy_default(struct keep_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->journal_ns = 3600 * NS_PER_SEC;
	p->auto_ns = 15 * 60 * NS_PER_SEC;
	p->hourly = 24;
	p->daily = 30;
	p->weekly = 8;
	p->monthly = 12;
	p->prerestore = 10;
}

static int bad(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return EINVAL;
}

static int key_index(const char *key)
{
	for (int i = 0; keep_policy_keys[i]; i++)
		if (!strcmp(key, keep_policy_keys[i]))
			return i;
	return -1;
}

static int parse_count(const char *v, uint32_t *out)
{
	char *end;
	unsigned long n;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n > COUNT_MAX)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

/* "none", "N%" (1 to 100), or a size with K, M, G or T (binary). */
static int parse_budget(const char *v, uint64_t *bytes, uint32_t *pct)
{
	char *end;
	unsigned long long n;
	unsigned shift = 0;

	if (!strcmp(v, "none")) {
		*bytes = 0;
		*pct = 0;
		return 0;
	}
	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		return -1;
	if (!strcmp(end, "%")) {
		if (n < 1 || n > 100)
			return -1;
		*bytes = 0;
		*pct = (uint32_t)n;
		return 0;
	}
	switch (*end) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -1;
	}
	if (*end && end[1])
		return -1;
	if (n == 0 || n > (UINT64_MAX >> shift))
		return -1;
	*bytes = (uint64_t)n << shift;
	*pct = 0;
	return 0;
}

int keep_policy_set(struct keep_policy *p, const char *key, const char *value,
		    char *err, size_t errlen)
{
	int64_t ns;

	if (!p || !key || !value)
		return KEEP_E_INVAL;
	switch (key_index(key)) {
	case 0: /* journal */
		if (keep_parse_duration(value, &ns))
			return bad(err, errlen,
				   "bad value '%s' for journal: give 0 or a "
				   "whole number and a unit, as in 90s, 15m, "
				   "1h, 7d, 2w",
				   value);
		p->journal_ns = ns;
		return 0;
	case 1: /* auto */
		if (!strcmp(value, "off")) {
			p->auto_ns = 0;
			return 0;
		}
		if (keep_parse_duration(value, &ns) || ns < 60 * NS_PER_SEC)
			return bad(err, errlen,
				   "bad value '%s' for auto: give 'off' or an "
				   "interval of at least a minute, as in 1m, "
				   "15m, 1h, 1d",
				   value);
		p->auto_ns = ns;
		return 0;
	case 2:
	case 3:
	case 4:
	case 5:
	case 6: {
		uint32_t *f[] = {&p->hourly, &p->daily, &p->weekly, &p->monthly,
				 &p->prerestore};
		if (parse_count(value, f[key_index(key) - 2]))
			return bad(err, errlen,
				   "bad value '%s' for %s: give a count from "
				   "0 to %u",
				   value, key, COUNT_MAX);
		return 0;
	}
	case 7: /* max_history */
		if (parse_budget(value, &p->max_history_bytes,
				 &p->max_history_pct))
			return bad(err, errlen,
				   "bad value '%s' for max_history: give "
				   "'none', a size (512M, 20G, 1T) or a "
				   "percentage of the file system (1%% to "
				   "100%%)",
				   value);
		return 0;
	default:
		return bad(err, errlen,
			   "unknown setting '%s' (the settings are journal, "
			   "auto, hourly, daily, weekly, monthly, prerestore, "
			   "max_history)",
			   key);
	}
}

/* A duration in the largest unit that divides it. */
static void put_duration(int64_t ns, char *buf, size_t len)
{
	static const struct {
		int64_t ns;
		char unit;
	} units[] = {
	    {7 * 86400 * NS_PER_SEC, 'w'}, {86400 * NS_PER_SEC, 'd'},
	    {3600 * NS_PER_SEC, 'h'},	   {60 * NS_PER_SEC, 'm'},
	    {NS_PER_SEC, 's'},
	};

	if (ns == 0) {
		snprintf(buf, len, "0");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ns % units[i].ns == 0) {
			snprintf(buf, len, "%" PRId64 "%c", ns / units[i].ns,
				 units[i].unit);
			return;
		}
	snprintf(buf, len, "%" PRId64 "s", ns / NS_PER_SEC);
}

static void put_size(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && n % 1024 == 0 && n >= 1024) {
		n /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, n);
	else
		snprintf(buf, len, "%" PRIu64 "%c", n, units[u]);
}

int keep_policy_get(const struct keep_policy *p, const char *key, char *buf,
		    size_t len)
{
	const uint32_t f[] = {p->hourly, p->daily, p->weekly, p->monthly,
			      p->prerestore};
	int i = key_index(key);

	switch (i) {
	case 0:
		put_duration(p->journal_ns, buf, len);
		return 0;
	case 1:
		if (!p->auto_ns)
			snprintf(buf, len, "off");
		else
			put_duration(p->auto_ns, buf, len);
		return 0;
	case 2:
	case 3:
	case 4:
	case 5:
	case 6:
		snprintf(buf, len, "%" PRIu32, f[i - 2]);
		return 0;
	case 7:
		if (p->max_history_pct)
			snprintf(buf, len, "%" PRIu32 "%%", p->max_history_pct);
		else if (p->max_history_bytes)
			put_size(p->max_history_bytes, buf, len);
		else
			snprintf(buf, len, "none");
		return 0;
	default:
		return KEEP_E_INVAL;
	}
}

int keep_policy_load(struct keep_store *s, struct keep_policy *p)
{
	char key[64], val[64];
	int rc = 0;

	keep_policy_default(p);
	pthread_mutex_lock(&s->mu);
	for (int i = 0; !rc && keep_policy_keys[i]; i++) {
		snprintf(key, sizeof(key), "policy.%s", keep_policy_keys[i]);
		rc = db_meta_text(s, key, val, sizeof(val));
		if (rc == ENOENT) {
			rc = 0;
			continue;
		}
		if (!rc && keep_policy_set(p, keep_policy_keys[i], val, NULL,
					   0) != 0) {
			keep_log(LOG_WARNING,
				 "setting %s has a value this version cannot "
				 "read ('%s'); using the default",
				 keep_policy_keys[i], val);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int keep_policy_put(struct keep_store *s, size_t n,
		    const char *const *keys, const char *const *values,
		    char *err, size_t errlen)
{
	struct keep_policy p;
	char key[64], val[64];
	int rc = 0;

	if (!s || (n && (!keys || !values)))
		return KEEP_E_INVAL;
	/* every pair is checked before anything is written */
	keep_policy_default(&p);
	for (size_t i = 0; i < n; i++) {
		if (key_index(keys[i]) < 0 || strcmp(values[i], "default"))
			rc = keep_policy_set(&p, keys[i], values[i], err,
					     errlen);
		if (rc)
			return rc;
	}
	rc = store_own_begin(s);
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < n; i++) {
		snprintf(key, sizeof(key), "policy.%s", keys[i]);
		if (strcmp(values[i], "default")) {
			keep_policy_set(&p, keys[i], values[i], NULL, 0);
			keep_policy_get(&p, keys[i], val, sizeof(val));
			rc = db_meta_set_text(s, key, val);
		} else {
			rc = db_meta_set_text(s, key, NULL);
		}
	}
	rc = store_own_end(s, rc);
	if (!rc)
		rc = db_sync_wal(s); /* durable before it returns */
	return rc;
}
