//! tidemark: a change-data-capture daemon that streams PostgreSQL (and, next, MySQL/MariaDB)
//! row changes into Kafka topics as Debezium-style events.
//!
//! The pipeline (see `pipeline`): a source reads the log into [`event::SourceMessage`]s; the
//! [`router`] picks topic and key; the [`schema`] stage encodes; a [`sink`] produces; the
//! [`offsets`] tracker commits a source position only once everything before it is
//! acknowledged.

pub mod admin;
pub mod allocator;
pub mod cli;
pub mod config;
pub mod error;
pub mod event;
pub mod offsets;
pub mod pipeline;
pub mod retry;
pub mod router;
pub mod schema;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod tls;
pub mod value;

#[cfg(test)]
pub mod test_fixtures;

/// For the unit tests: the allocator counts the bytes live, so a test can show that memory
/// stays bounded (nextest runs each test in its own process). The counting is the `cap`
/// crate's, which keeps tidemark free of `unsafe` beyond [`allocator`].
#[cfg(test)]
pub mod test_alloc {
    #[global_allocator]
    static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

    /// Bytes allocated and not yet freed, by the whole process.
    pub fn live_bytes() -> usize {
        ALLOC.allocated()
    }
}
