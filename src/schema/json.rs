//! The Debezium JSON envelope.
//!
//! Key: a JSON object of the key columns (`{"id": 1}`); `{}` for a truncate (so compacted
//! topics, which refuse null keys, accept it). Value: `{"before", "after", "source", "op",
//! "ts_ms", "transaction"}` as Debezium writes it, so existing consumers work unchanged; a
//! tombstone has a null value.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::OutRecord;
use crate::error::{Error, Result};
use crate::event::{ChangeEvent, Row, SourceLocation, TableSchema};
use crate::router::Routed;

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
            Some(t) => m.serialize_entry(
                "transaction",
                &serde_json::json!({
                    "id": &*t.id,
                    "total_order": t.total_order,
                    "data_collection_order": t.data_collection_order,
                }),
            )?,
            None => m.serialize_entry("transaction", &())?,
        }
        m.end()
    }
}

/// Encodes one routed message. `now_ms` is the envelope's processing time.
pub fn encode(routed: &Routed, schema: &TableSchema, now_ms: i64) -> Result<OutRecord> {
    let key = if routed.route.key_columns.is_empty() && routed.key.is_some() {
        None
    } else {
        Some(
            serde_json::to_vec(&KeyRef {
                schema,
                columns: &routed.route.key_columns,
                values: routed.key.as_ref(),
            })
            .map_err(|e| {
                Error::definite(format!("encoding the key of {}", schema.id)).with_source(e)
            })?,
        )
    };
    let (value, event_time_ms, op) = match &routed.event {
        Some(event) => (
            Some(
                serde_json::to_vec(&EnvelopeRef { event, now_ms }).map_err(|e| {
                    Error::definite(format!("encoding a change of {}", schema.id)).with_source(e)
                })?,
            ),
            event.source.ts_ms,
            Some(event.op.code()),
        ),
        None => (None, routed.event_time_ms, None),
    };
    Ok(OutRecord {
        topic: routed.route.topic.clone(),
        key,
        value,
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
        let rec = encode(&r, &schema(), 99).unwrap();
        assert_eq!(rec.key.as_deref(), Some(&b"{\"id\":7}"[..]));
        let v: serde_json::Value = serde_json::from_slice(rec.value.as_ref().unwrap()).unwrap();
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
        let rec = encode(&r, &schema(), 99).unwrap();
        assert_eq!(rec.key.as_deref(), Some(&b"{\"id\":7}"[..]));
        assert!(rec.value.is_none());
        assert_eq!(rec.event_time_ms, 1234);
        assert!(rec.op.is_none());
    }

    #[test]
    fn truncate_has_empty_object_key() {
        let mut e = change(Op::Truncate);
        e.after = None;
        let r = routed(Some(e), None);
        let rec = encode(&r, &schema(), 99).unwrap();
        assert_eq!(rec.key.as_deref(), Some(&b"{}"[..]));
        let v: serde_json::Value = serde_json::from_slice(rec.value.as_ref().unwrap()).unwrap();
        assert_eq!(v["op"], "t");
    }
}
