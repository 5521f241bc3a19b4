#![no_main]
//! See `kexec_rs_fuzz::kexec::kdump_config`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::kexec::kdump_config(data));
