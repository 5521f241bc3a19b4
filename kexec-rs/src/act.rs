//! The act: turns a plan (or a file load) into exactly one syscall.

use crate::plan::{LoadKind, Plan};
use crate::sys::{
    explain, Call, KexecSys, LoadSegment, SysError, KEXEC_ARCH_AARCH64, KEXEC_ARCH_X86_64,
    KEXEC_FILE_NO_INITRAMFS, KEXEC_FILE_ON_CRASH, KEXEC_FILE_UNLOAD, KEXEC_ON_CRASH,
};

/// `KEXEC_ARCH_*` for an architecture name (`std::env::consts::ARCH` spelling).
pub fn arch_flag(arch: &str) -> Option<u64> {
    match arch {
        "aarch64" => Some(KEXEC_ARCH_AARCH64),
        "x86_64" => Some(KEXEC_ARCH_X86_64),
        _ => None,
    }
}

/// `kexec_load` flags for a plan.
pub fn load_flags(plan: &Plan) -> Option<u64> {
    let crash = if plan.kind == LoadKind::Crash {
        KEXEC_ON_CRASH
    } else {
        0
    };
    Some(crash | arch_flag(plan.arch)?)
}

/// Loads a plan with `kexec_load`. Refuses a plan for another architecture
/// before calling anything.
pub fn load_plan(
    sys: &mut dyn KexecSys,
    plan: &Plan,
    host_arch: &str,
    lockdown: Option<String>,
) -> Result<(), SysError> {
    let call = Call::KexecLoad;
    let flags = match load_flags(plan) {
        Some(f) if plan.arch == host_arch => f,
        _ => {
            return Err(SysError::WrongArch {
                call,
                plan: plan.arch.to_string(),
                host: host_arch.to_string(),
            })
        }
    };
    let segs: Vec<LoadSegment<'_>> = plan
        .segments
        .iter()
        .map(|s| LoadSegment {
            bytes: &s.bytes,
            mem: s.mem,
            memsz: s.memsz,
        })
        .collect();
    sys.kexec_load(plan.entry, &segs, flags)
        .map_err(|e| explain(call, e, plan.kind == LoadKind::Crash, lockdown))
}

/// Loads a raw Image with `kexec_file_load`.
pub fn load_file(
    sys: &mut dyn KexecSys,
    kind: LoadKind,
    raw_image: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    lockdown: Option<String>,
) -> Result<(), SysError> {
    let mut flags = if kind == LoadKind::Crash {
        KEXEC_FILE_ON_CRASH
    } else {
        0
    };
    if initrd.is_none() {
        flags |= KEXEC_FILE_NO_INITRAMFS;
    }
    sys.kexec_file_load(Some(raw_image), initrd, cmdline, flags)
        .map_err(|e| explain(Call::KexecFileLoad, e, kind == LoadKind::Crash, lockdown))
}

/// Unloads with `kexec_file_load(KEXEC_FILE_UNLOAD)` when `file`, else
/// `kexec_load` with no segments.
pub fn unload(
    sys: &mut dyn KexecSys,
    kind: LoadKind,
    file: bool,
    host_arch: &str,
    lockdown: Option<String>,
) -> Result<(), SysError> {
    let crash = kind == LoadKind::Crash;
    if file {
        let flags = KEXEC_FILE_UNLOAD | if crash { KEXEC_FILE_ON_CRASH } else { 0 };
        return sys
            .kexec_file_load(None, None, "", flags)
            .map_err(|e| explain(Call::KexecFileLoad, e, crash, lockdown));
    }
    let flags = arch_flag(host_arch).unwrap_or(0) | if crash { KEXEC_ON_CRASH } else { 0 };
    sys.kexec_load(crash_payload::PhysAddr(0), &[], flags)
        .map_err(|e| explain(Call::KexecLoad, e, crash, lockdown))
}

/// Reboots into the loaded kernel; returns only on failure.
pub fn exec(sys: &mut dyn KexecSys) -> Result<(), SysError> {
    sys.reboot_kexec()
        .map_err(|e| explain(Call::Reboot, e, false, None))
}
