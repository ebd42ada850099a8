//! Where a snapshot stands: stored inside the source position, so a restart resumes at the
//! chunk after the last one whose rows were acknowledged (see the module doc of `snapshot`).

use serde::{Deserialize, Serialize};

use crate::event::TableId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotProgress {
    /// Tables still to snapshot, the current one first.
    pub tables: Vec<TableId>,
    /// The key of the last row selected by the current table's last released chunk, as the
    /// database writes each key column as text; `None`: the table starts from its first row.
    #[serde(default)]
    pub last_key: Option<Vec<String>>,
    /// Chunks of the current table released so far.
    #[serde(default)]
    pub chunks: u64,
    /// Rows of the current table emitted so far.
    #[serde(default)]
    pub rows: u64,
}

impl SnapshotProgress {
    /// A snapshot of `tables`, from their first rows.
    pub fn start(tables: Vec<TableId>) -> Option<Self> {
        (!tables.is_empty()).then_some(Self {
            tables,
            last_key: None,
            chunks: 0,
            rows: 0,
        })
    }

    /// The current table.
    pub fn table(&self) -> Option<&TableId> {
        self.tables.first()
    }

    /// A chunk of the current table was released: `rows` emitted, `last_key` selected last;
    /// `last_of_table` moves on to the next table. `None` when the snapshot is complete.
    pub fn released(
        mut self,
        rows: u64,
        last_key: Option<Vec<String>>,
        last_of_table: bool,
    ) -> Option<Self> {
        if last_of_table {
            self.tables.remove(0);
            return Self::start(self.tables);
        }
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

    #[test]
    fn moves_through_chunks_and_tables() {
        let p =
            SnapshotProgress::start(vec![TableId::new("s", "a"), TableId::new("s", "b")]).unwrap();
        let p = p.released(10, Some(vec!["10".into()]), false).unwrap();
        assert_eq!(
            (p.chunks, p.rows, p.last_key.clone()),
            (1, 10, Some(vec!["10".into()]))
        );
        let p = p.released(3, Some(vec!["13".into()]), true).unwrap();
        assert_eq!(p.table(), Some(&TableId::new("s", "b")));
        assert_eq!((p.chunks, p.rows, p.last_key.clone()), (0, 0, None));
        assert_eq!(p.released(0, None, true), None);
        let json =
            serde_json::to_value(SnapshotProgress::start(vec![TableId::new("s", "a")])).unwrap();
        assert_eq!(json["tables"][0]["table"], "a");
    }
}
