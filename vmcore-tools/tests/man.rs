//! Every option of the `vmcore` command line appears in man/vmcore.1, and
//! every command has a section there.

use vmcore_tools::cli::COMMANDS;

fn man_text() -> String {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../man/vmcore.1");
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn every_option_and_command_is_documented() {
    // roff escapes '-' as '\-'; compare on the unescaped text.
    let man = man_text().replace("\\-", "-");
    let mut missing = Vec::new();
    let mut checked = 0;
    for c in COMMANDS {
        if !man.contains(&format!(".B {}", c.name)) {
            missing.push(format!("command {}", c.name));
        }
        for o in c.opts {
            checked += 1;
            if !man.contains(&format!("--{}", o.long)) {
                missing.push(format!("{} --{}", c.name, o.long));
            }
            if let Some(s) = o.short {
                if !man.contains(&format!("-{s}")) {
                    missing.push(format!("{} -{s}", c.name));
                }
            }
            for (value, _) in o.choices {
                if !man.contains(value) {
                    missing.push(format!("{} --{} {value}", c.name, o.long));
                }
            }
        }
    }
    assert!(
        checked >= 4,
        "found only {checked} options: the test is not looking at the CLI"
    );
    assert!(missing.is_empty(), "not in man/vmcore.1: {missing:?}");
}
