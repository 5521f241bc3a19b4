//! How Linux is found, placed and described: the arm64 `Image` header
//! (`Documentation/arm64/booting.rst`), the placement plan in Normal-world
//! RAM, the QEMU `fw_cfg` items the kernel, initrd and command line come from
//! (`docs/specs/fw_cfg.txt`), and the DTB edits Linux needs.
//!
//! Normal-world RAM layout the firmware uses (QEMU virt, RAM at 0x4000_0000):
//!
//! | address                | what |
//! |------------------------|------|
//! | `ram + 0`              | the DTB: QEMU writes its own here (with `-bios`), the firmware rewrites it in place (≤ 1 MiB) |
//! | `ram + 0x1f_0000`      | 64 KiB scratch for `fw_cfg` DMA (descriptor, sizes, command line) |
//! | `ram + 2 MiB + text_offset` | the kernel `Image` (`-kernel`) |
//! | after the kernel's `image_size`, 2 MiB aligned | the initrd (`-initrd`) |
#![forbid(unsafe_code)]

use crate::fdt::Prop;
use core::fmt;

/// `Image` header magic at offset 0x38: `"ARM\x64"`.
pub const IMAGE_MAGIC: u32 = 0x644d_5241;
/// Bytes of the `Image` header the firmware reads.
pub const IMAGE_HEADER_SIZE: usize = 64;
/// Where the DTB sits, from the start of RAM.
pub const DTB_OFFSET: u64 = 0;
/// Room the rewritten DTB may use.
pub const DTB_MAX: u64 = 0x10_0000;
/// `fw_cfg` DMA scratch, from the start of RAM.
pub const SCRATCH_OFFSET: u64 = 0x1f_0000;
/// Size of the scratch area.
pub const SCRATCH_SIZE: u64 = 0x1_0000;
const MIB2: u64 = 0x20_0000;

/// Why Linux cannot be booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// No kernel in fw_cfg (QEMU started without `-kernel`).
    NoKernel,
    /// The kernel does not carry the arm64 `Image` magic at 0x38.
    NotAnImage {
        /// The word found at 0x38.
        magic: u32,
    },
    /// The kernel is big-endian (`flags` bit 0).
    BigEndian,
    /// Kernel plus initrd do not fit in RAM.
    DoesNotFit {
        /// End address the plan needs.
        needed_end: u64,
        /// End of RAM.
        ram_end: u64,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoKernel => f.write_str("no kernel in fw_cfg: start QEMU with -kernel Image"),
            Self::NotAnImage { magic } => write!(
                f,
                "kernel is not an arm64 Image (magic {magic:#010x} at 0x38)"
            ),
            Self::BigEndian => f.write_str("kernel is a big-endian Image"),
            Self::DoesNotFit {
                needed_end,
                ram_end,
            } => {
                write!(
                    f,
                    "kernel and initrd need RAM up to {needed_end:#x}, RAM ends at {ram_end:#x}"
                )
            }
        }
    }
}

/// The fields of the arm64 `Image` header the loader needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// `text_offset`: the Image goes this far past a 2 MiB boundary.
    pub text_offset: u64,
    /// `image_size`: memory the kernel uses from its start, bss included.
    pub image_size: u64,
    /// `flags`.
    pub flags: u64,
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

impl ImageHeader {
    /// Parses the first 64 bytes of an `Image`.
    pub fn parse(b: &[u8]) -> Result<Self, BootError> {
        let magic = b
            .get(0x38..0x3c)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .unwrap_or(0);
        if magic != IMAGE_MAGIC {
            return Err(BootError::NotAnImage { magic });
        }
        let mut h = Self {
            text_offset: le64(b, 8),
            image_size: le64(b, 16),
            flags: le64(b, 24),
        };
        if h.flags & 1 != 0 {
            return Err(BootError::BigEndian);
        }
        // Before Linux 3.17 image_size was zero and text_offset 0x80000 implied.
        if h.image_size == 0 {
            h.text_offset = 0x8_0000;
        }
        Ok(h)
    }
}

/// Where everything goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootPlan {
    /// The DTB's address (`x0` at entry).
    pub dtb: u64,
    /// `fw_cfg` scratch.
    pub scratch: u64,
    /// Kernel load (and entry) address.
    pub kernel: u64,
    /// First byte past the kernel's memory.
    pub kernel_end: u64,
    /// `[start, end)` of the initrd, when there is one.
    pub initrd: Option<(u64, u64)>,
}

/// Places the kernel at `ram + 2 MiB + text_offset` and the initrd at the
/// next 2 MiB boundary past the kernel's `image_size` (or file size, if larger).
pub fn plan(
    ram_base: u64,
    ram_size: u64,
    hdr: &ImageHeader,
    kernel_size: u64,
    initrd_size: u64,
) -> Result<BootPlan, BootError> {
    // Checked arithmetic throughout: the header comes from the Image file,
    // and a wrapped address would plan the kernel outside RAM.
    let overflow = BootError::DoesNotFit {
        needed_end: u64::MAX,
        ram_end: ram_base.saturating_add(ram_size),
    };
    let ram_end = ram_base.checked_add(ram_size).ok_or(overflow)?;
    let kernel = ram_base
        .checked_add(MIB2)
        .and_then(|k| k.checked_add(hdr.text_offset))
        .ok_or(overflow)?;
    let kernel_end = kernel
        .checked_add(hdr.image_size.max(kernel_size))
        .ok_or(overflow)?;
    let mut end = kernel_end;
    let initrd = if initrd_size > 0 {
        let start = kernel_end.checked_add(MIB2 - 1).ok_or(overflow)? & !(MIB2 - 1);
        end = start.checked_add(initrd_size).ok_or(overflow)?;
        Some((start, end))
    } else {
        None
    };
    if end > ram_end {
        return Err(BootError::DoesNotFit {
            needed_end: end,
            ram_end,
        });
    }
    let dtb = ram_base.checked_add(DTB_OFFSET).ok_or(overflow)?;
    let scratch = ram_base.checked_add(SCRATCH_OFFSET).ok_or(overflow)?;
    Ok(BootPlan {
        dtb,
        scratch,
        kernel,
        kernel_end,
        initrd,
    })
}

/// The first RAM range of a DTB: `reg` of the first `/memory@*` node, read
/// with two address and two size cells (QEMU virt's root `#address-cells` and
/// `#size-cells`). Nodes whose `status` is not `"okay"` (QEMU's
/// `/secram@...`, not under `/memory`) are not considered.
pub fn ram_from_dtb(dtb: &[u8]) -> Result<Option<(u64, u64)>, crate::fdt::FdtError> {
    let mut found = None;
    crate::fdt::for_each_prop(dtb, |path, name, value| {
        if found.is_none()
            && name == b"reg"
            && path.starts_with(b"/memory")
            && !path[1..].contains(&b'/')
            && value.len() >= 16
        {
            let be = |o: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&value[o..o + 8]);
                u64::from_be_bytes(a)
            };
            found = Some((be(0), be(8)));
        }
    })?;
    Ok(found)
}

/// Nodes the firmware makes sure exist (parents first).
pub const LINUX_DTB_NODES: [&str; 3] = ["/psci", "/firmware", "/firmware/sdei"];

/// Values the DTB edits point at; kept alive while [`linux_dtb_props`]'s
/// result is used.
#[derive(Clone, Copy, Debug, Default)]
pub struct DtbValues {
    initrd_start: [u8; 8],
    initrd_end: [u8; 8],
}

/// The properties Linux needs from this firmware: PSCI 1.0+ over SMC, SDEI
/// over SMC, `enable-method = "psci"` on every CPU, and `/chosen` for the
/// command line (NUL-terminated, if any) and the initrd (if any).
pub fn linux_dtb_props<'a>(
    vals: &'a mut DtbValues,
    bootargs: Option<&'a [u8]>,
    initrd: Option<(u64, u64)>,
    out: &mut [Prop<'a>; 9],
) -> usize {
    let mut n = 0;
    let mut push = |p: Prop<'a>| {
        out[n] = p;
        n += 1;
    };
    push(Prop {
        node: "/psci",
        name: "compatible",
        value: b"arm,psci-1.0\0arm,psci-0.2\0",
    });
    push(Prop {
        node: "/psci",
        name: "method",
        value: b"smc\0",
    });
    push(Prop {
        node: "/firmware/sdei",
        name: "compatible",
        value: b"arm,sdei-1.0\0",
    });
    push(Prop {
        node: "/firmware/sdei",
        name: "method",
        value: b"smc\0",
    });
    push(Prop {
        node: "/cpus/cpu@*",
        name: "enable-method",
        value: b"psci\0",
    });
    if let Some(b) = bootargs {
        push(Prop {
            node: "/chosen",
            name: "bootargs",
            value: b,
        });
    }
    if let Some((s, e)) = initrd {
        vals.initrd_start = s.to_be_bytes();
        vals.initrd_end = e.to_be_bytes();
        let v: &'a DtbValues = vals;
        push(Prop {
            node: "/chosen",
            name: "linux,initrd-start",
            value: &v.initrd_start,
        });
        push(Prop {
            node: "/chosen",
            name: "linux,initrd-end",
            value: &v.initrd_end,
        });
    }
    n
}

/// QEMU `fw_cfg` (MMIO on arm virt): selector keys and the DMA interface.
pub mod fw_cfg {
    /// `"QEMU"`.
    pub const FW_CFG_SIGNATURE: u16 = 0x00;
    /// Feature bits; bit 1: DMA interface.
    pub const FW_CFG_ID: u16 = 0x01;
    /// Kernel size (u32, little-endian).
    pub const FW_CFG_KERNEL_SIZE: u16 = 0x08;
    /// Initrd size (u32, little-endian).
    pub const FW_CFG_INITRD_SIZE: u16 = 0x0b;
    /// Kernel bytes.
    pub const FW_CFG_KERNEL_DATA: u16 = 0x11;
    /// Initrd bytes.
    pub const FW_CFG_INITRD_DATA: u16 = 0x12;
    /// Command line size including its NUL (u32, little-endian).
    pub const FW_CFG_CMDLINE_SIZE: u16 = 0x14;
    /// Command line bytes.
    pub const FW_CFG_CMDLINE_DATA: u16 = 0x15;
    /// `FW_CFG_ID` bit: the DMA interface exists.
    pub const FW_CFG_VERSION_DMA: u32 = 2;

    /// DMA control: an error occurred (set by QEMU).
    pub const FW_CFG_DMA_CTL_ERROR: u32 = 0x01;
    /// DMA control: read.
    pub const FW_CFG_DMA_CTL_READ: u32 = 0x02;
    /// DMA control: select the item in bits 31:16 first.
    pub const FW_CFG_DMA_CTL_SELECT: u32 = 0x08;

    /// Register offsets on the MMIO window (`hw/nvram/fw_cfg.c`, arm virt at 0x0902_0000).
    pub const FW_CFG_DATA: u64 = 0x0;
    /// Selector (16-bit, big-endian).
    pub const FW_CFG_SELECTOR: u64 = 0x8;
    /// DMA address (64-bit, big-endian); writing it runs the transfer.
    pub const FW_CFG_DMA_ADDR: u64 = 0x10;

    /// A `FWCfgDmaAccess` descriptor, big-endian in memory: control, length, address.
    pub fn dma_read_descriptor(key: u16, len: u32, addr: u64) -> [u8; 16] {
        let mut d = [0u8; 16];
        let control = (u32::from(key) << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ;
        d[0..4].copy_from_slice(&control.to_be_bytes());
        d[4..8].copy_from_slice(&len.to_be_bytes());
        d[8..16].copy_from_slice(&addr.to_be_bytes());
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64, flags: u64) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[0x38..0x3c].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn parses_debian_like_header() {
        let h = ImageHeader::parse(&header(0, 0x2c9_0000, 0xa)).unwrap();
        assert_eq!(
            h,
            ImageHeader {
                text_offset: 0,
                image_size: 0x2c9_0000,
                flags: 0xa
            }
        );
        let mut bad = header(0, 1, 0);
        bad[0x38] = b'X';
        assert_eq!(
            ImageHeader::parse(&bad),
            Err(BootError::NotAnImage { magic: 0x644d_5258 })
        );
        assert_eq!(
            ImageHeader::parse(&header(0, 1, 1)),
            Err(BootError::BigEndian)
        );
        assert_eq!(
            ImageHeader::parse(&header(0, 0, 0)).unwrap().text_offset,
            0x8_0000
        );
    }

    #[test]
    fn plan_places_kernel_and_initrd() {
        let h = ImageHeader {
            text_offset: 0,
            image_size: 0x2c9_0000,
            flags: 0xa,
        };
        let p = plan(0x4000_0000, 0x8000_0000, &h, 0x1f6_e000, 0x80_1234).unwrap();
        assert_eq!(p.dtb, 0x4000_0000);
        assert_eq!(p.kernel, 0x4020_0000);
        assert_eq!(p.kernel_end, 0x42e9_0000);
        assert_eq!(p.initrd, Some((0x4300_0000, 0x4380_1234)));
        assert!(p.scratch + SCRATCH_SIZE <= p.kernel && p.dtb + DTB_MAX <= p.scratch);
        let none = plan(0x4000_0000, 0x8000_0000, &h, 0x1f6_e000, 0).unwrap();
        assert_eq!(none.initrd, None);
        assert_eq!(
            plan(0x4000_0000, 0x300_0000, &h, 0x1f6_e000, 0x100_0000),
            Err(BootError::DoesNotFit {
                needed_end: 0x4400_0000,
                ram_end: 0x4300_0000
            })
        );
    }

    #[test]
    fn dtb_props_and_fw_cfg_descriptor() {
        let mut vals = DtbValues::default();
        let mut out = [Prop {
            node: "",
            name: "",
            value: b"",
        }; 9];
        let n = linux_dtb_props(
            &mut vals,
            Some(b"console=ttyAMA0\0"),
            Some((0x4300_0000, 0x4380_0000)),
            &mut out,
        );
        assert_eq!(n, 8);
        assert_eq!(out[6].value, &0x4300_0000u64.to_be_bytes());
        assert_eq!(out[7].name, "linux,initrd-end");
        let mut vals = DtbValues::default();
        assert_eq!(linux_dtb_props(&mut vals, None, None, &mut out), 5);
        assert_eq!(
            fw_cfg::dma_read_descriptor(fw_cfg::FW_CFG_KERNEL_DATA, 0x100, 0x4020_0000),
            [0, 0x11, 0, 0x0a, 0, 0, 1, 0, 0, 0, 0, 0, 0x40, 0x20, 0, 0]
        );
    }
}
