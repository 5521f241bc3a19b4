//! Targets for `kexec-rs`: `/proc/iomem`, the DTB parser/writer and the
//! `/chosen` editor, kernel image probing (Image, gzip, zboot, UKI, ELF
//! vmlinux), the sysfs and `/proc/kcore` parsers, and command lines. Each
//! `fn` takes the fuzz bytes; each `seeds_*` gives valid inputs.

use std::io::Write as _;

use crash_payload::elfcorehdr::{write_headers, ProgramHeader};
use crash_payload::{PhysAddr, VirtAddr};
use kexec_rs::fdt::{decode_cells, str_value, Fdt};
use kexec_rs::iomem::{subtract, Iomem, PhysRange};
use kexec_rs::plan::{edit_dtb, ChosenEdits, Seeds, RNG_SEED_SIZE};
use kexec_rs::{cmdline, image, sysfs};

use crate::input::{Input, Writer};

/// `/proc/iomem` text: parse, query, subtract the crash kernel from RAM
/// (the result must lie in RAM and miss the crash kernel).
pub fn iomem(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Iomem::parse(text) else { return };
    let ram = m.system_ram();
    let crash = m.crash_kernel();
    let _ = (m.kernel_code(), m.kernel_data(), m.named("reserved"));
    for r in m.entries.iter().take(64) {
        let _ = (r.range.size(), r.range.end());
    }
    let left = subtract(&ram, &crash);
    for l in &left {
        assert!(ram.iter().any(|r| r.contains_range(l)), "{l:?} not in RAM");
        assert!(
            !crash.iter().any(|c| c.overlaps(l)),
            "{l:?} overlaps the crash kernel"
        );
    }
}

/// Seeds: a QEMU virt guest's map with a crash kernel.
pub fn seeds_iomem() -> Vec<Vec<u8>> {
    vec![b"# made by hand after a QEMU virt guest\n\
           09000000-09000fff : pl011@9000000\n\
           40000000-bfffffff : System RAM\n\
           \x20 40210000-4186ffff : Kernel code\n\
           \x20 41870000-41c9ffff : reserved\n\
           \x20 41ca0000-4205ffff : Kernel data\n\
           \x20 a0000000-afffffff : Crash kernel\n\
           \x20 bfe00000-bfffffff : reserved\n\
           4010000000-401fffffff : PCI ECAM\n"
        .to_vec()]
}

/// A DTB: parse, write, parse again — the second parse equals the first and
/// writing is idempotent.
pub fn fdt(data: &[u8]) {
    let Ok(f) = Fdt::parse(data) else { return };
    let _ = f.root_cells();
    if let Some(m) = f.node("/memory") {
        let _ = m.prop("reg").map(decode_cells);
    }
    let _ = f.node("/chosen").and_then(|c| c.prop_str("bootargs"));
    let _ = f.node("/cpus").and_then(|c| c.prop_u32("#address-cells"));
    let out = f.to_bytes();
    let again = Fdt::parse(&out).expect("own output parses");
    assert_eq!(again, f);
    assert_eq!(again.to_bytes(), out);
}

/// A QEMU-virt-shaped DTB.
pub fn sample_dtb() -> Vec<u8> {
    let mut f = Fdt {
        boot_cpuid_phys: 0,
        reserve: vec![(0x4800_0000, 0x1000)],
        ..Fdt::default()
    };
    let root = f.node_mut_or_create("/");
    root.set_prop("#address-cells", 2u32.to_be_bytes().to_vec());
    root.set_prop("#size-cells", 2u32.to_be_bytes().to_vec());
    root.set_prop("compatible", str_value("linux,dummy-virt"));
    let mut reg = 0x4000_0000u64.to_be_bytes().to_vec();
    reg.extend(0x8000_0000u64.to_be_bytes());
    f.node_mut_or_create("/memory@40000000")
        .set_prop("reg", reg);
    f.node_mut_or_create("/memory@40000000")
        .set_prop("device_type", str_value("memory"));
    for c in 0..2u32 {
        let n = f.node_mut_or_create(&format!("/cpus/cpu@{c}"));
        n.set_prop("reg", c.to_be_bytes().to_vec());
        n.set_prop("compatible", str_value("arm,cortex-a57"));
    }
    f.node_mut_or_create("/chosen")
        .set_prop("bootargs", str_value("console=ttyAMA0 crashkernel=256M"));
    f.node_mut_or_create("/chosen")
        .set_prop("kaslr-seed", vec![0; 8]);
    f.to_bytes()
}

/// Seeds: the sample DTB.
pub fn seeds_fdt() -> Vec<Vec<u8>> {
    vec![sample_dtb()]
}

/// The `/chosen` editor on a fuzz DTB with fixed edits: an edited DTB must
/// parse and carry the new `/chosen`.
pub fn dtb_edit(data: &[u8]) {
    let e = ChosenEdits {
        bootargs: "console=ttyAMA0 maxcpus=1 reset_devices".into(),
        initrd: Some((PhysAddr(0xa800_0000), 0x10_0000)),
        elfcorehdr: PhysRange::from_start_size(PhysAddr(0xaff0_0000), 0x1_0000),
        usable: PhysRange::from_start_size(PhysAddr(0xa000_0000), 0x1000_0000)
            .into_iter()
            .collect(),
        seeds: Seeds {
            kaslr: 0x1234_5678_9abc_def0,
            rng: [7; RNG_SEED_SIZE],
        },
    };
    let Ok(out) = edit_dtb(data, &e) else { return };
    let f = Fdt::parse(&out).expect("edited DTB parses");
    let chosen = f.node("/chosen").expect("/chosen exists");
    assert_eq!(chosen.prop_str("bootargs"), Some(e.bootargs.as_str()));
    assert!(chosen.prop("linux,elfcorehdr").is_some());
}

/// An arm64 `Image` header on `len` bytes.
pub fn arm64_image(len: usize, text_offset: u64, image_size: u64, flags: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    v[0..4].copy_from_slice(b"MZ@\xfa");
    v[8..16].copy_from_slice(&text_offset.to_le_bytes());
    v[16..24].copy_from_slice(&image_size.to_le_bytes());
    v[24..32].copy_from_slice(&flags.to_le_bytes());
    v[32..56].fill(0);
    v[0x38..0x3c].copy_from_slice(image::ARM64_MAGIC);
    v[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn zboot(comp: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 0x100];
    v[0..2].copy_from_slice(b"MZ");
    v[4..8].copy_from_slice(b"zimg");
    v[8..12].copy_from_slice(&0x100u32.to_le_bytes());
    v[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    v[24..24 + comp.len()].copy_from_slice(comp.as_bytes());
    v.extend_from_slice(payload);
    v.extend_from_slice(&0x1000u32.to_le_bytes());
    v
}

fn pe(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let pe = 0x80usize;
    let table = pe + 24;
    let mut data_off = (table + 40 * sections.len() + 0x1ff) & !0x1ff;
    let mut v = vec![0u8; data_off];
    v[0..2].copy_from_slice(b"MZ");
    v[0x3c..0x40].copy_from_slice(&(pe as u32).to_le_bytes());
    v[pe..pe + 4].copy_from_slice(b"PE\0\0");
    v[pe + 4..pe + 6].copy_from_slice(&0xaa64u16.to_le_bytes());
    v[pe + 6..pe + 8].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    for (i, (name, data)) in sections.iter().enumerate() {
        let s = table + 40 * i;
        v[s..s + name.len()].copy_from_slice(name.as_bytes());
        v[s + 8..s + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        let raw = (data.len() + 0x1ff) & !0x1ff;
        v[s + 16..s + 20].copy_from_slice(&(raw as u32).to_le_bytes());
        v[s + 20..s + 24].copy_from_slice(&(data_off as u32).to_le_bytes());
        data_off += raw;
    }
    for (_, data) in sections {
        v.extend_from_slice(data);
        v.resize((v.len() + 0x1ff) & !0x1ff, 0);
    }
    v
}

fn vmlinux(img: &[u8], split: usize) -> Vec<u8> {
    let base = 0xffff_8000_0800_0000u64;
    let mut a = ProgramHeader::load(PhysAddr(base), VirtAddr(base), split as u64);
    a.p_offset = 0x1000;
    let mut b = ProgramHeader::load(
        PhysAddr(base + split as u64),
        VirtAddr(base + split as u64),
        (img.len() - split) as u64,
    );
    b.p_offset = 0x1000 + split as u64 + 0x1000;
    let mut v = vec![0u8; 0x1000];
    let _ = write_headers(&mut v, 183, &[a, b]);
    v[16] = 2; // ET_EXEC
    v.extend_from_slice(&img[..split]);
    v.extend_from_slice(&[0xeeu8; 0x1000]);
    v.extend_from_slice(&img[split..]);
    v
}

/// A kernel file: probe it down to an `Image` (the result must carry the
/// arm64 magic), and run the container parsers on it directly.
pub fn image(data: &[u8]) {
    if let Ok(k) = image::probe("fuzz", data) {
        assert_eq!(k.containers.last(), Some(&image::Container::Image));
        assert_eq!(image::parse_arm64_header("fuzz", &k.raw), Ok(k.header));
        let _ = k.header.effective_size(k.raw.len() as u64);
    }
    let _ = image::parse_arm64_header("fuzz", data);
    let _ = image::pe_sections("fuzz", data);
    let _ = image::flatten_elf("fuzz", data);
}

/// Seeds: an Image, Image.gz, zboot (gzip and zstd), a UKI and a vmlinux.
pub fn seeds_image() -> Vec<Vec<u8>> {
    let img = arm64_image(0x2000, 0, 0x4000, 0xa);
    let zstd =
        ruzstd::encoding::compress_to_vec(&img[..], ruzstd::encoding::CompressionLevel::Fastest);
    vec![
        img.clone(),
        arm64_image(0x100, 0x8_0000, 0, 0),
        gzip(&img),
        zboot("gzip", &gzip(&img)),
        zboot("zstd", &zstd),
        pe(&[
            (".linux", &img),
            (".initrd", b"initrd bytes"),
            (".cmdline", b"console=ttyAMA0\0"),
        ]),
        vmlinux(&img, 0x800),
    ]
}

/// The sysfs and `/proc/kcore` parsers on the same bytes.
pub fn sysfs(data: &[u8]) {
    let _ = sysfs::kcore_vmcoreinfo(data);
    let text = String::from_utf8_lossy(data);
    if let Ok(cpus) = sysfs::parse_cpu_list("fuzz", &text) {
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }
    let _ = sysfs::parse_crash_notes("fuzz", &text);
    let _ = sysfs::parse_decimal("fuzz", &text);
    let _ = sysfs::parse_vmcoreinfo_location(&text);
    if let Ok(l) = sysfs::KernelLayout::from_vmcoreinfo(&text) {
        let _ = l.page_offset();
        for pa in [0, 0x4000_0000, l.phys_offset, u64::MAX] {
            let _ = l.phys_to_linear(PhysAddr(pa));
            let _ = l.phys_to_kimage(PhysAddr(pa));
        }
    }
}

/// A `/proc/kcore` head with a VMCOREINFO note.
pub fn kcore_head(vmcoreinfo: &[u8]) -> Vec<u8> {
    let mut note = vec![0u8; crash_payload::note::note_size(10, vmcoreinfo.len())];
    let n = crash_payload::note::write_note(&mut note, b"VMCOREINFO", 0, vmcoreinfo).unwrap_or(0);
    note.truncate(n);
    let mut v = vec![0u8; 64 + 56];
    let _ = write_headers(
        &mut v,
        183,
        &[ProgramHeader::note(PhysAddr(120), note.len() as u64)],
    );
    v.extend(note);
    v
}

/// Seeds: each file's usual text, and a kcore head.
pub fn seeds_sysfs() -> Vec<Vec<u8>> {
    let vi = b"OSRELEASE=6.1.0\nPAGESIZE=4096\nNUMBER(VA_BITS)=48\n\
               NUMBER(kimage_voffset)=0xffff7fffc7e00000\nNUMBER(PHYS_OFFSET)=0x40000000\n\
               SYMBOL(_stext)=ffff800008010000\n";
    vec![
        b"0-3,5,7-8\n".to_vec(),
        b"bfe3d000\n".to_vec(),
        b"424\n".to_vec(),
        b"0x00000000bfe3f000 1024\n".to_vec(),
        vi.to_vec(),
        kcore_head(vi),
    ]
}

/// Command lines: split, reuse (no `BOOT_IMAGE=` and, for a crash kernel,
/// no `crashkernel=` may survive), and append.
pub fn cmdline(data: &[u8]) {
    let mut inp = Input::new(data);
    let crash = inp.u8() & 1 == 1;
    let line = String::from_utf8_lossy(inp.chunk()).into_owned();
    let append = String::from_utf8_lossy(inp.rest()).into_owned();
    let params = cmdline::split_params(&line);
    for p in &params {
        assert!(!p.is_empty());
    }
    let reused = cmdline::reuse(&line, crash);
    for p in cmdline::split_params(&reused) {
        assert!(!p.starts_with("BOOT_IMAGE="), "{line:?} -> {reused:?}");
        assert!(
            !(crash && p.starts_with("crashkernel=")),
            "{line:?} -> {reused:?}"
        );
    }
    let _ = cmdline::build(Some(&reused), Some(&append));
}

/// Seeds: a Debian command line.
pub fn seeds_cmdline() -> Vec<Vec<u8>> {
    let mut w = Writer::default();
    w.u8(1)
        .chunk(b"BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-arm64 root=UUID=1234 ro quiet crashkernel=256M foo=\"a b\"\n")
        .bytes(b"maxcpus=1 reset_devices");
    vec![w.finish()]
}

/// `kdump.toml` text: parse; a config that parses yields a command line
/// and, re-serialized, parses again to the same config.
pub fn kdump_config(data: &[u8]) {
    use kexec_rs::kdump::config::Config;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Config::parse("fuzz.toml", text) {
        let _ = c.crash_cmdline("console=ttyAMA0 root=/dev/vda");
        let _ = (c.sdei(), c.target());
    }
}

pub fn seeds_kdump_config() -> Vec<Vec<u8>> {
    vec![
        include_bytes!("../../kexec-rs/etc/kdump.toml").to_vec(),
        b"[save]\ndevice = \"/dev/vda\"\nfstype = \"ext4\"\ndump_levels = [1, 31]\n".to_vec(),
        b"[kernel]\ncmdlin = 1\n".to_vec(),
    ]
}

/// ELF files as the capture-initramfs builder reads them: the static
/// check, `.modinfo` `depends=`, a cpio of whatever passes, and
/// `modules.dep`/`modules.order` indexes.
pub fn kdump_elf(data: &[u8]) {
    use kexec_rs::kdump::{cpio::CpioWriter, elf, modules};
    use kexec_rs::source::RecordingSource;
    let mut inp = Input::new(data);
    let index = inp.chunk().to_vec();
    let ko = inp.rest();
    let _ = elf::machine("f", ko);
    let _ = elf::has_interp("f", ko);
    if let Ok(deps) = elf::modinfo_depends("f.ko", ko) {
        for d in &deps {
            assert!(!d.is_empty() && !d.contains(','));
        }
    }
    let mut w = CpioWriter::new();
    let _ = w.file("a", 0o644, ko);
    assert_eq!(w.finish().len() % 4, 0);
    let src = RecordingSource::default()
        .with_file("/m/modules.dep", index.clone())
        .with_file("/m/modules.order", index)
        .with_file("/m/kernel/a.ko", ko.to_vec());
    if let Ok(ix) = modules::Index::read(&src, "/m") {
        let _ = ix.resolve(&src, &["a".to_string()]);
    }
}

pub fn seeds_kdump_elf() -> Vec<Vec<u8>> {
    // A minimal ELF64 LE module with a .modinfo (the builder in
    // kexec-rs's elf tests, written out by hand here).
    let modinfo = b"license=GPL\0depends=b\0";
    let shstr = b"\0.shstrtab\0.modinfo\0";
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    let str_off = b.len();
    b.extend_from_slice(shstr);
    let mi_off = b.len();
    b.extend_from_slice(modinfo);
    while !b.len().is_multiple_of(8) {
        b.push(0);
    }
    let shoff = b.len();
    b[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
    b[58..60].copy_from_slice(&64u16.to_le_bytes());
    b[60..62].copy_from_slice(&3u16.to_le_bytes());
    b[62..64].copy_from_slice(&1u16.to_le_bytes());
    for (name, off, size) in [
        (0u32, 0usize, 0usize),
        (1, str_off, shstr.len()),
        (11, mi_off, modinfo.len()),
    ] {
        let mut s = vec![0u8; 64];
        s[..4].copy_from_slice(&name.to_le_bytes());
        s[24..32].copy_from_slice(&(off as u64).to_le_bytes());
        s[32..40].copy_from_slice(&(size as u64).to_le_bytes());
        b.extend(s);
    }
    let mut a = Writer::default();
    a.chunk(b"kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n")
        .bytes(&b);
    let mut o = Writer::default();
    o.chunk(b"kernel/a.ko\n").bytes(&b);
    vec![a.finish(), o.finish()]
}
