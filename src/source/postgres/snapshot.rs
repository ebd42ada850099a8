//! The PostgreSQL side of the DBLog snapshot (the algorithm and its correctness argument are
//! in [`crate::snapshot`]): watermarks are logical decoding messages written with
//! `pg_logical_emit_message(true, 'tidemark', '<session>:<chunk>:low|high')` (transactional, so
//! they appear in the WAL stream at their commit, no table needed), chunks are read with
//! `SELECT col::text, ... FROM ONLY t WHERE (key) > (last) ORDER BY key LIMIT n` on a
//! connection of its own, each statement its own transaction: no lock beyond the `SELECT`'s
//! ACCESS SHARE for one chunk, no long-running transaction.
//!
//! Values are read in the simple query protocol, as the types' output functions write them
//! (no casts: `char(n)::text` would drop the padding the WAL keeps), with the replication
//! session's settings (DateStyle, IntervalStyle, TimeZone, bytea_output, extra_float_digits),
//! so they are decoded by the same code as the WAL's text values and compare equal to them.
//! The previous chunk's last key goes into the statement as escaped literals (`E'...'`) cast
//! to the key columns' types.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};

use super::pgoutput::{format_lsn, RelationColumn};
use super::relations::{decode_text_row, Relations};
use super::setup::{self, quote_ident};
use crate::config::ConnectorConfig;
use crate::error::{classify_postgres, Error, Result};
use crate::event::{Row, TableId, TableSchema};
use crate::snapshot::window::{Chunk, Interleaver, Released, Watermark};
use crate::snapshot::{SnapshotProgress, SnapshotTask};

/// The prefix of tidemark's logical decoding messages.
pub const MESSAGE_PREFIX: &str = "tidemark";
/// Chunks selected ahead of the log (their rows wait in memory for their high watermark).
const CHUNKS_AHEAD: usize = 2;
/// How often progress is logged.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Session settings: the replication session's text formats, and watermarks flushed at
/// commit (logical decoding only sends flushed WAL; a server with `synchronous_commit=off`
/// would otherwise hold a watermark back up to `wal_writer_delay`).
const SESSION_OPTIONS: &str = "-c datestyle=ISO,MDY -c intervalstyle=iso_8601 -c timezone=UTC \
     -c bytea_output=hex -c extra_float_digits=3 -c synchronous_commit=on";

/// A selected row, with its key as text (for the next chunk's lower bound) and as the
/// interleaver's match key.
pub struct SnapRow {
    pub row: Row,
    pub key_text: Vec<String>,
}

struct TablePlan {
    schema: Arc<TableSchema>,
    key_columns: Vec<usize>,
    /// `SELECT cols FROM ONLY t` (the chunk query adds its bound, order and limit).
    select_from: String,
    /// The key columns, comma separated, quoted.
    key_list: String,
    /// The SQL type of each key column (for the bound's casts).
    key_types: Vec<String>,
    estimate: f64,
}

struct ChunkMeta {
    table: TableId,
    /// The shape the chunk was read with.
    schema: Arc<TableSchema>,
    last_key: Option<Vec<String>>,
    last_of_table: bool,
}

/// The driver's read position: ahead of the released progress by the chunks in flight.
struct Cursor {
    tasks: Vec<SnapshotTask>,
    last_key: Option<Vec<String>>,
}

pub struct PgSnapshot {
    client: Client,
    connector: String,
    session: String,
    cfg: Arc<ConnectorConfig>,
    next_id: u64,
    cursor: Cursor,
    plans: HashMap<TableId, TablePlan>,
    /// Key columns per table, kept when a plan is forgotten (chunks in flight still match).
    key_columns: HashMap<TableId, Vec<usize>>,
    chunks: HashMap<u64, ChunkMeta>,
    interleaver: Interleaver<TableId, String, SnapRow>,
    /// Released progress: what the next checkpoint stores.
    progress: Option<SnapshotProgress>,
    started: Instant,
    rows_emitted: u64,
    rows_selected: u64,
    last_report: Instant,
    /// The throttle: no chunk before this instant.
    not_before: Instant,
}

/// The key a row has in the interleaver: its key values as JSON (the same bytes for a value
/// read by the snapshot and the same value in the WAL).
pub fn match_key(row: &Row, key_columns: &[usize]) -> String {
    let values: Vec<&crate::value::Value> =
        key_columns.iter().filter_map(|i| row.get(*i)).collect();
    serde_json::to_string(&values).unwrap_or_default()
}

/// A string literal safe under any `standard_conforming_strings`.
fn quote_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

impl PgSnapshot {
    /// Starts (or resumes) the snapshot described by `progress`.
    pub async fn open(cfg: &Arc<ConnectorConfig>, progress: SnapshotProgress) -> Result<Self> {
        let client = setup::connect_with_options(cfg, Some(SESSION_OPTIONS)).await?;
        let session = format!("{:016x}", rand::random::<u64>());
        tracing::info!(connector = %cfg.name, tasks = ?progress.tasks,
            resume_after = ?progress.last_key, chunk_size = cfg.snapshot.chunk_size, "snapshot starting");
        Ok(Self {
            client,
            connector: cfg.name.clone(),
            session,
            cfg: cfg.clone(),
            next_id: 0,
            cursor: Cursor {
                tasks: progress.tasks.clone(),
                last_key: progress.last_key.clone(),
            },
            plans: HashMap::new(),
            key_columns: HashMap::new(),
            chunks: HashMap::new(),
            interleaver: Interleaver::default(),
            progress: Some(progress),
            started: Instant::now(),
            rows_emitted: 0,
            rows_selected: 0,
            last_report: Instant::now(),
            not_before: Instant::now(),
        })
    }

    /// What the next checkpoint stores (`None` once the snapshot is complete).
    pub fn progress(&self) -> Option<&SnapshotProgress> {
        self.progress.as_ref()
    }

    /// Whether the snapshot is complete (every chunk released).
    pub fn is_done(&self) -> bool {
        self.progress.is_none()
    }

    /// When the driver may select the next chunk (`None`: not now; wait for the log).
    pub fn next_chunk_at(&self) -> Option<Instant> {
        let paused = self.progress.as_ref().is_some_and(|p| p.paused);
        (!paused && !self.cursor.tasks.is_empty() && self.interleaver.pending() < CHUNKS_AHEAD)
            .then_some(self.not_before)
    }

    async fn plan(&mut self, relations: &mut Relations, table: &TableId) -> Result<()> {
        if self.plans.contains_key(table) {
            return Ok(());
        }
        let ctx = |what: &str| format!("connector {}: snapshot of {table}: {what}", self.connector);
        let rel = self
            .client
            .query_opt(
                "SELECT c.oid, c.reltuples::float8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&table.schema, &table.table],
            )
            .await
            .map_err(|e| classify_postgres(ctx("reading the catalog"), e))?
            .ok_or_else(|| Error::definite(ctx("the table does not exist")))?;
        let oid: u32 = rel.get(0);
        let estimate: f64 = rel.get(1);
        let cols = self
            .client
            .query(
                "SELECT a.attname::text, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod) \
                 FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
                 AND a.attgenerated = '' ORDER BY a.attnum",
                &[&oid],
            )
            .await
            .map_err(|e| classify_postgres(ctx("reading its columns"), e))?;
        let columns: Vec<RelationColumn> = cols
            .iter()
            .map(|r| RelationColumn {
                is_key: false,
                name: r.get(0),
                type_oid: r.get(1),
                type_modifier: r.get(2),
            })
            .collect();
        let sql_types: Vec<String> = cols.iter().map(|r| r.get(3)).collect();
        let schema = relations
            .update(&self.client, oid, table.clone(), &columns, true)
            .await?
            .schema
            .clone();
        let key_columns = schema.primary_key.clone();
        if key_columns.is_empty() {
            return Err(Error::definite(ctx(
                "the table has no primary key, which the chunked snapshot orders and resumes by; \
                 add one, or set `snapshot: {mode: never}` in the connector file",
            )));
        }
        let select_list = schema
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let key_list = key_columns
            .iter()
            .map(|i| quote_ident(&schema.columns[*i].name))
            .collect::<Vec<_>>()
            .join(", ");
        let key_types = key_columns.iter().map(|i| sql_types[*i].clone()).collect();
        let select_from = format!(
            "SELECT {select_list} FROM ONLY {}.{}",
            quote_ident(&table.schema),
            quote_ident(&table.table)
        );
        self.key_columns.insert(table.clone(), key_columns.clone());
        self.plans.insert(
            table.clone(),
            TablePlan {
                schema,
                key_columns,
                select_from,
                key_list,
                key_types,
                estimate,
            },
        );
        Ok(())
    }

    async fn watermark(&self, id: u64, kind: &str) -> Result<()> {
        let content = format!("{}:{id}:{kind}", self.session);
        self.client
            .execute(
                "SELECT pg_logical_emit_message(true, $1::text, $2::text)",
                &[&MESSAGE_PREFIX, &content],
            )
            .await
            .map_err(|e| {
                classify_postgres(
                    format!(
                        "connector {}: writing a snapshot watermark (pg_logical_emit_message)",
                        self.connector
                    ),
                    e,
                )
            })?;
        Ok(())
    }

    /// Adds tasks to the running snapshot (after the ones it has).
    pub fn add_tasks(&mut self, tasks: Vec<SnapshotTask>) {
        self.cursor.tasks.extend(tasks.iter().cloned());
        match self.progress.as_mut() {
            Some(p) => p.tasks.extend(tasks),
            None => self.progress = SnapshotProgress::start(tasks),
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
        self.cursor.tasks.clear();
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

    fn skip_current_task(&mut self, why: &Error) {
        let task = self.cursor.tasks.remove(0);
        self.cursor.last_key = None;
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

    /// Forgets how `table` is read (its shape changed); the next chunk plans it again.
    /// Chunks already selected keep the shape they were read with.
    pub fn forget_plan(&mut self, table: &TableId) {
        if self.cursor.tasks.first().map(|t| &t.table) == Some(table) {
            self.plans.remove(table);
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

    /// Selects the next chunk between a low and a high watermark, and arms it.
    pub async fn next_chunk(&mut self, relations: &mut Relations) -> Result<()> {
        let Some(task) = self.cursor.tasks.first().cloned() else {
            return Ok(());
        };
        let table = task.table.clone();
        let began = Instant::now();
        let (chunk_size, max_rows_per_second) = self.limits(&table);
        if let Err(e) = self.plan(relations, &table).await {
            if e.is_transient() {
                return Err(e);
            }
            // A table that cannot be snapshotted (no primary key, dropped) stops its own task,
            // not the stream: `check` and start-up refuse such a table for the initial
            // snapshot, so this is a requested one.
            self.skip_current_task(&e);
            return Ok(());
        }
        self.next_id += 1;
        let id = self.next_id;
        self.watermark(id, "low").await?;
        let plan = &self.plans[&table];
        // Lower bound: after the last selected key, else from the task's `from`; upper bound:
        // the task's `to`. Bounds are escaped literals cast to the key columns' types.
        let tuple = |values: &[String]| -> String {
            values
                .iter()
                .zip(&plan.key_types)
                .map(|(v, t)| format!("{}::{t}", quote_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut conditions = Vec::new();
        match (&self.cursor.last_key, &task.from) {
            (Some(last), _) => conditions.push(format!("({}) > ({})", plan.key_list, tuple(last))),
            (None, Some(from)) => {
                conditions.push(format!("({}) >= ({})", plan.key_list, tuple(from)))
            }
            (None, None) => {}
        }
        if let Some(to) = &task.to {
            conditions.push(format!("({}) <= ({})", plan.key_list, tuple(to)));
        }
        let bound = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "{}{bound} ORDER BY {} LIMIT {}",
            plan.select_from, plan.key_list, chunk_size
        );
        let rows: Vec<tokio_postgres::SimpleQueryRow> = self
            .client
            .simple_query(&sql)
            .await
            .map_err(|e| {
                classify_postgres(
                    format!(
                        "connector {}: snapshot of {table}: selecting a chunk after key {:?}",
                        self.connector, self.cursor.last_key
                    ),
                    e,
                )
            })?
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .collect();
        let at = format!("snapshot chunk {id} of {table}");
        let mut selected = Vec::with_capacity(rows.len());
        for r in &rows {
            // Checks the column count before any column is read by index.
            let row = decode_text_row(&plan.schema, (0..r.len()).map(|i| r.get(i)), &at)?;
            let key_text = plan
                .key_columns
                .iter()
                .map(|i| r.get(*i).unwrap_or_default().to_owned())
                .collect();
            let key = match_key(&row, &plan.key_columns);
            selected.push((key, SnapRow { row, key_text }));
        }
        self.watermark(id, "high").await?;

        let schema = plan.schema.clone();
        let last_of_table = selected.len() < chunk_size;
        let last_key = selected.last().map(|(_, r)| r.key_text.clone());
        self.rows_selected += selected.len() as u64;
        if last_of_table {
            self.cursor.tasks.remove(0);
            self.cursor.last_key = None;
        } else {
            self.cursor.last_key = last_key.clone();
        }
        if max_rows_per_second > 0 {
            // The next chunk may start once this one's rows are paid for at the allowed rate,
            // counted from when this chunk started (or from the previous allowance, if later):
            // time spent paused or waiting for the log is not saved up for a burst.
            let cost = Duration::from_secs_f64(selected.len() as f64 / max_rows_per_second as f64);
            self.not_before = self.not_before.max(began) + cost;
        }
        self.chunks.insert(
            id,
            ChunkMeta {
                table: table.clone(),
                schema,
                last_key,
                last_of_table,
            },
        );
        self.interleaver.arm(Chunk {
            id,
            table,
            rows: selected,
        });
        Ok(())
    }

    /// A tidemark message from the WAL: the rows a high watermark releases, with their table
    /// shape.
    pub fn on_message(
        &mut self,
        content: &[u8],
        lsn: u64,
    ) -> Option<(Arc<TableSchema>, Released<TableId, SnapRow>)> {
        let text = std::str::from_utf8(content).ok()?;
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
        let schema = meta.schema.clone();
        let n = released.rows.len() as u64;
        self.rows_emitted += n;
        self.progress = self
            .progress
            .take()
            .and_then(|p| p.released(n, meta.last_key, meta.last_of_table));
        if meta.last_of_table {
            tracing::info!(connector = %self.connector, table = %meta.table, at = %format_lsn(lsn), "table snapshot complete");
        }
        if self.progress.is_none() {
            tracing::info!(connector = %self.connector, rows = self.rows_emitted,
                seconds = self.started.elapsed().as_secs(), "snapshot complete");
        }
        self.report(false);
        Some((schema, released))
    }

    /// A change in the WAL: drops the changed key from open chunks.
    pub fn on_change(&mut self, table: &TableId, row: &Row) {
        if self.interleaver.pending() == 0 {
            return;
        }
        if let Some(columns) = self.key_columns.get(table) {
            let key = match_key(row, columns);
            self.interleaver.on_change(table, &key);
        }
    }

    pub fn on_truncate(&mut self, table: &TableId) {
        self.interleaver.on_truncate(table);
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
        let estimate = self.plans.get(table).map_or(0.0, |t| t.estimate.max(0.0));
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.rows_emitted as f64 / secs;
        let eta = if rate > 0.0 && estimate > p.rows as f64 {
            Some(((estimate - p.rows as f64) / rate).round() as u64)
        } else {
            None
        };
        tracing::info!(connector = %self.connector, table = %table, rows = p.rows,
            estimated_total = estimate.round() as u64, rows_per_second = rate.round() as u64,
            eta_seconds = ?eta, tasks_left = p.tasks.len(), chunks_in_flight = self.interleaver.pending(),
            "snapshot progress");
    }
}
