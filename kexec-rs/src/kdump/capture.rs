//! The capture side: `kexec-rs kdump save` in the crash kernel, and the
//! same as `/init` of the built capture initramfs (PID 1: it mounts
//! `/proc`, `/sys`, `/dev` and loads the modules first, and ends with the
//! final action since there is nobody to return to).
//!
//! The sequence runs through [`HostSys`] (mounts, modules, power) and
//! [`CaptureEnv`] (files, the `vmcore` child), so tests record it.

use std::io;

use crate::kdump::config::{Config, FinalAction, Target};
use crate::kdump::initramfs::{load_order, MODULES_DIR, VMCORE_PATH};
use crate::sys::{Errno, HostSys};

/// The dump the crash kernel offers.
pub const PROC_VMCORE: &str = "/proc/vmcore";

/// Files and processes for the capture sequence.
pub trait CaptureEnv {
    /// File names in a directory.
    fn list_dir(&self, dir: &str) -> io::Result<Vec<String>>;
    /// A file's bytes.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// True if `path` exists.
    fn exists(&self, path: &str) -> bool;
    /// Creates a directory and its parents.
    fn mkdir(&mut self, path: &str) -> io::Result<()>;
    /// Writes a file (created or replaced) and fsyncs it.
    fn write(&mut self, path: &str, bytes: &[u8]) -> io::Result<()>;
    /// Runs a program; returns its exit code (None: killed) and, when
    /// `capture` is set, its stdout (else stdout is inherited).
    fn run(
        &mut self,
        prog: &str,
        args: &[String],
        capture: bool,
    ) -> io::Result<(Option<i32>, Vec<u8>)>;
    /// Replaces this process with `prog` (`busybox sh`); returns only on failure.
    fn exec(&mut self, prog: &str, args: &[&str]) -> io::Error;
    /// A name for this dump's directory (UTC time and a random suffix).
    fn dump_name(&mut self) -> String;
    /// A progress line for the console.
    fn say(&mut self, line: &str);
}

/// How the save went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `vmcore save` exited 0.
    Complete,
    /// It exited with this code (1: incomplete, 2: unusable input), or
    /// was killed (None).
    Failed(Option<i32>),
    /// Nothing to save, or it could not start; the reason.
    NotRun(String),
}

fn errno_text(e: Errno) -> String {
    io::Error::from_raw_os_error(e.0).to_string()
}

/// `vmcore save exit 2` / `vmcore save killed by a signal`.
pub fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(1) => "vmcore save exit 1 (incomplete: vmcore.incomplete kept)".to_string(),
        Some(c) => format!("vmcore save exit {c}"),
        None => "vmcore save killed by a signal".to_string(),
    }
}

/// The `vmcore save` arguments for `out` (`None` = flattened to stdout).
pub fn save_args(cfg: &Config, out: Option<&str>) -> Vec<String> {
    let levels = cfg
        .save
        .dump_levels
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut a = vec![
        "save".to_string(),
        "-d".into(),
        levels,
        "-c".into(),
        cfg.save.compression.clone(),
        "--progress".into(),
        "never".into(),
    ];
    match out {
        Some(o) => a.extend(["--json".to_string(), PROC_VMCORE.to_string(), o.to_string()]),
        None => a.extend(["-F".to_string(), PROC_VMCORE.to_string(), "-".to_string()]),
    }
    a
}

/// PID 1's mounts and module loads. Failures are reported, not fatal: the
/// save itself then says what is missing.
pub fn pid1_setup(sys: &mut dyn HostSys, env: &mut dyn CaptureEnv) {
    for (src, dir, fs) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
    ] {
        match sys.mount(src, dir, fs, "") {
            Ok(()) | Err(Errno(libc::EBUSY)) => {}
            Err(e) => env.say(&format!("mount {fs} on {dir}: {}", errno_text(e))),
        }
    }
    let dir = format!("/{MODULES_DIR}");
    let names = load_order(env.list_dir(&dir).unwrap_or_default());
    for n in names {
        let path = format!("{dir}/{n}");
        let name = n
            .trim_end_matches(".ko")
            .split_once('-')
            .map_or(n.as_str(), |(_, m)| m)
            .to_string();
        match env.read(&path) {
            Ok(b) => match sys.init_module(&name, &b, "") {
                Ok(()) | Err(Errno(libc::EEXIST)) => env.say(&format!("module {name} loaded")),
                Err(e) => env.say(&format!("init_module {path}: {}", errno_text(e))),
            },
            Err(e) => env.say(&format!("{path}: {e}")),
        }
    }
}

/// Mounts the target (when configured), runs `vmcore save` and writes the
/// summary. `vmcore` is the program to run.
pub fn save(
    sys: &mut dyn HostSys,
    env: &mut dyn CaptureEnv,
    cfg: &Config,
    vmcore: &str,
) -> Outcome {
    if !env.exists(PROC_VMCORE) {
        return Outcome::NotRun(format!("{PROC_VMCORE} does not exist: this is not a crash kernel (or it was booted without elfcorehdr)"));
    }
    match cfg.target() {
        Target::Stdout => {
            env.say(&format!("saving {PROC_VMCORE} to stdout (flattened)"));
            match env.run(vmcore, &save_args(cfg, None), false) {
                Ok((Some(0), _)) => Outcome::Complete,
                Ok((code, _)) => Outcome::Failed(code),
                Err(e) => Outcome::NotRun(format!("{vmcore}: {e}")),
            }
        }
        Target::Dir(dir) => {
            let dir = dir.display().to_string();
            if let (Some(dev), Some(fs)) = (&cfg.save.device, &cfg.save.fstype) {
                match sys.mount(dev, &dir, fs, &cfg.save.options) {
                    Ok(()) | Err(Errno(libc::EBUSY)) => {}
                    Err(e) => {
                        return Outcome::NotRun(format!(
                            "mount -t {fs} {dev} {dir}: {}",
                            errno_text(e)
                        ))
                    }
                }
            }
            let sub = format!("{}/{}", dir.trim_end_matches('/'), env.dump_name());
            if let Err(e) = env.mkdir(&sub) {
                return Outcome::NotRun(format!("{sub}: {e}"));
            }
            let out = format!("{sub}/vmcore");
            env.say(&format!("saving {PROC_VMCORE} to {out}"));
            let (outcome, summary) = match env.run(vmcore, &save_args(cfg, Some(&out)), true) {
                Ok((Some(0), s)) => (Outcome::Complete, s),
                Ok((code, s)) => (Outcome::Failed(code), s),
                Err(e) => (Outcome::NotRun(format!("{vmcore}: {e}")), Vec::new()),
            };
            if !summary.is_empty() {
                if let Err(e) = env.write(&format!("{sub}/summary.json"), &summary) {
                    env.say(&format!("{sub}/summary.json: {e}"));
                }
            }
            let status = match &outcome {
                Outcome::Complete => "complete\n".to_string(),
                Outcome::Failed(c) => format!("failed: {}\n", exit_text(*c)),
                Outcome::NotRun(why) => format!("not run: {why}\n"),
            };
            if let Err(e) = env.write(&format!("{sub}/status"), status.as_bytes()) {
                env.say(&format!("{sub}/status: {e}"));
            }
            outcome
        }
    }
}

/// PID 1's end: the final action. Never returns normally: if every way
/// out fails it reports and waits for the watchdog or the operator.
pub fn pid1_finish(sys: &mut dyn HostSys, env: &mut dyn CaptureEnv, action: FinalAction) -> Errno {
    sys.sync();
    if action == FinalAction::Shell {
        for sh in ["/bin/busybox", "/usr/bin/busybox"] {
            if env.exists(sh) {
                env.say("final action: shell");
                let e = env.exec(sh, &["sh"]);
                env.say(&format!("exec {sh} sh: {e}"));
            }
        }
        env.say("final action shell: no busybox in the initramfs; rebooting");
    }
    let power = action.power().unwrap_or(crate::sys::PowerAction::Reboot);
    env.say(&format!("final action: {power:?}"));
    match sys.power(power) {
        Ok(()) => Errno(0),
        Err(e) => {
            env.say(&format!("reboot(2): {}", errno_text(e)));
            e
        }
    }
}

/// The `vmcore` program to run: the initramfs's own under PID 1, else the
/// configured one.
pub fn vmcore_program(cfg: &Config, pid1: bool) -> String {
    if pid1 {
        format!("/{VMCORE_PATH}")
    } else {
        cfg.initramfs.vmcore.display().to_string()
    }
}

/// The real file system and processes.
#[derive(Debug, Default)]
pub struct RealEnv;

/// `YYYYmmdd-HHMMSS` (UTC) of a Unix time.
pub fn utc_stamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl CaptureEnv for RealEnv {
    fn list_dir(&self, dir: &str) -> io::Result<Vec<String>> {
        std::fs::read_dir(dir)?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect()
    }
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn exists(&self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }
    fn mkdir(&mut self, path: &str) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn write(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }
    fn run(
        &mut self,
        prog: &str,
        args: &[String],
        capture: bool,
    ) -> io::Result<(Option<i32>, Vec<u8>)> {
        let mut c = std::process::Command::new(prog);
        c.args(args);
        if capture {
            c.stderr(std::process::Stdio::inherit());
            let out = c.output()?;
            Ok((out.status.code(), out.stdout))
        } else {
            Ok((c.status()?.code(), Vec::new()))
        }
    }
    fn exec(&mut self, prog: &str, args: &[&str]) -> io::Error {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(prog).args(args).exec()
    }
    fn dump_name(&mut self) -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut r = [0u8; 4];
        let suffix = if getrandom::fill(&mut r).is_ok() {
            crate::hex(&r)
        } else {
            format!("{:08x}", std::process::id())
        };
        format!("{}-{suffix}", utc_stamp(secs))
    }
    fn say(&mut self, line: &str) {
        eprintln!("kexec-rs kdump: {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{PowerAction, Recorded, RecordingSys};
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct FakeEnv {
        files: BTreeMap<String, Vec<u8>>,
        dirs: Vec<String>,
        runs: Vec<(String, Vec<String>, bool)>,
        exit: Option<i32>,
        said: Vec<String>,
    }

    impl CaptureEnv for FakeEnv {
        fn list_dir(&self, dir: &str) -> io::Result<Vec<String>> {
            Ok(self
                .files
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{dir}/")).map(str::to_string))
                .collect())
        }
        fn read(&self, path: &str) -> io::Result<Vec<u8>> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
        fn exists(&self, path: &str) -> bool {
            self.files.contains_key(path)
        }
        fn mkdir(&mut self, path: &str) -> io::Result<()> {
            self.dirs.push(path.to_string());
            Ok(())
        }
        fn write(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
            self.files.insert(path.to_string(), bytes.to_vec());
            Ok(())
        }
        fn run(
            &mut self,
            prog: &str,
            args: &[String],
            capture: bool,
        ) -> io::Result<(Option<i32>, Vec<u8>)> {
            self.runs.push((prog.to_string(), args.to_vec(), capture));
            Ok((self.exit, b"{\"dump_level\":31}\n".to_vec()))
        }
        fn exec(&mut self, prog: &str, _args: &[&str]) -> io::Error {
            io::Error::other(format!("no exec of {prog} in tests"))
        }
        fn dump_name(&mut self) -> String {
            "20261124-001500-abcd1234".into()
        }
        fn say(&mut self, line: &str) {
            self.said.push(line.to_string());
        }
    }

    fn cfg(text: &str) -> Config {
        Config::parse("k.toml", text).unwrap()
    }

    const NINEP: &str = "[save]\ntarget = \"/mnt/out\"\ndevice = \"out\"\nfstype = \"9p\"\noptions = \"trans=virtio,version=9p2000.L\"\ndump_levels = [1, 31]\nfinal_action = \"poweroff\"\n";

    #[test]
    fn pid1_sequence() {
        let mut env = FakeEnv {
            exit: Some(0),
            ..FakeEnv::default()
        };
        env.files
            .insert("/lib/kexec-rs/modules/01-virtio_blk.ko".into(), vec![1; 5]);
        env.files
            .insert("/lib/kexec-rs/modules/00-virtio_mmio.ko".into(), vec![1; 4]);
        env.files.insert(PROC_VMCORE.into(), vec![]);
        let mut sys = RecordingSys::scripted([
            Ok(()),
            Err(Errno(libc::EBUSY)),
            Ok(()),
            Ok(()),
            Err(Errno(libc::EEXIST)),
        ]);
        let c = cfg(NINEP);
        pid1_setup(&mut sys, &mut env);
        assert_eq!(
            save(&mut sys, &mut env, &c, &vmcore_program(&c, true)),
            Outcome::Complete
        );
        pid1_finish(&mut sys, &mut env, c.save.final_action);
        let m = |a: &str, b: &str, c: &str, d: &str| {
            Recorded::Mount(a.into(), b.into(), c.into(), d.into())
        };
        assert_eq!(
            sys.calls,
            vec![
                m("proc", "/proc", "proc", ""),
                m("sysfs", "/sys", "sysfs", ""),
                m("devtmpfs", "/dev", "devtmpfs", ""),
                Recorded::InitModule("virtio_mmio".into(), 4, String::new()),
                Recorded::InitModule("virtio_blk".into(), 5, String::new()),
                m("out", "/mnt/out", "9p", "trans=virtio,version=9p2000.L"),
                Recorded::Sync,
                Recorded::Power(PowerAction::Poweroff),
            ]
        );
        let sub = "/mnt/out/20261124-001500-abcd1234";
        assert_eq!(env.dirs, [sub]);
        let args: Vec<String> =
            format!("save -d 1,31 -c lzo --progress never --json /proc/vmcore {sub}/vmcore")
                .split(' ')
                .map(str::to_string)
                .collect();
        assert_eq!(env.runs, vec![("/bin/vmcore".to_string(), args, true)]);
        assert_eq!(
            env.files[&format!("{sub}/summary.json")],
            b"{\"dump_level\":31}\n"
        );
        assert_eq!(env.files[&format!("{sub}/status")], b"complete\n");
    }

    #[test]
    fn stdout_and_failures() {
        let c = cfg("[kernel]\ninitrd = \"/boot/initrd.img\"\n[save]\ntarget = \"stdout\"\ndump_levels = [31]\n");
        let mut env = FakeEnv {
            exit: Some(1),
            ..FakeEnv::default()
        };
        let mut sys = RecordingSys::default();
        assert!(
            matches!(save(&mut sys, &mut env, &c, "vmcore"), Outcome::NotRun(w) if w.starts_with("/proc/vmcore does not exist"))
        );
        env.files.insert(PROC_VMCORE.into(), vec![]);
        assert_eq!(
            save(&mut sys, &mut env, &c, &vmcore_program(&c, false)),
            Outcome::Failed(Some(1))
        );
        let args: Vec<String> = "save -d 31 -c lzo --progress never -F /proc/vmcore -"
            .split(' ')
            .map(str::to_string)
            .collect();
        assert_eq!(env.runs, vec![("/usr/bin/vmcore".to_string(), args, false)]);
        assert!(sys.calls.is_empty());

        let c = cfg(NINEP);
        let mut sys = RecordingSys::failing(&[libc::ENODEV]);
        let o = save(&mut sys, &mut env, &c, "vmcore");
        assert_eq!(
            o,
            Outcome::NotRun("mount -t 9p out /mnt/out: No such device (os error 19)".into())
        );
    }

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(1_795_911_300), "20261129-001500");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
    }

    #[test]
    fn shell_without_busybox_reboots() {
        let mut env = FakeEnv::default();
        let mut sys = RecordingSys::default();
        pid1_finish(&mut sys, &mut env, FinalAction::Shell);
        assert_eq!(
            sys.calls,
            vec![Recorded::Sync, Recorded::Power(PowerAction::Reboot)]
        );
        assert!(env.said.iter().any(|s| s.contains("no busybox")));
    }
}
