//! The graceful-shutdown test shared by both sources: a connector kept in backpressure is
//! stopped with SIGTERM again and again while a writer runs; each stop must end with exit 0
//! within 30 s, and in the end every (key, version) the writer made is on the topic, each
//! key's versions in order (a graceful stop commits exactly what Kafka acknowledged, so not
//! even a replayed older version may appear).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;

/// Daemon settings that keep the source waiting for the pipeline (backpressure).
pub const BACKPRESSURE: &str = "pipeline:\n  channel_capacity: 16\n  max_in_flight: 64\n";

/// The writer's load: `TRANSACTIONS` transactions, each updating all `KEYS` rows once
/// (`v = v + 1`), so every key goes through versions 1..=TRANSACTIONS.
pub const KEYS: i64 = 1_000;
pub const TRANSACTIONS: i64 = 200;

/// Appends `yaml` to the daemon's configuration file.
pub fn append_daemon_config(cfg: &TestConfig, yaml: &str) {
    let path = cfg.config_file();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(yaml);
    std::fs::write(&path, text).unwrap();
}

/// SIGTERM, and the daemon must exit 0 within `limit`; returns how long it took.
pub fn terminate_within(daemon: &mut Daemon, limit: Duration, round: usize) -> Duration {
    let asked = Instant::now();
    let status = daemon.terminate(limit);
    let took = asked.elapsed();
    assert!(
        status.success(),
        "round {round}: exit {status} after SIGTERM; log:\n{}",
        daemon.log_text()
    );
    took
}

/// Reads `topic` until it holds every version 1..=TRANSACTIONS of every key 0..KEYS (column
/// `v`, key column `id`), and checks that each key's versions never go back.
pub fn assert_every_version_in_order(topic: &str) {
    use rdkafka::Message;
    let want = (KEYS * TRANSACTIONS) as usize;
    let consumer = consumer_from_start(&kafka_brokers(), topic);
    let mut seen = std::collections::HashSet::new();
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    let mut messages = 0usize;
    let start = Instant::now();
    let mut complete_at: Option<Instant> = None;
    while complete_at.is_none_or(|t| t.elapsed() < Duration::from_secs(2)) {
        if start.elapsed() >= Duration::from_secs(300) {
            // Which versions are short tells a lost transaction (a gap) from a stalled tail.
            let mut short: Vec<(i64, usize)> = (1..=TRANSACTIONS)
                .map(|v| (v, seen.iter().filter(|(_, sv)| *sv == v).count()))
                .filter(|(_, n)| *n < KEYS as usize)
                .collect();
            short.truncate(20);
            panic!(
                "{} distinct (key, version) pairs on the topic after 300 s, {want} written ({messages} messages); \
                 versions with fewer than {KEYS} keys (version, keys): {short:?}",
                seen.len()
            );
        }
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        messages += 1;
        let value: serde_json::Value =
            serde_json::from_slice(m.payload().expect("an update, not a tombstone")).unwrap();
        let (id, v) = (
            value["after"]["id"].as_i64().expect("id"),
            value["after"]["v"].as_i64().expect("v"),
        );
        if let Some(prev) = last.insert(id, v) {
            assert!(
                v >= prev,
                "key {id}: version {v} after {prev} (offset {}): a stop lost or repeated changes",
                m.offset()
            );
        }
        seen.insert((id, v));
        if seen.len() >= want && complete_at.is_none() {
            complete_at = Some(Instant::now());
        }
    }
    assert_eq!(seen.len(), want, "({messages} messages)");
    eprintln!(
        "{messages} messages, {} repeated after a stop",
        messages - want
    );
}
