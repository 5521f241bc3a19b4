#!/usr/bin/env python3
"""Times `vmcore verify`/`vmcore cpus` against drgn and `readelf -n` on the
same dumps, and prints a table. Run through vmcore-bench.sh."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

DRGN_SCRIPT = r"""
from drgn.helpers.linux.cpumask import for_each_possible_cpu
from drgn.helpers.linux.sched import cpu_curr
for cpu in for_each_possible_cpu(prog):
    try:
        t = prog.stack_trace(cpu_curr(prog, cpu))
        print(cpu, hex(t[0].pc))
    except Exception as e:
        print(cpu, "error", e)
"""


def timed(cmd, runs, env=None):
    """Median wall seconds of `runs` runs, and the last run's output."""
    times = []
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        out = p
    return statistics.median(times), out


def pages(stderr):
    m = re.search(r"(\d+) pages of", stderr or "")
    return int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmcore", required=True)
    ap.add_argument("--drgn", required=True)
    ap.add_argument("--vmlinux", required=True)
    ap.add_argument("--system-map", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("dir")
    a = ap.parse_args()
    truth = json.load(open(os.path.join(a.dir, "truth.json")))
    files = [d["file"] for d in truth.get("files", [])]
    rows = []
    for f in files:
        path = os.path.join(a.dir, f)
        if not os.path.exists(path):
            continue
        size = os.path.getsize(path)
        v_t, v = timed([a.vmcore, "verify", "--stats", path], a.runs)
        c_t, c = timed([a.vmcore, "cpus", "--stats", path], a.runs)
        s_t, s = timed([a.vmcore, "verify", "--stats", "--system-map", a.system_map, path], a.runs)
        x_t, x = timed([a.vmcore, "cpus", "--stats", "--vmlinux", a.vmlinux, path], a.runs)
        r_t, _ = timed(["readelf", "-n", path], a.runs) if open(path, "rb").read(4) == b"\x7fELF" else (None, None)
        d_t, d = timed([a.drgn, "-q", "-c", path, "-s", a.vmlinux, "-e", DRGN_SCRIPT], max(1, a.runs // 2))
        rows.append((f, size, v_t, pages(v.stderr), c_t, pages(c.stderr), s_t, x_t, r_t, d_t, d.returncode))
    hdr = ("dump", "size MiB", "verify ms", "pages", "cpus ms", "pages", "verify+System.map ms",
           "cpus+vmlinux ms", "readelf -n ms", "drgn+vmlinux ms", "drgn/verify+map", "drgn/cpus+vmlinux")
    print(" | ".join(hdr))
    for (f, size, v_t, vp, c_t, cp, s_t, x_t, r_t, d_t, drc) in rows:
        ratio = d_t / s_t if s_t else float("nan")
        ratio_x = d_t / x_t if x_t else float("nan")
        print(" | ".join([
            f, str(size >> 20), f"{v_t*1e3:.1f}", str(vp), f"{c_t*1e3:.1f}", str(cp),
            f"{s_t*1e3:.1f}", f"{x_t*1e3:.1f}", "-" if r_t is None else f"{r_t*1e3:.1f}",
            f"{d_t*1e3:.0f}" + ("" if drc == 0 else f" (exit {drc})"), f"{ratio:.0f}x", f"{ratio_x:.0f}x",
        ]))
    print("\ntargets: verify < 50 ms without debug info; >= 20x faster than drgn with it; "
          "pages read independent of dump size")


if __name__ == "__main__":
    sys.exit(main())
