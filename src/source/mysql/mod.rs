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
//! vectors: TABLE_MAP metadata ([`table_map`]), rows events ([`rows`]) and each column type
//! ([`row_value`], [`decimal`], [`temporal`], [`json_binary`], [`charset`]), the other
//! events ([`events`]: rotate, query, XID, MySQL and MariaDB GTIDs), positions and GTID
//! state ([`position`], [`gtid`]), and the transaction state machine ([`decoder`]). On top
//! of `mysql_async` this module adds: MariaDB's GTID capability and GTID resume
//! (`@mariadb_slave_capability`, `@slave_connect_state`), checksum verification of every
//! event (and the CRC left on the first, artificial ROTATE), and exact type decoding
//! (signed MEDIUMINT, TIMESTAMP in UTC, SET/BIT/ENUM, charsets by collation).
//!
//! Must not: buffer a transaction (each rows event is emitted as it is decoded), or commit
//! positions (the pipeline does, after Kafka acknowledged; see [`position`]).

pub mod charset;
pub mod column_type;
pub mod decimal;
pub mod decoder;
pub mod events;
pub mod gtid;
pub mod json_binary;
pub mod json_diff;
pub mod mariadb_compressed;
pub mod payload;
pub mod position;
pub mod reader;
pub mod robustness;
pub mod row_value;
pub mod rows;
pub mod select_value;
pub mod setup;
pub mod signal_table;
pub mod snapshot;
pub mod stream;
pub mod table_map;
pub mod temporal;

pub use stream::run;
