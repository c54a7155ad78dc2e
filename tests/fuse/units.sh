#!/bin/bash
# units.sh - the systemd units shipped in docs/systemd pass
# "systemd-analyze verify" (unit names match their mount points, every
# setting is known, commands exist), and agree with each other: the
# automount and the service name the mount's Where=, the mount's What= is
# the store its RequiresMountsFor= waits for, and its Type= is keepfs; the
# service that mounts an encrypted store hands keepfs the credential name
# it reads.  verify checks that ExecStart='s binary exists: /usr/bin/keepfs
# is linked to the keepfs under test for the while, if it is not there.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd systemd-analyze systemd-escape

kfs_tmpdir
T=$KFS_TMP
U=$(cd "$(dirname "$0")/../../docs/systemd" && pwd)
cp "$U"/* "$T/"

if [ ! -e /usr/bin/keepfs ]; then
	ln -s "$KEEPFS" /usr/bin/keepfs
	kfs_track_file /usr/bin/keepfs
fi
run_ok "systemd-analyze verify of the four units" \
	systemd-analyze verify --man=no --generators=no \
	"$T/srv-agent.mount" "$T/srv-agent.automount" "$T/mcp-agent.service" \
	"$T/keepfs-vault.service"
is "$KFS_ERR" "" "with nothing to say"

setting() { sed -n "s/^$2=//p" "$T/$1"; }
where=$(setting srv-agent.mount Where)
is "$(systemd-escape --path --suffix=mount "$where")" "srv-agent.mount" "the mount unit is named after its Where="
is "$(setting srv-agent.automount Where)" "$where" "the automount covers the same place"
like "$(setting mcp-agent.service RequiresMountsFor)" "^$where\$" "the service waits for the mount"
like "$(setting mcp-agent.service ReadWritePaths)" "^$where\$" "and may write there only"
is "$(setting srv-agent.mount Type)" "keepfs" "the mount's type is keepfs (mount.keepfs)"
is "$(setting srv-agent.mount RequiresMountsFor)" "$(setting srv-agent.mount What)" \
	"the mount waits for the file system of its store"

cred=$(setting keepfs-vault.service LoadCredential)
is "${cred%%:*}" "keepfs.passphrase" "the vault's credential has the name keepfs reads"
like "$(setting keepfs-vault.service ExecStart)" "^/usr/bin/keepfs mount $(setting keepfs-vault.service RequiresMountsFor) " \
	"it mounts the store its RequiresMountsFor= waits for"
# the credential reaches keepfs as systemd hands it over
mkdir -p "$T/creds" "$T/mnt"
printf 'vault words\n' >"$T/pass"
"$KEEPFS" init --passphrase-file "$T/pass" "$T/vault" >/dev/null
cp "$T/pass" "$T/creds/${cred%%:*}"
CREDENTIALS_DIRECTORY=$T/creds kfs_mount "$T/vault" "$T/mnt" || bail_out "mount with the credential failed"
pass "a mount finds the passphrase in \$CREDENTIALS_DIRECTORY/${cred%%:*}"
kfs_umount "$T/mnt"

# a unit whose name does not match is refused: the check can fail
sed "s|^Where=.*|Where=/srv/elsewhere|" "$U/srv-agent.mount" >"$T/srv-agent.mount"
run_is 1 "a mount unit whose Where= does not match its name" \
	systemd-analyze verify --man=no --generators=no "$T/srv-agent.mount"
like "$KFS_ERR" "Where= setting doesn't match unit name" "is refused by the check"
done_testing
