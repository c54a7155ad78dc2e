#!/usr/bin/env python3
"""snapload.py - snapshots taken under load, and what each one holds.

usage: snapload.py MNT WORK [SECONDS] [INTERVAL]

While one process runs SQLite transactions (WAL mode) on MNT/load/app.db
and another appends JSON lines to MNT/load/log.jsonl with an fsync after
each, a snapshot is taken every INTERVAL seconds (default 0.1) for SECONDS
(default 30) with mkdir MNT/.snapshots/NAME.  Just before each mkdir the
count of transactions committed and of lines fsynced so far is recorded
in WORK (on the plain disk, not in the mount).  Then every snapshot is
checked: its database and WAL, copied out to WORK, pass integrity_check
and hold at least the transactions committed before the snapshot was asked
for, each whole; its JSONL file holds only whole lines, each valid JSON,
numbered without a gap, at least as many as had been fsynced.

Prints TAP.  Every process it starts is listed in WORK/pids (one pid a
line) so that the caller can stop them whatever happens to this one.
"""
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def put_count(path, n):
    """Record n in a small file; readers see it through the page cache."""
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"%d\n" % n)
    os.close(fd)
    os.rename(path + ".tmp", path)


def get_count(path):
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def finish(statsfile, n, worst):
    with open(statsfile, "w") as f:
        json.dump({"count": n, "worst": worst}, f)


def sql_writer(db, progress, statsfile):
    """One transaction after another: insert a row, update the counter and
    a page-sized row elsewhere in the file, commit (synchronous=FULL)."""
    signal.signal(signal.SIGTERM, on_term)
    con = sqlite3.connect(db, isolation_level=None, timeout=60)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE IF NOT EXISTS t(seq INTEGER PRIMARY KEY, "
                "pad BLOB NOT NULL)")
    con.execute("CREATE INDEX IF NOT EXISTS t_pad ON t(pad)")
    con.execute("CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY,"
                " n INTEGER NOT NULL, blob BLOB)")
    con.execute("INSERT OR IGNORE INTO counter VALUES(1, 0, NULL)")
    n, worst = 0, 0.0
    while not stop:
        t = time.monotonic()
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t VALUES(?, randomblob(200))", (n,))
        con.execute("UPDATE counter SET n = ?, blob = randomblob(3000) "
                    "WHERE id = 1", (n + 1,))
        con.execute("COMMIT")
        worst = max(worst, time.monotonic() - t)
        n += 1
        put_count(progress, n)
    con.close()
    finish(statsfile, n, worst)


def jsonl_writer(path, progress, statsfile):
    """Append one line, fsync, record the count; again."""
    signal.signal(signal.SIGTERM, on_term)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    n, worst = 0, 0.0
    while not stop:
        line = json.dumps({"seq": n, "note": "memory entry %d" % n,
                           "pad": "x" * (n % 97)}) + "\n"
        t = time.monotonic()
        os.write(fd, line.encode())
        os.fsync(fd)
        worst = max(worst, time.monotonic() - t)
        n += 1
        put_count(progress, n)
    os.close(fd)
    finish(statsfile, n, worst)


class Tap:
    def __init__(self):
        self.n = 0

    def ok(self, good, desc, *diag):
        self.n += 1
        print("%s %d - %s" % ("ok" if good else "not ok", self.n, desc))
        if not good:
            for d in diag[:20]:
                print("#   %s" % d)
        sys.stdout.flush()
        return good

    def diag(self, msg):
        print("# %s" % msg)
        sys.stdout.flush()


def check_db(src, dst, committed):
    """Copy the database and its WAL out of a view; None if sound, else
    what is wrong."""
    os.makedirs(dst)
    for suffix in ("", "-wal"):
        if os.path.exists(src + suffix):
            shutil.copyfile(src + suffix, os.path.join(dst, "app.db" + suffix))
    if not os.path.exists(os.path.join(dst, "app.db")):
        return "no database in the snapshot"
    con = sqlite3.connect(os.path.join(dst, "app.db"))
    try:
        res = con.execute("PRAGMA integrity_check").fetchall()
        if res != [("ok",)]:
            return "integrity_check: %s" % res[:5]
        rows, top = con.execute("SELECT count(*), max(seq) FROM t").fetchone()
        n = con.execute("SELECT n FROM counter WHERE id = 1").fetchone()[0]
    except sqlite3.Error as e:
        return "sqlite: %s" % e
    finally:
        con.close()
    if rows and top != rows - 1:
        return "%d rows but the last is %s: a gap" % (rows, top)
    if n != rows:
        return "counter %d, rows %d: a torn transaction" % (n, rows)
    if rows < committed:
        return "%d transactions, but %d were committed before" % (rows,
                                                                   committed)
    return None


def check_jsonl(src, fsynced):
    try:
        with open(src, "rb") as f:
            data = f.read()
    except OSError as e:
        return "cannot read: %s" % e, 0
    if data and not data.endswith(b"\n"):
        return "ends in a partial line (%d bytes)" % len(data), 0
    lines = data.split(b"\n")[:-1] if data else []
    for i, line in enumerate(lines):
        try:
            seq = json.loads(line)["seq"]
        except (ValueError, KeyError, TypeError):
            return "line %d is not a whole JSON line: %r" % (i, line[:80]), 0
        if seq != i:
            return "line %d has seq %s" % (i, seq), 0
    if len(lines) < fsynced:
        return "%d lines, but %d were fsynced before" % (len(lines),
                                                         fsynced), 0
    return None, len(lines)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    mnt, work = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    load = os.path.join(mnt, "load")
    snapdir = os.path.join(mnt, ".snapshots")
    os.makedirs(load, exist_ok=True)
    pids = open(os.path.join(work, "pids"), "a")
    pids.write("%d\n" % os.getpid())
    pids.flush()
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(143))
    tap = Tap()

    prog = {k: os.path.join(work, k + ".count") for k in ("sql", "jsonl")}
    stats = {k: os.path.join(work, k + ".stats") for k in ("sql", "jsonl")}
    args = {"sql": os.path.join(load, "app.db"),
            "jsonl": os.path.join(load, "log.jsonl")}
    procs = {}
    snaps = []  # (name, jsonl lines fsynced, transactions committed)
    lat = []    # seconds per mkdir
    failed_mkdir = []
    try:
        for k in ("sql", "jsonl"):
            procs[k] = subprocess.Popen([sys.executable, __file__, "--" + k,
                                         args[k], prog[k], stats[k]])
            pids.write("%d\n" % procs[k].pid)
            pids.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
                get_count(prog["sql"]) == 0 or get_count(prog["jsonl"]) == 0):
            if any(p.poll() is not None for p in procs.values()):
                break
            time.sleep(0.05)
        tap.ok(get_count(prog["sql"]) > 0 and get_count(prog["jsonl"]) > 0,
               "both writers are running")

        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            if any(p.poll() is not None for p in procs.values()):
                break
            name = "load-%04d" % k
            fsynced = get_count(prog["jsonl"])
            committed = get_count(prog["sql"])
            t = time.monotonic()
            try:
                os.mkdir(os.path.join(snapdir, name))
                snaps.append((name, fsynced, committed))
            except OSError as e:
                failed_mkdir.append("%s: %s" % (name, e))
            lat.append(time.monotonic() - t)
            k += 1
            nxt = start + k * interval
            now = time.monotonic()
            if nxt > now:
                time.sleep(nxt - now)
        with open(os.path.join(work, "snapshots.tsv"), "w") as f:
            for s in snaps:
                f.write("%s\t%d\t%d\n" % s)
        alive = all(p.poll() is None for p in procs.values())
        tap.ok(alive, "both writers ran for %.0f s" % seconds,
               *["%s exited with %s" % (k, p.returncode)
                 for k, p in procs.items() if p.poll() is not None])
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    tap.ok(all(p.returncode == 0 for p in procs.values()),
           "the writers exited cleanly",
           *["%s: exit status %s" % (k, p.returncode)
             for k, p in procs.items()])
    tap.ok(not failed_mkdir and len(snaps) > 0,
           "every mkdir in .snapshots succeeded (%d)" % len(snaps),
           *failed_mkdir)
    res = {}
    for k in ("sql", "jsonl"):
        try:
            with open(stats[k]) as f:
                res[k] = json.load(f)
        except (OSError, ValueError):
            res[k] = {"count": 0, "worst": float("nan")}

    # what each snapshot holds
    bad_db, bad_jsonl = [], []
    lines_total = 0
    t = time.monotonic()
    for name, fsynced, committed in snaps:
        view = os.path.join(snapdir, name, "load")
        why = check_db(os.path.join(view, "app.db"),
                       os.path.join(work, "copy", name), committed)
        if why:
            bad_db.append("%s: %s" % (name, why))
        shutil.rmtree(os.path.join(work, "copy", name), ignore_errors=True)
        why, n = check_jsonl(os.path.join(view, "log.jsonl"), fsynced)
        if why:
            bad_jsonl.append("%s: %s" % (name, why))
        lines_total += n
    verify = time.monotonic() - t
    tap.ok(not bad_db, "every snapshot's database passes integrity_check "
           "and holds every transaction committed before it", *bad_db)
    tap.ok(not bad_jsonl, "every snapshot's JSONL holds only whole lines, "
           "at least those fsynced before it", *bad_jsonl)
    # the last snapshot must be of the live tree near the end, not an old one
    if snaps:
        name, fsynced, committed = snaps[-1]
        tap.ok(fsynced > 0 and committed > 0,
               "the last snapshot was asked for after %d lines and %d "
               "transactions" % (fsynced, committed))

    tap.diag("snapshots: %d in %.0f s (asked for every %.0f ms)" %
             (len(snaps), seconds, interval * 1000))
    if lat:
        tap.diag("mkdir .snapshots/NAME: median %.1f ms, max %.1f ms" %
                 (statistics.median(lat) * 1000, max(lat) * 1000))
    tap.diag("SQLite writer: %d transactions, worst transaction %.1f ms" %
             (res["sql"]["count"], res["sql"]["worst"] * 1000))
    tap.diag("JSONL writer: %d lines, worst write+fsync %.1f ms" %
             (res["jsonl"]["count"], res["jsonl"]["worst"] * 1000))
    tap.diag("checked %d snapshots (%d JSONL lines read) in %.1f s" %
             (len(snaps), lines_total, verify))
    print("1..%d" % tap.n)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--sql":
        sql_writer(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "--jsonl":
        jsonl_writer(*sys.argv[2:])
    else:
        main()
