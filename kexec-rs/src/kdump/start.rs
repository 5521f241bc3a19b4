//! `kdump start`, `stop` and `test`: plans of steps, then one executor
//! that runs them through the syscall traits and undoes what it did when a
//! later step fails.

use serde::Serialize;

use crate::act;
use crate::kdump::config::SdeiSetting;
use crate::kdump::status::{Facts, SYS_POST_NOTIFIERS};
use crate::plan::{LoadKind, Plan};
use crate::sys::{Errno, HostSys, KexecSys, SysError};

/// `/proc/sysrq-trigger`.
pub const PROC_SYSRQ_TRIGGER: &str = "/proc/sysrq-trigger";

/// One step of `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// `kexec_load` the crash kernel plan.
    LoadCrashKernel,
    /// Write 1 to `crash_kexec_post_notifiers` (it was off).
    EnablePostNotifiers,
    /// `init_module` sdei-stop.ko.
    LoadSdeiModule {
        /// The module file.
        path: String,
    },
}

/// What `start` will do, and why it skips what it skips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartPlan {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Skipped steps with the reason.
    pub skipped: Vec<String>,
}

/// The default place of `sdei-stop.ko` for `sdei = "auto"`
/// (`make modules_install`'s `extra/`).
pub fn default_sdei_module(release: &str) -> String {
    format!("/lib/modules/{release}/extra/sdei-stop.ko")
}

/// Decides the steps from the running system's facts.
pub fn plan_start(facts: &Facts, post_notifiers: bool, sdei: &SdeiSetting) -> StartPlan {
    let mut steps = vec![Step::LoadCrashKernel];
    let mut skipped = Vec::new();
    if !post_notifiers {
        skipped.push(
            "crash_kexec_post_notifiers: left as is (crash_kexec_post_notifiers = false)"
                .to_string(),
        );
    } else if facts.post_notifiers == Some(true) {
        skipped.push("crash_kexec_post_notifiers: already on".to_string());
    } else {
        steps.push(Step::EnablePostNotifiers);
    }
    let path = match sdei {
        SdeiSetting::Off => {
            skipped.push("sdei-stop.ko: not loaded (sdei = \"off\")".to_string());
            None
        }
        SdeiSetting::Auto => Some(default_sdei_module(&facts.release)),
        SdeiSetting::Module(p) => Some(p.display().to_string()),
    };
    if let Some(path) = path {
        if !facts.sdei_firmware {
            skipped.push("sdei-stop.ko: not loaded (no SDEI in firmware)".to_string());
        } else if facts.kernel_rung {
            skipped.push(
                "sdei-stop.ko: not loaded (the kernel has its own SDEI stop rung)".to_string(),
            );
        } else if facts.module_loaded {
            skipped.push("sdei-stop.ko: already loaded".to_string());
        } else {
            steps.push(Step::LoadSdeiModule { path });
        }
    }
    StartPlan { steps, skipped }
}

/// Why `start` failed, with what was undone.
#[derive(Debug, thiserror::Error)]
#[error("kdump start: {failed}{}", if undone.is_empty() { String::new() } else { format!("; undone: {}", undone.join(", ")) })]
pub struct StartError {
    /// The failure.
    pub failed: String,
    /// What was undone, in order.
    pub undone: Vec<String>,
    /// Undo steps that failed themselves.
    pub undo_failed: Vec<String>,
}

fn errno_text(e: Errno) -> String {
    std::io::Error::from_raw_os_error(e.0).to_string()
}

/// Runs `plan`. `crash` is the crash kernel's load plan; `module` the
/// sdei-stop.ko bytes when a step loads it (read before anything is done).
pub fn run_start<S: KexecSys + HostSys>(
    sys: &mut S,
    plan: &StartPlan,
    crash: &Plan,
    module: Option<&[u8]>,
    host_arch: &str,
    lockdown: Option<String>,
) -> Result<(), StartError> {
    let mut done: Vec<&Step> = Vec::new();
    for step in &plan.steps {
        let r: Result<(), String> = match step {
            Step::LoadCrashKernel => act::load_plan(sys, crash, host_arch, lockdown.clone()).map_err(|e| format!("loading the crash kernel: {e}")),
            Step::EnablePostNotifiers => sys
                .write_file(SYS_POST_NOTIFIERS, b"1")
                .map_err(|e| format!("writing 1 to {SYS_POST_NOTIFIERS}: {}", errno_text(e))),
            Step::LoadSdeiModule { path } => match module {
                None => Err(format!("{path}: not read")),
                Some(m) => match sys.init_module("sdei_stop", m, "") {
                    Ok(()) => Ok(()),
                    Err(Errno(libc::EEXIST)) => Ok(()),
                    Err(e) => Err(format!(
                        "init_module {path}: {} (its reason is in the kernel log: dmesg | grep sdei)",
                        errno_text(e)
                    )),
                },
            },
        };
        if let Err(failed) = r {
            let mut undone = Vec::new();
            let mut undo_failed = Vec::new();
            for s in done.iter().rev() {
                match s {
                    Step::LoadCrashKernel => {
                        match act::unload(sys, LoadKind::Crash, false, host_arch, lockdown.clone())
                        {
                            Ok(()) => undone.push("crash kernel unloaded".to_string()),
                            Err(e) => undo_failed.push(format!("unloading the crash kernel: {e}")),
                        }
                    }
                    Step::EnablePostNotifiers => match sys.write_file(SYS_POST_NOTIFIERS, b"0") {
                        Ok(()) => undone.push("crash_kexec_post_notifiers back to 0".to_string()),
                        Err(e) => undo_failed.push(format!(
                            "writing 0 to {SYS_POST_NOTIFIERS}: {}",
                            errno_text(e)
                        )),
                    },
                    Step::LoadSdeiModule { .. } => {}
                }
            }
            return Err(StartError {
                failed,
                undone,
                undo_failed,
            });
        }
        done.push(step);
    }
    Ok(())
}

/// `stop`: unloads the crash kernel. sdei-stop.ko stays loaded.
pub fn run_stop(
    sys: &mut dyn KexecSys,
    host_arch: &str,
    lockdown: Option<String>,
) -> Result<(), SysError> {
    act::unload(sys, LoadKind::Crash, false, host_arch, lockdown)
}

/// Why `test` refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TestRefused {
    /// No terminal and no `--yes`.
    #[error("kdump test crashes the machine: confirm on a terminal or pass --yes (stdin is not a terminal)")]
    NoTerminal,
    /// Wrong answer.
    #[error("kdump test: not confirmed (type the word `crash` to crash the machine)")]
    NotConfirmed,
}

/// Decides whether `test` may crash: `--yes`, or a terminal answer `crash`.
/// `ask` is only called when stdin is a terminal.
pub fn confirm(
    yes: bool,
    terminal: bool,
    ask: impl FnOnce() -> Option<String>,
) -> Result<(), TestRefused> {
    if yes {
        return Ok(());
    }
    if !terminal {
        return Err(TestRefused::NoTerminal);
    }
    match ask() {
        Some(a) if a.trim() == "crash" => Ok(()),
        _ => Err(TestRefused::NotConfirmed),
    }
}

/// `test`, once confirmed: sync, then `c` to `/proc/sysrq-trigger`. Returns
/// only if the write failed.
pub fn run_test(sys: &mut dyn HostSys) -> Result<(), String> {
    sys.sync();
    sys.write_file(PROC_SYSRQ_TRIGGER, b"c")
        .map_err(|e| format!("writing c to {PROC_SYSRQ_TRIGGER}: {}", errno_text(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Recorded, RecordingSys, KEXEC_ARCH_AARCH64, KEXEC_ON_CRASH};

    fn facts() -> Facts {
        Facts {
            release: "6.1.0-56-arm64".into(),
            sdei_firmware: true,
            post_notifiers: Some(false),
            ..Facts::default()
        }
    }

    fn crash_plan() -> Plan {
        crate::tests::crash_plan_for_tests()
    }

    #[test]
    fn plan_loads_module_when_firmware_has_sdei_and_kernel_has_no_rung() {
        let p = plan_start(&facts(), true, &SdeiSetting::Auto);
        assert_eq!(
            p.steps,
            vec![
                Step::LoadCrashKernel,
                Step::EnablePostNotifiers,
                Step::LoadSdeiModule {
                    path: "/lib/modules/6.1.0-56-arm64/extra/sdei-stop.ko".into()
                }
            ]
        );
        let p = plan_start(
            &Facts {
                kernel_rung: true,
                post_notifiers: Some(true),
                ..facts()
            },
            true,
            &SdeiSetting::Auto,
        );
        assert_eq!(p.steps, vec![Step::LoadCrashKernel]);
        assert_eq!(
            p.skipped,
            [
                "crash_kexec_post_notifiers: already on",
                "sdei-stop.ko: not loaded (the kernel has its own SDEI stop rung)"
            ]
        );
        let p = plan_start(
            &Facts {
                module_loaded: true,
                ..facts()
            },
            false,
            &SdeiSetting::Auto,
        );
        assert_eq!(p.steps, vec![Step::LoadCrashKernel]);
        assert_eq!(p.skipped[1], "sdei-stop.ko: already loaded");
        let p = plan_start(
            &Facts {
                sdei_firmware: false,
                ..facts()
            },
            true,
            &SdeiSetting::Module("/x.ko".into()),
        );
        assert_eq!(
            p.skipped,
            ["sdei-stop.ko: not loaded (no SDEI in firmware)"]
        );
    }

    #[test]
    fn start_runs_every_step_through_the_fake() {
        let p = plan_start(&facts(), true, &SdeiSetting::Auto);
        let mut sys = RecordingSys::default();
        run_start(
            &mut sys,
            &p,
            &crash_plan(),
            Some(&[1, 2, 3]),
            "aarch64",
            None,
        )
        .unwrap();
        assert!(
            matches!(&sys.calls[0], Recorded::KexecLoad { flags, .. } if *flags == KEXEC_ON_CRASH | KEXEC_ARCH_AARCH64)
        );
        assert_eq!(
            sys.calls[1],
            Recorded::WriteFile(SYS_POST_NOTIFIERS.into(), b"1".to_vec())
        );
        assert_eq!(
            sys.calls[2],
            Recorded::InitModule("sdei_stop".into(), 3, String::new())
        );
        assert_eq!(sys.calls.len(), 3);
    }

    #[test]
    fn a_failed_module_load_undoes_the_rest() {
        let p = plan_start(&facts(), true, &SdeiSetting::Auto);
        let mut sys = RecordingSys::scripted([Ok(()), Ok(()), Err(Errno(libc::ENODEV))]);
        let e = run_start(&mut sys, &p, &crash_plan(), Some(&[0; 8]), "aarch64", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kdump start: init_module /lib/modules/6.1.0-56-arm64/extra/sdei-stop.ko: No such device (os error 19) (its reason is in the kernel log: dmesg | grep sdei); undone: crash_kexec_post_notifiers back to 0, crash kernel unloaded"
        );
        assert_eq!(
            sys.calls[3],
            Recorded::WriteFile(SYS_POST_NOTIFIERS.into(), b"0".to_vec())
        );
        let Recorded::KexecLoad {
            segments, flags, ..
        } = &sys.calls[4]
        else {
            panic!("{:?}", sys.calls)
        };
        assert!(segments.is_empty() && *flags == KEXEC_ON_CRASH | KEXEC_ARCH_AARCH64);
    }

    #[test]
    fn already_loaded_module_is_fine_and_failed_load_undoes_nothing() {
        let p = plan_start(
            &Facts {
                post_notifiers: Some(true),
                ..facts()
            },
            true,
            &SdeiSetting::Auto,
        );
        let mut sys = RecordingSys::scripted([Ok(()), Err(Errno(libc::EEXIST))]);
        run_start(&mut sys, &p, &crash_plan(), Some(&[0; 8]), "aarch64", None).unwrap();
        let mut sys = RecordingSys::failing(&[libc::ENOMEM]);
        let e = run_start(&mut sys, &p, &crash_plan(), Some(&[0; 8]), "aarch64", None).unwrap_err();
        assert!(
            e.undone.is_empty() && e.to_string().contains("raise crashkernel="),
            "{e}"
        );
        assert_eq!(sys.calls.len(), 1);
    }

    #[test]
    fn test_refuses_without_yes_or_terminal() {
        assert_eq!(
            confirm(false, false, || panic!("must not ask")),
            Err(TestRefused::NoTerminal)
        );
        assert_eq!(
            confirm(false, true, || Some("yes\n".into())),
            Err(TestRefused::NotConfirmed)
        );
        assert_eq!(confirm(false, true, || Some("crash\n".into())), Ok(()));
        assert_eq!(confirm(true, false, || None), Ok(()));
        let mut sys = RecordingSys::default();
        run_test(&mut sys).unwrap();
        assert_eq!(
            sys.calls,
            vec![
                Recorded::Sync,
                Recorded::WriteFile(PROC_SYSRQ_TRIGGER.into(), b"c".to_vec())
            ]
        );
    }

    #[test]
    fn stop_unloads_the_crash_kernel() {
        let mut sys = RecordingSys::default();
        run_stop(&mut sys, "aarch64", None).unwrap();
        assert!(
            matches!(&sys.calls[0], Recorded::KexecLoad { segments, flags, .. } if segments.is_empty() && *flags == KEXEC_ON_CRASH | KEXEC_ARCH_AARCH64)
        );
    }
}
