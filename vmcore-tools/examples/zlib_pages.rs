//! Compresses every whole 4 KiB page of a file into its own zlib stream
//! with `vmcore save`'s deflate encoder and prints the total compressed
//! size (a page that does not shrink counts as 4096, as it is then stored
//! raw) and the time: the encoder alone, without reading or writing a dump.
//!
//!   cargo run --release --example zlib_pages -- PAGES.bin
//!
//! `tests/bench/save-bench.sh` runs it on the kept pages of a real dump,
//! next to zlib's `compress2` at level 1 on the same pages.
use std::process::ExitCode;
use std::time::Instant;
use vmcore_tools::save::deflate::Deflate;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: zlib_pages FILE");
        return ExitCode::from(2);
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("zlib_pages: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut c = Deflate::new();
    let mut out = Vec::with_capacity(8192);
    let t = Instant::now();
    let mut total = 0usize;
    for page in data.chunks_exact(4096) {
        out.clear();
        // As `vmcore save` does: a page whose stream would not be smaller
        // is stored raw.
        total += if c.compress_within(page, &mut out, 4096) {
            out.len()
        } else {
            4096
        };
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "vmcore zlib: {} pages, {total} bytes, {secs:.3} s",
        data.len() / 4096
    );
    ExitCode::SUCCESS
}
