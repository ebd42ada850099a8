//! Integration tests of the PostgreSQL source against the real servers of
//! `scripts/dev-env.sh` (PostgreSQL with wal_level=logical, the tansu Kafka broker).

// Tests may unwrap and expect (clippy.toml allows it in #[test] functions; this covers their
// helpers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod avro;
#[path = "../shared/avro_check.rs"]
mod avro_check;
mod bad_input;
mod broker;
#[path = "../shared/certs.rs"]
mod certs;
mod common;
#[path = "../shared/connect_check.rs"]
mod connect_check;
mod ddl;
mod dead_letter;
mod debezium;
mod e2e;
mod kafka_security;
mod lost_position;
mod replication;
mod restart;
mod routing;
mod secrets;
mod shutdown;
#[path = "../shared/shutdown_check.rs"]
mod shutdown_check;
mod signals;
mod snapshot;
#[path = "../shared/snapshot_check.rs"]
mod snapshot_check;
#[path = "../shared/snapshot_suite.rs"]
mod snapshot_suite;
mod tls;
mod types;
mod visibility;
