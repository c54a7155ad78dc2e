#!/bin/bash
# run.sh [SECONDS] - a short libFuzzer run of the send stream reader, for
# the test suite (TAP).  Builds tests/fuzz/fuzz_stream.c with clang, runs
# it for SECONDS (default 30) over a copy of the seed corpus, and fails
# on any finding (the input that made it is printed, hex).  Skips when
# clang or its fuzzer runtime is missing.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-30}
if ! command -v clang >/dev/null 2>&1; then
	echo "1..0 # SKIP clang is not installed"
	exit 0
fi
T=$(mktemp -d /tmp/kfs-fuzz-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
echo "1..2"
# shellcheck disable=SC2046
if ! clang -O1 -g -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -I"$src/core" -I"$src/core/include" \
	"$src/tests/fuzz/fuzz_stream.c" "$src/core/stream.c" \
	"$src/core/codec.c" "$src/core/crypt.c" "$src/core/log.c" \
	$(pkg-config --cflags --libs libzstd libsodium) -pthread \
	-o "$T/fuzz-stream" 2>"$T/cc.log"; then
	if grep -q "libclang_rt.fuzzer\|fuzzer.*not found\|cannot find" "$T/cc.log"; then
		echo "ok 1 # SKIP clang's fuzzer runtime is missing"
		echo "ok 2 # SKIP"
		exit 0
	fi
	echo "not ok 1 - the harness builds"
	sed 's/^/# /' "$T/cc.log"
	exit 1
fi
echo "ok 1 - the harness builds"
mkdir "$T/work" "$T/seeds"
cp "$src"/tests/fuzz/corpus/* "$T/seeds/"
"$T/fuzz-stream" -max_total_time="$secs" -print_final_stats=1 \
	-artifact_prefix="$T/" -close_fd_mask=1 "$T/work" "$T/seeds" \
	>"$T/run.log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/run.log")
if [ "$rc" -eq 0 ]; then
	echo "ok 2 - ${execs:-?} executions in ${secs} s, no findings"
	exit 0
fi
echo "not ok 2 - the fuzzer found something (exit $rc after ${execs:-?} executions)"
tail -n 40 "$T/run.log" | sed 's/^/# /'
for f in "$T"/crash-* "$T"/leak-* "$T"/timeout-* "$T"/oom-*; do
	[ -e "$f" ] || continue
	echo "# input $f:"
	od -An -tx1 -v "$f" | head -n 40 | sed 's/^/# /'
done
exit 1
