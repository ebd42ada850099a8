//! Secrets (passwords): read from an environment variable or a file, never printed.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::error::ConfigError;

/// A secret value. Its `Debug` and `Display` print `***`, so it never reaches a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it (a connection handshake).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A secret written inline in a file (a string) is a [`Secret`] from the moment it is read, so
/// the `Debug` of the file's structs never prints it.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// How a configuration file says where a password is: at most one of the three.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretSource {
    /// The password inline (discouraged: prefer `password_env` or `password_file`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The name of an environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file whose content (trailing newline trimmed) is the password.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
}

impl SecretSource {
    /// Resolves the password; `file`/`key` name the configuration place for errors, `env` is
    /// the environment `password_env` is looked up in (the one `config::load` was given).
    pub fn resolve(
        &self,
        file: &Path,
        key: &str,
        base_dir: &Path,
        env: &[(String, String)],
    ) -> Result<Secret, ConfigError> {
        let given = [
            self.password.is_some(),
            self.password_env.is_some(),
            self.password_file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given > 1 {
            return Err(ConfigError::invalid(
                file,
                key,
                "set only one of `password`, `password_env`, `password_file`",
            ));
        }
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        if let Some(var) = &self.password_env {
            return env
                .iter()
                .find(|(name, _)| name == var)
                .map(|(_, value)| Secret::new(value.clone()))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        file,
                        format!("{key}.password_env"),
                        format!("environment variable `{var}` is not set (or not UTF-8)"),
                    )
                });
        }
        if let Some(path) = &self.password_file {
            let path = base_dir.join(path);
            return std::fs::read_to_string(&path)
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
                .map_err(|e| {
                    ConfigError::invalid(
                        file,
                        format!("{key}.password_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                });
        }
        Ok(Secret::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn only_one_source() {
        let src = SecretSource {
            password: Some(Secret::new("a")),
            password_env: Some("B".into()),
            password_file: None,
        };
        let err = src
            .resolve(Path::new("c.yaml"), "connection", Path::new("."), &[])
            .unwrap_err();
        assert!(err.to_string().contains("only one"), "{err}");
    }

    #[test]
    fn missing_env_names_variable() {
        let src = SecretSource {
            password_env: Some("TIDEMARK_TEST_SURELY_UNSET_VAR".into()),
            ..Default::default()
        };
        let err = src
            .resolve(Path::new("c.yaml"), "connection", Path::new("."), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("TIDEMARK_TEST_SURELY_UNSET_VAR"), "{err}");
        assert!(err.contains("c.yaml"), "{err}");
    }

    #[test]
    fn the_env_variable_comes_from_the_given_environment() {
        let src = SecretSource {
            password_env: Some("DB_PASSWORD".into()),
            ..Default::default()
        };
        let env = [("DB_PASSWORD".to_string(), "s3cret".to_string())];
        let secret = src
            .resolve(Path::new("c.yaml"), "connection", Path::new("."), &env)
            .unwrap();
        assert_eq!(secret.expose(), "s3cret");
        let err = src
            .resolve(Path::new("c.yaml"), "connection", Path::new("."), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("DB_PASSWORD"), "{err}");
        assert!(err.contains("c.yaml"), "{err}");
    }
}
