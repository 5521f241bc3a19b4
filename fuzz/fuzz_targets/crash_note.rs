//! The 424-byte per-CPU crash-notes buffer; a saved note must round-trip.
#![no_main]
use crash_payload::crash_note::{build, parse, CrashNote};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(CrashNote::Saved(pr)) = parse(data) {
        assert_eq!(parse(&build(&pr)), Ok(CrashNote::Saved(pr)));
    }
});
