#!/bin/bash
# snap-load.sh - a snapshot every 100 ms for 30 s (mkdir in .snapshots)
# while one process runs SQLite WAL transactions and another appends JSONL
# lines with an fsync after each.  Every snapshot's database must pass
# integrity_check and hold each transaction committed before it was asked
# for; every snapshot's JSONL file must hold only whole lines, at least
# those fsynced before.  Reports the worst stall each writer saw.
#
# usage: snap-load.sh [SECONDS [INTERVAL]]
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3

SECONDS_=${1:-30}
INTERVAL=${2:-0.1}
WORK=$KFS_TMP/work
mkdir -p "$WORK"
: >"$WORK/pids"

# The helper and its writers run inside the mount: stop each of them by
# pid before lib.sh's cleanup unmounts, however this script ends.
ours() { # PID: still one of the helper's processes (not a reused pid)?
	tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q 'snapload\.py'
}
stop_helpers() {
	local p alive
	while read -r p; do
		[ -n "$p" ] && ours "$p" && kill -TERM "$p" 2>/dev/null
	done <"$WORK/pids"
	for _ in $(seq 1 40); do
		alive=0
		while read -r p; do
			[ -n "$p" ] && ours "$p" && alive=1
		done <"$WORK/pids"
		[ "$alive" -eq 0 ] && break
		sleep 0.25
	done
	while read -r p; do
		[ -n "$p" ] && ours "$p" && kill -KILL "$p" 2>/dev/null
	done <"$WORK/pids"
	: >"$WORK/pids"
	return 0
}
trap '_rc=$?; stop_helpers; (exit $_rc); _kfs_cleanup' EXIT

kfs_setup
kfs_tap_include python3 "$KFS_TESTS/fuse/snapload.py" "$KFS_MNT" "$WORK" "$SECONDS_" "$INTERVAL"
stop_helpers
check "the daemon is still running" kill -0 "$KFS_PID"
n=$(ls -1U "$KFS_MNT/.snapshots" | wc -l)
want=$(wc -l <"$WORK/snapshots.tsv" 2>/dev/null || echo -1)
is "$n" "$want" ".snapshots lists every snapshot that was made"
kfs_umount
run_ok "keepfs list after the unmount" "$KEEPFS" list "$KFS_STORE" --json
is "$(python3 -c 'import json, sys; print(len(json.load(sys.stdin)))' <<<"$KFS_OUT")" "$want" \
	"keepfs list shows every snapshot"
kfs_fsck "$KFS_STORE"
done_testing
