#!/usr/bin/env bash
# bench/restore.sh - how long keepfs restore takes with a small tree and a
# large one, next to what users do without it: copying the tree back out
# of the snapshot (cp -a), measured in the same run.
#
# For each size: a fresh store is mounted, filled with that much data
# (incompressible, in 64 MiB files), and snapshotted.  Then the median of
# RUNS timings of
#   rm -rf the tree; keepfs restore MNT SNAP          (the whole tree back)
#   4 KiB written into one file; keepfs restore MNT SNAP PATH  (one file)
# and, once, cp -a of the snapshot's tree back into the mount (a restore
# by copying).  A restore copies no data, so it should not follow the
# size; the copy must.  Prints both sizes side by side.
#
# Needs root and fusermount3.  Every mount and daemon it starts is stopped
# again and its scratch directory removed, also when it fails.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: bench/restore.sh [-h|--help]

environment (defaults in brackets):
  RUNS [5]              timings per figure; the table shows medians
  SIZES ["10M 1G"]      tree sizes to measure (suffixes M, G)
  BENCH_DIR [/tmp]      parent of the scratch directory (must be on a disk)
  KEEPFS [auto]         keepfs binary; auto tries build-ci/, build/, PATH
  KEEPFS_OPTS []        extra "-o" options for keepfs mount
USAGE
}
case "${1:-}" in
-h|--help) usage; exit 0 ;;
'') ;;
*) echo "bench: unknown option '$1'" >&2; usage >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SIZES=${SIZES:-"10M 1G"}
BENCH_DIR=${BENCH_DIR:-/tmp}
KEEPFS=${KEEPFS:-auto}
KEEPFS_OPTS=${KEEPFS_OPTS:-}

. bench/lib.sh

case "$RUNS" in ''|*[!0-9]*|0) die "bad number of runs '$RUNS'" ;; esac
bench_require
for s in $SIZES; do
	case "$(bench_bytes "$s")" in ''|*[!0-9]*) die "bad size '$s'" ;; esac
done

bench_scratch restore

# measure SIZE: writes "whole_ms one_ms copy_ms" to $base/SIZE.res
measure() {
	local size=$1 dir=$base/$1
	mkdir -p "$dir/mnt"
	"$KEEPFS" init "$dir/store" >/dev/null
	bench_mount "$dir/store" "$dir/mnt" "$dir/daemon.log"
	msg "$size: writing $(bench_bytes "$size") bytes"
	bench_fill "$MNT/data" "$(bench_bytes "$size")"
	"$KEEPFS" snapshot "$MNT" good >/dev/null
	msg "$size: timing restores"
	python3 - "$MNT" "$KEEPFS" "$RUNS" >"$base/$size.res" <<'PY'
import os, shutil, statistics, subprocess, sys, time
mnt, keepfs, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = os.path.join(mnt, "data")

def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000

def restore(*paths):
    subprocess.run([keepfs, "restore", mnt, "good", *paths], check=True,
                   stdout=subprocess.DEVNULL)

whole, one = [], []
for i in range(runs):
    shutil.rmtree(data)
    whole.append(timed(restore))
    with open(os.path.join(data, "f0000"), "r+b") as f:
        f.seek(4096 * i)
        f.write(os.urandom(4096))
    one.append(timed(lambda: restore("data/f0000")))
# the check that it worked: the tree is the snapshot's again
r = subprocess.run([keepfs, "diff", mnt, "good"], capture_output=True, text=True)
subprocess.run(["sync"])
if r.stdout.strip():
    sys.exit("the live tree differs from the snapshot: " + r.stdout[:200])
shutil.rmtree(data)
copy = timed(lambda: subprocess.run(
    ["cp", "-a", os.path.join(mnt, ".snapshots", "good", "data"), data],
    check=True))
print("%.1f %.1f %.1f" % (statistics.median(whole), statistics.median(one),
                         copy))
PY
	bench_umount
	rm -rf "$dir"
}

declare -A res=()
for s in $SIZES; do
	measure "$s"
	res[$s]=$(cat "$base/$s.res")
done

echo
echo "keepfs restore, median of $RUNS, milliseconds ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, kernel $(uname -r))"
bench_table_head 44 10 "tree size"
bench_table_row 44 10 "rm -rf, then keepfs restore (whole tree)" 0
bench_table_row 44 10 "keepfs restore of one changed file" 1
bench_table_row 44 10 "baseline: cp -a from .snapshots (once)" 2
