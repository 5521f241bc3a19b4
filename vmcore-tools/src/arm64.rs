//! arm64 kernel virtual addresses: the memory layout, translation to
//! physical addresses, pointer-authentication stripping, and the address
//! classes the CPU verifier uses for plausibility.
//!
//! Everything comes from VMCOREINFO (`arch/arm64/kernel/crash_core.c`):
//! `NUMBER(VA_BITS)`, `NUMBER(kimage_voffset)`, `NUMBER(PHYS_OFFSET)`,
//! `NUMBER(TCR_EL1_T1SZ)`, `NUMBER(KERNELPACMASK)`, `KERNELOFFSET`,
//! `SYMBOL(swapper_pg_dir)`, `SYMBOL(_stext)`, `PAGESIZE`, and, where the
//! kernel exports them (Debian's 6.1.1xx does), `NUMBER(MODULES_VADDR)`,
//! `NUMBER(MODULES_END)`, `NUMBER(VMALLOC_START|VMALLOC_END)`,
//! `NUMBER(VMEMMAP_START|VMEMMAP_END)`. Absent ones are derived as Linux 6.1
//! defines them (`arch/arm64/include/asm/memory.h`, `pgtable.h`):
//!
//! ```text
//! PAGE_OFFSET   = -(1 << VA_BITS)               start of the linear map
//! PAGE_END      = -(1 << (VA_BITS_MIN - 1))     end of the linear map   (VA_BITS_MIN = min(VA_BITS, 48))
//! MODULES_VADDR = PAGE_END,  MODULES_END = MODULES_VADDR + 128 MiB
//! KIMAGE_VADDR  = MODULES_END                    _text = KIMAGE_VADDR + KERNELOFFSET
//! VMALLOC_START = MODULES_END,  VMALLOC_END = VMEMMAP_START - 256 MiB
//! VMEMMAP_START = -(1 << (VA_BITS - VMEMMAP_SHIFT)), VMEMMAP_SHIFT = PAGE_SHIFT - 6
//! VMEMMAP_END   = VMEMMAP_START + ((PAGE_END - PAGE_OFFSET) >> VMEMMAP_SHIFT)
//! PCI_IO_END    = VMEMMAP_START - 8 MiB,  PCI_IO_START = PCI_IO_END - 16 MiB
//! ```
//!
//! For 48-bit VA, 4 KiB pages (Debian 12): linear map
//! `ffff000000000000..ffff800000000000`, modules `ffff800000000000..ffff800008000000`,
//! vmalloc (holding the kernel image) `ffff800008000000..fffffbfff0000000`,
//! vmemmap `fffffc0000000000..fffffe0000000000`.
//!
//! Translation ([`Arm64::virt_to_phys`]), in the kernel's own order
//! (`__virt_to_phys_nodebug`): a linear-map address is
//! `va - PAGE_OFFSET + PHYS_OFFSET`; a kernel-image address (between `_text`
//! and the image end, when that end is known from symbols) is
//! `va - kimage_voffset`; anything else (vmalloc, modules, vmap'd stacks,
//! per-CPU chunks past the first) is found by walking `swapper_pg_dir`,
//! whose own physical address is `swapper_pg_dir - kimage_voffset`.
//!
//! Page-table walk: 4 KiB, 16 KiB and 64 KiB granules; VA_BITS 36..=52 as
//! the kernel configures them; table, block and page descriptors; block
//! mappings at level 1 (4 KiB granule, 1 GiB) and level 2 (2 MiB / 32 MiB /
//! 512 MiB); the contiguous bit is ignored (it does not change the output
//! address); output address bits `[47:granule]`, plus `[51:48]` from
//! descriptor bits `[15:12]` for the 64 KiB granule (`CONFIG_ARM64_PA_BITS_52`).
//! A table that points back to one of the tables above it is refused
//! ([`WalkError::Loop`]), so a corrupt dump cannot send the walk in circles.
//! **Not supported**: 52-bit VA with 4 KiB or 16 KiB pages (FEAT_LPA2, Linux
//! 6.9+), refused with [`Arm64Error::Unsupported`]; KASAN tag bits
//! (`__tag_reset`) are not stripped (Debian builds no KASAN).
#![forbid(unsafe_code)]

use crash_payload::vmcoreinfo::VmcoreInfo;
use crash_payload::{PhysAddr, VirtAddr};

use crate::mem::{MemError, PhysMem};

/// `sizeof(struct page)` is 64 bytes: `STRUCT_PAGE_MAX_SHIFT` (`asm/memory.h`).
const STRUCT_PAGE_MAX_SHIFT: u32 = 6;
/// `MODULES_VSIZE` in Linux 6.1 (`asm/memory.h`).
const MODULES_VSIZE_6_1: u64 = 128 << 20;
/// arm64 branch range reachable by module code with PLTs: modules sit within
/// 2 GiB of the kernel image (`arch/arm64/kernel/kaslr.c`, `module.c`).
const MODULE_WINDOW: u64 = 2 << 30;
const SZ_8M: u64 = 8 << 20;
const SZ_16M: u64 = 16 << 20;
const SZ_256M: u64 = 256 << 20;

/// A VMCOREINFO problem that keeps `Arm64` from being built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Arm64Error {
    /// A required key is absent.
    #[error("VMCOREINFO has no {0}")]
    Missing(&'static str),
    /// A key whose value does not parse.
    #[error("VMCOREINFO {key}: {why}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The parser's message (with the byte offset of the value).
        why: String,
    },
    /// A value that parses but cannot be right.
    #[error("VMCOREINFO {key}={value:#x}: {why}")]
    Implausible {
        /// The key.
        key: &'static str,
        /// The value.
        value: u64,
        /// Why it cannot be right.
        why: &'static str,
    },
    /// A configuration this reader does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Why a page-table walk failed. Every variant names the virtual address and,
/// where there is one, the physical address of the table involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// The address is not a kernel (TTBR1) address for this VA size.
    #[error("virtual address {va}: not a kernel address for {va_bits}-bit VA")]
    NotKernel {
        /// The address.
        va: VirtAddr,
        /// `VA_BITS`.
        va_bits: u32,
    },
    /// VMCOREINFO gave no `SYMBOL(swapper_pg_dir)`.
    #[error(
        "virtual address {va}: cannot walk page tables: VMCOREINFO has no SYMBOL(swapper_pg_dir)"
    )]
    NoPageTable {
        /// The address.
        va: VirtAddr,
    },
    /// An entry with the valid bit clear: the address is not mapped.
    #[error("virtual address {va}: not mapped (level {level} entry at {entry} is {desc:#x})")]
    NotMapped {
        /// The address.
        va: VirtAddr,
        /// Translation level of the table (0..=3).
        level: u8,
        /// Physical address of the entry.
        entry: PhysAddr,
        /// The descriptor.
        desc: u64,
    },
    /// A block descriptor where the architecture allows none, or a level-3
    /// entry with the reserved encoding.
    #[error("virtual address {va}: level {level} entry at {entry} is {desc:#x}, a block/reserved descriptor not allowed at this level")]
    BadDescriptor {
        /// The address.
        va: VirtAddr,
        /// Translation level of the table.
        level: u8,
        /// Physical address of the entry.
        entry: PhysAddr,
        /// The descriptor.
        desc: u64,
    },
    /// A table descriptor pointing back to a table already on the walk.
    #[error("virtual address {va}: page-table loop: level {level} table at {table} points back to the table at {target}")]
    Loop {
        /// The address.
        va: VirtAddr,
        /// Level of the table holding the looping entry.
        level: u8,
        /// Physical address of the table holding the looping entry.
        table: PhysAddr,
        /// The ancestor table it points to.
        target: PhysAddr,
    },
    /// A table entry could not be read from the dump.
    #[error("virtual address {va}: reading the level {level} entry at {entry}: {err}")]
    Read {
        /// The address.
        va: VirtAddr,
        /// Translation level.
        level: u8,
        /// Physical address of the entry.
        entry: PhysAddr,
        /// The cause.
        err: MemError,
    },
}

impl WalkError {
    /// The virtual address the walk was for.
    pub fn va(&self) -> VirtAddr {
        match *self {
            WalkError::NotKernel { va, .. }
            | WalkError::NoPageTable { va }
            | WalkError::NotMapped { va, .. }
            | WalkError::BadDescriptor { va, .. }
            | WalkError::Loop { va, .. }
            | WalkError::Read { va, .. } => va,
        }
    }
}

impl From<WalkError> for MemError {
    fn from(e: WalkError) -> MemError {
        MemError::Translate {
            addr: e.va(),
            why: e.to_string(),
        }
    }
}

/// The kernel's virtual memory layout (start inclusive, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `PAGE_OFFSET`: start of the linear map.
    pub page_offset: u64,
    /// `PAGE_END`: end of the linear map.
    pub page_end: u64,
    /// `MODULES_VADDR`.
    pub modules_vaddr: u64,
    /// `MODULES_END` (= `KIMAGE_VADDR` in 6.1).
    pub modules_end: u64,
    /// `VMALLOC_START`.
    pub vmalloc_start: u64,
    /// `VMALLOC_END`.
    pub vmalloc_end: u64,
    /// `VMEMMAP_START`.
    pub vmemmap_start: u64,
    /// `VMEMMAP_END`.
    pub vmemmap_end: u64,
    /// `PCI_IO_START`.
    pub pci_io_start: u64,
    /// `PCI_IO_END`.
    pub pci_io_end: u64,
}

/// Which part of the address space an address falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Region {
    /// A user (TTBR0) address: bit 55 clear.
    User,
    /// Neither a canonical user nor a kernel address for this VA size.
    NonCanonical,
    /// The linear map.
    Linear,
    /// The kernel image (`_text` up to its end; see [`Arm64::kernel_image`]).
    KernelImage,
    /// The static module region `[MODULES_VADDR, MODULES_END)`.
    Modules,
    /// vmalloc space outside the kernel image (modules under KASLR, vmap'd
    /// stacks, per-CPU chunks, ioremap).
    Vmalloc,
    /// The `struct page` array.
    Vmemmap,
    /// PCI I/O space.
    PciIo,
    /// The rest of the top of the address space (fixmap, guard gaps).
    Other,
}

/// Kernel image bounds learned from symbols (kallsyms or a System.map):
/// all runtime (KASLR-shifted) addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelBounds {
    /// `_etext`: end of the main text section.
    pub etext: Option<VirtAddr>,
    /// `_sinittext`, `_einittext`: the init text.
    pub inittext: Option<(VirtAddr, VirtAddr)>,
    /// `_end`: end of the image (after .bss).
    pub end: Option<VirtAddr>,
}

/// A successful walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The physical address.
    pub phys: PhysAddr,
    /// Level of the descriptor that mapped it (3 = page, 2 or 1 = block).
    pub level: u8,
    /// Size of the mapping (page or block) in bytes.
    pub size: u64,
}

/// An arm64 kernel's address translation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm64 {
    va_bits: u32,
    va_bits_actual: u32,
    page_shift: u32,
    kimage_voffset: u64,
    phys_offset: u64,
    kaslr_offset: u64,
    pac_mask: u64,
    swapper_pg_dir: Option<VirtAddr>,
    stext: VirtAddr,
    text: VirtAddr,
    bounds: KernelBounds,
    /// End of the highest image variable VMCOREINFO names (a lower bound
    /// of `_end`, used while `_end` is unknown).
    symbol_hint_end: Option<VirtAddr>,
    layout: Layout,
}

fn required<T>(
    key: &'static str,
    v: Option<Result<T, crash_payload::vmcoreinfo::VmcoreInfoError>>,
) -> Result<T, Arm64Error> {
    optional(key, v)?.ok_or(Arm64Error::Missing(key))
}

fn optional<T>(
    key: &'static str,
    v: Option<Result<T, crash_payload::vmcoreinfo::VmcoreInfoError>>,
) -> Result<Option<T>, Arm64Error> {
    match v {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(Arm64Error::BadValue {
            key,
            why: e.to_string(),
        }),
    }
}

/// `-(1 << bits)` as an address.
fn neg_pow2(bits: u32) -> u64 {
    (1u64 << bits).wrapping_neg()
}

impl Arm64 {
    /// Builds the context from VMCOREINFO.
    pub fn from_vmcoreinfo(vi: &VmcoreInfo<'_>) -> Result<Arm64, Arm64Error> {
        let va_bits = required("NUMBER(VA_BITS)", vi.number("VA_BITS"))?;
        let va_bits = u32::try_from(va_bits)
            .ok()
            .filter(|b| (36..=52).contains(b))
            .ok_or(Arm64Error::Implausible {
                key: "NUMBER(VA_BITS)",
                value: va_bits as u64,
                why: "arm64 VA_BITS is 36..=52",
            })?;
        let page_size = required("PAGESIZE", vi.page_size())?;
        let page_shift = match page_size {
            4096 => 12,
            16384 => 14,
            65536 => 16,
            v => {
                return Err(Arm64Error::Implausible {
                    key: "PAGESIZE",
                    value: v,
                    why: "arm64 pages are 4096, 16384 or 65536 bytes",
                })
            }
        };
        if va_bits > 48 && page_shift != 16 {
            return Err(Arm64Error::Unsupported(format!(
                "52-bit VA with {} KiB pages (FEAT_LPA2, Linux 6.9+)",
                page_size / 1024
            )));
        }
        let t1sz = optional("NUMBER(TCR_EL1_T1SZ)", vi.number("TCR_EL1_T1SZ"))?;
        let va_bits_actual = match t1sz {
            None => va_bits,
            Some(t) => {
                let actual = u32::try_from(64 - t.clamp(0, 64)).unwrap_or(va_bits);
                if !(36..=va_bits).contains(&actual) {
                    return Err(Arm64Error::Implausible {
                        key: "NUMBER(TCR_EL1_T1SZ)",
                        value: t as u64,
                        why: "64 - T1SZ must be between 36 and VA_BITS",
                    });
                }
                actual
            }
        };
        let kimage_voffset =
            required("NUMBER(kimage_voffset)", vi.number("kimage_voffset"))? as u64;
        let phys_offset = required("NUMBER(PHYS_OFFSET)", vi.number("PHYS_OFFSET"))? as u64;
        let kaslr_offset = optional("KERNELOFFSET", vi.kerneloffset())?.unwrap_or(0);
        let stext = VirtAddr(required("SYMBOL(_stext)", vi.symbol("_stext"))?);
        let swapper_pg_dir =
            optional("SYMBOL(swapper_pg_dir)", vi.symbol("swapper_pg_dir"))?.map(VirtAddr);

        // The kernel prints KERNELPACMASK only when address authentication
        // is in use; its value is GENMASK(63, vabits_actual). Without it,
        // kernel pointers carry no PAC and the same mask is harmless.
        let default_pac = neg_pow2(va_bits_actual);
        let pac_mask = optional("NUMBER(KERNELPACMASK)", vi.number("KERNELPACMASK"))?
            .map(|m| m as u64)
            .unwrap_or(default_pac);

        let va_bits_min = va_bits.min(48);
        let page_offset = neg_pow2(va_bits);
        let page_end = neg_pow2(va_bits_min - 1);
        let vmemmap_shift = page_shift - STRUCT_PAGE_MAX_SHIFT;
        let d_vmemmap_start = neg_pow2(va_bits - vmemmap_shift);
        let d_vmemmap_end =
            d_vmemmap_start.wrapping_add(page_end.wrapping_sub(page_offset) >> vmemmap_shift);
        let num = |key: &'static str, name: &str, default: u64| -> Result<u64, Arm64Error> {
            Ok(optional(key, vi.number(name))?
                .map(|v| v as u64)
                .unwrap_or(default))
        };
        let modules_vaddr = num("NUMBER(MODULES_VADDR)", "MODULES_VADDR", page_end)?;
        let modules_end = num(
            "NUMBER(MODULES_END)",
            "MODULES_END",
            modules_vaddr.wrapping_add(MODULES_VSIZE_6_1),
        )?;
        let vmemmap_start = num("NUMBER(VMEMMAP_START)", "VMEMMAP_START", d_vmemmap_start)?;
        let vmemmap_end = num("NUMBER(VMEMMAP_END)", "VMEMMAP_END", d_vmemmap_end)?;
        let vmalloc_start = num("NUMBER(VMALLOC_START)", "VMALLOC_START", modules_end)?;
        let vmalloc_end = num(
            "NUMBER(VMALLOC_END)",
            "VMALLOC_END",
            vmemmap_start.wrapping_sub(SZ_256M),
        )?;
        let pci_io_end = vmemmap_start.wrapping_sub(SZ_8M);
        let pci_io_start = pci_io_end.wrapping_sub(SZ_16M);
        let layout = Layout {
            page_offset,
            page_end,
            modules_vaddr,
            modules_end,
            vmalloc_start,
            vmalloc_end,
            vmemmap_start,
            vmemmap_end,
            pci_io_start,
            pci_io_end,
        };
        if !(page_offset < page_end
            && page_end <= modules_vaddr
            && modules_vaddr < modules_end
            && modules_end <= vmalloc_start
            && vmalloc_start < vmalloc_end
            && vmalloc_end <= vmemmap_start
            && vmemmap_start < vmemmap_end)
        {
            return Err(Arm64Error::Implausible {
                key: "NUMBER(VMALLOC_START)",
                value: vmalloc_start,
                why: "the kernel address-space regions are out of order",
            });
        }
        if !(vmalloc_start..vmalloc_end).contains(&stext.0) {
            return Err(Arm64Error::Implausible {
                key: "SYMBOL(_stext)",
                value: stext.0,
                why: "the kernel text must lie in vmalloc space",
            });
        }
        // _text = KIMAGE_VADDR + KERNELOFFSET; KIMAGE_VADDR is MODULES_END in
        // 5.11..6.4. If that does not fit below _stext (another layout), use
        // _stext itself as the image start.
        let text = modules_end
            .checked_add(kaslr_offset)
            .filter(|t| *t <= stext.0 && stext.0 - *t < (16 << 20))
            .map_or(stext, VirtAddr);
        // Image variables VMCOREINFO names (init_uts_ns, prb, ...) bound
        // the image's data from below while `_end` is unknown.
        let symbol_hint_end = vi
            .entries()
            .filter_map(|(k, v, _)| {
                k.strip_prefix("SYMBOL(")?;
                crash_payload::vmcoreinfo::parse_hex(v.trim())
            })
            .filter(|&v| v >= text.0 && v - text.0 < (256 << 20))
            .max()
            .map(|v| VirtAddr(v.saturating_add(8)));
        Ok(Arm64 {
            symbol_hint_end,
            va_bits,
            va_bits_actual,
            page_shift,
            kimage_voffset,
            phys_offset,
            kaslr_offset,
            pac_mask,
            swapper_pg_dir,
            stext,
            text,
            bounds: KernelBounds::default(),
            layout,
        })
    }

    /// Records image bounds learned from symbols (`_etext`, init text,
    /// `_end`). Bounds below `_stext` are ignored.
    pub fn set_kernel_bounds(&mut self, b: KernelBounds) {
        let ok = |v: Option<VirtAddr>| v.filter(|v| *v > self.stext);
        self.bounds = KernelBounds {
            etext: ok(b.etext),
            inittext: b.inittext.filter(|(s, e)| s < e && *s > self.stext),
            end: ok(b.end),
        };
    }

    /// The bounds recorded by [`Arm64::set_kernel_bounds`].
    pub fn kernel_bounds(&self) -> KernelBounds {
        self.bounds
    }

    /// `VA_BITS` (compile-time).
    pub fn va_bits(&self) -> u32 {
        self.va_bits
    }

    /// `vabits_actual` (`64 - TCR_EL1.T1SZ`).
    pub fn va_bits_actual(&self) -> u32 {
        self.va_bits_actual
    }

    /// `PAGESIZE`.
    pub fn page_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// `kimage_voffset`.
    pub fn kimage_voffset(&self) -> u64 {
        self.kimage_voffset
    }

    /// `PHYS_OFFSET` (`memstart_addr`).
    pub fn phys_offset(&self) -> u64 {
        self.phys_offset
    }

    /// `KERNELOFFSET`: the KASLR displacement of the image.
    pub fn kaslr_offset(&self) -> u64 {
        self.kaslr_offset
    }

    /// The mask of pointer-authentication bits in kernel pointers.
    pub fn pac_mask(&self) -> u64 {
        self.pac_mask
    }

    /// `_stext` at run time.
    pub fn stext(&self) -> VirtAddr {
        self.stext
    }

    /// `_text` at run time (`KIMAGE_VADDR + KERNELOFFSET`).
    pub fn text(&self) -> VirtAddr {
        self.text
    }

    /// `swapper_pg_dir` at run time.
    pub fn swapper_pg_dir(&self) -> Option<VirtAddr> {
        self.swapper_pg_dir
    }

    /// The address-space layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Removes pointer-authentication bits from a code pointer (a saved
    /// `lr`, a frame record's return address), as the kernel's
    /// `ptrauth_strip_kernel_insn_pac` does: kernel pointers (bit 55 set)
    /// get the PAC field set to ones; user pointers keep only their low
    /// `vabits_actual` bits (PAC and tag byte cleared).
    pub fn strip_pac(&self, ptr: u64) -> u64 {
        if ptr & (1 << 55) != 0 {
            ptr | self.pac_mask
        } else {
            ptr & ((1u64 << self.va_bits_actual) - 1)
        }
    }

    /// The kernel image range: `[_text, _end)` when `_end` is known, else
    /// `[_text, x)` with `x` the highest of `_etext`, `_einittext` and the
    /// end of the highest image variable VMCOREINFO names (its `.data`):
    /// an under-estimate, so `.bss` beyond it counts as vmalloc space and
    /// is translated by the page-table walk, which is still exact.
    pub fn kernel_image(&self) -> std::ops::Range<u64> {
        let end = self.bounds.end.unwrap_or_else(|| {
                [
                    self.bounds.inittext.map(|(_, e)| e),
                    self.bounds.etext,
                    self.symbol_hint_end,
                    Some(self.stext),
                ]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(self.stext)
            });
        self.text.0..end.0
    }

    /// Which region `va` is in.
    pub fn region(&self, va: VirtAddr) -> Region {
        let v = va.0;
        let l = &self.layout;
        if v & (1 << 55) == 0 {
            return if v >> self.va_bits == 0 {
                Region::User
            } else {
                Region::NonCanonical
            };
        }
        if v < l.page_offset {
            Region::NonCanonical
        } else if v < l.page_end {
            Region::Linear
        } else if self.kernel_image().contains(&v) || (self.text.0..self.stext.0 + 1).contains(&v) {
            Region::KernelImage
        } else if (l.modules_vaddr..l.modules_end).contains(&v) {
            Region::Modules
        } else if (l.vmalloc_start..l.vmalloc_end).contains(&v) {
            Region::Vmalloc
        } else if (l.vmemmap_start..l.vmemmap_end).contains(&v) {
            Region::Vmemmap
        } else if (l.pci_io_start..l.pci_io_end).contains(&v) {
            Region::PciIo
        } else {
            Region::Other
        }
    }

    /// True for a linear-map address.
    pub fn is_linear(&self, va: VirtAddr) -> bool {
        (self.layout.page_offset..self.layout.page_end).contains(&va.0)
    }

    /// True for kernel text: `[_stext, _etext)` or `[_sinittext, _einittext)`.
    /// Without `_etext` from symbols, `[_stext, end of image)` if the end is
    /// known, else `[_stext, _stext + 64 MiB)` (a plausibility bound: the
    /// Debian 6.1 arm64 image is 32 MiB in all).
    pub fn is_kernel_text(&self, va: VirtAddr) -> bool {
        let v = va.0;
        if let Some((s, e)) = self.bounds.inittext {
            if (s.0..e.0).contains(&v) {
                return true;
            }
        }
        let end = self
            .bounds
            .etext
            .or(self.bounds.end)
            .map_or(self.stext.0.saturating_add(64 << 20), |e| e.0);
        (self.stext.0..end).contains(&v)
    }

    /// The window module code can occupy: `[max(_text - 2 GiB, MODULES_VADDR),
    /// _text + 2 GiB)` clipped to vmalloc space. Covers 6.1's static region,
    /// `CONFIG_RANDOMIZE_MODULE_REGION_FULL` and the PLT fallback.
    pub fn module_window(&self) -> std::ops::Range<u64> {
        let l = &self.layout;
        let lo = self
            .text
            .0
            .saturating_sub(MODULE_WINDOW)
            .max(l.modules_vaddr);
        let hi = self.text.0.saturating_add(MODULE_WINDOW).min(l.vmalloc_end);
        lo..hi
    }

    /// True if `va` could be module code: inside [`Arm64::module_window`]
    /// and not inside the kernel image.
    pub fn is_module_addr(&self, va: VirtAddr) -> bool {
        self.module_window().contains(&va.0)
            && !matches!(self.region(va), Region::KernelImage | Region::Linear)
    }

    /// True if `pc` is plausible kernel code: kernel text or module space.
    pub fn is_kernel_code(&self, pc: VirtAddr) -> bool {
        self.is_kernel_text(pc) || self.is_module_addr(pc)
    }

    /// True if `sp` is a plausible kernel stack pointer: 16-byte aligned and
    /// in the linear map (per-CPU overflow stacks, non-vmap stacks), vmalloc
    /// space (vmap'd task, IRQ and SDEI stacks — `CONFIG_VMAP_STACK=y` on
    /// Debian) or the kernel image (`init_stack`).
    pub fn is_kernel_stack_candidate(&self, sp: VirtAddr) -> bool {
        sp.0.is_multiple_of(16)
            && matches!(
                self.region(sp),
                Region::Linear | Region::Vmalloc | Region::KernelImage | Region::Modules
            )
    }

    /// `__lm_to_phys`, for a linear-map address.
    pub fn lm_to_phys(&self, va: VirtAddr) -> Option<PhysAddr> {
        self.is_linear(va).then(|| {
            PhysAddr(
                va.0.wrapping_sub(self.layout.page_offset)
                    .wrapping_add(self.phys_offset),
            )
        })
    }

    /// `__phys_to_virt`: the linear-map address of `pa`.
    pub fn phys_to_lm(&self, pa: PhysAddr) -> VirtAddr {
        VirtAddr(pa.0.wrapping_sub(self.phys_offset) | self.layout.page_offset)
    }

    /// `__kimg_to_phys`, for an address in the kernel image range known so
    /// far (`_text` .. end of image; see [`Arm64::kernel_image`]).
    pub fn kimg_to_phys(&self, va: VirtAddr) -> Option<PhysAddr> {
        (self.kernel_image().contains(&va.0) || (self.text.0..=self.stext.0).contains(&va.0))
            .then(|| PhysAddr(va.0.wrapping_sub(self.kimage_voffset)))
    }

    /// `__pa_symbol`: the physical address of a kernel-image symbol,
    /// `va - kimage_voffset`. For addresses the caller knows lie in the
    /// image (VMCOREINFO `SYMBOL()`s, kallsyms addresses of image
    /// variables) even when the image's end is not known; refuses addresses
    /// below `_text` or outside vmalloc space.
    pub fn pa_symbol(&self, va: VirtAddr) -> Result<PhysAddr, MemError> {
        if va.0 < self.text.0 || va.0 >= self.layout.vmalloc_end {
            return Err(MemError::Translate {
                addr: va,
                why: format!("not a kernel-image address (_text is {})", self.text),
            });
        }
        Ok(PhysAddr(va.0.wrapping_sub(self.kimage_voffset)))
    }

    /// Reads kernel-image data at a symbol address (see
    /// [`Arm64::pa_symbol`]); the image is physically contiguous.
    pub fn read_symbol(
        &self,
        mem: &dyn PhysMem,
        va: VirtAddr,
        buf: &mut [u8],
    ) -> Result<(), MemError> {
        let end = va
            .checked_add(buf.len() as u64)
            .ok_or(MemError::Translate {
                addr: va,
                why: format!(
                    "a read of {} bytes wraps around the address space",
                    buf.len()
                ),
            })?;
        self.pa_symbol(VirtAddr(end.0.saturating_sub(1).max(va.0)))?;
        mem.read_phys(self.pa_symbol(va)?, buf)
    }

    /// Translates any kernel virtual address (linear map, kernel image,
    /// page-table walk for everything else).
    pub fn virt_to_phys(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<PhysAddr, MemError> {
        if let Some(p) = self.lm_to_phys(va) {
            return Ok(p);
        }
        if let Some(p) = self.kimg_to_phys(va) {
            return Ok(p);
        }
        Ok(self.walk(mem, va)?.phys)
    }

    /// Levels of translation for this granule and VA size.
    fn levels(&self) -> u32 {
        let per = self.page_shift - 3;
        (self.va_bits - self.page_shift).div_ceil(per)
    }

    fn output_address(&self, desc: u64, shift: u32) -> u64 {
        let mut oa = desc & ((1u64 << 48) - 1) & !((1u64 << shift) - 1);
        if self.page_shift == 16 {
            oa |= ((desc >> 12) & 0xf) << 48;
        }
        oa
    }

    /// Walks `swapper_pg_dir` for `va`.
    pub fn walk(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, WalkError> {
        if va.0 >> self.va_bits != u64::MAX >> self.va_bits {
            return Err(WalkError::NotKernel {
                va,
                va_bits: self.va_bits,
            });
        }
        let pgd = self.swapper_pg_dir.ok_or(WalkError::NoPageTable { va })?;
        let per = self.page_shift - 3;
        let levels = self.levels();
        let first = 4 - levels;
        let mut table = PhysAddr(pgd.0.wrapping_sub(self.kimage_voffset));
        // Tables on this walk (at most 4): a table pointing back to one of
        // them is a loop.
        let mut ancestors: [PhysAddr; 4] = [PhysAddr(u64::MAX); 4];
        for level in first..4 {
            let lvl = level as u8;
            ancestors[level as usize] = table;
            let shift = self.page_shift + (3 - level) * per;
            let bits = if level == first {
                self.va_bits - shift
            } else {
                per
            };
            let index = (va.0 >> shift) & ((1u64 << bits) - 1);
            let entry = PhysAddr(table.0.wrapping_add(index * 8));
            let desc = mem.read_u64(entry).map_err(|err| WalkError::Read {
                va,
                level: lvl,
                entry,
                err,
            })?;
            if desc & 1 == 0 {
                return Err(WalkError::NotMapped {
                    va,
                    level: lvl,
                    entry,
                    desc,
                });
            }
            let is_table = desc & 2 != 0;
            if level == 3 {
                if !is_table {
                    return Err(WalkError::BadDescriptor {
                        va,
                        level: lvl,
                        entry,
                        desc,
                    });
                }
                let base = self.output_address(desc, self.page_shift);
                return Ok(Translation {
                    phys: PhysAddr(base | (va.0 & ((1u64 << self.page_shift) - 1))),
                    level: lvl,
                    size: 1 << self.page_shift,
                });
            }
            if !is_table {
                let block_ok = level == 2 || (level == 1 && self.page_shift == 12);
                if !block_ok {
                    return Err(WalkError::BadDescriptor {
                        va,
                        level: lvl,
                        entry,
                        desc,
                    });
                }
                let base = self.output_address(desc, shift);
                return Ok(Translation {
                    phys: PhysAddr(base | (va.0 & ((1u64 << shift) - 1))),
                    level: lvl,
                    size: 1 << shift,
                });
            }
            let next = PhysAddr(self.output_address(desc, self.page_shift));
            if let Some(target) = ancestors[first as usize..=level as usize]
                .iter()
                .find(|a| **a == next)
            {
                return Err(WalkError::Loop {
                    va,
                    level: lvl,
                    table,
                    target: *target,
                });
            }
            table = next;
        }
        // Unreachable: level 3 always returns. Report it as a loop-free
        // "not mapped" rather than panicking.
        Err(WalkError::NotMapped {
            va,
            level: 3,
            entry: table,
            desc: 0,
        })
    }

    /// Reads `buf.len()` bytes of kernel virtual memory at `va`, translating
    /// page by page.
    pub fn read_virt(
        &self,
        mem: &dyn PhysMem,
        va: VirtAddr,
        buf: &mut [u8],
    ) -> Result<(), MemError> {
        let page = self.page_size();
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va.checked_add(done as u64).ok_or(MemError::Translate {
                addr: va,
                why: format!(
                    "a read of {} bytes wraps around the address space",
                    buf.len()
                ),
            })?;
            let in_page = (page - (cur.0 & (page - 1))) as usize;
            let n = in_page.min(buf.len() - done);
            let pa = self.virt_to_phys(mem, cur)?;
            mem.read_phys(pa, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Reads a little-endian `u64` of kernel virtual memory.
    pub fn read_u64(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read_virt(mem, va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a little-endian `u32` of kernel virtual memory.
    pub fn read_u32(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        self.read_virt(mem, va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mem::FakeMem;

    /// VMCOREINFO of a Debian 6.1 arm64 guest (48-bit VA, 4 KiB pages) with
    /// KASLR `kaslr` and RAM at 0x4000_0000, shaped like the kernel's output.
    pub(crate) fn vmcoreinfo_text(kaslr: u64) -> String {
        let kimage_voffset = 0xffff_8000_0800_0000u64 + kaslr - 0x4020_0000;
        format!(
            "OSRELEASE=6.1.0-56-arm64\nPAGESIZE=4096\n\
             SYMBOL(swapper_pg_dir)={:x}\nSYMBOL(_stext)={:x}\n\
             NUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)={:#x}\n\
             NUMBER(PHYS_OFFSET)=0x40000000\nNUMBER(TCR_EL1_T1SZ)=0x10\n\
             NUMBER(KERNELPACMASK)=0xffff000000000000\nKERNELOFFSET={:x}\n",
            0xffff_8000_0a00_0000u64 + kaslr,
            0xffff_8000_0801_0000u64 + kaslr,
            kimage_voffset,
            kaslr
        )
    }

    pub(crate) fn arm64(kaslr: u64) -> Arm64 {
        let text = vmcoreinfo_text(kaslr);
        let vi = VmcoreInfo::parse(text.as_bytes()).unwrap();
        Arm64::from_vmcoreinfo(&vi).unwrap()
    }

    /// Builds 4 KiB-granule page tables in a [`FakeMem`]: each table is a
    /// zeroed 4 KiB page; `map_*` allocate missing tables from `next_table`.
    pub(crate) struct PageTables {
        pub mem: FakeMem,
        pub pgd: PhysAddr,
        next_table: u64,
        tables: Vec<(u64, [u64; 512])>,
    }

    impl PageTables {
        pub(crate) fn new(pgd: PhysAddr, table_pool: u64) -> Self {
            PageTables {
                mem: FakeMem::default(),
                pgd,
                next_table: table_pool,
                tables: vec![(pgd.0, [0; 512])],
            }
        }
        fn table_mut(&mut self, pa: u64) -> &mut [u64; 512] {
            let i = self.tables.iter().position(|(a, _)| *a == pa).unwrap();
            &mut self.tables[i].1
        }
        fn index(va: u64, level: u32) -> usize {
            ((va >> (12 + 9 * (3 - level))) & 511) as usize
        }
        /// Descends to the table at `level` for `va`, creating tables.
        fn table_for(&mut self, va: u64, level: u32) -> u64 {
            let mut t = self.pgd.0;
            for l in 0..level {
                let i = Self::index(va, l);
                let d = self.table_mut(t)[i];
                t = if d & 3 == 3 {
                    d & 0x0000_ffff_ffff_f000
                } else {
                    let n = self.next_table;
                    self.next_table += 4096;
                    self.tables.push((n, [0; 512]));
                    self.table_mut(t)[i] = n | 3;
                    n
                };
            }
            t
        }
        /// Maps a 4 KiB page (level 3 page descriptor, AF and attributes set).
        pub(crate) fn map_page(&mut self, va: u64, pa: u64) {
            let t = self.table_for(va, 3);
            self.table_mut(t)[Self::index(va, 3)] = pa | 0x703;
        }
        /// Maps a block at level 1 (1 GiB) or 2 (2 MiB).
        pub(crate) fn map_block(&mut self, va: u64, pa: u64, level: u32) {
            let t = self.table_for(va, level);
            self.table_mut(t)[Self::index(va, level)] = pa | 0x701;
        }
        /// Writes a raw descriptor into the table at `level` for `va`.
        pub(crate) fn set_raw(&mut self, va: u64, level: u32, desc: u64) {
            let t = self.table_for(va, level);
            self.table_mut(t)[Self::index(va, level)] = desc;
        }
        /// Physical address of the table at `level` for `va` (creating it).
        pub(crate) fn table_pa(&mut self, va: u64, level: u32) -> u64 {
            self.table_for(va, level)
        }
        /// The memory: tables written out after `extra` ranges.
        pub(crate) fn build(&self) -> FakeMem {
            let mut m = self.mem.clone();
            for (pa, t) in &self.tables {
                let bytes: Vec<u8> = t.iter().flat_map(|d| d.to_le_bytes()).collect();
                m.put(PhysAddr(*pa), &bytes);
            }
            m
        }
    }

    pub(crate) fn tables_for(a: &Arm64) -> PageTables {
        let pgd = PhysAddr(a.swapper_pg_dir().unwrap().0 - a.kimage_voffset());
        PageTables::new(pgd, 0x7000_0000)
    }

    #[test]
    fn layout_48bit_4k() {
        let a = arm64(0);
        let l = a.layout();
        assert_eq!(l.page_offset, 0xffff_0000_0000_0000);
        assert_eq!(l.page_end, 0xffff_8000_0000_0000);
        assert_eq!(l.modules_vaddr, 0xffff_8000_0000_0000);
        assert_eq!(l.modules_end, 0xffff_8000_0800_0000);
        assert_eq!(l.vmalloc_start, 0xffff_8000_0800_0000);
        assert_eq!(l.vmalloc_end, 0xffff_fbff_f000_0000);
        assert_eq!(l.vmemmap_start, 0xffff_fc00_0000_0000);
        assert_eq!(l.vmemmap_end, 0xffff_fe00_0000_0000);
        assert_eq!(l.pci_io_start, 0xffff_fbff_fe80_0000);
        assert_eq!(a.text(), VirtAddr(0xffff_8000_0800_0000));
        assert_eq!(a.va_bits_actual(), 48);
    }

    #[test]
    fn exported_layout_numbers_win() {
        let t = vmcoreinfo_text(0)
            + "NUMBER(MODULES_VADDR)=0xffff800000000000\nNUMBER(MODULES_END)=0xffff800008000000\n\
               NUMBER(VMALLOC_START)=0xffff800008000000\nNUMBER(VMALLOC_END)=0xfffffbffeff00000\n\
               NUMBER(VMEMMAP_START)=0xfffffc0000000000\nNUMBER(VMEMMAP_END)=0xfffffe0000000000\n";
        let a = Arm64::from_vmcoreinfo(&VmcoreInfo::parse(t.as_bytes()).unwrap()).unwrap();
        assert_eq!(a.layout().vmalloc_end, 0xffff_fbff_eff0_0000);
    }

    #[test]
    fn missing_and_bad_keys() {
        let t = vmcoreinfo_text(0).replace("NUMBER(kimage_voffset)", "NUMBER(x)");
        let e = Arm64::from_vmcoreinfo(&VmcoreInfo::parse(t.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(e, Arm64Error::Missing("NUMBER(kimage_voffset)"));
        let t = vmcoreinfo_text(0).replace("PAGESIZE=4096", "PAGESIZE=8192");
        let e = Arm64::from_vmcoreinfo(&VmcoreInfo::parse(t.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "VMCOREINFO PAGESIZE=0x2000: arm64 pages are 4096, 16384 or 65536 bytes"
        );
        let t = vmcoreinfo_text(0).replace("VA_BITS)=48", "VA_BITS)=52");
        let e = Arm64::from_vmcoreinfo(&VmcoreInfo::parse(t.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported: 52-bit VA with 4 KiB pages (FEAT_LPA2, Linux 6.9+)"
        );
        let t = vmcoreinfo_text(0)
            .replace("NUMBER(PHYS_OFFSET)=0x40000000", "NUMBER(PHYS_OFFSET)=0xzz");
        let e = Arm64::from_vmcoreinfo(&VmcoreInfo::parse(t.as_bytes()).unwrap()).unwrap_err();
        assert!(
            matches!(
                e,
                Arm64Error::BadValue {
                    key: "NUMBER(PHYS_OFFSET)",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn linear_and_image_formulas() {
        let a = arm64(0x1234_0000);
        let mem = FakeMem::default();
        assert_eq!(
            a.virt_to_phys(&mem, VirtAddr(0xffff_0000_1234_5678))
                .unwrap(),
            PhysAddr(0x5234_5678)
        );
        assert_eq!(
            a.phys_to_lm(PhysAddr(0x5234_5678)),
            VirtAddr(0xffff_0000_1234_5678)
        );
        // _stext is 64 KiB into an image loaded at 0x4020_0000.
        assert_eq!(
            a.virt_to_phys(&mem, a.stext()).unwrap(),
            PhysAddr(0x4021_0000)
        );
        assert_eq!(a.region(a.stext()), Region::KernelImage);
        assert_eq!(a.region(VirtAddr(0xffff_0000_0000_0000)), Region::Linear);
        assert_eq!(a.region(VirtAddr(0x0000_ffff_0000_0000)), Region::User);
        assert_eq!(
            a.region(VirtAddr(0x00ff_0000_0000_0000)),
            Region::NonCanonical
        );
        assert_eq!(
            a.region(VirtAddr(0xfffe_0000_0000_0000)),
            Region::NonCanonical
        );
        assert_eq!(a.region(VirtAddr(0xffff_8000_0100_0000)), Region::Modules);
        assert_eq!(a.region(VirtAddr(0xffff_8000_9000_0000)), Region::Vmalloc);
        assert_eq!(a.region(VirtAddr(0xffff_fc00_0000_1000)), Region::Vmemmap);
    }

    #[test]
    fn walk_page_and_blocks() {
        let a = arm64(0);
        let mut pt = tables_for(&a);
        let vm = 0xffff_8000_8000_3000u64;
        pt.map_page(vm, 0x4567_8000);
        pt.map_block(0xffff_8001_0000_0000, 0x8000_0000, 1);
        pt.map_block(0xffff_8000_c020_0000, 0x4440_0000, 2);
        let mem = pt.build();
        let t = a.walk(&mem, VirtAddr(vm + 0x123)).unwrap();
        assert_eq!(
            t,
            Translation {
                phys: PhysAddr(0x4567_8123),
                level: 3,
                size: 4096
            }
        );
        let t = a.walk(&mem, VirtAddr(0xffff_8001_0123_4567)).unwrap();
        assert_eq!(
            t,
            Translation {
                phys: PhysAddr(0x8123_4567),
                level: 1,
                size: 1 << 30
            }
        );
        let t = a.walk(&mem, VirtAddr(0xffff_8000_c021_0008)).unwrap();
        assert_eq!(
            t,
            Translation {
                phys: PhysAddr(0x4441_0008),
                level: 2,
                size: 2 << 20
            }
        );
        // read_virt across a page boundary into an unmapped page fails with
        // the walk's message; inside the page it reads.
        let mut mem = mem;
        mem.put(PhysAddr(0x4567_8ff8), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            a.read_u64(&mem, VirtAddr(vm + 0xff8)).unwrap(),
            0x0807_0605_0403_0201
        );
        let mut b = [0u8; 16];
        let e = a.read_virt(&mem, VirtAddr(vm + 0xff8), &mut b).unwrap_err();
        assert!(
            matches!(
                e,
                MemError::Translate {
                    addr: VirtAddr(0xffff_8000_8000_4000),
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn walk_errors() {
        let a = arm64(0);
        let mut pt = tables_for(&a);
        let vm = 0xffff_8000_8000_3000u64;
        pt.map_page(vm, 0x4567_8000);
        let l3 = pt.table_pa(vm, 3);
        let mem = pt.build();
        let e = a.walk(&mem, VirtAddr(vm + 0x1000)).unwrap_err();
        assert_eq!(
            e,
            WalkError::NotMapped {
                va: VirtAddr(vm + 0x1000),
                level: 3,
                entry: PhysAddr(l3 + 4 * 8),
                desc: 0
            }
        );
        assert_eq!(
            a.walk(&mem, VirtAddr(0x1000)).unwrap_err(),
            WalkError::NotKernel {
                va: VirtAddr(0x1000),
                va_bits: 48
            }
        );
        // Level-3 reserved encoding (bits[1:0] = 01).
        let mut pt2 = tables_for(&a);
        pt2.set_raw(vm, 3, 0x4567_8001);
        let e = a.walk(&pt2.build(), VirtAddr(vm)).unwrap_err();
        assert!(matches!(
            e,
            WalkError::BadDescriptor {
                level: 3,
                desc: 0x4567_8001,
                ..
            }
        ));
        // A block at level 0 is not allowed with a 4 KiB granule.
        let mut pt3 = tables_for(&a);
        pt3.set_raw(vm, 0, 0x8000_0001);
        let e = a.walk(&pt3.build(), VirtAddr(vm)).unwrap_err();
        assert!(matches!(e, WalkError::BadDescriptor { level: 0, .. }));
        // A table not in the dump.
        let mut pt4 = tables_for(&a);
        pt4.set_raw(vm, 0, 0x9999_0003);
        let e = a.walk(&pt4.build(), VirtAddr(vm)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "virtual address 0xffff800080003000: reading the level 1 entry at 0x99990010: \
             physical address 0x99990010 is not in the dump"
        );
    }

    #[test]
    fn looping_page_table_is_refused() {
        let a = arm64(0);
        let vm = 0xffff_8000_8000_3000u64;
        // The level-2 table's entry points back at the level-1 table.
        let mut pt = tables_for(&a);
        let l1 = pt.table_pa(vm, 1);
        let l2 = pt.table_pa(vm, 2);
        pt.set_raw(vm, 2, l1 | 3);
        let e = a.walk(&pt.build(), VirtAddr(vm)).unwrap_err();
        assert_eq!(
            e,
            WalkError::Loop {
                va: VirtAddr(vm),
                level: 2,
                table: PhysAddr(l2),
                target: PhysAddr(l1)
            }
        );
        assert_eq!(
            e.to_string(),
            format!(
                "virtual address 0xffff800080003000: page-table loop: level 2 table at {:#x} \
                 points back to the table at {:#x}",
                l2, l1
            )
        );
        // The top table pointing at itself.
        let mut pt = tables_for(&a);
        let pgd = pt.pgd;
        pt.set_raw(vm, 0, pgd.0 | 3);
        let e = a.walk(&pt.build(), VirtAddr(vm)).unwrap_err();
        assert_eq!(
            e,
            WalkError::Loop {
                va: VirtAddr(vm),
                level: 0,
                table: pgd,
                target: pgd
            }
        );
        let m: MemError = e.into();
        assert!(matches!(
            m,
            MemError::Translate {
                addr: VirtAddr(0xffff_8000_8000_3000),
                ..
            }
        ));
    }

    #[test]
    fn walk_64k_granule_52bit_pa() {
        // 64 KiB pages, 48-bit VA: 3 levels (L1 64 entries, L2/L3 8192).
        let t = vmcoreinfo_text(0).replace("PAGESIZE=4096", "PAGESIZE=65536");
        let a = Arm64::from_vmcoreinfo(&VmcoreInfo::parse(t.as_bytes()).unwrap()).unwrap();
        assert_eq!(a.levels(), 3);
        assert_eq!(a.layout().vmemmap_start, 0xffff_ffc0_0000_0000);
        let pgd = a.swapper_pg_dir().unwrap().0 - a.kimage_voffset();
        let va = 0xffff_8000_8123_4567u64;
        let (i1, i2, i3) = ((va >> 42) & 63, (va >> 29) & 8191, (va >> 16) & 8191);
        let (l2, l3) = (0x7000_0000u64, 0x7001_0000u64);
        let mut mem = FakeMem::default();
        mem.put(PhysAddr(pgd + i1 * 8), &(l2 | 3).to_le_bytes());
        mem.put(PhysAddr(l2 + i2 * 8), &(l3 | 3).to_le_bytes());
        // Output address 0x000a_0000_1230_0000 <- bits [47:16] + [15:12] = 0xa.
        mem.put(
            PhysAddr(l3 + i3 * 8),
            &(0x1230_0000u64 | 0xa000 | 0x703).to_le_bytes(),
        );
        let tr = a.walk(&mem, VirtAddr(va)).unwrap();
        assert_eq!(tr.phys, PhysAddr(0x000a_0000_1230_4567));
        assert_eq!(tr.size, 65536);
    }

    #[test]
    fn pac_and_plausibility() {
        let a = arm64(0x20_0000);
        // A signed kernel return address: PAC in bits [63:48] except bit 55.
        assert_eq!(
            a.strip_pac(0x3a8b_8000_0812_3456 | (1 << 55)),
            0xffff_8000_0812_3456
        );
        assert_eq!(a.strip_pac(0xffff_8000_0812_3456), 0xffff_8000_0812_3456);
        assert_eq!(a.strip_pac(0x0012_ffff_1234_5678), 0x0000_ffff_1234_5678);
        assert!(a.is_kernel_text(VirtAddr(0xffff_8000_0823_0000)));
        assert!(!a.is_kernel_text(VirtAddr(0xffff_8000_0800_0000)));
        let mut b = a.clone();
        b.set_kernel_bounds(KernelBounds {
            etext: Some(VirtAddr(0xffff_8000_0900_0000)),
            inittext: None,
            end: Some(VirtAddr(0xffff_8000_0a20_0000)),
        });
        assert!(!b.is_kernel_text(VirtAddr(0xffff_8000_0900_0000)));
        assert_eq!(
            b.region(VirtAddr(0xffff_8000_0a1f_fff0)),
            Region::KernelImage
        );
        assert!(b.is_kernel_stack_candidate(VirtAddr(0xffff_8000_0a1f_fff0)));
        assert!(!b.is_kernel_stack_candidate(VirtAddr(0xffff_8000_0a1f_fff8)));
        assert!(b.is_kernel_stack_candidate(VirtAddr(0xffff_8000_0c00_3e40)));
        assert!(b.is_kernel_stack_candidate(VirtAddr(0xffff_0000_c000_3e40)));
        assert!(!b.is_kernel_stack_candidate(VirtAddr(0x0000_ffff_c000_3e40)));
        assert!(b.is_module_addr(VirtAddr(0xffff_8000_0100_0000)));
        assert!(b.is_module_addr(VirtAddr(0xffff_8000_7000_0000)));
        assert!(!b.is_module_addr(VirtAddr(0xffff_8001_0000_0000)));
        assert!(!b.is_module_addr(VirtAddr(0xffff_8000_0900_0000)));
        assert!(b.is_kernel_code(VirtAddr(0xffff_8000_0100_0000)));
    }
}
