//! Position stores and the acknowledgement tracker.
//!
//! Owns: keeping each connector's committed [`Position`] (a compacted Kafka topic, or a local
//! file), and deciding which position may be committed (see [`tracker`]). Must not: use a
//! source's client: a position is an opaque value here.

pub mod file;
pub mod kafka;
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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
