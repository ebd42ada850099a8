//! The snapshot's bookkeeping, the same for every source: which chunk to read next, the
//! chunks in flight, what a watermark releases, the progress a checkpoint stores, signals
//! (add, pause, resume, stop), the throttle and the progress log.
//!
//! Sans I/O. A source drives it in two places, both in log order of its stream loop:
//! - when [`Driver::next_chunk_at`] is due, the source's [`super::backend::ChunkReader`] takes
//!   the round's [`ChunkRequest`]s (one per task read at once, `snapshot.parallelism` of
//!   them: whole tables, or key ranges of a large table split by [`Driver::split`]), and for
//!   each, on its own session and at the same time as the others, writes the low watermark,
//!   selects the chunk and writes the high watermark; it hands the rows to [`Driver::arm`]
//!   *before the loop reads further from its log* (so the log cannot show a watermark of a
//!   chunk that is not armed yet);
//! - for each watermark its log shows it calls [`Driver::on_watermark`] and emits the
//!   released rows right there; for each captured change, [`Driver::on_change`]; and every
//!   checkpoint it writes carries [`Driver::progress`].
//!
//! The algorithm and why it is correct: [`crate::snapshot`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::progress::ChunkDone;
use super::visibility::{Conflict, TxnSnapshot};
use super::window::{Chunk, Interleaver, Watermark};
use super::{SnapshotProgress, SnapshotTask};
use crate::config::ConnectorConfig;
use crate::error::Error;
use crate::event::{Row, SnapshotMark, TableId, TableSchema};
use crate::value::Value;

/// Chunks selected ahead of the log beyond one per reader (their rows wait in memory for their
/// high watermark): the snapshot holds at most `(parallelism + CHUNKS_AHEAD) × chunk_size`
/// selected rows, so one reader selects its next chunk while the log brings the previous one's
/// high watermark, and N readers start a new round while one chunk of the last is still open.
pub const CHUNKS_AHEAD: usize = 1;
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
    /// The task it reads a chunk of.
    pub task: SnapshotTask,
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
    /// Chunks armed when it was issued (see [`Chunk::issued_after`]).
    issued_after: u64,
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
    task: SnapshotTask,
    schema: Arc<TableSchema>,
    last_key: Option<Vec<String>>,
    last_of_task: bool,
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
        if queued.iter().chain(&out).any(|q| q.same_work(&task)) {
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

/// A task as the reader sees it: where its next chunk starts (ahead of the released
/// progress by its chunks in flight).
struct ReadTask {
    task: SnapshotTask,
    /// The last key its armed chunks selected (`None`: none yet; the task's own cursor).
    read_after: Option<Vec<String>>,
    /// A request of it is out (issued, not yet armed, refused or failed).
    busy: bool,
    /// Looked at for splitting into key ranges (once).
    examined: bool,
}

impl ReadTask {
    fn new(task: SnapshotTask) -> Self {
        Self {
            read_after: task.next_after().cloned(),
            task,
            busy: false,
            examined: false,
        }
    }
}

pub struct Driver {
    connector: String,
    cfg: Arc<ConnectorConfig>,
    /// Unique per driver: watermarks of other lives and other connectors are ignored.
    session: String,
    next_id: u64,
    /// Chunks read at once (`snapshot.parallelism`): the first this many tasks of `tasks`.
    parallelism: usize,
    /// The read position: tasks still to read, in order.
    tasks: Vec<ReadTask>,
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
        let progress = progress.normalized();
        let tasks = progress
            .tasks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let resume_after = progress
            .task()
            .and_then(|t| t.after.as_deref())
            .map_or_else(|| "the start".to_string(), super::progress::key_text);
        tracing::info!(connector = %cfg.name, tasks = %tasks, resume_after = %resume_after,
            chunk_size = cfg.snapshot.chunk_size, parallelism = cfg.snapshot.parallelism,
            "snapshot starting");
        let driver = Self {
            connector: cfg.name.clone(),
            cfg: cfg.clone(),
            session: format!("{:016x}", rand::random::<u64>()),
            next_id: 0,
            parallelism: cfg.snapshot.parallelism.max(1),
            tasks: progress.tasks.iter().cloned().map(ReadTask::new).collect(),
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
        // The tables of the tasks read at once, each once, in task order.
        let mut reading: Vec<crate::status::TableReading> = Vec::new();
        for task in p.tasks.iter().take(self.parallelism) {
            let table = task.table.to_string();
            if reading.iter().any(|r| r.table == table) {
                continue;
            }
            let estimate = self.estimates.get(&task.table).map_or(0.0, |e| e.max(0.0));
            reading.push(crate::status::TableReading {
                table,
                rows: p.table_rows(&task.table),
                estimated_total: estimate.round() as u64,
            });
        }
        let Some(first) = reading.first().cloned() else {
            return;
        };
        status.snapshot_progress(Some(crate::status::SnapshotStatus {
            table: first.table,
            rows: first.rows,
            estimated_total: first.estimated_total,
            rows_per_second: rate.round() as u64,
            tables_left: self.tables_left(p),
            paused: p.paused,
            reading,
        }));
    }

    /// Tables with tasks left.
    fn tables_left(&self, p: &SnapshotProgress) -> usize {
        let mut tables: Vec<&TableId> = p.tasks.iter().map(|t| &t.table).collect();
        tables.sort_unstable();
        tables.dedup();
        tables.len()
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

    /// Chunks that may be issued now: one per task read at once that has none out, with at
    /// most `parallelism + CHUNKS_AHEAD` chunks armed (see [`CHUNKS_AHEAD`]).
    fn issuable(&self) -> usize {
        let room = (self.parallelism + CHUNKS_AHEAD).saturating_sub(self.interleaver.pending());
        let idle = self
            .tasks
            .iter()
            .take(self.parallelism)
            .filter(|t| !t.busy)
            .count();
        room.min(idle)
    }

    /// When the source may read the next chunks (`None`: not now; wait for the log).
    pub fn next_chunk_at(&self) -> Option<Instant> {
        let paused = self.progress.as_ref().is_some_and(|p| p.paused);
        (!paused && self.issuable() > 0).then_some(self.not_before)
    }

    /// A whole table, not begun, among the tasks read next, to split into key ranges so that
    /// several readers share it: the task and the number of ranges (once per task; only with
    /// `snapshot.parallelism` above 1).
    pub fn to_split(&mut self) -> Option<(SnapshotTask, usize)> {
        if self.parallelism < 2 {
            return None;
        }
        let parts = self.parallelism;
        let t = self
            .tasks
            .iter_mut()
            .take(self.parallelism)
            .find(|t| !t.examined && !t.busy && t.task.splittable())?;
        t.examined = true;
        Some((t.task.clone(), parts))
    }

    /// `task` (from [`Driver::to_split`]) is read as key ranges ending at each of `bounds`
    /// (in key order; none: it stays whole).
    pub fn split(&mut self, task: &SnapshotTask, bounds: &[Vec<String>]) {
        if bounds.is_empty() {
            return;
        }
        let parts = task.split_at(bounds);
        if let Some(i) = self.tasks.iter().position(|t| t.task.same_work(task)) {
            self.tasks.splice(
                i..=i,
                parts.iter().cloned().map(|p| ReadTask {
                    examined: true,
                    ..ReadTask::new(p)
                }),
            );
        }
        if let Some(p) = self.progress.as_mut() {
            p.split(task, &parts);
        }
        let ranges = parts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        tracing::info!(connector = %self.connector, table = %task.table, ranges = %ranges,
            "snapshot of a large table split into key ranges read in parallel");
    }

    /// The chunks to read now, with fresh ids: one per task read at once that has none out.
    pub fn next_requests(&mut self) -> Vec<ChunkRequest> {
        let n = self.issuable();
        let issued_after = self.interleaver.armed_so_far();
        let mut out = Vec::with_capacity(n);
        let parallelism = self.parallelism;
        for i in 0..self.tasks.len().min(parallelism) {
            if out.len() == n {
                break;
            }
            if self.tasks[i].busy {
                continue;
            }
            let limit = self.limits(&self.tasks[i].task.table).0;
            self.next_id += 1;
            let t = &mut self.tasks[i];
            t.busy = true;
            out.push(ChunkRequest {
                id: self.next_id,
                table: t.task.table.clone(),
                task: t.task.clone(),
                after: t.read_after.clone(),
                from: t.task.from.clone(),
                to: t.task.to.clone(),
                condition: t.task.condition.clone(),
                limit,
                issued_after,
                began: Instant::now(),
            });
        }
        out
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

    /// The row estimate of `table` (0 when unknown).
    pub fn estimate(&self, table: &TableId) -> f64 {
        self.estimates.get(table).map_or(0.0, |e| e.max(0.0))
    }

    /// The read task of `request`, if it is still to read.
    fn read_task(&mut self, request: &ChunkRequest) -> Option<&mut ReadTask> {
        self.tasks
            .iter_mut()
            .find(|t| t.task.same_work(&request.task))
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
        let last_of_task = rows.len() < chunk_size;
        let last_key = rows.last().map(|r| r.key_text.clone());
        if last_of_task {
            self.tasks.retain(|t| !t.task.same_work(&request.task));
        } else if let Some(t) = self.read_task(&request) {
            t.busy = false;
            if last_key.is_some() {
                t.read_after = last_key.clone();
            }
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
                task: request.task,
                schema,
                last_key,
                last_of_task,
                armed: Instant::now(),
            },
        );
        self.interleaver.arm(Chunk {
            id: request.id,
            table: request.table,
            rows,
            seen,
            issued_after: request.issued_after,
        });
    }

    /// The chunk of `request` cannot be armed: its `SELECT` missed a transaction the log has
    /// already shown (`conflict`). Nothing advances; the same chunk is read again after a short
    /// wait (doubling while it repeats: a transaction can stay invisible for long, for example
    /// while a synchronous standby does not confirm it).
    pub fn retry(&mut self, request: ChunkRequest, conflict: Conflict) {
        if let Some(t) = self.read_task(&request) {
            t.busy = false;
        }
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

    /// The chunk of `request` is to be read again as it is (its table was planned anew).
    pub fn reissue(&mut self, request: &ChunkRequest) {
        if let Some(t) = self.read_task(request) {
            t.busy = false;
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
        // Chunks the interleaver dropped (their watermarks were lost) go too.
        let pending = self.interleaver.pending_ids();
        self.chunks.retain(|id, _| pending.contains(id));
        let n = released.rows.len() as u64;
        self.rows_emitted += n;
        let place = self
            .progress
            .as_ref()
            .map_or_else(ReleasePlace::default, |p| ReleasePlace {
                first_of_snapshot: !p.emitted_any,
                first_of_table: p.table_rows(&meta.table) == 0,
                last_of_table: meta.last_of_task && !p.has_other_task_of(&meta.task),
                last_of_snapshot: meta.last_of_task && p.tasks.len() == 1,
            });
        self.progress = self.progress.take().and_then(|p| {
            p.released(ChunkDone {
                task: &meta.task,
                rows: n,
                last_key: meta.last_key.clone(),
                last_of_task: meta.last_of_task,
            })
        });
        if place.last_of_table {
            tracing::info!(connector = %self.connector, table = %meta.table, at = %at, "table snapshot complete");
        } else if meta.last_of_task {
            tracing::info!(connector = %self.connector, task = %meta.task, at = %at, "snapshot of a key range complete");
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
        let queued: Vec<SnapshotTask> = self.tasks.iter().map(|t| t.task.clone()).collect();
        let tasks = bounded_tasks(&self.cfg, &queued, tasks);
        self.tasks.extend(tasks.iter().cloned().map(ReadTask::new));
        match self.progress.as_mut() {
            Some(p) => p.tasks.extend(tasks),
            None => self.progress = SnapshotProgress::start(tasks),
        }
    }

    /// A chunk of `request`'s task failed for good (`e` is definite: a bound that is not of
    /// the key's type, a condition the database refuses, ...): that task is skipped with an
    /// error in the log, the stream and the other tasks go on. Its chunks in flight still
    /// complete and end it.
    pub fn chunk_failed(&mut self, request: &ChunkRequest, e: &Error) {
        let task = &request.task;
        let mut in_flight = false;
        for meta in self
            .chunks
            .values_mut()
            .filter(|m| m.task.same_work(task) && !m.last_of_task)
        {
            meta.last_of_task = true;
            in_flight = true;
        }
        if in_flight {
            self.tasks.retain(|t| !t.task.same_work(task));
            tracing::error!(connector = %self.connector, task = %task, error = %e,
                "snapshot of this table skipped after its chunks in flight; the stream goes on");
        } else {
            self.skip_task(task, e);
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
            meta.last_of_task = true;
        }
        if self.interleaver.pending() == 0 {
            self.progress = None;
        } else if let Some(p) = self.progress.as_mut() {
            let chunks = &self.chunks;
            p.tasks
                .retain(|t| chunks.values().any(|m| m.task.same_work(t)));
        }
        tracing::info!(connector = %self.connector, "snapshot stopped by a signal");
    }

    /// Planning the table of `request` failed: a transient error is returned (the source
    /// retries), a definite one (no usable key, table dropped) skips that task, not the
    /// stream. `check` and start-up refuse such tables for the initial snapshot, so this is a
    /// requested one.
    pub fn plan_failed(&mut self, request: &ChunkRequest, e: Error) -> crate::error::Result<()> {
        if e.is_transient() {
            self.reissue(request);
            return Err(e);
        }
        self.chunk_failed(request, &e);
        Ok(())
    }

    /// Skips `task`: its table cannot be snapshotted (no usable key, dropped). It stops that
    /// task, not the stream.
    fn skip_task(&mut self, task: &SnapshotTask, why: &Error) {
        self.tasks.retain(|t| !t.task.same_work(task));
        tracing::error!(connector = %self.connector, task = %task, error = %why,
            "snapshot of this table skipped; the stream goes on");
        if let Some(p) = self.progress.take() {
            self.progress = p.without(task);
            if self.progress.is_none() {
                tracing::info!(connector = %self.connector, rows = self.rows_emitted, "snapshot complete");
            }
        }
    }

    /// The chunk size of `table`.
    pub fn chunk_size(&self, table: &TableId) -> usize {
        self.limits(table).0
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
        let estimate = self.estimate(table);
        let table_rows = p.table_rows(table);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.rows_emitted as f64 / secs;
        let eta = if rate > 0.0 && estimate > table_rows as f64 {
            Some(((estimate - table_rows as f64) / rate).round() as u64)
        } else {
            None
        };
        self.publish(rate);
        tracing::info!(connector = %self.connector, table = %table, rows = table_rows,
            snapshot_rows = p.rows, estimated_total = estimate.round() as u64,
            rows_per_second = rate.round() as u64, eta_seconds = eta, tasks_left = p.tasks.len(),
            chunks_in_flight = self.interleaver.pending(), "snapshot progress");
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
        let r1 = d.next_requests().pop().unwrap();
        assert_eq!((r1.after.clone(), r1.limit), (None, 2));
        let (low1, high1) = (
            d.watermark_text(r1.id, "low"),
            d.watermark_text(r1.id, "high"),
        );
        d.arm(r1, schema(&table), rows(&[1, 2]), None);
        let r2 = d.next_requests().pop().unwrap();
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
        assert_eq!(
            d.progress().unwrap().tasks[0].after,
            Some(vec!["2".to_string()])
        );
        // Another session's watermark is ignored.
        assert!(d.on_watermark("other:2:high", &"p").is_none());
        d.on_watermark(&low2, &"p");
        assert_eq!(d.on_watermark(&high2, &"p").unwrap().rows.len(), 1);
        assert!(d.is_done());
    }

    #[test]
    fn parallel_readers_split_a_table_and_release_its_ranges_in_any_order() {
        let mut c = crate::config::test_mysql_connector();
        c.snapshot.chunk_size = 2;
        c.snapshot.parallelism = 2;
        let cfg = Arc::new(c);
        let table = cfg.tables[0].id.clone();
        let whole = SnapshotTask::whole(table.clone());
        let mut d = Driver::new(&cfg, SnapshotProgress::start(vec![whole.clone()]).unwrap());
        d.planned(&table, vec![0], 100.0);
        let (task, parts) = d.to_split().unwrap();
        assert_eq!((task.clone(), parts), (whole, 2));
        assert!(d.to_split().is_none(), "a task is looked at once");
        d.split(&task, &[vec!["2".to_string()]]);
        let reqs = d.next_requests();
        assert_eq!(reqs.len(), 2, "one chunk per range at once");
        assert_eq!(
            (
                reqs[0].after.clone(),
                reqs[0].to.clone(),
                reqs[1].after.clone()
            ),
            (None, Some(vec!["2".into()]), Some(vec!["2".into()]))
        );
        assert!(d.next_requests().is_empty(), "both ranges have a chunk out");
        let ids: Vec<u64> = reqs.iter().map(|r| r.id).collect();
        let mut reqs = reqs.into_iter();
        d.arm(reqs.next().unwrap(), schema(&table), rows(&[1]), None);
        d.arm(reqs.next().unwrap(), schema(&table), rows(&[3, 4]), None);
        // The first range is read; the second goes on after key 4.
        let next = d.next_requests();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].after, Some(vec!["4".to_string()]));
        // Windows overlap: low 1, low 2, high 2, high 1.
        for id in &ids {
            d.on_watermark(&d.watermark_text(*id, "low"), &"p");
        }
        let second = d
            .on_watermark(&d.watermark_text(ids[1], "high"), &"p")
            .unwrap();
        assert_eq!(second.rows.len(), 2);
        assert!(second.place.first_of_snapshot && second.place.first_of_table);
        let first = d
            .on_watermark(&d.watermark_text(ids[0], "high"), &"p")
            .unwrap();
        assert_eq!(first.rows.len(), 1);
        assert!(!first.place.first_of_table && !first.place.last_of_table);
        let p = d.progress().unwrap();
        assert_eq!(p.tasks.len(), 1, "the first range is done");
        assert_eq!(
            (p.rows, p.tasks[0].after.clone()),
            (3, Some(vec!["4".to_string()]))
        );
        let last = next.into_iter().next().unwrap();
        let id = last.id;
        d.arm(last, schema(&table), rows(&[]), None);
        d.on_watermark(&d.watermark_text(id, "low"), &"p");
        let end = d.on_watermark(&d.watermark_text(id, "high"), &"p").unwrap();
        assert!(end.place.last_of_table && end.place.last_of_snapshot);
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
        let r = d.next_requests().pop().unwrap();
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
