#!/usr/bin/env python3
"""listing.py DIR - one line per object under DIR, for before/after diffs.

Each line: path, type, mode, owner, size, nlink, rdev, mtime and ctime in
ns, the hard-link group (the first path seen for the inode), the symlink
target, every extended attribute, the data/hole map (SEEK_DATA/SEEK_HOLE)
and a SHA-256 of the content.  Files whose name starts with "atime-" are
not read, and their atime is listed too.  With LISTING_NO_CTIME=1 in the
environment ctime is left out (a restore moves it, as any change does).
"""
import hashlib
import os
import stat
import sys


def extents(fd, size):
    out, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append(f"{d}-{h}")
        off = h
    return ",".join(out) or "none"


def xattrs(path):
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError as e:
        return f"listxattr-error:{e.errno}"
    vals = []
    for n in names:
        v = os.getxattr(path, n, follow_symlinks=False)
        vals.append(f"{n}={v.hex() if len(v) <= 64 else hashlib.sha256(v).hexdigest()}")
    return ";".join(vals)


def main():
    root = sys.argv[1]
    groups = {}
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            row = [repr(rel).strip("'"), oct(kind), oct(stat.S_IMODE(st.st_mode)),
                   f"{st.st_uid}:{st.st_gid}", str(st.st_size), str(st.st_nlink),
                   str(st.st_rdev), str(st.st_mtime_ns)]
            if os.environ.get("LISTING_NO_CTIME") != "1":
                row.append(str(st.st_ctime_ns))
            key = st.st_ino
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                row.append("group=" + groups.setdefault(key, rel))
            if stat.S_ISLNK(st.st_mode):
                row.append("target=" + os.readlink(path))
            row.append("xattr=" + xattrs(path))
            if stat.S_ISREG(st.st_mode):
                if name.startswith("atime-"):
                    row.append(f"atime={st.st_atime_ns}")
                else:
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        row.append("map=" + extents(fd, st.st_size))
                        os.lseek(fd, 0, os.SEEK_SET)
                        h = hashlib.sha256()
                        while True:
                            b = os.read(fd, 1 << 20)
                            if not b:
                                break
                            h.update(b)
                        row.append("sha=" + h.hexdigest())
                    finally:
                        os.close(fd)
            rows.append(" ".join(row))
    for r in sorted(rows):
        print(r)


if __name__ == "__main__":
    main()
