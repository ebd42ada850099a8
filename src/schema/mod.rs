//! The schema stage: turns routed changes into the bytes of Kafka messages.
//!
//! Owns: the message formats. Today: the Debezium JSON envelope (the format when no schema
//! registry is configured). Avro with a schema registry comes with the schema issue.
//! Must not: choose topics or keys (see `router`) or produce (see `sink`).

pub mod json;

pub use json::encode;

/// One message ready for a sink.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    pub topic: std::sync::Arc<str>,
    /// The JSON key object (`{}` for a truncate or a keyless table on a non-compacted topic).
    pub key: Option<Vec<u8>>,
    /// `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Event time (commit time), milliseconds since the epoch, sent as a header and as the
    /// record's timestamp.
    pub event_time_ms: i64,
    /// The operation code (`c`, `u`, `d`, `r`, `t`), or `None` for a tombstone; sent as a header.
    pub op: Option<&'static str>,
}
