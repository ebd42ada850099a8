//! The schema stage: turns routed changes into the bytes of Kafka messages.
//!
//! Owns: the message formats. Today: the Debezium JSON envelope (the format when no schema
//! registry is configured). Avro with a schema registry comes with the schema issue.
//! Must not: choose topics or keys (see `router`) or produce (see `sink`).

pub mod json;

/// Reusable buffers for encoding messages: one allocation per connector, not per message.
#[derive(Default)]
pub struct Encoder {
    key: Vec<u8>,
    value: Vec<u8>,
    names: json::NameCache,
}

impl Encoder {
    /// Encodes one routed message; the result borrows this encoder until the next call.
    pub fn encode<'a>(
        &'a mut self,
        routed: &'a crate::router::Routed,
        schema: &std::sync::Arc<crate::event::TableSchema>,
        now_ms: i64,
    ) -> crate::error::Result<crate::sink::Message<'a>> {
        let names = self.names.get(schema);
        json::encode_into(
            routed,
            schema,
            &names,
            now_ms,
            &mut self.key,
            &mut self.value,
        )
    }
}
