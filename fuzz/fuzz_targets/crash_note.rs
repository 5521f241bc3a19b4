#![no_main]
//! See `kexec_rs_fuzz::payload::crash_note`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::payload::crash_note(data));
