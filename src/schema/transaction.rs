//! Debezium's transaction metadata records (`transaction_metadata.enabled`): a `BEGIN` and an
//! `END` per transaction on the transaction topic, keyed by the transaction's id, in the
//! daemon's format, with Debezium's schemas (`io.debezium.connector.common.
//! TransactionMetadataKey` / `TransactionMetadataValue`).
//!
//! `END` carries the transaction's event count and the count per table (`data_collections`);
//! the change events carry the same id and their order in their `transaction` block, so a
//! consumer can tell when it holds every event of a transaction.

use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::avro_binary::{write_bytes, write_long};

/// Whether a record opens or closes its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Begin,
    End,
}

/// One transaction metadata record.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRecord {
    pub status: Status,
    /// The id the change events' `transaction.id` carries.
    pub id: Arc<str>,
    /// The transaction's commit time, ms since the epoch.
    pub ts_ms: i64,
    /// `END`: the transaction's events, and per table (`schema.table`) in first-seen order.
    pub event_count: u64,
    pub data_collections: Vec<(String, u64)>,
}

impl TransactionRecord {
    fn status_text(&self) -> &'static str {
        match self.status {
            Status::Begin => "BEGIN",
            Status::End => "END",
        }
    }

    /// The JSON key (`{"id": ...}`).
    pub fn json_key(&self) -> Json {
        json!({ "id": &*self.id })
    }

    /// The JSON value, as Debezium writes it (`event_count` and `data_collections` null in
    /// a `BEGIN`).
    pub fn json_value(&self) -> Json {
        let end = self.status == Status::End;
        json!({
            "status": self.status_text(),
            "id": &*self.id,
            "event_count": end.then_some(self.event_count),
            "data_collections": end.then(|| self.data_collections.iter().map(|(t, n)| json!({
                "data_collection": t, "event_count": n
            })).collect::<Vec<_>>()),
            "ts_ms": self.ts_ms,
        })
    }

    /// The Avro datum of [`avro_value_schema`].
    pub fn write_avro_value(&self, out: &mut Vec<u8>) {
        write_bytes(out, self.status_text().as_bytes());
        write_bytes(out, self.id.as_bytes());
        match self.status {
            Status::Begin => {
                write_long(out, 0);
                write_long(out, 0);
            }
            Status::End => {
                write_long(out, 1);
                write_long(out, self.event_count as i64);
                write_long(out, 1);
                if !self.data_collections.is_empty() {
                    write_long(out, self.data_collections.len() as i64);
                    for (t, n) in &self.data_collections {
                        write_bytes(out, t.as_bytes());
                        write_long(out, *n as i64);
                    }
                }
                write_long(out, 0);
            }
        }
        write_long(out, self.ts_ms);
    }

    /// The Avro datum of [`avro_key_schema`].
    pub fn write_avro_key(&self, out: &mut Vec<u8>) {
        write_bytes(out, self.id.as_bytes());
    }
}

/// The key's Connect schema.
pub fn connect_key_schema() -> Json {
    json!({
        "type": "struct", "optional": false,
        "name": "io.debezium.connector.common.TransactionMetadataKey", "version": 1,
        "fields": [{ "type": "string", "optional": false, "field": "id" }]
    })
}

/// The value's Connect schema.
pub fn connect_value_schema() -> Json {
    json!({
        "type": "struct", "optional": false,
        "name": "io.debezium.connector.common.TransactionMetadataValue", "version": 1,
        "fields": [
            { "type": "string", "optional": false, "field": "status" },
            { "type": "string", "optional": false, "field": "id" },
            { "type": "int64", "optional": true, "field": "event_count" },
            { "type": "array", "optional": true, "field": "data_collections", "items": {
                "type": "struct", "optional": false, "name": "event.collection", "version": 1,
                "fields": [
                    { "type": "string", "optional": false, "field": "data_collection" },
                    { "type": "int64", "optional": false, "field": "event_count" }
                ]
            }},
            { "type": "int64", "optional": false, "field": "ts_ms" }
        ]
    })
}

/// The key's Avro schema.
pub fn avro_key_schema() -> Json {
    json!({
        "type": "record", "name": "TransactionMetadataKey",
        "namespace": "io.debezium.connector.common",
        "fields": [{ "name": "id", "type": "string" }]
    })
}

/// The value's Avro schema.
pub fn avro_value_schema() -> Json {
    json!({
        "type": "record", "name": "TransactionMetadataValue",
        "namespace": "io.debezium.connector.common",
        "fields": [
            { "name": "status", "type": "string" },
            { "name": "id", "type": "string" },
            { "name": "event_count", "type": ["null", "long"], "default": null },
            { "name": "data_collections", "type": ["null", { "type": "array", "items": {
                "type": "record", "name": "collection", "namespace": "event",
                "fields": [
                    { "name": "data_collection", "type": "string" },
                    { "name": "event_count", "type": "long" }
                ]
            }}], "default": null },
            { "name": "ts_ms", "type": "long" }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::types::Value as Avro;
    use apache_avro::Schema;

    fn end() -> TransactionRecord {
        TransactionRecord {
            status: Status::End,
            id: Arc::from("571:53195832"),
            ts_ms: 1_700_000_000_000,
            event_count: 3,
            data_collections: vec![("s1.a".into(), 2), ("s1.b".into(), 1)],
        }
    }

    #[test]
    fn json_records_in_debeziums_shape() {
        let v = end().json_value();
        assert_eq!(v["status"], "END");
        assert_eq!(v["event_count"], 3);
        assert_eq!(
            v["data_collections"][1],
            json!({"data_collection": "s1.b", "event_count": 1})
        );
        let begin = TransactionRecord {
            status: Status::Begin,
            ..end()
        };
        let b = begin.json_value();
        assert_eq!(b["event_count"], Json::Null);
        assert_eq!(b["data_collections"], Json::Null);
        assert_eq!(begin.json_key(), json!({"id": "571:53195832"}));
    }

    #[test]
    fn avro_records_decode_with_their_schemas() {
        let schema = Schema::parse_str(&avro_value_schema().to_string()).unwrap();
        for record in [
            end(),
            TransactionRecord {
                status: Status::Begin,
                ..end()
            },
        ] {
            let mut out = Vec::new();
            record.write_avro_value(&mut out);
            let mut datum = out.as_slice();
            let v = GenericDatumReader::builder(&schema)
                .build()
                .unwrap()
                .read_value(&mut datum)
                .unwrap();
            assert!(datum.is_empty());
            let Avro::Record(fields) = v else {
                panic!("{v:?}")
            };
            assert_eq!(fields[1].1, Avro::String("571:53195832".into()));
            assert_eq!(fields[4].1, Avro::Long(1_700_000_000_000));
            if record.status == Status::End {
                assert_eq!(fields[2].1, Avro::Union(1, Box::new(Avro::Long(3))));
            } else {
                assert_eq!(fields[2].1, Avro::Union(0, Box::new(Avro::Null)));
            }
        }
        Schema::parse_str(&avro_key_schema().to_string()).unwrap();
    }
}
