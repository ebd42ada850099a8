//! Coalesced reads of a change log under load, shared by both sources.
//!
//! What costs CPU in a stream at moderate rates is not the work per change but the wake-ups:
//! a server that commits single-row transactions sends each one as it commits, and a reader
//! that reads as data arrives wakes once per transaction, then wakes the pipeline, which
//! wakes the producer's thread. Measured on the development machine (BENCHMARKS.md, session
//! 17): at 10,000 single-row commits a second tidemark spent 20-56 µs of CPU per change, 4-10
//! times its cost per change in bulk, with 0.6-0.7 context switches per change and a fifth of
//! its samples in the kernel's task switch.
//!
//! The rule. The reader counts the messages it reads over windows of [`RATE_WINDOW`]. While
//! the last window brought at least `busy_rate` messages a second, the next read waits until
//! `coalesce` has passed since the previous read returned: what the server sends meanwhile
//! is read, decoded and handed over in one wake-up. Below that rate, and after a quiet
//! window, every read happens as soon as data arrives.
//!
//! What it costs. Under load a message waits at most `coalesce` (plus the timer's 1 ms
//! granularity) longer before it is read; at low rates nothing changes. A wait never delays
//! a shutdown or a due snapshot chunk (nor, on PostgreSQL, a status update): the stream loops
//! race it against those as they race the read itself.
//!
//! Where it starts (each source's `BUSY_RATE`), measured on the development machine
//! (BENCHMARKS.md, session 18) at 10,000 single-row commits a second, tidemark's own CPU per
//! change and commit-to-consumer p50 / p99. "Alone": 20 s streams on a fresh broker; "in the
//! benchmark": the latency step of `scripts/bench.sh` / `bench-mysql.sh`, after the bulk run.
//!
//! | source, 10,000 commits/s | reads as data arrives | coalesced, 2 ms |
//! |---|---|---|
//! | MariaDB, alone | 26.5-28.5 µs, 7 / 15-22 ms | 16.6-19.6 µs, 10 / 15-29 ms |
//! | MariaDB, in the benchmark | 31.3-35.7 µs, 9-11 / 36-223 ms | 18.5-21.1 µs, 11-12 / 23-28 ms |
//! | PostgreSQL, alone | 16.2-19.5 µs, 7 / 12-13 ms | 15.9-16.8 µs, 10 / 15-16 ms |
//!
//! On MariaDB coalescing saves a third to a half of the CPU at that rate, and with it the tail
//! that forms when tidemark, the database's writer and the broker share two cores; it costs
//! 2-3 ms of p50. On PostgreSQL, whose walsender sends fewer, larger segments, it saves little.
//! So the MySQL source coalesces from 20,000 binlog events a second (5,000 such commits) and
//! the PostgreSQL source from 50,000 messages (about 17,000). Coalescing cannot stop the
//! wake-ups themselves: a worker parked in `epoll_wait` still wakes for every segment the
//! server sends during the wait (0.7 context switches per change either way); what it saves is
//! the work of a read, a decode and a hand-over per segment.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ConfigError;
use crate::status::latency::StageLatency;

/// How long the message rate is measured over.
pub const RATE_WINDOW: Duration = Duration::from_millis(20);
/// The coalescing time when a connector file does not set one.
pub const DEFAULT_COALESCE_MS: u64 = 2;
/// The longest coalescing time a connector file may set.
pub const MAX_COALESCE_MS: u64 = 100;

/// Resolves a source's `read_coalesce_ms` key (`key`, in `file`): the default when unset, an
/// error above [`MAX_COALESCE_MS`].
pub fn coalesce_setting(ms: Option<u64>, key: &str, file: &Path) -> Result<Duration, ConfigError> {
    let ms = ms.unwrap_or(DEFAULT_COALESCE_MS);
    if ms > MAX_COALESCE_MS {
        return Err(ConfigError::invalid(
            file,
            key,
            format!(
                "{ms} ms: at most {MAX_COALESCE_MS} (it delays every read under load; \
                 {DEFAULT_COALESCE_MS} is the default, 0 turns it off)"
            ),
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// The pacing state of one reader (see the module doc).
pub struct ReadPacing {
    /// How long a read waits after the previous one while busy (zero: never waits).
    coalesce: Duration,
    /// Messages per second from which reads are coalesced.
    busy_rate: u64,
    /// When the previous read that returned data ended.
    last_read: Option<Instant>,
    /// Whether the last rate window was busy.
    busy: bool,
    window_start: Instant,
    window_messages: u64,
    /// The connector's stage histograms: each wait is observed as `read_wait`.
    latency: Option<std::sync::Arc<StageLatency>>,
}

impl ReadPacing {
    pub fn new(coalesce: Duration, busy_rate: u64) -> Self {
        Self {
            coalesce,
            busy_rate,
            last_read: None,
            busy: false,
            window_start: Instant::now(),
            window_messages: 0,
            latency: None,
        }
    }

    /// The same, observing each wait into `latency.read_wait`.
    pub fn with_latency(mut self, latency: Option<std::sync::Arc<StageLatency>>) -> Self {
        self.latency = latency;
        self
    }

    /// Records that a read returned data now.
    pub fn read_returned(&mut self) {
        self.read_returned_at(Instant::now());
    }

    fn read_returned_at(&mut self, now: Instant) {
        self.last_read = Some(now);
    }

    /// When the previous read returned, if one did.
    pub fn last_read(&self) -> Option<Instant> {
        self.last_read
    }

    /// Counts `messages` read, and judges the rate at the end of each window.
    pub fn count(&mut self, messages: usize) {
        self.count_at(messages, Instant::now());
    }

    fn count_at(&mut self, messages: usize, now: Instant) {
        self.window_messages += messages as u64;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            self.busy = self.window_messages * 1_000_000 / (elapsed.as_micros().max(1) as u64)
                >= self.busy_rate;
            self.window_start = now;
            self.window_messages = 0;
        }
    }

    /// Whether the last window was busy.
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// When the next read may start: `None` at once (not busy, no wait configured, or no read
    /// yet).
    pub fn resume_at(&self) -> Option<Instant> {
        self.last_read
            .map(|t| t + self.coalesce)
            .filter(|_| self.busy && !self.coalesce.is_zero())
    }

    /// Waits until [`Self::resume_at`], if there is one.
    pub async fn pause(&self) {
        if let Some(at) = self.resume_at() {
            let start = Instant::now();
            tokio::time::sleep_until(at).await;
            if let Some(l) = &self.latency {
                l.read_wait.observe(start.elapsed());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_at_once_until_a_window_is_busy_then_waits_the_coalesce_time() {
        let mut p = ReadPacing::new(Duration::from_millis(2), 1_000);
        let t0 = p.window_start;
        p.read_returned_at(t0);
        p.count_at(1, t0);
        assert_eq!(p.resume_at(), None, "no window has ended: read at once");
        // 1 + 20 messages in 20 ms: 1,050 a second.
        let t1 = t0 + RATE_WINDOW;
        p.read_returned_at(t1);
        p.count_at(20, t1);
        assert!(p.busy());
        assert_eq!(p.last_read(), Some(t1));
        assert_eq!(p.resume_at(), Some(t1 + Duration::from_millis(2)));
        // A quiet window (1 message in 20 ms) ends the waits.
        p.count_at(1, t1 + RATE_WINDOW);
        assert!(!p.busy());
        assert_eq!(p.resume_at(), None);
    }

    #[test]
    fn a_zero_coalesce_time_never_waits() {
        let mut p = ReadPacing::new(Duration::ZERO, 1);
        let t0 = p.window_start;
        p.read_returned_at(t0);
        p.count_at(1_000, t0 + RATE_WINDOW);
        assert!(p.busy());
        assert_eq!(p.resume_at(), None);
    }

    #[test]
    fn the_setting_defaults_and_is_bounded() {
        let file = Path::new("connectors/orders.yaml");
        let key = "mysql.read_coalesce_ms";
        assert_eq!(
            coalesce_setting(None, key, file).expect("default"),
            Duration::from_millis(DEFAULT_COALESCE_MS)
        );
        assert_eq!(
            coalesce_setting(Some(0), key, file).expect("off"),
            Duration::ZERO
        );
        let err = coalesce_setting(Some(101), key, file)
            .expect_err("above the bound")
            .to_string();
        assert!(
            err.contains("connectors/orders.yaml") && err.contains(key) && err.contains("101 ms"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn pause_returns_at_the_resume_time_and_at_once_when_not_busy() {
        let latency = std::sync::Arc::new(StageLatency::default());
        let mut p =
            ReadPacing::new(Duration::from_millis(5), 1).with_latency(Some(latency.clone()));
        let start = Instant::now();
        p.pause().await;
        assert!(
            start.elapsed() < Duration::from_millis(5),
            "no read yet: no wait"
        );
        let t0 = p.window_start;
        p.count_at(100, t0 + RATE_WINDOW);
        p.read_returned();
        let start = Instant::now();
        p.pause().await;
        assert!(start.elapsed() >= Duration::from_millis(5));
        assert_eq!(latency.read_wait.read().count, 1, "one wait observed");
    }
}
