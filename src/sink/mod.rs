//! Sinks: where encoded messages go, and the acknowledgement of each.
//!
//! Owns: producing [`Message`]s and reporting when they are durable. Must not: use a source,
//! route, or encode.
//!
//! One [`Sink`] serves every connector; each connector life gets its own [`Output`], whose
//! messages are numbered 0, 1, 2, ... and whose [`AckWindow`] tells how far they are durable.
//! Handing a message over never waits for its acknowledgement (only for room in the sink's
//! queue), so the pipeline does not wake up per message.
//!
//! Per-key order: a sink keeps the order of `send` calls per key (the Kafka sink uses the
//! idempotent producer, so retries never reorder, and the key picks the partition).

pub mod ack;
pub mod kafka;
pub mod stdout;

use std::sync::Arc;

pub use ack::{AckWindow, Acked};

use crate::error::Result;
use crate::status::latency::StageLatency;

pub use crate::event::Message;

// One per daemon: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Sink {
    Kafka(kafka::KafkaSink),
    Stdout(stdout::StdoutSink),
}

impl Sink {
    /// Makes sure `topic` exists (creating it as configured). `compact`: the topic holds a
    /// table's rows (compacted under `kafka.compact_topics`); `false`: an event stream (an
    /// outbox topic), never compacted.
    pub async fn ensure_topic(&self, topic: &str, compact: bool) -> Result<()> {
        match self {
            Sink::Kafka(k) => k.ensure_topic(topic, compact).await,
            Sink::Stdout(_) => Ok(()),
        }
    }

    /// The largest record `topic` takes (none for a sink without a limit).
    pub fn max_message_bytes(&self, topic: &str) -> Option<usize> {
        match self {
            Sink::Kafka(k) => Some(k.max_message_bytes(topic)),
            Sink::Stdout(_) => None,
        }
    }

    /// Whether the sink keeps what it is sent, so that [`Sink::holds_messages`] can tell.
    pub fn keeps_messages(&self) -> bool {
        matches!(self, Sink::Kafka(_))
    }

    /// Whether any of `topics` holds a message (a connector that finds no stored position
    /// but whose topics hold messages has produced before: its position was lost). A sink
    /// that keeps nothing answers `false`.
    pub async fn holds_messages(&self, topics: &[String]) -> Result<bool> {
        match self {
            Sink::Kafka(k) => k.holds_messages(topics).await,
            Sink::Stdout(_) => Ok(false),
        }
    }

    /// Waits until everything handed over is acknowledged or failed.
    pub async fn flush(&self) -> Result<()> {
        match self {
            Sink::Kafka(k) => k.flush().await,
            Sink::Stdout(s) => s.flush(),
        }
    }
}

/// One connector life's way into the sink: numbers its messages and tracks their
/// acknowledgement.
pub struct Output {
    sink: Arc<Sink>,
    window: Arc<AckWindow>,
    next: u64,
}

impl Output {
    pub fn new(sink: Arc<Sink>) -> Self {
        Self::with_latency(sink, None)
    }

    /// An output whose acknowledgements' delays go to `latency` (the connector's status).
    pub fn with_latency(sink: Arc<Sink>, latency: Option<Arc<StageLatency>>) -> Self {
        Self {
            sink,
            window: Arc::new(AckWindow::with_latency(latency)),
            next: 0,
        }
    }

    /// Hands one message to the sink; waits only while the sink's queue is full. Its outcome
    /// arrives in [`Output::window`] under the number [`Output::sent`] had before the call.
    pub async fn send(&mut self, message: Message<'_>) -> Result<()> {
        let seq = self.next;
        match &*self.sink {
            Sink::Kafka(k) => k.send(message, &self.window, seq).await?,
            Sink::Stdout(s) => s.send(message, &self.window, seq)?,
        }
        self.next += 1;
        Ok(())
    }

    /// Ends a batch of sends: a buffering sink writes out what it holds.
    pub fn end_batch(&mut self) -> Result<()> {
        match &*self.sink {
            Sink::Kafka(_) => Ok(()),
            Sink::Stdout(s) => s.end_batch(),
        }
    }

    /// How many messages were handed over: a checkpoint taken now is committable once the
    /// window's prefix reaches this number.
    pub fn sent(&self) -> u64 {
        self.next
    }

    pub fn window(&self) -> &Arc<AckWindow> {
        &self.window
    }
}
