#!/usr/bin/env python3
"""Helpers for tests/drill/crash-drill (host side).

  drill.py qmp-regs --sock SOCK --out DIR --timeout SECS
      Waits for the guest's DIR/ready (written just before it panics), connects to QEMU's QMP
      socket, runs the human-monitor command "info registers -a" (QEMU's own view of every
      vCPU: the ground truth), writes DIR/qemu-regs.txt, then DIR/go so the guest panics.
      Exits 0 when the dump was taken, 1 otherwise (the guest still panics after 30 s).

  drill.py evaluate --name N --firmware F --wedge W --payload P --expected E --run RUN
                    --verify-json J --verify-rc RC --wedge-ko KO --nm NM [--timing K=V]...
      Decides one scenario and prints its JSON record (one line) on stdout.

Expected outcomes:
  all-captured   vmcore verify: every CPU captured; with a wedge, CPU 1's pc must resolve to
                 wedge_spin (and QEMU's own pc of CPU 1, when taken, too).
  cpu1-missing   vmcore verify: CPU 1 missing with a reason containing "failed to stop".
"""
import argparse
import bisect
import json
import os
import re
import socket
import subprocess
import sys
import time


# ---------------------------------------------------------------- QMP
def qmp_regs(a):
    ready = os.path.join(a.out, "ready")
    deadline = time.monotonic() + a.timeout
    while not os.path.exists(ready):
        if time.monotonic() > deadline:
            print("qmp-regs: the guest never wrote 'ready'", file=sys.stderr)
            return 1
        time.sleep(0.1)
    ok = False
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(a.sock)
        f = s.makefile("rw", encoding="utf-8", newline="\n")

        def cmd(obj):
            f.write(json.dumps(obj) + "\n")
            f.flush()
            while True:
                line = f.readline()
                if not line:
                    raise EOFError("QMP closed")
                r = json.loads(line)
                if "return" in r or "error" in r:
                    return r

        json.loads(f.readline())  # greeting
        cmd({"execute": "qmp_capabilities"})
        t = time.monotonic()
        r = cmd({"execute": "human-monitor-command",
                 "arguments": {"command-line": "info registers -a"}})
        if "return" in r:
            with open(os.path.join(a.out, "qemu-regs.txt"), "w") as o:
                o.write(r["return"])
            ok = True
            print(f"qmp-regs: info registers -a taken in {time.monotonic() - t:.3f}s", file=sys.stderr)
        else:
            print(f"qmp-regs: {r}", file=sys.stderr)
        s.close()
    except Exception as e:  # noqa: BLE001 - report and let the guest go on
        print(f"qmp-regs: {e}", file=sys.stderr)
    with open(os.path.join(a.out, "go"), "w") as o:
        o.write("go\n")
    return 0 if ok else 1


def qemu_pcs(path):
    """{cpu: pc} from 'info registers -a' text."""
    pcs, cpu = {}, None
    try:
        text = open(path).read()
    except OSError:
        return pcs
    for line in text.splitlines():
        m = re.match(r"\s*CPU#(\d+)", line)
        if m:
            cpu = int(m.group(1))
        m = re.search(r"\bPC=([0-9a-fA-F]+)", line)
        if m:
            pcs[0 if cpu is None else cpu] = int(m.group(1), 16)
            cpu = None
    return pcs


# ---------------------------------------------------------------- symbols
class Kallsyms:
    """The guest's /proc/kallsyms (as root: real addresses, module symbols tagged [mod])."""

    def __init__(self, path):
        self.addrs, self.names = [], []
        try:
            rows = []
            for line in open(path):
                p = line.split()
                if len(p) < 3 or p[1] not in "tTwW":
                    continue
                a = int(p[0], 16)
                if a == 0:
                    continue
                rows.append((a, p[2] + (" " + p[3] if len(p) > 3 else "")))
            rows.sort()
            self.addrs = [r[0] for r in rows]
            self.names = [r[1] for r in rows]
        except OSError:
            pass

    def resolve(self, pc):
        i = bisect.bisect_right(self.addrs, pc) - 1
        if i < 0:
            return None
        name = self.names[i]
        base = name.split()[0]
        mod = name[len(base):].strip()
        return f"{base}+0x{pc - self.addrs[i]:x}" + (f" {mod}" if mod else "")


def nm_symbol(nm, ko, sym):
    """(offset in .text, size) of sym in the module object, from `nm -S`."""
    try:
        out = subprocess.run([nm, "-S", "--defined-only", ko], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[3] == sym and p[2] in "tT":
            return int(p[0], 16), int(p[1], 16)
    return None


def read_hex(path):
    try:
        return int(open(path).read().split()[0], 16)
    except (OSError, ValueError, IndexError):
        return None


def resolve_pc(pc, verify_sym, text_base, spin, ksyms):
    """-> (symbol or None, method)."""
    if pc is None:
        return None, None
    if verify_sym:
        return verify_sym, "vmcore-verify"
    if text_base is not None and spin is not None:
        off, size = spin
        rel = pc - text_base - off
        if 0 <= rel < size:
            return f"wedge_spin+0x{rel:x}/0x{size:x} [wedge]", "wedge .text + nm"
    s = ksyms.resolve(pc)
    if s:
        return s, "guest /proc/kallsyms"
    return None, None


def guest_stop_times(console):
    """From the first kernel's printk stamps: (panic -> the last stop message, seconds),
    SDEI rung microseconds (the module's own measure), or None."""
    t_sysrq = t_stop = us = None
    answered, unanswered = set(), set()
    boots = 0
    try:
        lines = open(console, errors="replace").read().splitlines()
    except OSError:
        return None, None, set(), set()
    for line in lines:
        m = re.match(r"^\[\+\s*[\d.]+\] \[\s*([\d.]+)\] (.*)$", line)
        if not m:
            continue
        t, msg = float(m.group(1)), m.group(2)
        if "Booting Linux on physical CPU" in msg:
            boots += 1
            if boots > 1:
                break
        if "sysrq: Trigger a crash" in msg and t_sysrq is None:
            t_sysrq = t
        elif t_sysrq is not None and re.search(
                r"SMP: (failed to stop secondary CPUs|stopped secondary CPUs)|sdei-stop: .*(did not answer|failed to stop)", msg):
            t_stop = t
        mu = re.search(r"sdei-stop: SDEI rung: CPUs (.*) answered, (\d+) us", msg)
        if mu:
            us = int(mu.group(2))
            answered |= cpu_list(mu.group(1))
        mn = re.search(r"sdei-stop: CPU(\d+) did not answer", msg)
        if mn:
            unanswered.add(int(mn.group(1)))
    d = None if t_sysrq is None or t_stop is None else round(t_stop - t_sysrq, 6)
    return d, us, answered, unanswered


def cpu_list(s):
    """'1', '1-3', '0,2' -> set of ints ('' -> empty)."""
    out = set()
    for part in s.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out |= set(range(int(lo), int(hi) + 1))
        elif part.isdigit():
            out.add(int(part))
    return out


def as_int(v):
    if v is None:
        return None
    return int(v, 16) if isinstance(v, str) else int(v)


def evaluate(a):
    out = os.path.join(a.run, "out")
    timings = {}
    for kv in a.timing:
        k, v = kv.split("=", 1)
        try:
            timings[k] = round(float(v), 3)
        except ValueError:
            timings[k] = None
    rec = {"name": a.name, "firmware": a.firmware, "wedge": a.wedge, "payload": a.payload,
           "expected": a.expected, "verdict": None, "missing": None, "ok": False,
           "cpu1_pc": None, "cpu1_symbol": None, "cpu1_symbol_method": None,
           "cpu1_reason": None, "qemu_cpu1_pc": None, "qemu_cpu1_symbol": None,
           "method": None, "timings": timings, "problems": [], "run": a.run}
    problems = rec["problems"]
    d, us, answered, unanswered = guest_stop_times(os.path.join(a.run, "console.log"))
    timings["panic_to_stop_done_guest"] = d
    timings["sdei_rung_us"] = us
    if a.payload != "none":
        rec["payload_answered"] = sorted(answered)
        rec["payload_did_not_answer"] = sorted(unanswered)
    try:
        v = json.load(open(a.verify_json))
    except (OSError, ValueError) as e:
        problems.append(f"no vmcore verify result: {e}")
        v = None
    ksyms = Kallsyms(os.path.join(out, "kallsyms"))
    text_base = read_hex(os.path.join(out, "wedge.text"))
    spin = nm_symbol(a.nm, a.wedge_ko, "wedge_spin")
    if v is not None:
        rec["verdict"] = v.get("verdict")
        rec["method"] = v.get("method")
        miss = v.get("missing") or []
        rec["missing"] = [m if isinstance(m, int) else m.get("cpu", m) for m in miss]
        cpu1 = next((c for c in v.get("cpus", []) if c.get("cpu") == 1), None)
        if cpu1 is not None:
            rec["cpu1_reason"] = cpu1.get("reason")
            pc = as_int(cpu1.get("pc"))
            if pc is not None:
                rec["cpu1_pc"] = f"0x{pc:x}"
                rec["cpu1_symbol"], rec["cpu1_symbol_method"] = resolve_pc(
                    pc, cpu1.get("pc_symbol"), text_base, spin, ksyms)
    qpc = qemu_pcs(os.path.join(out, "qemu-regs.txt")).get(1)
    if qpc is not None:
        rec["qemu_cpu1_pc"] = f"0x{qpc:x}"
        rec["qemu_cpu1_symbol"], _ = resolve_pc(qpc, None, text_base, spin, ksyms)
        if rec["cpu1_pc"] is not None:
            rec["qemu_cpu1_pc_equal"] = rec["cpu1_pc"] == rec["qemu_cpu1_pc"]
    if text_base is not None:
        rec["wedge_text"] = f"0x{text_base:x}"
    if spin is not None:
        rec["wedge_spin_nm"] = {"offset": f"0x{spin[0]:x}", "size": f"0x{spin[1]:x}"}

    in_spin = lambda s: bool(s) and s.startswith("wedge_spin+")  # noqa: E731
    if v is not None:
        if a.expected == "all-captured":
            if rec["verdict"] != "all-captured" or rec["missing"] or a.verify_rc != 0:
                problems.append(f"expected every CPU captured, got {rec['verdict']} missing {rec['missing']} (exit {a.verify_rc})")
            if a.wedge != "none":
                if not in_spin(rec["cpu1_symbol"]):
                    problems.append(f"CPU 1's captured pc {rec['cpu1_pc']} is not in wedge_spin ({rec['cpu1_symbol']})")
                if a.payload == "sdei-stop" and (1 not in answered or 1 in unanswered):
                    problems.append("sdei-stop.ko reported CPU 1 did not answer SDEI within its 100 ms wait "
                                    f"(answered {sorted(answered)}, rung {us} us); a note in the dump was written late")
                if qpc is None:
                    problems.append("QEMU's own register dump of CPU 1 was not taken")
                elif not in_spin(rec["qemu_cpu1_symbol"]):
                    problems.append(f"QEMU's pc of CPU 1 {rec['qemu_cpu1_pc']} is not in wedge_spin ({rec['qemu_cpu1_symbol']})")
        elif a.expected == "cpu1-missing":
            if 1 not in (rec["missing"] or []):
                problems.append(f"expected CPU 1 missing, got {rec['verdict']} missing {rec['missing']}")
            if "failed to stop" not in (rec["cpu1_reason"] or ""):
                problems.append(f"expected CPU 1's reason 'failed to stop', got {rec['cpu1_reason']!r}")
            if a.verify_rc != 1:
                problems.append(f"vmcore verify exit status {a.verify_rc}, expected 1")
        else:
            problems.append(f"unknown expectation {a.expected}")
    rec["ok"] = not problems
    print(json.dumps(rec))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("qmp-regs")
    q.add_argument("--sock", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--timeout", type=float, required=True)
    e = sub.add_parser("evaluate")
    for k in ("name", "firmware", "wedge", "payload", "expected", "run", "verify-json",
              "wedge-ko", "nm"):
        e.add_argument("--" + k, required=True)
    e.add_argument("--verify-rc", type=int, required=True)
    e.add_argument("--timing", action="append", default=[])
    a = ap.parse_args()
    return qmp_regs(a) if a.cmd == "qmp-regs" else evaluate(a)


if __name__ == "__main__":
    sys.exit(main())
