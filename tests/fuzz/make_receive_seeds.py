#!/usr/bin/env python3
"""make_receive_seeds.py DIR - seed inputs for fuzz_receive.c.

Each input is a mode byte (even: a full stream into a new replica; odd:
an incremental one onto the harness's replica of an empty root at commit
7) and records (u8 kind, u16 length, bytes: even kinds are blobs, odd
kinds rows records in the op format of core/keep_i.h, enum rop).
"""
import hashlib
import os
import sys


def le(v, n):
    return v.to_bytes(n, "little")


def inode(ino, mode, nlink, parent, size=0, target=None):
    b = bytes([3]) + le(ino, 8) + le(mode, 4) + le(0, 4) + le(0, 4) + le(nlink, 4)
    b += le(size, 8) + le(0, 8) + le(1, 8) * 4 + le(0, 8) + le(parent, 8)
    if target is None:
        return b + le(0, 2)
    return b + le(len(target) + 1, 2) + target


def dirent(d, i, name, ino):
    return bytes([8]) + le(d, 8) + le(i, 8) + bytes([len(name)]) + name + le(ino, 8)


def block(ino, idx, h):
    return bytes([4]) + le(ino, 8) + le(idx, 8) + h


def xattr(ino, name, val):
    return bytes([6]) + le(ino, 8) + bytes([len(name)]) + name + le(len(val), 4) + val


def rec(kind, payload):
    return bytes([kind]) + le(len(payload), 2) + payload


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    data = b"hello, replica\n"
    h = hashlib.blake2b(data, digest_size=32).digest()
    full = (inode(1, 0o40755, 3, 1) + dirent(1, 1, b"a", 2)
            + inode(2, 0o100644, 1, 0, len(data)) + block(2, 0, h)
            + dirent(1, 2, b"d", 3) + inode(3, 0o40700, 2, 1)
            + dirent(3, 3, b"l", 4) + inode(4, 0o120777, 1, 0, 4, b"../a")
            + xattr(2, b"user.k", b"v"))
    seeds = {
        "full-tree": bytes([0]) + rec(0, data) + rec(1, full),
        "incremental-file": bytes([1]) + rec(0, data) + rec(1, (
            inode(1, 0o40755, 2, 1) + dirent(1, 5, b"new", 9)
            + inode(9, 0o100600, 1, 0, len(data)) + block(9, 0, h)
            + xattr(1, b"user.root", b"x"))),
        "incremental-gone": bytes([1]) + rec(1, bytes([1]) + le(1, 8)),
    }
    for name, b in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b)


main()
