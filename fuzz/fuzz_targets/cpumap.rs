//! The loader's CPU-map note; a valid map must round-trip.
#![no_main]
use crash_payload::cpumap::{write_desc, CpuMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = CpuMap::parse(data) {
        let cpus: Vec<_> = m.entries().collect();
        let mut out = vec![0u8; crash_payload::cpumap::desc_size(cpus.len())];
        let n = write_desc(&mut out, &cpus).expect("sized above");
        let again: Vec<_> = CpuMap::parse(&out[..n]).expect("own output").entries().collect();
        assert_eq!(again, cpus);
    }
});
