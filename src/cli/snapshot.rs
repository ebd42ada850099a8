//! `tidemark snapshot`: asks a running connector for a snapshot (all its tables, one table, or
//! a key range of one table), or pauses, resumes or stops the one in progress, by writing a
//! signal into the source's log (see `crate::snapshot::signal`). The connector acts on it when
//! its stream reaches the signal, also if it was down when the signal was written.

use std::path::Path;

use crate::config::{self, SourceKind};
use crate::snapshot::signal::{Action, Signal, SIGNAL_PREFIX};
use crate::source::postgres::setup;

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

pub async fn snapshot(
    config_path: &Path,
    connector: &str,
    table: Option<String>,
    from: Option<String>,
    to: Option<String>,
    action: Action,
) -> i32 {
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
    let signal = Signal {
        connector: cfg.name.clone(),
        action,
        tables: table.into_iter().collect(),
        from,
        to,
    };
    if action == Action::Snapshot {
        if let Err(e) = signal.tasks(cfg) {
            eprintln!("tidemark: {e}");
            return 2;
        }
    }
    if cfg.kind != SourceKind::Postgres {
        eprintln!(
            "tidemark: connector {}: snapshots of MySQL/MariaDB sources are not built yet",
            cfg.name
        );
        return 2;
    }
    let content = match serde_json::to_string(&signal) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tidemark: encoding the signal: {e}");
            return 1;
        }
    };
    let client = match setup::connect(cfg).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return 1;
        }
    };
    match client
        .query_one(
            "SELECT pg_logical_emit_message(true, $1::text, $2::text)::text",
            &[&SIGNAL_PREFIX, &content],
        )
        .await
    {
        Ok(row) => {
            let lsn: String = row.get(0);
            println!("signal written at WAL position {lsn}: {content}");
            0
        }
        Err(e) => {
            eprintln!("tidemark: connector {}: writing the signal: {e}", cfg.name);
            1
        }
    }
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
