//! The source watcher: how far each connector is behind its server's log, read every
//! `admin.source_poll_ms` over a connection of its own, for the metrics
//! (`tidemark_source_lag_bytes`, `tidemark_replication_slot_retained_bytes`) and
//! `GET /connectors/{name}`.
//!
//! It runs beside the connector's supervisor, not inside a life of the connector: a paused,
//! failed or retrying connector is exactly when a slot's retained WAL grows, so it goes on
//! reading then. It never writes and never holds a lock: one catalog query per poll
//! (PostgreSQL: `pg_current_wal_lsn()` and the slot's `restart_lsn`; MySQL:
//! `SHOW BINARY LOGS`). A failed poll drops the connection and is logged once per outage
//! (at DEBUG after that); the connector itself reports its server's errors.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{ConnectorConfig, SourceSettings};
use crate::error::Result;
use crate::event::Position;
use crate::status::Backlog;

/// One source's open watcher connection.
enum Probe {
    Postgres(super::postgres::backlog::Probe),
    Mysql(super::mysql::backlog::Probe),
}

impl Probe {
    async fn connect(cfg: &ConnectorConfig) -> Result<Self> {
        Ok(match &cfg.source {
            SourceSettings::Postgres(pg) => {
                Probe::Postgres(super::postgres::backlog::Probe::connect(cfg, pg).await?)
            }
            SourceSettings::Mysql(_) => {
                Probe::Mysql(super::mysql::backlog::Probe::connect(cfg).await?)
            }
        })
    }

    async fn read(&mut self, committed: Option<&Position>) -> Result<Backlog> {
        match self {
            Probe::Postgres(p) => p.read(committed).await,
            Probe::Mysql(p) => p.read(committed).await,
        }
    }
}

/// Reads connector `cfg`'s backlog every `every` into its status until `shutdown`.
pub async fn watch(
    cfg: Arc<ConnectorConfig>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(status) = crate::status::connector(&cfg.name) else {
        return;
    };
    let mut probe: Option<Probe> = None;
    let mut failing = false;
    // The first reading soon after start (the connector connects meanwhile).
    let mut wait = every.min(Duration::from_secs(2));
    while crate::retry::sleep_unless_stopped(wait, &mut shutdown).await {
        wait = every;
        let committed = status.snapshot().position.map(Position);
        let reading = async {
            let p = match probe.as_mut() {
                Some(p) => p,
                None => probe.insert(Probe::connect(&cfg).await?),
            };
            p.read(committed.as_ref()).await
        };
        // A poll never outlives its interval (a server that stopped answering).
        match tokio::time::timeout(every.max(Duration::from_secs(5)), reading).await {
            Ok(Ok(backlog)) => {
                if failing {
                    tracing::info!(connector = %cfg.name, "source watcher: reading the server's log position again");
                    failing = false;
                }
                status.backlog(backlog);
            }
            Ok(Err(e)) => {
                probe = None;
                if failing {
                    tracing::debug!(connector = %cfg.name, error = %e, "source watcher: poll failed");
                } else {
                    tracing::warn!(connector = %cfg.name, error = %e,
                        "source watcher: cannot read the server's log position (tidemark_source_lag_bytes and the slot's retained bytes are stale until it can)");
                    failing = true;
                }
            }
            Err(_) => {
                probe = None;
                tracing::debug!(connector = %cfg.name, "source watcher: poll timed out");
            }
        }
    }
}
