#!/usr/bin/env python3
"""Small ELF-core reader for make-dumps.sh's checks and truth.json (standard library only).

  coreinfo.py notes CORE            JSON: every note (name, type, size); for NT_PRSTATUS the
                                    pid, pc, sp, pstate (arm64 elf_prstatus: pr_pid at 32,
                                    pr_reg at 112, sp/pc/pstate at 360/368/376); VMCOREINFO text
  coreinfo.py read CORE PADDR LEN   hex of LEN bytes at physical address PADDR (PT_LOAD p_paddr)
  coreinfo.py check-text CORE IMAGE IOMEM KALLSYMS_FIXUP KEXEC_LOG
                                    checks the _text the guest gave kexec-tools (see init)
  coreinfo.py truth OUTDIR JSON     writes OUTDIR/truth.json (JSON: facts from make-dumps.sh)

Only ELF64 little-endian cores: QEMU's ELF dumps, /proc/vmcore copies, makedumpfile -E.
"""
import json
import os
import re
import struct
import sys

PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS = 1


def phdrs(f):
    f.seek(0)
    eh = f.read(64)
    if eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    e_phoff, = struct.unpack_from("<Q", eh, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", eh, 54)
    f.seek(e_phoff)
    tab = f.read(e_phentsize * e_phnum)
    out = []
    for i in range(e_phnum):
        p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = \
            struct.unpack_from("<IIQQQQQQ", tab, i * e_phentsize)
        out.append(dict(type=p_type, offset=p_offset, vaddr=p_vaddr, paddr=p_paddr,
                        filesz=p_filesz, memsz=p_memsz))
    return out


def notes(path):
    res = []
    with open(path, "rb") as f:
        for ph in phdrs(f):
            if ph["type"] != PT_NOTE:
                continue
            f.seek(ph["offset"])
            buf = f.read(ph["filesz"])
            off = 0
            while off + 12 <= len(buf):
                namesz, descsz, ntype = struct.unpack_from("<III", buf, off)
                if namesz == 0 and descsz == 0 and ntype == 0:
                    break
                name = buf[off + 12: off + 12 + namesz].rstrip(b"\0").decode("ascii", "replace")
                doff = off + 12 + ((namesz + 3) & ~3)
                desc = buf[doff: doff + descsz]
                n = {"name": name, "type": ntype, "descsz": descsz}
                if name == "CORE" and ntype == NT_PRSTATUS and descsz >= 392:
                    n["pid"], = struct.unpack_from("<i", desc, 32)
                    n["sp"], n["pc"], n["pstate"] = (
                        hex(v) for v in struct.unpack_from("<QQQ", desc, 360))
                if name == "VMCOREINFO":
                    n["text"] = desc.rstrip(b"\0").decode("ascii", "replace")
                res.append(n)
                off = doff + ((descsz + 3) & ~3)
    return res


def read_phys(path, paddr, length):
    with open(path, "rb") as f:
        for ph in phdrs(f):
            if ph["type"] == PT_LOAD and ph["paddr"] <= paddr and \
                    paddr + length <= ph["paddr"] + ph["filesz"]:
                f.seek(ph["offset"] + paddr - ph["paddr"])
                return f.read(length)
    raise ValueError(f"paddr {paddr:#x} not in any PT_LOAD of {path}")


def vmcoreinfo(ns):
    for n in ns:
        if n["name"] == "VMCOREINFO":
            return dict(l.split("=", 1) for l in n["text"].splitlines() if "=" in l)
    return {}


# arch/arm64/include/asm/memory.h (6.1): KIMAGE_VADDR = MODULES_END = _PAGE_END(VA_BITS_MIN)
# + SZ_128M, VA_BITS_MIN = 48 for VA_BITS 48 and 52; kaslr_offset() = _text - KIMAGE_VADDR
# is what VMCOREINFO's KERNELOFFSET carries.
KIMAGE_VADDR_48 = 0xffff800008000000


def check_text(core, image, iomem, fixup, kexec_log):
    """Three independent confirmations that _text = _stext - 0x10000 on this kernel."""
    kc = None
    for line in open(iomem):
        if "Kernel code" in line:
            kc = int(line.split("-")[0].strip(), 16)
    derived = None
    for tok in open(fixup).read().split():
        if tok.startswith("_text(derived)="):
            derived = int(tok.split("=")[1], 16)
    vi = vmcoreinfo(notes(core))
    out = []
    # 1. VMCOREINFO: _text = KIMAGE_VADDR + KERNELOFFSET.
    if int(vi.get("NUMBER(VA_BITS)", "0")) not in (48, 52):
        raise SystemExit(f"unexpected VA_BITS {vi.get('NUMBER(VA_BITS)')}")
    from_vmcoreinfo = KIMAGE_VADDR_48 + int(vi["KERNELOFFSET"], 16)
    if from_vmcoreinfo != derived:
        raise SystemExit(f"_text from KERNELOFFSET {from_vmcoreinfo:#x} != derived {derived:#x}")
    out.append(f"KIMAGE_VADDR + KERNELOFFSET = {from_vmcoreinfo:#x} = derived _text")
    # 2. The Image file starts at _text: its bytes at 0x10000 must be what memory holds at
    #    "Kernel code" start (= __pa(_stext)); allow for patched words (ftrace, alternatives).
    img = open(image, "rb").read(0x20000)
    mem = read_phys(core, kc, 0x10000)
    same = sum(1 for i in range(0, 0x10000, 4) if img[0x10000 + i:0x10004 + i] == mem[i:i + 4])
    frac = same / 0x4000
    if frac < 0.9:
        raise SystemExit(f"Image[0x10000..] matches memory at Kernel code start for {frac:.0%} only")
    out.append(f"Image file offset 0x10000 == memory at Kernel code {kc:#x} ({frac:.1%} of words)")
    # 3. The PT_LOAD kexec-tools wrote for the kernel text.
    seg = [l for l in open(kexec_log) if l.startswith("Kernel text Elf header")]
    if not seg:
        raise SystemExit("no 'Kernel text Elf header' in the kexec log")
    f = dict(re.findall(r"(p_\w+) = (0x[0-9a-fA-F]+|\d+)", seg[0]))
    if int(f["p_paddr"], 16) != kc - 0x10000 or int(f["p_vaddr"], 16) != derived:
        raise SystemExit(f"kexec kernel-text PT_LOAD wrong: {seg[0].strip()}")
    out.append("kexec-tools kernel-text PT_LOAD: " + seg[0].split(": ", 1)[1].strip())
    print("\n".join(out))


def run_facts(gdir):
    """What one guest run recorded (files written by tests/dumps/init into guest-<run>/)."""
    def rd(name):
        with open(os.path.join(gdir, name), errors="replace") as f:
            return f.read()
    mpidr = {}
    # "Booting Linux on physical CPU 0x0000000000 [0x411fd070]" (the boot CPU) and
    # "CPU1: Booted secondary processor 0x0000000001 [0x411fd070]" give each CPU's MPIDR.
    for line in rd("first.dmesg").splitlines():
        if "Booting Linux on physical CPU" in line:
            mpidr[0] = line.split("physical CPU")[1].split()[0]
        elif "Booted secondary processor" in line:
            cpu = int(line.split("CPU")[1].split(":")[0])
            mpidr[cpu] = line.split("processor")[1].split()[0]
    cpus = []
    for line in rd("crash_notes").splitlines():
        cpu, addr, size = line.split()
        cpus.append({"cpu": int(cpu), "crash_notes": "0x" + addr.lower(),
                     "crash_notes_size": int(size), "mpidr": mpidr.get(int(cpu))})
    cpus.sort(key=lambda c: c["cpu"])
    fix = dict(kv.split("=", 1) for kv in rd("kallsyms-fixup.txt").split()
               if "=" in kv and not kv.startswith("lines"))
    kc = [l for l in rd("iomem").splitlines() if "Kernel code" in l][0].split(":")[0].strip()
    ck = [l for l in rd("iomem").splitlines() if "Crash kernel" in l][0].split(":")[0].strip()
    r = {
        "first_cmdline": rd("first.cmdline").strip(),
        "capture_cmdline": rd("capture.cmdline").strip(),
        "per_cpu": cpus,
        "cpus_online_before_panic": rd("cpus-online").strip(),
        "panic_cpu": 0,
        "stext": "0x" + fix["_stext"],
        "text_derived": "0x" + fix["_text(derived)"],
        "kernel_code": "0x" + kc.replace("-", "-0x"),
        "crash_kernel": "0x" + ck.replace("-", "-0x"),
        "vmcoreinfo_note": rd("vmcoreinfo-addr").split()[0],
        "proc_vmcore_size": int(rd("vmcore.size")),
        "memory_mib": int(rd("mem")),
        "kexec_checks": "kexecrs.kexec_checks=0" not in rd("first.cmdline"),
    }
    if os.path.exists(os.path.join(gdir, "wedge_spin.kallsyms")):
        w = rd("wedge_spin.kallsyms").split()
        if w:
            r["wedge_spin"] = "0x" + w[0]
    return r


def truth(outdir, a):
    """a: facts from make-dumps.sh (scenarios, versions, sizes). Writes OUTDIR/truth.json."""
    files, runs, refused = [], {}, []

    def add(path, run, kind, fmt, wedged, captured, missing, **extra):
        full = os.path.join(outdir, path)
        if not os.path.exists(full):
            return
        e = {"file": path, "size": os.path.getsize(full), "run": run, "kind": kind,
             "format": fmt, "wedged_cpu": wedged, "expected_captured": captured,
             "expected_missing": missing, "console_log": run + ".console.log"}
        e.update(extra)
        for suf, key in ((".vmcore-dmesg.txt", "golden_dmesg_vmcore_dmesg"),
                         (".makedumpfile-dmesg.txt", "golden_dmesg_makedumpfile")):
            if os.path.exists(full + suf):
                e[key] = path + suf
        files.append(e)

    for sc in a["scenarios"]:
        run = "plain" if sc == "plain" else "wedged-" + sc
        gdir = os.path.join(outdir, "guest-" + run)
        facts = run_facts(gdir)
        facts["console_log"] = run + ".console.log"
        facts["wedge_mode"] = None if sc == "plain" else sc
        runs[run] = facts
        allc = [c["cpu"] for c in facts["per_cpu"]]
        with open(os.path.join(gdir, "qemu_run.json")) as f:
            qr = json.load(f)
        for d in qr["dumps"]:
            if not d["ok"]:
                refused.append({"format": d["format"], "error": d["error"]})
                continue
            add(os.path.basename(d["file"]), run, "qemu-dump-guest-memory",
                "elf" if d["format"] == "elf" else "kdump-compressed-" + d["format"][6:],
                None if sc == "plain" else 1, allc, [], checkpoint=d["checkpoint"],
                qemu_format=d["format"],
                note="QEMU's view: one NT_PRSTATUS (+ NT_PRFPREG) per vCPU in vCPU order, "
                     "pr_pid = vCPU index + 1; ELF PT_LOADs carry physical addresses only")
        if sc == "plain":
            add("vmcore-plain.elf", run, "kdump-proc-vmcore", "elf", None, allc, [])
            continue
        mis = [1]
        cap = [c for c in allc if c not in mis]
        add(f"vmcore-{run}.elf", run, "kdump-proc-vmcore", "elf", 1, cap, mis)
        for suf, fmt, opt in (("kdump-zlib", "kdump-compressed-zlib", "-c"),
                              ("kdump-lzo", "kdump-compressed-lzo", "-l"),
                              ("kdump-snappy", "kdump-compressed-snappy", "-p"),
                              ("kdump-zstd", "kdump-compressed-zstd", "-z"),
                              ("flat", "flattened-kdump-compressed-zlib", "-F -c"),
                              ("elf", "elf", "-E")):
            add(f"vmcore-{run}.d31.{suf}", run, "makedumpfile", fmt, 1, cap, mis,
                source=f"vmcore-{run}.elf", makedumpfile_args=f"{opt} -d 31")
    first = next(iter(runs.values()))
    same = all(r["per_cpu"] == first["per_cpu"] for r in runs.values())
    # Per-CPU allocations can land elsewhere from one boot to the next (seen: one run's
    # crash_notes 4 KiB lower): each file's run has its own in runs.<run>.per_cpu, which is
    # what consumers read; the top level keeps the first run's, with the flag below.
    t = {
        "generated_by": "tests/dumps/make-dumps.sh",
        "kernel_release": a["kver"],
        "kernel_package": "linux-image-" + a["kver"] + " " + a["kpkg_version"],
        "qemu_version": a["qemu_version"],
        "qemu_command": a["qemu_command"],
        "memory_mib": a["mem"],
        "cpus": len(first["per_cpu"]),
        "crashkernel": a["crashkernel"],
        "per_cpu": first["per_cpu"],
        "per_cpu_same_in_all_runs": same,
        "qemu_dump_formats_refused": refused,
        "makedumpfile_version": a["mdf_version"],
        "makedumpfile_formats_unsupported": a["mdf_unsupported"],
        "notes": [
            "/proc/vmcore notes carry no CPU number: with CPU1 wedged only CPU0's note is there",
            "KASLR is on (QEMU passes kaslr-seed): addresses differ per run, see runs.*",
            "kexec-tools was given _text = _stext - 0x10000 (tests/dumps/init); checks.txt",
        ],
        "runs": runs,
        "files": files,
    }
    with open(os.path.join(outdir, "truth.json"), "w") as f:
        json.dump(t, f, indent=1)
        f.write("\n")


def main():
    cmd = sys.argv[1]
    if cmd == "notes":
        ns = notes(sys.argv[2])
        json.dump(ns, sys.stdout, indent=1)
        print()
    elif cmd == "read":
        print(read_phys(sys.argv[2], int(sys.argv[3], 0), int(sys.argv[4], 0)).hex())
    elif cmd == "check-text":
        check_text(*sys.argv[2:7])
    elif cmd == "truth":
        truth(sys.argv[2], json.loads(sys.argv[3]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
