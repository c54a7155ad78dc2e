#!/usr/bin/env python3
"""report.py RESULTS.tsv [MARKDOWN_OUT] - turn the raw benchmark figures
(lines "target<TAB>metric<TAB>run<TAB>value") into a table of medians with
keepfs/best-peer and keepfs/plain ratios.  Prints a text table; with a
second argument also writes the same table as Markdown.
"""
import os
import statistics
import sys

ENV = os.environ.get
NFILES = "{:,}".format(int(ENV("NFILES", "20000")))
# key, label, unit, higher is better
METRICS = [
    ("seqwrite", "seq write %s, bs=1M, end_fsync" % ENV("SEQ_SIZE", "1G"), "MB/s", True),
    ("seqread", "seq read %s, bs=1M, cold cache" % ENV("SEQ_SIZE", "1G"), "MB/s", True),
    ("randwrite", "4 KiB random write %s, verify=crc32c" % ENV("RAND_SIZE", "256M"),
     "IOPS", True),
    ("create", "create %s files" % NFILES, "files/s", True),
    ("stat", "stat %s files" % NFILES, "files/s", True),
    ("unlink", "unlink %s files" % NFILES, "files/s", True),
    ("sqlite", "SQLite WAL, %s tx x %s rows, sync=FULL"
     % (ENV("SQL_TX", "500"), ENV("SQL_ROWS", "100")), "tx/s", True),
    ("tar", "extract %s tarball" % ENV("TAR_SRC", "/usr/include"), "s", False),
    ("rss", "daemon peak RSS (VmHWM)", "MiB", False),
]
ORDER = ["plain", "bindfs", "gocryptfs", "keepfs", "keepfs-enc"]
PEERS = ["bindfs", "gocryptfs"]


def fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return "{:,.0f}".format(v)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def main():
    if len(sys.argv) < 2:
        print("usage: report.py RESULTS.tsv [MARKDOWN_OUT]", file=sys.stderr)
        return 2
    raw = {}
    for line in open(sys.argv[1]):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 4:
            continue
        target, metric, _run, value = parts
        try:
            raw.setdefault((target, metric), []).append(float(value))
        except ValueError:
            pass
    targets = [t for t in ORDER if any(k[0] == t for k in raw)]
    med = {k: statistics.median(v) for k, v in raw.items()}
    nruns = max((len(v) for v in raw.values()), default=0)

    header = ["figure", "unit"] + targets
    has_keepfs = "keepfs" in targets
    if has_keepfs:
        header += ["keepfs/best peer", "keepfs/plain", "target met"]
    has_enc = has_keepfs and "keepfs-enc" in targets
    if has_enc:
        header += ["encrypted/keepfs"]
    rows = []
    for key, label, unit, higher in METRICS:
        vals = {t: med.get((t, key)) for t in targets}
        if all(v is None for v in vals.values()):
            continue
        row = [label, unit + (" (higher is better)" if higher else " (lower is better)")]
        row += [fmt(vals[t]) for t in targets]
        if has_keepfs:
            k = vals.get("keepfs")
            peers = [vals[p] for p in PEERS if vals.get(p) is not None]
            best = (max(peers) if higher else min(peers)) if peers else None
            plain = vals.get("plain")
            r_best = k / best if k is not None and best else None
            r_plain = k / plain if k is not None and plain else None
            met = "-"
            if r_best is not None:
                met = "yes" if (r_best >= 1.0 if higher else r_best <= 1.0) else "no"
            if key == "rss" and k is not None:
                met = "yes" if k < 100 else "no"
            row += ["%.2f" % r_best if r_best is not None else "-",
                    "%.2f" % r_plain if r_plain is not None else "-", met]
        if has_enc:
            k, e = vals.get("keepfs"), vals.get("keepfs-enc")
            row += ["%.2f" % (e / k) if k and e is not None else "-"]
        rows.append(row)

    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    print("medians of %d run(s)" % nruns)
    for r in [header] + rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        print("  ".join(cells))
    if has_keepfs:
        print("ratios: keepfs divided by the other figure; for 's' and 'MiB' lower "
              "is better, so a ratio below 1 is the good side there")
        print("target met: keepfs at least as good as the better peer "
              "(daemon RSS: under 100 MiB)")
    if has_enc:
        print("encrypted/keepfs: the cost of encryption, keepfs-enc (an "
              "encrypted store, key file) divided by keepfs")

    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as out:
            out.write("| " + " | ".join(header) + " |\n")
            out.write("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|\n")
            for r in rows:
                out.write("| " + " | ".join(r) + " |\n")
            out.write("\nMedians of %d run(s).\n" % nruns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
