//! The periodic stream line of a connector (`logging.progress_interval_ms`, 30 s by
//! default): events produced per second since the last line, the lag of the newest event
//! (now minus its commit time), the newest checkpointed position, and whether the connector
//! has caught up with its source (no event older than a few seconds waits behind it).

use std::time::{Duration, Instant};

/// An event whose commit time is at most this old counts as caught up.
const CAUGHT_UP_LAG_MS: i64 = 5_000;

pub struct StreamReport {
    every: Option<Duration>,
    since: Instant,
    events: u64,
    newest_commit_ms: Option<i64>,
    position: Option<String>,
}

impl StreamReport {
    /// A report every `every_ms` (`0`: none).
    pub fn new(every_ms: u64) -> Self {
        Self {
            every: (every_ms > 0).then(|| Duration::from_millis(every_ms)),
            since: Instant::now(),
            events: 0,
            newest_commit_ms: None,
            position: None,
        }
    }

    /// A change from the log (or a snapshot row) committed at `commit_ms`.
    pub fn event(&mut self, commit_ms: i64) {
        self.events += 1;
        self.newest_commit_ms = Some(
            self.newest_commit_ms
                .map_or(commit_ms, |m| m.max(commit_ms)),
        );
    }

    /// The newest position a checkpoint carried (recorded when the line is due).
    pub fn position(&mut self, position: String) {
        self.position = Some(position);
    }

    /// Whether the line is due (then the caller records the newest position).
    pub fn due(&self) -> bool {
        self.every
            .is_some_and(|every| self.since.elapsed() >= every)
    }

    /// Logs the line when it is due (`now_ms`: the wall clock).
    pub fn maybe_log(&mut self, connector: &str, now_ms: i64) {
        let Some(every) = self.every else { return };
        let elapsed = self.since.elapsed();
        if elapsed < every {
            return;
        }
        let rate = (self.events as f64 / elapsed.as_secs_f64()).round() as u64;
        let lag_ms = self.newest_commit_ms.map(|c| (now_ms - c).max(0));
        // Idle (no event since the last line) or the newest event recent: nothing waits.
        let caught_up = self.events == 0 || lag_ms.is_some_and(|l| l <= CAUGHT_UP_LAG_MS);
        tracing::info!(
            connector = %connector,
            events = self.events,
            events_per_second = rate,
            lag_seconds = lag_ms.map(|l| l as f64 / 1000.0),
            position = %self.position.as_deref().unwrap_or("none yet"),
            caught_up,
            "stream"
        );
        self.since = Instant::now();
        self.events = 0;
        self.newest_commit_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_due_only_after_its_interval_and_counts_from_the_last() {
        let mut r = StreamReport::new(0);
        r.event(1);
        r.maybe_log("c", 2);
        assert_eq!(r.events, 1, "never due when off");
        let mut r = StreamReport::new(1);
        r.event(1_000);
        r.event(900);
        assert_eq!(r.newest_commit_ms, Some(1_000));
        std::thread::sleep(Duration::from_millis(5));
        r.maybe_log("c", 2_000);
        assert_eq!((r.events, r.newest_commit_ms), (0, None));
    }
}
