#!/bin/bash
# retention.sh - automatic snapshots, retention and the journal window
# through a real mount, with a test clock (KEEPFS_TEST_CLOCK) moved on by
# hours: ten days of hourly activity leave exactly the auto snapshots the
# settings promise (worked out from the calendar), every manual snapshot
# and the newest pre-restore ones; no auto snapshot without a change or
# with auto=off; the daemon's own thread takes them without being asked;
# commits outside the journal window go; deleted snapshots' views go;
# settings change through keepfs config while mounted and mount options
# override them.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3

kfs_tmpdir
T=$KFS_TMP
S=$T/store
M=$T/mnt
CLOCK=$T/clock
export KEEPFS_TEST_CLOCK=$CLOCK
# Monday 2026-01-05 00:30 UTC
NOW=1767573000
echo "$NOW" >"$CLOCK"
tick() { # SECONDS: move the test clock on
	NOW=$((NOW + $1))
	echo "$NOW" >"$CLOCK"
}
write() { # TEXT: a change to the tree, committed
	printf '%s\n' "$1" >>"$M/memory.jsonl"
	sync "$M/memory.jsonl"
}
auto_names() { # ORIGIN [STORE]: names of that origin, sorted
	"$KEEPFS" list --json "${2:-$S}" | python3 -c '
import json, sys
print(" ".join(sorted(s["name"] for s in json.load(sys.stdin) if s["origin"] == sys.argv[1])))' "$1"
}

kfs_init "$S"
run_ok "settings for the test" "$KEEPFS" config "$S" hourly=6 daily=4 weekly=2 monthly=1 prerestore=2 journal=2h
kfs_mount "$S" "$M" || bail_out "mount failed"

# --- ten days of hourly activity --------------------------------------------------
: >"$T/taken"
for ((h = 0; h < 240; h++)); do
	if ((h % 50 != 25)); then # a quiet hour now and then
		write "{\"hour\": $h}"
	fi
	"$KEEPFS" retain-now "$M" >"$T/pass" 2>&1 || { diag "retain-now: $(cat "$T/pass")"; break; }
	# the daemon's thread may have taken the hour's snapshot itself:
	# every auto name ever listed was taken (the newest always stays)
	ls "$M/.snapshots" | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' >>"$T/taken"
	if ((h == 30)); then
		"$KEEPFS" snapshot "$M" manual-one >/dev/null
	fi
	if ((h % 60 == 40)); then
		"$KEEPFS" restore "$M" manual-one memory.jsonl >/dev/null 2>&1
	fi
	tick 3600
done
sort -u "$T/taken" | sed '/^$/d' >"$T/taken.u"
mv "$T/taken.u" "$T/taken"
is "$(wc -l <"$T/taken")" "234" "an auto snapshot every hour with a change, none in the first hour after the mount nor in the 5 quiet ones"

want=$(python3 - "$T/taken" <<'EOF'
import datetime, sys
taken = [l.strip() for l in open(sys.argv[1]) if l.strip()]
t = [datetime.datetime.strptime(n, "%Y-%m-%dT%H:%M:%SZ") for n in taken]
periods = [lambda d: (d.year, d.month, d.day, d.hour),
           lambda d: (d.year, d.month, d.day),
           lambda d: d.isocalendar()[:2],
           lambda d: (d.year, d.month)]
keep = {len(t) - 1}
for per, n in zip(periods, [6, 4, 2, 1]):
    seen = []
    for i in range(len(t) - 1, -1, -1):
        p = per(t[i])
        if p in seen:
            continue
        seen.append(p)
        if len(seen) <= n:
            keep.add(i)
print(" ".join(sorted(taken[i] for i in keep)))
EOF
)
is "$(auto_names auto)" "$want" "the newest of each of the last 6 hours, 4 days, 2 weeks and 1 month remain, no other"
is "$(auto_names manual)" "manual-one" "the manual snapshot remains"
is "$(auto_names pre-restore | wc -w)" "2" "the newest 2 of 4 pre-restore snapshots remain"
first=${want%% *}
check "a kept snapshot's view is there" test -d "$M/.snapshots/$first"
check_not "a deleted one's view is gone" test -e "$M/.snapshots/$(head -n 1 "$T/taken")"

# --- the journal window -----------------------------------------------------------
run_ok "list the commits" "$KEEPFS" list --commits --json "$S"
is "$(python3 -c '
import json, sys
now = int(sys.argv[1]) * 10**9
old = [c for c in json.load(sys.stdin) if not c.get("snapshots") and c["time_ns"] < now - 2 * 3600 * 10**9]
print(len(old))' "$NOW" <<<"$KFS_OUT")" "0" "no commit older than the 2 h window is left unless a snapshot keeps it"

# --- no change, no snapshot; auto=off ------------------------------------------------
tick 3600
run_ok "a pass with nothing changed" "$KEEPFS" retain-now "$M"
unlike "$KFS_OUT" "auto snapshot" "no auto snapshot without a change"
run_ok "auto=off while mounted" "$KEEPFS" config "$M" auto=off
like "$KFS_OUT" "auto=off" "the new setting is shown"
write "after off"
tick 3600
run_ok "a pass with auto=off" "$KEEPFS" retain-now "$M"
unlike "$KFS_OUT" "auto snapshot" "no auto snapshot with auto=off"

# --- the daemon's own thread -----------------------------------------------------------
run_ok "auto=15m" "$KEEPFS" config "$M" auto=15m
write "for the thread"
tick 1200
name=$(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%SZ)
got=0
for ((i = 0; i < 50; i++)); do
	[[ " $(auto_names auto) " == *" $name "* ]] && { got=1; break; }
	sleep 0.1
done
is "$got" 1 "the daemon takes a due auto snapshot by itself within seconds"
kfs_umount "$M" || bail_out "unmount failed"

# --- a mount option overrides the store's setting ------------------------------------
kfs_mount "$S" "$M" auto=off || bail_out "mount failed"
run_ok "config shows the store's settings" "$KEEPFS" config "$M"
like "$KFS_OUT" "auto=15m" "the store still says 15m"
write "under auto=off"
tick 3600
run_ok "a pass under the mount option" "$KEEPFS" retain-now "$M"
unlike "$KFS_OUT" "auto snapshot" "the mount's auto=off wins"
kfs_umount "$M" || bail_out "unmount failed"

# --- the space budget -----------------------------------------------------------------
S2=$T/store2
kfs_init "$S2"
run_ok "a budget of 1 MiB" "$KEEPFS" config "$S2" max_history=1M journal=1d auto=1h
kfs_mount "$S2" "$M" || bail_out "mount failed"
history() { "$KEEPFS" stats --json "$S2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["history_stored_bytes"])'; }
over=0
for ((h = 0; h < 12; h++)); do
	head -c 300000 /dev/urandom >"$M/blob"
	sync "$M/blob"
	tick 3600
	"$KEEPFS" retain-now "$M" >"$T/pass" 2>&1 || diag "retain-now: $(cat "$T/pass")"
	[ "$(history)" -le $((1 << 20)) ] || over=$((over + 1))
done
is "$over" 0 "after every pass, history stays within 1 MiB (12 rewrites of 300 kB)"
autos=$(auto_names auto "$S2")
ok "$(( $(wc -w <<<"$autos") >= 1 ? 0 : 1 ))" "the newest auto snapshot stays ($autos)"
newest=$(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%SZ)
check "and it is the newest" test -d "$M/.snapshots/$newest"
# a manual snapshot is never deleted, even over the budget
run_ok "a manual snapshot" "$KEEPFS" snapshot "$M" keep-me
for ((h = 0; h < 6; h++)); do
	head -c 300000 /dev/urandom >"$M/blob"
	sync "$M/blob"
	"$KEEPFS" snapshot "$M" "keep-$h" >/dev/null
done
tick 3600
run_ok "a pass over the budget" "$KEEPFS" retain-now "$M"
like "$KFS_OUT" "over budget: [0-9]+ bytes of history, budget 1048576" "it says the budget cannot be met"
is "$(auto_names manual "$S2" | wc -w)" "7" "every manual snapshot remains"
like "$(cat "$KFS_TMP"/daemon.*.log)" "over its budget of 1048576 \\(max_history\\)" "the daemon logs a warning"
kfs_umount "$M" || bail_out "unmount failed"
kfs_fsck "$S"
kfs_fsck "$S2"
done_testing
