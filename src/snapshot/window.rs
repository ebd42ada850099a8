//! The DBLog interleaver: which rows of a chunk may be emitted, and where in the log.
//!
//! Pure state machine (no I/O), driven by the source in log order: [`Interleaver::arm`] when a
//! chunk's rows have been selected (between its low and high watermark writes),
//! [`Interleaver::on_watermark`] for each watermark the log shows, [`Interleaver::on_change`]
//! for each captured change. The argument for why this is correct is in the
//! [module doc of `snapshot`](super).
//!
//! Several chunks may be armed at once (the driver selects the next chunk before the log has
//! reached the previous one's high watermark); their windows do not overlap, because one
//! session writes the watermarks one after the other: `low 1 < high 1 < low 2 < high 2`.

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
}

struct Armed<T, K, R> {
    id: u64,
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
}

impl<T, K, R> Default for Interleaver<T, K, R> {
    fn default() -> Self {
        Self {
            armed: VecDeque::new(),
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
        self.armed.push_back(Armed {
            id: chunk.id,
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
                if !self.armed.iter().any(|a| a.id == id) {
                    return None;
                }
                // Windows do not overlap, so a high watermark closes the oldest chunk; one
                // that is not the oldest means an older one lost its watermarks (written by a
                // transaction that rolled back): that older chunk can never be released safely
                // and is dropped (its rows are selected again by the driver's next chunk, since
                // progress only advances on release).
                let a = loop {
                    let a = self.armed.pop_front()?;
                    if a.id == id {
                        break a;
                    }
                    tracing::warn!(
                        chunk = a.id,
                        "snapshot chunk without watermarks in the log; dropped"
                    );
                };
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
        /// Run the next chunk, with these writes committed between its low watermark and its
        /// select, and between its select and its high watermark.
        Chunk(Vec<(Key, bool)>, Vec<(Key, bool)>),
    }

    fn step(keys: Key) -> impl Strategy<Value = Step> {
        let write = (0..keys, prop::bool::weighted(0.2));
        prop_oneof![
            5 => write.clone().prop_map(|(k, d)| Step::Write(k, d)),
            2 => write.clone().prop_map(|(k, d)| Step::LateWrite(k, d)),
            2 => Just(Step::Reveal),
            1 => Just(Step::Truncate),
            4 => (0usize..6).prop_map(Step::Consume),
            4 => (prop::collection::vec(write.clone(), 0..3), prop::collection::vec(write, 0..3))
                .prop_map(|(a, b)| Step::Chunk(a, b)),
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

    /// `late`: writes may become visible after their log position, and the driver uses the
    /// `SELECT`'s snapshot (PostgreSQL); else every write is visible at its log position and
    /// the driver knows nothing of transactions (MySQL/MariaDB).
    fn run(
        keys: Key,
        initial: usize,
        chunk_size: usize,
        steps: Vec<Step>,
        late: bool,
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
            history: CommitHistory::new(w.next_version + 1),
            consumed: 0,
            consumer: Consumer::default(),
            txns: late,
        };
        let mut last_key: Option<Key> = None;
        let mut done = false;
        let mut next_id = 0u64;
        let mut steps = steps;
        // Then every write becomes visible, and chunks run until the table is covered.
        steps.push(Step::RevealAll);
        steps.extend(std::iter::repeat_n(Step::Chunk(vec![], vec![]), 200));
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
                Step::Chunk(before, after) => {
                    if done {
                        continue;
                    }
                    // At most three chunks in flight: the driver waits for the log.
                    if s.il.pending() >= 3 {
                        s.consume(&w.log, usize::MAX)?;
                    }
                    next_id += 1;
                    let id = next_id;
                    w.mark(Watermark::Low(id));
                    for (k, d) in before {
                        w.write(k, d, false);
                    }
                    let snapshot = w.snapshot();
                    let rows: Vec<(Key, Version)> = w
                        .table
                        .range(last_key.map_or(0, |k| k + 1)..)
                        .take(chunk_size)
                        .map(|(k, v)| (*k, *v))
                        .collect();
                    for (k, d) in after {
                        w.write(k, d, false);
                    }
                    w.mark(Watermark::High(id));
                    // The source's check before arming: a transaction the stream has shown
                    // and the SELECT did not see makes the driver read the chunk again.
                    if late && s.history.conflict(&snapshot, &[]).is_some() {
                        continue;
                    }
                    if rows.len() < chunk_size {
                        done = true;
                    }
                    last_key = rows.last().map(|(k, _)| *k).or(last_key);
                    s.il.arm(Chunk {
                        id,
                        table: (),
                        rows: rows.into_iter().map(|(k, v)| (k, (k, v))).collect(),
                        seen: late.then_some(snapshot),
                    });
                }
            }
        }
        s.consume(&w.log, usize::MAX)?;
        if !done {
            return Err("snapshot did not finish".into());
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
                Step::Chunk(a, b) => Step::Chunk(
                    a.into_iter().map(|(k, d)| (k % keys, d)).collect(),
                    b.into_iter().map(|(k, d)| (k % keys, d)).collect(),
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
            if let Err(e) = run(keys, initial, chunk_size, wrap_keys(steps, keys), false) {
                return Err(TestCaseError::fail(e));
            }
        }

        #[test]
        fn with_commits_visible_after_their_log_position_too(
            keys in 1u32..40,
            initial in 0usize..40,
            chunk_size in prop_oneof![Just(1usize), Just(2), Just(7), Just(1000)],
            steps in prop::collection::vec(step(40), 0..80),
        ) {
            if let Err(e) = run(keys, initial, chunk_size, wrap_keys(steps, keys), true) {
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
    fn watermarks_of_an_earlier_life_are_ignored() {
        let mut il: Interleaver<&str, u32, &str> = Interleaver::default();
        assert_eq!(il.on_watermark(Watermark::High(7)), None);
        il.arm(Chunk {
            id: 8,
            table: "t",
            rows: vec![(1, "a")],
            seen: None,
        });
        il.on_watermark(Watermark::Low(7));
        il.on_watermark(Watermark::High(7));
        assert_eq!(il.pending(), 1);
    }
}
