#![no_main]
//! See `kexec_rs_fuzz::vmcore::kallsyms_decode`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::kallsyms_decode(data));
