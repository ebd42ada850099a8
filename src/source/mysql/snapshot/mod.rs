//! The MySQL/MariaDB side of the DBLog snapshot (the algorithm and its correctness argument
//! are in [`crate::snapshot`]; the bookkeeping in [`crate::snapshot::driver`]).
//!
//! Per chunk, on a connection of its own, each statement its own autocommit transaction:
//! the low watermark is written into the signal table ((`signal_table`)), the chunk is
//! read with a prepared `SELECT cols FROM t WHERE <after last key> ORDER BY key LIMIT n`, and
//! the high watermark is written. No table lock, no long transaction: a concurrent write
//! transaction waits for nothing (InnoDB's consistent read takes no row locks).
//!
//! # What MySQL adds to the argument
//!
//! The argument needs "if the chunk's `SELECT` saw a transaction, that transaction is in the
//! binlog before the high watermark, and if it did not, it is after the low watermark". A
//! transaction is visible only after its engine commit, which follows its binlog write
//! (two-phase commit with the binlog), so a visible one is in the binlog before the high
//! watermark, written afterwards. And engine commits happen in binlog order (MariaDB always;
//! MySQL with `binlog_order_commits = ON`, its default, which `tidemark check` verifies), so
//! when the low watermark's commit has returned, everything before it in the binlog is
//! visible to the `SELECT`.
//!
//! # Reading values exactly
//!
//! The table's shape comes from `information_schema`, mapped to what a TABLE_MAP event
//! carries (type codes, metadata, signedness, collations, ENUM/SET labels, primary key), and
//! turned into the event schema by the binlog decoder's own `table_schema`; values are read
//! in the binary protocol and decoded by `select_value` to the values the binlog
//! decoder makes of the same data.
//!
//! Key bounds are bound parameters: integers as integers, DECIMAL through
//! `CAST(? AS DECIMAL(p,s))` (a string would compare as a double), binary strings as bytes
//! (their text form is hex), others as text. Composite keys are compared as
//! `(a > ?) OR (a = ? AND b > ?)`, which both servers turn into index ranges. Keys MySQL
//! orders differently from how it compares them (ENUM, SET), and BIT, JSON, GEOMETRY keys,
//! are refused with the table's name.

pub mod catalog;
pub mod chunk_sql;

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Statement, Value as Wire};

use super::binlog::charset::CharsetMap;
use super::binlog::row_value::Notice;
use super::error::classify_mysql;
use super::select_value;
use super::setup;
use super::signal_table;
use crate::config::ConnectorConfig;
use crate::error::{Error, Result};
use crate::event::TableId;
use crate::snapshot::backend::{ChunkError, ChunkRead, ChunkReader, Planned, SnapshotBackend};
use crate::snapshot::driver::{ChunkRequest, SnapRow};
use crate::snapshot::visibility::Conflict;
use catalog::TablePlan;
use chunk_sql::{chunk_query, is_shape_error, key_bound_text, wire_text};

/// How the snapshot reads a MySQL/MariaDB database ([`SnapshotBackend`]): a connection of its
/// own, each table's plan and prepared chunk statements.
pub struct MysqlBackend {
    conn: Conn,
    cfg: Arc<ConnectorConfig>,
    charsets: CharsetMap,
    mariadb: bool,
    plans: HashMap<TableId, TablePlan>,
    /// Prepared chunk statements by table and text (a handful per table: the bound's shape
    /// varies), closed when the table's plan is forgotten. The server limits prepared
    /// statements (`max_prepared_stmt_count`), so none is prepared per chunk.
    statements: HashMap<(TableId, String), Statement>,
    /// The watermark's prepared `INSERT ... ON DUPLICATE KEY UPDATE`.
    watermark: Statement,
    /// Value notices already logged (once per table and kind, as the binlog decoder does).
    warned: std::collections::HashSet<(TableId, Notice)>,
}

/// The snapshot reader of a MySQL connector.
pub type MysqlSnapshot = ChunkReader<MysqlBackend>;

impl MysqlBackend {
    /// Opens the snapshot's connections, one per chunk read at once (`snapshot.parallelism`),
    /// and makes sure the signal table exists.
    pub async fn open(
        cfg: &Arc<ConnectorConfig>,
        charsets: CharsetMap,
        mariadb: bool,
    ) -> Result<MysqlSnapshot> {
        let mut backends = Vec::with_capacity(cfg.snapshot.parallelism);
        for i in 0..cfg.snapshot.parallelism.max(1) {
            backends.push(Self::connect(cfg, charsets.clone(), mariadb, i == 0).await?);
        }
        Ok(ChunkReader::new(&cfg.name, backends))
    }

    /// One session of the snapshot (`first`: the one that makes sure the signal table exists).
    async fn connect(
        cfg: &Arc<ConnectorConfig>,
        charsets: CharsetMap,
        mariadb: bool,
        first: bool,
    ) -> Result<Self> {
        let mut conn = setup::connect(cfg).await?;
        // TIMESTAMP as UTC (as the binlog has it), text as the columns' own bytes.
        conn.query_drop("SET SESSION time_zone = '+00:00', SESSION character_set_results = NULL")
            .await
            .map_err(|e| {
                classify_mysql(
                    format!("connector {}: setting up the snapshot session", cfg.name),
                    e,
                )
            })?;
        if first {
            signal_table::ensure(&mut conn, cfg).await?;
        }
        let watermark = signal_table::prepare_watermark(&mut conn, cfg).await?;
        Ok(Self {
            conn,
            cfg: cfg.clone(),
            charsets,
            mariadb,
            plans: HashMap::new(),
            statements: HashMap::new(),
            watermark,
            warned: std::collections::HashSet::new(),
        })
    }

    /// Runs a catalog query once (prepared, then closed: a long-lived connection must not
    /// accumulate statements).
    async fn catalog<T, P>(
        &mut self,
        sql: &str,
        params: P,
        table: &TableId,
        what: &str,
    ) -> Result<Vec<T>>
    where
        T: mysql_async::prelude::FromRow + Send + 'static,
        P: Into<mysql_async::Params> + Send,
    {
        let ctx = self.ctx(table, what);
        let stmt = self
            .conn
            .prep(sql)
            .await
            .map_err(|e| classify_mysql(ctx.clone(), e))?;
        let rows = self
            .conn
            .exec(&stmt, params)
            .await
            .map_err(|e| classify_mysql(ctx.clone(), e));
        self.conn
            .close(stmt)
            .await
            .map_err(|e| classify_mysql(ctx, e))?;
        rows
    }

    fn ctx(&self, table: &TableId, what: &str) -> String {
        format!("connector {}: snapshot of {table}: {what}", self.cfg.name)
    }

    /// Decodes selected rows of `table` (chunk `chunk`), with their keys' texts.
    fn snap_rows(
        &mut self,
        table: &TableId,
        chunk: u64,
        rows: Vec<mysql_async::Row>,
    ) -> Result<Vec<SnapRow>, ChunkError> {
        let plan = &self.plans[table];
        let mut selected = Vec::with_capacity(rows.len());
        let mut notices = Vec::new();
        for row in rows {
            let wire = row.unwrap();
            if wire.len() != plan.columns.len() {
                return Err(ChunkError::Stop(
                    Error::definite(self.ctx(
                        table,
                        &format!(
                            "chunk {}: a row has {} columns, the table {}",
                            chunk,
                            wire.len(),
                            plan.columns.len()
                        ),
                    ))
                    .for_table(table),
                ));
            }
            let mut values = Vec::with_capacity(wire.len());
            let mut key_text = vec![String::new(); plan.key_names.len()];
            for (i, (w, col)) in wire.into_iter().zip(&plan.columns).enumerate() {
                let key_at = plan.key_slot[i];
                let text = key_at.map(|_| wire_text(&w, col));
                let v =
                    select_value::decode(w, col, &self.charsets, &mut notices).map_err(|e| {
                        Error::definite(self.ctx(table, &format!("chunk {}: {e}", chunk)))
                            .for_table(table)
                    })?;
                if let (Some(k), Some(text)) = (key_at, text) {
                    key_text[k] = key_bound_text(&v, text);
                }
                values.push(v);
            }
            selected.push(SnapRow {
                row: values,
                key_text,
            });
        }
        for n in notices {
            if self.warned.insert((table.clone(), n.clone())) {
                tracing::warn!(connector = %self.cfg.name, table = %table, notice = %n,
                    "snapshot value notice, as the binlog decoder gives it (shown once per table)");
            }
        }
        Ok(selected)
    }

    /// Runs the chunk statement in a `READ ONLY` transaction (rolled back if it fails).
    async fn select_read_only(
        &mut self,
        stmt: &Statement,
        params: Vec<Wire>,
    ) -> std::result::Result<Vec<mysql_async::Row>, mysql_async::Error> {
        self.conn.query_drop("START TRANSACTION READ ONLY").await?;
        match self.conn.exec(stmt, params).await {
            Ok(rows) => {
                self.conn.query_drop("COMMIT").await?;
                Ok(rows)
            }
            Err(e) => {
                if let Err(r) = self.conn.query_drop("ROLLBACK").await {
                    tracing::debug!(connector = %self.cfg.name, error = %r, "rolling back a failed chunk");
                }
                Err(e)
            }
        }
    }
}

impl SnapshotBackend for MysqlBackend {
    type Stream = ();
    /// The prepared chunk statement and its parameters.
    type Query = (Statement, Vec<Wire>);

    async fn plan(&mut self, table: &TableId, _stream: &mut ()) -> Result<Option<Planned>> {
        self.make_plan(table).await
    }

    async fn prepare_chunk(
        &mut self,
        request: &ChunkRequest,
    ) -> Result<(Statement, Vec<Wire>), ChunkError> {
        let table = &request.table;
        let ctx = |what: &str| self.ctx(table, what);
        let (sql, params) = chunk_query(&self.plans[table], request, &ctx).map_err(|error| {
            ChunkError::Unreadable {
                error,
                shape_changed: false,
            }
        })?;
        let key = (table.clone(), sql);
        if let Some(stmt) = self.statements.get(&key) {
            return Ok((stmt.clone(), params));
        }
        match self.conn.prep(key.1.as_str()).await {
            Ok(stmt) => {
                self.statements.insert(key, stmt.clone());
                Ok((stmt, params))
            }
            Err(e) => {
                let shape_changed = is_shape_error(&e);
                Err(ChunkError::Unreadable {
                    error: classify_mysql(self.ctx(table, "preparing the chunk statement"), e),
                    shape_changed,
                })
            }
        }
    }

    async fn write_watermark(&mut self, text: &str) -> Result<()> {
        signal_table::write_watermark(&mut self.conn, &self.cfg, &self.watermark, text).await
    }

    async fn read_chunk(
        &mut self,
        request: &ChunkRequest,
        (stmt, params): (Statement, Vec<Wire>),
    ) -> Result<ChunkRead, ChunkError> {
        let table = &request.table;
        // The chunk reads in a read-only transaction: whatever a signed condition holds, it
        // cannot write.
        let rows = match self.select_read_only(&stmt, params).await {
            Ok(rows) => rows,
            Err(e) => {
                let shape_changed = is_shape_error(&e);
                let error = classify_mysql(
                    self.ctx(
                        table,
                        &format!(
                            "selecting a chunk after key {}",
                            request.after.as_deref().map_or_else(
                                || "(none: the first chunk)".to_string(),
                                crate::snapshot::progress::key_text
                            )
                        ),
                    ),
                    e,
                );
                return Err(ChunkError::Unreadable {
                    error,
                    shape_changed,
                });
            }
        };
        let selected = self.snap_rows(table, request.id, rows)?;
        Ok(ChunkRead {
            schema: self.plans[table].schema.clone(),
            rows: selected,
            seen: None,
        })
    }

    /// MySQL engine commits are visible in binlog order (see the module doc): none.
    fn conflict(&mut self, _read: &ChunkRead, _stream: &mut ()) -> Option<Conflict> {
        None
    }

    /// The keys at each range's share of the statistics' row count, read with `ORDER BY key
    /// LIMIT 1 OFFSET n` (exact, and a walk of the key index up to the offset: MySQL has no
    /// block sampling; for 1,000,000 rows split in 4 this reads 1.5 million index entries,
    /// once per table).
    async fn split_bounds(
        &mut self,
        table: &TableId,
        parts: usize,
        estimate: f64,
    ) -> Result<Vec<Vec<String>>> {
        let Some(plan) = self.plans.get(table) else {
            return Ok(Vec::new());
        };
        if estimate < 1.0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{} ORDER BY {} LIMIT 1 OFFSET ?",
            plan.select_from,
            plan.key_names.join(", ")
        );
        let ctx = self.ctx(table, "finding key bounds to split it");
        let stmt = self
            .conn
            .prep(sql.as_str())
            .await
            .map_err(|e| classify_mysql(ctx.clone(), e))?;
        let mut bounds: Vec<Vec<String>> = Vec::with_capacity(parts);
        for i in 1..parts {
            let offset = (estimate * i as f64 / parts as f64) as u64;
            let rows: Vec<mysql_async::Row> = match self.conn.exec(&stmt, (offset,)).await {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = self.conn.close(stmt).await;
                    return Err(classify_mysql(ctx, e));
                }
            };
            let key = match self.snap_rows(table, 0, rows) {
                Ok(rows) => rows.into_iter().next().map(|r| r.key_text),
                Err(ChunkError::Stop(e) | ChunkError::Unreadable { error: e, .. }) => {
                    let _ = self.conn.close(stmt).await;
                    return Err(e);
                }
            };
            match key {
                Some(k) if bounds.last() != Some(&k) => bounds.push(k),
                Some(_) => {}
                // Fewer rows than the estimate: the ranges so far cover the table.
                None => break,
            }
        }
        self.conn
            .close(stmt)
            .await
            .map_err(|e| classify_mysql(ctx, e))?;
        Ok(bounds)
    }

    async fn forget_plan(&mut self, table: &TableId) {
        self.plans.remove(table);
        let stale: Vec<(TableId, String)> = self
            .statements
            .keys()
            .filter(|(t, _)| t == table)
            .cloned()
            .collect();
        for key in stale {
            if let Some(stmt) = self.statements.remove(&key) {
                if let Err(e) = self.conn.close(stmt).await {
                    tracing::debug!(connector = %self.cfg.name, error = %e, "closing a prepared statement");
                }
            }
        }
    }
}
