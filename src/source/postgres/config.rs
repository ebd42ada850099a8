//! The `postgres:` block of a `kind: postgres` connector file, and its resolved settings.
//!
//! Owns: the PostgreSQL-only keys, their defaults and the checks that need no server. Must
//! not: connect to anything (the config loader calls [`resolve`]).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::source::read_pacing::coalesce_setting;

/// The `postgres:` block as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresOptions {
    /// Replication slot name; default `tidemark_<connector>`.
    #[serde(default)]
    pub slot: Option<String>,
    /// Publication name; default `tidemark_<connector>`.
    #[serde(default)]
    pub publication: Option<String>,
    /// Create the slot when missing (default true).
    #[serde(default)]
    pub create_slot: Option<bool>,
    /// Create the publication when missing, and add configured tables it lacks (default true).
    #[serde(default)]
    pub create_publication: Option<bool>,
    /// How often a standby status update is sent at the latest, in milliseconds.
    #[serde(default)]
    pub status_interval_ms: Option<u64>,
    /// Under load, how long a read of the WAL stream waits after the previous one, so that
    /// one wake-up reads more messages (milliseconds; 0: read as soon as data arrives).
    #[serde(default)]
    pub read_coalesce_ms: Option<u64>,
}

/// The resolved `postgres:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    pub slot: String,
    pub publication: String,
    pub create_slot: bool,
    pub create_publication: bool,
    pub status_interval: Duration,
    pub read_coalesce: Duration,
}

/// The default slot and publication name of connector `name`.
pub fn default_name(name: &str) -> String {
    format!("tidemark_{}", name.to_lowercase().replace('-', "_"))
}

/// Resolves the block of connector `name` (file `file`): defaults, and the slot name's rule.
pub fn resolve(
    options: Option<&PostgresOptions>,
    name: &str,
    file: &Path,
) -> Result<PostgresSettings, ConfigError> {
    let pg = options.cloned().unwrap_or_default();
    let settings = PostgresSettings {
        slot: pg.slot.unwrap_or_else(|| default_name(name)),
        publication: pg.publication.unwrap_or_else(|| default_name(name)),
        create_slot: pg.create_slot.unwrap_or(true),
        create_publication: pg.create_publication.unwrap_or(true),
        status_interval: Duration::from_millis(pg.status_interval_ms.unwrap_or(10_000)),
        read_coalesce: coalesce_setting(pg.read_coalesce_ms, "postgres.read_coalesce_ms", file)?,
    };
    if !valid_identifier(&settings.slot) {
        return Err(ConfigError::invalid(
            file,
            "postgres.slot",
            format!(
                "`{}`: a slot name may hold only lower-case letters, digits and '_' (at most 63)",
                settings.slot
            ),
        ));
    }
    Ok(settings)
}

/// What two connectors on one database must not share, if these two do.
pub fn shared(a: &PostgresSettings, b: &PostgresSettings) -> Option<String> {
    if a.slot == b.slot {
        Some(format!("the replication slot `{}`", a.slot))
    } else if a.publication == b.publication {
        Some(format!("the publication `{}`", a.publication))
    } else {
        None
    }
}

fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_slot_and_publication_after_the_connector() {
        let s = resolve(None, "My-Db", Path::new("c.yaml")).unwrap();
        assert_eq!(s.slot, "tidemark_my_db");
        assert_eq!(s.publication, "tidemark_my_db");
        assert!(s.create_slot && s.create_publication);
        assert_eq!(s.status_interval, Duration::from_secs(10));
    }

    #[test]
    fn a_bad_slot_name_is_an_error_naming_file_and_key() {
        let o = PostgresOptions {
            slot: Some("Bad-Slot".into()),
            ..Default::default()
        };
        let err = resolve(Some(&o), "c", Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.yaml") && err.contains("postgres.slot"),
            "{err}"
        );
    }
}
