//! VMCOREINFO text and every typed accessor.
#![no_main]
use crash_payload::vmcoreinfo::VmcoreInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = VmcoreInfo::parse(data) {
        let _ = v.number("VA_BITS");
        let _ = v.symbol("swapper_pg_dir");
        let _ = v.page_size();
        let _ = v.kerneloffset();
        let _ = v.crashtime();
        for (k, _, _) in v.entries() {
            let _ = v.get(k);
        }
    }
});
