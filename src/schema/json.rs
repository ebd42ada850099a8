//! The Debezium JSON envelope.
//!
//! Key: a JSON object of the key columns (`{"id": 1}`); `{}` for a truncate (so compacted
//! topics, which refuse null keys, accept it). Value: `{"before", "after", "source", "op",
//! "ts_ms", "transaction"}` as Debezium writes it, so existing consumers work unchanged; a
//! tombstone has a null value.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::error::{Error, Result};
use crate::event::{ChangeEvent, Row, SourceLocation, TableSchema, TransactionInfo};
use crate::router::Routed;
use crate::sink::Message;

struct RowRef<'a> {
    schema: &'a TableSchema,
    row: &'a Row,
}

impl Serialize for RowRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.row.len()))?;
        for (c, v) in self.schema.columns.iter().zip(self.row) {
            m.serialize_entry(&c.name, v)?;
        }
        m.end()
    }
}

struct KeyRef<'a> {
    schema: &'a TableSchema,
    columns: &'a [usize],
    values: Option<&'a Row>,
}

impl Serialize for KeyRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(values) = self.values else {
            return s.serialize_map(Some(0))?.end();
        };
        let mut m = s.serialize_map(Some(values.len()))?;
        for (i, v) in self.columns.iter().zip(values) {
            let name = self
                .schema
                .columns
                .get(*i)
                .map(|c| c.name.as_str())
                .unwrap_or("?");
            m.serialize_entry(name, v)?;
        }
        m.end()
    }
}

struct SourceRef<'a>(&'a ChangeEvent);

impl Serialize for SourceRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let src = &e.source;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("version", env!("CARGO_PKG_VERSION"))?;
        m.serialize_entry("connector", src.connector)?;
        m.serialize_entry("name", &*src.name)?;
        m.serialize_entry("ts_ms", &src.ts_ms)?;
        m.serialize_entry("snapshot", if src.snapshot { "true" } else { "false" })?;
        m.serialize_entry("db", &*src.db)?;
        m.serialize_entry("schema", &e.table.id.schema)?;
        m.serialize_entry("table", &e.table.id.table)?;
        match &src.location {
            SourceLocation::Postgres {
                lsn,
                commit_lsn,
                tx_id,
            } => {
                m.serialize_entry("txId", tx_id)?;
                m.serialize_entry("lsn", lsn)?;
                m.serialize_entry("commit_lsn", commit_lsn)?;
            }
            SourceLocation::Mysql {
                file,
                pos,
                row,
                gtid,
                server_id,
            } => {
                m.serialize_entry("server_id", server_id)?;
                m.serialize_entry("gtid", &gtid.as_deref())?;
                m.serialize_entry("file", &**file)?;
                m.serialize_entry("pos", pos)?;
                m.serialize_entry("row", row)?;
            }
        }
        m.end()
    }
}

struct TransactionRef<'a>(&'a TransactionInfo);

impl Serialize for TransactionRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("id", &*self.0.id)?;
        m.serialize_entry("total_order", &self.0.total_order)?;
        m.serialize_entry("data_collection_order", &self.0.data_collection_order)?;
        m.end()
    }
}

struct EnvelopeRef<'a> {
    event: &'a ChangeEvent,
    now_ms: i64,
}

impl Serialize for EnvelopeRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        let before = e.before.as_ref().map(|row| RowRef {
            schema: &e.table,
            row,
        });
        let after = e.after.as_ref().map(|row| RowRef {
            schema: &e.table,
            row,
        });
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("before", &before)?;
        m.serialize_entry("after", &after)?;
        m.serialize_entry("source", &SourceRef(e))?;
        m.serialize_entry("op", e.op.code())?;
        m.serialize_entry("ts_ms", &self.now_ms)?;
        match &e.transaction {
            Some(t) => m.serialize_entry("transaction", &TransactionRef(t))?,
            None => m.serialize_entry("transaction", &())?,
        }
        m.end()
    }
}

/// Encodes one routed message into `key` and `value` (cleared first). Returns the message,
/// borrowing them. `now_ms` is the envelope's processing time.
pub fn encode_into<'a>(
    routed: &'a Routed,
    schema: &TableSchema,
    now_ms: i64,
    key: &'a mut Vec<u8>,
    value: &'a mut Vec<u8>,
) -> Result<Message<'a>> {
    key.clear();
    value.clear();
    let has_key = !(routed.route.key_columns.is_empty() && routed.key.is_some());
    if has_key {
        serde_json::to_writer(
            &mut *key,
            &KeyRef {
                schema,
                columns: &routed.route.key_columns,
                values: routed.key.as_ref(),
            },
        )
        .map_err(|e| {
            Error::definite(format!("encoding the key of {}", schema.id)).with_source(e)
        })?;
    }
    let (has_value, event_time_ms, op) = match &routed.event {
        Some(event) => {
            serde_json::to_writer(&mut *value, &EnvelopeRef { event, now_ms }).map_err(|e| {
                Error::definite(format!("encoding a change of {}", schema.id)).with_source(e)
            })?;
            (true, event.source.ts_ms, Some(event.op.code()))
        }
        None => (false, routed.event_time_ms, None),
    };
    Ok(Message {
        topic: &routed.route.topic,
        key: has_key.then_some(key.as_slice()),
        value: has_value.then_some(value.as_slice()),
        event_time_ms,
        op,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ColumnDef, Op, SourceInfo, TableId, TransactionInfo};
    use crate::router::Route;
    use crate::value::{ColumnType, Value};
    use std::sync::Arc;

    fn schema() -> Arc<TableSchema> {
        Arc::new(TableSchema {
            id: TableId::new("public", "t"),
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    column_type: ColumnType::Int64,
                    nullable: false,
                },
                ColumnDef {
                    name: "n".into(),
                    column_type: ColumnType::Decimal {
                        precision: None,
                        scale: None,
                    },
                    nullable: true,
                },
            ],
            primary_key: vec![0],
        })
    }

    fn routed(event: Option<ChangeEvent>, key: Option<Vec<Value>>) -> Routed {
        Routed {
            route: Route {
                topic: Arc::from("tp"),
                key_columns: Arc::from(vec![0usize]),
            },
            key,
            event,
            event_time_ms: 1234,
        }
    }

    fn change(op: Op) -> ChangeEvent {
        ChangeEvent {
            table: schema(),
            op,
            before: None,
            after: Some(vec![Value::Int(7), Value::Decimal("1.50".into())]),
            source: SourceInfo {
                connector: "postgresql",
                name: "demo".into(),
                db: "d".into(),
                ts_ms: 1234,
                snapshot: false,
                location: SourceLocation::Postgres {
                    lsn: 10,
                    commit_lsn: 20,
                    tx_id: 5,
                },
            },
            transaction: Some(TransactionInfo {
                id: "5:20".into(),
                total_order: 1,
                data_collection_order: 1,
            }),
        }
    }

    #[test]
    fn envelope_shape() {
        let r = routed(Some(change(Op::Create)), Some(vec![Value::Int(7)]));
        let (mut k, mut v) = (Vec::new(), Vec::new());
        let rec = encode_into(&r, &schema(), 99, &mut k, &mut v).unwrap();
        assert_eq!(rec.key, Some(&b"{\"id\":7}"[..]));
        let v: serde_json::Value = serde_json::from_slice(rec.value.unwrap()).unwrap();
        assert_eq!(v["before"], serde_json::Value::Null);
        assert_eq!(v["after"], serde_json::json!({"id": 7, "n": "1.50"}));
        assert_eq!(v["op"], "c");
        assert_eq!(v["ts_ms"], 99);
        assert_eq!(v["source"]["table"], "t");
        assert_eq!(v["source"]["lsn"], 10);
        assert_eq!(v["source"]["txId"], 5);
        assert_eq!(v["source"]["snapshot"], "false");
        assert_eq!(v["transaction"]["id"], "5:20");
        assert_eq!(rec.event_time_ms, 1234);
        assert_eq!(rec.op, Some("c"));
    }

    #[test]
    fn tombstone_has_key_and_no_value() {
        let r = routed(None, Some(vec![Value::Int(7)]));
        let (mut k, mut v) = (Vec::new(), Vec::new());
        let rec = encode_into(&r, &schema(), 99, &mut k, &mut v).unwrap();
        assert_eq!(rec.key, Some(&b"{\"id\":7}"[..]));
        assert!(rec.value.is_none());
        assert_eq!(rec.event_time_ms, 1234);
        assert!(rec.op.is_none());
    }

    #[test]
    fn truncate_has_empty_object_key() {
        let mut e = change(Op::Truncate);
        e.after = None;
        let r = routed(Some(e), None);
        let (mut k, mut v) = (Vec::new(), Vec::new());
        let rec = encode_into(&r, &schema(), 99, &mut k, &mut v).unwrap();
        assert_eq!(rec.key, Some(&b"{}"[..]));
        let v: serde_json::Value = serde_json::from_slice(rec.value.unwrap()).unwrap();
        assert_eq!(v["op"], "t");
    }
}
