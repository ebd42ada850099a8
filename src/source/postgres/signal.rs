//! Snapshot signals into the WAL: a transactional logical decoding message with the prefix
//! [`SIGNAL_PREFIX`], which the connector reads in order with the changes
//! (see `crate::snapshot::signal`).

use super::error::classify_postgres;
use super::setup;
use crate::config::ConnectorConfig;
use crate::error::{Error, Result};
use crate::snapshot::signal::{Signal, SIGNAL_PREFIX};

/// Writes `signal`; returns its WAL position, for the user.
pub async fn write(cfg: &ConnectorConfig, signal: &Signal) -> Result<String> {
    let content = serde_json::to_string(signal)
        .map_err(|e| Error::definite("encoding the signal").with_source(e))?;
    let client = setup::connect(cfg).await?;
    let row = client
        .query_one(
            "SELECT pg_logical_emit_message(true, $1::text, $2::text)::text",
            &[&SIGNAL_PREFIX, &content],
        )
        .await
        .map_err(|e| classify_postgres(format!("connector {}: writing the signal", cfg.name), e))?;
    let lsn: String = row
        .try_get(0)
        .map_err(|e| Error::definite("reading the signal's WAL position").with_source(e))?;
    Ok(format!("at WAL position {lsn}"))
}
