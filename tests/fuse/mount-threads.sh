#!/bin/bash
# mount-threads.sh - the threads= mount option.  With one request thread, the
# requests whose answer waits on the kernel (SEEK_DATA on a file with dirty
# pages, mkdir in .snapshots while files have dirty pages) still finish:
# the kernel's write-back they wait for is served by the request thread,
# so they must not be the ones holding it.  Every step runs under a time
# limit; past it the mount's connection is aborted, so a deadlock fails
# the test instead of hanging it.  Also: the
# daemon starts no more request threads than threads= allows.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"

# abort_mount MNT: abort the mount's FUSE connection, which frees every
# request waiting in it (a deadlocked daemon cannot be killed otherwise:
# its thread sleeps in the kernel on write-back it should have served).
abort_mount() {
	local dev here=
	dev=$(awk -v m="$1" '$5 == m { print $3 }' /proc/self/mountinfo)
	[ -n "$dev" ] || return 0
	if [ ! -d /sys/fs/fuse/connections/"${dev#*:}" ]; then
		mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null && here=1
	fi
	echo 1 >/sys/fs/fuse/connections/"${dev#*:}"/abort
	[ -n "$here" ] && umount /sys/fs/fuse/connections
	return 0
}

# wait_all SECS PID...: 0 once every PID has ended (with status 0 each),
# 1 if one failed; after SECS the mount is aborted and the test stops.
wait_all() {
	local secs=$1 p st=0 t=0
	shift
	while [ $t -lt $((secs * 10)) ]; do
		local alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.1
		t=$((t + 1))
	done
	if [ $t -ge $((secs * 10)) ]; then
		fail "finished within $secs s" "still running: the daemon is stuck"
		abort_mount "$M"
		for p in "$@"; do wait "$p"; done
		bail_out "the mount deadlocked"
	fi
	for p in "$@"; do wait "$p" || st=1; done
	return $st
}

kfs_setup threads=1
M=$KFS_MNT
PY=$KFS_TMP/dirty.py
cat >"$PY" <<'EOF'
import os, sys, subprocess

def seek(path):
    """4 KiB at 1 MiB of a new sparse file, no fsync, fd open: SEEK_DATA
    from 0 and SEEK_HOLE from 1 MiB."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    os.pwrite(fd, b"d" * 4096, 1 << 20)
    print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 1 << 20, os.SEEK_HOLE))
    os.close(fd)

def snap(path, snapdir, name, size):
    """Writes SIZE bytes with the fd open and no fsync, then makes a
    snapshot with mkdir while the pages are dirty; prints the size the
    snapshot holds."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"s" * size)
    os.mkdir(os.path.join(snapdir, name))
    os.close(fd)
    print(os.stat(os.path.join(snapdir, name, os.path.basename(path))).st_size)

if sys.argv[1] == "seek":
    seek(sys.argv[2])
else:
    snap(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
EOF

python3 "$PY" seek "$M/sparse" >"$KFS_TMP/seek.out" 2>&1 &
wait_all 60 $!
ok $? "SEEK_DATA/SEEK_HOLE over dirty pages with one thread"
is "$(cat "$KFS_TMP/seek.out")" "1048576 1052672" "data at 1 MiB, the hole at its end"

python3 "$PY" snap "$M/big" "$M/.snapshots" one 50000000 >"$KFS_TMP/snap.out" 2>&1 &
wait_all 60 $!
ok $? "mkdir .snapshots/one over dirty pages with one thread"
is "$(cat "$KFS_TMP/snap.out")" "50000000" "the snapshot holds every byte written before it"

# several at once: two snapshots, two seeks and a writer, one thread
pids=()
for i in 1 2; do
	python3 "$PY" snap "$M/w$i" "$M/.snapshots" "par$i" 20000000 \
		>"$KFS_TMP/snap$i.out" 2>&1 &
	pids+=($!)
	python3 "$PY" seek "$M/s$i" >"$KFS_TMP/seek$i.out" 2>&1 &
	pids+=($!)
done
dd if=/dev/zero of="$M/stream" bs=1M count=200 status=none &
pids+=($!)
wait_all 120 "${pids[@]}"
ok $? "two snapshots, two seeks and a writer at once all finish"
for i in 1 2; do
	is "$(cat "$KFS_TMP/snap$i.out")" 20000000 "snapshot par$i holds its file"
	is "$(cat "$KFS_TMP/seek$i.out")" "1048576 1052672" "seek $i answered right"
done
is "$(stat -c %s "$M/stream")" 209715200 "the writer's file is whole"

# Request threads: under the same parallel load, threads=3 ends with two
# threads more than threads=1.
tasks_after_load() {
	local pid=$1 dir=$2
	mkdir -p "$dir"
	for i in 1 2 3 4 5 6 7 8; do
		python3 -c '
import os, sys
d = sys.argv[1]
for i in range(3000):
    try:
        os.stat(os.path.join(d, "nope%d" % i))
    except FileNotFoundError:
        pass
' "$dir" &
	done
	wait
	ls "/proc/$pid/task" | wc -l
}
one=$(tasks_after_load "$KFS_PID" "$M/load1")
kfs_remount threads=3
three=$(tasks_after_load "$KFS_PID" "$M/load3")
is "$((three - one))" 2 "threads=3 runs two request threads more than threads=1 ($one, $three tasks)"

kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
