//! Compresses every whole 4 KiB page of a file with one of `vmcore save`'s
//! encoders (LZO1X, zlib streams or zstd frames; `ruzstd`: zstd frames from
//! ruzstd's own match finder, which `vmcore save` used before), each page on
//! its own as `vmcore save` stores them, and prints the total compressed
//! size (a page that does not
//! shrink counts as 4096, as it is then stored raw) and the time: the
//! encoder alone, without reading or writing a dump.
//!
//!   cargo run --release --example encode_pages -- lzo|zlib|zstd|ruzstd PAGES.bin
//!
//! `tests/bench/save-bench.sh` runs it on the kept pages of a real dump,
//! next to liblzo2's `lzo1x_1_compress` and zlib's `compress2` at level 1
//! on the same pages (`tests/bench/encode_pages.c`).
use std::process::ExitCode;
use std::time::Instant;
use vmcore_tools::save::deflate::Deflate;
use vmcore_tools::save::lzo::Lzo1x;
use vmcore_tools::save::zstd::Zstd;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, path) = match args.as_slice() {
        [k, p] if ["lzo", "zlib", "zstd", "ruzstd"].contains(&k.as_str()) => (k.as_str(), p),
        _ => {
            eprintln!("usage: encode_pages lzo|zlib|zstd|ruzstd FILE");
            return ExitCode::from(2);
        }
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("encode_pages: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut lzo = Lzo1x::new();
    let mut zlib = Deflate::new();
    let mut zstd = Zstd::new();
    let mut out = Vec::with_capacity(8192);
    let t = Instant::now();
    let mut total = 0usize;
    for page in data.chunks_exact(4096) {
        out.clear();
        let stored = match kind {
            "lzo" => {
                lzo.compress(page, &mut out);
                true
            }
            "zlib" => zlib.compress_within(page, &mut out, 4096),
            "zstd" => {
                zstd.compress(page, &mut out);
                true
            }
            _ => {
                out = ruzstd::encoding::compress_to_vec(
                    page,
                    ruzstd::encoding::CompressionLevel::Fastest,
                );
                true
            }
        };
        total += if stored { out.len().min(4096) } else { 4096 };
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "vmcore {kind}: {} pages, {total} bytes, {secs:.3} s",
        data.len() / 4096
    );
    ExitCode::SUCCESS
}
