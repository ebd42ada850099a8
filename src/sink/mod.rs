//! Sinks: where encoded messages go, and the acknowledgement of each.
//!
//! Owns: producing [`OutRecord`]s and reporting, per record, when it is durable. Must not:
//! use a source, route, or encode.
//!
//! Per-key order: a sink keeps the order of `send` calls per key (the Kafka sink uses the
//! idempotent producer, so retries never reorder, and the key picks the partition).

pub mod kafka;
pub mod stdout;

use std::future::Future;
use std::pin::Pin;

use crate::error::Result;
use crate::schema::OutRecord;

/// Resolves when the record is durable in the sink (or failed for good).
pub type Ack = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

pub enum Sink {
    Kafka(kafka::KafkaSink),
    Stdout(stdout::StdoutSink),
}

impl Sink {
    /// Makes sure `topic` exists (creating it as configured).
    pub async fn ensure_topic(&self, topic: &str) -> Result<()> {
        match self {
            Sink::Kafka(k) => k.ensure_topic(topic).await,
            Sink::Stdout(_) => Ok(()),
        }
    }

    /// Hands one record to the sink; waits only while the sink's queue is full.
    pub async fn send(&self, record: OutRecord) -> Result<Ack> {
        match self {
            Sink::Kafka(k) => k.send(record).await,
            Sink::Stdout(s) => s.send(record).await,
        }
    }

    /// Waits until everything handed over is acknowledged or failed.
    pub async fn flush(&self) -> Result<()> {
        match self {
            Sink::Kafka(k) => k.flush().await,
            Sink::Stdout(s) => s.flush().await,
        }
    }
}
