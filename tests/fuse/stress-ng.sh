#!/bin/bash
# stress-ng.sh - stress-ng's filesystem stressors in the mount, with
# --verify where they have it, for a bounded time each; every one must run
# to success (exit 0, no failure, no skip, some work done).
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd stress-ng
SECS=${KFS_STRESS_SECS:-6}

kfs_setup
M=$KFS_MNT

stressors=(
	"dir"
	"rename"
	"link"
	"symlink"
	"hdd --hdd-bytes 32M"
	"lockf"
	"flock"
	"mmap --mmap-file --mmap-bytes 16M"
	"fallocate --fallocate-bytes 32M"
	"seek --seek-size 64M"
	"xattr"
	"dentry"
)
for s in "${stressors[@]}"; do
	name=${s%% *}
	# one xattr iteration makes thousands of requests, each a FUSE round
	# trip (several seconds in all on a small VM): give it time to finish
	# a few, also under a sanitizer
	secs=$SECS
	[ "$name" = xattr ] && [ "$secs" -lt 30 ] && secs=30
	mkdir -p "$M/$name"
	# shellcheck disable=SC2086
	extra=${s#"$name"}
	run_ok "stress-ng --$name 2$extra for ${secs}s" stress-ng --"$name" 2 $extra --timeout "${secs}s" --temp-path "$M/$name" \
		--verify --metrics-brief
	all="$KFS_OUT$KFS_ERR"
	like "$all" "successful run completed" "$name: successful run"
	unlike "$all" "[Ff]ail|skipp|[Nn]ot implemented|error" "$name: no failure, error or skip reported"
	ops=$(awk -v n="$name" '$4 == n { print $5 }' <<<"$all" | head -n 1)
	check "$name: did some work (${ops:-no} bogo ops)" test "${ops:-0}" -gt 0
	check "$name: the mount is still alive" stat "$M/$name"
	rm -rf "${M:?}/$name"
done
kfs_umount
kfs_fsck "$KFS_STORE"
done_testing
