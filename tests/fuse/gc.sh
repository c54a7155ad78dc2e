#!/bin/bash
# gc.sh - keepfs gc through a real mount: a file rewritten many times
# leaves, after gc --journal 0, a store under twice one copy, with the
# file and a snapshot intact; a .snapshots/@TIME view held open keeps its
# commit, and goes at the next gc once closed; a writer running during
# repeated collections keeps every byte; the unmounted store collects
# and checks clean; bad input exits 1 or 2 with a message.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3 sha256sum

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP

# store_bytes: store.db and its WAL
store_bytes() { du -cb "$S"/store.db* | tail -n 1 | cut -f1; }

# shrunk LIMIT: the daemon checkpoints at the next pause after a
# collection, and the files shrink; wait up to 10 s for them to go under
# LIMIT bytes.  Prints the size.
shrunk() {
	local i b
	for ((i = 0; i < 100; i++)); do
		b=$(store_bytes)
		[ "$b" -lt "$1" ] && break
		sleep 0.1
	done
	echo "$b"
}

# --- a file rewritten ---------------------------------------------------------------
SIZE=$((16 << 20))
head -c "$SIZE" /dev/urandom >"$T/keep.bin"
cp "$T/keep.bin" "$M/big"
run_ok "snapshot of the first copy" "$KEEPFS" snapshot "$M" first
for ((i = 0; i < 20; i++)); do
	head -c "$SIZE" /dev/urandom >"$T/last.bin"
	cp "$T/last.bin" "$M/big"
	sync "$M/big"
done
before=$(store_bytes)
ok "$(( (before > 15 * SIZE) ? 0 : 1 ))" "21 copies of 16 MiB are in the store ($before bytes)"
run_ok "gc --journal 0" "$KEEPFS" gc "$M" --journal 0
like "$KFS_OUT" '^dropped [0-9]+ commits, [0-9]+ row versions and [0-9]+ blobs \([0-9.]+ MiB stored\); gave [0-9.]+ MiB back to the file system$' \
	"gc reports what it freed"
run_ok "another snapshot" "$KEEPFS" snapshot "$M" second
after=$(shrunk $((3 * SIZE)))
ok "$(( (after < 3 * SIZE) ? 0 : 1 ))" "the store shrinks to the snapshot's copy and the live one ($after bytes, was $before)"
check "the live file is intact" cmp "$M/big" "$T/last.bin"
check "the snapshot is intact" cmp "$M/.snapshots/first/big" "$T/keep.bin"
run_ok "gc again" "$KEEPFS" gc "$M" --journal 0
is "$KFS_OUT" "nothing to collect" "a second gc finds nothing"
run_ok "delete the snapshots" "$KEEPFS" delete "$M" first second
run_ok "gc after deleting the snapshots" "$KEEPFS" gc "$M" --journal 0
after=$(shrunk $((2 * SIZE)))
ok "$(( (after < 2 * SIZE) ? 0 : 1 ))" "with no snapshot left, under twice one copy ($after bytes)"
check "the live file is still intact" cmp "$M/big" "$T/last.bin"

# --- a point in time held open ------------------------------------------------------
printf 'old\n' >"$M/note"
sync "$M/note"
sleep 1.1
AT=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.1
printf 'new\n' >"$M/note"
sync "$M/note"
exec 7<"$M/.snapshots/@$AT/note"
run_ok "gc --journal 0 while a point in time is open" "$KEEPFS" gc "$M" --journal 0
is "$(cat <&7)" "old" "the open view reads as before"
is "$(cat "$M/.snapshots/@$AT/note")" "old" "and the name still leads to it"
exec 7<&-
run_ok "gc once it is closed" "$KEEPFS" gc "$M" --journal 0
like "$KFS_OUT" "^dropped 1 commit," "the closed view's commit went"
# the time now names the newest commit before it (the one that made
# "old" went too), or none
if cat "$M/.snapshots/@$AT/note" >"$T/note.now" 2>"$T/note.err"; then
	fail "the view of a commit that went is gone" "read: $(cat "$T/note.now")"
else
	like "$(cat "$T/note.err")" "No such file or directory" "the view of a commit that went is gone"
fi

# --- a writer during collections ----------------------------------------------------
python3 - "$M/w" "$T/w.sums" <<'EOF' &
import hashlib, os, random, sys
root, sums = sys.argv[1], sys.argv[2]
os.mkdir(root)
r = random.Random(1)
out = {}
for i in range(300):
    name = "f%d" % r.randrange(40)
    data = os.urandom(r.randrange(1, 300000))
    tmp = os.path.join(root, ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if i % 7 == 0:
            os.fsync(f.fileno())
    os.rename(tmp, os.path.join(root, name))
    out[name] = hashlib.sha256(data).hexdigest()
with open(sums, "w") as f:
    for k in sorted(out):
        f.write("%s  %s\n" % (out[k], k))
EOF
WPID=$!
ngc=0
gcfail=0
while kill -0 "$WPID" 2>/dev/null; do
	"$KEEPFS" gc "$M" --journal 0 >/dev/null 2>"$T/gc.err" || gcfail=1
	ngc=$((ngc + 1))
done
wait "$WPID"
is "$?" 0 "the writer finished"
is "$gcfail" 0 "$ngc collections ran meanwhile, each without error"
check "every file the writer wrote reads as written" bash -c "cd '$M/w' && sha256sum --quiet -c '$T/w.sums'"

# --- bad input ------------------------------------------------------------------------
fails 2 "no TARGET" "missing TARGET" "$KEEPFS" gc
fails 2 "a bad duration" "bad value '1x' for --journal" "$KEEPFS" gc "$M" --journal 1x
fails 2 "a negative duration" "bad value '-1h' for --journal" "$KEEPFS" gc "$M" --journal=-1h
fails 2 "too many arguments" "too many arguments" "$KEEPFS" gc "$M" extra
fails 1 "not a store" "" "$KEEPFS" gc "$T/nothing"

# --- journal=0 as a mount option: the daemon collects by itself ----------------------
kfs_umount "$M" || bail_out "unmount failed"
kfs_mount "$S" "$M" journal=0,auto=off || bail_out "mount with journal=0 failed"
for ((i = 0; i < 20; i++)); do
	head -c "$SIZE" /dev/urandom >"$T/last.bin"
	cp "$T/last.bin" "$M/big"
	sync "$M/big"
	if ((i % 5 == 4)); then
		"$KEEPFS" retain-now "$M" >/dev/null || diag "retain-now failed"
	fi
done
after=$(shrunk $((2 * SIZE)))
ok "$(( (after < 2 * SIZE) ? 0 : 1 ))" "20 more rewrites under journal=0: the daemon keeps the store under twice one copy ($after bytes)"
check "the live file is intact" cmp "$M/big" "$T/last.bin"

# --- unmounted, then read-only ---------------------------------------------------------
kfs_umount "$M" || bail_out "unmount failed"
run_ok "gc of the unmounted store" "$KEEPFS" gc "$S" --journal 0
kfs_fsck "$S" "fsck clean after every collection"
kfs_mount "$S" "$M" ro || bail_out "read-only mount failed"
fails 1 "gc of a read-only mount" "the store is mounted read-only" "$KEEPFS" gc "$M"
check "the files are there" bash -c "cd '$M/w' && sha256sum --quiet -c '$T/w.sums'"
kfs_umount "$M" || bail_out "unmount failed"
done_testing
