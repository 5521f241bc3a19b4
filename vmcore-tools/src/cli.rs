//! The `vmcore` command line: one table of what each command takes, from
//! which the arguments are parsed and `--help` is written (in the library
//! so the man-page test reads the same table).
//!
//! Parsing follows getopt_long, as makedumpfile's users know it: `-d31`,
//! `-d 31`, `--dump-level=31`, `--dump-level 31`, short flags clustered
//! (`-Fj2`), an option's value taken as the next argument whatever it
//! starts with, `--` ending the options, a lone `-` a positional argument.
//! Giving an option twice is an error rather than the last one winning.
//! Paths need not be UTF-8.
//!
//! Written here rather than with clap: `vmcore save` is the first thing a
//! capture kernel runs, often under emulation in CI, and clap's derived
//! builder and parser were 11,500 of the 39,400 guest instructions QEMU
//! had to translate for a whole `vmcore save` (about 0.04 s in the drill's
//! capture kernel) and 250 KiB of the 1.7 MB binary the capture initramfs
//! carries.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::save::filter::DumpLevel;
use crate::save::Compression;

/// A parsed command line.
#[derive(Debug)]
pub struct Cli {
    /// The command.
    pub command: Command,
}

/// Options every command but `save` takes.
#[derive(Debug, Clone)]
pub struct Common {
    /// The dump.
    pub dump: PathBuf,
    /// `--system-map FILE`.
    pub system_map: Option<PathBuf>,
    /// `--vmlinux FILE`.
    pub vmlinux: Option<PathBuf>,
    /// `--stats`.
    pub stats: bool,
}

/// Commands.
#[derive(Debug)]
pub enum Command {
    /// `vmcore info`.
    Info {
        /// Shared options.
        common: Common,
        /// `--json`.
        json: bool,
    },
    /// `vmcore cpus`.
    Cpus {
        /// Shared options.
        common: Common,
        /// `--json`.
        json: bool,
    },
    /// `vmcore verify`.
    Verify {
        /// Shared options.
        common: Common,
        /// `--json`.
        json: bool,
    },
    /// `vmcore dmesg`.
    Dmesg {
        /// Shared options.
        common: Common,
    },
    /// `vmcore save`.
    Save(SaveArgs),
}

/// `vmcore save` options.
#[derive(Debug, Clone)]
pub struct SaveArgs {
    /// The dump.
    pub dump: PathBuf,
    /// The output; `None` (or `-`) is standard output.
    pub output: Option<PathBuf>,
    /// `-d`.
    pub dump_level: Levels,
    /// `-c`.
    pub compress: Compression,
    /// `-F`.
    pub flat: bool,
    /// `-j` (at least 1).
    pub jobs: Option<u16>,
    /// `--progress`.
    pub progress: ProgressMode,
    /// `--json`.
    pub json: bool,
}

/// The `-d` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels(pub Vec<DumpLevel>);

/// Parses `1,17,31`.
pub fn parse_levels(s: &str) -> Result<Levels, String> {
    let mut v = Vec::new();
    for part in s.split(',') {
        let n: u32 = part
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} is not a dump level (0..31)"))?;
        v.push(DumpLevel::new(n).map_err(|e| e.to_string())?);
    }
    Ok(Levels(v))
}

/// When to draw the progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// When standard error is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// One option of a command.
#[derive(Debug)]
pub struct Opt {
    /// The one-letter form, if any.
    pub short: Option<char>,
    /// The long form, without the dashes.
    pub long: &'static str,
    /// The value's name in the help, or `None` for a flag.
    pub value: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
    /// The default, shown in the help.
    pub default: Option<&'static str>,
    /// The values it takes, each with a line of help (empty: any).
    pub choices: &'static [(&'static str, &'static str)],
}

/// One positional argument of a command.
#[derive(Debug)]
pub struct Pos {
    /// Its name in the help.
    pub name: &'static str,
    /// Whether it must be given.
    pub required: bool,
    /// One line of help.
    pub help: &'static str,
}

/// What a command takes.
#[derive(Debug)]
pub struct CommandSpec {
    /// The command's name.
    pub name: &'static str,
    /// One line on what it does.
    pub about: &'static str,
    /// Positional arguments, in order.
    pub args: &'static [Pos],
    /// Options.
    pub opts: &'static [Opt],
}

const fn flag(long: &'static str, help: &'static str) -> Opt {
    Opt {
        short: None,
        long,
        value: None,
        help,
        default: None,
        choices: &[],
    }
}

const fn file(long: &'static str, help: &'static str) -> Opt {
    Opt {
        value: Some("FILE"),
        ..flag(long, help)
    }
}

const DUMP_COPY: Pos = Pos {
    name: "DUMP",
    required: true,
    help: "The dump: a /proc/vmcore copy, makedumpfile output (ELF, kdump-compressed, flattened) or a QEMU dump",
};
const SYSTEM_MAP: Opt = file(
    "system-map",
    "Data symbols from a System.map of the same build (shifted by KERNELOFFSET)",
);
const VMLINUX: Opt = file(
    "vmlinux",
    "Data and function symbols from a vmlinux of the same build",
);
const STATS: Opt = flag(
    "stats",
    "Print wall time and pages of the dump read, to standard error",
);
const JSON: Opt = flag("json", "Print JSON");

/// Every command, in the order the help lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "info",
        about: "Format, kernel, page size, crash time, memory ranges, CPUs expected and captured",
        args: &[DUMP_COPY],
        opts: &[SYSTEM_MAP, VMLINUX, STATS, JSON],
    },
    CommandSpec {
        name: "cpus",
        about: "One row per CPU: status, pid, pc and lr with symbols, sp, pstate",
        args: &[DUMP_COPY],
        opts: &[SYSTEM_MAP, VMLINUX, STATS, JSON],
    },
    CommandSpec {
        name: "verify",
        about: "Exit 0 when every expected CPU was captured, 1 when not, 2 when the input is unusable",
        args: &[DUMP_COPY],
        opts: &[SYSTEM_MAP, VMLINUX, STATS, JSON],
    },
    CommandSpec {
        name: "dmesg",
        about: "The kernel log, as vmcore-dmesg prints it",
        args: &[DUMP_COPY],
        opts: &[SYSTEM_MAP, VMLINUX, STATS],
    },
    CommandSpec {
        name: "save",
        about: "Write the dump as makedumpfile's kdump-compressed file (or flattened stream), filtered and compressed",
        args: &[
            Pos {
                name: "DUMP",
                required: true,
                help: "The dump: /proc/vmcore, an ELF copy, makedumpfile output or a QEMU dump",
            },
            Pos {
                name: "OUTPUT",
                required: false,
                help: "The kdump-compressed output (written as OUTPUT.part, renamed when complete); omitted or `-` with -F: standard output",
            },
        ],
        opts: &[
            Opt {
                short: Some('d'),
                value: Some("LIST"),
                default: Some("31"),
                ..flag(
                    "dump-level",
                    "makedumpfile dump level 0..31, or a comma list tried in order when the output device fills up",
                )
            },
            Opt {
                short: Some('c'),
                value: Some("NAME"),
                default: Some("lzo"),
                choices: &[
                    ("zstd", "zstd frames (makedumpfile 1.7.3+; Debian 12's 1.7.2 cannot read them)"),
                    ("lzo", "lzo1x (read by makedumpfile 1.7.2, crash and libkdumpfile)"),
                    ("zlib", "zlib streams at the fastest level (makedumpfile's Z_BEST_SPEED)"),
                    ("none", "raw pages"),
                ],
                ..flag("compress", "Page compression")
            },
            Opt {
                short: Some('F'),
                ..flag("flat", "Write makedumpfile's flattened stream")
            },
            Opt {
                short: Some('j'),
                value: Some("N"),
                ..flag("jobs", "Compression threads (default: available CPUs)")
            },
            Opt {
                value: Some("WHEN"),
                default: Some("auto"),
                choices: &[
                    ("auto", "when standard error is a terminal"),
                    ("always", "always"),
                    ("never", "never"),
                ],
                ..flag("progress", "Progress bar on standard error")
            },
            flag(
                "json",
                "Print the summary as JSON (on standard output, or standard error when the stream goes there)",
            ),
        ],
    },
];

/// The one line the top-level help starts with.
const ABOUT: &str = "Reads arm64 vmcores (ELF, makedumpfile kdump-compressed and flattened, QEMU dumps) and proves which CPUs were captured";

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run a command.
    Run(Cli),
    /// Print this help text (on standard output) and exit 0.
    Help(String),
    /// Print the version and exit 0.
    Version,
}

/// A command line that cannot be run: what is wrong, and the usage line
/// of the command it was for. Exit status 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// `vmcore save [OPTIONS] <DUMP> [OUTPUT]`, or the top level's.
    pub usage: String,
    /// The `--help` to point at.
    pub help: String,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\nUsage: {}\nTry '{}'.",
            self.message, self.usage, self.help
        )
    }
}

impl std::error::Error for UsageError {}

/// The program's version line.
pub fn version() -> String {
    format!("vmcore {}", env!("CARGO_PKG_VERSION"))
}

fn top_usage() -> String {
    "vmcore <COMMAND> [OPTIONS] [ARGS]".to_string()
}

fn top_error(message: String) -> UsageError {
    UsageError {
        message,
        usage: top_usage(),
        help: "vmcore --help".to_string(),
    }
}

/// The top-level help.
pub fn top_help() -> String {
    let mut s = format!("{ABOUT}\n\nUsage: {}\n\nCommands:\n", top_usage());
    let w = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in COMMANDS {
        let _ = writeln!(s, "  {:w$}  {}", c.name, c.about);
    }
    let _ = writeln!(s, "  {:w$}  Print this help, or a command's", "help");
    s.push_str("\nOptions:\n  -h, --help     Print help\n  -V, --version  Print version\n");
    s.push_str("\n'vmcore COMMAND --help' shows what a command takes.\n");
    s
}

impl CommandSpec {
    /// `vmcore save [OPTIONS] <DUMP> [OUTPUT]`.
    pub fn usage(&self) -> String {
        let mut s = format!("vmcore {} [OPTIONS]", self.name);
        for a in self.args {
            if a.required {
                let _ = write!(s, " <{}>", a.name);
            } else {
                let _ = write!(s, " [{}]", a.name);
            }
        }
        s
    }

    /// The command's `--help`.
    pub fn help(&self) -> String {
        let mut s = format!("{}\n\nUsage: {}\n\nArguments:\n", self.about, self.usage());
        let names: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                if a.required {
                    format!("<{}>", a.name)
                } else {
                    format!("[{}]", a.name)
                }
            })
            .collect();
        let w = names.iter().map(String::len).max().unwrap_or(0);
        for (a, n) in self.args.iter().zip(&names) {
            let _ = writeln!(s, "  {n:w$}  {}", a.help);
        }
        let forms: Vec<String> = self
            .opts
            .iter()
            .map(|o| {
                let mut f = match o.short {
                    Some(c) => format!("-{c}, --{}", o.long),
                    None => format!("    --{}", o.long),
                };
                if let Some(v) = o.value {
                    let _ = write!(f, " <{v}>");
                }
                f
            })
            .collect();
        let w = forms.iter().map(String::len).max().unwrap_or(0).max(10);
        s.push_str("\nOptions:\n");
        for (o, f) in self.opts.iter().zip(&forms) {
            let _ = write!(s, "  {f:w$}  {}", o.help);
            if let Some(d) = o.default {
                let _ = write!(s, " [default: {d}]");
            }
            s.push('\n');
            let cw = o.choices.iter().map(|c| c.0.len()).max().unwrap_or(0);
            for (name, help) in o.choices {
                let _ = writeln!(s, "  {:w$}    {name:cw$}  {help}", "");
            }
        }
        let _ = writeln!(s, "  {:w$}  Print help", "-h, --help");
        s
    }

    fn error(&self, message: String) -> UsageError {
        UsageError {
            message: format!("{}: {message}", self.name),
            usage: self.usage(),
            help: format!("vmcore {} --help", self.name),
        }
    }
}

/// What one command's arguments gave, before the values are typed.
struct Given<'s> {
    spec: &'s CommandSpec,
    /// Per option of `spec.opts`: not given, or given (with its value).
    opts: Vec<Option<Option<OsString>>>,
    args: Vec<OsString>,
    /// Which options the builder asked for (bit per option): a debug check
    /// that every option in the table takes effect.
    asked: std::cell::Cell<u64>,
}

impl Given<'_> {
    fn set(&mut self, i: usize, value: Option<OsString>) -> Result<(), UsageError> {
        let o = &self.spec.opts[i];
        if self.opts[i].is_some() {
            return Err(self.spec.error(format!("--{} given twice", o.long)));
        }
        self.opts[i] = Some(value);
        Ok(())
    }

    fn index(&self, long: &str) -> usize {
        // The table and the typed builder below are written together.
        let i = self
            .spec
            .opts
            .iter()
            .position(|o| o.long == long)
            .unwrap_or_else(|| unreachable!("{} has no --{long}", self.spec.name));
        self.asked.set(self.asked.get() | 1 << i);
        i
    }

    fn flag(&self, long: &str) -> bool {
        self.opts[self.index(long)].is_some()
    }

    fn value(&self, long: &str) -> Option<&OsStr> {
        self.opts[self.index(long)]
            .as_ref()
            .and_then(|v| v.as_deref())
    }

    fn path(&self, long: &str) -> Option<PathBuf> {
        self.value(long).map(PathBuf::from)
    }

    /// The option's value (or else the table's default) as text, parsed
    /// by `f`; `None` when neither is there.
    fn typed<T>(
        &self,
        long: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, UsageError> {
        let o = &self.spec.opts[self.index(long)];
        let Some(v) = self.value(long).or(o.default.map(OsStr::new)) else {
            return Ok(None);
        };
        let what = |why: String| {
            self.spec
                .error(format!("--{} {}: {why}", o.long, v.to_string_lossy()))
        };
        let s = v.to_str().ok_or_else(|| what("not UTF-8".to_string()))?;
        if !o.choices.is_empty() && !o.choices.iter().any(|c| c.0 == s) {
            let names: Vec<&str> = o.choices.iter().map(|c| c.0).collect();
            return Err(what(format!("expected one of {}", names.join(", "))));
        }
        f(s).map(Some).map_err(what)
    }

    /// [`Given::typed`] for an option the table gives a default.
    fn chosen<T>(
        &self,
        long: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, UsageError> {
        self.typed(long, f)?
            .ok_or_else(|| self.spec.error(format!("--{long} has no default")))
    }
}

/// Reads one command's options and arguments.
fn gather<'s>(
    spec: &'s CommandSpec,
    args: &mut dyn Iterator<Item = OsString>,
) -> Result<Option<Given<'s>>, UsageError> {
    let mut g = Given {
        spec,
        opts: spec.opts.iter().map(|_| None).collect(),
        args: Vec::new(),
        asked: std::cell::Cell::new(0),
    };
    let mut only_args = false;
    while let Some(a) = args.next() {
        let b = a.as_bytes();
        if only_args || b.len() < 2 || b[0] != b'-' {
            g.args.push(a);
            continue;
        }
        let Some(s) = a.to_str() else {
            return Err(spec.error(format!("unknown option {}", a.to_string_lossy())));
        };
        if s == "--" {
            only_args = true;
        } else if let Some(long) = s.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(OsString::from(v))),
                None => (long, None),
            };
            if name == "help" {
                return Ok(None);
            }
            let Some(i) = spec.opts.iter().position(|o| o.long == name) else {
                return Err(spec.error(format!("unknown option --{name}")));
            };
            let value = match (spec.opts[i].value, inline) {
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(spec.error(format!("--{name} takes no value")));
                }
                (Some(_), Some(v)) => Some(v),
                (Some(v), None) => Some(
                    args.next()
                        .ok_or_else(|| spec.error(format!("--{name} needs a value ({v})")))?,
                ),
            };
            g.set(i, value)?;
        } else {
            // A cluster of short options; one that takes a value takes the
            // rest of the cluster, or else the next argument.
            let mut rest = &s[1..];
            while let Some(c) = rest.chars().next() {
                rest = &rest[c.len_utf8()..];
                if c == 'h' {
                    return Ok(None);
                }
                let Some(i) = spec.opts.iter().position(|o| o.short == Some(c)) else {
                    return Err(spec.error(format!("unknown option -{c}")));
                };
                let Some(v) = spec.opts[i].value else {
                    g.set(i, None)?;
                    continue;
                };
                let value = if rest.is_empty() {
                    args.next()
                        .ok_or_else(|| spec.error(format!("-{c} needs a value ({v})")))?
                } else {
                    OsString::from(std::mem::take(&mut rest))
                };
                g.set(i, Some(value))?;
            }
        }
    }
    let need = spec.args.iter().filter(|a| a.required).count();
    if g.args.len() < need {
        let missing: Vec<String> = spec.args[g.args.len()..need]
            .iter()
            .map(|a| format!("<{}>", a.name))
            .collect();
        return Err(spec.error(format!("missing {}", missing.join(" "))));
    }
    if g.args.len() > spec.args.len() {
        return Err(spec.error(format!(
            "unexpected argument {}",
            g.args[spec.args.len()].to_string_lossy()
        )));
    }
    Ok(Some(g))
}

fn common(g: &Given<'_>) -> Common {
    Common {
        dump: PathBuf::from(&g.args[0]),
        system_map: g.path("system-map"),
        vmlinux: g.path("vmlinux"),
        stats: g.flag("stats"),
    }
}

fn build(g: &Given<'_>) -> Result<Command, UsageError> {
    Ok(match g.spec.name {
        "info" => Command::Info {
            common: common(g),
            json: g.flag("json"),
        },
        "cpus" => Command::Cpus {
            common: common(g),
            json: g.flag("json"),
        },
        "verify" => Command::Verify {
            common: common(g),
            json: g.flag("json"),
        },
        "dmesg" => Command::Dmesg { common: common(g) },
        "save" => Command::Save(SaveArgs {
            dump: PathBuf::from(&g.args[0]),
            output: g.args.get(1).map(PathBuf::from),
            dump_level: g.chosen("dump-level", parse_levels)?,
            compress: g.chosen("compress", |s| {
                Compression::from_name(s).ok_or_else(|| format!("no compression {s}"))
            })?,
            flat: g.flag("flat"),
            jobs: g.typed("jobs", |s| match s.parse::<u16>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err("expected a number of threads, 1 to 65535".to_string()),
            })?,
            progress: g.chosen("progress", |s| {
                Ok(match s {
                    "always" => ProgressMode::Always,
                    "never" => ProgressMode::Never,
                    _ => ProgressMode::Auto,
                })
            })?,
            json: g.flag("json"),
        }),
        other => unreachable!("no builder for command {other}"),
    })
}

/// Parses the command line (`args` without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, UsageError> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(top_error("no command given".to_string()));
    };
    let first = first.to_string_lossy().into_owned();
    let find = |name: &str| COMMANDS.iter().find(|c| c.name == name);
    match first.as_str() {
        "-h" | "--help" => return Ok(Parsed::Help(top_help())),
        "-V" | "--version" => return Ok(Parsed::Version),
        "help" => {
            return match args.next() {
                None => Ok(Parsed::Help(top_help())),
                Some(c) => {
                    let c = c.to_string_lossy();
                    find(&c)
                        .map(|s| Parsed::Help(s.help()))
                        .ok_or_else(|| top_error(format!("unknown command {c}")))
                }
            };
        }
        _ => {}
    }
    let Some(spec) = find(&first) else {
        return Err(top_error(format!("unknown command {first}")));
    };
    match gather(spec, &mut args)? {
        None => Ok(Parsed::Help(spec.help())),
        Some(g) => {
            let command = build(&g)?;
            debug_assert_eq!(
                g.asked.get(),
                (1u64 << spec.opts.len()) - 1,
                "vmcore {}: an option of the table is never read",
                spec.name
            );
            Ok(Parsed::Run(Cli { command }))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn run(args: &[&str]) -> Result<Command, UsageError> {
        match parse(args.iter().map(OsString::from))? {
            Parsed::Run(c) => Ok(c.command),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn save(args: &[&str]) -> SaveArgs {
        let mut a = vec!["save"];
        a.extend_from_slice(args);
        match run(&a) {
            Ok(Command::Save(s)) => s,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse(args.iter().map(OsString::from)) {
            Err(e) => e.message,
            Ok(p) => panic!("{args:?} parsed: {p:?}"),
        }
    }

    #[test]
    fn save_defaults() {
        let s = save(&["/proc/vmcore", "out"]);
        assert_eq!(s.dump, PathBuf::from("/proc/vmcore"));
        assert_eq!(s.output, Some(PathBuf::from("out")));
        assert_eq!(s.dump_level, Levels(vec![DumpLevel::new(31).unwrap()]));
        assert_eq!(s.compress, Compression::Lzo);
        assert!(!s.flat && !s.json);
        assert_eq!(s.jobs, None);
        assert_eq!(s.progress, ProgressMode::Auto);
    }

    #[test]
    fn option_forms_of_getopt_long() {
        for args in [
            &["-d", "1,31", "-c", "zlib", "-j", "2", "in", "out"][..],
            &["-d1,31", "-czlib", "-j2", "in", "out"],
            &[
                "--dump-level=1,31",
                "--compress",
                "zlib",
                "--jobs=2",
                "in",
                "out",
            ],
            &["in", "-d", "1,31", "out", "-czlib", "-j", "2"],
        ] {
            let s = save(args);
            assert_eq!(
                s.dump_level,
                Levels(vec![
                    DumpLevel::new(1).unwrap(),
                    DumpLevel::new(31).unwrap()
                ]),
                "{args:?}"
            );
            assert_eq!(s.compress, Compression::Zlib, "{args:?}");
            assert_eq!(s.jobs, Some(2), "{args:?}");
            assert_eq!(s.output, Some(PathBuf::from("out")), "{args:?}");
        }
        // A cluster: flags, then one taking the rest as its value.
        let s = save(&["-Fj3", "in"]);
        assert!(s.flat);
        assert_eq!(s.jobs, Some(3));
        assert_eq!(s.output, None);
        // `-` and anything after `--` are arguments.
        let s = save(&["-F", "--", "-in", "-"]);
        assert_eq!(s.dump, PathBuf::from("-in"));
        assert_eq!(s.output, Some(PathBuf::from("-")));
        let s = save(&["--progress", "never", "--json", "in", "o"]);
        assert_eq!(s.progress, ProgressMode::Never);
        assert!(s.json);
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert_eq!(err(&[]), "no command given");
        assert_eq!(err(&["frob"]), "unknown command frob");
        assert_eq!(err(&["save"]), "save: missing <DUMP>");
        assert_eq!(err(&["save", "a", "b", "c"]), "save: unexpected argument c");
        assert_eq!(err(&["save", "-x", "a"]), "save: unknown option -x");
        assert_eq!(err(&["save", "--x", "a"]), "save: unknown option --x");
        assert_eq!(err(&["save", "a", "-d"]), "save: -d needs a value (LIST)");
        assert_eq!(
            err(&["save", "a", "--jobs"]),
            "save: --jobs needs a value (N)"
        );
        assert_eq!(
            err(&["save", "--json=1", "a"]),
            "save: --json takes no value"
        );
        assert_eq!(err(&["save", "-F", "-F", "a"]), "save: --flat given twice");
        assert_eq!(
            err(&["save", "-j", "0", "a"]),
            "save: --jobs 0: expected a number of threads, 1 to 65535"
        );
        assert_eq!(
            err(&["save", "-c", "bzip2", "a"]),
            "save: --compress bzip2: expected one of zstd, lzo, zlib, none"
        );
        assert_eq!(
            err(&["save", "-d", "32", "a"]),
            "save: --dump-level 32: dump level 32 is not in 0..=31"
        );
        assert_eq!(
            err(&["save", "-d", "1,x", "a"]),
            "save: --dump-level 1,x: \"x\" is not a dump level (0..31)"
        );
        assert_eq!(err(&["info", "-d", "1", "a"]), "info: unknown option -d");
        let e = parse(["save", "-x"].map(OsString::from)).unwrap_err();
        assert_eq!(e.usage, "vmcore save [OPTIONS] <DUMP> [OUTPUT]");
        assert_eq!(e.help, "vmcore save --help");
    }

    #[test]
    fn paths_need_not_be_utf8() {
        let raw = OsStr::from_bytes(b"/tmp/\xff.core").to_os_string();
        let cmd = parse([
            OsString::from("info"),
            OsString::from("--vmlinux"),
            raw.clone(),
            raw.clone(),
        ])
        .unwrap();
        let Parsed::Run(Cli {
            command: Command::Info { common, json },
        }) = cmd
        else {
            panic!("{cmd:?}");
        };
        assert_eq!(common.dump.as_os_str(), raw);
        assert_eq!(
            common.vmlinux.as_deref().map(|p| p.as_os_str()),
            Some(raw.as_os_str())
        );
        assert!(!json);
    }

    #[test]
    fn help_and_version() {
        for args in [&["--help"][..], &["-h"], &["help"]] {
            let Ok(Parsed::Help(h)) = parse(args.iter().map(OsString::from)) else {
                panic!("{args:?}");
            };
            for c in COMMANDS {
                assert!(h.contains(c.about), "{args:?} lacks {}", c.name);
            }
        }
        for args in [&["save", "--help"][..], &["save", "-Fh"], &["help", "save"]] {
            let Ok(Parsed::Help(h)) = parse(args.iter().map(OsString::from)) else {
                panic!("{args:?}");
            };
            assert!(
                h.contains("Usage: vmcore save [OPTIONS] <DUMP> [OUTPUT]"),
                "{h}"
            );
            assert!(h.contains("-d, --dump-level <LIST>"), "{h}");
            assert!(h.contains("[default: lzo]"), "{h}");
            assert!(h.contains("zstd  zstd frames"), "{h}");
        }
        assert!(matches!(
            parse(["-V"].map(OsString::from)),
            Ok(Parsed::Version)
        ));
        // After `--`, or as a value, -h is not a request for help.
        let s = save(&["-d31", "--", "-h"]);
        assert_eq!(s.dump, PathBuf::from("-h"));
    }

    #[test]
    fn every_option_in_the_table_is_read() {
        // parse's debug assertion checks that the builder asked for every
        // option of the command's table; run it for each command, once
        // without options and once with all of them.
        for c in COMMANDS {
            parse([c.name, "dump"].map(OsString::from)).unwrap_or_else(|e| panic!("{e}"));
            let mut args: Vec<OsString> = vec![c.name.into()];
            for o in c.opts {
                args.push(format!("--{}", o.long).into());
                if o.value.is_some() {
                    let any = if o.long == "jobs" { "2" } else { "1" };
                    args.push(o.choices.first().map_or(any, |c| c.0).into());
                }
            }
            args.push("dump".into());
            parse(args).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        }
    }
}
