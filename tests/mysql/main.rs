//! Integration tests of the MySQL/MariaDB source against the real servers of
//! `scripts/dev-env.sh` (MariaDB with a row-based binlog, the tansu Kafka broker).

// Tests may unwrap and expect (clippy.toml allows it in #[test] functions; this covers their
// helpers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../shared/avro_check.rs"]
mod avro_check;
#[path = "../shared/certs.rs"]
mod certs;
#[path = "../postgres/common.rs"]
mod common;
#[path = "../shared/connect_check.rs"]
mod connect_check;
mod ddl;
mod debezium;
mod e2e;
mod fencing;
mod harness;
mod lost_position;
mod restart;
mod routing;
mod shutdown;
#[path = "../shared/shutdown_check.rs"]
mod shutdown_check;
mod snapshot;
#[path = "../shared/snapshot_check.rs"]
mod snapshot_check;
#[path = "../shared/snapshot_suite.rs"]
mod snapshot_suite;
mod tls;
mod types;
