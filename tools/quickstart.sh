#!/usr/bin/env bash
# quickstart.sh - install what keepfs needs, build it, create a demo store
# and mount it, with a sample MCP server state in it.  Safe to run again:
# what already exists (packages, build, store, mount, sample files) is kept.
#
# Exit status: 0 ok, 1 failed, 2 usage error.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: tools/quickstart.sh [options]

Installs the build dependencies (apt-get, as root), builds keepfs, creates
a demo store and mounts it with 'keepfs mount'.

options:
  --store DIR       store to create or reuse (default: /var/lib/keepfs/demo)
  --mount DIR       mount point (default: /srv/keepfs-demo)
  --build-dir DIR   meson build directory (default: build)
  --install         also 'meson install' keepfs (into /usr/local)
  --no-install      skip apt-get (the packages must already be there)
  -h, --help        show this help
EOF
}

cd "$(dirname "$0")/.."

store=/var/lib/keepfs/demo
mnt=/srv/keepfs-demo
build_dir=build
do_apt=1
do_meson_install=0

need_arg() { [ "$2" -ge 2 ] || { echo "quickstart: option '$1' needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case "$1" in
	--store) need_arg "$1" $#; store=$2; shift ;;
	--mount) need_arg "$1" $#; mnt=$2; shift ;;
	--build-dir) need_arg "$1" $#; build_dir=$2; shift ;;
	--install) do_meson_install=1 ;;
	--no-install) do_apt=0 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "quickstart: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

# 1. packages ----------------------------------------------------------------
PACKAGES=(build-essential meson ninja-build pkg-config libfuse3-dev fuse3
	libsqlite3-dev libzstd-dev libsodium-dev scdoc sqlite3 util-linux)
if [ "$do_apt" = 1 ]; then
	missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "packages: all installed"
	else
		[ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}): run as root or install them yourself and use --no-install"
		say "packages: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
fi
[ -c /dev/fuse ] || die "'/dev/fuse' is missing: load the fuse module (modprobe fuse) or give the container the device"

# 2. build ---------------------------------------------------------------------
if [ -f "$build_dir/build.ninja" ]; then
	say "build: updating '$build_dir'"
else
	say "build: configuring '$build_dir'"
	log=$(mktemp)
	meson setup "$build_dir" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "meson setup failed"; }
	rm -f "$log"
fi
ninja -C "$build_dir" >/dev/null || { ninja -C "$build_dir" >&2 || true; die "build failed"; }
keepfs=$(pwd)/$build_dir/tools/keepfs
[ -x "$keepfs" ] || die "build produced no '$keepfs'"
if [ "$do_meson_install" = 1 ]; then
	say "install: meson install -C '$build_dir'"
	meson install -C "$build_dir" >/dev/null
	keepfs=$(command -v keepfs || echo "$keepfs")
fi
say "keepfs: $keepfs ($("$keepfs" --version 2>&1 | head -1))"

# 3. store -----------------------------------------------------------------------
if [ -f "$store/store.db" ]; then
	say "store: '$store' exists, reusing it"
elif [ -e "$store" ] && [ -n "$(ls -A "$store" 2>/dev/null || echo x)" ]; then
	die "'$store' exists and is not a keepfs store; choose another with --store"
else
	mkdir -p "$(dirname "$store")"
	"$keepfs" init "$store"
	say "store: created '$store'"
fi

# 4. mount -----------------------------------------------------------------------
if mountpoint -q "$mnt" 2>/dev/null; then
	fstype=$(findmnt -n -o FSTYPE --target "$mnt" 2>/dev/null || true)
	case "$fstype" in
	*keepfs*)
		src=$(findmnt -n -o SOURCE --target "$mnt" 2>/dev/null || true)
		say "mount: '$mnt' is already mounted (store '$src'), leaving it as it is" ;;
	*) die "'$mnt' is already mounted by something else ($fstype); choose another with --mount" ;;
	esac
else
	mkdir -p "$mnt"
	"$keepfs" mount "$store" "$mnt"
	say "mount: '$store' mounted at '$mnt'"
fi

# 5. a sample MCP server state ------------------------------------------------------
if [ ! -e "$mnt/mcp.json" ]; then
	cat >"$mnt/mcp.json" <<EOF
{
  "mcpServers": {
    "memory": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-memory"],
      "env": { "MEMORY_FILE_PATH": "$mnt/memory.jsonl" }
    }
  }
}
EOF
	say "sample: wrote '$mnt/mcp.json'"
fi
if [ ! -e "$mnt/memory.jsonl" ]; then
	cat >"$mnt/memory.jsonl" <<'EOF'
{"type":"entity","name":"keepfs","entityType":"project","observations":["keeps every state of this directory as a version"]}
{"type":"entity","name":"demo","entityType":"store","observations":["created by tools/quickstart.sh"]}
{"type":"relation","from":"demo","to":"keepfs","relationType":"is served by"}
EOF
	say "sample: wrote '$mnt/memory.jsonl'"
fi

cat <<EOF

keepfs is running: '$mnt' is a versioned directory backed by '$store'.

Try next:
  ls -l $mnt
  $keepfs snapshot $mnt before-change    # or: mkdir $mnt/.snapshots/before-change
  echo '{"type":"entity","name":"me","entityType":"user","observations":[]}' >> $mnt/memory.jsonl
  $keepfs diff $mnt before-change        # what changed since
  cat $mnt/.snapshots/before-change/memory.jsonl   # the old version
  ls $mnt/.snapshots/@-1m/               # the tree a minute ago
  sqlite3 $mnt/notes.db 'PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);'
  $keepfs stats $mnt
  $keepfs umount $mnt      # final commit, then the daemon exits
  $keepfs mount $store $mnt   # everything is back
EOF
