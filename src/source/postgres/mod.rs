//! PostgreSQL source: a logical replication slot with `pgoutput`, streamed over the
//! replication protocol (`pgwire-replication`), decoded by our own `pgoutput` decoder.
//!
//! Owns: the slot, the publication, the replication session, and the translation of pgoutput
//! messages into [`crate::event::SourceMessage`]s in commit order. Must not: know topics,
//! keys, encodings, sinks or position stores. The position argument is in [`position`].
//!
//! Why `pgwire-replication` rather than our own CopyBoth framing on tokio-postgres's codec:
//! it already does SCRAM, TLS, startup `options` (we pin DateStyle and friends) and, above all,
//! standby status feedback driven by an explicit, monotonic "applied LSN" (`ack_lsn` /
//! `update_applied_lsn`), which is exactly the commit-after-ack contract we need; it leaves
//! the pgoutput payloads to us (except Begin/Commit/Message, which it pre-parses and which we
//! map back onto our decoder's types).

pub mod backlog;
pub mod config;
pub mod error;
pub mod pgoutput;
pub mod position;
pub mod relations;
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
