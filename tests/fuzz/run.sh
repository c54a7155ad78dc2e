#!/bin/bash
# run.sh [SECONDS] - short libFuzzer runs of the send stream reader
# (fuzz_stream.c) and of keep_receive (fuzz_receive.c), for the test suite
# (TAP).  Builds each with clang, runs it for SECONDS (default 30) over a
# copy of its seed corpus, and fails on any finding (the input that made
# it is printed, hex).  Skips when clang or its fuzzer runtime is missing.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-30}
if ! command -v clang >/dev/null 2>&1; then
	echo "1..0 # SKIP clang is not installed"
	exit 0
fi
T=$(mktemp -d /tmp/kfs-fuzz-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
echo "1..4"
cflags=(-std=c17 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O1 -g
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-I"$src/core" -I"$src/core/include")
n=0
# fuzz NAME CORPUS SOURCES...: build and run one harness, two TAP lines
fuzz() {
	local name=$1 corpus=$2 rc execs
	shift 2
	# shellcheck disable=SC2046
	if ! clang "${cflags[@]}" "$@" \
		$(pkg-config --cflags --libs libzstd libsodium sqlite3) -pthread \
		-o "$T/$name" 2>"$T/cc.log"; then
		if grep -q "libclang_rt.fuzzer\|cannot find" "$T/cc.log"; then
			echo "ok $((n + 1)) # SKIP clang's fuzzer runtime is missing"
			echo "ok $((n + 2)) # SKIP"
			n=$((n + 2))
			return 0
		fi
		echo "not ok $((n + 1)) - $name builds"
		sed 's/^/# /' "$T/cc.log"
		echo "not ok $((n + 2)) - $name runs"
		n=$((n + 2))
		return 1
	fi
	echo "ok $((n + 1)) - $name builds"
	rm -rf "$T/work" "$T/seeds"
	mkdir "$T/work" "$T/seeds"
	cp "$corpus"/* "$T/seeds/"
	"$T/$name" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$T/" -close_fd_mask=1 "$T/work" "$T/seeds" \
		>"$T/run.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/run.log")
	n=$((n + 2))
	if [ "$rc" -eq 0 ]; then
		echo "ok $n - $name: ${execs:-?} executions in ${secs} s, no findings"
		return 0
	fi
	echo "not ok $n - $name found something (exit $rc after ${execs:-?} executions)"
	tail -n 40 "$T/run.log" | sed 's/^/# /'
	for f in "$T"/crash-* "$T"/leak-* "$T"/timeout-* "$T"/oom-*; do
		[ -e "$f" ] || continue
		echo "# input $f:"
		od -An -tx1 -v "$f" | head -n 40 | sed 's/^/# /'
	done
	return 1
}
status=0
fuzz fuzz-stream "$src/tests/fuzz/corpus" "$src/tests/fuzz/fuzz_stream.c" \
	"$src/core/stream.c" "$src/core/codec.c" "$src/core/crypt.c" \
	"$src/core/log.c" || status=1
fuzz fuzz-receive "$src/tests/fuzz/corpus-receive" \
	"$src/tests/fuzz/fuzz_receive.c" "$src"/core/*.c || status=1
exit $status
