//! Reading one YAML file into a typed configuration, with environment overrides.
//!
//! Every configuration struct denies unknown fields, so a misspelt key is an error. The file
//! is first deserialized alone with `serde_yaml`, which knows lines and columns; environment
//! overrides are then applied through the `config` crate and the result deserialized again.
//! Errors name the file, the dotted key path, the line where known, and the environment
//! variable when an override was at fault.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::error::{ConfigError, Location};

/// One `TIDEMARK__...` environment variable, already mapped to a key path of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    /// The variable's name, for error messages.
    pub var: String,
    /// Dotted, lower-case key path inside the file (`kafka.brokers`).
    pub key: String,
    pub value: String,
}

/// Collects the overrides under `prefix` (e.g. `TIDEMARK__` or `TIDEMARK__CONNECTORS__DEMO__`)
/// from `vars`, skipping names that start with any of `exclude` (full variable-name prefixes).
pub fn env_overrides(
    vars: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
    exclude: &[String],
) -> Vec<EnvOverride> {
    let mut out: Vec<EnvOverride> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(prefix) && name.len() > prefix.len())
        .filter(|(name, _)| !exclude.iter().any(|e| name.starts_with(e.as_str())))
        .map(|(name, value)| EnvOverride {
            key: name[prefix.len()..]
                .split("__")
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join("."),
            var: name,
            value,
        })
        .collect();
    out.sort_by(|a, b| a.var.cmp(&b.var));
    out
}

/// Reads and deserializes `file`, applying `overrides`.
pub fn load_file<T: DeserializeOwned>(
    file: &Path,
    overrides: &[EnvOverride],
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse_str(file, &text, overrides)
}

/// Deserializes `text` (the content of `file`) with `overrides` applied.
pub fn parse_str<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    overrides: &[EnvOverride],
) -> Result<T, ConfigError> {
    let located = from_yaml_located::<T>(file, text);
    if overrides.is_empty() {
        return located;
    }
    let merged = from_merged::<T>(file, text, overrides);
    match (located, merged) {
        (_, Ok(value)) => Ok(value),
        // The file alone was fine: the override is at fault.
        (Ok(_), Err(e)) => Err(e),
        // Both failed: prefer the file's error (it has a line) when it is about the same key.
        (
            Err(ConfigError::Invalid {
                key: fk,
                location,
                message: fm,
                ..
            }),
            Err(ConfigError::Invalid {
                file: f,
                key: mk,
                message: mm,
                location: _,
            }),
        ) => {
            if fk == mk {
                Err(ConfigError::Invalid {
                    file: f,
                    key: fk,
                    location,
                    message: fm,
                })
            } else {
                Err(ConfigError::Invalid {
                    file: f,
                    key: mk,
                    location: None,
                    message: mm,
                })
            }
        }
        (_, Err(e)) => Err(e),
    }
}

fn from_yaml_located<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    // An empty file is an empty mapping, so that defaults apply.
    let text = if text.trim().is_empty() { "{}" } else { text };
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let key = clean_path(&err.path().to_string());
        let inner = err.into_inner();
        let location = inner.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        });
        let mut message = inner.to_string();
        if let Some(l) = &location {
            let suffix = format!(" at line {} column {}", l.line, l.column);
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        // serde_yaml prefixes the path itself ("kafka.brokers: invalid type ..."): drop it.
        if let Some((prefix, rest)) = message.split_once(": ") {
            if !prefix.is_empty() && key.starts_with(prefix) && !prefix.contains(' ') {
                message = rest.to_string();
            }
        }
        ConfigError::Invalid {
            file: file.to_path_buf(),
            key,
            location,
            message,
        }
    })
}

fn from_merged<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    overrides: &[EnvOverride],
) -> Result<T, ConfigError> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Yaml));
    for o in overrides {
        builder = builder
            .set_override(o.key.as_str(), o.value.clone())
            .map_err(|e| {
                ConfigError::invalid(file, &o.key, format!("{} (from ${}): {e}", o.value, o.var))
            })?;
    }
    let cfg = builder
        .build()
        .map_err(|e| ConfigError::invalid(file, "", e.to_string()))?;
    serde_path_to_error::deserialize(cfg).map_err(|err| {
        let key = clean_path(&err.path().to_string());
        let mut message = err.into_inner().to_string();
        let culprit = overrides
            .iter()
            .find(|o| !key.is_empty() && (o.key == key || o.key.starts_with(&format!("{key}."))))
            .or_else(|| {
                overrides
                    .iter()
                    .find(|o| message.contains(o.key.rsplit('.').next().unwrap_or("")))
            });
        if let Some(o) = culprit {
            message = format!("{message} (environment variable {})", o.var);
        }
        ConfigError::Invalid {
            file: file.to_path_buf(),
            key,
            location: None,
            message,
        }
    })
}

/// serde_path_to_error renders the root as `.`; we want an empty path there.
fn clean_path(path: &str) -> String {
    if path == "." || path == "?" {
        String::new()
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        brokers: String,
        #[serde(default)]
        partitions: u16,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        kafka: Inner,
        #[serde(default)]
        tables: Vec<String>,
    }

    fn file() -> &'static Path {
        Path::new("configs/x.yaml")
    }

    #[test]
    fn unknown_key_names_file_key_and_line() {
        let text = "kafka:\n  brokers: a\n  brokerz: b\n";
        let err = parse_str::<Outer>(file(), text, &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("configs/x.yaml:3:"), "{err}");
        assert!(err.contains("unknown field `brokerz`"), "{err}");
        assert!(err.contains("`kafka.brokerz`"), "{err}");
    }

    #[test]
    fn bad_type_names_key() {
        let text = "kafka:\n  brokers: a\n  partitions: lots\n";
        let err = parse_str::<Outer>(file(), text, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka.partitions"), "{err}");
        assert!(err.contains(":3:"), "{err}");
    }

    #[test]
    fn missing_key_is_reported() {
        let err = parse_str::<Outer>(file(), "kafka: {}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `brokers`"), "{err}");
    }

    #[test]
    fn env_override_applies_and_converts() {
        let vars = vec![
            ("TIDEMARK__KAFKA__BROKERS".to_string(), "k:9092".to_string()),
            ("TIDEMARK__KAFKA__PARTITIONS".to_string(), "3".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let ov = env_overrides(vars, "TIDEMARK__", &[]);
        assert_eq!(ov.len(), 2);
        let v: Outer = parse_str(file(), "kafka:\n  brokers: a\n", &ov).unwrap();
        assert_eq!(v.kafka.brokers, "k:9092");
        assert_eq!(v.kafka.partitions, 3);
    }

    #[test]
    fn env_override_supplies_missing_key() {
        let ov = env_overrides(
            vec![("TIDEMARK__KAFKA__BROKERS".to_string(), "k".to_string())],
            "TIDEMARK__",
            &[],
        );
        let v: Outer = parse_str(file(), "kafka: {}\n", &ov).unwrap();
        assert_eq!(v.kafka.brokers, "k");
    }

    #[test]
    fn unknown_env_key_is_an_error_naming_the_variable() {
        let ov = env_overrides(
            vec![("TIDEMARK__KAFKA__BROKERZ".to_string(), "k".to_string())],
            "TIDEMARK__",
            &[],
        );
        let err = parse_str::<Outer>(file(), "kafka:\n  brokers: a\n", &ov)
            .unwrap_err()
            .to_string();
        assert!(err.contains("brokerz"), "{err}");
        assert!(err.contains("TIDEMARK__KAFKA__BROKERZ"), "{err}");
    }

    #[test]
    fn excluded_prefixes_are_skipped() {
        let ov = env_overrides(
            vec![
                ("TIDEMARK__CONNECTORS__DEMO__X".to_string(), "1".to_string()),
                ("TIDEMARK__KAFKA__BROKERS".to_string(), "1".to_string()),
            ],
            "TIDEMARK__",
            &["TIDEMARK__CONNECTORS__".to_string()],
        );
        assert_eq!(ov.len(), 1);
        assert_eq!(ov[0].key, "kafka.brokers");
    }
}
