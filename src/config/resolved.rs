//! The resolved configuration: what the loader hands to the daemon, defaults filled in and
//! every path made absolute. Built by [`super::load`]; read by every stage.

use std::path::PathBuf;

pub use crate::source::mysql::config::MysqlSettings;
pub use crate::source::postgres::config::PostgresSettings;

use super::connector::{self, Connection, SourceKind};
use super::daemon::{DaemonConfig, PositionStoreKind};
use super::{Secret, TableConfig};
use crate::event::TableId;

/// Everything tidemark needs to run, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The daemon file.
    pub file: PathBuf,
    pub daemon: DaemonConfig,
    /// The position store, with the default resolved.
    pub position_store: PositionStoreKind,
    /// The file store's directory, resolved against the daemon file's directory.
    pub positions_dir: PathBuf,
    pub connectors: Vec<ConnectorConfig>,
    /// The salt of `hash` masks (`router.hash_salt_env` / `_file`), when set.
    pub hash_salt: Option<Secret>,
    /// `schema_registry:`, resolved (required by the avro format).
    pub schema_registry: Option<super::RegistrySettings>,
    /// The admin API (`None`: `admin.listen: off`).
    pub admin: Option<AdminSettings>,
    /// A connector stopped by a definite error leaves the process running (see
    /// `DaemonConfig::on_connector_failure`).
    pub keep_running_on_failure: bool,
}

/// `admin:`, resolved.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: std::net::SocketAddr,
    /// The bearer token every request must carry, when set.
    pub token: Option<super::Secret>,
    /// How often the source watchers read the connectors' backlog (`None`: never).
    pub source_poll: Option<std::time::Duration>,
}

/// One connector, resolved.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub file: PathBuf,
    pub enabled: bool,
    pub connection: Connection,
    /// What only this connector's kind of source has.
    pub source: SourceSettings,
    pub snapshot: SnapshotSettings,
    pub tables: Vec<TableEntry>,
}

/// The settings only one kind of source has: one arm per source kind.
#[derive(Debug, Clone)]
pub enum SourceSettings {
    Postgres(PostgresSettings),
    Mysql(MysqlSettings),
}

impl SourceSettings {
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceSettings::Postgres(_) => SourceKind::Postgres,
            SourceSettings::Mysql(_) => SourceKind::Mysql,
        }
    }

    /// What two connectors on one server (`same_database`: and one database) must not share,
    /// if these two do.
    pub fn shared_with(&self, other: &SourceSettings, same_database: bool) -> Option<String> {
        match (self, other) {
            (SourceSettings::Postgres(a), SourceSettings::Postgres(b)) if same_database => {
                crate::source::postgres::config::shared(a, b)
            }
            (SourceSettings::Mysql(a), SourceSettings::Mysql(b)) => {
                crate::source::mysql::config::shared(a, b)
            }
            _ => None,
        }
    }
}

/// The resolved `snapshot:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSettings {
    pub mode: connector::SnapshotMode,
    /// Rows per chunk (`SELECT ... LIMIT chunk_size`).
    pub chunk_size: usize,
    /// Throttle: at most this many snapshot rows per second (0: unlimited).
    pub max_rows_per_second: u64,
    /// The key that signs snapshot signals with a `where` condition (none: conditions are
    /// refused).
    pub signing_key: Option<Secret>,
    pub on_lost_position: connector::OnLostPosition,
    /// Every signal must be signed (and not expired), not only those with a condition.
    pub require_signed_signals: bool,
    /// At most this many snapshot tasks wait; further requests are refused.
    pub max_queued_tasks: usize,
    /// Chunks read at once (tables and key ranges of a large table), each by its own session.
    pub parallelism: usize,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        Self {
            mode: connector::SnapshotMode::Initial,
            chunk_size: 1024,
            max_rows_per_second: 0,
            signing_key: None,
            on_lost_position: connector::OnLostPosition::Fail,
            require_signed_signals: false,
            max_queued_tasks: 100,
            parallelism: 1,
        }
    }
}

/// One captured table and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry {
    pub id: TableId,
    pub config: TableConfig,
    /// The table file, when there is one.
    pub file: Option<PathBuf>,
    /// The table's contract (`contract:`), read.
    pub contract: Option<std::sync::Arc<super::Contract>>,
}

impl ConnectorConfig {
    pub fn kind(&self) -> SourceKind {
        self.source.kind()
    }

    pub fn table(&self, id: &TableId) -> Option<&TableEntry> {
        self.tables.iter().find(|t| &t.id == id)
    }
}

/// A MySQL connector `m` on database `db` capturing `db.tbl`, for unit tests (adjust what a
/// test needs).
#[cfg(test)]
pub fn test_mysql_connector() -> ConnectorConfig {
    ConnectorConfig {
        name: "m".into(),
        file: "connectors/m.yaml".into(),
        enabled: true,
        connection: Connection {
            host: "h".into(),
            port: 1,
            database: "db".into(),
            user: "u".into(),
            password: Default::default(),
            sslmode: connector::SslMode::Disable,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            connect_timeout_ms: 1,
        },
        source: SourceSettings::Mysql(MysqlSettings::for_tests("db")),
        snapshot: Default::default(),
        tables: vec![TableEntry {
            id: TableId::new("db", "tbl"),
            config: TableConfig::default(),
            file: None,
            contract: None,
        }],
    }
}
