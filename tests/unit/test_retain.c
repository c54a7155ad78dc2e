/*
 * test_retain.c - retention of snapshots and automatic snapshots, with a
 * test clock (KEEPFS_TEST_CLOCK): 90 days of hourly activity leave exactly
 * the auto snapshots the policy promises (worked out here from the
 * calendar), every manual snapshot, and the newest pre-restore ones; an
 * auto snapshot is due only when something changed and the interval has
 * passed; the settings round-trip through the store and refuse bad
 * values without changing anything.
 */
#include <stdbool.h>
#include <time.h>

#include "unit.h"

#define R KEEP_ROOT_INO
#define NS INT64_C(1000000000)

static void set_clock(int64_t t)
{
	FILE *f = fopen(unit_path("clock"), "w");

	if (!f) {
		printf("Bail out! cannot write the test clock\n");
		exit(1);
	}
	fprintf(f, "%" PRId64 ".%09" PRId64 "\n", t / NS, t % NS);
	fclose(f);
}

static void name_of(int64_t t, char *buf, size_t len)
{
	keep_format_time(t, buf, len);
}

struct names {
	char v[4096][KEEP_SNAP_NAME_MAX + 1];
	size_t n;
	int origin;
};

static int take(void *ctx, const struct keep_snapshot *s)
{
	struct names *n = ctx;

	if (s->origin == n->origin && n->n < 4096)
		snprintf(n->v[n->n++], sizeof(n->v[0]), "%s", s->name);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* the snapshots of one origin, sorted, joined by ' ' */
static char *names_of(struct keep_store *s, int origin)
{
	static struct names n;
	size_t used = 0, cap = 4096 * 64;
	char *out = malloc(cap);

	n.n = 0;
	n.origin = origin;
	keep_snapshot_list(s, 0, take, &n);
	qsort(n.v, n.n, sizeof(n.v[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n.n; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%s",
					 i ? " " : "", n.v[i]);
	return out;
}

/* ---- the settings ---------------------------------------------------------- */

static void t_settings(void)
{
	struct keep_store *s = unit_store("settings", 4096);
	struct keep_policy p;
	char v[64], err[256];
	const char *keys[] = {"journal", "auto", "max_history", "daily"};
	const char *vals[] = {"90m", "off", "20G", "7"};

	keep_policy_default(&p);
	keep_policy_get(&p, "journal", v, sizeof(v));
	is_str(v, "1h", "journal defaults to 1h");
	keep_policy_get(&p, "auto", v, sizeof(v));
	is_str(v, "15m", "auto to 15m");
	ok(p.hourly == 24 && p.daily == 30 && p.weekly == 8 &&
		   p.monthly == 12 && p.prerestore == 10,
	   "hourly=24 daily=30 weekly=8 monthly=12 prerestore=10");
	keep_policy_get(&p, "max_history", v, sizeof(v));
	is_str(v, "none", "max_history none");

	ok(keep_policy_put(s, 4, keys, vals, err, sizeof(err)) == 0,
	   "four settings stored");
	s = unit_reopen(s, "settings", KEEP_OPEN_RDONLY);
	ok(keep_policy_load(s, &p) == 0 && p.journal_ns == 90 * 60 * NS &&
		   p.auto_ns == 0 && p.max_history_bytes == (20ull << 30) &&
		   p.daily == 7 && p.hourly == 24,
	   "they are read back, the others are defaults");
	keep_policy_get(&p, "journal", v, sizeof(v));
	is_str(v, "90m", "a duration is shown in its largest whole unit");
	s = unit_reopen(s, "settings", KEEP_OPEN_WRITE);

	const char *bad_keys[] = {"journal", "hourly"};
	const char *bad_vals[] = {"2h", "-1"};
	ok(keep_policy_put(s, 2, bad_keys, bad_vals, err, sizeof(err)) ==
		   EINVAL,
	   "a bad value is refused");
	is_str(err, "bad value '-1' for hourly: give a count from 0 to 100000",
	       "with a message");
	keep_policy_load(s, &p);
	ok(p.journal_ns == 90 * 60 * NS, "and nothing changed, not even the "
					  "good value before it");
	const char *unk[] = {"jornal"};
	ok(keep_policy_put(s, 1, unk, vals, err, sizeof(err)) == EINVAL,
	   "an unknown setting is refused");
	ok(!strncmp(err, "unknown setting 'jornal'", 24), "by name: %s", err);
	const char *def_k[] = {"journal", "daily"};
	const char *def_v[] = {"default", "default"};
	ok(keep_policy_put(s, 2, def_k, def_v, err, sizeof(err)) == 0 &&
		   keep_policy_load(s, &p) == 0 && p.journal_ns == 3600 * NS &&
		   p.daily == 30,
	   "'default' returns settings to their defaults");

	static const struct {
		const char *key, *val;
		int ok;
	} cases[] = {
	    {"journal", "0", 1},       {"journal", "2w", 1},
	    {"journal", "1x", 0},      {"journal", "", 0},
	    {"journal", "-1h", 0},     {"auto", "30s", 0},
	    {"auto", "1m", 1},	       {"auto", "0", 0},
	    {"hourly", "100000", 1},   {"hourly", "100001", 0},
	    {"hourly", "1.5", 0},      {"max_history", "10%", 1},
	    {"max_history", "0%", 0},  {"max_history", "101%", 0},
	    {"max_history", "512M", 1}, {"max_history", "0", 0},
	    {"max_history", "1Q", 0},  {"prerestore", "0", 1},
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct keep_policy q;
		keep_policy_default(&q);
		int rc = keep_policy_set(&q, cases[i].key, cases[i].val, err,
					 sizeof(err));
		if ((rc == 0) != cases[i].ok) {
			diag("%s=%s: %s", cases[i].key, cases[i].val,
			     rc ? err : "accepted");
			bad++;
		}
	}
	ok(bad == 0, "values are checked (%zu cases)",
	   sizeof(cases) / sizeof(cases[0]));
	keep_store_close(s);
}

/* ---- 90 days ----------------------------------------------------------------- */

/* the calendar period of t: 0 hour, 1 day, 2 ISO week, 3 month */
static long cal(int64_t t, int k)
{
	time_t sec = (time_t)(t / NS);
	struct tm tm;

	gmtime_r(&sec, &tm);
	switch (k) {
	case 0:
		return (long)(sec / 3600);
	case 1:
		return (long)(tm.tm_year * 400 + tm.tm_yday);
	case 2: {
		/* the Monday that starts the week, as a day number */
		int back = (tm.tm_wday + 6) % 7;
		return (long)((sec / 86400) - back);
	}
	default:
		return (long)(tm.tm_year * 12 + tm.tm_mon);
	}
}

static void t_ninety_days(void)
{
	struct keep_store *s = unit_store("ninety", 4096);
	struct keep_policy p;
	struct keep_snapshot snap;
	/* Monday 2026-01-05 00:30 UTC */
	const int64_t start = INT64_C(1767573000) * NS;
	const int hours = 90 * 24;
	static int64_t taken[90 * 24];
	int ntaken = 0, not_due_ok = 1, due_ok = 1;
	uint64_t f = unit_file(s, R, "state.jsonl", "", 0);
	char name[48], line[64];

	keep_policy_default(&p);
	for (int h = 0; h < hours; h++) {
		int64_t t = start + (int64_t)h * 3600 * NS;
		int due = -1;
		set_clock(t);
		if (h % 100 == 50) {
			/* an idle hour: nothing changed, no snapshot */
			keep_auto_due(s, &p, t, NULL, &due);
			if (due)
				not_due_ok = 0;
			continue;
		}
		snprintf(line, sizeof(line), "{\"hour\": %d}\n", h);
		keep_write(s, f, (uint64_t)h * 16, line, strlen(line));
		unit_commit(s);
		keep_auto_due(s, &p, t, NULL, &due);
		if (due != 1) {
			diag("hour %d: no auto snapshot due", h);
			due_ok = 0;
			continue;
		}
		name_of(t, name, sizeof(name));
		if (keep_snapshot_create(s, name, KEEP_ORIGIN_AUTO, &snap)) {
			diag("hour %d: snapshot failed", h);
			continue;
		}
		taken[ntaken++] = t;
		/* ten minutes later: not due again yet */
		if (h == 7) {
			keep_write(s, f, 0, "x", 1);
			unit_commit(s);
			keep_auto_due(s, &p, t + 600 * NS, NULL, &due);
			if (due)
				not_due_ok = 0;
		}
		if (h % 200 == 100) {
			snprintf(line, sizeof(line), "manual-%d", h);
			keep_snapshot_create(s, line, KEEP_ORIGIN_MANUAL, &snap);
		}
		if (h % 100 == 10) {
			name_of(t + NS, line, sizeof(line));
			char pre[96]; /* "pre-restore-" and a line */
			snprintf(pre, sizeof(pre), "pre-restore-%s", line);
			keep_snapshot_create(s, pre, KEEP_ORIGIN_PRE_RESTORE,
					     &snap);
		}
		keep_retain(s, &p, NULL, NULL, NULL);
	}
	ok(due_ok, "an auto snapshot is due every hour something changed");
	ok(not_due_ok, "none when nothing changed, nor before the interval");

	/* what the policy promises, from the calendar */
	static bool want[90 * 24];
	const uint32_t counts[4] = {p.hourly, p.daily, p.weekly, p.monthly};
	for (int k = 0; k < 4; k++) {
		uint32_t met = 0;
		for (int i = ntaken - 1; i >= 0 && met < counts[k]; i--) {
			if (i < ntaken - 1 &&
			    cal(taken[i], k) == cal(taken[i + 1], k))
				continue;
			want[i] = true;
			met++;
		}
	}
	want[ntaken - 1] = true;
	char *expect = malloc(1 << 16);
	size_t used = 0;
	expect[0] = '\0';
	for (int i = 0; i < ntaken; i++) {
		if (!want[i])
			continue;
		name_of(taken[i], name, sizeof(name));
		used += (size_t)snprintf(expect + used, (1 << 16) - used,
					 "%s%s", used ? " " : "", name);
	}
	char *got = names_of(s, KEEP_ORIGIN_AUTO);
	is_str(got, expect,
	       "after 90 days: the newest of each of the last 24 hours, "
	       "30 days, 8 weeks and 12 months, no other");
	free(got);
	free(expect);
	got = names_of(s, KEEP_ORIGIN_MANUAL);
	is_str(got, "manual-100 manual-1100 manual-1300 manual-1500 "
		    "manual-1700 manual-1900 manual-2100 manual-300 "
		    "manual-500 manual-700 manual-900",
	       "every manual snapshot remains");
	free(got);
	got = names_of(s, KEEP_ORIGIN_PRE_RESTORE);
	size_t words = 1;
	for (char *c = got; *c; c++)
		words += *c == ' ';
	name_of(start + INT64_C(2110) * 3600 * NS + NS, name, sizeof(name));
	snprintf(line, sizeof(line), "pre-restore-%s", name);
	ok(words == 10 && strstr(got, line),
	   "the newest 10 pre-restore snapshots remain (of 22), %s among "
	   "them",
	   line);
	free(got);

	/* renaming pins: the snapshot becomes manual */
	got = names_of(s, KEEP_ORIGIN_AUTO);
	char oldest[64];
	snprintf(oldest, sizeof(oldest), "%.*s", (int)strcspn(got, " "), got);
	free(got);
	ok(keep_snapshot_rename(s, oldest, "pinned") == 0 &&
		   keep_snapshot_get(s, "pinned", &snap) == 0 &&
		   snap.origin == KEEP_ORIGIN_MANUAL,
	   "a renamed auto snapshot (%s) becomes manual", oldest);

	/* counts of 0: only the newest auto snapshot stays */
	p.hourly = p.daily = p.weekly = p.monthly = 0;
	uint64_t n = 0;
	ok(keep_retain(s, &p, NULL, NULL, &n) == 0 && n > 0,
	   "counts of 0 delete %" PRIu64 " auto snapshots", n);
	got = names_of(s, KEEP_ORIGIN_AUTO);
	name_of(taken[ntaken - 1], name, sizeof(name));
	is_str(got, name, "all but the newest");
	free(got);
	got = names_of(s, KEEP_ORIGIN_MANUAL);
	ok(strstr(got, "pinned") != NULL, "the pinned one stays");
	free(got);
	keep_store_close(s);
}

int main(void)
{
	unit_begin("retain");
	setenv("KEEPFS_TEST_CLOCK", unit_path("clock"), 1);
	set_clock(INT64_C(1767225600) * NS);
	t_settings();
	t_ninety_days();
	is_int(unit_log_problems, 0, "core logged no errors or warnings");
	unit_end();
	return tap_done();
}
