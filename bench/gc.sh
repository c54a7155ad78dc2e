#!/usr/bin/env bash
# bench/gc.sh - how long a writer waits while garbage collection runs on
# the same mount.  A mounted store (journal=1d, auto=off: nothing is
# collected on its own) gets VERSIONS rewrites of a SIZE file, each
# synced: that much history.  Then a writer makes 4 KiB writes, each
# followed by fdatasync (a durable commit), for a while alone (the
# baseline), and again while "keepfs gc --journal 0" drops all that
# history.  Prints the writer's latencies (median, 99th percentile,
# worst) both ways, how long the collection took and what it freed.
#
# Needs root and fusermount3.  Every mount and daemon it starts is stopped
# again and its scratch directory removed, also when it fails.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: bench/gc.sh [-h|--help]

environment (defaults in brackets):
  SIZE [64M]          the file rewritten
  VERSIONS [8]        how many times (history = SIZE * (VERSIONS - 1))
  SECONDS_ALONE [5]   the writer's baseline run
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
SIZE=${SIZE:-64M}
VERSIONS=${VERSIONS:-8}
SECONDS_ALONE=${SECONDS_ALONE:-5}
BENCH_DIR=${BENCH_DIR:-/tmp}
KEEPFS=${KEEPFS:-auto}
KEEPFS_OPTS="journal=1d,auto=off"

. bench/lib.sh

bytes=$(bench_bytes "$SIZE") || die "bad SIZE '$SIZE' (as in 64M, 1G)"
case "$VERSIONS" in ''|*[!0-9]*|0|1) die "bad VERSIONS '$VERSIONS' (2 or more)" ;; esac
case "$SECONDS_ALONE" in ''|*[!0-9]*|0) die "bad SECONDS_ALONE '$SECONDS_ALONE'" ;; esac
bench_require
bench_scratch gc

"$KEEPFS" init "$base/store" >/dev/null
mkdir "$base/mnt"
bench_mount "$base/store" "$base/mnt" "$base/daemon.log"

msg "writing $VERSIONS versions of $SIZE"
for ((v = 0; v < VERSIONS; v++)); do
	head -c "$bytes" /dev/urandom >"$MNT/big"
	sync "$MNT/big"
done

# writer.py PATH SECONDS|-: 4 KiB pwrite + fdatasync in a loop, for
# SECONDS, or ("-") until the file "$PATH.stop" exists; prints the
# latencies in ms (median, p99, max) and the count
cat >"$base/writer.py" <<'PY'
import os, statistics, sys, time
path, limit = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
buf = os.urandom(4096)
lat, t0, i = [], time.monotonic(), 0
while True:
    if limit == "-" and os.path.exists(path + ".stop"):
        break
    if limit != "-" and time.monotonic() - t0 >= float(limit):
        break
    a = time.perf_counter()
    os.pwrite(fd, buf, (i % 256) * 4096)
    os.fdatasync(fd)
    lat.append((time.perf_counter() - a) * 1000)
    i += 1
lat.sort()
print("%.2f %.2f %.2f %d" % (statistics.median(lat), lat[int(len(lat) * 0.99)],
                             lat[-1], len(lat)))
PY

msg "the writer alone for ${SECONDS_ALONE}s"
alone=$(python3 "$base/writer.py" "$MNT/w" "$SECONDS_ALONE")

msg "the writer during keepfs gc --journal 0"
python3 "$base/writer.py" "$MNT/w" - >"$base/during" &
WPID=$!
sleep 1
t0=$(date +%s.%N)
"$KEEPFS" gc "$MNT" --journal 0 >"$base/gc.out"
t1=$(date +%s.%N)
sleep 1
touch "$MNT/w.stop"
wait "$WPID"
during=$(cat "$base/during")
bench_umount

read -r a_med a_p99 a_max a_n <<<"$alone"
read -r d_med d_p99 d_max d_n <<<"$during"
echo
echo "a writer's 4 KiB write + fdatasync on the mount, milliseconds ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, kernel $(uname -r))"
printf '%-34s %10s %10s\n' "" "alone" "during gc"
printf '%-34s %10s %10s\n' "median" "$a_med" "$d_med"
printf '%-34s %10s %10s\n' "99th percentile" "$a_p99" "$d_p99"
printf '%-34s %10s %10s\n' "worst" "$a_max" "$d_max"
printf '%-34s %10s %10s\n' "writes" "$a_n" "$d_n"
echo
printf 'keepfs gc took %.2f s: %s\n' "$(awk "BEGIN { print $t1 - $t0 }")" "$(cat "$base/gc.out")"
