# bench/lib.sh - what the single-purpose benchmarks share (snapshot.sh,
# diff.sh, restore.sh): messages, the keepfs binary, a scratch directory that is cleaned
# up however the script ends, and one keepfs mount at a time.  Source it
# from the repository root, after setting BENCH_DIR, KEEPFS (or "auto") and
# optionally KEEPFS_OPTS.
#
# Globals: ROOT, base (the scratch directory), MNT and DPID (the current
# mount and its daemon; empty when none).

msg() { printf 'bench: %s\n' "$*" >&2; }
die() { msg "$*"; exit 1; }

ROOT=$(pwd)
MNT=
DPID=

# bench_require: root, fusermount3, python3 and a keepfs binary (KEEPFS=auto
# tries build-ci/, build/ and PATH)
bench_require() {
	local c
	[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts)"
	command -v fusermount3 >/dev/null || die "'fusermount3' is not installed"
	command -v python3 >/dev/null || die "'python3' is not installed"
	if [ "$KEEPFS" = auto ]; then
		KEEPFS=
		for c in "$ROOT/build-ci/tools/keepfs" "$ROOT/build/tools/keepfs" \
			"$(command -v keepfs || true)"; do
			if [ -n "$c" ] && [ -x "$c" ]; then KEEPFS=$c; break; fi
		done
	fi
	[ -n "$KEEPFS" ] && [ -x "$KEEPFS" ] ||
		die "keepfs binary not found (build it, or set KEEPFS=/path/to/keepfs)"
}

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

# wait for our daemon to exit after its unmount; stop it if it does not
stop_daemon() {
	[ -n "$DPID" ] || return 0
	for _ in $(seq 1 240); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$DPID" 2>/dev/null; then
		msg "daemon $DPID still running after unmount, sending SIGTERM"
		kill -TERM "$DPID" 2>/dev/null || true
		sleep 2
		kill -KILL "$DPID" 2>/dev/null || true
	fi
	wait "$DPID" 2>/dev/null || true
	DPID=
}

_bench_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$MNT" ] && is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || { sleep 1; fusermount3 -u "$MNT" 2>/dev/null; } ||
			fusermount3 -uz "$MNT" 2>/dev/null || true
	fi
	stop_daemon
	if grep -qF "$base" /proc/mounts; then
		msg "something under '$base' is still mounted; not removing it"
	else
		rm -rf "$base"
	fi
	exit "$rc"
}

# bench_scratch NAME: make $base under BENCH_DIR, removed at exit
bench_scratch() {
	base=$(mktemp -d "$BENCH_DIR/bench-$1.XXXXXX")
	trap _bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# bench_mount STORE MNT LOG: keepfs mount -f (with KEEPFS_OPTS) in the
# background, waiting up to 10 s for the mount; sets MNT and DPID
bench_mount() {
	local store=$1 log=$3
	MNT=$2
	if [ -n "${KEEPFS_OPTS:-}" ]; then
		"$KEEPFS" mount -f -o "$KEEPFS_OPTS" "$store" "$MNT" >"$log" 2>&1 &
	else
		"$KEEPFS" mount -f "$store" "$MNT" >"$log" 2>&1 &
	fi
	DPID=$!
	for _ in $(seq 1 200); do
		is_mounted "$MNT" && return 0
		kill -0 "$DPID" 2>/dev/null || die "keepfs did not mount: $(tail -5 "$log")"
		sleep 0.05
	done
	die "keepfs did not mount within 10 s"
}

# bench_umount: unmount MNT and wait for its daemon
bench_umount() {
	fusermount3 -u "$MNT"
	stop_daemon
	MNT=
}

# bench_bytes SIZE: "10M" -> 10485760 (suffixes M and G)
bench_bytes() {
	local n=${1%[MmGg]}
	case "$1" in
	*[Mm]) echo $((n * 1024 * 1024)) ;;
	*[Gg]) echo $((n * 1024 * 1024 * 1024)) ;;
	*) echo "$1" ;;
	esac
}

# bench_fill DIR BYTES: DIR (made) filled with BYTES of incompressible data
# in 64 MiB files, each fsynced
bench_fill() {
	python3 - "$1" "$2" <<'PY'
import os, sys
d, total = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
chunk, per_file = 1 << 20, 64 << 20
done, i = 0, 0
while done < total:
    n = min(per_file, total - done)
    with open(os.path.join(d, "f%04d" % i), "wb") as f:
        left = n
        while left:
            k = min(chunk, left)
            f.write(os.urandom(k))
            left -= k
        f.flush()
        os.fsync(f.fileno())
    done += n
    i += 1
PY
}

# The results table of a benchmark run over several sizes: the caller has
# SIZES (the sizes, in order) and res (an associative array: size -> the
# run's figures, separated by spaces).
# bench_table_head WIDTH COL LABEL: LABEL, then each size
bench_table_head() {
	local s
	printf '%-*s' "$1" "$3"
	for s in $SIZES; do printf '%*s' "$2" "$s"; done
	echo
}

# bench_table_row WIDTH COL LABEL FIELD: LABEL, then figure FIELD (from 0)
# of each size's run
bench_table_row() {
	local s f
	printf '%-*s' "$1" "$3"
	for s in $SIZES; do
		read -r -a f <<<"${res[$s]}"
		printf '%*s' "$2" "${f[$4]}"
	done
	echo
}
