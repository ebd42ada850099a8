//! `format: json-schema`: the Debezium JSON envelope inside Kafka Connect's
//! `{"schema": ..., "payload": ...}` wrapper, as Debezium's JsonConverter writes it with
//! `schemas.enable=true`, so Kafka Connect sinks that read Debezium topics read tidemark's.
//!
//! Key and value each carry their schema ([`super::connect`]). JSON columns are written as a
//! string holding the JSON text (Connect has no "any JSON" type: `io.debezium.data.Json`), and
//! `BIGINT UNSIGNED` values as Connect `Decimal`s (base64 bytes, scale 0: Connect's `int64`
//! cannot hold values above 2^63-1; Debezium's `bigint.unsigned.handling.mode=precise`).
//! The schemas of a table shape are serialised once, when the router's route for it first
//! appears, and each message copies them in front of its payload: no schema work per event.
//! A truncate's key is an empty struct (`{}`), a tombstone's value null; an outbox event's
//! key and payload pass as they are, without a wrapper.

use std::collections::HashMap;
use std::sync::Arc;

use super::connect;
use super::json::{JsonEncoder, Style};
use crate::error::{Error, Result};
use crate::event::{Message, TableId};
use crate::router::{Body, Route, Routed};

/// One route's wrappers, serialised once: `{"schema":<schema>,"payload":` of its key, of a
/// truncate's empty key, and of its value.
struct Wrappers {
    key: Box<[u8]>,
    empty_key: Box<[u8]>,
    value: Box<[u8]>,
}

fn wrapper(schema: &serde_json::Value) -> Result<Box<[u8]>> {
    let mut out = b"{\"schema\":".to_vec();
    serde_json::to_writer(&mut out, schema)
        .map_err(|e| Error::definite("writing a Connect schema").with_source(e))?;
    out.extend_from_slice(b",\"payload\":");
    Ok(out.into_boxed_slice())
}

impl Wrappers {
    fn new(route: &Route, connector: &str) -> Result<Self> {
        let empty = serde_json::json!({
            "type": "struct", "fields": [], "optional": false,
            "name": format!("{}.Key", route.topic)
        });
        Ok(Self {
            key: wrapper(&connect::key_schema(route, connector))?,
            empty_key: wrapper(&empty)?,
            value: wrapper(&connect::value_schema(route, connector))?,
        })
    }
}

/// The json-schema encoder: the JSON encoder's bytes, wrapped.
pub struct JsonSchemaEncoder {
    inner: JsonEncoder,
    /// The previous message's route and wrappers (most messages follow one of their table).
    last: Option<(Arc<Route>, Arc<Wrappers>)>,
    wrappers: HashMap<TableId, (Arc<Route>, Arc<Wrappers>)>,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Default for JsonSchemaEncoder {
    fn default() -> Self {
        Self::new("postgresql")
    }
}

impl JsonSchemaEncoder {
    /// The encoder of a `source` connector's messages (`postgresql`, `mysql`).
    pub fn new(source: &'static str) -> Self {
        Self {
            inner: JsonEncoder::new(
                Style {
                    json_as_text: true,
                    uint64_as_decimal: true,
                },
                source,
            ),
            last: None,
            wrappers: HashMap::new(),
            key: Vec::new(),
            value: Vec::new(),
        }
    }

    fn wrappers_for(&mut self, routed: &Routed) -> Result<Arc<Wrappers>> {
        let route = &routed.route;
        if let Some((r, w)) = &self.last {
            if Arc::ptr_eq(r, route) {
                return Ok(w.clone());
            }
        }
        if let Some((r, w)) = self.wrappers.get(&route.schema.id) {
            if Arc::ptr_eq(r, route) {
                self.last = Some((r.clone(), w.clone()));
                return Ok(w.clone());
            }
        }
        // The first message of a route is a change (a tombstone follows its delete).
        let connector = routed
            .change()
            .map_or(self.inner.source(), |e| e.source.connector);
        let w = Arc::new(Wrappers::new(route, connector)?);
        self.wrappers
            .insert(route.schema.id.clone(), (route.clone(), w.clone()));
        self.last = Some((route.clone(), w.clone()));
        Ok(w)
    }

    /// Encodes one routed message; the result borrows this encoder until the next call.
    pub fn encode<'a>(&'a mut self, routed: &'a Routed, now_ms: i64) -> Result<Message<'a>> {
        if matches!(routed.body, Body::Outbox { .. }) {
            return self.inner.encode(routed, now_ms);
        }
        let wrappers = self.wrappers_for(routed)?;
        let Self {
            inner, key, value, ..
        } = self;
        let m = inner.encode(routed, now_ms)?;
        key.clear();
        value.clear();
        if let Some(k) = m.key {
            key.extend_from_slice(if routed.key.is_none() {
                &wrappers.empty_key
            } else {
                &wrappers.key
            });
            key.extend_from_slice(k);
            key.push(b'}');
        }
        if let Some(v) = m.value {
            value.extend_from_slice(&wrappers.value);
            value.extend_from_slice(v);
            value.push(b'}');
        }
        Ok(Message {
            topic: m.topic,
            key: m.key.is_some().then_some(key.as_slice()),
            value: m.value.is_some().then_some(value.as_slice()),
            event_time_ms: m.event_time_ms,
            op: m.op,
            headers: m.headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;
    use crate::event::Op;
    use crate::test_fixtures::{change, column, route, table};
    use crate::value::{ColumnType, JsonText, Value};

    fn routed(op: Op, key: Option<Vec<Value>>) -> Routed {
        let schema = table(
            "public",
            "t",
            vec![
                column("id", ColumnType::Int64, false),
                column("doc", ColumnType::Json, true),
            ],
            vec![0],
        );
        let doc = JsonText::parse(r#"{"a": [1, 2]}"#.into()).unwrap();
        Routed {
            route: Arc::new(route(
                "tm.public.t",
                schema.clone(),
                vec![0],
                Format::JsonSchema,
            )),
            key,
            body: Body::Change(change(
                schema,
                op,
                None,
                Some(vec![Value::Int(1), Value::Json(doc)]),
                5,
            )),
            event_time_ms: 5,
            headers: Vec::new(),
            key_change: None,
        }
    }

    #[test]
    fn key_and_value_carry_their_schema_and_json_columns_are_text() {
        let mut enc = JsonSchemaEncoder::default();
        let r = routed(Op::Create, Some(vec![Value::Int(1)]));
        let m = enc.encode(&r, 9).unwrap();
        let key: serde_json::Value = serde_json::from_slice(m.key.unwrap()).unwrap();
        assert_eq!(key["payload"], serde_json::json!({"id": 1}));
        assert_eq!(key["schema"]["name"], "tm.public.t.Key");
        let value: serde_json::Value = serde_json::from_slice(m.value.unwrap()).unwrap();
        assert_eq!(value["schema"]["name"], "tm.public.t.Envelope");
        assert_eq!(value["payload"]["after"]["doc"], r#"{"a": [1, 2]}"#);
        assert_eq!(value["payload"]["op"], "c");
        // The same route again: the same schema bytes, cached.
        let again = enc.encode(&r, 9).unwrap();
        let v2: serde_json::Value = serde_json::from_slice(again.value.unwrap()).unwrap();
        assert_eq!(v2["schema"], value["schema"]);
        // A truncate: an empty key struct.
        let mut t = routed(Op::Truncate, None);
        if let Body::Change(e) = &mut t.body {
            e.after = None;
        }
        let m = enc.encode(&t, 9).unwrap();
        let key: serde_json::Value = serde_json::from_slice(m.key.unwrap()).unwrap();
        assert_eq!(key["payload"], serde_json::json!({}));
        assert_eq!(key["schema"]["fields"], serde_json::json!([]));
        // A tombstone: a wrapped key and a null value.
        let mut tomb = routed(Op::Delete, Some(vec![Value::Int(1)]));
        tomb.body = Body::Tombstone;
        let m = enc.encode(&tomb, 9).unwrap();
        assert!(m.value.is_none());
        assert!(m.key.is_some());
    }
}
