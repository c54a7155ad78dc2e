#!/usr/bin/env bash
# bench/run.sh - measure keepfs side by side with a plain directory on the
# same disk and two FUSE peers (bindfs: passthrough; gocryptfs: transforms
# every block), in one run, and print medians of several runs.
#
# Needs root (drop_caches, mounts), fio, python3, bindfs, gocryptfs,
# fusermount3.  Every mount and daemon it starts is stopped again and its
# scratch directory removed, also when it fails or is interrupted.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/run.sh [options]

options:
  -m, --markdown FILE   also write the result table as Markdown to FILE
  -r, --raw FILE        also write every single figure (TSV) to FILE
  -t, --targets LIST    what to measure, space or comma separated
                        (default: "plain bindfs gocryptfs keepfs keepfs-enc";
                        keepfs-enc is keepfs on an encrypted store)
  -n, --runs N          runs per target; the table shows medians (default 3)
  -k, --keep            keep the scratch directory (never while mounted)
  -h, --help            show this help

environment (defaults in brackets):
  RUNS [3]              same as --runs
  BENCH_DIR [/tmp]      parent of the scratch directory; it must be on the
                        disk to measure (not tmpfs): plain, the bindfs and
                        gocryptfs backing dirs and the keepfs store live there
  KEEPFS [auto]         keepfs binary; auto tries build-ci/, build/, PATH
  KEEPFS_OPTS []        extra "-o" options for keepfs mount
  KEEPFS_INIT_OPTS []   extra options for keepfs init (e.g. --block-size 32K)
  SEQ_SIZE [1G]         size of the sequential write/read file
  RAND_SIZE [256M]      file size for the 4 KiB random writes
  RAND_RUNTIME [60]     upper bound in seconds for the random-write phase
  NFILES [20000]        small files to create, stat and unlink
  FILE_SIZE [1024]      bytes written to each small file
  SQL_TX [500]          SQLite transactions
  SQL_ROWS [100]        rows per SQLite transaction
  TAR_SRC [/usr/include] tree whose tarball is extracted
EOF
}

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH=$ROOT/bench

RUNS=${RUNS:-3}
TARGETS=${TARGETS:-"plain bindfs gocryptfs keepfs keepfs-enc"}
BENCH_DIR=${BENCH_DIR:-/tmp}
KEEPFS=${KEEPFS:-auto}
KEEPFS_OPTS=${KEEPFS_OPTS:-}
KEEPFS_INIT_OPTS=${KEEPFS_INIT_OPTS:-}
SEQ_SIZE=${SEQ_SIZE:-1G}
RAND_SIZE=${RAND_SIZE:-256M}
RAND_RUNTIME=${RAND_RUNTIME:-60}
NFILES=${NFILES:-20000}
FILE_SIZE=${FILE_SIZE:-1024}
SQL_TX=${SQL_TX:-500}
SQL_ROWS=${SQL_ROWS:-100}
TAR_SRC=${TAR_SRC:-/usr/include}
markdown=
rawout=
keep=0

while [ $# -gt 0 ]; do
	case "$1" in
	-m|--markdown) [ $# -ge 2 ] || { usage >&2; exit 2; }; markdown=$2; shift ;;
	-r|--raw) [ $# -ge 2 ] || { usage >&2; exit 2; }; rawout=$2; shift ;;
	-t|--targets) [ $# -ge 2 ] || { usage >&2; exit 2; }; TARGETS=$2; shift ;;
	-n|--runs) [ $# -ge 2 ] || { usage >&2; exit 2; }; RUNS=$2; shift ;;
	-k|--keep) keep=1 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
TARGETS=${TARGETS//,/ }
case "$RUNS" in ''|*[!0-9]*|0) echo "bench: bad number of runs '$RUNS'" >&2; exit 2 ;; esac
# Markdown/raw paths are relative to where the user stood, not the repo.
[ -n "$markdown" ] && case "$markdown" in /*) ;; *) markdown=$OLDPWD/$markdown ;; esac
[ -n "$rawout" ] && case "$rawout" in /*) ;; *) rawout=$OLDPWD/$rawout ;; esac

msg() { printf 'bench: %s\n' "$*" >&2; }
die() { msg "$*"; exit 1; }

# --- preconditions --------------------------------------------------------
for t in $TARGETS; do
	case "$t" in plain|bindfs|gocryptfs|keepfs|keepfs-enc) ;;
	*) echo "bench: unknown target '$t'" >&2; exit 2 ;; esac
done
for tool in fio python3 tar fusermount3 mountpoint; do
	command -v "$tool" >/dev/null || die "'$tool' is not installed (run tests/run-all.sh or apt-get install it)"
done
[ "$(id -u)" -eq 0 ] || die "run as root: dropping the page cache needs it"
[ -d "$BENCH_DIR" ] || die "scratch parent '$BENCH_DIR' is not a directory"
if [ "$(stat -f -c %T "$BENCH_DIR")" = tmpfs ]; then
	die "'$BENCH_DIR' is tmpfs, so 'plain' would measure memory; set BENCH_DIR to a directory on a disk (e.g. /var/tmp)"
fi

drop_caches_ok=1
if ! (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
	drop_caches_ok=0
	msg "warning: cannot write '/proc/sys/vm/drop_caches': sequential reads will be from a warm cache"
fi

targets=()
for t in $TARGETS; do
	case "$t" in
	bindfs|gocryptfs)
		if ! command -v "$t" >/dev/null; then
			msg "'$t' is not installed, skipping it"
			continue
		fi ;;
	keepfs|keepfs-enc)
		if [ "$KEEPFS" = auto ]; then
			KEEPFS=
			for c in "$ROOT/build-ci/tools/keepfs" "$ROOT/build/tools/keepfs" \
				"$(command -v keepfs || true)"; do
				if [ -n "$c" ] && [ -x "$c" ]; then KEEPFS=$c; break; fi
			done
		fi
		if [ -z "$KEEPFS" ] || [ ! -x "$KEEPFS" ]; then
			msg "keepfs binary not found (build it: meson setup build && ninja -C build, or set KEEPFS=/path/to/keepfs); skipping keepfs"
			continue
		fi ;;
	esac
	targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || die "nothing to measure"

# --- scratch space and cleanup --------------------------------------------
base=$(mktemp -d "$BENCH_DIR/bench-keepfs.XXXXXX")
mounts=()	# every mount point we mounted
pids=()		# every daemon we started

# From /proc/mounts rather than mountpoint(1): a dead FUSE daemon leaves a
# mount that cannot be stat()ed but still has to be unmounted.
is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

# Stop one daemon we started: give it time to exit after the unmount (keepfs
# writes its final commit), then TERM, then KILL.
stop_pid() {
	local pid=$1 i
	for i in $(seq 1 120); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	msg "daemon $pid still running after unmount, sending SIGTERM"
	kill -TERM "$pid" 2>/dev/null || true
	sleep 2
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? m p
	trap - EXIT INT TERM
	for m in "${mounts[@]}"; do
		if is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null || { sleep 1; fusermount3 -u "$m" 2>/dev/null; } ||
				fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		fi
	done
	for p in "${pids[@]}"; do stop_pid "$p"; done
	if grep -qF "$base" /proc/mounts; then
		msg "something under '$base' is still mounted; not removing it"
	elif [ "$keep" = 1 ]; then
		msg "scratch directory kept: $base"
	else
		rm -rf "$base"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

results=$base/results.tsv
logdir=$base/log
mkdir -p "$logdir"
: >"$results"

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$results"; }

now() { date +%s.%N; }

# --- mounting the targets --------------------------------------------------
# mount_target TARGET RUN: sets MNT (the directory the workloads use) and
# DPID (the daemon's pid, empty for plain).
MNT=
DPID=
wait_mounted() {
	local mnt=$1 pid=$2 i
	for i in $(seq 1 200); do
		is_mounted "$mnt" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			return 1
		fi
		sleep 0.05
	done
	return 1
}

mount_target() {
	local t=$1 run=$2 dir=$base/$1-$2
	rm -rf "$dir"
	mkdir -p "$dir"
	DPID=
	case "$t" in
	plain)
		MNT=$dir/data
		mkdir "$MNT"
		return 0 ;;
	bindfs)
		mkdir "$dir/backing" "$dir/mnt"
		MNT=$dir/mnt
		bindfs -f "$dir/backing" "$MNT" >"$logdir/$t-$run-daemon.log" 2>&1 &
		DPID=$! ;;
	gocryptfs)
		mkdir "$dir/cipher" "$dir/mnt"
		MNT=$dir/mnt
		head -c 24 /dev/urandom | base64 >"$dir/pass"
		gocryptfs -init -q -passfile "$dir/pass" "$dir/cipher" \
			>"$logdir/$t-$run-init.log" 2>&1 || return 1
		gocryptfs -fg -q -passfile "$dir/pass" "$dir/cipher" "$MNT" \
			>"$logdir/$t-$run-daemon.log" 2>&1 &
		DPID=$! ;;
	keepfs|keepfs-enc)
		mkdir "$dir/mnt"
		MNT=$dir/mnt
		local opts=$KEEPFS_OPTS enc=()
		if [ "$t" = keepfs-enc ]; then
			"$KEEPFS" key generate "$dir/key" >/dev/null || return 1
			enc=(--key-file "$dir/key")
			opts=${opts:+$opts,}keyfile=$dir/key
		fi
		# shellcheck disable=SC2086
		"$KEEPFS" init $KEEPFS_INIT_OPTS "${enc[@]}" "$dir/store" >"$logdir/$t-$run-init.log" 2>&1 || return 1
		if [ -n "$opts" ]; then
			"$KEEPFS" mount -f -o "$opts" "$dir/store" "$MNT" \
				>"$logdir/$t-$run-daemon.log" 2>&1 &
		else
			"$KEEPFS" mount -f "$dir/store" "$MNT" \
				>"$logdir/$t-$run-daemon.log" 2>&1 &
		fi
		DPID=$! ;;
	esac
	mounts+=("$MNT")
	pids+=("$DPID")
	if ! wait_mounted "$MNT" "$DPID"; then
		msg "$t did not mount; its log:"
		cat "$logdir/$t-$run-daemon.log" >&2 || true
		return 1
	fi
}

# umount_target TARGET RUN: records the daemon's peak RSS, unmounts, waits
# for the daemon and checks that it exited 0.
umount_target() {
	local t=$1 run=$2 hwm st
	[ -n "$DPID" ] || return 0
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DPID/status" 2>/dev/null || true)
	[ -n "$hwm" ] && record "$t" rss "$run" "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')"
	if [ "$t" = keepfs ] || [ "$t" = keepfs-enc ]; then
		"$KEEPFS" stats "$MNT" >"$logdir/$t-$run-stats.log" 2>&1 || true
	fi
	sync
	fusermount3 -u "$MNT" || { sleep 1; fusermount3 -u "$MNT"; } || return 1
	st=0
	wait "$DPID" || st=$?
	if [ "$st" -ne 0 ]; then
		msg "$t daemon exited with status $st"
		return 1
	fi
}

# --- the workloads ----------------------------------------------------------
# Each prints nothing on success and records its figure(s).

fio_json() { # FILE KEY... -> value
	python3 - "$@" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
job = j["jobs"][0]
if job.get("error"):
    sys.exit("fio job error %d" % job["error"])
v = job
for k in sys.argv[2:]:
    v = v[k]
print("%.1f" % (v / 1e6 if sys.argv[-1] == "bw_bytes" else v))
EOF
}

w_seq() {
	local t=$1 run=$2 d=$MNT/seq out=$logdir/$1-$2
	mkdir "$d"
	fio --name=seqwrite --directory="$d" --filename=seq.dat --rw=write \
		--bs=1M --size="$SEQ_SIZE" --ioengine=psync --end_fsync=1 \
		--fallocate=none --output-format=json >"$out-seqwrite.json" || return 1
	record "$t" seqwrite "$run" "$(fio_json "$out-seqwrite.json" write bw_bytes)"
	sync
	[ "$drop_caches_ok" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
	fio --name=seqread --directory="$d" --filename=seq.dat --rw=read \
		--bs=1M --size="$SEQ_SIZE" --ioengine=psync \
		--output-format=json >"$out-seqread.json" || return 1
	record "$t" seqread "$run" "$(fio_json "$out-seqread.json" read bw_bytes)"
	rm -rf "$d"
}

w_rand() {
	local t=$1 run=$2 d=$MNT/rand out=$logdir/$1-$2
	mkdir "$d"
	fio --name=randwrite --verify_state_save=0 --directory="$d" --filename=rand.dat --rw=randwrite \
		--bs=4k --size="$RAND_SIZE" --ioengine=psync --verify=crc32c \
		--fallocate=none --runtime="$RAND_RUNTIME" \
		--output-format=json >"$out-randwrite.json" || return 1
	record "$t" randwrite "$run" "$(fio_json "$out-randwrite.json" write iops)"
	rm -rf "$d"
}

w_files() {
	local t=$1 run=$2 out k v
	out=$(python3 "$BENCH/smallfiles.py" "$MNT" "$NFILES" "$FILE_SIZE") || return 1
	while read -r k v; do
		case "$k" in create|stat|unlink) record "$t" "$k" "$run" "$v" ;; esac
	done <<<"$out"
}

w_sqlite() {
	local t=$1 run=$2 out
	out=$(python3 "$BENCH/sqlite_wal.py" "$MNT" "$SQL_TX" "$SQL_ROWS") || return 1
	record "$t" sqlite "$run" "${out#tx }"
	rm -f "$MNT"/bench.db*
}

w_tar() {
	local t=$1 run=$2 d=$MNT/tar t0 t1
	mkdir "$d"
	t0=$(now)
	tar -xf "$base/tree.tar" -C "$d" || return 1
	t1=$(now)
	record "$t" tar "$run" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
	rm -rf "$d"
}

WORKLOADS="seq rand files sqlite tar"

# --- main loop ----------------------------------------------------------------
start=$(date +%s)
msg "scratch directory: $base ($(df -h --output=source,fstype "$base" | tail -1 | tr -s ' '))"
msg "targets: ${targets[*]}; runs: $RUNS"
[ -n "$KEEPFS" ] && [[ " ${targets[*]} " == *" keepfs "* ]] &&
	msg "keepfs: $KEEPFS ($("$KEEPFS" --version 2>&1 | head -1 || true))"
tar -cf "$base/tree.tar" -C "$(dirname "$TAR_SRC")" "$(basename "$TAR_SRC")" 2>/dev/null ||
	die "cannot make a tarball of '$TAR_SRC'"
msg "tarball of $TAR_SRC: $(du -h "$base/tree.tar" | cut -f1), $(tar -tf "$base/tree.tar" | wc -l) entries"

failures=0
for run in $(seq 1 "$RUNS"); do
	for t in "${targets[@]}"; do
		msg "run $run/$RUNS: $t"
		if ! mount_target "$t" "$run"; then
			failures=$((failures + 1))
			continue
		fi
		for w in $WORKLOADS; do
			sync
			ts=$(date +%s)
			if ! "w_$w" "$t" "$run"; then
				msg "  $w failed on $t (logs in $logdir; use --keep to keep them)"
				failures=$((failures + 1))
				if [ -n "$DPID" ] && ! kill -0 "$DPID" 2>/dev/null; then
					msg "  the $t daemon died"
					break
				fi
			else
				msg "  $w done in $(( $(date +%s) - ts ))s"
			fi
		done
		if ! umount_target "$t" "$run"; then
			failures=$((failures + 1))
		fi
		rm -rf "${base:?}/$t-$run"
	done
done

elapsed=$(( $(date +%s) - start ))
echo
echo "keepfs benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, kernel $(uname -r), ${elapsed}s"
[ "$drop_caches_ok" = 1 ] || echo "warning: sequential reads were NOT from a cold cache"
SEQ_SIZE=$SEQ_SIZE RAND_SIZE=$RAND_SIZE NFILES=$NFILES SQL_TX=$SQL_TX \
	SQL_ROWS=$SQL_ROWS TAR_SRC=$TAR_SRC python3 "$BENCH/report.py" "$results" ${markdown:+"$markdown"}
last_stats=$(ls -t "$logdir"/keepfs-*-stats.log 2>/dev/null | head -1 || true)
if [ -n "$last_stats" ] && [ -s "$last_stats" ]; then
	echo
	echo "keepfs stats at the end of its last run:"
	sed 's/^/  /' "$last_stats"
fi
[ -n "$rawout" ] && cp "$results" "$rawout"
[ -n "$markdown" ] && msg "markdown table written to $markdown"
if [ "$failures" -ne 0 ]; then
	msg "$failures step(s) failed"
	exit 1
fi
exit 0
