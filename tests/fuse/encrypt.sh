#!/bin/bash
# encrypt.sh - encrypted stores through the real mount and the CLI: key
# files and passphrases (files, the terminal, systemd credentials), a
# marker written through the mount is in no file of the store in any state
# (right after a commit, in the WAL, in a snapshot, after unmount), wrong,
# truncated and mismatched secrets are refused with the store unchanged
# byte for byte, key change on a mounted and an unmounted store, and a
# damaged blob fails only its own file's read with EIO, logged with the
# file and offset, and is reported by fsck.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd sqlite3 script

kfs_tmpdir
T=$KFS_TMP
unset KEEPFS_KEY_FILE KEEPFS_PASSPHRASE_FILE CREDENTIALS_DIRECTORY
MARKER=MARKER-c0ffee-4f1d-api-token-do-not-leak

# sums STORE: a checksum of every file of the store but its socket
sums() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# leaks STORE: the files of STORE that hold the marker
leaks() {
	grep -l -a -F "$MARKER" "$1"/store.db* 2>/dev/null
}

# on_tty INPUT CMD...: runs CMD with a terminal whose typed input is INPUT
on_tty() {
	local input=$1
	shift
	printf '%s' "$input" | script -qec "$(printf '%q ' "$@")" /dev/null
}

# --- key files -----------------------------------------------------------------------
run_ok "keepfs key generate" "$KEEPFS" key generate "$T/k1"
is "$(stat -c '%s %a' "$T/k1")" "32 600" "a key file: 32 bytes, mode 0600"
"$KEEPFS" key generate "$T/k2" >/dev/null
check_not "two key files differ" cmp -s "$T/k1" "$T/k2"
cp "$T/k1" "$T/k1.before"
fails 1 "key generate over an existing file" "cannot create key file '$T/k1': File exists \(a key file is never overwritten\)" \
	"$KEEPFS" key generate "$T/k1"
check "the existing key file is untouched" cmp -s "$T/k1" "$T/k1.before"
head -c 31 "$T/k1" >"$T/k1.short"
fails 1 "init with a truncated key file" "key file '$T/k1.short' holds 31 bytes; a key file holds exactly 32" \
	"$KEEPFS" init --key-file "$T/k1.short" "$T/s-short"
check_not "and makes no store" test -e "$T/s-short"
{ head -c 4096 /dev/zero | tr '\0' a; printf '\r\nmore'; } >"$T/long.pass"
fails 1 "init with a passphrase file over 4096 bytes" "passphrase file '$T/long.pass' is longer than 4096 bytes" \
	"$KEEPFS" init --passphrase-file "$T/long.pass" "$T/s-long"
check_not "and makes no store" test -e "$T/s-long"

# --- a store with a key file, through the mount --------------------------------------
S=$T/store M=$T/mnt
run_ok "init --key-file" "$KEEPFS" init --key-file "$T/k1" "$S"
is "$KFS_OUT" "initialized encrypted keepfs store at '$S'" "it says encrypted"
mkdir -p "$M"
fails 1 "mount without the key (no terminal)" "store '$S' is encrypted with a key file: give it" \
	"$KEEPFS" mount "$S" "$M"
check_not "nothing is mounted" is_mounted "$M"
before=$(sums "$S")
fails 1 "mount with another key file" "cannot open store '$S': wrong passphrase or key file; nothing was mounted or changed" \
	"$KEEPFS" mount "$S" "$M" -o keyfile="$T/k2"
check_not "nothing is mounted" is_mounted "$M"
fails 1 "mount with a truncated key file" "key file '$T/k1.short' holds 31 bytes" \
	"$KEEPFS" mount "$S" "$M" -o keyfile="$T/k1.short"
printf 'pass\n' >"$T/pass"
fails 1 "mount with a passphrase file" "store '$S' is unlocked by a key file, not a passphrase" \
	"$KEEPFS" mount "$S" "$M" -o passfile="$T/pass"
fails 1 "passfile and keyfile together" "mount options 'passfile' and 'keyfile' exclude each other" \
	"$KEEPFS" mount "$S" "$M" -o passfile="$T/pass",keyfile="$T/k1"
is "$(sums "$S")" "$before" "the refused mounts left every file of the store as it was"
is "$(ls -A "$S" | tr '\n' ' ')" "lock store.db " "and made no file (no WAL, no shm)"
run_ok "stats" "$KEEPFS" stats "$S"
like "$KFS_OUT" $'encrypted: +yes' "stats: encrypted"

kfs_mount "$S" "$M" "keyfile=$T/k1" || bail_out "cannot mount the encrypted store"
pass "mount -o keyfile"
# random bytes around the marker: incompressible, so a plain store keeps
# the marker as it is (checked below), and only the seal can hide it
{
	head -c 100000 /dev/urandom
	echo "$MARKER"
	head -c 100000 /dev/urandom
} >"$T/secret.txt"
cp "$T/secret.txt" "$M/token.txt"
python3 -c 'import os,sys; f=os.open(sys.argv[1], os.O_RDONLY); os.fsync(f)' "$M/token.txt"
check "the marker went in" grep -q -F "$MARKER" "$M/token.txt"
is "$(leaks "$S")" "" "right after the commit the marker is in no file of the store (database, WAL)"
check "the WAL was there to be read" test -s "$S/store.db-wal"
run_ok "a snapshot" "$KEEPFS" snapshot "$M" with-token
is "$(leaks "$S")" "" "nor after a snapshot"
check "the file reads back through the mount" cmp "$T/secret.txt" "$M/token.txt"
check "and through the snapshot" cmp "$T/secret.txt" "$M/.snapshots/with-token/token.txt"
echo "small $MARKER" >"$M/small"
sync
is "$(leaks "$S")" "" "a small file's marker neither"
cp "$M/token.txt" "$M/token2.txt" && sync
run_ok "stats of the mounted store" "$KEEPFS" stats "$M" --json
like "$KFS_OUT" '"encrypted": true' "stats --json: encrypted"
kfs_umount "$M"
is "$(leaks "$S")" "" "after unmount the marker is in no file of the store"

# a crashed daemon leaves a WAL: a wrong secret still changes nothing
kfs_mount "$S" "$M" "keyfile=$T/k1" || bail_out "cannot mount the encrypted store again"
echo "in the WAL only" >"$M/late"
python3 -c 'import os,sys; f=os.open(sys.argv[1], os.O_RDONLY); os.fsync(f)' "$M/late"
kfs_kill9 "$M"
_kfs_unmount_any "$M"
check "the crash left a WAL" test -e "$S/store.db-wal"
walsums() { sha256sum "$S/store.db" "$S/store.db-wal"; }
before=$(walsums)
fails 1 "mount with another key file, a WAL there" "cannot open store '$S': wrong passphrase or key file; nothing was mounted or changed" \
	"$KEEPFS" mount "$S" "$M" -o keyfile="$T/k2"
KEEPFS_KEY_FILE=$T/k2 fails 1 "keepfs gc with another key file, a WAL there" "cannot open store '$S': wrong passphrase or key file; nothing was changed" \
	"$KEEPFS" gc "$S"
is "$(walsums)" "$before" "the database and its WAL are byte for byte as they were (SQLite's shm index may be rebuilt)"
kfs_mount "$S" "$M" "keyfile=$T/k1" || bail_out "cannot mount after the crash"
is "$(cat "$M/late")" "in the WAL only" "the right key opens it, with what only the WAL held"
kfs_umount "$M"

# the check can fail: a plain store with the same file holds the marker
kfs_init "$T/plain-ctl"
kfs_mount "$T/plain-ctl" "$T/mnt-p" || bail_out "cannot mount a plain store"
cp "$T/secret.txt" "$T/mnt-p/token.txt" && sync
kfs_umount "$T/mnt-p"
is "$(leaks "$T/plain-ctl")" "$T/plain-ctl/store.db" "in a plain store the marker is there to be found"

# without the key: history yes, contents no
run_ok "keepfs list without the key" "$KEEPFS" list "$S"
like "$KFS_OUT" "with-token" "lists the snapshot"
fails 1 "keepfs cat without the key" "store '$S' is encrypted with a key file: give it" \
	"$KEEPFS" cat "$S" with-token token.txt
KEEPFS_KEY_FILE=$T/k1 run_ok "keepfs cat with KEEPFS_KEY_FILE" "$KEEPFS" cat "$S" with-token token.txt
is "$KFS_OUT" "$(cat "$T/secret.txt")" "it prints the file"
run_ok "fsck without --data needs no key" "$KEEPFS" fsck "$S"
KEEPFS_KEY_FILE=$T/k1 run_ok "fsck --data with the key" "$KEEPFS" fsck "$S" --data

# a systemd credential
mkdir -p "$T/creds"
cp "$T/k1" "$T/creds/keepfs.key"
CREDENTIALS_DIRECTORY=$T/creds kfs_mount "$S" "$M" || bail_out "mount with a credential failed"
pass "mount with \$CREDENTIALS_DIRECTORY/keepfs.key"
check "the data is there" cmp "$T/secret.txt" "$M/token.txt"

# key change on the mounted store: key file -> passphrase
printf 'correct horse battery staple\n' >"$T/pass2"
fails 1 "key change with the wrong current key" "cannot change the key: wrong passphrase or key file; nothing was changed" \
	"$KEEPFS" key change "$M" --key-file "$T/k2" --new-passphrase-file "$T/pass2"
run_ok "key change on the mounted store" "$KEEPFS" key change "$M" --key-file "$T/k1" --new-passphrase-file "$T/pass2"
like "$KFS_OUT" "the key of store '$S' was changed" "it says so"
check "the mount goes on" cmp "$T/secret.txt" "$M/token.txt"
echo after-change >"$M/after"
kfs_umount "$M"
before=$(sums "$S")
fails 1 "the old key file no longer mounts it" "store '$S' is unlocked by a passphrase, not a key file" \
	"$KEEPFS" mount "$S" "$M" -o keyfile="$T/k1"
fails 1 "a wrong passphrase" "cannot open store '$S': wrong passphrase or key file; nothing was mounted or changed" \
	"$KEEPFS" mount "$S" "$M" -o passfile="$T/pass"
is "$(sums "$S")" "$before" "the store is byte for byte as before"
kfs_mount "$S" "$M" "passfile=$T/pass2" || bail_out "mount with the new passphrase failed"
pass "the new passphrase mounts it"
is "$(cat "$M/after")" "after-change" "with what was written after the change"
kfs_umount "$M"

# key change on the unmounted store, and the terminal
printf 'third pass\n' >"$T/pass3"
run_ok "key change on the unmounted store" "$KEEPFS" key change "$S" --passphrase-file "$T/pass2" --new-passphrase-file "$T/pass3"
out=$(on_tty $'wrong words\n' "$KEEPFS" mount "$S" "$M" 2>&1)
like "$out" "wrong passphrase or key file" "a wrong passphrase typed on the terminal is refused"
check_not "nothing is mounted" is_mounted "$M"
out=$(on_tty $'third pass\n' "$KEEPFS" mount "$S" "$M" 2>&1)
if is_mounted "$M"; then
	pass "the passphrase typed on the terminal mounts it"
	kfs_track_mount "$M"
	is "$(cat "$M/after")" "after-change" "the data is there"
	run_ok "unmount" "$KEEPFS" umount "$M"
else
	fail "the passphrase typed on the terminal mounts it" "$out"
fi
out=$(on_tty $'one\ntwo\n' "$KEEPFS" init --encrypt "$T/s-tty" 2>&1)
like "$out" "the two passphrases differ; nothing was changed" "init: two different passphrases are refused"
check_not "and make no store" test -e "$T/s-tty"
out=$(on_tty $'same one\nsame one\n' "$KEEPFS" init --encrypt "$T/s-tty" 2>&1)
like "$out" "initialized encrypted keepfs store" "init: the passphrase typed twice"
printf 'same one\n' >"$T/pass-tty"
run_ok "it opens with that passphrase" env KEEPFS_PASSPHRASE_FILE="$T/pass-tty" "$KEEPFS" fsck "$T/s-tty" --data
# Ctrl-C at the prompt gives the terminal its echo back
cat >"$T/ctrlc.py" <<'PYEOF2'
import os, pty, sys, time, termios
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "init", "--encrypt", sys.argv[2]])
out = b""
while b"passphrase" not in out:
    out += os.read(fd, 1000)
quiet = not termios.tcgetattr(fd)[3] & termios.ECHO
os.write(fd, b"\x03")
_, st = os.waitpid(pid, 0)
echo = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
print("quiet" if quiet else "echo", "echo" if echo else "quiet",
      os.WTERMSIG(st) if os.WIFSIGNALED(st) else "exit")
PYEOF2
is "$(timeout 20 python3 "$T/ctrlc.py" "$KEEPFS" "$T/s-ctrlc")" "quiet echo 2" \
	"the prompt hides what is typed; Ctrl-C ends init (SIGINT) with the echo back on"
check_not "and makes no store" test -e "$T/s-ctrlc"
fails 1 "init --encrypt without a terminal or file" "store '$T/s-none' is encrypted and there is no terminal|there is no terminal" \
	"$KEEPFS" init --encrypt "$T/s-none"
check_not "makes no store" test -e "$T/s-none"
fails 1 "a key for a plain store" "store '$T/plain' is not encrypted: it takes no key file" \
	sh -c "'$KEEPFS' init '$T/plain' >/dev/null && '$KEEPFS' mount '$T/plain' '$M' -o keyfile='$T/k1'"
check_not "nothing is mounted" is_mounted "$M"

# --- a damaged blob in a copy of the store ------------------------------------------
D=$T/damaged
cp -a "$S" "$D"
rm -f "$D/control"
# token.txt's second block gets the sealed bytes (and CRC) of its first:
# only the seal can tell
ino=$(sqlite3 "$D/store.db" "SELECT ino FROM dirents WHERE name = CAST('token.txt' AS BLOB) AND died IS NULL")
is "$(sqlite3 "$D/store.db" "UPDATE blobs SET (data, crc) = (SELECT data, crc FROM blobs WHERE id = (SELECT blob FROM blocks WHERE ino = $ino AND idx = 0 AND died IS NULL)) WHERE id = (SELECT blob FROM blocks WHERE ino = $ino AND idx = 1 AND died IS NULL); SELECT changes()")" "1" \
	"one blob of token.txt damaged in a copy"
KEEPFS_PASSPHRASE_FILE=$T/pass3 run_is 1 "fsck --data finds it: exit status 1" "$KEEPFS" fsck "$D" --data
like "$KFS_OUT" "seal does not open" "it says the seal does not open"
kfs_mount "$D" "$T/mnt-d" "passfile=$T/pass3" || bail_out "cannot mount the damaged copy"
if dd if="$T/mnt-d/token.txt" of=/dev/null bs=32k skip=1 count=1 2>"$T/dd.err"; then
	fail "reading the damaged block fails"
else
	like "$(cat "$T/dd.err")" "Input/output error" "reading the damaged block fails with EIO"
fi
check "the file's first block reads" bash -c "cmp -s <(head -c 32768 '$T/mnt-d/token.txt') <(head -c 32768 '$T/secret.txt')"
is "$(cat "$T/mnt-d/after")" "after-change" "another file reads correctly"
like "$(cat "${_kfs_log[$T/mnt-d]}")" "/token\\.txt \\(inode [0-9]+\\) in the live tree: damaged data in the block at offset 32768" \
	"the daemon log names the file, its inode and the offset"
kfs_umount "$T/mnt-d"
done_testing
