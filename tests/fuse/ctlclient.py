#!/usr/bin/env python3
"""ctlclient.py - a raw client of a keepfs daemon's control socket, for tests.

usage: ctlclient.py SOCKET [--magic M] [--claim N] [--read N] [--hold S]
                          [--fill N] [--repeat K] ARG...

Sends one request (u32 little-endian length, then "M\\0" and each ARG
NUL-terminated; M defaults to "KEEPFS-CTL 1"), copies 'o' frames to stdout
and 'e' frames to stderr, and exits with the 'x' frame's status.
--claim N sends a header claiming N bytes and only a little of them.
--read N reads N bytes of the reply, then closes the connection (exit 0);
with --repeat K it does so K times, reading N, 2N, ... K*N bytes.
--hold S connects, waits S seconds without sending anything, then closes.
--fill N adds one more ARG of N bytes 'a' (too long for a command line).
A reply that ends without an 'x' frame exits 99.
"""
import socket
import struct
import sys
import time


def request(magic, args, fill):
    payload = magic + b"\0" + b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in args)
    if fill is not None:
        payload += b"a" * fill + b"\0"
    return payload


def leave_early(path, payload, limit):
    """Send a request, read limit bytes of the reply and close."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(struct.pack("<I", len(payload)) + payload)
    got = 0
    while got < limit:
        b = s.recv(min(65536, limit - got))
        if not b:
            break
        got += len(b)
    s.close()


def main():
    args = sys.argv[1:]
    path = args.pop(0)
    magic = b"KEEPFS-CTL 1"
    claim = None
    read_limit = None
    hold = None
    fill = None
    repeat = 1
    while args and args[0] in ("--magic", "--claim", "--read", "--hold", "--fill", "--repeat"):
        opt = args.pop(0)
        val = args.pop(0)
        if opt == "--magic":
            magic = val.encode()
        elif opt == "--claim":
            claim = int(val)
        elif opt == "--fill":
            fill = int(val)
        elif opt == "--read":
            read_limit = int(val)
        elif opt == "--repeat":
            repeat = int(val)
        else:
            hold = float(val)
    if read_limit is not None:
        for i in range(1, repeat + 1):
            leave_early(path, request(magic, args, fill), read_limit * i)
        return 0
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    if hold is not None:
        time.sleep(hold)
        s.close()
        return 0
    payload = request(magic, args, fill)
    try:
        if claim is not None:
            s.sendall(struct.pack("<I", claim) + payload[:4096])
            s.shutdown(socket.SHUT_WR)
        else:
            s.sendall(struct.pack("<I", len(payload)) + payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    f = s.makefile("rb")
    while True:
        hdr = f.read(4)
        if len(hdr) < 4:
            return 99
        (n,) = struct.unpack("<I", hdr)
        body = f.read(n)
        if len(body) < n or n == 0:
            return 99
        kind, data = body[:1], body[1:]
        if kind == b"o":
            sys.stdout.buffer.write(data)
        elif kind == b"e":
            sys.stdout.buffer.flush()
            sys.stderr.buffer.write(data)
        elif kind == b"x":
            sys.stdout.buffer.flush()
            return int(data.decode())
        else:
            return 98


if __name__ == "__main__":
    sys.exit(main())
