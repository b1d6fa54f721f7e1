//! What the log says about logins refused: the first few of every ten
//! seconds one line each, the rest as one summary line at the end of the
//! ten seconds. A flood of bad logins must not become a flood of lines (a
//! disk filled by the log, a console nobody can read).

use std::time::{Duration, Instant};

use super::queue::Dropped;
use crate::server::console::log_err;

/// How long a window of the log is.
const WINDOW: Duration = Duration::from_secs(10);

/// Lines of their own per window; the rest are counted.
const LINES_PER_WINDOW: u32 = 5;

/// Refusals counted in the current window.
#[derive(Debug)]
pub(super) struct Tally {
    started: Instant,
    lines_left: u32,
    refused: u64,
    unsaid: u64,
    dropped: Dropped,
}

impl Tally {
    pub(super) fn new(now: Instant) -> Tally {
        Tally {
            started: now,
            lines_left: LINES_PER_WINDOW,
            refused: 0,
            unsaid: 0,
            dropped: Dropped::default(),
        }
    }

    /// A login refused: said in a line of its own while the window has room.
    pub(super) fn refused(&mut self, line: impl FnOnce() -> String) {
        self.refused += 1;
        match self.lines_left.checked_sub(1) {
            Some(left) => {
                self.lines_left = left;
                log_err!("{}", line());
            }
            None => self.unsaid += 1,
        }
    }

    /// Logins the queue dropped unverified.
    pub(super) fn dropped(&mut self, dropped: Dropped) {
        self.dropped.crowded += dropped.crowded;
        self.dropped.expired += dropped.expired;
        match (&mut self.dropped.worst, dropped.worst) {
            (Some((source, count)), Some((other, more))) if *source == other => *count += more,
            (Some((_, count)), Some(other)) if other.1 > *count => self.dropped.worst = Some(other),
            (None, worst) => self.dropped.worst = worst,
            _ => {}
        }
    }

    /// At the end of a window, the summary line (if anything went unsaid),
    /// returned for tests; a new window starts.
    pub(super) fn tick(&mut self, now: Instant) -> Option<String> {
        if now.saturating_duration_since(self.started) < WINDOW {
            return None;
        }
        let line = self.summary();
        if let Some(line) = &line {
            log_err!("{line}");
        }
        *self = Tally::new(now);
        line
    }

    fn summary(&self) -> Option<String> {
        let Dropped {
            crowded,
            expired,
            worst,
        } = &self.dropped;
        if self.unsaid == 0 && *crowded == 0 && *expired == 0 {
            return None;
        }
        let mut line = format!(
            "logins in the last {} s: {} refused ({} not shown one by one)",
            WINDOW.as_secs(),
            self.refused,
            self.unsaid
        );
        if *crowded > 0 {
            line.push_str(&format!(
                ", {crowded} turned away unverified (too many at once from one address)"
            ));
            if let Some((source, count)) = worst {
                line.push_str(&format!(", {count} of them from {source}"));
            }
        }
        if *expired > 0 {
            line.push_str(&format!(
                ", {expired} dropped unverified (older than a handshake may take)"
            ));
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::Source;
    use super::*;

    #[test]
    fn a_flood_is_five_lines_and_a_summary() {
        let start = Instant::now();
        let mut tally = Tally::new(start);
        let mut said = 0;
        for _ in 0..1_000 {
            tally.refused(|| {
                said += 1;
                "refused".to_owned()
            });
        }
        assert_eq!(said, 5);
        tally.dropped(Dropped {
            crowded: 40,
            expired: 3,
            worst: Some((Source::of("127.0.0.2"), 39)),
        });
        assert_eq!(tally.tick(start + Duration::from_secs(1)), None);
        let line = tally
            .tick(start + WINDOW)
            .expect("a summary at the end of the window");
        assert_eq!(
            line,
            "logins in the last 10 s: 1000 refused (995 not shown one by one), 40 turned away \
             unverified (too many at once from one address), 39 of them from 127.0.0.2, 3 \
             dropped unverified (older than a handshake may take)"
        );
        assert_eq!(
            tally.tick(start + WINDOW * 2),
            None,
            "a quiet window says nothing"
        );
    }
}
