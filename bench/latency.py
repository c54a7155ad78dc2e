#!/usr/bin/env python3
"""Latency of small reads on a keepfs mount while a large write is committed.

usage: bench/latency.py KEEPFS_BINARY [--size-mb N] [--workdir DIR] [-o OPTIONS]

Creates a store and mounts it, writes a small file, then starts a writer
that writes N MiB (default 1024) sequentially and fsyncs it.  While that
write and its commits run, a reader loop drops the small file's pages from
the kernel cache (posix_fadvise DONTNEED, so every read reaches the daemon)
and times a 4 KiB pread of it, and times a lookup of a name that does not
exist (a request the kernel cannot answer from its caches).  Prints the
median, 99th percentile and maximum of each, next to the same loop with no
writer, and the same loop on the plain directory that holds the store.
Everything it mounts or starts is stopped before it exits.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def probe(directory, stop, out_read, out_lookup):
    path = os.path.join(directory, "small")
    fd = os.open(path, os.O_RDONLY)
    n = 0
    try:
        while not stop.is_set():
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            t = time.perf_counter()
            os.pread(fd, 4096, 0)
            out_read.append(time.perf_counter() - t)
            t = time.perf_counter()
            try:
                os.stat(os.path.join(directory, "absent-%d" % n))
            except FileNotFoundError:
                pass
            out_lookup.append(time.perf_counter() - t)
            n += 1
            time.sleep(0.002)
    finally:
        os.close(fd)


def writer(directory, size_mb):
    block = os.urandom(1 << 20)
    fd = os.open(os.path.join(directory, "big"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(size_mb):
            os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)


def run(directory, size_mb, with_writer):
    reads, lookups = [], []
    stop = threading.Event()
    t = threading.Thread(target=probe, args=(directory, stop, reads, lookups))
    t.start()
    start = time.perf_counter()
    if with_writer:
        writer(directory, size_mb)
    else:
        time.sleep(3)
    elapsed = time.perf_counter() - start
    stop.set()
    t.join()
    return reads, lookups, elapsed


def report(label, reads, lookups, elapsed, size_mb):
    def ms(v):
        return "%7.2f" % (v * 1000)

    rate = (" write %4.0f MB/s" % (size_mb / elapsed)) if size_mb else ""
    print("%-28s read 4K: median %s p99 %s max %s ms | lookup: median %s p99 %s max %s ms | %d probes%s"
          % (label, ms(statistics.median(reads)), ms(percentile(reads, 99)), ms(max(reads)),
             ms(statistics.median(lookups)), ms(percentile(lookups, 99)), ms(max(lookups)),
             len(reads), rate))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("keepfs")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("-o", "--options", default=None,
                    help="mount options for keepfs (as keepfs mount -o)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="keepfs-latency-", dir=args.workdir)
    store, mnt, plain = (os.path.join(work, d) for d in ("store", "mnt", "plain"))
    os.mkdir(mnt)
    os.mkdir(plain)
    mounted = False
    try:
        subprocess.run([args.keepfs, "init", store], check=True, stdout=subprocess.DEVNULL)
        opts = ["-o", args.options] if args.options else []
        subprocess.run([args.keepfs, "mount", store, mnt] + opts, check=True)
        mounted = True
        for d in (mnt, plain):
            with open(os.path.join(d, "small"), "wb") as f:
                f.write(os.urandom(4096))
                f.flush()
                os.fsync(f.fileno())

        print("small reads and lookups while %d MiB are written and committed" % args.size_mb)
        r, l, e = run(plain, 0, False)
        report("plain directory, idle", r, l, e, 0)
        r, l, e = run(plain, args.size_mb, True)
        report("plain directory, writing", r, l, e, args.size_mb)
        r, l, e = run(mnt, 0, False)
        report("keepfs, idle", r, l, e, 0)
        r, l, e = run(mnt, args.size_mb, True)
        report("keepfs, writing", r, l, e, args.size_mb)
    finally:
        if mounted:
            if subprocess.run([args.keepfs, "umount", mnt]).returncode != 0:
                subprocess.run(["fusermount3", "-uz", mnt])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
