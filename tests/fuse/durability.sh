#!/bin/bash
# durability.sh [ROUNDS] - the durability contract under SIGKILL.
#
# 1. What an fsync (or dd conv=fsync) returned on survives kill -9 of the
#    daemon right after.
# 2. A change the daemon has seen (files closed, metadata changed) survives
#    kill -9 once commit_interval has passed (commit_interval=0.2, wait 1 s).
# 3. ROUNDS (default 50) of: mount, check every file ever fsync'd, run a
#    write workload, SIGKILL the daemon at a random moment, then
#    `keepfs fsck` must pass and the store must mount again.  No operation
#    may fail while the daemon is alive.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"

ROUNDS=${1:-${KFS_ROUNDS:-50}}
WORKLOAD=$KFS_TESTS/fuse/workload.py

sha() { sha256sum "$1" | cut -d' ' -f1; }

kfs_setup
M=$KFS_MNT

# --- 1: fsync then kill -9 -------------------------------------------------
head -c 5000000 /dev/urandom >"$KFS_TMP/big.ref"
head -c 12345 /dev/urandom >"$KFS_TMP/small.ref"
mkdir -p "$M/sync/deep/er"
python3 - "$KFS_TMP/big.ref" "$M/sync/deep/er/big" <<'PY'
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
os.write(fd, data)
os.fsync(fd)
PY
ok $? "write 5 MB and fsync (python)"
dd if="$KFS_TMP/small.ref" of="$M/sync/small" conv=fsync status=none
ok $? "write and fsync with dd conv=fsync"
kfs_kill9
ok $? "SIGKILL the daemon right after fsync returned"
kfs_fsck "$KFS_STORE" "fsck clean after the kill"
kfs_mount "$KFS_STORE" "$M"
ok $? "mount after the kill"
is "$(sha "$M/sync/deep/er/big" 2>&1)" "$(sha "$KFS_TMP/big.ref")" "fsync'd 5 MB file survived"
is "$(stat -c %a "$M/sync/deep/er/big" 2>&1)" 640 "its mode survived"
is "$(sha "$M/sync/small" 2>&1)" "$(sha "$KFS_TMP/small.ref")" "dd conv=fsync file survived"

# fdatasync and fsync of a directory commit too
python3 - "$M/sync/fdatasync" "$M/sync" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"fdatasync'd\n")
os.fdatasync(fd)
os.mkdir(sys.argv[2] + "/newdir")
dfd = os.open(sys.argv[2], os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
PY
ok $? "fdatasync a file, fsync a directory"
kfs_kill9
kfs_mount "$KFS_STORE" "$M"
ok $? "mount after the second kill"
is "$(cat "$M/sync/fdatasync" 2>&1)" "fdatasync'd" "fdatasync'd data survived"
check "directory made before fsyncdir survived" test -d "$M/sync/newdir"
kfs_umount

# --- 2: older than commit_interval ----------------------------------------
kfs_mount "$KFS_STORE" "$M" commit_interval=0.2
ok $? "mount with commit_interval=0.2"
head -c 777777 /dev/urandom >"$KFS_TMP/lazy.ref"
cp "$KFS_TMP/lazy.ref" "$M/lazy"
mkdir "$M/lazydir"
printf 'x' >"$M/lazydir/f"
chmod 600 "$M/lazydir/f"
mv "$M/sync/small" "$M/lazydir/small-moved"
rm "$M/sync/fdatasync"
sleep 1
kfs_kill9
kfs_mount "$KFS_STORE" "$M"
ok $? "mount after a kill 1 s after the changes"
is "$(sha "$M/lazy" 2>&1)" "$(sha "$KFS_TMP/lazy.ref")" "closed file survived without fsync"
is "$(stat -c %a "$M/lazydir/f" 2>&1)" 600 "chmod survived"
is "$(sha "$M/lazydir/small-moved" 2>&1)" "$(sha "$KFS_TMP/small.ref")" "rename survived"
check_not "unlink survived" test -e "$M/sync/fdatasync"
kfs_umount
kfs_fsck "$KFS_STORE"

# --- 3: random kills -------------------------------------------------------
LOG=$KFS_TMP/durable.log
ERRS=$KFS_TMP/errors.log
: >"$LOG"
: >"$ERRS"
fsck_bad=0 mount_bad=0 lost=0 early=0
check_durable() { # all|last N
	python3 - "$LOG" "$1" <<'PY'
import hashlib, sys
lines = open(sys.argv[1]).read().splitlines()
if sys.argv[2] != "all":
    lines = lines[-int(sys.argv[2]):]
bad = 0
for l in lines:
    p, size, h = l.split()
    try:
        b = open(p, "rb").read()
    except OSError as e:
        print(f"{p}: {e}")
        bad += 1
        continue
    if len(b) != int(size) or hashlib.sha256(b).hexdigest() != h:
        print(f"{p}: {len(b)} bytes, want {size}, or content differs")
        bad += 1
print(f"checked {len(lines)}, {bad} bad")
sys.exit(1 if bad else 0)
PY
}

for ((r = 1; r <= ROUNDS; r++)); do
	if ! kfs_mount "$KFS_STORE" "$M"; then
		mount_bad=$((mount_bad + 1))
		fail "round $r: the store mounts" "$(tail -n 5 "$KFS_TMP/daemon.mnt.log")"
		break
	fi
	# every 10 rounds everything, else what the last round recorded
	scope=200
	((r % 10 == 0)) && scope=all
	if ! out=$(check_durable "$scope"); then
		lost=$((lost + 1))
		fail "round $r: every fsync'd file intact" "$out"
	fi
	python3 "$WORKLOAD" "$M/w$r" "$LOG" "$ERRS" "$r" &
	wpid=$!
	sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
	((RANDOM % 4 == 0)) && sleep 1
	killed_at=$(date +%s.%N)
	kfs_kill9 "$M" "$wpid" || diag "round $r: dead mount still there"
	if [ -s "$ERRS" ]; then
		while read -r t rest; do
			if awk -v t="$t" -v k="$killed_at" 'BEGIN { exit !(t < k - 0.05) }'; then
				early=$((early + 1))
				diag "round $r: error while the daemon was alive: $rest"
			fi
		done <"$ERRS"
		: >"$ERRS"
	fi
	if ! out=$("$KEEPFS" fsck "$KFS_STORE" 2>&1); then
		fsck_bad=$((fsck_bad + 1))
		diag "round $r: fsck failed:" "$out"
	fi
done
is "$fsck_bad" 0 "fsck passed after each of $ROUNDS kills"
is "$mount_bad" 0 "the store mounted after each kill"
is "$lost" 0 "no fsync'd file lost or changed in any round"
is "$early" 0 "no operation failed while the daemon was alive"
is "$(wc -l <"$LOG")" "$(sort -u "$LOG" | wc -l)" "records are unique"
check "the workload fsync'd files ($(wc -l <"$LOG") in all)" test "$(wc -l <"$LOG")" -ge "$ROUNDS"

kfs_mount "$KFS_STORE" "$M"
ok $? "final mount"
out=$(check_durable all)
ok $? "every fsync'd file of every round intact: $out"
kfs_umount
kfs_fsck "$KFS_STORE" "full fsck --data at the end"
done_testing
