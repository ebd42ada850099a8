//! Connecting to a MySQL/MariaDB server, reading what the binlog reader depends on, judging
//! it for `tidemark check` and for start-up, and finding the current binlog position.

use std::collections::HashMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};

use super::binlog::charset::CharsetMap;
use super::error::classify_mysql;
use super::position::MysqlPosition;
use crate::config::{ConnectorConfig, GtidUse, MysqlSettings, SslMode};
use crate::error::{Error, Result};
use crate::event::TableId;
use crate::source::check::{item, CheckItem, CheckStatus};

/// Which server family: they differ in GTIDs, binlog details and privilege names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Mysql,
    MariaDb,
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavor::Mysql => "MySQL",
            Flavor::MariaDb => "MariaDB",
        })
    }
}

/// A quoted identifier (backticks doubled inside).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Opens a connection (SQL or, later turned into, a binlog stream).
pub async fn connect(cfg: &ConnectorConfig) -> Result<Conn> {
    let c = &cfg.connection;
    let mut opts = OptsBuilder::default()
        .ip_or_hostname(c.host.clone())
        .tcp_port(c.port)
        .user(Some(c.user.clone()))
        .pass(Some(c.password.expose().to_string()))
        .db_name(Some(c.database.clone()))
        .prefer_socket(false)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .stmt_cache_size(0);
    if c.sslmode != SslMode::Disable {
        let mut ssl = SslOpts::default();
        if let Some(ca) = &c.sslrootcert {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        if let (Some(cert), Some(key)) = (&c.sslcert, &c.sslkey) {
            ssl = ssl.with_client_identity(Some(mysql_async::ClientIdentity::new(
                cert.clone().into(),
                key.clone().into(),
            )));
        }
        ssl = match c.sslmode {
            SslMode::Require => ssl
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
            SslMode::VerifyCa => ssl.with_danger_skip_domain_validation(true),
            _ => ssl,
        };
        opts = opts.ssl_opts(Some(ssl));
    }
    let what = format!(
        "connector {}: connecting to {}:{} as {}",
        cfg.name, c.host, c.port, c.user
    );
    match tokio::time::timeout(Duration::from_millis(c.connect_timeout_ms), Conn::new(opts)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(classify_mysql(what, e)),
        Err(_) => Err(Error::transient(format!(
            "{what}: no answer within {} ms",
            c.connect_timeout_ms
        ))),
    }
}

/// What the server says about itself.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub version: String,
    pub flavor: Flavor,
    pub server_id: u32,
    /// Global variables by lower-case name.
    pub variables: HashMap<String, String>,
    pub grants: Vec<String>,
    /// The account the server matched the connection to, quoted for a GRANT:
    /// `'user'@'host'` (from `CURRENT_USER()`).
    pub account: String,
    /// Server ids of the replicas registered now.
    pub replica_ids: Vec<u32>,
    /// Configured tables that exist, with whether they have a primary key.
    pub tables: HashMap<String, bool>,
    /// Whether the signal table exists.
    pub signal_table: bool,
    /// MariaDB: the columns of each configured table that are `JSON` (a LONGTEXT with a
    /// `json_valid` check), which the binlog does not tell from text.
    pub json_columns: HashMap<String, Vec<String>>,
}

impl Inspection {
    pub fn var(&self, name: &str) -> &str {
        self.variables.get(name).map(String::as_str).unwrap_or("")
    }

    /// Whether transactions carry GTIDs that tidemark can resume from.
    pub fn gtid_on(&self) -> bool {
        match self.flavor {
            // MariaDB always writes GTID events.
            Flavor::MariaDb => true,
            Flavor::Mysql => self.var("gtid_mode").eq_ignore_ascii_case("ON"),
        }
    }
}

fn q(e: mysql_async::Error, what: &str) -> Error {
    classify_mysql(what.to_string(), e)
}

pub async fn inspect(conn: &mut Conn, cfg: &ConnectorConfig) -> Result<Inspection> {
    let version: String = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| q(e, "reading the server version"))?
        .unwrap_or_default();
    let flavor = if version.to_ascii_lowercase().contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::Mysql
    };
    let rows: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_id', 'log_bin', \
             'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'gtid_mode', \
             'binlog_checksum', 'binlog_expire_logs_seconds', 'expire_logs_days', \
             'gtid_binlog_pos', 'gtid_executed', 'binlog_transaction_compression', \
             'log_bin_compress', 'binlog_row_value_options', 'server_uuid', 'binlog_order_commits')",
        )
        .await
        .map_err(|e| q(e, "reading server variables"))?;
    let variables: HashMap<String, String> = rows
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let server_id = variables
        .get("server_id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let grants: Vec<String> = conn
        .query("SHOW GRANTS")
        .await
        .map_err(|e| q(e, "reading the user's grants"))?;
    let current: Option<String> = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .map_err(|e| q(e, "reading the current account"))?;
    let account = quote_account(current.as_deref(), &cfg.connection.user);
    // Registered replicas; needs REPLICATION SLAVE ADMIN on newer servers, so optional.
    let replica_ids: Vec<u32> = match conn.query::<mysql_async::Row, _>("SHOW SLAVE HOSTS").await {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|r| r.get::<u32, _>(0))
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut tables = HashMap::new();
    for t in &cfg.tables {
        let found: Option<(String, i64)> = conn
            .exec_first(
                // STATISTICS, not TABLE_CONSTRAINTS: MariaDB hides TABLE_CONSTRAINTS rows from
                // a user whose only privilege on the table is SELECT.
                "SELECT t.TABLE_NAME, (SELECT COUNT(*) FROM information_schema.STATISTICS s \
                 WHERE s.TABLE_SCHEMA = t.TABLE_SCHEMA AND s.TABLE_NAME = t.TABLE_NAME \
                 AND s.INDEX_NAME = 'PRIMARY') FROM information_schema.TABLES t \
                 WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?",
                (t.id.schema.clone(), t.id.table.clone()),
            )
            .await
            .map_err(|e| q(e, "looking up the configured tables"))?;
        if let Some((_, pk)) = found {
            tables.insert(t.id.to_string(), pk > 0);
        }
    }
    let mut json_columns = HashMap::new();
    if flavor == Flavor::MariaDb {
        for t in &cfg.tables {
            // Informational: a server or user that cannot read CHECK_CONSTRAINTS reports none.
            let clauses: Vec<String> = conn
                .exec(
                    "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                    (t.id.schema.clone(), t.id.table.clone()),
                )
                .await
                .unwrap_or_default();
            let columns: Vec<String> = clauses
                .iter()
                .filter_map(|c| json_valid_column(c))
                .collect();
            if !columns.is_empty() {
                json_columns.insert(t.id.to_string(), columns);
            }
        }
    }
    let signal = &super::settings(cfg)?.signal_table;
    let signal_table: Option<String> = conn
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (signal.schema.clone(), signal.table.clone()),
        )
        .await
        .map_err(|e| q(e, "looking up the signal table"))?;
    Ok(Inspection {
        version,
        flavor,
        server_id,
        variables,
        grants,
        account,
        replica_ids,
        tables,
        signal_table: signal_table.is_some(),
        json_columns,
    })
}

/// The column of a MariaDB `json_valid(`col`)` check clause (how MariaDB stores a JSON column).
fn json_valid_column(clause: &str) -> Option<String> {
    let inner = clause
        .trim()
        .strip_prefix("json_valid(")?
        .strip_suffix(')')?
        .trim();
    let name = inner.strip_prefix('`')?.strip_suffix('`')?;
    (!name.is_empty()).then(|| name.replace("``", "`"))
}

/// The live columns of each configured table that exists, in column order.
pub async fn table_columns(cfg: &ConnectorConfig) -> Result<Vec<(TableId, Vec<String>)>> {
    let mut conn = connect(cfg).await?;
    let mut out = Vec::new();
    for t in &cfg.tables {
        let columns: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (t.id.schema.clone(), t.id.table.clone()),
            )
            .await
            .map_err(|e| q(e, "reading the configured tables' columns"))?;
        if !columns.is_empty() {
            out.push((t.id.clone(), columns));
        }
    }
    let _ = conn.disconnect().await;
    Ok(out)
}

/// `CURRENT_USER()`'s `user@host` as `'user'@'host'` (the user's name alone, at `'%'`, if the
/// server did not say).
fn quote_account(current: Option<&str>, user: &str) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    match current.and_then(|c| c.rsplit_once('@')) {
        Some((u, h)) => format!("{}@{}", quote(u), quote(h)),
        None => format!("{}@'%'", quote(user)),
    }
}

/// Collation id to charset, as the server knows them.
pub async fn charsets(conn: &mut Conn) -> Result<CharsetMap> {
    let rows: Vec<(u32, String)> = conn
        .query(
            "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL",
        )
        .await
        .map_err(|e| q(e, "reading the server's collations"))?;
    Ok(CharsetMap::from_rows(rows))
}

fn has_grant(grants: &[String], any_of: &[&str]) -> bool {
    grants.iter().any(|g| {
        let g = g.to_ascii_uppercase();
        g.contains("ALL PRIVILEGES ON *.*") || any_of.iter().any(|p| g.contains(p))
    })
}

/// `tidemark check`: connects, inspects the server, and judges what it finds.
pub async fn check(cfg: &ConnectorConfig, my: &MysqlSettings) -> Result<Vec<CheckItem>> {
    let mut conn = connect(cfg).await?;
    let inspection = inspect(&mut conn, cfg).await;
    if let Err(e) = conn.disconnect().await {
        tracing::debug!(error = %e, "closing the connection");
    }
    Ok(evaluate(cfg, my, &inspection?))
}

/// Judges an inspection: what is fine, what will stop tidemark, and how to fix each.
pub fn evaluate(cfg: &ConnectorConfig, my: &MysqlSettings, i: &Inspection) -> Vec<CheckItem> {
    use CheckStatus::*;
    let mut out = Vec::new();
    let cnf = "in my.cnf under [mysqld], then restart the server";
    out.push(item(
        Ok,
        format!("{} (server_id {})", i.version, i.server_id),
        "",
    ));
    let on = |v: &str| v.eq_ignore_ascii_case("ON") || v == "1";
    if on(i.var("log_bin")) {
        out.push(item(Ok, "binary log is on", ""));
    } else {
        out.push(item(
            Fail,
            format!("binary log is off (log_bin = {})", i.var("log_bin")),
            format!("set `log_bin = mysql-bin` {cnf}"),
        ));
    }
    let checks: [(&str, &str, &str); 3] = [
        ("binlog_format", "ROW", "`binlog_format = ROW`"),
        ("binlog_row_image", "FULL", "`binlog_row_image = FULL`"),
        (
            "binlog_row_metadata",
            "FULL",
            "`binlog_row_metadata = FULL` (MySQL 8.0.1+, MariaDB 10.5+)",
        ),
    ];
    for (var, want, fix) in checks {
        let have = i.var(var);
        if have.eq_ignore_ascii_case(want) {
            out.push(item(Ok, format!("{var} = {have}"), ""));
        } else {
            let have = if have.is_empty() {
                "(not supported by this server)"
            } else {
                have
            };
            out.push(item(
                Fail,
                format!("{var} = {have}, tidemark needs {want}"),
                format!("set {fix} {cnf} (or SET GLOBAL {var} = '{want}' until the restart)"),
            ));
        }
    }
    if i.gtid_on() {
        out.push(item(Ok, "GTIDs are on: positions resume by GTID", ""));
    } else if my.gtid == GtidUse::Off {
        out.push(item(
            Ok,
            "GTIDs are off: positions resume by binlog file and offset",
            "",
        ));
    } else {
        out.push(item(Warn, format!("gtid_mode = {}: positions resume by binlog file and offset, which does not survive a failover", i.var("gtid_mode")),
            format!("set `gtid_mode = ON` and `enforce_gtid_consistency = ON` {cnf}")));
    }
    let checksum = i.var("binlog_checksum");
    if checksum.is_empty()
        || checksum.eq_ignore_ascii_case("CRC32")
        || checksum.eq_ignore_ascii_case("NONE")
    {
        out.push(item(Ok, format!("binlog_checksum = {checksum}"), ""));
    } else {
        out.push(item(
            Fail,
            format!("binlog_checksum = {checksum} is unknown"),
            format!("set `binlog_checksum = CRC32` {cnf}"),
        ));
    }
    if on(i.var("binlog_transaction_compression")) {
        out.push(item(Ok, "binlog_transaction_compression = ON: compressed transactions are decoded, each whole in memory", ""));
    }
    if on(i.var("log_bin_compress")) {
        out.push(item(
            Ok,
            "log_bin_compress = ON: compressed binlog events are decoded",
            "",
        ));
    }
    if i.var("binlog_row_value_options")
        .to_ascii_uppercase()
        .contains("PARTIAL_JSON")
    {
        out.push(item(
            Ok,
            "binlog_row_value_options = PARTIAL_JSON: JSON diffs are applied to the before image",
            "",
        ));
    }
    let expire: Option<u64> = i
        .variables
        .get("binlog_expire_logs_seconds")
        .and_then(|v| v.parse().ok())
        .filter(|s| *s > 0)
        .or_else(|| {
            i.variables
                .get("expire_logs_days")
                .and_then(|v| v.parse::<f64>().ok())
                .map(|d| (d * 86_400.0) as u64)
        });
    match expire {
        Some(0) | None => out.push(item(Ok, "binlogs are kept until purged by hand", "")),
        Some(s) if s < 86_400 => out.push(item(
            Warn,
            format!(
                "binlogs expire after {s} s: a tidemark stopped longer than that cannot resume"
            ),
            format!("keep binlogs for days: `binlog_expire_logs_seconds = 604800` {cnf}"),
        )),
        Some(s) => out.push(item(Ok, format!("binlogs are kept {} h", s / 3600), "")),
    }
    let repl_slave = has_grant(&i.grants, &["REPLICATION SLAVE", "REPLICATION REPLICA"]);
    let repl_client = has_grant(
        &i.grants,
        &["REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"],
    );
    let user = &cfg.connection.user;
    if repl_slave && repl_client {
        out.push(item(Ok, format!("user {user} may read the binlog"), ""));
    } else {
        let want = if i.flavor == Flavor::MariaDb {
            "REPLICATION SLAVE, BINLOG MONITOR"
        } else {
            "REPLICATION SLAVE, REPLICATION CLIENT"
        };
        out.push(item(
            Fail,
            format!("user {user} lacks {want}"),
            format!("GRANT {want}, SELECT ON *.* TO {};", i.account),
        ));
    }
    let sid = my.server_id;
    if sid == i.server_id {
        out.push(item(
            Fail,
            format!("mysql.server_id {sid} is the server's own server_id"),
            format!(
                "set `mysql.server_id` in {} to a number no server or replica uses",
                cfg.file.display()
            ),
        ));
    } else if i.replica_ids.contains(&sid) {
        out.push(item(Warn, format!("a replica with server_id {sid} is registered now (another tidemark, a replica, or this connector's previous session)"),
            format!("if it is not this connector, give `mysql.server_id` in {} a unique number: two replicas with one id disconnect each other", cfg.file.display())));
    } else {
        out.push(item(
            Ok,
            format!("mysql.server_id {sid} is not used by the server or its registered replicas"),
            "",
        ));
    }
    if !cfg.tables.is_empty() && i.tables.is_empty() {
        out.push(item(
            Fail,
            format!("none of the connector's tables exists (or user {user} can see none)"),
            format!(
                "check `tables` in {}, and the user's SELECT grants",
                cfg.file.display()
            ),
        ));
    }
    for t in &cfg.tables {
        match i.tables.get(&t.id.to_string()) {
            None => out.push(item(
                Warn,
                format!(
                    "table {} does not exist (or user {user} cannot see it): it is skipped, the other tables are captured",
                    t.id
                ),
                format!(
                    "create it, grant SELECT on it to {user}, or remove it from {}",
                    cfg.file.display()
                ),
            )),
            Some(true) => out.push(item(Ok, format!("table {}", t.id), "")),
            Some(false) if t.config.key.is_some() => out.push(item(
                Ok,
                format!(
                    "table {} (no primary key; keyed by its table file's key)",
                    t.id
                ),
                "",
            )),
            Some(false) => out.push(item(
                Warn,
                format!(
                    "table {} has no primary key: its messages have a null key",
                    t.id
                ),
                "add a primary key, or set `key:` in the table's file",
            )),
        }
        for column in i.json_columns.get(&t.id.to_string()).into_iter().flatten() {
            if !t.config.columns.json.contains(column) {
                out.push(item(
                    Warn,
                    format!(
                        "table {}: column `{column}` is MariaDB JSON (a LONGTEXT checked by json_valid), \
                         which the binlog does not tell from text: its values are sent as strings",
                        t.id
                    ),
                    format!(
                        "to send them as JSON (as PostgreSQL's and MySQL's are), add `columns: {{json: [{column}]}}` \
                         to configs/tables/{}/{}.yaml",
                        cfg.name, t.id
                    ),
                ));
            }
        }
        if i.tables.get(&t.id.to_string()) == Some(&false)
            && cfg.snapshot.mode == crate::config::SnapshotMode::Initial
        {
            out.push(crate::source::check::keyless_initial_snapshot(cfg, &t.id));
        }
    }
    out.extend(evaluate_snapshot(cfg, my, i));
    out
}

/// What the snapshot needs: the signal table, and (MySQL) engine commits in binlog order.
fn evaluate_snapshot(cfg: &ConnectorConfig, my: &MysqlSettings, i: &Inspection) -> Vec<CheckItem> {
    use CheckStatus::*;
    let mut out = Vec::new();
    let table = &my.signal_table;
    if cfg.snapshot.mode == crate::config::SnapshotMode::Never {
        return out;
    }
    if i.signal_table {
        out.push(item(Ok, format!("signal table {table} exists (snapshot watermarks and signals; needs INSERT, UPDATE)"), ""));
    } else if my.create_signal_table {
        out.push(item(
            Ok,
            format!(
                "signal table {table} is created at the first snapshot (needs CREATE on {})",
                table.schema
            ),
            "",
        ));
    } else {
        out.push(item(
            Fail,
            format!("signal table {table} does not exist and mysql.create_signal_table is false"),
            format!(
                "{}; GRANT INSERT, UPDATE ON {table} TO {};",
                super::signal_table::create_sql(table),
                i.account
            ),
        ));
    }
    let order = i.var("binlog_order_commits");
    if i.flavor == Flavor::Mysql && order.eq_ignore_ascii_case("OFF") {
        out.push(item(
            Fail,
            "binlog_order_commits = OFF: transactions may become visible out of binlog order, which the snapshot's watermarks rely on",
            "SET GLOBAL binlog_order_commits = ON (and in my.cnf), or set `snapshot: {mode: never}`",
        ));
    }
    out
}

/// The server's current binlog position: where a connector without a stored position
/// starts.
pub async fn current_position(
    conn: &mut Conn,
    i: &Inspection,
    cfg: &ConnectorConfig,
) -> Result<MysqlPosition> {
    // The GTID state first: a transaction committing between the two reads then makes the
    // GTID state older than the file offset, so resuming by GTID re-reads it (a duplicate)
    // instead of skipping it.
    let mut mariadb_gtid = None;
    let mut mysql_gtid_set = None;
    if super::settings(cfg)?.gtid != GtidUse::Off && i.gtid_on() {
        match i.flavor {
            Flavor::MariaDb => {
                let g: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
                    .await
                    .map_err(|e| q(e, "reading gtid_binlog_pos"))?;
                mariadb_gtid = Some(g.unwrap_or_default());
            }
            Flavor::Mysql => {
                let g: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_executed")
                    .await
                    .map_err(|e| q(e, "reading gtid_executed"))?;
                mysql_gtid_set = Some(g.unwrap_or_default());
            }
        }
    }
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        // MySQL 8.4 removed SHOW MASTER STATUS.
        Err(_) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(|e| q(e, "reading the binlog position"))?,
    };
    let row = row.ok_or_else(|| {
        Error::definite(format!(
            "connector {}: the server reports no binlog position (is log_bin on?)",
            cfg.name
        ))
    })?;
    let file: String = row.get(0).unwrap_or_default();
    let pos: u64 = row.get(1).unwrap_or(4);
    Ok(MysqlPosition {
        file,
        pos,
        mariadb_gtid,
        mysql_gtid_set,
        snapshot: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_valid_clauses_name_their_column() {
        assert_eq!(json_valid_column("json_valid(`doc`)"), Some("doc".into()));
        assert_eq!(json_valid_column("json_valid(`a``b`)"), Some("a`b".into()));
        assert_eq!(json_valid_column("`n` > 0"), None);
        assert_eq!(json_valid_column("json_valid(`a`) and 1"), None);
    }
}
