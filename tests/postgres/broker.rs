//! A broker that does not answer, as a person starting tidemark meets it: the cause and the
//! broker's address are in the log within seconds (not a bare timeout a minute later), and a
//! signal stops the daemon within a few seconds, cleanly.

use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn an_unreachable_broker_is_named_at_once_and_sigterm_stops_within_seconds() {
    let cfg = TestConfig::new(&["public.unused"], "");
    let nobody = format!("127.0.0.1:{}", free_port());
    let daemon_file = cfg.config_file();
    let text = std::fs::read_to_string(&daemon_file).unwrap().replace(
        &format!("brokers: {}", kafka_brokers()),
        &format!("brokers: {nobody}"),
    );
    assert!(text.contains(&nobody));
    std::fs::write(&daemon_file, text).unwrap();
    let mut daemon = cfg.start();
    let start = Instant::now();
    while !daemon.log_text().contains("Connection refused")
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = daemon.log_text();
    assert!(
        log.contains("Connection refused") && log.contains(&nobody),
        "the cause and the broker's address within 10 s; log:\n{log}"
    );
    let stopping = Instant::now();
    let status = daemon.terminate(Duration::from_secs(30));
    let took = stopping.elapsed();
    assert!(
        status.success(),
        "exit {status}; log:\n{}",
        daemon.log_text()
    );
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM took {took:?} while the broker was unreachable; log:\n{}",
        daemon.log_text()
    );
}

/// The Kafka position store reads back what it acknowledged, commit after commit, on the real
/// broker: a load right after an acknowledged commit returns that position (a load that
/// answered an older one would restart a connector behind the slot the server was told of),
/// also with a second connector's records in between.
#[tokio::test(flavor = "multi_thread")]
async fn the_position_store_reads_back_every_acknowledged_commit() {
    use tidemark::config::daemon::KafkaConfig;
    use tidemark::event::Position;
    use tidemark::offsets::kafka::KafkaStore;
    let topic = unique("tp_readback");
    let kafka = KafkaConfig {
        brokers: Some(kafka_brokers()),
        ..KafkaConfig::default()
    };
    let store = KafkaStore::new(&kafka, &topic).await.unwrap();
    let mut stale = Vec::new();
    for n in 0..60u64 {
        let p = Position::encode(&serde_json::json!({ "lsn": n })).unwrap();
        store.commit("c", &p).await.unwrap();
        if n % 3 == 0 {
            let other = Position::encode(&serde_json::json!({ "other": n })).unwrap();
            store.commit("other", &other).await.unwrap();
        }
        let loaded = store.load("c").await.unwrap();
        if loaded.as_ref() != Some(&p) {
            stale.push(format!("after commit {n}: {loaded:?}"));
        }
    }
    assert!(stale.is_empty(), "{} stale loads: {stale:?}", stale.len());
}
