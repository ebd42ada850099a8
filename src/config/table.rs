//! `configs/tables/<connector>/<schema>.<table>.yaml`: one table's routing settings.
//!
//! Every key is optional. What each rule does is the router's (see `crate::router`); this
//! module only reads the file. Names of columns are checked against the live table when the
//! connector starts and by `tidemark check`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The topic: a template (`{prefix}`, `{connector}`, `{db}`, `{schema}`, `{table}`) or a
    /// plain name, instead of the daemon's `router.topic`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Message key columns, instead of the primary key (required for a table without one).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// This table's message format, instead of the daemon's `format`.
    #[serde(default)]
    pub format: Option<super::daemon::Format>,
    /// This table's value profile, instead of the daemon's `values`.
    #[serde(default)]
    pub values: Option<super::daemon::ValueProfile>,
    /// This table's decimal handling in the `debezium` profile, instead of the daemon's.
    #[serde(default)]
    pub decimal_handling: Option<super::daemon::DecimalHandling>,
    /// Which columns the messages carry, and masks on them.
    #[serde(default)]
    pub columns: ColumnsConfig,
    /// A row filter (`status != 'draft' and amount > 0`): only rows for which it holds are
    /// produced (see `crate::router::filter` for the language and the rule for updates).
    #[serde(default)]
    pub filter: Option<String>,
    /// A timestamp or date column whose value is the message's event time (header and
    /// record timestamp), instead of the commit time.
    #[serde(default)]
    pub event_time: Option<String>,
    /// The table is a transactional outbox: each inserted row is one event.
    #[serde(default)]
    pub outbox: Option<OutboxConfig>,
    /// The table's Avro contract: an `.avsc` record schema (relative to this file) its rows
    /// must conform to; the registered schema is built from it (the avro format only).
    #[serde(default)]
    pub contract: Option<std::path::PathBuf>,
    /// What happens to an event that cannot be routed, encoded or produced.
    #[serde(default)]
    pub on_error: OnError,
    /// This table's snapshot chunk size, instead of the connector's `snapshot.chunk_size`.
    #[serde(default)]
    pub snapshot_chunk_size: Option<usize>,
    /// This table's snapshot throttle (rows/s), instead of `snapshot.max_rows_per_second`.
    #[serde(default)]
    pub snapshot_max_rows_per_second: Option<u64>,
}

impl TableConfig {
    /// Every column this file names, with the key it is named under (for the check against
    /// the live table).
    pub fn named_columns(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = Vec::new();
        for (i, c) in self.key.iter().flatten().enumerate() {
            out.push((format!("key[{i}]"), c));
        }
        for (i, c) in self.columns.include.iter().flatten().enumerate() {
            out.push((format!("columns.include[{i}]"), c));
        }
        for (i, c) in self.columns.exclude.iter().flatten().enumerate() {
            out.push((format!("columns.exclude[{i}]"), c));
        }
        for c in self.columns.mask.keys() {
            out.push((format!("columns.mask.{c}"), c));
        }
        for (i, c) in self.columns.json.iter().enumerate() {
            out.push((format!("columns.json[{i}]"), c));
        }
        if let Some(c) = &self.event_time {
            out.push(("event_time".into(), c));
        }
        if let Some(o) = &self.outbox {
            out.push(("outbox.key".into(), &o.key));
            out.push(("outbox.payload".into(), &o.payload));
            if let Some(c) = &o.id {
                out.push(("outbox.id".into(), c));
            }
            if let Some(c) = &o.event_type {
                out.push(("outbox.type".into(), c));
            }
            for (i, c) in o.headers.iter().enumerate() {
                out.push((format!("outbox.headers[{i}]"), c));
            }
        }
        out
    }

    /// Whether any mask of this table hashes (and so needs the daemon's salt).
    pub fn hashes(&self) -> bool {
        self.columns.mask.values().any(|m| *m == Mask::Hash)
    }
}

/// A table's policy for an event at fault (see `crate::error::EventFault`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The connector stops with an error naming the table, the position and the fix; its
    /// position is not committed past the event.
    #[default]
    Halt,
    /// The event goes to the dead-letter topic with the error in its headers; the connector
    /// goes on.
    DeadLetter,
    /// The event is counted and logged at WARN, and left out.
    Skip,
}

/// `columns:`: at most one of `include` and `exclude`, and masks by column name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsConfig {
    /// Only these columns are in the messages (key columns must be among them).
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// These columns are left out of the messages (key columns must not be among them).
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
    /// A mask per column, applied to `before`, `after`, snapshot rows and the key alike.
    #[serde(default)]
    pub mask: BTreeMap<String, Mask>,
    /// Text columns that hold JSON documents, written as JSON columns are (MariaDB's JSON is
    /// a LONGTEXT that neither its binlog nor its catalog tells from text).
    #[serde(default)]
    pub json: Vec<String>,
}

/// How a column's values are hidden. YAML: `redact`, `{redact: "text"}`, `{redact: null}`,
/// `hash`, `{truncate: N}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawMask")]
pub enum Mask {
    /// Every non-null value becomes this text (`None`: null). Bare `redact` writes `***`.
    Redact(Option<String>),
    /// HMAC-SHA256 of the value's text under the daemon's salt, lower-case hex: equal values
    /// stay equal (joins and compaction still work), the value cannot be read back.
    Hash,
    /// Text keeps its first N characters (binary: its first N bytes).
    Truncate(usize),
}

/// The fixed text of a bare `redact`.
pub const REDACTED: &str = "***";

#[derive(Deserialize)]
#[serde(untagged)]
enum RawMask {
    Name(String),
    Map(BTreeMap<String, Option<serde_yaml::Value>>),
}

impl TryFrom<RawMask> for Mask {
    type Error = String;

    fn try_from(raw: RawMask) -> Result<Self, String> {
        const FORMS: &str =
            "a mask is `redact`, `{redact: \"text\"}`, `{redact: null}`, `hash` or `{truncate: N}`";
        match raw {
            RawMask::Name(n) => match n.as_str() {
                "redact" => Ok(Mask::Redact(Some(REDACTED.into()))),
                "hash" => Ok(Mask::Hash),
                other => Err(format!("unknown mask `{other}`: {FORMS}")),
            },
            RawMask::Map(m) if m.len() == 1 => {
                let Some((name, arg)) = m.into_iter().next() else {
                    return Err(FORMS.into());
                };
                match (name.as_str(), arg) {
                    ("redact", None) => Ok(Mask::Redact(None)),
                    ("redact", Some(serde_yaml::Value::String(s))) => Ok(Mask::Redact(Some(s))),
                    ("truncate", Some(serde_yaml::Value::Number(n))) => n
                        .as_u64()
                        .filter(|n| *n > 0)
                        .map(|n| Mask::Truncate(n as usize))
                        .ok_or_else(|| "truncate takes a number of characters above 0".into()),
                    _ => Err(FORMS.into()),
                }
            }
            RawMask::Map(_) => Err(FORMS.into()),
        }
    }
}

/// `outbox:`: the table holds events (Debezium's outbox pattern). Each inserted row is one
/// message: topic from `topic` (a template that may name columns: `{aggregate_type}`), key
/// the `key` column's text, value the `payload` column as is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Topic template: `{prefix}`, `{connector}`, `{db}`, `{schema}`, `{table}` and
    /// `{<column>}` for a column's value.
    pub topic: String,
    /// The column whose text is the message key (the aggregate id).
    pub key: String,
    /// The column whose value is the message value (JSON text, text or bytes, as is).
    pub payload: String,
    /// The column whose text goes into the `id` header (default: the column `id`, if any).
    #[serde(default)]
    pub id: Option<String>,
    /// The column whose text goes into the `type` header.
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    /// Further columns copied into headers of the same name.
    #[serde(default)]
    pub headers: Vec<String>,
}
