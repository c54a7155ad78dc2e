#!/bin/bash
# snapshots.sh - MOUNT/.snapshots: views hold the exact tree of their
# moment and refuse every change with EROFS; mkdir/rmdir/mv make, delete
# and rename snapshots; @TIME views; the reserved, hidden name; st_ino
# uniqueness; deleting a snapshot under a process's feet; survival across
# umount + mount and kill -9.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
. "$KFS_TESTS/fuse/tree.sh"

kfs_setup
M=$KFS_MNT
S=$M/.snapshots

# errno of a command's failure, from its message
errno_of() {
	python3 - "$@" <<'EOF'
import errno, os, sys
op, args = sys.argv[1], sys.argv[2:]
try:
    if op == "mkdir":
        os.mkdir(args[0])
    elif op == "rmdir":
        os.rmdir(args[0])
    elif op == "rename":
        os.rename(args[0], args[1])
    elif op == "rename-noreplace":
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.renameat2(-100, args[0].encode(), -100, args[1].encode(), 1) != 0:
            raise OSError(ctypes.get_errno(), "renameat2")
    elif op == "stat":
        os.stat(args[0])
    elif op == "create":
        os.close(os.open(args[0], os.O_CREAT | os.O_WRONLY, 0o644))
    elif op == "listdir":
        os.listdir(args[0])
    elif op == "read":
        with open(args[0], "rb") as f:
            f.read()
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
EOF
}

# --- a view holds the exact tree -------------------------------------------
( build_tree "$M" )
ok $? "build a tree of every kind of object"
setfattr -n user.snap -v 1 "$M/a/small"
mkdir "$M/a/sub" && printf 'in sub\n' >"$M/a/sub/f"
kfs_listing "$M" "$KFS_TMP/live0"
check "mkdir .snapshots/first" mkdir "$S/first"
is "$(stat -c %F "$S/first")" "directory" "the snapshot is a directory"
kfs_listing "$S/first" "$KFS_TMP/view0"
same_listing "$KFS_TMP/live0" "$KFS_TMP/view0" "view == live tree at the snapshot (content, modes, owners, ns times, xattrs, links, holes)"

# writes still in the kernel's writeback cache are in the snapshot
printf 'cached but not synced\n' >"$M/wb"
head -c 300000 /dev/urandom >"$M/wb-big"
check "snapshot right after unsynced writes" mkdir "$S/unsynced"
is "$(cat "$S/unsynced/wb" 2>&1)" "cached but not synced" "unsynced small write is in the snapshot"
check "unsynced big write is in the snapshot" cmp "$M/wb-big" "$S/unsynced/wb-big"

# the live tree changes; the view does not
printf 'rewritten\n' >"$M/a/small"
chmod 0644 "$M/a/small"
setfattr -x user.snap "$M/a/small"
rm "$M/a/h2" "$M/a/b/c/same2"
truncate -s 0 "$M/a/random"
mv "$M/a/b/text" "$M/text-moved"
ln -sf elsewhere "$M/a/sl-rel"
touch -d '@1800000000' "$M/a/b"
sync
kfs_listing "$S/first" "$KFS_TMP/view1"
same_listing "$KFS_TMP/view0" "$KFS_TMP/view1" "view unchanged after the live tree changed"

# reading a view while the live file is being rewritten
head -c 2000000 /dev/urandom >"$M/busy"
sync
check "snapshot of busy" mkdir "$S/busy"
want=$(sha256sum <"$S/busy/busy")
( for i in $(seq 1 40); do head -c 2000000 /dev/urandom >"$M/busy"; done ) &
writer=$!
bad=0
for i in $(seq 1 20); do
	[ "$(sha256sum <"$S/busy/busy")" == "$want" ] || bad=$((bad + 1))
done
wait "$writer"
is "$bad" 0 "20 reads of a view while the live file is rewritten 40 times"

# --- every change to a view fails with EROFS ------------------------------
out=$(python3 "$KFS_TESTS/fuse/try_ops.py" "$S/first/a" "$S/first/a/small")
is "$(grep -vc ' EROFS$' <<<"$out")" 0 "every change in a view is EROFS" || diag "$out"
is "$(wc -l <<<"$out")" 21 "21 kinds of change tried"
is "$(errno_of create "$S/newfile")" EROFS "create in .snapshots is EROFS"
is "$(errno_of create "$S/first/newfile")" EROFS "create in a view root is EROFS"

# --- st_ino ----------------------------------------------------------------
check "second snapshot" mkdir "$S/second"
i_live=$(stat -c %i "$M/a/h1")
i_first=$(stat -c %i "$S/first/a/h1")
i_second=$(stat -c %i "$S/second/a/h1")
ok "$([ "$i_live" != "$i_first" ] && [ "$i_first" != "$i_second" ] && [ "$i_live" != "$i_second" ]; echo $?)" \
	"one file has a different st_ino in the live tree and in two views ($i_live $i_first $i_second)"
is "$(stat -c %i "$S/first/a/h2")" "$i_first" "hard links share st_ino within a view"
is "$(stat -c %h "$S/first/a/h1")" 3 "nlink in the view is that of its moment"
shared=$(python3 - "$M" "$S/first" "$S/second" "$S/busy" "$S" <<'EOF'
import os, sys
# st_ino sets per tree (hard links within a tree count once); no inode
# number may be in two of them, and within a tree two paths share one only
# when they are hard links of one file (same nlink > 1, not directories)
sets, problems = [], 0
for root in sys.argv[1:-1]:
    seen = {}
    for dp, dns, fns in os.walk(root):
        for p in [dp] + [os.path.join(dp, n) for n in dns + fns]:
            st = os.lstat(p)
            if st.st_ino in seen and seen[st.st_ino] != p and (os.path.isdir(p) or st.st_nlink < 2):
                problems += 1
            seen[st.st_ino] = p
    sets.append(set(seen))
sets.append({os.lstat(sys.argv[-1]).st_ino})
for i in range(len(sets)):
    for j in range(i + 1, len(sets)):
        problems += len(sets[i] & sets[j])
print(problems)
EOF
)
is "$shared" 0 "no st_ino is shared across the live tree, .snapshots and three views"

# --- mkdir / rmdir / mv in .snapshots --------------------------------------
is "$(ls -U "$S" | tr '\n' ' ')" "first unsynced busy second " "ls .snapshots lists snapshots in creation order"
is "$(errno_of mkdir "$S/first")" EEXIST "a duplicate name is EEXIST"
is "$(errno_of mkdir "$S/@x")" EINVAL "a name starting with @ is EINVAL"
is "$(errno_of mkdir "$S/$(printf 'n%.0s' $(seq 1 256))")" ENAMETOOLONG "a 256-byte name is ENAMETOOLONG"
check "a 255-byte name is fine" mkdir "$S/$(printf 'n%.0s' $(seq 1 255))"
check "rmdir it" rmdir "$S/$(printf 'n%.0s' $(seq 1 255))"
check "a name with spaces and UTF-8" mkdir "$S/before upgrade é"
is "$(cat "$S/before upgrade é/a/b/c/same1" | wc -c)" 131072 "read through a name with spaces"
check "mv renames a snapshot" mv "$S/before upgrade é" "$S/renamed"
is "$(errno_of stat "$S/before upgrade é")" ENOENT "the old name is gone"
is "$(cat "$S/renamed/wb")" "cached but not synced" "the renamed snapshot holds the same view"
is "$(errno_of rename "$S/renamed" "$S/first")" EEXIST "renaming onto an existing snapshot is EEXIST"
is "$(errno_of rename-noreplace "$S/renamed" "$S/first")" EEXIST "RENAME_NOREPLACE onto an existing snapshot is EEXIST"
is "$(errno_of rename "$S/renamed" "$S/@y")" EINVAL "renaming to an @ name is EINVAL"
is "$(errno_of rename "$S/renamed" "$M/out")" EROFS "moving a snapshot out of .snapshots is EROFS"
is "$(errno_of rename "$M/wb" "$S/in")" EROFS "moving a file into .snapshots is EROFS"
is "$(errno_of rmdir "$S/nonexistent")" ENOENT "rmdir of a missing snapshot is ENOENT"
check "rmdir deletes a snapshot" rmdir "$S/renamed"
is "$(errno_of stat "$S/renamed")" ENOENT "a deleted snapshot is gone"
is "$(ls -U "$S" | tr '\n' ' ')" "first unsynced busy second " "listing after create, rename and delete"
check "the name of a deleted snapshot can be used again" mkdir "$S/renamed"
i_new=$(stat -c %i "$S/renamed")
i_old=$(stat -c %i "$S/first")
ok "$([ "$i_new" != "$i_old" ]; echo $?)" "view roots have distinct st_ino"

# --- points in time ---------------------------------------------------------
printf 'version one\n' >"$M/pit"
sync "$M/pit"
sleep 1.2
t1=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t1_epoch=$(date -u -d "$t1" +%s)
sleep 1.2
printf 'version two\n' >"$M/pit"
sync "$M/pit"
is "$(cat "$S/@$t1/pit" 2>&1)" "version one" "@UTC time shows the tree of that moment"
off=$(TZ=Etc/GMT-1 date -d "@$t1_epoch" +%Y-%m-%dT%H:%M:%S+01:00)
is "$(cat "$S/@$off/pit" 2>&1)" "version one" "@time with an offset ($off)"
rel=$(( $(date +%s) - t1_epoch ))
is "$(cat "$S/@-${rel}s/pit" 2>&1)" "version one" "@-${rel}s"
is "$(errno_of stat "$S/@-1d")" ENOENT "a time before the first commit is ENOENT"
is "$(errno_of stat "$S/@not-a-time")" ENOENT "an unparsable time is ENOENT"
is "$(errno_of stat "$S/@2026-13-01T00:00:00Z")" ENOENT "month 13 is ENOENT"
sleep 1.1
now_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
is "$(cat "$S/@$now_iso/pit" 2>&1)" "version two" "@now shows the newest commit"
unlike "$(ls -a "$S")" '@' "@ names are not listed"
is "$(errno_of rmdir "$S/@$t1")" EPERM "rmdir of a point in time is EPERM"
out=$(python3 "$KFS_TESTS/fuse/try_ops.py" "$S/@$t1/a" "$S/@$t1/a/small")
is "$(grep -vc ' EROFS$' <<<"$out")" 0 "every change in a point-in-time view is EROFS" || diag "$out"
i_pit=$(stat -c %i "$S/@$t1/pit")
ok "$([ "$i_pit" != "$(stat -c %i "$M/pit")" ]; echo $?)" "a point-in-time view has its own st_ino"

# --- the reserved, hidden name --------------------------------------------
unlike "$(ls -a "$M")" '\.snapshots' "ls -a of the root does not show .snapshots"
is "$(find "$M" -name '.snapshots' | wc -l)" 0 "find does not walk .snapshots"
is "$(tar -C "$M" -cf - . | tar -tf - | grep -c snapshots)" 0 "tar of the mount has no .snapshots"
is "$(du -s --apparent-size "$M" >/dev/null 2>&1; echo $?)" 0 "du of the mount works"
is "$(stat -c '%F %a' "$S")" "directory 755" ".snapshots is reachable by name"
is "$(errno_of mkdir "$M/.snapshots")" EEXIST "mkdir /.snapshots is EEXIST"
mkdir "$M/dir-to-move"
is "$(errno_of rename "$M/dir-to-move" "$M/.snapshots")" EPERM "renaming a directory onto .snapshots is EPERM"
is "$(errno_of rename "$S" "$M/elsewhere")" EPERM "renaming .snapshots is EPERM"
is "$(errno_of rmdir "$S")" EPERM "removing .snapshots is EPERM"
like "$(cat "${_kfs_log[$M]}")" "reserved" "the daemon log says why"

# --- deleting a snapshot under a process's feet -----------------------------
check "snapshot to delete" mkdir "$S/doomed"
cat "$S/doomed/a/small" >/dev/null # into the page cache
exec {fd}<"$S/doomed/a/small"
( cd "$S/doomed/a" && sleep 2 && ls . >"$KFS_TMP/cwd-ls" 2>&1; echo "ls=$?" >>"$KFS_TMP/cwd-ls"
  cat small >"$KFS_TMP/cwd-cat" 2>&1; echo "cat=$?" >>"$KFS_TMP/cwd-cat" ) &
cwd_pid=$!
sleep 0.5
check "rmdir a snapshot while a process is inside it" rmdir "$S/doomed"
wait "$cwd_pid"
like "$(cat "$KFS_TMP/cwd-ls")" 'ls=[12]' "ls in the deleted view's directory fails" 
like "$(cat "$KFS_TMP/cwd-cat")" 'No such file or directory' "cat in the deleted view fails with ENOENT"
sleep 0.3
got=$(cat <&$fd 2>&1; echo "rc=$?")
exec {fd}<&-
like "$got" 'rc=1' "reading an open file of a deleted snapshot fails"
unlike "$got" 'rewritten|small' "and returns no stale data"
is "$(errno_of stat "$S/doomed")" ENOENT "the deleted snapshot is gone from .snapshots"
check "daemon alive after all that" kill -0 "$KFS_PID"

# --- no snapshot holds part of a write() ----------------------------------
# 20 KB lines span several pages, and a writer this fast is throttled by
# the kernel between pages, when writeback may take the pages written so
# far: a snapshot must still hold each line whole or not at all.
python3 - "$M/torn.jsonl" <<'EOF' &
import os, sys, time
# every line is exactly 20480 bytes: {"i": 42, "pad": "xxx..."}
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
end, i = time.time() + 6, 0
while time.time() < end:
    head = '{"i": %d, "pad": "' % i
    os.write(fd, (head + "x" * (20480 - len(head) - 3) + '"}\n').encode())
    i += 1
os.close(fd)
EOF
appender=$!
sleep 0.3
made=0
for i in $(seq 1 150); do
	mkdir "$S/torn$i" && made=$((made + 1))
	sleep 0.02
done
wait "$appender"
is "$made" 150 "150 snapshots while a writer appends 20 KB lines"
torn=$(python3 - "$S" <<'EOF'
import json, os, sys
# a snapshot's copy is whole lines and has no gap when its size is a
# multiple of the line length and its last line is the one that size needs
bad = 0
for i in range(1, 151):
    p = os.path.join(sys.argv[1], f"torn{i}", "torn.jsonl")
    if not os.path.exists(p):
        continue
    size = os.path.getsize(p)
    if size % 20480:
        bad += 1
        continue
    if size:
        with open(p, "rb") as f:
            f.seek(size - 20480)
            if json.loads(f.read())["i"] != size // 20480 - 1:
                bad += 1
print(bad)
EOF
)
is "$torn" 0 "every snapshot holds whole lines, none missing"
for i in $(seq 1 150); do rmdir "$S/torn$i"; done
rm -f "$M/torn.jsonl"

# --- survival ------------------------------------------------------------------
kfs_listing "$S/first" "$KFS_TMP/view2"
kfs_remount
is "$(ls -U "$S" | tr '\n' ' ')" "first unsynced busy second renamed " "snapshots survive umount + mount"
kfs_listing "$S/first" "$KFS_TMP/view3"
same_listing "$KFS_TMP/view2" "$KFS_TMP/view3" "a view is identical after umount + mount"

printf 'before kill\n' >"$M/killed"
check "snapshot before kill -9" mkdir "$S/pre-kill"
kfs_kill9 "$M"
ok $? "kill -9 the daemon"
kfs_mount "$KFS_STORE" "$M"
ok $? "mount after kill -9"
is "$(cat "$S/pre-kill/killed" 2>&1)" "before kill" "a snapshot survives kill -9 with its data"
kfs_listing "$S/first" "$KFS_TMP/view4"
same_listing "$KFS_TMP/view2" "$KFS_TMP/view4" "an older view is intact after kill -9"

# --- a view survives rm -rf of the live tree -------------------------------
kfs_listing "$S/second" "$KFS_TMP/second0"
rm -rf "${M:?}"/*
is "$(ls -A "$M" | wc -l)" 0 "the live tree is empty"
kfs_listing "$S/second" "$KFS_TMP/second1"
same_listing "$KFS_TMP/second0" "$KFS_TMP/second1" "a view taken before rm -rf is intact"
check "recover a file with cp" cp -a "$S/first/a/small" "$M/small-recovered"
is "$(cat "$M/small-recovered")" "small" "the recovered file has its old content"

# --- snapdir=visible ------------------------------------------------------------
kfs_umount
kfs_mount "$KFS_STORE" "$M" snapdir=visible
ok $? "mount with snapdir=visible"
like "$(ls -a "$M")" '\.snapshots' "ls -a shows .snapshots"
is "$(ls -a "$M" | grep -c '^\.snapshots$')" 1 "exactly once"
is "$(stat -c %i "$S")" "$(ls -ai "$M" | awk '$2 == ".snapshots" { print $1 }')" "readdir and stat agree on its st_ino"

kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
