//! Source readers: each streams one database's change log as [`crate::event::SourceMessage`]s.
//!
//! Must not: use the router, schema stage, sinks or position stores. A source receives the
//! newest acknowledged [`crate::event::Position`] through a watch channel and tells its server.

pub mod check;
pub mod mysql;
pub mod postgres;

/// Resolves once `shutdown` is (or already was) true, or its sender is gone: the one exit of
/// a source's stream loop, raced against each of its waits.
pub async fn stop_requested(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // The Ref it returns is not Send: drop it here.
    let _ = shutdown.wait_for(|s| *s).await;
}

/// What the pipeline knows about where a connector starts, beyond its stored position.
#[derive(Debug, Clone, Default)]
pub struct StartHints {
    /// No position is stored, yet the connector's topics hold messages: it has produced
    /// before and its position was lost (see `snapshot.on_lost_position`).
    pub lost_position: bool,
    /// Tables whose topics hold nothing although the connector has a stored position (added to
    /// `tables:` since): with `snapshot.mode: initial` they are snapshotted.
    pub new_tables: Vec<crate::event::TableId>,
}
