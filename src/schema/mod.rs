//! The schema stage: turns routed changes into the bytes of Kafka messages.
//!
//! Owns: the message formats, one module per format and one field of [`Encoder`] each: the
//! Debezium JSON envelope ([`json`]) and the same inside Kafka Connect's schema/payload wrapper
//! ([`json_schema`], with the Connect schemas of [`connect`]). Each route says its table's format.
//! Must not: choose topics or keys (see `router`) or produce (see `sink`).

pub mod avro_schema;
pub mod avro_value;
pub mod connect;
pub mod json;
pub mod json_schema;

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
}

impl Encoder {
    /// Encodes one routed message; the result borrows this encoder until the next call.
    pub fn encode<'a>(&'a mut self, routed: &'a Routed, now_ms: i64) -> Result<Message<'a>> {
        match routed.route.format {
            Format::Json => self.json.encode(routed, now_ms),
            Format::JsonSchema => self.json_schema.encode(routed, now_ms),
        }
    }
}
