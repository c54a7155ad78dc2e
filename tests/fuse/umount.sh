#!/bin/bash
# umount.sh - the daemonizing mount and `keepfs umount`: when umount
# returns the daemon is gone and its final commit is on disk, so another
# process can open the store at once and find everything written.  Also
# SIGTERM to the daemon commits and unmounts, and stats works on a mount.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"

sha() { sha256sum "$1" | cut -d' ' -f1; }

STORE=$KFS_TMP/store
M=$KFS_TMP/mnt
kfs_init "$STORE"
KFS_STORE=$STORE
KFS_MNT=$M

kfs_mount --daemon "$STORE" "$M"
ok $? "keepfs mount (daemonizing) returns 0 with the mount ready"
is "$(mount_source "$M")" "$STORE" "/proc/mounts names the store"
is "$(mount_type "$M")" "fuse.keepfs" "/proc/mounts type is fuse.keepfs"
pid=$KFS_PID
check "a daemon holds the store's lock (pid $pid)" test -n "$pid"

run_ok "keepfs stats on the mount point" "$KEEPFS" stats "$M"
run_ok "keepfs stats --json on the mount point" "$KEEPFS" stats "$M" --json
printf '%s' "$KFS_OUT" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null
ok $? "stats --json prints JSON"

# written without any fsync, then unmounted at once
head -c 20000000 /dev/urandom >"$KFS_TMP/ref"
cp "$KFS_TMP/ref" "$M/big"
mkdir "$M/many"
for i in $(seq 1 500); do printf 'file %d\n' "$i" >"$M/many/f$i"; done
ln -s big "$M/link"
run_ok "keepfs umount" "$KEEPFS" umount "$M"
check_not "the daemon has exited when umount returns" _kfs_alive "$pid"
check_not "nothing mounted any more" is_mounted "$M"
run_ok "keepfs stats on the store right after" "$KEEPFS" stats "$STORE"
run_ok "keepfs fsck --data right after" "$KEEPFS" fsck "$STORE" --data

kfs_mount --daemon "$STORE" "$M"
ok $? "mount again"
is "$(sha "$M/big")" "$(sha "$KFS_TMP/ref")" "20 MB file intact"
is "$(ls "$M/many" | wc -l)" 500 "500 small files there"
is "$(cat "$M/many/f321")" "file 321" "small file content"
is "$(readlink "$M/link")" big "symlink there"

# umount naming the store instead of the mount point
printf 'via store\n' >"$M/by-store"
pid=$KFS_PID
run_ok "keepfs umount STORE" "$KEEPFS" umount "$STORE"
check_not "the daemon has exited" _kfs_alive "$pid"
check_not "nothing mounted any more" is_mounted "$M"

# SIGTERM: commit and unmount
kfs_mount --daemon "$STORE" "$M"
ok $? "mount again"
is "$(cat "$M/by-store")" "via store" "written before umount STORE"
printf 'before sigterm\n' >"$M/term"
pid=$KFS_PID
kill -TERM "$pid"
for ((i = 0; i < 200; i++)); do _kfs_alive "$pid" || break; sleep 0.05; done
check_not "SIGTERM: the daemon exits" _kfs_alive "$pid"
check_not "SIGTERM: the mount is gone" is_mounted "$M"
kfs_fsck "$STORE" "fsck clean after SIGTERM"

# foreground mount: fusermount3 -u ends the daemon with status 0
kfs_mount "$STORE" "$M"
ok $? "foreground mount"
is "$(cat "$M/term")" "before sigterm" "written before SIGTERM"
kfs_umount "$M" --fusermount
run_is 1 "keepfs umount of a path that is not mounted fails" "$KEEPFS" umount "$M"
like "$KFS_ERR" "^keepfs: .*'$M'" "the message names the path"
kfs_fsck "$STORE"
done_testing
