//! The purgatory slot: the code the old kernel jumps to after a panic (or
//! at `kexec -e`) on the `kexec_load` path.
//!
//! Why one is needed on arm64 (checked in Linux 6.1,
//! `arch/arm64/kernel/machine_kexec.c` and `relocate_kernel.S`): both the
//! no-relocation path (`cpu_soft_restart(kimage->start,
//! kimage->arch.dtb_mem, 0, 0)`, taken for crash images) and
//! `arm64_relocate_new_kernel` enter `kimage->start` with
//! `x0 = kimage->arch.dtb_mem`, `x1..x3 = 0`. Only `kexec_file_load` sets
//! `arch.dtb_mem` (`machine_kexec_file.c`, `load_other_segments()`); for
//! `kexec_load` the kimage is zero-allocated, so `x0 = 0`. The kernel's own
//! comment: "In kexec case, kimage->start points to purgatory assuming that
//! kernel entry and dtb address are embedded in purgatory by userspace".
//! The arm64 boot protocol needs `x0` = the DTB's physical address, so the
//! entry of a `kexec_load` image must be code that sets it: a purgatory.
//!
//! Two fill the slot through [`Purgatory`]:
//! - [`RustPurgatory`], the verifying one (crate `purgatory` in
//!   `crash-payload/purgatory`): it checks the SHA-256 of every other
//!   segment with the MMU and caches on and the ARMv8 SHA-256 instructions,
//!   prints a mismatch on the PL011 named by `/chosen/stdout-path` and parks,
//!   else enters the kernel. Its bytes are embedded at build time when
//!   kexec-rs is built for aarch64 (`build.rs`; `KEXEC_RS_PURGATORY_ELF`
//!   overrides); [`RustPurgatory::embedded`] returns them. [`build`]
//!   (`Purgatory::build`) copies the image and fills its parameter block
//!   (`purgatory::layout::Params`: kernel entry, DTB, UART, and
//!   `(addr, len, sha256)` per segment) at the offset its header names.
//! - [`Trampoline`]: 40 bytes that load `x0` with the DTB address, zero
//!   `x1..x3` and branch to the kernel, verifying nothing (what kexec-tools'
//!   purgatory does with its checks skipped). [`default_purgatory`] falls
//!   back to it only in builds without the embedded image (non-aarch64).
//!
//! [`build`]: Purgatory::build

use crash_payload::PhysAddr;

use crate::fdt::Fdt;

/// What the purgatory must hand over and may verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// Physical address of the kernel's first instruction.
    pub kernel_entry: PhysAddr,
    /// Physical address of the DTB (goes in `x0`).
    pub dtb: PhysAddr,
    /// Every other segment: `(mem, bytes_len, sha256 of its bytes)`.
    pub digests: Vec<(PhysAddr, u64, [u8; 32])>,
    /// A PL011 UART for the purgatory's messages (from `/chosen/stdout-path`).
    pub console: Option<PhysAddr>,
}

/// A built purgatory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgatoryImage {
    /// The bytes to load at the slot address.
    pub bytes: Vec<u8>,
    /// Offset of the entry point within `bytes`.
    pub entry_offset: u64,
    /// True when it checks the segment digests before jumping.
    pub verifies: bool,
}

/// A purgatory implementation that fills the plan's slot.
pub trait Purgatory {
    /// A short name for the plan output.
    fn name(&self) -> &'static str;
    /// Bytes to reserve (a multiple of the page size is not required; the
    /// planner rounds up).
    fn slot_size(&self) -> u64;
    /// Builds the image for load address `at`.
    fn build(&self, at: PhysAddr, handoff: &Handoff) -> Result<PurgatoryImage, String>;
}

/// The minimal hand-off (no verification).
#[derive(Debug, Clone, Copy, Default)]
pub struct Trampoline;

/// `ldr x0, #0x18` (LDR literal, 64-bit: `0x58000000 | imm19 << 5 | Rt`).
const LDR_X0_DTB: u32 = 0x5800_0000 | (6 << 5);
/// `ldr x4, #0x1c` (from pc 4 to the entry word at 0x20).
const LDR_X4_ENTRY: u32 = 0x5800_0000 | (7 << 5) | 4;
/// `mov x1, xzr` (`orr x1, xzr, xzr`).
const MOV_X1_XZR: u32 = 0xaa1f_03e1;
/// `mov x2, xzr`.
const MOV_X2_XZR: u32 = 0xaa1f_03e2;
/// `mov x3, xzr`.
const MOV_X3_XZR: u32 = 0xaa1f_03e3;
/// `br x4`.
const BR_X4: u32 = 0xd61f_0080;
/// Bytes of the trampoline: six instructions and two 64-bit literals.
pub const TRAMPOLINE_SIZE: usize = 40;

impl Purgatory for Trampoline {
    fn name(&self) -> &'static str {
        "trampoline (no digest check)"
    }
    fn slot_size(&self) -> u64 {
        TRAMPOLINE_SIZE as u64
    }
    fn build(&self, _at: PhysAddr, h: &Handoff) -> Result<PurgatoryImage, String> {
        let mut b = Vec::with_capacity(TRAMPOLINE_SIZE);
        for w in [
            LDR_X0_DTB,
            LDR_X4_ENTRY,
            MOV_X1_XZR,
            MOV_X2_XZR,
            MOV_X3_XZR,
            BR_X4,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&h.dtb.get().to_le_bytes());
        b.extend_from_slice(&h.kernel_entry.get().to_le_bytes());
        Ok(PurgatoryImage {
            bytes: b,
            entry_offset: 0,
            verifies: false,
        })
    }
}

/// The verifying purgatory: the `purgatory` crate's image with its
/// parameter block filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustPurgatory {
    image: Vec<u8>,
    header: purgatory::layout::Header,
    flags: u64,
}

#[cfg(kexec_rs_purgatory)]
static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/purgatory.bin"));

impl RustPurgatory {
    /// From the loadable bytes (the file part of the image, header first).
    pub fn from_image(bytes: &[u8]) -> Result<RustPurgatory, String> {
        let header = purgatory::layout::Header::parse(bytes).map_err(|e| e.to_string())?;
        Ok(RustPurgatory {
            image: bytes.to_vec(),
            header,
            flags: 0,
        })
    }

    /// From the linked ELF (`target/aarch64-unknown-none-softfloat/release/purgatory`).
    pub fn from_elf(elf: &[u8]) -> Result<RustPurgatory, String> {
        let (bytes, header) = purgatory::elf::image(elf).map_err(|e| e.to_string())?;
        Ok(RustPurgatory {
            image: bytes.to_vec(),
            header,
            flags: 0,
        })
    }

    /// The image built into this binary, if it was built for aarch64.
    pub fn embedded() -> Option<Result<RustPurgatory, String>> {
        #[cfg(kexec_rs_purgatory)]
        return Some(RustPurgatory::from_image(EMBEDDED));
        #[cfg(not(kexec_rs_purgatory))]
        None
    }

    /// Sets `purgatory::layout::FLAG_*` bits (for example
    /// `FLAG_NO_MMU` to verify with the caches off).
    pub fn with_flags(mut self, flags: u64) -> RustPurgatory {
        self.flags = flags;
        self
    }
}

impl Purgatory for RustPurgatory {
    fn name(&self) -> &'static str {
        "kexec-rs purgatory (SHA-256 verified)"
    }
    fn slot_size(&self) -> u64 {
        self.header.image_size
    }
    fn build(&self, at: PhysAddr, h: &Handoff) -> Result<PurgatoryImage, String> {
        use purgatory::layout::{fill, Params, SegmentDigest, LOAD_ALIGN};
        if at.get() & (LOAD_ALIGN - 1) != 0 {
            return Err(format!(
                "load address {:#x} is not {LOAD_ALIGN}-byte aligned",
                at.get()
            ));
        }
        let segs: Vec<SegmentDigest> = h
            .digests
            .iter()
            .map(|&(addr, len, sha256)| SegmentDigest {
                addr: addr.get(),
                len,
                sha256,
            })
            .collect();
        let uart = h.console.map_or(0, PhysAddr::get);
        let params = Params::new(h.kernel_entry.get(), h.dtb.get(), uart, self.flags, &segs)
            .map_err(|e| e.to_string())?;
        let mut bytes = self.image.clone();
        let header = fill(&mut bytes, &params).map_err(|e| e.to_string())?;
        Ok(PurgatoryImage {
            bytes,
            entry_offset: header.entry_offset,
            verifies: true,
        })
    }
}

/// The verifying purgatory when this build embeds it, else the trampoline.
pub fn default_purgatory() -> Result<Box<dyn Purgatory>, String> {
    match RustPurgatory::embedded() {
        Some(p) => Ok(Box::new(p?)),
        None => Ok(Box::new(Trampoline)),
    }
}

/// The PL011 behind `/chosen/stdout-path` (or `linux,stdout-path`), by
/// physical address: the path (options after `:` dropped, an alias resolved
/// through `/aliases`) must name a node compatible with `arm,pl011` whose
/// ancestors map addresses one to one (no `ranges`, or an empty one).
/// `None` when any of that does not hold: the purgatory then stays silent.
pub fn pl011_console(fdt_blob: &[u8]) -> Option<PhysAddr> {
    let fdt = Fdt::parse(fdt_blob).ok()?;
    let chosen = fdt.node("/chosen")?;
    let path = chosen
        .prop_str("stdout-path")
        .or_else(|| chosen.prop_str("linux,stdout-path"))?;
    let path = path.split(':').next()?;
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        fdt.node("/aliases")?.prop_str(path)?.to_string()
    };
    let mut node = &fdt.root;
    let mut address_cells = node.prop_u32("#address-cells").unwrap_or(2);
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        node = node.child(part)?;
        if i + 1 < parts.len() {
            if node.prop("ranges").is_some_and(|r| !r.is_empty()) {
                return None;
            }
            address_cells = node.prop_u32("#address-cells").unwrap_or(2);
        }
    }
    let compatible = node.prop("compatible")?;
    if !compatible.split(|&b| b == 0).any(|c| c == b"arm,pl011") {
        return None;
    }
    let reg = node.prop("reg")?;
    let addr = crate::fdt::decode_cells(reg.get(..(address_cells as usize).checked_mul(4)?)?)?;
    Some(PhysAddr(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampoline_encoding() {
        let h = Handoff {
            kernel_entry: PhysAddr(0xb000_0000),
            dtb: PhysAddr(0xb2a0_0000),
            digests: vec![],
            console: None,
        };
        let p = Trampoline.build(PhysAddr(0xb2c0_0000), &h).unwrap();
        assert_eq!(p.bytes.len(), TRAMPOLINE_SIZE);
        let w = |i: usize| u32::from_le_bytes(p.bytes[i * 4..i * 4 + 4].try_into().unwrap());
        // Encodings as GNU as assembles them.
        assert_eq!(w(0), 0x5800_00c0); // ldr x0, 18 <dtb>
        assert_eq!(w(1), 0x5800_00e4); // ldr x4, 20 <entry>
        assert_eq!(w(5), 0xd61f_0080); // br x4
                                       // The literals the loads reach: pc + imm19 * 4.
        let lit = |pc: usize, word: u32| pc + (((word >> 5) & 0x7ffff) as usize) * 4;
        assert_eq!(lit(0, w(0)), 0x18);
        assert_eq!(lit(4, w(1)), 0x20);
        assert_eq!(&p.bytes[0x18..0x20], &0xb2a0_0000u64.to_le_bytes());
        assert_eq!(&p.bytes[0x20..0x28], &0xb000_0000u64.to_le_bytes());
        assert!(!p.verifies);
    }

    /// A purgatory image as the `purgatory` crate lays it out: header, zero
    /// parameter block, then 0x100 bytes standing in for code.
    fn synthetic_image() -> Vec<u8> {
        use purgatory::layout::*;
        let mut b = vec![0u8; PARAMS_OFFSET + PARAMS_SIZE + 0x100];
        b[0..4].copy_from_slice(&0x1400_0400u32.to_le_bytes());
        b[HDR_MAGIC..HDR_MAGIC + 8].copy_from_slice(&HEADER_MAGIC);
        b[HDR_VERSION..HDR_VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        b[HDR_HEADER_SIZE..HDR_HEADER_SIZE + 4]
            .copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        b[HDR_PARAMS_OFFSET..HDR_PARAMS_OFFSET + 8]
            .copy_from_slice(&(PARAMS_OFFSET as u64).to_le_bytes());
        b[HDR_PARAMS_SIZE..HDR_PARAMS_SIZE + 8]
            .copy_from_slice(&(PARAMS_SIZE as u64).to_le_bytes());
        b[HDR_IMAGE_SIZE..HDR_IMAGE_SIZE + 8].copy_from_slice(&0x25000u64.to_le_bytes());
        b
    }

    fn params_of(image: &[u8]) -> purgatory::layout::Params {
        use purgatory::layout::*;
        Params::from_bytes(
            image[PARAMS_OFFSET..PARAMS_OFFSET + PARAMS_SIZE]
                .try_into()
                .unwrap(),
        )
    }

    #[test]
    fn rust_purgatory_fills_the_parameter_block() {
        let p = RustPurgatory::from_image(&synthetic_image()).unwrap();
        assert_eq!(p.slot_size(), 0x25000);
        let h = Handoff {
            kernel_entry: PhysAddr(0xb000_0000),
            dtb: PhysAddr(0xb2a0_0000),
            digests: vec![
                (PhysAddr(0xb000_0000), 0x10_0000, [1; 32]),
                (PhysAddr(0xb2a0_0000), 0x1234, [2; 32]),
            ],
            console: Some(PhysAddr(0x0900_0000)),
        };
        let img = p.build(PhysAddr(0xb2c0_0000), &h).unwrap();
        assert!(img.verifies);
        assert_eq!(img.entry_offset, 0);
        assert_eq!(img.bytes.len(), synthetic_image().len());
        let b = params_of(&img.bytes);
        assert_eq!(b.check(), Ok(()));
        assert_eq!(
            (b.kernel_entry, b.dtb, b.uart_pl011, b.flags),
            (0xb000_0000, 0xb2a0_0000, 0x0900_0000, 0)
        );
        assert_eq!(b.used().len(), 2);
        assert_eq!(
            (b.used()[1].addr, b.used()[1].len, b.used()[1].sha256),
            (0xb2a0_0000, 0x1234, [2; 32])
        );
        // Only the block changed.
        let off = purgatory::layout::PARAMS_OFFSET + purgatory::layout::PARAMS_SIZE;
        assert_eq!(img.bytes[off..], synthetic_image()[off..]);
    }

    #[test]
    fn rust_purgatory_refusals() {
        let p = RustPurgatory::from_image(&synthetic_image()).unwrap();
        let h = Handoff {
            kernel_entry: PhysAddr(0),
            dtb: PhysAddr(0),
            digests: vec![(PhysAddr(0), 0, [0; 32]); 17],
            console: None,
        };
        assert_eq!(
            p.build(PhysAddr(0x1000), &h).unwrap_err(),
            "17 segments to verify, the purgatory holds at most 16"
        );
        assert_eq!(
            p.build(PhysAddr(0x1800), &h).unwrap_err(),
            "load address 0x1800 is not 4096-byte aligned"
        );
        let mut bad = synthetic_image();
        bad[purgatory::layout::HDR_MAGIC] ^= 1;
        assert_eq!(
            RustPurgatory::from_image(&bad).unwrap_err(),
            "not a purgatory image (no KXRSPURG magic)"
        );
        assert!(RustPurgatory::from_elf(&synthetic_image()).is_err());
    }

    fn fixture_facts() -> crate::source::HostFacts {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/qemu-virt-2cpu-2g");
        let src = crate::source::RecordingSource::from_dir(&dir).unwrap();
        crate::source::gather(&src, crate::source::Need::Crash, None).unwrap()
    }

    #[test]
    fn crash_plan_with_the_verifying_purgatory() {
        use crate::plan::{plan_kexec_load, LoadKind, LoadRequest, Purpose, Seeds, RNG_SEED_SIZE};
        let facts = fixture_facts();
        let k = crate::image::probe(
            "Image",
            &crate::image::build::image(0x1_0000, 0, 0x1a0_0000, 0b1010),
        )
        .unwrap();
        let initrd = vec![0x42u8; 0x3_0001];
        let req = LoadRequest {
            kind: LoadKind::Crash,
            kernel: &k,
            initrd: Some(&initrd),
            cmdline: "console=ttyAMA0",
            seeds: Seeds {
                kaslr: 1,
                rng: [0x5a; RNG_SEED_SIZE],
            },
        };
        let p = RustPurgatory::from_image(&synthetic_image()).unwrap();
        let plan = plan_kexec_load(&facts, &req, &p).unwrap();
        assert!(plan.purgatory_verifies);
        let pg = plan.segments.last().unwrap();
        assert_eq!(pg.purpose, Purpose::Purgatory);
        assert_eq!(pg.memsz, 0x25000);
        assert_eq!(pg.mem.get() % 4096, 0);
        assert_eq!(plan.entry, pg.mem);
        let b = params_of(&pg.bytes);
        assert_eq!(b.kernel_entry, plan.kernel_entry.get());
        assert_eq!(b.dtb, plan.dtb.get());
        assert_eq!(b.uart_pl011, 0x0900_0000, "QEMU virt's /chosen/stdout-path");
        let others: Vec<_> = plan
            .segments
            .iter()
            .filter(|s| s.purpose != Purpose::Purgatory)
            .collect();
        assert_eq!(b.used().len(), others.len());
        for (d, s) in b.used().iter().zip(others) {
            assert_eq!(
                (d.addr, d.len, d.sha256),
                (s.mem.get(), s.bytes_len, s.sha256)
            );
        }
    }

    #[test]
    fn console_from_the_dtb() {
        use crate::fdt::{str_value, Node, Prop};
        assert_eq!(
            pl011_console(&fixture_facts().fdt),
            Some(PhysAddr(0x0900_0000))
        );
        let prop = |n: &str, v: Vec<u8>| Prop {
            name: n.into(),
            value: v,
        };
        let cells = |v: &[u32]| v.iter().flat_map(|c| c.to_be_bytes()).collect::<Vec<u8>>();
        let uart = |name: &str, compat: &str| Node {
            name: name.into(),
            props: vec![
                prop("compatible", str_value(compat)),
                prop("reg", cells(&[0x1c09_0000, 0x1000])),
            ],
            children: vec![],
        };
        let tree = |stdout: &str, ranges: Vec<u8>, compat: &str| {
            let soc = Node {
                name: "soc".into(),
                props: vec![
                    prop("#address-cells", cells(&[1])),
                    prop("#size-cells", cells(&[1])),
                    prop("ranges", ranges),
                ],
                children: vec![uart("serial@1c090000", compat)],
            };
            let root = Node {
                name: String::new(),
                props: vec![
                    prop("#address-cells", cells(&[2])),
                    prop("#size-cells", cells(&[2])),
                ],
                children: vec![
                    Node {
                        name: "chosen".into(),
                        props: vec![prop("stdout-path", str_value(stdout))],
                        children: vec![],
                    },
                    Node {
                        name: "aliases".into(),
                        props: vec![prop("serial0", str_value("/soc/serial@1c090000"))],
                        children: vec![],
                    },
                    soc,
                ],
            };
            Fdt {
                root,
                ..Fdt::default()
            }
            .to_bytes()
        };
        // An alias with options, one-cell addresses under an identity bus.
        assert_eq!(
            pl011_console(&tree(
                "serial0:115200n8",
                vec![],
                "arm,pl011\0arm,primecell"
            )),
            Some(PhysAddr(0x1c09_0000))
        );
        assert_eq!(
            pl011_console(&tree("/soc/serial@1c090000", vec![], "arm,pl011")),
            Some(PhysAddr(0x1c09_0000))
        );
        // Not a PL011, or a bus that translates: stay silent rather than guess.
        assert_eq!(pl011_console(&tree("serial0", vec![], "ns16550a")), None);
        assert_eq!(
            pl011_console(&tree(
                "serial0",
                cells(&[0, 0, 0x1000_0000, 0x1000_0000]),
                "arm,pl011"
            )),
            None
        );
        assert_eq!(pl011_console(&tree("serial1", vec![], "arm,pl011")), None);
    }
}
