//! The watermark-based, non-blocking snapshot (DBLog, Netflix 2020): existing rows are read
//! in primary-key chunks, interleaved with the live log, without locks and without a
//! long-running transaction.
//!
//! # The algorithm
//!
//! Per chunk, the driver (one database session, each statement its own transaction):
//! 1. writes a **low watermark** into the log (PostgreSQL: `pg_logical_emit_message(true, ...)`;
//!    MySQL: a row in the signal table);
//! 2. selects the chunk: `SELECT ... WHERE key > last ORDER BY key LIMIT n`;
//! 3. writes a **high watermark**.
//!
//! The log consumer meanwhile keeps streaming. When it reaches the chunk's low watermark it
//! opens the chunk's window; every change in the window removes the changed key's row from the
//! chunk; at the high watermark the remaining rows are emitted (`op=r`, key order), right
//! there in the log, before anything after it.
//!
//! # Why it is correct
//!
//! Take a row `k` of the chunk, selected at time `S`, with `L < S < H` in commit order, where
//! `L` and `H` are the commits of the low and high watermarks.
//!
//! - **No stale row overwrites newer state.** If a change to `k` commits between `L` and `H`,
//!   it is in the window and the row is dropped: the log event itself carries `k`'s state and
//!   it is emitted in log order. If no change to `k` commits in the window, `k`'s state at `S`
//!   equals its state at `H`; every change to `k` before `L` is emitted before the window (so
//!   before the row), every change after `H` after the row. The emitted sequence for `k`
//!   therefore only moves forward in time.
//! - **Nothing is missed.** A row in the key range that is dropped had a change in the window,
//!   which the log delivers. A row that no selected chunk contains was deleted before its
//!   chunk's select, or inserted after it, and the log delivers that too (the stream runs
//!   throughout). The next chunk starts after the last *selected* key (dropped rows included),
//!   so the chunks tile the key space.
//! - **Truncate** in a window drops every row of the table's open chunks (they are stale).
//! - **Restarts**: progress (table, last key, chunk number) is part of the position that is
//!   committed after the chunk's rows are acknowledged (they are emitted before the checkpoint
//!   that follows the high watermark). A crash repeats at most the chunks after the committed
//!   one; watermarks of the dead life that the log shows again carry unknown chunk ids and are
//!   ignored.
//!
//! The pure part is [`window::Interleaver`], tested against a model of a table, a log and the
//! driver with random concurrent writes (proptest).

pub mod driver;
pub mod progress;
pub mod signal;
pub mod window;

pub use progress::{SnapshotProgress, SnapshotTask};
