#![no_main]
//! See `kexec_rs_fuzz::kexec::dtb_edit`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::kexec::dtb_edit(data));
