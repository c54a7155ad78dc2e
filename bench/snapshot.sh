#!/usr/bin/env bash
# bench/snapshot.sh - how long making a snapshot takes, with a small tree
# and a large one: the time should not depend on the size of the tree.
#
# For each size: a fresh store is mounted, filled with that much data
# (incompressible, in 64 MiB files) and synced; then the median of RUNS
# timings of
#   mkdir MNT/.snapshots/NAME                (nothing changed since the sync)
#   keepfs snapshot MNT NAME                 (the whole command, as a user runs it)
#   mkdir MNT/.snapshots/NAME after a 4 KiB write (the snapshot has to commit)
# Prints both sizes side by side.
#
# Needs root and fusermount3.  Every mount and daemon it starts is stopped
# again and its scratch directory removed, also when it fails.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: bench/snapshot.sh [-h|--help]

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

bench_scratch snapshot

# measure SIZE: writes "mkdir_ms cli_ms dirty_ms" to $base/SIZE.res
measure() {
	local size=$1 dir=$base/$1 total
	total=$(bench_bytes "$size")
	mkdir -p "$dir/mnt"
	"$KEEPFS" init "$dir/store" >/dev/null
	bench_mount "$dir/store" "$dir/mnt" "$dir/daemon.log"

	msg "$size: writing $total bytes"
	bench_fill "$MNT/data" "$total"
	sync
	msg "$size: timing snapshots"
	python3 - "$MNT" "$KEEPFS" "$RUNS" >"$base/$size.res" <<'PY'
import os, statistics, subprocess, sys, time
mnt, keepfs, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
snap = os.path.join(mnt, ".snapshots")

def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000

def cli(name):
    subprocess.run([keepfs, "snapshot", mnt, name], check=True,
                   stdout=subprocess.DEVNULL)

mk = [timed(lambda: os.mkdir(os.path.join(snap, "mkdir-%d" % i)))
      for i in range(runs)]
cl = [timed(lambda: cli("cli-%d" % i)) for i in range(runs)]
dirty = []
for i in range(runs):
    with open(os.path.join(mnt, "small-%d" % i), "wb") as f:
        f.write(os.urandom(4096))
    dirty.append(timed(lambda: os.mkdir(os.path.join(snap, "dirty-%d" % i))))
print("%.1f %.1f %.1f" % (statistics.median(mk), statistics.median(cl),
                         statistics.median(dirty)))
PY
	sync
	bench_umount
	rm -rf "$dir"
}

declare -A res=()
for s in $SIZES; do
	measure "$s"
	res[$s]=$(cat "$base/$s.res")
done

echo
echo "keepfs snapshot creation, median of $RUNS, milliseconds ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, kernel $(uname -r))"
bench_table_head 36 10 "tree size"
bench_table_row 36 10 "mkdir .snapshots/NAME" 0
bench_table_row 36 10 "keepfs snapshot MNT NAME" 1
bench_table_row 36 10 "mkdir after a 4 KiB write" 2
