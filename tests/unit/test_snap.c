/*
 * test_snap.c - snapshots, the commit list and points in time.
 *
 * A snapshot names a commit holding every change made before the call
 * (dirty data included), keeps its view through later writes and renames,
 * and its id is never handed out again.  Every refusal has its exact code
 * and changes nothing.  Read-only handles (also on a store made before the
 * snapshots table existed) see the committed snapshots.  Also: commit
 * listing, keep_commit_at at its boundaries, view counts, the time parser
 * and formatter, the inode number limit, and what keep_check says about
 * damaged snapshot rows.
 */
#include <pthread.h>

#include "unit_sql.h"

#define SEC 1000000000LL

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ---- names and origins --------------------------------------------------- */

static void t_names(void)
{
	char long_name[KEEP_SNAP_NAME_MAX + 2];
	static const struct {
		const char *name;
		int want;
	} cases[] = {
		{"a", 0},
		{"nightly", 0},
		{"2026-11-24T08:35:00Z", 0},
		{"x@y", 0},
		{"...", 0},
		{".hidden", 0},
		{" ", 0},
		{"\xff\xfe bytes", 0},
		{"", EINVAL},
		{".", EINVAL},
		{"..", EINVAL},
		{"a/b", EINVAL},
		{"/", EINVAL},
		{"@", EINVAL},
		{"@-10m", EINVAL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(keep_snapshot_name_check(cases[i].name), cases[i].want,
		       "name check '%s'", cases[i].name);
	is_int(keep_snapshot_name_check(NULL), EINVAL, "name check NULL");
	memset(long_name, 'n', sizeof(long_name));
	long_name[KEEP_SNAP_NAME_MAX] = '\0';
	is_int(keep_snapshot_name_check(long_name), 0, "a 255-byte name is valid");
	long_name[KEEP_SNAP_NAME_MAX] = 'n';
	long_name[KEEP_SNAP_NAME_MAX + 1] = '\0';
	is_int(keep_snapshot_name_check(long_name), ENAMETOOLONG,
	       "a 256-byte name is ENAMETOOLONG");

	is_str(keep_origin_name(KEEP_ORIGIN_MANUAL), "manual", "origin manual");
	is_str(keep_origin_name(KEEP_ORIGIN_AUTO), "auto", "origin auto");
	is_str(keep_origin_name(KEEP_ORIGIN_PRE_RESTORE), "pre-restore",
	       "origin pre-restore");
	is_str(keep_origin_name(KEEP_ORIGIN_RECEIVED), "received",
	       "origin received");
	is_str(keep_origin_name(4), "unknown", "origin 4 is unknown");
	is_str(keep_origin_name(-1), "unknown", "origin -1 is unknown");
}

/* ---- times --------------------------------------------------------------- */

#define T0 1795509300LL /* 2026-11-24T08:35:00Z */

static void t_parse_time(void)
{
	const int64_t now = 1800000000LL * SEC + 123;
	static const struct {
		const char *text;
		int64_t want;
	} good[] = {
		{"1970-01-01T00:00:00Z", 0},
		{"1970-01-01T00:00Z", 0},
		{"1970-01-01T00:00:01Z", SEC},
		{"2026-11-24T08:35:00Z", T0 * SEC},
		{"2026-11-24T08:35Z", T0 * SEC},
		{"2026-11-24T08:35:07Z", (T0 + 7) * SEC},
		{"2026-11-24T09:35:00+01:00", T0 * SEC},
		{"2026-11-24T09:35:00+0100", T0 * SEC},
		{"2026-11-24T09:35+01:00", T0 * SEC},
		{"2026-11-24T03:05:00-05:30", T0 * SEC},
		{"2026-11-24T03:05-0530", T0 * SEC},
		{"2026-11-24T08:35:00+00:00", T0 * SEC},
		{"2026-11-24T08:35:00-00:00", T0 * SEC},
		{"2026-11-25T00:35:00+16:00", T0 * SEC},
		{"2026-11-24T08:35:00.5Z", T0 * SEC + 500000000},
		{"2026-11-24T08:35:00.123Z", T0 * SEC + 123000000},
		{"2026-11-24T08:35:00.000000001Z", T0 * SEC + 1},
		{"2026-11-24T08:35:00.123456789Z", T0 * SEC + 123456789},
		{"2026-11-24T09:35:00.25+01:00", T0 * SEC + 250000000},
		{"2024-02-29T12:00:00Z", 1709208000LL * SEC},
		{"2000-02-29T00:00:00Z", 951782400LL * SEC},
		{"2026-12-31T23:59:59Z", 1798761599LL * SEC},
		{"1969-12-31T23:59:59Z", -SEC},
		{"1969-12-31T23:59:59.5Z", -500000000},
		{"2262-04-11T23:47:16.854775807Z", INT64_MAX},
		{"1677-09-21T00:12:43.145224192Z", INT64_MIN},
		{"-30s", now - 30 * SEC},
		{"-1s", now - SEC},
		{"-10m", now - 600 * SEC},
		{"-2h", now - 7200 * SEC},
		{"-1d", now - 86400 * SEC},
		{"-1w", now - 7 * 86400 * SEC},
		{"-05m", now - 300 * SEC},
		{"-100000d", now - 100000LL * 86400 * SEC},
	};
	static const char *const bad[] = {
		"",
		"Z",
		"now",
		"2026",
		"2026-11-24",
		"2026-11-24T08Z",
		"2026-11-24T08:35:00",		/* no zone */
		"2026-11-24T08:35",		/* no zone */
		"2026-13-01T00:00:00Z",		/* month 13 */
		"2026-00-01T00:00:00Z",		/* month 0 */
		"2026-11-00T00:00:00Z",		/* day 0 */
		"2026-11-31T00:00:00Z",		/* November 31 */
		"2026-02-30T00:00:00Z",		/* February 30 */
		"2025-02-29T00:00:00Z",		/* not a leap year */
		"1900-02-29T00:00:00Z",		/* nor is 1900 */
		"2026-11-24T24:00:00Z",		/* hour 24 */
		"2026-11-24T08:60:00Z",
		"2026-11-24T08:35:60Z",		/* no leap seconds */
		"2026-11-24T08:35:00Zjunk",
		"2026-11-24T08:35:00Z ",
		" 2026-11-24T08:35:00Z",
		"2026-11-24 08:35:00Z",
		"2026-11-24t08:35:00z",
		"2026-11-24T08:35:00.Z",
		"2026-11-24T08:35:00.1234567890Z", /* 10 digits */
		"2026-11-24T08:35:00,5Z",
		"2026-11-24T08:35.5Z",		/* fraction without seconds */
		"2026-11-24T08:35:0Z",
		"2026-11-24T8:35:00Z",
		"2026-1-24T08:35:00Z",
		"26-11-24T08:35:00Z",
		"+2026-11-24T08:35:00Z",
		"2026-11-24T08:35:00+1:00",
		"2026-11-24T08:35:00+01",
		"2026-11-24T08:35:00+01:0",
		"2026-11-24T08:35:00+010",
		"2026-11-24T08:35:00+24:00",
		"2026-11-24T08:35:00+01:60",
		"2026-11-24T08:35:00+01:00Z",
		"2026-11-24T08:35:00Z+01:00",
		"2262-04-11T23:47:16.854775808Z", /* one past INT64_MAX */
		"1677-09-21T00:12:43.145224191Z", /* one before INT64_MIN */
		"3000-01-01T00:00:00Z",
		"1000-01-01T00:00:00Z",
		"-0m",
		"-0s",
		"-5",
		"5m",
		"+5m",
		"-m",
		"-",
		"--5m",
		"-+5m",
		"- 5m",
		"-5 m",
		"-5m ",
		"-5M",
		"-5x",
		"-5mm",
		"-5ms",
		"-1.5h",
		"-99999999999999999999s",	/* overflows the number */
		"-9223372036854775807w",	/* overflows the product */
		"-200000000d",			/* overflows the result */
	};
	int64_t t;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		t = 42;
		int rc = keep_parse_time(good[i].text, now, &t);
		if (!ok(rc == 0 && t == good[i].want, "parse '%s'", good[i].text))
			diag("  rc %d, got %" PRId64 ", want %" PRId64, rc, t,
			     good[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 42;
		int rc = keep_parse_time(bad[i], now, &t);
		ok(rc == EINVAL && t == 42, "refuse '%s' (EINVAL, out untouched)",
		   bad[i]);
	}
	is_int(keep_parse_time("-1s", INT64_MIN + 5, &t), EINVAL,
	       "a relative time before INT64_MIN is EINVAL");
	is_int(keep_parse_time(NULL, now, &t), EINVAL, "NULL text is EINVAL");
}

static void t_format_time(void)
{
	static const struct {
		int64_t ns;
		const char *want;
	} cases[] = {
		{0, "1970-01-01T00:00:00Z"},
		{T0 * SEC, "2026-11-24T08:35:00Z"},
		{T0 * SEC + 999999999, "2026-11-24T08:35:00Z"},
		{T0 * SEC - 1, "2026-11-24T08:34:59Z"},
		{-1, "1969-12-31T23:59:59Z"},
		{-SEC, "1969-12-31T23:59:59Z"},
		{-SEC - 1, "1969-12-31T23:59:58Z"},
		{1709208000LL * SEC, "2024-02-29T12:00:00Z"},
		{INT64_MAX, "2262-04-11T23:47:16Z"},
		{INT64_MIN, "1677-09-21T00:12:43Z"},
	};
	char buf[32], small[5];
	int64_t back;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		keep_format_time(cases[i].ns, buf, 21);
		is_str(buf, cases[i].want, "format %" PRId64, cases[i].ns);
	}
	keep_format_time(T0 * SEC + 5, buf, sizeof(buf));
	ok(keep_parse_time(buf, 0, &back) == 0 && back == T0 * SEC,
	   "a formatted time parses back to its whole second");
	memset(small, 'x', sizeof(small));
	keep_format_time(T0 * SEC, small, sizeof(small));
	is_str(small, "2026", "a short buffer gets a terminated prefix");
}

/* ---- listing helpers ----------------------------------------------------- */

struct snaps {
	char text[16384];
	uint64_t ids[512];
	size_t n;
	size_t stop_at;	      /* > 0: return 7 at this entry */
	struct keep_store *s; /* set: call back into the store */
	int inner_rc;
};

static int snap_cb(void *ctx, const struct keep_snapshot *sn)
{
	struct snaps *l = ctx;
	size_t used = strlen(l->text);

	if (l->stop_at && l->n + 1 == l->stop_at)
		return 7;
	if (l->s) {
		struct keep_snapshot again;
		int rc = keep_snapshot_get(l->s, sn->name, &again);
		if (rc == 0 && again.id != sn->id)
			rc = -100;
		if (rc && !l->inner_rc)
			l->inner_rc = rc;
	}
	snprintf(l->text + used, sizeof(l->text) - used, "%s%" PRIu64 ":%s",
		 used ? "," : "", sn->id, sn->name);
	if (l->n < 512)
		l->ids[l->n] = sn->id;
	l->n++;
	return 0;
}

/* "id:name,..." of the snapshots after `after`, "ERR:rc" on failure. */
static const char *snap_ls(struct keep_store *s, uint64_t after)
{
	static struct snaps l;
	int rc;

	memset(&l, 0, sizeof(l));
	rc = keep_snapshot_list(s, after, snap_cb, &l);
	if (rc)
		snprintf(l.text, sizeof(l.text), "ERR:%d", rc);
	return l.text;
}

struct commits {
	struct keep_commit_info c[4096];
	size_t n;
	size_t stop_at;
};

static int commit_cb(void *ctx, const struct keep_commit_info *c)
{
	struct commits *l = ctx;

	if (l->stop_at && l->n + 1 == l->stop_at)
		return 9;
	if (l->n < 4096)
		l->c[l->n] = *c;
	l->n++;
	return 0;
}

static int snap_same(const struct keep_snapshot *a,
		     const struct keep_snapshot *b)
{
	int same = a->id == b->id && a->commit == b->commit &&
		   a->created_ns == b->created_ns &&
		   a->commit_ns == b->commit_ns && a->origin == b->origin &&
		   strcmp(a->name, b->name) == 0;

	if (!same)
		diag("snapshot differs: id %" PRIu64 "/%" PRIu64 " commit %" PRIu64
		     "/%" PRIu64 " created %" PRId64 "/%" PRId64 " origin %d/%d "
		     "name '%s'/'%s'",
		     a->id, b->id, a->commit, b->commit, a->created_ns,
		     b->created_ns, a->origin, b->origin, a->name, b->name);
	return same;
}

/* ---- snapshots ----------------------------------------------------------- */

static void t_snapshots(void)
{
	struct keep_store *s = unit_store("snap", 0), *ro = NULL;
	struct keep_snapshot first, second, got, sn;
	struct keep_commit_info ci;
	uint64_t a, big, last, c;
	size_t big_len = 3u << 20;
	uint8_t *big_data = malloc(big_len);
	char long_name[KEEP_SNAP_NAME_MAX + 2];
	int64_t before, after;

	unit_fill_random(big_data, big_len);

	/* a store fresh from init has commit 1: a snapshot names it */
	last = keep_last_commit(s);
	is_int(last, 1, "a new store's last commit is 1");
	is_int(keep_snapshot_create(s, "empty", KEEP_ORIGIN_AUTO, &sn), 0,
	       "snapshot of a new store");
	is_int(sn.id, 1, "the first snapshot has id 1");
	is_int(sn.commit, 1, "and names commit 1");
	is_int(keep_last_commit(s), 1, "no empty commit was made");
	is_str(unit_ls(s, sn.commit, KEEP_ROOT_INO), "", "its view is an empty root");
	is_int(sn.origin, KEEP_ORIGIN_AUTO, "its origin");

	/* dirty data, never committed explicitly, is in the snapshot */
	a = unit_file(s, KEEP_ROOT_INO, "a", "one", 3);
	big = unit_file(s, KEEP_ROOT_INO, "big", big_data, big_len);
	ok(a && big, "write a small and a 3 MiB file, no commit");
	ok(keep_dirty_since(s) > 0, "the store is dirty");
	before = now_ns();
	is_int(keep_snapshot_create(s, "first", KEEP_ORIGIN_MANUAL, &first), 0,
	       "snapshot 'first'");
	after = now_ns();
	is_int(first.id, 2, "id 2");
	is_str(first.name, "first", "name");
	is_int(first.origin, KEEP_ORIGIN_MANUAL, "origin manual");
	ok(first.commit > last, "names a new commit (%" PRIu64 ")", first.commit);
	is_int(keep_last_commit(s), first.commit, "which is the last commit");
	is_int(keep_dirty_since(s), 0, "nothing is left dirty");
	ok(first.created_ns >= before && first.created_ns <= after,
	   "created_ns is the time of the call");
	ok(keep_commit_get(s, first.commit, &ci) == 0 && ci.id == first.commit &&
		   ci.time_ns == first.commit_ns,
	   "commit_ns is the commit's time");
	ok(unit_same_str(s, first.commit, a, "one"), "the view has the small file");
	ok(unit_same(s, first.commit, big, big_data, big_len),
	   "and the 3 MiB file, encoded outside the lock");
	ok(keep_snapshot_get(s, "first", &got) == 0 && snap_same(&got, &first),
	   "get 'first' returns what create did");
	ok(keep_snapshot_by_id(s, first.id, &got) == 0 && snap_same(&got, &first),
	   "by_id returns the same");

	/* nothing changed since: the same commit, no new commit */
	last = keep_last_commit(s);
	is_int(keep_snapshot_create(s, "second", KEEP_ORIGIN_PRE_RESTORE, &second),
	       0, "snapshot 'second' with nothing changed");
	is_int(second.commit, first.commit, "names the same commit");
	is_int(keep_last_commit(s), last, "no empty commit was made");
	is_int(second.id, 3, "id 3");
	is_int(second.commit_ns, first.commit_ns, "the commit's time");
	is_int(keep_snapshot_create(s, "third", KEEP_ORIGIN_RECEIVED, NULL), 0,
	       "create with a NULL out-pointer");

	/* refusals change nothing, not even pending changes */
	is_int(keep_write(s, a, 0, "ONE", 3), 0, "a pending write");
	memset(&sn, 0x5a, sizeof(sn));
	got = sn;
	is_int(keep_snapshot_create(s, "first", 0, &sn), EEXIST,
	       "a taken name is EEXIST");
	ok(memcmp(&sn, &got, sizeof(sn)) == 0, "the out-pointer is untouched");
	ok(keep_dirty_since(s) > 0, "the pending write was not committed");
	is_int(keep_last_commit(s), last, "no commit was made");
	is_int(keep_snapshot_create(s, "", 0, &sn), EINVAL, "empty name");
	is_int(keep_snapshot_create(s, ".", 0, &sn), EINVAL, "name '.'");
	is_int(keep_snapshot_create(s, "..", 0, &sn), EINVAL, "name '..'");
	is_int(keep_snapshot_create(s, "a/b", 0, &sn), EINVAL, "name with '/'");
	is_int(keep_snapshot_create(s, "@-1m", 0, &sn), EINVAL, "name with '@'");
	is_int(keep_snapshot_create(s, NULL, 0, &sn), EINVAL, "NULL name");
	memset(long_name, 'n', sizeof(long_name));
	long_name[KEEP_SNAP_NAME_MAX + 1] = '\0';
	is_int(keep_snapshot_create(s, long_name, 0, &sn), ENAMETOOLONG,
	       "256-byte name");
	is_int(keep_snapshot_create(s, "o", 4, &sn), KEEP_E_INVAL,
	       "origin 4 is KEEP_E_INVAL");
	is_int(keep_snapshot_create(s, "o", -1, &sn), KEEP_E_INVAL,
	       "origin -1 is KEEP_E_INVAL");
	ok(memcmp(&sn, &got, sizeof(sn)) == 0, "the out-pointer is still untouched");
	ok(keep_dirty_since(s) > 0, "the pending write is still pending");
	is_str(snap_ls(s, 0), "1:empty,2:first,3:second,4:third",
	       "the list is unchanged");

	/* a 255-byte name and a name of arbitrary bytes */
	long_name[KEEP_SNAP_NAME_MAX] = '\0';
	is_int(keep_snapshot_create(s, long_name, 0, &sn), 0, "255-byte name");
	ok(sn.id == 5 && strcmp(sn.name, long_name) == 0, "round-trips");
	ok(keep_dirty_since(s) == 0 && unit_same_str(s, sn.commit, a, "ONE"),
	   "and committed the pending write");
	ok(keep_snapshot_get(s, long_name, &got) == 0 && got.id == 5,
	   "get by the long name");
	is_int(keep_snapshot_delete(s, long_name), 0, "delete it");
	is_int(keep_snapshot_create(s, "\xc3\xa9t\xc3\xa9 \x01", 0, &sn), 0,
	       "name of arbitrary bytes");
	is_int(sn.id, 6, "id 6: id 5 is not reused");
	ok(keep_snapshot_get(s, "\xc3\xa9t\xc3\xa9 \x01", &got) == 0 &&
		   got.id == 6,
	   "get it");
	is_int(keep_snapshot_get(s, "\xc3\xa9t\xc3\xa9 ", &got), ENOENT,
	   "a prefix of its name is not it");
	is_int(keep_snapshot_delete(s, "\xc3\xa9t\xc3\xa9 \x01"), 0, "delete it");

	/* later writes do not change a snapshot's view */
	is_int(keep_write(s, a, 0, "TWO!", 4), 0, "overwrite a");
	is_int(keep_write(s, big, 1000, "zzz", 3), 0, "patch big");
	is_int(keep_unlink(s, KEEP_ROOT_INO, "big"), 0, "unlink big");
	keep_forget(s, big);
	ok(unit_file(s, KEEP_ROOT_INO, "new", "new", 3) != 0, "create new");
	is_int(keep_commit(s, &c), 0, "commit");
	ok(unit_same_str(s, first.commit, a, "one"), "view 'first': a unchanged");
	ok(unit_same(s, first.commit, big, big_data, big_len),
	   "view 'first': big unchanged");
	is_str(unit_ls(s, first.commit, KEEP_ROOT_INO), "a,big",
	       "view 'first': the same names");
	is_str(unit_ls(s, KEEP_LIVE, KEEP_ROOT_INO), "a,new", "live moved on");

	/* get / by_id misses */
	is_int(keep_snapshot_get(s, "nope", &got), ENOENT, "get a missing name");
	is_int(keep_snapshot_get(s, "", &got), ENOENT, "get the empty name");
	is_int(keep_snapshot_by_id(s, 0, &got), ENOENT, "by_id 0");
	is_int(keep_snapshot_by_id(s, 5, &got), ENOENT, "by_id of a deleted one");
	is_int(keep_snapshot_by_id(s, 999, &got), ENOENT, "by_id 999");
	is_int(keep_snapshot_by_id(s, UINT64_MAX, &got), ENOENT, "by_id max");

	/* rename */
	is_int(keep_snapshot_rename(s, "first", "renamed"), 0, "rename first");
	is_int(keep_snapshot_get(s, "first", &got), ENOENT, "the old name is gone");
	ok(keep_snapshot_get(s, "renamed", &got) == 0 && got.id == first.id &&
		   got.commit == first.commit && got.created_ns == first.created_ns &&
		   got.origin == first.origin,
	   "the new name is the same snapshot");
	ok(unit_same_str(s, got.commit, a, "one") &&
		   unit_same(s, got.commit, big, big_data, big_len),
	   "its view is unchanged");
	is_int(keep_snapshot_rename(s, "renamed", "second"), EEXIST,
	       "rename onto a taken name");
	is_int(keep_snapshot_rename(s, "nope", "other"), ENOENT,
	       "rename a missing one");
	is_int(keep_snapshot_rename(s, "renamed", "@x"), EINVAL,
	       "rename to a name with '@'");
	is_int(keep_snapshot_rename(s, "renamed", ""), EINVAL,
	       "rename to the empty name");
	is_int(keep_snapshot_rename(s, "renamed", "a/b"), EINVAL,
	       "rename to a name with '/'");
	is_int(keep_snapshot_rename(s, "renamed", long_name), 0,
	       "rename to a 255-byte name");
	long_name[KEEP_SNAP_NAME_MAX] = 'n';
	is_int(keep_snapshot_rename(s, "renamed", long_name), ENAMETOOLONG,
	       "rename to a 256-byte name");
	long_name[KEEP_SNAP_NAME_MAX] = '\0';
	is_int(keep_snapshot_rename(s, long_name, "renamed"), 0, "and back");
	is_int(keep_snapshot_rename(s, "renamed", "renamed"), 0,
	       "rename to its own name is a no-op");
	is_int(keep_snapshot_rename(s, "nope", "nope"), ENOENT,
	       "a missing one renamed to its own name is ENOENT");
	is_str(snap_ls(s, 0), "1:empty,2:renamed,3:second,4:third",
	       "the list after renames");

	/* rename and delete commit pending changes with them */
	last = keep_last_commit(s);
	is_int(keep_write(s, a, 0, "3", 1), 0, "a pending write");
	is_int(keep_snapshot_rename(s, "third", "3rd"), 0, "rename with it pending");
	ok(keep_last_commit(s) == last + 1 && keep_dirty_since(s) == 0,
	   "the pending write was committed with the rename");
	is_int(keep_write(s, a, 0, "4", 1), 0, "another pending write");
	is_int(keep_snapshot_delete(s, "3rd"), 0, "delete with it pending");
	ok(keep_last_commit(s) == last + 2 && keep_dirty_since(s) == 0,
	   "the pending write was committed with the deletion");

	/* delete drops only the name */
	is_int(keep_snapshot_delete(s, "second"), 0, "delete 'second'");
	is_int(keep_snapshot_get(s, "second", &got), ENOENT, "it is gone");
	is_int(keep_snapshot_by_id(s, second.id, &got), ENOENT, "by id too");
	is_int(keep_snapshot_delete(s, "second"), ENOENT, "delete it again");
	is_int(keep_snapshot_delete(s, "nope"), ENOENT, "delete a missing one");
	is_int(keep_snapshot_delete(s, NULL), KEEP_E_INVAL, "delete NULL");
	ok(unit_same_str(s, second.commit, a, "one"),
	   "the commit it named is still readable");
	is_str(snap_ls(s, 0), "1:empty,2:renamed", "the list after deletions");

	/* ids are never reused, even the newest deleted one */
	is_int(keep_snapshot_create(s, "n7", 0, &sn), 0, "create n7");
	is_int(sn.id, 7, "gets id 7");
	is_int(keep_snapshot_delete(s, "n7"), 0, "delete n7 (the newest)");
	is_int(keep_snapshot_create(s, "n8", 0, &sn), 0, "create n8");
	is_int(sn.id, 8, "gets id 8, not 7");
	is_int(keep_snapshot_create(s, "second", 0, &sn), 0,
	       "a deleted name can be used again");
	is_int(sn.id, 9, "with a new id");

	/* listing */
	is_str(snap_ls(s, 0), "1:empty,2:renamed,8:n8,9:second", "list all");
	is_str(snap_ls(s, 2), "8:n8,9:second", "list after 2");
	is_str(snap_ls(s, 7), "8:n8,9:second", "list after a deleted id");
	is_str(snap_ls(s, 9), "", "list after the last");
	is_str(snap_ls(s, UINT64_MAX), "", "list after UINT64_MAX");
	{
		static struct snaps l;
		memset(&l, 0, sizeof(l));
		l.stop_at = 3;
		is_int(keep_snapshot_list(s, 0, snap_cb, &l), 7,
		       "a callback's non-zero stops the walk and is returned");
		is_str(l.text, "1:empty,2:renamed", "after two entries");
		memset(&l, 0, sizeof(l));
		l.s = s;
		is_int(keep_snapshot_list(s, 0, snap_cb, &l), 0,
		       "a callback may call back into the store");
		is_int(l.inner_rc, 0, "and finds each snapshot by name");
		is_int(l.n, 4, "every entry was delivered");
	}

	/* survives close and reopen; a read-only handle sees the same */
	ok(keep_snapshot_get(s, "renamed", &first) == 0, "remember 'renamed'");
	s = unit_reopen(s, "snap", KEEP_OPEN_WRITE);
	is_str(snap_ls(s, 0), "1:empty,2:renamed,8:n8,9:second",
	       "the list after reopening");
	ok(keep_snapshot_get(s, "renamed", &got) == 0 && snap_same(&got, &first),
	   "a snapshot after reopening is the same");
	ok(unit_same_str(s, got.commit, a, "one") &&
		   unit_same(s, got.commit, big, big_data, big_len),
	   "with the same view");
	is_int(keep_snapshot_create(s, "n10", 0, &sn), 0, "create after reopening");
	is_int(sn.id, 10, "the ids go on from 10");

	is_int(keep_store_open(unit_path("snap"), KEEP_OPEN_RDONLY, &ro), 0,
	       "open read-only while the writer is open");
	is_str(snap_ls(ro, 0), "1:empty,2:renamed,8:n8,9:second,10:n10",
	       "the read-only handle lists the same");
	ok(keep_snapshot_get(ro, "renamed", &got) == 0 && snap_same(&got, &first),
	   "and gets the same");
	ok(unit_same_str(ro, got.commit, a, "one") &&
		   unit_same(ro, got.commit, big, big_data, big_len),
	   "and reads the same view");
	ok(keep_snapshot_by_id(ro, 10, &got) == 0 && strcmp(got.name, "n10") == 0,
	   "by_id on the read-only handle");
	is_int(keep_snapshot_create(ro, "x", 0, &sn), EROFS,
	       "create on a read-only handle is EROFS");
	is_int(keep_snapshot_delete(ro, "n10"), EROFS,
	       "delete on a read-only handle is EROFS");
	is_int(keep_snapshot_rename(ro, "n10", "n11"), EROFS,
	       "rename on a read-only handle is EROFS");
	is_int(keep_snapshot_rename(ro, "n10", "n10"), EROFS,
	       "rename to its own name on a read-only handle is EROFS");
	is_int(keep_snapshot_create(ro, "@x", 0, &sn), EINVAL,
	       "a bad name on a read-only handle is EINVAL");
	is_int(keep_snapshot_create(s, "n11", 0, &sn), 0,
	       "the writer takes another snapshot");
	ok(keep_snapshot_get(ro, "n11", &got) == 0 && got.id == 11,
	   "the read-only handle sees it at once");
	is_int(keep_snapshot_delete(s, "n11"), 0, "the writer deletes it");
	is_int(keep_snapshot_get(ro, "n11", &got), ENOENT,
	       "the read-only handle sees that too");
	keep_store_close(ro);

	/* more than one batch of the listing */
	{
		static struct snaps l;
		char name[16];
		int rc = 0;

		for (int i = 0; i < 150 && !rc; i++) {
			snprintf(name, sizeof(name), "m%03d", i);
			rc = keep_snapshot_create(s, name, KEEP_ORIGIN_AUTO, NULL);
		}
		is_int(rc, 0, "150 more snapshots");
		memset(&l, 0, sizeof(l));
		is_int(keep_snapshot_list(s, 0, snap_cb, &l), 0, "list them");
		is_int(l.n, 155, "155 in all");
		rc = 0;
		for (size_t i = 1; i < l.n && i < 512; i++)
			if (l.ids[i] <= l.ids[i - 1])
				rc = 1;
		is_int(rc, 0, "in increasing id order");
		is_int(l.ids[154], 161, "the last has id 161");
		memset(&l, 0, sizeof(l));
		is_int(keep_snapshot_list(s, 100, snap_cb, &l), 0, "list after 100");
		ok(l.n == 61 && l.ids[0] == 101 && l.ids[60] == 161,
		   "ids 101 to 161");
	}
	{
		uint64_t problems = 99;
		is_int(keep_check(s, 0, NULL, NULL, &problems), 0,
		       "keep_check is clean");
		is_int(problems, 0, "no problems");
	}
	keep_store_close(s);
	free(big_data);
}

/* ---- a snapshot while commits run in another thread ---------------------- */

struct committer {
	struct keep_store *s;
	volatile int stop;
	int rc;
};

static void *commit_loop(void *arg)
{
	struct committer *c = arg;

	while (!c->stop && !c->rc) {
		c->rc = keep_commit_nosync(c->s, NULL);
		usleep(200);
	}
	return NULL;
}

static void t_concurrent(void)
{
	struct keep_store *s = unit_store("conc", 0);
	size_t len = (3u << 20) / 2; /* over the encode-outside threshold */
	uint8_t *buf = malloc(len);
	struct committer c = {.s = s};
	pthread_t th;
	uint64_t ino;
	int bad = 0, rc = 0;

	unit_fill_random(buf, len);
	ino = unit_file(s, KEEP_ROOT_INO, "f", buf, len);
	ok(ino != 0, "a 1.5 MiB file");
	pthread_create(&th, NULL, commit_loop, &c);
	for (int i = 0; i < 12 && !rc; i++) {
		struct keep_snapshot sn;
		char name[16];

		snprintf(name, sizeof(name), "g%d", i);
		memset(buf, 'a' + i, 64);
		buf[len / 2] = (uint8_t)i;
		rc = keep_write(s, ino, 0, buf, len);
		if (!rc)
			rc = keep_snapshot_create(s, name, 0, &sn);
		if (!rc && !unit_same(s, sn.commit, ino, buf, len))
			bad++;
	}
	c.stop = 1;
	pthread_join(th, NULL);
	is_int(rc, 0, "12 writes, each followed by a snapshot, while another "
		      "thread commits in a loop");
	is_int(c.rc, 0, "the other thread's commits succeed");
	is_int(bad, 0, "each snapshot holds the write made before it");
	keep_store_close(s);
	free(buf);
}

/* ---- a snapshot whose commit fails --------------------------------------- */

/* KEEP_FAULT is "commit:2" (set in main): the second commit fails. */
static void t_failed_commit(void)
{
	struct keep_store *s = unit_store("fail", 0);
	struct keep_snapshot sn;
	uint64_t last;
	int before;

	ok(unit_file(s, KEEP_ROOT_INO, "kept", "k", 1) != 0, "write a file");
	is_int(keep_snapshot_create(s, "ok", 0, &sn), 0,
	       "the snapshot of the first commit succeeds");
	last = keep_last_commit(s);
	ok(unit_file(s, KEEP_ROOT_INO, "lost", "l", 1) != 0, "write another");
	before = unit_log_problems;
	is_int(keep_snapshot_create(s, "bad", 0, &sn), KEEP_E_READONLY,
	       "a snapshot whose commit fails is KEEP_E_READONLY");
	ok(unit_log_problems > before, "the failure is logged");
	unit_log_problems = before;
	is_int(keep_last_commit(s), last, "no commit was made");
	is_int(keep_snapshot_get(s, "bad", &sn), ENOENT, "no snapshot either");
	is_int(keep_snapshot_create(s, "again", 0, &sn), KEEP_E_READONLY,
	       "later snapshots are refused");
	is_int(keep_snapshot_delete(s, "ok"), KEEP_E_READONLY,
	       "deletions too");
	is_int(keep_snapshot_rename(s, "ok", "ok"), KEEP_E_READONLY,
	       "and renames");
	ok(keep_snapshot_get(s, "ok", &sn) == 0 && sn.commit == last,
	   "the committed snapshot is still there");
	is_int(keep_store_close(s), KEEP_E_READONLY, "close reports the failure");
	s = NULL;
	is_int(keep_store_open(unit_path("fail"), KEEP_OPEN_WRITE, &s), 0,
	       "the store opens again");
	is_str(snap_ls(s, 0), "1:ok", "it holds the first snapshot only");
	is_str(unit_ls(s, KEEP_LIVE, KEEP_ROOT_INO), "kept",
	       "and the first commit's file only");
	{
		uint64_t problems = 99;
		is_int(keep_check(s, 1, NULL, NULL, &problems), 0, "checks clean");
		is_int(problems, 0, "no problems");
	}
	keep_store_close(s);
}

/* ---- commits and points in time ------------------------------------------ */

static void t_commits(void)
{
	struct keep_store *s = unit_store("commits", 0), *ro = NULL;
	static struct commits l;
	struct keep_commit_info ci;
	uint64_t ids[6], id;
	int64_t times[6];
	int n = 0, rc = 0;

	ids[n++] = keep_last_commit(s);
	for (int i = 0; i < 5 && !rc; i++) {
		char name[8];
		snprintf(name, sizeof(name), "f%d", i);
		ok(unit_file(s, KEEP_ROOT_INO, name, name, 2) != 0, "write %s", name);
		rc = keep_commit(s, &ids[n++]);
	}
	is_int(rc, 0, "5 commits");
	for (int i = 0; i < n; i++)
		if (keep_commit_get(s, ids[i], &ci) != 0 || ci.id != ids[i])
			rc = 1;
		else
			times[i] = ci.time_ns;
	is_int(rc, 0, "keep_commit_get finds each");
	for (int i = 1; i < n; i++)
		if (times[i] <= times[i - 1] || ids[i] != ids[i - 1] + 1)
			rc = 1;
	is_int(rc, 0, "ids go up by one and times strictly grow");

	memset(&l, 0, sizeof(l));
	is_int(keep_commit_list(s, 0, commit_cb, &l), 0, "list commits");
	is_int(l.n, n, "every commit is listed");
	for (int i = 0; i < n && i < (int)l.n; i++)
		if (l.c[i].id != ids[i] || l.c[i].time_ns != times[i])
			rc = 1;
	is_int(rc, 0, "in id order, with their times");
	memset(&l, 0, sizeof(l));
	is_int(keep_commit_list(s, ids[3], commit_cb, &l), 0, "list after a commit");
	ok(l.n == 2 && l.c[0].id == ids[4] && l.c[1].id == ids[5],
	   "the two after it");
	memset(&l, 0, sizeof(l));
	l.stop_at = 2;
	is_int(keep_commit_list(s, 0, commit_cb, &l), 9,
	       "a callback's non-zero stops the walk and is returned");
	is_int(l.n, 1, "after one entry");
	is_int(keep_commit_get(s, 0, &ci), ENOENT, "commit 0 does not exist");
	is_int(keep_commit_get(s, ids[5] + 1, &ci), ENOENT,
	       "nor one past the last");
	is_int(keep_commit_get(s, UINT64_MAX, &ci), ENOENT, "nor UINT64_MAX");

	/* keep_commit_at at the boundaries */
	for (int i = 0; i < n; i++) {
		id = 0;
		if (keep_commit_at(s, times[i], &id) != 0 || id != ids[i])
			rc = 1;
		if (i > 0 && (keep_commit_at(s, times[i] - 1, &id) != 0 ||
			      id != ids[i - 1]))
			rc = 1;
		if (i > 0 &&
		    (keep_commit_at(s, times[i - 1] + (times[i] - times[i - 1]) / 2,
				    &id) != 0 ||
		     id != ids[i - 1]))
			rc = 1;
	}
	is_int(rc, 0, "at a commit's time: that commit; just before or between: "
		      "the previous one");
	id = 77;
	is_int(keep_commit_at(s, times[0] - 1, &id), ENOENT,
	       "before the first commit: ENOENT");
	is_int(id, 77, "the out-pointer is untouched");
	is_int(keep_commit_at(s, INT64_MIN, &id), ENOENT, "at INT64_MIN: ENOENT");
	ok(keep_commit_at(s, times[5] + 3600 * SEC, &id) == 0 && id == ids[5],
	   "an hour after the last: the last");
	ok(keep_commit_at(s, INT64_MAX, &id) == 0 && id == ids[5],
	   "at INT64_MAX: the last");

	/* read-only handle */
	is_int(keep_store_open(unit_path("commits"), KEEP_OPEN_RDONLY, &ro), 0,
	       "open read-only");
	memset(&l, 0, sizeof(l));
	ok(keep_commit_list(ro, 0, commit_cb, &l) == 0 && l.n == (size_t)n,
	   "the read-only handle lists the commits");
	ok(keep_commit_at(ro, times[2], &id) == 0 && id == ids[2],
	   "and finds a point in time");
	ok(unit_file(s, KEEP_ROOT_INO, "pending", "p", 1) != 0,
	   "the writer has a pending change");
	memset(&l, 0, sizeof(l));
	ok(keep_commit_list(ro, 0, commit_cb, &l) == 0 && l.n == (size_t)n,
	   "which makes no commit the read-only handle sees");
	is_int(keep_last_commit(ro), ids[5],
	       "the read-only handle's last commit is the writer's");
	is_int(keep_commit(s, &id), 0, "the writer commits");
	ok(keep_commit_get(ro, id, &ci) == 0, "the read-only handle sees it");
	is_int(keep_last_commit(ro), id, "and its last commit follows");
	keep_store_close(ro);
	keep_store_close(s);

	/* the clock stepped back: a commit's time still grows */
	{
		int64_t future = now_ns() + 3600 * SEC;
		char sql[200];
		uint64_t last, next;

		s = NULL;
		last = (uint64_t)unit_sql_int("commits", "SELECT max(id) FROM commits");
		snprintf(sql, sizeof(sql),
			 "UPDATE commits SET time_ns = %" PRId64 " WHERE id = %" PRIu64,
			 future, last);
		is_int(unit_sql("commits", sql), 1,
		       "make the last commit an hour in the future");
		is_int(keep_store_open(unit_path("commits"), KEEP_OPEN_WRITE, &s), 0,
		       "reopen");
		ok(unit_file(s, KEEP_ROOT_INO, "later", "l", 1) != 0, "a change");
		is_int(keep_commit(s, &next), 0, "commit it");
		ok(keep_commit_get(s, next, &ci) == 0 && ci.time_ns == future + 1,
		   "its time is the previous one + 1 ns");
		ok(keep_commit_at(s, future, &id) == 0 && id == last,
		   "at the future time: the earlier commit");
		ok(keep_commit_at(s, future + 1, &id) == 0 && id == next,
		   "1 ns later: the new one");
		ok(keep_commit_at(s, now_ns(), &id) == 0 && id == last - 1,
		   "now: the commit before the future one");
		keep_store_close(s);
	}
}

/* ---- counts of a view ---------------------------------------------------- */

static int vs_is(struct keep_store *s, uint64_t view, uint64_t files,
		 uint64_t dirs, uint64_t others, uint64_t bytes)
{
	struct keep_view_stats v;
	int rc = keep_view_stats(s, view, &v);

	if (rc != 0 || v.files != files || v.dirs != dirs ||
	    v.others != others || v.logical_bytes != bytes) {
		diag("view %" PRIu64 ": rc %d, files %" PRIu64 " dirs %" PRIu64
		     " others %" PRIu64 " bytes %" PRIu64,
		     view, rc, v.files, v.dirs, v.others, v.logical_bytes);
		return 0;
	}
	return 1;
}

static void t_view_stats(void)
{
	struct keep_store *s = unit_store("stats", 0), *ro = NULL;
	struct keep_attr at;
	struct keep_view_stats v;
	uint64_t c1, c2, d, open_ino, l_ino;

	ok(vs_is(s, KEEP_LIVE, 0, 1, 0, 0), "a new store: the root only");
	ok(vs_is(s, 1, 0, 1, 0, 0), "commit 1: the root only");
	is_int(keep_mkdir(s, KEEP_ROOT_INO, "d", 0755, unit_cred(), &at), 0,
	       "mkdir d");
	d = at.ino;
	ok(unit_file(s, KEEP_ROOT_INO, "a", "abc", 3) != 0, "a: 3 bytes");
	ok(unit_file(s, d, "b", "0123456789", 10) != 0, "d/b: 10 bytes");
	ok(unit_file(s, d, "e", NULL, 0) != 0, "d/e: empty");
	is_int(keep_symlink(s, KEEP_ROOT_INO, "l", "a", unit_cred(), &at), 0,
	       "symlink l");
	l_ino = at.ino;
	is_int(keep_mknod(s, d, "p", S_IFIFO | 0644, 0, unit_cred(), &at), 0,
	       "fifo d/p");
	at.size = 1 << 20;
	open_ino = unit_file(s, KEEP_ROOT_INO, "sparse", NULL, 0);
	is_int(keep_setattr(s, open_ino, &at, KEEP_SET_SIZE, &at), 0,
	       "sparse: 1 MiB of hole");
	ok(vs_is(s, KEEP_LIVE, 4, 2, 2, 13 + (1 << 20)),
	   "live before a commit: 4 files, 2 dirs, 2 others");
	is_int(keep_commit(s, &c1), 0, "commit c1");
	ok(vs_is(s, c1, 4, 2, 2, 13 + (1 << 20)), "view c1: the same");

	is_int(keep_unlink(s, KEEP_ROOT_INO, "sparse"), 0,
	       "unlink sparse, still open (not forgotten)");
	is_int(keep_unlink(s, KEEP_ROOT_INO, "l"), 0, "unlink l");
	keep_forget(s, l_ino);
	is_int(keep_write(s, unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "a"), 3, "de", 2),
	       0, "append 2 bytes to a");
	is_int(keep_mkdir(s, d, "sub", 0700, unit_cred(), &at), 0, "mkdir d/sub");
	ok(vs_is(s, KEEP_LIVE, 3, 3, 1, 15),
	   "live: an open unlinked file is not counted");
	ok(vs_is(s, c1, 4, 2, 2, 13 + (1 << 20)), "view c1 is unchanged");
	is_int(keep_commit(s, &c2), 0, "commit c2");
	ok(vs_is(s, c2, 3, 3, 1, 15), "view c2");

	is_int(keep_store_open(unit_path("stats"), KEEP_OPEN_RDONLY, &ro), 0,
	       "open read-only");
	ok(unit_file(s, KEEP_ROOT_INO, "pending", "12345", 5) != 0,
	   "the writer adds a file without committing");
	ok(vs_is(s, KEEP_LIVE, 4, 3, 1, 20), "the writer's live counts have it");
	ok(vs_is(ro, KEEP_LIVE, 3, 3, 1, 15),
	   "the read-only handle's live counts are the committed ones");
	ok(vs_is(ro, c1, 4, 2, 2, 13 + (1 << 20)), "view c1 on the read-only handle");
	memset(&v, 0x5a, sizeof(v));
	is_int(keep_view_stats(s, c2 + 1000, &v), ENOENT,
	       "a commit that does not exist is ENOENT");
	is_int(keep_view_stats(ro, c2 + 1000, &v), ENOENT,
	       "on the read-only handle too");
	is_int(v.files, 0x5a5a5a5a5a5a5a5aull, "the out-pointer is untouched");
	keep_store_close(ro);
	keep_forget(s, open_ino);
	keep_store_close(s);
}

/* ---- a store made before the snapshots table existed --------------------- */

static void t_old_store(void)
{
	struct keep_store *s = unit_store("old", 0), *ro = NULL, *w = NULL;
	struct keep_snapshot sn;
	struct keep_commit_info ci;
	uint64_t c, id;

	ok(unit_file(s, KEEP_ROOT_INO, "f", "data", 4) != 0, "write a file");
	is_int(keep_commit(s, &c), 0, "commit");
	keep_store_close(s);
	is_int(unit_sql("old", "DROP TABLE snapshots; DROP INDEX commits_time"), 0,
	       "drop the snapshots table and the commit time index");
	is_int(unit_sql_int("old", "SELECT count(*) FROM sqlite_master WHERE "
				   "name IN ('snapshots', 'commits_time')"),
	       0, "they are gone");

	is_int(keep_store_open(unit_path("old"), KEEP_OPEN_RDONLY, &ro), 0,
	       "a read-only open works");
	is_str(snap_ls(ro, 0), "", "no snapshots are listed");
	is_int(keep_snapshot_get(ro, "x", &sn), ENOENT, "get is ENOENT");
	is_int(keep_snapshot_by_id(ro, 1, &sn), ENOENT, "by_id is ENOENT");
	ok(keep_commit_get(ro, c, &ci) == 0 &&
		   keep_commit_at(ro, ci.time_ns, &id) == 0 && id == c,
	   "points in time work without the index");
	ok(vs_is(ro, c, 1, 1, 0, 4), "view counts work");
	{
		uint64_t problems = 99;
		is_int(keep_check(ro, 0, NULL, NULL, &problems), 0,
		       "keep_check is clean");
		is_int(problems, 0, "no problems");
	}
	is_int(unit_sql_int("old", "SELECT count(*) FROM sqlite_master WHERE "
				   "name IN ('snapshots', 'commits_time')"),
	       0, "the read-only open changed nothing");

	is_int(keep_store_open(unit_path("old"), KEEP_OPEN_WRITE, &w), 0,
	       "a writable open works");
	is_int(unit_sql_int("old", "SELECT count(*) FROM sqlite_master WHERE "
				   "name IN ('snapshots', 'commits_time')"),
	       2, "and added the table and the index");
	is_str(snap_ls(w, 0), "", "no snapshots yet");
	is_int(keep_snapshot_create(w, "first", 0, &sn), 0, "create one");
	ok(sn.id == 1 && sn.commit == c, "id 1, naming the last commit");
	ok(keep_snapshot_get(ro, "first", &sn) == 0 && sn.id == 1,
	   "the earlier read-only handle sees it");
	is_str(snap_ls(ro, 0), "1:first", "and lists it");
	keep_store_close(ro);
	keep_store_close(w);
	is_int(keep_store_open(unit_path("old"), KEEP_OPEN_RDONLY, &ro), 0,
	       "reopen read-only");
	is_str(snap_ls(ro, 0), "1:first", "the snapshot is there");
	keep_store_close(ro);

	/* only the index missing: readers need only the table */
	is_int(unit_sql("old", "DROP INDEX commits_time"), 0, "drop the index");
	is_int(keep_store_open(unit_path("old"), KEEP_OPEN_RDONLY, &ro), 0,
	       "open read-only");
	is_str(snap_ls(ro, 0), "1:first", "the snapshot is listed");
	ok(keep_commit_at(ro, INT64_MAX, &id) == 0 && id == c,
	   "points in time work");
	keep_store_close(ro);
	is_int(keep_store_open(unit_path("old"), KEEP_OPEN_WRITE, &w), 0,
	       "open for writing");
	is_int(unit_sql_int("old", "SELECT count(*) FROM sqlite_master WHERE "
				   "name = 'commits_time'"),
	       1, "which added the index back");
	is_str(snap_ls(w, 0), "1:first", "the snapshot is still there");
	keep_store_close(w);
}

/* ---- the inode number limit ---------------------------------------------- */

static void t_ino_limit(void)
{
	struct keep_store *s = unit_store("ino", 0);
	struct keep_attr at;
	char sql[128];
	uint64_t problems = 99;

	keep_store_close(s);
	snprintf(sql, sizeof(sql),
		 "UPDATE meta SET value = %" PRIu64 " WHERE key = 'next_ino'",
		 (uint64_t)(KEEP_INO_LIMIT - 1));
	is_int(unit_sql("ino", sql), 1, "set next_ino to KEEP_INO_LIMIT - 1");
	s = unit_reopen(NULL, "ino", KEEP_OPEN_WRITE);
	ok(unit_mkfile(s, KEEP_ROOT_INO, "last", 0644, &at) == 0 &&
		   at.ino == KEEP_INO_LIMIT - 1,
	   "the last inode number below the limit is handed out");
	is_int(unit_mkfile(s, KEEP_ROOT_INO, "over", 0644, &at), ENOSPC,
	       "the next file is ENOSPC");
	is_int(keep_mkdir(s, KEEP_ROOT_INO, "over", 0755, unit_cred(), &at), ENOSPC,
	       "a directory too");
	is_int(keep_symlink(s, KEEP_ROOT_INO, "over", "x", unit_cred(), &at),
	       ENOSPC, "a symlink too");
	is_int(keep_lookup(s, KEEP_LIVE, KEEP_ROOT_INO, "over", &at), ENOENT,
	       "nothing was created");
	is_int(keep_link(s, unit_ino(s, KEEP_LIVE, KEEP_ROOT_INO, "last"),
			 KEEP_ROOT_INO, "hard", &at),
	       0, "a hard link needs no inode number");
	is_str(unit_ls(s, KEEP_LIVE, KEEP_ROOT_INO), "hard,last", "the root");
	is_int(keep_commit(s, NULL), 0, "commit");
	keep_store_close(s);
	is_int(unit_sql_int("ino", "SELECT value FROM meta WHERE key = 'next_ino'"),
	       KEEP_INO_LIMIT, "next_ino stopped at the limit");
	s = unit_reopen(NULL, "ino", KEEP_OPEN_WRITE);
	is_int(unit_mkfile(s, KEEP_ROOT_INO, "over", 0644, &at), ENOSPC,
	       "still ENOSPC after reopening");
	is_int(keep_check(s, 0, NULL, NULL, &problems), 0, "keep_check is clean");
	keep_store_close(s);
}

/* ---- keep_check on damaged snapshot rows --------------------------------- */

static void count_problem(void *ctx, const struct keep_problem *p)
{
	int *n = ctx;

	diag("problem: %s", p->what);
	if (strstr(p->what, "snapshot"))
		(*n)++;
}

static void t_check(void)
{
	struct keep_store *s = unit_store("check", 0);
	uint64_t problems = 0;
	int named = 0;

	is_int(keep_snapshot_create(s, "good", 0, NULL), 0, "a good snapshot");
	keep_store_close(s);
	is_int(unit_sql("check",
			"INSERT INTO snapshots(name, commit_id, created_ns, origin) "
			"VALUES (x'40626164', 1, 0, 0), (x'6d697373', 999, 0, 0), "
			"(x'612f62', 1, 0, 0), (x'6100', 1, 0, 0), "
			"(x'2e', 1, 0, 0), ('text', 1, 0, 0);"
			"UPDATE sqlite_sequence SET seq = 2 WHERE name = 'snapshots'"),
	       1, "damage: five bad names, a missing commit, a stale id counter");
	s = unit_reopen(NULL, "check", KEEP_OPEN_RDONLY);
	is_int(keep_check(s, 0, count_problem, &named, &problems), KEEP_E_CORRUPT,
	       "keep_check finds corruption");
	is_int(problems, 7, "7 problems");
	is_int(named, 7, "each names a snapshot");
	keep_store_close(s);
}

int main(void)
{
	/* before the store reads it: the process's second commit fails
	 * (t_failed_commit runs first and makes exactly two) */
	setenv("KEEP_FAULT", "commit:2", 1);
	unit_begin("snap");
	unit_seed(7);

	t_failed_commit();
	t_names();
	t_parse_time();
	t_format_time();
	t_snapshots();
	t_concurrent();
	t_commits();
	t_view_stats();
	t_old_store();
	t_ino_limit();
	t_check();

	is_int(unit_log_problems, 0, "no errors or warnings were logged");
	unit_end();
	return tap_done();
}
