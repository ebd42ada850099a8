//! Signals cannot stop or flood a connector: anyone may call `pg_logical_emit_message`, so a
//! malformed, ill-typed or endlessly repeated signal is refused or skipped with a log line, and
//! the stream goes on (also after a restart); the stored position stays small.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::Message;

use crate::common::*;
use crate::snapshot_check::*;

async fn emit(client: &tokio_postgres::Client, content: &str) {
    client
        .execute(
            "SELECT pg_logical_emit_message(true, 'tidemark-signal', $1::text)",
            &[&content],
        )
        .await
        .unwrap();
}

/// Inserts row `id` and waits until its `op=c` event is on the topic.
async fn insert_arrives(client: &tokio_postgres::Client, cfg: &TestConfig, t: &str, id: i32) {
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES ({id}, 'x')"))
        .await
        .unwrap();
    let topic = cfg.topic(&format!("public.{t}"));
    let m = tokio::task::spawn_blocking(move || {
        consume_until(&topic, Duration::from_secs(60), Duration::ZERO, |m| {
            m.iter().any(|x| {
                x.value
                    .as_ref()
                    .is_some_and(|v| v["op"] == "c" && v["after"]["id"] == id)
            })
        })
    })
    .await
    .unwrap();
    assert!(
        m.iter().any(|x| x
            .value
            .as_ref()
            .is_some_and(|v| v["op"] == "c" && v["after"]["id"] == id)),
        "insert {id} did not arrive"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_signals_from_an_unprivileged_role_are_refused_and_the_stream_goes_on() {
    let client = pg().await;
    let t = unique("badsig");
    let role = unique("tm_nobody");
    let password = pg_url().password;
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v text);
             INSERT INTO {t} SELECT g, 'initial' FROM generate_series(1, 5) g;
             CREATE ROLE {role} WITH LOGIN PASSWORD '{password}';"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: on_demand\n");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let nobody = pg_connect(&PgUrl {
        user: role.clone(),
        ..pg_url()
    })
    .await;
    let name = &cfg.name;
    for from in [r#"[]"#, r#"["abc"]"#, r#"["1","2"]"#] {
        emit(
            &nobody,
            &format!(r#"{{"connector":"{name}","action":"snapshot","tables":["public.{t}"],"from":{from}}}"#),
        )
        .await;
    }
    emit(&nobody, "not even JSON").await;
    insert_arrives(&client, &cfg, &t, 100).await;
    let log = daemon.log_text();
    assert!(log.contains("snapshot signal refused"), "{}", tail(&log));
    assert!(
        log.contains("snapshot of this table skipped"),
        "the ill-typed bound skips its task: {}",
        tail(&log)
    );
    assert!(!log.contains("restarting the connector"), "{}", tail(&log));
    daemon.stop_cleanly();

    // The refused and skipped requests are not stored: the next life streams.
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    insert_arrives(&client, &cfg, &t, 101).await;
    daemon.assert_running();
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}; DROP ROLE {role};"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_snapshot_signals_keep_the_stored_position_small() {
    let client = pg().await;
    let t = unique("floodsig");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v text);
             INSERT INTO {t} SELECT g, 'initial' FROM generate_series(1, 20) g;"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: on_demand\n");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    // 10,000 distinct requests (each its own key range), in one transaction.
    client
        .batch_execute(&format!(
            "SELECT pg_logical_emit_message(true, 'tidemark-signal', \
               format('{{\"connector\":\"{}\",\"action\":\"snapshot\",\"tables\":[\"public.{t}\"],\"from\":[\"%s\"],\"to\":[\"%s\"]}}', g, g)) \
             FROM generate_series(1, 10000) g",
            cfg.name
        ))
        .await
        .unwrap();
    insert_arrives(&client, &cfg, &t, 100).await;
    let since = Instant::now();
    while !daemon.log_text().contains("snapshot complete") {
        daemon.assert_running();
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "{}",
            tail(&daemon.log_text())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = daemon.log_text();
    assert!(
        log.contains("queue of snapshot tasks is full"),
        "{}",
        tail(&log)
    );
    assert!(!log.contains("restarting the connector"), "{}", tail(&log));
    // The largest position record the connector stored.
    let topic = format!("{}.positions", cfg.prefix);
    let largest = tokio::task::spawn_blocking(move || {
        let consumer = consumer_from_start(&kafka_brokers(), &topic);
        let mut largest = 0usize;
        let mut idle = Instant::now();
        while idle.elapsed() < Duration::from_secs(3) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                largest = largest.max(m.payload().map_or(0, <[u8]>::len));
                idle = Instant::now();
            }
        }
        drop(consumer.unassign());
        largest
    })
    .await
    .unwrap();
    assert!(largest > 0);
    assert!(largest < 64 * 1024, "a stored position of {largest} bytes");
    eprintln!("largest stored position: {largest} bytes");
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}
