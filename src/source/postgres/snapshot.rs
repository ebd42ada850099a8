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

use tokio_postgres::{Client, SimpleQueryMessage};

use super::pgoutput::RelationColumn;
use super::relations::{decode_text_row, Relations};
use super::setup::{self, quote_ident};
use crate::config::ConnectorConfig;
use crate::error::{classify_postgres, Error, Result};
use crate::event::{TableId, TableSchema};
use crate::snapshot::driver::{Driver, SnapRow};
use crate::snapshot::SnapshotProgress;

/// The prefix of tidemark's logical decoding messages.
pub const MESSAGE_PREFIX: &str = "tidemark";

/// Session settings: the replication session's text formats, and watermarks flushed at
/// commit (logical decoding only sends flushed WAL; a server with `synchronous_commit=off`
/// would otherwise hold a watermark back up to `wal_writer_delay`).
const SESSION_OPTIONS: &str = "-c datestyle=ISO,MDY -c intervalstyle=iso_8601 -c timezone=UTC \
     -c bytea_output=hex -c extra_float_digits=3 -c synchronous_commit=on";

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

/// The snapshot of one PostgreSQL connector: the shared [`Driver`] and how this database is
/// read.
pub struct PgSnapshot {
    client: Client,
    connector: String,
    plans: HashMap<TableId, TablePlan>,
    pub driver: Driver,
}

/// A string literal safe under any `standard_conforming_strings`.
fn quote_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

impl PgSnapshot {
    /// Starts (or resumes) the snapshot described by `progress`.
    pub async fn open(cfg: &Arc<ConnectorConfig>, progress: SnapshotProgress) -> Result<Self> {
        let client = setup::connect_with_options(cfg, Some(SESSION_OPTIONS)).await?;
        Ok(Self {
            client,
            connector: cfg.name.clone(),
            plans: HashMap::new(),
            driver: Driver::new(cfg, progress),
        })
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
        self.driver.planned(table, key_columns.clone(), estimate);
        self.plans.insert(
            table.clone(),
            TablePlan {
                schema,
                key_columns,
                select_from,
                key_list,
                key_types,
            },
        );
        Ok(())
    }

    async fn watermark(&self, id: u64, kind: &str) -> Result<()> {
        let content = self.driver.watermark_text(id, kind);
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

    /// Forgets how `table` is read (its shape changed); the next chunk plans it again.
    /// Chunks already selected keep the shape they were read with.
    pub fn forget_plan(&mut self, table: &TableId) {
        if self.driver.current_table() == Some(table) {
            self.plans.remove(table);
        }
    }

    /// Selects the next chunk between a low and a high watermark, and arms it.
    pub async fn next_chunk(&mut self, relations: &mut Relations) -> Result<()> {
        let Some(request) = self.driver.next_request() else {
            return Ok(());
        };
        let table = request.table.clone();
        if let Err(e) = self.plan(relations, &table).await {
            return self.driver.plan_failed(e);
        }
        let id = request.id;
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
        let sql = format!(
            "{}{bound} ORDER BY {} LIMIT {}",
            plan.select_from, plan.key_list, request.limit
        );
        let rows: Vec<tokio_postgres::SimpleQueryRow> = self
            .client
            .simple_query(&sql)
            .await
            .map_err(|e| {
                classify_postgres(
                    format!(
                        "connector {}: snapshot of {table}: selecting a chunk after key {:?}",
                        self.connector, request.after
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
            selected.push(SnapRow { row, key_text });
        }
        self.watermark(id, "high").await?;
        let schema = plan.schema.clone();
        self.driver.arm(request, schema, selected);
        Ok(())
    }
}
