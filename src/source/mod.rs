//! Source readers: each streams one database's change log as [`crate::event::SourceMessage`]s.
//!
//! Must not: use the router, schema stage, sinks or position stores. A source receives the
//! newest acknowledged [`crate::event::Position`] through a watch channel and tells its server.

pub mod check;
pub mod mysql;
pub mod postgres;
