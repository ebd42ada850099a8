//! `tidemark snapshot`: asks a running connector for a snapshot (all its tables, one table, or
//! a key range of one table), or pauses, resumes or stops the one in progress, by writing a
//! signal into the source's log (see `crate::snapshot::signal` and `crate::source::write_signal`):
//! PostgreSQL a logical decoding message, MySQL a row in the signal table. The connector acts on it when
//! its stream reaches the signal, also if it was down when the signal was written.

use std::path::Path;

use crate::config;
use crate::snapshot::signal::{Action, Signal};

/// A key bound from the command line: a JSON array of the key columns' values for a
/// composite key (`["7","b"]`), else one value.
fn key_bound(arg: Option<String>) -> Result<Option<Vec<String>>, String> {
    let Some(text) = arg else { return Ok(None) };
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| format!("key bound {text}: not a JSON array: {e}"))?;
        return Ok(Some(
            values
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
        ));
    }
    Ok(Some(vec![text]))
}

/// What the command line asks for.
pub struct Request {
    pub table: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub condition: Option<String>,
    pub action: Action,
}

pub async fn snapshot(config_path: &Path, connector: &str, request: Request) -> i32 {
    let Request {
        table,
        from,
        to,
        condition,
        action,
    } = request;
    let settings = match config::load(config_path, std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tidemark: configuration error: {e}");
            return 2;
        }
    };
    let Some(cfg) = settings.connectors.iter().find(|c| c.name == connector) else {
        eprintln!(
            "tidemark: no connector `{connector}` in {} (connectors: {})",
            config_path.display(),
            settings
                .connectors
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return 2;
    };
    let (from, to) = match (key_bound(from), key_bound(to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("tidemark: {e}");
            return 2;
        }
    };
    let signal = match signal_for(
        cfg,
        action,
        table.into_iter().collect(),
        from,
        to,
        condition,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return 2;
        }
    };
    let written = crate::source::write_signal(cfg, &signal).await;
    match written {
        Ok(at) => {
            println!(
                "signal written {at}: {}",
                serde_json::to_string(&signal).unwrap_or_default()
            );
            0
        }
        Err(e) => {
            eprintln!("tidemark: {e}");
            1
        }
    }
}

/// The signal of a request (the command line's or the admin API's), signed when the
/// connector has a signing key (a `where` condition requires one), and checked against the
/// connector's tables.
pub fn signal_for(
    cfg: &config::ConnectorConfig,
    action: Action,
    tables: Vec<String>,
    from: Option<Vec<String>>,
    to: Option<Vec<String>>,
    condition: Option<String>,
) -> Result<Signal, String> {
    let mut signal = Signal {
        connector: cfg.name.clone(),
        action,
        tables,
        from,
        to,
        condition,
        expires_ms: None,
        auth: None,
    };
    if signal.condition.is_some() && cfg.snapshot.signing_key.is_none() {
        return Err(format!(
            "connector {}: a `where` condition needs a signing key shared by the requester and the connector: \
             set `snapshot.signing_key_env` (or `signing_key_file`) in {}",
            cfg.name,
            cfg.file.display()
        ));
    }
    if let Some(key) = &cfg.snapshot.signing_key {
        // With a key configured every signal goes out signed, with an expiry.
        signal.expires_ms =
            Some(crate::event::now_ms() + crate::snapshot::signal::SIGNED_VALIDITY_MS);
        signal.sign(key);
    }
    if action == Action::Snapshot {
        signal.tasks(cfg).map_err(|e| e.to_string())?;
    }
    Ok(signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bounds() {
        assert_eq!(key_bound(None).unwrap(), None);
        assert_eq!(
            key_bound(Some("42".into())).unwrap(),
            Some(vec!["42".into()])
        );
        assert_eq!(
            key_bound(Some(r#"[7, "b"]"#.into())).unwrap(),
            Some(vec!["7".into(), "b".into()])
        );
        assert!(key_bound(Some("[7,".into())).is_err());
    }
}
