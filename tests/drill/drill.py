#!/usr/bin/env python3
"""Helpers for tests/drill/crash-drill (host side).

  drill.py qmp-regs --sock SOCK --out DIR --timeout SECS
      Waits for the guest's DIR/ready (written just before it panics), connects to QEMU's QMP
      socket, runs the human-monitor command "info registers -a" (QEMU's own view of every
      vCPU: the ground truth), writes DIR/qemu-regs.txt, then DIR/go so the guest panics.
      Exits 0 when the dump was taken, 1 otherwise (the guest still panics after 30 s).

  drill.py extract-flats --run RUN --disk IMG
      Cuts the flattened streams the crash kernel wrote onto the raw disk (RUN/out/saves.txt)
      out of IMG into RUN/save-JOB.flat.

  drill.py check-saves --run RUN --jobs J,... --vmcore VMCORE --root ARM64ROOT
                       --raw-verify-json J --raw-verify-rc RC --out FILE
      Checks the dumps the crash kernel saved (RUN/out/saves.txt): `vmcore verify --json` as on
      the raw copy (verdict, missing CPUs, exit status, every CPU's pc), makedumpfile
      --dump-dmesg (Debian's arm64 binary under qemu-aarch64-static; flattened streams after
      makedumpfile -R) holding the panic line, and for `vmcore save` files the same bytes as
      the host's `vmcore save` of the raw copy (RUN/vmcore.elf). Writes a JSON list to FILE.

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
import filecmp
import json
import os
import re
import socket
import statistics
import struct
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


# ---------------------------------------------------------------- saved dumps
PANIC_LINE = "Kernel panic - not syncing: sysrq triggered crash"
MIB = 1 << 20


def flat_extract(disk, seek_mib, dst, limit=512 * MIB):
    """Copies the flattened stream written at seek_mib MiB of the disk image to dst, up to and
    including its end record; returns its length or raises ValueError."""
    with open(disk, "rb") as f:
        base = seek_mib * MIB
        f.seek(base)
        head = f.read(4096)
        if not head.startswith(b"makedumpfile\0"):
            raise ValueError(f"{disk}: no flattened-format signature at MiB {seek_mib}")
        pos = 4096
        while True:
            if pos + 16 > limit:
                raise ValueError(f"{disk}: no end record within {limit // MIB} MiB of MiB {seek_mib}")
            f.seek(base + pos)
            rec = f.read(16)
            if len(rec) != 16:
                raise ValueError(f"{disk}: stream at MiB {seek_mib} cut at byte {pos}")
            off, size = struct.unpack(">qq", rec)
            pos += 16
            if off == -1 and size == -1:
                break
            if off < 0 or size < 0:
                raise ValueError(f"{disk}: bad record (offset {off}, size {size}) at byte {pos - 16}")
            pos += size
        f.seek(base)
        with open(dst, "wb") as o:
            left = pos
            while left:
                b = f.read(min(left, 8 * MIB))
                if not b:
                    raise ValueError(f"{disk}: short read at byte {pos - left}")
                o.write(b)
                left -= len(b)
    return pos


def extract_flats(a):
    """Cuts every flattened stream the crash kernel wrote (out/saves.txt) out of the disk image
    into RUN/save-JOB.flat (errors into RUN/save-JOB.flat.err), before the image is truncated."""
    try:
        lines = open(os.path.join(a.run, "out", "saves.txt")).read().splitlines()
    except OSError:
        return 0
    for line in lines:
        p = line.split()
        if len(p) != 5 or p[4] == "-" or p[1] != "0":
            continue
        dst = os.path.join(a.run, f"save-{p[0]}.flat")
        try:
            flat_extract(a.disk, int(p[4]), dst)
        except (OSError, ValueError) as e:
            if os.path.exists(dst):
                os.unlink(dst)
            open(dst + ".err", "w").write(f"{e}\n")
    return 0


# What busybox `time -v` multiplies the peak RSS by (see time_v).
BUSYBOX_RSS_FACTOR = 4


def time_v(log):
    """(wall seconds, max RSS KiB, exit status) from busybox `time -v` output in log."""
    wall = rss = status = None
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return None, None, None
    # busybox prints "0m 1.76s" (or "1h 2m 3s"); GNU time "0:01.76"
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): "
                  r"(?:(\d+)h )?(?:(\d+)[m:] ?)?([\d.]+)s?", text)
    if m:
        wall = round(int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60 + float(m.group(3)), 2)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        # Debian 12's busybox (1.35) converts ru_maxrss, which Linux gives in KiB already, as if it
        # counted 4 KiB pages: what it prints is 4 times the peak RSS (vmcore save's own VmHWM in
        # the same run is the quotient, to the KiB).
        rss = int(m.group(1)) // BUSYBOX_RSS_FACTOR
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        status = int(m.group(1))
    return wall, rss, status


def cpu_pcs(v):
    return {c.get("cpu"): c.get("pc") for c in (v or {}).get("cpus", [])}


def failed(r, msg):
    """A save job `r` that exited non-zero: a problem, or for a threaded makedumpfile job a note
    (a comparison only: Debian's makedumpfile 1.7.2 with --num-threads aborts at times, under
    qemu-user too; reported, not a failure of the drill)."""
    if r["job"].startswith("mdf-") and "-j" in r["job"]:
        r.setdefault("notes", []).append(msg + " (makedumpfile --num-threads, a comparison job)")
    else:
        r["problems"].append(msg)


def check_saves(a):
    """Checks every file the crash kernel saved (out/saves.txt): `vmcore verify --json` must give
    what it gave on the raw /proc/vmcore copy (verdict, missing CPUs, exit status, every CPU's
    pc), and makedumpfile --dump-dmesg must read it and print the panic line. Writes a JSON list."""
    out = os.path.join(a.run, "out")
    try:
        raw = json.load(open(a.raw_verify_json))
    except (OSError, ValueError):
        raw = None
    recs = []
    try:
        lines = open(os.path.join(out, "saves.txt")).read().splitlines()
    except OSError:
        lines = []
    want = [j for j in a.jobs.split(",") if j and j != "none"]
    seen = []
    env = dict(os.environ, QEMU_LD_PREFIX=a.root)
    mdf = ["qemu-aarch64-static", os.path.join(a.root, "usr/bin/makedumpfile")]
    for line in lines:
        p = line.split()
        if len(p) != 5:
            continue
        job, rc, t0, t1, seek = p[0], int(p[1]), float(p[2]), float(p[3]), p[4]
        seen.append(job)
        wall, rss, _ = time_v(os.path.join(out, f"save-{job}.log"))
        r = {"job": job, "exit": rc, "guest_seconds": round(t1 - t0, 2), "time_v_wall": wall,
             "max_rss_kib": rss, "target": "9p" if seek == "-" else f"raw disk at MiB {seek} (-F)",
             "bytes": None, "verify_verdict": None, "verify_missing": None, "verify_rc": None,
             "same_as_raw": None, "dmesg_panic_line": None, "host_verify_s": None,
             "host_dmesg_s": None, "problems": []}
        probs = r["problems"]
        recs.append(r)
        try:  # `vmcore save --json` prints its summary on stdout
            r["summary"] = json.load(open(os.path.join(out, f"save-{job}.out")))
        except (OSError, ValueError):
            pass
        # The RSS correction holds while busybox's peak and vmcore's own VmHWM agree.
        hwm = r.get("summary", {}).get("peak_rss_kib")
        if rc == 0 and rss is not None and hwm and abs(rss - hwm) > hwm // 8:
            probs.append(f"{job}: busybox's peak RSS / {BUSYBOX_RSS_FACTOR} is {rss} KiB but vmcore's "
                         f"VmHWM {hwm} KiB (has busybox's time -v changed?)")
        if rc != 0:
            tail = open(os.path.join(out, f"save-{job}.log"), errors="replace").read().strip().splitlines()[-3:]
            failed(r, f"{job}: exit {rc} in the crash kernel: {' | '.join(tail)}")
            continue
        if seek == "-":
            f = os.path.join(out, f"save-{job}.kdump")
        else:
            f = os.path.join(a.run, f"save-{job}.flat")
            if not os.path.exists(f):
                err = os.path.join(a.run, f"save-{job}.flat.err")
                probs.append(f"{job}: " + (open(err).read().strip() if os.path.exists(err) else "no stream cut out"))
                continue
        r["bytes"] = os.path.getsize(f) if os.path.exists(f) else None
        if r["bytes"] is None:
            probs.append(f"{job}: no output file {f}")
            continue
        t = time.monotonic()
        vp = subprocess.run([a.vmcore, "verify", "--json", f], capture_output=True, text=True)
        r["host_verify_s"] = round(time.monotonic() - t, 3)
        r["verify_rc"] = vp.returncode
        try:
            v = json.loads(vp.stdout)
            r["verify_verdict"] = v.get("verdict")
            r["verify_missing"] = [m if isinstance(m, int) else m.get("cpu", m) for m in v.get("missing") or []]
        except ValueError:
            v = None
            probs.append(f"{job}: vmcore verify printed no JSON (exit {vp.returncode}): {vp.stderr.strip()[-200:]}")
        if v is not None and raw is not None:
            rm = [m if isinstance(m, int) else m.get("cpu", m) for m in raw.get("missing") or []]
            same = (v.get("verdict") == raw.get("verdict") and r["verify_missing"] == rm
                    and vp.returncode == a.raw_verify_rc and cpu_pcs(v) == cpu_pcs(raw))
            r["same_as_raw"] = same
            if not same:
                probs.append(f"{job}: vmcore verify gives {v.get('verdict')} missing {r['verify_missing']} "
                             f"(exit {vp.returncode}) pcs {cpu_pcs(v)}; on the raw copy {raw.get('verdict')} "
                             f"missing {rm} (exit {a.raw_verify_rc}) pcs {cpu_pcs(raw)}")
        # The same save on the host from the raw copy must give the same bytes: /proc/vmcore
        # (read in place through its mapping) and the copy (read with pread) are one input.
        if job.startswith("vmcore-") and seek == "-":
            comp = job.split("-")[1]
            host = f + ".host"
            hp = subprocess.run([a.vmcore, "save", "-j", "1", "-d", "31", "-c", comp,
                                 os.path.join(a.run, "vmcore.elf"), host], capture_output=True, text=True)
            same = hp.returncode == 0 and filecmp.cmp(f, host, shallow=False)
            r["same_bytes_as_host_save"] = same
            if not same:
                probs.append(f"{job}: differs from `vmcore save -d 31 -c {comp}` of the raw copy on the host"
                             f" (exit {hp.returncode}: {hp.stderr.strip()[-200:]})")
            if os.path.exists(host):
                os.unlink(host)
        if "-zstd" in job:
            r["dmesg_panic_line"] = "not checked: makedumpfile 1.7.2 reads no zstd"
            continue
        # makedumpfile reads no flattened stream: -R rearranges it into a file first.
        src = f
        t = time.monotonic()
        if seek != "-":
            src = f + ".kdump"
            with open(f, "rb") as i:
                rp = subprocess.run(mdf + ["-R", src], stdin=i, capture_output=True, text=True, env=env)
            if rp.returncode != 0:
                probs.append(f"{job}: makedumpfile -R failed (exit {rp.returncode}): {rp.stdout.strip()[-200:]}")
                continue
        dm = f + ".dmesg"
        if os.path.exists(dm):  # makedumpfile will not overwrite it
            os.unlink(dm)
        dp = subprocess.run(mdf + ["--dump-dmesg", src, dm], capture_output=True, text=True, env=env)
        r["host_dmesg_s"] = round(time.monotonic() - t, 3)
        text = open(dm, errors="replace").read() if os.path.exists(dm) else ""
        r["dmesg_panic_line"] = PANIC_LINE in text
        if dp.returncode != 0:
            probs.append(f"{job}: makedumpfile --dump-dmesg refused it (exit {dp.returncode}): "
                         f"{(dp.stdout + dp.stderr).strip()[-200:]}")
        elif not r["dmesg_panic_line"]:
            probs.append(f"{job}: makedumpfile --dump-dmesg log has no {PANIC_LINE!r}")
        if src != f:
            os.unlink(src)
    for j in want:
        if j not in seen:
            recs.append({"job": j, "exit": None, "problems": [f"{j}: the crash kernel did not run it"]})
    add_rounds(out, recs)
    json.dump(recs, open(a.out, "w"), indent=1)
    return 0


def add_rounds(out, recs):
    """Repeat rounds (crash-drill --rounds, out/rounds.txt: JOB ROUND EXIT T0 T1): each job's
    times per round, and medians over all its rounds (the first included). A repeat that fails is
    a problem as the first round's would be (a note for a threaded makedumpfile job)."""
    try:
        lines = open(os.path.join(out, "rounds.txt")).read().splitlines()
    except OSError:
        return
    by_job = {r["job"]: r for r in recs}
    for line in lines:
        p = line.split()
        if len(p) != 5 or p[0] not in by_job:
            continue
        job, rnd, rc, t0, t1 = p[0], int(p[1]), int(p[2]), float(p[3]), float(p[4])
        r = by_job[job]
        wall, rss, _ = time_v(os.path.join(out, f"save-{job}.r{rnd}.log"))
        r.setdefault("rounds", []).append({"round": rnd, "exit": rc, "guest_seconds": round(t1 - t0, 2),
                                           "time_v_wall": wall, "max_rss_kib": rss})
        if rc != 0:
            failed(r, f"{job}: exit {rc} in round {rnd}")
    for r in recs:
        if "rounds" not in r or r.get("exit") != 0:
            continue
        ok = [x for x in r["rounds"] if x["exit"] == 0]
        for key in ("guest_seconds", "time_v_wall"):
            vals = [v for v in [r.get(key)] + [x[key] for x in ok] if v is not None]
            if vals:
                r[key + "_median"] = round(statistics.median(vals), 3)
        rss = [v for v in [r.get("max_rss_kib")] + [x["max_rss_kib"] for x in ok] if v is not None]
        if rss:
            r["max_rss_kib_max"] = max(rss)


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

    try:
        rec["vmcore_size"] = int(open(os.path.join(out, "vmcore.size")).read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        rec["capture_cpus"] = open(os.path.join(out, "capture.cpus")).read().strip()
    except OSError:
        pass
    # With no CPU wedged, the first kernel's stop IPI turned CPU 1 off (PSCI CPU_OFF from inside
    # the IPI's handler), so the capture kernel's CPU_ON must bring every CPU it asked for back.
    if a.capture_cpus > 1 and a.wedge == "none":
        online = len(cpu_list(rec.get("capture_cpus") or ""))
        if online != a.capture_cpus:
            problems.append(f"the capture kernel had CPUs {rec.get('capture_cpus')!r} online, "
                            f"not {a.capture_cpus} (CPU 1 was off and should have come back)")
    if a.saves:
        try:
            rec["saves"] = json.load(open(a.saves))
        except (OSError, ValueError) as e:
            rec["saves"] = []
            problems.append(f"no result of the saved dumps' checks: {e}")
        for r in rec["saves"]:
            problems.extend(r["problems"])

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
    e.add_argument("--saves", help="JSON written by check-saves")
    e.add_argument("--capture-cpus", type=int, default=1,
                   help="CPUs the capture kernel was booted with (maxcpus=)")
    c = sub.add_parser("check-saves")
    for k in ("run", "jobs", "vmcore", "root", "raw-verify-json", "out"):
        c.add_argument("--" + k, required=True)
    c.add_argument("--raw-verify-rc", type=int, required=True)
    x = sub.add_parser("extract-flats")
    x.add_argument("--run", required=True)
    x.add_argument("--disk", required=True)
    a = ap.parse_args()
    return {"qmp-regs": qmp_regs, "evaluate": evaluate, "check-saves": check_saves,
            "extract-flats": extract_flats}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
