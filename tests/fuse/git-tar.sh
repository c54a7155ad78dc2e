#!/bin/bash
# git-tar.sh - real tools on the mount: a git repository of 3000 files
# (commit, repack, fsck), and a tarball of /usr/include extracted into the
# mount and onto the plain disk, compared byte for byte and by metadata,
# again after a remount.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd git tar diff
[ -d /usr/include ] || skip_all "no /usr/include to extract"

kfs_setup
M=$KFS_MNT
export GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=test@example.invalid
export GIT_COMMITTER_NAME=test GIT_COMMITTER_EMAIL=test@example.invalid
export GIT_CONFIG_NOSYSTEM=1 HOME=$KFS_TMP

# --- git -------------------------------------------------------------------
R=$M/repo
run_ok "git init" git init -q "$R"
python3 - "$R" <<'PY'
import os, random, sys
rnd = random.Random(7)
for i in range(3000):
    d = os.path.join(sys.argv[1], f"dir{i % 40:02d}", f"sub{i % 7}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:04d}.txt"), "w") as f:
        f.write(f"file {i}\n" + "".join(rnd.choice("abcdefgh \n") for _ in range(rnd.randint(0, 3000))))
PY
ok $? "3000 files written"
run_ok "git add" git -C "$R" add -A
run_ok "git commit of 3000 files" git -C "$R" commit -q -m "3000 files"
is "$(git -C "$R" ls-files | wc -l)" 3000 "3000 files tracked"
for i in $(seq 0 29 2999); do
	f=$(printf '%s/dir%02d/sub%d/file%04d.txt' "$R" $((i % 40)) $((i % 7)) "$i")
	printf 'changed\n' >>"$f"
done
git -C "$R" mv dir00 moved00
run_ok "second commit (changes and a rename)" git -C "$R" commit -q -a -m "changes"
run_ok "git repack -a -d" git -C "$R" repack -q -a -d
run_ok "git fsck --full" git -C "$R" fsck --full --strict
is "$KFS_ERR" "" "git fsck reports nothing"
is "$(git -C "$R" status --porcelain)" "" "working tree clean"
is "$(git -C "$R" rev-list --count HEAD)" 2 "two commits"
HEAD1=$(git -C "$R" rev-parse HEAD)

# --- tar of /usr/include ---------------------------------------------------
TAR=$KFS_TMP/include.tar
tar -C /usr -cf "$TAR" include 2>/dev/null
ok $? "tarball of /usr/include ($(du -m "$TAR" | cut -f1) MB)"
mkdir -p "$KFS_TMP/plain" "$M/tree"
run_ok "extract on the plain disk" tar -C "$KFS_TMP/plain" -xpf "$TAR"
run_ok "extract into the mount" tar -C "$M/tree" -xpf "$TAR"
# directory sizes are the filesystem's business; everything else must match
listing() {
	(cd "$1" && find . -mindepth 1 -printf '%p|%y|%m|%U|%G|%s|%n|%T@|%l\n' |
		awk -F'|' 'BEGIN { OFS = "|" } $2 == "d" { $6 = "" } { print }' | sort)
}
run_ok "diff -r: identical bytes" diff -r --no-dereference "$KFS_TMP/plain" "$M/tree"
listing "$KFS_TMP/plain" >"$KFS_TMP/plain.list"
listing "$M/tree" >"$KFS_TMP/mnt.list"
same_listing "$KFS_TMP/plain.list" "$KFS_TMP/mnt.list" "same names, types, modes, owners, sizes, links and mtimes"

kfs_remount
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
run_ok "diff -r after a remount" diff -r --no-dereference "$KFS_TMP/plain" "$M/tree"
listing "$M/tree" >"$KFS_TMP/mnt2.list"
same_listing "$KFS_TMP/plain.list" "$KFS_TMP/mnt2.list" "same metadata after a remount"
run_ok "git fsck after a remount" git -C "$R" fsck --full --strict
is "$(git -C "$R" rev-parse HEAD)" "$HEAD1" "same HEAD"
is "$(git -C "$R" status --porcelain)" "" "working tree still clean"
run_ok "rm -rf of the tree" rm -rf "$M/tree"
is "$(ls -A "$M")" "repo" "only the repository is left"
kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
