//! Integration tests of the PostgreSQL source against the real servers of
//! `scripts/dev-env.sh` (PostgreSQL with wal_level=logical, the tansu Kafka broker).

mod bad_input;
mod common;
mod ddl;
mod e2e;
mod lost_position;
mod restart;
mod shutdown;
#[path = "../shared/shutdown_check.rs"]
mod shutdown_check;
mod signals;
mod snapshot;
#[path = "../shared/snapshot_check.rs"]
mod snapshot_check;
mod types;
mod visibility;
