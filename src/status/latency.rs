//! Where an event's time goes inside tidemark, per connector, as Prometheus histograms:
//!
//! - `source`: from the moment the source read the log data holding the event (the
//!   replication client's socket read on PostgreSQL; the binlog client handing the event over
//!   on MySQL, which reads and parses it in that step) to the moment the source handed the
//!   event to the pipeline (the client's queue, decoding, the snapshot's bookkeeping, and any
//!   wait for room in the channel);
//! - `pipeline`: from the moment the pipeline took the event's batch from the source to the
//!   moment it handed the event's record to the producer (routing, validation, encoding, and any
//!   wait for the in-flight limit);
//! - `produce_ack`: from that hand-over to Kafka's acknowledgement (the producer's batching,
//!   the broker's write and replication, the way back).
//!
//! - `commit_to_read` (PostgreSQL only): from a transaction's commit on the server (its commit
//!   timestamp, by the server's clock) to tidemark reading the transaction's first message, one
//!   observation per transaction: the server's share (the commit's WAL flush, the walsender's
//!   decoding) and the lag while tidemark catches up. MySQL's binlog timestamps have whole
//!   seconds, too coarse for these buckets, so that source does not observe it.
//!
//! - `read_wait`: how long a source's read waited to coalesce under load
//!   (`crate::source::read_pacing`), one observation per read that waited: the delay tidemark
//!   adds on purpose to read more per wake-up.
//!
//! With the end-to-end latency a consumer measures, these say whether a delay is tidemark's,
//! the broker's, or before tidemark (the database's commit and its log reaching the reader).
//! One observation costs a clock read and three relaxed atomic additions; nothing allocates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The buckets' upper bounds in microseconds (the exposition writes them in seconds).
pub const BOUNDS_MICROS: [u64; 13] = [
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
    2_000_000, 5_000_000,
];

/// A latency histogram with fixed buckets, updated without locks.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last one is above every bound.
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramReading {
    /// Cumulative counts per bound of [`BOUNDS_MICROS`], then the total (`+Inf`).
    pub cumulative: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        self.observe_n(elapsed, 1);
    }

    /// `n` observations of the same `elapsed` (the events of one log read).
    pub fn observe_n(&self, elapsed: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[bucket].fetch_add(n, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(micros.saturating_mul(n), Ordering::Relaxed);
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// One observation of the time from `at_unix_micros` (microseconds since the Unix epoch, by
    /// another host's clock) to now; a time in the future (clock skew) counts as zero.
    pub fn observe_since_unix_micros(&self, at_unix_micros: i64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let micros = u64::try_from(now.saturating_sub(at_unix_micros)).unwrap_or(0);
        self.observe(Duration::from_micros(micros));
    }

    pub fn read(&self) -> HistogramReading {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        HistogramReading {
            cumulative,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: total,
        }
    }
}

/// One connector's stage histograms (see the module doc).
#[derive(Default)]
pub struct StageLatency {
    pub commit_to_read: Histogram,
    pub read_wait: Histogram,
    pub source: Histogram,
    pub pipeline: Histogram,
    pub produce_ack: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_holds_them() {
        let h = Histogram::default();
        for micros in [0, 500, 501, 1_000, 7_000, 9_000_000] {
            h.observe(Duration::from_micros(micros));
        }
        let r = h.read();
        // <= 0.5 ms: 0 and 500; <= 1 ms: + 501 and 1,000; <= 10 ms: + 7,000; +Inf: + 9 s.
        assert_eq!(r.cumulative[0], 2);
        assert_eq!(r.cumulative[1], 4);
        assert_eq!(r.cumulative[3], 4);
        assert_eq!(r.cumulative[4], 5);
        assert_eq!(r.cumulative[BOUNDS_MICROS.len() - 1], 5);
        assert_eq!(r.cumulative[BOUNDS_MICROS.len()], 6);
        assert_eq!(r.count, 6);
        assert!((r.sum_seconds - 9.009001).abs() < 1e-9, "{}", r.sum_seconds);
    }

    #[test]
    fn a_wall_clock_time_is_measured_to_now_and_a_future_one_counts_as_zero() {
        let h = Histogram::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or_default();
        h.observe_since_unix_micros(now - 3_000);
        h.observe_since_unix_micros(now + 60_000_000);
        let r = h.read();
        // 3 ms ago: above 2 ms, and (well) below 1 s; the future one in the first bucket.
        assert_eq!(r.cumulative[0], 1);
        assert_eq!(r.cumulative[2], 1);
        assert_eq!(r.cumulative[10], 2);
        assert!(
            r.sum_seconds >= 0.003 && r.sum_seconds < 1.0,
            "{}",
            r.sum_seconds
        );
    }

    #[test]
    fn a_read_of_n_events_counts_n_observations() {
        let h = Histogram::default();
        h.observe_n(Duration::from_micros(1_500), 1_000);
        h.observe_n(Duration::from_micros(100), 0);
        let r = h.read();
        assert_eq!(r.cumulative[1], 0);
        assert_eq!(r.cumulative[2], 1_000);
        assert_eq!(r.count, 1_000);
        assert!((r.sum_seconds - 1.5).abs() < 1e-9, "{}", r.sum_seconds);
    }
}
