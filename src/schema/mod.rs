//! The schema stage: turns routed changes into the bytes of Kafka messages.
//!
//! Owns: the message formats, one module per format and one field of [`Encoder`] each: the
//! Debezium JSON envelope ([`json`]) and the same inside Kafka Connect's schema/payload wrapper
//! ([`json_schema`], with the Connect schemas of [`connect`]), and Avro in Confluent's wire format
//! ([`avro`]: schemas from [`avro_schema`], values from [`avro_value`] written by
//! [`avro_binary`], registered through [`registry`]). Each route says its table's format.
//! Must not: choose topics or keys (see `router`) or produce (see `sink`).

pub mod avro;
pub mod avro_binary;
pub mod avro_schema;
pub mod avro_value;
pub mod connect;
pub mod contract;
pub mod debezium;
pub mod json;
pub mod json_schema;
pub mod registry;
pub mod transaction;

use crate::config::Format;
use crate::error::Result;
use crate::event::Message;
use crate::router::Routed;

/// A connector's encoders, one per format; each message is written in its route's format.
/// Each keeps reusable buffers (one allocation per connector, not per message).
#[derive(Default)]
pub struct Encoder {
    /// `format: json`: the Debezium JSON envelope, without a schema.
    json: json::JsonEncoder,
    /// `format: json-schema`: the envelope in Kafka Connect's schema/payload wrapper.
    json_schema: json_schema::JsonSchemaEncoder,
    /// `format: avro`: Confluent's wire format, schemas in the schema registry.
    avro: avro::AvroEncoder,
    /// The key and value of a JSON transaction metadata record.
    transaction_key: Vec<u8>,
    transaction_value: Vec<u8>,
}

impl Encoder {
    /// The encoders of `connector`'s messages, with the schema registry of the avro format
    /// when one is configured.
    pub fn new(
        registry: Option<(registry::RegistryClient, crate::config::RegistrySettings)>,
        connector: &crate::config::ConnectorConfig,
    ) -> Self {
        let kind = match connector.kind() {
            crate::config::SourceKind::Postgres => "postgresql",
            crate::config::SourceKind::Mysql => "mysql",
        };
        let contracts = connector
            .tables
            .iter()
            .filter_map(|t| t.contract.clone().map(|c| (t.id.clone(), c)))
            .collect();
        Self {
            json: json::JsonEncoder::new(json::Style::default(), kind),
            json_schema: json_schema::JsonSchemaEncoder::new(kind),
            avro: avro::AvroEncoder::new(registry, kind, contracts),
            transaction_key: Vec::new(),
            transaction_value: Vec::new(),
        }
    }

    /// Makes sure the schema of `routed`'s route is registered (the avro format; the other
    /// formats need nothing). Returns this event's fault when the registry refused it.
    pub async fn prepare(
        &mut self,
        routed: &Routed,
    ) -> Result<Option<(crate::error::EventFault, String)>> {
        match routed.route.format {
            Format::Avro => self.avro.prepare(routed).await,
            Format::Json | Format::JsonSchema => Ok(None),
        }
    }

    /// Encodes a transaction metadata record for `topic` in `format` (in avro, its schemas
    /// are registered with the first record).
    pub async fn encode_transaction<'a>(
        &'a mut self,
        record: &transaction::TransactionRecord,
        topic: &'a str,
        format: Format,
    ) -> Result<Message<'a>> {
        let (key, value) = match format {
            Format::Avro => {
                let ids = self.avro.transaction_ids(topic).await?;
                return Ok(self.avro.encode_transaction(record, topic, ids));
            }
            Format::Json => (record.json_key(), record.json_value()),
            Format::JsonSchema => (
                serde_json::json!({
                    "schema": transaction::connect_key_schema(), "payload": record.json_key()
                }),
                serde_json::json!({
                    "schema": transaction::connect_value_schema(), "payload": record.json_value()
                }),
            ),
        };
        self.transaction_key.clear();
        self.transaction_value.clear();
        let write = |out: &mut Vec<u8>, j: &serde_json::Value| {
            serde_json::to_writer(out, j).map_err(|e| {
                crate::error::Error::definite("writing a transaction metadata record")
                    .with_source(e)
            })
        };
        write(&mut self.transaction_key, &key)?;
        write(&mut self.transaction_value, &value)?;
        Ok(Message {
            topic,
            key: Some(&self.transaction_key),
            value: Some(&self.transaction_value),
            event_time_ms: record.ts_ms,
            op: None,
            headers: &[],
        })
    }

    /// Encodes one routed message; the result borrows this encoder until the next call.
    pub fn encode<'a>(&'a mut self, routed: &'a Routed, now_ms: i64) -> Result<Message<'a>> {
        match routed.route.format {
            Format::Json => self.json.encode(routed, now_ms),
            Format::JsonSchema => self.json_schema.encode(routed, now_ms),
            Format::Avro => self.avro.encode(routed, now_ms),
        }
    }
}
