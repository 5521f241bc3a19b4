//! sparsecopy: copy a file onto a zero-filled target, skipping all-zero blocks.
//!
//! Test scaffolding for tests/dumps (runs in the capture kernel): `sparsecopy /proc/vmcore
//! /dev/vda` copies the vmcore onto a raw disk the host created empty (sparse, all zeros), so
//! skipped blocks already read back as zeros and the disk holds the exact bytes. Under TCG the
//! virtio-blk write path is what costs (≈45 MB/s here) while reading /proc/vmcore is fast
//! (≈400 MB/s), and most of an idle guest's memory is zero, so this cuts the copy several-fold.
//! Prints "<bytes copied> <bytes written>" on stdout.
//!
//! Built by make-dumps.sh with `rustc --target aarch64-unknown-linux-musl` (no Cargo).
use std::env;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::process::ExitCode;

const BLOCK: usize = 1 << 20;

fn copy(src: &str, dst: &str) -> io::Result<(u64, u64)> {
    let mut input = File::open(src)?;
    let mut output = OpenOptions::new().write(true).open(dst)?;
    let mut buf = vec![0u8; BLOCK];
    let (mut offset, mut written) = (0u64, 0u64);
    loop {
        // Fill the block completely (short reads are allowed on /proc files).
        let mut len = 0;
        while len < BLOCK {
            match input.read(&mut buf[len..])? {
                0 => break,
                n => len += n,
            }
        }
        if len == 0 {
            break;
        }
        let block = &buf[..len];
        if block.iter().any(|&b| b != 0) {
            output.seek(SeekFrom::Start(offset))?;
            output.write_all(block)?;
            written += len as u64;
        }
        offset += len as u64;
        if len < BLOCK {
            break;
        }
    }
    output.sync_all()?;
    Ok((offset, written))
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: sparsecopy SRC DST");
        return ExitCode::from(2);
    }
    match copy(&args[1], &args[2]) {
        Ok((total, written)) => {
            println!("{total} {written}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sparsecopy: {e}");
            ExitCode::FAILURE
        }
    }
}
