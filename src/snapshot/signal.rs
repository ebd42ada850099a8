//! Snapshot signals: what `tidemark snapshot` (or anyone allowed to) writes into the source's
//! log to start, pause, resume or stop a snapshot of a running connector.
//!
//! PostgreSQL: a logical decoding message with prefix [`SIGNAL_PREFIX`] and this JSON as
//! content, written with `pg_logical_emit_message(true, ...)`; the connector sees it in its
//! WAL stream, in order with the changes. A signal carries no SQL: tables must be ones the
//! connector captures, and key bounds become escaped literals, so a signal can at most make
//! the connector read rows it already captures.

use serde::{Deserialize, Serialize};

use super::SnapshotTask;
use crate::config::ConnectorConfig;
use crate::event::TableId;

/// The prefix of signal messages.
pub const SIGNAL_PREFIX: &str = "tidemark-signal";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Snapshot,
    Pause,
    Resume,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// The connector the signal is for (every connector on the database sees it).
    pub connector: String,
    pub action: Action,
    /// `schema.table`s to snapshot; empty: every table of the connector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// Inclusive key bounds, one text per key column (only with exactly one table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
}

impl Signal {
    pub fn parse(content: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(content).map_err(|e| format!("not a tidemark signal: {e}"))
    }

    /// The snapshot tasks a `snapshot` signal asks of connector `cfg`, or why it is refused.
    pub fn tasks(&self, cfg: &ConnectorConfig) -> Result<Vec<SnapshotTask>, String> {
        let tables: Vec<TableId> = if self.tables.is_empty() {
            cfg.tables.iter().map(|t| t.id.clone()).collect()
        } else {
            self.tables
                .iter()
                .map(|t| {
                    let id =
                        TableId::parse(t).ok_or_else(|| format!("`{t}` is not `schema.table`"))?;
                    if cfg.table(&id).is_none() {
                        return Err(format!(
                            "table {id} is not captured by connector {} (add it to {})",
                            cfg.name,
                            cfg.file.display()
                        ));
                    }
                    Ok(id)
                })
                .collect::<Result<_, _>>()?
        };
        if (self.from.is_some() || self.to.is_some()) && tables.len() != 1 {
            return Err("a key range (--from/--to) needs exactly one table".into());
        }
        Ok(tables
            .into_iter()
            .map(|table| SnapshotTask {
                table,
                from: self.from.clone(),
                to: self.to.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_fields() {
        let s = Signal {
            connector: "demo".into(),
            action: Action::Snapshot,
            tables: vec!["public.t".into()],
            from: Some(vec!["10".into()]),
            to: None,
        };
        let text = serde_json::to_vec(&s).unwrap();
        assert_eq!(Signal::parse(&text).unwrap(), s);
        assert!(Signal::parse(br#"{"connector":"d","action":"snapshot","where":"1=1"}"#).is_err());
        assert!(Signal::parse(br#"{"connector":"d","action":"drop"}"#).is_err());
    }
}
