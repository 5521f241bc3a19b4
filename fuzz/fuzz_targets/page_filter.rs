#![no_main]
//! See `kexec_rs_fuzz::vmcore::page_filter`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::page_filter(data));
