#!/bin/bash
# send.sh - keepfs send, receive and promote through real mounts: a full
# stream and ten incremental ones of a changing tree (files, renames,
# deletes, hard links, xattrs, holes, a SQLite database under writes) make
# a replica whose every snapshot, mounted read-only, lists exactly as the
# source's; the same stream twice is harmless; damaged, cut, foreign,
# out-of-order streams and a full disk (for a new replica and an existing
# one) change nothing; an encrypted
# store's replica holds no plaintext and mounts with the source's key; a
# lost store is brought back from its replica (promote).
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3
require_cmd sqlite3
. "$KFS_TESTS/fuse/tree.sh"

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP
R=$T/replica
RM=$T/rmnt
SD=$M/.snapshots

# xfer FROM|- SNAP: send SNAP (from FROM) into the replica; KFS_OUT etc.
xfer() {
	local args=(send "$M" "$2")
	[ "$1" != - ] && args+=(--from "$1")
	"$KEEPFS" "${args[@]}" -o "$T/stream" 2>"$T/send.err" || {
		cat "$T/send.err"
		return 1
	}
	"$KEEPFS" receive "$R" -i "$T/stream"
	local rc=$?
	rm -f "$T/stream"
	return $rc
}
state_of() { "$KEEPFS" list "$R" --commits; "$KEEPFS" list "$R"; }

# ---- a SQLite database written to all along -----------------------------------
cat >"$T/dbwriter.py" <<'EOF'
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS t(i INTEGER PRIMARY KEY, v TEXT)")
i = 0
while not os.path.exists(sys.argv[2]):
    db.execute("BEGIN")
    db.execute("INSERT INTO t(v) VALUES (?)", ("x" * (i % 300),))
    db.execute("DELETE FROM t WHERE i % 7 = 0 AND i < ?", (i - 50,))
    db.execute("COMMIT")
    i += 1
    time.sleep(0.01)
EOF
python3 "$T/dbwriter.py" "$M/app.sqlite" "$T/stop-db" &
DBPID=$!
kfs_undo "touch '$T/stop-db'; kill $DBPID"

# ---- a changing tree, random operations -------------------------------------
cat >"$T/ops.py" <<'EOF'
import os, random, sys
root, rnd = sys.argv[1], random.Random(int(sys.argv[2]))
names = ["a", "b", "c", "dd", "e"]
def files():
    out = []
    for d, _, fs in os.walk(root):
        if "/.snapshots" in d or d.endswith(".snapshots"):
            continue
        out += [os.path.join(d, f) for f in fs
                if not f.startswith("app.sqlite") and not f.startswith("atime-")]
    return out
def dirs():
    return [d for d, _, _ in os.walk(root) if ".snapshots" not in d]
for _ in range(int(sys.argv[3])):
    op = rnd.randrange(10)
    d = rnd.choice(dirs())
    n = os.path.join(d, rnd.choice(names))
    fs = [f for f in files() if not os.path.islink(f)]
    f = rnd.choice(fs) if fs else None
    try:
        if op == 0:
            with open(n, "ab") as o:
                o.write(os.urandom(rnd.randrange(1, 70000)))
        elif op == 1 and f and os.path.isfile(f):
            with open(f, "r+b") as o:
                o.seek(rnd.randrange(0, 200000))
                o.write(os.urandom(rnd.randrange(1, 9000)))
        elif op == 2 and f and os.path.isfile(f):
            os.truncate(f, rnd.randrange(0, 50000))
        elif op == 3 and f:
            os.rename(f, n)
        elif op == 4 and f:
            os.link(f, n)
        elif op == 5 and f:
            os.unlink(f)
        elif op == 6 and f:
            os.setxattr(f, "user.v", os.urandom(rnd.randrange(0, 40)))
        elif op == 7:
            os.makedirs(n, exist_ok=True)
        elif op == 8 and f and os.path.isfile(f):
            with open(f, "r+b") as o:  # a hole in the middle
                o.truncate(rnd.randrange(300000, 900000))
                o.seek(rnd.randrange(0, 1000000))
                o.write(b"end")
        elif op == 9 and f:
            os.chmod(f, rnd.choice([0o600, 0o644, 0o755]))
    except OSError:
        pass
EOF

(build_tree "$M/state") || bail_out "cannot build the tree"
run_ok "snapshot s0" "$KEEPFS" snapshot "$M" s0
run_ok "send s0 to a file" "$KEEPFS" send "$M" s0 -o "$T/s0.stream"
like "$(stat -c %a "$T/s0.stream")" '^600$' "the stream file is mode 0600"
run_ok "receive it into a new replica" "$KEEPFS" receive "$R" -i "$T/s0.stream"
like "$KFS_OUT" "received snapshot 's0' into the new replica '$R'" "it says what it made"
run_ok "a full stream through a pipe as well" bash -c \
	"'$KEEPFS' send '$M' s0 | '$KEEPFS' receive '$T/replica-pipe'"
for i in $(seq 1 10); do
	python3 "$T/ops.py" "$M/state" "$i" 40
	"$KEEPFS" snapshot "$M" "s$i" >/dev/null || fail "snapshot s$i"
	xfer "s$((i - 1))" "s$i" >"$T/xfer.out" 2>&1 || { fail "s$i from s$((i - 1))" "$(cat "$T/xfer.out")"; break; }
done
is "$(grep -c "changes since" "$T/xfer.out")" 1 "ten incremental streams received"
touch "$T/stop-db"
wait "$DBPID"

# ---- the replica, mounted ---------------------------------------------------------
kfs_mount "$R" "$RM" || bail_out "cannot mount the replica"
is "$(mount_type "$RM")" "fuse.keepfs" "the replica mounts"
like "$(grep " $RM " /proc/mounts)" '[ ,]ro[ ,]' "read-only"
same=0
for i in $(seq 0 10); do
	kfs_listing "$SD/s$i" "$T/src.lst"
	kfs_listing "$RM/.snapshots/s$i" "$T/rep.lst"
	if diff -q "$T/src.lst" "$T/rep.lst" >/dev/null && [ -s "$T/src.lst" ]; then
		same=$((same + 1))
	else
		diag "s$i differs:" "$(diff "$T/src.lst" "$T/rep.lst" | head -n 10)"
	fi
done
is "$same" 11 "all 11 snapshots list the same on the replica (bytes, attributes, xattrs, links, holes)"
kfs_listing "$RM" "$T/live.lst"
kfs_listing "$SD/s10" "$T/s10.lst"
same_listing "$T/s10.lst" "$T/live.lst" "the replica's tree is its newest snapshot"
is "$(sqlite3 "file:$RM/.snapshots/s10/app.sqlite?immutable=1" 'PRAGMA integrity_check')" ok \
	"the database written to during the snapshots is consistent in the replica"
check_not "writing to the replica fails" touch "$RM/new"
run_is 1 "a receive into the mounted replica is refused" "$KEEPFS" receive "$R" -i "$T/s0.stream"
like "$KFS_ERR" "in use by process [0-9]+ \(mounted\?\); unmount it first" "it says why"
kfs_umount "$RM"
run_is 1 "mounting a replica with -o rw is refused" "$KEEPFS" mount "$R" "$RM" -o rw
like "$KFS_ERR" "is a replica: it mounts read-only \('keepfs promote" "with the way out"
kfs_fsck "$R" "fsck --data of the replica is clean"
like "$("$KEEPFS" stats "$R")" "replica of: +$("$KEEPFS" stats "$S" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["uuid"])')" "stats names the replica's source"
run_is 1 "restore into a replica is refused" "$KEEPFS" restore "$R" s1
like "$KFS_ERR" "is a replica: .*give --to DEST .*keepfs promote" "with what to do instead"
run_ok "restore --to copies a subtree out of the replica" "$KEEPFS" restore "$R" s0 state --to "$T/out"
like "$KFS_OUT" "^copied 'state' of snapshot s0 out of replica '$R' to '$T/out': [0-9]+ objects" "it says what it copied"
LISTING_NO_CTIME=1 kfs_listing "$SD/s0/state" "$T/src-state.lst"
LISTING_NO_CTIME=1 kfs_listing "$T/out" "$T/out.lst"
# (a directory's size is the file system's own)
for f in "$T/src-state.lst" "$T/out.lst"; do
	awk '$2 == "0o40000" { $5 = "-" } 1' "$f" >"$f.n"
done
same_listing "$T/src-state.lst.n" "$T/out.lst.n" "the copy is the snapshot's subtree: contents, holes, links, owners, modes, times, xattrs"
run_is 1 "restore --to over an existing path is refused" "$KEEPFS" restore "$R" s0 state --to "$T/out"
like "$KFS_ERR" "cannot make '$T/out': File exists" "says so"
run_ok "keepfs cat reads from a replica" "$KEEPFS" cat "$R" s0 state/a/b/text
is "$(sha256sum <<<"$KFS_OUT")" "$("$KEEPFS" cat "$S" s0 state/a/b/text | sha256sum)" "the same bytes as from the source"

# ---- bad input: nothing changes --------------------------------------------------
state_of >"$T/state.before"
run_ok "send s10 from s9 again" "$KEEPFS" send "$M" s10 --from s9 -o "$T/again"
run_ok "receiving it twice is harmless" "$KEEPFS" receive "$R" -i "$T/again"
is "$KFS_OUT" "'$R' already has snapshot 's10'; nothing to do" "and says so"

echo "late" >"$M/late"
run_ok "snapshot s11" "$KEEPFS" snapshot "$M" s11
run_ok "send s11 from s10" "$KEEPFS" send "$M" s11 --from s10 -o "$T/s11"
size=$(stat -c %s "$T/s11")
for off in 0 20 $((size / 3)) $((size / 2)) $((size - 40)) $((size - 1)); do
	cp "$T/s11" "$T/bad"
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 4]))' "$T/bad" "$off"
	run_is 1 "a byte flipped at $off is refused" "$KEEPFS" receive "$R" -i "$T/bad"
done
like "$KFS_ERR" "damaged.*nothing was changed" "the message says damaged, nothing changed"
head -c $((size - 100)) "$T/s11" >"$T/cut"
run_is 1 "a cut stream is refused" "$KEEPFS" receive "$R" -i "$T/cut"
like "$KFS_ERR" "truncated" "as truncated"
: >"$T/empty"
run_is 1 "an empty stream is refused" "$KEEPFS" receive "$R" -i "$T/empty"
echo "#!/bin/sh" >"$T/script"
run_is 1 "a file that is no stream is refused" "$KEEPFS" receive "$R" -i "$T/script"
like "$KFS_ERR" "not a keepfs stream" "as not a stream"

echo "later" >"$M/later"
run_ok "snapshot s12" "$KEEPFS" snapshot "$M" s12
run_ok "send s12 from s11" "$KEEPFS" send "$M" s12 --from s11 -o "$T/s12"
run_is 1 "a stream whose base the replica lacks is refused" "$KEEPFS" receive "$R" -i "$T/s12"
like "$KFS_ERR" "incremental from 's11' \(commit [0-9]+\), which .* does not have" "it names the base"

kfs_init "$T/other"
run_ok "a snapshot of another store" "$KEEPFS" snapshot "$T/other" o1
run_ok "sent" "$KEEPFS" send "$T/other" o1 -o "$T/foreign"
run_is 1 "a stream of another store is refused" "$KEEPFS" receive "$R" -i "$T/foreign"
like "$KFS_ERR" "is a replica of another store" "it says so"
run_is 1 "a stream into an ordinary store is refused" "$KEEPFS" receive "$T/other" -i "$T/s11"
like "$KFS_ERR" "is a store of its own, not a replica" "it says so"
state_of >"$T/state.after"
is "$(diff "$T/state.before" "$T/state.after")" "" "after all that the replica is as it was"

SMALL=$T/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$SMALL" || bail_out "cannot mount a tmpfs"
kfs_track_mount "$SMALL"
run_is 1 "a full disk: refused" "$KEEPFS" receive "$SMALL/rep" -i "$T/s0.stream"
like "$KFS_ERR" "disk is full|No space left" "it says the disk is full"
is "$(ls -A "$SMALL")" "" "and leaves nothing on it"

# an existing replica on a full disk: the incremental stream is refused,
# the replica stays as it was, and it goes in once there is room
kfs_init "$T/small-src"
FS=$T/small-src-mnt
kfs_mount "$T/small-src" "$FS" || bail_out "cannot mount the small source"
echo "first" >"$FS/first"
run_ok "small source: snapshot a1" "$KEEPFS" snapshot "$FS" a1
head -c $((3 << 20)) /dev/urandom >"$FS/big"
run_ok "small source: snapshot a2 with 3 MiB more" "$KEEPFS" snapshot "$FS" a2
run_ok "send a1" "$KEEPFS" send "$FS" a1 -o "$T/a1.stream"
run_ok "send a2 from a1" "$KEEPFS" send "$FS" a2 --from a1 -o "$T/a2.stream"
kfs_umount "$FS"
SMALL2=$T/small2
mkdir -p "$SMALL2"
mount -t tmpfs -o size=8m,mode=0700 tmpfs "$SMALL2" || bail_out "cannot mount a tmpfs"
kfs_track_mount "$SMALL2"
run_ok "a replica on a small disk takes a1" "$KEEPFS" receive "$SMALL2/rep" -i "$T/a1.stream"
free_kib=$(df -k --output=avail "$SMALL2" | tail -1)
head -c $(((free_kib - 1024) * 1024)) /dev/zero >"$SMALL2/filler"
"$KEEPFS" list "$SMALL2/rep" --commits >"$T/rep.list.before"
ls -A "$SMALL2" "$SMALL2/rep" >"$T/rep.ls.before"
run_is 1 "the disk full: an incremental stream is refused" "$KEEPFS" receive "$SMALL2/rep" -i "$T/a2.stream"
like "$KFS_ERR" "disk is full|No space left" "it says the disk is full"
"$KEEPFS" list "$SMALL2/rep" --commits >"$T/rep.list.after"
is "$(diff "$T/rep.list.before" "$T/rep.list.after")" "" "the replica's commits are as they were"
is "$(ls -A "$SMALL2" "$SMALL2/rep" | diff "$T/rep.ls.before" -)" "" "and no file is left behind"
run_ok "the replica passes fsck" "$KEEPFS" fsck "$SMALL2/rep"
rm -f "$SMALL2/filler"
run_ok "with room again, the same stream goes in" "$KEEPFS" receive "$SMALL2/rep" -i "$T/a2.stream"
"$KEEPFS" cat "$T/small-src" a2 big >"$T/a2.big"
run_ok "and its file reads back whole" cmp "$T/a2.big" <("$KEEPFS" cat "$SMALL2/rep" a2 big)

run_is 1 "a new replica whose directory is missing" "$KEEPFS" receive "$T/no/such/rep" -i "$T/s0.stream"
like "$KFS_ERR" "cannot make a replica beside .*No such file or directory" "says so"
run_ok "s11 applies" "$KEEPFS" receive "$R" -i "$T/s11"
run_ok "then s12" "$KEEPFS" receive "$R" -i "$T/s12"
run_ok "with --json" "$KEEPFS" receive "$T/replica-pipe" -i "$T/s0.stream" --json
like "$KFS_OUT" '^\{"store": ".*", "snapshot": "s0", "commit": [0-9]+, "from": null, "created": false, "already": true' "--json reports it"

is "$KFS_ERR" "" "receive is quiet when stderr is no terminal"
run_ok "on a terminal, send shows progress" script -qec "'$KEEPFS' send '$M' s12 -o '$T/tty.stream'" "$T/tty.log"
like "$(tr '\r' '\n' <"$T/tty.log")" "sent [0-9.]+ [KM]?i?B of [0-9.]+ [KM]?i?B \([0-9]+%\), [0-9.]+ [KM]?i?B/s, [0-9]+ s left" "bytes, total, rate and time left"
like "$(tr '\r' '\n' <"$T/tty.log")" "sent [0-9.]+ [KM]?i?B, [0-9.]+ [KM]?i?B/s" "and a last line with the total"
run_ok "and so does receive" script -qec "'$KEEPFS' receive '$T/tty-rep' -i '$T/s0.stream'" "$T/tty2.log"
like "$(tr '\r' '\n' <"$T/tty2.log")" "received [0-9.]+ [KM]?i?B of" "(bytes of the expected total)"
run_is 2 "send to a terminal is refused" script -qec "'$KEEPFS' send '$M' s12" /dev/null
run_is 1 "send of an unknown snapshot" "$KEEPFS" send "$M" nosuch -o "$T/x"
like "$KFS_ERR" "no snapshot 'nosuch'" "names it"
check_not "and leaves no file" test -e "$T/x"
run_is 1 "-o over an existing file is refused" "$KEEPFS" send "$M" s12 -o "$T/s12"
run_is 1 "a base that is newer" "$KEEPFS" send "$M" s1 --from s2 -o "$T/x"
like "$KFS_ERR" "is newer than" "says so"

# ---- an encrypted store ------------------------------------------------------------
printf 'a passphrase for the replica test\n' >"$T/enc.pass"
run_ok "an encrypted store with a passphrase" "$KEEPFS" init "$T/enc" --passphrase-file "$T/enc.pass"
kfs_mount "$T/enc" "$T/emnt" "passfile=$T/enc.pass" || bail_out "cannot mount the encrypted store"
python3 -c 'import sys; open(sys.argv[1], "w").write("PLAINTEXT-MARKER-7c1e " * 5000)' "$T/emnt/secret.txt"
run_ok "snapshot e1" "$KEEPFS" snapshot "$T/emnt" e1
run_ok "send it, with no secret anywhere" env -u KEEPFS_KEY_FILE -u KEEPFS_PASSPHRASE_FILE \
	"$KEEPFS" send "$T/emnt" e1 -o "$T/e1"
is "$(grep -c PLAINTEXT-MARKER "$T/e1")" 0 "the stream holds no plaintext"
run_ok "receive it, with no secret" env -u KEEPFS_KEY_FILE -u KEEPFS_PASSPHRASE_FILE \
	"$KEEPFS" receive "$T/erep" -i "$T/e1" </dev/null
is "$(cat "$T"/erep/* 2>/dev/null | grep -c PLAINTEXT-MARKER)" 0 "the replica holds no plaintext"
like "$("$KEEPFS" stats "$T/erep")" "encrypted: *yes" "the replica is encrypted"
kfs_mount "$T/erep" "$T/ermnt" "passfile=$T/enc.pass" || bail_out "cannot mount the encrypted replica"
cmp -s "$T/emnt/secret.txt" "$T/ermnt/secret.txt"
is $? 0 "it mounts with the source's passphrase and reads the file"
kfs_umount "$T/ermnt"
printf 'another passphrase\n' >"$T/enc.pass2"
run_is 1 "a wrong passphrase does not mount it" "$KEEPFS" mount "$T/erep" "$T/ermnt" -o "passfile=$T/enc.pass2"
kfs_umount "$T/emnt"

# ---- a lost store, back from its replica ----------------------------------------
kfs_listing "$SD/s12" "$T/s12.lst"
kfs_umount "$M"
rm -rf "$S"
run_ok "copy the replica to where the store was" cp -a "$R" "$S"
run_ok "promote the copy" "$KEEPFS" promote "$S"
like "$KFS_OUT" "is an ordinary store now" "it says what it did"
kfs_mount "$S" "$M" || bail_out "cannot mount the promoted store"
kfs_listing "$M" "$T/back.lst"
same_listing "$T/s12.lst" "$T/back.lst" "the tree is s12 again"
run_ok "it is writable" bash -c "echo new >'$M/after-promote'"
run_ok "and takes snapshots" "$KEEPFS" snapshot "$M" after
kfs_umount "$M"
run_is 1 "promoting it again" "$KEEPFS" promote "$S"
like "$KFS_ERR" "is not a replica" "says it is not a replica"
run_is 1 "a receive into it is refused" "$KEEPFS" receive "$S" -i "$T/s12"
kfs_fsck "$S" "fsck --data of the promoted store is clean"

done_testing
