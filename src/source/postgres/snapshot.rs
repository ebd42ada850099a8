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
//!
//! A commit reaches the WAL before it becomes visible to other sessions, so the chunk's
//! `SELECT` runs in a `REPEATABLE READ READ ONLY` transaction that first reads its own snapshot
//! (`pg_current_snapshot()`, and which of the transactions it does not see had already
//! committed); the chunk is armed with that snapshot, or read again when the stream has already
//! shown a transaction the snapshot missed (see [`crate::snapshot`] and
//! [`crate::snapshot::visibility`]).

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::error::classify_postgres;
use super::pgoutput::RelationColumn;
use super::relations::{decode_text_row, Relations};
use super::setup::{self, quote_ident};
use crate::config::ConnectorConfig;
use crate::error::{Error, Result};
use crate::event::{TableId, TableSchema};
use crate::snapshot::backend::{ChunkError, ChunkRead, ChunkReader, Planned, SnapshotBackend};
use crate::snapshot::driver::{ChunkRequest, SnapRow};
use crate::snapshot::visibility::{CommitHistory, Conflict, TxnSnapshot};

/// The prefix of tidemark's logical decoding messages.
pub const MESSAGE_PREFIX: &str = "tidemark";

/// Session settings: the replication session's text formats, and watermarks flushed at
/// commit (logical decoding only sends flushed WAL; a server with `synchronous_commit=off`
/// would otherwise hold a watermark back up to `wal_writer_delay`), without waiting for a
/// synchronous standby (`local`: the stream needs the local flush, nothing more).
const SESSION_OPTIONS: &str = "-c datestyle=ISO,MDY -c intervalstyle=iso_8601 -c timezone=UTC \
     -c bytea_output=hex -c extra_float_digits=3 -c synchronous_commit=local";

/// Opens the chunk's transaction and reads its snapshot: the snapshot's text, and the ids it
/// does not see although they had committed (commit record written, not yet visible). Such a
/// transaction is still running to `pg_xact_status` while it waits for a synchronous standby
/// (the status checks the running set before the commit log), so the waiters are read from
/// `pg_stat_activity` too: their `backend_xid` shows to a superuser or a member of
/// `pg_read_all_stats` (NULL to other roles, README says so); a transaction that finished
/// between the snapshot and the status shows as `committed`.
const CHUNK_BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
     SELECT pg_current_snapshot()::text, \
     (SELECT string_agg(x::text, ',') FROM pg_snapshot_xip(pg_current_snapshot()) AS x \
      WHERE pg_xact_status(x) = 'committed' \
         OR x::xid IN (SELECT backend_xid FROM pg_stat_activity WHERE wait_event = 'SyncRep'))";

/// Pages a split's key sample reads (`TABLESAMPLE SYSTEM`): 200 pages hold about 13,000 rows of
/// a 10-column table, enough for even ranges, at the cost of 200 page reads on any size.
const SAMPLE_PAGES: f64 = 200.0;

struct TablePlan {
    schema: Arc<TableSchema>,
    key_columns: Vec<usize>,
    /// `SELECT cols FROM ONLY t` (the chunk query adds its bound, order and limit).
    select_from: String,
    /// The key columns, comma separated, quoted.
    key_list: String,
    /// The SQL type of each key column (for the bound's casts).
    key_types: Vec<String>,
}

/// What the PostgreSQL stream shares with its snapshot reader: the type cache (a chunk's table
/// is planned with it) and the transactions the stream has shown committing (a chunk whose
/// query missed one of them is read again).
pub struct StreamShared {
    pub relations: Relations,
    pub history: CommitHistory,
}

/// How the snapshot reads a PostgreSQL database ([`SnapshotBackend`]): a session of its own,
/// and each table's plan.
pub struct PgBackend {
    client: Client,
    connector: String,
    plans: HashMap<TableId, TablePlan>,
    /// The transactions the last chunk's snapshot did not see although they had committed.
    unseen: Vec<u64>,
}

/// The snapshot reader of a PostgreSQL connector.
pub type PgSnapshot = ChunkReader<PgBackend>;

/// A string literal safe under any `standard_conforming_strings`.
fn quote_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

impl PgBackend {
    /// Opens the snapshot's sessions, one per chunk read at once (`snapshot.parallelism`).
    pub async fn open(cfg: &ConnectorConfig) -> Result<PgSnapshot> {
        let mut backends = Vec::with_capacity(cfg.snapshot.parallelism);
        for _ in 0..cfg.snapshot.parallelism.max(1) {
            let client = setup::connect_with_options(cfg, Some(SESSION_OPTIONS)).await?;
            backends.push(Self {
                client,
                connector: cfg.name.clone(),
                plans: HashMap::new(),
                unseen: Vec::new(),
            });
        }
        Ok(ChunkReader::new(&cfg.name, backends))
    }

    async fn make_plan(
        &mut self,
        relations: &mut Relations,
        table: &TableId,
    ) -> Result<Option<Planned>> {
        if self.plans.contains_key(table) {
            return Ok(None);
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
        // Its own shape, not the stream's: the stream decodes its tuples only with the
        // shapes of its own Relation messages, which may lag the catalog.
        let schema = relations
            .shape(&self.client, oid, table.clone(), &columns, true)
            .await?;
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
        self.plans.insert(
            table.clone(),
            TablePlan {
                schema,
                key_columns: key_columns.clone(),
                select_from,
                key_list,
                key_types,
            },
        );
        Ok(Some(Planned {
            key_columns,
            estimate,
        }))
    }

    /// Runs the chunk query `sql` in a `REPEATABLE READ READ ONLY` transaction after reading
    /// its snapshot: (snapshot text, committed ids it does not see, rows).
    async fn select_chunk(
        &self,
        sql: &str,
    ) -> std::result::Result<
        (Option<String>, String, Vec<tokio_postgres::SimpleQueryRow>),
        tokio_postgres::Error,
    > {
        let messages = self
            .client
            .simple_query(&format!("{CHUNK_BEGIN}; {sql}; COMMIT"))
            .await?;
        // BEGIN, the snapshot's SELECT, the chunk's SELECT and COMMIT each end with a
        // CommandComplete: rows after the first belong to the snapshot, after the second to
        // the chunk.
        let mut completed = 0;
        let (mut snapshot, mut gap, mut rows) = (None, String::new(), Vec::new());
        for m in messages {
            match m {
                SimpleQueryMessage::CommandComplete(_) => completed += 1,
                SimpleQueryMessage::Row(r) if completed == 1 => {
                    snapshot = r.get(0).map(str::to_owned);
                    gap = r.get(1).unwrap_or_default().to_owned();
                }
                SimpleQueryMessage::Row(r) if completed == 2 => rows.push(r),
                _ => {}
            }
        }
        Ok((snapshot, gap, rows))
    }
}

impl SnapshotBackend for PgBackend {
    type Stream = StreamShared;
    /// The chunk's `SELECT`.
    type Query = String;

    async fn plan(
        &mut self,
        table: &TableId,
        stream: &mut StreamShared,
    ) -> Result<Option<Planned>> {
        self.make_plan(&mut stream.relations, table).await
    }

    async fn prepare_chunk(&mut self, request: &ChunkRequest) -> Result<String, ChunkError> {
        let table = &request.table;
        let plan = &self.plans[table];
        let arity = plan.key_types.len();
        let bounds = [&request.after, &request.from, &request.to];
        if let Some(b) = bounds.into_iter().flatten().find(|b| b.len() != arity) {
            return Err(ChunkError::Unreadable {
                error: Error::definite(format!(
                    "connector {}: snapshot of {table}: the key bound {b:?} has {} values, the key {arity} columns",
                    self.connector,
                    b.len()
                )),
                shape_changed: false,
            });
        }
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
        match (&request.after, &request.from) {
            (Some(last), _) => conditions.push(format!("({}) > ({})", plan.key_list, tuple(last))),
            (None, Some(from)) => {
                conditions.push(format!("({}) >= ({})", plan.key_list, tuple(from)))
            }
            (None, None) => {}
        }
        if let Some(to) = &request.to {
            conditions.push(format!("({}) <= ({})", plan.key_list, tuple(to)));
        }
        if let Some(condition) = &request.condition {
            conditions.push(format!("({condition})"));
        }
        let bound = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        Ok(format!(
            "{}{bound} ORDER BY {} LIMIT {}",
            plan.select_from, plan.key_list, request.limit
        ))
    }

    async fn write_watermark(&mut self, text: &str) -> Result<()> {
        self.client
            .execute(
                "SELECT pg_logical_emit_message(true, $1::text, $2::text)",
                &[&MESSAGE_PREFIX, &text],
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

    async fn read_chunk(
        &mut self,
        request: &ChunkRequest,
        sql: String,
    ) -> Result<ChunkRead, ChunkError> {
        let table = &request.table;
        let what = || {
            format!(
                "connector {}: snapshot of {table}: selecting a chunk after key {}",
                self.connector,
                request.after.as_deref().map_or_else(
                    || "(none: the first chunk)".to_string(),
                    crate::snapshot::progress::key_text
                )
            )
        };
        let (snapshot, gap, rows) = match self.select_chunk(&sql).await {
            Ok(r) => r,
            Err(e) => {
                // Leaves no transaction open on the session (the statements after the failed
                // one were skipped).
                let _ = self.client.batch_execute("ROLLBACK").await;
                let shape_changed =
                    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN);
                return Err(ChunkError::Unreadable {
                    error: classify_postgres(what(), e),
                    shape_changed,
                });
            }
        };
        let snapshot_text = snapshot.unwrap_or_default();
        let snapshot = TxnSnapshot::parse(&snapshot_text).ok_or_else(|| {
            Error::definite(format!(
                "{}: unexpected pg_current_snapshot() {snapshot_text:?}",
                what()
            ))
        })?;
        let gap = gap
            .split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse::<u64>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::definite(format!("{}: committed ids {gap:?}", what())).with_source(e)
            })?;
        let plan = &self.plans[table];
        let at = format!("snapshot chunk {} of {table}", request.id);
        let mut selected = Vec::with_capacity(rows.len());
        for r in &rows {
            // Checks the column count before any column is read by index.
            let row = decode_text_row(&plan.schema, (0..r.len()).map(|i| r.get(i)), &at)
                .map_err(|e| e.for_table(table))?;
            let key_text = plan
                .key_columns
                .iter()
                .map(|i| r.get(*i).unwrap_or_default().to_owned())
                .collect();
            selected.push(SnapRow { row, key_text });
        }
        tracing::debug!(connector = %self.connector, table = %table, chunk = request.id,
            snapshot = %snapshot_text, committed_unseen = ?gap, rows = selected.len(), "snapshot chunk selected");
        self.unseen = gap;
        Ok(ChunkRead {
            schema: plan.schema.clone(),
            rows: selected,
            seen: Some(snapshot),
        })
    }

    fn conflict(&mut self, read: &ChunkRead, stream: &mut StreamShared) -> Option<Conflict> {
        let snapshot = read.seen.as_ref()?;
        let conflict = stream.history.conflict(snapshot, &self.unseen);
        tracing::debug!(connector = %self.connector, history_base = stream.history.base(),
            history_newest = ?stream.history.newest(), ?conflict, "snapshot chunk checked against the stream's commits");
        conflict
    }

    /// Ids below the round's oldest `xmin` are forgotten: every snapshot taken from now on
    /// sees them (the round's own snapshots were all checked first).
    fn round_checked(&mut self, reads: &[&ChunkRead], stream: &mut StreamShared) {
        if let Some(xmin) = reads
            .iter()
            .filter_map(|r| r.seen.as_ref().map(|s| s.xmin))
            .min()
        {
            stream.history.forget_below(xmin);
        }
    }

    async fn forget_plan(&mut self, table: &TableId) {
        self.plans.remove(table);
    }

    /// From a block sample (`TABLESAMPLE SYSTEM`: whole pages, so its cost follows the sample,
    /// not the table) of about 200 pages, the keys at each range's share. Pages, not rows: a
    /// sample of a few pages holds a few runs of neighbouring keys, whatever their row count.
    async fn split_bounds(
        &mut self,
        table: &TableId,
        parts: usize,
        _estimate: f64,
    ) -> Result<Vec<Vec<String>>> {
        let Some(plan) = self.plans.get(table) else {
            return Ok(Vec::new());
        };
        let what = || {
            format!(
                "connector {}: snapshot of {table}: sampling key bounds to split it",
                self.connector
            )
        };
        let relation = format!(
            "{}.{}",
            quote_ident(&table.schema),
            quote_ident(&table.table)
        );
        // The table's size in pages (`relpages` is only an estimate, and 0 before the first
        // VACUUM or ANALYZE).
        let pages: i64 = self
            .client
            .query_one(
                "SELECT GREATEST(pg_relation_size($1::text::regclass) / current_setting('block_size')::int8, 1)",
                &[&relation],
            )
            .await
            .map_err(|e| classify_postgres(what(), e))?
            .get(0);
        let percent = (100.0 * SAMPLE_PAGES / pages as f64).clamp(0.0001, 100.0);
        let sql = format!(
            "SELECT {keys} FROM ONLY {relation} TABLESAMPLE SYSTEM ({percent}) ORDER BY {keys}",
            keys = plan.key_list
        );
        let arity = plan.key_columns.len();
        let messages = self
            .client
            .simple_query(&sql)
            .await
            .map_err(|e| classify_postgres(what(), e))?;
        let keys: Vec<Vec<String>> = messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    (0..arity)
                        .map(|i| r.get(i).unwrap_or_default().to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        Ok(crate::snapshot::backend::quantiles(keys, parts))
    }
}
