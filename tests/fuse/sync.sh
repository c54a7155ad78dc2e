#!/bin/bash
# sync.sh - keepfs sync to a local path and over ssh (an sshd started here
# on 127.0.0.1): the first sync sends everything, a second one nothing,
# later ones only the new snapshots; the destination's own retention
# prunes its copies; a connection cut mid-stream leaves the destination as
# it was and the next sync goes on; streams through rclone (local and
# sftp remotes) come back intact.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3
require_cmd ssh
require_cmd ssh-keygen
require_cmd rclone
[ -x /usr/sbin/sshd ] || skip_all "no /usr/sbin/sshd (openssh-server)"

kfs_setup
S=$KFS_STORE
M=$KFS_MNT
T=$KFS_TMP
SD=$M/.snapshots

# ---- an sshd of our own --------------------------------------------------------
mkdir -p "$T/ssh" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/hostkey" || bail_out "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/id" || bail_out "ssh-keygen"
cp "$T/ssh/id.pub" "$T/ssh/authorized_keys"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/ssh/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $T/ssh/hostkey
AuthorizedKeysFile $T/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $T/ssh/sshd.pid
Subsystem sftp internal-sftp
EOF
/usr/sbin/sshd -D -e -f "$T/ssh/sshd_config" 2>"$T/ssh/sshd.log" &
SSHD=$!
kfs_undo "kill $SSHD"
SSH="ssh -i $T/ssh/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
for i in $(seq 1 100); do
	$SSH -p "$PORT" root@127.0.0.1 true 2>/dev/null && break
	sleep 0.1
done
run_ok "our sshd answers" $SSH -p "$PORT" root@127.0.0.1 true
export KEEPFS_SSH=$SSH
URL=ssh://root@127.0.0.1:$PORT$T/remote
RK=(--remote-keepfs "$KEEPFS")

# snaps STORE: name, commit, origin and creation time of each snapshot
# (without pre-restore ones after the replica's retention pruned them)
snaps() {
	"$KEEPFS" list "$1" --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if sys.argv[1] == "all" or s["origin"] != "pre-restore":
        print(s["name"], s["commit"], s["origin"], s["created_ns"])' "${2:-all}"
}

# ---- sync over ssh ----------------------------------------------------------------
mkdir -p "$M/state"
for i in 1 2 3; do
	head -c 200000 /dev/urandom >"$M/state/f$i"
	run_ok "snapshot s$i" "$KEEPFS" snapshot "$M" "s$i"
done
run_ok "the first sync over ssh" "$KEEPFS" sync "$M" "$URL" "${RK[@]}"
like "$KFS_OUT" "received snapshot 's1' into the new replica" "s1 went whole"
like "$KFS_OUT" "received snapshot 's3' \(changes since 's2'\)" "s3 as changes since s2"
is "$(snaps "$T/remote")" "$(snaps "$S")" "the replica has every snapshot, with the same commits"
kfs_mount "$T/remote" "$T/rmnt" || bail_out "cannot mount the replica"
kfs_listing "$SD/s3" "$T/s3.lst"
kfs_listing "$T/rmnt/.snapshots/s3" "$T/r3.lst"
same_listing "$T/s3.lst" "$T/r3.lst" "s3 lists the same on the replica"
kfs_umount "$T/rmnt"

run_ok "a second sync" "$KEEPFS" sync "$M" "$URL" "${RK[@]}" --json
is "$KFS_OUT" '{"sent": 0, "bytes": 0}' "sends nothing"
run_ok "and in words" "$KEEPFS" sync "$M" "$URL" "${RK[@]}"
is "$KFS_OUT" "'$URL' is up to date (newest snapshot: 's3')" "says it is up to date"

echo "new" >"$M/state/f4"
run_ok "snapshot s4" "$KEEPFS" snapshot "$M" s4
run_ok "snapshot s5 (the same commit)" "$KEEPFS" snapshot "$M" s5
run_ok "sync the new ones" "$KEEPFS" sync "$M" "$URL" "${RK[@]}" --json
like "$KFS_OUT" '^\{"sent": 2, "bytes": [0-9]+\}$' "two streams went"
is "$(snaps "$T/remote")" "$(snaps "$S")" "the replica has s4 and s5"

# ---- the destination's own retention ------------------------------------------
run_ok "the replica keeps one pre-restore snapshot" "$KEEPFS" config "$T/remote" prerestore=1
for i in 1 2 3; do
	echo "damage $i" >"$M/state/f1"
	run_ok "restore $i (a pre-restore snapshot each)" "$KEEPFS" restore "$M" s5
done
is "$("$KEEPFS" list "$S" | grep -c pre-restore)" 3 "the source has three"
run_ok "sync" "$KEEPFS" sync "$M" "$URL" "${RK[@]}"
is "$("$KEEPFS" list "$T/remote" | grep -c pre-restore)" 1 "the replica keeps one: its own retention"

# ---- a connection cut mid-stream ---------------------------------------------
head -c 3000000 /dev/urandom >"$M/state/big"
run_ok "snapshot s6" "$KEEPFS" snapshot "$M" s6
cat >"$T/cutssh" <<EOF
#!/bin/sh
# the connection breaks after 100 kB
head -c 100000 | exec $SSH "\$@"
EOF
chmod +x "$T/cutssh"
snaps "$T/remote" all >"$T/before"
run_is 1 "a sync whose connection breaks fails" "$KEEPFS" sync "$M" "$URL" "${RK[@]}" --ssh "$T/cutssh"
like "$KFS_ERR" "'s6' was not received .*the destination keeps what it had" "and says the destination keeps what it had"
snaps "$T/remote" all >"$T/after"
is "$(diff "$T/before" "$T/after")" "" "the replica is as it was"
kfs_fsck "$T/remote" "and fsck finds it clean"
run_ok "the next sync goes on" "$KEEPFS" sync "$M" "$URL" "${RK[@]}"
is "$(snaps "$T/remote" kept)" "$(snaps "$S" kept)" "and brings s6"

# ---- a local destination; bad destinations ------------------------------------------
run_ok "sync to a local path, on a terminal" script -qec "'$KEEPFS' sync '$M' '$T/local'" "$T/tty.log"
like "$(tr '\r' '\n' <"$T/tty.log")" "'s1': sent [0-9.]+ [KM]?i?B of [0-9.]+ [KM]?i?B \([0-9]+%\), [0-9.]+ [KM]?i?B/s, [0-9]+ s left" "it shows bytes, total, rate and time left"
like "$(tr '\r' '\n' <"$T/tty.log")" "'s6': sent [0-9.]+ [KM]?i?B, [0-9.]+ [KM]?i?B/s" "and each stream's last line"
is "$(snaps "$T/local" kept)" "$(snaps "$S" kept)" "it has every snapshot but pre-restore ones"
is "$("$KEEPFS" list "$T/local" | grep -c pre-restore)" 3 "of which it keeps the source's three"
kfs_init "$T/plain"
run_is 1 "sync into an ordinary store" "$KEEPFS" sync "$M" "$T/plain"
like "$KFS_ERR" "is a store of its own, not a replica" "is refused"
run_is 2 "a bad ssh URL" "$KEEPFS" sync "$M" "ssh://nohost"
run_is 1 "a host that does not answer" "$KEEPFS" sync "$M" "ssh://root@127.0.0.1:1$T/x" "${RK[@]}"
like "$KFS_ERR" "cannot read the state of" "says so"

# ---- rclone: local and sftp remotes ----------------------------------------------
run_ok "send into rclone rcat (local remote)" bash -c \
	"set -o pipefail; '$KEEPFS' send '$M' s6 | rclone rcat ':local:$T/bucket/agent-s6.stream'"
run_ok "and back with rclone cat into receive" bash -c \
	"set -o pipefail; rclone cat ':local:$T/bucket/agent-s6.stream' | '$KEEPFS' receive '$T/from-rclone'"
SFTP=":sftp,host=127.0.0.1,port=$PORT,user=root,key_file=$T/ssh/id"
mkdir -p "$T/sftp"
run_ok "send into rclone rcat (sftp remote)" bash -c \
	"set -o pipefail; '$KEEPFS' send '$M' s6 | rclone rcat '$SFTP:$T/sftp/agent-s6.stream'"
cmp -s "$T/bucket/agent-s6.stream" "$T/sftp/agent-s6.stream"
is $? 0 "both copies of the stream are the same bytes"
run_ok "and back from sftp" bash -c \
	"set -o pipefail; rclone cat '$SFTP:$T/sftp/agent-s6.stream' | '$KEEPFS' receive '$T/from-sftp'"
kfs_listing "$SD/s6" "$T/s6.lst"
for r in from-rclone from-sftp; do
	kfs_mount "$T/$r" "$T/m-$r" || bail_out "cannot mount $r"
	kfs_listing "$T/m-$r" "$T/$r.lst"
	same_listing "$T/s6.lst" "$T/$r.lst" "the copy through rclone ($r) is s6"
	kfs_umount "$T/m-$r"
done

done_testing
