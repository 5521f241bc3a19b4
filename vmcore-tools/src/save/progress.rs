//! A one-line progress bar on standard error, redrawn at most ten times a
//! second (no flicker: one carriage return and one write per redraw).

use std::io::Write;
use std::time::{Duration, Instant};

/// Smallest interval between redraws.
const REDRAW: Duration = Duration::from_millis(100);

/// A progress line over `total` units (pages).
#[derive(Debug)]
pub struct Progress {
    on: bool,
    total: u64,
    start: Instant,
    last: Option<Instant>,
    label: String,
}

impl Progress {
    /// A bar that draws only when `on`.
    pub fn new(on: bool, total: u64, label: String) -> Progress {
        Progress {
            on,
            total,
            start: Instant::now(),
            last: None,
            label,
        }
    }

    /// The line for `done` units after `secs` seconds.
    pub fn line(&self, done: u64, secs: f64) -> String {
        let total = self.total.max(1);
        let frac = (done.min(total) as f64) / total as f64;
        let width = 30usize;
        let filled = ((frac * width as f64) as usize).min(width);
        let eta = if done > 0 && done < total {
            let rest = secs / done as f64 * (total - done) as f64;
            format!(" eta {:.0}s", rest)
        } else {
            String::new()
        };
        format!(
            "{} [{}{}] {:5.1}% {done}/{total} pages {:.1}s{eta}",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            frac * 100.0,
            secs
        )
    }

    /// Reports `done` units; redraws if the last redraw is old enough.
    pub fn update(&mut self, done: u64) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < REDRAW) {
            return;
        }
        self.last = Some(now);
        let line = self.line(done, now.duration_since(self.start).as_secs_f64());
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r{line}\x1b[K");
        let _ = e.flush();
    }

    /// Draws the final state and ends the line.
    pub fn finish(&mut self, done: u64) {
        if !self.on {
            return;
        }
        let line = self.line(done, self.start.elapsed().as_secs_f64());
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "\r{line}\x1b[K");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_fraction_and_eta() {
        let p = Progress::new(false, 200, "saving".into());
        let l = p.line(50, 2.0);
        assert!(l.starts_with("saving [#######        "), "{l}");
        assert!(l.contains(" 25.0% 50/200 pages 2.0s eta 6s"), "{l}");
        assert!(!p.line(200, 8.0).contains("eta"));
    }
}
