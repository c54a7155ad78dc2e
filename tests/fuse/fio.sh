#!/bin/bash
# fio.sh - fio with verify=crc32c: sequential 1 MiB writes and random 4 KiB
# writes of 256 MiB each, verified as written, then verified again from
# the store after a remount.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd fio
SIZE=${KFS_FIO_SIZE:-256M}

kfs_setup
M=$KFS_MNT

# fio_run NAME DESC WANT ARGS...: fio must exit 0, and its job summary
# "error written_kib read_kib" must be WANT
fio_run() {
	local name=$1 desc=$2 want=$3 out
	shift 3
	out=$KFS_TMP/$name.json
	run_ok "$desc" fio --verify_state_save=0 --name="$name" --directory="$M" --size="$SIZE" --ioengine=psync \
		--verify=crc32c --verify_fatal=1 --output-format=json --output="$out" "$@"
	is "$(python3 - "$out" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])
job = j["jobs"][0]
print(job["error"], job["write"]["io_kbytes"], job["read"]["io_kbytes"])
PY
)" "$want" "$desc: no error, every byte written and verified"
}

kib=$(($(numfmt --from=iec "$SIZE") / 1024))
fio_run seq "sequential write, 1 MiB blocks, verify" "0 $kib $kib" --rw=write --bs=1M --end_fsync=1
fio_run rand "random write, 4 KiB blocks, verify" "0 $kib $kib" --rw=randwrite --bs=4k --end_fsync=1

kfs_remount
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
# with --verify_only fio counts the skipped write phase as written
fio_run seq "verify the sequential file after a remount" "0 $kib $kib" --rw=write --bs=1M --verify_only
fio_run rand "verify the random file after a remount" "0 $kib $kib" --rw=randwrite --bs=4k --verify_only
kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
