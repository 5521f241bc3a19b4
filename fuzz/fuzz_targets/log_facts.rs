//! Facts read from a kernel log, and the verdict built on them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vmcore_tools::cpus::{decide, log_facts, Evidence};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let facts = log_facts(text.lines());
    let _ = decide(&Evidence { log: Some(facts), ..Default::default() });
});
