//! Fencing: one process streams a connector at a time.
//!
//! A PostgreSQL slot admits one reader, but a MySQL server lets any number of replicas with
//! different server ids read its binlog, so two tidemark processes on one MySQL connector would
//! both stream and both commit. Each daemon process therefore takes an [`Epoch`] when it
//! starts (its start time, with a random tie-breaker), and before a connector streams it
//! records a lease `(connector, epoch)` in the position store; the store's own order decides.
//!
//! # Why it fences
//!
//! - **The process that took the connector last wins.** Acquiring reads the store to its end
//!   (as a position load does). A process taking a connector for the first time uses an epoch
//!   above every lease stored (its start time, or the stored epoch plus one: a clock behind
//!   another machine's does not lose to a process that is gone), writes its lease, and a
//!   watcher follows the store from there: the first lease of the connector with a newer epoch
//!   makes this life stop with a definite error (no further restarts).
//! - **A restart of a connector keeps its epoch**: a connector life that restarts after a
//!   transient error finds the newer lease and is refused, rather than taking the connector
//!   back from a process that took it later.
//! - **Nothing is lost in the hand-over.** Both processes commit only positions whose events
//!   Kafka acknowledged (see [`crate::offsets::tracker`]), so whichever position the store ends
//!   with, every change before it is in Kafka; the overlap is duplicates, never a gap.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One daemon process's claim: newer (greater) wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch of a process starting now: milliseconds since the epoch times 1000, plus a
    /// random tie-breaker.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self(ms * 1000 + rand::random_range(0..1000))
    }
}

/// A lease record in the position store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub connector: String,
    pub epoch: Epoch,
    /// `host:pid` of the process, for the error message of the one that stops.
    pub owner: String,
    pub since_ms: i64,
}

impl LeaseRecord {
    pub fn new(connector: &str, epoch: Epoch) -> Self {
        Self {
            connector: connector.to_string(),
            epoch,
            owner: owner(),
            since_ms: super::now_ms(),
        }
    }

    /// The store key of `connector`'s lease (connector names hold no `:`).
    pub fn key(connector: &str) -> String {
        format!("lease:{connector}")
    }

    /// Why a process holding `ours` must stop, if this lease is newer.
    pub fn supersedes(&self, ours: Epoch) -> Option<String> {
        (self.epoch > ours).then(|| {
            format!(
                "connector {}: a newer tidemark process ({}, since {} ms since the epoch) took over this connector; \
                 this process stops streaming it (one process per connector: the one started last owns it)",
                self.connector, self.owner, self.since_ms
            )
        })
    }
}

fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_epoch_supersedes_an_older_one_only() {
        let old = Epoch(1_000);
        let new = Epoch(2_000);
        let lease = LeaseRecord::new("demo", new);
        assert!(lease
            .supersedes(old)
            .unwrap()
            .contains("newer tidemark process"));
        assert!(lease.supersedes(new).is_none(), "our own lease");
        assert!(LeaseRecord::new("demo", old).supersedes(new).is_none());
        assert_eq!(LeaseRecord::key("demo"), "lease:demo");
        assert!(Epoch::now() > Epoch(0));
    }
}
