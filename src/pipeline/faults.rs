//! Events at fault: a table's `on_error` policy, and the dead-letter topic.
//!
//! An event whose content tidemark cannot route, encode or produce (see
//! [`crate::error::EventFault`]) goes where its table's `on_error` says:
//!
//! - `halt` (the default): the connector stops with an error naming the table, the log
//!   position, what is wrong and the fix. Nothing after the event is produced, so its position
//!   is never committed past it: after a restart the connector meets the event again.
//! - `dead_letter`: a record goes to the dead-letter topic (`dead_letter.topic`, default
//!   `<prefix>.dlq`, never compacted) with the change's key and its Debezium JSON envelope as
//!   the value (the value is left out for a record too large to produce: it would be too large
//!   there too), and headers that say where it was going and why: `tidemark.dlq.connector`,
//!   `.table`, `.topic` (absent when routing failed), `.position`, `.error_kind`, `.error`.
//!   It is acknowledged like any other message before the position after it is committed.
//! - `skip`: the event is counted and logged at WARN, and left out.
//!
//! So every event is on its topic, in the dead-letter topic, or counted as skipped (or the
//! connector stopped at it); the counts are logged with each fault.

use std::borrow::Cow;
use std::sync::Arc;

use crate::config::table::OnError;
use crate::config::{ConnectorConfig, DaemonConfig};
use crate::error::{Error, EventFault, Result};
use crate::event::{ChangeEvent, Header, Message, SourceLocation};
use crate::router::template::Template;
use crate::router::{Body, Route, Routed};
use crate::schema::json::JsonEncoder;

/// The longest error text put into a header.
const ERROR_HEADER_MAX: usize = 4096;

/// A connector's policy state: the dead-letter topic, its own encoder and the counts.
pub struct Faults {
    connector: Arc<ConnectorConfig>,
    topic: Arc<str>,
    encoder: JsonEncoder,
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<Header>,
    /// Events sent to the dead-letter topic so far.
    pub dead_lettered: u64,
    /// Events skipped so far.
    pub skipped: u64,
}

/// What to do with one event at fault.
pub enum Verdict<'a> {
    /// Produce this record (to the dead-letter topic) instead.
    DeadLetter(Message<'a>),
    /// Leave the event out.
    Skip,
}

impl Faults {
    pub fn new(connector: Arc<ConnectorConfig>, daemon: &DaemonConfig) -> Result<Self> {
        let topic = Template::connector_topic(
            "dead_letter.topic",
            &daemon.dead_letter.topic,
            daemon,
            &connector,
        )?;
        Ok(Self {
            connector,
            topic,
            encoder: JsonEncoder::default(),
            key: Vec::new(),
            value: Vec::new(),
            headers: Vec::new(),
            dead_lettered: 0,
            skipped: 0,
        })
    }

    /// The dead-letter topic (created on first use, never compacted).
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// Applies the table's policy to `routed`, at fault for `fault` (`error` says why).
    /// Returns the error that halts the connector under `halt`.
    pub fn handle<'a>(
        &'a mut self,
        routed: &Routed,
        fault: EventFault,
        error: &str,
        now_ms: i64,
    ) -> Result<Verdict<'a>> {
        let table = &routed.route.schema.id;
        let entry = self.connector.table(table);
        let policy = entry.map(|e| e.config.on_error).unwrap_or_default();
        let file = entry
            .and_then(|e| e.file.as_ref())
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| format!("configs/tables/{}/{table}.yaml", self.connector.name));
        let position = location(routed).map(|l| l.to_string());
        let at = position.as_deref().unwrap_or("an unknown position");
        match policy {
            OnError::Halt => Err(Error::definite(format!(
                "connector {}: table {table} at {at}: {error} ({}); the connector stops here (on_error: halt) \
                 and meets this event again after a restart: fix the cause, or set `on_error: dead_letter` \
                 (or `skip`) in {file} to set such events aside",
                self.connector.name,
                fault.as_str()
            ))
            .with_fault(fault)
            .for_table(table)),
            OnError::Skip => {
                self.skipped += 1;
                tracing::warn!(connector = %self.connector.name, table = %table, position = at,
                    error_kind = fault.as_str(), error, skipped = self.skipped,
                    "event skipped (on_error: skip)");
                Ok(Verdict::Skip)
            }
            OnError::DeadLetter => {
                self.dead_lettered += 1;
                tracing::warn!(connector = %self.connector.name, table = %table, position = at,
                    error_kind = fault.as_str(), error, dead_letter_topic = %self.topic,
                    dead_lettered = self.dead_lettered, "event sent to the dead-letter topic");
                let keep_value = fault != EventFault::TooLarge;
                self.fill(routed, keep_value, now_ms)?;
                self.headers.clear();
                let mut push = |name: &'static str, value: &str| {
                    self.headers.push(Header {
                        name: Cow::Borrowed(name),
                        value: Some(value.as_bytes().to_vec()),
                    })
                };
                push("tidemark.dlq.connector", &self.connector.name);
                push("tidemark.dlq.table", &table.to_string());
                if !matches!(routed.body, Body::Rejected { .. }) {
                    push("tidemark.dlq.topic", &routed.route.topic);
                }
                if let Some(p) = &position {
                    push("tidemark.dlq.position", p);
                }
                push("tidemark.dlq.error_kind", fault.as_str());
                let mut cut = error.len().min(ERROR_HEADER_MAX);
                while !error.is_char_boundary(cut) {
                    cut -= 1;
                }
                push("tidemark.dlq.error", &error[..cut]);
                let op = change(routed).map(|e| e.op.code());
                Ok(Verdict::DeadLetter(Message {
                    topic: &self.topic,
                    key: (!self.key.is_empty()).then_some(self.key.as_slice()),
                    value: (keep_value && !self.value.is_empty()).then_some(self.value.as_slice()),
                    event_time_ms: routed.event_time_ms,
                    op,
                    headers: &self.headers,
                }))
            }
        }
    }

    /// The dead-letter record's key and value: the change's key and JSON envelope.
    fn fill(&mut self, routed: &Routed, keep_value: bool, now_ms: i64) -> Result<()> {
        self.key.clear();
        self.value.clear();
        let (route, key, body) = match &routed.body {
            Body::Outbox { key, value, .. } => {
                self.key
                    .extend_from_slice(key.as_deref().unwrap_or_default());
                if keep_value {
                    self.value
                        .extend_from_slice(value.as_deref().unwrap_or_default());
                }
                return Ok(());
            }
            Body::Rejected { event, .. } => {
                let schema = event.table.clone();
                let key = event.after.as_ref().or(event.before.as_ref()).map(|row| {
                    schema
                        .primary_key
                        .iter()
                        .map(|i| row.get(*i).cloned().unwrap_or(crate::value::Value::Null))
                        .collect()
                });
                let route = Route {
                    topic: self.topic.clone(),
                    key_columns: schema.primary_key.clone().into(),
                    schema,
                    table_in_key: None,
                    format: crate::config::Format::Json,
                    values: crate::config::Values::default(),
                };
                (route, key, Body::Change(event.clone()))
            }
            other => ((*routed.route).clone(), routed.key.clone(), other.clone()),
        };
        let plain = Routed {
            route: Arc::new(route),
            key,
            body: if keep_value { body } else { Body::Tombstone },
            event_time_ms: routed.event_time_ms,
            headers: Vec::new(),
            key_change: None,
        };
        let m = self.encoder.encode(&plain, now_ms)?;
        let (k, v) = (m.key.map(<[u8]>::to_vec), m.value.map(<[u8]>::to_vec));
        self.key = k.unwrap_or_default();
        self.value = v.unwrap_or_default();
        Ok(())
    }
}

fn change(routed: &Routed) -> Option<&ChangeEvent> {
    match &routed.body {
        Body::Change(e) | Body::Rejected { event: e, .. } => Some(e),
        _ => None,
    }
}

fn location(routed: &Routed) -> Option<&SourceLocation> {
    match &routed.body {
        Body::Outbox { location, .. } => Some(location),
        Body::Tombstone => None,
        _ => change(routed).map(|e| &e.source.location),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TableConfig, TableEntry};
    use crate::event::{Op, TableId};
    use crate::test_fixtures::{change, column, route, table};
    use crate::value::{ColumnType, Value};

    fn faults(on_error: OnError) -> Faults {
        let mut c = crate::config::test_mysql_connector();
        c.name = "demo".into();
        c.tables = vec![TableEntry {
            id: TableId::new("shop", "t"),
            config: TableConfig {
                on_error,
                ..Default::default()
            },
            file: Some("tables/demo/shop.t.yaml".into()),
            contract: None,
        }];
        Faults::new(Arc::new(c), &DaemonConfig::default()).unwrap()
    }

    fn routed() -> Routed {
        let schema = table(
            "shop",
            "t",
            vec![column("id", ColumnType::Int32, false)],
            vec![0],
        );
        let mut event = change(
            schema.clone(),
            Op::Create,
            None,
            Some(vec![Value::Int(9)]),
            7,
        );
        event.source.connector = "mysql";
        event.source.db = "shop".into();
        event.source.location = SourceLocation::Mysql {
            file: "bin.000002".into(),
            pos: 400,
            row: 1,
            gtid: None,
            server_id: 1,
        };
        Routed {
            route: Arc::new(route(
                "tidemark.shop.t",
                schema,
                vec![0],
                crate::config::Format::Json,
            )),
            key: Some(vec![Value::Int(9)]),
            body: Body::Change(event),
            event_time_ms: 7,
            headers: Vec::new(),
            key_change: None,
        }
    }

    #[test]
    fn halt_names_table_position_and_the_fix() {
        let mut f = faults(OnError::Halt);
        let Err(e) = f.handle(&routed(), EventFault::Encoding, "bad value", 1) else {
            panic!("halt must stop the connector")
        };
        let text = e.to_string();
        for want in [
            "table shop.t",
            "binlog bin.000002:400 row 1",
            "bad value",
            "on_error: dead_letter",
            "tables/demo/shop.t.yaml",
        ] {
            assert!(text.contains(want), "{text} lacks {want}");
        }
        assert_eq!(e.fault, Some(EventFault::Encoding));
        assert!(!e.is_transient());
    }

    #[test]
    fn a_dead_letter_keeps_key_envelope_and_reason() {
        let mut f = faults(OnError::DeadLetter);
        let r = routed();
        let Ok(Verdict::DeadLetter(m)) = f.handle(&r, EventFault::Encoding, "bad value", 1) else {
            panic!("expected a dead letter")
        };
        assert_eq!(m.topic, "tidemark.dlq");
        assert_eq!(m.key, Some(&br#"{"id":9}"#[..]));
        let v: serde_json::Value = serde_json::from_slice(m.value.unwrap()).unwrap();
        assert_eq!(v["after"]["id"], 9);
        let h = |n: &str| {
            m.headers
                .iter()
                .find(|h| h.name == n)
                .and_then(|h| h.value.clone())
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(h("tidemark.dlq.topic").as_deref(), Some("tidemark.shop.t"));
        assert_eq!(h("tidemark.dlq.error_kind").as_deref(), Some("encoding"));
        assert_eq!(
            h("tidemark.dlq.position").as_deref(),
            Some("binlog bin.000002:400 row 1")
        );
        let Ok(Verdict::DeadLetter(m)) = f.handle(&r, EventFault::TooLarge, "big", 1) else {
            panic!("expected a dead letter")
        };
        assert!(m.value.is_none(), "a record too large keeps no value");
        assert_eq!(m.key, Some(&br#"{"id":9}"#[..]));
        assert_eq!(f.dead_lettered, 2);
        let mut s = faults(OnError::Skip);
        assert!(matches!(
            s.handle(&r, EventFault::TooLarge, "big", 1),
            Ok(Verdict::Skip)
        ));
        assert_eq!(s.skipped, 1);
    }
}
