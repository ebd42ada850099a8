//! Kill -9 mid-stream and restart: every change arrives at least once, per-key order holds,
//! and the slot's confirmed_flush_lsn never passes what Kafka acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value as Json;

use crate::common::*;

const KEYS: i32 = 500;
const TXS: i32 = 100;
const PER_TX: i32 = 100;

/// Writes transactions `from..to`; returns each one's (insert LSN after commit, changes).
async fn write_txs(
    client: &mut tokio_postgres::Client,
    table: &str,
    from: i32,
    to: i32,
) -> Vec<(u64, Vec<(i32, i32)>)> {
    let mut out = Vec::new();
    for i in from..to {
        let tx = client.transaction().await.unwrap();
        let mut changes = Vec::new();
        for j in 0..PER_TX {
            let key = (i * PER_TX + j) % KEYS;
            let v: i32 = tx
                .query_one(
                    &format!(
                        "INSERT INTO {table} VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET v = {table}.v + 1 RETURNING v"
                    ),
                    &[&key],
                )
                .await
                .unwrap()
                .get(0);
            changes.push((key, v));
        }
        tx.commit().await.unwrap();
        let lsn: String = client
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .await
            .unwrap()
            .get(0);
        out.push((parse_lsn(&lsn), changes));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out
}

fn parse_lsn(s: &str) -> u64 {
    let (hi, lo) = s.split_once('/').unwrap();
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

/// Reads `topic` until every pair of `want` is there (or `timeout`); returns the messages and
/// the set of pairs seen.
fn consume_all(
    topic: &str,
    want: &BTreeSet<(i32, i32)>,
    timeout: Duration,
) -> (Vec<Msg>, BTreeSet<(i32, i32)>) {
    let msgs = consume_until(topic, timeout, Duration::from_secs(1), |m| {
        let have: BTreeSet<(i32, i32)> = versions(m).into_iter().collect();
        want.is_subset(&have)
    });
    let have = versions(&msgs).into_iter().collect();
    (msgs, have)
}

/// (key, version) pairs in topic order.
fn versions(msgs: &[Msg]) -> Vec<(i32, i32)> {
    msgs.iter()
        .filter_map(|m| m.value.as_ref())
        .map(|v| {
            let a = &v["after"];
            (
                a["id"].as_i64().unwrap() as i32,
                a["v"].as_i64().unwrap() as i32,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_restart_loses_nothing_and_keeps_per_key_order() {
    let mut client = pg().await;
    let t = unique("restart");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v int NOT NULL)"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let topic = cfg.topic(&format!("public.{t}"));
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;

    let mut written = write_txs(&mut client, &t, 0, 40).await;
    daemon.kill9();
    // Wait for the walsender to notice, so the slot's position is final.
    for _ in 0..100 {
        let active: bool = client
            .query_one(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&cfg.slot],
            )
            .await
            .unwrap()
            .get(0);
        if !active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let confirmed = slot_confirmed(&client, &cfg.slot).await;
    // Every transaction the slot confirmed must already be in Kafka.
    let must_have: BTreeSet<(i32, i32)> = written
        .iter()
        .filter(|(lsn, _)| *lsn <= confirmed)
        .flat_map(|(_, c)| c.iter().copied())
        .collect();
    let (_, have) = consume_all(&topic, &must_have, Duration::from_secs(30));
    let missing: Vec<_> = must_have.difference(&have).take(5).collect();
    assert!(
        missing.is_empty(),
        "confirmed_flush_lsn {confirmed:#X} passed changes not in Kafka, e.g. {missing:?}"
    );

    // Keep writing while tidemark is down, then restart and write more.
    written.extend(write_txs(&mut client, &t, 40, 70).await);
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    written.extend(write_txs(&mut client, &t, 70, TXS).await);

    let all: BTreeSet<(i32, i32)> = written
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .collect();
    assert_eq!(all.len(), (TXS * PER_TX) as usize);
    let (msgs, have) = consume_all(&topic, &all, Duration::from_secs(120));
    let seen = versions(&msgs);
    let missing: Vec<_> = all.difference(&have).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} of {} changes missing, e.g. {missing:?}; log:\n{}",
        all.difference(&have).count(),
        all.len(),
        daemon.log_text()
    );
    // Per-key order: first occurrences of each key's versions are increasing (a replay after
    // the crash may repeat versions, never reorder them).
    let mut per_key: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (k, v) in &seen {
        let list = per_key.entry(*k).or_default();
        if !list.contains(v) {
            list.push(*v);
        }
    }
    for (k, list) in &per_key {
        assert!(
            list.windows(2).all(|w| w[0] < w[1]),
            "key {k}: versions out of order {list:?}"
        );
    }
    let duplicates = seen.len() - have.len();
    eprintln!(
        "restart test: {} messages, {duplicates} duplicates",
        seen.len()
    );

    let status = daemon.terminate(Duration::from_secs(60));
    assert!(status.success(), "exit {status}");
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// A PostgreSQL restart while streaming (every connection cut): tidemark retries with backoff,
/// resumes from its committed position, and loses nothing.
#[tokio::test(flavor = "multi_thread")]
async fn database_restart_loses_nothing() {
    let server = PrivatePostgres::start("logical")
        .expect("TIDEMARK_DEV_PG_BIN is set by scripts/dev-env.sh");
    let mut client = pg_connect(&server.url()).await;
    let t = unique("pgrestart");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v int NOT NULL)"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    server.use_in(&cfg);
    let topic = cfg.topic(&format!("public.{t}"));
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;

    let mut written = write_txs(&mut client, &t, 0, 20).await;
    server.restart();
    let mut client = pg_connect(&server.url()).await;
    written.extend(write_txs(&mut client, &t, 20, 40).await);
    daemon.assert_running();

    let all: BTreeSet<(i32, i32)> = written
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .collect();
    let (_, have) = consume_all(&topic, &all, Duration::from_secs(120));
    let missing = all.difference(&have).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} changes missing; log:\n{}",
        all.len(),
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(log.contains("transient error"), "no retry logged:\n{log}");
    let status = daemon.terminate(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; log:\n{log}");
}

/// Creates `topic` with `partitions` partitions and `cleanup.policy` = `policy`.
async fn create_topic(topic: &str, partitions: i32, policy: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    let new =
        NewTopic::new(topic, partitions, TopicReplication::Fixed(1)).set("cleanup.policy", policy);
    let results = admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .unwrap();
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// Topics made beforehand by someone else: `tidemark check` says what it finds (a table's
/// topic that is not compacted is a warning), and a positions topic with several partitions
/// (a broker's `num.partitions`, or a user's script) still keeps every connector's position:
/// the store writes and reads partition 0 only, whatever partition the connector's name
/// would hash to.
#[tokio::test(flavor = "multi_thread")]
async fn topics_made_beforehand_are_checked_and_a_many_partition_positions_topic_keeps_positions() {
    let client = pg().await;
    let t = unique("pre");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v int); INSERT INTO {t} VALUES (1, 1), (2, 2);"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let topic = cfg.topic(&format!("public.{t}"));
    let positions = format!("{}.positions", cfg.prefix);
    create_topic(&positions, 16, "compact").await;
    create_topic(&topic, 1, "delete").await;

    let config = cfg.config_file();
    let out = cfg
        .tidemark(&["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(&format!(
            "WARN  topic {topic} has cleanup.policy=delete, not compact"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ok    positions topic {positions}: 16 partition(s), cleanup.policy=compact"
        )),
        "{text}"
    );
    assert!(
        out.status.success(),
        "a warning does not fail the check: {text}"
    );

    let mut daemon = cfg.start();
    assert_eq!(consume_n(&topic, 2, Duration::from_secs(60)).len(), 2);
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (3, 3)"))
        .await
        .unwrap();
    assert_eq!(consume_n(&topic, 3, Duration::from_secs(60)).len(), 3);
    daemon.stop_cleanly();

    let mut daemon = cfg.start();
    daemon.wait_log("starting connector");
    let log = daemon.log_text();
    assert!(
        !log.contains("none (first start)"),
        "the position was not found at the restart:\n{log}"
    );
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (4, 4)"))
        .await
        .unwrap();
    let all = consume_n(&topic, 4, Duration::from_secs(60));
    let reads = all
        .iter()
        .filter(|m| m.value.as_ref().is_some_and(|v| v["op"] == "r"))
        .count();
    assert_eq!((all.len(), reads), (4, 2), "{all:?}");
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// The connector's position records in the positions topic, oldest first.
fn position_records(cfg: &TestConfig) -> Vec<Msg> {
    let topic = format!("{}.positions", cfg.prefix);
    let key = Json::String(cfg.name.clone());
    consume_until(&topic, Duration::from_secs(10), Duration::ZERO, |_| false)
        .into_iter()
        .filter(|m| m.key.as_ref() == Some(&key) && m.value.is_some())
        .collect()
}

/// [`position_records`] as (offset, LSN).
fn stored_lsns(cfg: &TestConfig) -> Vec<(i64, u64)> {
    position_records(cfg)
        .into_iter()
        .map(|m| {
            let lsn = m.value.as_ref().unwrap()["position"]["lsn"]
                .as_str()
                .unwrap_or_else(|| panic!("a position record without an LSN: {:?}", m.value))
                .to_string();
            (m.offset, parse_lsn(&lsn))
        })
        .collect()
}

async fn slot_confirmed(client: &tokio_postgres::Client, slot: &str) -> u64 {
    let confirmed: String = client
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get(0);
    parse_lsn(&confirmed)
}

/// A position stored ahead of the slot's confirmed_flush_lsn: the state a process leaves when
/// it stops after the store took a position and before the server was told. The restart
/// streams on from the stored position, and no position it stores is older than that one
/// (the server re-reads WAL from the slot's restart_lsn and its keepalives carry the older
/// positions it passes). Once the store moved back below the slot, the next start refused:
/// "confirmed_flush_lsn ... is past the stored position".
#[tokio::test(flavor = "multi_thread")]
async fn a_position_stored_ahead_of_the_slot_never_moves_back() {
    let client = pg().await;
    let t = unique("ahead");
    let filler = unique("ahead_filler");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v int); CREATE TABLE {filler} (x int)"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    let topic = cfg.topic(&format!("public.{t}"));
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (1, 1)"))
        .await
        .unwrap();
    assert_eq!(consume_n(&topic, 1, Duration::from_secs(60)).len(), 1);
    daemon.stop_cleanly();

    // WAL the connector does not capture, and a position at its end stored for the connector
    // (as the last process would have, had it stopped before telling the server).
    client
        .batch_execute(&format!(
            "INSERT INTO {filler} SELECT generate_series(1, 20000)"
        ))
        .await
        .unwrap();
    let ahead: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let confirmed = slot_confirmed(&client, &cfg.slot).await;
    assert!(confirmed < parse_lsn(&ahead), "{confirmed:#X} {ahead}");
    let positions = format!("{}.positions", cfg.prefix);
    let last = position_records(&cfg).pop().expect("a stored position");
    let mut forged = last.value.unwrap();
    forged["position"]["lsn"] = Json::String(ahead.clone());
    let forged_at = {
        let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .create()
            .unwrap();
        let value = serde_json::to_vec(&forged).unwrap();
        let record = rdkafka::producer::FutureRecord::to(&positions)
            .partition(0)
            .key(&cfg.name)
            .payload(&value);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .unwrap()
            .offset
    };

    // The restart: a change after the stored position arrives, and every position stored
    // from then on is at or after it.
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (2, 2)"))
        .await
        .unwrap();
    assert_eq!(
        consume_n(&topic, 2, Duration::from_secs(60)).len(),
        2,
        "{}",
        daemon.log_text()
    );
    // Keepalives come every status interval (300 ms): give the daemon several.
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop_cleanly();
    let after: Vec<(i64, u64)> = stored_lsns(&cfg)
        .into_iter()
        .filter(|(offset, _)| *offset > forged_at)
        .collect();
    assert!(!after.is_empty(), "{}", daemon.log_text());
    let behind: Vec<String> = after
        .iter()
        .filter(|(_, lsn)| *lsn < parse_lsn(&ahead))
        .map(|(offset, lsn)| format!("offset {offset}: {lsn:#X}"))
        .collect();
    assert!(
        behind.is_empty(),
        "positions stored behind the one the connector started from ({ahead}): {behind:?}\n{}",
        daemon.log_text()
    );

    // And the next start goes on from there.
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (3, 3)"))
        .await
        .unwrap();
    assert_eq!(consume_n(&topic, 3, Duration::from_secs(60)).len(), 3);
    daemon.stop_cleanly();
    assert!(!daemon.log_text().contains("past the stored position"));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}; DROP TABLE {filler}"))
        .await;
}
