//! The signal table: a small table the MySQL snapshot writes its watermarks to, and through
//! which anyone allowed to insert into it can ask a running connector for a snapshot (or to
//! pause, resume or stop one). Both reach the connector as rows events in its binlog, in
//! order with the changes; the table itself is never read.
//!
//! ```sql
//! CREATE TABLE tidemark_signal (
//!   id   VARCHAR(255) NOT NULL PRIMARY KEY,
//!   type VARCHAR(32)  NOT NULL,
//!   data TEXT
//! ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
//! ```
//!
//! - Watermark: `type = 'watermark'`, one row per connector (`id = 'watermark:<connector>'`)
//!   rewritten per watermark (`INSERT ... ON DUPLICATE KEY UPDATE`), in its own autocommit
//!   transaction; `data` is the snapshot driver's watermark text. The table stays one row per
//!   connector however long snapshots run.
//! - Signal: `type` is the action (`snapshot`, `pause`, `resume`, `stop`), `data` a JSON
//!   object with `connector` and, for a snapshot, optional `tables`, `from`, `to`
//!   ([`crate::snapshot::signal`]); `id` anything unique. Rows a connector has acted on are
//!   left in place (delete them at will: deletes are ignored).
//!
//! Privileges: INSERT and UPDATE on the table (and CREATE on its database for tidemark to
//! create it, `mysql.create_signal_table`).

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Statement};

use super::error::classify_mysql;
use super::setup::quote_ident;
use crate::config::ConnectorConfig;
use crate::error::{Error, Result};
use crate::event::{Row, TableId, TableSchema};
use crate::snapshot::signal::Signal;
use crate::value::Value;

/// The `type` of watermark rows.
pub const WATERMARK: &str = "watermark";

/// What a row of the signal table in the binlog means to a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalRow {
    /// A snapshot watermark's text (any connector's: the driver ignores others').
    Watermark(String),
    /// A signal (`type`, `data`).
    Signal { kind: String, data: String },
}

/// The table's name, quoted, for SQL.
fn qualified(t: &TableId) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.table))
}

pub fn create_sql(t: &TableId) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (id VARCHAR(255) NOT NULL PRIMARY KEY, type VARCHAR(32) NOT NULL, \
         data TEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        qualified(t)
    )
}

/// Reads a row image of the signal table (after an insert or update).
pub fn parse_row(schema: &TableSchema, row: &Row) -> Option<SignalRow> {
    let column = |name: &str| {
        let i = schema.columns.iter().position(|c| c.name == name)?;
        match row.get(i)? {
            Value::Text(t) => Some(t.clone()),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Null => Some(String::new()),
            _ => None,
        }
    };
    let kind = column("type")?;
    let data = column("data")?;
    Some(if kind == WATERMARK {
        SignalRow::Watermark(data)
    } else {
        SignalRow::Signal { kind, data }
    })
}

/// Makes sure the signal table exists: creates it when allowed and missing.
pub async fn ensure(conn: &mut Conn, cfg: &ConnectorConfig) -> Result<()> {
    let my = super::settings(cfg)?;
    let t = &my.signal_table;
    let exists: Option<String> = conn
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (t.schema.clone(), t.table.clone()),
        )
        .await
        .map_err(|e| classify_mysql(format!("connector {}: looking up the signal table {t}", cfg.name), e))?;
    if exists.is_some() {
        return Ok(());
    }
    let fix = format!(
        "create it (`{}`) and grant INSERT, UPDATE on it to {}, or set `mysql.signal_table` in {}",
        create_sql(t),
        cfg.connection.user,
        cfg.file.display()
    );
    if !my.create_signal_table {
        return Err(Error::definite(format!(
            "connector {}: the snapshot needs the signal table {t}, which does not exist: {fix}",
            cfg.name
        )));
    }
    conn.query_drop(create_sql(t)).await.map_err(|e| {
        let err = classify_mysql(
            format!("connector {}: creating the signal table {t} (the snapshot writes its watermarks there)", cfg.name),
            e,
        );
        if err.is_transient() {
            err
        } else {
            Error::definite(format!("{err}; {fix}"))
        }
    })?;
    tracing::info!(connector = %cfg.name, table = %t, "signal table created");
    Ok(())
}

/// Prepares the watermark write (kept for the connection's life).
pub async fn prepare_watermark(conn: &mut Conn, cfg: &ConnectorConfig) -> Result<Statement> {
    let t = &super::settings(cfg)?.signal_table;
    conn.prep(format!(
        "INSERT INTO {} (id, type, data) VALUES (?, '{WATERMARK}', ?) ON DUPLICATE KEY UPDATE data = VALUES(data)",
        qualified(t)
    ))
    .await
    .map_err(|e| {
        classify_mysql(
            format!("connector {}: preparing the snapshot watermark write into {t}", cfg.name),
            e,
        )
    })
}

/// Writes a watermark (its own autocommit transaction) with the statement of
/// [`prepare_watermark`].
pub async fn write_watermark(
    conn: &mut Conn,
    cfg: &ConnectorConfig,
    stmt: &Statement,
    text: &str,
) -> Result<()> {
    let t = &super::settings(cfg)?.signal_table;
    conn.exec_drop(stmt, (format!("{WATERMARK}:{}", cfg.name), text))
        .await
        .map_err(|e| {
            classify_mysql(
                format!(
                    "connector {}: writing a snapshot watermark into {} (needs INSERT and UPDATE on it)",
                    cfg.name, t
                ),
                e,
            )
        })
}

/// Inserts a signal for a running connector (`tidemark snapshot`).
pub async fn write_signal(conn: &mut Conn, cfg: &ConnectorConfig, signal: &Signal) -> Result<()> {
    let t = &super::settings(cfg)?.signal_table;
    let (kind, data) = signal.to_row();
    let id = format!("{}:{:016x}", cfg.name, rand::random::<u64>());
    conn.exec_drop(
        format!(
            "INSERT INTO {} (id, type, data) VALUES (?, ?, ?)",
            qualified(t)
        ),
        (id, kind, data),
    )
    .await
    .map_err(|e| {
        classify_mysql(
            format!(
                "connector {}: inserting a signal into {t} (needs INSERT on it)",
                cfg.name
            ),
            e,
        )
    })
}

/// Writes `signal` on a connection of its own (`tidemark snapshot`), creating the table when
/// allowed and missing; returns which table, for the user.
pub async fn write(cfg: &ConnectorConfig, signal: &Signal) -> Result<String> {
    let mut conn = super::setup::connect(cfg).await?;
    ensure(&mut conn, cfg).await?;
    write_signal(&mut conn, cfg, signal).await?;
    if let Err(e) = conn.disconnect().await {
        tracing::debug!(error = %e, "closing the connection");
    }
    Ok(format!("into {}", super::settings(cfg)?.signal_table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ColumnDef;
    use crate::value::ColumnType;

    #[test]
    fn rows_are_watermarks_or_signals() {
        let text = |name: &str| ColumnDef {
            name: name.into(),
            column_type: ColumnType::Text,
            nullable: true,
        };
        let schema = TableSchema {
            id: TableId::new("db", "tidemark_signal"),
            columns: vec![text("id"), text("type"), text("data")],
            primary_key: vec![0],
        };
        let row = |kind: &str, data: &str| {
            vec![
                Value::Text("x".into()),
                Value::Text(kind.into()),
                Value::Text(data.into()),
            ]
        };
        assert_eq!(
            parse_row(&schema, &row("watermark", "s:1:low")),
            Some(SignalRow::Watermark("s:1:low".into()))
        );
        assert_eq!(
            parse_row(&schema, &row("stop", "{}")),
            Some(SignalRow::Signal {
                kind: "stop".into(),
                data: "{}".into()
            })
        );
        assert_eq!(
            create_sql(&TableId::new("d`b", "t")),
            "CREATE TABLE IF NOT EXISTS `d``b`.`t` (id VARCHAR(255) NOT NULL PRIMARY KEY, type VARCHAR(32) NOT NULL, \
             data TEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
    }
}
