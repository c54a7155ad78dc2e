# lib.sh - harness for keepfs's mounted tests; source it from bash.
#
# TAP:     pass, fail, ok, is, like, unlike, check, check_not, run_is,
#          run_ok, diag, skip,
#          kfs_tap_include, done_testing, skip_all, bail_out
# Mounts:  kfs_setup, kfs_mount, kfs_umount, kfs_remount, kfs_kill9,
#          wait_mounted, is_mounted, kfs_daemon_pid, kfs_fsck
#
# KEEPFS names the keepfs binary.  Everything a test makes lives under one
# mktemp directory, $KFS_TMP.  An EXIT trap unmounts every mount the test
# made (fusermount3 -u, lazily if that fails), kills the daemons it knows of
# by pid, and removes $KFS_TMP once nothing is mounted under it, whatever
# way the test ends.
#
# Daemons normally run in the foreground (-f) as children of the test, so
# their exit status and stderr are checked: a clean unmount must end with
# exit status 0 and no sanitizer report in the log.  KFS_DAEMONIZE=1 (or
# kfs_mount --daemon) uses the daemonizing path instead; the pid is then
# found as the process holding STORE/lock.
#
# KFS_ENCRYPT=1 runs a test on encrypted stores: kfs_init makes them with
# a key file in $KFS_TMP, which KEEPFS_KEY_FILE hands to every command and
# mount, so the test itself does not change.
#
# Under meson's TAP protocol a non-zero exit status is an error, so a
# skipped test prints "1..0 # SKIP why" and exits 0.

set -u
set -o pipefail

_kfs_n=0
_kfs_failed=0
_kfs_done=0
_kfs_mnts=()		# mount points made by this test, FUSE or not
declare -A _kfs_pid=()	# mount point -> daemon pid
declare -A _kfs_child=()	# mount point -> 1 when the daemon is our child
declare -A _kfs_log=()	# mount point -> daemon log
_kfs_loops=()		# loop devices to detach
_kfs_files=()		# files outside KFS_TMP to remove (kfs_track_file)
_kfs_undo=()		# commands that undo a change to the system (kfs_undo)
KFS_TESTS=${KFS_TESTS:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
KFS_TMP=
KFS_STORE=
KFS_MNT=
KFS_PID=

# --- TAP -------------------------------------------------------------------

diag() {
	local line
	while IFS= read -r line; do
		printf '# %s\n' "$line"
	done <<<"$*"
}

pass() {
	_kfs_n=$((_kfs_n + 1))
	printf 'ok %d - %s\n' "$_kfs_n" "$1"
}

# fail DESC [DIAG...]
fail() {
	_kfs_n=$((_kfs_n + 1))
	_kfs_failed=$((_kfs_failed + 1))
	printf 'not ok %d - %s\n' "$_kfs_n" "$1"
	shift
	local d
	for d in "$@"; do
		diag "  $d"
	done
	return 1
}

skip() {
	_kfs_n=$((_kfs_n + 1))
	printf 'ok %d - %s # SKIP %s\n' "$_kfs_n" "$1" "$2"
}

# ok STATUS DESC: passes when STATUS is 0
ok() {
	if [ "$1" -eq 0 ]; then pass "$2"; else fail "$2" "status $1"; fi
}

# is GOT WANT DESC
is() {
	if [ "$1" == "$2" ]; then
		pass "$3"
	else
		fail "$3" "got:  '$1'" "want: '$2'"
	fi
}

# like GOT REGEX DESC
like() {
	if [[ "$1" =~ $2 ]]; then
		pass "$3"
	else
		fail "$3" "got:  '$1'" "want: match of /$2/"
	fi
}

unlike() {
	if [[ "$1" =~ $2 ]]; then
		fail "$3" "got:  '$1'" "want: no match of /$2/"
	else
		pass "$3"
	fi
}

# check DESC CMD... / check_not DESC CMD...: CMD (a command or a function)
# must succeed / fail
check() {
	local d=$1
	shift
	if "$@" >/dev/null 2>&1; then pass "$d"; else fail "$d" "failed: $*"; fi
}

check_not() {
	local d=$1
	shift
	if "$@" >/dev/null 2>&1; then fail "$d" "succeeded: $*"; else pass "$d"; fi
}

# run_is STATUS DESC CMD...: runs CMD, its status must be STATUS.
# Leaves KFS_RC, KFS_OUT (stdout) and KFS_ERR (stderr) behind.
run_is() {
	local want=$1 desc=$2
	shift 2
	local o e
	o=$(mktemp "${KFS_TMP:-/tmp}/out.XXXXXX")
	e=$(mktemp "${KFS_TMP:-/tmp}/err.XXXXXX")
	KFS_RC=0
	"$@" >"$o" 2>"$e" </dev/null || KFS_RC=$?
	KFS_OUT=$(cat "$o")
	KFS_ERR=$(cat "$e")
	rm -f "$o" "$e"
	if [ "$KFS_RC" -eq "$want" ]; then
		pass "$desc"
	else
		fail "$desc" "command: $*" "exit status $KFS_RC, want $want" \
			"stdout: $(head -c 2000 <<<"$KFS_OUT")" "stderr: $(head -c 2000 <<<"$KFS_ERR")"
	fi
}

run_ok() {
	local desc=$1
	shift
	run_is 0 "$desc" "$@"
}

# fails STATUS DESC REGEX CMD...: CMD exits STATUS with a "keepfs: "
# message matching REGEX and nothing on stdout (three TAP lines).  A test
# may define its own.
fails() {
	local st=$1 desc=$2 re=$3
	shift 3
	run_is "$st" "$desc: exit status $st" "$@"
	like "$KFS_ERR" "^keepfs: $re" "$desc: message"
	is "$KFS_OUT" "" "$desc: nothing on stdout"
}

# kfs_tap_include CMD...: runs a TAP producer and folds its test lines into
# this test's numbering; its plan is dropped, a non-zero exit or a missing
# plan is one more failure.
kfs_tap_include() {
	local line rc=0 planned=0 n=0 out
	out=$(mktemp "${KFS_TMP:-/tmp}/tap.XXXXXX")
	"$@" >"$out" 2>&1 || rc=$?
	while IFS= read -r line; do
		if [[ "$line" =~ ^(not\ )?ok\ [0-9]+(.*)$ ]]; then
			_kfs_n=$((_kfs_n + 1))
			n=$((n + 1))
			if [ -n "${BASH_REMATCH[1]}" ]; then
				_kfs_failed=$((_kfs_failed + 1))
				printf 'not ok %d%s\n' "$_kfs_n" "${BASH_REMATCH[2]}"
			else
				printf 'ok %d%s\n' "$_kfs_n" "${BASH_REMATCH[2]}"
			fi
		elif [[ "$line" =~ ^1\.\.([0-9]+) ]]; then
			planned=${BASH_REMATCH[1]}
		elif [[ "$line" =~ ^Bail\ out! ]]; then
			fail "$1: $line"
		elif [[ "$line" =~ ^# ]]; then
			printf '%s\n' "$line"
		else
			printf '# %s\n' "$line"
		fi
	done <"$out"
	rm -f "$out"
	if [ "$rc" -ne 0 ] || [ "$planned" -ne "$n" ]; then
		fail "$1 finished cleanly" "exit status $rc, planned $planned, ran $n"
	else
		pass "$1 finished cleanly ($n checks)"
	fi
}

done_testing() {
	_kfs_done=1
	printf '1..%d\n' "$_kfs_n"
	if [ "$_kfs_failed" -ne 0 ]; then
		diag "$_kfs_failed of $_kfs_n failed"
		exit 1
	fi
	exit 0
}

skip_all() {
	_kfs_done=1
	printf '1..0 # SKIP %s\n' "$1"
	exit 0
}

bail_out() {
	_kfs_done=1
	printf 'Bail out! %s\n' "$1"
	exit 1
}

# --- requirements ----------------------------------------------------------

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "'$c' is not installed"
	done
}

_kfs_require_fuse() {
	[ "$(id -u)" -eq 0 ] || skip_all "mounted tests need root"
	[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip_all "/dev/fuse is not usable"
	command -v fusermount3 >/dev/null 2>&1 || skip_all "fusermount3 is not installed"
	[ -n "${KEEPFS:-}" ] || bail_out "KEEPFS must name the keepfs binary"
	[ -x "$KEEPFS" ] || bail_out "KEEPFS '$KEEPFS' is not executable"
}

# --- mounts ----------------------------------------------------------------

# is_mounted MNT [TYPE]: MNT is in /proc/mounts (with TYPE if given)
is_mounted() {
	local dev mnt type rest
	while read -r dev mnt type rest; do
		if [ "$mnt" == "$1" ] && { [ $# -lt 2 ] || [ "$type" == "$2" ]; }; then
			return 0
		fi
	done </proc/mounts
	return 1
}

# mount_source MNT / mount_type MNT: fields of the last mount at MNT
mount_source() {
	local dev mnt type rest found=1
	while read -r dev mnt type rest; do
		if [ "$mnt" == "$1" ]; then
			_kfs_src=$dev
			found=0
		fi
	done </proc/mounts
	[ "$found" -eq 0 ] && printf '%s\n' "$_kfs_src"
}

mount_type() {
	local dev mnt type rest found=1
	while read -r dev mnt type rest; do
		if [ "$mnt" == "$1" ]; then
			_kfs_type=$type
			found=0
		fi
	done </proc/mounts
	[ "$found" -eq 0 ] && printf '%s\n' "$_kfs_type"
}

_kfs_alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# wait_mounted MNT [PID] [SECONDS]: waits for a keepfs mount at MNT; fails
# early if PID dies first.
wait_mounted() {
	local mnt=$1 pid=${2:-} secs=${3:-30} i
	for ((i = 0; i < secs * 20; i++)); do
		is_mounted "$mnt" fuse.keepfs && return 0
		if [ -n "$pid" ] && ! _kfs_alive "$pid"; then
			return 1
		fi
		sleep 0.05
	done
	return 1
}

# kfs_daemon_pid STORE: the pid of the process holding STORE/lock
kfs_daemon_pid() {
	local lock p
	lock=$(readlink -f "$1/lock") || return 1
	p=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "$lock" 2>/dev/null | head -n 1)
	[ -n "$p" ] || return 1
	p=${p#/proc/}
	printf '%s\n' "${p%%/*}"
}

_kfs_track() {
	local m
	for m in "${_kfs_mnts[@]}"; do
		[ "$m" == "$1" ] && return 0
	done
	_kfs_mnts+=("$1")
}

# kfs_track_mount MNT: have the EXIT trap unmount MNT (for non-FUSE mounts)
kfs_track_mount() {
	_kfs_track "$1"
}

kfs_track_loop() {
	_kfs_loops+=("$1")
}

# kfs_track_file PATH: have the EXIT trap remove PATH (a file the test put
# outside KFS_TMP, such as a helper where mount(8) looks for it)
kfs_track_file() {
	_kfs_files+=("$1")
}

# kfs_undo CMD: have the EXIT trap run CMD (a shell string), last first:
# it undoes a change the test made to the system (a user, a mode)
kfs_undo() {
	_kfs_undo+=("$1")
}

kfs_tmpdir() {
	if [ -z "$KFS_TMP" ]; then
		KFS_TMP=$(mktemp -d /tmp/kfs-tests-XXXXXX) || bail_out "mktemp failed"
	fi
}

# kfs_init STORE: keepfs init, which must succeed (encrypted under
# KFS_ENCRYPT=1)
kfs_init() {
	local err args=(init "$1")
	if [ "${KFS_ENCRYPT:-0}" == 1 ]; then
		kfs_tmpdir
		if [ ! -e "$KFS_TMP/kfs.key" ]; then
			err=$("$KEEPFS" key generate "$KFS_TMP/kfs.key" 2>&1) ||
				bail_out "keepfs key generate failed: $err"
		fi
		export KEEPFS_KEY_FILE=$KFS_TMP/kfs.key
		args+=(--key-file "$KFS_TMP/kfs.key")
	fi
	if ! err=$("$KEEPFS" "${args[@]}" 2>&1 </dev/null); then
		bail_out "keepfs init '$1' failed: $err"
	fi
	if [ "${KFS_ENCRYPT:-0}" == 1 ] &&
		! "$KEEPFS" stats "$1" 2>&1 | grep -q '^encrypted: *yes'; then
		bail_out "store '$1' was to be encrypted and is not"
	fi
}

# kfs_mount [--daemon] STORE MNT [OPTS]: mounts and waits for the mount
# (with $KFS_MOUNT_OPTS before OPTS);
# sets KFS_PID.  Returns 1 (with a diagnostic) when the mount fails.
kfs_mount() {
	local daemon=${KFS_DAEMONIZE:-0}
	if [ "$1" == "--daemon" ]; then
		daemon=1
		shift
	fi
	local store=$1 mnt=$2 opts=${3:-} log pid
	# KFS_MOUNT_OPTS: options for every mount of a run (threads=1, say)
	[ -n "${KFS_MOUNT_OPTS:-}" ] && opts=$KFS_MOUNT_OPTS${opts:+,$opts}
	local args=(mount "$store" "$mnt")
	[ -n "$opts" ] && args+=(-o "$opts")
	mkdir -p "$mnt"
	if ! is_mounted "$mnt" && [ -n "$(ls -A "$mnt")" ]; then
		diag "mount point '$mnt' is not empty: something wrote into it while it was not mounted"
		return 1
	fi
	log="$KFS_TMP/daemon.$(basename "$mnt").log"
	_kfs_track "$mnt"
	_kfs_log[$mnt]=$log
	if [ "$daemon" -eq 1 ]; then
		if ! "$KEEPFS" "${args[@]}" >>"$log" 2>&1 </dev/null; then
			diag "keepfs ${args[*]} failed:" "$(tail -n 20 "$log")"
			return 1
		fi
		if ! is_mounted "$mnt" fuse.keepfs; then
			diag "keepfs mount returned 0 but '$mnt' is not mounted"
			return 1
		fi
		pid=$(kfs_daemon_pid "$store") || {
			diag "no process holds '$store/lock'"
			return 1
		}
		_kfs_child[$mnt]=0
	else
		"$KEEPFS" "${args[@]}" -f >>"$log" 2>&1 </dev/null &
		pid=$!
		_kfs_child[$mnt]=1
		_kfs_pid[$mnt]=$pid
		if ! wait_mounted "$mnt" "$pid" 30; then
			diag "mount of '$store' at '$mnt' did not appear:" "$(tail -n 20 "$log")"
			if _kfs_alive "$pid"; then
				kill -9 "$pid" 2>/dev/null
			fi
			wait "$pid" 2>/dev/null
			unset "_kfs_pid[$mnt]"
			return 1
		fi
		# with -f the mount shows a moment before the control socket
		local i
		for ((i = 0; i < 200; i++)); do
			[ -S "$store/control" ] && break
			sleep 0.05
		done
	fi
	_kfs_pid[$mnt]=$pid
	KFS_PID=$pid
	return 0
}

# _kfs_reap MNT: waits up to 30 s for MNT's daemon to exit and sets
# _kfs_reaped to its exit status when it was our child, "gone" otherwise,
# "alive" if it did not exit.  It must run in this shell, not in a $(...)
# subshell: only the shell that started the daemon can wait for it.
_kfs_reap() {
	local mnt=$1 pid=${_kfs_pid[$1]:-} i rc=0
	_kfs_reaped=gone
	[ -n "$pid" ] || return 0
	for ((i = 0; i < 600; i++)); do
		_kfs_alive "$pid" || break
		sleep 0.05
	done
	if _kfs_alive "$pid"; then
		_kfs_reaped=alive
		return 0
	fi
	if [ "${_kfs_child[$mnt]:-0}" -eq 1 ]; then
		wait "$pid" 2>/dev/null || rc=$?
		_kfs_reaped=$rc
	fi
	unset "_kfs_pid[$mnt]"
}

# sanitizer and crash reports in a daemon log
_kfs_log_problems() {
	local log=${_kfs_log[$1]:-}
	[ -n "$log" ] && [ -f "$log" ] || return 1
	grep -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: .*Sanitizer|Segmentation fault|Assertion .* failed' "$log"
}

# kfs_umount [MNT] [--fusermount]: unmounts with `keepfs umount` (or
# fusermount3 -u) and checks, as one TAP line, that the command succeeded,
# the mount is gone, the daemon exited with status 0 and logged no
# sanitizer report.
kfs_umount() {
	local mnt=${1:-$KFS_MNT} how=${2:-keepfs} out rc=0 st problems
	if [ "$how" == "--fusermount" ]; then
		out=$(fusermount3 -u "$mnt" 2>&1) || rc=$?
	else
		out=$("$KEEPFS" umount "$mnt" 2>&1 </dev/null) || rc=$?
	fi
	if [ "$rc" -ne 0 ]; then
		fail "unmount '$mnt'" "exit status $rc: $out" "$(tail -n 20 "${_kfs_log[$mnt]:-/dev/null}")"
		return 1
	fi
	_kfs_reap "$mnt"
	st=$_kfs_reaped
	problems=$(_kfs_log_problems "$mnt")
	if is_mounted "$mnt"; then
		fail "unmount '$mnt'" "still mounted after a successful umount"
		return 1
	elif [ "$st" != 0 ] && [ "$st" != gone ]; then
		fail "unmount '$mnt'" "daemon exit status: $st, want 0" "$(tail -n 20 "${_kfs_log[$mnt]:-/dev/null}")"
		return 1
	elif [ -n "$problems" ]; then
		fail "unmount '$mnt'" "daemon log has reports:" "$problems"
		return 1
	fi
	pass "unmount '$mnt': clean exit"
	return 0
}

# kfs_remount [OPTS]: unmount and mount $KFS_STORE at $KFS_MNT again
kfs_remount() {
	kfs_umount "$KFS_MNT" || return 1
	if kfs_mount "$KFS_STORE" "$KFS_MNT" "${1:-}"; then
		pass "remount '$KFS_MNT'"
	else
		fail "remount '$KFS_MNT'"
		return 1
	fi
}

# kfs_kill9 [MNT [PID...]]: SIGKILL the daemon, wait for it to die, then
# SIGKILL and reap the PIDs (the workload: once the mount is gone it would
# write into the bare mount point directory), then unmount the dead mount.
kfs_kill9() {
	local mnt=${1:-$KFS_MNT} pid i p
	pid=${_kfs_pid[$mnt]:-}
	if [ -z "$pid" ]; then
		diag "kfs_kill9: no daemon known for '$mnt'"
		return 1
	fi
	kill -9 "$pid" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		_kfs_alive "$pid" || break
		sleep 0.05
	done
	if [ "${_kfs_child[$mnt]:-0}" -eq 1 ]; then
		wait "$pid" 2>/dev/null
	fi
	unset "_kfs_pid[$mnt]"
	shift
	for p in "$@"; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	_kfs_unmount_any "$mnt"
	! is_mounted "$mnt"
}

# unmount whatever is at MNT: FUSE with fusermount3, anything else with
# umount, lazily when the plain way fails
_kfs_unmount_any() {
	local mnt=$1 i type
	for ((i = 0; i < 5; i++)); do
		is_mounted "$mnt" || return 0
		type=$(mount_type "$mnt")
		if [[ "$type" == fuse* ]]; then
			fusermount3 -u "$mnt" 2>/dev/null && continue
		else
			umount "$mnt" 2>/dev/null && continue
		fi
		sleep 0.2
	done
	if is_mounted "$mnt"; then
		fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	! is_mounted "$mnt"
}

# kfs_setup [OPTS]: fresh store and mount; sets KFS_TMP, KFS_STORE, KFS_MNT
# and KFS_PID.  Bails out when the mount fails.
kfs_setup() {
	kfs_tmpdir
	KFS_STORE=$KFS_TMP/store
	KFS_MNT=$KFS_TMP/mnt
	kfs_init "$KFS_STORE"
	kfs_mount "$KFS_STORE" "$KFS_MNT" "${1:-}" || bail_out "cannot mount a fresh store"
}

# kfs_fsck STORE [DESC]: keepfs fsck --data must exit 0
kfs_fsck() {
	run_is 0 "${2:-fsck '$1' clean}" "$KEEPFS" fsck "$1" --data
}

# kfs_listing DIR OUT: the full listing of DIR (fuse/listing.py) into OUT
kfs_listing() {
	python3 "$KFS_TESTS/fuse/listing.py" "$1" >"$2" 2>&1
}

# same_listing A B DESC
same_listing() {
	local d
	d=$(diff "$1" "$2" | head -n 40)
	if [ -z "$d" ] && [ -s "$1" ]; then
		pass "$3"
	else
		fail "$3" "${d:-empty listing}"
	fi
}

# --- cleanup ---------------------------------------------------------------

_kfs_cleanup() {
	local rc=$? i mnt pid busy=0
	trap - EXIT INT TERM HUP
	if [ "$_kfs_done" -eq 0 ]; then
		printf '# test ended early (status %d)\n' "$rc"
		printf '1..%d\n' "$_kfs_n"
		[ "$rc" -eq 0 ] && rc=1
	fi
	for ((i = ${#_kfs_mnts[@]} - 1; i >= 0; i--)); do
		mnt=${_kfs_mnts[$i]}
		if is_mounted "$mnt"; then
			printf '# cleanup: unmounting %s\n' "$mnt"
			_kfs_unmount_any "$mnt"
		fi
	done
	for mnt in "${!_kfs_pid[@]}"; do
		pid=${_kfs_pid[$mnt]}
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null
			for ((i = 0; i < 40; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.05
			done
			kill -9 "$pid" 2>/dev/null
		fi
	done
	for i in "${_kfs_loops[@]}"; do
		losetup -d "$i" 2>/dev/null
	done
	for i in "${_kfs_files[@]}"; do
		rm -f "$i"
	done
	for ((i = ${#_kfs_undo[@]} - 1; i >= 0; i--)); do
		eval "${_kfs_undo[$i]}" >/dev/null 2>&1
	done
	if [ -n "$KFS_TMP" ] && [ -d "$KFS_TMP" ]; then
		while read -r _ mnt _; do
			case "$mnt" in "$KFS_TMP"/*) busy=1 ;; esac
		done </proc/mounts
		if [ "$busy" -eq 0 ]; then
			if [ "${KFS_KEEP:-0}" -eq 1 ]; then
				printf '# kept %s\n' "$KFS_TMP"
			else
				rm -rf "$KFS_TMP"
			fi
		else
			printf '# cleanup: something is still mounted under %s; not removing it\n' "$KFS_TMP"
		fi
	fi
	exit "$rc"
}

trap _kfs_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

_kfs_require_fuse
kfs_tmpdir
