#![no_main]
//! See `kexec_rs_fuzz::kexec::cmdline`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::kexec::cmdline(data));
