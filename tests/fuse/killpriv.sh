#!/bin/bash
# killpriv.sh - set-user-ID and set-group-ID bits are cleared as the Linux
# VFS clears them: a write, a truncation or an open with O_TRUNC by a
# process without CAP_FSETID clears S_ISUID, and S_ISGID when the group may
# execute; a chown clears them for anyone; root's own writes keep them.
# Any write removes a file capability (security.capability).
# The modes survive a remount as they were left.  Writers run as nobody
# (setpriv), on a mount with allow_other.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd setpriv setcap getcap
[ "$(id -u)" -eq 0 ] || skip_all "needs root: it writes as another user"

kfs_tmpdir
chmod 755 "$KFS_TMP"
kfs_setup allow_other
M=$KFS_MNT
chmod 777 "$M"

nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
mode() { stat -c %a "$1"; }

# fresh NAME MODE: a root-owned file with MODE, 4 KiB of data
fresh() {
	head -c 4096 /dev/zero >"$M/$1"
	chmod "$2" "$M/$1"
}

fresh w-suid 4666
run_ok "nobody appends to a set-user-ID file" nobody sh -c "printf x >>'$M/w-suid'"
is "$(mode "$M/w-suid")" 666 "the write cleared S_ISUID"

fresh w-both 6777
run_ok "nobody writes into a 6777 file" nobody dd if=/dev/zero of="$M/w-both" bs=512 count=1 conv=notrunc status=none
is "$(mode "$M/w-both")" 777 "the write cleared S_ISUID and S_ISGID (group may execute)"

fresh w-sgid 2666
run_ok "nobody writes into a 2666 file" nobody dd if=/dev/zero of="$M/w-sgid" bs=512 count=1 conv=notrunc status=none
is "$(mode "$M/w-sgid")" 2666 "S_ISGID without group execute stays"

fresh t-suid 4777
run_ok "nobody truncates a set-user-ID file" nobody truncate -s 100 "$M/t-suid"
is "$(mode "$M/t-suid")" 777 "the truncation cleared S_ISUID"
is "$(stat -c %s "$M/t-suid")" 100 "and truncated"

fresh o-suid 6777
run_ok "nobody opens a 6777 file with O_TRUNC" nobody sh -c ": >'$M/o-suid'"
is "$(mode "$M/o-suid")" 777 "the O_TRUNC open cleared both bits"
is "$(stat -c %s "$M/o-suid")" 0 "and truncated"

fresh r-suid 6777
run_ok "root writes into a 6777 file" dd if=/dev/zero of="$M/r-suid" bs=512 count=1 conv=notrunc status=none
is "$(mode "$M/r-suid")" 6777 "root (CAP_FSETID) keeps both bits"
: >"$M/r-suid"
is "$(mode "$M/r-suid")" 6777 "also with O_TRUNC"

fresh c-suid 6755
chown 65534:65534 "$M/c-suid"
is "$(mode "$M/c-suid")" 755 "chown, even by root, clears both bits"
fresh c-sgid 2745
chown 65534 "$M/c-sgid"
is "$(mode "$M/c-sgid")" 2745 "chown keeps S_ISGID without group execute"

mkdir "$M/d-sgid"
chmod 2777 "$M/d-sgid"
chown 65534 "$M/d-sgid"
is "$(mode "$M/d-sgid")" 2777 "chown of a directory keeps its S_ISGID"

# file capabilities go at any write, root's too (the kernel removes the
# attribute; the daemon is asked for it once per inode)
fresh cap-n 777
setcap cap_net_raw+ep "$M/cap-n"
is "$(getcap "$M/cap-n")" "$M/cap-n cap_net_raw=ep" "a file with a capability"
run_ok "nobody writes into it" nobody sh -c "printf x >>'$M/cap-n'"
is "$(getcap "$M/cap-n")" "" "the write removed the capability"
fresh cap-r 755
setcap cap_net_raw+ep "$M/cap-r"
printf x >>"$M/cap-r"
is "$(getcap "$M/cap-r")" "" "root's write removes it too"
printf x >>"$M/cap-r"
setcap cap_net_raw+ep "$M/cap-r"
printf x >>"$M/cap-r"
is "$(getcap "$M/cap-r")" "" "also when set again on a file written before"

# the bits nobody cleared are gone from the store too, not only from the
# kernel's cache
before=$(cd "$M" && stat -c '%n %a %s' w-suid w-both w-sgid t-suid o-suid r-suid c-suid c-sgid d-sgid; getcap cap-n cap-r)
kfs_remount allow_other
after=$(cd "$M" && stat -c '%n %a %s' w-suid w-both w-sgid t-suid o-suid r-suid c-suid c-sgid d-sgid; getcap cap-n cap-r)
is "$after" "$before" "the same modes and sizes after a remount"

kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
