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
//! **The allocation calls.** The `mimalloc` crate's allocator asks for every block with
//! `mi_malloc_aligned`, whatever its alignment; [`Allocator`] asks with plain `mi_malloc`
//! where the alignment is at most a word's, which every mimalloc block has. A MariaDB stream
//! makes about 25 allocations per change; in its instruction profile the allocation calls
//! went from 1,364 to 760 instructions per change (BENCHMARKS.md, session 19).
//!
//! This module holds the only `unsafe` code of tidemark: the global allocator's calls into
//! mimalloc (which uphold `GlobalAlloc`'s contract as below), two calls into mimalloc's C option
//! interface and one to glibc's `mallopt`, which take plain integers and have no memory-safety
//! preconditions.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The process allocator (`src/main.rs`): mimalloc, asked for plain blocks where the
/// alignment allows (see the module doc).
pub struct Allocator;

/// The alignment of every block mimalloc returns: its blocks are whole words, in pages whose
/// blocks start word-aligned.
const WORD_ALIGN: usize = std::mem::size_of::<usize>();

// SAFETY: every block comes from mimalloc, which returns null on failure and a block of at
// least `size` bytes otherwise: aligned to `align` by the `_aligned` calls, and to a word (at
// least `align` on this branch) by the plain ones. Every block goes back through `mi_free` or
// a `mi_realloc*` call, which take any mimalloc block, aligned or not.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            libmimalloc_sys::mi_malloc(layout.size()).cast()
        } else {
            libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            libmimalloc_sys::mi_zalloc(layout.size()).cast()
        } else {
            libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        libmimalloc_sys::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            libmimalloc_sys::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            libmimalloc_sys::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align())
                .cast()
        }
    }
}

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

    /// Blocks of every alignment up to a page come back aligned, hold their bytes across a
    /// reallocation, and zeroed blocks are zero.
    #[test]
    #[allow(unsafe_code)]
    fn blocks_are_aligned_and_keep_their_bytes() {
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 8, 24, 100, 5000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; every block is freed with its layout.
                unsafe {
                    let p = Allocator.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    let q = Allocator.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc size {size} align {align}");
                    for i in 0..size {
                        assert_eq!(*q.add(i), i as u8);
                    }
                    Allocator.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = Allocator.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    Allocator.dealloc(z, layout);
                }
            }
        }
    }

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
