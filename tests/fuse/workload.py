#!/usr/bin/env python3
"""workload.py DIR LOG ERRLOG SEED - a write workload to kill a daemon under.

Runs until killed, or until the filesystem stops answering.  Files named
d-* are written once, fsync'd, and only then recorded in LOG as
"path size sha256" (LOG is outside the mount): after any crash each of them
must be there, exactly.  Everything else is churn: files created, appended,
overwritten in place, truncated, renamed, linked, unlinked, directories
made, attributes set, with no fsync.  An error other than the ones a dead
daemon gives (ENOTCONN, ECONNABORTED) is written to ERRLOG with the time
it happened, so the caller can tell errors before the kill from after.
"""
import errno
import hashlib
import os
import random
import sys
import time

DEAD = {errno.ENOTCONN, errno.ECONNABORTED}
BUDGET = 8 << 20


def main():
    top, log_path, err_path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rnd = random.Random(seed)
    log = open(log_path, "a", buffering=1)
    churn, n = [], 0
    try:
        os.makedirs(top, exist_ok=True)
    except OSError:
        return 0

    written = [0]

    def data(lo, hi):
        # keep a store that never forgets from growing without bound
        written[0] += hi
        if written[0] > BUDGET:
            time.sleep(0.01)
        return rnd.randbytes(rnd.randint(lo, hi))

    while True:
        n += 1
        op = rnd.random()
        try:
            if op < 0.25:
                p = os.path.join(top, f"d-{seed}-{n}")
                b = data(1, 65536)
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, b)
                os.fsync(fd)
                os.close(fd)
                log.write(f"{p} {len(b)} {hashlib.sha256(b).hexdigest()}\n")
            elif op < 0.45 or not churn:
                p = os.path.join(top, f"c-{seed}-{n}")
                with open(p, "wb") as f:
                    f.write(data(0, 100000))
                churn.append(p)
            elif op < 0.55:
                with open(rnd.choice(churn), "ab") as f:
                    f.write(data(1, 20000))
            elif op < 0.65:
                p = rnd.choice(churn)
                fd = os.open(p, os.O_WRONLY)
                os.pwrite(fd, data(1, 50000), rnd.randint(0, 150000))
                os.close(fd)
            elif op < 0.70:
                os.truncate(rnd.choice(churn), rnd.randint(0, 200000))
            elif op < 0.78:
                i = rnd.randrange(len(churn))
                q = os.path.join(top, f"c-{seed}-{n}-r")
                os.rename(churn[i], q)
                churn[i] = q
            elif op < 0.82:
                q = os.path.join(top, f"c-{seed}-{n}-l")
                os.link(rnd.choice(churn), q)
                churn.append(q)
            elif op < 0.90:
                os.unlink(churn.pop(rnd.randrange(len(churn))))
            elif op < 0.95:
                d = os.path.join(top, f"dir-{seed}-{n}")
                os.mkdir(d)
                with open(os.path.join(d, "f"), "wb") as f:
                    f.write(data(0, 5000))
            else:
                os.setxattr(rnd.choice(churn), "user.k", data(1, 200))
        except OSError as e:
            if e.errno not in DEAD:
                with open(err_path, "a") as f:
                    f.write(f"{time.time():.3f} op {n} ({op:.2f}): {e}\n")
            return 0


if __name__ == "__main__":
    sys.exit(main())
