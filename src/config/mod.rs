//! Configuration: loading, validation and environment overrides.
//!
//! Owns: the three kinds of YAML file (daemon, connector, table), their defaults, and the
//! checks that need no server. Must not: connect to anything.
//!
//! Layout: `configs/tidemark.yaml` names a connectors directory (one file per source
//! database) and a tables directory (`<connector>/<schema>.<table>.yaml`). Environment
//! variables override any key: `TIDEMARK__KAFKA__BROKERS` for the daemon file,
//! `TIDEMARK__CONNECTORS__<NAME>__CONNECTION__HOST` for connector `<name>`.

pub mod connector;
pub mod daemon;
pub mod error;
pub mod loader;
pub mod secret;
pub mod table;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use connector::{Connection, GtidUse, OnLostPosition, SnapshotMode, SourceKind, SslMode};
pub use daemon::{DaemonConfig, LogFormat, PositionStoreKind, SinkKind};
pub use error::ConfigError;
pub use secret::Secret;
pub use table::TableConfig;

use crate::event::TableId;
use connector::ConnectorFile;
use loader::{env_overrides, load_file};

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
}

/// One connector, resolved.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub file: PathBuf,
    pub kind: SourceKind,
    pub enabled: bool,
    pub connection: Connection,
    pub postgres: PostgresSettings,
    pub mysql: MysqlSettings,
    pub snapshot: SnapshotSettings,
    pub tables: Vec<TableEntry>,
}

/// The snapshot's signing key: from `snapshot.signing_key_env` or `signing_key_file`; at least
/// 16 bytes, since it is all that stands between a signal writer and SQL.
fn signing_key(
    file: &Path,
    snap: &connector::SnapshotOptions,
    dir: &Path,
) -> Result<Option<Secret>, ConfigError> {
    let source = secret::SecretSource {
        password: None,
        password_env: snap.signing_key_env.clone(),
        password_file: snap.signing_key_file.clone(),
    };
    if source.password_env.is_none() && source.password_file.is_none() {
        return Ok(None);
    }
    let key = source.resolve(file, "snapshot.signing_key", dir)?;
    if key.expose().len() < 16 {
        return Err(ConfigError::invalid(
            file,
            if snap.signing_key_file.is_some() {
                "snapshot.signing_key_file"
            } else {
                "snapshot.signing_key_env"
            },
            "the signing key must be at least 16 characters (for example `openssl rand -hex 32`)",
        ));
    }
    Ok(Some(key))
}

/// A MySQL connector `m` on database `db` capturing `db.tbl`, for unit tests (adjust what a
/// test needs).
#[cfg(test)]
pub fn test_mysql_connector() -> ConnectorConfig {
    ConnectorConfig {
        name: "m".into(),
        file: "connectors/m.yaml".into(),
        kind: SourceKind::Mysql,
        enabled: true,
        connection: Connection {
            host: "h".into(),
            port: 1,
            database: "db".into(),
            user: "u".into(),
            password: Default::default(),
            sslmode: SslMode::Disable,
            sslrootcert: None,
            connect_timeout_ms: 1,
        },
        postgres: PostgresSettings {
            slot: "s".into(),
            publication: "p".into(),
            create_slot: false,
            create_publication: false,
            status_interval: Duration::from_secs(1),
        },
        mysql: Default::default(),
        snapshot: Default::default(),
        tables: vec![TableEntry {
            id: TableId::new("db", "tbl"),
            config: TableConfig::default(),
            file: None,
        }],
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
        }
    }
}

#[derive(Debug, Clone)]
pub struct MysqlSettings {
    /// The replica server id (required for `kind: mysql`; 0 for other kinds).
    pub server_id: u32,
    pub heartbeat: Duration,
    pub gtid: GtidUse,
    /// The signal table as configured (`name` or `database.name`); see
    /// [`ConnectorConfig::signal_table`].
    pub signal_table: String,
    pub create_signal_table: bool,
}

impl Default for MysqlSettings {
    fn default() -> Self {
        Self {
            server_id: 0,
            heartbeat: Duration::from_secs(5),
            gtid: GtidUse::Auto,
            signal_table: "tidemark_signal".into(),
            create_signal_table: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PostgresSettings {
    pub slot: String,
    pub publication: String,
    pub create_slot: bool,
    pub create_publication: bool,
    pub status_interval: Duration,
}

/// One captured table and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry {
    pub id: TableId,
    pub config: TableConfig,
    /// The table file, when there is one.
    pub file: Option<PathBuf>,
}

impl ConnectorConfig {
    /// MySQL: the signal table (watermarks and signals), resolved against the connection's
    /// database.
    pub fn signal_table(&self) -> TableId {
        match self.mysql.signal_table.split_once('.') {
            Some((db, table)) => TableId::new(db, table),
            None => TableId::new(
                self.connection.database.as_str(),
                self.mysql.signal_table.as_str(),
            ),
        }
    }

    pub fn table(&self, id: &TableId) -> Option<&TableEntry> {
        self.tables.iter().find(|t| &t.id == id)
    }
}

fn base_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Loads the daemon file at `path`, every connector file and every table file, applying the
/// environment overrides in `vars` (pass `std::env::vars()`).
pub fn load(
    path: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let daemon_overrides = env_overrides(
        vars.iter().cloned(),
        "TIDEMARK__",
        &["TIDEMARK__CONNECTORS__".to_string()],
    );
    let daemon: DaemonConfig = load_file(path, &daemon_overrides)?;
    let dir = base_dir(path);
    validate_daemon(path, &daemon)?;

    let position_store = daemon.offsets.store.unwrap_or(match daemon.sink {
        SinkKind::Kafka => PositionStoreKind::Kafka,
        SinkKind::Stdout => PositionStoreKind::File,
    });
    if position_store == PositionStoreKind::Kafka && daemon.kafka.brokers.is_none() {
        return Err(ConfigError::invalid(
            path,
            "kafka.brokers",
            "required by the Kafka position store (offsets.store)",
        ));
    }

    let connectors_dir = dir.join(&daemon.connectors_dir);
    let tables_dir = dir.join(&daemon.tables_dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&connectors_dir)
        .map_err(|source| ConfigError::Read {
            file: connectors_dir.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "connectors_dir",
            format!(
                "no connector files (*.yaml) in {}",
                connectors_dir.display()
            ),
        ));
    }
    let mut connectors = Vec::new();
    for file in files {
        connectors.push(load_connector(&file, &tables_dir, &vars)?);
    }
    check_connector_overrides(path, &vars, &connectors)?;
    check_conflicts(&connectors)?;
    Ok(Settings {
        file: path.to_path_buf(),
        positions_dir: dir.join(&daemon.offsets.path),
        daemon,
        position_store,
        connectors,
    })
}

/// The environment prefix of connector `name`'s overrides.
fn connector_env_prefix(name: &str) -> String {
    format!(
        "TIDEMARK__CONNECTORS__{}__",
        name.to_uppercase().replace('-', "_")
    )
}

/// Every `TIDEMARK__CONNECTORS__<NAME>__...` variable must name a loaded connector: one that
/// names none would be ignored silently.
fn check_connector_overrides(
    path: &Path,
    vars: &[(String, String)],
    connectors: &[ConnectorConfig],
) -> Result<(), ConfigError> {
    let prefixes: Vec<String> = connectors
        .iter()
        .map(|c| connector_env_prefix(&c.name))
        .collect();
    for (var, _) in vars {
        if var.starts_with("TIDEMARK__CONNECTORS__")
            && !prefixes.iter().any(|p| var.starts_with(p.as_str()))
        {
            let names: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
            return Err(ConfigError::invalid(
                path,
                "",
                format!(
                    "environment variable {var} names no connector (the connectors are {}; \
                     a connector's variables start with TIDEMARK__CONNECTORS__<NAME>__, NAME \
                     its file name in upper case with '-' as '_')",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Two enabled connectors must not share what only one can use: a PostgreSQL slot or
/// publication on one database, a MySQL server id on one server, or a position key.
fn check_conflicts(connectors: &[ConnectorConfig]) -> Result<(), ConfigError> {
    let enabled: Vec<&ConnectorConfig> = connectors.iter().filter(|c| c.enabled).collect();
    for (i, a) in enabled.iter().enumerate() {
        for b in &enabled[i + 1..] {
            let same_server = a.kind == b.kind
                && a.connection.host.eq_ignore_ascii_case(&b.connection.host)
                && a.connection.port == b.connection.port;
            let same_db = same_server && a.connection.database == b.connection.database;
            let clash = if a.name.eq_ignore_ascii_case(&b.name)
                || connector_env_prefix(&a.name) == connector_env_prefix(&b.name)
            {
                Some(format!(
                    "the connector name `{}` (its position key and environment prefix)",
                    a.name
                ))
            } else if a.kind == SourceKind::Postgres
                && same_db
                && a.postgres.slot == b.postgres.slot
            {
                Some(format!("the replication slot `{}`", a.postgres.slot))
            } else if a.kind == SourceKind::Postgres
                && same_db
                && a.postgres.publication == b.postgres.publication
            {
                Some(format!("the publication `{}`", a.postgres.publication))
            } else if a.kind == SourceKind::Mysql
                && same_server
                && a.mysql.server_id == b.mysql.server_id
            {
                Some(format!(
                    "mysql.server_id {} on one server (two replicas with one id disconnect each other)",
                    a.mysql.server_id
                ))
            } else {
                None
            };
            if let Some(what) = clash {
                return Err(ConfigError::invalid(
                    &b.file,
                    "",
                    format!(
                        "this connector and {} share {what}; give each its own",
                        a.file.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn validate_daemon(path: &Path, d: &DaemonConfig) -> Result<(), ConfigError> {
    if d.sink == SinkKind::Kafka && d.kafka.brokers.as_deref().unwrap_or("").is_empty() {
        return Err(ConfigError::invalid(
            path,
            "kafka.brokers",
            "required with `sink: kafka` (host:port[,host:port])",
        ));
    }
    if !matches!(
        d.kafka.compression.as_str(),
        "none" | "gzip" | "snappy" | "lz4"
    ) {
        return Err(ConfigError::invalid(
            path,
            "kafka.compression",
            format!(
                "`{}` is not one of none, gzip, snappy, lz4",
                d.kafka.compression
            ),
        ));
    }
    if d.kafka.topic_partitions < 1 || d.kafka.topic_replication_factor < 1 {
        return Err(ConfigError::invalid(
            path,
            "kafka.topic_partitions",
            "topic_partitions and topic_replication_factor must be at least 1",
        ));
    }
    if d.pipeline.channel_capacity == 0 || d.pipeline.max_in_flight == 0 {
        return Err(ConfigError::invalid(
            path,
            "pipeline",
            "channel_capacity and max_in_flight must be at least 1",
        ));
    }
    if !valid_topic_name(&d.kafka.topic_prefix) || !valid_topic_name(&d.offsets.topic) {
        return Err(ConfigError::invalid(
            path,
            "kafka.topic_prefix",
            "topic names may hold only ASCII letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

/// Kafka's rule for topic names.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn valid_pg_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn load_connector(
    file: &Path,
    tables_dir: &Path,
    vars: &[(String, String)],
) -> Result<ConnectorConfig, ConfigError> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::invalid(
            file,
            "",
            "a connector file name may hold only ASCII letters, digits, '_' and '-'",
        ));
    }
    let prefix = connector_env_prefix(&name);
    let overrides = env_overrides(vars.iter().cloned(), &prefix, &[]);
    let raw: ConnectorFile = load_file(file, &overrides)?;
    let dir = base_dir(file);
    let password = raw.connection.secret().resolve(file, "connection", &dir)?;
    let default_port = raw.kind.default_port();
    match (raw.kind, &raw.postgres, &raw.mysql) {
        (SourceKind::Mysql, Some(_), _) => {
            return Err(ConfigError::invalid(
                file,
                "postgres",
                "a `kind: mysql` connector takes a `mysql:` block, not `postgres:`",
            ))
        }
        (SourceKind::Postgres, _, Some(_)) => {
            return Err(ConfigError::invalid(
                file,
                "mysql",
                "a `kind: postgres` connector takes a `postgres:` block, not `mysql:`",
            ))
        }
        _ => {}
    }
    let connection = Connection {
        host: raw.connection.host.clone(),
        port: raw.connection.port.unwrap_or(default_port),
        database: raw.connection.database.clone(),
        user: raw.connection.user.clone(),
        password,
        sslmode: raw.connection.sslmode,
        sslrootcert: raw.connection.sslrootcert.as_ref().map(|p| dir.join(p)),
        connect_timeout_ms: raw.connection.connect_timeout_ms,
    };
    let default_name = format!("tidemark_{}", name.to_lowercase().replace('-', "_"));
    let pg = raw.postgres.clone().unwrap_or_default();
    let postgres = PostgresSettings {
        slot: pg.slot.clone().unwrap_or_else(|| default_name.clone()),
        publication: pg
            .publication
            .clone()
            .unwrap_or_else(|| default_name.clone()),
        create_slot: pg.create_slot.unwrap_or(true),
        create_publication: pg.create_publication.unwrap_or(true),
        status_interval: Duration::from_millis(pg.status_interval_ms.unwrap_or(10_000)),
    };
    let my = raw.mysql.clone().unwrap_or_default();
    let mysql = MysqlSettings {
        server_id: my.server_id.unwrap_or(0),
        heartbeat: Duration::from_millis(my.heartbeat_ms.unwrap_or(5_000).max(100)),
        gtid: my.gtid.unwrap_or_default(),
        signal_table: my
            .signal_table
            .clone()
            .unwrap_or_else(|| "tidemark_signal".into()),
        create_signal_table: my.create_signal_table.unwrap_or(true),
    };
    if mysql.signal_table.is_empty()
        || mysql.signal_table.split('.').count() > 2
        || mysql.signal_table.split('.').any(str::is_empty)
    {
        return Err(ConfigError::invalid(
            file,
            "mysql.signal_table",
            "name the signal table as `table` or `database.table`",
        ));
    }
    let snap = raw.snapshot.clone().unwrap_or_default();
    let snapshot = SnapshotSettings {
        mode: snap.mode.unwrap_or_default(),
        chunk_size: snap.chunk_size.unwrap_or(1024),
        max_rows_per_second: snap.max_rows_per_second.unwrap_or(0),
        signing_key: signing_key(file, &snap, &dir)?,
        on_lost_position: snap.on_lost_position.unwrap_or_default(),
        require_signed_signals: snap.require_signed_signals.unwrap_or(false),
        max_queued_tasks: snap.max_queued_tasks.unwrap_or(100),
    };
    if snapshot.require_signed_signals && snapshot.signing_key.is_none() {
        return Err(ConfigError::invalid(
            file,
            "snapshot.require_signed_signals",
            "needs `snapshot.signing_key_env` or `signing_key_file` (the key signals are signed with)",
        ));
    }
    if snapshot.max_queued_tasks == 0 || snapshot.max_queued_tasks > 10_000 {
        return Err(ConfigError::invalid(
            file,
            "snapshot.max_queued_tasks",
            "set between 1 and 10000",
        ));
    }
    if snapshot.chunk_size == 0 || snapshot.chunk_size > 1_000_000 {
        return Err(ConfigError::invalid(
            file,
            "snapshot.chunk_size",
            "set a chunk size between 1 and 1000000 rows",
        ));
    }
    if raw.kind == SourceKind::Mysql && mysql.server_id == 0 {
        return Err(ConfigError::invalid(
            file,
            "mysql.server_id",
            "set `mysql.server_id` to a number (1..4294967295) that no other replica of this server uses",
        ));
    }
    if !valid_pg_identifier(&postgres.slot) {
        return Err(ConfigError::invalid(
            file,
            "postgres.slot",
            format!(
                "`{}`: a slot name may hold only lower-case letters, digits and '_' (at most 63)",
                postgres.slot
            ),
        ));
    }
    if raw.tables.is_empty() {
        return Err(ConfigError::invalid(
            file,
            "tables",
            "list at least one table as `schema.table`",
        ));
    }
    let mut tables: Vec<TableEntry> = Vec::new();
    for (i, t) in raw.tables.iter().enumerate() {
        let id = TableId::parse(t).ok_or_else(|| {
            ConfigError::invalid(
                file,
                format!("tables[{i}]"),
                format!("`{t}` is not of the form schema.table"),
            )
        })?;
        if tables.iter().any(|e| e.id == id) {
            return Err(ConfigError::invalid(
                file,
                format!("tables[{i}]"),
                format!("`{t}` is listed twice"),
            ));
        }
        tables.push(TableEntry {
            id,
            config: TableConfig::default(),
            file: None,
        });
    }
    load_table_files(&name, file, &tables_dir.join(&name), &mut tables)?;
    Ok(ConnectorConfig {
        name,
        file: file.to_path_buf(),
        kind: raw.kind,
        enabled: raw.enabled,
        connection,
        postgres,
        mysql,
        snapshot,
        tables,
    })
}

fn load_table_files(
    connector: &str,
    connector_file: &Path,
    dir: &Path,
    tables: &mut [TableEntry],
) -> Result<(), ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ConfigError::Read {
                file: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    for file in files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let id = TableId::parse(stem).ok_or_else(|| {
            ConfigError::invalid(
                &file,
                "",
                "a table file must be named <schema>.<table>.yaml",
            )
        })?;
        let entry = tables.iter_mut().find(|t| t.id == id).ok_or_else(|| {
            ConfigError::invalid(
                &file,
                "",
                format!(
                    "table {id} is not listed in `tables` of {} (connector {connector})",
                    connector_file.display()
                ),
            )
        })?;
        let config: TableConfig = load_file(&file, &[])?;
        if let Some(topic) = &config.topic {
            if !valid_topic_name(topic) {
                return Err(ConfigError::invalid(
                    &file,
                    "topic",
                    format!("`{topic}`: topic names may hold only ASCII letters, digits, '.', '_' and '-'"),
                ));
            }
        }
        if let Some(key) = &config.key {
            if key.is_empty() {
                return Err(ConfigError::invalid(
                    &file,
                    "key",
                    "list at least one column",
                ));
            }
        }
        if config
            .snapshot_chunk_size
            .is_some_and(|n| n == 0 || n > 1_000_000)
        {
            return Err(ConfigError::invalid(
                &file,
                "snapshot_chunk_size",
                "set a chunk size between 1 and 1000000 rows",
            ));
        }
        entry.config = config;
        entry.file = Some(file);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn setup(connector: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let daemon = write(
            dir.path(),
            "configs/tidemark.yaml",
            "kafka:\n  brokers: 127.0.0.1:9092\n",
        );
        write(dir.path(), "connectors/demo.yaml", connector);
        (dir, daemon)
    }

    const CONNECTOR: &str = "kind: postgres\nconnection:\n  database: d\n  user: u\n  password: p\ntables:\n  - public.a\n  - public.b\n";

    #[test]
    fn loads_with_defaults_and_table_files() {
        let (dir, daemon) = setup(CONNECTOR);
        write(
            dir.path(),
            "configs/tables/demo/public.a.yaml",
            "topic: custom\nkey: [x]\n",
        );
        let s = load(&daemon, Vec::new()).unwrap();
        assert_eq!(s.position_store, PositionStoreKind::Kafka);
        let c = &s.connectors[0];
        assert_eq!(c.name, "demo");
        assert_eq!(c.connection.port, 5432);
        assert_eq!(c.postgres.slot, "tidemark_demo");
        assert_eq!(c.tables[0].config.topic.as_deref(), Some("custom"));
        assert_eq!(c.tables[1].config, TableConfig::default());
    }

    #[test]
    fn connector_env_override() {
        let (_dir, daemon) = setup(CONNECTOR);
        let vars = vec![(
            "TIDEMARK__CONNECTORS__DEMO__CONNECTION__PORT".to_string(),
            "6543".to_string(),
        )];
        let s = load(&daemon, vars).unwrap();
        assert_eq!(s.connectors[0].connection.port, 6543);
    }

    #[test]
    fn an_override_of_no_connector_is_an_error_naming_the_variable() {
        let (_dir, daemon) = setup(CONNECTOR);
        let vars = vec![(
            "TIDEMARK__CONNECTORS__NOSUCH__CONNECTION__PORT".to_string(),
            "6543".to_string(),
        )];
        let err = load(&daemon, vars).unwrap_err().to_string();
        assert!(
            err.contains("TIDEMARK__CONNECTORS__NOSUCH__CONNECTION__PORT") && err.contains("demo"),
            "{err}"
        );
    }

    #[test]
    fn connectors_sharing_a_slot_publication_or_server_id_are_refused_naming_both_files() {
        let (dir, daemon) = setup(CONNECTOR);
        let other = write(
            dir.path(),
            "connectors/other.yaml",
            "kind: postgres\nconnection:\n  database: d\n  user: u\n  password: p\npostgres:\n  slot: tidemark_demo\n  publication: pub_other\ntables:\n  - public.c\n",
        );
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(
            err.contains("other.yaml") && err.contains("demo.yaml") && err.contains("slot"),
            "{err}"
        );
        // Another database on the same server may use the same slot name.
        std::fs::write(&other, "kind: postgres\nconnection:\n  database: d2\n  user: u\n  password: p\npostgres:\n  slot: tidemark_demo\ntables:\n  - public.c\n").unwrap();
        load(&daemon, Vec::new()).unwrap();
        // The same publication on one database.
        std::fs::write(&other, "kind: postgres\nconnection:\n  database: d\n  user: u\n  password: p\npostgres:\n  slot: s2\n  publication: tidemark_demo\ntables:\n  - public.c\n").unwrap();
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("publication"), "{err}");
        // Two MySQL connectors with one server id on one server.
        let my = "kind: mysql\nconnection:\n  database: d\n  user: u\n  password: p\nmysql:\n  server_id: 77\ntables:\n  - d.t\n";
        std::fs::write(&other, my).unwrap();
        write(dir.path(), "connectors/third.yaml", my);
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(
            err.contains("server_id 77") && err.contains("third.yaml"),
            "{err}"
        );
    }

    #[test]
    fn snapshot_settings_per_connector_and_per_table() {
        let (dir, daemon) = setup(&format!(
            "{CONNECTOR}snapshot:\n  mode: on_demand\n  chunk_size: 50\n"
        ));
        write(
            dir.path(),
            "configs/tables/demo/public.a.yaml",
            "snapshot_chunk_size: 7\nsnapshot_max_rows_per_second: 100\n",
        );
        let s = load(&daemon, Vec::new()).unwrap();
        let c = &s.connectors[0];
        assert_eq!(c.snapshot.mode, SnapshotMode::OnDemand);
        assert_eq!(c.snapshot.chunk_size, 50);
        assert_eq!(c.tables[0].config.snapshot_chunk_size, Some(7));
        assert_eq!(c.tables[0].config.snapshot_max_rows_per_second, Some(100));

        write(
            dir.path(),
            "configs/tables/demo/public.a.yaml",
            "snapshot_chunk_size: 0\n",
        );
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(
            err.contains("public.a.yaml") && err.contains("snapshot_chunk_size"),
            "{err}"
        );
        let (_dir, daemon) = setup(&format!("{CONNECTOR}snapshot:\n  mode: sometimes\n"));
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("demo.yaml"), "{err}");
    }

    #[test]
    fn the_signing_key_comes_from_a_file_and_must_not_be_short() {
        let (dir, daemon) = setup(&format!(
            "{CONNECTOR}snapshot:\n  signing_key_file: signing.key\n"
        ));
        write(dir.path(), "connectors/signing.key", "0123456789abcdef\n");
        let s = load(&daemon, Vec::new()).unwrap();
        let key = s.connectors[0].snapshot.signing_key.clone().unwrap();
        assert_eq!(key.expose(), "0123456789abcdef");
        write(dir.path(), "connectors/signing.key", "short\n");
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(
            err.contains("demo.yaml") && err.contains("at least 16"),
            "{err}"
        );
        let (_dir, daemon) = setup(CONNECTOR);
        assert!(load(&daemon, Vec::new()).unwrap().connectors[0]
            .snapshot
            .signing_key
            .is_none());
    }

    #[test]
    fn table_file_for_unlisted_table_is_an_error() {
        let (dir, daemon) = setup(CONNECTOR);
        write(
            dir.path(),
            "configs/tables/demo/public.zzz.yaml",
            "topic: t\n",
        );
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("public.zzz.yaml"), "{err}");
        assert!(err.contains("not listed"), "{err}");
    }

    #[test]
    fn unknown_key_in_connector_names_file_and_line() {
        let (_dir, daemon) = setup(
            "kind: postgres\nconnection:\n  database: d\n  user: u\n  hots: x\ntables: [public.a]\n",
        );
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("connectors/demo.yaml:5:"), "{err}");
        assert!(err.contains("unknown field `hots`"), "{err}");
    }

    #[test]
    fn bad_table_name() {
        let (_dir, daemon) = setup(
            "kind: postgres\nconnection:\n  database: d\n  user: u\ntables: [public.a, nodot]\n",
        );
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("tables[1]"), "{err}");
    }

    #[test]
    fn kafka_sink_needs_brokers() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = write(dir.path(), "configs/tidemark.yaml", "sink: kafka\n");
        write(dir.path(), "connectors/demo.yaml", CONNECTOR);
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("kafka.brokers"), "{err}");
    }
}
