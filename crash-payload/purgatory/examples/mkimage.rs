//! Builds the inputs of `tests/purgatory/run.sh`: a fake kernel segment
//! (the fake kernel's code, then pseudo-random bytes up to the requested
//! size, like a 32 MiB Debian Image), an initrd, a DTB stand-in and the
//! purgatory with its parameter block filled exactly as kexec-rs fills it
//! (`purgatory::layout::fill`). Digests come from the `sha2` crate.
//!
//! ```text
//! mkimage PURGATORY_ELF FAKE_KERNEL_ELF OUT_DIR [--kernel-mib N] [--initrd-mib N]
//!         [--flags N] [--corrupt SEGMENT] [--uart ADDR] [--vhe]
//! ```
//!
//! `--vhe` starts the CPU at the fake kernel's VHE stub (offset 0x400), which
//! sets `HCR_EL2.{E2H,TGE}` and branches to the purgatory.
//!
//! Writes `OUT_DIR/{kernel,initrd,dtb,purgatory}.bin` and prints the QEMU
//! `-device loader` arguments (purgatory last, with `cpu-num=0` so the CPU
//! starts there) on stdout, one per line.
use purgatory::layout::{self, Params, SegmentDigest};
use sha2::{Digest, Sha256};
use std::process::ExitCode;

/// QEMU virt: RAM at 0x4000_0000; the kernel where `-kernel` would put it.
const KERNEL_AT: u64 = 0x4020_0000;
/// QEMU virt PL011.
const UART: u64 = 0x0900_0000;
/// Where the fake kernel's VHE stub (at +0x400) reads the purgatory address.
const VHE_SLOT: usize = 0x3f8;
/// The VHE stub.
const VHE_STUB: u64 = 0x400;

fn page_up(v: u64) -> u64 {
    (v + 4095) & !4095
}

fn fill_random(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for b in buf {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
}

fn num(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s}: {e}"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let (mut kernel_mib, mut initrd_mib, mut flags, mut corrupt, mut uart) =
        (32u64, 8u64, 0u64, None, UART);
    let mut vhe = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--vhe" {
            vhe = true;
            continue;
        }
        let mut val = || {
            it.next()
                .ok_or(format!("{a} needs a value"))
                .and_then(|v| num(v))
        };
        match a.as_str() {
            "--kernel-mib" => kernel_mib = val()?,
            "--initrd-mib" => initrd_mib = val()?,
            "--flags" => flags = val()?,
            "--corrupt" => corrupt = Some(val()? as usize),
            "--uart" => uart = val()?,
            _ => pos.push(a.clone()),
        }
    }
    let [purg, fake, out] = pos.as_slice() else {
        return Err("usage: mkimage PURGATORY_ELF FAKE_KERNEL_ELF OUT_DIR [--kernel-mib N] [--initrd-mib N] [--flags N] [--corrupt SEGMENT] [--uart ADDR]".into());
    };
    let elf = std::fs::read(purg).map_err(|e| format!("{purg}: {e}"))?;
    let (image, header) = purgatory::elf::image(&elf).map_err(|e| format!("{purg}: {e}"))?;
    let fake_elf = std::fs::read(fake).map_err(|e| format!("{fake}: {e}"))?;
    let fake_code = fake_kernel_code(&fake_elf).ok_or(format!("{fake}: no PT_LOAD"))?;

    let mut kernel = vec![0u8; (kernel_mib << 20).max(4096) as usize];
    fill_random(&mut kernel, 1);
    kernel[..fake_code.len()].copy_from_slice(fake_code);
    if fake_code.len() < VHE_STUB as usize + 4 {
        return Err(format!("{fake}: no VHE stub at {VHE_STUB:#x}"));
    }
    let mut initrd = vec![0u8; (initrd_mib << 20) as usize];
    fill_random(&mut initrd, 2);
    let mut dtb = vec![0u8; 4096];
    fill_random(&mut dtb, 3);
    dtb[..4].copy_from_slice(&0xd00d_feedu32.to_be_bytes());

    let initrd_at = page_up(KERNEL_AT + kernel.len() as u64);
    let dtb_at = page_up(initrd_at + initrd.len() as u64);
    let purg_at = page_up(dtb_at + dtb.len() as u64);
    kernel[VHE_SLOT..VHE_SLOT + 8].copy_from_slice(&purg_at.to_le_bytes());
    let mut segs = vec![
        ("kernel", KERNEL_AT, kernel),
        ("initrd", initrd_at, initrd),
        ("dtb", dtb_at, dtb),
    ];
    segs.retain(|s| !s.2.is_empty());
    let digests: Vec<SegmentDigest> = segs
        .iter()
        .map(|(_, at, b)| SegmentDigest {
            addr: *at,
            len: b.len() as u64,
            sha256: Sha256::digest(b).into(),
        })
        .collect();
    if let Some(i) = corrupt {
        let s = segs
            .get_mut(i)
            .ok_or(format!("--corrupt {i}: only {} segments", digests.len()))?;
        let off = s.2.len() / 2 + 13;
        s.2[off] ^= 0x01;
        eprintln!(
            "mkimage: flipped one bit of segment {i} ({}) at {:#x}",
            s.0,
            s.1 + off as u64
        );
    }
    let params =
        Params::new(KERNEL_AT, dtb_at, uart, flags, &digests).map_err(|e| e.to_string())?;
    let mut purg_bytes = image.to_vec();
    layout::fill(&mut purg_bytes, &params).map_err(|e| e.to_string())?;

    std::fs::create_dir_all(out).map_err(|e| format!("{out}: {e}"))?;
    let total: u64 = digests.iter().map(|d| d.len).sum();
    for (name, at, bytes) in &segs {
        let path = format!("{out}/{name}.bin");
        std::fs::write(&path, bytes).map_err(|e| format!("{path}: {e}"))?;
        println!("-device loader,file={path},addr={at:#x},force-raw=on");
    }
    let path = format!("{out}/purgatory.bin");
    std::fs::write(&path, &purg_bytes).map_err(|e| format!("{path}: {e}"))?;
    if vhe {
        println!("-device loader,file={path},addr={purg_at:#x},force-raw=on");
        println!("-device loader,addr={:#x},cpu-num=0", KERNEL_AT + VHE_STUB);
    } else {
        println!("-device loader,file={path},addr={purg_at:#x},cpu-num=0,force-raw=on");
    }
    eprintln!(
        "mkimage: {} segments, {total} bytes; purgatory at {purg_at:#x} ({} bytes, image_size {:#x}); kernel {KERNEL_AT:#x}, dtb {dtb_at:#x}",
        digests.len(),
        purg_bytes.len(),
        header.image_size
    );
    Ok(())
}

/// The file bytes of the fake kernel's first `PT_LOAD` (linked at 0).
fn fake_kernel_code(elf: &[u8]) -> Option<&[u8]> {
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
    };
    let phoff = u64_at(32)? as usize;
    let phnum = u16::from_le_bytes(elf.get(56..58)?.try_into().ok()?) as usize;
    (0..phnum).find_map(|i| {
        let ph = phoff + i * 56;
        if elf.get(ph..ph + 4)? != 1u32.to_le_bytes() {
            return None;
        }
        let (off, filesz) = (u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize);
        elf.get(off..off + filesz)
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkimage: {e}");
            ExitCode::FAILURE
        }
    }
}
