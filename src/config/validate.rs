//! The checks of the configuration that look across files (connectors against each other,
//! environment overrides against connectors) or at the daemon file as a whole.

use std::path::Path;

use super::daemon::{DaemonConfig, SinkKind};
use super::{ConfigError, ConnectorConfig};

/// The environment prefix of connector `name`'s overrides.
pub fn connector_env_prefix(name: &str) -> String {
    format!(
        "TIDEMARK__CONNECTORS__{}__",
        name.to_uppercase().replace('-', "_")
    )
}

/// Every `TIDEMARK__CONNECTORS__<NAME>__...` variable must name a loaded connector: one that
/// names none would be ignored silently.
pub fn check_connector_overrides(
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
pub fn check_conflicts(connectors: &[ConnectorConfig]) -> Result<(), ConfigError> {
    let enabled: Vec<&ConnectorConfig> = connectors.iter().filter(|c| c.enabled).collect();
    for (i, a) in enabled.iter().enumerate() {
        for b in &enabled[i + 1..] {
            let same_server = a.kind() == b.kind()
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
            } else if same_server {
                a.source.shared_with(&b.source, same_db)
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

/// Why a `bootstrap.servers` list is not `host:port[,host:port...]` (an optional
/// `PLAINTEXT://`-style scheme allowed, IPv6 hosts in brackets), if it is not.
pub fn broker_list_error(list: &str) -> Option<String> {
    for entry in list.split(',').map(str::trim) {
        let bare = entry.split_once("://").map_or(entry, |(_, rest)| rest);
        let Some((host, port)) = bare.rsplit_once(':') else {
            return Some(format!(
                "`{entry}` has no port: write host:port (9092 is Kafka's usual port)"
            ));
        };
        let host_ok = !host.is_empty()
            && (host.starts_with('[') && host.ends_with(']')
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
        if !host_ok {
            return Some(format!("`{entry}`: `{host}` is not a host name or address"));
        }
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Some(format!("`{entry}`: `{port}` is not a port (1-65535)"));
        }
    }
    None
}

pub fn validate_daemon(path: &Path, d: &DaemonConfig) -> Result<(), ConfigError> {
    if d.sink == SinkKind::Kafka && d.kafka.brokers.as_deref().unwrap_or("").is_empty() {
        return Err(ConfigError::invalid(
            path,
            "kafka.brokers",
            "required with `sink: kafka` (host:port[,host:port])",
        ));
    }
    if let Some(list) = d.kafka.brokers.as_deref().filter(|l| !l.is_empty()) {
        if let Some(bad) = broker_list_error(list) {
            return Err(ConfigError::invalid(path, "kafka.brokers", bad));
        }
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
    let template = crate::router::template::Template::parse(&d.router.topic)
        .map_err(|e| ConfigError::invalid(path, "router.topic", e))?;
    if let Some(c) = template.column_placeholders().next() {
        return Err(ConfigError::invalid(
            path,
            "router.topic",
            format!(
                "`{{{c}}}` is not one of {{prefix}}, {{connector}}, {{db}}, {{schema}}, {{table}}"
            ),
        ));
    }
    let dlq = crate::router::template::Template::parse(&d.dead_letter.topic)
        .map_err(|e| ConfigError::invalid(path, "dead_letter.topic", e))?;
    let sample = dlq.render(|p| matches!(p, "prefix" | "connector").then(|| "x".into()));
    if !sample.is_ok_and(|t| valid_topic_name(&t)) {
        return Err(ConfigError::invalid(
            path,
            "dead_letter.topic",
            format!(
                "`{}`: a topic name, or a template of {{prefix}} and {{connector}}",
                d.dead_letter.topic
            ),
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
