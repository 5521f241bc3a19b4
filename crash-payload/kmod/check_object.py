#!/usr/bin/env python3
"""Checks the Rust object before Kbuild links it into sdei-stop.ko.

    check_object.py [--fp-only] OBJECT [BINUTILS_PREFIX]

- no FP/SIMD/SVE instruction (the kernel never saves FP state around its own code; the
  same classifier as crash-payload/firmware/tests/no_fp_simd.rs);
- only relocation types arm64's module loader applies (arch/arm64/kernel/module.c), so no
  GOT or TLS relocation slipped in;
- only undefined symbols the glue or the kernel's exports provide.
Exits non-zero with the offending lines.
"""
import re
import subprocess
import sys

args = sys.argv[1:]
fp_only = "--fp-only" in args  # the whole .ko: its relocations and symbols are the kernel's business
args = [a for a in args if a != "--fp-only"]
obj = args[0]
pfx = args[1] if len(args) > 1 else "aarch64-linux-gnu-"
fails = []

REG = re.compile(r"^[bhsdqvzp]\d{1,2}$")


def fp_reason(line):
    parts = line.split("\t", 2)
    if len(parts) < 3:
        return None
    addr = parts[0].strip()
    if not addr.endswith(":") or not all(c in "0123456789abcdef" for c in addr[:-1]):
        return None
    rest = parts[2]
    mnem, _, ops = rest.partition("\t")
    mnem = mnem.strip()
    if mnem.startswith("."):
        return None
    if mnem.startswith("f"):
        return "FP mnemonic " + mnem
    # Drop the comment and every "address <symbol>" (branch and literal targets print as
    # bare hex, e.g. "d0 <boot_park+0x8>", which must not read as register d0).
    words = ops.split("//")[0].split(" ")
    kept = [w for i, w in enumerate(words)
            if not w.startswith("<") and not (i + 1 < len(words) and words[i + 1].startswith("<"))]
    for tok in re.split(r"[\s,\[\]{}!#]+", " ".join(kept)):
        t = tok.lower().split(".")[0]
        if REG.match(t):
            return "FP/SIMD/SVE register " + tok
        if t in ("fpcr", "fpsr"):
            return "FP control register " + t
    return None


dis = subprocess.run([pfx + "objdump", "-d", obj], check=True, capture_output=True, text=True).stdout
n = 0
for line in dis.splitlines():
    if ":\t" not in line:
        continue
    n += 1
    r = fp_reason(line)
    if r:
        fails.append(f"{r}: {line.strip()}")
if n < 200:
    fails.append(f"only {n} instructions disassembled: wrong object?")

if fp_only:
    if fails:
        print("check_object: %s FAILED:\n  %s" % (obj, "\n  ".join(fails)))
        sys.exit(1)
    print(f"check_object: {obj}: {n} instructions, no FP/SIMD")
    sys.exit(0)

ALLOWED_RELOCS = {
    "R_AARCH64_ABS64", "R_AARCH64_ABS32", "R_AARCH64_PREL32", "R_AARCH64_PREL64",
    "R_AARCH64_ADR_PREL_PG_HI21", "R_AARCH64_ADR_PREL_LO21", "R_AARCH64_ADD_ABS_LO12_NC",
    "R_AARCH64_LDST8_ABS_LO12_NC", "R_AARCH64_LDST16_ABS_LO12_NC",
    "R_AARCH64_LDST32_ABS_LO12_NC", "R_AARCH64_LDST64_ABS_LO12_NC",
    "R_AARCH64_LDST128_ABS_LO12_NC", "R_AARCH64_CALL26", "R_AARCH64_JUMP26",
    "R_AARCH64_CONDBR19", "R_AARCH64_TSTBR14", "R_AARCH64_LD_PREL_LO19",
}
rel = subprocess.run([pfx + "readelf", "-rW", obj], check=True, capture_output=True, text=True).stdout
types = set(re.findall(r"\b(R_AARCH64_\w+)", rel))
for t in sorted(types - ALLOWED_RELOCS):
    fails.append("relocation the module loader does not apply: " + t)

ALLOWED_UNDEF = {"memcpy", "memset", "memmove", "memcmp"}
nm = subprocess.run([pfx + "nm", "-u", obj], check=True, capture_output=True, text=True).stdout
for line in nm.splitlines():
    s = line.split()[-1]
    if s not in ALLOWED_UNDEF and not s.startswith("sdei_stop_glue_"):
        fails.append("undefined symbol neither the glue nor the kernel provides: " + s)

if fails:
    print("check_object: %s FAILED:\n  %s" % (obj, "\n  ".join(fails)))
    sys.exit(1)
print(f"check_object: {obj}: {n} instructions, no FP/SIMD; relocations {', '.join(sorted(types))}; "
      f"undefined: {', '.join(sorted(l.split()[-1] for l in nm.splitlines()))}")
