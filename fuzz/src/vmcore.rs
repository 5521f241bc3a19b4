//! Targets for `vmcore-tools`: dump containers and the whole analysis, the
//! LZO page decoder, System.map and vmlinux symbols, kallsyms, the printk
//! ringbuffer and arm64 translation over a fake memory built from the fuzz
//! bytes. Each `fn` takes the fuzz bytes; each `seeds_*` gives valid inputs
//! made by the crate's builders or by [`world`].

use std::path::Path;

use crash_payload::vmcoreinfo::VmcoreInfo;
use crash_payload::{PhysAddr, VirtAddr};
use vmcore_tools::analyze::{collect_notes, Analysis, Options};
use vmcore_tools::arm64::Arm64;
use vmcore_tools::cpus::{self, decide, Evidence};
use vmcore_tools::format::build::{
    self as b, Compression, ElfBuilder, ElfLoad, FlatOptions, KdumpBuilder,
};
use vmcore_tools::format::{from_source, Dump};
use vmcore_tools::kallsyms::{Kallsyms, RawTables};
use vmcore_tools::mem::FakeMem;
use vmcore_tools::source::Source;
use vmcore_tools::symbols::{LinkSymbols, Symbols};

use crate::input::{Input, Writer};

// ---------------------------------------------------------------------------
// The fake kernel every memory-based target starts from: a Debian 6.1 arm64
// guest (48-bit VA, 4 KiB pages, no KASLR, RAM at 0x4000_0000), its kallsyms
// tables and its printk ringbuffer where VMCOREINFO says they are.

/// `_stext`.
pub const STEXT: u64 = 0xffff_8000_0801_0000;
/// `swapper_pg_dir` (physical 0x4220_0000).
pub const SWAPPER: u64 = 0xffff_8000_0a00_0000;
/// `kimage_voffset`: image virtual minus physical (`_text` at 0x4020_0000).
pub const KIMAGE_VOFFSET: u64 = 0xffff_8000_0800_0000 - 0x4020_0000;
/// Start of the linear map for 48-bit VA.
pub const PAGE_OFFSET: u64 = 0xffff_0000_0000_0000;
/// Where the kallsyms tables start (`kallsyms_names`; physical 0x4120_0000).
pub const KALLSYMS_VA: u64 = 0xffff_8000_0900_0000;
/// `SYMBOL(prb)` (physical 0x4230_0000); the struct follows at +0x100.
pub const PRB_SYM: u64 = 0xffff_8000_0a10_0000;
/// The printk descriptors, infos and text, in the linear map.
pub const PRB_DESCS: u64 = PAGE_OFFSET + 0x1000_0000;
/// See [`PRB_DESCS`].
pub const PRB_INFOS: u64 = PAGE_OFFSET + 0x1100_0000;
/// See [`PRB_DESCS`].
pub const PRB_TEXT: u64 = PAGE_OFFSET + 0x1200_0000;

/// Physical address of an image virtual address.
pub fn img_pa(va: u64) -> u64 {
    va.wrapping_sub(KIMAGE_VOFFSET)
}

/// Physical address of a linear-map virtual address.
pub fn lm_pa(va: u64) -> u64 {
    va - PAGE_OFFSET + 0x4000_0000
}

/// VMCOREINFO of the fake kernel (Linux 6.1's `log_buf_vmcoreinfo_setup`
/// layout, kallsyms symbols as `CONFIG_VMCORE_INFO` + kallsyms export them).
pub fn template() -> String {
    let k = KALLSYMS_VA;
    format!(
        "OSRELEASE=6.1.0-fuzz-arm64\nPAGESIZE=4096\n\
         SYMBOL(swapper_pg_dir)={SWAPPER:x}\nSYMBOL(_stext)={STEXT:x}\n\
         NUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)={KIMAGE_VOFFSET:#x}\n\
         NUMBER(PHYS_OFFSET)=0x40000000\nNUMBER(TCR_EL1_T1SZ)=0x10\n\
         NUMBER(KERNELPACMASK)=0xffff000000000000\nKERNELOFFSET=0\nCRASHTIME=1700000000\n\
         SYMBOL(kallsyms_names)={:x}\nSYMBOL(kallsyms_token_table)={:x}\n\
         SYMBOL(kallsyms_token_index)={:x}\nSYMBOL(kallsyms_num_syms)={:x}\n\
         SYMBOL(kallsyms_relative_base)={:x}\nSYMBOL(kallsyms_offsets)={:x}\n\
         SYMBOL(prb)={PRB_SYM:x}\nSIZE(printk_ringbuffer)=80\n\
         OFFSET(printk_ringbuffer.desc_ring)=0\nOFFSET(printk_ringbuffer.text_data_ring)=40\n\
         OFFSET(printk_ringbuffer.fail)=72\nSIZE(prb_desc_ring)=40\n\
         OFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=8\n\
         OFFSET(prb_desc_ring.infos)=16\nOFFSET(prb_desc_ring.head_id)=24\n\
         OFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\n\
         OFFSET(prb_desc.state_var)=0\nOFFSET(prb_desc.text_blk_lpos)=8\n\
         SIZE(prb_data_blk_lpos)=16\nOFFSET(prb_data_blk_lpos.begin)=0\n\
         OFFSET(prb_data_blk_lpos.next)=8\nSIZE(printk_info)=88\n\
         OFFSET(printk_info.seq)=0\nOFFSET(printk_info.ts_nsec)=8\n\
         OFFSET(printk_info.text_len)=16\nOFFSET(printk_info.caller_id)=20\n\
         OFFSET(printk_info.dev_info)=24\nSIZE(dev_printk_info)=64\n\
         OFFSET(dev_printk_info.subsystem)=0\nLENGTH(printk_info_subsystem)=16\n\
         OFFSET(dev_printk_info.device)=16\nLENGTH(printk_info_device)=48\n\
         SIZE(prb_data_ring)=32\nOFFSET(prb_data_ring.size_bits)=0\n\
         OFFSET(prb_data_ring.data)=8\nOFFSET(prb_data_ring.head_lpos)=16\n\
         OFFSET(prb_data_ring.tail_lpos)=24\nSIZE(atomic_long_t)=8\n\
         OFFSET(atomic_long_t.counter)=0\n",
        k,
        k + 0x800,
        k + 0x1000,
        k + 0x1400,
        k + 0x1408,
        k + 0x1410,
    )
}

/// Where a region of fuzz memory may be placed, by its kind byte (`kind % 9`;
/// 8 means an explicit 64-bit address follows).
pub const BASES: [u64; 8] = [
    0x4000_0000, // PHYS_OFFSET: the start of the linear map
    0x4020_0000, // _text
    0x4120_0000, // the kallsyms tables
    0x4220_0000, // swapper_pg_dir
    0x4230_0000, // SYMBOL(prb) and the printk_ringbuffer
    0x5000_0000, // prb descriptors
    0x5100_0000, // printk_info array
    0x5200_0000, // printk text ring
];

/// A fake kernel decoded from fuzz bytes.
#[derive(Debug)]
pub struct World {
    /// Virtual addresses to translate.
    pub vas: Vec<u64>,
    /// VMCOREINFO text.
    pub vmcoreinfo: Vec<u8>,
    /// Physical memory.
    pub mem: FakeMem,
}

/// Decodes `flags: u8`, `nva: u8` (mod 8), `nva` × `u64` addresses, a
/// `u16`-length VMCOREINFO text (appended to [`template`] unless bit 0 of
/// flags is set; later keys win), then up to 64 regions of
/// `kind: u8 [addr: u64 if kind % 9 == 8, else offset: u32 from BASES]`
/// and `u16`-length bytes.
pub fn decode_world(data: &[u8]) -> World {
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let nva = inp.u8() % 8;
    let vas = (0..nva).map(|_| inp.u64()).collect();
    let text = inp.chunk();
    let vmcoreinfo = if flags & 1 != 0 {
        text.to_vec()
    } else {
        let mut t = template().into_bytes();
        t.extend_from_slice(text);
        t
    };
    let mut mem = FakeMem::default();
    for _ in 0..64 {
        if inp.is_empty() {
            break;
        }
        let kind = usize::from(inp.u8() % 9);
        let addr = match BASES.get(kind) {
            Some(base) => base.wrapping_add(u64::from(inp.u32())),
            None => inp.u64(),
        };
        let bytes = inp.chunk();
        mem.put(PhysAddr(addr), bytes);
    }
    World {
        vas,
        vmcoreinfo,
        mem,
    }
}

/// Encodes a world for [`decode_world`] (regions at absolute addresses).
pub fn world(
    raw_vmcoreinfo: bool,
    vas: &[u64],
    text: &[u8],
    regions: &[(u64, Vec<u8>)],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(u8::from(raw_vmcoreinfo)).u8(vas.len() as u8);
    for &va in vas {
        w.u64(va);
    }
    w.chunk(text);
    for (addr, bytes) in regions {
        w.u8(8).u64(*addr).chunk(bytes);
    }
    w.finish()
}

/// The kallsyms tables of the fake kernel: one region at `img_pa(KALLSYMS_VA)`.
/// Tokens are single bytes (token `i` is byte `i`), so names are stored as is.
pub fn kallsyms_region(syms: &[(&str, i32)]) -> (u64, Vec<u8>) {
    let mut r = vec![0u8; 0x1410 + 4 * syms.len()];
    let mut pos = 0;
    for (name, _) in syms {
        r[pos] = name.len() as u8;
        r[pos + 1..pos + 1 + name.len()].copy_from_slice(name.as_bytes());
        pos += 1 + name.len();
    }
    for i in 0..256usize {
        r[0x800 + 2 * i] = i as u8;
        r[0x1000 + 2 * i..0x1000 + 2 * i + 2].copy_from_slice(&(2 * i as u16).to_le_bytes());
    }
    r[0x1400..0x1404].copy_from_slice(&(syms.len() as u32).to_le_bytes());
    r[0x1408..0x1410].copy_from_slice(&STEXT.to_le_bytes());
    for (i, (_, off)) in syms.iter().enumerate() {
        r[0x1410 + 4 * i..0x1414 + 4 * i].copy_from_slice(&off.to_le_bytes());
    }
    (img_pa(KALLSYMS_VA), r)
}

/// Sample kallsyms contents (type character first, as the kernel stores them).
pub const SAMPLE_SYMS: &[(&str, i32)] = &[
    ("T_stext", 0),
    ("Tstart_kernel", 0x100),
    ("tpanic_smp_self_stop", 0x240),
    ("Tcrash_save_cpu", 0x400),
    ("T_etext", 0x10_0000),
    ("Dcrash_notes", 0x1f0_0000),
    ("D__per_cpu_offset", 0x1f0_0100),
    ("D__cpu_present_mask", 0x1f0_0200),
    ("B_end", 0x200_0000),
];

/// A printk ringbuffer as `prb_reserve()` lays it out: `count_bits` 2,
/// `size_bits` 8, records from id `first_id` and lpos `first_lpos`.
pub fn printk_regions(first_id: u64, first_lpos: u64, texts: &[&[u8]]) -> Vec<(u64, Vec<u8>)> {
    let (count_bits, size_bits) = (2u32, 8u32);
    let count = 1u64 << count_bits;
    let size = 1u64 << size_bits;
    let mut descs = vec![0u8; (count * 24) as usize];
    let mut infos = vec![0u8; (count * 88) as usize];
    let mut text = vec![0u8; size as usize];
    let (mut lpos, mut id) = (first_lpos, first_id);
    let id_mask = !(3u64 << 62);
    for (n, t) in texts.iter().enumerate() {
        let i = (id % count) as usize;
        let blk = (t.len() as u64).next_multiple_of(8) + 8;
        let begin = lpos;
        let mut next = lpos.wrapping_add(blk);
        let mut at = (begin % size) as usize;
        if begin >> size_bits != next >> size_bits {
            next = (next & !(size - 1)).wrapping_add(blk);
            at = 0;
        }
        text[at..at + 8].copy_from_slice(&id.to_le_bytes());
        text[at + 8..at + 8 + t.len()].copy_from_slice(t);
        lpos = next;
        let d = &mut descs[i * 24..i * 24 + 24];
        d[0..8].copy_from_slice(&((2u64 << 62) | id).to_le_bytes());
        d[8..16].copy_from_slice(&begin.to_le_bytes());
        d[16..24].copy_from_slice(&next.to_le_bytes());
        let inf = &mut infos[i * 88..i * 88 + 88];
        inf[0..8].copy_from_slice(&(n as u64).to_le_bytes());
        inf[8..16].copy_from_slice(&(1_000_000 * (n as u64 + 1)).to_le_bytes());
        inf[16..18].copy_from_slice(&(t.len() as u16).to_le_bytes());
        inf[20..24].copy_from_slice(&(0x8000_0000u32 | n as u32).to_le_bytes());
        if n == 0 {
            inf[24..30].copy_from_slice(b"virtio");
            inf[40..49].copy_from_slice(b"+virtio:0");
        }
        id = (id + 1) & id_mask;
    }
    let head = id.wrapping_sub(1) & id_mask;
    let mut prb = vec![0u8; 0x100 + 80];
    prb[0..8].copy_from_slice(&(PRB_SYM + 0x100).to_le_bytes());
    let rb = &mut prb[0x100..];
    rb[0..4].copy_from_slice(&count_bits.to_le_bytes());
    rb[8..16].copy_from_slice(&PRB_DESCS.to_le_bytes());
    rb[16..24].copy_from_slice(&PRB_INFOS.to_le_bytes());
    rb[24..32].copy_from_slice(&head.to_le_bytes());
    rb[32..40].copy_from_slice(&first_id.to_le_bytes());
    rb[40..44].copy_from_slice(&size_bits.to_le_bytes());
    rb[48..56].copy_from_slice(&PRB_TEXT.to_le_bytes());
    vec![
        (img_pa(PRB_SYM), prb),
        (lm_pa(PRB_DESCS), descs),
        (lm_pa(PRB_INFOS), infos),
        (lm_pa(PRB_TEXT), text),
    ]
}

/// Sample log lines.
pub const SAMPLE_LOG: &[&[u8]] = &[
    b"Booting Linux on physical CPU 0x0000000000",
    b"smp: Brought up 1 node, 2 CPUs",
    b"Kernel panic - not syncing: sysrq\x01",
];

/// Page-table entries (`(table, index, descriptor)`) mapping `va` through
/// four levels: tables at 0x4400_0000.. with `leaf` as the last descriptor
/// (at `leaf_level`).
pub fn table_regions(va: u64, leaf_level: u32, leaf: u64) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut table = img_pa(SWAPPER);
    for level in 0..=leaf_level {
        let idx = (va >> (12 + 9 * (3 - level))) & 511;
        let next = 0x4400_0000 + 0x1000 * u64::from(level);
        let desc = if level == leaf_level { leaf } else { next | 3 };
        out.push((table + 8 * idx, desc.to_le_bytes().to_vec()));
        table = next;
    }
    out
}

/// A System.map of the fake kernel.
pub fn sample_system_map() -> Vec<u8> {
    let mut s = String::new();
    for (name, off) in SAMPLE_SYMS {
        let (kind, name) = name.split_at(1);
        s += &format!("{:016x} {kind} {name}\n", STEXT + *off as u64);
    }
    s += &format!("{SWAPPER:016x} B swapper_pg_dir\n{PRB_SYM:016x} D prb\n0000000000000000 A _kernel_size_le\n");
    s.into_bytes()
}

fn arm64_of(vi: &[u8]) -> Option<(VmcoreInfo<'_>, Arm64)> {
    let vi = VmcoreInfo::parse(vi).ok()?;
    let a = Arm64::from_vmcoreinfo(&vi).ok()?;
    Some((vi, a))
}

// ---------------------------------------------------------------------------
// Targets.

/// Facts read from a kernel log, and the verdict built on them.
pub fn log_facts(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let facts = cpus::log_facts(text.lines());
    let _ = decide(&Evidence {
        log: Some(facts),
        ..Default::default()
    });
}

/// Seeds: lines the fact finder looks for.
pub fn seeds_log_facts() -> Vec<Vec<u8>> {
    vec![b"[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x413fd0c1]\n\
           [    0.100000] smp: Brought up 1 node, 4 CPUs\n\
           [    0.000000] percpu: Embedded 29 pages/cpu s79848 r8192 d30744 u118784\n\
           [    0.000000] pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 \n\
           [   99.000000] CPU: 2 PID: 1234 Comm: bash Not tainted 6.1.0-13-arm64 #1  Debian 6.1.55-1\n\
           [   99.100000] SMP: failed to stop secondary CPUs 1,3\n\
           [   50.000000] CPU1: shutdown\n"
        .to_vec()]
}

/// Reads what a reader of the dump reads first: format facts, notes, a few
/// bytes at both ends of up to 8 physical ranges.
fn exercise(d: &dyn Dump) {
    let _ = d.info();
    let _ = d.inner_container();
    let _ = d.vmcoreinfo();
    let _ = collect_notes(d);
    let mut buf = vec![0u8; 4096];
    for r in d.ranges().iter().take(8) {
        let _ = d.read_phys(r.start, &mut buf[..64]);
        let end = r.start.get().saturating_add(r.size);
        let _ = d.read_phys(PhysAddr(end.saturating_sub(16)), &mut buf[..16]);
        let _ = d.read_phys(
            PhysAddr(r.start.get().saturating_add(r.size / 2) & !4095),
            &mut buf,
        );
    }
    let _ = d.read_phys(PhysAddr(u64::MAX - 3), &mut buf[..8]);
}

/// A dump file of any format: open it, read notes and some memory, then run
/// the whole CPU analysis (verdict, log, symbols) on it.
pub fn dump(data: &[u8]) {
    let Ok(d) = from_source(Source::from_vec("fuzz.vmcore", data.to_vec())) else {
        return;
    };
    exercise(d.as_ref());
    let Ok(an) = Analysis::from_dump(Path::new("fuzz.vmcore"), d, &Options::default()) else {
        return;
    };
    let _ = an.check_usable();
    let v = an.verdict();
    let _ = vmcore_tools::report::verdict_json("fuzz.vmcore", "fuzz", &v, &an.symbolizer());
    let _ = vmcore_tools::report::print_cpus(&mut std::io::sink(), &v, &an.symbolizer());
    let _ = vmcore_tools::report::print_verify(&mut std::io::sink(), &v);
    let _ = an.log_lines();
    if let Ok(s) = an.symbols() {
        let _ = s.lookup(VirtAddr(STEXT + 0x10));
        let _ = s.address_of("crash_notes");
    }
}

/// The fake kernel as an ELF core: kernel notes with [`template`]'s
/// VMCOREINFO, its kallsyms, printk ring and page tables as PT_LOADs.
pub fn rich_elf() -> Vec<u8> {
    let mut notes = Vec::new();
    notes.extend(b::note(
        b"CORE",
        1,
        &b::prstatus(1, STEXT + 0x400, 0xffff_8000_0a00_3f00),
    ));
    notes.extend(b::note(
        b"CORE",
        1,
        &b::prstatus(0, STEXT + 0x240, 0xffff_8000_0a00_7f00),
    ));
    notes.extend(b::note(b"VMCOREINFO", 0, template().as_bytes()));
    let mut regions = vec![kallsyms_region(SAMPLE_SYMS)];
    regions.extend(printk_regions(0, 0, SAMPLE_LOG));
    let mut e = ElfBuilder::new().note_segment(notes);
    regions.sort_by_key(|r| r.0);
    for (pa, bytes) in regions {
        let len = bytes.len().next_multiple_of(4096);
        let mut page = bytes;
        page.resize(len, 0);
        e = e.load(ElfLoad::new(pa, page));
    }
    e.build()
}

/// Seeds: each builder's file (ELF, QEMU ELF, kdump with every compression,
/// flattened kdump and ELF) and the fake kernel as an ELF and flattened.
pub fn seeds_dump() -> Vec<Vec<u8>> {
    let elf = ElfBuilder::new()
        .note_segment(b::kernel_notes(2, true))
        .load(ElfLoad::new(0x4000_0000, b::pattern(0x4000_0000, 0x2000)))
        .load(ElfLoad::new(0x4000_2000, b::pattern(0x4000_2000, 0x800)).memsz(0x1000))
        .build();
    let qelf = ElfBuilder::new()
        .note_segment(b::qemu_notes(2))
        .load(ElfLoad::new(0x4000_0000, b::pattern(0x4000_0000, 0x1000)))
        .pn_xnum(true)
        .build();
    let kd = KdumpBuilder::new(4096)
        .pattern_pages(0x40000..0x40001, Compression::Zlib)
        .page(0x40001, vec![0x41; 100], Compression::Lzo)
        .page(0x40002, vec![0x42; 100], Compression::Snappy)
        .page(0x40003, vec![0x43; 100], Compression::Zstd)
        .pattern_pages(0x40004..0x40005, Compression::None)
        .filtered(0x40005)
        .build();
    let flat = b::flatten(
        &kd,
        FlatOptions {
            chunk: 3000,
            skip_zero: true,
            rewrite_first: 300,
        },
    );
    let flat_elf = b::flatten(&elf, FlatOptions::default());
    let rich = rich_elf();
    let rich_flat = b::flatten(
        &rich,
        FlatOptions {
            chunk: 4096,
            skip_zero: true,
            rewrite_first: 0,
        },
    );
    vec![elf, qelf, kd, flat, flat_elf, rich, rich_flat]
}

/// pfn of the page [`lzo`] decodes.
const LZO_PFN: u64 = 0x40000;

/// The LZO page decoder, through a kdump file with one LZO page. First byte
/// even: the rest is the compressed page, as makedumpfile would store it.
/// Odd: the rest (cut and zero-padded to 4096) is compressed with the
/// `lzokay-native` encoder and must decode back unchanged.
pub fn lzo(data: &[u8]) {
    let mut inp = Input::new(data);
    let mode = inp.u8();
    let body = inp.rest();
    let file = if mode & 1 == 0 {
        // The file up to the page data, built once (the builder compresses).
        static BASE: std::sync::OnceLock<(Vec<u8>, usize)> = std::sync::OnceLock::new();
        let (base, d) = BASE.get_or_init(|| {
            let (mut file, layout) = KdumpBuilder::new(4096)
                .page(LZO_PFN, vec![0x5a; 4096], Compression::Lzo)
                .build_with_layout();
            file.truncate(layout.data as usize);
            (file, layout.descs as usize)
        });
        let (mut file, d) = (base.clone(), *d);
        file[d + 8..d + 12].copy_from_slice(&(body.len() as u32).to_le_bytes());
        file[d + 12..d + 16].copy_from_slice(&Compression::Lzo.flag().to_le_bytes());
        file.extend_from_slice(body);
        file
    } else {
        let mut page = body[..body.len().min(4096)].to_vec();
        page.resize(4096, 0);
        KdumpBuilder::new(4096)
            .page(LZO_PFN, page, Compression::Lzo)
            .build()
    };
    let d = match from_source(Source::from_vec("fuzz.kdump", file)) {
        Ok(d) => d,
        Err(e) => {
            assert!(mode & 1 == 0, "own kdump file: {e}");
            return;
        }
    };
    let mut out = vec![0u8; 4096];
    let r = d.read_phys(PhysAddr(LZO_PFN * 4096), &mut out);
    if mode & 1 == 1 {
        let mut page = body[..body.len().min(4096)].to_vec();
        page.resize(4096, 0);
        assert!(r.is_ok(), "own LZO page: {r:?}");
        assert!(out == page, "LZO round trip differs");
    }
}

/// Seeds: compressed pages of several shapes, and plain pages to round-trip.
pub fn seeds_lzo() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let pages: Vec<Vec<u8>> = vec![
        vec![0; 4096],
        b"hello hello hello hello world".repeat(150),
        b::pattern(0x4000_0000, 4096),
        (0..4096u32).map(|i| (i / 64) as u8).collect(),
    ];
    for p in &pages {
        let mut s = vec![0u8];
        s.extend(Compression::Lzo.compress(p));
        out.push(s);
        let mut s = vec![1u8];
        s.extend_from_slice(&p[..p.len().min(600)]);
        out.push(s);
    }
    out
}

/// `vmcore save`'s LZO1X encoder: the input is cut into pieces (each
/// length a `u16`, so both the path for pieces up to 16 KiB and the one
/// that bounds distances run), each compressed by one reused
/// compressor (its position base carries over, and is set near overflow
/// by the first byte), and each stream must decode to its piece.
pub fn lzo_encode(data: &[u8]) {
    use vmcore_tools::format::lzo::decompress;
    use vmcore_tools::save::lzo::Lzo1x;
    let mut inp = Input::new(data);
    let mode = inp.u8();
    let mut c = if mode & 1 == 1 {
        Lzo1x::with_base(u32::MAX - u32::from(inp.u16()))
    } else {
        Lzo1x::new()
    };
    let mut out = Vec::new();
    while !inp.is_empty() {
        let want = usize::from(inp.u16());
        let piece = inp.bytes(want);
        out.clear();
        c.compress(piece, &mut out);
        // The bound `Lzo1x::compress` reserves room by.
        let n = piece.len();
        assert!(
            out.len() <= n + n / 16 + 64 + 3,
            "{} bytes for {n}",
            out.len()
        );
        let back = decompress(&out, piece.len())
            .unwrap_or_else(|e| panic!("own stream of {} bytes: {e:?}", piece.len()));
        assert!(back == piece, "LZO encoder round trip differs");
    }
}

/// An encoder target's input piece: its length (`u16`), then its bytes.
fn piece(p: &[u8]) -> Vec<u8> {
    let mut s = (p.len() as u16).to_le_bytes().to_vec();
    s.extend_from_slice(p);
    s
}

/// Seeds: pages of several shapes, a piece longer than 16 KiB, and a base
/// about to wrap.
pub fn seeds_lzo_encode() -> Vec<Vec<u8>> {
    let pattern = b::pattern(0x4000_0000, 4096);
    let text = b"hello hello hello hello world".repeat(150);
    let mut a = vec![0u8];
    a.extend(piece(&pattern));
    a.extend(piece(&text));
    a.extend(piece(&[0; 4096]));
    let mut big = vec![0u8];
    big.extend(piece(&b::pattern(0x4000_0000, 8192).repeat(3)));
    let mut wrap = vec![1u8, 0x10, 0x00];
    wrap.extend(piece(&pattern));
    wrap.extend(piece(&pattern));
    vec![a, big, wrap]
}

/// `vmcore save`'s deflate encoder: as [`lzo_encode`], pieces compressed
/// by one reused encoder (position base near overflow when the first byte
/// is odd), each stream inflated by flate2 back to its piece; and each
/// piece once more under a limit from the input: refused with the output
/// untouched, or written shorter than the limit.
pub fn zlib_encode(data: &[u8]) {
    use std::io::Read;
    use vmcore_tools::save::deflate::Deflate;
    let mut inp = Input::new(data);
    let mode = inp.u8();
    let mut c = if mode & 1 == 1 {
        Deflate::with_base(u32::MAX - u32::from(inp.u16()))
    } else {
        Deflate::new()
    };
    let mut out = Vec::new();
    while !inp.is_empty() {
        let want = usize::from(inp.u16());
        let limit = usize::from(inp.u16());
        let piece = inp.bytes(want);
        out.clear();
        c.compress(piece, &mut out);
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap_or_else(|e| panic!("own stream of {} bytes: {e}", piece.len()));
        assert!(back == piece, "deflate encoder round trip differs");
        let full = out.clone();
        out.truncate(1);
        if c.compress_within(piece, &mut out, limit) {
            assert!(out.len() - 1 < limit && out[1..] == full[..]);
        } else {
            assert!(out.len() == 1 && full.len() >= limit);
        }
    }
}

/// Seeds: pages of several shapes (no limit, and a limit the page meets),
/// a piece longer than the 32 KiB window, and a base about to wrap.
pub fn seeds_zlib_encode() -> Vec<Vec<u8>> {
    let page = |p: &[u8], limit: u16| {
        let mut s = (p.len() as u16).to_le_bytes().to_vec();
        s.extend_from_slice(&limit.to_le_bytes());
        s.extend_from_slice(p);
        s
    };
    let pattern = b::pattern(0x4000_0000, 4096);
    let text = b"hello hello hello hello world".repeat(150);
    let mut a = vec![0u8];
    a.extend(page(&pattern, u16::MAX));
    a.extend(page(&text, 200));
    a.extend(page(&[0; 4096], 30));
    let mut big = vec![0u8];
    big.extend(page(&b::pattern(0x4000_0000, 8192).repeat(6), u16::MAX));
    let mut wrap = vec![1u8, 0x10, 0x00];
    wrap.extend(page(&pattern, 4096));
    wrap.extend(page(&pattern, 4096));
    vec![a, big, wrap]
}

/// `vmcore save`'s zstd encoder (`save::zstd::Zstd`): one reused encoder
/// over pieces of the input (`u16` length, then bytes; the page size may
/// change between pieces); every frame decodes (ruzstd) to its piece.
pub fn zstd_encode(data: &[u8]) {
    use vmcore_tools::save::zstd::Zstd;
    let mut inp = Input::new(data);
    let mut z = Zstd::new();
    let mut out = Vec::new();
    while !inp.is_empty() {
        let want = usize::from(inp.u16());
        let piece = inp.bytes(want);
        out.clear();
        z.compress(piece, &mut out);
        let mut back = vec![0u8; piece.len()];
        let mut dec = ruzstd::decoding::FrameDecoder::new();
        let n = dec
            .decode_all(&out, &mut back)
            .unwrap_or_else(|e| panic!("own frame of {} bytes: {e}", piece.len()));
        assert!(
            n == piece.len() && back == piece,
            "zstd encoder round trip differs"
        );
    }
}

/// Seeds: pages of several shapes, a 16 KiB page, and pages of two sizes
/// in turn.
pub fn seeds_zstd_encode() -> Vec<Vec<u8>> {
    let pattern = b::pattern(0x4000_0000, 4096);
    let text = b"hello hello hello hello world".repeat(150);
    let mut a = Vec::new();
    a.extend(piece(&pattern));
    a.extend(piece(&text));
    a.extend(piece(&[0; 4096]));
    let big = piece(&b::pattern(0x4000_0000, 4096).repeat(4));
    let mut mixed = piece(&pattern);
    mixed.extend(piece(&text[..1000]));
    mixed.extend(piece(&pattern));
    vec![a, big, mixed]
}

/// The `vmcore` command line: the input split at NUL bytes into arguments
/// (any bytes, not only UTF-8); parsing must give a command, a help text,
/// the version or a usage error, and an error's text names the usage line.
pub fn vmcore_args(data: &[u8]) {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    use vmcore_tools::cli::{parse, Parsed};
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    match parse(args) {
        Ok(Parsed::Help(h)) => assert!(h.contains("Usage: vmcore")),
        Ok(Parsed::Run(_) | Parsed::Version) => {}
        Err(e) => {
            assert!(e.usage.starts_with("vmcore "));
            assert!(!e.message.is_empty());
        }
    }
}

/// Seeds: each command with its options in several spellings, and broken
/// lines.
pub fn seeds_vmcore_args() -> Vec<Vec<u8>> {
    [
        &b"save\0-d31\0-czlib\0-Fj2\0--progress=never\0--json\0/proc/vmcore\0-"[..],
        b"save\0--dump-level\x001,31\0--\0-in\0out",
        b"info\0--vmlinux\0vmlinux\0--system-map=System.map\0--stats\0--json\0dump",
        b"cpus\0dump\0--json",
        b"verify\0dump",
        b"dmesg\0dump",
        b"help\0save",
        b"--version",
        b"save\0-j\x000\0a",
        b"save\0-\xff\0a",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

/// A System.map: parse, look every symbol up, and add it to the fake
/// kernel's symbols (which checks it against VMCOREINFO).
pub fn system_map(data: &[u8]) {
    if let Ok(l) = LinkSymbols::parse_system_map(data, "fuzz.map") {
        link_symbols(l);
    }
}

fn link_symbols(l: LinkSymbols) {
    for s in l.symbols().iter().take(256) {
        assert!(l.get(&s.name).is_some(), "{} listed but not found", s.name);
        let _ = l.link_address_of(&s.name);
        let _ = l.is_duplicate(&s.name);
    }
    let _ = (l.source(), l.origin());
    let t = template();
    let Some((vi, a)) = arm64_of(t.as_bytes()) else {
        return;
    };
    let mut syms = Symbols::from_dump(&a, &vi, None);
    if syms.add_link_symbols(l).is_ok() {
        let _ = syms.lookup(VirtAddr(STEXT + 0x250));
        let _ = syms.address_of("crash_notes");
        let _ = syms.address_of_with_source("_stext");
        let _ = syms.kernel_bounds();
    }
}

/// Seeds: the fake kernel's System.map.
pub fn seeds_system_map() -> Vec<Vec<u8>> {
    vec![sample_system_map()]
}

/// A vmlinux (ELF symbol table): as [`system_map`].
pub fn vmlinux(data: &[u8]) {
    if let Ok(l) = LinkSymbols::parse_vmlinux(data, "fuzz.vmlinux") {
        link_symbols(l);
    }
}

/// A minimal little-endian ELF64 `ET_EXEC` for aarch64 shaped like a
/// vmlinux: `.text`, `.data`, `.symtab`, `.strtab`, `.shstrtab`.
/// Symbols: `(name, value, size, st_info, st_shndx)`.
pub fn tiny_vmlinux(syms: &[(&str, u64, u64, u8, u16)]) -> Vec<u8> {
    const DATA: u64 = 0xffff_8000_0900_0000;
    let shstr = b"\0.text\0.data\0.symtab\0.strtab\0.shstrtab\0";
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    for (name, value, size, info, shndx) in syms {
        let off = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        symtab.extend_from_slice(&off.to_le_bytes());
        symtab.push(*info);
        symtab.push(0);
        symtab.extend_from_slice(&shndx.to_le_bytes());
        symtab.extend_from_slice(&value.to_le_bytes());
        symtab.extend_from_slice(&size.to_le_bytes());
    }
    let mut out = vec![0u8; 64];
    let text_off = out.len();
    out.resize(text_off + 0x400, 0);
    let data_off = out.len();
    out.resize(data_off + 0x100, 0);
    let sym_off = out.len();
    out.extend_from_slice(&symtab);
    let str_off = out.len();
    out.extend_from_slice(&strtab);
    let shstr_off = out.len();
    out.extend_from_slice(shstr);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let sh_off = out.len();
    #[allow(clippy::type_complexity)]
    let shdrs: [(u32, u32, u64, u64, usize, usize, u32, u32, u64, u64); 6] = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (1, 1, 6, STEXT, text_off, 0x400, 0, 0, 16, 0),
        (7, 1, 3, DATA, data_off, 0x100, 0, 0, 8, 0),
        (13, 2, 0, 0, sym_off, symtab.len(), 4, 1, 8, 24),
        (21, 3, 0, 0, str_off, strtab.len(), 0, 0, 1, 0),
        (29, 3, 0, 0, shstr_off, shstr.len(), 0, 0, 1, 0),
    ];
    for (name, ty, flags, addr, off, size, link, info, align, entsize) in shdrs {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&(off as u64).to_le_bytes());
        out.extend_from_slice(&(size as u64).to_le_bytes());
        out.extend_from_slice(&link.to_le_bytes());
        out.extend_from_slice(&info.to_le_bytes());
        out.extend_from_slice(&align.to_le_bytes());
        out.extend_from_slice(&entsize.to_le_bytes());
    }
    out[0..4].copy_from_slice(b"\x7fELF");
    out[4] = 2;
    out[5] = 1;
    out[6] = 1;
    out[16..18].copy_from_slice(&2u16.to_le_bytes());
    out[18..20].copy_from_slice(&183u16.to_le_bytes());
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[24..32].copy_from_slice(&STEXT.to_le_bytes());
    out[40..48].copy_from_slice(&(sh_off as u64).to_le_bytes());
    out[52..54].copy_from_slice(&64u16.to_le_bytes());
    out[58..60].copy_from_slice(&64u16.to_le_bytes());
    out[60..62].copy_from_slice(&6u16.to_le_bytes());
    out[62..64].copy_from_slice(&5u16.to_le_bytes());
    out
}

/// Seeds: a vmlinux with function, object, local and absolute symbols.
pub fn seeds_vmlinux() -> Vec<Vec<u8>> {
    vec![tiny_vmlinux(&[
        ("_stext", STEXT, 0, 0x12, 1),
        ("start_kernel", STEXT + 0x100, 0x40, 0x12, 1),
        ("crash_notes", 0xffff_8000_0900_0010, 8, 0x11, 2),
        ("__per_cpu_offset", 0xffff_8000_0900_0020, 0x40, 0x11, 2),
        ("local_thing", 0xffff_8000_0900_0080, 4, 0x01, 2),
        ("swapper_pg_dir", SWAPPER, 0, 0x00, 2),
        ("_kernel_size_le", 0x200_0000, 0, 0x00, 0xfff1),
    ])]
}

/// Kallsyms name decoding from raw tables: `relative_base: u64`, token
/// table, token index and offsets as `u16`-length chunks, then up to 4096
/// names as `u16`-length chunks. Every decoded name must be found again.
pub fn kallsyms_decode(data: &[u8]) {
    let mut inp = Input::new(data);
    let relative_base = inp.u64();
    let token_table = inp.chunk().to_vec();
    let token_index = inp
        .chunk()
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let offsets = inp
        .chunk()
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let raw = RawTables {
        offsets,
        relative_base,
        token_table,
        token_index,
    };
    let mut names = Vec::new();
    while !inp.is_empty() && names.len() < 4096 {
        let at = VirtAddr(KALLSYMS_VA + names.len() as u64);
        names.push((at, inp.chunk().to_vec()));
    }
    if let Ok(k) = Kallsyms::decode(&raw, &names) {
        check_kallsyms(&k);
    }
}

fn check_kallsyms(k: &Kallsyms) {
    assert_eq!(k.len(), k.symbols().len());
    for s in k.symbols().iter().take(512) {
        assert!(
            k.address_of(&s.name).is_some(),
            "{:?} decoded but not found",
            s.name
        );
        let _ = k.lookup(s.addr);
        let _ = k.lookup(VirtAddr(s.addr.0.wrapping_add(1)));
    }
    let _ = k.kernel_bounds();
    let _ = k.offsets_mode();
}

/// Seeds: the sample table, as raw tables.
pub fn seeds_kallsyms_decode() -> Vec<Vec<u8>> {
    let mut w = Writer::default();
    w.u64(STEXT);
    let table: Vec<u8> = (0..256).flat_map(|i| [i as u8, 0]).collect();
    w.chunk(&table);
    let index: Vec<u8> = (0..256u16).flat_map(|i| (2 * i).to_le_bytes()).collect();
    w.chunk(&index);
    let offs: Vec<u8> = SAMPLE_SYMS
        .iter()
        .flat_map(|(_, o)| o.to_le_bytes())
        .collect();
    w.chunk(&offs);
    for (name, _) in SAMPLE_SYMS {
        w.chunk(name.as_bytes());
    }
    vec![w.finish()]
}

/// Kallsyms found through VMCOREINFO and read from fuzz memory ([`decode_world`]).
pub fn kallsyms_load(data: &[u8]) {
    let w = decode_world(data);
    let Some((vi, a)) = arm64_of(&w.vmcoreinfo) else {
        return;
    };
    if let Ok(k) = Kallsyms::load(&w.mem, &a, &vi) {
        check_kallsyms(&k);
        let syms = Symbols::from_dump(&a, &vi, Some(k));
        let _ = syms.lookup(VirtAddr(STEXT + 0x250));
        let _ = syms.kernel_bounds();
    }
}

/// Seeds: the sample tables in the fake kernel.
pub fn seeds_kallsyms_load() -> Vec<Vec<u8>> {
    vec![world(false, &[], b"", &[kallsyms_region(SAMPLE_SYMS)])]
}

/// The printk ringbuffer read from fuzz memory ([`decode_world`]), and the
/// `vmcore-dmesg` text of it.
pub fn printk(data: &[u8]) {
    let w = decode_world(data);
    let Some((vi, a)) = arm64_of(&w.vmcoreinfo) else {
        return;
    };
    if let Ok(recs) = vmcore_tools::printk::read_log(&w.mem, &a, &vi) {
        let _ = vmcore_tools::printk::format_vmcore_dmesg(&recs);
        let mut s = String::new();
        for r in &recs {
            vmcore_tools::printk::format_record(&mut s, r);
            let _ = r.text_lossy();
        }
    }
}

/// Seeds: a ring with three records, one whose ids and data wrap.
pub fn seeds_printk() -> Vec<Vec<u8>> {
    vec![
        world(false, &[], b"", &printk_regions(0, 0, SAMPLE_LOG)),
        world(
            false,
            &[],
            b"",
            &printk_regions(6, 3 * 256 + 200, SAMPLE_LOG),
        ),
    ]
}

/// arm64 translation: the context from fuzz VMCOREINFO, then every
/// address classification and a page-table walk through fuzz memory for
/// each address ([`decode_world`]). Walks must end (loops are detected).
pub fn arm64_walk(data: &[u8]) {
    let w = decode_world(data);
    let Some((_vi, a)) = arm64_of(&w.vmcoreinfo) else {
        return;
    };
    let _ = (
        a.layout(),
        a.kernel_image(),
        a.module_window(),
        a.text(),
        a.va_bits_actual(),
    );
    let fixed = [
        STEXT,
        SWAPPER,
        0xffff_8000_1000_0000,
        PAGE_OFFSET + 0x1000,
        0,
        u64::MAX,
    ];
    for &va in w.vas.iter().chain(fixed.iter()) {
        let v = VirtAddr(va);
        let _ = a.region(v);
        let _ = (a.is_linear(v), a.is_kernel_text(v), a.is_module_addr(v));
        let _ = (a.is_kernel_code(v), a.is_kernel_stack_candidate(v));
        let _ = a.strip_pac(va);
        let _ = (a.lm_to_phys(v), a.kimg_to_phys(v), a.pa_symbol(v));
        let _ = a.phys_to_lm(PhysAddr(va));
        if let Ok(t) = a.walk(&w.mem, v) {
            assert!(t.level <= 3 && t.size.is_power_of_two(), "{t:?}");
        }
        let _ = a.virt_to_phys(&w.mem, v);
        let mut buf = [0u8; 24];
        let _ = a.read_virt(&w.mem, VirtAddr(va.wrapping_sub(8)), &mut buf);
        let _ = a.read_u64(&w.mem, v);
        let _ = a.read_symbol(&w.mem, v, &mut buf);
    }
}

/// Seeds: a 4 KiB page, a 2 MiB block, a table loop, a bad level-3 entry.
pub fn seeds_arm64_walk() -> Vec<Vec<u8>> {
    let va = 0xffff_8000_1000_0000;
    let mut loop_ = table_regions(va, 3, 0x4000_0000 | 0x703);
    loop_[1].1 = (img_pa(SWAPPER) | 3).to_le_bytes().to_vec();
    vec![
        world(
            false,
            &[va, va + 0x123],
            b"",
            &table_regions(va, 3, 0x4000_0000 | 0x703),
        ),
        world(
            false,
            &[va + 0x1234],
            b"",
            &table_regions(va, 2, 0x4000_0000 | 0x701),
        ),
        world(false, &[va], b"", &loop_),
        world(
            false,
            &[va],
            b"",
            &table_regions(va, 3, 0x4000_0000 | 0x701),
        ),
        world(
            false,
            &[va],
            b"PAGESIZE=65536\nNUMBER(VA_BITS)=52\nNUMBER(TCR_EL1_T1SZ)=12\n",
            &[],
        ),
    ]
}

// ---------------------------------------------------------------------------
// makedumpfile's page filter (`save::filter`) over fuzz memory.

/// Physical address of the fake SPARSEMEM_EXTREME root array.
pub const MS_ROOTS_PA: u64 = 0x4600_0000;
/// Physical address of the page of `struct mem_section` root 0 points to.
pub const MS_SECTIONS_PA: u64 = 0x4600_1000;
/// vmemmap address of pfn 0x40000's `struct page`.
pub const MEM_MAP_VA: u64 = 0xffff_fc00_0000_0000 + 0x40000 * 64;
/// Where that page of `struct page`s (pfns 0x40000..0x40040) lies.
pub const MEM_MAP_PA: u64 = 0x4700_0000;

/// The VMCOREINFO keys the page filter reads, as Debian's 6.1 writes them.
pub fn page_filter_vmcoreinfo() -> String {
    format!(
        "SYMBOL(mem_section)={:x}\nLENGTH(mem_section)=16384\nSIZE(mem_section)=32\n\
         OFFSET(mem_section.section_mem_map)=0\nNUMBER(SECTION_SIZE_BITS)=27\n\
         NUMBER(MAX_PHYSMEM_BITS)=48\nSIZE(page)=64\nOFFSET(page.flags)=0\n\
         OFFSET(page.mapping)=24\nOFFSET(page._mapcount)=48\nOFFSET(page.private)=40\n\
         OFFSET(page.compound_dtor)=16\nOFFSET(page.compound_order)=17\n\
         OFFSET(page.compound_head)=8\nLENGTH(zone.free_area)=11\nNUMBER(PG_lru)=4\n\
         NUMBER(PG_private)=13\nNUMBER(PG_swapcache)=10\nNUMBER(PG_swapbacked)=19\n\
         NUMBER(PG_slab)=9\nNUMBER(PG_hwpoison)=22\nNUMBER(PG_head_mask)=65536\n\
         NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\nNUMBER(HUGETLB_PAGE_DTOR)=2\n\
         NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257\n",
        PAGE_OFFSET + (MS_ROOTS_PA - 0x4000_0000)
    )
}

/// Memory for the page filter: the vmemmap page mapped, section 8 present,
/// and 64 struct pages: a free order-3 block, cache pages with and without
/// PG_private, an anonymous page, an order-2 hugetlbfs page, a poisoned page.
pub fn page_filter_regions() -> Vec<(u64, Vec<u8>)> {
    let mut pages = vec![[0u8; 64]; 64];
    for p in pages.iter_mut() {
        p[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    let set = |pages: &mut Vec<[u8; 64]>, i: usize, off: usize, v: &[u8]| {
        pages[i][off..off + v.len()].copy_from_slice(v);
    };
    set(&mut pages, 0, 48, &(-129i32).to_le_bytes());
    set(&mut pages, 0, 40, &3u64.to_le_bytes());
    set(&mut pages, 8, 0, &(1u64 << 4).to_le_bytes());
    set(&mut pages, 9, 0, &((1u64 << 4) | (1 << 13)).to_le_bytes());
    set(&mut pages, 10, 24, &0xffff_0000_1234_0001u64.to_le_bytes());
    set(&mut pages, 12, 0, &(1u64 << 16).to_le_bytes());
    for t in 13..16 {
        set(
            &mut pages,
            t,
            8,
            &((MEM_MAP_VA + 12 * 64) | 1).to_le_bytes(),
        );
    }
    set(&mut pages, 13, 16, &[2, 2]);
    set(&mut pages, 16, 0, &(1u64 << 22).to_le_bytes());
    let mut sections = vec![0u8; 4096];
    let coded = (MEM_MAP_VA - 0x40000 * 64) | 3;
    sections[8 * 32..8 * 32 + 8].copy_from_slice(&coded.to_le_bytes());
    let mut out = table_regions(MEM_MAP_VA, 3, MEM_MAP_PA | 0x703);
    out.push((MEM_MAP_PA, pages.concat()));
    out.push((
        MS_ROOTS_PA,
        (PAGE_OFFSET + (MS_SECTIONS_PA - 0x4000_0000))
            .to_le_bytes()
            .to_vec(),
    ));
    out.push((MS_SECTIONS_PA, sections));
    out
}

/// `save::filter::filter_memory` over fuzz memory ([`decode_world`]):
/// `vas[0] % 32` is the dump level, each further pair of `vas` a physical
/// range (start below 2^40, under 2^28 bytes, so a run stays short).
/// Checks: nothing at or past `max_pfn` is kept; no more pages are
/// excluded than the ranges hold.
pub fn page_filter(data: &[u8]) {
    use vmcore_tools::format::PhysRange;
    use vmcore_tools::save::filter::{filter_memory, DumpLevel};
    let w = decode_world(data);
    let level = w.vas.first().map_or(31, |v| (v % 32) as u32);
    let ranges: Vec<PhysRange> = w
        .vas
        .get(1..)
        .unwrap_or(&[])
        .chunks_exact(2)
        .map(|p| PhysRange {
            start: PhysAddr(p[0] & ((1 << 40) - 1)),
            size: p[1] % (1 << 28),
        })
        .collect();
    let Ok(level) = DumpLevel::new(level) else {
        return;
    };
    if let Ok(f) = filter_memory(&w.mem, Some(&w.vmcoreinfo), &ranges, None, level) {
        let pages: u64 = ranges.iter().map(|r| r.size / 4096 + 2).sum();
        assert!(f.stats().total() <= pages, "{:?} > {pages}", f.stats());
        assert!(!f.keep(f.max_pfn()));
        for r in &ranges {
            let _ = f.keep(r.start.get() / 4096);
        }
    }
}

/// Seeds: the fake kernel's 64 struct pages, as one range, at levels 31,
/// 16, 2, 8 and 0.
pub fn seeds_page_filter() -> Vec<Vec<u8>> {
    let text = page_filter_vmcoreinfo();
    [31u64, 16, 2, 8, 0]
        .iter()
        .map(|&l| {
            world(
                false,
                &[l, 0x4000_0000, 64 * 4096],
                text.as_bytes(),
                &page_filter_regions(),
            )
        })
        .collect()
}
