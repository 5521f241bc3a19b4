#![no_main]
//! See `kexec_rs_fuzz::vmcore::zstd_encode`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::zstd_encode(data));
