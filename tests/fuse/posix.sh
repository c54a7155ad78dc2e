#!/bin/bash
# posix.sh - the POSIX suite (tests/posix/posix.c) on a fresh keepfs mount,
# then a remount that must give back the same tree, a clean unmount and fsck.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"

POSIX=${POSIX:-${1:-}}
[ -n "$POSIX" ] && [ -x "$POSIX" ] || bail_out "POSIX must name the posix test program"

kfs_setup
kfs_tap_include "$POSIX" "$KFS_MNT" "$KFS_STORE"
kfs_listing "$KFS_MNT" "$KFS_TMP/before"
ok $? "list the tree the suite left"
kfs_remount
kfs_listing "$KFS_MNT" "$KFS_TMP/after"
same_listing "$KFS_TMP/before" "$KFS_TMP/after" "same tree after a remount"
kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
