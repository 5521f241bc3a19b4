#![no_main]
//! See `kexec_rs_fuzz::vmcore::system_map`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::system_map(data));
