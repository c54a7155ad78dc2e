#!/bin/bash
# fsck.sh - keepfs fsck on copies of a store damaged behind keepfs's back:
# a flipped byte in a blob (checksum), a blob that does not decode, one
# whose hash is wrong, a link count; each reported with the paths and views
# it affects (text and JSON) and exit status 1.  The damaged copy mounted:
# damaged files fail with EIO and the daemon's log names the inode and the
# offset, the others read back intact.  --repair on a copy with garbage
# (what a collection that lost its bookkeeping leaves): a copy of the
# database first, the garbage gone, fsck clean, every file as it was; and
# --repair on a mounted store refused with nothing changed.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3 sha256sum cmp

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP

# sql DB STATEMENT...: run statements on a database; prints the first
# column of the last query's rows
sql() {
	python3 - "$@" <<'EOF_PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = []
for q in sys.argv[2:]:
    rows = db.execute(q).fetchall()
db.commit()
for r in rows:
    print(r[0])
EOF_PY
}

# flip DB BLOB OFFSET: flip one bit of a blob's stored bytes
flip() {
	python3 - "$@" <<'EOF_PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
blob, off = int(sys.argv[2]), int(sys.argv[3])
(data,) = db.execute("SELECT data FROM blobs WHERE id = ?", (blob,)).fetchone()
data = bytearray(data)
data[off] ^= 0x10
db.execute("UPDATE blobs SET data = ? WHERE id = ?", (bytes(data), blob))
db.commit()
EOF_PY
}

# --- a store with history ------------------------------------------------------
mkdir "$M/dir"
head -c 200000 /dev/urandom >"$T/a"
head -c 70000 /dev/urandom >"$T/c"
head -c 50000 /dev/urandom >"$T/e"
printf 'hello, world\n' >"$T/b"
cp "$T/a" "$M/dir/a"
cp "$T/b" "$M/b"
cp "$T/c" "$M/c"
cp "$T/e" "$M/e"
run_ok "snapshot s1" "$KEEPFS" snapshot "$M" s1
mv "$M/b" "$M/b2"
printf 'tail' >>"$M/dir/a"
printf 'tail' >>"$T/a"
kfs_umount "$M"

live() { # live ino of the file named $1
	sql "$1/store.db" "SELECT ino FROM dirents WHERE name = CAST('$2' AS BLOB) AND died IS NULL"
}
blob() { # blob of block $3 of inode $2, live
	sql "$1/store.db" "SELECT blob FROM blocks WHERE ino = $2 AND idx = $3 AND died IS NULL"
}

# --- damage a copy ------------------------------------------------------------
D=$T/damaged
cp -a "$S" "$D"
A=$(live "$D" a)
C=$(live "$D" c)
B=$(live "$D" b2)
BA=$(blob "$D" "$A" 1)
BC=$(blob "$D" "$C" 0)
BB=$(blob "$D" "$B" 0)
like "$A $C $B $BA $BC $BB" '^[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+$' "inodes and blobs of dir/a, c, b2"
flip "$D/store.db" "$BA" 1000
is "$(sql "$D/store.db" "UPDATE blobs SET flags = 1 WHERE id = $BC AND flags = 0" "SELECT changes()")" 1 \
	"c's first block marked compressed (its raw bytes are not zstd)"
is "$(sql "$D/store.db" "UPDATE blobs SET hash = zeroblob(32) WHERE id = $BB" "SELECT changes()")" 1 \
	"b's block has a wrong hash"
is "$(sql "$D/store.db" "UPDATE inodes SET nlink = 3 WHERE ino = $C AND died IS NULL" "SELECT changes()")" 1 \
	"c's link count is 3"
LAST=$(sql "$D/store.db" "SELECT max(id) FROM commits")

# journal commits, in any number: ", commit N" or ", K commits from X to Y"
J='(, commit [0-9]+|, [0-9]+ commits from [0-9]+ to [0-9]+)?'

run_is 1 "fsck --data of the damaged copy: exit 1" "$KEEPFS" fsck "$D" --data
OUT=$KFS_OUT
diag "$OUT"
like "$(grep "^blob $BA:" <<<"$OUT")" \
	"^blob $BA: stored bytes do not match their checksum; affects /dir/a at offset 32768 \\(live tree, snapshot s1$J\\)\$" \
	"a flipped byte names dir/a at 32768 in the live tree and s1"
like "$(grep "^blob $BC:" <<<"$OUT")" \
	"^blob $BC: does not decode; affects /c at offset 0 \\(live tree, snapshot s1$J\\)\$" \
	"a blob that does not decode names c at 0"
like "$(grep "^blob $BB:" <<<"$OUT")" \
	"^blob $BB: content does not match its hash; affects /b2 at offset 0 \\(live tree$J\\), /b at offset 0 \\(snapshot s1$J\\)\$" \
	"a wrong hash names b2 in the live tree and b in s1"
is "$(grep 'link count' <<<"$OUT")" \
"live tree: link count: inode $C has nlink 3 but 1 names; affects /c (live tree)
commit $LAST: link count: inode $C has nlink 3 but 1 names; affects /c (commit $LAST)" \
	"the link count names c in the live tree and the newest commit"
is "$(grep -c . <<<"$OUT")" 7 "5 problems, the advice about file data, the summary"
like "$OUT" "restore those files from a version not named above" "advice about damaged files"
is "$(tail -n 1 <<<"$OUT")" "5 problems found in store '$D'" "summary"

run_is 1 "fsck without --data: exit 1" "$KEEPFS" fsck "$D"
is "$(grep -c '^blob' <<<"$KFS_OUT")" 0 "without --data blobs are not read"
is "$(tail -n 1 <<<"$KFS_OUT")" "2 problems found in store '$D'" "only the link count twice"

run_is 1 "fsck --data --json: exit 1" "$KEEPFS" fsck "$D" --data --json
python3 - "$KFS_OUT" "$BA" "$BC" "$BB" "$C" "$LAST" >"$T/json.out" 2>&1 <<'EOF_PY'
import json, sys
doc = json.loads(sys.argv[1])
ba, bc, bb, c, last = (int(x) for x in sys.argv[2:])
probs = {p["problem"]: p for p in doc["problems"]}
def places(p):
    """live and snapshot places exactly; journal commits as paths"""
    out = set()
    for a in p["affects"]:
        where = (a["path"], a.get("offset"))
        if a["view"] == "commits":
            assert a["count"] >= 1 and a["first"] <= a["last"], a
            out.add(("commits",) + where)
        elif a["view"] == "snapshot":
            out.add(("snapshot " + a["snapshot"],) + where)
        else:
            out.add((a["view"],) + where)
    return out
def want(p, exact, journal):
    got = places(p)
    j = {x for x in got if x[0] == "commits"}
    assert got - j == exact, (p["problem"], got)
    assert j <= journal, (p["problem"], j)
    assert p["more"] == 0 and p["data"] is True
want(probs["blob %d: stored bytes do not match their checksum" % ba],
     {("live", "/dir/a", 32768), ("snapshot s1", "/dir/a", 32768)},
     {("commits", "/dir/a", 32768)})
want(probs["blob %d: does not decode" % bc],
     {("live", "/c", 0), ("snapshot s1", "/c", 0)}, {("commits", "/c", 0)})
want(probs["blob %d: content does not match its hash" % bb],
     {("live", "/b2", 0), ("snapshot s1", "/b", 0)},
     {("commits", "/b2", 0), ("commits", "/b", 0)})
lc = probs["live tree: link count: inode %d has nlink 3 but 1 names" % c]
assert lc["affects"] == [{"view": "live", "path": "/c"}] and not lc["data"], lc
lc = probs["commit %d: link count: inode %d has nlink 3 but 1 names" % (last, c)]
assert lc["affects"] == [{"view": "commits", "first": last, "last": last,
                          "count": 1, "path": "/c"}], lc
assert doc["count"] == 5 and doc["clean"] is False and doc["data"] is True
assert doc["garbage"] == {"rows": 0, "blobs": 0, "blob_bytes": 0}
print("ok")
EOF_PY
is "$(cat "$T/json.out")" ok "the JSON names the same places"

# --- the damaged copy, mounted ------------------------------------------------------
M2=$T/m2
if kfs_mount "$D" "$M2"; then
	run_is 1 "reading dir/a fails" cp "$M2/dir/a" "$T/out"
	like "$KFS_ERR" "Input/output error" "with EIO"
	run_is 1 "reading c fails" cp "$M2/c" "$T/out"
	like "$KFS_ERR" "Input/output error" "with EIO"
	run_is 1 "reading dir/a in s1 fails" cp "$M2/.snapshots/s1/dir/a" "$T/out"
	like "$KFS_ERR" "Input/output error" "with EIO"
	check "e reads intact" cmp "$M2/e" "$T/e"
	check "the first block of dir/a reads intact" cmp -n 32768 "$M2/dir/a" "$T/a"
	check "b2 reads intact (its bytes are sound, only the hash row is not)" cmp "$M2/b2" "$T/b"
	LOG=$T/daemon.m2.log
	like "$(cat "$LOG")" "/dir/a \\(inode $A\\) in the live tree: damaged data in the block at offset 32768" \
		"the daemon's log names dir/a, its inode and the block's offset"
	like "$(cat "$LOG")" "/c \\(inode $C\\) in the live tree: damaged data in the block at offset 0" \
		"and c"
	kfs_umount "$M2"
else
	fail "mount the damaged copy"
fi

# --- garbage and --repair ------------------------------------------------------------
# what a collection leaves that dropped every commit but the newest and
# then lost its list of inodes to visit
G=$T/garbage
cp -a "$S" "$G"
sql "$G/store.db" "DELETE FROM snapshots" \
	"INSERT OR IGNORE INTO changes(commit_id, ino) SELECT (SELECT max(id) FROM commits), ino FROM changes" \
	"DELETE FROM changes WHERE commit_id < (SELECT max(id) FROM commits)" \
	"DELETE FROM commits WHERE id < (SELECT max(id) FROM commits)"
ROWS=$(sql "$G/store.db" "SELECT (SELECT count(*) FROM inodes WHERE died IS NOT NULL) + (SELECT count(*) FROM dirents WHERE died IS NOT NULL) + (SELECT count(*) FROM blocks WHERE died IS NOT NULL) + (SELECT count(*) FROM xattrs WHERE died IS NOT NULL)")
ORPHANS=$(sql "$G/store.db" "SELECT count(*) FROM blobs WHERE id < (SELECT max(id) FROM blobs) AND id NOT IN (SELECT blob FROM blocks WHERE died IS NULL)")
like "$ROWS $ORPHANS" '^[1-9][0-9]* [1-9][0-9]*$' "the copy has dead rows ($ROWS) and orphan blobs ($ORPHANS)"

run_ok "fsck of the copy with garbage: garbage is not a problem" "$KEEPFS" fsck "$G" --data
like "$KFS_OUT" "garbage: $ROWS unreachable rows and $ORPHANS orphan blobs? \\([^)]*\\) that no view can see; 'keepfs fsck --repair' drops them" \
	"it is counted"
run_ok "fsck --repair" "$KEEPFS" fsck "$G" --repair --data
OUT=$KFS_OUT
diag "$OUT"
COPY=$(sed -n 's/^copy of the database before the repair: //p' <<<"$OUT")
like "$COPY" "^$G/store\\.db\\.before-repair-[0-9]{8}T[0-9]{6}Z\$" "it names the copy it took"
check "the copy is there" test -f "$COPY"
is "$(stat -c %a "$COPY")" 600 "the copy is private"
is "$(sql "$COPY" "PRAGMA integrity_check")" ok "the copy is a sound database"
is "$(sql "$COPY" "SELECT (SELECT count(*) FROM inodes WHERE died IS NOT NULL) + (SELECT count(*) FROM dirents WHERE died IS NOT NULL) + (SELECT count(*) FROM blocks WHERE died IS NOT NULL) + (SELECT count(*) FROM xattrs WHERE died IS NOT NULL)")" \
	"$ROWS" "the copy holds the dead rows"
like "$OUT" "dropped $ROWS unreachable rows and $ORPHANS orphan blobs? " "it dropped them all"
is "$(tail -n 1 <<<"$OUT")" "store '$G' is consistent after the repair" "clean after the repair"
run_ok "fsck --json after" "$KEEPFS" fsck "$G" --data --json
like "$KFS_OUT" '"clean": true, "garbage": \{"rows": 0, "blobs": 0, "blob_bytes": 0\}' "no garbage left"
run_ok "a second --repair" "$KEEPFS" fsck "$G" --repair
like "$KFS_OUT" "^nothing to repair" "finds nothing to do"
is "$(ls "$G" | grep -c before-repair)" 1 "and takes no copy"
M3=$T/m3
if kfs_mount "$G" "$M3"; then
	check "dir/a as it was" cmp "$M3/dir/a" "$T/a"
	check "b2 as it was" cmp "$M3/b2" "$T/b"
	check "c as it was" cmp "$M3/c" "$T/c"
	check "e as it was" cmp "$M3/e" "$T/e"
	kfs_umount "$M3"
else
	fail "mount the repaired copy"
fi

# --- --repair on a mounted store ---------------------------------------------------
# store_sums: the store's files, but the control socket
store_sums() {
	(cd "$S" && find . -type f | sort | xargs sha256sum)
}
kfs_mount "$S" "$M" || bail_out "cannot mount the store again"
sleep 1
before=$(store_sums)
fails 1 "--repair of a mounted store" "store '$S' is mounted at '$M': unmount it first" \
	"$KEEPFS" fsck "$S" --repair
fails 1 "--repair through the mount point" "store '$S' is mounted at '$M': unmount it first" \
	"$KEEPFS" fsck "$M" --repair --json
is "$(store_sums)" "$before" "the store's files did not change"
is "$(ls "$S" | grep -c before-repair)" 0 "no copy was taken"
kfs_umount "$M"

fails 2 "an unknown option" "" "$KEEPFS" fsck "$S" --repair --frob
done_testing
