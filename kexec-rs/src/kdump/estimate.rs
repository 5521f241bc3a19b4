//! How much memory the crash kernel needs (`crashkernel=`).
//!
//! Sum of, each in MiB-rounded bytes:
//! - the kernel: the Image header's `image_size` (text, data and bss);
//! - the initramfs, compressed (the loaded segment, freed after unpacking)
//!   and unpacked (rootfs stays in memory);
//! - modules as loaded (their file sizes: an upper bound on their cores);
//! - the capture kernel's own runtime: [`RUNTIME_BASE`];
//! - `vmcore save`'s working memory: two page bitmaps (RAM / page size /
//!   8 bytes each) and [`SAVE_PER_JOB`] per compression job plus
//!   [`SAVE_FIXED`];
//!
//! then the memmap of the reservation itself (64 bytes of `struct page` per
//! 4 KiB page: total × 64/63), rounded up to [`ROUND`].

use serde::Serialize;

/// The capture kernel's runtime beyond its image: slab, page tables,
/// per-CPU areas for one CPU, kernel stacks, driver buffers, the save
/// target's page cache under writeback.
pub const RUNTIME_BASE: u64 = 48 << 20;
/// `vmcore save` working memory per compression job (input and output
/// chunks, compressor state).
pub const SAVE_PER_JOB: u64 = 16 << 20;
/// `vmcore save` fixed working memory (its own heap, the ELF headers,
/// VMCOREINFO and symbol tables, page-flag reads).
pub const SAVE_FIXED: u64 = 16 << 20;
/// `crashkernel=` granularity.
pub const ROUND: u64 = 16 << 20;

/// What the estimate is computed from.
#[derive(Debug, Clone, Serialize)]
pub struct EstimateInputs {
    /// The kernel Image header's `image_size` (or the file length).
    pub kernel_image_size: u64,
    /// The initramfs as loaded.
    pub initrd_compressed: u64,
    /// The initramfs unpacked.
    pub initrd_unpacked: u64,
    /// True when `initrd_unpacked` was measured, false when assumed.
    pub initrd_unpacked_measured: bool,
    /// Sum of module file sizes.
    pub modules: u64,
    /// System RAM of the running kernel (the dump's size).
    pub ram: u64,
    /// The running kernel's page size.
    pub page_size: u64,
    /// Compression jobs the capture kernel runs (its CPU count).
    pub jobs: u64,
}

/// One line of the breakdown.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// What.
    pub what: &'static str,
    /// Bytes.
    pub bytes: u64,
    /// How it was found.
    pub note: String,
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// The breakdown.
    pub items: Vec<Item>,
    /// Total bytes (after the memmap share, before rounding).
    pub total: u64,
    /// Rounded up to [`ROUND`].
    pub rounded: u64,
    /// `crashkernel=<n>M`.
    pub crashkernel: String,
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
}

/// Computes the estimate (saturating: inputs come from files).
pub fn estimate(i: &EstimateInputs) -> Estimate {
    let page = i.page_size.max(4096);
    let bitmap = i.ram / page / 8;
    let save = bitmap
        .saturating_mul(2)
        .saturating_add(SAVE_PER_JOB.saturating_mul(i.jobs.max(1)))
        .saturating_add(SAVE_FIXED);
    let mut items = vec![
        Item {
            what: "kernel",
            bytes: i.kernel_image_size,
            note: "Image header image_size (text+data+bss)".into(),
        },
        Item {
            what: "initramfs (compressed)",
            bytes: i.initrd_compressed,
            note: "the loaded segment".into(),
        },
        Item {
            what: "initramfs (unpacked)",
            bytes: i.initrd_unpacked,
            note: if i.initrd_unpacked_measured {
                "measured".into()
            } else {
                "assumed 4 x compressed (format not decoded)".into()
            },
        },
        Item {
            what: "modules",
            bytes: i.modules,
            note: "sum of .ko sizes".into(),
        },
        Item {
            what: "kernel runtime",
            bytes: RUNTIME_BASE,
            note: "slab, page tables, stacks, drivers, page cache (fixed)".into(),
        },
        Item {
            what: "vmcore save",
            bytes: save,
            note: format!(
                "2 bitmaps of {} ({} RAM / {page} / 8) + {} x {} job(s) + {}",
                mib(bitmap),
                mib(i.ram),
                mib(SAVE_PER_JOB),
                i.jobs.max(1),
                mib(SAVE_FIXED)
            ),
        },
    ];
    let sum = items.iter().fold(0u64, |a, it| a.saturating_add(it.bytes));
    let total = sum.saturating_mul(64) / 63;
    items.push(Item {
        what: "memmap",
        bytes: total - sum,
        note: "struct page for the reservation (1/64)".into(),
    });
    let rounded = total.div_ceil(ROUND).saturating_mul(ROUND);
    Estimate {
        items,
        total,
        rounded,
        crashkernel: format!("crashkernel={}M", rounded >> 20),
    }
}

/// The breakdown as text.
pub fn render(e: &Estimate) -> String {
    let mut s = String::new();
    for it in &e.items {
        s.push_str(&format!(
            "{:<24} {:>11}  {}\n",
            it.what,
            mib(it.bytes),
            it.note
        ));
    }
    s.push_str(&format!(
        "{:<24} {:>11}\n{}\n",
        "total",
        mib(e.total),
        e.crashkernel
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_drill_fits_256m() {
        // Debian 6.1.0-56-arm64: image_size 33619968; a 2 GiB guest; one job.
        let e = estimate(&EstimateInputs {
            kernel_image_size: 33_619_968,
            initrd_compressed: 3 << 20,
            initrd_unpacked: 8 << 20,
            initrd_unpacked_measured: true,
            modules: 1 << 20,
            ram: 2 << 30,
            page_size: 4096,
            jobs: 1,
        });
        let sum: u64 = e.items.iter().map(|i| i.bytes).sum();
        assert_eq!(sum, e.total);
        assert_eq!(e.items[5].bytes, 2 * (64 << 10) + (32 << 20));
        assert!(e.rounded <= 256 << 20 && e.rounded >= e.total && e.rounded.is_multiple_of(ROUND));
        assert_eq!(e.crashkernel, "crashkernel=128M");
    }
}
