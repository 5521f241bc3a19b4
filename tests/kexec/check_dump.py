#!/usr/bin/env python3
"""Judge a crash run of tests/kexec: the vmcore's notes and `vmcore verify --json` against what
the first kernel reported about itself.

  check_dump.py VMCORE VERIFY_JSON GUEST_DIR IMAGE

GUEST_DIR holds the first kernel's facts (tests/kexec/init): crash_notes ("N PADDR SIZE" per
CPU, PADDR hex without 0x as sysfs prints it), cpus-possible, cpus-online, cpu-mpidr ("N REGHEX"
from cpuN/of_node/reg).

Checks, each printed as "ok ..." or "FAIL ...":
  * `vmcore verify`: verdict all-captured, method cpu-map-note, exact numbering, every possible
    CPU expected and captured, nothing missing;
  * the vmcore's merged PT_NOTE holds one KEXEC-RS/CPUM note (crash_payload::cpumap format,
    version 1) whose entries equal sysfs: CPU ids, crash_notes address and size, online flag,
    MPIDR (from the DT node each CPU's of_node names);
  * one CORE/NT_PRSTATUS note per online CPU, and a VMCOREINFO note;
  * the kernel-text PT_LOAD (the one with a kernel-image virtual address): p_paddr is the
    "Kernel code" start of the first kernel's /proc/iomem, p_vaddr is VMCOREINFO's
    SYMBOL(_stext), and the dump's bytes there are the Image file's from offset 0x10000
    (_stext's offset in the Debian 6.1 Image; >= 90% of words, alternatives patch a few);
  * the crash kernel's /chosen (capture.chosen, read from /proc/device-tree in the capture
    kernel) holds what `kexec-rs -p --dry-run --json` planned (plan.json, one JSON document):
    linux,elfcorehdr, linux,usable-memory-range, linux,initrd-start/-end, bootargs.
Exit status 0 when every check holds. Prints the decoded CPU map as JSON on the last line.
"""
import json
import struct
import sys

PT_NOTE = 4
NT_PRSTATUS = 1
NT_KEXECRS_CPUMAP = struct.unpack("<I", b"CPUM")[0]


def cpu_list(text):
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def load_segments(path):
    """PT_LOADs: (p_offset, p_vaddr, p_paddr, p_filesz)."""
    with open(path, "rb") as f:
        eh = f.read(64)
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    out = []
    for i in range(phnum):
        p_type, _, off, vaddr, paddr, filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
        if p_type == 1:
            out.append((off, vaddr, paddr, filesz))
    return out


def notes(path):
    """Every note of every PT_NOTE segment: (name, type, desc bytes)."""
    with open(path, "rb") as f:
        eh = f.read(64)
        if eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
            raise SystemExit(f"{path}: not a little-endian ELF64 file")
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
        out = []
        for i in range(phnum):
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
            if p_type != PT_NOTE:
                continue
            f.seek(p_offset)
            buf = f.read(p_filesz)
            o = 0
            while o + 12 <= len(buf):
                namesz, descsz, ntype = struct.unpack_from("<III", buf, o)
                if namesz == 0 and descsz == 0 and ntype == 0:
                    break
                o += 12
                name = buf[o:o + namesz].rstrip(b"\0")
                o += (namesz + 3) & ~3
                desc = buf[o:o + descsz]
                o += (descsz + 3) & ~3
                out.append((name, ntype, desc))
        return out


def cpumap(desc):
    version, entry_size, count, _flags = struct.unpack_from("<IIII", desc, 0)
    if version != 1 or entry_size < 32:
        raise ValueError(f"CPU map version {version}, entry_size {entry_size}")
    ents = []
    for i in range(count):
        cpu, flags, mpidr, paddr, size = struct.unpack_from("<IIQQQ", desc, 16 + i * entry_size)
        ents.append({"cpu": cpu, "online": bool(flags & 1), "present": bool(flags & 2),
                     "mpidr": mpidr, "notes_paddr": paddr, "notes_size": size})
    return ents


def main():
    vmcore, verify_json, guest, image = sys.argv[1:5]
    fails = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            fails.append(what)

    rd = lambda n: open(f"{guest}/{n}").read()
    possible = cpu_list(rd("cpus-possible"))
    online = cpu_list(rd("cpus-online"))
    sysfs = {}
    for line in rd("crash_notes").splitlines():
        n, addr, size = line.split()
        sysfs[int(n)] = (int(addr, 16), int(size))
    mpidr = {}
    for line in rd("cpu-mpidr").splitlines():
        n, reg = line.split()
        mpidr[int(n)] = int(reg, 16) & 0xff00ffffff

    v = json.load(open(verify_json))
    check(v.get("verdict") == "all-captured", f"vmcore verify verdict {v.get('verdict')!r} (want 'all-captured')")
    check(v.get("method") == "cpu-map-note", f"vmcore verify method {v.get('method')!r} (want 'cpu-map-note')")
    check(v.get("exact") is True, f"vmcore verify numbering exact: {v.get('exact')}")
    check(v.get("expected") == len(possible), f"vmcore verify expects {v.get('expected')} CPUs (possible: {len(possible)})")
    check(v.get("captured") == len(possible), f"vmcore verify captured {v.get('captured')} of {len(possible)}")
    check(not v.get("missing"), f"vmcore verify missing: {v.get('missing')}")
    got = sorted(c["cpu"] for c in v.get("cpus", []) if c.get("status") == "captured")
    check(got == possible, f"captured CPUs {got} == possible {possible}")

    ns = notes(vmcore)
    maps = [d for (name, t, d) in ns if name == b"KEXEC-RS" and t == NT_KEXECRS_CPUMAP]
    check(len(maps) == 1, f"{len(maps)} KEXEC-RS CPU-map note(s) in the vmcore (want 1)")
    prs = [d for (name, t, d) in ns if name == b"CORE" and t == NT_PRSTATUS]
    check(len(prs) == len(online), f"{len(prs)} CORE/NT_PRSTATUS notes (online CPUs: {len(online)})")
    check(any(name == b"VMCOREINFO" for (name, _, _) in ns), "VMCOREINFO note present")
    # The kernel-text PT_LOAD.
    vi = {}
    for (name, _, d) in ns:
        if name == b"VMCOREINFO":
            for line in d.decode("ascii", "replace").splitlines():
                k, _, val = line.partition("=")
                vi[k] = val.strip("\0")
    kc = None
    for line in rd("iomem").splitlines():
        if "Kernel code" in line:
            kc = int(line.split("-")[0].strip(), 16)
    stext = int(vi["SYMBOL(_stext)"], 16) if "SYMBOL(_stext)" in vi else None
    va_bits = int(vi.get("NUMBER(VA_BITS)", "48"))
    # Linear-map addresses start at -(1 << VA_BITS); kernel-image ones in the upper half of it.
    page_offset = (1 << 64) - (1 << va_bits)
    kimage_floor = page_offset + (1 << (va_bits - 1))
    texts = [s for s in load_segments(vmcore) if s[1] >= kimage_floor]
    check(len(texts) == 1, f"{len(texts)} kernel-text PT_LOAD(s) (want 1)")
    if texts and kc is not None and stext is not None:
        off, vaddr, paddr, filesz = texts[0]
        check(paddr == kc, f"kernel-text PT_LOAD p_paddr {paddr:#x} == Kernel code start {kc:#x}")
        check(vaddr == stext, f"kernel-text PT_LOAD p_vaddr {vaddr:#x} == SYMBOL(_stext) {stext:#x}")
        with open(vmcore, "rb") as f:
            f.seek(off)
            mem = f.read(0x10000)
        img = open(image, "rb").read(0x20000)[0x10000:]
        same = sum(1 for i in range(0, 0x10000, 4) if img[i:i + 4] == mem[i:i + 4])
        check(same / 0x4000 >= 0.9, f"dump bytes at the kernel-text PT_LOAD == Image[0x10000..] for {same / 0x4000:.1%} of words")
    else:
        check(False, f"kernel text: Kernel code {kc}, SYMBOL(_stext) {stext}")
    # /chosen as the crash kernel saw it, against the plan.
    try:
        doc = json.load(open(f"{guest}/plan.json"))
        plan = doc.get("kexec_load_fallback", doc)
        check(True, "plan.json is one JSON document")
    except ValueError as e:
        plan = None
        check(False, f"plan.json is one JSON document: {e}")
    chosen = {}
    for line in rd("capture.chosen").splitlines():
        name, _, hexv = line.partition(" ")
        chosen[name] = bytes.fromhex(hexv)
    if plan is not None:
        ac = int.from_bytes(chosen.get("#address-cells", b"\0\0\0\2"), "big")
        sc = int.from_bytes(chosen.get("#size-cells", b"\0\0\0\2"), "big")

        def ranges(b):
            step = 4 * (ac + sc)
            return [(int.from_bytes(b[i:i + 4 * ac], "big"), int.from_bytes(b[i + 4 * ac:i + step], "big"))
                    for i in range(0, len(b), step)]

        def planned(rs):
            return [(int(r["start"], 16), int(r["last"], 16) - int(r["start"], 16) + 1) for r in rs]

        got = ranges(chosen.get("linux,elfcorehdr", b""))
        want = planned([plan["elfcorehdr"]])
        check(got == want, f"/chosen/linux,elfcorehdr {[(hex(a), n) for a, n in got]} == plan {[(hex(a), n) for a, n in want]}")
        got = ranges(chosen.get("linux,usable-memory-range", b""))
        want = planned(plan["usable_memory"])
        check(got == want, f"/chosen/linux,usable-memory-range {[(hex(a), n) for a, n in got]} == plan {[(hex(a), n) for a, n in want]}")
        seg = [g for g in plan["segments"] if g["purpose"] == "initrd"]
        st = int.from_bytes(chosen.get("linux,initrd-start", b""), "big")
        en = int.from_bytes(chosen.get("linux,initrd-end", b""), "big")
        check(bool(seg) and (st, en) == (int(seg[0]["mem"], 16), int(seg[0]["mem"], 16) + seg[0]["bytes_len"]),
              f"/chosen/linux,initrd-start/end {st:#x}-{en:#x} == the initrd segment")
        args = chosen.get("bootargs", b"").rstrip(b"\0").decode()
        check(args == plan["cmdline"], f"/chosen/bootargs {args!r} == plan cmdline")
    ents = []
    if maps:
        try:
            ents = cpumap(maps[0])
        except (ValueError, struct.error) as e:
            check(False, f"CPU-map note decodes: {e}")
    check(sorted(e["cpu"] for e in ents) == possible, f"CPU map lists CPUs {[e['cpu'] for e in ents]} (possible {possible})")
    for e in ents:
        n = e["cpu"]
        want = sysfs.get(n)
        check(want == (e["notes_paddr"], e["notes_size"]),
              f"cpu{n}: map crash_notes {e['notes_paddr']:#x}/{e['notes_size']} == sysfs "
              + (f"{want[0]:#x}/{want[1]}" if want else "absent"))
        check(e["online"] == (n in online), f"cpu{n}: map online={e['online']} == sysfs online={n in online}")
        if n in mpidr:
            check(e["mpidr"] == mpidr[n], f"cpu{n}: map MPIDR {e['mpidr']:#x} == DT {mpidr[n]:#x}")
        else:
            check(False, f"cpu{n}: no MPIDR recorded from cpu{n}/of_node")
    print(json.dumps([{**e, "mpidr": hex(e["mpidr"]), "notes_paddr": hex(e["notes_paddr"])} for e in ents]))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
