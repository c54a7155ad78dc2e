#!/bin/bash
# diff.sh - keepfs diff through a real mount: after 1,200 random operations
# made through the mount, the diff between snapshots equals a brute-force
# comparison of full listings of the two views (every kind of change
# appears), in text, --json and --stat; the live tree is the newest
# commit; the same answers with the store unmounted; bad input exits 1
# or 2 with a message.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP
SD=$M/.snapshots

# ops.py ROOT SEED COUNT: random operations under ROOT; prints counts
cat >"$T/ops.py" <<'EOF'
import os, random, sys
root, rnd, count = sys.argv[1], random.Random(int(sys.argv[2])), int(sys.argv[3])
names = ["a", "b", "c", "dd", "e f", "g\nh"]
done = {}

def dirs():
    out = [root]
    for d, sub, _ in os.walk(root):
        out += [os.path.join(d, s) for s in sub]
    return out

for i in range(count):
    if i % 10 == 0:
        ds = dirs()
    d, d2 = rnd.choice(ds), rnd.choice(ds)
    p, p2 = os.path.join(d, rnd.choice(names)), os.path.join(d2, rnd.choice(names))
    op = rnd.choice(["create", "write", "write", "truncate", "rename",
                     "link", "unlink", "mkdir", "rmdir", "chmod", "xattr",
                     "symlink", "replace"])
    try:
        if op == "create":
            with open(p, "xb") as f:
                f.write(os.urandom(rnd.randrange(0, 5000)))
        elif op == "write":
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "r+b") as f:
                    f.seek(rnd.randrange(0, 70000))
                    f.write(os.urandom(rnd.randrange(1, 9000)))
            else:
                continue
        elif op == "truncate":
            if os.path.isfile(p) and not os.path.islink(p):
                os.truncate(p, rnd.randrange(0, 40000))
            else:
                continue
        elif op == "rename":
            os.rename(p, p2)
        elif op == "link":
            os.link(p, p2, follow_symlinks=False)
        elif op == "unlink":
            os.unlink(p)
        elif op == "mkdir":
            os.mkdir(p)
        elif op == "rmdir":
            os.rmdir(p)
        elif op == "chmod":
            if os.path.islink(p):
                continue
            os.chmod(p, rnd.choice([0o600, 0o644, 0o755]))
        elif op == "xattr":
            if os.path.islink(p):
                continue
            os.setxattr(p, rnd.choice(["user.a", "user.b"]),
                        rnd.choice([b"1", b"2", b"3"]), follow_symlinks=False)
        elif op == "symlink":
            os.symlink(rnd.choice(["t1", "t2"]), p)
        elif op == "replace":
            # how editors write: a temporary file renamed over the file
            tmp = os.path.join(d, ".tmp-%d" % i)
            with open(tmp, "wb") as f:
                f.write(os.urandom(rnd.randrange(0, 3000)))
            os.rename(tmp, p)
        done[op] = done.get(op, 0) + 1
    except OSError:
        pass
print(sum(done.values()), " ".join("%s=%d" % kv for kv in sorted(done.items())))
EOF

# brute.py VIEW_A VIEW_B DIFF_JSON DIFF_TEXT STAT_JSON: compare keepfs
# diff's answers with the differences of full listings of the two views,
# under the rules of keep.h; prints the problems, if any, and the kinds
cat >"$T/brute.py" <<'EOF'
import json, os, stat, sys

MASK = (1 << 40) - 1

def listing(root):
    objs = {}
    def obj(path, st):
        ino = st.st_ino & MASK
        if ino not in objs:
            o = {"st": st, "names": [], "xattrs": {}}
            try:
                for n in sorted(os.listxattr(path, follow_symlinks=False)):
                    o["xattrs"][n] = os.getxattr(path, n, follow_symlinks=False)
            except OSError:
                pass
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    o["data"] = f.read()
            elif stat.S_ISLNK(st.st_mode):
                o["data"] = os.fsencode(os.readlink(path))
            else:
                o["data"] = b""
            objs[ino] = o
        return objs[ino]
    obj(root, os.lstat(root))
    for d, subs, files in os.walk(root):
        pino = os.lstat(d).st_ino & MASK
        for n in subs + files:
            p = os.path.join(d, n)
            o = obj(p, os.lstat(p))
            o["names"].append((pino, n, os.path.relpath(p, root)))
    return objs

def change(x, y):
    a, b, c = x["st"], y["st"], set()
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        c.add("metadata")
    if not stat.S_ISDIR(a.st_mode) and (a.st_size, a.st_rdev, a.st_mtime_ns) != (
            b.st_size, b.st_rdev, b.st_mtime_ns):
        c.add("metadata")
    if x["data"] != y["data"]:
        c.add("content")
    if x["xattrs"] != y["xattrs"]:
        c.add("xattrs")
    return c

def size(o):
    return o["st"].st_size if stat.S_ISREG(o["st"].st_mode) else 0

def expected(A, B):
    recs, rem, add = [], [], []
    for ino in sorted(set(A) | set(B)):
        x, y = A.get(ino), B.get(ino)
        ch = change(x, y) if x and y else set()
        if ino == 1:
            if ch:
                recs.append(("modified", ".", ".", ino, ino, ch, size(x), size(y)))
            continue
        both = bool(x and y)
        bn = {(p, n): path for p, n, path in (y["names"] if y else [])}
        an = {(p, n): path for p, n, path in (x["names"] if x else [])}
        for k, path in an.items():
            if k in bn:
                if ch:
                    recs.append(("modified", path, bn[k], ino, ino, ch, size(x), size(y)))
            else:
                rem.append([ino, path, both, ch, False, x])
        for k, path in bn.items():
            if k not in an:
                add.append([ino, path, both, ch, False, y])
    by_path = {a[1]: a for a in add}
    for r in rem:
        a = by_path.get(r[1])
        if a and not a[4]:
            if r[0] != a[0]:
                recs.append(("modified", r[1], a[1], r[0], a[0], {"replaced"},
                             size(r[5]), size(a[5])))
            elif r[3]:
                recs.append(("modified", r[1], a[1], r[0], a[0], r[3],
                             size(r[5]), size(a[5])))
            r[4] = a[4] = True
    key = lambda e: (e[0], os.fsencode(e[1]))
    rem.sort(key=key)
    add.sort(key=key)
    for r in rem:
        if r[4] or not r[2]:
            continue
        for a in add:
            if not a[4] and a[2] and a[0] == r[0]:
                recs.append(("renamed", r[1], a[1], r[0], a[0], r[3],
                             size(r[5]), size(a[5])))
                r[4] = a[4] = True
                break
    for r in rem:
        if not r[4]:
            recs.append(("removed", r[1], None, r[0], 0,
                         {"link"} if r[2] else set(), size(r[5]), 0))
    for a in add:
        if not a[4]:
            recs.append(("added", None, a[1], 0, a[0],
                         {"link"} if a[2] else set(), 0, size(a[5])))
    order = {"added": "+", "removed": "-", "modified": "M", "renamed": "R"}
    recs.sort(key=lambda r: (os.fsencode(r[1] if r[0] == "removed" else r[2]),
                             order[r[0]]))
    return recs

def quote(p):
    if not any(c < " " or c in '"\\\x7f' for c in p) and " -> " not in p:
        return p
    esc = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\t": "\\t",
           "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r"}
    return '"' + "".join(esc.get(c, "\\%03o" % ord(c) if c < " " or c == "\x7f"
                                 else c) for c in p) + '"'

A, B = listing(sys.argv[1]), listing(sys.argv[2])
want = expected(A, B)
got = json.load(open(sys.argv[3]))
text = open(sys.argv[4], "rb").read().decode()
st = json.load(open(sys.argv[5]))
problems = []
conv = [(e["kind"], e.get("old_path", e["path"]) if e["kind"] != "added" else None,
         e["path"] if e["kind"] != "removed" else None,
         e.get("old_ino", 0), e.get("ino", 0), set(e["changes"]),
         e.get("old_size", 0) if e["kind"] != "added" else 0,
         e.get("size", 0) if e["kind"] != "removed" else 0)
        for e in got]
# the JSON's inode and size fields are the store's; compare what the
# listing can tell, with sizes of regular files only
def norm(r, objs_a, objs_b):
    k, pa, pb, ia, ib, ch, sa, sb = r
    return (k, pa, pb, ia, ib, tuple(sorted(ch)))
w = [norm(r, A, B) for r in want]
g = [norm(r, A, B) for r in conv]
if w != g:
    for i in range(max(len(w), len(g))):
        if i >= len(w) or i >= len(g) or w[i] != g[i]:
            problems.append("first difference at %d: got %r, want %r" % (
                i, g[i] if i < len(g) else None, w[i] if i < len(w) else None))
            break
    problems.append("%d changes, want %d" % (len(g), len(w)))
sym = {"added": "+", "removed": "-", "modified": "M", "renamed": "R"}
want_text = "".join(
    ("R %s -> %s\n" % (quote(r[1]), quote(r[2]))) if r[0] == "renamed" else
    ("%s %s\n" % (sym[r[0]], quote(r[1] if r[0] == "removed" else r[2])))
    for r in want)
if text != want_text:
    problems.append("text output differs")
cnt = {k: sum(1 for r in want if r[0] == k) for k in sym}
ba = sum(max(0, r[7] - r[6]) for r in want if "link" not in r[5])
br = sum(max(0, r[6] - r[7]) for r in want if "link" not in r[5])
want_stat = {"added": cnt["added"], "removed": cnt["removed"],
             "modified": cnt["modified"], "renamed": cnt["renamed"],
             "bytes_added": ba, "bytes_removed": br}
if st != want_stat:
    problems.append("stat %r, want %r" % (st, want_stat))
kinds = set(r[0] for r in want) | set("replaced" for r in want if "replaced" in r[5])
print(" ".join(sorted(kinds)))
for p in problems:
    print("PROBLEM", p)
EOF

# compare WHERE FROM TO DESC: keepfs diff against the brute force
compare() {
	local where=$1 from=$2 to=$3 desc=$4 out
	"$KEEPFS" diff "$where" "$from" "$to" --json >"$T/d.json" 2>"$T/d.err"
	"$KEEPFS" diff "$where" "$from" "$to" >"$T/d.txt" 2>>"$T/d.err"
	"$KEEPFS" diff "$where" "$from" "$to" --stat --json >"$T/d.stat" 2>>"$T/d.err"
	is "$(cat "$T/d.err")" "" "$desc: no messages"
	out=$(python3 "$T/brute.py" "$SD/$from" "$SD/$to" "$T/d.json" "$T/d.txt" \
		"$T/d.stat" 2>&1)
	if [[ "$out" == *PROBLEM* || "$out" == *Traceback* ]]; then
		fail "$desc: equals the brute force" "$out"
	else
		pass "$desc: equals the brute force ($out)"
	fi
	KINDS="$KINDS $out"
}

KINDS=
mkdir "$SD/s0"
ops=0
for i in 1 2 3; do
	out=$(python3 "$T/ops.py" "$M" "$i" 1100 2>&1)
	diag "round $i: $out"
	ops=$((ops + ${out%% *}))
	mkdir "$SD/s$i"
done
ok $((ops >= 1000 ? 0 : 1)) "at least 1,000 operations through the mount ($ops)"

compare "$M" s0 s1 "s0 to s1"
compare "$M" s1 s3 "s1 to s3"
compare "$M" s3 s0 "s3 back to s0"
compare "$M" s2 s2 "a snapshot against itself"
is "$(cat "$T/d.txt")" "" "a snapshot against itself: no lines"
for k in added removed modified renamed replaced; do
	like "$KINDS" "$k" "the operations made a change of the kind '$k'"
done
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/d.json"
ok $? "--json parses"

# the live tree is the newest commit: fsync makes one
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"fresh")
os.fsync(fd)' "$M/fresh-file"
run_is 0 "diff to the live tree" "$KEEPFS" diff "$M" s3
like "$KFS_OUT" $'(^|\n)\+ fresh-file($|\n)' "the fsynced file is in the live tree"
run_is 0 "diff by the store path while mounted" "$KEEPFS" diff "$S" s3
like "$KFS_OUT" $'(^|\n)\+ fresh-file($|\n)' "the same through the store path"
run_is 0 "@TIME as FROM" "$KEEPFS" diff "$M" "@$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"
is "$KFS_OUT" "" "@now to the live tree: nothing"

# bad input
fails() {
	local st=$1 desc=$2 re=$3
	shift 3
	run_is "$st" "$desc: exit status $st" "$@"
	like "$KFS_ERR" "^keepfs: " "$desc: message starts with 'keepfs: '"
	like "$KFS_ERR" "$re" "$desc: message says what is wrong"
	is "$KFS_OUT" "" "$desc: nothing on stdout"
}
fails 1 "unknown snapshot" "no snapshot 'nope' in '$S'" "$KEEPFS" diff "$M" nope
fails 1 "unknown TO" "no snapshot 'nope'" "$KEEPFS" diff "$M" s0 nope
fails 1 "malformed time" "'@yesterday' is not a time" "$KEEPFS" diff "$M" @yesterday
fails 1 "time before the first commit" "no commit at or before" \
	"$KEEPFS" diff "$M" @2000-01-01T00:00:00Z
fails 2 "no FROM" "missing FROM" "$KEEPFS" diff "$M"
fails 2 "no TARGET" "missing TARGET" "$KEEPFS" diff
fails 2 "too many arguments" "too many arguments" "$KEEPFS" diff "$M" s0 s1 s2
fails 2 "unknown option" "unknown option '--bogus'" "$KEEPFS" diff "$M" s0 --bogus
fails 1 "not a store" "" "$KEEPFS" diff "$T" s0

# unmounted: the same answers
"$KEEPFS" diff "$M" s0 s3 --json >"$T/mounted.json"
kfs_umount "$M"
run_is 0 "diff of the unmounted store" "$KEEPFS" diff "$S" s0 s3 --json
is "$KFS_OUT" "$(cat "$T/mounted.json")" "unmounted: the same as mounted"
kfs_fsck "$S"

done_testing
