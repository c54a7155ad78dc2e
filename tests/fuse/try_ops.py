#!/usr/bin/env python3
"""try_ops.py DIR FILE - try every change on a directory and a file of a
read-only view and print one line per attempt: "op ERRNO-NAME" ("op ok"
when it succeeded, which in a view is a bug).

DIR is a directory in the view holding FILE (a regular file) and a
subdirectory "sub" (empty or not)."""
import errno
import os
import sys


def attempt(name, fn):
    try:
        fn()
        print(f"{name} ok")
    except OSError as e:
        print(f"{name} {errno.errorcode.get(e.errno, e.errno)}")


def main():
    d, f = sys.argv[1], sys.argv[2]
    sub = os.path.join(d, "sub")
    attempt("open-wronly", lambda: os.close(os.open(f, os.O_WRONLY)))
    attempt("open-rdwr", lambda: os.close(os.open(f, os.O_RDWR)))
    attempt("open-append", lambda: os.close(os.open(f, os.O_WRONLY | os.O_APPEND)))
    attempt("open-trunc", lambda: os.close(os.open(f, os.O_RDONLY | os.O_TRUNC)))
    attempt("create", lambda: os.close(os.open(os.path.join(d, "new"), os.O_CREAT | os.O_WRONLY, 0o644)))
    attempt("mknod-fifo", lambda: os.mkfifo(os.path.join(d, "fifo-new")))
    attempt("mkdir", lambda: os.mkdir(os.path.join(d, "newdir")))
    attempt("unlink", lambda: os.unlink(f))
    attempt("rmdir", lambda: os.rmdir(sub))
    attempt("rename", lambda: os.rename(f, os.path.join(d, "renamed")))
    attempt("rename-dir", lambda: os.rename(sub, os.path.join(d, "sub2")))
    attempt("link", lambda: os.link(f, os.path.join(d, "hardlink")))
    attempt("symlink", lambda: os.symlink("target", os.path.join(d, "sl")))
    attempt("chmod", lambda: os.chmod(f, 0o600))
    attempt("chown", lambda: os.chown(f, 1234, 1234))
    attempt("truncate", lambda: os.truncate(f, 0))
    attempt("utime", lambda: os.utime(f, (1, 1)))
    attempt("utime-now", lambda: os.utime(f, None))
    attempt("setxattr", lambda: os.setxattr(f, "user.x", b"v"))
    attempt("removexattr", lambda: os.removexattr(f, "user.snap"))
    attempt("chmod-dir", lambda: os.chmod(d, 0o700))



if __name__ == "__main__":
    main()
