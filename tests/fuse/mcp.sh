#!/bin/bash
# mcp.sh - a real MCP server keeps its state on keepfs: the knowledge-graph
# server @modelcontextprotocol/server-memory (from npm) runs with
# MEMORY_FILE_PATH on a mount and is driven over stdio JSON-RPC: it
# creates entities and reads its graph back; its atomic writes show in
# keepfs log as versions of memory.jsonl; the file is damaged (the server
# then fails to read it), restored with keepfs restore to the version
# before the damage, and the server reads the restored graph.  Skipped,
# with the reason, only when npm cannot fetch the server.
. "${KFS_LIB:-$(dirname "$0")/../lib.sh}"
require_cmd python3 node npm

kfs_tmpdir
T=$KFS_TMP
if ! timeout 300 npm install --no-audit --no-fund --prefix "$T/npm" \
	@modelcontextprotocol/server-memory >"$T/npm.log" 2>&1; then
	skip_all "npm cannot install @modelcontextprotocol/server-memory: $(tail -n 1 "$T/npm.log")"
fi
SERVER=$T/npm/node_modules/@modelcontextprotocol/server-memory/dist/index.js
[ -f "$SERVER" ] || bail_out "server-memory installed, but '$SERVER' is missing"

kfs_setup
S=$KFS_STORE
M=$KFS_MNT

# drive.py SERVER MEMORY_FILE CALL...: start the server, initialize, make
# each tool call (NAME=JSON-ARGUMENTS), print one line per call: the
# entity names of the graph it returned, sorted, or "error: ..."
cat >"$T/drive.py" <<'EOF'
import json, os, subprocess, sys
server, memory, calls = sys.argv[1], sys.argv[2], sys.argv[3:]
env = dict(os.environ, MEMORY_FILE_PATH=memory)
p = subprocess.Popen(["node", server], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, env=env, text=True)
n = 0
def rpc(method, params, notify=False):
    global n
    msg = {"jsonrpc": "2.0", "method": method, "params": params}
    if not notify:
        n += 1
        msg["id"] = n
    p.stdin.write(json.dumps(msg) + "\n")
    p.stdin.flush()
    if notify:
        return None
    while True:
        line = p.stdout.readline()
        if not line:
            raise SystemExit("the server exited")
        reply = json.loads(line)
        if reply.get("id") == n:
            return reply
rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "keepfs-test", "version": "1"}})
rpc("notifications/initialized", {}, notify=True)
for call in calls:
    name, args = call.split("=", 1)
    r = rpc("tools/call", {"name": name, "arguments": json.loads(args)})
    res = r.get("result", {})
    if "error" in r or res.get("isError"):
        text = r.get("error", {}).get("message") or res["content"][0]["text"]
        print("error: " + text.splitlines()[0])
        continue
    graph = res.get("structuredContent") or json.loads(res["content"][0]["text"])
    names = sorted(e["name"] for e in graph.get("entities", []))
    print(" ".join(names))
p.stdin.close()
p.wait(timeout=30)
EOF
drive() { python3 "$T/drive.py" "$SERVER" "$M/memory.jsonl" "$@"; }
entity() { # NAME TYPE OBSERVATION
	printf '{"entities": [{"name": "%s", "entityType": "%s", "observations": ["%s"]}]}' "$1" "$2" "$3"
}

run_ok "the server creates two entities and reads its graph" \
	drive "create_entities=$(entity alice person "likes tea")" \
	"create_entities=$(entity keepfs project "versioned state")" "read_graph={}"
is "$(tail -n 1 <<<"$KFS_OUT")" "alice keepfs" "the graph holds both"
sync "$M"
run_ok "snapshot" "$KEEPFS" snapshot "$M" good
run_ok "a third entity" drive "create_entities=$(entity bob person "drinks coffee")" "read_graph={}"
is "$(tail -n 1 <<<"$KFS_OUT")" "alice bob keepfs" "the graph holds three"
sync "$M"
check "the server's file is on the mount" test -s "$M/memory.jsonl"

# the file is damaged, as by a crash of a careless writer
printf '{"type": "entity", "name": "alice", "entityType": "per' >"$M/memory.jsonl"
sync "$M/memory.jsonl"
run_ok "the server with a damaged file" drive "read_graph={}"
like "$KFS_OUT" "^error: " "it cannot read its graph"

run_ok "keepfs log of memory.jsonl" "$KEEPFS" log --json "$M/memory.jsonl"
printf '%s' "$KFS_OUT" >"$T/log.json"
read -r before changes <<<"$(python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
print(v[1]["version"], " ".join(e["change"] for e in v))' "$T/log.json")"
like "$changes" "^modified replaced( replaced)* created$" \
	"the server's writes are versions: created, replaced by each atomic write, then the damage"
run_ok "restore the version before the damage" "$KEEPFS" restore "$M" "$before" memory.jsonl
like "$KFS_OUT" "pre-restore snapshot: pre-restore-" "a pre-restore snapshot is taken"
run_ok "the server after the restore" drive "read_graph={}"
is "$KFS_OUT" "alice bob keepfs" "it reads the graph as it was before the damage"
run_ok "restore the snapshot of two entities" "$KEEPFS" restore "$M" good memory.jsonl
run_ok "the server after that restore" drive "read_graph={}"
is "$KFS_OUT" "alice keepfs" "it reads the snapshot's graph"
run_ok "and goes on writing" drive "create_entities=$(entity carol person "new")" "read_graph={}"
is "$(tail -n 1 <<<"$KFS_OUT")" "alice carol keepfs" "its next write builds on the restored graph"
kfs_umount "$M" || bail_out "unmount failed"
kfs_fsck "$S"
done_testing
