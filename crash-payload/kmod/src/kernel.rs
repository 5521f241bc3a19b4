//! The kernel primitives this crate uses, offered by the C glue (`glue.c`),
//! each behind a safe wrapper. The `extern "C"` names are `sdei_stop_glue_*`.
#![allow(unsafe_code)]

use crash_payload::crash_note::CRASH_NOTE_BUF_SIZE;
use crash_payload::prstatus::ELF_NGREG;

/// printk levels, as the glue maps them (`KERN_EMERG` .. `KERN_INFO`).
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum Level {
    /// `KERN_EMERG`: the panic path's lines.
    Emerg = 0,
    /// `KERN_ERR`.
    Err = 3,
    /// `KERN_INFO`.
    Info = 6,
}

extern "C" {
    fn sdei_stop_glue_print(level: u32, msg: *const u8, len: usize);
    fn sdei_stop_glue_cpu_online(cpu: u32) -> bool;
    fn sdei_stop_glue_set_offline(cpu: u32);
    fn sdei_stop_glue_current_pid() -> i32;
    fn sdei_stop_glue_show_cpu(cpu: u32, how: *const u8, how_len: usize, regs: *const u64, pid: i32);
    fn sdei_stop_glue_halt(msg: *const u8, len: usize) -> !;
}

/// Prints `msg` with the module's prefix at `level`.
pub fn print(level: Level, msg: &[u8]) {
    // SAFETY: `msg` is a valid slice for the call; the glue prints it with
    // `%.*s` and keeps no reference.
    unsafe { sdei_stop_glue_print(level as u32, msg.as_ptr(), msg.len()) }
}

/// `cpu_online(cpu)`; false for CPUs beyond `nr_cpu_ids`.
pub fn cpu_online(cpu: usize) -> bool {
    let Ok(c) = u32::try_from(cpu) else { return false };
    // SAFETY: the glue range-checks `cpu` and reads the online mask.
    unsafe { sdei_stop_glue_cpu_online(c) }
}

/// `set_cpu_online(cpu, false)` after a full barrier: the stop
/// acknowledgement, ordered after this CPU's note.
pub fn set_offline(cpu: usize) {
    let Ok(c) = u32::try_from(cpu) else { return };
    // SAFETY: the glue range-checks `cpu`; clearing an online bit is the
    // stop acknowledgement the protocol defines.
    unsafe { sdei_stop_glue_set_offline(c) }
}

/// `current->pid` (in Linux's SDEI callback: the interrupted task).
pub fn current_pid() -> i32 {
    // SAFETY: no arguments; reads `current`.
    unsafe { sdei_stop_glue_current_pid() }
}

/// Prints one CPU's registers (`pr_reg`: x0..x30, sp, pc, pstate) with the
/// pc and lr symbolized (`%pS`).
pub fn show_cpu(cpu: usize, how: &str, pr_reg: &[u64; ELF_NGREG], pid: i32) {
    let Ok(c) = u32::try_from(cpu) else { return };
    // SAFETY: both pointers are valid for the call (34 u64s, `how.len()`
    // bytes); the glue only reads them.
    unsafe { sdei_stop_glue_show_cpu(c, how.as_ptr(), how.len(), pr_reg.as_ptr(), pid) }
}

/// Stops this CPU after printing `msg` (the Rust panic handler's end).
pub fn halt(msg: &[u8]) -> ! {
    // SAFETY: `msg` is valid for the call; the glue never returns.
    unsafe { sdei_stop_glue_halt(msg.as_ptr(), msg.len()) }
}

/// Reads a crash-notes buffer. Another CPU may be writing it (the SDEI
/// handler on its own buffer), so the copy is volatile, one u64 at a time;
/// a torn copy fails `crash_note::parse` and reads as "no note yet".
pub fn read_note(p: *const u8) -> [u8; CRASH_NOTE_BUF_SIZE] {
    let mut out = [0u8; CRASH_NOTE_BUF_SIZE];
    let words = p.cast::<u64>();
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        // SAFETY: `p` was registered by `sdei_stop_set_note`: a live,
        // 8-aligned kernel buffer of CRASH_NOTE_BUF_SIZE (424 = 53 * 8) bytes
        // that is never freed while the kernel runs.
        let w = unsafe { words.add(i).read_volatile() };
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Writes a crash-notes buffer (only the owning CPU does, from its handler).
pub fn write_note(p: *mut u8, note: &[u8; CRASH_NOTE_BUF_SIZE]) {
    let words = p.cast::<u64>();
    for (i, chunk) in note.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        // SAFETY: as in `read_note`; the buffer belongs to this CPU and no
        // other writer touches it during a crash.
        unsafe { words.add(i).write_volatile(u64::from_le_bytes(w)) };
    }
}
