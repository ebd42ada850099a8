//! The one retry policy of tidemark: exponential backoff with jitter, reset after a stretch of
//! health, abandoned at shutdown.
//!
//! Used wherever tidemark waits to try again after a transient error: a connector restarting
//! from its last committed position (`pipeline::supervise`) and the daemon reaching its
//! position store at start-up (`cli::run`). (The snapshot's re-read of a chunk that saw an
//! unfinished commit is not an error and keeps its own short schedule, `snapshot::driver`.)

use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;

/// Exponential backoff: `initial`, doubling per attempt up to `max`, each delay drawn
/// uniformly from its upper half (jitter, so that connectors failing together do not retry
/// together). An attempt that ran longer than `reset_after` before failing starts the
/// schedule again.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, reset_after: Duration) -> Self {
        Self {
            initial,
            max,
            reset_after,
            attempt: 0,
        }
    }

    /// The schedule of a connector restart: 1 s, 2 s, 4 s ... up to 60 s, reset after a
    /// minute of running.
    pub fn connector() -> Self {
        Self::new(
            Duration::from_millis(500),
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
    }

    /// Failures in a row so far (after [`Backoff::next_delay`]).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next try, for an attempt that started at `started`.
    pub fn next_delay(&mut self, started: Instant) -> Duration {
        let jitter = rand::rng().random_range(0.5..=1.0);
        self.next_delay_with(started.elapsed(), jitter)
    }

    /// [`Backoff::next_delay`] with the attempt's run time and the jitter factor given.
    fn next_delay_with(&mut self, ran: Duration, jitter: f64) -> Duration {
        if ran > self.reset_after {
            self.attempt = 0;
        }
        self.attempt = self.attempt.saturating_add(1);
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(self.attempt.min(16)))
            .min(self.max);
        base.mul_f64(jitter)
    }
}

/// Sleeps `delay`; false when `shutdown` turned true first (the caller gives up).
pub async fn sleep_unless_stopped(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        // (The Ref that wait_for returns is not Send: it is dropped inside.)
        _ = async { let _ = shutdown.wait_for(|s| *s).await; } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets_after_a_healthy_run() {
        let mut b = Backoff::connector();
        let quick = Duration::from_secs(1);
        let delays: Vec<u64> = (0..9)
            .map(|_| b.next_delay_with(quick, 1.0).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        assert_eq!(b.attempt(), 9);
        // A run longer than reset_after starts over.
        assert_eq!(
            b.next_delay_with(Duration::from_secs(61), 1.0),
            Duration::from_secs(1)
        );
        assert_eq!(b.attempt(), 1);
    }

    #[test]
    fn jitter_keeps_the_delay_in_the_upper_half() {
        let mut b = Backoff::connector();
        for _ in 0..200 {
            let d = b.next_delay(Instant::now());
            let base = Duration::from_millis(500)
                .saturating_mul(2u32.pow(b.attempt().min(16)))
                .min(Duration::from_secs(60));
            assert!(d >= base / 2 && d <= base, "{d:?} for base {base:?}");
        }
    }

    #[tokio::test]
    async fn a_shutdown_cuts_the_sleep_short() {
        let (tx, mut rx) = watch::channel(false);
        tx.send(true).unwrap();
        assert!(!sleep_unless_stopped(Duration::from_secs(3600), &mut rx).await);
        let (_tx, mut rx) = watch::channel(false);
        assert!(sleep_unless_stopped(Duration::from_millis(1), &mut rx).await);
    }
}
