//! The PostgreSQL side of the source watcher (`crate::source::backlog`): the server's
//! current WAL position, the slot's `restart_lsn` (what the server keeps for it) and the
//! connector's committed LSN.

use tokio_postgres::Client;

use super::error::classify_postgres;
use super::pgoutput::{format_lsn, parse_lsn};
use super::PgPosition;
use crate::config::{ConnectorConfig, PostgresSettings};
use crate::error::Result;
use crate::event::{now_ms, Position};
use crate::status::Backlog;

/// The current WAL position (the replay position on a standby), and the slot's
/// `restart_lsn` and `confirmed_flush_lsn` (NULL when the slot does not exist).
const QUERY: &str = "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
     ELSE pg_current_wal_lsn() END)::text, \
     (SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1), \
     (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1)";

pub struct Probe {
    client: Client,
    slot: String,
    connector: String,
}

impl Probe {
    pub async fn connect(cfg: &ConnectorConfig, pg: &PostgresSettings) -> Result<Self> {
        Ok(Self {
            client: super::setup::connect(cfg).await?,
            slot: pg.slot.clone(),
            connector: cfg.name.clone(),
        })
    }

    /// One reading; `committed`: the connector's committed position, if any (else the
    /// slot's confirmed position stands for it).
    pub async fn read(&mut self, committed: Option<&Position>) -> Result<Backlog> {
        let row = self
            .client
            .query_one(QUERY, &[&self.slot])
            .await
            .map_err(|e| {
                classify_postgres(
                    format!(
                        "connector {}: reading the WAL position and slot {}",
                        self.connector, self.slot
                    ),
                    e,
                )
            })?;
        let lsn = |i: usize| -> Option<u64> {
            row.get::<_, Option<String>>(i)
                .as_deref()
                .and_then(parse_lsn)
        };
        let current = lsn(0);
        let restart = lsn(1);
        let committed = committed
            .and_then(|p| p.decode::<PgPosition>().ok())
            .map(|p| p.lsn)
            .filter(|&l| l > 0)
            .or(lsn(2));
        Ok(Backlog {
            server_position: current.map_or_else(|| "unknown".to_string(), format_lsn),
            behind_bytes: current.zip(committed).map(|(c, p)| c.saturating_sub(p)),
            retained_bytes: current.zip(restart).map(|(c, r)| c.saturating_sub(r)),
            at_ms: now_ms(),
        })
    }
}
