#!/usr/bin/env python3
"""smallfiles.py DIR [COUNT] [SIZE] - create, stat and unlink COUNT small
files in one directory, one process, and print the rate of each phase.

Output (one line each, files per second):
  create <rate>    open(O_CREAT|O_EXCL|O_WRONLY), write SIZE bytes, close
  stat <rate>      stat() of every file, in creation order
  unlink <rate>    unlink() of every file
  combined <rate>  COUNT / (time of all three phases)
"""
import os
import sys
import time


def main():
    if len(sys.argv) < 2:
        print("usage: smallfiles.py DIR [COUNT] [SIZE]", file=sys.stderr)
        return 2
    top = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    d = os.path.join(top, "smallfiles")
    os.mkdir(d)
    payload = os.urandom(size)
    names = [os.path.join(d, "f%06d" % i) for i in range(count)]
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY

    t0 = time.monotonic()
    for n in names:
        fd = os.open(n, flags, 0o644)
        os.write(fd, payload)
        os.close(fd)
    t1 = time.monotonic()
    for n in names:
        st = os.stat(n)
        if st.st_size != size:
            print("smallfiles: '%s' has size %d, expected %d" % (n, st.st_size, size),
                  file=sys.stderr)
            return 1
    t2 = time.monotonic()
    for n in names:
        os.unlink(n)
    t3 = time.monotonic()
    os.rmdir(d)

    print("create %.1f" % (count / (t1 - t0)))
    print("stat %.1f" % (count / (t2 - t1)))
    print("unlink %.1f" % (count / (t3 - t2)))
    print("combined %.1f" % (count / (t3 - t0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
