//! `configs/tables/<connector>/<schema>.<table>.yaml`: one table's routing settings.

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The topic, instead of `<topic_prefix>.<schema>.<table>`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Message key columns, instead of the primary key (required for a table without one).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// This table's snapshot chunk size, instead of the connector's `snapshot.chunk_size`.
    #[serde(default)]
    pub snapshot_chunk_size: Option<usize>,
    /// This table's snapshot throttle (rows/s), instead of `snapshot.max_rows_per_second`.
    #[serde(default)]
    pub snapshot_max_rows_per_second: Option<u64>,
}
