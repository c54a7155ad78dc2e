#!/bin/bash
# sqlite.sh - a SQLite database in WAL mode in the mount, two processes
# inserting at once (shared-memory index on a shared writable mapping,
# POSIX locks), then integrity_check and exact counts, again after a
# remount.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd sqlite3

kfs_setup
DB=$KFS_MNT/db/app.sqlite
mkdir -p "$KFS_MNT/db"
TX=250 ROWS=8

is "$(sqlite3 "$DB" 'PRAGMA journal_mode=WAL;' \
	'CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT NOT NULL, n INTEGER NOT NULL, pad BLOB);' \
	'CREATE INDEX t_who ON t(who, n);' 2>&1)" wal "database in WAL mode"

writer() { # NAME
	{
		echo "PRAGMA busy_timeout=60000;"
		echo "PRAGMA synchronous=FULL;"
		for ((t = 0; t < TX; t++)); do
			echo "BEGIN IMMEDIATE;"
			for ((r = 0; r < ROWS; r++)); do
				echo "INSERT INTO t(who, n, pad) VALUES('$1', $((t * ROWS + r)), randomblob(300));"
			done
			echo "COMMIT;"
		done
	} | sqlite3 -bail "$DB" >"$KFS_TMP/$1.out" 2>&1
}

writer a &
pa=$!
writer b &
pb=$!
# a reader too, while they write
reads=0
while kill -0 "$pa" 2>/dev/null || kill -0 "$pb" 2>/dev/null; do
	sqlite3 "$DB" 'PRAGMA busy_timeout=60000; SELECT count(*) FROM t;' >/dev/null 2>>"$KFS_TMP/reader.err" &&
		reads=$((reads + 1))
	sleep 0.2
done
wait "$pa"
ok $? "writer a finished: $(head -c 300 "$KFS_TMP/a.out")"
wait "$pb"
ok $? "writer b finished: $(head -c 300 "$KFS_TMP/b.out")"
is "$(cat "$KFS_TMP/reader.err" 2>/dev/null)" "" "concurrent reader saw no error ($reads reads)"

N=$((TX * ROWS))
SUM=$(((N - 1) * N / 2))
check_db() { # WHEN
	is "$(sqlite3 "$DB" 'PRAGMA integrity_check;' 2>&1)" ok "$1: integrity_check ok"
	is "$(sqlite3 "$DB" 'SELECT count(*) FROM t;' 2>&1)" $((2 * N)) "$1: row count"
	is "$(sqlite3 "$DB" "SELECT who, count(*), sum(n), count(DISTINCT n) FROM t GROUP BY who ORDER BY who;" 2>&1)" \
		"$(printf 'a|%d|%d|%d\nb|%d|%d|%d' $N $SUM $N $N $SUM $N)" "$1: each writer's rows exactly once"
	is "$(sqlite3 "$DB" 'SELECT count(*) FROM t WHERE length(pad) = 300;' 2>&1)" $((2 * N)) "$1: every blob intact"
	is "$(sqlite3 "$DB" 'PRAGMA journal_mode;' 2>&1)" wal "$1: still in WAL mode"
}
check_db "after the writers"
kfs_remount
check_db "after a remount"
is "$(sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);' 2>&1)" "0|0|0" "a full checkpoint"
check_db "after the checkpoint"
kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
