//! `connectors/<name>.yaml`: one source database.

use serde::Deserialize;

use super::secret::{Secret, SecretSource};
pub use crate::source::mysql::config::{GtidUse, MysqlOptions};
pub use crate::source::postgres::config::PostgresOptions;

/// The kind of source database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Postgres,
    /// MySQL 8.x or MariaDB 10.5+ (binlog over the replication protocol).
    Mysql,
}

impl SourceKind {
    pub fn default_port(self) -> u16 {
        match self {
            SourceKind::Postgres => 5432,
            SourceKind::Mysql => 3306,
        }
    }
}

/// TLS towards the source database (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    #[default]
    Disable,
    /// TLS when the server offers it, else plain (PostgreSQL only); no certificate check.
    Prefer,
    /// TLS, without checking the certificate.
    Require,
    /// TLS; the certificate chain must lead to `sslrootcert` (any host name).
    VerifyCa,
    /// TLS; the chain must lead to `sslrootcert` and the certificate name the host.
    VerifyFull,
}

impl SslMode {
    /// The mode as written in a connector file.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The connector file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorFile {
    pub kind: SourceKind,
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub connection: ConnectionFile,
    /// The block of `kind: postgres` (one field per source kind, named as the kind).
    #[serde(default)]
    pub postgres: Option<PostgresOptions>,
    #[serde(default)]
    pub mysql: Option<MysqlOptions>,
    #[serde(default)]
    pub snapshot: Option<SnapshotOptions>,
    /// The tables to capture, `schema.table`.
    pub tables: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// The `snapshot:` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotOptions {
    #[serde(default)]
    pub mode: Option<SnapshotMode>,
    #[serde(default)]
    pub chunk_size: Option<usize>,
    #[serde(default)]
    pub max_rows_per_second: Option<u64>,
    /// An environment variable holding the key that signs `tidemark snapshot --where` signals.
    #[serde(default)]
    pub signing_key_env: Option<String>,
    /// A file holding that key (trailing newline trimmed).
    #[serde(default)]
    pub signing_key_file: Option<std::path::PathBuf>,
    /// What to do when the connector's position is gone (see [`OnLostPosition`]).
    #[serde(default)]
    pub on_lost_position: Option<OnLostPosition>,
    /// Every signal (not only one with a `where` condition) must be signed with the signing
    /// key and not expired.
    #[serde(default)]
    pub require_signed_signals: Option<bool>,
    /// At most this many snapshot tasks wait (further requests are refused with a warning).
    #[serde(default)]
    pub max_queued_tasks: Option<usize>,
    /// Chunks read at once, each by its own database session (1..16).
    #[serde(default)]
    pub parallelism: Option<usize>,
}

/// What a connector does when the place it must resume from is gone: the stored position was
/// lost while its topics hold what it produced, its PostgreSQL slot is missing, invalidated or
/// ahead of the stored position. Starting "from now" would skip every change in between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLostPosition {
    /// Stop with an error that says what was lost and how to go on.
    #[default]
    Fail,
    /// Start from the source's current position (PostgreSQL: a new slot) and snapshot every
    /// table again, so that the topics converge to the tables.
    Resnapshot,
}

/// When existing rows are snapshotted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// At the connector's first start (no stored position), every table.
    #[default]
    Initial,
    /// Never.
    Never,
    /// Only when asked (CLI or signal).
    OnDemand,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionFile {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub database: String,
    pub user: String,
    /// The password inline (discouraged: prefer `password_env` or `password_file`).
    #[serde(default)]
    pub password: Option<super::Secret>,
    /// The name of an environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file whose content (trailing newline trimmed) is the password.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub sslmode: SslMode,
    /// CA bundle for `verify-ca` / `verify-full`, relative to the connector file.
    #[serde(default)]
    pub sslrootcert: Option<std::path::PathBuf>,
    /// A client certificate (PEM chain) and its key, relative to the connector file.
    #[serde(default)]
    pub sslcert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub sslkey: Option<std::path::PathBuf>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}

impl ConnectionFile {
    pub fn secret(&self) -> SecretSource {
        SecretSource {
            password: self.password.clone(),
            password_env: self.password_env.clone(),
            password_file: self.password_file.clone(),
        }
    }
}

/// A resolved connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Secret,
    pub sslmode: SslMode,
    pub sslrootcert: Option<std::path::PathBuf>,
    pub sslcert: Option<std::path::PathBuf>,
    pub sslkey: Option<std::path::PathBuf>,
    pub connect_timeout_ms: u64,
}
