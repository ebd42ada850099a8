//! The DBLog interleaver: which rows of a chunk may be emitted, and where in the log.
//!
//! Pure state machine (no I/O), driven by the source in log order: [`Interleaver::arm`] when a
//! chunk's rows have been selected (between its low and high watermark writes),
//! [`Interleaver::on_watermark`] for each watermark the log shows, [`Interleaver::on_change`]
//! for each captured change. The argument for why this is correct is in the
//! [module doc of `snapshot`](super).
//!
//! Several chunks may be armed at once: the driver selects the next chunk before the log has
//! reached the previous one's high watermark, and with `snapshot.parallelism` several readers
//! (one session each) select chunks of different key ranges or tables at the same time, so
//! their windows overlap in the log (`low 1 < low 2 < high 2 < high 1` is possible). The
//! argument for one chunk does not depend on the others: a change inside a chunk's window drops
//! its key from that chunk, whatever other windows are open, and each chunk is released at its
//! own high watermark.
//!
//! A chunk whose watermarks never reach the log (written by a transaction that rolled back)
//! is recognised by order: a chunk armed before another chunk's request was issued had its high
//! watermark committed before that chunk's low watermark was written, so once the later
//! chunk's high watermark is in the log, the earlier one's should have been too.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use super::visibility::TxnSnapshot;

/// A watermark seen in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watermark {
    Low(u64),
    High(u64),
}

/// One chunk's selected rows, in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk<T, K, R> {
    /// Unique per connector life; the watermarks carry it.
    pub id: u64,
    pub table: T,
    pub rows: Vec<(K, R)>,
    /// Which transactions the chunk's `SELECT` saw, where a commit can precede its
    /// visibility in the log (PostgreSQL); `None`: every commit before the low watermark was
    /// visible to it (MySQL/MariaDB).
    pub seen: Option<TxnSnapshot>,
    /// How many chunks this interleaver had armed ([`Interleaver::armed_so_far`]) when the
    /// chunk's request was issued, before its low watermark was written.
    pub issued_after: u64,
}

struct Armed<T, K, R> {
    id: u64,
    /// Its place in arming order.
    seq: u64,
    issued_after: u64,
    table: T,
    seen: Option<TxnSnapshot>,
    /// `None` once a change in the window touched the row's key.
    rows: Vec<(K, Option<R>)>,
    index: HashMap<K, usize>,
    /// The log has passed the low watermark.
    open: bool,
}

/// What a high watermark releases: the chunk's rows that no change in its window touched, in
/// key order, to be emitted right there in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Released<T, R> {
    pub id: u64,
    pub table: T,
    pub rows: Vec<R>,
    /// Rows dropped because the log changed their key in the window.
    pub dropped: usize,
}

pub struct Interleaver<T, K, R> {
    armed: VecDeque<Armed<T, K, R>>,
    /// Chunks armed so far.
    arms: u64,
}

impl<T, K, R> Default for Interleaver<T, K, R> {
    fn default() -> Self {
        Self {
            armed: VecDeque::new(),
            arms: 0,
        }
    }
}

impl<T: PartialEq, K: Hash + Eq + Clone, R> Interleaver<T, K, R> {
    /// Adds a selected chunk; its low watermark must not have been passed to
    /// [`Interleaver::on_watermark`] yet.
    pub fn arm(&mut self, chunk: Chunk<T, K, R>) {
        let index = chunk
            .rows
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        self.arms += 1;
        self.armed.push_back(Armed {
            id: chunk.id,
            seq: self.arms,
            issued_after: chunk.issued_after,
            table: chunk.table,
            seen: chunk.seen,
            rows: chunk.rows.into_iter().map(|(k, r)| (k, Some(r))).collect(),
            index,
            open: false,
        });
    }

    /// Chunks armed and not yet released.
    pub fn pending(&self) -> usize {
        self.armed.len()
    }

    /// The ids of the chunks armed and not yet released.
    pub fn pending_ids(&self) -> Vec<u64> {
        self.armed.iter().map(|a| a.id).collect()
    }

    /// Chunks armed so far (a request issued now carries it as [`Chunk::issued_after`]).
    pub fn armed_so_far(&self) -> u64 {
        self.arms
    }

    /// A watermark from the log. A high watermark of the oldest armed chunk releases it.
    /// Watermarks of no armed chunk (written by an earlier life of the connector, whose
    /// chunks are re-read after a restart) are ignored.
    pub fn on_watermark(&mut self, w: Watermark) -> Option<Released<T, R>> {
        match w {
            Watermark::Low(id) => {
                if let Some(a) = self.armed.iter_mut().find(|a| a.id == id) {
                    a.open = true;
                }
                None
            }
            Watermark::High(id) => {
                let bound = self.armed.iter().find(|a| a.id == id)?.issued_after;
                // A chunk armed before this one's request was issued wrote its high watermark
                // before this one's low watermark: it lost its watermarks (written by a
                // transaction that rolled back). It can never be released safely and is dropped.
                self.armed.retain(|a| {
                    let lost = a.seq <= bound;
                    if lost {
                        tracing::warn!(
                            chunk = a.id,
                            "snapshot chunk without watermarks in the log; dropped"
                        );
                    }
                    !lost
                });
                let i = self.armed.iter().position(|a| a.id == id)?;
                let a = self.armed.remove(i)?;
                if !a.open {
                    // A high watermark before its low one cannot happen with one writer; treat
                    // the window as unknown and release nothing.
                    tracing::warn!(chunk = a.id, "high watermark before low; chunk dropped");
                    return Some(Released {
                        id: a.id,
                        table: a.table,
                        dropped: a.rows.len(),
                        rows: Vec::new(),
                    });
                }
                let total = a.rows.len();
                let rows: Vec<R> = a.rows.into_iter().filter_map(|(_, r)| r).collect();
                Some(Released {
                    id: a.id,
                    table: a.table,
                    dropped: total - rows.len(),
                    rows,
                })
            }
        }
    }

    /// A change of `table` in the log that touched `key` (an update that changes the key
    /// reports both keys), committed by transaction `txn` (where the source knows it). Drops
    /// the key's row from every chunk whose window is open, and from every chunk not yet open
    /// whose `SELECT` did not see `txn` (its row is older than this change).
    pub fn on_change(&mut self, table: &T, key: &K, txn: Option<u64>) {
        for a in self
            .armed
            .iter_mut()
            .filter(|a| &a.table == table && a.stale_after(txn))
        {
            if let Some(&i) = a.index.get(key) {
                a.rows[i].1 = None;
            }
        }
    }

    /// The table was truncated in the log by `txn`: every row of its open windows (and of
    /// chunks whose `SELECT` did not see `txn`) is stale.
    pub fn on_truncate(&mut self, table: &T, txn: Option<u64>) {
        for a in self
            .armed
            .iter_mut()
            .filter(|a| &a.table == table && a.stale_after(txn))
        {
            for row in &mut a.rows {
                row.1 = None;
            }
        }
    }
}

impl<T, K, R> Armed<T, K, R> {
    /// Whether a change committed by `txn`, at this point of the log, makes the chunk's row
    /// of its key stale: inside the window always; before it, when the `SELECT` did not see
    /// the transaction.
    fn stale_after(&self, txn: Option<u64>) -> bool {
        self.open
            || match (&self.seen, txn) {
                (Some(seen), Some(x)) => !seen.sees(x),
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    //! The interleaver against a model of a table, a log and the DBLog driver: random
    //! concurrent writes around every step of every chunk, random consumer lag, several chunks
    //! in flight; the consumer's view must end equal to the table and never go back in time.
    //!
    //! With `late` visibility (PostgreSQL), a write can reach the log before it becomes
    //! visible to other sessions' `SELECT`s (its commit record is written, its transaction is
    //! still "running"), for as long as the model wants; the driver arms each chunk with the
    //! `SELECT`'s snapshot and refuses (re-reads) a chunk whose snapshot missed a transaction
    //! the consumer has already seen, as the PostgreSQL source does with
    //! [`CommitHistory`](crate::snapshot::visibility::CommitHistory).
    use super::*;
    use crate::snapshot::visibility::CommitHistory;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Key = u32;
    /// A row version, which is also the id of the transaction that wrote it: a global counter
    /// (`None` in the table means deleted).
    type Version = u64;

    #[derive(Debug, Clone)]
    enum LogEntry {
        /// A committed write: key, its version, whether it deleted the row.
        Write(Key, Version, bool),
        /// A truncate, with its version.
        Truncate(Version),
        /// A watermark, written by its own transaction.
        Mark(Watermark, Version),
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Commit a write: key, delete or not.
        Write(Key, bool),
        /// Commit a write that reaches the log now but becomes visible only at a later
        /// [`Step::Reveal`] (or before the next write of its key).
        LateWrite(Key, bool),
        /// The oldest late write becomes visible.
        Reveal,
        /// Every late write becomes visible (before the final chunks).
        RevealAll,
        Truncate,
        /// The consumer processes up to this many log entries.
        Consume(usize),
        /// A round of chunks, one per key range still being read (up to the model's
        /// parallelism), read by concurrent sessions: each op either moves one reader a step
        /// (low watermark, select, high watermark) or commits a write, so the readers' steps and
        /// the writes interleave in any order. Readers not finished when the ops run out finish
        /// in reader order.
        Round(Vec<RoundOp>),
    }

    #[derive(Debug, Clone)]
    enum RoundOp {
        /// Reader `n % readers` takes its next step.
        Advance(u8),
        Write(Key, bool),
    }

    fn step(keys: Key) -> impl Strategy<Value = Step> {
        let write = (0..keys, prop::bool::weighted(0.2));
        prop_oneof![
            5 => write.clone().prop_map(|(k, d)| Step::Write(k, d)),
            2 => write.clone().prop_map(|(k, d)| Step::LateWrite(k, d)),
            2 => Just(Step::Reveal),
            1 => Just(Step::Truncate),
            4 => (0usize..6).prop_map(Step::Consume),
            4 => prop::collection::vec(
                prop_oneof![
                    3 => any::<u8>().prop_map(RoundOp::Advance),
                    2 => write.prop_map(|(k, d)| RoundOp::Write(k, d)),
                ],
                0..12,
            )
            .prop_map(Step::Round),
        ]
    }

    struct World {
        /// Live rows and their versions, as a new `SELECT` sees them.
        table: BTreeMap<Key, Version>,
        log: Vec<LogEntry>,
        next_version: Version,
        /// Late writes in the log, not visible yet: version -> (key, deleted).
        late: BTreeMap<Version, (Key, bool)>,
    }

    impl World {
        fn version(&mut self) -> Version {
            self.next_version += 1;
            self.next_version
        }

        fn apply(&mut self, k: Key, v: Version, delete: bool) {
            if delete {
                self.table.remove(&k);
            } else {
                self.table.insert(k, v);
            }
        }

        /// A late write becomes visible.
        fn reveal(&mut self, v: Version) {
            if let Some((k, d)) = self.late.remove(&v) {
                self.apply(k, v, d);
            }
        }

        fn reveal_key(&mut self, k: Key) {
            // A second writer of the key waits for the first one's row lock, which is
            // released only after its transaction became visible.
            let pending: Vec<Version> = self
                .late
                .iter()
                .filter(|(_, (key, _))| *key == k)
                .map(|(v, _)| *v)
                .collect();
            for v in pending {
                self.reveal(v);
            }
        }

        fn write(&mut self, k: Key, delete: bool, late: bool) {
            self.reveal_key(k);
            let v = self.version();
            if late {
                self.late.insert(v, (k, delete));
            } else {
                self.apply(k, v, delete);
            }
            self.log.push(LogEntry::Write(k, v, delete));
        }

        fn truncate(&mut self) {
            // TRUNCATE's lock waits for every writer of the table.
            let pending: Vec<Version> = self.late.keys().copied().collect();
            for v in pending {
                self.reveal(v);
            }
            let v = self.version();
            self.table.clear();
            self.log.push(LogEntry::Truncate(v));
        }

        fn mark(&mut self, w: Watermark) {
            let v = self.version();
            self.log.push(LogEntry::Mark(w, v));
        }

        /// What a `SELECT` now sees of the transactions: every id is finished but the late
        /// ones.
        fn snapshot(&self) -> TxnSnapshot {
            let finished = (1..=self.next_version)
                .rev()
                .find(|v| !self.late.contains_key(v));
            let xmax = finished.map_or(1, |v| v + 1);
            let xip: Vec<u64> = self.late.keys().copied().filter(|v| *v < xmax).collect();
            TxnSnapshot {
                xmin: xip.first().copied().unwrap_or(xmax),
                xmax,
                xip,
            }
        }
    }

    /// What a consumer of the output sees per key, checking that versions never go back.
    #[derive(Default)]
    struct Consumer {
        state: BTreeMap<Key, Version>,
        /// The newest version seen per key (deletes included), to catch stale overwrites.
        newest: BTreeMap<Key, Version>,
    }

    impl Consumer {
        fn apply(&mut self, k: Key, v: Version, deleted: bool) -> Result<(), String> {
            if let Some(&n) = self.newest.get(&k) {
                if v < n {
                    return Err(format!("key {k}: version {v} emitted after {n}"));
                }
            }
            self.newest.insert(k, v);
            if deleted {
                self.state.remove(&k);
            } else {
                self.state.insert(k, v);
            }
            Ok(())
        }
    }

    type Model = Interleaver<(), Key, (Key, Version)>;

    /// The stream side: the interleaver and the transactions it has shown committing.
    struct Stream {
        il: Model,
        history: CommitHistory,
        consumed: usize,
        consumer: Consumer,
        /// Pass transaction ids to the interleaver (the source knows them).
        txns: bool,
    }

    impl Stream {
        /// The consumer processes the log up to `upto` entries.
        fn consume(&mut self, log: &[LogEntry], upto: usize) -> Result<(), String> {
            let end = upto.min(log.len());
            for entry in log.iter().take(end).skip(self.consumed) {
                match entry {
                    LogEntry::Write(k, v, deleted) => {
                        self.history.record(*v);
                        self.il.on_change(&(), k, self.txns.then_some(*v));
                        self.consumer.apply(*k, *v, *deleted)?;
                    }
                    LogEntry::Truncate(v) => {
                        self.history.record(*v);
                        self.il.on_truncate(&(), self.txns.then_some(*v));
                        let ks: Vec<Key> = self.consumer.state.keys().copied().collect();
                        for k in ks {
                            self.consumer.apply(k, *v, true)?;
                        }
                    }
                    LogEntry::Mark(m, v) => {
                        self.history.record(*v);
                        if let Some(rel) = self.il.on_watermark(*m) {
                            for (k, v) in rel.rows {
                                self.consumer.apply(k, v, false)?;
                            }
                        }
                    }
                }
            }
            self.consumed = self.consumed.max(end);
            Ok(())
        }
    }

    /// One key range of the snapshot (the model splits the key space into `lanes` ranges,
    /// read in parallel, as the driver splits a large table).
    struct Lane {
        /// Keys above this one (exclusive) ...
        above: Option<Key>,
        /// ... up to this one (inclusive).
        to: Option<Key>,
        /// The last key the lane's chunks selected.
        last_key: Option<Key>,
        done: bool,
    }

    /// A reader's chunk in a round: its watermark id, what its `SELECT` saw, its rows.
    struct Reading {
        lane: usize,
        id: u64,
        issued_after: u64,
        step: u8,
        selected: Option<(TxnSnapshot, Vec<(Key, Version)>)>,
    }

    impl Reading {
        /// The reader's next step: low watermark, select, high watermark.
        fn advance(&mut self, w: &mut World, lanes: &[Lane], chunk_size: usize) {
            match self.step {
                0 => w.mark(Watermark::Low(self.id)),
                1 => {
                    let lane = &lanes[self.lane];
                    let from = lane.last_key.or(lane.above).map_or(0, |k| k + 1);
                    let rows = w
                        .table
                        .range(from..)
                        .take_while(|(k, _)| lane.to.is_none_or(|t| **k <= t))
                        .take(chunk_size)
                        .map(|(k, v)| (*k, *v))
                        .collect();
                    self.selected = Some((w.snapshot(), rows));
                }
                2 => w.mark(Watermark::High(self.id)),
                _ => {}
            }
            self.step += 1;
        }
    }

    /// `late`: writes may become visible after their log position, and the driver uses the
    /// `SELECT`'s snapshot (PostgreSQL); else every write is visible at its log position and
    /// the driver knows nothing of transactions (MySQL/MariaDB). `lanes`: key ranges read in
    /// parallel (1: one reader, chunk after chunk). `early`: how many of the log's first
    /// writes took their transaction id before the stream read its history's base (PostgreSQL:
    /// transactions running when the stream started, committed after).
    fn run(
        keys: Key,
        initial: usize,
        chunk_size: usize,
        lanes: usize,
        steps: Vec<Step>,
        late: bool,
        early: u64,
    ) -> Result<(), String> {
        let mut w = World {
            table: BTreeMap::new(),
            log: Vec::new(),
            next_version: 0,
            late: BTreeMap::new(),
        };
        // Initial rows exist before the log starts: only the snapshot can deliver them.
        for k in 0..(initial as Key).min(keys) {
            let v = w.version();
            w.table.insert(k, v);
        }
        let mut s = Stream {
            il: Model::default(),
            history: CommitHistory::new(w.next_version + 1 + early),
            consumed: 0,
            consumer: Consumer::default(),
            txns: late,
        };
        // Even split points over the key space, as sampled bounds would give.
        let bound = |i: usize| (keys as usize * i / lanes) as Key;
        let mut lanes: Vec<Lane> = (0..lanes)
            .map(|i| Lane {
                above: (i > 0).then(|| bound(i) - 1),
                to: (i + 1 < lanes).then(|| bound(i + 1) - 1),
                last_key: None,
                done: false,
            })
            .collect();
        let mut next_id = 0u64;
        let mut steps = steps;
        // Then every write becomes visible, and rounds run until every range is covered.
        steps.push(Step::RevealAll);
        steps.extend(std::iter::repeat_n(Step::Round(vec![]), 200));
        for step in steps {
            match step {
                Step::Write(k, d) => w.write(k, d, false),
                Step::LateWrite(k, d) => w.write(k, d, late),
                Step::Reveal => {
                    if let Some(v) = w.late.keys().next().copied() {
                        w.reveal(v);
                    }
                }
                Step::RevealAll => {
                    let pending: Vec<Version> = w.late.keys().copied().collect();
                    for v in pending {
                        w.reveal(v);
                    }
                }
                Step::Truncate => w.truncate(),
                Step::Consume(n) => {
                    let upto = s.consumed + n;
                    s.consume(&w.log, upto)?
                }
                Step::Round(ops) => {
                    let open: Vec<usize> = (0..lanes.len()).filter(|i| !lanes[*i].done).collect();
                    if open.is_empty() {
                        continue;
                    }
                    // At most three chunks in flight per reader: the driver waits for the log.
                    if s.il.pending() + open.len() > 3 * lanes.len() {
                        s.consume(&w.log, usize::MAX)?;
                    }
                    let issued_after = s.il.armed_so_far();
                    let mut readers: Vec<Reading> = open
                        .iter()
                        .map(|&lane| {
                            next_id += 1;
                            Reading {
                                lane,
                                id: next_id,
                                issued_after,
                                step: 0,
                                selected: None,
                            }
                        })
                        .collect();
                    let n = readers.len();
                    for op in ops {
                        match op {
                            RoundOp::Advance(r) => {
                                readers[r as usize % n].advance(&mut w, &lanes, chunk_size)
                            }
                            RoundOp::Write(k, d) => w.write(k, d, false),
                        }
                    }
                    for r in &mut readers {
                        while r.step < 3 {
                            r.advance(&mut w, &lanes, chunk_size);
                        }
                    }
                    // Every reader is done. The source's check before arming: a transaction
                    // the stream has shown and a SELECT did not see makes the driver read that
                    // chunk again; every chunk is checked before the history forgets anything.
                    let checked: Vec<(Reading, bool)> = readers
                        .into_iter()
                        .map(|r| {
                            let conflict = late
                                && r.selected.as_ref().is_some_and(|(snapshot, _)| {
                                    s.history.conflict(snapshot, &[]).is_some()
                                });
                            (r, conflict)
                        })
                        .collect();
                    if let Some(xmin) = checked
                        .iter()
                        .filter_map(|(r, _)| r.selected.as_ref().map(|(snap, _)| snap.xmin))
                        .min()
                    {
                        s.history.forget_below(xmin);
                    }
                    // The chunks are armed (in reader order) before the consumer reads on.
                    for (r, conflict) in checked {
                        let Some((snapshot, rows)) = r.selected else {
                            unreachable!("every reader selected")
                        };
                        if conflict {
                            continue;
                        }
                        let lane = &mut lanes[r.lane];
                        if rows.len() < chunk_size {
                            lane.done = true;
                        }
                        lane.last_key = rows.last().map(|(k, _)| *k).or(lane.last_key);
                        s.il.arm(Chunk {
                            id: r.id,
                            table: (),
                            rows: rows.into_iter().map(|(k, v)| (k, (k, v))).collect(),
                            seen: late.then_some(snapshot),
                            issued_after: r.issued_after,
                        });
                    }
                }
            }
        }
        s.consume(&w.log, usize::MAX)?;
        if lanes.iter().any(|l| !l.done) {
            return Err("snapshot did not finish".into());
        }
        if s.il.pending() != 0 {
            return Err(format!("{} chunks never released", s.il.pending()));
        }
        if s.consumer.state != w.table {
            return Err(format!(
                "consumer {:?} != table {:?}",
                s.consumer.state, w.table
            ));
        }
        Ok(())
    }

    fn wrap_keys(steps: Vec<Step>, keys: Key) -> Vec<Step> {
        steps
            .into_iter()
            .map(|s| match s {
                Step::Write(k, d) => Step::Write(k % keys, d),
                Step::LateWrite(k, d) => Step::LateWrite(k % keys, d),
                Step::Round(ops) => Step::Round(
                    ops.into_iter()
                        .map(|op| match op {
                            RoundOp::Write(k, d) => RoundOp::Write(k % keys, d),
                            other => other,
                        })
                        .collect(),
                ),
                other => other,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        #[test]
        fn consumer_converges_to_the_table_and_never_goes_back(
            keys in 1u32..40,
            initial in 0usize..40,
            chunk_size in prop_oneof![Just(1usize), Just(2), Just(7), Just(1000)],
            steps in prop::collection::vec(step(40), 0..80),
        ) {
            if let Err(e) = run(keys, initial, chunk_size, 1, wrap_keys(steps, keys), false, 0) {
                return Err(TestCaseError::fail(e));
            }
        }

        #[test]
        fn with_commits_visible_after_their_log_position_too(
            keys in 1u32..40,
            initial in 0usize..40,
            chunk_size in prop_oneof![Just(1usize), Just(2), Just(7), Just(1000)],
            steps in prop::collection::vec(step(40), 0..80),
            early in 0u64..4,
        ) {
            if let Err(e) = run(keys, initial, chunk_size, 1, wrap_keys(steps, keys), true, early) {
                return Err(TestCaseError::fail(e));
            }
        }

        /// N readers at once (key ranges of one table, each its own session), their
        /// watermarks, selects and the writes interleaved in any order.
        #[test]
        fn with_parallel_readers_of_key_ranges(
            keys in 4u32..40,
            initial in 0usize..40,
            chunk_size in prop_oneof![Just(1usize), Just(2), Just(7), Just(1000)],
            lanes in 2usize..5,
            late in any::<bool>(),
            steps in prop::collection::vec(step(40), 0..80),
            early in 0u64..4,
        ) {
            let early = if late { early } else { 0 };
            if let Err(e) = run(keys, initial, chunk_size, lanes, wrap_keys(steps, keys), late, early) {
                return Err(TestCaseError::fail(e));
            }
        }
    }

    /// Without the snapshot check, a late commit makes a chunk emit a row older than a change
    /// already sent: the defect the check closes, shown on the model.
    #[test]
    fn without_the_check_a_late_commit_emits_a_stale_row() {
        let mut il: Model = Interleaver::default();
        // Key 1 has version 1; transaction 2 updates it: in the log, not yet visible; the
        // consumer sees it; then a chunk reads the old version 1.
        il.arm(Chunk {
            id: 1,
            table: (),
            rows: vec![(1, (1, 1))],
            seen: None,
            issued_after: 0,
        });
        il.on_change(&(), &1, Some(2)); // before the low watermark: not dropped
        il.on_watermark(Watermark::Low(1));
        let r = il.on_watermark(Watermark::High(1)).unwrap();
        assert_eq!(
            r.rows,
            vec![(1, 1)],
            "the stale row goes out after version 2"
        );
        // With the snapshot, the same change drops it.
        il.arm(Chunk {
            id: 2,
            table: (),
            rows: vec![(1, (1, 1))],
            seen: Some(TxnSnapshot {
                xmin: 2,
                xmax: 3,
                xip: vec![2],
            }),
            issued_after: 0,
        });
        il.on_change(&(), &1, Some(2));
        il.on_watermark(Watermark::Low(2));
        assert!(il.on_watermark(Watermark::High(2)).unwrap().rows.is_empty());
    }

    #[test]
    fn a_change_in_the_window_drops_the_row_and_one_before_does_not() {
        let mut il: Interleaver<&str, u32, &str> = Interleaver::default();
        il.arm(Chunk {
            id: 1,
            table: "t",
            rows: vec![(1, "a"), (2, "b"), (3, "c")],
            seen: None,
            issued_after: 0,
        });
        il.on_change(&"t", &1, None); // before the low watermark: the select saw it
        assert_eq!(il.on_watermark(Watermark::Low(1)), None);
        il.on_change(&"t", &2, None);
        il.on_change(&"other", &3, None);
        let r = il.on_watermark(Watermark::High(1)).unwrap();
        assert_eq!(r.rows, vec!["a", "c"]);
        assert_eq!(r.dropped, 1);
        assert_eq!(il.pending(), 0);
    }

    #[test]
    fn overlapping_windows_release_in_any_order_and_a_lost_chunk_is_dropped() {
        let mut il: Interleaver<&str, u32, &str> = Interleaver::default();
        let chunk = |id, rows, issued_after| Chunk {
            id,
            table: "t",
            rows,
            seen: None,
            issued_after,
        };
        // Two readers at once: low 1, low 2, high 2, high 1.
        il.arm(chunk(1, vec![(1, "a"), (2, "b")], 0));
        il.arm(chunk(2, vec![(5, "e")], 0));
        il.on_watermark(Watermark::Low(1));
        il.on_change(&"t", &2, None);
        il.on_watermark(Watermark::Low(2));
        il.on_change(&"t", &1, None); // in both windows: drops key 1 from chunk 1
        assert_eq!(il.on_watermark(Watermark::High(2)).unwrap().rows, vec!["e"]);
        assert_eq!(il.pending(), 1, "chunk 1 is still open");
        let r = il.on_watermark(Watermark::High(1)).unwrap();
        assert_eq!((r.rows.len(), r.dropped), (0, 2));
        // Chunk 3 is armed before chunk 4's request: its high watermark would precede chunk
        // 4's low one, so when chunk 4's high watermark comes, chunk 3 has lost its own.
        il.arm(chunk(3, vec![(7, "g")], 2));
        il.arm(chunk(4, vec![(8, "h")], 3));
        il.on_watermark(Watermark::Low(4));
        assert_eq!(il.on_watermark(Watermark::High(4)).unwrap().rows, vec!["h"]);
        assert_eq!(il.pending(), 0, "chunk 3 was dropped");
    }

    #[test]
    fn watermarks_of_an_earlier_life_are_ignored() {
        let mut il: Interleaver<&str, u32, &str> = Interleaver::default();
        assert_eq!(il.on_watermark(Watermark::High(7)), None);
        il.arm(Chunk {
            id: 8,
            table: "t",
            rows: vec![(1, "a")],
            seen: None,
            issued_after: 0,
        });
        il.on_watermark(Watermark::Low(7));
        il.on_watermark(Watermark::High(7));
        assert_eq!(il.pending(), 1);
    }
}
