//! Integration tests of the MySQL/MariaDB source against the real servers of
//! `scripts/dev-env.sh` (MariaDB with a row-based binlog, the tansu Kafka broker).

#[path = "../postgres/common.rs"]
mod common;
mod ddl;
mod e2e;
mod fencing;
mod harness;
mod lost_position;
mod restart;
mod shutdown;
#[path = "../shared/shutdown_check.rs"]
mod shutdown_check;
mod snapshot;
#[path = "../shared/snapshot_check.rs"]
mod snapshot_check;
mod tls;
mod types;
