#!/usr/bin/env python3
"""sqlite_wal.py DIR [TX] [ROWS] - SQLite inserts in WAL mode with
synchronous=FULL into an indexed table: TX transactions of ROWS rows each.
Prints "tx <transactions per second>" and checks integrity afterwards.
"""
import os
import random
import sqlite3
import sys
import time


def main():
    if len(sys.argv) < 2:
        print("usage: sqlite_wal.py DIR [TX] [ROWS]", file=sys.stderr)
        return 2
    path = os.path.join(sys.argv[1], "bench.db")
    ntx = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    nrows = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    rnd = random.Random(42)

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY, k TEXT NOT NULL, v BLOB)")
    db.execute("CREATE INDEX kv_k ON kv(k)")

    t0 = time.monotonic()
    for _ in range(ntx):
        db.execute("BEGIN")
        db.executemany("INSERT INTO kv (k, v) VALUES (?, ?)",
                       (("%016x" % rnd.getrandbits(64), rnd.randbytes(100))
                        for _ in range(nrows)))
        db.execute("COMMIT")
    t1 = time.monotonic()

    n = db.execute("SELECT count(*) FROM kv").fetchone()[0]
    ok = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    if n != ntx * nrows or ok != "ok":
        print("sqlite_wal: %d rows, integrity_check '%s'" % (n, ok), file=sys.stderr)
        return 1
    print("tx %.1f" % (ntx / (t1 - t0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
