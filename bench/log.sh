#!/usr/bin/env bash
# bench/log.sh - how long keepfs log takes for a file with many versions,
# in a small tree and a large one: the time should follow the versions of
# the path, not the size of the tree or the number of commits.
#
# For each size (a number of files of 1 KiB, 100 to a directory): a fresh
# store is mounted and filled, then mcp.json is written VERSIONS times
# the way MCP servers write it (a temporary file, fsync, rename over it,
# fsync of the directory: two commits each), and memory.jsonl gets as
# many appends (one commit each).  With the store unmounted, the median
# of RUNS timings of
#   keepfs log STORE mcp.json        (VERSIONS replacements)
#   keepfs log -p STORE mcp.json     (and a diff per version)
#   keepfs log -p STORE memory.jsonl (VERSIONS appends, with diffs)
#   keepfs log STORE d0000/f000000   (one version: starting the command
#                                     and opening the store)
# Prints both sizes side by side.
#
# Needs root and fusermount3.  Every mount and daemon it starts is stopped
# again and its scratch directory removed, also when it fails.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: bench/log.sh [-h|--help]

environment (defaults in brackets):
  RUNS [9]                timings per figure; the table shows medians
  SIZES ["1000 100000"]   tree sizes, in files
  VERSIONS [1000]         versions of the logged files
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
VERSIONS=${VERSIONS:-1000}
BENCH_DIR=${BENCH_DIR:-/tmp}
KEEPFS=${KEEPFS:-auto}

. bench/lib.sh

case "$RUNS" in ''|*[!0-9]*|0) die "bad number of runs '$RUNS'" ;; esac
case "$VERSIONS" in ''|*[!0-9]*|0) die "bad number of versions '$VERSIONS'" ;; esac
for s in $SIZES; do
	case "$s" in ''|*[!0-9]*|0) die "bad size '$s' (a number of files)" ;; esac
done
bench_require

bench_scratch log

# measure N: writes "log_ms patch_ms jsonl_ms one_ms commits" to $base/N.res
measure() {
	local n=$1 dir=$base/$1
	mkdir -p "$dir/mnt"
	"$KEEPFS" init "$dir/store" >/dev/null
	bench_mount "$dir/store" "$dir/mnt" "$dir/daemon.log"

	msg "$n files: creating, then $VERSIONS versions of two files"
	python3 - "$MNT" "$n" "$VERSIONS" <<'PY'
import json, os, sys
root, n, versions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
payload = os.urandom(1024)
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100))
    if i % 100 == 0:
        os.mkdir(d)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(payload)
def syncdir():
    fd = os.open(root, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
config = {"mcpServers": {"s%d" % k: {"command": "npx", "args": ["server-%d" % k]}
                         for k in range(20)}}
for v in range(versions):
    config["mcpServers"]["s%d" % (v % 20)]["revision"] = v
    tmp = os.path.join(root, ".mcp.json.tmp")
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(root, "mcp.json"))
    syncdir()
    with open(os.path.join(root, "memory.jsonl"), "a") as f:
        f.write(json.dumps({"type": "observation", "n": v}) + "\n")
        f.flush()
        os.fsync(f.fileno())
PY
	bench_umount
	msg "$n files: timing keepfs log"
	python3 - "$KEEPFS" "$dir/store" "$RUNS" >"$base/$n.res" <<'PY'
import statistics, subprocess, sys, time
keepfs, store, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def timed(args):
    t = time.perf_counter()
    subprocess.run([keepfs, "log"] + args, check=True,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000

cases = [[store, "mcp.json"], ["-p", store, "mcp.json"],
         ["-p", store, "memory.jsonl"], [store, "d0000/f000000"]]
times = [[] for _ in cases]
for _ in range(runs):  # interleaved: a slow moment hits all alike
    for i, c in enumerate(cases):
        times[i].append(timed(c))
commits = subprocess.run([keepfs, "list", "--commits", store], check=True,
                         stdout=subprocess.PIPE).stdout.count(b"\n") - 1
print(" ".join("%.1f" % statistics.median(t) for t in times), commits)
PY
	rm -rf "$dir"
}

declare -A res=()
for s in $SIZES; do
	measure "$s"
	res[$s]=$(cat "$base/$s.res")
done

echo
echo "keepfs log of files with $VERSIONS versions, median of $RUNS, milliseconds ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, kernel $(uname -r))"
bench_table_head 40 12 "files in the tree"
bench_table_row 40 12 "log mcp.json ($VERSIONS replacements)" 0
bench_table_row 40 12 "log -p mcp.json" 1
bench_table_row 40 12 "log -p memory.jsonl ($VERSIONS appends)" 2
bench_table_row 40 12 "log of a file with 1 version" 3
bench_table_row 40 12 "commits in the store" 4
