#![no_main]
//! See `kexec_rs_fuzz::vmcore::arm64_walk`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::arm64_walk(data));
