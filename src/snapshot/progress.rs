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
        match (&self.from, &self.to) {
            (None, None) => {}
            (from, to) => write!(
                f,
                " [{} ..= {}]",
                from.as_deref().map_or_else(|| "start".into(), key_text),
                to.as_deref().map_or_else(|| "end".into(), key_text)
            )?,
        }
        if let Some(c) = &self.condition {
            write!(f, " where {c}")?;
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotProgress {
    /// Tasks still to do, the current one first.
    pub tasks: Vec<SnapshotTask>,
    /// The key of the last row selected by the current task's last released chunk;
    /// `None`: the task starts at its lower bound.
    #[serde(default)]
    pub last_key: Option<Vec<String>>,
    /// Chunks of the current task released so far.
    #[serde(default)]
    pub chunks: u64,
    /// Rows of the current task emitted so far.
    #[serde(default)]
    pub rows: u64,
    /// Paused by a signal: no chunk is read until a resume signal.
    #[serde(default)]
    pub paused: bool,
    /// A row of this snapshot has been emitted (so the next is not its first).
    #[serde(default)]
    pub emitted_any: bool,
}

impl SnapshotProgress {
    /// A snapshot of `tasks`, from their beginnings (`None` when there is nothing to do).
    pub fn start(tasks: Vec<SnapshotTask>) -> Option<Self> {
        (!tasks.is_empty()).then_some(Self {
            tasks,
            last_key: None,
            chunks: 0,
            rows: 0,
            paused: false,
            emitted_any: false,
        })
    }

    /// The snapshot a connector starts with: the one in progress in its stored position, else
    /// (first start, `snapshot.mode: initial`) every table.
    pub fn at_start(
        cfg: &crate::config::ConnectorConfig,
        stored: Option<Option<&Self>>,
    ) -> Option<Self> {
        match stored {
            Some(progress) => progress.cloned(),
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
            .filter(|t| !progress.as_ref().is_some_and(|p| p.tasks.contains(t)))
            .collect();
        match progress {
            Some(mut p) => {
                p.tasks.extend(new);
                Some(p)
            }
            None => Self::start(new),
        }
    }

    /// The current task.
    pub fn task(&self) -> Option<&SnapshotTask> {
        self.tasks.first()
    }

    /// A chunk of the current task was released: `rows` emitted, `last_key` selected last;
    /// `last_of_task` moves on to the next task. `None` when the snapshot is complete.
    pub fn released(
        mut self,
        rows: u64,
        last_key: Option<Vec<String>>,
        last_of_task: bool,
    ) -> Option<Self> {
        let emitted_any = self.emitted_any || rows > 0;
        if last_of_task {
            self.tasks.remove(0);
            let paused = self.paused;
            return Self::start(self.tasks).map(|p| Self {
                paused,
                emitted_any,
                ..p
            });
        }
        self.emitted_any = emitted_any;
        self.chunks += 1;
        self.rows += rows;
        if last_key.is_some() {
            self.last_key = last_key;
        }
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(t: &str) -> SnapshotTask {
        SnapshotTask::whole(TableId::new("s", t))
    }

    #[test]
    fn moves_through_chunks_and_tasks() {
        let p = SnapshotProgress::start(vec![task("a"), task("b")]).unwrap();
        let p = p.released(10, Some(vec!["10".into()]), false).unwrap();
        assert_eq!(
            (p.chunks, p.rows, p.last_key.clone()),
            (1, 10, Some(vec!["10".into()]))
        );
        let p = p.released(3, Some(vec!["13".into()]), true).unwrap();
        assert_eq!(p.task(), Some(&task("b")));
        assert_eq!((p.chunks, p.rows, p.last_key.clone()), (0, 0, None));
        assert!(p.emitted_any, "rows of an earlier task were emitted");
        assert_eq!(p.released(0, None, true), None);
        let empty = SnapshotProgress::start(vec![task("a"), task("b")]).unwrap();
        let next = empty.released(0, None, true).unwrap();
        assert!(
            !next.emitted_any,
            "an empty first table leaves `first` to the next"
        );
        let json = serde_json::to_value(SnapshotProgress::start(vec![task("a")])).unwrap();
        assert_eq!(json["tasks"][0]["table"]["table"], "a");
        assert!(json["tasks"][0].get("from").is_none());
    }
}
