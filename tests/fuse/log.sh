#!/bin/bash
# log.sh - keepfs log through a real mount: a sequence of atomic writes
# (temporary file + rename, as editors and MCP servers write) shows every
# version as a replacement of the same path, each @TIME naming exactly
# that version's bytes for cat and .snapshots; appends, chmod, xattrs,
# delete and re-create each make their kind of version; snapshots are
# listed with the versions they hold; --json; -p patches that rebuild
# every version from the one before and match GNU diff's count of
# changed lines; PATH alone from inside the mount, TARGET PATH mounted and
# not; bad input exits 1 or 2 with a message.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3 diff setfattr

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP

# write.py MODE PATH [TEXTFILE] [MODE PATH [TEXTFILE]]...: write each PATH
# durably, one after the other, as a careful program does.  atomic: a
# temporary file, fsync, rename over PATH, fsync the directory; append:
# O_APPEND and fsync; sync: only fsync PATH (a file or a directory).  Each
# fsync is a commit.  (One process for many writes: starting python costs
# more than the writes.)
cat >"$T/write.py" <<'EOF'
import os, sys
args = sys.argv[1:]
while args:
    mode, path = args[0], args[1]
    data = open(args[2], "rb").read() if mode != "sync" else b""
    args = args[3:] if mode != "sync" else args[2:]
    d = os.path.dirname(path) or "."
    if mode == "sync":
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    elif mode == "atomic":
        tmp = os.path.join(d, "." + os.path.basename(path) + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, path)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    dfd = os.open(d, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
EOF

# patches.py JSON [--minimal] FILE...: the patches of a "keepfs log -p
# --json" (newest first) against the versions FILE... (oldest first):
# each patch must turn the version before it (nothing, for the oldest)
# into its version; with --minimal, it must change as many lines as
# diff --minimal does.  Prints "ok" or the problems.
cat >"$T/patches.py" <<'EOF'
import json, re, subprocess, sys
args = sys.argv[2:]
minimal = args[:1] == ["--minimal"]
files = args[1:] if minimal else args
log = json.load(open(sys.argv[1]))
problems = []

def apply(old, patch):
    lines = patch.encode().splitlines(keepends=True)
    old = old.splitlines(keepends=True)
    out, pos, i = [], 0, 2 if lines and lines[0].startswith(b"--- ") else 0
    while i < len(lines):
        m = re.match(rb"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@\n", lines[i])
        if not m:
            raise ValueError("bad hunk header %r" % lines[i])
        start, count = int(m.group(1)), int(m.group(2) or 1)
        first = start - 1 if count else start
        out += old[pos:first]
        pos = first
        i += 1
        while i < len(lines) and not lines[i].startswith(b"@@"):
            tag, body = lines[i][:1], lines[i][1:]
            i += 1
            if i < len(lines) and lines[i].startswith(b"\\ No newline"):
                body = body[:-1]
                i += 1
            if tag in (b" ", b"-"):
                if pos >= len(old) or old[pos] != body:
                    raise ValueError("line %d does not match" % (pos + 1))
                pos += 1
            if tag in (b" ", b"+"):
                out.append(body)
    return b"".join(out + old[pos:])

if len(log) != len(files):
    problems.append("%d versions for %d files" % (len(log), len(files)))
for k, e in enumerate(log[:len(files)]):
    new = files[len(files) - 1 - k]
    old = files[len(files) - 2 - k] if k < len(files) - 1 else None
    before = open(old, "rb").read() if old else b""
    try:
        got = apply(before, e["patch"] or "")
    except ValueError as x:
        problems.append("patch %d: %s" % (k, x))
        continue
    if got != open(new, "rb").read():
        problems.append("patch %d does not rebuild %s" % (k, new))
    if minimal and old:
        ours = sum(1 for l in (e["patch"] or "").splitlines()[2:] if l[:1] in "+-")
        gnu = subprocess.run(["diff", "--minimal", "-u", old, new], stdout=subprocess.PIPE).stdout
        theirs = sum(1 for l in gnu.splitlines()[2:] if l[:1] in (b"+", b"-"))
        if ours != theirs:
            problems.append("patch %d: %d changed lines, diff --minimal has %d" % (k, ours, theirs))
print("; ".join(problems) or "ok")
EOF

# --- atomic writes -------------------------------------------------------------------
N=8
for ((i = 0; i < N; i++)); do
	{
		printf '{\n  "mcpServers": {\n'
		printf '    "memory": {"command": "npx", "args": ["server-memory"]},\n'
		printf '    "fetch": {"timeout": %d}\n' "$((i * 10))"
		printf '  },\n  "revision": %d\n}\n' "$i"
	} >"$T/want.$i"
done
python3 "$T/write.py" atomic "$M/mcp.json" "$T/want.0" atomic "$M/mcp.json" "$T/want.1" \
	atomic "$M/mcp.json" "$T/want.2" atomic "$M/mcp.json" "$T/want.3" || bail_out "atomic writes failed"
run_ok "snapshot after the fourth write" "$KEEPFS" snapshot "$M" fourth
python3 "$T/write.py" atomic "$M/mcp.json" "$T/want.4" atomic "$M/mcp.json" "$T/want.5" \
	atomic "$M/mcp.json" "$T/want.6" atomic "$M/mcp.json" "$T/want.7" || bail_out "atomic writes failed"
run_ok "log of the path" "$KEEPFS" log "$M/mcp.json"
is "$(wc -l <<<"$KFS_OUT")" "$N" "one line per atomic write"
is "$(awk '{print $2}' <<<"$KFS_OUT" | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
	"created=1 replaced=$((N - 1)) " "the first is created, every later one replaced"
is "$(tail -n 1 <<<"$KFS_OUT" | awk '{print $2}')" "created" "the oldest comes last"
like "$(sed -n "$((N - 3))p" <<<"$KFS_OUT")" "replaced +[0-9]+ B  snapshots: fourth\$" \
	"the snapshot is listed with the version it holds"
is "$(grep -c snapshots <<<"$KFS_OUT")" "1" "and with no other"
mapfile -t VERS < <(awk '{print $1}' <<<"$KFS_OUT")
bad=0
for ((k = 0; k < N; k++)); do
	want=$T/want.$((N - 1 - k))
	"$KEEPFS" cat "$M" "${VERS[$k]}" mcp.json >"$T/got" 2>&1 || bad=1
	cmp -s "$T/got" "$want" || { bad=1; diag "cat ${VERS[$k]}: $(diff "$T/got" "$want" | head -5)"; }
	cmp -s "$M/.snapshots/${VERS[$k]}/mcp.json" "$want" ||
		{ bad=1; diag ".snapshots/${VERS[$k]} differs"; }
	size=$(stat -c %s "$want")
	[[ "$(sed -n "$((k + 1))p" <<<"$KFS_OUT")" =~ \ $size\ B ]] || { bad=1; diag "line $((k + 1)) lacks size $size"; }
done
is "$bad" 0 "each @TIME names exactly its version's bytes, in cat and in .snapshots"

# the same through --json
run_ok "log --json" "$KEEPFS" log --json "$M/mcp.json"
printf '%s' "$KFS_OUT" >"$T/log.json"
is "$(python3 - "$T/log.json" "$T" "$N" <<'EOF'
import json, os, sys
v = json.load(open(sys.argv[1]))
t, n = sys.argv[2], int(sys.argv[3])
problems = []
if len(v) != n:
    problems.append("%d versions" % len(v))
for k, e in enumerate(v):
    want = open(os.path.join(t, "want.%d" % (n - 1 - k)), "rb").read()
    if e["size"] != len(want) or e["type"] != "file":
        problems.append("version %d: size %r type %r" % (k, e["size"], e["type"]))
    last = k == len(v) - 1
    if e["change"] != ("created" if last else "replaced"):
        problems.append("version %d: change %r" % (k, e["change"]))
    if not last:
        if e["old_ino"] != v[k + 1]["ino"] or "replaced" not in e["changes"] or "content" not in e["changes"]:
            problems.append("version %d: old_ino %r changes %r" % (k, e.get("old_ino"), e["changes"]))
        if not e["commit"] > v[k + 1]["commit"] or not e["time"] > v[k + 1]["time"]:
            problems.append("version %d: not newer than the next" % k)
    if not e["version"].startswith("@"):
        problems.append("version %d: name %r" % (k, e["version"]))
if v[n - 4]["snapshots"] != ["fourth"] or sum(len(e["snapshots"]) for e in v) != 1:
    problems.append("snapshots %r" % [e["snapshots"] for e in v])
print("; ".join(problems) or "ok")
EOF
)" "ok" "--json: every version with its size, change, inode, commit and snapshots"
is "$(python3 -c 'import json,sys; print(" ".join(e["version"] for e in json.load(open(sys.argv[1]))))' "$T/log.json")" \
	"${VERS[*]}" "--json names the versions as the text does"

# -p: each patch rebuilds its version from the one before
run_ok "log -p" "$KEEPFS" log -p --json "$M/mcp.json"
printf '%s' "$KFS_OUT" >"$T/logp.json"
is "$(python3 "$T/patches.py" "$T/logp.json" "$T"/want.{0..7})" "ok" \
	"-p: every patch turns the version before into this one"
python3 -c 'import json,sys
for k, e in enumerate(json.load(open(sys.argv[1]))):
    open("%s.%d" % (sys.argv[2], k), "w").write(e["patch"])' "$T/logp.json" "$T/patch"
diff -u "$T/want.2" "$T/want.3" | tail -n +3 >"$T/gnu"
tail -n +3 "$T/patch.$((N - 4))" >"$T/ours"
if cmp -s "$T/gnu" "$T/ours"; then pass "-p: the hunks are GNU diff -u's"; else fail "-p: the hunks are GNU diff -u's" "$(diff "$T/gnu" "$T/ours")"; fi
is "$(head -n 2 "$T/patch.$((N - 1))")" $'--- /dev/null\n+++ b/mcp.json' "-p: a created file is diffed against nothing"
run_ok "log -p, text" "$KEEPFS" log -p "$M/mcp.json"
like "$KFS_OUT" $'replaced +[0-9]+ B\n--- a/mcp.json\n\\+\\+\\+ b/mcp.json\n@@ -[0-9]+,[0-9]+ \\+[0-9]+,[0-9]+ @@' \
	"-p in text: each version line is followed by its patch"

# --- the other kinds of version -----------------------------------------------------
mkdir "$M/memory"
: >"$T/lines"
args=()
for ((i = 0; i < 4; i++)); do
	printf '{"type": "entity", "name": "e%d"}\n' "$i" >"$T/line.$i"
	cat "$T/line.$i" >>"$T/lines"
	cp "$T/lines" "$T/jsonl.$i"
	args+=(append "$M/memory/graph.jsonl" "$T/line.$i")
done
python3 "$T/write.py" "${args[@]}"
chmod 600 "$M/memory/graph.jsonl"
python3 "$T/write.py" sync "$M/memory/graph.jsonl"
setfattr -n user.origin -v agent "$M/memory/graph.jsonl"
python3 "$T/write.py" sync "$M/memory/graph.jsonl"
rm "$M/memory/graph.jsonl"
python3 "$T/write.py" sync "$M/memory"
printf 'fresh\n' >"$T/line"
python3 "$T/write.py" append "$M/memory/graph.jsonl" "$T/line"
run_ok "log of a JSONL file" "$KEEPFS" log "$M/memory/graph.jsonl"
is "$(awk '{print $2}' <<<"$KFS_OUT" | tr '\n' ' ')" \
	"created deleted xattrs metadata modified modified modified created " \
	"appends, chmod, xattr, delete and re-create: each its kind, newest first"
L=$(stat -c %s "$T/jsonl.0")
is "$(awk '{print $3 $4}' <<<"$KFS_OUT" | tr '\n' ' ')" \
	"6B - $((4 * L))B $((4 * L))B $((4 * L))B $((3 * L))B $((2 * L))B ${L}B " \
	"sizes (a deleted path has none)"
run_ok "log -p of the JSONL file" "$KEEPFS" log -p "$M/memory/graph.jsonl"
is "$(grep -c '^+{"type": "entity"' <<<"$KFS_OUT")" "4" "-p: each append shows its one new line"
is "$(grep -c '^-{"type": "entity"' <<<"$KFS_OUT")" "4" "-p: the deletion shows the lines that went"
like "$KFS_OUT" "metadata +$((4 * L)) B"$'\n@' "-p: a metadata change has no patch"

# PATH alone: relative to the current directory inside the mount
run_ok "log from inside the mount" bash -c "cd '$M/memory' && '$KEEPFS' log graph.jsonl"
A=$KFS_OUT
run_ok "log TARGET PATH" "$KEEPFS" log "$M" memory/graph.jsonl
is "$KFS_OUT" "$A" "PATH alone and TARGET PATH give the same"
run_ok "log STORE /PATH" "$KEEPFS" log "$S" /memory/graph.jsonl
is "$KFS_OUT" "$A" "the store path works while mounted"
ln -s mcp.json "$M/link"
python3 "$T/write.py" sync "$M"
run_ok "log of a symbolic link" "$KEEPFS" log "$M/link"
like "$KFS_OUT" '^@[-0-9T:.]+Z  created +symlink$' "the link itself, not what it points to"
run_ok "log of the root" "$KEEPFS" log "$M"
like "$KFS_OUT" 'created +directory' "the root has a history too"
run_ok "a deleted directory's file" bash -c "rm -rf '$M/memory' && sync '$M' && '$KEEPFS' log '$M/memory/graph.jsonl'"
is "$(head -n 1 <<<"$KFS_OUT" | awk '{print $2}')" "deleted" "a path that is gone still has its history"

# --- errors ---------------------------------------------------------------------------
fails 2 "no PATH" "missing PATH" "$KEEPFS" log
fails 2 "too many arguments" "too many arguments" "$KEEPFS" log "$M" a b
fails 2 "unknown option" "" "$KEEPFS" log --bogus "$M/mcp.json"
fails 1 "a path outside any mount" "'/tmp' is not inside a mounted keepfs file system" "$KEEPFS" log /tmp
fails 1 "a path never committed" "'never/there' has no versions in '$S'" "$KEEPFS" log "$M" never/there
fails 1 "a path in .snapshots" "'.snapshots/fourth/mcp.json' is inside .snapshots" \
	"$KEEPFS" log "$M/.snapshots/fourth/mcp.json"
fails 1 "'..' in PATH" "'a/../mcp.json': '.' and '..' are not allowed" "$KEEPFS" log "$M" a/../mcp.json
fails 1 "an unknown TARGET" "" "$KEEPFS" log "$T/nothing" mcp.json

# --- not mounted ------------------------------------------------------------------------
run_ok "log -p --json while mounted" "$KEEPFS" log -p --json "$M" mcp.json
B=$KFS_OUT
kfs_umount "$M" || bail_out "unmount failed"
run_ok "log -p --json of the unmounted store" "$KEEPFS" log -p --json "$S" mcp.json
is "$KFS_OUT" "$B" "the same history without the mount"
fails 1 "PATH alone, unmounted" "'$M/mcp.json' is not inside a mounted keepfs file system" \
	"$KEEPFS" log "$M/mcp.json"

# --- patches against GNU diff on random texts ---------------------------------------
# versions made of few distinct lines, so lines match in many ways; the
# rebuilt text must be exact and the changed-line count minimal (that of
# diff --minimal)
python3 - "$T" <<'EOF'
import random, sys
t, r = sys.argv[1], random.Random(5)
words = [b"alpha\n", b"beta\n", b"gamma\n", b"delta\n", b"{\n", b"}\n"]
text = [r.choice(words) for _ in range(60)]
for i in range(25):
    for _ in range(r.randint(1, 12)):
        op, at = r.random(), r.randrange(len(text) + 1)
        if op < 0.4:
            text.insert(at, r.choice(words))
        elif op < 0.8 and text:
            del text[min(at, len(text) - 1)]
        elif text:
            text[min(at, len(text) - 1)] = r.choice(words)
    data = b"".join(text)
    if i % 5 == 4:
        data = data.rstrip(b"\n")  # no newline at the end, sometimes
    open("%s/rand.%d" % (t, i), "wb").write(data)
EOF
kfs_mount "$S" "$M" || bail_out "remount failed"
args=()
for ((i = 0; i < 25; i++)); do
	args+=(atomic "$M/rand.txt" "$T/rand.$i")
done
python3 "$T/write.py" "${args[@]}" || bail_out "writing the random texts failed"
run_ok "log -p of random texts" "$KEEPFS" log -p --json "$M/rand.txt"
printf '%s' "$KFS_OUT" >"$T/rand.json"
is "$(python3 "$T/patches.py" "$T/rand.json" --minimal "$T"/rand.{0..24})" "ok" \
	"25 random patches rebuild their texts with as few changed lines as diff --minimal"

kfs_umount "$M" || bail_out "unmount failed"
kfs_fsck "$S"
done_testing
