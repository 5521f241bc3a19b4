#![no_main]
//! See `kexec_rs_fuzz::vmcore::vmcore_args`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::vmcore_args(data));
