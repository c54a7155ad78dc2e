#!/bin/bash
# ctl.sh - the control socket STORE/control: there while mounted (0600),
# gone after; only the mount's uid or root is served; the protocol's
# version, framing and size bound; clients that vanish or stall; many
# clients at once; keepfs snapshot through it, holding unsynced writes and
# telling the kernel that .snapshots changed; stale and missing sockets.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3 setpriv

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP
SOCK=$S/control
CLIENT=$T/ctlclient.py
cp "$KFS_TESTS/fuse/ctlclient.py" "$CLIENT"
chmod 0644 "$CLIENT"

daemon_alive() { _kfs_alive "$KFS_PID"; }
# the daemon still answers, and correctly
answers() {
	run_ok "$1: the daemon answers" "$KEEPFS" ctl-ping "$M" still here
	is "$KFS_OUT" $'pong\nstill\nhere' "$1: with the right answer"
}
names() { "$KEEPFS" list "$1" --json | python3 -c 'import json, sys; [print(s["name"]) for s in json.load(sys.stdin)]'; }

# --- the socket ----------------------------------------------------------------
check "the socket exists while mounted" test -S "$SOCK"
is "$(stat -c %a "$SOCK")" "600" "the socket's mode is 0600"
is "$(stat -c %u "$SOCK")" "$(id -u)" "the socket belongs to the mount's owner"

run_ok "ctl-ping through the socket" "$KEEPFS" ctl-ping "$M" a "b c"
is "$KFS_OUT" $'pong\na\nb c' "the arguments come back"
run_ok "ctl-ping by store path" "$KEEPFS" ctl-ping "$S" x
is "$KFS_OUT" $'pong\nx' "the store path finds the same daemon"
run_ok "an argument with a newline and bytes over 127" "$KEEPFS" ctl-ping "$M" $'line1\nline2' $'\xff\xfe'
is "$KFS_OUT" $'pong\nline1\nline2\n\xff\xfe' "any byte but NUL travels"
run_ok "a 10 MiB answer" python3 "$CLIENT" "$SOCK" ctl-ping --bytes 10M
is "${#KFS_OUT}" "10485760" "all of it arrives"
unlike "$("$KEEPFS" --help)" "ctl-ping" "ctl-ping is not listed by --help"

# --- the protocol ----------------------------------------------------------------
run_is 2 "a request of protocol version 2: exit status 2" python3 "$CLIENT" "$SOCK" --magic "KEEPFS-CTL 2" ctl-ping
is "$KFS_ERR" "keepfs: the daemon speaks control protocol 1, the command 2; use the keepfs that mounted the store" \
	"it says which versions differ"
run_is 2 "not a control request: exit status 2" python3 "$CLIENT" "$SOCK" --magic "HELLO" ctl-ping
is "$KFS_ERR" "keepfs: not a keepfs control request" "it says so"
run_is 2 "a request with no command: exit status 2" python3 "$CLIENT" "$SOCK"
like "$KFS_ERR" "names no command" "it says so"
run_is 2 "an unknown command: exit status 2" python3 "$CLIENT" "$SOCK" no-such-command
like "$KFS_ERR" "^keepfs: the daemon does not run 'no-such-command'" "it says so"
run_is 2 "a command the daemon does not run (list): exit status 2" python3 "$CLIENT" "$SOCK" list
run_is 2 "a request claiming 1 MiB + 1 bytes: exit status 2" python3 "$CLIENT" "$SOCK" --claim $((1024 * 1024 + 1)) ctl-ping
like "$KFS_ERR" "^keepfs: a control request of 1048577 bytes is over the limit of 1048576" "it names the limit"
run_is 2 "a request claiming 4 GiB - 1: exit status 2" python3 "$CLIENT" "$SOCK" --claim 4294967295 ctl-ping
ok "$(daemon_alive; echo $?)" "the daemon is alive after oversized requests"
run_ok "a request just under the bound is served" python3 "$CLIENT" "$SOCK" --fill 1048000 ctl-ping
is "${#KFS_OUT}" "$((5 + 1048000))" "its argument comes back whole"
run_is 99 "a request cut short gets no answer" python3 "$CLIENT" "$SOCK" --claim 100000 ctl-ping
answers "after a cut request"

# --- clients that vanish or stall --------------------------------------------------
run_ok "a client that reads 100 KiB of a 200 MiB answer and leaves" \
	python3 "$CLIENT" "$SOCK" --read 102400 ctl-ping --bytes 200M
answers "after a client left mid-answer"
# the daemon's output stream sees its write fail at a different point each time
run_ok "16 clients that leave after 8 KiB, 16 KiB, ... 128 KiB" \
	python3 "$CLIENT" "$SOCK" --read 8191 --repeat 16 ctl-ping --bytes 1M
answers "after clients left mid-answer"
python3 "$CLIENT" "$SOCK" --hold 4 &
HOLD=$!
sleep 0.5
start=$(date +%s%N)
answers "while another client is connected and silent"
elapsed=$((($(date +%s%N) - start) / 1000000))
if [ "$elapsed" -lt 3000 ]; then pass "a silent client holds up no one (${elapsed} ms)"; else fail "a silent client holds up no one" "took ${elapsed} ms"; fi
wait "$HOLD"

# --- many at once ------------------------------------------------------------------
pids=()
for i in $(seq 1 20); do
	"$KEEPFS" ctl-ping "$M" "client-$i" >"$T/ping.$i" 2>&1 &
	pids+=($!)
done
bad=0
for i in $(seq 1 20); do
	wait "${pids[$((i - 1))]}" || bad=$((bad + 1))
	[ "$(cat "$T/ping.$i")" == "$(printf 'pong\nclient-%d' "$i")" ] || bad=$((bad + 1))
done
is "$bad" "0" "20 concurrent pings: each exits 0 with its own answer"

pids=()
for i in $(seq 1 20); do
	"$KEEPFS" snapshot "$M" "many-$i" >"$T/snap.$i" 2>&1 &
	pids+=($!)
done
bad=0
for i in $(seq 1 20); do
	wait "${pids[$((i - 1))]}" || bad=$((bad + 1))
	[ "$(cat "$T/snap.$i")" == "many-$i" ] || bad=$((bad + 1))
done
is "$bad" "0" "20 concurrent snapshots: each exits 0 and prints its name"
is "$(names "$M" | grep -c '^many-')" "20" "keepfs list holds all 20"
is "$(ls "$M/.snapshots" | grep -c '^many-')" "20" ".snapshots shows all 20"

# --- keepfs snapshot through the daemon ------------------------------------------------
check_not "no snapshot 'neg' yet (the kernel caches the miss)" test -e "$M/.snapshots/neg"
run_ok "keepfs snapshot 'neg'" "$KEEPFS" snapshot "$M" neg
is "$KFS_OUT" "neg" "it prints the name"
check "the kernel's cached miss was dropped: .snapshots/neg is there" test -d "$M/.snapshots/neg"
ls "$M/.snapshots" >/dev/null
run_ok "keepfs snapshot 'listed'" "$KEEPFS" snapshot "$M" listed
like "$(ls "$M/.snapshots" | tr '\n' ' ')" "listed" "a listing of .snapshots read before shows it"

printf 'written, not synced' >"$M/unsynced"
run_ok "snapshot right after an unsynced write" "$KEEPFS" snapshot "$M" after-write
is "$(cat "$M/.snapshots/after-write/unsynced")" "written, not synced" "the snapshot holds the write"
run_is 1 "a taken name through the daemon" "$KEEPFS" snapshot "$M" neg
is "$KFS_ERR" "keepfs: snapshot 'neg' already exists" "the daemon's message reaches stderr"
is "$KFS_OUT" "" "nothing on stdout"
run_ok "an unnamed snapshot is named by the daemon" "$KEEPFS" snapshot "$M"
like "$KFS_OUT" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "after the time"
check "and is in .snapshots" test -d "$M/.snapshots/$KFS_OUT"

# --- invalidation ----------------------------------------------------------------------
# Nothing changed behind the kernel's back here, so what it reads after must
# be what it read before, and the daemon must not trip over live nodes,
# open files, a writer and names with odd bytes.
mkdir -p "$M/inv/sub"
for i in $(seq 1 50); do printf 'file %d\n' "$i" >"$M/inv/sub/f$i"; done
printf 'odd' >"$M/inv/"$'name\nwith newline'
ls -l --time-style=full-iso "$M/inv/sub" | grep -v "^total" >"$T/inv.before"
exec 7<"$M/inv/sub/f1"
python3 -c '
import sys, time
with open(sys.argv[1], "w") as f:
    for i in range(200):
        f.write("line %d\n" % i)
        f.flush()
        time.sleep(0.005)
' "$M/inv/writer" &
WRITER=$!
run_ok "ctl-ping --inval: the kernel drops the live tree's caches" "$KEEPFS" ctl-ping "$M" --inval
is "$KFS_OUT" "pong" "and the daemon answers"
wait "$WRITER"
ok $? "a writer during the invalidation finished"
is "$(wc -l <"$M/inv/writer")" "200" "its file is whole"
ls -l --time-style=full-iso "$M/inv/sub" | grep -v "^total" >"$T/inv.after"
is "$(diff "$T/inv.before" "$T/inv.after")" "" "a directory lists the same after"
is "$(cat "$M/inv/"$'name\nwith newline')" "odd" "a name with a newline resolves after"
is "$(cat <&7)" "file 1" "a file open during the invalidation reads the same"
exec 7<&-
is "$(cat "$M/inv/sub/f50")" "file 50" "contents read the same"

# --- another uid ---------------------------------------------------------------------
# The store directory is 0700 and the socket 0600: nobody else can even
# reach it.  Loosen both so that SO_PEERCRED is what refuses.
before=$("$KEEPFS" list "$M" --json)
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
run_is 1 "uid 65534 cannot reach the socket of a 0700 store" "${NOBODY[@]}" "$KEEPFS" snapshot "$M" evil
like "$KFS_ERR" "keepfs: " "it gets a message"
chmod 0711 "$T" "$S"
chmod 0666 "$SOCK"
run_is 1 "uid 65534 through a loosened socket: keepfs snapshot refused" "${NOBODY[@]}" "$KEEPFS" snapshot "$M" evil
is "$KFS_ERR" "keepfs: only uid $(id -u) or root may control this mount" "the refusal says who may"
run_is 1 "uid 65534 with a raw client: refused" "${NOBODY[@]}" /usr/bin/python3 "$CLIENT" "$SOCK" snapshot evil2
is "$KFS_ERR" "keepfs: only uid $(id -u) or root may control this mount" "the same refusal"
is "$("$KEEPFS" list "$M" --json)" "$before" "nothing changed"
check_not "no snapshot 'evil'" test -e "$M/.snapshots/evil"
chmod 0700 "$T" "$S"
chmod 0600 "$SOCK"
answers "after the refusals"

# --- missing and stale sockets ---------------------------------------------------------------
mv "$SOCK" "$S/control.moved"
run_is 1 "no socket: exit status 1" "$KEEPFS" snapshot "$M" nosock
is "$KFS_ERR" "keepfs: the daemon of '$M' has no control socket: it was started by an older keepfs; remount it" \
	"it says to remount"
mv "$S/control.moved" "$SOCK"
answers "with the socket back"

kfs_umount "$M"
check_not "the socket is gone after unmount" test -e "$SOCK"

kfs_mount "$S" "$M" || bail_out "remount failed"
check "a new socket at mount" test -S "$SOCK"
kill -9 "$KFS_PID"
wait "$KFS_PID" 2>/dev/null
unset "_kfs_pid[$M]"
check "kill -9 leaves the socket behind" test -S "$SOCK"
run_is 1 "keepfs snapshot on a mount whose daemon died" "$KEEPFS" snapshot "$M" dead
like "$KFS_ERR" "the daemon of '$M' is gone; unmount it \('keepfs umount $M'\)" "it says how to recover"
_kfs_unmount_any "$M"
kfs_mount "$S" "$M" || bail_out "mount after kill -9 failed"
check "the stale socket was replaced" test -S "$SOCK"
answers "after a stale socket"
is "$(names "$M" | grep -c '^many-')" "20" "the snapshots are all there"

# the socket of a store whose path is too long for sun_path
LONGDIR=$T/$(printf 'd%.0s' $(seq 1 120))
mkdir "$LONGDIR"
kfs_init "$LONGDIR/store"
kfs_mount "$LONGDIR/store" "$T/mnt2" || bail_out "cannot mount the long-path store"
check "a long store path has its socket" test -S "$LONGDIR/store/control"
run_ok "ctl-ping through a path longer than sun_path" "$KEEPFS" ctl-ping "$T/mnt2" long
is "$KFS_OUT" $'pong\nlong' "it answers"
run_ok "keepfs snapshot there" "$KEEPFS" snapshot "$T/mnt2" far
check "the snapshot is there" test -d "$T/mnt2/.snapshots/far"
kfs_umount "$T/mnt2"
check_not "its socket is gone after unmount" test -e "$LONGDIR/store/control"

kfs_umount "$M"
kfs_fsck "$S"
done_testing
