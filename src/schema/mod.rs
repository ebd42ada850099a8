//! The schema stage: turns routed changes into the bytes of Kafka messages.
//!
//! Owns: the message formats, one module per format behind one enum arm of [`Encoder`]. Today:
//! the Debezium JSON envelope ([`json`]). Avro with a schema registry comes with the schema
//! issue: a new module and one arm here.
//! Must not: choose topics or keys (see `router`) or produce (see `sink`).

pub mod json;

use crate::error::Result;
use crate::event::Message;
use crate::router::Routed;

/// A connector's encoder, in the format its messages are written in; each keeps reusable
/// buffers (one allocation per connector, not per message).
pub enum Encoder {
    /// The Debezium JSON envelope, without a schema.
    Json(json::JsonEncoder),
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::Json(json::JsonEncoder::default())
    }
}

impl Encoder {
    /// Encodes one routed message; the result borrows this encoder until the next call.
    pub fn encode<'a>(&'a mut self, routed: &'a Routed, now_ms: i64) -> Result<Message<'a>> {
        match self {
            Encoder::Json(e) => e.encode(routed, now_ms),
        }
    }
}
