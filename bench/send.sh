#!/usr/bin/env bash
# bench/send.sh - off-site copies: keepfs send | keepfs receive of a tree,
# full and then incremental after 1% of it changed, next to rsync -a and
# restic backup of the same two states on the same machine.  Prints the
# time of each step, the throughput (the tree's bytes for a full copy, the
# changed bytes for an incremental one) and the bytes each tool moved for
# the incremental step.
#
# The tree is NFILES files of FILE_SIZE random (incompressible) bytes;
# the change rewrites CHANGED of them whole.  Page caches are dropped
# before each timed step, so every tool reads from the disk.
#
# Needs root, fusermount3, rsync and restic.  Every mount and daemon it
# starts is stopped again and its scratch directory removed.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: bench/send.sh [-h|--help]

environment (defaults in brackets):
  NFILES [1024]       files in the tree
  FILE_SIZE [1M]      bytes of each (suffixes M, G)
  CHANGED [10]        files rewritten between the two states (1%)
  BENCH_DIR [/tmp]    parent of the scratch directory (must be on a disk)
  KEEPFS [auto]       keepfs binary; auto tries build-ci/, build/, PATH
USAGE
}
case "${1:-}" in
-h|--help) usage; exit 0 ;;
'') ;;
*) echo "bench: unknown option '$1'" >&2; usage >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
NFILES=${NFILES:-1024}
FILE_SIZE=${FILE_SIZE:-1M}
CHANGED=${CHANGED:-10}
BENCH_DIR=${BENCH_DIR:-/tmp}
KEEPFS=${KEEPFS:-auto}
KEEPFS_OPTS=

. bench/lib.sh

fsize=$(bench_bytes "$FILE_SIZE")
case "$NFILES$CHANGED$fsize" in *[!0-9]*) die "bad NFILES, CHANGED or FILE_SIZE" ;; esac
[ "$CHANGED" -le "$NFILES" ] || die "CHANGED is more than NFILES"
bench_require
for c in rsync restic; do
	command -v "$c" >/dev/null || die "'$c' is not installed"
done
bench_scratch send
export RESTIC_PASSWORD=bench

now() { date +%s.%N; }
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# secs START: seconds since START, 2 decimals
secs() { python3 -c 'import sys, time; print("%.2f" % (time.time() - float(sys.argv[1])))' "$1"; }
mbps() { python3 -c 'import sys; print("%.1f" % (int(sys.argv[1]) / 1e6 / float(sys.argv[2])))' "$1" "$2"; }

# make_files DIR FIRST COUNT SEED: COUNT files f<FIRST..> of fsize random bytes
make_files() {
	python3 - "$1" "$2" "$3" "$fsize" <<'PY'
import os, sys
d, first, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(d, exist_ok=True)
for i in range(first, first + count):
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(size))
PY
}

total=$((NFILES * fsize))
changed=$((CHANGED * fsize))
msg "a tree of $NFILES files of $FILE_SIZE ($((total >> 20)) MiB); $CHANGED files change"
make_files "$base/src" 0 "$NFILES"
make_files "$base/change" 0 "$CHANGED" # the new contents of f00000..
sync

# ---- state A ------------------------------------------------------------------
"$KEEPFS" init "$base/store" >/dev/null
mkdir "$base/mnt"
bench_mount "$base/store" "$base/mnt" "$base/daemon.log"
cp -a "$base/src" "$base/mnt/tree"
"$KEEPFS" snapshot "$base/mnt" a >/dev/null

cold
t=$(now)
"$KEEPFS" send "$base/mnt" a | "$KEEPFS" receive "$base/replica" --json >"$base/full.json"
k_full=$(secs "$t")
k_full_bytes=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["bytes"])' "$base/full.json")

cold
t=$(now)
rsync -a "$base/src/" "$base/rsync-dst/"
r_full=$(secs "$t")

restic -q init -r "$base/restic" >/dev/null
cold
t=$(now)
restic -q -r "$base/restic" backup "$base/src" >/dev/null
s_full=$(secs "$t")

# ---- state B: CHANGED files rewritten ------------------------------------------
cp "$base"/change/* "$base/src/"
cp "$base"/change/* "$base/mnt/tree/"
"$KEEPFS" snapshot "$base/mnt" b >/dev/null
sync

cold
t=$(now)
"$KEEPFS" send "$base/mnt" b --from a | "$KEEPFS" receive "$base/replica" --json >"$base/incr.json"
k_incr=$(secs "$t")
k_incr_bytes=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["bytes"])' "$base/incr.json")

cold
t=$(now)
rsync -a --stats "$base/src/" "$base/rsync-dst/" >"$base/rsync.stats"
r_incr=$(secs "$t")
r_incr_bytes=$(sed -n 's/^Total bytes sent: \([0-9,.]*\).*/\1/p' "$base/rsync.stats" | tr -d ',.')

cold
t=$(now)
restic -r "$base/restic" backup "$base/src" --json >"$base/restic.json"
s_incr=$(secs "$t")
s_incr_bytes=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("message_type") == "summary":
        print(m["data_added"])' "$base/restic.json")

bench_umount

# the replica equals the source's snapshot b
mkdir "$base/rmnt"
bench_mount "$base/replica" "$base/rmnt" "$base/rdaemon.log"
diff -r "$base/src" "$base/rmnt/tree" >/dev/null || die "the replica differs from the source"
bench_umount

printf '\n%s files, %s MiB; %s files (%s MiB) changed; %s, %s cores\n' \
	"$NFILES" "$((total >> 20))" "$CHANGED" "$((changed >> 20))" \
	"$(uname -r)" "$(nproc)"
printf '%-30s %9s %9s %9s %9s %14s\n' "" "full s" "full MB/s" "incr s" "incr MB/s" "incr bytes"
printf '%-30s %9s %9s %9s %9s %14s\n' "keepfs send | keepfs receive" \
	"$k_full" "$(mbps "$total" "$k_full")" "$k_incr" "$(mbps "$changed" "$k_incr")" "$k_incr_bytes"
printf '%-30s %9s %9s %9s %9s %14s\n' "rsync -a" \
	"$r_full" "$(mbps "$total" "$r_full")" "$r_incr" "$(mbps "$changed" "$r_incr")" "$r_incr_bytes"
printf '%-30s %9s %9s %9s %9s %14s\n' "restic backup" \
	"$s_full" "$(mbps "$total" "$s_full")" "$s_incr" "$(mbps "$changed" "$s_incr")" "$s_incr_bytes"
printf '(keepfs full stream: %s bytes; incr MB/s counts the changed bytes)\n' "$k_full_bytes"
