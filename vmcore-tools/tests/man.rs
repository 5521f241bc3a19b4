//! Every option of the `vmcore` command line appears in man/vmcore.1, and
//! every command has a section there.

use clap::CommandFactory;
use vmcore_tools::cli::Cli;

fn man_text() -> String {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../man/vmcore.1");
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn every_option_and_command_is_documented() {
    // roff escapes '-' as '\-'; compare on the unescaped text.
    let man = man_text().replace("\\-", "-");
    let cmd = Cli::command();
    let mut missing = Vec::new();
    let mut checked = 0;
    for sub in cmd.get_subcommands() {
        if !man.contains(&format!(".B {}", sub.get_name())) {
            missing.push(format!("command {}", sub.get_name()));
        }
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                checked += 1;
                if !man.contains(&format!("--{long}")) {
                    missing.push(format!("{} --{long}", sub.get_name()));
                }
            }
        }
    }
    assert!(checked >= 4, "found only {checked} options: the test is not looking at the CLI");
    assert!(missing.is_empty(), "not in man/vmcore.1: {missing:?}");
}
