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
//! **glibc's arenas.** librdkafka is C and allocates through glibc's malloc, not mimalloc: its
//! copy of every message waiting for Kafka's acknowledgement, its batches and its requests.
//! glibc gives each thread that allocates its own arena, and memory freed into an arena other
//! than the main one stays resident. The producer's copies are made on the tokio workers
//! (`produce` copies key and value) and freed on librdkafka's broker thread, so at a full
//! producer queue three arenas held 19 MiB where the messages were about 7 MiB. [`tune`] limits
//! glibc to one arena (`mallopt(M_ARENA_MAX, 1)`) unless the environment sets
//! `MALLOC_ARENA_MAX`. Measured (BENCHMARKS.md, session 18; MariaDB stream with the
//! 1,000,000-row transaction, two runs each; and a 300,000-row backlog with the broker stopped
//! for 8 s):
//!
//! | glibc arenas | peak RSS, stream | tidemark's CPU per change | RSS, broker stopped |
//! |---|---|---|---|
//! | one per thread (glibc's default) | 59-64 MiB | 4.25-4.89 µs | 59-60 MiB, 19 MiB in arenas |
//! | one (tidemark's default) | 50-51 MiB | 4.19-4.95 µs | 48 MiB, 7 MiB in the heap |
//!
//! The few C allocations contend for one lock on two threads; the CPU did not move.
//!
//! This module holds the only `unsafe` code of tidemark: two calls into mimalloc's C option
//! interface and one to glibc's `mallopt`, which take plain integers and have no
//! memory-safety preconditions.

/// The purge delay tidemark sets, in milliseconds.
pub const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// mimalloc 3's index of `mi_option_purge_delay` (`mimalloc.h`, `mi_option_e`); the unit test
/// holds it to the option's documented default, so a mimalloc upgrade that moves it fails there.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How many malloc arenas glibc may use (see the module doc).
pub const GLIBC_ARENAS: std::ffi::c_int = 1;

/// Sets the allocator's purge delay to [`PURGE_DELAY_MS`], unless `MIMALLOC_PURGE_DELAY` is set,
/// and glibc's arenas to [`GLIBC_ARENAS`], unless `MALLOC_ARENA_MAX` is set.
/// Call once, first thing in `main`, before any other thread starts.
pub fn tune() {
    limit_glibc_arenas();
    // SAFETY: mi_option_set_default takes an option index (checked by mimalloc against its range)
    // and a value; it touches only mimalloc's option table, and is called before other threads
    // start.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_glibc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return; // glibc read it at start-up
    }
    // SAFETY: mallopt takes an option number and an integer and only sets malloc's parameters;
    // called before other threads allocate.
    #[allow(unsafe_code)]
    let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, GLIBC_ARENAS) };
    if set != 1 {
        tracing::debug!("glibc refused mallopt(M_ARENA_MAX, {GLIBC_ARENAS})");
    }
}

/// Other C libraries have no per-thread arenas of glibc's kind.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_glibc_arenas() {}

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
