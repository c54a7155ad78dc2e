# tree.sh - build_tree DIR: a tree of every kind of object keepfs keeps
# (modes, owners, ns times, xattrs, hard links, symlinks, special files,
# holes, a 255-byte name); 27 objects.  Source it; run build_tree in a
# subshell (it uses set -e).
build_tree() {
	set -e
	local M=$1
	umask 022
	mkdir -p "$M/a/b/c" "$M/sticky" "$M/empty"
	chmod 1777 "$M/sticky"
	chmod 0700 "$M/a/b"
	head -c 3000000 /dev/urandom >"$M/a/random"
	printf 'small\n' >"$M/a/small"
	: >"$M/a/empty-file"
	python3 -c 'import sys; sys.stdout.write("compressible line\n" * 60000)' >"$M/a/b/text"
	head -c 131072 /dev/urandom >"$M/a/b/c/same1"
	cp "$M/a/b/c/same1" "$M/a/b/c/same2"
	chmod 0600 "$M/a/small"
	chmod 4755 "$M/a/random"
	chmod 2750 "$M/a/b/c"
	chown 1000:1000 "$M/a/small"
	chown 4242:77 "$M/a/b/text"
	chown 65534:65534 "$M/empty"
	# hard links: three names of one file, in two directories
	printf 'linked\n' >"$M/a/h1"
	ln "$M/a/h1" "$M/a/h2"
	ln "$M/a/h1" "$M/a/b/h3"
	# symlinks: relative, absolute, dangling, to a directory, long
	ln -s small "$M/a/sl-rel"
	ln -s /etc/hostname "$M/a/sl-abs"
	ln -s does/not/exist "$M/a/sl-dangling"
	ln -s b/c "$M/a/sl-dir"
	ln -s "$(printf 'x%.0s' $(seq 1 2000))" "$M/a/sl-long"
	chown -h 555:556 "$M/a/sl-rel"
	# special files
	mkfifo -m 0640 "$M/a/fifo"
	mknod -m 0600 "$M/a/chr" c 1 7
	mknod -m 0660 "$M/a/blk" b 8 3
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$M/a/sock"
	# holes: leading, middle and trailing, and a file that is all hole
	head -c 65536 /dev/urandom | dd of="$M/a/sparse" bs=64k seek=16 conv=notrunc status=none
	head -c 4096 /dev/urandom | dd of="$M/a/sparse" bs=4096 seek=1000 conv=notrunc status=none
	truncate -s 20M "$M/a/sparse"
	truncate -s 1G "$M/a/allhole"
	# xattrs: user, trusted, security, binary and empty values, on a dir
	setfattr -n user.plain -v hello "$M/a/small"
	setfattr -n user.empty "$M/a/small"
	setfattr -n user.bin -v 0x00ff00ff10 "$M/a/small"
	setfattr -n trusted.t -v tval "$M/a/random"
	setfattr -n security.s -v sval "$M/a/random"
	setfattr -n user.dir -v d "$M/a/b"
	setfattr -n trusted.link -v l -h "$M/a/sl-rel"
	setfattr -n user.big -v "0x$(head -c 3000 /dev/urandom | od -An -v -tx1 | tr -d ' \n')" "$M/a/h1"
	# a 255-byte name
	printf 'long name\n' >"$M/a/$(printf 'n%.0s' $(seq 1 255))"
	# times, to the ns, set last; atime-* files are never read
	printf 'atime\n' >"$M/a/atime-file"
	touch -h -d '@1234567890.123456789' "$M/a/sl-rel"
	touch -m -d '@1500000000.987654321' "$M/a/random"
	touch -a -d '@1400000000.000000001' -m -d '@1600000000.5' "$M/a/atime-file"
	touch -d '@1000000000.1' "$M/a/b/c"
	touch -d '@2000000000' "$M/empty"
	set +e
}

