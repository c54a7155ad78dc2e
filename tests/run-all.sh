#!/usr/bin/env bash
# run-all.sh - install the build and test dependencies, build keepfs with
# warnings as errors, run the whole test suite, then build it again with
# AddressSanitizer + UndefinedBehaviorSanitizer and run the suite once more.
#
# Meant for a fresh Debian 12 machine, as root (CI runs it through .ci/run).
# Exit status: 0 when every step passed, 1 when anything failed, 2 on a
# usage error.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: tests/run-all.sh [options]

Install dependencies (apt-get), build with -Dwerror=true, run the test
suite, then rebuild under ASan/UBSan and run the suite again.

options:
  --no-install     do not run apt-get (dependencies must already be there)
  --no-asan        skip the sanitizer build and its test run
  --no-plain       skip the ordinary build and its test run
  --slow           also run the 'slow' test suite
  --clean          remove the build directories first
  --build-dir DIR  ordinary build directory (default: build-ci)
  --asan-dir DIR   sanitizer build directory (default: build-ci-asan)
  -h, --help       show this help

environment:
  MESON_TEST_ARGS  extra arguments for every 'meson test' run
EOF
}

cd "$(dirname "$0")/.."
ROOT=$(pwd)

do_install=1
do_plain=1
do_asan=1
do_slow=0
do_clean=0
build_dir=build-ci
asan_dir=build-ci-asan

while [ $# -gt 0 ]; do
	case "$1" in
	--no-install) do_install=0 ;;
	--no-asan) do_asan=0 ;;
	--no-plain) do_plain=0 ;;
	--slow) do_slow=1 ;;
	--clean) do_clean=1 ;;
	--build-dir)
		[ $# -ge 2 ] || { echo "run-all.sh: option '--build-dir' needs a value" >&2; exit 2; }
		build_dir=$2; shift ;;
	--asan-dir)
		[ $# -ge 2 ] || { echo "run-all.sh: option '--asan-dir' needs a value" >&2; exit 2; }
		asan_dir=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run-all.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

# Everything the build, the tests and the benchmark use, as Debian 12
# package names.
PACKAGES=(
	build-essential meson ninja-build pkg-config
	libfuse3-dev fuse3 libsqlite3-dev libzstd-dev libsodium-dev
	scdoc sqlite3 fio stress-ng attr acl git rsync python3
	e2fsprogs psmisc util-linux procps tar xz-utils diffutils findutils
	libcap2-bin
	bindfs gocryptfs systemd openssh-server openssh-client rclone
	clang libclang-rt-dev
)

step_start=0
step() {
	step_start=$(date +%s)
	printf '\n==== %s ====\n' "$*"
}
step_done() {
	printf '==== done in %ss ====\n' "$(( $(date +%s) - step_start ))"
}

t0=$(date +%s)

# --- dependencies --------------------------------------------------------
if [ "$do_install" = 1 ]; then
	step "dependencies (apt-get)"
	missing=()
	for p in "${PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "all ${#PACKAGES[@]} packages are installed"
	else
		if [ "$(id -u)" -ne 0 ]; then
			echo "run-all.sh: missing packages (${missing[*]}) and not root; install them or use --no-install" >&2
			exit 1
		fi
		echo "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
	fi
	# node and npm run a real MCP server in tests/fuse/mcp.sh; a machine
	# that has them from elsewhere (nodesource) keeps its own
	if ! command -v npm >/dev/null 2>&1; then
		[ "$(id -u)" -eq 0 ] || { echo "run-all.sh: npm is missing and not root" >&2; exit 1; }
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		apt-get install -y -q --no-install-recommends nodejs npm
	fi
	step_done
fi

# FUSE mount tests need /dev/fuse; the tests skip themselves without it,
# but say so loudly here.
if [ ! -c /dev/fuse ]; then
	modprobe fuse 2>/dev/null || true
	[ -c /dev/fuse ] || echo "run-all.sh: warning: '/dev/fuse' is missing, mount tests will be skipped" >&2
fi

echo "compiler: $(cc --version | head -1)"
echo "meson: $(meson --version), ninja: $(ninja --version)"
echo "cores: $(nproc)"

# Leftover mounts of an earlier interrupted run would make tests fail in
# confusing ways; only report them, never unmount what we did not mount.
fuse_mounts() { awk '$3 == "fuse" || $3 ~ /^fuse\./' /proc/mounts; }
if [ -n "$(fuse_mounts)" ]; then
	echo "note: FUSE mounts present before the run:"
	fuse_mounts
fi

failed=()
n_pass=0
n_fail=0
n_skip=0

# count_results BUILDDIR: add the results of the last 'meson test' there
# to the totals.
count_results() {
	local counts p f s
	counts=$(python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif r == "SKIP":
            s += 1
        else:
            f += 1
except OSError:
    pass
print(p, f, s)
PY
	) || counts="0 0 0"
	read -r p f s <<<"$counts"
	n_pass=$((n_pass + p))
	n_fail=$((n_fail + f))
	n_skip=$((n_skip + s))
}

# run_suite NAME BUILDDIR [extra meson test args...]
run_suite() {
	local name=$1 dir=$2
	shift 2
	step "test: $name"
	rm -f "$dir/meson-logs/testlog.json"
	# shellcheck disable=SC2086
	if meson test -C "$dir" --print-errorlogs ${MESON_TEST_ARGS:-} "$@"; then
		step_done
	else
		step_done
		failed+=("$name")
		echo "---- last lines of $dir/meson-logs/testlog.txt ----"
		tail -n 60 "$dir/meson-logs/testlog.txt" 2>/dev/null || true
	fi
	count_results "$dir"
}

# build NAME BUILDDIR [meson setup args...]; returns non-zero on failure
build() {
	local name=$1 dir=$2
	shift 2
	[ "$do_clean" = 1 ] && rm -rf "$dir"
	step "build: $name ($dir)"
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" -Dwerror=true "$@" || return 1
	else
		meson setup "$dir" -Dwerror=true "$@" || return 1
	fi
	ninja -C "$dir" || return 1
	step_done
}

# --- ordinary build ------------------------------------------------------
if [ "$do_plain" = 1 ]; then
	if build "default" "$build_dir"; then
		run_suite "default" "$build_dir"
		[ "$do_slow" = 1 ] && run_suite "slow" "$build_dir" --suite slow
	else
		failed+=("build")
	fi
fi

# --- sanitizer build -----------------------------------------------------
if [ "$do_asan" = 1 ]; then
	if build "asan+ubsan" "$asan_dir" \
		-Db_sanitize=address,undefined -Db_lundef=false; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		# the fuzz suite builds its harnesses with clang itself, the
		# same in both builds: once is enough.  stress-ng's stressors
		# run shorter here: what a sanitizer finds shows in the first
		# seconds, and CI has 30 minutes for both runs
		KFS_STRESS_SECS=${KFS_STRESS_SECS:-4} \
			run_suite "asan+ubsan" "$asan_dir" --timeout-multiplier 3 \
			--no-suite fuzz
		[ "$do_slow" = 1 ] && run_suite "asan+ubsan slow" "$asan_dir" \
			--timeout-multiplier 3 --suite slow
		unset ASAN_OPTIONS UBSAN_OPTIONS
	else
		failed+=("asan build")
	fi
fi

# Nothing a test mounted may outlive it.
if grep -q "$ROOT/$build_dir\|$ROOT/$asan_dir" /proc/mounts 2>/dev/null; then
	echo "run-all.sh: mounts left behind by the tests:" >&2
	grep "$ROOT/$build_dir\|$ROOT/$asan_dir" /proc/mounts >&2 || true
	failed+=("leftover mounts")
fi

printf '\n==== summary (%ss) ====\n' "$(( $(date +%s) - t0 ))"
if [ ${#failed[@]} -ne 0 ]; then
	echo "FAILED: ${failed[*]}"
else
	echo "all steps passed"
fi
# The totals over every suite run above, in the usual closing-line form.
echo "tests: $n_pass passed, $n_fail failed, $n_skip skipped"
[ ${#failed[@]} -eq 0 ] || exit 1
exit 0
