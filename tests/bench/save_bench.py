#!/usr/bin/env python3
"""Times makedumpfile against `vmcore save` on the same dumps and prints a table.
Run through save-bench.sh. Not a test: it prints numbers and asserts no times.

Each run writes a real output file (removed after its size is taken). Measured per run:
  wall      seconds from fork until the output is on disk: the whole command's exit (for
            arm64 binaries: the qemu-aarch64-static process, i.e. including the emulation),
            then an fsync of the output file. `vmcore save` syncs its output before it
            exits (the fsync after finds nothing to write); makedumpfile leaves that to the
            kdump script's `sync`, and a dump not yet on disk is not saved;
  peak RSS  ru_maxrss of the child from wait4() (for arm64 binaries: the qemu-user process,
            which holds the emulated program's memory plus QEMU's own translator and code
            cache, so it is an upper bound on what the program would use natively);
  input     throughput = the input file's apparent size / wall seconds (the /proc/vmcore
            copies are sparse: holes read as zeros without disk I/O, as /proc/vmcore reads
            memory without I/O);
  output    bytes of the finished file.
Min and median over --runs runs are printed; the runs go round robin over the tools (run 1 of
every tool, then run 2 of every tool, ...), so both sides of a ratio saw the same stretch of
the host. Each tool runs with its default threads and with
one thread; makedumpfile also with --num-threads equal to the host's cores (its own parallel
mode). "throughput / makedumpfile" divides the median wall of makedumpfile's fastest setting
at the same compression by the row's median wall; "size / makedumpfile" compares with that
setting's output.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def run_once(cmd, out, env):
    if os.path.exists(out):
        os.unlink(out)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    if os.path.exists(out):
        fd = os.open(out, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    size = os.path.getsize(out) if os.path.exists(out) else None
    if os.path.exists(out):
        os.unlink(out)
    return wall, ru.ru_maxrss, size, p.returncode, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="arm64 root with usr/bin/makedumpfile")
    ap.add_argument("--vmcore-arm64", help="static aarch64 vmcore binary (with `save`)")
    ap.add_argument("--vmcore-native", help="host vmcore binary (with `save`)")
    ap.add_argument("--scratch", required=True, help="directory for the output files")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("dumps", nargs="+")
    a = ap.parse_args()
    qemu = shutil.which("qemu-aarch64-static")
    env = dict(os.environ, QEMU_LD_PREFIX=a.root)
    mdf = [qemu, os.path.join(a.root, "usr/bin/makedumpfile")]
    cores = os.cpu_count() or 1
    tools = [("makedumpfile arm64", "lzo", mdf + ["-d", "31", "-l"]),
             (f"makedumpfile arm64 --num-threads {cores}", "lzo",
              mdf + ["--num-threads", str(cores), "-d", "31", "-l"]),
             ("makedumpfile arm64", "zlib", mdf + ["-d", "31", "-c"])]
    for label, binary in (("vmcore save arm64", a.vmcore_arm64 and [qemu, a.vmcore_arm64]),
                          ("vmcore save x86_64", a.vmcore_native and [a.vmcore_native])):
        if not binary:
            continue
        for comp in ("lzo", "zlib", "zstd"):
            tools.append((f"{label} (-j {cores})", comp, binary + ["save", "-d", "31", "-c", comp]))
            if comp == "lzo" and cores > 1:
                tools.append((f"{label} -j 1", comp, binary + ["save", "-j", "1", "-d", "31", "-c", comp]))
    os.makedirs(a.scratch, exist_ok=True)
    rows = []
    for dump in a.dumps:
        insize = os.path.getsize(dump)
        # Round robin: each run of each tool, then the next run of each, so every tool samples
        # the same stretch of the host's speed (a block of one tool's runs, then the next
        # tool's, had put minutes of host drift between the two sides of a ratio).
        batch = [{"dump": os.path.basename(dump), "tool": label, "comp": comp, "cmd": cmd,
                  "insize": insize, "walls": [], "rss": [], "sizes": [], "fail": None}
                 for label, comp, cmd in tools]
        out = os.path.join(a.scratch, "out.kdump")
        for i in range(a.runs):
            for r in batch:
                if r["fail"]:
                    continue
                wall, maxrss, size, rc, err = run_once(r["cmd"] + [dump, out], out, env)
                if rc != 0 or size is None:
                    r["fail"] = f"exit {rc}: {err.strip().splitlines()[-1] if err.strip() else ''}"
                else:
                    r["walls"].append(wall)
                    r["rss"].append(maxrss)
                    r["sizes"].append(size)
                if i == a.runs - 1 or r["fail"]:
                    print(f"  {r['dump']} {r['tool']} {r['comp']}: "
                          + (r["fail"] if r["fail"] else
                             f"walls {' '.join(f'{w:.2f}' for w in r['walls'])} s, "
                             f"{r['sizes'][-1]} bytes, max RSS {max(r['rss']) // 1024} MiB"),
                          file=sys.stderr, flush=True)
        rows.extend(batch)

    def med(r):
        return statistics.median(r["walls"]) if r["walls"] else None

    base = {}
    for r in rows:
        if r["tool"].startswith("makedumpfile") and not r["fail"]:
            k = (r["dump"], r["comp"])
            if k not in base or med(r) < med(base[k]):
                base[k] = r
    hdr = ("dump", "tool", "-c", "wall min s", "wall median s", "input MB/s (median)",
           "output MiB", "peak RSS MiB", "throughput / makedumpfile", "size / makedumpfile")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        if r["fail"]:
            print(f"| {r['dump']} | {r['tool']} | {r['comp']} | failed: {r['fail']} |" + " |" * 6)
            continue
        m = med(r)
        b = base.get((r["dump"], r["comp"]))
        tr = sr = "-"
        if b is not None and b is not r and not b["fail"]:
            tr = f"{med(b) / m:.2f}x"
            sr = f"{r['sizes'][-1] / b['sizes'][-1]:.2f}x"
        print("| " + " | ".join([
            r["dump"], r["tool"], r["comp"], f"{min(r['walls']):.2f}", f"{m:.2f}",
            f"{r['insize'] / m / 1e6:.0f}", f"{r['sizes'][-1] / 2**20:.1f}",
            f"{max(r['rss']) / 1024:.0f}", tr, sr]) + " |")
    for (dump, comp), b in sorted(base.items()):
        print(f"\nmakedumpfile's fastest at {comp} on {dump}: {b['tool']}, median {med(b):.2f} s",
              end="")
    print()
    print(f"\n{a.runs} runs each; peak RSS of arm64 binaries is the qemu-aarch64-static process's "
          "ru_maxrss (program + emulator); wall includes an fsync of the output after the tool "
          "exits; input MB/s = apparent input size / wall.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
