#![no_main]
//! See `kexec_rs_fuzz::firmware::fw_image`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::firmware::fw_image(data));
