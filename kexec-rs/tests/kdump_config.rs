//! kdump.toml: the shipped example parses, and every key of the config
//! structure and of the example is documented in man/kdump.toml.5.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use kexec_rs::kdump::config::Config;

const EXAMPLE: &str = include_str!("../etc/kdump.toml");

fn man() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../man/kdump.toml.5"))
        .expect("man/kdump.toml.5")
        .replace("\\-", "-")
}

/// Dotted keys of a TOML value's tables (`kernel.image`, …).
fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            let full = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if matches!(v, toml::Value::Table(_)) {
                keys(v, &full, out);
            }
            out.push(full);
        }
    }
}

fn documented(man: &str, dotted: &str) -> bool {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let section = if table.is_empty() {
        format!(".SH [{key}]")
    } else {
        format!(".SH [{table}]")
    };
    let Some(start) = man.find(&section) else {
        return false;
    };
    if table.is_empty() {
        return true;
    }
    let rest = &man[start + section.len()..];
    let end = rest.find("\n.SH ").unwrap_or(rest.len());
    rest[..end].contains(&format!("\n.TP\n.B {key}\n"))
}

#[test]
fn the_example_parses() {
    let c = Config::parse("kexec-rs/etc/kdump.toml", EXAMPLE).unwrap();
    assert_eq!(c.initramfs.modules, ["virtio_mmio", "9pnet_virtio", "9p"]);
    assert_eq!(c.save.dump_levels, [1, 31]);
}

#[test]
fn every_key_is_in_the_man_page() {
    let man = man();
    let mut all = Vec::new();
    // Every field of the structure: serialize the defaults (None fields are
    // skipped by TOML, so also serialize one with every option set).
    let mut full = Config::parse("example", EXAMPLE).unwrap();
    full.kernel.image = Some("/boot/vmlinuz".into());
    full.initramfs.modules_dir = Some("/lib/modules/x".into());
    for c in [Config::default(), full] {
        keys(&toml::Value::try_from(&c).unwrap(), "", &mut all);
    }
    keys(
        &toml::from_str::<toml::Value>(EXAMPLE).unwrap(),
        "",
        &mut all,
    );
    all.sort();
    all.dedup();
    assert!(all.len() >= 18, "{all:?}");
    let missing: Vec<&String> = all.iter().filter(|k| !documented(&man, k)).collect();
    assert!(missing.is_empty(), "not in man/kdump.toml.5: {missing:?}");
    // The man page's own example parses too.
    let ex = man
        .split(".SH EXAMPLE\n.EX\n")
        .nth(1)
        .and_then(|s| s.split("\n.EE").next())
        .unwrap();
    Config::parse("man/kdump.toml.5 EXAMPLE", ex).unwrap();
}
