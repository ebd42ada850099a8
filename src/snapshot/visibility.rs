//! What a chunk's `SELECT` saw of the transactions the log shows, for sources where a commit
//! can reach the log before it becomes visible to other sessions (PostgreSQL).
//!
//! PostgreSQL writes a transaction's commit record to the WAL (and sets its commit bit in the
//! commit log) *before* it removes the transaction from the set of running transactions, which
//! is what makes it visible to new snapshots; a synchronous standby that has not confirmed the
//! commit keeps it invisible for as long as it waits. So a chunk's `SELECT`, run after its low
//! watermark committed, may not see a transaction whose commit precedes the low watermark in
//! the WAL. [`crate::snapshot`] states how the interleaver uses this module to stay correct.
//!
//! - [`TxnSnapshot`]: the `SELECT`'s own snapshot (`pg_current_snapshot()`, read in the same
//!   `REPEATABLE READ` transaction as the chunk): which transaction ids it saw.
//! - [`CommitHistory`]: the transaction ids the stream has shown committing in this life of
//!   the connector, one bit each, from a base id on (bounded: ids that every later snapshot
//!   sees are forgotten, and at most [`CommitHistory::MAX_IDS`] are kept).

use std::collections::VecDeque;

/// A PostgreSQL snapshot: transaction ids below `xmin` are all finished, ids from `xmax` on
/// were running (or not started), ids between are finished unless listed in `xip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnSnapshot {
    pub xmin: u64,
    pub xmax: u64,
    /// Running at the snapshot, sorted.
    pub xip: Vec<u64>,
}

impl TxnSnapshot {
    /// Whether a transaction that committed is visible in this snapshot.
    pub fn sees(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && self.xip.binary_search(&xid).is_err())
    }

    /// Parses PostgreSQL's text form `xmin:xmax:xip1,xip2,...` (`pg_snapshot`, 64-bit ids).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().splitn(3, ':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let list = parts.next()?;
        let mut xip = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect::<Option<Vec<u64>>>()?;
        xip.sort_unstable();
        (xmin <= xmax).then_some(Self { xmin, xmax, xip })
    }
}

/// The full (epoch-extended) transaction id of a 32-bit one (the WAL stream's `xid`), taken
/// as the one closest to `near` (a full id of about the same time).
pub fn widen_xid(xid: u32, near: u64) -> u64 {
    const SPAN: u64 = 1 << 32;
    let candidate = (near & !(SPAN - 1)) | u64::from(xid);
    let mut best = candidate;
    for c in [candidate.wrapping_sub(SPAN), candidate.wrapping_add(SPAN)] {
        if c.abs_diff(near) < best.abs_diff(near) {
            best = c;
        }
    }
    best
}

/// Committed transaction ids the stream has shown in this life.
///
/// Every id at or above [`CommitHistory::base`] that committed before the stream's current
/// position is either recorded here or was never shown by the stream (a transaction that
/// changed nothing the publication sends). Ids below the base that the stream showed in this
/// life are recorded too: a transaction that took its id before the stream started can commit
/// after it, and while it waits for a synchronous standby it is still running to every test
/// but the log (`pg_xact_status` says `in progress`). Other ids below the base are unknown; a
/// snapshot that could not see such an id is resolved by [`CommitHistory::conflict`]'s `gap`
/// argument.
#[derive(Debug, Clone)]
pub struct CommitHistory {
    base: u64,
    words: VecDeque<u64>,
    /// Ids below `base` the stream showed, sorted: at most the transactions that were
    /// running when the stream started (or when the base moved up past them).
    early: Vec<u64>,
    newest: Option<u64>,
    max_ids: u64,
}

/// Why a chunk cannot be armed with the snapshot it was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The stream already showed this transaction committing, and the `SELECT` did not see
    /// it: its change went out before the chunk and the chunk's rows may be older.
    StreamedUnseen(u64),
    /// The `SELECT` did not see this committed transaction, and whether the stream already
    /// showed it is unknown (it is older than the history).
    UnknownUnseen(u64),
}

impl Conflict {
    pub fn xid(&self) -> u64 {
        match self {
            Conflict::StreamedUnseen(x) | Conflict::UnknownUnseen(x) => *x,
        }
    }
}

impl CommitHistory {
    /// At most this many ids (bits) are kept: 8 MiB. Beyond, the oldest are forgotten (the
    /// base moves up).
    pub const MAX_IDS: u64 = 1 << 26;

    /// A history complete from `base` on: `base` must be an id assigned no earlier than the
    /// start of the stream (PostgreSQL: `pg_current_xact_id()` taken after the stream started).
    pub fn new(base: u64) -> Self {
        Self::with_limit(base, Self::MAX_IDS)
    }

    pub fn with_limit(base: u64, max_ids: u64) -> Self {
        Self {
            base,
            words: VecDeque::new(),
            early: Vec::new(),
            newest: None,
            max_ids: max_ids.max(64),
        }
    }

    /// The lowest id the history is complete from.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The newest committed id recorded, if any.
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// A full id near the ids the stream shows now (for [`widen_xid`]).
    pub fn reference(&self) -> u64 {
        self.newest.unwrap_or(self.base)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.words.len() + self.early.len()) * 8
    }

    /// The stream showed `xid` committing.
    pub fn record(&mut self, xid: u64) {
        self.newest = Some(self.newest.map_or(xid, |n| n.max(xid)));
        if xid < self.base {
            if let Err(at) = self.early.binary_search(&xid) {
                self.early.insert(at, xid);
            }
            return;
        }
        let index = xid - self.base;
        let word = (index / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (index % 64);
        while self.words.len() as u64 * 64 > self.max_ids {
            self.words.pop_front();
            self.base += 64;
        }
    }

    /// Whether the stream showed `xid` committing in this life.
    pub fn contains(&self, xid: u64) -> bool {
        if xid < self.base {
            return self.early.binary_search(&xid).is_ok();
        }
        let index = xid - self.base;
        self.words
            .get((index / 64) as usize)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// Forgets ids below `xmin` (every snapshot taken from now on sees them).
    pub fn forget_below(&mut self, xmin: u64) {
        self.early.retain(|x| *x >= xmin);
        while self.base + 64 <= xmin && !self.words.is_empty() {
            self.words.pop_front();
            self.base += 64;
        }
        if self.words.is_empty() && xmin > self.base {
            self.base = xmin;
        }
    }

    /// Whether a chunk read with `snapshot` may be armed now, the stream having shown every
    /// commit up to here: not if the stream showed a transaction committing that the snapshot
    /// did not see. `gap` lists the ids the snapshot did not see although they had committed
    /// when it was read (PostgreSQL: `xip` members whose `pg_xact_status` is `committed`);
    /// those below the base cannot be checked against the history and conflict too.
    pub fn conflict(&self, snapshot: &TxnSnapshot, gap: &[u64]) -> Option<Conflict> {
        if let Some(newest) = self.newest.filter(|n| *n >= snapshot.xmax) {
            return Some(Conflict::StreamedUnseen(newest));
        }
        if let Some(x) = snapshot.xip.iter().find(|x| self.contains(**x)) {
            return Some(Conflict::StreamedUnseen(*x));
        }
        gap.iter()
            .find(|x| **x < self.base)
            .map(|x| Conflict::UnknownUnseen(*x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_finished_ids_below_xmax_not_in_xip() {
        let s = TxnSnapshot::parse("100:105:101,103").unwrap();
        assert_eq!(s.xip, vec![101, 103]);
        assert!(s.sees(99) && s.sees(100) && s.sees(102) && s.sees(104));
        assert!(!s.sees(101) && !s.sees(103) && !s.sees(105) && !s.sees(1000));
        assert_eq!(
            TxnSnapshot::parse("7:7:").unwrap(),
            TxnSnapshot {
                xmin: 7,
                xmax: 7,
                xip: vec![]
            }
        );
        assert!(TxnSnapshot::parse("7:x:").is_none());
        assert!(TxnSnapshot::parse("9:7:").is_none());
        assert!(TxnSnapshot::parse("7").is_none());
    }

    #[test]
    fn widening_picks_the_epoch_nearest_the_reference() {
        let e = 5u64 << 32;
        assert_eq!(widen_xid(10, e + 20), e + 10);
        assert_eq!(
            widen_xid(u32::MAX - 1, e + 3),
            e - 2,
            "just before the wrap"
        );
        assert_eq!(widen_xid(2, e + u64::from(u32::MAX) - 3), e + (1 << 32) + 2);
        assert_eq!(widen_xid(3, 0), 3);
    }

    #[test]
    fn the_history_records_ids_and_forgets_what_every_snapshot_sees() {
        let mut h = CommitHistory::new(1000);
        h.record(1000);
        h.record(1130);
        assert!(h.contains(1000) && h.contains(1130));
        assert!(!h.contains(999) && !h.contains(1001) && !h.contains(5000));
        // Below the base: a transaction that took its id before the stream started.
        h.record(999);
        h.record(990);
        assert!(h.contains(999) && h.contains(990) && !h.contains(995));
        h.forget_below(995);
        assert!(
            !h.contains(990) && h.contains(999),
            "forgotten below the horizon only"
        );
        h.forget_below(1100);
        assert_eq!(h.base(), 1064);
        assert!(!h.contains(999) && !h.contains(1000) && h.contains(1130));
        h.forget_below(10_000);
        assert_eq!(h.base(), 10_000, "empty: the base moves to the horizon");
        assert_eq!(h.newest(), Some(1130));
    }

    #[test]
    fn the_history_is_bounded() {
        let mut h = CommitHistory::with_limit(0, 128);
        for x in 0..10_000 {
            h.record(x);
        }
        assert!(h.bytes() <= 16);
        assert!(h.base() >= 10_000 - 128);
        assert!(h.contains(9_999) && !h.contains(100));
    }

    #[test]
    fn conflicts_are_streamed_ids_the_snapshot_did_not_see() {
        let mut h = CommitHistory::new(100);
        let s = TxnSnapshot::parse("100:110:102,105").unwrap();
        h.record(101);
        h.record(104);
        assert_eq!(h.conflict(&s, &[]), None, "seen by the snapshot");
        h.record(105);
        assert_eq!(h.conflict(&s, &[]), Some(Conflict::StreamedUnseen(105)));
        let mut h = CommitHistory::new(100);
        h.record(110);
        assert_eq!(
            h.conflict(&s, &[]),
            Some(Conflict::StreamedUnseen(110)),
            "at or above xmax"
        );
        let h = CommitHistory::new(103);
        assert_eq!(
            h.conflict(&s, &[102]),
            Some(Conflict::UnknownUnseen(102)),
            "committed, unseen, below the history"
        );
        assert_eq!(
            h.conflict(&s, &[105]),
            None,
            "committed, unseen, not streamed yet"
        );
    }

    /// Found under load (tests/postgres/visibility.rs): the writer took id 726 while the
    /// stream was starting, the base read after it was 727, and the writer's commit, shown by
    /// the stream, waited for a synchronous standby. `pg_xact_status(726)` said `in progress`,
    /// so the gap was empty, and the chunk was armed with the row as it was before 726.
    #[test]
    fn a_streamed_id_below_the_base_that_the_snapshot_did_not_see_conflicts() {
        let mut h = CommitHistory::new(727);
        h.record(726);
        h.record(728);
        let s = TxnSnapshot::parse("726:730:726").unwrap();
        assert_eq!(h.conflict(&s, &[]), Some(Conflict::StreamedUnseen(726)));
        // Once a snapshot sees it (its xmin passed it), it is forgotten.
        h.forget_below(729);
        assert!(!h.contains(726));
        let later = TxnSnapshot::parse("729:731:").unwrap();
        assert_eq!(h.conflict(&later, &[]), None);
    }
}
