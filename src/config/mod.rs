//! Configuration: loading, validation and environment overrides.
//!
//! Owns: the three kinds of YAML file (daemon, connector, table), their defaults, and the
//! checks that need no server. Must not: connect to anything.
//!
//! Layout: `configs/tidemark.yaml` names a connectors directory (one file per source
//! database) and a tables directory (`<connector>/<schema>.<table>.yaml`). Environment
//! variables override any key: `TIDEMARK__KAFKA__BROKERS` for the daemon file,
//! `TIDEMARK__CONNECTORS__<NAME>__CONNECTION__HOST` for connector `<name>`.
//!
//! Files: the file formats ([`daemon`], [`connector`], [`table`]), how a file is read
//! ([`loader`], [`secret`]), how a connector is resolved ([`resolve`]; each source kind's own
//! block by `source::<kind>::config`), the resolved types ([`resolved`]) and the checks
//! across files ([`validate`]).

pub mod connector;
pub mod contract;
pub mod daemon;
pub mod error;
pub mod loader;
pub mod registry;
pub mod resolve;
pub mod resolved;
pub mod secret;
pub mod table;
pub mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use connector::{Connection, GtidUse, OnLostPosition, SnapshotMode, SourceKind, SslMode};
pub use contract::Contract;
pub use daemon::{
    AdminConfig, DaemonConfig, DecimalHandling, Format, LogFormat, OnConnectorFailure,
    PositionStoreKind, SinkKind, ValueProfile, Values,
};
pub use error::ConfigError;
pub use registry::{CompatibilityLevel, RegistryAuth, RegistrySettings, SubjectStrategy};
#[cfg(test)]
pub use resolved::test_mysql_connector;
pub use resolved::{
    AdminSettings, ConnectorConfig, MysqlSettings, PostgresSettings, Settings, SnapshotSettings,
    SourceSettings, TableEntry,
};
pub use secret::Secret;
pub use table::TableConfig;
pub use validate::valid_topic_name;

use loader::{env_overrides, load_file};
use resolve::load_connector;
use validate::{check_conflicts, check_connector_overrides, validate_daemon};

fn base_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Loads the daemon file at `path` alone, with its environment overrides (for commands that
/// need no database, such as `tail`: no connector's password is asked for).
pub fn load_daemon(
    path: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<DaemonConfig, ConfigError> {
    let vars_for_secrets: Vec<(String, String)> = vars.into_iter().collect();
    let overrides = env_overrides(
        vars_for_secrets.iter().cloned(),
        "TIDEMARK__",
        &["TIDEMARK__CONNECTORS__".to_string()],
    );
    let mut daemon: DaemonConfig = load_file(path, &overrides)?;
    validate_daemon(path, &daemon)?;
    let vars: Vec<(String, String)> = vars_for_secrets;
    daemon.kafka.resolved = resolve::kafka_client(path, &base_dir(path), &daemon.kafka, &vars)?;
    Ok(daemon)
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
    let mut daemon: DaemonConfig = load_file(path, &daemon_overrides)?;
    let dir = base_dir(path);
    validate_daemon(path, &daemon)?;
    daemon.kafka.resolved = resolve::kafka_client(path, &dir, &daemon.kafka, &vars)?;

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
    let hash_salt = resolve::hash_salt(path, &dir, &daemon.router, &vars)?;
    if hash_salt.is_none() {
        if let Some((c, t)) = connectors
            .iter()
            .flat_map(|c| c.tables.iter().map(move |t| (c, t)))
            .find(|(_, t)| t.config.hashes())
        {
            return Err(ConfigError::invalid(
                t.file.as_deref().unwrap_or(&c.file),
                "columns.mask",
                format!(
                    "a `hash` mask needs a salt: set router.hash_salt_env or router.hash_salt_file in {}",
                    path.display()
                ),
            ));
        }
    }
    let schema_registry = daemon
        .schema_registry
        .as_ref()
        .map(|r| r.resolve(path, &dir, &vars))
        .transpose()?;
    if schema_registry.is_none() {
        if daemon.format == Format::Avro {
            return Err(ConfigError::invalid(
                path,
                "format",
                "the avro format needs a schema registry: set schema_registry.url",
            ));
        }
        if let Some((c, t)) = connectors
            .iter()
            .flat_map(|c| c.tables.iter().map(move |t| (c, t)))
            .find(|(_, t)| t.config.format == Some(Format::Avro))
        {
            return Err(ConfigError::invalid(
                t.file.as_deref().unwrap_or(&c.file),
                "format",
                format!(
                    "the avro format needs a schema registry: set schema_registry.url in {}",
                    path.display()
                ),
            ));
        }
    }
    if daemon.decimal_handling.is_some() && daemon.values != ValueProfile::Debezium {
        return Err(ConfigError::invalid(
            path,
            "decimal_handling",
            "decimal_handling applies to `values: debezium` (the tidemark profile writes decimals as exact strings)",
        ));
    }
    for c in &connectors {
        for t in &c.tables {
            let file = t.file.as_deref().unwrap_or(&c.file);
            let format = t.config.format.unwrap_or(daemon.format);
            let values = t.config.values.unwrap_or(daemon.values);
            if t.config.decimal_handling.is_some() && values != ValueProfile::Debezium {
                return Err(ConfigError::invalid(
                    file,
                    "decimal_handling",
                    "decimal_handling applies to `values: debezium` (set it here or in tidemark.yaml)",
                ));
            }
            if t.contract.is_some() && values == ValueProfile::Debezium {
                return Err(ConfigError::invalid(
                    file,
                    "contract",
                    "a contract sets the Avro type of every field itself: `values: debezium` does not apply to it (use values: tidemark for this table)",
                ));
            }
            if t.contract.is_some() && format != Format::Avro {
                return Err(ConfigError::invalid(
                    file,
                    "contract",
                    "a contract is an Avro schema: it applies to the avro format (set `format: avro` here or in tidemark.yaml)",
                ));
            }
            if t.config.outbox.is_some() && format == Format::Avro && t.contract.is_none() {
                return Err(ConfigError::invalid(
                    file,
                    "contract",
                    "an outbox table in the avro format needs `contract:`, the Avro schema of its payloads",
                ));
            }
        }
    }
    let admin = resolve::admin(path, &dir, &daemon.admin, &vars)?;
    let keep_running_on_failure = match daemon.on_connector_failure {
        Some(OnConnectorFailure::KeepRunning) => true,
        Some(OnConnectorFailure::Exit) => false,
        None => admin.is_some(),
    };
    Ok(Settings {
        file: path.to_path_buf(),
        schema_registry,
        admin,
        keep_running_on_failure,
        positions_dir: dir.join(&daemon.offsets.path),
        daemon,
        position_store,
        connectors,
        hash_salt,
    })
}
