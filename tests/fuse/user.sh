#!/bin/bash
# user.sh - an ordinary user mounts a store they own on a directory they
# own (through fusermount3), uses it and unmounts it; without allow_other
# even root cannot read the mount, with allow_root root can.  The test makes
# a user for the purpose and deletes it at the end; where /dev/fuse is
# root's only (some containers), it is opened to all for the test, as udev
# sets it on an ordinary system, and set back at the end.  Needs root.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd runuser useradd userdel fusermount3
[ "$(id -u)" -eq 0 ] || skip_all "needs root: it makes a user"

kfs_tmpdir
T=$KFS_TMP
chmod 755 "$T"
U=kfs-test-$$
useradd -M -s /usr/sbin/nologin "$U" || bail_out "cannot make the user '$U'"
kfs_undo "userdel -f '$U'"
mode=$(stat -c %a /dev/fuse)
if [ "$((8#$mode & 6))" -ne 6 ]; then
	chmod o+rw /dev/fuse
	kfs_undo "chmod $mode /dev/fuse"
fi
# the user runs a copy of the binary, in a place they can reach
cp "$KEEPFS" "$T/keepfs"
chmod 755 "$T/keepfs"
H=$T/home
mkdir "$H" && chown "$U" "$H"
as_user() { runuser -u "$U" -- "$@"; }

run_ok "the user makes a store" as_user "$T/keepfs" init "$H/store"
run_ok "and a mount point" as_user mkdir "$H/mnt"
run_ok "the user mounts it" as_user "$T/keepfs" mount "$H/store" "$H/mnt"
kfs_track_mount "$H/mnt"
check "it is mounted" is_mounted "$H/mnt" fuse.keepfs
run_ok "the user writes" as_user sh -c "echo mine >'$H/mnt/note'"
run_ok "and reads" as_user cat "$H/mnt/note"
is "$KFS_OUT" "mine" "what they wrote"
run_is 1 "root cannot read the mount (no allow_other)" cat "$H/mnt/note"
like "$KFS_ERR" "Permission denied" "the kernel refuses"
run_ok "the user takes a snapshot" as_user "$T/keepfs" snapshot "$H/mnt" first
run_ok "the user unmounts" as_user "$T/keepfs" umount "$H/mnt"
check_not "it is unmounted" is_mounted "$H/mnt"

if grep -qx '[[:space:]]*user_allow_other[[:space:]]*' /etc/fuse.conf 2>/dev/null; then
	run_ok "mounted again with allow_root" as_user "$T/keepfs" mount -o allow_root "$H/store" "$H/mnt"
	run_ok "root reads with allow_root" cat "$H/mnt/.snapshots/first/note"
	is "$KFS_OUT" "mine" "the snapshot's file"
	run_ok "the user unmounts" as_user "$T/keepfs" umount "$H/mnt"
else
	run_is 1 "allow_root for a user, without user_allow_other in /etc/fuse.conf" \
		as_user "$T/keepfs" mount -o allow_root "$H/store" "$H/mnt"
	like "$KFS_ERR" "mount option 'allow_root' is for root only here: .*'user_allow_other'" \
		"says what is missing"
fi
check_not "nothing is left mounted" is_mounted "$H/mnt"
run_ok "fsck as the user" as_user "$T/keepfs" fsck "$H/store"
done_testing
