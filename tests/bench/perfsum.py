#!/usr/bin/env python3
"""Sums a `perf record` profile by thread and by what the CPU was doing.

    perfsum.py PERF.DATA [--top N]

Debian's libcrypto carries no symbols for its assembly routines, so perf
shows bare addresses there; this names them by their instructions instead
(a window of the disassembly around each address): sha256rnds2 -> "SHA-256
(SHA-NI)", AES rounds -> "AES-GCM" or "AES", carry-less multiply alone ->
"GHASH".  Everything else is reported by symbol (kernel symbols grouped as
"[kernel] sym").  Prints, per process/thread, the share of samples and the
top entries.
"""
import collections
import re
import subprocess
import sys

_cls_cache = {}


def classify(dso_path, addr):
    key = (dso_path, addr >> 8)
    if key in _cls_cache:
        return _cls_cache[key]
    start = max(0, addr - 512)
    out = subprocess.run(["objdump", "-d", "--start-address=0x%x" % start,
                          "--stop-address=0x%x" % (addr + 512), dso_path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    name = "libcrypto other"
    if "sha256rnds2" in out:
        name = "SHA-256 (SHA-NI)"
    elif re.search(r"\bv?aesenc", out) and "pclmulqdq" in out:
        name = "AES-GCM (AES-NI + PCLMUL)"
    elif re.search(r"\bv?aes(enc|dec)", out):
        name = "AES"
    elif "pclmulqdq" in out:
        name = "GHASH (PCLMUL)"
    _cls_cache[key] = name
    return name


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    top = 12
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
    out = subprocess.run(["perf", "script", "-i", sys.argv[1], "-F", "pid,tid,comm,ip,sym,dso",
                          "--show-mmap-events", "--hide-call-graph"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    maps = {}   # dso basename -> (path, load address, pgoff)
    by_thread = collections.Counter()
    by_what = collections.defaultdict(collections.Counter)
    total = 0
    for line in out.splitlines():
        if "PERF_RECORD_MMAP" in line:
            m = re.search(r"\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+|0) .*\]: [r-][w-]x[ps] (/\S+)",
                          line)
            if m:
                path = m.group(4)
                maps.setdefault(path.rsplit("/", 1)[-1], (path, int(m.group(1), 16),
                                                          int(m.group(3), 16)))
            continue
        m = re.match(r"\s*(\S+)\s+(\d+)/(\d+)\s+([0-9a-f]+)\s+(.*)\((\S+)\)\s*$", line)
        if not m:
            continue
        comm, pid, tid, ip, sym, dso = m.groups()
        sym = sym.strip()
        base = dso.rsplit("/", 1)[-1]
        if dso.startswith("[kernel"):
            what = "[kernel] " + sym.split("+")[0]
        elif sym in ("[unknown]", "") and base in maps:
            path, load, pgoff = maps[base]
            what = classify(path, int(ip, 16) - load + pgoff)
        else:
            what = "%s %s" % (base, sym.split("+")[0])
        t = "%s %s/%s" % (comm, pid, tid)
        by_thread[t] += 1
        by_what[t][what] += 1
        by_what["ALL"][what] += 1
        total += 1
    if total == 0:
        print("no samples")
        return 1
    print("%d samples" % total)
    for t, n in by_thread.most_common():
        print("\n%-40s %5.1f%% of all samples" % (t, 100.0 * n / total))
        for what, k in by_what[t].most_common(top):
            print("    %5.1f%%  %s" % (100.0 * k / total, what))
    print("\nALL threads, by activity")
    for what, k in by_what["ALL"].most_common(top * 2):
        print("    %5.1f%%  %s" % (100.0 * k / total, what))
    return 0


if __name__ == "__main__":
    sys.exit(main())
