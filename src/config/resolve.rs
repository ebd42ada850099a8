//! Turns one connector file and its table files into a [`ConnectorConfig`]: secrets read,
//! defaults filled in, each source kind's block resolved by that source's `config` module.

use std::path::{Path, PathBuf};

use super::connector::{self, Connection, ConnectorFile, SourceKind};
use super::daemon::{AdminConfig, KafkaConfig, ResolvedClient, RouterConfig};
use super::loader::{env_overrides, load_file};
use super::resolved::{AdminSettings, SnapshotSettings, SourceSettings, TableEntry};
use super::table::Mask;
use super::validate::{connector_env_prefix, valid_topic_name};
use super::{base_dir, secret, ConfigError, ConnectorConfig, Secret, TableConfig};
use crate::event::TableId;
use crate::source::{mysql, postgres};

/// The snapshot's signing key: from `snapshot.signing_key_env` or `signing_key_file`; at least
/// 16 bytes, since it is all that stands between a signal writer and SQL.
fn signing_key(
    file: &Path,
    snap: &connector::SnapshotOptions,
    dir: &Path,
    vars: &[(String, String)],
) -> Result<Option<Secret>, ConfigError> {
    let source = secret::SecretSource {
        password: None,
        password_env: snap.signing_key_env.clone(),
        password_file: snap.signing_key_file.clone(),
    };
    if source.password_env.is_none() && source.password_file.is_none() {
        return Ok(None);
    }
    let key = source.resolve(file, "snapshot.signing_key", dir, vars)?;
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

pub fn load_connector(
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
    let password = raw
        .connection
        .secret()
        .resolve(file, "connection", &dir, vars)?;
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
        sslcert: raw.connection.sslcert.as_ref().map(|p| dir.join(p)),
        sslkey: raw.connection.sslkey.as_ref().map(|p| dir.join(p)),
        connect_timeout_ms: raw.connection.connect_timeout_ms,
    };
    check_tls(&connection, raw.kind, file)?;
    let source = match raw.kind {
        SourceKind::Postgres => SourceSettings::Postgres(postgres::config::resolve(
            raw.postgres.as_ref(),
            &name,
            file,
        )?),
        SourceKind::Mysql => SourceSettings::Mysql(mysql::config::resolve(
            raw.mysql.as_ref(),
            &connection.database,
            file,
        )?),
    };
    let snap = raw.snapshot.clone().unwrap_or_default();
    let snapshot = SnapshotSettings {
        mode: snap.mode.unwrap_or_default(),
        chunk_size: snap.chunk_size.unwrap_or(1024),
        max_rows_per_second: snap.max_rows_per_second.unwrap_or(0),
        signing_key: signing_key(file, &snap, &dir, vars)?,
        on_lost_position: snap.on_lost_position.unwrap_or_default(),
        require_signed_signals: snap.require_signed_signals.unwrap_or(false),
        max_queued_tasks: snap.max_queued_tasks.unwrap_or(100),
        parallelism: snap.parallelism.unwrap_or(1),
    };
    if snapshot.parallelism == 0 || snapshot.parallelism > 16 {
        return Err(ConfigError::invalid(
            file,
            "snapshot.parallelism",
            "set between 1 and 16 (chunks read at once, each by its own database session)",
        ));
    }
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
            contract: None,
        });
    }
    load_table_files(&name, file, &tables_dir.join(&name), &mut tables)?;
    Ok(ConnectorConfig {
        name,
        file: file.to_path_buf(),
        enabled: raw.enabled,
        connection,
        source,
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
        if let Some(key) = &config.key {
            if key.is_empty() {
                return Err(ConfigError::invalid(
                    &file,
                    "key",
                    "list at least one column",
                ));
            }
        }
        check_routing(&file, &config)?;
        entry.contract = config
            .contract
            .as_deref()
            .map(|c| super::Contract::load(&file, c).map(std::sync::Arc::new))
            .transpose()?;
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

/// The salt of `hash` masks, when the daemon file says where it is.
pub fn hash_salt(
    file: &Path,
    base_dir: &Path,
    router: &RouterConfig,
    env: &[(String, String)],
) -> Result<Option<Secret>, ConfigError> {
    env_or_file_secret(
        file,
        base_dir,
        ("router.hash_salt_env", router.hash_salt_env.as_deref()),
        ("router.hash_salt_file", router.hash_salt_file.as_deref()),
        env,
    )
}

/// A secret named by a pair of keys: `<x>_env` (an environment variable) or `<x>_file` (a
/// file relative to `base_dir`, trailing newline trimmed), at most one of them; the errors
/// name `file` and the key at fault.
pub fn env_or_file_secret(
    file: &Path,
    base_dir: &Path,
    (env_key, env_var): (&str, Option<&str>),
    (file_key, path): (&str, Option<&Path>),
    env: &[(String, String)],
) -> Result<Option<Secret>, ConfigError> {
    match (env_var, path) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            file,
            env_key,
            format!("set only one of `{env_key}` and `{file_key}`"),
        )),
        (Some(var), None) => match env.iter().find(|(n, _)| n == var) {
            Some((_, v)) if !v.is_empty() => Ok(Some(Secret::new(v.clone()))),
            _ => Err(ConfigError::invalid(
                file,
                env_key,
                format!("environment variable `{var}` is not set (or empty)"),
            )),
        },
        (None, Some(path)) => {
            let path = base_dir.join(path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::invalid(
                    file,
                    file_key,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let secret = text.trim_end_matches(['\n', '\r']);
            if secret.is_empty() {
                return Err(ConfigError::invalid(
                    file,
                    file_key,
                    format!("{} is empty", path.display()),
                ));
            }
            Ok(Some(Secret::new(secret)))
        }
        (None, None) => Ok(None),
    }
}

/// librdkafka properties that hold a secret: never written inline.
const KAFKA_SECRETS: [(&str, &str); 5] = [
    (
        "sasl.password",
        "kafka.sasl_password_env (or sasl_password_file)",
    ),
    (
        "ssl.key.password",
        "kafka.ssl_key_password_env (or ssl_key_password_file)",
    ),
    (
        "ssl.keystore.password",
        "a PEM key (ssl.key.location) with kafka.ssl_key_password_env",
    ),
    ("ssl.truststore.password", "a PEM CA file (ssl.ca.location)"),
    ("sasl.oauthbearer.client.secret", "SASL PLAIN or SCRAM"),
];

/// `kafka.client` checked and resolved: no secret inline, no `bootstrap.servers` (that is
/// `kafka.brokers`), a known `security.protocol` with what it needs, `ssl.*.location` files
/// that exist (relative to the daemon file), and the SASL and key passwords from their
/// `_env` / `_file`. Errors name the file and the key.
pub fn kafka_client(
    file: &Path,
    base_dir: &Path,
    kafka: &KafkaConfig,
    env: &[(String, String)],
) -> Result<ResolvedClient, ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::invalid(file, key, message);
    for (map, properties) in [
        ("kafka.client", &kafka.client),
        ("kafka.producer", &kafka.producer),
    ] {
        for (secret, instead) in KAFKA_SECRETS {
            if properties.contains_key(secret) {
                return Err(invalid(
                    &format!("{map}.{secret}"),
                    format!("a secret is not written in the file: use {instead}"),
                ));
            }
        }
        if properties.contains_key("bootstrap.servers") {
            return Err(invalid(
                &format!("{map}.bootstrap.servers"),
                "the brokers are kafka.brokers".into(),
            ));
        }
    }
    for key in kafka.producer.keys() {
        if key.starts_with("security.") || key.starts_with("ssl.") || key.starts_with("sasl.") {
            return Err(invalid(
                &format!("kafka.producer.{key}"),
                "security settings go under kafka.client, which every Kafka client of tidemark takes (the producer alone would leave the admin client and the position store without them)".into(),
            ));
        }
    }
    let protocol = kafka
        .client
        .get("security.protocol")
        .map_or("plaintext".to_string(), |p| p.to_ascii_lowercase());
    let (tls, sasl) = match protocol.as_str() {
        "plaintext" => (false, false),
        "ssl" => (true, false),
        "sasl_plaintext" => (false, true),
        "sasl_ssl" => (true, true),
        other => {
            return Err(invalid(
                "kafka.client.security.protocol",
                format!("`{other}` is not one of plaintext, ssl, sasl_plaintext, sasl_ssl"),
            ))
        }
    };
    let mut properties = kafka.client.clone();
    for (key, value) in properties.iter_mut() {
        if key.starts_with("ssl.") && key.ends_with(".location") {
            let path = base_dir.join(&*value);
            if !path.exists() {
                return Err(invalid(
                    &format!("kafka.client.{key}"),
                    format!("{} does not exist", path.display()),
                ));
            }
            *value = path.to_string_lossy().into_owned();
        }
    }
    if !tls && properties.keys().any(|k| k.starts_with("ssl.")) {
        return Err(invalid(
            "kafka.client.security.protocol",
            format!(
                "ssl.* settings are set but security.protocol is {protocol}: set ssl or sasl_ssl"
            ),
        ));
    }
    let password = env_or_file_secret(
        file,
        base_dir,
        (
            "kafka.sasl_password_env",
            kafka.sasl_password_env.as_deref(),
        ),
        (
            "kafka.sasl_password_file",
            kafka.sasl_password_file.as_deref(),
        ),
        env,
    )?;
    let key_password = env_or_file_secret(
        file,
        base_dir,
        (
            "kafka.ssl_key_password_env",
            kafka.ssl_key_password_env.as_deref(),
        ),
        (
            "kafka.ssl_key_password_file",
            kafka.ssl_key_password_file.as_deref(),
        ),
        env,
    )?;
    if sasl {
        let mechanism = properties
            .get("sasl.mechanism")
            .or_else(|| properties.get("sasl.mechanisms"))
            .map(|m| m.to_ascii_uppercase());
        match mechanism.as_deref() {
            Some("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") => {
                if !properties.contains_key("sasl.username") {
                    return Err(invalid(
                        "kafka.client.sasl.username",
                        format!("security.protocol {protocol} needs sasl.username"),
                    ));
                }
                if password.is_none() {
                    return Err(invalid(
                        "kafka.sasl_password_env",
                        format!("security.protocol {protocol} needs the SASL password: set kafka.sasl_password_env or kafka.sasl_password_file"),
                    ));
                }
            }
            Some(other) => {
                return Err(invalid(
                    "kafka.client.sasl.mechanism",
                    format!("`{other}` is not supported by this build: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
                ))
            }
            None => {
                return Err(invalid(
                    "kafka.client.sasl.mechanism",
                    format!("security.protocol {protocol} needs sasl.mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
                ))
            }
        }
    } else if password.is_some() {
        return Err(invalid(
            "kafka.sasl_password_env",
            format!("a SASL password is set but security.protocol is {protocol}: set sasl_plaintext or sasl_ssl"),
        ));
    }
    let mut secrets = Vec::new();
    if let Some(p) = password {
        secrets.push(("sasl.password", p));
    }
    if let Some(p) = key_password {
        if !properties.contains_key("ssl.key.location") {
            return Err(invalid(
                "kafka.ssl_key_password_env",
                "a key password is set but kafka.client has no ssl.key.location".into(),
            ));
        }
        secrets.push(("ssl.key.password", p));
    }
    Ok(ResolvedClient {
        properties,
        secrets,
    })
}

/// The admin API's settings (`None`: `admin.listen: off`). Refuses a non-loopback address
/// without a token: the API can pause connectors and read their errors.
pub fn admin(
    file: &Path,
    base_dir: &Path,
    admin: &AdminConfig,
    env: &[(String, String)],
) -> Result<Option<AdminSettings>, ConfigError> {
    let token = env_or_file_secret(
        file,
        base_dir,
        ("admin.token_env", admin.token_env.as_deref()),
        ("admin.token_file", admin.token_file.as_deref()),
        env,
    )?;
    let listen = admin.listen.trim();
    if listen.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        ConfigError::invalid(
            file,
            "admin.listen",
            format!("`{listen}` is not an address (`ip:port`, such as 127.0.0.1:8083 or 0.0.0.0:8083), nor `off`"),
        )
    })?;
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(ConfigError::invalid(
            file,
            "admin.listen",
            format!(
                "{addr} is not a loopback address: set admin.token_env or admin.token_file, \
                 the bearer token every request must then carry (anyone who reaches the API can \
                 pause and restart connectors)"
            ),
        ));
    }
    Ok(Some(AdminSettings {
        listen: addr,
        token,
        source_poll: (admin.source_poll_ms > 0)
            .then(|| std::time::Duration::from_millis(admin.source_poll_ms.max(1_000))),
    }))
}

/// The checks of a table file's routing rules that need no server: templates and filters
/// parse, rules do not contradict each other. (Column names are checked against the live
/// table at start-up and by `tidemark check`.)
fn check_routing(file: &Path, config: &TableConfig) -> Result<(), ConfigError> {
    use crate::router::filter::Filter;
    use crate::router::template::{Template, TABLE_PLACEHOLDERS};
    let invalid = |key: &str, message: String| ConfigError::invalid(file, key, message);
    if let Some(topic) = &config.topic {
        let t = Template::parse(topic).map_err(|e| invalid("topic", e))?;
        if let Some(c) = t.column_placeholders().next() {
            return Err(invalid(
                "topic",
                format!(
                    "`{{{c}}}` is not one of {}: a table's topic cannot name a column (an outbox's can)",
                    TABLE_PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ),
            ));
        }
        let sample = t
            .render(|_| Some("x".into()))
            .map_err(|e| invalid("topic", e))?;
        if !valid_topic_name(&sample) {
            return Err(invalid(
                "topic",
                format!(
                    "`{topic}`: topic names may hold only ASCII letters, digits, '.', '_' and '-'"
                ),
            ));
        }
    }
    if let Some(f) = &config.filter {
        Filter::parse(f).map_err(|e| invalid("filter", e))?;
    }
    let columns = &config.columns;
    if columns.include.is_some() && columns.exclude.is_some() {
        return Err(invalid(
            "columns",
            "set `include` or `exclude`, not both".into(),
        ));
    }
    if let Some(include) = &columns.include {
        if include.is_empty() {
            return Err(invalid(
                "columns.include",
                "list at least one column".into(),
            ));
        }
    }
    let kept = |name: &str| {
        columns
            .include
            .as_ref()
            .is_none_or(|i| i.iter().any(|c| c == name))
            && !columns.exclude.iter().flatten().any(|c| c == name)
    };
    for (k, name) in config.key.iter().flatten().enumerate() {
        if !kept(name) {
            return Err(invalid(
                &format!("key[{k}]"),
                format!("key column `{name}` is left out by `columns`: the key is made of message columns"),
            ));
        }
        if let Some(mask) = columns.mask.get(name) {
            if *mask != Mask::Hash {
                return Err(invalid(
                    &format!("columns.mask.{name}"),
                    format!("`{name}` is a key column: only `hash` keeps distinct keys distinct"),
                ));
            }
        }
    }
    for name in columns.mask.keys() {
        if !kept(name) {
            return Err(invalid(
                &format!("columns.mask.{name}"),
                format!("`{name}` is masked but left out by `columns`"),
            ));
        }
    }
    if let Some(outbox) = &config.outbox {
        if config.key.is_some() || *columns != Default::default() {
            return Err(invalid(
                "outbox",
                "an outbox table takes its key from outbox.key and sends the payload as is: \
                 remove `key` and `columns`"
                    .into(),
            ));
        }
        let t = Template::parse(&outbox.topic).map_err(|e| invalid("outbox.topic", e))?;
        if t.column_placeholders().next().is_none() {
            let sample = t
                .render(|_| Some("x".into()))
                .map_err(|e| invalid("outbox.topic", e))?;
            if !valid_topic_name(&sample) {
                return Err(invalid(
                    "outbox.topic",
                    format!("`{}` is not a valid topic name", outbox.topic),
                ));
            }
        }
    }
    Ok(())
}

/// TLS settings that cannot work, refused when the file is loaded.
fn check_tls(c: &Connection, kind: SourceKind, file: &Path) -> Result<(), ConfigError> {
    use super::connector::SslMode;
    if c.sslcert.is_some() != c.sslkey.is_some() {
        return Err(ConfigError::invalid(
            file,
            "connection.sslcert",
            "sslcert and sslkey go together (the client certificate and its key)",
        ));
    }
    if c.sslmode == SslMode::Disable && (c.sslcert.is_some() || c.sslrootcert.is_some()) {
        return Err(ConfigError::invalid(
            file,
            "connection.sslmode",
            "certificates are set but sslmode is `disable`: set sslmode (verify-full checks the server's)",
        ));
    }
    match (kind, c.sslmode) {
        (SourceKind::Mysql, SslMode::Prefer) => Err(ConfigError::invalid(
            file,
            "connection.sslmode",
            "`prefer` is PostgreSQL's (TLS when offered, else plain); for MySQL/MariaDB use require, verify-ca or verify-full",
        )),
        (SourceKind::Postgres, SslMode::VerifyCa | SslMode::VerifyFull)
            if c.sslrootcert.is_none() =>
        {
            Err(ConfigError::invalid(
                file,
                "connection.sslrootcert",
                format!(
                    "sslmode {} checks the server's certificate against sslrootcert: name the CA file (PEM)",
                    c.sslmode.as_str()
                ),
            ))
        }
        _ => Ok(()),
    }
}
