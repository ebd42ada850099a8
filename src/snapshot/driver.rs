//! The snapshot's bookkeeping, the same for every source: which chunk to read next, the
//! chunks in flight, what a watermark releases, the progress a checkpoint stores, signals
//! (add, pause, resume, stop), the throttle and the progress log.
//!
//! Sans I/O. A source drives it in two places, both in log order of its stream loop:
//! - when [`Driver::next_chunk_at`] is due, the source's [`super::backend::ChunkReader`] takes
//!   a [`ChunkRequest`], writes the low watermark, selects the chunk, writes the high
//!   watermark and hands the rows to [`Driver::arm`] *before the loop reads further from its
//!   log* (so the log cannot show the low watermark of a chunk that is not armed yet);
//! - for each watermark its log shows it calls [`Driver::on_watermark`] and emits the
//!   released rows right there; for each captured change, [`Driver::on_change`]; and every
//!   checkpoint it writes carries [`Driver::progress`].
//!
//! The algorithm and why it is correct: [`crate::snapshot`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::visibility::{Conflict, TxnSnapshot};
use super::window::{Chunk, Interleaver, Watermark};
use super::{SnapshotProgress, SnapshotTask};
use crate::config::ConnectorConfig;
use crate::error::Error;
use crate::event::{Row, SnapshotMark, TableId, TableSchema};
use crate::value::Value;

/// Chunks selected ahead of the log (their rows wait in memory for their high watermark).
const CHUNKS_AHEAD: usize = 2;
/// How often progress is logged.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// A chunk whose high watermark the log has not shown for this long is reported as stalled.
const STALLED_AFTER: Duration = Duration::from_secs(60);
/// A chunk read again (its `SELECT` missed a transaction the log already showed) waits this
/// long first, doubling per repeat up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(5);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// A selected row, with its key as text (for the next chunk's lower bound).
pub struct SnapRow {
    pub row: Row,
    pub key_text: Vec<String>,
}

/// The chunk a source is to read next.
#[derive(Debug, Clone)]
pub struct ChunkRequest {
    /// Goes into the chunk's watermarks ([`Driver::watermark_text`]).
    pub id: u64,
    pub table: TableId,
    /// Rows with keys after this one (the previous chunk's last key) ...
    pub after: Option<Vec<String>>,
    /// ... else from this key on (inclusive; the task's lower bound) ...
    pub from: Option<Vec<String>>,
    /// ... up to this key (inclusive; the task's upper bound) ...
    pub to: Option<Vec<String>>,
    /// ... and matching this SQL condition (from a signed signal).
    pub condition: Option<String>,
    /// At most this many rows, in key order.
    pub limit: usize,
    began: Instant,
}

/// What a high watermark releases: rows to emit as `op=r`, in key order, with the table
/// shape they were read with.
pub struct Release {
    pub table: TableId,
    pub schema: Arc<TableSchema>,
    pub rows: Vec<Row>,
    /// Where the rows stand in the snapshot.
    pub place: ReleasePlace,
}

/// Where a release's rows stand in their snapshot, for their [`SnapshotMark`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleasePlace {
    /// No row of the snapshot came before.
    pub first_of_snapshot: bool,
    /// No row of this table (task) came before.
    pub first_of_table: bool,
    /// The table's (task's) last chunk.
    pub last_of_table: bool,
    /// The snapshot's last chunk.
    pub last_of_snapshot: bool,
}

impl ReleasePlace {
    /// The mark of row `i` of `n`; the last marks win over the first ones on a lone row.
    pub fn mark(self, i: usize, n: usize) -> SnapshotMark {
        if i + 1 == n && self.last_of_snapshot {
            SnapshotMark::Last
        } else if i + 1 == n && self.last_of_table {
            SnapshotMark::LastInTable
        } else if i == 0 && self.first_of_snapshot {
            SnapshotMark::First
        } else if i == 0 && self.first_of_table {
            SnapshotMark::FirstInTable
        } else {
            SnapshotMark::Row
        }
    }
}

struct ChunkMeta {
    table: TableId,
    schema: Arc<TableSchema>,
    last_key: Option<Vec<String>>,
    last_of_table: bool,
    /// When it was armed (for the stall warning).
    armed: Instant,
}

/// At most this many bytes of tasks are stored in a position (they travel in every
/// checkpoint).
const MAX_TASK_BYTES: usize = 32 * 1024;

/// `new` without the tasks already in `queued` (or twice in `new`), and without those past
/// `snapshot.max_queued_tasks` or the stored-size budget: each one dropped is logged.
pub fn bounded_tasks(
    cfg: &ConnectorConfig,
    queued: &[SnapshotTask],
    new: Vec<SnapshotTask>,
) -> Vec<SnapshotTask> {
    let size = |t: &SnapshotTask| serde_json::to_vec(t).map_or(0, |v| v.len());
    let mut count = queued.len();
    // A full queue refuses without measuring it (a flood of signals must stay cheap).
    let mut bytes: usize = if count >= cfg.snapshot.max_queued_tasks {
        0
    } else {
        queued.iter().map(size).sum()
    };
    let mut out: Vec<SnapshotTask> = Vec::new();
    for task in new {
        if queued.contains(&task) || out.contains(&task) {
            tracing::info!(connector = %cfg.name, table = %task.table, "snapshot request already queued; not added again");
            continue;
        }
        let b = size(&task);
        if count >= cfg.snapshot.max_queued_tasks || bytes + b > MAX_TASK_BYTES {
            tracing::warn!(connector = %cfg.name, table = %task.table, queued = count,
                max = cfg.snapshot.max_queued_tasks,
                "snapshot request refused: the queue of snapshot tasks is full (snapshot.max_queued_tasks)");
            continue;
        }
        bytes += b;
        count += 1;
        out.push(task);
    }
    out
}

/// The key a row has in the interleaver: its key values as JSON (the same bytes for a value
/// read by the snapshot and the same value in the log).
pub fn match_key(row: &Row, key_columns: &[usize]) -> String {
    let values: Vec<&Value> = key_columns.iter().filter_map(|i| row.get(*i)).collect();
    serde_json::to_string(&values).unwrap_or_default()
}

pub struct Driver {
    connector: String,
    cfg: Arc<ConnectorConfig>,
    /// Unique per driver: watermarks of other lives and other connectors are ignored.
    session: String,
    next_id: u64,
    /// The read position: ahead of the released progress by the chunks in flight.
    tasks: Vec<SnapshotTask>,
    last_key: Option<Vec<String>>,
    /// Key columns per table (chunks in flight match changes by them).
    key_columns: HashMap<TableId, Vec<usize>>,
    /// Row estimates from the database's statistics, for the progress log.
    estimates: HashMap<TableId, f64>,
    chunks: HashMap<u64, ChunkMeta>,
    interleaver: Interleaver<TableId, String, Row>,
    /// Released progress: what the next checkpoint stores.
    progress: Option<SnapshotProgress>,
    started: Instant,
    rows_emitted: u64,
    last_report: Instant,
    /// The throttle: no chunk before this instant.
    not_before: Instant,
    /// When a stall was last reported.
    stall_reported: Option<Instant>,
    stalled_after: Duration,
    /// Chunks read again in a row, and when that was last logged.
    retries: u32,
    retry_reported: Option<Instant>,
    /// Where the progress is published for the admin API and the metrics.
    status: Option<Arc<crate::status::ConnectorStatus>>,
}

impl Drop for Driver {
    /// The snapshot is complete (or this life of the connector ends): no snapshot in
    /// progress as far as the status is concerned (the next life publishes its own).
    fn drop(&mut self) {
        if let Some(s) = &self.status {
            s.snapshot_progress(None);
        }
    }
}

impl Driver {
    /// Starts (or resumes) the snapshot described by `progress`.
    pub fn new(cfg: &Arc<ConnectorConfig>, progress: SnapshotProgress) -> Self {
        let tasks = progress
            .tasks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let resume_after = progress
            .last_key
            .as_deref()
            .map_or_else(|| "the start".to_string(), super::progress::key_text);
        tracing::info!(connector = %cfg.name, tasks = %tasks, resume_after = %resume_after,
            chunk_size = cfg.snapshot.chunk_size, "snapshot starting");
        let driver = Self {
            connector: cfg.name.clone(),
            cfg: cfg.clone(),
            session: format!("{:016x}", rand::random::<u64>()),
            next_id: 0,
            tasks: progress.tasks.clone(),
            last_key: progress.last_key.clone(),
            key_columns: HashMap::new(),
            estimates: HashMap::new(),
            chunks: HashMap::new(),
            interleaver: Interleaver::default(),
            progress: Some(progress),
            started: Instant::now(),
            rows_emitted: 0,
            last_report: Instant::now(),
            not_before: Instant::now(),
            stall_reported: None,
            stalled_after: STALLED_AFTER,
            retries: 0,
            retry_reported: None,
            status: crate::status::connector(&cfg.name),
        };
        driver.publish(0.0);
        driver
    }

    /// Publishes the progress to the connector's status (`rate`: rows per second).
    fn publish(&self, rate: f64) {
        let (Some(status), Some(p)) = (&self.status, &self.progress) else {
            return;
        };
        let Some(table) = p.task().map(|t| &t.table) else {
            return;
        };
        let estimate = self.estimates.get(table).map_or(0.0, |e| e.max(0.0));
        status.snapshot_progress(Some(crate::status::SnapshotStatus {
            table: table.to_string(),
            rows: p.rows,
            estimated_total: estimate.round() as u64,
            rows_per_second: rate.round() as u64,
            tables_left: p.tasks.len(),
            paused: p.paused,
        }));
    }

    /// What the next checkpoint stores (`None` once the snapshot is complete).
    pub fn progress(&self) -> Option<&SnapshotProgress> {
        self.progress.as_ref()
    }

    /// Whether the snapshot is complete (every chunk released).
    pub fn is_done(&self) -> bool {
        self.progress.is_none()
    }

    /// Whether chunks are armed (changes must be matched against them).
    pub fn has_open_chunks(&self) -> bool {
        self.interleaver.pending() > 0
    }

    /// When the source may select the next chunk (`None`: not now; wait for the log).
    pub fn next_chunk_at(&self) -> Option<Instant> {
        let paused = self.progress.as_ref().is_some_and(|p| p.paused);
        (!paused && !self.tasks.is_empty() && self.interleaver.pending() < CHUNKS_AHEAD)
            .then_some(self.not_before)
    }

    /// The table the next chunk reads.
    pub fn current_table(&self) -> Option<&TableId> {
        self.tasks.first().map(|t| &t.table)
    }

    /// The next chunk to read, with a fresh id.
    pub fn next_request(&mut self) -> Option<ChunkRequest> {
        let task = self.tasks.first()?;
        let limit = self.limits(&task.table).0;
        self.next_id += 1;
        Some(ChunkRequest {
            id: self.next_id,
            table: task.table.clone(),
            after: self.last_key.clone(),
            from: task.from.clone(),
            to: task.to.clone(),
            condition: task.condition.clone(),
            limit,
            began: Instant::now(),
        })
    }

    /// The text of a watermark of chunk `id` (`kind`: `low` or `high`).
    pub fn watermark_text(&self, id: u64, kind: &str) -> String {
        format!("{}:{id}:{kind}", self.session)
    }

    /// How the source reads `table`: its key columns (indices into the row) and the row
    /// estimate of the database's statistics.
    pub fn planned(&mut self, table: &TableId, key_columns: Vec<usize>, estimate: f64) {
        self.key_columns.insert(table.clone(), key_columns);
        self.estimates.insert(table.clone(), estimate);
    }

    /// The rows of `request`, selected between its watermarks, in key order; `seen`: what
    /// the `SELECT` saw of the transactions, where commits can precede their visibility in the
    /// log (PostgreSQL; see [`crate::snapshot`]).
    pub fn arm(
        &mut self,
        request: ChunkRequest,
        schema: Arc<TableSchema>,
        rows: Vec<SnapRow>,
        seen: Option<TxnSnapshot>,
    ) {
        self.retries = 0;
        let (chunk_size, max_rows_per_second) = self.limits(&request.table);
        let key_columns = self
            .key_columns
            .get(&request.table)
            .cloned()
            .unwrap_or_else(|| schema.primary_key.clone());
        let last_of_table = rows.len() < chunk_size;
        let last_key = rows.last().map(|r| r.key_text.clone());
        if last_of_table {
            if !self.tasks.is_empty() {
                self.tasks.remove(0);
            }
            self.last_key = None;
        } else {
            self.last_key = last_key.clone();
        }
        if max_rows_per_second > 0 {
            // The next chunk may start once this one's rows are paid for at the allowed rate,
            // counted from when this chunk started (or from the previous allowance, if later):
            // time spent paused or waiting for the log is not saved up for a burst.
            let cost = Duration::from_secs_f64(rows.len() as f64 / max_rows_per_second as f64);
            self.not_before = self.not_before.max(request.began) + cost;
        }
        let rows = rows
            .into_iter()
            .map(|r| (match_key(&r.row, &key_columns), r.row))
            .collect();
        self.chunks.insert(
            request.id,
            ChunkMeta {
                table: request.table.clone(),
                schema,
                last_key,
                last_of_table,
                armed: Instant::now(),
            },
        );
        self.interleaver.arm(Chunk {
            id: request.id,
            table: request.table,
            rows,
            seen,
        });
    }

    /// The chunk of `request` cannot be armed: its `SELECT` missed a transaction the log has
    /// already shown (`conflict`). Nothing advances; the same chunk is read again after a short
    /// wait (doubling while it repeats: a transaction can stay invisible for long, for example
    /// while a synchronous standby does not confirm it).
    pub fn retry(&mut self, request: ChunkRequest, conflict: Conflict) {
        self.retries = self.retries.saturating_add(1);
        let wait = RETRY_FIRST
            .saturating_mul(1 << self.retries.min(16))
            .min(RETRY_MAX);
        self.not_before = Instant::now() + wait;
        let (xid, known) = match conflict {
            Conflict::StreamedUnseen(x) => (x, "already streamed"),
            Conflict::UnknownUnseen(x) => (x, "committed before this connector's history"),
        };
        if self
            .retry_reported
            .is_none_or(|t| t.elapsed() >= REPORT_EVERY * 6)
            && self.retries >= 10
        {
            self.retry_reported = Some(Instant::now());
            tracing::warn!(connector = %self.connector, table = %request.table, xid, retries = self.retries,
                "snapshot chunk read again and again: transaction {xid} has committed ({known}) but is not yet visible \
                 to new queries (a synchronous standby that does not confirm it?); the chunk waits for it");
        } else {
            tracing::debug!(connector = %self.connector, table = %request.table, chunk = request.id, xid,
                retries = self.retries, "snapshot chunk read again: its SELECT did not see transaction {xid} ({known})");
        }
    }

    /// A watermark's text seen in the log at `at`: the rows its chunk releases, if it is the
    /// high watermark of an armed chunk of this driver.
    pub fn on_watermark(&mut self, text: &str, at: &dyn std::fmt::Display) -> Option<Release> {
        let mut parts = text.split(':');
        let (session, id, kind) = (parts.next()?, parts.next()?, parts.next()?);
        if session != self.session {
            return None;
        }
        let id: u64 = id.parse().ok()?;
        let mark = match kind {
            "low" => Watermark::Low(id),
            "high" => Watermark::High(id),
            _ => return None,
        };
        let released = self.interleaver.on_watermark(mark)?;
        let meta = self.chunks.remove(&released.id)?;
        // Older chunks the interleaver dropped (their watermarks were lost) go too.
        self.chunks.retain(|id, _| *id > released.id);
        let n = released.rows.len() as u64;
        self.rows_emitted += n;
        let place = self
            .progress
            .as_ref()
            .map_or_else(ReleasePlace::default, |p| ReleasePlace {
                first_of_snapshot: !p.emitted_any,
                first_of_table: p.rows == 0,
                last_of_table: meta.last_of_table,
                last_of_snapshot: meta.last_of_table && p.tasks.len() == 1,
            });
        self.progress = self
            .progress
            .take()
            .and_then(|p| p.released(n, meta.last_key, meta.last_of_table));
        if meta.last_of_table {
            tracing::info!(connector = %self.connector, table = %meta.table, at = %at, "table snapshot complete");
        }
        if self.progress.is_none() {
            tracing::info!(connector = %self.connector, rows = self.rows_emitted,
                seconds = self.started.elapsed().as_secs(), "snapshot complete");
        }
        self.report(false);
        Some(Release {
            table: meta.table,
            schema: meta.schema,
            rows: released.rows,
            place,
        })
    }

    /// Warns (once a minute) when the oldest armed chunk has waited over a minute for its
    /// high watermark: the log does not bring the watermarks back (`where_written` says where
    /// they go, so the user can see why: a binlog filter, a publication, a server that does
    /// not log that table). Returns whether it warned.
    pub fn warn_if_stalled(&mut self, where_written: &dyn std::fmt::Display) -> bool {
        let Some((id, at)) = self
            .chunks
            .iter()
            .min_by_key(|(id, _)| **id)
            .map(|(id, c)| (*id, c.armed))
        else {
            return false;
        };
        let limit = self.stalled_after;
        if at.elapsed() < limit || self.stall_reported.is_some_and(|r| r.elapsed() < limit) {
            return false;
        }
        self.stall_reported = Some(Instant::now());
        tracing::warn!(connector = %self.connector, chunk = id, waited_seconds = at.elapsed().as_secs(),
            watermarks = %where_written,
            "snapshot stalled: the log has not shown this chunk's high watermark; check that the server logs \
             the watermark writes to the stream tidemark reads (MySQL: binlog filters such as binlog_do_db / \
             binlog_ignore_db that leave out the signal table's database)");
        true
    }

    /// A change in the log, committed by transaction `txn` (where the source knows it): drops
    /// the changed key from open chunks (and from chunks whose `SELECT` did not see `txn`).
    pub fn on_change(&mut self, table: &TableId, row: &Row, txn: Option<u64>) {
        if self.interleaver.pending() == 0 {
            return;
        }
        if let Some(columns) = self.key_columns.get(table) {
            let key = match_key(row, columns);
            self.interleaver.on_change(table, &key, txn);
        }
    }

    /// A truncate in the log by `txn`: the table's open chunks are stale.
    pub fn on_truncate(&mut self, table: &TableId, txn: Option<u64>) {
        self.interleaver.on_truncate(table, txn);
    }

    /// Adds tasks to the running snapshot (after the ones it has): tasks already waiting are
    /// not added twice, and the queue is bounded (see [`bounded_tasks`]).
    pub fn add_tasks(&mut self, tasks: Vec<SnapshotTask>) {
        let tasks = bounded_tasks(&self.cfg, &self.tasks, tasks);
        self.tasks.extend(tasks.iter().cloned());
        match self.progress.as_mut() {
            Some(p) => p.tasks.extend(tasks),
            None => self.progress = SnapshotProgress::start(tasks),
        }
    }

    /// A chunk of the current task failed for good (`e` is definite: a bound that is not of
    /// the key's type, a condition the database refuses, ...): that task is skipped with an
    /// error in the log, the stream and the other tasks go on. Its chunks in flight still
    /// complete and end it.
    pub fn chunk_failed(&mut self, e: &Error) {
        let Some(task) = self.tasks.first().cloned() else {
            return;
        };
        let mut in_flight = false;
        for meta in self
            .chunks
            .values_mut()
            .filter(|m| m.table == task.table && !m.last_of_table)
        {
            meta.last_of_table = true;
            in_flight = true;
        }
        if in_flight {
            self.tasks.remove(0);
            self.last_key = None;
            tracing::error!(connector = %self.connector, table = %task.table, error = %e,
                "snapshot of this table skipped after its chunks in flight; the stream goes on");
        } else {
            self.skip_current_task(e);
        }
    }

    /// Pauses or resumes reading chunks (chunks in flight still complete).
    pub fn set_paused(&mut self, paused: bool) {
        if let Some(p) = self.progress.as_mut() {
            p.paused = paused;
        }
        tracing::info!(connector = %self.connector, paused, "snapshot {}", if paused { "paused" } else { "resumed" });
    }

    /// Stops the snapshot: no further chunk; the chunks in flight still complete, then the
    /// progress is gone from the position.
    pub fn stop(&mut self) {
        self.tasks.clear();
        // Released progress ends with the chunks in flight: mark each as the last of its task.
        for meta in self.chunks.values_mut() {
            meta.last_of_table = true;
        }
        if self.interleaver.pending() == 0 {
            self.progress = None;
        } else if let Some(p) = self.progress.as_mut() {
            p.tasks.truncate(1);
        }
        tracing::info!(connector = %self.connector, "snapshot stopped by a signal");
    }

    /// Planning the current task's table failed: a transient error is returned (the source
    /// retries), a definite one (no usable key, table dropped) skips that table's snapshot, not
    /// the stream. `check` and start-up refuse such tables for the initial snapshot, so this
    /// is a requested one.
    pub fn plan_failed(&mut self, e: Error) -> crate::error::Result<()> {
        if e.is_transient() {
            return Err(e);
        }
        self.skip_current_task(&e);
        Ok(())
    }

    /// Skips the current task: its table cannot be snapshotted (no usable key, dropped). It
    /// stops that table's snapshot, not the stream.
    fn skip_current_task(&mut self, why: &Error) {
        if self.tasks.is_empty() {
            return;
        }
        let task = self.tasks.remove(0);
        self.last_key = None;
        tracing::error!(connector = %self.connector, table = %task.table, error = %why,
            "snapshot of this table skipped; the stream goes on");
        if let Some(p) = self.progress.as_mut() {
            // No chunk of this task was read, so it is either the released progress's current
            // task (nothing in flight) or a later one.
            match p.tasks.iter().position(|t| *t == task) {
                Some(0) => {
                    let paused = p.paused;
                    self.progress = SnapshotProgress::start(p.tasks[1..].to_vec())
                        .map(|n| SnapshotProgress { paused, ..n });
                    if self.progress.is_none() {
                        tracing::info!(connector = %self.connector, rows = self.rows_emitted, "snapshot complete");
                    }
                }
                Some(i) => {
                    p.tasks.remove(i);
                }
                None => {}
            }
        }
    }

    /// Chunk size and throttle (rows/s, 0 = none) of `table`: its table file's, else the
    /// connector's.
    fn limits(&self, table: &TableId) -> (usize, u64) {
        let t = self.cfg.table(table).map(|e| &e.config);
        (
            t.and_then(|c| c.snapshot_chunk_size)
                .unwrap_or(self.cfg.snapshot.chunk_size),
            t.and_then(|c| c.snapshot_max_rows_per_second)
                .unwrap_or(self.cfg.snapshot.max_rows_per_second),
        )
    }

    /// Logs progress every few seconds (or now, with `force`).
    pub fn report(&mut self, force: bool) {
        if !force && self.last_report.elapsed() < REPORT_EVERY {
            return;
        }
        self.last_report = Instant::now();
        let Some(p) = &self.progress else { return };
        let Some(table) = p.task().map(|t| &t.table) else {
            return;
        };
        let estimate = self.estimates.get(table).map_or(0.0, |e| e.max(0.0));
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.rows_emitted as f64 / secs;
        let eta = if rate > 0.0 && estimate > p.rows as f64 {
            Some(((estimate - p.rows as f64) / rate).round() as u64)
        } else {
            None
        };
        self.publish(rate);
        tracing::info!(connector = %self.connector, table = %table, rows = p.rows,
            estimated_total = estimate.round() as u64, rows_per_second = rate.round() as u64,
            eta_seconds = eta, tasks_left = p.tasks.len(), chunks_in_flight = self.interleaver.pending(),
            "snapshot progress");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ColumnDef;
    use crate::value::ColumnType;

    #[test]
    fn release_places_mark_first_and_last_rows() {
        let place =
            |first_of_snapshot, first_of_table, last_of_table, last_of_snapshot| ReleasePlace {
                first_of_snapshot,
                first_of_table,
                last_of_table,
                last_of_snapshot,
            };
        let marks = |p: ReleasePlace, n: usize| (0..n).map(|i| p.mark(i, n)).collect::<Vec<_>>();
        use SnapshotMark as M;
        assert_eq!(
            marks(place(true, true, false, false), 3),
            [M::First, M::Row, M::Row]
        );
        assert_eq!(
            marks(place(false, true, true, false), 2),
            [M::FirstInTable, M::LastInTable]
        );
        assert_eq!(marks(place(false, false, true, true), 2), [M::Row, M::Last]);
        assert_eq!(marks(place(true, true, true, true), 1), [M::Last]);
        assert_eq!(M::FirstInTable.debezium(), "first_in_data_collection");
    }

    fn cfg(chunk_size: usize) -> Arc<ConnectorConfig> {
        let mut c = crate::config::test_mysql_connector();
        c.snapshot.chunk_size = chunk_size;
        Arc::new(c)
    }

    fn schema(table: &TableId) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            id: table.clone(),
            columns: vec![ColumnDef {
                name: "id".into(),
                column_type: ColumnType::Int64,
                nullable: false,
            }],
            primary_key: vec![0],
        })
    }

    fn rows(keys: &[i64]) -> Vec<SnapRow> {
        keys.iter()
            .map(|k| SnapRow {
                row: vec![Value::Int(*k)],
                key_text: vec![k.to_string()],
            })
            .collect()
    }

    #[test]
    fn chunks_release_at_their_high_watermark_and_advance_the_progress() {
        let cfg = cfg(2);
        let table = cfg.tables[0].id.clone();
        let mut d = Driver::new(
            &cfg,
            SnapshotProgress::start(vec![SnapshotTask::whole(table.clone())]).unwrap(),
        );
        d.planned(&table, vec![0], 3.0);
        let r1 = d.next_request().unwrap();
        assert_eq!((r1.after.clone(), r1.limit), (None, 2));
        let (low1, high1) = (
            d.watermark_text(r1.id, "low"),
            d.watermark_text(r1.id, "high"),
        );
        d.arm(r1, schema(&table), rows(&[1, 2]), None);
        let r2 = d.next_request().unwrap();
        assert_eq!(r2.after, Some(vec!["2".to_string()]));
        let (low2, high2) = (
            d.watermark_text(r2.id, "low"),
            d.watermark_text(r2.id, "high"),
        );
        d.arm(r2, schema(&table), rows(&[3]), None);
        assert!(d.next_chunk_at().is_none(), "the last chunk is armed");
        assert!(d.on_watermark(&low1, &"p").is_none());
        d.on_change(&table, &vec![Value::Int(2)], None);
        let rel = d.on_watermark(&high1, &"p").unwrap();
        assert_eq!(rel.rows, vec![vec![Value::Int(1)]]);
        assert_eq!(d.progress().unwrap().last_key, Some(vec!["2".to_string()]));
        // Another session's watermark is ignored.
        assert!(d.on_watermark("other:2:high", &"p").is_none());
        d.on_watermark(&low2, &"p");
        assert_eq!(d.on_watermark(&high2, &"p").unwrap().rows.len(), 1);
        assert!(d.is_done());
    }

    #[test]
    fn a_chunk_waiting_for_its_watermark_is_reported_once_per_period() {
        let cfg = cfg(2);
        let table = cfg.tables[0].id.clone();
        let mut d = Driver::new(
            &cfg,
            SnapshotProgress::start(vec![SnapshotTask::whole(table.clone())]).unwrap(),
        );
        d.stalled_after = Duration::ZERO;
        assert!(!d.warn_if_stalled(&"t"), "nothing armed, nothing stalled");
        let r = d.next_request().unwrap();
        let high = d.watermark_text(r.id, "high");
        d.arm(r, schema(&table), rows(&[1]), None);
        assert!(d.warn_if_stalled(&"t"));
        d.stalled_after = Duration::from_secs(3600);
        assert!(!d.warn_if_stalled(&"t"), "reported again within the period");
        d.stalled_after = Duration::ZERO;
        d.on_watermark(&high, &"p");
        assert!(!d.warn_if_stalled(&"t"), "released chunks are not stalled");
    }
}
