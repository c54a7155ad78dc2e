/*
 * unit_sql.h - direct access to a store's database, for the tests that
 * must damage a store on purpose.  The store must be closed (or open only
 * read-only) while this runs.
 */
#ifndef KEEP_UNIT_SQL_H
#define KEEP_UNIT_SQL_H

#include <sqlite3.h>

#include "unit.h"

/*
 * Run sql on unit_dir/store/store.db.  Returns the number of rows changed,
 * or -1 on an error (diagnosed).
 */
static inline long long unit_sql(const char *store, const char *sql)
{
	char path[4300];
	sqlite3 *db = NULL;
	char *msg = NULL;
	long long changed = -1;
	int rc;

	snprintf(path, sizeof(path), "%s/store.db", unit_path(store));
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, 5000);
		rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	}
	if (rc == SQLITE_OK)
		changed = sqlite3_changes64(db);
	else
		diag("sql '%s': %s", sql, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_close(db);
	return changed;
}

/* First column of the first row of a query as an integer, or -1. */
static inline long long unit_sql_int(const char *store, const char *sql)
{
	char path[4300];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	snprintf(path, sizeof(path), "%s/store.db", unit_path(store));
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		diag("sql '%s': %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Rows in a table of the store, or -1. */
static inline long long unit_rows(const char *store, const char *table)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return unit_sql_int(store, sql);
}

#endif
