//! `kexec-rs kdump status`: will a crash now capture every CPU?
//!
//! Every CPU is captured when: a crash kernel is loaded; the reservation
//! is at least the estimate; and the CPUs the stop IPI cannot reach (DAIF
//! masked) are stopped by the SDEI rung, which needs SDEI in firmware, a
//! rung (the kernel's own, `CONFIG_ARM_SDEI_NMI`, or `sdei-stop.ko`
//! loaded) and, for the module, `crash_kexec_post_notifiers` (its panic
//! notifier runs only then). Pseudo-NMI reaches CPUs with only IRQs
//! masked; it is reported, and counts against the verdict only through the
//! SDEI rung it would back up.

use serde::Serialize;

use crate::iomem::Iomem;
use crate::source::{
    HostSource, PROC_CMDLINE, PROC_IOMEM, SYS_KEXEC_CRASH_LOADED, SYS_KEXEC_CRASH_SIZE,
};

/// `/proc/sys/kernel/osrelease`.
pub const PROC_OSRELEASE: &str = "/proc/sys/kernel/osrelease";
/// The `crash_kexec_post_notifiers` parameter.
pub const SYS_POST_NOTIFIERS: &str = "/sys/module/kernel/parameters/crash_kexec_post_notifiers";
/// The SDEI firmware node's `compatible`, as procfs and sysfs show it.
pub const SDEI_COMPATIBLE: [&str; 2] = [
    "/proc/device-tree/firmware/sdei/compatible",
    "/sys/firmware/devicetree/base/firmware/sdei/compatible",
];
/// `sdei-stop.ko` loaded (`live`).
pub const SYS_SDEI_STOP_STATE: &str = "/sys/module/sdei_stop/initstate";
/// `/proc/kallsyms`.
pub const PROC_KALLSYMS: &str = "/proc/kallsyms";
/// Symbols of the kernel's own SDEI stop rung (`drivers/firmware/arm_sdei_nmi.c`),
/// the ones `sdei-stop.ko` itself refuses to load beside.
pub const KERNEL_RUNG_SYMBOLS: [&str; 3] = [
    "sdei_nmi_active",
    "sdei_nmi_stop_cpus",
    "sdei_nmi_trigger_cpumask_backtrace",
];

/// What was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// `uname -r`.
    pub release: String,
    /// `/sys/kernel/kexec_crash_loaded` is 1.
    pub crash_loaded: bool,
    /// Reservation bytes (`kexec_crash_size`, else iomem "Crash kernel").
    pub reservation: u64,
    /// `crash_kexec_post_notifiers` (None: unreadable).
    pub post_notifiers: Option<bool>,
    /// The DT has `/firmware/sdei` compatible `arm,sdei-1.0`.
    pub sdei_firmware: bool,
    /// The kernel has its own SDEI rung (kallsyms or config).
    pub kernel_rung: bool,
    /// `sdei-stop.ko` is loaded.
    pub module_loaded: bool,
    /// `irqchip.gicv3_pseudo_nmi=1` on the command line.
    pub pseudo_nmi_cmdline: bool,
    /// `CONFIG_ARM64_PSEUDO_NMI=y` (None: no config readable).
    pub pseudo_nmi_config: Option<bool>,
}

fn text(src: &dyn HostSource, p: &str, limit: usize) -> Option<String> {
    src.read(p, limit)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The kernel's build config (`/boot/config-<release>`), if readable.
pub fn kernel_config(src: &dyn HostSource, release: &str) -> Option<String> {
    text(src, &format!("/boot/config-{release}"), 4 << 20)
}

/// True when `config` sets `opt=y`.
pub fn config_set(config: &str, opt: &str) -> bool {
    config.lines().any(|l| {
        l.strip_prefix(opt)
            .and_then(|r| r.strip_prefix('='))
            .is_some_and(|v| v == "y")
    })
}

/// True when a `kallsyms` text names any of `syms`.
pub fn kallsyms_has(kallsyms: &str, syms: &[&str]) -> bool {
    kallsyms.lines().any(|l| {
        l.split_whitespace()
            .nth(2)
            .is_some_and(|n| syms.contains(&n))
    })
}

/// Reads the facts.
pub fn gather(src: &dyn HostSource) -> Facts {
    let release = text(src, PROC_OSRELEASE, 256)
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    let cmdline = text(src, PROC_CMDLINE, 1 << 16).unwrap_or_default();
    let config = kernel_config(src, &release);
    let reservation = text(src, SYS_KEXEC_CRASH_SIZE, 64)
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| {
            text(src, PROC_IOMEM, 1 << 20)
                .and_then(|t| Iomem::parse(&t).ok())
                .map_or(0, |io| {
                    io.crash_kernel().iter().filter_map(|r| r.size()).sum()
                })
        });
    let kallsyms = text(src, PROC_KALLSYMS, 64 << 20).unwrap_or_default();
    Facts {
        crash_loaded: text(src, SYS_KEXEC_CRASH_LOADED, 16).is_some_and(|t| t.trim() == "1"),
        reservation,
        post_notifiers: text(src, SYS_POST_NOTIFIERS, 16).map(|t| matches!(t.trim(), "Y" | "1")),
        sdei_firmware: SDEI_COMPATIBLE
            .iter()
            .filter_map(|p| src.read(p, 4096).ok())
            .any(|b| b.split(|&c| c == 0).any(|s| s == b"arm,sdei-1.0")),
        kernel_rung: kallsyms_has(&kallsyms, &KERNEL_RUNG_SYMBOLS)
            || config
                .as_deref()
                .is_some_and(|c| config_set(c, "CONFIG_ARM_SDEI_NMI")),
        module_loaded: text(src, SYS_SDEI_STOP_STATE, 64).is_some_and(|t| t.trim() == "live"),
        pseudo_nmi_cmdline: crate::cmdline::split_params(&cmdline)
            .contains(&"irqchip.gicv3_pseudo_nmi=1"),
        pseudo_nmi_config: config
            .as_deref()
            .map(|c| config_set(c, "CONFIG_ARM64_PSEUDO_NMI")),
        release,
    }
}

/// Why not every CPU would be captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// No crash kernel.
    NoCrashKernel,
    /// The reservation is under the estimate.
    ReservationTooSmall {
        /// Bytes reserved.
        have: u64,
        /// Bytes estimated.
        need: u64,
    },
    /// The estimate could not be made.
    NoEstimate {
        /// Why.
        why: String,
    },
    /// Firmware offers no SDEI.
    NoSdeiFirmware,
    /// Neither the kernel's rung nor the module.
    NoSdeiRung,
    /// The module's notifier would not run.
    PostNotifiersOff,
    /// No pseudo-NMI.
    NoPseudoNmi {
        /// On the command line.
        cmdline: bool,
        /// In the kernel config (`None` unknown).
        config: Option<bool>,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NoCrashKernel => write!(f, "no crash kernel loaded (/sys/kernel/kexec_crash_loaded is not 1): run `kexec-rs kdump start`"),
            Reason::ReservationTooSmall { have, need } => write!(
                f,
                "the crash reservation ({} MiB) is smaller than the estimate ({} MiB): boot with crashkernel={}M",
                have >> 20,
                need >> 20,
                need.div_ceil(1 << 20)
            ),
            Reason::NoEstimate { why } => write!(f, "no estimate to compare the reservation with: {why}"),
            Reason::NoSdeiFirmware => {
                write!(f, "no SDEI in firmware (no /firmware/sdei node compatible \"arm,sdei-1.0\"): CPUs spinning with all interrupts masked will not be stopped")
            }
            Reason::NoSdeiRung => write!(
                f,
                "no SDEI stop rung: the kernel has none of its own (CONFIG_ARM_SDEI_NMI) and sdei-stop.ko is not loaded"
            ),
            Reason::PostNotifiersOff => write!(
                f,
                "crash_kexec_post_notifiers is off: sdei-stop.ko's panic notifier would run after the crash kernel starts, i.e. never"
            ),
            Reason::NoPseudoNmi { cmdline, config } => write!(
                f,
                "no pseudo-NMI ({}): CPUs with IRQs masked are reached only through SDEI",
                match (cmdline, config) {
                    (_, Some(false)) => "kernel built without CONFIG_ARM64_PSEUDO_NMI",
                    (false, _) => "irqchip.gicv3_pseudo_nmi=1 is not on the command line",
                    (true, None) => "kernel config unreadable",
                    (true, Some(true)) => "enabled",
                }
            ),
        }
    }
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// A crash now captures every CPU.
    pub all_cpus: bool,
    /// Why not (empty when `all_cpus`).
    pub reasons: Vec<Reason>,
    /// Facts that do not change the verdict.
    pub notes: Vec<Reason>,
    /// What was read.
    pub facts: Facts,
    /// The estimate in bytes, when made.
    pub estimate: Option<u64>,
}

/// Decides from the facts and the estimate (`Err` = why none was made).
pub fn verdict(facts: Facts, estimate: Result<u64, String>) -> Verdict {
    let mut reasons = Vec::new();
    if !facts.crash_loaded {
        reasons.push(Reason::NoCrashKernel);
    }
    let est = match estimate {
        Ok(need) => {
            if facts.reservation < need {
                reasons.push(Reason::ReservationTooSmall {
                    have: facts.reservation,
                    need,
                });
            }
            Some(need)
        }
        Err(why) => {
            reasons.push(Reason::NoEstimate { why });
            None
        }
    };
    if !facts.sdei_firmware {
        reasons.push(Reason::NoSdeiFirmware);
    } else if !facts.kernel_rung && !facts.module_loaded {
        reasons.push(Reason::NoSdeiRung);
    } else if !facts.kernel_rung && facts.post_notifiers != Some(true) {
        reasons.push(Reason::PostNotifiersOff);
    }
    let pnmi = facts.pseudo_nmi_cmdline && facts.pseudo_nmi_config != Some(false);
    let mut notes = Vec::new();
    if !pnmi {
        let r = Reason::NoPseudoNmi {
            cmdline: facts.pseudo_nmi_cmdline,
            config: facts.pseudo_nmi_config,
        };
        if reasons.is_empty() {
            notes.push(r)
        } else {
            reasons.push(r)
        }
    }
    Verdict {
        all_cpus: reasons.is_empty(),
        reasons,
        notes,
        facts,
        estimate: est,
    }
}

/// The verdict as text.
pub fn render(v: &Verdict) -> String {
    let f = &v.facts;
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut s = format!(
        "crash kernel loaded:        {}\nreservation:                {} MiB{}\nSDEI in firmware:           {}\nSDEI rung:                  {}\ncrash_kexec_post_notifiers: {}\npseudo-NMI:                 {}\n",
        yn(f.crash_loaded),
        f.reservation >> 20,
        v.estimate.map(|e| format!(" (estimate {} MiB)", e.div_ceil(1 << 20))).unwrap_or_default(),
        yn(f.sdei_firmware),
        if f.kernel_rung { "kernel's own" } else if f.module_loaded { "sdei-stop.ko" } else { "none" },
        f.post_notifiers.map_or("unknown", yn),
        yn(f.pseudo_nmi_cmdline && f.pseudo_nmi_config != Some(false)),
    );
    if v.all_cpus {
        s.push_str("verdict: a crash now captures every CPU\n");
    } else {
        s.push_str("verdict: a crash now may NOT capture every CPU:\n");
        for r in &v.reasons {
            s.push_str(&format!("  - {r}\n"));
        }
    }
    for n in &v.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::RecordingSource;

    fn good() -> RecordingSource {
        RecordingSource::default()
            .with_file(PROC_OSRELEASE, "6.1.0-56-arm64\n")
            .with_file(PROC_CMDLINE, "console=ttyAMA0 crashkernel=256M\n")
            .with_file(SYS_KEXEC_CRASH_LOADED, "1\n")
            .with_file(SYS_KEXEC_CRASH_SIZE, "268435456\n")
            .with_file(SYS_POST_NOTIFIERS, "Y\n")
            .with_file(SDEI_COMPATIBLE[1], b"arm,sdei-1.0\0".to_vec())
            .with_file(SYS_SDEI_STOP_STATE, "live\n")
            .with_file(
                "/boot/config-6.1.0-56-arm64",
                "# CONFIG_ARM64_PSEUDO_NMI is not set\nCONFIG_ARM_SDE_INTERFACE=y\n",
            )
    }

    #[test]
    fn all_cpus_with_module_rung() {
        let v = verdict(gather(&good()), Ok(128 << 20));
        assert!(v.all_cpus, "{v:?}");
        assert_eq!(
            v.notes,
            vec![Reason::NoPseudoNmi {
                cmdline: false,
                config: Some(false)
            }]
        );
        assert!(render(&v).contains("verdict: a crash now captures every CPU"));
    }

    #[test]
    fn each_reason() {
        let src = good()
            .with_file(SYS_KEXEC_CRASH_LOADED, "0\n")
            .with_file(SYS_POST_NOTIFIERS, "N\n")
            .without(SYS_KEXEC_CRASH_SIZE)
            .with_file(
                PROC_IOMEM,
                "40000000-bfffffff : System RAM\n  48000000-4fffffff : Crash kernel\n",
            );
        let v = verdict(gather(&src), Ok(256 << 20));
        assert_eq!(
            v.reasons,
            vec![
                Reason::NoCrashKernel,
                Reason::ReservationTooSmall {
                    have: 128 << 20,
                    need: 256 << 20
                },
                Reason::PostNotifiersOff,
                Reason::NoPseudoNmi {
                    cmdline: false,
                    config: Some(false)
                },
            ]
        );
        let v = verdict(gather(&good().without(SYS_SDEI_STOP_STATE)), Ok(1));
        assert_eq!(v.reasons[0], Reason::NoSdeiRung);
        let v = verdict(
            gather(&good().without(SDEI_COMPATIBLE[1])),
            Err("no config".into()),
        );
        assert_eq!(
            v.reasons[..2],
            [
                Reason::NoEstimate {
                    why: "no config".into()
                },
                Reason::NoSdeiFirmware
            ]
        );
        assert!(!v.all_cpus);
    }

    #[test]
    fn kernel_rung_needs_no_module_nor_notifiers() {
        let src = good()
            .without(SYS_SDEI_STOP_STATE)
            .with_file(SYS_POST_NOTIFIERS, "N\n")
            .with_file(
                PROC_KALLSYMS,
                "ffff800008010000 T _stext\nffff80000a000000 t sdei_nmi_stop_cpus\n",
            )
            .with_file(PROC_CMDLINE, "irqchip.gicv3_pseudo_nmi=1\n")
            .with_file("/boot/config-6.1.0-56-arm64", "CONFIG_ARM64_PSEUDO_NMI=y\n");
        let v = verdict(gather(&src), Ok(1));
        assert!(v.all_cpus && v.notes.is_empty(), "{v:?}");
        assert!(v.facts.kernel_rung);
    }
}
