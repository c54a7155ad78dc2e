#!/bin/bash
# snap-cli.sh - keepfs snapshot, delete, rename and list, on a mounted
# store and on one that is not mounted: the CLI and the .snapshots
# directory agree; list --json holds exact counts; every bad input exits
# with its status, says what is wrong and changes nothing; a snapshot holds
# data still in the kernel's writeback cache; snapshots survive a remount.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP
SD=$M/.snapshots
ISO='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

# names TARGET: snapshot names from keepfs list --json, one a line
names() {
	"$KEEPFS" list "$1" --json |
		python3 -c 'import json, sys; [print(s["name"]) for s in json.load(sys.stdin)]'
}

# field TARGET NAME KEY: one field of one snapshot from list --json
field() {
	"$KEEPFS" list "$1" --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["name"] == sys.argv[1]:
        print(s[sys.argv[2]])' "$2" "$3"
}

# dir_names: the entries of .snapshots in directory order
dir_names() { ls -1U "$SD"; }

# state TARGET: everything list shows, to compare before and after
state() { "$KEEPFS" list "$1" --json 2>&1; }

# fails STATUS DESC REGEX CMD...: exit status, a "keepfs: " message
# matching REGEX, nothing on stdout
fails() {
	local st=$1 desc=$2 re=$3
	shift 3
	run_is "$st" "$desc: exit status $st" "$@"
	like "$KFS_ERR" "^keepfs: " "$desc: message starts with 'keepfs: '"
	[ -n "$re" ] && like "$KFS_ERR" "$re" "$desc: message says what is wrong"
	is "$KFS_OUT" "" "$desc: nothing on stdout"
}

LONG255=$(printf 'L%.0s' $(seq 1 255))
LONG256=${LONG255}X

# bad_input TARGET WHERE: every bad input fails and changes nothing
# (needs the snapshots "first" and "second" in TARGET)
bad_input() {
	local t=$1 w=$2 before before_dir=
	before=$(state "$t")
	[ -d "$SD" ] && before_dir=$(dir_names)
	fails 1 "$w: snapshot with a name that exists" "snapshot 'first' already exists" \
		"$KEEPFS" snapshot "$t" first
	fails 1 "$w: snapshot named @x" "snapshot name '@x' must not start with '@' \(that prefix names a point in time\)" \
		"$KEEPFS" snapshot "$t" @x
	fails 1 "$w: snapshot with an empty name" "must not be empty" "$KEEPFS" snapshot "$t" ""
	fails 1 "$w: snapshot named ." "'\.' cannot be a snapshot name" "$KEEPFS" snapshot "$t" .
	fails 1 "$w: snapshot named .." "'\.\.' cannot be a snapshot name" "$KEEPFS" snapshot "$t" ..
	fails 1 "$w: snapshot name with a slash" "'a/b' must not contain '/'" "$KEEPFS" snapshot "$t" a/b
	fails 1 "$w: snapshot name of 256 bytes" "256 bytes long; at most 255" "$KEEPFS" snapshot "$t" "$LONG256"
	fails 1 "$w: delete a missing snapshot" "no snapshot 'nope' in '$S' \(see 'keepfs list'\)" \
		"$KEEPFS" delete "$t" nope
	fails 1 "$w: delete two present and two missing" "no snapshots 'nope', 'nada' in '$S'.*nothing was deleted" \
		"$KEEPFS" delete "$t" first nope second nada
	fails 1 "$w: delete with a bad name" "must not start with '@'" "$KEEPFS" delete "$t" first @x
	fails 1 "$w: rename a missing snapshot" "no snapshot 'nope' in '$S'" "$KEEPFS" rename "$t" nope other
	fails 1 "$w: rename onto an existing one" "snapshot 'second' already exists" \
		"$KEEPFS" rename "$t" first second
	fails 1 "$w: rename to a bad name" "must not start with '@'" "$KEEPFS" rename "$t" first @x
	fails 1 "$w: rename to a too long name" "256 bytes long" "$KEEPFS" rename "$t" first "$LONG256"
	fails 2 "$w: snapshot with no target" "missing TARGET" "$KEEPFS" snapshot
	fails 2 "$w: snapshot with an extra argument" "too many arguments" "$KEEPFS" snapshot "$t" a b
	fails 2 "$w: snapshot with an unknown option" "unknown option '--bogus'" "$KEEPFS" snapshot "$t" --bogus
	fails 2 "$w: delete with no name" "missing NAME" "$KEEPFS" delete "$t"
	fails 2 "$w: delete with an unknown option" "unknown option '-x'" "$KEEPFS" delete "$t" -x first
	fails 2 "$w: rename with one name" "missing NEW" "$KEEPFS" rename "$t" first
	fails 2 "$w: rename with three names" "too many arguments" "$KEEPFS" rename "$t" first a b
	fails 2 "$w: list with an extra argument" "too many arguments" "$KEEPFS" list "$t" extra
	fails 2 "$w: list with an unknown option" "unknown option '--frob'" "$KEEPFS" list "$t" --frob
	fails 1 "$w: snapshot of a directory that is not a store" "'$T/plain'" "$KEEPFS" snapshot "$T/plain" x
	fails 1 "$w: list of a missing store" "'$T/missing' does not exist" "$KEEPFS" list "$T/missing"
	is "$(state "$t")" "$before" "$w: after all that, list shows the same"
	if [ -n "$before_dir" ]; then
		is "$(dir_names)" "$before_dir" "$w: .snapshots shows the same"
	fi
}
mkdir "$T/plain"

# --- help ---------------------------------------------------------------------
run_ok "keepfs --help" "$KEEPFS" --help
for c in snapshot delete rename list; do
	like "$KFS_OUT" "   $c " "keepfs --help lists '$c'"
done
for c in snapshot delete rename list; do
	run_ok "keepfs $c --help" "$KEEPFS" "$c" --help
	like "$KFS_OUT" "^usage: keepfs $c " "keepfs $c --help shows its usage"
done
run_ok "keepfs help list" "$KEEPFS" help list
like "$KFS_OUT" "^usage: keepfs list " "keepfs help list shows its usage"

# --- an empty store -------------------------------------------------------------
run_ok "list of a store without snapshots" "$KEEPFS" list "$M"
is "$KFS_OUT" "no snapshots in '$S'" "it says there are none"
is "$(state "$M")" "[]" "list --json is an empty array"

# --- a tree with known counts -------------------------------------------------------
head -c 1000 /dev/urandom >"$M/a"
mkdir -p "$M/dir/sub" "$M/dir2"
head -c 2345 /dev/urandom >"$M/dir/sub/b"
: >"$M/dir/empty"
ln -s a "$M/link"
mkfifo "$M/dir/fifo"
A1=$(md5sum <"$M/a")

t0=$(date +%s)
run_ok "snapshot 'first' (mounted, by mount point)" "$KEEPFS" snapshot "$M" first
t1=$(date +%s)
is "$KFS_OUT" "first" "snapshot prints the name it made"
is "$(dir_names)" "first" "ls .snapshots shows it"
is "$(md5sum <"$SD/first/a")" "$A1" "its file reads back"

# change the tree: a grows to 1500, c appears
head -c 500 /dev/urandom >>"$M/a"
printf '0123456789' >"$M/c"
run_ok "snapshot 'second' (mounted, by store path)" "$KEEPFS" snapshot "$S" second
is "$KFS_OUT" "second" "snapshot prints the name it made"
is "$(dir_names | tr '\n' ' ')" "first second " ".snapshots lists both in creation order"

# exact numbers through --json
run_ok "list --json" "$KEEPFS" list "$M" --json
printf '%s' "$KFS_OUT" >"$T/list.json"
is "$(python3 - "$T/list.json" "$t0" "$t1" <<'EOF'
import json, sys, datetime
rows = json.load(open(sys.argv[1]))
t0, t1 = int(sys.argv[2]), int(sys.argv[3])
want = {"first": (3, 3345), "second": (4, 3855)}
out = []
keys = ["name", "time", "created_ns", "origin", "commit", "files", "logical_bytes", "frees_bytes"]
for r in rows:
    if sorted(r) != sorted(keys):
        out.append("keys %s" % sorted(r))
    f, b = want[r["name"]]
    if (r["files"], r["logical_bytes"]) != (f, b):
        out.append("%s: files %d bytes %d" % (r["name"], r["files"], r["logical_bytes"]))
    if r["frees_bytes"] != 0:  # both inside the journal window
        out.append("%s: frees %d" % (r["name"], r["frees_bytes"]))
    if r["origin"] != "manual":
        out.append("%s: origin %s" % (r["name"], r["origin"]))
    t = datetime.datetime.fromtimestamp(r["created_ns"] // 10**9, datetime.timezone.utc)
    if r["time"] != t.strftime("%Y-%m-%dT%H:%M:%SZ"):
        out.append("%s: time %s vs created_ns %d" % (r["name"], r["time"], r["created_ns"]))
    if not isinstance(r["commit"], int) or r["commit"] <= 0:
        out.append("%s: commit %r" % (r["name"], r["commit"]))
if [r["name"] for r in rows] != ["first", "second"]:
    out.append("names %s" % [r["name"] for r in rows])
elif not (t0 <= rows[0]["created_ns"] // 10**9 <= t1):
    out.append("first made at %d, not in [%d, %d]" % (rows[0]["created_ns"] // 10**9, t0, t1))
elif rows[0]["commit"] >= rows[1]["commit"]:
    out.append("commits %d, %d" % (rows[0]["commit"], rows[1]["commit"]))
print("\n".join(out) or "exact")
EOF
)" "exact" "list --json: keys, files, logical bytes, origin, time, commits"

# the human table: a header and aligned columns
run_ok "list (table)" "$KEEPFS" list "$M"
like "$(head -n 1 <<<"$KFS_OUT")" "^NAME +CREATED +ORIGIN +FILES +SIZE +COMMIT +FREES$" "the table has a header"
is "$(wc -l <<<"$KFS_OUT")" 3 "a header and one row per snapshot"
like "$(sed -n 2p <<<"$KFS_OUT")" "^first +[0-9T:-]+Z +manual +3 +3\.3 KiB +[0-9]+ +0 B$" "the row of 'first'"
is "$(awk '{ print length($0) }' <<<"$KFS_OUT" | sort -u | wc -l)" 1 "every line is as long (columns aligned)"

# --- list --commits -------------------------------------------------------------------
run_ok "list --commits --json" "$KEEPFS" list --commits "$M" --json
printf '%s' "$KFS_OUT" >"$T/commits.json"
is "$(python3 - "$T/list.json" "$T/commits.json" <<'EOF'
import json, sys, re
snaps = json.load(open(sys.argv[1]))
commits = json.load(open(sys.argv[2]))
out = []
ids = [c["commit"] for c in commits]
if not ids or ids != sorted(set(ids)):
    out.append("ids not ascending: %s" % ids)
for c in commits:
    if sorted(c) != ["commit", "snapshots", "time", "time_ns"]:
        out.append("keys %s" % sorted(c))
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", c["time"]):
        out.append("time %s" % c["time"])
    want = [s["name"] for s in snaps if s["commit"] == c["commit"]]
    if c["snapshots"] != want:
        out.append("commit %d: snapshots %s, want %s" % (c["commit"], c["snapshots"], want))
for s in snaps:
    if s["commit"] not in ids:
        out.append("commit of %s not listed" % s["name"])
print("\n".join(out) or "agree")
EOF
)" "agree" "list --commits: every commit once, ascending, with the snapshots that keep it"
run_ok "list --commits (table)" "$KEEPFS" list "$M" --commits
like "$(head -n 1 <<<"$KFS_OUT")" "^ *COMMIT +TIME +SNAPSHOTS$" "the commit table has a header"
like "$KFS_OUT" "$(field "$M" first commit) +[0-9T:-]+Z +first" "the commit of 'first' names it"

# --- default name ------------------------------------------------------------------------
b=$(date -u +%s)
run_ok "snapshot without a name" "$KEEPFS" snapshot "$M"
e=$(date -u +%s)
DEF=$KFS_OUT
like "$DEF" "$ISO" "the default name is the UTC time"
ts=$(date -u -d "$DEF" +%s 2>/dev/null || echo 0)
check "the default name is the time it was made" test "$ts" -ge "$b" -a "$ts" -le "$e"
check "ls .snapshots shows the default-named one" test -d "$SD/$DEF"
run_ok "delete it" "$KEEPFS" delete "$M" "$DEF"
check_not "it is gone from .snapshots" test -e "$SD/$DEF"

# --- the three ways agree --------------------------------------------------------------------
check "mkdir .snapshots/by-mkdir" mkdir "$SD/by-mkdir"
is "$(names "$M" | tr '\n' ' ')" "first second by-mkdir " "keepfs list shows the one made by mkdir"
is "$(field "$M" by-mkdir files)" 4 "it holds the tree (files)"
run_ok "keepfs delete the one made by mkdir" "$KEEPFS" delete "$M" by-mkdir
check_not "gone from .snapshots" test -e "$SD/by-mkdir"
is "$(names "$M" | tr '\n' ' ')" "first second " "gone from keepfs list"

run_ok "keepfs snapshot 'by-cli'" "$KEEPFS" snapshot "$M" by-cli
check "rmdir .snapshots/by-cli" rmdir "$SD/by-cli"
is "$(names "$M" | tr '\n' ' ')" "first second " "keepfs list agrees"

run_ok "keepfs rename first -> renamed" "$KEEPFS" rename "$M" first renamed
is "$(dir_names | tr '\n' ' ')" "renamed second " ".snapshots shows the new name in the old place"
is "$(md5sum <"$SD/renamed/a")" "$A1" "the renamed snapshot holds the same tree"
check "mv .snapshots/renamed .snapshots/first" mv "$SD/renamed" "$SD/first"
is "$(names "$M" | tr '\n' ' ')" "first second " "keepfs list shows the mv"
run_ok "rename to its own name" "$KEEPFS" rename "$M" first first
is "$(names "$M" | tr '\n' ' ')" "first second " "renaming to its own name changes nothing"

run_ok "a 255-byte name" "$KEEPFS" snapshot "$M" "$LONG255"
check "it is in .snapshots" test -d "$SD/$LONG255"
run_ok "delete a name given twice, and the 255-byte one" "$KEEPFS" delete "$M" "$LONG255" "$LONG255"
is "$(names "$M" | tr '\n' ' ')" "first second " "the 255-byte one is gone"

check_not "mkdir of a name that exists fails" mkdir "$SD/first"
is "$(names "$M" | tr '\n' ' ')" "first second " "and changes nothing"

# --- data in the kernel's writeback cache ----------------------------------------------------
# A closed file: close() sent its pages to the daemon, which has not
# committed them.  An open file and a shared mapping, written by a process
# that keeps them open: a close (of any copy of the descriptor) would make
# the kernel send the pages, so nothing has left the kernel's cache when
# the snapshot is asked for; the daemon has to fetch them.
cat >"$T/holder.py" <<'EOF_PY'
import mmap, os, sys, time
path, mpath, ready = sys.argv[1:4]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
os.write(fd, b"still open, never synced\n" + bytes(range(256)) * 1200)
mfd = os.open(mpath, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
os.ftruncate(mfd, 65536)
m = mmap.mmap(mfd, 65536)
m[:] = b"mapped, dirty, never synced\n".ljust(65536, b"m")
open(ready, "w").close()
time.sleep(600)
EOF_PY
HOLDER=
trap '_rc=$?; [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null; (exit $_rc); _kfs_cleanup' EXIT
printf 'written just before: %s\n' "$RANDOM$RANDOM" >"$M/wb-closed"
printf 'appended\n' >>"$M/a"
python3 "$T/holder.py" "$M/wb-open" "$M/wb-mapped" "$T/ready" &
HOLDER=$!
for _ in $(seq 1 200); do
	[ -e "$T/ready" ] && break
	sleep 0.05
done
check "the writer holds its files open" test -e "$T/ready"
run_ok "snapshot right after the writes, no sync" "$KEEPFS" snapshot "$M" writeback
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
HOLDER=
WB1=$(md5sum <"$M/wb-closed")
WB2=$(md5sum <"$M/wb-open")
WB3=$(md5sum <"$M/wb-mapped")
A2=$(md5sum <"$M/a")
is "$(stat -c %s "$M/wb-open")" 307225 "the open file's whole size"
is "$(head -c 27 "$M/wb-mapped")" "mapped, dirty, never synced" "the mapped file's content"
is "$(md5sum <"$SD/writeback/wb-closed" 2>&1)" "$WB1" "the snapshot holds the closed file"
is "$(md5sum <"$SD/writeback/wb-open" 2>&1)" "$WB2" "the snapshot holds what the still-open file had"
is "$(md5sum <"$SD/writeback/wb-mapped" 2>&1)" "$WB3" "the snapshot holds the dirty mapping"
is "$(md5sum <"$SD/writeback/a" 2>&1)" "$A2" "the snapshot holds the append"

# the same through the store path, with a burst of small files
for i in $(seq 1 50); do printf 'file %d\n' "$i" >"$M/dir/n$i"; done
run_ok "snapshot by store path right after 50 small files" "$KEEPFS" snapshot "$S" burst
is "$(cat "$SD/burst/dir/n50" 2>&1)" "file 50" "the last small file is there"
is "$(field "$M" burst files)" 57 "all 57 files are counted"

# read-only mount: the kernel refuses, nothing changes
kfs_umount "$M"
kfs_mount "$S" "$M" ro
ok $? "mount read-only"
before=$(state "$M")
fails 1 "snapshot on a read-only mount" "'$M' is mounted read-only" "$KEEPFS" snapshot "$M" ro-snap
fails 1 "delete on a read-only mount" "'$M' is mounted read-only" "$KEEPFS" delete "$M" first
fails 1 "rename on a read-only mount" "'$M' is mounted read-only" "$KEEPFS" rename "$M" first x
is "$(state "$M")" "$before" "the read-only mount changed nothing"
kfs_umount "$M"
kfs_mount "$S" "$M"
ok $? "mount read-write again"

bad_input "$M" "mounted"

# --- not mounted -------------------------------------------------------------------------------
kfs_umount "$M"
bad_input "$S" "not mounted"
is "$(names "$S" | tr '\n' ' ')" "first second writeback burst " "the snapshots survived the unmount"
run_ok "snapshot (not mounted)" "$KEEPFS" snapshot "$S" offline
is "$KFS_OUT" offline "it prints the name"
run_ok "snapshot without a name (not mounted)" "$KEEPFS" snapshot "$S"
like "$KFS_OUT" "$ISO" "the default name is the UTC time"
OFFDEF=$KFS_OUT
run_ok "another, with nothing changed (not mounted)" "$KEEPFS" snapshot "$S" offline-same
is "$(field "$S" offline-same commit)" "$(field "$S" offline commit)" "it keeps the same commit"
is "$(field "$S" offline-same files) $(field "$S" offline-same logical_bytes)" \
	"$(field "$S" burst files) $(field "$S" burst logical_bytes)" "and the same files and bytes as 'burst'"
run_ok "rename (not mounted)" "$KEEPFS" rename "$S" offline offline2
run_ok "delete two (not mounted)" "$KEEPFS" delete "$S" "$OFFDEF" offline-same
is "$(names "$S" | tr '\n' ' ')" "first second writeback burst offline2 " "list (not mounted) shows the changes"
is "$(field "$S" offline2 files)" 57 "offline2 holds the tree"
run_ok "list --commits (not mounted)" "$KEEPFS" list --commits "$S"
like "$KFS_OUT" "offline2" "list --commits names offline2"

# --- mounted again -------------------------------------------------------------------------
kfs_mount "$S" "$M"
ok $? "mount again"
is "$(dir_names | tr '\n' ' ')" "first second writeback burst offline2 " ".snapshots shows all, in creation order"
is "$(md5sum <"$SD/first/a" 2>&1)" "$A1" "'first' still holds its tree"
is "$(md5sum <"$SD/writeback/wb-open" 2>&1)" "$WB2" "'writeback' still holds the open file"
is "$(cat "$SD/offline2/dir/n7" 2>&1)" "file 7" "'offline2' (made while not mounted) holds the tree"
run_ok "delete through the mount: offline2 and first" "$KEEPFS" delete "$M" offline2 first
is "$(dir_names | tr '\n' ' ')" "second writeback burst " ".snapshots agrees at once"
kfs_umount "$M"
is "$(names "$S" | tr '\n' ' ')" "second writeback burst " "and so does the store"
kfs_fsck "$S"
done_testing
