//! The acknowledgement window of one connector's output: which of its produced messages are
//! durable, as one number.
//!
//! Each message a connector hands to the sink gets the next sequence number (0, 1, 2, ...).
//! The sink reports each one's outcome, in any order (Kafka acknowledges partitions
//! independently). The window turns those reports into the *acknowledged prefix*: the
//! smallest sequence number not yet acknowledged, so every message below it is durable.
//!
//! Correctness argument. A position checkpoint taken after message `n - 1` was handed over
//! may be committed once the prefix reaches `n`. The prefix only moves past a number when
//! that number is reported acknowledged, and every number below it already was, so it never
//! claims a message that is not durable. A failed message stops the prefix at its number for
//! good: no checkpoint after it can become committable, and the failure is kept for the
//! connector to report (it restarts from its last committed position, so nothing is lost).
//!
//! Cost: one uncontended lock per report and no allocation while reports come in order (the
//! usual case, one partition's acknowledgements arrive in order). A waiter registers the
//! number it waits for under the same lock, and is woken only when the prefix reaches it or
//! stops at a failure, so there is no wake-up per message and no lost wake-up.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::error::{Error, Result, Severity};
use crate::status::latency::StageLatency;

/// The acknowledged prefix, and whether it is stuck behind a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acked {
    /// Every message with a smaller sequence number is acknowledged.
    pub prefix: u64,
    /// The message at `prefix` failed: the prefix will not move again.
    pub failed: bool,
}

struct Inner {
    prefix: u64,
    /// Outcomes reported for `prefix + 1 ..` (index 0 is `prefix + 1`) while `prefix` itself is
    /// still outstanding: `true` = acknowledged.
    later: VecDeque<bool>,
    /// The lowest failed sequence number and its error (severity and text).
    failure: Option<(u64, Severity, String)>,
    /// The smallest number a waiter waits for (`u64::MAX`: nobody waits).
    wanted: u64,
}

impl Inner {
    fn acked(&self) -> Acked {
        Acked {
            prefix: self.prefix,
            failed: self
                .failure
                .as_ref()
                .is_some_and(|(s, _, _)| *s == self.prefix),
        }
    }
}

pub struct AckWindow {
    inner: Mutex<Inner>,
    /// Bumped to wake waiters.
    wake: watch::Sender<u64>,
    /// The connector's stage histograms: the sink records each acknowledgement's delay there.
    latency: Option<Arc<StageLatency>>,
}

impl Default for AckWindow {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                prefix: 0,
                later: VecDeque::new(),
                failure: None,
                wanted: u64::MAX,
            }),
            wake: watch::Sender::new(0),
            latency: None,
        }
    }
}

impl AckWindow {
    /// A window whose acknowledgements' delays go to `latency`.
    pub fn with_latency(latency: Option<Arc<StageLatency>>) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// Where the sink records how long an acknowledgement took.
    pub fn latency(&self) -> Option<&StageLatency> {
        self.latency.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way that
        // matters more than stopping would: keep going with what is there.
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Reports the outcome of message `seq`. A number below the prefix (reported twice) is
    /// ignored.
    pub fn report(&self, seq: u64, outcome: Result<()>) {
        let mut inner = self.lock();
        if seq < inner.prefix {
            return;
        }
        if let Err(e) = outcome {
            if inner.failure.as_ref().is_none_or(|(s, _, _)| seq < *s) {
                inner.failure = Some((seq, e.severity, e.to_string()));
            }
            let wake = seq == inner.prefix;
            drop(inner);
            if wake {
                self.wake.send_modify(|g| *g += 1);
            }
            return;
        }
        if seq > inner.prefix {
            let offset = (seq - inner.prefix - 1) as usize;
            if inner.later.len() <= offset {
                inner.later.resize(offset + 1, false);
            }
            inner.later[offset] = true;
            return;
        }
        // `seq == prefix` succeeded: move past it and every acknowledged one right after it.
        inner.prefix += 1;
        // Popping a `false` leaves `prefix` outstanding and `later` starting at `prefix + 1`.
        while let Some(true) = inner.later.pop_front() {
            inner.prefix += 1;
        }
        let state = inner.acked();
        let wake = state.prefix >= inner.wanted || state.failed;
        if wake {
            inner.wanted = u64::MAX;
        }
        drop(inner);
        if wake {
            self.wake.send_modify(|g| *g += 1);
        }
    }

    /// The current state.
    pub fn acked(&self) -> Acked {
        self.lock().acked()
    }

    /// Waits until every message below `seq` is acknowledged (`Ok`), or the prefix is stuck
    /// below `seq` behind a failed message (that message's error).
    pub async fn wait_for(&self, seq: u64) -> Result<Acked> {
        let mut woken = self.wake.subscribe();
        loop {
            {
                let mut inner = self.lock();
                let state = inner.acked();
                if state.prefix >= seq {
                    return Ok(state);
                }
                if state.failed {
                    drop(inner);
                    return Err(self
                        .failure()
                        .unwrap_or_else(|| Error::transient("no failure")));
                }
                inner.wanted = inner.wanted.min(seq);
            }
            // A report after the registration above bumps the generation, so this returns.
            if woken.changed().await.is_err() {
                return Err(Error::transient("the acknowledgement window was dropped"));
            }
        }
    }

    /// The lowest failure reported so far, as an error naming the message.
    pub fn failure(&self) -> Option<Error> {
        let inner = self.lock();
        inner.failure.as_ref().map(|(seq, severity, text)| {
            let message = format!("message {seq} of this connector failed: {text}");
            match severity {
                Severity::Transient => Error::transient(message),
                Severity::Definite => Error::definite(message),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn in_order_reports_move_the_prefix() {
        let w = AckWindow::default();
        for s in 0..5 {
            w.report(s, Ok(()));
        }
        assert_eq!(
            w.acked(),
            Acked {
                prefix: 5,
                failed: false
            }
        );
    }

    #[test]
    fn a_gap_holds_the_prefix_until_filled() {
        let w = AckWindow::default();
        w.report(1, Ok(()));
        w.report(3, Ok(()));
        assert_eq!(w.acked().prefix, 0);
        w.report(0, Ok(()));
        assert_eq!(w.acked().prefix, 2);
        w.report(2, Ok(()));
        assert_eq!(w.acked().prefix, 4);
    }

    #[test]
    fn a_failure_stops_the_prefix_for_good() {
        let w = AckWindow::default();
        w.report(0, Ok(()));
        w.report(2, Ok(()));
        w.report(1, Err(Error::definite("too large")));
        w.report(3, Ok(()));
        assert_eq!(
            w.acked(),
            Acked {
                prefix: 1,
                failed: true
            }
        );
        let e = w.failure().unwrap();
        assert!(!e.is_transient());
        assert!(e.to_string().contains("message 1"), "{e}");
    }

    #[tokio::test]
    async fn waiters_wake_when_reached_or_failed() {
        let w = Arc::new(AckWindow::default());
        let waiter = {
            let w = w.clone();
            tokio::spawn(async move { w.wait_for(3).await })
        };
        let early = {
            let w = w.clone();
            tokio::spawn(async move { w.wait_for(1).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        w.report(0, Ok(()));
        assert_eq!(early.await.unwrap().unwrap().prefix, 1);
        assert!(!waiter.is_finished());
        w.report(2, Ok(()));
        w.report(1, Ok(()));
        assert_eq!(waiter.await.unwrap().unwrap().prefix, 3);

        let late = {
            let w = w.clone();
            tokio::spawn(async move { w.wait_for(10).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        w.report(3, Err(Error::transient("broker gone")));
        let e = late.await.unwrap().unwrap_err();
        assert!(e.is_transient());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// Against a model: after any order of reports, the prefix is the smallest number
        /// not reported acknowledged, or the lowest failure if that comes first.
        #[test]
        fn prefix_matches_the_model(
            order in Just((0u64..60).collect::<Vec<_>>()).prop_shuffle(),
            cut in 0usize..60,
            fail in proptest::option::of(0u64..60),
        ) {
            let w = AckWindow::default();
            let reported: Vec<u64> = order[..cut].to_vec();
            for &s in &reported {
                let outcome = if Some(s) == fail { Err(Error::transient("x")) } else { Ok(()) };
                w.report(s, outcome);
            }
            let mut model = 0u64;
            while reported.contains(&model) && Some(model) != fail {
                model += 1;
            }
            let a = w.acked();
            prop_assert_eq!(a.prefix, model);
            prop_assert_eq!(a.failed, Some(model) == fail && reported.contains(&model));
        }
    }
}
