//! The `mysql:` block of a `kind: mysql` connector file, and its resolved settings.
//!
//! Owns: the MySQL-only keys, their defaults and the checks that need no server. Must not:
//! connect to anything (the config loader calls [`resolve`]).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::event::TableId;
use crate::source::read_pacing;

/// The `mysql:` block as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlOptions {
    /// The replica server id tidemark registers with; unique among the server's replicas
    /// (required).
    #[serde(default)]
    pub server_id: Option<u32>,
    /// How often the server sends a heartbeat when the binlog is idle, in milliseconds.
    #[serde(default)]
    pub heartbeat_ms: Option<u64>,
    /// Resume by GTID (`auto`: when the server has GTIDs on), or always by file and offset.
    #[serde(default)]
    pub gtid: Option<GtidUse>,
    /// The table the snapshot writes its watermarks to and reads signals from: `name` (in the
    /// connection's database) or `database.name`. Default `tidemark_signal`.
    #[serde(default)]
    pub signal_table: Option<String>,
    /// Create the signal table when it is missing (needs CREATE on its database).
    #[serde(default)]
    pub create_signal_table: Option<bool>,
    /// Under load, how long a read of the binlog waits after the previous one, so that one
    /// wake-up reads more events (milliseconds; 0: read as soon as data arrives).
    #[serde(default)]
    pub read_coalesce_ms: Option<u64>,
}

/// Whether a MySQL connector resumes by GTID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GtidUse {
    /// GTID when the server has it on, else file and offset.
    #[default]
    Auto,
    /// Always file and offset.
    Off,
}

/// The resolved `mysql:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlSettings {
    /// The replica server id.
    pub server_id: u32,
    pub heartbeat: Duration,
    pub gtid: GtidUse,
    /// The signal table (watermarks and signals), resolved against the connection's database.
    pub signal_table: TableId,
    pub create_signal_table: bool,
    /// How long a read waits after the previous one under load (see
    /// `crate::source::read_pacing`).
    pub read_coalesce: Duration,
}

impl MysqlSettings {
    /// Settings for unit tests: server id 1, the default signal table in `database`.
    #[cfg(test)]
    pub fn for_tests(database: &str) -> Self {
        Self {
            server_id: 1,
            heartbeat: Duration::from_secs(5),
            gtid: GtidUse::Auto,
            signal_table: TableId::new(database, "tidemark_signal"),
            create_signal_table: true,
            read_coalesce: Duration::from_millis(read_pacing::DEFAULT_COALESCE_MS),
        }
    }
}

/// Resolves the block of a connector on database `database` (file `file`).
pub fn resolve(
    options: Option<&MysqlOptions>,
    database: &str,
    file: &Path,
) -> Result<MysqlSettings, ConfigError> {
    let my = options.cloned().unwrap_or_default();
    let signal_table = my.signal_table.unwrap_or_else(|| "tidemark_signal".into());
    if signal_table.is_empty()
        || signal_table.split('.').count() > 2
        || signal_table.split('.').any(str::is_empty)
    {
        return Err(ConfigError::invalid(
            file,
            "mysql.signal_table",
            "name the signal table as `table` or `database.table`",
        ));
    }
    let server_id = my.server_id.unwrap_or(0);
    if server_id == 0 {
        return Err(ConfigError::invalid(
            file,
            "mysql.server_id",
            "set `mysql.server_id` to a number (1..4294967295) that no other replica of this server uses",
        ));
    }
    Ok(MysqlSettings {
        server_id,
        heartbeat: Duration::from_millis(my.heartbeat_ms.unwrap_or(5_000).max(100)),
        gtid: my.gtid.unwrap_or_default(),
        signal_table: match signal_table.split_once('.') {
            Some((db, table)) => TableId::new(db, table),
            None => TableId::new(database, signal_table.as_str()),
        },
        create_signal_table: my.create_signal_table.unwrap_or(true),
        read_coalesce: read_pacing::coalesce_setting(
            my.read_coalesce_ms,
            "mysql.read_coalesce_ms",
            file,
        )?,
    })
}

/// What two connectors on one server must not share, if these two do.
pub fn shared(a: &MysqlSettings, b: &MysqlSettings) -> Option<String> {
    (a.server_id == b.server_id).then(|| {
        format!(
            "mysql.server_id {} on one server (two replicas with one id disconnect each other)",
            a.server_id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_table_resolves_against_the_connection_database() {
        let o = MysqlOptions {
            server_id: Some(7),
            ..Default::default()
        };
        let s = resolve(Some(&o), "app", Path::new("m.yaml")).unwrap();
        assert_eq!(s.signal_table, TableId::new("app", "tidemark_signal"));
        let o = MysqlOptions {
            server_id: Some(7),
            signal_table: Some("ops.signals".into()),
            ..Default::default()
        };
        let s = resolve(Some(&o), "app", Path::new("m.yaml")).unwrap();
        assert_eq!(s.signal_table, TableId::new("ops", "signals"));
    }

    #[test]
    fn a_missing_server_id_or_a_bad_signal_table_names_the_key() {
        let err = resolve(None, "app", Path::new("m.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.yaml") && err.contains("mysql.server_id"),
            "{err}"
        );
        let o = MysqlOptions {
            server_id: Some(7),
            signal_table: Some("a.b.c".into()),
            ..Default::default()
        };
        let err = resolve(Some(&o), "app", Path::new("m.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql.signal_table"), "{err}");
    }
}
