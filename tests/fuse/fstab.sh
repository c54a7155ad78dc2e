#!/bin/bash
# fstab.sh - keepfs through mount(8): "meson install" into a temporary
# destination installs keepfs and the mount.keepfs helper; with the helper
# where mount(8) looks for it (removed again at the end), "mount -t
# keepfs", "mount -t fuse.keepfs" (through mount.fuse3) and "mount -a" over
# an fstab file mount a store; fstab-only options are accepted, unknown
# ones refused with nothing mounted; "ro" gives a read-only tree; after
# "umount", once the daemon has exited, another process reads everything
# from the store.  Needs root.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd mount umount meson
[ "$(id -u)" -eq 0 ] || skip_all "needs root: it puts mount.keepfs where mount(8) finds it"
for f in /sbin/mount.keepfs /usr/bin/keepfs; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		skip_all "'$f' exists already (keepfs is installed): not replacing it"
	fi
done

kfs_tmpdir
T=$KFS_TMP
BUILD=$(cd "$(dirname "$KEEPFS")/.." && pwd)
run_ok "meson install into a temporary destination" \
	meson install -C "$BUILD" --destdir "$T/dest" --no-rebuild --quiet
PREFIX=$(meson introspect "$BUILD" --buildoptions |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
BIN=$T/dest$PREFIX/bin/keepfs
check "keepfs is installed into bindir" test -x "$BIN"
is "$(readlink "$T/dest$PREFIX/sbin/mount.keepfs")" "$PREFIX/bin/keepfs" \
	"mount.keepfs is a link to it in sbindir"
# where mount(8) and mount.fuse3 look (their PATH is /sbin:/bin:/usr/...)
ln -s "$BIN" /sbin/mount.keepfs && kfs_track_file /sbin/mount.keepfs
ln -s "$BIN" /usr/bin/keepfs && kfs_track_file /usr/bin/keepfs

S=$T/store
M=$T/mnt
mkdir "$M"
kfs_init "$S"

# wait_gone PID: up to 10 s for a process to exit
wait_gone() {
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# --- mount -t keepfs ---------------------------------------------------------------
run_ok "mount -t keepfs with keepfs, FUSE and fstab-only options" \
	mount -t keepfs -o journal=2h,commit_interval=2,default_permissions,nofail,_netdev,noauto,x-systemd.device-timeout=5,comment=state "$S" "$M"
kfs_track_mount "$M"
check "it is mounted" is_mounted "$M" fuse.keepfs
is "$(mount_source "$M")" "$S" "the source is the store"
pid=$("$BIN" stats --json "$M" | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon_pid"])')
for ((i = 0; i < 50; i++)); do
	printf 'line %d\n' "$i" >>"$M/state.jsonl"
done
head -c 3000000 /dev/urandom >"$T/blob"
cp "$T/blob" "$M/blob"
run_ok "umount" umount "$M"
check_not "it is unmounted" is_mounted "$M"
check "the daemon exits" wait_gone "$pid"
run_ok "another process reads the store at once" "$BIN" cat "$S" @2100-01-01T00:00:00Z state.jsonl
is "$(wc -l <<<"$KFS_OUT")" "50" "every line written before umount is there"
"$BIN" cat "$S" @2100-01-01T00:00:00Z blob >"$T/blob.back" 2>&1
check "every byte of the file too" cmp "$T/blob" "$T/blob.back"

# --- refused: nothing mounted ---------------------------------------------------------
run_is 32 "mount -t keepfs with an unknown option" mount -t keepfs -o bogus "$S" "$M"
like "$KFS_ERR" "unknown mount option 'bogus'" "says which"
check_not "nothing is mounted" is_mounted "$M"
run_is 32 "a bad value" mount -t keepfs -o journal=soon "$S" "$M"
like "$KFS_ERR" "bad value 'soon' for journal" "says which"
check_not "nothing is mounted" is_mounted "$M"

# --- ro ------------------------------------------------------------------------------
run_ok "mount -t keepfs -o ro" mount -t keepfs -o ro "$S" "$M"
check "the files are there" test -s "$M/state.jsonl"
run_is 1 "a write is refused" bash -c "echo x >>'$M/state.jsonl'"
like "$KFS_ERR" "Read-only file system" "with EROFS"
run_ok "umount" umount "$M"

# --- fuse.keepfs through mount.fuse3 ---------------------------------------------------
if command -v mount.fuse3 >/dev/null 2>&1 || [ -x /sbin/mount.fuse3 ]; then
	run_ok "mount -t fuse.keepfs" mount -t fuse.keepfs -o journal=1h "$S" "$M"
	check "it is mounted" is_mounted "$M" fuse.keepfs
	is "$(cat "$M/state.jsonl" | wc -l)" "50" "and reads the store"
	run_ok "umount" umount "$M"
else
	skip "mount -t fuse.keepfs" "mount.fuse3 is not installed"
fi

# --- mount -a over an fstab file ---------------------------------------------------------
printf '%s  %s  keepfs  nofail,journal=30m  0  0\n' "$S" "$M" >"$T/fstab"
run_ok "mount -a --fstab" mount -a --fstab "$T/fstab"
check "the fstab line is mounted" is_mounted "$M" fuse.keepfs
run_ok "mount -a again changes nothing" mount -a --fstab "$T/fstab"
is "$(grep -c " $M " /proc/mounts)" "1" "mounted once"
run_ok "keepfs umount of an fstab mount" "$BIN" umount "$M"
check_not "it is unmounted" is_mounted "$M"
kfs_fsck "$S"
done_testing
