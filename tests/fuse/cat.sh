#!/bin/bash
# cat.sh - keepfs cat TARGET FROM PATH: byte-exact versions of files from
# snapshots and points in time (binary data, holes, 50 MB), symbolic links
# followed inside the view, mounted and not mounted; every error with its
# exit status and message.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3 sha256sum cmp

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP
mkdir "$T/v1" "$T/v2"

# same_file DESC WANT CMD...: CMD's stdout is byte for byte WANT
same_file() {
	local desc=$1 want=$2 rc=0
	shift 2
	"$@" >"$T/got" 2>"$T/got.err" || rc=$?
	if [ "$rc" -eq 0 ] && cmp -s "$T/got" "$want" && [ ! -s "$T/got.err" ]; then
		pass "$desc"
	else
		fail "$desc" "status $rc" "$(cmp "$T/got" "$want" 2>&1)" "$(head -c 500 "$T/got.err")"
	fi
}

# --- version 1 ---------------------------------------------------------------------
mkdir -p "$M/etc/deep/er" "$M/bin"
printf 'name = "first"\n' >"$M/etc/config.toml"
head -c 300000 /dev/urandom >"$M/bin/blob"
printf '' >"$M/empty"
printf 'no newline at the end' >"$M/etc/deep/er/leaf"
# holes: 8 MiB of nothing, a few bytes, then nothing to 20 MiB
python3 - "$M/holes" <<'EOF_PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.seek(8 << 20)
    f.write(b"island")
    f.truncate(20 << 20)
EOF_PY
head -c 50000000 /dev/urandom >"$M/large"
printf 'file with\na newline in its name' >"$M/etc/new
line"
ln -s config.toml "$M/etc/link"
ln -s /etc/config.toml "$M/abs-link"
ln -s ../../config.toml "$M/etc/deep/er/up"
ln -s deep "$M/etc/dirlink"
ln -s nowhere "$M/dangling"
ln -s loop-b "$M/loop-a"
ln -s loop-a "$M/loop-b"
mkfifo "$M/fifo"
printf 'dash' >"$M/-dash"
for f in etc/config.toml bin/blob empty etc/deep/er/leaf holes large; do
	mkdir -p "$T/v1/$(dirname "$f")"
	cp "$M/$f" "$T/v1/$f"
done
LARGE1=$(sha256sum <"$T/v1/large" | cut -d' ' -f1)
run_ok "snapshot v1" "$KEEPFS" snapshot "$M" v1
sleep 0.2
T1=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.2

# --- version 2 ---------------------------------------------------------------------
printf 'name = "second"\n' >"$M/etc/config.toml"
head -c 1000 /dev/urandom | dd of="$M/bin/blob" bs=1000 seek=100 conv=notrunc status=none
printf 'x' | dd of="$M/holes" bs=1 seek=$((12 << 20)) conv=notrunc status=none
rm "$M/etc/deep/er/leaf"
head -c 50000000 /dev/urandom >"$M/large"
sync "$M/large"
for f in etc/config.toml bin/blob holes large; do
	mkdir -p "$T/v2/$(dirname "$f")"
	cp "$M/$f" "$T/v2/$f"
done
LARGE2=$(sha256sum <"$T/v2/large" | cut -d' ' -f1)
run_ok "snapshot v2" "$KEEPFS" snapshot "$M" v2
# '@-1s' below must name a moment after v2's changes were committed: on a
# fast machine everything above fits in less than a second
sleep 1.1

# both TARGET kinds, mounted and not
checks() {
	local tg=$1 w=$2 f
	for f in etc/config.toml bin/blob empty etc/deep/er/leaf holes; do
		same_file "$w: v1 $f is byte-exact" "$T/v1/$f" "$KEEPFS" cat "$tg" v1 "$f"
	done
	for f in etc/config.toml bin/blob holes; do
		same_file "$w: v2 $f is byte-exact" "$T/v2/$f" "$KEEPFS" cat "$tg" v2 "$f"
	done
	same_file "$w: @TIME between v1 and v2 gives v1's config" "$T/v1/etc/config.toml" "$KEEPFS" cat "$tg" "@$T1" etc/config.toml
	same_file "$w: @TIME gives v1's holes" "$T/v1/holes" "$KEEPFS" cat "$tg" "@$T1" holes
	same_file "$w: @-0h... @-1s is now: v2's blob" "$T/v2/bin/blob" "$KEEPFS" cat "$tg" @-1s bin/blob
	same_file "$w: a leading '/' is allowed" "$T/v1/etc/config.toml" "$KEEPFS" cat "$tg" v1 /etc/config.toml
	same_file "$w: '.', '..' and repeated '/'" "$T/v1/etc/config.toml" "$KEEPFS" cat "$tg" v1 ./etc//deep/../config.toml
	same_file "$w: '..' stops at the root" "$T/v1/etc/config.toml" "$KEEPFS" cat "$tg" v1 ../../etc/config.toml
	same_file "$w: a relative symlink is followed" "$T/v1/etc/config.toml" "$KEEPFS" cat "$tg" v1 etc/link
	same_file "$w: an absolute symlink resolves in the view" "$T/v1/etc/config.toml" "$KEEPFS" cat "$tg" v1 abs-link
	same_file "$w: a symlink climbing with '..'" "$T/v1/etc/config.toml" "$KEEPFS" cat "$tg" v1 etc/deep/er/up
	same_file "$w: a symlink to a directory on the way" "$T/v1/etc/deep/er/leaf" "$KEEPFS" cat "$tg" v1 etc/dirlink/er/leaf
	run_ok "$w: a PATH starting with '-'" "$KEEPFS" cat "$tg" v1 -dash
	is "$KFS_OUT" "dash" "$w: is a path, not an option"
	run_ok "$w: a name with a newline" "$KEEPFS" cat "$tg" v1 $'etc/new\nline'
	is "$KFS_OUT" $'file with\na newline in its name' "$w: its content"
	is "$("$KEEPFS" cat "$tg" v1 large | sha256sum | cut -d' ' -f1)" "$LARGE1" "$w: v1's 50 MB file (sha256)"
	is "$("$KEEPFS" cat "$tg" v2 large | sha256sum | cut -d' ' -f1)" "$LARGE2" "$w: v2's 50 MB file (sha256)"

	fails 1 "$w: unknown snapshot" "no snapshot 'nightly' in '$S' \(see 'keepfs list'\)$" "$KEEPFS" cat "$tg" nightly etc/config.toml
	fails 1 "$w: malformed time" "'@yesterday' is not a time" "$KEEPFS" cat "$tg" @yesterday etc/config.toml
	fails 1 "$w: time before the first commit" "store '$S' has no commit at or before '@2000-01-01T00:00:00Z'$" \
		"$KEEPFS" cat "$tg" @2000-01-01T00:00:00Z etc/config.toml
	fails 1 "$w: a path not in the snapshot" "'etc/x' is not in snapshot 'v1'$" "$KEEPFS" cat "$tg" v1 etc/x
	fails 1 "$w: a file deleted before v2" "'etc/deep/er/leaf' is not in snapshot 'v2'$" "$KEEPFS" cat "$tg" v2 etc/deep/er/leaf
	fails 1 "$w: a path not in a point in time" "'nope' is not in the tree as of '@$T1'$" "$KEEPFS" cat "$tg" "@$T1" /nope
	fails 1 "$w: a path under a file" "'etc/config.toml/x' is not in snapshot 'v1'$" "$KEEPFS" cat "$tg" v1 etc/config.toml/x
	fails 1 "$w: a directory" "'etc' is a directory in snapshot 'v1'$" "$KEEPFS" cat "$tg" v1 etc
	fails 1 "$w: the root" "'/' is a directory in snapshot 'v1'$" "$KEEPFS" cat "$tg" v1 /
	fails 1 "$w: a symlink to a directory" "'etc/dirlink' is a directory in snapshot 'v1'$" "$KEEPFS" cat "$tg" v1 etc/dirlink
	fails 1 "$w: a fifo" "'fifo' is not a regular file in snapshot 'v1'$" "$KEEPFS" cat "$tg" v1 fifo
	fails 1 "$w: a dangling symlink" "'dangling' is not in snapshot 'v1' \(a symbolic link on the way leads nowhere\)$" \
		"$KEEPFS" cat "$tg" v1 dangling
	fails 1 "$w: a symlink loop" "'loop-a' in snapshot 'v1': more than 40 symbolic links on the way$" \
		"$KEEPFS" cat "$tg" v1 loop-a
	fails 2 "$w: no PATH" "missing PATH" "$KEEPFS" cat "$tg" v1
	fails 2 "$w: no FROM" "missing FROM and PATH" "$KEEPFS" cat "$tg"
	fails 2 "$w: too many arguments" "too many arguments" "$KEEPFS" cat "$tg" v1 a b
	fails 2 "$w: an unknown option" "unknown option '--bogus'" "$KEEPFS" cat --bogus "$tg" v1 etc/config.toml
	same_file "$w: '--' before TARGET" "$T/v1/etc/config.toml" "$KEEPFS" cat -- "$tg" v1 etc/config.toml
}

checks "$M" "by mount point"
checks "$S" "mounted, by store path"
fails 1 "no store" "'$T/nothing' does not exist$" "$KEEPFS" cat "$T/nothing" v1 etc/config.toml
mkdir "$T/plain"
fails 1 "not a store" "'$T/plain' is neither a keepfs store nor a keepfs mount point$" "$KEEPFS" cat "$T/plain" v1 x

# a reader that stops early: no noise
"$KEEPFS" cat "$M" v1 large 2>"$T/pipe.err" | head -c 10 >/dev/null
is "$(cat "$T/pipe.err")" "" "a reader that stops early: nothing on stderr"
run_ok "keepfs --help lists cat" "$KEEPFS" --help
like "$KFS_OUT" "   cat " "it is there"
run_ok "keepfs cat --help" "$KEEPFS" cat --help
like "$KFS_OUT" "^usage: keepfs cat TARGET FROM PATH" "it shows the usage"

kfs_umount "$M"
checks "$S" "not mounted"
kfs_fsck "$S"
done_testing
