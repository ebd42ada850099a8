//! Snapshot signals: what `tidemark snapshot` (or anyone allowed to) writes into the source's
//! log to start, pause, resume or stop a snapshot of a running connector.
//!
//! PostgreSQL: a logical decoding message with prefix [`SIGNAL_PREFIX`] and this JSON as
//! content, written with `pg_logical_emit_message(true, ...)`; the connector sees it in its
//! WAL stream, in order with the changes. MySQL: a row inserted into the signal table, the
//! action in its `type` column and the rest of this JSON in its `data` column
//! ([`Signal::from_row`]); the connector sees it in its binlog.
//!
//! A `where` condition is SQL that the connector would run: accepted only in a signal signed
//! with the connector's signing key (HMAC-SHA256 over the signal without its `auth`; the
//! `tidemark snapshot --where` command signs with the key from the same configuration). Whoever
//! can write to the log but does not hold the key cannot make the connector run SQL. A signed
//! signal can be replayed (it stays in the log), which repeats the same snapshot, nothing more. A signal carries no SQL: tables must be ones the
//! connector captures, and key bounds become escaped literals, so a signal can at most make
//! the connector read rows it already captures.

use serde::{Deserialize, Serialize};

use super::driver::Driver;
use super::{SnapshotProgress, SnapshotTask};
use crate::config::{ConnectorConfig, Secret};
use crate::event::TableId;

/// The prefix of signal messages.
pub const SIGNAL_PREFIX: &str = "tidemark-signal";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Snapshot,
    Pause,
    Resume,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// The connector the signal is for (every connector on the database sees it).
    pub connector: String,
    pub action: Action,
    /// `schema.table`s to snapshot; empty: every table of the connector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// Inclusive key bounds, one text per key column (only with exactly one table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    /// Only rows matching this SQL condition (needs `auth`).
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// When the signal stops being valid (milliseconds since the epoch); signed with the rest,
    /// so a signed signal cannot be replayed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// HMAC-SHA256 (hex) of the signal without `auth`, with the connector's signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// `snapshot of public.t [10 ..= 20] where ... (signed)`, `pause`, ...: a signal in a log line.
impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::progress::key_text;
        match self.action {
            Action::Snapshot => {
                if self.tables.is_empty() {
                    write!(f, "snapshot of every table")?;
                } else {
                    write!(f, "snapshot of {}", self.tables.join(", "))?;
                }
                if self.from.is_some() || self.to.is_some() {
                    write!(
                        f,
                        " [{} ..= {}]",
                        self.from
                            .as_deref()
                            .map_or_else(|| "start".into(), key_text),
                        self.to.as_deref().map_or_else(|| "end".into(), key_text)
                    )?;
                }
                if let Some(c) = &self.condition {
                    write!(f, " where {c}")?;
                }
            }
            Action::Pause => f.write_str("pause the snapshot")?,
            Action::Resume => f.write_str("resume the snapshot")?,
            Action::Stop => f.write_str("stop the snapshot")?,
        }
        if self.auth.is_some() {
            f.write_str(" (signed)")?;
        }
        Ok(())
    }
}

/// Limits on what a signal may carry (anyone who can write the log can send one): a key bound
/// of at most this many values ...
pub const MAX_BOUND_VALUES: usize = 16;
/// ... each at most this long (bytes), ...
pub const MAX_BOUND_VALUE_LEN: usize = 512;
/// ... and a condition at most this long.
pub const MAX_CONDITION_LEN: usize = 4096;
/// How long a signal signed by `tidemark snapshot` stays valid.
pub const SIGNED_VALIDITY_MS: i64 = 3_600_000;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl Signal {
    /// The bytes the signature covers: the signal's JSON without `auth`.
    fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = Signal {
            auth: None,
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }

    fn mac(&self, key: &Secret) -> HmacSha256 {
        use hmac::Mac;
        // HMAC takes keys of any length.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(&self.signed_bytes());
        mac
    }

    /// Signs the signal with `key` (sets `auth`).
    pub fn sign(&mut self, key: &Secret) {
        use hmac::Mac;
        let tag = self.mac(key).finalize().into_bytes();
        self.auth = Some(tag.iter().map(|b| format!("{b:02x}")).collect());
    }

    /// Whether `auth` is the signature of this signal with `key` (constant-time comparison).
    pub fn verify(&self, key: &Secret) -> bool {
        use hmac::Mac;
        let Some(auth) = &self.auth else { return false };
        let tag: Option<Vec<u8>> = (0..auth.len())
            .step_by(2)
            .map(|i| {
                auth.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        tag.is_some_and(|t| self.mac(key).verify_slice(&t).is_ok())
    }

    pub fn parse(content: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(content).map_err(|e| format!("not a tidemark signal: {e}"))
    }

    /// A signal from a row of a signal table: `kind` is the action (`snapshot`, `pause`,
    /// `resume`, `stop`), `data` the rest as a JSON object (`connector`, `tables`, `from`,
    /// `to`).
    pub fn from_row(kind: &str, data: &str) -> Result<Self, String> {
        let mut object: serde_json::Map<String, serde_json::Value> = if data.trim().is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_str(data)
                .map_err(|e| format!("signal data is not a JSON object: {e}"))?
        };
        if object.contains_key("action") {
            return Err("put the action in the `type` column, not in `data`".into());
        }
        object.insert("action".into(), serde_json::Value::String(kind.to_owned()));
        serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| format!("not a tidemark signal: {e}"))
    }

    /// The `type` and `data` columns of a signal-table row carrying this signal.
    pub fn to_row(&self) -> (String, String) {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = value.as_object_mut() {
            o.remove("action");
        }
        let kind = serde_json::to_value(self.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        (kind, value.to_string())
    }

    /// Whether connector `cfg` accepts this signal at all (at `now_ms`): a signature where
    /// `snapshot.require_signed_signals` asks for one, and no expiry passed.
    pub fn admissible(&self, cfg: &ConnectorConfig, now_ms: i64) -> Result<(), String> {
        if let Some(expires) = self.expires_ms {
            if now_ms > expires {
                return Err(format!(
                    "the signal expired at {expires} (ms since the epoch)"
                ));
            }
        }
        if cfg.snapshot.require_signed_signals {
            let signed = cfg
                .snapshot
                .signing_key
                .as_ref()
                .is_some_and(|key| self.verify(key));
            if !signed {
                return Err(format!(
                    "connector {} requires signed signals (snapshot.require_signed_signals) and this one is \
                     not signed with its key; send it with `tidemark snapshot`",
                    cfg.name
                ));
            }
            if self.expires_ms.is_none() {
                return Err("a signed signal must carry an expiry (expires_ms)".into());
            }
        }
        Ok(())
    }

    /// Checks the bounds and condition against the limits on a signal's size.
    fn check_limits(&self) -> Result<(), String> {
        for (name, bound) in [("from", &self.from), ("to", &self.to)] {
            let Some(values) = bound else { continue };
            if values.is_empty() {
                return Err(format!("`{name}` is empty: give one value per key column"));
            }
            if values.len() > MAX_BOUND_VALUES {
                return Err(format!(
                    "`{name}` has {} values; a key has at most {MAX_BOUND_VALUES} columns",
                    values.len()
                ));
            }
            if let Some(v) = values.iter().find(|v| v.len() > MAX_BOUND_VALUE_LEN) {
                return Err(format!(
                    "a `{name}` value is {} bytes long (at most {MAX_BOUND_VALUE_LEN})",
                    v.len()
                ));
            }
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to) {
            if from.len() != to.len() {
                return Err(format!(
                    "`from` has {} values and `to` {}: both give one value per key column",
                    from.len(),
                    to.len()
                ));
            }
        }
        if self
            .condition
            .as_ref()
            .is_some_and(|c| c.len() > MAX_CONDITION_LEN)
        {
            return Err(format!(
                "the condition is longer than {MAX_CONDITION_LEN} bytes"
            ));
        }
        Ok(())
    }

    /// The snapshot tasks a `snapshot` signal asks of connector `cfg`, or why it is refused.
    pub fn tasks(&self, cfg: &ConnectorConfig) -> Result<Vec<SnapshotTask>, String> {
        self.check_limits()?;
        let tables: Vec<TableId> = if self.tables.is_empty() {
            cfg.tables.iter().map(|t| t.id.clone()).collect()
        } else {
            self.tables
                .iter()
                .map(|t| {
                    let id =
                        TableId::parse(t).ok_or_else(|| format!("`{t}` is not `schema.table`"))?;
                    if cfg.table(&id).is_none() {
                        return Err(format!(
                            "table {id} is not captured by connector {} (add it to {})",
                            cfg.name,
                            cfg.file.display()
                        ));
                    }
                    Ok(id)
                })
                .collect::<Result<_, _>>()?
        };
        if (self.from.is_some() || self.to.is_some()) && tables.len() != 1 {
            return Err("a key range (--from/--to) needs exactly one table".into());
        }
        if self.condition.is_some() {
            if tables.len() != 1 {
                return Err("a condition (--where) needs exactly one table".into());
            }
            match &cfg.snapshot.signing_key {
                None => {
                    return Err(format!(
                        "a condition (--where) needs a signed signal, and connector {} has no \
                         `snapshot.signing_key_env`/`signing_key_file` in {}",
                        cfg.name,
                        cfg.file.display()
                    ))
                }
                Some(key) if !self.verify(key) => {
                    return Err(
                        "the signal's condition is not signed with the connector's signing key"
                            .into(),
                    )
                }
                Some(_) => {}
            }
        }
        Ok(tables
            .into_iter()
            .map(|table| SnapshotTask {
                from: self.from.clone(),
                to: self.to.clone(),
                condition: self.condition.clone(),
                ..SnapshotTask::whole(table)
            })
            .collect())
    }
}

/// Applies signal `content`, seen in connector `cfg`'s log at `at`, to its running snapshot.
/// Returns the progress of a snapshot to start when none is running. A malformed or refused
/// signal is logged and skipped: it is a request, not data, and must not stop the stream.
pub fn apply(
    content: &[u8],
    cfg: &ConnectorConfig,
    running: Option<&mut Driver>,
    at: &dyn std::fmt::Display,
) -> Option<SnapshotProgress> {
    let signal = match Signal::parse(content) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(connector = %cfg.name, at = %at, error = %e, "signal skipped");
            return None;
        }
    };
    if signal.connector != cfg.name {
        return None;
    }
    if let Err(e) = signal.admissible(cfg, crate::event::now_ms()) {
        tracing::warn!(connector = %cfg.name, at = %at, error = %e, "signal refused");
        return None;
    }
    tracing::info!(connector = %cfg.name, at = %at, signal = %signal, "signal");
    match (signal.action, running) {
        (Action::Snapshot, running) => {
            let tasks = match signal.tasks(cfg) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(connector = %cfg.name, at = %at, error = %e, "snapshot signal refused");
                    return None;
                }
            };
            match running {
                Some(d) => {
                    d.add_tasks(tasks);
                    None
                }
                None => SnapshotProgress::start(super::driver::bounded_tasks(cfg, &[], tasks)),
            }
        }
        (Action::Pause, Some(d)) => {
            d.set_paused(true);
            None
        }
        (Action::Resume, Some(d)) => {
            d.set_paused(false);
            None
        }
        (Action::Stop, Some(d)) => {
            d.stop();
            None
        }
        (_, None) => {
            tracing::info!(connector = %cfg.name, "no snapshot is running; signal has nothing to do");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_fields() {
        let s = Signal {
            connector: "demo".into(),
            action: Action::Snapshot,
            tables: vec!["public.t".into()],
            from: Some(vec!["10".into()]),
            to: None,
            condition: None,
            expires_ms: None,
            auth: None,
        };
        let text = serde_json::to_vec(&s).unwrap();
        assert_eq!(Signal::parse(&text).unwrap(), s);
        assert!(Signal::parse(br#"{"connector":"d","action":"snapshot","sql":"1=1"}"#).is_err());
        assert!(Signal::parse(br#"{"connector":"d","action":"drop"}"#).is_err());
    }

    #[test]
    fn table_rows_carry_the_action_in_their_type() {
        let s = Signal {
            connector: "demo".into(),
            action: Action::Pause,
            tables: Vec::new(),
            from: None,
            to: None,
            condition: None,
            expires_ms: None,
            auth: None,
        };
        let (kind, data) = s.to_row();
        assert_eq!(
            (kind.as_str(), data.as_str()),
            ("pause", r#"{"connector":"demo"}"#)
        );
        assert_eq!(Signal::from_row(&kind, &data).unwrap(), s);
        assert!(Signal::from_row("snapshot", r#"{"connector":"d","action":"stop"}"#).is_err());
        assert!(Signal::from_row("snapshot", "not json").is_err());
        assert!(Signal::from_row("snapshot", r#"{"connector":"d","sql":"1=1"}"#).is_err());
    }

    #[test]
    fn a_condition_needs_the_connectors_signature() {
        let mut cfg = crate::config::test_mysql_connector();
        let key = Secret::new("k3y");
        let mut s = Signal {
            connector: "m".into(),
            action: Action::Snapshot,
            tables: vec!["db.tbl".into()],
            from: None,
            to: None,
            condition: Some("v > 1".into()),
            expires_ms: None,
            auth: None,
        };
        let refused = |s: &Signal, cfg: &ConnectorConfig| s.tasks(cfg).unwrap_err();
        assert!(
            refused(&s, &cfg).contains("signing_key_env"),
            "no key configured"
        );
        cfg.snapshot.signing_key = Some(key.clone());
        assert!(refused(&s, &cfg).contains("not signed"), "unsigned");
        s.sign(&Secret::new("other"));
        assert!(
            refused(&s, &cfg).contains("not signed"),
            "signed with another key"
        );
        s.sign(&key);
        let tasks = s.tasks(&cfg).unwrap();
        assert_eq!(tasks[0].condition.as_deref(), Some("v > 1"));
        // Through the log and back (JSON, or a signal-table row): still valid.
        let again = Signal::parse(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert!(again.verify(&key));
        let (kind, data) = s.to_row();
        assert!(Signal::from_row(&kind, &data).unwrap().verify(&key));
        // Any change to the signed content breaks the signature.
        let mut tampered = s.clone();
        tampered.condition = Some("1=1".into());
        assert!(!tampered.verify(&key));
        assert!(refused(&tampered, &cfg).contains("not signed"));
    }

    fn snapshot_of(table: &str) -> Signal {
        Signal {
            connector: "m".into(),
            action: Action::Snapshot,
            tables: vec![table.into()],
            from: None,
            to: None,
            condition: None,
            expires_ms: None,
            auth: None,
        }
    }

    #[test]
    fn bounds_must_be_non_empty_of_one_arity_and_small() {
        let cfg = crate::config::test_mysql_connector();
        let with = |from: Option<Vec<&str>>, to: Option<Vec<&str>>| {
            let mut s = snapshot_of("db.tbl");
            s.from = from.map(|v| v.into_iter().map(String::from).collect());
            s.to = to.map(|v| v.into_iter().map(String::from).collect());
            s.tasks(&cfg)
        };
        assert!(with(Some(vec![]), None).unwrap_err().contains("empty"));
        assert!(with(Some(vec!["1", "2"]), Some(vec!["3"]))
            .unwrap_err()
            .contains("one value per key column"));
        let long = "x".repeat(MAX_BOUND_VALUE_LEN + 1);
        assert!(with(Some(vec![&long]), None).is_err());
        assert!(with(Some(vec!["1"; 17]), None).is_err());
        assert_eq!(with(Some(vec!["1"]), Some(vec!["9"])).unwrap().len(), 1);
    }

    #[test]
    fn required_signatures_and_expiry() {
        let mut cfg = crate::config::test_mysql_connector();
        let key = Secret::new("a-signing-key-of-some-length");
        let mut s = snapshot_of("db.tbl");
        assert!(
            s.admissible(&cfg, 1000).is_ok(),
            "unsigned is fine by default"
        );
        s.expires_ms = Some(500);
        assert!(s.admissible(&cfg, 1000).unwrap_err().contains("expired"));
        cfg.snapshot.signing_key = Some(key.clone());
        cfg.snapshot.require_signed_signals = true;
        s.expires_ms = Some(5000);
        assert!(s
            .admissible(&cfg, 1000)
            .unwrap_err()
            .contains("requires signed"));
        s.sign(&key);
        assert!(s.admissible(&cfg, 1000).is_ok());
        assert!(s.admissible(&cfg, 6000).is_err(), "expired");
        let mut moved = s.clone();
        moved.expires_ms = Some(i64::MAX);
        assert!(
            moved.admissible(&cfg, 1000).is_err(),
            "the expiry is signed"
        );
    }
}
