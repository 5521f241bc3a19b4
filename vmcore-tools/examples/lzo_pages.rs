//! Compresses every whole 4 KiB page of a file with `vmcore save`'s LZO1X
//! encoder and prints the total compressed size (a page that does not
//! shrink counts as 4096, as it is then stored raw) and the time: the
//! encoder alone, without reading or writing a dump.
//!
//!   cargo run --release --example lzo_pages -- PAGES.bin
//!
//! `tests/bench/save-bench.sh` runs it on the kept pages of a real dump,
//! next to liblzo2's `lzo1x_1_compress` on the same pages.
use std::process::ExitCode;
use std::time::Instant;
use vmcore_tools::save::lzo::Lzo1x;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: lzo_pages FILE");
        return ExitCode::from(2);
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("lzo_pages: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut c = Lzo1x::new();
    let mut out = Vec::with_capacity(8192);
    let t = Instant::now();
    let mut total = 0usize;
    for page in data.chunks_exact(4096) {
        out.clear();
        c.compress(page, &mut out);
        total += out.len().min(4096);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "vmcore lzo: {} pages, {total} bytes, {secs:.3} s",
        data.len() / 4096
    );
    ExitCode::SUCCESS
}
