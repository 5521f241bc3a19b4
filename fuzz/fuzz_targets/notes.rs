//! ELF note framing: iterate every note of arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for n in crash_payload::note::NoteIter::new(data) {
        let Ok(n) = n else { break };
        assert!(n.desc_offset() + n.desc.len() <= data.len());
        let _ = crash_payload::prstatus::ElfPrstatus::parse(n.desc);
    }
});
