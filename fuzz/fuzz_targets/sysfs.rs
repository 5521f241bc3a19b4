#![no_main]
//! See `kexec_rs_fuzz::kexec::sysfs`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::kexec::sysfs(data));
