#!/bin/bash
# remount.sh - content, modes, owners, times (ns), xattrs, hard links,
# symlinks, special files and holes are identical after umount + mount,
# by `keepfs umount` and by fusermount3 -u.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"

kfs_setup
M=$KFS_MNT

. "$KFS_TESTS/fuse/tree.sh"

( build_tree "$M" )
ok $? "build a tree of every kind of object"
kfs_listing "$M" "$KFS_TMP/l0"
ok $? "list it"
is "$(wc -l <"$KFS_TMP/l0")" 27 "listing has every object"

kfs_remount
kfs_listing "$M" "$KFS_TMP/l1"
same_listing "$KFS_TMP/l0" "$KFS_TMP/l1" "identical after keepfs umount + mount"

# a change after the remount, then fusermount3 -u
printf 'more\n' >>"$M/a/small"
mv "$M/a/h2" "$M/a/b/c/h2-moved"
setfattr -x user.plain "$M/a/small"
rm "$M/a/b/c/same2"
touch -d '@1700000000.25' "$M/a/small"
kfs_listing "$M" "$KFS_TMP/l2"
kfs_umount "$M" --fusermount
kfs_mount "$KFS_STORE" "$M"
ok $? "mount again"
kfs_listing "$M" "$KFS_TMP/l3"
same_listing "$KFS_TMP/l2" "$KFS_TMP/l3" "identical after fusermount3 -u + mount"
is "$(cat "$M/a/small")" "$(printf 'small\nmore')" "appended content"
is "$(stat -c %h "$M/a/h1")" 3 "hard link count after a move"
like "$(getfattr -d -m - --absolute-names "$M/a/small" 2>&1)" 'user.bin=0sAP8A/xA=' "binary xattr value"
unlike "$(getfattr -d -m - --absolute-names "$M/a/small" 2>&1)" 'user.plain' "removed xattr stays removed"
is "$(stat -c %y "$M/a/small")" "$(date -d @1700000000.25 '+%Y-%m-%d %H:%M:%S.250000000 %z')" "mtime to the ns"

kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
