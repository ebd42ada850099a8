//! Source readers: each streams one database's change log as [`crate::event::SourceMessage`]s.
//!
//! Must not: use the router, schema stage, sinks or position stores. A source receives the
//! newest acknowledged [`crate::event::Position`] through a watch channel and tells its server.
//!
//! # The facade
//!
//! The CLI and the pipeline call only [`run`], [`check()`], [`table_columns`] and [`write_signal`]; each dispatches
//! on the connector's [`SourceSettings`] to the source's folder. A new source is one folder
//! (`config.rs` for its block of the connector file, `error.rs` for its driver's errors,
//! `setup.rs` for `check`, `stream.rs` for `run`, and its snapshot backend) and one arm in
//! each `match` here and in [`SourceSettings`].

pub mod backlog;
pub mod check;
pub mod mysql;
pub mod postgres;
pub mod read_pacing;
pub mod stream_loop;

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::config::{ConnectorConfig, SourceSettings};
use crate::error::{Error, Result};
use crate::event::{Position, SourceMessage};
use crate::snapshot::signal::Signal;
use check::CheckItem;

/// Everything a source's stream loop is given.
pub struct SourceContext {
    pub cfg: Arc<ConnectorConfig>,
    /// The connector's stored position (none at its first start).
    pub start: Option<Position>,
    pub hints: StartHints,
    /// The sink's topics are compacted: a table needs a key for its deletes to become
    /// tombstones, so a keyless table is refused at start-up.
    pub compacted_topics: bool,
    /// Where the source's messages go, in log order.
    pub out: mpsc::Sender<SourceMessage>,
    /// The newest position whose every message Kafka acknowledged and the store committed:
    /// the source confirms it to its server (and only it).
    pub acked: watch::Receiver<Option<Position>>,
    /// Turns true when the daemon stops.
    pub shutdown: watch::Receiver<bool>,
}

/// Streams the connector until shutdown or an error (see each source's `stream::run`).
pub async fn run(ctx: SourceContext) -> Result<()> {
    match &ctx.cfg.source {
        SourceSettings::Postgres(_) => postgres::run(ctx).await,
        SourceSettings::Mysql(_) => mysql::run(ctx).await,
    }
}

/// `tidemark check` for one connector: connects, inspects the server, and judges what it
/// finds. `compacted_topics` as in [`SourceContext`].
pub async fn check(cfg: &ConnectorConfig, compacted_topics: bool) -> Result<Vec<CheckItem>> {
    match &cfg.source {
        SourceSettings::Postgres(pg) => postgres::setup::check(cfg, pg, compacted_topics).await,
        SourceSettings::Mysql(my) => mysql::setup::check(cfg, my).await,
    }
}

/// The live columns of each configured table that exists (for checking the table files'
/// rules against them at start-up and in `tidemark check`).
pub async fn table_columns(
    cfg: &ConnectorConfig,
) -> Result<Vec<(crate::event::TableId, Vec<String>)>> {
    match &cfg.source {
        SourceSettings::Postgres(_) => postgres::setup::table_columns(cfg).await,
        SourceSettings::Mysql(_) => mysql::setup::table_columns(cfg).await,
    }
}

/// Writes a snapshot signal into the source's log, where the running connector reads it in
/// order with the changes; returns where it went, for the user.
pub async fn write_signal(cfg: &ConnectorConfig, signal: &Signal) -> Result<String> {
    match &cfg.source {
        SourceSettings::Postgres(_) => postgres::signal::write(cfg, signal).await,
        SourceSettings::Mysql(_) => mysql::signal_table::write(cfg, signal).await,
    }
}

/// Resolves once `shutdown` is (or already was) true, or its sender is gone: the one exit of
/// a source's stream loop, raced against each of its waits.
pub async fn stop_requested(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // The Ref it returns is not Send: drop it here.
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Decodes a stored position of connector `connector` as a `kind` position, with a definite
/// error naming both when it is not one (a connector's kind was changed).
pub fn decode_stored<T: serde::de::DeserializeOwned>(
    stored: Option<&Position>,
    connector: &str,
    kind: &str,
) -> Result<Option<T>> {
    stored
        .map(|p| {
            p.decode::<T>().map_err(|e| {
                Error::definite(format!(
                    "connector {connector}: stored position {p} is not a {kind} position: {e}"
                ))
            })
        })
        .transpose()
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
