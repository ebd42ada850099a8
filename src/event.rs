//! The change event that flows from a source through the pipeline to a sink.
//!
//! Owns: [`ChangeEvent`], [`Op`], [`SourceInfo`], table identities and shapes, and the opaque
//! [`Position`] a source attaches to its checkpoints.
//! Must not: depend on any source, router, schema or sink module.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::value::{ColumnType, Value};

/// A table's identity: schema (PostgreSQL schema, MySQL database) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId {
    pub schema: String,
    pub table: String,
}

impl TableId {
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// Parses `schema.table`.
    pub fn parse(qualified: &str) -> Option<Self> {
        let (schema, table) = qualified.split_once('.')?;
        if schema.is_empty() || table.is_empty() || table.contains('.') {
            return None;
        }
        Some(Self::new(schema, table))
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub column_type: ColumnType,
    pub nullable: bool,
}

/// The shape of a table at one point of the log: columns in order and the key columns
/// (indices into `columns`) that tidemark keys its messages by.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    pub id: TableId,
    pub columns: Vec<ColumnDef>,
    /// The table's primary key (indices into `columns`); empty when it has none.
    pub primary_key: Vec<usize>,
}

impl TableSchema {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// One row: one value per column of its [`TableSchema`], in the schema's column order.
pub type Row = Vec<Value>;

/// The operation of an event, with Debezium's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "c")]
    Create,
    #[serde(rename = "u")]
    Update,
    #[serde(rename = "d")]
    Delete,
    /// A row read by a snapshot.
    #[serde(rename = "r")]
    Read,
    /// The table was truncated: every row is gone.
    #[serde(rename = "t")]
    Truncate,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }
}

/// Where a change comes from, for the envelope's `source` block.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// `postgresql` or `mysql`.
    pub connector: &'static str,
    /// The connector's name (its file name).
    pub name: Arc<str>,
    /// The database name.
    pub db: Arc<str>,
    /// Commit time of the transaction, milliseconds since the epoch.
    pub ts_ms: i64,
    /// Whether (and where in its snapshot) the row was read by a snapshot.
    pub snapshot: SnapshotMark,
    /// Source-specific position fields.
    pub location: SourceLocation,
}

/// Whether a row was read by a snapshot, and where in it: Debezium's `source.snapshot`
/// values. The first and last marks are on the first and last rows the snapshot emits (a
/// table whose last chunk comes back empty, or whose last rows changed while it was read,
/// ends on a row marked `true`; the log's "table snapshot complete" says when it ended).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SnapshotMark {
    /// A change from the log.
    #[default]
    No,
    /// A snapshot row.
    Row,
    /// The snapshot's first row.
    First,
    /// The first row of a table (but the snapshot's first).
    FirstInTable,
    /// The last row of a table (but the snapshot's last).
    LastInTable,
    /// The snapshot's last row.
    Last,
}

impl SnapshotMark {
    pub fn is_snapshot(self) -> bool {
        self != SnapshotMark::No
    }

    /// Debezium's value of `source.snapshot` for this mark.
    pub fn debezium(self) -> &'static str {
        match self {
            SnapshotMark::No => "false",
            SnapshotMark::Row => "true",
            SnapshotMark::First => "first",
            SnapshotMark::FirstInTable => "first_in_data_collection",
            SnapshotMark::LastInTable => "last_in_data_collection",
            SnapshotMark::Last => "last",
        }
    }
}

/// The source-specific part of [`SourceInfo`].
#[derive(Debug, Clone, PartialEq)]
pub enum SourceLocation {
    Postgres {
        /// LSN of this change's WAL record.
        lsn: u64,
        /// LSN of the transaction's commit record.
        commit_lsn: u64,
        tx_id: u32,
    },
    Mysql {
        /// The binlog file that holds the change.
        file: Arc<str>,
        /// Offset of the rows event in that file.
        pos: u64,
        /// Index of the row within its rows event (0-based).
        row: u32,
        /// The transaction's GTID (`uuid:n` or MariaDB `domain-server-seq`), when GTIDs are on.
        gtid: Option<Arc<str>>,
        /// The server id that wrote the event.
        server_id: u32,
    },
}

impl fmt::Display for SourceLocation {
    /// Where a change is in its log, for errors: `WAL position 0/16B3748` or
    /// `binlog mysql-bin.000003:1234 row 2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceLocation::Postgres { lsn, .. } => {
                write!(f, "WAL position {:X}/{:X}", lsn >> 32, *lsn as u32)
            }
            SourceLocation::Mysql {
                file,
                pos,
                row,
                gtid,
                ..
            } => {
                write!(f, "binlog {file}:{pos} row {row}")?;
                match gtid {
                    Some(g) => write!(f, " (GTID {g})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Debezium's `transaction` block.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionInfo {
    pub id: Arc<str>,
    /// 1-based order of this event in its transaction.
    pub total_order: u64,
    /// 1-based order of this event among its table's events in the transaction.
    pub data_collection_order: u64,
}

/// One row change (or truncate) of one table.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    pub table: Arc<TableSchema>,
    pub op: Op,
    pub before: Option<Row>,
    pub after: Option<Row>,
    /// `before` holds only the key columns (the others are NULL placeholders): a PostgreSQL
    /// old row under replica identity DEFAULT or USING INDEX. Stages that read a non-key
    /// column of `before` must treat it as unknown.
    pub before_key_only: bool,
    pub source: SourceInfo,
    pub transaction: Option<TransactionInfo>,
}

/// A source position: an opaque, serialisable value each source defines and parses. Stages
/// other than the source only store it and hand it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(pub serde_json::Value);

impl Position {
    pub fn encode<T: Serialize>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_value(value).map(Self)
    }

    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.0.clone())
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a source emits, in log order.
#[derive(Debug)]
pub enum SourceMessage {
    /// A row change.
    Change(ChangeEvent),
    /// Everything emitted before this message forms a consistent prefix of the log: once all
    /// of it is acknowledged by the sink, the source may resume from `Position` after a
    /// restart without losing anything.
    Checkpoint(Position),
    /// A transaction ended here, and a later checkpoint of the same hand-over implies its
    /// position (a source may defer building a position until it knows it is the newest).
    /// For the pipeline it closes the open transaction, as a checkpoint does.
    TransactionEnd,
    /// The log shows a table in a new shape (a DDL statement changed it) from the next change
    /// on. Informational for the pipeline (logged today; the schema stage will use it).
    SchemaChange {
        table: Arc<TableSchema>,
        /// The shape before, when the source had seen one.
        previous: Option<Arc<TableSchema>>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_id_parse() {
        assert_eq!(
            TableId::parse("public.t"),
            Some(TableId::new("public", "t"))
        );
        assert_eq!(TableId::parse("t"), None);
        assert_eq!(TableId::parse("a.b.c"), None);
        assert_eq!(TableId::parse(".t"), None);
    }

    #[test]
    fn position_round_trip() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct P {
            lsn: u64,
        }
        let p = Position::encode(&P { lsn: 42 }).unwrap();
        assert_eq!(p.decode::<P>().unwrap(), P { lsn: 42 });
    }
}

/// One encoded message: what the schema stage makes of a routed change and a sink produces;
/// borrows the encoder's buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Message<'a> {
    pub topic: &'a str,
    /// The key (`None`: a null key).
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Event time (commit time), milliseconds since the epoch, sent as a header and as the
    /// record's timestamp.
    pub event_time_ms: i64,
    /// The operation code (`c`, `u`, `d`, `r`, `t`), or `None` for a tombstone; sent as a header.
    pub op: Option<&'static str>,
    /// Further headers (outbox event ids and types, ...), usually none.
    pub headers: &'a [Header],
}

impl Message<'_> {
    /// The record's size as the producer counts it against `message.max.bytes`, rounded up:
    /// key, value and headers, plus the record overhead (tidemark's two headers included).
    pub fn wire_size(&self) -> usize {
        const RECORD_OVERHEAD: usize = 128;
        const HEADER_OVERHEAD: usize = 10;
        self.key.map_or(0, <[u8]>::len)
            + self.value.map_or(0, <[u8]>::len)
            + self
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len) + HEADER_OVERHEAD)
                .sum::<usize>()
            + RECORD_OVERHEAD
    }
}

/// One Kafka record header beyond tidemark's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: std::borrow::Cow<'static, str>,
    /// `None`: a null header value (the column was NULL).
    pub value: Option<Vec<u8>>,
}

/// Milliseconds since the Unix epoch, now (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
