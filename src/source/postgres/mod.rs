//! PostgreSQL source: a logical replication slot with `pgoutput`, streamed over the
//! replication protocol by our own client ([`replication`]), decoded by our own `pgoutput`
//! decoder.
//!
//! Owns: the slot, the publication, the replication session, and the translation of pgoutput
//! messages into [`crate::event::SourceMessage`]s in commit order. Must not: know topics,
//! keys, encodings, sinks or position stores. The position argument is in [`position`].
//!
//! Why a replication client of our own (tokio-postgres has no replication support): reading
//! the stream at the walsender's pace costs more in wake-ups than in decoding, and only a
//! client that owns the socket can pace its reads (the measurement is in [`replication`]'s
//! module doc). It reports only an explicit, monotonic "applied LSN", which is the
//! commit-after-acknowledgement contract the position argument needs.

pub mod backlog;
pub mod config;
pub mod error;
pub mod pgoutput;
pub mod position;
pub mod relations;
pub mod replication;
#[cfg(any(test, feature = "fuzzing"))]
pub mod robustness;
pub mod setup;
pub mod signal;
pub mod snapshot;
pub mod stream;
pub mod text_value;
pub mod tls;
pub mod types;

pub use position::PgPosition;
pub use stream::run;

use crate::config::{ConnectorConfig, PostgresSettings, SourceSettings};
use crate::error::{Error, Result};

/// The `postgres:` settings of `cfg`; a definite error for a connector of another kind (the
/// facade in `crate::source` never hands one over).
pub fn settings(cfg: &ConnectorConfig) -> Result<&PostgresSettings> {
    match &cfg.source {
        SourceSettings::Postgres(pg) => Ok(pg),
        other => Err(Error::definite(format!(
            "connector {}: a {:?} connector, not a PostgreSQL one",
            cfg.name,
            other.kind()
        ))),
    }
}
