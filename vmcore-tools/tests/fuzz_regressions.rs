//! Replays the fuzz targets of `vmcore-tools` and `crash-payload` on their
//! seeds and on every saved crash under `fuzz/regressions/<target>/`, through
//! the same code libFuzzer runs (`fuzz/src/*.rs`, included here). A target
//! with no saved crashes still runs its seeds, so nothing is skipped.
//!
//! `FUZZ_WRITE_SEEDS=1 cargo test -p vmcore-tools --test fuzz_regressions`
//! also writes the seeds to `fuzz/corpus/<target>/` (see `fuzz/README.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[allow(dead_code)]
#[path = "../../fuzz/src/payload.rs"]
mod payload;
#[allow(dead_code)]
#[path = "../../fuzz/src/vmcore.rs"]
mod vmcore;

#[macro_use]
#[path = "../../fuzz/src/replay.rs"]
mod replay;

targets! {
    payload::notes / seeds_notes,
    payload::crash_note / seeds_crash_note,
    payload::vmcoreinfo / seeds_vmcoreinfo,
    payload::cpumap / seeds_cpumap,
    payload::elfcorehdr / seeds_elfcorehdr,
    vmcore::log_facts / seeds_log_facts,
    vmcore::dump / seeds_dump,
    vmcore::lzo / seeds_lzo,
    vmcore::lzo_encode / seeds_lzo_encode,
    vmcore::zlib_encode / seeds_zlib_encode,
    vmcore::zstd_encode / seeds_zstd_encode,
    vmcore::vmcore_args / seeds_vmcore_args,
    vmcore::system_map / seeds_system_map,
    vmcore::vmlinux / seeds_vmlinux,
    vmcore::kallsyms_decode / seeds_kallsyms_decode,
    vmcore::kallsyms_load / seeds_kallsyms_load,
    vmcore::printk / seeds_printk,
    vmcore::arm64_walk / seeds_arm64_walk,
    vmcore::page_filter / seeds_page_filter,
}

/// The seeds reach the code behind the checks they feed (a seed that stops
/// at the first check would leave the fuzzer to find the format alone).
#[test]
fn seeds_reach_deep() {
    use crash_payload::vmcoreinfo::VmcoreInfo;
    use crash_payload::VirtAddr;
    use vmcore_tools::arm64::Arm64;

    let load = |seed: &[u8]| {
        let w = vmcore::decode_world(seed);
        let text = w.vmcoreinfo.clone();
        let vi = VmcoreInfo::parse(&text).unwrap();
        let a = Arm64::from_vmcoreinfo(&vi).unwrap();
        (w, text, a)
    };
    for seed in vmcore::seeds_printk() {
        let (w, text, a) = load(&seed);
        let vi = VmcoreInfo::parse(&text).unwrap();
        let recs = vmcore_tools::printk::read_log(&w.mem, &a, &vi).unwrap();
        assert_eq!(recs.len(), vmcore::SAMPLE_LOG.len());
        assert_eq!(recs[1].text, vmcore::SAMPLE_LOG[1]);
    }
    let (w, text, a) = load(&vmcore::seeds_kallsyms_load()[0]);
    let vi = VmcoreInfo::parse(&text).unwrap();
    let k = vmcore_tools::kallsyms::Kallsyms::load(&w.mem, &a, &vi).unwrap();
    assert_eq!(k.len(), vmcore::SAMPLE_SYMS.len());
    assert_eq!(
        k.address_of("start_kernel"),
        Some(VirtAddr(vmcore::STEXT + 0x100))
    );
    let (w, _, a) = load(&vmcore::seeds_arm64_walk()[0]);
    let t = a.walk(&w.mem, VirtAddr(0xffff_8000_1000_0123)).unwrap();
    assert_eq!((t.phys.get(), t.level), (0x4000_0123, 3));
    let (w, _, a) = load(&vmcore::seeds_arm64_walk()[2]);
    let e = a.walk(&w.mem, VirtAddr(0xffff_8000_1000_0000)).unwrap_err();
    assert!(
        e.to_string().contains("loop") || format!("{e:?}").contains("Loop"),
        "{e}"
    );

    // The page filter's seeds find struct pages and exclude what they describe.
    let seeds = vmcore::seeds_page_filter();
    let w = vmcore::decode_world(&seeds[0]);
    let ranges = [vmcore_tools::format::PhysRange {
        start: crash_payload::PhysAddr(0x4000_0000),
        size: 64 * 4096,
    }];
    let level = vmcore_tools::save::filter::DumpLevel::new(31).unwrap();
    let f = vmcore_tools::save::filter::filter_memory(
        &w.mem,
        Some(&w.vmcoreinfo),
        &ranges,
        None,
        level,
    )
    .unwrap();
    // Order-3 free block, two cache pages, anon, order-2 hugetlb, poisoned.
    assert_eq!(f.stats().total(), 8 + 2 + 1 + 4 + 1, "{:?}", f.stats());

    let rich = vmcore::rich_elf();
    let d = vmcore_tools::format::from_source(vmcore_tools::source::Source::from_vec("rich", rich))
        .unwrap();
    let an = vmcore_tools::analyze::Analysis::from_dump(
        std::path::Path::new("rich"),
        d,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(an.log_lines().unwrap().len(), vmcore::SAMPLE_LOG.len());
    assert!(an.symbols().unwrap().address_of("crash_notes").is_some());
    let _ = an.verdict();

    let sm =
        vmcore_tools::symbols::LinkSymbols::parse_system_map(&vmcore::sample_system_map(), "m")
            .unwrap();
    assert!(sm.get("crash_notes").is_some());
    let vl = vmcore_tools::symbols::LinkSymbols::parse_vmlinux(&vmcore::seeds_vmlinux()[0], "v")
        .unwrap();
    assert!(vl.get("crash_notes").is_some());
}
