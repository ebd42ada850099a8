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

/// For the unit tests: the allocator counts the bytes live, so a test can show that memory
/// stays bounded (nextest runs each test in its own process).
#[cfg(test)]
pub mod test_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting;

    static LIVE: AtomicUsize = AtomicUsize::new(0);

    // SAFETY: every call is forwarded to the system allocator unchanged; only a counter is
    // updated beside it.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's contract for `alloc` is passed on as is.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's contract for `dealloc` is passed on as is.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's contract for `realloc` is passed on as is.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOC: Counting = Counting;

    /// Bytes allocated and not yet freed, by the whole process.
    pub fn live_bytes() -> usize {
        LIVE.load(Ordering::Relaxed)
    }
}
