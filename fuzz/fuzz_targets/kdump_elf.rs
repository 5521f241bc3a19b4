#![no_main]
//! See `kexec_rs_fuzz::kexec::kdump_elf`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::kexec::kdump_elf(data));
