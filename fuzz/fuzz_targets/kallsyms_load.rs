#![no_main]
//! See `kexec_rs_fuzz::vmcore::kallsyms_load`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::kallsyms_load(data));
