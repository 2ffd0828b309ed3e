//! Live progress on stderr: an `indicatif` bar for terminals
//! (`ProgressLine`) and nmap-style periodic `Stats:` lines for
//! `--stats-every` (`StatsEvery`).
//!
//! Invariants: nothing here writes to stdout, which is for results. The
//! bar draws only when the caller enabled it (stderr is a terminal) and
//! indicatif agrees the target is drawable; lines printed while it is shown
//! go above it, never through it. All figures come from the engine's
//! `Progress` — no clock is read here — so the output is a pure function
//! of its inputs and testable. Nothing panics: stderr write errors are
//! ignored, and ratios guard against zero and overflow.

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Progress;

/// `H:MM:SS`, as nmap prints durations.
pub fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Share of the plan decided, 0–100.
pub fn percent(p: &Progress) -> f64 {
    if p.total == 0 {
        return 0.0;
    }
    (p.decided.min(p.total) as f64 / p.total as f64) * 100.0
}

/// Time left at the rate so far; None before anything is decided.
pub fn remaining(p: &Progress) -> Option<Duration> {
    if p.decided == 0 {
        return None;
    }
    let left = p.total.saturating_sub(p.decided) as f64;
    let secs = p.elapsed.as_secs_f64() * left / p.decided as f64;
    Duration::try_from_secs_f64(secs).ok()
}

/// The achieved probe rate: probes sent per second of `elapsed`.
pub fn achieved_rate(sent: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0;
    }
    (sent as f64 / secs) as u64
}

/// Probes sent per second so far.
pub fn rate(p: &Progress) -> u64 {
    achieved_rate(p.sent, p.elapsed)
}

/// The text beside the bar.
pub fn status_text(p: &Progress) -> String {
    let eta = remaining(p).map_or_else(|| "-:--:--".to_string(), hms);
    format!(
        "{:.2}% | {} sent | {} pkt/s | {} open | {} elapsed | ETA {eta}",
        percent(p),
        p.sent,
        rate(p),
        p.open,
        hms(p.elapsed)
    )
}

/// A one-line progress bar on stderr.
pub struct ProgressLine {
    bar: ProgressBar,
}

impl ProgressLine {
    /// `enabled`: whether stderr is a terminal (the caller decides, with
    /// `std::io::IsTerminal`). Disabled, nothing is ever drawn.
    pub fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self::with_target(target)
    }

    fn with_target(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let style = ProgressStyle::with_template("[{bar:24}] {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        ProgressLine { bar }
    }

    /// Whether the bar is drawn at all.
    pub fn is_drawn(&self) -> bool {
        !self.bar.is_hidden()
    }

    pub fn update(&mut self, p: &Progress) {
        if !self.is_drawn() {
            return;
        }
        self.bar.set_length(p.total);
        self.bar.set_position(p.decided.min(p.total));
        self.bar.set_message(status_text(p));
    }

    /// Print a line (e.g. "Discovered open port ...") above the bar, or
    /// plainly to stderr when there is no bar.
    pub fn println(&self, line: &str) {
        if self.is_drawn() {
            self.bar.println(line);
        } else {
            let _ = writeln!(io::stderr(), "{line}");
        }
    }

    /// Remove the bar from the screen.
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// nmap's `--stats-every`: a plain status line at most once per interval
/// of scan time.
#[derive(Clone, Debug)]
pub struct StatsEvery {
    interval: Duration,
    next: Duration,
    label: &'static str,
}

impl StatsEvery {
    pub fn new(interval: Duration) -> Self {
        StatsEvery {
            interval,
            next: interval,
            label: "Scan",
        }
    }

    /// Name the scan in the line, e.g. "SYN scan" (default "Scan").
    pub fn label(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }

    /// Print the line if `p.elapsed` reached the next multiple of the
    /// interval; the next one is due at the following multiple.
    pub fn maybe_print(&mut self, p: &Progress, w: &mut dyn Write) -> io::Result<()> {
        if p.elapsed < self.next {
            return Ok(());
        }
        // A zero interval has no next multiple: print on every call.
        if let Some(k) = p.elapsed.as_nanos().checked_div(self.interval.as_nanos()) {
            self.next = u32::try_from(k + 1)
                .ok()
                .and_then(|k| self.interval.checked_mul(k))
                .unwrap_or(Duration::MAX);
        }
        let etc = remaining(p).map_or_else(
            || "unknown".to_string(),
            |d| format!("{} remaining", hms(d)),
        );
        writeln!(
            w,
            "Stats: {} elapsed; {} {:.2}% done; {} probes sent ({} probes/s); {} open; ETC: {etc}",
            hms(p.elapsed),
            self.label,
            percent(p),
            p.sent,
            rate(p),
            p.open
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};

    fn prog(secs: u64, decided: u64) -> Progress {
        Progress {
            decided,
            total: 65_535,
            sent: decided + 7,
            open: 3,
            elapsed: Duration::from_secs(secs),
        }
    }

    #[test]
    fn stats_print_once_per_interval_at_the_right_times() {
        let mut s = StatsEvery::new(Duration::from_secs(10)).label("SYN scan");
        let mut out = Vec::new();
        let mut printed_at = Vec::new();
        for ms in (0..=45_000u64).step_by(250) {
            let before = out.len();
            let p = Progress {
                elapsed: Duration::from_millis(ms),
                ..prog(0, 1000)
            };
            s.maybe_print(&p, &mut out).unwrap();
            if out.len() > before {
                printed_at.push(ms);
            }
        }
        assert_eq!(printed_at, [10_000, 20_000, 30_000, 40_000]);
        // A late tick prints once, then waits for the next multiple.
        let mut s = StatsEvery::new(Duration::from_secs(10));
        let mut out = Vec::new();
        s.maybe_print(&prog(25, 10), &mut out).unwrap();
        s.maybe_print(&prog(29, 10), &mut out).unwrap();
        s.maybe_print(&prog(30, 10), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    }

    #[test]
    fn stats_line_reads_like_nmaps() {
        let mut s = StatsEvery::new(Duration::from_secs(10)).label("SYN scan");
        let mut out = Vec::new();
        let p = Progress {
            decided: 4520,
            total: 10_000,
            sent: 29_623,
            open: 3,
            elapsed: Duration::from_secs(10),
        };
        s.maybe_print(&p, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Stats: 0:00:10 elapsed; SYN scan 45.20% done; 29623 probes sent (2962 probes/s); 3 open; ETC: 0:00:12 remaining\n"
        );
        let mut out = Vec::new();
        let mut s = StatsEvery::new(Duration::from_secs(1));
        s.maybe_print(&prog(3725, 0), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Stats: 1:02:05 elapsed; Scan 0.00% done; 7 probes sent (0 probes/s); 3 open; ETC: unknown\n"
        );
    }

    #[test]
    fn figures_survive_edge_values() {
        let zero = Progress::default();
        assert_eq!(percent(&zero), 0.0);
        assert_eq!(rate(&zero), 0);
        assert_eq!(achieved_rate(6_500_000, Duration::from_secs(65)), 100_000);
        assert_eq!(achieved_rate(1, Duration::MAX), 0);
        assert_eq!(remaining(&zero), None);
        let over = Progress {
            decided: 10,
            total: 5,
            ..zero
        };
        assert_eq!(percent(&over), 100.0);
        assert_eq!(remaining(&over), Some(Duration::ZERO));
        let huge = Progress {
            decided: 1,
            total: u64::MAX,
            elapsed: Duration::MAX,
            sent: u64::MAX,
            open: 0,
        };
        assert_eq!(remaining(&huge), None);
        let _ = status_text(&huge);
        let mut s = StatsEvery::new(Duration::from_nanos(1));
        s.maybe_print(&huge, &mut Vec::new()).unwrap();
        let mut z = StatsEvery::new(Duration::ZERO);
        let mut out = Vec::new();
        z.maybe_print(&zero, &mut out).unwrap();
        z.maybe_print(&zero, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
        assert_eq!(
            status_text(&prog(10, 5000)),
            "7.63% | 5007 sent | 500 pkt/s | 3 open | 0:00:10 elapsed | ETA 0:02:01"
        );
    }

    /// A terminal that records what is drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn log(&self, s: String) -> io::Result<()> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .push(s);
            Ok(())
        }
        fn text(&self) -> String {
            self.0.lock().unwrap().join("")
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            160
        }
        fn move_cursor_up(&self, _n: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _n: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _n: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _n: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.log(format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.log(s.to_string())
        }
        fn clear_line(&self) -> io::Result<()> {
            self.log("<clear>".into())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn disabled_line_draws_nothing() {
        let mut line = ProgressLine::new(false);
        assert!(!line.is_drawn());
        line.update(&prog(10, 5000));
        line.finish();
    }

    #[test]
    fn enabled_line_draws_status_and_prints_above_it() {
        let screen = Screen::default();
        let mut line =
            ProgressLine::with_target(ProgressDrawTarget::term_like(Box::new(screen.clone())));
        assert!(line.is_drawn());
        line.update(&prog(10, 5000));
        line.println("Discovered open port 22/tcp on 198.18.0.2");
        line.finish();
        let text = screen.text();
        assert!(
            text.contains("7.63% | 5007 sent | 500 pkt/s | 3 open"),
            "{text}"
        );
        // The message is written as its own whole line, not inside the bar.
        assert!(
            screen
                .0
                .lock()
                .unwrap()
                .iter()
                .any(|s| s == "Discovered open port 22/tcp on 198.18.0.2\n"
                    || s == "Discovered open port 22/tcp on 198.18.0.2"),
            "{text}"
        );
        // Finishing clears the bar.
        assert!(text.ends_with("<clear>"), "{text:?}");
    }
}
