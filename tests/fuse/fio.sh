#!/bin/bash
# fio.sh - fio with verify=crc32c: sequential 1 MiB writes and random 4 KiB
# writes of 256 MiB each, verified as written, then verified again from
# the store after a remount.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd fio
SIZE=${KFS_FIO_SIZE:-256M}

kfs_setup
M=$KFS_MNT

# fio_run NAME DESC ARGS...: fio must exit 0 with no job error; prints the
# job's JSON summary "werr rerr written_kib read_kib"
fio_run() {
	local name=$1 desc=$2 out
	shift 2
	out=$KFS_TMP/$name.json
	run_ok "$desc" fio --name="$name" --directory="$M" --size="$SIZE" --ioengine=psync \
		--verify=crc32c --verify_fatal=1 --output-format=json --output="$out" "$@"
	python3 - "$out" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])
job = j["jobs"][0]
print(job["error"], job["write"]["io_kbytes"], job["read"]["io_kbytes"])
PY
}

kib=$(($(numfmt --from=iec "$SIZE") / 1024))
r=$(fio_run seq "sequential write, 1 MiB blocks, verify" --rw=write --bs=1M --end_fsync=1)
is "$r" "0 $kib $kib" "sequential: no error, all written and all verified"
r=$(fio_run rand "random write, 4 KiB blocks, verify" --rw=randwrite --bs=4k --end_fsync=1)
is "$r" "0 $kib $kib" "random: no error, all written and all verified"

kfs_remount
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
r=$(fio_run seq "verify the sequential file after a remount" --rw=write --bs=1M --verify_only)
is "$r" "0 0 $kib" "sequential file verified after a remount"
r=$(fio_run rand "verify the random file after a remount" --rw=randwrite --bs=4k --verify_only)
is "$r" "0 0 $kib" "random file verified after a remount"
kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
