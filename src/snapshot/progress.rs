//! Where a snapshot stands: stored inside the source position, so a restart resumes at the
//! chunk after the last one whose rows were acknowledged (see the module doc of `snapshot`).

use serde::{Deserialize, Serialize};

use crate::event::TableId;

/// One table to snapshot, whole or a key range (bounds inclusive, each key column as the
/// database writes it as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTask {
    pub table: TableId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    /// Only rows matching this SQL condition (from a signed signal; see `signal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Rows with keys above this one (exclusive; the lower bound of a key range split off a
    /// table for parallel reading, which is the previous range's upper bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<Vec<String>>,
    /// Where the task stands: the key of the last row released (its next chunk starts after
    /// it); `None`: at its lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    /// Rows of this task released so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A key as its columns' texts: `10`, or `(1, a)` for a composite key.
pub fn key_text(key: &[String]) -> String {
    match key {
        [one] => one.clone(),
        many => format!("({})", many.join(", ")),
    }
}

/// `public.orders`, `public.orders [10 ..= 20]`, `public.orders where status = 'x'`.
impl std::fmt::Display for SnapshotTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.table)?;
        match (&self.from, &self.above, &self.to) {
            (None, None, None) => {}
            (from, above, to) => write!(
                f,
                " {}{} ..= {}]",
                if above.is_some() { "(" } else { "[" },
                above
                    .as_deref()
                    .or(from.as_deref())
                    .map_or_else(|| "start".into(), key_text),
                to.as_deref().map_or_else(|| "end".into(), key_text)
            )?,
        }
        if let Some(c) = &self.condition {
            write!(f, " where {c}")?;
        }
        if let Some(after) = &self.after {
            write!(f, " after {}", key_text(after))?;
        }
        Ok(())
    }
}

impl SnapshotTask {
    pub fn whole(table: TableId) -> Self {
        Self {
            table,
            from: None,
            to: None,
            condition: None,
            above: None,
            after: None,
            rows: 0,
        }
    }

    /// The same rows to read (table, bounds, condition), wherever either stands.
    pub fn same_work(&self, other: &Self) -> bool {
        self.table == other.table
            && self.from == other.from
            && self.above == other.above
            && self.to == other.to
            && self.condition == other.condition
    }

    /// A whole table, not begun: what may be split into key ranges.
    pub fn splittable(&self) -> bool {
        self.from.is_none()
            && self.above.is_none()
            && self.to.is_none()
            && self.condition.is_none()
            && self.after.is_none()
    }

    /// Where its next chunk starts: after this key (`None`: at `from`, else the table's start).
    pub fn next_after(&self) -> Option<&Vec<String>> {
        self.after.as_ref().or(self.above.as_ref())
    }

    /// This whole table as key ranges ending at each of `bounds` (inclusive, in key order),
    /// the last one open-ended: `[start ..= b1]`, `(b1 ..= b2]`, ..., `(bn ..= end]`.
    pub fn split_at(&self, bounds: &[Vec<String>]) -> Vec<SnapshotTask> {
        let mut parts = Vec::with_capacity(bounds.len() + 1);
        let mut lower: Option<Vec<String>> = None;
        for b in bounds.iter().chain(std::iter::once(&Vec::new())) {
            parts.push(SnapshotTask {
                table: self.table.clone(),
                from: None,
                to: (!b.is_empty()).then(|| b.clone()),
                condition: None,
                above: lower.clone(),
                after: None,
                rows: 0,
            });
            lower = Some(b.clone());
        }
        parts
    }
}

/// Rows released so far of a table with tasks left (for the progress report and the
/// first-row marks: ranges of one table read in parallel release in any order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub table: TableId,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotProgress {
    /// Tasks still to do, in order; those read at once (`snapshot.parallelism`) are the first
    /// ones, each resuming after its own [`SnapshotTask::after`].
    pub tasks: Vec<SnapshotTask>,
    /// Written by versions before parallel snapshots: the first task's cursor. Read into
    /// that task's `after` ([`SnapshotProgress::normalized`]), never written.
    #[serde(default, skip_serializing)]
    pub last_key: Option<Vec<String>>,
    /// Rows of this snapshot emitted so far (all tasks).
    #[serde(default)]
    pub rows: u64,
    /// Rows released per table that has tasks left (and at least one row released).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableRows>,
    /// Paused by a signal: no chunk is read until a resume signal.
    #[serde(default)]
    pub paused: bool,
    /// A row of this snapshot has been emitted (so the next is not its first).
    #[serde(default)]
    pub emitted_any: bool,
}

/// Where one released chunk stands: its task, its rows and last key, and whether it ends the
/// task.
pub struct ChunkDone<'a> {
    pub task: &'a SnapshotTask,
    pub rows: u64,
    pub last_key: Option<Vec<String>>,
    pub last_of_task: bool,
}

impl SnapshotProgress {
    /// A snapshot of `tasks`, from their beginnings (`None` when there is nothing to do).
    pub fn start(tasks: Vec<SnapshotTask>) -> Option<Self> {
        (!tasks.is_empty()).then_some(Self {
            tasks,
            last_key: None,
            rows: 0,
            tables: Vec::new(),
            paused: false,
            emitted_any: false,
        })
    }

    /// The progress in today's form: an older version's `last_key` moves into the first
    /// task's cursor (and its row count, which was the first task's, into that table's).
    pub fn normalized(mut self) -> Self {
        if let Some(key) = self.last_key.take() {
            if let Some(first) = self.tasks.first_mut() {
                if first.after.is_none() {
                    first.after = Some(key);
                    first.rows = self.rows;
                    if self.rows > 0 && self.tables.is_empty() {
                        self.tables.push(TableRows {
                            table: first.table.clone(),
                            rows: self.rows,
                        });
                    }
                }
            }
        }
        self
    }

    /// The snapshot a connector starts with: the one in progress in its stored position, else
    /// (first start, `snapshot.mode: initial`) every table.
    pub fn at_start(
        cfg: &crate::config::ConnectorConfig,
        stored: Option<Option<&Self>>,
    ) -> Option<Self> {
        match stored {
            Some(progress) => progress.cloned().map(Self::normalized),
            None if cfg.snapshot.mode == crate::config::SnapshotMode::Initial => Self::start(
                cfg.tables
                    .iter()
                    .map(|t| SnapshotTask::whole(t.id.clone()))
                    .collect(),
            ),
            None => None,
        }
    }

    /// `progress` with a whole-table task for each of `tables` that it does not hold yet
    /// (tables added to a connector whose initial snapshot is done or under way).
    pub fn with_tables(progress: Option<Self>, tables: &[TableId]) -> Option<Self> {
        let new: Vec<SnapshotTask> = tables
            .iter()
            .map(|t| SnapshotTask::whole(t.clone()))
            .filter(|t| {
                !progress
                    .as_ref()
                    .is_some_and(|p| p.tasks.iter().any(|q| q.same_work(t)))
            })
            .collect();
        match progress {
            Some(mut p) => {
                p.tasks.extend(new);
                Some(p)
            }
            None => Self::start(new),
        }
    }

    /// The first task.
    pub fn task(&self) -> Option<&SnapshotTask> {
        self.tasks.first()
    }

    /// Rows released so far of `table`.
    pub fn table_rows(&self, table: &TableId) -> u64 {
        self.tables
            .iter()
            .find(|t| &t.table == table)
            .map_or(0, |t| t.rows)
    }

    /// Whether a task of `table` other than `task` is left.
    pub fn has_other_task_of(&self, task: &SnapshotTask) -> bool {
        self.tasks
            .iter()
            .any(|t| t.table == task.table && !t.same_work(task))
    }

    /// A chunk was released. `None` when the snapshot is complete.
    pub fn released(mut self, done: ChunkDone<'_>) -> Option<Self> {
        self.emitted_any = self.emitted_any || done.rows > 0;
        self.rows += done.rows;
        let Some(i) = self.tasks.iter().position(|t| t.same_work(done.task)) else {
            return Some(self);
        };
        let table = self.tasks[i].table.clone();
        if done.last_of_task {
            self.tasks.remove(i);
        } else {
            let task = &mut self.tasks[i];
            task.rows += done.rows;
            if done.last_key.is_some() {
                task.after = done.last_key;
            }
        }
        if self.tasks.iter().any(|t| t.table == table) {
            match self.tables.iter_mut().find(|t| t.table == table) {
                Some(t) => t.rows += done.rows,
                None if done.rows > 0 => self.tables.push(TableRows {
                    table,
                    rows: done.rows,
                }),
                None => {}
            }
        } else {
            self.tables.retain(|t| t.table != table);
        }
        (!self.tasks.is_empty()).then_some(self)
    }

    /// Removes `task` (skipped: its table cannot be read); `None` when nothing is left.
    pub fn without(mut self, task: &SnapshotTask) -> Option<Self> {
        self.tasks.retain(|t| !t.same_work(task));
        let tasks = &self.tasks;
        self.tables
            .retain(|t| tasks.iter().any(|k| k.table == t.table));
        (!self.tasks.is_empty()).then_some(self)
    }

    /// `task` (whole, not begun) replaced by `parts` (its key ranges, in key order).
    pub fn split(&mut self, task: &SnapshotTask, parts: &[SnapshotTask]) {
        if let Some(i) = self.tasks.iter().position(|t| t.same_work(task)) {
            self.tasks.splice(i..=i, parts.iter().cloned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(t: &str) -> SnapshotTask {
        SnapshotTask::whole(TableId::new("s", t))
    }

    fn done<'a>(
        task: &'a SnapshotTask,
        rows: u64,
        last: Option<&str>,
        last_of_task: bool,
    ) -> ChunkDone<'a> {
        ChunkDone {
            task,
            rows,
            last_key: last.map(|k| vec![k.to_string()]),
            last_of_task,
        }
    }

    #[test]
    fn moves_through_chunks_and_tasks() {
        let (a, b) = (task("a"), task("b"));
        let p = SnapshotProgress::start(vec![a.clone(), b.clone()]).unwrap();
        let p = p.released(done(&a, 10, Some("10"), false)).unwrap();
        assert_eq!(
            (p.rows, p.tasks[0].rows, p.tasks[0].after.clone()),
            (10, 10, Some(vec!["10".into()]))
        );
        assert_eq!(p.table_rows(&a.table), 10);
        let p = p.released(done(&a, 3, Some("13"), true)).unwrap();
        assert_eq!(p.task(), Some(&b));
        assert_eq!(p.table_rows(&a.table), 0, "a finished table is not counted");
        assert!(p.emitted_any, "rows of an earlier task were emitted");
        assert_eq!(p.released(done(&b, 0, None, true)), None);
        let empty = SnapshotProgress::start(vec![a.clone(), b]).unwrap();
        let next = empty.released(done(&a, 0, None, true)).unwrap();
        assert!(
            !next.emitted_any,
            "an empty first table leaves `first` to the next"
        );
        let json = serde_json::to_value(SnapshotProgress::start(vec![task("a")])).unwrap();
        assert_eq!(json["tasks"][0]["table"]["table"], "a");
        assert!(json["tasks"][0].get("from").is_none());
        assert!(
            json.get("last_key").is_none(),
            "the old cursor is not written"
        );
    }

    #[test]
    fn key_ranges_of_a_split_table_release_in_any_order() {
        let whole = task("t");
        let parts = whole.split_at(&[vec!["100".into()], vec!["200".into()]]);
        assert_eq!(
            parts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "s.t [start ..= 100]",
                "s.t (100 ..= 200]",
                "s.t (200 ..= end]"
            ]
        );
        assert_eq!(parts[1].next_after(), Some(&vec!["100".to_string()]));
        assert!(parts
            .iter()
            .all(|p| !p.splittable() && !p.same_work(&whole)));
        let mut p = SnapshotProgress::start(vec![whole.clone(), task("u")]).unwrap();
        p.split(&whole, &parts);
        assert_eq!(p.tasks.len(), 4);
        // The middle range advances, the last one ends first, then the others.
        let p = p.released(done(&parts[1], 5, Some("150"), false)).unwrap();
        assert_eq!(p.tasks[1].after, Some(vec!["150".into()]));
        assert!(p.has_other_task_of(&parts[2]));
        let p = p.released(done(&parts[2], 7, Some("290"), true)).unwrap();
        assert_eq!(p.table_rows(&whole.table), 12);
        let p = p.released(done(&parts[0], 1, Some("3"), true)).unwrap();
        let p = p.released(done(&parts[1], 2, Some("199"), true)).unwrap();
        assert_eq!(p.tasks, vec![task("u")]);
        assert_eq!((p.rows, p.tables.len()), (15, 0));
        // Stored and read back, every range keeps its own cursor.
        let mut q = SnapshotProgress::start(vec![whole.clone()]).unwrap();
        q.split(&whole, &parts);
        let q = q.released(done(&parts[2], 4, Some("204"), false)).unwrap();
        let back: SnapshotProgress =
            serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
        assert_eq!(back, q);
        assert_eq!(back.tasks[2].next_after(), Some(&vec!["204".to_string()]));
    }

    #[test]
    fn a_position_of_an_older_version_resumes_after_its_last_key() {
        let old = serde_json::json!({
            "tasks": [{"table": {"schema": "s", "table": "a"}}, {"table": {"schema": "s", "table": "b"}}],
            "last_key": ["42"], "chunks": 3, "rows": 42, "paused": false, "emitted_any": true
        });
        let p: SnapshotProgress = serde_json::from_value(old).unwrap();
        let p = p.normalized();
        assert_eq!(p.tasks[0].after, Some(vec!["42".to_string()]));
        assert_eq!((p.tasks[0].rows, p.table_rows(&task("a").table)), (42, 42));
        assert_eq!(p.tasks[1].after, None);
    }
}
