#![no_main]
//! See `kexec_rs_fuzz::payload::elfcorehdr`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::payload::elfcorehdr(data));
