#!/bin/bash
# restore.sh - keepfs restore through a real mount: rm -rf of the whole
# tree restored and the restore undone through its pre-restore snapshot;
# one file among many; a SQLite database restored while a reader holds it
# open; a file held open reads the restored bytes and size; --to; --dry-run;
# a store that is not mounted; bad input changes nothing.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3
require_cmd sqlite3
. "$KFS_TESTS/fuse/tree.sh"

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP
SD=$M/.snapshots
export LISTING_NO_CTIME=1

# the last line of the restore's output names the pre-restore snapshot
pre_of() { sed -n 's/^pre-restore snapshot: //p' <<<"$KFS_OUT"; }
commits() { "$KEEPFS" list "$S" --commits | wc -l; }

# ---- rm -rf, restore, undo ------------------------------------------------
(build_tree "$M/state") || bail_out "cannot build the tree"
mkdir -p "$M/state/many"
for i in $(seq 1 50); do echo "file $i" >"$M/state/many/f$i"; done
run_ok "snapshot 'good'" "$KEEPFS" snapshot "$M" good
kfs_listing "$SD/good" "$T/good.lst"

rm -rf "$M/state"
echo "unrelated" >"$M/new-file"
kfs_listing "$M" "$T/damaged.lst"
run_ok "restore the whole tree after rm -rf" "$KEEPFS" restore "$M" good
pre=$(pre_of)
like "$pre" '^pre-restore-20[0-9-]*T[0-9:]*Z' "it prints the pre-restore snapshot's name"
like "$KFS_OUT" "undo with: keepfs restore $M $pre" "and how to undo"
kfs_listing "$M" "$T/restored.lst"
same_listing "$T/good.lst" "$T/restored.lst" "the live tree is 'good' again, exactly"
check_not "what was made since is gone" test -e "$M/new-file"
kfs_listing "$SD/$pre" "$T/pre.lst"
same_listing "$T/damaged.lst" "$T/pre.lst" "the pre-restore snapshot holds the damaged tree"
run_ok "undo: restore the pre-restore snapshot" "$KEEPFS" restore "$M" "$pre"
kfs_listing "$M" "$T/undone.lst"
same_listing "$T/damaged.lst" "$T/undone.lst" "the damaged tree is back"
run_ok "restore 'good' again" "$KEEPFS" restore "$M" good
run_ok "a second restore" "$KEEPFS" restore "$M" good
like "$KFS_OUT" "nothing to restore" "restoring again: nothing to restore"
kfs_listing "$M" "$T/again.lst"
same_listing "$T/good.lst" "$T/again.lst" "still 'good'"

# ---- one file among many ----------------------------------------------------
for i in $(seq 1 50); do echo "changed $i" >"$M/state/many/f$i"; done
kfs_listing "$M" "$T/before1.lst"
run_ok "restore one file" "$KEEPFS" restore "$M" good state/many/f17
is "$(cat "$M/state/many/f17")" "file 17" "it has its old content"
is "$(cat "$M/state/many/f18")" "changed 18" "its neighbour keeps the new"
kfs_listing "$M" "$T/after1.lst"
d=$(diff "$T/before1.lst" "$T/after1.lst" | grep '^[<>]' | grep -v '^. state/many ' | awk '{print $2}' | sort -u)
is "$d" "state/many/f17" "only that file (and its directory's times) changed"

# an absolute path inside the mount works too
echo "changed" >"$M/state/a/small"
run_ok "restore by an absolute path" "$KEEPFS" restore "$M" good "$M/state/a/small"
is "$(cat "$M/state/a/small")" "small" "restored"

# ---- a file held open sees the restored bytes ----------------------------
python3 - "$M" "$KEEPFS" <<'EOF' >"$T/open.out" 2>&1
import os, subprocess, sys
m, k = sys.argv[1], sys.argv[2]
p = m + "/held"
open(p, "wb").write(b"A" * 10000)
subprocess.run([k, "snapshot", m, "held-1"], check=True, capture_output=True)
fd = os.open(p, os.O_RDWR)
os.write(fd, b"B" * 30000)
os.fsync(fd)
subprocess.run([k, "restore", m, "held-1", "held"], check=True, capture_output=True)
data = os.pread(fd, 100000, 0)
print("grown", os.fstat(fd).st_size, len(data), set(data) == {ord("A")})
os.close(fd)
open(p, "wb").write(b"G" * 50000)
subprocess.run([k, "snapshot", m, "held-2"], check=True, capture_output=True)
fd = os.open(p, os.O_RDONLY)
os.pread(fd, 10, 0)
open(p, "wb").write(b"h" * 10)
subprocess.run([k, "restore", m, "held-2", "held"], check=True, capture_output=True)
data = os.pread(fd, 100000, 0)
print("shrunk", os.fstat(fd).st_size, len(data), set(data) == {ord("G")})
print("cat", len(open(p, "rb").read()))
os.close(fd)
EOF
is "$(cat "$T/open.out")" "grown 10000 10000 True
shrunk 50000 50000 True
cat 50000" "a file held open reads the restored bytes and size"

# ---- SQLite: a reader holds the database open -----------------------------
DB=$M/db/app.sqlite
mkdir -p "$M/db"
sqlite3 "$DB" 'PRAGMA journal_mode=WAL; CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1),(2),(3);' >/dev/null
run_ok "snapshot 'db-good'" "$KEEPFS" snapshot "$M" db-good
sqlite3 "$DB" 'INSERT INTO t SELECT x + 100 FROM t; DELETE FROM t WHERE x = 1;'
python3 - "$DB" "$KEEPFS" "$M" <<'EOF' >"$T/sqlite.out" 2>&1
import sqlite3, subprocess, sys
db, k, m = sys.argv[1:4]
c = sqlite3.connect(db)
print("before", c.execute("SELECT count(*), sum(x) FROM t").fetchone())
r = subprocess.run([k, "restore", m, "db-good", "db"], capture_output=True, text=True)
print("restore", r.returncode)
c.close()
c = sqlite3.connect(db)
print("after", c.execute("SELECT count(*), sum(x) FROM t").fetchone())
print(c.execute("PRAGMA integrity_check").fetchone()[0])
EOF
is "$(cat "$T/sqlite.out")" "before (5, 311)
restore 0
after (3, 6)
ok" "a reader that reopens sees the database as it was, consistent"

# ---- --to and --dry-run ------------------------------------------------------
rm "$M/state/a/small"
run_ok "dry run" "$KEEPFS" restore "$M" good state/a --dry-run
is "$KFS_OUT" "+ state/a/small" "--dry-run prints what would come back"
like "$KFS_ERR" "dry run: 1 change, nothing was changed" "and says it changed nothing"
check_not "and changes nothing" test -e "$M/state/a/small"
run_ok "--to next to the current one" "$KEEPFS" restore "$M" good state/a/b/c --to state/a/b/c-old
kfs_listing "$SD/good/state/a/b/c" "$T/b.lst"
kfs_listing "$M/state/a/b/c-old" "$T/b-old.lst"
same_listing "$T/b.lst" "$T/b-old.lst" "DEST holds FROM's PATH"
check "the current one stays" test -d "$M/state/a/b/c"

# ---- bad input: exit 1, a message, nothing changed ------------------------
kfs_listing "$M" "$T/bad-before.lst"
n=$(commits)
run_is 1 "unknown snapshot" "$KEEPFS" restore "$M" nosuch
like "$KFS_ERR" "no snapshot 'nosuch'" "says so"
run_is 1 "path not in FROM" "$KEEPFS" restore "$M" good no/such/path
like "$KFS_ERR" "'no/such/path' is not in snapshot 'good'" "says so"
run_is 1 "DEST exists" "$KEEPFS" restore "$M" good state/a --to state
like "$KFS_ERR" "'state' exists" "says so"
run_is 1 "malformed TIME" "$KEEPFS" restore "$M" @yesterday
like "$KFS_ERR" "'@yesterday' is not a time" "says so"
run_is 1 "'..' in a path" "$KEEPFS" restore "$M" good state/../x
like "$KFS_ERR" "not allowed" "says so"
run_is 2 "--to with two paths" "$KEEPFS" restore "$M" good a b --to c
rm -rf "$M/gone"
mkdir "$M/gone-parent"
run_is 1 "the directory holding PATH is gone" "$KEEPFS" restore "$M" good state/a/b/c --to no/where
like "$KFS_ERR" "does not exist in the live tree" "says so"
rmdir "$M/gone-parent"
kfs_listing "$M" "$T/bad-after.lst"
same_listing "$T/bad-before.lst" "$T/bad-after.lst" "the bad requests changed nothing"

# ---- a store that is not mounted --------------------------------------------
kfs_umount "$M"
run_ok "restore an unmounted store" "$KEEPFS" restore "$S" good
run_is 1 "a busy store" python3 -c '
import fcntl, subprocess, sys
f = open(sys.argv[1] + "/lock", "r+")
fcntl.flock(f, fcntl.LOCK_EX)
sys.exit(subprocess.run([sys.argv[2], "restore", sys.argv[1], "good"]).returncode)
' "$S" "$KEEPFS"
like "$KFS_ERR" "is busy" "says the store is busy"
kfs_mount "$S" "$M" || bail_out "remount failed"
kfs_listing "$M" "$T/offline.lst"
same_listing "$T/good.lst" "$T/offline.lst" "restored without the mount: 'good' again"
kfs_umount "$M"
kfs_fsck "$S"
done_testing
