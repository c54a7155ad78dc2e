#!/bin/bash
# cli.sh - bad input to the keepfs command: each case exits 1 (2 for a
# usage error) with a "keepfs: ..." message on stderr naming the subject,
# leaves nothing mounted and no daemon behind, and leaves the store exactly
# as it was (same logical content, fsck clean).
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd sqlite3

T=$KFS_TMP
STORE=$T/store
M=$T/mnt
mkdir -p "$M"
kfs_init "$STORE"

dump() { sqlite3 "$STORE/store.db" .dump 2>&1 | md5sum; }
REF=$(dump)

# after_failure DESC: nothing mounted at $M, no daemon, store unchanged
after_failure() {
	check_not "$1: nothing mounted" is_mounted "$M"
	check_not "$1: no daemon holds the store" kfs_daemon_pid "$STORE"
	is "$(dump)" "$REF" "$1: store content unchanged"
}

# fails STATUS DESC SUBJECT CMD...: exit status, a one-line-or-more
# "keepfs: " message naming SUBJECT (a regex), nothing on stdout
fails() {
	local st=$1 desc=$2 subj=$3
	shift 3
	run_is "$st" "$desc: exit status $st" "$@"
	like "$KFS_ERR" "^keepfs: " "$desc: message starts with 'keepfs: '"
	[ -n "$subj" ] && like "$KFS_ERR" "$subj" "$desc: message names the subject"
	is "$KFS_OUT" "" "$desc: nothing on stdout"
}

# --- the command itself ----------------------------------------------------
run_ok "keepfs --version" "$KEEPFS" --version
like "$KFS_OUT" '^keepfs [0-9]+\.[0-9]+\.[0-9]+' "--version prints 'keepfs X.Y.Z'"
run_ok "keepfs --help" "$KEEPFS" --help
for c in init mount umount stats fsck; do
	like "$KFS_OUT" "$c" "--help lists '$c'"
done
for c in init mount umount stats fsck; do
	run_ok "keepfs $c --help" "$KEEPFS" "$c" --help
	like "$KFS_OUT" "usage: keepfs $c" "keepfs $c --help shows its usage"
done
run_is 2 "keepfs with no command: usage error" "$KEEPFS"
fails 2 "unknown command" "'frobnicate'" "$KEEPFS" frobnicate
fails 2 "mount with no arguments" "" "$KEEPFS" mount
fails 2 "mount with one argument" "" "$KEEPFS" mount "$STORE"
fails 2 "mount with three arguments" "" "$KEEPFS" mount "$STORE" "$M" "$T/third"
after_failure "mount usage errors"
fails 2 "unknown command-line option" "--bogus" "$KEEPFS" mount "$STORE" "$M" --bogus
after_failure "unknown command-line option"
fails 2 "init with no argument" "" "$KEEPFS" init
fails 2 "fsck with an unknown option" "" "$KEEPFS" fsck "$STORE" --frob

# --- stores --------------------------------------------------------------------
fails 1 "mount of a missing store" "'$T/nostore'" "$KEEPFS" mount "$T/nostore" "$M"
check_not "missing store: nothing created" test -e "$T/nostore"
after_failure "missing store"
mkdir "$T/notstore"
printf 'x' >"$T/notstore/file"
fails 1 "mount of a directory that is not a store" "'$T/notstore'" "$KEEPFS" mount "$T/notstore" "$M"
is "$(ls "$T/notstore")" "file" "not-a-store directory left alone"
after_failure "not a store"
mkdir "$T/emptydir"
fails 1 "mount of an empty directory" "'$T/emptydir'" "$KEEPFS" mount "$T/emptydir" "$M"
is "$(ls -A "$T/emptydir")" "" "empty directory left empty"
fails 1 "mount of a regular file as the store" "'$T/notstore/file'" "$KEEPFS" mount "$T/notstore/file" "$M"
fails 1 "fsck of a missing store" "'$T/nostore'" "$KEEPFS" fsck "$T/nostore"
fails 1 "stats of a missing store" "'$T/nostore'" "$KEEPFS" stats "$T/nostore"
fails 1 "fsck of a directory that is not a store" "'$T/notstore'" "$KEEPFS" fsck "$T/notstore"
fails 1 "init over an existing store" "'$STORE'" "$KEEPFS" init "$STORE"
is "$(dump)" "$REF" "init over a store changed nothing"
fails 1 "init in a directory with other files" "'$T/notstore'" "$KEEPFS" init "$T/notstore"
is "$(ls "$T/notstore")" "file" "init left the other files alone"

# a store of a newer format
cp -a "$STORE" "$T/newer"
sqlite3 "$T/newer/store.db" "UPDATE meta SET value = 99 WHERE key = 'format_version'"
is "$(sqlite3 "$T/newer/store.db" "SELECT value FROM meta WHERE key = 'format_version'")" 99 "format version set to 99"
NREF=$(sqlite3 "$T/newer/store.db" .dump | md5sum)
fails 1 "mount of a newer-format store" "'$T/newer'" "$KEEPFS" mount "$T/newer" "$M"
like "$KFS_ERR" "99|newer|version" "newer format: the message says why"
check_not "newer format: nothing mounted" is_mounted "$M"
fails 1 "fsck of a newer-format store" "'$T/newer'" "$KEEPFS" fsck "$T/newer"
fails 1 "stats of a newer-format store" "'$T/newer'" "$KEEPFS" stats "$T/newer"
is "$(sqlite3 "$T/newer/store.db" .dump | md5sum)" "$NREF" "newer-format store unchanged"

# --- mount points ------------------------------------------------------------
fails 1 "mount on a missing mount point" "'$T/nomnt'" "$KEEPFS" mount "$STORE" "$T/nomnt"
check_not "missing mount point: not created" test -e "$T/nomnt"
after_failure "missing mount point"
printf 'x' >"$T/afile"
fails 1 "mount on a regular file" "'$T/afile'" "$KEEPFS" mount "$STORE" "$T/afile"
is "$(cat "$T/afile")" "x" "the file is untouched"
after_failure "mount on a file"

# a mount point that already has something mounted on it
mkdir -p "$T/busy"
mount -t tmpfs -o size=1m tmpfs "$T/busy"
kfs_track_mount "$T/busy"
fails 1 "mount on a mount point already mounted" "'$T/busy'" "$KEEPFS" mount "$STORE" "$T/busy"
is "$(mount_type "$T/busy")" tmpfs "the existing mount is still on top"
check_not "no daemon holds the store" kfs_daemon_pid "$STORE"
umount "$T/busy"

# the store already mounted elsewhere
kfs_mount "$STORE" "$T/m1"
ok $? "mount the store at m1"
printf 'kept\n' >"$T/m1/file"
fails 1 "mount of a store already mounted" "'$STORE'" "$KEEPFS" mount "$STORE" "$T/m2"
like "$KFS_ERR" "'$T/m1'" "the message names where it is mounted"
check_not "nothing mounted at m2" is_mounted "$T/m2"
is "$(cat "$T/m1/file" 2>&1)" "kept" "the first mount still works"
kfs_init "$T/other"
fails 1 "mount of another store on a busy keepfs mount point" "'$T/m1'" "$KEEPFS" mount "$T/other" "$T/m1"
is "$(cat "$T/m1/file" 2>&1)" "kept" "the first mount still works"
run_ok "fsck of a mounted store (committed state)" "$KEEPFS" fsck "$STORE"
kfs_umount "$T/m1"
REF=$(dump)
run_ok "fsck after the mount" "$KEEPFS" fsck "$STORE" --data

# --- options -------------------------------------------------------------------
fails 1 "unknown mount option" "'bogus'" "$KEEPFS" mount "$STORE" "$M" -o bogus
after_failure "unknown mount option"
for bad in commit_interval=abc commit_interval=-1 commit_interval= dirty_limit=lots \
	dirty_limit=-5 snapdir=sideways writeback=maybe readdirplus= cache_timeout=-1 \
	cache_timeout=soon journal=1x journal=-1h auto=30s auto=0 hourly=-1 \
	daily=1.5 prerestore=many max_history=0% max_history=101% max_history=lots \
	threads=0 threads=65 threads=-1 threads=two threads=; do
	fails 1 "bad option value '$bad'" "'${bad#*=}'.*${bad%%=*}|${bad%%=*}.*'${bad#*=}'" \
		"$KEEPFS" mount "$STORE" "$M" -o "$bad"
	after_failure "bad option value '$bad'"
done
fails 1 "unknown option among good ones" "'nope'" "$KEEPFS" mount "$STORE" "$M" -o commit_interval=2,nope=1
fails 1 "a retention option without a value" "mount option 'journal' needs a value" \
	"$KEEPFS" mount "$STORE" "$M" -o journal
after_failure "a retention option without a value"
after_failure "unknown option among good ones"

# good options mount (and are not rejected by the checks above by accident)
kfs_mount "$STORE" "$M" commit_interval=0.5,dirty_limit=8M,snapdir=visible,writeback=off,readdirplus=off,cache_timeout=0.5,threads=3
ok $? "good options mount"
kfs_umount "$M"
REF=$(dump)
kfs_mount "$STORE" "$M" ro
ok $? "mount ro"
check_not "ro: writing fails" touch "$M/rofile"
touch "$M/rofile" 2>"$T/roerr"
like "$(cat "$T/roerr")" "Read-only file system" "ro: the error is EROFS"
is "$(cat "$M/file" 2>&1)" "kept" "ro: reading works"
kfs_umount "$M"

REF2=$(dump)
is "$REF2" "$REF" "read-only mount left the store unchanged"
run_ok "fsck clean at the end" "$KEEPFS" fsck "$STORE" --data
done_testing
