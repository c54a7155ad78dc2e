#!/usr/bin/env bash
# bench/blocksize.sh - what the block size costs, in CPU instructions,
# for the store alone (no FUSE): sequential write and read of 64 MiB,
# 8192 random 4 KiB overwrites, and 2000 small files created and removed.
# Instruction counts come from callgrind, so they are the same from run to
# run on a busy machine; the store's size shows what each choice keeps.
#
# usage: bench/blocksize.sh [BUILD_DIR] [SIZES...]   (default: build 16K..128K)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
sizes=${*:-16384 32768 65536 131072}
bench=$build/bench/corebench
[ -x "$bench" ] || { echo "blocksize.sh: '$bench' not built; run ninja -C $build" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "blocksize.sh: valgrind is needed" >&2; exit 1; }
work=$(mktemp -d /dev/shm/keepfs-blocksize.XXXXXX)
trap 'rm -rf "$work"' EXIT

instr() { # workload args... -> instructions
	valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" "$work/s" "$@" 2>&1 |
		sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}
size_of() { du -sm "$work/s" | cut -f1; }

printf '%-8s %16s %16s %20s %18s %12s %12s\n' block "write Minstr/MB" "read Minstr/MB" \
	"rand 4K Kinstr/op" "files Kinstr/file" "store MiB" "after rand"
for bs in $sizes; do
	w=$(instr write --block-size "$bs" --mb 64)
	s1=$(size_of)
	r=$(instr read)
	x=$(instr rand)
	s2=$(size_of)
	f=$(instr files --block-size "$bs")
	awk -v bs="$bs" -v w="$w" -v r="$r" -v x="$x" -v f="$f" -v s1="$s1" -v s2="$s2" 'BEGIN {
		printf "%-8s %16.1f %16.2f %20.0f %18.0f %12d %12d\n", bs/1024 "K",
			w/64/1e6, r/64/1e6, x/8192/1e3, f/2000/1e3, s1, s2 }'
done
