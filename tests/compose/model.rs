//! The compose file as the tests read it: services, environments, commands, bind mounts, and
//! the paths behind them in the repository.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_yaml::Value;

pub const COMPOSE: &str = "docker-compose.yml";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn compose() -> Value {
    let path = root().join(COMPOSE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{COMPOSE} is not valid YAML: {e}"))
}

pub fn services(c: &Value) -> &serde_yaml::Mapping {
    c.get("services")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{COMPOSE}: no `services:` mapping"))
}

pub fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    services(c)
        .get(name)
        .unwrap_or_else(|| panic!("{COMPOSE}: no service `{name}`"))
}

pub fn service_names(c: &Value) -> Vec<String> {
    services(c)
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect()
}

/// A scalar as compose reads it (`5432`, `true` and `"x"` are all strings to it).
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `command:` / `healthcheck.test:` as a list of words (a string is split on whitespace).
pub fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        Value::Null => Vec::new(),
        other => scalar(other)
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// A service's `environment:`, in either compose syntax (mapping, or list of `KEY=value`).
pub fn environment(c: &Value, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match service(c, name).get("environment") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or_else(|| {
                    panic!("{COMPOSE}: service {name}: environment key {k:?} is not a string")
                });
                let value = scalar(v).unwrap_or_else(|| {
                    panic!(
                        "{COMPOSE}: service {name}: environment {key} has no scalar value ({v:?})"
                    )
                });
                out.insert(key.to_string(), value);
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items {
                let s = scalar(item).unwrap_or_default();
                let (k, v) = s.split_once('=').unwrap_or_else(|| {
                    panic!("{COMPOSE}: service {name}: environment entry `{s}` has no value (KEY=value)")
                });
                out.insert(k.to_string(), v.to_string());
            }
        }
        Some(other) => panic!(
            "{COMPOSE}: service {name}: environment is neither a mapping nor a list: {other:?}"
        ),
    }
    out
}

/// One bind mount: a host path (as written, relative to the compose file) and a container path.
#[derive(Debug, Clone)]
pub struct Mount {
    pub source: String,
    pub target: String,
}

pub fn is_host_path(s: &str) -> bool {
    s.starts_with("./") || s.starts_with("../") || s.starts_with('/') || s == "." || s == ".."
}

/// The bind mounts of a service (named volumes are skipped).
pub fn bind_mounts(c: &Value, name: &str) -> Vec<Mount> {
    let Some(Value::Sequence(items)) = service(c, name).get("volumes") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::String(s) => {
                let mut parts = s.splitn(3, ':');
                let source = parts.next().unwrap_or_default();
                let Some(target) = parts.next() else {
                    continue; // an anonymous volume: `/container/path`
                };
                if is_host_path(source) {
                    out.push(Mount {
                        source: source.to_string(),
                        target: target.to_string(),
                    });
                }
            }
            Value::Mapping(_) => {
                if item.get("type").and_then(Value::as_str) == Some("bind") {
                    let source = item
                        .get("source")
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| {
                            panic!(
                                "{COMPOSE}: service {name}: bind volume without `source`: {item:?}"
                            )
                        });
                    let target = item
                        .get("target")
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| {
                            panic!(
                                "{COMPOSE}: service {name}: bind volume without `target`: {item:?}"
                            )
                        });
                    out.push(Mount {
                        source: source.to_string(),
                        target: target.to_string(),
                    });
                }
            }
            other => panic!("{COMPOSE}: service {name}: unreadable volumes entry {other:?}"),
        }
    }
    out
}

/// Removes `.` and resolves `..` without touching the file system (container paths).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The host path (relative to the repository) behind container path `path`, through the
/// longest bind mount that contains it.
pub fn host_path(mounts: &[Mount], path: &Path) -> Option<PathBuf> {
    let path = normalize(path);
    mounts
        .iter()
        .filter_map(|m| {
            let rest = path.strip_prefix(normalize(Path::new(&m.target))).ok()?;
            Some((m.target.len(), root().join(&m.source).join(rest)))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, p)| normalize(&p))
}

pub fn describe_mounts(mounts: &[Mount]) -> String {
    if mounts.is_empty() {
        return "(no bind mounts)".into();
    }
    mounts
        .iter()
        .map(|m| format!("{}:{}", m.source, m.target))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The container path of the config file in the tidemark service's command.
pub fn tidemark_config_arg(c: &Value) -> String {
    let cmd = words(
        service(c, "tidemark")
            .get("command")
            .unwrap_or(&Value::Null),
    );
    assert!(
        !cmd.is_empty(),
        "{COMPOSE}: service tidemark has no `command:`; it should be [\"run\", \"--config\", <path>]"
    );
    for (i, w) in cmd.iter().enumerate() {
        if let Some(p) = w.strip_prefix("--config=") {
            return p.to_string();
        }
        if w == "--config" || w == "-c" {
            return cmd.get(i + 1).cloned().unwrap_or_else(|| {
                panic!("{COMPOSE}: service tidemark: command {cmd:?} ends with {w} and no path")
            });
        }
    }
    panic!("{COMPOSE}: service tidemark: command {cmd:?} has no --config <path>");
}
