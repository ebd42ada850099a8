//! The MySQL/MariaDB side of the DBLog snapshot (the algorithm and its correctness argument
//! are in [`crate::snapshot`]; the bookkeeping in [`crate::snapshot::driver`]).
//!
//! Per chunk, on a connection of its own, each statement its own autocommit transaction:
//! the low watermark is written into the signal table ([`super::signal_table`]), the chunk is
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
//! turned into the event schema by the binlog decoder's own [`table_schema`]; values are read
//! in the binary protocol and decoded by [`super::select_value`] to the values the binlog
//! decoder makes of the same data.
//!
//! Key bounds are bound parameters: integers as integers, DECIMAL through
//! `CAST(? AS DECIMAL(p,s))` (a string would compare as a double), binary strings as bytes
//! (their text form is hex), others as text. Composite keys are compared as
//! `(a > ?) OR (a = ? AND b > ?)`, which both servers turn into index ranges. Keys MySQL
//! orders differently from how it compares them (ENUM, SET), and BIT, JSON, GEOMETRY keys,
//! are refused with the table's name.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Statement, Value as Wire};

use super::charset::CharsetMap;
use super::column_type::{self as t, BinlogType};
use super::decoder::table_schema;
use super::row_value::Notice;
use super::select_value;
use super::setup::{self, quote_ident};
use super::signal_table;
use super::table_map::{ColumnMeta, TableMap};
use crate::config::ConnectorConfig;
use crate::error::{classify_mysql, Error, Result};
use crate::event::{TableId, TableSchema};
use crate::snapshot::driver::{ChunkRequest, Driver, SnapRow};
use crate::value::Value;

/// How a key column's bound is written and bound.
#[derive(Debug, Clone, PartialEq)]
enum KeyKind {
    Int,
    Float,
    /// `CAST(? AS DECIMAL(p,s))`.
    Decimal(u16, u16),
    /// Text form is hex.
    Binary,
    Text,
}

struct TablePlan {
    schema: Arc<TableSchema>,
    columns: Vec<ColumnMeta>,
    /// Per column: its place in the key, if it is a key column.
    key_slot: Vec<Option<usize>>,
    key_kinds: Vec<KeyKind>,
    /// `SELECT cols FROM db.t`.
    select_from: String,
    /// Quoted key column names.
    key_names: Vec<String>,
}

pub struct MysqlSnapshot {
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
    /// The table whose plan was made anew after its chunk query named a column that is gone
    /// (a second such failure skips the task).
    replanned: Option<TableId>,
}

impl MysqlSnapshot {
    /// Opens the snapshot's connection and makes sure the signal table exists.
    pub async fn open(
        cfg: &Arc<ConnectorConfig>,
        charsets: CharsetMap,
        mariadb: bool,
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
        signal_table::ensure(&mut conn, cfg).await?;
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
            replanned: None,
        })
    }

    /// Forgets how `table` is read (its shape changed); the next chunk plans it again.
    pub async fn forget_plan(&mut self, table: &TableId) {
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

    async fn plan(&mut self, driver: &mut Driver, table: &TableId) -> Result<()> {
        if self.plans.contains_key(table) {
            return Ok(());
        }
        type ColumnRow = (
            String,
            String,
            String,
            String,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<u32>,
        );
        let rows: Vec<ColumnRow> = self
            .catalog(
                "SELECT c.COLUMN_NAME, LOWER(c.DATA_TYPE), c.COLUMN_TYPE, c.IS_NULLABLE, c.CHARACTER_OCTET_LENGTH, \
                 c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.DATETIME_PRECISION, k.ID \
                 FROM information_schema.COLUMNS c LEFT JOIN information_schema.COLLATIONS k \
                 ON k.COLLATION_NAME = c.COLLATION_NAME \
                 WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION",
                (table.schema.clone(), table.table.clone()),
                table,
                "reading its columns",
            )
            .await?;
        if rows.is_empty() {
            return Err(Error::definite(self.ctx(table, "the table does not exist")));
        }
        let mut columns = Vec::with_capacity(rows.len());
        for (name, data_type, column_type, nullable, octets, precision, scale, fsp, collation) in
            rows
        {
            let meta = column_meta(
                &data_type,
                &column_type,
                octets,
                precision,
                scale,
                fsp,
                self.mariadb,
            )
            .map_err(|e| Error::definite(self.ctx(table, &format!("column `{name}`: {e}"))))?;
            let (code, meta, unsigned, labels) = meta;
            let binary_type = matches!(
                data_type.as_str(),
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            );
            columns.push(ColumnMeta {
                name,
                ty: BinlogType {
                    code,
                    wire_code: code,
                    meta,
                },
                nullable: nullable.eq_ignore_ascii_case("YES"),
                unsigned,
                collation: collation.or(binary_type.then_some(63)),
                labels,
                geometry_type: None,
            });
        }
        let key_names: Vec<String> = self
            .catalog(
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
                (table.schema.clone(), table.table.clone()),
                table,
                "reading its primary key",
            )
            .await?;
        let key_columns: Vec<usize> = key_names
            .iter()
            .filter_map(|k| columns.iter().position(|c| &c.name == k))
            .collect();
        if key_columns.is_empty() {
            return Err(Error::definite(self.ctx(
                table,
                "the table has no primary key, which the chunked snapshot orders and resumes by; \
                 add one, or set `snapshot: {mode: never}` in the connector file",
            )));
        }
        let mut key_kinds = Vec::new();
        for i in &key_columns {
            let c = &columns[*i];
            key_kinds.push(key_kind(c, &self.charsets).ok_or_else(|| {
                Error::definite(self.ctx(
                    table,
                    &format!(
                        "its primary key column `{}` is a {}, which the chunked snapshot cannot order by \
                         (set `snapshot: {{mode: never}}` in the connector file)",
                        c.name,
                        t::type_name(c.ty.code)
                    ),
                ))
            })?);
        }
        let estimate: Option<u64> = self
            .catalog::<Option<u64>, _>(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (table.schema.clone(), table.table.clone()),
                table,
                "reading its row estimate",
            )
            .await?
            .into_iter()
            .next()
            .flatten();
        let map = TableMap {
            table_id: 0,
            schema: table.schema.clone(),
            table: table.table.clone(),
            columns,
            primary_key: key_columns.clone(),
            has_names: true,
        };
        let schema = Arc::new(table_schema(table, &map, &self.charsets));
        let select_list = map
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let select_from = format!(
            "SELECT {select_list} FROM {}.{}",
            quote_ident(&table.schema),
            quote_ident(&table.table)
        );
        driver.planned(table, key_columns.clone(), estimate.unwrap_or(0) as f64);
        self.plans.insert(
            table.clone(),
            TablePlan {
                schema,
                key_names: key_columns
                    .iter()
                    .map(|i| quote_ident(&map.columns[*i].name))
                    .collect(),
                key_slot: (0..map.columns.len())
                    .map(|i| key_columns.iter().position(|k| *k == i))
                    .collect(),
                columns: map.columns,
                key_kinds,
                select_from,
            },
        );
        Ok(())
    }

    /// Selects the next chunk between a low and a high watermark, and arms it.
    pub async fn next_chunk(&mut self, driver: &mut Driver) -> Result<()> {
        let Some(request) = driver.next_request() else {
            return Ok(());
        };
        let table = request.table.clone();
        if let Err(e) = self.plan(driver, &table).await {
            return driver.plan_failed(e);
        }
        let (sql, params) = match self.chunk_query(&request) {
            Ok(q) => q,
            Err(e) => return self.chunk_failed(driver, &table, e, false).await,
        };
        let key = (table.clone(), sql);
        if !self.statements.contains_key(&key) {
            match self.conn.prep(key.1.as_str()).await {
                Ok(stmt) => {
                    self.statements.insert(key.clone(), stmt);
                }
                Err(e) => {
                    let shape = is_shape_error(&e);
                    let e = classify_mysql(self.ctx(&table, "preparing the chunk statement"), e);
                    return self.chunk_failed(driver, &table, e, shape).await;
                }
            }
        }
        let stmt = self.statements[&key].clone();
        self.write_watermark(&driver.watermark_text(request.id, "low"))
            .await?;
        // The chunk reads in a read-only transaction: whatever a signed condition holds, it
        // cannot write.
        let rows = match self.select_read_only(&stmt, params).await {
            Ok(rows) => rows,
            Err(e) => {
                let shape = is_shape_error(&e);
                let e = classify_mysql(
                    self.ctx(
                        &table,
                        &format!("selecting a chunk after key {:?}", request.after),
                    ),
                    e,
                );
                return self.chunk_failed(driver, &table, e, shape).await;
            }
        };
        let plan = &self.plans[&table];
        let mut selected = Vec::with_capacity(rows.len());
        let mut notices = Vec::new();
        for row in rows {
            let wire = row.unwrap();
            if wire.len() != plan.columns.len() {
                return Err(Error::definite(self.ctx(
                    &table,
                    &format!(
                        "chunk {}: a row has {} columns, the table {}",
                        request.id,
                        wire.len(),
                        plan.columns.len()
                    ),
                )));
            }
            let mut values = Vec::with_capacity(wire.len());
            let mut key_text = vec![String::new(); plan.key_names.len()];
            for (i, (w, col)) in wire.into_iter().zip(&plan.columns).enumerate() {
                let key_at = plan.key_slot[i];
                let text = key_at.map(|_| wire_text(&w, col));
                let v =
                    select_value::decode(w, col, &self.charsets, &mut notices).map_err(|e| {
                        Error::definite(self.ctx(&table, &format!("chunk {}: {e}", request.id)))
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
                tracing::warn!(connector = %self.cfg.name, table = %table, notice = ?n,
                    "snapshot value notice, as the binlog decoder gives it (shown once per table)");
            }
        }
        let schema = plan.schema.clone();
        self.write_watermark(&driver.watermark_text(request.id, "high"))
            .await?;
        driver.arm(request, schema, selected, None);
        self.replanned = None;
        Ok(())
    }

    /// A chunk query failed: a transient error is returned (the connector restarts); a query
    /// that names a column the table no longer has (`shape`) plans the table anew and reads the
    /// chunk again, once; any other definite error skips the task, not the stream.
    async fn chunk_failed(
        &mut self,
        driver: &mut Driver,
        table: &TableId,
        e: Error,
        shape: bool,
    ) -> Result<()> {
        if e.is_transient() {
            return Err(e);
        }
        if shape && self.replanned.as_ref() != Some(table) {
            tracing::info!(connector = %self.cfg.name, table = %table, error = %e,
                "the table changed shape under the snapshot; planning it anew and reading the chunk again");
            self.replanned = Some(table.clone());
            self.forget_plan(table).await;
            return Ok(());
        }
        self.replanned = None;
        driver.chunk_failed(&e);
        Ok(())
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

    async fn write_watermark(&mut self, text: &str) -> Result<()> {
        signal_table::write_watermark(&mut self.conn, &self.cfg, &self.watermark, text).await
    }

    /// The chunk's statement and its parameters.
    fn chunk_query(&self, request: &ChunkRequest) -> Result<(String, Vec<Wire>)> {
        let plan = &self.plans[&request.table];
        let mut params = Vec::new();
        let mut conditions = Vec::new();
        let bound = |values: &[String],
                     strict: &str,
                     last: &str,
                     params: &mut Vec<Wire>|
         -> Result<String> {
            if values.len() != plan.key_names.len() {
                return Err(Error::definite(self.ctx(
                    &request.table,
                    &format!(
                        "a key bound has {} values, the primary key {} columns",
                        values.len(),
                        plan.key_names.len()
                    ),
                )));
            }
            let mut wires = Vec::new();
            for (v, kind) in values.iter().zip(&plan.key_kinds) {
                wires.push(
                    bind(v, kind).map_err(|e| Error::definite(self.ctx(&request.table, &e)))?,
                );
            }
            Ok(tuple_condition(
                &plan.key_names,
                &plan.key_kinds,
                &wires,
                strict,
                last,
                params,
            ))
        };
        match (&request.after, &request.from) {
            (Some(after), _) => conditions.push(bound(after, ">", ">", &mut params)?),
            (None, Some(from)) => conditions.push(bound(from, ">", ">=", &mut params)?),
            (None, None) => {}
        }
        if let Some(to) = &request.to {
            conditions.push(bound(to, "<", "<=", &mut params)?);
        }
        if let Some(condition) = &request.condition {
            conditions.push(format!("({condition})"));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        Ok((
            format!(
                "{}{filter} ORDER BY {} LIMIT {}",
                plan.select_from,
                plan.key_names.join(", "),
                request.limit
            ),
            params,
        ))
    }
}

/// `(k1, .., kn) <op> (v1, .., vn)` as `k1 <strict> v1 OR (k1 = v1 AND k2 <strict> v2) OR ..`,
/// the last column compared with `last`; pushes the parameters in order.
fn tuple_condition(
    names: &[String],
    kinds: &[KeyKind],
    values: &[Wire],
    strict: &str,
    last: &str,
    params: &mut Vec<Wire>,
) -> String {
    let placeholder = |kind: &KeyKind| match kind {
        KeyKind::Decimal(p, s) => format!("CAST(? AS DECIMAL({p},{s}))"),
        _ => "?".to_string(),
    };
    let n = names.len();
    let mut terms = Vec::with_capacity(n);
    for i in 0..n {
        let mut parts = Vec::with_capacity(i + 1);
        for j in 0..i {
            parts.push(format!("{} = {}", names[j], placeholder(&kinds[j])));
            params.push(values[j].clone());
        }
        let op = if i + 1 == n { last } else { strict };
        parts.push(format!("{} {op} {}", names[i], placeholder(&kinds[i])));
        params.push(values[i].clone());
        terms.push(format!("({})", parts.join(" AND ")));
    }
    format!("({})", terms.join(" OR "))
}

/// A key bound's text as a parameter of its column's kind.
fn bind(text: &str, kind: &KeyKind) -> std::result::Result<Wire, String> {
    Ok(match kind {
        KeyKind::Int => match text.trim().parse::<i64>() {
            Ok(i) => Wire::Int(i),
            Err(_) => Wire::UInt(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("key bound `{text}` is not an integer"))?,
            ),
        },
        KeyKind::Float => Wire::Double(
            text.trim()
                .parse::<f64>()
                .map_err(|_| format!("key bound `{text}` is not a number"))?,
        ),
        KeyKind::Binary => Wire::Bytes(
            hex_decode(text)
                .ok_or_else(|| format!("key bound `{text}` of a binary key column is not hex"))?,
        ),
        KeyKind::Decimal(..) | KeyKind::Text => Wire::Bytes(text.as_bytes().to_vec()),
    })
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let t = text.trim().trim_start_matches("0x");
    if t.len() % 2 != 0 {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The text of a key value as the server sent it (dates and times in the form the server
/// parses back).
fn wire_text(w: &Wire, col: &ColumnMeta) -> String {
    match w {
        Wire::NULL => String::new(),
        Wire::Int(i) => i.to_string(),
        Wire::UInt(u) => u.to_string(),
        Wire::Float(f) => f.to_string(),
        Wire::Double(d) => d.to_string(),
        Wire::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Wire::Date(y, m, d, ..) if matches!(col.ty.code, t::DATE | t::NEWDATE) => {
            format!("{y:04}-{m:02}-{d:02}")
        }
        Wire::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Wire::Time(neg, days, h, m, s, us) => format!(
            "{}{}:{m:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u64::from(*days) * 24 + u64::from(*h)
        ),
    }
}

/// The stored text of a key value: decoded text for character columns (the wire has the
/// column's charset), hex for binary ones, the server's text otherwise.
fn key_bound_text(v: &Value, wire_text: String) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        _ => wire_text,
    }
}

fn key_kind(c: &ColumnMeta, charsets: &CharsetMap) -> Option<KeyKind> {
    Some(match c.ty.code {
        t::TINY | t::SHORT | t::INT24 | t::LONG | t::LONGLONG | t::YEAR => KeyKind::Int,
        t::FLOAT | t::DOUBLE => KeyKind::Float,
        t::NEWDECIMAL => KeyKind::Decimal(c.ty.meta >> 8, c.ty.meta & 0xff),
        _ if c.ty.is_character(false) => match super::row_value::column_charset(c, charsets) {
            super::charset::Charset::Binary | super::charset::Charset::Other(_) => KeyKind::Binary,
            _ => KeyKind::Text,
        },
        t::DATE
        | t::NEWDATE
        | t::TIME
        | t::TIME2
        | t::DATETIME
        | t::DATETIME2
        | t::TIMESTAMP
        | t::TIMESTAMP2 => KeyKind::Text,
        _ => return None,
    })
}

type Meta = (u8, u16, bool, Vec<Vec<u8>>);

/// A column's TABLE_MAP type code, metadata, signedness and ENUM/SET labels, from
/// `information_schema.COLUMNS`.
fn column_meta(
    data_type: &str,
    column_type: &str,
    octets: Option<u64>,
    precision: Option<u64>,
    scale: Option<u64>,
    fsp: Option<u64>,
    mariadb: bool,
) -> std::result::Result<Meta, String> {
    let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
    let octets16 = u16::try_from(octets.unwrap_or(0)).unwrap_or(u16::MAX);
    let fsp = fsp.unwrap_or(0) as u16;
    let pack = |n: u16| (t::BLOB, n, false, Vec::new());
    Ok(match data_type {
        "tinyint" => (t::TINY, 0, unsigned, Vec::new()),
        "smallint" => (t::SHORT, 0, unsigned, Vec::new()),
        "mediumint" => (t::INT24, 0, unsigned, Vec::new()),
        "int" | "integer" => (t::LONG, 0, unsigned, Vec::new()),
        "bigint" => (t::LONGLONG, 0, unsigned, Vec::new()),
        "float" => (t::FLOAT, 4, unsigned, Vec::new()),
        "double" | "real" | "double precision" => (t::DOUBLE, 8, unsigned, Vec::new()),
        "decimal" | "numeric" => {
            let p = precision.unwrap_or(10) as u16;
            let s = scale.unwrap_or(0) as u16;
            (t::NEWDECIMAL, p << 8 | s, unsigned, Vec::new())
        }
        "year" => (t::YEAR, 0, false, Vec::new()),
        "date" => (t::NEWDATE, 0, false, Vec::new()),
        "time" => (t::TIME2, fsp, false, Vec::new()),
        "datetime" => (t::DATETIME2, fsp, false, Vec::new()),
        "timestamp" => (t::TIMESTAMP2, fsp, false, Vec::new()),
        "bit" => {
            let m = precision.unwrap_or(1) as u16;
            (t::BIT, (m / 8) << 8 | (m % 8), false, Vec::new())
        }
        "char" | "binary" => (t::STRING, octets16, false, Vec::new()),
        "varchar" | "varbinary" => (t::VARCHAR, octets16, false, Vec::new()),
        "tinytext" | "tinyblob" => pack(1),
        "text" | "blob" => pack(2),
        "mediumtext" | "mediumblob" => pack(3),
        "longtext" | "longblob" => pack(4),
        // MariaDB's JSON is LONGTEXT (and information_schema says so); MySQL's is binary JSON.
        "json" if mariadb => pack(4),
        "json" => (t::JSON, 4, false, Vec::new()),
        "enum" | "set" => {
            let labels = parse_labels(column_type).ok_or_else(|| format!("cannot read the labels of `{column_type}`"))?;
            let bytes = if data_type == "enum" {
                if labels.len() > 255 { 2 } else { 1 }
            } else {
                labels.len().div_ceil(8).clamp(1, 8) as u16
            };
            let code = if data_type == "enum" { t::ENUM } else { t::SET };
            (code, bytes, false, labels)
        }
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon"
        | "geometrycollection" | "geomcollection" => (t::GEOMETRY, 4, false, Vec::new()),
        other => {
            return Err(format!(
                "type `{other}` cannot be read by the snapshot yet (set `snapshot: {{mode: never}}` in the connector file)"
            ))
        }
    })
}

/// The labels of `enum('a','b''c')` / `set(...)` as written in `COLUMN_TYPE`.
fn parse_labels(column_type: &str) -> Option<Vec<Vec<u8>>> {
    let open = column_type.find('(')?;
    let inner = column_type.get(open + 1..column_type.rfind(')')?)?;
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        match chars.next() {
            None => break,
            Some(',') | Some(' ') => continue,
            Some('\'') => {
                let mut label = String::new();
                loop {
                    match chars.next()? {
                        '\'' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            label.push('\'');
                        }
                        '\'' => break,
                        '\\' => label.push(chars.next()?),
                        c => label.push(c),
                    }
                }
                labels.push(label.into_bytes());
            }
            Some(_) => return None,
        }
    }
    Some(labels)
}

/// Whether a statement failed because the table's columns are not what its plan says (a
/// column dropped or renamed since: ER_BAD_FIELD_ERROR).
fn is_shape_error(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1054)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_bounds_expand_to_index_ranges() {
        let names = vec!["`a`".to_string(), "`b`".to_string()];
        let kinds = vec![KeyKind::Int, KeyKind::Decimal(10, 2)];
        let values = vec![Wire::Int(1), Wire::Bytes(b"2.50".to_vec())];
        let mut params = Vec::new();
        let sql = tuple_condition(&names, &kinds, &values, ">", ">", &mut params);
        assert_eq!(
            sql,
            "((`a` > ?) OR (`a` = ? AND `b` > CAST(? AS DECIMAL(10,2))))"
        );
        assert_eq!(
            params,
            vec![Wire::Int(1), Wire::Int(1), Wire::Bytes(b"2.50".to_vec())]
        );
        let mut params = Vec::new();
        assert_eq!(
            tuple_condition(
                &names[..1],
                &kinds[..1],
                &values[..1],
                "<",
                "<=",
                &mut params
            ),
            "((`a` <= ?))"
        );
    }

    #[test]
    fn bounds_bind_by_kind() {
        assert_eq!(
            bind("18446744073709551615", &KeyKind::Int).unwrap(),
            Wire::UInt(u64::MAX)
        );
        assert_eq!(bind("-5", &KeyKind::Int).unwrap(), Wire::Int(-5));
        assert!(bind("x", &KeyKind::Int).is_err());
        assert_eq!(
            bind("00ff", &KeyKind::Binary).unwrap(),
            Wire::Bytes(vec![0, 255])
        );
        assert!(bind("0f0", &KeyKind::Binary).is_err());
        assert_eq!(
            key_bound_text(&Value::Bytes(vec![0, 255]), String::new()),
            "00ff"
        );
    }

    #[test]
    fn labels_and_types_from_information_schema() {
        assert_eq!(
            parse_labels("enum('a','b''c','d\\\\e')").unwrap(),
            vec![b"a".to_vec(), b"b'c".to_vec(), b"d\\e".to_vec()]
        );
        assert_eq!(
            column_meta(
                "decimal",
                "decimal(10,2)",
                None,
                Some(10),
                Some(2),
                None,
                true
            )
            .unwrap()
            .1,
            10 << 8 | 2
        );
        assert_eq!(
            column_meta("bit", "bit(10)", None, Some(10), None, None, true)
                .unwrap()
                .1,
            1 << 8 | 2
        );
        assert_eq!(
            column_meta("json", "longtext", None, None, None, None, true)
                .unwrap()
                .0,
            t::BLOB
        );
        assert_eq!(
            column_meta("json", "json", None, None, None, None, false)
                .unwrap()
                .0,
            t::JSON
        );
        assert!(column_meta("inet6", "inet6", None, None, None, None, true).is_err());
        let (_, meta, unsigned, _) = column_meta(
            "bigint",
            "bigint(20) unsigned",
            None,
            Some(20),
            Some(0),
            None,
            true,
        )
        .unwrap();
        assert_eq!((meta, unsigned), (0, true));
    }

    #[test]
    fn wire_text_is_what_the_server_parses() {
        let c = |code| ColumnMeta::for_test(code, 0, false, None);
        assert_eq!(
            wire_text(&Wire::Date(2024, 2, 3, 0, 0, 0, 0), &c(t::NEWDATE)),
            "2024-02-03"
        );
        assert_eq!(
            wire_text(&Wire::Date(2024, 2, 3, 4, 5, 6, 7), &c(t::DATETIME2)),
            "2024-02-03 04:05:06.000007"
        );
        assert_eq!(
            wire_text(&Wire::Time(true, 1, 2, 3, 4, 0), &c(t::TIME2)),
            "-26:03:04.000000"
        );
    }
}
