//! `schema_registry:` in `configs/tidemark.yaml`: the Confluent-compatible schema registry of
//! the `avro` format (Confluent Schema Registry, Karapace, Apicurio's Confluent API).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use super::secret::{Secret, SecretSource};

/// A subject's compatibility level, as the registry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }
}

/// How a subject is named (Confluent's subject name strategies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategy {
    /// `<topic>-key` and `<topic>-value` (TopicNameStrategy, the default).
    #[default]
    Topic,
    /// The record's full name (RecordNameStrategy).
    Record,
    /// `<topic>-<record full name>` (TopicRecordNameStrategy).
    TopicRecord,
}

/// The file form of `schema_registry:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// `http://host:port` or `https://host:port` (a path prefix is kept).
    pub url: String,
    /// When set, tidemark sets this level on each subject it registers to (`PUT /config/{s}`)
    /// before the first check; when not, the subject's (or the registry's) own level holds
    /// (BACKWARD by default in Confluent's registry).
    #[serde(default)]
    pub compatibility: Option<CompatibilityLevel>,
    #[serde(default)]
    pub subject_strategy: SubjectStrategy,
    /// Basic authentication: the user (Confluent Cloud: the API key); its password from
    /// `password_env` / `password_file`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(flatten)]
    pub password: SecretSource,
    /// Bearer authentication: the token from an environment variable or a file.
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A PEM file of the CA certificates to trust for `https` (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long one request may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// How tidemark authenticates to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// `schema_registry:`, resolved: secrets read, paths absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// The base URL, without a trailing `/`.
    pub url: String,
    pub compatibility: Option<CompatibilityLevel>,
    pub subject_strategy: SubjectStrategy,
    pub auth: RegistryAuth,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl SchemaRegistryConfig {
    /// Checks and resolves the section (`file` is the daemon file, for errors).
    pub fn resolve(
        &self,
        file: &Path,
        base_dir: &Path,
        env: &[(String, String)],
    ) -> Result<RegistrySettings, ConfigError> {
        let url = self.url.trim_end_matches('/').to_string();
        let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
        else {
            return Err(ConfigError::invalid(
                file,
                "schema_registry.url",
                format!("`{}` is not an http:// or https:// URL", self.url),
            ));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(ConfigError::invalid(
                file,
                "schema_registry.url",
                format!("`{}` names no host", self.url),
            ));
        }
        let has_password = self.password.password.is_some()
            || self.password.password_env.is_some()
            || self.password.password_file.is_some();
        let has_token = self.token_env.is_some() || self.token_file.is_some();
        let auth = match (&self.username, has_token) {
            (Some(_), true) => {
                return Err(ConfigError::invalid(
                    file,
                    "schema_registry",
                    "set either `username` (basic authentication) or `token_env`/`token_file` (bearer), not both",
                ))
            }
            (Some(user), false) => RegistryAuth::Basic {
                username: user.clone(),
                password: if has_password {
                    self.password
                        .resolve(file, "schema_registry", base_dir, env)?
                } else {
                    Secret::default()
                },
            },
            (None, true) => {
                let source = SecretSource {
                    password: None,
                    password_env: self.token_env.clone(),
                    password_file: self.token_file.clone(),
                };
                let token = source
                    .resolve(file, "schema_registry.token", base_dir, env)
                    .map_err(|e| match e {
                        ConfigError::Invalid {
                            file,
                            key,
                            location,
                            message,
                        } => ConfigError::Invalid {
                            file,
                            key: key.replace("token.password_", "token_"),
                            location,
                            message: message.replace("`password_env`", "`token_env`"),
                        },
                        other => other,
                    })?;
                RegistryAuth::Bearer(token)
            }
            (None, false) if has_password => {
                return Err(ConfigError::invalid(
                    file,
                    "schema_registry",
                    "a password needs a `username`",
                ))
            }
            (None, false) => RegistryAuth::None,
        };
        if self.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                file,
                "schema_registry.timeout_ms",
                "must be above 0",
            ));
        }
        Ok(RegistrySettings {
            url,
            compatibility: self.compatibility,
            subject_strategy: self.subject_strategy,
            auth,
            ca_file: self.ca_file.as_ref().map(|p| base_dir.join(p)),
            timeout: Duration::from_millis(self.timeout_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> SchemaRegistryConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn resolves_auth_and_checks_the_url() {
        let f = Path::new("tidemark.yaml");
        let env = vec![("T".to_string(), "tok".to_string())];
        let s = parse("url: http://r:8081/\ncompatibility: FULL_TRANSITIVE")
            .resolve(f, Path::new("."), &env)
            .unwrap();
        assert_eq!(s.url, "http://r:8081");
        assert_eq!(s.compatibility, Some(CompatibilityLevel::FullTransitive));
        assert_eq!(s.auth, RegistryAuth::None);
        let s = parse("url: https://r\ntoken_env: T")
            .resolve(f, Path::new("."), &env)
            .unwrap();
        assert_eq!(s.auth, RegistryAuth::Bearer(Secret::new("tok")));
        let s = parse("url: https://r\nusername: u\npassword_env: T")
            .resolve(f, Path::new("."), &env)
            .unwrap();
        assert_eq!(
            s.auth,
            RegistryAuth::Basic {
                username: "u".into(),
                password: Secret::new("tok")
            }
        );
        let e = parse("url: r:8081")
            .resolve(f, Path::new("."), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("schema_registry.url"), "{e}");
        let e = parse("url: http://r\ntoken_env: NOPE")
            .resolve(f, Path::new("."), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NOPE") && e.contains("token_env"), "{e}");
        let e = parse("url: http://r\nusername: u\ntoken_env: T")
            .resolve(f, Path::new("."), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
    }
}
