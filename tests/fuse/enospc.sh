#!/bin/bash
# enospc.sh - the store's filesystem fills up: the writer gets ENOSPC, the
# mount stays up, writes work again once space is freed, and the store is
# consistent and mounts again with everything that was written completely.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"

sha() { sha256sum "$1" | cut -d' ' -f1; }

SMALL=$KFS_TMP/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=64m,mode=0700 tmpfs "$SMALL" || bail_out "cannot mount a 64 MiB tmpfs"
kfs_track_mount "$SMALL"
KFS_STORE=$SMALL/store
KFS_MNT=$KFS_TMP/mnt
kfs_init "$KFS_STORE"
# space to give back later
head -c 12000000 /dev/urandom >"$SMALL/ballast"
kfs_mount "$KFS_STORE" "$KFS_MNT" || bail_out "cannot mount"
M=$KFS_MNT
pid=$KFS_PID

# incompressible 4 MB files, each fsync'd, until one fails
full=0 done_files=0 msg=
for ((i = 1; i <= 40; i++)); do
	head -c 4000000 /dev/urandom >"$KFS_TMP/ref$i"
	if ! msg=$(dd if="$KFS_TMP/ref$i" of="$M/f$i" bs=1M conv=fsync 2>&1); then
		full=$i
		break
	fi
	done_files=$i
done
check "a writer ran out of space (file $full)" test "$full" -gt 0
like "$msg" "No space left on device" "the writer saw ENOSPC"
check "files written before that ($done_files)" test "$done_files" -ge 3
check "the daemon is still running" kill -0 "$pid"
check "the mount still answers" stat "$M/f1"
is "$(sha "$M/f1")" "$(sha "$KFS_TMP/ref1")" "a completed file reads back"
# more failures do not hurt
dd if=/dev/urandom of="$M/more" bs=1M count=8 conv=fsync status=none 2>/dev/null
rm -f "$M/more" "$M/f$full"
check "still mounted after more ENOSPC" is_mounted "$M" fuse.keepfs

# free space on the store's filesystem: writes work again
rm -f "$SMALL/ballast"
head -c 1000000 /dev/urandom >"$KFS_TMP/after"
run_ok "a write + fsync after space was freed" dd if="$KFS_TMP/after" of="$M/after" bs=64k conv=fsync
is "$(sha "$M/after" 2>&1)" "$(sha "$KFS_TMP/after")" "it reads back"
run_ok "mkdir works again" mkdir "$M/dir-after"
kfs_umount "$M"
kfs_fsck "$KFS_STORE"
kfs_mount "$KFS_STORE" "$M"
ok $? "the store mounts again"
bad=0
for ((i = 1; i <= done_files; i++)); do
	[ "$(sha "$M/f$i" 2>&1)" == "$(sha "$KFS_TMP/ref$i")" ] || bad=$((bad + 1))
done
is "$bad" 0 "all $done_files completed files intact"
is "$(sha "$M/after" 2>&1)" "$(sha "$KFS_TMP/after")" "the file written after freeing space is intact"
check "the directory made after freeing space is there" test -d "$M/dir-after"
kfs_umount "$M"
done_testing
