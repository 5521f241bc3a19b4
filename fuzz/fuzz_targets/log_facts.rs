#![no_main]
//! See `kexec_rs_fuzz::vmcore::log_facts`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kexec_rs_fuzz::vmcore::log_facts(data));
