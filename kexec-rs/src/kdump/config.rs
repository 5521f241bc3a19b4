//! `/etc/kexec-rs/kdump.toml`: what `kexec-rs kdump` loads and how the
//! capture kernel saves the dump. Every key is documented in
//! `man/kdump.toml.5`; a test checks the man page names each of them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sys::PowerAction;

/// The default config path.
pub const DEFAULT_PATH: &str = "/etc/kexec-rs/kdump.toml";

/// The crash kernel's base command line (as the drill uses): one CPU,
/// devices reset by their drivers. `console=` is carried over from the
/// running kernel's command line.
pub const DEFAULT_CMDLINE: &str = "reset_devices nr_cpus=1 maxcpus=1";

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[kernel]`: what is loaded as the crash kernel.
    pub kernel: KernelSection,
    /// `[initramfs]`: what the built capture initramfs holds.
    pub initramfs: InitramfsSection,
    /// `[save]`: where and how the dump is written.
    pub save: SaveSection,
}

/// `[kernel]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelSection {
    /// The kernel image; `None` = `/boot/vmlinuz-<release>`.
    pub image: Option<PathBuf>,
    /// `"build"` or a path to an initramfs.
    pub initrd: String,
    /// The crash kernel's base command line.
    pub cmdline: String,
    /// Appended after `cmdline` and the carried `console=`.
    pub append: String,
    /// Write 1 to `crash_kexec_post_notifiers` at start.
    pub crash_kexec_post_notifiers: bool,
    /// `"auto"`, `"off"` or a path to `sdei-stop.ko`.
    pub sdei: String,
}

impl Default for KernelSection {
    fn default() -> Self {
        KernelSection {
            image: None,
            initrd: "build".to_string(),
            cmdline: DEFAULT_CMDLINE.to_string(),
            append: String::new(),
            crash_kexec_post_notifiers: true,
            sdei: "auto".to_string(),
        }
    }
}

/// `[initramfs]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitramfsSection {
    /// The static `vmcore` binary.
    pub vmcore: PathBuf,
    /// Modules to add (dependencies are added too).
    pub modules: Vec<String>,
    /// Where modules are looked up; `None` = `/lib/modules/<release>`.
    pub modules_dir: Option<PathBuf>,
}

impl Default for InitramfsSection {
    fn default() -> Self {
        InitramfsSection {
            vmcore: PathBuf::from("/usr/bin/vmcore"),
            modules: Vec::new(),
            modules_dir: None,
        }
    }
}

/// `[save]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaveSection {
    /// A directory, or `"stdout"`.
    pub target: String,
    /// A file system to mount on `target` first (device path or 9p tag).
    pub device: Option<String>,
    /// Its type (`ext4`, `9p`, …).
    pub fstype: Option<String>,
    /// Its mount options (the `data` argument of mount(2)).
    pub options: String,
    /// Dump levels, tried in order when the target fills up.
    pub dump_levels: Vec<u8>,
    /// Page compression: `zstd`, `lzo`, `zlib` or `none`.
    pub compression: String,
    /// What the capture kernel does after saving.
    pub final_action: FinalAction,
}

impl Default for SaveSection {
    fn default() -> Self {
        SaveSection {
            target: "/var/crash".to_string(),
            device: None,
            fstype: None,
            options: String::new(),
            dump_levels: vec![31],
            compression: "lzo".to_string(),
            final_action: FinalAction::Reboot,
        }
    }
}

/// `final_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalAction {
    /// reboot(2) RESTART.
    Reboot,
    /// reboot(2) POWER_OFF.
    Poweroff,
    /// reboot(2) HALT.
    Halt,
    /// `busybox sh` on the console if present, else reboot.
    Shell,
}

impl FinalAction {
    /// The power action, `None` for a shell.
    pub fn power(self) -> Option<PowerAction> {
        match self {
            FinalAction::Reboot => Some(PowerAction::Reboot),
            FinalAction::Poweroff => Some(PowerAction::Poweroff),
            FinalAction::Halt => Some(PowerAction::Halt),
            FinalAction::Shell => None,
        }
    }
}

/// The SDEI rung setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdeiSetting {
    /// Load the module from its default place when needed.
    Auto,
    /// Never load it.
    Off,
    /// Load this module when needed.
    Module(PathBuf),
}

/// Where the dump goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A flattened stream on stdout.
    Stdout,
    /// A directory (after mounting `device` there when given).
    Dir(PathBuf),
}

/// Why the config was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Unreadable.
    #[error("{file}: {message}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error text.
        message: String,
    },
    /// A TOML or schema error.
    #[error("{file}:{line}: {}{message}", key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Parse {
        /// The file.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The key on that line, when there is one.
        key: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// Parsed but inconsistent.
    #[error("{file}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The key written on the line holding byte `at` of `text` (`a.b = …` gives `a.b`).
fn key_at(text: &str, at: usize) -> (usize, Option<String>) {
    let before = text.get(..at.min(text.len())).unwrap_or("");
    let line_no = before.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty());
    (line_no, key)
}

impl Config {
    /// Parses and checks `text`, naming `file` in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = e.span().map_or((0, None), |s| key_at(text, s.start));
            ConfigError::Parse {
                file: file.to_string(),
                line,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.check(file)?;
        Ok(cfg)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Config::parse(&file, &text)
    }

    fn check(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key, message: String| {
            Err(ConfigError::Invalid {
                file: file.to_string(),
                key,
                message,
            })
        };
        if self.save.dump_levels.is_empty() {
            return bad("save.dump_levels", "give at least one level".into());
        }
        if let Some(l) = self.save.dump_levels.iter().find(|&&l| l > 31) {
            return bad(
                "save.dump_levels",
                format!("{l} is not a dump level (0..=31)"),
            );
        }
        if !["zstd", "lzo", "zlib", "none"].contains(&self.save.compression.as_str()) {
            return bad(
                "save.compression",
                format!("`{}`: use zstd, lzo, zlib or none", self.save.compression),
            );
        }
        if self.save.device.is_some() != self.save.fstype.is_some() {
            return bad(
                "save.fstype",
                "save.device and save.fstype go together".into(),
            );
        }
        let stdout = self.save.target == "stdout";
        if stdout && self.save.device.is_some() {
            return bad(
                "save.device",
                "nothing is mounted for target = \"stdout\"".into(),
            );
        }
        if !stdout && !self.save.target.starts_with('/') {
            return bad(
                "save.target",
                format!(
                    "`{}`: an absolute directory or \"stdout\"",
                    self.save.target
                ),
            );
        }
        if self.kernel.initrd == "build" && self.save.device.is_none() {
            return bad(
                "save.device",
                "the built capture initramfs has no disk of its own: name the file system to save on (device and fstype)".into(),
            );
        }
        if self.kernel.initrd != "build" && !self.kernel.initrd.starts_with('/') {
            return bad(
                "kernel.initrd",
                format!("`{}`: \"build\" or an absolute path", self.kernel.initrd),
            );
        }
        if !matches!(self.kernel.sdei.as_str(), "auto" | "off")
            && !self.kernel.sdei.starts_with('/')
        {
            return bad(
                "kernel.sdei",
                format!(
                    "`{}`: \"auto\", \"off\" or an absolute path to sdei-stop.ko",
                    self.kernel.sdei
                ),
            );
        }
        Ok(())
    }

    /// The SDEI setting.
    pub fn sdei(&self) -> SdeiSetting {
        match self.kernel.sdei.as_str() {
            "auto" => SdeiSetting::Auto,
            "off" => SdeiSetting::Off,
            p => SdeiSetting::Module(PathBuf::from(p)),
        }
    }

    /// The save target.
    pub fn target(&self) -> Target {
        if self.save.target == "stdout" {
            Target::Stdout
        } else {
            Target::Dir(PathBuf::from(&self.save.target))
        }
    }

    /// The kernel image for `release`.
    pub fn kernel_image(&self, release: &str) -> PathBuf {
        self.kernel
            .image
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/boot/vmlinuz-{release}")))
    }

    /// The modules directory for `release`.
    pub fn modules_dir(&self, release: &str) -> PathBuf {
        self.initramfs
            .modules_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/lib/modules/{release}")))
    }

    /// The crash kernel's command line: `cmdline`, the running kernel's
    /// `console=` parameters, then `append`.
    pub fn crash_cmdline(&self, running: &str) -> String {
        let consoles: Vec<&str> =
            crate::cmdline::split_params(running.trim_end_matches(['\n', '\0']))
                .into_iter()
                .filter(|p| p.starts_with("console="))
                .collect();
        let mut parts: Vec<&str> = vec![self.kernel.cmdline.trim()];
        parts.extend(consoles);
        parts.push(self.kernel.append.trim());
        parts
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[save]\ndevice = \"/dev/vda\"\nfstype = \"ext4\"\n";

    #[test]
    fn defaults() {
        let c = Config::parse("k.toml", MIN).unwrap();
        assert_eq!(c.kernel.initrd, "build");
        assert_eq!(c.save.dump_levels, vec![31]);
        assert_eq!(c.save.compression, "lzo");
        assert!(c.kernel.crash_kexec_post_notifiers);
        assert_eq!(c.sdei(), SdeiSetting::Auto);
        assert_eq!(
            c.kernel_image("6.1.0-56-arm64"),
            PathBuf::from("/boot/vmlinuz-6.1.0-56-arm64")
        );
        assert_eq!(c.target(), Target::Dir("/var/crash".into()));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = Config::parse(
            "/etc/kexec-rs/kdump.toml",
            "[kernel]\ninitrd = \"build\"\ncmdlin = \"x\"\n",
        )
        .unwrap_err();
        let ConfigError::Parse {
            line, key, message, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((*line, key.as_deref()), (3, Some("cmdlin")));
        assert!(message.starts_with("unknown field `cmdlin`"), "{message}");
        assert!(
            e.to_string()
                .starts_with("/etc/kexec-rs/kdump.toml:3: key `cmdlin`: unknown field"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = Config::parse(
            "k.toml",
            "[kernel]\n\ncrash_kexec_post_notifiers = \"yes\"\n",
        )
        .unwrap_err();
        let ConfigError::Parse { line, key, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (*line, key.as_deref()),
            (3, Some("crash_kexec_post_notifiers"))
        );
        let e = Config::parse("k.toml", "[save]\nfinal_action = \"explode\"\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("k.toml:2: key `final_action`: unknown variant `explode`"),
            "{e}"
        );
    }

    #[test]
    fn inconsistent_values_are_refused() {
        let e = Config::parse(
            "k.toml",
            "[save]\ndevice = \"/dev/vda\"\nfstype = \"ext4\"\ndump_levels = [1, 40]\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "k.toml: key `save.dump_levels`: 40 is not a dump level (0..=31)"
        );
        let e = Config::parse("k.toml", "[save]\ntarget = \"/var/crash\"\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("k.toml: key `save.device`: the built capture initramfs"),
            "{e}"
        );
        let e = Config::parse(
            "k.toml",
            "[kernel]\ninitrd = \"/boot/i\"\n[save]\ncompression = \"xz\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "k.toml: key `save.compression`: `xz`: use zstd, lzo, zlib or none"
        );
        let e = Config::parse("k.toml", "[kernel]\ninitrd = \"/boot/i\"\n[save]\ntarget = \"stdout\"\ndevice = \"d\"\nfstype = \"9p\"\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "k.toml: key `save.device`: nothing is mounted for target = \"stdout\""
        );
    }

    #[test]
    fn crash_cmdline_carries_consoles() {
        let c = Config::parse("k.toml", &format!("[kernel]\nappend = \"panic=1\"\n{MIN}")).unwrap();
        let running = "BOOT_IMAGE=/boot/vmlinuz console=tty0 root=/dev/vda1 console=ttyAMA0,115200 crashkernel=256M\n";
        assert_eq!(
            c.crash_cmdline(running),
            "reset_devices nr_cpus=1 maxcpus=1 console=tty0 console=ttyAMA0,115200 panic=1"
        );
    }
}
