//! tidemark: a change-data-capture daemon that streams PostgreSQL (and, next, MySQL/MariaDB)
//! row changes into Kafka topics as Debezium-style events.
//!
//! The pipeline (see `pipeline`): a source reads the log into [`event::SourceMessage`]s; the
//! [`router`] picks topic and key; the [`schema`] stage encodes; a [`sink`] produces; the
//! [`offsets`] tracker commits a source position only once everything before it is
//! acknowledged.

pub mod cli;
pub mod config;
pub mod error;
pub mod event;
pub mod offsets;
pub mod pipeline;
pub mod router;
pub mod schema;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod tls;
pub mod value;
