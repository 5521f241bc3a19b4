//! Plan tests on the recorded-looking QEMU virt fixture
//! (`tests/fixtures/qemu-virt-2cpu-2g`, see its README for provenance).

use std::path::PathBuf;

use crash_payload::cpumap::{CpuMap, CPUMAP_NAME, CPU_ONLINE, CPU_PRESENT, NT_KEXECRS_CPUMAP};
use crash_payload::elfcorehdr::{PT_LOAD, PT_NOTE};
use crash_payload::note::NoteIter;
use crash_payload::PhysAddr;
use object::elf;
use object::read::elf::{ElfFile64, ProgramHeader as _};
use object::Endianness;

use crate::fdt::{decode_cells, Fdt};
use crate::image::{build, probe, KernelImage};
use crate::iomem::PhysRange;
use crate::plan::{
    plan_kexec_load, LoadKind, LoadRequest, Plan, PlanError, Purpose, Seeds, RNG_SEED_SIZE,
};
use crate::purgatory::Trampoline;
use crate::source::{self, gather, HostFacts, MpidrSource, Need, RecordingSource};
use crate::sys::{Errno, Recorded, RecordingSys, SysError, KEXEC_ARCH_AARCH64, KEXEC_ON_CRASH};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu-virt-2cpu-2g")
}

fn fixture() -> RecordingSource {
    RecordingSource::from_dir(&fixture_dir()).unwrap()
}

fn facts() -> HostFacts {
    gather(&fixture(), Need::Crash, None).unwrap()
}

fn seeds() -> Seeds {
    Seeds {
        kaslr: 0x0123_4567_89ab_cdef,
        rng: [0x5a; RNG_SEED_SIZE],
    }
}

/// A 64 KiB Image that says it needs 26 MiB once running.
fn kernel() -> KernelImage {
    probe("Image", &build::image(0x1_0000, 0, 0x1a0_0000, 0b1010)).unwrap()
}

const CMDLINE: &str = "console=ttyAMA0 maxcpus=1 nr_cpus=1 reset_devices";

fn crash_plan(facts: &HostFacts, initrd: &[u8]) -> Result<Plan, PlanError> {
    let k = kernel();
    let req = LoadRequest {
        kind: LoadKind::Crash,
        kernel: &k,
        initrd: Some(initrd),
        cmdline: CMDLINE,
        seeds: seeds(),
    };
    plan_kexec_load(facts, &req, &Trampoline)
}

fn r(s: u64, l: u64) -> PhysRange {
    PhysRange {
        start: PhysAddr(s),
        last: PhysAddr(l),
    }
}

#[test]
fn fixture_kcore_is_current() {
    let text: String = std::fs::read_to_string(fixture_dir().join("vmcoreinfo.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let want = crate::sysfs::tests::kcore_head(&text);
    let path = fixture_dir().join("proc/kcore");
    if std::env::var_os("KEXECRS_REGEN_FIXTURES").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let got = std::fs::read(&path).unwrap_or_default();
    assert!(
        got == want,
        "{} is stale: rerun with KEXECRS_REGEN_FIXTURES=1",
        path.display()
    );
}

#[test]
fn gather_reads_exactly_these_paths() {
    let src = fixture();
    let f = gather(&src, Need::Crash, None).unwrap();
    assert_eq!(
        *src.log.borrow(),
        [
            "/proc/iomem",
            "/proc/cmdline",
            "/sys/firmware/fdt",
            "/sys/devices/system/cpu/possible",
            "/sys/devices/system/cpu/present",
            "/sys/devices/system/cpu/online",
            "/sys/devices/system/cpu/cpu0/crash_notes",
            "/sys/devices/system/cpu/cpu0/crash_notes_size",
            "/sys/devices/system/cpu/cpu0/of_node",
            "/sys/devices/system/cpu/cpu1/crash_notes",
            "/sys/devices/system/cpu/cpu1/crash_notes_size",
            "/sys/devices/system/cpu/cpu1/of_node",
            "/sys/kernel/vmcoreinfo",
            "/proc/kcore",
        ]
    );
    assert_eq!(f.cpus.len(), 2);
    assert_eq!(f.cpus[1].crash_notes, PhysAddr(0xbfe5_c000));
    assert_eq!(
        (f.cpus[1].mpidr, f.cpus[1].mpidr_source),
        (Some(1), MpidrSource::OfNode)
    );
    assert_eq!(f.vmcoreinfo.unwrap().paddr, PhysAddr(0x8157_d000));
    let l = f.layout.unwrap();
    assert_eq!(
        (l.va_bits, l.kimage_voffset, l.page_size),
        (48, 0xffff_d0d1_c7e0_0000, 4096)
    );
    assert_eq!(
        f.cmdline,
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-56-arm64 console=ttyAMA0 crashkernel=256M"
    );
}

#[test]
fn missing_crash_notes_names_the_file() {
    let src = fixture().without("/sys/devices/system/cpu/cpu1/crash_notes");
    let e = gather(&src, Need::Crash, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/sys/devices/system/cpu/cpu1/crash_notes: entity not found (kernel built without CONFIG_KEXEC_CORE)"
    );
}

#[test]
fn crash_plan_on_qemu_virt() {
    let initrd = vec![0x30u8; 0x1_0000];
    let p = crash_plan(&facts(), &initrd).unwrap();
    let got: Vec<(Purpose, u64, u64, u64)> = p
        .segments
        .iter()
        .map(|s| (s.purpose, s.mem.get(), s.memsz, s.bytes_len))
        .collect();
    assert_eq!(
        got,
        [
            // Crash kernel afe00000 is 2 MiB-aligned; text_offset 0; image_size 26 MiB.
            (Purpose::Kernel, 0xafe0_0000, 0x1a0_0000, 0x1_0000),
            (Purpose::Initrd, 0xb180_0000, 0x1_0000, 0x1_0000),
            // 7 phdrs (2 CPUs, VMCOREINFO, CPU map, text, 2 RAM) = 456 bytes,
            // then the 104-byte CPU-map note and a 12-byte zero header.
            (Purpose::ElfCoreHdr, 0xb181_0000, 0x1000, 572),
            (Purpose::Dtb, 0xb181_1000, 0x2000, p.segments[3].bytes_len),
            (Purpose::Purgatory, 0xb181_3000, 0x1000, 40),
        ]
    );
    assert_eq!(p.entry, PhysAddr(0xb181_3000));
    assert_eq!(p.kernel_entry, PhysAddr(0xafe0_0000));
    assert_eq!(p.dtb, PhysAddr(0xb181_1000));
    assert_eq!(p.window, r(0xafe0_0000, 0xbfdf_ffff));
    assert_eq!(p.usable_memory, vec![r(0xafe0_0000, 0xbfdf_ffff)]);
    assert_eq!(p.elfcorehdr, Some(r(0xb181_0000, 0xb181_023b)));
    assert_eq!(p.free_after, 0x1000_0000 - 0x1a1_4000);
    assert!(!p.purgatory_verifies);
    // Digests are of the supplied bytes.
    for s in &p.segments {
        assert_eq!(
            s.sha256,
            <[u8; 32]>::from(<sha2::Sha256 as sha2::Digest>::digest(&s.bytes))
        );
    }
    // The trampoline hands over the DTB and the kernel.
    let pg = &p.segments[4].bytes;
    assert_eq!(&pg[0x18..0x20], &0xb181_1000u64.to_le_bytes());
    assert_eq!(&pg[0x20..0x28], &0xafe0_0000u64.to_le_bytes());
}

#[test]
fn elfcorehdr_reads_back_with_object_and_note_iterator() {
    let p = crash_plan(&facts(), b"initrd").unwrap();
    let seg = p
        .segments
        .iter()
        .find(|s| s.purpose == Purpose::ElfCoreHdr)
        .unwrap();
    let elf = ElfFile64::<Endianness>::parse(seg.bytes.as_slice()).unwrap();
    let e = elf.endian();
    assert_eq!(elf.elf_header().e_type.get(e), elf::ET_CORE);
    assert_eq!(elf.elf_header().e_machine.get(e), elf::EM_AARCH64);
    let ph: Vec<(u32, u64, u64, u64, u64)> = elf
        .elf_program_headers()
        .iter()
        .map(|h| {
            (
                h.p_type(e),
                h.p_paddr(e),
                h.p_vaddr(e),
                h.p_memsz(e),
                h.p_offset(e),
            )
        })
        .collect();
    let note_paddr = seg.mem.get() + 456;
    assert_eq!(
        ph,
        [
            (PT_NOTE, 0xbfe3_d000, 0, 424, 0xbfe3_d000),
            (PT_NOTE, 0xbfe5_c000, 0, 424, 0xbfe5_c000),
            (PT_NOTE, 0x8157_d000, 0, 0x1024, 0x8157_d000),
            (PT_NOTE, note_paddr, 0, 104 + 12, note_paddr),
            // Kernel text: "Kernel code" start .. "Kernel data" end, at
            // paddr + kimage_voffset (= SYMBOL(_stext)), never `_text`.
            (
                PT_LOAD,
                0x4021_0000,
                0xffff_d0d2_0801_0000,
                0x41b1_0000 - 0x4021_0000,
                0x4021_0000
            ),
            // System RAM minus the crash range, in the linear map
            // ((pa - PHYS_OFFSET) | PAGE_OFFSET, PHYS_OFFSET randomized).
            (
                PT_LOAD,
                0x4000_0000,
                0xffff_0254_4000_0000,
                0x6fe0_0000,
                0x4000_0000
            ),
            (
                PT_LOAD,
                0xbfe0_0000,
                0xffff_0254_bfe0_0000,
                0x20_0000,
                0xbfe0_0000
            ),
        ]
    );
    // The CPU-map note lives in the segment where its PT_NOTE points.
    let off = (note_paddr - seg.mem.get()) as usize;
    let notes: Vec<_> = NoteIter::new(&seg.bytes[off..off + 116])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].name, notes[0].n_type),
        (CPUMAP_NAME, NT_KEXECRS_CPUMAP)
    );
    let map = CpuMap::parse(notes[0].desc).unwrap();
    let cpus: Vec<_> = map
        .entries()
        .map(|c| (c.cpu, c.flags, c.mpidr, c.notes_paddr.get(), c.notes_size))
        .collect();
    let both = CPU_ONLINE | CPU_PRESENT;
    assert_eq!(
        cpus,
        [
            (0, both, 0, 0xbfe3_d000, 424),
            (1, both, 1, 0xbfe5_c000, 424)
        ]
    );
    // And the zero header after it is there (vmcore's walker reads it).
    assert!(seg.bytes[off + 104..off + 116].iter().all(|&b| b == 0));
}

#[test]
fn dtb_chosen_is_rewritten() {
    let f = facts();
    let p = crash_plan(&f, &[7u8; 100]).unwrap();
    let dtb = Fdt::parse(
        &p.segments
            .iter()
            .find(|s| s.purpose == Purpose::Dtb)
            .unwrap()
            .bytes,
    )
    .unwrap();
    let c = dtb.node("/chosen").unwrap();
    let pairs = |name: &str| -> Vec<u64> {
        c.prop(name)
            .unwrap()
            .chunks(8)
            .map(|x| decode_cells(x).unwrap())
            .collect()
    };
    assert_eq!(c.prop_str("bootargs"), Some(CMDLINE));
    assert_eq!(pairs("linux,elfcorehdr"), [0xb180_1000, 572]);
    assert_eq!(
        pairs("linux,usable-memory-range"),
        [0xafe0_0000, 0x1000_0000]
    );
    assert_eq!(pairs("linux,initrd-start"), [0xb180_0000]);
    assert_eq!(pairs("linux,initrd-end"), [0xb180_0064]);
    assert_eq!(pairs("kaslr-seed"), [0x0123_4567_89ab_cdef]);
    assert_eq!(c.prop("rng-seed").map(<[u8]>::len), Some(RNG_SEED_SIZE));
    // Everything else survives: stdout-path, the CPUs, memory.
    assert_eq!(c.prop_str("stdout-path"), Some("/pl011@9000000"));
    assert_eq!(dtb.node("/cpus/cpu@1").unwrap().prop_u32("reg"), Some(1));
    let base = Fdt::parse(&f.fdt).unwrap();
    assert_eq!(dtb.node("/memory@40000000"), base.node("/memory@40000000"));
    assert_eq!(dtb.root.children.len(), base.root.children.len());
}

#[test]
fn reservation_too_small_names_sizes() {
    let iomem = std::fs::read_to_string(fixture_dir().join("proc/iomem"))
        .unwrap()
        .replace(
            "  afe00000-bfdfffff : Crash kernel",
            "  afe00000-b0dfffff : Crash kernel",
        );
    let f = gather(
        &fixture().with_file("/proc/iomem", iomem),
        Need::Crash,
        None,
    )
    .unwrap();
    assert_eq!(
        crash_plan(&f, &[0u8; 0x1_0000]).unwrap_err(),
        PlanError::ReservationTooSmall {
            range: r(0xafe0_0000, 0xb0df_ffff),
            needed: 0x1a1_5000,
            needed_mib: 27,
            available: 0x100_0000,
            available_mib: 16,
        }
    );
    assert_eq!(
        crash_plan(&f, &[0u8; 0x1_0000]).unwrap_err().to_string(),
        "crash kernel reservation 0xafe00000-0xb0dfffff is too small: the segments need 27348992 bytes (27 MiB, including one page for the kernel's control page), the reservation has 16777216 bytes (16 MiB); raise crashkernel="
    );
}

#[test]
fn no_crash_kernel_range() {
    let iomem = std::fs::read_to_string(fixture_dir().join("proc/iomem"))
        .unwrap()
        .replace("  afe00000-bfdfffff : Crash kernel\n", "");
    let f = gather(
        &fixture().with_file("/proc/iomem", iomem),
        Need::Crash,
        None,
    )
    .unwrap();
    assert_eq!(crash_plan(&f, b"").unwrap_err(), PlanError::NoCrashKernel);
}

#[test]
fn stext_disagreeing_with_iomem_is_refused() {
    let mut f = facts();
    if let Some(l) = f.layout.as_mut() {
        l.kimage_voffset += 0x1_0000; // as if `Kernel code` started at _text
    }
    let e = crash_plan(&f, b"").unwrap_err();
    assert!(
        matches!(e, PlanError::Inconsistent(ref m) if m.starts_with("SYMBOL(_stext) is 0xffffd0d208010000")),
        "{e}"
    );
}

#[test]
fn normal_plan_has_no_crash_parts() {
    let f = gather(&fixture(), Need::Normal, None).unwrap();
    let k = kernel();
    let req = LoadRequest {
        kind: LoadKind::Normal,
        kernel: &k,
        initrd: None,
        cmdline: "root=/dev/vda",
        seeds: seeds(),
    };
    let p = plan_kexec_load(&f, &req, &Trampoline).unwrap();
    let purposes: Vec<_> = p.segments.iter().map(|s| s.purpose).collect();
    assert_eq!(
        purposes,
        [Purpose::Kernel, Purpose::Dtb, Purpose::Purgatory]
    );
    assert_eq!(p.kernel_entry, PhysAddr(0x4000_0000));
    assert!(p.elfcorehdr.is_none() && p.usable_memory.is_empty());
    let dtb = Fdt::parse(&p.segments[1].bytes).unwrap();
    let c = dtb.node("/chosen").unwrap();
    assert!(
        c.prop("linux,initrd-start").is_none(),
        "stale initrd from the running DTB removed"
    );
    assert!(c.prop("linux,elfcorehdr").is_none());
}

#[test]
fn act_makes_one_kexec_load() {
    let p = crash_plan(&facts(), b"initrd").unwrap();
    let mut sys = RecordingSys::default();
    crate::act::load_plan(&mut sys, &p, "aarch64", None).unwrap();
    let Recorded::KexecLoad {
        entry,
        segments,
        flags,
    } = &sys.calls[0]
    else {
        panic!("{:?}", sys.calls)
    };
    assert_eq!(sys.calls.len(), 1);
    assert_eq!(*entry, p.entry);
    assert_eq!(*flags, KEXEC_ON_CRASH | KEXEC_ARCH_AARCH64);
    let want: Vec<_> = p
        .segments
        .iter()
        .map(|s| (s.mem, s.memsz, s.bytes_len, s.sha256))
        .collect();
    assert_eq!(*segments, want);

    let mut sys = RecordingSys::default();
    let e = crate::act::load_plan(&mut sys, &p, "x86_64", None).unwrap_err();
    assert!(matches!(e, SysError::WrongArch { .. }));
    assert!(
        sys.calls.is_empty(),
        "no syscall for a plan of another architecture"
    );

    let mut sys = RecordingSys::failing(&[libc::ENOMEM]);
    let e = crate::act::load_plan(&mut sys, &p, "aarch64", None).unwrap_err();
    assert_eq!(
        e,
        crate::sys::explain(crate::sys::Call::KexecLoad, Errno(libc::ENOMEM), true, None)
    );
}

#[test]
fn plan_serializes_to_json() {
    let p = crash_plan(&facts(), b"initrd").unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["kind"], "crash");
    assert_eq!(v["entry"], "0xb1804000");
    assert_eq!(v["segments"][0]["purpose"], "kernel");
    assert_eq!(v["segments"][0]["mem"], "0xafe00000");
    assert_eq!(v["segments"][2]["purpose"], "elfcorehdr");
    assert_eq!(v["segments"][0]["sha256"].as_str().map(str::len), Some(64));
    let table = crate::plan::render(&p);
    assert!(table.contains("elfcorehdr          0xb1801000"), "{table}");
}

#[test]
fn status_files() {
    let s = source::read_status(&fixture()).unwrap();
    assert_eq!(
        s,
        source::Status {
            loaded: false,
            crash_loaded: false,
            crash_size: Some(256 << 20)
        }
    );
}

#[test]
fn plan_on_captured_guest() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/captured-6.1.0-56-arm64-wedged-irq");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let mut src = fixture()
        .with_file("/proc/iomem", read("iomem"))
        .with_file("/proc/cmdline", read("first.cmdline"))
        .with_file("/sys/kernel/vmcoreinfo", read("vmcoreinfo-addr"))
        .with_file("/sys/devices/system/cpu/online", read("cpus-online"));
    for line in read("crash_notes").lines() {
        let v: Vec<&str> = line.split_whitespace().collect();
        src = src
            .with_file(
                &format!("/sys/devices/system/cpu/cpu{}/crash_notes", v[0]),
                format!("{}\n", v[1]),
            )
            .with_file(
                &format!("/sys/devices/system/cpu/cpu{}/crash_notes_size", v[0]),
                format!("{}\n", v[2]),
            );
    }
    let f = gather(&src, Need::Crash, None).unwrap();
    let p = crash_plan(&f, b"initrd").unwrap();
    assert_eq!(p.window, r(0xa9a0_0000, 0xb99f_ffff));
    assert_eq!(p.kernel_entry, PhysAddr(0xa9a0_0000));
    let seg = p
        .segments
        .iter()
        .find(|s| s.purpose == Purpose::ElfCoreHdr)
        .unwrap();
    let elf = ElfFile64::<Endianness>::parse(seg.bytes.as_slice()).unwrap();
    let e = elf.endian();
    let ph: Vec<(u32, u64, u64)> = elf
        .elf_program_headers()
        .iter()
        .map(|h| (h.p_type(e), h.p_paddr(e), h.p_memsz(e)))
        .collect();
    assert_eq!(ph[0], (PT_NOTE, 0xbfba_5600, 424));
    assert_eq!(ph[1], (PT_NOTE, 0xbfbc_4600, 424));
    assert_eq!(ph[2], (PT_NOTE, 0x4274_4000, 0x1024));
    // Kernel code 40210000 .. Kernel data end 4220ffff.
    assert_eq!(ph[4], (PT_LOAD, 0x4021_0000, 0x200_0000));
    assert_eq!(ph[5], (PT_LOAD, 0x4000_0000, 0x69a0_0000));
    assert_eq!(ph[6], (PT_LOAD, 0xb9a0_0000, 0x660_0000));
    assert_eq!(ph.len(), 7);
}

/// A crash plan on the fixture, for other modules' tests.
pub(crate) fn crash_plan_for_tests() -> Plan {
    crash_plan(&facts(), b"initrd").unwrap()
}
