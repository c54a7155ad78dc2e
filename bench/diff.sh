#!/usr/bin/env bash
# bench/diff.sh - how long keepfs diff takes between two snapshots that
# differ by 10 changes, in a small tree and a large one: the time should
# follow the changes, not the size of the tree.
#
# For each size (a number of files, 100 to a directory): a fresh store is
# mounted and filled with files of 1 KiB, snapshot "a" is taken; then 10
# changes (3 files rewritten, 2 added, 2 removed, 2 renamed, 1 chmod) and
# snapshot "b".  With the store unmounted, the median of RUNS timings of
#   keepfs diff STORE a b                (the change journal)
#   keepfs diff STORE a b --full-scan    (every row compared instead)
#   keepfs diff STORE a a                (no changes: starting the command
#                                         and opening the store)
# Prints both sizes side by side.
#
# Needs root and fusermount3.  Every mount and daemon it starts is stopped
# again and its scratch directory removed, also when it fails.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: bench/diff.sh [-h|--help]

environment (defaults in brackets):
  RUNS [9]                timings per figure; the table shows medians
  SIZES ["1000 100000"]   tree sizes, in files
  BENCH_DIR [/tmp]        parent of the scratch directory (must be on a disk)
  KEEPFS [auto]           keepfs binary; auto tries build-ci/, build/, PATH
  KEEPFS_OPTS []          extra "-o" options for keepfs mount
USAGE
}
case "${1:-}" in
-h|--help) usage; exit 0 ;;
'') ;;
*) echo "bench: unknown option '$1'" >&2; usage >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
RUNS=${RUNS:-9}
SIZES=${SIZES:-"1000 100000"}
BENCH_DIR=${BENCH_DIR:-/tmp}
KEEPFS=${KEEPFS:-auto}

. bench/lib.sh

case "$RUNS" in ''|*[!0-9]*|0) die "bad number of runs '$RUNS'" ;; esac
for s in $SIZES; do
	case "$s" in ''|*[!0-9]*) die "bad size '$s' (a number of files)" ;; esac
	[ "$s" -ge 20 ] || die "size '$s' is too small for 10 changes"
done
bench_require

bench_scratch diff

# measure N: writes "journal_ms full_ms empty_ms lines" to $base/N.res
measure() {
	local n=$1 dir=$base/$1
	mkdir -p "$dir/mnt"
	"$KEEPFS" init "$dir/store" >/dev/null
	bench_mount "$dir/store" "$dir/mnt" "$dir/daemon.log"

	msg "$n files: creating"
	python3 - "$MNT" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
payload = os.urandom(1024)
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100))
    if i % 100 == 0:
        os.mkdir(d)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(payload)
os.mkdir(os.path.join(root, ".snapshots", "a"))
# 10 changes spread over the tree
def f(i):
    return os.path.join(root, "d%04d" % (i // 100), "f%06d" % i)
step = n // 10
for k in range(3):
    with open(f(k * step), "r+b") as x:
        x.write(b"changed")
for k in range(2):
    with open(os.path.join(root, "d%04d" % (k * step // 100), "new%d" % k), "wb") as x:
        x.write(os.urandom(4096))
os.unlink(f(3 * step + 1))
os.unlink(f(4 * step + 1))
os.rename(f(5 * step + 2), f(5 * step + 2) + ".renamed")
os.rename(f(6 * step + 2), os.path.join(root, "moved"))
os.chmod(f(7 * step + 3), 0o600)
os.mkdir(os.path.join(root, ".snapshots", "b"))
PY
	bench_umount
	msg "$n files: timing keepfs diff"
	python3 - "$KEEPFS" "$dir/store" "$RUNS" >"$base/$n.res" <<'PY'
import statistics, subprocess, sys, time
keepfs, store, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def timed(args):
    t = time.perf_counter()
    out = subprocess.run([keepfs, "diff", store] + args, check=True,
                         stdout=subprocess.PIPE).stdout
    return (time.perf_counter() - t) * 1000, out.count(b"\n")

# interleaved, so that a slow moment of the machine hits all three alike
journal, full, empty = [], [], []
for _ in range(runs):
    journal.append(timed(["a", "b"]))
    full.append(timed(["a", "b", "--full-scan"]))
    empty.append(timed(["a", "a"]))
med = lambda v: statistics.median(t for t, _ in v)
print("%.1f %.1f %.1f %d" % (med(journal), med(full), med(empty), journal[0][1]))
PY
	rm -rf "$dir"
}

declare -A res=()
for s in $SIZES; do
	measure "$s"
	res[$s]=$(cat "$base/$s.res")
done

echo
echo "keepfs diff of two snapshots 10 changes apart, median of $RUNS, milliseconds ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, kernel $(uname -r))"
bench_table_head 34 12 "files in the tree"
bench_table_row 34 12 "keepfs diff (change journal)" 0
bench_table_row 34 12 "keepfs diff --full-scan" 1
bench_table_row 34 12 "keepfs diff a a (startup, open)" 2
bench_table_row 34 12 "lines printed" 3
