//! Kernel command lines: `--reuse-cmdline`, `--append`.

/// Splits a command line into parameters, keeping double-quoted spans
/// (`foo="a b"`) together as the kernel's `next_arg()` does.
pub fn split_params(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

/// The running kernel's command line made fit for the new kernel, as
/// kexec-tools' `--reuse-cmdline` does: `BOOT_IMAGE=` always dropped,
/// `crashkernel=` dropped for a crash kernel (it must not reserve again).
pub fn reuse(proc_cmdline: &str, crash: bool) -> String {
    split_params(proc_cmdline.trim_end_matches(['\n', '\0']))
        .into_iter()
        .filter(|p| !p.starts_with("BOOT_IMAGE="))
        .filter(|p| !(crash && p.starts_with("crashkernel=")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The final command line: the reused one (if any), then `--append`.
pub fn build(reused: Option<&str>, append: Option<&str>) -> String {
    [reused, append]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_drops_boot_image_and_crashkernel() {
        let l = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-56-arm64 root=UUID=1 ro crashkernel=256M quiet dyndbg=\"file x +p\"\n";
        assert_eq!(reuse(l, true), "root=UUID=1 ro quiet dyndbg=\"file x +p\"");
        assert_eq!(
            reuse(l, false),
            "root=UUID=1 ro crashkernel=256M quiet dyndbg=\"file x +p\""
        );
    }

    #[test]
    fn build_joins() {
        assert_eq!(
            build(Some("root=/dev/vda"), Some(" maxcpus=1 ")),
            "root=/dev/vda maxcpus=1"
        );
        assert_eq!(build(None, Some("console=ttyAMA0")), "console=ttyAMA0");
        assert_eq!(build(None, None), "");
    }
}
