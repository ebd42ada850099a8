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
}

struct Armed<T, K, R> {
    id: u64,
    table: T,
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
            rows: chunk.rows.into_iter().map(|(k, r)| (k, Some(r))).collect(),
            index,
            open: false,
        });
    }

    /// Chunks armed and not yet released.
    pub fn pending(&self) -> usize {
        self.armed.len()
    }

    /// Rows held for armed chunks.
    pub fn held_rows(&self) -> usize {
        self.armed.iter().map(|a| a.rows.len()).sum()
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
    /// reports both keys). Drops the key's row from every chunk whose window is open.
    pub fn on_change(&mut self, table: &T, key: &K) {
        for a in self
            .armed
            .iter_mut()
            .filter(|a| a.open && &a.table == table)
        {
            if let Some(&i) = a.index.get(key) {
                a.rows[i].1 = None;
            }
        }
    }

    /// The table was truncated in the log: every row of its open windows is stale.
    pub fn on_truncate(&mut self, table: &T) {
        for a in self
            .armed
            .iter_mut()
            .filter(|a| a.open && &a.table == table)
        {
            for row in &mut a.rows {
                row.1 = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The interleaver against a model of a table, a log and the DBLog driver: random
    //! concurrent writes around every step of every chunk, random consumer lag, several chunks
    //! in flight; the consumer's view must end equal to the table and never go back in time.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Key = u32;
    /// A row version: a global write counter (`None` in the table means deleted).
    type Version = u64;

    #[derive(Debug, Clone)]
    enum LogEntry {
        /// A committed write: key, its version, whether it deleted the row.
        Write(Key, Version, bool),
        /// A truncate, with its version.
        Truncate(Version),
        Mark(Watermark),
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Commit a write: key, delete or not.
        Write(Key, bool),
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
            6 => write.clone().prop_map(|(k, d)| Step::Write(k, d)),
            1 => Just(Step::Truncate),
            4 => (0usize..6).prop_map(Step::Consume),
            4 => (prop::collection::vec(write.clone(), 0..3), prop::collection::vec(write, 0..3))
                .prop_map(|(a, b)| Step::Chunk(a, b)),
        ]
    }

    struct World {
        /// Live rows and their versions.
        table: BTreeMap<Key, Version>,
        log: Vec<LogEntry>,
        next_version: Version,
    }

    impl World {
        fn version(&mut self) -> Version {
            self.next_version += 1;
            self.next_version
        }

        fn write(&mut self, k: Key, delete: bool) {
            let v = self.version();
            if delete {
                self.table.remove(&k);
            } else {
                self.table.insert(k, v);
            }
            self.log.push(LogEntry::Write(k, v, delete));
        }

        fn truncate(&mut self) {
            let v = self.version();
            self.table.clear();
            self.log.push(LogEntry::Truncate(v));
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

    /// The consumer processes the log up to `upto` entries.
    fn consume(
        il: &mut Model,
        log: &[LogEntry],
        consumed: &mut usize,
        upto: usize,
        consumer: &mut Consumer,
    ) -> Result<(), String> {
        let end = upto.min(log.len());
        for entry in log.iter().take(end).skip(*consumed) {
            match entry {
                LogEntry::Write(k, v, deleted) => {
                    il.on_change(&(), k);
                    consumer.apply(*k, *v, *deleted)?;
                }
                LogEntry::Truncate(v) => {
                    il.on_truncate(&());
                    let ks: Vec<Key> = consumer.state.keys().copied().collect();
                    for k in ks {
                        consumer.apply(k, *v, true)?;
                    }
                }
                LogEntry::Mark(m) => {
                    if let Some(rel) = il.on_watermark(*m) {
                        for (k, v) in rel.rows {
                            consumer.apply(k, v, false)?;
                        }
                    }
                }
            }
        }
        *consumed = (*consumed).max(end);
        Ok(())
    }

    fn run(keys: Key, initial: usize, chunk_size: usize, steps: Vec<Step>) -> Result<(), String> {
        let mut w = World {
            table: BTreeMap::new(),
            log: Vec::new(),
            next_version: 0,
        };
        // Initial rows exist before the log starts: only the snapshot can deliver them.
        for k in 0..(initial as Key).min(keys) {
            let v = w.version();
            w.table.insert(k, v);
        }
        let mut il = Model::default();
        let mut consumer = Consumer::default();
        let mut consumed = 0usize;
        let mut last_key: Option<Key> = None;
        let mut done = false;
        let mut next_id = 0u64;
        let mut steps = steps;
        // Then chunks until the table is covered.
        steps.extend(std::iter::repeat_n(Step::Chunk(vec![], vec![]), 200));
        for s in steps {
            match s {
                Step::Write(k, d) => w.write(k, d),
                Step::Truncate => w.truncate(),
                Step::Consume(n) => {
                    let upto = consumed + n;
                    consume(&mut il, &w.log, &mut consumed, upto, &mut consumer)?
                }
                Step::Chunk(before, after) => {
                    if done {
                        continue;
                    }
                    // At most three chunks in flight: the driver waits for the log.
                    if il.pending() >= 3 {
                        consume(&mut il, &w.log, &mut consumed, usize::MAX, &mut consumer)?;
                    }
                    next_id += 1;
                    let id = next_id;
                    w.log.push(LogEntry::Mark(Watermark::Low(id)));
                    for (k, d) in before {
                        w.write(k, d);
                    }
                    let rows: Vec<(Key, Version)> = w
                        .table
                        .range(last_key.map_or(0, |k| k + 1)..)
                        .take(chunk_size)
                        .map(|(k, v)| (*k, *v))
                        .collect();
                    for (k, d) in after {
                        w.write(k, d);
                    }
                    w.log.push(LogEntry::Mark(Watermark::High(id)));
                    if rows.len() < chunk_size {
                        done = true;
                    }
                    last_key = rows.last().map(|(k, _)| *k).or(last_key);
                    il.arm(Chunk {
                        id,
                        table: (),
                        rows: rows.into_iter().map(|(k, v)| (k, (k, v))).collect(),
                    });
                }
            }
        }
        consume(&mut il, &w.log, &mut consumed, usize::MAX, &mut consumer)?;
        if !done {
            return Err("snapshot did not finish".into());
        }
        if consumer.state != w.table {
            return Err(format!(
                "consumer {:?} != table {:?}",
                consumer.state, w.table
            ));
        }
        Ok(())
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
            let steps = steps.into_iter().map(|s| match s {
                Step::Write(k, d) => Step::Write(k % keys, d),
                Step::Chunk(a, b) => Step::Chunk(
                    a.into_iter().map(|(k, d)| (k % keys, d)).collect(),
                    b.into_iter().map(|(k, d)| (k % keys, d)).collect()),
                other => other,
            }).collect();
            if let Err(e) = run(keys, initial, chunk_size, steps) {
                return Err(TestCaseError::fail(e));
            }
        }
    }

    #[test]
    fn a_change_in_the_window_drops_the_row_and_one_before_does_not() {
        let mut il: Interleaver<&str, u32, &str> = Interleaver::default();
        il.arm(Chunk {
            id: 1,
            table: "t",
            rows: vec![(1, "a"), (2, "b"), (3, "c")],
        });
        il.on_change(&"t", &1); // before the low watermark: the select saw it
        assert_eq!(il.on_watermark(Watermark::Low(1)), None);
        il.on_change(&"t", &2);
        il.on_change(&"other", &3);
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
        });
        il.on_watermark(Watermark::Low(7));
        il.on_watermark(Watermark::High(7));
        assert_eq!(il.pending(), 1);
    }
}
