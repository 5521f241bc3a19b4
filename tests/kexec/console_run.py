#!/usr/bin/env python3
"""Run one QEMU guest for tests/kexec and timestamp its console on the host.

QEMU runs under coreutils `timeout`; its stdout+stderr (the guest's serial console with
-nographic) come through a pipe and every line is stamped with the host's monotonic clock as it
arrives (seconds since QEMU started). The guest's own printk times cannot measure panic ->
crash-kernel entry: the crash kernel's clock starts again at zero. Host arrival times can: the
PL011 under QEMU emits each byte as the guest writes it, and the panic path prints synchronously.

Marks: `--mark NAME=REGEX` (in order). Each mark is the first console line matching its regex
*after* the line that matched the previous mark, so two "Booting Linux" marks find the first
and the second kernel. A mark whose NAME ends in "?" is optional: a later mark may match first,
and the optional one is then given up. Unmatched marks are reported as null (names without "?").

Fails (exit 1) when: a line contains KEXECRS-FAIL; QEMU exits non-zero (124/137: the timeout);
no console output for --idle seconds; a mark listed with --require never matched.

Writes: --log (every line as "[+SSSS.sss] text"), --result (JSON: marks with host seconds,
rc, duration, the failing line).

Usage: console_run.py --log LOG --result JSON --timeout SECS [--idle SECS]
                      [--mark NAME=REGEX]... [--require NAME]... -- qemu-system-aarch64 ARGS...
"""
import argparse
import json
import os
import re
import select
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--timeout", type=int, required=True)
    ap.add_argument("--idle", type=int, default=180)
    ap.add_argument("--mark", action="append", default=[])
    ap.add_argument("--require", action="append", default=[])
    ap.add_argument("--echo", action="store_true", help="copy console lines to stderr")
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    qemu = a.qemu[1:] if a.qemu and a.qemu[0] == "--" else a.qemu
    marks = []
    for m in a.mark:
        name, rx = m.split("=", 1)
        optional = name.endswith("?")
        marks.append((name.rstrip("?"), re.compile(rx), optional))
    found = {name: None for name, _, _ in marks}
    lines_of = {}
    next_mark = 0
    error = None

    t0 = time.monotonic()
    proc = subprocess.Popen(["timeout", "--kill-after=10", str(a.timeout)] + qemu,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    pending = b""
    last_output = t0
    # Line-buffered: a run in progress can be followed (tail -f) line by line.
    log = open(a.log, "w", encoding="utf-8", buffering=1)

    def handle(raw, t):
        nonlocal next_mark, error
        line = raw.decode("utf-8", "replace").rstrip("\r")
        log.write(f"[+{t:9.3f}] {line}\n")
        if a.echo:
            print(f"[+{t:8.3f}] {line}", file=sys.stderr, flush=True)
        for j in range(next_mark, len(marks)):
            name, rx, optional = marks[j]
            if rx.search(line):
                found[name] = round(t, 3)
                lines_of[name] = line
                next_mark = j + 1
                break
            if not optional:
                break
        if "KEXECRS-FAIL" in line and error is None:
            error = "guest failed: " + line.strip()

    try:
        while True:
            r, _, _ = select.select([fd], [], [], 0.5)
            now = time.monotonic()
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    chunk = b""
                if chunk == b"":
                    if proc.poll() is not None:
                        break
                    # EOF without exit: wait for it
                    time.sleep(0.05)
                    continue
                last_output = now
                pending += chunk
                parts = pending.split(b"\n")
                pending = parts.pop()
                for p in parts:
                    handle(p, now - t0)
            elif proc.poll() is not None:
                break
            if error:
                break
            if now - last_output > a.idle:
                error = f"no console output for {a.idle}s"
                break
        if pending:
            handle(pending, time.monotonic() - t0)
    finally:
        if proc.poll() is None:
            proc.terminate()  # `timeout` forwards SIGTERM to QEMU
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    rc = proc.returncode
    dur = round(time.monotonic() - t0, 3)
    if error is None and rc != 0:
        error = f"QEMU exited with {rc}" + (" (timeout)" if rc in (124, 137) else "")
    missing = [n for n in a.require if found.get(n) is None]
    if error is None and missing:
        error = "console never showed: " + ", ".join(missing)
    result = {"rc": rc, "seconds": dur, "marks": found, "lines": lines_of, "error": error}
    with open(a.result, "w") as f:
        json.dump(result, f, indent=1)
    if error:
        print(f"[console_run] ERROR: {error} (console: {a.log})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
