#!/usr/bin/env python3
"""Run one QEMU guest for make-dumps.sh and serve its checkpoints.

Starts QEMU under coreutils `timeout`, its console (stdout+stderr) going to a log file, and talks
QMP (QEMU's machine-readable monitor) on a unix socket. When the guest prints
"KEXECRS-CHECKPOINT <name>" it takes the QEMU dumps asked for that checkpoint with
`dump-guest-memory`, then creates <outdir>/go-<name> so the guest goes on. A line
"KEXECRS-FAIL" from the guest, a QEMU exit code other than 0, or the deadline fails the run.

Writes a JSON result (--result): QEMU version, the formats QEMU says it supports, each dump
taken or refused (with QEMU's error text) and its duration, the run's duration.

Usage: qemu_run.py --console LOG --qmp SOCK --outdir DIR --timeout SECS --result JSON
                   [--dump CHECKPOINT:FORMAT:FILE]... -- qemu-system-aarch64 ARGS...
FORMAT is a QMP DumpGuestMemoryFormat: elf, kdump-zlib, kdump-lzo, kdump-snappy.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time


class Qmp:
    """Minimal synchronous QMP client (one command at a time, events skipped)."""

    def __init__(self, path, deadline):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"QMP socket {path} never came up")
                time.sleep(0.05)
        self.buf = b""
        self.greeting = self._read()
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        """Returns (ok, value): value is 'return' on success, the error description otherwise."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "return" in reply:
                return True, reply["return"]
            if "error" in reply:
                return False, reply["error"].get("desc", str(reply["error"]))
            # an asynchronous event: skip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--qmp", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--timeout", type=int, required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--dump", action="append", default=[])
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    qemu = a.qemu[1:] if a.qemu and a.qemu[0] == "--" else a.qemu

    dumps = {}
    for d in a.dump:
        cp, fmt, path = d.split(":", 2)
        dumps.setdefault(cp, []).append((fmt, path))

    if os.path.exists(a.qmp):
        os.unlink(a.qmp)
    t_start = time.monotonic()
    deadline = t_start + a.timeout
    result = {"dumps": [], "checkpoints": []}
    with open(a.console, "wb") as con:
        proc = subprocess.Popen(
            ["timeout", "--kill-after=10", str(a.timeout)] + qemu,
            stdin=subprocess.DEVNULL, stdout=con, stderr=subprocess.STDOUT)
    try:
        qmp = Qmp(a.qmp, deadline)
        result["qemu_version"] = qmp.greeting["QMP"]["version"]["qemu"]
        ok, caps = qmp.cmd("query-dump-guest-memory-capability")
        result["dump_formats_supported"] = caps.get("formats", []) if ok else []
        seen = set()
        pos = 0
        pending = b""
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"deadline of {a.timeout}s passed")
            with open(a.console, "rb") as f:
                f.seek(pos)
                chunk = f.read()
            pos += len(chunk)
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                if "KEXECRS-FAIL" in line:
                    raise RuntimeError("guest failed: " + line.strip())
                if line.startswith("KEXECRS-CHECKPOINT "):
                    cp = line.split()[1]
                    if cp in seen:
                        continue
                    seen.add(cp)
                    result["checkpoints"].append(cp)
                    for fmt, path in dumps.get(cp, []):
                        t0 = time.monotonic()
                        if os.path.exists(path):
                            os.unlink(path)
                        ok, val = qmp.cmd("dump-guest-memory", paging=False,
                                          protocol="file:" + os.path.abspath(path),
                                          format=fmt)
                        entry = {"checkpoint": cp, "format": fmt, "file": path,
                                 "ok": ok, "seconds": round(time.monotonic() - t0, 1)}
                        if not ok:
                            entry["error"] = val
                        result["dumps"].append(entry)
                        print(f"[qemu_run] dump {fmt} -> {os.path.basename(path)}: "
                              f"{'ok' if ok else 'REFUSED: ' + str(val)} "
                              f"({entry['seconds']}s)", file=sys.stderr, flush=True)
                    open(os.path.join(a.outdir, "go-" + cp), "w").close()
            time.sleep(0.1)
        rc = proc.wait()
        # The guest's last words can land after the last poll.
        with open(a.console, "rb") as f:
            f.seek(pos)
            tail = f.read().decode("utf-8", "replace")
        if "KEXECRS-FAIL" in tail:
            raise RuntimeError("guest failed: " + tail[tail.index("KEXECRS-FAIL"):].split("\n")[0])
        if rc != 0:
            raise RuntimeError(f"QEMU exited with {rc}" + (" (timeout)" if rc in (124, 137) else ""))
    except BaseException:
        if proc.poll() is None:
            # SIGTERM reaches QEMU through `timeout`, which forwards it to its child.
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    finally:
        result["seconds"] = round(time.monotonic() - t_start, 1)
        with open(a.result, "w") as f:
            json.dump(result, f, indent=1)
    missing = [c for c in dumps if c not in result["checkpoints"]]
    if missing:
        raise RuntimeError(f"guest never reached checkpoints {missing}")


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"[qemu_run] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
