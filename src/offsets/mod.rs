//! Position stores and the acknowledgement tracker.
//!
//! Owns: keeping each connector's committed [`Position`] (a compacted Kafka topic, or a local
//! file), and deciding which position may be committed (see [`tracker`]). Must not: use a
//! source's client: a position is an opaque value here.

pub mod file;
pub mod kafka;
pub mod lease;
pub mod tracker;

use crate::error::Result;
use crate::event::Position;

pub enum PositionStore {
    File(file::FileStore),
    Kafka(kafka::KafkaStore),
}

impl PositionStore {
    pub async fn load(&self, connector: &str) -> Result<Option<Position>> {
        match self {
            PositionStore::File(s) => s.load(connector).await,
            PositionStore::Kafka(s) => s.load(connector).await,
        }
    }

    /// Takes `connector` for this process (see [`lease`]): refused when a newer process holds
    /// it; the receiver turns to `Some(why)` when a newer process takes it later. The file
    /// store (development, one machine) does not fence.
    pub async fn acquire(
        &self,
        connector: &str,
    ) -> Result<tokio::sync::watch::Receiver<Option<String>>> {
        match self {
            PositionStore::File(_) => Ok(tokio::sync::watch::channel(None).1),
            PositionStore::Kafka(s) => s.acquire(connector).await,
        }
    }

    pub async fn commit(&self, connector: &str, position: &Position) -> Result<()> {
        match self {
            PositionStore::File(s) => s.commit(connector, position).await,
            PositionStore::Kafka(s) => s.commit(connector, position).await,
        }
    }
}

/// What a store keeps for one connector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredPosition {
    pub connector: String,
    pub position: Position,
    pub committed_at_ms: i64,
}

pub use crate::event::now_ms;
