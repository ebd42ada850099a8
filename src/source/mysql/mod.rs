//! The MySQL / MariaDB source: reads the binlog as a replica and turns row events into
//! change events.
//!
//! # Client
//!
//! The connection, authentication, TLS, packet framing (including events over 16 MiB, which
//! arrive split) and the binlog dump request are `mysql_async`'s (feature `binlog`). The
//! design card named `mysql_cdc`; measured against MariaDB 10.11 it lost whole row events
//! (negative TIME, non-UTF-8 strings, events over 16 MiB), truncated microseconds, read
//! signed integers as unsigned and has no TLS (see DESIGN.md, "Dependencies").
//!
//! Everything that decides what a change *is* lives here and is unit-tested on byte
//! vectors: the binlog's formats in [`binlog`] (TABLE_MAP, rows events, every column type,
//! GTIDs, compressed events and payloads), positions ([`position`]) and the transaction state
//! machine ([`decoder`]). On top of `mysql_async` this module adds: MariaDB's GTID capability
//! and GTID resume (`@mariadb_slave_capability`, `@slave_connect_state`), checksum
//! verification of every event (and the CRC left on the first, artificial ROTATE), and exact
//! type decoding (signed MEDIUMINT, TIMESTAMP in UTC, SET/BIT/ENUM, charsets by collation).
//!
//! Files: [`config`] (the `mysql:` block), [`error`] (what a server or driver error means),
//! [`setup`] (inspection and `tidemark check`), [`stream`] (the stream loop), [`snapshot`]
//! (the snapshot backend), [`signal_table`] (watermarks and signals), [`select_value`] (the
//! snapshot's values, decoded to what the binlog decoder makes of the same data).
//!
//! Must not: buffer a transaction (each rows event is emitted as it is decoded), or commit
//! positions (the pipeline does, after Kafka acknowledged; see [`position`]).

pub mod backlog;
pub mod binlog;
pub mod config;
pub mod decoder;
pub mod error;
pub mod position;
#[cfg(any(test, feature = "fuzzing"))]
pub mod robustness;
pub mod select_value;
pub mod setup;
pub mod signal_table;
pub mod snapshot;
pub mod stream;

pub use stream::run;

use crate::config::{ConnectorConfig, MysqlSettings, SourceSettings};
use crate::error::{Error, Result};

/// The `mysql:` settings of `cfg`; a definite error for a connector of another kind (the
/// facade in `crate::source` never hands one over).
pub fn settings(cfg: &ConnectorConfig) -> Result<&MysqlSettings> {
    match &cfg.source {
        SourceSettings::Mysql(my) => Ok(my),
        other => Err(Error::definite(format!(
            "connector {}: a {:?} connector, not a MySQL one",
            cfg.name,
            other.kind()
        ))),
    }
}
