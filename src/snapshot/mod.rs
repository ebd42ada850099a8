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
//! `L` and `H` are the commits of the low and high watermarks. The argument needs one property
//! of the source, **visibility by log order**: every transaction whose commit precedes `L` in
//! the log is visible to the `SELECT` (which starts after `L`'s commit has returned).
//!
//! - **No stale row overwrites newer state.** If a change to `k` commits between `L` and `H`,
//!   it is in the window and the row is dropped: the log event itself carries `k`'s state and
//!   it is emitted in log order. If no change to `k` commits in the window, `k`'s state at `S`
//!   equals its state at `H` (by visibility, every change before `L` is in it); every change to
//!   `k` before `L` is emitted before the window (so before the row), every change after `H`
//!   after the row. The emitted sequence for `k` therefore only moves forward in time.
//! - **Nothing is missed.** A row in the key range that is dropped had a change in the window,
//!   which the log delivers. A row that no selected chunk contains was deleted before its
//!   chunk's select, or inserted after it, and the log delivers that too (the stream runs
//!   throughout). The next chunk starts after the last *selected* key (dropped rows included),
//!   so the chunks tile the key space.
//! - **Truncate** in a window drops every row of the table's open chunks (they are stale).
//! - **Parallel chunks** (`snapshot.parallelism: N`): N sessions each run steps 1 to 3 for
//!   their own chunk at the same time (different tables, or key ranges of one table split at
//!   sampled key bounds), so windows overlap in the log. Nothing above uses the absence of
//!   other windows: the argument for chunk `c` speaks only of `c`'s own `L`, `S` and `H`, of
//!   changes to `c`'s keys, and of `c`'s release at its own `H`. Each change is matched against
//!   every open window, each chunk is released at its own high watermark, in whatever order
//!   the high watermarks come. The one place where order was used is finding a chunk whose
//!   watermarks never reached the log; it now uses only what order still gives: a chunk armed
//!   before another chunk's request was issued wrote its high watermark before that chunk's low
//!   one ([`window`]). The split ranges tile the key space (`[start ..= b1]`, `(b1 ..= b2]`,
//!   ..., `(bn ..= end]`), and each range's chunks tile its range as above, so nothing is
//!   missed; a key range can only see a key's rows, never another range's.
//! - **Restarts**: progress (every task left, each with the last key of its last released
//!   chunk) is part of the position that is committed after the chunk's rows are acknowledged
//!   (they are emitted before the checkpoint that follows the high watermark). A crash repeats
//!   at most the chunks after each task's committed one; watermarks of the dead life that the
//!   log shows again carry unknown chunk ids and are ignored.
//!
//! ## MySQL and MariaDB: visibility by log order holds
//!
//! With the binlog on, a transaction commits in two phases: prepared in the engine, written to
//! the binlog, then committed in the engine, which is when other sessions see it. MariaDB
//! commits in the engine in binlog order (group commit keeps the order); MySQL does so with
//! `binlog_order_commits=ON` (its default, verified by `tidemark check`). So a transaction
//! before `L` in the binlog finished its engine commit before `L` did, and `L`'s commit had
//! returned before the `SELECT` started: the `SELECT` sees it.
//!
//! ## PostgreSQL: it does not hold, and what replaces it
//!
//! PostgreSQL writes the commit record to the WAL (and flushes it; logical decoding may send
//! it from then on) *before* the transaction leaves the set of running transactions, which is
//! what makes it visible to new snapshots; a synchronous standby that has not confirmed the
//! commit keeps it invisible for as long as the backend waits. A transaction `T` before `L`
//! in the WAL can therefore be invisible to the `SELECT`; its change is streamed before the
//! window, the chunk holds `k` as it was before `T`, and without more the row would go out
//! after `T`'s change (a stale row; the deleted row back). This was seen under load.
//!
//! So the PostgreSQL source reads, in the chunk's own `REPEATABLE READ` transaction, the
//! `SELECT`'s snapshot ([`visibility::TxnSnapshot`]: `xmin`, `xmax`, `xip`), and the argument
//! above is kept by treating every transaction the snapshot did not see as inside the window:
//! - one the stream shows **after the chunk is armed** and before `L`: the interleaver drops
//!   its keys from the chunk as if it were in the window ([`window::Interleaver::on_change`]
//!   gets each change's transaction id);
//! - one the stream showed **before the chunk was armed**: its change is already emitted and
//!   its keys are not known any more, so the chunk is not armed; the driver reads it again
//!   (nothing advanced) after a short wait, until a snapshot sees every transaction the stream
//!   has shown. The stream records each transaction id it shows in a bounded
//!   [`visibility::CommitHistory`] (one bit per id; ids below the newest snapshot's `xmin`
//!   are forgotten, since every later snapshot sees them).
//!
//! The history is complete from a base id read with `pg_current_xact_id()` at the start of the
//! stream: any id assigned later commits after the stream's start position, so the stream shows
//! it. It also keeps every id below the base that the stream shows in this life: a transaction
//! that took its id before the base was read (running when the connector started) can commit
//! after the start position, be shown, and wait for a standby while the chunk is read (seen
//! under load: the writer of `tests/postgres/visibility.rs` took its id between the stream's
//! start and the base's read). A transaction below the base that the snapshot did not see and
//! that this life has not shown may have been shown by an earlier life, before a restart, or in
//! the part of the history dropped by its size bound; if it had committed when the snapshot was
//! read, it counts as shown, and the chunk is read again. "Had committed" is read with the
//! snapshot: `xip` members whose `pg_xact_status` is `committed` (finished since the snapshot),
//! and those whose backend waits for a synchronous standby in `pg_stat_activity` (to
//! `pg_xact_status` a transaction is running until it leaves the running set, whatever its
//! commit log says). An id at or above `xmax` is never below the base: `L` itself has an id, is
//! finished before the `SELECT`, so `xmax > L`'s id, and any id above it was assigned after the
//! stream started. What remains outside the argument: a commit that waits for a standby from
//! before a restart of the connector until a chunk is read, when tidemark's role may not read
//! other roles' `backend_xid` (neither a superuser nor a member of `pg_read_all_stats`); and a
//! backend stopped between flushing its commit record and marking it committed (a few
//! instructions, no waits) for longer than tidemark has been running.
//!
//! The pure part is [`window::Interleaver`], tested against a model of a table, a log and the
//! driver with random concurrent writes (proptest).

pub mod backend;
pub mod driver;
pub mod progress;
pub mod signal;
pub mod visibility;
pub mod window;

pub use progress::{SnapshotProgress, SnapshotTask};
