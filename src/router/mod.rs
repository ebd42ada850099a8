//! The event router: which topic and which message key each change goes to.
//!
//! Owns: per-table routes (topic name, key columns) from the table files, and the expansion
//! of one change into the messages a compacted topic needs: a delete is followed by a
//! tombstone; an update that changes the key becomes a delete (and tombstone) of the old key
//! and a create of the new one. Must not: encode (see `schema`) or produce (see `sink`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{ConnectorConfig, DaemonConfig};
use crate::error::{Error, Result};
use crate::event::{ChangeEvent, Op, Row, TableId, TableSchema};
use crate::value::Value;

/// Where and under which key one table's messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub topic: Arc<str>,
    /// Indices of the key columns in the table's schema; empty for a keyless table.
    pub key_columns: Arc<[usize]>,
}

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Routed {
    pub route: Route,
    /// The key's values, in key-column order; `None` for a truncate.
    pub key: Option<Row>,
    /// The change, or `None` for a tombstone.
    pub event: Option<ChangeEvent>,
    /// Commit time of the change (for a tombstone: of the delete it follows), ms since epoch.
    pub event_time_ms: i64,
}

pub struct Router {
    connector: Arc<ConnectorConfig>,
    topic_prefix: String,
    compacted: bool,
    /// Routes by table, valid for one schema (compared by pointer).
    routes: HashMap<TableId, (Arc<TableSchema>, Route)>,
}

impl Router {
    pub fn new(connector: Arc<ConnectorConfig>, daemon: &DaemonConfig) -> Self {
        Self {
            connector,
            topic_prefix: daemon.kafka.topic_prefix.clone(),
            compacted: daemon.kafka.compact_topics,
            routes: HashMap::new(),
        }
    }

    /// The default topic of a table.
    pub fn default_topic(prefix: &str, id: &TableId) -> String {
        format!("{prefix}.{}.{}", id.schema, id.table)
    }

    fn route_for(&mut self, schema: &Arc<TableSchema>) -> Result<Route> {
        if let Some((s, r)) = self.routes.get(&schema.id) {
            if Arc::ptr_eq(s, schema) {
                return Ok(r.clone());
            }
        }
        let entry = self.connector.table(&schema.id);
        let topic = entry
            .and_then(|e| e.config.topic.clone())
            .unwrap_or_else(|| Self::default_topic(&self.topic_prefix, &schema.id));
        let key_columns: Vec<usize> = match entry.and_then(|e| e.config.key.as_ref()) {
            Some(names) => names
                .iter()
                .map(|n| {
                    schema.column_index(n).ok_or_else(|| {
                        Error::definite(format!(
                            "table {}: key column `{n}` (from {}) is not a column of the table",
                            schema.id,
                            entry
                                .and_then(|e| e.file.as_ref())
                                .map(|f| f.display().to_string())
                                .unwrap_or_default()
                        ))
                    })
                })
                .collect::<Result<_>>()?,
            None => schema.primary_key.clone(),
        };
        if key_columns.is_empty() && self.compacted {
            return Err(Error::definite(format!(
                "table {} has no primary key and no `key` in configs/tables/{}/{}.yaml; a compacted \
                 topic needs a key: set `key: [columns]` there, or kafka.compact_topics: false",
                schema.id, self.connector.name, schema.id
            )));
        }
        let route = Route {
            topic: Arc::from(topic.as_str()),
            key_columns: key_columns.into(),
        };
        self.routes
            .insert(schema.id.clone(), (schema.clone(), route.clone()));
        Ok(route)
    }

    /// The messages for one change, in the order they must be produced.
    pub fn route(&mut self, event: ChangeEvent) -> Result<Vec<Routed>> {
        let mut out = Vec::with_capacity(1);
        self.route_into(event, &mut out)?;
        Ok(out)
    }

    /// Appends the messages for one change to `out`, in the order they must be produced
    /// (the pipeline reuses one vector for every change).
    pub fn route_into(&mut self, event: ChangeEvent, out: &mut Vec<Routed>) -> Result<()> {
        let route = self.route_for(&event.table)?;
        let event_time_ms = event.source.ts_ms;
        let key_of = |row: &Row| -> Option<Row> {
            if route.key_columns.is_empty() {
                return None;
            }
            Some(
                route
                    .key_columns
                    .iter()
                    .map(|i| row.get(*i).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        };
        match event.op {
            Op::Create | Op::Read => {
                let key = event.after.as_ref().and_then(key_of);
                out.push(Routed {
                    route,
                    key,
                    event: Some(event),
                    event_time_ms,
                })
            }
            Op::Delete => {
                let key = event.before.as_ref().and_then(key_of);
                out.extend([
                    Routed {
                        route: route.clone(),
                        key: key.clone(),
                        event: Some(event),
                        event_time_ms,
                    },
                    Routed {
                        route,
                        key,
                        event: None,
                        event_time_ms,
                    },
                ])
            }
            Op::Update => {
                let new_key = event.after.as_ref().and_then(key_of);
                let old_key = event.before.as_ref().and_then(key_of).filter(|k| {
                    !k.iter()
                        .any(|v| matches!(v, Value::Null | Value::Unavailable))
                });
                match old_key {
                    Some(old) if Some(&old) != new_key.as_ref() => {
                        let mut delete = event.clone();
                        delete.op = Op::Delete;
                        delete.after = None;
                        let mut create = event;
                        create.op = Op::Create;
                        create.before = None;
                        out.extend([
                            Routed {
                                route: route.clone(),
                                key: Some(old.clone()),
                                event: Some(delete),
                                event_time_ms,
                            },
                            Routed {
                                route: route.clone(),
                                key: Some(old),
                                event: None,
                                event_time_ms,
                            },
                            Routed {
                                route,
                                key: new_key,
                                event: Some(create),
                                event_time_ms,
                            },
                        ])
                    }
                    _ => out.push(Routed {
                        route,
                        key: new_key,
                        event: Some(event),
                        event_time_ms,
                    }),
                }
            }
            Op::Truncate => out.push(Routed {
                route,
                key: None,
                event: Some(event),
                event_time_ms,
            }),
        }
        Ok(())
    }

    /// The topics of every configured table (for creating them up front).
    pub fn configured_topics(&self) -> Vec<String> {
        self.connector
            .tables
            .iter()
            .map(|t| {
                t.config
                    .topic
                    .clone()
                    .unwrap_or_else(|| Self::default_topic(&self.topic_prefix, &t.id))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
