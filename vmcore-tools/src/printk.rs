//! The kernel log: the lockless printk ringbuffer (Linux 5.10+,
//! `kernel/printk/printk_ringbuffer.[ch]`), located and described entirely
//! by VMCOREINFO (`log_buf_vmcoreinfo_setup()` in `kernel/printk/printk.c`):
//! `SYMBOL(prb)` (a pointer to the `struct printk_ringbuffer` in use),
//! `SIZE(printk_ringbuffer|prb_desc|printk_info)` and the `OFFSET()`s of
//! `printk_ringbuffer.{desc_ring,text_data_ring}`,
//! `prb_desc_ring.{count_bits,descs,infos,head_id,tail_id}`,
//! `prb_desc.{state_var,text_blk_lpos}`, `prb_data_blk_lpos.{begin,next}`,
//! `printk_info.{seq,ts_nsec,text_len,caller_id}`,
//! `prb_data_ring.{size_bits,data}`, `atomic_long_t.counter`, and, when
//! present, `printk_info.dev_info` / `dev_printk_info.{subsystem,device}`.
//!
//! [`read_log`] walks descriptor ids from `tail_id` to `head_id` inclusive,
//! keeps committed and finalized records whose state's id matches, and
//! extracts each text block exactly as kexec-tools' `vmcore-dmesg` (2.0.25,
//! `util_lib/elf_info.c` `dump_record`) does: `begin` and `next` are taken
//! modulo the ring size; equal means data-less (timestamp only); a wrapped
//! block (`begin > next`) has its data at the ring's start; the 8-byte block
//! id is skipped; the text is `text_len` bytes, cut to the block's end.
//! Where that differs from what the kernel itself would read
//! (`get_data()`: a block ending exactly at the ring's end, a `text_len`
//! longer than its block), [`LogRecord::text`] holds the kernel's view and
//! [`LogRecord::vmcore_dmesg_text`] the other.
//! [`format_vmcore_dmesg`] then prints what `vmcore-dmesg` prints:
//! `[%5llu.%06llu] `, the text with bytes that are neither `isprint` nor
//! `isspace` in the C locale written as `\xNN`, and a newline. No caller id,
//! level or dictionary is printed (2.0.25 prints none).
//!
//! Not supported: the pre-5.10 `log_buf` formats (Linux 6.1 does not use
//! them); a dump with `SYMBOL(log_buf)` and no `SYMBOL(prb)` is refused
//! with [`PrintkError::LegacyLogBuf`]. 32-bit kernels are not handled
//! (ids and lpos are read as 64-bit `unsigned long`).
#![forbid(unsafe_code)]

use crash_payload::vmcoreinfo::VmcoreInfo;
use crash_payload::VirtAddr;

use crate::arm64::Arm64;
use crate::mem::{MemError, PhysMem};

/// Largest `prb_desc_ring.count_bits` accepted: `log_buf_len` is at most
/// 2 GiB (`LOG_BUF_LEN_MAX`) with 32 bytes of text per descriptor
/// (`PRB_AVGBITS` = 5).
pub const MAX_COUNT_BITS: u32 = 26;
/// Largest `prb_data_ring.size_bits` accepted (`LOG_BUF_LEN_MAX` = 2^31).
pub const MAX_SIZE_BITS: u32 = 31;
/// Largest `SIZE()` accepted for the ringbuffer's structures.
const MAX_STRUCT: u64 = 4096;

/// `DESC_FLAGS_SHIFT` for a 64-bit `unsigned long`.
const DESC_FLAGS_SHIFT: u32 = 62;
/// `DESC_ID_MASK`.
const DESC_ID_MASK: u64 = !(3 << DESC_FLAGS_SHIFT);
/// `desc_committed`.
const DESC_COMMITTED: u64 = 1;
/// `desc_finalized`.
const DESC_FINALIZED: u64 = 2;

/// Why the log could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrintkError {
    /// A VMCOREINFO key the reader needs is absent.
    #[error("VMCOREINFO has no {0}: cannot read the printk ringbuffer")]
    Missing(String),
    /// A VMCOREINFO value that does not parse.
    #[error("VMCOREINFO {key}: {why}")]
    BadValue {
        /// The key.
        key: String,
        /// The parser's message.
        why: String,
    },
    /// The kernel uses the pre-5.10 `log_buf`.
    #[error("the dump has SYMBOL(log_buf) but no SYMBOL(prb): the pre-5.10 log_buf format is not supported")]
    LegacyLogBuf,
    /// A structure size or field offset that cannot be right.
    #[error("VMCOREINFO {key}={value}: {why}")]
    BadLayout {
        /// The key.
        key: String,
        /// Its value.
        value: u64,
        /// Why.
        why: String,
    },
    /// Memory the ringbuffer needs could not be read.
    #[error("reading {what} at {addr}: {err}")]
    Read {
        /// What.
        what: &'static str,
        /// Where.
        addr: VirtAddr,
        /// The cause.
        err: MemError,
    },
    /// `prb_desc_ring.count_bits` out of range.
    #[error(
        "printk_ringbuffer at {prb}: prb_desc_ring.count_bits is {value}: expected at most {max}"
    )]
    CountBits {
        /// The ringbuffer.
        prb: VirtAddr,
        /// The value read.
        value: u32,
        /// The bound.
        max: u32,
    },
    /// `prb_data_ring.size_bits` out of range.
    #[error("printk_ringbuffer at {prb}: prb_data_ring.size_bits is {value}: expected 3..={max}")]
    SizeBits {
        /// The ringbuffer.
        prb: VirtAddr,
        /// The value read.
        value: u32,
        /// The bound.
        max: u32,
    },
    /// `head_id` is further from `tail_id` than the ring holds.
    #[error("printk_ringbuffer at {prb}: tail_id {tail:#x} to head_id {head:#x} spans more than the {count} descriptors")]
    IdRange {
        /// The ringbuffer.
        prb: VirtAddr,
        /// `tail_id`.
        tail: u64,
        /// `head_id`.
        head: u64,
        /// Descriptors in the ring.
        count: u64,
    },
}

/// One committed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Descriptor id.
    pub id: u64,
    /// `printk_info.seq`.
    pub seq: u64,
    /// `printk_info.ts_nsec`: nanoseconds since boot (local clock).
    pub ts_nsec: u64,
    /// `printk_info.caller_id`: `0x80000000 | cpu` or a task id.
    pub caller_id: u32,
    /// The text bytes as the kernel reads them (`get_data()`,
    /// `copy_data()`): empty for a data-less record or one the kernel would
    /// skip (see `problem`).
    pub text: Vec<u8>,
    /// Why the kernel would not return this record's text (an illegal or
    /// short data block), if so.
    pub problem: Option<String>,
    /// What `vmcore-dmesg` 2.0.25 prints instead, when that differs from
    /// `text`. Its extraction takes lpos values modulo the ring size, so a
    /// block that fills the ring to its very end (begin and next equal
    /// modulo the size) prints as empty, and a `text_len` longer than the
    /// block is cut at the block's end instead of being rejected.
    pub vmcore_dmesg_text: Option<Vec<u8>>,
    /// `dev_printk_info.subsystem`, when VMCOREINFO describes it and it is set.
    pub subsystem: Option<String>,
    /// `dev_printk_info.device`, when VMCOREINFO describes it and it is set.
    pub device: Option<String>,
}

impl LogRecord {
    /// The text as (lossy) UTF-8, for searching the log.
    pub fn text_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.text)
    }
}

/// Field layout read from VMCOREINFO.
#[derive(Debug, Clone, Copy)]
struct Layout {
    prb_size: u64,
    desc_ring: u64,
    text_data_ring: u64,
    count_bits: u64,
    descs: u64,
    infos: u64,
    head_id: u64,
    tail_id: u64,
    desc_size: u64,
    state_var: u64,
    text_blk_lpos: u64,
    lpos_begin: u64,
    lpos_next: u64,
    info_size: u64,
    seq: u64,
    ts_nsec: u64,
    text_len: u64,
    caller_id: u64,
    size_bits: u64,
    data: u64,
    counter: u64,
    dev_info: Option<(u64, u64, u64, u64, u64)>,
}

fn get(
    key: String,
    v: Option<Result<u64, crash_payload::vmcoreinfo::VmcoreInfoError>>,
) -> Result<Option<u64>, PrintkError> {
    match v {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(PrintkError::BadValue {
            key,
            why: e.to_string(),
        }),
    }
}

fn offset(vi: &VmcoreInfo<'_>, name: &str) -> Result<u64, PrintkError> {
    let key = format!("OFFSET({name})");
    get(key.clone(), vi.offset(name))?.ok_or(PrintkError::Missing(key))
}

fn size(vi: &VmcoreInfo<'_>, name: &str) -> Result<u64, PrintkError> {
    let key = format!("SIZE({name})");
    let v = get(key.clone(), vi.size(name))?.ok_or_else(|| PrintkError::Missing(key.clone()))?;
    if v == 0 || v > MAX_STRUCT {
        return Err(PrintkError::BadLayout {
            key,
            value: v,
            why: format!("expected 1..={MAX_STRUCT}"),
        });
    }
    Ok(v)
}

/// Checks that field `name` (at `off`, `width` bytes) fits in a `size`-byte struct.
fn fits(name: &str, off: u64, width: u64, size: u64, in_struct: &str) -> Result<(), PrintkError> {
    if off.checked_add(width).is_none_or(|end| end > size) {
        return Err(PrintkError::BadLayout {
            key: format!("OFFSET({name})"),
            value: off,
            why: format!("a {width}-byte field there does not fit in the {size}-byte {in_struct}"),
        });
    }
    Ok(())
}

impl Layout {
    fn from_vmcoreinfo(vi: &VmcoreInfo<'_>) -> Result<Layout, PrintkError> {
        let dev_info = match (
            vi.offset("printk_info.dev_info"),
            vi.offset("dev_printk_info.subsystem"),
            vi.length("printk_info_subsystem"),
            vi.offset("dev_printk_info.device"),
            vi.length("printk_info_device"),
        ) {
            (Some(Ok(d)), Some(Ok(s)), Some(Ok(sl)), Some(Ok(dv)), Some(Ok(dl))) => {
                Some((d, s, sl, dv, dl))
            }
            _ => None,
        };
        let l = Layout {
            prb_size: size(vi, "printk_ringbuffer")?,
            desc_ring: offset(vi, "printk_ringbuffer.desc_ring")?,
            text_data_ring: offset(vi, "printk_ringbuffer.text_data_ring")?,
            count_bits: offset(vi, "prb_desc_ring.count_bits")?,
            descs: offset(vi, "prb_desc_ring.descs")?,
            infos: offset(vi, "prb_desc_ring.infos")?,
            head_id: offset(vi, "prb_desc_ring.head_id")?,
            tail_id: offset(vi, "prb_desc_ring.tail_id")?,
            desc_size: size(vi, "prb_desc")?,
            state_var: offset(vi, "prb_desc.state_var")?,
            text_blk_lpos: offset(vi, "prb_desc.text_blk_lpos")?,
            lpos_begin: offset(vi, "prb_data_blk_lpos.begin")?,
            lpos_next: offset(vi, "prb_data_blk_lpos.next")?,
            info_size: size(vi, "printk_info")?,
            seq: offset(vi, "printk_info.seq")?,
            ts_nsec: offset(vi, "printk_info.ts_nsec")?,
            text_len: offset(vi, "printk_info.text_len")?,
            caller_id: offset(vi, "printk_info.caller_id")?,
            size_bits: offset(vi, "prb_data_ring.size_bits")?,
            data: offset(vi, "prb_data_ring.data")?,
            counter: offset(vi, "atomic_long_t.counter")?,
            dev_info: dev_info.filter(|&(d, s, sl, dv, dl)| {
                sl <= 256
                    && dl <= 256
                    && [(s, sl), (dv, dl)].iter().all(|&(o, w)| {
                        d.checked_add(o)
                            .and_then(|v| v.checked_add(w))
                            .is_some_and(|end| end <= 0x1000)
                    })
            }),
        };
        let p = l.prb_size;
        fits(
            "printk_ringbuffer.desc_ring + prb_desc_ring.count_bits",
            l.desc_ring.saturating_add(l.count_bits),
            4,
            p,
            "printk_ringbuffer",
        )?;
        fits(
            "printk_ringbuffer.desc_ring + prb_desc_ring.descs",
            l.desc_ring.saturating_add(l.descs),
            8,
            p,
            "printk_ringbuffer",
        )?;
        fits(
            "printk_ringbuffer.desc_ring + prb_desc_ring.infos",
            l.desc_ring.saturating_add(l.infos),
            8,
            p,
            "printk_ringbuffer",
        )?;
        fits(
            "printk_ringbuffer.desc_ring + prb_desc_ring.head_id",
            l.desc_ring
                .saturating_add(l.head_id)
                .saturating_add(l.counter),
            8,
            p,
            "printk_ringbuffer",
        )?;
        fits(
            "printk_ringbuffer.desc_ring + prb_desc_ring.tail_id",
            l.desc_ring
                .saturating_add(l.tail_id)
                .saturating_add(l.counter),
            8,
            p,
            "printk_ringbuffer",
        )?;
        fits(
            "printk_ringbuffer.text_data_ring + prb_data_ring.size_bits",
            l.text_data_ring.saturating_add(l.size_bits),
            4,
            p,
            "printk_ringbuffer",
        )?;
        fits(
            "printk_ringbuffer.text_data_ring + prb_data_ring.data",
            l.text_data_ring.saturating_add(l.data),
            8,
            p,
            "printk_ringbuffer",
        )?;
        let d = l.desc_size;
        fits(
            "prb_desc.state_var",
            l.state_var.saturating_add(l.counter),
            8,
            d,
            "prb_desc",
        )?;
        fits(
            "prb_desc.text_blk_lpos + prb_data_blk_lpos.begin",
            l.text_blk_lpos.saturating_add(l.lpos_begin),
            8,
            d,
            "prb_desc",
        )?;
        fits(
            "prb_desc.text_blk_lpos + prb_data_blk_lpos.next",
            l.text_blk_lpos.saturating_add(l.lpos_next),
            8,
            d,
            "prb_desc",
        )?;
        let i = l.info_size;
        fits("printk_info.seq", l.seq, 8, i, "printk_info")?;
        fits("printk_info.ts_nsec", l.ts_nsec, 8, i, "printk_info")?;
        fits("printk_info.text_len", l.text_len, 2, i, "printk_info")?;
        fits("printk_info.caller_id", l.caller_id, 4, i, "printk_info")?;
        Ok(l)
    }
}

fn u64_at(b: &[u8], off: u64) -> u64 {
    crash_payload::le::u64_at(b, off as usize).unwrap_or(0)
}
fn u32_at(b: &[u8], off: u64) -> u32 {
    crash_payload::le::u32_at(b, off as usize).unwrap_or(0)
}
fn u16_at(b: &[u8], off: u64) -> u16 {
    crash_payload::le::u16_at(b, off as usize).unwrap_or(0)
}

/// Reads kernel data that is either in the linear map (memblock
/// allocations: the dynamic ring) or in the kernel image (the static ring,
/// `__log_buf`): the normal translation first, then `__pa_symbol`.
fn read_kernel(
    mem: &dyn PhysMem,
    arm: &Arm64,
    what: &'static str,
    addr: VirtAddr,
    buf: &mut [u8],
) -> Result<(), PrintkError> {
    match arm.read_virt(mem, addr, buf) {
        Ok(()) => Ok(()),
        Err(first) => {
            if arm.is_linear(addr) || arm.read_symbol(mem, addr, buf).is_err() {
                Err(PrintkError::Read {
                    what,
                    addr,
                    err: first,
                })
            } else {
                Ok(())
            }
        }
    }
}

fn c_string(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    (end > 0).then(|| String::from_utf8_lossy(&b[..end]).into_owned())
}

/// Reads every committed record of the ringbuffer, oldest first.
pub fn read_log(
    mem: &dyn PhysMem,
    arm: &Arm64,
    vi: &VmcoreInfo<'_>,
) -> Result<Vec<LogRecord>, PrintkError> {
    let prb_sym = match vi.symbol("prb") {
        Some(Ok(v)) => VirtAddr(v),
        Some(Err(e)) => {
            return Err(PrintkError::BadValue {
                key: "SYMBOL(prb)".into(),
                why: e.to_string(),
            })
        }
        None if vi.symbol("log_buf").is_some() => return Err(PrintkError::LegacyLogBuf),
        None => return Err(PrintkError::Missing("SYMBOL(prb)".into())),
    };
    let l = Layout::from_vmcoreinfo(vi)?;
    let mut p8 = [0u8; 8];
    read_kernel(mem, arm, "the prb pointer", prb_sym, &mut p8)?;
    let prb = VirtAddr(u64::from_le_bytes(p8));
    let mut rb = vec![0u8; l.prb_size as usize];
    read_kernel(mem, arm, "struct printk_ringbuffer", prb, &mut rb)?;

    let dr = l.desc_ring;
    let count_bits = u32_at(&rb, dr + l.count_bits);
    if count_bits > MAX_COUNT_BITS {
        return Err(PrintkError::CountBits {
            prb,
            value: count_bits,
            max: MAX_COUNT_BITS,
        });
    }
    let count = 1u64 << count_bits;
    let descs = VirtAddr(u64_at(&rb, dr + l.descs));
    let infos = VirtAddr(u64_at(&rb, dr + l.infos));
    let head = u64_at(&rb, dr + l.head_id + l.counter);
    let tail = u64_at(&rb, dr + l.tail_id + l.counter);

    let tr = l.text_data_ring;
    let size_bits = u32_at(&rb, tr + l.size_bits);
    if !(3..=MAX_SIZE_BITS).contains(&size_bits) {
        return Err(PrintkError::SizeBits {
            prb,
            value: size_bits,
            max: MAX_SIZE_BITS,
        });
    }
    let ring_size = 1u64 << size_bits;
    let data = VirtAddr(u64_at(&rb, tr + l.data));

    let span = head.wrapping_sub(tail) & DESC_ID_MASK;
    if span >= count {
        return Err(PrintkError::IdRange {
            prb,
            tail,
            head,
            count,
        });
    }

    // Only the span+1 records between tail and head are read, one by one:
    // the arrays' sizes come from the dump and are never allocated whole.
    let mut text = vec![0u8; ring_size as usize];
    read_kernel(mem, arm, "the printk text ring", data, &mut text)?;

    let mut out = Vec::new();
    let mut desc = vec![0u8; l.desc_size as usize];
    let mut info = vec![0u8; l.info_size as usize];
    let mut id = tail;
    for _ in 0..=span {
        let idx = id % count;
        let at = |base: VirtAddr, size: u64| VirtAddr(base.0.wrapping_add(idx.wrapping_mul(size)));
        read_kernel(mem, arm, "a prb_desc", at(descs, l.desc_size), &mut desc)?;
        read_kernel(mem, arm, "a printk_info", at(infos, l.info_size), &mut info)?;
        let (desc, info) = (&desc[..], &info[..]);
        let sv = u64_at(desc, l.state_var + l.counter);
        let state = sv >> DESC_FLAGS_SHIFT;
        if sv & DESC_ID_MASK == id && (state == DESC_COMMITTED || state == DESC_FINALIZED) {
            out.push(record(&l, id, desc, info, &text, size_bits));
        }
        id = id.wrapping_add(1) & DESC_ID_MASK;
    }
    Ok(out)
}

/// The text of a block as the kernel's `get_data()`/`copy_data()` read it
/// (`kernel/printk/printk_ringbuffer.c`), or why the kernel would skip it.
fn kernel_text(
    begin: u64,
    next: u64,
    len: u16,
    text: &[u8],
    size_bits: u32,
) -> Result<Vec<u8>, String> {
    let size = 1u64 << size_bits;
    let wraps = |lpos: u64| lpos >> size_bits;
    if begin & 1 == 1 && next & 1 == 1 {
        return Ok(Vec::new()); // data-less
    }
    let (start, data_size) = if wraps(begin) == wraps(next) && begin < next {
        (begin % size, next - begin)
    } else if wraps(begin.wrapping_add(size)) == wraps(next) {
        (0, next % size)
    } else {
        return Err(format!(
            "illegal data block lpos begin {begin:#x} next {next:#x}"
        ));
    };
    if !begin.is_multiple_of(8) || !next.is_multiple_of(8) || data_size < 8 {
        return Err(format!(
            "malformed data block lpos begin {begin:#x} next {next:#x}"
        ));
    }
    let data_size = data_size - 8;
    if data_size < u64::from(len) {
        return Err(format!(
            "text_len {len} exceeds the {data_size}-byte data block"
        ));
    }
    let from = (start + 8) as usize;
    text.get(from..from + usize::from(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format!("data block at {start:#x} runs past the {size}-byte ring"))
}

/// The text `vmcore-dmesg` 2.0.25 prints for a block (`dump_record`).
fn vmcore_dmesg_text(begin: u64, next: u64, mut len: u16, text: &[u8], ring_size: u64) -> Vec<u8> {
    let mut begin = begin % ring_size;
    let next = next % ring_size;
    if begin == next {
        return Vec::new();
    }
    if begin > next {
        begin = 0;
    }
    begin += 8;
    // `if (next - begin < len) len = next - begin;` on uint64_t, stored
    // into an unsigned short.
    let room = next.wrapping_sub(begin);
    if room < u64::from(len) {
        len = room as u16;
    }
    // vmcore-dmesg would read past its buffer here; stop at the ring's end.
    let start = begin.min(ring_size) as usize;
    let end = begin.saturating_add(u64::from(len)).min(ring_size) as usize;
    text[start..end].to_vec()
}

/// One record: kernel view and `vmcore-dmesg` view of its text.
fn record(l: &Layout, id: u64, desc: &[u8], info: &[u8], text: &[u8], size_bits: u32) -> LogRecord {
    let begin = u64_at(desc, l.text_blk_lpos + l.lpos_begin);
    let next = u64_at(desc, l.text_blk_lpos + l.lpos_next);
    let len = u16_at(info, l.text_len);
    let (kernel, problem) = match kernel_text(begin, next, len, text, size_bits) {
        Ok(t) => (t, None),
        Err(p) => (Vec::new(), Some(p)),
    };
    let compat = vmcore_dmesg_text(begin, next, len, text, 1u64 << size_bits);
    let dev = |off: u64, len: u64| {
        info.get(off as usize..off.saturating_add(len) as usize)
            .and_then(c_string)
    };
    let (subsystem, device) = match l.dev_info {
        Some((d, s, sl, dv, dl)) => (dev(d + s, sl), dev(d + dv, dl)),
        None => (None, None),
    };
    LogRecord {
        id,
        seq: u64_at(info, l.seq),
        ts_nsec: u64_at(info, l.ts_nsec),
        caller_id: u32_at(info, l.caller_id),
        vmcore_dmesg_text: (compat != kernel).then_some(compat),
        text: kernel,
        problem,
        subsystem,
        device,
    }
}

/// `isprint(c) || isspace(c)` in the C locale.
fn printable(c: u8) -> bool {
    (0x20..0x7f).contains(&c) || (0x09..=0x0d).contains(&c)
}

/// Appends one record as `vmcore-dmesg` prints it (its view of the text:
/// [`LogRecord::vmcore_dmesg_text`] when set).
pub fn format_record(out: &mut String, r: &LogRecord) {
    use std::fmt::Write;
    let sec = r.ts_nsec / 1_000_000_000;
    let usec = (r.ts_nsec % 1_000_000_000) / 1000;
    let _ = write!(out, "[{sec:5}.{usec:06}] ");
    for &c in r.vmcore_dmesg_text.as_ref().unwrap_or(&r.text) {
        if printable(c) {
            out.push(char::from(c));
        } else {
            let _ = write!(out, "\\x{c:02x}");
        }
    }
    out.push('\n');
}

/// The whole log as kexec-tools' `vmcore-dmesg` 2.0.25 prints it.
pub fn format_vmcore_dmesg(records: &[LogRecord]) -> String {
    let mut out = String::with_capacity(records.iter().map(|r| r.text.len() + 16).sum());
    for r in records {
        format_record(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm64::tests::{arm64, vmcoreinfo_text};
    use crate::mem::FakeMem;

    /// VMCOREINFO lines of Linux 6.1 arm64 (`log_buf_vmcoreinfo_setup`),
    /// with the structure layout the builder writes.
    fn layout_lines(prb_sym: u64) -> String {
        format!(
            "SYMBOL(prb)={prb_sym:x}\nSIZE(printk_ringbuffer)=80\n\
             OFFSET(printk_ringbuffer.desc_ring)=0\nOFFSET(printk_ringbuffer.text_data_ring)=40\n\
             OFFSET(printk_ringbuffer.fail)=72\nSIZE(prb_desc_ring)=40\n\
             OFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=8\n\
             OFFSET(prb_desc_ring.infos)=16\nOFFSET(prb_desc_ring.head_id)=24\n\
             OFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\n\
             OFFSET(prb_desc.state_var)=0\nOFFSET(prb_desc.text_blk_lpos)=8\n\
             SIZE(prb_data_blk_lpos)=16\nOFFSET(prb_data_blk_lpos.begin)=0\n\
             OFFSET(prb_data_blk_lpos.next)=8\nSIZE(printk_info)=88\n\
             OFFSET(printk_info.seq)=0\nOFFSET(printk_info.ts_nsec)=8\n\
             OFFSET(printk_info.text_len)=16\nOFFSET(printk_info.caller_id)=20\n\
             OFFSET(printk_info.dev_info)=24\nSIZE(dev_printk_info)=64\n\
             OFFSET(dev_printk_info.subsystem)=0\nLENGTH(printk_info_subsystem)=16\n\
             OFFSET(dev_printk_info.device)=16\nLENGTH(printk_info_device)=48\n\
             SIZE(prb_data_ring)=32\nOFFSET(prb_data_ring.size_bits)=0\n\
             OFFSET(prb_data_ring.data)=8\nOFFSET(prb_data_ring.head_lpos)=16\n\
             OFFSET(prb_data_ring.tail_lpos)=24\nSIZE(atomic_long_t)=8\n\
             OFFSET(atomic_long_t.counter)=0\n"
        )
    }

    /// A record to write: its state and data.
    struct Rec {
        ts: u64,
        text: &'static [u8],
        state: u64,
        /// Data-less (FAILED_LPOS) instead of a text block.
        dataless: bool,
    }

    fn rec(ts: u64, text: &'static [u8]) -> Rec {
        Rec {
            ts,
            text,
            state: DESC_FINALIZED,
            dataless: false,
        }
    }

    /// Builds a ringbuffer the way `prb_reserve()` lays it out: ids from
    /// `first_id`, data blocks of `8-byte id + text` aligned to 8 from lpos
    /// `first_lpos`, a block that would cross the ring's end placed at its
    /// start with `begin` left in the previous wrap.
    struct Ring {
        count_bits: u32,
        size_bits: u32,
        first_id: u64,
        first_lpos: u64,
        recs: Vec<Rec>,
    }

    /// Addresses: the `prb` pointer and struct in the image; descriptors,
    /// infos and text in the linear map.
    const PRB_SYM: u64 = 0xffff_8000_0a10_0000;
    const PRB_STRUCT: u64 = 0xffff_8000_0a10_0100;
    const DESCS: u64 = 0xffff_0000_1000_0000;
    const INFOS: u64 = 0xffff_0000_1100_0000;
    const TEXT: u64 = 0xffff_0000_1200_0000;

    impl Ring {
        fn build(&self, a: &Arm64) -> (FakeMem, String) {
            let count = 1u64 << self.count_bits;
            let size = 1u64 << self.size_bits;
            let mut descs = vec![0u8; (count * 24) as usize];
            let mut infos = vec![0u8; (count * 88) as usize];
            let mut text = vec![0u8; size as usize];
            let mut lpos = self.first_lpos;
            let mut id = self.first_id;
            for (n, r) in self.recs.iter().enumerate() {
                let i = (id % count) as usize;
                let d = &mut descs[i * 24..i * 24 + 24];
                d[0..8].copy_from_slice(&((r.state << 62) | id).to_le_bytes());
                let (begin, next) = if r.dataless {
                    (1u64, 1u64)
                } else {
                    // get_next_lpos(): a block crossing into the next wrap
                    // is stored at the ring's start.
                    let blk = (r.text.len() as u64).next_multiple_of(8) + 8;
                    let wraps = |v: u64| v >> self.size_bits;
                    let begin = lpos;
                    let mut next = lpos.wrapping_add(blk);
                    let mut at = (begin % size) as usize;
                    if wraps(begin) != wraps(next) {
                        next = (next & !(size - 1)).wrapping_add(blk);
                        at = 0;
                    }
                    text[at..at + 8].copy_from_slice(&id.to_le_bytes());
                    text[at + 8..at + 8 + r.text.len()].copy_from_slice(r.text);
                    lpos = next;
                    (begin, next)
                };
                d[8..16].copy_from_slice(&begin.to_le_bytes());
                d[16..24].copy_from_slice(&next.to_le_bytes());
                let inf = &mut infos[i * 88..i * 88 + 88];
                inf[0..8].copy_from_slice(&(n as u64 + 100).to_le_bytes());
                inf[8..16].copy_from_slice(&r.ts.to_le_bytes());
                inf[16..18].copy_from_slice(&(r.text.len() as u16).to_le_bytes());
                inf[20..24].copy_from_slice(&(0x8000_0000u32 | n as u32).to_le_bytes());
                if n == 0 {
                    inf[24..24 + 8].copy_from_slice(b"virtio\0\0");
                    inf[40..40 + 10].copy_from_slice(b"+virtio:0\0");
                }
                id = (id + 1) & DESC_ID_MASK;
            }
            let head = id.wrapping_sub(1) & DESC_ID_MASK;
            let mut rb = vec![0u8; 80];
            rb[0..4].copy_from_slice(&self.count_bits.to_le_bytes());
            rb[8..16].copy_from_slice(&DESCS.to_le_bytes());
            rb[16..24].copy_from_slice(&INFOS.to_le_bytes());
            rb[24..32].copy_from_slice(&head.to_le_bytes());
            rb[32..40].copy_from_slice(&self.first_id.to_le_bytes());
            rb[40..44].copy_from_slice(&self.size_bits.to_le_bytes());
            rb[48..56].copy_from_slice(&TEXT.to_le_bytes());
            let mut mem = FakeMem::default();
            let lm = |va: u64| a.lm_to_phys(VirtAddr(va)).unwrap();
            let img = |va: u64| a.pa_symbol(VirtAddr(va)).unwrap();
            mem.put(img(PRB_SYM), &PRB_STRUCT.to_le_bytes());
            mem.put(img(PRB_STRUCT), &rb);
            mem.put(lm(DESCS), &descs);
            mem.put(lm(INFOS), &infos);
            mem.put(lm(TEXT), &text);
            (mem, vmcoreinfo_text(0) + &layout_lines(PRB_SYM))
        }

        fn read(&self) -> Result<Vec<LogRecord>, PrintkError> {
            let a = arm64(0);
            let (mem, vi) = self.build(&a);
            read_log(&mem, &a, &VmcoreInfo::parse(vi.as_bytes()).unwrap())
        }
    }

    #[test]
    fn reads_and_formats_like_vmcore_dmesg() {
        let ring = Ring {
            count_bits: 3,
            size_bits: 8,
            first_id: 0x3fff_ffff_ffff_fffe,
            // BLK0_LPOS is -(size); start 64 bytes before the first wrap so
            // the first (64-byte) block crosses it.
            first_lpos: 0u64.wrapping_sub(64),
            recs: vec![
                rec(
                    0,
                    b"Booting Linux on physical CPU 0x0000000000 [0x411fd070]",
                ),
                rec(1_234_567_891, b"tab\there, bell\x07, \xc3\xa9, del\x7f"),
                Rec {
                    ts: 2_000_000_000,
                    text: b"",
                    state: DESC_FINALIZED,
                    dataless: true,
                },
                Rec {
                    ts: 3_000_000_000,
                    text: b"reserved",
                    state: 0,
                    dataless: false,
                },
                rec(
                    123_456_000_999_999,
                    b"Kernel panic - not syncing: sysrq\nsecond line",
                ),
            ],
        };
        let recs = ring.read().unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].subsystem.as_deref(), Some("virtio"));
        assert_eq!(recs[0].device.as_deref(), Some("+virtio:0"));
        assert_eq!(recs[1].caller_id, 0x8000_0001);
        assert_eq!(recs[1].seq, 101);
        // The first block crosses the wrap: stored at the ring's start with
        // begin -64 and next 64; both readers agree on it.
        assert!(recs
            .iter()
            .all(|r| r.vmcore_dmesg_text.is_none() && r.problem.is_none()));
        assert_eq!(
            format_vmcore_dmesg(&recs),
            "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]\n\
             [    1.234567] tab\there, bell\\x07, \\xc3\\xa9, del\\x7f\n\
             [    2.000000] \n\
             [123456.000999] Kernel panic - not syncing: sysrq\nsecond line\n"
        );
    }

    #[test]
    fn half_ring_block_prints_empty_like_vmcore_dmesg() {
        // A 64-byte block in a 128-byte ring starting at lpos -64: stored at
        // the start with next = 64, so begin and next are equal modulo the
        // size. The kernel reads the text; vmcore-dmesg prints an empty line.
        let ring = Ring {
            count_bits: 2,
            size_bits: 7,
            first_id: 0,
            first_lpos: 0u64.wrapping_sub(64),
            recs: vec![rec(
                7_000,
                b"Booting Linux on physical CPU 0x0000000000 [0x411fd070]",
            )],
        };
        let recs = ring.read().unwrap();
        assert_eq!(
            recs[0].text_lossy(),
            "Booting Linux on physical CPU 0x0000000000 [0x411fd070]"
        );
        assert_eq!(recs[0].vmcore_dmesg_text, Some(Vec::new()));
        assert_eq!(format_vmcore_dmesg(&recs), "[    0.000007] \n");
    }

    #[test]
    fn truncated_text_follows_block_end() {
        let ring = Ring {
            count_bits: 2,
            size_bits: 8,
            first_id: 0,
            first_lpos: 0,
            recs: vec![rec(5, b"abcdefghij")],
        };
        let a = arm64(0);
        let (mut mem, vi) = ring.build(&a);
        // text_len larger than the block: cut at `next`.
        let info0 = a.lm_to_phys(VirtAddr(INFOS)).unwrap();
        let mut infos = vec![0u8; 4 * 88];
        infos[8..16].copy_from_slice(&5u64.to_le_bytes());
        infos[16..18].copy_from_slice(&200u16.to_le_bytes());
        mem.put(info0, &infos);
        let recs = read_log(&mem, &a, &VmcoreInfo::parse(vi.as_bytes()).unwrap()).unwrap();
        assert_eq!(recs[0].text, b"");
        assert_eq!(
            recs[0].problem.as_deref(),
            Some("text_len 200 exceeds the 16-byte data block")
        );
        assert_eq!(
            recs[0].vmcore_dmesg_text.as_deref(),
            Some(&b"abcdefghij\0\0\0\0\0\0"[..])
        );
        assert_eq!(
            format_vmcore_dmesg(&recs),
            "[    0.000000] abcdefghij\\x00\\x00\\x00\\x00\\x00\\x00\n"
        );
    }

    #[test]
    fn count_bits_60_is_refused() {
        let ring = Ring {
            count_bits: 60,
            size_bits: 7,
            first_id: 0,
            first_lpos: 0,
            recs: vec![],
        };
        let a = arm64(0);
        let ring_ok = Ring {
            count_bits: 2,
            ..ring
        };
        let (mut mem, vi) = ring_ok.build(&a);
        let mut rb = vec![0u8; 80];
        rb[0..4].copy_from_slice(&60u32.to_le_bytes());
        rb[40..44].copy_from_slice(&7u32.to_le_bytes());
        mem.put(a.pa_symbol(VirtAddr(PRB_STRUCT)).unwrap(), &rb);
        let e = read_log(&mem, &a, &VmcoreInfo::parse(vi.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(
            e,
            PrintkError::CountBits {
                prb: VirtAddr(PRB_STRUCT),
                value: 60,
                max: 26
            }
        );
        assert_eq!(
            e.to_string(),
            "printk_ringbuffer at 0xffff80000a100100: prb_desc_ring.count_bits is 60: expected at most 26"
        );
        rb[0..4].copy_from_slice(&2u32.to_le_bytes());
        rb[40..44].copy_from_slice(&40u32.to_le_bytes());
        mem.put(a.pa_symbol(VirtAddr(PRB_STRUCT)).unwrap(), &rb);
        let e = read_log(&mem, &a, &VmcoreInfo::parse(vi.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(
            e,
            PrintkError::SizeBits {
                prb: VirtAddr(PRB_STRUCT),
                value: 40,
                max: 31
            }
        );
        // head far beyond tail.
        rb[40..44].copy_from_slice(&7u32.to_le_bytes());
        rb[24..32].copy_from_slice(&1000u64.to_le_bytes());
        mem.put(a.pa_symbol(VirtAddr(PRB_STRUCT)).unwrap(), &rb);
        let e = read_log(&mem, &a, &VmcoreInfo::parse(vi.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(
            e,
            PrintkError::IdRange {
                prb: VirtAddr(PRB_STRUCT),
                tail: 0,
                head: 1000,
                count: 4
            }
        );
    }

    #[test]
    fn vmcoreinfo_problems() {
        let a = arm64(0);
        let ring = Ring {
            count_bits: 2,
            size_bits: 7,
            first_id: 0,
            first_lpos: 0,
            recs: vec![rec(1, b"x")],
        };
        let (mem, vi) = ring.build(&a);
        let no_prb = vi.replace("SYMBOL(prb)", "SYMBOL(log_buf)");
        assert_eq!(
            read_log(&mem, &a, &VmcoreInfo::parse(no_prb.as_bytes()).unwrap()).unwrap_err(),
            PrintkError::LegacyLogBuf
        );
        let missing = vi.replace("OFFSET(printk_info.ts_nsec)", "OFFSET(printk_info.tsx)");
        assert_eq!(
            read_log(&mem, &a, &VmcoreInfo::parse(missing.as_bytes()).unwrap()).unwrap_err(),
            PrintkError::Missing("OFFSET(printk_info.ts_nsec)".into())
        );
        let bad = vi.replace(
            "OFFSET(printk_info.caller_id)=20",
            "OFFSET(printk_info.caller_id)=86",
        );
        assert_eq!(
            read_log(&mem, &a, &VmcoreInfo::parse(bad.as_bytes()).unwrap()).unwrap_err().to_string(),
            "VMCOREINFO OFFSET(printk_info.caller_id)=86: a 4-byte field there does not fit in the 88-byte printk_info"
        );
        let e = read_log(
            &FakeMem::default(),
            &a,
            &VmcoreInfo::parse(vi.as_bytes()).unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                PrintkError::Read {
                    what: "the prb pointer",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn image_ring_read_through_pa_symbol() {
        // printk_rb_static's arrays live in the image; with no page tables
        // in the dump, __pa_symbol still reads them.
        let a = arm64(0);
        let mut mem = FakeMem::default();
        let img = |va: u64| a.pa_symbol(VirtAddr(va)).unwrap();
        let descs = 0xffff_8000_0a20_0000u64;
        let infos = 0xffff_8000_0a30_0000u64;
        let text = 0xffff_8000_0a40_0000u64;
        let mut rb = vec![0u8; 80];
        rb[0..4].copy_from_slice(&1u32.to_le_bytes());
        rb[8..16].copy_from_slice(&descs.to_le_bytes());
        rb[16..24].copy_from_slice(&infos.to_le_bytes());
        rb[24..32].copy_from_slice(&0u64.to_le_bytes());
        rb[32..40].copy_from_slice(&0u64.to_le_bytes());
        rb[40..44].copy_from_slice(&5u32.to_le_bytes());
        rb[48..56].copy_from_slice(&text.to_le_bytes());
        mem.put(img(PRB_SYM), &PRB_STRUCT.to_le_bytes());
        mem.put(img(PRB_STRUCT), &rb);
        let mut d = vec![0u8; 48];
        d[0..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        d[16..24].copy_from_slice(&16u64.to_le_bytes());
        mem.put(img(descs), &d);
        let mut i = vec![0u8; 176];
        i[16..18].copy_from_slice(&2u16.to_le_bytes());
        mem.put(img(infos), &i);
        let mut t = vec![0u8; 32];
        t[8..10].copy_from_slice(b"hi");
        mem.put(img(text), &t);
        let vi = vmcoreinfo_text(0) + &layout_lines(PRB_SYM);
        let recs = read_log(&mem, &a, &VmcoreInfo::parse(vi.as_bytes()).unwrap()).unwrap();
        assert_eq!(format_vmcore_dmesg(&recs), "[    0.000000] hi\n");
    }
}
