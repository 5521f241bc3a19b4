#![no_main]
//! See `kexec_rs_fuzz::vmcore::zlib_encode`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::zlib_encode(data));
