//! Every option `kexec-rs --help` (and its commands' help) lists appears in
//! man/kexec-rs.8.

#![allow(clippy::expect_used)]

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kexec-rs"))
        .args(args)
        .output()
        .expect("run kexec-rs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn long_options(help: &str) -> Vec<String> {
    let mut v: Vec<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn every_option_is_in_the_man_page() {
    let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../man/kexec-rs.8"))
        .expect("man/kexec-rs.8")
        .replace("\\-", "-");
    let mut opts = long_options(&help(&["--help"]));
    opts.extend(long_options(&help(&["status", "--help"])));
    for k in [
        "start",
        "stop",
        "status",
        "estimate",
        "test",
        "save",
        "initramfs",
    ] {
        let h = help(&["kdump", k, "--help"]);
        assert!(h.contains("--config"), "kdump {k} --help: {h}");
        opts.extend(long_options(&h));
        assert!(
            man.contains(&format!("kdump {k}")),
            "kdump {k} has no entry in man/kexec-rs.8"
        );
    }
    assert!(
        opts.len() >= 15,
        "only {} options found in --help: {opts:?}",
        opts.len()
    );
    let missing: Vec<&String> = opts.iter().filter(|o| !man.contains(o.as_str())).collect();
    assert!(missing.is_empty(), "not in man/kexec-rs.8: {missing:?}");
    assert!(
        man.contains(".B status"),
        "the status command has no section"
    );
}
