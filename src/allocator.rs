//! The process allocator's tuning: how long freed memory stays resident.
//!
//! The binary allocates through mimalloc (`src/main.rs`). mimalloc returns the pages of freed
//! memory to the operating system only after a *purge delay*, 1,000 ms by default in the
//! version linked (mimalloc 3). tidemark allocates and frees a few kilobytes per change (row
//! images, encoded values, the chunk rows of a snapshot), so at 100,000 changes/s a second's
//! worth of freed pages stayed resident: 15-20 MiB of peak RSS above the live heap in the
//! snapshot benchmark (BENCHMARKS.md, session 16).
//!
//! [`tune`] sets the delay to [`PURGE_DELAY_MS`] unless the environment sets
//! `MIMALLOC_PURGE_DELAY` (mimalloc reads its `MIMALLOC_*` variables at process start; a value
//! set there wins). Measured on the snapshot benchmark, 300,000 rows:
//!
//! | purge delay | peak RSS | minor page faults |
//! |---|---|---|
//! | 1,000 ms (mimalloc's default) | 68-69 MiB | not read (52 MiB purged in all) |
//! | 100 ms (tidemark's default) | 58 MiB | 11,000 |
//! | 0 (immediate) | 49 MiB | 82,000 |
//!
//! 100 ms keeps most of the gain without faulting every freed page back in (each fault is
//! kernel CPU, charged to tidemark).
//!
//! This module holds the only `unsafe` code of tidemark: two calls into mimalloc's C option
//! interface, which take plain integers and have no memory-safety preconditions.

/// The purge delay tidemark sets, in milliseconds.
pub const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// mimalloc 3's index of `mi_option_purge_delay` (`mimalloc.h`, `mi_option_e`); the unit test
/// holds it to the option's documented default, so a mimalloc upgrade that moves it fails there.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's purge delay to [`PURGE_DELAY_MS`], unless `MIMALLOC_PURGE_DELAY` is set.
/// Call once, first thing in `main`.
pub fn tune() {
    // SAFETY: mi_option_set_default takes an option index (checked by mimalloc against its range)
    // and a value; it touches only mimalloc's option table, and is called before other threads
    // start.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

/// The purge delay in force, in milliseconds.
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: reads one entry of mimalloc's option table by an index mimalloc range-checks.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test, so the order is fixed: mimalloc's own default first (this proves the index
    /// names the purge delay, the only option whose default is 1,000), then tidemark's.
    #[test]
    fn purge_delay_index_and_default() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment decides; nothing of ours to check
        }
        assert_eq!(
            purge_delay_ms(),
            1000,
            "index {MI_OPTION_PURGE_DELAY} is not mimalloc's purge delay"
        );
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
